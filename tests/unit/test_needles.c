/* test_needles.c — a secret's patterns and the automaton that finds them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "needles.h"

#define SECRET "sk-Live/9f+Qz=Ab_Cd-01"

static needles_t *
build1(const char *secret, bool forms)
{
	needle_src_t src = {(const unsigned char *)secret, strlen(secret)};
	needles_t *a = needles_build(&src, 1, forms);

	assert_non_null(a);
	return a;
}

/* Ends of every pattern of kind found in text, as a bit per end offset (text < 512). */
static size_t
find(const needles_t *a, const char *text, int kind, size_t *ends, size_t max)
{
	uint32_t st = 0;
	size_t n = 0;

	for (size_t i = 0; text[i]; i++) {
		st = needles_next(a, st, (unsigned char)text[i]);
		if (!needles_ends(a, st))
			continue;
		for (uint32_t t = a->st[st].pat ? st : a->st[st].dict; t; t = a->st[t].dict)
			for (uint32_t p = a->st[t].pat; p; p = a->pat[p - 1].same)
				if (a->pat[p - 1].kind == kind && n < max)
					ends[n++] = i + 1;
	}
	return n;
}

static void
test_raw_and_hex(void **state)
{
	needles_t *a = build1(SECRET, true);
	char hex[64], text[256];
	size_t ends[8];

	(void)state;
	for (size_t i = 0; SECRET[i]; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)SECRET[i]);
	snprintf(text, sizeof(text), "xx" SECRET "yy%s", hex);
	assert_int_equal(find(a, text, NEEDLE_RAW, ends, 8), 1);
	assert_int_equal(ends[0], 2 + strlen(SECRET));
	assert_int_equal(find(a, text, NEEDLE_HEX_LO, ends, 8), 1);
	assert_int_equal(ends[0], strlen(text));
	for (char *p = hex; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p -= 32;
	assert_int_equal(find(a, hex, NEEDLE_HEX_UP, ends, 8), 1);
	needles_free(a);
	/* spaced lower-case hex (S3's CanonicalRequestBytes), not its run-together form */
	a = build1(SECRET, true);
	for (size_t i = 0; SECRET[i]; i++)
		snprintf(text + 3 * i, 4, "%02x ", (unsigned char)SECRET[i]);
	text[3 * strlen(SECRET) - 1] = '\0';
	assert_int_equal(find(a, text, NEEDLE_HEX_SP, ends, 8), 1);
	assert_int_equal(ends[0], 3 * strlen(SECRET) - 1);
	assert_int_equal(find(a, text, NEEDLE_HEX_LO, ends, 8), 0);
	text[3] = 'X';		/* a byte's separator off: no match */
	assert_int_equal(find(a, text, NEEDLE_HEX_SP, ends, 8), 0);
	needles_free(a);
	/* a secret whose hex has no letters: one hex pattern */
	a = build1("0123", true);
	for (size_t i = 0; i < a->npat; i++)
		assert_int_not_equal(a->pat[i].kind, NEEDLE_HEX_UP);
	needles_free(a);
	/* raw only */
	a = build1(SECRET, false);
	assert_int_equal(a->npat, 1);
	needles_free(a);
}

