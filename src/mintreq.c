/* mintreq.c — the token endpoint request of each mint type, as wire bytes. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "inject.h"
#include "jwt.h"
#include "mintreq.h"
#include "secmem.h"

/* "&name=value" (the first without '&'), both form-urlencoded. */
static void
mintreq_form(secmem_buf_t *b, const char *name, const char *value, size_t vlen)
{
	char *v;

	if (value == NULL)
		return;
	if ((v = inject_urlencode(value, vlen)) == NULL) {
		b->failed = true;
		return;
	}
	if (b->len > 0)
		secmem_buf_puts(b, "&");
	secmem_buf_puts(b, name);
	secmem_buf_puts(b, "=");
	secmem_buf_puts(b, v);
	secmem_wipe_free(v);
}

static void
mintreq_form_s(secmem_buf_t *b, const char *name, const char *value)
{
	mintreq_form(b, name, value, value ? strlen(value) : 0);
}

/* The request line, headers and body. */
static int
mintreq_wire(const policy_mint_t *m, const char *auth, const char *ctype,
    const secmem_buf_t *body, char **wire, size_t *len)
{
	secmem_buf_t w = {0};
	char line[64];

	secmem_buf_puts(&w, "POST ");
	secmem_buf_puts(&w, m->path);
	secmem_buf_puts(&w, " HTTP/1.1\r\nHost: ");
	secmem_buf_puts(&w, m->host);
	if (m->port != 443) {
		snprintf(line, sizeof(line), ":%u", m->port);
		secmem_buf_puts(&w, line);
	}
	secmem_buf_puts(&w, "\r\nUser-Agent: sealgate\r\nAccept: application/json\r\n");
	if (m->type == MINT_GITHUB_APP)
		secmem_buf_puts(&w, "X-GitHub-Api-Version: 2022-11-28\r\n");
	if (auth != NULL) {
		secmem_buf_puts(&w, "Authorization: ");
		secmem_buf_puts(&w, auth);
		secmem_buf_puts(&w, "\r\n");
	}
	snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body->len);
	secmem_buf_puts(&w, "Content-Type: ");
	secmem_buf_puts(&w, ctype);
	secmem_buf_puts(&w, "\r\n");
	secmem_buf_puts(&w, line);
	secmem_buf_puts(&w, "Connection: close\r\n\r\n");
	secmem_buf_add(&w, body->p ? body->p : "", body->len);
	if (w.failed) {
		secmem_buf_free(&w);
		return MINTREQ_E_NOMEM;
	}
	*wire = w.p;
	*len = w.len;
	return MINTREQ_OK;
}

/* "Basic b64(urlenc(id):urlenc(secret))" (wipe memory), or NULL. */
static char *
mintreq_basic(const char *client_id, const char *secret, size_t slen)
{
	char *id = inject_urlencode(client_id, strlen(client_id));
	char *sec = inject_urlencode(secret, slen);
	char *b64 = id && sec ? inject_basic_b64(id, sec, strlen(sec)) : NULL;
	secmem_buf_t v = {0};

	if (b64 != NULL) {
		secmem_buf_puts(&v, "Basic ");
		secmem_buf_puts(&v, b64);
	}
	secmem_wipe_free(id);
	secmem_wipe_free(sec);
	secmem_wipe_free(b64);
	if (v.failed)
		secmem_buf_free(&v);
	return v.p;
}

/* The grant's own form fields: grant_type and what it exchanges. */
static int
mintreq_grant(const policy_mint_t *m, const char *refresh, secmem_buf_t *body)
{
	switch (m->type) {
	case MINT_REFRESH_TOKEN:
		if (refresh == NULL)
			return MINTREQ_E_ARG;
		mintreq_form_s(body, "grant_type", "refresh_token");
		mintreq_form_s(body, "refresh_token", refresh);
		return MINTREQ_OK;
	case MINT_TOKEN_EXCHANGE:
		mintreq_form_s(body, "grant_type",
		    "urn:ietf:params:oauth:grant-type:token-exchange");
		mintreq_form(body, "subject_token", m->secret, m->secret_len);
		mintreq_form_s(body, "subject_token_type", m->subject_token_type);
		mintreq_form_s(body, "requested_token_type", m->requested_token_type);
		return MINTREQ_OK;
	default:
		mintreq_form_s(body, "grant_type", "client_credentials");
		return MINTREQ_OK;
	}
}

/* client_credentials, refresh_token and token_exchange (the last two: client secret
 * optional). */
