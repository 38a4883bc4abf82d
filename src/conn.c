/*
 * conn.c — one proxy client connection.
 *
 *   accept → HEAD ─┬─ CONNECT ─ egress_decide ─┬─ deny: 403
 *                  │                           ├─ tunnel: resolve → dial → 200 → SPLICE
 *                  │                           └─ intercept: resolve → 200 → TLS_ACCEPT → HEAD
 *                  └─ request (absolute-form, or inside an intercepted CONNECT)
 *                       → resolve/dial upstream → forward head → BODY → response relay
 *                       → keep-alive: HEAD again (pipelined bytes already buffered)
 *
 * Bodies are re-framed (Content-Length kept, chunked re-chunked) so what the upstream
 * sees is exactly what sealgate parsed. Every exit goes through conn_close.
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "audit.h"
#include "decode.h"
#include "authz.h"
#include "conn.h"
#include "defaults.h"
#include "egress.h"
#include "handle.h"
#include "http.h"
#include "leak.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "policy.h"
#include "resolve.h"
#include "revoke.h"
#include "scrub.h"
#include "stats.h"
#include "swap.h"
#include "tls.h"
#include "util.h"
#include "wsrelay.h"

#define CONN_HOST_MAX 256
/* Pool key: who | host | port | tls | credentials (names are at most 64 bytes). */
#define CONN_KEY_MAX (CONN_HOST_MAX + 96 + INJECT_MAX_HANDLES * 66)

enum conn_state {
	ST_HEAD,		/* reading a request head */
	ST_RESOLVING,		/* waiting for egress_resolve */
	ST_TLS_ACCEPT,		/* client TLS handshake (intercept) */
	ST_UP_CONNECTING,	/* upstream TCP/TLS connect */
	ST_RELAY,		/* request body and/or response in flight */
	ST_SPLICE,		/* tunnel: bytes both ways */
	ST_WEBSOCKET,		/* after a 101: frames both ways through the relay */
	ST_CLOSING,		/* error answer queued: close once flushed */
};

enum conn_mode { MODE_PROXY, MODE_INTERCEPT, MODE_TUNNEL };

/* Request-scoped state an idle connection gives back when it parks. */
struct conn_work {
	plan_t plan;		/* the current request's plan (swap, tokenizer) */
	leak_stream_t leak;		/* handle scan of a streamed request body */
};

/* The request half: where the current request is, and what it carries. */
enum req_phase {
	REQ_NONE,		/* no request: reading a head, or parked */
	REQ_DECIDING,		/* head read: plan, resolve, dial; nothing sent upstream */
	REQ_HOLDING,		/* collecting a body that must be held whole */
	REQ_STREAMING,		/* head sent upstream, the body streaming after it */
	REQ_SENT,		/* all of the request sent */
};

/* The response half. */
enum res_phase {
	RES_WAITING,		/* no final head yet (1xx answers may have passed) */
	RES_BODY,		/* final head written to the client, body relaying */
	RES_DONE,		/* complete */
};

struct conn_req {
	enum req_phase phase;
	http_scan_t scan;
	http_parser parser;
	http_head_t head;
	char *target;			/* origin-form target sent upstream */
	char host[CONN_HOST_MAX];	/* where it goes (for body handles, the audit line) */
	uint16_t port;
	bool chunked;			/* its body re-chunked toward the upstream */
	bool keepalive;			/* the client keeps the connection after it */
	bool websocket;			/* an upgrade to WebSocket */
	struct evbuffer *held;		/* a body held whole (REQ_HOLDING) */
	bool held_whole;		/* ... and complete */
	scrub_t *rewrite;		/* handle/placeholder -> secret in a streamed body */
	bool leak_on;			/* scan the streamed body for handles */
	uint64_t seen;			/* body bytes scanned */
	unsigned err;			/* 413 / 403 / 503 found while relaying the body */
	const char *leak_encoding;
};

struct conn_res {
	enum res_phase phase;
	http_scan_t scan;
	http_parser parser;
	http_head_t head;
	bool chunked_out;		/* re-chunked toward the client */
	bool keepalive;			/* the upstream keeps the connection */
	unsigned ninterim;		/* 1xx answers relayed for this request */
	/* a scrubbed response whose Content-Encoding sealgate decodes (the client gets the
	 * body decoded, the head's coding, digests and strong ETag rewritten) */
	decode_t *dec;			/* NULL: identity, or no scrubbing */
	bool recode;			/* the head is rewritten for a decoded body */
	int dec_err;			/* a decode_rc that cut the body */
	/* trailer fields of a chunked response, collected until its end */
	struct evbuffer *trailers;	/* "name: value\n" lines as received */
	bool trailer_in_value;		/* the last piece was a value */
};

/* The upstream this connection talks to. */
struct conn_up {
	char host[CONN_HOST_MAX];
	uint16_t port;
	bool tls, ready;
	char key[CONN_KEY_MAX];		/* pool key of the upstream connection */
	struct sockaddr_storage addr;	/* the checked address */
	socklen_t addrlen;
};

/* For the audit line and metrics. */
struct conn_acct {
	double t_start, t_sent;		/* monotonic ms: head parsed, head sent upstream */
	double upstream_ms;		/* head sent -> response head */
	uint64_t bytes_up, bytes_down;	/* body bytes each way */
	bool audited;			/* this request's line is written */
};

struct conn {
	worker_t *w;
	policy_t *pol;
	enum conn_state st;
	enum conn_mode mode;
	int cfd;
	bool cfd_owned;			/* false once a bufferevent closes it */
	struct bufferevent *cbev;
	struct bufferevent *ubev;
	char peer[64];
	struct sockaddr_storage peer_ss;
	struct event *timer;
	egress_req_t *dns;

	/* CONNECT authority (intercept/tunnel) */
	char auth_host[CONN_HOST_MAX];
	uint16_t auth_port;
	http_head_t connect_head;	/* the intercepted CONNECT (its Proxy-Tokenizer) */
	bool connect_answered;		/* the CONNECT's 200 is queued (TLS may start) */
	char proxy_token[256];		/* from Proxy-Authorization (CONNECT or request) */

	struct conn_up up;
	struct conn_work *rq;		/* NULL only while parked */
	struct conn_req req;
	struct conn_res res;
	scrub_t *scrub;			/* injected secrets -> handles, for responses */
	struct conn_acct acct;
	bool park_due;			/* idle: the timer parks before it closes */
	bool served;			/* a request head was read (conn_has_served) */

	/* WebSocket after a 101 */
	wsrelay_t *ws;
	policy_t *ws_pol;		/* newest snapshot a frame's handle was swapped on */
};

static void conn_client_read_cb(struct bufferevent *bev, void *arg);
static void conn_client_write_cb(struct bufferevent *bev, void *arg);
static void conn_client_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_up_read_cb(struct bufferevent *bev, void *arg);
static void conn_up_write_cb(struct bufferevent *bev, void *arg);
static void conn_up_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_process_head(conn_t *c);
static void conn_audit(conn_t *c, unsigned status, const char *code);
static void conn_forward_request(conn_t *c);
static int conn_relay_request_body(conn_t *c);
static void conn_closing_check(conn_t *c);
static void conn_ws_read(conn_t *c, bool from_client);
static void conn_ws_start(conn_t *c);
static void conn_write_scrubbed(conn_t *c, struct evbuffer *out, const char *v, size_t len);

/* --- state and phases ---------------------------------------------------------------- */

static const char *const conn_state_names[] = {"head", "resolving", "tls_accept",
    "up_connecting", "relay", "splice", "websocket", "closing"};
static const char *const conn_req_names[] = {"none", "deciding", "holding", "streaming",
    "sent"};
static const char *const conn_res_names[] = {"waiting", "body", "done"};

/* The connection's state changes here only. */
static void
conn_set_state(conn_t *c, enum conn_state st)
{
	if (c->st != st)
		log_debug("%s: %s -> %s", c->peer, conn_state_names[c->st],
		    conn_state_names[st]);
	c->st = st;
}

/* The request half's phase changes here only. */
static void
conn_req_phase(conn_t *c, enum req_phase ph)
{
	if (c->req.phase != ph)
		log_debug("%s: request %s -> %s", c->peer, conn_req_names[c->req.phase],
		    conn_req_names[ph]);
	c->req.phase = ph;
}

/* The response half's phase changes here only. */
static void
conn_res_phase(conn_t *c, enum res_phase ph)
{
	if (c->res.phase != ph)
		log_debug("%s: response %s -> %s", c->peer, conn_res_names[c->res.phase],
		    conn_res_names[ph]);
	c->res.phase = ph;
}

/* Request body bytes are still to come from the client (held, or streamed upstream). */
static bool
conn_req_body_pending(const conn_t *c)
{
	return (c->req.phase == REQ_HOLDING && !c->req.held_whole) ||
	    c->req.phase == REQ_STREAMING;
}

/* --- helpers ----------------------------------------------------------------------- */

static struct timeval
conn_tv(uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	return tv;
}

static void
conn_arm_timer(conn_t *c, uint64_t ms)
{
	struct timeval tv = conn_tv(ms);

	evtimer_add(c->timer, &tv);
}

/*
 * Answer the client with an error and close once it is flushed. If a response has
 * already started, the only honest thing left is to cut the connection.
 */
