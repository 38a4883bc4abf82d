/* test_decode.c — Content-Encoding decoding: every coding made by its real encoder,
 * stacks, splits, corruption, truncation, limits, bombs, Accept-Encoding narrowing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "decode.h"
#include "defaults.h"

#define MIB	(1024 * 1024)

/* --- inputs ----------------------------------------------------------------------- */

struct buf {
	unsigned char *p;
	size_t len;
};

/* Fixed-seed xorshift64*: the same inputs on every run. */
static uint64_t rng_state = 0xdec0de5ea19a7eULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static struct buf
random_bytes(size_t len)
{
	struct buf b = {malloc(len), len};

	assert_non_null(b.p);
	for (size_t i = 0; i < len; i++)
		b.p[i] = (unsigned char)rng();
	return b;
}

/* JSON-ish text: records with repeating keys and varying values. */
static struct buf
json_text(size_t len)
{
	struct buf b = {malloc(len + 200), 0};
	static const char *const words[] = {"alpha", "beta", "gamma", "token", "secret",
	    "value", "items", "status", "ok", "error"};

	assert_non_null(b.p);
	while (b.len < len) {
		b.len += (size_t)snprintf((char *)b.p + b.len, 200,
		    "{\"id\":%u,\"name\":\"%s-%s\",\"count\":%u,\"tags\":[\"%s\"]},\n",
		    (unsigned)(rng() % 100000), words[rng() % 10], words[rng() % 10],
		    (unsigned)(rng() % 1000), words[rng() % 10]);
	}
	b.len = len;
	return b;
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

static void
buf_cat(struct buf *b, const void *p, size_t len)
{
	b->p = realloc(b->p, b->len + len + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

/* zlib's deflate: wbits 16+15 gzip, 15 zlib-wrapped, -15 raw. */
static struct buf
enc_zlib(const void *in, size_t len, int wbits, int level)
{
	z_stream z = {0};
	struct buf b = {0};

	assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY),
	    Z_OK);
	b.len = deflateBound(&z, len) + 64;
	b.p = malloc(b.len);
	assert_non_null(b.p);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = b.p;
	z.avail_out = (uInt)b.len;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	b.len = z.total_out;
	deflateEnd(&z);
	return b;
}

static struct buf
enc_br(const void *in, size_t len)
{
	struct buf b = {0};

	b.len = BrotliEncoderMaxCompressedSize(len) + 64;
	b.p = malloc(b.len);
	assert_non_null(b.p);
	assert_true(BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, len, in, &b.len, b.p));
	return b;
}

static struct buf
enc_zstd(const void *in, size_t len)
{
	struct buf b = {0};

	b.len = ZSTD_compressBound(len);
	b.p = malloc(b.len);
	assert_non_null(b.p);
	b.len = ZSTD_compress(b.p, b.len, in, len, 3);
	assert_false(ZSTD_isError(b.len));
	return b;
}

/* Encode with one coding name as it appears in Content-Encoding. */
static struct buf
enc(const char *coding, const void *in, size_t len)
{
	if (strcmp(coding, "gzip") == 0 || strcmp(coding, "x-gzip") == 0)
		return enc_zlib(in, len, 16 + MAX_WBITS, 6);
	if (strcmp(coding, "deflate") == 0)
		return enc_zlib(in, len, MAX_WBITS, 6);
	if (strcmp(coding, "deflate-raw") == 0)
		return enc_zlib(in, len, -MAX_WBITS, 6);
	if (strcmp(coding, "br") == 0)
		return enc_br(in, len);
	assert_string_equal(coding, "zstd");
	return enc_zstd(in, len);
}

/* --- output ----------------------------------------------------------------------- */

struct sink {
	unsigned char *p;
	size_t len, cap;
	size_t calls, biggest;
	decode_t *d;			/* set: record the decoder's peak memory */
	size_t peak_mem;
};

static void
sink_cb(void *arg, const void *data, size_t len)
{
	struct sink *k = arg;

	assert_true(len > 0);
	if (k->len + len > k->cap) {
		k->cap = (k->len + len) * 2 + 64;
		k->p = realloc(k->p, k->cap);
		assert_non_null(k->p);
	}
	memcpy(k->p + k->len, data, len);
	k->len += len;
	k->calls++;
	if (len > k->biggest)
		k->biggest = len;
	if (k->d != NULL && decode_memory(k->d) > k->peak_mem)
		k->peak_mem = decode_memory(k->d);
}

