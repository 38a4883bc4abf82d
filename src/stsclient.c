/* stsclient.c — STS AssumeRole over verified TLS on the main thread, for stscache. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <sodium.h>

#include "audit.h"
#include "awsrole.h"
#include "defaults.h"
#include "httpsreq.h"
#include "mainq.h"
#include "log.h"
#include "secmem.h"
#include "stats.h"
#include "stsclient.h"
#include "stsxml.h"
#include "util.h"

struct sts_fetch {
	stsclient_t *cl;
	policy_t *policy;		/* a reference: cred lives in it */
	const policy_credential_t *cred;
	uint8_t key[STSCACHE_KEY_LEN];
	uint64_t seq;
	bool refresh, complete;
	awsrole_req_t req;		/* host, region, the wire (until it is sent) */
	httpsreq_t *http;		/* the call under way */
	double t_start;
	mainq_job_t job;		/* queued toward the main loop */
	TAILQ_ENTRY(sts_fetch) next;	/* active */
};

TAILQ_HEAD(sts_list, sts_fetch);

struct stsclient {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *tls;
	stscache_t *cache;
	uint16_t port;			/* STS's: AWSROLE_PORT but in tests */
	stsclient_done_fn done;
	void *arg;
	mainq_t *q;			/* fetches queued toward the main loop */
	struct sts_list active;		/* main thread only */
	size_t nactive;
};

/* --- the end of a fetch ------------------------------------------------------------------ */

static void
sts_fetch_free(struct sts_fetch *f)
{
	TAILQ_REMOVE(&f->cl->active, f, next);
	f->cl->nactive--;
	httpsreq_cancel(f->http);
	awsrole_req_free(&f->req);
	policy_unref(f->policy);
	sodium_memzero(f, sizeof(*f));
	free(f);
}

static void
sts_audit(const struct sts_fetch *f, int status, const char *error, const char *detail)
{
	audit_log(&(audit_event_t){.event = "assume_role", .credential = f->cred->name,
	    .method = "POST", .host = f->req.host[0] ? f->req.host : NULL,
	    .port = f->cl->port, .path = "/", .status = status, .error = error,
	    .total_ms = util_mono_msf() - f->t_start, .detail = detail});
}

/* The fetch failed: code (what waiting requests are told), detail (the log's). */
static void
sts_fail(struct sts_fetch *f, int status, const char *code, const char *detail)
{
	stsclient_t *cl = f->cl;

	/* the cache first: once the line is in the audit file, requests see the result */
	stscache_done(cl->cache, f->key, f->seq, NULL, code, util_mono_ms());
	STATS_INC(assume_role_failures);
	log_warn("assume_role for credential %s (%s) failed: %s%s%s", f->cred->name,
	    f->req.host[0] ? f->req.host : "STS", code, detail ? ": " : "", detail ? detail : "");
	sts_audit(f, status, code, detail);
	sts_fetch_free(f);
	cl->done(cl->arg);
}

static void
sts_ok(struct sts_fetch *f, stscache_cred_t *c)
{
	stsclient_t *cl = f->cl;
	char detail[128], exp[32], ref[32];
	time_t te = (time_t)c->expiration, tr = (time_t)c->refresh_at;
	struct tm tm;

	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&te, &tm));
	strftime(ref, sizeof(ref), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tr, &tm));
	snprintf(detail, sizeof(detail), "%s: expires %s, refresh from %s",
	    f->refresh ? "refreshed" : "assumed", exp, ref);
	stscache_done(cl->cache, f->key, f->seq, c, NULL, util_mono_ms());
	log_info("assume_role for credential %s: %s", f->cred->name, detail);
	sts_audit(f, 200, NULL, detail);
	sts_fetch_free(f);
	cl->done(cl->arg);
}

/* STS's error message for the log: printable, the long-term access key id masked. */
static void
sts_mask(const policy_aws_t *aws, const char *msg, char *out, size_t cap)
{
	const char *hit;

	snprintf(out, cap, "%s", msg);
	while (aws->access_key_id_len > 0 && (hit = memmem(out, strlen(out), aws->access_key_id,
	    aws->access_key_id_len)) != NULL)
		memset((char *)hit, '*', aws->access_key_id_len);
}

/* The answer is whole: credentials, or STS's error. */
static void
sts_answer(struct sts_fetch *f, unsigned status, const char *body, size_t len)
{
	char code[STSXML_CODE_MAX + 1], msg[STSXML_MESSAGE_MAX + 64];
	stscache_cred_t *c;
	stsxml_t x;
	int rc = stsxml_parse(body, len, &x);

	if (status == 200 && rc == STSXML_CREDENTIALS) {
		c = stscache_cred_new(x.akid, x.akid_len, x.secret, x.secret_len, x.token,
		    x.token_len, x.expiration, util_now_s());
		stsxml_free(&x);
		if (c == NULL)
			sts_fail(f, 200, "out_of_memory", "cannot keep the temporary credentials");
		else
			sts_ok(f, c);
		return;
	}
	if (rc == STSXML_ERROR) {
		snprintf(code, sizeof(code), "%s", x.code);
		sts_mask(f->cred->aws, x.message, msg, sizeof(msg));
		stsxml_free(&x);
		sts_fail(f, (int)status, code, msg);
		return;
	}
	snprintf(code, sizeof(code), status == 200 ? "malformed_answer" : "HTTP %u", status);
	snprintf(msg, sizeof(msg), "%s", x.why ? x.why : "no credentials in the answer");
	stsxml_free(&x);
	sts_fail(f, (int)status, code, msg);
}

