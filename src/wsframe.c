/* wsframe.c — RFC 6455 frame parser (one direction, incremental) and encoder. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "defaults.h"
#include "wsframe.h"

enum ws_state {
	WS_ST_HEAD,		/* collecting header bytes */
	WS_ST_DATA,		/* data frame payload, streamed */
	WS_ST_CONTROL,		/* control frame payload, collected in p->ctl */
	WS_ST_FRAME_END,
	WS_ST_MSG_END,
	WS_ST_ERROR,
};

enum ws_head_stage {
	WS_HS_FIRST,		/* bytes 0-1: flags, opcode, mask bit, 7-bit length */
	WS_HS_LENGTH,		/* extended length (0, 2 or 8 bytes) */
	WS_HS_KEY,		/* masking key (0 or 4 bytes) */
};

static bool
ws_opcode_known(unsigned op)
{
	return op <= WSFRAME_OP_BINARY || (op >= WSFRAME_OP_CLOSE && op <= WSFRAME_OP_PONG);
}

static bool
ws_opcode_control(unsigned op)
{
	return (op & 0x8) != 0;
}

bool
wsframe_close_code_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	    (code >= 3000 && code <= 4999);
}

void
wsframe_parser_init(wsframe_parser_t *p, enum wsframe_dir dir)
{
	memset(p, 0, sizeof(*p));
	p->max_frame = SG_WS_MAX_FRAME;
	p->max_message = SG_WS_MAX_MESSAGE;
	p->dir = (uint8_t)dir;
	p->state = WS_ST_HEAD;
	p->hdr_need = 2;
}

void
wsframe_parser_wipe(wsframe_parser_t *p)
{
	sodium_memzero(p, sizeof(*p));
}

/* --- parser ------------------------------------------------------------------------- */

/* Start ev as an event of the current frame. */
static enum wsframe_event_type
ws_event(const wsframe_parser_t *p, wsframe_event_t *ev, enum wsframe_event_type type)
{
	ev->type = type;
	ev->opcode = p->opcode;
	ev->msg_opcode = p->frame_msg_opcode;
	ev->fin = p->fin;
	ev->len = p->len;
	return type;
}

static enum wsframe_event_type
ws_error_event(const wsframe_parser_t *p, wsframe_event_t *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = WSFRAME_EV_ERROR;
	ev->close_code = p->err_code;
	ev->reason = p->err_reason;
	return WSFRAME_EV_ERROR;
}

static enum wsframe_event_type
ws_fail(wsframe_parser_t *p, wsframe_event_t *ev, unsigned code, const char *reason)
{
	p->state = WS_ST_ERROR;
	p->err_code = code;
	p->err_reason = reason;
	return ws_error_event(p, ev);
}

/* Bytes 0-1. NULL, or the protocol rule the frame breaks. */
static const char *
ws_check_first(wsframe_parser_t *p)
{
	unsigned len7 = p->hdr[1] & 0x7f;

	p->fin = (p->hdr[0] & 0x80) != 0;
	p->opcode = p->hdr[0] & 0x0f;
	p->masked = (p->hdr[1] & 0x80) != 0;
	if (p->hdr[0] & 0x70)
		return "reserved bits set";
	if (!ws_opcode_known(p->opcode))
		return "reserved opcode";
	if (ws_opcode_control(p->opcode)) {
		if (!p->fin)
			return "fragmented control frame";
		if (len7 > WSFRAME_CONTROL_MAX)
			return "control frame over 125 bytes";
	} else if (p->opcode == WSFRAME_OP_CONT && p->msg_opcode == 0) {
		return "continuation frame with no message open";
	} else if (p->opcode != WSFRAME_OP_CONT && p->msg_opcode != 0) {
		return "new message inside a fragmented message";
	}
	if (p->masked != (p->dir == WSFRAME_FROM_CLIENT))
		return p->masked ? "masked frame from the server" : "unmasked frame from the client";
	p->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
	return NULL;
}

/* The length is complete: p->len, then the size limits. 0, or -1 with *code, *why. */
static int
ws_check_length(wsframe_parser_t *p, unsigned *code, const char **why)
{
	unsigned len7 = p->hdr[1] & 0x7f;
	uint64_t prev = p->opcode == WSFRAME_OP_CONT ? p->msg_len : 0;

	p->len = len7;
	if (len7 >= 126) {
		p->len = 0;
		for (unsigned i = 2; i < p->hdr_need; i++)
			p->len = p->len << 8 | p->hdr[i];
	}
	*code = WSFRAME_CLOSE_PROTOCOL;
	if (p->len >> 63) {
		*why = "64-bit length with the top bit set";
		return -1;
	}
	*code = WSFRAME_CLOSE_TOO_BIG;
	if (p->len > p->max_frame) {
		*why = "frame too big";
		return -1;
	}
	if (!ws_opcode_control(p->opcode) && (prev > p->max_message ||
	    p->len > p->max_message - prev)) {
		*why = "message too big";
		return -1;
	}
	p->hdr_need += p->masked ? 4 : 0;
	return 0;
}

