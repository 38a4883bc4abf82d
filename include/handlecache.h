/*
 * handlecache.h — verified handles cached by a keyed hash of their text, so the X25519
 * unseal runs once per handle, not once per request. Pure core: no sockets, no clocks
 * (time is not checked here: authz_check does that on every request).
 *
 * Key: BLAKE2b-256 (crypto_generichash) of the handle text under a random per-cache key,
 * so the table stores no handle text and its layout cannot be steered from outside.
 * Failures are never cached. A hit re-checks the key id against the keyring passed in
 * (the current one: keyrings change on reload), so a key retired or dropped since the
 * entry was made answers HANDLE_E_RETIRED_KEY / HANDLE_E_UNKNOWN_KEY.
 *
 * Ownership: handlecache_open hands out a reference to immutable claims; drop it with
 * handlecache_release. Evicted entries live on until their last reference is released;
 * handlecache_free drops only the cache's references (claims still held stay valid and
 * are freed by their last handlecache_release, which may then be passed the freed cache).
 *
 * Threads: every function may be called from any thread (one mutex, held only for table
 * work; the unseal runs outside it). A hit allocates nothing.
 */
#ifndef SEALGATE_HANDLECACHE_H
#define SEALGATE_HANDLECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "handle.h"
#include "seal.h"
#include "util.h"


typedef struct handlecache handlecache_t;

/* A cache holding at most max verified handles (max >= 1); NULL on bad max or no memory. */
handlecache_t *handlecache_new(size_t max) SG_WUR;
void handlecache_free(handlecache_t *hc);

/*
 * Verified claims of the handle text[0..len): from the cache (after the key id check
 * against kr) or from handle_open, then cached. HANDLE_OK with *out set to a new
 * reference, or a negative handle_err with *out NULL.
 */
int handlecache_open(handlecache_t *hc, const seal_keyring_t *kr, const char *text,
    size_t len, const handle_claims_t **out) SG_NONNULL SG_WUR;

/* Drop a reference from handlecache_open (c may be NULL). hc is not dereferenced. */
void handlecache_release(handlecache_t *hc, const handle_claims_t *c);

/* Counters since creation and the current number of entries; any out may be NULL. */
void handlecache_stats(handlecache_t *hc, uint64_t *hits, uint64_t *misses, size_t *size)
    __attribute__((nonnull(1)));

/* References held on the claims (the cache's one included while cached): for tests. */
int handlecache_refs(const handle_claims_t *c) SG_NONNULL;

#endif
