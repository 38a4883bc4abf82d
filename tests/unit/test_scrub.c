/* test_scrub.c — streaming secret replacement: every split, overlaps, tails, property. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "scrub.h"

struct sink {
	unsigned char *p;
	size_t len, cap;
	size_t calls;
};

static void
sink_cb(void *arg, const void *data, size_t len)
{
	struct sink *k = arg;

	if (k->len + len > k->cap) {
		k->cap = (k->len + len) * 2 + 64;
		k->p = realloc(k->p, k->cap);
		assert_non_null(k->p);
	}
	memcpy(k->p + k->len, data, len);
	k->len += len;
	k->calls++;
}

static void
sink_clear(struct sink *k)
{
	free(k->p);
	memset(k, 0, sizeof(*k));
}

struct pair {
	const char *needle, *repl;
};

/* Reference: leftmost-longest, non-overlapping, over the whole message at once. */
static size_t
naive(const struct pair *pr, size_t np, const unsigned char *in, size_t len,
    unsigned char *out)
{
	size_t o = 0, i = 0;

	while (i < len) {
		size_t best = SIZE_MAX, bl = 0;

		for (size_t k = 0; k < np; k++) {
			size_t nl = strlen(pr[k].needle);

			if (nl > bl && nl <= len - i && memcmp(in + i, pr[k].needle, nl) == 0) {
				best = k;
				bl = nl;
			}
		}
		if (best == SIZE_MAX) {
			out[o++] = in[i++];
			continue;
		}
		memcpy(out + o, pr[best].repl, strlen(pr[best].repl));
		o += strlen(pr[best].repl);
		i += bl;
	}
	return o;
}

static scrub_t *
make(const struct pair *pr, size_t np)
{
	scrub_t *s = scrub_new();

	assert_non_null(s);
	for (size_t k = 0; k < np; k++)
		assert_int_equal(scrub_add(s, pr[k].needle, strlen(pr[k].needle), pr[k].repl,
		    strlen(pr[k].repl)), 0);
	return s;
}

/* Feed msg cut at the given points, then finish; compare with the naive result. */
static void
check_splits(scrub_t *s, const struct pair *pr, size_t np, const char *msg,
    const size_t *cuts, size_t ncuts)
{
	size_t len = strlen(msg), prev = 0;
	unsigned char *want = malloc(len * 8 + 64);
	size_t wlen = naive(pr, np, (const unsigned char *)msg, len, want);
	struct sink k = {0};

	assert_non_null(want);
	scrub_reset(s);
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : len;

		assert_int_equal(scrub_feed(s, msg + prev, end - prev, sink_cb, &k), 0);
		prev = end;
	}
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, wlen);
	assert_memory_equal(k.p ? k.p : (unsigned char *)"", want, wlen);
	free(want);
	sink_clear(&k);
}

