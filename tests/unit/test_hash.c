/* test_hash.c — FNV-1a vectors and streaming, SipHash vectors, random keys, wiping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hash.h"

/* Published FNV-1a test vectors (Fowler, Noll, Vo: test suite of the reference code). */
static void
test_fnv1a_vectors(void **state)
{
	static const struct { const char *s; uint32_t h32; uint64_t h64; } v[] = {
		{"", 0x811c9dc5u, 0xcbf29ce484222325ULL},
		{"a", 0xe40c292cu, 0xaf63dc4c8601ec8cULL},
		{"foobar", 0xbf9cf968u, 0x85944171f73967e8ULL},
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(v); i++) {
		size_t n = strlen(v[i].s);

		assert_int_equal(hash_fnv1a32(HASH_FNV1A32_INIT, v[i].s, n), v[i].h32);
		assert_int_equal(hash_fnv1a32_str(v[i].s), v[i].h32);
		assert_int_equal(hash_fnv1a64(HASH_FNV1A64_INIT, v[i].s, n), v[i].h64);
	}
}

/* Hashing in pieces gives the hash of the whole, at every split. */
static void
test_fnv1a_streaming(void **state)
{
	static const char s[] = "api.example.com\xff" "allowed";
	size_t n = sizeof(s) - 1;
	uint32_t whole32 = hash_fnv1a32(HASH_FNV1A32_INIT, s, n);
	uint64_t whole64 = hash_fnv1a64(HASH_FNV1A64_INIT, s, n);

	(void)state;
	for (size_t k = 0; k <= n; k++) {
		uint32_t h32 = hash_fnv1a32(HASH_FNV1A32_INIT, s, k);
		uint64_t h64 = hash_fnv1a64(HASH_FNV1A64_INIT, s, k);

		assert_int_equal(hash_fnv1a32(h32, s + k, n - k), whole32);
		assert_int_equal(hash_fnv1a64(h64, s + k, n - k), whole64);
	}
	assert_int_not_equal(hash_fnv1a64(HASH_FNV1A64_INIT, s, n - 1), whole64);
}

/* SipHash-2-4 reference vectors (Aumasson, Bernstein), key 00..0f, message 00..len-1. */
static void
test_keyed_vectors(void **state)
{
	static const struct { size_t len; uint64_t h; } v[] = {
		{0, 0x310e0edd47db6f72ULL},	/* bytes 31 0e 0e dd ..., read big-endian */
		{1, 0xfd67dc93c539f874ULL},
		{15, 0xe545be4961ca29a1ULL},
	};
	unsigned char msg[16];
	hash_key_t key;

	(void)state;
	for (size_t i = 0; i < sizeof(key.bytes); i++)
		key.bytes[i] = (unsigned char)i;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	for (size_t i = 0; i < SG_ARRAY_LEN(v); i++)
		assert_int_equal(hash_keyed(&key, msg, v[i].len), v[i].h);
}

/* Each table's key is its own: the same name lands elsewhere under another key. */
static void
test_keyed_random_keys(void **state)
{
	static const char name[] = "api.example.com";
	hash_key_t a, b;
	const hash_key_t zero = {{0}};

	(void)state;
	assert_int_equal(hash_key_init(&a), 0);
	assert_int_equal(hash_key_init(&b), 0);
	assert_memory_not_equal(a.bytes, b.bytes, sizeof(a.bytes));
	assert_int_equal(hash_keyed(&a, name, sizeof(name) - 1),
	    hash_keyed(&a, name, sizeof(name) - 1));
	assert_int_not_equal(hash_keyed(&a, name, sizeof(name) - 1),
	    hash_keyed(&b, name, sizeof(name) - 1));
	hash_key_wipe(&a);
	assert_memory_equal(a.bytes, zero.bytes, sizeof(a.bytes));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fnv1a_vectors),
		cmocka_unit_test(test_fnv1a_streaming),
		cmocka_unit_test(test_keyed_vectors),
		cmocka_unit_test(test_keyed_random_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
