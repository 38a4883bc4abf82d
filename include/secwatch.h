/*
 * secwatch.h — keeps the rotating secrets of the published policy current, on the main
 * thread's event loop: a "file" secret's folder is watched with inotify (a new file
 * renamed over it, a Kubernetes "..data" symlink swap, a rewrite), an "exec" secret's
 * command is run again before its value's ttl ends. A value that changed is published
 * into the credential's live cell (policy.h, secval.h) as a new record that keeps the
 * replaced value for SG_SECRET_SCRUB_GRACE_S; workers take it at their next request.
 * Nothing else of the policy changes.
 *
 * Each rotation: a log line (info), an audit event "secret_rotated" and the
 * secret_rotations counter; each failed read or run: a warning and the
 * secret_source_failures counter (the last good value stays: a file's for good, an
 * exec's until its ttl ends, then requests get 502 secret_unavailable). Values never
 * reach a log line or the audit trail; a command's stderr is counted, not logged.
 *
 * Threads: everything here runs on base's thread, except the command runs (secexec.h),
 * each on a thread of its own, at most one per source; the timer (SG_SECRET_TICK_MS)
 * collects them. The watcher holds a reference to its policy.
 */
#ifndef SEALGATE_SECWATCH_H
#define SEALGATE_SECWATCH_H

#include <stddef.h>

#include <event2/event.h>

#include "policy.h"
#include "util.h"

typedef struct secwatch secwatch_t;

/*
 * Start watching p's rotating secrets (none: a watcher with nothing to do). prev: the
 * watcher of the policy p replaces, or NULL; an exec secret of prev with the same
 * credential name and argv hands over its value and schedule. Every other exec secret
 * runs now, blocking, up to its timeout: its first value. NULL with err set when one
 * fails (serve refuses to start; a reload keeps the old policy) or a folder cannot be
 * watched.
 */
secwatch_t *secwatch_new(struct event_base *base, policy_t *p, const secwatch_t *prev,
    char *err, size_t errlen) __attribute__((nonnull(1, 2, 4))) SG_WUR;
/* Stop: waits for command runs under way (each ends by its timeout). NULL is fine. */
void secwatch_free(secwatch_t *w);

#endif
