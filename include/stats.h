/*
 * stats.h — process-wide counters, updated with relaxed atomics from any thread and
 * read by the metrics endpoint and the logs. Never hold secrets here.
 */
#ifndef SEALGATE_STATS_H
#define SEALGATE_STATS_H

#include <stdint.h>

struct sg_stats {
	uint64_t conns_accepted, conns_active, conns_rejected;
	uint64_t requests_total, requests_forwarded, requests_failed;
	uint64_t errors_bad_request, errors_egress, errors_upstream, errors_timeout;
	uint64_t errors_host_mismatch;
	uint64_t tls_client_handshakes, tls_client_failures;
	uint64_t tls_upstream_handshakes, tls_upstream_failures;
	uint64_t tunnels, websockets;
	uint64_t accept_paused;
	uint64_t conns_parked;
	/* the failed-handle throttle (swap_throttle_*) */
	uint64_t handle_failures, handle_throttled, brute_force;
	uint64_t sandbox_suspends, sandbox_resumes;	/* admin: suspend / resume */
	uint64_t suspended_refused;	/* requests refused: their sandbox is suspended */
	uint64_t suspended_closed;	/* idle connections closed: their sandbox suspended */
	uint64_t handles_lineage;	/* handles accepted through fork/restore lineage */
	/* STS AssumeRole for aws_sigv4 credentials with assume_role (stsclient.c) */
	uint64_t assume_role_fetches;	/* calls made (refreshes included) */
	uint64_t assume_role_refreshes;	/* ... of them while a usable set was cached */
	uint64_t assume_role_failures;	/* calls that gave no credentials */
	/* token endpoint calls for credentials with mint (mintclient.c) */
	uint64_t mint_fetches;		/* calls made (refreshes included) */
	uint64_t mint_refreshes;	/* ... of them while a usable token was cached */
	uint64_t mint_failures;		/* calls that gave no token */
	uint64_t mint_retries;		/* requests sent again after a 401 to their token */
	/* rotating secret sources (secwatch.c) */
	uint64_t secret_rotations;	/* a file or exec secret changed value */
	uint64_t secret_source_failures;	/* a read or run that gave no usable value */
	uint64_t git_push_refused;	/* git pushes refused by a credential's git.push */
	/* fleet mode (cluster.c) */
	uint64_t cluster_connected;	/* gauge: 1 connected to Redis and reconciled */
	uint64_t cluster_reconnects;	/* connection attempts after the first */
	uint64_t cluster_revocations_sent;	/* entries this node added to Redis */
	uint64_t cluster_revocations_applied;	/* entries from Redis added locally */
	uint64_t cluster_rate_leases;	/* rate leases the fleet granted (>= 1 token) */
	uint64_t cluster_rate_tokens_returned;	/* unused lease tokens given back */
};

extern struct sg_stats sg_stats;

#define STATS_INC(f) __atomic_add_fetch(&sg_stats.f, 1, __ATOMIC_RELAXED)
#define STATS_DEC(f) __atomic_sub_fetch(&sg_stats.f, 1, __ATOMIC_RELAXED)
#define STATS_GET(f) __atomic_load_n(&sg_stats.f, __ATOMIC_RELAXED)

#endif
