/*
 * conn.c — a proxy client connection's life: accept, the phases and states (each set in
 * one function), timers, the error answer, the audit line, parking an idle connection,
 * and the one close path (conn_close). The client's bufferevent callbacks dispatch on
 * the state to the other conn_*.c files; conn_int.h draws the whole path.
 */
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <sodium.h>

#include "audit.h"
#include "conn_int.h"
#include "decode.h"
#include "defaults.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "plan.h"
#include "policy.h"
#include "resolve.h"
#include "scrub.h"
#include "secmem.h"
#include "stats.h"
#include "util.h"
#include "worker.h"
#include "wsrelay.h"

static const char *const conn_state_names[] = {"head", "resolving", "identity", "tls_accept",
    "up_connecting", "relay", "splice", "websocket", "closing", "peek"};
static const char *const conn_req_names[] = {"none", "deciding", "holding", "streaming",
    "sent"};
static const char *const conn_res_names[] = {"waiting", "body", "done"};

/* The connection's state changes here only. */
void
conn_set_state(conn_t *c, enum conn_state st)
{
	if (c->st != st)
		log_debug("%s: %s -> %s", c->peer, conn_state_names[c->st],
		    conn_state_names[st]);
	c->st = st;
}

/* The request half's phase changes here only. */
void
conn_req_phase(conn_t *c, enum req_phase ph)
{
	if (c->req.phase != ph)
		log_debug("%s: request %s -> %s", c->peer, conn_req_names[c->req.phase],
		    conn_req_names[ph]);
	c->req.phase = ph;
}

/* The response half's phase changes here only. */
void
conn_res_phase(conn_t *c, enum res_phase ph)
{
	if (c->res.phase != ph)
		log_debug("%s: response %s -> %s", c->peer, conn_res_names[c->res.phase],
		    conn_res_names[ph]);
	c->res.phase = ph;
}

/* Request body bytes are still to come from the client (held, or streamed upstream). */
bool
conn_req_body_pending(const conn_t *c)
{
	return (c->req.phase == REQ_HOLDING && !c->req.held_whole) ||
	    c->req.phase == REQ_STREAMING;
}

struct timeval
conn_tv(uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	return tv;
}

void
conn_arm_timer(conn_t *c, uint64_t ms)
{
	struct timeval tv = conn_tv(ms);

	evtimer_add(c->timer, &tv);
}

/*
 * Answer the client with an error and close once it is flushed. If a response has
 * already started, the only honest thing left is to cut the connection.
 */
void
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
	conn_answer_close(c, buf, len);
	free(buf);
}

/* Answer the client with a complete response (buf: head and body; copied), drop the
 * upstream, and close once it is flushed. */
void
conn_answer_close(conn_t *c, const void *buf, size_t len)
{
	conn_set_state(c, ST_CLOSING);
	if (c->ubev) {
		bufferevent_free(c->ubev);
		c->ubev = NULL;
	}
	bufferevent_setcb(c->cbev, conn_client_read_cb, conn_client_write_cb,
	    conn_client_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	bufferevent_write(c->cbev, buf, len);
	conn_arm_timer(c, SG_DRAIN_TIMEOUT_S * 1000);
}

void
conn_fail(conn_t *c, unsigned status, const char *code, const char *msg)
{
	conn_fail_ex(c, status, code, msg, NULL);
}

/* One audit line and the metrics for the current request (once). */
void
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
	if (code == NULL && c->req.mint_retried)
		a.detail = status == 401 && c->res.phase == RES_WAITING ? "minted token refused "
		    "(401): sent again with a newly minted one" : "sent again after a 401 to its "
		    "minted token";
	audit_log(&a);
	if (c->rq->plan.credential[0])
		metrics_count_request(c->rq->plan.credential, outcome);
}

/*
 * Stop relaying, let the client read what is already queued (a response head, part of
 * a body), then close. Used when the upstream breaks a response midway.
 */
void
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
void
conn_closing_check(conn_t *c)
{
	/* a TLS filter (the ClientHello was buffered before TLS began) holds its records
	 * in the socket bufferevent under it until they are written */
	struct bufferevent *under = bufferevent_get_underlying(c->cbev);

	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0 && (c->ubev == NULL ||
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0) &&
	    (under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0))
		conn_close(c, "answered");
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
void
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
	secval_unref(c->ws_secret);
	view_release(&c->view);
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
	view_release(&c->view);
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
	case ST_IDENTITY:
		STATS_INC(errors_timeout);
		if (c->req.mint_wait)
			conn_fail(c, 502, "mint_failed", "no token from the token endpoint for "
			    "this request's credential in time");
		else
			conn_fail(c, 502, "sts_error", "no AssumeRole answer for this request's "
			    "AWS credential in time");
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

