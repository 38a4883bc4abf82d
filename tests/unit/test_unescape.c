/* test_unescape.c — JSON/JS escapes, percent-encoding and HTML references, as a stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "unescape.h"

/* Decode text; the symbols and their raw starts into out/starts. Returns the count. */
static size_t
decode(const char *text, unsigned char *out, uint64_t *starts)
{
	unescape_t u;
	unescape_out_t o;
	size_t n = 0, len = strlen(text);

	unescape_init(&u);
	for (size_t i = 0; i <= len; i++) {
		o.n = 0;
		if (i < len)
			unescape_byte(&u, (unsigned char)text[i], i, &o);
		else
			unescape_flush(&u, &o);
		for (size_t j = 0; j < o.n; j++) {
			out[n] = o.v[j].c;
			starts[n++] = o.v[j].start;
		}
	}
	return n;
}

static void
expect(const char *text, const char *want, size_t wantlen)
{
	unsigned char out[256];
	uint64_t starts[256];
	size_t n = decode(text, out, starts);

	if (n != wantlen || memcmp(out, want, n) != 0)
		fail_msg("%s: got %zu bytes %.*s", text, n, (int)n, out);
	for (size_t i = 1; i < n; i++)
		assert_true(starts[i] >= starts[i - 1]);	/* offsets never go back */
}

#define EXPECT(t, w) expect((t), (w), sizeof(w) - 1)

static void
test_json(void **state)
{
	(void)state;
	EXPECT("\\u0041\\u004a\\u004A", "AJJ");
	EXPECT("a\\/b\\\\c\\\"d\\'e", "a/b\\c\"d'e");
	EXPECT("\\b\\f\\n\\r\\t", "\b\f\n\r\t");
	EXPECT("\\x41\\x4a", "AJ");
	EXPECT("\\u00e9", "\xc3\xa9");		/* a character: its UTF-8 bytes */
	EXPECT("\\u20ac", "\xe2\x82\xac");
	EXPECT("\\q \\u00zz \\x4", "\\q \\u00zz \\x4");	/* not escapes: text */
}

static void
test_percent(void **state)
{
	(void)state;
	EXPECT("%41%4a%4A", "AJJ");
	EXPECT("%C3%A9", "\xc3\xa9");		/* bytes, not characters */
	EXPECT("100% %zz %%41 %4", "100% %zz %A %4");
	EXPECT("a+b", "a+b");			/* '+' is left to the needle set */
}

static void
test_html(void **state)
{
	(void)state;
	EXPECT("&#65;&#x41;&#X4a;&#0065;&#x00000041;", "AAJAA");
	EXPECT("&#65x&#x41", "AxA");		/* ';' optional for numeric ones */
	EXPECT("&amp;&lt;&gt;&quot;&apos;&sol;&plus;&equals;&colon;", "&<>\"'/+=:");
	EXPECT("&bogus; &#; &#x; &amp &", "&bogus; &#; &#x; &amp &");
	EXPECT("&#1114112;", "&#1114112;");	/* beyond U+10FFFF: text */
}

static void
test_offsets(void **state)
{
	unsigned char out[64];
	uint64_t starts[64];
	size_t n = decode("ab%41\\u00e9&#x43;d", out, starts);

	(void)state;
	assert_int_equal(n, 7);
	assert_memory_equal(out, "abA\xc3\xa9" "Cd", 7);
	assert_int_equal(starts[0], 0);
	assert_int_equal(starts[2], 2);		/* %41 began at 2 */
	assert_int_equal(starts[3], 5);		/* both bytes of \u00e9 begin at 5 */
	assert_int_equal(starts[4], 5);
	assert_int_equal(starts[5], 11);
	assert_int_equal(starts[6], 17);
}

static void
test_pending(void **state)
{
	unescape_t u;
	unescape_out_t o = {.n = 0};
	uint64_t at = 99;
	char longref[64];

	(void)state;
	unescape_init(&u);
	assert_false(unescape_pending(&u, &at));
	unescape_byte(&u, 'x', 7, &o);
	unescape_byte(&u, '%', 8, &o);
	assert_true(unescape_pending(&u, &at));
	assert_int_equal(at, 8);
	assert_int_equal(o.n, 1);
	/* an escape longer than UNESCAPE_PEND_MAX bytes is text */
	snprintf(longref, sizeof(longref), "&#%0*d;", UNESCAPE_PEND_MAX, 65);
	expect(longref, longref, strlen(longref));
}

static void
test_may_follow(void **state)
{
	(void)state;
	assert_true(unescape_may_follow('%', 'F'));
	assert_false(unescape_may_follow('%', 'g'));
	assert_true(unescape_may_follow('&', '#'));
	assert_true(unescape_may_follow('&', 'a'));
	assert_false(unescape_may_follow('&', ' '));
	assert_true(unescape_may_follow('\\', 'u'));
	assert_true(unescape_may_follow('\\', '/'));
	assert_false(unescape_may_follow('\\', 'q'));
	assert_false(unescape_may_follow('x', 'u'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_may_follow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
