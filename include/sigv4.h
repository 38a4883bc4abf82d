/*
 * sigv4.h — AWS Signature Version 4 (AWS4-HMAC-SHA256): parse the Authorization header
 * and a presigned URL's query, build the canonical request and the string to sign, verify
 * a signature, sign again with other credentials. Pure core: libsodium (HMAC-SHA-256,
 * SHA-256) only, no allocation but wipe memory for the canonical request, no clock (the
 * time check takes "now").
 *
 * The three uses sealgate has for it:
 *   (a) verify: parse the client's Authorization (sigv4_parse_authorization) or presigned
 *       query (sigv4_parse_presigned), derive the signing key from the secret the client
 *       was given (sigv4_signing_key), then sigv4_verify over the request as received.
 *   (b) re-sign a header-signed request: after editing header values (a replaced
 *       X-Amz-Security-Token, ...), sigv4_sign_authorization with the real key and access
 *       key id over the edited fields: same scope, same SignedHeaders, new Authorization.
 *   (c) re-presign: sigv4_presign_rewrite gives the new origin-form target (new
 *       X-Amz-Credential access key id, X-Amz-Security-Token replaced or removed, new
 *       X-Amz-Signature), every other byte of the target kept.
 *
 * The canonical request (AWS "Create a canonical request"):
 *   method \n canonical URI \n canonical query \n canonical headers \n signed headers \n
 *   payload hash
 *   - URI, SIGV4_S3 set: the path as sent — no dot-segment or slash normalisation, a valid
 *     %XX escape kept as it is, any other byte outside A-Za-z0-9-._~/ encoded %XX (S3's
 *     documented "/test$file.text" -> "/test%24file.text"). SIGV4_S3 clear (every other
 *     service): dot segments and empty segments removed (RFC 3986 5.2.4, and "//" -> "/"
 *     as AWS does), then every byte outside A-Za-z0-9-._~/ encoded %XX, '%' included:
 *     a path sent encoded is thus encoded twice, as AWS specifies.
 *   - Query: parameters split on '&' (empty ones skipped) and at the first '=', each name
 *     and value percent-decoded then encoded (A-Za-z0-9-._~ kept, every other byte %XX
 *     upper case; '+' is a literal plus), sorted by encoded name then value, joined
 *     "name=value" with '&'. A '%' not followed by two hex digits is refused. For a
 *     presigned auth X-Amz-Signature is left out.
 *   - Headers: for each name of SignedHeaders, "name:" then the values of every field of
 *     that name (case-insensitive), in order, each trimmed with inner whitespace runs
 *     collapsed to one space, joined with ','. A signed name with no field is refused
 *     (SIGV4_E_FORMAT): the caller supplies Host (HTTP/2: from :authority).
 *   - Payload hash: the caller's (r->payload_hash): S3 sends it as x-amz-content-sha256
 *     (hex, UNSIGNED-PAYLOAD, STREAMING-...); other services sign the body's SHA-256
 *     (sigv4_payload_hash); a presigned S3 URL signs UNSIGNED-PAYLOAD.
 * The request time is X-Amz-Date (header, or the presigned query's); the Date header
 * alone is not supported (every SDK sends X-Amz-Date).
 *
 * Parsing is strict where SDKs agree and tolerant where they differ: the Authorization
 * components may come in any order, separated by ',' and/or spaces and tabs; each exactly
 * once; SignedHeaders lower case, sorted, no duplicates; the signature 64 hex digits of
 * either case (kept lower case). Anything else is SIGV4_E_FORMAT with a static reason in
 * *why (never any part of the input, so never a secret).
 *
 * Secrets: the secret access key is only read (sigv4_signing_key); the HMAC states and
 * the intermediate keys are zeroed. The canonical request holds header values (a session
 * token) and lives in wipe memory (secmem.h). A re-presigned target holds the new token:
 * wipe memory too. Signatures are compared with sodium_memcmp. All functions are
 * thread-safe (no shared state).
 */
#ifndef SEALGATE_SIGV4_H
#define SEALGATE_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "http.h"
#include "util.h"

#define SIGV4_ALGORITHM		"AWS4-HMAC-SHA256"
#define SIGV4A_ALGORITHM	"AWS4-ECDSA-P256-SHA256"
#define SIGV4_KEY_LEN		32	/* a signing key (kSigning) */
#define SIGV4_SIG_HEX		64	/* a signature, hex */
#define SIGV4_AMZ_DATE_LEN	16	/* "20130524T000000Z" */
/* Longest access key id: IAM's AccessKeyId limit. */
#define SIGV4_MAX_AKID		128
/* Longest region and service names: AWS's are under 30 characters; S3-compatible stores
 * use short ones too. */
