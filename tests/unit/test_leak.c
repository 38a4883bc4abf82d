/* test_leak.c — encoded handle prefixes: every encoding, alignment, split; no false hits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "leak.h"

#define PREFIX	"sgh1."
#define BUFMAX	4096

/* Fixed-seed xorshift64*: the same inputs on every run. */
static uint64_t rng_state = 0x5ea19a7e2024ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned
rnd(unsigned n)
{
	return (unsigned)(rng() % n);
}

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64std_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
rand_from(char *out, size_t n, const char *alphabet)
{
	size_t k = strlen(alphabet);

	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[rnd((unsigned)k)];
}

static void
rand_bytes(unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)rng();
}

/* A plausible handle after the prefix: "<8 hex>.<base64url>". */
static size_t
handle_tail(char *out)
{
	size_t n = 8 + 1 + 20 + rnd(40);

	rand_from(out, 8, "0123456789abcdef");
	out[8] = '.';
	rand_from(out + 9, n - 9, b64url_chars);
	return n;
}

static int
scan(const char *s, leak_hit_t *hit)
{
	return leak_scan(s, strlen(s), hit);
}

/* Stream s in pieces cut at cuts[0..ncut) (ascending); returns the stream result. */
static int
stream_cut(bool raw, const void *buf, size_t len, const size_t *cuts, size_t ncut,
    leak_hit_t *hit)
{
	leak_stream_t ls;
	size_t at = 0;
	int r = 0;

	if (raw)
		leak_stream_init(&ls);
	else
		leak_stream_init_encoded(&ls);
	for (size_t i = 0; i <= ncut; i++) {
		size_t end = i < ncut ? cuts[i] : len;

		r = leak_stream_feed(&ls, (const char *)buf + at, end - at, hit);
		at = end;
	}
	if (r == 0)
		r = leak_stream_finish(&ls, hit);
	return r;
}

/* leak_scan and an encoded-only stream cut at every position (and in two places) agree. */
static void
assert_split_invariant(const void *buf, size_t len)
{
	leak_hit_t want = {0}, got = {0};
	int r = leak_scan(buf, len, &want);

	for (size_t i = 0; i <= len; i++) {
		size_t cuts[2] = {i, 0};

		assert_int_equal(stream_cut(false, buf, len, cuts, 1, &got), r);
		if (r) {
			assert_string_equal(got.encoding, want.encoding);
			assert_int_equal(got.off, want.off);
		}
		cuts[1] = i + rnd((unsigned)(len - i + 1));
		assert_int_equal(stream_cut(false, buf, len, cuts, 2, &got), r);
		if (r)
			assert_int_equal(got.off, want.off);
	}
}

/* --- fixed vectors ------------------------------------------------------------------- */

struct vec {
	const char *in;
	int hit;
	const char *enc;
	size_t off;
};

