/*
 * mintcache.h — minted access tokens (policy credential "mint"): the short-lived tokens a
 * provider's token endpoint gave sealgate in exchange for a root secret (minttok.h reads
 * the answer, mintclient.h — the shell — makes the call). One cache per process, shared
 * by every worker; the table is fetchcache.h's (as stscache.h's), with a token's own
 * refresh rule and numbers.
 *
 * A token is an immutable, reference-counted mintcache_tok_t in guarded memory
 * (sodium_malloc), zeroed when its last reference goes: a refresh never pulls a token
 * from under a request still injecting the previous one (the plan holds one).
 *
 * Keys (mintcache_key): a BLAKE2b-256 under a random per-cache key over caller-given
 * parts — the credential's name, everything in its mint settings and root secret that
 * decides the answer, and the handle's narrowing (scope, audience, repositories,
 * permissions). A reload that changes none keeps the token.
 *
 * mintcache_get, now the wall clock (s), now_ms monotonic (ms):
 *   - a token serves new requests while now < expires_at - MINTCACHE_MIN_LEFT_S;
 *   - from refresh_at = now + min(expires_in / 2, expires_in - MINTCACHE_REFRESH_BEFORE_S)
 *     the request that finds it also starts a refresh (out->fetch, out->refresh) and goes
 *     on with the cached token: requests with a usable token never wait;
 *   - with no usable token a request waits (MINTCACHE_WAIT) for the fetch in flight, or
 *     starts one: at most one fetch per entry at a time (single flight);
 *   - a waiter passes back the seq it got: once that fetch is done it gets its token (as
 *     long as now < expires_at: an expired token is never returned) or its error;
 *   - after a failure, for MINTCACHE_RETRY_MS new requests with no usable token fail at
 *     once with the same error (negative cache); a terminal failure (mintcache_done with
 *     terminal: the provider said invalid_grant to a refresh token) fails every request
 *     until the entry goes (a reload that changes its key, which is what an operator does);
 *   - a fetch in flight for more than MINTCACHE_STALE_FETCH_MS is abandoned.
 * mintcache_done reports a fetch's end and bumps the generation waiting workers watch.
 * mintcache_invalidate drops a token the upstream refused (401): the next request mints.
 *
 * Bounds: MINTCACHE_MAX entries, LRU without a fetch in flight evicted, else "cache full".
 * Pure core: time passed in; no I/O. Threads: any (one mutex).
 */
#ifndef SEALGATE_MINTCACHE_H
#define SEALGATE_MINTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "fetchcache.h"
#include "util.h"

#define MINTCACHE_KEY_LEN		FETCHCACHE_KEY_LEN
/* Credentials with mint times handle narrowings in use: far below this. */
#define MINTCACHE_MAX			4096
/* A token is not handed to a new request with less than this left: the upstream must
 * still accept it when the request reaches it. */
#define MINTCACHE_MIN_LEFT_S		5
/* Refresh at half the lifetime, or this long before expiry, whichever is earlier. */
#define MINTCACHE_REFRESH_BEFORE_S	60
/* After a failed fetch, new requests fail at once for this long (the provider is not
 * hammered by a request storm). */
#define MINTCACHE_RETRY_MS		1000
/* A fetch not done by then is abandoned: three times the fetch timeout. */
#define MINTCACHE_STALE_FETCH_MS	(3 * SG_MINT_TIMEOUT_S * 1000)
/* Longest error code kept ("invalid_client", "timeout", "HTTP 503", …). */
#define MINTCACHE_ERROR_MAX		FETCHCACHE_ERROR_MAX

/* A minted token. Read-only once made; lives while referenced. */
typedef struct mintcache_tok {
	const char *token;		/* NUL-terminated, points into this allocation */
	size_t token_len;
	int64_t expires_at;		/* unix seconds */
	int64_t refresh_at;		/* unix seconds: the refresh rule above */
	unsigned refs;			/* atomic; mintcache_tok_ref / _unref only */
} mintcache_tok_t;

/* A token received at now (unix s), valid expires_in seconds. NULL when out of memory.
 * One reference, the caller's. */
mintcache_tok_t *mintcache_tok_new(const char *token, size_t len, int64_t expires_in,
    int64_t now) SG_NONNULL SG_WUR;
mintcache_tok_t *mintcache_tok_ref(mintcache_tok_t *t) SG_NONNULL;
/* Drop one reference; the last zeroes and frees. NULL is fine. */
void mintcache_tok_unref(mintcache_tok_t *t);

typedef struct mintcache mintcache_t;

mintcache_t *mintcache_new(void) SG_WUR;
void mintcache_free(mintcache_t *c);

/* The key of parts[0..n) (each with its length; a NULL part differs from an empty one). */
void mintcache_key(const mintcache_t *c, const char *const *parts, const size_t *lens,
    size_t n, uint8_t key[MINTCACHE_KEY_LEN]) __attribute__((nonnull(1, 5)));

enum mintcache_state {
	MINTCACHE_READY,	/* out->tok: a reference for the caller */
	MINTCACHE_WAIT,		/* wait for fetch out->seq (the generation moves when done) */
	MINTCACHE_FAILED,	/* out->error says why */
};

typedef struct mintcache_look {
	enum mintcache_state state;
	mintcache_tok_t *tok;
	uint64_t seq;			/* WAIT: the fetch to pass back; fetch: the one to start */
	bool fetch;			/* the caller starts fetch seq and reports it (done) */
	bool refresh;			/* ... as a refresh: a usable token is cached */
	char error[MINTCACHE_ERROR_MAX];
} mintcache_look_t;

/* What a request needing key's token gets (see above). wait_seq: 0 for a request not
 * waiting yet, else the seq it got with MINTCACHE_WAIT. */
void mintcache_get(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, mintcache_look_t *out) SG_NONNULL;
/* Fetch seq of key ended: tok (taken over; NULL on failure) or error (terminal: no retry
 * until the entry goes). A seq that is not the entry's fetch is ignored (tok released). */
void mintcache_done(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN], uint64_t seq,
    mintcache_tok_t *tok, const char *error, bool terminal, uint64_t now_ms)
    __attribute__((nonnull(1, 2)));
/* The upstream refused tok: if key still holds it, drop it (the next request mints).
 * true when it was dropped. */
bool mintcache_invalidate(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN],
    const mintcache_tok_t *tok) SG_NONNULL;
/* Fetches done so far (one atomic load): waiters look again when it moves. */
uint64_t mintcache_generation(const mintcache_t *c) SG_NONNULL;
size_t mintcache_count(mintcache_t *c) SG_NONNULL;

#endif
