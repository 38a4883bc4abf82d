/*
 * scrub.c — streaming leftmost-longest replacement of secrets and their encoded forms.
 *
 * Each needle (a secret) is compiled into patterns: its raw bytes and, in SCRUB_FORMS
 * mode, its hex (two cases) and the base64 "cores" of its three alignments (the
 * characters all of whose bits come from the secret). One Aho-Corasick automaton over
 * all patterns runs over two views of the input: the raw bytes (view I) and the bytes
 * with escapes decoded (view U). Both views share the automaton state until an escape
 * introducer ('\\', '%', '&') appears, so unescaped text costs one step per byte.
 *
 * A base64 core match is checked against the characters around it (the bits of the
 * secret's first and last bytes) and becomes a match of the 4-character group holding
 * the secret's first byte; replacing it re-encodes the rest of the base64 run through a
 * literal scrubber (rewrite mode, struct scrub_rw).
 *
 * Matches become final when no match starting at or before them can still appear;
 * after each replacement the views restart on the bytes held after it, exactly as a
 * left-to-right scan over the whole message would, so splits never change the output.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "needles.h"
#include "scrub.h"
#include "secmem.h"
#include "unescape.h"

/* Base64 core matches waiting for the character after them. */
#define SCRUB_PENDING_MAX	8
/* A re-encoded run waits this long for a character that tells its alphabet (+/ or -_),
 * then takes the standard one. */
#define SCRUB_RW_HELD_MAX	(64 * 1024)

struct scrub_needle {
	unsigned char *needle;		/* wipe memory */
	size_t nlen;
	unsigned char *repl;		/* wipe memory: may name the secret's handle */
	size_t rlen;
};

struct scrub_view {
	uint32_t st;			/* automaton state */
	uint64_t base;			/* raw offset where the view (re)started */
	uint64_t nsym;			/* symbols since base */
	/* view U only */
	bool diverged;			/* has its own state (else it equals view I's) */
	unescape_t dec;
	unescape_sym_t *ring;		/* the newest symbols, ring[k & ringmask] */
	size_t ringmask;
};

struct scrub_cand {
	bool set;
	uint8_t view;
	uint32_t pat;
	uint64_t start, end;		/* raw; NEEDLE_B64: start is the group's first char */
};

struct scrub_pend {
	uint8_t view;
	uint32_t pat;
	uint64_t start;			/* group start */
	uint64_t sym;			/* the symbol that must verify the last byte */
};

/* Rewrite mode: a base64 run re-encoded with secrets replaced. */
struct scrub_rw {
	bool on;
	uint8_t view;			/* which decoder feeds it: 0 raw, 1 unescaped */
	uint8_t alpha;			/* output alphabet; NEEDLE_B64_ANY: not known yet */
	uint8_t *held;			/* sextets waiting for the alphabet to be known */
	size_t nheld, capheld;
	unescape_t dec;		/* view U's decoder, private to the run */
	uint64_t pos;			/* next raw offset to feed */
	uint8_t q[4], nq;		/* base64 characters of the current group */
	uint64_t nchars;		/* base64 characters since the group start */
	uint8_t npad;			/* '=' seen: the run has ended but for more '=' */
	unsigned char carry[3];		/* decoded bytes not yet encoded */
	uint8_t ncarry;
	size_t before;			/* inner replacements when the run started */
};

struct scrub {
	enum scrub_mode mode;
	struct scrub_needle *v;
	size_t n;
	needles_t *ac;			/* compiled needles (NULL: none yet) */
	bool dirty;			/* needles changed: rebuild ac before the next feed */
	bool busy;			/* a message is under way */
	/* the window: raw bytes from wbase (everything before is emitted) */
	unsigned char *win;
	size_t wlen, wcap;
	uint64_t wbase, scanned;
	struct scrub_view vi, vu;
	struct scrub_cand best;
	struct scrub_pend pend[SCRUB_PENDING_MAX];
	size_t npend;
	struct scrub_rw rw;
	scrub_t *inner;			/* rewrite mode: secrets in the decoded run... */
	scrub_t *outer;			/* ...and, never to reappear, in its new encoding
					 * and across its end (draining: all output passes
					 * it until it holds nothing) */
	bool draining;
	scrub_emit_fn emit;		/* of the current feed/finish call */
	void *arg;
	size_t replaced;
	size_t rewrites;		/* base64 runs re-encoded */
	/* what the bytes written so far end with, for a run's alphabet (rw_alpha) */
	struct {
		bool in_run;		/* a base64 run ... */
		bool url, std;		/* ... holding '-'/'_', '+'/'/' */
		bool dot;		/* ... after a '.'; not in a run: the last byte was '.' */
	} tail;
};

/* --- needles -------------------------------------------------------------------------- */

