/*
 * needles.h — the needle set of a scrubber: every pattern its secrets are looked for as,
 * compiled into one Aho-Corasick automaton. Pure core over bytes.
 *
 * For each secret (source i):
 *   raw      its bytes                                        (NEEDLE_RAW)
 * and, when built with forms:
 *   plus     its bytes with '+' for every space, if it has any  (NEEDLE_RAW)
 *   hex      lower-case and upper-case hex of it                (NEEDLE_HEX_LO/_UP)
 *   spaced   lower-case hex with one space between bytes, "41 4b 49": how S3 echoes a
 *            canonical request (CanonicalRequestBytes of SignatureDoesNotMatch) (NEEDLE_HEX_SP)
 *   base64   the core of its encoding at byte alignments 0, 1, 2, in the standard and
 *            the url-safe alphabets (one pattern when both spell it alike) (NEEDLE_B64)
 * Patterns with the same bytes (a secret's base64 core that is another's raw bytes) end
 * at the same state and are chained through needle_pat_t.same.
 *
 * A needles_t is read-only once built: any thread may step it. Its edges spell the
 * secrets byte by byte: needles_free zeroes them (and the tables) before freeing.
 */
#ifndef SEALGATE_NEEDLES_H
#define SEALGATE_NEEDLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters of a base64 group that may stand before a core (alignment 2: three). */
#define NEEDLES_B64_LEFT	3
/* Shortest base64 core kept: shorter ones would match innocent text. */
#define NEEDLES_MIN_CORE	4

enum needle_kind { NEEDLE_RAW, NEEDLE_HEX_LO, NEEDLE_HEX_UP, NEEDLE_B64, NEEDLE_HEX_SP };
enum needle_alpha { NEEDLE_B64_ANY, NEEDLE_B64_STD, NEEDLE_B64_URL };

/* A secret to build patterns from (bytes copied while building). */
typedef struct needle_src {
	const unsigned char *bytes;
	size_t len;
} needle_src_t;

typedef struct needle_pat {
	uint32_t needle;		/* index of its source */
	uint32_t len;			/* pattern length in bytes */
	uint8_t kind;			/* enum needle_kind */
	uint8_t alpha;			/* NEEDLE_B64: enum needle_alpha */
	uint8_t left;			/* NEEDLE_B64: group characters before the core */
	uint8_t lmask, lbits;		/* NEEDLE_B64: bits of the character before the core */
	uint8_t rmask, rbits;		/* NEEDLE_B64: bits of the character after it (0: none) */
	uint32_t same;			/* next pattern + 1 with the same bytes, 0: none */
} needle_pat_t;

typedef struct needles_state {
	uint32_t fail;			/* longest proper suffix that is a state */
	uint32_t dict;			/* nearest suffix state that ends a pattern, 0: none */
	uint32_t pat;			/* first pattern + 1 ending exactly here, 0: none */
	uint32_t edge;			/* first of nedge edges in edges[] */
	uint32_t depth;			/* bytes from the root */
	uint16_t nedge;
} needles_state_t;

typedef struct needles_edge {
	uint32_t to;
	uint8_t b;
} needles_edge_t;

/* The automaton; fields are read by the inline stepping below. */
typedef struct needles {
	needles_state_t *st;		/* st[0] is the root */
	size_t nst;
	needles_edge_t *edges;
	uint32_t root[256];		/* transitions of the root (0: stay) */
	needle_pat_t *pat;
	size_t npat;
	size_t maxlen;			/* longest pattern */
	/* bytes (a, b) where a pattern, or with forms an escape, may start: bit a | b << 8 */
	uint8_t pairs[65536 / 8];
	/* their first bytes, and the same as nibble tables for a 16-byte scan (shufti:
	 * byte b may start when lo[b & 15] & hi[b >> 4] != 0; a superset when more than
	 * eight high nibbles occur) */
	bool first[256];
	uint8_t nib_lo[16], nib_hi[16];
} needles_t;

extern const char needles_b64_std[];	/* A-Z a-z 0-9 + / */
extern const char needles_b64_url[];	/* A-Z a-z 0-9 - _ */
extern const char needles_hex_lo[], needles_hex_up[];

/*
 * Patterns of src[0..n) — raw only, or every form — and their automaton. NULL when out
 * of memory. With forms, '\\', '%' and '&' followed by a byte that can continue an escape
 * also count as possible starts (needles_skip stops there).
 */
needles_t *needles_build(const needle_src_t *src, size_t n, bool forms);
void needles_free(needles_t *a);

/* The state after b from state st (0: the root). */
static inline uint32_t
needles_next(const needles_t *a, uint32_t st, unsigned char b)
{
	for (;;) {
		const needles_state_t *s;

		if (st == 0)
			return a->root[b];
		s = &a->st[st];
		for (uint16_t i = 0; i < s->nedge; i++)
			if (a->edges[s->edge + i].b == b)
				return a->edges[s->edge + i].to;
		st = s->fail;
	}
}

/* Does some pattern end at state st? (Walk: st if it has pat, then the dict links.) */
static inline bool
needles_ends(const needles_t *a, uint32_t st)
{
	return a->st[st].pat != 0 || a->st[st].dict != 0;
}

/*
 * From the root: the first i in p[0..n-1) where a pattern (or an escape) may start,
 * judged by the pair p[i], p[i+1]; n - 1 when none (the last byte needs the next one).
 * 16 bytes at a time where the CPU has SSSE3.
 */
size_t needles_skip(const needles_t *a, const unsigned char *p, size_t n);

/* Value of a base64 character of either alphabet, or -1. */
int needles_b64_value(unsigned char c);
/* Do the bits of c, the character before / after pattern p's core, match the secret's? */
bool needles_b64_left_ok(const needle_pat_t *p, unsigned char c);
bool needles_b64_right_ok(const needle_pat_t *p, unsigned char c);

#endif