static int
mintreq_oauth(const policy_mint_t *m, const mintreq_narrow_t *n, const char *refresh,
    char **wire, size_t *len)
{
	bool cc = m->type == MINT_CLIENT_CREDENTIALS;
	const char *cs = cc ? m->secret : m->client_secret;
	size_t cslen = cc ? m->secret_len : m->client_secret_len;
	bool basic = !m->auth_body && cs != NULL;
	secmem_buf_t body = {0};
	char *auth = NULL;
	int rc;

	if ((rc = mintreq_grant(m, refresh, &body)) != MINTREQ_OK)
		return rc;
	mintreq_form_s(&body, "scope", n && n->scope ? n->scope : m->scope);
	mintreq_form_s(&body, "audience", n && n->audience ? n->audience : m->audience);
	mintreq_form_s(&body, "resource", m->resource);
	for (size_t i = 0; i < m->param_names.n; i++)
		mintreq_form_s(&body, m->param_names.v[i], m->param_values.v[i]);
	if (basic && (auth = mintreq_basic(m->client_id, cs, cslen)) == NULL)
		body.failed = true;
	if (!basic) {
		mintreq_form_s(&body, "client_id", m->client_id);
		mintreq_form(&body, "client_secret", cs, cslen);
	}
	rc = body.failed ? MINTREQ_E_NOMEM : mintreq_wire(m, auth,
	    "application/x-www-form-urlencoded", &body, wire, len);
	secmem_wipe_free(auth);
	secmem_buf_free(&body);
	return rc;
}

/* A JWT signed RS256 with the mint's key from claims (taken over). */
static int
mintreq_jwt(const policy_mint_t *m, json_t *claims, char **jwt, size_t *jlen)
{
	char *text = claims ? json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	int rc;

	json_decref(claims);
	if (text == NULL)
		return MINTREQ_E_NOMEM;
	rc = jwt_encode("RS256", NULL, text, m->secret, m->secret_len, jwt, jlen);
	free(text);
	return rc == JWT_OK ? MINTREQ_OK : rc == JWT_E_NOMEM ? MINTREQ_E_NOMEM :
	    MINTREQ_E_SIGN;
}

/* {"repositories": [names], "permissions": {name: level}}, or {} (malloc'd). */
static char *
mintreq_github_body(const mintreq_narrow_t *n)
{
	json_t *o = json_object(), *r, *p;
	char perm[MINTREQ_PERM_MAX + 1];
	const char *slash, *colon;
	char *s;

	if (o != NULL && n != NULL && n->nrepos > 0 && (r = json_array()) != NULL) {
		for (size_t i = 0; i < n->nrepos; i++) {
			slash = strrchr(n->repos[i], '/');
			json_array_append_new(r, json_string(slash ? slash + 1 : n->repos[i]));
		}
		json_object_set_new(o, "repositories", r);
	}
	if (o != NULL && n != NULL && n->nperms > 0 && (p = json_object()) != NULL) {
		for (size_t i = 0; i < n->nperms; i++) {
			if ((colon = strchr(n->perms[i], ':')) == NULL ||
			    (size_t)(colon - n->perms[i]) > MINTREQ_PERM_MAX)
				continue;	/* mintreq_narrow_check refused it */
			snprintf(perm, sizeof(perm), "%.*s", (int)(colon - n->perms[i]),
			    n->perms[i]);
			json_object_set_new(p, perm, json_string(colon + 1));
		}
		json_object_set_new(o, "permissions", p);
	}
	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	return s;
}

static int
mintreq_github(const policy_mint_t *m, const mintreq_narrow_t *n, int64_t now,
    char **wire, size_t *len)
{
	int64_t iat = now - MINTREQ_GITHUB_IAT_SKEW_S;
	json_t *claims = json_pack("{s:I, s:I, s:s}", "iat", (json_int_t)iat, "exp",
	    (json_int_t)(iat + MINTREQ_GITHUB_JWT_LIFE_S), "iss", m->client_id);
	secmem_buf_t auth = {0}, body = {0};
	char *jwt = NULL, *json;
	size_t jlen;
	int rc = mintreq_jwt(m, claims, &jwt, &jlen);

	if (rc != MINTREQ_OK)
		return rc;
	secmem_buf_puts(&auth, "Bearer ");
	secmem_buf_puts(&auth, jwt);
	secmem_wipe_free(jwt);
	if ((json = mintreq_github_body(n)) == NULL)
		body.failed = true;
	else
		secmem_buf_puts(&body, json);
	free(json);
	rc = auth.failed || body.failed ? MINTREQ_E_NOMEM : mintreq_wire(m, auth.p,
	    "application/json", &body, wire, len);
	secmem_buf_free(&auth);
	secmem_buf_free(&body);
	return rc;
}