scrub_t *
scrub_new(enum scrub_mode mode)
{
	scrub_t *s;

	if (sodium_init() < 0 || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->mode = mode;
	return s;
}

static void
scrub_needle_free(struct scrub_needle *nd)
{
	secmem_wipe_free(nd->needle);
	secmem_wipe_free(nd->repl);
	memset(nd, 0, sizeof(*nd));
}

static void
scrub_win_free(scrub_t *s)
{
	if (s->win != NULL) {
		sodium_memzero(s->win, s->wcap);
		free(s->win);
	}
	s->win = NULL;
	s->wlen = s->wcap = 0;
}

/* Drop a base64 run's state (its held sextets zeroed). */
static void
rw_free(scrub_t *s)
{
	if (s->rw.held != NULL) {
		sodium_memzero(s->rw.held, s->rw.capheld);
		free(s->rw.held);
	}
	sodium_memzero(&s->rw, sizeof(s->rw));
}

void
scrub_free(scrub_t *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		scrub_needle_free(&s->v[i]);
	free(s->v);
	needles_free(s->ac);
	scrub_win_free(s);
	if (s->vu.ring != NULL) {
		sodium_memzero(s->vu.ring, (s->vu.ringmask + 1) * sizeof(*s->vu.ring));
		free(s->vu.ring);
	}
	sodium_memzero(&s->vu.dec, sizeof(s->vu.dec));
	rw_free(s);
	scrub_free(s->inner);
	scrub_free(s->outer);
	free(s);
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
		if ((nr = secmem_wipe_alloc(rlen ? rlen : 1)) == NULL)
			return -1;
		if (rlen > 0)
			memcpy(nr, repl, rlen);
		secmem_wipe_free(nd->repl);
		nd->repl = nr;
		nd->rlen = rlen;
		return 1;
	}
	return 0;
}

