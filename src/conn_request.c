/*
 * conn_request.c — a request head: the policy it is decided on, the suspended-sandbox
 * refusal, the target and Host checks, the plan (swap_request: handles and tokenizer
 * secrets), the upstream it goes to (pool key from the plan), and the head written as
 * the plan edits it (secrets by wiped reference, Accept-Encoding narrowed and Range
 * dropped when the answer is scrubbed).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "authz.h"
#include "conn_int.h"
#include "decode.h"
#include "defaults.h"
#include "egress.h"
#include "http.h"
#include "log.h"
#include "plan.h"
#include "policy.h"
#include "registry.h"
#include "resolve.h"
#include "revoke.h"
#include "scrub.h"
#include "stats.h"
#include "stscache.h"
#include "stsclient.h"
#include "mintcache.h"
#include "mintclient.h"
#include "mintreq.h"
#include "swap.h"
#include "util.h"
#include "worker.h"

static void conn_request_resolved(const egress_result_t *res, void *arg);
static void conn_forward_request(conn_t *c);

/*
 * Each request is decided on one view of the published state (view.h), current when
 * its head arrived: the policy (a grant withdrawn by a reload stops the next request,
 * also on a kept-alive connection), the revocations and the sandbox registry. A request
 * in flight finishes on the view it started with. The view is kept while nothing is
 * published (three atomic loads tell); the connection's limits follow its policy.
 * -1 when no policy is published (shutting down).
 */
int
conn_view_refresh(conn_t *c)
{
	if (c->view.policy != NULL && !view_changed(&c->view))
		return 0;
	view_release(&c->view);
	if (view_acquire(&c->view) < 0) {
		view_release(&c->view);
		return -1;
	}
	if (c->view.policy != c->pol) {
		plan_free(&c->rq->plan);	/* it borrows from the old snapshot */
		policy_unref(c->pol);
		c->pol = policy_ref(c->view.policy);
	}
	return 0;
}

/* Proxy-Authorization comes on the CONNECT (or each absolute-form request). */
static void
conn_take_proxy_token(conn_t *c)
{
	const http_field_t *pa;

	if (c->mode == MODE_INTERCEPT)
		return;		/* inside the tunnel the CONNECT's token stands */
	pa = http_head_get(&c->req.head, "Proxy-Authorization");
	sodium_memzero(c->proxy_token, sizeof(c->proxy_token));
	if (pa && authz_proxy_token(pa->value, c->proxy_token, sizeof(c->proxy_token)) < 0)
		sodium_memzero(c->proxy_token, sizeof(c->proxy_token));
}

/*
 * Nothing from a suspended sandbox's addresses is accepted: every request head gets 403
 * sandbox_suspended, whatever it carries. One atomic load while none is suspended.
 */
static bool
conn_refuse_suspended(conn_t *c)
{
	const registry_entry_t *e;
	char msg[192];

	if (registry_suspended_published() == 0)
		return false;
	e = registry_find_addr(c->view.registry, (const struct sockaddr *)&c->peer_ss);
	if (e == NULL || e->suspended_at == 0)
		return false;
	snprintf(c->rq->plan.sandbox, sizeof(c->rq->plan.sandbox), "%s", e->id);
	snprintf(msg, sizeof(msg), "sandbox %s is suspended: nothing from its addresses is "
	    "accepted until it is resumed", e->id);
	STATS_INC(suspended_refused);
	conn_fail(c, 403, "sandbox_suspended", msg);
	return true;
}

void
conn_process_head(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	const char *why = NULL;
	ssize_t hl;
	char *bytes;

	if (c->req.scan.total == 0 && evbuffer_get_length(in) > 0)
		conn_arm_timer(c, c->pol->limits.header_timeout_ms);
	hl = conn_scan_head(c, &c->req.scan, in);
	if (hl < 0) {
		STATS_INC(errors_bad_request);
		conn_fail(c, 400, "bad_request", c->req.scan.error ? c->req.scan.error : "malformed");
		return;
	}
	if (hl == 0)
		return;
	evtimer_del(c->timer);
	bytes = (char *)evbuffer_pullup(in, hl);
	http_parser_init(&c->req.parser, HTTP_REQUEST);
	if (bytes == NULL || http_head_parse(&c->req.parser, bytes, (size_t)hl, &c->req.head, HTTP_GET,
	    &why) < 0) {
		evbuffer_drain(in, (size_t)hl);
		STATS_INC(errors_bad_request);
		conn_fail(c, 400, "bad_request", why ? why : "malformed request head");
		return;
	}
	evbuffer_drain(in, (size_t)hl);
	STATS_INC(requests_total);
	c->acct.t_start = util_mono_msf();
	if (conn_view_refresh(c) < 0) {
		conn_fail(c, 503, "no_policy", "no policy loaded");
		return;
	}
	conn_take_proxy_token(c);
	c->served = true;
	if (conn_refuse_suspended(c))
		return;
	conn_req_phase(c, REQ_DECIDING);
	c->req.keepalive = c->req.head.keep_alive;
	bufferevent_disable(c->cbev, EV_READ);
	conn_forward_request(c);
}

