/* test_scrub.c — streaming secret replacement: every split, overlaps, tails, property. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <stdbool.h>
#include <stdio.h>

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
	scrub_t *s = scrub_new(SCRUB_LITERAL);

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
	scrub_t *s = scrub_new(SCRUB_LITERAL);
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

/* --- SCRUB_FORMS: encoded forms of a secret -------------------------------------------- */

#include <sodium.h>

#define SECRET	"sk-Live/9f+Qz=Ab_Cd-01"
#define REPL	"sgh1.abcd1234.HANDLEbody_x-Y9"

/* Scrub msg in FORMS mode (needles: SECRET -> REPL, plus extra pairs) whole, one byte at a
 * time and in random pieces; every run gives the same output, returned (malloc'd). */
static unsigned char *
forms_run(const struct pair *extra, size_t nextra, const void *msg, size_t len,
    size_t *outlen, size_t *nrep)
{
	struct sink whole = {0}, k = {0};
	unsigned seed = (unsigned)len * 2654435761u;

	for (int run = 0; run < 6; run++) {
		scrub_t *s = scrub_new(SCRUB_FORMS);
		size_t off = 0;

		assert_non_null(s);
		assert_int_equal(scrub_add(s, SECRET, strlen(SECRET), REPL, strlen(REPL)), 0);
		for (size_t i = 0; i < nextra; i++)
			assert_int_equal(scrub_add(s, extra[i].needle, strlen(extra[i].needle),
			    extra[i].repl, strlen(extra[i].repl)), 0);
		while (off < len) {
			size_t n = run == 0 ? len : run == 1 ? 1 : 1 + (size_t)rand_r(&seed) % 23;

			if (n > len - off)
				n = len - off;
			assert_int_equal(scrub_feed(s, (const char *)msg + off, n, sink_cb,
			    run == 0 ? &whole : &k), 0);
			off += n;
		}
		assert_int_equal(scrub_finish(s, sink_cb, run == 0 ? &whole : &k), 0);
		if (run == 0)
			*nrep = scrub_replacements(s);
		else {
			assert_int_equal(k.len, whole.len);
			if (k.len > 0)
				assert_memory_equal(k.p, whole.p, k.len);
			assert_int_equal(scrub_replacements(s), *nrep);
			k.len = 0;
		}
		scrub_free(s);
	}
	sink_clear(&k);
	*outlen = whole.len;
	if (whole.p == NULL)
		whole.p = calloc(1, 1);
	return whole.p;
}

/* msg must scrub to want, with nrep replacements. */
static void
forms_expect(const char *msg, const char *want, size_t nrep_want)
{
	size_t ol, nrep;
	unsigned char *out = forms_run(NULL, 0, msg, strlen(msg), &ol, &nrep);

	if (ol != strlen(want) || memcmp(out, want, ol) != 0)
		fail_msg("scrubbed\n  %s\ngot\n  %.*s\nwant\n  %s", msg, (int)ol, out, want);
	assert_int_equal(nrep, nrep_want);
	free(out);
}

/* printf into a static buffer (one at a time per expression). */
static char *
fmt(char *buf, size_t len, const char *f, const char *a)
{
	snprintf(buf, len, f, a, a, a, a);
	return buf;
}

static void
test_forms_raw(void **state)
{
	char m[512], w[512];

	(void)state;
	forms_expect(fmt(m, sizeof(m), "a %s b %s", SECRET), fmt(w, sizeof(w), "a %s b %s",
	    REPL), 2);
	forms_expect("nothing to see here sk-Live/9f+Qz=Ab_Cd-0", "nothing to see here "
	    "sk-Live/9f+Qz=Ab_Cd-0", 0);
}

