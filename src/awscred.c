/*
 * awscred.c — derived AWS credentials for a handle: the access key id (BLAKE2b, base32),
 * the secret access key (HKDF-SHA256 under the seal key, base64), the expiration text.
 */
#include <string.h>

#include <sodium.h>

#include "awscred.h"

#define AWSCRED_AKID_HASH_BYTES	10	/* 80 bits: 16 base32 characters */
#define AWSCRED_SECRET_BYTES	30	/* 240 bits: 40 base64 characters */
#define AWSCRED_SHA256_BYTES	crypto_auth_hmacsha256_BYTES
/* The last second awscred_expiration renders: 9999-12-31T23:59:59Z. */
#define AWSCRED_MAX_UNIX_S	253402300799LL

_Static_assert(sizeof(AWSCRED_AKID_KEY) - 1 >= crypto_generichash_KEYBYTES_MIN &&
    sizeof(AWSCRED_AKID_KEY) - 1 <= crypto_generichash_KEYBYTES_MAX,
    "the akid key is a valid BLAKE2b key as it is");

int
awscred_hkdf_sha256(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
    const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
{
	static const uint8_t zeros[AWSCRED_SHA256_BYTES];
	uint8_t prk[AWSCRED_SHA256_BYTES], t[AWSCRED_SHA256_BYTES], ctr = 1;
	crypto_auth_hmacsha256_state st;
	size_t done = 0, n;

	if (outlen == 0 || outlen > AWSCRED_HKDF_MAX)
		return -1;
	/* extract: PRK = HMAC(salt, IKM); an empty salt is HashLen zeros (RFC 5869), which
	 * HMAC pads to the same key as an empty one; libsodium's init takes no NULL key */
	if (saltlen == 0) {
		salt = zeros;
		saltlen = sizeof(zeros);
	}
	crypto_auth_hmacsha256_init(&st, salt, saltlen);
	crypto_auth_hmacsha256_update(&st, ikm, ikmlen);
	crypto_auth_hmacsha256_final(&st, prk);
	/* expand: T(i) = HMAC(PRK, T(i-1) || info || i) */
	for (; done < outlen; ctr++) {
		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		if (done > 0)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		crypto_auth_hmacsha256_update(&st, info, infolen);
		crypto_auth_hmacsha256_update(&st, &ctr, 1);
		crypto_auth_hmacsha256_final(&st, t);
		n = outlen - done < sizeof(t) ? outlen - done : sizeof(t);
		memcpy(out + done, t, n);
		done += n;
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
	sodium_memzero(&st, sizeof(st));
	return 0;
}

/* RFC 4648 base32 of 5-byte groups (no padding): 8 characters per group. */
static void
awscred_base32(const uint8_t *in, size_t len, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

	for (size_t i = 0; i + 5 <= len; i += 5) {
		uint64_t v = 0;

		for (size_t j = 0; j < 5; j++)
			v = v << 8 | in[i + j];
		for (int k = 7; k >= 0; k--, v >>= 5)
			out[i / 5 * 8 + (size_t)k] = alphabet[v & 31];
	}
}

void
awscred_access_key_id(const char *handle, size_t len, char out[AWSCRED_AKID_LEN + 1])
{
	uint8_t h[crypto_generichash_BYTES];
	size_t plen = strlen(AWSCRED_AKID_PREFIX);

	_Static_assert(AWSCRED_AKID_LEN == sizeof(AWSCRED_AKID_PREFIX) - 1 +
	    AWSCRED_AKID_HASH_BYTES / 5 * 8, "AccessKeyId length");
	crypto_generichash(h, sizeof(h), (const uint8_t *)handle, len,
	    (const uint8_t *)AWSCRED_AKID_KEY, strlen(AWSCRED_AKID_KEY));
	memcpy(out, AWSCRED_AKID_PREFIX, plen);
	awscred_base32(h, AWSCRED_AKID_HASH_BYTES, out + plen);
	out[AWSCRED_AKID_LEN] = '\0';
}

int
awscred_secret(const seal_key_t *key, const char *handle, size_t len,
    char out[AWSCRED_SECRET_LEN + 1])
{
	uint8_t okm[AWSCRED_SECRET_BYTES];

	_Static_assert(AWSCRED_SECRET_LEN + 1 == sodium_base64_ENCODED_LEN(AWSCRED_SECRET_BYTES,
	    sodium_base64_VARIANT_ORIGINAL), "SecretAccessKey length");
	memset(out, 0, AWSCRED_SECRET_LEN + 1);
	if (key->sk == NULL || awscred_hkdf_sha256((const uint8_t *)AWSCRED_SECRET_SALT,
	    strlen(AWSCRED_SECRET_SALT), key->sk, SEAL_SK_LEN, (const uint8_t *)handle, len,
	    okm, sizeof(okm)) < 0)
		return -1;
	sodium_bin2base64(out, AWSCRED_SECRET_LEN + 1, okm, sizeof(okm),
	    sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(okm, sizeof(okm));
	return 0;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days). */
static void
awscred_civil(int64_t days, int *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468, era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yoe + era * 400) + (*m <= 2);
}

/* v as width decimal digits (zero-padded) at p, then sep; the next position. */
static char *
awscred_digits(char *p, unsigned v, int width, char sep)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	p[width] = sep;
	return p + width + 1;
}

int
awscred_expiration(int64_t unix_s, char out[AWSCRED_EXPIRATION_LEN + 1])
{
	unsigned m, d, sec;
	char *p = out;
	int y;

	out[0] = '\0';
	if (unix_s < 0 || unix_s > AWSCRED_MAX_UNIX_S)
		return -1;
	awscred_civil(unix_s / 86400, &y, &m, &d);
	sec = (unsigned)(unix_s % 86400);
	p = awscred_digits(p, (unsigned)y, 4, '-');
	p = awscred_digits(p, m, 2, '-');
	p = awscred_digits(p, d, 2, 'T');
	p = awscred_digits(p, sec / 3600, 2, ':');
	p = awscred_digits(p, sec / 60 % 60, 2, ':');
	p = awscred_digits(p, sec % 60, 2, 'Z');
	*p = '\0';
	return 0;
}
