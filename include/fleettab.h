/*
 * fleettab.h — the fleet leases of one sidecar: one fleetrate_lease_t per credential
 * with rate_total, keyed by credential name, shared by the workers (which spend tokens)
 * and the main thread (which asks the fleet for leases and gives tokens back).
 * Pure core: the caller passes the time (monotonic milliseconds) and does all I/O.
 *
 * Workers: fleettab_take / fleettab_untake. A take that leaves the lease at or below its
 * low-water mark (or finds it empty) calls the wake function given to fleettab_new,
 * outside the lock, so the main thread asks for the next lease without waiting for its
 * tick. Main thread: fleettab_sync (start and every reload), fleettab_set_up (the fleet
 * became reachable or not), fleettab_collect (what to ask for and give back now), then
 * fleettab_answer / fleettab_failed for each lease request it sent.
 *
 * Reload: entries are matched by credential name and keep their lease; a credential
 * that disappeared (or lost its rate_total) is kept, marked gone, until its tokens are
 * collected as a give-back and no lease request of it is in flight.
 * Fleet unreachable: fleettab_up is false (callers then use the local share) and the
 * tokens held, or due to go back, are dropped (counted as spent): the Redis that comes
 * back may have restarted empty, and giving them to it would admit them twice.
 *
 * Thread-safety: one mutex over the table; fleettab_up is an atomic load. Lookups are a
 * binary search over the sorted names. Ownership: the table copies names and rates.
 */
#ifndef SEALGATE_FLEETTAB_H
#define SEALGATE_FLEETTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "util.h"

/* Longest credential name a job carries (longer names are not fleet-limited: refused
 * at sync with -1 logged by the caller). */
#define FLEETTAB_NAME_MAX	128

typedef struct fleettab fleettab_t;
typedef void (*fleettab_wake_fn)(void *arg);

/* One thing for the main thread to send for one credential. */
typedef struct fleettab_job {
	char name[FLEETTAB_NAME_MAX + 1];
	policy_rate_t rate;	/* the credential's rate_total, for the fleet bucket */
	uint32_t take;		/* tokens to ask for (a lease request is now in flight) */
	uint32_t give;		/* tokens to give back */
} fleettab_job_t;

/* An empty table, fleet unreachable. wake (may be NULL) is called from any thread. */
fleettab_t *fleettab_new(fleettab_wake_fn wake, void *arg) SG_WUR;
void fleettab_free(fleettab_t *t);

/* Match the table to p's credentials with rate_total: 0, or -1 (no memory, or a name
 * longer than FLEETTAB_NAME_MAX; the table is then unchanged). */
int fleettab_sync(fleettab_t *t, const policy_t *p, uint64_t now_ms) SG_NONNULL SG_WUR;

/* The fleet is reachable (up) or not; going down drops every token held or owed. */
void fleettab_set_up(fleettab_t *t, bool up) SG_NONNULL;
bool fleettab_up(const fleettab_t *t) SG_NONNULL;

/*
 * One request of credential name at now_ms: 1 admitted (a fleet token spent), 0 refused
 * (*retry_after_ms set, at least 1), -1 the credential has no fleet lease (not in the
 * table, or the fleet is unreachable).
 */
int fleettab_take(fleettab_t *t, const char *name, uint64_t now_ms,
    uint64_t *retry_after_ms) SG_NONNULL;

/* Undo one admitted fleettab_take: held again, or (lease expired) given back later. */
void fleettab_untake(fleettab_t *t, const char *name, uint64_t now_ms) SG_NONNULL;

/* Main thread: up to max jobs due at now_ms (refills only while up). Returns the count. */
size_t fleettab_collect(fleettab_t *t, uint64_t now_ms, fleettab_job_t *jobs, size_t max)
    SG_NONNULL;

/* The fleet answered a lease request of name: granted tokens, or none and wait_ms.
 * Returns tokens to give back at once (the credential is gone), else 0. */
uint32_t fleettab_answer(fleettab_t *t, const char *name, uint32_t granted,
    uint64_t wait_ms, uint64_t now_ms) SG_NONNULL SG_WUR;

/* A lease request of name got no answer (the fleet is unreachable). */
void fleettab_failed(fleettab_t *t, const char *name) SG_NONNULL;

#endif
