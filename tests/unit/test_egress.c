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

static struct sockaddr_in
v4(const char *ip, uint16_t port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return sin;
}

/* Transparent agreement: the dialled IP must be a permitted answer for the name. */
static void
test_agree(void **state)
{
	const policy_t *p = *state;
	struct sockaddr_storage c[3];
	socklen_t l[3];
	egress_result_t res;
	struct sockaddr_in d;
	char buf[64];

	memset(c, 0, sizeof(c));
	for (int i = 0; i < 3; i++) {
		struct sockaddr_in a = v4(i == 0 ? "8.8.8.8" : i == 1 ? "10.1.1.1" : "1.1.1.1", 0);

		memcpy(&c[i], &a, sizeof(a));
		l[i] = sizeof(a);
	}
	assert_int_equal(egress_pick(p, "x", c, l, 3, 443, &res), 0);
	assert_int_equal(res.npermitted, 2);	/* 10.1.1.1 is private, not permitted */
	d = v4("1.1.1.1", 8443);
	assert_int_equal(egress_agree(&res, (struct sockaddr *)&d), 0);
	netaddr_format((struct sockaddr *)&res.addr, buf, sizeof(buf));
	assert_string_equal(buf, "1.1.1.1");
	assert_int_equal(ntohs(((struct sockaddr_in *)&res.addr)->sin_port), 8443);
	d = v4("10.1.1.1", 443);	/* an answer, but one the classifier refused */
	assert_int_equal(egress_agree(&res, (struct sockaddr *)&d), -1);
	d = v4("9.9.9.9", 443);		/* not an answer at all */
	assert_int_equal(egress_agree(&res, (struct sockaddr *)&d), -1);
	/* the upstream.resolve map: the name agrees with its mapped address only */
	assert_int_equal(egress_resolve_static(p, "api.example.test", 443, &res), 1);
	d = v4("127.0.0.3", 443);
	assert_int_equal(egress_agree(&res, (struct sockaddr *)&d), 0);
	d = v4("127.0.0.2", 443);
	assert_int_equal(egress_agree(&res, (struct sockaddr *)&d), -1);
	/* a name mapped to a private address the policy does not allow never agrees */
	assert_int_equal(egress_resolve_static(p, "internal.example.test", 443, &res), 1);
	assert_int_equal(res.ok, 0);
	assert_int_equal(egress_agree(&res, (struct sockaddr *)&d), -1);
}

/* No SNI: the original destination's IP literal is what the egress guard classifies. */
static void
test_literal_destination(void **state)
{
	const policy_t *p = *state;
	egress_result_t res;
	const char *why;

	assert_int_equal(egress_resolve_static(p, "169.254.169.254", 443, &res), 1);
	assert_int_equal(res.ok, 0);
	assert_string_equal(res.code, "address_denied");
	assert_int_equal(egress_resolve_static(p, "10.0.0.1", 443, &res), 1);
	assert_int_equal(res.ok, 0);
	assert_int_equal(egress_resolve_static(p, "127.0.0.3", 443, &res), 1);
	assert_int_equal(res.ok, 1);
	/* egress.default deny: an IP literal is not an allowed host either */
	assert_int_equal(egress_decide(p, "127.0.0.3", 443, &why), EGRESS_DENY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_pick_first_allowed),
		cmocka_unit_test(test_agree),
		cmocka_unit_test(test_literal_destination),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
