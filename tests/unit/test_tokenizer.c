/* test_tokenizer.c — tokenizer-format sealed secrets: parse, auth, scope, processors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#include "seal.h"
#include "secmem.h"
#include "tokenizer.h"
#include "util.h"

#define NOW 1700000000LL
/* sha256("proxy-pass"), standard base64 */
#define DIGEST "0Bd9Aw6HWoSDPV+5jV30JB2nHR0y0YhhZr+QoY9qO+s="
#define BEARER "\"bearer_auth\":{\"digest\":\"" DIGEST "\"}"
#define NOAUTH "\"no_auth\":{}"
#define HOSTS "\"allowed_hosts\":[\"api.example.test\"]"

/*
 * Sealed by tests/e2e/tokenizer_seal.py (PyNaCl, as tokenizer's Go client does) to the
 * public key of this tokenizer OPEN_KEY:
 * {"inject_processor":{"token":"sk_live_python_sealed"},"bearer_auth":{"digest":
 *  "<sha256 of proxy-pass>"},"allowed_hosts":["api.stripe.com"]}
 */
#define PY_OPEN_KEY "6f70656e2d6b65792d666f722d746f6b656e697a65722d636f6d7061742d2121"
#define PY_PUB "ebd8f9ffc2679f2082e904a243b3839332927e357142351bc0dab6427d15ab59"
#define PY_TOKEN "8sOe6OC+l+AjYDL0S8ZccFsosfL+dFnY03XIX+UCMCYdp4eXbIMh1YQMR3QqWFlzDScroWnB" \
	"//tw4LNRkkyadM+yldj26xlOs84og++RDMVw8jqKVzEJ+P6PwbZBqCoBp8LVFuKuJo5IDkmnIcxQeHea" \
	"QRAWWPx4FAsUX+gpZkQLHm80EDZ9zsU09HFfseAiWkDIJ1zx4eEql1g8+3FfqYvdy3uQx2bFkT6ysKBP" \
	"UPsIjSjycIRbNBYKGk9Z4X5l6MAJrnyXYcYoD6U/eIunw3c="

struct fx {
	seal_keyring_t *kr;
	ratelimit_t *rl;
	tokenizer_env_t env;
	http_head_t head;
	bool have_head;
	inject_edits_t edits;
	tokenizer_out_t out;
	char *tokens[8];
	size_t ntokens;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t seed[32];

	if (f == NULL || sodium_init() < 0)
		return -1;
	memset(seed, 7, sizeof(seed));
	f->kr = seal_keyring_new();
	if (f->kr == NULL || seal_keyring_add(f->kr, seal_key_from_seed(seed)) < 0)
		return -1;
	f->rl = ratelimit_new(256);
	f->env.keyring = f->kr;
	f->env.rl = f->rl;
	f->env.now = NOW;
	f->env.now_ms = 1000;
	inject_edits_init(&f->edits);
	*state = f;
	return 0;
}

static void
fx_reset(struct fx *f)
{
	if (f->have_head)
		http_head_clear(&f->head);
	f->have_head = false;
	inject_edits_free(&f->edits);
	inject_edits_init(&f->edits);
	tokenizer_out_free(&f->out);
	for (size_t i = 0; i < f->ntokens; i++)
		free(f->tokens[i]);
	f->ntokens = 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fx_reset(f);
	ratelimit_free(f->rl);
	seal_keyring_free(f->kr);
	free(f);
	return 0;
}

/* Seal JSON to the fixture's key: a token owned by the fixture. */
static const char *
seal_json(struct fx *f, const char *json)
{
	const seal_key_t *k = seal_keyring_current(f->kr);
	char *t = seal_box(k->pk, json, strlen(json));

	assert_non_null(t);
	assert_true(f->ntokens < SG_ARRAY_LEN(f->tokens));
	f->tokens[f->ntokens++] = t;
	return t;
}

static void
parse_head(struct fx *f, const char *msg)
{
	http_parser p;
	const char *why = NULL;

	if (f->have_head)
		http_head_clear(&f->head);
	http_parser_init(&p, HTTP_REQUEST);
	if (http_head_parse(&p, msg, strlen(msg), &f->head, HTTP_GET, &why) != 0)
		fail_msg("head parse: %s", why);
	f->have_head = true;
}

/* A request with extra header lines (each ending in CRLF), then apply. */
static int
run_full(struct fx *f, const char *method, const char *path, const char *host,
    uint16_t port, const char *lines, const char *proxy_token)
{
	char msg[16384];

	fx_reset(f);
	snprintf(msg, sizeof(msg), "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", method, path, host,
	    lines);
	parse_head(f, msg);
	return tokenizer_apply(&f->env, &f->head, host, port, method, path, proxy_token,
	    &f->edits, &f->out);
}

static int
run(struct fx *f, const char *lines, const char *proxy_token)
{
	return run_full(f, "GET", "/v1/x", "api.example.test", 443, lines, proxy_token);
}

/* One Proxy-Tokenizer header with the sealed json and optional params. */
static int
run1(struct fx *f, const char *json, const char *params, const char *proxy_token)
{
	char lines[12000];
	const char *t;

	fx_reset(f);
	t = seal_json(f, json);
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s%s%s\r\n", t, params ? "; " : "",
	    params ? params : "");
	{
		/* fx_reset in run() would free the token: keep it */
		char msg[16384];

		snprintf(msg, sizeof(msg), "GET /v1/x HTTP/1.1\r\nHost: api.example.test\r\n"
		    "Proxy-Authorization: Bearer proxy-pass\r\n%s\r\n", lines);
		parse_head(f, msg);
	}
	return tokenizer_apply(&f->env, &f->head, "api.example.test", 443, "GET", "/v1/x",
	    proxy_token, &f->edits, &f->out);
}

/* Value of header name after edits (fields then added), or NULL. */
static const char *
hdr(struct fx *f, const char *name)
{
	for (size_t i = 0; i < f->head.nfields; i++)
		if (strcasecmp(f->head.fields[i].name, name) == 0) {
			const char *v = inject_field_value(&f->head, &f->edits, i);

			if (v != NULL)
				return v;
		}
	for (size_t i = 0; i < f->edits.nadd; i++)
		if (strcasecmp(f->edits.add[i].name, name) == 0)
			return f->edits.add[i].value;
	return NULL;
}

