/*
 * lineage.h — where a sandbox's memory came from: the sandboxes it was forked or restored
 * from, each with the time its copy was taken. Pure core: no clocks (times are passed
 * in), no I/O, no locks.
 *
 * A sandbox F forked from P at T (or restored from a checkpoint of P taken at T) holds
 * exactly the handles P held at T: those minted for P at or before T. F's lineage is the
 * link (P, T) followed by P's own links, each with its time capped at T, nearest first:
 *
 *   G --fork at T1--> P --fork at T2--> F      lineage(F) = [(P, T2), (G, min(T1, T2))]
 *
 * A handle of sandbox sb issued at iat came with the copy when some link (sb, T) has
 * iat <= T (lineage_accepts). Times are unix seconds: a handle minted in the same second
 * as the copy counts as before it. A link is data in the copy's own record, never a
 * reference to a live sandbox: deleting P changes nothing for F.
 *
 * Each id appears once (the first, latest link wins: later links of the same id can only
 * accept fewer handles). Depth is bounded by LINEAGE_MAX_DEPTH; lineage_derive refuses a
 * longer chain rather than silently dropping the oldest links (whose handles the copy
 * may still hold).
 *
 * Ownership: a lineage_t owns its links and their ids (lineage_free). Functions that fill
 * out leave it empty on failure.
 */
#ifndef SEALGATE_LINEAGE_H
#define SEALGATE_LINEAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Links per sandbox: forks of forks 32 deep; bounds each registry record and the scan
 * authz makes for a handle used outside its own sandbox. */
#define LINEAGE_MAX_DEPTH	32

typedef struct lineage_link {
	char *id;			/* the sandbox copied from */
	int64_t at;			/* when the copy was taken (unix s) */
} lineage_link_t;

typedef struct lineage {
	lineage_link_t *links;		/* nearest first */
	size_t n;
} lineage_t;

enum lineage_err {
	LINEAGE_OK = 0,
	LINEAGE_E_NOMEM = -1,
	LINEAGE_E_DEPTH = -2,		/* more than LINEAGE_MAX_DEPTH links */
	LINEAGE_E_INVALID = -3,		/* empty id, at <= 0 */
};

/*
 * The lineage of a copy of sandbox from_id taken at at: (from_id, at), then the links of
 * from (NULL: none known) with times capped at at, each id once. A lineage_err.
 */
int lineage_derive(const lineage_t *from, const char *from_id, int64_t at, lineage_t *out)
    __attribute__((nonnull(2, 4))) SG_WUR;

/* Append (id, at) unless id is already linked; for rebuilding a stored lineage. */
int lineage_append(lineage_t *l, const char *id, int64_t at) SG_NONNULL SG_WUR;

/* Deep copy (from may be NULL: empty). A lineage_err. */
int lineage_copy(const lineage_t *from, lineage_t *out) __attribute__((nonnull(2))) SG_WUR;

/* The link that lets a handle of sandbox sb issued at iat in, or NULL. l may be NULL. */
const lineage_link_t *lineage_accepts(const lineage_t *l, const char *sb, int64_t iat)
    __attribute__((nonnull(2)));

/* The link naming sb whatever its time, or NULL (for messages). l may be NULL. */
const lineage_link_t *lineage_find(const lineage_t *l, const char *sb)
    __attribute__((nonnull(2)));

/* Same links in the same order? NULL is the empty lineage. */
bool lineage_equal(const lineage_t *a, const lineage_t *b);

void lineage_free(lineage_t *l);

#endif
