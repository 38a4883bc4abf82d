/*
 * unescape.h — a streaming decoder of the escapes text formats put around characters:
 * JSON/JS string escapes (\uXXXX either hex case, \xHH, \/ \\ \" \' \b \f \n \r \t),
 * percent-encoding (%2f / %2F) and HTML/XML character references (&#DD; &#xHH; &#XHH;
 * with leading zeros, ';' optional for numeric ones; &amp; &lt; &gt; &quot; &apos;
 * &sol; &plus; &equals; &colon;). Pure core over bytes.
 *
 * Each input byte yields zero or more symbols: decoded bytes, each with the raw offset
 * where its escape began (a code point becomes its UTF-8 bytes, sharing one offset).
 * Text that only looked like the start of an escape ("100%", "\q", "&bogus;") comes
 * out unchanged, a symbol per byte. Escapes are decoded once: "%2541" is "%41".
 * Not decoded: surrogate pairs (each \uD8xx half is its own code point), named
 * references other than those listed, octal escapes.
 */
#ifndef SEALGATE_UNESCAPE_H
#define SEALGATE_UNESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Raw bytes one escape may span ("&#x0010FFFF;") before it counts as literal text. */
#define UNESCAPE_PEND_MAX	16
/* Symbols one input byte can yield (an unfinished escape's bytes, then the byte). */
#define UNESCAPE_SYMS_MAX	(UNESCAPE_PEND_MAX + 4)

typedef struct unescape_sym {
	uint64_t start;			/* raw offset of the escape (or byte) it came from */
	unsigned char c;
} unescape_sym_t;

typedef struct unescape_out {
	unescape_sym_t v[UNESCAPE_SYMS_MAX];
	size_t n;			/* the caller sets 0 before each call */
} unescape_out_t;

/* Decoder state (treat as opaque); zero it or unescape_init it. */
typedef struct unescape {
	uint8_t state;
	uint8_t npend;
	uint8_t ndig;
	uint8_t need;			/* \u: 4 digits, \x: 2 */
	uint32_t val;
	uint64_t pstart;		/* raw offset of pend[0] */
	unsigned char pend[UNESCAPE_PEND_MAX];
} unescape_t;

/* Ready for the next byte; an escape under way is forgotten. */
void unescape_init(unescape_t *u) SG_NONNULL;
/* The byte b at raw offset pos: appends its symbols to o. */
void unescape_byte(unescape_t *u, unsigned char b, uint64_t pos, unescape_out_t *o)
    SG_NONNULL;
/* End of input: an unfinished escape is text, but a numeric reference without ';' is
 * decoded. */
void unescape_flush(unescape_t *u, unescape_out_t *o) SG_NONNULL;
/* Is an escape under way? *start: where it began. */
bool unescape_pending(const unescape_t *u, uint64_t *start) SG_NONNULL;
/* Can b follow the introducer intro ('\\', '%', '&') in an escape? (false for others) */
bool unescape_may_follow(unsigned char intro, unsigned char b);

#endif