static int
scrub_needle_copy(struct scrub_needle *nd, const void *needle, size_t nlen,
    const void *repl, size_t rlen)
{
	memset(nd, 0, sizeof(*nd));
	if ((nd->needle = secmem_wipe_alloc(nlen)) == NULL ||
	    (nd->repl = secmem_wipe_alloc(rlen ? rlen : 1)) == NULL) {
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

static int scrub_compile(scrub_t *s);
static void view_restart(scrub_t *s, uint64_t at);

/*
 * A needle added while a message is under way takes effect at once: the held bytes
 * (everything not yet decided) are scanned again with it. Bytes already written cannot
 * hold it: a secret is added before it is sent, so no echo of it came earlier. In a
 * base64 run the views restart when the run ends anyway.
 */
static int
scrub_recompile(scrub_t *s)
{
	if (scrub_compile(s) < 0)
		return -1;
	if (!s->rw.on)
		view_restart(s, s->wbase);
	return 0;
}

int
scrub_add(scrub_t *s, const void *needle, size_t nlen, const void *repl, size_t rlen)
{
	struct scrub_needle *nv;
	int rc;

	if (nlen < SCRUB_MIN_NEEDLE || nlen > SCRUB_MAX_NEEDLE || rlen > SCRUB_MAX_REPL ||
	    (rlen > 0 && repl == NULL))
		return -1;
	if ((s->inner != NULL && scrub_add(s->inner, needle, nlen, repl, rlen) < 0) ||
	    (s->outer != NULL && scrub_add(s->outer, needle, nlen, repl, rlen) < 0))
		return -1;
	if ((rc = scrub_replace(s, needle, nlen, repl, rlen)) != 0)
		return rc < 0 ? -1 : 0;
	if (s->n >= SCRUB_MAX_NEEDLES)
		return -1;
	if ((nv = realloc(s->v, (s->n + 1) * sizeof(*nv))) == NULL)
		return -1;
	s->v = nv;
	if (scrub_needle_copy(&s->v[s->n], needle, nlen, repl, rlen) != 0)
		return -1;
	s->n++;
	s->dirty = true;
	return s->busy ? scrub_recompile(s) : 0;
}

size_t
scrub_needles(const scrub_t *s)
{
	return s->n;
}

/* Size the view U ring for the longest pattern and its context. */
static int
scrub_ring_reserve(scrub_t *s)
{
	size_t want = 16;
	unescape_sym_t *r;

	while (want < s->ac->maxlen + NEEDLES_B64_LEFT + UNESCAPE_SYMS_MAX + 2)
		want *= 2;
	if (s->vu.ring != NULL && s->vu.ringmask + 1 >= want)
		return 0;
	if ((r = calloc(want, sizeof(*r))) == NULL)
		return -1;
	if (s->vu.ring != NULL) {
		sodium_memzero(s->vu.ring, (s->vu.ringmask + 1) * sizeof(*r));
		free(s->vu.ring);
	}
	s->vu.ring = r;
	s->vu.ringmask = want - 1;
	return 0;
}

static int
scrub_compile(scrub_t *s)
{
	needle_src_t *src;
	int rc = -1;

	if (!s->dirty)
		return 0;
	if ((src = calloc(s->n ? s->n : 1, sizeof(*src))) == NULL)
		return -1;
	for (size_t i = 0; i < s->n; i++)
		src[i] = (needle_src_t){s->v[i].needle, s->v[i].nlen};
	needles_free(s->ac);
	s->ac = needles_build(src, s->n, s->mode == SCRUB_FORMS);
	if (s->ac != NULL && (s->mode == SCRUB_LITERAL || scrub_ring_reserve(s) == 0)) {
		s->dirty = false;
		rc = 0;
	}
	free(src);
	return rc;
}

/* --- views ---------------------------------------------------------------------------- */

static void
view_restart(scrub_t *s, uint64_t at)
{
	s->vi.st = 0;
	s->vi.base = at;
	s->vi.nsym = 0;
	s->vu.st = 0;
	s->vu.base = at;
	s->vu.nsym = 0;
	s->vu.diverged = false;
	unescape_init(&s->vu.dec);
	s->best.set = false;
	s->npend = 0;
	s->scanned = at;
}

/* Symbol k of view v (0 = I, 1 = U): its byte and raw start. false when not held. */
static bool
view_sym(const scrub_t *s, int v, uint64_t k, unsigned char *c, uint64_t *start)
{
	if (v == 0 || !s->vu.diverged) {
		uint64_t pos = s->vi.base + k;

		if (pos < s->wbase || pos >= s->wbase + s->wlen)
			return false;
		*c = s->win[pos - s->wbase];
		*start = pos;
		return true;
	}
	if (k >= s->vu.nsym || s->vu.nsym - k > s->vu.ringmask + 1)
		return false;
	*c = s->vu.ring[k & s->vu.ringmask].c;
	*start = s->vu.ring[k & s->vu.ringmask].start;
	return true;
}

static uint64_t
view_nsym(const scrub_t *s, int v)
{
	return v == 0 || !s->vu.diverged ? s->scanned - s->vi.base : s->vu.nsym;
}

/*
 * The earliest raw offset a match still to be found in view v could start at: where
 * its partial match starts, less the base64 group context; the view's start at least.
 */
static uint64_t
view_hold(const scrub_t *s, int v)
{
	const struct scrub_view *w = v == 0 || !s->vu.diverged ? &s->vi : &s->vu;
	uint64_t n = view_nsym(s, v), back = s->ac->st[w->st].depth;
	uint64_t hold = s->scanned, start;
	unsigned char c;

	if (s->mode == SCRUB_FORMS)
		back += NEEDLES_B64_LEFT;
	if (back > n)
		hold = w->base;
	else if (back > 0)
		hold = view_sym(s, v, n - back, &c, &start) ? start : w->base;
	if (v == 1 && unescape_pending(&s->vu.dec, &start) && start < hold)
		hold = start;
	return hold;
}

/* Nothing found from here on can start before this offset. */
static uint64_t
scrub_hold(const scrub_t *s)
{
	uint64_t h = view_hold(s, 0);

	if (s->mode == SCRUB_FORMS && s->vu.diverged) {
		uint64_t hu = view_hold(s, 1);

		if (hu < h)
			h = hu;
	}
	for (size_t i = 0; i < s->npend; i++)
		if (s->pend[i].start < h)
			h = s->pend[i].start;
	return h;
}

/* --- matches ------------------------------------------------------------------------- */

static void
cand_offer(scrub_t *s, int v, uint32_t pat, uint64_t start, uint64_t end)
{
	struct scrub_cand *b = &s->best;

	if (b->set && (start > b->start || (start == b->start && end <= b->end)))
		return;
	*b = (struct scrub_cand){true, (uint8_t)v, pat, start, end};
}

/*
 * A base64 core ended at symbol last (of view v): check the group characters before it
 * (base64, the secret's first bits), then offer the match from the group's start, or
 * wait for the character after it.
 */
static void
b64_core(scrub_t *s, int v, uint32_t pi, uint64_t last, uint64_t end)
{
	const needle_pat_t *p = &s->ac->pat[pi];
	uint64_t first = last + 1 - p->len, start = 0, at;
	unsigned char c = 0;

	if (first < p->left)
		return;		/* the group began before the view did */
	for (uint64_t k = first - p->left; k < first; k++) {
		if (!view_sym(s, v, k, &c, &at) || needles_b64_value(c) < 0)
			return;
		if (k == first - p->left)
			start = at;
		if (k == first - 1 && !needles_b64_left_ok(p, c))
			return;
	}
	if (p->left == 0 && !view_sym(s, v, first, &c, &start))
		return;
	if (p->rmask == 0) {
		cand_offer(s, v, pi, start, end);
		return;
	}
	if (s->npend < SCRUB_PENDING_MAX)
		s->pend[s->npend++] = (struct scrub_pend){(uint8_t)v, pi, start, last + 1};
	else
		cand_offer(s, v, pi, start, end);	/* too many to check: assume it */
}

/* A new symbol k of view v: resolve base64 matches waiting for it. */
static void
pend_check(scrub_t *s, int v, uint64_t k, unsigned char c, uint64_t end)
{
	for (size_t i = 0; i < s->npend;) {
		struct scrub_pend *pd = &s->pend[i];

		if (pd->view != v || pd->sym != k) {
			i++;
			continue;
		}
		if (needles_b64_right_ok(&s->ac->pat[pd->pat], c))
			cand_offer(s, v, pd->pat, pd->start, end);
		*pd = s->pend[--s->npend];
	}
}

static bool
pend_in_view(const scrub_t *s, int v)
{
	for (size_t i = 0; i < s->npend; i++)
		if (s->pend[i].view == v)
			return true;
	return false;
}

/* One pattern ending at symbol k of view v, whose last raw byte ends at end. */
static void
scrub_match(scrub_t *s, int v, uint32_t pi, uint64_t k, uint64_t end)
{
	const needle_pat_t *p = &s->ac->pat[pi];
	uint64_t start = 0;
	unsigned char c;

	if (v == 1 && p->kind == NEEDLE_RAW && !s->vu.diverged)
		return;		/* view I reports the same match */
	if (p->kind == NEEDLE_B64)
		b64_core(s, v, pi, k, end);
	else if (view_sym(s, v, k + 1 - p->len, &c, &start))
		cand_offer(s, v, pi, start, end);
}

/* Every pattern ending at state st, symbol k of view v. */
static void
scrub_matches(scrub_t *s, int v, uint32_t st, uint64_t k, uint64_t end)
{
	const needles_state_t *a = &s->ac->st[st];

	for (uint32_t t = a->pat ? st : a->dict; t != 0; t = s->ac->st[t].dict)
		for (uint32_t pi = s->ac->st[t].pat; pi != 0; pi = s->ac->pat[pi - 1].same)
			scrub_match(s, v, pi - 1, k, end);
}

/* View U: one decoded symbol. */
static void
vu_symbol(scrub_t *s, const unescape_sym_t *y, uint64_t end)
{
	struct scrub_view *u = &s->vu;
	uint64_t k = u->nsym++;

	u->ring[k & u->ringmask] = *y;
	if (s->npend > 0)
		pend_check(s, 1, k, y->c, end);
	u->st = needles_next(s->ac, u->st, y->c);
	if (needles_ends(s->ac, u->st))
		scrub_matches(s, 1, u->st, k, end);
}

/* View U leaves view I's state: copy it and the raw offsets of its partial match. */
static void
vu_diverge(scrub_t *s)
{
	struct scrub_view *u = &s->vu;
	uint64_t n = s->scanned - s->vi.base, keep = s->ac->st[s->vi.st].depth + NEEDLES_B64_LEFT;

	u->diverged = true;
	u->st = s->vi.st;
	u->nsym = n;
	/* a base64 core view I ended waits for its next symbol: view U's may differ */
	for (size_t i = 0, np = s->npend; i < np && s->npend < SCRUB_PENDING_MAX; i++)
		if (s->pend[i].view == 0) {
			s->pend[s->npend] = s->pend[i];
			s->pend[s->npend++].view = 1;
		}
	if (keep > n)
		keep = n;
	for (uint64_t k = n - keep; k < n; k++) {
		uint64_t pos = s->vi.base + k;

		if (pos >= s->wbase)
			u->ring[k & u->ringmask] = (unescape_sym_t){pos, s->win[pos - s->wbase]};
	}
}

/*
 * Were view U's last symbols (as many as a base64 core may look back) plain bytes, the
 * same as view I's up to pos? Only then may the views share their state again.
 */
static bool
vu_plain_tail(const scrub_t *s, uint64_t pos)
{
	const struct scrub_view *u = &s->vu;

	for (uint64_t j = 0; j < NEEDLES_B64_LEFT; j++) {
		const unescape_sym_t *y;

		if (j >= u->nsym || pos < j || pos - j < u->base)
			return true;	/* the view starts there: nothing before counts */
		y = &u->ring[(u->nsym - 1 - j) & u->ringmask];
		if (y->start != pos - j || pos - j < s->wbase ||
		    y->c != s->win[pos - j - s->wbase])
			return false;
	}
	return true;
}

/* One raw byte at offset pos through both views. */
static void
scrub_step(scrub_t *s, unsigned char b, uint64_t pos)
{
	struct scrub_view *i = &s->vi;
	uint64_t k = pos - i->base;

	if (s->mode == SCRUB_FORMS && !s->vu.diverged && (b == '\\' || b == '%' || b == '&'))
		vu_diverge(s);
	if (s->npend > 0)
		pend_check(s, 0, k, b, pos + 1);
	i->st = needles_next(s->ac, i->st, b);
	if (needles_ends(s->ac, i->st))
		scrub_matches(s, 0, i->st, k, pos + 1);
	if (s->vu.diverged) {
		unescape_out_t o;
		uint64_t at;

		o.n = 0;
		unescape_byte(&s->vu.dec, b, pos, &o);
		for (size_t j = 0; j < o.n; j++)
			vu_symbol(s, &o.v[j], pos + 1);
		if (s->vu.st == 0 && i->st == 0 && !unescape_pending(&s->vu.dec, &at) &&
		    !pend_in_view(s, 1) && vu_plain_tail(s, pos))
			s->vu.diverged = false;
	}
}

/* --- output ---------------------------------------------------------------------------- */

/* Everything the scrubber writes goes here. */
static void
scrub_out(scrub_t *s, const void *p, size_t n)
{
	if (!s->draining) {
		s->emit(s->arg, p, n);
		return;
	}
	if (scrub_feed(s->outer, p, n, s->emit, s->arg) < 0)
		return;		/* no memory: dropped rather than passed on unchecked */
	if (s->outer->wlen == 0) {
		(void)scrub_finish(s->outer, s->emit, s->arg);
		s->draining = false;
	}
}

/* Note how the bytes written end (a base64 run, its alphabet, a '.' before it). */
static void
scrub_tail_note(scrub_t *s, const unsigned char *p, size_t n)
{
	bool url = false, std = false;
	size_t j = n;

	while (j > 0 && needles_b64_value(p[j - 1]) >= 0) {
		url |= p[j - 1] == '-' || p[j - 1] == '_';
		std |= p[j - 1] == '+' || p[j - 1] == '/';
		j--;
	}
	if (j == n) {
		s->tail.in_run = s->tail.url = s->tail.std = false;
		s->tail.dot = n > 0 && p[n - 1] == '.';
	} else if (j > 0) {
		s->tail.in_run = true;
		s->tail.url = url;
		s->tail.std = std;
		s->tail.dot = p[j - 1] == '.';
	} else if (s->tail.in_run) {
		s->tail.url |= url;
		s->tail.std |= std;
	} else {
		s->tail.in_run = true;
		s->tail.url = url;
		s->tail.std = std;
	}
}

/* Raw bytes [wbase, upto) leave unchanged. */
static void
scrub_emit_raw(scrub_t *s, uint64_t upto)
{
	if (upto <= s->wbase)
		return;
	scrub_tail_note(s, s->win, (size_t)(upto - s->wbase));
	scrub_out(s, s->win, (size_t)(upto - s->wbase));
	memmove(s->win, s->win + (upto - s->wbase), s->wlen - (size_t)(upto - s->wbase));
	sodium_memzero(s->win + s->wlen - (upto - s->wbase), (size_t)(upto - s->wbase));
	s->wlen -= (size_t)(upto - s->wbase);
	s->wbase = upto;
}

/* Raw bytes [wbase, upto) are replaced: drop them. */
static void
scrub_drop_raw(scrub_t *s, uint64_t upto)
{
	size_t n = (size_t)(upto - s->wbase);

	sodium_memzero(s->win, n);
	memmove(s->win, s->win + n, s->wlen - n);
	s->wlen -= n;
	s->wbase = upto;
}

static void
emit_hex(scrub_t *s, const unsigned char *p, size_t n, const char *digits, bool spaced)
{
	char buf[256];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (spaced && i > 0)
			buf[o++] = ' ';
		buf[o++] = digits[p[i] >> 4];
		buf[o++] = digits[p[i] & 15];
		if (o + 3 > sizeof(buf)) {
			scrub_out(s, buf, o);
			o = 0;
		}
	}
	if (o > 0)
		scrub_out(s, buf, o);
	sodium_memzero(buf, sizeof(buf));
}

static void rw_start(scrub_t *s, const struct scrub_cand *c);

/* The best match is final: write what precedes it and its replacement. */
static void
scrub_take(scrub_t *s)
{
	struct scrub_cand c = s->best;
	const needle_pat_t *p = &s->ac->pat[c.pat];
	const struct scrub_needle *nd = &s->v[p->needle];

	scrub_emit_raw(s, c.start);
	if (p->kind == NEEDLE_B64) {
		rw_start(s, &c);
		return;
	}
	if (p->kind == NEEDLE_RAW && nd->rlen > 0)
		scrub_out(s, nd->repl, nd->rlen);
	else if (p->kind != NEEDLE_RAW)
		emit_hex(s, nd->repl, nd->rlen, p->kind == NEEDLE_HEX_UP ? needles_hex_up :
		    needles_hex_lo, p->kind == NEEDLE_HEX_SP);
	s->replaced++;
	memset(&s->tail, 0, sizeof(s->tail));
	scrub_drop_raw(s, c.end);
	view_restart(s, c.end);
}

/* --- rewrite mode: a base64 run re-encoded with its secrets replaced ------------------ */

/*
 * The re-encoded run leaves through a literal scrubber of the raw secrets: a secret's
 * text that stood in the run unshifted, or that the new encoding happens to spell, is
 * replaced too.
 */
static void
rw_out(scrub_t *s, const void *p, size_t n)
{
	if (s->outer == NULL || scrub_feed(s->outer, p, n, s->emit, s->arg) < 0)
		return;		/* no memory: dropped rather than passed on unchecked */
}

/* Sextets of the new encoding to the output, in the run's alphabet. */
static void
rw_write(scrub_t *s, const uint8_t *v, size_t n)
{
	const char *al = s->rw.alpha == NEEDLE_B64_URL ? needles_b64_url : needles_b64_std;
	char out[256];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		out[o++] = v[i] == 64 ? '=' : al[v[i]];
		if (o == sizeof(out) || i + 1 == n) {
			rw_out(s, out, o);
			o = 0;
		}
	}
}

