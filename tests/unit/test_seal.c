/* test_seal.c — key files, key ids, crypto_box_seal codec, keyring rotation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "defaults.h"
#include "seal.h"
#include "secmem.h"

struct fixture {
	char dir[64];
	char keyp[128], pubp[128];
};

static int
setup_dir(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/sg-seal-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->keyp, sizeof(f->keyp), "%s/seal.key", f->dir);
	snprintf(f->pubp, sizeof(f->pubp), "%s/seal.pub", f->dir);
	*state = f;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct fixture *f = *state;

	unlink(f->keyp);
	unlink(f->pubp);
	rmdir(f->dir);
	free(f);
	return 0;
}

static seal_key_t *
key_seeded(uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, sizeof(seed));
	return seal_key_from_seed(seed);
}

static void
test_keygen_files(void **state)
{
	struct fixture *f = *state;
	char err[256], *buf = NULL, hex[65];
	seal_key_t *k, *k2, *pub;
	struct stat st;
	size_t len;

	k = seal_keygen_files(f->dir, 0, err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(strlen(k->id), SEAL_KEY_ID_LEN);
	assert_int_equal(stat(f->keyp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->pubp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* exact tokenizer format: 64 lower-case hex + "\n" */
	assert_int_equal(util_read_file(f->pubp, 1000, 0, &buf, &len, err, sizeof(err)), 0);
	util_hex_encode(k->pk, 32, hex);
	assert_int_equal(len, 65);
	assert_memory_equal(buf, hex, 64);
	assert_int_equal(buf[64], '\n');
	free(buf);

	k2 = seal_key_load(f->keyp, err, sizeof(err));
	assert_non_null(k2);
	assert_memory_equal(k->pk, k2->pk, 32);
	assert_memory_equal(k->sk, k2->sk, 32);
	assert_string_equal(k->id, k2->id);
	pub = seal_pub_load(f->pubp, err, sizeof(err));
	assert_non_null(pub);
	assert_null(pub->sk);
	assert_string_equal(pub->id, k->id);
	seal_key_free(pub);
	seal_key_free(k2);

	/* no overwrite without force */
	assert_null(seal_keygen_files(f->dir, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "--force"));
	k2 = seal_keygen_files(f->dir, 1, err, sizeof(err));
	assert_non_null(k2);
	assert_memory_not_equal(k->pk, k2->pk, 32);
	seal_key_free(k2);
	seal_key_free(k);
}

static void
test_key_id(void **state)
{
	uint8_t h[32];
	char want[9], id[9];
	seal_key_t *k = key_seeded(7);

	(void)state;
	crypto_generichash(h, 32, k->pk, 32, NULL, 0);
	util_hex_encode(h, 4, want);
	seal_key_id(k->pk, id);
	assert_string_equal(id, want);
	assert_string_equal(k->id, want);
	seal_key_free(k);
}

static void
test_key_mode_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];
	seal_key_t *k = seal_keygen_files(f->dir, 0, err, sizeof(err));

	assert_non_null(k);
	seal_key_free(k);
	assert_int_equal(chmod(f->keyp, 0644), 0);
	assert_null(seal_key_load(f->keyp, err, sizeof(err)));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(f->keyp, 0640), 0);
	assert_null(seal_key_load(f->keyp, err, sizeof(err)));
}

static void
test_key_file_garbage(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(util_write_file(f->keyp, "abcd\n", 5, 0600, err, sizeof(err)), 0);
	assert_null(seal_key_load(f->keyp, err, sizeof(err)));
	assert_non_null(strstr(err, "hex"));
	assert_int_equal(util_write_file(f->pubp, "zz", 2, 0644, err, sizeof(err)), 0);
	assert_null(seal_pub_load(f->pubp, err, sizeof(err)));
	assert_null(seal_key_load("/nonexistent/seal.key", err, sizeof(err)));
}

