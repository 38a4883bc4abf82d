/* sigv4.c — AWS Signature Version 4: parse, canonicalise, sign, verify, re-presign. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "secmem.h"
#include "digest.h"
#include "sigv4.h"
#include "util.h"

#define SCOPE_TERMINATOR	"aws4_request"
/* A presigned parameter name we look at is shorter than this once decoded. */
#define QNAME_MAX		32
/* Decoded X-Amz-Credential: "AKID/" and a scope. */
#define CRED_MAX		(SIGV4_MAX_AKID + 1 + SIGV4_SCOPE_MAX)

/* --- characters ----------------------------------------------------------------------- */

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3986 unreserved: what AWS's URI encoding keeps. */
static bool
is_unreserved(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool
is_hex(unsigned char c)
{
	return util_hex_nibble((char)c) >= 0;
}

/* Spacing between Authorization components. */
static bool
is_sp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Whitespace trimmed from and collapsed in signed header values (Python's str.split). */
static bool
is_value_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* A lower-case RFC 9110 token character (signed header names). */
static bool
is_name_char(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A visible ASCII character (no space). */
static bool
is_visible(unsigned char c)
{
	return c > ' ' && c <= '~';
}

static bool
all_chars(const char *s, size_t n, bool (*ok)(unsigned char))
{
	for (size_t i = 0; i < n; i++)
		if (!ok((unsigned char)s[i]))
			return false;
	return true;
}

/* --- an output buffer of fixed capacity ----------------------------------------------- */

struct sb {
	char *p;
	size_t len, cap;	/* cap excludes the NUL */
	bool over;		/* something did not fit (a bound was wrong): refused */
};

static void
sb_put(struct sb *b, const void *s, size_t n)
{
	if (b->over || n > b->cap - b->len) {
		b->over = true;
		return;
	}
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
sb_putc(struct sb *b, char c)
{
	sb_put(b, &c, 1);
}

static void
sb_puts(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* One byte, AWS URI-encoded: unreserved kept, anything else %XX upper case. */
static void
sb_enc(struct sb *b, unsigned char c)
{
	static const char hx[] = "0123456789ABCDEF";
	char e[3] = {'%', hx[c >> 4], hx[c & 15]};

	if (is_unreserved(c))
		sb_putc(b, (char)c);
	else
		sb_put(b, e, 3);
}

static void
sb_enc_str(struct sb *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_enc(b, (unsigned char)s[i]);
}

/* --- field validators (shared by the parsers and the signers) ------------------------- */

static bool
id_char(unsigned char c)
{
	return is_unreserved(c);
}

static bool
akid_ok(const char *s, size_t n)
{
	return n >= 1 && n <= SIGV4_MAX_AKID && all_chars(s, n, id_char);
}

static bool
leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
num(const char *s, size_t n)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

/* YYYYMMDD, a real calendar day. */
static bool
date8_ok(const char *s)
{
	static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, m, d;

	if (!all_chars(s, 8, is_digit))
		return false;
	y = num(s, 4);
	m = num(s + 4, 2);
	d = num(s + 6, 2);
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && leap(y) ? 1u : 0u);
}

/* YYYYMMDDTHHMMSSZ */
static bool
amz_date_ok(const char *s, size_t n)
{
	if (n != SIGV4_AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z' || !date8_ok(s) ||
	    !all_chars(s + 9, 6, is_digit))
		return false;
	return num(s + 9, 2) <= 23 && num(s + 11, 2) <= 59 && num(s + 13, 2) <= 59;
}

static bool
scope_part_ok(const char *s, size_t n, size_t max)
{
	return n >= 1 && n <= max && all_chars(s, n, id_char);
}

/* "h1;h2": lower-case token names, sorted, no duplicates. */
static bool
signed_headers_ok(const char *s, size_t n)
{
	const char *prev = NULL;
	size_t prev_len = 0, count = 0, i = 0;

	if (n == 0 || n > SIGV4_MAX_SIGNED_HEADERS_LEN)
		return false;
	while (i <= n) {
		size_t j = i, m;
		int c;

		while (j < n && s[j] != ';')
			j++;
		if (j == i || !all_chars(s + i, j - i, is_name_char) ||
		    ++count > SIGV4_MAX_SIGNED_HEADERS)
			return false;
		if (prev != NULL) {
			m = prev_len < j - i ? prev_len : j - i;
			c = memcmp(prev, s + i, m);
			if (c > 0 || (c == 0 && prev_len >= j - i))
				return false;
		}
		prev = s + i;
		prev_len = j - i;
		i = j + 1;
	}
	return true;
}

/* A struct the parsers filled (or a caller edited) is checked again before use: the
 * signers build text from its fields. */
static int
auth_check(const sigv4_auth_t *a, const char **why)
{
	size_t rl = strnlen(a->region, sizeof(a->region));
	size_t sl = strnlen(a->service, sizeof(a->service));
	size_t hl = strnlen(a->signed_headers, sizeof(a->signed_headers));

	if (strnlen(a->date, sizeof(a->date)) != 8 || !date8_ok(a->date) ||
	    !scope_part_ok(a->region, rl, SIGV4_MAX_REGION) ||
	    !scope_part_ok(a->service, sl, SIGV4_MAX_SERVICE) ||
	    !signed_headers_ok(a->signed_headers, hl)) {
		*why = "bad credential scope or SignedHeaders";
		return SIGV4_E_FORMAT;
	}
	return SIGV4_OK;
}

/* --- parsing the pieces ---------------------------------------------------------------- */

/* AKID/YYYYMMDD/region/service/aws4_request */
static int
parse_credential(sigv4_auth_t *a, const char *v, size_t n, const char **why)
{
	const char *part[5];
	size_t len[5], k = 0, start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && v[i] != '/')
			continue;
		if (k == 5)
			goto bad;
		part[k] = v + start;
		len[k++] = i - start;
		start = i + 1;
	}
	if (k != 5 || !akid_ok(part[0], len[0]) || len[1] != 8 ||
	    !scope_part_ok(part[2], len[2], SIGV4_MAX_REGION) ||
	    !scope_part_ok(part[3], len[3], SIGV4_MAX_SERVICE) ||
	    len[4] != strlen(SCOPE_TERMINATOR) || memcmp(part[4], SCOPE_TERMINATOR, len[4]) != 0)
		goto bad;
	memcpy(a->date, part[1], 8);
	a->date[8] = '\0';
	if (!date8_ok(a->date))
		goto bad;
	memcpy(a->akid, part[0], len[0]);
	a->akid[len[0]] = '\0';
	memcpy(a->region, part[2], len[2]);
	a->region[len[2]] = '\0';
	memcpy(a->service, part[3], len[3]);
	a->service[len[3]] = '\0';
	return SIGV4_OK;
bad:
	*why = "Credential is not AKID/YYYYMMDD/region/service/aws4_request";
	return SIGV4_E_FORMAT;
}

static int
parse_signed_headers(sigv4_auth_t *a, const char *v, size_t n, const char **why)
{
	if (!signed_headers_ok(v, n)) {
		*why = "SignedHeaders is not a sorted list of lower-case header names";
		return SIGV4_E_FORMAT;
	}
	memcpy(a->signed_headers, v, n);
	a->signed_headers[n] = '\0';
	return SIGV4_OK;
}

static int
parse_signature(sigv4_auth_t *a, const char *v, size_t n, const char **why)
{
	if (n != SIGV4_SIG_HEX || !all_chars(v, n, is_hex)) {
		*why = "Signature is not 64 hex digits";
		return SIGV4_E_FORMAT;
	}
	for (size_t i = 0; i < n; i++)
		a->signature[i] = (char)((v[i] >= 'A' && v[i] <= 'F') ? v[i] + ('a' - 'A') : v[i]);
	a->signature[n] = '\0';
	return SIGV4_OK;
}

enum { C_CRED = 1, C_HEADERS = 2, C_SIG = 4, C_ALL = 7 };

static int
auth_component(sigv4_auth_t *a, const char *name, size_t nlen, const char *v, size_t vlen,
    unsigned *seen, const char **why)
{
	unsigned bit;

	if (nlen == 10 && memcmp(name, "Credential", 10) == 0)
		bit = C_CRED;
	else if (nlen == 13 && memcmp(name, "SignedHeaders", 13) == 0)
		bit = C_HEADERS;
	else if (nlen == 9 && memcmp(name, "Signature", 9) == 0)
		bit = C_SIG;
	else {
		*why = "unknown Authorization component";
		return SIGV4_E_FORMAT;
	}
	if (*seen & bit) {
		*why = "Authorization component repeated";
		return SIGV4_E_FORMAT;
	}
	*seen |= bit;
	if (bit == C_CRED)
		return parse_credential(a, v, vlen, why);
	if (bit == C_HEADERS)
		return parse_signed_headers(a, v, vlen, why);
	return parse_signature(a, v, vlen, why);
}

static size_t
skip_sp(const char *s, size_t i, size_t len)
{
	while (i < len && is_sp((unsigned char)s[i]))
		i++;
	return i;
}

/* After a component at i: the end, or a separator (',' and/or spacing) and another one.
 * Returns the next component's start, len at the end, or SIZE_MAX for garbage. */
static size_t
next_component(const char *s, size_t i, size_t len)
{
	size_t j = skip_sp(s, i, len);

	if (j == len)
		return len;
	if (s[j] == ',') {
		j = skip_sp(s, j + 1, len);
		return j == len ? SIZE_MAX : j;
	}
	return j > i ? j : SIZE_MAX;
}

/* The algorithm word at the start; i is left after it. */
static int
parse_algorithm(const char *s, size_t len, size_t *i, const char **why)
{
	size_t b = skip_sp(s, 0, len), e = b;

	while (e < len && !is_sp((unsigned char)s[e]))
		e++;
	*i = e;
	if (e - b == strlen(SIGV4A_ALGORITHM) && memcmp(s + b, SIGV4A_ALGORITHM, e - b) == 0) {
		*why = "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported";
		return SIGV4_E_SIGV4A;
	}
	if (e - b != strlen(SIGV4_ALGORITHM) || memcmp(s + b, SIGV4_ALGORITHM, e - b) != 0) {
		*why = "Authorization is not AWS4-HMAC-SHA256";
		return SIGV4_E_FORMAT;
	}
	return SIGV4_OK;
}

int
sigv4_parse_authorization(const char *s, size_t len, sigv4_auth_t *a, const char **why)
{
	unsigned seen = 0;
	size_t i;
	int rc;

	memset(a, 0, sizeof(*a));
	*why = NULL;
	if (len > SIGV4_MAX_AUTH_INPUT) {
		*why = "Authorization value too long";
		return SIGV4_E_FORMAT;
	}
	if ((rc = parse_algorithm(s, len, &i, why)) != SIGV4_OK)
		return rc;
	i = skip_sp(s, i, len);
	while (i < len) {
		size_t n = i, v;

		while (n < len && s[n] != '=' && s[n] != ',' && !is_sp((unsigned char)s[n]))
			n++;
		if (n == len || s[n] != '=') {
			*why = "Authorization component without '='";
			return SIGV4_E_FORMAT;
		}
		v = n + 1;
		while (v < len && s[v] != ',' && !is_sp((unsigned char)s[v]))
			v++;
		rc = auth_component(a, s + i, n - i, s + n + 1, v - n - 1, &seen, why);
		if (rc != SIGV4_OK)
			return rc;
		if ((i = next_component(s, v, len)) == SIZE_MAX) {
			*why = "garbage between Authorization components";
			return SIGV4_E_FORMAT;
		}
	}
	if (seen != C_ALL) {
		*why = "Authorization lacks Credential, SignedHeaders or Signature";
		return SIGV4_E_FORMAT;
	}
	return SIGV4_OK;
}

/* --- percent-decoding and the presigned query ------------------------------------------ */

int
sigv4_query_decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			if (i + 2 >= len || !is_hex((unsigned char)in[i + 1]) ||
			    !is_hex((unsigned char)in[i + 2]))
				return -1;
			c = (char)(util_hex_nibble(in[i + 1]) << 4 | util_hex_nibble(in[i + 2]));
			i += 2;
		}
		if (o == cap)
			return -1;
		out[o++] = c;
	}
	*outlen = o;
	return 0;
}

