/*
 * admin.h — the admin API (evhttp on the main event_base; policy listen.admin).
 *
 *   GET  /healthz     200 {"status":"ok"} while the loop runs
 *   GET  /readyz      200 {"status":"ready"} | 503 {"status":"not_ready"} (hooks.ready)
 *   GET  /metrics     Prometheus text (hooks.metrics, else metrics_render without sources)
 *   GET  /v1/policy   token; hooks.policy_json, else a redacted summary of the snapshot
 *   POST /v1/reload   token; 200 {"status":"reloaded","generation":N} |
 *                     422 {"error":"policy_invalid","message": located errors}
 *   POST /v1/revoke   token; body {"handle_id"|"sandbox"|"credential"|"key": value} ->
 *                     200 {"revoked":{kind:value},"changed":bool}; 400 bad body,
 *                     409 no revocations file configured, 500 write failed
 *   GET  /v1/sandboxes, GET|PUT|DELETE /v1/sandboxes/ID, POST /v1/sandboxes/ID/fork,
 *   PUT  /v1/sandboxes/ID/suspend | /resume   token; the registry (registry.h), answered
 *                     with the entry as stored
 *
 * Token: `Authorization: Bearer <admin token>`; missing 401 (WWW-Authenticate: Bearer),
 * wrong 403. The token is read from token_file at admin_new and again after every
 * successful reload (admin_refresh), kept in guarded memory and compared in constant
 * time. Errors are JSON {"error","message"} with X-Sealgate-Error; unknown path 404,
 * wrong method 405 (with Allow).
 *
 * Threads: everything runs on the event_base's thread; hooks are called there too.
 */
#ifndef SEALGATE_ADMIN_H
#define SEALGATE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* Largest admin request body (a revoke is a few dozen bytes). */
#define ADMIN_MAX_BODY		(64 * 1024)
/* Largest admin token file: a token, not a document. */
#define ADMIN_MAX_TOKEN		4096
/* Longest located-error text returned by a failed reload. */
#define ADMIN_MAX_MESSAGE	8192

typedef struct admin_hooks {
	/* Reload the policy: 0, or -1 with the located errors in msg. */
	int (*reload)(void *arg, char *msg, size_t msglen);
	/* malloc'd JSON of the current policy, secrets redacted; NULL on failure. */
	char *(*policy_json)(void *arg);
	/* malloc'd Prometheus text and its length; NULL on failure. */
	char *(*metrics)(void *arg, size_t *len);
	/* Ready to serve traffic (NULL: always). */
	bool (*ready)(void *arg);
	/* A sandbox was suspended: close its idle connections (NULL: nothing to do). */
	void (*sandboxes_changed)(void *arg);
	void *arg;
	const char *token_file;		/* admin token path (copied); NULL: no mutations */
	const char *revocations_file;	/* revocations file (copied); NULL: revoke 409 */
} admin_hooks_t;

typedef struct admin admin_t;

/* Bind listen ("host:port", port 0 picks one). NULL with err set (bad address, cannot
 * bind, token file unreadable). */
admin_t *admin_new(struct event_base *base, const char *listen, const admin_hooks_t *hooks,
    char *err, size_t errlen);
/* The bound address as "host:port". */
const char *admin_bound(const admin_t *a);
/*
 * After a reload done elsewhere (SIGHUP): adopt the published policy's admin token file
 * and revocations file (falling back to the ones given) and re-read the token. 0, or -1
 * with err set (the old token stays).
 */
int admin_refresh(admin_t *a, char *err, size_t errlen);
void admin_free(admin_t *a);

#endif
