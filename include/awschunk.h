/*
 * awschunk.h — re-signs an aws-chunked request body (S3 streaming uploads) on its way
 * through: every chunk signature is verified with the sandbox's signing key and replaced
 * by one made with the real key. Pure core over bytes: libsodium only, no clock.
 *
 * The body (x-amz-content-sha256 names the mode; Content-Encoding: aws-chunked):
 *
 *     hex-size;chunk-signature=<64 hex>\r\n <size bytes> \r\n      (repeated)
 *     0;chunk-signature=<64 hex>\r\n                               (the final chunk)
 *     AWSCHUNK_SIGNED:            \r\n
 *     AWSCHUNK_SIGNED_TRAILER:    name:value\r\n ... x-amz-trailer-signature:<64 hex>\r\n \r\n
 *     AWSCHUNK_UNSIGNED_TRAILER:  chunks are "hex-size\r\n" (no signature), then
 *                                 name:value\r\n ... \r\n
 *
 * A chunk's signature is HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n" amz-date "\n" scope "\n"
 * previous-signature "\n" SHA-256("") "\n" SHA-256(chunk data)), hex; the first chunk's
 * previous signature is the seed (the Authorization header's). The trailer signature is
 * HMAC(key, "AWS4-HMAC-SHA256-TRAILER\n" amz-date "\n" scope "\n" previous-signature "\n"
 * SHA-256(trailers)), the trailers being "name:value\n" for each trailer line but the
 * signature's, name in lower case, value trimmed (S3 "Signature calculations for trailing
 * headers"). Because every signature chains the previous one, a chunk altered, replayed,
 * dropped or reordered fails (AWSCHUNK_E_SIGNATURE); so does a stream cut and resumed.
 *
 * Output: the input bytes, unchanged but for each chunk-signature and
 * x-amz-trailer-signature value, replaced by the re-signed one (same length: the
 * re-signed body has the same Content-Length and x-amz-decoded-content-length).
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER passes through, its framing checked.
 *
 * Memory: a signed chunk's header must carry the new signature, which covers the chunk's
 * data, so a signed chunk's data is held until it is complete (at most AWSCHUNK_MAX_CHUNK;
 * SDKs send 8-128 KiB chunks) and emitted with its header once its signature verified:
 * bytes of a chunk that fails verification never leave. Beyond that, one header or
 * trailer line (AWSCHUNK_MAX_LINE) and a running SHA-256. Unsigned chunks stream through
 * unheld. Keys, signatures and held data are in wipe memory, zeroed by awschunk_free.
 *
 * Errors are sticky: after one, feed and finish return it and emit nothing more. Reasons
 * (awschunk_error) are static text, never input bytes or key material. Not thread-safe:
 * one awschunk_t per request body.
 */
#ifndef SEALGATE_AWSCHUNK_H
#define SEALGATE_AWSCHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "sigv4.h"
#include "util.h"

/* A chunk header or trailer line, CRLF included: a signed chunk header is at most
 * 16 + 17 + 64 + 2 = 99 bytes, a checksum trailer under 100, the trailer signature 90. */
#define AWSCHUNK_MAX_LINE	512
/* Signed chunk data held until its signature is rewritten: SDKs send 8-128 KiB chunks
 * (S3's example 64 KiB; the Java SDK 128 KiB); larger ones are refused. */
#define AWSCHUNK_MAX_CHUNK	(1024 * 1024)
/* Hex digits of a chunk size: 16 fit 64 bits. */
#define AWSCHUNK_MAX_SIZE_DIGITS 16
/* Trailer lines (the signature's apart): SDKs send one checksum. */
#define AWSCHUNK_MAX_TRAILERS	16

enum awschunk_mode {
	AWSCHUNK_SIGNED = 0,		/* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
	AWSCHUNK_SIGNED_TRAILER,	/* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
	AWSCHUNK_UNSIGNED_TRAILER,	/* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
};

enum awschunk_rc {
	AWSCHUNK_OK = 0,
	AWSCHUNK_E_FRAMING = -1,	/* not aws-chunked as the mode says: 400 */
	AWSCHUNK_E_SIGNATURE = -2,	/* a chunk or trailer signature differs: 403
					 * signature_mismatch */
	AWSCHUNK_E_TOO_BIG = -3,	/* a line over AWSCHUNK_MAX_LINE, a size over
					 * AWSCHUNK_MAX_SIZE_DIGITS, a signed chunk over
					 * AWSCHUNK_MAX_CHUNK, too many trailers: 400 */
	AWSCHUNK_E_AFTER_END = -4,	/* bytes after the body's end: 400 */
	AWSCHUNK_E_TRUNCATED = -5,	/* awschunk_finish before the end: 400 */
	AWSCHUNK_E_NOMEM = -6,		/* 500 */
};

typedef struct awschunk awschunk_t;

/* Receives output bytes, in order; may be called several times per feed. */
typedef void (*awschunk_emit_fn)(void *arg, const void *data, size_t len);

/* The mode an x-amz-content-sha256 value names. 0, or -1 for any other value (not an
 * aws-chunked body this module handles: STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, a hash,
 * UNSIGNED-PAYLOAD, ...). */
int awschunk_mode_parse(const char *value, size_t len, enum awschunk_mode *mode)
    SG_NONNULL SG_WUR;

/*
 * A re-signer for one body. in_key/out_key: the signing keys (sigv4_signing_key) of the
 * sandbox's secret and of the real one; in_seed/out_seed: the Authorization signatures
 * (64 hex) the sandbox sent and sealgate sent instead; amz_date: the request's
 * X-Amz-Date; scope: sigv4_scope's "YYYYMMDD/region/service/aws4_request" (the same for
 * both: re-signing keeps the scope). All are copied. In AWSCHUNK_UNSIGNED_TRAILER keys,
 * seeds, date and scope are not used and may be NULL. NULL on bad arguments or no memory.
 */
awschunk_t *awschunk_new(enum awschunk_mode mode, const uint8_t *in_key,
    const uint8_t *out_key, const char *in_seed, const char *out_seed, const char *amz_date,
    const char *scope) SG_WUR;

/* Feed the next len bytes of the body; emits what is decided. AWSCHUNK_OK or an error
 * code (awschunk_error says why). */
int awschunk_feed(awschunk_t *a, const void *data, size_t len, awschunk_emit_fn emit,
    void *arg) __attribute__((nonnull(1, 4))) SG_WUR;

/* End of the body: AWSCHUNK_OK when it ended exactly after the final chunk (and, with a
 * trailer mode, the trailers and the blank line), else AWSCHUNK_E_TRUNCATED (or the
 * earlier error). Nothing is held back, so nothing is emitted. */
int awschunk_finish(awschunk_t *a) SG_NONNULL SG_WUR;

/* Why the last error happened (static text), or NULL. */
const char *awschunk_error(const awschunk_t *a) SG_NONNULL;

/* Chunk data bytes seen so far (the decoded length: x-amz-decoded-content-length). */
uint64_t awschunk_decoded_length(const awschunk_t *a) SG_NONNULL;

/* Zero and free. NULL is fine. */
void awschunk_free(awschunk_t *a);

#endif
