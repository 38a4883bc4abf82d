/* http.c — strict head scanning, head parsing on libhttp-parser, error answers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "http.h"

/* --- scanner ------------------------------------------------------------------------ */

enum { SCAN_LINE, SCAN_CR };
/* Empty lines tolerated before a request line (RFC 9112 2.2: "SHOULD ignore at least one"). */
#define HTTP_SCAN_MAX_LEADING_EMPTY 2

void
http_scan_init(http_scan_t *s, size_t max_bytes)
{
	memset(s, 0, sizeof(*s));
	s->max_bytes = max_bytes;
	s->st = SCAN_LINE;
}

static int
http_scan_fail(http_scan_t *s, const char *why)
{
	s->error = why;
	return HTTP_SCAN_ERROR;
}

/* A line ended (CRLF seen). Returns DONE at the empty line ending the head. */
static int
http_scan_line_end(http_scan_t *s)
{
	if (s->line_len == 0) {
		if (s->lines == 0) {
			/* leading empty line before the start line */
			if (s->total > 2 * HTTP_SCAN_MAX_LEADING_EMPTY)
				return http_scan_fail(s, "empty lines before the start line");
			return HTTP_SCAN_MORE;
		}
		return HTTP_SCAN_DONE;
	}
	if (s->lines > 0 && !s->saw_colon)
		return http_scan_fail(s, "header line without a colon");
	if (s->lines > SG_MAX_HEADERS)
		return http_scan_fail(s, "too many header fields");
	s->lines++;
	s->line_len = 0;
	s->in_name = true;
	s->saw_colon = false;
	return HTTP_SCAN_MORE;
}

/* Start line: single spaces between its parts, no tabs, no leading space. */
static int
http_scan_start_line(http_scan_t *s, unsigned char c)
{
	if (++s->line_len > SG_MAX_START_LINE)
		return http_scan_fail(s, "start line too long");
	if (c == '\t' || (c == ' ' && (s->line_len == 1 || s->prev == ' ')))
		return http_scan_fail(s, "malformed start line (stray whitespace)");
	s->prev = c;
	return HTTP_SCAN_MORE;
}

static int
http_scan_byte(http_scan_t *s, unsigned char c)
{
	if (c == '\0')
		return http_scan_fail(s, "NUL byte in message head");
	if (s->st == SCAN_CR) {
		if (c != '\n')
			return http_scan_fail(s, "bare CR in message head");
		s->st = SCAN_LINE;
		return http_scan_line_end(s);
	}
	if (c == '\r') {
		s->st = SCAN_CR;
		return HTTP_SCAN_MORE;
	}
	if (c == '\n')
		return http_scan_fail(s, "bare LF line ending");
	if (s->lines == 0)
		return http_scan_start_line(s, c);
	if (s->line_len == 0 && (c == ' ' || c == '\t'))
		return http_scan_fail(s, "obsolete line folding (obs-fold)");
	s->line_len++;
	if (s->in_name) {
		if (c == ':') {
			if (s->line_len == 1)
				return http_scan_fail(s, "empty header field name");
			s->in_name = false;
			s->saw_colon = true;
		} else if (c == ' ' || c == '\t')
			return http_scan_fail(s, "whitespace between field name and colon");
	}
	return HTTP_SCAN_MORE;
}

int
http_scan_feed(http_scan_t *s, const char *p, size_t len, size_t *used)
{
	if (s->error)
		return HTTP_SCAN_ERROR;
	if (s->lines == 0 && s->total == 0)
		s->in_name = true;
	for (size_t i = 0; i < len; i++) {
		int rc;

		if (++s->total > s->max_bytes)
			return http_scan_fail(s, "message head too large");
		rc = http_scan_byte(s, (unsigned char)p[i]);
		if (rc != HTTP_SCAN_MORE) {
			*used = i + 1;
			return rc;
		}
	}
	*used = len;
	return HTTP_SCAN_MORE;
}

/* --- head parsing ----------------------------------------------------------------------- */

struct head_ctx {
	http_head_t *h;
	char *base;
	size_t target_off, target_len, reason_off, reason_len;
	bool in_value;
	bool complete;
	bool skip_body;
	const char *why;
};

static int
head_on_url(http_parser *p, const char *at, size_t len)
{
	struct head_ctx *x = p->data;

	x->target_off = (size_t)(at - x->base);
	x->target_len = len;
	return 0;
}

static int
head_on_status(http_parser *p, const char *at, size_t len)
{
	struct head_ctx *x = p->data;

	x->reason_off = (size_t)(at - x->base);
	x->reason_len = len;
	return 0;
}

static int
head_on_field(http_parser *p, const char *at, size_t len)
{
	struct head_ctx *x = p->data;
	http_field_t *f;

	if (x->h->nfields >= x->h->fields_cap) {
		x->why = "too many header fields";
		return -1;
	}
	f = &x->h->fields[x->h->nfields++];
	f->name = at;
	f->name_len = len;
	f->value = at + len;	/* empty until a value arrives */
	f->value_len = 0;
	return 0;
}

