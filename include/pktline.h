/*
 * pktline.h — git's pkt-line framing (gitprotocol-common(5)) and the receive-pack
 * messages sealgate reads and writes: ref-update commands (gitprotocol-pack(5)
 * "update-requests") and a report-status answer, optionally inside side-band-64k.
 *
 * Pure core: no sockets, no clocks. The parser's state is a pktline_t the caller owns
 * (no allocation inside it); encoders return malloc'd buffers the caller frees.
 *
 * Parser (pull API): pktline_next consumes bytes until one packet is complete, returns
 * PKTLINE_EV_PACKET with it in *pkt (data points into the parser, valid until the next
 * call), or PKTLINE_EV_NONE once all of the input is used with no packet complete. A
 * stream split anywhere yields the same packets as the stream in one piece. Errors
 * (PKTLINE_EV_ERROR) are sticky: a length that is not 4 hex digits, the reserved
 * length 0003, or a length above PKTLINE_MAX (git's LARGE_PACKET_MAX).
 */
#ifndef SEALGATE_PKTLINE_H
#define SEALGATE_PKTLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* git's LARGE_PACKET_MAX: the longest pkt-line, its 4 length digits included. */
#define PKTLINE_MAX		65520
#define PKTLINE_DATA_MAX	(PKTLINE_MAX - 4)
/* side-band-64k: one band byte inside a pkt-line. */
#define PKTLINE_BAND_DATA_MAX	(PKTLINE_DATA_MAX - 1)
/* Object ids: sha1 in hex, sha256 in hex. */
#define PKTLINE_OID_SHA1	40
#define PKTLINE_OID_SHA256	64
/* Longest ref name sealgate accepts in a command (git has no bound; 1 KiB is plenty
 * for any branch or tag name a policy can speak about). */
#define PKTLINE_REF_MAX		1024

enum pktline_kind {
	PKTLINE_DATA,		/* 0004..PKTLINE_MAX: len bytes of data */
	PKTLINE_FLUSH,		/* 0000 */
	PKTLINE_DELIM,		/* 0001 (protocol v2) */
	PKTLINE_END,		/* 0002 response-end (protocol v2) */
};

enum pktline_ev { PKTLINE_EV_NONE, PKTLINE_EV_PACKET, PKTLINE_EV_ERROR };

typedef struct pktline_pkt {
	enum pktline_kind kind;
	const char *data;	/* PKTLINE_DATA only; NUL-terminated copy, len bytes */
	size_t len;
} pktline_pkt_t;

typedef struct pktline {
	char hdr[4];
	size_t nhdr;		/* length digits read */
	size_t want, have;	/* payload bytes of the packet being read */
	bool err;
	char buf[PKTLINE_DATA_MAX + 1];
} pktline_t;

void pktline_init(pktline_t *p) SG_NONNULL;
enum pktline_ev pktline_next(pktline_t *p, const void *in, size_t len, size_t *used,
    pktline_pkt_t *pkt) __attribute__((nonnull(1, 4, 5)));

/* One ref-update command: "old-oid SP new-oid SP refname" (LF optional); the first
 * command of a push carries NUL and the capability list after the ref name. */
typedef struct pktline_command {
	char old_oid[PKTLINE_OID_SHA256 + 1];
	char new_oid[PKTLINE_OID_SHA256 + 1];
	char ref[PKTLINE_REF_MAX + 1];
	size_t oid_len;		/* 40 or 64 */
	const char *caps;	/* into the line (first command only), else NULL */
	size_t caps_len;
} pktline_command_t;

/*
 * Parse a command line (data of one pkt-line). first: NUL + capabilities may follow the
 * ref name. Oids are lower-case hex of one length (40 or 64) for both; the ref name
 * starts with "refs/" and passes the checks of git check-ref-format that matter to a
 * pattern match (no control characters, space, ~ ^ : ? [ \, "..", "@{", "//", no
 * trailing '/' or '.', no ".lock" ending). 0, or -1.
 */
int pktline_command_parse(const char *line, size_t len, bool first, pktline_command_t *cmd)
    SG_NONNULL SG_WUR;
/* Is oid (oid_len hex digits) all zeros (a create's old, a delete's new)? */
bool pktline_oid_is_zero(const char *oid) SG_NONNULL;
/* Does the capability list (space separated) name cap exactly? */
bool pktline_caps_has(const char *caps, size_t len, const char *cap);

/* A growing byte string the encoders write into (free p with free()). */
typedef struct pktline_buf {
	char *p;
	size_t len, cap;
	bool err;		/* out of memory: every later write is dropped */
} pktline_buf_t;

/* Append one data pkt-line (len <= PKTLINE_DATA_MAX; longer is an error). */
void pktline_put(pktline_buf_t *b, const void *data, size_t len) SG_NONNULL;
void pktline_put_flush(pktline_buf_t *b) SG_NONNULL;
/* Append data on side-band band (1..3), cut into pkt-lines of at most
 * PKTLINE_BAND_DATA_MAX bytes each. */
void pktline_put_band(pktline_buf_t *b, int band, const void *data, size_t len) SG_NONNULL;

/* One line of a report-status: reason NULL means "ok REF", else "ng REF reason". */
typedef struct pktline_status {
	const char *ref;
	const char *reason;
} pktline_status_t;

/*
 * The report-status answer of a receive-pack: "unpack ok", one line per ref, flush.
 * sideband: wrapped in side-band-64k band 1 (after a band-2 message, when msg is not
 * NULL), then a flush. A malloc'd buffer and its length, or NULL when out of memory.
 */
char *pktline_report_status(const pktline_status_t *st, size_t n, bool sideband,
    const char *msg, size_t *len) __attribute__((nonnull(5))) SG_WUR;

#endif