static void
test_split_everywhere(void **state)
{
	static const struct pair pr[] = {{"sk-live-1234567890", "sgh1.HANDLE"}};
	const char *msg = "{\"key\":\"sk-live-1234567890\",\"x\":1}";
	scrub_t *s = make(pr, 1);
	struct sink k = {0};

	(void)state;
	for (size_t cut = 0; cut <= strlen(msg); cut++)
		check_splits(s, pr, 1, msg, &cut, 1);
	/* And the exact output once, spelled out. */
	scrub_reset(s);
	assert_int_equal(scrub_feed(s, msg, 20, sink_cb, &k), 0);
	assert_int_equal(scrub_feed(s, msg + 20, strlen(msg) - 20, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, strlen("{\"key\":\"sgh1.HANDLE\",\"x\":1}"));
	assert_memory_equal(k.p, "{\"key\":\"sgh1.HANDLE\",\"x\":1}", k.len);
	assert_int_equal(scrub_replacements(s), 1);
	sink_clear(&k);
	scrub_free(s);
}

static void
test_one_byte_feeds(void **state)
{
	static const struct pair pr[] = {{"SECRETVALUE", "[h]"}};
	const char *msg = "xxSECRETVALUEyySECRETVALUESECRETVALUE";
	scrub_t *s = make(pr, 1);
	size_t cuts[64];

	(void)state;
	for (size_t i = 0; i < strlen(msg) - 1; i++)
		cuts[i] = i + 1;
	check_splits(s, pr, 1, msg, cuts, strlen(msg) - 1);
	assert_int_equal(scrub_replacements(s), 3);
	scrub_free(s);
}

static void
test_two_secrets(void **state)
{
	static const struct pair pr[] = {{"alpha-secret", "<A>"}, {"beta-secret!", "<B>"}};
	const char *msg = "alpha-secret beta-secret! alpha-secretbeta-secret!";
	scrub_t *s = make(pr, 2);

	(void)state;
	for (size_t a = 0; a <= strlen(msg); a++)
		for (size_t b = a; b <= strlen(msg); b += 3) {
			size_t cuts[2] = {a, b};

			check_splits(s, pr, 2, msg, cuts, 2);
		}
	assert_int_equal(scrub_replacements(s), 4);
	scrub_free(s);
}

/* Needles sharing a prefix: the longest wins at the leftmost position. */
static void
test_overlapping_prefixes(void **state)
{
	static const struct pair pr[] = {{"token", "<short>"}, {"token-extended", "<long>"},
	    {"aaab", "<X>"}};
	static const char *msgs[] = {
		"token-extended", "token-extende", "token-extendedtoken", "tokentoken-extended",
		"aaaab", "aaaaaab", "aaa", "tok", "token-exte", "xtoken-extended-y",
	};
	scrub_t *s = make(pr, 3);
	struct sink k = {0};

	(void)state;
	for (size_t m = 0; m < SG_ARRAY_LEN(msgs); m++)
		for (size_t cut = 0; cut <= strlen(msgs[m]); cut++)
			check_splits(s, pr, 3, msgs[m], &cut, 1);
	scrub_reset(s);
	assert_int_equal(scrub_feed(s, "token-ext", 9, sink_cb, &k), 0);
	assert_int_equal(k.len, 0);	/* could still become the long needle */
	assert_int_equal(scrub_feed(s, "ra", 2, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_memory_equal(k.p, "<short>-extra", k.len);
	assert_int_equal(k.len, 13);
	sink_clear(&k);
	scrub_free(s);
}

static void
test_secret_at_end(void **state)
{
	static const struct pair pr[] = {{"ENDSECRET", "<E>"}};
	scrub_t *s = make(pr, 1);
	struct sink k = {0};

	(void)state;
	assert_int_equal(scrub_feed(s, "data ENDSEC", 11, sink_cb, &k), 0);
	assert_int_equal(k.len, 5);
	assert_int_equal(scrub_feed(s, "RET", 3, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, 8);
	assert_memory_equal(k.p, "data <E>", 8);
	sink_clear(&k);
	/* A partial secret at the very end is flushed as is. */
	scrub_reset(s);
	assert_int_equal(scrub_feed(s, "tail ENDSECRE", 13, sink_cb, &k), 0);
	assert_int_equal(k.len, 5);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, 13);
	assert_memory_equal(k.p, "tail ENDSECRE", 13);
	assert_int_equal(scrub_replacements(s), 0);
	sink_clear(&k);
	/* finish again with nothing held emits nothing. */
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, 0);
	scrub_free(s);
}

static void
test_no_false_replacement(void **state)
{
	static const struct pair pr[] = {{"hunter22", "<P>"}};
	const char *msg = "hunter2 hunter2x hunter 22 HUNTER22 hunte r22 hunter2";
	scrub_t *s = make(pr, 1);
	struct sink k = {0};

	(void)state;
	assert_int_equal(scrub_feed(s, msg, strlen(msg), sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, strlen(msg));
	assert_memory_equal(k.p, msg, k.len);
	assert_int_equal(scrub_replacements(s), 0);
	sink_clear(&k);
	scrub_free(s);
}

/* Held bytes never exceed longest needle - 1, and a non-prefix tail is not held. */
static void
test_bounded_hold(void **state)
{
	static const struct pair pr[] = {{"0123456789", "<N>"}};
	scrub_t *s = make(pr, 1);
	struct sink k = {0};
	size_t fed = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		const char *piece = (i % 3) ? "012345678" : "abc";

		assert_int_equal(scrub_feed(s, piece, strlen(piece), sink_cb, &k), 0);
		fed += strlen(piece);
		assert_true(fed - k.len <= 9);
	}
	assert_int_equal(scrub_feed(s, "zzz", 3, sink_cb, &k), 0);
	assert_int_equal(k.len, fed + 3);
	sink_clear(&k);
	scrub_free(s);
}

/* A secret straddling the internal chunk boundary inside one large feed. */
static void
test_large_feed(void **state)
{
	static const struct pair pr[] = {{"BIGSECRET-xyz", "<S>"}};
	size_t len = 3 * SCRUB_CHUNK + 100;
	char *msg = malloc(len + 1);
	scrub_t *s = make(pr, 1);
	struct sink k = {0};

	(void)state;
	assert_non_null(msg);
	memset(msg, '.', len);
	msg[len] = '\0';
	memcpy(msg + SCRUB_CHUNK - 5, "BIGSECRET-xyz", 13);
	memcpy(msg + 2 * SCRUB_CHUNK - 1, "BIGSECRET-xyz", 13);
	memcpy(msg + len - 13, "BIGSECRET-xyz", 13);
	assert_int_equal(scrub_feed(s, msg, len, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(scrub_replacements(s), 3);
	assert_int_equal(k.len, len - 3 * 10);
	assert_null(memmem(k.p, k.len, "SECRET", 6));
	sink_clear(&k);
	free(msg);
	scrub_free(s);
}

static void
test_add_and_misc(void **state)
{
	scrub_t *s = scrub_new();
	struct sink k = {0};

	(void)state;
	assert_non_null(s);
	/* No needles: pass-through, nothing held. */
	assert_int_equal(scrub_feed(s, "abc", 3, sink_cb, &k), 0);
	assert_int_equal(k.len, 3);
	assert_int_equal(scrub_add(s, "abc", 3, "x", 1), -1);
	assert_int_equal(scrub_add(s, "abcd", 4, NULL, 5), -1);
	assert_int_equal(scrub_add(s, "abcd", SCRUB_MAX_NEEDLE + 1, "x", 1), -1);
	/* Empty replacement deletes. */
	assert_int_equal(scrub_add(s, "abcd", 4, NULL, 0), 0);
	assert_int_equal(scrub_feed(s, "xxabcdyy", 8, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_memory_equal(k.p, "abcxxyy", 7);
	assert_int_equal(k.len, 7);
	assert_int_equal(scrub_replacements(s), 1);
	/* reset drops held bytes and the count. */
	assert_int_equal(scrub_feed(s, "zab", 3, sink_cb, &k), 0);
	assert_int_equal(k.len, 8);
	scrub_reset(s);
	assert_int_equal(scrub_replacements(s), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, 8);
	/* The same needle again: one entry, the latest replacement wins. */
	assert_int_equal(scrub_add(s, "abcd", 4, "2", 1), 0);
	assert_int_equal(scrub_feed(s, "abcd", 4, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, 9);
	assert_memory_equal(k.p + 8, "2", 1);
	assert_int_equal(scrub_add(s, "abcd", 4, "33", 2), 0);
	assert_int_equal(scrub_add(s, "abcd", 4, "33", 2), 0);
	assert_int_equal(scrub_feed(s, "-abcd-", 6, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, 13);
	assert_memory_equal(k.p + 9, "-33-", 4);
	sink_clear(&k);
	scrub_free(s);
	scrub_free(NULL);
}

/* Property: any split of random text over a small alphabet equals the naive result. */
static void
test_property_random(void **state)
{
	static const struct pair pr[] = {{"abab", "1"}, {"ababa", "22"}, {"baab", ""},
	    {"aaaa", "333"}, {"cabbage", "44"}};
	scrub_t *s = make(pr, SG_ARRAY_LEN(pr));
	struct sink k = {0};
	unsigned seed = 12345;
	char msg[201];
	unsigned char want[1000];

	(void)state;
	for (int it = 0; it < 1000; it++) {
		size_t len = (size_t)(rand_r(&seed) % 200), cuts[8], nc = 0, prev = 0, wl;

		for (size_t i = 0; i < len; i++)
			msg[i] = "abceg"[rand_r(&seed) % 5];
		msg[len] = '\0';
		for (int c = 0; c < 8; c++) {
			size_t at = len ? (size_t)rand_r(&seed) % (len + 1) : 0;

			if (nc == 0 || at >= cuts[nc - 1])
				cuts[nc++] = at;
		}
		scrub_reset(s);
		for (size_t c = 0; c <= nc; c++) {
			size_t end = c < nc ? cuts[c] : len;

			assert_int_equal(scrub_feed(s, msg + prev, end - prev, sink_cb, &k), 0);
			prev = end;
		}
		assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
		wl = naive(pr, SG_ARRAY_LEN(pr), (unsigned char *)msg, len, want);
		assert_int_equal(k.len, wl);
		if (wl > 0)
			assert_memory_equal(k.p, want, wl);
		k.len = 0;
	}
	sink_clear(&k);
	scrub_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_one_byte_feeds),
		cmocka_unit_test(test_two_secrets),
		cmocka_unit_test(test_overlapping_prefixes),
		cmocka_unit_test(test_secret_at_end),
		cmocka_unit_test(test_no_false_replacement),
		cmocka_unit_test(test_bounded_hold),
		cmocka_unit_test(test_large_feed),
		cmocka_unit_test(test_add_and_misc),
		cmocka_unit_test(test_property_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