/* Counts only: for outputs too large to keep. */
static void
count_cb(void *arg, const void *data, size_t len)
{
	struct sink *k = arg;

	(void)data;
	k->len += len;
	k->calls++;
	if (len > k->biggest)
		k->biggest = len;
	if (k->d != NULL && decode_memory(k->d) > k->peak_mem)
		k->peak_mem = decode_memory(k->d);
}

static void
sink_clear(struct sink *k)
{
	free(k->p);
	memset(k, 0, sizeof(*k));
}

static decode_t *
make(const char *ce, const decode_limits_t *lim)
{
	decode_t *d = NULL;
	char why[DECODE_WHY_MAX];

	assert_int_equal(decode_new(ce, strlen(ce), lim, &d, why, sizeof(why)), DECODE_OK);
	assert_non_null(d);
	return d;
}

/* Feed in pieces of step bytes (0: whole), then finish; returns the first error rc. */
static int
run(decode_t *d, const struct buf *in, size_t step, decode_emit_fn cb, struct sink *k)
{
	size_t at = 0;
	int rc;

	if (step == 0)
		step = in->len;
	while (at < in->len) {
		size_t n = in->len - at < step ? in->len - at : step;

		if ((rc = decode_feed(d, in->p + at, n, cb, k)) != DECODE_OK)
			return rc;
		at += n;
	}
	return decode_finish(d, cb, k);
}

/* Decode in with Content-Encoding ce in pieces of step; expect exactly want. */
static void
expect_decodes(const char *ce, const struct buf *in, size_t step, const struct buf *want)
{
	decode_t *d = make(ce, NULL);
	struct sink k = {0};

	assert_int_equal(run(d, in, step, sink_cb, &k), DECODE_OK);
	assert_int_equal(k.len, want->len);
	if (want->len > 0)
		assert_memory_equal(k.p, want->p, want->len);
	assert_true(k.biggest <= SG_DECODE_CHUNK);
	assert_int_equal(decode_bytes_in(d), in->len);
	assert_int_equal(decode_bytes_out(d), want->len);
	assert_string_equal(decode_error(d), "");
	decode_free(d);
	sink_clear(&k);
}

/* --- codings ---------------------------------------------------------------------- */

static void
test_roundtrip_each(void **state)
{
	static const char *const codings[] = {"gzip", "x-gzip", "deflate", "br", "zstd"};
	struct buf data[2];

	(void)state;
	data[0] = random_bytes(100000);
	data[1] = json_text(300000);
	for (size_t c = 0; c < SG_ARRAY_LEN(codings); c++) {
		for (size_t k = 0; k < 2; k++) {
			struct buf e = enc(codings[c], data[k].p, data[k].len);

			expect_decodes(codings[c], &e, 0, &data[k]);
			expect_decodes(codings[c], &e, 4096, &data[k]);
			buf_free(&e);
		}
	}
	buf_free(&data[0]);
	buf_free(&data[1]);
}

/* A complete stream is handed on during the feeds: decode_finish emits nothing new. */
static void
test_no_output_held_back(void **state)
{
	static const char *const codings[] = {"gzip", "deflate", "br", "zstd"};
	struct buf data = json_text(200000);

	(void)state;
	for (size_t c = 0; c < SG_ARRAY_LEN(codings); c++) {
		struct buf e = enc(codings[c], data.p, data.len);
		decode_t *d = make(codings[c], NULL);
		struct sink k = {0};

		assert_int_equal(decode_feed(d, e.p, e.len, sink_cb, &k), DECODE_OK);
		assert_int_equal(k.len, data.len);
		assert_int_equal(decode_finish(d, sink_cb, &k), DECODE_OK);
		assert_int_equal(k.len, data.len);
		decode_free(d);
		sink_clear(&k);
		buf_free(&e);
	}
	buf_free(&data);
}

static void
test_tokens_case_and_spacing(void **state)
{
	static const char *const gzip_values[] = {"GZIP", " gzip", "gzip\t", "X-Gzip",
	    "identity, gzip", "gzip , identity", ",gzip,", " , gZiP ,, ", "Identity,\tgzip"};
	struct buf data = json_text(5000);
	struct buf gz = enc("gzip", data.p, data.len), bgz = enc("br", gz.p, gz.len);

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(gzip_values); i++)
		expect_decodes(gzip_values[i], &gz, 0, &data);
	expect_decodes("gzip,br", &bgz, 0, &data);
	expect_decodes("gzip,,br", &bgz, 0, &data);
	expect_decodes(" GZIP \t,\t BR ", &bgz, 0, &data);
	assert_true(decode_coding_supported("BR", 2));
	assert_true(decode_coding_supported("x-GZIP", 6));
	assert_true(decode_coding_supported("Identity", 8));
	assert_true(decode_coding_supported("zstd", 4));
	assert_false(decode_coding_supported("zst", 3));
	assert_false(decode_coding_supported("compress", 8));
	assert_false(decode_coding_supported("gzip ", 5));
	assert_false(decode_coding_supported("", 0));
	buf_free(&bgz);
	buf_free(&gz);
	buf_free(&data);
}