static void
conn_fail_ex(conn_t *c, unsigned status, const char *code, const char *msg,
    const char *extra)
{
	size_t len;
	char *buf;

	STATS_INC(requests_failed);
	log_info("%s: %u %s: %s", c->peer, status, code, msg);
	conn_audit(c, status, code);
	if (c->res.phase != RES_WAITING || c->st == ST_SPLICE || c->st == ST_WEBSOCKET ||
	    c->st == ST_CLOSING || c->cbev == NULL) {
		conn_close(c, code);
		return;
	}
	buf = http_error_format(status, code, msg, true, extra, &len);
	if (buf == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	conn_set_state(c, ST_CLOSING);
	if (c->ubev) {
		bufferevent_free(c->ubev);
		c->ubev = NULL;
	}
	bufferevent_setcb(c->cbev, conn_client_read_cb, conn_client_write_cb,
	    conn_client_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	bufferevent_write(c->cbev, buf, len);
	free(buf);
	conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
}

/* One audit line and the metrics for the current request (once). */
static void
conn_audit(conn_t *c, unsigned status, const char *code)
{
	const char *ev = "request", *outcome = "forwarded";
	char method[24] = "", host[CONN_HOST_MAX + 8] = "";
	audit_event_t a;

	if (c->acct.audited || c->acct.t_start == 0 || c->rq == NULL)
		return;
	c->acct.audited = true;
	if (code) {
		ev = status == 429 ? (c->rq->plan.brute_force ? "brute_force" : "rate_limited") :
		    c->rq->plan.exfiltration ? "exfiltration" : "denied";
		outcome = status == 429 ? "rate_limited" : status >= 500 ? "upstream_error" :
		    "denied";
	}
	if (c->req.head.buf)
		snprintf(method, sizeof(method), "%s", http_method_str(c->req.head.method));
	snprintf(host, sizeof(host), "%s", c->req.host[0] ? c->req.host :
	    c->auth_host[0] ? c->auth_host : c->up.host);
	memset(&a, 0, sizeof(a));
	a.event = ev;
	a.sandbox = c->rq->plan.sandbox[0] ? c->rq->plan.sandbox : NULL;
	a.origin_sandbox = c->rq->plan.origin[0] ? c->rq->plan.origin : NULL;
	a.source = c->peer;
	a.handle_id = c->rq->plan.hid[0] ? c->rq->plan.hid : NULL;
	a.credential = c->rq->plan.credential[0] ? c->rq->plan.credential : NULL;
	a.method = method;
	a.host = host;
	a.port = c->req.port ? c->req.port : c->auth_port ? c->auth_port : c->up.port;
	a.path = c->req.target ? c->req.target : (c->req.head.buf && c->req.head.method !=
	    HTTP_CONNECT ? c->req.head.target : NULL);
	a.status = (int)status;
	a.error = code;
	a.bytes_up = c->acct.bytes_up;
	a.bytes_down = c->acct.bytes_down;
	a.upstream_ms = c->acct.upstream_ms;
	a.total_ms = util_mono_msf() - c->acct.t_start;
	a.detail = code && c->rq->plan.detail[0] ? c->rq->plan.detail : NULL;
	audit_log(&a);
	if (c->rq->plan.credential[0])
		metrics_count_request(c->rq->plan.credential, outcome);
}

/* scrub emit callback: append to an evbuffer */
static void
conn_emit_evbuffer(void *arg, const void *data, size_t len)
{
	evbuffer_add(arg, data, len);
}

/* Drop the body state of a request; a held body may carry secrets: zero it. */
static void
conn_body_reset(conn_t *c)
{
	if (c->req.held) {
		size_t n = evbuffer_get_length(c->req.held);
		unsigned char *p = n ? evbuffer_pullup(c->req.held, -1) : NULL;

		if (p)
			sodium_memzero(p, n);
		evbuffer_free(c->req.held);
		c->req.held = NULL;
	}
	scrub_free(c->req.rewrite);
	c->req.rewrite = NULL;
	c->req.held_whole = c->req.leak_on = false;
	c->req.seen = 0;
	c->req.err = 0;
}

/* Does every response on this connection get scrubbed (a secret was injected on it)? */
static bool
conn_scrubbing(const conn_t *c)
{
	return c->scrub != NULL && scrub_needles(c->scrub) > 0;
}

/* Trailer lines may hold secrets (scrubbed ones no more, but partial lines): zero them. */
static void
conn_trailers_free(conn_t *c)
{
	if (c->res.trailers != NULL) {
		size_t n = evbuffer_get_length(c->res.trailers);
		unsigned char *p = n ? evbuffer_pullup(c->res.trailers, -1) : NULL;

		if (p)
			sodium_memzero(p, n);
		evbuffer_free(c->res.trailers);
		c->res.trailers = NULL;
	}
	c->res.trailer_in_value = false;
}

/*
 * Stop relaying, let the client read what is already queued (a response head, part of
 * a body), then close. Used when the upstream breaks a response midway.
 */
static void
conn_close_after_flush(conn_t *c, const char *reason)
{
	log_info("%s: %s", c->peer, reason);
	if (c->ubev) {
		bufferevent_free(c->ubev);
		c->ubev = NULL;
	}
	conn_set_state(c, ST_CLOSING);
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0) {
		conn_close(c, reason);
		return;
	}
	bufferevent_setcb(c->cbev, conn_client_read_cb, conn_client_write_cb,
	    conn_client_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
}

/* Closing: close once what is queued for the client (and the upstream) has gone. */
static void
conn_closing_check(conn_t *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0 && (c->ubev == NULL ||
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0))
		conn_close(c, "answered");
}

static void
conn_fail(conn_t *c, unsigned status, const char *code, const char *msg)
{
	conn_fail_ex(c, status, code, msg, NULL);
}

static void
conn_work_free(conn_t *c)
{
	if (c->rq == NULL)
		return;
	plan_free(&c->rq->plan);
	free(c->rq);
	c->rq = NULL;
}

/* A parked connection's next byte: request state again (false: out of memory). */
static bool
conn_work_ensure(conn_t *c)
{
	if (c->rq == NULL)
		c->rq = calloc(1, sizeof(*c->rq));
	return c->rq != NULL;
}

/* The upstream is between requests, clean, and said it may be reused. */
static bool
conn_upstream_reusable(const conn_t *c)
{
	return c->ubev && c->up.ready && c->res.keepalive && c->req.phase == REQ_NONE &&
	    !c->req.websocket && c->mode != MODE_TUNNEL && c->st != ST_SPLICE &&
	    c->st != ST_WEBSOCKET &&
	    c->up.key[0] && evbuffer_get_length(bufferevent_get_input(c->ubev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0;
}

/* Let go of the upstream: into the worker's pool when reusable, else closed. */
static void
conn_upstream_release(conn_t *c)
{
	if (c->ubev == NULL)
		return;
	if (conn_upstream_reusable(c))
		worker_pool_put(c->w, c->up.key, c->ubev);
	else
		bufferevent_free(c->ubev);
	c->ubev = NULL;
	c->up.ready = false;
}

bool
conn_is_idle(const conn_t *c)
{
	return c->st == ST_HEAD && c->req.scan.total == 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->cbev)) == 0;
}

void
conn_close(conn_t *c, const char *reason)
{
	log_debug("%s: closed: %s", c->peer, reason);
	egress_cancel(c->dns);
	if (c->timer)
		event_free(c->timer);
	conn_upstream_release(c);
	if (c->cbev)
		bufferevent_free(c->cbev);
	if (c->cfd_owned)
		close(c->cfd);
	http_head_clear(&c->req.head);
	http_head_clear(&c->res.head);
	http_head_clear(&c->connect_head);
	free(c->req.target);
	conn_work_free(c);
	conn_body_reset(c);
	conn_trailers_free(c);
	decode_free(c->res.dec);
	wsrelay_free(c->ws);
	if (c->ws_pol)
		policy_unref(c->ws_pol);
	scrub_free(c->scrub);
	sodium_memzero(c->proxy_token, sizeof(c->proxy_token));
	if (c->pol)
		policy_unref(c->pol);
	worker_conn_removed(c->w, c);
	STATS_DEC(conns_active);
	free(c);
}

/*
 * A keep-alive client that has gone quiet gives back what it holds between requests:
 * the upstream goes to the worker's pool (or is closed), the last response head and
 * the handle swap are freed, and the response scrubber's copies of secrets are wiped.
 * Thousands of idle agents then cost one descriptor and a few KiB each, and an idle
 * connection holds no secret. The next request re-swaps and takes a pooled upstream.
 */
static void
conn_park(conn_t *c)
{
	c->park_due = false;
	STATS_INC(conns_parked);
	worker_conn_parked(c->w);
	conn_upstream_release(c);
	http_head_clear(&c->req.head);
	http_head_clear(&c->res.head);
	free(c->req.target);
	c->req.target = NULL;
	conn_work_free(c);
	scrub_free(c->scrub);
	c->scrub = NULL;
	conn_arm_timer(c, c->pol->limits.idle_timeout_ms - c->pol->limits.park_after_ms);
}

/* Waiting for the next request: park first unless already parked. */
static void
conn_arm_idle(conn_t *c)
{
	const policy_limits_t *l = &c->pol->limits;

	/* not parked yet: request state (and maybe an upstream, a scrubber) to give back */
	c->park_due = l->park_after_ms > 0 && l->park_after_ms < l->idle_timeout_ms &&
	    c->rq != NULL;
	conn_arm_timer(c, c->park_due ? l->park_after_ms : l->idle_timeout_ms);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_t *c = arg;

	(void)fd;
	(void)what;
	switch (c->st) {
	case ST_HEAD:
		if (c->req.scan.total > 0) {
			STATS_INC(errors_timeout);
			conn_fail(c, 408, "request_timeout",
			    "the request head did not arrive in time");
		} else if (c->park_due)
			conn_park(c);
		else
			conn_close(c, "idle");
		return;
	case ST_RELAY:
		if (c->req.phase == REQ_HOLDING && !c->req.held_whole) {
			STATS_INC(errors_timeout);
			conn_fail(c, 408, "request_timeout",
			    "the request body did not arrive in time");
			return;
		}
		conn_close(c, "timeout");
		return;
	case ST_UP_CONNECTING:
		STATS_INC(errors_timeout);
		conn_fail(c, 504, "upstream_timeout", c->up.tls ?
		    "upstream did not complete the TLS handshake in time" :
		    "upstream did not accept the connection in time");
		return;
	default:
		conn_close(c, "timeout");
		return;
	}
}

/* --- accept and the request head ----------------------------------------------------- */

/* A client that stops reading may not hold its sockets for ever. */
static void
conn_client_write_timeout(conn_t *c)
{
	struct timeval tv = conn_tv(c->pol->limits.upstream_timeout_ms);

	bufferevent_set_timeouts(c->cbev, NULL, &tv);
}

static void
conn_start_head(conn_t *c)
{
	const policy_limits_t *l = &c->pol->limits;

	http_head_clear(&c->req.head);
	http_scan_init(&c->req.scan, l->max_header_bytes ? l->max_header_bytes : SG_MAX_HEADER_BYTES);
	conn_req_phase(c, REQ_NONE);
	conn_res_phase(c, RES_WAITING);
	c->req.websocket = false;
	conn_body_reset(c);
	c->acct.t_start = c->acct.t_sent = 0;
	c->acct.upstream_ms = 0;
	c->acct.bytes_up = c->acct.bytes_down = 0;
	c->acct.audited = false;
	c->req.host[0] = '\0';
	c->req.port = 0;
	free(c->req.target);
	c->req.target = NULL;
	conn_set_state(c, ST_HEAD);
	if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
		conn_arm_timer(c, l->header_timeout_ms);
	else
		conn_arm_idle(c);
	bufferevent_setcb(c->cbev, conn_client_read_cb, conn_client_write_cb,
	    conn_client_event_cb, c);
	conn_client_write_timeout(c);
	bufferevent_enable(c->cbev, EV_READ);
}

/* Requests and answers are small and latency-bound: no Nagle delay on either side. */
static void
conn_set_nodelay(evutil_socket_t fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void
conn_accept(worker_t *w, int fd, const struct sockaddr *sa, socklen_t salen)
{
	conn_t *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		STATS_DEC(conns_active);
		return;
	}
	c->w = w;
	c->cfd = fd;
	c->cfd_owned = true;
	c->rq = calloc(1, sizeof(*c->rq));
	c->pol = policy_acquire();
	netaddr_format(sa, c->peer, sizeof(c->peer));
	if (salen <= sizeof(c->peer_ss))
		memcpy(&c->peer_ss, sa, salen);
	worker_conn_added(w, c);
	evutil_make_socket_nonblocking(fd);
	conn_set_nodelay(fd);
	c->timer = evtimer_new(worker_base(w), conn_timer_cb, c);
	c->cbev = bufferevent_socket_new(worker_base(w), fd, 0);
	if (c->pol == NULL || c->timer == NULL || c->cbev == NULL || c->rq == NULL) {
		conn_close(c, "setup failed");
		return;
	}
	c->mode = MODE_PROXY;
	conn_start_head(c);
}

/* Feed the bytes of the head not yet scanned; returns the head length or 0 / -1. */
static ssize_t
conn_scan_head(conn_t *c, http_scan_t *s, struct evbuffer *in)
{
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v[8];
	size_t start = s->total;
	int n;

	if (evbuffer_get_length(in) <= start)
		return 0;
	if (evbuffer_ptr_set(in, &pos, start, EVBUFFER_PTR_SET) < 0)
		return -1;
	n = evbuffer_peek(in, -1, &pos, v, 8);
	if (n > 8)
		n = 8;
	for (int i = 0; i < n; i++) {
		size_t used;
		int rc = http_scan_feed(s, v[i].iov_base, v[i].iov_len, &used);

		if (rc == HTTP_SCAN_DONE)
			return (ssize_t)s->total;
		if (rc == HTTP_SCAN_ERROR)
			return -1;
	}
	(void)c;
	return 0;
}

static void
conn_client_read_cb(struct bufferevent *bev, void *arg)
{
	conn_t *c = arg;

	(void)bev;
	worker_note_io(c->w);
	switch (c->st) {
	case ST_HEAD:
		if (!conn_work_ensure(c)) {
			conn_close(c, "out of memory");
			return;
		}
		conn_process_head(c);
		return;
	case ST_RELAY:
		if (conn_req_body_pending(c))
			conn_relay_request_body(c);
		return;
	case ST_WEBSOCKET:
		conn_ws_read(c, true);
		return;
	case ST_SPLICE:
		if (c->ubev)
			bufferevent_write_buffer(c->ubev, bufferevent_get_input(c->cbev));
		if (c->ubev && evbuffer_get_length(bufferevent_get_output(c->ubev)) >
		    SG_RELAY_HIGH_WATER) {
			bufferevent_disable(c->cbev, EV_READ);
			bufferevent_setwatermark(c->ubev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
		}
		return;
	case ST_CLOSING:
		/* answer queued: discard what the client still sends, so closing later does
		 * not reset the connection and lose the answer */
		evbuffer_drain(bufferevent_get_input(c->cbev),
		    evbuffer_get_length(bufferevent_get_input(c->cbev)));
		return;
	default:
		return;		/* input waits in the buffer (pipelining) */
	}
}

/*
 * Each request is decided on the policy current when its head arrived (a grant
 * withdrawn by a reload stops the next request, also on a kept-alive connection);
 * a request in flight finishes on the snapshot it started with.
 */
static void
conn_policy_refresh(conn_t *c)
{
	policy_t *p = policy_acquire();

	if (p == NULL)
		return;
	if (p == c->pol) {
		policy_unref(p);
		return;
	}
	plan_free(&c->rq->plan);	/* it borrows from the old snapshot */
	policy_unref(c->pol);
	c->pol = p;
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
	registry_snapshot_t *reg;
	const registry_entry_t *e;
	char msg[192];

	if (registry_suspended_published() == 0)
		return false;
	reg = registry_acquire();
	e = registry_find_addr(reg, (const struct sockaddr *)&c->peer_ss);
	if (e == NULL || e->suspended_at == 0) {
		registry_unref(reg);
		return false;
	}
	snprintf(c->rq->plan.sandbox, sizeof(c->rq->plan.sandbox), "%s", e->id);
	snprintf(msg, sizeof(msg), "sandbox %s is suspended: nothing from its addresses is "
	    "accepted until it is resumed", e->id);
	registry_unref(reg);
	STATS_INC(suspended_refused);
	conn_fail(c, 403, "sandbox_suspended", msg);
	return true;
}

static void
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
	conn_policy_refresh(c);
	conn_take_proxy_token(c);
	c->served = true;
	if (conn_refuse_suspended(c))
		return;
	conn_req_phase(c, REQ_DECIDING);
	c->req.keepalive = c->req.head.keep_alive;
	bufferevent_disable(c->cbev, EV_READ);
	conn_forward_request(c);
}

/* --- CONNECT --------------------------------------------------------------------------- */

static void conn_connect_resolved(const egress_result_t *res, void *arg);

static void
conn_on_connect(conn_t *c)
{
	const char *why;
	enum egress_action act;

	leak_hit_t hit;

	if (memmem(c->req.head.target, c->req.head.target_len, HANDLE_PREFIX, HANDLE_PREFIX_LEN) ||
	    leak_scan(c->req.head.target, c->req.head.target_len, &hit)) {
		/* a handle must not leave as a DNS name or TLS SNI */
		log_warn("%s: possible exfiltration: a handle in a CONNECT authority", c->peer);
		c->rq->plan.exfiltration = true;
		conn_fail(c, 403, "handle_in_authority", "a handle in the CONNECT authority");
		return;
	}
	if (http_split_authority(c->req.head.target, c->req.head.target_len, c->auth_host,
	    sizeof(c->auth_host), &c->auth_port, 0) < 0 || c->auth_port == 0) {
		STATS_INC(errors_bad_request);
		conn_fail(c, 400, "bad_request", "CONNECT needs host:port");
		return;
	}
	act = egress_decide(c->pol, c->auth_host, c->auth_port, &why);
	if (act == EGRESS_DENY) {
		char msg[CONN_HOST_MAX + 128];

		STATS_INC(errors_egress);
		snprintf(msg, sizeof(msg), "CONNECT %s:%u denied: %s", c->auth_host,
		    c->auth_port, why);
		conn_fail(c, 403, "egress_denied", msg);
		return;
	}
	c->mode = act == EGRESS_TUNNEL ? MODE_TUNNEL : MODE_INTERCEPT;
	if (c->mode == MODE_INTERCEPT) {	/* its Proxy-Tokenizer applies to each request */
		c->connect_head = c->req.head;
		memset(&c->req.head, 0, sizeof(c->req.head));
	}
	snprintf(c->up.host, sizeof(c->up.host), "%s", c->auth_host);
	c->up.port = c->auth_port;
	c->up.tls = true;
	conn_set_state(c, ST_RESOLVING);
	c->dns = egress_resolve(worker_dns(c->w), c->pol, c->auth_host, c->auth_port,
	    conn_connect_resolved, c);
}

static int conn_dial(conn_t *c);

static void
conn_tls_accept_start(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	SSL *ssl = SSL_new(worker_shared(c->w)->tls_server);
	struct bufferevent *tb;

	if (ssl == NULL || tls_server_set_fallback_name(ssl, c->auth_host) < 0) {
		SSL_free(ssl);
		conn_close(c, "TLS setup failed");
		return;
	}
	if (evbuffer_get_length(in) == 0) {
		bufferevent_free(c->cbev);
		tb = bufferevent_openssl_socket_new(worker_base(c->w), c->cfd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		c->cfd_owned = tb == NULL;
	} else {
		/* the ClientHello came with the CONNECT: keep the buffered bytes */
		tb = bufferevent_openssl_filter_new(worker_base(c->w), c->cbev, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	}
	c->cbev = tb;
	if (tb == NULL) {
		conn_close(c, "TLS setup failed");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	conn_set_state(c, ST_TLS_ACCEPT);
	bufferevent_setcb(tb, conn_client_read_cb, conn_client_write_cb,
	    conn_client_event_cb, c);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	conn_arm_timer(c, c->pol->limits.tls_timeout_ms);
}

static void
conn_client_write_cb(struct bufferevent *bev, void *arg)
{
	conn_t *c = arg;

	if (c->st == ST_CLOSING) {
		conn_closing_check(c);
		return;
	}
	if (c->st == ST_RESOLVING && c->mode == MODE_INTERCEPT && c->connect_answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		conn_tls_accept_start(c);	/* 200 flushed: the client starts TLS */
		return;
	}
	/* back-pressure: the client drained, resume reading the upstream */
	if (c->ubev && (c->st == ST_RELAY || c->st == ST_SPLICE || c->st == ST_WEBSOCKET)) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->ubev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
			conn_up_read_cb(c->ubev, c);
	}
}

static const char conn_established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

static void
conn_connect_resolved(const egress_result_t *res, void *arg)
{
	conn_t *c = arg;

	c->dns = NULL;
	if (!res->ok) {
		if (strcmp(res->code, "dns_error") == 0) {
			STATS_INC(errors_upstream);
			conn_fail(c, 502, res->code, res->msg);
		} else {
			STATS_INC(errors_egress);
			conn_fail(c, 403, res->code, res->msg);
		}
		return;
	}
	c->up.addr = res->addr;
	c->up.addrlen = res->addrlen;
	if (c->mode == MODE_TUNNEL) {
		c->up.tls = false;	/* the client speaks TLS end to end */
		if (conn_dial(c) < 0)
			conn_fail(c, 502, "upstream_error", "cannot open upstream socket");
		return;
	}
	/* intercept: answer 200, then the client's TLS handshake (conn_client_write_cb) */
	c->connect_answered = true;
	bufferevent_write(c->cbev, conn_established, sizeof(conn_established) - 1);
	bufferevent_enable(c->cbev, EV_WRITE);
}

/* --- upstream connection ---------------------------------------------------------------- */

static int
conn_dial(conn_t *c)
{
	struct event_base *base = worker_base(c->w);
	struct timeval tv;
	SSL *ssl = NULL;

	if (c->ubev) {
		bufferevent_free(c->ubev);
		c->ubev = NULL;
	}
	c->up.ready = false;
	if (c->up.tls) {
		ssl = tls_client_new(worker_shared(c->w)->tls_client, c->up.host);
		if (ssl == NULL)
			return -1;
		c->ubev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->ubev)
			bufferevent_openssl_set_allow_dirty_shutdown(c->ubev, 1);
		else
			SSL_free(ssl);
	} else
		c->ubev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->ubev == NULL)
		return -1;
	bufferevent_setcb(c->ubev, conn_up_read_cb, conn_up_write_cb, conn_up_event_cb, c);
	conn_set_state(c, ST_UP_CONNECTING);
	conn_arm_timer(c, c->pol->limits.connect_timeout_ms +
	    (c->up.tls ? c->pol->limits.tls_timeout_ms : 0));
	tv = conn_tv(c->pol->limits.upstream_timeout_ms);
	bufferevent_set_timeouts(c->ubev, &tv, NULL);
	if (bufferevent_socket_connect(c->ubev, (struct sockaddr *)&c->up.addr,
	    (int)c->up.addrlen) < 0) {
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		return -1;
	}
	conn_set_nodelay(bufferevent_getfd(c->ubev));
	return 0;
}

/* Bytes both ways from now on: a tunnel (ST_SPLICE) or a WebSocket (ST_WEBSOCKET). */
static void
conn_both_ways(conn_t *c, enum conn_state st)
{
	conn_audit(c, c->req.websocket ? 101 : 200, NULL);
	conn_set_state(c, st);
	evtimer_del(c->timer);
	bufferevent_set_timeouts(c->ubev, NULL, NULL);
	bufferevent_setcb(c->cbev, conn_client_read_cb, conn_client_write_cb,
	    conn_client_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
		conn_client_read_cb(c->cbev, c);
	if (evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
		conn_up_read_cb(c->ubev, c);
}

static void conn_send_request_head(conn_t *c);

static void
conn_up_connected(conn_t *c)
{
	evtimer_del(c->timer);
	c->up.ready = true;
	if (c->up.tls)
		STATS_INC(tls_upstream_handshakes);
	if (c->mode == MODE_TUNNEL) {
		STATS_INC(tunnels);
		bufferevent_write(c->cbev, conn_established, sizeof(conn_established) - 1);
		conn_both_ways(c, ST_SPLICE);
		return;
	}
	conn_send_request_head(c);
}

static void
conn_up_failed(conn_t *c, short what)
{
	char msg[1024], reason[256];
	SSL *ssl = c->up.tls && c->ubev ? bufferevent_openssl_get_ssl(c->ubev) : NULL;
	unsigned long e = c->ubev ? bufferevent_get_openssl_error(c->ubev) : 0;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_TIMEOUT) {
		STATS_INC(errors_timeout);
		conn_fail(c, 504, "upstream_timeout", "upstream did not answer in time");
		return;
	}
	if (ssl && tls_client_verify_error(ssl, reason, sizeof(reason))) {
		STATS_INC(tls_upstream_failures);
		snprintf(msg, sizeof(msg), "upstream %s:%u: %s", c->up.host, c->up.port, reason);
		conn_fail(c, 502, "upstream_tls", msg);
		return;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
		err = ERR_GET_REASON(e);	/* a socket error seen through OpenSSL */
	else if (e != 0 && ERR_GET_LIB(e) != 0) {	/* lib 0: libevent's SSL_ERROR_SYSCALL */
		STATS_INC(tls_upstream_failures);
		ERR_error_string_n(e, reason, sizeof(reason));
		snprintf(msg, sizeof(msg), "TLS with upstream %s:%u failed: %s", c->up.host,
		    c->up.port, reason);
		conn_fail(c, 502, "upstream_tls", msg);
		return;
	}
	STATS_INC(errors_upstream);
	snprintf(msg, sizeof(msg), "cannot connect to upstream %s:%u: %s", c->up.host,
	    c->up.port, err ? evutil_socket_error_to_string(err) : "connection closed");
	conn_fail(c, 502, "upstream_error", msg);
}

/* --- forwarding a request ---------------------------------------------------------------- */

static void conn_request_resolved(const egress_result_t *res, void *arg);

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

static void
conn_swap_env_release(swap_env_t *env)
{
	if (env->revoked)
		revoke_unref((revoke_set_t *)env->revoked);
	if (env->registry)
		registry_unref((registry_snapshot_t *)env->registry);
}

static void
conn_swap_env(conn_t *c, swap_env_t *env, swap_req_t *req)
{
	const proxy_shared_t *sh = worker_shared(c->w);

	*env = (swap_env_t){c->pol, sh->keyring, sh->handles, sh->rl, revoke_acquire(),
	    registry_acquire(), util_now_s(), util_mono_ms(),
	    c->connect_head.buf ? &c->connect_head : NULL};
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
static int
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

/* Find, authorise and plan the handle swap; answers the client itself on denial. */
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
	conn_swap_env_release(&env);
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

/*
 * An upstream for this request: the connection's own when its key matches, else one
 * from the worker's pool (no DNS, no handshake). Returns true when one is ready.
 */
static bool
conn_upstream_reuse(conn_t *c, const char *key)
{
	struct bufferevent *bev;

	if (c->ubev && c->up.ready && strcmp(c->up.key, key) == 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->ubev)) == 0)
		return true;
	conn_upstream_release(c);
	snprintf(c->up.key, sizeof(c->up.key), "%s", key);
	if ((bev = worker_pool_take(c->w, key)) == NULL)
		return false;
	c->ubev = bev;
	c->up.ready = true;
	bufferevent_setcb(bev, conn_up_read_cb, conn_up_write_cb, conn_up_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return true;
}

/* Inside an intercepted CONNECT: origin-form, Host = authority = SNI. */
static void
conn_on_inner_request(conn_t *c)
{
	char key[CONN_KEY_MAX];

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
	    conn_swap(c, c->auth_host, c->auth_port) < 0)
		return;
	plan_pool_key(&c->rq->plan, c->peer, c->auth_host, c->auth_port, true, c->proxy_token,
	    key, sizeof(key));
	if (conn_upstream_reuse(c, key)) {
		conn_send_request_head(c);
		return;
	}
	if (conn_dial(c) < 0)
		conn_fail(c, 502, "upstream_error", "cannot open upstream connection");
}

/* Absolute-form http:// request to the proxy listener. */
static void
conn_on_absolute(conn_t *c)
{
	struct http_parser_url u;
	char host[CONN_HOST_MAX], msg[CONN_HOST_MAX + 128], key[CONN_KEY_MAX];
	bool tls = false;
	const char *why, *t = c->req.head.target;
	enum egress_action act;
	uint16_t port;

	http_parser_url_init(&u);
	if (http_parser_parse_url(t, c->req.head.target_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST)) ||
	    u.field_data[UF_HOST].len >= sizeof(host)) {
		STATS_INC(errors_bad_request);
		conn_fail(c, 400, "bad_request",
		    "a proxy request needs an absolute http:// URI (or CONNECT)");
		return;
	}
	if (u.field_data[UF_SCHEMA].len != 4 || strncasecmp(t + u.field_data[UF_SCHEMA].off,
	    "http", 4) != 0) {
		conn_fail(c, 400, "bad_request", "only http:// URIs; use CONNECT for https");
		return;
	}
	memcpy(host, t + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
	host[u.field_data[UF_HOST].len] = '\0';
	for (char *p = host; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (strlen(host) > 1 && host[strlen(host) - 1] == '.')
		host[strlen(host) - 1] = '\0';	/* "example.com." names example.com */
	port = u.port ? u.port : 80;
	if (conn_check_host_header(c, host, port, 80) < 0)
		return;
	c->req.target = (u.field_set & (1 << UF_PATH)) ?
	    strndup(t + u.field_data[UF_PATH].off,
	    c->req.head.target_len - u.field_data[UF_PATH].off) : strdup("/");
	act = egress_decide(c->pol, host, port, &why);
	if (act == EGRESS_DENY) {
		STATS_INC(errors_egress);
		snprintf(msg, sizeof(msg), "%s:%u denied: %s", host, port, why);
		conn_fail(c, 403, "egress_denied", msg);
		return;
	}
	if (conn_swap(c, host, port) < 0)
		return;
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
	c->dns = egress_resolve(worker_dns(c->w), c->pol, host, port, conn_request_resolved, c);
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

static bool
conn_is_websocket(const http_head_t *h)
{
	const http_field_t *up = http_head_get(h, "Upgrade");
	const http_field_t *co = http_head_get(h, "Connection");

	return up && co && http_list_has(co->value, "upgrade") &&
	    strcasecmp(up->value, "websocket") == 0;
}

/* Bytes that carry a secret go to libevent by reference and are zeroed on release. */
static void
conn_secret_cleanup(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	util_wipe_free((void *)data);
}

/* -1 when out of memory: the caller must not send what it was writing. */
static int
conn_add_secret(struct evbuffer *out, const char *s, size_t len)
{
	char *copy = util_wipe_alloc(len ? len : 1);

	if (copy == NULL)
		return -1;
	memcpy(copy, s, len);
	if (evbuffer_add_reference(out, copy, len, conn_secret_cleanup, NULL) < 0) {
		util_wipe_free(copy);
		return -1;
	}
	return 0;
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
 * whole body (a range of it cannot be scrubbed: a secret may straddle its edges). true
 * when the field was written (or dropped) here.
 */
static bool
conn_narrow_request_field(struct evbuffer *out, const char *name, const char *v)
{
	char ae[1024];

	if (strcasecmp(name, "Range") == 0 || strcasecmp(name, "If-Range") == 0)
		return true;
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
		if (scrubbing && conn_narrow_request_field(out, f->name, v))
			continue;
		rc |= conn_write_field(out, f->name, v, e->kind[i] == EDIT_REPLACE);
	}
	for (size_t i = 0; i < e->nadd; i++)
		rc |= conn_write_field(out, e->add[i].name, e->add[i].value, true);
	return rc;
}

static void conn_body_collect_start(conn_t *c);

/* Streamed body work for this request: replacement rules or the leak tripwire. */
static int
conn_body_prepare(conn_t *c)
{
	if (plan_body_scrubber(&c->rq->plan, &c->req.rewrite) < 0)
		return -1;
	if (c->req.rewrite == NULL) {
		c->req.leak_on = true;
		leak_stream_init(&c->rq->leak);
	}
	return 0;
}

/*
 * Move a head built aside (secrets in it by wiped reference) into out as one wiped
 * block: one SSL_write, one TLS record, one write(2) instead of one per segment.
 * Frees head.
 */
static int
conn_move_head(struct evbuffer *head, struct evbuffer *out)
{
	size_t n = evbuffer_get_length(head);
	char *p = util_wipe_alloc(n ? n : 1);
	int rc = -1;

	if (p != NULL && evbuffer_copyout(head, p, n) == (ev_ssize_t)n &&
	    evbuffer_add_reference(out, p, n, conn_secret_cleanup, NULL) == 0) {
		p = NULL;
		rc = 0;
	}
	util_wipe_free(p);
	evbuffer_free(head);
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

/* After the head: the held body in one piece, or the body streaming as it comes. */
static void
conn_send_request_body(conn_t *c)
{
	struct evbuffer *out = bufferevent_get_output(c->ubev);

	if (c->req.held_whole) {
		size_t n = evbuffer_get_length(c->req.held);

		if (n && conn_add_secret(out, (char *)evbuffer_pullup(c->req.held, -1), n) < 0) {
			conn_fail(c, 503, "resource_exhausted", "out of memory");
			return;
		}
		conn_body_reset(c);
		conn_req_phase(c, REQ_SENT);
	} else
		conn_req_phase(c, c->req.head.no_body ? REQ_SENT : REQ_STREAMING);
	if (c->req.phase == REQ_STREAMING) {
		bufferevent_enable(c->cbev, EV_READ);
		if (conn_relay_request_body(c) < 0)
			return;		/* answered or closed: c may be gone */
	}
	if (c->req.phase == REQ_SENT)
		bufferevent_disable(c->cbev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
		conn_up_read_cb(c->ubev, c);
}

/* An upstream is ready: the head (a body to hold first is collected before it). */
static void
conn_send_request_head(conn_t *c)
{
	const http_head_t *h = &c->req.head;
	struct evbuffer *head;

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

/* --- request body ---------------------------------------------------------------------- */

/* Body bytes toward the upstream, framed; replaced bytes carry secrets. */
static void
conn_emit_req(void *arg, const void *data, size_t len)
{
	conn_t *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->ubev);

	if (len == 0)
		return;
	if (c->req.chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	if (c->req.rewrite) {
		if (conn_add_secret(out, data, len) < 0)
			c->req.err = 503;	/* conn_body_failed answers it */
	} else
		evbuffer_add(out, data, len);
	if (c->req.chunked)
		evbuffer_add(out, "\r\n", 2);
}

static int
conn_req_on_body(http_parser *p, const char *at, size_t len)
{
	conn_t *c = p->data;
	leak_hit_t hit;

	c->acct.bytes_up += len;
	if (c->req.phase == REQ_HOLDING) {
		if (evbuffer_get_length(c->req.held) + len > SG_BODY_BUFFER_MAX) {
			c->req.err = 413;
			return -1;
		}
		return evbuffer_add(c->req.held, at, len) < 0 ? -1 : 0;
	}
	if (c->req.leak_on && c->req.seen < SG_LEAK_SCAN_BODY_MAX) {
		c->req.seen += len;
		if (leak_stream_feed(&c->rq->leak, at, len, &hit)) {
			c->req.err = 403;
			c->req.leak_encoding = hit.encoding;
			return -1;
		}
	}
	if (c->req.rewrite)
		return scrub_feed(c->req.rewrite, at, len, conn_emit_req, c) < 0 ||
		    c->req.err ? -1 : 0;
	conn_emit_req(c, at, len);
	return 0;
}

static int
conn_req_on_complete(http_parser *p)
{
	conn_t *c = p->data;

	http_parser_pause(p, 1);
	if (c->req.phase == REQ_HOLDING) {
		c->req.held_whole = true;
		return 0;
	}
	if (c->req.rewrite && scrub_finish(c->req.rewrite, conn_emit_req, c) < 0)
		return -1;
	if (c->req.chunked)
		evbuffer_add(bufferevent_get_output(c->ubev), "0\r\n\r\n", 5);
	conn_req_phase(c, REQ_SENT);
	return 0;
}

static const http_parser_settings conn_req_body_settings = {
	.on_body = conn_req_on_body,
	.on_message_complete = conn_req_on_complete,
};

/*
 * Feed a parser with what an input buffer holds; drain what it consumed. The message's
 * end pauses the parser (on_message_complete): what follows it stays in the buffer.
 */
static int
conn_feed(http_parser *p, const http_parser_settings *s, struct evbuffer *in)
{
	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t n;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = http_parser_execute(p, s, v.iov_base, v.iov_len);
		if (HTTP_PARSER_ERRNO(p) == HPE_PAUSED) {
			http_parser_pause(p, 0);
			evbuffer_drain(in, n);
			return 0;
		}
		if (HTTP_PARSER_ERRNO(p) != HPE_OK)
			return -1;
		evbuffer_drain(in, n);
	}
	return 0;
}

static void
conn_body_failed(conn_t *c)
{
	char msg[256];

	if (c->req.err == 503) {
		conn_fail(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	if (c->req.err == 413) {
		snprintf(msg, sizeof(msg), "this request's body must be held whole (hmac "
		    "signature or a handle in the body) and is larger than %d bytes",
		    SG_BODY_BUFFER_MAX);
		conn_fail(c, 413, "body_too_large", msg);
		return;
	}
	if (c->req.err == 403) {
		log_warn("%s: possible exfiltration: handle (%s) in a request body toward %s:%u",
		    c->peer, c->req.leak_encoding, c->up.host, c->up.port);
		snprintf(msg, sizeof(msg), "a handle (%s) in the request body; no credential "
		    "lets it travel in this body", c->req.leak_encoding);
		c->rq->plan.exfiltration = true;
		conn_fail(c, 403, "handle_in_body", msg);
		return;
	}
	STATS_INC(errors_bad_request);
	conn_fail(c, 400, "bad_request", http_errno_description(HTTP_PARSER_ERRNO(&c->req.parser)));
}

static int conn_body_held(conn_t *c);

/* Returns -1 when the connection was answered/closed (c must not be used then). */
static int
conn_relay_request_body(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);

	if (c->ubev == NULL || !conn_req_body_pending(c))
		return 0;
	c->req.parser.data = c;
	if (conn_feed(&c->req.parser, &conn_req_body_settings, in) < 0) {
		conn_body_failed(c);
		return -1;
	}
	if (c->req.phase == REQ_HOLDING)
		return c->req.held_whole ? conn_body_held(c) : 0;
	if (c->req.phase == REQ_SENT) {
		bufferevent_disable(c->cbev, EV_READ);	/* next request waits its turn */
		return 0;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->ubev)) > SG_RELAY_HIGH_WATER) {
		bufferevent_disable(c->cbev, EV_READ);
		bufferevent_setwatermark(c->ubev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
	}
	return 0;
}

/* A body the plan must see whole (signing, handles in it) is collected first. */
static void
conn_body_collect_start(conn_t *c)
{
	conn_set_state(c, ST_RELAY);
	conn_req_phase(c, REQ_HOLDING);
	conn_arm_timer(c, c->pol->limits.upstream_timeout_ms);	/* the whole body, or 408 */
	c->req.held = evbuffer_new();
	if (c->req.held == NULL) {
		conn_fail(c, 500, "internal_error", "out of memory");
		return;
	}
	bufferevent_enable(c->cbev, EV_READ);
	conn_relay_request_body(c);
}

/* The held body becomes the rewritten one (wipe memory, freed with the buffer). */
static int
conn_body_replace(conn_t *c, char *body, size_t len)
{
	struct evbuffer *nb = evbuffer_new();

	if (nb == NULL || (len > 0 && evbuffer_add_reference(nb, body, len,
	    conn_secret_cleanup, NULL) < 0)) {
		if (nb)
			evbuffer_free(nb);
		util_wipe_free(body);
		return -1;
	}
	if (len == 0)
		util_wipe_free(body);
	conn_body_reset(c);		/* zeroes the old one */
	c->req.held = nb;
	c->req.held_whole = true;
	return 0;
}

/* The whole body is here: the plan finishes on it (swap_finish_body), the head goes. */
static int
conn_body_held(conn_t *c)
{
	size_t len = evbuffer_get_length(c->req.held), outlen;
	const char *body = len ? (const char *)evbuffer_pullup(c->req.held, -1) : "";
	swap_env_t env;
	swap_req_t req;
	char *out;
	int rc;

	conn_swap_env(c, &env, &req);
	rc = swap_finish_body(&env, &req, c->up.tls, &c->rq->plan, body, len, &out, &outlen);
	conn_swap_env_release(&env);
	if (conn_swap_finish(c, rc) < 0) {
		util_wipe_free(out);
		return -1;
	}
	if (out != NULL && conn_body_replace(c, out, outlen) < 0) {
		conn_fail(c, 503, "resource_exhausted", "out of memory while rewriting the body");
		return -1;
	}
	evtimer_del(c->timer);
	bufferevent_disable(c->cbev, EV_READ);
	conn_send_request_head(c);
	return -1;	/* the head path took over: callers stop here */
}

static void
conn_up_write_cb(struct bufferevent *bev, void *arg)
{
	conn_t *c = arg;

	if (c->st == ST_CLOSING) {
		conn_closing_check(c);
		return;
	}
	if (c->st != ST_RELAY && c->st != ST_SPLICE && c->st != ST_WEBSOCKET)
		return;
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (c->st == ST_SPLICE || c->st == ST_WEBSOCKET) {
		bufferevent_enable(c->cbev, EV_READ);
		return;
	}
	if (conn_req_body_pending(c)) {
		bufferevent_enable(c->cbev, EV_READ);
		conn_relay_request_body(c);
	}
}

/* --- response ---------------------------------------------------------------------------- */

/* Response body bytes to the client, framed as chosen (emit callback of scrub). */
static void
conn_emit_body(void *arg, const void *data, size_t len)
{
	conn_t *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->cbev);

	if (len == 0)
		return;
	c->acct.bytes_down += len;
	if (c->res.chunked_out)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, data, len);
	if (c->res.chunked_out)
		evbuffer_add(out, "\r\n", 2);
}

/* Decoded body bytes (or the body as it came): scrubbed on the way to the client. */
static void
conn_res_decoded(void *arg, const void *data, size_t len)
{
	conn_t *c = arg;

	if (c->scrub == NULL)
		conn_emit_body(c, data, len);
	else if (scrub_feed(c->scrub, data, len, conn_emit_body, c) < 0)
		c->res.dec_err = DECODE_NOMEM;	/* cut rather than pass on unscrubbed */
}

static int
conn_res_on_body(http_parser *p, const char *at, size_t len)
{
	conn_t *c = p->data;
	int rc;

	if (c->res.dec == NULL) {
		conn_res_decoded(c, at, len);
		return c->res.dec_err ? -1 : 0;
	}
	if ((rc = decode_feed(c->res.dec, at, len, conn_res_decoded, c)) != DECODE_OK)
		c->res.dec_err = rc;
	return c->res.dec_err ? -1 : 0;
}

/* Trailer fields arrive after the last chunk as name and value pieces: collected. */
static int
conn_res_on_trailer(http_parser *p, const char *at, size_t len, bool value)
{
	conn_t *c = p->data;

	if (c->res.trailers == NULL && (c->res.trailers = evbuffer_new()) == NULL)
		return -1;
	if (evbuffer_get_length(c->res.trailers) + len + 2 > SG_MAX_HEADER_BYTES)
		return -1;	/* as for a head: too large is malformed */
	if (value != c->res.trailer_in_value)
		evbuffer_add(c->res.trailers, value ? ":" : "\n", 1);
	c->res.trailer_in_value = value;
	return evbuffer_add(c->res.trailers, at, len);
}

static int
conn_res_on_trailer_field(http_parser *p, const char *at, size_t len)
{
	return conn_res_on_trailer(p, at, len, false);
}

static int
conn_res_on_trailer_value(http_parser *p, const char *at, size_t len)
{
	return conn_res_on_trailer(p, at, len, true);
}

/* Fields that frame, route or describe the body may not be trailers (RFC 9110 6.5.1). */
static bool
conn_trailer_allowed(const char *name, size_t len)
{
	static const char *const no[] = {"content-length", "transfer-encoding", "host",
	    "trailer", "te", "content-encoding", "content-type", "content-range",
	    "connection", "keep-alive", "upgrade", "proxy-connection", "set-cookie"};

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)name[i]) || strchr("!#$%&'*+-.^_`|~", name[i])))
			return false;
	for (size_t i = 0; i < SG_ARRAY_LEN(no); i++)
		if (strlen(no[i]) == len && strncasecmp(name, no[i], len) == 0)
			return false;
	return true;
}

