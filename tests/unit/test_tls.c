/* test_tls.c — in-memory handshakes: upstream client context vs interception server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "digest.h"
#include "tls.h"

struct fx {
	char dir[64], ca1_file[96], ca2_file[96];
	EVP_PKEY *ca1_key, *ca2_key;
	X509 *ca1, *ca2;
	certforge_t *cf;
	certcache_t *cc;
	SSL_CTX *sctx;		/* interception server, CA 1 */
	SSL_CTX *cctx;		/* upstream client trusting CA 1 */
	SSL_CTX *cctx2;		/* upstream client trusting only CA 2 */
};

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* A self-signed ECDSA P-256 CA, ten days either side of now. */
static X509 *
make_ca(EVP_PKEY **keyp, const char *cn)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	time_t now = time(NULL);

	if (key == NULL || x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), now - 864000) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), now + 864000) == NULL ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_set_pubkey(x, key) != 1 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		EVP_PKEY_free(key);
		return NULL;
	}
	*keyp = key;
	return x;
}

static int
write_pem(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = PEM_write_X509(f, x);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

static int
setup(void **state)
{
	static struct fx fx;
	char err[256];

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/sg-tls-XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	snprintf(fx.ca1_file, sizeof(fx.ca1_file), "%s/ca1.pem", fx.dir);
	snprintf(fx.ca2_file, sizeof(fx.ca2_file), "%s/ca2.pem", fx.dir);
	fx.ca1 = make_ca(&fx.ca1_key, "sealgate test CA 1");
	fx.ca2 = make_ca(&fx.ca2_key, "sealgate test CA 2");
	if (fx.ca1 == NULL || fx.ca2 == NULL || write_pem(fx.ca1_file, fx.ca1) < 0 ||
	    write_pem(fx.ca2_file, fx.ca2) < 0)
		return -1;
	fx.cf = certforge_new(fx.ca1, fx.ca1_key, err, sizeof(err));
	fx.cc = certcache_new(16);
	if (fx.cf == NULL || fx.cc == NULL)
		return -1;
	fx.sctx = tls_server_ctx_new(fx.cf, fx.cc, err, sizeof(err));
	fx.cctx = tls_client_ctx_new(fx.ca1_file, err, sizeof(err));
	fx.cctx2 = tls_client_ctx_new(fx.ca2_file, err, sizeof(err));
	if (fx.sctx == NULL || fx.cctx == NULL || fx.cctx2 == NULL)
		return -1;
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	SSL_CTX_free(fx->sctx);
	SSL_CTX_free(fx->cctx);
	SSL_CTX_free(fx->cctx2);
	certcache_free(fx->cc);
	certforge_free(fx->cf);
	X509_free(fx->ca1);
	X509_free(fx->ca2);
	EVP_PKEY_free(fx->ca1_key);
	EVP_PKEY_free(fx->ca2_key);
	unlink(fx->ca1_file);
	unlink(fx->ca2_file);
	rmdir(fx->dir);
	return 0;
}

/* One non-blocking step: 1 done, 0 wants I/O, -1 failed. */
static int
step(SSL *ssl)
{
	int r = SSL_do_handshake(ssl), e;

	if (r == 1)
		return 1;
	e = SSL_get_error(ssl, r);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Handshake c with s over a BIO pair (the SSLs own the BIOs). 0 both done, -1 failed. */
static int
handshake(SSL *c, SSL *s)
{
	BIO *bc, *bs;
	int cd = 0, sd = 0;

	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	SSL_set_accept_state(s);
	for (int i = 0; i < 50 && !(cd == 1 && sd == 1) && cd >= 0 && sd >= 0; i++) {
		if (cd != 1)
			cd = step(c);
		if (sd != 1 && cd >= 0)
			sd = step(s);
	}
	if (cd == 1 && sd == 1)
		return 0;
	return -1;
}

/* Let the client read post-handshake messages (TLS 1.3 session tickets). */
static void
client_drain(SSL *c)
{
	char b;

	assert_int_equal(SSL_read(c, &b, 1), -1);
	assert_int_equal(SSL_get_error(c, -1), SSL_ERROR_WANT_READ);
}

static void
assert_peer(SSL *c, X509 *ca, const char *name, int is_ip)
{
	X509 *peer = SSL_get1_peer_certificate(c);

	assert_non_null(peer);
	if (is_ip)
		assert_int_equal(X509_check_ip_asc(peer, name, 0), 1);
	else
		assert_int_equal(X509_check_host(peer, name, 0, 0, NULL), 1);
	assert_int_equal(X509_check_issued(ca, peer), X509_V_OK);
	X509_free(peer);
}

static void
test_sni_handshake(void **state)
{
	struct fx *fx = *state;
	SSL *c = tls_client_new(fx->cctx, "API.example.test"), *s = SSL_new(fx->sctx);
	const unsigned char *alpn;
	unsigned int alpnlen;
	char buf[256];

	assert_non_null(c);
	assert_non_null(s);
	assert_null(tls_server_sni(s));
	assert_int_equal(handshake(c, s), 0);
	assert_string_equal(tls_server_sni(s), "api.example.test");
	assert_peer(c, fx->ca1, "api.example.test", 0);
	assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
	assert_null(tls_client_verify_error(c, buf, sizeof(buf)));
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(c)), 2);	/* leaf + CA */
	SSL_get0_alpn_selected(c, &alpn, &alpnlen);
	assert_int_equal(alpnlen, 8);
	assert_memory_equal(alpn, "http/1.1", 8);
	assert_true(SSL_version(c) >= TLS1_2_VERSION);
	SSL_free(c);
	SSL_free(s);
}

