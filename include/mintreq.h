/*
 * mintreq.h — the token request of a credential with "mint" (policy.h policy_mint_t):
 * the HTTP/1.1 request bytes sealgate sends to the token endpoint. Pure core: bytes in,
 * bytes out; the time is passed in; JWTs are signed through jwt.h (RS256: the signer the
 * shell installed).
 *
 *   client_credentials  POST token_url, form grant_type=client_credentials [scope]
 *                       [audience] [resource] [params...]; the client authenticates
 *                       with HTTP Basic (client_auth "basic": form-urlencoded id and
 *                       secret, RFC 6749 §2.3.1) or client_id/client_secret in the form.
 *   refresh_token       POST token_url, form grant_type=refresh_token&refresh_token=RT
 *                       (the newest one, the caller's) and the rest as above; without a
 *                       client_secret the client_id goes in the form (a public client).
 *   github_app          POST /app/installations/ID/access_tokens, Authorization: Bearer
 *                       an App JWT (RS256; iat now - MINTREQ_GITHUB_IAT_SKEW_S, exp
 *                       iat + MINTREQ_GITHUB_JWT_LIFE_S, iss the app or client id), JSON
 *                       body {} or {"repositories": [...], "permissions": {...}}.
 *   jwt_bearer          POST token_url, form grant_type=urn:ietf:params:oauth:grant-type:
 *                       jwt-bearer&assertion=JWT (RS256; iss the key's client_email,
 *                       aud audience or token_url, iat now, exp now +
 *                       MINTREQ_ASSERTION_LIFE_S, scope or target_audience).
 *   token_exchange      POST token_url, form grant_type=urn:ietf:params:oauth:grant-type:
 *                       token-exchange&subject_token=…&subject_token_type=…
 *                       [requested_token_type] [scope] [audience] [resource] [params],
 *                       client auth as for refresh_token (RFC 8693 §2.1).
 *
 * The narrowing (a handle's, mintreq_narrow_t) replaces scope and audience (OAuth) and
 * names repositories and permissions (GitHub); the caller checked it against the
 * credential (mintreq_narrow_check). Every request says "Connection: close" and "Accept: application/json".
 * The wire holds the root secret or a JWT: wipe memory, the caller frees it.
 * Thread-safe (no shared state).
 */
#ifndef SEALGATE_MINTREQ_H
#define SEALGATE_MINTREQ_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "util.h"

/* GitHub: "iat: 60 seconds in the past to allow for clock drift"; exp at most 10 minutes
 * later: 9 minutes leaves room for the drift the other way. */
#define MINTREQ_GITHUB_IAT_SKEW_S	60
#define MINTREQ_GITHUB_JWT_LIFE_S	(9 * 60)
/* RFC 7523 assertions: Google accepts at most an hour. */
#define MINTREQ_ASSERTION_LIFE_S	3600
#define MINTREQ_NARROW_MAX		16	/* repositories, permissions per handle */

typedef struct mintreq_narrow {
	const char *scope, *audience;		/* NULL: the credential's */
	const char *const *repos;		/* GitHub "owner/name" (the name is sent) */
	size_t nrepos;
	const char *const *perms;		/* GitHub "permission:level" */
	size_t nperms;
} mintreq_narrow_t;

/* Repository "owner/name" parts: [A-Za-z0-9._-], at most this long each (GitHub's). */
#define MINTREQ_REPO_PART_MAX		100
#define MINTREQ_PERM_MAX		64

/*
 * May a handle of m carry this narrowing? scope: space-separated, every token in m's
 * scope (OAuth types and jwt_bearer; m must name a scope). repos ("owner/name") and perms
 * ("permission:level", level read, write or admin, permission [a-z_]): github_app only,
 * at most MINTREQ_NARROW_MAX each. 0, or -1 with why (static text).
 */
int mintreq_narrow_check(const policy_mint_t *m, const char *scope,
    const policy_strlist_t *repos, const policy_strlist_t *perms, const char **why)
    __attribute__((nonnull(1, 3, 4, 5))) SG_WUR;

/*
 * May a handle of m ask for the OAuth audience aud (NULL: the credential's)? It must be
 * m's audience or one of m's audiences (OAuth types and jwt_bearer; github_app names
 * none). 0, or -1 with *why a static message.
 */
int mintreq_audience_check(const policy_mint_t *m, const char *aud, const char **why)
    __attribute__((nonnull(1, 3))) SG_WUR;

enum mintreq_rc { MINTREQ_OK = 0, MINTREQ_E_ARG = -1, MINTREQ_E_SIGN = -2,
	MINTREQ_E_NOMEM = -3 };

/* The request for m (narrow may be NULL; refresh: the refresh token for that type).
 * *wire in wipe memory. */
int mintreq_build(const policy_mint_t *m, const mintreq_narrow_t *narrow,
    const char *refresh, int64_t now, char **wire, size_t *len)
    __attribute__((nonnull(1, 5, 6))) SG_WUR;

#endif
