/* test_certforge.c — leaf minting: chain, names, validity, extensions, shared key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "certforge.h"
#include "defaults.h"

struct fx {
	EVP_PKEY *ca_key;
	X509 *ca;
	certforge_t *cf;
	int64_t now;
};

static void
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A self-signed ECDSA P-256 CA valid from a day ago for days days; ca_ext 0 makes a leaf. */
static X509 *
make_ca(EVP_PKEY **keyp, const char *cn, int64_t now, long days, int ca_ext)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();

	assert_non_null(key);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - 86400)));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now + days * 86400)));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, NID_basic_constraints, ca_ext ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, NID_key_usage, ca_ext ? "critical,keyCertSign,cRLSign" :
	    "critical,digitalSignature");
	add_ext(x, NID_subject_key_identifier, "hash");
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	*keyp = key;
	return x;
}

static int
setup(void **state)
{
	static struct fx fx;
	char err[256];

	fx.now = (int64_t)time(NULL);
	fx.ca = make_ca(&fx.ca_key, "sealgate test CA", fx.now, 3650, 1);
	fx.cf = certforge_new(fx.ca, fx.ca_key, err, sizeof(err));
	if (fx.cf == NULL)
		return -1;
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	certforge_free(fx->cf);
	X509_free(fx->ca);
	EVP_PKEY_free(fx->ca_key);
	return 0;
}

/* X509_V_OK or the verification error of leaf against ca, strict, for a TLS server. */
static int
verify(X509 *ca, X509 *leaf, const char *host, const char *ip)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *vp;
	int rc;

	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_X509_STRICT);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), 1);
	if (host)
		assert_int_equal(X509_VERIFY_PARAM_set1_host(vp, host, 0), 1);
	if (ip)
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(vp, ip), 1);
	rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* The only SAN entry: its type, and its value as text (DNS) or bytes (IP). */
static int
san_only(X509 *x, char *out, size_t outlen, int *critical)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, critical, NULL);
	const GENERAL_NAME *gn;
	const ASN1_STRING *s;
	int type;

	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
	gn = sk_GENERAL_NAME_value(gens, 0);
	type = gn->type;
	s = type == GEN_DNS ? gn->d.dNSName : gn->d.iPAddress;
	assert_true((size_t)ASN1_STRING_length(s) < outlen);
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	out[ASN1_STRING_length(s)] = '\0';
	*critical = *critical == 1;
	GENERAL_NAMES_free(gens);
	return type;
}

static void
test_mint_dns(void **state)
{
	struct fx *fx = *state;
	X509 *leaf = certforge_mint(fx->cf, "API.Example.Test", fx->now);
	char buf[256];
	int crit;

	assert_non_null(leaf);
	assert_int_equal(verify(fx->ca, leaf, "api.example.test", NULL), X509_V_OK);
	assert_int_equal(verify(fx->ca, leaf, "other.example.test", NULL),
	    X509_V_ERR_HOSTNAME_MISMATCH);
	assert_int_equal(san_only(leaf, buf, sizeof(buf), &crit), GEN_DNS);
	assert_string_equal(buf, "api.example.test");
	assert_false(crit);
	assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
	    buf, sizeof(buf)), 16);
	assert_string_equal(buf, "api.example.test");
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(fx->ca)),
	    0);
	assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
	X509_free(leaf);
}

