/*
 * conn_connect.c — CONNECT and the upstream connection: egress decision, the 200, the
 * client's TLS handshake on a minted leaf (intercept), dialling and verifying the
 * upstream, a pooled upstream's reuse, the tunnel splice, and upstream events.
 */

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "conn_int.h"
#include "defaults.h"
#include "egress.h"
#include "handle.h"
#include "http.h"
#include "leak.h"
#include "log.h"
#include "resolve.h"
#include "stats.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

static void conn_connect_resolved(const egress_result_t *res, void *arg);

void
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
	conn_resolve_authority(c, conn_connect_resolved);
}

/* The upstream is the authority (auth_host:auth_port, TLS): resolve it under the egress
 * rules, then cb (CONNECT and the transparent listener). */
void
conn_resolve_authority(conn_t *c, egress_cb cb)
{
	snprintf(c->up.host, sizeof(c->up.host), "%s", c->auth_host);
	c->up.port = c->auth_port;
	c->up.tls = true;
	conn_set_state(c, ST_RESOLVING);
	c->dns = egress_resolve(worker_dns(c->w), c->pol, c->auth_host, c->auth_port, cb, c);
}

void
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

void
conn_tls_accepted(conn_t *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
	const char *sni = tls_server_sni(ssl);

	STATS_INC(tls_client_handshakes);
	evtimer_del(c->timer);
	if (c->refuse_code != NULL) {	/* transparent refusal: now the client can read it */
		c->acct.t_start = util_mono_msf();
		conn_fail(c, c->refuse_status, c->refuse_code, c->refuse_msg);
		return;
	}
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

int
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
void
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

static void
conn_up_connected(conn_t *c)
{
	evtimer_del(c->timer);
	c->up.ready = true;
	if (c->up.tls)
		STATS_INC(tls_upstream_handshakes);
	if (c->mode == MODE_TUNNEL) {
		STATS_INC(tunnels);
		if (!c->transparent)	/* a redirected client sent no CONNECT */
			bufferevent_write(c->cbev, conn_established,
			    sizeof(conn_established) - 1);
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

/*
 * An upstream for this request: the connection's own when its key matches, else one
 * from the worker's pool (no DNS, no handshake). Returns true when one is ready.
 */
bool
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

void
conn_up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_t *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		conn_up_connected(c);
		return;
	}
	if (c->st == ST_IDENTITY) {	/* the kept-alive upstream went away meanwhile */
		bufferevent_free(c->ubev);
		c->ubev = NULL;
		c->up.ready = false;
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
	if ((what & BEV_EVENT_EOF) && c->res.phase == RES_BODY && conn_res_eof(c))
		return;
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
