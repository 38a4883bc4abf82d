/*
 * ratelimit.h — token buckets keyed by bytes (handle id, credential, sandbox), shared by
 * all workers. Pure core: the caller passes the time (monotonic milliseconds).
 *
 * A bucket holds at most rate->burst tokens (rate->requests when burst is 0) and refills
 * continuously at rate->requests per rate->per_ms. Levels are kept in fixed point (one
 * token = per_ms units, refill = requests units per millisecond), so long runs do not
 * drift. A new key starts with a full bucket.
 *
 * Thread-safety: all calls but _new/_free may run concurrently. The table is split into
 * up to RATELIMIT_STRIPES stripes, each a chained hash under its own mutex; keys are
 * hashed with SipHash (hash_keyed, hash.h) under a random per-table key, so callers cannot
 * pick keys that pile into one chain. A take that spans stripes locks them in ascending
 * order. Every call is O(n) in the number of buckets it names and O(1) in table size.
 *
 * Memory: at most max_buckets buckets. A stripe that is full evicts before inserting:
 * first a bucket that has refilled to full among the RATELIMIT_EVICT_SCAN least recently
 * used (lossless: a full bucket is the same as a fresh one), else the least recently
 * used (lossy: that key starts over with a full bucket).
 */
#ifndef SEALGATE_RATELIMIT_H
#define SEALGATE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "util.h"

/* Lock stripes: enough that 4..64 workers rarely meet on one mutex. */
#define RATELIMIT_STRIPES	64
/* Buckets named by one take (handle, credential total, sandbox, ... ). */
#define RATELIMIT_MAX_REQS	8
/* LRU entries examined for a lossless (full) eviction before taking the oldest. */
#define RATELIMIT_EVICT_SCAN	8
/* Longest key. */
#define RATELIMIT_MAX_KEY	256
/* result.limiting when no request named a set rate. */
#define RATELIMIT_NONE		SIZE_MAX

typedef struct ratelimit ratelimit_t;

struct ratelimit_req {
	const void *key;		/* bucket identity, keylen bytes (1..RATELIMIT_MAX_KEY) */
	size_t keylen;
	const policy_rate_t *rate;	/* NULL or !set: no limit, the req is ignored */
};

struct ratelimit_result {
	bool allowed;
	size_t limiting;	/* denied: the bucket with the longest wait; allowed: the one
				 * with the fewest tokens left; RATELIMIT_NONE if no limit */
	uint64_t retry_after_ms;	/* denied: ms until every bucket has a token (ceil) */
	uint32_t remaining;	/* whole tokens left in the limiting bucket */
	uint32_t limit;		/* its rate->requests (RateLimit-Policy q=) */
	uint32_t burst;		/* its capacity */
	uint64_t window_ms;	/* its rate->per_ms (RateLimit-Policy w=) */
	uint64_t reset_ms;	/* ms until it is full again (RateLimit t=) */
};

/* A table of at most max_buckets (>= 1) buckets. NULL on allocation failure. */
ratelimit_t *ratelimit_new(size_t max_buckets) SG_WUR;
void ratelimit_free(ratelimit_t *rl);

/*
 * Take one token from each of reqs[0..n) at time now_ms, all or none: when any bucket
 * is empty nothing is taken and res->allowed is false. The same key named twice needs
 * two tokens. Returns 0 with res filled, -1 on bad arguments (n > RATELIMIT_MAX_REQS,
 * bad key length) or allocation failure (res->allowed false: callers fail closed).
 */
int ratelimit_take(ratelimit_t *rl, const struct ratelimit_req *reqs, size_t n,
    uint64_t now_ms, struct ratelimit_result *res) __attribute__((nonnull(1, 5))) SG_WUR;

/*
 * What taking one token from req would answer at now_ms, taking nothing: res as for
 * ratelimit_take (allowed: the bucket holds at least one token; denied: retry_after_ms
 * until it does). A key not in the table is a full bucket: allowed, nothing is stored.
 * A stored bucket is brought up to date (refilled to now, rescaled to req->rate) and
 * counts as recently used. A req without a usable rate is allowed with limiting
 * RATELIMIT_NONE. Returns 0, or -1 on a bad key length (res->allowed false).
 */
int ratelimit_peek(ratelimit_t *rl, const struct ratelimit_req *req, uint64_t now_ms,
    struct ratelimit_result *res) SG_NONNULL SG_WUR;

/*
 * Response header fields for res, per draft-ietf-httpapi-ratelimit-headers-08
 * (R. Polli, A. Martinez, D. Miller, 7 October 2024), whose fields are Structured Field
 * Lists (RFC 9651) of one Item: the policy name as an sf-string with Integer parameters.
 * Written to buf, NUL-terminated, each line ending in CRLF:
 *
 *   Retry-After: <ceil(retry_after_ms / 1000), at least 1>     (only when denied)
 *   RateLimit-Policy: "<policy_name>";q=<burst>;w=<ceil(window_ms / 1000), >= 1>
 *   RateLimit: "<policy_name>";r=<remaining>;t=<ceil(reset_ms / 1000)>
 *
 * q is the bucket's capacity (burst): what a client may send at once; the bucket refills
 * at limit per window, so q = burst over w seconds is the draft's nearest term.
 * '"' and '\' in policy_name are escaped; names with bytes outside 0x20..0x7e are
 * refused (as are names over 64 bytes). With no limiting bucket (res->limiting == RATELIMIT_NONE) nothing is written.
 * Returns the length written, or -1 (buf set to "" when len > 0) for a bad name or
 * when buf is too small.
 */
int ratelimit_format_headers(const struct ratelimit_result *res, const char *policy_name,
    char *buf, size_t len) __attribute__((nonnull(1, 2)));

/* Buckets currently stored (for tests and metrics). */
size_t ratelimit_count(ratelimit_t *rl) SG_NONNULL;

#endif