static const struct vec vectors[] = {
	/* percent, any subset, either hex case, nested */
	{"x=%73gh1%2Eabc", 1, "percent", 2},
	{"%73%67%68%31%2e0badc0de.AAAA", 1, "percent", 0},
	{"%73%67%68%31%2E", 1, "percent", 0},
	{"sgh1%2e", 1, "percent", 0},
	{"s%67h1.", 1, "percent", 0},
	{"q=%2573gh1.", 1, "percent", 2},
	{"%252573gh1.", 1, "percent", 0},
	{"%%37%33gh1.", 1, "percent", 0},
	{"%%73gh1.abc", 1, "percent", 1},
	{"%%%73gh1.", 1, "percent", 2},
	{"\\u002573gh1.k", 1, "percent", 0},
	/* JSON / JS escapes */
	{"{\"k\":\"\\u0073gh1.0\"}", 1, "json-escape", 6},
	{"s\\u0067h1.", 1, "json-escape", 0},
	{"\\u0073\\u0067\\u0068\\u0031\\u002E", 1, "json-escape", 0},
	{"\\x73gh1.", 1, "json-escape", 0},
	{"\\X73gh1.", 0, NULL, 0},
	{"\\u{73}gh1.", 1, "json-escape", 0},
	{"\\u{000073}gh1.", 1, "json-escape", 0},
	{"\\\\u0073gh1.", 1, "json-escape", 0},
	{"\\\\\\\\u0073gh1.", 1, "json-escape", 0},
	{"a\\\\\\x73gh1.", 1, "json-escape", 1},
	{"\\u0073\\u0067\\u0068\\u0031\\u002e", 1, "json-escape", 0},
	/* HTML numeric entities */
	{"<a>&#115;gh1.</a>", 1, "html-entity", 3},
	{"&#x73;gh1.", 1, "html-entity", 0},
	{"&#X73;gh1.", 1, "html-entity", 0},
	{"&#0115;gh1.", 1, "html-entity", 0},
	{"&#115gh1.", 1, "html-entity", 0},
	{"sgh1&#46;", 1, "html-entity", 0},
	{"sgh1&#46", 1, "html-entity", 0},	/* resolved at the end of the input */
	{"sgh1&#x2e", 1, "html-entity", 0},
	{"&#115;gh&#49;&#x2E;", 1, "html-entity", 0},
	{"&#1150;gh1.", 0, NULL, 0},
	{"&#0000000115;gh1.", 0, NULL, 0},	/* more than 8 digits: not decoded */
	/* mixed */
	{"\\u0073%67h1.", 1, "percent", 0},
	{"&#115;\\u0067h1.", 1, "json-escape", 0},
	/* base64, each alignment */
	{"c2doMS4wYmFkYzBkZS5BQUFB", 1, "base64", 0},
	{"QXNnaDEu", 1, "base64", 2},
	{"QUFzZ2gxLg==", 1, "base64", 3},
	{"QUFzZ2gxLg", 1, "base64", 3},
	{"Authorization: Basic dXNlcjpzZ2gxLjAxMDIwMzA0", 1, "base64", 28},
	{"a-_zZ2gxL", 1, "base64url", 3},
	{"a+/zZ2gxL", 1, "base64", 3},
	{"c2do\r\nMS4x", 1, "base64", 0},
	{"%63%32doMS", 1, "base64", 0},		/* percent-encoded base64 */
	/* hex */
	{"736768312e3031", 1, "hex", 0},
	{"0x736768312E", 1, "hex", 2},
	{"73 67 68 31 2e", 1, "hex", 0},
	{"73:67:68:31:2E:30", 1, "hex", 0},
	{"%736768312e", 1, "hex", 1},
	{"\\x73\\x67\\x68\\x31\\x2e", 1, "json-escape", 0},
	/* not hits */
	{"", 0, NULL, 0},
	{"sgh1.0102.abc", 0, NULL, 0},	/* raw: inject's business */
	{"SGH1.", 0, NULL, 0},
	{"%53GH1.", 0, NULL, 0},
	{"%73gh1", 0, NULL, 0},
	{"%73gh1%2", 0, NULL, 0},
	{"%73gh1%", 0, NULL, 0},
	{"%7", 0, NULL, 0},
	{"%", 0, NULL, 0},
	{"%7 3gh1.", 0, NULL, 0},
	{"%7%33gh1.", 1, "percent", 0},	/* %7%33 -> %73 -> s */
	{"\\u007", 0, NULL, 0},
	{"\\u007gh1.", 0, NULL, 0},
	{"\\u{}gh1.", 0, NULL, 0},
	{"\\x7gh1.", 0, NULL, 0},
	{"&#", 0, NULL, 0},
	{"&#x;gh1.", 0, NULL, 0},
	{"&#11", 0, NULL, 0},
	{"\\u0173gh1.", 0, NULL, 0},	/* non-ASCII code point, not 's' */
	{"c2doMS", 1, "base64", 0},
	{"c2doM", 0, NULL, 0},
	{"7367683", 0, NULL, 0},
	{"s-g-h-1-.", 0, NULL, 0},
};

static void
test_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vec *v = &vectors[i];
		leak_hit_t hit = {0};
		int r = scan(v->in, &hit);

		if (r != v->hit || (r && (strcmp(hit.encoding, v->enc) != 0 || hit.off != v->off)))
			fail_msg("vector %zu \"%s\": got %d %s @%zu, want %d %s @%zu", i, v->in, r,
			    r ? hit.encoding : "-", hit.off, v->hit, v->enc ? v->enc : "-", v->off);
		assert_split_invariant(v->in, strlen(v->in));
	}
}

