/* swap.c — per-request handle work: throttle, find, unseal, authorise, rate-limit, plan. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "authz.h"
#include "awscred.h"
#include "awssign.h"
#include "gitpush.h"
#include "handle.h"
#include "leak.h"
#include "log.h"
#include "netaddr.h"
#include "scope.h"
#include "secmem.h"
#include "stats.h"
#include "scrub.h"
#include "mintreq.h"
#include "fleetrate.h"
#include "swap.h"

static int
swap_deny(plan_t *out, unsigned status, const char *code, const char *fmt,
    const char *arg)
{
	out->status = status;
	out->code = code;
	snprintf(out->message, sizeof(out->message), fmt, arg ? arg : "");
	return -1;
}

static bool
swap_is_basic(const http_field_t *f)
{
	return (strcasecmp(f->name, "Authorization") == 0 ||
	    strcasecmp(f->name, "Proxy-Authorization") == 0) &&
	    strncasecmp(f->value, "Basic ", 6) == 0;
}

/* Encoded handles (percent, base64, escapes…) are refused anywhere in the head. */
static int
swap_check_encoded(const swap_req_t *req, plan_t *out)
{
	leak_hit_t hit;

	for (size_t i = 0; i < req->head->nfields; i++) {
		const http_field_t *f = &req->head->fields[i];

		if (memmem(f->name, f->name_len, HANDLE_PREFIX, HANDLE_PREFIX_LEN) ||
		    leak_scan(f->name, f->name_len, &hit)) {
			out->exfiltration = true;
			return swap_deny(out, 403, "handle_in_name", "a handle in a header field "
			    "name%s", NULL);
		}
		/* Basic credentials are base64 by nature: scan them decoded */
		const char *v = f->value;
		size_t vl = f->value_len;
		char *dec = swap_is_basic(f) ? inject_basic_decode(f->value, &vl) : NULL;
		bool found;

		if (dec)
			v = dec;
		else
			vl = f->value_len;
		found = leak_scan(v, vl, &hit);
		secmem_wipe_free(dec);
		if (found) {
			char where[96];

			snprintf(where, sizeof(where), "%s header (%s)", f->name, hit.encoding);
			out->exfiltration = true;
			return swap_deny(out, 403, "handle_encoded", "a handle in encoded form in "
			    "the %s; send handles as plain text where the credential expects them",
			    where);
		}
	}
	if (leak_scan(req->target, strlen(req->target), &hit)) {
		out->exfiltration = true;
		return swap_deny(out, 403, "handle_encoded", "a handle in encoded form in the "
		    "request URL (%s)", hit.encoding);
	}
	return 0;
}

/* --- the failed-handle throttle ------------------------------------------------------ */

/* Where failures are counted: the requesting sandbox, else the client's address. */
struct swap_source {
	char key[96];		/* "s:<sandbox>" or "a:<address>" */
	char what[160];		/* for messages: "sandbox sb-1 (10.0.2.15)" or "10.0.9.9" */
	char sandbox[72];	/* the requesting sandbox, or "" */
};

/*
 * The client's address as a source: IPv4 (also IPv4-mapped) whole, other IPv6 by its
 * /64 (what one host is given, so rotating addresses inside it gains nothing); "-"
 * when unknown.
 */
static void
swap_source_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	struct sockaddr_in6 v6;
	char a[INET6_ADDRSTRLEN];

	if (sa != NULL && sa->sa_family == AF_INET6) {
		memcpy(&v6, sa, sizeof(v6));
		if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) &&
		    inet_ntop(AF_INET, &v6.sin6_addr.s6_addr[12], a, sizeof(a)) != NULL) {
			snprintf(buf, len, "%s", a);
			return;
		}
		memset(&v6.sin6_addr.s6_addr[8], 0, 8);
		if (inet_ntop(AF_INET6, &v6.sin6_addr, a, sizeof(a)) != NULL) {
			snprintf(buf, len, "%s/64", a);
			return;
		}
	}
	if (sa == NULL || netaddr_format(sa, buf, len) < 0)
		snprintf(buf, len, "-");
}

/* Never from the handle: the sandbox the request comes from, or its address. */
static void
swap_source_of(const swap_env_t *env, const swap_req_t *req, struct swap_source *src)
{
	char addr[INET6_ADDRSTRLEN + 4];
	sandbox_view_t v;

	memset(src, 0, sizeof(*src));
	swap_source_addr(req->peer, addr, sizeof(addr));
	if (authz_requester(env->policy, env->registry, req->peer, req->proxy_token,
	    env->now, &v) == 0) {
		snprintf(src->sandbox, sizeof(src->sandbox), "%s", v.name);
		snprintf(src->key, sizeof(src->key), "s:%s", v.name);
		snprintf(src->what, sizeof(src->what), "sandbox %s (%s)", v.name, addr);
	} else {
		snprintf(src->key, sizeof(src->key), "a:%s", addr);
		snprintf(src->what, sizeof(src->what), "%s", addr);
	}
}

/*
 * The policy's throttle as buckets: fail holds limit tokens and gets limit more per
 * window; first holds one per window (the first refusal of a window). false: off.
 */
