/*
 * certforge.h — mint short-lived leaf certificates for TLS interception, signed by the
 * sealgate CA. One ECDSA P-256 leaf key is made at creation and shared by every leaf, so
 * minting costs one CA signature and the cache holds only certificates.
 *
 * Ownership: certforge_new takes its own references to the CA certificate and key (the
 * caller keeps and frees theirs). certforge_mint returns a new reference (X509_free it).
 * Getters marked "borrowed" return pointers owned by the forge, valid until certforge_free.
 *
 * Threads: after certforge_new the forge is only read, so certforge_mint and the getters
 * may be called from any number of threads at once. certforge_free must not race them.
 */
#ifndef SEALGATE_CERTFORGE_H
#define SEALGATE_CERTFORGE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util.h"

typedef struct certforge certforge_t;

/* Longest CA id text (hex of 8 bytes) plus NUL. */
#define CERTFORGE_CA_ID_LEN	17
/* Longest name certforge accepts: a DNS name (RFC 1035, no trailing dot). */
#define CERTFORGE_NAME_MAX	253

/*
 * A forge signing with ca_cert/ca_key. The certificate must be a CA (basicConstraints
 * CA:TRUE) matching the key. Generates the shared leaf key. NULL with a message in err.
 */
certforge_t *certforge_new(X509 *ca_cert, EVP_PKEY *ca_key, char *err, size_t errlen);
void certforge_free(certforge_t *cf);

/* The shared leaf private key (borrowed). */
EVP_PKEY *certforge_leaf_key(certforge_t *cf) SG_NONNULL;
/* The CA certificate (borrowed), e.g. to send as the chain. */
X509 *certforge_ca_cert(certforge_t *cf) SG_NONNULL;
/* Lower-case hex of the first 8 bytes of the CA certificate's SHA-256 (borrowed). */
const char *certforge_ca_id(certforge_t *cf) SG_NONNULL;

/*
 * A leaf for name (a DNS name or an IPv4/IPv6 literal without brackets; case-insensitive)
 * valid from now - SG_LEAF_BACKDATE_S to min(now + SG_LEAF_VALID_DAYS, CA notAfter).
 * Returns a new reference, or NULL if name is invalid, the CA has expired at now, or
 * OpenSSL fails.
 */
X509 *certforge_mint(certforge_t *cf, const char *name, int64_t now) SG_NONNULL SG_WUR;

/* 1 when name is a DNS name or IP literal certforge_mint accepts, else 0. Pure. */
int certforge_name_valid(const char *name) SG_NONNULL;

#endif
