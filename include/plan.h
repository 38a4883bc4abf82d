/*
 * plan.h — one request's plan: what the core decided for it and the shell applies.
 *
 * swap (handles) and tokenizer (Proxy-Tokenizer sealed secrets) fill one plan_t:
 *   - header edits (edits): values replaced, added, removed — secrets in wipe memory;
 *   - the secrets injected, each with what replaces it in responses (scrub[], and the
 *     tokenizer's tk.scrub with a fixed marker): plan_scrub_into;
 *   - body replacements (body[]: handle or placeholder -> secret; tk.body):
 *     plan_body_scrubber;
 *   - signers (hmac_cred, tk.hmac) over a body that must be held whole (buffer_body):
 *     plan_sign, run by swap_finish_body (swap.h) with the leak scan, the plain-http
 *     check and the rewrite;
 *   - or a refusal: status, code, message, extra headers, the audit flags.
 * Pure core. Ownership: the plan owns everything it points to except cred/secret
 * pointers borrowed from the policy snapshot the request holds (and those into
 * aws_assumed, mint_tok and live[].val, whose references it holds); plan_free releases
 * it. A plan is not copied: cred pointers may point into its own live[].
 */
#ifndef SEALGATE_PLAN_H
#define SEALGATE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "awssign.h"
#include "http.h"
#include "inject.h"
#include "mintcache.h"
#include "policy.h"
#include "scrub.h"
#include "secval.h"
#include "stscache.h"
#include "tokenizer.h"
#include "util.h"

/* Secrets scrubbed per request: each handle's, and an AWS handle's access key id and
 * session token besides its secret key; for the one AWS handle a request may carry, the
 * three of the temporary credentials of an assume_role besides; a rotated secret's
 * replaced value during its grace period (secval.h) besides its current one. */
#define PLAN_MAX_SCRUB	(INJECT_MAX_HANDLES * 4 + 3)

/* A secret that was injected, and the handle that replaces it in responses. */
typedef struct plan_secret {
	const policy_credential_t *cred;	/* borrowed from the policy snapshot */
	const char *secret;		/* borrowed from the policy snapshot */
	size_t secret_len;
	char *handle;			/* the handle text (malloc'd copy) */
	size_t handle_len;
} plan_secret_t;

/*
 * A credential whose secret rotates (cred->live): the request's copy of it with secret
 * set to the value current when the request took it (val, a reference the plan holds
 * until plan_free). Every later step of the request uses the copy.
 */
typedef struct plan_live {
	const policy_credential_t *base;	/* in the policy snapshot */
	policy_credential_t cred;		/* *base with secret = val->value */
	secval_t *val;
} plan_live_t;

typedef struct plan {
	inject_edits_t edits;
	unsigned status;		/* 0: go ahead; else the error answer */
	const char *code;
	char message[384];
	char extra[320];		/* extra answer headers (Retry-After, RateLimit…) */
	bool exfiltration;		/* audit as a possible exfiltration */
	bool brute_force;		/* 429 too_many_failures, the first of its window:
					 * audit as brute_force with detail */
	char detail[256];		/* audit detail (brute_force), or "" */
	plan_live_t live[INJECT_MAX_HANDLES];	/* rotating credentials in use */
	size_t nlive;
	plan_secret_t scrub[PLAN_MAX_SCRUB];
	size_t nscrub;
	/* body work (plan_body_scrubber, swap_finish_body) */
	const policy_credential_t *hmac_cred;	/* sign the (buffered) body */
	plan_secret_t body[INJECT_MAX_HANDLES];	/* handle -> secret inside the body */
	size_t nbody;
	bool buffer_body;		/* collect the whole body before the head leaves */
	tokenizer_out_t tk;		/* Proxy-Tokenizer secrets applied (tk.n) */
	awssign_t aws;			/* an AWS request (aws.set): signed again by swap */
	char *aws_handle;		/* its handle text (malloc'd): what replaces its
					 * identity's token in responses */
	size_t aws_handle_len;
	stscache_cred_t *aws_assumed;	/* the assume_role set it signs with (a reference):
					 * aws.id points into it */
	/* a minted credential's handle (one per request): swap_mint_due until the shell
	 * brings its token (swap_mint_apply) */
	const policy_credential_t *mint_cred;	/* borrowed from the snapshot */
	char *mint_handle;		/* the handle text (malloc'd) */
	size_t mint_handle_len;
	mintcache_tok_t *mint_tok;	/* the token injected (a reference) */
	char *mint_scope;		/* the handle's narrowing (malloc'd copies), or none */
	char *mint_audience;
	policy_strlist_t mint_repos, mint_perms;
	/* for the audit line: the first handle's id, credential, sandbox */
	char hid[40];
	char credential[72], sandbox[72];	/* names, copied: set as soon as known */
	char origin[72];		/* the handle's sandbox when lineage let it in from
					 * a fork or restore (sandbox then names the copy) */
	policy_strlist_t git_refs;	/* the handle's push-ref claim (malloc'd copies):
					 * narrows its credential's git.push refs */
} plan_t;

/* An empty plan (no edits, go ahead). */
void plan_init(plan_t *p) SG_NONNULL;
/* Free what the plan owns (secrets zeroed); it is empty afterwards. */
void plan_free(plan_t *p) SG_NONNULL;

/*
 * Make s replace every secret the plan injects: a handle's secret by its handle, a
 * tokenizer secret by TOKENIZER_SCRUB_TEXT. A secret s already has keeps one entry and
 * takes the new replacement; one shorter than SCRUB_MIN_NEEDLE is left out (it would
 * match ordinary text). 0, or -1 when out of memory or s is full.
 */
int plan_scrub_into(const plan_t *p, scrub_t *s) SG_NONNULL SG_WUR;

/*
 * The literal scrubber that rewrites the request body (handles and placeholders of body
 * credentials, tokenizer body placeholders -> secrets): *out NULL when the body needs
 * no rewriting. 0, or -1 when out of memory.
 */
int plan_body_scrubber(const plan_t *p, scrub_t **out) SG_NONNULL SG_WUR;

/* May the secrets of this plan travel over plain http (every credential says so)? */
bool plan_plain_http_ok(const plan_t *p) SG_NONNULL;

/*
 * The upstream pool key of a request with this plan: who (sandbox, else the client's
 * address) | host | port | tls | the credentials, sorted | tk:<id> | pt:<hash of the
 * proxy token> when no sandbox is known. An upstream that carried one sandbox's secret
 * is never handed to another sandbox or credential set.
 */
void plan_pool_key(const plan_t *p, const char *peer, const char *host, uint16_t port,
    bool tls, const char *proxy_token, char *key, size_t len)
    __attribute__((nonnull(1, 2, 3, 7)));

/*
 * The body is whole (body[0..len)): the signers compute over it and set their header
 * fields in the plan's edits (head: the request head the edits apply to). 0, or -1 with
 * the refusal in the plan (500 internal_error).
 */
int plan_sign(plan_t *p, const http_head_t *head, const void *body, size_t len)
    __attribute__((nonnull(1, 2)));

#endif