#define SIGV4_MAX_REGION	63
#define SIGV4_MAX_SERVICE	63
/* Signed header names: SDKs sign under 20; the cap bounds the canonical headers work. */
#define SIGV4_MAX_SIGNED_HEADERS 64
/* SignedHeaders text, names and ';'. */
#define SIGV4_MAX_SIGNED_HEADERS_LEN 1024
/* Longest Authorization value parsed: the components' limits plus spacing. */
#define SIGV4_MAX_AUTH_INPUT	4096
/* A formatted Authorization value fits in this (all the limits above at once). */
#define SIGV4_AUTH_MAX		1536
/* "YYYYMMDD/region/service/aws4_request" */
#define SIGV4_SCOPE_MAX		(8 + 1 + SIGV4_MAX_REGION + 1 + SIGV4_MAX_SERVICE + 13 + 1)
/* A string to sign fits in this. */
#define SIGV4_STS_MAX		(17 + SIGV4_AMZ_DATE_LEN + 1 + SIGV4_SCOPE_MAX + SIGV4_SIG_HEX + 1)
/* Longest request target canonicalised: the request line's own limit. */
#define SIGV4_MAX_TARGET	SG_MAX_START_LINE
/* Clock skew AWS tolerates between a request's X-Amz-Date and its own clock. */
#define SIGV4_MAX_SKEW_S	900
/* Longest X-Amz-Expires AWS accepts on a presigned URL: 7 days. */
#define SIGV4_MAX_EXPIRES	604800

/* Flags of a request. */
#define SIGV4_S3		0x1u	/* S3's canonical URI (no normalisation, encoded once) */

enum sigv4_rc {
	SIGV4_OK = 0,
	SIGV4_E_FORMAT = -1,	/* malformed (why says what): 400 bad_signature_format */
	SIGV4_E_SIGV4A = -2,	/* AWS4-ECDSA-P256-SHA256: 400 sigv4a_unsupported */
	SIGV4_E_ABSENT = -3,	/* sigv4_parse_presigned: the query holds no signature */
	SIGV4_E_MISMATCH = -4,	/* sigv4_verify: another signature: 403 signature_mismatch */
	SIGV4_E_EXPIRED = -5,	/* sigv4_check_time: skewed or expired: 403 request_expired */
	SIGV4_E_NOMEM = -6,
};

/* A parsed signature: the Authorization header's or a presigned query's. Plain data, no
 * pointers but token; copy it freely. */
typedef struct sigv4_auth {
	bool presigned;
	char akid[SIGV4_MAX_AKID + 1];
	char date[9];				/* scope date, YYYYMMDD */
	char region[SIGV4_MAX_REGION + 1];
	char service[SIGV4_MAX_SERVICE + 1];
	char signed_headers[SIGV4_MAX_SIGNED_HEADERS_LEN + 1];	/* "host;x-amz-date" */
	char signature[SIGV4_SIG_HEX + 1];	/* lower-case hex */
	/* presigned only */
	char amz_date[SIGV4_AMZ_DATE_LEN + 1];	/* X-Amz-Date */
	uint32_t expires;			/* X-Amz-Expires, 0 when absent */
	const char *token;			/* X-Amz-Security-Token as sent (percent-encoded),
						 * inside the parsed target; NULL when absent */
	size_t token_len;
} sigv4_auth_t;

/* A request as the signature covers it. fields: the header fields (http_field_t, e.g. a
 * parsed head's, or the caller's edited copy); those not signed are ignored. */
typedef struct sigv4_request {
	const char *method;			/* "GET" */
	const char *target;			/* origin-form "/path?query", as sent */
	size_t target_len;
	const http_field_t *fields;
	size_t nfields;
	const char *payload_hash;		/* NUL-terminated, see above */
	unsigned flags;				/* SIGV4_S3 */
} sigv4_request_t;

/* --- parsing and formatting --------------------------------------------------------- */

/* Parse an Authorization value. SIGV4_OK, SIGV4_E_SIGV4A or SIGV4_E_FORMAT (*why). */
int sigv4_parse_authorization(const char *value, size_t len, sigv4_auth_t *a,
    const char **why) __attribute__((nonnull(1, 3, 4))) SG_WUR;

/*
 * Parse the presigned parameters of an origin-form target. SIGV4_E_ABSENT when it has
 * none of X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature (not presigned); else
 * SIGV4_OK, SIGV4_E_SIGV4A or SIGV4_E_FORMAT (one missing or repeated, a bad value).
 * X-Amz-Expires is optional (1..SIGV4_MAX_EXPIRES). a->token points into target.
 */
int sigv4_parse_presigned(const char *target, size_t len, sigv4_auth_t *a,
    const char **why) __attribute__((nonnull(1, 3, 4))) SG_WUR;

/* "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=..., Signature=..." into out
 * (NUL-terminated). Its length, or -1 when cap is too small (SIGV4_AUTH_MAX always
 * fits). */
int sigv4_format_authorization(const sigv4_auth_t *a, char *out, size_t cap) SG_NONNULL;

/* Replace a->akid (1..SIGV4_MAX_AKID of A-Za-z0-9-._~). 0, or -1 leaving a as it was. */
int sigv4_set_key_id(sigv4_auth_t *a, const char *akid, size_t len) SG_NONNULL SG_WUR;

/* "YYYYMMDD/region/service/aws4_request" into out[SIGV4_SCOPE_MAX]; its length. */
size_t sigv4_scope(const sigv4_auth_t *a, char out[SIGV4_SCOPE_MAX]) SG_NONNULL;

