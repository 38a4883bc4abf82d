/* tls.c — SSL_CTX for interception (SNI -> minted leaf) and for verified upstreams. */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "defaults.h"
#include "hash.h"
#include "log.h"
#include "tls.h"

/* A cached leaf with less validity left than this is minted again (clients' clocks run
 * ahead; a day leaves margin without re-minting often). */
#define TLS_LEAF_RENEW_S	86400
/* Upstream sessions remembered per client context: direct-mapped by host hash, so a
 * colliding host only costs a full handshake. */
#define TLS_CLIENT_SESSIONS	1024

static const unsigned char tls_alpn_http11[] = "\x08http/1.1";

/* Per-connection state (SSL ex_data). */
struct tls_conn {
	char name[TLS_NAME_MAX];	/* server: fallback name; client: upstream host */
	char sni[TLS_NAME_MAX];		/* server: SNI the client sent */
	bool has_sni;
	bool installed;			/* server: leaf set (a second ClientHello keeps it) */
};

/* Server context state (SSL_CTX ex_data); cf and cc are borrowed. */
struct tls_server {
	certforge_t *cf;
	certcache_t *cc;
};

struct tls_session_slot {
	SSL_SESSION *sess;
	char host[TLS_NAME_MAX];
};

/* Client context state (SSL_CTX ex_data). */
struct tls_client {
	pthread_mutex_t lock;
	hash_key_t hkey;	/* slots by keyed hash: upstream names come from clients */
	struct tls_session_slot slot[TLS_CLIENT_SESSIONS];
};

static int tls_conn_idx = -1, tls_server_idx = -1, tls_client_idx = -1;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* --- ex_data ------------------------------------------------------------------------- */

static void
tls_conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static void
tls_server_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static void
tls_client_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct tls_client *tcl = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (tcl == NULL)
		return;
	for (size_t i = 0; i < TLS_CLIENT_SESSIONS; i++)
		SSL_SESSION_free(tcl->slot[i].sess);
	pthread_mutex_destroy(&tcl->lock);
	free(tcl);
}

static void
tls_ex_init_once(void)
{
	tls_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_conn_free_cb);
	tls_server_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_server_free_cb);
	tls_client_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_client_free_cb);
}

static int
tls_ex_init(void)
{
	if (pthread_once(&tls_once, tls_ex_init_once) != 0)
		return -1;
	return tls_conn_idx >= 0 && tls_server_idx >= 0 && tls_client_idx >= 0 ? 0 : -1;
}

/* The connection's state; with create set, allocated on first use. */
static struct tls_conn *
tls_conn_get(SSL *ssl, int create)
{
	struct tls_conn *tc;

	if (tls_conn_idx < 0)
		return NULL;
	tc = SSL_get_ex_data(ssl, tls_conn_idx);
	if (tc != NULL || !create)
		return tc;
	if ((tc = calloc(1, sizeof(*tc))) == NULL)
		return NULL;
	if (SSL_set_ex_data(ssl, tls_conn_idx, tc) != 1) {
		free(tc);
		return NULL;
	}
	return tc;
}

/* --- names ---------------------------------------------------------------------------- */

/* Copy host lower-cased, without the brackets of "[v6]". 0, or -1 if empty/too long. */
static int
tls_host_copy(const char *host, char *out, size_t outlen)
{
	size_t len = strlen(host);

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len == 0 || len >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)host[i]);
	out[len] = '\0';
	return 0;
}

