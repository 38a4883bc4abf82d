/*
 * swap.h — one request's handle work: find handles (raw and encoded), unseal through
 * the verified-handle cache, authorise, rate-limit, plan the injection of the real
 * secret, and say which secrets to scrub from the response.
 *
 * No sockets: the connection code calls swap_request with the parsed head and applies
 * the edits while it writes the head upstream. Time is passed in.
 */
#ifndef SEALGATE_SWAP_H
#define SEALGATE_SWAP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "handlecache.h"
#include "http.h"
#include "inject.h"
#include "policy.h"
#include "ratelimit.h"
#include "registry.h"
#include "revoke.h"
#include "seal.h"
#include "tokenizer.h"

typedef struct swap_env {
	const policy_t *policy;
	const seal_keyring_t *keyring;
	handlecache_t *cache;
	ratelimit_t *rl;
	const revoke_set_t *revoked;	/* may be NULL */
	const registry_snapshot_t *registry;	/* registered sandboxes, held for the call */
	int64_t now;			/* wall clock, seconds */
	uint64_t now_ms;		/* monotonic, for rate buckets */
	const http_head_t *connect_head;	/* intercepted CONNECT (Proxy-Tokenizer), or NULL */
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

/* A secret that was injected, and the handle that replaces it in responses. */
typedef struct swap_scrub {
	const policy_credential_t *cred;	/* borrowed from the policy snapshot */
	const char *secret;		/* borrowed from the policy snapshot */
	size_t secret_len;
	char *handle;			/* the handle text (malloc'd copy) */
	size_t handle_len;
	/* the encoded form sealgate injected (Basic base64, query percent-encoding) and
	 * what replaces it in responses; wipe memory, NULL when none */
	char *enc_secret, *enc_handle;
} swap_scrub_t;

typedef struct swap_out {
	inject_edits_t edits;
	unsigned status;		/* 0: go ahead; else the error answer */
	const char *code;
	char message[384];
	char extra[320];		/* extra answer headers (Retry-After, RateLimit…) */
	bool exfiltration;		/* audit as a possible exfiltration */
	swap_scrub_t scrub[INJECT_MAX_HANDLES];
	size_t nscrub;
	/* body work, applied by the shell */
	const policy_credential_t *hmac_cred;	/* sign the (buffered) body */
	swap_scrub_t body[INJECT_MAX_HANDLES];	/* handle -> secret inside the body */
	size_t nbody;
	bool buffer_body;		/* collect the whole body before the head leaves */
	tokenizer_out_t tk;		/* Proxy-Tokenizer secrets applied (tk.n) */
	/* for the audit line: the first handle's id, credential, sandbox */
	char hid[40];
	char credential[72], sandbox[72];	/* names, copied: set as soon as known */
	char origin[72];		/* the handle's sandbox when lineage let it in from
					 * a fork or restore (sandbox then names the copy) */
} swap_out_t;

/* 0: forward with out->edits applied (nscrub may be 0); -1: answer out->status. */
int swap_request(const swap_env_t *env, const swap_req_t *req, swap_out_t *out);
/*
 * A buffered body (out->buffer_body) arrived whole: authorise handles found in it.
 * Only credentials whose inject type is body may travel in a body. 0 / -1 as above.
 */
int swap_body(const swap_env_t *env, const swap_req_t *req, const char *body, size_t len,
    swap_out_t *out);
void swap_out_free(swap_out_t *out);

#endif
