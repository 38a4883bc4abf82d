/* test_plan.c — the request plan: free, scrub pairs, body rewrite, plain http, pool key,
 * signers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "http.h"
#include "inject.h"
#include "plan.h"
#include "policy.h"
#include "scrub.h"
#include "secmem.h"
#include "tokenizer.h"
#include "util.h"

#define BEAR_SECRET	"sk-bear-SECRET"
#define OPEN_SECRET	"open-SECRET"
#define BOD_SECRET	"bod-SECRET"
#define MAC_SECRET	"mac-key-SECRET"
#define TK_SECRET	"tk-SECRET-123"
#define H_A		"sgh1.handle-A"
#define H_B		"sgh1.handle-B"
#define H_BOD		"sgh1.handle-body"

static const char policy_json[] =
    "{\"credentials\": {"
    "  \"bear\": {\"secret\": {\"value\": \"" BEAR_SECRET "\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"]},"
    "  \"open\": {\"secret\": {\"value\": \"" OPEN_SECRET "\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"],"
    "    \"allow_plain_http\": true},"
    "  \"open2\": {\"secret\": {\"value\": \"open2-SECRET\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"],"
    "    \"allow_plain_http\": true},"
    "  \"bod\": {\"secret\": {\"value\": \"" BOD_SECRET "\"},"
    "    \"inject\": {\"type\": \"body\", \"placeholder\": \"{{BOD}}\"},"
    "    \"hosts\": [\"body.test\"]},"
    "  \"bodnp\": {\"secret\": {\"value\": \"bodnp-SECRET\"},"
    "    \"inject\": {\"type\": \"body\"}, \"hosts\": [\"body.test\"]},"
    "  \"mac\": {\"secret\": {\"value\": \"" MAC_SECRET "\"},"
    "    \"inject\": {\"type\": \"hmac\", \"name\": \"X-Sig\", \"format\": \"sig=%s\"},"
    "    \"hosts\": [\"api.test\"]},"
    "  \"mac2\": {\"secret\": {\"value\": \"" MAC_SECRET "\"},"
    "    \"inject\": {\"type\": \"hmac\"}, \"hosts\": [\"api.test\"]}}}";

static policy_t *pol;

static const policy_credential_t *
cred(const char *name)
{
	const policy_credential_t *c = policy_credential_find(pol, name);

	assert_non_null(c);
	return c;
}

/* One injected secret: name's, replaced in responses by handle. */
static void
add_secret(plan_secret_t *s, const policy_credential_t *c, const char *handle)
{
	s->cred = c;
	s->secret = c->secret;
	s->secret_len = c->secret_len;
	s->handle = strdup(handle);
	assert_non_null(s->handle);
	s->handle_len = strlen(handle);
}

static void
add_scrub(plan_t *p, const char *name, const char *handle)
{
	assert_true(p->nscrub < INJECT_MAX_HANDLES);
	add_secret(&p->scrub[p->nscrub++], cred(name), handle);
}

static void
add_body(plan_t *p, const char *name, const char *handle)
{
	assert_true(p->nbody < INJECT_MAX_HANDLES);
	add_secret(&p->body[p->nbody++], cred(name), handle);
}

/* A tokenizer secret to scrub (wipe memory, as tokenizer_apply leaves it). */
static void
add_tk_scrub(plan_t *p, const char *secret)
{
	tokenizer_scrub_t *t = &p->tk.scrub[p->tk.nscrub++];

	t->secret = secmem_wipe_dup(secret, strlen(secret));
	assert_non_null(t->secret);
	t->len = strlen(secret);
	p->tk.n++;
}

/* A tokenizer body placeholder -> token. */
static void
add_tk_body(plan_t *p, const char *placeholder, const char *token)
{
	tokenizer_body_t *b = &p->tk.body[p->tk.nbody++];

	b->placeholder = strdup(placeholder);
	b->placeholder_len = strlen(placeholder);
	b->token = secmem_wipe_dup(token, strlen(token));
	b->token_len = strlen(token);
	assert_non_null(b->placeholder);
	assert_non_null(b->token);
}