static int
mintreq_jwt_bearer(const policy_mint_t *m, const mintreq_narrow_t *n, int64_t now,
    char **wire, size_t *len)
{
	const char *scope = n && n->scope ? n->scope : m->scope;
	const char *aud = n && n->audience ? n->audience : m->audience;
	json_t *claims = json_pack("{s:s, s:s, s:I, s:I}", "iss", m->client_id, "aud",
	    aud ? aud : m->token_url, "iat", (json_int_t)now, "exp",
	    (json_int_t)(now + MINTREQ_ASSERTION_LIFE_S));
	secmem_buf_t body = {0};
	char *jwt = NULL;
	size_t jlen;
	int rc;

	if (claims != NULL && scope != NULL)
		json_object_set_new(claims, "scope", json_string(scope));
	if (claims != NULL && m->target_audience != NULL)
		json_object_set_new(claims, "target_audience", json_string(m->target_audience));
	if ((rc = mintreq_jwt(m, claims, &jwt, &jlen)) != MINTREQ_OK)
		return rc;
	mintreq_form_s(&body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
	mintreq_form(&body, "assertion", jwt, jlen);
	for (size_t i = 0; i < m->param_names.n; i++)
		mintreq_form_s(&body, m->param_names.v[i], m->param_values.v[i]);
	secmem_wipe_free(jwt);
	rc = body.failed ? MINTREQ_E_NOMEM : mintreq_wire(m, NULL,
	    "application/x-www-form-urlencoded", &body, wire, len);
	secmem_buf_free(&body);
	return rc;
}

int
mintreq_build(const policy_mint_t *m, const mintreq_narrow_t *narrow, const char *refresh,
    int64_t now, char **wire, size_t *len)
{
	*wire = NULL;
	*len = 0;
	if (m->host == NULL || m->path == NULL || m->client_id == NULL || m->secret == NULL)
		return MINTREQ_E_ARG;
	switch (m->type) {
	case MINT_CLIENT_CREDENTIALS:
	case MINT_REFRESH_TOKEN:
	case MINT_TOKEN_EXCHANGE:
		return mintreq_oauth(m, narrow, refresh, wire, len);
	case MINT_GITHUB_APP:
		return mintreq_github(m, narrow, now, wire, len);
	case MINT_JWT_BEARER:
		return mintreq_jwt_bearer(m, narrow, now, wire, len);
	}
	return MINTREQ_E_ARG;
}

/* --- a handle's narrowing ----------------------------------------------------------------- */

/* Is every space-separated token of want one of have's? */
static bool
mintreq_scope_within(const char *want, const char *have)
{
	size_t n, hn;

	for (const char *w = want; *w != '\0'; w += n) {
		w += strspn(w, " ");
		if ((n = strcspn(w, " ")) == 0)
			break;
		bool found = false;

		for (const char *h = have; *h != '\0' && !found; h += hn) {
			h += strspn(h, " ");
			hn = strcspn(h, " ");
			found = hn == n && memcmp(h, w, n) == 0;
		}
		if (!found)
			return false;
	}
	return strspn(want, " ") != strlen(want);
}

/* s[0..n): 1..max of [a-z] and extra, and with mixed also [A-Z0-9]. */
static bool
mintreq_name_ok(const char *s, size_t n, bool mixed, const char *extra, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || strchr(extra, s[i]) != NULL ||
		    (mixed && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))))
			return false;
	return true;
}

static bool
mintreq_repo_ok(const char *r)
{
	const char *slash = strchr(r, '/');

	return slash != NULL && strchr(slash + 1, '/') == NULL &&
	    mintreq_name_ok(r, (size_t)(slash - r), true, "._-", MINTREQ_REPO_PART_MAX) &&
	    mintreq_name_ok(slash + 1, strlen(slash + 1), true, "._-", MINTREQ_REPO_PART_MAX);
}

static bool
mintreq_perm_ok(const char *p)
{
	const char *colon = strchr(p, ':');

	return colon != NULL && mintreq_name_ok(p, (size_t)(colon - p), false, "_",
	    MINTREQ_PERM_MAX) &&
	    (strcmp(colon + 1, "read") == 0 || strcmp(colon + 1, "write") == 0 ||
	    strcmp(colon + 1, "admin") == 0);
}

int
mintreq_narrow_check(const policy_mint_t *m, const char *scope,
    const policy_strlist_t *repos, const policy_strlist_t *perms, const char **why)
{
	bool gh = m->type == MINT_GITHUB_APP;

	*why = NULL;
	if (scope != NULL && (gh || m->scope == NULL))
		*why = "this credential names no scope to narrow";
	else if (scope != NULL && !mintreq_scope_within(scope, m->scope))
		*why = "the scope asks for more than the credential's scope";
	else if ((repos->n > 0 || perms->n > 0) && !gh)
		*why = "repositories and permissions narrow github_app credentials only";
	else if (repos->n > MINTREQ_NARROW_MAX || perms->n > MINTREQ_NARROW_MAX)
		*why = "too many repositories or permissions";
	for (size_t i = 0; *why == NULL && i < repos->n; i++)
		if (!mintreq_repo_ok(repos->v[i]))
			*why = "a repository is not owner/name";
	for (size_t i = 0; *why == NULL && i < perms->n; i++)
		if (!mintreq_perm_ok(perms->v[i]))
			*why = "a permission is not name:read, name:write or name:admin";
	return *why == NULL ? 0 : -1;
}

int
mintreq_audience_check(const policy_mint_t *m, const char *aud, const char **why)
{
	*why = NULL;
	if (aud == NULL)
		return 0;
	if (m->type == MINT_GITHUB_APP || (m->audience == NULL && m->audiences.n == 0)) {
		*why = "this credential names no audience to narrow";
		return -1;
	}
	if (m->audience != NULL && strcmp(aud, m->audience) == 0)
		return 0;
	for (size_t i = 0; i < m->audiences.n; i++)
		if (strcmp(aud, m->audiences.v[i]) == 0)
			return 0;
	*why = "the audience is not one the credential allows (mint audience, audiences)";
	return -1;
}