static bool
swap_throttle_rates(const swap_env_t *env, policy_rate_t *fail, policy_rate_t *first)
{
	const policy_limits_t *l = &env->policy->limits;

	if (env->rl == NULL || l->failed_handles == 0 || l->failed_handles_window_ms == 0)
		return false;
	*fail = (policy_rate_t){.set = true, .requests = l->failed_handles,
	    .per_ms = l->failed_handles_window_ms, .burst = l->failed_handles};
	*first = (policy_rate_t){.set = true, .requests = 1,
	    .per_ms = l->failed_handles_window_ms, .burst = 1};
	return true;
}

/* The first refusal of a window: flag it for the audit line (brute_force) and log it. */
static void
swap_throttle_trip(const swap_env_t *env, const struct swap_source *src,
    const policy_rate_t *first, plan_t *out)
{
	struct ratelimit_result res;
	char key[128];

	snprintf(key, sizeof(key), "fb:%s", src->key);
	if (ratelimit_take(env->rl, &(struct ratelimit_req){key, strlen(key), first}, 1,
	    env->now_ms, &res) < 0 || !res.allowed)
		return;
	STATS_INC(brute_force);
	out->brute_force = true;
	snprintf(out->detail, sizeof(out->detail), "possible brute force: %u failed handles "
	    "from %s in %g s", (unsigned)env->policy->limits.failed_handles, src->what,
	    (double)first->per_ms / 1000.0);
	log_warn("%s", out->detail);
}

int
swap_throttle_check(const swap_env_t *env, const swap_req_t *req, plan_t *out)
{
	struct ratelimit_result res;
	struct swap_source src;
	policy_rate_t fail, first;
	char key[128];

	if (!swap_throttle_rates(env, &fail, &first))
		return 0;
	swap_source_of(env, req, &src);
	snprintf(key, sizeof(key), "f:%s", src.key);
	if (ratelimit_peek(env->rl, &(struct ratelimit_req){key, strlen(key), &fail},
	    env->now_ms, &res) < 0 || res.allowed)
		return 0;
	STATS_INC(handle_throttled);
	if (src.sandbox[0] != '\0')
		snprintf(out->sandbox, sizeof(out->sandbox), "%s", src.sandbox);
	swap_throttle_trip(env, &src, &first, out);
	ratelimit_format_headers(&res, "failed_handles", out->extra, sizeof(out->extra));
	out->status = 429;
	out->code = "too_many_failures";
	snprintf(out->message, sizeof(out->message), "too many failed handles from %s (more "
	    "than %u in %g s): requests carrying handles are refused until Retry-After",
	    src.what, (unsigned)fail.requests, (double)fail.per_ms / 1000.0);
	return -1;
}

void
swap_throttle_fail(const swap_env_t *env, const swap_req_t *req)
{
	struct ratelimit_result res;
	struct swap_source src;
	policy_rate_t fail, first;
	char key[128];

	STATS_INC(handle_failures);
	if (!swap_throttle_rates(env, &fail, &first))
		return;
	swap_source_of(env, req, &src);
	snprintf(key, sizeof(key), "f:%s", src.key);
	if (ratelimit_take(env->rl, &(struct ratelimit_req){key, strlen(key), &fail}, 1,
	    env->now_ms, &res) < 0)
		log_debug("failure from %s not counted (out of memory)", src.what);
}

/* Does a tokenizer refusal mean the token failed to open or its checks (not a 429)? */
static bool
swap_tokenizer_failed(const char *code)
{
	static const char *const failures[] = {"tokenizer_invalid", "tokenizer_unsupported",
	    "tokenizer_auth", "tokenizer_param_denied", "token_expired",
	    "token_not_yet_valid", "host_out_of_scope", "method_out_of_scope",
	    "path_out_of_scope"};

	for (size_t i = 0; code != NULL && i < SG_ARRAY_LEN(failures); i++)
		if (strcmp(code, failures[i]) == 0)
			return true;
	return false;
}

/* --- one handle ------------------------------------------------------------------------ */

static int
swap_open_error(plan_t *out, int err)
{
	unsigned status = err == HANDLE_E_FORMAT ? 400 : 403;

	return swap_deny(out, status, handle_error_code(err), "%s",
	    handle_error_message(err));
}

/* A local bucket refused the request: 429 with its headers. -1. */
static int
swap_rate_refused(const authz_result_t *az, const struct ratelimit_result *res,
    plan_t *out)
{
	static const char *const which[] = {"the handle",
	    ("the credential (all its handles)"), "the sandbox"};
	const char *w = res->limiting < 3 ? which[res->limiting] : "a bucket";
	char msg[256];

	snprintf(msg, sizeof(msg), "%s (credential %s)", w, az->cred->name);
	ratelimit_format_headers(res, res->limiting == 0 ? "handle" :
	    res->limiting == 1 ? "credential" : "sandbox", out->extra, sizeof(out->extra));
	return swap_deny(out, 429, "rate_limited", "rate limit reached for %s", msg);
}

/* The refusal of a request the fleet-wide limit of cred refused. -1. */
static int
swap_fleet_refused(const policy_credential_t *cred, uint64_t retry_ms, plan_t *out)
{
	snprintf(out->extra, sizeof(out->extra), "Retry-After: %" PRIu64 "\r\n",
	    retry_ms / 1000 + (retry_ms % 1000 != 0));
	return swap_deny(out, 429, "rate_limited", "rate limit reached for the credential "
	    "(all its handles, fleet-wide) (credential %s)", cred->name);
}

