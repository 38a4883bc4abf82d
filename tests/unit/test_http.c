/* test_http.c — the strict head scanner, head parsing, authorities, error answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

/* Scan a whole head in one feed and in 1-byte feeds; both must agree. */
static int
scan_all(const char *msg, size_t *headlen, const char **why)
{
	http_scan_t a, b;
	size_t used = 0, len = strlen(msg);
	int ra = HTTP_SCAN_MORE, rb = HTTP_SCAN_MORE;

	http_scan_init(&a, 4096);
	http_scan_init(&b, 4096);
	ra = http_scan_feed(&a, msg, len, &used);
	for (size_t i = 0; i < len && rb == HTTP_SCAN_MORE; i++) {
		size_t u;

		rb = http_scan_feed(&b, msg + i, 1, &u);
	}
	assert_int_equal(ra, rb);
	if (ra == HTTP_SCAN_DONE)
		assert_int_equal(a.total, b.total);
	*headlen = a.total;
	*why = a.error;
	return ra;
}

static void
test_scan_good(void **state)
{
	static const char *good[] = {
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",		/* one leading CRLF */
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	};
	size_t hl;
	const char *why;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(good); i++) {
		assert_int_equal(scan_all(good[i], &hl, &why), HTTP_SCAN_DONE);
		assert_int_equal(hl, strlen(good[i]));
	}
}