/* The connection's response scrubber takes the secrets this request injects. */
static int
conn_scrub_add(conn_t *c)
{
	if (c->rq->plan.nscrub == 0 && c->rq->plan.tk.nscrub == 0)
		return 0;
	if (c->scrub == NULL && (c->scrub = scrub_new(SCRUB_FORMS)) == NULL)
		return -1;
	return plan_scrub_into(&c->rq->plan, c->scrub);
}

/* What the swap decides on: the request's view, the worker's keys, cache and limits. */
void
conn_swap_env(conn_t *c, swap_env_t *env, swap_req_t *req)
{
	const proxy_shared_t *sh = worker_shared(c->w);

	*env = (swap_env_t){c->view.policy, sh->keyring, sh->handles, sh->rl, c->view.revoked,
	    c->view.registry, util_now_s(), util_mono_ms(),
	    c->connect_head.buf ? &c->connect_head : NULL, sh->fleet};
	*req = (swap_req_t){&c->req.head, c->req.target, c->req.host, c->req.port,
	    (const struct sockaddr *)&c->peer_ss, c->proxy_token[0] ? c->proxy_token : NULL,
	    NULL, 0};
}

/* A denied swap: log a possible exfiltration, answer the client. Always -1. */
static int
conn_swap_denied(conn_t *c)
{
	if (c->rq->plan.exfiltration)
		log_warn("%s: possible exfiltration: handle %s toward %s:%u: %s", c->peer,
		    c->rq->plan.hid[0] ? c->rq->plan.hid : "-", c->req.host, c->req.port,
		    c->rq->plan.message);
	conn_fail_ex(c, c->rq->plan.status, c->rq->plan.code, c->rq->plan.message,
	    c->rq->plan.extra[0] ? c->rq->plan.extra : NULL);
	return -1;
}

/* After a swap: answer a denial, or add what the response must be scrubbed of. */
int
conn_swap_finish(conn_t *c, int rc)
{
	if (rc < 0)
		return conn_swap_denied(c);
	if (conn_scrub_add(c) < 0) {
		conn_fail(c, 500, "internal_error", "cannot set up response scrubbing");
		return -1;
	}
	return 0;
}

/* The request's AWS credential signs as its assume_role identity: ready (applied), or
 * answered. 0 / -1. */
static int
conn_identity_apply(conn_t *c, stscache_cred_t *cred)
{
	swap_env_t env;
	swap_req_t req;

	conn_swap_env(c, &env, &req);
	return conn_swap_finish(c, swap_aws_assumed(&req, &c->rq->plan, cred));
}

/* The minted token arrived: inject it, scrub it. 0 / -1 (answered). */
static int
conn_mint_apply(conn_t *c, mintcache_tok_t *tok)
{
	swap_env_t env;
	swap_req_t req;

	conn_swap_env(c, &env, &req);
	return conn_swap_finish(c, swap_mint_apply(&req, &c->rq->plan, tok));
}

/* The cache entry of the plan's minted credential: its name, settings digest and the
 * handle's narrowing (each repository and permission a part of its own). */
