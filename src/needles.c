/*
 * needles.c — the patterns of a set of secrets and the Aho-Corasick automaton over them.
 *
 * A secret's base64 "cores" are the characters of its encoding, at each of the three
 * byte alignments, all of whose six bits come from the secret; the characters either
 * side (at most NEEDLES_B64_LEFT before it in its group, one after) hold some of the
 * secret's first and last bits, which needle_pat_t records for checking.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "needles.h"
#include "secmem.h"
#include "unescape.h"
#include "util.h"

const char needles_b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const char needles_b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const char needles_hex_lo[] = "0123456789abcdef";
const char needles_hex_up[] = "0123456789ABCDEF";

int
needles_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

bool
needles_b64_right_ok(const needle_pat_t *p, unsigned char c)
{
	int v = needles_b64_value(c);

	return v >= 0 && ((unsigned)v & p->rmask) == p->rbits;
}

bool
needles_b64_left_ok(const needle_pat_t *p, unsigned char c)
{
	int v = needles_b64_value(c);

	return v >= 0 && ((unsigned)v & p->lmask) == p->lbits;
}

/* --- patterns ----------------------------------------------------------------------- */

/* Pattern bytes are built into a wiped scratch list while the automaton is made. */
struct pat_src {
	needle_pat_t p;
	unsigned char *bytes;		/* wipe memory */
};

struct pat_list {
	struct pat_src *v;
	size_t n, cap;
};

static void
pat_list_free(struct pat_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		secmem_wipe_free(l->v[i].bytes);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Append a pattern (bytes copied). -1 on memory. */
static int
pat_push(struct pat_list *l, const needle_pat_t *p, const unsigned char *b, size_t n)
{
	struct pat_src *nv;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;

		if ((nv = realloc(l->v, cap * sizeof(*nv))) == NULL)
			return -1;
		l->v = nv;
		l->cap = cap;
	}
	if ((l->v[l->n].bytes = secmem_wipe_alloc(n)) == NULL)
		return -1;
	memcpy(l->v[l->n].bytes, b, n);
	l->v[l->n].p = *p;
	l->v[l->n].p.len = (uint32_t)n;
	l->n++;
	return 0;
}

/* Lower-case hex with a space between bytes ("41 4b 49"). */
static int
pat_hex_spaced(struct pat_list *l, uint32_t ni, const needle_src_t *nd)
{
	unsigned char *sp = secmem_wipe_alloc(nd->len * 3);
	needle_pat_t p = {.needle = ni, .kind = NEEDLE_HEX_SP};
	int rc;

	if (sp == NULL)
		return -1;
	for (size_t i = 0; i < nd->len; i++) {
		sp[3 * i] = (unsigned char)needles_hex_lo[nd->bytes[i] >> 4];
		sp[3 * i + 1] = (unsigned char)needles_hex_lo[nd->bytes[i] & 15];
		sp[3 * i + 2] = ' ';
	}
	rc = pat_push(l, &p, sp, nd->len * 3 - 1);
	secmem_wipe_free(sp);
	return rc;
}

static int
pat_hex(struct pat_list *l, uint32_t ni, const needle_src_t *nd)
{
	unsigned char *lo = secmem_wipe_alloc(nd->len * 2), *up = secmem_wipe_alloc(nd->len * 2);
	needle_pat_t p = {.needle = ni, .kind = NEEDLE_HEX_LO};
	int rc = -1;

	if (lo == NULL || up == NULL)
		goto done;
	for (size_t i = 0; i < nd->len; i++) {
		lo[2 * i] = (unsigned char)needles_hex_lo[nd->bytes[i] >> 4];
		lo[2 * i + 1] = (unsigned char)needles_hex_lo[nd->bytes[i] & 15];
		up[2 * i] = (unsigned char)needles_hex_up[nd->bytes[i] >> 4];
		up[2 * i + 1] = (unsigned char)needles_hex_up[nd->bytes[i] & 15];
	}
	if (pat_push(l, &p, lo, nd->len * 2) < 0)
		goto done;
	p.kind = NEEDLE_HEX_UP;
	rc = memcmp(lo, up, nd->len * 2) == 0 ? 0 : pat_push(l, &p, up, nd->len * 2);
	if (rc == 0 && nd->len > 1)
		rc = pat_hex_spaced(l, ni, nd);
done:
	secmem_wipe_free(lo);
	secmem_wipe_free(up);
	return rc;
}

