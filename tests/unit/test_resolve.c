/* test_resolve.c — egress_resolve answers static entries and literals at once; no DNS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include <sodium.h>

#include "netaddr.h"
#include "resolve.h"

static const char resolve_policy[] =
    "{\"keys\": {\"seal_key\": \"/nonexistent/seal.key\", \"ca_cert\": \"/nonexistent/ca.crt\","
    " \"ca_key\": \"/nonexistent/ca.key\"},"
    " \"upstream\": {\"resolve\": {\"internal.example.test\": \"127.0.0.2\","
    "   \"api.example.test\": \"127.0.0.3\"}},"
    " \"egress\": {\"default\": \"deny\", \"allow_hosts\": [\"*.pypi.org\", \"files.test:8443\"],"
    "   \"deny_hosts\": [\"bad.pypi.org\"], \"tunnel_hosts\": [\"pinned.example.test\"],"
    "   \"allow_private\": [\"127.0.0.3/32\"], \"intercept\": \"credentials\"},"
    " \"credentials\": {\"c\": {\"secret\": {\"value\": \"sk-test-0123456789\"},"
    "   \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.example.test\"]}}}";

static int
setup(void **state)
{
	policy_errors_t errs = {0};
	policy_t *p = policy_load_buffer("resolve.json", resolve_policy, strlen(resolve_policy),
	    &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_message("%s\n", errs.msg[i]);
	policy_errors_free(&errs);
	*state = p;
	return p ? 0 : -1;
}

static int
teardown(void **state)
{
	policy_unref(*state);
	return 0;
}

struct got {
	int calls;
	egress_result_t res;
};

static void
got_cb(const egress_result_t *res, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->res = *res;
}

static void
test_resolve_static_and_literals(void **state)
{
	const policy_t *p = *state;
	struct got g;
	char buf[64];
	static const char *denied[] = {
		"internal.example.test", "127.0.0.1", "127.1", "2130706433", "0x7f000001",
		"0177.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "169.254.169.254",
		"10.0.0.1", "100.64.0.1", "fe80::1", "64:ff9b::a9fe:a9fe",
	};

	memset(&g, 0, sizeof(g));
	/* answered synchronously: no DNS base needed for literals and the static map */
	assert_null(egress_resolve(NULL, p, "api.example.test", 8443, got_cb, &g));
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res.ok, 1);
	netaddr_format((struct sockaddr *)&g.res.addr, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.3");
	assert_int_equal(ntohs(((struct sockaddr_in *)&g.res.addr)->sin_port), 8443);
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		memset(&g, 0, sizeof(g));
		assert_null(egress_resolve(NULL, p, denied[i], 443, got_cb, &g));
		assert_int_equal(g.calls, 1);
		assert_int_equal(g.res.ok, 0);
		assert_string_equal(g.res.code, "address_denied");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_static_and_literals),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
