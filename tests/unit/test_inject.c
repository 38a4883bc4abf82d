/* test_inject.c — finding handles in parsed heads, planning every inject type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "http.h"
#include "inject.h"
#include "policy.h"
#include "secmem.h"
#include "util.h"

#define H1 "sgh1.AAAAbbbbCCCC"
#define H2 "sgh1.ZZZZyyyyXXXX"
#define BEAR_SECRET "sk-bear-SECRET"
#define HDR_SECRET "hdr-SECRET"
#define BAS_SECRET "bas-SECRET"
#define QRY_SECRET "q s&cret/+"
#define QRY_ENC "q%20s%26cret%2F%2B"

static const char policy_json[] =
    "{\"credentials\": {"
    "  \"bear\": {\"secret\": {\"value\": \"" BEAR_SECRET "\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"]},"
    "  \"hdr\": {\"secret\": {\"value\": \"" HDR_SECRET "\"},"
    "    \"inject\": {\"type\": \"header\", \"name\": \"x-api-key\", \"format\": \"prefix-%s\"},"
    "    \"hosts\": [\"api.test\"]},"
    "  \"bas\": {\"secret\": {\"value\": \"" BAS_SECRET "\"},"
    "    \"inject\": {\"type\": \"basic\", \"username\": \"alice\"}, \"hosts\": [\"api.test\"]},"
    "  \"qry\": {\"secret\": {\"value\": \"" QRY_SECRET "\"},"
    "    \"inject\": {\"type\": \"query\", \"param\": \"key\"}, \"hosts\": [\"api.test\"]},"
    "  \"mac\": {\"secret\": {\"value\": \"key\"},"
    "    \"inject\": {\"type\": \"hmac\"}, \"hosts\": [\"api.test\"]},"
    "  \"bod\": {\"secret\": {\"value\": \"bod-SECRET\"},"
    "    \"inject\": {\"type\": \"body\"}, \"hosts\": [\"api.test\"]}},"
    " \"sandboxes\": {\"sb-1\": {\"addresses\": [\"10.0.2.15/32\"],"
    "    \"credentials\": [\"bear\", \"hdr\", \"bas\", \"qry\", \"mac\", \"bod\"]}}}";

static policy_t *pol;

struct req {
	http_head_t h;
	inject_list_t l;
	inject_edits_t e;
	char *msg;
};

static void
req_parse(struct req *r, const char *msg)
{
	http_parser p;
	const char *why = NULL;

	memset(r, 0, sizeof(*r));
	r->msg = strdup(msg);
	http_parser_init(&p, HTTP_REQUEST);
	if (http_head_parse(&p, r->msg, strlen(r->msg), &r->h, HTTP_GET, &why) != 0)
		fail_msg("parse: %s", why ? why : "?");
	inject_find(&r->h, r->h.target, &r->l);
	inject_edits_init(&r->e);
}

static void
req_free(struct req *r)
{
	inject_list_free(&r->l);
	inject_edits_free(&r->e);
	http_head_clear(&r->h);
	free(r->msg);
}

static size_t
field_ix(const http_head_t *h, const char *name, size_t nth)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0 && nth-- == 0)
			return i;
	fail_msg("no field %s", name);
	return 0;
}

static const policy_credential_t *
cred(const char *name)
{
	const policy_credential_t *c = policy_credential_find(pol, name);

	assert_non_null(c);
	return c;
}

static int
apply(struct req *r, const char *handle, const char *cname, const char **why)
{
	*why = NULL;
	return inject_apply(&r->h, r->h.target, &r->l, handle, strlen(handle), cred(cname),
	    &r->e, why);
}

static void
apply_ok(struct req *r, const char *handle, const char *cname)
{
	const char *why;

	if (apply(r, handle, cname, &why) != 0)
		fail_msg("inject_apply %s: %s", cname, why ? why : "?");
}

/* The text of occurrence i as a C string (static buffer). */
static const char *
found(const struct req *r, size_t i)
{
	static char buf[SG_HANDLE_MAX_LEN + 1];
	size_t len;
	const char *t = inject_found_text(&r->h, r->h.target, &r->l.f[i], &len);

	memcpy(buf, t, len);
	buf[len] = '\0';
	return buf;
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

static char *
basic_msg(const char *plain, const char *extra)
{
	char *b = b64(plain), *m = malloc(1024);

	snprintf(m, 1024, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Basic %s\r\n"
	    "%s\r\n", b, extra ? extra : "");
	free(b);
	return m;
}

/* --- inject_find ---------------------------------------------------------------------- */

static void
test_find_header_values(void **state)
{
	struct req r;

	(void)state;
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " H1 "\r\n"
	    "X-Other: " H1 "\r\n\r\n");
	assert_int_equal(r.l.n, 2);
	assert_false(r.l.truncated);
	assert_int_equal(r.l.f[0].where, INJECT_IN_FIELD);
	assert_int_equal(r.l.f[0].field, field_ix(&r.h, "Authorization", 0));
	assert_int_equal(r.l.f[0].off, strlen("Bearer "));
	assert_int_equal(r.l.f[0].len, strlen(H1));
	assert_null(r.l.f[0].basic);
	assert_string_equal(found(&r, 0), H1);
	assert_int_equal(r.l.f[1].field, field_ix(&r.h, "X-Other", 0));
	assert_string_equal(found(&r, 1), H1);
	req_free(&r);

	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nX: none\r\n\r\n");
	assert_int_equal(r.l.n, 0);
	req_free(&r);
}

