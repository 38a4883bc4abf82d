/*
 * revoke.h — the revocation set: handles refused by handle id, by sandbox, by credential
 * or by key id. Pure core: no sockets, no clocks (time is passed in).
 *
 * File (the policy's revocations.file), JSON; every section optional:
 *   {"handles":     {"<32 hex handle id>": <unix ts>},
 *    "sandboxes":   {"<sandbox name>": <unix ts>},
 *    "credentials": {"<credential name>": <unix ts>},
 *    "keys":        {"<8 hex key id>": <unix ts>}}
 * Handle and key revocations are absolute (the ts is when it happened, for people).
 * Sandbox and credential revocations refuse handles issued at or before ts (iat <= ts):
 * handles minted afterwards work again. See docs/revocation.md.
 *
 * Ownership: revoke_load returns a set with refcount 1 (caller owns it); revoke_ref adds
 * a reference, revoke_unref drops one and frees at 0. A set is immutable and may be read
 * by many threads. The published set (revoke_publish, a snapshot.h cell) is read with
 * revoke_acquire, which returns a new reference.
 */
#ifndef SEALGATE_REVOKE_H
#define SEALGATE_REVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "handle.h"
#include "util.h"

/* Largest revocations file: 100k entries of ~60 bytes is 6 MB; room to spare. */
#define REVOKE_MAX_FILE		(32 * 1024 * 1024)
/* Longest sandbox or credential name accepted in the file (policy names are far shorter). */
#define REVOKE_MAX_NAME		256

typedef struct revoke_set revoke_set_t;

/*
 * Load path. A missing file is an empty set. A malformed one gives NULL with err set to
 * "file:line:col: message" (JSON syntax) or "file: json.path: message".
 */
revoke_set_t *revoke_load(const char *path, char *err, size_t errlen)
    __attribute__((nonnull(1))) SG_WUR;
/* The same from a buffer; name is used in messages. */
revoke_set_t *revoke_load_buffer(const char *name, const char *json, size_t len,
    char *err, size_t errlen) __attribute__((nonnull(1, 2))) SG_WUR;

revoke_set_t *revoke_ref(revoke_set_t *rs);
void revoke_unref(revoke_set_t *rs);

/* Entries in the set (all kinds together). */
size_t revoke_count(const revoke_set_t *rs);

/*
 * Is the handle with these claims revoked? 1 with *kind (when kind is not NULL) set to
 * "handle", "sandbox", "credential" or "key" (static), 0 when not (rs may be NULL).
 * O(log n) per kind.
 */
int revoke_check(const revoke_set_t *rs, const handle_claims_t *c, const char **kind)
    __attribute__((nonnull(2)));

/*
 * Is value a well-formed entry of kind ("handle": 32 hex, "key": 8 hex, "sandbox" and
 * "credential": 1..REVOKE_MAX_NAME printable characters)? 0, or -1 with err set.
 */
int revoke_value_valid(const char *kind, const char *value, char *err, size_t errlen)
    __attribute__((nonnull(1, 2)));

/*
 * Add a revocation of kind ("handle" | "sandbox" | "credential" | "key") for value at
 * now to the file at path: read, modify, atomic replace (mode 0600), creating the file
 * when missing. Hex values are stored lower-case. Idempotent: revoking again changes
 * nothing for handles and keys; for sandboxes and credentials it moves ts forward to now
 * (so handles minted since the last revocation are refused too).
 * Returns 0 written, 1 nothing to change (already revoked as of now), -1 with err set.
 * Writers in one process are serialised; across processes an advisory lock on
 * "path.lock" is taken.
 */
int revoke_add(const char *path, const char *kind, const char *value, int64_t now,
    char *err, size_t errlen) __attribute__((nonnull(1, 2, 3))) SG_WUR;

/* One entry: kind ("handle" | "sandbox" | "credential" | "key"), value, unix time. */
typedef struct revoke_record {
	const char *kind;
	const char *value;
	int64_t ts;
} revoke_record_t;

/*
 * A set built from n records (each checked as revoke_value_valid, ts >= 0; repeats keep
 * the latest ts). NULL with err set. Refcount 1, caller owns it.
 */
revoke_set_t *revoke_from_records(const revoke_record_t *recs, size_t n, char *err,
    size_t errlen) SG_WUR;

/*
 * Call cb for every entry of a that b does not cover: missing from b (b may be NULL), or,
 * for sandboxes and credentials, in b with an earlier ts. The record's strings live as
 * long as a. Stops at the first cb that returns < 0. The number of calls, or -1.
 */
typedef int (*revoke_record_cb)(const revoke_record_t *rec, void *arg);
long revoke_diff(const revoke_set_t *a, const revoke_set_t *b, revoke_record_cb cb,
    void *arg);

/*
 * revoke_add for n records at once, each at its own ts (one read and one write of the
 * file, under the same locks). The number of entries changed (0..n), or -1 with err set
 * (nothing written).
 */
long revoke_add_records(const char *path, const revoke_record_t *recs, size_t n,
    char *err, size_t errlen) __attribute__((nonnull(1))) SG_WUR;

/* Process-wide current set (thread-safe). publish takes over the caller's reference. */
void revoke_publish(revoke_set_t *rs);
revoke_set_t *revoke_acquire(void);	/* new reference, or NULL when none is published */
/* Publishes so far: one atomic load, for "has it changed?". */
uint64_t revoke_published_generation(void);
void revoke_shutdown(void);		/* drop the published set */


#endif
