/*
 * test_pktline.c — pkt-line framing (specials, bounds, any split), receive-pack command
 * lines (sha1, sha256, capabilities, malformed ones), report-status encoding with and
 * without side-band-64k (parsed back with the parser).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pktline.h"

#define Z40 "0000000000000000000000000000000000000000"
#define A40 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define C64 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* Parse s fed in pieces of step bytes: "D<len>:<data>|", "F|", "L|", "E|", "!" */
static char *
transcript(const char *s, size_t len, size_t step)
{
	static char out[4096];
	pktline_t *p = malloc(sizeof(*p));
	size_t o = 0, i = 0;

	assert_non_null(p);
	pktline_init(p);
	out[0] = '\0';
	while (i < len) {
		size_t n = len - i < step ? len - i : step, used;
		pktline_pkt_t pkt;
		enum pktline_ev ev;

		while ((ev = pktline_next(p, s + i, n, &used, &pkt)) == PKTLINE_EV_PACKET) {
			if (pkt.kind == PKTLINE_DATA)
				o += (size_t)snprintf(out + o, sizeof(out) - o, "D%zu:%.*s|", pkt.len,
				    (int)pkt.len, pkt.data);
			else
				o += (size_t)snprintf(out + o, sizeof(out) - o, "%c|",
				    pkt.kind == PKTLINE_FLUSH ? 'F' : pkt.kind == PKTLINE_DELIM ?
				    'L' : 'E');
			i += used;
			n -= used;
		}
		if (ev == PKTLINE_EV_ERROR) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "!");
			break;
		}
		assert_int_equal(used, n);
		i += used;
	}
	free(p);
	return out;
}

static void
test_framing_any_split(void **state)
{
	static const char s[] = "0009hello0000000100020004000aab\ncd\n";
	(void)state;
	for (size_t step = 1; step <= sizeof(s); step++)
		assert_string_equal(transcript(s, sizeof(s) - 1, step),
		    "D5:hello|F|L|E|D0:|D6:ab\ncd\n|");
}

static void
test_framing_errors(void **state)
{
	(void)state;
	assert_string_equal(transcript("0003", 4, 1), "!");
	assert_string_equal(transcript("00g5x", 5, 2), "!");
	assert_string_equal(transcript("fff1", 4, 4), "!");	/* > 65520 */
	assert_string_equal(transcript("0005a0003", 9, 3), "D1:a|!");
	/* the error is sticky */
	{
		pktline_t *p = malloc(sizeof(*p));
		pktline_pkt_t pkt;
		size_t used;

		pktline_init(p);
		assert_int_equal(pktline_next(p, "zzzz", 4, &used, &pkt), PKTLINE_EV_ERROR);
		assert_int_equal(pktline_next(p, "0000", 4, &used, &pkt), PKTLINE_EV_ERROR);
		assert_int_equal(used, 0);
		free(p);
	}
}

static void
test_framing_max_length(void **state)
{
	char *s = malloc(PKTLINE_MAX + 4);
	pktline_t *p = malloc(sizeof(*p));
	pktline_pkt_t pkt;
	size_t used;
	(void)state;

	memcpy(s, "fff0", 4);
	memset(s + 4, 'x', PKTLINE_DATA_MAX);
	memcpy(s + PKTLINE_MAX, "0000", 4);
	pktline_init(p);
	assert_int_equal(pktline_next(p, s, PKTLINE_MAX + 4, &used, &pkt), PKTLINE_EV_PACKET);
	assert_int_equal(pkt.len, PKTLINE_DATA_MAX);
	assert_int_equal(used, PKTLINE_MAX);
	free(s);
	free(p);
}

