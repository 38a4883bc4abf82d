/* test_swap.c — swap_request / swap_body with a real keyring, cache, rate table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "awscred.h"
#include "handle.h"
#include "handlecache.h"
#include "http.h"
#include "policy.h"
#include "ratelimit.h"
#include "registry.h"
#include "revoke.h"
#include "seal.h"
#include "secmem.h"
#include "sigv4.h"
#include "stscache.h"
#include "stats.h"
#include "swap.h"
#include "util.h"

#define NOW 1700000000
#define BEAR_SECRET "sk-bear-SECRET"
#define BAS_SECRET "bas-SECRET"
#define QRY_SECRET "q s&cret"
#define QRY_ENC "q%20s%26cret"
#define AWS_SECRET "aws-wJalrXUtnFEMI-SECRET"
#define AWS_AKID "AKIAIOSFODNN7EXAMPLE"

static const char policy_json[] =
    "{\"credentials\": {"
    "  \"bear\": {\"secret\": {\"value\": \"" BEAR_SECRET "\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"]},"
    "  \"bas\": {\"secret\": {\"value\": \"" BAS_SECRET "\"},"
    "    \"inject\": {\"type\": \"basic\", \"username\": \"alice\"}, \"hosts\": [\"api.test\"]},"
    "  \"qry\": {\"secret\": {\"value\": \"" QRY_SECRET "\"},"
    "    \"inject\": {\"type\": \"query\", \"param\": \"key\"}, \"hosts\": [\"api.test\"]},"
    "  \"mac\": {\"secret\": {\"value\": \"key\"},"
    "    \"inject\": {\"type\": \"hmac\"}, \"hosts\": [\"api.test\"]},"
    "  \"bod\": {\"secret\": {\"value\": \"bod-SECRET\"},"
    "    \"inject\": {\"type\": \"body\"}, \"hosts\": [\"body.test\"]},"
    "  \"rl\": {\"secret\": {\"value\": \"rl-SECRET\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"],"
    "    \"rate\": {\"requests\": 1, \"per\": \"1m\"}},"
    "  \"awsc\": {\"secret\": {\"value\": \"" AWS_SECRET "\"},"
    "    \"inject\": {\"type\": \"aws_sigv4\"}, \"hosts\": [\"*.amazonaws.com\"],"
    "    \"aws\": {\"access_key_id\": {\"value\": \"" AWS_AKID "\"},"
    "      \"services\": [\"s3\"]}},"
    "  \"awsr\": {\"secret\": {\"value\": \"" AWS_SECRET "\"},"
    "    \"inject\": {\"type\": \"aws_sigv4\"}, \"hosts\": [\"*.amazonaws.com\"],"
    "    \"aws\": {\"access_key_id\": {\"value\": \"" AWS_AKID "\"},"
    "      \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": "
    "      \"arn:aws:iam::123456789012:role/r\"}}},"
    "  \"gh\": {\"secret\": {\"value\": \"gh-SECRET\"},"
    "    \"inject\": {\"type\": \"basic\", \"username\": \"x\"}, \"hosts\": [\"git.test\"],"
    "    \"git\": {\"push\": {\"refs\": [\"refs/heads/agent/*\"]}}},"
    "  \"ech\": {\"secret\": {\"value\": \"ech-SECRET\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"chat.test\"],"
    "    \"echo_ok_in_body\": true},"
    "  \"ech2\": {\"secret\": {\"value\": \"ech2-SECRET\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"chat2.test\"],"
    "    \"echo_ok_in_body\": true}},"
    " \"sandboxes\": {"
    "  \"sb-1\": {\"addresses\": [\"10.0.2.15/32\"],"
    "    \"credentials\": [\"bear\", \"bas\", \"qry\", \"mac\", \"bod\", \"rl\", \"awsc\","
    "      \"awsr\", \"gh\", \"ech\", \"ech2\"]},"
    "  \"sb-2\": {\"addresses\": [\"10.0.3.0/24\"], \"credentials\": [\"bear\", \"ech\"]}},"
    " \"sandbox_templates\": {\"t\": {\"credentials\": [\"bear\", \"rl\"]}}}";

/* The failed-handle throttle at 3 per 30 s: a token back every 10 s. */
static const char throttle_json[] =
    "{\"limits\": {\"failed_handles\": 3, \"failed_handles_window\": \"30s\"},"
    " \"credentials\": {"
    "  \"bear\": {\"secret\": {\"value\": \"" BEAR_SECRET "\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"]},"
    "  \"bod\": {\"secret\": {\"value\": \"bod-SECRET\"},"
    "    \"inject\": {\"type\": \"body\"}, \"hosts\": [\"body.test\"]},"
    "  \"rl\": {\"secret\": {\"value\": \"rl-SECRET\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"],"
    "    \"rate\": {\"requests\": 1, \"per\": \"1h\"}}},"
    " \"sandboxes\": {"
    "  \"sb-1\": {\"addresses\": [\"10.0.2.15/32\"], \"credentials\": [\"bear\", \"bod\", \"rl\"]},"
    "  \"sb-2\": {\"addresses\": [\"10.0.3.0/24\"], \"credentials\": [\"bear\"]},"
    "  \"sb-t\": {\"addresses\": [\"10.0.4.0/24\"], \"credentials\": [\"bear\"],"
    "    \"token\": {\"value\": \"tok-T\"}}}}";

/* The same with the throttle off. */
static const char off_json[] =
    "{\"limits\": {\"failed_handles\": 0},"
    " \"credentials\": {"
    "  \"bear\": {\"secret\": {\"value\": \"" BEAR_SECRET "\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"]}},"
    " \"sandboxes\": {"
    "  \"sb-1\": {\"addresses\": [\"10.0.2.15/32\"], \"credentials\": [\"bear\"]},"
    "  \"sb-2\": {\"addresses\": [\"10.0.3.0/24\"], \"credentials\": [\"bear\"]}}}";

/* swap_finish_body: body credentials with and without plain http, a signer beside them. */
static const char fin_json[] =
    "{\"credentials\": {"
    "  \"bod\": {\"secret\": {\"value\": \"bod-SECRET\"},"
    "    \"inject\": {\"type\": \"body\", \"placeholder\": \"{{BOD}}\"},"
    "    \"hosts\": [\"body.test\"]},"
    "  \"bodp\": {\"secret\": {\"value\": \"bodp-SECRET\"},"
    "    \"inject\": {\"type\": \"body\"}, \"hosts\": [\"body.test\"],"
    "    \"allow_plain_http\": true},"
    "  \"mac\": {\"secret\": {\"value\": \"mac-key-SECRET\"},"
    "    \"inject\": {\"type\": \"hmac\", \"name\": \"X-Sig\", \"format\": \"sig=%s\"},"
    "    \"hosts\": [\"body.test\"]}},"
    " \"sandboxes\": {"
    "  \"sb-1\": {\"addresses\": [\"10.0.2.15/32\"],"
    "    \"credentials\": [\"bod\", \"bodp\", \"mac\"]}}}";

static policy_t *pol, *tpol, *offpol, *finpol;
static seal_keyring_t *kr;
static seal_key_t *stranger;

struct t {
	handlecache_t *hc;
	ratelimit_t *rl;
	swap_env_t env;
	struct sockaddr_storage peer;
	http_head_t h;
	char *msg;
	swap_req_t req;
	plan_t out;
};

static seal_key_t *
key_seeded(uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, sizeof(seed));
	return seal_key_from_seed(seed);
}

static char *
mint_full(const seal_key_t *key, const char *cred, const char *sb, int64_t iat, int64_t exp,
    char *hid_out)
{
	handle_claims_t c;
	char *text = NULL;

	memset(&c, 0, sizeof(c));
	c.cred = (char *)cred;
	c.sb = (char *)sb;
	c.iat = iat;
	c.exp = exp;
	assert_int_equal(handle_mint(key, &c, &text), HANDLE_OK);
	if (hid_out)
		strcpy(hid_out, c.hid);
	return text;
}

static char *
mint(const char *cred, const char *sb)
{
	return mint_full(seal_keyring_current(kr), cred, sb, NOW - 60, NOW + 900, NULL);
}

static void
t_peer(struct t *t, const char *addr)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&t->peer;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t->peer;

	memset(&t->peer, 0, sizeof(t->peer));
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, addr, &v6->sin6_addr), 1);
		v6->sin6_family = AF_INET6;
	}
}

static void
t_init(struct t *t)
{
	memset(t, 0, sizeof(*t));
	t->hc = handlecache_new(64);
	t->rl = ratelimit_new(4096);	/* 64 per stripe: no test loses a bucket to eviction */
	assert_non_null(t->hc);
	assert_non_null(t->rl);
	t->env.policy = pol;
	t->env.keyring = kr;
	t->env.cache = t->hc;
	t->env.rl = t->rl;
	t->env.now = NOW;
	t->env.now_ms = 1000000;
	t_peer(t, "10.0.2.15");
}