static void
test_find_basic(void **state)
{
	struct req r;
	char *m;

	(void)state;
	/* user:handle */
	m = basic_msg("bob:" H1, NULL);
	req_parse(&r, m);
	assert_int_equal(r.l.n, 1);
	assert_int_equal(r.l.f[0].where, INJECT_IN_BASIC);
	assert_int_equal(r.l.f[0].field, field_ix(&r.h, "Authorization", 0));
	assert_int_equal(r.l.f[0].off, 4);
	assert_non_null(r.l.f[0].basic);
	assert_int_equal(r.l.f[0].basic_len, strlen("bob:" H1));
	assert_memory_equal(r.l.f[0].basic, "bob:" H1, r.l.f[0].basic_len);
	assert_string_equal(found(&r, 0), H1);
	req_free(&r);
	free(m);

	/* handle as user */
	m = basic_msg(H1 ":x", NULL);
	req_parse(&r, m);
	assert_int_equal(r.l.n, 1);
	assert_int_equal(r.l.f[0].where, INJECT_IN_BASIC);
	assert_int_equal(r.l.f[0].off, 0);
	assert_string_equal(found(&r, 0), H1);
	req_free(&r);
	free(m);

	/* Proxy-Authorization is decoded too; another header with "Basic" is not */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\n"
	    "Proxy-Authorization: Basic Ym9iOnNnaDEuQUFBQQ==\r\n"
	    "X-Auth: Basic Ym9iOnNnaDEuQUFBQQ==\r\n\r\n");
	assert_int_equal(r.l.n, 1);
	assert_int_equal(r.l.f[0].field, field_ix(&r.h, "Proxy-Authorization", 0));
	assert_string_equal(found(&r, 0), "sgh1.AAAA");
	req_free(&r);

	/* not base64: nothing decoded, nothing found */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Basic !!!\r\n\r\n");
	assert_int_equal(r.l.n, 0);
	req_free(&r);
}

static void
test_find_query_glued_several(void **state)
{
	struct req r;

	(void)state;
	req_parse(&r, "GET /v1/x?a=1&key=" H1 "&b=" H2 " HTTP/1.1\r\nHost: api.test\r\n"
	    "X-Tag: prefix-" H2 "\r\n\r\n");
	assert_int_equal(r.l.n, 3);
	/* fields first, then the target */
	assert_int_equal(r.l.f[0].where, INJECT_IN_FIELD);
	assert_int_equal(r.l.f[0].off, strlen("prefix-"));
	assert_string_equal(found(&r, 0), H2);
	assert_int_equal(r.l.f[1].where, INJECT_IN_TARGET);
	assert_int_equal(r.l.f[1].off, strlen("/v1/x?a=1&key="));
	assert_string_equal(found(&r, 1), H1);
	assert_int_equal(r.l.f[2].where, INJECT_IN_TARGET);
	assert_string_equal(found(&r, 2), H2);
	req_free(&r);

	/* glued on both sides: the run of handle characters is taken whole */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nX: abc" H1 ",def\r\n\r\n");
	assert_int_equal(r.l.n, 1);
	assert_int_equal(r.l.f[0].off, 3);
	assert_string_equal(found(&r, 0), H1);
	req_free(&r);
}

