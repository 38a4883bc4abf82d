/*
 * test_stsclient.c — the AssumeRole client against a TLS "STS" on this test's own event
 * loop (an interception server context mints its certificate for whatever name is
 * asked, under a CA the client trusts): credentials reach the cache (Content-Length,
 * chunked, close-delimited answers), STS's error code is the failure, and so are a
 * malformed or oversized answer, an egress denial, an address not allowed, an untrusted
 * certificate; an abandoned fetch frees cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "certcache.h"
#include "certforge.h"
#include "policy.h"
#include "stats.h"
#include "stscache.h"
#include "stsclient.h"
#include "tls.h"

#define AKID	"ASIAIOSFODNN7EXAMPLE"
#define SECRET	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
#define TOKEN	"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW="
#define CREDS_XML "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">" \
	"<AssumeRoleResult><Credentials><AccessKeyId>" AKID "</AccessKeyId><SecretAccessKey>" \
	SECRET "</SecretAccessKey><SessionToken>" TOKEN "</SessionToken><Expiration>" \
	"2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>" \
	"</AssumeRoleResponse>"
#define ERROR_XML "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>" \
	"<Message>User AKIAREALKEY000000001 is not authorized</Message></Error>" \
	"</ErrorResponse>"

/* The policy: one credential assuming a role at sts.amazonaws.com, which resolves to
 * 127.0.0.1 (allowed unless the egress rules below say otherwise). */
#define POLICY(egress) "{\"upstream\": {\"resolve\": {\"sts.amazonaws.com\": \"127.0.0.1\"}}," \
	" \"egress\": " egress ", \"credentials\": {\"c\": {\"secret\": {\"value\": " \
	"\"realSecretAccessKey/0123456789abcdefghij\"}, \"inject\": {\"type\": \"aws_sigv4\"}," \
	" \"hosts\": [\"*.amazonaws.com\"], \"aws\": {\"access_key_id\": {\"value\": " \
	"\"AKIAREALKEY000000001\"}, \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": " \
	"\"arn:aws:iam::123456789012:role/r\"}}}}}"
#define ALLOWED	"{\"default\": \"allow\", \"allow_private\": [\"127.0.0.1/32\"]}"

struct fx {
	char dir[64], ca_file[96], other_ca_file[96];
	EVP_PKEY *ca_key, *other_key;
	X509 *ca, *other;
	certforge_t *cf;
	certcache_t *cc;
	SSL_CTX *sctx, *cctx, *cctx_other;
	struct event_base *base;
	struct evconnlistener *lis;
	uint16_t port;
	stscache_t *cache;
	stsclient_t *cl;
	policy_t *pol;
	const char *answer;		/* what the server writes back, whole */
	size_t answer_len;
	bool close_after;		/* then closes (close-delimited answers) */
	char request[8192];		/* what it received */
	size_t request_len;
	unsigned dones;
	uint64_t now_ms;		/* the cache's clock: past the retry window each time */
	struct bufferevent *srv[16];	/* the server's connections still open */
};

static struct fx F;

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

static X509 *
make_ca(EVP_PKEY **keyp, const char *cn, const char *path)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	time_t now = time(NULL);
	FILE *f;

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
	    X509_sign(x, key, EVP_sha256()) <= 0 || (f = fopen(path, "w")) == NULL) {
		X509_free(x);
		EVP_PKEY_free(key);
		return NULL;
	}
	PEM_write_X509(f, x);
	fclose(f);
	*keyp = key;
	return x;
}

/* --- the "STS" ------------------------------------------------------------------------ */

static void
srv_free(struct bufferevent *bev)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(F.srv); i++)
		if (F.srv[i] == bev)
			F.srv[i] = NULL;
	bufferevent_free(bev);
}

static void srv_write_cb(struct bufferevent *bev, void *arg);
static void srv_event_cb(struct bufferevent *bev, short what, void *arg);

