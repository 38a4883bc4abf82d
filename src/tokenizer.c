/* tokenizer.c — Fly.io tokenizer-compatible sealed secrets: parse, check, plan. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <pcre2.h>
#include <sodium.h>

#include "defaults.h"
#include "scope.h"
#include "scrub.h"
#include "secmem.h"
#include "tokenizer.h"

/* PCRE2 limits for allowed_host_pattern (a host name is short; these bound the work). */
#define TK_RE_MATCH_LIMIT	20000
#define TK_RE_DEPTH_LIMIT	2000
#define TK_RATE_MAX_REQUESTS	1000000

#define TK_DEFAULT_DST		"Authorization"
#define TK_DEFAULT_FMT		"Bearer %s"
#define TK_DEFAULT_HMAC_FMT	"Bearer %x"
#define TK_DEFAULT_PLACEHOLDER	"{{ACCESS_TOKEN}}"

/* Processors tokenizer knows; those sealgate supports carry a kind. */
static const struct {
	const char *name;
	enum tokenizer_proc_kind kind;	/* 0: unsupported */
} tk_procs[] = {
	{"inject_processor", TK_INJECT},
	{"inject_hmac_processor", TK_INJECT_HMAC},
	{"inject_body_processor", TK_INJECT_BODY},
	{"oauth2_processor", TK_OAUTH2},
	{"oauth2_body_processor", TK_OAUTH2_BODY},
	{"multi_processor", 0},		/* handled apart */
	{"sigv4_processor", 0},
	{"jwt_processor", 0},
	{"client_credentials_processor", 0},
	{"github_app_processor", 0},
};

static const char *const tk_proc_names[] = {
	"", "inject_processor", "inject_hmac_processor", "inject_body_processor",
	"oauth2_processor", "oauth2_body_processor",
};

/* Headers a secret may never be written to. */
static const char *const tk_forbidden_dst[] = {
	"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
	"trailer", "upgrade", "proxy-authorization", "proxy-authenticate", "proxy-connection",
	"proxy-tokenizer",
};

/* --- small helpers ------------------------------------------------------------------------ */

static bool
tk_ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool
tk_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A header value may not carry CR, LF, NUL or other controls (HTAB is fine). */
static bool
tk_value_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

static bool
tk_dst_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > TOKENIZER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!tk_is_tchar((unsigned char)name[i]))
			return false;
	for (size_t i = 0; i < SG_ARRAY_LEN(tk_forbidden_dst); i++)
		if (strcasecmp(name, tk_forbidden_dst[i]) == 0)
			return false;
	return true;
}

/* Go's textproto.CanonicalMIMEHeaderKey for a valid token. */
static void
tk_canonical(const char *name, char *out, size_t outlen)
{
	bool upper = true;
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < outlen; i++) {
		char c = name[i];

		if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!upper && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c;
		upper = c == '-';
	}
	out[i] = '\0';
}

/*
 * A format tokenizer accepts: exactly one directive, %s for strings, %x or %X for
 * bytes, no other '%', and (sealgate) nothing that could not be a header value.
 */
static bool
tk_fmt_ok(const char *fmt, bool binary)
{
	const char *p = strchr(fmt, '%');

	if (strlen(fmt) > TOKENIZER_FMT_MAX || !tk_value_ok(fmt, strlen(fmt)) || p == NULL ||
	    p[1] == '\0')
		return false;
	if (binary ? (p[1] != 'x' && p[1] != 'X') : p[1] != 's')
		return false;
	return strchr(p + 2, '%') == NULL;
}

static void
tk_strlist_free(policy_strlist_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->n = 0;
	l->v = NULL;
}

static bool
tk_strlist_has(const policy_strlist_t *l, const char *s, bool icase)
{
	for (size_t i = 0; i < l->n; i++)
		if (icase ? strcasecmp(l->v[i], s) == 0 : strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

/* Zero every string in a JSON tree (values may be secrets) before it is freed. */
static void
tk_json_wipe(json_t *j)
{
	/* explicit iteration, not json_object_foreach/json_array_foreach: cppcheck cannot
	 * parse jansson's foreach macros (as in policy.c) */
	if (json_is_string(j)) {
		sodium_memzero((char *)(uintptr_t)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		for (void *it = json_object_iter(j); it != NULL; it = json_object_iter_next(j, it))
			tk_json_wipe(json_object_iter_value(it));
	} else if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++)
			tk_json_wipe(json_array_get(j, i));
	}
}

/* --- parsing the sealed JSON ------------------------------------------------------------ */

/* A string field: absent/null -> 0 with *out NULL; wrong type -> -1. "" counts as absent
 * when empty_absent (Go's omitempty). */
static int
tk_get_str(json_t *obj, const char *key, bool empty_absent, const char **out, size_t *len)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	if (empty_absent && json_string_length(v) == 0)
		return 0;
	*out = json_string_value(v);
	if (len != NULL)
		*len = json_string_length(v);
	return 0;
}

static int
tk_get_strlist(json_t *obj, const char *key, bool lower, size_t maxlen,
    policy_strlist_t *out, bool *present)
{
	json_t *v = json_object_get(obj, key), *e;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (present != NULL)
		*present = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 64)
		return -1;
	if (present != NULL)
		*present = true;
	if (json_array_size(v) == 0)
		return 0;
	out->v = calloc(json_array_size(v), sizeof(char *));
	if (out->v == NULL)
		return -1;
	for (i = 0; i < json_array_size(v) && (e = json_array_get(v, i)) != NULL; i++) {
		char *s;

		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) > maxlen ||
		    strlen(json_string_value(e)) != json_string_length(e))
			goto bad;
		s = strdup(json_string_value(e));
		if (s == NULL)
			goto bad;
		if (lower)
			for (char *p = s; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
		out->v[out->n++] = s;
	}
	return 0;
bad:
	tk_strlist_free(out);
	return -1;
}

