/*
 * test_wsframe.c — RFC 6455 frame codec: RFC examples, length forms at their
 * boundaries, masking, fragmentation with control frames, every protocol error, size
 * limits from the header, byte-at-a-time equals whole, encoder round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "wsframe.h"

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};
static const uint8_t KEY2[4] = {0x01, 0x80, 0xfe, 0x5a};

/* --- a transcript of events: one string whatever the input's splits ----------------- */

struct rec {
	char *s;
	size_t len, cap;
	size_t payload_events;		/* PAYLOAD events of the current frame */
	size_t frames, messages;
	int in_payload;			/* a "P[" token is open */
	unsigned err;
	const char *why;
};

static void
rec_add(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(r->s + r->len, r->cap - r->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < r->cap - r->len)
			break;
		r->cap = r->cap * 2 + (size_t)n + 256;
		r->s = realloc(r->s, r->cap);
		assert_non_null(r->s);
	}
	r->len += (size_t)n;
}

static void
rec_close_payload(struct rec *r)
{
	if (r->in_payload)
		rec_add(r, "] ");
	r->in_payload = 0;
}

static void
rec_bytes(struct rec *r, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	if (!r->in_payload)
		rec_add(r, "P[");
	r->in_payload = 1;
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != ']')
			rec_add(r, "%c", p[i]);
		else
			rec_add(r, "\\%02x", p[i]);
}

/* Record one event; 0 when parsing should go on. */
static int
rec_event(struct rec *r, const wsframe_event_t *e)
{
	switch (e->type) {
	case WSFRAME_EV_HEAD:
		rec_add(r, "H%u/%u%s%llu ", e->opcode, e->msg_opcode, e->fin ? "F" : "-",
		    (unsigned long long)e->len);
		r->payload_events = 0;
		return 0;
	case WSFRAME_EV_PAYLOAD:
		r->payload_events++;
		if (e->opcode & 8) {
			assert_int_equal(r->payload_events, 1);	/* control: one event */
			assert_int_equal(e->data_len, e->len);
		} else {
			assert_true(e->data_len > 0);
		}
		rec_bytes(r, e->data, e->data_len);
		if (e->opcode == WSFRAME_OP_CLOSE) {
			rec_close_payload(r);
			rec_add(r, "C%u:%.*s ", e->close_code, (int)e->close_reason_len,
			    (const char *)e->close_reason);
		}
		return 0;
	case WSFRAME_EV_FRAME_END:
		rec_close_payload(r);
		if (e->opcode & 8)
			assert_int_equal(r->payload_events, 1);
		rec_add(r, "E ");
		r->frames++;
		return 0;
	case WSFRAME_EV_MESSAGE_END:
		rec_add(r, "M ");
		r->messages++;
		return 0;
	case WSFRAME_EV_ERROR:
		rec_close_payload(r);
		rec_add(r, "X%u", e->close_code);
		r->err = e->close_code;
		r->why = e->reason;
		assert_non_null(e->reason);
		return -1;
	default:
		return 1;
	}
}

/* Feed p, chunk bytes at a time (0: whole), into a fresh parser; the transcript. */
static char *
run(enum wsframe_dir dir, const void *bytes, size_t len, size_t chunk, struct rec *out)
{
	wsframe_parser_t p;
	wsframe_event_t e;
	struct rec r = {0};
	uint8_t *buf = malloc(len + 1);
	size_t at = 0, used;

	assert_non_null(buf);
	if (len > 0)
		memcpy(buf, bytes, len);
	wsframe_parser_init(&p, dir);
	rec_add(&r, "%s", "");
	do {
		size_t n = chunk == 0 || chunk > len - at ? len - at : chunk, off = 0;
		int stop = 0;

		while (!stop) {
			wsframe_parse(&p, buf + at + off, n - off, &used, &e);
			off += used;
			assert_true(off <= n);
			stop = rec_event(&r, &e);
		}
		if (stop < 0)
			break;
		assert_int_equal(off, n);	/* NONE only once the piece is consumed */
		at += n;
	} while (at < len);
	rec_close_payload(&r);
	free(buf);
	if (out != NULL)
		*out = r;
	return r.s;
}

/* Transcript of the whole stream; also checks every split size up to 9 gives the same. */
static char *
run_all_splits(enum wsframe_dir dir, const void *bytes, size_t len)
{
	char *whole = run(dir, bytes, len, 0, NULL);

	for (size_t chunk = 1; chunk <= 9; chunk++) {
		char *t = run(dir, bytes, len, chunk, NULL);

		assert_string_equal(t, whole);
		free(t);
	}
	return whole;
}