/* The last chunk and the trailers (scrubbed like header values) to the client. */
static void
conn_write_trailers(conn_t *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t n = c->res.trailers ? evbuffer_get_length(c->res.trailers) : 0;
	char *p = n ? (char *)evbuffer_pullup(c->res.trailers, -1) : NULL;
	char *end = p != NULL ? p + n : NULL;

	evbuffer_add(out, "0\r\n", 3);
	while (p != NULL && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *colon;
		char *line_end = nl ? nl : end;

		colon = memchr(p, ':', (size_t)(line_end - p));
		if (colon && conn_trailer_allowed(p, (size_t)(colon - p)) &&
		    memchr(colon, '\r', (size_t)(line_end - colon)) == NULL &&
		    memchr(colon, '\0', (size_t)(line_end - colon)) == NULL) {
			char *v = colon + 1;

			while (v < line_end && (*v == ' ' || *v == '\t'))
				v++;
			evbuffer_add(out, p, (size_t)(colon - p));
			evbuffer_add(out, ": ", 2);
			conn_write_scrubbed(c, out, v, (size_t)(line_end - v));
			evbuffer_add(out, "\r\n", 2);
		}
		p = line_end + 1;
	}
	evbuffer_add(out, "\r\n", 2);
	conn_trailers_free(c);
}

