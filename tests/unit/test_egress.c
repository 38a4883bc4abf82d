/* test_egress.c — egress decisions and address picking; no packet leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include <sodium.h>

#include "egress.h"
#include "netaddr.h"

static const char egress_policy[] =
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
	policy_t *p = policy_load_buffer("egress.json", egress_policy, strlen(egress_policy),
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

static void
test_decide(void **state)
{
	const policy_t *p = *state;
	const char *why;

	assert_int_equal(egress_decide(p, "api.example.test", 443, &why), EGRESS_INTERCEPT);
	assert_int_equal(egress_decide(p, "files.pypi.org", 443, &why), EGRESS_TUNNEL);
	assert_int_equal(egress_decide(p, "files.pypi.org", 8080, &why), EGRESS_TUNNEL);
	assert_int_equal(egress_decide(p, "bad.pypi.org", 443, &why), EGRESS_DENY);
	assert_non_null(strstr(why, "deny_hosts"));
	assert_int_equal(egress_decide(p, "pypi.org", 443, &why), EGRESS_DENY);
	assert_int_equal(egress_decide(p, "evil.test", 443, &why), EGRESS_DENY);
	assert_non_null(strstr(why, "not allowed"));
	assert_int_equal(egress_decide(p, "files.test", 8443, &why), EGRESS_TUNNEL);
	assert_int_equal(egress_decide(p, "files.test", 443, &why), EGRESS_DENY);
	/* tunnel_hosts allow a host, without interception */
	assert_int_equal(egress_decide(p, "pinned.example.test", 443, &why), EGRESS_TUNNEL);
}

static void
test_pick_first_allowed(void **state)
{
	const policy_t *p = *state;
	struct sockaddr_storage c[3];
	socklen_t l[3];
	egress_result_t res;
	char buf[64];

	memset(c, 0, sizeof(c));
	for (int i = 0; i < 3; i++) {
		c[i].ss_family = AF_INET;
		l[i] = sizeof(struct sockaddr_in);
	}
	inet_pton(AF_INET, "10.1.1.1", &((struct sockaddr_in *)&c[0])->sin_addr);
	inet_pton(AF_INET, "127.0.0.3", &((struct sockaddr_in *)&c[1])->sin_addr);
	inet_pton(AF_INET, "8.8.8.8", &((struct sockaddr_in *)&c[2])->sin_addr);
	assert_int_equal(egress_pick(p, "x", c, l, 3, 443, &res), 0);
	netaddr_format((struct sockaddr *)&res.addr, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.3");
	assert_int_equal(egress_pick(p, "x", c, l, 1, 443, &res), -1);
	assert_non_null(strstr(res.msg, "private"));
	assert_int_equal(egress_pick(p, "x", c, l, 0, 443, &res), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_pick_first_allowed),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
