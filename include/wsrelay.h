/*
 * wsrelay.h — a WebSocket connection after its 101, one frame stream each way:
 *
 *   client -> server   handles in text messages (and binary ones when the swap callback
 *                      allows) are swapped for their secrets; a handle the callback
 *                      refuses, or one hidden by an encoding (leak.h), closes the
 *                      WebSocket (1008); frames are re-masked with fresh keys
 *   server -> client   every secret the connection injected is scrubbed (scrub.h, every
 *                      form) from text and binary messages, across frames and reads
 *
 * A frame in gives a frame out, but one over WSRELAY_FLUSH leaves in pieces as it
 * arrives: data messages may be re-fragmented (RFC 6455 5.4 lets an intermediary do so
 * when no extension is negotiated, and sealgate negotiates none); what each message
 * holds is kept. Control frames are relayed between whole frames: a ping or pong payload is
 * swapped or scrubbed like a message (a pong may echo a scrubbed ping), a close keeps
 * its code and its reason is treated the same way (truncated to fit 125 bytes).
 *
 * A frame that breaks RFC 6455 (wsframe.h) is answered with a close 1002, one over the
 * size limits with 1009, to the side that sent it; the other side gets 1001. Pure core:
 * bytes in, frames out through the callbacks; no sockets, no clocks, no randomness
 * (masking keys come from a callback). One relay per connection, not thread-safe.
 */
#ifndef SEALGATE_WSRELAY_H
#define SEALGATE_WSRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scrub.h"
#include "util.h"

/* Output is framed when an input frame ends, or when this much of it is waiting. */
#define WSRELAY_FLUSH		(64 * 1024)

typedef struct wsrelay wsrelay_t;

typedef struct wsrelay_ops {
	/*
	 * A handle found in a client message (binary: in a binary one, or in a control
	 * frame's payload when false). 0: *secret, *slen replace it (valid until the next
	 * callback); -1: refused, *code names why (static), *exfiltration flags a host out
	 * of scope.
	 */
	int (*swap)(void *arg, const char *handle, size_t len, bool binary,
	    const char **secret, size_t *slen, const char **code, bool *exfiltration);
	/* Bytes toward the server; secret: they carry an injected secret (wipe them). */
	int (*to_server)(void *arg, const void *p, size_t n, bool secret);
	/* Bytes toward the client. */
	int (*to_client)(void *arg, const void *p, size_t n);
	/* Four unpredictable bytes: the masking key of one frame toward the server. */
	void (*mask_key)(void *arg, uint8_t key[4]);
} wsrelay_ops_t;

enum wsrelay_rc {
	WSRELAY_OK = 0,		/* go on */
	WSRELAY_CLOSE = 1,	/* close frames are written: send them, then close (see
				 * wsrelay_error); later input is ignored */
	WSRELAY_FAIL = -1,	/* out of memory or an output callback failed: cut */
};

/*
 * A relay over the connection's response scrubber (borrowed, not NULL: an empty one
 * passes bytes through; needles added to it later apply at once). NULL when out of
 * memory.
 */
wsrelay_t *wsrelay_new(scrub_t *scrub, const wsrelay_ops_t *ops, void *arg) SG_WUR;
/* Zero and free (held handle text, buffered frames). NULL is fine. */
void wsrelay_free(wsrelay_t *r);

/* Bytes read from the client / the server. in must be writable (unmasked in place). */
int wsrelay_client(wsrelay_t *r, uint8_t *in, size_t len) SG_WUR;
int wsrelay_server(wsrelay_t *r, uint8_t *in, size_t len) SG_WUR;

/*
 * After WSRELAY_CLOSE: the error code for the audit line ("websocket_protocol_error",
 * "websocket_too_big", "handle_encoded", or the swap callback's code), the close code
 * sent to the client and whether it was a possible exfiltration; NULL when the relay
 * closed normally.
 */
const char *wsrelay_error(const wsrelay_t *r, unsigned *client_code, bool *exfiltration)
    __attribute__((nonnull(1)));
/* Has each side sent its close frame (a normal end)? */
bool wsrelay_closed(const wsrelay_t *r) SG_NONNULL;
/* Messages relayed each way, and handles swapped (for the audit line and metrics). */
void wsrelay_counts(const wsrelay_t *r, uint64_t *to_server, uint64_t *to_client,
    uint64_t *swapped) SG_NONNULL;

#endif