static int
conn_res_on_complete(http_parser *p)
{
	conn_t *c = p->data;
	int rc;

	if (c->res.dec != NULL && (rc = decode_finish(c->res.dec, conn_res_decoded, c)) != DECODE_OK)
		c->res.dec_err = rc;
	if (c->res.dec_err)
		return -1;
	if (c->scrub && scrub_finish(c->scrub, conn_emit_body, c) < 0)
		return -1;
	if (c->res.chunked_out)
		conn_write_trailers(c);
	conn_trailers_free(c);
	conn_res_phase(c, RES_DONE);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings conn_res_body_settings = {
	.on_header_field = conn_res_on_trailer_field,
	.on_header_value = conn_res_on_trailer_value,
	.on_body = conn_res_on_body,
	.on_message_complete = conn_res_on_complete,
};

static void
conn_response_done(conn_t *c)
{
	bool sent;

	decode_free(c->res.dec);
	c->res.dec = NULL;
	c->res.recode = false;
	conn_audit(c, c->res.head.status, NULL);
	sent = c->req.phase == REQ_SENT;	/* else the upstream answered before the end */
	conn_req_phase(c, REQ_NONE);
	if (!c->res.keepalive || !sent ||
	    evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0) {	/* extra bytes: desync */
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		c->up.ready = false;
	} else
		bufferevent_set_timeouts(c->ubev, NULL, NULL);
	if (!c->req.keepalive || !sent || proxy_is_draining()) {
		conn_set_state(c, ST_CLOSING);
		bufferevent_disable(c->cbev, EV_READ);
		conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
		if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0)
			conn_close(c, "done");
		return;
	}
	conn_start_head(c);
	if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
		conn_process_head(c);	/* pipelined request */
}