/* The tokenizer's body signer: key "tk-key", header dst, format fmt. */
static void
add_tk_hmac(plan_t *p, const char *dst, const char *fmt)
{
	p->tk.hmac.set = true;
	p->tk.hmac.key = (uint8_t *)secmem_wipe_dup("tk-key", 6);
	assert_non_null(p->tk.hmac.key);
	p->tk.hmac.key_len = 6;
	snprintf(p->tk.hmac.dst, sizeof(p->tk.hmac.dst), "%s", dst);
	snprintf(p->tk.hmac.fmt, sizeof(p->tk.hmac.fmt), "%s", fmt);
}

/* --- running a scrubber over one message --------------------------------------------- */

struct sink {
	char buf[4096];
	size_t len;
};

static void
sink_cb(void *arg, const void *data, size_t len)
{
	struct sink *k = arg;

	assert_true(k->len + len < sizeof(k->buf));
	memcpy(k->buf + k->len, data, len);
	k->len += len;
	k->buf[k->len] = '\0';
}

/* The message in, scrubbed, as a string in k. */
static const char *
run(scrub_t *s, const char *in, struct sink *k)
{
	memset(k, 0, sizeof(*k));
	assert_int_equal(scrub_feed(s, in, strlen(in), sink_cb, k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, k), 0);
	return k->buf;
}

/* --- a request head ------------------------------------------------------------------ */

static void
head_parse(http_head_t *h, const char *msg)
{
	http_parser p;
	const char *why = NULL;

	memset(h, 0, sizeof(*h));
	http_parser_init(&p, HTTP_REQUEST);
	if (http_head_parse(&p, msg, strlen(msg), h, HTTP_GET, &why) != 0)
		fail_msg("parse: %s", why);
}

static const char sign_msg[] = "POST /v1 HTTP/1.1\r\nHost: api.test\r\nX-Sig: stale\r\n"
    "Content-Length: 5\r\n\r\n";

/* --- plan_init / plan_free ----------------------------------------------------------- */

static void
assert_empty(const plan_t *p)
{
	assert_int_equal(p->status, 0);
	assert_null(p->code);
	assert_string_equal(p->message, "");
	assert_int_equal(p->nscrub, 0);
	assert_int_equal(p->nbody, 0);
	assert_null(p->hmac_cred);
	assert_false(p->buffer_body);
	assert_false(p->exfiltration);
	assert_int_equal(p->tk.n, 0);
	assert_int_equal(p->tk.nscrub, 0);
	assert_int_equal(p->tk.nbody, 0);
	assert_null(p->tk.hmac.key);
	assert_int_equal(p->edits.nadd, 0);
	assert_null(p->edits.target);
	assert_false(p->edits.secret_in_head);
	for (size_t i = 0; i < SG_MAX_HEADERS; i++) {
		assert_int_equal(p->edits.kind[i], EDIT_KEEP);
		assert_null(p->edits.value[i]);
	}
	assert_string_equal(p->hid, "");
	assert_string_equal(p->sandbox, "");
}

/* Everything a plan can own, at once: ASan's leak check at exit is the other half. */
static void
fill(plan_t *p, const http_head_t *h)
{
	add_scrub(p, "bear", H_A);
	add_scrub(p, "bod", H_BOD);
	add_body(p, "bod", H_BOD);
	p->hmac_cred = cred("mac");
	p->buffer_body = true;
	assert_int_equal(inject_edits_set_header(h, &p->edits, "X-Added",
	    secmem_wipe_dup("v", 1)), 0);
	p->edits.kind[0] = EDIT_REPLACE;
	p->edits.value[0] = secmem_wipe_dup("new", 3);
	p->edits.target = secmem_wipe_dup("/v2", 3);
	p->edits.secret_in_head = true;
	add_tk_scrub(p, TK_SECRET);
	add_tk_body(p, "{{TK}}", "tk-token");
	add_tk_hmac(p, "X-Tk-Sig", "%x");
	p->status = 403;
	p->code = "handle_in_body";
	snprintf(p->message, sizeof(p->message), "no");
	snprintf(p->hid, sizeof(p->hid), "0123");
	snprintf(p->sandbox, sizeof(p->sandbox), "sb-1");
}

