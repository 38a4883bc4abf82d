/*
 * jwt.h — JSON Web Tokens in compact form (RFC 7519 over RFC 7515 JWS): what the mint
 * flows sign (GitHub App JWTs, RFC 7523 jwt-bearer assertions).
 *
 * jwt_encode builds base64url(header) "." base64url(claims) — the signing input — and
 * appends "." base64url(signature). HS256 is computed here (libsodium HMAC-SHA-256).
 * RS256 (RSASSA-PKCS1-v1_5 with SHA-256, a PEM private key) comes from a signer the shell
 * installs (jwt_signer_install; mintclient.c installs OpenSSL's), since the core has no
 * OpenSSL: the same pattern as digest.h. Without one, RS256 fails (JWT_E_SIGN).
 *
 * The header is {"alg":ALG,"typ":"JWT"} (and "kid" when given), claims a JSON object
 * text the caller built. The result is a credential: wipe memory, the caller
 * secmem_wipe_free's it. Install once, before threads start. Pure core; thread-safe.
 */
#ifndef SEALGATE_JWT_H
#define SEALGATE_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* RSA-8192 signatures are 1 KiB: room for every key size in use. */
#define JWT_SIG_MAX		1024
/* Header and claims JSON texts: far above what the mint flows build. */
#define JWT_PART_MAX		8192
#define JWT_KID_MAX		128

enum jwt_rc { JWT_OK = 0, JWT_E_ARG = -1, JWT_E_SIGN = -2, JWT_E_NOMEM = -3 };

/* Sign msg[0..len) with key (RS256: PEM) into sig (cap JWT_SIG_MAX). 0 with *siglen, or
 * -1. Must not log the key. */
typedef int (*jwt_sign_fn)(const char *alg, const char *key, size_t key_len,
    const uint8_t *msg, size_t len, uint8_t *sig, size_t *siglen);

/* Use fn for every alg other than HS256 (NULL: none). */
void jwt_signer_install(jwt_sign_fn fn);

/* header_json, claims_json: the two JSON texts as they are to be encoded. */
int jwt_encode_raw(const char *alg, const char *header_json, size_t header_len,
    const char *claims_json, size_t claims_len, const char *key, size_t key_len,
    char **out, size_t *outlen) SG_NONNULL SG_WUR;
/* A JWT with header {"alg":alg,"typ":"JWT"[,"kid":kid]} (kid may be NULL). */
int jwt_encode(const char *alg, const char *kid, const char *claims_json,
    const char *key, size_t key_len, char **out, size_t *outlen)
    __attribute__((nonnull(1, 3, 4, 6, 7))) SG_WUR;

#endif
