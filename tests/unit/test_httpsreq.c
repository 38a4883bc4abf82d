/*
 * test_httpsreq.c — the shared HTTPS request's contract (its transport is exercised
 * against a TLS server by test_stsclient): done never runs inside httpsreq_start but from
 * the loop, exactly once, with egress_denied for a host the egress rules deny (the wire
 * freed); a request cancelled before the loop runs never calls done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <sodium.h>

#include "httpsreq.h"
#include "policy.h"
#include "secmem.h"

#define DENY_ALL "{\"egress\": {\"default\": \"deny\"}}"

struct seen {
	int calls;
	char code[64];
};

static void
done_cb(const httpsreq_result_t *res, void *arg)
{
	struct seen *s = arg;

	s->calls++;
	assert_false(res->ok);
	snprintf(s->code, sizeof(s->code), "%s", res->code);
}

static policy_t *
load(void)
{
	policy_errors_t errs = {0};
	policy_t *p = policy_load_buffer("t.json", DENY_ALL, strlen(DENY_ALL), &errs);

	assert_non_null(p);
	policy_errors_free(&errs);
	return p;
}

static void
test_egress_denied_from_the_loop(void **state)
{
	struct event_base *base = event_base_new();
	struct evdns_base *dns = httpsreq_dns_new(base);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	policy_t *p = load();
	httpsreq_target_t t = {p, "token.example.test", 443, "the token endpoint"};
	struct seen s = {0};
	httpsreq_t *r;

	(void)state;
	r = httpsreq_start(base, dns, ctx, &t, secmem_wipe_dup("GET / HTTP/1.1\r\n\r\n", 18),
	    18, 1024, 5, done_cb, &s);
	assert_non_null(r);
	assert_int_equal(s.calls, 0);		/* never inside httpsreq_start */
	event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.code, "egress_denied");
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 1);
	policy_unref(p);
	SSL_CTX_free(ctx);
	evdns_base_free(dns, 0);
	event_base_free(base);
}

static void
test_cancel_before_the_loop(void **state)
{
	struct event_base *base = event_base_new();
	struct evdns_base *dns = httpsreq_dns_new(base);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	policy_t *p = load();
	httpsreq_target_t t = {p, "token.example.test", 443, NULL};
	struct seen s = {0};
	httpsreq_t *r;

	(void)state;
	r = httpsreq_start(base, dns, ctx, &t, secmem_wipe_dup("x", 1), 1, 1024, 5, done_cb,
	    &s);
	assert_non_null(r);
	httpsreq_cancel(r);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 0);
	policy_unref(p);
	SSL_CTX_free(ctx);
	evdns_base_free(dns, 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_egress_denied_from_the_loop),
		cmocka_unit_test(test_cancel_before_the_loop),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
