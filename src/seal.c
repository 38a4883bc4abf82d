/* seal.c — X25519 seal keys, key files, key ids, crypto_box_seal codec, keyring. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "defaults.h"
#include "seal.h"
#include "secmem.h"

/* A key file: 64 hex digits, a newline, maybe a little more whitespace. */
#define SEAL_KEY_FILE_MAX 256

struct seal_keyring {
	seal_key_t **keys;		/* keys[0] is current */
	size_t nkeys;
	char (*retired)[SEAL_KEY_ID_LEN + 1];
	size_t nretired;
};

void
seal_key_id(const uint8_t pk[SEAL_PK_LEN], char *out)
{
	uint8_t h[32];

	crypto_generichash(h, sizeof(h), pk, SEAL_PK_LEN, NULL, 0);
	util_hex_encode(h, SEAL_KEY_ID_LEN / 2, out);
}

static seal_key_t *
seal_key_alloc(int with_sk)
{
	seal_key_t *key = calloc(1, sizeof(*key));

	if (key == NULL)
		return NULL;
	if (with_sk && (key->sk = secmem_guarded_alloc(SEAL_SK_LEN)) == NULL) {
		free(key);
		return NULL;
	}
	return key;
}

void
seal_key_free(seal_key_t *key)
{
	if (key == NULL)
		return;
	secmem_guarded_free(key->sk);	/* zeroes */
	free(key);
}

seal_key_t *
seal_key_generate(void)
{
	seal_key_t *key = seal_key_alloc(1);

	if (key == NULL)
		return NULL;
	crypto_box_keypair(key->pk, key->sk);
	seal_key_id(key->pk, key->id);
	return key;
}

seal_key_t *
seal_key_from_seed(const uint8_t seed[32])
{
	seal_key_t *key = seal_key_alloc(1);

	if (key == NULL)
		return NULL;
	crypto_box_seed_keypair(key->pk, key->sk, seed);
	seal_key_id(key->pk, key->id);
	return key;
}

seal_key_t *
seal_key_from_pk(const uint8_t pk[SEAL_PK_LEN])
{
	seal_key_t *key = seal_key_alloc(0);

	if (key == NULL)
		return NULL;
	memcpy(key->pk, pk, SEAL_PK_LEN);
	seal_key_id(key->pk, key->id);
	return key;
}