static void
test_mint_ip(void **state)
{
	static const unsigned char v4[4] = {127, 0, 0, 1};
	static const unsigned char v6[16] = {[15] = 1};
	struct fx *fx = *state;
	X509 *l4 = certforge_mint(fx->cf, "127.0.0.1", fx->now);
	X509 *l6 = certforge_mint(fx->cf, "::1", fx->now);
	char buf[64];
	int crit;

	assert_non_null(l4);
	assert_non_null(l6);
	assert_int_equal(verify(fx->ca, l4, NULL, "127.0.0.1"), X509_V_OK);
	assert_int_equal(verify(fx->ca, l6, NULL, "::1"), X509_V_OK);
	assert_int_equal(verify(fx->ca, l4, NULL, "127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
	assert_int_equal(san_only(l4, buf, sizeof(buf), &crit), GEN_IPADD);
	assert_memory_equal(buf, v4, 4);
	assert_int_equal(san_only(l6, buf, sizeof(buf), &crit), GEN_IPADD);
	assert_memory_equal(buf, v6, 16);
	X509_free(l4);
	X509_free(l6);
}

static void
test_mint_long_name_no_cn(void **state)
{
	struct fx *fx = *state;
	char name[71], buf[128];
	X509 *leaf;
	int crit;

	/* 70 chars: labels of 62 + "." + 7 */
	memset(name, 'a', 62);
	memcpy(name + 62, ".example", 9);
	assert_int_equal(strlen(name), 70);
	leaf = certforge_mint(fx->cf, name, fx->now);
	assert_non_null(leaf);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
	assert_int_equal(san_only(leaf, buf, sizeof(buf), &crit), GEN_DNS);
	assert_string_equal(buf, name);
	assert_true(crit);	/* empty subject: SAN must be critical */
	assert_int_equal(verify(fx->ca, leaf, name, NULL), X509_V_OK);
	X509_free(leaf);
}

static void
test_serials(void **state)
{
	struct fx *fx = *state;
	X509 *a = certforge_mint(fx->cf, "api.example.test", fx->now);
	X509 *b = certforge_mint(fx->cf, "api.example.test", fx->now);
	const ASN1_INTEGER *sa = X509_get0_serialNumber(a);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_not_equal(ASN1_INTEGER_cmp(sa, X509_get0_serialNumber(b)), 0);
	assert_int_equal(ASN1_STRING_type(sa), V_ASN1_INTEGER);	/* not V_ASN1_NEG_INTEGER */
	assert_true(ASN1_STRING_length(sa) <= 16);
	assert_true(ASN1_STRING_length(sa) >= 8);
	X509_free(a);
	X509_free(b);
}

static void
test_validity(void **state)
{
	struct fx *fx = *state;
	X509 *leaf = certforge_mint(fx->cf, "api.example.test", fx->now);
	int days, secs;

	assert_non_null(leaf);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(leaf),
	    (time_t)(fx->now - SG_LEAF_BACKDATE_S)), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(leaf),
	    (time_t)(fx->now + SG_LEAF_VALID_DAYS * 86400)), 0);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf),
	    X509_get0_notAfter(leaf)), 1);
	assert_int_equal(days, SG_LEAF_VALID_DAYS);
	assert_int_equal(secs, SG_LEAF_BACKDATE_S);
	X509_free(leaf);
}

static void
test_validity_capped_by_ca(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *key;
	X509 *ca = make_ca(&key, "short CA", fx->now, 2, 1), *leaf;
	char err[256];
	certforge_t *cf = certforge_new(ca, key, err, sizeof(err));

	assert_non_null(cf);
	leaf = certforge_mint(cf, "api.example.test", fx->now);
	assert_non_null(leaf);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(leaf), X509_get0_notAfter(ca)), 0);
	assert_int_equal(verify(ca, leaf, "api.example.test", NULL), X509_V_OK);
	X509_free(leaf);
	/* once the CA has expired nothing is minted */
	assert_null(certforge_mint(cf, "api.example.test", fx->now + 3 * 86400));
	certforge_free(cf);
	X509_free(ca);
	EVP_PKEY_free(key);
}

static void
test_extensions(void **state)
{
	struct fx *fx = *state;
	X509 *leaf = certforge_mint(fx->cf, "api.example.test", fx->now);
	const X509_EXTENSION *ext;

	assert_non_null(leaf);
	assert_int_equal(X509_get_extension_flags(leaf) & EXFLAG_CA, 0);
	assert_true(X509_get_extension_flags(leaf) & EXFLAG_BCONS);
	assert_int_equal(X509_check_ca(leaf), 0);
	ext = X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_basic_constraints, -1));
	assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
	ext = X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_key_usage, -1));
	assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
	assert_non_null(X509_get0_subject_key_id(leaf));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
	    X509_get0_subject_key_id(fx->ca)), 0);
	assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
	X509_free(leaf);
}

