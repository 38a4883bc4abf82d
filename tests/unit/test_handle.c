/* test_handle.c — mint/open, error codes, time checks, handle_find, handle_stream. */
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
	char *refs[] = {"refs/heads/agent/*", "refs/tags/v1"};
	handle_claims_t c, o;
	char *text;

	claims_basic(&c);
	c.git_refs = (policy_strlist_t){2, refs};
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
	assert_int_equal(o.git_refs.n, 2);
	assert_string_equal(o.git_refs.v[1], "refs/tags/v1");
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

/* A minted credential's narrowing: "v":2, read back; a v1 reader would refuse it. */
static void
test_mint_open_narrowed(void **state)
{
	struct fixture *f = *state;
	char *repos[] = {"octo-org/hello-world"}, *perms[] = {"contents:read", "issues:write"};
	handle_claims_t c, o;
	char *text;

	claims_basic(&c);
	c.scope = "read";
	c.repos = (policy_strlist_t){1, repos};
	c.perms = (policy_strlist_t){2, perms};
	text = mint(f->cur, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_string_equal(o.scope, "read");
	assert_int_equal(o.repos.n, 1);
	assert_string_equal(o.repos.v[0], "octo-org/hello-world");
	assert_int_equal(o.perms.n, 2);
	assert_string_equal(o.perms.v[1], "issues:write");
	handle_claims_free(&o);
	free(text);
	claims_basic(&c);		/* an audience alone narrows too */
	c.audience = "api://billing";
	text = mint(f->cur, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_string_equal(o.audience, "api://billing");
	assert_null(o.scope);
	handle_claims_free(&o);
	free(text);
	claims_basic(&c);		/* no narrowing: still version 1 */
	text = mint(f->cur, &c);
	assert_int_equal(open_text(f, text, &o), HANDLE_OK);
	assert_null(o.scope);
	assert_int_equal(o.repos.n, 0);
	handle_claims_free(&o);
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
		/* narrowing claims only with version 2, and version 2 only with them */
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"scope\":\"read\"}",
		"{\"v\":2,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"repos\":[]}",
		"{\"v\":2,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"scope\":7}",
		"{\"v\":1,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"aud\":\"api://a\"}",
		"{\"v\":2,\"cred\":\"a\",\"sb\":\"b\",\"hid\":\"00112233445566778899aabbccddeeff\","
		    "\"iat\":1,\"exp\":2,\"aud\":\"\"}",
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

/* --- handle_stream ------------------------------------------------------------------ */

/* Pieces as a string: text merged into "[...]", each handle piece as "<...>". */
struct pieces {
	char *s;
	size_t len, cap;
	int in_text;
	size_t handles, texts;
	int stop_handle, stop_text;	/* nonzero: returned by that callback */
};

static void
pieces_add(struct pieces *k, const char *p, size_t n)
{
	if (k->len + n + 1 > k->cap) {
		k->cap = (k->len + n + 1) * 2;
		k->s = realloc(k->s, k->cap);
		assert_non_null(k->s);
	}
	memcpy(k->s + k->len, p, n);
	k->len += n;
	k->s[k->len] = '\0';
}

static int
pieces_text(void *arg, const char *p, size_t len)
{
	struct pieces *k = arg;

	assert_true(len > 0);
	if (!k->in_text)
		pieces_add(k, "[", 1);
	k->in_text = 1;
	pieces_add(k, p, len);
	k->texts++;
	return k->stop_text;
}

static void
pieces_end_text(struct pieces *k)
{
	if (k->in_text)
		pieces_add(k, "]", 1);
	k->in_text = 0;
}

static int
pieces_handle(void *arg, const char *h, size_t len)
{
	struct pieces *k = arg;

	assert_true(len > 0 && len <= SG_HANDLE_MAX_LEN + 1);
	pieces_end_text(k);
	pieces_add(k, "<", 1);
	pieces_add(k, h, len);
	pieces_add(k, ">", 1);
	k->handles++;
	return k->stop_handle;
}

/* What the stream must give for s: handle_find on the whole of it. */
static char *
stream_reference(const char *s, size_t len)
{
	struct pieces k = {0};
	size_t at = 0, off = 0, hlen;

	pieces_add(&k, "", 0);
	while (handle_find(s, len, &off, &hlen) == 0) {
		if (off > at)
			pieces_text(&k, s + at, off - at);
		/* an over-long occurrence comes in pieces of SG_HANDLE_MAX_LEN + 1 */
		for (size_t i = 0; i < hlen; i += SG_HANDLE_MAX_LEN + 1)
			pieces_handle(&k, s + off + i, hlen - i < SG_HANDLE_MAX_LEN + 1 ?
			    hlen - i : SG_HANDLE_MAX_LEN + 1);
		off += hlen;
		at = off;
	}
	if (len > at)
		pieces_text(&k, s + at, len - at);
	pieces_end_text(&k);
	return k.s;
}

/* Feed s cut at the given points (ascending, within s), then finish. */
static char *
stream_cuts(const char *s, size_t len, const size_t *cuts, size_t ncuts)
{
	struct pieces k = {0};
	handle_stream_t hs;
	size_t at = 0;

	pieces_add(&k, "", 0);
	handle_stream_init(&hs);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;

		assert_int_equal(handle_stream_feed(&hs, s + at, end - at, pieces_text,
		    pieces_handle, &k), 0);
		at = end;
	}
	assert_int_equal(handle_stream_finish(&hs, pieces_text, pieces_handle, &k), 0);
	assert_int_equal(hs.n, 0);
	pieces_end_text(&k);
	return k.s;
}

/* Every split into 1, 2 and 3 pieces, and byte by byte, equals the reference. */
static void
stream_check_all_splits(const char *s, const char *want)
{
	size_t len = strlen(s), cuts[SG_HANDLE_MAX_LEN * 4];
	char *ref = stream_reference(s, len), *got;

	if (want != NULL)
		assert_string_equal(ref, want);
	got = stream_cuts(s, len, NULL, 0);
	assert_string_equal(got, ref);
	free(got);
	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len && len <= 64; b++) {
			cuts[0] = a;
			cuts[1] = b;
			got = stream_cuts(s, len, cuts, 2);
			assert_string_equal(got, ref);
			free(got);
		}
		got = stream_cuts(s, len, &a, 1);
		assert_string_equal(got, ref);
		free(got);
	}
	assert_true(len <= SG_ARRAY_LEN(cuts));
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	got = stream_cuts(s, len, cuts, len > 0 ? len - 1 : 0);
	assert_string_equal(got, ref);
	free(got);
	free(ref);
}