static void
conn_mint_key(conn_t *c, mintcache_t *mc)
{
	const plan_t *p = &c->rq->plan;
	const char *parts[4 + 2 * MINTREQ_NARROW_MAX + 2];
	size_t lens[SG_ARRAY_LEN(parts)], n = 0;

	parts[n++] = p->mint_cred->name;
	parts[n++] = p->mint_cred->mint->digest;
	parts[n++] = p->mint_scope;
	parts[n++] = p->mint_audience;
	for (size_t i = 0; i < p->mint_repos.n && i < MINTREQ_NARROW_MAX; i++)
		parts[n++] = p->mint_repos.v[i];
	parts[n++] = "|";	/* repositories end, permissions begin */
	for (size_t i = 0; i < p->mint_perms.n && i < MINTREQ_NARROW_MAX; i++)
		parts[n++] = p->mint_perms.v[i];
	for (size_t i = 0; i < n; i++)
		lens[i] = parts[i] ? strlen(parts[i]) : 0;
	mintcache_key(mc, parts, lens, n, c->req.mint_key);
}

/* The handle's narrowing for the token request, or NULL (the credential's). */
static const mintreq_narrow_t *
conn_mint_narrow(const plan_t *p, mintreq_narrow_t *n)
{
	if (p->mint_scope == NULL && p->mint_audience == NULL && p->mint_repos.n == 0 &&
	    p->mint_perms.n == 0)
		return NULL;
	*n = (mintreq_narrow_t){p->mint_scope, p->mint_audience,
	    (const char *const *)p->mint_repos.v,
	    p->mint_repos.n, (const char *const *)p->mint_perms.v, p->mint_perms.n};
	return n;
}

/*
 * The token of a minted credential (mintcache.h), as conn_identity does for AWS: 0 when
 * it was cached (injected at once), 1 when the request waits (ST_IDENTITY), -1 when
 * answered (502 mint_failed naming the provider's error code).
 */
static int
conn_mint(conn_t *c, uint64_t wait_seq)
{
	const proxy_shared_t *sh = worker_shared(c->w);
	const policy_credential_t *cred = c->rq->plan.mint_cred;
	mintcache_look_t look;
	mintreq_narrow_t narrow;
	char msg[256];

	if (sh->mint_cache == NULL || sh->mint == NULL) {
		conn_fail(c, 502, "mint_failed", "no token endpoint client");
		return -1;
	}
	if (wait_seq == 0)
		conn_mint_key(c, sh->mint_cache);
	mintcache_get(sh->mint_cache, c->req.mint_key, util_now_s(), util_mono_ms(), wait_seq,
	    &look);
	if (look.fetch)
		mintclient_fetch(sh->mint, c->view.policy, cred, conn_mint_narrow(&c->rq->plan,
		    &narrow), c->req.mint_key, look.seq, look.refresh);
	if (look.state == MINTCACHE_READY)
		return conn_mint_apply(c, look.tok);
	if (look.state == MINTCACHE_FAILED) {
		snprintf(msg, sizeof(msg), "minting a token for credential %s failed (%s): the "
		    "request is not sent", cred->name, look.error);
		conn_fail(c, 502, "mint_failed", msg);
		return -1;
	}
	c->req.id_seq = look.seq;
	c->req.mint_wait = true;
	if (c->st != ST_IDENTITY) {
		conn_set_state(c, ST_IDENTITY);
		conn_arm_timer(c, SG_MINT_WAIT_MS);
	}
	return 1;
}

/*
 * The identity an assume_role credential signs with (stscache.h): 0 when it was cached
 * (applied at once: a warm cache never waits), 1 when the request waits for STS
 * (ST_IDENTITY with its own timer; conn_identity_ready resumes it), -1 when answered
 * (502 sts_error). wait_seq: 0 the first time, else the fetch it waited for.
 */
static int
conn_identity(conn_t *c, uint64_t wait_seq)
{
	const proxy_shared_t *sh = worker_shared(c->w);
	const policy_credential_t *cred = c->rq->plan.aws.cred;
	stscache_look_t look;
	char msg[256];

	if (sh->sts_cache == NULL || sh->sts == NULL) {
		conn_fail(c, 502, "sts_error", "no STS client to assume this credential's role");
		return -1;
	}
	if (wait_seq == 0)
		stscache_key(sh->sts_cache, cred, c->req.id_key);
	stscache_get(sh->sts_cache, c->req.id_key, util_now_s(), util_mono_ms(), wait_seq,
	    &look);
	if (look.fetch)
		stsclient_fetch(sh->sts, c->view.policy, cred, c->req.id_key, look.seq,
		    look.refresh);
	if (look.state == STSCACHE_READY) {
		if (conn_identity_apply(c, look.cred) < 0)
			return -1;
		return swap_mint_due(&c->rq->plan) ? conn_mint(c, 0) : 0;
	}
	if (look.state == STSCACHE_FAILED) {
		snprintf(msg, sizeof(msg), "AssumeRole for credential %s failed (%s): the "
		    "request is not sent", cred->name, look.error);
		conn_fail(c, 502, "sts_error", msg);
		return -1;
	}
	c->req.id_seq = look.seq;
	c->req.mint_wait = false;
	if (c->st != ST_IDENTITY) {
		conn_set_state(c, ST_IDENTITY);
		conn_arm_timer(c, SG_STS_WAIT_MS);
	}
	return 1;
}

