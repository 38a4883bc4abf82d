/*
 * fuzz_gitpush.c — libFuzzer harness for the git push decision over a receive-pack body.
 * Input: byte 0 picks a split step and whether deletes are allowed, the rest is a body.
 * Invariants:
 *   - the body fed whole and fed in pieces gives the same verdict, command count and
 *     side-band flag;
 *   - a verdict, once reached, does not change with more bytes;
 *   - a refused push has an answer that is a pkt-line stream ending in a flush, and
 *     names every command's ref;
 *   - with force not allowed (input bit), bytes forwarded through gitpush_release are a
 *     prefix of the body, and all of it exactly when the push is allowed (the pack's
 *     checksum goes only then).
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

struct out {
	const uint8_t *body;
	size_t len;		/* bytes forwarded, checked against the body as they come */
};

static void
out_emit(void *arg, const void *data, size_t len)
{
	struct out *o = arg;

	if (len == 0 || memcmp(o->body + o->len, data, len) != 0)
		abort();
	o->len += len;
}

static gitpush_t *
run(const gitpush_rules_t *r, const uint8_t *in, size_t len, size_t step)
{
	gitpush_t *g = gitpush_new(r);
	enum gitpush_verdict v = GITPUSH_MORE;
	struct out o = {in, 0};
	size_t given = 0;	/* bytes passed to gitpush_release (the shell holds the rest) */

	if (g == NULL)
		abort();
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		enum gitpush_verdict w = gitpush_feed(g, in + i, n);

		if (v != GITPUSH_MORE && w != v)
			abort();
		v = w;
		if (v == GITPUSH_ALLOW || v == GITPUSH_PACK) {
			gitpush_release(g, in + given, i + n - given, out_emit, &o);
			given = i + n;
		}
	}
	if (gitpush_finish(g) == GITPUSH_ALLOW) {
		if (given < len)
			gitpush_release(g, in + given, len - given, out_emit, &o);
		gitpush_release_end(g, out_emit, &o);
		if (o.len != len)
			abort();
	}
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
	r.allow_force = (data[0] & 0x80) == 0;
	if (data[0] & 2) {
		r.narrow = narrow;
		r.nnarrow = 1;
	}
	a = run(&r, data + 1, size - 1, size);
	b = run(&r, data + 1, size - 1, (size_t)(data[0] >> 2) % 13 + 1);	/* bits 2..6 */
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