/*
 * rate_total in fleet mode: a fleet lease token first (*taken, 1 when spent); with the
 * fleet unreachable, the local share through the local bucket (*share) or, fail_closed,
 * 503. 0: go on with the local buckets, -1: answered.
 */
static int
swap_fleet_take(const swap_env_t *env, const policy_credential_t *cred,
    policy_rate_t *share, int *taken, plan_t *out)
{
	uint64_t retry_ms;

	*taken = -1;
	if (env->fleet == NULL || !cred->rate_total.set)
		return 0;
	if (!fleettab_up(env->fleet)) {
		if (cred->cluster_fail_closed)
			return swap_deny(out, 503, "cluster_unavailable", "the fleet's rate limit "
			    "store is unreachable and credential %s fails closed", cred->name);
		*share = fleetrate_local_share(&cred->rate_total, env->policy->cluster.nodes);
		return 0;
	}
	*taken = fleettab_take(env->fleet, cred->name, env->now_ms, &retry_ms);
	if (*taken == 0)
		return swap_fleet_refused(cred, retry_ms, out);
	return 0;
}

static int
swap_rate(const swap_env_t *env, const handle_claims_t *cl, const authz_result_t *az,
    plan_t *out)
{
	char kh[112], kc[96], ks[96];
	struct ratelimit_req reqs[3];
	struct ratelimit_result res;
	policy_rate_t share = {0}, none = {0};
	int fleet;

	if (env->rl == NULL)
		return 0;
	if (swap_fleet_take(env, az->cred, &share, &fleet, out) < 0)
		return -1;
	/* a handle carried into a fork is the fork's: its own per-handle bucket */
	if (az->origin != NULL)
		snprintf(kh, sizeof(kh), "h:%s@%s", cl->hid, az->sandbox->name);
	else
		snprintf(kh, sizeof(kh), "h:%s", cl->hid);
	/* the local share has its own bucket, so it starts full when Redis goes away */
	snprintf(kc, sizeof(kc), "%s:%s", share.set ? "f" : "c", az->cred->name);
	snprintf(ks, sizeof(ks), "s:%s", az->sandbox->name);
	reqs[0] = (struct ratelimit_req){kh, strlen(kh), &az->cred->rate};
	reqs[1] = (struct ratelimit_req){kc, strlen(kc), share.set ? &share :
	    fleet == 1 ? &none : &az->cred->rate_total};
	reqs[2] = (struct ratelimit_req){ks, strlen(ks), &az->sandbox->rate};
	if (ratelimit_take(env->rl, reqs, 3, env->now_ms, &res) == 0 && res.allowed)
		return 0;
	if (fleet == 1)
		fleettab_untake(env->fleet, az->cred->name, env->now_ms);
	return swap_rate_refused(az, &res, out);
}

/* hmac signs the body, body rewrites it: note what the shell must do. */
static int
swap_body_work(const policy_credential_t *cr, const char *text, size_t tlen, plan_t *out)
{
	if (cr->inject.type == INJECT_HMAC) {
		if (out->hmac_cred && out->hmac_cred != cr)
			return swap_deny(out, 400, "bad_request", "two hmac credentials in one "
			    "request%s", NULL);
		out->hmac_cred = cr;
		out->buffer_body = true;
	} else if (cr->inject.type == INJECT_BODY && out->nbody < INJECT_MAX_HANDLES) {
		plan_secret_t *b = &out->body[out->nbody++];

		b->cred = cr;
		b->secret = cr->secret;
		b->secret_len = cr->secret_len;
		if ((b->handle = strndup(text, tlen)) == NULL)
			return swap_deny(out, 503, "resource_exhausted", "out of memory%s", NULL);
		b->handle_len = tlen;
	}
	return 0;
}

/* What to scrub from responses for this credential: the secret (the scrubber finds its
 * encoded forms, the Basic and query encodings among them). */
static void
swap_scrub_pair(plan_secret_t *s, const policy_credential_t *cr, const char *text, size_t tlen)
{
	s->cred = cr;
	s->secret = cr->secret;
	s->secret_len = cr->secret_len;
	s->handle = strndup(text, tlen);
	s->handle_len = s->handle ? tlen : 0;
}

/*
 * The credential the request uses: cr itself, or for a rotating secret (cr->live) the
 * plan's copy holding the value current now (one copy per credential per plan). NULL
 * with the refusal in the plan when there is no usable value (none yet, or the source
 * failed and the last good value expired).
 */
static const policy_credential_t *
swap_live(const swap_env_t *env, const policy_credential_t *cr, plan_t *out)
{
	plan_live_t *l;
	secval_t *v;

	if (cr->live == NULL)
		return cr;
	for (size_t i = 0; i < out->nlive; i++)
		if (out->live[i].base == cr)
			return &out->live[i].cred;
	v = out->nlive < SG_ARRAY_LEN(out->live) ? snapshot_acquire(cr->live) : NULL;
	if (v == NULL || !secval_usable(v, env->now_ms)) {
		secval_unref(v);
		swap_deny(out, 502, "secret_unavailable", "the secret of credential %s is "
		    "unavailable (its source failed and the last value expired)", cr->name);
		return NULL;
	}
	l = &out->live[out->nlive++];
	l->base = cr;
	l->cred = *cr;
	l->cred.secret = v->value;
	l->cred.secret_len = v->len;
	l->val = v;
	return &l->cred;
}

