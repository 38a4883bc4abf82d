/* test_util.c — durations, hex, files, relative paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "secmem.h"
#include "util.h"

static void
test_duration_ok(void **state)
{
	static const struct { const char *s; uint64_t ms; } ok[] = {
		{"15m", 900000}, {"1h", 3600000}, {"30s", 30000}, {"500ms", 500},
		{"2d", 172800000}, {"1h30m", 5400000}, {"0s", 0},
	};
	uint64_t ms;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(ok); i++) {
		assert_int_equal(util_parse_duration_ms(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
}

static void
test_duration_bad(void **state)
{
	static const char *bad[] = {"", "1x", "m", "15", "-1s", "1.5h", "1h ", "99999999999999999999d"};
	uint64_t ms;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++)
		assert_int_equal(util_parse_duration_ms(bad[i], &ms), -1);
}

/* Known answers: the epoch, the day before, a leap day, a century rule, SigV4's example. */
static void
test_days_from_civil(void **state)
{
	(void)state;
	assert_int_equal(util_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(util_days_from_civil(1969, 12, 31), -1);
	assert_int_equal(util_days_from_civil(2000, 2, 29), 11016);
	assert_int_equal(util_days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(util_days_from_civil(2100, 3, 1) - util_days_from_civil(2100, 2, 28), 1);
	assert_int_equal(util_days_from_civil(2015, 8, 30) * 86400, 1440892800);
}

static void
test_hex_roundtrip(void **state)
{
	uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff}, out[4];
	char hex[9];

	(void)state;
	util_hex_encode(in, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_int_equal(util_hex_decode(" 00AB7fff\n", 10, out, 4), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(util_hex_decode("00ab7f", 6, out, 4), -1);
	assert_int_equal(util_hex_decode("00ab7fzz", 8, out, 4), -1);
}

static void
test_secret_file_mode(void **state)
{
	char path[] = "/tmp/sg-util-XXXXXX", err[256], *buf = NULL;
	size_t len;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc\n", 4), 4);
	close(fd);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(util_read_file(path, 100, 1, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(util_read_file(path, 100, 1, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 4);
	assert_string_equal(buf, "abc\n");
	secmem_guarded_free(buf);
	assert_int_equal(util_read_file(path, 2, 0, &buf, &len, err, sizeof(err)), -1);
	unlink(path);
}

static void
test_write_file_atomic(void **state)
{
	char path[] = "/tmp/sg-util-w-XXXXXX", err[256], *buf = NULL;
	struct stat st;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(util_write_file(path, "hello", 5, 0600, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(util_read_file(path, 100, 0, &buf, NULL, err, sizeof(err)), 0);
	assert_string_equal(buf, "hello");
	free(buf);
	unlink(path);
}

static void
test_path_relative(void **state)
{
	char *p;

	(void)state;
	p = util_path_relative_to("policies/example.json", "../certs/ca.crt");
	assert_string_equal(p, "policies/../certs/ca.crt");
	free(p);
	p = util_path_relative_to("policies/example.json", "/etc/x");
	assert_string_equal(p, "/etc/x");
	free(p);
	p = util_path_relative_to("example.json", "certs/x");
	assert_string_equal(p, "certs/x");
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_ok),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_days_from_civil),
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_secret_file_mode),
		cmocka_unit_test(test_write_file_atomic),
		cmocka_unit_test(test_path_relative),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