/* A client that stops reading may not hold its sockets for ever. */
static void
conn_client_write_timeout(conn_t *c)
{
	struct timeval tv = conn_tv(c->pol->limits.upstream_timeout_ms);

	bufferevent_set_timeouts(c->cbev, NULL, &tv);
}

void
conn_start_head(conn_t *c)
{
	const policy_limits_t *l = &c->pol->limits;

	http_head_clear(&c->req.head);
	http_scan_init(&c->req.scan, l->max_header_bytes ? l->max_header_bytes : SG_MAX_HEADER_BYTES);
	conn_req_phase(c, REQ_NONE);
	conn_res_phase(c, RES_WAITING);
	c->req.websocket = c->req.range_signed = c->req.mint_retried = false;
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
void
conn_set_nodelay(evutil_socket_t fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void
conn_accept(worker_t *w, int fd, const struct sockaddr *sa, socklen_t salen,
    bool transparent)
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
	if (transparent) {
		conn_transparent_start(c);
		return;
	}
	conn_start_head(c);
}

/* Feed the bytes of the head not yet scanned; returns the head length or 0 / -1. */
ssize_t
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

void
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
	case ST_PEEK:
		conn_transparent_peek(c);
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

void
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

void
conn_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_t *c = arg;

	(void)bev;
	if (c->st == ST_PEEK) {		/* gone before its ClientHello was complete */
		conn_close(c, "client closed");
		return;
	}
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

/* scrub emit callback: append to an evbuffer */
void
conn_emit_evbuffer(void *arg, const void *data, size_t len)
{
	evbuffer_add(arg, data, len);
}

/* Bytes that carry a secret go to libevent by reference and are zeroed on release. */
void
conn_secret_cleanup(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	secmem_wipe_free((void *)data);
}

/* -1 when out of memory: the caller must not send what it was writing. */
int
conn_add_secret(struct evbuffer *out, const char *s, size_t len)
{
	char *copy = secmem_wipe_alloc(len ? len : 1);

	if (copy == NULL)
		return -1;
	memcpy(copy, s, len);
	if (evbuffer_add_reference(out, copy, len, conn_secret_cleanup, NULL) < 0) {
		secmem_wipe_free(copy);
		return -1;
	}
	return 0;
}

/*
 * One piece of a body to out, as a chunk when chunked; secret: the bytes carry a secret
 * (by wiped reference). -1 when out of memory (the piece was not added).
 */
int
conn_add_body(struct evbuffer *out, const void *data, size_t len, bool chunked, bool secret)
{
	int rc;

	if (len == 0)
		return 0;
	if (chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	rc = secret ? conn_add_secret(out, data, len) : evbuffer_add(out, data, len);
	if (chunked)
		evbuffer_add(out, "\r\n", 2);
	return rc;
}

/*
 * Move a head built aside (secrets in it by wiped reference) into out as one wiped
 * block: one SSL_write, one TLS record, one write(2) instead of one per segment.
 * Frees head.
 */
int
conn_move_head(struct evbuffer *head, struct evbuffer *out)
{
	size_t n = evbuffer_get_length(head);
	char *p = secmem_wipe_alloc(n ? n : 1);
	int rc = -1;

	if (p != NULL && evbuffer_copyout(head, p, n) == (ev_ssize_t)n &&
	    evbuffer_add_reference(out, p, n, conn_secret_cleanup, NULL) == 0) {
		p = NULL;
		rc = 0;
	}
	secmem_wipe_free(p);
	evbuffer_free(head);
	return rc;
}

/*
 * Feed a parser with what an input buffer holds; drain what it consumed. The message's
 * end pauses the parser (on_message_complete): what follows it stays in the buffer.
 */
int
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

/* Does every response on this connection get scrubbed (a secret was injected on it)? */
bool
conn_scrubbing(const conn_t *c)
{
	return c->scrub != NULL && scrub_needles(c->scrub) > 0;
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