static void
test_scan_stops_at_head_end(void **state)
{
	const char *m = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n";
	http_scan_t s;
	size_t used;

	(void)state;
	http_scan_init(&s, 4096);
	assert_int_equal(http_scan_feed(&s, m, strlen(m), &used), HTTP_SCAN_DONE);
	assert_int_equal(used, strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
}

static void
test_scan_bad(void **state)
{
	static const struct { const char *msg, *why; } bad[] = {
		{"GET / HTTP/1.1\nHost: a\n\n", "bare LF"},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", "bare LF"},
		{"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "bare CR"},
		{"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "obs-fold"},
		{"GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", "obs-fold"},
		{"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace between"},
		{"GET / HTTP/1.1\r\nHo\tst: a\r\n\r\n", "whitespace between"},
		{"GET / HTTP/1.1\r\nHosta\r\n\r\n", "without a colon"},
		{"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "stray whitespace"},
		{"GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", "stray whitespace"},
		{"GET / HTTP/1.1\r\n: a\r\n\r\n", "empty header field name"},
		{"\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", "empty lines"},
	};
	size_t hl;
	const char *why;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		assert_int_equal(scan_all(bad[i].msg, &hl, &why), HTTP_SCAN_ERROR);
		assert_non_null(strstr(why, bad[i].why));
	}
}

static void
test_scan_nul_and_limits(void **state)
{
	char big[9000];
	http_scan_t s;
	size_t used;

	(void)state;
	http_scan_init(&s, 4096);
	assert_int_equal(http_scan_feed(&s, "GET /\0 HTTP/1.1\r\n", 17, &used), HTTP_SCAN_ERROR);
	assert_non_null(strstr(s.error, "NUL"));

	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	http_scan_init(&s, 65536);
	assert_int_equal(http_scan_feed(&s, big, sizeof(big), &used), HTTP_SCAN_ERROR);
	assert_non_null(strstr(s.error, "start line too long"));

	http_scan_init(&s, 100);
	assert_int_equal(http_scan_feed(&s, "GET / HTTP/1.1\r\n", 16, &used), HTTP_SCAN_MORE);
	memset(big, 'x', 200);
	big[0] = 'X';
	big[1] = ':';
	assert_int_equal(http_scan_feed(&s, big, 200, &used), HTTP_SCAN_ERROR);
	assert_non_null(strstr(s.error, "too large"));
}

static void
test_scan_too_many_fields(void **state)
{
	char buf[SG_MAX_HEADERS * 8 + 64];
	size_t n = 0, hl;
	const char *why;
	http_scan_t s;

	(void)state;
	n += (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= SG_MAX_HEADERS + 1; i++)
		n += (size_t)sprintf(buf + n, "A: b\r\n");
	strcpy(buf + n, "\r\n");
	http_scan_init(&s, sizeof(buf));
	assert_int_equal(http_scan_feed(&s, buf, strlen(buf), &hl), HTTP_SCAN_ERROR);
	why = s.error;
	assert_non_null(strstr(why, "too many"));
}

static int
parse(const char *msg, enum http_parser_type t, enum http_method m, http_head_t *h,
    const char **why)
{
	http_parser p;

	http_parser_init(&p, t);
	return http_head_parse(&p, msg, strlen(msg), h, m, why);
}

static void
test_parse_request(void **state)
{
	const char *m = "POST http://a.test/x?y=1 HTTP/1.1\r\nHost: a.test\r\n"
	    "Content-Length: 5\r\nX-Pad:  v  \r\nConnection: keep-alive, X-Hop\r\n"
	    "X-Hop: 1\r\n\r\n";
	const char *why = NULL;
	http_head_t h;

	(void)state;
	assert_int_equal(parse(m, HTTP_REQUEST, HTTP_GET, &h, &why), 0);
	assert_int_equal(h.method, HTTP_POST);
	assert_string_equal(h.target, "http://a.test/x?y=1");
	assert_true(h.has_length);
	assert_int_equal(h.content_length, 5);
	assert_false(h.no_body);
	assert_string_equal(http_head_get(&h, "x-pad")->value, "v");
	assert_true(http_is_hop_by_hop(&h, "X-Hop", 5));
	assert_true(http_is_hop_by_hop(&h, "keep-alive", 10));
	assert_false(http_is_hop_by_hop(&h, "X-Pad", 5));
	assert_true(h.keep_alive);
	http_head_clear(&h);
}

/* An empty field value must not eat the next field's name (fuzz_http found it): the
 * field after "X-Empty:" keeps its name, so Host/Transfer-Encoding stay visible. */
static void
test_parse_empty_value_keeps_next_name(void **state)
{
	static const char *msgs[] = {
		"POST / HTTP/1.1\r\nX-Empty:\r\nHost: a\r\nX-E2: \r\n"
		    "Transfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nX-Empty: \t \r\nHost: a\r\nX-E2:\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n",
	};

	(void)state;
	for (size_t m = 0; m < SG_ARRAY_LEN(msgs); m++) {
		http_parser p;
		http_head_t h;
		const char *why = NULL;
		const http_field_t *f;

		http_parser_init(&p, HTTP_REQUEST);
		assert_int_equal(http_head_parse(&p, msgs[m], strlen(msgs[m]), &h, HTTP_GET,
		    &why), 0);
		assert_int_equal(h.nfields, 4);
		for (size_t i = 0; i < h.nfields; i++) {
			assert_int_equal(strlen(h.fields[i].name), h.fields[i].name_len);
			assert_int_equal(strlen(h.fields[i].value), h.fields[i].value_len);
		}
		assert_non_null(f = http_head_get(&h, "X-Empty"));
		assert_string_equal(f->value, "");
		assert_non_null(f = http_head_get(&h, "X-E2"));
		assert_string_equal(f->value, "");
		assert_non_null(f = http_head_get(&h, "Host"));
		assert_string_equal(f->value, "a");
		assert_non_null(f = http_head_get(&h, "Transfer-Encoding"));
		assert_string_equal(f->value, "chunked");
		assert_true(h.chunked);
		http_head_clear(&h);
	}
}

static void
test_parse_rejects(void **state)
{
	static const char *bad[] = {
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",				/* no Host */
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",		/* two Hosts */
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	};
	const char *why;
	http_head_t h;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		why = NULL;
		assert_int_equal(parse(bad[i], HTTP_REQUEST, HTTP_GET, &h, &why), -1);
		assert_non_null(why);
		http_head_clear(&h);
	}
}

static void
test_parse_response_framing(void **state)
{
	const char *why;
	http_head_t h;

	(void)state;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", HTTP_RESPONSE,
	    HTTP_HEAD, &h, &why), 0);
	assert_true(h.no_body);		/* answer to HEAD */
	http_head_clear(&h);
	assert_int_equal(parse("HTTP/1.1 204 No Content\r\n\r\n", HTTP_RESPONSE, HTTP_GET, &h,
	    &why), 0);
	assert_true(h.no_body);
	http_head_clear(&h);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	    HTTP_RESPONSE, HTTP_GET, &h, &why), 0);
	assert_true(h.chunked);
	assert_false(h.no_body);
	assert_string_equal(h.reason, "OK");
	http_head_clear(&h);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\n\r\n", HTTP_RESPONSE, HTTP_GET, &h, &why), 0);
	assert_false(h.no_body);	/* read until close */
	assert_false(h.has_length);
	http_head_clear(&h);
}

/* The framing of a response toward the client for one head; frees it. */
static enum http_frame
frame_of(const char *msg, enum http_method m, bool scrubbed, bool decoded, bool http11)
{
	const char *why;
	http_head_t h;
	enum http_frame f;

	assert_int_equal(parse(msg, HTTP_RESPONSE, m, &h, &why), 0);
	f = http_response_frame(&h, m == HTTP_HEAD || h.status == 304, scrubbed, decoded,
	    http11);
	http_head_clear(&h);
	return f;
}

