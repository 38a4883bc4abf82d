/*
 * fuzz_wsframe.c — libFuzzer harness for the wsframe parser and encoder.
 * Input: byte 0 picks the limits (defaults, or small ones so 1009 is reachable), the
 * rest is a byte stream parsed as frames from the client and as frames from the server.
 * Invariants, per direction:
 *   - the stream fed whole and fed in pieces cut at input-derived points give the same
 *     transcript (events, payload bytes per frame, close code/reason, error);
 *   - event contracts: data PAYLOAD never empty, offsets continuous, a frame's payload
 *     adds up to its length, control frames have exactly one PAYLOAD of <= 125 bytes,
 *     lengths within the limits, errors 1002/1009 and sticky, NONE only when the input
 *     is consumed;
 *   - the complete frames re-encoded with wsframe_header/wsframe_mask (minimal lengths,
 *     a new masking key) parse back to the same transcript.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "wsframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			abort();
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
buf_u64(struct buf *b, uint64_t v)
{
	buf_add(b, &v, sizeof(v));
}

struct run {
	enum wsframe_dir dir;
	uint64_t max_frame, max_message;
	struct buf t;		/* transcript */
	struct buf pl;		/* payload of the open frame */
	bool open;		/* a HEAD without its FRAME_END */
	uint64_t flen;
	unsigned fop, payload_events;
	size_t mark;		/* transcript length after the last complete frame */
	/* re-encoding (NULL out: off) */
	struct buf *out;
	const uint8_t *key;
	size_t out_mark;
};

static void
check_payload(struct run *r, const wsframe_event_t *e)
{
	if (e->opcode != r->fop || e->offset != r->pl.len || e->data_len > r->flen - r->pl.len)
		abort();
	if (e->opcode & 8) {
		if (++r->payload_events != 1 || e->data_len != e->len || e->len > 125)
			abort();
		if (e->opcode == WSFRAME_OP_CLOSE && e->len >= 2 &&
		    (!wsframe_close_code_valid(e->close_code) ||
		    e->close_reason_len != e->len - 2 || e->close_reason != e->data + 2))
			abort();
		if (e->opcode == WSFRAME_OP_CLOSE && e->len == 0 && e->close_code != 0)
			abort();
	} else if (e->data_len == 0) {
		abort();
	}
}

static void
on_head(struct run *r, const wsframe_event_t *e)
{
	uint8_t rec[4] = {'H', (uint8_t)e->opcode, (uint8_t)e->msg_opcode, e->fin};
	uint8_t h[WSFRAME_HEADER_MAX];
	size_t n;

	if (r->open || e->len > r->max_frame || e->len >> 63)
		abort();
	if ((e->opcode & 8) ? e->msg_opcode != e->opcode :
	    (e->msg_opcode != WSFRAME_OP_TEXT && e->msg_opcode != WSFRAME_OP_BINARY))
		abort();
	buf_add(&r->t, rec, sizeof(rec));
	buf_u64(&r->t, e->len);
	r->open = true;
	r->flen = e->len;
	r->fop = e->opcode;
	r->payload_events = 0;
	r->pl.len = 0;
	if (r->out != NULL) {
		n = wsframe_header(h, e->opcode, e->fin, e->len,
		    r->dir == WSFRAME_FROM_CLIENT ? r->key : NULL);
		if (n == 0)
			abort();
		buf_add(r->out, h, n);
	}
}

static void
on_payload(struct run *r, const wsframe_event_t *e)
{
	uint8_t rec[3];
	size_t at;

	check_payload(r, e);
	buf_add(&r->pl, e->data, e->data_len);
	if (e->opcode == WSFRAME_OP_CLOSE) {
		rec[0] = 'C';
		rec[1] = (uint8_t)(e->close_code >> 8);
		rec[2] = (uint8_t)e->close_code;
		buf_add(&r->t, rec, sizeof(rec));
		buf_add(&r->t, e->close_reason, e->close_reason_len);
	}
	if (r->out != NULL) {
		at = r->out->len;
		buf_add(r->out, e->data, e->data_len);
		if (r->dir == WSFRAME_FROM_CLIENT)
			wsframe_mask(r->out->p + at, e->data_len, r->key, e->offset);
	}
}

/* The open frame's payload into the transcript, as kind 'P' (whole) or 'p' (partial). */
static void
flush_payload(struct run *r, uint8_t kind)
{
	if (!r->open)
		return;
	buf_add(&r->t, &kind, 1);
	buf_u64(&r->t, r->pl.len);
	buf_add(&r->t, r->pl.p, r->pl.len);
}

static void
on_frame_end(struct run *r, const wsframe_event_t *e)
{
	if (!r->open || e->opcode != r->fop || r->pl.len != r->flen ||
	    ((e->opcode & 8) && r->payload_events != 1))
		abort();
	flush_payload(r, 'P');
	buf_add(&r->t, "E", 1);
	r->open = false;
	r->mark = r->t.len;
	if (r->out != NULL)
		r->out_mark = r->out->len;
}

