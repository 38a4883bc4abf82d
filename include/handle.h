/*
 * handle.h — handles: short-lived sealed placeholders a sandbox holds instead of a secret.
 * Pure core: no sockets, no clocks (the time is passed in).
 *
 *   sgh1.<key id>.<base64url, no padding, of crypto_box_seal(payload JSON)>
 *   payload: {"v":1,"cred":NAME,"sb":SANDBOX,"hid":32 hex,"iat":unix,"exp":unix
 *             [,"life":"sandbox"][,"hosts":[..]][,"methods":[..]][,"paths":[..]]}
 *   v2 payload: the same, with "v":2 and at least one of "git_refs", "scope", "aud",
 *   "repos", "perms"
 * The optional lists narrow the credential's policy scope; they never widen it.
 * Claims an older sealgate would not know make the payload "v":2 (so it refuses the handle
 * rather than ignore them): "git_refs" narrows the credential's git.push refs (gitpush.h
 * patterns); a minted credential's handle may narrow the token it gets with
 * "scope":"a b" (OAuth scope tokens), "aud":"..." (the OAuth audience asked for),
 * "repos":["owner/name"], "perms":["contents:read"]
 * (GitHub App installation tokens); see mintreq.h.
 * "life":"sandbox" marks a sandbox-lifetime handle: exp is then its max_ttl backstop and
 * authz keeps it valid while its sandbox is (authz.h); absent, exp is a wall-clock ttl.
 * See docs/handles.md.
 *
 * Ownership: handle_mint returns a malloc'd string (free). handle_open fills a
 * handle_claims_t that the caller frees with handle_claims_free. Claims passed to
 * handle_mint stay owned by the caller.
 */
#ifndef SEALGATE_HANDLE_H
#define SEALGATE_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "policy.h"
#include "seal.h"
#include "util.h"

#define HANDLE_PREFIX      "sgh1."
#define HANDLE_PREFIX_LEN  5
#define HANDLE_VERSION     1
#define HANDLE_VERSION_NARROW 2	/* a payload with mint narrowing claims */
#define HANDLE_HID_LEN     32	/* hex chars of a 128-bit handle id */
#define HANDLE_LIFE_SANDBOX "sandbox"	/* the one value of the optional "life" claim */

enum handle_err {
	HANDLE_OK = 0,
	HANDLE_E_FORMAT = -1,		/* prefix, charset, length, base64url */
	HANDLE_E_UNKNOWN_KEY = -2,	/* key id not in the keyring */
	HANDLE_E_RETIRED_KEY = -3,	/* key id retired */
	HANDLE_E_DECRYPT = -4,		/* tampered, or sealed to another key */
	HANDLE_E_PAYLOAD = -5,		/* bad JSON, missing/ill-typed field, v != 1, too big */
	HANDLE_E_EXPIRED = -6,		/* handle_check_time: exp passed */
	HANDLE_E_NOT_YET_VALID = -7,	/* handle_check_time: iat in the future */
	HANDLE_E_NOMEM = -8,
};

typedef struct handle_claims {
	char *cred;			/* credential name */
	char *sb;			/* sandbox name */
	char hid[HANDLE_HID_LEN + 1];	/* lower-case hex; mint fills it when empty */
	int64_t iat, exp;		/* unix seconds */
	bool life_sandbox;		/* "life":"sandbox": bound to its sandbox's lifetime */
	policy_strlist_t hosts, methods, paths;	/* narrower scope; n == 0: policy's */
	policy_strlist_t git_refs;	/* narrower git push refs; n == 0: the credential's */
	char *scope;			/* minted token's OAuth scope; NULL: the credential's */
	char *audience;			/* ... its OAuth audience ("aud"); NULL: the credential's */
	policy_strlist_t repos, perms;	/* GitHub "owner/name", "permission:level" */
	char key_id[SEAL_KEY_ID_LEN + 1];	/* set by handle_open and handle_mint */
} handle_claims_t;

/*
 * Seal claims to key: *out = malloc'd NUL-terminated handle text. Fills claims->hid with
 * a random id when it is empty, and claims->key_id. HANDLE_OK or a negative handle_err.
 */
int handle_mint(const seal_key_t *key, handle_claims_t *claims, char **out) SG_WUR;