static void
test_init_free(void **state)
{
	plan_t *p = malloc(sizeof(*p));
	http_head_t h;

	(void)state;
	assert_non_null(p);
	memset(p, 0xa5, sizeof(*p));		/* plan_init owes nothing to the memory */
	plan_init(p);
	assert_empty(p);
	plan_free(p);				/* an empty plan frees */
	assert_empty(p);
	head_parse(&h, sign_msg);
	fill(p, &h);
	assert_int_equal(p->nscrub, 2);
	plan_free(p);
	assert_empty(p);
	plan_free(p);				/* freed twice: nothing left to free */
	assert_empty(p);
	fill(p, &h);				/* and used again */
	assert_int_equal(p->edits.nadd, 1);
	plan_free(p);
	assert_empty(p);
	http_head_clear(&h);
	free(p);
}

/* --- plan_scrub_into ----------------------------------------------------------------- */

static void
test_scrub_into_handles(void **state)
{
	plan_t p, q;
	scrub_t *s = scrub_new(SCRUB_FORMS);
	struct sink k;
	const char *o;

	(void)state;
	assert_non_null(s);
	plan_init(&p);
	add_scrub(&p, "bear", H_A);
	add_scrub(&p, "open", H_B);
	assert_int_equal(plan_scrub_into(&p, s), 0);
	assert_int_equal(scrub_needles(s), 2);
	o = run(s, "a " BEAR_SECRET " b sk-bear%2DSECRET c " OPEN_SECRET, &k);
	assert_string_equal(o, "a " H_A " b " H_A " c " H_B);
	assert_int_equal(scrub_replacements(s), 3);
	/* the same secret under another handle: one entry, the new replacement */
	plan_init(&q);
	add_scrub(&q, "bear", "sgh1.handle-C");
	assert_int_equal(plan_scrub_into(&q, s), 0);
	assert_int_equal(scrub_needles(s), 2);
	o = run(s, "x " BEAR_SECRET " y", &k);
	assert_string_equal(o, "x sgh1.handle-C y");
	assert_null(strstr(o, H_A));
	/* adding the same plan again changes nothing */
	assert_int_equal(plan_scrub_into(&q, s), 0);
	assert_int_equal(scrub_needles(s), 2);
	plan_free(&q);
	plan_free(&p);
	scrub_free(s);
}

/* A literal scrubber takes the pairs too (raw bytes only). */
static void
test_scrub_into_literal(void **state)
{
	plan_t p;
	scrub_t *s = scrub_new(SCRUB_LITERAL);
	struct sink k;

	(void)state;
	assert_non_null(s);
	plan_init(&p);
	add_scrub(&p, "bear", H_A);
	assert_int_equal(plan_scrub_into(&p, s), 0);
	assert_string_equal(run(s, BEAR_SECRET "|sk-bear%2DSECRET", &k),
	    H_A "|sk-bear%2DSECRET");
	plan_free(&p);
	scrub_free(s);
}

static void
test_scrub_into_tokenizer(void **state)
{
	plan_t p;
	scrub_t *s = scrub_new(SCRUB_FORMS);
	struct sink k;
	const char *o;

	(void)state;
	assert_non_null(s);
	plan_init(&p);
	add_tk_scrub(&p, TK_SECRET);		/* tokenizer only: no handle secret */
	assert_int_equal(plan_scrub_into(&p, s), 0);
	assert_int_equal(scrub_needles(s), 1);
	o = run(s, "t=" TK_SECRET, &k);
	assert_string_equal(o, "t=" TOKENIZER_SCRUB_TEXT);
	plan_free(&p);
	plan_init(&p);				/* both kinds in one plan */
	add_tk_scrub(&p, "tk-OTHER-456");
	add_scrub(&p, "bear", H_A);
	assert_int_equal(plan_scrub_into(&p, s), 0);
	assert_int_equal(scrub_needles(s), 3);
	o = run(s, TK_SECRET " tk-OTHER-456 " BEAR_SECRET, &k);
	assert_string_equal(o, TOKENIZER_SCRUB_TEXT " " TOKENIZER_SCRUB_TEXT " " H_A);
	assert_null(strstr(o, "SECRET"));
	plan_free(&p);
	scrub_free(s);
}