/* The query's parameters sigv4 reads, as sent. */
enum qp { QP_ALG, QP_CRED, QP_DATE, QP_EXPIRES, QP_HEADERS, QP_SIG, QP_TOKEN, QP_N };

static const char *const qp_names[QP_N] = {
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
};

struct rawparam {
	const char *v;
	size_t len;
	bool set;
};

/* Which of qp_names the raw name k[0..n) decodes to, or QP_N. */
static enum qp
qp_lookup(const char *k, size_t n)
{
	char name[QNAME_MAX];
	size_t dn;

	if (sigv4_query_decode(k, n, name, sizeof(name), &dn) != 0)
		return QP_N;
	for (int q = 0; q < QP_N; q++)
		if (dn == strlen(qp_names[q]) && memcmp(name, qp_names[q], dn) == 0)
			return (enum qp)q;
	return QP_N;
}

/* Calls fn for each non-empty parameter of query q[0..n): name, value (after the first
 * '=', empty when none). Stops at fn's first non-zero return and returns it. */
static int
query_each(const char *q, size_t n,
    int (*fn)(void *arg, const char *k, size_t kl, const char *v, size_t vl), void *arg)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, e;
		int rc;

		while (j < n && q[j] != '&')
			j++;
		if (j > i) {
			const char *eq = memchr(q + i, '=', j - i);

			e = eq != NULL ? (size_t)(eq - q) : j;
			rc = fn(arg, q + i, e - i, eq != NULL ? eq + 1 : q + j,
			    eq != NULL ? j - e - 1 : 0);
			if (rc != 0)
				return rc;
		}
		i = j + 1;
	}
	return 0;
}

