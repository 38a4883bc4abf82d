/*
 * fuzz_sigv4.c — the SigV4 codec on arbitrary input. Byte 0 picks what runs (low two
 * bits) and options; the rest is split at the first '\n' into A and B.
 *
 *   0  A is an Authorization value. Parsed: formatting it and parsing the result gives
 *      the same struct. Header fields are made for its SignedHeaders (values from B):
 *      verify(sign(x)) succeeds with the key and fails with another; a re-signed
 *      Authorization (another access key id) parses to the same scope and verifies.
 *   1  A is a request target with a presigned query. Parsed: verify(sign(x)) as above;
 *      re-presigned (another access key id, B as the new token or none) it parses again
 *      to the same scope, names the new key id and token, and verifies.
 *   2  A is any request target (B a Host value): canonicalised both ways. For S3 the
 *      canonical URI and query are a fixed point (canonicalising "URI?query" gives them
 *      back), and so is the normalised URI of other services read as S3's;
 *      verify(sign(x)) succeeds whenever signing does.
 *   3  A is an X-Amz-Date, B's first bytes the time: the time check never crashes, and
 *      what it accepts is a date it could parse.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "secmem.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF (SIGV4_MAX_SIGNED_HEADERS + 1)

static uint8_t key1[SIGV4_KEY_LEN], key2[SIGV4_KEY_LEN];

static void
keys_init(void)
{
	static bool done;

	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	sigv4_signing_key("fuzz-secret-one", 15, "20150830", "us-east-1", "s3", key1);
	sigv4_signing_key("fuzz-secret-two", 15, "20150830", "us-east-1", "s3", key2);
	done = true;
}

struct req {
	http_field_t f[MAXF];
	char date[SIGV4_AMZ_DATE_LEN + 1];
	sigv4_request_t r;
};

/* Fields for a's signed names (value v), X-Amz-Date on a's scope date. */
static void
req_make(struct req *q, const sigv4_auth_t *a, const char *target, size_t tlen,
    const char *v, size_t vl, unsigned flags)
{
	const char *s = a->signed_headers;
	size_t n = 0;
	bool has_date = false;

	snprintf(q->date, sizeof(q->date), "%.8sT120000Z", a->date);
	while (*s != '\0' && n < MAXF - 1) {
		const char *e = strchr(s, ';');
		size_t nl = e != NULL ? (size_t)(e - s) : strlen(s);
		bool d = nl == 10 && memcmp(s, "x-amz-date", 10) == 0;

		q->f[n++] = (http_field_t){s, d ? q->date : v, nl, d ? 16 : vl};
		has_date |= d;
		s = e != NULL ? e + 1 : s + nl;
	}
	if (!has_date)
		q->f[n++] = (http_field_t){"X-Amz-Date", q->date, 10, 16};
	q->r = (sigv4_request_t){"GET", target, tlen, q->f, n, "UNSIGNED-PAYLOAD", flags};
}

/* verify(sign(x)) with key1; never with key2. */
static void
check_sign_verify(const sigv4_request_t *r, const sigv4_auth_t *a)
{
	sigv4_auth_t s = *a;
	const char *why;
	int rc = sigv4_sign(r, &s, key1, s.signature, &why);

	if (rc != SIGV4_OK) {
		if (rc != SIGV4_E_FORMAT && rc != SIGV4_E_NOMEM)
			abort();
		if (sigv4_verify(r, a, key1, &why) != rc && rc != SIGV4_E_NOMEM)
			abort();
		return;
	}
	if (sigv4_verify(r, &s, key1, &why) != SIGV4_OK ||
	    sigv4_verify(r, &s, key2, &why) != SIGV4_E_MISMATCH)
		abort();
}

static bool
same_scope(const sigv4_auth_t *x, const sigv4_auth_t *y)
{
	return strcmp(x->date, y->date) == 0 && strcmp(x->region, y->region) == 0 &&
	    strcmp(x->service, y->service) == 0 &&
	    strcmp(x->signed_headers, y->signed_headers) == 0;
}