/*
 * A secret shorter than SCRUB_MIN_NEEDLE: a policy that loads must not make
 * plan_scrub_into fail (its contract: -1 only when out of memory; the scrubber simply
 * cannot cover such a secret, as the tokenizer's own short tokens are skipped).
 */
static void
test_scrub_into_short_secret(void **state)
{
	static const char json[] =
	    "{\"credentials\": {"
	    "  \"short\": {\"secret\": {\"value\": \"abc\"},"
	    "    \"inject\": {\"type\": \"hmac\"}, \"hosts\": [\"api.test\"]}}}";
	policy_errors_t errs;
	policy_t *sp;
	plan_t p;
	scrub_t *s;
	size_t n;
	int rc;

	(void)state;
	sp = policy_load_buffer("/tmp/sg-plan-short.json", json, strlen(json), &errs);
	policy_errors_free(&errs);
	assert_non_null(sp);			/* a short secret is allowed ... */
	assert_non_null(s = scrub_new(SCRUB_FORMS));
	plan_init(&p);
	add_secret(&p.scrub[p.nscrub++], policy_credential_find(sp, "short"), H_A);
	add_scrub(&p, "bear", H_B);
	rc = plan_scrub_into(&p, s);
	n = scrub_needles(s);
	plan_free(&p);
	scrub_free(s);
	policy_unref(sp);
	assert_int_equal(rc, 0);		/* ... and only left unscrubbed */
	assert_int_equal(n, 1);			/* the other secret is still covered */
}

/* --- plan_body_scrubber -------------------------------------------------------------- */

static void
test_body_scrubber_none(void **state)
{
	plan_t p;
	scrub_t *s = (scrub_t *)(uintptr_t)1;	/* must be overwritten */

	(void)state;
	plan_init(&p);
	assert_int_equal(plan_body_scrubber(&p, &s), 0);
	assert_null(s);
	add_scrub(&p, "bear", H_A);		/* head secrets are no body work */
	p.hmac_cred = cred("mac");
	assert_int_equal(plan_body_scrubber(&p, &s), 0);
	assert_null(s);
	plan_free(&p);
}

static void
test_body_scrubber(void **state)
{
	plan_t p;
	scrub_t *s;
	struct sink k;

	(void)state;
	plan_init(&p);
	add_body(&p, "bod", H_BOD);
	add_body(&p, "bodnp", "sgh1.handle-np");
	assert_int_equal(plan_body_scrubber(&p, &s), 0);
	assert_non_null(s);
	assert_int_equal(scrub_needles(s), 3);	/* two handles, one placeholder */
	assert_string_equal(run(s, "a=" H_BOD "&b={{BOD}}&c=sgh1.handle-np", &k),
	    "a=" BOD_SECRET "&b=" BOD_SECRET "&c=bodnp-SECRET");
	/* literal: an encoded handle is left as it is (the leak scan refuses it first) */
	assert_string_equal(run(s, "sgh1%2Ehandle-body", &k), "sgh1%2Ehandle-body");
	scrub_free(s);
	/* tokenizer placeholders too, alone or with the handles */
	plan_free(&p);
	plan_init(&p);
	add_tk_body(&p, "{{TK}}", "tk-token");
	assert_int_equal(plan_body_scrubber(&p, &s), 0);
	assert_non_null(s);
	assert_string_equal(run(s, "{\"t\": \"{{TK}}\"}", &k), "{\"t\": \"tk-token\"}");
	scrub_free(s);
	add_body(&p, "bod", H_BOD);
	assert_int_equal(plan_body_scrubber(&p, &s), 0);
	assert_string_equal(run(s, "{{TK}} " H_BOD, &k), "tk-token " BOD_SECRET);
	scrub_free(s);
	plan_free(&p);
}

