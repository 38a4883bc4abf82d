/*
 * fuzz_awschunk.c — the aws-chunked re-signer on arbitrary and on well-signed streams.
 *
 * Byte 0: bits 0-1 pick the path, the other bits seed the split PRNG.
 *   0-2  the rest is a raw body for mode 0 (signed), 1 (signed, trailer) or 2 (unsigned,
 *        trailer), re-signed from fixed keys and seeds. Invariants: fed whole and fed in
 *        PRNG-sized pieces, the result code, the output and the decoded length are the
 *        same; on success the output is as long as the input and differs from it only
 *        inside signature values.
 *   3    byte 1 picks the mode and which trailers; the rest describes chunks (two bytes
 *        of size, mod 3000, then that many data bytes), which a reference signer written
 *        here from the documented rules (libsodium HMAC over sigv4's signing key) frames
 *        and signs. Invariants: the stream always passes, whole and split alike; the
 *        output is as long as the input, re-verifies with the out key and seed, and
 *        re-signed back with the in key gives the input again; the decoded length is
 *        the sum of the chunk sizes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "awschunk.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DATE	"20130524T000000Z"
#define SCOPE	"20130524/us-east-1/s3/aws4_request"
#define SEED_IN	"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SEED_OUT "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
#define EMPTY	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_CHUNKS 24

static uint8_t kin[SIGV4_KEY_LEN], kout[SIGV4_KEY_LEN];

static void
keys_init(void)
{
	static bool done;

	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 40, "20130524",
	    "us-east-1", "s3", kin);
	sigv4_signing_key("fuzz-real-secret", 16, "20130524", "us-east-1", "s3", kout);
	done = true;
}

struct out {
	uint8_t *p;
	size_t len, cap;
};

static void
out_add(struct out *o, const void *data, size_t len)
{
	if (o->len + len > o->cap) {
		o->cap = (o->len + len) * 2 + 64;
		if ((o->p = realloc(o->p, o->cap)) == NULL)
			abort();
	}
	if (len > 0)
		memcpy(o->p + o->len, data, len);
	o->len += len;
}

static void
out_cb(void *arg, const void *data, size_t len)
{
	out_add(arg, data, len);
}

struct result {
	int rc;
	uint64_t decoded;
};

/* Feed in (whole when seed is 0, else PRNG-sized pieces) and finish. */
static struct result
run(enum awschunk_mode mode, const uint8_t *ki, const uint8_t *ko, const char *si,
    const char *so, const uint8_t *in, size_t len, uint32_t seed, struct out *o)
{
	awschunk_t *a = awschunk_new(mode, ki, ko, si, so, DATE, SCOPE);
	struct result r = {AWSCHUNK_OK, 0};
	size_t off = 0;

	if (a == NULL)
		abort();
	while (off < len && r.rc == AWSCHUNK_OK) {
		size_t n = len - off;

		if (seed != 0) {
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			n = 1 + seed % (seed & 1 ? 7 : 300);
			n = n > len - off ? len - off : n;
		}
		r.rc = awschunk_feed(a, in + off, n, out_cb, o);
		off += n;
	}
	if (r.rc == AWSCHUNK_OK)
		r.rc = awschunk_finish(a);
	if (awschunk_error(a) == NULL && r.rc != AWSCHUNK_OK)
		abort();
	r.decoded = awschunk_decoded_length(a);
	awschunk_free(a);
	return r;
}

/* Output and input differ only inside 64-character signature values. */
static void
check_only_signatures(const uint8_t *in, const uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t j = i;

		if (in[i] == out[i])
			continue;
		while (j > 0 && in[j - 1] != '=' && in[j - 1] != ':')
			j--;
		if (i - j >= SIGV4_SIG_HEX || j < 10 ||
		    (memcmp(in + j - 10, "signature", 9) != 0))
			abort();
	}
}

static void
fuzz_raw(enum awschunk_mode mode, const uint8_t *in, size_t len, uint32_t seed)
{
	struct out whole = {0}, part = {0};
	struct result rw = run(mode, kin, kout, SEED_IN, SEED_OUT, in, len, 0, &whole);
	struct result rp = run(mode, kin, kout, SEED_IN, SEED_OUT, in, len, seed | 1, &part);

	if (rw.rc != rp.rc || rw.decoded != rp.decoded || whole.len != part.len ||
	    (whole.len > 0 && memcmp(whole.p, part.p, whole.len) != 0))
		abort();
	if (rw.rc == AWSCHUNK_OK) {
		if (whole.len != len)
			abort();
		check_only_signatures(in, whole.p, len);
	}
	free(whole.p);
	free(part.p);
}

/* --- the reference signer ----------------------------------------------------------------- */

struct signer {
	enum awschunk_mode mode;
	char prev[SIGV4_SIG_HEX + 1];
	struct out o;
	uint64_t decoded;
};

static void
ref_mac(struct signer *s, const char *sts)
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256(mac, (const uint8_t *)sts, strlen(sts), kin);
	util_hex_encode(mac, sizeof(mac), s->prev);
}

