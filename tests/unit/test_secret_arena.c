/* test_secret_arena.c — many secrets in a few sodium_malloc regions (util_secret_arena_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

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
	util_secret_arena_t *a = util_secret_arena_new();
	char buf[256];

	(void)state;
	assert_non_null(a);
	assert_int_equal(util_secret_arena_regions(a), 0);	/* nothing mapped until used */
	for (size_t i = 0; i < NSECRETS; i++) {
		size_t n = secret_text(i, buf, sizeof(buf));

		ptr[i] = util_secret_arena_dup(a, buf, n);
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
	assert_true(util_secret_arena_regions(a) <= 12);
	during = unit_count_mappings();
	assert_true(during < before + 4 * 12 + 8);
	util_secret_arena_free(a);
	assert_true(unit_count_mappings() <= before + 2);
}

static void
test_secret_memory_flags(void **state)
{
	util_secret_arena_t *a = util_secret_arena_new();
	char flags[256];
	char *p;

	(void)state;
	assert_non_null(a);
	p = util_secret_arena_dup(a, "hunter2", 7);
	assert_non_null(p);
	assert_string_equal(p, "hunter2");
	mapping_flags(p, flags, sizeof(flags));
	assert_non_null(strstr(flags, " dd"));		/* MADV_DONTDUMP: not in core dumps */
	assert_non_null(strstr(flags, "rd wr"));
	/* gone (zeroed by sodium_free, then unmapped) once the arena is freed */
	util_secret_arena_free(a);
	mapping_flags(p, flags, sizeof(flags));
	assert_string_equal(flags, "");
	util_secret_arena_free(NULL);
}

static void
test_big_and_empty_secrets(void **state)
{
	size_t big = 3 * 4096 + 123;
	util_secret_arena_t *a = util_secret_arena_new();
	char *small, *large, *empty, *src = malloc(big);

	(void)state;
	assert_non_null(a);
	assert_non_null(src);
	memset(src, 'x', big);
	small = util_secret_arena_dup(a, "abc", 3);
	large = util_secret_arena_dup(a, src, big);	/* bigger than the next region */
	empty = util_secret_arena_dup(a, "", 0);
	assert_non_null(small);
	assert_non_null(large);
	assert_non_null(empty);
	assert_string_equal(small, "abc");
	assert_int_equal(strlen(large), big);
	assert_memory_equal(large, src, big);
	assert_string_equal(empty, "");
	assert_int_equal(util_secret_arena_regions(a), 2);
	free(src);
	util_secret_arena_free(a);
}

static void
test_drop_wipes(void **state)
{
	util_secret_arena_t *a = util_secret_arena_new();
	char *keep, *bad, *again, *mid, *after;

	(void)state;
	assert_non_null(a);
	keep = util_secret_arena_dup(a, "keep-me", 7);
	bad = util_secret_arena_dup(a, "bad\r\nsecret", 11);
	assert_non_null(keep);
	assert_non_null(bad);
	util_secret_arena_drop(a, bad, 11);
	for (size_t i = 0; i < 12; i++)
		assert_int_equal(bad[i], 0);
	/* the last allocation's space is used again */
	again = util_secret_arena_dup(a, "next", 4);
	assert_ptr_equal(again, bad);
	/* one in the middle is only wiped */
	mid = util_secret_arena_dup(a, "middle", 6);
	after = util_secret_arena_dup(a, "after", 5);
	util_secret_arena_drop(a, mid, 6);
	assert_int_equal(mid[0], 0);
	assert_string_equal(keep, "keep-me");
	assert_string_equal(again, "next");
	assert_string_equal(after, "after");
	util_secret_arena_free(a);
}

static void
test_read_file(void **state)
{
	util_secret_arena_t *a = util_secret_arena_new();
	char err[512] = "", *out = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(a);
	write_file("ok.secret", "sk-file-secret\n", 0600);
	write_file("open.secret", "leaky\n", 0644);
	assert_int_equal(util_secret_arena_read_file(a, tmp_path("ok.secret"), 100, &out, &len,
	    err, sizeof(err)), 0);
	assert_int_equal(len, 15);
	assert_string_equal(out, "sk-file-secret\n");
	mapping_flags(out, err, sizeof(err));
	assert_non_null(strstr(err, " dd"));
	assert_int_equal(util_secret_arena_read_file(a, tmp_path("open.secret"), 100, &out,
	    &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "readable by group or others (mode 644)"));
	assert_int_equal(util_secret_arena_read_file(a, tmp_path("absent"), 100, &out, &len,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "absent: No such file or directory"));
	assert_int_equal(util_secret_arena_read_file(a, tmp_path("ok.secret"), 4, &out, &len,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than 4 bytes"));
	util_secret_arena_free(a);
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
		util_secret_arena_t *a = util_secret_arena_new();
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
		if (util_secret_arena_read_file(a, tmp_path("oom.secret"), 100, &out, &len, err,
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