/* --- generated encodings with random surroundings ------------------------------------- */

/* Percent-encode c at depth 1..3 into out; returns bytes written. */
static size_t
pct_encode(unsigned char c, unsigned depth, char *out)
{
	char tmp[32], hx[8];
	size_t n;

	snprintf(hx, sizeof(hx), rnd(2) ? "%%%02X" : "%%%02x", c);
	memcpy(tmp, hx, 4);
	n = 3;
	while (--depth > 0) {	/* encode the '%' again */
		memmove(tmp + 2, tmp, n);
		memcpy(tmp, "%25", 3);
		n += 2;
	}
	memcpy(out, tmp, n);
	return n;
}

static size_t
json_encode(unsigned char c, char *out)
{
	switch (rnd(4)) {
	case 0:
		return (size_t)sprintf(out, rnd(2) ? "\\u%04X" : "\\u%04x", c);
	case 1:
		return (size_t)sprintf(out, "\\x%02x", c);
	case 2:
		return (size_t)sprintf(out, "\\u{%x}", c);
	default:
		return (size_t)sprintf(out, "\\\\u%04x", c);	/* JSON inside JSON */
	}
}

static size_t
html_encode(unsigned char c, unsigned char next, char *out)
{
	bool semi = rnd(2) || (next >= '0' && next <= '9') || (next >= 'a' && next <= 'f') ||
	    (next >= 'A' && next <= 'F') || next == ';';

	if (rnd(2))
		return (size_t)sprintf(out, semi ? "&#%u;" : "&#%u", c);
	return (size_t)sprintf(out, semi ? "&#x%x;" : "&#x%x", c);
}

enum gen { GEN_PCT, GEN_JSON, GEN_HTML, GEN_HEX, GEN_NONE };

static const char *const gen_name[] = {"percent", "json-escape", "html-entity", "hex"};

/*
 * Random bytes, then "sgh1.<tail>" encoded with g (at least one character encoded), then
 * random bytes. *at is where the encoded prefix starts.
 */
static size_t
gen_case(enum gen g, unsigned char *buf, size_t *at)
{
	char plain[128];
	size_t n = 0, pl;
	unsigned mask = 0;

	memcpy(plain, PREFIX, 5);
	pl = 5 + handle_tail(plain + 5);
	n = rnd(40);
	rand_bytes(buf, n);
	/* random bytes that end in an escape introducer would merge with ours: avoid '%\&' */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '%' || buf[i] == '\\' || buf[i] == '&')
			buf[i] = ' ';
	*at = n;
	while (mask == 0)
		mask = rnd(32);
	for (size_t i = 0; i < pl; i++) {
		unsigned char c = (unsigned char)plain[i];

		if (g == GEN_HEX) {
			n += (size_t)sprintf((char *)buf + n, rnd(2) ? "%02x" : "%02X", c);
			continue;
		}
		if (i >= 5 || !(mask & (1u << i))) {
			buf[n++] = c;
			continue;
		}
		if (g == GEN_PCT)
			n += pct_encode(c, 1 + rnd(3), (char *)buf + n);
		else if (g == GEN_JSON)
			n += json_encode(c, (char *)buf + n);
		else
			n += html_encode(c, (unsigned char)plain[i + 1], (char *)buf + n);
	}
	for (size_t k = rnd(40); k > 0; k--)
		buf[n++] = (unsigned char)rng();
	return n;
}

static void
test_generated(void **state)
{
	(void)state;
	for (int g = GEN_PCT; g <= GEN_HEX; g++) {
		for (int round = 0; round < 300; round++) {
			unsigned char buf[BUFMAX];
			size_t at, n = gen_case((enum gen)g, buf, &at);
			leak_hit_t hit = {0};

			assert_int_equal(leak_scan(buf, n, &hit), 1);
			assert_string_equal(hit.encoding, gen_name[g]);
			assert_int_equal(hit.off, at);
			if (round < 20)
				assert_split_invariant(buf, n);
		}
	}
}

/* --- base64 against libsodium's encoder ------------------------------------------------ */

static const char *const b64_runs[3] = {"c2doMS", "NnaDEu", "zZ2gxL"};

