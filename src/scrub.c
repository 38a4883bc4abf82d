/* scrub.c — streaming leftmost-longest multi-needle replacement with a bounded tail. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "scrub.h"

struct scrub_needle {
	unsigned char *needle;		/* wiped on free (util_wipe_alloc) */
	size_t nlen;
	unsigned char *repl;		/* wiped on free: may name the secret's handle */
	size_t rlen;
};

struct scrub {
	struct scrub_needle *v;		/* sorted by nlen, longest first; stable */
	size_t n;
	size_t maxlen;			/* longest needle */
	bool first[256];		/* some needle starts with this byte */
	size_t nfirst;			/* distinct first bytes */
	unsigned char only;		/* the first byte when nfirst == 1 */
	unsigned char *buf;		/* held tail + current chunk */
	size_t bufsize, held;
	size_t replaced;
};

/* What the scan found at one position. */
enum scrub_hit { SCRUB_NONE, SCRUB_MATCH, SCRUB_WAIT };

scrub_t *
scrub_new(void)
{
	if (sodium_init() < 0)
		return NULL;
	return calloc(1, sizeof(scrub_t));
}

static void
scrub_needle_free(struct scrub_needle *nd)
{
	if (nd->needle != NULL)
		util_wipe_free(nd->needle);
	if (nd->repl != NULL)
		util_wipe_free(nd->repl);
}

static void
scrub_buf_free(scrub_t *s)
{
	if (s->buf != NULL) {
		sodium_memzero(s->buf, s->bufsize);
		free(s->buf);
	}
	s->buf = NULL;
	s->bufsize = s->held = 0;
}

void
scrub_free(scrub_t *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		scrub_needle_free(&s->v[i]);
	free(s->v);
	scrub_buf_free(s);
	free(s);
}

/* Grow the scratch buffer to hold maxlen - 1 held bytes plus a chunk. */
static int
scrub_buf_reserve(scrub_t *s)
{
	size_t want = s->maxlen + SCRUB_CHUNK;
	unsigned char *nb;

	if (s->bufsize >= want)
		return 0;
	if ((nb = malloc(want)) == NULL)
		return -1;
	if (s->held > 0)
		memcpy(nb, s->buf, s->held);
	if (s->buf != NULL) {
		sodium_memzero(s->buf, s->bufsize);
		free(s->buf);
	}
	s->buf = nb;
	s->bufsize = want;
	return 0;
}

static int
scrub_needle_copy(struct scrub_needle *nd, const void *needle, size_t nlen,
    const void *repl, size_t rlen)
{
	memset(nd, 0, sizeof(*nd));
	if ((nd->needle = util_wipe_alloc(nlen)) == NULL ||
	    (nd->repl = util_wipe_alloc(rlen ? rlen : 1)) == NULL) {
		scrub_needle_free(nd);
		return -1;
	}
	memcpy(nd->needle, needle, nlen);
	if (rlen > 0)
		memcpy(nd->repl, repl, rlen);
	nd->nlen = nlen;
	nd->rlen = rlen;
	return 0;
}

/* The needle already known: its replacement becomes repl. 1 done, 0 absent, -1 memory. */
static int
scrub_replace(scrub_t *s, const void *needle, size_t nlen, const void *repl, size_t rlen)
{
	unsigned char *nr;

	for (size_t i = 0; i < s->n; i++) {
		struct scrub_needle *nd = &s->v[i];

		if (nd->nlen != nlen || memcmp(nd->needle, needle, nlen) != 0)
			continue;
		if (nd->rlen == rlen && (rlen == 0 || memcmp(nd->repl, repl, rlen) == 0))
			return 1;
		if ((nr = util_wipe_alloc(rlen ? rlen : 1)) == NULL)
			return -1;
		if (rlen > 0)
			memcpy(nr, repl, rlen);
		util_wipe_free(nd->repl);
		nd->repl = nr;
		nd->rlen = rlen;
		return 1;
	}
	return 0;
}