/*
 * A body credential's placeholder shorter than SG_PLACEHOLDER_MIN is refused by the
 * policy, with its location: no loaded policy can make plan_body_scrubber fail on one.
 * One of exactly SG_PLACEHOLDER_MIN bytes loads and is replaced.
 */
static void
test_body_scrubber_short_placeholder(void **state)
{
	static const char json_short[] =
	    "{\"credentials\": {"
	    "  \"b\": {\"secret\": {\"value\": \"" BOD_SECRET "\"},"
	    "    \"inject\": {\"type\": \"body\", \"placeholder\": \"$K\"},"
	    "    \"hosts\": [\"body.test\"]}}}";
	static const char json_four[] =
	    "{\"credentials\": {"
	    "  \"b\": {\"secret\": {\"value\": \"" BOD_SECRET "\"},"
	    "    \"inject\": {\"type\": \"body\", \"placeholder\": \"$KEY\"},"
	    "    \"hosts\": [\"body.test\"]}}}";
	policy_errors_t errs;
	policy_t *sp;
	plan_t p;
	scrub_t *s = NULL;
	struct sink k;
	bool located = false;
	int rc;

	(void)state;
	sp = policy_load_buffer("/tmp/sg-plan-ph.json", json_short, strlen(json_short), &errs);
	for (size_t i = 0; i < errs.n; i++)
		located |= strstr(errs.msg[i], "credentials.b.inject.placeholder") != NULL;
	policy_errors_free(&errs);
	assert_null(sp);
	assert_true(located);
	sp = policy_load_buffer("/tmp/sg-plan-ph.json", json_four, strlen(json_four), &errs);
	policy_errors_free(&errs);
	assert_non_null(sp);
	plan_init(&p);
	add_secret(&p.body[p.nbody++], policy_credential_find(sp, "b"), H_BOD);
	rc = plan_body_scrubber(&p, &s);
	assert_int_equal(rc, 0);
	assert_non_null(s);
	assert_string_equal(run(s, "k=$KEY", &k), "k=" BOD_SECRET);
	scrub_free(s);
	plan_free(&p);
	policy_unref(sp);
}

/* --- plan_plain_http_ok -------------------------------------------------------------- */

static void
test_plain_http_ok(void **state)
{
	plan_t p;

	(void)state;
	plan_init(&p);
	assert_true(plan_plain_http_ok(&p));	/* no secret */
	add_scrub(&p, "open", H_A);
	assert_true(plan_plain_http_ok(&p));
	add_scrub(&p, "bear", H_B);		/* one that does not allow it */
	assert_false(plan_plain_http_ok(&p));
	plan_free(&p);
	plan_init(&p);
	add_scrub(&p, "bear", H_B);		/* ... first */
	add_scrub(&p, "open", H_A);
	assert_false(plan_plain_http_ok(&p));
	plan_free(&p);
	plan_init(&p);
	add_scrub(&p, "open", H_A);		/* all allow it */
	add_scrub(&p, "open2", H_B);
	assert_true(plan_plain_http_ok(&p));
	plan_free(&p);
}

/* --- plan_pool_key ------------------------------------------------------------------- */

#define PEER	"10.0.2.15"

static void
key_of(const plan_t *p, const char *tok, char *key)
{
	plan_pool_key(p, PEER, "api.test", 443, true, tok, key, 256);
}

