/* awschunk.c — aws-chunked body re-signer: verify each chunk signature, replace it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "awschunk.h"
#include "digest.h"
#include "secmem.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIG_EXT		";chunk-signature="
#define SIG_EXT_LEN	(sizeof(SIG_EXT) - 1)
#define TRAILER_SIG	"x-amz-trailer-signature"
#define TRAILER_SIG_LEN	(sizeof(TRAILER_SIG) - 1)

enum ac_state {
	ST_HEAD,		/* a chunk header line */
	ST_DATA,		/* chunk data: held (signed) or passed (unsigned) */
	ST_DATA_END,		/* the CRLF after chunk data */
	ST_FINAL_CRLF,		/* AWSCHUNK_SIGNED: the CRLF after the final chunk */
	ST_TRAILER,		/* trailer lines, up to the blank line */
	ST_DONE,
	ST_ERROR,
};

enum sig_kind { SIG_CHUNK, SIG_TRAILER };

struct awschunk {
	enum awschunk_mode mode;
	enum ac_state state;
	int err;
	const char *why;
	uint8_t kin[SIGV4_KEY_LEN], kout[SIGV4_KEY_LEN];
	char prev_in[SIGV4_SIG_HEX + 1], prev_out[SIGV4_SIG_HEX + 1];
	char date[SIGV4_AMZ_DATE_LEN + 1];
	char scope[SIGV4_SCOPE_MAX];
	char line[AWSCHUNK_MAX_LINE];	/* the current line, CRLF included once complete */
	size_t line_len;
	size_t sig_off;			/* where the held header's signature starts */
	uint64_t need;			/* data bytes left in the current chunk */
	uint8_t *buf;			/* a signed chunk's data (wipe memory) */
	size_t buf_len, buf_cap;
	digest_sha256_t h;	/* the chunk's data, or the trailers */
	unsigned crlf;			/* bytes of a CRLF seen */
	unsigned ntrailers;
	char last_name[AWSCHUNK_MAX_LINE];	/* previous trailer name, lower case */
	size_t last_name_len;
	bool trailer_sig_seen;
	uint64_t decoded;
};

/* SHA-256 of nothing: the chunk hash of a final (empty) chunk. */
static const uint8_t awschunk_empty_hash[DIGEST_SHA256_BYTES] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
	0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
	0x78, 0x52, 0xb8, 0x55,
};

static bool
signed_mode(const awschunk_t *a)
{
	return a->mode != AWSCHUNK_UNSIGNED_TRAILER;
}

static int
fail(awschunk_t *a, int rc, const char *why)
{
	a->state = ST_ERROR;
	a->err = rc;
	a->why = why;
	return rc;
}

static bool
is_hex64(const char *s)
{
	for (size_t i = 0; i < SIGV4_SIG_HEX; i++)
		if (util_hex_nibble(s[i]) < 0)
			return false;
	return true;
}

static void
lower64(const char *in, char out[SIGV4_SIG_HEX + 1])
{
	for (size_t i = 0; i < SIGV4_SIG_HEX; i++)
		out[i] = (char)((in[i] >= 'A' && in[i] <= 'F') ? in[i] + ('a' - 'A') : in[i]);
	out[SIGV4_SIG_HEX] = '\0';
}