int
scrub_add(scrub_t *s, const void *needle, size_t nlen, const void *repl, size_t rlen)
{
	struct scrub_needle nd, *nv;
	size_t at = 0;
	unsigned char b0;
	int rc;

	if (nlen < SCRUB_MIN_NEEDLE || nlen > SCRUB_MAX_NEEDLE || rlen > SCRUB_MAX_REPL ||
	    (rlen > 0 && repl == NULL))
		return -1;
	if ((rc = scrub_replace(s, needle, nlen, repl, rlen)) != 0)
		return rc < 0 ? -1 : 0;
	if ((nv = realloc(s->v, (s->n + 1) * sizeof(*nv))) == NULL)
		return -1;
	s->v = nv;
	if (scrub_needle_copy(&nd, needle, nlen, repl, rlen) != 0)
		return -1;
	while (at < s->n && s->v[at].nlen >= nlen)
		at++;
	memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*nv));
	s->v[at] = nd;
	s->n++;
	if (nlen > s->maxlen)
		s->maxlen = nlen;
	b0 = nd.needle[0];
	if (!s->first[b0]) {
		s->first[b0] = true;
		s->nfirst++;
		s->only = b0;
	}
	return 0;
}

/* Next position >= i (< n) where some needle could start, or n. */
static size_t
scrub_next_candidate(const scrub_t *s, const unsigned char *p, size_t i, size_t n)
{
	const unsigned char *q;

	if (s->nfirst == 1) {
		q = memchr(p + i, s->only, n - i);
		return q ? (size_t)(q - p) : n;
	}
	while (i < n && !s->first[p[i]])
		i++;
	return i;
}

/*
 * At p[i..n): the longest needle matching (SCRUB_MATCH, *which), or SCRUB_WAIT when a
 * needle at least as long as any match could still match once more bytes arrive.
 */
static enum scrub_hit
scrub_match_at(const scrub_t *s, const unsigned char *p, size_t i, size_t n, bool final,
    size_t *which)
{
	size_t avail = n - i;

	for (size_t k = 0; k < s->n; k++) {
		const struct scrub_needle *nd = &s->v[k];

		if (nd->needle[0] != p[i])
			continue;
		if (nd->nlen <= avail) {
			if (memcmp(p + i, nd->needle, nd->nlen) == 0) {
				*which = k;
				return SCRUB_MATCH;
			}
		} else if (!final && memcmp(p + i, nd->needle, avail) == 0)
			return SCRUB_WAIT;
	}
	return SCRUB_NONE;
}

/* Replace in p[0..n); returns how many trailing bytes must wait for more input. */
static size_t
scrub_run(scrub_t *s, const unsigned char *p, size_t n, bool final, scrub_emit_fn emit,
    void *arg)
{
	size_t start = 0, i = 0, k;

	while ((i = scrub_next_candidate(s, p, i, n)) < n) {
		enum scrub_hit h = scrub_match_at(s, p, i, n, final, &k);

		if (h == SCRUB_WAIT)
			break;
		if (h == SCRUB_NONE) {
			i++;
			continue;
		}
		if (i > start)
			emit(arg, p + start, i - start);
		if (s->v[k].rlen > 0)
			emit(arg, s->v[k].repl, s->v[k].rlen);
		s->replaced++;
		i += s->v[k].nlen;
		start = i;
	}
	if (i > start)
		emit(arg, p + start, i - start);
	return n - i;
}

/* Run over held + chunk and keep the undecided tail at the start of buf. */
static void
scrub_pass(scrub_t *s, size_t n, bool final, scrub_emit_fn emit, void *arg)
{
	size_t keep = scrub_run(s, s->buf, n, final, emit, arg);

	memmove(s->buf, s->buf + n - keep, keep);
	sodium_memzero(s->buf + keep, n - keep);
	s->held = keep;
}

int
scrub_feed(scrub_t *s, const void *in, size_t len, scrub_emit_fn emit, void *arg)
{
	const unsigned char *p = in;

	if (len == 0)
		return 0;
	if (s->n == 0) {
		emit(arg, in, len);
		return 0;
	}
	if (scrub_buf_reserve(s) != 0)
		return -1;
	while (len > 0) {
		size_t take = len < SCRUB_CHUNK ? len : SCRUB_CHUNK;

		memcpy(s->buf + s->held, p, take);
		scrub_pass(s, s->held + take, false, emit, arg);
		p += take;
		len -= take;
	}
	return 0;
}

int
scrub_finish(scrub_t *s, scrub_emit_fn emit, void *arg)
{
	if (s->held > 0)
		scrub_pass(s, s->held, true, emit, arg);
	s->held = 0;
	return 0;
}

void
scrub_reset(scrub_t *s)
{
	if (s->buf != NULL)
		sodium_memzero(s->buf, s->bufsize);
	s->held = 0;
	s->replaced = 0;
}

size_t
scrub_replacements(const scrub_t *s)
{
	return s->replaced;
}
