/*
 * conn_response.c — the upstream's answer: 1xx passed on, the final head (scrubbed, the
 * coding decoded when the body is scrubbed, 206 and undecodable codings refused), the
 * body decoded and scrubbed on the way to the client, trailers scrubbed, and the end
 * of the response (keep-alive, the next pipelined request, or close).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sodium.h>

#include "conn_int.h"
#include "decode.h"
#include "defaults.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "scrub.h"
#include "stats.h"
#include "util.h"
#include "worker.h"

static void conn_write_scrubbed(conn_t *c, struct evbuffer *out, const char *v, size_t len);

/* Trailer lines may hold secrets (scrubbed ones no more, but partial lines): zero them. */
void
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

/* Response body bytes to the client, framed as chosen (emit callback of scrub). */
static void
conn_emit_body(void *arg, const void *data, size_t len)
{
	conn_t *c = arg;

	c->acct.bytes_down += len;
	(void)conn_add_body(bufferevent_get_output(c->cbev), data, len, c->res.chunked_out,
	    false);
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
conn_write_response_fields(conn_t *c, struct evbuffer *out)
{
	const http_head_t *h = &c->res.head;

	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];

		if (http_is_hop_by_hop(h, f->name, f->name_len))
			continue;	/* Content-Length too: the framing writes it */
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
 * A scrubbed response: a partial one (206) cannot be, unless the request's AWS
 * signature made sealgate relay its Range (then an unencoded slice is scrubbed as it
 * comes); a coding sealgate cannot decode cannot be (502 unscrubbable_response, before
 * anything is sent); others are decoded. -1 when answered.
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
	n = conn_res_codings(c, codings, sizeof(codings));
	if (c->res.head.status == 206 && (!c->req.range_signed || n > 0)) {
		conn_fail(c, 502, "unscrubbable_response", c->req.range_signed ? "the upstream "
		    "answered with part of an encoded body (206 with a Content-Encoding), which "
		    "cannot be decoded to be scrubbed" : "the upstream answered with part of "
		    "the body (206), which cannot be scrubbed whole (sealgate asks without "
		    "Range)");
		return -1;
	}
	if (n == 0)
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
	enum http_frame frame;

	conn_res_phase(c, RES_BODY);
	c->res.keepalive = h->keep_alive;
	if (proxy_is_draining())
		c->req.keepalive = false;	/* finish this answer, then close */
	evbuffer_add_printf(out, "HTTP/1.1 %u ", h->status);
	conn_write_scrubbed(c, out, h->reason, strlen(h->reason));
	evbuffer_add(out, "\r\n", 2);
	conn_write_response_fields(c, out);
	frame = http_response_frame(h, head_like, c->scrub != NULL, c->res.recode,
	    c->req.head.major == 1 && c->req.head.minor >= 1);
	c->res.chunked_out = false;
	if (h->status == 101) {
		evbuffer_add_printf(out, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	} else if (frame == HTTP_FRAME_LENGTH) {
		evbuffer_add_printf(out, "Content-Length: %llu\r\n",
		    (unsigned long long)h->content_length);
	} else if (frame == HTTP_FRAME_CHUNKED) {
		evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
		c->res.chunked_out = true;
	} else if (frame == HTTP_FRAME_CLOSE)
		c->req.keepalive = false;	/* close-delimited for HTTP/1.0 */
	if (!c->req.keepalive && h->status != 101)
		evbuffer_add_printf(out, "Connection: close\r\n");
	evbuffer_add(out, "\r\n", 2);
}

/* A method whose request may be sent twice with the effect of once (RFC 9110 9.2.2). */
static bool
conn_method_idempotent(unsigned method)
{
	return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
	    method == HTTP_PUT || method == HTTP_DELETE;
}

/*
 * The upstream refused a minted token (401): the cache drops it, so the next request
 * mints a new one. An idempotent request without a body that has not been retried yet is
 * sent again with a newly minted token (the 401 and its upstream connection are dropped,
 * the client sees only the retried answer); any other gets the 401 as it is. true when
 * the request was handed to its retry (return without touching the response).
 */
static bool
conn_mint_refused(conn_t *c)
{
	const proxy_shared_t *sh = worker_shared(c->w);

	if (c->res.head.status != 401 || c->rq == NULL || c->rq->plan.mint_tok == NULL ||
	    sh->mint_cache == NULL)
		return false;
	if (mintcache_invalidate(sh->mint_cache, c->req.mint_key, c->rq->plan.mint_tok))
		log_info("%s: the upstream refused credential %s's minted token (401): the next "
		    "request mints a new one", c->peer, c->rq->plan.mint_cred->name);
	if (c->req.mint_retried || !conn_method_idempotent(c->req.head.method) ||
	    !c->req.head.no_body || c->req.phase != REQ_SENT)
		return false;
	c->req.mint_retried = true;
	STATS_INC(mint_retries);
	conn_audit(c, 401, NULL);	/* the refused attempt: its own line, retry noted */
	conn_request_retry(c);
	return true;
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
		conn_write_response_fields(c, o);
		evbuffer_add(o, "\r\n", 2);
		http_scan_init(&c->res.scan, SG_MAX_HEADER_BYTES);
		return 0;
	}
	if (conn_mint_refused(c))
		return -1;	/* sent again: this response is dropped with its upstream */
	if (c->acct.t_sent) {
		c->acct.upstream_ms = util_mono_msf() - c->acct.t_sent;
		metrics_observe_upstream_ms(c->acct.upstream_ms);
	}
	if (conn_res_decode_setup(c) < 0)
		return -1;
	conn_write_response_head(c);
	if (c->res.head.no_body) {
		if (c->res.chunked_out)	/* re-framed for scrubbing: an empty body still ends */
			evbuffer_add(bufferevent_get_output(c->cbev), "0\r\n\r\n", 5);
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

void
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

/* The upstream closed during the body: the end of a read-until-close one. true when
 * that ended the response (c may be gone). */
bool
conn_res_eof(conn_t *c)
{
	c->res.parser.data = c;
	http_parser_execute(&c->res.parser, &conn_res_body_settings, NULL, 0);
	if (c->res.dec_err) {	/* a truncated compressed body */
		conn_res_cut(c);
		return true;
	}
	if (c->res.phase == RES_DONE) {
		c->res.keepalive = false;
		conn_response_done(c);
		return true;
	}
	return false;
}
