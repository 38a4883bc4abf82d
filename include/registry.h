/*
 * registry.h — sandboxes registered at run time (the admin API's /v1/sandboxes), beside
 * the policy's static ones; and a uniform view of either kind for authz and metadata.
 *
 * A registered sandbox: {id, template (policy sandbox_templates), addresses, labels,
 * expires_at, optional proxy token, created, generation, lineage, suspended}. No two
 * live sandboxes (registered or static) claim overlapping addresses.
 *
 * Lineage (lineage.h): a fork records (parent, fork time) plus the parent's own links; a
 * registration with restored_from P and at T records (P, T) plus P's links when P is
 * registered here. Lineage is history, not configuration: a PUT that replaces an entry
 * keeps it (and the suspended state) unless it names a new restored_from.
 *
 * Suspension (hibernation): a suspended sandbox stays registered, keeps its handles and
 * lineage, and is refused by the proxy and the metadata responder until resumed.
 * registry_suspended_published() is the count in the published snapshot (an atomic load,
 * so the proxy's per-request check costs nothing while none is suspended).
 *
 * Readers (workers) use an immutable snapshot: registry_acquire() returns a new
 * reference to the published one (or NULL before registry_open), registry_unref()
 * drops it. Publication is a snapshot.h cell: a replaced snapshot is freed as soon as
 * its last reference goes, so whoever keeps a pointer into a snapshot (an entry, a
 * sandbox_view_t, an authz result) holds a reference to it for as long as it uses the
 * pointer. Lookups by id and by address are O(log n). The writer side (put, delete,
 * fork, sweep) runs on one thread at a time (a mutex serialises them); each mutation
 * builds a new snapshot, appends one journal record, fsyncs it, then publishes.
 *
 * Durability: STATE_DIR/registry.journal, an 8-byte magic then records of
 *   4-byte little-endian length | first 8 bytes of BLAKE2b-128(payload) | JSON payload
 * one per mutation (op put | fork | delete | suspend | resume). registry_open replays it,
 * drops a torn or
 * corrupt tail with a warning (never a refusal to start), then compacts it (live entries
 * and recent deletions to a new file, fsync, rename). Proxy tokens are never written:
 * the journal and memory hold only their BLAKE2b-256 digest (guarded memory, secmem.h).
 *
 * Deleted and expired sandboxes leave a tombstone for REGISTRY_TOMBSTONE_S (as long as
 * any handle minted before could still be unexpired), so their handles answer
 * "revoked: sandbox X was deleted" rather than "unknown sandbox".
 */
#ifndef SEALGATE_REGISTRY_H
#define SEALGATE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "defaults.h"
#include "lineage.h"
#include "policy.h"
#include "util.h"

#define REGISTRY_JOURNAL_NAME	"registry.journal"
#define REGISTRY_JOURNAL_MAGIC	"SGRJ0001"
#define REGISTRY_MAGIC_LEN	8
#define REGISTRY_HDR_LEN	12	/* length (4) + checksum (8) */
/* Ids: the policy's name rule ([A-Za-z0-9_.-], 1..64), so ids and names mix freely. */
#define REGISTRY_ID_MAX		64
/* Per sandbox: a VM has a handful of addresses; 64 is generous and bounds the index. */
#define REGISTRY_MAX_ADDRESSES	64
/* Labels are for the host's bookkeeping (owner, job id): small and few. */
#define REGISTRY_MAX_LABELS	64
#define REGISTRY_LABEL_KEY_MAX	63
#define REGISTRY_LABEL_VALUE_MAX 256
/* A proxy token: a random string, never a document. */
#define REGISTRY_TOKEN_MAX	1024
#define REGISTRY_TOKEN_HASH_LEN	32
/* One journal record: an entry with every field at its maximum stays well below this. */
#define REGISTRY_MAX_RECORD	(64 * 1024)
/* Live sandboxes: bounds memory (each mutation copies the pointer index). */
#define REGISTRY_MAX_SANDBOXES	65536
/* Tombstones: kept as long as a handle minted before the deletion can be unexpired. */
#define REGISTRY_TOMBSTONE_S	((int64_t)SG_HANDLE_MAX_TTL_LIMIT_S)
#define REGISTRY_MAX_TOMBSTONES	65536
/* Largest journal replayed (compaction keeps it near live-entries size). */
#define REGISTRY_MAX_JOURNAL	(512u * 1024 * 1024)

typedef struct registry registry_t;
typedef struct registry_snapshot registry_snapshot_t;

/*
 * What a PUT body sets: shared by the spec (what is asked) and the entry (what is
 * registered). Owns its strings. The id is not among them: it names the sandbox (the
 * URL's last segment) and sits beside them.
 */
