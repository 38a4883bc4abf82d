/* ca.c — create and load the interception CA (ECDSA P-256, OpenSSL 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "defaults.h"
#include "secmem.h"

/* PEM files we read: a key or a certificate, never megabytes. */
#define CA_FILE_MAX   (64 * 1024)
/* Bytes of randomness in a serial number (RFC 5280 allows up to 20 octets). */
#define CA_SERIAL_LEN 16

/* err = "what: <first OpenSSL error>"; clears the OpenSSL error queue. */
static void
ca_ssl_err(char *err, size_t errlen, const char *what)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s: %s", what, buf);
}

static int
ca_path_join(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

static int
ca_set_serial(X509 *x)
{
	unsigned char raw[CA_SERIAL_LEN];
	BIGNUM *bn;
	int rc = -1;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	raw[0] &= 0x7f;		/* positive */
	raw[0] |= 0x40;		/* and a full 128-bit-ish length, never zero */
	if ((bn = BN_bin2bn(raw, sizeof(raw), NULL)) == NULL)
		return -1;
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		rc = 0;
	BN_free(bn);
	return rc;
}

/* "sealgate CA <short hostname> <8 hex of the SKI hash>" */
static int
ca_set_names(X509 *x)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char host[256] = "localhost", hex[9], cn[320];
	X509_NAME *name = X509_get_subject_name(x);

	if (gethostname(host, sizeof(host) - 1) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	if (X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) != 1 || mdlen < 4)
		return -1;
	util_hex_encode(md, 4, hex);
	snprintf(cn, sizeof(cn), "sealgate CA %.63s %s", host[0] ? host : "localhost", hex);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"sealgate", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1)
		return -1;
	return X509_set_issuer_name(x, name) == 1 ? 0 : -1;
}

static int
ca_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int rc;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

static X509 *
ca_make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();

	if (x == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) != 1 || ca_set_serial(x) < 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -SG_LEAF_BACKDATE_S) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), SG_CA_VALID_DAYS, 0, NULL) == NULL ||
	    X509_set_pubkey(x, key) != 1 || ca_set_names(x) < 0 ||
	    ca_add_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    ca_add_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    ca_add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    ca_add_ext(x, NID_authority_key_identifier, "keyid:always") < 0 ||
	    X509_sign(x, key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* PEM of the key (secure heap BIO) to path, mode 0600. */
static int
ca_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data;
	long len;
	int rc = -1;

	if (bio == NULL || PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL,
	    NULL) != 1 || (len = BIO_get_mem_data(bio, &data)) <= 0)
		ca_ssl_err(err, errlen, "cannot encode the CA key");
	else
		rc = util_write_file(path, data, (size_t)len, 0600, err, errlen);
	BIO_free(bio);
	return rc;
}

static int
ca_write_cert(const char *path, X509 *x, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = -1;

	if (bio == NULL || PEM_write_bio_X509(bio, x) != 1 ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0)
		ca_ssl_err(err, errlen, "cannot encode the CA certificate");
	else
		rc = util_write_file(path, data, (size_t)len, 0644, err, errlen);
	BIO_free(bio);
	return rc;
}

static int
ca_check_paths(const char *dir, int force, char *keyp, char *crtp, size_t plen, char *err,
    size_t errlen)
{
	struct stat st;

	if (ca_path_join(keyp, plen, dir, CA_KEY_FILE) < 0 ||
	    ca_path_join(crtp, plen, dir, CA_CERT_FILE) < 0) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if (!force && (access(keyp, F_OK) == 0 || access(crtp, F_OK) == 0)) {
		snprintf(err, errlen, "%s: a CA already exists (use --force to replace it)",
		    access(keyp, F_OK) == 0 ? keyp : crtp);
		return -1;
	}
	return 0;
}

int
ca_create(const char *dir, int force, char *err, size_t errlen)
{
	char keyp[4096], crtp[4096];
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc = -1;

	if (ca_check_paths(dir, force, keyp, crtp, sizeof(keyp), err, errlen) < 0)
		return -1;
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL) {
		ca_ssl_err(err, errlen, "cannot generate the CA key");
		goto out;
	}
	if ((x = ca_make_cert(key)) == NULL) {
		ca_ssl_err(err, errlen, "cannot build the CA certificate");
		goto out;
	}
	if (ca_write_key(keyp, key, err, errlen) < 0 || ca_write_cert(crtp, x, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static EVP_PKEY *
ca_read_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	char *buf = NULL;
	size_t len;
	BIO *bio;

	if (util_read_file(path, CA_FILE_MAX, 1, &buf, &len, err, errlen) < 0)
		return NULL;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	secmem_guarded_free(buf);
	if (key == NULL)
		ca_ssl_err(err, errlen, path);
	return key;
}

static X509 *
ca_read_cert(const char *path, char *err, size_t errlen)
{
	X509 *x = NULL;
	char *buf = NULL;
	size_t len;
	BIO *bio;

	if (util_read_file(path, CA_FILE_MAX, 0, &buf, &len, err, errlen) < 0)
		return NULL;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	free(buf);
	if (x == NULL)
		ca_ssl_err(err, errlen, path);
	return x;
}

int
ca_load(const char *cert_path, const char *key_path, X509 **cert, EVP_PKEY **key,
    char *err, size_t errlen)
{
	EVP_PKEY *k = NULL;
	X509 *x = NULL;

	if ((x = ca_read_cert(cert_path, err, errlen)) == NULL ||
	    (k = ca_read_key(key_path, err, errlen)) == NULL)
		goto fail;
	if (X509_check_ca(x) != 1) {
		snprintf(err, errlen, "%s: not a CA certificate (needs basicConstraints CA:TRUE "
		    "and keyCertSign)", cert_path);
		goto fail;
	}
	if (X509_check_private_key(x, k) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: key does not match %s", key_path, cert_path);
		goto fail;
	}
	*cert = x;
	*key = k;
	return 0;
fail:
	EVP_PKEY_free(k);
	X509_free(x);
	return -1;
}
