/*
 * fuzz_handle_stream.c — libFuzzer harness for handle_stream_* (streaming handle_find).
 * Invariants: fed in pieces cut at input-derived points, the text and handle pieces
 * concatenate to the input; the handle pieces are handle_find's occurrences on the whole
 * input, in order (an occurrence over SG_HANDLE_MAX_LEN + 1 bytes cut into pieces of that
 * size); text pieces are never empty and text between handles is the same; nothing is
 * held after finish; a callback's nonzero return stops the stream and is returned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "handle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PIECE_MAX (SG_HANDLE_MAX_LEN + 1)

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			abort();
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Transcript: 'T' len text (consecutive text merged), 'H' len handle piece. */
struct sink {
	struct buf t, text, all;
	size_t handles, stop_at;	/* stop_at: return nonzero at that handle (1-based) */
};

static void
sink_flush(struct sink *k)
{
	uint64_t n = k->text.len;

	if (n == 0)
		return;
	buf_add(&k->t, "T", 1);
	buf_add(&k->t, &n, sizeof(n));
	buf_add(&k->t, k->text.p, k->text.len);
	k->text.len = 0;
}

static int
sink_text(void *arg, const char *p, size_t len)
{
	struct sink *k = arg;

	if (len == 0)
		abort();
	buf_add(&k->text, p, len);
	buf_add(&k->all, p, len);
	return 0;
}

static int
sink_handle(void *arg, const char *h, size_t len)
{
	struct sink *k = arg;
	uint64_t n = len;

	if (len == 0 || len > PIECE_MAX)
		abort();
	sink_flush(k);
	buf_add(&k->t, "H", 1);
	buf_add(&k->t, &n, sizeof(n));
	buf_add(&k->t, h, len);
	buf_add(&k->all, h, len);
	k->handles++;
	return k->stop_at != 0 && k->handles == k->stop_at ? 42 : 0;
}

static void
sink_free(struct sink *k)
{
	free(k->t.p);
	free(k->text.p);
	free(k->all.p);
}

static void
reference(const uint8_t *data, size_t size, struct sink *k)
{
	size_t at = 0, off = 0, hlen;

	while (handle_find(data, size, &off, &hlen) == 0) {
		if (off > at)
			sink_text(k, (const char *)data + at, off - at);
		for (size_t i = 0; i < hlen; i += PIECE_MAX)
			sink_handle(k, (const char *)data + off + i,
			    hlen - i < PIECE_MAX ? hlen - i : PIECE_MAX);
		off += hlen;
		at = off;
	}
	if (size > at)
		sink_text(k, (const char *)data + at, size - at);
	sink_flush(k);
}

/* Feed in PRNG-sized pieces (mostly small, sometimes a few KiB), then finish. */
static int
streamed(const uint8_t *data, size_t size, uint64_t seed, struct sink *k)
{
	handle_stream_t hs;
	size_t at = 0, n;
	int rc = 0;

	handle_stream_init(&hs);
	while (rc == 0 && at < size) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		n = (size_t)(seed >> 33);
		n = (n & 7) == 0 ? n % 4096 : n % 17;
		if (n > size - at)
			n = size - at;
		rc = handle_stream_feed(&hs, data + at, n, sink_text, sink_handle, k);
		at += n;
		if (rc == 0 && hs.n > PIECE_MAX)
			abort();
	}
	if (rc == 0)
		rc = handle_stream_finish(&hs, sink_text, sink_handle, k);
	else
		handle_stream_reset(&hs);
	if (hs.n != 0)
		abort();
	sink_flush(k);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink want = {0}, got = {0}, stop = {0};
	uint64_t seed = size;
	int rc;

	for (size_t i = 0; i < size && i < 8; i++)
		seed = seed << 8 | data[i];
	reference(data, size, &want);
	if (want.all.len != size || (size > 0 && memcmp(want.all.p, data, size) != 0))
		abort();
	if (streamed(data, size, seed | 1, &got) != 0)
		abort();
	if (got.all.len != size || (size > 0 && memcmp(got.all.p, data, size) != 0))
		abort();
	if (got.t.len != want.t.len || memcmp(got.t.p, want.t.p, want.t.len) != 0)
		abort();
	/* a refusal at handle piece N stops there and is returned */
	if (want.handles > 0) {
		stop.stop_at = 1 + seed % want.handles;
		rc = streamed(data, size, seed ^ 0x9e3779b97f4a7c15ULL, &stop);
		if (rc != 42 || stop.handles != stop.stop_at)
			abort();
	}
	sink_free(&want);
	sink_free(&got);
	sink_free(&stop);
	return 0;
}