static void
srv_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	const char *end, *cl;

	(void)arg;
	if (F.request_len + n >= sizeof(F.request))
		n = sizeof(F.request) - 1 - F.request_len;
	evbuffer_remove(in, F.request + F.request_len, n);
	F.request_len += n;
	F.request[F.request_len] = '\0';
	if ((end = strstr(F.request, "\r\n\r\n")) == NULL ||
	    (cl = strstr(F.request, "Content-Length: ")) == NULL ||
	    (size_t)(end + 4 - F.request) + strtoul(cl + 16, NULL, 10) > F.request_len)
		return;		/* not whole yet */
	bufferevent_write(bev, F.answer, F.answer_len);
	if (F.close_after)	/* close once it is written */
		bufferevent_setcb(bev, NULL, srv_write_cb, srv_event_cb, NULL);
}

static void
srv_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		srv_free(bev);
}

static void
srv_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		srv_free(bev);
}

static void
srv_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
    void *arg)
{
	struct bufferevent *bev = bufferevent_openssl_socket_new(F.base, fd, SSL_new(F.sctx),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);

	(void)l;
	(void)sa;
	(void)len;
	(void)arg;
	assert_non_null(bev);
	for (size_t i = 0; i < SG_ARRAY_LEN(F.srv); i++)
		if (F.srv[i] == NULL) {
			F.srv[i] = bev;
			break;
		}
	bufferevent_setcb(bev, srv_read_cb, NULL, srv_event_cb, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* --- fixture --------------------------------------------------------------------------- */

static void
done_cb(void *arg)
{
	(void)arg;
	F.dones++;
	event_base_loopbreak(F.base);
}

static policy_t *
load(const char *json)
{
	policy_errors_t errs;
	policy_t *p = policy_load_buffer("/tmp/sg-stsclient.json", json, strlen(json), &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	assert_non_null(p);
	return p;
}

static int
setup(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char err[256];

	(void)state;
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/sg-stsclient-XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	snprintf(F.ca_file, sizeof(F.ca_file), "%s/ca.pem", F.dir);
	snprintf(F.other_ca_file, sizeof(F.other_ca_file), "%s/other.pem", F.dir);
	F.ca = make_ca(&F.ca_key, "sts test CA", F.ca_file);
	F.other = make_ca(&F.other_key, "another CA", F.other_ca_file);
	F.cf = F.ca ? certforge_new(F.ca, F.ca_key, err, sizeof(err)) : NULL;
	F.cc = certcache_new(8);
	if (F.cf == NULL || F.cc == NULL || F.other == NULL ||
	    (F.sctx = tls_server_ctx_new(F.cf, F.cc, err, sizeof(err))) == NULL ||
	    (F.cctx = tls_client_ctx_new(F.ca_file, err, sizeof(err))) == NULL ||
	    (F.cctx_other = tls_client_ctx_new(F.other_ca_file, err, sizeof(err))) == NULL ||
	    (F.base = event_base_new()) == NULL || (F.cache = stscache_new()) == NULL)
		return -1;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	F.lis = evconnlistener_new_bind(F.base, srv_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin, sizeof(sin));
	if (F.lis == NULL)
		return -1;
	{
		struct sockaddr_in b;
		socklen_t bl = sizeof(b);

		getsockname(evconnlistener_get_fd(F.lis), (struct sockaddr *)&b, &bl);
		F.port = ntohs(b.sin_port);
	}
	F.cl = stsclient_new(F.base, F.cctx, F.cache, F.port, done_cb, NULL, err, sizeof(err));
	return F.cl != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	stsclient_free(F.cl);
	for (size_t i = 0; i < SG_ARRAY_LEN(F.srv); i++)
		if (F.srv[i] != NULL)
			bufferevent_free(F.srv[i]);
	if (F.pol)
		policy_unref(F.pol);
	evconnlistener_free(F.lis);
	event_base_free(F.base);
	stscache_free(F.cache);
	SSL_CTX_free(F.sctx);
	SSL_CTX_free(F.cctx);
	SSL_CTX_free(F.cctx_other);
	certcache_free(F.cc);
	certforge_free(F.cf);
	X509_free(F.ca);
	X509_free(F.other);
	EVP_PKEY_free(F.ca_key);
	EVP_PKEY_free(F.other_key);
	unlink(F.ca_file);
	unlink(F.other_ca_file);
	rmdir(F.dir);
	return 0;
}

static void
safety_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fail_msg("no fetch ended within 8 s");
}

/* Fetch for credential "c" of policy json with the server answering answer; the cache's
 * verdict for a waiter of that fetch. */
static void
fetch(const char *json, const char *answer, bool close_after, stscache_look_t *out)
{
	struct timeval tv = {8, 0};
	struct event *safety = evtimer_new(F.base, safety_cb, NULL);
	uint8_t key[STSCACHE_KEY_LEN];
	stscache_look_t l;
	const policy_credential_t *c;

	F.pol = load(json);
	c = policy_credential_find(F.pol, "c");
	F.answer = answer;
	F.answer_len = strlen(answer);
	F.close_after = close_after;
	F.now_ms += 10 * STSCACHE_RETRY_MS;
	stscache_key(F.cache, c, key);
	stscache_get(F.cache, key, time(NULL), F.now_ms, 0, &l);
	assert_true(l.fetch);
	stsclient_fetch(F.cl, F.pol, c, key, l.seq, false);
	evtimer_add(safety, &tv);
	event_base_dispatch(F.base);
	event_free(safety);
	assert_int_equal(F.dones, 1);
	assert_int_equal(stsclient_pending(F.cl), 0);
	stscache_get(F.cache, key, time(NULL), F.now_ms, l.seq, out);
}

static char *
http_answer(const char *status, const char *extra, const char *body)
{
	static char buf[200000];

	snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nContent-Type: text/xml\r\n%s\r\n%s", status,
	    extra, body);
	return buf;
}

static void
assert_credentials(const stscache_look_t *l)
{
	assert_int_equal(l->state, STSCACHE_READY);
	assert_string_equal(l->cred->id.access_key_id, AKID);
	assert_string_equal(l->cred->id.secret, SECRET);
	assert_string_equal(l->cred->id.session_token, TOKEN);
	assert_int_equal(l->cred->expiration, 4070908800);
	stscache_cred_unref(l->cred);
}

/* --- tests ------------------------------------------------------------------------------ */

static void
test_credentials_content_length(void **state)
{
	char extra[64];
	stscache_look_t l;
	uint64_t fetches = STATS_GET(assume_role_fetches);

	(void)state;
	snprintf(extra, sizeof(extra), "Content-Length: %zu\r\n", strlen(CREDS_XML));
	fetch(POLICY(ALLOWED), http_answer("200 OK", extra, CREDS_XML), false, &l);
	assert_credentials(&l);
	assert_int_equal(STATS_GET(assume_role_fetches), fetches + 1);
	/* what STS got: the signed AssumeRole for the role, over TLS with the right name */
	assert_memory_equal(F.request, "POST / HTTP/1.1\r\nHost: sts.amazonaws.com\r\n", 42);
	assert_non_null(strstr(F.request, "Action=AssumeRole&"));
	assert_non_null(strstr(F.request, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"));
	assert_non_null(strstr(F.request, "Credential=AKIAREALKEY000000001/"));
	assert_null(strstr(F.request, "realSecretAccessKey"));
}

static void
test_credentials_chunked(void **state)
{
	char body[4096];
	stscache_look_t l;

	(void)state;
	snprintf(body, sizeof(body), "10\r\n%.16s\r\n%zx\r\n%s\r\n0\r\n\r\n", CREDS_XML,
	    strlen(CREDS_XML) - 16, CREDS_XML + 16);
	fetch(POLICY(ALLOWED), http_answer("200 OK", "Transfer-Encoding: chunked\r\n", body),
	    false, &l);
	assert_credentials(&l);
}

static void
test_credentials_close_delimited(void **state)
{
	stscache_look_t l;

	(void)state;
	fetch(POLICY(ALLOWED), http_answer("200 OK", "Connection: close\r\n", CREDS_XML), true,
	    &l);
	assert_credentials(&l);
}

static void
test_sts_error_code(void **state)
{
	char extra[64];
	stscache_look_t l;
	uint64_t failures = STATS_GET(assume_role_failures);

	(void)state;
	snprintf(extra, sizeof(extra), "Content-Length: %zu\r\n", strlen(ERROR_XML));
	fetch(POLICY(ALLOWED), http_answer("403 Forbidden", extra, ERROR_XML), false, &l);
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "AccessDenied");
	assert_int_equal(STATS_GET(assume_role_failures), failures + 1);
}

static void
test_malformed_and_oversized(void **state)
{
	static char big[SG_STS_MAX_RESPONSE + 100];
	stscache_look_t l;

	(void)state;
	fetch(POLICY(ALLOWED), http_answer("200 OK", "Content-Length: 5\r\n", "hello"), false,
	    &l);
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "malformed_answer");
	policy_unref(F.pol);
	F.pol = NULL;
	F.dones = 0;
	F.request_len = 0;
	fetch(POLICY(ALLOWED), http_answer("503 Slow Down", "Content-Length: 4\r\n", "busy"),
	    false, &l);
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "HTTP 503");
	policy_unref(F.pol);
	F.pol = NULL;
	F.dones = 0;
	F.request_len = 0;
	memset(big, 'x', sizeof(big) - 1);
	fetch(POLICY(ALLOWED), http_answer("200 OK", "Connection: close\r\n", big), true, &l);
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "malformed_answer");
}

