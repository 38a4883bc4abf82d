/* test_awscred.c — derived AWS credentials: HKDF known answers, formats, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "awscred.h"
#include "handle.h"
#include "seal.h"

/* Computed outside sealgate (Python hashlib/hmac) for seal_key_from_seed(0x42 * 32). */
#define KAT_HANDLE	"sgh1.0a1b2c3d.known-answer-handle_text-0123456789"
#define KAT_AKID	"ASIAD4SYCKPKHDRDLFA4"
#define KAT_SECRET	"gIfgeH8sfZ9cYwJx+meJAsWDDmbV5TiU/0RA0OWz"
#define NHANDLES	200

static seal_key_t *key_a, *key_b, *key_pub;

static seal_key_t *
key_seeded(uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, sizeof(seed));
	return seal_key_from_seed(seed);
}

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	key_a = key_seeded(0x42);
	key_b = key_seeded(0x43);
	key_pub = key_a ? seal_key_from_pk(key_a->pk) : NULL;
	return key_a && key_b && key_pub ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	seal_key_free(key_a);
	seal_key_free(key_b);
	seal_key_free(key_pub);
	return 0;
}

static void
unhex(const char *hex, uint8_t *out, size_t len)
{
	size_t n = 0;

	assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL), 0);
	assert_int_equal(n, len);
}

static bool
matches(const char *re, const char *s)
{
	regex_t r;
	int rc;

	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&r, s, 0, NULL, 0);
	regfree(&r);
	return rc == 0;
}

/* A real handle minted under key for credential cred. */
static char *
mint(const seal_key_t *key, const char *cred, int64_t exp)
{
	handle_claims_t c;
	char *text = NULL;

	memset(&c, 0, sizeof(c));
	c.cred = (char *)cred;
	c.sb = (char *)"sb-1";
	c.iat = 1700000000;
	c.exp = exp;
	assert_int_equal(handle_mint(key, &c, &text), HANDLE_OK);
	return text;
}

/* RFC 5869 A.1 (basic) and A.3 (empty salt and info), through the exported function. */
static void
test_hkdf_rfc5869(void **state)
{
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(info); i++)
		info[i] = (uint8_t)(0xf0 + i);
	assert_int_equal(awscred_hkdf_sha256(salt, sizeof(salt), ikm, sizeof(ikm), info,
	    sizeof(info), okm, sizeof(okm)), 0);
	unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	    "34007208d5b887185865", want, sizeof(want));
	assert_memory_equal(okm, want, sizeof(want));
	assert_int_equal(awscred_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm,
	    sizeof(okm)), 0);
	unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	    "9d201395faa4b61a96c8", want, sizeof(want));
	assert_memory_equal(okm, want, sizeof(want));
}

/* Output lengths: a prefix of a longer output; 0 and over 255 blocks refused. */
static void
test_hkdf_lengths(void **state)
{
	uint8_t ikm[32] = {1}, a[100], b[7], *big = malloc(AWSCRED_HKDF_MAX + 1);

	(void)state;
	assert_non_null(big);
	assert_int_equal(awscred_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, a, sizeof(a)), 0);
	assert_int_equal(awscred_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(b));
	assert_int_equal(awscred_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, big,
	    AWSCRED_HKDF_MAX), 0);
	assert_memory_equal(big, a, sizeof(a));
	assert_int_equal(awscred_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, big,
	    AWSCRED_HKDF_MAX + 1), -1);
	assert_int_equal(awscred_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, big, 0), -1);
	free(big);
}

/* Values computed outside sealgate from the spec's formulas. */
static void
test_known_answer(void **state)
{
	char akid[AWSCRED_AKID_LEN + 1], secret[AWSCRED_SECRET_LEN + 1];

	(void)state;
	awscred_access_key_id(KAT_HANDLE, strlen(KAT_HANDLE), akid);
	assert_string_equal(akid, KAT_AKID);
	assert_int_equal(awscred_secret(key_a, KAT_HANDLE, strlen(KAT_HANDLE), secret), 0);
	assert_string_equal(secret, KAT_SECRET);
	sodium_memzero(secret, sizeof(secret));
}

static void
test_format_and_determinism(void **state)
{
	char a1[AWSCRED_AKID_LEN + 1], a2[AWSCRED_AKID_LEN + 1];
	char s1[AWSCRED_SECRET_LEN + 1], s2[AWSCRED_SECRET_LEN + 1];
	char *h = mint(key_a, "aws", 1700003600);

	(void)state;
	awscred_access_key_id(h, strlen(h), a1);
	awscred_access_key_id(h, strlen(h), a2);
	assert_string_equal(a1, a2);
	assert_true(matches("^ASIA[A-Z2-7]{16}$", a1));
	assert_int_equal(strlen(a1), AWSCRED_AKID_LEN);
	assert_int_equal(awscred_secret(key_a, h, strlen(h), s1), 0);
	assert_int_equal(awscred_secret(key_a, h, strlen(h), s2), 0);
	assert_string_equal(s1, s2);
	assert_true(matches("^[A-Za-z0-9+/]{40}$", s1));
	assert_int_equal(strlen(s1), AWSCRED_SECRET_LEN);
	/* every byte of the handle counts: one more or one less byte, other values */
	awscred_access_key_id(h, strlen(h) - 1, a2);
	assert_string_not_equal(a1, a2);
	assert_int_equal(awscred_secret(key_a, h, strlen(h) - 1, s2), 0);
	assert_string_not_equal(s1, s2);
	free(h);
}