/* What replaces secret in responses: repl (copied). */
static void
swap_scrub_add(plan_t *out, const policy_credential_t *cr, const char *secret, size_t len,
    const char *repl, size_t rlen)
{
	plan_secret_t *s;

	if (secret == NULL || out->nscrub >= SG_ARRAY_LEN(out->scrub))
		return;
	s = &out->scrub[out->nscrub++];
	s->cred = cr;
	s->secret = secret;
	s->secret_len = len;
	s->handle = strndup(repl, rlen);
	s->handle_len = s->handle ? rlen : 0;
}

/* A rotated credential's replaced value, in its grace period: scrubbed like the current. */
static void
swap_scrub_prev(const swap_env_t *env, plan_t *out, const policy_credential_t *cr,
    const char *text, size_t tlen)
{
	const char *prev;
	size_t plen = 0;

	for (size_t i = 0; i < out->nlive; i++) {
		if (&out->live[i].cred != cr)
			continue;
		prev = secval_previous(out->live[i].val, env->now_ms, &plen);
		swap_scrub_add(out, cr, prev, plen, text, tlen);
	}
}

/* For the audit line: a handle let in by lineage is the asking sandbox's, from its origin. */
static void
swap_note_lineage(plan_t *out, const handle_claims_t *cl, const authz_result_t *az,
    bool allowed)
{
	if (az->origin == NULL)
		return;
	if (allowed)
		STATS_INC(handles_lineage);
	if (strcmp(out->hid, cl->hid) != 0)
		return;		/* not the request's first handle: the line names that one */
	snprintf(out->sandbox, sizeof(out->sandbox), "%s", az->subject);
	snprintf(out->origin, sizeof(out->origin), "%s", az->origin);
}

/* Where a handle was found: the head (inject rule applies), a held body, a frame. */
enum swap_at { SWAP_AT_HEAD, SWAP_AT_BODY, SWAP_AT_TEXT_FRAME, SWAP_AT_BINARY_FRAME };

/* May the credential's secret replace its handle where it was found? */
static int
swap_place_ok(const policy_credential_t *cr, enum swap_at at, plan_t *out)
{
	if (cr->inject.type == INJECT_AWS_SIGV4 && at != SWAP_AT_HEAD)
		return swap_deny(out, 403, "handle_in_body", "credential %s is an AWS "
		    "credential: its handle only travels as the session token of a "
		    "SigV4-signed request", cr->name);
	if (at == SWAP_AT_BODY && cr->inject.type != INJECT_BODY)
		return swap_deny(out, 403, "handle_in_body", "credential %s does not inject "
		    "into request bodies; send its handle where its inject rule expects it",
		    cr->name);
	if (cr->mint != NULL && at != SWAP_AT_HEAD)
		return swap_deny(out, 403, "handle_in_frame", "credential %s is minted: its "
		    "handle is swapped in request heads only", cr->name);
	if (at == SWAP_AT_BINARY_FRAME && !cr->allow_websocket_binary)
		return swap_deny(out, 403, "handle_in_binary_frame", "credential %s does not "
		    "allow its handle in binary WebSocket frames (allow_websocket_binary)",
		    cr->name);
	return 0;
}

/*
 * echo_ok_in_body: a handle quoted in a held body toward one of its credential's hosts,
 * where that credential does not inject, stays text. It is never used, so neither its
 * time, revocation nor sandbox matter (a chat history keeps old handles); it still had
 * to open under the keyring, which names its credential.
 */
static bool
swap_echo_quote(const swap_env_t *env, const swap_req_t *req, const char *text, size_t len)
{
	const handle_claims_t *cl = NULL;
	const policy_credential_t *cr;
	bool quote;

	if (handlecache_open(env->cache, env->keyring, text, len, &cl) != HANDLE_OK)
		return false;	/* swap_one reports why */
	cr = policy_credential_find(env->policy, cl->cred);
	quote = cr != NULL && cr->echo_ok_in_body && cr->inject.type != INJECT_BODY &&
	    scope_hosts_match(&cr->hosts, req->host, req->port);
	handlecache_release(env->cache, cl);
	return quote;
}


/* What replaces an AWS identity in responses: its access key id the derived one, its
 * session token the handle, and (assumed credentials) its secret the handle. */
static void
swap_aws_scrub(plan_t *out, const policy_credential_t *cr, const awssign_identity_t *id,
    bool secret)
{
	char akid[AWSCRED_AKID_LEN + 1];

	awscred_access_key_id(out->aws_handle, out->aws_handle_len, akid);
	swap_scrub_add(out, cr, id->access_key_id, id->access_key_id_len, akid,
	    AWSCRED_AKID_LEN);
	swap_scrub_add(out, cr, id->session_token, id->session_token_len, out->aws_handle,
	    out->aws_handle_len);
	if (secret)
		swap_scrub_add(out, cr, id->secret, id->secret_len, out->aws_handle,
		    out->aws_handle_len);
}

/*
 * An AWS credential's handle: the request's SigV4 signature is checked (awssign.h) and
 * the real access key id and session token are scrubbed from responses (the access key
 * id back to the derived one, the token back to the handle). A credential without
 * assume_role signs as its own keys at once; one with assume_role waits for the shell to
 * bring its temporary credentials (swap_aws_assumed).
 */