static void
test_stream_splits(void **state)
{
	(void)state;
	stream_check_all_splits("Bearer sgh1.0011aabb.AbC_-9\r\n", "[Bearer ]<sgh1.0011aabb.AbC_-9>[\r\n]");
	stream_check_all_splits("{\"k\":\"sgh1.aaaaaaaa.X\"} sgh1.bbbbbbbb.Y",
	    "[{\"k\":\"]<sgh1.aaaaaaaa.X>[\"} ]<sgh1.bbbbbbbb.Y>");
	stream_check_all_splits("xsgh1.a sgh1.b", "[x]<sgh1.a>[ ]<sgh1.b>");
	stream_check_all_splits("prefix-sgh1.aaaaaaaa.X _sgh1.c 9sgh1.d",
	    "[prefix-]<sgh1.aaaaaaaa.X>[ _]<sgh1.c>[ 9]<sgh1.d>");
	/* one run of charset bytes is one occurrence, a second prefix inside included */
	stream_check_all_splits("sgh1.asgh1.b,", "<sgh1.asgh1.b>[,]");
	/* partial prefixes that come to nothing, also right before a real one */
	stream_check_all_splits("s sg sgh sgh1 ssgh1.x sgsgh1.y sghsgh1.z sgh1sgh1.w",
	    "[s sg sgh sgh1 s]<sgh1.x>[ sg]<sgh1.y>[ sgh]<sgh1.z>[ sgh1]<sgh1.w>");
	stream_check_all_splits("no handle here, sgh1 sgh SGH1.abc", "[no handle here, sgh1 sgh SGH1.abc]");
	stream_check_all_splits("x sgh1.", "[x ]<sgh1.>");
	stream_check_all_splits("sgh1.", "<sgh1.>");
	stream_check_all_splits("sgh1", "[sgh1]");
	stream_check_all_splits("s", "[s]");
	stream_check_all_splits("", "");
	stream_check_all_splits("sgh1.sgh1.", "<sgh1.sgh1.>");
	stream_check_all_splits("a\nsgh1.k\x01sgh1.\xff", "[a\n]<sgh1.k>[\x01]<sgh1.>[\xff]");
}

