/*
 * decode.h — streaming Content-Encoding decoder for response bodies, so that the
 * scrubber sees plain bytes: gzip / x-gzip (RFC 1952, concatenated members), deflate
 * (zlib-wrapped RFC 1950 or raw RFC 1951, told apart by the first two bytes), br
 * (RFC 7932), zstd (RFC 8878, several frames in a row) and stacks of them
 * ("gzip, br": br is undone first). Pure core: bytes in, decoded bytes out through a
 * callback; no sockets, no clocks. One decoder per body, not thread-safe.
 *
 * Codings are HTTP tokens, case-insensitive, separated by commas with optional spaces
 * or tabs; empty list elements and "identity" are skipped. Anything else (compress,
 * sdch, dcb, dcz, unknown tokens, parameters) is DECODE_UNSUPPORTED. A value that is
 * empty or holds only "identity" needs no decoder. Several Content-Encoding header
 * lines are one list: join them with ", " in order.
 *
 * Strictness: bytes after the end of a deflate or br stream, or after a gzip member
 * that do not start another gzip member, are DECODE_CORRUPT, as are bad checksums
 * (gzip CRC-32, zlib Adler-32, zstd content checksum when present) and zlib preset
 * dictionaries, and zstd frames in the pre-1.0 legacy formats. An empty body decodes
 * to an empty body. zstd skippable frames are skipped. When a library call fails,
 * what it wrote in that call is not handed on.
 *
 * Limits (decode_limits_t): the callback never receives more than max_output bytes
 * in all, nor, once past ratio_slack bytes, more than max_ratio times the encoded
 * bytes the first stage has consumed so far; the decoder emits up to the bound and
 * fails with DECODE_LIMIT. Bounds are checked per output chunk as the data is
 * inflated, so a compression bomb costs the bound plus at most one chunk of work
 * (br, zstd: plus one window, which they fill before handing out).
 * A zstd frame whose window is above 8 MiB (DECODE_ZSTD_WINDOW_LOG) is DECODE_LIMIT.
 *
 * Memory per decoder, bounded whatever the input (decode_memory; measured in
 * test_decode): SG_DECODE_CHUNK (16 KiB) of output buffer per stage, plus per stage
 * its library's state:
 *   gzip, deflate  zlib's inflate state and 32 KiB window: ~40 KiB
 *   br             the stream's window as the sender declares it (at most 16 MiB;
 *                  large-window brotli is refused as corrupt) + ~100 KiB of tables
 *   zstd           the frame's window (at most 8 MiB) + ~480 KiB of context and block
 *                  buffers: ~8.5 MiB at most
 * Output is handed on per chunk; a body is never held whole.
 *
 * Secrets: decoded bytes may hold a secret, so every buffer the decoder or its
 * libraries allocate (windows included) is zeroed when freed. Error messages never
 * contain body bytes.
 */
#ifndef SEALGATE_DECODE_H
#define SEALGATE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

/* Stacked codings decoded in one body: real servers use one, a proxy may add one. */
#define DECODE_MAX_STAGES	4
/* zstd window accepted: RFC 9659 requires 8 MiB of decoders; more is refused (limit). */
#define DECODE_ZSTD_WINDOW_LOG	23
/* Room for a decode_new message naming a token (longer ones are cut, see decode_new). */
#define DECODE_WHY_MAX		96

typedef struct decode decode_t;

/* Receives decoded bytes, in order; called once per chunk (at most SG_DECODE_CHUNK). */
typedef void (*decode_emit_fn)(void *arg, const void *data, size_t len);

typedef struct decode_limits {
	uint64_t max_output;	/* decoded bytes per body, absolute */
	uint32_t max_ratio;	/* decoded ÷ encoded bytes consumed; 0: no ratio check */
	uint64_t ratio_slack;	/* ... the ratio is checked only once decoded > this */
} decode_limits_t;

enum decode_rc {
	DECODE_OK = 0,
	DECODE_UNSUPPORTED = -1,	/* a coding sealgate cannot decode, or too many */
	DECODE_CORRUPT = -2,		/* malformed, truncated or trailing data */
	DECODE_LIMIT = -3,		/* max_output, max_ratio or the zstd window */
	DECODE_NOMEM = -4,
};

/* The defaults: SG_DECODE_MAX_BYTES, SG_DECODE_MAX_RATIO, SG_DECODE_RATIO_SLACK. */
void decode_limits_default(decode_limits_t *lim) SG_NONNULL;

/*
 * Parse the Content-Encoding value[0..len) and make a decoder for it. lim NULL: the
 * defaults (copied). DECODE_OK with *out NULL: nothing to decode (empty, identity).
 * DECODE_OK with *out set: the caller owns it (decode_free). Else the rc, *out NULL,
 * and a NUL-terminated message in why[0..whylen) when why is not NULL, e.g.
 * "unsupported content coding \"compress\"" (a token that is not 1..32 token
 * characters is not quoted, only its length given).
 */
int decode_new(const char *value, size_t len, const decode_limits_t *lim, decode_t **out,
    char *why, size_t whylen) __attribute__((nonnull(4))) SG_WUR;

/*
 * Decode the next len bytes of the body; decoded bytes go to emit(arg, ...) before it
 * returns. DECODE_OK, or an error rc; after an error the decoder stays failed and
 * every later call returns the same rc without calling emit.
 */
int decode_feed(decode_t *d, const void *in, size_t len, decode_emit_fn emit, void *arg)
    __attribute__((nonnull(1, 4))) SG_WUR;

/*
 * End of body: DECODE_OK when every stage ended cleanly (or never got a byte), else
 * DECODE_CORRUPT ("truncated gzip stream"), or the earlier error. Emits nothing new
 * (feeds already hand on all they can) but takes emit for symmetry with decode_feed.
 */
int decode_finish(decode_t *d, decode_emit_fn emit, void *arg)
    __attribute__((nonnull(1, 2))) SG_WUR;

/* What failed, for logs (static or decoder-owned; "" while nothing failed). */
const char *decode_error(const decode_t *d) SG_NONNULL;

/* Bytes given to decode_feed, and bytes handed to emit, since decode_new. */
uint64_t decode_bytes_in(const decode_t *d) SG_NONNULL;
uint64_t decode_bytes_out(const decode_t *d) SG_NONNULL;

/* Bytes the decoder and its libraries hold now (chunk buffers, states, windows). */
size_t decode_memory(const decode_t *d) SG_NONNULL;

/* Zero every buffer (the libraries' windows too) and free. NULL is fine. */
void decode_free(decode_t *d);

/* Whether token[0..len) names a coding this module decodes (identity included). */
bool decode_coding_supported(const char *token, size_t len);

/*
 * Narrow an Accept-Encoding value for the request sent upstream: keep, in order and
 * with their parameters, the elements whose coding is supported (see above) or
 * "identity", and "*" only with q=0 (a wildcard with q>0 would let the upstream pick a
 * coding sealgate cannot decode); drop the rest, and any element holding a control
 * character (NUL, CR, LF, ...). Elements are trimmed and joined with ", "; if none is
 * left the result is "identity". Writes a NUL-terminated string to out and returns
 * its length, or -1 when out[0..outlen) is too small.
 */
ssize_t decode_accept_encoding(const char *value, size_t len, char *out, size_t outlen)
    __attribute__((nonnull(3))) SG_WUR;

#endif
