/* test_secmem.c — wipe memory, guarded memory, and many secrets in a few sodium_malloc
 * regions (secmem_arena_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "secmem.h"
#include "util.h"
#include "unit_maps.h"

#define NSECRETS 20000

static char tmpdir[64];

static char *
tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static void
write_file(const char *name, const char *text, mode_t mode)
{
	FILE *f = fopen(tmp_path(name), "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(tmp_path(name), mode), 0);
}

/* The VmFlags of the mapping holding addr ("" when none does). */
static void
mapping_flags(const void *addr, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false;

	assert_non_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, len, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

/* --- wipe and guarded memory ------------------------------------------------------- */

static void
test_wipe_dup(void **state)
{
	char *p = secmem_wipe_dup("sk-live-1234", 12), *e = secmem_wipe_dup("", 0);
	unsigned char *raw = secmem_wipe_alloc(0);

	(void)state;
	assert_non_null(p);
	assert_string_equal(p, "sk-live-1234");
	assert_int_equal(secmem_wipe_size(p), 13);	/* the copy and its NUL */
	assert_non_null(e);
	assert_string_equal(e, "");
	assert_non_null(raw);
	assert_int_equal(secmem_wipe_size(raw), 0);
	secmem_wipe_free(p);
	secmem_wipe_free(e);
	secmem_wipe_free(raw);
	secmem_wipe_free(NULL);
}

/* Sizes that cannot be had fail cleanly instead of wrapping around. */
static void
test_wipe_too_big(void **state)
{
	(void)state;
	errno = 0;
	assert_null(secmem_wipe_alloc(SIZE_MAX));
	assert_int_equal(errno, ENOMEM);
	assert_null(secmem_wipe_alloc(SIZE_MAX - 8));
	assert_null(secmem_wipe_dup("x", SIZE_MAX));
	assert_null(secmem_guarded_dup("x", SIZE_MAX));
}

/* A growing text: stays NUL-terminated, survives many regrowths, an empty add still gives
 * a text, and a size that cannot be had marks it failed and stops later adds. */
static void
test_growing_text(void **state)
{
	secmem_buf_t b = {0}, e = {0}, big = {0};
	char want[5000];
	size_t i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		secmem_buf_add(&b, "ab", 2);
		secmem_buf_puts(&b, "cde");
		memcpy(want + i * 5, "abcde", 5);
	}
	assert_false(b.failed);
	assert_int_equal(b.len, 5000);
	assert_true(b.cap > b.len);
	assert_memory_equal(b.p, want, 5000);
	assert_int_equal(b.p[5000], '\0');
	assert_true(secmem_wipe_size(b.p) == b.cap);	/* one wipe allocation */
	secmem_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len + b.cap, 0);

	secmem_buf_add(&e, NULL, 0);
	assert_non_null(e.p);
	assert_string_equal(e.p, "");
	secmem_buf_free(&e);

	secmem_buf_puts(&big, "x");
	secmem_buf_add(&big, "y", SIZE_MAX - 1);
	assert_true(big.failed);
	secmem_buf_puts(&big, "z");
	assert_string_equal(big.p, "x");
	assert_int_equal(big.len, 1);
	secmem_buf_free(&big);
	assert_false(big.failed);
}

static void
test_guarded_dup(void **state)
{
	char *p = secmem_guarded_dup("hunter2-guarded", 15);
	char flags[256];

	(void)state;
	assert_non_null(p);
	assert_string_equal(p, "hunter2-guarded");
	mapping_flags(p, flags, sizeof(flags));
	assert_non_null(strstr(flags, " dd"));		/* MADV_DONTDUMP: not in core dumps */
	secmem_guarded_free(p);
	mapping_flags(p, flags, sizeof(flags));
	assert_string_equal(flags, "");			/* zeroed, then unmapped */
	secmem_guarded_free(NULL);
}

/* --- the arena -------------------------------------------------------------------- */

/* Secret number i: different lengths (1..200) and contents. */
static size_t
secret_text(size_t i, char *buf, size_t len)
{
	size_t n = 1 + (i * 7919) % 200;

	assert_true(n < len);
	for (size_t k = 0; k < n; k++)
		buf[k] = (char)('!' + (i + k * 31) % 90);
	buf[n] = '\0';
	return n;
}

static void
test_many_secrets_few_regions(void **state)
{
	static char *ptr[NSECRETS];
	size_t before = unit_count_mappings(), during, bytes = 0;
	secmem_arena_t *a = secmem_arena_new();
	char buf[256];

	(void)state;
	assert_non_null(a);
	assert_int_equal(secmem_arena_regions(a), 0);	/* nothing mapped until used */
	for (size_t i = 0; i < NSECRETS; i++) {
		size_t n = secret_text(i, buf, sizeof(buf));

		ptr[i] = secmem_arena_dup(a, buf, n);
		assert_non_null(ptr[i]);
		bytes += n + 1;
	}
	/* contents intact once everything is in: no secret overwrote another */
	for (size_t i = 0; i < NSECRETS; i++) {
		size_t n = secret_text(i, buf, sizeof(buf));

		assert_int_equal(strlen(ptr[i]), n);
		assert_memory_equal(ptr[i], buf, n + 1);
	}
	/* ~2 MB in regions that double: about log2(2 MB / 4 KiB) of them, not 20,000 */
	assert_true(bytes > 1000000);
	assert_true(secmem_arena_regions(a) <= 12);
	during = unit_count_mappings();
	assert_true(during < before + 4 * 12 + 8);
	secmem_arena_free(a);
	assert_true(unit_count_mappings() <= before + 2);
}