static int
collect_cb(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
	struct rawparam *p = arg;
	enum qp q = qp_lookup(k, kl);

	if (q == QP_N)
		return 0;
	if (p[q].set)
		return 1;
	p[q].v = v;
	p[q].len = vl;
	p[q].set = true;
	return 0;
}

/* Decode a raw parameter into buf (cap bytes, NUL added). */
static bool
decode_param(const struct rawparam *p, char *buf, size_t cap, size_t *n)
{
	if (sigv4_query_decode(p->v, p->len, buf, cap - 1, n) != 0)
		return false;
	buf[*n] = '\0';
	return true;
}

static int
presigned_algorithm(const struct rawparam *p, const char **why)
{
	char alg[QNAME_MAX];
	size_t n;

	if (!p[QP_ALG].set || !decode_param(&p[QP_ALG], alg, sizeof(alg), &n)) {
		*why = "presigned URL without a valid X-Amz-Algorithm";
		return SIGV4_E_FORMAT;
	}
	if (strcmp(alg, SIGV4A_ALGORITHM) == 0) {
		*why = "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported";
		return SIGV4_E_SIGV4A;
	}
	if (strcmp(alg, SIGV4_ALGORITHM) != 0) {
		*why = "X-Amz-Algorithm is not AWS4-HMAC-SHA256";
		return SIGV4_E_FORMAT;
	}
	return SIGV4_OK;
}

static int
presigned_expires(sigv4_auth_t *a, const struct rawparam *p, const char **why)
{
	char buf[16];
	size_t n;

	if (!p[QP_EXPIRES].set)
		return SIGV4_OK;
	if (!decode_param(&p[QP_EXPIRES], buf, sizeof(buf), &n) || n == 0 || n > 6 ||
	    !all_chars(buf, n, is_digit) || num(buf, n) < 1 || num(buf, n) > SIGV4_MAX_EXPIRES) {
		*why = "X-Amz-Expires is not 1..604800";
		return SIGV4_E_FORMAT;
	}
	a->expires = num(buf, n);
	return SIGV4_OK;
}