static void
test_deflate_zlib_and_raw(void **state)
{
	struct buf data = json_text(70000);
	struct buf wrapped = enc("deflate", data.p, data.len);
	struct buf raw = enc("deflate-raw", data.p, data.len);
	struct buf small = enc_zlib(data.p, data.len, 9, 9);	/* CINFO 1: 512-byte window */

	(void)state;
	/* the zlib header is 0x78 0x9c here; raw deflate starts with a block header */
	assert_int_equal(wrapped.p[0], 0x78);
	assert_int_equal((wrapped.p[0] * 256 + wrapped.p[1]) % 31, 0);
	assert_false((raw.p[0] & 0x0f) == 8 && (raw.p[0] >> 4) <= 7 &&
	    (raw.p[0] * 256 + raw.p[1]) % 31 == 0);
	assert_int_equal(small.p[0], 0x18);
	for (size_t step = 0; step <= 3; step++) {	/* 1 and 2: header split over feeds */
		expect_decodes("deflate", &wrapped, step, &data);
		expect_decodes("deflate", &raw, step, &data);
		expect_decodes("deflate", &small, step, &data);
	}
	/* the zlib trailer is checked: a wrong Adler-32 is corrupt */
	wrapped.p[wrapped.len - 1] ^= 1;
	{
		decode_t *d = make("deflate", NULL);
		struct sink k = {0};

		assert_int_equal(run(d, &wrapped, 0, sink_cb, &k), DECODE_CORRUPT);
		assert_non_null(strstr(decode_error(d), "corrupt deflate stream"));
		decode_free(d);
		sink_clear(&k);
	}
	buf_free(&small);
	buf_free(&raw);
	buf_free(&wrapped);
	buf_free(&data);
}

static void
test_gzip_members(void **state)
{
	struct buf a = json_text(40000), b = random_bytes(30000), both = {0}, cat = {0};
	struct buf ga = enc("gzip", a.p, a.len), gb = enc("gzip", b.p, b.len);
	struct buf empty = enc("gzip", "", 0);

	(void)state;
	buf_cat(&both, a.p, a.len);
	buf_cat(&both, b.p, b.len);
	buf_cat(&cat, ga.p, ga.len);
	buf_cat(&cat, empty.p, empty.len);
	buf_cat(&cat, gb.p, gb.len);
	expect_decodes("gzip", &cat, 0, &both);
	expect_decodes("gzip", &cat, 1, &both);
	expect_decodes("gzip", &cat, ga.len, &both);	/* a feed ends at a member's end */
	expect_decodes("gzip", &cat, 777, &both);
	/* after a member, bytes that are not another member are corrupt */
	cat.len = 0;
	buf_cat(&cat, ga.p, ga.len);
	buf_cat(&cat, "\0\0\0\0", 4);
	{
		decode_t *d = make("gzip", NULL);
		struct sink k = {0};

		assert_int_equal(run(d, &cat, 0, sink_cb, &k), DECODE_CORRUPT);
		assert_int_equal(k.len, a.len);
		decode_free(d);
		sink_clear(&k);
	}
	buf_free(&empty);
	buf_free(&gb);
	buf_free(&ga);
	buf_free(&cat);
	buf_free(&both);
	buf_free(&b);
	buf_free(&a);
}

static void
test_zstd_frames(void **state)
{
	/* a skippable frame: magic 0x184D2A50, 4-byte length, that many bytes */
	static const unsigned char skip[] = {0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3};
	struct buf a = json_text(50000), b = random_bytes(20000), both = {0}, cat = {0};
	struct buf za = enc("zstd", a.p, a.len), zb = enc("zstd", b.p, b.len);

	(void)state;
	buf_cat(&both, a.p, a.len);
	buf_cat(&both, b.p, b.len);
	buf_cat(&cat, za.p, za.len);
	buf_cat(&cat, skip, sizeof(skip));
	buf_cat(&cat, zb.p, zb.len);
	expect_decodes("zstd", &cat, 0, &both);
	expect_decodes("zstd", &cat, 1, &both);
	expect_decodes("zstd", &cat, za.len, &both);
	expect_decodes("zstd", &cat, 1000, &both);
	buf_free(&zb);
	buf_free(&za);
	buf_free(&cat);
	buf_free(&both);
	buf_free(&b);
	buf_free(&a);
}