static int
swap_aws(const swap_env_t *env, const swap_req_t *req, const handle_claims_t *cl,
    const policy_credential_t *cr, const char *text, size_t tlen, plan_t *out)
{
	awssign_identity_t id;
	awssign_refusal_t r;
	awssign_in_t in;

	if (out->aws.set)
		return swap_deny(out, 400, "bad_request", "more than one AWS session token in "
		    "one request%s", NULL);
	in = (awssign_in_t){req->head, req->target, req->host, text, tlen,
	    seal_keyring_find(env->keyring, cl->key_id, strlen(cl->key_id)), cr, env->now};
	if (in.key == NULL)
		return swap_deny(out, 403, "revoked", "the key of this handle is retired%s",
		    NULL);
	if (awssign_head(&in, &out->aws, &r) < 0) {
		if (r.status == 403)
			swap_throttle_fail(env, req);
		out->exfiltration = strcmp(r.code, "aws_scope_denied") == 0;
		return swap_deny(out, r.status, r.code, "%s", r.message);
	}
	if (out->aws.body == AWSSIGN_BODY_HASH)
		out->buffer_body = !req->head->no_body;
	if ((out->aws_handle = strndup(text, tlen)) == NULL)
		return swap_deny(out, 503, "resource_exhausted", "out of memory%s", NULL);
	out->aws_handle_len = tlen;
	awssign_policy_identity(cr, &id);
	swap_aws_scrub(out, cr, &id, false);
	if (cr->aws->assume_role.set)
		return 0;	/* swap_aws_identity_due: the shell brings the identity */
	if (awssign_identity(&out->aws, &id, req->head, &out->edits, &r) < 0)
		return swap_deny(out, r.status, r.code, "%s", r.message);
	return 0;
}

/* After every edit of the head: the AWS signature made again with the real key (a body
 * the signature covers is hashed first: swap_finish_body; an identity still to come is
 * signed with by swap_aws_assumed). */
static int
swap_aws_resign(const swap_req_t *req, plan_t *out)
{
	awssign_refusal_t r;

	if (!out->aws.set || !out->aws.id_set || out->aws.body == AWSSIGN_BODY_HASH)
		return 0;
	if (awssign_resign(&out->aws, req->head, req->target, &out->edits, &r) < 0)
		return swap_deny(out, r.status, r.code, "%s", r.message);
	return 0;
}

bool
swap_aws_identity_due(const plan_t *p)
{
	return p->aws.set && !p->aws.id_set;
}

int
swap_aws_assumed(const swap_req_t *req, plan_t *p, stscache_cred_t *cred)
{
	awssign_refusal_t r;

	if (!swap_aws_identity_due(p)) {
		stscache_cred_unref(cred);
		return swap_deny(p, 500, "internal_error", "no AWS identity is due%s", NULL);
	}
	p->aws_assumed = cred;
	swap_aws_scrub(p, p->aws.cred, &cred->id, true);
	if (awssign_identity(&p->aws, &cred->id, req->head, &p->edits, &r) < 0)
		return swap_deny(p, r.status, r.code, "%s", r.message);
	return swap_aws_resign(req, p);
}

/* A copy of src into dst (empty first). -1 when out of memory. */
static int
swap_strlist_copy(policy_strlist_t *dst, const policy_strlist_t *src)
{
	if (src->n == 0)
		return 0;
	if ((dst->v = calloc(src->n, sizeof(char *))) == NULL)
		return -1;
	for (; dst->n < src->n; dst->n++)
		if ((dst->v[dst->n] = strdup(src->v[dst->n])) == NULL)
			return -1;
	return 0;
}

/*
 * A handle that narrows its credential's git push refs: each of its patterns must still
 * be within the credential's (the policy may have changed since it was minted); the
 * first such handle's patterns go into the plan for the push check (gitpush.h).
 */
static int
swap_git_refs(const handle_claims_t *cl, const policy_credential_t *cred, plan_t *out)
{
	const policy_git_push_t *g = cred->git_push;
	char msg[sizeof(out->message)];

	if (cl->git_refs.n == 0)
		return 0;
	if (g == NULL) {
		snprintf(msg, sizeof(msg), "this handle narrows git push refs but credential "
		    "'%s' has no git.push block", cred->name);
		return swap_deny(out, 403, "git_refs_denied", "%s", msg);
	}
	for (size_t i = 0; i < cl->git_refs.n; i++) {
		if (gitpush_pattern_within(cl->git_refs.v[i], g->refs.v, g->refs.n))
			continue;
		snprintf(msg, sizeof(msg), "this handle's git push ref %.256s is not within "
		    "credential '%s''s push refs", cl->git_refs.v[i], cred->name);
		return swap_deny(out, 403, "git_refs_denied", "%s", msg);
	}
	if (out->git_refs.v != NULL)
		return 0;	/* an earlier handle's */
	if (swap_strlist_copy(&out->git_refs, &cl->git_refs) < 0)
		return swap_deny(out, 503, "resource_exhausted", "%s", "out of memory");
	return 0;
}

/* A minted credential's handle: its token is injected once the shell has it. The
 * handle's narrowing must still be within the credential (the policy may have changed
 * since it was minted). */