static int
tls_is_ip(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* --- server: SNI ----------------------------------------------------------------------- */

static int
tls_sni_copy(const unsigned char *p, size_t n, char *out, size_t outlen)
{
	if (n == 0 || n >= outlen || memchr(p, '\0', n) != NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower(p[i]);
	out[n] = '\0';
	return 0;
}

int
tls_sni_parse(const unsigned char *ext, size_t extlen, char *out, size_t outlen)
{
	const unsigned char *p, *end = ext + extlen;
	bool found = false;

	if (extlen < 2 || (size_t)(ext[0] << 8 | ext[1]) != extlen - 2 || extlen == 2)
		return -1;
	for (p = ext + 2; p < end;) {
		unsigned int type;
		size_t n;

		if (end - p < 3)
			return -1;
		type = p[0];
		n = (size_t)(p[1] << 8 | p[2]);
		p += 3;
		if ((size_t)(end - p) < n)
			return -1;
		if (type == TLSEXT_NAMETYPE_host_name) {
			if (found || tls_sni_copy(p, n, out, outlen) < 0)
				return -1;
			found = true;
		}
		p += n;
	}
	return found ? 0 : -1;
}

int
tls_server_set_fallback_name(SSL *ssl, const char *name)
{
	struct tls_conn *tc = tls_conn_get(ssl, 1);

	if (tc == NULL)
		return -1;
	return tls_host_copy(name, tc->name, sizeof(tc->name));
}

const char *
tls_server_sni(SSL *ssl)
{
	struct tls_conn *tc = tls_conn_get(ssl, 0);

	return tc != NULL && tc->has_sni ? tc->sni : NULL;
}

/* Record the SNI if the ClientHello has one. 0, or -1 when the extension is malformed. */
static int
tls_server_learn_sni(SSL *ssl, struct tls_conn *tc)
{
	const unsigned char *ext;
	size_t extlen;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &extlen) != 1)
		return 0;
	if (tls_sni_parse(ext, extlen, tc->sni, sizeof(tc->sni)) < 0)
		return -1;
	tc->has_sni = true;
	return 0;
}

/* --- server: leaves --------------------------------------------------------------------- */

static X509 *
tls_server_leaf(struct tls_server *ts, const char *name)
{
	char key[CERTFORGE_CA_ID_LEN + 1 + TLS_NAME_MAX];
	int64_t now = util_now_s();
	X509 *x;

	snprintf(key, sizeof(key), "%s/%s", certforge_ca_id(ts->cf), name);
	x = certcache_get(ts->cc, key);
	if (x != NULL && ASN1_TIME_cmp_time_t(X509_get0_notAfter(x),
	    (time_t)(now + TLS_LEAF_RENEW_S)) > 0)
		return x;
	X509_free(x);
	if ((x = certforge_mint(ts->cf, name, now)) != NULL)
		certcache_put(ts->cc, key, x);
	return x;
}

static int
tls_server_install(struct tls_server *ts, SSL *ssl, const char *name)
{
	X509 *leaf = tls_server_leaf(ts, name);
	int rc = -1;

	if (leaf == NULL)
		return -1;
	if (SSL_use_certificate(ssl, leaf) == 1 &&
	    SSL_use_PrivateKey(ssl, certforge_leaf_key(ts->cf)) == 1 &&
	    SSL_add1_chain_cert(ssl, certforge_ca_cert(ts->cf)) == 1)
		rc = 0;
	X509_free(leaf);
	return rc;
}