/* The alphabet is known (a '+', '/', '-' or '_' in the run, or it must be chosen). */
static void
rw_decide(scrub_t *s, uint8_t alpha)
{
	if (s->rw.alpha != NEEDLE_B64_ANY)
		return;
	s->rw.alpha = alpha;
	rw_write(s, s->rw.held, s->rw.nheld);
	if (s->rw.held != NULL) {
		sodium_memzero(s->rw.held, s->rw.capheld);
		free(s->rw.held);
	}
	s->rw.held = NULL;
	s->rw.nheld = s->rw.capheld = 0;
}

/* Sextets (64: a '=') for the output, held while the alphabet is not known. */
static void
rw_sextets(scrub_t *s, const uint8_t *v, size_t n)
{
	uint8_t *nh;

	if (s->rw.alpha != NEEDLE_B64_ANY) {
		rw_write(s, v, n);
		return;
	}
	if (s->rw.nheld + n > SCRUB_RW_HELD_MAX) {
		rw_decide(s, NEEDLE_B64_STD);
		rw_write(s, v, n);
		return;
	}
	if (s->rw.nheld + n > s->rw.capheld) {
		size_t cap = s->rw.capheld ? s->rw.capheld * 2 : 256;

		if ((nh = malloc(cap)) == NULL) {
			rw_decide(s, NEEDLE_B64_STD);
			rw_write(s, v, n);
			return;
		}
		if (s->rw.held != NULL) {
			memcpy(nh, s->rw.held, s->rw.nheld);
			sodium_memzero(s->rw.held, s->rw.capheld);
			free(s->rw.held);
		}
		s->rw.held = nh;
		s->rw.capheld = cap;
	}
	memcpy(s->rw.held + s->rw.nheld, v, n);
	s->rw.nheld += n;
}