typedef struct registry_fields {
	char *template_name;
	netaddr_cidr_t *addresses;
	size_t naddresses;
	char **label_keys, **label_values;	/* sorted by key */
	size_t nlabels;
	int64_t expires_at;		/* unix s; 0: never */
	char *restored_from;		/* restored from this sandbox's checkpoint, or NULL */
	int64_t restored_at;		/* when that checkpoint was taken (unix s) */
} registry_fields_t;

typedef struct registry_entry {
	char *id;
	registry_fields_t f;		/* restored_*: kept by a PUT that names none */
	int64_t created;		/* unix s of the first registration */
	uint64_t generation;		/* registry generation of the last change */
	char *parent;			/* fork parent id, or NULL */
	lineage_t lineage;		/* handles that came with a fork or restore */
	int64_t suspended_at;		/* unix s it was suspended; 0: running */
	uint8_t *token_hash;		/* BLAKE2b-256 of the token (guarded), or NULL */
	policy_sandbox_t sb;		/* policy-shaped: name = id, addresses, template rate */
	int refcnt;			/* snapshots holding it (atomic) */
} registry_entry_t;

/* What a PUT asks for. Owns its strings (registry_spec_free). */
typedef struct registry_spec {
	char *id;
	registry_fields_t f;		/* restored_from + restored_at: "restored_from" + "at" */
	char *token;			/* guarded memory (secmem.h), or NULL */
} registry_spec_t;

/* What a fork asks for ({"id", "addresses", "template"?, "token"?, "expires_at"?}). */
typedef struct registry_fork_spec {
	char id[REGISTRY_ID_MAX + 1];
	netaddr_cidr_t *addresses;	/* malloc'd */
	size_t naddresses;
	char *template_name;		/* NULL: the parent's */
	char *token;			/* guarded memory; NULL: the parent's token (digest) */
	bool has_expires;		/* expires_at given (0: never); else the parent's */
	int64_t expires_at;
} registry_fork_spec_t;

/* The answer to a mutation, shaped for HTTP. */
typedef struct registry_result {
	int status;			/* 200, 201, 400, 404, 409, 422, 500, 503 */
	const char *code;		/* "ok", "bad_request", "not_found", "exists", ... */
	char message[512];
	uint64_t generation;		/* of the entry (put/fork) */
	bool created;			/* put/fork made a new entry */
	bool changed;			/* something was journalled */
} registry_result_t;

/* How the last registry_open went. */
typedef struct registry_load_info {
	size_t records;			/* good records replayed */
	size_t live;			/* live entries after replay */
	size_t dropped_bytes;		/* torn/corrupt tail dropped */
	bool compacted;
} registry_load_info_t;

/*
 * Open (creating) dir/registry.journal, replay, compact, publish the snapshot and make
 * this the process registry (registry_sweep, admin). policy (may be NULL) supplies the
 * templates' rates. NULL with err set on I/O failure; a bad tail only warns.
 */
registry_t *registry_open(const char *dir, const policy_t *policy, int64_t now,
    char *err, size_t errlen) SG_WUR;
/* Unpublish (when it is the process registry), close, free. NULL is fine. */
void registry_close(registry_t *r);
registry_t *registry_global(void);
const char *registry_journal_path(const registry_t *r) SG_NONNULL;
const registry_load_info_t *registry_load_info(const registry_t *r) SG_NONNULL;

/* Mutations: 0, or -1; res is filled either way. policy: templates and static sandboxes. */
int registry_put(registry_t *r, const policy_t *policy, const registry_spec_t *spec,
    int64_t now, registry_result_t *res) SG_NONNULL;
int registry_delete(registry_t *r, const char *id, int64_t now, registry_result_t *res)
    SG_NONNULL;
/* A fork of parent taken now: lineage (parent, now) + the parent's links. 409
 * lineage_too_deep past LINEAGE_MAX_DEPTH. */
int registry_fork(registry_t *r, const policy_t *policy, const char *parent,
    const registry_fork_spec_t *spec, int64_t now, registry_result_t *res) SG_NONNULL;
/* Suspend (suspend true) or resume a registered sandbox. 200 with changed false when it
 * already is; 404 for ids not registered here (static sandboxes cannot be suspended). */
int registry_suspend(registry_t *r, const char *id, bool suspend, int64_t now,
    registry_result_t *res) SG_NONNULL;
/*
 * Remove entries of the process registry whose expires_at <= now (journalled as
 * deletions, reason "expired") and forget old tombstones. Returns how many expired.
 * Called by serve's timer; no-op before registry_open.
 */
size_t registry_sweep(int64_t now);
size_t registry_sweep_one(registry_t *r, int64_t now) SG_NONNULL;

/* Parse a PUT body for id ({"template", "addresses", "labels"?, "expires_at"?, "token"?,
 * "restored_from"? + "at"?}). 0, or -1 with res (400/422) filled. */
int registry_spec_parse(const char *id, const char *json, size_t len, int64_t now,
    registry_spec_t *out, registry_result_t *res) SG_WUR;
