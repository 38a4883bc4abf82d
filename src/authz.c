/* authz.c — one verified handle against one request: revocation, time, sandbox (its own,
 * or a fork or restore that carried it), lifetime, scope. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "authz.h"
#include "defaults.h"
#include "netaddr.h"
#include "scope.h"

/* Request text echoed in messages is cut here (a message is 320 bytes in all). */
#define AUTHZ_ECHO_MAX		96
/* Where a sandbox gets fresh handles: named in every sandbox_mismatch message, with the
 * policy's metadata.url. */
#define AUTHZ_HANDLES_HINT	"fetch handles for this sandbox from the metadata service " \
	"(GET /v1/handles) at %s"

static int authz_deny(authz_result_t *out, unsigned status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
authz_deny(authz_result_t *out, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	out->status = status;
	out->code = code;
	out->cred = NULL;
	out->sandbox = NULL;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* Request text safe to echo: anything holding handle text is shown as "[handle]". */
static const char *
authz_echo(const char *s)
{
	if (s == NULL)
		return "-";
	return strcasestr(s, HANDLE_PREFIX) != NULL ? "[handle]" : s;
}

/* --- the checks, in order; each 0 (pass) or -1 (out filled) ------------------------------ */

static int
authz_check_revoked(const authz_input_t *in, const handle_claims_t *c, authz_result_t *out)
{
	const char *kind = NULL, *by = NULL;

	if (!revoke_check(in->revoked, c, &kind))
		return 0;
	if (strcmp(kind, "sandbox") == 0)
		by = c->sb;
	else if (strcmp(kind, "credential") == 0)
		by = c->cred;
	else if (strcmp(kind, "key") == 0)
		by = c->key_id;
	if (by == NULL)
		return authz_deny(out, 403, "revoked", "handle %s revoked", c->hid);
	return authz_deny(out, 403, "revoked", "handle %s revoked (by %s %s)", c->hid, kind,
	    by);
}

static int
authz_check_time(const authz_input_t *in, const handle_claims_t *c, authz_result_t *out)
{
	switch (handle_check_time(c, in->now, SG_CLOCK_SKEW_S)) {
	case HANDLE_E_EXPIRED:
		return authz_deny(out, 403, "handle_expired", "handle %s (credential %s) "
		    "expired %llds ago; fetch a fresh one from the metadata service", c->hid,
		    c->cred, (long long)(in->now - c->exp));
	case HANDLE_E_NOT_YET_VALID:
		return authz_deny(out, 403, "handle_not_yet_valid", "handle %s (credential %s) "
		    "is issued %llds in the future; check the clocks", c->hid, c->cred,
		    (long long)(c->iat - in->now));
	default:
		return 0;
	}
}

/* Constant-time equality of two strings of any lengths (compares BLAKE2b digests). */
static bool
authz_token_eq(const char *want, const char *got)
{
	uint8_t a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
	bool eq;

	crypto_generichash(a, sizeof(a), (const unsigned char *)want, strlen(want), NULL, 0);
	crypto_generichash(b, sizeof(b), (const unsigned char *)got, strlen(got), NULL, 0);
	eq = sodium_memcmp(a, b, sizeof(a)) == 0;
	sodium_memzero(a, sizeof(a));
	sodium_memzero(b, sizeof(b));
	return eq;
}

/* Does the request's proxy token match the sandbox's (plaintext or digest)? */
static bool
authz_token_ok(const sandbox_view_t *v, const char *got)
{
	uint8_t h[REGISTRY_TOKEN_HASH_LEN];
	bool eq;

	if (v->token != NULL)
		return authz_token_eq(v->token, got);
	crypto_generichash(h, sizeof(h), (const unsigned char *)got, strlen(got), NULL, 0);
	eq = sodium_memcmp(h, v->token_hash, sizeof(h)) == 0;
	sodium_memzero(h, sizeof(h));
	return eq;
}

/* The handle's sandbox is not live: revoked (deleted / expired / re-created) or unknown. */
static int
authz_sandbox_gone(const registry_snapshot_t *reg, const handle_claims_t *c,
    authz_result_t *out)
{
	const registry_entry_t *e = registry_find(reg, c->sb);
	const char *why = registry_tombstone(reg, c->sb);

	if (e != NULL)		/* present but past expires_at: the sweep has not run yet */
		why = "expired";
	if (why != NULL)
		return authz_deny(out, 403, "revoked", "sandbox %s %s (handle %s)", c->sb,
		    strcmp(why, "expired") == 0 ? "expired" : "was deleted", c->hid);
	return authz_deny(out, 403, "sandbox_unknown", "handle %s names sandbox %s, "
	    "which the policy does not define and no one registered", c->hid, c->sb);
}

/* Does the request carry v's proxy token (when v has one)? NULL, or what is wrong. */
static const char *
authz_token_why(const authz_input_t *in, const sandbox_view_t *v)
{
	if (v->token == NULL && v->token_hash == NULL)
		return NULL;
	if (in->proxy_token == NULL)
		return "the request carries no proxy token";
	if (!authz_token_ok(v, in->proxy_token))
		return "the request carries another proxy token";
	return NULL;
}

/* Is the request from v itself (address and proxy token) and the handle of this v? */
static bool
authz_is_owner(const authz_input_t *in, const handle_claims_t *c, const sandbox_view_t *v)
{
	return sandbox_view_contains(v, in->peer) && authz_token_why(in, v) == NULL &&
	    (v->entry == NULL || c->iat >= v->created);
}

/*
 * Did the handle come with a fork or restore? The sandbox at the source address (its
 * token too) has a lineage link to the handle's sandbox taken at or after iat. That
 * covers a restore under the handle's own id (re-registered after minting) as well.
 */
static bool
authz_by_lineage(const authz_input_t *in, const registry_snapshot_t *reg,
    const handle_claims_t *c, sandbox_view_t *v)
{
	return in->peer != NULL && sandbox_view_find_by_addr(in->policy, reg, in->peer,
	    in->now, v) == 0 && lineage_accepts(v->lineage, c->sb, c->iat) != NULL &&
	    authz_token_why(in, v) == NULL;
}

/* Why a request is not from the handle's sandbox (own: that sandbox, or NULL). */
static void
authz_mismatch_why(const authz_input_t *in, const registry_snapshot_t *reg,
    const handle_claims_t *c, const sandbox_view_t *own, char *why, size_t len)
{
	const lineage_link_t *k;
	sandbox_view_t from;
	const char *tok;

	if (own != NULL && sandbox_view_contains(own, in->peer)) {
		tok = authz_token_why(in, own);
		snprintf(why, len, "%s", tok ? tok : "the request is not from it");
		return;
	}
	if (in->peer == NULL || sandbox_view_find_by_addr(in->policy, reg, in->peer, in->now,
	    &from) < 0) {
		snprintf(why, len, "the request comes from another address");
		return;
	}
	k = lineage_find(from.lineage, c->sb);
	tok = authz_token_why(in, &from);
	if (k != NULL && c->iat <= k->at)
		snprintf(why, len, "the request comes from sandbox %s, a copy of it, but %s",
		    from.name, tok ? tok : "not as that copy");
	else if (k != NULL)
		snprintf(why, len, "the request comes from sandbox %s, a copy of it taken at "
		    "%lld, before the handle was minted at %lld", from.name, (long long)k->at,
		    (long long)c->iat);
	else
		snprintf(why, len, "the request comes from another address, that of sandbox %s",
		    from.name);
}

/*
 * Who asks: the handle's own sandbox, or a fork or restore that carried the handle
 * (out->origin set). v is the sandbox the request is judged as.
 */
static int
authz_check_sandbox(const authz_input_t *in, const registry_snapshot_t *reg,
    const handle_claims_t *c, sandbox_view_t *v, authz_result_t *out)
{
	const char *url = in->policy->metadata_url ? in->policy->metadata_url :
	    SG_POLICY_METADATA_URL;
	bool known = sandbox_view_find(in->policy, reg, c->sb, in->now, v) == 0;
	sandbox_view_t copy;
	char why[256];

	if (known && authz_is_owner(in, c, v)) {
		out->subject = v->name;
		return 0;
	}
	if (authz_by_lineage(in, reg, c, &copy)) {
		*v = copy;
		out->subject = v->name;
		out->origin = c->sb;
		return 0;
	}
	if (!known)
		return authz_sandbox_gone(reg, c, out);
	if (v->entry != NULL && c->iat < v->created)
		return authz_deny(out, 403, "revoked", "sandbox %s was deleted and registered "
		    "again after handle %s was minted", c->sb, c->hid);
	authz_mismatch_why(in, reg, c, v, why, sizeof(why));
	return authz_deny(out, 407, "sandbox_mismatch", "this handle belongs to sandbox "
	    "%s (%s); " AUTHZ_HANDLES_HINT, c->sb, why, url);
}

static int
authz_check_suspended(const handle_claims_t *c, const sandbox_view_t *sb,
    authz_result_t *out)
{
	if (!sb->suspended)
		return 0;
	return authz_deny(out, 403, "sandbox_suspended", "sandbox %s is suspended; resume it "
	    "first (handle %s)", sb->name, c->hid);
}

/*
 * A sandbox-lifetime handle is bounded by iat + the current policy's max_ttl (a policy
 * edit applies to live handles), or by its ttl once the policy gives this credential
 * wall-clock handles in this sandbox. Wall-clock handles carry their bound in exp.
 */
static int
authz_check_lifetime(const authz_input_t *in, const handle_claims_t *c,
    const sandbox_view_t *sb, const policy_credential_t *cred, authz_result_t *out)
{
	sandbox_lifetime_t life;
	int64_t end;

	if (!c->life_sandbox)
		return 0;
	sandbox_view_lifetime(sb, cred, &life);
	end = c->iat + (int64_t)life.ttl_s;
	if (in->now < end || in->now - end < SG_CLOCK_SKEW_S)
		return 0;
	return authz_deny(out, 403, "handle_expired", "handle %s (credential %s) is past "
	    "its %s of %llus in sandbox %s; fetch a fresh one from the metadata service",
	    c->hid, c->cred, life.sandbox ? "max_ttl" : "ttl", (unsigned long long)life.ttl_s,
	    sb->name);
}

static int
authz_check_grant(const authz_input_t *in, const handle_claims_t *c,
    const sandbox_view_t *sb, const policy_credential_t **credp, authz_result_t *out)
{
	const policy_credential_t *cred = policy_credential_find(in->policy, c->cred);

	if (cred == NULL)
		return authz_deny(out, 403, "credential_not_granted", "credential %s is not "
		    "in the policy (handle %s)", c->cred, c->hid);
	if (!sandbox_view_grants(sb, c->cred))
		return authz_deny(out, 403, "credential_not_granted", "credential %s is not "
		    "granted to sandbox %s%s%s%s (handle %s)", c->cred, sb->name,
		    sb->template_name ? " (template " : "",
		    sb->template_name ? sb->template_name : "", sb->template_name ? ")" : "",
		    c->hid);
	*credp = cred;
	return 0;
}

static int
authz_check_host(const authz_input_t *in, const handle_claims_t *c,
    const policy_credential_t *cred, authz_result_t *out)
{
	const char *whose = NULL;

	if (in->host == NULL || !scope_hosts_match(&cred->hosts, in->host, in->port))
		whose = "the credential's hosts";
	else if (c->hosts.n > 0 && !scope_hosts_match(&c->hosts, in->host, in->port))
		whose = "the handle's hosts";
	if (whose == NULL)
		return 0;
	out->exfiltration = true;
	return authz_deny(out, 403, "host_out_of_scope", "credential %s may not be sent to "
	    "%.*s:%u (not in %s; handle %s)", cred->name, AUTHZ_ECHO_MAX,
	    authz_echo(in->host), (unsigned)in->port, whose, c->hid);
}

static int
authz_check_method(const authz_input_t *in, const handle_claims_t *c,
    const policy_credential_t *cred, authz_result_t *out)
{
	const char *whose = NULL;

	if (in->method == NULL || !scope_method_match(&cred->methods, in->method))
		whose = "the credential's methods";
	else if (!scope_method_match(&c->methods, in->method))
		whose = "the handle's methods";
	if (whose == NULL)
		return 0;
	return authz_deny(out, 403, "method_out_of_scope", "credential %s may not be used "
	    "with method %.*s (not in %s)", cred->name, AUTHZ_ECHO_MAX,
	    authz_echo(in->method), whose);
}

static int
authz_check_path(const authz_input_t *in, const handle_claims_t *c,
    const policy_credential_t *cred, authz_result_t *out)
{
	const char *whose = NULL;

	if (in->path == NULL || !scope_path_match(&cred->paths, in->path))
		whose = "the credential's paths";
	else if (!scope_path_match(&c->paths, in->path))
		whose = "the handle's paths";
	if (whose == NULL)
		return 0;
	return authz_deny(out, 403, "path_out_of_scope", "credential %s may not be used on "
	    "path %.*s (not in %s)", cred->name, AUTHZ_ECHO_MAX, authz_echo(in->path),
	    whose);
}

int
authz_check(const authz_input_t *in, const handle_claims_t *c, authz_result_t *out)
{
	const registry_snapshot_t *reg = in->registry;
	const policy_credential_t *cred = NULL;
	sandbox_view_t sb;

	memset(out, 0, sizeof(*out));
	if (authz_check_revoked(in, c, out) < 0 || authz_check_time(in, c, out) < 0 ||
	    authz_check_sandbox(in, reg, c, &sb, out) < 0 ||
	    authz_check_suspended(c, &sb, out) < 0 ||
	    authz_check_grant(in, c, &sb, &cred, out) < 0 ||
	    authz_check_lifetime(in, c, &sb, cred, out) < 0 ||
	    authz_check_host(in, c, cred, out) < 0 ||
	    authz_check_method(in, c, cred, out) < 0 ||
	    authz_check_path(in, c, cred, out) < 0)
		return -1;
	out->status = 0;
	out->code = "ok";
	out->cred = cred;
	out->sandbox = sb.sb;
	return 0;
}

int
authz_requester(const policy_t *p, const registry_snapshot_t *reg,
    const struct sockaddr *peer, const char *proxy_token, int64_t now, sandbox_view_t *out)
{
	if (peer == NULL || sandbox_view_find_by_addr(p, reg, peer, now, out) < 0)
		return -1;
	if (out->token == NULL && out->token_hash == NULL)
		return 0;
	if (proxy_token != NULL && authz_token_ok(out, proxy_token))
		return 0;
	memset(out, 0, sizeof(*out));
	return -1;
}

/* --- Proxy-Authorization ------------------------------------------------------------------ */

/* After "scheme" and its blanks in v, or NULL when v uses another scheme. */
static const char *
authz_after_scheme(const char *v, const char *scheme)
{
	size_t n = strlen(scheme);

	if (strncasecmp(v, scheme, n) != 0 || (v[n] != ' ' && v[n] != '\t'))
		return NULL;
	for (v += n; *v == ' ' || *v == '\t'; v++)
		;
	return v;
}

/* s[0..len) into out when it is a non-empty run of visible characters that fits. */
static int
authz_token_copy(const char *s, size_t len, char *out, size_t outlen)
{
	if (len == 0 || len >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* Length of s without trailing blanks. */
static size_t
authz_trimmed_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n;
}

/* The password of "Basic base64(user:password)". */
static int
authz_basic_password(const char *b64, size_t len, char *out, size_t outlen)
{
	unsigned char buf[AUTHZ_BASIC_MAX];
	const unsigned char *colon;
	size_t n = 0;
	int rc = -1;

	if (sodium_base642bin(buf, sizeof(buf), b64, len, NULL, &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 &&
	    sodium_base642bin(buf, sizeof(buf), b64, len, NULL, &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
		goto done;
	if ((colon = memchr(buf, ':', n)) != NULL)
		rc = authz_token_copy((const char *)colon + 1, n - (size_t)(colon + 1 - buf),
		    out, outlen);
done:
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
authz_proxy_token(const char *value, char *out, size_t outlen)
{
	const char *t;
	int rc = -1;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (value == NULL)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	if ((t = authz_after_scheme(value, "Bearer")) != NULL ||
	    (t = authz_after_scheme(value, "FlyV1")) != NULL)
		rc = authz_token_copy(t, authz_trimmed_len(t), out, outlen);
	else if ((t = authz_after_scheme(value, "Basic")) != NULL)
		rc = authz_basic_password(t, authz_trimmed_len(t), out, outlen);
	if (rc < 0)
		sodium_memzero(out, outlen);
	return rc;
}