static int
head_on_value(http_parser *p, const char *at, size_t len)
{
	struct head_ctx *x = p->data;
	http_field_t *f = &x->h->fields[x->h->nfields - 1];

	/* An empty value ("X:\r\n") is reported with len 0 and at pointing at the NEXT
	 * line: keeping that pointer made head_terminate write its NUL over the first byte
	 * of the following field's name (found by fuzz_http). Keep the empty value where
	 * head_on_field put it, on the ':' after the name. */
	if (len == 0)
		return 0;
	f->value = at;
	f->value_len = len;
	return 0;
}

static int
head_on_headers_complete(http_parser *p)
{
	struct head_ctx *x = p->data;

	x->h->chunked = (p->flags & F_CHUNKED) != 0;
	x->h->has_length = (p->flags & F_CONTENTLENGTH) != 0;
	x->h->content_length = x->h->has_length ? p->content_length : 0;
	x->h->keep_alive = http_should_keep_alive(p) != 0;
	return x->skip_body ? 1 : 0;
}

static int
head_on_message_complete(http_parser *p)
{
	struct head_ctx *x = p->data;

	x->complete = true;
	return 0;
}

static const http_parser_settings head_settings = {
	.on_url = head_on_url,
	.on_status = head_on_status,
	.on_header_field = head_on_field,
	.on_header_value = head_on_value,
	.on_headers_complete = head_on_headers_complete,
	.on_message_complete = head_on_message_complete,
};

/* NUL-terminate names/values in place (the bytes after them are ':' and '\r'). */
static void
head_terminate(http_head_t *h)
{
	for (size_t i = 0; i < h->nfields; i++) {
		http_field_t *f = &h->fields[i];

		while (f->value_len > 0 &&
		    (f->value[f->value_len - 1] == ' ' || f->value[f->value_len - 1] == '\t'))
			f->value_len--;
		((char *)f->name)[f->name_len] = '\0';
		((char *)f->value)[f->value_len] = '\0';
	}
}

static int
head_check_request(const http_head_t *h, const char **why)
{
	size_t hosts = 0;

	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, "Host") == 0)
			hosts++;
	if (hosts > 1) {
		*why = "more than one Host header";
		return -1;
	}
	if (h->major == 1 && h->minor >= 1 && hosts == 0 && h->method != HTTP_CONNECT) {
		*why = "HTTP/1.1 request without Host";
		return -1;
	}
	if (h->major == 1 && h->minor == 0 && http_head_get(h, "Transfer-Encoding")) {
		*why = "Transfer-Encoding in an HTTP/1.0 message";
		return -1;
	}
	if (h->major != 1) {
		*why = "unsupported HTTP version";
		return -1;
	}
	if (h->upgrade && h->method != HTTP_CONNECT && (h->chunked || h->content_length > 0)) {
		*why = "upgrade request with a body";	/* its framing would be ambiguous */
		return -1;
	}
	return 0;
}

/*
 * One block for the field table and the copy of the head. Every field line ends in a
 * LF, so the LFs bound the fields: a head costs its own size, not SG_MAX_HEADERS slots
 * (idle keep-alive connections hold their last heads).
 */
static int
http_head_alloc(http_head_t *head, const char *bytes, size_t len)
{
	size_t cap = 1;
	char *mem;

	for (const char *q = bytes; cap < SG_MAX_HEADERS &&
	    (q = memchr(q, '\n', len - (size_t)(q - bytes))) != NULL; q++)
		cap++;
	mem = malloc(cap * sizeof(http_field_t) + len + 1);
	if (mem == NULL)
		return -1;
	head->fields = (http_field_t *)(void *)mem;
	head->fields_cap = cap;
	head->buf = mem + cap * sizeof(http_field_t);
	return 0;
}

int
http_head_parse(http_parser *p, const char *bytes, size_t len, http_head_t *head,
    enum http_method request_method, const char **why)
{
	struct head_ctx x;
	void *saved = p->data;
	size_t n;

	memset(head, 0, sizeof(*head));
	memset(&x, 0, sizeof(x));
	if (http_head_alloc(head, bytes, len) < 0) {
		*why = "out of memory";
		return -1;
	}
	memcpy(head->buf, bytes, len);
	head->buf[len] = '\0';
	head->buflen = len;
	x.h = head;
	x.base = head->buf;
	x.skip_body = (p->type == HTTP_RESPONSE && request_method == HTTP_HEAD);
	p->data = &x;
	n = http_parser_execute(p, &head_settings, head->buf, len);
	p->data = saved;
	if (HTTP_PARSER_ERRNO(p) != HPE_OK || (n != len && !p->upgrade)) {
		*why = x.why ? x.why : http_errno_description(HTTP_PARSER_ERRNO(p));
		return -1;
	}
	head->is_request = (p->type == HTTP_REQUEST);
	head->method = (enum http_method)p->method;
	head->status = p->status_code;
	head->major = p->http_major;
	head->minor = p->http_minor;
	head->upgrade = p->upgrade != 0;
	head->no_body = x.complete || head->upgrade;
	head->target = head->buf + x.target_off;
	head->target_len = x.target_len;
	head->reason = head->buf + x.reason_off;
	if (head->is_request)
		head->buf[x.target_off + x.target_len] = '\0';
	else
		head->buf[x.reason_off + x.reason_len] = '\0';
	head_terminate(head);
	if (head->is_request && head_check_request(head, why) < 0)
		return -1;
	if (!head->is_request && head->major != 1) {
		*why = "unsupported HTTP version";
		return -1;
	}
	return 0;
}