static int
swap_mint_note(const policy_credential_t *cr, const handle_claims_t *cl, const char *text,
    size_t tlen, plan_t *out)
{
	const char *why;

	if (out->mint_cred != NULL)
		return swap_deny(out, 400, "bad_request", "more than one handle of minted "
		    "credentials in one request%s", NULL);
	if (mintreq_narrow_check(cr->mint, cl->scope, &cl->repos, &cl->perms, &why) < 0 ||
	    mintreq_audience_check(cr->mint, cl->audience, &why) < 0)
		return swap_deny(out, 403, "narrowing_denied", "%s", why);
	if ((out->mint_handle = strndup(text, tlen)) == NULL ||
	    (cl->scope != NULL && (out->mint_scope = strdup(cl->scope)) == NULL) ||
	    (cl->audience != NULL && (out->mint_audience = strdup(cl->audience)) == NULL) ||
	    swap_strlist_copy(&out->mint_repos, &cl->repos) < 0 ||
	    swap_strlist_copy(&out->mint_perms, &cl->perms) < 0)
		return swap_deny(out, 503, "resource_exhausted", "out of memory%s", NULL);
	out->mint_handle_len = tlen;
	out->mint_cred = cr;
	return 0;
}

bool
swap_mint_due(const plan_t *p)
{
	return p->mint_cred != NULL && p->mint_tok == NULL;
}

int
swap_mint_apply(const swap_req_t *req, plan_t *p, mintcache_tok_t *tok)
{
	policy_credential_t minted;
	inject_list_t list;
	const char *why = NULL;
	int rc;

	if (!swap_mint_due(p)) {
		mintcache_tok_unref(tok);
		return swap_deny(p, 500, "internal_error", "no minted token is due%s", NULL);
	}
	p->mint_tok = tok;
	minted = *p->mint_cred;		/* the credential, with the token as its secret */
	minted.secret = (char *)(uintptr_t)tok->token;
	minted.secret_len = tok->token_len;
	inject_find(req->head, req->target, &list);
	rc = inject_apply(req->head, req->target, &list, p->mint_handle, p->mint_handle_len,
	    &minted, &p->edits, &why);
	inject_list_free(&list);
	if (rc < 0)
		return swap_deny(p, strcmp(why, "out of memory") == 0 ? 503 : 400,
		    strcmp(why, "out of memory") == 0 ? "resource_exhausted" : "inject_failed",
		    "%s", why);
	swap_scrub_add(p, p->mint_cred, tok->token, tok->token_len, p->mint_handle,
	    p->mint_handle_len);
	return 0;
}

/* One distinct handle: unseal, authorise, rate-limit, plan its swap (list: the head's). */
static int
swap_one(const swap_env_t *env, const swap_req_t *req, const inject_list_t *list,
    enum swap_at at, const char *text, size_t tlen, const char *path, plan_t *out)
{
	const handle_claims_t *cl = NULL;
	const policy_credential_t *cr;
	authz_input_t in;
	authz_result_t az;
	const char *why = NULL;
	int err, rc = -1;

	err = handlecache_open(env->cache, env->keyring, text, tlen, &cl);
	if (err != HANDLE_OK) {
		if (err != HANDLE_E_NOMEM)
			swap_throttle_fail(env, req);
		return swap_open_error(out, err);
	}
	memset(&in, 0, sizeof(in));
	in.policy = env->policy;
	in.revoked = env->revoked;
	in.registry = env->registry;
	in.peer = req->peer;
	in.proxy_token = req->proxy_token;
	in.host = req->host;
	in.port = req->port;
	in.method = http_method_str(req->head->method);
	in.path = path;
	in.now = env->now;
	if (out->hid[0] == '\0') {
		snprintf(out->hid, sizeof(out->hid), "%s", cl->hid);
		snprintf(out->credential, sizeof(out->credential), "%s", cl->cred);
		snprintf(out->sandbox, sizeof(out->sandbox), "%s", cl->sb);
	}
	if (authz_check(&in, cl, &az) < 0) {
		swap_throttle_fail(env, req);
		swap_note_lineage(out, cl, &az, false);
		out->exfiltration = az.exfiltration;
		swap_deny(out, az.status, az.code, "%s", az.message);
		goto done;
	}
	swap_note_lineage(out, cl, &az, true);

	if (swap_git_refs(cl, az.cred, out) < 0 || swap_rate(env, cl, &az, out) < 0)
		goto done;
	if (swap_place_ok(az.cred, at, out) < 0)
		goto done;
	if (az.cred->mint != NULL) {
		rc = swap_mint_note(az.cred, cl, text, tlen, out);
		goto done;
	}
	if (cl->scope != NULL || cl->audience != NULL || cl->repos.n > 0 || cl->perms.n > 0) {
		swap_deny(out, 403, "narrowing_denied", "credential %s mints no token: a "
		    "handle narrowing its token cannot use it", az.cred->name);
		goto done;
	}
	if ((cr = swap_live(env, az.cred, out)) == NULL)
		goto done;
	if (list && inject_apply(req->head, req->target, list, text, tlen, cr,
	    &out->edits, &why) < 0) {
		if (strcmp(why, "out of memory") == 0)
			swap_deny(out, 503, "resource_exhausted", "%s", why);
		else
			swap_deny(out, 400, "inject_failed", "%s", why);
		goto done;
	}
	if (at <= SWAP_AT_BODY && swap_body_work(cr, text, tlen, out) < 0)
		goto done;
	if (cr->inject.type == INJECT_AWS_SIGV4 && swap_aws(env, req, cl, cr, text,
	    tlen, out) < 0)
		goto done;
	if (out->nscrub < SG_ARRAY_LEN(out->scrub))
		swap_scrub_pair(&out->scrub[out->nscrub++], cr, text, tlen);
	swap_scrub_prev(env, out, cr, text, tlen);
	rc = 0;
done:
	handlecache_release(env->cache, cl);
	return rc;
}