static void
expect(enum wsframe_dir dir, const void *bytes, size_t len, const char *want)
{
	char *got = run_all_splits(dir, bytes, len);

	assert_string_equal(got, want);
	free(got);
}

/* One frame: header from the encoder, payload masked with mask when given. */
static size_t
frame(uint8_t *out, unsigned op, int fin, const void *pl, size_t plen, const uint8_t *mask)
{
	size_t n = wsframe_header(out, op, fin != 0, plen, mask);

	assert_true(n > 0);
	if (plen > 0)
		memcpy(out + n, pl, plen);
	if (mask != NULL)
		wsframe_mask(out + n, plen, mask, 0);
	return n + plen;
}

/* --- RFC 6455 5.7 examples, byte for byte -------------------------------------------- */

static void
test_rfc_examples(void **state)
{
	(void)state;
	expect(WSFRAME_FROM_SERVER, "\x81\x05\x48\x65\x6c\x6c\x6f", 7, "H1/1F5 P[Hello] E M ");
	expect(WSFRAME_FROM_CLIENT, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11,
	    "H1/1F5 P[Hello] E M ");
	expect(WSFRAME_FROM_SERVER, "\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f", 9,
	    "H1/1-3 P[Hel] E H0/1F2 P[lo] E M ");
	expect(WSFRAME_FROM_SERVER, "\x89\x05\x48\x65\x6c\x6c\x6f", 7, "H9/9F5 P[Hello] E ");
	expect(WSFRAME_FROM_CLIENT, "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11,
	    "H10/10F5 P[Hello] E ");
}

static void
test_rfc_long_forms(void **state)
{
	uint8_t *buf = malloc(10 + 65536);
	wsframe_parser_t p;
	wsframe_event_t e;
	size_t used;

	(void)state;
	/* "256 bytes binary message in a single unmasked frame" */
	memcpy(buf, "\x82\x7e\x01\x00", 4);
	wsframe_parser_init(&p, WSFRAME_FROM_SERVER);
	assert_int_equal(wsframe_parse(&p, buf, 4, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(used, 4);
	assert_int_equal(e.len, 256);
	assert_int_equal(e.opcode, WSFRAME_OP_BINARY);
	/* "64KiB binary message in a single unmasked frame" */
	memcpy(buf, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	memset(buf + 10, 'z', 65536);
	wsframe_parser_init(&p, WSFRAME_FROM_SERVER);
	assert_int_equal(wsframe_parse(&p, buf, 10 + 65536, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(used, 10);
	assert_int_equal(e.len, 65536);
	assert_int_equal(wsframe_parse(&p, buf + 10, 65536, &used, &e), WSFRAME_EV_PAYLOAD);
	assert_int_equal(used, 65536);
	assert_ptr_equal(e.data, buf + 10);	/* unmasked frame: in place, no copy */
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_FRAME_END);
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_MESSAGE_END);
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_NONE);
	free(buf);
}

/* --- lengths -------------------------------------------------------------------------- */

static void
check_length(uint64_t len, size_t want_hdr, const uint8_t *mask)
{
	enum wsframe_dir dir = mask ? WSFRAME_FROM_CLIENT : WSFRAME_FROM_SERVER;
	uint8_t *pl = malloc(len + 1), *buf = malloc(len + WSFRAME_HEADER_MAX);
	size_t n, got = 0, used, at = 0;
	wsframe_parser_t p;
	wsframe_event_t e;

	for (size_t i = 0; i < len; i++)
		pl[i] = (uint8_t)(i * 7 + (i >> 8));
	n = frame(buf, WSFRAME_OP_BINARY, 1, pl, len, mask);
	assert_int_equal(n, want_hdr + (mask ? 4 : 0) + len);
	wsframe_parser_init(&p, dir);
	assert_int_equal(wsframe_parse(&p, buf, n, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(e.len, len);
	assert_int_equal(used, want_hdr + (mask ? 4 : 0));
	at = used;
	/* in three uneven pieces: offsets continue, bytes unmasked */
	while (got < len) {
		size_t piece = len - got > 1000 ? 1000 - got % 3 : len - got;

		assert_int_equal(wsframe_parse(&p, buf + at, piece, &used, &e), WSFRAME_EV_PAYLOAD);
		assert_int_equal(e.offset, got);
		assert_int_equal(used, e.data_len);
		assert_memory_equal(e.data, pl + got, e.data_len);
		got += e.data_len;
		at += used;
	}
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_FRAME_END);
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_MESSAGE_END);
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_NONE);
	free(pl);
	free(buf);
}

static void
test_length_boundaries(void **state)
{
	static const struct {
		uint64_t len;
		size_t hdr;
	} cases[] = {{0, 2}, {1, 2}, {125, 2}, {126, 4}, {127, 4}, {65535, 4}, {65536, 10},
	    {70000, 10}};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		check_length(cases[i].len, cases[i].hdr, NULL);
		check_length(cases[i].len, cases[i].hdr, KEY);
	}
}

