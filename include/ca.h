/*
 * ca.h — the interception CA: create (ca init) and load (serve).
 *
 *   DIR/ca.key  PEM PKCS#8 ECDSA P-256 private key, mode 0600
 *   DIR/ca.crt  PEM X.509: O=sealgate, CN=sealgate CA <short hostname> <8 hex of SKI>,
 *               random 128-bit serial, valid from now-1h for SG_CA_VALID_DAYS,
 *               basicConstraints critical CA:TRUE pathlen:0,
 *               keyUsage critical keyCertSign cRLSign, SKI, AKI, sha256 signature.
 *
 * Ownership: ca_load hands the caller one reference to each of *cert and *key
 * (X509_free, EVP_PKEY_free).
 */
#ifndef SEALGATE_CA_H
#define SEALGATE_CA_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util.h"

#define CA_KEY_FILE  "ca.key"
#define CA_CERT_FILE "ca.crt"

/*
 * Create DIR/ca.key and DIR/ca.crt. Refuses to replace either unless force is set.
 * 0, or -1 with a message in err.
 */
int ca_create(const char *dir, int force, char *err, size_t errlen) SG_WUR;

/*
 * Load a CA certificate and its private key. The key file must not be readable by group
 * or others, must match the certificate, and the certificate must be a CA
 * (basicConstraints CA:TRUE, keyCertSign when keyUsage is present).
 * 0, or -1 with a message in err (outputs untouched).
 */
int ca_load(const char *cert_path, const char *key_path, X509 **cert, EVP_PKEY **key,
    char *err, size_t errlen) SG_WUR;

#endif
