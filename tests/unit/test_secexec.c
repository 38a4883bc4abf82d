/* test_secexec.c — secret commands: stdout captured, stderr counted and dropped, exit
 * status, a deadline that kills, output bounds, the clean environment. Real processes
 * (/bin/sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "defaults.h"
#include "secexec.h"
#include "secmem.h"

static int
run_sh(const char *script, uint64_t timeout_ms, size_t max, char **out, size_t *len,
    secexec_result_t *r)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)script, NULL};

	return secexec_run(argv, timeout_ms, max, out, len, r);
}

static void
test_stdout_captured(void **state)
{
	secexec_result_t r;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(run_sh("printf 'tok-123\\n'; echo 'oops tok-123' >&2", 5000, 64,
	    &out, &len, &r), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(out, "tok-123\n", 8);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.stderr_bytes, 13);
	assert_false(r.timed_out);
	secmem_guarded_free(out);
}

static void
test_exit_status(void **state)
{
	secexec_result_t r;
	char *out = (char *)"x";
	size_t len = 0;

	(void)state;
	assert_int_equal(run_sh("echo partial; exit 3", 5000, 64, &out, &len, &r), -1);
	assert_null(out);
	assert_int_equal(r.status, 3);
	assert_string_equal(r.what, "exited with status 3");
}

static void
test_timeout_kills(void **state)
{
	secexec_result_t r;
	char *out = NULL;
	size_t len = 0;
	time_t t0 = time(NULL);

	(void)state;
	assert_int_equal(run_sh("exec sleep 30", 200, 64, &out, &len, &r), -1);
	assert_true(r.timed_out);
	assert_int_equal(r.signal, 9);
	assert_null(out);
	assert_true(time(NULL) - t0 < 10);
}

static void
test_too_long(void **state)
{
	secexec_result_t r;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(run_sh("printf '0123456789abcdef'", 5000, 8, &out, &len, &r), -1);
	assert_true(r.too_long);
	assert_null(out);
	/* exactly max is fine */
	assert_int_equal(run_sh("printf '01234567'", 5000, 8, &out, &len, &r), 0);
	assert_int_equal(len, 8);
	secmem_guarded_free(out);
}

static void
test_clean_environment(void **state)
{
	secexec_result_t r;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(setenv("SG_TEST_PARENT_ONLY", "leak", 1), 0);
	assert_int_equal(run_sh("printf '%s|%s' \"$PATH\" \"${SG_TEST_PARENT_ONLY-unset}\"",
	    5000, 256, &out, &len, &r), 0);
	assert_string_equal(out, SG_SECRET_EXEC_PATH "|unset");
	secmem_guarded_free(out);
}

static void
test_cannot_start(void **state)
{
	char *argv[] = {(char *)"/nonexistent/secret-helper", NULL};
	secexec_result_t r;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(secexec_run(argv, 1000, 64, &out, &len, &r), -1);
	assert_null(out);
	assert_non_null(strstr(r.what, "cannot start"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdout_captured),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_timeout_kills),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_clean_environment),
		cmocka_unit_test(test_cannot_start),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