int
awschunk_mode_parse(const char *v, size_t len, enum awschunk_mode *mode)
{
	static const struct {
		const char *name;
		enum awschunk_mode mode;
	} names[] = {
		{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", AWSCHUNK_SIGNED},
		{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", AWSCHUNK_SIGNED_TRAILER},
		{"STREAMING-UNSIGNED-PAYLOAD-TRAILER", AWSCHUNK_UNSIGNED_TRAILER},
	};

	for (size_t i = 0; i < SG_ARRAY_LEN(names); i++)
		if (len == strlen(names[i].name) && memcmp(v, names[i].name, len) == 0) {
			*mode = names[i].mode;
			return 0;
		}
	return -1;
}

static bool
new_args_ok(enum awschunk_mode mode, const uint8_t *in_key, const uint8_t *out_key,
    const char *in_seed, const char *out_seed, const char *amz_date, const char *scope)
{
	if (mode == AWSCHUNK_UNSIGNED_TRAILER)
		return true;
	if (mode != AWSCHUNK_SIGNED && mode != AWSCHUNK_SIGNED_TRAILER)
		return false;
	return in_key != NULL && out_key != NULL && in_seed != NULL && out_seed != NULL &&
	    amz_date != NULL && scope != NULL &&
	    strnlen(in_seed, SIGV4_SIG_HEX + 1) == SIGV4_SIG_HEX && is_hex64(in_seed) &&
	    strnlen(out_seed, SIGV4_SIG_HEX + 1) == SIGV4_SIG_HEX && is_hex64(out_seed) &&
	    strnlen(amz_date, SIGV4_AMZ_DATE_LEN + 1) == SIGV4_AMZ_DATE_LEN &&
	    strnlen(scope, SIGV4_SCOPE_MAX) < SIGV4_SCOPE_MAX &&
	    strchr(amz_date, '\n') == NULL && strchr(scope, '\n') == NULL;
}

awschunk_t *
awschunk_new(enum awschunk_mode mode, const uint8_t *in_key, const uint8_t *out_key,
    const char *in_seed, const char *out_seed, const char *amz_date, const char *scope)
{
	awschunk_t *a;

	if (!new_args_ok(mode, in_key, out_key, in_seed, out_seed, amz_date, scope))
		return NULL;
	if ((a = secmem_wipe_alloc(sizeof(*a))) == NULL)
		return NULL;
	memset(a, 0, sizeof(*a));
	a->mode = mode;
	a->state = ST_HEAD;
	if (signed_mode(a)) {
		memcpy(a->kin, in_key, SIGV4_KEY_LEN);
		memcpy(a->kout, out_key, SIGV4_KEY_LEN);
		lower64(in_seed, a->prev_in);
		lower64(out_seed, a->prev_out);
		memcpy(a->date, amz_date, SIGV4_AMZ_DATE_LEN);
		snprintf(a->scope, sizeof(a->scope), "%s", scope);
	}
	return a;
}

void
awschunk_free(awschunk_t *a)
{
	if (a == NULL)
		return;
	digest_sha256_release(&a->h);
	secmem_wipe_free(a->buf);
	secmem_wipe_free(a);
}

const char *
awschunk_error(const awschunk_t *a)
{
	return a->why;
}

uint64_t
awschunk_decoded_length(const awschunk_t *a)
{
	return a->decoded;
}

/* --- signatures --------------------------------------------------------------------------- */

static void
sign_one(const awschunk_t *a, const uint8_t key[SIGV4_KEY_LEN], enum sig_kind kind,
    const char *prev, const uint8_t hash[crypto_hash_sha256_BYTES], char out[SIGV4_SIG_HEX + 1])
{
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	char sts[64 + SIGV4_AMZ_DATE_LEN + SIGV4_SCOPE_MAX + 3 * (SIGV4_SIG_HEX + 1)];
	char hx[SIGV4_SIG_HEX + 1];
	int n;

	util_hex_encode(hash, crypto_hash_sha256_BYTES, hx);
	if (kind == SIG_CHUNK)
		n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n"
		    EMPTY_SHA256 "\n%s", a->date, a->scope, prev, hx);
	else
		n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s",
		    a->date, a->scope, prev, hx);
	crypto_auth_hmacsha256_init(&st, key, SIGV4_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)sts, (size_t)n);
	crypto_auth_hmacsha256_final(&st, mac);
	util_hex_encode(mac, sizeof(mac), out);
	sodium_memzero(&st, sizeof(st));
}

/* Check sig (64 hex, as sent) against the in chain, then overwrite it with the out one. */
static int
resign(awschunk_t *a, enum sig_kind kind, const uint8_t hash[crypto_hash_sha256_BYTES],
    char *sig)
{
	char want[SIGV4_SIG_HEX + 1], got[SIGV4_SIG_HEX + 1];

	lower64(sig, got);
	sign_one(a, a->kin, kind, a->prev_in, hash, want);
	if (sodium_memcmp(want, got, SIGV4_SIG_HEX) != 0)
		return fail(a, AWSCHUNK_E_SIGNATURE, kind == SIG_CHUNK ?
		    "chunk signature mismatch (a chunk altered, replayed, dropped or reordered)" :
		    "trailer signature mismatch");
	memcpy(a->prev_in, got, sizeof(got));
	sign_one(a, a->kout, kind, a->prev_out, hash, a->prev_out);
	memcpy(sig, a->prev_out, SIGV4_SIG_HEX);
	return AWSCHUNK_OK;
}

/* --- lines ---------------------------------------------------------------------------------- */