static void
test_pool_key(void **state)
{
	plan_t p, r;
	char k1[256], k2[256];

	(void)state;
	plan_init(&p);
	plan_init(&r);
	snprintf(p.sandbox, sizeof(p.sandbox), "sb-1");
	snprintf(r.sandbox, sizeof(r.sandbox), "sb-1");
	add_scrub(&p, "open", H_A);
	add_scrub(&p, "bear", H_B);
	add_scrub(&r, "bear", "sgh1.other-1");	/* the other order, other handles */
	add_scrub(&r, "open", "sgh1.other-2");
	key_of(&p, NULL, k1);
	assert_string_equal(k1, "sb-1|api.test|443|1|bear|open");
	key_of(&p, NULL, k2);
	assert_string_equal(k1, k2);		/* the same inputs, the same key */
	key_of(&r, NULL, k2);
	assert_string_equal(k1, k2);		/* sorted: order does not matter */
	/* a known sandbox: the proxy token changes nothing */
	key_of(&p, "tok-T", k2);
	assert_string_equal(k1, k2);
	/* another sandbox, port, scheme, host: another key */
	snprintf(r.sandbox, sizeof(r.sandbox), "sb-2");
	key_of(&r, NULL, k2);
	assert_string_equal(k2, "sb-2|api.test|443|1|bear|open");
	plan_pool_key(&p, PEER, "api.test", 8443, true, NULL, k2, sizeof(k2));
	assert_string_equal(k2, "sb-1|api.test|8443|1|bear|open");
	plan_pool_key(&p, PEER, "api.test", 443, false, NULL, k2, sizeof(k2));
	assert_string_equal(k2, "sb-1|api.test|443|0|bear|open");
	plan_pool_key(&p, PEER, "b.test", 443, true, NULL, k2, sizeof(k2));
	assert_string_equal(k2, "sb-1|b.test|443|1|bear|open");
	/* fewer credentials: another key */
	plan_free(&r);
	plan_init(&r);
	snprintf(r.sandbox, sizeof(r.sandbox), "sb-1");
	add_scrub(&r, "bear", H_B);
	key_of(&r, NULL, k2);
	assert_string_equal(k2, "sb-1|api.test|443|1|bear");
	plan_free(&r);
	plan_free(&p);
}

static void
test_pool_key_no_sandbox(void **state)
{
	plan_t p;
	char k1[256], k2[256], k3[256];

	(void)state;
	plan_init(&p);
	key_of(&p, NULL, k1);
	assert_string_equal(k1, PEER "|api.test|443|1");	/* the peer stands in */
	plan_pool_key(&p, "10.0.2.16", "api.test", 443, true, NULL, k2, sizeof(k2));
	assert_string_equal(k2, "10.0.2.16|api.test|443|1");
	key_of(&p, "", k2);			/* an empty token is none */
	assert_string_equal(k1, k2);
	/* no sandbox known: the token tells sandboxes behind one address apart */
	key_of(&p, "tok-T", k2);
	key_of(&p, "tok-U", k3);
	assert_string_not_equal(k1, k2);
	assert_string_not_equal(k2, k3);
	assert_int_equal(strncmp(k2, k1, strlen(k1)), 0);
	assert_int_equal(strncmp(k2 + strlen(k1), "|pt:", 4), 0);
	assert_int_equal(strlen(k2 + strlen(k1) + 4), 16);
	assert_int_equal(strspn(k2 + strlen(k1) + 4, "0123456789abcdef"), 16);
	assert_null(strstr(k2, "tok-T"));	/* a hash, never the token */
	key_of(&p, "tok-T", k3);
	assert_string_equal(k2, k3);
	plan_free(&p);
}

static void
test_pool_key_tokenizer(void **state)
{
	plan_t p;
	char k[256];

	(void)state;
	plan_init(&p);
	snprintf(p.sandbox, sizeof(p.sandbox), "sb-1");
	add_scrub(&p, "bear", H_A);
	add_tk_scrub(&p, TK_SECRET);
	snprintf(p.tk.id, sizeof(p.tk.id), "0123456789abcdef0123456789abcdef");
	key_of(&p, NULL, k);
	assert_string_equal(k, "sb-1|api.test|443|1|bear|tk:0123456789abcdef0123456789abcdef");
	/* tk.n 0: the id (as a failed apply may leave it) is no part of the key */
	p.tk.n = 0;
	key_of(&p, NULL, k);
	assert_string_equal(k, "sb-1|api.test|443|1|bear");
	p.tk.n = 1;
	p.sandbox[0] = '\0';			/* with the token's hash after it */
	key_of(&p, "tok-T", k);
	assert_int_equal(strncmp(k, PEER "|api.test|443|1|bear|tk:0123",
	    strlen(PEER "|api.test|443|1|bear|tk:0123")), 0);
	assert_non_null(strstr(k, "abcdef|pt:"));
	plan_free(&p);
}