/* Pre-1.0 zstd formats (legacy magics 0xFD2FB522..27) are refused, wherever they
 * start: first, after a frame, after a skippable frame; whole or byte by byte. */
static void
test_zstd_legacy_refused(void **state)
{
	/* a v0.6 frame header that libzstd 1.5.4's legacy decoder fails on */
	static const unsigned char v06[] = {0x26, 0xb5, 0x2f, 0xfd, 0x60, 0x00, 0xb5, 0x01,
	    0x00, 0xcc, 0x00, 0x91, 0xde};
	static const unsigned char skip[] = {0x5f, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 9};
	struct buf data = json_text(3000), z = enc("zstd", data.p, data.len);
	struct buf bodies[3] = {{0}, {0}, {0}};
	const size_t want_out[3] = {0, 3000, 0};

	(void)state;
	buf_cat(&bodies[0], v06, sizeof(v06));
	buf_cat(&bodies[1], z.p, z.len);
	buf_cat(&bodies[1], v06, sizeof(v06));
	buf_cat(&bodies[2], skip, sizeof(skip));
	buf_cat(&bodies[2], v06, sizeof(v06));
	for (size_t b = 0; b < 3; b++) {
		for (size_t step = 0; step <= 1; step++) {
			decode_t *d = make("zstd", NULL);
			struct sink k = {0};

			assert_int_equal(run(d, &bodies[b], step, sink_cb, &k), DECODE_CORRUPT);
			assert_string_equal(decode_error(d), "not a zstd frame");
			assert_int_equal(k.len, want_out[b]);
			decode_free(d);
			sink_clear(&k);
		}
		buf_free(&bodies[b]);
	}
	buf_free(&z);
	buf_free(&data);
}

static void
test_stacked(void **state)
{
	struct buf data = json_text(150000);
	struct buf g = enc("gzip", data.p, data.len), gb = enc("br", g.p, g.len);
	struct buf df = enc("deflate", data.p, data.len), dz = enc("zstd", df.p, df.len);
	struct buf dzg = enc("gzip", dz.p, dz.len);
	struct buf four = enc("gzip", dzg.p, dzg.len);

	(void)state;
	expect_decodes("gzip, br", &gb, 0, &data);
	expect_decodes("gzip, br", &gb, 1, &data);
	expect_decodes("deflate, zstd, gzip", &dzg, 0, &data);
	expect_decodes("deflate, zstd, gzip", &dzg, 3, &data);
	expect_decodes("deflate, identity, zstd, gzip, gzip", &four, 500, &data);
	/* the order matters: undone in reverse */
	{
		decode_t *d = make("br, gzip", NULL);
		struct sink k = {0};

		assert_int_equal(run(d, &gb, 0, sink_cb, &k), DECODE_CORRUPT);
		assert_int_equal(k.len, 0);
		decode_free(d);
		sink_clear(&k);
	}
	buf_free(&four);
	buf_free(&dzg);
	buf_free(&dz);
	buf_free(&df);
	buf_free(&gb);
	buf_free(&g);
	buf_free(&data);
}

/* One byte per feed gives what one feed gives, for every coding and a stack. */
static void
test_byte_at_a_time(void **state)
{
	static const char *const codings[] = {"gzip", "deflate", "deflate-raw", "br", "zstd"};
	struct buf data = json_text(20000);

	(void)state;
	for (size_t c = 0; c < SG_ARRAY_LEN(codings); c++) {
		struct buf e = enc(codings[c], data.p, data.len);
		const char *ce = strcmp(codings[c], "deflate-raw") == 0 ? "deflate" : codings[c];

		expect_decodes(ce, &e, 1, &data);
		buf_free(&e);
	}
	{
		struct buf z = enc("zstd", data.p, data.len), zg = enc("gzip", z.p, z.len);
		struct buf zgb = enc("br", zg.p, zg.len);

		expect_decodes("zstd, gzip, br", &zgb, 1, &data);
		buf_free(&zgb);
		buf_free(&zg);
		buf_free(&z);
	}
	buf_free(&data);
}

/* --- nothing to decode, unsupported ----------------------------------------------- */

