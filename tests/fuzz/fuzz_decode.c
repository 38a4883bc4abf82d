/*
 * fuzz_decode.c — libFuzzer harness for decode_* (Content-Encoding decoding).
 * Input: the first byte picks a Content-Encoding value from codings[] (single and
 * stacked); the rest is the body. The body is decoded fed whole and fed in pieces
 * (lengths from a PRNG seeded by the input), with a 1 MiB output cap and no ratio.
 * Invariants:
 *   - neither output exceeds the cap, and one is a prefix of the other;
 *   - if either run succeeds, both do, with the same output;
 *   - otherwise both fail with CORRUPT or LIMIT, not necessarily the same: a run
 *     reports the first fault it meets, and the whole run meets them in a different
 *     order (brotli holds decoded bytes back until its input runs out; a library call
 *     that fails hands on nothing it wrote, so a gzip CRC error found in the same call
 *     as the data before it hides that data from the next stage);
 *   - one exception, libzstd's own: a frame whose declared content size disagrees
 *     with its blocks is refused by its one-pass path (taken when a whole small frame
 *     is in one call) but passes its streaming path when the frame ends with an empty
 *     block; with zstd in the list, OK against CORRUPT is allowed (outputs still
 *     prefix-related);
 *   - a third decoder with a 50:1 ratio limit, fed the same pieces, stays within
 *     max(slack, 50 x input), and its output is a prefix of the unlimited one (its
 *     rc is the unlimited one's, or LIMIT; OK only with the same output);
 *   - the body as a header value: decode_new fails only with UNSUPPORTED, and
 *     decode_accept_encoding is idempotent (what it keeps, it keeps again).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "defaults.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/fuzz/make-decode-seeds.py writes seeds with the same table. */
static const char *const codings[] = {
	"gzip", "deflate", "br", "zstd", "x-gzip",
	"gzip, br", "deflate, zstd", "br, gzip", "zstd, deflate, gzip", "identity, gzip, gzip",
};

#define CAP		(1024 * 1024)
#define RATIO		50
#define SLACK		4096

struct out {
	unsigned char *p;
	size_t len;
};

static void
out_cb(void *arg, const void *data, size_t len)
{
	struct out *o = arg;

	if (len == 0 || len > SG_DECODE_CHUNK || o->len + len > CAP)
		abort();
	memcpy(o->p + o->len, data, len);
	o->len += len;
}

/* Decode body with coding ce; split: feed in PRNG-sized pieces, else whole. */
static int
run(const char *ce, const decode_limits_t *lim, const uint8_t *body, size_t len,
    uint64_t seed, int split, struct out *o)
{
	decode_t *d = NULL;
	size_t at = 0;
	int rc = DECODE_OK;

	if (decode_new(ce, strlen(ce), lim, &d, NULL, 0) != DECODE_OK || d == NULL)
		abort();
	while (at < len && rc == DECODE_OK) {
		size_t n = len - at;

		if (split) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			n = (size_t)(seed >> 33) % 97;		/* 0..96: empty feeds too */
			if (n > len - at)
				n = len - at;
		}
		rc = decode_feed(d, body + at, n, out_cb, o);
		at += n;
	}
	if (rc == DECODE_OK)
		rc = decode_finish(d, out_cb, o);
	if (rc != decode_finish(d, out_cb, o) || decode_bytes_out(d) != o->len)
		abort();
	if ((rc == DECODE_OK) != (decode_error(d)[0] == '\0'))
		abort();
	decode_free(d);
	return rc;
}

static int
is_prefix(const struct out *a, const struct out *b)
{
	const struct out *s = a->len <= b->len ? a : b, *l = a->len <= b->len ? b : a;

	return s->len == 0 || memcmp(s->p, l->p, s->len) == 0;
}

static void
check_pair(const char *ce, int rw, const struct out *ow, int rp, const struct out *op)
{
	int zstd_quirk = strstr(ce, "zstd") != NULL &&
	    ((rw == DECODE_OK && rp == DECODE_CORRUPT) || (rp == DECODE_OK && rw == DECODE_CORRUPT));

	if (!is_prefix(ow, op))
		abort();
	if ((rw == DECODE_OK || rp == DECODE_OK) && !zstd_quirk &&
	    (rw != rp || ow->len != op->len))
		abort();
	if (rw != DECODE_OK && rw != DECODE_CORRUPT && rw != DECODE_LIMIT)
		abort();
	if (rp != DECODE_OK && rp != DECODE_CORRUPT && rp != DECODE_LIMIT)
		abort();
}

/* The body as a Content-Encoding or Accept-Encoding value. */
static void
check_header(const uint8_t *data, size_t size)
{
	char a[512], b[512], why[DECODE_WHY_MAX];
	decode_t *d = NULL;
	ssize_t na, nb;
	int rc;

	rc = decode_new((const char *)data, size, NULL, &d, why, sizeof(why));
	if ((rc != DECODE_OK && rc != DECODE_UNSUPPORTED) || memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	decode_free(d);
	na = decode_accept_encoding((const char *)data, size, a, sizeof(a));
	if (na < 0)
		return;
	if (strlen(a) != (size_t)na)
		abort();
	nb = decode_accept_encoding(a, (size_t)na, b, sizeof(b));
	if (nb != na || memcmp(a, b, (size_t)na) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode_limits_t lim = {.max_output = CAP, .max_ratio = 0, .ratio_slack = 0};
	decode_limits_t rlim = {.max_output = CAP, .max_ratio = RATIO, .ratio_slack = SLACK};
	static unsigned char bw[CAP], bp[CAP], br[CAP];
	struct out ow = {bw, 0}, op = {bp, 0}, orl = {br, 0};
	uint64_t seed = size;
	const char *ce;
	int rw, rp, rr;

	if (size == 0)
		return 0;
	check_header(data, size);
	ce = codings[data[0] % SG_ARRAY_LEN(codings)];
	for (size_t i = 1; i < size && i < 9; i++)
		seed = seed << 8 | data[i];
	rw = run(ce, &lim, data + 1, size - 1, seed, 0, &ow);
	rp = run(ce, &lim, data + 1, size - 1, seed, 1, &op);
	check_pair(ce, rw, &ow, rp, &op);
	rr = run(ce, &rlim, data + 1, size - 1, seed, 1, &orl);
	if (!is_prefix(&orl, &op) || (rr != rp && rr != DECODE_LIMIT))
		abort();
	if (rr == DECODE_OK && orl.len != op.len)
		abort();
	if (orl.len > SLACK && orl.len > (uint64_t)RATIO * (size - 1))
		abort();
	return 0;
}