static void
ref_chunk(struct signer *s, const uint8_t *d, size_t n)
{
	char sts[512], hx[SIGV4_SIG_HEX + 1], head[128];
	uint8_t h[crypto_hash_sha256_BYTES];

	if (s->mode != AWSCHUNK_UNSIGNED_TRAILER) {
		crypto_hash_sha256(h, d, n);
		util_hex_encode(h, sizeof(h), hx);
		snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-PAYLOAD\n" DATE "\n" SCOPE "\n%s\n"
		    EMPTY "\n%s", s->prev, hx);
		ref_mac(s, sts);
		snprintf(head, sizeof(head), "%zx;chunk-signature=%s\r\n", n, s->prev);
	} else
		snprintf(head, sizeof(head), "%zX\r\n", n);
	out_add(&s->o, head, strlen(head));
	out_add(&s->o, d, n);
	if (n > 0)
		out_add(&s->o, "\r\n", 2);
	s->decoded += n;
}

/* Trailers picked by bits (names sorted), values from the data; then the signature. */
static void
ref_trailers(struct signer *s, unsigned bits, const uint8_t *d, size_t n)
{
	static const char *const names[] = {"x-amz-checksum-crc32", "x-amz-checksum-sha256",
		"x-amz-meta-fuzz"};
	crypto_hash_sha256_state hs;
	uint8_t h[crypto_hash_sha256_BYTES];
	char line[128], sts[512], hx[SIGV4_SIG_HEX + 1];

	crypto_hash_sha256_init(&hs);
	for (unsigned i = 0; i < 3; i++) {
		if (!(bits & (1u << i)))
			continue;
		util_hex_encode(d, n < 8 ? n : 8, hx);
		snprintf(line, sizeof(line), "%s:%s\r\n", names[i], hx);
		out_add(&s->o, line, strlen(line));
		crypto_hash_sha256_update(&hs, (const uint8_t *)line, strlen(line) - 2);
		crypto_hash_sha256_update(&hs, (const uint8_t *)"\n", 1);
	}
	crypto_hash_sha256_final(&hs, h);
	if (s->mode == AWSCHUNK_SIGNED_TRAILER) {
		util_hex_encode(h, sizeof(h), hx);
		snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-TRAILER\n" DATE "\n" SCOPE "\n%s\n%s",
		    s->prev, hx);
		ref_mac(s, sts);
		snprintf(line, sizeof(line), "x-amz-trailer-signature:%s\r\n", s->prev);
		out_add(&s->o, line, strlen(line));
	}
}

static void
ref_stream(struct signer *s, unsigned opts, const uint8_t *d, size_t n)
{
	size_t off = 0;

	memcpy(s->prev, SEED_IN, sizeof(s->prev));
	for (int c = 0; c < MAX_CHUNKS && off + 2 <= n; c++) {
		size_t size = (size_t)(d[off] | d[off + 1] << 8) % 3000;

		off += 2;
		size = size > n - off ? n - off : size;
		if (size == 0)
			size = 1;
		if (off + size > n)
			break;
		ref_chunk(s, d + off, size);
		off += size;
	}
	ref_chunk(s, (const uint8_t *)"", 0);
	if (s->mode != AWSCHUNK_SIGNED)
		ref_trailers(s, opts >> 2, d, n);
	out_add(&s->o, "\r\n", 2);
}

static void
fuzz_reference(const uint8_t *d, size_t n, uint32_t seed)
{
	struct signer s = {0};
	struct out o1 = {0}, o2 = {0}, back = {0}, again = {0};
	struct result r;
	unsigned opts = n > 0 ? d[0] : 0;

	s.mode = (enum awschunk_mode)((opts & 3) % 3);
	ref_stream(&s, opts, n > 0 ? d + 1 : d, n > 0 ? n - 1 : 0);
	r = run(s.mode, kin, kout, SEED_IN, SEED_OUT, s.o.p, s.o.len, 0, &o1);
	if (r.rc != AWSCHUNK_OK || r.decoded != s.decoded || o1.len != s.o.len)
		abort();
	r = run(s.mode, kin, kout, SEED_IN, SEED_OUT, s.o.p, s.o.len, seed | 1, &o2);
	if (r.rc != AWSCHUNK_OK || o2.len != o1.len || memcmp(o1.p, o2.p, o1.len) != 0)
		abort();
	check_only_signatures(s.o.p, o1.p, o1.len);
	/* The output verifies with the out key and seed; re-signed back it is the input. */
	r = run(s.mode, kout, kin, SEED_OUT, SEED_IN, o1.p, o1.len, seed ^ 0x5bd1e995u, &back);
	if (r.rc != AWSCHUNK_OK || back.len != s.o.len || memcmp(back.p, s.o.p, back.len) != 0)
		abort();
	/* ...and does not with the in key (unless nothing is signed). */
	r = run(s.mode, kin, kout, SEED_IN, SEED_OUT, o1.p, o1.len, 0, &again);
	if ((r.rc == AWSCHUNK_OK) != (s.mode == AWSCHUNK_UNSIGNED_TRAILER))
		abort();
	free(s.o.p);
	free(o1.p);
	free(o2.p);
	free(back.p);
	free(again.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed;

	if (size < 1)
		return 0;
	keys_init();
	seed = 0x9e3779b9u ^ (uint32_t)data[0] << 8;
	if ((data[0] & 3) == 3)
		fuzz_reference(data + 1, size - 1, seed);
	else
		fuzz_raw((enum awschunk_mode)(data[0] & 3), data + 1, size - 1, seed);
	return 0;
}