static size_t
hdr_count(struct fx *f, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < f->head.nfields; i++)
		if (strcasecmp(f->head.fields[i].name, name) == 0 &&
		    inject_field_value(&f->head, &f->edits, i) != NULL)
			n++;
	for (size_t i = 0; i < f->edits.nadd; i++)
		if (strcasecmp(f->edits.add[i].name, name) == 0)
			n++;
	return n;
}

static void
expect_deny(struct fx *f, int rc, unsigned status, const char *code)
{
	if (rc != -1 || f->out.status != status || f->out.code == NULL ||
	    strcmp(f->out.code, code) != 0)
		fail_msg("want %u %s, got rc %d %u %s (%s)", status, code, rc, f->out.status,
		    f->out.code ? f->out.code : "-", f->out.message);
	assert_true(f->out.message[0] != '\0');
}

static void
expect_ok(struct fx *f, int rc)
{
	if (rc != 0)
		fail_msg("want ok, got %u %s: %s", f->out.status, f->out.code ? f->out.code : "-",
		    f->out.message);
}

static bool
scrubbed(struct fx *f, const char *s)
{
	for (size_t i = 0; i < f->out.nscrub; i++)
		if (f->out.scrub[i].len == strlen(s) && memcmp(f->out.scrub[i].secret, s,
		    strlen(s)) == 0)
			return true;
	return false;
}

/* --- parsing ---------------------------------------------------------------------------- */

static void
test_parse_each_processor(void **state)
{
	tokenizer_secret_t s;
	const char *why;
	static const char *j[] = {
		"{\"inject_processor\":{\"token\":\"t\",\"fmt\":\"token %s\",\"allowed_fmt\":"
		    "[\"token %s\"],\"dst\":\"x-api-key\",\"allowed_dst\":[\"X-Api-Key\"]},"
		    BEARER "," HOSTS "}",
		"{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\",\"hash\":\"sha256\"}," NOAUTH
		    "," HOSTS "}",
		"{\"inject_body_processor\":{\"token\":\"t\",\"placeholder\":\"[[T]]\"}," NOAUTH
		    "}",
		"{\"oauth2_processor\":{\"token\":{\"access_token\":\"a\",\"refresh_token\":"
		    "\"r\"}}," NOAUTH "}",
		"{\"oauth2_body_processor\":{\"token\":{\"access_token\":\"a\"}}," NOAUTH "}",
		"{\"multi_processor\":[{\"inject_processor\":{\"token\":\"a\"}},"
		    "{\"multi_processor\":[{\"inject_body_processor\":{\"token\":\"b\"}}]}],"
		    NOAUTH "}",
		/* Go's omitempty / nil pointers: null and "" fields are absent */
		"{\"inject_processor\":{\"token\":\"t\",\"fmt\":\"\"},\"oauth2_processor\":null,"
		    NOAUTH ",\"bearer_auth\":null,\"allowed_host_pattern\":\"\",\"unknown\":1}",
		/* sealgate extras */
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"exp\":1,\"nbf\":0,"
		    "\"allowed_methods\":[\"GET\"],\"allowed_paths\":[\"/v1/*\"],"
		    "\"rate\":{\"requests\":5,\"per\":\"1m\"}}",
	};
	static const size_t nproc[] = {1, 1, 1, 1, 1, 2, 1, 1};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(j); i++) {
		if (tokenizer_parse_secret(j[i], strlen(j[i]), &s, &why) != 0)
			fail_msg("#%zu refused: %s", i, why);
		assert_int_equal(s.nproc, nproc[i]);
		tokenizer_secret_free(&s);
	}
	assert_int_equal(tokenizer_parse_secret(j[0], strlen(j[0]), &s, &why), 0);
	assert_int_equal(s.proc[0].kind, TK_INJECT);
	assert_string_equal(s.proc[0].token, "t");
	assert_string_equal(s.proc[0].dst, "x-api-key");
	assert_int_equal(s.auth, TK_AUTH_BEARER);
	assert_true(s.has_allowed_hosts);
	tokenizer_secret_free(&s);
	assert_int_equal(tokenizer_parse_secret(j[1], strlen(j[1]), &s, &why), 0);
	assert_int_equal(s.proc[0].key_len, 6);
	assert_memory_equal(s.proc[0].key, "secret", 6);
	tokenizer_secret_free(&s);
	assert_int_equal(tokenizer_parse_secret(j[7], strlen(j[7]), &s, &why), 0);
	assert_true(s.has_exp && s.has_nbf && s.rate.set);
	assert_int_equal(s.rate.requests, 5);
	assert_int_equal(s.rate.burst, 5);
	assert_int_equal(s.rate.per_ms, 60000);
	tokenizer_secret_free(&s);
}

