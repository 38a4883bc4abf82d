/*
 * tls.h — OpenSSL contexts: one SSL_CTX per role (interception server, upstream client),
 * shared by every connection and thread; per-connection state lives in SSL ex_data and is
 * freed with the SSL (SSL_free). Never SSL_dup an SSL made here.
 *
 * Server (interception): a ClientHello callback learns the SNI, picks the leaf from the
 * certcache (or mints and caches it) and installs it with the shared leaf key and the CA as
 * chain. When the client sends no SNI, the name given by tls_server_set_fallback_name (the
 * CONNECT host) is used. ALPN: "http/1.1" or none.
 *
 * Client (upstream): chain + hostname verification (SSL_VERIFY_PEER, SSL_set1_host or the
 * IP), SNI for names, ALPN "http/1.1", sessions remembered per host and offered again.
 *
 * Ownership: the *_ctx_new functions return an SSL_CTX the caller frees (SSL_CTX_free).
 * tls_server_ctx_new borrows cf and cc: both must outlive the SSL_CTX and every SSL made
 * from it. tls_client_new returns an SSL the caller frees (SSL_free). Strings returned by
 * tls_server_sni are owned by the SSL.
 */
#ifndef SEALGATE_TLS_H
#define SEALGATE_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "digest.h"
#include "certcache.h"
#include "certforge.h"
#include "util.h"

/* Longest host name kept per connection (RFC 1035: 253) plus NUL, rounded up. */
#define TLS_NAME_MAX	256

/* --- server side (interception) ------------------------------------------------------ */

/* Context for intercepted client connections. NULL with a message in err. */
SSL_CTX *tls_server_ctx_new(certforge_t *cf, certcache_t *cc, char *err, size_t errlen)
	SG_WUR;
/*
 * Name to mint for when the client sends no SNI (the CONNECT host; "[v6]" brackets are
 * stripped, case folded). Call before the handshake. 0, or -1 if too long / no memory.
 */
int tls_server_set_fallback_name(SSL *ssl, const char *name) SG_NONNULL SG_WUR;
/* The SNI the client sent, lower-case, or NULL if it sent none (or no ClientHello yet). */
const char *tls_server_sni(SSL *ssl) SG_NONNULL;

/*
 * Parse a server_name extension body (RFC 6066) into its host_name, lower-cased, as a
 * NUL-terminated string in out. 0, or -1 when malformed, duplicated, empty, holding a NUL
 * or not fitting outlen. Pure; exported for the fuzz harness.
 */
int tls_sni_parse(const unsigned char *ext, size_t extlen, char *out, size_t outlen)
	SG_WUR;

/* --- client side (upstream) ---------------------------------------------------------- */

/* Context trusting ca_file (PEM), or the system default paths when NULL. */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen) SG_WUR;

/* SHA-256 operations on OpenSSL's EVP (the CPU's SHA instructions where it has them), for
 * digest_sha256_install: the core hashes AWS upload chunks with them. */
const digest_sha256_ops_t *tls_digest_ops(void);
/*
 * An SSL in connect state for host (a DNS name or IP literal, "[v6]" accepted): SNI for
 * names only, hostname or IP verification without partial wildcards, and a remembered
 * session for host offered for resumption. NULL on error.
 */
SSL *tls_client_new(SSL_CTX *ctx, const char *host) SG_NONNULL SG_WUR;
/*
 * After a failed handshake: a message like "certificate verify failed: self-signed
 * certificate in certificate chain (upstream api.example.test)" in buf (returned), or NULL
 * when certificate verification did not fail.
 */
const char *tls_client_verify_error(SSL *ssl, char *buf, size_t len) SG_NONNULL;

/* --- errors ---------------------------------------------------------------------------- */

/* Drain this thread's OpenSSL error queue into one line ("lib: reason; lib: reason"). */
void tls_openssl_error(char *buf, size_t len) SG_NONNULL;

#endif