/* The header is complete: start the frame (and the message). */
static void
ws_frame_begin(wsframe_parser_t *p)
{
	if (p->masked)
		memcpy(p->mask, p->hdr + p->hdr_need - 4, 4);
	p->done = 0;
	if (ws_opcode_control(p->opcode)) {
		p->frame_msg_opcode = p->opcode;
		p->state = WS_ST_CONTROL;
		return;
	}
	if (p->opcode != WSFRAME_OP_CONT) {
		p->msg_opcode = p->opcode;
		p->msg_len = 0;
	}
	p->msg_len += p->len;
	p->frame_msg_opcode = p->msg_opcode;
	p->state = p->len == 0 ? WS_ST_FRAME_END : WS_ST_DATA;
}

/* Run the stage whose bytes are all held: -1 error, 1 header complete, 0 go on. */
static int
ws_head_step(wsframe_parser_t *p, unsigned *code, const char **why)
{
	switch (p->hdr_stage) {
	case WS_HS_FIRST:
		*code = WSFRAME_CLOSE_PROTOCOL;
		if ((*why = ws_check_first(p)) != NULL)
			return -1;
		p->hdr_stage = WS_HS_LENGTH;
		return 0;
	case WS_HS_LENGTH:
		if (ws_check_length(p, code, why) < 0)
			return -1;
		p->hdr_stage = WS_HS_KEY;
		return 0;
	default:
		ws_frame_begin(p);
		return 1;
	}
}

static enum wsframe_event_type
ws_parse_head(wsframe_parser_t *p, const uint8_t *in, size_t len, size_t *used,
    wsframe_event_t *ev)
{
	const char *why;
	unsigned code;
	size_t n;
	int rc;

	if (len > 0 && p->closed)
		return ws_fail(p, ev, WSFRAME_CLOSE_PROTOCOL, "frame after a close frame");
	for (;;) {
		n = p->hdr_need - p->hdr_have;
		if (n > len - *used)
			n = len - *used;
		if (n > 0)
			memcpy(p->hdr + p->hdr_have, in + *used, n);
		p->hdr_have += (uint8_t)n;
		*used += n;
		if (p->hdr_have < p->hdr_need)
			return ev->type = WSFRAME_EV_NONE;
		if ((rc = ws_head_step(p, &code, &why)) < 0)
			return ws_fail(p, ev, code, why);
		if (rc > 0)
			return ws_event(p, ev, WSFRAME_EV_HEAD);
	}
}

static enum wsframe_event_type
ws_parse_data(wsframe_parser_t *p, uint8_t *in, size_t len, size_t *used,
    wsframe_event_t *ev)
{
	uint64_t rem = p->len - p->done;	/* > 0 in this state */
	size_t n = len;

	if (len == 0)
		return ev->type = WSFRAME_EV_NONE;
	if (n > rem)
		n = (size_t)rem;
	if (p->masked)
		wsframe_mask(in, n, p->mask, p->done);
	ws_event(p, ev, WSFRAME_EV_PAYLOAD);
	ev->data = in;
	ev->data_len = n;
	ev->offset = p->done;
	p->done += n;
	*used = n;
	if (p->done == p->len)
		p->state = WS_ST_FRAME_END;
	return WSFRAME_EV_PAYLOAD;
}

/* A close payload: 0, or its code and reason into ev; NULL or the rule broken. */
static const char *
ws_close_payload(const wsframe_parser_t *p, wsframe_event_t *ev)
{
	if (p->len == 0)
		return NULL;
	if (p->len == 1)
		return "close payload of 1 byte";
	ev->close_code = (unsigned)p->ctl[0] << 8 | p->ctl[1];
	if (!wsframe_close_code_valid(ev->close_code))
		return "invalid close code";
	ev->close_reason = p->ctl + 2;
	ev->close_reason_len = (size_t)p->len - 2;
	return NULL;
}

static enum wsframe_event_type
ws_parse_control(wsframe_parser_t *p, const uint8_t *in, size_t len, size_t *used,
    wsframe_event_t *ev)
{
	size_t n = (size_t)(p->len - p->done);
	const char *why;

	if (n > len)
		n = len;
	if (n > 0)
		memcpy(p->ctl + p->done, in, n);
	p->done += n;
	*used = n;
	if (p->done < p->len)
		return ev->type = WSFRAME_EV_NONE;
	if (p->masked)
		wsframe_mask(p->ctl, (size_t)p->len, p->mask, 0);
	ws_event(p, ev, WSFRAME_EV_PAYLOAD);
	if (p->opcode == WSFRAME_OP_CLOSE && (why = ws_close_payload(p, ev)) != NULL)
		return ws_fail(p, ev, WSFRAME_CLOSE_PROTOCOL, why);
	ev->data = p->ctl;
	ev->data_len = (size_t)p->len;
	p->state = WS_ST_FRAME_END;
	return WSFRAME_EV_PAYLOAD;
}