static void
test_leaf_key_shared(void **state)
{
	struct fx *fx = *state;
	X509 *a = certforge_mint(fx->cf, "a.example.test", fx->now);
	X509 *b = certforge_mint(fx->cf, "b.example.test", fx->now);
	EVP_PKEY *key = certforge_leaf_key(fx->cf);
	char group[64];

	assert_non_null(a);
	assert_non_null(b);
	assert_true(EVP_PKEY_is_a(key, "EC"));
	assert_int_equal(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof(group), NULL), 1);
	assert_string_equal(group, "prime256v1");
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(a), key), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(b), key), 1);
	assert_int_equal(X509_check_private_key(a, key), 1);
	X509_free(a);
	X509_free(b);
}

static void
test_invalid_names(void **state)
{
	static const char *bad[] = {
		"", "a b", "exa mple", "x..y", ".x", "x.", "-a.test", "a-.test", "1.2.3",
		"*.example.test", "[::1]", "a\001b", "999.1.1.1", "fe80::1%eth0", "a/b",
	};
	struct fx *fx = *state;
	char label[80], longname[300];

	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		assert_int_equal(certforge_name_valid(bad[i]), 0);
		assert_null(certforge_mint(fx->cf, bad[i], fx->now));
	}
	memset(label, 'a', 64);
	strcpy(label + 64, ".test");		/* a 64-char label */
	assert_null(certforge_mint(fx->cf, label, fx->now));
	/* four labels of 63, 63, 63, 62 plus three dots: 254 chars, one too many */
	memset(longname, 'a', 254);
	longname[63] = longname[127] = longname[191] = '.';
	longname[254] = '\0';
	assert_int_equal(certforge_name_valid(longname), 0);
	assert_null(certforge_mint(fx->cf, longname, fx->now));
	longname[253] = '\0';			/* 253: the longest DNS name */
	assert_int_equal(certforge_name_valid(longname), 1);
}

static void
test_valid_names(void **state)
{
	static const char *good[] = {
		"a", "localhost", "xn--bcher-kva.example", "my_host.example.test", "10.example",
		"EXAMPLE.COM", "192.168.0.1", "2001:db8::1", "::ffff:10.0.0.1",
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(good); i++)
		assert_int_equal(certforge_name_valid(good[i]), 1);
}

static void
test_new_rejects(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *other_key, *leaf_key;
	X509 *other = make_ca(&other_key, "other CA", fx->now, 30, 1);
	X509 *notca = make_ca(&leaf_key, "not a CA", fx->now, 30, 0);
	char err[256] = "";

	assert_null(certforge_new(fx->ca, other_key, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	assert_null(certforge_new(notca, leaf_key, err, sizeof(err)));
	assert_non_null(strstr(err, "CA:TRUE"));
	assert_null(certforge_new(NULL, leaf_key, err, sizeof(err)));
	assert_int_equal(ERR_peek_error(), 0);
	X509_free(other);
	X509_free(notca);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(leaf_key);
}

static void
test_ca_id(void **state)
{
	struct fx *fx = *state;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char hex[17];

	assert_int_equal(X509_digest(fx->ca, EVP_sha256(), md, &mdlen), 1);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(certforge_ca_id(fx->cf), hex);
	assert_ptr_equal(certforge_ca_cert(fx->cf), fx->ca);
}

/* The forge is read-only after creation: many threads mint at once. */
static void *
mint_thread(void *arg)
{
	struct fx *fx = arg;
	char name[64];
	uintptr_t ok = 0;

	for (int i = 0; i < 50; i++) {
		X509 *x;

		snprintf(name, sizeof(name), "h%d.example.test", i);
		x = certforge_mint(fx->cf, name, fx->now);
		ok += x != NULL && verify(fx->ca, x, name, NULL) == X509_V_OK;
		X509_free(x);
	}
	return (void *)ok;
}

static void
test_mint_threads(void **state)
{
	pthread_t t[4];
	void *ok;

	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, mint_thread, *state), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ok), 0);
		assert_int_equal((uintptr_t)ok, 50);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mint_dns),
		cmocka_unit_test(test_mint_ip),
		cmocka_unit_test(test_mint_long_name_no_cn),
		cmocka_unit_test(test_serials),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_validity_capped_by_ca),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_leaf_key_shared),
		cmocka_unit_test(test_invalid_names),
		cmocka_unit_test(test_valid_names),
		cmocka_unit_test(test_new_rejects),
		cmocka_unit_test(test_ca_id),
		cmocka_unit_test(test_mint_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
