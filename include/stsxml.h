/*
 * stsxml.h — STS's answer to AssumeRole, read by a minimal strict parser for its two
 * fixed shapes (no general XML library):
 *
 *   <AssumeRoleResponse xmlns="…"><AssumeRoleResult>…<Credentials>
 *     <AccessKeyId>ASIA…</AccessKeyId><SecretAccessKey>…</SecretAccessKey>
 *     <SessionToken>…</SessionToken><Expiration>2026-12-06T13:00:00Z</Expiration>
 *   </Credentials>…</AssumeRoleResult>…</AssumeRoleResponse>
 *
 *   <ErrorResponse xmlns="…"><Error><Type>Sender</Type><Code>AccessDenied</Code>
 *     <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>
 *
 * What is read: an optional XML declaration, then one element and nothing but
 * whitespace after it. Elements may carry attributes (name="value", no '<' or '&' in the
 * value) and hold either text or child elements (whitespace between them), never both.
 * Text may use the five predefined entities and character references (&#N; &#xH;) of XML
 * characters; any other entity, a DOCTYPE, a comment, CDATA, a processing instruction
 * other than the declaration, a control character, an unclosed or mismatched tag is
 * malformed. Unknown elements are skipped (AssumedRoleUser, PackedPolicySize,
 * ResponseMetadata, Type, Detail…); a wanted one twice is malformed.
 *
 * Bounds: the input at most STSXML_MAX_INPUT bytes, nesting STSXML_MAX_DEPTH, names
 * STSXML_MAX_NAME, any element's text STSXML_MAX_TEXT (decoded). The values are checked,
 * whitespace around them ignored:
 * AccessKeyId 16..128 of [A-Za-z0-9]; SecretAccessKey 1..STSXML_SECRET_MAX and
 * SessionToken 1..STSXML_MAX_TEXT of [A-Za-z0-9+/=_-]; Expiration
 * YYYY-MM-DDTHH:MM:SS[.fraction]Z; Code 1..STSXML_CODE_MAX of [A-Za-z0-9._-]. Message
 * is cut to STSXML_MESSAGE_MAX, every byte outside printable ASCII made '?'.
 *
 * Secrets: the credentials are copied into wipe memory (stsxml_free zeroes them), and so
 * is the text of every element while it is read. Reasons (why) are static strings, never
 * input. Pure core; thread-safe (no shared state).
 */
#ifndef SEALGATE_STSXML_H
#define SEALGATE_STSXML_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* An AssumeRole answer is ~2-4 KiB; 64 KiB bounds what is read off the wire at all. */
#define STSXML_MAX_INPUT	(64 * 1024)
/* AssumeRoleResponse/AssumeRoleResult/Credentials/X is depth 4. */
#define STSXML_MAX_DEPTH	8
#define STSXML_MAX_NAME		64
/* Session tokens are ~1-2 KiB with a session policy; AWS promises no size: 8 KiB. */
#define STSXML_MAX_TEXT		8192
#define STSXML_AKID_MIN		16
#define STSXML_AKID_MAX		128
#define STSXML_SECRET_MAX	128
#define STSXML_CODE_MAX		128
#define STSXML_MESSAGE_MAX	255

enum stsxml_rc {
	STSXML_CREDENTIALS = 0,	/* an AssumeRoleResponse: akid, secret, token, expiration */
	STSXML_ERROR = 1,	/* an ErrorResponse: code, message */
	STSXML_E_FORMAT = -1,	/* malformed or neither shape (why) */
	STSXML_E_TOO_BIG = -2,	/* over a bound (why) */
	STSXML_E_NOMEM = -3,
};

typedef struct stsxml {
	char *akid, *secret, *token;	/* wipe memory, NUL-terminated */
	size_t akid_len, secret_len, token_len;
	int64_t expiration;		/* unix seconds */
	char code[STSXML_CODE_MAX + 1];
	char message[STSXML_MESSAGE_MAX + 1];
	const char *why;		/* static reason of an E_ result */
} stsxml_t;

/* Parse xml[0..len) into out (zeroed first). An stsxml_rc; out holds credentials only
 * for STSXML_CREDENTIALS. Free with stsxml_free whatever the result. */
int stsxml_parse(const char *xml, size_t len, stsxml_t *out)
    __attribute__((nonnull(3))) SG_WUR;
/* Zero and free the credentials; x is empty afterwards. */
void stsxml_free(stsxml_t *x) SG_NONNULL;

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (s[0..len)) as unix seconds. 0, or -1 malformed. */
int stsxml_time(const char *s, size_t len, int64_t *out) SG_NONNULL SG_WUR;

#endif