/* --- keys and signatures --------------------------------------------------------------- */

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
void sigv4_signing_key(const char *secret, size_t secret_len, const char *date,
    const char *region, const char *service, uint8_t key[SIGV4_KEY_LEN]) SG_NONNULL;

/* Lower-case hex SHA-256 of a body (the payload hash of services other than S3). */
void sigv4_payload_hash(const void *body, size_t len, char out[SIGV4_SIG_HEX + 1])
    __attribute__((nonnull(3)));

/* The request's X-Amz-Date (presigned: a->amz_date; else the X-Amz-Date field), checked
 * YYYYMMDDTHHMMSSZ, into out. SIGV4_OK or SIGV4_E_FORMAT. */
int sigv4_request_date(const sigv4_request_t *r, const sigv4_auth_t *a,
    char out[SIGV4_AMZ_DATE_LEN + 1], const char **why) SG_NONNULL SG_WUR;

/* The canonical request, NUL-terminated, in wipe memory (free with secmem_wipe_free).
 * SIGV4_OK, SIGV4_E_FORMAT or SIGV4_E_NOMEM. */
int sigv4_canonical_request(const sigv4_request_t *r, const sigv4_auth_t *a, char **out,
    size_t *len, const char **why) SG_NONNULL SG_WUR;

/* "AWS4-HMAC-SHA256\n" amz-date "\n" scope "\n" hex(SHA-256(canonical request)) into
 * out[SIGV4_STS_MAX], NUL-terminated. SIGV4_OK, SIGV4_E_FORMAT or SIGV4_E_NOMEM. */
int sigv4_string_to_sign(const sigv4_request_t *r, const sigv4_auth_t *a,
    char out[SIGV4_STS_MAX], const char **why) SG_NONNULL SG_WUR;

/* The signature of r under a's scope and SignedHeaders with key, lower-case hex.
 * a->akid and a->signature are not used. Codes as sigv4_string_to_sign. */
int sigv4_sign(const sigv4_request_t *r, const sigv4_auth_t *a,
    const uint8_t key[SIGV4_KEY_LEN], char sig[SIGV4_SIG_HEX + 1], const char **why)
    SG_NONNULL SG_WUR;

/* Does a->signature sign r with key? SIGV4_OK, SIGV4_E_MISMATCH (constant-time
 * comparison), SIGV4_E_FORMAT or SIGV4_E_NOMEM. */
int sigv4_verify(const sigv4_request_t *r, const sigv4_auth_t *a,
    const uint8_t key[SIGV4_KEY_LEN], const char **why) SG_NONNULL SG_WUR;

/*
 * (b) Sign r (the edited fields) with key and format the Authorization value naming
 * akid, with a's scope and SignedHeaders, into out (NUL-terminated, *len its length).
 * SIGV4_OK, SIGV4_E_FORMAT (also: akid not acceptable, cap too small), SIGV4_E_NOMEM.
 */
int sigv4_sign_authorization(const sigv4_request_t *r, const sigv4_auth_t *a,
    const char *akid, size_t akid_len, const uint8_t key[SIGV4_KEY_LEN], char *out,
    size_t cap, size_t *len, const char **why) SG_NONNULL SG_WUR;

/*
 * (c) Re-presign r->target (presigned, parsed into a): X-Amz-Credential names akid (same
 * scope), X-Amz-Security-Token becomes token (percent-encoded; added at the end when the
 * target had none) or is removed (token NULL), X-Amz-Signature (last) signs the result
 * with key over r's fields and payload hash. The other parameters and the path are kept
 * byte for byte, in order (empty ones dropped). *target: NUL-terminated wipe memory
 * (secmem_wipe_free), at most SIGV4_MAX_TARGET long. Codes as sigv4_sign_authorization.
 */
int sigv4_presign_rewrite(const sigv4_request_t *r, const sigv4_auth_t *a,
    const char *akid, size_t akid_len, const char *token, size_t token_len,
    const uint8_t key[SIGV4_KEY_LEN], char **target, size_t *len, const char **why)
    __attribute__((nonnull(1, 2, 3, 7, 8, 9, 10))) SG_WUR;

/*
 * Is the request current at now (unix seconds)? amz_date (sigv4_request_date) must
 * fall on the scope's date. Header-signed: within SIGV4_MAX_SKEW_S of now. Presigned:
 * not more than SIGV4_MAX_SKEW_S ahead of now, and now not past amz_date + X-Amz-Expires
 * (no X-Amz-Expires: not more than SIGV4_MAX_SKEW_S behind either).
 * SIGV4_OK, SIGV4_E_EXPIRED or SIGV4_E_FORMAT.
 */
int sigv4_check_time(const sigv4_auth_t *a, const char *amz_date, int64_t now,
    const char **why) SG_NONNULL SG_WUR;

/* Percent-decode in[0..len) into out (at most cap bytes, not NUL-terminated). 0, or -1
 * for a '%' not followed by two hex digits or a result longer than cap. */
int sigv4_query_decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen)
    SG_NONNULL SG_WUR;

#endif