/* 6-bit value k of the bit string (align zero bytes, secret, zero bytes). */
static unsigned
b64_sextet(const needle_src_t *nd, unsigned align, size_t k)
{
	size_t bit = 6 * k;
	unsigned v = 0;

	for (unsigned j = 0; j < 6; j++, bit++) {
		size_t byte = bit / 8;
		unsigned b = 0;

		if (byte >= align && byte - align < nd->len)
			b = (nd->bytes[byte - align] >> (7 - bit % 8)) & 1;
		v = (v << 1) | b;
	}
	return v;
}

/* The base64 core of one alignment, in one or both alphabets. */
static int
pat_b64(struct pat_list *l, uint32_t ni, const needle_src_t *nd, unsigned align)
{
	size_t lo_bit = 8 * align, hi_bit = 8 * (align + nd->len);
	size_t k0 = (lo_bit + 5) / 6, k1 = hi_bit / 6;	/* core: sextets [k0, k1) */
	unsigned char *std, *url;
	needle_pat_t p = {.needle = ni, .kind = NEEDLE_B64};
	int rc = -1;

	if (k1 <= k0 || k1 - k0 < NEEDLES_MIN_CORE)
		return 0;
	std = secmem_wipe_alloc(k1 - k0);
	url = secmem_wipe_alloc(k1 - k0);
	if (std == NULL || url == NULL)
		goto done;
	for (size_t k = k0; k < k1; k++) {
		unsigned v = b64_sextet(nd, align, k);

		std[k - k0] = (unsigned char)needles_b64_std[v];
		url[k - k0] = (unsigned char)needles_b64_url[v];
	}
	p.left = (uint8_t)k0;
	if (lo_bit % 6 != 0) {	/* the character before holds the first byte's top bits */
		p.lmask = (uint8_t)((1u << (6 * k0 - lo_bit)) - 1);
		p.lbits = (uint8_t)(b64_sextet(nd, align, k0 - 1) & p.lmask);
	}
	if (hi_bit % 6 != 0) {	/* the character after holds the last byte's low bits */
		p.rmask = (uint8_t)(0x3f & ~((1u << (6 - (hi_bit - 6 * k1))) - 1));
		p.rbits = (uint8_t)(b64_sextet(nd, align, k1) & p.rmask);
	}
	p.alpha = memcmp(std, url, k1 - k0) == 0 ? NEEDLE_B64_ANY : NEEDLE_B64_STD;
	if (pat_push(l, &p, std, k1 - k0) < 0)
		goto done;
	p.alpha = NEEDLE_B64_URL;
	rc = memcmp(std, url, k1 - k0) == 0 ? 0 : pat_push(l, &p, url, k1 - k0);
done:
	secmem_wipe_free(std);
	secmem_wipe_free(url);
	return rc;
}

/* A secret with spaces, as a form encoder writes it ('+' for ' '). */
static int
pat_plus(struct pat_list *l, uint32_t ni, const needle_src_t *nd)
{
	needle_pat_t p = {.needle = ni, .kind = NEEDLE_RAW};
	unsigned char *b;
	int rc;

	if (memchr(nd->bytes, ' ', nd->len) == NULL)
		return 0;
	if ((b = secmem_wipe_alloc(nd->len)) == NULL)
		return -1;
	for (size_t i = 0; i < nd->len; i++)
		b[i] = nd->bytes[i] == ' ' ? '+' : nd->bytes[i];
	rc = pat_push(l, &p, b, nd->len);
	secmem_wipe_free(b);
	return rc;
}

static int
pat_collect(const needle_src_t *src, size_t nsrc, bool forms, struct pat_list *l)
{
	for (uint32_t i = 0; i < nsrc; i++) {
		const needle_src_t *nd = &src[i];
		needle_pat_t p = {.needle = i, .kind = NEEDLE_RAW};

		if (pat_push(l, &p, nd->bytes, nd->len) < 0)
			return -1;
		if (!forms)
			continue;
		if (pat_plus(l, i, nd) < 0 || pat_hex(l, i, nd) < 0)
			return -1;
		for (unsigned a = 0; a < 3; a++)
			if (pat_b64(l, i, nd, a) < 0)
				return -1;
	}
	return 0;
}

/* --- the automaton ---------------------------------------------------------------- */

/* A trie under construction: children as sibling lists. */
struct trie {
	struct tnode {
		uint32_t child, sibling, pat, depth;
		uint8_t b;
	} *v;
	size_t n, cap;
};

