/* test_metadata.c — session tokens, TTL header bounds, forwarding headers, env rendering,
 * the AWS variables and credentials answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "metadata.h"
#include "secmem.h"

#define NOW	1700000000LL

static uint8_t key[METADATA_TOKEN_KEY_LEN];

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	return 0;
}

static void
test_token_good(void **state)
{
	char tok[METADATA_TOKEN_BUF];

	(void)state;
	metadata_token_mint(key, "sb-1", NOW + 60, tok);
	assert_int_equal(strlen(tok), METADATA_TOKEN_TEXT_LEN);
	assert_memory_equal(tok, METADATA_TOKEN_PREFIX, strlen(METADATA_TOKEN_PREFIX));
	assert_int_equal(metadata_token_verify(key, "sb-1", tok, NOW), METADATA_TOKEN_OK);
	assert_int_equal(metadata_token_verify(key, "sb-1", tok, NOW + 59), METADATA_TOKEN_OK);
}

static void
test_token_expired(void **state)
{
	char tok[METADATA_TOKEN_BUF];

	(void)state;
	metadata_token_mint(key, "sb-1", NOW + 60, tok);
	assert_int_equal(metadata_token_verify(key, "sb-1", tok, NOW + 60),
	    METADATA_TOKEN_EXPIRED);
	assert_int_equal(metadata_token_verify(key, "sb-1", tok, NOW + 100000),
	    METADATA_TOKEN_EXPIRED);
	/* an old expiry under a wrong MAC is BAD, not EXPIRED: the MAC is checked first */
	metadata_token_mint(key, "sb-2", NOW - 1, tok);
	assert_int_equal(metadata_token_verify(key, "sb-1", tok, NOW), METADATA_TOKEN_BAD);
}

static void
test_token_other_sandbox_and_key(void **state)
{
	char tok[METADATA_TOKEN_BUF];
	uint8_t other[METADATA_TOKEN_KEY_LEN];

	(void)state;
	metadata_token_mint(key, "sb-1", NOW + 60, tok);
	assert_int_equal(metadata_token_verify(key, "sb-2", tok, NOW), METADATA_TOKEN_BAD);
	assert_int_equal(metadata_token_verify(key, "sb-", tok, NOW), METADATA_TOKEN_BAD);
	assert_int_equal(metadata_token_verify(key, "sb-10", tok, NOW), METADATA_TOKEN_BAD);
	memcpy(other, key, sizeof(other));
	other[0] ^= 1;
	assert_int_equal(metadata_token_verify(other, "sb-1", tok, NOW), METADATA_TOKEN_BAD);
}

static void
test_token_tampered(void **state)
{
	char tok[METADATA_TOKEN_BUF], t2[METADATA_TOKEN_BUF];
	size_t plen = strlen(METADATA_TOKEN_PREFIX);

	(void)state;
	metadata_token_mint(key, "sb-1", NOW + 60, tok);
	/* every character flipped to another base64url character fails */
	for (size_t i = plen; i < METADATA_TOKEN_TEXT_LEN; i++) {
		memcpy(t2, tok, sizeof(t2));
		t2[i] = t2[i] == 'A' ? 'B' : 'A';
		assert_int_equal(metadata_token_verify(key, "sb-1", t2, NOW),
		    METADATA_TOKEN_BAD);
	}
	/* a later expiry with the old MAC (extending one's own token) fails */
	memcpy(t2, tok, sizeof(t2));
	t2[plen + 9] = t2[plen + 9] == 'z' ? 'y' : 'z';
	assert_int_equal(metadata_token_verify(key, "sb-1", t2, NOW), METADATA_TOKEN_BAD);
}

static void
test_token_garbage(void **state)
{
	char tok[METADATA_TOKEN_BUF], t2[METADATA_TOKEN_BUF + 8];
	static const char *const bad[] = {
		"", "sgt1.", "sgt1", "sgh1.abc", "Bearer x",
		"sgt1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"sgt1.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
		"sgt1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
	};

	(void)state;
	assert_int_equal(metadata_token_verify(key, "sb-1", NULL, NOW), METADATA_TOKEN_BAD);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(metadata_token_verify(key, "sb-1", bad[i], NOW),
		    METADATA_TOKEN_BAD);
	metadata_token_mint(key, "sb-1", NOW + 60, tok);
	/* trailing, leading bytes; standard base64 alphabet; other prefix */
	snprintf(t2, sizeof(t2), "%s ", tok);
	assert_int_equal(metadata_token_verify(key, "sb-1", t2, NOW), METADATA_TOKEN_BAD);
	snprintf(t2, sizeof(t2), " %s", tok);
	assert_int_equal(metadata_token_verify(key, "sb-1", t2, NOW), METADATA_TOKEN_BAD);
	memcpy(t2, tok, sizeof(tok));
	t2[0] = 'x';
	assert_int_equal(metadata_token_verify(key, "sb-1", t2, NOW), METADATA_TOKEN_BAD);
	memcpy(t2, tok, sizeof(tok));
	t2[METADATA_TOKEN_TEXT_LEN - 1] = '+';
	assert_int_equal(metadata_token_verify(key, "sb-1", t2, NOW), METADATA_TOKEN_BAD);
}

