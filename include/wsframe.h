/*
 * wsframe.h — RFC 6455 WebSocket frame codec: an incremental parser for one direction of
 * a connection and an encoder. Pure core: no allocation, no sockets, no clocks, no
 * randomness (masking keys come from the caller). State lives in a wsframe_parser_t the
 * caller owns; one parser per direction, not thread-safe.
 *
 * Parser (pull API). The caller loops:
 *
 *     for (;;) {
 *         ev = wsframe_parse(p, in, len, &used, &e);
 *         in += used; len -= used;
 *         if (ev == WSFRAME_EV_NONE) break;      all of in consumed, more input needed
 *         if (ev == WSFRAME_EV_ERROR) ...         send a close with e.close_code, cut
 *         ...
 *     }
 *
 * One event per call. Some events consume no input (FRAME_END, MESSAGE_END, the head
 * of an empty frame), so keep calling, also with len 0, until WSFRAME_EV_NONE. Events
 * of a frame: HEAD, then PAYLOAD events, then FRAME_END; after the FRAME_END of a data
 * frame with FIN set, MESSAGE_END.
 *   - Data frames (continuation, text, binary): the payload arrives as PAYLOAD events of
 *     1 or more bytes each, as the bytes arrive (a frame is never buffered); a frame of
 *     length 0 has none.
 *   - Control frames (close, ping, pong): exactly one PAYLOAD event with the whole
 *     payload (0..125 bytes, possibly empty), held in the parser until complete; for a
 *     close frame it carries the close code and reason.
 *
 * Unmasking is in place: in must be writable. Payload bytes of a data frame are unmasked
 * where they lie and e.data points into in; header bytes and control payloads are
 * copied into the parser (e.data then points into the parser). Bytes not yet consumed
 * are left untouched. e.data is valid until the next call or until in is released.
 *
 * Rules enforced (each failure is a WSFRAME_EV_ERROR, sticky: every later call returns
 * the same error without consuming input):
 *   close code 1002 (protocol error):
 *     a frame from the client that is not masked, or from the server that is (5.1);
 *     any RSV bit set (sealgate never lets an extension be negotiated, so
 *     permessage-deflate frames are refused here);
 *     opcodes 3-7 and 11-15;
 *     a continuation with no message open, a text/binary frame while one is open;
 *     a control frame with FIN clear or a payload over 125 bytes (also one using the
 *     16- or 64-bit length form: a control length must fit the 7-bit field);
 *     a 64-bit length with the most significant bit set;
 *     a close payload of 1 byte, or a close code outside 1000-1003, 1007-1014,
 *     3000-4999 (1004-1006 and 1015 are reserved or must not be sent);
 *     any byte after a close frame (the peer must not send after it).
 *   close code 1009 (message too big): a frame longer than max_frame, or a message whose
 *     fragments add up to more than max_message. Both are decided from the header,
 *     before any payload byte is accepted.
 * Errors are decided at fixed points of the byte stream, so a stream split anywhere
 * yields the same events (with PAYLOAD bytes cut differently) as the stream in one piece.
 *
 * Deliberately not enforced:
 *   - Non-minimal lengths (the 16-bit form for < 126, the 64-bit form for < 65536) are
 *     accepted. RFC 6455 5.2 says the minimal form MUST be used, but peers' encoders
 *     differ and nothing is ambiguous about the length; the encoder below always writes
 *     the minimal form, so a relay re-framing through it normalises them.
 *   - UTF-8 of text frames and close reasons is not validated: sealgate rewrites text
 *     payloads (handle swap, secret scrub) and the endpoints validate what they get.
 *   - Control payloads are relayed as they are; note they can carry text too (a close
 *     reason, a ping echoed by a pong).
 *
 * Memory: a control payload stays in the parser until the next control frame;
 * wsframe_parser_wipe zeroes it (and all state).
 *
 * Encoder: wsframe_header writes a header (minimal length form, RSV 0, masked when a
 * key is given); wsframe_mask (un)masks payload bytes at any offset of a frame;
 * wsframe_close builds a whole close frame.
 */
#ifndef SEALGATE_WSFRAME_H
#define SEALGATE_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define WSFRAME_HEADER_MAX	14	/* 2 + 8 (64-bit length) + 4 (masking key) */
#define WSFRAME_CONTROL_MAX	125	/* largest control payload (5.5) */
#define WSFRAME_CLOSE_REASON_MAX (WSFRAME_CONTROL_MAX - 2)
#define WSFRAME_CLOSE_MAX	(2 + 4 + WSFRAME_CONTROL_MAX)	/* a whole close frame */

enum wsframe_opcode {
	WSFRAME_OP_CONT = 0x0,
	WSFRAME_OP_TEXT = 0x1,
	WSFRAME_OP_BINARY = 0x2,
	WSFRAME_OP_CLOSE = 0x8,
	WSFRAME_OP_PING = 0x9,
	WSFRAME_OP_PONG = 0xa,
};

/* Close codes sealgate itself sends (7.4.1). */
#define WSFRAME_CLOSE_NORMAL	1000
#define WSFRAME_CLOSE_GOING_AWAY 1001
#define WSFRAME_CLOSE_PROTOCOL	1002
#define WSFRAME_CLOSE_POLICY	1008
#define WSFRAME_CLOSE_TOO_BIG	1009
#define WSFRAME_CLOSE_INTERNAL	1011