/* Find, authorise and plan the handle swap; answers the client itself on denial. 0: go
 * on; 1: the request waits for its AWS identity or minted token (conn_route resumes it);
 * -1: answered. */
static int
conn_swap(conn_t *c, const char *host, uint16_t port)
{
	swap_env_t env;
	swap_req_t req;
	int rc;

	snprintf(c->req.host, sizeof(c->req.host), "%s", host);
	c->req.port = port;
	plan_free(&c->rq->plan);
	conn_swap_env(c, &env, &req);
	rc = swap_request(&env, &req, &c->rq->plan);
	if (rc == 0 && swap_aws_identity_due(&c->rq->plan))
		return conn_identity(c, 0);	/* then the minted token, if one is due */
	if (rc == 0 && swap_mint_due(&c->rq->plan))
		return conn_mint(c, 0);
	return conn_swap_finish(c, rc);
}

static int
conn_check_host_header(conn_t *c, const char *host, uint16_t port, uint16_t defport)
{
	const http_field_t *hf = http_head_get(&c->req.head, "Host");
	char hh[CONN_HOST_MAX];
	uint16_t hp;

	if (hf == NULL)
		return 0;	/* HTTP/1.0 without Host: the authority stands */
	if (http_split_authority(hf->value, hf->value_len, hh, sizeof(hh), &hp, defport) < 0 ||
	    !http_authority_equal(hh, hp, host, port)) {
		char msg[2 * CONN_HOST_MAX + 64];

		STATS_INC(errors_host_mismatch);
		snprintf(msg, sizeof(msg), "Host header does not match %s:%u", host, port);
		conn_fail(c, 421, "host_mismatch", msg);
		return -1;
	}
	return 0;
}

/* Inside an intercepted CONNECT, planned: the upstream (the connection's, pooled, or
 * dialled to the address checked at CONNECT). */
static void
conn_inner_route(conn_t *c)
{
	char key[CONN_KEY_MAX];

	plan_pool_key(&c->rq->plan, c->peer, c->auth_host, c->auth_port, true, c->proxy_token,
	    key, sizeof(key));
	if (conn_upstream_reuse(c, key)) {
		conn_send_request_head(c);
		return;
	}
	if (conn_dial(c) < 0)
		conn_fail(c, 502, "upstream_error", "cannot open upstream connection");
}