/* Every parameter but the algorithm, decoded and checked into a. */
static int
presigned_fields(sigv4_auth_t *a, const struct rawparam *p, const char **why)
{
	char buf[CRED_MAX > SIGV4_MAX_SIGNED_HEADERS_LEN ? CRED_MAX + 1 :
	    SIGV4_MAX_SIGNED_HEADERS_LEN + 1];
	size_t n;

	if (!p[QP_CRED].set || !p[QP_DATE].set || !p[QP_HEADERS].set || !p[QP_SIG].set) {
		*why = "presigned URL lacks X-Amz-Credential, -Date, -SignedHeaders or -Signature";
		return SIGV4_E_FORMAT;
	}
	if (!decode_param(&p[QP_CRED], buf, sizeof(buf), &n) ||
	    parse_credential(a, buf, n, why) != SIGV4_OK)
		goto bad;
	if (!decode_param(&p[QP_HEADERS], buf, sizeof(buf), &n) ||
	    parse_signed_headers(a, buf, n, why) != SIGV4_OK)
		goto bad;
	if (!decode_param(&p[QP_SIG], buf, sizeof(buf), &n) ||
	    parse_signature(a, buf, n, why) != SIGV4_OK)
		goto bad;
	if (!decode_param(&p[QP_DATE], buf, sizeof(buf), &n) || !amz_date_ok(buf, n)) {
		*why = "X-Amz-Date is not YYYYMMDDTHHMMSSZ";
		return SIGV4_E_FORMAT;
	}
	memcpy(a->amz_date, buf, n + 1);
	return presigned_expires(a, p, why);
bad:
	if (*why == NULL)
		*why = "bad percent-encoding in a presigned parameter";
	return SIGV4_E_FORMAT;
}

static int
presigned_token(sigv4_auth_t *a, const struct rawparam *p, const char **why)
{
	const struct rawparam *t = &p[QP_TOKEN];

	if (!t->set)
		return SIGV4_OK;
	for (size_t i = 0; i < t->len; i++)
		if (t->v[i] == '%' && (i + 2 >= t->len || !is_hex((unsigned char)t->v[i + 1]) ||
		    !is_hex((unsigned char)t->v[i + 2]))) {
			*why = "bad percent-encoding in X-Amz-Security-Token";
			return SIGV4_E_FORMAT;
		}
	a->token = t->v;
	a->token_len = t->len;
	return SIGV4_OK;
}

int
sigv4_parse_presigned(const char *target, size_t len, sigv4_auth_t *a, const char **why)
{
	struct rawparam p[QP_N];
	const char *q = memchr(target, '?', len);
	int rc;

	memset(a, 0, sizeof(*a));
	memset(p, 0, sizeof(p));
	*why = "no presigned parameters";
	if (q == NULL)
		return SIGV4_E_ABSENT;
	q++;
	if (query_each(q, len - (size_t)(q - target), collect_cb, p) != 0) {
		*why = "presigned parameter repeated";
		return SIGV4_E_FORMAT;
	}
	if (!p[QP_ALG].set && !p[QP_CRED].set && !p[QP_SIG].set)
		return SIGV4_E_ABSENT;
	*why = NULL;
	a->presigned = true;
	if ((rc = presigned_algorithm(p, why)) != SIGV4_OK ||
	    (rc = presigned_fields(a, p, why)) != SIGV4_OK ||
	    (rc = presigned_token(a, p, why)) != SIGV4_OK)
		return rc;
	return SIGV4_OK;
}

/* --- formatting ------------------------------------------------------------------------ */

size_t
sigv4_scope(const sigv4_auth_t *a, char out[SIGV4_SCOPE_MAX])
{
	int n = snprintf(out, SIGV4_SCOPE_MAX, "%.8s/%.*s/%.*s/" SCOPE_TERMINATOR, a->date,
	    SIGV4_MAX_REGION, a->region, SIGV4_MAX_SERVICE, a->service);

	return n < 0 ? 0 : (size_t)n;
}

int
sigv4_format_authorization(const sigv4_auth_t *a, char *out, size_t cap)
{
	char scope[SIGV4_SCOPE_MAX];
	int n;

	sigv4_scope(a, scope);
	n = snprintf(out, cap, SIGV4_ALGORITHM " Credential=%.*s/%s, SignedHeaders=%.*s, "
	    "Signature=%.64s", SIGV4_MAX_AKID, a->akid, scope, SIGV4_MAX_SIGNED_HEADERS_LEN,
	    a->signed_headers, a->signature);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int
sigv4_set_key_id(sigv4_auth_t *a, const char *akid, size_t len)
{
	if (!akid_ok(akid, len))
		return -1;
	memcpy(a->akid, akid, len);
	a->akid[len] = '\0';
	return 0;
}

/* --- keys -------------------------------------------------------------------------------- */

static void
hmac(const uint8_t key[SIGV4_KEY_LEN], const void *msg, size_t len,
    uint8_t out[SIGV4_KEY_LEN])
{
	crypto_auth_hmacsha256(out, msg, len, key);
}

void
sigv4_signing_key(const char *secret, size_t secret_len, const char *date,
    const char *region, const char *service, uint8_t key[SIGV4_KEY_LEN])
{
	crypto_auth_hmacsha256_state st;
	uint8_t k[64], t[SIGV4_KEY_LEN];
	size_t klen;

	/* kSecret = "AWS4" + secret: on the stack, or hashed as HMAC does with long keys. */
	if (secret_len <= sizeof(k) - 4) {
		memcpy(k, "AWS4", 4);
		memcpy(k + 4, secret, secret_len);
		klen = 4 + secret_len;
	} else {
		crypto_hash_sha256_state hs;

		crypto_hash_sha256_init(&hs);
		crypto_hash_sha256_update(&hs, (const uint8_t *)"AWS4", 4);
		crypto_hash_sha256_update(&hs, (const uint8_t *)secret, secret_len);
		crypto_hash_sha256_final(&hs, k);
		sodium_memzero(&hs, sizeof(hs));
		klen = crypto_hash_sha256_BYTES;
	}
	crypto_auth_hmacsha256_init(&st, k, klen);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)date, strlen(date));
	crypto_auth_hmacsha256_final(&st, t);
	hmac(t, region, strlen(region), t);
	hmac(t, service, strlen(service), t);
	hmac(t, SCOPE_TERMINATOR, strlen(SCOPE_TERMINATOR), key);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(t, sizeof(t));
}