static int
tk_b64_field(json_t *obj, const char *key, uint8_t **out, size_t *outlen, size_t maxlen)
{
	const char *s;
	size_t len, binlen = 0;
	const char *end = NULL;
	uint8_t *bin;

	*out = NULL;
	*outlen = 0;
	if (tk_get_str(obj, key, false, &s, &len) < 0 || s == NULL)
		return -1;
	if (len == 0 || len > 4 * maxlen)
		return -1;
	bin = secmem_wipe_alloc(len);
	if (bin == NULL)
		return -1;
	if (sodium_base642bin(bin, len, s, len, NULL, &binlen, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != s + len || binlen == 0) {
		secmem_wipe_free(bin);
		return -1;
	}
	*out = bin;
	*outlen = binlen;
	return 0;
}

static void
tk_proc_free(tokenizer_proc_t *p)
{
	secmem_wipe_free(p->token);
	secmem_wipe_free(p->refresh);
	secmem_wipe_free(p->key);
	free(p->fmt);
	free(p->dst);
	free(p->placeholder);
	tk_strlist_free(&p->allowed_fmt);
	tk_strlist_free(&p->allowed_dst);
	memset(p, 0, sizeof(*p));
}

/* fmt, allowed_fmt, dst, allowed_dst of inject and hmac processors. */
static int
tk_parse_fmt_dst(json_t *o, tokenizer_proc_t *p, bool binary, const char **why)
{
	const char *s;
	bool present;

	if (tk_get_str(o, "fmt", true, &s, NULL) < 0) {
		*why = "fmt is not a string";
		return -1;
	}
	if (s != NULL) {
		if (!tk_fmt_ok(s, binary)) {
			*why = binary ? "fmt must hold exactly one %x or %X" :
			    "fmt must hold exactly one %s";
			return -1;
		}
		if ((p->fmt = strdup(s)) == NULL)
			goto nomem;
	}
	if (tk_get_strlist(o, "allowed_fmt", false, TOKENIZER_FMT_MAX, &p->allowed_fmt,
	    &present) < 0 || (present && p->allowed_fmt.n == 0)) {
		*why = "allowed_fmt must be a non-empty list of strings";
		return -1;
	}
	for (size_t i = 0; i < p->allowed_fmt.n; i++)
		if (!tk_fmt_ok(p->allowed_fmt.v[i], binary)) {
			*why = "an allowed_fmt entry is not a valid format";
			return -1;
		}
	if (tk_get_str(o, "dst", true, &s, NULL) < 0) {
		*why = "dst is not a string";
		return -1;
	}
	if (s != NULL) {
		if (!tk_dst_ok(s)) {
			*why = "dst is not a header name sealgate may set";
			return -1;
		}
		if ((p->dst = strdup(s)) == NULL)
			goto nomem;
	}
	if (tk_get_strlist(o, "allowed_dst", false, TOKENIZER_NAME_MAX, &p->allowed_dst,
	    &present) < 0 || (present && p->allowed_dst.n == 0)) {
		*why = "allowed_dst must be a non-empty list of strings";
		return -1;
	}
	for (size_t i = 0; i < p->allowed_dst.n; i++)
		if (!tk_dst_ok(p->allowed_dst.v[i])) {
			*why = "an allowed_dst entry is not a header name sealgate may set";
			return -1;
		}
	return 0;
nomem:
	*why = "out of memory";
	return -1;
}

static int
tk_parse_placeholder(json_t *o, tokenizer_proc_t *p, const char **why)
{
	const char *s;
	size_t len;

	if (tk_get_str(o, "placeholder", true, &s, &len) < 0 ||
	    (s != NULL && (len > TOKENIZER_PLACEHOLDER_MAX || strlen(s) != len))) {
		*why = "placeholder must be a string of at most 256 bytes";
		return -1;
	}
	if (s != NULL && (p->placeholder = strdup(s)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

/* A token string field: required, non-empty, copied to wipe memory. */
static int
tk_parse_token(json_t *o, const char *key, char **out, size_t *outlen, bool required,
    const char **why, const char *missing)
{
	const char *s;
	size_t len;

	if (tk_get_str(o, key, true, &s, &len) < 0) {
		*why = "a token field is not a string";
		return -1;
	}
	if (s == NULL) {
		if (!required)
			return 0;
		*why = missing;
		return -1;
	}
	if (len > SG_SECRET_MAX_LEN) {
		*why = "a token is too long";
		return -1;
	}
	if ((*out = secmem_wipe_dup(s, len)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	*outlen = len;
	return 0;
}

static int
tk_parse_proc(enum tokenizer_proc_kind kind, json_t *o, tokenizer_proc_t *p,
    const char **why)
{
	json_t *tok;

	memset(p, 0, sizeof(*p));
	p->kind = kind;
	if (!json_is_object(o)) {
		*why = "a processor is not a JSON object";
		return -1;
	}
	switch (kind) {
	case TK_INJECT:
		if (tk_parse_token(o, "token", &p->token, &p->token_len, true, why,
		    "inject_processor has no token") < 0)
			return -1;
		return tk_parse_fmt_dst(o, p, false, why);
	case TK_INJECT_HMAC: {
		const char *h;

		if (tk_get_str(o, "hash", true, &h, NULL) < 0 ||
		    (h != NULL && strcmp(h, "sha256") != 0)) {
			*why = "inject_hmac_processor: unsupported hash (only sha256)";
			return -1;
		}
		if (tk_b64_field(o, "key", &p->key, &p->key_len, 1024) < 0) {
			*why = "inject_hmac_processor: key missing or not standard base64";
			return -1;
		}
		return tk_parse_fmt_dst(o, p, true, why);
	}
	case TK_INJECT_BODY:
		if (tk_parse_token(o, "token", &p->token, &p->token_len, true, why,
		    "inject_body_processor has no token") < 0)
			return -1;
		return tk_parse_placeholder(o, p, why);
	case TK_OAUTH2:
	case TK_OAUTH2_BODY:
		tok = json_object_get(o, "token");
		if (!json_is_object(tok)) {
			*why = "oauth2 processor: token must be an object";
			return -1;
		}
		if (tk_parse_token(tok, "access_token", &p->token, &p->token_len, false, why,
		    NULL) < 0 ||
		    tk_parse_token(tok, "refresh_token", &p->refresh, &p->refresh_len, false,
		    why, NULL) < 0)
			return -1;
		if (p->token == NULL && p->refresh == NULL) {
			*why = "oauth2 processor: no access_token or refresh_token";
			return -1;
		}
		return kind == TK_OAUTH2_BODY ? tk_parse_placeholder(o, p, why) : 0;
	}
	*why = "unknown processor";
	return -1;
}

/*
 * The one processor key of o (a secret or a multi_processor member). Returns 0 with
 * *name / *val set, -1 (none or several), -2 (unsupported).
 */
static int
tk_find_proc(json_t *o, const char **name, json_t **val, const char **why)
{
	const char *k;
	json_t *v;
	int n = 0, unsupported = 0;

	for (void *jit = json_object_iter(o); jit != NULL &&
	    (k = json_object_iter_key(jit)) != NULL &&
	    (v = json_object_iter_value(jit)) != NULL; jit = json_object_iter_next(o, jit)) {
		bool known = false;

		if (json_is_null(v))
			continue;	/* Go: a nil pointer, not a processor */
		for (size_t i = 0; i < SG_ARRAY_LEN(tk_procs); i++)
			if (strcmp(k, tk_procs[i].name) == 0) {
				known = true;
				if (tk_procs[i].kind == 0 && strcmp(k, "multi_processor") != 0)
					unsupported++;
			}
		if (!known && tk_ends_with(k, "_processor"))
			unsupported++, known = true;
		if (known) {
			n++;
			*name = k;
			*val = v;
		}
	}
	if (n != 1) {
		*why = n == 0 ? "the secret names no processor" :
		    "the secret names more than one processor";
		return -1;
	}
	if (unsupported) {
		*why = "the secret's processor is not supported by sealgate (supported: "
		    "inject, inject_hmac, inject_body, oauth2, oauth2_body, multi)";
		return -2;
	}
	return 0;
}

static int
tk_parse_procs(json_t *o, tokenizer_secret_t *s, int depth, const char **why)
{
	const char *name = NULL;
	json_t *val = NULL, *e;
	enum tokenizer_proc_kind kind;
	size_t i;
	int rc;

	if ((rc = tk_find_proc(o, &name, &val, why)) < 0)
		return rc;
	if (strcmp(name, "multi_processor") == 0) {
		if (depth >= TOKENIZER_MAX_DEPTH) {
			*why = "multi_processor nested too deeply";
			return -1;
		}
		if (!json_is_array(val) || json_array_size(val) == 0) {
			*why = "multi_processor must be a non-empty list of processors";
			return -1;
		}
		s->multi = true;
		for (i = 0; i < json_array_size(val) && (e = json_array_get(val, i)) != NULL; i++) {
			if (!json_is_object(e)) {
				*why = "a multi_processor member is not a JSON object";
				return -1;
			}
			if ((rc = tk_parse_procs(e, s, depth + 1, why)) < 0)
				return rc;
		}
		return 0;
	}
	if (s->nproc >= TOKENIZER_MAX_PROCS) {
		*why = "too many processors in one secret";
		return -1;
	}
	kind = 0;
	for (i = 0; i < SG_ARRAY_LEN(tk_procs); i++)
		if (strcmp(name, tk_procs[i].name) == 0)
			kind = tk_procs[i].kind;
	if (tk_parse_proc(kind, val, &s->proc[s->nproc], why) < 0) {
		tk_proc_free(&s->proc[s->nproc]);
		return -1;
	}
	s->nproc++;
	return 0;
}

static int
tk_parse_auth(json_t *o, tokenizer_secret_t *s, const char **why)
{
	const char *k;
	json_t *v, *auth = NULL;
	int n = 0;
	bool unsupported = false;

	for (void *jit = json_object_iter(o); jit != NULL &&
	    (k = json_object_iter_key(jit)) != NULL &&
	    (v = json_object_iter_value(jit)) != NULL; jit = json_object_iter_next(o, jit)) {
		if (json_is_null(v) || !tk_ends_with(k, "_auth"))
			continue;
		n++;
		if (strcmp(k, "bearer_auth") == 0) {
			s->auth = TK_AUTH_BEARER;
			auth = v;
		} else if (strcmp(k, "no_auth") == 0) {
			s->auth = TK_AUTH_NONE;
			auth = v;
		} else {
			unsupported = true;
		}
	}
	if (n != 1) {
		*why = n == 0 ? "the secret names no auth" : "the secret names more than one auth";
		return -1;
	}
	if (unsupported) {
		*why = "the secret's auth is not supported by sealgate (supported: bearer_auth, "
		    "no_auth)";
		return -2;
	}
	if (!json_is_object(auth)) {
		*why = "the auth is not a JSON object";
		return -1;
	}
	if (s->auth == TK_AUTH_BEARER) {
		uint8_t *d;
		size_t dl;

		if (tk_b64_field(auth, "digest", &d, &dl, 64) < 0 || dl != sizeof(s->digest)) {
			if (d != NULL)
				secmem_wipe_free(d);
			*why = "bearer_auth: digest must be standard base64 of 32 bytes (sha256)";
			return -1;
		}
		memcpy(s->digest, d, sizeof(s->digest));
		secmem_wipe_free(d);
	}
	return 0;
}

static int
tk_parse_time(json_t *o, const char *key, bool *has, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	*has = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*has = true;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int
tk_parse_rate(json_t *o, policy_rate_t *r)
{
	json_t *v = json_object_get(o, "rate"), *req, *per, *burst;

	memset(r, 0, sizeof(*r));
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return -1;
	req = json_object_get(v, "requests");
	per = json_object_get(v, "per");
	burst = json_object_get(v, "burst");
	if (!json_is_integer(req) || json_integer_value(req) < 1 ||
	    json_integer_value(req) > TK_RATE_MAX_REQUESTS || !json_is_string(per) ||
	    util_parse_duration_ms(json_string_value(per), &r->per_ms) < 0 || r->per_ms == 0)
		return -1;
	if (burst != NULL && (!json_is_integer(burst) || json_integer_value(burst) < 0 ||
	    json_integer_value(burst) > TK_RATE_MAX_REQUESTS))
		return -1;
	r->requests = (uint32_t)json_integer_value(req);
	r->burst = burst != NULL ? (uint32_t)json_integer_value(burst) : 0;
	if (r->burst == 0)
		r->burst = r->requests;
	r->set = true;
	return 0;
}

static int
tk_compile_pattern(tokenizer_secret_t *s, const char **why)
{
	int err;
	PCRE2_SIZE off;

	if (strlen(s->host_pattern) > TOKENIZER_PATTERN_MAX) {
		*why = "allowed_host_pattern is too long";
		return -1;
	}
	s->host_re = pcre2_compile((PCRE2_SPTR)s->host_pattern, PCRE2_ZERO_TERMINATED,
	    PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_NO_AUTO_CAPTURE | PCRE2_UTF |
	    PCRE2_NEVER_BACKSLASH_C, &err, &off, NULL);
	if (s->host_re == NULL) {
		*why = "allowed_host_pattern is not a valid regular expression";
		return -1;
	}
	return 0;
}

int
tokenizer_parse_secret(const char *json, size_t len, tokenizer_secret_t *s,
    const char **why)
{
	json_error_t jerr;
	json_t *root;
	const char *pat;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	*why = "invalid secret";
	if (len > TOKENIZER_JSON_MAX) {
		*why = "the secret is too long";
		return -1;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		*why = "the secret is not valid JSON (or repeats a key)";
		return -1;
	}
	if (!json_is_object(root)) {
		*why = "the secret is not a JSON object";
		goto out;
	}
	if ((rc = tk_parse_procs(root, s, 0, why)) < 0)
		goto out;
	if ((rc = tk_parse_auth(root, s, why)) < 0)
		goto out;
	rc = -1;
	if (tk_get_strlist(root, "allowed_hosts", true, 300, &s->allowed_hosts,
	    &s->has_allowed_hosts) < 0) {
		*why = "allowed_hosts must be a list of host names";
		goto out;
	}
	if (tk_get_str(root, "allowed_host_pattern", true, &pat, NULL) < 0) {
		*why = "allowed_host_pattern is not a string";
		goto out;
	}
	if (pat != NULL) {
		if ((s->host_pattern = strdup(pat)) == NULL) {
			*why = "out of memory";
			goto out;
		}
		if (tk_compile_pattern(s, why) < 0)
			goto out;
	}
	if (tk_parse_time(root, "exp", &s->has_exp, &s->exp) < 0 ||
	    tk_parse_time(root, "nbf", &s->has_nbf, &s->nbf) < 0) {
		*why = "exp and nbf must be unix seconds (integers)";
		goto out;
	}
	if (tk_get_strlist(root, "allowed_methods", false, 32, &s->allowed_methods, NULL) < 0) {
		*why = "allowed_methods must be a list of method names";
		goto out;
	}
	if (tk_get_strlist(root, "allowed_paths", false, 1024, &s->allowed_paths, NULL) < 0) {
		*why = "allowed_paths must be a list of path globs";
		goto out;
	}
	for (size_t i = 0; i < s->allowed_paths.n; i++)
		if (s->allowed_paths.v[i][0] != '/') {
			*why = "allowed_paths entries must start with '/'";
			goto out;
		}
	if (tk_parse_rate(root, &s->rate) < 0) {
		*why = "rate must be {\"requests\": N, \"per\": \"1m\", \"burst\": N}";
		goto out;
	}
	rc = 0;
out:
	tk_json_wipe(root);
	json_decref(root);
	if (rc < 0)
		tokenizer_secret_free(s);
	return rc;
}

void
tokenizer_secret_free(tokenizer_secret_t *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < TOKENIZER_MAX_PROCS; i++)
		tk_proc_free(&s->proc[i]);
	tk_strlist_free(&s->allowed_hosts);
	tk_strlist_free(&s->allowed_methods);
	tk_strlist_free(&s->allowed_paths);
	free(s->host_pattern);
	pcre2_code_free(s->host_re);
	sodium_memzero(s, sizeof(*s));
}

/* --- header and params ------------------------------------------------------------------ */

static bool
tk_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int
tokenizer_split_header(const char *value, size_t len, const char **tok, size_t *toklen,
    const char **params, size_t *paramslen, const char **why)
{
	const char *semi = memchr(value, ';', len);
	const char *a = value, *b = semi != NULL ? semi : value + len;

	while (a < b && tk_space(*a))
		a++;
	while (b > a && tk_space(b[-1]))
		b--;
	*tok = a;
	*toklen = (size_t)(b - a);
	*params = NULL;
	*paramslen = 0;
	if (*toklen == 0) {
		*why = "empty Proxy-Tokenizer header";
		return -1;
	}
	if (memchr(a, ',', *toklen) != NULL) {
		*why = "one Proxy-Tokenizer header line per secret (no comma-joined values)";
		return -1;
	}
	if (semi != NULL) {
		const char *p = semi + 1, *e = value + len;

		while (p < e && tk_space(*p))
			p++;
		while (e > p && tk_space(e[-1]))
			e--;
		if (e > p) {
			*params = p;
			*paramslen = (size_t)(e - p);
		}
	}
	return 0;
}

typedef struct tk_params {
	const char *dst, *fmt, *st, *placeholder, *msg;
	size_t msg_len;
	json_t *root;
} tk_params_t;

static int
tk_parse_params(const char *p, size_t len, tk_params_t *out, const char **why)
{
	json_error_t jerr;
	const char *k;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return 0;
	if (len > TOKENIZER_PARAMS_MAX) {
		*why = "Proxy-Tokenizer params are too long";
		return -1;
	}
	out->root = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);
	if (out->root == NULL || !json_is_object(out->root)) {
		*why = "Proxy-Tokenizer params must be a JSON object of strings";
		json_decref(out->root);
		out->root = NULL;
		return -1;
	}
	for (void *jit = json_object_iter(out->root); jit != NULL &&
	    (k = json_object_iter_key(jit)) != NULL &&
	    (v = json_object_iter_value(jit)) != NULL; jit = json_object_iter_next(out->root, jit)) {
		if (!json_is_string(v)) {
			*why = "Proxy-Tokenizer params must be a JSON object of strings";
			json_decref(out->root);
			out->root = NULL;
			return -1;
		}
		if (strcmp(k, "dst") == 0)
			out->dst = json_string_value(v);
		else if (strcmp(k, "fmt") == 0)
			out->fmt = json_string_value(v);
		else if (strcmp(k, "st") == 0)
			out->st = json_string_value(v);
		else if (strcmp(k, "placeholder") == 0)
			out->placeholder = json_string_value(v);
		else if (strcmp(k, "msg") == 0) {
			out->msg = json_string_value(v);
			out->msg_len = json_string_length(v);
		}
	}
	return 0;
}

/* --- one request ------------------------------------------------------------------------ */

struct tk_ctx {
	const tokenizer_env_t *env;
	const http_head_t *h;
	inject_edits_t *edits;
	tokenizer_out_t *out;
	struct ratelimit_req rl[TOKENIZER_MAX_SECRETS];
	char rlkey[TOKENIZER_MAX_SECRETS][40];
	policy_rate_t rate[TOKENIZER_MAX_SECRETS];
	size_t nrl;
};

static int
tk_deny(tokenizer_out_t *out, unsigned status, const char *code, const char *fmt,
    const char *arg)
{
	out->status = status;
	out->code = code;
	snprintf(out->message, sizeof(out->message), fmt, arg != NULL ? arg : "");
	return -1;
}

static void
tk_drop_field(inject_edits_t *e, size_t i)
{
	secmem_wipe_free(e->value[i]);
	e->value[i] = NULL;
	e->kind[i] = EDIT_DROP;
}

static void
tk_drop_named(const http_head_t *h, inject_edits_t *e, const char *name)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0)
			tk_drop_field(e, i);
	for (size_t i = 0; i < e->nadd; ) {
		if (strcasecmp(e->add[i].name, name) == 0) {
			free(e->add[i].name);
			secmem_wipe_free(e->add[i].value);
			memmove(&e->add[i], &e->add[i + 1], (e->nadd - i - 1) * sizeof(e->add[0]));
			e->nadd--;
			memset(&e->add[e->nadd], 0, sizeof(e->add[0]));
		} else {
			i++;
		}
	}
}

/* Header.Set semantics: the value replaces every field of that name. Takes value. */
static int
tk_set_header(struct tk_ctx *c, const char *name, char *value)
{
	const http_head_t *h = c->h;
	inject_edits_t *e = c->edits;
	bool done = false;

	for (size_t i = 0; i < e->nadd; i++)
		if (strcasecmp(e->add[i].name, name) == 0) {
			secmem_wipe_free(e->add[i].value);
			e->add[i].value = value;
			value = NULL;
			done = true;
		}
	for (size_t i = 0; i < h->nfields; i++) {
		if (strcasecmp(h->fields[i].name, name) != 0)
			continue;
		if (done) {
			tk_drop_field(e, i);
			continue;
		}
		secmem_wipe_free(e->value[i]);
		e->value[i] = value;
		e->kind[i] = EDIT_REPLACE;
		value = NULL;
		done = true;
	}
	if (!done) {
		char *n;

		if (e->nadd >= INJECT_MAX_HANDLES || (n = strdup(name)) == NULL) {
			secmem_wipe_free(value);
			return tk_deny(c->out, 400, "tokenizer_invalid", "too many injected "
			    "headers in one request%s", NULL);
		}
		e->add[e->nadd].name = n;
		e->add[e->nadd].value = value;
		e->nadd++;
	}
	e->secret_in_head = true;
	return 0;
}

static void
tk_add_scrub(tokenizer_out_t *out, const char *s, size_t len)
{
	if (s == NULL || len < SCRUB_MIN_NEEDLE || len > SCRUB_MAX_NEEDLE)
		return;
	for (size_t i = 0; i < out->nscrub; i++)
		if (out->scrub[i].len == len && sodium_memcmp(out->scrub[i].secret, s, len) == 0)
			return;
	if (out->nscrub >= TOKENIZER_MAX_SCRUB)
		return;
	if ((out->scrub[out->nscrub].secret = secmem_wipe_dup(s, len)) != NULL)
		out->scrub[out->nscrub++].len = len;
}

/*
 * Choose a value as tokenizer's ApplyFmt/ApplyDst do (param, else sealed value, else the
 * first allowed, else the default), then sealgate's rule: a param must be a value the
 * secret allows, and with nothing pinned only the default is allowed.
 */
static int
tk_choose(const char *param, const char *sealed, const policy_strlist_t *allowed,
    const char *def, bool icase, const char **out)
{
	const char *v = param != NULL ? param : sealed != NULL ? sealed :
	    allowed->n > 0 ? allowed->v[0] : def;
	int (*cmp)(const char *, const char *) = icase ? strcasecmp : strcmp;

	*out = v;
	if (sealed != NULL && cmp(v, sealed) != 0)
		return -1;
	if (allowed->n > 0 && !tk_strlist_has(allowed, v, icase))
		return -1;
	if (sealed == NULL && allowed->n == 0 && cmp(v, def) != 0)
		return -1;
	return 0;
}

/* fmt (one %s / %x / %X) applied to arg: wipe memory. */
static char *
tk_format(const char *fmt, const char *arg, size_t alen)
{
	const char *p = strchr(fmt, '%');
	size_t pre = (size_t)(p - fmt), post = strlen(p + 2);
	char *out = secmem_wipe_alloc(pre + alen + post + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, fmt, pre);
	memcpy(out + pre, arg, alen);
	memcpy(out + pre + alen, p + 2, post);
	out[pre + alen + post] = '\0';
	return out;
}

static char *
tk_hmac_format(const char *fmt, const uint8_t *key, size_t klen, const void *msg,
    size_t len)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * sizeof(mac) + 1];
	crypto_auth_hmacsha256_state st;
	char *out;

	crypto_auth_hmacsha256_init(&st, key, klen);
	crypto_auth_hmacsha256_update(&st, msg, len);
	crypto_auth_hmacsha256_final(&st, mac);
	util_hex_encode(mac, sizeof(mac), hex);
	if (strchr(fmt, '%')[1] == 'X')
		for (char *q = hex; *q; q++)
			if (*q >= 'a' && *q <= 'f')
				*q = (char)(*q - 'a' + 'A');
	out = tk_format(fmt, hex, strlen(hex));
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(mac, sizeof(mac));
	sodium_memzero(hex, sizeof(hex));
	return out;
}

static int
tk_body(struct tk_ctx *c, const char *placeholder, const char *token, size_t tlen)
{
	tokenizer_out_t *out = c->out;
	tokenizer_body_t *b;
	size_t pl = strlen(placeholder);

	if (pl < SG_PLACEHOLDER_MIN || pl > TOKENIZER_PLACEHOLDER_MAX)
		return tk_deny(out, 400, "tokenizer_invalid", "the body placeholder must be 4 to "
		    "256 bytes%s", NULL);
	if (out->nbody >= TOKENIZER_MAX_BODY)
		return tk_deny(out, 400, "tokenizer_invalid", "too many body replacements in one "
		    "request%s", NULL);
	b = &out->body[out->nbody];
	if ((b->placeholder = strdup(placeholder)) == NULL ||
	    (b->token = secmem_wipe_dup(token, tlen)) == NULL) {
		free(b->placeholder);
		b->placeholder = NULL;
		return tk_deny(out, 400, "tokenizer_invalid", "out of memory%s", NULL);
	}
	b->placeholder_len = pl;
	b->token_len = tlen;
	out->nbody++;
	tk_add_scrub(out, token, tlen);
	return 0;
}

static int
tk_run_proc(struct tk_ctx *c, const tokenizer_proc_t *p, const tk_params_t *pr)
{
	tokenizer_out_t *out = c->out;
	const char *fmt, *dst, *token;
	size_t tlen;
	char canon[TOKENIZER_NAME_MAX + 1];
	char *val;

	switch (p->kind) {
	case TK_INJECT:
	case TK_INJECT_HMAC: {
		bool bin = p->kind == TK_INJECT_HMAC;

		if (tk_choose(pr->fmt, p->fmt, &p->allowed_fmt, bin ? TK_DEFAULT_HMAC_FMT :
		    TK_DEFAULT_FMT, false, &fmt) < 0)
			return tk_deny(out, 403, "tokenizer_param_denied", "the fmt param is not "
			    "one the sealed secret allows (%s)", tk_proc_names[p->kind]);
		if (tk_choose(pr->dst, p->dst, &p->allowed_dst, TK_DEFAULT_DST, true, &dst) < 0)
			return tk_deny(out, 403, "tokenizer_param_denied", "the dst param is not "
			    "one the sealed secret allows (%s)", tk_proc_names[p->kind]);
		if (!tk_fmt_ok(fmt, bin) || !tk_dst_ok(dst))
			return tk_deny(out, 400, "tokenizer_invalid", "invalid fmt or dst (%s)",
			    tk_proc_names[p->kind]);
		tk_canonical(dst, canon, sizeof(canon));
		if (!bin) {
			if (!tk_value_ok(p->token, p->token_len))
				return tk_deny(out, 400, "tokenizer_invalid", "the sealed token "
				    "cannot be sent in a header (control bytes)%s", NULL);
			if ((val = tk_format(fmt, p->token, p->token_len)) == NULL)
				return tk_deny(out, 400, "tokenizer_invalid", "out of memory%s", NULL);
			tk_add_scrub(out, p->token, p->token_len);
			return tk_set_header(c, canon, val);
		}
		if (pr->msg != NULL) {
			/* tokenizer: the "msg" param is signed instead of the body */
			if ((val = tk_hmac_format(fmt, p->key, p->key_len, pr->msg,
			    pr->msg_len)) == NULL)
				return tk_deny(out, 400, "tokenizer_invalid", "out of memory%s", NULL);
			return tk_set_header(c, canon, val);
		}
		if (out->hmac.set)
			return tk_deny(out, 400, "tokenizer_invalid", "at most one body HMAC per "
			    "request%s", NULL);
		if ((out->hmac.key = secmem_wipe_alloc(p->key_len)) == NULL)
			return tk_deny(out, 400, "tokenizer_invalid", "out of memory%s", NULL);
		memcpy(out->hmac.key, p->key, p->key_len);
		out->hmac.key_len = p->key_len;
		snprintf(out->hmac.dst, sizeof(out->hmac.dst), "%s", canon);
		snprintf(out->hmac.fmt, sizeof(out->hmac.fmt), "%s", fmt);
		out->hmac.set = true;
		return 0;
	}
	case TK_INJECT_BODY:
		return tk_body(c, pr->placeholder != NULL ? pr->placeholder : p->placeholder !=
		    NULL ? p->placeholder : TK_DEFAULT_PLACEHOLDER, p->token, p->token_len);
	case TK_OAUTH2:
	case TK_OAUTH2_BODY:
		if (pr->st != NULL && strcmp(pr->st, "access") != 0 &&
		    strcmp(pr->st, "refresh") != 0)
			return tk_deny(out, 403, "tokenizer_param_denied", "the st param must be "
			    "\"access\" or \"refresh\"%s", NULL);
		if (pr->st != NULL && strcmp(pr->st, "refresh") == 0) {
			token = p->refresh;
			tlen = p->refresh_len;
		} else {
			token = p->token;
			tlen = p->token_len;
		}
		if (token == NULL)
			return tk_deny(out, 403, "tokenizer_param_denied", "the sealed secret "
			    "holds no %s token", pr->st != NULL ? pr->st : "access");
		tk_add_scrub(out, p->token, p->token_len);
		tk_add_scrub(out, p->refresh, p->refresh_len);
		if (p->kind == TK_OAUTH2_BODY)
			return tk_body(c, pr->placeholder != NULL ? pr->placeholder :
			    p->placeholder != NULL ? p->placeholder : TK_DEFAULT_PLACEHOLDER,
			    token, tlen);
		if (pr->placeholder != NULL && pr->placeholder[0] != '\0')
			return tk_body(c, pr->placeholder, token, tlen);
		if (!tk_value_ok(token, tlen))
			return tk_deny(out, 400, "tokenizer_invalid", "the sealed token cannot be "
			    "sent in a header (control bytes)%s", NULL);
		if ((val = tk_format(TK_DEFAULT_FMT, token, tlen)) == NULL)
			return tk_deny(out, 400, "tokenizer_invalid", "out of memory%s", NULL);
		return tk_set_header(c, TK_DEFAULT_DST, val);
	}
	return tk_deny(out, 400, "tokenizer_invalid", "unknown processor%s", NULL);
}

static void
tk_host_string(const char *host, uint16_t port, char *out, size_t outlen)
{
	bool v6 = strchr(host, ':') != NULL;

	if (port == 80 || port == 443)
		snprintf(out, outlen, v6 ? "[%s]" : "%s", host);
	else
		snprintf(out, outlen, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
}

bool
tokenizer_host_allowed(const tokenizer_secret_t *s, const char *host, uint16_t port)
{
	char hs[320], hp[320];

	tk_host_string(host, port, hs, sizeof(hs));
	snprintf(hp, sizeof(hp), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host,
	    (unsigned)port);
	if (s->has_allowed_hosts && !tk_strlist_has(&s->allowed_hosts, hs, true) &&
	    !tk_strlist_has(&s->allowed_hosts, hp, true))
		return false;
	if (s->host_re != NULL) {
		pcre2_match_data *md;
		pcre2_match_context *mc;
		int rc;

		md = pcre2_match_data_create(1, NULL);
		mc = pcre2_match_context_create(NULL);
		if (md == NULL || mc == NULL) {
			pcre2_match_data_free(md);
			pcre2_match_context_free(mc);
			return false;
		}
		pcre2_set_match_limit(mc, TK_RE_MATCH_LIMIT);
		pcre2_set_depth_limit(mc, TK_RE_DEPTH_LIMIT);
		rc = pcre2_match(s->host_re, (PCRE2_SPTR)hs, strlen(hs), 0, 0, md, mc);
		pcre2_match_data_free(md);
		pcre2_match_context_free(mc);
		if (rc < 0)
			return false;
	}
	return true;
}

static bool
tk_proxy_token_ok(const tokenizer_secret_t *s, const char *proxy_token)
{
	uint8_t d[crypto_hash_sha256_BYTES];
	bool ok;

	if (s->auth == TK_AUTH_NONE)
		return true;
	if (proxy_token == NULL)
		return false;
	crypto_hash_sha256(d, (const unsigned char *)proxy_token, strlen(proxy_token));
	ok = sodium_memcmp(d, s->digest, sizeof(d)) == 0;
	sodium_memzero(d, sizeof(d));
	return ok;
}

static void
tk_what(tokenizer_out_t *out, const tokenizer_secret_t *s)
{
	size_t l = strlen(out->what);
	const char *name = s->multi ? "multi_processor" : tk_proc_names[s->proc[0].kind];

	snprintf(out->what + l, sizeof(out->what) - l, "%s%s/%s", l ? "," : "", name,
	    s->auth == TK_AUTH_BEARER ? "bearer_auth" : "no_auth");
}

/* One Proxy-Tokenizer header value. */
static int
tk_one(struct tk_ctx *c, const char *value, size_t vlen, const char *host, uint16_t port,
    const char *method, const char *path, const char *proxy_token)
{
	const tokenizer_env_t *env = c->env;
	tokenizer_out_t *out = c->out;
	const char *tok, *params, *why = NULL;
	size_t toklen, paramslen, plainlen;
	char *plain = NULL;
	tokenizer_secret_t s;
	tk_params_t pr;
	uint8_t hash[16];
	char hid[33];
	int rc;

	if (out->n >= TOKENIZER_MAX_SECRETS)
		return tk_deny(out, 400, "tokenizer_invalid", "too many Proxy-Tokenizer headers "
		    "(at most 4)%s", NULL);
	if (tokenizer_split_header(value, vlen, &tok, &toklen, &params, &paramslen, &why) < 0)
		return tk_deny(out, 400, "tokenizer_invalid", "%s", why);
	crypto_generichash(hash, sizeof(hash), (const unsigned char *)tok, toklen, NULL, 0);
	util_hex_encode(hash, sizeof(hash), hid);
	if (out->id[0] == '\0')
		memcpy(out->id, hid, sizeof(out->id));
	if (env->keyring == NULL)
		return tk_deny(out, 400, "tokenizer_invalid", "no seal keys loaded%s", NULL);
	rc = seal_keyring_open(env->keyring, tok, toklen, &plain, &plainlen);
	if (rc == SEAL_E_FORMAT)
		return tk_deny(out, 400, "tokenizer_invalid", "the Proxy-Tokenizer secret is not "
		    "standard base64 of a sealed box%s", NULL);
	if (rc != SEAL_OK)
		return tk_deny(out, 400, "tokenizer_invalid", "the Proxy-Tokenizer secret was not "
		    "sealed to any of this proxy's keys (or is damaged)%s", NULL);
	rc = tokenizer_parse_secret(plain, plainlen, &s, &why);
	secmem_guarded_free(plain);
	if (rc < 0)
		return tk_deny(out, 400, rc == -2 ? "tokenizer_unsupported" :
		    "tokenizer_invalid", "%s", why);
	tk_what(out, &s);
	rc = -1;
	if (!tk_proxy_token_ok(&s, proxy_token)) {
		tk_deny(out, 407, "tokenizer_auth", "%s", proxy_token == NULL ?
		    "the sealed secret needs proxy credentials (Proxy-Authorization)" :
		    "the proxy credentials do not match the sealed secret's bearer_auth");
		goto done;
	}
	if (s.has_exp && env->now > s.exp + SG_CLOCK_SKEW_S) {
		tk_deny(out, 403, "token_expired", "the sealed secret expired (exp)%s", NULL);
		goto done;
	}
	if (s.has_nbf && env->now + SG_CLOCK_SKEW_S < s.nbf) {
		tk_deny(out, 403, "token_not_yet_valid", "the sealed secret is not valid yet "
		    "(nbf)%s", NULL);
		goto done;
	}
	if (!s.has_allowed_hosts && s.host_re == NULL && !env->allow_unscoped) {
		tk_deny(out, 403, "host_out_of_scope", "the sealed secret names neither "
		    "allowed_hosts nor allowed_host_pattern; sealgate sends it nowhere (%s)", host);
		goto done;
	}
	if (!tokenizer_host_allowed(&s, host, port)) {
		char hs[320];

		tk_host_string(host, port, hs, sizeof(hs));
		tk_deny(out, 403, "host_out_of_scope", "the sealed secret is not valid for %s",
		    hs);
		goto done;
	}
	if (s.allowed_methods.n > 0 && !scope_method_match(&s.allowed_methods, method)) {
		tk_deny(out, 403, "method_out_of_scope", "the sealed secret does not allow "
		    "method %s", method);
		goto done;
	}
	if (s.allowed_paths.n > 0) {
		char np[SG_MAX_START_LINE + 1];

		if (scope_path_normalize(path, strlen(path), np, sizeof(np)) < 0) {
			tk_deny(out, 400, "bad_request", "ambiguous request path (dot segments or "
			    "encoded slashes) with a path-scoped secret%s", NULL);
			goto done;
		}
		if (!scope_path_match(&s.allowed_paths, np)) {
			tk_deny(out, 403, "path_out_of_scope", "the sealed secret does not allow "
			    "this path%s", NULL);
			goto done;
		}
	}
	if (tk_parse_params(params, paramslen, &pr, &why) < 0) {
		tk_deny(out, 400, "tokenizer_invalid", "%s", why);
		goto done;
	}
	for (size_t i = 0; i < s.nproc; i++)
		if (tk_run_proc(c, &s.proc[i], &pr) < 0) {
			json_decref(pr.root);
			goto done;
		}
	json_decref(pr.root);
	if (s.rate.set && c->nrl < TOKENIZER_MAX_SECRETS) {
		size_t k = c->nrl++;

		snprintf(c->rlkey[k], sizeof(c->rlkey[k]), "tk:%s", hid);
		c->rate[k] = s.rate;
		c->rl[k] = (struct ratelimit_req){c->rlkey[k], strlen(c->rlkey[k]), &c->rate[k]};
	}
	out->n++;
	rc = 0;
done:
	tokenizer_secret_free(&s);
	return rc;
}

static int
tk_head(struct tk_ctx *c, const http_head_t *h, const char *host, uint16_t port,
    const char *method, const char *path, const char *proxy_token)
{
	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];

		if (strcasecmp(f->name, TOKENIZER_HEADER) != 0)
			continue;
		if (tk_one(c, f->value, f->value_len, host, port, method, path, proxy_token) < 0)
			return -1;
	}
	return 0;
}

