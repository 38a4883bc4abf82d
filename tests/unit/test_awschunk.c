/*
 * test_awschunk.c — aws-chunked re-signing: the S3 documentation's 64 KiB chunked upload
 * and its trailer variant (verified with the example key; re-signed with the same key
 * they come out unchanged, with another key they re-verify with it), whole, byte by byte
 * and in random pieces; altered, replayed, dropped and reordered chunks; framing errors,
 * limits, truncation, bytes after the end; STREAMING-UNSIGNED-PAYLOAD-TRAILER passing
 * through.
 *
 * Known answers (data copied here): Amazon S3 API Reference, "Signature Calculations for
 * the Authorization Header: Transferring Payload in Multiple Chunks" (seed 4f232c43...,
 * chunk signatures ad80c730..., 0055627c..., b6c6ea8a...) and "Signature calculations
 * for trailing headers" (seed 106e2a8a..., chunks b474d886..., 1c1344b1..., 2ca2aba2...,
 * x-amz-checksum-crc32c:sOO8/Q== with trailer signature d81f82fc...): key
 * AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z,
 * 20130524/us-east-1/s3/aws4_request.
 */
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

#include "awschunk.h"
#include "sigv4.h"

#define S3_SECRET	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define OTHER_SECRET	"otherSecretAccessKeyOfTheRealAccount0123"
#define DATE		"20130524T000000Z"
#define SCOPE		"20130524/us-east-1/s3/aws4_request"
#define EMPTY_HASH	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define SEED		"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SIG1		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG2		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define SIG3		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
#define TSEED		"106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
#define TSIG1		"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
#define TSIG2		"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
#define TSIG3		"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
#define TRAILER		"x-amz-checksum-crc32c:sOO8/Q==\r\n"
#define TSIG		"d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"

/* --- byte buffers -------------------------------------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void
emit_cb(void *arg, const void *data, size_t len)
{
	buf_add(arg, data, len);
}

/* --- the documentation's bodies ---------------------------------------------------------- */

static void
doc_chunk(struct buf *b, size_t size, const char *sig)
{
	char head[128];
	uint8_t *a = malloc(size + 1);

	assert_non_null(a);
	memset(a, 'a', size);
	snprintf(head, sizeof(head), "%zx;chunk-signature=%s\r\n", size, sig);
	buf_str(b, head);
	buf_add(b, a, size);
	if (size > 0)
		buf_str(b, "\r\n");
	free(a);
}

static void
doc_body(struct buf *b)
{
	doc_chunk(b, 65536, SIG1);
	doc_chunk(b, 1024, SIG2);
	doc_chunk(b, 0, SIG3);
	buf_str(b, "\r\n");
}

static void
doc_trailer_body(struct buf *b)
{
	doc_chunk(b, 65536, TSIG1);
	doc_chunk(b, 1024, TSIG2);
	doc_chunk(b, 0, TSIG3);
	buf_str(b, TRAILER "x-amz-trailer-signature:" TSIG "\r\n\r\n");
}

static void
key_of(const char *secret, uint8_t key[SIGV4_KEY_LEN])
{
	sigv4_signing_key(secret, strlen(secret), "20130524", "us-east-1", "s3", key);
}

/* --- a reference signer (the documentation's rules, written out again) -------------------- */

struct ref {
	uint8_t key[SIGV4_KEY_LEN];
	char prev[SIGV4_SIG_HEX + 1];
	bool sign;
};

static void
ref_mac(struct ref *r, const char *sts)
{
	uint8_t mac[32];

	crypto_auth_hmacsha256(mac, (const uint8_t *)sts, strlen(sts), r->key);
	util_hex_encode(mac, sizeof(mac), r->prev);
}

static void
ref_chunk(struct buf *b, struct ref *r, const uint8_t *data, size_t len)
{
	char sts[512], hx[65], head[128];
	uint8_t h[32];

	crypto_hash_sha256(h, data, len);
	util_hex_encode(h, sizeof(h), hx);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-PAYLOAD\n" DATE "\n" SCOPE "\n%s\n"
	    EMPTY_HASH "\n%s", r->prev, hx);
	ref_mac(r, sts);
	if (r->sign)
		snprintf(head, sizeof(head), "%zx;chunk-signature=%s\r\n", len, r->prev);
	else
		snprintf(head, sizeof(head), "%zx\r\n", len);
	buf_str(b, head);
	buf_add(b, data, len);
	if (len > 0)
		buf_str(b, "\r\n");
}

