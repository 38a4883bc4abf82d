/*
 * leak.c — encoded handle prefixes, found by a chain of byte-at-a-time decoders.
 *
 *   input --> [raw matcher: base64, hex]
 *         --> pct0 --> pct1 --> pct2 --> esc --> pct3 --> [dec matcher: sgh1., base64, hex]
 *
 * Every stage passes bytes it does not decode through unchanged and in order, and emits
 * everything it holds before it takes the next byte that cannot continue an escape, so
 * a raw "sgh1." reaches the dec matcher with flags 0 and nothing else does.
 * The stages carry their own pending bytes, so feeding in pieces is the same as feeding
 * all at once.
 */
#include <string.h>

#include "handle.h"
#include "leak.h"
#include "util.h"

#define F_PCT	0x01
#define F_JSON	0x02
#define F_HTML	0x04

enum { ST_PCT0, ST_PCT1, ST_PCT2, ST_ESC, ST_PCT3, ST_DEC };

enum esc_state {
	E_IDLE, E_BS, E_U, E_UB, E_X, E_AMP, E_HASH, E_DEC, E_HX, E_HXD,
};

enum { B64_NONE, B64_STD, B64_URL };

#define ESC_MAX_DIGITS	8

static const char pat_prefix[] = HANDLE_PREFIX;		/* "sgh1." */
/* The characters all base64 encodings of "sgh1." share, by byte alignment 0, 1, 2. */
static const char *const pat_b64[3] = {"c2doMS", "NnaDEu", "zZ2gxL"};
#define PAT_B64_LEN	6
static const char pat_hex[] = "736768312e";
#define PAT_HEX_LEN	10

static int stage_push(leak_stream_t *ls, int st, struct leak_item it);

static bool
is_b64_core(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '=';
}

/* --- matchers ------------------------------------------------------------------------ */

static const struct leak_item *
ring_back(const struct leak_match *m, unsigned k)
{
	return &m->ring[(m->n - k) % LEAK_HIST];
}

static bool
skip_b64(unsigned char c)
{
	return c == '\r' || c == '\n';
}

static bool
skip_hex(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':';
}

static unsigned char
fold_hex(unsigned char c)
{
	return c >= 'A' && c <= 'F' ? (unsigned char)(c - 'A' + 'a') : c;
}

/*
 * Do the newest items spell pat, skipping items skip() accepts between its characters
 * (never before the newest)? Returns the matching item of pat[0], or NULL.
 */
static const struct leak_item *
ring_match(const struct leak_match *m, const char *pat, size_t plen, bool (*skip)(unsigned char),
    bool fold)
{
	size_t want = plen;
	unsigned k;

	for (k = 1; k <= LEAK_HIST && k <= m->seen; k++) {
		const struct leak_item *it = ring_back(m, k);
		unsigned char c = fold ? fold_hex(it->c) : it->c;

		if (c == (unsigned char)pat[want - 1]) {
			if (--want == 0)
				return it;
		} else if (k == 1 || skip == NULL || !skip(it->c)) {
			return NULL;
		}
	}
	return NULL;
}

static int
report(leak_stream_t *ls, const char *enc, uint64_t off)
{
	ls->done = true;
	ls->hit.encoding = enc;
	ls->hit.off = (size_t)off;
	return 1;
}

static const char *
flags_name(unsigned flags)
{
	if (flags & F_PCT)
		return "percent";
	if (flags & F_JSON)
		return "json-escape";
	if (flags & F_HTML)
		return "html-entity";
	return "raw";
}