static void
test_hostname_mismatch(void **state)
{
	struct fx *fx = *state;
	SSL *c = tls_client_new(fx->cctx, "other.example.test"), *s = SSL_new(fx->sctx);
	char buf[256];

	assert_non_null(c);
	/* the server is asked for api.example.test, the client expects other.example.test */
	assert_int_equal(SSL_set_tlsext_host_name(c, "api.example.test"), 1);
	assert_int_equal(handshake(c, s), -1);
	assert_int_equal(SSL_get_verify_result(c), X509_V_ERR_HOSTNAME_MISMATCH);
	assert_non_null(tls_client_verify_error(c, buf, sizeof(buf)));
	assert_string_equal(buf,
	    "certificate verify failed: hostname mismatch (upstream other.example.test)");
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
}

static void
test_no_sni_fallback(void **state)
{
	struct fx *fx = *state;
	SSL *c = tls_client_new(fx->cctx, "api.example.test"), *s = SSL_new(fx->sctx);

	assert_non_null(c);
	assert_int_equal(SSL_set_tlsext_host_name(c, NULL), 1);	/* send no SNI */
	assert_int_equal(tls_server_set_fallback_name(s, "API.Example.Test"), 0);
	assert_int_equal(handshake(c, s), 0);
	assert_null(tls_server_sni(s));
	assert_peer(c, fx->ca1, "api.example.test", 0);
	SSL_free(c);
	SSL_free(s);
}

static void
test_ip_literals(void **state)
{
	static const char *const hosts[][2] = {
		{"127.0.0.1", "127.0.0.1"}, {"[::1]", "::1"}, {"::1", "::1"},
	};
	struct fx *fx = *state;

	for (size_t i = 0; i < SG_ARRAY_LEN(hosts); i++) {
		SSL *c = tls_client_new(fx->cctx, hosts[i][0]), *s = SSL_new(fx->sctx);

		assert_non_null(c);
		assert_null(SSL_get_servername(c, TLSEXT_NAMETYPE_host_name));	/* no SNI */
		assert_int_equal(tls_server_set_fallback_name(s, hosts[i][0]), 0);
		assert_int_equal(handshake(c, s), 0);
		assert_null(tls_server_sni(s));
		assert_peer(c, fx->ca1, hosts[i][1], 1);
		SSL_free(c);
		SSL_free(s);
	}
}

