/* hash.c — FNV-1a for names the operator chose, keyed SipHash for what clients send. */
#include <string.h>

#include <sodium.h>

#include "hash.h"

_Static_assert(HASH_KEY_LEN == crypto_shorthash_KEYBYTES, "HASH_KEY_LEN is SipHash's key");

uint32_t
hash_fnv1a32(uint32_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

uint64_t
hash_fnv1a64(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

uint32_t
hash_fnv1a32_str(const char *s)
{
	return hash_fnv1a32(HASH_FNV1A32_INIT, s, strlen(s));
}

int
hash_key_init(hash_key_t *key)
{
	if (sodium_init() < 0)
		return -1;
	crypto_shorthash_keygen(key->bytes);
	return 0;
}

void
hash_key_wipe(hash_key_t *key)
{
	sodium_memzero(key->bytes, sizeof(key->bytes));
}

uint64_t
hash_keyed(const hash_key_t *key, const void *p, size_t len)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	crypto_shorthash(h, p, len, key->bytes);
	for (size_t i = 0; i < sizeof(h); i++)
		v = v << 8 | h[i];
	return v;
}