/* Trailer lines (each "name:value\r\n", sorted) and the trailer signature. */
static void
ref_trailers(struct buf *b, struct ref *r, const char *const *lines)
{
	char sts[512], hx[65];
	uint8_t h[32];
	crypto_hash_sha256_state hs;

	crypto_hash_sha256_init(&hs);
	for (size_t i = 0; lines[i] != NULL; i++) {
		buf_str(b, lines[i]);
		crypto_hash_sha256_update(&hs, (const uint8_t *)lines[i], strlen(lines[i]) - 2);
		crypto_hash_sha256_update(&hs, (const uint8_t *)"\n", 1);
	}
	crypto_hash_sha256_final(&hs, h);
	util_hex_encode(h, sizeof(h), hx);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-TRAILER\n" DATE "\n" SCOPE "\n%s\n%s",
	    r->prev, hx);
	ref_mac(r, sts);
	buf_str(b, "x-amz-trailer-signature:");
	buf_str(b, r->prev);
	buf_str(b, "\r\n\r\n");
}

/* --- running ------------------------------------------------------------------------------- */

struct keys {
	uint8_t in[SIGV4_KEY_LEN], out[SIGV4_KEY_LEN];
	const char *in_seed, *out_seed;
};

static uint64_t last_decoded;	/* run's last body's decoded length */

/* Feed in pieces of piece bytes (0: whole; SIZE_MAX: random sizes), then finish. */
static int
run(enum awschunk_mode mode, const struct keys *k, const struct buf *in, size_t piece,
    struct buf *out, const char **why)
{
	awschunk_t *a = awschunk_new(mode, k->in, k->out, k->in_seed, k->out_seed, DATE, SCOPE);
	size_t off = 0;
	int rc = AWSCHUNK_OK;

	assert_non_null(a);
	while (off < in->len && rc == AWSCHUNK_OK) {
		size_t n = piece == 0 ? in->len : piece == SIZE_MAX ?
		    1 + randombytes_uniform(3000) : piece;

		if (n > in->len - off)
			n = in->len - off;
		rc = awschunk_feed(a, in->p + off, n, emit_cb, out);
		off += n;
	}
	if (rc == AWSCHUNK_OK)
		rc = awschunk_finish(a);
	if (why != NULL)
		*why = awschunk_error(a);
	last_decoded = awschunk_decoded_length(a);
	awschunk_free(a);
	return rc;
}

/* The seed sealgate sends: the documentation's seed request re-signed with the other key. */
static void
out_seed(char seed[SIGV4_SIG_HEX + 1])
{
	static const char *const names[] = {"Host", "x-amz-date", "x-amz-storage-class",
		"x-amz-content-sha256", "Content-Encoding", "x-amz-decoded-content-length",
		"Content-Length"};
	static const char *const values[] = {"s3.amazonaws.com", DATE, "REDUCED_REDUNDANCY",
		"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "aws-chunked", "66560", "66824"};
	static const char authz[] = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;"
	    "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
	    "Signature=" SEED;
	http_field_t f[7];
	sigv4_auth_t a;
	uint8_t key[SIGV4_KEY_LEN];
	const char *why;
	sigv4_request_t r = {"PUT", "/examplebucket/chunkObject.txt", 30, f, 7,
		"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", SIGV4_S3};

	for (size_t i = 0; i < 7; i++)
		f[i] = (http_field_t){names[i], values[i], strlen(names[i]), strlen(values[i])};
	assert_int_equal(sigv4_parse_authorization(authz, strlen(authz), &a, &why), SIGV4_OK);
	key_of(S3_SECRET, key);
	assert_int_equal(sigv4_verify(&r, &a, key, &why), SIGV4_OK);
	key_of(OTHER_SECRET, key);
	assert_int_equal(sigv4_sign(&r, &a, key, seed, &why), SIGV4_OK);
}

/* Output equals input but inside the signature values listed. */
static void
assert_same_but_signatures(const struct buf *in, const struct buf *out)
{
	assert_int_equal(in->len, out->len);
	for (size_t i = 0; i < in->len; i++) {
		if (in->p[i] == out->p[i])
			continue;
		/* Inside a 64-hex value after "signature=" or "signature:". */
		size_t j = i;

		while (j > 0 && in->p[j - 1] != '=' && in->p[j - 1] != ':')
			j--;
		assert_true(i - j < SIGV4_SIG_HEX);
		assert_true(j >= 10 && memcmp(in->p + j - 10, "signature", 9) == 0);
	}
}

/* --- the documentation's examples ---------------------------------------------------------- */

static void
test_doc_example_same_key_unchanged(void **state)
{
	struct buf in = {0}, out = {0};
	struct keys k = {.in_seed = SEED, .out_seed = SEED};

	(void)state;
	doc_body(&in);
	assert_int_equal(in.len, 66824);	/* the documented Content-Length */
	key_of(S3_SECRET, k.in);
	key_of(S3_SECRET, k.out);
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &out, NULL), AWSCHUNK_OK);
	assert_int_equal(last_decoded, 66560);	/* x-amz-decoded-content-length */
	assert_int_equal(out.len, in.len);
	assert_memory_equal(out.p, in.p, in.len);
	buf_free(&in);
	buf_free(&out);
}

