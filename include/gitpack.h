/*
 * gitpack.h — a streaming walk of a git packfile (gitformat-pack(5)) that keeps only
 * what a fast-forward check needs: the commit objects' ids and parents.
 *
 * Fed the pack bytes in order, split anywhere: the 12-byte header ("PACK", version 2
 * or 3, object count), then each object's header (type, size; an OFS_DELTA's base
 * offset or a REF_DELTA's base id) and its zlib stream, inflated only to find where it
 * ends and, for commits, to read them. A commit's id is the hash of "commit SIZE\0"
 * and its content (SHA-1, or SHA-256 for a sha256 repository). A delta is resolved when
 * its base is a commit kept from this pack (OFS_DELTA by offset, REF_DELTA by id,
 * before it); a delta on anything else is inflated and dropped — if it was a commit,
 * the walk cannot pass through it. The trailing checksum is not checked (the server
 * does).
 *
 * gitpack_reaches says whether the parent walk from one id reaches another through the
 * commits kept: true proves a fast-forward; false means "not proven" (a rewrite, or a
 * commit the pack does not carry: the server already has it, a thin pack's delta base,
 * or a bound below was hit).
 *
 * Bounds (each a reason to stop keeping, never to misread): GITPACK_MAX_COMMITS commits
 * kept, GITPACK_MAX_COMMIT_BYTES for one commit's content, GITPACK_MAX_KEPT_BYTES for
 * all, GITPACK_MAX_OBJECT_BYTES for an object's inflated size. A malformed pack (bad
 * header, varint, zlib stream, size mismatch, delta) stops the walk for good
 * (gitpack_failed).
 *
 * Pure core (zlib, libsodium). gitpack_new allocates, gitpack_free frees. One per push.
 */
#ifndef SEALGATE_GITPACK_H
#define SEALGATE_GITPACK_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Commits kept for the walk: a push of more new commits is not proven (4096 covers a
 * long-lived feature branch; each costs its content, bounded below). */
#define GITPACK_MAX_COMMITS		4096
/* One commit's content: headers and message; a larger one is not kept (real commits
 * are well under 64 KiB; huge messages are abuse). */
#define GITPACK_MAX_COMMIT_BYTES	(64 * 1024)
/* All kept commit contents together: bounds one push's memory at 8 MiB. */
#define GITPACK_MAX_KEPT_BYTES		(8 * 1024 * 1024)
/* An object's declared inflated size: above this the pack is refused as malformed
 * (git's own default core.bigFileThreshold-scale objects stream through the server,
 * but no header may claim more than 4 GiB). */
#define GITPACK_MAX_OBJECT_BYTES	(4ull * 1024 * 1024 * 1024)

typedef struct gitpack gitpack_t;

/* hash_len: 20 (sha1) or 32 (sha256). NULL when out of memory or hash_len is neither. */
gitpack_t *gitpack_new(size_t hash_len) SG_WUR;
void gitpack_free(gitpack_t *p);
/* Pack bytes in order. 0, or -1 once the pack is malformed (sticky). */
int gitpack_feed(gitpack_t *p, const void *data, size_t len) SG_NONNULL;
/* Did the pack end where it should (header, every object, the checksum's length)? */
bool gitpack_complete(const gitpack_t *p) SG_NONNULL;
bool gitpack_failed(const gitpack_t *p) SG_NONNULL;
/* Commits kept so far. */
size_t gitpack_ncommits(const gitpack_t *p) SG_NONNULL;
/* Does the parent walk from from_hex reach to_hex (lower-case hex ids, hash_len * 2)? */
bool gitpack_reaches(const gitpack_t *p, const char *from_hex, const char *to_hex) SG_NONNULL;

#endif