static void
test_parse_invalid(void **state)
{
	tokenizer_secret_t s;
	const char *why;
	static const char *bad[] = {
		"", "null", "[]", "\"x\"", "{", "{\"inject_processor\":{\"token\":\"t\"}}",
		"{" NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\"},\"inject_processor\":{\"token\":\"u\"},"
		    NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\"},\"inject_body_processor\":{\"token\":"
		    "\"t\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH "," BEARER "}",
		"{\"inject_processor\":{\"token\":\"\"}," NOAUTH "}",
		"{\"inject_processor\":{}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":5}," NOAUTH "}",
		"{\"inject_processor\":\"t\"," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\"},\"bearer_auth\":{\"digest\":\"AAAA\"}}",
		"{\"inject_processor\":{\"token\":\"t\"},\"bearer_auth\":{\"digest\":\"%%%\"}}",
		"{\"inject_processor\":{\"token\":\"t\"},\"bearer_auth\":{}}",
		"{\"inject_processor\":{\"token\":\"t\"},\"no_auth\":true}",
		"{\"inject_processor\":{\"token\":\"t\",\"fmt\":\"Bearer\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"fmt\":\"%s %s\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"fmt\":\"Bearer %x\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"fmt\":\"a%\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"fmt\":\"%s\\r\\nX: y\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"allowed_fmt\":[]}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"allowed_fmt\":[\"%d\"]}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"dst\":\"Host\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"dst\":\"Proxy-Tokenizer\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"dst\":\"Bad Name\"}," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\",\"allowed_dst\":[\"Content-Length\"]},"
		    NOAUTH "}",
		"{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\",\"hash\":\"md5\"}," NOAUTH "}",
		"{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\",\"fmt\":\"%s\"}," NOAUTH "}",
		"{\"inject_hmac_processor\":{\"key\":\"not base64!\"}," NOAUTH "}",
		"{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\"},\"no_auth\":{}," HOSTS
		    ",\"allowed_host_pattern\":\"(unclosed\"}",
		"{\"oauth2_processor\":{\"token\":{}}," NOAUTH "}",
		"{\"oauth2_processor\":{\"token\":\"a\"}," NOAUTH "}",
		"{\"multi_processor\":[]," NOAUTH "}",
		"{\"multi_processor\":[{}]," NOAUTH "}",
		"{\"multi_processor\":[{\"inject_processor\":{\"token\":\"a\"},"
		    "\"inject_body_processor\":{\"token\":\"b\"}}]," NOAUTH "}",
		"{\"multi_processor\":[{\"multi_processor\":[{\"multi_processor\":[{"
		    "\"multi_processor\":[{\"multi_processor\":[{\"inject_processor\":{\"token\":"
		    "\"a\"}}]}]}]}]}]," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"allowed_hosts\":\"a\"}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"allowed_hosts\":[1]}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"exp\":\"soon\"}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"nbf\":1.5}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"allowed_paths\":[\"v1\"]}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"rate\":{\"requests\":0,"
		    "\"per\":\"1m\"}}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"rate\":{\"requests\":1,"
		    "\"per\":\"soon\"}}",
		"{\"inject_processor\":{\"token\":\"t\"}," NOAUTH ",\"rate\":{\"requests\":1}}",
	};
	static const char *unsupported[] = {
		"{\"sigv4_processor\":{\"access_key\":\"a\",\"secret_key\":\"b\"}," NOAUTH "}",
		"{\"jwt_processor\":{}," NOAUTH "}",
		"{\"future_processor\":{}," NOAUTH "}",
		"{\"multi_processor\":[{\"github_app_processor\":{}}]," NOAUTH "}",
		"{\"inject_processor\":{\"token\":\"t\"},\"macaroon_auth\":{\"key\":\"AAAA\"}}",
		"{\"inject_processor\":{\"token\":\"t\"},\"fly_src_auth\":{}}",
		"{\"inject_processor\":{\"token\":\"t\"},\"flyio_macaroon_auth\":{}}",
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		why = NULL;
		if (tokenizer_parse_secret(bad[i], strlen(bad[i]), &s, &why) != -1)
			fail_msg("bad #%zu accepted: %s", i, bad[i]);
		assert_non_null(why);
		assert_null(strstr(why, "sk_"));
	}
	for (size_t i = 0; i < SG_ARRAY_LEN(unsupported); i++)
		if (tokenizer_parse_secret(unsupported[i], strlen(unsupported[i]), &s, &why) != -2)
			fail_msg("unsupported #%zu: want -2 (%s)", i, unsupported[i]);
}

static void
test_split_header(void **state)
{
	const char *t, *p, *why;
	size_t tl, pl;
	const char *v = "  abc=  ;  {\"dst\":\"X\"} ";

	(void)state;
	assert_int_equal(tokenizer_split_header(v, strlen(v), &t, &tl, &p, &pl, &why), 0);
	assert_int_equal(tl, 4);
	assert_memory_equal(t, "abc=", 4);
	assert_int_equal(pl, 11);
	assert_memory_equal(p, "{\"dst\":\"X\"}", 11);
	assert_int_equal(tokenizer_split_header("abc", 3, &t, &tl, &p, &pl, &why), 0);
	assert_null(p);
	assert_int_equal(tokenizer_split_header("abc;  ", 6, &t, &tl, &p, &pl, &why), 0);
	assert_null(p);
	assert_int_equal(tokenizer_split_header(" ; {}", 5, &t, &tl, &p, &pl, &why), -1);
	assert_int_equal(tokenizer_split_header("ab, cd", 6, &t, &tl, &p, &pl, &why), -1);
}

/* --- processors ------------------------------------------------------------------------- */

static void
test_inject_default(void **state)
{
	struct fx *f = *state;
	int rc = run1(f, "{\"inject_processor\":{\"token\":\"sk_inject_1\"}," BEARER ","
	    HOSTS "}", NULL, "proxy-pass");

	expect_ok(f, rc);
	assert_int_equal(f->out.n, 1);
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_inject_1");
	assert_null(hdr(f, "Proxy-Tokenizer"));
	assert_null(hdr(f, "Proxy-Authorization"));
	assert_true(f->edits.secret_in_head);
	assert_true(scrubbed(f, "sk_inject_1"));
	assert_false(f->out.hmac.set);
	assert_int_equal(f->out.nbody, 0);
	assert_int_equal(strlen(f->out.id), 32);
	assert_string_equal(f->out.what, "inject_processor/bearer_auth");
	assert_string_equal(TOKENIZER_SCRUB_TEXT, "[sealgate:redacted]");
}

static void
test_inject_replaces_existing(void **state)
{
	struct fx *f = *state;
	char lines[4096];
	const char *t = seal_json(f, "{\"inject_processor\":{\"token\":\"sk_r\"}," NOAUTH ","
	    HOSTS "}");
	char *keep = strdup(t);
	int rc;

	snprintf(lines, sizeof(lines), "authorization: Bearer placeholder\r\nX-A: 1\r\n"
	    "Authorization: Bearer second\r\nProxy-Tokenizer: %s\r\n", keep);
	rc = run(f, lines, NULL);
	expect_ok(f, rc);
	assert_int_equal(hdr_count(f, "Authorization"), 1);
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_r");
	assert_string_equal(hdr(f, "X-A"), "1");
	assert_int_equal(f->edits.nadd, 0);
	free(keep);
}

static void
test_inject_sealed_dst_fmt(void **state)
{
	struct fx *f = *state;
	int rc = run1(f, "{\"inject_processor\":{\"token\":\"sk_k\",\"dst\":\"x-api-key\","
	    "\"fmt\":\"%s\"}," NOAUTH "," HOSTS "}", NULL, NULL);

	expect_ok(f, rc);
	assert_string_equal(hdr(f, "X-Api-Key"), "sk_k");
	assert_string_equal(f->edits.add[0].name, "X-Api-Key");	/* Go's canonical form */
	assert_null(hdr(f, "Authorization"));
	/* a param naming the pinned value (any case) is fine, another is refused */
	rc = run1(f, "{\"inject_processor\":{\"token\":\"sk_k\",\"dst\":\"x-api-key\","
	    "\"fmt\":\"%s\"}," NOAUTH "," HOSTS "}", "{\"dst\":\"X-API-KEY\",\"fmt\":\"%s\"}",
	    NULL);
	expect_ok(f, rc);
	rc = run1(f, "{\"inject_processor\":{\"token\":\"sk_k\",\"dst\":\"x-api-key\"},"
	    NOAUTH "," HOSTS "}", "{\"dst\":\"X-Other\"}", NULL);
	expect_deny(f, rc, 403, "tokenizer_param_denied");
	rc = run1(f, "{\"inject_processor\":{\"token\":\"sk_k\",\"fmt\":\"token %s\"},"
	    NOAUTH "," HOSTS "}", "{\"fmt\":\"Bearer %s\"}", NULL);
	expect_deny(f, rc, 403, "tokenizer_param_denied");
}

