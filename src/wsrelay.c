/*
 * wsrelay.c — WebSocket frames after the 101: parse (wsframe), swap handles from the
 * client (handle_stream, the swap callback), scrub secrets from the server (scrub),
 * frame again.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "handle.h"
#include "leak.h"
#include "wsframe.h"
#include "wsrelay.h"

/* One direction: its parser and the message payload waiting to be framed. */
struct wsdir {
	wsframe_parser_t p;
	bool to_server;			/* frames toward the server are masked */
	uint8_t msg_opcode;		/* TEXT or BINARY of the message relayed, 0: none */
	bool started;			/* a frame of it went out: the next is a continuation */
	bool secret;			/* the waiting bytes hold an injected secret */
	bool closed;			/* its close frame was relayed */
	unsigned char *buf;		/* WSFRAME_HEADER_MAX bytes of room, then the payload */
	size_t len, cap;		/* payload bytes waiting; capacity after the room */
	uint64_t messages;
};

struct wsrelay {
	const wsrelay_ops_t *ops;
	void *arg;
	scrub_t *scrub;			/* server -> client (borrowed) */
	scrub_t *ctl;			/* a copy of it for control payloads */
	struct wsdir c2s, s2c;
	handle_stream_t hs;		/* handles in the client's message */
	leak_stream_t leak;		/* encoded handles in it */
	bool binary;			/* the client's message is binary */
	bool in_control;		/* swapping into ctlbuf, not the message */
	bool failed;			/* closed on an error: input is ignored */
	int rc;				/* WSRELAY_FAIL once a callback failed */
	const char *err;
	unsigned err_code;
	bool exfiltration;
	uint64_t swapped;
	/* a control frame's payload as it will be sent (cut at WSFRAME_CONTROL_MAX) */
	unsigned char ctlbuf[WSFRAME_CONTROL_MAX];
	size_t ctllen;
};

wsrelay_t *
wsrelay_new(scrub_t *scrub, const wsrelay_ops_t *ops, void *arg)
{
	wsrelay_t *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->ops = ops;
	r->arg = arg;
	r->scrub = scrub;
	wsframe_parser_init(&r->c2s.p, WSFRAME_FROM_CLIENT);
	wsframe_parser_init(&r->s2c.p, WSFRAME_FROM_SERVER);
	r->c2s.to_server = true;
	handle_stream_init(&r->hs);
	return r;
}

static void
wsdir_free(struct wsdir *d)
{
	if (d->buf != NULL) {
		sodium_memzero(d->buf, WSFRAME_HEADER_MAX + d->cap);
		free(d->buf);
	}
	wsframe_parser_wipe(&d->p);
}

void
wsrelay_free(wsrelay_t *r)
{
	if (r == NULL)
		return;
	wsdir_free(&r->c2s);
	wsdir_free(&r->s2c);
	handle_stream_reset(&r->hs);
	scrub_free(r->ctl);
	sodium_memzero(r, sizeof(*r));
	free(r);
}

/* --- output -------------------------------------------------------------------------- */

static void
wsdir_out(wsrelay_t *r, struct wsdir *d, const void *p, size_t n, bool secret)
{
	int rc = d->to_server ? r->ops->to_server(r->arg, p, n, secret) :
	    r->ops->to_client(r->arg, p, n);

	if (rc < 0)
		r->rc = WSRELAY_FAIL;
}

/* Append payload bytes waiting to be framed. */
static void
wsdir_append(wsrelay_t *r, struct wsdir *d, const void *p, size_t n)
{
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		unsigned char *nb;

		while (cap < d->len + n)
			cap *= 2;
		if ((nb = malloc(WSFRAME_HEADER_MAX + cap)) == NULL) {
			r->rc = WSRELAY_FAIL;
			return;
		}
		if (d->buf != NULL) {
			memcpy(nb + WSFRAME_HEADER_MAX, d->buf + WSFRAME_HEADER_MAX, d->len);
			sodium_memzero(d->buf, WSFRAME_HEADER_MAX + d->cap);
			free(d->buf);
		}
		d->buf = nb;
		d->cap = cap;
	}
	memcpy(d->buf + WSFRAME_HEADER_MAX + d->len, p, n);
	d->len += n;
}