static void
test_command_sha1_with_caps(void **state)
{
	static const char l[] = Z40 " " A40 " refs/heads/agent/x\0report-status "
	    "side-band-64k quiet object-format=sha1 agent=git/2.43.0\n";
	pktline_command_t c;
	(void)state;

	assert_int_equal(pktline_command_parse(l, sizeof(l) - 1, true, &c), 0);
	assert_string_equal(c.ref, "refs/heads/agent/x");
	assert_int_equal(c.oid_len, 40);
	assert_true(pktline_oid_is_zero(c.old_oid));
	assert_false(pktline_oid_is_zero(c.new_oid));
	assert_true(pktline_caps_has(c.caps, c.caps_len, "side-band-64k"));
	assert_true(pktline_caps_has(c.caps, c.caps_len, "agent=git/2.43.0"));
	assert_false(pktline_caps_has(c.caps, c.caps_len, "side-band"));
	/* NUL is a delimiter only on the first command */
	assert_int_equal(pktline_command_parse(l, sizeof(l) - 1, false, &c), -1);
}

static void
test_command_sha256(void **state)
{
	static const char l[] = B64 " " C64 " refs/tags/v1.0\n";
	pktline_command_t c;
	(void)state;

	assert_int_equal(pktline_command_parse(l, sizeof(l) - 1, false, &c), 0);
	assert_int_equal(c.oid_len, 64);
	assert_string_equal(c.new_oid, C64);
	assert_string_equal(c.ref, "refs/tags/v1.0");
	assert_null(c.caps);
}

static void
test_command_malformed(void **state)
{
	static const char *bad[] = {
		A40 " " B64 " refs/heads/x",		/* oid lengths differ */
		A40 " " A40 "  refs/heads/x",		/* two spaces */
		A40 " " A40 " refs/heads/x y",		/* space in ref */
		A40 " " A40 " heads/x",			/* not under refs/ */
		A40 " " A40 " refs/heads/../x",
		A40 " " A40 " refs/heads/x.lock",
		A40 " " A40 " refs/heads/x/",
		A40 " " A40 " refs/heads/a@{1}",
		A40 " " A40 " refs/heads/.hidden",
		A40 " " A40 " refs/heads/a:b",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA " A40 " refs/heads/x",
		A40 " " A40,
		"",
	};
	pktline_command_t c;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pktline_command_parse(bad[i], strlen(bad[i]), false, &c), -1);
}

static void
test_encode_roundtrip(void **state)
{
	pktline_buf_t b = {0};
	(void)state;

	pktline_put(&b, "hello", 5);
	pktline_put_flush(&b);
	pktline_put_band(&b, 2, "msg\n", 4);
	assert_false(b.err);
	assert_int_equal(b.len, 9 + 4 + 9);
	assert_memory_equal(b.p, "0009hello00000009\002msg\n", b.len);
	assert_string_equal(transcript(b.p, b.len, 3), "D5:hello|F|D5:\002msg\n|");
	free(b.p);
}

static void
test_report_plain(void **state)
{
	pktline_status_t st[] = {{"refs/heads/main", "sealgate: no"},
	    {"refs/heads/agent/x", NULL}};
	size_t len;
	char *r = pktline_report_status(st, 2, false, "ignored\n", &len);
	(void)state;

	assert_non_null(r);
	assert_string_equal(transcript(r, len, 7), "D10:unpack ok\n|D32:ng refs/heads/main "
	    "sealgate: no\n|D22:ok refs/heads/agent/x\n|F|");
	free(r);
}

static void
test_report_sideband(void **state)
{
	pktline_status_t st[] = {{"refs/heads/main", "why"}};
	size_t len;
	char *r = pktline_report_status(st, 1, true, "sealgate: why\n", &len);
	const char inner[] = "000eunpack ok\n001bng refs/heads/main why\n0000";
	char want[256];
	(void)state;

	assert_non_null(r);
	snprintf(want, sizeof(want), "D15:\002sealgate: why\n|D%zu:\001%s|F|", sizeof(inner),
	    inner);
	assert_string_equal(transcript(r, len, 1), want);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing_any_split),
		cmocka_unit_test(test_framing_errors),
		cmocka_unit_test(test_framing_max_length),
		cmocka_unit_test(test_command_sha1_with_caps),
		cmocka_unit_test(test_command_sha256),
		cmocka_unit_test(test_command_malformed),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_report_plain),
		cmocka_unit_test(test_report_sideband),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
