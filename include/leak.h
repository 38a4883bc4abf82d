/*
 * leak.h — find handles hidden by an encoding (exfiltration attempts).
 * Pure core: no allocation, no sockets, no clocks; thread-safe (state is the caller's).
 *
 * Raw "sgh1." handles are found and authorised by inject_find + authz; this module finds
 * the prefix "sgh1." when it is encoded:
 *
 *   percent      %73gh1%2E, any subset of characters, upper/lower hex, nested up to
 *                three times (%2573, %%37%33 -> %73 -> s), and once more after the
 *                escape decoding below (\u0025 73 -> %73 -> s)
 *   json-escape  \u0073 \x73 \u{73}, mixed (s\u0067h1.), \/ ; a run of backslashes
 *                counts as one, so JSON-in-JSON (\\u0073) is found too
 *   html-entity  &#115; &#x73; &#X73; (the ';' may be missing; leading zeros allowed)
 *   base64       standard or url-safe, padded or not, of any text that holds "sgh1." at
 *   base64url    any byte alignment: one of the 6-character runs "c2doMS" (alignment 0),
 *                "NnaDEu" (1), "zZ2gxL" (2) — the characters every encoding of "sgh1."
 *                shares (no '+/-_' among them, so both alphabets); CR/LF inside the run
 *                is skipped (MIME line breaks)
 *   hex          736768312e, either case; spaces, tabs, CR/LF and ':' between digits
 *                are skipped ("73 67 68 31 2e", "73:67:...")
 *
 * Base64 and hex are matched both on the raw bytes and after percent / escape decoding
 * (so "%" in front cannot hide them, and percent-encoded base64 is still found).
 * Decoded text is compared case-sensitively ("SGH1." is not a handle prefix). A match
 * with skipped bytes must fit in the last LEAK_HIST (32) bytes of its stage. The
 * encoding name of a base64 hit is "base64url" when the last of '+' '/' '-' '_' in the
 * base64 run before the match is '-' or '_', else "base64" (both alphabets share the
 * matched characters, so the name is a hint).
 *
 * Not covered: base64 of base64, hex of base64, gzip, octal / named HTML entities,
 * UTF-16, or a handle sent without its prefix. This is a tripwire, not a proof.
 *
 * Cost: a fixed chain of byte-at-a-time decoders, O(len) with a small constant, no
 * allocation for any length. Decoding state lives in leak_stream_t (a few hundred
 * bytes, no copy of the input), so a hit split across feeds is found the same way as
 * in one buffer.
 */
#ifndef SEALGATE_LEAK_H
#define SEALGATE_LEAK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct leak_hit {
	const char *encoding;	/* static: "percent" "base64" "base64url" "json-escape"
				 * "hex" "html-entity", or "raw" (leak_stream_init only) */
	size_t off;		/* where the encoded prefix starts: offset into buf for
				 * leak_scan, into the whole stream for leak_stream_* */
} leak_hit_t;

/*
 * Does buf hold an encoded handle prefix? 1 with *hit set to the first one (the one
 * whose last byte comes first), 0 when clean. A raw "sgh1." is not a hit.
 */
int leak_scan(const void *buf, size_t len, leak_hit_t *hit) __attribute__((nonnull(3)));

/* --- streaming (request bodies) ---------------------------------------------------- */

/* Internal state; treat as opaque. */
#define LEAK_PEND_MAX	16
#define LEAK_HIST	32
#define LEAK_NPCT	4

struct leak_item {
	uint64_t off;		/* stream offset of the first byte it was decoded from */
	unsigned char c;	/* decoded byte (0xff stands for any non-ASCII code point) */
	unsigned char flags;	/* encodings applied to produce it */
};

struct leak_pct {		/* one percent-decoding stage */
	struct leak_item pend[2];
	unsigned char n;
};

struct leak_esc {		/* the JSON/JS escape + HTML entity stage */
	struct leak_item pend[LEAK_PEND_MAX];
	unsigned char n, state, digits;
	uint32_t val;
};

struct leak_match {		/* pattern matcher on one stage's output */
	struct leak_item ring[LEAK_HIST];	/* the newest items */
	unsigned n, seen;			/* next slot; items held (<= LEAK_HIST) */
	unsigned char b64kind;			/* alphabet seen in the current base64 run */
};

typedef struct leak_stream {
	struct leak_pct pct[LEAK_NPCT];
	struct leak_esc esc;
	struct leak_match raw, dec;
	uint64_t pos;			/* bytes fed so far */
	bool raw_is_hit;
	bool done;			/* a hit was found (sticky) */
	leak_hit_t hit;
} leak_stream_t;

/* A stream for which a raw "sgh1." is a hit too ("raw"): stop a body upload early. */
void leak_stream_init(leak_stream_t *ls) SG_NONNULL;
/* A stream that, like leak_scan, reports only encoded prefixes. */
void leak_stream_init_encoded(leak_stream_t *ls) SG_NONNULL;

/*
 * Feed the next len bytes. Returns 1 with *hit set when a prefix has appeared anywhere in
 * the stream so far (also split across feeds); once that happens every later call returns
 * 1 with the same hit. 0 otherwise.
 */
int leak_stream_feed(leak_stream_t *ls, const void *buf, size_t len, leak_hit_t *hit)
    __attribute__((nonnull(1, 4)));

/*
 * End of stream: resolves an HTML entity still waiting for its optional ';'
 * ("sgh1&#46" at the very end). Same return as leak_stream_feed. leak_scan ==
 * init_encoded + feed(s) + finish.
 */
int leak_stream_finish(leak_stream_t *ls, leak_hit_t *hit) SG_NONNULL;

#endif