/* Text from the upstream toward the client, injected secrets replaced. */
static void
conn_write_scrubbed(conn_t *c, struct evbuffer *out, const char *v, size_t len)
{
	if (c->scrub == NULL) {
		evbuffer_add(out, v, len);
		return;
	}
	if (scrub_feed(c->scrub, v, len, conn_emit_evbuffer, out) < 0 ||
	    scrub_finish(c->scrub, conn_emit_evbuffer, out) < 0)
		log_warn("%s: response head not scrubbed", c->peer);
}

/* A field that describes the encoded body: the client gets it decoded without them. */
static bool
conn_field_encoded_only(const char *name)
{
	static const char *const encoded[] = {"Content-Encoding", "Content-MD5", "Digest",
	    "Content-Digest", "Repr-Digest"};

	for (size_t i = 0; i < SG_ARRAY_LEN(encoded); i++)
		if (strcasecmp(name, encoded[i]) == 0)
			return true;
	return false;
}

/*
 * Response fields to the client; injected secrets in values become their handles. For a
 * decoded body (res_recode) the coding and digests go and a strong ETag becomes weak:
 * the client gets another representation than the one they describe.
 */
static void
conn_write_response_fields(conn_t *c, struct evbuffer *out, bool keep_length)
{
	const http_head_t *h = &c->res.head;

	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];

		if (!(keep_length && strcasecmp(f->name, "Content-Length") == 0) &&
		    http_is_hop_by_hop(h, f->name, f->name_len))
			continue;
		if (c->res.recode && conn_field_encoded_only(f->name))
			continue;
		evbuffer_add(out, f->name, f->name_len);
		evbuffer_add(out, ": ", 2);
		if (c->res.recode && strcasecmp(f->name, "ETag") == 0 && f->value[0] == '"')
			evbuffer_add(out, "W/", 2);
		conn_write_scrubbed(c, out, f->value, f->value_len);
		evbuffer_add(out, "\r\n", 2);
	}
}