/* Inside an intercepted CONNECT: origin-form, Host = authority = SNI. */
static void
conn_on_inner_request(conn_t *c)
{
	if (c->req.head.method == HTTP_CONNECT) {
		conn_fail(c, 400, "bad_request", "CONNECT inside an intercepted tunnel");
		return;
	}
	if (c->req.head.target[0] != '/') {
		struct http_parser_url u;
		char h[CONN_HOST_MAX];

		http_parser_url_init(&u);
		if (http_parser_parse_url(c->req.head.target, c->req.head.target_len, 0, &u) != 0 ||
		    !(u.field_set & (1 << UF_HOST)) ||
		    u.field_data[UF_HOST].len >= sizeof(h)) {
			conn_fail(c, 400, "bad_request", "request-target must be origin-form");
			return;
		}
		memcpy(h, c->req.head.target + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
		h[u.field_data[UF_HOST].len] = '\0';
		if (!http_authority_equal(h, u.port ? u.port : 443, c->auth_host, c->auth_port)) {
			STATS_INC(errors_host_mismatch);
			conn_fail(c, 421, "host_mismatch", "request URI does not match CONNECT");
			return;
		}
		c->req.target = strndup(c->req.head.target + u.field_data[UF_PATH].off,
		    (size_t)(c->req.head.target_len - u.field_data[UF_PATH].off));
	} else
		c->req.target = strdup(c->req.head.target);
	if (conn_check_host_header(c, c->auth_host, c->auth_port, 443) < 0 ||
	    conn_swap(c, c->auth_host, c->auth_port) != 0)
		return;
	conn_inner_route(c);
}

/*
 * The http:// URI of an absolute-form request: host (lower case, no trailing dot),
 * port, and the origin-form target in c->req.target. -1 when answered (400, 421).
 */
static int
conn_absolute_uri(conn_t *c, char *host, size_t hostlen, uint16_t *port)
{
	struct http_parser_url u;
	const char *t = c->req.head.target;
	size_t n;

	http_parser_url_init(&u);
	if (http_parser_parse_url(t, c->req.head.target_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST)) ||
	    u.field_data[UF_HOST].len >= hostlen) {
		STATS_INC(errors_bad_request);
		conn_fail(c, 400, "bad_request",
		    "a proxy request needs an absolute http:// URI (or CONNECT)");
		return -1;
	}
	if (u.field_data[UF_SCHEMA].len != 4 || strncasecmp(t + u.field_data[UF_SCHEMA].off,
	    "http", 4) != 0) {
		conn_fail(c, 400, "bad_request", "only http:// URIs; use CONNECT for https");
		return -1;
	}
	n = u.field_data[UF_HOST].len;
	for (size_t i = 0; i < n; i++)
		host[i] = (char)tolower((unsigned char)t[u.field_data[UF_HOST].off + i]);
	host[n] = '\0';
	if (n > 1 && host[n - 1] == '.')
		host[n - 1] = '\0';	/* "example.com." names example.com */
	*port = u.port ? u.port : 80;
	if (conn_check_host_header(c, host, *port, 80) < 0)
		return -1;
	c->req.target = (u.field_set & (1 << UF_PATH)) ?
	    strndup(t + u.field_data[UF_PATH].off,
	    c->req.head.target_len - u.field_data[UF_PATH].off) : strdup("/");
	return 0;
}

/* An absolute-form request, planned (c->req.host, c->req.port): the transport, the
 * plain-http rule, the upstream (pooled, or resolved and dialled). */
static void
conn_absolute_route(conn_t *c)
{
	char msg[CONN_HOST_MAX + 128], key[CONN_KEY_MAX];
	const char *host = c->req.host, *why;
	uint16_t port = c->req.port;
	bool tls = false;

	if (c->rq->plan.tk.n > 0) {
		/* tokenizer's transport: http:// toward the client, verified TLS upstream
		 * (port 80 or none becomes 443, other ports are kept) */
		tls = true;
		if (port == 80)
			port = 443;
		if (egress_decide(c->pol, host, port, &why) == EGRESS_DENY) {
			snprintf(msg, sizeof(msg), "%s:%u denied: %s", host, port, why);
			conn_fail(c, 403, "egress_denied", msg);
			return;
		}
	} else if (c->rq->plan.nscrub > 0 && !plan_plain_http_ok(&c->rq->plan)) {
		conn_fail(c, 403, "plain_http_denied", "this credential may not travel over "
		    "plain http; use https");
		return;
	}
	plan_pool_key(&c->rq->plan, c->peer, host, port, tls, c->proxy_token, key, sizeof(key));
	snprintf(c->up.host, sizeof(c->up.host), "%s", host);
	c->up.port = port;
	c->up.tls = tls;
	if (conn_upstream_reuse(c, key)) {
		conn_send_request_head(c);
		return;
	}
	conn_set_state(c, ST_RESOLVING);
	c->dns = egress_resolve(worker_dns(c->w), c->pol, c->up.host, port,
	    conn_request_resolved, c);
}

/* Absolute-form http:// request to the proxy listener. */
static void
conn_on_absolute(conn_t *c)
{
	char host[CONN_HOST_MAX], msg[CONN_HOST_MAX + 128];
	const char *why;
	enum egress_action act;
	uint16_t port;

	if (conn_absolute_uri(c, host, sizeof(host), &port) < 0)
		return;
	act = egress_decide(c->pol, host, port, &why);
	if (act == EGRESS_DENY) {
		STATS_INC(errors_egress);
		snprintf(msg, sizeof(msg), "%s:%u denied: %s", host, port, why);
		conn_fail(c, 403, "egress_denied", msg);
		return;
	}
	if (conn_swap(c, host, port) != 0)
		return;
	conn_absolute_route(c);
}