static void
t_head(struct t *t, const char *host, const char *fmt, ...)
{
	http_parser p;
	const char *why = NULL;
	va_list ap;

	http_head_clear(&t->h);
	free(t->msg);
	t->msg = malloc(8192);
	va_start(ap, fmt);
	vsnprintf(t->msg, 8192, fmt, ap);
	va_end(ap);
	memset(&t->h, 0, sizeof(t->h));
	http_parser_init(&p, HTTP_REQUEST);
	if (http_head_parse(&p, t->msg, strlen(t->msg), &t->h, HTTP_GET, &why) != 0)
		fail_msg("parse: %s", why);
	memset(&t->req, 0, sizeof(t->req));
	t->req.head = &t->h;
	t->req.target = t->h.target;
	t->req.host = host;
	t->req.port = 443;
	t->req.peer = (const struct sockaddr *)&t->peer;
}

static void
t_fini(struct t *t)
{
	plan_free(&t->out);
	http_head_clear(&t->h);
	free(t->msg);
	handlecache_free(t->hc);
	ratelimit_free(t->rl);
}

static void
ok(struct t *t)
{
	if (swap_request(&t->env, &t->req, &t->out) != 0)
		fail_msg("denied %u %s: %s", t->out.status, t->out.code, t->out.message);
	assert_int_equal(t->out.status, 0);
}

static void
deny(struct t *t, unsigned status, const char *code)
{
	assert_int_equal(swap_request(&t->env, &t->req, &t->out), -1);
	if (t->out.status != status || strcmp(t->out.code, code) != 0)
		fail_msg("got %u %s (%s), want %u %s", t->out.status, t->out.code,
		    t->out.message, status, code);
	assert_null(strstr(t->out.message, "SECRET"));
}

static char *
b64(const char *s)
{
	size_t n = sodium_base64_encoded_len(strlen(s), sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(n);

	sodium_bin2base64(out, n, (const unsigned char *)s, strlen(s),
	    sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* --- rotating secrets (secval.h) ----------------------------------------------------- */

static const char live_json[] =
    "{\"credentials\": {"
    "  \"live\": {\"secret\": {\"exec\": [\"sh\", \"-c\", \"exit 1\"], \"ttl\": \"1m\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"]}},"
    " \"sandboxes\": {\"sb-1\": {\"addresses\": [\"10.0.2.15/32\"],"
    "    \"credentials\": [\"live\"]}}}";

/* One request of credential live with handle h on t's env; its Authorization value. */
static const char *
live_request(struct t *t, const char *h)
{
	const http_field_t *f;

	plan_free(&t->out);
	t_head(t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer "
	    "%s\r\n\r\n", h);
	if (swap_request(&t->env, &t->req, &t->out) != 0)
		return NULL;
	f = http_head_get(&t->h, "Authorization");
	return inject_field_value(&t->h, &t->out.edits, (size_t)(f - t->h.fields));
}

/*
 * A request takes the value current when it is decided and keeps it (the plan holds a
 * reference) while a rotation publishes a new one; the replaced value is scrubbed until
 * its grace period ends; no value, or an expired one, is 502 secret_unavailable.
 */
static void
test_rotating_secret(void **state)
{
	policy_errors_t errs;
	policy_t *lp = policy_load_buffer("/tmp/sg-swap-live.json", live_json,
	    strlen(live_json), &errs);
	const policy_credential_t *cr;
	struct t t, t1;
	char *h = mint("live", "sb-1");
	secval_t *v1, *v2;
	bool rotated;

	(void)state;
	assert_non_null(lp);
	policy_errors_free(&errs);
	cr = policy_credential_find(lp, "live");
	t_init(&t);
	t.env.policy = lp;
	/* no value yet */
	assert_null(live_request(&t, h));
	assert_int_equal(t.out.status, 502);
	assert_string_equal(t.out.code, "secret_unavailable");
	/* the first value, usable for 5 s */
	v1 = secval_new("live-v1-SECRET", 14, t.env.now_ms + 5000);
	(void)snapshot_publish(cr->live, v1);
	t1 = t;		/* t1: a request in flight across the rotation */
	plan_init(&t1.out);
	memset(&t1.h, 0, sizeof(t1.h));
	t1.msg = NULL;
	assert_string_equal(live_request(&t1, h), "Bearer live-v1-SECRET");
	assert_int_equal(t1.out.nscrub, 1);
	/* rotation: v1 scrubbed for 1 s more */
	v2 = secval_next(v1, "live-v2-SECRET", 14, t.env.now_ms + 5000, t.env.now_ms + 1000,
	    &rotated);
	assert_true(rotated);
	(void)snapshot_publish(cr->live, v2);
	assert_string_equal(live_request(&t, h), "Bearer live-v2-SECRET");
	assert_int_equal(t.out.nscrub, 2);
	assert_string_equal(t.out.scrub[0].secret, "live-v2-SECRET");
	assert_string_equal(t.out.scrub[1].secret, "live-v1-SECRET");
	assert_string_equal(t.out.scrub[1].handle, h);
	/* the request in flight still has v1, and holds the only reference to it */
	assert_string_equal(t1.out.scrub[0].secret, "live-v1-SECRET");
	assert_int_equal(v1->refs, 1);
	/* the grace period over: only the current value is scrubbed */
	t.env.now_ms += 1000;
	assert_string_equal(live_request(&t, h), "Bearer live-v2-SECRET");
	assert_int_equal(t.out.nscrub, 1);
	/* expired */
	t.env.now_ms += 4000;
	assert_null(live_request(&t, h));
	assert_int_equal(t.out.status, 502);
	assert_string_equal(t.out.code, "secret_unavailable");
	assert_null(strstr(t.out.message, "SECRET"));
	plan_free(&t1.out);	/* drops v1: freed */
	http_head_clear(&t1.h);
	free(t1.msg);
	t_fini(&t);
	policy_unref(lp);
	free(h);
}

/* --- allowed -------------------------------------------------------------------------- */

static void
test_allowed_bearer(void **state)
{
	struct t t;
	char *h = mint("bear", "sb-1");
	const http_field_t *f;

	(void)state;
	t_init(&t);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
	ok(&t);
	f = http_head_get(&t.h, "Authorization");
	assert_string_equal(inject_field_value(&t.h, &t.out.edits, (size_t)(f - t.h.fields)),
	    "Bearer " BEAR_SECRET);
	assert_int_equal(t.out.nscrub, 1);
	assert_string_equal(t.out.scrub[0].secret, BEAR_SECRET);
	assert_int_equal(t.out.scrub[0].secret_len, strlen(BEAR_SECRET));
	assert_string_equal(t.out.scrub[0].handle, h);
	assert_int_equal(t.out.scrub[0].handle_len, strlen(h));
	assert_string_equal(t.out.credential, "bear");
	assert_string_equal(t.out.sandbox, "sb-1");
	assert_int_equal(strlen(t.out.hid), 32);
	assert_false(t.out.buffer_body);
	assert_false(t.out.exfiltration);
	/* a revoke set that does not name it changes nothing; the cache hits the 2nd time */
	{
		char err[128];
		static const char rj[] = "{\"sandboxes\": {\"sb-2\": 1}}";
		revoke_set_t *rs = revoke_load_buffer("rev.json", rj, strlen(rj), err,
		    sizeof(err));

		assert_non_null(rs);
		t.env.revoked = rs;
		plan_free(&t.out);
		ok(&t);
		revoke_unref(rs);
	}
	t_fini(&t);
	free(h);
}

static void
test_allowed_basic_query_pairs(void **state)
{
	struct t t;
	char *h = mint("bas", "sb-1"), *q = mint("qry", "sb-1"), plain[1024], *cred64,
	    *want_s = b64("alice:" BAS_SECRET);

	(void)state;
	snprintf(plain, sizeof(plain), "bob:%s", h);
	cred64 = b64(plain);
	t_init(&t);
	/* Basic holding a handle is base64 of "sgh1." but is not refused as encoded */
	t_head(&t, "api.test", "GET /v1?key=%s HTTP/1.1\r\nHost: api.test\r\n"
	    "Authorization: Basic %s\r\n\r\n", q, cred64);
	ok(&t);
	assert_int_equal(t.out.nscrub, 2);
	assert_string_equal(t.out.scrub[0].handle, h);
	assert_string_equal(t.out.scrub[0].secret, BAS_SECRET);
	{
		/* the encoded forms are the scrubber's to find: the pairs name the secret */
		const http_field_t *f = http_head_get(&t.h, "Authorization");
		char want[1024];

		snprintf(want, sizeof(want), "Basic %s", want_s);
		assert_string_equal(inject_field_value(&t.h, &t.out.edits,
		    (size_t)(f - t.h.fields)), want);
	}
	assert_string_equal(t.out.scrub[1].handle, q);
	assert_string_equal(t.out.scrub[1].secret, QRY_SECRET);
	assert_string_equal(t.out.edits.target, "/v1?key=" QRY_ENC);
	/* the first handle names the audit line */
	assert_string_equal(t.out.credential, "bas");
	t_fini(&t);
	free(h);
	free(q);
	free(cred64);
	free(want_s);
}

