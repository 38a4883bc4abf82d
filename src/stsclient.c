/* stsclient.c — STS AssumeRole over verified TLS on the main thread, for stscache. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <sodium.h>

#include "audit.h"
#include "awsrole.h"
#include "defaults.h"
#include "egress.h"
#include "log.h"
#include "resolve.h"
#include "secmem.h"
#include "stats.h"
#include "stsclient.h"
#include "stsxml.h"
#include "tls.h"
#include "util.h"

struct sts_fetch {
	stsclient_t *cl;
	policy_t *policy;		/* a reference: cred lives in it */
	const policy_credential_t *cred;
	uint8_t key[STSCACHE_KEY_LEN];
	uint64_t seq;
	bool refresh, complete;
	awsrole_req_t req;		/* host, region, the wire (until it is written) */
	egress_req_t *dns;
	struct bufferevent *bev;
	struct event *timer;
	http_parser parser;
	char *body;			/* wipe memory: holds the temporary secret */
	size_t body_len, read;
	double t_start;
	TAILQ_ENTRY(sts_fetch) next;
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
	struct event *wake;		/* jobs queued, or a failure to report */
	pthread_mutex_t mu;
	struct sts_list queued;		/* under mu */
	bool report;			/* under mu: a failure was recorded off the loop */
	struct sts_list active;		/* main thread only */
	size_t nactive;
};

/* --- the end of a fetch ------------------------------------------------------------------ */