static void
test_egress_rules(void **state)
{
	stscache_look_t l;

	(void)state;
	fetch(POLICY("{\"default\": \"allow\", \"allow_private\": [\"127.0.0.1/32\"], "
	    "\"deny_hosts\": [\"sts.amazonaws.com\"]}"), "", false, &l);
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "egress_denied");
	assert_int_equal(F.request_len, 0);
	policy_unref(F.pol);
	F.pol = NULL;
	F.dones = 0;
	fetch(POLICY("{\"default\": \"allow\"}"), "", false, &l);	/* no allow_private */
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "address_denied");
	assert_int_equal(F.request_len, 0);
}

static void
test_untrusted_certificate(void **state)
{
	char err[256];
	stscache_look_t l;

	(void)state;
	stsclient_free(F.cl);
	F.cl = stsclient_new(F.base, F.cctx_other, F.cache, F.port, done_cb, NULL, err,
	    sizeof(err));
	assert_non_null(F.cl);
	fetch(POLICY(ALLOWED), "", false, &l);
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "upstream_tls");
	assert_int_equal(F.request_len, 0);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* A fetch under way when the client goes: abandoned, freed, nothing reported. */
static void
test_free_with_fetch_in_flight(void **state)
{
	struct timeval tv = {0, 200000};
	struct event *stop = evtimer_new(F.base, stop_cb, F.base);
	uint8_t key[STSCACHE_KEY_LEN];
	stscache_look_t l;
	const policy_credential_t *c;

	(void)state;
	F.pol = load(POLICY(ALLOWED));
	c = policy_credential_find(F.pol, "c");
	F.answer = "";		/* the server never answers */
	stscache_key(F.cache, c, key);
	stscache_get(F.cache, key, time(NULL), 1000, 0, &l);
	assert_true(l.fetch);
	stsclient_fetch(F.cl, F.pol, c, key, l.seq, false);
	evtimer_add(stop, &tv);
	event_base_dispatch(F.base);
	event_free(stop);
	assert_int_equal(stsclient_pending(F.cl), 1);
	assert_int_equal(F.dones, 0);
	stsclient_free(F.cl);
	F.cl = NULL;
	stscache_get(F.cache, key, time(NULL), 1000, l.seq, &l);
	assert_int_equal(l.state, STSCACHE_WAIT);	/* nothing reported */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_credentials_content_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_close_delimited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sts_error_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_and_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_egress_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_certificate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_fetch_in_flight, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