static void
test_doc_example_resigned_reverifies(void **state)
{
	struct buf in = {0}, out = {0}, again = {0}, ref = {0};
	char seed[SIGV4_SIG_HEX + 1];
	struct keys k = {.in_seed = SEED}, k2;
	struct ref r = {.sign = true};
	uint8_t *a = malloc(65536);

	(void)state;
	assert_non_null(a);
	memset(a, 'a', 65536);
	doc_body(&in);
	out_seed(seed);
	k.out_seed = seed;
	key_of(S3_SECRET, k.in);
	key_of(OTHER_SECRET, k.out);
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &out, NULL), AWSCHUNK_OK);
	assert_same_but_signatures(&in, &out);
	assert_memory_not_equal(out.p, in.p, in.len);
	/* The reference signer with the other key writes the same body. */
	memcpy(r.key, k.out, sizeof(r.key));
	memcpy(r.prev, seed, sizeof(r.prev));
	ref_chunk(&ref, &r, a, 65536);
	ref_chunk(&ref, &r, a, 1024);
	ref_chunk(&ref, &r, a, 0);
	buf_str(&ref, "\r\n");
	assert_int_equal(ref.len, out.len);
	assert_memory_equal(ref.p, out.p, out.len);
	/* It verifies with the other key, and not with the example key. */
	memcpy(k2.in, k.out, sizeof(k2.in));
	memcpy(k2.out, k.in, sizeof(k2.out));
	k2.in_seed = seed;
	k2.out_seed = SEED;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k2, &out, 0, &again, NULL), AWSCHUNK_OK);
	assert_memory_equal(again.p, in.p, in.len);	/* and signs back to the original */
	again.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &out, 0, &again, NULL), AWSCHUNK_E_SIGNATURE);
	free(a);
	buf_free(&in);
	buf_free(&out);
	buf_free(&again);
	buf_free(&ref);
}

static void
test_doc_example_splits_identical(void **state)
{
	struct buf in = {0}, whole = {0}, part = {0};
	struct keys k = {.in_seed = SEED, .out_seed = SIG3};
	static const size_t pieces[] = {1, 2, 3, 7, 99, 100, 4096, 65535, SIZE_MAX, SIZE_MAX};

	(void)state;
	doc_body(&in);
	key_of(S3_SECRET, k.in);
	key_of(OTHER_SECRET, k.out);
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &whole, NULL), AWSCHUNK_OK);
	for (size_t i = 0; i < SG_ARRAY_LEN(pieces); i++) {
		part.len = 0;
		assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, pieces[i], &part, NULL),
		    AWSCHUNK_OK);
		assert_int_equal(part.len, whole.len);
		assert_memory_equal(part.p, whole.p, whole.len);
	}
	buf_free(&in);
	buf_free(&whole);
	buf_free(&part);
}

