/* certforge.c — leaf certificates for interception: one shared P-256 key, CA-signed. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certforge.h"
#include "defaults.h"
#include "log.h"

/* Constant extensions, encoded once at creation and copied into every leaf. */
enum { EXT_BC, EXT_KU, EXT_EKU, EXT_SKI, EXT_AKI, EXT_COUNT };

/* RFC 5280: the CN attribute is at most 64 characters (ub-common-name). */
#define CERTFORGE_CN_MAX	64
#define CERTFORGE_LABEL_MAX	63
#define CERTFORGE_SERIAL_LEN	16

struct certforge {
	X509 *ca_cert;
	EVP_PKEY *ca_key;
	X509_NAME *issuer;		/* decoded copy of the CA subject: read-only encoding */
	const ASN1_TIME *ca_not_after;	/* inside ca_cert */
	EVP_PKEY *leaf_key;
	X509_EXTENSION *ext[EXT_COUNT];
	char ca_id[CERTFORGE_CA_ID_LEN];
};

/* Reason of the newest OpenSSL error, never NULL. */
static const char *
certforge_ossl_reason(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	return r != NULL ? r : "unknown OpenSSL error";
}

/* --- names ------------------------------------------------------------------------ */

/* Bytes of the address (4 or 16) when name is an IP literal, else 0. */
static int
certforge_ip_parse(const char *name, unsigned char out[16])
{
	if (inet_pton(AF_INET, name, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, name, out) == 1)
		return 16;
	return 0;
}

static int
certforge_label_valid(const char *s, size_t len)
{
	if (len == 0 || len > CERTFORGE_LABEL_MAX || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
	}
	return 1;
}

static int
certforge_all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* LDH labels (underscore tolerated), no empty label, last label not numeric. */
static int
certforge_dns_valid(const char *name)
{
	size_t len = strlen(name);
	const char *p = name, *dot;

	if (len == 0 || len > CERTFORGE_NAME_MAX)
		return 0;
	for (;;) {
		dot = strchr(p, '.');
		if (dot == NULL)
			break;
		if (!certforge_label_valid(p, (size_t)(dot - p)))
			return 0;
		p = dot + 1;
	}
	return certforge_label_valid(p, strlen(p)) && !certforge_all_digits(p, strlen(p));
}

int
certforge_name_valid(const char *name)
{
	unsigned char ip[16];

	return certforge_ip_parse(name, ip) > 0 || certforge_dns_valid(name);
}

static int
certforge_name_lower(const char *name, char *out, size_t outlen)
{
	size_t len = strlen(name);

	if (len >= outlen)
		return -1;
	for (size_t i = 0; i <= len; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	return 0;
}

/* --- constant extensions ----------------------------------------------------------- */

/* RFC 7093 method 1: leftmost 160 bits of SHA-256 over the subjectPublicKey bits. */
static ASN1_OCTET_STRING *
certforge_key_id(X509_PUBKEY *xpk)
{
	const unsigned char *bits;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	ASN1_OCTET_STRING *id;
	int bitslen;

	if (X509_PUBKEY_get0_param(NULL, &bits, &bitslen, NULL, xpk) != 1 ||
	    EVP_Digest(bits, (size_t)bitslen, md, &mdlen, EVP_sha256(), NULL) != 1)
		return NULL;
	id = ASN1_OCTET_STRING_new();
	if (id != NULL && ASN1_OCTET_STRING_set(id, md, 20) != 1) {
		ASN1_OCTET_STRING_free(id);
		return NULL;
	}
	return id;
}

static X509_EXTENSION *
certforge_ext_bc(void)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	X509_EXTENSION *ext;

	if (bc == NULL)
		return NULL;
	bc->ca = 0;
	ext = X509V3_EXT_i2d(NID_basic_constraints, 1, bc);
	BASIC_CONSTRAINTS_free(bc);
	return ext;
}

static X509_EXTENSION *
certforge_ext_ku(void)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	X509_EXTENSION *ext = NULL;

	if (ku != NULL && ASN1_BIT_STRING_set_bit(ku, 0, 1) == 1)	/* digitalSignature */
		ext = X509V3_EXT_i2d(NID_key_usage, 1, ku);
	ASN1_BIT_STRING_free(ku);
	return ext;
}