/*
 * Parse and unseal a handle of len bytes. On HANDLE_OK *claims is filled (free with
 * handle_claims_free); otherwise *claims is zeroed. Time is not checked here.
 */
int handle_open(const seal_keyring_t *kr, const char *text, size_t len,
    handle_claims_t *claims) SG_WUR;

/* HANDLE_OK, HANDLE_E_EXPIRED (now >= exp + skew) or HANDLE_E_NOT_YET_VALID (iat > now + skew). */
int handle_check_time(const handle_claims_t *claims, int64_t now, int64_t skew);

/* Free the strings and lists inside claims and zero it (claims itself is not freed). */
void handle_claims_free(handle_claims_t *claims);

/* Short snake_case code ("handle_malformed", "unknown_key", ...) and a one-line message. */
const char *handle_error_code(int err);
const char *handle_error_message(int err);

/*
 * Find the next handle in buf[*off..len): "sgh1." wherever it stands (also glued to
 * other text, "prefix-sgh1…", so no handle slips through unrecognised), running to the
 * first byte outside [A-Za-z0-9_.-]. Returns 0 with *off
 * and *hlen set to the match, or -1 when there is none. The match may still be malformed
 * (handle_open says so). To continue, set *off += *hlen.
 */
int handle_find(const void *buf, size_t len, size_t *off, size_t *hlen) SG_NONNULL;

/*
 * Streaming handle_find: split a byte stream that arrives in pieces (the text frames of
 * one WebSocket message) into text and handle occurrences, with handle_find's meaning
 * of an occurrence. For any input and any split into feeds, the text and handle pieces,
 * in the order delivered, concatenate to the input, and the handle pieces are the
 * occurrences handle_find finds in the whole input, in order — except one longer than
 * SG_HANDLE_MAX_LEN + 1 bytes (see below).
 *
 * Held back between feeds, and nothing else: a trailing partial prefix ("s", "sg",
 * "sgh", "sgh1") or a handle that has not met its terminating byte yet. Text is
 * delivered as soon as it is known to be text, in pieces of 1 byte or more (their
 * boundaries depend on the feeds).
 *
 * Over-long handles: the stream holds at most SG_HANDLE_MAX_LEN + 1 bytes, one more
 * than the longest valid handle. An occurrence that reaches that size is delivered at
 * once, before its end is seen, as a handle piece of SG_HANDLE_MAX_LEN + 1 bytes:
 * handle_open rejects it (HANDLE_E_FORMAT) and the caller refuses the message, so its
 * callback should return nonzero. Should it return 0, the rest of the occurrence
 * follows as further handle pieces of at most that size (never as text, so no part of
 * it passes unseen); the cut points do not depend on the feeds.
 *
 * A callback that returns nonzero stops the feed at once; the rest of that feed is not
 * looked at and the stream must be reset before reuse. Held bytes are handle text, not
 * secrets, but are zeroed when no longer held, on reset and on finish.
 * Pure, no allocation; one stream per direction of a connection, not thread-safe.
 */
typedef int (*handle_stream_text_fn)(void *arg, const char *p, size_t len);
typedef int (*handle_stream_handle_fn)(void *arg, const char *h, size_t len);

typedef struct handle_stream {
	size_t n;				/* bytes held in buf */
	unsigned char state;			/* internal: text, handle, over-long handle */
	char buf[SG_HANDLE_MAX_LEN + 1];	/* a partial prefix or a handle so far */
} handle_stream_t;

/* An empty stream (also what reset and finish leave). */
void handle_stream_init(handle_stream_t *s) SG_NONNULL;

/* Feed the next len bytes. 0, or the first nonzero callback return. */
int handle_stream_feed(handle_stream_t *s, const void *p, size_t len,
    handle_stream_text_fn text, handle_stream_handle_fn handle, void *arg)
    __attribute__((nonnull(1, 4, 5)));

/*
 * End of the stream (a message): a held partial prefix is delivered as text, a held
 * handle as a handle. The stream is then reset. 0, or the callback's nonzero return.
 */
int handle_stream_finish(handle_stream_t *s, handle_stream_text_fn text,
    handle_stream_handle_fn handle, void *arg) __attribute__((nonnull(1, 2, 3)));

/* Drop what is held and zero it. */
void handle_stream_reset(handle_stream_t *s) SG_NONNULL;

#endif
