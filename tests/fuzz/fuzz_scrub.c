/*
 * fuzz_scrub.c — libFuzzer harness for the decoding scrubber: a response body through
 * decode.h (its Content-Encoding) and then scrub.h, as the connection code runs it.
 *
 * Input: byte 0 picks the scrub mode (bit 0: SCRUB_FORMS), the number of secrets
 * (bits 1-2: 1..3) and the coding the harness compresses the message with before the
 * pipeline sees it (bits 3-5: none, gzip, deflate, zstd, "gzip, zstd"); then each secret
 * as a length byte (4..19) and its bytes; the rest is the message. Replacements are
 * made of '@' only (secrets never hold one), so they can neither form nor hide a secret.
 *
 * Invariants: the pipeline decodes the compressed message back exactly; the whole body
 * and the same body in PRNG-sized pieces give the same output and the same replacement
 * count; the output never holds a secret's raw bytes; in SCRUB_FORMS, unless a base64
 * run was re-encoded (its new characters are the input's to choose), the output
 * unescaped holds no secret either. (Hex is not checked: a hex replacement's own digits
 * may complete a hex needle with the text after it.)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "decode.h"
#include "scrub.h"
#include "unescape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	unsigned char *p;
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

struct secret {
	unsigned char b[20];
	size_t n;
};

/* --- the message compressed as an upstream would ------------------------------------ */

static const char *const codings[] = {NULL, "gzip", "deflate", "zstd", "gzip, zstd"};

static void
zlib_encode(const struct out *in, struct out *o, int wbits)
{
	z_stream z;
	unsigned char buf[4096];
	int rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 1, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	z.next_in = in->p;
	z.avail_in = (uInt)in->len;
	do {
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		rc = deflate(&z, Z_FINISH);
		out_add(o, buf, sizeof(buf) - z.avail_out);
	} while (rc == Z_OK);
	if (rc != Z_STREAM_END)
		abort();
	deflateEnd(&z);
}

static void
zstd_encode(const struct out *in, struct out *o)
{
	size_t cap = ZSTD_compressBound(in->len), n;

	o->len = 0;
	out_add(o, "", 0);
	if (o->cap < cap && (o->p = realloc(o->p, o->cap = cap)) == NULL)
		abort();
	n = ZSTD_compress(o->p, cap, in->p, in->len, 1);
	if (ZSTD_isError(n))
		abort();
	o->len = n;
}

/* body = msg in coding c (stacked codings applied in their order). */
static void
encode(unsigned c, const uint8_t *msg, size_t len, struct out *body)
{
	struct out tmp = {0};

	out_add(body, msg, len);
	if (c == 1 || c == 4) {
		out_add(&tmp, body->p, body->len);
		body->len = 0;
		zlib_encode(&tmp, body, 16 + MAX_WBITS);
	} else if (c == 2) {
		out_add(&tmp, body->p, body->len);
		body->len = 0;
		zlib_encode(&tmp, body, MAX_WBITS);
	}
	if (c == 3 || c == 4) {
		tmp.len = 0;
		out_add(&tmp, body->p, body->len);
		zstd_encode(&tmp, body);
	}
	free(tmp.p);
}

/* --- the pipeline ------------------------------------------------------------------ */

struct pipe {
	decode_t *dec;			/* NULL: identity */
	scrub_t *scrub;
	struct out *o, plain;		/* plain: the decoded body, before scrubbing */
};

static void
pipe_decoded(void *arg, const void *data, size_t len)
{
	struct pipe *p = arg;

	out_add(&p->plain, data, len);
	if (scrub_feed(p->scrub, data, len, out_cb, p->o) < 0)
		abort();
}

static void
pipe_init(struct pipe *p, unsigned c, enum scrub_mode mode, const struct secret *sec,
    size_t nsec, struct out *o)
{
	static const char at[] = "@@@@@@@@";
	char why[DECODE_WHY_MAX];

	memset(p, 0, sizeof(*p));
	p->o = o;
	if ((p->scrub = scrub_new(mode)) == NULL)
		abort();
	for (size_t i = 0; i < nsec; i++)
		if (scrub_add(p->scrub, sec[i].b, sec[i].n, at, i + 3) < 0)
			abort();
	if (codings[c] != NULL && (decode_new(codings[c], strlen(codings[c]), NULL, &p->dec,
	    why, sizeof(why)) != DECODE_OK || p->dec == NULL))
		abort();
}

