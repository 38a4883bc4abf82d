/* httpsreq.c — one HTTPS request of sealgate's own over verified TLS, egress-checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <sodium.h>

#include "egress.h"
#include "httpsreq.h"
#include "resolve.h"
#include "secmem.h"
#include "stats.h"
#include "tls.h"

struct httpsreq {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *tls;
	const policy_t *policy;
	char host[256];
	uint16_t port;
	char peer[64];
	int timeout_s;
	char *wire;			/* wipe memory, until it is queued */
	size_t wire_len, max, read;
	httpsreq_done_fn done;
	void *arg;
	egress_req_t *resolving;
	struct bufferevent *bev;
	struct event *timer, *begin;
	http_parser parser;
	bool complete;
	char *body;			/* wipe memory */
	size_t body_len;
};

void
httpsreq_cancel(httpsreq_t *r)
{
	if (r == NULL)
		return;
	egress_cancel(r->resolving);
	if (r->bev)
		bufferevent_free(r->bev);
	if (r->timer)
		event_free(r->timer);
	if (r->begin)
		event_free(r->begin);
	secmem_wipe_free(r->wire);
	secmem_wipe_free(r->body);
	sodium_memzero(r, sizeof(*r));
	free(r);
}

/* The end: report, then free. */
static void
httpsreq_end(httpsreq_t *r, const httpsreq_result_t *res)
{
	r->done(res, r->arg);
	httpsreq_cancel(r);
}

static void
httpsreq_fail(httpsreq_t *r, const char *code, const char *detail)
{
	httpsreq_end(r, &(httpsreq_result_t){.ok = false, .status = r->parser.status_code,
	    .code = code, .detail = detail});
}

static void
httpsreq_answer(httpsreq_t *r)
{
	httpsreq_end(r, &(httpsreq_result_t){.ok = true, .status = r->parser.status_code,
	    .body = r->body ? r->body : "", .body_len = r->body_len});
}

/* --- reading the answer --------------------------------------------------------------- */