enum wsframe_dir {
	WSFRAME_FROM_CLIENT,	/* frames must be masked */
	WSFRAME_FROM_SERVER,	/* frames must not be masked */
};

enum wsframe_event_type {
	WSFRAME_EV_NONE = 0,	/* input consumed; feed more */
	WSFRAME_EV_HEAD,	/* a frame header: opcode, msg_opcode, fin, len */
	WSFRAME_EV_PAYLOAD,	/* data, data_len (unmasked); close_code/reason for close */
	WSFRAME_EV_FRAME_END,
	WSFRAME_EV_MESSAGE_END,	/* after the FRAME_END of a data frame with FIN */
	WSFRAME_EV_ERROR,	/* close_code, reason; the parser is dead */
};

typedef struct wsframe_event {
	enum wsframe_event_type type;
	/* every event but NONE/ERROR: the current frame */
	unsigned opcode;	/* the frame's own opcode (0 for a continuation) */
	unsigned msg_opcode;	/* data frames: TEXT or BINARY of the message (also for its
				 * continuations); control frames: the opcode */
	bool fin;
	uint64_t len;		/* the frame's payload length */
	/* PAYLOAD */
	const uint8_t *data;
	size_t data_len;
	uint64_t offset;	/* where data starts within the frame's payload */
	/* PAYLOAD of a close frame: 0 when the payload is empty (RFC 6455 reports that as
	 * 1005, a code never sent); reason points into data. ERROR: 1002 or 1009. */
	unsigned close_code;
	const uint8_t *close_reason;
	size_t close_reason_len;
	const char *reason;	/* ERROR: static text naming the rule (no payload bytes) */
} wsframe_event_t;

/* Internal state; treat as opaque except the two limits. */
typedef struct wsframe_parser {
	/* Set by init to SG_WS_MAX_FRAME / SG_WS_MAX_MESSAGE; may be changed before the
	 * first byte (a policy limit, a test). */
	uint64_t max_frame, max_message;

	uint8_t state, dir;
	uint8_t hdr[WSFRAME_HEADER_MAX];
	uint8_t hdr_have, hdr_need;	/* header bytes held / needed so far */
	uint8_t hdr_stage;		/* flags+length7, extended length, masking key */
	uint8_t opcode, msg_opcode;	/* msg_opcode: 0 when no message is open */
	uint8_t frame_msg_opcode;	/* the current frame's msg_opcode for events */
	bool fin, masked, closed;
	uint8_t mask[4];
	uint64_t len, done;		/* current frame: length, payload bytes consumed */
	uint64_t msg_len;		/* open message: sum of its frames' lengths */
	unsigned err_code;
	const char *err_reason;
	uint8_t ctl[WSFRAME_CONTROL_MAX];
} wsframe_parser_t;

/* A parser for frames sent by the client (WSFRAME_FROM_CLIENT) or the server. */
void wsframe_parser_init(wsframe_parser_t *p, enum wsframe_dir dir) SG_NONNULL;

/*
 * Consume bytes from in[0..len) up to the next event; *used = bytes consumed (may be 0).
 * Returns the event type (also in ev->type). in may be NULL when len is 0.
 */
enum wsframe_event_type wsframe_parse(wsframe_parser_t *p, uint8_t *in, size_t len,
    size_t *used, wsframe_event_t *ev) __attribute__((nonnull(1, 4, 5)));

/* Zero the whole parser (held control payload included); init again to reuse it. */
void wsframe_parser_wipe(wsframe_parser_t *p) SG_NONNULL;

/* Is code a close code a peer may send (1000-1003, 1007-1014, 3000-4999)? */
bool wsframe_close_code_valid(unsigned code);

/*
 * Write a frame header into out: FIN as given, RSV 0, the minimal length form, the
 * mask bit and key when mask is not NULL. Returns its size (2..14), or 0 when opcode is
 * not one of the six defined, len >= 2^63, or a control frame has fin false or len > 125.
 */
size_t wsframe_header(uint8_t out[WSFRAME_HEADER_MAX], unsigned opcode, bool fin,
    uint64_t len, const uint8_t mask[4]) __attribute__((nonnull(1)));

/*
 * XOR buf[0..len) with key, buf[0] being byte number offset of the frame's payload:
 * masks and unmasks (5.3), piece by piece.
 */
void wsframe_mask(uint8_t *buf, size_t len, const uint8_t key[4], uint64_t offset)
    __attribute__((nonnull(3)));

/*
 * A whole close frame into out: code (0: an empty payload, no reason) and reason,
 * truncated to WSFRAME_CLOSE_REASON_MAX bytes without cutting a UTF-8 sequence; masked
 * with mask unless it is NULL. Returns the frame's size, or 0 when code is neither 0 nor
 * wsframe_close_code_valid.
 */
size_t wsframe_close(uint8_t out[WSFRAME_CLOSE_MAX], unsigned code, const char *reason,
    size_t reason_len, const uint8_t mask[4]) __attribute__((nonnull(1)));

#endif