static void
test_doc_trailer_example(void **state)
{
	struct buf in = {0}, out = {0}, again = {0};
	struct keys k = {.in_seed = TSEED, .out_seed = TSEED}, k2;
	uint8_t h[32];
	char hx[65];

	(void)state;
	/* The documented hash of the trailer: the line with LF, CRLF dropped. */
	crypto_hash_sha256(h, (const uint8_t *)"x-amz-checksum-crc32c:sOO8/Q==\n", 31);
	util_hex_encode(h, sizeof(h), hx);
	assert_string_equal(hx, "1e376db7e1a34a8ef1c4bcee131a2d60a1cb62503747488624e10995f448d774");
	doc_trailer_body(&in);
	key_of(S3_SECRET, k.in);
	key_of(S3_SECRET, k.out);
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &in, 0, &out, NULL), AWSCHUNK_OK);
	assert_memory_equal(out.p, in.p, in.len);
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &in, 1, &out, NULL), AWSCHUNK_OK);
	assert_memory_equal(out.p, in.p, in.len);
	/* Another key: different signatures, same bytes elsewhere, verifies with that key. */
	out.len = 0;
	key_of(OTHER_SECRET, k.out);
	k.out_seed = SEED;
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &in, SIZE_MAX, &out, NULL),
	    AWSCHUNK_OK);
	assert_same_but_signatures(&in, &out);
	assert_null(memmem(out.p, out.len, TSIG, 64));
	memcpy(k2.in, k.out, sizeof(k2.in));
	memcpy(k2.out, k.in, sizeof(k2.out));
	k2.in_seed = SEED;
	k2.out_seed = TSEED;
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k2, &out, 7, &again, NULL), AWSCHUNK_OK);
	assert_memory_equal(again.p, in.p, in.len);
	/* The trailer altered: its signature fails. */
	again.len = 0;
	memcpy(memmem(in.p, in.len, "sOO8", 4), "sOO9", 4);
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &in, 0, &again, NULL),
	    AWSCHUNK_E_SIGNATURE);
	buf_free(&in);
	buf_free(&out);
	buf_free(&again);
}

/* --- tampering ------------------------------------------------------------------------------ */

/* Three distinct chunks from the reference signer, spliced in a given order. */
static void
spliced(struct buf *b, const struct keys *k, const int *order, size_t n)
{
	static const char *const data[] = {"first chunk data", "second chunk, longer data",
		"third"};
	struct buf parts[3] = {{0}};
	struct ref r = {.sign = true};

	memcpy(r.key, k->in, sizeof(r.key));
	memcpy(r.prev, k->in_seed, sizeof(r.prev));
	for (int i = 0; i < 3; i++)
		ref_chunk(&parts[i], &r, (const uint8_t *)data[i], strlen(data[i]));
	for (size_t i = 0; i < n; i++)
		buf_add(b, parts[order[i]].p, parts[order[i]].len);
	ref_chunk(b, &r, (const uint8_t *)"", 0);
	buf_str(b, "\r\n");
	for (int i = 0; i < 3; i++)
		buf_free(&parts[i]);
}

static void
test_tampering_fails(void **state)
{
	static const int good[] = {0, 1, 2}, reordered[] = {1, 0, 2}, dropped[] = {0, 2},
	    replayed[] = {0, 0, 1, 2};
	struct buf in = {0}, out = {0};
	struct keys k = {.in_seed = SEED, .out_seed = SEED};
	const char *why;
	uint8_t *p;

	(void)state;
	key_of(S3_SECRET, k.in);
	key_of(OTHER_SECRET, k.out);
	spliced(&in, &k, good, 3);
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &out, NULL), AWSCHUNK_OK);
	/* The final chunk signs the chain: a reordered, dropped or replayed chunk fails,
	 * and the failing chunk's bytes are not emitted. */
	buf_free(&in);
	spliced(&in, &k, reordered, 3);
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &out, &why), AWSCHUNK_E_SIGNATURE);
	assert_non_null(strstr(why, "chunk signature mismatch"));
	assert_int_equal(out.len, 0);
	buf_free(&in);
	spliced(&in, &k, dropped, 2);
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &out, NULL), AWSCHUNK_E_SIGNATURE);
	assert_null(memmem(out.p, out.len, "third", 5));
	buf_free(&in);
	spliced(&in, &k, replayed, 4);
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 3, &out, NULL), AWSCHUNK_E_SIGNATURE);
	assert_int_equal(memmem(out.p, out.len, "first chunk data", 16) != NULL, 1);
	assert_null(memmem(out.p + 100, out.len - 100, "first chunk data", 16));
	/* One data byte changed. */
	buf_free(&in);
	spliced(&in, &k, good, 3);
	p = memmem(in.p, in.len, "longer", 6);
	p[0] = 'L';
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 1, &out, NULL), AWSCHUNK_E_SIGNATURE);
	assert_null(memmem(out.p, out.len, "Longer", 6));
	/* Another seed (the head's signature was not this one). */
	p[0] = 'l';
	k.in_seed = SIG1;
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &out, NULL), AWSCHUNK_E_SIGNATURE);
	assert_int_equal(out.len, 0);
	buf_free(&in);
	buf_free(&out);
}