/* A base64 pattern ending where each alignment's core ends, whose neighbours check. */
static void
test_base64_cores(void **state)
{
	needles_t *a = build1(SECRET, true);
	size_t n = strlen(SECRET);
	unsigned char bin[64];
	char enc[128];

	(void)state;
	for (unsigned align = 0; align < 3; align++) {
		size_t k0 = (8 * align + 5) / 6, k1 = 8 * (align + n) / 6;
		bool found = false;
		uint32_t st = 0;

		memset(bin, 0xa5, align);
		memcpy(bin + align, SECRET, n);
		memset(bin + align + n, 0x5a, 2);
		sodium_bin2base64(enc, sizeof(enc), bin, align + n + 2,
		    sodium_base64_VARIANT_ORIGINAL);
		for (size_t k = 0; k < k1; k++)
			st = needles_next(a, st, (unsigned char)enc[k]);
		for (uint32_t t = a->st[st].pat ? st : a->st[st].dict; t; t = a->st[t].dict)
			for (uint32_t pi = a->st[t].pat; pi; pi = a->pat[pi - 1].same) {
				const needle_pat_t *p = &a->pat[pi - 1];

				if (p->kind != NEEDLE_B64 || p->left != k0 || p->len != k1 - k0)
					continue;
				assert_true(p->left == 0 || needles_b64_left_ok(p,
				    (unsigned char)enc[k0 - 1]));
				assert_true(p->rmask == 0 || needles_b64_right_ok(p,
				    (unsigned char)enc[k1]));
				/* a neighbour with other bits does not check */
				if (p->rmask != 0)
					assert_false(needles_b64_right_ok(p,
					    (unsigned char)(enc[k1] == 'A' ? '/' : 'A')) &&
					    needles_b64_right_ok(p, (unsigned char)'/') &&
					    needles_b64_right_ok(p, (unsigned char)'A'));
				found = true;
			}
		assert_true(found);
	}
	needles_free(a);
}

static void
test_plus_and_same_bytes(void **state)
{
	needle_src_t src[2] = {{(const unsigned char *)"\0\0\0\0", 4},
	    {(const unsigned char *)"AAAAA", 5}};
	needles_t *a = needles_build(src, 2, true);
	size_t ends[8];

	(void)state;
	assert_non_null(a);
	/* "AAAAA" is both the base64 core of four zero bytes and the second secret */
	assert_int_equal(find(a, "AAAAA", NEEDLE_RAW, ends, 8), 1);
	assert_true(find(a, "AAAAA", NEEDLE_B64, ends, 8) >= 1);
	needles_free(a);
	a = build1("pass word", true);
	assert_int_equal(find(a, "u=pass+word&", NEEDLE_RAW, ends, 8), 1);
	needles_free(a);
}

/* needles_skip never steps over a position where a pattern (or an escape) starts. */
static void
test_skip_property(void **state)
{
	needle_src_t src[2] = {{(const unsigned char *)SECRET, strlen(SECRET)},
	    {(const unsigned char *)"\x01\x02zz", 4}};
	needles_t *a = needles_build(src, 2, true);
	unsigned char buf[300];
	unsigned seed = 42;

	(void)state;
	assert_non_null(a);
	for (int it = 0; it < 2000; it++) {
		size_t n = 2 + (size_t)rand_r(&seed) % 200, at, naive = n - 1;

		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)(it % 2 ? rand_r(&seed) : "sk-%&\\u#x41AzZc2"[rand_r(&seed) % 16]);
		for (size_t i = 0; i + 1 < n; i++) {
			unsigned idx = buf[i] | (unsigned)buf[i + 1] << 8;

			if (a->first[buf[i]] && (a->pairs[idx >> 3] >> (idx & 7) & 1)) {
				naive = i;
				break;
			}
		}
		at = needles_skip(a, buf, n);
		assert_int_equal(at, naive);
	}
	/* where a pattern starts, skipping stops */
	memcpy(buf, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" SECRET, 30 + strlen(SECRET));
	assert_int_equal(needles_skip(a, buf, 30 + strlen(SECRET)), 30);
	needles_free(a);
}

static void
test_b64_value(void **state)
{
	(void)state;
	assert_int_equal(needles_b64_value('A'), 0);
	assert_int_equal(needles_b64_value('z'), 51);
	assert_int_equal(needles_b64_value('9'), 61);
	assert_int_equal(needles_b64_value('+'), 62);
	assert_int_equal(needles_b64_value('-'), 62);
	assert_int_equal(needles_b64_value('/'), 63);
	assert_int_equal(needles_b64_value('_'), 63);
	assert_int_equal(needles_b64_value('='), -1);
	assert_int_equal(needles_b64_value('.'), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_and_hex),
		cmocka_unit_test(test_base64_cores),
		cmocka_unit_test(test_plus_and_same_bytes),
		cmocka_unit_test(test_skip_property),
		cmocka_unit_test(test_b64_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