static int
httpsreq_on_body(http_parser *p, const char *at, size_t len)
{
	httpsreq_t *r = p->data;
	char *nb;

	if (r->body_len + len > r->max)
		return -1;
	if ((nb = secmem_wipe_alloc(r->body_len + len + 1)) == NULL)
		return -1;
	if (r->body != NULL)
		memcpy(nb, r->body, r->body_len);
	memcpy(nb + r->body_len, at, len);
	secmem_wipe_free(r->body);
	r->body = nb;
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int
httpsreq_on_complete(http_parser *p)
{
	httpsreq_t *r = p->data;

	r->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings httpsreq_settings = {
	.on_body = httpsreq_on_body,
	.on_message_complete = httpsreq_on_complete,
};

/* Feed what arrived (NULL, 0: the end of the stream). -1 when it cannot be an answer. */
static int
httpsreq_feed(httpsreq_t *r, const char *data, size_t len)
{
	size_t n = http_parser_execute(&r->parser, &httpsreq_settings, data, len);

	if (r->complete)
		return 0;
	return HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || n != len ? -1 : 0;
}

/* Feed what is buffered. -1 when the request failed (and is gone). */
static int
httpsreq_take(httpsreq_t *r)
{
	struct evbuffer *in = bufferevent_get_input(r->bev);

	while (!r->complete && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		r->read += v.iov_len;
		if (r->read > r->max || httpsreq_feed(r, v.iov_base, v.iov_len) < 0) {
			httpsreq_fail(r, "malformed_answer", r->read > r->max ?
			    "the answer is too large" : "not an HTTP/1.1 answer");
			return -1;
		}
		evbuffer_drain(in, v.iov_len);
	}
	return 0;
}

static void
httpsreq_read_cb(struct bufferevent *bev, void *arg)
{
	httpsreq_t *r = arg;

	(void)bev;
	if (httpsreq_take(r) == 0 && r->complete)
		httpsreq_answer(r);
}

/* --- the connection --------------------------------------------------------------------- */

/* The wire (wipe memory) goes out by reference and is zeroed once written. */
static void
httpsreq_wire_cleanup(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	secmem_wipe_free((void *)data);
}

static void
httpsreq_send(httpsreq_t *r)
{
	struct evbuffer *out = bufferevent_get_output(r->bev);

	if (evbuffer_add_reference(out, r->wire, r->wire_len, httpsreq_wire_cleanup,
	    NULL) < 0) {
		httpsreq_fail(r, "out_of_memory", "cannot queue the request");
		return;
	}
	r->wire = NULL;		/* the buffer owns it now */
	r->wire_len = 0;
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

static void
httpsreq_event_failed(httpsreq_t *r, short what)
{
	SSL *ssl = bufferevent_openssl_get_ssl(r->bev);
	unsigned long e = bufferevent_get_openssl_error(r->bev);
	int err = EVUTIL_SOCKET_ERROR();
	char reason[256];

	if (ssl != NULL && tls_client_verify_error(ssl, reason, sizeof(reason))) {
		httpsreq_fail(r, "upstream_tls", reason);
		return;
	}
	if (e != 0 && ERR_GET_LIB(e) != 0 && ERR_GET_LIB(e) != ERR_LIB_SYS) {
		ERR_error_string_n(e, reason, sizeof(reason));
		httpsreq_fail(r, "upstream_tls", reason);
		return;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
		err = ERR_GET_REASON(e);	/* a socket error seen through OpenSSL */
	snprintf(reason, sizeof(reason), "cannot connect to %s, or it closed the connection "
	    "(%s)", r->peer, (what & BEV_EVENT_EOF) ? "closed" : err ?
	    evutil_socket_error_to_string(err) : "connection failed");
	httpsreq_fail(r, "upstream_error", reason);
}

static void
httpsreq_event_cb(struct bufferevent *bev, short what, void *arg)
{
	httpsreq_t *r = arg;
	char msg[128];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		STATS_INC(tls_upstream_handshakes);
		httpsreq_send(r);
		return;
	}
	if (httpsreq_take(r) < 0)
		return;
	/* the stream ended after an answer began: close-delimited, or cut. A cut answer
	 * fails to parse (readers want the whole document), so TLS close_notify is not
	 * needed to tell the two apart */
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && r->parser.status_code != 0) {
		if (r->complete || (httpsreq_feed(r, NULL, 0) == 0 && r->complete)) {
			httpsreq_answer(r);
			return;
		}
		snprintf(msg, sizeof(msg), "%s closed the connection before the answer's end",
		    r->peer);
		httpsreq_fail(r, "upstream_error", msg);
		return;
	}
	httpsreq_event_failed(r, what);
}

static void
httpsreq_resolved(const egress_result_t *res, void *arg)
{
	httpsreq_t *r = arg;
	SSL *ssl;

	r->resolving = NULL;
	if (!res->ok) {
		httpsreq_fail(r, res->code, res->msg);
		return;
	}
	if ((ssl = tls_client_new(r->tls, r->host)) == NULL) {
		httpsreq_fail(r, "upstream_tls", "cannot set up TLS");
		return;
	}
	r->bev = bufferevent_openssl_socket_new(r->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (r->bev == NULL) {
		SSL_free(ssl);
		httpsreq_fail(r, "out_of_memory", "cannot open a connection");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(r->bev, 1);
	bufferevent_setcb(r->bev, httpsreq_read_cb, NULL, httpsreq_event_cb, r);
	if (bufferevent_socket_connect(r->bev, (const struct sockaddr *)&res->addr,
	    (int)res->addrlen) < 0)
		httpsreq_fail(r, "upstream_error", "cannot connect");
}

static void
httpsreq_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	httpsreq_t *r = arg;
	char msg[64];

	(void)fd;
	(void)what;
	snprintf(msg, sizeof(msg), "no answer within %d s", r->timeout_s);
	httpsreq_fail(r, "timeout", msg);
}

/* From the loop: check egress, resolve (then connect, send, read). */
static void
httpsreq_begin_cb(evutil_socket_t fd, short what, void *arg)
{
	httpsreq_t *r = arg;
	const char *why = NULL;
	egress_req_t *q;
	char msg[384];

	(void)fd;
	(void)what;
	if (egress_decide(r->policy, r->host, r->port, &why) == EGRESS_DENY) {
		snprintf(msg, sizeof(msg), "%s:%u denied: %s", r->host, r->port, why);
		httpsreq_fail(r, "egress_denied", msg);
		return;
	}
	/* the callback may run (and end the request) before this returns: then NULL */
	q = egress_resolve(r->dns, r->policy, r->host, r->port, httpsreq_resolved, r);
	if (q != NULL)
		r->resolving = q;
}

httpsreq_t *
httpsreq_start(struct event_base *base, struct evdns_base *dns, SSL_CTX *tls,
    const httpsreq_target_t *t, char *wire, size_t len, size_t max_response,
    int timeout_s, httpsreq_done_fn done, void *arg)
{
	struct timeval tv = {timeout_s, 0}, now = {0, 0};
	httpsreq_t *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		secmem_wipe_free(wire);
		return NULL;
	}
	*r = (httpsreq_t){.base = base, .dns = dns, .tls = tls, .policy = t->policy,
	    .port = t->port, .timeout_s = timeout_s, .wire = wire, .wire_len = len,
	    .max = max_response, .done = done, .arg = arg};
	snprintf(r->host, sizeof(r->host), "%s", t->host);
	snprintf(r->peer, sizeof(r->peer), "%s", t->peer ? t->peer : t->host);
	http_parser_init(&r->parser, HTTP_RESPONSE);
	r->parser.data = r;
	r->timer = evtimer_new(base, httpsreq_timeout_cb, r);
	r->begin = evtimer_new(base, httpsreq_begin_cb, r);
	if (r->timer == NULL || r->begin == NULL) {
		httpsreq_cancel(r);
		return NULL;
	}
	evtimer_add(r->timer, &tv);
	evtimer_add(r->begin, &now);
	return r;
}

struct evdns_base *
httpsreq_dns_new(struct event_base *base)
{
	struct evdns_base *dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);

	if (dns == NULL)	/* no resolv.conf: names resolve from /etc/hosts only */
		dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dns != NULL)
		evdns_base_load_hosts(dns, NULL);
	return dns;
}