/* --- framing ------------------------------------------------------------------------------- */

struct framing_case {
	enum awschunk_mode mode;
	const char *body;
	int feed_rc;		/* the first feed error, or OK */
	int finish_rc;
};

#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"

/* Fed one byte at a time, a framing case ends the same and emits the same bytes as fed
 * whole (a CRLF after chunk data is emitted only once both bytes are checked). */
static void
assert_bytewise_same(const struct framing_case *c, const struct buf *whole)
{
	uint8_t key[SIGV4_KEY_LEN] = {0};
	awschunk_t *a = awschunk_new(c->mode, key, key, Z64, Z64, DATE, SCOPE);
	struct buf out = {0};
	size_t len = strlen(c->body);
	int rc = AWSCHUNK_OK;

	assert_non_null(a);
	for (size_t i = 0; i < len && rc == AWSCHUNK_OK; i++)
		rc = awschunk_feed(a, c->body + i, 1, emit_cb, &out);
	assert_int_equal(rc, c->feed_rc);
	assert_int_equal(out.len, whole->len);
	if (out.len > 0)
		assert_memory_equal(out.p, whole->p, out.len);
	awschunk_free(a);
	buf_free(&out);
}

static void
test_framing_errors(void **state)
{
	static const struct framing_case cases[] = {
		{AWSCHUNK_SIGNED, "", AWSCHUNK_OK, AWSCHUNK_E_TRUNCATED},
		{AWSCHUNK_SIGNED, "5;chunk-signature=" Z64 "\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, "5;chunk-signature=" Z64 "\r\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, "5\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, ";chunk-signature=" Z64 "\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, "5;chunk-signature=" Z64 ";x=y\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, "5;chunk-signature=abc\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, "5;Chunk-Signature=" Z64 "\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, " 5;chunk-signature=" Z64 "\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_SIGNED, "5;chunk-signature=" Z64 "\r\nab", AWSCHUNK_OK,
		    AWSCHUNK_E_TRUNCATED},
		{AWSCHUNK_SIGNED, "5;chunk-signature=" Z64, AWSCHUNK_OK, AWSCHUNK_E_TRUNCATED},
		{AWSCHUNK_SIGNED, "00000000000000005;chunk-signature=" Z64 "\r\n",
		    AWSCHUNK_E_TOO_BIG, 0},
		{AWSCHUNK_SIGNED, "100001;chunk-signature=" Z64 "\r\n", AWSCHUNK_E_TOO_BIG, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "5;chunk-signature=" Z64 "\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "5;x\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "3\r\nabcX\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "4\r\nabcd\r4\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "3\r\nabc\r", AWSCHUNK_OK, AWSCHUNK_E_TRUNCATED},
		{AWSCHUNK_UNSIGNED_TRAILER, "3\r\nabc\r\n", AWSCHUNK_OK, AWSCHUNK_E_TRUNCATED},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\n", AWSCHUNK_OK, AWSCHUNK_E_TRUNCATED},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n", AWSCHUNK_OK,
		    AWSCHUNK_E_TRUNCATED},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\n\r\n", AWSCHUNK_OK, AWSCHUNK_OK},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\n\r\nX", AWSCHUNK_E_AFTER_END, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\nnocolon\r\n\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\n:v\r\n\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\nbad name:v\r\n\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\nx:a\x01\r\n\r\n", AWSCHUNK_E_FRAMING, 0},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\nb:1\r\na:2\r\nb:3\r\n\r\n", AWSCHUNK_OK,
		    AWSCHUNK_OK},
		{AWSCHUNK_UNSIGNED_TRAILER, "0\r\nx-amz-trailer-signature:" Z64 "\r\n\r\n",
		    AWSCHUNK_E_FRAMING, 0},
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		const struct framing_case *c = &cases[i];
		uint8_t key[SIGV4_KEY_LEN] = {0};
		awschunk_t *a = awschunk_new(c->mode, key, key, Z64, Z64, DATE, SCOPE);
		struct buf out = {0};
		int rc;

		print_message("  case %zu\n", i);
		assert_non_null(a);
		rc = awschunk_feed(a, c->body, strlen(c->body), emit_cb, &out);
		assert_int_equal(rc, c->feed_rc);
		if (rc == AWSCHUNK_OK)
			assert_int_equal(awschunk_finish(a), c->finish_rc);
		else {
			/* Sticky: the same error again, nothing more emitted. */
			size_t len = out.len;

			assert_non_null(awschunk_error(a));
			assert_int_equal(awschunk_feed(a, "0\r\n", 3, emit_cb, &out), rc);
			assert_int_equal(awschunk_finish(a), rc);
			assert_int_equal(out.len, len);
		}
		awschunk_free(a);
		assert_bytewise_same(c, &out);
		buf_free(&out);
	}
}

