/*
 * test_jwt.c — compact JWS: a known answer for HS256 over RFC 7515 A.1's header and
 * claims bytes (the value Python's hmac module gives for them), the header jwt_encode
 * builds, a pluggable signer for other algs (and none installed: refused), bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "jwt.h"
#include "secmem.h"

static const char A1_HEADER[] = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
static const char A1_CLAIMS[] = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
    "\"http://example.com/is_root\":true}";
static const char A1_KEY_HEX[] = "0323354b2b0fa5bc837e0665777ba68f5ab328e6f054c928a90f84b2"
    "d2502ebfd3fb5a92d20647ef968ab4c377623d223d2e2172052e4f08c0cd9af567d09534";
static const char A1_JWT[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "Ns6gkbPXp2Ar7BCTfuzvGzq8UwEjFkRY7cUlJG8hs-E";

static void
test_hs256_known_answer(void **state)
{
	uint8_t key[64];
	char *out;
	size_t len;

	(void)state;
	assert_int_equal(sodium_hex2bin(key, sizeof(key), A1_KEY_HEX, strlen(A1_KEY_HEX), NULL,
	    NULL, NULL), 0);
	assert_int_equal(jwt_encode_raw("HS256", A1_HEADER, strlen(A1_HEADER), A1_CLAIMS,
	    strlen(A1_CLAIMS), (const char *)key, sizeof(key), &out, &len), JWT_OK);
	assert_int_equal(len, strlen(A1_JWT));
	assert_string_equal(out, A1_JWT);
	secmem_wipe_free(out);
}

static const char *seen_alg;
static size_t seen_len;

/* A stand-in signer: the signature is the signing input's length byte and 0x5a. */
static int
fake_signer(const char *alg, const char *key, size_t key_len, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t *siglen)
{
	(void)key;
	(void)key_len;
	(void)msg;
	seen_alg = alg;
	seen_len = len;
	sig[0] = (uint8_t)len;
	sig[1] = 0x5a;
	*siglen = 2;
	return 0;
}

static void
test_header_and_signer(void **state)
{
	char *out, expect[256];
	size_t len;
	const char *dot;

	(void)state;
	jwt_signer_install(NULL);
	assert_int_equal(jwt_encode("RS256", NULL, "{\"iss\":\"1\"}", "k", 1, &out, &len),
	    JWT_E_SIGN);
	assert_null(out);
	jwt_signer_install(fake_signer);
	assert_int_equal(jwt_encode("RS256", "key-1", "{\"iss\":\"1\"}", "k", 1, &out, &len),
	    JWT_OK);
	assert_string_equal(seen_alg, "RS256");
	/* {"alg":"RS256","typ":"JWT","kid":"key-1"} . {"iss":"1"} */
	snprintf(expect, sizeof(expect), "%s.%s", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZC"
	    "I6ImtleS0xIn0", "eyJpc3MiOiIxIn0");
	assert_int_equal(seen_len, strlen(expect));
	assert_memory_equal(out, expect, strlen(expect));
	dot = strrchr(out, '.');
	assert_non_null(dot);
	assert_int_equal((size_t)(dot - out), strlen(expect));
	assert_int_equal(len, strlen(out));
	secmem_wipe_free(out);
	jwt_signer_install(NULL);
}

static void
test_bounds(void **state)
{
	static char big[JWT_PART_MAX + 2];
	char *out;
	size_t len;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	assert_int_equal(jwt_encode_raw("HS256", "{}", 2, big, strlen(big), "k", 1, &out, &len),
	    JWT_E_ARG);
	assert_null(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs256_known_answer),
		cmocka_unit_test(test_header_and_signer),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
