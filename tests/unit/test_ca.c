/* test_ca.c — ca_create files and certificate properties, ca_load checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "ca.h"
#include "defaults.h"
#include "secmem.h"

struct fixture {
	char dir[64], other[64];
	char key[128], crt[128], okey[128], ocrt[128];
};

static int
setup_dirs(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/sg-ca-XXXXXX");
	strcpy(f->other, "/tmp/sg-ca2-XXXXXX");
	if (mkdtemp(f->dir) == NULL || mkdtemp(f->other) == NULL)
		return -1;
	snprintf(f->key, sizeof(f->key), "%s/ca.key", f->dir);
	snprintf(f->crt, sizeof(f->crt), "%s/ca.crt", f->dir);
	snprintf(f->okey, sizeof(f->okey), "%s/ca.key", f->other);
	snprintf(f->ocrt, sizeof(f->ocrt), "%s/ca.crt", f->other);
	*state = f;
	return 0;
}

static int
teardown_dirs(void **state)
{
	struct fixture *f = *state;

	unlink(f->key);
	unlink(f->crt);
	unlink(f->okey);
	unlink(f->ocrt);
	rmdir(f->dir);
	rmdir(f->other);
	free(f);
	return 0;
}

static char *
read_text(const char *path)
{
	char err[256], *buf = NULL;

	assert_int_equal(util_read_file(path, 1 << 16, 0, &buf, NULL, err, sizeof(err)), 0);
	return buf;
}

static void
test_create_files(void **state)
{
	struct fixture *f = *state;
	char err[256], *before, *after;
	struct stat st;

	assert_int_equal(ca_create(f->dir, 0, err, sizeof(err)), 0);
	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->crt, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	before = read_text(f->crt);
	assert_non_null(strstr(before, "-----BEGIN CERTIFICATE-----"));
	assert_int_equal(chmod(f->key, 0600), 0);

	/* refuse to overwrite, leave the files alone */
	assert_int_equal(ca_create(f->dir, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--force"));
	after = read_text(f->crt);
	assert_string_equal(before, after);
	free(after);
	/* refused also when only the certificate is there */
	unlink(f->key);
	assert_int_equal(ca_create(f->dir, 0, err, sizeof(err)), -1);

	assert_int_equal(ca_create(f->dir, 1, err, sizeof(err)), 0);
	after = read_text(f->crt);
	assert_string_not_equal(before, after);
	free(after);
	free(before);
	assert_int_equal(ca_create("/nonexistent-dir", 0, err, sizeof(err)), -1);
}

static void
test_key_is_pkcs8_p256(void **state)
{
	struct fixture *f = *state;
	char err[256], *pem;
	EVP_PKEY *key;
	X509 *x;
	char group[64];
	size_t glen;

	assert_int_equal(ca_create(f->dir, 0, err, sizeof(err)), 0);
	assert_int_equal(util_read_file(f->key, 1 << 16, 1, &pem, NULL, err, sizeof(err)), 0);
	assert_non_null(strstr(pem, "-----BEGIN " "PRIVATE KEY-----"));	/* split: not a key */
	secmem_guarded_free(pem);
	assert_int_equal(ca_load(f->crt, f->key, &x, &key, err, sizeof(err)), 0);
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof(group), &glen), 1);
	assert_string_equal(group, "prime256v1");
	X509_free(x);
	EVP_PKEY_free(key);
}

static void
test_cert_properties(void **state)
{
	struct fixture *f = *state;
	char err[256], cn[256], o[64], host[256];
	const ASN1_INTEGER *serial;
	BASIC_CONSTRAINTS *bc;
	EVP_PKEY *key;
	BIGNUM *bn;
	X509 *x;
	int day, sec;
	time_t now = time(NULL);

	assert_int_equal(ca_create(f->dir, 0, err, sizeof(err)), 0);
	assert_int_equal(ca_load(f->crt, f->key, &x, &key, err, sizeof(err)), 0);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(X509_check_ca(x), 1);
	assert_int_equal(X509_check_private_key(x, key), 1);
	assert_int_equal(X509_verify(x, key), 1);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);

	bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	assert_non_null(bc->pathlen);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x,
	    X509_get_ext_by_NID(x, NID_basic_constraints, -1))), 1);
	assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x,
	    X509_get_ext_by_NID(x, NID_key_usage, -1))), 1);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_non_null(X509_get0_authority_key_id(x));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(x),
	    X509_get0_authority_key_id(x)), 0);

	/* validity: from about an hour ago, for SG_CA_VALID_DAYS */
	assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x),
	    X509_get0_notAfter(x)), 1);
	assert_int_equal(day, SG_CA_VALID_DAYS);
	assert_int_equal(sec, SG_LEAF_BACKDATE_S);
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &now), -1);
	now -= SG_LEAF_BACKDATE_S + 60;
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &now), 1);

	/* 128-bit-ish positive random serial */
	serial = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) >= 120 && BN_num_bits(bn) <= 128);
	BN_free(bn);

	/* subject O=sealgate, CN=sealgate CA <host> <8 hex>; self-issued */
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, o, sizeof(o));
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	assert_string_equal(o, "sealgate");
	assert_int_equal(strncmp(cn, "sealgate CA ", 12), 0);
	gethostname(host, sizeof(host));
	host[strcspn(host, ".")] = '\0';
	assert_int_equal(strncmp(cn + 12, host, strlen(host)), 0);
	assert_int_equal(strlen(cn), 12 + strlen(host) + 1 + 8);
	assert_int_equal(strspn(cn + strlen(cn) - 8, "0123456789abcdef"), 8);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void
test_load_rejects(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char err[256];

	assert_int_equal(ca_create(f->dir, 0, err, sizeof(err)), 0);
	assert_int_equal(ca_create(f->other, 0, err, sizeof(err)), 0);
	/* key readable by others */
	assert_int_equal(chmod(f->key, 0644), 0);
	assert_int_equal(ca_load(f->crt, f->key, &x, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(f->key, 0600), 0);
	/* key of another CA */
	assert_int_equal(ca_load(f->crt, f->okey, &x, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not match"));
	/* not PEM */
	assert_int_equal(ca_load(f->key, f->key, &x, &key, err, sizeof(err)), -1);
	assert_int_equal(ca_load(f->crt, f->crt, &x, &key, err, sizeof(err)), -1);
	assert_int_equal(ca_load("/nonexistent.crt", f->key, &x, &key, err, sizeof(err)), -1);
	assert_null(x);
	assert_null(key);
}

static void
test_load_rejects_non_ca(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *key = NULL, *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new(), *out = NULL;
	char err[256];
	FILE *fp;

	/* a self-signed end-entity certificate with a matching 0600 key */
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"leaf", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	fp = fopen(f->crt, "w");
	PEM_write_X509(fp, x);
	fclose(fp);
	fp = fopen(f->key, "w");
	PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	assert_int_equal(chmod(f->key, 0600), 0);
	assert_int_equal(ca_load(f->crt, f->key, &out, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a CA"));
	X509_free(x);
	EVP_PKEY_free(k);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_dirs, teardown_dirs)
	const struct CMUnitTest tests[] = {
		T(test_create_files),
		T(test_key_is_pkcs8_p256),
		T(test_cert_properties),
		T(test_load_rejects),
		T(test_load_rejects_non_ca),
	};
#undef T

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