static void
test_find_truncated(void **state)
{
	char msg[4096];
	size_t n = 0, cap = INJECT_MAX_HANDLES * 4;
	struct req r;

	(void)state;
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "GET /v1 HTTP/1.1\r\nHost: api.test\r\n");
	for (size_t i = 0; i < cap + 3; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "X-%zu: " H1 "\r\n", i);
	snprintf(msg + n, sizeof(msg) - n, "\r\n");
	req_parse(&r, msg);
	assert_int_equal(r.l.n, cap);
	assert_true(r.l.truncated);
	req_free(&r);

	/* exactly full: not truncated */
	n = 0;
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "GET /v1 HTTP/1.1\r\nHost: api.test\r\n");
	for (size_t i = 0; i < cap; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "X-%zu: " H1 "\r\n", i);
	snprintf(msg + n, sizeof(msg) - n, "\r\n");
	req_parse(&r, msg);
	assert_int_equal(r.l.n, cap);
	assert_false(r.l.truncated);
	req_free(&r);
}

/* --- inject_apply: bearer / header / basic --------------------------------------------- */

static void
test_apply_bearer(void **state)
{
	struct req r;
	size_t au, xo;

	(void)state;
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " H1 "\r\n"
	    "X-Other: " H1 "\r\nX-Keep: 1\r\n\r\n");
	apply_ok(&r, H1, "bear");
	au = field_ix(&r.h, "Authorization", 0);
	xo = field_ix(&r.h, "X-Other", 0);
	assert_int_equal(r.e.kind[au], EDIT_REPLACE);
	assert_string_equal(inject_field_value(&r.h, &r.e, au), "Bearer " BEAR_SECRET);
	assert_int_equal(r.e.kind[xo], EDIT_DROP);
	assert_null(inject_field_value(&r.h, &r.e, xo));
	assert_string_equal(inject_field_value(&r.h, &r.e, field_ix(&r.h, "X-Keep", 0)), "1");
	assert_int_equal(r.e.nadd, 0);
	assert_null(r.e.target);
	assert_true(r.e.secret_in_head);
	req_free(&r);

	/* handle elsewhere, sandbox-supplied Authorization: overwritten via an added header */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer mine\r\n"
	    "X-Token: " H1 "\r\n\r\n");
	apply_ok(&r, H1, "bear");
	assert_int_equal(r.e.kind[field_ix(&r.h, "Authorization", 0)], EDIT_DROP);
	assert_int_equal(r.e.kind[field_ix(&r.h, "X-Token", 0)], EDIT_DROP);
	assert_int_equal(r.e.nadd, 1);
	assert_string_equal(r.e.add[0].name, "Authorization");
	assert_string_equal(r.e.add[0].value, "Bearer " BEAR_SECRET);
	req_free(&r);

	/* handle in the query: the pair is cut, Authorization added */
	req_parse(&r, "GET /v1?a=1&t=" H1 " HTTP/1.1\r\nHost: api.test\r\n\r\n");
	apply_ok(&r, H1, "bear");
	assert_string_equal(r.e.target, "/v1?a=1");
	assert_int_equal(r.e.nadd, 1);
	assert_string_equal(r.e.add[0].value, "Bearer " BEAR_SECRET);
	req_free(&r);
}

static void
test_apply_header(void **state)
{
	struct req r;
	size_t k;

	(void)state;
	/* in place: only the handle text changes */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nx-api-key: prefix-" H1 "\r\n"
	    "X-Dup: " H1 "\r\n\r\n");
	apply_ok(&r, H1, "hdr");
	k = field_ix(&r.h, "x-api-key", 0);
	assert_int_equal(r.e.kind[k], EDIT_REPLACE);
	assert_string_equal(inject_field_value(&r.h, &r.e, k), "prefix-" HDR_SECRET);
	assert_int_equal(r.e.kind[field_ix(&r.h, "X-Dup", 0)], EDIT_DROP);
	assert_int_equal(r.e.nadd, 0);
	req_free(&r);

	/* handle elsewhere: the header is added with the format; the sandbox's own dropped */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nX-API-Key: old\r\n"
	    "Authorization: Bearer " H1 "\r\n\r\n");
	apply_ok(&r, H1, "hdr");
	assert_int_equal(r.e.kind[field_ix(&r.h, "X-API-Key", 0)], EDIT_DROP);
	assert_int_equal(r.e.kind[field_ix(&r.h, "Authorization", 0)], EDIT_DROP);
	assert_int_equal(r.e.nadd, 1);
	assert_string_equal(r.e.add[0].name, "x-api-key");
	assert_string_equal(r.e.add[0].value, "prefix-" HDR_SECRET);
	req_free(&r);
}