static void
rw_emit_group(scrub_t *s, const unsigned char *b, size_t n, bool pad)
{
	uint32_t v = (uint32_t)b[0] << 16 | (n > 1 ? (uint32_t)b[1] << 8 : 0) |
	    (n > 2 ? b[2] : 0);
	uint8_t out[4] = {(uint8_t)(v >> 18), (uint8_t)((v >> 12) & 63),
	    (uint8_t)((v >> 6) & 63), (uint8_t)(v & 63)};
	size_t k = n + 1;

	if (pad)
		for (; k < 4; k++)
			out[k] = 64;
	rw_sextets(s, out, k);
}

/* Decoded bytes of the run, secrets replaced: encode them (the inner scrubber's emit). */
static void
rw_encode_cb(void *arg, const void *data, size_t len)
{
	scrub_t *s = arg;
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		s->rw.carry[s->rw.ncarry++] = p[i];
		if (s->rw.ncarry == 3) {
			rw_emit_group(s, s->rw.carry, 3, false);
			s->rw.ncarry = 0;
		}
	}
}

static void
rw_decode_group(scrub_t *s)
{
	const uint8_t *q = s->rw.q;
	unsigned char b[3];
	size_t n = s->rw.nq - 1;

	b[0] = (unsigned char)(q[0] << 2 | q[1] >> 4);
	b[1] = (unsigned char)(q[1] << 4 | (s->rw.nq > 2 ? q[2] >> 2 : 0));
	b[2] = (unsigned char)(q[2] << 6 | (s->rw.nq > 3 ? q[3] : 0));
	/* no inner scrubber or no memory: the group is dropped, never passed on */
	if (s->inner != NULL && scrub_feed(s->inner, b, n, rw_encode_cb, s) < 0)
		sodium_memzero(b, sizeof(b));
	s->rw.nq = 0;
	sodium_memzero(b, sizeof(b));
}

