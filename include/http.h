/*
 * http.h — HTTP/1.1 message heads: a strict incremental scanner in front of
 * libhttp-parser, the parsed head, and the error answers sealgate sends.
 * Pure core: bytes in, structs out; no sockets, no event loop.
 *
 * libhttp-parser 2.9 (strict build) rejects CL+TE, repeated/negative CL, bad chunk
 * sizes and unknown Transfer-Encoding, but accepts obs-fold, bare-LF line ends and
 * whitespace between a field name and its colon; http_scan rejects those first.
 */
#ifndef SEALGATE_HTTP_H
#define SEALGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "defaults.h"

/* --- the strict head scanner -------------------------------------------------------- */

typedef struct http_scan {
	size_t total;		/* bytes of the head seen so far */
	size_t line_len;	/* bytes of the current line */
	uint32_t lines;		/* complete lines (start line included) */
	size_t max_bytes;	/* whole-head limit */
	uint8_t st;		/* internal state */
	unsigned char prev;	/* previous byte of the start line */
	bool in_name;		/* before the colon of a field line */
	bool saw_colon;
	const char *error;	/* static reason once failed */
} http_scan_t;

enum http_scan_rc { HTTP_SCAN_MORE = 0, HTTP_SCAN_DONE = 1, HTTP_SCAN_ERROR = -1 };

void http_scan_init(http_scan_t *s, size_t max_bytes);
/*
 * Feed bytes that follow those already fed. Returns DONE with *used = the bytes of this
 * call that belong to the head (its end included), MORE when all were consumed, ERROR
 * with s->error set. Bytes after DONE are not looked at.
 */
int http_scan_feed(http_scan_t *s, const char *p, size_t len, size_t *used);

/* --- a parsed head -------------------------------------------------------------------- */

typedef struct http_field {
	const char *name, *value;	/* NUL-terminated, inside head->buf */
	size_t name_len, value_len;
} http_field_t;

typedef struct http_head {
	bool is_request;
	enum http_method method;	/* requests */
	unsigned status;		/* responses */
	unsigned short major, minor;
	const char *target;		/* request-target, NUL-terminated */
	size_t target_len;
	const char *reason;		/* responses */
	http_field_t *fields;		/* nfields of fields_cap, in the block of buf */
	size_t nfields, fields_cap;
	bool chunked;			/* Transfer-Encoding: chunked */
	bool has_length;		/* Content-Length present */
	uint64_t content_length;
	bool keep_alive;		/* http_should_keep_alive after the head */
	bool upgrade;			/* parser saw a valid Upgrade */
	bool no_body;			/* the message has no body at all */
	char *buf;			/* copy of the head bytes, rewritten in place (owned
					 * with fields: one allocation, freed by http_head_clear) */
	size_t buflen;
} http_head_t;

/*
 * Parse one complete head (as delimited by http_scan) with parser p, which must have
 * been http_parser_init'ed for the direction and is left positioned at the body.
 * For responses, request_method is the method of the request answered (HEAD → no body).
 * Returns 0, or -1 with *why set to a static message. head must be freed with
 * http_head_clear. The parser's callbacks for the body are those of settings_body.
 */
int http_head_parse(http_parser *p, const char *bytes, size_t len, http_head_t *head,
    enum http_method request_method, const char **why);
void http_head_clear(http_head_t *head);

/* Field lookup, case-insensitive. First match or NULL. */
const http_field_t *http_head_get(const http_head_t *h, const char *name);
/* Does the comma-separated field list (e.g. Connection) contain token? */
bool http_list_has(const char *value, const char *token);
/* Is name a hop-by-hop header, either always or because Connection lists it? */
bool http_is_hop_by_hop(const http_head_t *h, const char *name, size_t len);

/*
 * How sealgate delimits a response toward its client. head_like: the request was HEAD or
 * the status is 304 (a length may be announced, no body follows); scrubbed: the body is
 * scrubbed on the way, so its length is not known before its end; decoded: its
 * Content-Encoding is also undone (another representation: the upstream's length does
 * not describe it); client_http11: the client spoke HTTP/1.1 (chunked allowed). 101 is
 * the caller's.
 *   HTTP_FRAME_NONE     no body and no length: 1xx, 204, a HEAD/304 answer without a
 *                       length or whose representation is decoded
 *   HTTP_FRAME_LENGTH   Content-Length: res->content_length. A HEAD/304 answer's length
 *                       (no body follows: S3 clients size downloads by it); a body that
 *                       passes unchanged; none at all (complete with its head:
 *                       "Content-Length: 0", nothing to scrub, no chunk would end it)
 *   HTTP_FRAME_CHUNKED  re-framed chunked: the body is rewritten, or has no length
 *   HTTP_FRAME_CLOSE    the connection's end ends the body (an HTTP/1.0 client)
 */
enum http_frame { HTTP_FRAME_NONE, HTTP_FRAME_LENGTH, HTTP_FRAME_CHUNKED, HTTP_FRAME_CLOSE };
enum http_frame http_response_frame(const http_head_t *res, bool head_like, bool scrubbed,
    bool decoded, bool client_http11);

/* Split an authority "host:port" / "[v6]:port" into host (brackets removed) and port. */
int http_split_authority(const char *auth, size_t len, char *host, size_t hostlen,
    uint16_t *port, uint16_t default_port);
/* Do two authorities name the same host and port? (case-insensitive, default ports) */
bool http_authority_equal(const char *a_host, uint16_t a_port, const char *b_host,
    uint16_t b_port);

/* --- error answers ------------------------------------------------------------------------ */

/*
 * Format a complete error answer: status line, Content-Type: application/json,
 * X-Sealgate-Error: code, Content-Length, Connection: close (when close), extra headers
 * (each "Name: value\r\n", may be NULL), and body {"error": code, "message": msg}.
 * Returns a malloc'd buffer and its length in *len.
 */
char *http_error_format(unsigned status, const char *code, const char *msg, bool close,
    const char *extra, size_t *len);
const char *http_reason(unsigned status);

#endif
