/*
 * fuzz_http.c — the request/response framing layer: strict scanner, head parse, body.
 * Byte 0 picks request/response and the split size; the rest is the message stream.
 * Invariants: scanner and parser never read past the input, a parsed head's fields
 * lie inside its buffer, and the scanner gives the same answer in one feed or many.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static int
fuzz_body_cb(http_parser *p, const char *at, size_t len)
{
	size_t *total = p->data;

	*total += len;
	return at == NULL ? -1 : 0;
}

static const http_parser_settings fuzz_body_settings = {
	.on_body = fuzz_body_cb,
};

static void
fuzz_check_head(const http_head_t *h)
{
	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];

		if (f->name < h->buf || f->name + f->name_len > h->buf + h->buflen ||
		    f->value < h->buf || f->value + f->value_len > h->buf + h->buflen ||
		    strlen(f->name) != f->name_len || strlen(f->value) != f->value_len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	http_scan_t one, many;
	const char *msg = (const char *)data + 1, *why;
	size_t len, used = 0, step, off = 0, body = 0;
	int r1, r2 = HTTP_SCAN_MORE;
	http_parser p;
	http_head_t h;

	if (size < 1)
		return 0;
	len = size - 1;
	step = (data[0] >> 1) % 17 + 1;
	http_scan_init(&one, 8192);
	http_scan_init(&many, 8192);
	r1 = http_scan_feed(&one, msg, len, &used);
	while (off < len && r2 == HTTP_SCAN_MORE) {
		size_t n = len - off < step ? len - off : step, u = 0;

		r2 = http_scan_feed(&many, msg + off, n, &u);
		if (u > n)
			abort();
		off += u;
	}
	if (r1 != r2 || used > len || (r1 == HTTP_SCAN_DONE && one.total != many.total))
		abort();
	if (r1 != HTTP_SCAN_DONE)
		return 0;
	http_parser_init(&p, (data[0] & 1) ? HTTP_RESPONSE : HTTP_REQUEST);
	if (http_head_parse(&p, msg, used, &h, HTTP_GET, &why) == 0) {
		fuzz_check_head(&h);
		p.data = &body;
		http_parser_execute(&p, &fuzz_body_settings, msg + used, len - used);
		if (body > len - used)
			abort();
	} else if (why == NULL)
		abort();
	http_head_clear(&h);
	return 0;
}
