/*
 * awssign.h — an AWS request through sealgate. The sandbox signed it (SigV4) with the
 * derived credentials of a handle (awscred.h: the handle is its session token); sealgate
 * checks the signature's credential scope against the credential's aws block (service,
 * region, S3 bucket and key prefix), verifies the signature with the derived secret, and
 * signs the request again with the real credentials once every edit is made. Pure core.
 *
 *   awssign_head    at the head: parse the signature (Authorization, or a presigned
 *                   query), check the access key id names the handle, the scope, the
 *                   time; verify now when the payload hash is known (x-amz-content-sha256:
 *                   hex, UNSIGNED-PAYLOAD, STREAMING-…; a presigned URL), else ask for
 *                   the body whole (AWSSIGN_BODY_HASH: the query and JSON services sign
 *                   the body's SHA-256 and send no hash field).
 *   awssign_identity  whom sealgate signs as (awssign_identity_t): the credential's own
 *                   keys (awssign_policy_identity), or the temporary credentials of its
 *                   assume_role (stscache.h), which may arrive later than the head. Sets
 *                   the signing key and the X-Amz-Security-Token edit (the identity's
 *                   session token, or none). Due before awssign_resign / awssign_body.
 *   awssign_body    the body held whole (AWSSIGN_BODY_HASH): hash it and verify.
 *   awssign_resign  after every other edit of the head: the new Authorization (same
 *                   scope and SignedHeaders, the identity's access key id;
 *                   x-amz-security-token leaves the list when no session token replaces
 *                   it), or the re-presigned target.
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
 * (sodium_memzero) when done. It borrows cred from the policy snapshot and the identity's
 * strings from whoever holds them (the snapshot, or a stscache_cred_t reference the plan
 * keeps) until awssign_resign has run. Edits are made in the caller's inject_edits_t
 * (values in wipe memory).
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

/* Whom sealgate signs as. Borrowed strings; session_token NULL: none. */
typedef struct awssign_identity {
	const char *access_key_id;
	size_t access_key_id_len;
	const char *secret;
	size_t secret_len;
	const char *session_token;
	size_t session_token_len;
} awssign_identity_t;

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
	uint8_t key_out[SIGV4_KEY_LEN];	/* signing key of the identity's secret */
	char seed_in[SIGV4_SIG_HEX + 1];	/* the sandbox's signature */
	char seed_out[SIGV4_SIG_HEX + 1];	/* sealgate's (after awssign_resign) */
	const policy_credential_t *cred;
	awssign_identity_t id;		/* whom to sign as, once id_set */
	bool id_set;
} awssign_t;

typedef struct awssign_refusal {
	unsigned status;
	const char *code;
	char message[256];
} awssign_refusal_t;

/* The head of a request whose handle names an aws_sigv4 credential. 0, or -1 with r. */
int awssign_head(const awssign_in_t *in, awssign_t *st, awssign_refusal_t *r)
    SG_NONNULL SG_WUR;

/* The credential's own keys (its secret, aws.access_key_id, aws.session_token). */
void awssign_policy_identity(const policy_credential_t *cred, awssign_identity_t *id)
    SG_NONNULL;

/* Sign as id (after awssign_head succeeded): its signing key under the request's scope,
 * and (header-signed) X-Amz-Security-Token replaced by its token or dropped. head as
 * awssign_head saw it. 0, or -1 with r. */
int awssign_identity(awssign_t *st, const awssign_identity_t *id, const http_head_t *head,
    inject_edits_t *e, awssign_refusal_t *r) SG_NONNULL SG_WUR;

/* The body, held whole (st->body AWSSIGN_BODY_HASH): its hash, then the verification.
 * head and target as awssign_head saw them. 0, or -1 with r. */
int awssign_body(awssign_t *st, const http_head_t *head, const char *target,
    const void *body, size_t len, awssign_refusal_t *r)
    __attribute__((nonnull(1, 2, 3, 6))) SG_WUR;

/* Sign again as the identity over the head as e leaves it (every edit made).
 * 0, or -1 with r (500 when awssign_identity has not run). */
int awssign_resign(awssign_t *st, const http_head_t *head, const char *target,
    inject_edits_t *e, awssign_refusal_t *r) SG_NONNULL SG_WUR;

/* Does the request's signature cover the field name (case-insensitive)? false when st is
 * not an AWS request. Such a field cannot be dropped or changed on the way: the upstream
 * checks the signature over it (sealgate re-signs the head as it leaves, keeping the
 * client's SignedHeaders list). */
bool awssign_signs(const awssign_t *st, const char *name) SG_NONNULL;

#endif