void
sigv4_payload_hash(const void *body, size_t len, char out[SIGV4_SIG_HEX + 1])
{
	uint8_t h[crypto_hash_sha256_BYTES];

	/* the installed implementation (digest.h); libsodium's when it has no memory */
	if (digest_sha256(len > 0 ? body : (const void *)"", len, h) < 0)
		crypto_hash_sha256(h, len > 0 ? body : (const void *)"", len);
	util_hex_encode(h, sizeof(h), out);
}

/* --- the canonical request ----------------------------------------------------------------- */

/* S3: the path as sent; valid escapes kept, other bytes outside unreserved and '/' encoded. */
static void
uri_s3(struct sb *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%' && i + 2 < n && is_hex((unsigned char)p[i + 1]) &&
		    is_hex((unsigned char)p[i + 2])) {
			sb_put(b, p + i, 3);
			i += 2;
		} else if (c == '/')
			sb_putc(b, '/');
		else
			sb_enc(b, c);
	}
}

struct seg {
	size_t off, len;
};

/* Other services: dot and empty segments removed, then every byte encoded (twice for an
 * escape: its '%' becomes %25), as botocore's remove_dot_segments + quote(safe='/~'). */
static int
uri_normalised(struct sb *b, const char *p, size_t n)
{
	struct seg *st = malloc((n / 2 + 1) * sizeof(*st));
	size_t ns = 0, i = 0;

	if (st == NULL)
		return SIGV4_E_NOMEM;
	while (i <= n) {
		size_t j = i;

		while (j < n && p[j] != '/')
			j++;
		if (j - i == 2 && p[i] == '.' && p[i + 1] == '.') {
			if (ns > 0)
				ns--;
		} else if (j > i && !(j - i == 1 && p[i] == '.'))
			st[ns++] = (struct seg){i, j - i};
		i = j + 1;
	}
	sb_putc(b, '/');
	for (size_t k = 0; k < ns; k++) {
		if (k > 0)
			sb_putc(b, '/');
		sb_enc_str(b, p + st[k].off, st[k].len);
	}
	if (ns > 0 && n > 0 && p[n - 1] == '/')
		sb_putc(b, '/');
	free(st);
	return SIGV4_OK;
}

struct qparam {
	const char *k, *v;
	size_t klen, vlen;
};

struct qbuild {
	struct qparam *par;
	size_t np;
	struct sb enc;		/* the encoded names and values */
	char *scratch;		/* a decoded name or value */
	size_t scratch_cap;
	bool presigned;
};

static int
qbuild_cb(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
	struct qbuild *q = arg;
	struct qparam *pp = &q->par[q->np];
	size_t n;

	if (sigv4_query_decode(k, kl, q->scratch, q->scratch_cap, &n) != 0)
		return SIGV4_E_FORMAT;
	if (q->presigned && n == 15 && memcmp(q->scratch, "X-Amz-Signature", 15) == 0)
		return 0;
	pp->k = q->enc.p + q->enc.len;
	sb_enc_str(&q->enc, q->scratch, n);
	pp->klen = (size_t)(q->enc.p + q->enc.len - pp->k);
	if (sigv4_query_decode(v, vl, q->scratch, q->scratch_cap, &n) != 0)
		return SIGV4_E_FORMAT;
	pp->v = q->enc.p + q->enc.len;
	sb_enc_str(&q->enc, q->scratch, n);
	pp->vlen = (size_t)(q->enc.p + q->enc.len - pp->v);
	q->np++;
	return 0;
}

static int
bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

static int
qparam_cmp(const void *x, const void *y)
{
	const struct qparam *a = x, *b = y;
	int c = bytes_cmp(a->k, a->klen, b->k, b->klen);

	return c != 0 ? c : bytes_cmp(a->v, a->vlen, b->v, b->vlen);
}