static int
match_push(leak_stream_t *ls, struct leak_match *m, bool prefix, struct leak_item it)
{
	const struct leak_item *first;
	unsigned char c = it.c;

	m->ring[m->n % LEAK_HIST] = it;
	m->n = (m->n + 1) % LEAK_HIST;
	if (m->seen < LEAK_HIST)
		m->seen++;
	if (c == '+' || c == '/')
		m->b64kind = B64_STD;
	else if (c == '-' || c == '_')
		m->b64kind = B64_URL;
	else if (!is_b64_core(c) && !skip_b64(c))
		m->b64kind = B64_NONE;
	switch (c) {
	case '.':
		if (prefix &&
		    (first = ring_match(m, pat_prefix, HANDLE_PREFIX_LEN, NULL, false)) != NULL) {
			unsigned flags = 0;

			for (unsigned k = 1; k <= HANDLE_PREFIX_LEN; k++)
				flags |= ring_back(m, k)->flags;
			if (flags != 0 || ls->raw_is_hit)
				return report(ls, flags_name(flags), first->off);
		}
		return 0;
	case 'S':
	case 'u':
	case 'L':
		for (int a = 0; a < 3; a++)
			if (c == (unsigned char)pat_b64[a][PAT_B64_LEN - 1] &&
			    (first = ring_match(m, pat_b64[a], PAT_B64_LEN, skip_b64, false)) != NULL)
				return report(ls, m->b64kind == B64_URL ? "base64url" : "base64",
				    first->off);
		return 0;
	case 'e':
	case 'E':
		if ((first = ring_match(m, pat_hex, PAT_HEX_LEN, skip_hex, true)) != NULL)
			return report(ls, "hex", first->off);
		return 0;
	default:
		return 0;
	}
}

/* --- percent stage --------------------------------------------------------------------- */

static int
pct_push(leak_stream_t *ls, int st, struct leak_pct *p, struct leak_item it)
{
	int r;

	switch (p->n) {
	case 0:
		if (it.c == '%') {
			p->pend[0] = it;
			p->n = 1;
			return 0;
		}
		return stage_push(ls, st + 1, it);
	case 1:
		if (util_hex_nibble((char)it.c) >= 0) {
			p->pend[1] = it;
			p->n = 2;
			return 0;
		}
		p->n = 0;
		if ((r = stage_push(ls, st + 1, p->pend[0])) != 0)
			return r;
		return pct_push(ls, st, p, it);
	default:
		p->n = 0;
		if (util_hex_nibble((char)it.c) >= 0) {
			struct leak_item out = {
				.off = p->pend[0].off,
				.c = (unsigned char)(util_hex_nibble((char)p->pend[1].c) << 4 |
				    util_hex_nibble((char)it.c)),
				.flags = (unsigned char)(p->pend[0].flags | p->pend[1].flags |
				    it.flags | F_PCT),
			};

			return stage_push(ls, st + 1, out);
		}
		if ((r = stage_push(ls, st + 1, p->pend[0])) != 0 ||
		    (r = stage_push(ls, st + 1, p->pend[1])) != 0)
			return r;
		return pct_push(ls, st, p, it);
	}
}

static int
pct_flush(leak_stream_t *ls, int st, struct leak_pct *p)
{
	unsigned char n = p->n;
	int r;

	p->n = 0;
	for (unsigned char i = 0; i < n; i++)
		if ((r = stage_push(ls, st + 1, p->pend[i])) != 0)
			return r;
	return 0;
}

/* --- JSON/JS escape + HTML entity stage ----------------------------------------------- */

static void
esc_hold(struct leak_esc *e, struct leak_item it, unsigned char state)
{
	e->pend[e->n++] = it;
	e->state = state;
}

/* Emit everything pending unchanged. */
static int
esc_spill(leak_stream_t *ls, struct leak_esc *e)
{
	unsigned char n = e->n;
	int r;

	e->n = 0;
	e->state = E_IDLE;
	for (unsigned char i = 0; i < n; i++)
		if ((r = stage_push(ls, ST_ESC + 1, e->pend[i])) != 0)
			return r;
	return 0;
}

/* Emit the decoded code point for everything pending (+ it when take_it). */
static int
esc_decoded(leak_stream_t *ls, struct leak_esc *e, unsigned char flag, const struct leak_item *it)
{
	struct leak_item out = {.off = e->pend[0].off, .flags = flag};

	for (unsigned char i = 0; i < e->n; i++)
		out.flags |= e->pend[i].flags;
	if (it != NULL)
		out.flags |= it->flags;
	out.c = e->val <= 0x7f ? (unsigned char)e->val : 0xff;
	e->n = 0;
	e->state = E_IDLE;
	e->digits = 0;
	e->val = 0;
	return stage_push(ls, ST_ESC + 1, out);
}

/* Add a hex (base 16) or decimal digit; false when it is not one or there are too many. */
static bool
esc_digit(struct leak_esc *e, struct leak_item it, unsigned base)
{
	int v = util_hex_nibble((char)it.c);

	if (v < 0 || (base == 10 && v > 9) || e->digits >= ESC_MAX_DIGITS)
		return false;
	e->val = e->val * base + (unsigned)v;
	e->digits++;
	e->pend[e->n++] = it;
	return true;
}

