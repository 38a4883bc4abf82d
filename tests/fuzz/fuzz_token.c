/*
 * fuzz_token.c — libFuzzer harness for the handle and token codecs: handle_open,
 * seal_keyring_open and handle_find over arbitrary bytes, with a fixed keyring
 * (current key from seed 0x01, an older open key from 0x02, a retired key from 0x03).
 * Invariants: a successful open yields complete claims; find stays in bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "handle.h"
#include "seal.h"
#include "secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static seal_keyring_t *fuzz_kr;

static seal_key_t *
fuzz_key(uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, sizeof(seed));
	return seal_key_from_seed(seed);
}

static void
fuzz_init(void)
{
	seal_key_t *retired;

	if (sodium_init() < 0)
		abort();
	fuzz_kr = seal_keyring_new();
	retired = fuzz_key(3);
	if (fuzz_kr == NULL || seal_keyring_add(fuzz_kr, fuzz_key(1)) < 0 ||
	    seal_keyring_add(fuzz_kr, fuzz_key(2)) < 0 ||
	    seal_keyring_retire_id(fuzz_kr, retired->id) < 0 ||
	    seal_keyring_add(fuzz_kr, retired) < 0)
		abort();
}

static void
fuzz_check_list(const policy_strlist_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == NULL || l->v[i][0] == '\0')
			abort();
}

static void
fuzz_handle(const uint8_t *data, size_t size)
{
	handle_claims_t c;
	int rc = handle_open(fuzz_kr, (const char *)data, size, &c);

	if (rc != HANDLE_OK) {
		if (c.cred != NULL || c.sb != NULL || rc >= 0 || handle_error_code(rc) == NULL)
			abort();
		return;
	}
	if (c.cred == NULL || c.sb == NULL || c.exp < 0 || c.iat < 0 || c.exp < c.iat ||
	    strlen(c.hid) != HANDLE_HID_LEN || strlen(c.key_id) != SEAL_KEY_ID_LEN)
		abort();
	fuzz_check_list(&c.hosts);
	fuzz_check_list(&c.methods);
	fuzz_check_list(&c.paths);
	(void)handle_check_time(&c, 1700000000, 30);
	handle_claims_free(&c);
}

static void
fuzz_token(const uint8_t *data, size_t size)
{
	char *plain = NULL;
	size_t plainlen = 0;
	int rc = seal_keyring_open(fuzz_kr, (const char *)data, size, &plain, &plainlen);

	if (rc == SEAL_OK) {
		if (plain == NULL || plain[plainlen] != '\0' || plainlen + SEAL_OVERHEAD > size)
			abort();
		secmem_guarded_free(plain);
	} else if (plain != NULL)
		abort();
}

static void
fuzz_find(const uint8_t *data, size_t size)
{
	size_t off = 0, hlen, prev = 0;

	while (handle_find(data, size, &off, &hlen) == 0) {
		if (off < prev || hlen < HANDLE_PREFIX_LEN || off + hlen > size ||
		    memcmp(data + off, HANDLE_PREFIX, HANDLE_PREFIX_LEN) != 0)
			abort();
		off += hlen;
		prev = off;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_kr == NULL)
		fuzz_init();
	fuzz_handle(data, size);
	fuzz_token(data, size);
	fuzz_find(data, size);
	return 0;
}