static void
test_base64_sodium(void **state)
{
	static const int variants[] = {
		sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
		sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING,
	};

	(void)state;
	for (size_t v = 0; v < 4; v++) {
		bool url = variants[v] == sodium_base64_VARIANT_URLSAFE ||
		    variants[v] == sodium_base64_VARIANT_URLSAFE_NO_PADDING;

		for (size_t plen = 0; plen < 48; plen++) {
			for (int round = 0; round < 60; round++) {
				unsigned char bin[256];
				char enc[512], *p;
				size_t n = plen, blen;
				leak_hit_t hit = {0};

				rand_bytes(bin, plen);
				memcpy(bin + n, PREFIX, 5);
				n += 5;
				n += handle_tail((char *)bin + n);
				blen = rnd(5);
				rand_bytes(bin + n, blen);
				n += blen;
				sodium_bin2base64(enc, sizeof(enc), bin, n, variants[v]);
				assert_int_equal(scan(enc, &hit), 1);
				/* the hit is at the fixed run for this alignment */
				p = enc + hit.off;
				assert_true(hit.off == plen / 3 * 4 + (plen % 3 ? plen % 3 + 1 : 0));
				assert_memory_equal(p, b64_runs[plen % 3], 6);
				/* alphabet: decided by what precedes the hit */
				{
					bool dash = false, plus = false;

					for (size_t i = 0; i < hit.off; i++) {
						if (enc[i] == '-' || enc[i] == '_')
							dash = true, plus = false;
						if (enc[i] == '+' || enc[i] == '/')
							plus = true, dash = false;
					}
					assert_true(!plus || !url);
					if (dash)
						assert_string_equal(hit.encoding, "base64url");
					else
						assert_string_equal(hit.encoding, "base64");
				}
				if (round == 0 && plen < 8)
					assert_split_invariant(enc, strlen(enc));
			}
		}
	}
}

/* The fixed runs are exactly the characters every encoding at that alignment shares. */
static void
test_base64_runs_are_maximal(void **state)
{
	(void)state;
	for (int a = 0; a < 3; a++) {
		/* Encode P^a "sgh1." X^2 for all P, X in two extreme bytes; the shared run
		 * of output positions must be runs[a] and nothing longer. */
		char first[64] = "", enc[64];
		bool same[16];
		size_t elen = 0;

		memset(same, 1, sizeof(same));
		for (int pv = 0; pv < 256; pv += 255) {
			for (int xv = 0; xv < 256; xv += 255) {
				unsigned char bin[16];

				memset(bin, pv, (size_t)a);
				memcpy(bin + a, PREFIX, 5);
				memset(bin + a + 5, xv, 2);
				sodium_bin2base64(enc, sizeof(enc), bin, (size_t)a + 7,
				    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
				elen = strlen(enc);
				if (first[0] == '\0')
					memcpy(first, enc, elen + 1);
				for (size_t i = 0; i < elen && i < 16; i++)
					if (enc[i] != first[i])
						same[i] = false;
			}
		}
		{
			size_t best = 0, bestat = 0, run = 0;

			for (size_t i = 0; i < elen && i < 16; i++) {
				run = same[i] ? run + 1 : 0;
				if (run > best) {
					best = run;
					bestat = i + 1 - run;
				}
			}
			assert_int_equal(best, 6);
			assert_memory_equal(first + bestat, b64_runs[a], 6);
		}
	}
}

/* --- streaming ---------------------------------------------------------------------- */

static void
test_stream_raw_every_split(void **state)
{
	const char *s = "POST body {\"token\":\"sgh1.0a0b0c0d.QUJD\"}";
	size_t len = strlen(s);

	(void)state;
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			size_t cuts[2] = {i, j};
			leak_hit_t hit = {0};

			assert_int_equal(stream_cut(true, s, len, cuts, 2, &hit), 1);
			assert_string_equal(hit.encoding, "raw");
			assert_int_equal(hit.off, 20);
			/* encoded-only streams ignore it, like leak_scan */
			assert_int_equal(stream_cut(false, s, len, cuts, 2, &hit), 0);
		}
	}
}

