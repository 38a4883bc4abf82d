/*
 * conn_ws.c — a WebSocket after its 101: bytes both ways through wsrelay (frames
 * parsed, handles in client messages swapped on the newest policy, server messages
 * scrubbed); the connection only wires the relay to its bufferevents.
 */

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sodium.h>

#include "audit.h"
#include "conn_int.h"
#include "defaults.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "policy.h"
#include "scrub.h"
#include "swap.h"
#include "wsrelay.h"

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
 * view (policy, revocations, registry), its secret scrubbed from the server's messages
 * from now on. The secret lives in the view's policy, which the connection keeps until
 * the next handle's swap (a rotating one in c->ws_secret, likewise).
 */
static int
conn_ws_swap(void *arg, const char *h, size_t n, bool binary, const char **secret,
    size_t *slen, const char **code, bool *exfiltration)
{
	conn_t *c = arg;
	swap_env_t env;
	swap_req_t req;
	plan_t out;
	int rc;

	if (conn_view_refresh(c) < 0) {
		*code = "no_policy";
		*exfiltration = false;
		return -1;
	}
	conn_swap_env(c, &env, &req);
	rc = swap_frame_handle(&env, &req, h, n, binary, &out);
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
		/* a rotating value outlives the plan until the relay has copied it */
		secval_unref(c->ws_secret);
		c->ws_secret = out.nlive > 0 ? secval_ref(out.live[0].val) : NULL;
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

void
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
void
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
