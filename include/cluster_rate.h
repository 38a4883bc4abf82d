/*
 * cluster_rate.h — fleet-wide rate limits over Redis: the lease requests and give-backs
 * of a fleettab (fleettab.h), sent on the cluster's command connection.
 * Network shell: MAIN thread only (hiredis async on the main event_base).
 *
 * One token bucket per credential, the hash <prefix>rate:<credential> {t, ts}, kept by
 * two Lua scripts run with EVAL: "take" refills the bucket from Redis's own clock (TIME,
 * so the sidecars' clocks do not matter), takes up to the tokens asked for and answers
 * {granted, wait_ms} (wait_ms: until the bucket has a token, when none was granted);
 * "give" puts unused tokens back (never above the burst). The key expires once it
 * would have refilled to full anyway.
 *
 * Ownership: cluster_rate_new copies the prefix; the table is the caller's and must
 * outlive the object. Callbacks of requests in flight when the connection is freed run
 * with no reply (the lease is marked failed), so free the connection first.
 */
#ifndef SEALGATE_CLUSTER_RATE_H
#define SEALGATE_CLUSTER_RATE_H

#include "fleettab.h"

struct redisAsyncContext;
typedef struct cluster_rate cluster_rate_t;

cluster_rate_t *cluster_rate_new(fleettab_t *t, const char *prefix) SG_WUR;
void cluster_rate_free(cluster_rate_t *r);

/*
 * Send what the table has due now: lease requests and give-backs. c is the command
 * connection while the cluster is up, NULL otherwise (then only the table's bookkeeping
 * runs). 0, or -1 when a command could not be queued (the connection is broken).
 */
int cluster_rate_run(cluster_rate_t *r, struct redisAsyncContext *c);

#endif