static void
test_apply_basic(void **state)
{
	struct req r;
	char *m, *want_b64 = b64("alice:" BAS_SECRET), want[256];
	size_t au;

	(void)state;
	snprintf(want, sizeof(want), "Basic %s", want_b64);
	/* handle as the password of Basic: Authorization replaced in place */
	m = basic_msg("whoever:" H1, "X-Other: " H1 "\r\n");
	req_parse(&r, m);
	apply_ok(&r, H1, "bas");
	au = field_ix(&r.h, "Authorization", 0);
	assert_int_equal(r.e.kind[au], EDIT_REPLACE);
	assert_string_equal(inject_field_value(&r.h, &r.e, au), want);
	assert_int_equal(r.e.kind[field_ix(&r.h, "X-Other", 0)], EDIT_DROP);
	assert_int_equal(r.e.nadd, 0);
	req_free(&r);
	free(m);

	/* handle as a bearer token: dropped, Basic added */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " H1
	    "\r\n\r\n");
	apply_ok(&r, H1, "bas");
	assert_int_equal(r.e.kind[field_ix(&r.h, "Authorization", 0)], EDIT_DROP);
	assert_int_equal(r.e.nadd, 1);
	assert_string_equal(r.e.add[0].name, "Authorization");
	assert_string_equal(r.e.add[0].value, want);
	req_free(&r);

	/* inject_basic_b64 alone */
	{
		char *v = inject_basic_b64("alice", BAS_SECRET, strlen(BAS_SECRET));

		assert_string_equal(v, want_b64);
		secmem_wipe_free(v);
	}
	free(want_b64);
}

/* The same handle as user and password of one Basic field: two IN_BASIC occurrences. */
static void
test_apply_basic_handle_twice(void **state)
{
	struct req r;
	char *m, *want_b64, want[256];
	size_t au;

	(void)state;
	m = basic_msg(H1 ":" H1, NULL);
	want_b64 = b64("alice:" BAS_SECRET);
	snprintf(want, sizeof(want), "Basic %s", want_b64);
	req_parse(&r, m);
	assert_int_equal(r.l.n, 2);
	apply_ok(&r, H1, "bas");
	au = field_ix(&r.h, "Authorization", 0);
	/* the injected value must survive the second occurrence */
	assert_non_null(inject_field_value(&r.h, &r.e, au));
	assert_string_equal(inject_field_value(&r.h, &r.e, au), want);
	req_free(&r);
	free(m);
	free(want_b64);
}

/* --- inject_apply: query ------------------------------------------------------------------ */

