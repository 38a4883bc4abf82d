/*
 * fetchcache.h — the table under the caches of credentials sealgate fetches for itself
 * (stscache.h: AssumeRole sets, mintcache.h: minted tokens): per key, the newest value,
 * one fetch in flight, waiters, the refresh rule's trigger, negative caching. The typed
 * caches wrap it; their headers state the rules each one's numbers give.
 *
 * Values are the caller's reference-counted objects, seen through ops (their expiry,
 * refresh time, ref and unref). fetchcache_get, now the wall clock (s), now_ms monotonic:
 *   - a value serves new requests while now < expires - ops->min_left_s; from its
 *     refresh time the request that finds it also starts a refresh (out->fetch,
 *     out->refresh) and goes on with it;
 *   - with no usable value a request waits (FETCHCACHE_WAIT) for the fetch in flight or
 *     starts one: at most one fetch per key at a time;
 *   - a waiter passes back its seq: once that fetch is done it gets its value (while
 *     now < expires: an expired value is never handed out) or its error;
 *   - after a failure, for ops->retry_ms new requests with no usable value fail at once
 *     with the same error, and those with one start no refresh; a terminal failure
 *     fails every request until the entry goes;
 *   - a fetch in flight longer than ops->stale_ms is abandoned (its answer ignored).
 * fetchcache_done reports a fetch's end and bumps the generation. Bounds: ops->max
 * entries; when full, the least recently used one with no fetch in flight goes, else
 * "cache full". Keys: BLAKE2b-256 under a random per-cache key over length-prefixed parts.
 * Pure core: time passed in. Threads: any (one mutex; the generation one atomic load).
 */
#ifndef SEALGATE_FETCHCACHE_H
#define SEALGATE_FETCHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define FETCHCACHE_KEY_LEN	32
/* Longest error text kept ("invalid_client", "timeout", "HTTP 503", …). */
#define FETCHCACHE_ERROR_MAX	128

typedef struct fetchcache_ops {
	int64_t (*expires)(const void *val);	/* unix s */
	int64_t (*refresh_at)(const void *val);	/* unix s */
	void *(*ref)(void *val);
	void (*unref)(void *val);		/* NULL is fine */
	int64_t min_left_s;
	uint64_t retry_ms, stale_ms;
	size_t max;
} fetchcache_ops_t;

typedef struct fetchcache fetchcache_t;

/* ops is borrowed (static). NULL when out of memory or libsodium fails. */
fetchcache_t *fetchcache_new(const fetchcache_ops_t *ops) SG_NONNULL SG_WUR;
/* Every entry's value released. NULL is fine. */
void fetchcache_free(fetchcache_t *c);

void fetchcache_key(const fetchcache_t *c, const char *const *parts, const size_t *lens,
    size_t n, uint8_t key[FETCHCACHE_KEY_LEN]) __attribute__((nonnull(1, 5)));

enum fetchcache_state { FETCHCACHE_READY, FETCHCACHE_WAIT, FETCHCACHE_FAILED };

typedef struct fetchcache_look {
	enum fetchcache_state state;
	void *val;			/* READY: a reference for the caller */
	uint64_t seq;			/* WAIT: the fetch to pass back; fetch: the one to start */
	bool fetch, refresh;
	char error[FETCHCACHE_ERROR_MAX];
} fetchcache_look_t;

void fetchcache_get(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, fetchcache_look_t *out) SG_NONNULL;
/* val: taken over (NULL on failure). A seq that is not the key's fetch is ignored. */
void fetchcache_done(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN], uint64_t seq,
    void *val, const char *error, bool terminal, uint64_t now_ms)
    __attribute__((nonnull(1, 2)));
/* Drop val if key still holds it; true when dropped. */
bool fetchcache_invalidate(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN],
    const void *val) SG_NONNULL;
uint64_t fetchcache_generation(const fetchcache_t *c) SG_NONNULL;
size_t fetchcache_count(fetchcache_t *c) SG_NONNULL;

#endif