/* Collect a CRLF-terminated line into a->line. 1 when complete (*used bytes taken),
 * 0 when all of p was taken, or an error code. */
static int
line_take(awschunk_t *a, const char *p, size_t len, size_t *used)
{
	const char *nl = memchr(p, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - p) + 1 : len;

	if (n > sizeof(a->line) - a->line_len)
		return fail(a, AWSCHUNK_E_TOO_BIG, "chunk header or trailer line too long");
	memcpy(a->line + a->line_len, p, n);
	a->line_len += n;
	*used = n;
	if (nl == NULL)
		return 0;
	if (a->line_len < 2 || a->line[a->line_len - 2] != '\r')
		return fail(a, AWSCHUNK_E_FRAMING, "line not ended by CRLF");
	if (memchr(a->line, '\r', a->line_len - 2) != NULL)
		return fail(a, AWSCHUNK_E_FRAMING, "CR inside a line");
	return 1;
}

/* "hex[;chunk-signature=64hex]": the size, and where the signature is (0: none). */
static int
head_parse(awschunk_t *a, uint64_t *size)
{
	size_t n = a->line_len - 2, i = 0;
	int d;

	*size = 0;
	while (i < n && (d = util_hex_nibble(a->line[i])) >= 0) {
		if (i == AWSCHUNK_MAX_SIZE_DIGITS)
			return fail(a, AWSCHUNK_E_TOO_BIG, "chunk size has too many digits");
		*size = *size << 4 | (uint64_t)d;
		i++;
	}
	if (i == 0)
		return fail(a, AWSCHUNK_E_FRAMING, "chunk header without a hex size");
	a->sig_off = 0;
	if (!signed_mode(a))
		return i == n ? AWSCHUNK_OK :
		    fail(a, AWSCHUNK_E_FRAMING, "unsigned chunk header with an extension");
	if (n - i != SIG_EXT_LEN + SIGV4_SIG_HEX || memcmp(a->line + i, SIG_EXT, SIG_EXT_LEN) != 0 ||
	    !is_hex64(a->line + i + SIG_EXT_LEN))
		return fail(a, AWSCHUNK_E_FRAMING, "chunk header is not size;chunk-signature=64hex");
	a->sig_off = i + SIG_EXT_LEN;
	return AWSCHUNK_OK;
}

static int
buf_reserve(awschunk_t *a, size_t size)
{
	if (size <= a->buf_cap)
		return AWSCHUNK_OK;
	secmem_wipe_free(a->buf);
	a->buf_cap = 0;
	if ((a->buf = secmem_wipe_alloc(size)) == NULL)
		return fail(a, AWSCHUNK_E_NOMEM, "out of memory");
	a->buf_cap = size;
	return AWSCHUNK_OK;
}

/* The final (zero-size) chunk's header is complete. */
static int
head_final(awschunk_t *a, awschunk_emit_fn emit, void *arg)
{
	int rc;

	if (signed_mode(a)) {
		if ((rc = resign(a, SIG_CHUNK, awschunk_empty_hash, a->line + a->sig_off)) != AWSCHUNK_OK)
			return rc;
	}
	emit(arg, a->line, a->line_len);
	a->line_len = 0;
	a->crlf = 0;
	a->state = a->mode == AWSCHUNK_SIGNED ? ST_FINAL_CRLF : ST_TRAILER;
	if (digest_sha256_init(&a->h) < 0)
		return fail(a, AWSCHUNK_E_NOMEM, "out of memory");
	return AWSCHUNK_OK;
}

/* A chunk header line is complete. */
static int
head_done(awschunk_t *a, awschunk_emit_fn emit, void *arg)
{
	uint64_t size;
	int rc;

	if ((rc = head_parse(a, &size)) != AWSCHUNK_OK)
		return rc;
	if (size == 0)
		return head_final(a, emit, arg);
	if (size > UINT64_MAX - a->decoded)
		return fail(a, AWSCHUNK_E_TOO_BIG, "chunk sizes overflow");
	a->need = size;
	a->state = ST_DATA;
	if (!signed_mode(a)) {
		emit(arg, a->line, a->line_len);
		a->line_len = 0;
		return AWSCHUNK_OK;
	}
	if (size > AWSCHUNK_MAX_CHUNK)
		return fail(a, AWSCHUNK_E_TOO_BIG, "signed chunk larger than AWSCHUNK_MAX_CHUNK");
	a->buf_len = 0;
	if (digest_sha256_init(&a->h) < 0)
		return fail(a, AWSCHUNK_E_NOMEM, "out of memory");
	return buf_reserve(a, (size_t)size);
}

