/*
 * test_minttok.c — token endpoint answers: RFC 6749 tokens and errors, GitHub's token /
 * expires_at and message forms, expires_in as a number or digits and its bounds, the
 * default lifetime, characters a header cannot carry, duplicates, mixed shapes, sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "minttok.h"

#define NOW	1796558400	/* 2026-12-06T12:00:00Z */

static int
parse(const char *s, minttok_t *t)
{
	return minttok_parse(s, strlen(s), NOW, t);
}

static void
test_oauth_token(void **state)
{
	minttok_t t;

	(void)state;
	assert_int_equal(parse("{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\",\"token_type\":"
	    "\"Bearer\",\"expires_in\":3600,\"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\","
	    "\"scope\":\"read write\",\"id_token\":{\"x\":1}}", &t), MINTTOK_TOKEN);
	assert_string_equal(t.access_token, "2YotnFZFEjr1zCsicMWpAA");
	assert_int_equal(t.access_token_len, 22);
	assert_string_equal(t.refresh_token, "tGzv3JOkF0XG5Qx2TlKWIA");
	assert_int_equal(t.expires_in, 3600);
	assert_string_equal(t.token_type, "Bearer");
	assert_string_equal(t.scope, "read write");
	minttok_free(&t);
	assert_int_equal(parse("{\"access_token\":\"a\",\"expires_in\":\"120\"}", &t),
	    MINTTOK_TOKEN);
	assert_int_equal(t.expires_in, 120);
	assert_null(t.refresh_token);
	assert_string_equal(t.token_type, "Bearer");
	minttok_free(&t);
	assert_int_equal(parse("{\"access_token\":\"a\"}", &t), MINTTOK_TOKEN);
	assert_int_equal(t.expires_in, MINTTOK_EXPIRES_DEFAULT_S);
	minttok_free(&t);
}

static void
test_github_token(void **state)
{
	minttok_t t;

	(void)state;
	assert_int_equal(parse("{\"token\":\"ghs_16C7e42F292c6912E7710c838347Ae178B4a\","
	    "\"expires_at\":\"2026-12-06T13:00:00Z\",\"permissions\":{\"contents\":\"read\"},"
	    "\"repositories\":[]}", &t), MINTTOK_TOKEN);
	assert_string_equal(t.access_token, "ghs_16C7e42F292c6912E7710c838347Ae178B4a");
	assert_int_equal(t.expires_in, 3600);
	minttok_free(&t);
	assert_int_equal(parse("{\"token\":\"ghs_x\",\"expires_at\":\"2026-12-06T12:00:00Z\"}",
	    &t), MINTTOK_E_FORMAT);		/* already expired */
	assert_int_equal(parse("{\"token\":\"ghs_x\",\"expires_at\":\"2026-12-06 13:00\"}", &t),
	    MINTTOK_E_FORMAT);
	assert_int_equal(parse("{\"message\":\"Bad credentials\",\"documentation_url\":\"x\"}",
	    &t), MINTTOK_ERROR);
	assert_string_equal(t.error, "github_error");
	assert_string_equal(t.error_description, "Bad credentials");
}

static void
test_errors(void **state)
{
	minttok_t t;

	(void)state;
	assert_int_equal(parse("{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"refresh token reused\\n\\u0001\"}", &t), MINTTOK_ERROR);
	assert_string_equal(t.error, "invalid_grant");
	assert_string_equal(t.error_description, "refresh token reused??");
	assert_null(t.access_token);
	assert_int_equal(parse("{\"error\":\"bad code\"}", &t), MINTTOK_E_FORMAT);
	assert_int_equal(parse("{\"error\":7}", &t), MINTTOK_E_FORMAT);
	assert_int_equal(parse("{\"access_token\":\"a\",\"error\":\"x\"}", &t),
	    MINTTOK_E_FORMAT);
	assert_null(t.access_token);		/* no half answer */
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "[]", "\"x\"", "{", "{}", "{\"access_token\":\"\"}",
		"{\"access_token\":\"a b\"}", "{\"access_token\":\"a\\r\\nX: y\"}",
		"{\"access_token\":\"\\u00e9\"}", "{\"access_token\":1}",
		"{\"access_token\":\"a\",\"access_token\":\"b\"}",
		"{\"access_token\":\"a\",\"token\":\"b\"}",
		"{\"access_token\":\"a\",\"expires_in\":0}",
		"{\"access_token\":\"a\",\"expires_in\":-5}",
		"{\"access_token\":\"a\",\"expires_in\":1.5}",
		"{\"access_token\":\"a\",\"expires_in\":\"12x\"}",
		"{\"access_token\":\"a\",\"expires_in\":99999999999}",
		"{\"access_token\":\"a\",\"expires_in\":60,\"expires_at\":\"2027-01-01T00:00:00Z\"}",
		"{\"access_token\":\"a\",\"token_type\":\"Bea rer\"}",
		"{\"access_token\":\"a\",\"refresh_token\":\"\"}",
		"{\"access_token\":\"a\",\"scope\":5}",
	};
	minttok_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &t), MINTTOK_E_FORMAT);
		assert_non_null(t.why);
		assert_null(t.access_token);
	}
}

static void
test_sizes(void **state)
{
	size_t n = MINTTOK_TOKEN_MAX + 64;
	char *s = malloc(n);
	minttok_t t;

	(void)state;
	assert_non_null(s);
	/* the longest token accepted, then one byte more */
	snprintf(s, n, "{\"access_token\":\"%0*d\"}", MINTTOK_TOKEN_MAX, 7);
	assert_int_equal(parse(s, &t), MINTTOK_TOKEN);
	assert_int_equal(t.access_token_len, MINTTOK_TOKEN_MAX);
	minttok_free(&t);
	snprintf(s, n, "{\"access_token\":\"%0*d\"}", MINTTOK_TOKEN_MAX + 1, 7);
	assert_int_equal(parse(s, &t), MINTTOK_E_FORMAT);
	assert_int_equal(minttok_parse(s, MINTTOK_MAX_INPUT + 1, NOW, &t), MINTTOK_E_FORMAT);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oauth_token),
		cmocka_unit_test(test_github_token),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