/* A line of AWSCHUNK_MAX_LINE bytes is taken, one more is refused. */
static void
test_line_limit(void **state)
{
	char line[AWSCHUNK_MAX_LINE + 2];
	awschunk_t *a;
	struct buf out = {0};

	(void)state;
	for (int extra = 0; extra <= 1; extra++) {
		size_t n = AWSCHUNK_MAX_LINE + (size_t)extra;

		a = awschunk_new(AWSCHUNK_UNSIGNED_TRAILER, NULL, NULL, NULL, NULL, NULL, NULL);
		assert_non_null(a);
		assert_int_equal(awschunk_feed(a, "0\r\n", 3, emit_cb, &out), AWSCHUNK_OK);
		memset(line, 'v', n);
		memcpy(line, "x:", 2);
		memcpy(line + n - 2, "\r\n", 2);
		assert_int_equal(awschunk_feed(a, line, n, emit_cb, &out),
		    extra ? AWSCHUNK_E_TOO_BIG : AWSCHUNK_OK);
		awschunk_free(a);
	}
	buf_free(&out);
}

/* Signed chunks up to AWSCHUNK_MAX_CHUNK are held and re-signed; larger are refused. */
static void
test_chunk_limit(void **state)
{
	struct buf in = {0}, out = {0};
	struct keys k = {.in_seed = SEED, .out_seed = SEED};
	struct ref r = {.sign = true};
	uint8_t *data = calloc(1, AWSCHUNK_MAX_CHUNK + 1);
	awschunk_t *a;

	(void)state;
	assert_non_null(data);
	key_of(S3_SECRET, k.in);
	key_of(OTHER_SECRET, k.out);
	memcpy(r.key, k.in, sizeof(r.key));
	memcpy(r.prev, SEED, sizeof(r.prev));
	ref_chunk(&in, &r, data, AWSCHUNK_MAX_CHUNK);
	ref_chunk(&in, &r, data, 0);
	buf_str(&in, "\r\n");
	a = awschunk_new(AWSCHUNK_SIGNED, k.in, k.out, SEED, SEED, DATE, SCOPE);
	assert_non_null(a);
	assert_int_equal(awschunk_feed(a, in.p, in.len, emit_cb, &out), AWSCHUNK_OK);
	assert_int_equal(awschunk_finish(a), AWSCHUNK_OK);
	assert_int_equal(awschunk_decoded_length(a), AWSCHUNK_MAX_CHUNK);
	assert_int_equal(out.len, in.len);
	awschunk_free(a);
	in.len = 0;
	memcpy(r.prev, SEED, sizeof(r.prev));
	ref_chunk(&in, &r, data, AWSCHUNK_MAX_CHUNK + 1);
	a = awschunk_new(AWSCHUNK_SIGNED, k.in, k.out, SEED, SEED, DATE, SCOPE);
	assert_non_null(a);
	assert_int_equal(awschunk_feed(a, in.p, in.len, emit_cb, &out), AWSCHUNK_E_TOO_BIG);
	awschunk_free(a);
	free(data);
	buf_free(&in);
	buf_free(&out);
}

