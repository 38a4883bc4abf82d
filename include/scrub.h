/*
 * scrub.h — streaming multi-needle replacement. Pure core over bytes.
 *
 * Two modes:
 *
 *   SCRUB_LITERAL  exact needles replaced by their replacements (request bodies: a handle
 *                  or placeholder becomes the secret).
 *   SCRUB_FORMS    secrets coming back from an upstream are replaced by their handles,
 *                  also when the upstream encoded them (responses: headers, bodies,
 *                  trailers, WebSocket frames). Each secret is looked for as:
 *
 *     raw          the bytes themselves                      -> the replacement
 *     escaped      JSON/JS string escapes (\uXXXX for any character, either hex case,
 *                  \/ \\ \" \' \b \f \n \r \t \xHH), percent-encoding (%2f or %2F, any
 *                  subset of characters; '+' for a space), HTML/XML character references
 *                  (&#DD; &#xHH; &#XHH; leading zeros, ';' optional for numeric ones;
 *                  &amp; &lt; &gt; &quot; &apos; &sol; &plus; &equals; &colon;), mixed
 *                  freely with literal characters             -> the replacement, raw
 *     hex          all lower-case or all upper-case          -> hex of the replacement,
 *                                                               same case
 *     spaced hex   lower-case, a space between bytes ("41 4b": S3's CanonicalRequestBytes)
 *                                                            -> the same of the replacement
 *     base64       standard or url-safe, padded or not, of any text holding the secret
 *                  at any of the three byte alignments (a Basic echo, a JWT payload),
 *                  also inside an escaped string ("\/" in PHP's JSON)
 *                  -> the base64 run is re-encoded from the 4-character group holding
 *                  the secret's first byte to the run's end with the replacement in
 *                  place of the secret (and of any other secret in that run): decoding
 *                  the result gives the original bytes with the replacement. The run's
 *                  alphabet is kept (url-safe when it holds '-' or '_' or follows a
 *                  '.', else standard) and its padding style ('=' when it had them, or
 *                  when a standard run's length was a multiple of 4).
 *
 *   Replacements are expected to be plain text ([A-Za-z0-9._-] handles, a marker): they
 *   are valid unescaped in JSON, URLs and HTML, so the message stays well-formed.
 *   Not covered: encodings nested in each other (base64 of hex, percent of base64,
 *   JSON escapes inside JSON strings), mixed-case hex, base64 with a line break inside
 *   the secret's part, UTF-16, surrogate-pair escapes, secrets under SCRUB_MIN_NEEDLE.
 *
 * Matching is leftmost-longest and non-overlapping, scanning left to right: at the
 * leftmost raw position where any form of any needle matches, the longest match there
 * is replaced and the scan starts afresh after it. All needles and forms are found in
 * one pass (an Aho-Corasick automaton over raw bytes, and the same automaton over the
 * unescaped view of the bytes; the two share their state while no escape is seen). The
 * output is the same whatever the splits of the input.
 *
 * Memory is bounded: the scrubber holds back only bytes that may still be part of a
 * match (at most the longest form of a secret plus a few bytes of context, in raw bytes
 * through escapes), in a scratch buffer that is zeroed when reset or freed. Needles and
 * replacements are copied into wipe memory (secmem_wipe_alloc) and zeroed on free.
 * A scrub_t is not thread-safe: one per message stream.
 */
#ifndef SEALGATE_SCRUB_H
#define SEALGATE_SCRUB_H

#include <stddef.h>

#include "util.h"

/* Shortest needle: shorter ones would replace innocent bytes. */
#define SCRUB_MIN_NEEDLE	4
/* Longest needle: the largest secret policy accepts (SG_SECRET_MAX_LEN). */
#define SCRUB_MAX_NEEDLE	8192
/* Longest replacement (a handle, or a redaction marker). */
#define SCRUB_MAX_REPL		16384
/* Input processed per pass: bounds the scratch buffer. */
#define SCRUB_CHUNK		16384
/* Needles (secrets) per scrubber: a connection injects a few; this bounds the automaton. */
#define SCRUB_MAX_NEEDLES	256

enum scrub_mode { SCRUB_LITERAL = 0, SCRUB_FORMS = 1 };

typedef struct scrub scrub_t;

/* Receives output bytes, in order; may be called several times per feed. */
typedef void (*scrub_emit_fn)(void *arg, const void *data, size_t len);

/* An empty scrubber (no needles: bytes pass through). NULL on allocation failure. */
scrub_t *scrub_new(enum scrub_mode mode) SG_WUR;

/*
 * Replace needle[0..nlen) (and, in SCRUB_FORMS, its encoded forms) by repl[0..rlen).
 * Both are copied; a needle added again keeps one entry and takes the new replacement.
 * Added while a message is under way, it applies to every byte not yet written (the
 * held ones are scanned again). -1 when nlen is outside SCRUB_MIN_NEEDLE..
 * SCRUB_MAX_NEEDLE, rlen > SCRUB_MAX_REPL, the scrubber holds SCRUB_MAX_NEEDLES, or on
 * allocation failure.
 */
int scrub_add(scrub_t *s, const void *needle, size_t nlen, const void *repl, size_t rlen)
    __attribute__((nonnull(1, 2))) SG_WUR;

/* Feed the next len bytes of the message; emits what is decided. 0, or -1 (no memory). */
int scrub_feed(scrub_t *s, const void *in, size_t len, scrub_emit_fn emit, void *arg)
    __attribute__((nonnull(1, 4))) SG_WUR;

/* End of message: emit the held tail. The scrubber is then ready for a new message. */
int scrub_finish(scrub_t *s, scrub_emit_fn emit, void *arg) __attribute__((nonnull(1, 2)));

/* Drop (and zero) any held bytes and the replacement count; needles stay. */
void scrub_reset(scrub_t *s) SG_NONNULL;

/* Replacements made since scrub_new or scrub_reset (a re-encoded base64 run counts the
 * secrets replaced inside it). */
size_t scrub_replacements(const scrub_t *s) SG_NONNULL;

/* Base64 runs re-encoded since scrub_new or scrub_reset. */
size_t scrub_rewrites(const scrub_t *s) SG_NONNULL;

/* Needles added (distinct). */
size_t scrub_needles(const scrub_t *s) SG_NONNULL;

/* A new scrubber in mode with the same needles and replacements (NULL: no memory). */
scrub_t *scrub_copy(const scrub_t *s, enum scrub_mode mode) SG_NONNULL SG_WUR;

/* Zero and free needles, replacements and buffers. NULL is fine. */
void scrub_free(scrub_t *s);

#endif