/* --- denials ------------------------------------------------------------------------------ */

static void
test_denials(void **state)
{
	struct t t;
	char *h;

	(void)state;
	t_init(&t);
	/* malformed */
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer "
	    "sgh1.abc\r\n\r\n");
	deny(&t, 400, "handle_malformed");
	plan_free(&t.out);

	/* unknown key: names unknown too */
	h = mint_full(stranger, "bear", "sb-1", NOW - 60, NOW + 900, NULL);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
	deny(&t, 403, "unknown_key");
	assert_string_equal(t.out.credential, "");
	plan_free(&t.out);
	free(h);

	/* expired: names copied */
	h = mint_full(seal_keyring_current(kr), "bear", "sb-1", NOW - 7200, NOW - 3600, NULL);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
	deny(&t, 403, "handle_expired");
	assert_string_equal(t.out.credential, "bear");
	assert_string_equal(t.out.sandbox, "sb-1");
	assert_int_equal(t.out.nscrub, 0);
	plan_free(&t.out);
	free(h);

	/* wrong sandbox: 407, the owner named */
	h = mint("bear", "sb-2");
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
	deny(&t, 407, "sandbox_mismatch");
	assert_non_null(strstr(t.out.message, "sb-2"));
	assert_string_equal(t.out.sandbox, "sb-2");
	assert_false(t.out.exfiltration);
	plan_free(&t.out);
	free(h);

	/* out-of-scope host: exfiltration */
	h = mint("bear", "sb-1");
	t_head(&t, "evil.test", "GET /v1 HTTP/1.1\r\nHost: evil.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
	deny(&t, 403, "host_out_of_scope");
	assert_true(t.out.exfiltration);
	assert_string_equal(t.out.credential, "bear");
	assert_int_equal(t.out.nscrub, 0);
	plan_free(&t.out);

	/* revoked by a revoke set */
	{
		char err[128], hid[40], json[256];
		char *h2 = mint_full(seal_keyring_current(kr), "bear", "sb-1", NOW - 60, NOW + 900,
		    hid);
		revoke_set_t *rs;

		snprintf(json, sizeof(json), "{\"handles\": {\"%s\": 1}}", hid);
		rs = revoke_load_buffer("rev.json", json, strlen(json), err, sizeof(err));
		assert_non_null(rs);
		t.env.revoked = rs;
		t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\n"
		    "Authorization: Bearer %s\r\n\r\n", h2);
		deny(&t, 403, "revoked");
		assert_string_equal(t.out.hid, hid);
		plan_free(&t.out);
		t.env.revoked = NULL;
		revoke_unref(rs);
		free(h2);
	}
	free(h);
	t_fini(&t);
}

/* An aws_sigv4 handle in a request the sandbox did not sign with the handle's derived
 * credentials (awssign.h) is refused, and nothing real is planned: no edit carries a
 * secret, nothing is scrubbed. test_awssign checks the signatures themselves. */
static void
test_aws_unsigned_refused(void **state)
{
	struct t t;
	char *h = mint("awsc", "sb-1");
	const http_field_t *f;

	(void)state;
	t_init(&t);
	t_head(&t, "my-bucket.s3.amazonaws.com", "GET /key HTTP/1.1\r\n"
	    "Host: my-bucket.s3.amazonaws.com\r\nX-Amz-Date: 20231114T221320Z\r\n"
	    "X-Amz-Security-Token: %s\r\nAuthorization: AWS4-HMAC-SHA256 "
	    "Credential=ASIAAAAAAAAAAAAAAAAA/20231114/us-east-1/s3/aws4_request, "
	    "SignedHeaders=host;x-amz-date, Signature=%064d\r\n\r\n", h, 0);
	deny(&t, 403, "signature_mismatch");
	assert_null(strstr(t.out.message, AWS_SECRET));
	assert_null(strstr(t.out.message, AWS_AKID));
	assert_string_equal(t.out.credential, "awsc");
	assert_false(t.out.edits.secret_in_head);
	assert_null(t.out.edits.target);
	assert_int_equal(t.out.edits.nadd, 0);
	for (size_t i = 0; i < t.h.nfields; i++) {
		assert_int_not_equal(t.out.edits.kind[i], EDIT_REPLACE);	/* handle dropped */
		assert_null(t.out.edits.value[i]);
	}
	assert_int_equal(t.out.nscrub, 0);
	assert_int_equal(t.out.nbody, 0);
	assert_false(t.out.buffer_body);
	f = http_head_get(&t.h, "X-Amz-Security-Token");
	assert_non_null(f);
	/* also in a query (a presigned URL) */
	plan_free(&t.out);
	t_head(&t, "s3.amazonaws.com", "GET /b/k?X-Amz-Security-Token=%s HTTP/1.1\r\n"
	    "Host: s3.amazonaws.com\r\n\r\n", h);
	deny(&t, 403, "signature_missing");
	assert_false(t.out.edits.secret_in_head);
	assert_int_equal(t.out.nscrub, 0);
	t_fini(&t);
	free(h);
}

/* A request the sandbox signed with the derived credentials of h (awscred.h): GET target
 * on host, S3, UNSIGNED-PAYLOAD, at NOW. */
