/*
 * policy.h — the policy model: parse + validate JSON policy files into an immutable,
 * refcounted snapshot. Pure core: no sockets, no event loop.
 *
 * Ownership: policy_load returns a snapshot with refcount 1 (caller owns it).
 * policy_ref adds a reference, policy_unref drops one and frees (zeroing secrets) at 0.
 * A published snapshot (policy_publish, a snapshot.h cell) is read by workers with
 * policy_acquire, which returns a new reference; connections keep the snapshot they
 * started with. Whoever keeps a pointer into a snapshot holds a reference to it.
 */
#ifndef SEALGATE_POLICY_H
#define SEALGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "netaddr.h"
#include "secmem.h"
#include "snapshot.h"
#include "util.h"

typedef struct policy_strlist {
	size_t n;
	char **v;
} policy_strlist_t;

typedef struct policy_rate {
	bool set;
	uint32_t requests;	/* tokens added per period */
	uint64_t per_ms;	/* the period */
	uint32_t burst;		/* bucket size; defaults to requests */
} policy_rate_t;

enum policy_inject_type {
	INJECT_BEARER,	/* Authorization: Bearer <secret> */
	INJECT_HEADER,	/* name: format with one %s */
	INJECT_BASIC,	/* Authorization: Basic base64(username:secret) */
	INJECT_QUERY,	/* ?param=<secret> */
	INJECT_HMAC,	/* name: format(hex hmac-sha256(secret, body)) */
	INJECT_BODY,	/* handle/placeholder replaced in the body (opt-in) */
	INJECT_AWS_SIGV4,	/* AWS SigV4: the sandbox signs with derived credentials
				 * (awscred.h), sealgate re-signs with the real ones (aws) */
};

typedef struct policy_inject {
	enum policy_inject_type type;
	char *name;		/* header: header name; hmac: header name (default Authorization) */
	char *format;		/* header/hmac: exactly one %s; bearer/basic: NULL */
	char *username;		/* basic */
	char *param;		/* query */
	char *placeholder;	/* body: text replaced besides the handle itself (optional) */
} policy_inject_t;

/*
 * The "aws" block of an aws_sigv4 credential (the credential's secret is the real secret
 * access key). Lists are NULL/0 when absent; 0 entries means "any" where noted.
 */
typedef struct policy_aws {
	const char *access_key_id; size_t access_key_id_len;	/* secret memory */
	const char *session_token; size_t session_token_len;	/* secret memory; NULL: none */
	char **services; size_t nservices;	/* [a-z0-9-] signing names; at least one */
	char **regions;  size_t nregions;	/* 0: any */
	char **buckets;  size_t nbuckets;	/* S3 bucket names; 0: any */
	char **prefixes; size_t nprefixes;	/* "bucket/key-prefix", each bucket listed in
						 * buckets; 0: any key */
	struct {
		char *role_arn, *external_id;	/* external_id NULL: none */
		uint32_t duration_s;		/* SG_AWS_ASSUME_ROLE_MIN_S..MAX_S */
		bool set;			/* assume_role given */
		char *session_policy;		/* compiled from the scope (awsrole.h) */
		size_t session_policy_len;	/* at most AWSROLE_POLICY_MAX */
	} assume_role;
} policy_aws_t;

/*
 * The "git" block of a credential: what a git push (POST .../git-receive-pack) through it
 * may update (gitpush.h). NULL when absent: pushes are not looked into.
 */
typedef struct policy_git_push {
	policy_strlist_t refs;	/* push-ref globs (gitpush_pattern_check); at least one */
	bool allow_delete;	/* "delete" (default false) */
	bool allow_force;	/* "force" (default false): non-fast-forward updates */
} policy_git_push_t;

/*
 * The "mint" block: the credential's secret is a short-lived token sealgate mints from a
 * root secret (mintcache.h, mintclient.h). The root secret (client_secret, private_key,
 * refresh_token's first refresh token, the service-account key or token_exchange's
 * subject token) is in p->secrets.
 */