/* --- data ------------------------------------------------------------------------------------- */

/* The held chunk is complete: verify, re-sign, emit its header and data. */
static int
data_done(awschunk_t *a, awschunk_emit_fn emit, void *arg)
{
	uint8_t hash[crypto_hash_sha256_BYTES];
	int rc;

	digest_sha256_final(&a->h, hash);
	if ((rc = resign(a, SIG_CHUNK, hash, a->line + a->sig_off)) != AWSCHUNK_OK)
		return rc;
	emit(arg, a->line, a->line_len);
	emit(arg, a->buf, a->buf_len);
	sodium_memzero(a->buf, a->buf_len);
	a->line_len = 0;
	a->buf_len = 0;
	return AWSCHUNK_OK;
}

static int
data_take(awschunk_t *a, const uint8_t *p, size_t len, size_t *used,
    awschunk_emit_fn emit, void *arg)
{
	size_t n = a->need < len ? (size_t)a->need : len;

	*used = n;
	a->need -= n;
	a->decoded += n;
	if (!signed_mode(a)) {
		emit(arg, p, n);
	} else {
		memcpy(a->buf + a->buf_len, p, n);
		a->buf_len += n;
		digest_sha256_update(&a->h, p, n);
	}
	if (a->need > 0)
		return AWSCHUNK_OK;
	a->state = ST_DATA_END;
	a->crlf = 0;
	return signed_mode(a) ? data_done(a, emit, arg) : AWSCHUNK_OK;
}

/* The CRLF after chunk data, or after the final chunk (AWSCHUNK_SIGNED). Emitted once
 * both bytes are checked, so the output does not depend on where the input was split. */
static int
crlf_take(awschunk_t *a, const uint8_t *p, size_t len, size_t *used,
    awschunk_emit_fn emit, void *arg)
{
	size_t n = 0;

	while (n < len && a->crlf < 2) {
		if (p[n] != (a->crlf == 0 ? '\r' : '\n'))
			return fail(a, AWSCHUNK_E_FRAMING, "chunk data not followed by CRLF");
		a->crlf++;
		n++;
	}
	*used = n;
	if (a->crlf < 2)
		return AWSCHUNK_OK;
	emit(arg, "\r\n", 2);
	a->state = a->state == ST_FINAL_CRLF ? ST_DONE : ST_HEAD;
	return AWSCHUNK_OK;
}

/* --- trailers --------------------------------------------------------------------------------- */

static bool
is_token_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* "name:value\n", name lower case, value trimmed and its inner runs collapsed. */
static void
trailer_hash(awschunk_t *a, const char *low, size_t nl, const char *v, size_t vl)
{
	bool gap = false, any = false;

	digest_sha256_update(&a->h, (const uint8_t *)low, nl);
	digest_sha256_update(&a->h, (const uint8_t *)":", 1);
	for (size_t i = 0; i < vl; i++) {
		if (v[i] == ' ' || v[i] == '\t') {
			gap = any;
			continue;
		}
		if (gap)
			digest_sha256_update(&a->h, (const uint8_t *)" ", 1);
		digest_sha256_update(&a->h, (const uint8_t *)v + i, 1);
		gap = false;
		any = true;
	}
	digest_sha256_update(&a->h, (const uint8_t *)"\n", 1);
}

/* x-amz-trailer-signature: verify over the trailers hashed so far, re-sign in place. */
static int
trailer_signature(awschunk_t *a, char *v, size_t vl)
{
	uint8_t hash[crypto_hash_sha256_BYTES];

	if (!signed_mode(a))
		return fail(a, AWSCHUNK_E_FRAMING, "trailer signature in an unsigned stream");
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (vl != SIGV4_SIG_HEX || !is_hex64(v))
		return fail(a, AWSCHUNK_E_FRAMING, "x-amz-trailer-signature is not 64 hex digits");
	digest_sha256_final(&a->h, hash);
	a->trailer_sig_seen = true;
	return resign(a, SIG_TRAILER, hash, v);
}

/* An ordinary trailer: checked; in signed mode hashed, and its name must come after the
 * previous one's (the signer hashes them sorted; holding them to sort would take memory,
 * and SDKs send one). */