static int
tls_server_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_server *ts = arg;
	struct tls_conn *tc = tls_conn_get(ssl, 1);
	const char *name;

	if (tc == NULL) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (tc->installed)	/* second ClientHello after HelloRetryRequest */
		return SSL_CLIENT_HELLO_SUCCESS;
	if (tls_server_learn_sni(ssl, tc) < 0) {
		log_debug("malformed server_name extension");
		*al = SSL_AD_DECODE_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	name = tc->has_sni ? tc->sni : tc->name;
	if (*name == '\0' || tls_server_install(ts, ssl, name) < 0) {
		log_debug("no certificate for \"%s\"", *name ? name : "(no SNI, no fallback)");
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	tc->installed = true;
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* "http/1.1" if the client offers it; otherwise no ALPN at all (an h2-only client too). */
static int
tls_server_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl, (void)arg;
	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];

		if (n == 0 || n > inlen - i - 1)
			break;
		if (n == tls_alpn_http11[0] && memcmp(in + i + 1, tls_alpn_http11 + 1, n) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += n + 1;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* --- contexts ------------------------------------------------------------------------- */

/* Settings both roles share. 0 / -1. */
static int
tls_ctx_common(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return -1;
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	return 0;
}

static void
tls_ctx_fail(SSL_CTX *ctx, const char *what, char *err, size_t errlen)
{
	char ossl[256];

	tls_openssl_error(ossl, sizeof(ossl));
	snprintf(err, errlen, "%s: %s", what, ossl);
	SSL_CTX_free(ctx);
}

/* Server settings: resumption by stateless tickets (no server-side cache shared and
 * locked by all workers), ALPN, and the ClientHello callback that installs the leaf. */
static int
tls_server_ctx_setup(SSL_CTX *ctx, struct tls_server *ts)
{
	static const unsigned char sid_ctx[] = "sealgate";

	if (tls_ctx_common(ctx) < 0 ||
	    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1 ||
	    SSL_CTX_set_num_tickets(ctx, 1) != 1)
		return -1;
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_alpn_select_cb(ctx, tls_server_alpn_cb, NULL);
	SSL_CTX_set_client_hello_cb(ctx, tls_server_hello_cb, ts);
	return 0;
}

SSL_CTX *
tls_server_ctx_new(certforge_t *cf, certcache_t *cc, char *err, size_t errlen)
{
	struct tls_server *ts;
	SSL_CTX *ctx;

	if (cf == NULL || cc == NULL || tls_ex_init() < 0) {
		snprintf(err, errlen, "TLS server context: bad arguments or OpenSSL state");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_ctx_fail(NULL, "TLS server context", err, errlen);
		return NULL;
	}
	if ((ts = calloc(1, sizeof(*ts))) == NULL ||
	    SSL_CTX_set_ex_data(ctx, tls_server_idx, ts) != 1) {
		free(ts);	/* not attached: the ex_data free callback will not see it */
		tls_ctx_fail(ctx, "TLS server context", err, errlen);
		return NULL;
	}
	ts->cf = cf;
	ts->cc = cc;
	if (tls_server_ctx_setup(ctx, ts) < 0) {
		tls_ctx_fail(ctx, "TLS server context", err, errlen);
		return NULL;
	}
	return ctx;
}

/* --- client: sessions ------------------------------------------------------------------ */

static struct tls_client *
tls_client_of(SSL *ssl)
{
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_client_idx);
}

/* The session slot of host name. */
static struct tls_session_slot *
tls_client_slot(struct tls_client *tcl, const char *name)
{
	return &tcl->slot[hash_keyed(&tcl->hkey, name, strlen(name)) % TLS_CLIENT_SESSIONS];
}

/*
 * New-session callback: remember a private copy of the newest resumable session per host.
 * Copies, because OpenSSL marks a connection's own session unresumable when that
 * connection ends without close_notify, which upstreams do all the time (TLS 1.1+ allow
 * resuming after that). Returns 0: OpenSSL keeps its reference.
 */
static int
tls_client_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_client *tcl = tls_client_of(ssl);
	struct tls_conn *tc = tls_conn_get(ssl, 0);
	struct tls_session_slot *s;
	SSL_SESSION *copy, *old;

	if (tcl == NULL || tc == NULL || SSL_get_verify_result(ssl) != X509_V_OK ||
	    !SSL_SESSION_is_resumable(sess) || (copy = SSL_SESSION_dup(sess)) == NULL)
		return 0;
	s = tls_client_slot(tcl, tc->name);
	pthread_mutex_lock(&tcl->lock);
	old = s->sess;
	s->sess = copy;
	memcpy(s->host, tc->name, sizeof(s->host));
	pthread_mutex_unlock(&tcl->lock);
	SSL_SESSION_free(old);
	return 0;
}

/* Offer a copy of the remembered session for tc->name, if any (stored ones stay pristine). */
static void
tls_client_resume(SSL *ssl, struct tls_conn *tc)
{
	struct tls_client *tcl = tls_client_of(ssl);
	struct tls_session_slot *s;
	SSL_SESSION *stored = NULL, *copy;

	if (tcl == NULL)
		return;
	s = tls_client_slot(tcl, tc->name);
	pthread_mutex_lock(&tcl->lock);
	if (s->sess != NULL && strcmp(s->host, tc->name) == 0 && SSL_SESSION_up_ref(s->sess))
		stored = s->sess;
	pthread_mutex_unlock(&tcl->lock);
	if (stored == NULL)
		return;
	if ((copy = SSL_SESSION_dup(stored)) == NULL || SSL_set_session(ssl, copy) != 1)
		ERR_clear_error();	/* resumption is an optimisation */
	SSL_SESSION_free(copy);
	SSL_SESSION_free(stored);
}

/* --- client: contexts and connections ---------------------------------------------------- */

static int
tls_client_trust(SSL_CTX *ctx, const char *ca_file)
{
	if (ca_file != NULL)
		return SSL_CTX_load_verify_file(ctx, ca_file) == 1 ? 0 : -1;
	return SSL_CTX_set_default_verify_paths(ctx) == 1 ? 0 : -1;
}

static int
tls_client_state_new(SSL_CTX *ctx)
{
	struct tls_client *tcl = calloc(1, sizeof(*tcl));

	if (tcl == NULL)
		return -1;
	if (hash_key_init(&tcl->hkey) < 0 || pthread_mutex_init(&tcl->lock, NULL) != 0) {
		free(tcl);
		return -1;
	}
	if (SSL_CTX_set_ex_data(ctx, tls_client_idx, tcl) != 1) {
		tls_client_free_cb(NULL, tcl, NULL, 0, 0, NULL);
		return -1;
	}
	return 0;
}