static void
on_error(struct run *r, wsframe_parser_t *p, const wsframe_event_t *e)
{
	uint8_t rec[3] = {'X', (uint8_t)(e->close_code >> 8), (uint8_t)e->close_code};
	uint8_t more[2] = {0x81, 0x00};
	wsframe_event_t again;
	size_t used;

	if (e->close_code != WSFRAME_CLOSE_PROTOCOL && e->close_code != WSFRAME_CLOSE_TOO_BIG)
		abort();
	if (e->reason == NULL)
		abort();
	if (wsframe_parse(p, more, sizeof(more), &used, &again) != WSFRAME_EV_ERROR ||
	    used != 0 || again.close_code != e->close_code || again.reason != e->reason)
		abort();
	flush_payload(r, 'p');
	buf_add(&r->t, rec, sizeof(rec));
	buf_add(&r->t, e->reason, strlen(e->reason));
}

/* Parse in[0..n) (in is modified) until it is consumed: 0, or -1 after an error. */
static int
feed(struct run *r, wsframe_parser_t *p, uint8_t *in, size_t n)
{
	wsframe_event_t e;
	size_t off = 0, used;

	for (;;) {
		wsframe_parse(p, in + off, n - off, &used, &e);
		if (used > n - off)
			abort();
		off += used;
		switch (e.type) {
		case WSFRAME_EV_NONE:
			if (off != n)
				abort();
			return 0;
		case WSFRAME_EV_HEAD:
			on_head(r, &e);
			break;
		case WSFRAME_EV_PAYLOAD:
			on_payload(r, &e);
			break;
		case WSFRAME_EV_FRAME_END:
			on_frame_end(r, &e);
			break;
		case WSFRAME_EV_MESSAGE_END:
			if (r->open || (e.opcode & 8) || !e.fin)
				abort();
			buf_add(&r->t, "M", 1);
			r->mark = r->t.len;
			break;
		default:
			on_error(r, p, &e);
			return -1;
		}
	}
}

/* Feed a copy of data in pieces (chunk seed 0: whole); the transcript is in r->t. */
static void
run_stream(struct run *r, const uint8_t *data, size_t size, uint64_t seed)
{
	uint8_t *copy = malloc(size + 1);
	wsframe_parser_t p;
	size_t at = 0, n;

	if (copy == NULL)
		abort();
	if (size > 0)
		memcpy(copy, data, size);
	wsframe_parser_init(&p, r->dir);
	p.max_frame = r->max_frame;
	p.max_message = r->max_message;
	do {
		n = size - at;
		if (seed != 0) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			if (n > (size_t)(seed >> 33) % 23)	/* 0..22: empty feeds too */
				n = (size_t)(seed >> 33) % 23;
		}
		if (feed(r, &p, copy + at, n) < 0)
			break;
		at += n;
	} while (at < size);
	flush_payload(r, 'p');
	wsframe_parser_wipe(&p);
	free(copy);
}

static void
run_free(struct run *r)
{
	free(r->t.p);
	free(r->pl.p);
}

static void
check_direction(enum wsframe_dir dir, const uint8_t *data, size_t size, uint64_t seed,
    uint64_t max_frame, uint64_t max_message)
{
	struct buf out = {0};
	uint8_t key[4] = {(uint8_t)seed, (uint8_t)(seed >> 8), 0xa5, (uint8_t)size};
	struct run whole = {dir, max_frame, max_message, .out = &out, .key = key};
	struct run split = {dir, max_frame, max_message};
	struct run again = {dir, max_frame, max_message};

	run_stream(&whole, data, size, 0);
	run_stream(&split, data, size, seed | 1);
	if (whole.t.len != split.t.len || memcmp(whole.t.p, split.t.p, whole.t.len) != 0)
		abort();
	/* re-encoded complete frames: minimal lengths, a new key, the same transcript */
	if (out.len > size)
		abort();
	run_stream(&again, out.p, whole.out_mark, 0);
	if (again.t.len != whole.mark || memcmp(again.t.p, whole.t.p, whole.mark) != 0)
		abort();
	run_free(&whole);
	run_free(&split);
	run_free(&again);
	free(out.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = size, max_frame = SG_WS_MAX_FRAME, max_message = SG_WS_MAX_MESSAGE;
	uint8_t cfg;

	if (size == 0)
		return 0;
	cfg = data[0];
	data++;
	size--;
	for (size_t i = 0; i < size && i < 8; i++)
		seed = seed << 8 | data[i];
	if (cfg & 1) {		/* small limits: a too-big message fits in the input */
		max_frame = 8 + (cfg >> 1) * 4;
		max_message = max_frame * (1 + (cfg >> 6));
	}
	check_direction(WSFRAME_FROM_CLIENT, data, size, seed, max_frame, max_message);
	check_direction(WSFRAME_FROM_SERVER, data, size, seed, max_frame, max_message);
	return 0;
}
