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
	swap_out_t swap;		/* the current request's handle swap */
	leak_stream_t leak;		/* handle scan of a streamed request body */
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
	/* the upstream this connection talks to */
	char up_host[CONN_HOST_MAX];
	uint16_t up_port;
	bool up_tls, up_ready;
	char up_key[CONN_KEY_MAX];	/* pool key of the upstream connection */
	struct sockaddr_storage up_addr;
	socklen_t up_addrlen;

	http_head_t connect_head;	/* the intercepted CONNECT (its Proxy-Tokenizer) */

	/* request being relayed */
	struct conn_work *rq;		/* NULL only while parked */
	http_scan_t scan;
	http_parser reqp;
	http_head_t req;
	bool req_active, req_done, req_chunked;
	bool client_keepalive;
	char *req_target;		/* origin-form target sent upstream */
	bool upgrading;
	char proxy_token[256];		/* from Proxy-Authorization (CONNECT or request) */
	char swap_host[CONN_HOST_MAX];	/* where this request goes (for body handles) */
	uint16_t swap_port;
	struct evbuffer *bodybuf;	/* body held whole (swap.buffer_body) */
	bool body_buffering, body_ready;
	scrub_t *body_scrub;		/* handle/placeholder -> secret in a streamed body */
	bool body_leak_on;		/* scan the streamed body for handles */
	uint64_t body_seen;
	unsigned body_err;		/* 413 / 403 found while relaying the body */
	const char *leak_encoding;
	scrub_t *scrub;			/* injected secrets -> handles, for responses */
	struct conn_scrubbed {
		const char *secret;	/* in the policy snapshot */
		uint64_t tag;		/* the handle it is scrubbed back to */
	} scrubbed[INJECT_MAX_HANDLES * 4];	/* pairs already in scrub */
	size_t nscrubbed;

	/* accounting for the audit line and metrics */
	double t_start, t_sent;		/* monotonic ms: head parsed, head sent upstream */
	double upstream_ms;		/* head sent -> response head */
	uint64_t bytes_up, bytes_down;	/* body bytes each way */
	bool audited;			/* this request's line is written */

	/* response being relayed */
	http_scan_t rscan;
	http_parser resp;
	http_head_t res;
	bool res_head_done, res_done, res_started, res_chunked_out;
	unsigned ninterim;		/* 1xx answers relayed for this request */
	bool connect_answered;		/* the CONNECT's 200 is queued (TLS may start) */
	bool up_keepalive;
	bool park_due;			/* idle: the timer parks before it closes */
	bool served;			/* a request head was read (conn_has_served) */

	/* a scrubbed response whose Content-Encoding sealgate decodes (the client gets the
	 * body decoded, the head's coding, digests and strong ETag rewritten) */
	decode_t *dec;			/* NULL: identity, or no scrubbing */
	bool res_recode;		/* the head is rewritten for a decoded body */
	int dec_err;			/* a decode_rc that cut the body */

	/* trailer fields of a chunked response, collected until its end */
	struct evbuffer *trailers;	/* "name: value\n" lines as received */
	bool trailer_in_value;		/* the last piece was a value */

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
	if (c->res_started || c->st == ST_SPLICE || c->st == ST_WEBSOCKET ||
	    c->st == ST_CLOSING || c->cbev == NULL) {
		conn_close(c, code);
		return;
	}
	buf = http_error_format(status, code, msg, true, extra, &len);
	if (buf == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	c->st = ST_CLOSING;
	c->res_started = true;
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

	if (c->audited || c->t_start == 0 || c->rq == NULL)
		return;
	c->audited = true;
	if (code) {
		ev = status == 429 ? (c->rq->swap.brute_force ? "brute_force" : "rate_limited") :
		    c->rq->swap.exfiltration ? "exfiltration" : "denied";
		outcome = status == 429 ? "rate_limited" : status >= 500 ? "upstream_error" :
		    "denied";
	}
	if (c->req.buf)
		snprintf(method, sizeof(method), "%s", http_method_str(c->req.method));
	snprintf(host, sizeof(host), "%s", c->swap_host[0] ? c->swap_host :
	    c->auth_host[0] ? c->auth_host : c->up_host);
	memset(&a, 0, sizeof(a));
	a.event = ev;
	a.sandbox = c->rq->swap.sandbox[0] ? c->rq->swap.sandbox : NULL;
	a.origin_sandbox = c->rq->swap.origin[0] ? c->rq->swap.origin : NULL;
	a.source = c->peer;
	a.handle_id = c->rq->swap.hid[0] ? c->rq->swap.hid : NULL;
	a.credential = c->rq->swap.credential[0] ? c->rq->swap.credential : NULL;
	a.method = method;
	a.host = host;
	a.port = c->swap_port ? c->swap_port : c->auth_port ? c->auth_port : c->up_port;
	a.path = c->req_target ? c->req_target : (c->req.buf && c->req.method !=
	    HTTP_CONNECT ? c->req.target : NULL);
	a.status = (int)status;
	a.error = code;
	a.bytes_up = c->bytes_up;
	a.bytes_down = c->bytes_down;
	a.upstream_ms = c->upstream_ms;
	a.total_ms = util_mono_msf() - c->t_start;
	a.detail = code && c->rq->swap.detail[0] ? c->rq->swap.detail : NULL;
	audit_log(&a);
	if (c->rq->swap.credential[0])
		metrics_count_request(c->rq->swap.credential, outcome);
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
	if (c->bodybuf) {
		size_t n = evbuffer_get_length(c->bodybuf);
		unsigned char *p = n ? evbuffer_pullup(c->bodybuf, -1) : NULL;

		if (p)
			sodium_memzero(p, n);
		evbuffer_free(c->bodybuf);
		c->bodybuf = NULL;
	}
	scrub_free(c->body_scrub);
	c->body_scrub = NULL;
	c->body_buffering = c->body_ready = c->body_leak_on = false;
	c->body_seen = 0;
	c->body_err = 0;
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
	if (c->trailers != NULL) {
		size_t n = evbuffer_get_length(c->trailers);
		unsigned char *p = n ? evbuffer_pullup(c->trailers, -1) : NULL;

		if (p)
			sodium_memzero(p, n);
		evbuffer_free(c->trailers);
		c->trailers = NULL;
	}
	c->trailer_in_value = false;
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
	c->st = ST_CLOSING;
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
	swap_out_free(&c->rq->swap);
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
	return c->ubev && c->up_ready && c->up_keepalive && !c->req_active &&
	    !c->upgrading && c->mode != MODE_TUNNEL && c->st != ST_SPLICE &&
	    c->st != ST_WEBSOCKET &&
	    c->up_key[0] && evbuffer_get_length(bufferevent_get_input(c->ubev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0;
}

/* Let go of the upstream: into the worker's pool when reusable, else closed. */
static void
conn_upstream_release(conn_t *c)
{
	if (c->ubev == NULL)
		return;
	if (conn_upstream_reusable(c))
		worker_pool_put(c->w, c->up_key, c->ubev);
	else
		bufferevent_free(c->ubev);
	c->ubev = NULL;
	c->up_ready = false;
}

bool
conn_is_idle(const conn_t *c)
{
	return c->st == ST_HEAD && c->scan.total == 0 &&
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
	http_head_clear(&c->req);
	http_head_clear(&c->res);
	http_head_clear(&c->connect_head);
	free(c->req_target);
	conn_work_free(c);
	conn_body_reset(c);
	conn_trailers_free(c);
	decode_free(c->dec);
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
	http_head_clear(&c->req);
	http_head_clear(&c->res);
	free(c->req_target);
	c->req_target = NULL;
	conn_work_free(c);
	scrub_free(c->scrub);
	c->scrub = NULL;
	c->nscrubbed = 0;
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
		if (c->scan.total > 0) {
			STATS_INC(errors_timeout);
			conn_fail(c, 408, "request_timeout",
			    "the request head did not arrive in time");
		} else if (c->park_due)
			conn_park(c);
		else
			conn_close(c, "idle");
		return;
	case ST_RELAY:
		if (c->body_buffering) {
			STATS_INC(errors_timeout);
			conn_fail(c, 408, "request_timeout",
			    "the request body did not arrive in time");
			return;
		}
		conn_close(c, "timeout");
		return;
	case ST_UP_CONNECTING:
		STATS_INC(errors_timeout);
		conn_fail(c, 504, "upstream_timeout", c->up_tls ?
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

	http_head_clear(&c->req);
	http_scan_init(&c->scan, l->max_header_bytes ? l->max_header_bytes : SG_MAX_HEADER_BYTES);
	c->req_active = false;
	c->req_done = false;
	c->upgrading = false;
	c->res_head_done = c->res_done = c->res_started = false;
	conn_body_reset(c);
	c->t_start = c->t_sent = 0;
	c->upstream_ms = 0;
	c->bytes_up = c->bytes_down = 0;
	c->audited = false;
	c->swap_host[0] = '\0';
	c->swap_port = 0;
	free(c->req_target);
	c->req_target = NULL;
	c->st = ST_HEAD;
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
		if (c->req_active && !c->req_done)
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
	swap_out_free(&c->rq->swap);	/* it borrows from the old snapshot */
	memset(&c->rq->swap, 0, sizeof(c->rq->swap));
	c->nscrubbed = 0;		/* pointers into the old snapshot: forget them */
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
	pa = http_head_get(&c->req, "Proxy-Authorization");
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
	snprintf(c->rq->swap.sandbox, sizeof(c->rq->swap.sandbox), "%s", e->id);
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

	if (c->scan.total == 0 && evbuffer_get_length(in) > 0)
		conn_arm_timer(c, c->pol->limits.header_timeout_ms);
	hl = conn_scan_head(c, &c->scan, in);
	if (hl < 0) {
		STATS_INC(errors_bad_request);
		conn_fail(c, 400, "bad_request", c->scan.error ? c->scan.error : "malformed");
		return;
	}
	if (hl == 0)
		return;
	evtimer_del(c->timer);
	bytes = (char *)evbuffer_pullup(in, hl);
	http_parser_init(&c->reqp, HTTP_REQUEST);
	if (bytes == NULL || http_head_parse(&c->reqp, bytes, (size_t)hl, &c->req, HTTP_GET,
	    &why) < 0) {
		evbuffer_drain(in, (size_t)hl);
		STATS_INC(errors_bad_request);
		conn_fail(c, 400, "bad_request", why ? why : "malformed request head");
		return;
	}
	evbuffer_drain(in, (size_t)hl);
	STATS_INC(requests_total);
	c->t_start = util_mono_msf();
	conn_policy_refresh(c);
	conn_take_proxy_token(c);
	c->served = true;
	if (conn_refuse_suspended(c))
		return;
	c->req_active = true;
	c->client_keepalive = c->req.keep_alive;
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

	if (memmem(c->req.target, c->req.target_len, HANDLE_PREFIX, HANDLE_PREFIX_LEN) ||
	    leak_scan(c->req.target, c->req.target_len, &hit)) {
		/* a handle must not leave as a DNS name or TLS SNI */
		log_warn("%s: possible exfiltration: a handle in a CONNECT authority", c->peer);
		c->rq->swap.exfiltration = true;
		conn_fail(c, 403, "handle_in_authority", "a handle in the CONNECT authority");
		return;
	}
	if (http_split_authority(c->req.target, c->req.target_len, c->auth_host,
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
		c->connect_head = c->req;
		memset(&c->req, 0, sizeof(c->req));
	}
	snprintf(c->up_host, sizeof(c->up_host), "%s", c->auth_host);
	c->up_port = c->auth_port;
	c->up_tls = true;
	c->st = ST_RESOLVING;
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
	c->st = ST_TLS_ACCEPT;
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
	c->up_addr = res->addr;
	c->up_addrlen = res->addrlen;
	if (c->mode == MODE_TUNNEL) {
		c->up_tls = false;	/* the client speaks TLS end to end */
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
	c->up_ready = false;
	if (c->up_tls) {
		ssl = tls_client_new(worker_shared(c->w)->tls_client, c->up_host);
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
	c->st = ST_UP_CONNECTING;
	conn_arm_timer(c, c->pol->limits.connect_timeout_ms +
	    (c->up_tls ? c->pol->limits.tls_timeout_ms : 0));
	tv = conn_tv(c->pol->limits.upstream_timeout_ms);
	bufferevent_set_timeouts(c->ubev, &tv, NULL);
	if (bufferevent_socket_connect(c->ubev, (struct sockaddr *)&c->up_addr,
	    (int)c->up_addrlen) < 0) {
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
	conn_audit(c, c->upgrading ? 101 : 200, NULL);
	c->st = st;
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
	c->up_ready = true;
	if (c->up_tls)
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
	SSL *ssl = c->up_tls && c->ubev ? bufferevent_openssl_get_ssl(c->ubev) : NULL;
	unsigned long e = c->ubev ? bufferevent_get_openssl_error(c->ubev) : 0;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_TIMEOUT) {
		STATS_INC(errors_timeout);
		conn_fail(c, 504, "upstream_timeout", "upstream did not answer in time");
		return;
	}
	if (ssl && tls_client_verify_error(ssl, reason, sizeof(reason))) {
		STATS_INC(tls_upstream_failures);
		snprintf(msg, sizeof(msg), "upstream %s:%u: %s", c->up_host, c->up_port, reason);
		conn_fail(c, 502, "upstream_tls", msg);
		return;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
		err = ERR_GET_REASON(e);	/* a socket error seen through OpenSSL */
	else if (e != 0 && ERR_GET_LIB(e) != 0) {	/* lib 0: libevent's SSL_ERROR_SYSCALL */
		STATS_INC(tls_upstream_failures);
		ERR_error_string_n(e, reason, sizeof(reason));
		snprintf(msg, sizeof(msg), "TLS with upstream %s:%u failed: %s", c->up_host,
		    c->up_port, reason);
		conn_fail(c, 502, "upstream_tls", msg);
		return;
	}
	STATS_INC(errors_upstream);
	snprintf(msg, sizeof(msg), "cannot connect to upstream %s:%u: %s", c->up_host,
	    c->up_port, err ? evutil_socket_error_to_string(err) : "connection closed");
	conn_fail(c, 502, "upstream_error", msg);
}

/* --- forwarding a request ---------------------------------------------------------------- */

static void conn_request_resolved(const egress_result_t *res, void *arg);

/* Which handle a secret is scrubbed back to (FNV-1a of the handle text). */
static uint64_t
conn_scrub_tag(const swap_scrub_t *sc)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < sc->handle_len; i++)
		h = (h ^ (unsigned char)sc->handle[i]) * 1099511628211ull;
	return h;
}

/* The scrubber already maps this secret to this handle: nothing to add. */
static bool
conn_scrub_known(const conn_t *c, const char *secret, uint64_t tag)
{
	for (size_t j = 0; j < c->nscrubbed; j++)
		if (c->scrubbed[j].secret == secret && c->scrubbed[j].tag == tag)
			return true;
	return false;
}

/* Remember (secret, handle) so the next request with the same pair skips scrub_add. A
 * full table only costs the skip: the scrubber itself always holds every secret. */
static void
conn_scrub_remember(conn_t *c, const char *secret, uint64_t tag)
{
	for (size_t j = 0; j < c->nscrubbed; j++)
		if (c->scrubbed[j].secret == secret) {
			c->scrubbed[j].tag = tag;
			return;
		}
	if (c->nscrubbed < SG_ARRAY_LEN(c->scrubbed))
		c->scrubbed[c->nscrubbed++] = (struct conn_scrubbed){secret, tag};
}

/* Add the secrets this request injects to the connection's response scrubber. */
/* Tokenizer secrets come back as a fixed marker (there is no handle to show). */
static int
conn_scrub_add_tokenizer(conn_t *c)
{
	static const char mark[] = TOKENIZER_SCRUB_TEXT;

	for (size_t i = 0; i < c->rq->swap.tk.nscrub; i++) {
		const tokenizer_scrub_t *t = &c->rq->swap.tk.scrub[i];

		if (c->scrub == NULL && (c->scrub = scrub_new(SCRUB_FORMS)) == NULL)
			return -1;
		if (scrub_add(c->scrub, t->secret, t->len, mark, sizeof(mark) - 1) < 0)
			return -1;
	}
	return 0;
}

static int
conn_scrub_add(conn_t *c)
{
	if (conn_scrub_add_tokenizer(c) < 0)
		return -1;
	for (size_t i = 0; i < c->rq->swap.nscrub; i++) {
		const swap_scrub_t *sc = &c->rq->swap.scrub[i];
		uint64_t tag = conn_scrub_tag(sc);

		if (conn_scrub_known(c, sc->secret, tag))
			continue;
		if (c->scrub == NULL && (c->scrub = scrub_new(SCRUB_FORMS)) == NULL)
			return -1;
		/* a secret seen before with another handle: scrub_add swaps its replacement;
		 * its encoded forms (the Basic and query encodings among them) come with it */
		if (scrub_add(c->scrub, sc->secret, sc->secret_len, sc->handle,
		    sc->handle_len) < 0)
			return -1;
		conn_scrub_remember(c, sc->secret, tag);
	}
	return 0;
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
	*req = (swap_req_t){&c->req, c->req_target, c->swap_host, c->swap_port,
	    (const struct sockaddr *)&c->peer_ss, c->proxy_token[0] ? c->proxy_token : NULL,
	    NULL, 0};
}

/* A denied swap: log a possible exfiltration, answer the client. Always -1. */
static int
conn_swap_denied(conn_t *c)
{
	if (c->rq->swap.exfiltration)
		log_warn("%s: possible exfiltration: handle %s toward %s:%u: %s", c->peer,
		    c->rq->swap.hid[0] ? c->rq->swap.hid : "-", c->swap_host, c->swap_port,
		    c->rq->swap.message);
	conn_fail_ex(c, c->rq->swap.status, c->rq->swap.code, c->rq->swap.message,
	    c->rq->swap.extra[0] ? c->rq->swap.extra : NULL);
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

	snprintf(c->swap_host, sizeof(c->swap_host), "%s", host);
	c->swap_port = port;
	swap_out_free(&c->rq->swap);
	conn_swap_env(c, &env, &req);
	rc = swap_request(&env, &req, &c->rq->swap);
	conn_swap_env_release(&env);
	return conn_swap_finish(c, rc);
}

/* Handles found in a held body. */
static int
conn_swap_body(conn_t *c, const char *body, size_t len)
{
	swap_env_t env;
	swap_req_t req;
	int rc;

	conn_swap_env(c, &env, &req);
	rc = swap_body(&env, &req, body, len, &c->rq->swap);
	conn_swap_env_release(&env);
	return conn_swap_finish(c, rc);
}

static int
conn_check_host_header(conn_t *c, const char *host, uint16_t port, uint16_t defport)
{
	const http_field_t *hf = http_head_get(&c->req, "Host");
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

/* who|host|port|tls|credentials, credentials sorted. */
static void
conn_pool_key(conn_t *c, const char *host, uint16_t port, bool tls, char *key, size_t len)
{
	const char *names[INJECT_MAX_HANDLES];
	size_t n = 0, off;

	for (size_t i = 0; i < c->rq->swap.nscrub && n < INJECT_MAX_HANDLES; i++) {
		const char *nm = c->rq->swap.scrub[i].cred->name;
		size_t j = n++;

		while (j > 0 && strcmp(names[j - 1], nm) > 0) {
			names[j] = names[j - 1];
			j--;
		}
		names[j] = nm;
	}
	off = (size_t)snprintf(key, len, "%s|%s|%u|%d", c->rq->swap.sandbox[0] ? c->rq->swap.sandbox :
	    c->peer, host, port, tls);
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(key + off, len - off, "|%s", names[i]);
	if (c->rq->swap.tk.n > 0 && off < len)
		off += (size_t)snprintf(key + off, len - off, "|tk:%s", c->rq->swap.tk.id);
	if (c->rq->swap.sandbox[0] == '\0' && c->proxy_token[0] && off < len) {
		/* sandboxes behind one address are told apart by their proxy token */
		unsigned char h[8];
		char hex[17];

		crypto_generichash(h, sizeof(h), (const unsigned char *)c->proxy_token,
		    strlen(c->proxy_token), NULL, 0);
		util_hex_encode(h, sizeof(h), hex);
		snprintf(key + off, len - off, "|pt:%s", hex);
	}
}

/*
 * An upstream for this request: the connection's own when its key matches, else one
 * from the worker's pool (no DNS, no handshake). Returns true when one is ready.
 */
static bool
conn_upstream_reuse(conn_t *c, const char *key)
{
	struct bufferevent *bev;

	if (c->ubev && c->up_ready && strcmp(c->up_key, key) == 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->ubev)) == 0)
		return true;
	conn_upstream_release(c);
	snprintf(c->up_key, sizeof(c->up_key), "%s", key);
	if ((bev = worker_pool_take(c->w, key)) == NULL)
		return false;
	c->ubev = bev;
	c->up_ready = true;
	bufferevent_setcb(bev, conn_up_read_cb, conn_up_write_cb, conn_up_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return true;
}

/* Inside an intercepted CONNECT: origin-form, Host = authority = SNI. */
static void
conn_on_inner_request(conn_t *c)
{
	char key[CONN_KEY_MAX];

	if (c->req.method == HTTP_CONNECT) {
		conn_fail(c, 400, "bad_request", "CONNECT inside an intercepted tunnel");
		return;
	}
	if (c->req.target[0] != '/') {
		struct http_parser_url u;
		char h[CONN_HOST_MAX];

		http_parser_url_init(&u);
		if (http_parser_parse_url(c->req.target, c->req.target_len, 0, &u) != 0 ||
		    !(u.field_set & (1 << UF_HOST)) ||
		    u.field_data[UF_HOST].len >= sizeof(h)) {
			conn_fail(c, 400, "bad_request", "request-target must be origin-form");
			return;
		}
		memcpy(h, c->req.target + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
		h[u.field_data[UF_HOST].len] = '\0';
		if (!http_authority_equal(h, u.port ? u.port : 443, c->auth_host, c->auth_port)) {
			STATS_INC(errors_host_mismatch);
			conn_fail(c, 421, "host_mismatch", "request URI does not match CONNECT");
			return;
		}
		c->req_target = strndup(c->req.target + u.field_data[UF_PATH].off,
		    (size_t)(c->req.target_len - u.field_data[UF_PATH].off));
	} else
		c->req_target = strdup(c->req.target);
	if (conn_check_host_header(c, c->auth_host, c->auth_port, 443) < 0 ||
	    conn_swap(c, c->auth_host, c->auth_port) < 0)
		return;
	conn_pool_key(c, c->auth_host, c->auth_port, true, key, sizeof(key));
	if (conn_upstream_reuse(c, key)) {
		conn_send_request_head(c);
		return;
	}
	if (conn_dial(c) < 0)
		conn_fail(c, 502, "upstream_error", "cannot open upstream connection");
}

/* Secrets travel over plain http only where each credential says so. */
static bool
conn_plain_allowed(const conn_t *c)
{
	for (size_t i = 0; i < c->rq->swap.nscrub; i++)
		if (!c->rq->swap.scrub[i].cred->allow_plain_http)
			return false;
	return true;
}

/* Absolute-form http:// request to the proxy listener. */
static void
conn_on_absolute(conn_t *c)
{
	struct http_parser_url u;
	char host[CONN_HOST_MAX], msg[CONN_HOST_MAX + 128], key[CONN_KEY_MAX];
	bool tls = false;
	const char *why, *t = c->req.target;
	enum egress_action act;
	uint16_t port;

	http_parser_url_init(&u);
	if (http_parser_parse_url(t, c->req.target_len, 0, &u) != 0 ||
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
	c->req_target = (u.field_set & (1 << UF_PATH)) ?
	    strndup(t + u.field_data[UF_PATH].off,
	    c->req.target_len - u.field_data[UF_PATH].off) : strdup("/");
	act = egress_decide(c->pol, host, port, &why);
	if (act == EGRESS_DENY) {
		STATS_INC(errors_egress);
		snprintf(msg, sizeof(msg), "%s:%u denied: %s", host, port, why);
		conn_fail(c, 403, "egress_denied", msg);
		return;
	}
	if (conn_swap(c, host, port) < 0)
		return;
	if (c->rq->swap.tk.n > 0) {
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
	} else if (c->rq->swap.nscrub > 0 && !conn_plain_allowed(c)) {
		conn_fail(c, 403, "plain_http_denied", "this credential may not travel over "
		    "plain http; use https");
		return;
	}
	conn_pool_key(c, host, port, tls, key, sizeof(key));
	snprintf(c->up_host, sizeof(c->up_host), "%s", host);
	c->up_port = port;
	c->up_tls = tls;
	if (conn_upstream_reuse(c, key)) {
		conn_send_request_head(c);
		return;
	}
	c->st = ST_RESOLVING;
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
	c->up_addr = res->addr;
	c->up_addrlen = res->addrlen;
	if (conn_dial(c) < 0)
		conn_fail(c, 502, "upstream_error", "cannot open upstream connection");
}

static void
conn_forward_request(conn_t *c)
{
	if (c->mode == MODE_INTERCEPT)
		conn_on_inner_request(c);
	else if (c->req.method == HTTP_CONNECT)
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
	const http_head_t *h = &c->req;
	const inject_edits_t *e = &c->rq->swap.edits;
	bool scrubbing = conn_scrubbing(c);
	int rc = 0;

	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];
		const char *v = inject_field_value(h, e, i);

		if (v == NULL || http_is_hop_by_hop(h, f->name, f->name_len) ||
		    strcasecmp(f->name, "Proxy-Tokenizer") == 0 ||
		    (c->upgrading && strcasecmp(f->name, "Sec-WebSocket-Extensions") == 0))
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
	if (c->rq->swap.nbody == 0 && c->rq->swap.tk.nbody == 0) {
		c->body_leak_on = true;
		leak_stream_init(&c->rq->leak);
		return 0;
	}
	if ((c->body_scrub = scrub_new(SCRUB_LITERAL)) == NULL)
		return -1;
	for (size_t i = 0; i < c->rq->swap.tk.nbody; i++) {
		const tokenizer_body_t *b = &c->rq->swap.tk.body[i];

		if (scrub_add(c->body_scrub, b->placeholder, b->placeholder_len, b->token,
		    b->token_len) < 0)
			return -1;
	}
	for (size_t i = 0; i < c->rq->swap.nbody; i++) {
		const swap_scrub_t *b = &c->rq->swap.body[i];
		const char *ph = b->cred->inject.placeholder;

		if (scrub_add(c->body_scrub, b->handle, b->handle_len, b->secret,
		    b->secret_len) < 0 || (ph && *ph && scrub_add(c->body_scrub, ph,
		    strlen(ph), b->secret, b->secret_len) < 0))
			return -1;
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

static void
conn_send_request_head(conn_t *c)
{
	struct evbuffer *out = bufferevent_get_output(c->ubev), *head;
	const http_head_t *h = &c->req;
	struct timeval tv = conn_tv(c->pol->limits.upstream_timeout_ms);
	const char *target = c->rq->swap.edits.target ? c->rq->swap.edits.target : c->req_target;
	int rc = 0;

	if (c->rq->swap.buffer_body && !h->no_body && !c->body_ready) {
		conn_body_collect_start(c);
		return;
	}
	if (!c->body_ready && !h->no_body && conn_body_prepare(c) < 0) {
		conn_fail(c, 500, "internal_error", "cannot set up body replacement");
		return;
	}
	c->st = ST_RELAY;
	c->upgrading = h->upgrade && conn_is_websocket(h);
	if ((head = evbuffer_new()) == NULL) {
		conn_fail(c, 503, "resource_exhausted", "out of memory while writing the request");
		return;
	}
	evbuffer_add_printf(head, "%s ", http_method_str(h->method));
	if (c->rq->swap.edits.target)
		rc |= conn_add_secret(head, target, strlen(target));
	else
		evbuffer_add(head, target, strlen(target));
	evbuffer_add(head, " HTTP/1.1\r\n", 11);
	rc |= conn_write_request_fields(c, head);
	c->req_chunked = !c->body_ready && (h->chunked || c->body_scrub != NULL);
	if (c->body_ready)
		evbuffer_add_printf(head, "Content-Length: %zu\r\n",
		    evbuffer_get_length(c->bodybuf));
	else if (c->req_chunked)
		evbuffer_add_printf(head, "Transfer-Encoding: chunked\r\n");
	else if (h->has_length && !h->no_body)
		evbuffer_add_printf(head, "Content-Length: %llu\r\n",
		    (unsigned long long)h->content_length);
	if (c->upgrading)
		evbuffer_add_printf(head, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	evbuffer_add(head, "\r\n", 2);
	if (rc != 0 || conn_move_head(head, out) < 0) {	/* conn_move_head frees head */
		if (rc != 0)
			evbuffer_free(head);
		conn_fail(c, 503, "resource_exhausted", "out of memory while writing the request");
		return;
	}
	STATS_INC(requests_forwarded);
	c->t_sent = util_mono_msf();

	/* the response side */
	http_head_clear(&c->res);
	http_scan_init(&c->rscan, SG_MAX_HEADER_BYTES);
	c->res_head_done = c->res_done = c->res_started = false;
	c->ninterim = 0;
	c->dec_err = 0;
	bufferevent_set_timeouts(c->ubev, &tv, NULL);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);

	if (c->body_ready) {
		size_t n = evbuffer_get_length(c->bodybuf);

		if (n && conn_add_secret(out, (char *)evbuffer_pullup(c->bodybuf, -1), n) < 0) {
			conn_fail(c, 503, "resource_exhausted", "out of memory");
			return;
		}
		conn_body_reset(c);
		c->req_done = true;
	} else
		c->req_done = h->no_body;
	if (!c->req_done) {
		bufferevent_enable(c->cbev, EV_READ);
		if (conn_relay_request_body(c) < 0)
			return;		/* answered or closed: c may be gone */
	}
	if (c->req_done)
		bufferevent_disable(c->cbev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
		conn_up_read_cb(c->ubev, c);
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
	if (c->req_chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	if (c->body_scrub) {
		if (conn_add_secret(out, data, len) < 0)
			c->body_err = 503;	/* conn_body_failed answers it */
	} else
		evbuffer_add(out, data, len);
	if (c->req_chunked)
		evbuffer_add(out, "\r\n", 2);
}

static int
conn_req_on_body(http_parser *p, const char *at, size_t len)
{
	conn_t *c = p->data;
	leak_hit_t hit;

	c->bytes_up += len;
	if (c->body_buffering) {
		if (evbuffer_get_length(c->bodybuf) + len > SG_BODY_BUFFER_MAX) {
			c->body_err = 413;
			return -1;
		}
		return evbuffer_add(c->bodybuf, at, len) < 0 ? -1 : 0;
	}
	if (c->body_leak_on && c->body_seen < SG_LEAK_SCAN_BODY_MAX) {
		c->body_seen += len;
		if (leak_stream_feed(&c->rq->leak, at, len, &hit)) {
			c->body_err = 403;
			c->leak_encoding = hit.encoding;
			return -1;
		}
	}
	if (c->body_scrub)
		return scrub_feed(c->body_scrub, at, len, conn_emit_req, c) < 0 ||
		    c->body_err ? -1 : 0;
	conn_emit_req(c, at, len);
	return 0;
}

static int
conn_req_on_complete(http_parser *p)
{
	conn_t *c = p->data;

	http_parser_pause(p, 1);
	if (c->body_buffering) {
		c->body_ready = true;
		return 0;
	}
	if (c->body_scrub && scrub_finish(c->body_scrub, conn_emit_req, c) < 0)
		return -1;
	if (c->req_chunked)
		evbuffer_add(bufferevent_get_output(c->ubev), "0\r\n\r\n", 5);
	c->req_done = true;
	return 0;
}

static const http_parser_settings conn_req_body_settings = {
	.on_body = conn_req_on_body,
	.on_message_complete = conn_req_on_complete,
};

/* Feed a parser with what an input buffer holds; drain what it consumed. */
static int
conn_feed(http_parser *p, const http_parser_settings *s, struct evbuffer *in, bool *stop)
{
	while (evbuffer_get_length(in) > 0 && !*stop) {
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

	if (c->body_err == 503) {
		conn_fail(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	if (c->body_err == 413) {
		snprintf(msg, sizeof(msg), "this request's body must be held whole (hmac "
		    "signature or a handle in the body) and is larger than %d bytes",
		    SG_BODY_BUFFER_MAX);
		conn_fail(c, 413, "body_too_large", msg);
		return;
	}
	if (c->body_err == 403) {
		log_warn("%s: possible exfiltration: handle (%s) in a request body toward %s:%u",
		    c->peer, c->leak_encoding, c->up_host, c->up_port);
		snprintf(msg, sizeof(msg), "a handle (%s) in the request body; no credential "
		    "lets it travel in this body", c->leak_encoding);
		c->rq->swap.exfiltration = true;
		conn_fail(c, 403, "handle_in_body", msg);
		return;
	}
	STATS_INC(errors_bad_request);
	conn_fail(c, 400, "bad_request", http_errno_description(HTTP_PARSER_ERRNO(&c->reqp)));
}

static int conn_body_buffered(conn_t *c);

/* Returns -1 when the connection was answered/closed (c must not be used then). */
static int
conn_relay_request_body(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	bool *stop = c->body_buffering ? &c->body_ready : &c->req_done;

	if (c->ubev == NULL || *stop)
		return 0;
	c->reqp.data = c;
	if (conn_feed(&c->reqp, &conn_req_body_settings, in, stop) < 0) {
		conn_body_failed(c);
		return -1;
	}
	if (c->body_buffering)
		return c->body_ready ? conn_body_buffered(c) : 0;
	if (c->req_done) {
		bufferevent_disable(c->cbev, EV_READ);	/* next request waits its turn */
		return 0;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->ubev)) > SG_RELAY_HIGH_WATER) {
		bufferevent_disable(c->cbev, EV_READ);
		bufferevent_setwatermark(c->ubev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
	}
	return 0;
}

static void
conn_body_collect_start(conn_t *c)
{
	c->st = ST_RELAY;
	c->body_buffering = true;
	conn_arm_timer(c, c->pol->limits.upstream_timeout_ms);	/* the whole body, or 408 */
	c->bodybuf = evbuffer_new();
	if (c->bodybuf == NULL) {
		conn_fail(c, 500, "internal_error", "out of memory");
		return;
	}
	bufferevent_enable(c->cbev, EV_READ);
	conn_relay_request_body(c);
}

/* Apply body rules to the held body: a new buffer replaces it (the old is zeroed). */
static int
conn_body_rewrite(conn_t *c, const char *body, size_t len)
{
	struct evbuffer *nb;

	if (c->rq->swap.nbody == 0 && c->rq->swap.tk.nbody == 0)
		return 0;
	if (conn_body_prepare(c) < 0 || (nb = evbuffer_new()) == NULL)
		return -1;
	if (scrub_feed(c->body_scrub, body, len, conn_emit_evbuffer, nb) < 0 ||
	    scrub_finish(c->body_scrub, conn_emit_evbuffer, nb) < 0) {
		evbuffer_free(nb);
		return -1;
	}
	scrub_free(c->body_scrub);
	c->body_scrub = NULL;
	sodium_memzero((void *)body, len);
	evbuffer_free(c->bodybuf);
	c->bodybuf = nb;
	return 0;
}

/* The whole body is here: find handles in it, rewrite, sign, then send the head. */
static int
conn_body_buffered(conn_t *c)
{
	size_t len = evbuffer_get_length(c->bodybuf);
	const char *body = len ? (const char *)evbuffer_pullup(c->bodybuf, -1) : "";
	leak_hit_t hit;
	char msg[128];

	c->body_buffering = false;
	if (leak_scan(body, len, &hit)) {
		snprintf(msg, sizeof(msg), "a handle in encoded form (%s) in the request body",
		    hit.encoding);
		c->rq->swap.exfiltration = true;
		conn_fail(c, 403, "handle_encoded", msg);
		return -1;
	}
	if (conn_swap_body(c, body, len) < 0)
		return -1;
	if (!c->up_tls && !conn_plain_allowed(c)) {	/* body handles are known only now */
		conn_fail(c, 403, "plain_http_denied", "this credential may not travel over "
		    "plain http; use https");
		return -1;
	}
	if (conn_body_rewrite(c, body, len) < 0) {
		conn_fail(c, 500, "internal_error", "cannot rewrite the request body");
		return -1;
	}
	if (c->rq->swap.hmac_cred) {
		const policy_credential_t *cr = c->rq->swap.hmac_cred;
		size_t n = evbuffer_get_length(c->bodybuf);
		char *v = inject_hmac_value(cr, n ? evbuffer_pullup(c->bodybuf, -1) : (void *)"",
		    n);

		if (v == NULL || inject_edits_set_header(&c->req, &c->rq->swap.edits,
		    cr->inject.name ? cr->inject.name : "Authorization", v) < 0) {
			conn_fail(c, 500, "internal_error", "cannot sign the request body");
			return -1;
		}
	}
	if (c->rq->swap.tk.hmac.set) {
		size_t n = evbuffer_get_length(c->bodybuf);
		char *v = tokenizer_hmac_value(&c->rq->swap.tk, n ? evbuffer_pullup(c->bodybuf, -1) :
		    (void *)"", n);

		if (v == NULL || inject_edits_set_header(&c->req, &c->rq->swap.edits,
		    c->rq->swap.tk.hmac.dst, v) < 0) {
			conn_fail(c, 500, "internal_error", "cannot sign the request body");
			return -1;
		}
	}
	c->body_ready = true;
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
	if (c->req_active && !c->req_done) {
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
	c->bytes_down += len;
	if (c->res_chunked_out)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, data, len);
	if (c->res_chunked_out)
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
		c->dec_err = DECODE_NOMEM;	/* cut rather than pass on unscrubbed */
}

static int
conn_res_on_body(http_parser *p, const char *at, size_t len)
{
	conn_t *c = p->data;
	int rc;

	if (c->dec == NULL) {
		conn_res_decoded(c, at, len);
		return c->dec_err ? -1 : 0;
	}
	if ((rc = decode_feed(c->dec, at, len, conn_res_decoded, c)) != DECODE_OK)
		c->dec_err = rc;
	return c->dec_err ? -1 : 0;
}

/* Trailer fields arrive after the last chunk as name and value pieces: collected. */
static int
conn_res_on_trailer(http_parser *p, const char *at, size_t len, bool value)
{
	conn_t *c = p->data;

	if (c->trailers == NULL && (c->trailers = evbuffer_new()) == NULL)
		return -1;
	if (evbuffer_get_length(c->trailers) + len + 2 > SG_MAX_HEADER_BYTES)
		return -1;	/* as for a head: too large is malformed */
	if (value != c->trailer_in_value)
		evbuffer_add(c->trailers, value ? ":" : "\n", 1);
	c->trailer_in_value = value;
	return evbuffer_add(c->trailers, at, len);
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
	size_t n = c->trailers ? evbuffer_get_length(c->trailers) : 0;
	char *p = n ? (char *)evbuffer_pullup(c->trailers, -1) : NULL;
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

	if (c->dec != NULL && (rc = decode_finish(c->dec, conn_res_decoded, c)) != DECODE_OK)
		c->dec_err = rc;
	if (c->dec_err)
		return -1;
	if (c->scrub && scrub_finish(c->scrub, conn_emit_body, c) < 0)
		return -1;
	if (c->res_chunked_out)
		conn_write_trailers(c);
	conn_trailers_free(c);
	c->res_done = true;
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
	decode_free(c->dec);
	c->dec = NULL;
	c->res_recode = false;
	conn_audit(c, c->res.status, NULL);
	c->req_active = false;
	if (!c->up_keepalive || !c->req_done ||
	    evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0) {	/* extra bytes: desync */
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		c->up_ready = false;
	} else
		bufferevent_set_timeouts(c->ubev, NULL, NULL);
	if (!c->client_keepalive || !c->req_done || proxy_is_draining()) {
		c->st = ST_CLOSING;
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
	const http_head_t *h = &c->res;

	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];

		if (!(keep_length && strcasecmp(f->name, "Content-Length") == 0) &&
		    http_is_hop_by_hop(h, f->name, f->name_len))
			continue;
		if (c->res_recode && conn_field_encoded_only(f->name))
			continue;
		evbuffer_add(out, f->name, f->name_len);
		evbuffer_add(out, ": ", 2);
		if (c->res_recode && strcasecmp(f->name, "ETag") == 0 && f->value[0] == '"')
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
	for (size_t i = 0; i < c->res.nfields; i++) {
		const http_field_t *f = &c->res.fields[i];

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

	c->res_recode = false;
	if (!conn_scrubbing(c))
		return 0;
	if (c->res.status == 206) {
		conn_fail(c, 502, "unscrubbable_response", "the upstream answered with part of "
		    "the body (206), which cannot be scrubbed whole (sealgate asks without "
		    "Range)");
		return -1;
	}
	if ((n = conn_res_codings(c, codings, sizeof(codings))) == 0)
		return 0;
	c->res_recode = true;
	decode_limits_default(&lim);
	lim.max_output = c->pol->limits.max_decoded_bytes;
	if (decode_new(codings, n, &lim, &c->dec, why, sizeof(why)) != DECODE_OK) {
		snprintf(msg, sizeof(msg), "the response must be scrubbed and its coding "
		    "cannot be decoded: %s", why);
		conn_fail(c, 502, "unscrubbable_response", msg);
		return -1;
	}
	if (c->res.no_body || c->req.method == HTTP_HEAD) {
		decode_free(c->dec);	/* no body: only the head changes */
		c->dec = NULL;
	}
	return 0;
}

static void
conn_write_response_head(conn_t *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	const http_head_t *h = &c->res;
	bool head_like = c->req.method == HTTP_HEAD || h->status == 304;
	bool bodyless = head_like || h->status == 204 || h->status / 100 == 1;

	c->res_started = true;
	c->up_keepalive = h->keep_alive;
	if (proxy_is_draining())
		c->client_keepalive = false;	/* finish this answer, then close */
	evbuffer_add_printf(out, "HTTP/1.1 %u ", h->status);
	conn_write_scrubbed(c, out, h->reason, strlen(h->reason));
	evbuffer_add(out, "\r\n", 2);
	/* with scrubbing on, a GET answer is re-framed: HEAD/304 must not promise a length */
	conn_write_response_fields(c, out, head_like && c->scrub == NULL && !c->res_recode);
	c->res_chunked_out = false;
	if (h->status == 101) {
		evbuffer_add_printf(out, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	} else if (!bodyless) {
		if (h->has_length && !h->chunked && c->scrub == NULL)
			evbuffer_add_printf(out, "Content-Length: %llu\r\n",
			    (unsigned long long)h->content_length);
		else if (c->req.major == 1 && c->req.minor >= 1) {
			evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
			c->res_chunked_out = true;
		} else
			c->client_keepalive = false;	/* close-delimited for HTTP/1.0 */
	}
	if (!c->client_keepalive && h->status != 101)
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

	http_parser_init(&c->resp, HTTP_RESPONSE);
	http_head_clear(&c->res);
	if (bytes == NULL || http_head_parse(&c->resp, bytes, (size_t)hl, &c->res,
	    c->req.method, &why) < 0) {
		STATS_INC(errors_upstream);
		conn_fail(c, 502, "upstream_error", why ? why : "malformed response head");
		return -1;
	}
	evbuffer_drain(in, (size_t)hl);
	if (c->res.status == 101 && c->upgrading) {
		if (http_head_get(&c->res, "Sec-WebSocket-Extensions") != NULL) {
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
	if (c->res.status / 100 == 1) {
		if (++c->ninterim > SG_MAX_INTERIM) {
			STATS_INC(errors_upstream);
			conn_fail(c, 502, "upstream_error", "too many interim (1xx) responses");
			return -1;
		}
		/* 100 Continue, 103 Early Hints: pass on with their fields, scrubbed */
		struct evbuffer *o = bufferevent_get_output(c->cbev);

		evbuffer_add_printf(o, "HTTP/1.1 %u ", c->res.status);
		conn_write_scrubbed(c, o, c->res.reason, strlen(c->res.reason));
		evbuffer_add(o, "\r\n", 2);
		conn_write_response_fields(c, o, false);
		evbuffer_add(o, "\r\n", 2);
		http_scan_init(&c->rscan, SG_MAX_HEADER_BYTES);
		return 0;
	}
	if (c->t_sent) {
		c->upstream_ms = util_mono_msf() - c->t_sent;
		metrics_observe_upstream_ms(c->upstream_ms);
	}
	if (conn_res_decode_setup(c) < 0)
		return -1;
	conn_write_response_head(c);
	c->res_head_done = true;
	if (c->res.no_body) {
		c->res_done = true;
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
	if (c->dec_err == 0) {
		conn_close_after_flush(c, "malformed response body from upstream: aborted");
		return;
	}
	snprintf(msg, sizeof(msg), "response cut: %s", c->dec_err == DECODE_LIMIT ?
	    "its decoded body went past the bounds (limits.max_decoded_bytes, or a "
	    "compression ratio over the limit)" : c->dec != NULL ? decode_error(c->dec) :
	    "out of memory while scrubbing");
	conn_audit(c, c->res.status, c->dec_err == DECODE_LIMIT ? "decode_limit" :
	    "decode_error");
	conn_close_after_flush(c, msg);
}

static void
conn_relay_response_body(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->ubev);

	c->resp.data = c;
	if (conn_feed(&c->resp, &conn_res_body_settings, in, &c->res_done) < 0) {
		conn_res_cut(c);
		return;
	}
	if (c->res_done) {
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
	if (c->st != ST_RELAY || !c->req_active) {
		if (evbuffer_get_length(in) > 0)	/* unsolicited bytes: drop the upstream */
			conn_close(c, "unsolicited upstream data");
		return;
	}
	while (!c->res_head_done) {
		ssize_t hl;

		if (evbuffer_get_length(bufferevent_get_output(c->cbev)) > SG_RELAY_HIGH_WATER) {
			bufferevent_disable(bev, EV_READ);	/* 1xx flood, client not reading */
			bufferevent_setwatermark(c->cbev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
			return;
		}
		hl = conn_scan_head(c, &c->rscan, in);

		if (hl < 0) {
			STATS_INC(errors_upstream);
			conn_fail(c, 502, "upstream_error", c->rscan.error ?
			    c->rscan.error : "malformed response");
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
		c->st = ST_CLOSING;
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0)
			conn_close(c, "upstream closed");
		else
			conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->res_head_done && !c->res_done) {
		/* read-until-close body: EOF completes it */
		c->resp.data = c;
		http_parser_execute(&c->resp, &conn_res_body_settings, NULL, 0);
		if (c->dec_err) {	/* a truncated compressed body */
			conn_res_cut(c);
			return;
		}
		if (c->res_done) {
			c->up_keepalive = false;
			conn_response_done(c);
			return;
		}
	}
	if (c->req_active && !c->res_started) {
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
	if (c->req_active) {
		conn_close(c, "upstream failed mid-response");
		return;
	}
	/* idle pooled upstream went away: forget it */
	bufferevent_free(c->ubev);
	c->ubev = NULL;
	c->up_ready = false;
}

/* --- WebSocket after the 101 --------------------------------------------------------- */

/* An audit line for a WebSocket event: a swapped handle, or the reason it closed. */
static void
conn_ws_audit(conn_t *c, const char *event, const char *code, const swap_out_t *o,
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
	a.host = c->swap_host;
	a.port = c->swap_port;
	a.path = c->req_target;
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
	swap_out_t out;
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
	if (rc == 0 && scrub_add(c->scrub, out.scrub[0].secret, out.scrub[0].secret_len, h,
	    n) < 0) {
		out.code = "internal_error";	/* not sent where it could not be scrubbed */
		rc = -1;
	}
	if (rc < 0) {
		*code = out.code;
		*exfiltration = out.exfiltration;
		if (out.exfiltration)
			log_warn("%s: possible exfiltration: handle %s in a WebSocket message "
			    "toward %s:%u: %s", c->peer, out.hid[0] ? out.hid : "-",
			    c->swap_host, c->swap_port, out.message);
		conn_ws_audit(c, out.exfiltration ? "exfiltration" : "denied", out.code, &out,
		    "websocket message");
	} else {
		*secret = out.scrub[0].secret;
		*slen = out.scrub[0].secret_len;
		conn_ws_audit(c, "request", NULL, &out, "websocket message");
	}
	swap_out_free(&out);
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
	c->st = ST_CLOSING;
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