/* Only a partial prefix or an unfinished handle is held back. */
static void
test_stream_holds_little(void **state)
{
	struct pieces k = {0};
	handle_stream_t hs;

	(void)state;
	pieces_add(&k, "", 0);
	handle_stream_init(&hs);
	assert_int_equal(handle_stream_feed(&hs, "hello s", 7, pieces_text, pieces_handle, &k), 0);
	assert_string_equal(k.s, "[hello ");
	assert_int_equal(hs.n, 1);
	assert_int_equal(handle_stream_feed(&hs, "gh1.0011", 8, pieces_text, pieces_handle, &k), 0);
	assert_string_equal(k.s, "[hello ");
	assert_int_equal(hs.n, 9);
	assert_int_equal(handle_stream_feed(&hs, "aabb.Q", 6, pieces_text, pieces_handle, &k), 0);
	assert_int_equal(k.handles, 0);
	assert_int_equal(handle_stream_feed(&hs, "Q world", 7, pieces_text, pieces_handle, &k), 0);
	assert_string_equal(k.s, "[hello ]<sgh1.0011aabb.QQ>[ world");
	assert_int_equal(hs.n, 0);
	/* text that cannot start a prefix goes straight through */
	assert_int_equal(handle_stream_feed(&hs, "abc", 3, pieces_text, pieces_handle, &k), 0);
	assert_string_equal(k.s, "[hello ]<sgh1.0011aabb.QQ>[ worldabc");
	/* a held "sgh1" at the end of the message is text */
	assert_int_equal(handle_stream_feed(&hs, " sgh1", 5, pieces_text, pieces_handle, &k), 0);
	assert_int_equal(hs.n, 4);
	assert_int_equal(handle_stream_finish(&hs, pieces_text, pieces_handle, &k), 0);
	pieces_end_text(&k);
	assert_string_equal(k.s, "[hello ]<sgh1.0011aabb.QQ>[ worldabc sgh1]");
	free(k.s);
}

static void
test_stream_handle_at_end(void **state)
{
	struct pieces k = {0};
	handle_stream_t hs;

	(void)state;
	pieces_add(&k, "", 0);
	handle_stream_init(&hs);
	assert_int_equal(handle_stream_feed(&hs, "x sgh1.abc", 10, pieces_text, pieces_handle, &k), 0);
	assert_int_equal(k.handles, 0);
	assert_int_equal(handle_stream_finish(&hs, pieces_text, pieces_handle, &k), 0);
	assert_string_equal(k.s, "[x ]<sgh1.abc>");
	/* finish leaves an empty stream: the next message starts clean */
	assert_int_equal(handle_stream_feed(&hs, "gh1.x ", 6, pieces_text, pieces_handle, &k), 0);
	assert_string_equal(k.s, "[x ]<sgh1.abc>[gh1.x ");
	free(k.s);
}

/* Longer than SG_HANDLE_MAX_LEN: delivered once it passes the bound, never as text. */
static void
test_stream_overlong(void **state)
{
	static const size_t lens[] = {SG_HANDLE_MAX_LEN, SG_HANDLE_MAX_LEN + 1,
	    SG_HANDLE_MAX_LEN + 2, 2 * (SG_HANDLE_MAX_LEN + 1), 3 * (SG_HANDLE_MAX_LEN + 1) + 5};
	char *s = malloc(4 * SG_HANDLE_MAX_LEN + 16);

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(lens); i++) {
		struct pieces k = {0};
		handle_stream_t hs;
		size_t n = 0, want_pieces = (lens[i] + SG_HANDLE_MAX_LEN) / (SG_HANDLE_MAX_LEN + 1);
		char *ref, *got;

		n += (size_t)sprintf(s, "a ");
		memcpy(s + n, "sgh1.", 5);
		memset(s + n + 5, 'Q', lens[i] - 5);
		n += lens[i];
		s[n++] = ' ';
		s[n] = '\0';
		ref = stream_reference(s, n);
		got = stream_cuts(s, n, NULL, 0);
		assert_string_equal(got, ref);
		free(got);
		stream_check_all_splits(s, NULL);
		/* fed without its terminator: a piece over the bound is out already */
		pieces_add(&k, "", 0);
		handle_stream_init(&hs);
		assert_int_equal(handle_stream_feed(&hs, s, n - 1, pieces_text, pieces_handle,
		    &k), 0);
		assert_true(hs.n <= SG_HANDLE_MAX_LEN + 1);
		assert_int_equal(k.handles, lens[i] / (SG_HANDLE_MAX_LEN + 1));
		assert_int_equal(handle_stream_finish(&hs, pieces_text, pieces_handle, &k), 0);
		assert_int_equal(k.handles, want_pieces);
		assert_int_equal(k.texts, 1);		/* "a " only */
		free(k.s);
		free(ref);
	}
	free(s);
}