/* Every Content-Encoding field of the response as one list ("gzip, br"). */
static size_t
conn_res_codings(const conn_t *c, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->res.head.nfields; i++) {
		const http_field_t *f = &c->res.head.fields[i];

		if (strcasecmp(f->name, "Content-Encoding") != 0)
			continue;
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? ", " : "",
		    f->value);
		if (n >= len)
			return len;	/* too long: decode_new refuses what is cut */
	}
	return n;
}

/*
 * A scrubbed response: a partial one (206) cannot be, a coding sealgate cannot decode
 * cannot be (502 unscrubbable_response, before anything is sent); others are decoded.
 * -1 when answered.
 */
static int
conn_res_decode_setup(conn_t *c)
{
	char codings[512], why[DECODE_WHY_MAX], msg[DECODE_WHY_MAX + 96];
	decode_limits_t lim;
	size_t n;

	c->res.recode = false;
	if (!conn_scrubbing(c))
		return 0;
	if (c->res.head.status == 206) {
		conn_fail(c, 502, "unscrubbable_response", "the upstream answered with part of "
		    "the body (206), which cannot be scrubbed whole (sealgate asks without "
		    "Range)");
		return -1;
	}
	if ((n = conn_res_codings(c, codings, sizeof(codings))) == 0)
		return 0;
	c->res.recode = true;
	decode_limits_default(&lim);
	lim.max_output = c->pol->limits.max_decoded_bytes;
	if (decode_new(codings, n, &lim, &c->res.dec, why, sizeof(why)) != DECODE_OK) {
		snprintf(msg, sizeof(msg), "the response must be scrubbed and its coding "
		    "cannot be decoded: %s", why);
		conn_fail(c, 502, "unscrubbable_response", msg);
		return -1;
	}
	if (c->res.head.no_body || c->req.head.method == HTTP_HEAD) {
		decode_free(c->res.dec);	/* no body: only the head changes */
		c->res.dec = NULL;
	}
	return 0;
}