static void
test_length_encoding_bytes(void **state)
{
	uint8_t h[WSFRAME_HEADER_MAX];

	(void)state;
	assert_int_equal(wsframe_header(h, WSFRAME_OP_TEXT, true, 125, NULL), 2);
	assert_memory_equal(h, "\x81\x7d", 2);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_TEXT, true, 126, NULL), 4);
	assert_memory_equal(h, "\x81\x7e\x00\x7e", 4);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_BINARY, false, 65535, NULL), 4);
	assert_memory_equal(h, "\x02\x7e\xff\xff", 4);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_BINARY, true, 65536, NULL), 10);
	assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_CONT, true, (1ULL << 63) - 1, KEY), 14);
	assert_memory_equal(h, "\x80\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x37\xfa\x21\x3d", 14);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_PING, true, 0, KEY), 6);
	assert_memory_equal(h, "\x89\x80\x37\xfa\x21\x3d", 6);
	/* what the encoder refuses */
	assert_int_equal(wsframe_header(h, 3, true, 0, NULL), 0);
	assert_int_equal(wsframe_header(h, 11, true, 0, NULL), 0);
	assert_int_equal(wsframe_header(h, 16, true, 0, NULL), 0);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_BINARY, true, 1ULL << 63, NULL), 0);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_PING, true, 126, NULL), 0);
	assert_int_equal(wsframe_header(h, WSFRAME_OP_CLOSE, false, 2, NULL), 0);
}

/* Non-minimal lengths are accepted (documented choice). */
static void
test_length_non_minimal(void **state)
{
	(void)state;
	expect(WSFRAME_FROM_SERVER, "\x81\x7e\x00\x03" "abc", 7, "H1/1F3 P[abc] E M ");
	expect(WSFRAME_FROM_SERVER, "\x81\x7f\x00\x00\x00\x00\x00\x00\x00\x03" "abc", 13,
	    "H1/1F3 P[abc] E M ");
	expect(WSFRAME_FROM_SERVER, "\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x00", 10,
	    "H2/2F0 E M ");
	/* control frames must use the 7-bit form (5.5: "payload length of 125 bytes or
	 * less"; the 7-bit field then says 126 or 127) */
	expect(WSFRAME_FROM_SERVER, "\x89\x7e\x00\x02", 4, "X1002");
}

/* --- masking -------------------------------------------------------------------------- */

static void
test_mask(void **state)
{
	uint8_t buf[64], ref[64], orig[64];

	(void)state;
	for (size_t i = 0; i < sizeof(orig); i++)
		orig[i] = (uint8_t)(i * 31 + 5);
	for (uint64_t off = 0; off < 9; off++) {
		for (size_t len = 0; len <= sizeof(buf); len++) {
			memcpy(buf, orig, len);
			for (size_t i = 0; i < len; i++)
				ref[i] = orig[i] ^ KEY[(off + i) % 4];
			wsframe_mask(buf, len, KEY, off);
			assert_memory_equal(buf, ref, len);
			wsframe_mask(buf, len, KEY, off);	/* XOR twice: identity */
			assert_memory_equal(buf, orig, len);
		}
	}
	/* piece by piece at odd offsets equals in one go */
	memcpy(buf, orig, sizeof(buf));
	wsframe_mask(buf, 3, KEY2, 0);
	wsframe_mask(buf + 3, 10, KEY2, 3);
	wsframe_mask(buf + 13, 51, KEY2, 13);
	memcpy(ref, orig, sizeof(ref));
	wsframe_mask(ref, sizeof(ref), KEY2, 0);
	assert_memory_equal(buf, ref, sizeof(buf));
	/* offsets past 4 GiB keep the phase */
	memcpy(buf, orig, 8);
	wsframe_mask(buf, 8, KEY, (1ULL << 32) + 2);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(buf[i], orig[i] ^ KEY[(2 + i) % 4]);
}

