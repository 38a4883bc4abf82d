/* test_scope.c — host patterns with ports, methods, path normalization, path globs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "scope.h"

#define LIST(...) { .n = SG_ARRAY_LEN(((char *[]){__VA_ARGS__})), \
	.v = (char *[]){__VA_ARGS__} }

static void
test_host_pattern_valid(void **state)
{
	static const char *ok[] = {
		"api.x.com", "API.X.COM", "*.x.com", "*.com", "api.x.com:8443", "*.x.com:1",
		"localhost", "a_b.x-y.com", "api.x.com.", "[::1]", "[::1]:8443", "10.0.0.1:80",
	};
	static const char *bad[] = {
		"", "*", "*.", "*x.com", "a.*.com", "x.*", "**.x.com", "api.x.com:",
		"api.x.com:0", "api.x.com:65536", "api.x.com:08", "api.x.com:+1", "a..b",
		".x.com", "api x.com", "::1", "[::1", "[]", "[::1]x", "[::g]", "api.x.com:443:1",
		"*.x.com/", "api.x.com%00", "..",
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(ok); i++)
		if (!scope_host_pattern_valid(ok[i]))
			fail_msg("\"%s\" should be valid", ok[i]);
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++)
		if (scope_host_pattern_valid(bad[i]))
			fail_msg("\"%s\" should be invalid", bad[i]);
}

static void
test_host_match_table(void **state)
{
	static const struct { const char *pat, *host; uint16_t port; bool m; } t[] = {
		{"api.x.com", "api.x.com", 443, true},
		{"api.x.com", "api.x.com", 80, true},
		{"api.x.com", "API.X.Com", 443, true},
		{"API.X.COM", "api.x.com", 443, true},
		{"api.x.com", "api.x.com.", 443, true},
		{"api.x.com.", "api.x.com", 443, true},
		{"api.x.com", "api.x.com", 8443, false},
		{"api.x.com", "api.x.com", 0, false},
		{"api.x.com", "x.com", 443, false},
		{"api.x.com", "api.x.com.evil.com", 443, false},
		{"api.x.com", "evilapi.x.com", 443, false},
		{"api.x.com", "api.x.co", 443, false},
		{"api.x.com:8443", "api.x.com", 8443, true},
		{"api.x.com:8443", "api.x.com", 443, false},
		{"api.x.com:8443", "api.x.com", 80, false},
		{"api.x.com:443", "api.x.com", 443, true},
		{"api.x.com:443", "api.x.com", 80, false},
		{"*.x.com", "a.x.com", 443, true},
		{"*.x.com", "a.b.x.com", 443, true},
		{"*.x.com", "A.X.COM", 80, true},
		{"*.x.com", "x.com", 443, false},
		{"*.x.com", "evilx.com", 443, false},
		{"*.x.com", ".x.com", 443, false},
		{"*.x.com", "a.x.com.evil.com", 443, false},
		{"*.x.com", "a.x.com", 8080, false},
		{"*.x.com:8080", "a.x.com", 8080, true},
		{"*", "a.x.com", 443, false},
		{"", "", 443, false},
		{"[::1]", "::1", 443, true},
		{"[::1]", "[::1]", 443, true},
		{"[::1]", "[0:0::1]", 443, true},
		{"[::1]:8443", "::1", 443, false},
		{"[::1]:8443", "[::1]", 8443, true},
		{"[::1]", "::2", 443, false},
		{"10.0.0.1:8080", "10.0.0.1", 8080, true},
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++)
		if (scope_host_match(t[i].pat, t[i].host, t[i].port) != t[i].m)
			fail_msg("%s vs %s:%u want %d", t[i].pat, t[i].host, t[i].port, t[i].m);
}

static void
test_hosts_match_list(void **state)
{
	policy_strlist_t empty = {0, NULL};
	policy_strlist_t l = LIST("api.x.com", "*.y.org:8443");

	(void)state;
	assert_false(scope_hosts_match(&empty, "api.x.com", 443));
	assert_true(scope_hosts_match(&l, "api.x.com", 443));
	assert_true(scope_hosts_match(&l, "a.y.org", 8443));
	assert_false(scope_hosts_match(&l, "a.y.org", 443));
	assert_false(scope_hosts_match(&l, "y.org", 8443));
	assert_false(scope_hosts_match(&l, "api.x.com", 8443));
}

static void
test_method_match(void **state)
{
	policy_strlist_t empty = {0, NULL};
	policy_strlist_t l = LIST("GET", "POST");

	(void)state;
	assert_true(scope_method_match(&empty, "DELETE"));
	assert_true(scope_method_match(&l, "GET"));
	assert_true(scope_method_match(&l, "POST"));
	assert_false(scope_method_match(&l, "get"));
	assert_false(scope_method_match(&l, "DELETE"));
	assert_false(scope_method_match(&l, "GETX"));
	assert_false(scope_method_match(&l, ""));
}

static void
test_path_normalize_ok(void **state)
{
	static const struct { const char *in, *out; } t[] = {
		{"/", "/"},
		{"/v1/models", "/v1/models"},
		{"/v1/models?x=/../y", "/v1/models"},
		{"/v1/a#frag/../b", "/v1/a"},
		{"/v1/%7Euser", "/v1/~user"},
		{"/v1/%61%62c", "/v1/abc"},
		{"/v1/a%20b", "/v1/a%20b"},
		{"/v1/a%3bb", "/v1/a%3Bb"},
		{"/v1/...", "/v1/..."},
		{"/v1/.well-known/x", "/v1/.well-known/x"},
		{"/v1/..a", "/v1/..a"},
		{"/v1/a..", "/v1/a.."},
		{"/v1//x", "/v1//x"},
		{"/v1/%e2%82%ac", "/v1/%E2%82%AC"},
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		int n = scope_path_normalize(t[i].in, strlen(t[i].in), out, sizeof(out));

		if (n < 0)
			fail_msg("\"%s\" refused", t[i].in);
		assert_string_equal(out, t[i].out);
		assert_int_equal(n, strlen(t[i].out));
	}
}

static void
test_path_normalize_refused(void **state)
{
	static const char *bad[] = {
		"", "v1/models", "*", "http://x/", "/v1/../admin", "/v1/./admin", "/..", "/.",
		"/v1/..", "/v1/.", "/v1/%2e%2e/admin", "/v1/%2E%2E/admin", "/v1/.%2e/admin",
		"/v1/%2e/admin", "/v1/%2Fadmin", "/v1/%2fadmin", "/v1/%5cadmin", "/v1/%5Cadmin",
		"/v1\\admin", "/v1/%00", "/v1/%", "/v1/%2", "/v1/%zz", "/v1/a b", "/v1/a\tb",
		"/v1/..;/admin", "/v1/.;x/admin", "/v1/\x7f", "/v1/\xc3\xa9",
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++)
		if (scope_path_normalize(bad[i], strlen(bad[i]), out, sizeof(out)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
}

static void
test_path_normalize_edges(void **state)
{
	char out[8];
	static const char with_nul[] = "/v1\0/x";

	(void)state;
	/* NUL inside the given length is refused; len bounds the read. */
	assert_int_equal(scope_path_normalize(with_nul, sizeof(with_nul) - 1, out, 8), -1);
	assert_int_equal(scope_path_normalize(with_nul, 3, out, 8), 3);
	assert_string_equal(out, "/v1");
	/* Output room: 7 chars + NUL fit in 8, 8 chars do not. */
	assert_int_equal(scope_path_normalize("/abcdef", 7, out, 8), 7);
	assert_int_equal(scope_path_normalize("/abcdefg", 8, out, 8), -1);
	assert_int_equal(scope_path_normalize("/a%20bc", 7, out, 8), 7);
	assert_int_equal(scope_path_normalize("/a%20bcd", 8, out, 8), -1);
	/* Decoding shrinks: 9 input bytes become 5. */
	assert_int_equal(scope_path_normalize("/%61%62cd", 9, out, 8), 5);
	assert_string_equal(out, "/abcd");
}