void
http_head_clear(http_head_t *head)
{
	free(head->fields);	/* the block that holds buf too */
	memset(head, 0, sizeof(*head));
}

const http_field_t *
http_head_get(const http_head_t *h, const char *name)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0)
			return &h->fields[i];
	return NULL;
}

bool
http_list_has(const char *value, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = value;

	while (*p) {
		const char *end;
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		len = (size_t)(end - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == tlen && strncasecmp(p, token, tlen) == 0)
			return true;
		p = end;
	}
	return false;
}

static const char *const hop_by_hop[] = {
	"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate",
	"Content-Length",	/* re-added from the framing sealgate chose */
};

bool
http_is_hop_by_hop(const http_head_t *h, const char *name, size_t len)
{
	char tok[128];

	for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++)
		if (strlen(hop_by_hop[i]) == len && strncasecmp(hop_by_hop[i], name, len) == 0)
			return true;
	if (len >= sizeof(tok))
		return false;
	memcpy(tok, name, len);
	tok[len] = '\0';
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, "Connection") == 0 &&
		    http_list_has(h->fields[i].value, tok))
			return true;
	return false;
}

enum http_frame
http_response_frame(const http_head_t *res, bool head_like, bool scrubbed, bool decoded,
    bool client_http11)
{
	if (res->status == 204 || res->status / 100 == 1)
		return HTTP_FRAME_NONE;
	if (head_like)
		return res->has_length && !res->chunked && !decoded ? HTTP_FRAME_LENGTH :
		    HTTP_FRAME_NONE;
	if (res->no_body || (res->has_length && !res->chunked && !scrubbed))
		return HTTP_FRAME_LENGTH;
	return client_http11 ? HTTP_FRAME_CHUNKED : HTTP_FRAME_CLOSE;
}

int
http_split_authority(const char *auth, size_t len, char *host, size_t hostlen,
    uint16_t *port, uint16_t default_port)
{
	const char *h = auth, *colon = NULL, *end = auth + len;
	size_t hl;

	if (len == 0)
		return -1;
	if (auth[0] == '[') {
		const char *rb = memchr(auth, ']', len);

		if (rb == NULL)
			return -1;
		h = auth + 1;
		hl = (size_t)(rb - h);
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
	} else {
		colon = memchr(auth, ':', len);
		hl = colon ? (size_t)(colon - auth) : len;
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return -1;	/* bare IPv6 without brackets */
	}
	if (hl > 1 && h[hl - 1] == '.' && h[hl - 2] != '.')
		hl--;		/* "example.com." names example.com */
	if (hl == 0 || hl >= hostlen)
		return -1;
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)h[i] <= ' ' || h[i] == '/' || h[i] == '@' || h[i] == '\\')
			return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		host[i] = (char)tolower((unsigned char)host[i]);
	*port = default_port;
	if (colon) {
		unsigned long v = 0;
		const char *q = colon + 1;

		if (q == end)
			return -1;
		for (; q < end; q++) {
			if (!isdigit((unsigned char)*q))
				return -1;
			v = v * 10 + (unsigned long)(*q - '0');
			if (v > 65535)
				return -1;
		}
		if (v == 0)
			return -1;
		*port = (uint16_t)v;
	}
	return 0;
}

bool
http_authority_equal(const char *a_host, uint16_t a_port, const char *b_host,
    uint16_t b_port)
{
	size_t al = strlen(a_host), bl = strlen(b_host);

	/* a trailing dot names the same host */
	if (al > 0 && a_host[al - 1] == '.')
		al--;
	if (bl > 0 && b_host[bl - 1] == '.')
		bl--;
	return a_port == b_port && al == bl && strncasecmp(a_host, b_host, al) == 0;
}

/* --- errors ------------------------------------------------------------------------------ */

const char *
http_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Error";
	}
}

char *
http_error_format(unsigned status, const char *code, const char *msg, bool close,
    const char *extra, size_t *len)
{
	json_t *o = json_pack("{s:s, s:s}", "error", code, "message", msg);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	char *out = NULL;
	int n;

	json_decref(o);
	if (body == NULL)
		return NULL;
	n = asprintf(&out, "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
	    "X-Sealgate-Error: %s\r\nContent-Length: %zu\r\n%s%s\r\n%s\n",
	    status, http_reason(status), code, strlen(body) + 1,
	    close ? "Connection: close\r\n" : "", extra ? extra : "", body);
	free(body);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return out;
}