static void
test_params_allowed_lists(void **state)
{
	struct fx *f = *state;
	const char *j = "{\"inject_processor\":{\"token\":\"sk_a\",\"allowed_fmt\":"
	    "[\"token %s\",\"Bearer %s\"],\"allowed_dst\":[\"Authorization\",\"X-Key\"]},"
	    NOAUTH "," HOSTS "}";
	int rc;

	rc = run1(f, j, NULL, NULL);		/* first allowed values, as tokenizer */
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "token sk_a");
	rc = run1(f, j, "{\"dst\":\"x-key\",\"fmt\":\"Bearer %s\"}", NULL);
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "X-Key"), "Bearer sk_a");
	assert_null(hdr(f, "Authorization"));
	rc = run1(f, j, "{\"fmt\":\"%s\"}", NULL);
	expect_deny(f, rc, 403, "tokenizer_param_denied");
	rc = run1(f, j, "{\"dst\":\"X-Leak\"}", NULL);
	expect_deny(f, rc, 403, "tokenizer_param_denied");
}

/* sealgate is safer than tokenizer: with nothing pinned, params cannot move the secret. */
static void
test_params_refused_without_pins(void **state)
{
	struct fx *f = *state;
	const char *j = "{\"inject_processor\":{\"token\":\"sk_p\"}," NOAUTH "," HOSTS "}";
	static const char *refused[] = {
		"{\"dst\":\"X-Echo-Me\"}", "{\"fmt\":\"%s\"}", "{\"fmt\":\"Basic %s\"}",
		"{\"dst\":\"Cookie\"}",
	};
	int rc;

	for (size_t i = 0; i < SG_ARRAY_LEN(refused); i++) {
		rc = run1(f, j, refused[i], NULL);
		expect_deny(f, rc, 403, "tokenizer_param_denied");
		assert_null(strstr(f->out.message, "sk_p"));
	}
	rc = run1(f, j, "{\"dst\":\"authorization\",\"fmt\":\"Bearer %s\",\"other\":\"x\"}",
	    NULL);
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_p");
	/* malformed params */
	rc = run1(f, j, "{\"dst\":1}", NULL);
	expect_deny(f, rc, 400, "tokenizer_invalid");
	rc = run1(f, j, "[\"dst\"]", NULL);
	expect_deny(f, rc, 400, "tokenizer_invalid");
	rc = run1(f, j, "{\"dst\":\"a\",\"dst\":\"b\"}", NULL);
	expect_deny(f, rc, 400, "tokenizer_invalid");
}

static void
test_hmac(void **state)
{
	struct fx *f = *state;
	unsigned char mac[32];
	char hex[65], want[80];
	const char *body = "{\"amount\":100}";
	char *v;
	int rc;

	crypto_auth_hmacsha256_state st;

	/* the key is 6 bytes: the one-shot crypto_auth_hmacsha256 would read 32 */
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)"secret", 6);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
	crypto_auth_hmacsha256_final(&st, mac);
	util_hex_encode(mac, sizeof(mac), hex);
	/* Authorization already present: dropped, the shell sets the HMAC header last */
	fx_reset(f);
	{
		const char *t = seal_json(f, "{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\","
		    "\"hash\":\"sha256\"}," NOAUTH "," HOSTS "}");
		char msg[4096];

		snprintf(msg, sizeof(msg), "POST /v1/x HTTP/1.1\r\nHost: api.example.test\r\n"
		    "Authorization: Bearer old\r\nContent-Length: 14\r\nProxy-Tokenizer: %s\r\n"
		    "\r\n", t);
		parse_head(f, msg);
		rc = tokenizer_apply(&f->env, &f->head, "api.example.test", 443, "POST",
		    "/v1/x", NULL, &f->edits, &f->out);
	}
	expect_ok(f, rc);
	assert_true(f->out.hmac.set);
	assert_string_equal(f->out.hmac.dst, "Authorization");
	assert_string_equal(f->out.hmac.fmt, "Bearer %x");
	assert_null(hdr(f, "Authorization"));
	v = tokenizer_hmac_value(&f->out, body, strlen(body));
	snprintf(want, sizeof(want), "Bearer %s", hex);
	assert_string_equal(v, want);
	secmem_wipe_free(v);

	/* %X upper-case, sealed dst */
	rc = run1(f, "{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\",\"hash\":\"sha256\","
	    "\"fmt\":\"sig=%X\",\"dst\":\"X-Signature\"}," NOAUTH "," HOSTS "}", NULL, NULL);
	expect_ok(f, rc);
	v = tokenizer_hmac_value(&f->out, body, strlen(body));
	for (char *p = hex; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	snprintf(want, sizeof(want), "sig=%s", hex);
	assert_string_equal(v, want);
	assert_string_equal(f->out.hmac.dst, "X-Signature");
	secmem_wipe_free(v);

	/* the "msg" param is signed instead of the body, at once */
	rc = run1(f, "{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\",\"hash\":\"sha256\"},"
	    NOAUTH "," HOSTS "}", "{\"msg\":\"{\\\"amount\\\":100}\"}", NULL);
	expect_ok(f, rc);
	assert_false(f->out.hmac.set);
	for (char *p = hex; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	snprintf(want, sizeof(want), "Bearer %s", hex);
	assert_string_equal(hdr(f, "Authorization"), want);
	assert_null(tokenizer_hmac_value(&f->out, body, strlen(body)));
	/* hmac fmt param that is not the default is refused */
	rc = run1(f, "{\"inject_hmac_processor\":{\"key\":\"c2VjcmV0\"}," NOAUTH "," HOSTS
	    "}", "{\"fmt\":\"%x\"}", NULL);
	expect_deny(f, rc, 403, "tokenizer_param_denied");
}

static void
test_body_processor(void **state)
{
	struct fx *f = *state;
	int rc;

	rc = run1(f, "{\"inject_body_processor\":{\"token\":\"sk_body\"}," NOAUTH "," HOSTS
	    "}", NULL, NULL);
	expect_ok(f, rc);
	assert_int_equal(f->out.nbody, 1);
	assert_string_equal(f->out.body[0].placeholder, "{{ACCESS_TOKEN}}");
	assert_string_equal(f->out.body[0].token, "sk_body");
	assert_int_equal(f->out.body[0].token_len, 7);
	assert_true(scrubbed(f, "sk_body"));
	assert_false(f->edits.secret_in_head);
	rc = run1(f, "{\"inject_body_processor\":{\"token\":\"sk_body\",\"placeholder\":"
	    "\"<<T>>\"}," NOAUTH "," HOSTS "}", NULL, NULL);
	expect_ok(f, rc);
	assert_string_equal(f->out.body[0].placeholder, "<<T>>");
	rc = run1(f, "{\"inject_body_processor\":{\"token\":\"sk_body\"}," NOAUTH "," HOSTS
	    "}", "{\"placeholder\":\"__KEY__\"}", NULL);
	expect_ok(f, rc);
	assert_string_equal(f->out.body[0].placeholder, "__KEY__");
}

static void
test_oauth2(void **state)
{
	struct fx *f = *state;
	const char *j = "{\"oauth2_processor\":{\"token\":{\"access_token\":\"at_1234\","
	    "\"refresh_token\":\"rt_5678\"}}," NOAUTH "," HOSTS "}";
	int rc;

	rc = run1(f, j, NULL, NULL);
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "Bearer at_1234");
	assert_true(scrubbed(f, "at_1234") && scrubbed(f, "rt_5678"));
	rc = run1(f, j, "{\"st\":\"refresh\"}", NULL);
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "Bearer rt_5678");
	rc = run1(f, j, "{\"st\":\"access\"}", NULL);
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "Bearer at_1234");
	rc = run1(f, j, "{\"st\":\"id_token\"}", NULL);
	expect_deny(f, rc, 403, "tokenizer_param_denied");
	rc = run1(f, j, "{\"placeholder\":\"$TOKEN\",\"st\":\"refresh\"}", NULL);
	expect_ok(f, rc);
	assert_null(hdr(f, "Authorization"));
	assert_string_equal(f->out.body[0].placeholder, "$TOKEN");
	assert_string_equal(f->out.body[0].token, "rt_5678");
	rc = run1(f, "{\"oauth2_processor\":{\"token\":{\"access_token\":\"at_1234\"}},"
	    NOAUTH "," HOSTS "}", "{\"st\":\"refresh\"}", NULL);
	expect_deny(f, rc, 403, "tokenizer_param_denied");
}