/* The body in pieces whose lengths come from seed (0: whole). Returns replacements. */
static size_t
pipe_run(struct pipe *p, const struct out *body, uint64_t seed)
{
	size_t at = 0;

	while (at < body->len) {
		size_t n = body->len - at;

		if (seed != 0) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			n = (size_t)(seed >> 33) % 67;	/* 0..66: empty feeds too */
			if (n > body->len - at)
				n = body->len - at;
		}
		if (p->dec == NULL)
			pipe_decoded(p, body->p + at, n);
		else if (decode_feed(p->dec, body->p + at, n, pipe_decoded, p) != DECODE_OK)
			abort();
		at += n;
	}
	if (p->dec != NULL && decode_finish(p->dec, pipe_decoded, p) != DECODE_OK)
		abort();
	if (scrub_finish(p->scrub, out_cb, p->o) < 0)
		abort();
	return scrub_replacements(p->scrub);
}

static void
pipe_free(struct pipe *p)
{
	decode_free(p->dec);
	scrub_free(p->scrub);
	free(p->plain.p);
}

/* Does the output, escapes decoded, hold s? */
static bool
holds_unescaped(const struct out *o, const struct secret *s)
{
	unsigned char *dec = malloc(o->len + 1);
	unescape_t u;
	unescape_out_t y;
	size_t n = 0;
	bool found;

	if (dec == NULL)
		abort();
	unescape_init(&u);
	for (size_t i = 0; i <= o->len; i++) {
		y.n = 0;
		if (i < o->len)
			unescape_byte(&u, o->p[i], i, &y);
		else
			unescape_flush(&u, &y);
		for (size_t j = 0; j < y.n && n < o->len; j++)
			dec[n++] = y.v[j].c;
	}
	found = n > 0 && memmem(dec, n, s->b, s->n) != NULL;
	free(dec);
	return found;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct secret sec[3];
	struct out whole = {0}, split = {0}, body = {0};
	struct pipe a, b;
	enum scrub_mode mode;
	unsigned coding;
	size_t nsec, at = 1, r1, r2;
	uint64_t seed = size | 1;

	if (size < 1)
		return 0;
	mode = (data[0] & 1) ? SCRUB_FORMS : SCRUB_LITERAL;
	nsec = 1 + (data[0] >> 1) % 3;
	coding = ((unsigned)data[0] >> 3) % SG_ARRAY_LEN(codings);
	for (size_t i = 0; i < nsec; i++) {
		if (at >= size)
			return 0;
		sec[i].n = 4 + data[at++] % 16;
		if (size - at < sec[i].n)
			return 0;
		for (size_t j = 0; j < sec[i].n; j++)
			sec[i].b[j] = data[at + j] == '@' ? 'A' : data[at + j];
		at += sec[i].n;
	}
	for (size_t i = at; i < size && i < at + 8; i++)
		seed = seed << 8 | data[i];
	encode(coding, data + at, size - at, &body);
	pipe_init(&a, coding, mode, sec, nsec, &whole);
	pipe_init(&b, coding, mode, sec, nsec, &split);
	r1 = pipe_run(&a, &body, 0);
	r2 = pipe_run(&b, &body, seed);
	if (a.plain.len != size - at || (a.plain.len > 0 && memcmp(a.plain.p, data + at,
	    a.plain.len) != 0))
		abort();	/* the decoder gives back what was encoded */
	if (r1 != r2 || whole.len != split.len ||
	    (whole.len > 0 && memcmp(whole.p, split.p, whole.len) != 0))
		abort();
	for (size_t i = 0; i < nsec; i++) {
		if (whole.len > 0 && memmem(whole.p, whole.len, sec[i].b, sec[i].n) != NULL)
			abort();
		if (mode == SCRUB_FORMS && scrub_rewrites(a.scrub) == 0 &&
		    holds_unescaped(&whole, &sec[i]))
			abort();
	}
	pipe_free(&a);
	pipe_free(&b);
	free(whole.p);
	free(split.p);
	free(body.p);
	return 0;
}