static void
sts_fetch_free(struct sts_fetch *f)
{
	TAILQ_REMOVE(&f->cl->active, f, next);
	f->cl->nactive--;
	egress_cancel(f->dns);
	if (f->bev)
		bufferevent_free(f->bev);
	if (f->timer)
		event_free(f->timer);
	awsrole_req_free(&f->req);
	secmem_wipe_free(f->body);
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
sts_answer(struct sts_fetch *f)
{
	unsigned status = f->parser.status_code;
	char code[STSXML_CODE_MAX + 1], msg[STSXML_MESSAGE_MAX + 64];
	stscache_cred_t *c;
	stsxml_t x;
	int rc = stsxml_parse(f->body ? f->body : "", f->body_len, &x);

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

/* --- reading the answer --------------------------------------------------------------- */

static int
sts_on_body(http_parser *p, const char *at, size_t len)
{
	struct sts_fetch *f = p->data;
	char *nb;

	if (f->body_len + len > SG_STS_MAX_RESPONSE)
		return -1;
	if ((nb = secmem_wipe_alloc(f->body_len + len + 1)) == NULL)
		return -1;
	if (f->body != NULL)
		memcpy(nb, f->body, f->body_len);
	memcpy(nb + f->body_len, at, len);
	secmem_wipe_free(f->body);
	f->body = nb;
	f->body_len += len;
	f->body[f->body_len] = '\0';
	return 0;
}

static int
sts_on_complete(http_parser *p)
{
	struct sts_fetch *f = p->data;

	f->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings sts_settings = {
	.on_body = sts_on_body,
	.on_message_complete = sts_on_complete,
};

/* Feed what arrived (NULL, 0: the end of the stream). -1 when it cannot be an answer. */
static int
sts_feed(struct sts_fetch *f, const char *data, size_t len)
{
	size_t n = http_parser_execute(&f->parser, &sts_settings, data, len);

	if (f->complete)
		return 0;
	return HTTP_PARSER_ERRNO(&f->parser) != HPE_OK || n != len ? -1 : 0;
}

/* Feed what is buffered. -1 when the fetch failed (and is gone). */
static int
sts_take(struct sts_fetch *f)
{
	struct evbuffer *in = bufferevent_get_input(f->bev);

	while (!f->complete && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		f->read += v.iov_len;
		if (f->read > SG_STS_MAX_RESPONSE || sts_feed(f, v.iov_base, v.iov_len) < 0) {
			sts_fail(f, 0, "malformed_answer", f->read > SG_STS_MAX_RESPONSE ?
			    "the answer is too large" : "not an HTTP/1.1 answer");
			return -1;
		}
		evbuffer_drain(in, v.iov_len);
	}
	return 0;
}

static void
sts_read_cb(struct bufferevent *bev, void *arg)
{
	struct sts_fetch *f = arg;

	(void)bev;
	if (sts_take(f) == 0 && f->complete)
		sts_answer(f);
}

/* --- the connection --------------------------------------------------------------------- */

/* The wire (wipe memory) goes out by reference and is zeroed once written. */
static void
sts_wire_cleanup(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	secmem_wipe_free((void *)data);
}

static void
sts_send(struct sts_fetch *f)
{
	struct evbuffer *out = bufferevent_get_output(f->bev);

	if (evbuffer_add_reference(out, f->req.wire, f->req.wire_len, sts_wire_cleanup,
	    NULL) < 0) {
		sts_fail(f, 0, "out_of_memory", "cannot queue the request");
		return;
	}
	f->req.wire = NULL;	/* the buffer owns it now */
	f->req.wire_len = 0;
	bufferevent_enable(f->bev, EV_READ | EV_WRITE);
}

static void
sts_event_failed(struct sts_fetch *f, short what)
{
	SSL *ssl = bufferevent_openssl_get_ssl(f->bev);
	unsigned long e = bufferevent_get_openssl_error(f->bev);
	int err = EVUTIL_SOCKET_ERROR();
	char reason[256];

	if (ssl != NULL && tls_client_verify_error(ssl, reason, sizeof(reason))) {
		sts_fail(f, 0, "upstream_tls", reason);
		return;
	}
	if (e != 0 && ERR_GET_LIB(e) != 0 && ERR_GET_LIB(e) != ERR_LIB_SYS) {
		ERR_error_string_n(e, reason, sizeof(reason));
		sts_fail(f, 0, "upstream_tls", reason);
		return;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
		err = ERR_GET_REASON(e);	/* a socket error seen through OpenSSL */
	snprintf(reason, sizeof(reason), "cannot connect to STS, or it closed the connection "
	    "(%s)", (what & BEV_EVENT_EOF) ? "closed" : err ? evutil_socket_error_to_string(err) :
	    "connection failed");
	sts_fail(f, 0, "upstream_error", reason);
}

static void
sts_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sts_fetch *f = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		STATS_INC(tls_upstream_handshakes);
		sts_send(f);
		return;
	}
	if (sts_take(f) < 0)
		return;
	/* the stream ended after an answer began: close-delimited, or cut. A cut answer fails
	 * to parse (the reader wants the whole document), so TLS close_notify is not needed
	 * to tell the two apart */
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && f->parser.status_code != 0) {
		if (f->complete || (sts_feed(f, NULL, 0) == 0 && f->complete)) {
			sts_answer(f);
			return;
		}
		sts_fail(f, (int)f->parser.status_code, "upstream_error", "STS closed the "
		    "connection before the answer's end");
		return;
	}
	sts_event_failed(f, what);
}

static void
sts_resolved(const egress_result_t *res, void *arg)
{
	struct sts_fetch *f = arg;
	SSL *ssl;

	f->dns = NULL;
	if (!res->ok) {
		sts_fail(f, 0, res->code, res->msg);
		return;
	}
	if ((ssl = tls_client_new(f->cl->tls, f->req.host)) == NULL) {
		sts_fail(f, 0, "upstream_tls", "cannot set up TLS");
		return;
	}
	f->bev = bufferevent_openssl_socket_new(f->cl->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (f->bev == NULL) {
		SSL_free(ssl);
		sts_fail(f, 0, "out_of_memory", "cannot open a connection");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f->bev, 1);
	bufferevent_setcb(f->bev, sts_read_cb, NULL, sts_event_cb, f);
	if (bufferevent_socket_connect(f->bev, (const struct sockaddr *)&res->addr,
	    (int)res->addrlen) < 0)
		sts_fail(f, 0, "upstream_error", "cannot connect to STS");
}

static void
sts_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetch *f = arg;
	char msg[64];

	(void)fd;
	(void)what;
	snprintf(msg, sizeof(msg), "no answer within %d s", SG_STS_TIMEOUT_S);
	sts_fail(f, 0, "timeout", msg);
}

/* On the main loop: build, check egress, resolve (then connect, send, read). */
static void
sts_start(struct sts_fetch *f)
{
	struct timeval tv = {SG_STS_TIMEOUT_S, 0};
	const char *why = NULL;
	egress_req_t *r;
	char msg[256];
	int rc;

	f->t_start = util_mono_msf();
	http_parser_init(&f->parser, HTTP_RESPONSE);
	f->parser.data = f;
	STATS_INC(assume_role_fetches);
	if (f->refresh)
		STATS_INC(assume_role_refreshes);
	if ((f->timer = evtimer_new(f->cl->base, sts_timeout_cb, f)) == NULL) {
		sts_fail(f, 0, "out_of_memory", "no timer");
		return;
	}
	evtimer_add(f->timer, &tv);
	if ((rc = awsrole_request(f->cred, util_now_s(), &f->req)) != AWSROLE_OK) {
		sts_fail(f, 0, "request_failed", rc == AWSROLE_E_NOMEM ? "out of memory" :
		    "cannot build the AssumeRole request");
		return;
	}
	if (egress_decide(f->policy, f->req.host, f->cl->port, &why) == EGRESS_DENY) {
		snprintf(msg, sizeof(msg), "%s:%u denied: %s", f->req.host, f->cl->port, why);
		sts_fail(f, 0, "egress_denied", msg);
		return;
	}
	/* the callback may run (and end the fetch) before this returns: then NULL */
	r = egress_resolve(f->cl->dns, f->policy, f->req.host, f->cl->port, sts_resolved, f);
	if (r != NULL)
		f->dns = r;
}

/* --- the queue -------------------------------------------------------------------------- */

static void
sts_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	stsclient_t *cl = arg;
	struct sts_fetch *f;
	bool report;

	(void)fd;
	(void)what;
	for (;;) {
		pthread_mutex_lock(&cl->mu);
		if ((f = TAILQ_FIRST(&cl->queued)) != NULL)
			TAILQ_REMOVE(&cl->queued, f, next);
		pthread_mutex_unlock(&cl->mu);
		if (f == NULL)
			break;
		TAILQ_INSERT_TAIL(&cl->active, f, next);
		cl->nactive++;
		sts_start(f);
	}
	pthread_mutex_lock(&cl->mu);
	report = cl->report;
	cl->report = false;
	pthread_mutex_unlock(&cl->mu);
	if (report)
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
		pthread_mutex_lock(&cl->mu);
		cl->report = true;
		pthread_mutex_unlock(&cl->mu);
		event_active(cl->wake, EV_READ, 0);
		return;
	}
	f->cl = cl;
	f->policy = policy_ref(policy);
	f->cred = cred;
	memcpy(f->key, key, STSCACHE_KEY_LEN);
	f->seq = seq;
	f->refresh = refresh;
	pthread_mutex_lock(&cl->mu);
	TAILQ_INSERT_TAIL(&cl->queued, f, next);
	pthread_mutex_unlock(&cl->mu);
	event_active(cl->wake, EV_READ, 0);
}