static void
test_ttl_bounds(void **state)
{
	static const char *const bad[] = {
		"0", "21601", "-1", "+5", " 5", "5 ", "5s", "", "1e3", "0x10", "99999999999999999",
		"18446744073709551617", "21600.0",
	};
	int64_t ttl = -7;

	(void)state;
	assert_int_equal(metadata_parse_ttl("1", &ttl), 0);
	assert_int_equal(ttl, 1);
	assert_int_equal(metadata_parse_ttl("21600", &ttl), 0);
	assert_int_equal(ttl, 21600);
	assert_int_equal(metadata_parse_ttl("0300", &ttl), 0);
	assert_int_equal(ttl, 300);
	assert_int_equal(metadata_parse_ttl(NULL, &ttl), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ttl = -7;
		assert_int_equal(metadata_parse_ttl(bad[i], &ttl), -1);
		assert_int_equal(ttl, -7);
	}
}

static void
test_forwarding_headers(void **state)
{
	(void)state;
	assert_true(metadata_is_forwarding_header("X-Forwarded-For"));
	assert_true(metadata_is_forwarding_header("x-forwarded-for"));
	assert_true(metadata_is_forwarding_header("FORWARDED"));
	assert_true(metadata_is_forwarding_header("via"));
	assert_false(metadata_is_forwarding_header("X-Forwarded-Host"));
	assert_false(metadata_is_forwarding_header("Vias"));
	assert_false(metadata_is_forwarding_header(""));
}

static void
test_env_render_quoting(void **state)
{
	const metadata_env_var_t vars[] = {
		{ "A", "plain" },
		{ "B", "it's" },
		{ "C", "'" },
		{ "D", "$(id) `id` \"$HOME\" \\ \n;x" },
		{ "E", "" },
		{ "F", NULL },
	};
	char *s = metadata_env_render(vars, sizeof(vars) / sizeof(vars[0]));

	(void)state;
	assert_non_null(s);
	assert_string_equal(s,
	    "export A='plain'\n"
	    "export B='it'\\''s'\n"
	    "export C=''\\'''\n"
	    "export D='$(id) `id` \"$HOME\" \\ \n;x'\n"
	    "export E=''\n");
	free(s);
}