static void
t_aws_signed(struct t *t, const char *host, const char *target, const char *h)
{
	char akid[AWSCRED_AKID_LEN + 1], secret[AWSCRED_SECRET_LEN + 1], auth[SIGV4_AUTH_MAX];
	const char *why = NULL;
	sigv4_request_t req;
	sigv4_auth_t a;
	uint8_t k[SIGV4_KEY_LEN];

	awscred_access_key_id(h, strlen(h), akid);
	assert_int_equal(awscred_secret(seal_keyring_current(kr), h, strlen(h), secret), 0);
	t_head(t, host, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Amz-Date: 20231114T221320Z\r\n"
	    "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nX-Amz-Security-Token: %s\r\n\r\n",
	    target, host, h);
	memset(&a, 0, sizeof(a));
	snprintf(a.akid, sizeof(a.akid), "%s", akid);
	snprintf(a.date, sizeof(a.date), "20231114");
	snprintf(a.region, sizeof(a.region), "us-east-1");
	snprintf(a.service, sizeof(a.service), "s3");
	snprintf(a.signed_headers, sizeof(a.signed_headers),
	    "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
	req = (sigv4_request_t){"GET", target, strlen(target), t->h.fields, t->h.nfields,
	    "UNSIGNED-PAYLOAD", SIGV4_S3};
	sigv4_signing_key(secret, strlen(secret), a.date, a.region, a.service, k);
	assert_int_equal(sigv4_sign(&req, &a, k, a.signature, &why), SIGV4_OK);
	assert_true(sigv4_format_authorization(&a, auth, sizeof(auth)) > 0);
	t_head(t, host, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Amz-Date: 20231114T221320Z\r\n"
	    "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nX-Amz-Security-Token: %s\r\n"
	    "Authorization: %s\r\n\r\n", target, host, h, auth);
}

/* A field's value as the plan leaves it. */
static const char *
t_edited(const struct t *t, const char *name)
{
	for (size_t i = 0; i < t->h.nfields; i++)
		if (strcasecmp(t->h.fields[i].name, name) == 0)
			return inject_field_value(&t->h, &t->out.edits, i);
	return NULL;
}

static bool
t_scrubs(const struct t *t, const char *secret, const char *repl)
{
	for (size_t i = 0; i < t->out.nscrub; i++)
		if (t->out.scrub[i].secret_len == strlen(secret) &&
		    memcmp(t->out.scrub[i].secret, secret, strlen(secret)) == 0 &&
		    strcmp(t->out.scrub[i].handle, repl) == 0)
			return true;
	return false;
}

/* assume_role: the swap checks the sandbox's signature and leaves the identity due; with
 * the temporary credentials the head is signed as them (never as the long-term key), the
 * token replaced, and all three scrubbed. */
static void
test_aws_assumed_identity(void **state)
{
	struct t t;
	char *h = mint("awsr", "sb-1"), akid[AWSCRED_AKID_LEN + 1], fields_auth[SIGV4_AUTH_MAX];
	const char *auth, *why = NULL, *target = "/key";
	http_field_t fields[32];
	stscache_cred_t *cr;
	sigv4_request_t req;
	sigv4_auth_t a;
	uint8_t k[SIGV4_KEY_LEN];
	size_t n = 0;

	(void)state;
	t_init(&t);
	t_aws_signed(&t, "my-bucket.s3.amazonaws.com", target, h);
	ok(&t);
	assert_true(swap_aws_identity_due(&t.out));
	assert_ptr_equal(t.out.aws.cred, policy_credential_find(pol, "awsr"));
	assert_null(t_edited(&t, "X-Amz-Security-Token"));	/* the handle never leaves */
	assert_string_not_equal(t_edited(&t, "Authorization"), "");
	assert_null(strstr(t_edited(&t, "Authorization"), AWS_AKID));	/* not re-signed yet */
	cr = stscache_cred_new("ASIATEMPORARY0000001", 20, "tempSecret/0123456789", 21,
	    "temp-session-token-xyz", 22, NOW + 3600, NOW);
	assert_int_equal(swap_aws_assumed(&t.req, &t.out, cr), 0);
	assert_false(swap_aws_identity_due(&t.out));
	assert_string_equal(t_edited(&t, "X-Amz-Security-Token"), "temp-session-token-xyz");
	auth = t_edited(&t, "Authorization");
	snprintf(fields_auth, sizeof(fields_auth), "%s", auth);
	assert_int_equal(sigv4_parse_authorization(fields_auth, strlen(fields_auth), &a, &why),
	    SIGV4_OK);
	assert_string_equal(a.akid, "ASIATEMPORARY0000001");
	for (size_t i = 0; i < t.h.nfields; i++)
		if (inject_field_value(&t.h, &t.out.edits, i) != NULL)
			fields[n++] = (http_field_t){t.h.fields[i].name, inject_field_value(&t.h,
			    &t.out.edits, i), t.h.fields[i].name_len,
			    strlen(inject_field_value(&t.h, &t.out.edits, i))};
	req = (sigv4_request_t){"GET", target, strlen(target), fields, n, "UNSIGNED-PAYLOAD",
	    SIGV4_S3};
	sigv4_signing_key("tempSecret/0123456789", 21, a.date, a.region, a.service, k);
	assert_int_equal(sigv4_verify(&req, &a, k, &why), SIGV4_OK);
	sigv4_signing_key(AWS_SECRET, strlen(AWS_SECRET), a.date, a.region, a.service, k);
	assert_int_equal(sigv4_verify(&req, &a, k, &why), SIGV4_E_MISMATCH);
	awscred_access_key_id(h, strlen(h), akid);
	assert_true(t_scrubs(&t, "ASIATEMPORARY0000001", akid));
	assert_true(t_scrubs(&t, "temp-session-token-xyz", h));
	assert_true(t_scrubs(&t, "tempSecret/0123456789", h));
	assert_true(t_scrubs(&t, AWS_AKID, akid));
	/* once is enough: a second identity is refused (and its reference released) */
	cr = stscache_cred_new("ASIATEMPORARY0000002", 20, "s", 1, NULL, 0, NOW + 3600, NOW);
	assert_int_equal(swap_aws_assumed(&t.req, &t.out, cr), -1);
	assert_int_equal(t.out.status, 500);
	t_fini(&t);
	free(h);
}

/* Without assume_role the credential's own keys sign at once: nothing is due. */
static void
test_aws_own_keys_sign_at_once(void **state)
{
	struct t t;
	char *h = mint("awsc", "sb-1");
	const char *why = NULL;
	sigv4_auth_t a;

	(void)state;
	t_init(&t);
	t_aws_signed(&t, "my-bucket.s3.amazonaws.com", "/key", h);
	ok(&t);
	assert_false(swap_aws_identity_due(&t.out));
	assert_int_equal(sigv4_parse_authorization(t_edited(&t, "Authorization"),
	    strlen(t_edited(&t, "Authorization")), &a, &why), SIGV4_OK);
	assert_string_equal(a.akid, AWS_AKID);
	assert_null(t.out.aws_assumed);
	t_fini(&t);
	free(h);
}

static void
test_rate_limited(void **state)
{
	struct t t;
	char *h = mint("rl", "sb-1");

	(void)state;
	t_init(&t);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
	ok(&t);
	plan_free(&t.out);
	deny(&t, 429, "rate_limited");
	assert_non_null(strstr(t.out.extra, "Retry-After"));
	assert_string_equal(t.out.credential, "rl");
	plan_free(&t.out);
	t.env.now_ms += 61000;	/* refilled */
	ok(&t);
	t_fini(&t);
	free(h);
}

/* A handle carried into a fork: the audit names the fork and the origin, and the fork
 * has its own per-handle rate bucket. */
static void
test_lineage_audit_and_rate(void **state)
{
	char dir[] = "/tmp/sg-swap-reg-XXXXXX", path[128], err[256];
	const char body[] = "{\"template\": \"t\", \"addresses\": [\"10.0.5.1\"]}";
	const char fbody[] = "{\"id\": \"k\", \"addresses\": [\"10.0.6.1\"]}";
	registry_fork_spec_t fs;
	registry_spec_t spec;
	registry_result_t res;
	registry_t *r;
	struct t t;
	char *h;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(r = registry_open(dir, pol, NOW - 100, err, sizeof(err)));
	assert_int_equal(registry_spec_parse("p", body, strlen(body), NOW - 100, &spec, &res), 0);
	assert_int_equal(registry_put(r, pol, &spec, NOW - 100, &res), 0);
	registry_spec_free(&spec);
	h = mint_full(seal_keyring_current(kr), "rl", "p", NOW - 60, NOW + 900, NULL);
	assert_int_equal(registry_fork_parse(fbody, strlen(fbody), NOW - 30, &fs, &res), 0);
	assert_int_equal(registry_fork(r, pol, "p", &fs, NOW - 30, &res), 0);
	registry_fork_spec_free(&fs);
	t_init(&t);
	t.env.registry = registry_acquire();
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
	inet_pton(AF_INET, "10.0.5.1", &((struct sockaddr_in *)&t.peer)->sin_addr);	/* the parent */
	ok(&t);
	assert_string_equal(t.out.sandbox, "p");
	assert_string_equal(t.out.origin, "");
	plan_free(&t.out);
	deny(&t, 429, "rate_limited");		/* 1 a minute per handle */
	plan_free(&t.out);
	inet_pton(AF_INET, "10.0.6.1", &((struct sockaddr_in *)&t.peer)->sin_addr);	/* the fork */
	ok(&t);
	assert_string_equal(t.out.sandbox, "k");
	assert_string_equal(t.out.origin, "p");
	assert_string_equal(t.out.credential, "rl");
	plan_free(&t.out);
	deny(&t, 429, "rate_limited");
	assert_string_equal(t.out.sandbox, "k");
	registry_unref((registry_snapshot_t *)t.env.registry);
	t_fini(&t);
	free(h);
	registry_close(r);
	snprintf(path, sizeof(path), "%s/%s", dir, REGISTRY_JOURNAL_NAME);
	unlink(path);
	rmdir(dir);
}

static void
test_encoded(void **state)
{
	struct t t;

	(void)state;
	t_init(&t);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nX-Foo: %%73gh1%%2Eabc\r\n"
	    "\r\n");
	deny(&t, 403, "handle_encoded");
	assert_true(t.out.exfiltration);
	plan_free(&t.out);
	t_head(&t, "api.test", "GET /v1?x=%%73gh1%%2Eabc HTTP/1.1\r\nHost: api.test\r\n\r\n");
	deny(&t, 403, "handle_encoded");
	plan_free(&t.out);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nX-B: c2doMS5hYmM\r\n\r\n");
	deny(&t, 403, "handle_encoded");
	t_fini(&t);
}

/* A field starting "Basic " is not leak-scanned at all (swap_is_basic skip). */
static void
test_encoded_in_basic(void **state)
{
	struct t t;
	char *inner;

	(void)state;
	inner = b64("bob:%73gh1%2Eabc");
	t_init(&t);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\n"
	    "Authorization: Basic %%73gh1%%2Eabc\r\n\r\n");
	deny(&t, 403, "handle_encoded");
	plan_free(&t.out);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\n"
	    "Authorization: Basic %s\r\n\r\n", inner);
	deny(&t, 403, "handle_encoded");
	t_fini(&t);
	free(inner);
}

/* --- git push refs claim ------------------------------------------------------------------ */