static void
test_signed_trailer_rules(void **state)
{
	static const char *const two[] = {"x-amz-checksum-crc32:AAAAAA==\r\n",
		"x-amz-meta-z: spaced   value \r\n", NULL};
	static const char *const none[] = {NULL};
	struct buf in = {0}, out = {0}, bad = {0};
	struct keys k = {.in_seed = TSEED, .out_seed = SEED};
	struct ref r = {.sign = true};
	uint8_t *p;

	(void)state;
	key_of(S3_SECRET, k.in);
	key_of(OTHER_SECRET, k.out);
	/* Two trailers (values hashed trimmed, runs collapsed): the reference signer hashes
	 * the raw value, so give it the canonical one and send a spaced copy. */
	memcpy(r.key, k.in, sizeof(r.key));
	memcpy(r.prev, TSEED, sizeof(r.prev));
	ref_chunk(&in, &r, (const uint8_t *)"hello", 5);
	ref_chunk(&in, &r, (const uint8_t *)"", 0);
	{
		static const char *const canon[] = {"x-amz-checksum-crc32:AAAAAA==\r\n",
			"x-amz-meta-z:spaced value\r\n", NULL};
		size_t at = in.len;

		ref_trailers(&in, &r, canon);
		bad.len = 0;
		buf_add(&bad, in.p, at);
		buf_str(&bad, two[0]);
		buf_str(&bad, two[1]);
		buf_add(&bad, in.p + at + strlen(canon[0]) + strlen(canon[1]),
		    in.len - at - strlen(canon[0]) - strlen(canon[1]));
	}
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &bad, 1, &out, NULL), AWSCHUNK_OK);
	assert_int_equal(out.len, bad.len);
	/* No trailers at all, just the signature. */
	buf_free(&in);
	memcpy(r.prev, TSEED, sizeof(r.prev));
	ref_chunk(&in, &r, (const uint8_t *)"hello", 5);
	ref_chunk(&in, &r, (const uint8_t *)"", 0);
	ref_trailers(&in, &r, none);
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &in, 0, &out, NULL), AWSCHUNK_OK);
	/* The signature missing: the blank line after the final chunk is refused. */
	p = memmem(in.p, in.len, "x-amz-trailer-signature", 23);
	bad.len = 0;
	buf_add(&bad, in.p, (size_t)(p - in.p));
	buf_str(&bad, "\r\n");
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &bad, 0, &out, NULL),
	    AWSCHUNK_E_FRAMING);
	/* A trailer after the signature. */
	bad.len = 0;
	buf_add(&bad, in.p, in.len - 2);
	buf_str(&bad, "x:1\r\n\r\n");
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &bad, 0, &out, NULL),
	    AWSCHUNK_E_FRAMING);
	/* Signed trailers come sorted, each once (as the signer hashes them). */
	for (int order = 0; order < 2; order++) {
		static const char *const unsorted[] = {"b:1\r\n", "a:2\r\n", NULL};
		static const char *const twice[] = {"a:1\r\n", "A:2\r\n", NULL};
		const char *why = NULL;

		bad.len = 0;
		memcpy(r.prev, TSEED, sizeof(r.prev));
		ref_chunk(&bad, &r, (const uint8_t *)"", 0);
		ref_trailers(&bad, &r, order == 0 ? unsorted : twice);
		out.len = 0;
		assert_int_equal(run(AWSCHUNK_SIGNED_TRAILER, &k, &bad, 0, &out, &why),
		    AWSCHUNK_E_FRAMING);
		assert_non_null(strstr(why, "sorted"));
	}
	/* The signed mode without trailers refuses them. */
	out.len = 0;
	assert_int_equal(run(AWSCHUNK_SIGNED, &k, &in, 0, &out, NULL), AWSCHUNK_E_FRAMING);
	buf_free(&in);
	buf_free(&out);
	buf_free(&bad);
}