static void
test_seal_roundtrip(void **state)
{
	static const char msg[] = "{\"inject_processor\":{\"token\":\"s3cr3t\"}}";
	seal_key_t *k = key_seeded(1);
	char *tok, *plain = NULL, padded[1024];
	size_t plainlen;

	(void)state;
	tok = seal_box(k->pk, msg, strlen(msg));
	assert_non_null(tok);
	assert_int_equal(strlen(tok) % 4, 0);
	assert_null(strchr(tok, '-'));
	assert_int_equal(seal_open(k, tok, strlen(tok), &plain, &plainlen), SEAL_OK);
	assert_int_equal(plainlen, strlen(msg));
	assert_string_equal(plain, msg);
	secmem_guarded_free(plain);
	/* surrounding whitespace is tolerated */
	snprintf(padded, sizeof(padded), "  %s\r\n", tok);
	assert_int_equal(seal_open(k, padded, strlen(padded), &plain, &plainlen), SEAL_OK);
	secmem_guarded_free(plain);
	free(tok);
	seal_key_free(k);
}

static void
test_seal_tampered(void **state)
{
	seal_key_t *k = key_seeded(1);
	char *tok, *plain = NULL;
	size_t plainlen, len;

	(void)state;
	tok = seal_box(k->pk, "{}", 2);
	len = strlen(tok);
	tok[10] = tok[10] == 'A' ? 'B' : 'A';
	assert_int_equal(seal_open(k, tok, len, &plain, &plainlen), SEAL_E_DECRYPT);
	assert_null(plain);
	free(tok);
	seal_key_free(k);
}

static void
test_seal_truncated_and_bad_base64(void **state)
{
	seal_key_t *k = key_seeded(1);
	char *tok, *plain = NULL, buf[256];
	size_t plainlen, len;

	(void)state;
	tok = seal_box(k->pk, "{\"a\":1}", 7);
	len = strlen(tok);
	/* cut by 4 characters: still base64, fails the MAC */
	assert_int_equal(seal_open(k, tok, len - 4, &plain, &plainlen), SEAL_E_DECRYPT);
	/* cut by 1: not base64 any more */
	assert_int_equal(seal_open(k, tok, len - 1, &plain, &plainlen), SEAL_E_FORMAT);
	/* shorter than the seal overhead */
	assert_int_equal(seal_open(k, "AAAA", 4, &plain, &plainlen), SEAL_E_FORMAT);
	assert_int_equal(seal_open(k, "", 0, &plain, &plainlen), SEAL_E_FORMAT);
	assert_int_equal(seal_open(k, "   ", 3, &plain, &plainlen), SEAL_E_FORMAT);
	/* url-safe alphabet and inner whitespace are not standard base64 */
	snprintf(buf, sizeof(buf), "%s", tok);
	buf[8] = '-';
	assert_int_equal(seal_open(k, buf, len, &plain, &plainlen), SEAL_E_FORMAT);
	snprintf(buf, sizeof(buf), "%s", tok);
	buf[8] = ' ';
	assert_int_equal(seal_open(k, buf, len, &plain, &plainlen), SEAL_E_FORMAT);
	assert_null(plain);
	free(tok);
	seal_key_free(k);
}

static void
test_seal_too_long(void **state)
{
	seal_key_t *k = key_seeded(1);
	size_t n = SG_TOKEN_MAX_LEN + 4;
	char *big = malloc(n), *plain = NULL;
	size_t plainlen;

	(void)state;
	memset(big, 'A', n);
	assert_int_equal(seal_open(k, big, n, &plain, &plainlen), SEAL_E_FORMAT);
	free(big);
	seal_key_free(k);
}

static void
test_seal_wrong_key(void **state)
{
	seal_key_t *k1 = key_seeded(1), *k2 = key_seeded(2), *pub;
	char *tok, *plain = NULL;
	size_t plainlen;

	(void)state;
	assert_string_not_equal(k1->id, k2->id);
	tok = seal_box(k1->pk, "{}", 2);
	assert_int_equal(seal_open(k2, tok, strlen(tok), &plain, &plainlen), SEAL_E_DECRYPT);
	/* a public-only key opens nothing */
	pub = seal_key_from_pk(k1->pk);
	assert_int_equal(seal_open(pub, tok, strlen(tok), &plain, &plainlen), SEAL_E_DECRYPT);
	assert_null(plain);
	seal_key_free(pub);
	free(tok);
	seal_key_free(k1);
	seal_key_free(k2);
}