/* The canonical query string of q[0..n) into b. */
static int
cr_query(struct sb *b, const char *q, size_t n, bool presigned, const char **why)
{
	struct qbuild qb = {.presigned = presigned, .scratch_cap = n + 1};
	int rc = SIGV4_E_NOMEM;

	qb.par = malloc((n / 2 + 1) * sizeof(*qb.par));
	qb.enc.cap = 3 * n + 1;
	qb.enc.p = secmem_wipe_alloc(qb.enc.cap);
	qb.scratch = secmem_wipe_alloc(qb.scratch_cap);
	if (qb.par == NULL || qb.enc.p == NULL || qb.scratch == NULL)
		goto out;
	if ((rc = query_each(q, n, qbuild_cb, &qb)) != 0) {
		*why = "bad percent-encoding in the query";
		goto out;
	}
	qsort(qb.par, qb.np, sizeof(*qb.par), qparam_cmp);
	for (size_t i = 0; i < qb.np; i++) {
		if (i > 0)
			sb_putc(b, '&');
		sb_put(b, qb.par[i].k, qb.par[i].klen);
		sb_putc(b, '=');
		sb_put(b, qb.par[i].v, qb.par[i].vlen);
	}
	rc = qb.enc.over ? SIGV4_E_FORMAT : SIGV4_OK;
out:
	free(qb.par);
	secmem_wipe_free(qb.enc.p);
	secmem_wipe_free(qb.scratch);
	return rc;
}

/* A header value trimmed, inner whitespace runs collapsed to one space. */
static void
put_trimmed(struct sb *b, const char *v, size_t n)
{
	bool gap = false, any = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (is_value_space(c)) {
			gap = any;
			continue;
		}
		if (gap)
			sb_putc(b, ' ');
		sb_putc(b, (char)c);
		gap = false;
		any = true;
	}
}

/* "name:v1,v2\n" for each signed name. */
static int
cr_headers(struct sb *b, const sigv4_request_t *r, const char *names, const char **why)
{
	const char *s = names;

	while (*s != '\0') {
		const char *e = strchr(s, ';');
		size_t nl = e != NULL ? (size_t)(e - s) : strlen(s), found = 0;

		sb_put(b, s, nl);
		sb_putc(b, ':');
		for (size_t i = 0; i < r->nfields; i++) {
			const http_field_t *f = &r->fields[i];

			if (f->name_len != nl || strncasecmp(f->name, s, nl) != 0)
				continue;
			if (found++ > 0)
				sb_putc(b, ',');
			put_trimmed(b, f->value, f->value_len);
		}
		if (found == 0) {
			*why = "a signed header is not in the request";
			return SIGV4_E_FORMAT;
		}
		sb_putc(b, '\n');
		s = e != NULL ? e + 1 : s + nl;
	}
	return SIGV4_OK;
}

/* The request's own fields checked before any text is built from them. */
static int
request_check(const sigv4_request_t *r, const char **why)
{
	size_t ml = r->method != NULL ? strlen(r->method) : 0;
	size_t pl = r->payload_hash != NULL ? strnlen(r->payload_hash, 129) : 0;

	if (ml == 0 || ml > 32 || !all_chars(r->method, ml, is_alnum)) {
		*why = "bad request method";
		return SIGV4_E_FORMAT;
	}
	if (r->target == NULL || r->target_len == 0 || r->target[0] != '/' ||
	    r->target_len > SIGV4_MAX_TARGET) {
		*why = "request target is not origin-form (or too long)";
		return SIGV4_E_FORMAT;
	}
	if (pl == 0 || pl > 128 || !all_chars(r->payload_hash, pl, is_visible)) {
		*why = "bad payload hash";
		return SIGV4_E_FORMAT;
	}
	return SIGV4_OK;
}

/* An upper bound of the canonical request's length. */
static size_t
cr_bound(const sigv4_request_t *r, const sigv4_auth_t *a)
{
	size_t n = strlen(r->method) + 4 * r->target_len + 16;

	n += 2 * strlen(a->signed_headers) + 2 * SIGV4_MAX_SIGNED_HEADERS;
	for (size_t i = 0; i < r->nfields; i++)
		n += r->fields[i].value_len + 1;
	return n + strlen(r->payload_hash);
}

static int
cr_build(struct sb *b, const sigv4_request_t *r, const sigv4_auth_t *a, const char **why)
{
	const char *q = memchr(r->target, '?', r->target_len);
	size_t pl = q != NULL ? (size_t)(q - r->target) : r->target_len;
	int rc;

	sb_puts(b, r->method);
	sb_putc(b, '\n');
	if (r->flags & SIGV4_S3)
		uri_s3(b, r->target, pl);
	else if ((rc = uri_normalised(b, r->target, pl)) != SIGV4_OK)
		return rc;
	sb_putc(b, '\n');
	if (q != NULL && (rc = cr_query(b, q + 1, r->target_len - pl - 1, a->presigned, why)) !=
	    SIGV4_OK)
		return rc;
	sb_putc(b, '\n');
	if ((rc = cr_headers(b, r, a->signed_headers, why)) != SIGV4_OK)
		return rc;
	sb_putc(b, '\n');
	sb_puts(b, a->signed_headers);
	sb_putc(b, '\n');
	sb_puts(b, r->payload_hash);
	return SIGV4_OK;
}

int
sigv4_canonical_request(const sigv4_request_t *r, const sigv4_auth_t *a, char **out,
    size_t *len, const char **why)
{
	struct sb b = {0};
	int rc;

	*out = NULL;
	*len = 0;
	*why = NULL;
	if ((rc = request_check(r, why)) != SIGV4_OK || (rc = auth_check(a, why)) != SIGV4_OK)
		return rc;
	b.cap = cr_bound(r, a);
	if ((b.p = secmem_wipe_alloc(b.cap + 1)) == NULL)
		return SIGV4_E_NOMEM;
	rc = cr_build(&b, r, a, why);
	if (rc == SIGV4_OK && b.over) {
		*why = "canonical request larger than its bound";
		rc = SIGV4_E_FORMAT;
	}
	if (rc != SIGV4_OK) {
		if (rc == SIGV4_E_NOMEM)
			*why = "out of memory";
		secmem_wipe_free(b.p);
		return rc;
	}
	b.p[b.len] = '\0';
	*out = b.p;
	*len = b.len;
	return SIGV4_OK;
}