/* The call ended (httpsreq.h): its answer, or why there is none. */
static void
sts_http_done(const httpsreq_result_t *res, void *arg)
{
	struct sts_fetch *f = arg;
	char msg[320];

	f->http = NULL;		/* httpsreq frees it */
	if (res->ok) {
		sts_answer(f, res->status, res->body, res->body_len);
		return;
	}
	if (strcmp(res->code, "timeout") == 0)
		snprintf(msg, sizeof(msg), "no answer within %d s", SG_STS_TIMEOUT_S);
	else
		snprintf(msg, sizeof(msg), "%s", res->detail ? res->detail : "");
	sts_fail(f, (int)res->status, res->code, msg);
}

/* On the main loop: build, then the call (egress, resolve, TLS, answer: httpsreq.h). */
static void
sts_start(struct sts_fetch *f)
{
	httpsreq_target_t t;
	int rc;

	f->t_start = util_mono_msf();
	STATS_INC(assume_role_fetches);
	if (f->refresh)
		STATS_INC(assume_role_refreshes);
	if ((rc = awsrole_request(f->cred, util_now_s(), &f->req)) != AWSROLE_OK) {
		sts_fail(f, 0, "request_failed", rc == AWSROLE_E_NOMEM ? "out of memory" :
		    "cannot build the AssumeRole request");
		return;
	}
	t = (httpsreq_target_t){f->policy, f->req.host, f->cl->port, "STS"};
	f->http = httpsreq_start(f->cl->base, f->cl->dns, f->cl->tls, &t, f->req.wire,
	    f->req.wire_len, SG_STS_MAX_RESPONSE, SG_STS_TIMEOUT_S, sts_http_done, f);
	f->req.wire = NULL;	/* httpsreq owns it now */
	f->req.wire_len = 0;
	if (f->http == NULL)
		sts_fail(f, 0, "out_of_memory", "cannot start the call");
}

/* --- the queue -------------------------------------------------------------------------- */

/* From the main loop: a queued fetch starts. */
static void
sts_run_cb(mainq_job_t *job, void *arg)
{
	stsclient_t *cl = arg;
	struct sts_fetch *f = (struct sts_fetch *)((char *)job - offsetof(struct sts_fetch,
	    job));

	TAILQ_INSERT_TAIL(&cl->active, f, next);
	cl->nactive++;
	sts_start(f);
}

/* A failure was recorded off the loop: wake the waiters from it. */
static void
sts_report_cb(void *arg)
{
	stsclient_t *cl = arg;

	cl->done(cl->arg);
}

void
stsclient_fetch(stsclient_t *cl, policy_t *policy, const policy_credential_t *cred,
    const uint8_t key[STSCACHE_KEY_LEN], uint64_t seq, bool refresh)
{
	struct sts_fetch *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		STATS_INC(assume_role_failures);
		log_warn("assume_role for credential %s failed: out of memory", cred->name);
		stscache_done(cl->cache, key, seq, NULL, "out_of_memory", util_mono_ms());
		mainq_report(cl->q);
		return;
	}
	f->cl = cl;
	f->policy = policy_ref(policy);
	f->cred = cred;
	memcpy(f->key, key, STSCACHE_KEY_LEN);
	f->seq = seq;
	f->refresh = refresh;
	mainq_push(cl->q, &f->job);
}

size_t
stsclient_pending(stsclient_t *cl)
{
	return mainq_queued(cl->q) + cl->nactive;
}

stsclient_t *
stsclient_new(struct event_base *base, SSL_CTX *tls, stscache_t *cache, uint16_t port,
    stsclient_done_fn done, void *arg, char *err, size_t errlen)
{
	stsclient_t *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		snprintf(err, errlen, "STS client: out of memory");
		return NULL;
	}
	cl->base = base;
	cl->tls = tls;
	cl->cache = cache;
	cl->port = port;
	cl->done = done;
	cl->arg = arg;
	TAILQ_INIT(&cl->active);
	cl->dns = httpsreq_dns_new(base);
	cl->q = mainq_new(base, sts_run_cb, sts_report_cb, cl);
	if (cl->dns == NULL || cl->q == NULL) {
		snprintf(err, errlen, "STS client: cannot set up DNS or its wake-up event");
		stsclient_free(cl);
		return NULL;
	}
	return cl;
}

void
stsclient_free(stsclient_t *cl)
{
	struct sts_fetch *f;
	mainq_job_t *j;

	if (cl == NULL)
		return;
	while (cl->q != NULL && (j = mainq_take(cl->q)) != NULL) {
		f = (struct sts_fetch *)((char *)j - offsetof(struct sts_fetch, job));
		TAILQ_INSERT_TAIL(&cl->active, f, next);
		cl->nactive++;
	}
	while ((f = TAILQ_FIRST(&cl->active)) != NULL)
		sts_fetch_free(f);
	mainq_free(cl->q);
	if (cl->dns)
		evdns_base_free(cl->dns, 1);
	free(cl);
}