static void
test_identity_and_empty(void **state)
{
	static const char *const none[] = {"", " ", "identity", "IDENTITY", " identity , ",
	    ",", ",,", "identity,identity,identity,identity,identity,identity"};
	decode_t *d = (decode_t *)1;
	char why[DECODE_WHY_MAX];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(none); i++) {
		assert_int_equal(decode_new(none[i], strlen(none[i]), NULL, &d, why,
		    sizeof(why)), DECODE_OK);
		assert_null(d);
	}
	assert_int_equal(decode_new(NULL, 0, NULL, &d, NULL, 0), DECODE_OK);
	assert_null(d);
	/* len bounds the value: "gzip" past it is not read */
	assert_int_equal(decode_new("identitygzip", 8, NULL, &d, NULL, 0), DECODE_OK);
	assert_null(d);
}

static void
test_unsupported(void **state)
{
	static const struct {
		const char *value, *why;
	} cases[] = {
		{"compress", "unsupported content coding \"compress\""},
		{"x-compress", "unsupported content coding \"x-compress\""},
		{"sdch", "unsupported content coding \"sdch\""},
		{"dcb", "unsupported content coding \"dcb\""},
		{"dcz", "unsupported content coding \"dcz\""},
		{"gzip, foo", "unsupported content coding \"foo\""},
		{"gzip;q=1", "unsupported content coding (8 bytes)"},
		{"gzip br", "unsupported content coding (7 bytes)"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    "unsupported content coding (40 bytes)"},
		{"gzip, gzip, gzip, gzip, gzip", "more than 4 content codings"},
		{"br, br, identity, br, br, br", "more than 4 content codings"},
	};
	decode_t *d = (decode_t *)1;
	char why[DECODE_WHY_MAX], tiny[8];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		assert_int_equal(decode_new(cases[i].value, strlen(cases[i].value), NULL, &d,
		    why, sizeof(why)), DECODE_UNSUPPORTED);
		assert_null(d);
		assert_string_equal(why, cases[i].why);
	}
	/* four stages are fine, identity does not count */
	assert_int_equal(decode_new("gzip, br, zstd, identity, deflate", 33, NULL, &d, why,
	    sizeof(why)), DECODE_OK);
	assert_non_null(d);
	decode_free(d);
	/* a short message buffer is cut, not overrun; no buffer at all is fine */
	assert_int_equal(decode_new("compress", 8, NULL, &d, tiny, sizeof(tiny)),
	    DECODE_UNSUPPORTED);
	assert_string_equal(tiny, "unsuppo");
	assert_int_equal(decode_new("compress", 8, NULL, &d, NULL, 0), DECODE_UNSUPPORTED);
	decode_free(NULL);
}

/* --- broken input ----------------------------------------------------------------- */

/* Feed whole, then finish; the rc of whichever failed first. */
static int
decode_all(const char *ce, const struct buf *in, struct sink *k, char *err, size_t errlen)
{
	decode_t *d = make(ce, NULL);
	int rc = run(d, in, 0, sink_cb, k);

	snprintf(err, errlen, "%s", decode_error(d));
	decode_free(d);
	return rc;
}

static void
test_corrupt(void **state)
{
	static const char *const codings[] = {"gzip", "deflate", "br", "zstd"};
	struct buf data = json_text(30000), garbage = random_bytes(5000);
	char err[128];

	(void)state;
	for (size_t c = 0; c < SG_ARRAY_LEN(codings); c++) {
		struct buf e = enc(codings[c], data.p, data.len);
		struct sink k = {0};
		int rc;

		/* garbage is never a valid stream */
		assert_int_equal(decode_all(codings[c], &garbage, &k, err, sizeof(err)),
		    DECODE_CORRUPT);
		assert_true(err[0] != '\0');
		for (size_t at = 0; at < e.len; at += 1 + e.len / 40) {
			e.p[at] ^= 0x5a;
			k.len = 0;
			rc = decode_all(codings[c], &e, &k, err, sizeof(err));
			/* gzip and zlib carry checksums; br and this zstd frame do not,
			 * so a flip may decode to other bytes, never crash or overrun */
			if (c < 2)
				assert_int_equal(rc, DECODE_CORRUPT);
			else
				assert_true(rc == DECODE_CORRUPT || rc == DECODE_OK);
			assert_true(k.len <= SG_DECODE_MAX_BYTES);
			e.p[at] ^= 0x5a;
		}
		sink_clear(&k);
		buf_free(&e);
	}
	buf_free(&garbage);
	buf_free(&data);
}