/* --- dates --------------------------------------------------------------------------------- */

int
sigv4_request_date(const sigv4_request_t *r, const sigv4_auth_t *a,
    char out[SIGV4_AMZ_DATE_LEN + 1], const char **why)
{
	const char *v = a->amz_date;
	size_t n = strnlen(a->amz_date, sizeof(a->amz_date)), found = 0;

	for (size_t i = 0; !a->presigned && i < r->nfields; i++) {
		const http_field_t *f = &r->fields[i];

		if (f->name_len != 10 || strncasecmp(f->name, "x-amz-date", 10) != 0)
			continue;
		v = f->value;
		n = f->value_len;
		found++;
	}
	while (n > 0 && is_sp((unsigned char)*v)) {
		v++;
		n--;
	}
	while (n > 0 && is_sp((unsigned char)v[n - 1]))
		n--;
	if ((!a->presigned && found != 1) || !amz_date_ok(v, n)) {
		*why = found > 1 ? "X-Amz-Date repeated" :
		    "no X-Amz-Date of the form YYYYMMDDTHHMMSSZ";
		return SIGV4_E_FORMAT;
	}
	memcpy(out, v, n);
	out[n] = '\0';
	return SIGV4_OK;
}

static int64_t
amz_date_unix(const char *s)
{
	int64_t days = util_days_from_civil(num(s, 4), num(s + 4, 2), num(s + 6, 2));

	return days * 86400 + num(s + 9, 2) * 3600 + num(s + 11, 2) * 60 + num(s + 13, 2);
}

int
sigv4_check_time(const sigv4_auth_t *a, const char *amz_date, int64_t now, const char **why)
{
	int64_t t;

	if (!amz_date_ok(amz_date, strnlen(amz_date, SIGV4_AMZ_DATE_LEN + 1))) {
		*why = "X-Amz-Date is not YYYYMMDDTHHMMSSZ";
		return SIGV4_E_FORMAT;
	}
	if (strnlen(a->date, sizeof(a->date)) != 8 || memcmp(amz_date, a->date, 8) != 0) {
		*why = "X-Amz-Date is not on the credential scope's date";
		return SIGV4_E_FORMAT;
	}
	t = amz_date_unix(amz_date);
	if (t - now > SIGV4_MAX_SKEW_S) {
		*why = "X-Amz-Date is more than 15 minutes ahead";
		return SIGV4_E_EXPIRED;
	}
	if (a->presigned && a->expires > 0) {
		if (now - t > (int64_t)a->expires) {
			*why = "presigned URL expired (X-Amz-Expires)";
			return SIGV4_E_EXPIRED;
		}
	} else if (now - t > SIGV4_MAX_SKEW_S) {
		*why = "X-Amz-Date is more than 15 minutes old";
		return SIGV4_E_EXPIRED;
	}
	return SIGV4_OK;
}

/* --- signing --------------------------------------------------------------------------------- */

int
sigv4_string_to_sign(const sigv4_request_t *r, const sigv4_auth_t *a, char out[SIGV4_STS_MAX],
    const char **why)
{
	char date[SIGV4_AMZ_DATE_LEN + 1], scope[SIGV4_SCOPE_MAX], hx[SIGV4_SIG_HEX + 1];
	uint8_t h[crypto_hash_sha256_BYTES];
	char *creq;
	size_t n;
	int rc;

	out[0] = '\0';
	if ((rc = sigv4_canonical_request(r, a, &creq, &n, why)) != SIGV4_OK)
		return rc;
	crypto_hash_sha256(h, (const uint8_t *)creq, n);
	secmem_wipe_free(creq);
	if ((rc = sigv4_request_date(r, a, date, why)) != SIGV4_OK)
		return rc;
	util_hex_encode(h, sizeof(h), hx);
	sigv4_scope(a, scope);
	snprintf(out, SIGV4_STS_MAX, SIGV4_ALGORITHM "\n%s\n%s\n%s", date, scope, hx);
	return SIGV4_OK;
}

int
sigv4_sign(const sigv4_request_t *r, const sigv4_auth_t *a, const uint8_t key[SIGV4_KEY_LEN],
    char sig[SIGV4_SIG_HEX + 1], const char **why)
{
	char sts[SIGV4_STS_MAX];
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	int rc;

	sig[0] = '\0';
	if ((rc = sigv4_string_to_sign(r, a, sts, why)) != SIGV4_OK)
		return rc;
	hmac(key, sts, strlen(sts), mac);
	util_hex_encode(mac, sizeof(mac), sig);
	return SIGV4_OK;
}

