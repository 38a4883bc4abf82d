/* minttok.c — a token endpoint's JSON answer (RFC 6749 and GitHub's), strictly read. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "minttok.h"
#include "secmem.h"

static int
minttok_bad(minttok_t *out, const char *why)
{
	out->why = why;
	return MINTTOK_E_FORMAT;
}

static bool
minttok_charset(const char *s, size_t len, size_t max, const char *extra)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (extra == NULL ? (ch < 0x21 || ch > 0x7e) :
		    (!isalnum(ch) && strchr(extra, ch) == NULL))
			return false;
	}
	return true;
}

/* A token member (NULL: absent) into wipe memory. 0, 1 (absent), -1 bad, -3 no memory. */
static int
minttok_secret(json_t *v, char **out, size_t *outlen)
{
	const char *s;
	size_t len;

	if (v == NULL)
		return 1;
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	len = json_string_length(v);
	if (!minttok_charset(s, len, MINTTOK_TOKEN_MAX, NULL))
		return -1;
	if ((*out = secmem_wipe_dup(s, len)) == NULL)
		return -3;
	*outlen = len;
	return 0;
}

/* Printable ASCII copy, cut to cap - 1 bytes. */
static void
minttok_text(json_t *v, char *out, size_t cap)
{
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < cap; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
}

/* "YYYY-MM-DDTHH:MM:SS[.frac]Z" to unix seconds; -1 when not that. */
static int64_t
minttok_time(const char *s)
{
	struct tm tm;
	const char *rest;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) < 20 || (rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*rest == '.') {
		if (!isdigit((unsigned char)rest[1]))
			return -1;
		for (rest++; isdigit((unsigned char)*rest); rest++)
			;
	}
	if (strcmp(rest, "Z") != 0)
		return -1;
	return (int64_t)timegm(&tm);
}

/* expires_in (number or digits) or expires_at. 0 / -1. */
static int
minttok_expiry(json_t *in, json_t *at, int64_t now, minttok_t *out)
{
	json_int_t n = 0;
	int64_t t;

	if (in != NULL && at != NULL)
		return minttok_bad(out, "both expires_in and expires_at");
	if (json_is_integer(in))
		n = json_integer_value(in);
	else if (json_is_string(in)) {
		const char *s = json_string_value(in);
		size_t len = json_string_length(in);

		if (!minttok_charset(s, len, 9, "") || strspn(s, "0123456789") != len)
			return minttok_bad(out, "expires_in is not a number");
		n = strtoll(s, NULL, 10);
	} else if (in != NULL)
		return minttok_bad(out, "expires_in is not a number");
	else if (at != NULL) {
		if (!json_is_string(at) || (t = minttok_time(json_string_value(at))) < 0)
			return minttok_bad(out, "expires_at is not a UTC time");
		n = t - now;
	} else
		n = MINTTOK_EXPIRES_DEFAULT_S;
	if (n <= 0 || n > MINTTOK_EXPIRES_MAX)
		return minttok_bad(out, "the token's lifetime is out of range");
	out->expires_in = (int64_t)n;
	return 0;
}

static int
minttok_error(json_t *root, minttok_t *out)
{
	json_t *e = json_object_get(root, "error");

	if (e == NULL) {	/* GitHub: {"message": …} */
		snprintf(out->error, sizeof(out->error), "github_error");
		minttok_text(json_object_get(root, "message"), out->error_description,
		    sizeof(out->error_description));
		return MINTTOK_ERROR;
	}
	if (!json_is_string(e) || !minttok_charset(json_string_value(e),
	    json_string_length(e), MINTTOK_CODE_MAX, "._-"))
		return minttok_bad(out, "error is not an error code");
	snprintf(out->error, sizeof(out->error), "%s", json_string_value(e));
	minttok_text(json_object_get(root, "error_description"), out->error_description,
	    sizeof(out->error_description));
	return MINTTOK_ERROR;
}

static int
minttok_token(json_t *root, json_t *tok, int64_t now, minttok_t *out)
{
	json_t *ty = json_object_get(root, "token_type"), *sc = json_object_get(root, "scope");
	int rc;

	if (json_object_get(root, "error") != NULL)
		return minttok_bad(out, "an error beside a token");
	if ((rc = minttok_secret(tok, &out->access_token, &out->access_token_len)) != 0)
		return rc == -3 ? MINTTOK_E_NOMEM : minttok_bad(out, "bad access token");
	rc = minttok_secret(json_object_get(root, "refresh_token"), &out->refresh_token,
	    &out->refresh_token_len);
	if (rc == -3)
		return MINTTOK_E_NOMEM;
	if (rc < 0)
		return minttok_bad(out, "bad refresh token");
	if (ty != NULL && (!json_is_string(ty) || !minttok_charset(json_string_value(ty),
	    json_string_length(ty), MINTTOK_TYPE_MAX, "._-")))
		return minttok_bad(out, "bad token_type");
	snprintf(out->token_type, sizeof(out->token_type), "%s", ty ? json_string_value(ty) :
	    "Bearer");
	if (sc != NULL && (!json_is_string(sc) || json_string_length(sc) > MINTTOK_SCOPE_MAX))
		return minttok_bad(out, "bad scope");
	minttok_text(sc, out->scope, sizeof(out->scope));
	if (minttok_expiry(json_object_get(root, "expires_in"),
	    json_object_get(root, "expires_at"), now, out) < 0)
		return MINTTOK_E_FORMAT;
	return MINTTOK_TOKEN;
}

static int
minttok_root(json_t *root, int64_t now, minttok_t *out)
{
	json_t *at = json_object_get(root, "access_token"), *gh = json_object_get(root, "token");

	if (at != NULL && gh != NULL)
		return minttok_bad(out, "both access_token and token");
	if (at != NULL || gh != NULL)
		return minttok_token(root, at ? at : gh, now, out);
	if (json_object_get(root, "error") != NULL || json_object_get(root, "message") != NULL)
		return minttok_error(root, out);
	return minttok_bad(out, "no token and no error");
}

int
minttok_parse(const char *json, size_t len, int64_t now, minttok_t *out)
{
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (json == NULL || len > MINTTOK_MAX_INPUT)
		return minttok_bad(out, json ? "the answer is too large" : "no answer");
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL)
		return minttok_bad(out, "not JSON");
	rc = json_is_object(root) ? minttok_root(root, now, out) :
	    minttok_bad(out, "not a JSON object");
	json_decref(root);
	if (rc != MINTTOK_TOKEN) {	/* no half answers: the secrets go */
		secmem_wipe_free(out->access_token);
		secmem_wipe_free(out->refresh_token);
		out->access_token = out->refresh_token = NULL;
		out->access_token_len = out->refresh_token_len = 0;
	}
	return rc;
}

void
minttok_free(minttok_t *t)
{
	secmem_wipe_free(t->access_token);
	secmem_wipe_free(t->refresh_token);
	memset(t, 0, sizeof(*t));
}