size_t
stsclient_pending(stsclient_t *cl)
{
	size_t n = 0;
	struct sts_fetch *f;

	pthread_mutex_lock(&cl->mu);
	TAILQ_FOREACH(f, &cl->queued, next)
		n++;
	pthread_mutex_unlock(&cl->mu);
	return n + cl->nactive;
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
	pthread_mutex_init(&cl->mu, NULL);
	TAILQ_INIT(&cl->queued);
	TAILQ_INIT(&cl->active);
	cl->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (cl->dns == NULL)	/* no resolv.conf: names resolve from /etc/hosts only */
		cl->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (cl->dns != NULL)
		evdns_base_load_hosts(cl->dns, NULL);
	cl->wake = event_new(base, -1, 0, sts_wake_cb, cl);
	if (cl->dns == NULL || cl->wake == NULL) {
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

	if (cl == NULL)
		return;
	while ((f = TAILQ_FIRST(&cl->queued)) != NULL) {
		TAILQ_REMOVE(&cl->queued, f, next);
		TAILQ_INSERT_TAIL(&cl->active, f, next);
		cl->nactive++;
	}
	while ((f = TAILQ_FIRST(&cl->active)) != NULL)
		sts_fetch_free(f);
	if (cl->wake)
		event_free(cl->wake);
	if (cl->dns)
		evdns_base_free(cl->dns, 1);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}