static void
conn_write_response_head(conn_t *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	const http_head_t *h = &c->res.head;
	bool head_like = c->req.head.method == HTTP_HEAD || h->status == 304;
	bool bodyless = head_like || h->status == 204 || h->status / 100 == 1;

	conn_res_phase(c, RES_BODY);
	c->res.keepalive = h->keep_alive;
	if (proxy_is_draining())
		c->req.keepalive = false;	/* finish this answer, then close */
	evbuffer_add_printf(out, "HTTP/1.1 %u ", h->status);
	conn_write_scrubbed(c, out, h->reason, strlen(h->reason));
	evbuffer_add(out, "\r\n", 2);
	/* with scrubbing on, a GET answer is re-framed: HEAD/304 must not promise a length */
	conn_write_response_fields(c, out, head_like && c->scrub == NULL && !c->res.recode);
	c->res.chunked_out = false;
	if (h->status == 101) {
		evbuffer_add_printf(out, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	} else if (!bodyless) {
		if (h->has_length && !h->chunked && c->scrub == NULL)
			evbuffer_add_printf(out, "Content-Length: %llu\r\n",
			    (unsigned long long)h->content_length);
		else if (c->req.head.major == 1 && c->req.head.minor >= 1) {
			evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
			c->res.chunked_out = true;
		} else
			c->req.keepalive = false;	/* close-delimited for HTTP/1.0 */
	}
	if (!c->req.keepalive && h->status != 101)
		evbuffer_add_printf(out, "Connection: close\r\n");
	evbuffer_add(out, "\r\n", 2);
}

/* A response head arrived whole: 1xx, 101 upgrade, or a final response. */
static int
conn_on_response_head(conn_t *c, ssize_t hl)
{
	struct evbuffer *in = bufferevent_get_input(c->ubev);
	char *bytes = (char *)evbuffer_pullup(in, hl);
	const char *why = NULL;

	http_parser_init(&c->res.parser, HTTP_RESPONSE);
	http_head_clear(&c->res.head);
	if (bytes == NULL || http_head_parse(&c->res.parser, bytes, (size_t)hl, &c->res.head,
	    c->req.head.method, &why) < 0) {
		STATS_INC(errors_upstream);
		conn_fail(c, 502, "upstream_error", why ? why : "malformed response head");
		return -1;
	}
	evbuffer_drain(in, (size_t)hl);
	if (c->res.head.status == 101 && c->req.websocket) {
		if (http_head_get(&c->res.head, "Sec-WebSocket-Extensions") != NULL) {
			STATS_INC(errors_upstream);
			conn_fail(c, 502, "upstream_error", "the upstream accepted a WebSocket "
			    "extension that was not offered (sealgate offers none)");
			return -1;
		}
		STATS_INC(websockets);
		conn_write_response_head(c);
		conn_ws_start(c);
		return -1;	/* no more response parsing */
	}
	if (c->res.head.status / 100 == 1) {
		if (++c->res.ninterim > SG_MAX_INTERIM) {
			STATS_INC(errors_upstream);
			conn_fail(c, 502, "upstream_error", "too many interim (1xx) responses");
			return -1;
		}
		/* 100 Continue, 103 Early Hints: pass on with their fields, scrubbed */
		struct evbuffer *o = bufferevent_get_output(c->cbev);

		evbuffer_add_printf(o, "HTTP/1.1 %u ", c->res.head.status);
		conn_write_scrubbed(c, o, c->res.head.reason, strlen(c->res.head.reason));
		evbuffer_add(o, "\r\n", 2);
		conn_write_response_fields(c, o, false);
		evbuffer_add(o, "\r\n", 2);
		http_scan_init(&c->res.scan, SG_MAX_HEADER_BYTES);
		return 0;
	}
	if (c->acct.t_sent) {
		c->acct.upstream_ms = util_mono_msf() - c->acct.t_sent;
		metrics_observe_upstream_ms(c->acct.upstream_ms);
	}
	if (conn_res_decode_setup(c) < 0)
		return -1;
	conn_write_response_head(c);
	if (c->res.head.no_body) {
		conn_res_phase(c, RES_DONE);
		conn_response_done(c);
		return -1;
	}
	return 0;
}

/*
 * The response body cannot go on: malformed framing, or a body that could not be
 * decoded to be scrubbed (over the bounds, corrupt). The client gets what is queued, then
 * the connection closes before the end of the body (an incomplete transfer).
 */
static void
conn_res_cut(conn_t *c)
{
	char msg[256];

	STATS_INC(errors_upstream);
	if (c->res.dec_err == 0) {
		conn_close_after_flush(c, "malformed response body from upstream: aborted");
		return;
	}
	snprintf(msg, sizeof(msg), "response cut: %s", c->res.dec_err == DECODE_LIMIT ?
	    "its decoded body went past the bounds (limits.max_decoded_bytes, or a "
	    "compression ratio over the limit)" : c->res.dec != NULL ? decode_error(c->res.dec) :
	    "out of memory while scrubbing");
	conn_audit(c, c->res.head.status, c->res.dec_err == DECODE_LIMIT ? "decode_limit" :
	    "decode_error");
	conn_close_after_flush(c, msg);
}

static void
conn_relay_response_body(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->ubev);

	c->res.parser.data = c;
	if (conn_feed(&c->res.parser, &conn_res_body_settings, in) < 0) {
		conn_res_cut(c);
		return;
	}
	if (c->res.phase == RES_DONE) {
		conn_response_done(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) > SG_RELAY_HIGH_WATER) {
		bufferevent_disable(c->ubev, EV_READ);
		bufferevent_setwatermark(c->cbev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
	}
}

static void
conn_up_read_cb(struct bufferevent *bev, void *arg)
{
	conn_t *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	worker_note_io(c->w);
	if (c->st == ST_WEBSOCKET) {
		conn_ws_read(c, false);
		return;
	}
	if (c->st == ST_SPLICE) {
		bufferevent_write_buffer(c->cbev, in);
		if (evbuffer_get_length(bufferevent_get_output(c->cbev)) > SG_RELAY_HIGH_WATER) {
			bufferevent_disable(bev, EV_READ);
			bufferevent_setwatermark(c->cbev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
		}
		return;
	}
	if (c->st != ST_RELAY || c->req.phase == REQ_NONE) {
		if (evbuffer_get_length(in) > 0)	/* unsolicited bytes: drop the upstream */
			conn_close(c, "unsolicited upstream data");
		return;
	}
	while (c->res.phase == RES_WAITING) {
		ssize_t hl;

		if (evbuffer_get_length(bufferevent_get_output(c->cbev)) > SG_RELAY_HIGH_WATER) {
			bufferevent_disable(bev, EV_READ);	/* 1xx flood, client not reading */
			bufferevent_setwatermark(c->cbev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
			return;
		}
		hl = conn_scan_head(c, &c->res.scan, in);

		if (hl < 0) {
			STATS_INC(errors_upstream);
			conn_fail(c, 502, "upstream_error", c->res.scan.error ?
			    c->res.scan.error : "malformed response");
			return;
		}
		if (hl == 0 || conn_on_response_head(c, hl) < 0)
			return;
	}
	conn_relay_response_body(c);
}

static void
conn_up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_t *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		conn_up_connected(c);
		return;
	}
	if (c->st == ST_UP_CONNECTING) {
		conn_up_failed(c, what);
		return;
	}
	if (c->st == ST_CLOSING) {	/* a WebSocket's close frame could not all go out */
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		conn_closing_check(c);
		return;
	}
	if (c->st == ST_SPLICE || c->st == ST_WEBSOCKET) {
		/* flush what the upstream sent, then close */
		conn_set_state(c, ST_CLOSING);
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0)
			conn_close(c, "upstream closed");
		else
			conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->res.phase == RES_BODY) {
		/* read-until-close body: EOF completes it */
		c->res.parser.data = c;
		http_parser_execute(&c->res.parser, &conn_res_body_settings, NULL, 0);
		if (c->res.dec_err) {	/* a truncated compressed body */
			conn_res_cut(c);
			return;
		}
		if (c->res.phase == RES_DONE) {
			c->res.keepalive = false;
			conn_response_done(c);
			return;
		}
	}
	if (c->req.phase != REQ_NONE && c->res.phase == RES_WAITING) {
		if (what & BEV_EVENT_TIMEOUT) {
			STATS_INC(errors_timeout);
			conn_fail(c, 504, "upstream_timeout", "upstream did not answer in time");
		} else {
			STATS_INC(errors_upstream);
			conn_fail(c, 502, "upstream_error",
			    "upstream closed the connection without answering");
		}
		return;
	}
	if (c->req.phase != REQ_NONE) {
		conn_close(c, "upstream failed mid-response");
		return;
	}
	/* idle pooled upstream went away: forget it */
	bufferevent_free(c->ubev);
	c->ubev = NULL;
	c->up.ready = false;
}