/* A short buffer: the key is cut, never overrun (ASan), and NUL-terminated. */
static void
test_pool_key_truncated(void **state)
{
	plan_t p;
	char full[256], *k;

	(void)state;
	plan_init(&p);
	add_scrub(&p, "open", H_A);
	add_scrub(&p, "bear", H_B);
	snprintf(p.tk.id, sizeof(p.tk.id), "feed");
	p.tk.n = 1;
	key_of(&p, "tok-T", full);
	for (size_t n = 1; n <= strlen(full) + 1; n++) {
		assert_non_null(k = malloc(n));
		plan_pool_key(&p, PEER, "api.test", 443, true, "tok-T", k, n);
		assert_int_equal(strlen(k), n - 1 < strlen(full) ? n - 1 : strlen(full));
		assert_int_equal(strncmp(k, full, strlen(k)), 0);
		free(k);
	}
	plan_free(&p);
}

/* --- plan_sign ----------------------------------------------------------------------- */

/* format % lower-case hex of HMAC-SHA256(key, body), computed here independently. */
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

/* The one added header: name and value. */
static void
assert_added(const plan_t *p, const char *name, const char *value)
{
	assert_int_equal(p->edits.nadd, 1);
	assert_string_equal(p->edits.add[0].name, name);
	assert_string_equal(p->edits.add[0].value, value);
	assert_true(p->edits.secret_in_head);
}

static void
test_sign_hmac(void **state)
{
	http_head_t h;
	plan_t p;
	char want[128], *v;
	const http_field_t *f;

	(void)state;
	head_parse(&h, sign_msg);
	f = http_head_get(&h, "X-Sig");
	assert_non_null(f);
	plan_init(&p);
	p.hmac_cred = cred("mac");
	assert_int_equal(plan_sign(&p, &h, "hello", 5), 0);
	assert_int_equal(p.status, 0);
	want_hmac(MAC_SECRET, "hello", 5, "sig=", want);
	assert_added(&p, "X-Sig", want);
	v = inject_hmac_value(cred("mac"), "hello", 5);
	assert_string_equal(p.edits.add[0].value, v);
	secmem_wipe_free(v);
	/* the client's own X-Sig does not go */
	assert_int_equal(p.edits.kind[(size_t)(f - h.fields)], EDIT_DROP);
	assert_null(inject_field_value(&h, &p.edits, (size_t)(f - h.fields)));
	plan_free(&p);
	/* an empty body signs "" (body NULL or not) */
	plan_init(&p);
	p.hmac_cred = cred("mac");
	assert_int_equal(plan_sign(&p, &h, NULL, 0), 0);
	want_hmac(MAC_SECRET, "", 0, "sig=", want);
	assert_added(&p, "X-Sig", want);
	v = inject_hmac_value(cred("mac"), "", 0);
	assert_string_equal(p.edits.add[0].value, v);
	secmem_wipe_free(v);
	plan_free(&p);
	plan_init(&p);
	p.hmac_cred = cred("mac");
	assert_int_equal(plan_sign(&p, &h, "ignored", 0), 0);
	assert_added(&p, "X-Sig", want);
	plan_free(&p);
	/* the defaults: Authorization, "HMAC %s" */
	plan_init(&p);
	p.hmac_cred = cred("mac2");
	assert_int_equal(plan_sign(&p, &h, "hello", 5), 0);
	want_hmac(MAC_SECRET, "hello", 5, "HMAC ", want);
	assert_added(&p, "Authorization", want);
	plan_free(&p);
	http_head_clear(&h);
}