/* One frame: header right before the payload in buf, masked toward the server. */
static void
wsdir_frame(wsrelay_t *r, struct wsdir *d, unsigned opcode, bool fin, unsigned char *pl,
    size_t n, bool secret)
{
	uint8_t hdr[WSFRAME_HEADER_MAX], key[4];
	size_t hl;

	if (d->to_server)
		r->ops->mask_key(r->arg, key);
	hl = wsframe_header(hdr, opcode, fin, n, d->to_server ? key : NULL);
	if (hl == 0) {
		r->rc = WSRELAY_FAIL;
		return;
	}
	if (d->to_server && n > 0)
		wsframe_mask(pl, n, key, 0);
	memcpy(pl - hl, hdr, hl);
	wsdir_out(r, d, pl - hl, hl + n, secret);
}

/* Frame what the message has waiting; fin: the message is complete. */
static void
wsdir_flush(wsrelay_t *r, struct wsdir *d, bool fin)
{
	unsigned char room[WSFRAME_HEADER_MAX];

	if (d->msg_opcode == 0 || (!fin && d->len == 0))
		return;
	wsdir_frame(r, d, d->started ? WSFRAME_OP_CONT : d->msg_opcode, fin,
	    d->buf != NULL ? d->buf + WSFRAME_HEADER_MAX : room + WSFRAME_HEADER_MAX,
	    d->len, d->secret);
	if (d->buf != NULL)
		sodium_memzero(d->buf, WSFRAME_HEADER_MAX + d->len);
	d->len = 0;
	d->secret = false;
	d->started = !fin;
	if (fin) {
		d->msg_opcode = 0;
		d->messages++;
	}
}

/* A control frame, between whole frames of the message under way. */
static void
wsdir_control(wsrelay_t *r, struct wsdir *d, unsigned opcode, const unsigned char *pl,
    size_t n, bool secret)
{
	unsigned char f[WSFRAME_HEADER_MAX + WSFRAME_CONTROL_MAX];

	wsdir_flush(r, d, false);
	memcpy(f + WSFRAME_HEADER_MAX, pl, n);
	wsdir_frame(r, d, opcode, true, f + WSFRAME_HEADER_MAX, n, secret);
	sodium_memzero(f, sizeof(f));
}

/*
 * Close both sides after an error: code (1002, 1008, 1009) to the side at fault, 1001
 * to the other. Returns WSRELAY_CLOSE.
 */
static int
wsrelay_fail(wsrelay_t *r, bool client_at_fault, unsigned code, const char *err,
    bool exfiltration)
{
	uint8_t f[WSFRAME_CLOSE_MAX], key[4];
	size_t n;

	if (r->failed)
		return WSRELAY_CLOSE;
	r->failed = true;
	r->err = err;
	r->err_code = client_at_fault ? code : WSFRAME_CLOSE_GOING_AWAY;
	r->exfiltration = exfiltration;
	if (!r->s2c.closed && (n = wsframe_close(f, r->err_code, err, strlen(err), NULL)) > 0)
		wsdir_out(r, &r->s2c, f, n, false);
	r->ops->mask_key(r->arg, key);
	if (!r->c2s.closed && (n = wsframe_close(f, client_at_fault ?
	    WSFRAME_CLOSE_GOING_AWAY : code, err, strlen(err), key)) > 0)
		wsdir_out(r, &r->c2s, f, n, false);
	r->s2c.closed = r->c2s.closed = true;
	return r->rc < 0 ? r->rc : WSRELAY_CLOSE;
}

/* --- client -> server: handles ------------------------------------------------------- */

/* Bytes of a control payload (cut where they would not fit a control frame). */
static void
ctl_append(wsrelay_t *r, const void *p, size_t n)
{
	size_t room = sizeof(r->ctlbuf) - r->ctllen;

	if (n > room)
		n = room;
	memcpy(r->ctlbuf + r->ctllen, p, n);
	r->ctllen += n;
}

static void
c2s_append(wsrelay_t *r, const void *p, size_t n)
{
	if (r->in_control)
		ctl_append(r, p, n);
	else
		wsdir_append(r, &r->c2s, p, n);
}

static int
c2s_text_cb(void *arg, const char *p, size_t n)
{
	wsrelay_t *r = arg;

	c2s_append(r, p, n);
	return r->rc;
}