static void
conn_request_resolved(const egress_result_t *res, void *arg)
{
	conn_t *c = arg;

	c->dns = NULL;
	if (!res->ok) {
		bool dns = strcmp(res->code, "dns_error") == 0;

		STATS_INC(errors_egress);
		conn_fail(c, dns ? 502 : 403, res->code, res->msg);
		return;
	}
	c->up.addr = res->addr;
	c->up.addrlen = res->addrlen;
	if (conn_dial(c) < 0)
		conn_fail(c, 502, "upstream_error", "cannot open upstream connection");
}

static void
conn_forward_request(conn_t *c)
{
	if (c->mode == MODE_INTERCEPT)
		conn_on_inner_request(c);
	else if (c->req.head.method == HTTP_CONNECT)
		conn_on_connect(c);
	else
		conn_on_absolute(c);
}

/*
 * The request, sent and refused (a 401 to its minted token), goes again from its head as
 * read: its upstream connection (the refused answer's body on it) is dropped, the plan
 * made anew (the cache mints a new token), the audit line of the retry its own.
 */
void
conn_request_retry(conn_t *c)
{
	if (c->ubev != NULL) {
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		c->up.ready = false;
	}
	http_head_clear(&c->res.head);
	conn_res_phase(c, RES_WAITING);
	free(c->req.target);
	c->req.target = NULL;
	c->acct.audited = false;
	c->acct.t_sent = c->acct.upstream_ms = 0;
	c->acct.bytes_up = c->acct.bytes_down = 0;
	conn_set_state(c, ST_HEAD);
	conn_req_phase(c, REQ_DECIDING);
	conn_forward_request(c);
}

/* A request that waited for its AWS identity, planned at last: on to its upstream. */
static void
conn_route(conn_t *c)
{
	if (c->mode == MODE_INTERCEPT)
		conn_inner_route(c);
	else
		conn_absolute_route(c);
}

void
conn_identity_ready(conn_t *c)
{
	if (c->st != ST_IDENTITY || c->rq == NULL)
		return;
	switch (c->req.mint_wait ? conn_mint(c, c->req.id_seq) :
	    conn_identity(c, c->req.id_seq)) {
	case 0:
		evtimer_del(c->timer);
		conn_set_state(c, ST_HEAD);	/* where it was: deciding, nothing sent */
		conn_route(c);
		return;
	default:
		return;		/* still waiting, or answered */
	}
}

static bool
conn_is_websocket(const http_head_t *h)
{
	const http_field_t *up = http_head_get(h, "Upgrade");
	const http_field_t *co = http_head_get(h, "Connection");

	return up && co && http_list_has(co->value, "upgrade") &&
	    strcasecmp(up->value, "websocket") == 0;
}

static int
conn_write_field(struct evbuffer *out, const char *name, const char *value, bool secret)
{
	int rc = 0;

	evbuffer_add(out, name, strlen(name));
	evbuffer_add(out, ": ", 2);
	if (secret)
		rc = conn_add_secret(out, value, strlen(value));
	else
		evbuffer_add(out, value, strlen(value));
	evbuffer_add(out, "\r\n", 2);
	return rc;
}

/*
 * The answer will be scrubbed: ask only for codings sealgate can decode, and for the
 * whole body (a range of it cannot be scrubbed: a secret may straddle its edges). An AWS
 * signature that covers Range / If-Range keeps them (dropped, the upstream refuses the
 * signature): the 206 is then scrubbed as a slice (conn_res_decode_setup). true when
 * the field was written (or dropped) here.
 */
static bool
conn_narrow_request_field(conn_t *c, struct evbuffer *out, const char *name, const char *v)
{
	char ae[1024];

	if (strcasecmp(name, "Range") == 0 || strcasecmp(name, "If-Range") == 0) {
		if (!awssign_signs(&c->rq->plan.aws, name))
			return true;
		c->req.range_signed = true;
		return false;
	}
	if (strcasecmp(name, "Accept-Encoding") != 0)
		return false;
	if (decode_accept_encoding(v, strlen(v), ae, sizeof(ae)) < 0)
		snprintf(ae, sizeof(ae), "identity");
	(void)conn_write_field(out, name, ae, false);
	return true;
}