enum policy_mint_type {
	MINT_CLIENT_CREDENTIALS,	/* RFC 6749 §4.4 */
	MINT_REFRESH_TOKEN,		/* RFC 6749 §6, rotating refresh tokens kept on disk */
	MINT_GITHUB_APP,		/* App JWT -> installation access token */
	MINT_JWT_BEARER,		/* RFC 7523: a Google service-account key signs */
	MINT_TOKEN_EXCHANGE,		/* RFC 8693: a subject token exchanged */
};

typedef struct policy_mint {
	enum policy_mint_type type;
	char *token_url;		/* https://host[:port]/path as written (github: built) */
	char *host;			/* lower-case, from token_url */
	uint16_t port;
	char *path;			/* origin-form target */
	char *client_id;		/* client_id; github_app: app_id or client_id (iss);
					 * jwt_bearer: the key's client_email */
	const char *secret;		/* the root secret (p->secrets); NUL-terminated */
	size_t secret_len;
	const char *client_secret;	/* refresh_token, token_exchange: the optional
					 * client_secret (p->secrets) */
	size_t client_secret_len;
	bool auth_body;			/* client_auth "body" (default "basic") */
	char *scope, *audience, *resource, *target_audience;	/* NULL: not sent */
	policy_strlist_t audiences;	/* "audiences": what a handle may ask for instead
					 * of audience (mintreq_audience_check) */
	policy_strlist_t param_names, param_values;	/* "params", parallel */
	char *installation_id;		/* github_app: digits */
	char *subject_token_type;	/* token_exchange (default ..:access_token) */
	char *requested_token_type;	/* token_exchange: NULL: not sent */
	char *state_file;		/* refresh_token: where the newest refresh token lives */
	char *digest;			/* hex BLAKE2b of every setting and the root secret:
					 * the mint cache key's base (a change mints afresh) */
} policy_mint_t;

typedef struct policy_credential {
	char *name;
	char *secret;		/* in p->secrets (an arena), NUL-terminated; zeroed on free */
	size_t secret_len;
	enum { SECRET_ENV, SECRET_FILE, SECRET_VALUE, SECRET_EXEC } secret_source;
	char *secret_file;	/* SECRET_FILE: the path read (relative to the policy file) */
	struct {
		policy_strlist_t argv;	/* argv[0] resolved to a path (SG_SECRET_EXEC_PATH) */
		uint64_t ttl_ms, timeout_ms;
	} exec;			/* SECRET_EXEC (secret is NULL: the value is in live) */
	/*
	 * SECRET_FILE and SECRET_EXEC of a credential that is not aws_sigv4: the cell of
	 * its live value (secval.h; owned by the policy, fed by secwatch.h on the main
	 * thread). A file's holds the value read at load; an exec's is empty until its
	 * command first ran. Workers take the current value per request (swap.c) and keep
	 * it until the request ends. NULL: secret is the value.
	 */
	snapshot_cell_t *live;
	policy_inject_t inject;
	policy_strlist_t hosts;	/* "api.x.com", "*.x.com", optional ":port" suffix */
	policy_strlist_t methods;	/* upper-case; empty = any */
	policy_strlist_t paths;	/* globs such as "/v1/" then "*", or "/v1/" prefixes; empty = any */
	policy_rate_t rate;	/* per handle */
	policy_rate_t rate_total;	/* all handles of this credential (fleet-wide in
					 * fleet mode: fleettab.h) */
	bool cluster_fail_closed;	/* on_cluster_failure "fail_closed": 503 while the
					 * fleet is unreachable; false: "local_share" */
	uint64_t ttl_s;		/* wall-clock handle lifetime (default SG_HANDLE_TTL_DEFAULT_S);
				 * max_ttl_s when ttl_sandbox */
	bool ttl_sandbox;	/* ttl "sandbox": handles live as long as their sandbox */
	uint64_t max_ttl_s;	/* bound of every handle (default SG_HANDLE_MAX_TTL_DEFAULT_S) */
	char *env;		/* env var name the sandbox reads the handle from (optional) */
	bool allow_plain_http;	/* may be sent to an http:// upstream */
	bool allow_websocket_binary;	/* its handle is swapped in binary WebSocket frames too */
	bool echo_ok_in_body;	/* its handle in a request body (not injected there) is text */
	const policy_aws_t *aws;	/* INJECT_AWS_SIGV4: its "aws" block; NULL otherwise */
	const policy_git_push_t *git_push;	/* "git": {"push": ...}; NULL: absent */
	const policy_mint_t *mint;	/* "mint": secret is NULL, the token is minted */
} policy_credential_t;

