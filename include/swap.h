/*
 * swap.h — one request's handle work: find handles (raw and encoded), throttle sources
 * that send failing handles, unseal through the verified-handle cache, authorise,
 * rate-limit, plan the injection of the real secret, and say which secrets to scrub
 * from the response.
 *
 * No sockets: the connection code calls swap_request with the parsed head and applies
 * the edits while it writes the head upstream. Time is passed in. The failed-handle
 * throttle also counts into the process-wide stats.h counters (handle_failures,
 * handle_throttled, brute_force) and logs a warning when a source trips it.
 */
#ifndef SEALGATE_SWAP_H
#define SEALGATE_SWAP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "handlecache.h"
#include "plan.h"
#include "fleettab.h"
#include "http.h"
#include "inject.h"
#include "policy.h"
#include "ratelimit.h"
#include "registry.h"
#include "revoke.h"
#include "seal.h"
#include "stscache.h"
#include "tokenizer.h"

typedef struct swap_env {
	const policy_t *policy;
	const seal_keyring_t *keyring;
	handlecache_t *cache;
	ratelimit_t *rl;
	const revoke_set_t *revoked;	/* may be NULL */
	/* registered sandboxes: the caller's reference, held for the call (NULL only when
	 * no registry is open); authz_check and authz_requester are given it */
	const registry_snapshot_t *registry;
	int64_t now;			/* wall clock, seconds */
	uint64_t now_ms;		/* monotonic, for rate buckets */
	const http_head_t *connect_head;	/* intercepted CONNECT (Proxy-Tokenizer), or NULL */
	fleettab_t *fleet;		/* fleet leases (fleet mode), or NULL */
} swap_env_t;

typedef struct swap_req {
	const http_head_t *head;
	const char *target;		/* origin-form target as it will be sent */
	const char *host;		/* upstream host (lower-case) and port */
	uint16_t port;
	const struct sockaddr *peer;
	const char *proxy_token;	/* from Proxy-Authorization, or NULL */
	const char *tk_host;		/* the authority as the client named it (tokenizer) */
	uint16_t tk_port;
} swap_req_t;


/* 0: forward with out->edits applied (nscrub may be 0); -1: answer out->status. */
int swap_request(const swap_env_t *env, const swap_req_t *req, plan_t *out);
/*
 * An aws_sigv4 credential with assume_role: swap_request verified the sandbox's
 * signature but leaves the re-signing to the identity the shell brings from STS
 * (stscache.h). swap_aws_identity_due: is one due for this plan? swap_aws_assumed: sign
 * as cred (the caller's reference, taken over by the plan whatever the result), scrub
 * its access key id, token and secret from responses, and (unless the body is still to
 * be hashed: swap_finish_body) re-sign the head. 0, or -1 with the refusal in the plan.
 */
bool swap_aws_identity_due(const plan_t *p) SG_NONNULL;
int swap_aws_assumed(const swap_req_t *req, plan_t *p, stscache_cred_t *cred) SG_NONNULL;

/*
 * A credential with "mint": swap_request authorised its handle but leaves the injection
 * to the token the shell brings (mintcache.h). swap_mint_due: is one due for this plan?
 * swap_mint_apply: inject tok (the caller's reference, taken over by the plan whatever
 * the result) where the credential's inject rule says, and scrub it from responses
 * (replaced by the handle). 0, or -1 with the refusal in the plan.
 */
bool swap_mint_due(const plan_t *p) SG_NONNULL;
int swap_mint_apply(const swap_req_t *req, plan_t *p, mintcache_tok_t *tok) SG_NONNULL;

/*
 * A buffered body (out->buffer_body) arrived whole: authorise handles found in it.
 * Only credentials whose inject type is body may travel in a body; a handle that opens
 * and whose credential sets echo_ok_in_body and covers req's host is a quote, left as
 * text without further checks (at most SG_BODY_QUOTES_MAX). 0 / -1 as above.
 */
int swap_body(const swap_env_t *env, const swap_req_t *req, const char *body, size_t len,
    plan_t *out);
/*
 * A handle found in a WebSocket message after the upgrade req->head (method GET, target,
 * host and port of the upgrade): throttle, unseal, authorise and rate-limit it as a
 * request there. Binary frames need the credential's allow_websocket_binary. 0 with
 * out->scrub[0] naming the secret (and the handle, for scrubbing replies); -1 with the
 * refusal in out (code, message; exfiltration for a host outside scope).
 */
int swap_frame_handle(const swap_env_t *env, const swap_req_t *req, const char *handle,
    size_t len, bool binary, plan_t *out);

/*
 * The failed-handle throttle (policy limits.failed_handles per
 * limits.failed_handles_window; off when the limit is 0 or env->rl is NULL).
 *
 * A failure is a handle that does not unseal (malformed, unknown or retired key,
 * undecryptable, bad payload) or unseals but fails authz_check, or a Proxy-Tokenizer
 * token that does not open or fails its checks; never a 429. Failures are counted per
 * source: the sandbox the request comes from (authz_requester: address, and proxy token
 * where the sandbox has one), else the client's IP address (IPv6: its /64), never
 * anything named inside the handle. Buckets in env->rl: "f:<source>" holds limit tokens
 * and gets limit more per window, a failure takes one; "fb:<source>" holds one per
 * window, taken by the first refusal of a window.
 *
 * swap_throttle_check: call before anything the request carries is unsealed or looked up
 * in the handle cache (swap_request and swap_body do). 0: go on. -1: the source's bucket
 * is empty; out is 429 too_many_failures with Retry-After (and RateLimit-Policy /
 * RateLimit, policy "failed_handles") in out->extra, out->sandbox the requesting sandbox
 * when known, and on the first refusal of a window out->brute_force and out->detail
 * ("possible brute force: N failed handles from SOURCE in W s", also logged as a
 * warning). Takes nothing from the failure bucket.
 * swap_throttle_fail: count one failure of the request's source (swap_request and
 * swap_body do for the handles and tokens they handle).
 */
int swap_throttle_check(const swap_env_t *env, const swap_req_t *req, plan_t *out)
    SG_NONNULL;
void swap_throttle_fail(const swap_env_t *env, const swap_req_t *req) SG_NONNULL;

/*
 * A body the plan must hold whole (p->buffer_body) has arrived: the leak scan (a handle
 * in an encoded form: 403 handle_encoded), its handles authorised (swap_body; they may
 * only be body credentials'), the plain-http check (tls false: an http:// upstream), the
 * body rewritten (plan_body_scrubber) and signed (plan_sign). 0 with *out the body to
 * send (wipe memory, secmem_wipe_free it; NULL: send body as it is) and the signers'
 * header edits in the plan; -1 with the refusal in the plan.
 */
int swap_finish_body(const swap_env_t *env, const swap_req_t *req, bool tls, plan_t *p,
    const char *body, size_t len, char **out, size_t *outlen);

#endif