/* --- WebSocket after the 101 --------------------------------------------------------- */

/* An audit line for a WebSocket event: a swapped handle, or the reason it closed. */
static void
conn_ws_audit(conn_t *c, const char *event, const char *code, const plan_t *o,
    const char *detail)
{
	audit_event_t a;

	memset(&a, 0, sizeof(a));
	a.event = event;
	a.source = c->peer;
	a.sandbox = o && o->sandbox[0] ? o->sandbox : NULL;
	a.handle_id = o && o->hid[0] ? o->hid : NULL;
	a.credential = o && o->credential[0] ? o->credential : NULL;
	a.method = "GET";
	a.host = c->req.host;
	a.port = c->req.port;
	a.path = c->req.target;
	a.status = 101;
	a.error = code;
	a.detail = detail;
	audit_log(&a);
	if (a.credential)
		metrics_count_request(a.credential, code ? "denied" : "forwarded");
}

/*
 * A handle in a client message: authorised as a GET of the upgrade's URL on the newest
 * policy, its secret scrubbed from the server's messages from now on.
 */
static int
conn_ws_swap(void *arg, const char *h, size_t n, bool binary, const char **secret,
    size_t *slen, const char **code, bool *exfiltration)
{
	conn_t *c = arg;
	policy_t *p = policy_acquire();
	swap_env_t env;
	swap_req_t req;
	plan_t out;
	int rc;

	if (p != NULL && p != c->ws_pol) {
		if (c->ws_pol)
			policy_unref(c->ws_pol);
		c->ws_pol = p;		/* the secret below lives in it */
	} else if (p != NULL)
		policy_unref(p);
	conn_swap_env(c, &env, &req);
	if (c->ws_pol)
		env.policy = c->ws_pol;
	rc = swap_frame_handle(&env, &req, h, n, binary, &out);
	conn_swap_env_release(&env);
	if (rc == 0 && plan_scrub_into(&out, c->scrub) < 0) {
		out.code = "internal_error";	/* not sent where it could not be scrubbed */
		rc = -1;
	}
	if (rc < 0) {
		*code = out.code;
		*exfiltration = out.exfiltration;
		if (out.exfiltration)
			log_warn("%s: possible exfiltration: handle %s in a WebSocket message "
			    "toward %s:%u: %s", c->peer, out.hid[0] ? out.hid : "-",
			    c->req.host, c->req.port, out.message);
		conn_ws_audit(c, out.exfiltration ? "exfiltration" : "denied", out.code, &out,
		    "websocket message");
	} else {
		*secret = out.scrub[0].secret;
		*slen = out.scrub[0].secret_len;
		conn_ws_audit(c, "request", NULL, &out, "websocket message");
	}
	plan_free(&out);
	return rc;
}

static int
conn_ws_to_server(void *arg, const void *p, size_t n, bool secret)
{
	conn_t *c = arg;
	struct evbuffer *out;

	if (c->ubev == NULL)
		return -1;
	out = bufferevent_get_output(c->ubev);
	return secret ? conn_add_secret(out, p, n) : evbuffer_add(out, p, n);
}

static int
conn_ws_to_client(void *arg, const void *p, size_t n)
{
	conn_t *c = arg;

	return evbuffer_add(bufferevent_get_output(c->cbev), p, n);
}

static void
conn_ws_mask_key(void *arg, uint8_t key[4])
{
	(void)arg;
	randombytes_buf(key, 4);
}

static const wsrelay_ops_t conn_ws_ops = {
	conn_ws_swap, conn_ws_to_server, conn_ws_to_client, conn_ws_mask_key,
};

static void
conn_ws_start(conn_t *c)
{
	/* the server's messages are scrubbed of every secret the connection injects,
	 * also of those swapped into frames later */
	if (c->scrub == NULL && (c->scrub = scrub_new(SCRUB_FORMS)) == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	if ((c->ws = wsrelay_new(c->scrub, &conn_ws_ops, c)) == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	conn_both_ways(c, ST_WEBSOCKET);
}

/* The relay closed the WebSocket (a bad frame, a refused handle): audit, flush, close. */
static void
conn_ws_closing(conn_t *c)
{
	unsigned code = 0;
	bool exfil = false;
	const char *err = wsrelay_error(c->ws, &code, &exfil);
	char detail[64];

	if (err != NULL && strcmp(err, "handle_encoded") == 0)
		conn_ws_audit(c, "exfiltration", err, NULL, "websocket message");
	else if (err != NULL && (strcmp(err, "websocket_protocol_error") == 0 ||
	    strcmp(err, "websocket_too_big") == 0)) {
		snprintf(detail, sizeof(detail), "websocket closed %u", code);
		conn_ws_audit(c, "denied", err, NULL, detail);
	}
	log_info("%s: WebSocket closed: %s", c->peer, err ? err : "done");
	conn_set_state(c, ST_CLOSING);
	bufferevent_disable(c->cbev, EV_READ);
	if (c->ubev)
		bufferevent_disable(c->ubev, EV_READ);
	conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
	conn_closing_check(c);
}

/* Bytes from one side through the relay; back-pressure as for a tunnel. */
static void
conn_ws_read(conn_t *c, bool from_client)
{
	struct bufferevent *src = from_client ? c->cbev : c->ubev;
	struct bufferevent *dst = from_client ? c->ubev : c->cbev;
	struct evbuffer *in = bufferevent_get_input(src);
	struct evbuffer_iovec v[16];
	int rc = WSRELAY_OK;

	while (rc == WSRELAY_OK && evbuffer_get_length(in) > 0) {
		int n = evbuffer_peek(in, -1, NULL, v, 16);
		size_t used = 0;

		for (int i = 0; i < n && i < 16 && rc == WSRELAY_OK; i++) {
			rc = from_client ? wsrelay_client(c->ws, v[i].iov_base, v[i].iov_len) :
			    wsrelay_server(c->ws, v[i].iov_base, v[i].iov_len);
			used += v[i].iov_len;
		}
		evbuffer_drain(in, used);
	}
	if (rc == WSRELAY_FAIL) {
		conn_close(c, "WebSocket relay failed");
		return;
	}
	if (rc == WSRELAY_CLOSE) {
		conn_ws_closing(c);
		return;
	}
	if (dst && evbuffer_get_length(bufferevent_get_output(dst)) > SG_RELAY_HIGH_WATER) {
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, SG_RELAY_LOW_WATER, 0);
	}
}

/* --- client events ------------------------------------------------------------------------ */

static void
conn_tls_accepted(conn_t *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
	const char *sni = tls_server_sni(ssl);

	STATS_INC(tls_client_handshakes);
	evtimer_del(c->timer);
	if (sni && !http_authority_equal(sni, c->auth_port, c->auth_host, c->auth_port)) {
		char msg[2 * CONN_HOST_MAX + 64];

		STATS_INC(errors_host_mismatch);
		snprintf(msg, sizeof(msg), "TLS SNI %s does not match CONNECT %s", sni,
		    c->auth_host);
		conn_fail(c, 421, "host_mismatch", msg);
		return;
	}
	conn_start_head(c);
	if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
		conn_process_head(c);
}

static void
conn_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_t *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->st == ST_TLS_ACCEPT)
			conn_tls_accepted(c);
		return;
	}
	if (c->st == ST_TLS_ACCEPT) {
		unsigned long e = bufferevent_get_openssl_error(c->cbev);
		char reason[256] = "connection closed";

		if (e)
			ERR_error_string_n(e, reason, sizeof(reason));
		STATS_INC(tls_client_failures);
		log_info("%s: client TLS handshake for %s failed: %s", c->peer, c->auth_host,
		    reason);
		conn_close(c, "client TLS failed");
		return;
	}
	if ((c->st == ST_SPLICE || c->st == ST_WEBSOCKET) && c->ubev &&
	    (what & BEV_EVENT_EOF)) {
		/* client done sending: pass on what it sent, let the upstream's answer
		 * drain to it, then close (conn_up_event_cb / the drain timer) */
		if (c->st == ST_SPLICE)
			bufferevent_write_buffer(c->ubev, bufferevent_get_input(c->cbev));
		bufferevent_disable(c->cbev, EV_READ);
		conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
		return;
	}
	conn_close(c, (what & BEV_EVENT_EOF) ? "client closed" : "client error");
}

const struct sockaddr *
conn_peer_addr(const conn_t *c)
{
	return (const struct sockaddr *)&c->peer_ss;
}

bool
conn_is_spliced(const conn_t *c)
{
	return c->st == ST_SPLICE;
}

bool
conn_has_served(const conn_t *c)
{
	return c->served;
}
