/*
 * scrub.h — streaming multi-needle replacement for responses: a real secret that comes
 * back from an upstream is replaced by its handle before the sandbox sees it, also when
 * it is split across reads. Pure core over bytes.
 *
 * Matching is leftmost-longest and non-overlapping, scanning left to right: at the first
 * position where any needle matches, the longest needle matching there is replaced
 * (equal lengths: the one added first) and the scan resumes after it. The output equals
 * that of the same replacement done on the whole message at once, whatever the splits.
 *
 * Memory is bounded: between calls at most (longest needle - 1) bytes are held back, in a
 * scratch buffer of that size plus SCRUB_CHUNK that is zeroed when reset or freed.
 * Needles are copied into wipe memory (util_wipe_alloc) and zeroed
 * on free. A scrub_t is not thread-safe: one per response stream.
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

typedef struct scrub scrub_t;

/* Receives output bytes, in order; may be called several times per feed. */
typedef void (*scrub_emit_fn)(void *arg, const void *data, size_t len);

/* An empty scrubber (no needles: bytes pass through). NULL on allocation failure. */
scrub_t *scrub_new(void) SG_WUR;

/*
 * Replace needle[0..nlen) by repl[0..rlen) from now on. Both are copied; a needle added
 * again keeps one entry and takes the new replacement. -1 when nlen
 * is outside SCRUB_MIN_NEEDLE..SCRUB_MAX_NEEDLE, rlen > SCRUB_MAX_REPL, or on
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

/* Replacements made since scrub_new or scrub_reset. */
size_t scrub_replacements(const scrub_t *s) SG_NONNULL;

/* Zero and free needles, replacements and buffers. NULL is fine. */
void scrub_free(scrub_t *s);

#endif
