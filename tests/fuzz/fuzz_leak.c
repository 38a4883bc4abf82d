/*
 * fuzz_leak.c — libFuzzer harness for leak_scan / leak_stream_*.
 * Invariants: leak_scan equals an encoded-only stream fed the same bytes in random pieces
 * (hit or not, offset, encoding name); a raw-counting stream hits exactly when leak_scan
 * does or "sgh1." is in the input, and reports the same hit when it is not; every hit
 * offset is inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "leak.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed data in pieces whose lengths come from a PRNG seeded by the input. */
static int
feed_split(leak_stream_t *ls, const uint8_t *data, size_t size, uint64_t seed, leak_hit_t *hit)
{
	size_t at = 0;
	int r = 0;

	while (at < size) {
		size_t n;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		n = (size_t)(seed >> 33) % 17;		/* 0..16: empty feeds too */
		if (n > size - at)
			n = size - at;
		r = leak_stream_feed(ls, data + at, n, hit);
		at += n;
	}
	if (r == 0)
		r = leak_stream_finish(ls, hit);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	leak_hit_t want = {0}, got = {0}, raw = {0};
	leak_stream_t ls;
	uint64_t seed = size;
	int r, rs, rr;
	bool has_raw;

	for (size_t i = 0; i < size && i < 8; i++)
		seed = seed << 8 | data[i];
	r = leak_scan(data, size, &want);
	if (r != 0 && r != 1)
		abort();
	if (r && (want.off >= size || want.encoding == NULL || strcmp(want.encoding, "raw") == 0))
		abort();

	leak_stream_init_encoded(&ls);
	rs = feed_split(&ls, data, size, seed, &got);
	if (rs != r)
		abort();
	if (r && (got.off != want.off || strcmp(got.encoding, want.encoding) != 0))
		abort();

	leak_stream_init(&ls);
	rr = feed_split(&ls, data, size, seed ^ 0x9e3779b97f4a7c15ULL, &raw);
	has_raw = memmem(data, size, "sgh1.", 5) != NULL;
	if (rr != (r || has_raw))
		abort();
	if (rr && raw.off >= size)
		abort();
	/* without a raw prefix the two kinds of stream are the same machine */
	if (!has_raw && rr && (raw.off != want.off || strcmp(raw.encoding, want.encoding) != 0))
		abort();
	return 0;
}