/* The rendered text, run by sh, gives back the exact values. */
static void
test_env_render_roundtrip_sh(void **state)
{
	const char *tricky = "a'b''c\"d$e`f\\g\nh'";
	const metadata_env_var_t vars[] = { { "SG_T", tricky } };
	char *s = metadata_env_render(vars, 1), path[] = "/tmp/sg-test-md-XXXXXX";
	char cmd[512], out[128] = "";
	int fd = mkstemp(path);
	FILE *f;
	size_t n;

	(void)state;
	assert_non_null(s);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
	free(s);
	snprintf(cmd, sizeof(cmd), "sh -c '. %s && printf %%s \"$SG_T\"'", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	assert_int_equal(pclose(f), 0);
	unlink(path);
	assert_string_equal(out, tricky);
}

static void
test_env_render_names(void **state)
{
	const metadata_env_var_t vars[] = {
		{ "GOOD_1", "x" }, { "1BAD", "x" }, { "BAD-NAME", "x" }, { "A;rm", "x" },
		{ "", "x" }, { NULL, "x" }, { "_ok", "y" }, { "BAD NAME", "x" },
	};
	char *s = metadata_env_render(vars, sizeof(vars) / sizeof(vars[0]));

	(void)state;
	assert_non_null(s);
	assert_string_equal(s, "export GOOD_1='x'\nexport _ok='y'\n");
	free(s);
	s = metadata_env_render(NULL, 0);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
}

/* Container credentials URIs only where every SDK fetches them from. */
static void
test_aws_uri_host(void **state)
{
	static const char *const ok[] = { "127.0.0.1:8775", "127.0.0.1:0", "169.254.170.2:80",
		"169.254.170.2:8080" };
	static const char *const bad[] = { "127.0.0.2:80", "169.254.169.254:80",
		"169.254.170.23:80", "[fd00:ec2::23]:80", "[::1]:80", "0.0.0.0:80",
		"169.254.170.2", "localhost:80", "169.254.170.2:99999", "", "[::ffff:127.0.0.1]:80" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(metadata_aws_uri_host_ok(ok[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(metadata_aws_uri_host_ok(bad[i]));
}

static void
test_aws_env(void **state)
{
	metadata_aws_env_t in = { .role = "aws-dev", .hostport = "169.254.170.2:80",
		.token = "sgt1.TOKEN", .region = "eu-west-3", .ca_path = "/etc/sealgate/ca.pem" };
	metadata_env_var_t vars[2 + METADATA_AWS_ENV_MAX];
	char uri[METADATA_AWS_URI_MAX], *txt, role[200];
	size_t n = 2;

	(void)state;
	assert_int_equal(metadata_aws_env(&in, vars, &n, uri), 0);
	assert_int_equal(n, 2 + METADATA_AWS_ENV_MAX);
	txt = metadata_env_render(vars + 2, n - 2);
	assert_non_null(txt);
	assert_string_equal(txt,
	    "export AWS_CONTAINER_CREDENTIALS_FULL_URI='http://169.254.170.2:80/v1/aws/"
	    "credentials/aws-dev'\n"
	    "export AWS_CONTAINER_AUTHORIZATION_TOKEN='sgt1.TOKEN'\n"
	    "export AWS_REGION='eu-west-3'\n"
	    "export AWS_DEFAULT_REGION='eu-west-3'\n"
	    "export AWS_CA_BUNDLE='/etc/sealgate/ca.pem'\n");
	free(txt);
	/* no container address, region or CA: nothing of those */
	in.hostport = NULL;
	in.region = NULL;
	in.ca_path = NULL;
	n = 0;
	assert_int_equal(metadata_aws_env(&in, vars, &n, uri), 0);
	assert_int_equal(n, 0);
	/* an address but no token: no URI either (it would be refused) */
	in.hostport = "127.0.0.1:8775";
	in.token = NULL;
	assert_int_equal(metadata_aws_env(&in, vars, &n, uri), 0);
	assert_int_equal(n, 0);
	/* a URI that does not fit: -1, the other variables still there */
	memset(role, 'r', sizeof(role) - 1);
	role[sizeof(role) - 1] = '\0';
	in.role = role;
	in.token = "sgt1.T";
	in.ca_path = "/ca.pem";
	assert_int_equal(metadata_aws_env(&in, vars, &n, uri), -1);
	assert_int_equal(n, 1);
	assert_string_equal(vars[0].name, "AWS_CA_BUNDLE");
}

static void
test_aws_creds_render(void **state)
{
	metadata_aws_creds_t c = { "ASIAAAAAAAAAAAAAAAAA", "abc+/DEF", "sgh1.0a1b2c3d.x-y_z",
		"2026-12-06T13:00:00Z", "2026-12-06T12:00:00Z" };
	size_t len = 0;
	char *out = metadata_aws_creds_render(&c, &len);
	json_t *j;

	(void)state;
	assert_non_null(out);
	assert_string_equal(out, "{\"Code\":\"Success\",\"LastUpdated\":\"2026-12-06T12:00:00Z\","
	    "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAAAAAAAAAAAAAAAAA\","
	    "\"SecretAccessKey\":\"abc+/DEF\",\"Token\":\"sgh1.0a1b2c3d.x-y_z\","
	    "\"Expiration\":\"2026-12-06T13:00:00Z\"}");
	assert_int_equal(len, strlen(out));
	assert_true(secmem_wipe_size(out) > len);	/* wipe memory: zeroed when freed */
	j = json_loadb(out, len, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "SecretAccessKey")), "abc+/DEF");
	json_decref(j);
	secmem_wipe_free(out);
	/* the container form: four members */
	c.last_updated = NULL;
	out = metadata_aws_creds_render(&c, &len);
	assert_non_null(out);
	assert_string_equal(out, "{\"AccessKeyId\":\"ASIAAAAAAAAAAAAAAAAA\","
	    "\"SecretAccessKey\":\"abc+/DEF\",\"Token\":\"sgh1.0a1b2c3d.x-y_z\","
	    "\"Expiration\":\"2026-12-06T13:00:00Z\"}");
	secmem_wipe_free(out);
	/* values that would need escaping, or none, are refused rather than escaped */
	c.token = "a\"b";
	assert_null(metadata_aws_creds_render(&c, &len));
	c.token = "a\\b";
	assert_null(metadata_aws_creds_render(&c, &len));
	c.token = "a\nb";
	assert_null(metadata_aws_creds_render(&c, &len));
	c.token = NULL;
	assert_null(metadata_aws_creds_render(&c, &len));
	c.token = "t";
	c.last_updated = "\x01";
	assert_null(metadata_aws_creds_render(&c, &len));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_good),
		cmocka_unit_test(test_token_expired),
		cmocka_unit_test(test_token_other_sandbox_and_key),
		cmocka_unit_test(test_token_tampered),
		cmocka_unit_test(test_token_garbage),
		cmocka_unit_test(test_ttl_bounds),
		cmocka_unit_test(test_forwarding_headers),
		cmocka_unit_test(test_env_render_quoting),
		cmocka_unit_test(test_env_render_roundtrip_sh),
		cmocka_unit_test(test_env_render_names),
		cmocka_unit_test(test_aws_uri_host),
		cmocka_unit_test(test_aws_env),
		cmocka_unit_test(test_aws_creds_render),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
