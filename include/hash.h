/*
 * hash.h — the hashes behind sealgate's hash tables. Pure core: no clocks, no sockets.
 *
 * Two kinds, for two kinds of key:
 *  - hash_fnv1a32 / hash_fnv1a64 (FNV-1a) are fast and NOT keyed: anyone who knows the
 *    input can compute the hash, so collisions are easy to make. Use them only for keys
 *    the operator or the code chose (policy names, metric labels), never for anything a
 *    client sends (host names, SNI, handles, tokens, paths, addresses).
 *  - hash_keyed (SipHash-2-4, libsodium's crypto_shorthash) under a random key per table
 *    (hash_key_init): for keys a client controls, so nobody outside can pick keys that
 *    pile into one chain or slot.
 *
 * Threads: every function is thread-safe (a key is read-only once initialised).
 */
#ifndef SEALGATE_HASH_H
#define SEALGATE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* FNV-1a offset bases: where a hash starts. */
#define HASH_FNV1A32_INIT	2166136261u
#define HASH_FNV1A64_INIT	14695981039346656037ULL

/* SipHash key bytes (crypto_shorthash_KEYBYTES). */
#define HASH_KEY_LEN		16

/* Continue the FNV-1a hash h (HASH_FNV1A*_INIT for a new one) over p[0..len). */
uint32_t hash_fnv1a32(uint32_t h, const void *p, size_t len);
uint64_t hash_fnv1a64(uint64_t h, const void *p, size_t len);
/* FNV-1a 32 of a NUL-terminated string, from HASH_FNV1A32_INIT. */
uint32_t hash_fnv1a32_str(const char *s) SG_NONNULL;

/* A SipHash key; the owner keeps it beside the table and wipes it with the table. */
typedef struct hash_key {
	unsigned char bytes[HASH_KEY_LEN];
} hash_key_t;

/* A fresh random key. 0, or -1 when libsodium cannot be initialised. */
int hash_key_init(hash_key_t *key) SG_NONNULL SG_WUR;
/* Zero the key. */
void hash_key_wipe(hash_key_t *key) SG_NONNULL;
/* SipHash-2-4 of p[0..len) under key (its 8 bytes read big-endian). */
uint64_t hash_keyed(const hash_key_t *key, const void *p, size_t len)
    __attribute__((nonnull(1)));

#endif