static enum wsframe_event_type
ws_frame_end(wsframe_parser_t *p, wsframe_event_t *ev)
{
	ws_event(p, ev, WSFRAME_EV_FRAME_END);
	p->state = WS_ST_HEAD;
	if (!ws_opcode_control(p->opcode) && p->fin)
		p->state = WS_ST_MSG_END;
	if (p->opcode == WSFRAME_OP_CLOSE)
		p->closed = true;
	p->hdr_have = 0;
	p->hdr_need = 2;
	p->hdr_stage = WS_HS_FIRST;
	return WSFRAME_EV_FRAME_END;
}

static enum wsframe_event_type
ws_message_end(wsframe_parser_t *p, wsframe_event_t *ev)
{
	ws_event(p, ev, WSFRAME_EV_MESSAGE_END);
	p->msg_opcode = 0;
	p->msg_len = 0;
	p->state = WS_ST_HEAD;
	return WSFRAME_EV_MESSAGE_END;
}

enum wsframe_event_type
wsframe_parse(wsframe_parser_t *p, uint8_t *in, size_t len, size_t *used,
    wsframe_event_t *ev)
{
	*used = 0;
	memset(ev, 0, sizeof(*ev));
	if (in == NULL)
		len = 0;
	switch (p->state) {
	case WS_ST_HEAD:
		return ws_parse_head(p, in, len, used, ev);
	case WS_ST_DATA:
		return ws_parse_data(p, in, len, used, ev);
	case WS_ST_CONTROL:
		return ws_parse_control(p, in, len, used, ev);
	case WS_ST_FRAME_END:
		return ws_frame_end(p, ev);
	case WS_ST_MSG_END:
		return ws_message_end(p, ev);
	default:
		return ws_error_event(p, ev);
	}
}

/* --- encoder ------------------------------------------------------------------------ */

size_t
wsframe_header(uint8_t out[WSFRAME_HEADER_MAX], unsigned opcode, bool fin, uint64_t len,
    const uint8_t mask[4])
{
	size_t n = 2;

	if (!ws_opcode_known(opcode) || (len >> 63) != 0 ||
	    (ws_opcode_control(opcode) && (!fin || len > WSFRAME_CONTROL_MAX)))
		return 0;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		out[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		out[1] = 126;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	} else {
		out[1] = 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			out[n++] = (uint8_t)(len >> shift);
	}
	if (mask != NULL) {
		out[1] |= 0x80;
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

void
wsframe_mask(uint8_t *buf, size_t len, const uint8_t key[4], uint64_t offset)
{
	uint8_t k[8];
	uint64_t k64, w;
	size_t i = 0;

	for (unsigned j = 0; j < 8; j++)
		k[j] = key[(offset + j) & 3];
	memcpy(&k64, k, 8);
	for (; i + 8 <= len; i += 8) {	/* 8 bytes keep the key's phase: 8 % 4 == 0 */
		memcpy(&w, buf + i, 8);
		w ^= k64;
		memcpy(buf + i, &w, 8);
	}
	for (; i < len; i++)
		buf[i] ^= k[i & 7];
}

size_t
wsframe_close(uint8_t out[WSFRAME_CLOSE_MAX], unsigned code, const char *reason,
    size_t reason_len, const uint8_t mask[4])
{
	size_t plen = 0, n;

	if (code != 0 && !wsframe_close_code_valid(code))
		return 0;
	if (code == 0 || reason == NULL)
		reason_len = 0;
	if (reason_len > WSFRAME_CLOSE_REASON_MAX) {
		reason_len = WSFRAME_CLOSE_REASON_MAX;
		/* the first byte cut is a continuation: cut its whole sequence */
		while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xc0) == 0x80)
			reason_len--;
	}
	if (code != 0)
		plen = 2 + reason_len;
	n = wsframe_header(out, WSFRAME_OP_CLOSE, true, plen, mask);
	if (code != 0) {
		out[n] = (uint8_t)(code >> 8);
		out[n + 1] = (uint8_t)code;
		if (reason_len > 0)
			memcpy(out + n + 2, reason, reason_len);
	}
	if (mask != NULL)
		wsframe_mask(out + n, plen, mask, 0);
	return n + plen;
}
