/*
 * minttok.h — a token endpoint's answer, read strictly (jansson, duplicate keys refused):
 *
 *   RFC 6749 §5.1  {"access_token": "…", "token_type": "Bearer", "expires_in": 3600,
 *                   "refresh_token": "…", "scope": "…"}
 *   RFC 6749 §5.2  {"error": "invalid_grant", "error_description": "…"}
 *   GitHub App     {"token": "ghs_…", "expires_at": "2026-12-06T15:00:00Z", …}
 *                  (POST /app/installations/{id}/access_tokens), and its errors
 *                  {"message": "…", "documentation_url": "…"} (error "github_error").
 *
 * The top level is one object; unknown members are ignored (id_token, permissions, …).
 * Values checked: access_token / token and refresh_token 1..MINTTOK_TOKEN_MAX bytes of
 * visible ASCII (0x21..0x7e: they go into header fields); no length is assumed beyond
 * that. token_type 1..MINTTOK_TYPE_MAX of [A-Za-z0-9._-]. expires_in a positive integer
 * (or a string of digits, as some providers send) up to MINTTOK_EXPIRES_MAX; expires_at
 * YYYY-MM-DDTHH:MM:SS[.frac]Z later than now; neither: MINTTOK_EXPIRES_DEFAULT_S. Both
 * access_token and token, or an error beside a token, is malformed. error 1..
 * MINTTOK_CODE_MAX of [A-Za-z0-9._-]; error_description / message cut to
 * MINTTOK_DESC_MAX, bytes outside printable ASCII made '?' (never a secret: the caller
 * logs it only after masking what it sent).
 *
 * Secrets: access and refresh tokens are copied into wipe memory (minttok_free zeroes
 * them). jansson's own transient copies are freed without zeroing (a known limit: the
 * daemon does not install wipe allocators for jansson). why is a static string.
 * Pure core; thread-safe.
 */
#ifndef SEALGATE_MINTTOK_H
#define SEALGATE_MINTTOK_H

#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "util.h"

/* Longest answer read at all (as the shell's SG_MINT_MAX_RESPONSE). */
#define MINTTOK_MAX_INPUT		SG_MINT_MAX_RESPONSE
/* JWT access tokens with many claims run to a few KiB; 16 KiB bounds header growth. */
#define MINTTOK_TOKEN_MAX		16384
#define MINTTOK_TYPE_MAX		31
#define MINTTOK_CODE_MAX		64
#define MINTTOK_DESC_MAX		255
#define MINTTOK_SCOPE_MAX		1024
/* A year: no provider mints access tokens for longer. */
#define MINTTOK_EXPIRES_MAX		(366 * 24 * 3600)
/* expires_in is only RECOMMENDED (RFC 6749): without it a token is kept 5 minutes, then
 * minted again, rather than used past a lifetime nobody told us. */
#define MINTTOK_EXPIRES_DEFAULT_S	300

enum minttok_rc {
	MINTTOK_TOKEN = 0,	/* access_token, expires_in (refresh_token, scope, type) */
	MINTTOK_ERROR = 1,	/* error (error_description) */
	MINTTOK_E_FORMAT = -1,	/* malformed (why) */
	MINTTOK_E_NOMEM = -3,
};

typedef struct minttok {
	char *access_token;		/* wipe memory, NUL-terminated */
	size_t access_token_len;
	char *refresh_token;		/* wipe memory, or NULL */
	size_t refresh_token_len;
	int64_t expires_in;		/* seconds from now */
	char token_type[MINTTOK_TYPE_MAX + 1];
	char scope[MINTTOK_SCOPE_MAX + 1];
	char error[MINTTOK_CODE_MAX + 1];
	char error_description[MINTTOK_DESC_MAX + 1];
	const char *why;		/* E_FORMAT: a static reason */
} minttok_t;

/* Read json[0..len) received at now (unix s). Fills out (minttok_free it whatever the
 * result). */
int minttok_parse(const char *json, size_t len, int64_t now, minttok_t *out)
    __attribute__((nonnull(4))) SG_WUR;
void minttok_free(minttok_t *t) SG_NONNULL;

#endif