/*
 * Must the request body be held? When a credential covering this host is an
 * echo_ok_in_body one (its quoted handles are judged in the held body rather than refused
 * by the streaming tripwire), or with body_creds a body credential (its placeholders are
 * swapped in the body). One pass over the credentials.
 */
static bool
swap_holds_body(const policy_t *p, const swap_req_t *req, bool body_creds)
{
	for (size_t i = 0; i < p->ncredentials; i++) {
		const policy_credential_t *cr = &p->credentials[i];

		if (((body_creds && cr->inject.type == INJECT_BODY) || cr->echo_ok_in_body) &&
		    scope_hosts_match(&cr->hosts, req->host, req->port))
			return true;
	}
	return false;
}

static bool
swap_seen(const swap_req_t *req, const inject_list_t *l, size_t upto, const char *t,
    size_t tl)
{
	for (size_t j = 0; j < upto; j++) {
		size_t ol;
		const char *o = inject_found_text(req->head, req->target, &l->f[j], &ol);

		if (ol == tl && memcmp(o, t, tl) == 0)
			return true;
	}
	return false;
}

/* A Proxy-Tokenizer header on the request or the intercepted CONNECT? */
static bool
swap_has_tokenizer(const swap_env_t *env, const swap_req_t *req)
{
	return http_head_get(req->head, TOKENIZER_HEADER) != NULL ||
	    (env->connect_head != NULL && http_head_get(env->connect_head,
	    TOKENIZER_HEADER) != NULL);
}

/* Fly.io tokenizer's sealed secrets (Proxy-Tokenizer), on the same edits. */
static int
swap_tokenizer(const swap_env_t *env, const swap_req_t *req, plan_t *out)
{
	tokenizer_env_t te = {env->keyring, env->rl, env->now, env->now_ms,
	    env->connect_head, false};

	if (!swap_has_tokenizer(env, req))
		return 0;
	if (tokenizer_apply(&te, req->head, req->tk_host ? req->tk_host : req->host,
	    req->tk_host ? req->tk_port : req->port, http_method_str(req->head->method),
	    req->target, req->proxy_token, &out->edits, &out->tk) < 0) {
		if (swap_tokenizer_failed(out->tk.code))
			swap_throttle_fail(env, req);
		out->status = out->tk.status;
		out->code = out->tk.code;
		snprintf(out->message, sizeof(out->message), "%s", out->tk.message);
		snprintf(out->extra, sizeof(out->extra), "%s", out->tk.extra);
		return -1;
	}
	if (out->tk.hmac.set)
		out->buffer_body = true;
	if (out->hid[0] == '\0')
		snprintf(out->hid, sizeof(out->hid), "tk:%.16s", out->tk.id);
	return 0;
}

/* The handles found in the head, each distinct one once. */
static int
swap_handles(const swap_env_t *env, const swap_req_t *req, const inject_list_t *list,
    plan_t *out)
{
	char path[SG_MAX_START_LINE + 1];
	size_t distinct = 0;
	int rc = 0;

	if (list->truncated)
		return swap_deny(out, 400, "bad_request", "too many handles in one request%s",
		    NULL);
	if (scope_path_normalize(req->target, strlen(req->target), path, sizeof(path)) < 0)
		return swap_deny(out, 400, "bad_request", "ambiguous request path (dot segments "
		    "or encoded slashes) with a handle%s", NULL);
	for (size_t i = 0; i < list->n && rc == 0; i++) {
		size_t tl;
		const char *t = inject_found_text(req->head, req->target, &list->f[i], &tl);

		if (swap_seen(req, list, i, t, tl))
			continue;
		if (++distinct > INJECT_MAX_HANDLES)
			rc = swap_deny(out, 400, "bad_request", "too many handles in one request%s",
			    NULL);
		else
			rc = swap_one(env, req, list, SWAP_AT_HEAD, t, tl, path, out);
	}
	return rc;
}

int
swap_request(const swap_env_t *env, const swap_req_t *req, plan_t *out)
{
	inject_list_t list;
	int rc;

	plan_init(out);
	if (swap_check_encoded(req, out) < 0)
		return -1;
	if (inject_find(req->head, req->target, &list) == 0) {
		/* opt-in: a body or echo_ok_in_body credential covers this host: hold the body */
		out->buffer_body = !req->head->no_body && swap_holds_body(env->policy, req, true);
		if (swap_has_tokenizer(env, req) && swap_throttle_check(env, req, out) < 0)
			return -1;
		return swap_tokenizer(env, req, out);
	}
	rc = swap_throttle_check(env, req, out);
	if (rc == 0)
		rc = swap_handles(env, req, &list, out);
	inject_list_free(&list);
	if (rc == 0 && !req->head->no_body && swap_holds_body(env->policy, req, false))
		out->buffer_body = true;	/* a quote in the body is told from a use there */
	if (rc == 0)
		rc = swap_tokenizer(env, req, out);
	return rc < 0 ? rc : swap_aws_resign(req, out);
}