static void
test_stream_bytewise_and_sticky(void **state)
{
	static char big[1 << 20];
	const char *tail = "&#x73;gh1.";
	leak_stream_t ls;
	leak_hit_t hit = {0};

	(void)state;
	assert_true(sizeof(leak_stream_t) < 2048);
	memset(big, 'A', sizeof(big));
	leak_stream_init(&ls);
	assert_int_equal(leak_stream_feed(&ls, big, sizeof(big), &hit), 0);
	for (size_t i = 0; tail[i] != '\0'; i++) {
		int r = leak_stream_feed(&ls, tail + i, 1, &hit);

		assert_int_equal(r, tail[i + 1] == '\0');
	}
	assert_string_equal(hit.encoding, "html-entity");
	assert_int_equal(hit.off, sizeof(big));
	/* sticky: later clean data still reports the same hit */
	memset(&hit, 0, sizeof(hit));
	assert_int_equal(leak_stream_feed(&ls, "clean", 5, &hit), 1);
	assert_int_equal(hit.off, sizeof(big));
	assert_int_equal(leak_stream_finish(&ls, &hit), 1);
	/* empty feeds and finish on a clean stream */
	leak_stream_init(&ls);
	assert_int_equal(leak_stream_feed(&ls, "", 0, &hit), 0);
	assert_int_equal(leak_stream_finish(&ls, &hit), 0);
}

static void
test_stream_html_end(void **state)
{
	leak_stream_t ls;
	leak_hit_t hit;

	(void)state;
	leak_stream_init_encoded(&ls);
	assert_int_equal(leak_stream_feed(&ls, "sgh1&#4", 7, &hit), 0);
	assert_int_equal(leak_stream_feed(&ls, "6", 1, &hit), 0);	/* may continue */
	assert_int_equal(leak_stream_finish(&ls, &hit), 1);
	assert_string_equal(hit.encoding, "html-entity");
}

/* --- false positives ------------------------------------------------------------------ */

static void
test_no_false_positives(void **state)
{
	static const char *const alphabets[] = {
		b64std_chars, b64url_chars, "0123456789abcdef", "0123456789ABCDEF",
	};
	size_t hits = 0, total = 0;

	(void)state;
	for (int round = 0; round < 10000; round++) {
		char buf[1024];
		leak_hit_t hit;
		int kind = round % 6;

		if (kind < 4) {
			rand_from(buf, sizeof(buf), alphabets[kind]);
		} else if (kind == 4) {	/* percent-encoded random bytes, some left plain */
			size_t n = 0;

			while (n + 4 <= sizeof(buf)) {
				if (rnd(2))
					n += (size_t)sprintf(buf + n, "%%%02X", (unsigned)rnd(256));
				else
					buf[n++] = b64url_chars[rnd(64)];
			}
			while (n < sizeof(buf))
				buf[n++] = 'A';
		} else {
			rand_bytes((unsigned char *)buf, sizeof(buf));
		}
		/* the strings must not hold the prefix in the clear */
		if (memmem(buf, sizeof(buf), PREFIX, 5) != NULL)
			continue;
		total++;
		if (leak_scan(buf, sizeof(buf), &hit))
			hits++;
	}
	if (hits != 0)
		fail_msg("false positives: %zu of %zu random 1 KiB strings", hits, total);
	assert_true(total > 9900);
}

/* --- adversarial ---------------------------------------------------------------------- */

static void
test_adversarial(void **state)
{
	leak_hit_t hit;
	char buf[BUFMAX];

	(void)state;
	/* long runs of introducers */
	memset(buf, '%', sizeof(buf));
	assert_int_equal(leak_scan(buf, sizeof(buf), &hit), 0);
	memcpy(buf + sizeof(buf) - 8, "73gh1.xx", 8);
	assert_int_equal(leak_scan(buf, sizeof(buf), &hit), 1);
	assert_int_equal(hit.off, sizeof(buf) - 9);
	memset(buf, '\\', sizeof(buf));
	assert_int_equal(leak_scan(buf, sizeof(buf), &hit), 0);
	memcpy(buf + sizeof(buf) - 11, "u0073gh1.xx", 11);
	assert_int_equal(leak_scan(buf, sizeof(buf), &hit), 1);
	assert_string_equal(hit.encoding, "json-escape");
	assert_int_equal(hit.off, 0);	/* the whole backslash run is the introducer */
	for (size_t i = 0; i + 2 < sizeof(buf); i += 2)
		memcpy(buf + i, "&#", 2);
	assert_int_equal(leak_scan(buf, sizeof(buf), &hit), 0);
	/* many truncated escapes in a row, then a real one */
	{
		const char *s = "%7\\u00&#1\\x%%2&#x\\u{7%73gh1.";

		assert_int_equal(scan(s, &hit), 1);
		assert_string_equal(hit.encoding, "percent");
		assert_split_invariant(s, strlen(s));
	}
	/* NUL bytes are ordinary bytes */
	assert_int_equal(leak_scan("\0%73gh1.", 8, &hit), 1);
	assert_int_equal(hit.off, 1);
	/* a NULL buffer of length 0 */
	assert_int_equal(leak_scan(NULL, 0, &hit), 0);
}