static char *
mint_git_refs(const char *cred, char **refs, size_t n)
{
	handle_claims_t c;
	char *text = NULL;

	memset(&c, 0, sizeof(c));
	c.cred = (char *)cred;
	c.sb = "sb-1";
	c.iat = NOW - 60;
	c.exp = NOW + 900;
	c.git_refs = (policy_strlist_t){n, refs};
	assert_int_equal(handle_mint(seal_keyring_current(kr), &c, &text), HANDLE_OK);
	return text;
}

static void
test_git_refs_claim(void **state)
{
	char *one[] = {"refs/heads/agent/one"}, *wide[] = {"refs/heads/**"};
	char *h;
	struct t t;

	(void)state;
	t_init(&t);
	h = mint_git_refs("gh", one, 1);
	t_head(&t, "git.test", "POST /r.git/git-receive-pack HTTP/1.1\r\nHost: git.test\r\n"
	    "Authorization: Bearer %s\r\nContent-Length: 4\r\n\r\n", h);
	ok(&t);
	assert_int_equal(t.out.git_refs.n, 1);
	assert_string_equal(t.out.git_refs.v[0], "refs/heads/agent/one");
	plan_free(&t.out);
	free(h);
	/* wider than the credential's (a policy narrowed since mint): refused on use */
	h = mint_git_refs("gh", wide, 1);
	t_head(&t, "git.test", "GET /r.git/info/refs HTTP/1.1\r\nHost: git.test\r\n"
	    "Authorization: Bearer %s\r\n\r\n", h);
	deny(&t, 403, "git_refs_denied");
	assert_non_null(strstr(t.out.message, "refs/heads/** is not within"));
	plan_free(&t.out);
	free(h);
	/* a credential with no git.push block */
	h = mint_git_refs("bear", one, 1);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\n"
	    "Authorization: Bearer %s\r\n\r\n", h);
	deny(&t, 403, "git_refs_denied");
	free(h);
	t_fini(&t);
}

/* --- body work ----------------------------------------------------------------------------- */

static void
test_buffer_body(void **state)
{
	struct t t;
	char *m = mint("mac", "sb-1");

	(void)state;
	t_init(&t);
	/* hmac: the handle is removed, the body must be buffered and signed */
	t_head(&t, "api.test", "POST /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: %s\r\n"
	    "Content-Length: 3\r\n\r\n", m);
	ok(&t);
	assert_true(t.out.buffer_body);
	assert_non_null(t.out.hmac_cred);
	assert_string_equal(t.out.hmac_cred->name, "mac");
	assert_int_equal(t.out.edits.kind[(size_t)(http_head_get(&t.h, "Authorization") -
	    t.h.fields)], EDIT_DROP);
	plan_free(&t.out);

	/* a body credential's host, no handle in the head: buffered */
	t_head(&t, "body.test", "POST /v1 HTTP/1.1\r\nHost: body.test\r\nContent-Length: 3\r\n"
	    "\r\n");
	ok(&t);
	assert_true(t.out.buffer_body);
	assert_int_equal(t.out.nscrub, 0);
	plan_free(&t.out);
	/* ... but not without a body, nor for another host */
	t_head(&t, "body.test", "GET /v1 HTTP/1.1\r\nHost: body.test\r\n\r\n");
	ok(&t);
	assert_false(t.out.buffer_body);
	plan_free(&t.out);
	t_head(&t, "api.test", "POST /v1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 3\r\n"
	    "\r\n");
	ok(&t);
	assert_false(t.out.buffer_body);
	t_fini(&t);
	free(m);
}

/* echo_ok_in_body: the body is held; a quoted handle of the credential toward one of its
 * hosts stays text (no body work, no scrub pair), whatever its time or sandbox; toward
 * another host it is judged as a use, and a credential without the key is refused. */
static void
test_swap_echo_ok_in_body(void **state)
{
	struct t t;
	char *e = mint("ech", "sb-1"), *other = mint("ech", "sb-2"), *bear = mint("bear",
	    "sb-1"), *old = mint_full(seal_keyring_current(kr), "ech", "sb-1", NOW - 7200,
	    NOW - 3600, NULL), body[4096];

	(void)state;
	t_init(&t);
	t_head(&t, "chat.test", "POST /v1 HTTP/1.1\r\nHost: chat.test\r\nAuthorization: "
	    "Bearer %s\r\nContent-Length: 10\r\n\r\n", e);
	ok(&t);
	assert_true(t.out.buffer_body);	/* held, so a quote is judged, not tripped over */
	assert_int_equal(t.out.nscrub, 1);
	snprintf(body, sizeof(body), "{\"history\": \"my key is %s, then %s, once %s\"}", e,
	    other, old);
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), 0);
	assert_int_equal(t.out.nbody, 0);	/* left as text */
	assert_int_equal(t.out.nscrub, 1);	/* only the head's swap */
	assert_null(t.out.hmac_cred);
	plan_free(&t.out);

	/* no handle in the head: the body is still held for the credential's host */
	t_head(&t, "chat.test", "POST /v1 HTTP/1.1\r\nHost: chat.test\r\n"
	    "Content-Length: 10\r\n\r\n");
	ok(&t);
	assert_true(t.out.buffer_body);
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), 0);
	assert_string_equal(t.out.hid, "");	/* nothing was used */
	plan_free(&t.out);

	/* quotes are bounded: SG_BODY_QUOTES_MAX pass, one more is refused */
	{
		size_t hl = strlen(e), cap = (SG_BODY_QUOTES_MAX + 1) * (hl + 1) + 1;
		char *many = malloc(cap);

		assert_non_null(many);
		for (size_t i = 0; i < SG_BODY_QUOTES_MAX; i++) {
			memcpy(many + i * (hl + 1), e, hl);
			many[i * (hl + 1) + hl] = ' ';
		}
		ok(&t);
		assert_int_equal(swap_body(&t.env, &t.req, many, SG_BODY_QUOTES_MAX *
		    (hl + 1), &t.out), 0);
		plan_free(&t.out);
		memcpy(many + SG_BODY_QUOTES_MAX * (hl + 1), e, hl);
		ok(&t);
		assert_int_equal(swap_body(&t.env, &t.req, many, SG_BODY_QUOTES_MAX *
		    (hl + 1) + hl, &t.out), -1);
		assert_string_equal(t.out.code, "bad_request");
		plan_free(&t.out);
		free(many);
	}

	/* quoted toward a host of another echo credential: a use out of scope */
	t.req.host = "chat2.test";
	ok(&t);
	assert_true(t.out.buffer_body);
	snprintf(body, sizeof(body), "{\"history\": \"%s\"}", e);
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), -1);
	assert_string_equal(t.out.code, "host_out_of_scope");
	assert_true(t.out.exfiltration);
	plan_free(&t.out);

	/* a credential without echo_ok_in_body quoted toward its own host: refused as before */
	t_head(&t, "api.test", "POST /v1 HTTP/1.1\r\nHost: api.test\r\n"
	    "Content-Length: 10\r\n\r\n");
	ok(&t);
	assert_false(t.out.buffer_body);	/* no echo credential covers api.test */
	snprintf(body, sizeof(body), "{\"history\": \"%s\"}", bear);
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), -1);
	assert_string_equal(t.out.code, "handle_in_body");
	t_fini(&t);
	free(e);
	free(other);
	free(bear);
	free(old);
}

static void
test_swap_body(void **state)
{
	struct t t;
	char *b = mint("bod", "sb-1"), *bear = mint("bear", "sb-1"), body[2048];

	(void)state;
	t_init(&t);
	t_head(&t, "body.test", "POST /v1 HTTP/1.1\r\nHost: body.test\r\nContent-Length: 10\r\n"
	    "\r\n");
	ok(&t);
	assert_true(t.out.buffer_body);
	snprintf(body, sizeof(body), "{\"k\": \"%s\", \"again\": \"%s\"}", b, b);
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), 0);
	assert_int_equal(t.out.nbody, 1);	/* the same handle twice: once */
	assert_string_equal(t.out.body[0].handle, b);
	assert_string_equal(t.out.body[0].secret, "bod-SECRET");
	assert_int_equal(t.out.nscrub, 1);
	assert_string_equal(t.out.credential, "bod");
	plan_free(&t.out);

	/* a bearer handle in a body: refused, names copied */
	ok(&t);
	snprintf(body, sizeof(body), "{\"k\": \"%s\"}", bear);
	t.req.host = "api.test";
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), -1);
	assert_int_equal(t.out.status, 403);
	assert_string_equal(t.out.code, "handle_in_body");
	assert_string_equal(t.out.credential, "bear");
	assert_string_equal(t.out.sandbox, "sb-1");
	assert_int_equal(t.out.nbody, 0);
	plan_free(&t.out);

	/* a body handle sent to a host outside its scope: exfiltration */
	ok(&t);
	snprintf(body, sizeof(body), "x=%s", b);
	t.req.host = "evil.test";
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), -1);
	assert_int_equal(t.out.status, 403);
	assert_string_equal(t.out.code, "host_out_of_scope");
	assert_true(t.out.exfiltration);
	t_fini(&t);
	free(b);
	free(bear);
}


