/* test_handle.c — mint/open, error codes, time checks, handle_find. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "defaults.h"
#include "handle.h"

#define NOW 1700000000

struct fixture {
	seal_keyring_t *kr;
	const seal_key_t *cur, *old;
	seal_key_t *stranger;		/* not in the keyring */
	char retired_id[9];
	seal_key_t *retired_copy;	/* same key as the retired one, for minting */
};

static seal_key_t *
key_seeded(uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, sizeof(seed));
	return seal_key_from_seed(seed);
}

static int
setup_ring(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	seal_key_t *retired = key_seeded(3), *old = key_seeded(2);
	char oldid[9];

	f->kr = seal_keyring_new();
	strcpy(oldid, old->id);
	if (seal_keyring_add(f->kr, key_seeded(1)) < 0 || seal_keyring_add(f->kr, old) < 0)
		return -1;
	strcpy(f->retired_id, retired->id);
	if (seal_keyring_add(f->kr, retired) < 0 ||
	    seal_keyring_retire_id(f->kr, f->retired_id) < 0)
		return -1;
	f->cur = seal_keyring_current(f->kr);
	f->old = seal_keyring_find(f->kr, oldid, 8);
	f->stranger = key_seeded(9);
	f->retired_copy = key_seeded(3);
	*state = f;
	return 0;
}

static int
teardown_ring(void **state)
{
	struct fixture *f = *state;

	seal_keyring_free(f->kr);
	seal_key_free(f->stranger);
	seal_key_free(f->retired_copy);
	free(f);
	return 0;
}

static void
claims_basic(handle_claims_t *c)
{
	memset(c, 0, sizeof(*c));
	c->cred = "openai";
	c->sb = "sb-1";
	c->iat = NOW;
	c->exp = NOW + 900;
}

static char *
mint(const seal_key_t *key, handle_claims_t *c)
{
	char *text = NULL;

	assert_int_equal(handle_mint(key, c, &text), HANDLE_OK);
	return text;
}

static int
open_text(struct fixture *f, const char *text, handle_claims_t *out)
{
	return handle_open(f->kr, text, strlen(text), out);
}

