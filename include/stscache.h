/*
 * stscache.h — the temporary credentials STS AssumeRole gave sealgate for aws_sigv4
 * credentials with aws.assume_role (awsrole.h builds the call, stsxml.h reads the answer,
 * stsclient.h — the shell — makes it). One cache per process, shared by every worker.
 *
 * Each credential set is an immutable, reference-counted stscache_cred_t in guarded
 * memory (sodium_malloc: mlock'd, guard pages, no core dump), zeroed and unmapped when its
 * last reference goes: a refresh replaces the cache's reference and never pulls memory
 * from under a request still signing with the previous set (the plan holds one).
 *
 * Entries are keyed by stscache_key: a BLAKE2b-256 under a random per-cache key over
 * everything that decides what AssumeRole returns — the credential's name, its long-term
 * access key id, secret and session token, the role ARN, external id, duration, compiled
 * session policy and the STS host. So the cache is per credential per policy snapshot in
 * effect, but a reload that changes none of these keeps the set (no AssumeRole storm on
 * every SIGHUP), and one that changes any (a rotated key, a narrower scope) starts afresh.
 *
 * stscache_get, with now the wall clock (expirations are STS's wall-clock times):
 *   - a set serves new requests while now < expiration - STSCACHE_MIN_LEFT_S;
 *   - from its refresh time — the earlier of STSCACHE_REFRESH_PCT % of its lifetime and
 *     STSCACHE_REFRESH_BEFORE_S before expiration — the request that finds it also starts
 *     a refresh (out->fetch, out->refresh) and goes on with the cached set: requests with
 *     a usable set never wait;
 *   - with no usable set a request waits (STSCACHE_WAIT) for the fetch in flight, or starts
 *     one (out->fetch): at most one fetch per entry at a time;
 *   - a waiter passes back the seq it got: once that fetch is done it gets its result
 *     (READY even with less than STSCACHE_MIN_LEFT_S left, as long as the set has not
 *     expired: it is STS's newest answer) or its error (STSCACHE_FAILED);
 *   - after a failure, for STSCACHE_RETRY_MS new requests with no usable set fail at once
 *     with the same error, and those with one start no refresh, rather than start another
 *     fetch (no request storm toward STS);
 *   - a fetch in flight for more than STSCACHE_STALE_FETCH_MS is abandoned: its answer is
 *     ignored when it comes, and the next request starts another.
 * stscache_done reports a fetch's end (a set, or an error) and bumps the generation,
 * which waiting workers watch.
 *
 * Bounds: STSCACHE_MAX entries; when full, the least recently used entry with no fetch in
 * flight goes (its set is released), else the new key fails ("cache full").
 *
 * The table (entries, single flight, waiters, retry and stale windows, eviction, keys) is
 * fetchcache.h's, shared with mintcache.h; this module gives it its numbers and values.
 *
 * Pure core: the time is passed in (wall seconds for expirations, monotonic ms for the
 * retry and stale windows); no I/O. Threads: every function may be called from any
 * thread (one mutex; stscache_generation is one atomic load).
 */
#ifndef SEALGATE_STSCACHE_H
#define SEALGATE_STSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "awssign.h"
#include "defaults.h"
#include "fetchcache.h"
#include "policy.h"
#include "util.h"

#define STSCACHE_KEY_LEN		FETCHCACHE_KEY_LEN
/* Credentials with assume_role times the reloads that changed them: far below this. */
#define STSCACHE_MAX			1024
/* A set is not handed to a new request with less than this left: the request must still
 * be signed by live credentials when AWS reads it (STS and sealgate clocks may differ). */
#define STSCACHE_MIN_LEFT_S		60
/* Refresh at 80 % of the lifetime, or 5 minutes before expiry, whichever is earlier. */
#define STSCACHE_REFRESH_PCT		80
#define STSCACHE_REFRESH_BEFORE_S	300
/* After a failed fetch, new requests fail at once for this long (STS is not hammered). */
#define STSCACHE_RETRY_MS		1000
/* A fetch not done by then is abandoned: three times the fetch timeout (SG_STS_TIMEOUT_S). */
#define STSCACHE_STALE_FETCH_MS		(3 * SG_STS_TIMEOUT_S * 1000)
/* Longest error text kept ("InvalidClientTokenId", "timeout", "HTTP 503", …). */
#define STSCACHE_ERROR_MAX		FETCHCACHE_ERROR_MAX

/* A set of temporary credentials. Read-only once made; lives while referenced. */
typedef struct stscache_cred {
	awssign_identity_t id;		/* points into this allocation */
	int64_t expiration;		/* unix seconds (STS's Expiration) */
	int64_t refresh_at;		/* unix seconds: the refresh rule above */
	unsigned refs;			/* atomic; stscache_cred_ref / _unref only */
} stscache_cred_t;

/* A set received at now (unix s). Copies the strings into guarded memory; NULL when out
 * of memory. One reference, the caller's. */
stscache_cred_t *stscache_cred_new(const char *akid, size_t akid_len, const char *secret,
    size_t secret_len, const char *token, size_t token_len, int64_t expiration,
    int64_t now) __attribute__((nonnull(1, 3))) SG_WUR;
stscache_cred_t *stscache_cred_ref(stscache_cred_t *c) SG_NONNULL;
/* Drop one reference; the last zeroes and frees. NULL is fine. */
void stscache_cred_unref(stscache_cred_t *c);

typedef struct stscache stscache_t;

/* An empty cache, or NULL when out of memory (or libsodium fails). */
stscache_t *stscache_new(void) SG_WUR;
/* Release every entry's set and free. NULL is fine. */
void stscache_free(stscache_t *c);

/* The entry key of cred (INJECT_AWS_SIGV4 with assume_role) under c's hash key. */
void stscache_key(const stscache_t *c, const policy_credential_t *cred,
    uint8_t key[STSCACHE_KEY_LEN]) SG_NONNULL;

enum stscache_state {
	STSCACHE_READY,		/* out->cred: a reference for the caller */
	STSCACHE_WAIT,		/* wait for fetch out->seq (the generation moves when done) */
	STSCACHE_FAILED,	/* out->error says why */
};

typedef struct stscache_look {
	enum stscache_state state;
	stscache_cred_t *cred;
	uint64_t seq;			/* WAIT: the fetch to pass back; fetch: the one to start */
	bool fetch;			/* the caller starts fetch seq and reports it (done) */
	bool refresh;			/* ... as a refresh: a usable set is cached */
	char error[STSCACHE_ERROR_MAX];
} stscache_look_t;

/* What a request needing key's identity gets (see above). wait_seq: 0 for a request that
 * is not waiting yet, else the seq it got with STSCACHE_WAIT. */
void stscache_get(stscache_t *c, const uint8_t key[STSCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, stscache_look_t *out) SG_NONNULL;
/* Fetch seq of key ended: cred (the caller's reference, taken over; NULL on failure) or
 * error. A seq that is not the entry's current fetch is ignored (cred released). */
void stscache_done(stscache_t *c, const uint8_t key[STSCACHE_KEY_LEN], uint64_t seq,
    stscache_cred_t *cred, const char *error, uint64_t now_ms)
    __attribute__((nonnull(1, 2)));
/* Fetches done so far (one atomic load): waiters look again when it moves. */
uint64_t stscache_generation(const stscache_t *c) SG_NONNULL;
/* Entries now. */
size_t stscache_count(stscache_t *c) SG_NONNULL;

#endif