typedef struct policy_sandbox {
	char *name;
	netaddr_cidr_t *addresses;
	size_t naddresses;
	policy_strlist_t credentials;	/* names; each exists in credentials */
	policy_rate_t rate;	/* all requests of this sandbox */
	char *token;		/* proxy credential (in p->secrets) or NULL */
} policy_sandbox_t;

/*
 * A sandbox template: what a sandbox registered at run time (registry.h) is granted.
 * Registered sandboxes name one; static sandboxes (policy_sandbox_t) do not use them.
 */
typedef struct policy_template {
	char *name;
	policy_strlist_t credentials;	/* names; each exists in credentials */
	policy_rate_t rate;		/* all requests of one sandbox made from it */
	uint64_t ttl_s;			/* caps its handles' lifetime; 0: credentials' own */
	bool ttl_sandbox;		/* ttl "sandbox": its sandboxes get sandbox-lifetime
					 * handles for every granted credential */
	uint64_t max_ttl_s;		/* caps sandbox-lifetime handles; 0: credentials' own */
	bool token_required;		/* registrations must carry a proxy token */
} policy_template_t;

/*
 * A name index: open addressing (linear probing, at most half full) over the positions of
 * an array whose entries each start with their name (char *). policy_load builds one per
 * named table, so lookups cost a hash and, on a hash match, one strcmp.
 */
typedef struct policy_index_slot {
	uint32_t hash;
	uint32_t pos;		/* entry position + 1; 0: an empty slot */
} policy_index_slot_t;

typedef struct policy_index {
	policy_index_slot_t *slot;
	size_t cap;		/* a power of two; 0: no index (lookups scan the array) */
	size_t n;
} policy_index_t;

enum policy_intercept { INTERCEPT_CREDENTIALS, INTERCEPT_ALL };

typedef struct policy_egress {
	bool default_allow;		/* "default": "allow" | "deny" (default deny) */
	policy_strlist_t allow_hosts;	/* host globs allowed (credential hosts always are) */
	policy_strlist_t deny_hosts;	/* host globs denied, checked first */
	policy_strlist_t tunnel_hosts;	/* host globs spliced without interception */
	netaddr_cidr_t *allow_private;	/* private/loopback/link-local ranges let through */
	size_t nallow_private;
	enum policy_intercept intercept;	/* "credentials" (default) | "all" */
} policy_egress_t;

typedef struct policy_resolve {
	char *host;		/* lower-case name */
	char *address;		/* IP literal, as written */
} policy_resolve_t;

/*
 * "cluster": fleet mode (cluster.h). set false: no cluster, nothing shared. Strings are
 * validated by clustermsg_*_valid; the password sits in p->secrets (zeroed on free).
 */
typedef struct policy_cluster {
	bool set;
	char *address;		/* "host:port" or "unix:/absolute/path" */
	char *user;		/* ACL user, or NULL: AUTH with the password alone */
	char *password;		/* in p->secrets, or NULL: no AUTH */
	size_t password_len;
	char *prefix;		/* every key and channel starts with it */
	char *node;		/* this sidecar's name, or NULL: the host name */
	uint32_t nodes;		/* expected sidecars (rate_total's local share); >= 1 */
} policy_cluster_t;

typedef struct policy_limits {
	uint64_t header_timeout_ms, idle_timeout_ms, connect_timeout_ms;
	uint64_t tls_timeout_ms, upstream_timeout_ms, drain_timeout_ms;
	uint64_t park_after_ms;		/* idle client: park after this; 0 = never */
	uint32_t max_header_bytes, max_connections;
	uint32_t workers;		/* 0 = number of cores */
	uint32_t busy_poll_us;		/* workers poll this long after I/O; 0 = off */
	uint32_t failed_handles;	/* failures per source per window; 0 = no throttle */
	uint64_t max_decoded_bytes;	/* a scrubbed response decoded past this is cut */
	uint64_t failed_handles_window_ms;
} policy_limits_t;