static void
test_sign_none(void **state)
{
	http_head_t h;
	plan_t p;

	(void)state;
	head_parse(&h, sign_msg);
	plan_init(&p);
	add_scrub(&p, "bear", H_A);
	add_body(&p, "bod", H_BOD);
	assert_int_equal(plan_sign(&p, &h, "hello", 5), 0);
	assert_int_equal(p.edits.nadd, 0);
	assert_false(p.edits.secret_in_head);
	assert_int_equal(p.edits.kind[0], EDIT_KEEP);
	assert_int_equal(p.status, 0);
	plan_free(&p);
	http_head_clear(&h);
}

/* The tokenizer's signer: its dst, its fmt (%X: upper-case hex). */
static void
test_sign_tokenizer(void **state)
{
	http_head_t h;
	plan_t p;
	char want[128], *v;

	(void)state;
	head_parse(&h, sign_msg);
	plan_init(&p);
	p.tk.n = 1;
	add_tk_hmac(&p, "X-Tk-Sig", "t=%X");
	assert_int_equal(plan_sign(&p, &h, "hello", 5), 0);
	v = tokenizer_hmac_value(&p.tk, "hello", 5);
	assert_non_null(v);
	assert_added(&p, "X-Tk-Sig", v);
	want_hmac("tk-key", "hello", 5, "t=", want);
	for (char *c = want; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	assert_string_equal(v, want);
	secmem_wipe_free(v);
	/* with a credential's signer too: both headers */
	plan_free(&p);
	plan_init(&p);
	p.hmac_cred = cred("mac");
	add_tk_hmac(&p, "X-Tk-Sig", "%x");
	assert_int_equal(plan_sign(&p, &h, "hello", 5), 0);
	assert_int_equal(p.edits.nadd, 2);
	assert_string_equal(p.edits.add[0].name, "X-Sig");
	assert_string_equal(p.edits.add[1].name, "X-Tk-Sig");
	want_hmac("tk-key", "hello", 5, "", want);
	assert_string_equal(p.edits.add[1].value, want);
	plan_free(&p);
	http_head_clear(&h);
}

/* No room for the signature header: 500 internal_error, nothing leaks. */
static void
test_sign_refused(void **state)
{
	http_head_t h;
	plan_t p;

	(void)state;
	head_parse(&h, sign_msg);
	plan_init(&p);
	for (int i = 0; i < INJECT_MAX_HANDLES; i++)
		assert_int_equal(inject_edits_set_header(&h, &p.edits, "X-Fill",
		    secmem_wipe_dup("v", 1)), 0);
	p.hmac_cred = cred("mac");
	assert_int_equal(plan_sign(&p, &h, "hello", 5), -1);
	assert_int_equal(p.status, 500);
	assert_string_equal(p.code, "internal_error");
	assert_non_null(strstr(p.message, "sign"));
	assert_int_equal(p.edits.nadd, INJECT_MAX_HANDLES);
	plan_free(&p);
	http_head_clear(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_free),
		cmocka_unit_test(test_scrub_into_handles),
		cmocka_unit_test(test_scrub_into_literal),
		cmocka_unit_test(test_scrub_into_tokenizer),
		cmocka_unit_test(test_scrub_into_short_secret),
		cmocka_unit_test(test_body_scrubber_none),
		cmocka_unit_test(test_body_scrubber),
		cmocka_unit_test(test_body_scrubber_short_placeholder),
		cmocka_unit_test(test_plain_http_ok),
		cmocka_unit_test(test_pool_key),
		cmocka_unit_test(test_pool_key_no_sandbox),
		cmocka_unit_test(test_pool_key_tokenizer),
		cmocka_unit_test(test_pool_key_truncated),
		cmocka_unit_test(test_sign_hmac),
		cmocka_unit_test(test_sign_none),
		cmocka_unit_test(test_sign_tokenizer),
		cmocka_unit_test(test_sign_refused),
	};
	policy_errors_t errs;
	int rc;

	if (sodium_init() < 0)
		return 1;
	pol = policy_load_buffer("/tmp/sg-plan-test.json", policy_json, strlen(policy_json),
	    &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	if (pol == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	policy_unref(pol);
	return rc;
}