/* Every character of text as \u00XX with the given digits; others as they are. */
static void
json_u(char *out, const char *text, const char *digits, unsigned every)
{
	size_t o = 0;

	for (size_t i = 0; text[i]; i++) {
		unsigned char c = (unsigned char)text[i];

		if (every && i % every == 0) {
			o += (size_t)sprintf(out + o, "\\u00%c%c", digits[c >> 4], digits[c & 15]);
		} else if (c == '/')
			o += (size_t)sprintf(out + o, "\\/");
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

static void
test_forms_json_escapes(void **state)
{
	char e[512], m[600], w[600];

	(void)state;
	json_u(e, SECRET, "0123456789abcdef", 1);		/* every character, lower */
	snprintf(m, sizeof(m), "{\"auth\":\"Bearer %s\"}", e);
	snprintf(w, sizeof(w), "{\"auth\":\"Bearer %s\"}", REPL);
	forms_expect(m, w, 1);
	json_u(e, SECRET, "0123456789ABCDEF", 1);		/* upper */
	snprintf(m, sizeof(m), "[\"%s\"]", e);
	snprintf(w, sizeof(w), "[\"%s\"]", REPL);
	forms_expect(m, w, 1);
	json_u(e, SECRET, "0123456789aBcDeF", 3);		/* mixed with literals and \/ */
	snprintf(m, sizeof(m), "x\"%s\"x", e);
	snprintf(w, sizeof(w), "x\"%s\"x", REPL);
	forms_expect(m, w, 1);
	json_u(e, SECRET, "0123456789abcdef", 0);		/* only \/ (PHP) */
	snprintf(m, sizeof(m), "\"%s\" and \\\\ \\u00zz \\q", e);
	snprintf(w, sizeof(w), "\"%s\" and \\\\ \\u00zz \\q", REPL);
	forms_expect(m, w, 1);
	forms_expect("JS: sk-Live\\x2f9f+Qz=Ab_Cd-01;", "JS: " REPL ";", 1);
	/* an escape as the second character, after a literal first one */
	forms_expect("x s\\u006b-Live/9f+Qz=Ab_Cd-01 y", "x " REPL " y", 1);
	forms_expect("s%6b-Live/9f+Qz=Ab_Cd-01", REPL, 1);
	forms_expect("s&#107;-Live/9f+Qz=Ab_Cd-01", REPL, 1);
}

static void
test_forms_percent(void **state)
{
	(void)state;
	forms_expect("q=sk-Live%2F9f%2BQz%3DAb_Cd-01&x", "q=" REPL "&x", 1);
	forms_expect("q=sk-Live%2f9f%2bQz%3dAb_Cd-01", "q=" REPL, 1);
	forms_expect("q=%73%6B%2D%4C%69%76%65%2F9f%2BQz%3DAb_Cd-01", "q=" REPL, 1);
	/* not an escape: kept as text */
	forms_expect("100% sure %zz %4", "100% sure %zz %4", 0);
}

static void
test_forms_space_as_plus(void **state)
{
	static const struct pair sp[] = {{"pass word 12", "H"}};
	size_t ol, nrep;
	unsigned char *out;

	(void)state;
	out = forms_run(sp, 1, "u=pass+word+12&v=pass%20word%2012", 33, &ol, &nrep);
	assert_int_equal(nrep, 2);
	assert_int_equal(ol, strlen("u=H&v=H"));
	assert_memory_equal(out, "u=H&v=H", ol);
	free(out);
}

static void
test_forms_html(void **state)
{
	(void)state;
	forms_expect("<a title=\"sk-Live&#47;9f&#43;Qz&#61;Ab_Cd-01\">",
	    "<a title=\"" REPL "\">", 1);
	forms_expect("sk-Live&#x2F;9f&#X2b;Qz&#x003D;Ab_Cd-01", REPL, 1);
	forms_expect("sk-Live&sol;9f&plus;Qz&equals;Ab_Cd-01", REPL, 1);
	forms_expect("&#115&#107-Live/9f+Qz=Ab_Cd-01.", REPL ".", 1);	/* no ';' */
	forms_expect("&amp; &lt;b&gt; &bogus; &#; &#x; &", "&amp; &lt;b&gt; &bogus; &#; &#x; &",
	    0);
}

static void
hex_of(char *out, const char *s, const char *digits)
{
	for (; *s; s++) {
		*out++ = digits[(unsigned char)*s >> 4];
		*out++ = digits[(unsigned char)*s & 15];
	}
	*out = '\0';
}

static void
test_forms_hex(void **state)
{
	char hs[128], hr[128], m[300], w[300];

	(void)state;
	hex_of(hs, SECRET, "0123456789abcdef");
	hex_of(hr, REPL, "0123456789abcdef");
	snprintf(m, sizeof(m), "digest=%s;", hs);
	snprintf(w, sizeof(w), "digest=%s;", hr);
	forms_expect(m, w, 1);
	hex_of(hs, SECRET, "0123456789ABCDEF");
	hex_of(hr, REPL, "0123456789ABCDEF");
	snprintf(m, sizeof(m), "0x%s", hs);
	snprintf(w, sizeof(w), "0x%s", hr);
	forms_expect(m, w, 1);
}

/* Lower-case hex, a space between bytes: S3's SignatureDoesNotMatch answer echoes the
 * canonical request so (CanonicalRequestBytes), session token included. */
static void
test_forms_spaced_hex(void **state)
{
	char hs[200], hr[200], m[600], w[600];

	(void)state;
	for (size_t i = 0; SECRET[i]; i++)
		snprintf(hs + 3 * i, 4, "%02x ", (unsigned char)SECRET[i]);
	for (size_t i = 0; REPL[i]; i++)
		snprintf(hr + 3 * i, 4, "%02x ", (unsigned char)REPL[i]);
	snprintf(m, sizeof(m), "<CanonicalRequestBytes>3a %s0a 0a</CanonicalRequestBytes>", hs);
	snprintf(w, sizeof(w), "<CanonicalRequestBytes>3a %s0a 0a</CanonicalRequestBytes>", hr);
	forms_expect(m, w, 1);
	hs[3 * strlen(SECRET) - 1] = '\0';	/* at the very end of the text */
	hr[3 * strlen(REPL) - 1] = '\0';
	forms_expect(hs, hr, 1);
	hs[4] = 'f';		/* one byte differs: left alone */
	forms_expect(hs, hs, 0);
}

static void
b64_of(char *out, size_t outlen, const void *bin, size_t n, int variant)
{
	assert_non_null(sodium_bin2base64(out, outlen, bin, n, variant));
}

/* base64 of prefix || text || suffix in one variant, quoted. */
static void
b64_blob(char *out, size_t outlen, size_t pre, const char *text, size_t suf, int variant)
{
	unsigned char bin[256];
	char enc[512];
	size_t n = 0;

	for (size_t i = 0; i < pre; i++)
		bin[n++] = (unsigned char)(0xf0 + i);
	memcpy(bin + n, text, strlen(text));
	n += strlen(text);
	for (size_t i = 0; i < suf; i++)
		bin[n++] = (unsigned char)('a' + i);
	b64_of(enc, sizeof(enc), bin, n, variant);
	snprintf(out, outlen, "\"%s\"", enc);
}

/*
 * The output rule: the run's first alphabet-telling character ('+'/'/' standard,
 * '-'/'_' url-safe) decides, standard when there is none; '=' kept when the run had
 * them, or for a standard run whose length was a multiple of 4.
 */
static int
b64_out_variant(const char *orig)
{
	size_t n = strlen(orig) - 2, k = strcspn(orig, "+/-_");	/* quoted */
	bool url = k < n + 1 && (orig[k] == '-' || orig[k] == '_');
	bool padded = strchr(orig, '=') != NULL || (!url && n % 4 == 0);

	if (url)
		return padded ? sodium_base64_VARIANT_URLSAFE :
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING;
	return padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
}

static void
test_forms_base64_alignments(void **state)
{
	static const int variants[] = {sodium_base64_VARIANT_ORIGINAL,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING, sodium_base64_VARIANT_URLSAFE,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING};
	char m[600], w[600];

	(void)state;
	for (size_t v = 0; v < SG_ARRAY_LEN(variants); v++)
		for (size_t pre = 0; pre < 6; pre++)
			for (size_t suf = 0; suf < 5; suf++) {
				b64_blob(m, sizeof(m), pre, SECRET, suf, variants[v]);
				b64_blob(w, sizeof(w), pre, REPL, suf, b64_out_variant(m));
				forms_expect(m, w, 1);
			}
}

static void
test_forms_basic_and_jwt(void **state)
{
	char enc[256], m[600], w[600], hdr[64], sig[64];
	const char *user = "Aladdin:";
	char buf[128];

	(void)state;
	snprintf(buf, sizeof(buf), "%s%s", user, SECRET);
	b64_of(enc, sizeof(enc), buf, strlen(buf), sodium_base64_VARIANT_ORIGINAL);
	snprintf(m, sizeof(m), "{\"echo\": \"Basic %s\"}", enc);
	snprintf(buf, sizeof(buf), "%s%s", user, REPL);
	b64_of(enc, sizeof(enc), buf, strlen(buf), sodium_base64_VARIANT_ORIGINAL);
	snprintf(w, sizeof(w), "{\"echo\": \"Basic %s\"}", enc);
	forms_expect(m, w, 1);

	b64_of(hdr, sizeof(hdr), "{\"alg\":\"HS256\"}", 15, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	b64_of(sig, sizeof(sig), "signature!", 10, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(buf, sizeof(buf), "{\"key\":\"%s\",\"n\":1}", SECRET);
	b64_of(enc, sizeof(enc), buf, strlen(buf), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(m, sizeof(m), "token=%s.%s.%s;", hdr, enc, sig);
	snprintf(buf, sizeof(buf), "{\"key\":\"%s\",\"n\":1}", REPL);
	b64_of(enc, sizeof(enc), buf, strlen(buf), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(w, sizeof(w), "token=%s.%s.%s;", hdr, enc, sig);
	forms_expect(m, w, 1);
}

/* A base64 blob in PHP-style JSON ("\/" for '/') still decodes to the replacement. */
static void
test_forms_base64_in_escaped_json(void **state)
{
	char enc[256], esc[512], m[600], dec[512];
	unsigned char bin[256];
	size_t ol, nrep, bl, o = 0, d = 0;
	unsigned char *out;
	int tries = 0;

	(void)state;
	/* a prefix that makes a '/' appear inside the run */
	do {
		snprintf((char *)bin, sizeof(bin), "k%d???:%s:end", tries, SECRET);
		b64_of(enc, sizeof(enc), bin, strlen((char *)bin), sodium_base64_VARIANT_ORIGINAL);
	} while (strchr(enc, '/') == NULL && ++tries < 1000);
	assert_non_null(strchr(enc, '/'));
	for (size_t i = 0; enc[i]; i++) {
		if (enc[i] == '/')
			esc[o++] = '\\';
		esc[o++] = enc[i];
	}
	esc[o] = '\0';
	snprintf(m, sizeof(m), "{\"v\":\"%s\"}", esc);
	out = forms_run(NULL, 0, m, strlen(m), &ol, &nrep);
	assert_int_equal(nrep, 1);
	/* unescape \/ and decode: the replacement stands where the secret stood */
	assert_true(ol > 8);
	for (size_t i = 6; i < ol - 2; i++)
		if (!(out[i] == '\\' && out[i + 1] == '/'))
			dec[d++] = (char)out[i];
	dec[d] = '\0';
	assert_int_equal(sodium_base642bin(bin, sizeof(bin), dec, d, NULL, &bl, NULL,
	    sodium_base64_VARIANT_ORIGINAL), 0);
	snprintf(m, sizeof(m), "k%d???:%s:end", tries, REPL);
	assert_int_equal(bl, strlen(m));
	assert_memory_equal(bin, m, bl);
	free(out);
}

/* Two secrets in one base64 run: both replaced by the one re-encoding. */
static void
test_forms_base64_two_secrets(void **state)
{
	static const struct pair two[] = {{"second-secret-777", "HANDLE2"}};
	char m[600], w[600], buf[256];
	size_t ol, nrep;
	unsigned char *out;

	(void)state;
	snprintf(buf, sizeof(buf), "a:%s:b:%s:c", SECRET, two[0].needle);
	b64_of(m, sizeof(m), buf, strlen(buf), sodium_base64_VARIANT_ORIGINAL);
	snprintf(buf, sizeof(buf), "a:%s:b:%s:c", REPL, two[0].repl);
	b64_of(w, sizeof(w), buf, strlen(buf), sodium_base64_VARIANT_ORIGINAL);
	out = forms_run(two, 1, m, strlen(m), &ol, &nrep);
	assert_int_equal(nrep, 2);
	assert_int_equal(ol, strlen(w));
	assert_memory_equal(out, w, ol);
	free(out);
}

/* Near misses stay as they are: another first byte, one flipped bit at the end. */
static void
test_forms_near_misses(void **state)
{
	char m[600], other[64];

	(void)state;
	snprintf(other, sizeof(other), "%s", SECRET);
	other[0] = 't';
	b64_blob(m, sizeof(m), 1, other, 2, sodium_base64_VARIANT_ORIGINAL);
	forms_expect(m, m, 0);
	other[0] = SECRET[0];
	other[strlen(other) - 1] ^= 1;
	b64_blob(m, sizeof(m), 2, other, 0, sodium_base64_VARIANT_ORIGINAL);
	forms_expect(m, m, 0);
}

/* Random text with every form embedded, random splits: the output holds no form. */
static void
test_forms_property(void **state)
{
	unsigned seed = 777;
	char forms[8][256];
	char msg[4096];
	size_t nf = 0;

	(void)state;
	snprintf(forms[nf++], 256, "%s", SECRET);
	json_u(forms[nf++], SECRET, "0123456789abcdef", 2);
	hex_of(forms[nf++], SECRET, "0123456789ABCDEF");
	b64_blob(forms[nf++], 256, 1, SECRET, 1, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	b64_blob(forms[nf++], 256, 2, SECRET, 0, sodium_base64_VARIANT_ORIGINAL);
	snprintf(forms[nf++], 256, "sk-Live%%2F9f%%2bQz%%3DAb_Cd-01");
	snprintf(forms[nf++], 256, "sk-Live&#x2f;9f&#43;Qz&#61;Ab_Cd-01");
	for (int it = 0; it < 300; it++) {
		size_t len = 0, ol, nrep, placed = 0;
		unsigned char *out;
		scrub_t *again = scrub_new(SCRUB_FORMS);
		struct sink k = {0};

		while (len < 1500) {
			if (rand_r(&seed) % 4 == 0) {
				const char *f = forms[rand_r(&seed) % nf];

				memcpy(msg + len, f, strlen(f));
				len += strlen(f);
				placed++;
			}
			msg[len++] = " \"ab:=/+\\%&xyz0123"[rand_r(&seed) % 18];
		}
		out = forms_run(NULL, 0, msg, len, &ol, &nrep);
		assert_true(nrep >= 1 || placed == 0);
		assert_null(memmem(out, ol, SECRET, strlen(SECRET)));
		/* a second pass finds nothing left */
		assert_non_null(again);
		assert_int_equal(scrub_add(again, SECRET, strlen(SECRET), REPL, strlen(REPL)), 0);
		assert_int_equal(scrub_feed(again, out, ol, sink_cb, &k), 0);
		assert_int_equal(scrub_finish(again, sink_cb, &k), 0);
		assert_int_equal(scrub_replacements(again), 0);
		sink_clear(&k);
		scrub_free(again);
		free(out);
	}
}

/* A needle added mid-message applies to every byte not yet written. */
static void
test_forms_add_mid_message(void **state)
{
	scrub_t *s = scrub_new(SCRUB_FORMS);
	struct sink k = {0};

	(void)state;
	assert_non_null(s);
	assert_int_equal(scrub_add(s, "first-secret", 12, "H1", 2), 0);
	assert_int_equal(scrub_feed(s, "a first-sec", 11, sink_cb, &k), 0);
	/* held: "first-sec" may still become the first secret */
	assert_int_equal(scrub_add(s, "later-secret", 12, "H2", 2), 0);
	assert_int_equal(scrub_feed(s, "ret b later-secret c ", 21, sink_cb, &k), 0);
	assert_int_equal(scrub_feed(s, "6c617465722d736563726574", 24, sink_cb, &k), 0);
	assert_int_equal(scrub_finish(s, sink_cb, &k), 0);
	assert_int_equal(k.len, strlen("a H1 b H2 c 4832"));
	assert_memory_equal(k.p, "a H1 b H2 c 4832", k.len);
	assert_int_equal(scrub_replacements(s), 3);
	sink_clear(&k);
	scrub_free(s);
}

/* The run's alphabet may only show after the secret: the re-encoding waits for it. */
static void
b64_of_parts(char *out, size_t len, const char *pre, const char *mid, int variant)
{
	unsigned char bin[128];
	size_t n = 0;

	memcpy(bin, pre, strlen(pre));
	n += strlen(pre);
	memcpy(bin + n, mid, strlen(mid));
	n += strlen(mid);
	memcpy(bin + n, "nice\xfb\xff\xfe", 7);	/* '+/' or '-_' only at the end */
	n += 7;
	out[0] = '[';
	sodium_bin2base64(out + 1, len - 2, bin, n, variant);
	strcat(out, "]");
}

static void
test_forms_base64_alphabet_later(void **state)
{
	static const char *const pre[] = {"ab", "Q"};
	char m[320], w[320];

	(void)state;
	for (size_t k = 0; k < SG_ARRAY_LEN(pre); k++)
		for (int url = 0; url < 2; url++) {
			int variant = url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING :
			    sodium_base64_VARIANT_ORIGINAL;

			b64_of_parts(m, sizeof(m), pre[k], SECRET, variant);
			b64_of_parts(w, sizeof(w), pre[k], REPL, variant);
			forms_expect(m, w, 1);
		}
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
		cmocka_unit_test(test_forms_raw),
		cmocka_unit_test(test_forms_json_escapes),
		cmocka_unit_test(test_forms_percent),
		cmocka_unit_test(test_forms_space_as_plus),
		cmocka_unit_test(test_forms_html),
		cmocka_unit_test(test_forms_hex),
		cmocka_unit_test(test_forms_spaced_hex),
		cmocka_unit_test(test_forms_base64_alignments),
		cmocka_unit_test(test_forms_basic_and_jwt),
		cmocka_unit_test(test_forms_base64_alphabet_later),
		cmocka_unit_test(test_forms_base64_in_escaped_json),
		cmocka_unit_test(test_forms_base64_two_secrets),
		cmocka_unit_test(test_forms_near_misses),
		cmocka_unit_test(test_forms_property),
		cmocka_unit_test(test_forms_add_mid_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