static void
test_truncated(void **state)
{
	static const char *const codings[] = {"gzip", "deflate", "br", "zstd"};
	struct buf data = json_text(60000);

	(void)state;
	for (size_t c = 0; c < SG_ARRAY_LEN(codings); c++) {
		struct buf e = enc(codings[c], data.p, data.len);
		char want[64];

		snprintf(want, sizeof(want), "truncated %s stream", codings[c]);
		for (size_t cut = 1; cut < e.len; cut += 1 + e.len / 16) {
			struct buf part = {e.p, cut};
			decode_t *d = make(codings[c], NULL);
			struct sink k = {0};

			assert_int_equal(decode_feed(d, part.p, part.len, sink_cb, &k), DECODE_OK);
			assert_true(k.len <= data.len);	/* a cut trailer: all out */
			if (k.len > 0)
				assert_memory_equal(k.p, data.p, k.len);
			assert_int_equal(decode_finish(d, sink_cb, &k), DECODE_CORRUPT);
			assert_string_equal(decode_error(d), want);
			decode_free(d);
			sink_clear(&k);
		}
		buf_free(&e);
	}
	buf_free(&data);
}

/* Bytes after the end of a deflate or br stream are refused, not dropped silently. */
static void
test_trailing_data(void **state)
{
	static const char *const codings[] = {"deflate", "deflate-raw", "br"};
	struct buf data = json_text(20000);
	char err[128];

	(void)state;
	for (size_t c = 0; c < SG_ARRAY_LEN(codings); c++) {
		const char *ce = strcmp(codings[c], "deflate-raw") == 0 ? "deflate" : codings[c];
		struct buf e = enc(codings[c], data.p, data.len), twice = {0};
		struct sink k = {0};
		char want[64];

		buf_cat(&twice, e.p, e.len);
		buf_cat(&twice, e.p, e.len);
		assert_int_equal(decode_all(ce, &twice, &k, err, sizeof(err)), DECODE_CORRUPT);
		snprintf(want, sizeof(want), "data after end of %s stream",
		    strcmp(ce, "br") == 0 ? "br" : "deflate");
		assert_string_equal(err, want);
		assert_int_equal(k.len, data.len);	/* the first stream, whole */
		sink_clear(&k);
		buf_free(&twice);
		buf_free(&e);
	}
	buf_free(&data);
}

/* After an error the decoder stays failed; after finish it takes no more bytes. */
static void
test_sticky_error(void **state)
{
	struct buf data = json_text(10000), e = enc("gzip", data.p, data.len);
	decode_t *d = make("gzip", NULL);
	struct sink k = {0};
	char first[128];

	(void)state;
	assert_int_equal(decode_feed(d, "garbage!", 8, sink_cb, &k), DECODE_CORRUPT);
	snprintf(first, sizeof(first), "%s", decode_error(d));
	assert_int_equal(decode_feed(d, e.p, e.len, sink_cb, &k), DECODE_CORRUPT);
	assert_int_equal(decode_finish(d, sink_cb, &k), DECODE_CORRUPT);
	assert_string_equal(decode_error(d), first);
	assert_int_equal(k.len, 0);
	decode_free(d);

	d = make("gzip", NULL);
	assert_int_equal(run(d, &e, 0, sink_cb, &k), DECODE_OK);
	assert_int_equal(decode_feed(d, e.p, e.len, sink_cb, &k), DECODE_CORRUPT);
	assert_int_equal(k.len, data.len);
	decode_free(d);

	/* a body that never got a byte is an empty body */
	d = make("gzip, br", NULL);
	assert_int_equal(decode_feed(d, "", 0, sink_cb, &k), DECODE_OK);
	assert_int_equal(decode_finish(d, sink_cb, &k), DECODE_OK);
	assert_int_equal(decode_bytes_out(d), 0);
	decode_free(d);
	sink_clear(&k);
	buf_free(&e);
	buf_free(&data);
}

/* --- limits ----------------------------------------------------------------------- */

/* gzip of len zero bytes, made in 1 MiB steps (a bomb: ~1000:1). */
static struct buf
gzip_zeros(size_t len)
{
	static const unsigned char zero[MIB];
	z_stream z = {0};
	struct buf b = {malloc(len / 512 + 4096), 0};

	assert_non_null(b.p);
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	z.next_out = b.p;
	z.avail_out = (uInt)(len / 512 + 4096);
	for (size_t done = 0; done < len; done += MIB) {
		z.next_in = (Bytef *)(uintptr_t)zero;
		z.avail_in = MIB;
		assert_int_equal(deflate(&z, done + MIB >= len ? Z_FINISH : Z_NO_FLUSH),
		    done + MIB >= len ? Z_STREAM_END : Z_OK);
	}
	b.len = z.total_out;
	deflateEnd(&z);
	return b;
}