static void
fuzz_authorization(const char *a_in, size_t alen, const char *b, size_t blen)
{
	sigv4_auth_t a, again;
	char out[SIGV4_AUTH_MAX];
	const char *why;
	struct req q;
	size_t n;
	int len;

	if (sigv4_parse_authorization(a_in, alen, &a, &why) != SIGV4_OK)
		return;
	if ((len = sigv4_format_authorization(&a, out, sizeof(out))) < 0 ||
	    sigv4_parse_authorization(out, (size_t)len, &again, &why) != SIGV4_OK ||
	    memcmp(&a, &again, sizeof(a)) != 0)
		abort();
	req_make(&q, &a, "/", 1, b, blen, SIGV4_S3);
	check_sign_verify(&q.r, &a);
	if (sigv4_sign_authorization(&q.r, &a, "ASIANEWKEY", 10, key1, out, sizeof(out), &n,
	    &why) != SIGV4_OK)
		return;
	if (sigv4_parse_authorization(out, n, &again, &why) != SIGV4_OK ||
	    strcmp(again.akid, "ASIANEWKEY") != 0 || !same_scope(&a, &again) ||
	    sigv4_verify(&q.r, &again, key1, &why) != SIGV4_OK)
		abort();
}

static void
check_represigned(const struct req *q, const sigv4_auth_t *a, const char *t, size_t tlen,
    const char *tok, size_t toklen)
{
	sigv4_auth_t b;
	struct req q2 = *q;
	char *dec = malloc(toklen + 1);
	const char *why;
	size_t dn;

	if (dec == NULL)
		abort();
	q2.r.target = t;
	q2.r.target_len = tlen;
	if (sigv4_parse_presigned(t, tlen, &b, &why) != SIGV4_OK ||
	    strcmp(b.akid, "ASIANEWKEY") != 0 || !same_scope(a, &b) ||
	    strcmp(a->amz_date, b.amz_date) != 0 || a->expires != b.expires ||
	    (tok == NULL) != (b.token == NULL) ||
	    sigv4_verify(&q2.r, &b, key1, &why) != SIGV4_OK)
		abort();
	if (tok != NULL && (sigv4_query_decode(b.token, b.token_len, dec, toklen + 1, &dn) != 0 ||
	    dn != toklen || memcmp(dec, tok, toklen) != 0))
		abort();
	free(dec);
}

static void
fuzz_presigned(const char *t, size_t tlen, const char *b, size_t blen, bool with_token)
{
	sigv4_auth_t a;
	const char *why;
	struct req q;
	char *out;
	size_t n;

	if (sigv4_parse_presigned(t, tlen, &a, &why) != SIGV4_OK)
		return;
	req_make(&q, &a, t, tlen, b, blen, SIGV4_S3);
	check_sign_verify(&q.r, &a);
	if (sigv4_presign_rewrite(&q.r, &a, "ASIANEWKEY", 10, with_token ? b : NULL, blen, key1,
	    &out, &n, &why) != SIGV4_OK)
		return;
	if (memchr(t, '\0', tlen) == NULL && strlen(out) != n)
		abort();
	check_represigned(&q, &a, out, n, with_token ? b : NULL, blen);
	secmem_wipe_free(out);
}

/* The URI and query lines of a canonical request. */
static void
creq_lines(const char *creq, const char **uri, size_t *ul, const char **qs, size_t *ql)
{
	const char *l1 = strchr(creq, '\n') + 1, *l2 = strchr(l1, '\n') + 1;

	*uri = l1;
	*ul = (size_t)(l2 - 1 - l1);
	*qs = l2;
	*ql = (size_t)(strchr(l2, '\n') - l2);
}