/* NHANDLES fresh handles: no two share an access key id or a secret. */
static void
test_distinct_handles(void **state)
{
	char (*akid)[AWSCRED_AKID_LEN + 1] = calloc(NHANDLES, sizeof(*akid));
	char (*sec)[AWSCRED_SECRET_LEN + 1] = calloc(NHANDLES, sizeof(*sec));

	(void)state;
	assert_non_null(akid);
	assert_non_null(sec);
	for (size_t i = 0; i < NHANDLES; i++) {
		char *h = mint(key_a, i % 2 ? "aws" : "aws-2", 1700003600);

		awscred_access_key_id(h, strlen(h), akid[i]);
		assert_int_equal(awscred_secret(key_a, h, strlen(h), sec[i]), 0);
		free(h);
	}
	for (size_t i = 0; i < NHANDLES; i++)
		for (size_t j = i + 1; j < NHANDLES; j++) {
			assert_string_not_equal(akid[i], akid[j]);
			assert_string_not_equal(sec[i], sec[j]);
		}
	sodium_memzero(sec, NHANDLES * sizeof(*sec));
	free(akid);
	free(sec);
}

/* The secret depends on the seal key, the key id does not; public keys derive nothing. */
static void
test_keys(void **state)
{
	char sa[AWSCRED_SECRET_LEN + 1], sb[AWSCRED_SECRET_LEN + 1], zero[AWSCRED_SECRET_LEN + 1];

	(void)state;
	assert_int_equal(awscred_secret(key_a, KAT_HANDLE, strlen(KAT_HANDLE), sa), 0);
	assert_int_equal(awscred_secret(key_b, KAT_HANDLE, strlen(KAT_HANDLE), sb), 0);
	assert_string_not_equal(sa, sb);
	assert_true(matches("^[A-Za-z0-9+/]{40}$", sb));
	memset(sb, 'x', sizeof(sb));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(awscred_secret(key_pub, KAT_HANDLE, strlen(KAT_HANDLE), sb), -1);
	assert_memory_equal(sb, zero, sizeof(zero));
	/* the access key id names the handle only: same text, same id, whatever key */
	{
		char a[AWSCRED_AKID_LEN + 1], b[AWSCRED_AKID_LEN + 1];
		char *h = mint(key_b, "aws", 1700003600);

		awscred_access_key_id(KAT_HANDLE, strlen(KAT_HANDLE), a);
		assert_string_equal(a, KAT_AKID);
		awscred_access_key_id(h, strlen(h), b);
		assert_string_not_equal(a, b);
		free(h);
	}
	sodium_memzero(sa, sizeof(sa));
}

static void
test_expiration(void **state)
{
	static const struct { int64_t t; const char *want; } cases[] = {
		{0, "1970-01-01T00:00:00Z"},
		{1700000000, "2023-11-14T22:13:20Z"},
		{1709164800, "2024-02-29T00:00:00Z"},
		{951782400, "2000-02-29T00:00:00Z"},
		{4102444799LL, "2099-12-31T23:59:59Z"},
		{1796562000, "2026-12-06T13:00:00Z"},
		{253402300799LL, "9999-12-31T23:59:59Z"},
	};
	char out[AWSCRED_EXPIRATION_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(awscred_expiration(cases[i].t, out), 0);
		assert_string_equal(out, cases[i].want);
		assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
		    out));
	}
	assert_int_equal(awscred_expiration(-1, out), -1);
	assert_string_equal(out, "");
	assert_int_equal(awscred_expiration(253402300800LL, out), -1);
	assert_int_equal(awscred_expiration(INT64_MAX, out), -1);
	assert_int_equal(awscred_expiration(INT64_MIN, out), -1);
}

/* Agrees with the C library's gmtime over a spread of days and seconds. */
static void
test_expiration_matches_gmtime(void **state)
{
	char out[AWSCRED_EXPIRATION_LEN + 1], want[64];
	struct tm tm;
	time_t t;

	(void)state;
	for (int64_t v = 0; v < 4102444800LL; v += 86400LL * 13 + 3607) {
		t = (time_t)v;
		assert_non_null(gmtime_r(&t, &tm));
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		assert_int_equal(awscred_expiration(v, out), 0);
		assert_string_equal(out, want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_hkdf_lengths),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_format_and_determinism),
		cmocka_unit_test(test_distinct_handles),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_expiration),
		cmocka_unit_test(test_expiration_matches_gmtime),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