/* A masked frame split mid-key and mid-payload unmasks with the right phase. */
static void
test_mask_continuity(void **state)
{
	uint8_t buf[64];
	size_t n = frame(buf, WSFRAME_OP_TEXT, 1, "the quick brown fox", 19, KEY2);
	char *t;

	(void)state;
	for (size_t chunk = 1; chunk < n; chunk++) {
		t = run(WSFRAME_FROM_CLIENT, buf, n, chunk, NULL);
		assert_string_equal(t, "H1/1F19 P[the quick brown fox] E M ");
		free(t);
	}
}

/* --- fragmentation ---------------------------------------------------------------------- */

static size_t
fragmented_stream(uint8_t *buf, const uint8_t *mask)
{
	size_t n = 0;

	n += frame(buf + n, WSFRAME_OP_TEXT, 0, "Hel", 3, mask);
	n += frame(buf + n, WSFRAME_OP_PING, 1, "p1", 2, mask);
	n += frame(buf + n, WSFRAME_OP_CONT, 0, "lo, ", 4, mask);
	n += frame(buf + n, WSFRAME_OP_PONG, 1, "", 0, mask);
	n += frame(buf + n, WSFRAME_OP_CONT, 1, "world", 5, mask);
	n += frame(buf + n, WSFRAME_OP_BINARY, 1, "\x00\xff", 2, mask);
	return n;
}

static void
test_fragmented_with_control(void **state)
{
	static const char want[] =
	    "H1/1-3 P[Hel] E H9/9F2 P[p1] E H0/1-4 P[lo, ] E H10/10F0 E "
	    "H0/1F5 P[world] E M H2/2F2 P[\\00\\ff] E M ";
	uint8_t buf[128];
	struct rec r;
	size_t n;
	char *t;

	(void)state;
	n = fragmented_stream(buf, KEY);
	t = run(WSFRAME_FROM_CLIENT, buf, n, 0, &r);
	/* an empty pong has one, empty, PAYLOAD event: the recorder checked the count */
	assert_string_equal(t, want);
	assert_int_equal(r.frames, 6);
	assert_int_equal(r.messages, 2);
	free(t);
	n = fragmented_stream(buf, NULL);
	expect(WSFRAME_FROM_SERVER, buf, n, want);
}

/* --- protocol errors ------------------------------------------------------------------ */

struct err_case {
	enum wsframe_dir dir;
	const char *bytes;
	size_t len;
	unsigned code;
	const char *why;
};

#define C WSFRAME_FROM_CLIENT
#define S WSFRAME_FROM_SERVER
#define B(s) s, sizeof(s) - 1

static const struct err_case err_cases[] = {
	{C, B("\x81\x01x"), 1002, "unmasked frame from the client"},
	{S, B("\x81\x81\x00\x00\x00\x00x"), 1002, "masked frame from the server"},
	{S, B("\xc1\x00"), 1002, "reserved bits set"},		/* RSV1 */
	{S, B("\xa1\x00"), 1002, "reserved bits set"},		/* RSV2 */
	{S, B("\x91\x00"), 1002, "reserved bits set"},		/* RSV3 */
	{C, B("\xf1\x80"), 1002, "reserved bits set"},
	{S, B("\x09\x00"), 1002, "fragmented control frame"},
	{S, B("\x08\x00"), 1002, "fragmented control frame"},
	{S, B("\x0a\x00"), 1002, "fragmented control frame"},
	{S, B("\x89\x7e"), 1002, "control frame over 125 bytes"},
	{C, B("\x88\xff"), 1002, "control frame over 125 bytes"},
	{S, B("\x80\x00"), 1002, "continuation frame with no message open"},
	{S, B("\x00\x01x"), 1002, "continuation frame with no message open"},
	{S, B("\x01\x01x\x81\x00"), 1002, "new message inside a fragmented message"},
	{S, B("\x02\x00\x89\x00\x82\x00"), 1002, "new message inside a fragmented message"},
	{S, B("\x88\x01\x03"), 1002, "close payload of 1 byte"},
	{S, B("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), 1002,
	    "64-bit length with the top bit set"},
	{S, B("\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff"), 1002,
	    "64-bit length with the top bit set"},
	{S, B("\x88\x00\x81\x00"), 1002, "frame after a close frame"},
	{S, B("\x88\x02\x03\xe8\x89\x00"), 1002, "frame after a close frame"},
};

static void
check_error(const struct err_case *c)
{
	struct rec r;
	char *t = run(c->dir, c->bytes, c->len, 0, &r), *t1;

	if (r.err != c->code || r.why == NULL || strcmp(r.why, c->why) != 0)
		fail_msg("got \"%s\" (%s), want %u %s", t, r.why ? r.why : "-", c->code, c->why);
	t1 = run(c->dir, c->bytes, c->len, 1, NULL);	/* the same, byte by byte */
	assert_string_equal(t1, t);
	free(t);
	free(t1);
}

static void
test_protocol_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(err_cases); i++)
		check_error(&err_cases[i]);
}