SSL_CTX *
tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	char what[300];
	SSL_CTX *ctx;

	if (tls_ex_init() < 0 || (ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_ctx_fail(NULL, "TLS client context", err, errlen);
		return NULL;
	}
	if (tls_ctx_common(ctx) < 0 || tls_client_state_new(ctx) < 0 ||
	    SSL_CTX_set_alpn_protos(ctx, tls_alpn_http11, sizeof(tls_alpn_http11) - 1) != 0) {
		tls_ctx_fail(ctx, "TLS client context", err, errlen);
		return NULL;
	}
	if (tls_client_trust(ctx, ca_file) < 0) {
		snprintf(what, sizeof(what), "cannot load trust anchors from %s",
		    ca_file ? ca_file : "the system default paths");
		tls_ctx_fail(ctx, what, err, errlen);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_client_session_cb);
	return ctx;
}

/* SNI and name check for a DNS name; the address check for an IP literal. */
static int
tls_client_expect(SSL *ssl, const char *host)
{
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (tls_is_ip(host))
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
	if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
		return -1;
	return 0;
}

SSL *
tls_client_new(SSL_CTX *ctx, const char *host)
{
	struct tls_conn *tc;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if ((tc = tls_conn_get(ssl, 1)) == NULL ||
	    tls_host_copy(host, tc->name, sizeof(tc->name)) < 0 ||
	    tls_client_expect(ssl, tc->name) < 0) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	tls_client_resume(ssl, tc);
	return ssl;
}

const char *
tls_client_verify_error(SSL *ssl, char *buf, size_t len)
{
	long rc = SSL_get_verify_result(ssl);
	struct tls_conn *tc = tls_conn_get(ssl, 0);

	if (rc == X509_V_OK)
		return NULL;
	snprintf(buf, len, "certificate verify failed: %s (upstream %s)",
	    X509_verify_cert_error_string(rc), tc != NULL ? tc->name : "unknown");
	return buf;
}

/* --- errors --------------------------------------------------------------------------- */

void
tls_openssl_error(char *buf, size_t len)
{
	unsigned long e;
	size_t off = 0;

	if (len > 0)
		buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		const char *lib = ERR_lib_error_string(e), *reason = ERR_reason_error_string(e);
		int n;

		if (off >= len)
			continue;	/* keep draining */
		if (reason != NULL)
			n = snprintf(buf + off, len - off, "%s%s%s%s", off ? "; " : "",
			    lib ? lib : "", lib ? ": " : "", reason);
		else
			n = snprintf(buf + off, len - off, "%serror %lx", off ? "; " : "", e);
		off += n > 0 ? (size_t)n : 0;
	}
	if (len > 0 && buf[0] == '\0')
		snprintf(buf, len, "no OpenSSL error reported");
}

/* --- SHA-256 for the core (digest.h) ------------------------------------------------- */

/* The state is a pointer to an EVP_MD_CTX, NULL when released. */
static int
tls_digest_init(void *ctx)
{
	EVP_MD_CTX **m = ctx;

	if (*m == NULL && (*m = EVP_MD_CTX_new()) == NULL)
		return -1;
	return EVP_DigestInit_ex(*m, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static void
tls_digest_update(void *ctx, const void *p, size_t n)
{
	(void)EVP_DigestUpdate(*(EVP_MD_CTX **)ctx, p, n);
}

static void
tls_digest_release(void *ctx)
{
	EVP_MD_CTX **m = ctx;

	EVP_MD_CTX_free(*m);
	*m = NULL;
}

static void
tls_digest_final(void *ctx, uint8_t out[DIGEST_SHA256_BYTES])
{
	unsigned int n = DIGEST_SHA256_BYTES;

	if (EVP_DigestFinal_ex(*(EVP_MD_CTX **)ctx, out, &n) != 1)
		memset(out, 0, DIGEST_SHA256_BYTES);	/* no hash: a signature will not match */
	tls_digest_release(ctx);
}

static const digest_sha256_ops_t tls_digest = {
	tls_digest_init, tls_digest_update, tls_digest_final, tls_digest_release,
};

const digest_sha256_ops_t *
tls_digest_ops(void)
{
	return &tls_digest;
}