typedef struct policy {
	int refcnt;			/* atomic; see policy_ref/unref */
	uint64_t generation;		/* set by policy_publish, before workers see it */
	char *source;			/* path given to policy_load */

	struct {
		char *proxy, *metadata, *admin;	/* "host:port" or NULL */
		char *metadata_aws;	/* a second responder address (AWS container
					 * credentials, 169.254.170.2:80) or NULL */
		char *transparent;	/* connections the host redirected (nftables
					 * REDIRECT/DNAT), SNI/Host peeked; or NULL */
	} listen;
	struct {
		char *seal_key;		/* path (resolved against the policy file) */
		char *ca_cert, *ca_key;
		policy_strlist_t open_keys;	/* older private key files still accepted */
		policy_strlist_t retired_key_ids;	/* key ids refused as "retired" */
	} keys;
	struct {
		char *ca_file;		/* NULL = system store */
		policy_resolve_t *resolve;
		size_t nresolve;
	} upstream;
	char *admin_token_file;
	char *audit_path;		/* "-" = stdout */
	char *revocations_file;		/* NULL = none */
	policy_cluster_t cluster;	/* "cluster" (fleet mode); .set false: none */
	policy_egress_t egress;
	policy_limits_t limits;

	policy_credential_t *credentials;
	size_t ncredentials;
	policy_sandbox_t *sandboxes;
	size_t nsandboxes;
	policy_template_t *templates;	/* "sandbox_templates" */
	size_t ntemplates;
	policy_index_t credential_index, sandbox_index, template_index;	/* by name */
	secmem_arena_t *secrets;	/* every credential secret and sandbox token */

	char *state_dir;		/* "state.dir"; default: the folder of keys.seal_key */
	char *metadata_url;		/* "metadata.url": where sandboxes fetch handles */

	policy_strlist_t warnings;	/* e.g. secret given as "value" (dev only) */
} policy_t;

/*
 * Policy defaults and bounds (sit here until defaults.h takes them; #ifndef so it can).
 * Listeners: loopback for development; paths relative to the policy file's folder.
 */
#ifndef SG_POLICY_LISTEN_PROXY
#define SG_POLICY_LISTEN_PROXY     "127.0.0.1:3128"
#define SG_POLICY_LISTEN_METADATA  "127.0.0.1:8775"
#define SG_POLICY_LISTEN_ADMIN     "127.0.0.1:9091"
/* Key material and the admin token: created by serve on first start when absent. */
#define SG_POLICY_SEAL_KEY         "certs/seal.key"
#define SG_POLICY_CA_CERT          "certs/ca.crt"
#define SG_POLICY_CA_KEY           "certs/ca.key"
#define SG_POLICY_ADMIN_TOKEN      "certs/admin.token"
/* inject type hmac: header and format when the credential names none. */
#define SG_POLICY_HMAC_NAME        "Authorization"
#define SG_POLICY_HMAC_FORMAT      "HMAC %s"
/* metadata.url: named in sandbox_mismatch answers (the IMDS address of the responder). */
#define SG_POLICY_METADATA_URL     "http://169.254.169.254/v1/handles"
/* limits.max_header_bytes: below 1 KiB real clients break; above 1 MiB is a flood. */
#define SG_POLICY_MIN_HEADER_BYTES 1024
#define SG_POLICY_MAX_HEADER_BYTES (1024 * 1024)
/* limits.max_connections and limits.workers: sanity bounds, not tuning advice. */
#define SG_POLICY_MAX_CONNECTIONS  1000000
#define SG_POLICY_MAX_WORKERS      256
#define SG_POLICY_MAX_BUSY_POLL_US 10000
/* limits.failed_handles: 0 turns the throttle off; a million per window is no brake. */
#define SG_POLICY_MAX_FAIL_LIMIT   1000000
/* limits.failed_handles_window: Retry-After counts whole seconds, and a day bounds how
 * long one burst of failures keeps a source refused. */