static void
test_oauth2_body(void **state)
{
	struct fx *f = *state;
	int rc;

	rc = run1(f, "{\"oauth2_body_processor\":{\"token\":{\"access_token\":\"at_b\","
	    "\"refresh_token\":\"rt_b\"},\"placeholder\":\"@@@@\"}," NOAUTH "," HOSTS "}",
	    "{\"st\":\"refresh\"}", NULL);
	expect_ok(f, rc);
	assert_int_equal(f->out.nbody, 1);
	assert_string_equal(f->out.body[0].placeholder, "@@@@");
	assert_string_equal(f->out.body[0].token, "rt_b");
	assert_null(hdr(f, "Authorization"));
	rc = run1(f, "{\"oauth2_body_processor\":{\"token\":{\"access_token\":\"at_b\"}},"
	    NOAUTH "," HOSTS "}", NULL, NULL);
	expect_ok(f, rc);
	assert_string_equal(f->out.body[0].placeholder, "{{ACCESS_TOKEN}}");
	assert_string_equal(f->out.body[0].token, "at_b");
	/* under SG_PLACEHOLDER_MIN bytes it would match ordinary body text */
	rc = run1(f, "{\"oauth2_body_processor\":{\"token\":{\"access_token\":\"at_b\"},"
	    "\"placeholder\":\"@@@\"}," NOAUTH "," HOSTS "}", NULL, NULL);
	expect_deny(f, rc, 400, "tokenizer_invalid");
	assert_int_equal(f->out.nbody, 0);
}

static void
test_multi(void **state)
{
	struct fx *f = *state;
	int rc;

	rc = run1(f, "{\"multi_processor\":[{\"inject_processor\":{\"token\":\"sk_m1\"}},"
	    "{\"inject_processor\":{\"token\":\"sk_m2\",\"dst\":\"X-Key\",\"fmt\":\"%s\"}},"
	    "{\"inject_body_processor\":{\"token\":\"sk_m3\"}}]," BEARER "," HOSTS "}", NULL,
	    "proxy-pass");
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_m1");
	assert_string_equal(hdr(f, "X-Key"), "sk_m2");
	assert_string_equal(f->out.body[0].token, "sk_m3");
	assert_true(scrubbed(f, "sk_m1") && scrubbed(f, "sk_m2") && scrubbed(f, "sk_m3"));
	assert_string_equal(f->out.what, "multi_processor/bearer_auth");
	/* in order: the later processor setting the same header wins (Header.Set) */
	rc = run1(f, "{\"multi_processor\":[{\"inject_processor\":{\"token\":\"first\"}},"
	    "{\"inject_processor\":{\"token\":\"second\"}}]," NOAUTH "," HOSTS "}", NULL,
	    NULL);
	expect_ok(f, rc);
	assert_int_equal(hdr_count(f, "Authorization"), 1);
	assert_string_equal(hdr(f, "Authorization"), "Bearer second");
}

/* --- auth, scope, time ------------------------------------------------------------------ */

static void
test_auth(void **state)
{
	struct fx *f = *state;
	const char *j = "{\"inject_processor\":{\"token\":\"sk_auth\"}," BEARER "," HOSTS "}";
	int rc;

	rc = run1(f, j, NULL, "proxy-pass");
	expect_ok(f, rc);
	rc = run1(f, j, NULL, "proxy-pas");
	expect_deny(f, rc, 407, "tokenizer_auth");
	rc = run1(f, j, NULL, "proxy-pass ");
	expect_deny(f, rc, 407, "tokenizer_auth");
	rc = run1(f, j, NULL, "");
	expect_deny(f, rc, 407, "tokenizer_auth");
	rc = run1(f, j, NULL, NULL);
	expect_deny(f, rc, 407, "tokenizer_auth");
	assert_null(strstr(f->out.message, "sk_auth"));
	/* headers never forwarded, also when refused */
	assert_null(hdr(f, "Proxy-Tokenizer"));
	assert_null(hdr(f, "Proxy-Authorization"));
	rc = run1(f, "{\"inject_processor\":{\"token\":\"sk_auth\"}," NOAUTH "," HOSTS "}",
	    NULL, NULL);
	expect_ok(f, rc);
}