static void
test_apply_query(void **state)
{
	struct req r;
	const char *why;

	(void)state;
	/* in place, URL-encoded */
	req_parse(&r, "GET /v1/x?a=1&key=" H1 "&b=2 HTTP/1.1\r\nHost: api.test\r\n"
	    "X-Other: " H1 "\r\n\r\n");
	apply_ok(&r, H1, "qry");
	assert_string_equal(r.e.target, "/v1/x?a=1&key=" QRY_ENC "&b=2");
	assert_int_equal(r.e.kind[field_ix(&r.h, "X-Other", 0)], EDIT_DROP);
	assert_int_equal(r.e.nadd, 0);
	assert_true(r.e.secret_in_head);
	req_free(&r);

	/* handle only in another pair: cut, the param appended */
	req_parse(&r, "GET /v1?t=" H1 "&a=1 HTTP/1.1\r\nHost: api.test\r\n\r\n");
	apply_ok(&r, H1, "qry");
	assert_string_equal(r.e.target, "/v1?a=1&key=" QRY_ENC);
	req_free(&r);

	/* handle in a header only: the param appended to a target without a query */
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nX-K: " H1 "\r\n\r\n");
	apply_ok(&r, H1, "qry");
	assert_string_equal(r.e.target, "/v1?key=" QRY_ENC);
	assert_int_equal(r.e.kind[0 + field_ix(&r.h, "X-K", 0)], EDIT_DROP);
	req_free(&r);

	/* handle in the path: refused */
	req_parse(&r, "GET /v1/" H1 "?key=" H1 " HTTP/1.1\r\nHost: api.test\r\n\r\n");
	assert_int_equal(apply(&r, H1, "qry", &why), -1);
	assert_non_null(why);
	assert_non_null(strstr(why, "path"));
	req_free(&r);
	req_parse(&r, "GET /v1/" H1 " HTTP/1.1\r\nHost: api.test\r\n\r\n");
	assert_int_equal(apply(&r, H1, "qry", &why), -1);
	req_free(&r);

	/* inject_urlencode alone */
	{
		char *v = inject_urlencode("a-b_c.d~e f/?", 13);

		assert_string_equal(v, "a-b_c.d~e%20f%2F%3F");
		secmem_wipe_free(v);
	}
}

/* Other pairs holding the handle are cut even when the param holds it too. */
static void
test_apply_query_other_pair_cut(void **state)
{
	struct req r;

	(void)state;
	req_parse(&r, "GET /v1?key=" H1 "&t=" H1 " HTTP/1.1\r\nHost: api.test\r\n\r\n");
	apply_ok(&r, H1, "qry");
	assert_string_equal(r.e.target, "/v1?key=" QRY_ENC);
	req_free(&r);
}

/* --- inject_apply: hmac / body ----------------------------------------------------------- */

static void
test_apply_hmac_body(void **state)
{
	static const char *const types[] = {"mac", "bod"};
	struct req r;

	(void)state;
	for (size_t t = 0; t < 2; t++) {
		req_parse(&r, "POST /v1?a=1&h=" H1 " HTTP/1.1\r\nHost: api.test\r\n"
		    "Authorization: Bearer " H1 "\r\nX-Other: pre-" H1 "\r\nX-Keep: 1\r\n"
		    "Content-Length: 0\r\n\r\n");
		apply_ok(&r, H1, types[t]);
		assert_int_equal(r.e.kind[field_ix(&r.h, "Authorization", 0)], EDIT_DROP);
		assert_int_equal(r.e.kind[field_ix(&r.h, "X-Other", 0)], EDIT_DROP);
		assert_int_equal(r.e.kind[field_ix(&r.h, "X-Keep", 0)], EDIT_KEEP);
		assert_string_equal(r.e.target, "/v1?a=1");
		assert_int_equal(r.e.nadd, 0);
		assert_false(r.e.secret_in_head);
		for (size_t i = 0; i < r.h.nfields; i++)
			assert_null(r.e.value[i]);
		req_free(&r);
	}
}

