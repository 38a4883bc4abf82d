/*
 * test_mintreq.c — token requests as wire bytes: client_credentials with HTTP Basic
 * (form-urlencoded id and secret) and in the form, scope/audience/resource/params and a
 * handle's narrowing, refresh_token (a public client: client_id in the form), the GitHub
 * App JWT's claims (iat 60 s back, exp at most 10 minutes on, iss) and its narrowed JSON
 * body, the jwt_bearer assertion's claims, and refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "jwt.h"
#include "mintreq.h"
#include "secmem.h"

#define NOW	1796558400

static char *names[] = {"tenant"}, *values[] = {"t 1"};

static policy_mint_t
mint(enum policy_mint_type type)
{
	return (policy_mint_t){.type = type, .token_url = "https://auth.test/oauth/token",
	    .host = "auth.test", .port = 443, .path = "/oauth/token", .client_id = "app:1",
	    .secret = "s3cr&t=", .secret_len = 7};
}

static char *
build(const policy_mint_t *m, const mintreq_narrow_t *n, const char *refresh)
{
	char *w = NULL;
	size_t len = 0;

	assert_int_equal(mintreq_build(m, n, refresh, NOW, &w, &len), MINTREQ_OK);
	assert_int_equal(strlen(w), len);
	return w;
}

/* The body after the blank line. */
static const char *
body_of(const char *w)
{
	const char *b = strstr(w, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

static void
test_client_credentials_basic(void **state)
{
	policy_mint_t m = mint(MINT_CLIENT_CREDENTIALS);
	char *w;

	(void)state;
	m.scope = "read write";
	m.resource = "https://api.test/";
	m.param_names = (policy_strlist_t){1, names};
	m.param_values = (policy_strlist_t){1, values};
	w = build(&m, NULL, NULL);
	assert_non_null(strstr(w, "POST /oauth/token HTTP/1.1\r\nHost: auth.test\r\n"));
	/* base64("app%3A1:s3cr%26t%3D") */
	assert_non_null(strstr(w, "\r\nAuthorization: Basic YXBwJTNBMTpzM2NyJTI2dCUzRA==\r\n"));
	assert_non_null(strstr(w, "Content-Type: application/x-www-form-urlencoded\r\n"));
	assert_non_null(strstr(w, "Connection: close\r\n"));
	assert_string_equal(body_of(w), "grant_type=client_credentials&scope=read%20write&"
	    "resource=https%3A%2F%2Fapi.test%2F&tenant=t%201");
	secmem_wipe_free(w);
}

static void
test_client_credentials_body_and_narrowing(void **state)
{
	policy_mint_t m = mint(MINT_CLIENT_CREDENTIALS);
	mintreq_narrow_t n = {.scope = "read", .audience = "api://x"};
	char *w;

	(void)state;
	m.auth_body = true;
	m.scope = "read write";
	m.port = 8443;
	w = build(&m, &n, NULL);
	assert_non_null(strstr(w, "Host: auth.test:8443\r\n"));
	assert_null(strstr(w, "Authorization:"));
	assert_string_equal(body_of(w), "grant_type=client_credentials&scope=read&"
	    "audience=api%3A%2F%2Fx&client_id=app%3A1&client_secret=s3cr%26t%3D");
	secmem_wipe_free(w);
}

static void
test_refresh_token(void **state)
{
	policy_mint_t m = mint(MINT_REFRESH_TOKEN);
	char *w = NULL;
	size_t len;

	(void)state;
	assert_int_equal(mintreq_build(&m, NULL, NULL, NOW, &w, &len), MINTREQ_E_ARG);
	w = build(&m, NULL, "rt/1+2");
	assert_null(strstr(w, "Authorization:"));	/* no client secret: a public client */
	assert_string_equal(body_of(w), "grant_type=refresh_token&refresh_token=rt%2F1%2B2&"
	    "client_id=app%3A1");
	secmem_wipe_free(w);
	m.client_secret = "cs";
	m.client_secret_len = 2;
	w = build(&m, NULL, "rt");
	assert_non_null(strstr(w, "Authorization: Basic "));
	secmem_wipe_free(w);
}

/* A stand-in RS256 signer: 3 fixed bytes. */
static int
fake_rs256(const char *alg, const char *key, size_t key_len, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t *siglen)
{
	(void)alg;
	(void)key;
	(void)key_len;
	(void)msg;
	(void)len;
	memcpy(sig, "sig", 3);
	*siglen = 3;
	return 0;
}

/* The claims of the JWT that starts at p (ends at a blank, '&' or CR). */
static json_t *
jwt_claims(const char *p)
{
	const char *a = strchr(p, '.') + 1, *b = strchr(a, '.');
	unsigned char raw[1024];
	size_t n = 0;

	assert_int_equal(sodium_base642bin(raw, sizeof(raw), a, (size_t)(b - a), NULL, &n,
	    NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
	return json_loadb((const char *)raw, n, 0, NULL);
}

static void
test_github_app(void **state)
{
	policy_mint_t m = mint(MINT_GITHUB_APP);
	const char *repos[] = {"octo-org/hello-world"}, *perms[] = {"contents:read"};
	mintreq_narrow_t n = {.repos = repos, .nrepos = 1, .perms = perms, .nperms = 1};
	json_t *c;
	char *w;

	(void)state;
	m.client_id = "123456";
	m.path = "/app/installations/42/access_tokens";
	jwt_signer_install(NULL);
	assert_int_equal(mintreq_build(&m, NULL, NULL, NOW, &w, &(size_t){0}), MINTREQ_E_SIGN);
	jwt_signer_install(fake_rs256);
	w = build(&m, &n, NULL);
	assert_non_null(strstr(w, "POST /app/installations/42/access_tokens HTTP/1.1\r\n"));
	assert_non_null(strstr(w, "X-GitHub-Api-Version: 2022-11-28\r\n"));
	c = jwt_claims(strstr(w, "Authorization: Bearer ") + 22);
	assert_non_null(c);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW - 60);
	assert_true(json_integer_value(json_object_get(c, "exp")) <= NOW + 600);
	assert_true(json_integer_value(json_object_get(c, "exp")) > NOW);
	assert_string_equal(json_string_value(json_object_get(c, "iss")), "123456");
	json_decref(c);
	assert_string_equal(body_of(w), "{\"repositories\":[\"hello-world\"],"
	    "\"permissions\":{\"contents\":\"read\"}}");
	secmem_wipe_free(w);
	w = build(&m, NULL, NULL);
	assert_string_equal(body_of(w), "{}");
	secmem_wipe_free(w);
	jwt_signer_install(NULL);
}

static void
test_jwt_bearer(void **state)
{
	policy_mint_t m = mint(MINT_JWT_BEARER);
	json_t *c;
	char *w;

	(void)state;
	m.client_id = "sa@p.iam.gserviceaccount.com";
	m.scope = "https://www.googleapis.com/auth/cloud-platform";
	jwt_signer_install(fake_rs256);
	w = build(&m, NULL, NULL);
	assert_non_null(strstr(body_of(w), "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
	    "grant-type%3Ajwt-bearer&assertion="));
	c = jwt_claims(strstr(w, "assertion=") + 10);
	assert_string_equal(json_string_value(json_object_get(c, "iss")), m.client_id);
	assert_string_equal(json_string_value(json_object_get(c, "aud")), m.token_url);
	assert_string_equal(json_string_value(json_object_get(c, "scope")), m.scope);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 3600);
	json_decref(c);
	secmem_wipe_free(w);
	jwt_signer_install(NULL);
}

static void
test_token_exchange(void **state)
{
	policy_mint_t m = mint(MINT_TOKEN_EXCHANGE);
	char *w;

	(void)state;
	m.secret = "subj/tok";
	m.secret_len = 8;
	m.subject_token_type = "urn:ietf:params:oauth:token-type:jwt";
	m.audience = "api";
	w = build(&m, NULL, NULL);
	assert_null(strstr(w, "Authorization:"));	/* no client secret: a public client */
	assert_string_equal(body_of(w), "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type"
	    "%3Atoken-exchange&subject_token=subj%2Ftok&subject_token_type=urn%3Aietf%3A"
	    "params%3Aoauth%3Atoken-type%3Ajwt&audience=api&client_id=app%3A1");
	secmem_wipe_free(w);
	m.client_secret = "cs";
	m.client_secret_len = 2;
	m.requested_token_type = "urn:ietf:params:oauth:token-type:access_token";
	w = build(&m, NULL, NULL);
	assert_non_null(strstr(w, "Authorization: Basic "));
	assert_non_null(strstr(body_of(w), "&requested_token_type=urn%3A"));
	secmem_wipe_free(w);
}

static void
test_narrow_check(void **state)
{
	policy_mint_t cc = mint(MINT_CLIENT_CREDENTIALS), gh = mint(MINT_GITHUB_APP);
	char *repos[] = {"octo-org/hello-world"}, *bad_repo[] = {"hello-world"};
	char *perms[] = {"contents:read"}, *bad_perm[] = {"contents:own"};
	policy_strlist_t none = {0, NULL}, r = {1, repos}, br = {1, bad_repo};
	policy_strlist_t p = {1, perms}, bp = {1, bad_perm};
	const char *why;

	(void)state;
	cc.scope = "read write  admin";
	assert_int_equal(mintreq_narrow_check(&cc, "read", &none, &none, &why), 0);
	assert_int_equal(mintreq_narrow_check(&cc, "admin read", &none, &none, &why), 0);
	assert_int_equal(mintreq_narrow_check(&cc, "read delete", &none, &none, &why), -1);
	assert_int_equal(mintreq_narrow_check(&cc, "rea", &none, &none, &why), -1);
	assert_int_equal(mintreq_narrow_check(&cc, " ", &none, &none, &why), -1);
	assert_int_equal(mintreq_narrow_check(&cc, NULL, &r, &none, &why), -1);
	assert_int_equal(mintreq_narrow_check(&gh, "read", &none, &none, &why), -1);
	assert_int_equal(mintreq_narrow_check(&gh, NULL, &r, &p, &why), 0);
	assert_int_equal(mintreq_narrow_check(&gh, NULL, &br, &p, &why), -1);
	assert_string_equal(why, "a repository is not owner/name");
	assert_int_equal(mintreq_narrow_check(&gh, NULL, &r, &bp, &why), -1);
	cc.scope = NULL;
	assert_int_equal(mintreq_narrow_check(&cc, "read", &none, &none, &why), -1);
}

/* An audience per handle: the credential's own or one of its audiences, nothing else. */
static void
test_audience_check(void **state)
{
	policy_mint_t cc = mint(MINT_CLIENT_CREDENTIALS), gh = mint(MINT_GITHUB_APP);
	char *auds[] = {"api://a", "api://b"};
	const char *why;

	(void)state;
	assert_int_equal(mintreq_audience_check(&cc, NULL, &why), 0);
	assert_int_equal(mintreq_audience_check(&cc, "api://a", &why), -1);	/* none named */
	assert_string_equal(why, "this credential names no audience to narrow");
	cc.audience = "api://default";
	assert_int_equal(mintreq_audience_check(&cc, "api://default", &why), 0);
	assert_int_equal(mintreq_audience_check(&cc, "api://a", &why), -1);
	cc.audiences = (policy_strlist_t){2, auds};
	assert_int_equal(mintreq_audience_check(&cc, "api://a", &why), 0);
	assert_int_equal(mintreq_audience_check(&cc, "api://b", &why), 0);
	assert_int_equal(mintreq_audience_check(&cc, "api://", &why), -1);
	assert_int_equal(mintreq_audience_check(&cc, "api://bb", &why), -1);
	assert_non_null(strstr(why, "not one the credential allows"));
	gh.audiences = (policy_strlist_t){2, auds};
	assert_int_equal(mintreq_audience_check(&gh, "api://a", &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_credentials_basic),
		cmocka_unit_test(test_client_credentials_body_and_narrowing),
		cmocka_unit_test(test_refresh_token),
		cmocka_unit_test(test_github_app),
		cmocka_unit_test(test_jwt_bearer),
		cmocka_unit_test(test_token_exchange),
		cmocka_unit_test(test_narrow_check),
		cmocka_unit_test(test_audience_check),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