int
sigv4_verify(const sigv4_request_t *r, const sigv4_auth_t *a, const uint8_t key[SIGV4_KEY_LEN],
    const char **why)
{
	char sig[SIGV4_SIG_HEX + 1];
	int rc;

	if (strnlen(a->signature, sizeof(a->signature)) != SIGV4_SIG_HEX) {
		*why = "no signature to verify";
		return SIGV4_E_FORMAT;
	}
	if ((rc = sigv4_sign(r, a, key, sig, why)) != SIGV4_OK)
		return rc;
	if (sodium_memcmp(sig, a->signature, SIGV4_SIG_HEX) != 0) {
		*why = "signature mismatch";
		return SIGV4_E_MISMATCH;
	}
	return SIGV4_OK;
}

int
sigv4_sign_authorization(const sigv4_request_t *r, const sigv4_auth_t *a, const char *akid,
    size_t akid_len, const uint8_t key[SIGV4_KEY_LEN], char *out, size_t cap, size_t *len,
    const char **why)
{
	sigv4_auth_t na = *a;
	int rc, n;

	*len = 0;
	*why = NULL;
	if (sigv4_set_key_id(&na, akid, akid_len) != 0) {
		*why = "unacceptable access key id";
		return SIGV4_E_FORMAT;
	}
	if ((rc = sigv4_sign(r, &na, key, na.signature, why)) != SIGV4_OK)
		return rc;
	if ((n = sigv4_format_authorization(&na, out, cap)) < 0) {
		*why = "Authorization buffer too small";
		return SIGV4_E_FORMAT;
	}
	*len = (size_t)n;
	return SIGV4_OK;
}

/* --- re-presigning ------------------------------------------------------------------------------ */

struct rewrite {
	struct sb *b;
	const sigv4_auth_t *a;
	const char *token;
	size_t token_len;
	bool had_token;
	bool first;
};

static void
rewrite_sep(struct rewrite *w)
{
	if (!w->first)
		sb_putc(w->b, '&');
	w->first = false;
}

static int
rewrite_cb(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
	struct rewrite *w = arg;
	char scope[SIGV4_SCOPE_MAX];
	enum qp q = qp_lookup(k, kl);

	if (q == QP_SIG || (q == QP_TOKEN && w->token == NULL)) {
		w->had_token |= q == QP_TOKEN;
		return 0;
	}
	rewrite_sep(w);
	if (q == QP_CRED) {
		sb_puts(w->b, "X-Amz-Credential=");
		sb_puts(w->b, w->a->akid);
		sb_puts(w->b, "%2F");
		sigv4_scope(w->a, scope);
		for (const char *s = scope; *s != '\0'; s++)
			sb_enc(w->b, (unsigned char)*s);
	} else if (q == QP_TOKEN) {
		sb_puts(w->b, "X-Amz-Security-Token=");
		sb_enc_str(w->b, w->token, w->token_len);
		w->had_token = true;
	} else
		sb_put(w->b, k, v + vl - k);
	return 0;
}

/* The path, '?', and the parameters rewritten (the signature left for the caller). */
static int
rewrite_query(struct sb *b, const sigv4_request_t *r, const sigv4_auth_t *na,
    const char *token, size_t token_len)
{
	struct rewrite w = {b, na, token, token_len, false, true};
	const char *q = memchr(r->target, '?', r->target_len);
	size_t pl = (size_t)(q - r->target);

	sb_put(b, r->target, pl + 1);
	(void)query_each(q + 1, r->target_len - pl - 1, rewrite_cb, &w);
	if (token != NULL && !w.had_token) {
		rewrite_sep(&w);
		sb_puts(b, "X-Amz-Security-Token=");
		sb_enc_str(b, token, token_len);
	}
	return w.first ? SIGV4_E_FORMAT : SIGV4_OK;
}

int
sigv4_presign_rewrite(const sigv4_request_t *r, const sigv4_auth_t *a, const char *akid,
    size_t akid_len, const char *token, size_t token_len, const uint8_t key[SIGV4_KEY_LEN],
    char **target, size_t *len, const char **why)
{
	sigv4_auth_t na = *a;
	sigv4_request_t nr = *r;
	struct sb b = {0};
	char sig[SIGV4_SIG_HEX + 1];
	int rc;

	*target = NULL;
	*len = 0;
	*why = NULL;
	if (!a->presigned || r->target == NULL || memchr(r->target, '?', r->target_len) == NULL ||
	    sigv4_set_key_id(&na, akid, akid_len) != 0 || (rc = auth_check(&na, why)) != 0) {
		*why = *why != NULL ? *why : "not a presigned target, or a bad access key id";
		return SIGV4_E_FORMAT;
	}
	b.cap = r->target_len + 3 * (SIGV4_MAX_AKID + SIGV4_SCOPE_MAX) + 3 * token_len + 128;
	if ((b.p = secmem_wipe_alloc(b.cap + 1)) == NULL)
		return SIGV4_E_NOMEM;
	if ((rc = rewrite_query(&b, r, &na, token, token_len)) != SIGV4_OK) {
		*why = "presigned target without parameters";
		goto fail;
	}
	nr.target = b.p;
	nr.target_len = b.len;
	if ((rc = sigv4_sign(&nr, &na, key, sig, why)) != SIGV4_OK)
		goto fail;
	sb_puts(&b, "&X-Amz-Signature=");
	sb_puts(&b, sig);
	if (b.over || b.len > SIGV4_MAX_TARGET) {
		*why = "re-presigned target too long";
		rc = SIGV4_E_FORMAT;
		goto fail;
	}
	b.p[b.len] = '\0';
	*target = b.p;
	*len = b.len;
	return SIGV4_OK;
fail:
	secmem_wipe_free(b.p);
	return rc;
}
