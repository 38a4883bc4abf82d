/*
 * fuzz_scrub.c — libFuzzer harness for the response scrubber (scrub.h, SCRUB_FORMS and
 * SCRUB_LITERAL).
 *
 * Input: byte 0 picks the mode and the number of secrets (1..3); then each secret as a
 * length byte (4..19) and its bytes; the rest is the message. Replacements are made of
 * '@' only (secrets never hold one), so they can neither form nor hide a secret.
 *
 * Invariants: the whole message and the same message in PRNG-sized pieces give the same
 * output and the same replacement count; the output never holds a secret's raw bytes;
 * in SCRUB_FORMS, unless a base64 run was re-encoded (its new characters are the
 * input's to choose), the output unescaped holds no secret either. (Hex is not checked:
 * a hex replacement's own digits may complete a hex needle with the text after it.)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"
#include "unescape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	unsigned char *p;
	size_t len, cap;
};

static void
out_cb(void *arg, const void *data, size_t len)
{
	struct out *o = arg;

	if (o->len + len > o->cap) {
		o->cap = (o->len + len) * 2 + 64;
		if ((o->p = realloc(o->p, o->cap)) == NULL)
			abort();
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
}

struct secret {
	unsigned char b[20];
	size_t n;
};

static scrub_t *
make(enum scrub_mode mode, const struct secret *sec, size_t nsec)
{
	static const char at[] = "@@@@@@@@";
	scrub_t *s = scrub_new(mode);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < nsec; i++)
		if (scrub_add(s, sec[i].b, sec[i].n, at, i + 3) < 0)
			abort();
	return s;
}

/* Scrub msg in pieces whose lengths come from seed (0: whole). */
static size_t
run(scrub_t *s, const uint8_t *msg, size_t len, uint64_t seed, struct out *o)
{
	size_t at = 0;

	while (at < len) {
		size_t n = len - at;

		if (seed != 0) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			n = (size_t)(seed >> 33) % 67;	/* 0..66: empty feeds too */
			if (n > len - at)
				n = len - at;
		}
		if (scrub_feed(s, msg + at, n, out_cb, o) < 0)
			abort();
		at += n;
	}
	if (scrub_finish(s, out_cb, o) < 0)
		abort();
	return scrub_replacements(s);
}

/* Does the output, escapes decoded, hold s? */
static bool
holds_unescaped(const struct out *o, const struct secret *s)
{
	unsigned char *dec = malloc(o->len + 1);
	unescape_t u;
	unescape_out_t y;
	size_t n = 0;
	bool found;

	if (dec == NULL)
		abort();
	unescape_init(&u);
	for (size_t i = 0; i <= o->len; i++) {
		y.n = 0;
		if (i < o->len)
			unescape_byte(&u, o->p[i], i, &y);
		else
			unescape_flush(&u, &y);
		for (size_t j = 0; j < y.n && n < o->len; j++)
			dec[n++] = y.v[j].c;
	}
	found = n > 0 && memmem(dec, n, s->b, s->n) != NULL;
	free(dec);
	return found;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct secret sec[3];
	struct out whole = {0}, split = {0};
	enum scrub_mode mode;
	size_t nsec, at = 1, r1, r2;
	uint64_t seed = size | 1;
	scrub_t *a, *b;

	if (size < 1)
		return 0;
	mode = (data[0] & 1) ? SCRUB_FORMS : SCRUB_LITERAL;
	nsec = 1 + (data[0] >> 1) % 3;
	for (size_t i = 0; i < nsec; i++) {
		if (at >= size)
			return 0;
		sec[i].n = 4 + data[at++] % 16;
		if (size - at < sec[i].n)
			return 0;
		for (size_t j = 0; j < sec[i].n; j++)
			sec[i].b[j] = data[at + j] == '@' ? 'A' : data[at + j];
		at += sec[i].n;
	}
	for (size_t i = at; i < size && i < at + 8; i++)
		seed = seed << 8 | data[i];
	a = make(mode, sec, nsec);
	b = make(mode, sec, nsec);
	r1 = run(a, data + at, size - at, 0, &whole);
	r2 = run(b, data + at, size - at, seed, &split);
	if (r1 != r2 || whole.len != split.len ||
	    (whole.len > 0 && memcmp(whole.p, split.p, whole.len) != 0))
		abort();
	for (size_t i = 0; i < nsec; i++) {
		if (whole.len > 0 && memmem(whole.p, whole.len, sec[i].b, sec[i].n) != NULL)
			abort();
		if (mode == SCRUB_FORMS && scrub_rewrites(a) == 0 &&
		    holds_unescaped(&whole, &sec[i]))
			abort();
	}
	scrub_free(a);
	scrub_free(b);
	free(whole.p);
	free(split.p);
	return 0;
}