static void
test_reserved_opcodes(void **state)
{
	uint8_t b[2];

	(void)state;
	for (unsigned op = 0; op < 16; op++) {
		struct err_case c = {S, (const char *)b, 2, 1002, "reserved opcode"};
		struct err_case m = {C, (const char *)b, 2, 1002, "reserved opcode"};

		if (op <= 2 || (op >= 8 && op <= 10))
			continue;
		b[0] = (uint8_t)(0x80 | op);
		b[1] = 0;
		check_error(&c);
		b[1] = 0x80;
		check_error(&m);
	}
}

static void
test_close_codes(void **state)
{
	static const unsigned bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999,
	    5000, 65535};
	static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
	    1012, 1013, 1014, 3000, 3999, 4000, 4999};
	uint8_t buf[32];
	char want[64], *t;
	struct rec r;
	size_t n;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		uint8_t pl[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};

		assert_false(wsframe_close_code_valid(bad[i]));
		n = frame(buf, WSFRAME_OP_CLOSE, 1, pl, 2, KEY);
		t = run(WSFRAME_FROM_CLIENT, buf, n, 1, &r);
		assert_int_equal(r.err, 1002);
		assert_string_equal(r.why, "invalid close code");
		free(t);
	}
	for (size_t i = 0; i < SG_ARRAY_LEN(good); i++) {
		uint8_t pl[6] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i], 'b', 'y', 'e', '!'};

		assert_true(wsframe_close_code_valid(good[i]));
		n = frame(buf, WSFRAME_OP_CLOSE, 1, pl, 6, NULL);
		t = run(WSFRAME_FROM_SERVER, buf, n, 0, &r);
		assert_int_equal(r.err, 0);
		assert_non_null(strstr(t, "bye!"));
		snprintf(want, sizeof(want), "C%u:bye! E ", good[i]);
		assert_non_null(strstr(t, want));
		free(t);
	}
	/* an empty close: code 0, no reason */
	expect(WSFRAME_FROM_SERVER, "\x88\x00", 2, "H8/8F0 C0: E ");
	/* a code with no reason */
	expect(WSFRAME_FROM_SERVER, "\x88\x02\x03\xe8", 4, "H8/8F2 P[\\03\\e8] C1000: E ");
}

/* --- size limits, decided from the header --------------------------------------------- */