static int
run_host(struct fx *f, const char *json, const char *host, uint16_t port)
{
	char lines[8192];
	const char *t;

	fx_reset(f);
	t = seal_json(f, json);
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s\r\n", t);
	{
		char msg[16384];

		snprintf(msg, sizeof(msg), "GET / HTTP/1.1\r\nHost: x\r\n%s\r\n", lines);
		parse_head(f, msg);
	}
	return tokenizer_apply(&f->env, &f->head, host, port, "GET", "/", NULL, &f->edits,
	    &f->out);
}

static void
test_allowed_hosts(void **state)
{
	struct fx *f = *state;
	static const struct { const char *hosts, *host; uint16_t port; bool ok; } t[] = {
		{"[\"api.example.test\"]", "api.example.test", 443, true},
		{"[\"api.example.test\"]", "api.example.test", 80, true},
		{"[\"API.Example.Test\"]", "api.example.test", 443, true},
		{"[\"api.example.test\"]", "api.example.test", 8443, false},
		{"[\"api.example.test:8443\"]", "api.example.test", 8443, true},
		{"[\"api.example.test:8443\"]", "api.example.test", 443, false},
		{"[\"api.example.test:443\"]", "api.example.test", 443, true},
		{"[\"api.example.test\"]", "api.example.test.evil.test", 443, false},
		{"[\"api.example.test\"]", "evilapi.example.test", 443, false},
		{"[\"api.example.test\"]", "example.test", 443, false},
		{"[\"a.test\",\"b.test\"]", "b.test", 443, true},
		{"[]", "api.example.test", 443, false},
		{"[\"[::1]:8443\"]", "::1", 8443, true},
		{"[\"[::1]\"]", "::1", 443, true},
	};
	char json[512];

	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		int rc;

		snprintf(json, sizeof(json), "{\"inject_processor\":{\"token\":\"sk_h\"},"
		    NOAUTH ",\"allowed_hosts\":%s}", t[i].hosts);
		rc = run_host(f, json, t[i].host, t[i].port);
		if (t[i].ok && rc != 0)
			fail_msg("#%zu %s %s:%u refused: %s", i, t[i].hosts, t[i].host,
			    t[i].port, f->out.message);
		if (!t[i].ok)
			expect_deny(f, rc, 403, "host_out_of_scope");
	}
}

static void
test_allowed_host_pattern(void **state)
{
	struct fx *f = *state;
	static const struct { const char *pat, *host; uint16_t port; bool ok; } t[] = {
		{"api\\\\.example\\\\.test", "api.example.test", 443, true},
		{"api\\\\.example\\\\.test", "api.example.test.evil.net", 443, false},
		{"api\\\\.example\\\\.test", "evil-api.example.test", 443, false},
		{"^api\\\\.example\\\\.test$", "api.example.test", 443, true},
		{"[a-z]+\\\\.example\\\\.test", "other.example.test", 443, true},
		{"[a-z]+\\\\.example\\\\.test", "a.b.example.test", 443, false},
		{".*\\\\.example\\\\.test", "a.b.example.test", 443, true},
		{"api\\\\.example\\\\.test", "api.example.test", 8443, false},
		{"api\\\\.example\\\\.test:\\\\d+", "api.example.test", 8443, true},
		{"api\\\\.example\\\\.test(:8443)?", "api.example.test", 8443, true},
		{"(a|b)\\\\.test", "a.test", 443, true},
		/* the end anchor makes the matcher try the longer alternative */
		{"api|api\\\\.example\\\\.test", "api.example.test", 443, true},
		{"API\\\\.EXAMPLE\\\\.TEST", "api.example.test", 443, false},
		{"(?i)API\\\\.EXAMPLE\\\\.TEST", "api.example.test", 443, true},
		/* catastrophic backtracking is cut by the match limits */
		{"(a+)+b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", 443, false},
	};
	char json[1024];

	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		int rc;

		snprintf(json, sizeof(json), "{\"inject_processor\":{\"token\":\"sk_h\"},"
		    NOAUTH ",\"allowed_host_pattern\":\"%s\"}", t[i].pat);
		rc = run_host(f, json, t[i].host, t[i].port);
		if (t[i].ok && rc != 0)
			fail_msg("#%zu %s %s:%u refused: %s", i, t[i].pat, t[i].host, t[i].port,
			    f->out.message);
		if (!t[i].ok)
			expect_deny(f, rc, 403, "host_out_of_scope");
	}
	/* both validators must pass */
	expect_deny(f, run_host(f, "{\"inject_processor\":{\"token\":\"sk_h\"}," NOAUTH
	    ",\"allowed_hosts\":[\"a.test\"],\"allowed_host_pattern\":\"b\\\\.test\"}",
	    "a.test", 443), 403, "host_out_of_scope");
}

static void
test_unscoped_secret(void **state)
{
	struct fx *f = *state;
	const char *j = "{\"inject_processor\":{\"token\":\"sk_u\"}," NOAUTH "}";
	int rc;

	rc = run_host(f, j, "anywhere.test", 443);
	expect_deny(f, rc, 403, "host_out_of_scope");
	f->env.allow_unscoped = true;
	rc = run_host(f, j, "anywhere.test", 443);
	f->env.allow_unscoped = false;
	expect_ok(f, rc);
}

static void
test_exp_nbf(void **state)
{
	struct fx *f = *state;
	char j[512];
	static const struct { const char *field; long long t; const char *code; } c[] = {
		{"exp", NOW + 100, NULL},
		{"exp", NOW - SG_CLOCK_SKEW_S + 1, NULL},
		{"exp", NOW - SG_CLOCK_SKEW_S - 1, "token_expired"},
		{"exp", 0, "token_expired"},
		{"nbf", NOW - 100, NULL},
		{"nbf", NOW + SG_CLOCK_SKEW_S, NULL},
		{"nbf", NOW + SG_CLOCK_SKEW_S + 1, "token_not_yet_valid"},
	};

	for (size_t i = 0; i < SG_ARRAY_LEN(c); i++) {
		int rc;

		snprintf(j, sizeof(j), "{\"inject_processor\":{\"token\":\"sk_t\"}," NOAUTH ","
		    HOSTS ",\"%s\":%lld}", c[i].field, c[i].t);
		rc = run1(f, j, NULL, NULL);
		if (c[i].code == NULL)
			expect_ok(f, rc);
		else
			expect_deny(f, rc, 403, c[i].code);
	}
}

