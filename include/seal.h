/*
 * seal.h — X25519 seal keys, key files, key ids, the crypto_box_seal codec and the
 * keyring used for rotation. Pure core: no sockets, no clocks.
 *
 * Wire compatibility with Fly.io's tokenizer:
 *   seal.key  lower-case hex of the 32-byte X25519 private key + "\n" (tokenizer OPEN_KEY)
 *   seal.pub  lower-case hex of the public key + "\n"                 (tokenizer SEAL_KEY)
 *   token     standard base64 (padded) of crypto_box_seal(JSON)
 * Key id: hex of the first 4 bytes of crypto_generichash (32-byte output) of the public key.
 *
 * Ownership: every seal_key_t returned here is new and freed with seal_key_free (which
 * zeroes the private key). A keyring owns the keys added to it. Plaintext returned by the
 * open functions lives in guarded memory: free it with secmem_guarded_free.
 * A keyring is immutable once built and may then be read by many threads.
 */
#ifndef SEALGATE_SEAL_H
#define SEALGATE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SEAL_PK_LEN       32	/* crypto_box_PUBLICKEYBYTES */
#define SEAL_SK_LEN       32	/* crypto_box_SECRETKEYBYTES */
#define SEAL_OVERHEAD     48	/* crypto_box_SEALBYTES: ephemeral pk + MAC */
#define SEAL_KEY_ID_LEN   8	/* hex chars */
#define SEAL_KEY_FILE     "seal.key"
#define SEAL_PUB_FILE     "seal.pub"

/* Results of the open functions. */
enum seal_err {
	SEAL_OK = 0,
	SEAL_E_FORMAT = -1,	/* not strict base64 / too short / too long */
	SEAL_E_DECRYPT = -2,	/* not sealed to this key, or tampered */
	SEAL_E_NOMEM = -3,
};

typedef struct seal_key {
	uint8_t pk[SEAL_PK_LEN];
	uint8_t *sk;			/* guarded memory (secmem.h); NULL for a public-only key */
	char id[SEAL_KEY_ID_LEN + 1];	/* NUL-terminated */
} seal_key_t;

/* Key id of a public key into out (SEAL_KEY_ID_LEN + 1 bytes). */
void seal_key_id(const uint8_t pk[SEAL_PK_LEN], char *out) SG_NONNULL;

/* A fresh random key pair, or one derived from a 32-byte seed (tests, fuzzing). */
seal_key_t *seal_key_generate(void) SG_WUR;
seal_key_t *seal_key_from_seed(const uint8_t seed[32]) SG_NONNULL SG_WUR;
/* A public-only key (sk NULL) from 32 bytes. */
seal_key_t *seal_key_from_pk(const uint8_t pk[SEAL_PK_LEN]) SG_NONNULL SG_WUR;
void seal_key_free(seal_key_t *key);

/*
 * Create DIR/seal.key (0600) and DIR/seal.pub (0644). Refuses to replace an existing
 * seal.key or seal.pub unless force is set. Returns the new key, or NULL with err set.
 */
seal_key_t *seal_keygen_files(const char *dir, int force, char *err, size_t errlen)
	SG_WUR;
/* Load a private key file (hex; refused when group/others may read it). */
seal_key_t *seal_key_load(const char *path, char *err, size_t errlen) SG_WUR;
/* Load a public key file (hex); the result is public-only. */
seal_key_t *seal_pub_load(const char *path, char *err, size_t errlen) SG_WUR;

/* crypto_box_seal of msg to pk: malloc'd ciphertext of len + SEAL_OVERHEAD bytes. */
uint8_t *seal_box_bytes(const uint8_t pk[SEAL_PK_LEN], const void *msg, size_t len,
    size_t *outlen) SG_WUR;
/* The same as a malloc'd, NUL-terminated standard base64 string (a tokenizer token). */
char *seal_box(const uint8_t pk[SEAL_PK_LEN], const void *msg, size_t len) SG_WUR;

/*
 * Open raw ciphertext with a private key. On SEAL_OK *plain is guarded memory holding
 * *plainlen bytes plus a NUL; free it with secmem_guarded_free.
 */
int seal_open_bytes(const seal_key_t *key, const uint8_t *ct, size_t ctlen,
    char **plain, size_t *plainlen) SG_WUR;
/*
 * Open a standard base64 token (surrounding whitespace ignored, strict otherwise, at
 * most SG_TOKEN_MAX_LEN characters). Same result convention as seal_open_bytes.
 */
int seal_open(const seal_key_t *key, const char *b64, size_t len, char **plain,
    size_t *plainlen) SG_WUR;

/* --- keyring: the current key, older keys still accepted, retired key ids ---------- */
typedef struct seal_keyring seal_keyring_t;

seal_keyring_t *seal_keyring_new(void) SG_WUR;
void seal_keyring_free(seal_keyring_t *kr);
/* Add a private key; the keyring takes it over (also on failure). The first is current. */
int seal_keyring_add(seal_keyring_t *kr, seal_key_t *key) SG_WUR;
/* Refuse handles under this key id (8 hex chars) even when its key is loaded. */
int seal_keyring_retire_id(seal_keyring_t *kr, const char *id) SG_WUR;
/* The key new handles are minted with (NULL when empty). Owned by the keyring. */
const seal_key_t *seal_keyring_current(const seal_keyring_t *kr);
/* Open key with this id (idlen chars), or NULL. Retired ids return NULL. */
const seal_key_t *seal_keyring_find(const seal_keyring_t *kr, const char *id, size_t idlen);
/* 1 when the id has been retired. */
int seal_keyring_is_retired(const seal_keyring_t *kr, const char *id, size_t idlen);
size_t seal_keyring_count(const seal_keyring_t *kr);
/*
 * Open a tokenizer token (which names no key) with each key that is not retired, current
 * first. Same result convention as seal_open.
 */
int seal_keyring_open(const seal_keyring_t *kr, const char *b64, size_t len, char **plain,
    size_t *plainlen) SG_WUR;
/*
 * Build a keyring from files: the current private key, older private keys still accepted
 * (nopen paths) and retired ids (nretired). NULL with err set on any failure.
 */
seal_keyring_t *seal_keyring_load(const char *current, char *const *open_paths,
    size_t nopen, char *const *retired_ids, size_t nretired, char *err, size_t errlen)
	SG_WUR;

#endif