int
tokenizer_apply(const tokenizer_env_t *env, const http_head_t *h, const char *host,
    uint16_t port, const char *method, const char *path, const char *proxy_token,
    inject_edits_t *edits, tokenizer_out_t *out)
{
	struct tk_ctx c;
	struct ratelimit_result res;

	memset(&res, 0, sizeof(res));
	res.limiting = RATELIMIT_NONE;
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.env = env;
	c.h = h;
	c.edits = edits;
	c.out = out;
	/* Never forwarded, whatever happens next. */
	tk_drop_named(h, edits, TOKENIZER_HEADER);
	tk_drop_named(h, edits, "Proxy-Authorization");
	if (host == NULL || method == NULL || path == NULL)
		return tk_deny(out, 400, "bad_request", "no host, method or path%s", NULL);
	if (env->connect_head != NULL && tk_head(&c, env->connect_head, host, port, method,
	    path, proxy_token) < 0)
		return -1;
	if (tk_head(&c, h, host, port, method, path, proxy_token) < 0)
		return -1;
	/* The body HMAC header is set last, by the shell: nothing else may carry it. */
	if (out->hmac.set)
		tk_drop_named(h, edits, out->hmac.dst);
	if (c.nrl > 0 && env->rl != NULL) {
		if (ratelimit_take(env->rl, c.rl, c.nrl, env->now_ms, &res) < 0 || !res.allowed) {
			ratelimit_format_headers(&res, "tokenizer", out->extra, sizeof(out->extra));
			return tk_deny(out, 429, "rate_limited", "rate limit reached for a sealed "
			    "tokenizer secret (its \"rate\")%s", NULL);
		}
	}
	return 0;
}

void
tokenizer_out_free(tokenizer_out_t *out)
{
	if (out == NULL)
		return;
	secmem_wipe_free(out->hmac.key);
	for (size_t i = 0; i < out->nbody; i++) {
		free(out->body[i].placeholder);
		secmem_wipe_free(out->body[i].token);
	}
	for (size_t i = 0; i < out->nscrub; i++)
		secmem_wipe_free(out->scrub[i].secret);
	sodium_memzero(out, sizeof(*out));
}

char *
tokenizer_hmac_value(const tokenizer_out_t *out, const void *body, size_t len)
{
	if (out == NULL || !out->hmac.set || out->hmac.key == NULL)
		return NULL;
	return tk_hmac_format(out->hmac.fmt, out->hmac.key, out->hmac.key_len,
	    body != NULL ? body : "", len);
}