/* STREAMING-UNSIGNED-PAYLOAD-TRAILER (botocore's framing) passes through unchanged. */
static void
test_unsigned_trailer_passes(void **state)
{
	struct buf in = {0}, out = {0};
	static const size_t pieces[] = {0, 1, 2, 5, SIZE_MAX};

	(void)state;
	buf_str(&in, "4\r\nabcd\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
	    "x-amz-checksum-crc32:NSRBwg==\r\n\r\n");
	for (size_t i = 0; i < SG_ARRAY_LEN(pieces); i++) {
		awschunk_t *a = awschunk_new(AWSCHUNK_UNSIGNED_TRAILER, NULL, NULL, NULL, NULL,
		    NULL, NULL);
		size_t off = 0;

		assert_non_null(a);
		out.len = 0;
		while (off < in.len) {
			size_t n = pieces[i] == 0 ? in.len : pieces[i] == SIZE_MAX ?
			    1 + randombytes_uniform(9) : pieces[i];

			n = n > in.len - off ? in.len - off : n;
			assert_int_equal(awschunk_feed(a, in.p + off, n, emit_cb, &out),
			    AWSCHUNK_OK);
			off += n;
		}
		assert_int_equal(awschunk_finish(a), AWSCHUNK_OK);
		assert_int_equal(awschunk_decoded_length(a), 30);
		assert_int_equal(out.len, in.len);
		assert_memory_equal(out.p, in.p, in.len);
		awschunk_free(a);
	}
	buf_free(&in);
	buf_free(&out);
}

static void
test_mode_and_new(void **state)
{
	enum awschunk_mode m;
	uint8_t key[SIGV4_KEY_LEN] = {0};

	(void)state;
	assert_int_equal(awschunk_mode_parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", 34, &m), 0);
	assert_int_equal(m, AWSCHUNK_SIGNED);
	assert_int_equal(awschunk_mode_parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", 42, &m),
	    0);
	assert_int_equal(m, AWSCHUNK_SIGNED_TRAILER);
	assert_int_equal(awschunk_mode_parse("STREAMING-UNSIGNED-PAYLOAD-TRAILER", 34, &m), 0);
	assert_int_equal(m, AWSCHUNK_UNSIGNED_TRAILER);
	assert_int_equal(awschunk_mode_parse("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", 40, &m),
	    -1);
	assert_int_equal(awschunk_mode_parse("UNSIGNED-PAYLOAD", 16, &m), -1);
	assert_int_equal(awschunk_mode_parse(EMPTY_HASH, 64, &m), -1);
	assert_int_equal(awschunk_mode_parse("STREAMING-AWS4-HMAC-SHA256-PAYLOA", 33, &m), -1);
	/* Signed modes need keys, 64-hex seeds, a date and a scope. */
	assert_null(awschunk_new(AWSCHUNK_SIGNED, NULL, key, Z64, Z64, DATE, SCOPE));
	assert_null(awschunk_new(AWSCHUNK_SIGNED, key, key, "abc", Z64, DATE, SCOPE));
	assert_null(awschunk_new(AWSCHUNK_SIGNED, key, key, Z64, Z64 "0", DATE, SCOPE));
	assert_null(awschunk_new(AWSCHUNK_SIGNED, key, key, Z64, Z64, "2013", SCOPE));
	assert_null(awschunk_new(AWSCHUNK_SIGNED_TRAILER, key, key, Z64, Z64, DATE, NULL));
	assert_null(awschunk_new((enum awschunk_mode)7, key, key, Z64, Z64, DATE, SCOPE));
	awschunk_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_example_same_key_unchanged),
		cmocka_unit_test(test_doc_example_resigned_reverifies),
		cmocka_unit_test(test_doc_example_splits_identical),
		cmocka_unit_test(test_doc_trailer_example),
		cmocka_unit_test(test_tampering_fails),
		cmocka_unit_test(test_framing_errors),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_chunk_limit),
		cmocka_unit_test(test_signed_trailer_rules),
		cmocka_unit_test(test_unsigned_trailer_passes),
		cmocka_unit_test(test_mode_and_new),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
