/*
 * awssign.h — an AWS request through sealgate. The sandbox signed it (SigV4) with the
 * derived credentials of a handle (awscred.h: the handle is its session token); sealgate
 * checks the signature's credential scope against the credential's aws block (service,
 * region, S3 bucket and key prefix), verifies the signature with the derived secret, and
 * signs the request again with the real credentials once every edit is made. Pure core.
 *
 *   awssign_head    at the head: parse the signature (Authorization, or a presigned
 *                   query), check the access key id names the handle, the scope, the
 *                   time; set the X-Amz-Security-Token edit (the real session token, or
 *                   none); verify now when the payload hash is known (x-amz-content-sha256:
 *                   hex, UNSIGNED-PAYLOAD, STREAMING-…; a presigned URL), else ask for
 *                   the body whole (AWSSIGN_BODY_HASH: the query and JSON services sign
 *                   the body's SHA-256 and send no hash field).
 *   awssign_body    the body held whole (AWSSIGN_BODY_HASH): hash it and verify.
 *   awssign_resign  after every other edit of the head: the new Authorization (same
 *                   scope and SignedHeaders, the real access key id; x-amz-security-token
 *                   leaves the list when no real session token replaces it), or the
 *                   re-presigned target.
 * A streamed upload with chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])
 * leaves in the state what the chunk re-signer (awschunk.h) starts from: both signing
 * keys and both seed signatures.
 *
 * Refusals (awssign_refusal_t, messages never hold a secret or the signature):
 *   400 bad_signature_format, 400 sigv4a_unsupported, 400 sigv2_unsupported (a SigV2
 *   presigned query or Authorization: AWS id:sig), 403 signature_missing,
 *   403 signature_mismatch, 403 request_expired, 403 aws_scope_denied,
 *   500 internal_error (the handle's key cannot derive the secret).
 *
 * Ownership: awssign_t is plain data the caller owns; it holds signing keys: zero it
 * (sodium_memzero) when done. It borrows cred from the policy snapshot. Edits are made in
 * the caller's inject_edits_t (values in wipe memory).
 */
#ifndef SEALGATE_AWSSIGN_H
#define SEALGATE_AWSSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "inject.h"
#include "policy.h"
#include "seal.h"
#include "sigv4.h"
#include "util.h"

/* What the body needs. */
enum awssign_body {
	AWSSIGN_BODY_NONE,		/* the payload hash is in the head: nothing */
	AWSSIGN_BODY_HASH,		/* the signature covers the body's hash: hold it */
	AWSSIGN_BODY_CHUNKS,		/* STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] */
	AWSSIGN_BODY_UNSIGNED_TRAILER,	/* STREAMING-UNSIGNED-PAYLOAD-TRAILER: as it is */
};

/* x-amz-content-sha256 values, and the longest one kept. */
#define AWSSIGN_UNSIGNED	"UNSIGNED-PAYLOAD"
#define AWSSIGN_STREAMING	"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define AWSSIGN_STREAMING_TRAILER "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#define AWSSIGN_UNSIGNED_TRAILER "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
#define AWSSIGN_PAYLOAD_MAX	64

typedef struct awssign_in {
	const http_head_t *head;
	const char *target;		/* origin-form, as received */
	const char *host;		/* lower case, no port */
	const char *handle;		/* the handle text, and its length */
	size_t handle_len;
	const seal_key_t *key;		/* the key that sealed the handle */
	const policy_credential_t *cred;	/* INJECT_AWS_SIGV4 */
	int64_t now;			/* unix seconds */
} awssign_in_t;

typedef struct awssign {
	bool set;			/* an AWS request: awssign_resign is due */
	bool verified;			/* the sandbox's signature checked */
	enum awssign_body body;
	bool trailer;			/* chunks end with a signed trailer */
	unsigned flags;			/* SIGV4_S3 */
	sigv4_auth_t auth;		/* the sandbox's signature: scope, SignedHeaders */
	char amz_date[SIGV4_AMZ_DATE_LEN + 1];
	char payload_hash[AWSSIGN_PAYLOAD_MAX + 1];
	uint8_t key_in[SIGV4_KEY_LEN];	/* signing key of the derived secret */
	uint8_t key_out[SIGV4_KEY_LEN];	/* signing key of the real secret */
	char seed_in[SIGV4_SIG_HEX + 1];	/* the sandbox's signature */
	char seed_out[SIGV4_SIG_HEX + 1];	/* sealgate's (after awssign_resign) */
	const policy_credential_t *cred;
} awssign_t;

typedef struct awssign_refusal {
	unsigned status;
	const char *code;
	char message[256];
} awssign_refusal_t;

/* The head of a request whose handle names an aws_sigv4 credential. 0, or -1 with r. */
int awssign_head(const awssign_in_t *in, awssign_t *st, inject_edits_t *e,
    awssign_refusal_t *r) SG_NONNULL SG_WUR;

/* The body, held whole (st->body AWSSIGN_BODY_HASH): its hash, then the verification.
 * head and target as awssign_head saw them. 0, or -1 with r. */
int awssign_body(awssign_t *st, const http_head_t *head, const char *target,
    const void *body, size_t len, awssign_refusal_t *r)
    __attribute__((nonnull(1, 2, 3, 6))) SG_WUR;

/* Sign again with the real credentials over the head as e leaves it (every edit made).
 * 0, or -1 with r. */
int awssign_resign(awssign_t *st, const http_head_t *head, const char *target,
    inject_edits_t *e, awssign_refusal_t *r) SG_NONNULL SG_WUR;

/* Does the request's signature cover the field name (case-insensitive)? false when st is
 * not an AWS request. Such a field cannot be dropped or changed on the way: the upstream
 * checks the signature over it (sealgate re-signs the head as it leaves, keeping the
 * client's SignedHeaders list). */
bool awssign_signs(const awssign_t *st, const char *name) SG_NONNULL;

#endif
