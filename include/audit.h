/*
 * audit.h — the audit trail: one compact JSON line per decision (request forwarded,
 * denied, rate limited, handle minted, revocation, reload, possible exfiltration).
 *
 * audit_log formats the line on the caller's thread and puts it on a bounded queue; one
 * writer thread writes and flushes in batches (it gathers lines for up to
 * AUDIT_LINGER_US or AUDIT_BATCH_MAX lines before each write; close and reopen flush). Event loops never wait for the disk: a
 * full queue drops the line and counts it (audit_dropped, exported as a metric).
 *
 * One audit stream per process. Before audit_open and after audit_close, audit_log does
 * nothing. Lines hold ids and names only: never pass a secret or handle text.
 *
 * Line fields, in this order, each omitted when NULL (strings) or 0 (numbers):
 *   time (RFC 3339 UTC, ms), event, sandbox, origin_sandbox, source, handle_id,
 *   credential, method,
 *   host, port, path (query and fragment cut off here), status, error, bytes_up,
 *   bytes_down (both written whenever status is set), upstream_ms, total_ms, detail.
 */
#ifndef SEALGATE_AUDIT_H
#define SEALGATE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

/* Lines waiting for the writer: ~64 MiB at 1 KiB a line, seconds of a stalled disk. */
#define AUDIT_QUEUE_MAX		65536
/* Lines the writer takes per lock and writes before one flush. */
#define AUDIT_BATCH_MAX		1024
/* How long the writer, once it has a line, waits for more before writing (2 ms): the
 * most a line sits in memory before its write(2) unless the queue backs up. */
#define AUDIT_LINGER_US		2000
/* Mode of a created audit file: it names sandboxes and hosts, not secrets. */
#define AUDIT_FILE_MODE		0640

typedef struct audit_event {
	const char *event;	/* "request" | "denied" | "rate_limited" | "brute_force" |
				 * "assume_role" (an STS call for a credential) |
				 * "minted" | "revoked" | "reload" | "exfiltration" (required) */
	const char *sandbox;	/* the sandbox the request (or event) is about */
	const char *origin_sandbox;	/* the handle's own sandbox when it was accepted from a
				 * fork or restore of it (lineage); a fork's parent */
	const char *source, *handle_id, *credential;
	const char *method, *host, *path;	/* path may carry a query: it is cut */
	uint16_t port;
	int status;		/* HTTP status answered */
	const char *error;	/* error code, e.g. "scope_denied" */
	uint64_t bytes_up, bytes_down;
	double upstream_ms, total_ms;
	const char *detail;	/* free text; never secrets or handle text */
} audit_event_t;

/*
 * Start the writer on path ("-": stdout), appending (file created AUDIT_FILE_MODE).
 * Returns 0, or -1 with err set (already open, cannot open, no thread).
 */
int audit_open(const char *path, char *err, size_t errlen);
/* Write what is queued, stop the writer, close the file. Safe when not open. */
void audit_close(void);
/*
 * Reopen the file by name (after logrotate renamed it): lines logged before this call
 * go to the old file, later ones to the new. The writer thread does the reopen; on
 * failure it logs a warning and keeps the old file. Thread-safe, not async-signal-safe
 * (call it from an event loop's signal event). No-op for stdout or when not open.
 */
void audit_reopen(void);
/* Format ev (time added) and queue it. Never blocks on I/O. */
void audit_log(const audit_event_t *ev);

/* Lines dropped because the queue was full, since start. */
uint64_t audit_dropped(void);

#endif