/* The run has ended: flush the last group, the inner scrubber and the encoder. */
static void
rw_end(scrub_t *s)
{
	uint8_t lone = 0xff;
	bool pad;

	rw_decide(s, NEEDLE_B64_STD);	/* nothing told: the standard alphabet */
	pad = s->rw.npad > 0 || (s->rw.nchars % 4 == 0 && s->rw.alpha != NEEDLE_B64_URL);

	if (s->rw.nq == 1)
		lone = s->rw.q[0];	/* a dangling character: no byte to decode */
	else if (s->rw.nq > 1)
		rw_decode_group(s);
	if (s->inner != NULL) {
		(void)scrub_finish(s->inner, rw_encode_cb, s);
		s->replaced += scrub_replacements(s->inner) - s->rw.before;
	}
	if (s->rw.ncarry > 0)
		rw_emit_group(s, s->rw.carry, s->rw.ncarry, pad);
	if (lone != 0xff)
		rw_write(s, &lone, 1);
	/* what follows the run may complete a secret the run's end began */
	memset(&s->tail, 0, sizeof(s->tail));
	s->draining = s->outer != NULL && s->outer->wlen > 0;
	if (s->outer != NULL && !s->draining)
		(void)scrub_finish(s->outer, s->emit, s->arg);
	sodium_memzero(&s->rw, sizeof(s->rw));
}