static void
test_keyring_rotation(void **state)
{
	seal_keyring_t *kr = seal_keyring_new();
	seal_key_t *old = key_seeded(1), *cur = key_seeded(2), *gone = key_seeded(3);
	char oldid[9], curid[9], goneid[9], *tok_old, *tok_gone, *plain = NULL;
	uint8_t zpk[32] = {1};
	size_t plainlen;

	(void)state;
	strcpy(oldid, old->id);
	strcpy(curid, cur->id);
	strcpy(goneid, gone->id);
	tok_old = seal_box(old->pk, "{\"o\":1}", 7);
	tok_gone = seal_box(gone->pk, "{\"g\":1}", 7);
	assert_int_equal(seal_keyring_add(kr, cur), 0);
	assert_int_equal(seal_keyring_add(kr, old), 0);
	assert_int_equal(seal_keyring_add(kr, gone), 0);
	assert_int_equal(seal_keyring_retire_id(kr, goneid), 0);
	assert_int_equal(seal_keyring_count(kr), 3);
	assert_string_equal(seal_keyring_current(kr)->id, curid);

	assert_non_null(seal_keyring_find(kr, oldid, 8));
	assert_null(seal_keyring_find(kr, goneid, 8));
	assert_true(seal_keyring_is_retired(kr, goneid, 8));
	assert_false(seal_keyring_is_retired(kr, oldid, 8));
	assert_null(seal_keyring_find(kr, "00000000", 8));
	assert_null(seal_keyring_find(kr, oldid, 7));

	/* a tokenizer token under the older open key still opens */
	assert_int_equal(seal_keyring_open(kr, tok_old, strlen(tok_old), &plain, &plainlen), 0);
	assert_string_equal(plain, "{\"o\":1}");
	secmem_guarded_free(plain);
	plain = NULL;
	/* under the retired key it does not */
	assert_int_equal(seal_keyring_open(kr, tok_gone, strlen(tok_gone), &plain, &plainlen),
	    SEAL_E_DECRYPT);
	assert_null(plain);

	assert_int_equal(seal_keyring_retire_id(kr, "XYZ"), -1);
	assert_int_equal(seal_keyring_retire_id(kr, "ABCDEF01"), -1);
	/* a public-only key cannot join */
	assert_int_equal(seal_keyring_add(kr, seal_key_from_pk(zpk)), -1);
	free(tok_old);
	free(tok_gone);
	seal_keyring_free(kr);
}

static void
test_keyring_load(void **state)
{
	struct fixture *f = *state;
	char err[256], *retired[1], oldp[160], id[9];
	char *opens[1];
	seal_keyring_t *kr;
	seal_key_t *k;

	k = seal_keygen_files(f->dir, 0, err, sizeof(err));
	assert_non_null(k);
	snprintf(oldp, sizeof(oldp), "%s/old.key", f->dir);
	assert_int_equal(rename(f->keyp, oldp), 0);
	strcpy(id, k->id);
	seal_key_free(k);
	k = seal_keygen_files(f->dir, 1, err, sizeof(err));
	assert_non_null(k);

	opens[0] = oldp;
	retired[0] = id;
	kr = seal_keyring_load(f->keyp, opens, 1, NULL, 0, err, sizeof(err));
	assert_non_null(kr);
	assert_int_equal(seal_keyring_count(kr), 2);
	assert_string_equal(seal_keyring_current(kr)->id, k->id);
	assert_non_null(seal_keyring_find(kr, id, 8));
	seal_keyring_free(kr);

	kr = seal_keyring_load(f->keyp, opens, 1, retired, 1, err, sizeof(err));
	assert_non_null(kr);
	assert_null(seal_keyring_find(kr, id, 8));
	seal_keyring_free(kr);

	retired[0] = "nothex!!";
	assert_null(seal_keyring_load(f->keyp, NULL, 0, retired, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "retired"));
	opens[0] = "/nonexistent.key";
	assert_null(seal_keyring_load(f->keyp, opens, 1, NULL, 0, err, sizeof(err)));
	unlink(oldp);
	seal_key_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keygen_files, setup_dir, teardown_dir),
		cmocka_unit_test(test_key_id),
		cmocka_unit_test_setup_teardown(test_key_mode_refused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_key_file_garbage, setup_dir, teardown_dir),
		cmocka_unit_test(test_seal_roundtrip),
		cmocka_unit_test(test_seal_tampered),
		cmocka_unit_test(test_seal_truncated_and_bad_base64),
		cmocka_unit_test(test_seal_too_long),
		cmocka_unit_test(test_seal_wrong_key),
		cmocka_unit_test(test_keyring_rotation),
		cmocka_unit_test_setup_teardown(test_keyring_load, setup_dir, teardown_dir),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
