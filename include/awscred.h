/*
 * awscred.h — the derived AWS credentials a sandbox gets for a handle: what the metadata
 * responder hands out and what the proxy verifies the sandbox's SigV4 signature with.
 * Pure core: libsodium only, no clocks (time is passed in).
 *
 * For a handle H (its text, "sgh1.…") sealed under seal key K (the keyring key whose id
 * H names):
 *   AccessKeyId      "ASIA" + RFC 4648 base32 (A-Z, 2-7, no padding) of the first 10
 *                    bytes of BLAKE2b-256(key = "sealgate-aws-akid-v1", msg = H): 20
 *                    characters. Not secret: it names the handle.
 *   SecretAccessKey  standard base64 of the first 30 bytes of HKDF-SHA256(ikm = K's
 *                    32-byte private key, salt = "sealgate-aws-secret-v1", info = H):
 *                    40 characters. Only a holder of K can recompute it.
 *   Token            H itself.
 *   Expiration       the handle's exp as ISO 8601 UTC, "2026-12-06T13:00:00Z".
 * The akid key is 20 bytes, inside BLAKE2b's 16..64-byte key range, so it is used as it
 * is (no padding or hashing).
 *
 * HKDF-SHA256 (RFC 5869) is built from crypto_auth_hmacsha256 (libsodium 1.0.18 has
 * none) and exported for its known-answer test.
 *
 * Ownership: outputs are the caller's buffers. awscred_secret's output is a secret:
 * the caller zeroes it (sodium_memzero) when done; intermediate key material is zeroed
 * here. Thread-safe (no state).
 */
#ifndef SEALGATE_AWSCRED_H
#define SEALGATE_AWSCRED_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "util.h"

#define AWSCRED_AKID_LEN	20	/* "ASIA" + 16 base32 characters */
#define AWSCRED_SECRET_LEN	40	/* base64 of 30 bytes */
#define AWSCRED_EXPIRATION_LEN	20	/* "YYYY-MM-DDTHH:MM:SSZ" */
#define AWSCRED_AKID_PREFIX	"ASIA"	/* what AWS gives temporary (STS) credentials */
/* Domain separation of the two derivations (v1: change them to re-derive everything). */
#define AWSCRED_AKID_KEY	"sealgate-aws-akid-v1"
#define AWSCRED_SECRET_SALT	"sealgate-aws-secret-v1"
/* HKDF-SHA256 output is at most 255 blocks of 32 bytes (RFC 5869 2.3). */
#define AWSCRED_HKDF_MAX	(255 * 32)

/* The AccessKeyId of handle[0..len) into out (NUL-terminated). */
void awscred_access_key_id(const char *handle, size_t len, char out[AWSCRED_AKID_LEN + 1])
    SG_NONNULL;

/*
 * The SecretAccessKey of handle[0..len) under key into out (NUL-terminated; a secret).
 * 0, or -1 when key has no private part (out is then all zero).
 */
int awscred_secret(const seal_key_t *key, const char *handle, size_t len,
    char out[AWSCRED_SECRET_LEN + 1]) SG_NONNULL SG_WUR;

/*
 * unix_s (seconds since 1970) as "YYYY-MM-DDTHH:MM:SSZ" into out (NUL-terminated).
 * 0, or -1 when the year is outside 1970..9999 (out is then "").
 */
int awscred_expiration(int64_t unix_s, char out[AWSCRED_EXPIRATION_LEN + 1]) SG_NONNULL;

/*
 * HKDF-SHA256 (RFC 5869): extract with salt (may be empty: saltlen 0 means a zero salt of
 * hash length, as the RFC says), expand with info to outlen bytes (1..AWSCRED_HKDF_MAX).
 * 0, or -1 when outlen is out of range.
 */
int awscred_hkdf_sha256(const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
    size_t ikmlen, const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
    __attribute__((nonnull(3, 7))) SG_WUR;

#endif