static void
test_too_big_frame(void **state)
{
	uint8_t h[WSFRAME_HEADER_MAX];
	wsframe_parser_t p;
	wsframe_event_t e;
	size_t n, used;

	(void)state;
	/* the header alone: no payload byte is needed to refuse */
	n = wsframe_header(h, WSFRAME_OP_BINARY, true, (uint64_t)SG_WS_MAX_FRAME + 1, KEY);
	wsframe_parser_init(&p, WSFRAME_FROM_CLIENT);
	assert_int_equal(wsframe_parse(&p, h, n, &used, &e), WSFRAME_EV_ERROR);
	assert_int_equal(e.close_code, WSFRAME_CLOSE_TOO_BIG);
	assert_string_equal(e.reason, "frame too big");
	/* decided before the masking key arrived */
	assert_int_equal(used, n - 4);
	/* sticky */
	assert_int_equal(wsframe_parse(&p, h, n, &used, &e), WSFRAME_EV_ERROR);
	assert_int_equal(used, 0);
	assert_int_equal(e.close_code, 1009);
	/* exactly the limit is fine */
	n = wsframe_header(h, WSFRAME_OP_BINARY, true, SG_WS_MAX_FRAME, NULL);
	wsframe_parser_init(&p, WSFRAME_FROM_SERVER);
	assert_int_equal(wsframe_parse(&p, h, n, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(e.len, SG_WS_MAX_FRAME);
	/* a lowered limit; 16-bit length */
	n = wsframe_header(h, WSFRAME_OP_TEXT, true, 1001, NULL);
	wsframe_parser_init(&p, WSFRAME_FROM_SERVER);
	p.max_frame = 1000;
	assert_int_equal(wsframe_parse(&p, h, n, &used, &e), WSFRAME_EV_ERROR);
	assert_int_equal(e.close_code, 1009);
}

/* Four fragments of SG_WS_MAX_FRAME make SG_WS_MAX_MESSAGE; one byte more is refused. */
static void
test_too_big_message_default(void **state)
{
	uint8_t *pl = calloc(1, SG_WS_MAX_FRAME), h[WSFRAME_HEADER_MAX];
	wsframe_parser_t p;
	wsframe_event_t e;
	size_t n, used, at;

	(void)state;
	assert_non_null(pl);
	assert_int_equal((uint64_t)SG_WS_MAX_MESSAGE, 4ULL * SG_WS_MAX_FRAME);
	wsframe_parser_init(&p, WSFRAME_FROM_SERVER);
	for (int i = 0; i < 4; i++) {
		n = wsframe_header(h, i == 0 ? WSFRAME_OP_BINARY : WSFRAME_OP_CONT, false,
		    SG_WS_MAX_FRAME, NULL);
		assert_int_equal(wsframe_parse(&p, h, n, &used, &e), WSFRAME_EV_HEAD);
		for (at = 0; at < SG_WS_MAX_FRAME; at += used)
			assert_int_equal(wsframe_parse(&p, pl + at, SG_WS_MAX_FRAME - at, &used,
			    &e), WSFRAME_EV_PAYLOAD);
		assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_FRAME_END);
		assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_NONE);
	}
	/* a ping in between is not counted */
	assert_int_equal(wsframe_parse(&p, (uint8_t *)"\x89\x00", 2, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_PAYLOAD);
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_FRAME_END);
	/* an empty fragment still fits; one byte more does not */
	n = wsframe_header(h, WSFRAME_OP_CONT, false, 0, NULL);
	assert_int_equal(wsframe_parse(&p, h, n, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(wsframe_parse(&p, NULL, 0, &used, &e), WSFRAME_EV_FRAME_END);
	n = wsframe_header(h, WSFRAME_OP_CONT, true, 1, NULL);
	assert_int_equal(wsframe_parse(&p, h, n, &used, &e), WSFRAME_EV_ERROR);
	assert_int_equal(e.close_code, WSFRAME_CLOSE_TOO_BIG);
	assert_string_equal(e.reason, "message too big");
	free(pl);
}

static void
test_too_big_message_lowered(void **state)
{
	uint8_t buf[64];
	wsframe_parser_t p;
	wsframe_event_t e;
	size_t n = 0, used, at = 0;
	int payload_events = 0;

	(void)state;
	n += frame(buf + n, WSFRAME_OP_TEXT, 0, "abcdef", 6, KEY);
	n += frame(buf + n, WSFRAME_OP_CONT, 0, "ghij", 4, KEY);
	n += frame(buf + n, WSFRAME_OP_CONT, 1, "k", 1, KEY);
	wsframe_parser_init(&p, WSFRAME_FROM_CLIENT);
	p.max_message = 10;
	for (;;) {
		enum wsframe_event_type t = wsframe_parse(&p, buf + at, n - at, &used, &e);

		at += used;
		if (t == WSFRAME_EV_PAYLOAD)
			payload_events++;
		if (t == WSFRAME_EV_ERROR || t == WSFRAME_EV_NONE)
			break;
	}
	assert_int_equal(e.type, WSFRAME_EV_ERROR);
	assert_int_equal(e.close_code, 1009);
	assert_int_equal(payload_events, 2);	/* "abcdef", "ghij"; nothing of "k" */
	assert_int_equal(at, n - 1 - 4);	/* stopped before the key of the third frame */
	/* a new message starts the count again */
	n = 0;
	n += frame(buf + n, WSFRAME_OP_TEXT, 1, "abcdefghij", 10, NULL);
	n += frame(buf + n, WSFRAME_OP_BINARY, 1, "0123456789", 10, NULL);
	wsframe_parser_init(&p, WSFRAME_FROM_SERVER);
	p.max_message = 10;
	for (at = 0;;) {
		enum wsframe_event_type t = wsframe_parse(&p, buf + at, n - at, &used, &e);

		at += used;
		assert_int_not_equal(t, WSFRAME_EV_ERROR);
		if (t == WSFRAME_EV_NONE)
			break;
	}
	assert_int_equal(at, n);
}

/* --- splits ----------------------------------------------------------------------------- */

static size_t
mixed_stream(uint8_t *buf, const uint8_t *mask)
{
	static const char reason[] = "going away";
	uint8_t big[300], close[2 + sizeof(reason) - 1] = {0x03, 0xe9};
	size_t n = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i ^ 0x5a);
	memcpy(close + 2, reason, sizeof(reason) - 1);
	n += frame(buf + n, WSFRAME_OP_TEXT, 1, "sgh1.0011aabb.x first", 21, mask);
	n += frame(buf + n, WSFRAME_OP_BINARY, 0, big, sizeof(big), mask);
	n += frame(buf + n, WSFRAME_OP_PING, 1, "are you there?", 14, mask);
	n += frame(buf + n, WSFRAME_OP_CONT, 0, "", 0, mask);
	n += frame(buf + n, WSFRAME_OP_CONT, 1, big, 130, mask);
	n += frame(buf + n, WSFRAME_OP_TEXT, 1, "", 0, mask);
	n += frame(buf + n, WSFRAME_OP_CLOSE, 1, close, sizeof(close), mask);
	return n;
}

static void
test_bytewise_equals_whole(void **state)
{
	uint8_t buf[1024];
	size_t n;
	char *whole, *t;
	struct rec r;

	(void)state;
	n = mixed_stream(buf, KEY2);
	whole = run(WSFRAME_FROM_CLIENT, buf, n, 0, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.frames, 7);
	assert_int_equal(r.messages, 3);
	assert_non_null(strstr(whole, "C1001:going away E "));
	for (size_t chunk = 1; chunk <= 17; chunk++) {
		t = run(WSFRAME_FROM_CLIENT, buf, n, chunk, NULL);
		assert_string_equal(t, whole);
		free(t);
	}
	free(whole);
	/* the same frames unmasked from the server, and an error after the close */
	n = mixed_stream(buf, NULL);
	buf[n++] = 0x81;
	whole = run(WSFRAME_FROM_SERVER, buf, n, 0, &r);
	assert_int_equal(r.err, 1002);
	for (size_t chunk = 1; chunk <= 17; chunk++) {
		t = run(WSFRAME_FROM_SERVER, buf, n, chunk, NULL);
		assert_string_equal(t, whole);
		free(t);
	}
	free(whole);
}

/* A masked data frame is unmasked in place: e.data points into the input. */
static void
test_payload_in_place(void **state)
{
	uint8_t buf[64];
	size_t n = frame(buf, WSFRAME_OP_TEXT, 1, "abcdefgh", 8, KEY), used;
	wsframe_parser_t p;
	wsframe_event_t e;

	(void)state;
	wsframe_parser_init(&p, WSFRAME_FROM_CLIENT);
	assert_int_equal(wsframe_parse(&p, buf, 9, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(used, 6);
	assert_int_equal(wsframe_parse(&p, buf + 6, 3, &used, &e), WSFRAME_EV_PAYLOAD);
	assert_ptr_equal(e.data, buf + 6);
	assert_memory_equal(buf + 6, "abc", 3);
	assert_int_not_equal(buf[9], 'd');		/* not consumed: still masked */
	assert_int_equal(wsframe_parse(&p, buf + 9, 0, &used, &e), WSFRAME_EV_NONE);
	assert_int_equal(wsframe_parse(&p, buf + 9, n - 9, &used, &e), WSFRAME_EV_PAYLOAD);
	assert_int_equal(e.offset, 3);
	assert_memory_equal(e.data, "defgh", 5);
}

/* --- encoder ---------------------------------------------------------------------------- */

static void
test_encoder_roundtrip(void **state)
{
	static const unsigned ops[] = {WSFRAME_OP_TEXT, WSFRAME_OP_BINARY, WSFRAME_OP_PING,
	    WSFRAME_OP_PONG};
	static const size_t lens[] = {0, 1, 3, 125, 126, 1000, 65535, 65536};
	uint8_t *pl = malloc(65536), *buf = malloc(65536 + WSFRAME_HEADER_MAX);
	char want[128], *t;
	struct rec r;

	(void)state;
	for (size_t i = 0; i < 65536; i++)
		pl[i] = (uint8_t)('a' + i % 26);
	for (size_t o = 0; o < SG_ARRAY_LEN(ops); o++) {
		for (size_t l = 0; l < SG_ARRAY_LEN(lens); l++) {
			size_t len = lens[l], n;

			if ((ops[o] & 8) && len > 125)
				continue;
			n = frame(buf, ops[o], 1, pl, len, KEY);
			t = run(WSFRAME_FROM_CLIENT, buf, n, 0, &r);
			snprintf(want, sizeof(want), "H%u/%uF%zu ", ops[o], ops[o], len);
			assert_int_equal(strncmp(t, want, strlen(want)), 0);
			assert_int_equal(r.err, 0);
			assert_int_equal(r.frames, 1);
			if (len > 0)
				assert_memory_equal(t + strlen(want) + 2, pl, len);
			free(t);
			n = frame(buf, ops[o], 1, pl, len, NULL);
			t = run(WSFRAME_FROM_SERVER, buf, n, 0, &r);
			assert_int_equal(strncmp(t, want, strlen(want)), 0);
			assert_int_equal(r.frames, 1);
			free(t);
		}
	}
	free(pl);
	free(buf);
}

static void
test_close_builder(void **state)
{
	uint8_t out[WSFRAME_CLOSE_MAX];
	char reason[200], *t;
	size_t n;

	(void)state;
	n = wsframe_close(out, 1000, "bye", 3, NULL);
	assert_int_equal(n, 7);
	assert_memory_equal(out, "\x88\x05\x03\xe8" "bye", 7);
	n = wsframe_close(out, 1009, "too big", 7, KEY);
	t = run(WSFRAME_FROM_CLIENT, out, n, 0, NULL);
	assert_string_equal(t, "H8/8F9 P[\\03\\f1too big] C1009:too big E ");
	free(t);
	/* no code: an empty close */
	n = wsframe_close(out, 0, "ignored", 7, NULL);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\x88\x00", 2);
	assert_int_equal(wsframe_close(out, 0, NULL, 0, KEY), 6);
	/* codes a peer may not send are refused */
	assert_int_equal(wsframe_close(out, 1005, NULL, 0, NULL), 0);
	assert_int_equal(wsframe_close(out, 1006, NULL, 0, NULL), 0);
	assert_int_equal(wsframe_close(out, 999, NULL, 0, NULL), 0);
	/* a long reason is cut to 123 bytes */
	memset(reason, 'r', sizeof(reason));
	n = wsframe_close(out, 1008, reason, sizeof(reason), KEY);
	assert_int_equal(n, WSFRAME_CLOSE_MAX);
	t = run(WSFRAME_FROM_CLIENT, out, n, 3, NULL);
	assert_non_null(strstr(t, "H8/8F125 "));
	free(t);
	/* ...without cutting a UTF-8 sequence: 122 ASCII + a 2-byte character */
	memset(reason, 'a', 122);
	memcpy(reason + 122, "\xc3\xa9", 2);
	n = wsframe_close(out, 1000, reason, 124, NULL);
	assert_int_equal(n, 2 + 2 + 122);
	assert_int_equal(out[1], 124);
	/* 121 ASCII + a 3-byte character cut after its first two bytes */
	memcpy(reason + 121, "\xe2\x82\xac", 3);
	n = wsframe_close(out, 1000, reason, 124, NULL);
	assert_int_equal(n, 2 + 2 + 121);
	/* exactly 123 bytes ending in a whole character are kept */
	memcpy(reason + 120, "\xe2\x82\xac", 3);
	n = wsframe_close(out, 1000, reason, 123, NULL);
	assert_int_equal(n, 2 + 2 + 123);
}

static void
test_wipe(void **state)
{
	uint8_t buf[32], zero[sizeof(wsframe_parser_t)] = {0};
	size_t n = frame(buf, WSFRAME_OP_PING, 1, "secret-ish", 10, NULL), used;
	wsframe_parser_t p;
	wsframe_event_t e;

	(void)state;
	wsframe_parser_init(&p, WSFRAME_FROM_SERVER);
	assert_int_equal(wsframe_parse(&p, buf, n, &used, &e), WSFRAME_EV_HEAD);
	assert_int_equal(wsframe_parse(&p, buf + used, n - used, &used, &e), WSFRAME_EV_PAYLOAD);
	assert_ptr_equal(e.data, p.ctl);
	assert_memory_equal(p.ctl, "secret-ish", 10);
	wsframe_parser_wipe(&p);
	assert_memory_equal(&p, zero, sizeof(p));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples),
		cmocka_unit_test(test_rfc_long_forms),
		cmocka_unit_test(test_length_boundaries),
		cmocka_unit_test(test_length_encoding_bytes),
		cmocka_unit_test(test_length_non_minimal),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_mask_continuity),
		cmocka_unit_test(test_fragmented_with_control),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_reserved_opcodes),
		cmocka_unit_test(test_close_codes),
		cmocka_unit_test(test_too_big_frame),
		cmocka_unit_test(test_too_big_message_default),
		cmocka_unit_test(test_too_big_message_lowered),
		cmocka_unit_test(test_bytewise_equals_whole),
		cmocka_unit_test(test_payload_in_place),
		cmocka_unit_test(test_encoder_roundtrip),
		cmocka_unit_test(test_close_builder),
		cmocka_unit_test(test_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
