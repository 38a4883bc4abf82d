/*
 * test_mintclient.c — the RS256 signer the mint client installs for jwt.h: a JWT signed
 * with a fresh RSA key verifies with OpenSSL over its signing input and fails once a byte
 * of it changes; a non-RSA key, garbage and another alg are refused; a client made on an
 * event base installs it and frees cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "jwt.h"
#include "mintcache.h"
#include "mintclient.h"
#include "secmem.h"
#include "tls.h"

static char *
pem_of(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static int
verify(EVP_PKEY *k, const char *input, size_t ilen, const char *sig64)
{
	unsigned char sig[1024];
	size_t slen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	assert_int_equal(sodium_base642bin(sig, sizeof(sig), sig64, strlen(sig64), NULL, &slen,
	    NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
	    EVP_DigestVerify(md, sig, slen, (const unsigned char *)input, ilen) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static void
test_rs256_verifies(void **state)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	size_t plen, len;
	char *pem = pem_of(k, &plen), *jwt, *dot;

	(void)state;
	jwt_signer_install(mintclient_rs256);
	assert_int_equal(jwt_encode("RS256", NULL, "{\"iss\":\"123456\"}", pem, plen, &jwt,
	    &len), JWT_OK);
	dot = strrchr(jwt, '.');
	assert_true(verify(k, jwt, (size_t)(dot - jwt), dot + 1));
	jwt[3] ^= 1;			/* the header changed: the signature no longer fits */
	assert_false(verify(k, jwt, (size_t)(dot - jwt), dot + 1));
	secmem_wipe_free(jwt);
	jwt_signer_install(NULL);
	free(pem);
	EVP_PKEY_free(k);
}

static void
test_rs256_refusals(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	size_t plen, siglen = 1024;
	char *pem = pem_of(ec, &plen);
	uint8_t sig[1024];

	(void)state;
	assert_int_equal(mintclient_rs256("RS256", pem, plen, (const uint8_t *)"x", 1, sig,
	    &siglen), -1);
	siglen = sizeof(sig);
	assert_int_equal(mintclient_rs256("RS256", "not a key", 9, (const uint8_t *)"x", 1,
	    sig, &siglen), -1);
	siglen = sizeof(sig);
	assert_int_equal(mintclient_rs256("ES256", pem, plen, (const uint8_t *)"x", 1, sig,
	    &siglen), -1);
	free(pem);
	EVP_PKEY_free(ec);
}

static void
done_cb(void *arg)
{
	(*(int *)arg)++;
}

static void
test_new_installs_and_frees(void **state)
{
	struct event_base *base = event_base_new();
	mintcache_t *cache = mintcache_new();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char err[256], *jwt = NULL;
	size_t len, plen;
	int dones = 0;
	EVP_PKEY *k = EVP_RSA_gen(2048);
	char *pem = pem_of(k, &plen);
	mintclient_t *cl;

	(void)state;
	jwt_signer_install(NULL);
	cl = mintclient_new(base, ctx, cache, done_cb, &dones, err, sizeof(err));
	assert_non_null(cl);
	assert_int_equal(mintclient_pending(cl), 0);
	assert_int_equal(jwt_encode("RS256", NULL, "{}", pem, plen, &jwt, &len), JWT_OK);
	secmem_wipe_free(jwt);
	mintclient_free(cl);
	assert_int_equal(dones, 0);
	jwt_signer_install(NULL);
	free(pem);
	EVP_PKEY_free(k);
	SSL_CTX_free(ctx);
	mintcache_free(cache);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rs256_verifies),
		cmocka_unit_test(test_rs256_refusals),
		cmocka_unit_test(test_new_installs_and_frees),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
