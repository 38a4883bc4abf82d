/*
 * certcache.h — bounded LRU cache of minted leaf certificates, keyed by name.
 * Keys are case-insensitive (stored lower-case); callers that use several CAs put the CA
 * id in the key (tls.c uses "<ca id>/<name>").
 *
 * Ownership: certcache_put takes its own reference (the caller keeps and frees theirs);
 * certcache_get returns a new reference (X509_free it). Evicted or replaced certificates
 * lose the cache's reference only, so a connection holding one is never affected.
 *
 * Threads: every function may be called from any thread (one mutex). Lookups, puts and
 * evictions are O(1); a hit allocates nothing. Names come from clients (SNI), so they are
 * hashed with a keyed hash under a random per-cache key (hash.h), and recency is a TAILQ,
 * least recently used first (the order every LRU list in sealgate keeps).
 */
#ifndef SEALGATE_CERTCACHE_H
#define SEALGATE_CERTCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "util.h"

typedef struct certcache certcache_t;

/* A cache holding at most max certificates (max >= 1); NULL on bad max or no memory. */
certcache_t *certcache_new(size_t max) SG_WUR;
/* Drops the cache's references; the certificates live on while others hold them. */
void certcache_free(certcache_t *cc);

/* New reference to the certificate for name, or NULL. Counts a hit or miss; bumps LRU. */
X509 *certcache_get(certcache_t *cc, const char *name) SG_NONNULL SG_WUR;
/* Store cert under name (replacing any older one), evicting the least recently used. */
void certcache_put(certcache_t *cc, const char *name, X509 *cert) SG_NONNULL;
/* Counters since creation and the current number of entries; any out may be NULL. */
void certcache_stats(certcache_t *cc, uint64_t *hits, uint64_t *misses, size_t *size);

#endif