int
swap_frame_handle(const swap_env_t *env, const swap_req_t *req, const char *handle,
    size_t len, bool binary, plan_t *out)
{
	char path[SG_MAX_START_LINE + 1];

	plan_init(out);
	if (scope_path_normalize(req->target, strlen(req->target), path, sizeof(path)) < 0)
		return swap_deny(out, 400, "bad_request", "ambiguous request path (dot segments "
		    "or encoded slashes) with a handle%s", NULL);
	if (swap_throttle_check(env, req, out) < 0)
		return -1;
	return swap_one(env, req, NULL, binary ? SWAP_AT_BINARY_FRAME : SWAP_AT_TEXT_FRAME,
	    handle, len, path, out);
}


int
swap_body(const swap_env_t *env, const swap_req_t *req, const char *body, size_t len,
    plan_t *out)
{
	char path[SG_MAX_START_LINE + 1];
	size_t off = 0, hl, distinct = 0, quotes = 0;
	const char *seen[INJECT_MAX_HANDLES];
	size_t seenlen[INJECT_MAX_HANDLES];

	if (scope_path_normalize(req->target, strlen(req->target), path, sizeof(path)) < 0)
		return swap_deny(out, 400, "bad_request", "ambiguous request path (dot segments "
		    "or encoded slashes) with a handle%s", NULL);
	while (off < len && handle_find(body, len, &off, &hl) == 0) {
		bool dup = false;

		if (distinct == 0 && quotes == 0 && swap_throttle_check(env, req, out) < 0)
			return -1;
		if (swap_echo_quote(env, req, body + off, hl)) {
			if (++quotes > SG_BODY_QUOTES_MAX)
				return swap_deny(out, 400, "bad_request", "too many quoted handles "
				    "in one request body%s", NULL);
			off += hl;
			continue;	/* text: not used, not swapped, not counted */
		}
		for (size_t j = 0; j < distinct; j++)
			dup |= seenlen[j] == hl && memcmp(seen[j], body + off, hl) == 0;
		if (!dup) {
			if (distinct == INJECT_MAX_HANDLES)
				return swap_deny(out, 400, "bad_request", "too many handles in one "
				    "request%s", NULL);
			seen[distinct] = body + off;
			seenlen[distinct++] = hl;
			if (swap_one(env, req, NULL, SWAP_AT_BODY, body + off, hl, path, out) < 0)
				return -1;
		}
		off += hl;
	}
	return 0;
}

/* Body credentials' handles and placeholders, tokenizer placeholders -> secrets. */
static int
swap_rewrite_body(plan_t *p, const char *body, size_t len, char **out, size_t *outlen)
{
	secmem_buf_t b = {0};
	scrub_t *s;

	*out = NULL;
	*outlen = 0;
	if (plan_body_scrubber(p, &s) < 0)
		return swap_deny(p, 500, "internal_error", "cannot rewrite the request body%s",
		    NULL);
	if (s == NULL)
		return 0;
	if (scrub_feed(s, body, len, secmem_buf_add, &b) < 0 ||
	    scrub_finish(s, secmem_buf_add, &b) < 0 || b.failed) {
		scrub_free(s);
		secmem_buf_free(&b);
		return swap_deny(p, 503, "resource_exhausted", "out of memory while rewriting the "
		    "request body%s", NULL);
	}
	scrub_free(s);
	*out = b.p != NULL ? b.p : secmem_wipe_alloc(1);
	*outlen = b.len;
	return *out != NULL ? 0 : swap_deny(p, 503, "resource_exhausted", "out of memory%s",
	    NULL);
}

/* An AWS request whose signature covers the body's hash: verify, then sign again. */
static int
swap_aws_body(const swap_req_t *req, plan_t *p, const char *body, size_t len)
{
	awssign_refusal_t r;

	if (!p->aws.set || p->aws.body != AWSSIGN_BODY_HASH)
		return 0;
	if (!p->aws.id_set)
		return swap_deny(p, 500, "internal_error", "an AWS-signed body before its "
		    "identity is known%s", NULL);
	if (p->nbody > 0 || p->tk.nbody > 0)
		return swap_deny(p, 400, "bad_request", "an AWS-signed body cannot also carry "
		    "body replacements%s", NULL);
	if (awssign_body(&p->aws, req->head, req->target, body, len, &r) < 0 ||
	    awssign_resign(&p->aws, req->head, req->target, &p->edits, &r) < 0)
		return swap_deny(p, r.status, r.code, "%s", r.message);
	return 0;
}

int
swap_finish_body(const swap_env_t *env, const swap_req_t *req, bool tls, plan_t *p,
    const char *body, size_t len, char **out, size_t *outlen)
{
	leak_hit_t hit;

	*out = NULL;
	*outlen = 0;
	if (leak_scan(body, len, &hit)) {
		p->exfiltration = true;
		return swap_deny(p, 403, "handle_encoded", "a handle in encoded form (%s) in the "
		    "request body", hit.encoding);
	}
	if (swap_body(env, req, body, len, p) < 0 || swap_aws_body(req, p, body, len) < 0)
		return -1;
	if (!tls && !plan_plain_http_ok(p))	/* body handles are known only now */
		return swap_deny(p, 403, "plain_http_denied", "this credential may not travel "
		    "over plain http; use https%s", NULL);
	if (swap_rewrite_body(p, body, len, out, outlen) < 0)
		return -1;
	if (plan_sign(p, req->head, *out != NULL ? *out : body, *out != NULL ? *outlen :
	    len) < 0) {
		secmem_wipe_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}