static void
test_ratio_bomb(void **state)
{
	struct buf bomb = gzip_zeros(64 * (size_t)MIB);
	decode_limits_t lim;
	size_t steps[] = {0, 4096, 100};

	(void)state;
	decode_limits_default(&lim);
	assert_true(bomb.len < 128 * 1024);
	for (size_t s = 0; s < SG_ARRAY_LEN(steps); s++) {
		decode_t *d = make("gzip", &lim);
		struct sink k = {0};

		assert_int_equal(run(d, &bomb, steps[s], count_cb, &k), DECODE_LIMIT);
		assert_string_equal(decode_error(d), "compression ratio above 200:1");
		/* stopped at the bound (slack, or 200 x what was consumed), not at 64 MiB */
		assert_true(k.len <= SG_DECODE_RATIO_SLACK + SG_DECODE_CHUNK);
		assert_true(k.len >= SG_DECODE_RATIO_SLACK);
		assert_int_equal(decode_bytes_out(d), k.len);
		assert_true(decode_bytes_in(d) <= bomb.len);
		decode_free(d);
	}
	/* the same body passes with the ratio check off, and stops at max_output */
	lim.max_ratio = 0;
	lim.max_output = 8 * MIB;
	{
		decode_t *d = make("gzip", &lim);
		struct sink k = {0};

		assert_int_equal(run(d, &bomb, 0, count_cb, &k), DECODE_LIMIT);
		assert_string_equal(decode_error(d), "decoded body larger than 8388608 bytes");
		assert_int_equal(k.len, 8 * MIB);
		decode_free(d);
	}
	buf_free(&bomb);
}

/* Text compresses far below 200:1: a large JSON-ish body passes the default limits. */
static void
test_ratio_allows_text(void **state)
{
	struct buf data = json_text(4 * MIB), e = enc("gzip", data.p, data.len);

	(void)state;
	expect_decodes("gzip", &e, 16384, &data);
	buf_free(&e);
	buf_free(&data);
}

static void
test_absolute_limit(void **state)
{
	static const char *const codings[] = {"gzip", "deflate", "br", "zstd"};
	struct buf data = json_text(300000);
	decode_limits_t lim = {.max_output = 100000, .max_ratio = 0, .ratio_slack = 0};

	(void)state;
	for (size_t c = 0; c < SG_ARRAY_LEN(codings); c++) {
		struct buf e = enc(codings[c], data.p, data.len);
		decode_t *d = make(codings[c], &lim);
		struct sink k = {0};

		assert_int_equal(run(d, &e, 1000, sink_cb, &k), DECODE_LIMIT);
		assert_string_equal(decode_error(d), "decoded body larger than 100000 bytes");
		assert_int_equal(k.len, 100000);	/* exactly the bound, a prefix */
		assert_memory_equal(k.p, data.p, k.len);
		decode_free(d);
		sink_clear(&k);
		buf_free(&e);
	}
	/* a body of exactly max_output bytes is fine */
	lim.max_output = data.len;
	{
		struct buf e = enc("br", data.p, data.len);
		decode_t *d = make("br", &lim);
		struct sink k = {0};

		assert_int_equal(run(d, &e, 0, sink_cb, &k), DECODE_OK);
		assert_int_equal(k.len, data.len);
		decode_free(d);
		sink_clear(&k);
		buf_free(&e);
	}
	buf_free(&data);
}

/* zstd of len bytes with the given window log (ZSTD_c_windowLog). */
static struct buf
zstd_window(const void *in, size_t len, int wlog)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	struct buf b = {malloc(ZSTD_compressBound(len)), 0};

	assert_non_null(c);
	assert_non_null(b.p);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog)));
	b.len = ZSTD_compress2(c, b.p, ZSTD_compressBound(len), in, len);
	assert_false(ZSTD_isError(b.len));
	ZSTD_freeCCtx(c);
	return b;
}

static void
test_zstd_window(void **state)
{
	size_t len = 16 * MIB;
	unsigned char *zeros = calloc(1, len);
	struct buf big, ok, data = json_text(len);

	(void)state;
	assert_non_null(zeros);
	big = zstd_window(zeros, len, 27);
	{
		decode_t *d = make("zstd", NULL);
		struct sink k = {.d = d};

		assert_int_equal(run(d, &big, 0, count_cb, &k), DECODE_LIMIT);
		assert_string_equal(decode_error(d), "zstd window larger than 8388608 bytes");
		assert_int_equal(k.len, 0);
		assert_true(decode_memory(d) < MIB);	/* refused before the window */
		decode_free(d);
	}
	/* an 8 MiB window is what RFC 9659 requires: decoded in bounded memory */
	ok = zstd_window(data.p, len, DECODE_ZSTD_WINDOW_LOG);
	{
		decode_t *d = make("zstd", NULL);
		struct sink k = {.d = d};

		assert_int_equal(run(d, &ok, 65536, count_cb, &k), DECODE_OK);
		assert_int_equal(k.len, len);
		assert_true(k.peak_mem > 8 * MIB);
		assert_true(k.peak_mem < 9 * MIB);
		decode_free(d);
	}
	buf_free(&ok);
	buf_free(&big);
	buf_free(&data);
	free(zeros);
}