/* Canonicalising "uri?query" (as S3) gives uri and query back. */
static void
check_fixed_point(const sigv4_request_t *r, const sigv4_auth_t *a, const char *creq)
{
	const char *uri, *qs, *u2, *q2, *why;
	size_t ul, ql, ul2, ql2, n;
	char *t, *again;
	sigv4_request_t r2 = *r;

	creq_lines(creq, &uri, &ul, &qs, &ql);
	if ((t = malloc(ul + ql + 2)) == NULL)
		abort();
	memcpy(t, uri, ul);
	t[ul] = '?';
	memcpy(t + ul + 1, qs, ql);
	r2.target = t;
	r2.target_len = ul + 1 + ql;
	r2.flags = SIGV4_S3;
	if (r2.target_len <= SIGV4_MAX_TARGET) {
		if (sigv4_canonical_request(&r2, a, &again, &n, &why) != SIGV4_OK)
			abort();
		creq_lines(again, &u2, &ul2, &q2, &ql2);
		if (ul2 != ul || memcmp(u2, uri, ul) != 0 || ql2 != ql || memcmp(q2, qs, ql) != 0)
			abort();
		secmem_wipe_free(again);
	}
	free(t);
}

static void
fuzz_canonical(const char *t_in, size_t tlen, const char *b, size_t blen)
{
	static const char authz[] = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s3/"
	    "aws4_request, SignedHeaders=host;x-amz-date, Signature="
	    "0000000000000000000000000000000000000000000000000000000000000000";
	sigv4_auth_t a;
	const char *why;
	char *t = malloc(tlen + 1), *creq;
	bool slash = tlen > 0 && t_in[0] == '/';
	size_t tl = tlen + !slash, cl;
	struct req q;

	if (t == NULL || sigv4_parse_authorization(authz, strlen(authz), &a, &why) != SIGV4_OK)
		abort();
	t[0] = '/';
	if (tlen > 0)
		memcpy(t + !slash, t_in, tlen);
	for (unsigned flags = 0; flags <= SIGV4_S3; flags++) {
		req_make(&q, &a, t, tl, b, blen, flags);
		if (sigv4_canonical_request(&q.r, &a, &creq, &cl, &why) == SIGV4_OK) {
			if (memchr(b, '\0', blen) == NULL && strlen(creq) != cl)
				abort();
			check_fixed_point(&q.r, &a, creq);
			secmem_wipe_free(creq);
		}
		check_sign_verify(&q.r, &a);
	}
	free(t);
}

static void
fuzz_time(const char *d, size_t dl, const uint8_t *b, size_t blen)
{
	sigv4_auth_t a;
	char date[SIGV4_AMZ_DATE_LEN + 2];
	int64_t now = 0;
	const char *why;

	memset(&a, 0, sizeof(a));
	memcpy(a.date, "20150830", 9);
	a.presigned = blen > 0 && (b[0] & 1);
	a.expires = blen > 1 ? b[1] * 2400u : 0;
	for (size_t i = 0; i < 8 && i < blen; i++)
		now = (int64_t)((uint64_t)now << 8 | b[i]);
	dl = dl < sizeof(date) - 1 ? dl : sizeof(date) - 1;
	memcpy(date, d, dl);
	date[dl] = '\0';
	if (sigv4_check_time(&a, date, now, &why) == SIGV4_OK &&
	    (strlen(date) != SIGV4_AMZ_DATE_LEN || memcmp(date, a.date, 8) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *nl, *b;
	size_t alen, blen;

	if (size < 1 || size > 3 * SIGV4_MAX_TARGET)
		return 0;
	keys_init();
	p = (const char *)data + 1;
	nl = memchr(p, '\n', size - 1);
	alen = nl != NULL ? (size_t)(nl - p) : size - 1;
	b = nl != NULL ? nl + 1 : p + alen;
	blen = size - 1 - alen - (nl != NULL);
	switch (data[0] & 3) {
	case 0:
		fuzz_authorization(p, alen, b, blen);
		break;
	case 1:
		fuzz_presigned(p, alen, b, blen, (data[0] & 4) != 0);
		break;
	case 2:
		fuzz_canonical(p, alen, b, blen);
		break;
	default:
		fuzz_time(p, alen, (const uint8_t *)b, blen);
		break;
	}
	return 0;
}