void registry_spec_free(registry_spec_t *s);
/* Parse a fork body into out (registry_fork_spec_free). 0, or -1 with res (400). */
int registry_fork_parse(const char *json, size_t len, int64_t now,
    registry_fork_spec_t *out, registry_result_t *res) SG_WUR;
void registry_fork_spec_free(registry_fork_spec_t *s);
/* "1h", "30m" (from now), unix seconds, or RFC 3339 ("...Z" / "+hh:mm"). 0 / -1. */
int registry_parse_time(const char *s, int64_t now, int64_t *out) SG_NONNULL SG_WUR;
/* [A-Za-z0-9_.-]{1,64} */
bool registry_id_valid(const char *id);

/* --- readers ------------------------------------------------------------------------ */

registry_snapshot_t *registry_acquire(void);	/* new reference, or NULL */
/* Publishes so far (registry_close counts): one atomic load, for "has it changed?". Not
 * registry_generation, which numbers the mutations of the journal. */
uint64_t registry_published_generation(void);
void registry_unref(registry_snapshot_t *s);
registry_snapshot_t *registry_snapshot_ref(registry_snapshot_t *s);
uint64_t registry_generation(const registry_snapshot_t *s);
size_t registry_count(const registry_snapshot_t *s);
const registry_entry_t *registry_at(const registry_snapshot_t *s, size_t i);	/* by id */
const registry_entry_t *registry_find(const registry_snapshot_t *s, const char *id);
const registry_entry_t *registry_find_addr(const registry_snapshot_t *s,
    const struct sockaddr *sa);
/* Entries of s that are suspended. */
size_t registry_suspended_count(const registry_snapshot_t *s);
/* registry_suspended_count of the published snapshot (any thread; an atomic load). */
size_t registry_suspended_published(void);
/* A deleted/expired id still within REGISTRY_TOMBSTONE_S: "deleted" / "expired", or NULL. */
const char *registry_tombstone(const registry_snapshot_t *s, const char *id);
/* An entry as the admin API shows it (never the token). malloc'd JSON text. */
char *registry_entry_json(const registry_entry_t *e);

/* --- one view of static and registered sandboxes ------------------------------------ */

typedef struct sandbox_view {
	const char *name;
	const netaddr_cidr_t *addresses;
	size_t naddresses;
	const policy_strlist_t *credentials;	/* static: its own; registered: template's */
	const policy_rate_t *rate;
	const char *token;		/* static: proxy token (plaintext) or NULL */
	const uint8_t *token_hash;	/* registered: BLAKE2b-256 of the token, or NULL */
	const char *template_name;	/* NULL: static */
	uint64_t ttl_s;			/* template's handle ttl cap; 0: none */
	bool ttl_sandbox;		/* template's ttl is "sandbox" */
	uint64_t max_ttl_s;		/* template's max_ttl; 0: none */
	int64_t expires_at, created;	/* registered; 0 for static */
	const lineage_t *lineage;	/* registered forks and restores; NULL: none */
	bool suspended;			/* registered and suspended */
	const policy_sandbox_t *sb;	/* stable record (name, rate) for results */
	const registry_entry_t *entry;	/* NULL: static */
} sandbox_view_t;

/*
 * The sandbox called name: static first, then registered (expired ones, expires_at <=
 * now, are absent). reg may be NULL. 0 with out filled, -1 when there is none.
 * Pointers live as long as p and reg.
 */
int sandbox_view_find(const policy_t *p, const registry_snapshot_t *reg, const char *name,
    int64_t now, sandbox_view_t *out) __attribute__((nonnull(1, 3, 5)));
/* The sandbox whose addresses contain sa (static first). 0 / -1 as above. */
int sandbox_view_find_by_addr(const policy_t *p, const registry_snapshot_t *reg,
    const struct sockaddr *sa, int64_t now, sandbox_view_t *out)
    __attribute__((nonnull(1, 3, 5)));
bool sandbox_view_grants(const sandbox_view_t *v, const char *credential) SG_NONNULL;
/* Is sa inside one of v's addresses? */
bool sandbox_view_contains(const sandbox_view_t *v, const struct sockaddr *sa);
/*
 * How long handles of credential cred minted for sandbox v live (docs/handles.md):
 *   template ttl a duration      wall-clock: min(template ttl, credential ttl)
 *   template or credential ttl "sandbox"
 *                                sandbox-lifetime, bounded by the credential's max_ttl
 *                                (and the template's, when set)
 *   otherwise                    wall-clock: the credential's ttl
 */
typedef struct sandbox_lifetime {
	bool sandbox;			/* bound to the sandbox's lifetime */
	uint64_t ttl_s;			/* sandbox: the max_ttl backstop; else the ttl */
} sandbox_lifetime_t;

void sandbox_view_lifetime(const sandbox_view_t *v, const policy_credential_t *cred,
    sandbox_lifetime_t *out) SG_NONNULL;


#endif