/* One symbol of the run. false: it is not part of the run (the run ends before it). */
static bool
rw_symbol(scrub_t *s, unsigned char c)
{
	int v = needles_b64_value(c);

	if (s->rw.npad > 0 || c == '=') {
		if (c != '=')
			return false;
		s->rw.npad++;
		return true;
	}
	if (v < 0)
		return false;
	if (c == '+' || c == '/' || c == '-' || c == '_')
		rw_decide(s, c == '+' || c == '/' ? NEEDLE_B64_STD : NEEDLE_B64_URL);
	s->rw.q[s->rw.nq++] = (uint8_t)v;
	s->rw.nchars++;
	if (s->rw.nq == 4)
		rw_decode_group(s);
	return true;
}

/*
 * The run's alphabet, as far as is known when its re-encoding starts: the core's own
 * characters, then the run's bytes up to the match and back from it ('+' or '/': the
 * standard one; '-', '_' or a '.' before the run, as in a JWT: url-safe; an escaped
 * "\/" reads as '/'), reaching back past the window through what was written.
 * NEEDLE_B64_ANY: not known yet (rw_symbol learns it from the rest of the run).
 */
static uint8_t
rw_alpha(const scrub_t *s, const struct scrub_cand *c)
{
	size_t i = (size_t)(c->start - s->wbase), end = (size_t)(c->end - s->wbase);

	if (s->ac->pat[c->pat].alpha != NEEDLE_B64_ANY)
		return s->ac->pat[c->pat].alpha;
	for (size_t j = i; j < end && j < s->wlen; j++) {
		if (s->win[j] == '-' || s->win[j] == '_')
			return NEEDLE_B64_URL;
		if (s->win[j] == '+' || s->win[j] == '/')
			return NEEDLE_B64_STD;
	}
	while (i > 0) {
		unsigned char ch = s->win[--i];

		if (ch == '-' || ch == '_' || ch == '.')
			return NEEDLE_B64_URL;
		if (ch == '+' || ch == '/')
			return NEEDLE_B64_STD;
		if (needles_b64_value(ch) < 0 && ch != '\\')
			return NEEDLE_B64_ANY;
	}
	if (s->tail.in_run && (s->tail.url || s->tail.std))
		return s->tail.url ? NEEDLE_B64_URL : NEEDLE_B64_STD;
	return s->tail.dot ? NEEDLE_B64_URL : NEEDLE_B64_ANY;
}

scrub_t *
scrub_copy(const scrub_t *s, enum scrub_mode mode)
{
	scrub_t *c = scrub_new(mode);

	for (size_t i = 0; c != NULL && i < s->n; i++)
		if (scrub_add(c, s->v[i].needle, s->v[i].nlen, s->v[i].repl, s->v[i].rlen) < 0) {
			scrub_free(c);
			c = NULL;
		}
	return c;
}

static void
rw_start(scrub_t *s, const struct scrub_cand *c)
{
	uint8_t alpha = rw_alpha(s, c);

	if (s->inner == NULL)
		s->inner = scrub_copy(s, SCRUB_LITERAL);
	if (s->outer == NULL)
		s->outer = scrub_copy(s, SCRUB_LITERAL);
	memset(&s->rw, 0, sizeof(s->rw));
	s->rw.on = true;
	s->rw.view = c->view;
	s->rw.alpha = alpha;
	s->rw.pos = c->start;
	s->rw.before = s->inner ? scrub_replacements(s->inner) : 0;
	s->rewrites++;
	s->best.set = false;
	s->npend = 0;
}

/* The run ended at raw offset at (that symbol is not the run's): back to scanning. */
static void
rw_finish_at(scrub_t *s, uint64_t at)
{
	rw_end(s);
	scrub_drop_raw(s, at);
	view_restart(s, at);
}

/* Feed held raw bytes to the run. true when the run ended (views restarted). */
static bool
rw_run(scrub_t *s, bool final)
{
	unescape_out_t o;
	uint64_t at;

	while (s->rw.pos < s->wbase + s->wlen) {
		unsigned char b = s->win[s->rw.pos - s->wbase];

		o.n = 0;
		if (s->rw.view == 0)
			o.v[o.n++] = (unescape_sym_t){s->rw.pos, b};
		else
			unescape_byte(&s->rw.dec, b, s->rw.pos, &o);
		s->rw.pos++;
		for (size_t j = 0; j < o.n; j++)
			if (!rw_symbol(s, o.v[j].c)) {
				rw_finish_at(s, o.v[j].start);
				return true;
			}
	}
	if (final) {
		o.n = 0;
		unescape_flush(&s->rw.dec, &o);
		for (size_t j = 0; j < o.n; j++)
			if (!rw_symbol(s, o.v[j].c)) {
				rw_finish_at(s, o.v[j].start);
				return true;
			}
		rw_finish_at(s, s->wbase + s->wlen);
		return true;
	}
	/* consumed bytes are replaced by what the encoder wrote; an open escape stays */
	scrub_drop_raw(s, unescape_pending(&s->rw.dec, &at) ? at : s->rw.pos);
	return false;
}