static void
test_no_sni_no_fallback(void **state)
{
	struct fx *fx = *state;
	SSL *c = tls_client_new(fx->cctx, "api.example.test"), *s = SSL_new(fx->sctx);
	char buf[256];

	assert_int_equal(SSL_set_tlsext_host_name(c, NULL), 1);
	assert_int_equal(handshake(c, s), -1);
	assert_null(tls_client_verify_error(c, buf, sizeof(buf)));	/* not a verify failure */
	tls_openssl_error(buf, sizeof(buf));
	assert_int_not_equal(strcmp(buf, "no OpenSSL error reported"), 0);
	assert_int_equal(ERR_peek_error(), 0);
	SSL_free(c);
	SSL_free(s);
}

static void
test_untrusted_ca(void **state)
{
	struct fx *fx = *state;
	SSL *c = tls_client_new(fx->cctx2, "api.example.test"), *s = SSL_new(fx->sctx);
	char buf[256];

	assert_non_null(c);
	assert_int_equal(handshake(c, s), -1);
	assert_int_equal(SSL_get_verify_result(c), X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
	assert_ptr_equal(tls_client_verify_error(c, buf, sizeof(buf)), buf);
	assert_string_equal(buf, "certificate verify failed: self-signed certificate in "
	    "certificate chain (upstream api.example.test)");
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
}

static X509 *
handshake_peer(struct fx *fx, const char *host)
{
	SSL *c = tls_client_new(fx->cctx, host), *s = SSL_new(fx->sctx);
	X509 *peer;

	assert_int_equal(handshake(c, s), 0);
	peer = SSL_get1_peer_certificate(c);
	SSL_free(c);
	SSL_free(s);
	return peer;
}

static void
test_cache_hit(void **state)
{
	struct fx *fx = *state;
	uint64_t h0, m0, h1, m1, h2, m2;
	size_t n0, n1, n2;
	X509 *p1, *p2;

	certcache_stats(fx->cc, &h0, &m0, &n0);
	p1 = handshake_peer(fx, "cache.example.test");
	certcache_stats(fx->cc, &h1, &m1, &n1);
	assert_int_equal(m1, m0 + 1);
	assert_int_equal(h1, h0);
	assert_int_equal(n1, n0 + 1);
	p2 = handshake_peer(fx, "cache.example.test");
	certcache_stats(fx->cc, &h2, &m2, &n2);
	assert_int_equal(h2, h1 + 1);
	assert_int_equal(m2, m1);
	assert_int_equal(n2, n1);
	assert_int_equal(X509_cmp(p1, p2), 0);		/* the very same leaf */
	X509_free(p1);
	X509_free(p2);
}

/* A cached leaf about to expire is minted again and replaced in the cache. */
static void
test_cache_renews_expiring_leaf(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	X509 *old = certforge_mint(fx->cf, "renew.example.test", now - 7 * 86400 + 3600);
	X509 *peer, *cached;
	char key[128];

	assert_non_null(old);
	snprintf(key, sizeof(key), "%s/renew.example.test", certforge_ca_id(fx->cf));
	certcache_put(fx->cc, key, old);
	peer = handshake_peer(fx, "renew.example.test");
	assert_int_not_equal(X509_cmp(peer, old), 0);
	assert_true(ASN1_TIME_cmp_time_t(X509_get0_notAfter(peer), (time_t)(now + 86400)) > 0);
	cached = certcache_get(fx->cc, key);
	assert_int_equal(X509_cmp(cached, peer), 0);
	X509_free(cached);
	X509_free(peer);
	X509_free(old);
}

static void
test_alpn_h2_only(void **state)
{
	static const unsigned char h2[] = "\x02h2";
	struct fx *fx = *state;
	SSL *c = tls_client_new(fx->cctx, "api.example.test"), *s = SSL_new(fx->sctx);
	const unsigned char *alpn;
	unsigned int alpnlen = 99;

	assert_int_equal(SSL_set_alpn_protos(c, h2, sizeof(h2) - 1), 0);
	assert_int_equal(handshake(c, s), 0);
	SSL_get0_alpn_selected(c, &alpn, &alpnlen);
	assert_int_equal(alpnlen, 0);
	SSL_free(c);
	SSL_free(s);
}

/* Handshake for host (TLS 1.2 only if tls12); 1 if the session was resumed. */
static int
resumed(struct fx *fx, const char *host, int tls12, int clean)
{
	SSL *c = tls_client_new(fx->cctx, host), *s = SSL_new(fx->sctx);
	int r;

	if (tls12)
		assert_int_equal(SSL_set_max_proto_version(c, TLS1_2_VERSION), 1);
	assert_int_equal(handshake(c, s), 0);
	assert_int_equal(SSL_version(c), tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
	if (!tls12)
		client_drain(c);
	r = SSL_session_reused(c);
	assert_int_equal(SSL_session_reused(s), r);
	if (clean)
		assert_int_equal(SSL_shutdown(c), 0);	/* close_notify sent */
	SSL_free(c);
	SSL_free(s);
	return r;
}

static void
test_client_session_resumed(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(resumed(fx, "resume.example.test", 0, 1), 0);
	assert_int_equal(resumed(fx, "resume.example.test", 0, 1), 1);
	assert_int_equal(resumed(fx, "fresh.example.test", 0, 1), 0);	/* per host */
}

/* Upstreams often close without close_notify; their sessions still resume. */
static void
test_client_session_resumed_after_dirty_close(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(resumed(fx, "dirty13.example.test", 0, 0), 0);
	assert_int_equal(resumed(fx, "dirty13.example.test", 0, 0), 1);
	assert_int_equal(resumed(fx, "dirty13.example.test", 0, 0), 1);
	assert_int_equal(resumed(fx, "dirty12.example.test", 1, 0), 0);
	assert_int_equal(resumed(fx, "dirty12.example.test", 1, 0), 1);
	assert_int_equal(resumed(fx, "dirty12.example.test", 1, 0), 1);
}

static void
test_sni_parse(void **state)
{
	static const unsigned char ok[] = {0, 9, 0, 0, 6, 'A', '.', 'T', 'e', 's', 't'};
	static const unsigned char other_type_first[] = {0, 9, 7, 0, 1, 'x', 0, 0, 2, 'a',
	    'b'};
	static const struct { const unsigned char *b; size_t n; } bad[] = {
		{(const unsigned char *)"", 0},
		{(const unsigned char *)"\0", 1},
		{(const unsigned char *)"\0\0", 2},			/* empty list */
		{(const unsigned char *)"\0\5\0\0\1a", 6},		/* list length too long */
		{(const unsigned char *)"\0\3\0\0\1a", 6},		/* list length too short */
		{(const unsigned char *)"\0\4\0\0\2a", 6},		/* name overruns */
		{(const unsigned char *)"\0\3\0\0\0", 5},		/* empty name */
		{(const unsigned char *)"\0\5\0\0\2a\0", 7},		/* NUL inside */
		{(const unsigned char *)"\0\10\0\0\1a\0\0\1b", 10},	/* two host_names */
		{(const unsigned char *)"\0\4\1\0\1a", 6},		/* no host_name */
		{(const unsigned char *)"\0\2\0\0", 4},			/* truncated entry */
	};
	unsigned char big[2 + 3 + 300];
	char out[TLS_NAME_MAX];

	(void)state;
	assert_int_equal(tls_sni_parse(ok, sizeof(ok), out, sizeof(out)), 0);
	assert_string_equal(out, "a.test");
	assert_int_equal(tls_sni_parse(other_type_first, sizeof(other_type_first), out,
	    sizeof(out)), 0);
	assert_string_equal(out, "ab");
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++)
		assert_int_equal(tls_sni_parse(bad[i].b, bad[i].n, out, sizeof(out)), -1);
	big[0] = 303 >> 8;
	big[1] = 303 & 0xff;
	big[2] = 0;
	big[3] = 300 >> 8;
	big[4] = 300 & 0xff;
	memset(big + 5, 'a', 300);
	assert_int_equal(tls_sni_parse(big, sizeof(big), out, sizeof(out)), -1);	/* too long */
}

static void
test_fallback_and_client_bad_names(void **state)
{
	struct fx *fx = *state;
	SSL *s = SSL_new(fx->sctx);
	char longname[300];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(tls_server_set_fallback_name(s, ""), -1);
	assert_int_equal(tls_server_set_fallback_name(s, "[]"), -1);
	assert_int_equal(tls_server_set_fallback_name(s, longname), -1);
	assert_null(tls_client_new(fx->cctx, ""));
	assert_null(tls_client_new(fx->cctx, longname));
	ERR_clear_error();
	SSL_free(s);
}

static void
test_client_ctx_bad_ca_file(void **state)
{
	struct fx *fx = *state;
	char path[128], err[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.pem", fx->dir);
	assert_null(tls_client_ctx_new(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_int_equal(ERR_peek_error(), 0);		/* drained into err */
}

static void
test_openssl_error(void **state)
{
	char buf[256], tiny[8];

	(void)state;
	tls_openssl_error(buf, sizeof(buf));
	assert_string_equal(buf, "no OpenSSL error reported");
	ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
	ERR_raise(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
	tls_openssl_error(buf, sizeof(buf));
	assert_non_null(strstr(buf, "certificate verify failed"));
	assert_non_null(strstr(buf, "; "));
	assert_int_equal(ERR_peek_error(), 0);
	ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
	tls_openssl_error(tiny, sizeof(tiny));		/* truncates, still drains */
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_int_equal(ERR_peek_error(), 0);
}

/* OpenSSL's SHA-256 for the core gives libsodium's hashes; an unfinished digest is
 * released without a leak (ASan), and a used one starts over. */
static void
test_digest_ops(void **state)
{
	static uint8_t buf[200000];
	uint8_t a[DIGEST_SHA256_BYTES], b[DIGEST_SHA256_BYTES];
	digest_sha256_t d;

	(void)state;
	randombytes_buf(buf, sizeof(buf));
	crypto_hash_sha256(a, buf, sizeof(buf));
	digest_sha256_install(tls_digest_ops());
	memset(&d, 0, sizeof(d));
	assert_int_equal(digest_sha256_init(&d), 0);
	digest_sha256_update(&d, "junk", 4);
	assert_int_equal(digest_sha256_init(&d), 0);
	digest_sha256_update(&d, buf, 1000);
	digest_sha256_update(&d, buf + 1000, sizeof(buf) - 1000);
	digest_sha256_final(&d, b);
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(digest_sha256_init(&d), 0);
	digest_sha256_update(&d, buf, 10);
	digest_sha256_release(&d);
	digest_sha256_release(&d);
	assert_int_equal(digest_sha256(buf, sizeof(buf), b), 0);
	assert_memory_equal(a, b, sizeof(a));
	digest_sha256_install(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_ops),
		cmocka_unit_test(test_sni_handshake),
		cmocka_unit_test(test_hostname_mismatch),
		cmocka_unit_test(test_no_sni_fallback),
		cmocka_unit_test(test_ip_literals),
		cmocka_unit_test(test_no_sni_no_fallback),
		cmocka_unit_test(test_untrusted_ca),
		cmocka_unit_test(test_cache_hit),
		cmocka_unit_test(test_cache_renews_expiring_leaf),
		cmocka_unit_test(test_alpn_h2_only),
		cmocka_unit_test(test_client_session_resumed),
		cmocka_unit_test(test_client_session_resumed_after_dirty_close),
		cmocka_unit_test(test_sni_parse),
		cmocka_unit_test(test_fallback_and_client_bad_names),
		cmocka_unit_test(test_client_ctx_bad_ca_file),
		cmocka_unit_test(test_openssl_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