/* --- the failed-handle throttle ------------------------------------------------------------- */

struct counters {
	uint64_t failures, throttled, brute;
};

static struct counters
counters_now(void)
{
	struct counters c = {STATS_GET(handle_failures), STATS_GET(handle_throttled),
	    STATS_GET(brute_force)};

	return c;
}

static void
counters_moved(const struct counters *before, uint64_t failures, uint64_t throttled,
    uint64_t brute)
{
	struct counters now = counters_now();

	assert_int_equal(now.failures - before->failures, failures);
	assert_int_equal(now.throttled - before->throttled, throttled);
	assert_int_equal(now.brute - before->brute, brute);
}

/* Handle-cache lookups so far: unchanged across a request means nothing was unsealed. */
static uint64_t
lookups(struct t *t)
{
	uint64_t hits, misses;

	handlecache_stats(t->hc, &hits, &misses, NULL);
	return hits + misses;
}

/* A request to api.test carrying h as a bearer token. */
static void
bearer_req(struct t *t, const char *h)
{
	t_head(t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer %s"
	    "\r\n\r\n", h);
}

/* Three kinds of failure from the current peer: undecryptable, expired, foreign. */
static void
fail3(struct t *t, const char *sb)
{
	char *bad[3];
	static const struct {
		unsigned status;
		const char *code;
	} want[3] = {{403, "unknown_key"}, {403, "handle_expired"}, {407, "sandbox_mismatch"}};

	bad[0] = mint_full(stranger, "bear", sb, NOW - 60, NOW + 900, NULL);
	bad[1] = mint_full(seal_keyring_current(kr), "bear", sb, NOW - 7200, NOW - 3600, NULL);
	bad[2] = mint("bear", strcmp(sb, "sb-2") == 0 ? "sb-1" : "sb-2");
	for (int i = 0; i < 3; i++) {
		bearer_req(t, bad[i]);
		deny(t, want[i].status, want[i].code);
		plan_free(&t->out);
		free(bad[i]);
	}
}

/* 429 too_many_failures, before any cache lookup; brute: the first of its window. */
static void
throttled(struct t *t, bool brute)
{
	uint64_t before = lookups(t);

	deny(t, 429, "too_many_failures");
	assert_int_equal(lookups(t), before);
	assert_int_equal(t->out.brute_force, brute);
	assert_int_equal(t->out.detail[0] != '\0', brute);
	assert_string_equal(t->out.hid, "");
	assert_string_equal(t->out.credential, "");
	assert_non_null(strstr(t->out.extra, "Retry-After: "));
	assert_non_null(strstr(t->out.extra, "RateLimit-Policy: \"failed_handles\";q=3;w=30"));
	assert_int_equal(t->out.nscrub, 0);
	assert_int_equal(t->out.edits.target == NULL, true);
}

static void
test_throttle_threshold(void **state)
{
	struct t t;
	char *good = mint("bear", "sb-1");
	struct counters c0 = counters_now();

	(void)state;
	t_init(&t);
	t.env.policy = tpol;
	fail3(&t, "sb-1");			/* limit: 3 failures, each answered as usual */
	counters_moved(&c0, 3, 0, 0);
	bearer_req(&t, good);			/* the 4th request with a handle, a valid one */
	throttled(&t, true);
	assert_string_equal(t.out.extra, "Retry-After: 10\r\n"
	    "RateLimit-Policy: \"failed_handles\";q=3;w=30\r\n"
	    "RateLimit: \"failed_handles\";r=0;t=30\r\n");
	assert_string_equal(t.out.detail, "possible brute force: 3 failed handles from "
	    "sandbox sb-1 (10.0.2.15) in 30 s");
	assert_string_equal(t.out.sandbox, "sb-1");
	assert_null(strstr(t.out.message, good + 16));
	plan_free(&t.out);
	throttled(&t, false);			/* later refusals: no second brute_force */
	plan_free(&t.out);
	counters_moved(&c0, 3, 2, 1);
	/* no handle: not affected */
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\n\r\n");
	ok(&t);
	plan_free(&t.out);
	/* a token back after window / limit */
	t.env.now_ms += 9999;
	bearer_req(&t, good);
	throttled(&t, false);
	assert_string_equal(t.out.extra, "Retry-After: 1\r\n"
	    "RateLimit-Policy: \"failed_handles\";q=3;w=30\r\n"
	    "RateLimit: \"failed_handles\";r=0;t=21\r\n");
	plan_free(&t.out);
	t.env.now_ms += 1;
	ok(&t);					/* success takes nothing */
	plan_free(&t.out);
	ok(&t);
	plan_free(&t.out);
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer "
	    "sgh1.abc\r\n\r\n");
	deny(&t, 400, "handle_malformed");	/* the token back is spent */
	plan_free(&t.out);
	bearer_req(&t, good);
	throttled(&t, false);			/* same window: still one brute_force */
	plan_free(&t.out);
	/* a whole window later: the budget is whole again, and a new window trips anew */
	t.env.now_ms += 30000;
	fail3(&t, "sb-1");
	bearer_req(&t, good);
	throttled(&t, true);
	plan_free(&t.out);
	counters_moved(&c0, 7, 5, 2);
	t_fini(&t);
	free(good);
}

/* Counted per requesting source, never by what the handle names. */
static void
test_throttle_per_source(void **state)
{
	struct t t;
	char *g1 = mint("bear", "sb-1"), *g2 = mint("bear", "sb-2");

	(void)state;
	t_init(&t);
	t.env.policy = tpol;
	t_peer(&t, "10.0.3.7");			/* sb-2 sends handles naming sb-1 */
	fail3(&t, "sb-2");
	bearer_req(&t, g2);
	throttled(&t, true);
	assert_string_equal(t.out.sandbox, "sb-2");
	assert_non_null(strstr(t.out.detail, "from sandbox sb-2 (10.0.3.7) in 30 s"));
	plan_free(&t.out);
	t_peer(&t, "10.0.3.8");			/* another address of sb-2: the same source */
	bearer_req(&t, g2);
	throttled(&t, false);
	plan_free(&t.out);
	t_peer(&t, "10.0.2.15");		/* sb-1, whose name the failed handles carried */
	bearer_req(&t, g1);
	ok(&t);
	plan_free(&t.out);
	bearer_req(&t, g2);
	deny(&t, 407, "sandbox_mismatch");	/* its failures are its own, not sb-2's */
	plan_free(&t.out);
	/* no sandbox's address: the address is the source */
	t_peer(&t, "10.0.9.9");
	fail3(&t, "sb-1");
	bearer_req(&t, g1);
	throttled(&t, true);
	assert_string_equal(t.out.sandbox, "");
	assert_string_equal(t.out.detail, "possible brute force: 3 failed handles from "
	    "10.0.9.9 in 30 s");
	plan_free(&t.out);
	t_peer(&t, "10.0.9.10");
	bearer_req(&t, g1);
	deny(&t, 407, "sandbox_mismatch");
	plan_free(&t.out);
	t_fini(&t);
	free(g1);
	free(g2);
}

/* A sandbox with a proxy token is that sandbox only with it; IPv6 counts per /64. */
static void
test_throttle_token_and_ipv6(void **state)
{
	struct t t;
	char *g = mint("bear", "sb-t");

	(void)state;
	t_init(&t);
	t.env.policy = tpol;
	t_peer(&t, "10.0.4.5");			/* a neighbour behind the same address */
	fail3(&t, "sb-t");
	bearer_req(&t, g);
	throttled(&t, true);
	assert_string_equal(t.out.sandbox, "");
	assert_non_null(strstr(t.out.detail, "from 10.0.4.5 in"));
	plan_free(&t.out);
	t.req.proxy_token = "tok-wrong";	/* a wrong token is no sandbox either */
	throttled(&t, false);
	plan_free(&t.out);
	t.req.proxy_token = "tok-T";		/* the sandbox itself is not held back */
	ok(&t);
	plan_free(&t.out);
	t_fini(&t);
	t_init(&t);
	t.env.policy = tpol;
	t_peer(&t, "2001:db8:1:2::5");
	fail3(&t, "sb-1");
	t_peer(&t, "2001:db8:1:2:ffff::6");	/* the same /64 */
	bearer_req(&t, g);
	throttled(&t, true);
	assert_non_null(strstr(t.out.detail, "from 2001:db8:1:2::/64 in 30 s"));
	plan_free(&t.out);
	t_peer(&t, "2001:db8:1:3::5");		/* another /64 */
	bearer_req(&t, g);
	deny(&t, 407, "sandbox_mismatch");
	plan_free(&t.out);
	t_peer(&t, "::ffff:10.0.2.15");		/* IPv4-mapped: sb-1 */
	fail3(&t, "sb-1");
	t_peer(&t, "10.0.2.15");
	bearer_req(&t, g);
	throttled(&t, true);
	assert_string_equal(t.out.sandbox, "sb-1");
	t_fini(&t);
	free(g);
}