static void
test_methods_paths(void **state)
{
	struct fx *f = *state;
	const char *j = "{\"inject_processor\":{\"token\":\"sk_mp\"}," NOAUTH "," HOSTS
	    ",\"allowed_methods\":[\"GET\",\"POST\"],\"allowed_paths\":[\"/v1/charges/*\","
	    "\"/v2/\"]}";
	static const struct { const char *m, *p, *code; unsigned st; } c[] = {
		{"GET", "/v1/charges/ch_1", NULL, 0},
		{"POST", "/v1/charges/ch_1?expand=x", NULL, 0},
		{"GET", "/v2/anything/deep", NULL, 0},
		{"DELETE", "/v1/charges/ch_1", "method_out_of_scope", 403},
		{"get", "/v1/charges/ch_1", "method_out_of_scope", 403},
		{"GET", "/v1/refunds", "path_out_of_scope", 403},
		{"GET", "/v1/charges", "path_out_of_scope", 403},
		{"GET", "/v1/charges/../refunds", "bad_request", 400},
		{"GET", "/v1/charges/%2e%2e/refunds", "bad_request", 400},
		{"GET", "/v1/%63harges/ch_1", NULL, 0},
	};

	for (size_t i = 0; i < SG_ARRAY_LEN(c); i++) {
		char lines[8192];
		const char *t;
		int rc;

		fx_reset(f);
		t = seal_json(f, j);
		snprintf(lines, sizeof(lines), "%s %s HTTP/1.1\r\nHost: api.example.test\r\n"
		    "Proxy-Tokenizer: %s\r\n\r\n", c[i].m[0] == 'g' ? "GET" : c[i].m, c[i].p, t);
		parse_head(f, lines);
		rc = tokenizer_apply(&f->env, &f->head, "api.example.test", 443, c[i].m, c[i].p,
		    NULL, &f->edits, &f->out);
		if (c[i].code == NULL)
			expect_ok(f, rc);
		else
			expect_deny(f, rc, c[i].st, c[i].code);
	}
}

static void
test_rate(void **state)
{
	struct fx *f = *state;
	const char *j = "{\"inject_processor\":{\"token\":\"sk_rate\"}," NOAUTH "," HOSTS
	    ",\"rate\":{\"requests\":2,\"per\":\"1m\"}}";
	char *t;
	char lines[4096];
	int rc;

	fx_reset(f);
	t = strdup(seal_json(f, j));
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s\r\n", t);
	f->env.now_ms = 5000;
	expect_ok(f, run(f, lines, NULL));
	expect_ok(f, run(f, lines, NULL));
	rc = run(f, lines, NULL);
	expect_deny(f, rc, 429, "rate_limited");
	assert_non_null(strstr(f->out.extra, "Retry-After: "));
	assert_non_null(strstr(f->out.extra, "\"tokenizer\""));
	/* a refusal for another reason takes no token */
	f->env.now_ms += 30000;		/* one token back */
	expect_deny(f, run_full(f, "GET", "/", "other.example.test", 443, lines, NULL), 403,
	    "host_out_of_scope");
	expect_ok(f, run(f, lines, NULL));
	expect_deny(f, run(f, lines, NULL), 429, "rate_limited");
	/* other tokens (same JSON sealed again: another ciphertext) have their own bucket */
	{
		char lines2[4096];

		snprintf(lines2, sizeof(lines2), "Proxy-Tokenizer: %s\r\n", seal_json(f, j));
		expect_ok(f, run(f, lines2, NULL));
	}
	/* without a rate table the rate is not enforced */
	f->env.rl = NULL;
	expect_ok(f, run(f, lines, NULL));
	f->env.rl = f->rl;
	free(t);
}

/* --- headers: several, joined, malformed ------------------------------------------------ */

static void
test_several_headers(void **state)
{
	struct fx *f = *state;
	char lines[16384];
	char *a, *b;
	int rc;

	fx_reset(f);
	a = strdup(seal_json(f, "{\"inject_processor\":{\"token\":\"sk_one\"}," NOAUTH ","
	    HOSTS "}"));
	b = strdup(seal_json(f, "{\"inject_processor\":{\"token\":\"sk_two\",\"dst\":"
	    "\"X-Two\",\"fmt\":\"%s\"}," NOAUTH "," HOSTS "}"));
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s\r\nProxy-Tokenizer: %s\r\n", a, b);
	rc = run(f, lines, NULL);
	expect_ok(f, rc);
	assert_int_equal(f->out.n, 2);
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_one");
	assert_string_equal(hdr(f, "X-Two"), "sk_two");
	/* comma-joined in one line: refused, as tokenizer does */
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s, %s\r\n", a, b);
	rc = run(f, lines, NULL);
	expect_deny(f, rc, 400, "tokenizer_invalid");
	/* one bad secret refuses the request */
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s\r\nProxy-Tokenizer: AAAA\r\n", a);
	rc = run(f, lines, NULL);
	expect_deny(f, rc, 400, "tokenizer_invalid");
	/* too many */
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s\r\nProxy-Tokenizer: %s\r\n"
	    "Proxy-Tokenizer: %s\r\nProxy-Tokenizer: %s\r\nProxy-Tokenizer: %s\r\n", a, a, a, a,
	    a);
	rc = run(f, lines, NULL);
	expect_deny(f, rc, 400, "tokenizer_invalid");
	free(a);
	free(b);
}

static void
test_malformed_tokens(void **state)
{
	struct fx *f = *state;
	uint8_t seed[32];
	seal_key_t *other;
	char *t, lines[4096];
	const char *j = "{\"inject_processor\":{\"token\":\"sk_x\"}," NOAUTH "," HOSTS "}";

	expect_deny(f, run(f, "Proxy-Tokenizer: not*base64\r\n", NULL), 400,
	    "tokenizer_invalid");
	expect_deny(f, run(f, "Proxy-Tokenizer: ; {}\r\n", NULL), 400, "tokenizer_invalid");
	expect_deny(f, run(f, "Proxy-Tokenizer: QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"
	    "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n", NULL), 400, "tokenizer_invalid");
	/* sealed to another key */
	memset(seed, 9, sizeof(seed));
	other = seal_key_from_seed(seed);
	t = seal_box(other->pk, j, strlen(j));
	snprintf(lines, sizeof(lines), "Proxy-Tokenizer: %s\r\n", t);
	expect_deny(f, run(f, lines, NULL), 400, "tokenizer_invalid");
	free(t);
	seal_key_free(other);
	/* not JSON inside; unsupported processor */
	expect_deny(f, run1(f, "not json", NULL, NULL), 400, "tokenizer_invalid");
	expect_deny(f, run1(f, "{\"sigv4_processor\":{}," NOAUTH "}", NULL, NULL), 400,
	    "tokenizer_unsupported");
	expect_deny(f, run1(f, "{\"inject_processor\":{\"token\":\"a\"},\"inject_body_processor"
	    "\":{\"token\":\"b\"}," NOAUTH "}", NULL, NULL), 400, "tokenizer_invalid");
	expect_deny(f, run1(f, "{\"inject_processor\":{\"token\":\"a\"}}", NULL, NULL), 400,
	    "tokenizer_invalid");
	/* a token that would split the header */
	expect_deny(f, run1(f, "{\"inject_processor\":{\"token\":\"a\\r\\nX-Evil: 1\"}," NOAUTH
	    "," HOSTS "}", NULL, NULL), 400, "tokenizer_invalid");
}

