/*
 * digest.h — SHA-256 for the core, with a faster implementation the shell may plug in.
 *
 * The core hashes request bodies (SigV4 payload hashes, every aws-chunked chunk) with
 * libsodium's portable SHA-256 unless digest_sha256_install gave it another: the shell
 * installs OpenSSL's (tls_digest_ops), which uses the CPU's SHA instructions where it has
 * them (about 5x faster on this project's bench machine). The core stays free of OpenSSL:
 * it sees only these operations.
 *
 * A digest_sha256_t is opaque storage the caller owns. digest_sha256_init may be called
 * again on a used one (it starts over); digest_sha256_final gives the hash and releases;
 * digest_sha256_release frees what an unfinished one holds (idempotent; a zeroed one is
 * fine). Install once, before threads start; the operations are read without a lock.
 */
#ifndef SEALGATE_DIGEST_H
#define SEALGATE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define DIGEST_SHA256_BYTES	32
/* Storage for any implementation's state: libsodium's is 104 bytes. */
#define DIGEST_CTX_SIZE		128

typedef struct digest_sha256 {
	_Alignas(16) unsigned char opaque[DIGEST_CTX_SIZE];
} digest_sha256_t;

typedef struct digest_sha256_ops {
	int (*init)(void *ctx);				/* 0, or -1 (no memory) */
	void (*update)(void *ctx, const void *p, size_t n);
	void (*final)(void *ctx, uint8_t out[DIGEST_SHA256_BYTES]);
	void (*release)(void *ctx);
} digest_sha256_ops_t;

/* Use ops from now on (NULL: libsodium's again). */
void digest_sha256_install(const digest_sha256_ops_t *ops);

int digest_sha256_init(digest_sha256_t *d) SG_NONNULL SG_WUR;
void digest_sha256_update(digest_sha256_t *d, const void *p, size_t n)
    __attribute__((nonnull(1)));
void digest_sha256_final(digest_sha256_t *d, uint8_t out[DIGEST_SHA256_BYTES]) SG_NONNULL;
void digest_sha256_release(digest_sha256_t *d) SG_NONNULL;

/* SHA-256 of p[0..n) in one call. 0, or -1 (no memory: out is zeroed). */
int digest_sha256(const void *p, size_t n, uint8_t out[DIGEST_SHA256_BYTES])
    __attribute__((nonnull(3))) SG_WUR;

#endif