static X509_EXTENSION *
certforge_ext_eku(void)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	X509_EXTENSION *ext = NULL;

	if (eku != NULL && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0)
		ext = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return ext;
}

static X509_EXTENSION *
certforge_ext_ski(EVP_PKEY *leaf_key)
{
	X509_PUBKEY *xpk = NULL;
	ASN1_OCTET_STRING *id = NULL;
	X509_EXTENSION *ext = NULL;

	if (X509_PUBKEY_set(&xpk, leaf_key) == 1 && (id = certforge_key_id(xpk)) != NULL)
		ext = X509V3_EXT_i2d(NID_subject_key_identifier, 0, id);
	ASN1_OCTET_STRING_free(id);
	X509_PUBKEY_free(xpk);
	return ext;
}

/* keyIdentifier = the CA's SKI, or computed from its key when the CA has none. */
static X509_EXTENSION *
certforge_ext_aki(X509 *ca)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	X509_EXTENSION *ext = NULL;

	if (akid == NULL)
		return NULL;
	if (ski != NULL)
		akid->keyid = ASN1_OCTET_STRING_dup(ski);
	else
		akid->keyid = certforge_key_id(X509_get_X509_PUBKEY(ca));
	if (akid->keyid != NULL)
		ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid);
	AUTHORITY_KEYID_free(akid);
	return ext;
}

static int
certforge_exts_init(certforge_t *cf)
{
	cf->ext[EXT_BC] = certforge_ext_bc();
	cf->ext[EXT_KU] = certforge_ext_ku();
	cf->ext[EXT_EKU] = certforge_ext_eku();
	cf->ext[EXT_SKI] = certforge_ext_ski(cf->leaf_key);
	cf->ext[EXT_AKI] = certforge_ext_aki(cf->ca_cert);
	for (int i = 0; i < EXT_COUNT; i++)
		if (cf->ext[i] == NULL)
			return -1;
	return 0;
}

/* --- lifecycle ---------------------------------------------------------------------- */

static int
certforge_ca_check(X509 *ca_cert, EVP_PKEY *ca_key, char *err, size_t errlen)
{
	if (X509_check_ca(ca_cert) != 1) {
		snprintf(err, errlen, "CA certificate lacks basicConstraints CA:TRUE");
		return -1;
	}
	if (X509_check_private_key(ca_cert, ca_key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "CA key does not match the CA certificate");
		return -1;
	}
	return 0;
}

static int
certforge_ca_id_init(certforge_t *cf)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;

	if (X509_digest(cf->ca_cert, EVP_sha256(), md, &mdlen) != 1 || mdlen < 8)
		return -1;
	util_hex_encode(md, 8, cf->ca_id);
	return 0;
}

certforge_t *
certforge_new(X509 *ca_cert, EVP_PKEY *ca_key, char *err, size_t errlen)
{
	certforge_t *cf;

	if (ca_cert == NULL || ca_key == NULL) {
		snprintf(err, errlen, "CA certificate and key are required");
		return NULL;
	}
	if (certforge_ca_check(ca_cert, ca_key, err, errlen) < 0)
		return NULL;
	if ((cf = OPENSSL_zalloc(sizeof(*cf))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	X509_up_ref(ca_cert);
	cf->ca_cert = ca_cert;
	EVP_PKEY_up_ref(ca_key);
	cf->ca_key = ca_key;
	cf->ca_not_after = X509_get0_notAfter(ca_cert);
	cf->issuer = X509_NAME_dup(X509_get_subject_name(ca_cert));
	cf->leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (cf->issuer == NULL || cf->leaf_key == NULL || certforge_exts_init(cf) < 0 ||
	    certforge_ca_id_init(cf) < 0) {
		snprintf(err, errlen, "cannot prepare leaf key and extensions: %s",
		    certforge_ossl_reason());
		ERR_clear_error();
		certforge_free(cf);
		return NULL;
	}
	return cf;
}

void
certforge_free(certforge_t *cf)
{
	if (cf == NULL)
		return;
	for (int i = 0; i < EXT_COUNT; i++)
		X509_EXTENSION_free(cf->ext[i]);
	EVP_PKEY_free(cf->leaf_key);
	X509_NAME_free(cf->issuer);
	EVP_PKEY_free(cf->ca_key);
	X509_free(cf->ca_cert);
	OPENSSL_free(cf);
}

EVP_PKEY *
certforge_leaf_key(certforge_t *cf)
{
	return cf->leaf_key;
}

X509 *
certforge_ca_cert(certforge_t *cf)
{
	return cf->ca_cert;
}

const char *
certforge_ca_id(certforge_t *cf)
{
	return cf->ca_id;
}

/* --- minting ------------------------------------------------------------------------ */

/* Random positive 128-bit serial (top bit cleared, never zero). */
static int
certforge_set_serial(X509 *x)
{
	unsigned char b[CERTFORGE_SERIAL_LEN];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int rc = -1;

	do {
		BN_free(bn);
		if (RAND_bytes(b, sizeof(b)) != 1)
			return -1;
		b[0] &= 0x7f;
		if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
			return -1;
	} while (BN_is_zero(bn));
	if ((ai = BN_to_ASN1_INTEGER(bn, NULL)) != NULL && X509_set_serialNumber(x, ai) == 1)
		rc = 0;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rc;
}

static int
certforge_set_validity(certforge_t *cf, X509 *x, int64_t now)
{
	int64_t end = now + (int64_t)SG_LEAF_VALID_DAYS * 86400;

	if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - SG_LEAF_BACKDATE_S)) == NULL)
		return -1;
	if (ASN1_TIME_cmp_time_t(cf->ca_not_after, (time_t)end) < 0)
		return X509_set1_notAfter(x, cf->ca_not_after) == 1 ? 0 : -1;
	return ASN1_TIME_set(X509_getm_notAfter(x), (time_t)end) != NULL ? 0 : -1;
}