static uint32_t
trie_child(const struct trie *t, uint32_t at, uint8_t b)
{
	for (uint32_t c = t->v[at].child; c != 0; c = t->v[c].sibling)
		if (t->v[c].b == b)
			return c;
	return 0;
}

/* Patterns with the same bytes (a secret's base64 core that is another's raw bytes)
 * all end at one state, chained through needle_pat_t.same. */
static int
trie_insert(struct trie *t, needle_pat_t *pats, const unsigned char *b, size_t n,
    uint32_t pat)
{
	uint32_t at = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t c = trie_child(t, at, b[i]);

		if (c == 0) {
			if (t->n == t->cap) {
				size_t cap = t->cap * 2;
				struct tnode *nv = realloc(t->v, cap * sizeof(*nv));

				if (nv == NULL)
					return -1;
				t->v = nv;
				t->cap = cap;
			}
			c = (uint32_t)t->n++;
			t->v[c] = (struct tnode){0, t->v[at].child, 0, (uint32_t)i + 1, b[i]};
			t->v[at].child = c;
		}
		at = c;
	}
	pats[pat].same = t->v[at].pat;
	t->v[at].pat = pat + 1;
	return 0;
}

/* Flatten the trie: states in insertion order, edges contiguous per state. */
static int
ac_flatten(needles_t *a, const struct trie *t)
{
	size_t ne = 0;

	a->nst = t->n;
	if ((a->st = calloc(t->n, sizeof(*a->st))) == NULL ||
	    (a->edges = calloc(t->n ? t->n : 1, sizeof(*a->edges))) == NULL)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		a->st[i].pat = t->v[i].pat;
		a->st[i].depth = t->v[i].depth;
		a->st[i].edge = (uint32_t)ne;
		for (uint32_t c = t->v[i].child; c != 0; c = t->v[c].sibling) {
			a->edges[ne++] = (needles_edge_t){c, t->v[c].b};
			a->st[i].nedge++;
		}
	}
	memset(a->root, 0, sizeof(a->root));
	for (uint16_t e = 0; e < a->st[0].nedge; e++)
		a->root[a->edges[a->st[0].edge + e].b] = a->edges[a->st[0].edge + e].to;
	return 0;
}

/* Failure and dictionary links, breadth first (a state's parent is done first). */
static int
ac_links(needles_t *a)
{
	uint32_t *queue = malloc(a->nst * sizeof(*queue));
	size_t head = 0, tail = 0;

	if (queue == NULL)
		return -1;
	for (uint16_t e = 0; e < a->st[0].nedge; e++)
		queue[tail++] = a->edges[a->st[0].edge + e].to;
	while (head < tail) {
		uint32_t u = queue[head++];
		needles_state_t *su = &a->st[u];

		for (uint16_t e = 0; e < su->nedge; e++) {
			const needles_edge_t *ed = &a->edges[su->edge + e];
			needles_state_t *sv = &a->st[ed->to];

			sv->fail = needles_next(a, su->fail, ed->b);
			sv->dict = a->st[sv->fail].pat ? sv->fail : a->st[sv->fail].dict;
			queue[tail++] = ed->to;
		}
	}
	free(queue);
	return 0;
}

static void
pair_set(needles_t *a, unsigned b0, unsigned b1)
{
	unsigned idx = b0 | b1 << 8;

	a->pairs[idx >> 3] |= (uint8_t)(1u << (idx & 7));
}

/* Bucket the first bytes by high nibble (exact for up to eight distinct ones). */
static void
ac_nibbles(needles_t *a)
{
	int bucket[16], nb = 0;

	memset(a->nib_lo, 0, sizeof(a->nib_lo));
	memset(a->nib_hi, 0, sizeof(a->nib_hi));
	for (int h = 0; h < 16; h++)
		bucket[h] = -1;
	for (unsigned b = 0; b < 256; b++) {
		if (!a->first[b])
			continue;
		if (bucket[b >> 4] < 0)
			bucket[b >> 4] = nb++ % 8;
		a->nib_hi[b >> 4] |= (uint8_t)(1u << bucket[b >> 4]);
		a->nib_lo[b & 15] |= (uint8_t)(1u << bucket[b >> 4]);
	}
}