/* A handle around any payload bytes, sealed to key. */
static char *
handle_raw(const seal_key_t *key, const char *payload)
{
	size_t ctlen, b64len;
	uint8_t *ct = seal_box_bytes(key->pk, payload, strlen(payload), &ctlen);
	char *out;

	assert_non_null(ct);
	b64len = sodium_base64_encoded_len(ctlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	out = malloc(14 + b64len);
	snprintf(out, 15, "sgh1.%s.", key->id);
	sodium_bin2base64(out + 14, b64len, ct, ctlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	free(ct);
	return out;
}

static void
test_mint_open_roundtrip(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text;

	claims_basic(&c);
	text = mint(f->cur, &c);
	assert_int_equal(strncmp(text, "sgh1.", 5), 0);
	assert_memory_equal(text + 5, f->cur->id, 8);
	assert_int_equal(text[13], '.');
	assert_true(strlen(text) <= SG_HANDLE_MAX_LEN);
	assert_int_equal(strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-."), strlen(text));
	assert_int_equal(strlen(c.hid), 32);
	assert_string_equal(c.key_id, f->cur->id);

	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_string_equal(o.cred, "openai");
	assert_string_equal(o.sb, "sb-1");
	assert_string_equal(o.hid, c.hid);
	assert_string_equal(o.key_id, f->cur->id);
	assert_int_equal(o.iat, NOW);
	assert_int_equal(o.exp, NOW + 900);
	assert_int_equal(o.hosts.n, 0);
	assert_int_equal(o.methods.n, 0);
	assert_int_equal(o.paths.n, 0);
	handle_claims_free(&o);
	assert_null(o.cred);
	free(text);
}

static void
test_mint_open_life_sandbox(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text;

	claims_basic(&c);
	c.life_sandbox = true;
	c.exp = NOW + 30 * 24 * 3600;
	text = mint(f->cur, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_true(o.life_sandbox);
	assert_int_equal(o.exp, NOW + 30 * 24 * 3600);
	handle_claims_free(&o);
	assert_false(o.life_sandbox);
	free(text);
	claims_basic(&c);			/* absent: a wall-clock handle */
	text = mint(f->cur, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_false(o.life_sandbox);
	handle_claims_free(&o);
	free(text);
	text = handle_raw(f->cur, "{\"v\":1,\"cred\":\"a\",\"sb\":\"b\","
	    "\"hid\":\"00112233445566778899aabbccddeeff\",\"iat\":1,\"exp\":2,"
	    "\"life\":\"sandbox\"}");
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_true(o.life_sandbox);
	handle_claims_free(&o);
	free(text);
}

static void
test_mint_unique_ids(void **state)
{
	struct fixture *f = *state;
	handle_claims_t a, b;
	char *ta, *tb;

	claims_basic(&a);
	claims_basic(&b);
	ta = mint(f->cur, &a);
	tb = mint(f->cur, &b);
	assert_string_not_equal(a.hid, b.hid);
	assert_string_not_equal(ta, tb);
	free(ta);
	free(tb);
}

static void
test_mint_open_scoped(void **state)
{
	struct fixture *f = *state;
	char *hosts[] = {"api.openai.com"}, *methods[] = {"GET", "POST"}, *paths[] = {"/v1/*"};
	handle_claims_t c, o;
	char *text;

	claims_basic(&c);
	c.hosts = (policy_strlist_t){1, hosts};
	c.methods = (policy_strlist_t){2, methods};
	c.paths = (policy_strlist_t){1, paths};
	strcpy(c.hid, "00112233445566778899aabbccddeeff");
	text = mint(f->cur, &c);
	assert_string_equal(c.hid, "00112233445566778899aabbccddeeff");
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_string_equal(o.hid, "00112233445566778899aabbccddeeff");
	assert_int_equal(o.hosts.n, 1);
	assert_string_equal(o.hosts.v[0], "api.openai.com");
	assert_int_equal(o.methods.n, 2);
	assert_string_equal(o.methods.v[1], "POST");
	assert_int_equal(o.paths.n, 1);
	assert_string_equal(o.paths.v[0], "/v1/*");
	handle_claims_free(&o);
	free(text);
}

static void
test_mint_refuses_bad_claims(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c;
	char *text = NULL;
	char *big = malloc(4000);

	claims_basic(&c);
	c.exp = c.iat - 1;
	assert_int_equal(handle_mint(f->cur, &c, &text), HANDLE_E_PAYLOAD);
	claims_basic(&c);
	c.cred = "";
	assert_int_equal(handle_mint(f->cur, &c, &text), HANDLE_E_PAYLOAD);
	claims_basic(&c);
	strcpy(c.hid, "XYZ");
	assert_int_equal(handle_mint(f->cur, &c, &text), HANDLE_E_PAYLOAD);
	/* too big for SG_HANDLE_MAX_LEN */
	claims_basic(&c);
	memset(big, 'a', 3999);
	big[3999] = '\0';
	c.sb = big;
	assert_int_equal(handle_mint(f->cur, &c, &text), HANDLE_E_PAYLOAD);
	assert_null(text);
	free(big);
}

static void
test_open_older_key(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text;

	claims_basic(&c);
	text = mint(f->old, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_string_equal(o.key_id, f->old->id);
	handle_claims_free(&o);
	free(text);
}

static void
test_open_retired_and_unknown(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text;

	claims_basic(&c);
	text = mint(f->retired_copy, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_E_RETIRED_KEY);
	assert_string_equal(handle_error_code(HANDLE_E_RETIRED_KEY), "key_retired");
	assert_null(o.cred);
	free(text);

	text = mint(f->stranger, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_E_UNKNOWN_KEY);
	assert_string_equal(handle_error_code(HANDLE_E_UNKNOWN_KEY), "unknown_key");
	free(text);
}

static void
test_open_wrong_key_same_id(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text;

	/* sealed to a stranger's key but labelled with the current key's id */
	claims_basic(&c);
	text = mint(f->stranger, &c);
	memcpy(text + 5, f->cur->id, 8);
	assert_int_equal(open_text(f, text, &o), HANDLE_E_DECRYPT);
	assert_string_equal(handle_error_code(HANDLE_E_DECRYPT), "handle_invalid");
	free(text);
}

static void
test_open_tampered(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text;
	size_t mid;

	claims_basic(&c);
	text = mint(f->cur, &c);
	mid = 14 + (strlen(text) - 14) / 2;
	text[mid] = text[mid] == 'A' ? 'B' : 'A';
	assert_int_equal(open_text(f, text, &o), HANDLE_E_DECRYPT);
	assert_null(o.cred);
	free(text);
}

static void
test_open_format_errors(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text, *big, buf[SG_HANDLE_MAX_LEN + 64];
	size_t len;

	claims_basic(&c);
	text = mint(f->cur, &c);
	len = strlen(text);
	/* truncated: a length base64url cannot have, then one that fails the MAC */
	assert_int_equal(handle_open(f->kr, text, 15, &o), HANDLE_E_FORMAT);
	/* cut at a whole 4-character group: still base64url, fails the MAC */
	assert_int_equal(handle_open(f->kr, text, 14 + 4 * ((len - 14) / 4) - 4, &o),
	    HANDLE_E_DECRYPT);
	assert_int_equal(handle_open(f->kr, text, 14, &o), HANDLE_E_FORMAT);
	assert_int_equal(handle_open(f->kr, text, 0, &o), HANDLE_E_FORMAT);
	/* bad prefix */
	snprintf(buf, sizeof(buf), "%s", text);
	buf[3] = '2';
	assert_int_equal(open_text(f, buf, &o), HANDLE_E_FORMAT);
	snprintf(buf, sizeof(buf), "SGH1.%s", text + 5);
	assert_int_equal(open_text(f, buf, &o), HANDLE_E_FORMAT);
	/* bad key id: upper case, short */
	snprintf(buf, sizeof(buf), "sgh1.%s", text + 5);
	buf[5] = 'G';
	assert_int_equal(open_text(f, buf, &o), HANDLE_E_FORMAT);
	assert_int_equal(open_text(f, "sgh1.abcdef.AAAA", &o), HANDLE_E_FORMAT);
	/* standard base64 characters and padding are not base64url */
	snprintf(buf, sizeof(buf), "%s", text);
	buf[20] = '+';
	assert_int_equal(open_text(f, buf, &o), HANDLE_E_FORMAT);
	snprintf(buf, sizeof(buf), "%s=", text);
	assert_int_equal(open_text(f, buf, &o), HANDLE_E_FORMAT);
	/* over-long */
	big = malloc(SG_HANDLE_MAX_LEN + 2);
	memset(big, 'A', SG_HANDLE_MAX_LEN + 1);
	memcpy(big, text, 14);
	big[SG_HANDLE_MAX_LEN + 1] = '\0';
	assert_int_equal(open_text(f, big, &o), HANDLE_E_FORMAT);
	assert_string_equal(handle_error_code(HANDLE_E_FORMAT), "handle_malformed");
	free(big);
	free(text);
}

static void
test_open_payload_errors(void **state)
{
	struct fixture *f = *state;
	static const char *bad[] = {
		"not json",
		"[1,2]",
		"{}",
		"{\"v\":2,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2}",
		"{\"v\":1,\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2}",
		"{\"v\":1,\"cred\":\"a\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"iat\":1,\"exp\":2}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"0011\",\"iat\":1,\"exp\":2}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"exp\":2}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":5,\"exp\":2}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":\"1\",\"exp\":2}",
		"{\"v\":1,\"cred\":7,\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"hosts\":\"x\"}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"methods\":[\"GET\",3]}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"paths\":[]}",
		"{\"v\":1,\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2}",
		/* a lifetime this version does not know is not taken for a wall-clock one */
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"life\":\"forever\"}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"life\":true}",
	};
	static const char good[] = "{\"v\":1,\"cred\":\"a\",\"sb\":\"b\","
	    "\"hid\":\"00112233445566778899aabbccddeeff\",\"iat\":1,\"exp\":2,\"future\":true}";
	handle_claims_t o;
	char *text;

	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		text = handle_raw(f->cur, bad[i]);
		assert_int_equal(open_text(f, text, &o), HANDLE_E_PAYLOAD);
		assert_null(o.cred);
		free(text);
	}
	/* the same envelope with a valid payload opens (unknown fields are ignored) */
	text = handle_raw(f->cur, good);
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_string_equal(o.cred, "a");
	handle_claims_free(&o);
	free(text);
}

static void
test_check_time(void **state)
{
	handle_claims_t c;

	(void)state;
	claims_basic(&c);
	assert_int_equal(handle_check_time(&c, NOW, SG_CLOCK_SKEW_S), HANDLE_OK);
	assert_int_equal(handle_check_time(&c, NOW + 899, 0), HANDLE_OK);
	assert_int_equal(handle_check_time(&c, NOW + 900, 0), HANDLE_E_EXPIRED);
	assert_int_equal(handle_check_time(&c, NOW + 900 + SG_CLOCK_SKEW_S - 1, SG_CLOCK_SKEW_S),
	    HANDLE_OK);
	assert_int_equal(handle_check_time(&c, NOW + 900 + SG_CLOCK_SKEW_S, SG_CLOCK_SKEW_S),
	    HANDLE_E_EXPIRED);
	/* minted by a sidecar whose clock runs ahead */
	assert_int_equal(handle_check_time(&c, NOW - SG_CLOCK_SKEW_S, SG_CLOCK_SKEW_S), HANDLE_OK);
	assert_int_equal(handle_check_time(&c, NOW - SG_CLOCK_SKEW_S - 1, SG_CLOCK_SKEW_S),
	    HANDLE_E_NOT_YET_VALID);
	assert_int_equal(handle_check_time(&c, NOW - 1, 0), HANDLE_E_NOT_YET_VALID);
	assert_string_equal(handle_error_code(HANDLE_E_EXPIRED), "handle_expired");
	assert_string_equal(handle_error_code(HANDLE_E_NOT_YET_VALID), "handle_not_yet_valid");
	assert_non_null(handle_error_message(HANDLE_E_EXPIRED));
	assert_string_equal(handle_error_code(12345), "internal_error");
}

/* Every handle handle_find reports in s, as "a|b|". */
static void
find_all(const char *s, char *out, size_t outlen)
{
	size_t off = 0, hlen, n = 0;

	out[0] = '\0';
	while (handle_find(s, strlen(s), &off, &hlen) == 0) {
		assert_true(off + hlen <= strlen(s));
		n += (size_t)snprintf(out + n, outlen - n, "%.*s|", (int)hlen, s + off);
		off += hlen;
	}
}

static void
test_find(void **state)
{
	char got[512];

	(void)state;
	find_all("Authorization: Bearer sgh1.0011aabb.AbC_-9\r\n", got, sizeof(got));
	assert_string_equal(got, "sgh1.0011aabb.AbC_-9|");
	find_all("GET /x?a=1&key=sgh1.0011aabb.QQ&y=2 HTTP/1.1", got, sizeof(got));
	assert_string_equal(got, "sgh1.0011aabb.QQ|");
	find_all("sgh1.aaaaaaaa.X,sgh1.bbbbbbbb.Y", got, sizeof(got));
	assert_string_equal(got, "sgh1.aaaaaaaa.X|sgh1.bbbbbbbb.Y|");
	find_all("{\"k\":\"sgh1.aaaaaaaa.X\"} sgh1.bbbbbbbb.Y", got, sizeof(got));
	assert_string_equal(got, "sgh1.aaaaaaaa.X|sgh1.bbbbbbbb.Y|");
	/* glued to other text: still a handle (it must not slip through to an upstream) */
	find_all("xsgh1.aaaaaaaa.X", got, sizeof(got));
	assert_string_equal(got, "sgh1.aaaaaaaa.X|");
	find_all("prefix-sgh1.aaaaaaaa.X _sgh1.c 9sgh1.d", got, sizeof(got));
	assert_string_equal(got, "sgh1.aaaaaaaa.X|sgh1.c|sgh1.d|");
	find_all("xsgh1.a sgh1.b", got, sizeof(got));
	assert_string_equal(got, "sgh1.a|sgh1.b|");
	find_all("no handle here, sgh1 sgh SGH1.abc", got, sizeof(got));
	assert_string_equal(got, "");
	/* a bare prefix at the very end is reported (handle_open rejects it) */
	find_all("x sgh1.", got, sizeof(got));
	assert_string_equal(got, "sgh1.|");
	find_all("", got, sizeof(got));
	assert_string_equal(got, "");
}

static void
test_find_binary_and_start(void **state)
{
	static const char buf[] = "\0\xffsgh1.aaaaaaaa.Z\0sgh1.q";
	size_t off = 0, hlen;

	(void)state;
	assert_int_equal(handle_find(buf, sizeof(buf) - 1, &off, &hlen), 0);
	assert_int_equal(off, 2);
	assert_int_equal(hlen, 15);
	off += hlen;
	assert_int_equal(handle_find(buf, sizeof(buf) - 1, &off, &hlen), 0);
	assert_int_equal(off, 18);
	assert_int_equal(hlen, 6);
	off += hlen;
	assert_int_equal(handle_find(buf, sizeof(buf) - 1, &off, &hlen), -1);
	/* a prefix cut by the end of the buffer is no match */
	off = 0;
	assert_int_equal(handle_find("ab sgh1", 7, &off, &hlen), -1);
}

static void
test_find_then_open(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text, hdr[SG_HANDLE_MAX_LEN + 64];
	size_t off = 0, hlen;

	claims_basic(&c);
	text = mint(f->cur, &c);
	snprintf(hdr, sizeof(hdr), "x-api-key: %s\r\n", text);
	assert_int_equal(handle_find(hdr, strlen(hdr), &off, &hlen), 0);
	assert_int_equal(off, 11);
	assert_int_equal(hlen, strlen(text));
	assert_int_equal(handle_open(f->kr, hdr + off, hlen, &o), HANDLE_OK);
	assert_string_equal(o.hid, c.hid);
	handle_claims_free(&o);
	free(text);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_ring, teardown_ring)
	const struct CMUnitTest tests[] = {
		T(test_mint_open_roundtrip),
		T(test_mint_open_life_sandbox),
		T(test_mint_unique_ids),
		T(test_mint_open_scoped),
		T(test_mint_refuses_bad_claims),
		T(test_open_older_key),
		T(test_open_retired_and_unknown),
		T(test_open_wrong_key_same_id),
		T(test_open_tampered),
		T(test_open_format_errors),
		T(test_open_payload_errors),
		cmocka_unit_test(test_check_time),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_find_binary_and_start),
		T(test_find_then_open),
	};
#undef T

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