static void
test_path_match_table(void **state)
{
	static const struct { const char *pat, *path; bool m; } t[] = {
		{"/v1/*", "/v1/models", true},
		{"/v1/*", "/v1/a/b/c", true},
		{"/v1/*", "/v1/", true},
		{"/v1/*", "/v1", false},
		{"/v1/*", "/v2/models", false},
		{"/v1/*/files", "/v1/x/files", true},
		{"/v1/*/files", "/v1/x/y/files", true},
		{"/v1/*/files", "/v1/x/files/z", false},
		{"*.json", "/a/b.json", true},
		{"*.json", "/a/b.jsonx", false},
		{"/a*b*c", "/aXbYc", true},
		{"/a*b*c", "/aXcYb", false},
		{"/v1/", "/v1/models", true},
		{"/v1/", "/v1", false},
		{"/v1/", "/v10/models", false},
		{"/v1/models", "/v1/models", true},
		{"/v1/models", "/v1/models/x", false},
		{"/v1/models", "/v1/model", false},
		{"*", "/anything", true},
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		policy_strlist_t l = {1, (char **)&t[i].pat};

		if (scope_path_match(&l, t[i].path) != t[i].m)
			fail_msg("%s vs %s want %d", t[i].pat, t[i].path, t[i].m);
	}
}

static void
test_path_match_list(void **state)
{
	policy_strlist_t empty = {0, NULL};
	policy_strlist_t l = LIST("/v1/chat/*", "/v1/models");

	(void)state;
	assert_true(scope_path_match(&empty, "/admin"));
	assert_true(scope_path_match(&l, "/v1/chat/completions"));
	assert_true(scope_path_match(&l, "/v1/models"));
	assert_false(scope_path_match(&l, "/v1/files"));
}

/* End to end: a traversal never reaches the matcher, a clean path does. */
static void
test_path_normalize_then_match(void **state)
{
	policy_strlist_t l = LIST("/v1/*");
	char out[64];
	const char *p1 = "/v1/../admin", *p2 = "/v1/%6dodels?q=1";

	(void)state;
	assert_int_equal(scope_path_normalize(p1, strlen(p1), out, sizeof(out)), -1);
	assert_int_equal(scope_path_normalize(p2, strlen(p2), out, sizeof(out)), 10);
	assert_string_equal(out, "/v1/models");
	assert_true(scope_path_match(&l, out));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_pattern_valid),
		cmocka_unit_test(test_host_match_table),
		cmocka_unit_test(test_hosts_match_list),
		cmocka_unit_test(test_method_match),
		cmocka_unit_test(test_path_normalize_ok),
		cmocka_unit_test(test_path_normalize_refused),
		cmocka_unit_test(test_path_normalize_edges),
		cmocka_unit_test(test_path_match_table),
		cmocka_unit_test(test_path_match_list),
		cmocka_unit_test(test_path_normalize_then_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