static void
test_no_header(void **state)
{
	struct fx *f = *state;
	int rc = run(f, "Proxy-Authorization: Bearer proxy-pass\r\nAuthorization: x\r\n",
	    "proxy-pass");

	expect_ok(f, rc);
	assert_int_equal(f->out.n, 0);
	assert_null(hdr(f, "Proxy-Authorization"));
	assert_string_equal(hdr(f, "Authorization"), "x");
	assert_false(f->edits.secret_in_head);
}

/* Proxy-Tokenizer on the CONNECT request applies to requests inside the tunnel. */
static void
test_connect_head(void **state)
{
	struct fx *f = *state;
	http_head_t ch;
	http_parser p;
	char msg[8192];
	const char *why;
	const char *t;
	int rc;

	fx_reset(f);
	t = seal_json(f, "{\"inject_processor\":{\"token\":\"sk_conn\"}," BEARER "," HOSTS "}");
	snprintf(msg, sizeof(msg), "CONNECT api.example.test:443 HTTP/1.1\r\nHost: "
	    "api.example.test:443\r\nProxy-Tokenizer: %s\r\n\r\n", t);
	http_parser_init(&p, HTTP_REQUEST);
	assert_int_equal(http_head_parse(&p, msg, strlen(msg), &ch, HTTP_GET, &why), 0);
	parse_head(f, "GET /v1/x HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
	f->env.connect_head = &ch;
	rc = tokenizer_apply(&f->env, &f->head, "api.example.test", 443, "GET", "/v1/x",
	    "proxy-pass", &f->edits, &f->out);
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_conn");
	tokenizer_out_free(&f->out);
	inject_edits_free(&f->edits);
	rc = tokenizer_apply(&f->env, &f->head, "other.example.test", 443, "GET", "/", "proxy-pass",
	    &f->edits, &f->out);
	expect_deny(f, rc, 403, "host_out_of_scope");
	f->env.connect_head = NULL;
	http_head_clear(&ch);
}

/* Edits already made by the handle swap stay; the tokenizer header wins where it sets. */
static void
test_existing_edits(void **state)
{
	struct fx *f = *state;
	char msg[8192];
	const char *t;
	int rc;

	fx_reset(f);
	t = seal_json(f, "{\"inject_processor\":{\"token\":\"sk_e\"}," NOAUTH "," HOSTS "}");
	snprintf(msg, sizeof(msg), "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Api-Key: h\r\n"
	    "Proxy-Tokenizer: %s\r\n\r\n", t);
	parse_head(f, msg);
	f->edits.kind[1] = EDIT_REPLACE;
	f->edits.value[1] = secmem_wipe_dup("real-key", 8);
	f->edits.secret_in_head = true;
	rc = tokenizer_apply(&f->env, &f->head, "api.example.test", 443, "GET", "/", NULL,
	    &f->edits, &f->out);
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "X-Api-Key"), "real-key");
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_e");
}

/* seal.key is tokenizer's OPEN_KEY (hex X25519 private key): a token sealed by another
 * implementation (PyNaCl, as tokenizer's clients) to its public key opens. */
static void
test_open_key_compat(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/sgtk.XXXXXX", path[64], err[128];
	seal_key_t *k;
	seal_keyring_t *kr;
	char pubhex[65];
	FILE *fp;
	int rc;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/seal.key", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(PY_OPEN_KEY "\n", fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	k = seal_key_load(path, err, sizeof(err));
	if (k == NULL)
		fail_msg("seal_key_load: %s", err);
	util_hex_encode(k->pk, sizeof(k->pk), pubhex);
	assert_string_equal(pubhex, PY_PUB);
	kr = seal_keyring_new();
	assert_int_equal(seal_keyring_add(kr, k), 0);
	unlink(path);
	rmdir(dir);
	fx_reset(f);
	parse_head(f, "GET /v1/charges HTTP/1.1\r\nHost: api.stripe.com\r\n"
	    "Proxy-Authorization: Bearer proxy-pass\r\nProxy-Tokenizer: " PY_TOKEN "\r\n\r\n");
	f->env.keyring = kr;
	rc = tokenizer_apply(&f->env, &f->head, "api.stripe.com", 80, "GET", "/v1/charges",
	    "proxy-pass", &f->edits, &f->out);
	f->env.keyring = f->kr;
	expect_ok(f, rc);
	assert_string_equal(hdr(f, "Authorization"), "Bearer sk_live_python_sealed");
	seal_keyring_free(kr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_each_processor),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_split_header),
		cmocka_unit_test(test_inject_default),
		cmocka_unit_test(test_inject_replaces_existing),
		cmocka_unit_test(test_inject_sealed_dst_fmt),
		cmocka_unit_test(test_params_allowed_lists),
		cmocka_unit_test(test_params_refused_without_pins),
		cmocka_unit_test(test_hmac),
		cmocka_unit_test(test_body_processor),
		cmocka_unit_test(test_oauth2),
		cmocka_unit_test(test_oauth2_body),
		cmocka_unit_test(test_multi),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_allowed_hosts),
		cmocka_unit_test(test_allowed_host_pattern),
		cmocka_unit_test(test_unscoped_secret),
		cmocka_unit_test(test_exp_nbf),
		cmocka_unit_test(test_methods_paths),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_several_headers),
		cmocka_unit_test(test_malformed_tokens),
		cmocka_unit_test(test_no_header),
		cmocka_unit_test(test_connect_head),
		cmocka_unit_test(test_existing_edits),
		cmocka_unit_test(test_open_key_compat),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
