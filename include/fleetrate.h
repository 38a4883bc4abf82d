/*
 * fleetrate.h — the lease arithmetic of a fleet-wide rate limit. Pure core: the caller
 * passes the time (monotonic milliseconds) and does all I/O.
 *
 * A fleet-wide limit (a credential's rate_total held across all sidecars) lives in one
 * token bucket in Redis. A sidecar does not ask Redis once per request: it takes tokens
 * from the fleet bucket a lease at a time and admits requests from its local lease. This
 * module decides, for one limit in one sidecar:
 *   - how big a lease to ask for (fleetrate_lease_size: the demand of the last lease
 *     period, at least 1, at most burst / SG_FLEETRATE_LEASE_BURST_DIV and
 *     SG_FLEETRATE_LEASE_MAX);
 *   - when to ask (fleetrate_refill_start: at the low-water mark, lease /
 *     SG_FLEETRATE_LOW_WATER_DIV but at least 1, one request in flight at a time, never
 *     before the wait the fleet last announced is over);
 *   - whether a request is admitted (fleetrate_take) and its Retry-After;
 *   - what goes back to the fleet (fleetrate_expire when the lease is
 *     SG_FLEETRATE_LEASE_MS old, fleetrate_release on shutdown);
 *   - the local share used while the fleet is unreachable (fleetrate_local_share).
 *
 * Bounds: every admitted request spent a token the fleet bucket handed out, so while the
 * fleet answers the fleet never admits more than its budget; the price is stranding: a
 * sidecar holds at most lease + low-water tokens (fleetrate_held_max) that others cannot
 * use until it spends them or gives them back, within SG_FLEETRATE_LEASE_MS.
 *
 * Thread-safety: none; a fleetrate_lease_t is plain state the caller owns and locks.
 * No allocation, nothing to free.
 */
#ifndef SEALGATE_FLEETRATE_H
#define SEALGATE_FLEETRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "util.h"

typedef struct fleetrate_lease {
	uint32_t tokens;	/* local tokens not yet spent */
	uint64_t expires_ms;	/* tokens held go back to the fleet then */
	uint32_t demand;	/* requests (admitted or not) in the current demand window */
	uint32_t last_demand;	/* ...and in the one before it */
	uint64_t window_ms;	/* start of the current demand window (SG_FLEETRATE_LEASE_MS) */
	bool pending;		/* a lease request is in flight */
	uint64_t fleet_wait_ms;	/* the fleet's last answer: ms until it has a token (0: granted) */
	uint64_t answered_ms;	/* when that answer came */
} fleetrate_lease_t;

/* A lease holding nothing, its demand window starting at now_ms. */
void fleetrate_init(fleetrate_lease_t *l, uint64_t now_ms) SG_NONNULL;

/*
 * Tokens to ask for when demand requests arrived in the last lease period, under the
 * fleet-wide rate: demand clamped to [1, fleetrate_lease_cap(rate)]. 0 when the rate is
 * unset or has no requests.
 */
uint32_t fleetrate_lease_size(const policy_rate_t *rate, uint32_t demand) SG_NONNULL;

/* The largest lease for rate: min(SG_FLEETRATE_LEASE_MAX, burst / DIV), at least 1;
 * 0 when the rate is unset or has no requests. */
uint32_t fleetrate_lease_cap(const policy_rate_t *rate) SG_NONNULL;

/* The low-water mark of a lease of size tokens: size / SG_FLEETRATE_LOW_WATER_DIV, >= 1. */
uint32_t fleetrate_low_water(uint32_t size);

/* The most tokens one sidecar holds at once under rate: cap + low_water(cap). This is
 * what one sidecar can strand (and, after a partition, spend beyond the fleet's view). */
uint32_t fleetrate_held_max(const policy_rate_t *rate) SG_NONNULL;

/*
 * Should a lease be asked for now? Returns the tokens to ask for (and marks the lease
 * pending) when none is in flight, the local tokens are at or below the low-water mark
 * and the fleet's last "wait" is over; else 0. The caller then sends the request and
 * reports its end with fleetrate_refill_done or fleetrate_refill_failed.
 */
uint32_t fleetrate_refill_start(fleetrate_lease_t *l, const policy_rate_t *rate,
    uint64_t now_ms) SG_NONNULL SG_WUR;

/*
 * The fleet answered at now_ms: granted tokens are added (saturating) and every token
 * held now expires SG_FLEETRATE_LEASE_MS later; with granted 0, wait_ms is how long
 * until the fleet bucket has a token (no refill is asked for before then).
 */
void fleetrate_refill_done(fleetrate_lease_t *l, uint32_t granted, uint64_t wait_ms,
    uint64_t now_ms) SG_NONNULL;

/* The request failed (the fleet is unreachable): another may be started at once. */
void fleetrate_refill_failed(fleetrate_lease_t *l) SG_NONNULL;

/*
 * One request at now_ms: counted as demand; admitted (true) when a local token is held
 * and the lease has not expired, and then the token is spent. Refused: *retry_after_ms
 * (may be NULL) is fleetrate_retry_after_ms.
 */
bool fleetrate_take(fleetrate_lease_t *l, const policy_rate_t *rate, uint64_t now_ms,
    uint64_t *retry_after_ms) __attribute__((nonnull(1, 2)));

/*
 * Retry-After of a refused request, in ms, at least 1: what is left of the wait the
 * fleet announced; with none (the lease ran dry, a refill is due) the time the fleet
 * bucket takes to make one token, ceil(per_ms / requests). 1 for an unusable rate.
 */
uint64_t fleetrate_retry_after_ms(const fleetrate_lease_t *l, const policy_rate_t *rate,
    uint64_t now_ms) SG_NONNULL;

/*
 * Undo one admitted fleetrate_take (another limit of the same request refused it, and
 * a request is admitted by all its limits or none): the token is held again. A token
 * the lease has meanwhile given back (expired) is not restored: returns 1 when held
 * again, 0 when dropped (the caller gives it back to the fleet).
 */
int fleetrate_untake(fleetrate_lease_t *l, uint64_t now_ms) SG_NONNULL SG_WUR;

/* At now_ms: when the lease has expired, the tokens to give back (they are dropped from
 * the lease); else 0. */
uint32_t fleetrate_expire(fleetrate_lease_t *l, uint64_t now_ms) SG_NONNULL SG_WUR;

/* Shutdown: every token held, to give back; the lease is left empty. */
uint32_t fleetrate_release(fleetrate_lease_t *l) SG_NONNULL SG_WUR;

/*
 * The per-sidecar rate while the fleet is unreachable ("local_share"): total's requests
 * and burst (burst 0 meaning requests) divided by nodes, rounded down but at least 1, the
 * same period. nodes 0 counts as SG_FLEETRATE_NODES_DEFAULT. An unset total gives an
 * unset rate. With N sidecars the fleet then admits at most max(total, N) per period.
 */
policy_rate_t fleetrate_local_share(const policy_rate_t *total, uint32_t nodes) SG_NONNULL;

#endif