static int
count_handle(void *arg, const char *h, size_t len)
{
	(void)h;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

static int
count_text(void *arg, const char *p, size_t len)
{
	(void)arg;
	(void)p;
	(void)len;
	return 0;
}

/* One handle of exactly SG_HANDLE_MAX_LEN bytes, and nothing more, comes in one piece. */
static void
test_stream_max_len_whole(void **state)
{
	char *s = malloc(SG_HANDLE_MAX_LEN + 2);
	handle_stream_t hs;
	int handles = 0;

	(void)state;
	memcpy(s, "sgh1.", 5);
	memset(s + 5, 'a', SG_HANDLE_MAX_LEN - 5);
	s[SG_HANDLE_MAX_LEN] = '"';
	handle_stream_init(&hs);
	for (size_t i = 0; i <= SG_HANDLE_MAX_LEN; i++)
		assert_int_equal(handle_stream_feed(&hs, s + i, 1, count_text, count_handle,
		    &handles), 0);
	assert_int_equal(handles, 1);
	free(s);
}

static void
test_stream_callback_stops(void **state)
{
	struct pieces k = {0};
	handle_stream_t hs;

	(void)state;
	pieces_add(&k, "", 0);
	k.stop_handle = 7;
	handle_stream_init(&hs);
	assert_int_equal(handle_stream_feed(&hs, "a sgh1.x b sgh1.y c", 19, pieces_text,
	    pieces_handle, &k), 7);
	assert_int_equal(k.handles, 1);		/* nothing after the refusal */
	assert_string_equal(k.s, "[a ]<sgh1.x>");
	handle_stream_reset(&hs);
	k.stop_handle = 0;
	k.stop_text = 3;
	assert_int_equal(handle_stream_feed(&hs, "abc sgh1.x", 10, pieces_text, pieces_handle,
	    &k), 3);
	handle_stream_reset(&hs);
	assert_int_equal(handle_stream_feed(&hs, "zz sgh", 6, pieces_text, pieces_handle, &k), 3);
	k.stop_text = 5;
	handle_stream_reset(&hs);
	assert_int_equal(handle_stream_feed(&hs, "sgh", 3, pieces_text, pieces_handle, &k), 0);
	assert_int_equal(handle_stream_finish(&hs, pieces_text, pieces_handle, &k), 5);
	assert_int_equal(hs.n, 0);
	k.stop_text = 0;
	k.stop_handle = 9;
	assert_int_equal(handle_stream_feed(&hs, "sgh1.q", 6, pieces_text, pieces_handle, &k), 0);
	assert_int_equal(handle_stream_finish(&hs, pieces_text, pieces_handle, &k), 9);
	free(k.s);
}

static void
test_stream_reset_zeroes(void **state)
{
	handle_stream_t hs, zero;
	struct pieces k = {0};

	(void)state;
	handle_stream_init(&zero);
	handle_stream_init(&hs);
	pieces_add(&k, "", 0);
	assert_int_equal(handle_stream_feed(&hs, "x sgh1.0011aabb.held", 20, pieces_text,
	    pieces_handle, &k), 0);
	assert_int_equal(hs.n, 18);
	assert_memory_equal(hs.buf, "sgh1.0011aabb.held", 18);
	handle_stream_reset(&hs);
	assert_memory_equal(&hs, &zero, sizeof(hs));
	/* nothing of it comes back */
	assert_int_equal(handle_stream_feed(&hs, "abc", 3, pieces_text, pieces_handle, &k), 0);
	assert_int_equal(handle_stream_finish(&hs, pieces_text, pieces_handle, &k), 0);
	pieces_end_text(&k);
	assert_string_equal(k.s, "[x abc]");
	/* bytes held and then given up are zeroed too */
	handle_stream_init(&hs);
	assert_int_equal(handle_stream_feed(&hs, "sgh1.abc def", 12, pieces_text,
	    pieces_handle, &k), 0);
	assert_memory_equal(&hs, &zero, sizeof(hs));
	free(k.s);
}

/* A minted handle inside JSON text, cut at every position, comes out whole and opens. */
static void
test_stream_then_open(void **state)
{
	struct fixture *f = *state;
	handle_claims_t c, o;
	char *text, msg[SG_HANDLE_MAX_LEN + 64];
	size_t len, hlen;

	claims_basic(&c);
	text = mint(f->cur, &c);
	len = (size_t)snprintf(msg, sizeof(msg), "{\"type\":\"auth\",\"key\":\"%s\"}", text);
	for (size_t cut = 0; cut <= len; cut++) {
		char *got = stream_cuts(msg, len, &cut, 1), *h = strchr(got, '<');

		assert_non_null(h);
		hlen = strcspn(h + 1, ">");
		assert_int_equal(hlen, strlen(text));
		assert_int_equal(handle_open(f->kr, h + 1, hlen, &o), HANDLE_OK);
		assert_string_equal(o.hid, c.hid);
		handle_claims_free(&o);
		free(got);
	}
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
		T(test_mint_open_narrowed),
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
		cmocka_unit_test(test_stream_splits),
		cmocka_unit_test(test_stream_holds_little),
		cmocka_unit_test(test_stream_handle_at_end),
		cmocka_unit_test(test_stream_overlong),
		cmocka_unit_test(test_stream_max_len_whole),
		cmocka_unit_test(test_stream_callback_stops),
		cmocka_unit_test(test_stream_reset_zeroes),
		T(test_stream_then_open),
	};
#undef T

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