#define SG_POLICY_MIN_FAIL_WINDOW_MS 1000ull
#define SG_POLICY_MAX_FAIL_WINDOW_MS (24ull * 3600 * 1000)
/* limits.max_decoded_bytes: under 1 MiB real answers fail; 1 TiB is no bound at all. */
#define SG_POLICY_MIN_DECODED_BYTES (1024ull * 1024)
#define SG_POLICY_MAX_DECODED_BYTES (1024ull * 1024 * 1024 * 1024)
#endif

/* mint: bounds of what a policy names (the token endpoint URL, ids, scopes, params). */
#ifndef SG_POLICY_MINT_URL_MAX
#define SG_POLICY_MINT_URL_MAX     2048
#define SG_POLICY_MINT_FIELD_MAX   1024
#define SG_POLICY_MINT_PARAMS_MAX  16
/* GitHub's REST API when github_app names no api_url. */
#define SG_POLICY_GITHUB_API_URL   "https://api.github.com"
/* token_exchange: the subject token's type when the policy names none (RFC 8693 §3). */
#define SG_POLICY_TOKEN_TYPE_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#endif

/* Name indexes: the smallest has this many slots; they double when half full. */
#ifndef SG_POLICY_INDEX_MIN_SLOTS
#define SG_POLICY_INDEX_MIN_SLOTS  16
#endif

/* Errors collected by policy_load, each "file:line:col: msg" or "file: json.path: msg". */
typedef struct policy_errors {
	size_t n;
	char **msg;
} policy_errors_t;

/*
 * Load a policy from a .json file or a directory of *.json files (merged; names must not
 * repeat across files). Reads secrets (env/file). On failure returns NULL and fills errs
 * with every error found (not just the first). errs must be freed with policy_errors_free.
 */
policy_t *policy_load(const char *path, policy_errors_t *errs) SG_WUR;
/* Same, from a buffer; name is used in messages and for relative paths. */
policy_t *policy_load_buffer(const char *name, const char *json, size_t len,
    policy_errors_t *errs) SG_WUR;
void policy_errors_free(policy_errors_t *errs);

policy_t *policy_ref(policy_t *p);
void policy_unref(policy_t *p);

/* The policy name of a mint type ("client_credentials", ...); "?" when out of range. */
const char *policy_mint_name(enum policy_mint_type t);

/* The policy name of an inject type ("bearer", ..., "aws_sigv4"); "?" when out of range. */
const char *policy_inject_name(enum policy_inject_type t);

/* Lookups (NULL when absent). Pointers live as long as the snapshot. */
const policy_credential_t *policy_credential_find(const policy_t *p, const char *name);
const policy_sandbox_t *policy_sandbox_find(const policy_t *p, const char *name);
const policy_template_t *policy_template_find(const policy_t *p, const char *name);
/*
 * Name indexes (see policy_index_t). add: entry pos of the array is called name (which
 * must not be in the index yet: find first); 0, or -1 when out of memory. find: the
 * position of the entry called name among arr[0..n) (entries of size bytes, each starting
 * with its name; NULL names never match), or -1. With no index (cap 0) find scans arr.
 */
int policy_index_add(policy_index_t *ix, const char *name, size_t pos) SG_NONNULL SG_WUR;
ssize_t policy_index_find(const policy_index_t *ix, const void *arr, size_t size, size_t n,
    const char *name);
void policy_index_free(policy_index_t *ix);
/* Does template t grant credential name? */
bool policy_template_grants(const policy_template_t *t, const char *credential);
/* Does sandbox sb grant credential name? */
bool policy_sandbox_grants(const policy_sandbox_t *sb, const char *credential);

/*
 * Process-wide current snapshot (thread-safe; snapshot.h). publish takes over the
 * caller's reference (p may be NULL) and stamps p->generation with the new generation.
 */
void policy_publish(policy_t *p);
policy_t *policy_acquire(void);		/* new reference, or NULL before the first publish */
/* Publishes so far (policy_shutdown counts): one atomic load, for "has it changed?". */
uint64_t policy_published_generation(void);
void policy_shutdown(void);		/* drop the published snapshot */

#endif
