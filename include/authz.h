/*
 * authz.h — may this verified handle be used for this request? Pure core: no sockets,
 * no clocks (now is passed in), no allocation, thread-safe.
 *
 * Checks, in this order (the first failure answers):
 *   revoked                    403 revoked                 (revoke_check)
 *   exp / iat (SG_CLOCK_SKEW_S) 403 handle_expired / handle_not_yet_valid
 *   who asks                   the handle's own sandbox (its address and proxy token;
 *                              registered after the handle was minted does not count),
 *                              else the sandbox at the source address (and its token)
 *                              when its lineage (lineage.h) holds a link to the handle's
 *                              sandbox at or after iat: a fork or restore that carried
 *                              the handle. The handle is then that sandbox's own:
 *                              its grants, template, lifetime and rate apply, and
 *                              out->origin names the handle's sandbox. Otherwise:
 *   the handle's sandbox gone  403 revoked                 (registered, then deleted or
 *                                                          expired; or re-registered
 *                                                          after the handle was minted)
 *                              403 sandbox_unknown         (never known)
 *   request not from it        407 sandbox_mismatch        (source address, proxy token;
 *                                                          names the metadata URL and, for
 *                                                          a copy, when it was taken)
 *   the asking sandbox suspended 403 sandbox_suspended
 *   credential not granted     403 credential_not_granted
 *   lifetime ("life":"sandbox") 403 handle_expired        (iat + the current max_ttl, or
 *                                                          ttl if the policy no longer
 *                                                          gives sandbox-lifetime handles)
 *   host:port                  403 host_out_of_scope       (exfiltration = true)
 *   method                     403 method_out_of_scope
 *   path                       403 path_out_of_scope
 * The sandbox may be static (policy) or registered (registry.h); sandbox_view_find
 * gives one view of both. Scope is the intersection of the credential's policy and the handle's narrower lists.
 * Rate limits are not checked here (the shell takes them after an allow).
 * Lifetimes: the result's pointers (cred, sandbox, subject, origin) borrow from
 * in->policy, in->registry and c; they are valid while the caller holds those.
 * Messages name the credential, sandbox, host or rule that failed; never a secret or a
 * handle's text (request text that holds a handle is replaced by "[handle]").
 */
#ifndef SEALGATE_AUTHZ_H
#define SEALGATE_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "handle.h"
#include "lineage.h"
#include "policy.h"
#include "registry.h"
#include "revoke.h"
#include "util.h"

/* Longest proxy credential taken from a Basic Proxy-Authorization (decoded user:pass). */
#define AUTHZ_BASIC_MAX		1024

typedef struct authz_input {
	const policy_t *policy;
	const revoke_set_t *revoked;		/* may be NULL */
	/*
	 * Registered sandboxes: the caller's reference (registry_acquire, or a view.h
	 * view's), held as long as it uses the result. NULL only when no registry is open:
	 * then no registered sandbox is looked at. authz_check acquires nothing itself.
	 */
	const registry_snapshot_t *registry;
	const struct sockaddr *peer;		/* the client's source address */
	const char *proxy_token;		/* from Proxy-Authorization, or NULL */
	const char *host;			/* the upstream the request goes to (lower-case) */
	uint16_t port;
	const char *method;			/* "GET" ... */
	const char *path;			/* already normalised by scope_path_normalize */
	int64_t now;
} authz_input_t;

typedef struct authz_result {
	unsigned status;			/* 0 = allowed; else 403 / 407 */
	const char *code;			/* static snake_case; "ok" when allowed */
	char message[384];			/* names what failed; never a secret */
	bool exfiltration;			/* handle headed outside its scope: audit it */
	const policy_credential_t *cred;	/* set when allowed, else NULL */
	const policy_sandbox_t *sandbox;	/* set when allowed, else NULL (registered:
						 * the entry's record, name = id) */
	/* Kept on denials too, once known (for audit lines); borrowed like sandbox: */
	const char *subject;			/* the sandbox the request was judged as */
	const char *origin;			/* the handle's sandbox when lineage let it
						 * in (a fork's parent), else NULL */
} authz_result_t;

/* 0 allowed, -1 denied; out is filled either way. */
int authz_check(const authz_input_t *in, const handle_claims_t *c, authz_result_t *out)
    SG_NONNULL;

/*
 * The sandbox a request comes from, as authz_check identifies one: the sandbox (static
 * first, then registered and live at now) whose addresses contain peer, provided the
 * request carries that sandbox's proxy token when it has one. reg may be NULL (no
 * registered sandboxes are looked at). 0 with out filled (pointers live as long as p and
 * reg); -1 when peer is NULL or no sandbox's, or the token is missing or wrong.
 */
int authz_requester(const policy_t *p, const registry_snapshot_t *reg,
    const struct sockaddr *peer, const char *proxy_token, int64_t now, sandbox_view_t *out)
    __attribute__((nonnull(1, 6)));

/*
 * The proxy token in a Proxy-Authorization value: t from "Bearer t", "FlyV1 t" or
 * "Basic base64(user:t)" (scheme case-insensitive). 0 with out filled (NUL-terminated),
 * -1 when there is none, it is malformed or does not fit outlen (out then holds "").
 */
int authz_proxy_token(const char *proxy_authorization_value, char *out, size_t outlen)
    __attribute__((nonnull(2)));

#endif