static int
c2s_handle_cb(void *arg, const char *h, size_t n)
{
	wsrelay_t *r = arg;
	const char *secret = NULL, *code = "handle_malformed";
	size_t sl = 0;
	bool exfil = false;

	if (n > SG_HANDLE_MAX_LEN || r->ops->swap(r->arg, h, n, r->binary, &secret, &sl,
	    &code, &exfil) < 0) {
		r->err = code;
		r->exfiltration = exfil;
		return 1;
	}
	c2s_append(r, secret, sl);
	r->c2s.secret |= !r->in_control;
	r->swapped++;
	return r->rc;
}

/* Payload of the client's message: encoded handles refused, raw ones swapped. */
static int
c2s_payload(wsrelay_t *r, const uint8_t *p, size_t n, bool end)
{
	leak_hit_t hit;
	int rc = 0;

	if ((n > 0 && leak_stream_feed(&r->leak, p, n, &hit)) ||
	    (end && leak_stream_finish(&r->leak, &hit)))
		return wsrelay_fail(r, true, WSFRAME_CLOSE_POLICY, "handle_encoded", true);
	if (n > 0)
		rc = handle_stream_feed(&r->hs, p, n, c2s_text_cb, c2s_handle_cb, r);
	if (rc == 0 && end)
		rc = handle_stream_finish(&r->hs, c2s_text_cb, c2s_handle_cb, r);
	if (rc < 0 || r->rc < 0)
		return WSRELAY_FAIL;
	if (rc > 0)
		return wsrelay_fail(r, true, WSFRAME_CLOSE_POLICY, r->err, r->exfiltration);
	if (r->c2s.len >= WSRELAY_FLUSH)
		wsdir_flush(r, &r->c2s, false);
	return r->rc;
}

/* A client control frame: its payload (a close's reason) gets the same treatment. */
static int
c2s_control(wsrelay_t *r, const wsframe_event_t *e)
{
	handle_stream_t hs;
	leak_hit_t hit;
	int rc = 0;

	if (leak_scan(e->data, e->data_len, &hit))
		return wsrelay_fail(r, true, WSFRAME_CLOSE_POLICY, "handle_encoded", true);
	handle_stream_init(&hs);
	r->in_control = true;
	r->ctllen = 0;
	if (e->data_len > 0)
		rc = handle_stream_feed(&hs, e->data, e->data_len, c2s_text_cb, c2s_handle_cb,
		    r);
	if (rc == 0)
		rc = handle_stream_finish(&hs, c2s_text_cb, c2s_handle_cb, r);
	r->in_control = false;
	if (rc > 0)
		return wsrelay_fail(r, true, WSFRAME_CLOSE_POLICY, r->err, r->exfiltration);
	if (rc < 0 || r->rc < 0)
		return WSRELAY_FAIL;
	wsdir_control(r, &r->c2s, e->opcode, r->ctlbuf, r->ctllen, true);
	sodium_memzero(r->ctlbuf, sizeof(r->ctlbuf));
	if (e->opcode == WSFRAME_OP_CLOSE)
		r->c2s.closed = true;
	return r->rc;
}

/* --- server -> client: secrets ------------------------------------------------------- */

static void
s2c_emit_cb(void *arg, const void *p, size_t n)
{
	wsrelay_t *r = arg;

	wsdir_append(r, &r->s2c, p, n);
}

static void
ctl_emit_cb(void *arg, const void *p, size_t n)
{
	ctl_append(arg, p, n);	/* a handle longer than the secret: the end is cut */
}

/* A server control frame: its payload scrubbed by a copy of the scrubber. */
static int
s2c_control(wsrelay_t *r, const wsframe_event_t *e)
{
	if (r->ctl == NULL || scrub_needles(r->ctl) != scrub_needles(r->scrub)) {
		scrub_free(r->ctl);
		if ((r->ctl = scrub_copy(r->scrub, SCRUB_FORMS)) == NULL)
			return WSRELAY_FAIL;
	}
	r->ctllen = 0;
	if (scrub_feed(r->ctl, e->data, e->data_len, ctl_emit_cb, r) < 0 ||
	    scrub_finish(r->ctl, ctl_emit_cb, r) < 0)
		return WSRELAY_FAIL;
	wsdir_control(r, &r->s2c, e->opcode, r->ctlbuf, r->ctllen, false);
	sodium_memzero(r->ctlbuf, sizeof(r->ctlbuf));
	if (e->opcode == WSFRAME_OP_CLOSE)
		r->s2c.closed = true;
	return r->rc;
}