/* leak_scan (with its pre-filter) against a stream fed byte by byte (no pre-filter), on
 * cases at the filter's edges and on random text over the characters it looks at. */
static int
stream_bytewise(const char *buf, size_t len, leak_hit_t *hit)
{
	leak_stream_t ls;

	leak_stream_init_encoded(&ls);
	for (size_t i = 0; i < len; i++)
		if (leak_stream_feed(&ls, buf + i, 1, hit))
			return 1;
	return leak_stream_finish(&ls, hit);
}

static void
check_same_as_stream(const char *buf, size_t len)
{
	leak_hit_t a = {0}, b = {0};
	int ra = leak_scan(buf, len, &a), rb = stream_bytewise(buf, len, &b);

	assert_int_equal(ra, rb);
	if (ra) {
		assert_int_equal(a.off, b.off);
		assert_string_equal(a.encoding, b.encoding);
	}
}

static void
test_prefilter_edges(void **state)
{
	static const struct {
		const char *in;
		int hit;
	} cases[] = {
		{"", 0}, {"GET /v1/models HTTP/1.1", 0}, {"Bearer sgh1.abcdef", 0},
		{"/search?q=a&b=c&d", 0}, {"a&amp;b", 0}, {"x&", 0}, {"&&#115;gh1.", 1},
		{"&#115;gh1.", 1}, {"&#x73;gh1.", 1}, {"%73gh1.", 1}, {"\\u0073gh1.", 1},
		{"c2doMS", 1}, {"c2\r\ndoMS", 1}, {"c2 doMS", 0}, {"xNnaDEu", 1}, {"zZ2g\nxL", 1},
		{"73 67 68 31 2E", 1}, {"73:67:68:31:2e", 1}, {"736768312", 0}, {"7\t3676\r\n8312e", 1},
		{"c2doM", 0}, {"cccc2doMS", 1}, {"777736768312e", 1}, {"c2do%4dS", 1},
	};
	char buf[200];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		leak_hit_t h;

		assert_int_equal(leak_scan(cases[i].in, strlen(cases[i].in), &h), cases[i].hit);
		check_same_as_stream(cases[i].in, strlen(cases[i].in));
	}
	/* a match longer than LEAK_HIST is no match: the filter only says "maybe" */
	memset(buf, '\n', sizeof(buf));
	memcpy(buf, "c2d", 3);
	memcpy(buf + 60, "oMS", 3);
	check_same_as_stream(buf, 63);
	for (int round = 0; round < 200000; round++) {
		static const char alpha[] = "c2doMSNnaDEuzZ2gxL736812eE \t\r\n:%&#\\;ux{}/Aa.sgh1";
		size_t len = rnd(40);

		for (size_t i = 0; i < len; i++)
			buf[i] = alpha[rnd(sizeof(alpha) - 1)];
		check_same_as_stream(buf, len);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_prefilter_edges),
		cmocka_unit_test(test_generated),
		cmocka_unit_test(test_base64_sodium),
		cmocka_unit_test(test_base64_runs_are_maximal),
		cmocka_unit_test(test_stream_raw_every_split),
		cmocka_unit_test(test_stream_bytewise_and_sticky),
		cmocka_unit_test(test_stream_html_end),
		cmocka_unit_test(test_no_false_positives),
		cmocka_unit_test(test_adversarial),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
