/*
 * inject.h — finding handles in a request head and swapping in real secrets.
 * Pure core: works on a parsed http_head_t and produces an edit list the shell applies
 * while it writes the head upstream. No sockets, no clocks.
 *
 * Where a handle may stand: any header value (also inside decoded Basic credentials) and
 * the request-target's query. What the upstream gets is decided by the credential's
 * inject rule; any other occurrence of the handle is removed, so handles never reach an
 * upstream.
 *
 * Ownership: inject_edits_t holds secret-bearing strings in wipe memory
 * (secmem_wipe_alloc: zeroed when freed);
 * inject_edits_free zeroes and frees them.
 */
#ifndef SEALGATE_INJECT_H
#define SEALGATE_INJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "policy.h"

/* Handles considered in one request (several credentials in one request are rare). */
#define INJECT_MAX_HANDLES 4

enum inject_where { INJECT_IN_FIELD, INJECT_IN_BASIC, INJECT_IN_TARGET };

typedef struct inject_found {
	enum inject_where where;
	size_t field;			/* index into head->fields (FIELD, BASIC) */
	size_t off, len;		/* of the handle text in the value / decoded / target */
	char *basic;			/* BASIC: the decoded "user:pass" (wipe memory), else NULL */
	size_t basic_len;
} inject_found_t;

typedef struct inject_list {
	inject_found_t f[INJECT_MAX_HANDLES * 4];
	size_t n;
	bool truncated;			/* more occurrences than fit: refuse the request */
} inject_list_t;

/*
 * Find every handle occurrence in the head's field values, Basic credentials and the
 * target's query. Returns the number found (also in list->n).
 */
size_t inject_find(const http_head_t *h, const char *target, inject_list_t *list);
void inject_list_free(inject_list_t *list);
/* The handle text of occurrence i (not NUL-terminated; length in *len). */
const char *inject_found_text(const http_head_t *h, const char *target,
    const inject_found_t *f, size_t *len);

enum inject_edit_kind { EDIT_KEEP = 0, EDIT_DROP, EDIT_REPLACE };

typedef struct inject_edits {
	enum inject_edit_kind kind[SG_MAX_HEADERS];
	char *value[SG_MAX_HEADERS];	/* REPLACE: new value (wipe memory) */
	struct { char *name, *value; } add[INJECT_MAX_HANDLES];	/* value in wipe memory */
	size_t nadd;
	char *target;			/* new target (wipe memory) or NULL: unchanged */
	bool secret_in_head;		/* some edit carries a secret */
} inject_edits_t;

void inject_edits_init(inject_edits_t *e);
void inject_edits_free(inject_edits_t *e);

/*
 * Swap one handle (text/tlen) for cred's secret as cred->inject says, editing e.
 * Occurrences of that handle outside the place the rule names are dropped (header) or
 * cut from the query (target). For hmac and body every occurrence in the head is
 * removed: the shell signs or rewrites the body. Returns 0, or -1 with *why set.
 */
int inject_apply(const http_head_t *h, const char *target, const inject_list_t *list,
    const char *handle, size_t tlen, const policy_credential_t *cred, inject_edits_t *e,
    const char **why);

/*
 * hmac: "format" of the lower-case hex HMAC-SHA256 of body under the credential's
 * secret, in wipe memory (the header name is cred->inject.name). NULL on error.
 */
char *inject_hmac_value(const policy_credential_t *cred, const void *body, size_t len);

/* "Basic b64" decoded (wipe memory, NUL-terminated); NULL when not Basic or not base64. */
char *inject_basic_decode(const char *value, size_t *outlen);

/* base64(user ":" secret) and the percent-encoding of s, in wipe memory. */
char *inject_basic_b64(const char *user, const char *secret, size_t slen);
char *inject_urlencode(const char *s, size_t len);

/* Set header name to value (taken over, wipe memory), replacing any the head has. */
int inject_edits_set_header(const http_head_t *h, inject_edits_t *e, const char *name,
    char *value);

/* Current value of field i after edits (NULL when dropped). */
const char *inject_field_value(const http_head_t *h, const inject_edits_t *e, size_t i);

#endif