static void
test_response_frame(void **state)
{
	static const char len10[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	static const char len0[] = "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n";
	static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char eof[] = "HTTP/1.1 200 OK\r\n\r\n";

	(void)state;
	assert_int_equal(frame_of(len10, HTTP_GET, false, false, true), HTTP_FRAME_LENGTH);
	assert_int_equal(frame_of(len10, HTTP_GET, true, false, true), HTTP_FRAME_CHUNKED);
	assert_int_equal(frame_of(len10, HTTP_GET, true, true, true), HTTP_FRAME_CHUNKED);
	assert_int_equal(frame_of(len10, HTTP_GET, true, false, false), HTTP_FRAME_CLOSE);
	/* a HEAD answer keeps its length when scrubbing (S3 HeadObject: ContentLength sizes
	 * the download), not when the representation is decoded */
	assert_int_equal(frame_of(len10, HTTP_HEAD, false, false, true), HTTP_FRAME_LENGTH);
	assert_int_equal(frame_of(len10, HTTP_HEAD, true, false, true), HTTP_FRAME_LENGTH);
	assert_int_equal(frame_of(len10, HTTP_HEAD, true, true, true), HTTP_FRAME_NONE);
	assert_int_equal(frame_of(chunked, HTTP_HEAD, true, false, true), HTTP_FRAME_NONE);
	/* complete with its head (an S3 PutObject answer): its length stands even when the
	 * body would be scrubbed; re-framed chunked, no chunk would ever end it */
	assert_int_equal(frame_of(len0, HTTP_PUT, true, false, true), HTTP_FRAME_LENGTH);
	assert_int_equal(frame_of(len0, HTTP_PUT, true, true, false), HTTP_FRAME_LENGTH);
	assert_int_equal(frame_of(len0, HTTP_PUT, false, false, true), HTTP_FRAME_LENGTH);
	assert_int_equal(frame_of(chunked, HTTP_GET, false, false, true), HTTP_FRAME_CHUNKED);
	assert_int_equal(frame_of(chunked, HTTP_GET, false, false, false), HTTP_FRAME_CLOSE);
	assert_int_equal(frame_of(eof, HTTP_GET, false, false, true), HTTP_FRAME_CHUNKED);
	assert_int_equal(frame_of("HTTP/1.1 204 No Content\r\n\r\n", HTTP_DELETE, true,
	    false, true), HTTP_FRAME_NONE);
	assert_int_equal(frame_of("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
	    HTTP_GET, true, false, true), HTTP_FRAME_LENGTH);
	assert_int_equal(frame_of("HTTP/1.1 304 Not Modified\r\n\r\n", HTTP_GET, true, false,
	    true), HTTP_FRAME_NONE);
	assert_int_equal(frame_of("HTTP/1.1 100 Continue\r\n\r\n", HTTP_PUT, true, false,
	    true), HTTP_FRAME_NONE);
}

static void
test_authority(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(http_split_authority("API.Example.test:8443", 21, host, sizeof(host),
	    &port, 443), 0);
	assert_string_equal(host, "api.example.test");
	assert_int_equal(port, 8443);
	assert_int_equal(http_split_authority("[::1]:443", 9, host, sizeof(host), &port, 0), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(http_split_authority("a.test", 6, host, sizeof(host), &port, 80), 0);
	assert_int_equal(port, 80);
	assert_int_equal(http_split_authority("a.test:", 7, host, sizeof(host), &port, 80), -1);
	assert_int_equal(http_split_authority("a.test:99999", 12, host, sizeof(host), &port,
	    80), -1);
	assert_int_equal(http_split_authority("::1:443", 7, host, sizeof(host), &port, 0), -1);
	assert_int_equal(http_split_authority("a@b:443", 7, host, sizeof(host), &port, 0), -1);
	assert_int_equal(http_split_authority("[::1", 4, host, sizeof(host), &port, 0), -1);
	assert_true(http_authority_equal("a.test", 443, "A.TEST.", 443));
	assert_false(http_authority_equal("a.test", 443, "a.test", 8443));
	assert_false(http_authority_equal("a.test", 443, "b.test", 443));
}

static void
test_list_has(void **state)
{
	(void)state;
	assert_true(http_list_has("keep-alive, Upgrade", "upgrade"));
	assert_true(http_list_has(" close ", "close"));
	assert_false(http_list_has("upgraded", "upgrade"));
	assert_false(http_list_has("", "close"));
}

static void
test_error_format(void **state)
{
	size_t len;
	char *r = http_error_format(421, "host_mismatch", "SNI \"x\" differs", true,
	    "Retry-After: 1\r\n", &len);

	(void)state;
	assert_non_null(r);
	assert_int_equal(strlen(r), len);
	assert_non_null(strstr(r, "HTTP/1.1 421 Misdirected Request\r\n"));
	assert_non_null(strstr(r, "X-Sealgate-Error: host_mismatch\r\n"));
	assert_non_null(strstr(r, "Connection: close\r\n"));
	assert_non_null(strstr(r, "Retry-After: 1\r\n"));
	assert_non_null(strstr(r, "{\"error\":\"host_mismatch\",\"message\":\"SNI \\\"x\\\" differs\"}"));
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_good),
		cmocka_unit_test(test_scan_stops_at_head_end),
		cmocka_unit_test(test_scan_bad),
		cmocka_unit_test(test_scan_nul_and_limits),
		cmocka_unit_test(test_scan_too_many_fields),
		cmocka_unit_test(test_parse_request),
		cmocka_unit_test(test_parse_empty_value_keeps_next_name),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_response_framing),
		cmocka_unit_test(test_response_frame),
		cmocka_unit_test(test_authority),
		cmocka_unit_test(test_list_has),
		cmocka_unit_test(test_error_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
