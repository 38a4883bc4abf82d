/* test_digest.c — the core's SHA-256: libsodium's by default, another when installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "digest.h"

static const char abc_hex[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void
hex(const uint8_t *h, char *out)
{
	sodium_bin2hex(out, 2 * DIGEST_SHA256_BYTES + 1, h, DIGEST_SHA256_BYTES);
}

static void
test_known_answers(void **state)
{
	uint8_t h[DIGEST_SHA256_BYTES];
	char x[2 * DIGEST_SHA256_BYTES + 1];

	(void)state;
	assert_int_equal(digest_sha256("abc", 3, h), 0);
	hex(h, x);
	assert_string_equal(x, abc_hex);
	assert_int_equal(digest_sha256("", 0, h), 0);
	hex(h, x);
	assert_string_equal(x,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Pieces of any size give the one-shot hash; init starts a used digest over. */
static void
test_incremental(void **state)
{
	static uint8_t buf[70000];
	uint8_t one[DIGEST_SHA256_BYTES], inc[DIGEST_SHA256_BYTES];
	digest_sha256_t d;

	(void)state;
	randombytes_buf(buf, sizeof(buf));
	assert_int_equal(digest_sha256(buf, sizeof(buf), one), 0);
	memset(&d, 0, sizeof(d));
	assert_int_equal(digest_sha256_init(&d), 0);
	digest_sha256_update(&d, "junk", 4);
	assert_int_equal(digest_sha256_init(&d), 0);
	for (size_t off = 0, step = 1; off < sizeof(buf); off += step, step = step * 3 + 1)
		digest_sha256_update(&d, buf + off, step < sizeof(buf) - off ? step :
		    sizeof(buf) - off);
	digest_sha256_final(&d, inc);
	assert_memory_equal(one, inc, sizeof(one));
	digest_sha256_release(&d);
}

/* An installed implementation is the one used; NULL goes back to libsodium's. */
static int fake_calls;

static int
fake_init(void *ctx)
{
	memset(ctx, 0, 8);
	fake_calls++;
	return 0;
}

static void
fake_update(void *ctx, const void *p, size_t n)
{
	(void)p;
	*(size_t *)ctx += n;
}

static void
fake_final(void *ctx, uint8_t out[DIGEST_SHA256_BYTES])
{
	memset(out, 0, DIGEST_SHA256_BYTES);
	memcpy(out, ctx, sizeof(size_t));
}

static void
fake_release(void *ctx)
{
	memset(ctx, 0, 8);
}

static const digest_sha256_ops_t fake = {fake_init, fake_update, fake_final, fake_release};

static void
test_install(void **state)
{
	uint8_t h[DIGEST_SHA256_BYTES];
	char x[2 * DIGEST_SHA256_BYTES + 1];
	size_t n;

	(void)state;
	digest_sha256_install(&fake);
	assert_int_equal(digest_sha256("abcdef", 6, h), 0);
	memcpy(&n, h, sizeof(n));
	assert_int_equal(n, 6);
	assert_int_equal(fake_calls, 1);
	digest_sha256_install(NULL);
	assert_int_equal(digest_sha256("abc", 3, h), 0);
	hex(h, x);
	assert_string_equal(x, abc_hex);
	assert_int_equal(fake_calls, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_install),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