/* Request fields as the swap edited them; handles never leave, secrets by reference. */
static int
conn_write_request_fields(conn_t *c, struct evbuffer *out)
{
	const http_head_t *h = &c->req.head;
	const inject_edits_t *e = &c->rq->plan.edits;
	bool scrubbing = conn_scrubbing(c);
	int rc = 0;

	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];
		const char *v = inject_field_value(h, e, i);

		if (v == NULL || http_is_hop_by_hop(h, f->name, f->name_len) ||
		    strcasecmp(f->name, "Proxy-Tokenizer") == 0 ||
		    (c->req.websocket && strcasecmp(f->name, "Sec-WebSocket-Extensions") == 0))
			continue;
		if (scrubbing && conn_narrow_request_field(c, out, f->name, v))
			continue;
		rc |= conn_write_field(out, f->name, v, e->kind[i] == EDIT_REPLACE);
	}
	for (size_t i = 0; i < e->nadd; i++)
		rc |= conn_write_field(out, e->add[i].name, e->add[i].value, true);
	return rc;
}

/* The request line, the fields as planned and the framing of the body that follows. */
static int
conn_build_request_head(conn_t *c, struct evbuffer *head)
{
	const http_head_t *h = &c->req.head;
	const char *target = c->rq->plan.edits.target ? c->rq->plan.edits.target : c->req.target;
	int rc = 0;

	evbuffer_add_printf(head, "%s ", http_method_str(h->method));
	if (c->rq->plan.edits.target)
		rc |= conn_add_secret(head, target, strlen(target));
	else
		evbuffer_add(head, target, strlen(target));
	evbuffer_add(head, " HTTP/1.1\r\n", 11);
	rc |= conn_write_request_fields(c, head);
	c->req.chunked = !c->req.held_whole && (h->chunked || c->req.rewrite != NULL);
	if (c->req.held_whole)
		evbuffer_add_printf(head, "Content-Length: %zu\r\n",
		    evbuffer_get_length(c->req.held));
	else if (c->req.chunked)
		evbuffer_add_printf(head, "Transfer-Encoding: chunked\r\n");
	else if (h->has_length && !h->no_body)
		evbuffer_add_printf(head, "Content-Length: %llu\r\n",
		    (unsigned long long)h->content_length);
	if (c->req.websocket)
		evbuffer_add_printf(head, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	evbuffer_add(head, "\r\n", 2);
	return rc;
}

/* The head is on its way: ready the response side. */
static void
conn_expect_response(conn_t *c)
{
	struct timeval tv = conn_tv(c->pol->limits.upstream_timeout_ms);

	STATS_INC(requests_forwarded);
	c->acct.t_sent = util_mono_msf();
	http_head_clear(&c->res.head);
	http_scan_init(&c->res.scan, SG_MAX_HEADER_BYTES);
	conn_res_phase(c, RES_WAITING);
	c->res.ninterim = 0;
	c->res.dec_err = 0;
	bufferevent_set_timeouts(c->ubev, &tv, NULL);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
}

/* An upstream is ready: the head (a body to hold first is collected before it). */
void
conn_send_request_head(conn_t *c)
{
	const http_head_t *h = &c->req.head;
	struct evbuffer *head;

	if (c->req.git == NULL && !h->no_body && !c->req.held_whole && conn_git_start(c))
		return;		/* the push's commands decide first (or it was answered) */
	if (c->rq->plan.buffer_body && !h->no_body && !c->req.held_whole) {
		conn_body_collect_start(c);
		return;
	}
	if (!c->req.held_whole && !h->no_body && conn_body_prepare(c) < 0) {
		conn_fail(c, 500, "internal_error", "cannot set up body replacement");
		return;
	}
	conn_set_state(c, ST_RELAY);
	c->req.websocket = h->upgrade && conn_is_websocket(h);
	if ((head = evbuffer_new()) == NULL) {
		conn_fail(c, 503, "resource_exhausted", "out of memory while writing the request");
		return;
	}
	if (conn_build_request_head(c, head) != 0) {
		evbuffer_free(head);
		conn_fail(c, 503, "resource_exhausted", "out of memory while writing the request");
		return;
	}
	if (conn_move_head(head, bufferevent_get_output(c->ubev)) < 0) {	/* frees head */
		conn_fail(c, 503, "resource_exhausted", "out of memory while writing the request");
		return;
	}
	conn_expect_response(c);
	conn_send_request_body(c);
}
