/*
 * fuzz_gitpack.c — libFuzzer harness for the streaming pack walk.
 * Input: byte 0 picks the hash length (sha1/sha256) and a split step, the rest is a
 * pack stream. Invariants:
 *   - the stream fed whole and fed in pieces gives the same outcome (failed, complete,
 *     commits kept) and the same walk answers;
 *   - once failed, it stays failed; a failed walk keeps no more commits;
 *   - gitpack_reaches of an id to itself is true, of a malformed id false;
 *   - kept commits never exceed GITPACK_MAX_COMMITS.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gitpack_t *
run(size_t hlen, const uint8_t *in, size_t len, size_t step)
{
	gitpack_t *p = gitpack_new(hlen);
	bool failed = false;

	if (p == NULL)
		abort();
	for (size_t i = 0; i < len; i += step) {
		size_t before = gitpack_ncommits(p);
		int rc = gitpack_feed(p, in + i, len - i < step ? len - i : step);

		if (failed && (rc != -1 || gitpack_ncommits(p) != before))
			abort();
		failed = rc < 0;
		if (failed != gitpack_failed(p))
			abort();
	}
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char ids[] = "853d583bc434459632427d9e5e70c871bda21512"
	    "af33ade6bdadda882cc431202067dd22dd4dba1e8967013661457e3b08e76c79";
	size_t hlen, hx;
	gitpack_t *a, *b;
	char x[65], y[65];

	if (size < 1)
		return 0;
	hlen = data[0] & 1 ? 32 : 20;
	hx = hlen * 2;
	a = run(hlen, data + 1, size - 1, size);
	b = run(hlen, data + 1, size - 1, (size_t)(data[0] >> 1) % 23 + 1);
	if (gitpack_failed(a) != gitpack_failed(b) || gitpack_complete(a) != gitpack_complete(b) ||
	    gitpack_ncommits(a) != gitpack_ncommits(b) ||
	    gitpack_ncommits(a) > GITPACK_MAX_COMMITS)
		abort();
	memcpy(x, ids, hx);
	x[hx] = '\0';
	memcpy(y, ids + 40, hx);
	y[hx] = '\0';
	if (!gitpack_reaches(a, x, x) || gitpack_reaches(a, x, "zz") ||
	    gitpack_reaches(a, x, y) != gitpack_reaches(b, x, y))
		abort();
	gitpack_free(a);
	gitpack_free(b);
	return 0;
}