static int
esc_push(leak_stream_t *ls, struct leak_esc *e, struct leak_item it)
{
	unsigned char c = it.c;
	int r;

	switch ((enum esc_state)e->state) {
	case E_IDLE:
		e->digits = 0;
		e->val = 0;
		if (c == '\\') {
			esc_hold(e, it, E_BS);
			return 0;
		}
		if (c == '&') {
			esc_hold(e, it, E_AMP);
			return 0;
		}
		return stage_push(ls, ST_ESC + 1, it);
	case E_BS:
		if (c == '\\') {	/* a run of backslashes is one escape introducer */
			e->pend[0].flags |= F_JSON | it.flags;
			return 0;
		}
		if (c == 'u') {
			esc_hold(e, it, E_U);
			return 0;
		}
		if (c == 'x') {
			esc_hold(e, it, E_X);
			return 0;
		}
		if (c == '/') {
			e->val = '/';
			return esc_decoded(ls, e, F_JSON, &it);
		}
		break;
	case E_U:
		if (c == '{' && e->digits == 0) {
			esc_hold(e, it, E_UB);
			return 0;
		}
		if (esc_digit(e, it, 16))
			return e->digits == 4 ? esc_decoded(ls, e, F_JSON, NULL) : 0;
		break;
	case E_UB:
		if (c == '}' && e->digits > 0)
			return esc_decoded(ls, e, F_JSON, &it);
		if (esc_digit(e, it, 16))
			return 0;
		break;
	case E_X:
		if (esc_digit(e, it, 16))
			return e->digits == 2 ? esc_decoded(ls, e, F_JSON, NULL) : 0;
		break;
	case E_AMP:
		if (c == '#') {
			esc_hold(e, it, E_HASH);
			return 0;
		}
		break;
	case E_HASH:
		if (c == 'x' || c == 'X') {
			esc_hold(e, it, E_HX);
			return 0;
		}
		if (esc_digit(e, it, 10)) {
			e->state = E_DEC;
			return 0;
		}
		break;
	case E_HX:
		if (esc_digit(e, it, 16)) {
			e->state = E_HXD;
			return 0;
		}
		break;
	case E_DEC:
	case E_HXD:
		if (c == ';')
			return esc_decoded(ls, e, F_HTML, &it);
		if (esc_digit(e, it, e->state == E_DEC ? 10 : 16))
			return 0;
		/* ';' is optional: decode, then take it afresh */
		if ((r = esc_decoded(ls, e, F_HTML, NULL)) != 0)
			return r;
		return esc_push(ls, e, it);
	}
	if ((r = esc_spill(ls, e)) != 0)
		return r;
	return esc_push(ls, e, it);
}

static int
esc_flush(leak_stream_t *ls, struct leak_esc *e)
{
	if (e->state == E_DEC || e->state == E_HXD)
		return esc_decoded(ls, e, F_HTML, NULL);
	return esc_spill(ls, e);
}

/* --- chain ------------------------------------------------------------------------------- */

static int
stage_push(leak_stream_t *ls, int st, struct leak_item it)
{
	switch (st) {
	case ST_PCT0:
	case ST_PCT1:
	case ST_PCT2:
		return pct_push(ls, st, &ls->pct[st - ST_PCT0], it);
	case ST_ESC:
		return esc_push(ls, &ls->esc, it);
	case ST_PCT3:
		return pct_push(ls, st, &ls->pct[3], it);
	default:
		return match_push(ls, &ls->dec, true, it);
	}
}

static void
stream_init(leak_stream_t *ls, bool raw_is_hit)
{
	memset(ls, 0, sizeof(*ls));
	ls->raw_is_hit = raw_is_hit;
}

void
leak_stream_init(leak_stream_t *ls)
{
	stream_init(ls, true);
}

void
leak_stream_init_encoded(leak_stream_t *ls)
{
	stream_init(ls, false);
}

/* No stage holds pending bytes: a byte that starts no escape passes every stage. */
static bool
chain_idle(const leak_stream_t *ls)
{
	return (ls->pct[0].n | ls->pct[1].n | ls->pct[2].n | ls->pct[3].n | ls->esc.n) == 0;
}

