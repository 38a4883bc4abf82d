/*
 * cluster.h — fleet mode: revocations shared through Redis (the policy's "cluster").
 * Network shell: a hiredis async client on the MAIN thread's event_base, never on a
 * worker. Names and records: clustermsg.h; set logic: revoke_diff, revoke_add_records.
 *
 * Two connections: one for commands, one SUBSCRIBEd to <prefix>revocations:events.
 * Once both are up (AUTH, then SUBSCRIBE confirmed), HGETALL <prefix>revocations and
 * reconcile both ways: entries Redis has and the local file lacks (or has older) are
 * added to the file and published; local entries Redis lacks (or has older) are written
 * back with a Lua script that keeps the later ts and PUBLISHes only on change. After
 * that, every change of the published local set (admin API, `sealgate revoke`, file
 * edits) is sent within SG_CLUSTER_SYNC_MS, and each message from another node is added
 * to the file and published — the path a local revocation takes, so workers see it.
 * Enforcement reads the local set only: Redis down never un-revokes anything.
 * A PING every SG_CLUSTER_PING_MS on the command connection, unanswered for
 * SG_CLUSTER_PING_TIMEOUT_MS, counts as a lost connection.
 * Lost connection or failed AUTH: both connections closed, retried after a backoff
 * (SG_CLUSTER_BACKOFF_MIN_MS doubling to SG_CLUSTER_BACKOFF_MAX_MS), reconciled again.
 *
 * Fleet-wide rate limits (fleet NULL: none): cluster_rate.h sends the table's lease
 * requests and give-backs on the command connection every SG_CLUSTER_SYNC_MS, at once on
 * cluster_rate_kick, and first leases for every credential right after each reconcile;
 * the table is told whenever the connection goes up or down (fleettab_set_up).
 *
 * Ownership: cluster_new copies what it needs from the policy (the password into wiped
 * memory); cluster_free closes the connections and frees everything. Main thread only,
 * except cluster_connected (an atomic load, any thread).
 */
#ifndef SEALGATE_CLUSTER_H
#define SEALGATE_CLUSTER_H

#include <stddef.h>

#include "fleettab.h"
#include "policy.h"

struct event_base;
typedef struct cluster cluster_t;

/*
 * Start connecting (nothing blocks: connection and AUTH happen on base). p must have
 * cluster.set and revocations_file. NULL with err set (no memory, bad address).
 */
cluster_t *cluster_new(struct event_base *base, const policy_t *p, fleettab_t *fleet,
    char *err, size_t errlen) SG_WUR;
/* A worker's lease ran low (fleettab's wake, relayed to the main thread): send the due
 * lease requests now rather than at the next tick. Main thread. NULL is fine. */
void cluster_rate_kick(cluster_t *cl);
void cluster_free(cluster_t *cl);

/* 1 connected and reconciled, 0 not (yet). */
int cluster_connected(const cluster_t *cl);

#endif