static int
trailer_field(awschunk_t *a, const char *name, size_t nl, const char *v, size_t vl)
{
	char low[AWSCHUNK_MAX_LINE];
	int c;

	if (++a->ntrailers > AWSCHUNK_MAX_TRAILERS)
		return fail(a, AWSCHUNK_E_TOO_BIG, "too many trailers");
	for (size_t i = 0; i < vl; i++)
		if (((unsigned char)v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f)
			return fail(a, AWSCHUNK_E_FRAMING, "control character in a trailer value");
	if (!signed_mode(a))
		return AWSCHUNK_OK;
	for (size_t i = 0; i < nl; i++)
		low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	c = memcmp(a->last_name, low, nl < a->last_name_len ? nl : a->last_name_len);
	if (a->last_name_len > 0 && (c > 0 || (c == 0 && a->last_name_len >= nl)))
		return fail(a, AWSCHUNK_E_FRAMING, "signed trailers not in sorted order, or repeated");
	memcpy(a->last_name, low, nl);
	a->last_name_len = nl;
	trailer_hash(a, low, nl, v, vl);
	return AWSCHUNK_OK;
}

/* A trailer line is complete (CRLF included). */
static int
trailer_done(awschunk_t *a, awschunk_emit_fn emit, void *arg)
{
	size_t n = a->line_len - 2, nl = 0;
	int rc;

	if (n == 0) {
		if (a->mode == AWSCHUNK_SIGNED_TRAILER && !a->trailer_sig_seen)
			return fail(a, AWSCHUNK_E_FRAMING, "trailers without x-amz-trailer-signature");
		a->state = ST_DONE;
	} else {
		while (nl < n && is_token_char((unsigned char)a->line[nl]))
			nl++;
		if (nl == 0 || nl == n || a->line[nl] != ':')
			return fail(a, AWSCHUNK_E_FRAMING, "trailer line is not name:value");
		if (a->trailer_sig_seen)
			return fail(a, AWSCHUNK_E_FRAMING, "trailer after x-amz-trailer-signature");
		if (nl == TRAILER_SIG_LEN && strncasecmp(a->line, TRAILER_SIG, nl) == 0)
			rc = trailer_signature(a, a->line + nl + 1, n - nl - 1);
		else
			rc = trailer_field(a, a->line, nl, a->line + nl + 1, n - nl - 1);
		if (rc != AWSCHUNK_OK)
			return rc;
	}
	emit(arg, a->line, a->line_len);
	a->line_len = 0;
	return AWSCHUNK_OK;
}

/* --- the stream ------------------------------------------------------------------------------ */

/* One step in the current state: *used bytes of p taken. */
static int
step(awschunk_t *a, const uint8_t *p, size_t len, size_t *used, awschunk_emit_fn emit,
    void *arg)
{
	int rc;

	switch (a->state) {
	case ST_HEAD:
	case ST_TRAILER:
		if ((rc = line_take(a, (const char *)p, len, used)) != 1)
			return rc;
		return a->state == ST_HEAD ? head_done(a, emit, arg) : trailer_done(a, emit, arg);
	case ST_DATA:
		return data_take(a, p, len, used, emit, arg);
	case ST_DATA_END:
	case ST_FINAL_CRLF:
		return crlf_take(a, p, len, used, emit, arg);
	case ST_DONE:
		return fail(a, AWSCHUNK_E_AFTER_END, "bytes after the end of the aws-chunked body");
	case ST_ERROR:
		break;
	}
	return a->err;
}

int
awschunk_feed(awschunk_t *a, const void *data, size_t len, awschunk_emit_fn emit, void *arg)
{
	const uint8_t *p = data;

	if (a->state == ST_ERROR)
		return a->err;
	while (len > 0) {
		size_t used = 0;
		int rc = step(a, p, len, &used, emit, arg);

		if (rc != AWSCHUNK_OK)
			return rc;
		p += used;
		len -= used;
	}
	return AWSCHUNK_OK;
}

int
awschunk_finish(awschunk_t *a)
{
	switch (a->state) {
	case ST_DONE:
		return AWSCHUNK_OK;
	case ST_ERROR:
		return a->err;
	case ST_TRAILER:
		return fail(a, AWSCHUNK_E_TRUNCATED, "body ended inside the trailers");
	case ST_DATA:
	case ST_DATA_END:
		return fail(a, AWSCHUNK_E_TRUNCATED, "body ended inside a chunk");
	default:
		return fail(a, AWSCHUNK_E_TRUNCATED, "body ended before its final chunk");
	}
}