static void
test_hmac_value(void **state)
{
	static const char body[] = "The quick brown fox jumps over the lazy dog";
	char *v;

	(void)state;
	/* RFC 4231-style vector, checked with: openssl dgst -sha256 -hmac key */
	v = inject_hmac_value(cred("mac"), body, strlen(body));
	assert_non_null(v);
	assert_string_equal(v, "HMAC f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	secmem_wipe_free(v);
}

/* --- set_header, field_value, ownership ------------------------------------------------- */

static void
test_set_header_and_field_value(void **state)
{
	struct req r;
	size_t au, xk;

	(void)state;
	req_parse(&r, "POST /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " H1 "\r\n"
	    "authorization: second\r\nX-K: v\r\nContent-Length: 0\r\n\r\n");
	apply_ok(&r, H1, "bear");
	au = field_ix(&r.h, "Authorization", 0);
	xk = field_ix(&r.h, "X-K", 0);
	assert_int_equal(r.e.kind[au], EDIT_REPLACE);
	assert_int_equal(r.e.kind[field_ix(&r.h, "Authorization", 1)], EDIT_DROP);
	assert_string_equal(inject_field_value(&r.h, &r.e, xk), "v");
	/* set_header replaces every Authorization (also an edited one) */
	assert_int_equal(inject_edits_set_header(&r.h, &r.e, "Authorization",
	    secmem_wipe_dup("HMAC abc", 8)), 0);
	assert_int_equal(r.e.kind[au], EDIT_DROP);
	assert_null(r.e.value[au]);
	assert_null(inject_field_value(&r.h, &r.e, au));
	assert_int_equal(r.e.nadd, 1);
	assert_string_equal(r.e.add[0].name, "Authorization");
	assert_string_equal(r.e.add[0].value, "HMAC abc");
	assert_true(r.e.secret_in_head);
	/* full: refused, value freed by the callee (ASan would see a leak otherwise) */
	for (size_t i = 1; i < INJECT_MAX_HANDLES; i++)
		assert_int_equal(inject_edits_set_header(&r.h, &r.e, "X-N",
		    secmem_wipe_dup("x", 1)), 0);
	assert_int_equal(inject_edits_set_header(&r.h, &r.e, "X-M", secmem_wipe_dup("y", 1)),
	    -1);
	req_free(&r);
}

/* Every secret-bearing string is wipe memory (secmem_wipe_alloc): secmem_wipe_free each
 * by hand. */
static void
test_sodium_ownership(void **state)
{
	struct req r;
	char *m = basic_msg("bob:" H2, "X-Q: 1\r\n");

	(void)state;
	/* bearer in place + basic (two values), a query edit, an add */
	free(m);
	req_parse(&r, "GET /v1?key=" H2 " HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer "
	    H1 "\r\nX-T: " H1 "\r\n\r\n");
	apply_ok(&r, H1, "bear");
	apply_ok(&r, H2, "qry");
	assert_non_null(r.e.target);
	assert_int_equal(r.l.n, 3);
	for (size_t i = 0; i < r.h.nfields; i++)
		if (r.e.value[i]) {
			secmem_wipe_free(r.e.value[i]);
			r.e.value[i] = NULL;
		}
	secmem_wipe_free(r.e.target);
	r.e.target = NULL;
	req_free(&r);

	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\nX-T: " H1 "\r\n\r\n");
	apply_ok(&r, H1, "hdr");
	assert_int_equal(r.e.nadd, 1);
	secmem_wipe_free(r.e.add[0].value);
	r.e.add[0].value = NULL;
	req_free(&r);

	m = basic_msg("bob:" H1, NULL);
	req_parse(&r, m);
	assert_non_null(r.l.f[0].basic);
	secmem_wipe_free(r.l.f[0].basic);
	r.l.f[0].basic = NULL;
	req_free(&r);
	free(m);
}

static void
test_handle_too_long(void **state)
{
	struct req r;
	char *big = malloc(SG_HANDLE_MAX_LEN + 2);
	const char *why = NULL;

	(void)state;
	memset(big, 'A', SG_HANDLE_MAX_LEN + 1);
	memcpy(big, "sgh1.", 5);
	big[SG_HANDLE_MAX_LEN + 1] = '\0';
	req_parse(&r, "GET /v1 HTTP/1.1\r\nHost: api.test\r\n\r\n");
	assert_int_equal(inject_apply(&r.h, r.h.target, &r.l, big, strlen(big), cred("bear"),
	    &r.e, &why), -1);
	assert_string_equal(why, "handle too long");
	req_free(&r);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_header_values),
		cmocka_unit_test(test_find_basic),
		cmocka_unit_test(test_find_query_glued_several),
		cmocka_unit_test(test_find_truncated),
		cmocka_unit_test(test_apply_bearer),
		cmocka_unit_test(test_apply_header),
		cmocka_unit_test(test_apply_basic),
		cmocka_unit_test(test_apply_basic_handle_twice),
		cmocka_unit_test(test_apply_query),
		cmocka_unit_test(test_apply_query_other_pair_cut),
		cmocka_unit_test(test_apply_hmac_body),
		cmocka_unit_test(test_hmac_value),
		cmocka_unit_test(test_set_header_and_field_value),
		cmocka_unit_test(test_sodium_ownership),
		cmocka_unit_test(test_handle_too_long),
	};
	policy_errors_t errs;
	int rc;

	if (sodium_init() < 0)
		return 1;
	pol = policy_load_buffer("/tmp/sg-inject-test.json", policy_json, strlen(policy_json),
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