int
leak_stream_feed(leak_stream_t *ls, const void *buf, size_t len, leak_hit_t *hit)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len && !ls->done; i++) {
		struct leak_item it = {.off = ls->pos++, .c = p[i], .flags = 0};

		if (match_push(ls, &ls->raw, false, it) != 0)
			break;
		if (chain_idle(ls) && it.c != '%' && it.c != '\\' && it.c != '&')
			(void)match_push(ls, &ls->dec, true, it);	/* every stage passes it */
		else
			(void)stage_push(ls, ST_PCT0, it);
	}
	if (!ls->done)
		return 0;
	*hit = ls->hit;
	return 1;
}

int
leak_stream_finish(leak_stream_t *ls, leak_hit_t *hit)
{
	if (!ls->done &&
	    pct_flush(ls, ST_PCT0, &ls->pct[0]) == 0 &&
	    pct_flush(ls, ST_PCT1, &ls->pct[1]) == 0 &&
	    pct_flush(ls, ST_PCT2, &ls->pct[2]) == 0 &&
	    esc_flush(ls, &ls->esc) == 0)
		(void)pct_flush(ls, ST_PCT3, &ls->pct[3]);
	if (!ls->done)
		return 0;
	*hit = ls->hit;
	return 1;
}

/* --- pre-filter ------------------------------------------------------------------------ */

/*
 * Could pat (plen bytes) end at some byte of s[i..n) the way ring_match accepts it:
 * pat[0] at s[i], then each next character after any run of skip() bytes (folded
 * 'A'-'F' -> 'a'-'f' when fold)? No window limit, so this says yes to everything
 * ring_match could match and more.
 */
static bool
pf_run_at(const unsigned char *s, size_t i, size_t n, const char *pat, size_t plen,
    bool (*skip)(unsigned char), bool fold)
{
	size_t want = 1;

	for (i++; i < n && want < plen; i++) {
		unsigned char c = fold ? fold_hex(s[i]) : s[i];

		if (c == (unsigned char)pat[want])
			want++;
		else if (!skip(s[i]))
			return false;
	}
	return want == plen;
}

/*
 * Is leak_scan(s, n) certainly 0? True only when s holds no '%', no '\\', no "&#" and
 * nothing the raw matcher could match (a base64 anchor run or the hex run, with skipped
 * bytes). Then every stage passes every byte through unchanged, in order, with flags
 * 0 (pct0-2 hold only on '%'; esc holds only on '\\' and '&', and a '&' not followed
 * by '#' is spilled unchanged, so esc never decodes and emits no '%' for pct3), the
 * dec matcher sees exactly the bytes the raw matcher sees: its base64/hex checks see
 * what the raw matcher saw (no match), and its "sgh1." check needs flags != 0 (leak_scan
 * streams are encoded-only). leak_stream_finish then only flushes bytes unchanged (a
 * trailing '&'). So the full chain returns 0 too; anything else takes the full chain.
 */
static bool
pf_clean(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '%':
		case '\\':
			return false;
		case '&':
			if (i + 1 < n && s[i + 1] == '#')
				return false;
			break;
		case 'c':
			if (pf_run_at(s, i, n, pat_b64[0], PAT_B64_LEN, skip_b64, false))
				return false;
			break;
		case 'N':
			if (pf_run_at(s, i, n, pat_b64[1], PAT_B64_LEN, skip_b64, false))
				return false;
			break;
		case 'z':
			if (pf_run_at(s, i, n, pat_b64[2], PAT_B64_LEN, skip_b64, false))
				return false;
			break;
		case '7':
			if (pf_run_at(s, i, n, pat_hex, PAT_HEX_LEN, skip_hex, true))
				return false;
			break;
		default:
			break;
		}
	}
	return true;
}

int
leak_scan(const void *buf, size_t len, leak_hit_t *hit)
{
	leak_stream_t ls;

	if (len == 0 || buf == NULL || pf_clean(buf, len))
		return 0;	/* the chain would find nothing (pf_clean) */
	leak_stream_init_encoded(&ls);
	if (leak_stream_feed(&ls, buf, len, hit))
		return 1;
	return leak_stream_finish(&ls, hit);
}