static int
certforge_set_names(certforge_t *cf, X509 *x, const char *name)
{
	if (strlen(name) <= CERTFORGE_CN_MAX &&
	    X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)name, -1, -1, 0) != 1)
		return -1;
	return X509_set_issuer_name(x, cf->issuer) == 1 ? 0 : -1;
}

static GENERAL_NAME *
certforge_general_name(const char *name)
{
	unsigned char ip[16];
	int iplen = certforge_ip_parse(name, ip);
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *s = iplen > 0 ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();

	if (gn == NULL || s == NULL ||
	    (iplen > 0 ? ASN1_STRING_set(s, ip, iplen) : ASN1_STRING_set(s, name, -1)) != 1) {
		ASN1_STRING_free(s);
		GENERAL_NAME_free(gn);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, iplen > 0 ? GEN_IPADD : GEN_DNS, s);
	return gn;
}

/* SAN is critical when the subject is empty (RFC 5280 4.2.1.6). */
static int
certforge_add_san(X509 *x, const char *name)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = certforge_general_name(name);
	int crit = X509_NAME_entry_count(X509_get_subject_name(x)) == 0;
	int rc = -1;

	if (gens != NULL && gn != NULL && sk_GENERAL_NAME_push(gens, gn) > 0) {
		gn = NULL;
		rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, crit, X509V3_ADD_DEFAULT) == 1 ?
		    0 : -1;
	}
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return rc;
}

static int
certforge_add_exts(certforge_t *cf, X509 *x, const char *name)
{
	for (int i = 0; i < EXT_COUNT; i++)
		if (X509_add_ext(x, cf->ext[i], -1) != 1)
			return -1;
	return certforge_add_san(x, name);
}

X509 *
certforge_mint(certforge_t *cf, const char *name, int64_t now)
{
	char lname[CERTFORGE_NAME_MAX + 1];
	X509 *x;

	if (certforge_name_lower(name, lname, sizeof(lname)) < 0 || !certforge_name_valid(lname))
		return NULL;
	if (ASN1_TIME_cmp_time_t(cf->ca_not_after, (time_t)now) <= 0) {
		log_err("CA certificate has expired; cannot mint a leaf for %s", lname);
		return NULL;
	}
	x = X509_new();
	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || certforge_set_serial(x) < 0 ||
	    certforge_set_validity(cf, x, now) < 0 || certforge_set_names(cf, x, lname) < 0 ||
	    X509_set_pubkey(x, cf->leaf_key) != 1 || certforge_add_exts(cf, x, lname) < 0 ||
	    X509_sign(x, cf->ca_key, EVP_sha256()) <= 0) {
		log_err("cannot mint a leaf for %s: %s", lname,
		    certforge_ossl_reason());
		ERR_clear_error();
		X509_free(x);
		return NULL;
	}
	return x;
}
