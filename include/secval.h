/*
 * secval.h — the live value of a rotating credential secret (a "file" source that is
 * watched, an "exec" source that is run again): an immutable, refcounted record of the
 * current value, the value it replaced (scrubbed from responses until a grace period
 * ends) and when the current value stops being usable.
 *
 * A record is published in a snapshot_cell_t (snapshot.h, secval_cell_ops) that the
 * credential owns (policy_credential_t.live). A rotation publishes a NEW record; readers
 * that acquired the old one keep it until they drop their reference, so a request
 * finishes on the value it started with. The last unref zeroes and unmaps both values.
 *
 * Times are monotonic milliseconds passed in (pure core: no clock reads). Values are in
 * wipe memory (secmem.h), zeroed when freed: a guarded region per value would cost ~4
 * memory mappings per file credential (a policy's other secrets share an arena for that
 * reason, test_policy's test_big_policy). Allocation failures return NULL. Threads: a record is
 * read-only after it is made and may be read by any thread; ref/unref are atomic.
 */
#ifndef SEALGATE_SECVAL_H
#define SEALGATE_SECVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"
#include "util.h"

typedef struct secval {
	int refs;			/* atomic */
	char *value;			/* wipe memory, NUL-terminated */
	size_t len;
	uint64_t expires_ms;		/* 0: never; else unusable from this instant on */
	char *prev;			/* the value this one replaced, or NULL (wipe memory) */
	size_t prev_len;
	uint64_t prev_until_ms;		/* prev is scrubbed before this instant */
} secval_t;

/* ref/unref for a snapshot_cell_t holding secval_t records. */
extern const snapshot_ops_t secval_cell_ops;

/* A first value (no previous one), usable until expires_ms (0: always). */
secval_t *secval_new(const char *v, size_t len, uint64_t expires_ms) SG_NONNULL SG_WUR;
/*
 * The record that follows cur (NULL: none yet) when a source gives v. When v equals
 * cur's value, a copy of cur with the new expiry (*rotated false); otherwise v is
 * current and cur's value is scrubbed until prev_until_ms (*rotated true; when cur is
 * NULL nothing is scrubbed besides v, *rotated false).
 */
secval_t *secval_next(const secval_t *cur, const char *v, size_t len, uint64_t expires_ms,
    uint64_t prev_until_ms, bool *rotated) __attribute__((nonnull(2, 6))) SG_WUR;
/* A copy of cur without its previous value (the grace period is over). */
secval_t *secval_without_prev(const secval_t *cur) SG_NONNULL SG_WUR;

secval_t *secval_ref(secval_t *s);		/* s may be NULL; returns s */
void secval_unref(secval_t *s);			/* s may be NULL; the last one frees */

/* Is the current value usable at now_ms (not expired)? */
bool secval_usable(const secval_t *s, uint64_t now_ms) SG_NONNULL;
/* The previous value while it is still to be scrubbed at now_ms, else NULL. */
const char *secval_previous(const secval_t *s, uint64_t now_ms, size_t *len)
    __attribute__((nonnull(1)));
/* Has the grace period of a previous value ended at now_ms (time to drop it)? */
bool secval_prev_due(const secval_t *s, uint64_t now_ms) SG_NONNULL;

/*
 * What a source's output must be: its trailing "\n" or "\r\n" cut (*len shortened),
 * then non-empty with no NUL, CR or LF inside (the value goes into a header).
 * 0, or -1 when it is not a usable secret.
 */
int secval_trim_check(char *s, size_t *len) SG_NONNULL SG_WUR;

/*
 * When an exec source runs next: ok (it gave a value at now_ms): at refresh_pct % of
 * ttl_ms, so a value is replaced before it expires; failed: retry_ms from now, but never
 * later than the moment the last good value expires (expires_ms, 0: none).
 */
uint64_t secval_next_run(uint64_t now_ms, bool ok, uint64_t ttl_ms, unsigned refresh_pct,
    uint64_t retry_ms, uint64_t expires_ms);

#endif