static void
ac_skip_table(needles_t *a, const struct pat_list *l, bool forms)
{
	memset(a->pairs, 0, sizeof(a->pairs));
	memset(a->first, 0, sizeof(a->first));
	for (size_t i = 0; i < l->n; i++) {
		pair_set(a, l->v[i].bytes[0], l->v[i].bytes[1]);
		a->first[l->v[i].bytes[0]] = true;
	}
	if (!forms) {
		ac_nibbles(a);
		return;
	}
	/* escapes: an introducer and what can follow it; and any first byte whose next
	 * symbol is an escape ("l\u006b..." spells "lk...") */
	for (unsigned b = 0; b < 256; b++)
		for (const char *in = "\\%&"; *in; in++) {
			if (unescape_may_follow((unsigned char)*in, (unsigned char)b))
				pair_set(a, (unsigned char)*in, b);
			if (a->first[b])
				pair_set(a, b, (unsigned char)*in);
		}
	a->first['\\'] = a->first['%'] = a->first['&'] = true;
	ac_nibbles(a);
}

needles_t *
needles_build(const needle_src_t *src, size_t nsrc, bool forms)
{
	struct pat_list l = {0};
	struct trie t = {0};
	needles_t *a = calloc(1, sizeof(*a));

	t.cap = 64;
	if (a == NULL || (t.v = calloc(t.cap, sizeof(*t.v))) == NULL ||
	    pat_collect(src, nsrc, forms, &l) < 0)
		goto fail;
	t.n = 1;
	a->npat = l.n;
	if ((a->pat = calloc(l.n ? l.n : 1, sizeof(*a->pat))) == NULL)
		goto fail;
	for (size_t i = 0; i < l.n; i++) {
		a->pat[i] = l.v[i].p;
		if (a->pat[i].len > a->maxlen)
			a->maxlen = a->pat[i].len;
		if (trie_insert(&t, a->pat, l.v[i].bytes, l.v[i].p.len, (uint32_t)i) < 0)
			goto fail;
	}
	if (ac_flatten(a, &t) < 0 || ac_links(a) < 0)
		goto fail;
	ac_skip_table(a, &l, forms);
	free(t.v);
	pat_list_free(&l);
	return a;
fail:
	free(t.v);
	pat_list_free(&l);
	needles_free(a);
	return NULL;
}

void
needles_free(needles_t *a)
{
	if (a == NULL)
		return;
	/* the edges spell the secrets byte by byte, the tables their first bytes */
	if (a->edges != NULL)
		sodium_memzero(a->edges, a->nst * sizeof(*a->edges));
	if (a->st != NULL)
		sodium_memzero(a->st, a->nst * sizeof(*a->st));
	free(a->st);
	free(a->edges);
	free(a->pat);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

static inline bool
pair_may_start(const uint8_t *pairs, const unsigned char *p)
{
	unsigned idx = p[0] | (unsigned)p[1] << 8;

	return (pairs[idx >> 3] >> (idx & 7)) & 1;
}

/* The first i in p[0..n-1) where a pattern or an escape may start ("ab" in pairs). */
static size_t
next_start_scalar(const needles_t *a, const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i + 1 < n && !(a->first[p[i]] && pair_may_start(a->pairs, p + i)))
		i++;
	return i;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>

/* The same, 16 bytes at a time: first bytes by their nibbles (shufti), then the pair. */
__attribute__((target("ssse3"))) static size_t
next_start_ssse3(const needles_t *a, const unsigned char *p, size_t n)
{
	const __m128i lo = _mm_loadu_si128((const __m128i *)a->nib_lo);
	const __m128i hi = _mm_loadu_si128((const __m128i *)a->nib_hi);
	const __m128i low4 = _mm_set1_epi8(0x0f), zero = _mm_setzero_si128();
	size_t i = 0;

	for (; i + 17 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + i));
		__m128i l = _mm_shuffle_epi8(lo, _mm_and_si128(v, low4));
		__m128i h = _mm_shuffle_epi8(hi, _mm_and_si128(_mm_srli_epi16(v, 4), low4));
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(l, h),
		    zero)) ^ 0xffffu;

		for (; m != 0; m &= m - 1) {
			size_t j = i + (size_t)__builtin_ctz(m);

			if (a->first[p[j]] && pair_may_start(a->pairs, p + j))
				return j;
		}
	}
	return i + next_start_scalar(a, p + i, n - i);
}

static bool
have_ssse3(void)
{
	static int have = -1;

	if (have < 0)
		have = __builtin_cpu_supports("ssse3") ? 1 : 0;
	return have == 1;
}
#endif

size_t
needles_skip(const needles_t *a, const unsigned char *p, size_t n)
{
	if (n < 2)
		return 0;
#if defined(__x86_64__) && defined(__GNUC__)
	if (have_ssse3())
		return next_start_ssse3(a, p, n);
#endif
	return next_start_scalar(a, p, n);
}
