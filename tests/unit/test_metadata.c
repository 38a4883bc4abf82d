/* test_metadata.c — session tokens, TTL header bounds, forwarding headers, env rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "metadata.h"

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
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