static int
seal_path_join(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

static int
seal_keygen_check(const char *keyp, const char *pubp, int force, char *err, size_t errlen)
{
	if (force)
		return 0;
	if (access(keyp, F_OK) == 0 || access(pubp, F_OK) == 0) {
		snprintf(err, errlen, "%s: a seal key already exists (use --force to replace it)",
		    access(keyp, F_OK) == 0 ? keyp : pubp);
		return -1;
	}
	return 0;
}

static int
seal_keygen_write(const seal_key_t *key, const char *keyp, const char *pubp, char *err,
    size_t errlen)
{
	char pubhex[2 * SEAL_PK_LEN + 2];
	char *skhex;
	int rc;

	if ((skhex = secmem_guarded_alloc(2 * SEAL_SK_LEN + 2)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	util_hex_encode(key->sk, SEAL_SK_LEN, skhex);
	skhex[2 * SEAL_SK_LEN] = '\n';
	rc = util_write_file(keyp, skhex, 2 * SEAL_SK_LEN + 1, 0600, err, errlen);
	secmem_guarded_free(skhex);
	if (rc < 0)
		return -1;
	util_hex_encode(key->pk, SEAL_PK_LEN, pubhex);
	pubhex[2 * SEAL_PK_LEN] = '\n';
	return util_write_file(pubp, pubhex, 2 * SEAL_PK_LEN + 1, 0644, err, errlen);
}

seal_key_t *
seal_keygen_files(const char *dir, int force, char *err, size_t errlen)
{
	char keyp[4096], pubp[4096];
	struct stat st;
	seal_key_t *key;

	if (seal_path_join(keyp, sizeof(keyp), dir, SEAL_KEY_FILE) < 0 ||
	    seal_path_join(pubp, sizeof(pubp), dir, SEAL_PUB_FILE) < 0) {
		snprintf(err, errlen, "%s: path too long", dir);
		return NULL;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return NULL;
	}
	if (seal_keygen_check(keyp, pubp, force, err, errlen) < 0)
		return NULL;
	if ((key = seal_key_generate()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (seal_keygen_write(key, keyp, pubp, err, errlen) < 0) {
		seal_key_free(key);
		return NULL;
	}
	return key;
}

seal_key_t *
seal_key_load(const char *path, char *err, size_t errlen)
{
	seal_key_t *key = NULL;
	char *buf = NULL;
	size_t len;

	if (util_read_file(path, SEAL_KEY_FILE_MAX, 1, &buf, &len, err, errlen) < 0)
		return NULL;
	if ((key = seal_key_alloc(1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (util_hex_decode(buf, len, key->sk, SEAL_SK_LEN) < 0) {
		snprintf(err, errlen, "%s: not a seal private key (want %d hex digits)", path,
		    2 * SEAL_SK_LEN);
		seal_key_free(key);
		key = NULL;
		goto out;
	}
	crypto_scalarmult_base(key->pk, key->sk);
	seal_key_id(key->pk, key->id);
out:
	secmem_guarded_free(buf);
	return key;
}

seal_key_t *
seal_pub_load(const char *path, char *err, size_t errlen)
{
	uint8_t pk[SEAL_PK_LEN];
	seal_key_t *key;
	char *buf = NULL;
	size_t len;

	if (util_read_file(path, SEAL_KEY_FILE_MAX, 0, &buf, &len, err, errlen) < 0)
		return NULL;
	if (util_hex_decode(buf, len, pk, SEAL_PK_LEN) < 0) {
		snprintf(err, errlen, "%s: not a seal public key (want %d hex digits)", path,
		    2 * SEAL_PK_LEN);
		free(buf);
		return NULL;
	}
	free(buf);
	if ((key = seal_key_from_pk(pk)) == NULL)
		snprintf(err, errlen, "out of memory");
	return key;
}

uint8_t *
seal_box_bytes(const uint8_t pk[SEAL_PK_LEN], const void *msg, size_t len, size_t *outlen)
{
	uint8_t *ct;

	if (len > SIZE_MAX - crypto_box_SEALBYTES)
		return NULL;
	if ((ct = malloc(len + crypto_box_SEALBYTES)) == NULL)
		return NULL;
	if (crypto_box_seal(ct, msg, len, pk) != 0) {
		free(ct);
		return NULL;
	}
	*outlen = len + crypto_box_SEALBYTES;
	return ct;
}

char *
seal_box(const uint8_t pk[SEAL_PK_LEN], const void *msg, size_t len)
{
	size_t ctlen, b64len;
	uint8_t *ct;
	char *b64 = NULL;

	if ((ct = seal_box_bytes(pk, msg, len, &ctlen)) == NULL)
		return NULL;
	b64len = sodium_base64_encoded_len(ctlen, sodium_base64_VARIANT_ORIGINAL);
	if ((b64 = malloc(b64len)) != NULL)
		sodium_bin2base64(b64, b64len, ct, ctlen, sodium_base64_VARIANT_ORIGINAL);
	free(ct);
	return b64;
}

int
seal_open_bytes(const seal_key_t *key, const uint8_t *ct, size_t ctlen, char **plain,
    size_t *plainlen)
{
	size_t n;
	char *out;

	if (key->sk == NULL || ctlen < crypto_box_SEALBYTES)
		return ctlen < crypto_box_SEALBYTES ? SEAL_E_FORMAT : SEAL_E_DECRYPT;
	n = ctlen - crypto_box_SEALBYTES;
	if ((out = secmem_guarded_alloc(n + 1)) == NULL)
		return SEAL_E_NOMEM;
	if (crypto_box_seal_open((uint8_t *)out, ct, ctlen, key->pk, key->sk) != 0) {
		secmem_guarded_free(out);
		return SEAL_E_DECRYPT;
	}
	out[n] = '\0';
	*plain = out;
	*plainlen = n;
	return SEAL_OK;
}

/* Strict standard base64 (padded) of b64 without surrounding whitespace -> malloc'd. */
static int
seal_b64_decode(const char *b64, size_t len, uint8_t **out, size_t *outlen)
{
	const char *end;
	uint8_t *bin;
	size_t binlen, max;

	while (len > 0 && isspace((unsigned char)b64[0])) {
		b64++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)b64[len - 1]))
		len--;
	if (len == 0 || len > SG_TOKEN_MAX_LEN || len % 4 != 0)
		return SEAL_E_FORMAT;
	max = len / 4 * 3;
	if ((bin = malloc(max)) == NULL)
		return SEAL_E_NOMEM;
	if (sodium_base642bin(bin, max, b64, len, NULL, &binlen, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != b64 + len) {
		free(bin);
		return SEAL_E_FORMAT;
	}
	*out = bin;
	*outlen = binlen;
	return SEAL_OK;
}

int
seal_open(const seal_key_t *key, const char *b64, size_t len, char **plain, size_t *plainlen)
{
	uint8_t *ct;
	size_t ctlen;
	int rc;

	if ((rc = seal_b64_decode(b64, len, &ct, &ctlen)) != SEAL_OK)
		return rc;
	rc = seal_open_bytes(key, ct, ctlen, plain, plainlen);
	free(ct);
	return rc;
}

/* --- keyring ------------------------------------------------------------------------ */

seal_keyring_t *
seal_keyring_new(void)
{
	return calloc(1, sizeof(seal_keyring_t));
}

void
seal_keyring_free(seal_keyring_t *kr)
{
	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->nkeys; i++)
		seal_key_free(kr->keys[i]);
	free(kr->keys);
	free(kr->retired);
	free(kr);
}

int
seal_keyring_add(seal_keyring_t *kr, seal_key_t *key)
{
	seal_key_t **keys;

	if (key == NULL || key->sk == NULL) {
		seal_key_free(key);
		return -1;
	}
	keys = realloc(kr->keys, (kr->nkeys + 1) * sizeof(*keys));
	if (keys == NULL) {
		seal_key_free(key);
		return -1;
	}
	kr->keys = keys;
	kr->keys[kr->nkeys++] = key;
	return 0;
}

static int
seal_id_valid(const char *id, size_t idlen)
{
	if (idlen != SEAL_KEY_ID_LEN)
		return 0;
	for (size_t i = 0; i < idlen; i++)
		if (!isdigit((unsigned char)id[i]) && (id[i] < 'a' || id[i] > 'f'))
			return 0;
	return 1;
}

int
seal_keyring_retire_id(seal_keyring_t *kr, const char *id)
{
	char (*r)[SEAL_KEY_ID_LEN + 1];

	if (!seal_id_valid(id, strlen(id)))
		return -1;
	r = realloc(kr->retired, (kr->nretired + 1) * sizeof(*r));
	if (r == NULL)
		return -1;
	kr->retired = r;
	memcpy(kr->retired[kr->nretired], id, SEAL_KEY_ID_LEN + 1);
	kr->nretired++;
	return 0;
}

const seal_key_t *
seal_keyring_current(const seal_keyring_t *kr)
{
	if (kr->nkeys == 0 || seal_keyring_is_retired(kr, kr->keys[0]->id, SEAL_KEY_ID_LEN))
		return NULL;
	return kr->keys[0];
}

int
seal_keyring_is_retired(const seal_keyring_t *kr, const char *id, size_t idlen)
{
	if (idlen != SEAL_KEY_ID_LEN)
		return 0;
	for (size_t i = 0; i < kr->nretired; i++)
		if (memcmp(kr->retired[i], id, SEAL_KEY_ID_LEN) == 0)
			return 1;
	return 0;
}

const seal_key_t *
seal_keyring_find(const seal_keyring_t *kr, const char *id, size_t idlen)
{
	if (idlen != SEAL_KEY_ID_LEN || seal_keyring_is_retired(kr, id, idlen))
		return NULL;
	for (size_t i = 0; i < kr->nkeys; i++)
		if (memcmp(kr->keys[i]->id, id, SEAL_KEY_ID_LEN) == 0)
			return kr->keys[i];
	return NULL;
}

size_t
seal_keyring_count(const seal_keyring_t *kr)
{
	return kr->nkeys;
}

int
seal_keyring_open(const seal_keyring_t *kr, const char *b64, size_t len, char **plain,
    size_t *plainlen)
{
	uint8_t *ct;
	size_t ctlen;
	int rc;

	if ((rc = seal_b64_decode(b64, len, &ct, &ctlen)) != SEAL_OK)
		return rc;
	rc = SEAL_E_DECRYPT;
	for (size_t i = 0; i < kr->nkeys && rc == SEAL_E_DECRYPT; i++) {
		if (seal_keyring_is_retired(kr, kr->keys[i]->id, SEAL_KEY_ID_LEN))
			continue;
		rc = seal_open_bytes(kr->keys[i], ct, ctlen, plain, plainlen);
	}
	free(ct);
	return rc;
}

static int
seal_keyring_load_key(seal_keyring_t *kr, const char *path, char *err, size_t errlen)
{
	seal_key_t *key = seal_key_load(path, err, errlen);

	if (key == NULL)
		return -1;
	if (seal_keyring_add(kr, key) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

seal_keyring_t *
seal_keyring_load(const char *current, char *const *open_paths, size_t nopen,
    char *const *retired_ids, size_t nretired, char *err, size_t errlen)
{
	seal_keyring_t *kr = seal_keyring_new();

	if (kr == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (seal_keyring_load_key(kr, current, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < nopen; i++)
		if (seal_keyring_load_key(kr, open_paths[i], err, errlen) < 0)
			goto fail;
	for (size_t i = 0; i < nretired; i++) {
		if (seal_keyring_retire_id(kr, retired_ids[i]) < 0) {
			snprintf(err, errlen, "retired key id '%s': want %d lower-case hex digits",
			    retired_ids[i], SEAL_KEY_ID_LEN);
			goto fail;
		}
	}
	return kr;
fail:
	seal_keyring_free(kr);
	return NULL;
}