/* --- the scan -------------------------------------------------------------------------- */

/* Take every match that can no longer be beaten. true when one was taken. */
static bool
scrub_settle(scrub_t *s, bool final)
{
	if (!s->best.set)
		return false;
	if (!final && s->best.start >= scrub_hold(s))
		return false;
	scrub_take(s);
	return true;
}

static uint64_t
scrub_skip(const scrub_t *s, uint64_t pos, uint64_t end)
{
	if (s->vi.st != 0 || s->vu.diverged || s->best.set || s->npend > 0)
		return pos;
	return pos + needles_skip(s->ac, s->win + (pos - s->wbase), (size_t)(end - pos));
}

/* Run the views over the window; take matches as they become final. */
static void
scrub_scan(scrub_t *s, bool final)
{
	for (;;) {
		uint64_t end = s->wbase + s->wlen;

		if (s->rw.on && !rw_run(s, final))
			return;
		while (s->scanned < end) {
			uint64_t pos = scrub_skip(s, s->scanned, end);

			s->scanned = pos;
			if (pos == end)
				break;
			scrub_step(s, s->win[pos - s->wbase], pos);
			s->scanned = pos + 1;
			if (scrub_settle(s, false))
				break;	/* views restarted after the match (or a run began) */
		}
		if (s->rw.on || s->scanned < s->wbase + s->wlen)
			continue;
		if (!final)
			return;
		if (s->vu.diverged) {
			unescape_out_t o;

			o.n = 0;
			unescape_flush(&s->vu.dec, &o);
			for (size_t j = 0; j < o.n; j++)
				vu_symbol(s, &o.v[j], end);
		}
		s->npend = 0;	/* no character will come to check them */
		if (!scrub_settle(s, true))
			return;
	}
}

static int
scrub_win_reserve(scrub_t *s, size_t more)
{
	size_t want = s->wlen + more;
	unsigned char *nw;

	if (want <= s->wcap)
		return 0;
	if (want < SCRUB_CHUNK * 2)
		want = SCRUB_CHUNK * 2;
	if ((nw = malloc(want)) == NULL)
		return -1;
	if (s->wlen > 0)
		memcpy(nw, s->win, s->wlen);
	scrub_win_free(s);
	s->win = nw;
	s->wcap = want;
	return 0;
}

static int
scrub_begin(scrub_t *s, scrub_emit_fn emit, void *arg)
{
	if (!s->busy && scrub_compile(s) < 0)	/* new needles wait for a new message */
		return -1;
	s->emit = emit;
	s->arg = arg;
	if (!s->busy) {
		s->busy = true;
		s->wbase = 0;
		s->wlen = 0;
		view_restart(s, 0);
	}
	return 0;
}

int
scrub_feed(scrub_t *s, const void *in, size_t len, scrub_emit_fn emit, void *arg)
{
	const unsigned char *p = in;

	if (len == 0)
		return 0;
	if (s->n == 0 && !s->busy) {
		emit(arg, in, len);
		return 0;
	}
	if (scrub_begin(s, emit, arg) < 0)
		return -1;
	while (len > 0) {
		size_t take = len < SCRUB_CHUNK ? len : SCRUB_CHUNK;

		if (scrub_win_reserve(s, take) < 0)
			return -1;
		memcpy(s->win + s->wlen, p, take);
		s->wlen += take;
		scrub_scan(s, false);
		if (!s->rw.on) {
			uint64_t safe = scrub_hold(s);

			if (s->best.set && s->best.start < safe)
				safe = s->best.start;
			scrub_emit_raw(s, safe);
		}
		p += take;
		len -= take;
	}
	return 0;
}

int
scrub_finish(scrub_t *s, scrub_emit_fn emit, void *arg)
{
	if (!s->busy)
		return 0;
	s->emit = emit;
	s->arg = arg;
	scrub_scan(s, true);
	scrub_emit_raw(s, s->wbase + s->wlen);
	if (s->draining)
		(void)scrub_finish(s->outer, s->emit, s->arg);
	s->draining = false;
	s->busy = false;
	return 0;
}

void
scrub_reset(scrub_t *s)
{
	if (s->win != NULL)
		sodium_memzero(s->win, s->wcap);
	s->wlen = 0;
	s->wbase = 0;
	s->busy = false;
	rw_free(s);
	if (s->inner != NULL)
		scrub_reset(s->inner);
	if (s->outer != NULL)
		scrub_reset(s->outer);
	s->draining = false;
	view_restart(s, 0);
	s->replaced = 0;
	s->rewrites = 0;
}

size_t
scrub_replacements(const scrub_t *s)
{
	return s->replaced;
}

size_t
scrub_rewrites(const scrub_t *s)
{
	return s->rewrites;
}
