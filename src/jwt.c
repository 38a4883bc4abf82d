/* jwt.c — compact JWS: base64url header.claims, HS256 here, other algs from the shell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "jwt.h"
#include "secmem.h"

static jwt_sign_fn jwt_signer;

void
jwt_signer_install(jwt_sign_fn fn)
{
	jwt_signer = fn;
}

static int
jwt_sign(const char *alg, const char *key, size_t key_len, const char *msg, size_t len,
    uint8_t sig[JWT_SIG_MAX], size_t *siglen)
{
	crypto_auth_hmacsha256_state st;

	if (strcmp(alg, "HS256") == 0) {
		if (crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, key_len) != 0)
			return -1;
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
		crypto_auth_hmacsha256_final(&st, sig);
		sodium_memzero(&st, sizeof(st));
		*siglen = crypto_auth_hmacsha256_BYTES;
		return 0;
	}
	*siglen = JWT_SIG_MAX;
	if (jwt_signer == NULL || jwt_signer(alg, key, key_len, (const uint8_t *)msg, len, sig,
	    siglen) < 0 || *siglen == 0 || *siglen > JWT_SIG_MAX)
		return -1;
	return 0;
}

/* Append base64url(p[0..n)) at out + *at. */
static void
jwt_b64(char *out, size_t cap, size_t *at, const void *p, size_t n)
{
	sodium_bin2base64(out + *at, cap - *at, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*at += strlen(out + *at);
}

int
jwt_encode_raw(const char *alg, const char *header_json, size_t header_len,
    const char *claims_json, size_t claims_len, const char *key, size_t key_len,
    char **out, size_t *outlen)
{
	size_t cap, at = 0, siglen = 0;
	uint8_t sig[JWT_SIG_MAX];
	char *s;

	*out = NULL;
	if (header_len > JWT_PART_MAX || claims_len > JWT_PART_MAX)
		return JWT_E_ARG;
	cap = sodium_base64_ENCODED_LEN(header_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(claims_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(JWT_SIG_MAX, sodium_base64_VARIANT_URLSAFE_NO_PADDING) + 2;
	if ((s = secmem_wipe_alloc(cap)) == NULL)
		return JWT_E_NOMEM;
	jwt_b64(s, cap, &at, header_json, header_len);
	s[at++] = '.';
	jwt_b64(s, cap, &at, claims_json, claims_len);
	if (jwt_sign(alg, key, key_len, s, at, sig, &siglen) < 0) {
		secmem_wipe_free(s);
		return JWT_E_SIGN;
	}
	s[at++] = '.';
	jwt_b64(s, cap, &at, sig, siglen);
	sodium_memzero(sig, sizeof(sig));
	*out = s;
	*outlen = at;
	return JWT_OK;
}

int
jwt_encode(const char *alg, const char *kid, const char *claims_json, const char *key,
    size_t key_len, char **out, size_t *outlen)
{
	json_t *h = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
	char *text = NULL;
	int rc = JWT_E_NOMEM;

	*out = NULL;
	if (h == NULL || (kid != NULL && (strlen(kid) > JWT_KID_MAX ||
	    json_object_set_new(h, "kid", json_string(kid)) < 0)))
		goto done;
	if ((text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto done;
	rc = jwt_encode_raw(alg, text, strlen(text), claims_json, strlen(claims_json), key,
	    key_len, out, outlen);
done:
	free(text);
	json_decref(h);
	return rc;
}