static void
test_secret_memory_flags(void **state)
{
	secmem_arena_t *a = secmem_arena_new();
	char flags[256];
	char *p;

	(void)state;
	assert_non_null(a);
	p = secmem_arena_dup(a, "hunter2", 7);
	assert_non_null(p);
	assert_string_equal(p, "hunter2");
	mapping_flags(p, flags, sizeof(flags));
	assert_non_null(strstr(flags, " dd"));		/* MADV_DONTDUMP: not in core dumps */
	assert_non_null(strstr(flags, "rd wr"));
	/* gone (zeroed by sodium_free, then unmapped) once the arena is freed */
	secmem_arena_free(a);
	mapping_flags(p, flags, sizeof(flags));
	assert_string_equal(flags, "");
	secmem_arena_free(NULL);
}

static void
test_big_and_empty_secrets(void **state)
{
	size_t big = 3 * 4096 + 123;
	secmem_arena_t *a = secmem_arena_new();
	char *small, *large, *empty, *src = malloc(big);

	(void)state;
	assert_non_null(a);
	assert_non_null(src);
	memset(src, 'x', big);
	small = secmem_arena_dup(a, "abc", 3);
	large = secmem_arena_dup(a, src, big);	/* bigger than the next region */
	empty = secmem_arena_dup(a, "", 0);
	assert_non_null(small);
	assert_non_null(large);
	assert_non_null(empty);
	assert_string_equal(small, "abc");
	assert_int_equal(strlen(large), big);
	assert_memory_equal(large, src, big);
	assert_string_equal(empty, "");
	assert_int_equal(secmem_arena_regions(a), 2);
	free(src);
	secmem_arena_free(a);
}

static void
test_drop_wipes(void **state)
{
	secmem_arena_t *a = secmem_arena_new();
	char *keep, *bad, *again, *mid, *after;

	(void)state;
	assert_non_null(a);
	keep = secmem_arena_dup(a, "keep-me", 7);
	bad = secmem_arena_dup(a, "bad\r\nsecret", 11);
	assert_non_null(keep);
	assert_non_null(bad);
	secmem_arena_drop(a, bad, 11);
	for (size_t i = 0; i < 12; i++)
		assert_int_equal(bad[i], 0);
	/* the last allocation's space is used again */
	again = secmem_arena_dup(a, "next", 4);
	assert_ptr_equal(again, bad);
	/* one in the middle is only wiped */
	mid = secmem_arena_dup(a, "middle", 6);
	after = secmem_arena_dup(a, "after", 5);
	secmem_arena_drop(a, mid, 6);
	assert_int_equal(mid[0], 0);
	assert_string_equal(keep, "keep-me");
	assert_string_equal(again, "next");
	assert_string_equal(after, "after");
	secmem_arena_free(a);
}

static void
test_read_file(void **state)
{
	secmem_arena_t *a = secmem_arena_new();
	char err[512] = "", *out = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(a);
	write_file("ok.secret", "sk-file-secret\n", 0600);
	write_file("open.secret", "leaky\n", 0644);
	assert_int_equal(util_read_file_arena(a, tmp_path("ok.secret"), 100, &out, &len,
	    err, sizeof(err)), 0);
	assert_int_equal(len, 15);
	assert_string_equal(out, "sk-file-secret\n");
	mapping_flags(out, err, sizeof(err));
	assert_non_null(strstr(err, " dd"));
	assert_int_equal(util_read_file_arena(a, tmp_path("open.secret"), 100, &out,
	    &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "readable by group or others (mode 644)"));
	assert_int_equal(util_read_file_arena(a, tmp_path("absent"), 100, &out, &len,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "absent: No such file or directory"));
	assert_int_equal(util_read_file_arena(a, tmp_path("ok.secret"), 4, &out, &len,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than 4 bytes"));
	secmem_arena_free(a);
	unlink(tmp_path("ok.secret"));
	unlink(tmp_path("open.secret"));
}

/*
 * When memory for secrets cannot be had, the message says so (it used to be "cannot
 * read", which sent people looking at the file). A child caps its address space.
 */
static void
test_read_file_out_of_memory(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	write_file("oom.secret", "sk-oom\n", 0600);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		secmem_arena_t *a = secmem_arena_new();
		struct rlimit rl = {0, 0};
		char err[512] = "", *out = NULL;
		size_t len = 0;
		FILE *f = fopen("/proc/self/status", "r");
		char line[256];
		unsigned long vm_kb = 0;

		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmSize: %lu kB", &vm_kb) == 1)
				break;
		if (f != NULL)
			fclose(f);
		rl.rlim_cur = rl.rlim_max = vm_kb * 1024 + 4096;
		if (a == NULL || vm_kb == 0 || setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(2);
		if (util_read_file_arena(a, tmp_path("oom.secret"), 100, &out, &len, err,
		    sizeof(err)) == 0)
			_exit(3);
		_exit(strstr(err, "oom.secret: out of memory for secrets") != NULL ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	unlink(tmp_path("oom.secret"));
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-arena.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	rmdir(tmpdir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wipe_dup),
		cmocka_unit_test(test_wipe_too_big),
		cmocka_unit_test(test_growing_text),
		cmocka_unit_test(test_guarded_dup),
		cmocka_unit_test(test_many_secrets_few_regions),
		cmocka_unit_test(test_secret_memory_flags),
		cmocka_unit_test(test_big_and_empty_secrets),
		cmocka_unit_test(test_drop_wipes),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_read_file_out_of_memory),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