/* Proxy-Tokenizer tokens count and are throttled too, before anything is opened. */
static void
test_throttle_tokenizer(void **state)
{
	struct t t;
	http_head_t ch;
	http_parser p;
	const char *why;
	static const char cmsg[] = "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n"
	    "Proxy-Tokenizer: AAAA\r\n\r\n";

	(void)state;
	t_init(&t);
	t.env.policy = tpol;
	t_peer(&t, "10.0.3.9");
	for (int i = 0; i < 3; i++) {
		t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\n"
		    "Proxy-Tokenizer: AAAA\r\n\r\n");
		deny(&t, 400, "tokenizer_invalid");
		assert_string_not_equal(t.out.tk.id, "");
		plan_free(&t.out);
	}
	throttled(&t, true);
	assert_string_equal(t.out.tk.id, "");	/* tokenizer_apply never ran */
	plan_free(&t.out);
	/* a token on the intercepted CONNECT applies to the tunnel's requests */
	memset(&ch, 0, sizeof(ch));
	http_parser_init(&p, HTTP_REQUEST);
	assert_int_equal(http_head_parse(&p, cmsg, strlen(cmsg), &ch, HTTP_GET, &why), 0);
	t.env.connect_head = &ch;
	t_head(&t, "api.test", "GET /v1 HTTP/1.1\r\nHost: api.test\r\n\r\n");
	throttled(&t, false);
	plan_free(&t.out);
	t.env.connect_head = NULL;
	http_head_clear(&ch);
	ok(&t);					/* neither handle nor token */
	t_fini(&t);
}

/* 429 rate_limited is no failure; handles found in a held body are throttled too. */
static void
test_throttle_rate_limited_and_body(void **state)
{
	struct t t;
	char *rl = mint("rl", "sb-1"), *b = mint("bod", "sb-1"), *bad, body[2048];
	uint64_t before;

	(void)state;
	bad = mint_full(stranger, "bod", "sb-1", NOW - 60, NOW + 900, NULL);
	t_init(&t);
	t.env.policy = tpol;
	bearer_req(&t, rl);
	ok(&t);
	plan_free(&t.out);
	for (int i = 0; i < 5; i++) {
		deny(&t, 429, "rate_limited");
		plan_free(&t.out);
	}
	t_head(&t, "body.test", "POST /v1 HTTP/1.1\r\nHost: body.test\r\nContent-Length: 9\r\n"
	    "\r\n");
	snprintf(body, sizeof(body), "k=%s", bad);
	for (int i = 0; i < 3; i++) {
		ok(&t);
		assert_true(t.out.buffer_body);
		assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), -1);
		assert_string_equal(t.out.code, "unknown_key");
		plan_free(&t.out);
	}
	ok(&t);					/* no handle in the head: not refused here */
	snprintf(body, sizeof(body), "k=%s", b);
	before = lookups(&t);
	assert_int_equal(swap_body(&t.env, &t.req, body, strlen(body), &t.out), -1);
	assert_int_equal(t.out.status, 429);
	assert_string_equal(t.out.code, "too_many_failures");
	assert_true(t.out.brute_force);
	assert_int_equal(lookups(&t), before);
	assert_int_equal(t.out.nbody, 0);
	t_fini(&t);
	free(rl);
	free(b);
	free(bad);
}

/* limits.failed_handles 0, or no rate table: no throttle (failures still counted). */
static void
test_throttle_off(void **state)
{
	struct t t;
	struct counters c0 = counters_now();
	char *g = mint("bear", "sb-1");

	(void)state;
	t_init(&t);
	t.env.policy = offpol;
	for (int i = 0; i < 10; i++)
		fail3(&t, "sb-1");
	bearer_req(&t, g);
	ok(&t);
	plan_free(&t.out);
	counters_moved(&c0, 30, 0, 0);
	t.env.policy = tpol;
	t.env.rl = NULL;
	fail3(&t, "sb-1");
	bearer_req(&t, g);
	ok(&t);
	counters_moved(&c0, 33, 0, 0);
	t_fini(&t);
	free(g);
}

/* --- swap_finish_body ------------------------------------------------------------------ */

/* A held body (no handle in the head) to host: the plan swap_request makes for it. */
static void
held(struct t *t, const char *host)
{
	t_head(t, host, "POST /v1 HTTP/1.1\r\nHost: %s\r\nContent-Length: 10\r\n\r\n", host);
	ok(t);
}

/* swap_finish_body over the string body. */
static int
finish(struct t *t, bool tls, const char *body, char **out, size_t *outlen)
{
	*out = (char *)"not set";
	*outlen = 12345;
	return swap_finish_body(&t->env, &t->req, tls, &t->out, body, strlen(body), out,
	    outlen);
}

/* -1 with status / code, nothing to send. */
static void
finish_denied(struct t *t, bool tls, const char *body, unsigned status, const char *code)
{
	char *out;
	size_t outlen;

	assert_int_equal(finish(t, tls, body, &out, &outlen), -1);
	if (t->out.status != status || strcmp(t->out.code, code) != 0)
		fail_msg("got %u %s (%s), want %u %s", t->out.status, t->out.code,
		    t->out.message, status, code);
	assert_null(out);
	assert_int_equal(outlen, 0);
	assert_null(strstr(t->out.message, "SECRET"));
}

/* The rewritten body is want exactly. */
static void
assert_body(const char *out, size_t outlen, const char *want)
{
	assert_non_null(out);
	assert_int_equal(outlen, strlen(want));
	assert_memory_equal(out, want, outlen);
}

/* "prefix" + lower-case hex HMAC-SHA256(key, body), computed here. */
static void
want_hmac(const char *key, const char *body, size_t len, const char *prefix, char *out)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	char hex[2 * sizeof(mac) + 1];

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	util_hex_encode(mac, sizeof(mac), hex);
	sprintf(out, "%s%s", prefix, hex);
}

/* No handle in the body: nothing to send instead, the plan as it was. */
static void
test_finish_no_handle(void **state)
{
	struct t t;
	plan_t *before = malloc(sizeof(*before));
	char *out;
	size_t outlen;

	(void)state;
	assert_non_null(before);
	t_init(&t);
	held(&t, "body.test");
	assert_true(t.out.buffer_body);
	memcpy(before, &t.out, sizeof(*before));
	assert_int_equal(finish(&t, true, "{\"k\": \"plain text, sgh1 no dot\"}", &out,
	    &outlen), 0);
	assert_null(out);
	assert_int_equal(outlen, 0);
	assert_memory_equal(before, &t.out, sizeof(*before));
	/* an empty body too, over plain http (no secret travels) */
	assert_int_equal(finish(&t, false, "", &out, &outlen), 0);
	assert_null(out);
	assert_memory_equal(before, &t.out, sizeof(*before));
	t_fini(&t);
	free(before);
}

static void
test_finish_body_handle(void **state)
{
	struct t t;
	char *b = mint("bod", "sb-1"), body[2048], want[2048], *out;
	size_t outlen;

	(void)state;
	t_init(&t);
	held(&t, "body.test");
	snprintf(body, sizeof(body), "{\"k\": \"%s\", \"again\": \"%s\"}", b, b);
	assert_int_equal(finish(&t, true, body, &out, &outlen), 0);
	snprintf(want, sizeof(want), "{\"k\": \"bod-SECRET\", \"again\": \"bod-SECRET\"}");
	assert_body(out, outlen, want);
	assert_null(memmem(out, outlen, b, strlen(b)));
	assert_null(memmem(out, outlen, "sgh1.", 5));
	assert_int_equal(t.out.status, 0);
	assert_int_equal(t.out.nbody, 1);
	assert_string_equal(t.out.body[0].handle, b);
	assert_int_equal(t.out.nscrub, 1);	/* the reply scrubber learns it */
	assert_string_equal(t.out.scrub[0].secret, "bod-SECRET");
	assert_string_equal(t.out.credential, "bod");
	assert_int_equal(t.out.edits.nadd, 0);	/* no signer */
	secmem_wipe_free(out);
	t_fini(&t);
	free(b);
}