/* Memory stays at the coding's window however long the body. */
static void
test_memory_bounded(void **state)
{
	struct buf data = json_text(4 * MIB);
	struct buf g = enc("gzip", data.p, data.len), b = enc("br", data.p, data.len);
	decode_t *d;
	struct sink k = {0};

	(void)state;
	d = make("gzip", NULL);
	k.d = d;
	assert_int_equal(run(d, &g, 8192, count_cb, &k), DECODE_OK);
	assert_true(k.peak_mem < SG_DECODE_CHUNK + 64 * 1024);
	decode_free(d);
	memset(&k, 0, sizeof(k));
	d = make("br", NULL);		/* enc_br: lgwin 22, a 4 MiB window */
	k.d = d;
	assert_int_equal(run(d, &b, 8192, count_cb, &k), DECODE_OK);
	assert_true(k.peak_mem < 4 * MIB + 512 * 1024);
	decode_free(d);
	buf_free(&b);
	buf_free(&g);
	buf_free(&data);
}

/* --- Accept-Encoding -------------------------------------------------------------- */

static void
test_accept_encoding(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"gzip, deflate, br", "gzip, deflate, br"},
		{"gzip;q=1.0, compress;q=0.5, *;q=0", "gzip;q=1.0, *;q=0"},
		{"compress", "identity"},
		{"", "identity"},
		{"br, zstd", "br, zstd"},
		{"  gzip ;q=0.8 ,,\tBR\t,  sdch , x-gzip;q=0.1  ", "gzip ;q=0.8, BR, x-gzip;q=0.1"},
		{"identity;q=1, dcb, dcz", "identity;q=1"},
		{"*", "identity"},
		{"*;q=0.5, gzip", "gzip"},
		{"gzip, *;Q=0.000", "gzip, *;Q=0.000"},
		{"gzip, *; q=0", "gzip, *; q=0"},
		{"gzip, *;q=0.001", "gzip"},
		{"zstd;q=0", "zstd;q=0"},
		{"gzip,", "gzip"},
	};
	char out[128];
	ssize_t n;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		n = decode_accept_encoding(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		assert_int_equal(n, (ssize_t)strlen(cases[i].out));
		assert_string_equal(out, cases[i].out);
	}
	/* control characters never reach the header sent upstream */
	n = decode_accept_encoding("gzip;q=\0, br\r\nX-Evil: 1, zstd;q=\x7f, deflate", 42,
	    out, sizeof(out));
	assert_int_equal(n, 7);
	assert_string_equal(out, "deflate");
	/* too small: -1, never a cut list; exactly big enough (with the NUL) works */
	assert_int_equal(decode_accept_encoding("gzip, br", 8, out, 8), -1);
	assert_int_equal(decode_accept_encoding("gzip, br", 8, out, 9), 8);
	assert_int_equal(decode_accept_encoding("compress", 8, out, 8), -1);
	assert_int_equal(decode_accept_encoding("compress", 8, out, 9), 8);
	assert_string_equal(out, "identity");
	assert_int_equal(decode_accept_encoding("gzip", 4, out, 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_each),
		cmocka_unit_test(test_no_output_held_back),
		cmocka_unit_test(test_tokens_case_and_spacing),
		cmocka_unit_test(test_deflate_zlib_and_raw),
		cmocka_unit_test(test_gzip_members),
		cmocka_unit_test(test_zstd_frames),
		cmocka_unit_test(test_zstd_legacy_refused),
		cmocka_unit_test(test_stacked),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_identity_and_empty),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_trailing_data),
		cmocka_unit_test(test_sticky_error),
		cmocka_unit_test(test_ratio_bomb),
		cmocka_unit_test(test_ratio_allows_text),
		cmocka_unit_test(test_absolute_limit),
		cmocka_unit_test(test_zstd_window),
		cmocka_unit_test(test_memory_bounded),
		cmocka_unit_test(test_accept_encoding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