static int
s2c_payload(wsrelay_t *r, const uint8_t *p, size_t n, bool end)
{
	if ((n > 0 && scrub_feed(r->scrub, p, n, s2c_emit_cb, r) < 0) ||
	    (end && scrub_finish(r->scrub, s2c_emit_cb, r) < 0))
		return WSRELAY_FAIL;
	if (r->s2c.len >= WSRELAY_FLUSH)
		wsdir_flush(r, &r->s2c, false);
	return r->rc;
}

/* --- the event loop of a direction ----------------------------------------------------- */

static int
wsrelay_event(wsrelay_t *r, struct wsdir *d, const wsframe_event_t *e)
{
	bool client = d == &r->c2s;

	switch (e->type) {
	case WSFRAME_EV_HEAD:
		if (e->opcode == WSFRAME_OP_TEXT || e->opcode == WSFRAME_OP_BINARY) {
			d->msg_opcode = (uint8_t)e->opcode;
			d->started = false;
			if (client) {
				r->binary = e->opcode == WSFRAME_OP_BINARY;
				handle_stream_reset(&r->hs);
				leak_stream_init_encoded(&r->leak);
			}
		}
		return WSRELAY_OK;
	case WSFRAME_EV_PAYLOAD:
		if (e->opcode >= WSFRAME_OP_CLOSE)
			return client ? c2s_control(r, e) : s2c_control(r, e);
		return client ? c2s_payload(r, e->data, e->data_len, false) :
		    s2c_payload(r, e->data, e->data_len, false);
	case WSFRAME_EV_FRAME_END:	/* a frame in, a frame out (unless it was large) */
		if (e->opcode < WSFRAME_OP_CLOSE && !e->fin)
			wsdir_flush(r, d, false);
		return r->rc;
	case WSFRAME_EV_MESSAGE_END:
		if ((client ? c2s_payload(r, NULL, 0, true) : s2c_payload(r, NULL, 0, true)) !=
		    WSRELAY_OK)
			return r->failed ? WSRELAY_CLOSE : WSRELAY_FAIL;
		wsdir_flush(r, d, true);
		return r->rc;
	case WSFRAME_EV_ERROR:
		return wsrelay_fail(r, client, e->close_code, e->close_code ==
		    WSFRAME_CLOSE_TOO_BIG ? "websocket_too_big" : "websocket_protocol_error",
		    false);
	default:
		return WSRELAY_OK;
	}
}

static int
wsrelay_input(wsrelay_t *r, struct wsdir *d, uint8_t *in, size_t len)
{
	wsframe_event_t e;
	size_t used;
	int rc = WSRELAY_OK;

	while (!r->failed && rc == WSRELAY_OK) {
		if (wsframe_parse(&d->p, in, len, &used, &e) == WSFRAME_EV_NONE)
			break;
		in += used;
		len -= used;
		rc = wsrelay_event(r, d, &e);
	}
	if (r->rc < 0)
		return WSRELAY_FAIL;
	return r->failed ? WSRELAY_CLOSE : rc;
}

int
wsrelay_client(wsrelay_t *r, uint8_t *in, size_t len)
{
	if (r->failed)
		return WSRELAY_CLOSE;
	return wsrelay_input(r, &r->c2s, in, len);
}

int
wsrelay_server(wsrelay_t *r, uint8_t *in, size_t len)
{
	if (r->failed)
		return WSRELAY_CLOSE;
	return wsrelay_input(r, &r->s2c, in, len);
}

const char *
wsrelay_error(const wsrelay_t *r, unsigned *client_code, bool *exfiltration)
{
	if (client_code != NULL)
		*client_code = r->err_code;
	if (exfiltration != NULL)
		*exfiltration = r->exfiltration;
	return r->failed ? r->err : NULL;
}

bool
wsrelay_closed(const wsrelay_t *r)
{
	return r->c2s.closed && r->s2c.closed;
}

void
wsrelay_counts(const wsrelay_t *r, uint64_t *to_server, uint64_t *to_client,
    uint64_t *swapped)
{
	*to_server = r->c2s.messages;
	*to_client = r->s2c.messages;
	*swapped = r->swapped;
}