/* A handle in encoded form: refused before anything is unsealed. */
static void
test_finish_encoded(void **state)
{
	static const char *const bodies[] = {"x=%73gh1%2Eabc", "{\"k\": \"c2doMS5hYmM\"}"};
	struct t t;

	(void)state;
	t_init(&t);
	for (size_t i = 0; i < SG_ARRAY_LEN(bodies); i++) {
		uint64_t before;

		held(&t, "body.test");
		before = lookups(&t);
		finish_denied(&t, true, bodies[i], 403, "handle_encoded");
		assert_true(t.out.exfiltration);
		assert_non_null(strstr(t.out.message, "request body"));
		assert_int_equal(lookups(&t), before);
		assert_int_equal(t.out.nbody, 0);
		plan_free(&t.out);
	}
	t_fini(&t);
}

/* Only body credentials' handles may stand in a body. */
static void
test_finish_not_body_cred(void **state)
{
	struct t t;
	char *bear = mint("bear", "sb-1"), body[2048];

	(void)state;
	t_init(&t);
	held(&t, "api.test");
	snprintf(body, sizeof(body), "token=%s", bear);
	finish_denied(&t, true, body, 403, "handle_in_body");
	assert_non_null(strstr(t.out.message, "bear"));
	assert_int_equal(t.out.nbody, 0);
	assert_int_equal(t.out.nscrub, 0);
	t_fini(&t);
	free(bear);
}

/* tls false: every credential the plan injects must allow plain http. */
static void
test_finish_plain_http(void **state)
{
	struct t t;
	char *b = mint("bod", "sb-1"), *p = mint("bodp", "sb-1"), body[2048], *out;
	size_t outlen;

	(void)state;
	t_init(&t);
	held(&t, "body.test");
	snprintf(body, sizeof(body), "k=%s", b);
	finish_denied(&t, false, body, 403, "plain_http_denied");
	assert_int_equal(t.out.nbody, 1);	/* found, then refused */
	plan_free(&t.out);
	/* one that allows it: sent; beside one that does not: refused */
	t.env.policy = finpol;
	held(&t, "body.test");
	snprintf(body, sizeof(body), "k=%s", p);
	assert_int_equal(finish(&t, false, body, &out, &outlen), 0);
	assert_body(out, outlen, "k=bodp-SECRET");
	secmem_wipe_free(out);
	plan_free(&t.out);
	held(&t, "body.test");
	snprintf(body, sizeof(body), "k=%s&l=%s", p, b);
	finish_denied(&t, false, body, 403, "plain_http_denied");
	plan_free(&t.out);
	held(&t, "body.test");			/* the same over https */
	assert_int_equal(finish(&t, true, body, &out, &outlen), 0);
	assert_body(out, outlen, "k=bodp-SECRET&l=bod-SECRET");
	secmem_wipe_free(out);
	t_fini(&t);
	free(b);
	free(p);
}

/* An hmac handle in the head: the body is signed, the header goes in the edits. */
static void
test_finish_hmac(void **state)
{
	struct t t;
	char *m = mint("mac", "sb-1"), want[128], *out, *v;
	size_t outlen;
	const http_field_t *f;

	(void)state;
	t_init(&t);
	t_head(&t, "api.test", "POST /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: %s\r\n"
	    "Content-Length: 5\r\n\r\n", m);
	ok(&t);
	assert_non_null(t.out.hmac_cred);
	assert_int_equal(t.out.edits.nadd, 0);
	assert_int_equal(finish(&t, true, "hello", &out, &outlen), 0);
	assert_null(out);			/* nothing to rewrite */
	assert_int_equal(outlen, 0);
	want_hmac("key", "hello", 5, "HMAC ", want);
	assert_int_equal(t.out.edits.nadd, 1);
	assert_string_equal(t.out.edits.add[0].name, "Authorization");
	assert_string_equal(t.out.edits.add[0].value, want);
	v = inject_hmac_value(t.out.hmac_cred, "hello", 5);
	assert_string_equal(t.out.edits.add[0].value, v);
	secmem_wipe_free(v);
	f = http_head_get(&t.h, "Authorization");	/* the handle itself never goes */
	assert_null(inject_field_value(&t.h, &t.out.edits, (size_t)(f - t.h.fields)));
	plan_free(&t.out);
	/* an empty body signs "" */
	ok(&t);
	assert_int_equal(finish(&t, true, "", &out, &outlen), 0);
	want_hmac("key", "", 0, "HMAC ", want);
	assert_int_equal(t.out.edits.nadd, 1);
	assert_string_equal(t.out.edits.add[0].value, want);
	t_fini(&t);
	free(m);
}

/* Signed over the body that is sent: handles and placeholders already replaced. */
static void
test_finish_hmac_rewritten(void **state)
{
	struct t t;
	char *m = mint("mac", "sb-1"), *b = mint("bod", "sb-1"), body[2048], want[128], *out;
	size_t outlen;
	static const char sent[] = "{\"a\": \"bod-SECRET\", \"b\": \"bod-SECRET\"}";

	(void)state;
	t_init(&t);
	t.env.policy = finpol;
	t_head(&t, "body.test", "POST /v1 HTTP/1.1\r\nHost: body.test\r\nX-Sig: %s\r\n"
	    "Content-Length: 5\r\n\r\n", m);
	ok(&t);
	assert_true(t.out.buffer_body);
	snprintf(body, sizeof(body), "{\"a\": \"%s\", \"b\": \"{{BOD}}\"}", b);
	assert_int_equal(finish(&t, true, body, &out, &outlen), 0);
	assert_body(out, outlen, sent);
	want_hmac("mac-key-SECRET", sent, strlen(sent), "sig=", want);
	assert_int_equal(t.out.edits.nadd, 1);
	assert_string_equal(t.out.edits.add[0].name, "X-Sig");
	assert_string_equal(t.out.edits.add[0].value, want);
	assert_int_equal(t.out.nscrub, 2);
	secmem_wipe_free(out);
	t_fini(&t);
	free(m);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed_bearer),
		cmocka_unit_test(test_rotating_secret),
		cmocka_unit_test(test_allowed_basic_query_pairs),
		cmocka_unit_test(test_denials),
		cmocka_unit_test(test_aws_unsigned_refused),
		cmocka_unit_test(test_aws_assumed_identity),
		cmocka_unit_test(test_aws_own_keys_sign_at_once),
		cmocka_unit_test(test_rate_limited),
		cmocka_unit_test(test_lineage_audit_and_rate),
		cmocka_unit_test(test_encoded),
		cmocka_unit_test(test_git_refs_claim),
		cmocka_unit_test(test_encoded_in_basic),
		cmocka_unit_test(test_buffer_body),
		cmocka_unit_test(test_swap_body),
		cmocka_unit_test(test_swap_echo_ok_in_body),
		cmocka_unit_test(test_throttle_threshold),
		cmocka_unit_test(test_throttle_per_source),
		cmocka_unit_test(test_throttle_token_and_ipv6),
		cmocka_unit_test(test_throttle_tokenizer),
		cmocka_unit_test(test_throttle_rate_limited_and_body),
		cmocka_unit_test(test_throttle_off),
		cmocka_unit_test(test_finish_no_handle),
		cmocka_unit_test(test_finish_body_handle),
		cmocka_unit_test(test_finish_encoded),
		cmocka_unit_test(test_finish_not_body_cred),
		cmocka_unit_test(test_finish_plain_http),
		cmocka_unit_test(test_finish_hmac),
		cmocka_unit_test(test_finish_hmac_rewritten),
	};
	policy_errors_t errs;
	int rc;

	if (sodium_init() < 0)
		return 1;
	pol = policy_load_buffer("/tmp/sg-swap-test.json", policy_json, strlen(policy_json),
	    &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	tpol = policy_load_buffer("/tmp/sg-swap-throttle.json", throttle_json,
	    strlen(throttle_json), &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "throttle policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	offpol = policy_load_buffer("/tmp/sg-swap-off.json", off_json, strlen(off_json), &errs);
	policy_errors_free(&errs);
	finpol = policy_load_buffer("/tmp/sg-swap-fin.json", fin_json, strlen(fin_json),
	    &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "finish policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	kr = seal_keyring_new();
	stranger = key_seeded(9);
	if (pol == NULL || tpol == NULL || offpol == NULL || finpol == NULL || kr == NULL ||
	    seal_keyring_add(kr, key_seeded(1)) < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	policy_unref(finpol);
	policy_unref(offpol);
	policy_unref(tpol);
	seal_key_free(stranger);
	seal_keyring_free(kr);
	policy_unref(pol);
	return rc;
}
