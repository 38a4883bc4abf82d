/* handle.c — mint, open and find sgh1 handles (sealed JSON claims). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "defaults.h"
#include "handle.h"
#include "secmem.h"

/* Where the base64url body starts: "sgh1." + 8 hex + ".". */
#define HANDLE_BODY_OFF (HANDLE_PREFIX_LEN + SEAL_KEY_ID_LEN + 1)

static const struct {
	int err;
	const char *code, *msg;
} handle_errs[] = {
	{HANDLE_OK, "ok", "handle is valid"},
	{HANDLE_E_FORMAT, "handle_malformed", "the handle is not well-formed"},
	{HANDLE_E_UNKNOWN_KEY, "unknown_key", "the handle was sealed under an unknown key"},
	{HANDLE_E_RETIRED_KEY, "key_retired", "the handle was sealed under a retired key"},
	{HANDLE_E_DECRYPT, "handle_invalid", "the handle does not unseal (tampered or wrong key)"},
	{HANDLE_E_PAYLOAD, "handle_invalid", "the handle payload is invalid"},
	{HANDLE_E_EXPIRED, "handle_expired", "the handle has expired"},
	{HANDLE_E_NOT_YET_VALID, "handle_not_yet_valid", "the handle is not valid yet"},
	{HANDLE_E_NOMEM, "internal_error", "out of memory"},
};

const char *
handle_error_code(int err)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(handle_errs); i++)
		if (handle_errs[i].err == err)
			return handle_errs[i].code;
	return "internal_error";
}

const char *
handle_error_message(int err)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(handle_errs); i++)
		if (handle_errs[i].err == err)
			return handle_errs[i].msg;
	return "unknown error";
}

static int
handle_is_charset(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-' || c == '.';
}

static int
handle_is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* --- mint --------------------------------------------------------------------------- */

static json_t *
handle_list_json(const policy_strlist_t *l)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < l->n; i++) {
		if (json_array_append_new(a, json_string(l->v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int
handle_set_list(json_t *o, const char *name, const policy_strlist_t *l)
{
	if (l->n == 0)
		return 0;
	return json_object_set_new(o, name, handle_list_json(l));
}

static char *
handle_claims_dump(const handle_claims_t *c)
{
	json_t *o;
	char *s = NULL;

	bool narrow = c->scope != NULL || c->audience != NULL || c->repos.n > 0 ||
	    c->perms.n > 0 || c->git_refs.n > 0;

	o = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I}", "v", narrow ? HANDLE_VERSION_NARROW :
	    HANDLE_VERSION, "cred", c->cred,
	    "sb", c->sb, "hid", c->hid, "iat", (json_int_t)c->iat, "exp", (json_int_t)c->exp);
	if (o == NULL)
		return NULL;
	if (c->life_sandbox &&
	    json_object_set_new(o, "life", json_string(HANDLE_LIFE_SANDBOX)) < 0) {
		json_decref(o);
		return NULL;
	}
	if ((c->scope != NULL && json_object_set_new(o, "scope", json_string(c->scope)) < 0) ||
	    (c->audience != NULL &&
	    json_object_set_new(o, "aud", json_string(c->audience)) < 0)) {
		json_decref(o);
		return NULL;
	}
	if (handle_set_list(o, "hosts", &c->hosts) == 0 &&
	    handle_set_list(o, "methods", &c->methods) == 0 &&
	    handle_set_list(o, "paths", &c->paths) == 0 &&
	    handle_set_list(o, "git_refs", &c->git_refs) == 0 &&
	    handle_set_list(o, "repos", &c->repos) == 0 &&
	    handle_set_list(o, "perms", &c->perms) == 0)
		s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static char *
handle_encode(const seal_key_t *key, const uint8_t *ct, size_t ctlen)
{
	size_t b64len = sodium_base64_encoded_len(ctlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = malloc(HANDLE_BODY_OFF + b64len);

	if (out == NULL)
		return NULL;
	memcpy(out, HANDLE_PREFIX, HANDLE_PREFIX_LEN);
	memcpy(out + HANDLE_PREFIX_LEN, key->id, SEAL_KEY_ID_LEN);
	out[HANDLE_BODY_OFF - 1] = '.';
	sodium_bin2base64(out + HANDLE_BODY_OFF, b64len, ct, ctlen,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

int
handle_mint(const seal_key_t *key, handle_claims_t *claims, char **out)
{
	uint8_t hid[HANDLE_HID_LEN / 2], *ct;
	size_t ctlen;
	char *json, *text;

	if (claims->cred == NULL || claims->sb == NULL || claims->cred[0] == '\0' ||
	    claims->sb[0] == '\0' || claims->iat < 0 || claims->exp < claims->iat)
		return HANDLE_E_PAYLOAD;
	if (claims->hid[0] == '\0') {
		randombytes_buf(hid, sizeof(hid));
		util_hex_encode(hid, sizeof(hid), claims->hid);
	} else if (strnlen(claims->hid, sizeof(claims->hid)) != HANDLE_HID_LEN ||
	    !handle_is_lower_hex(claims->hid, HANDLE_HID_LEN))
		return HANDLE_E_PAYLOAD;
	memcpy(claims->key_id, key->id, sizeof(claims->key_id));
	if ((json = handle_claims_dump(claims)) == NULL)
		return HANDLE_E_NOMEM;
	ct = seal_box_bytes(key->pk, json, strlen(json), &ctlen);
	free(json);
	if (ct == NULL)
		return HANDLE_E_NOMEM;
	text = handle_encode(key, ct, ctlen);
	free(ct);
	if (text == NULL)
		return HANDLE_E_NOMEM;
	if (strlen(text) > SG_HANDLE_MAX_LEN) {
		free(text);
		return HANDLE_E_PAYLOAD;
	}
	*out = text;
	return HANDLE_OK;
}

/* --- open --------------------------------------------------------------------------- */

/* Check the text shape and decode the sealed body (malloc'd). */
static int
handle_decode(const char *text, size_t len, uint8_t **ct, size_t *ctlen)
{
	const char *body = text + HANDLE_BODY_OFF, *end;
	size_t blen, max;
	uint8_t *bin;

	if (len > SG_HANDLE_MAX_LEN || len <= HANDLE_BODY_OFF ||
	    memcmp(text, HANDLE_PREFIX, HANDLE_PREFIX_LEN) != 0 ||
	    !handle_is_lower_hex(text + HANDLE_PREFIX_LEN, SEAL_KEY_ID_LEN) ||
	    text[HANDLE_BODY_OFF - 1] != '.')
		return HANDLE_E_FORMAT;
	blen = len - HANDLE_BODY_OFF;
	max = blen * 3 / 4 + 1;
	if ((bin = malloc(max)) == NULL)
		return HANDLE_E_NOMEM;
	if (sodium_base642bin(bin, max, body, blen, NULL, ctlen, &end,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || end != body + blen ||
	    *ctlen <= SEAL_OVERHEAD) {
		free(bin);
		return HANDLE_E_FORMAT;
	}
	*ct = bin;
	return HANDLE_OK;
}

static char *
handle_json_strdup(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return strdup(json_string_value(v));
}

static int
handle_json_int(json_t *o, const char *name, int64_t *out)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

/* Optional array of non-empty strings into l. */
static int
handle_json_list(json_t *o, const char *name, policy_strlist_t *l)
{
	json_t *a = json_object_get(o, name), *v;
	size_t i;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return -1;
	if ((l->v = calloc(json_array_size(a), sizeof(char *))) == NULL)
		return -1;
	for (i = 0; i < json_array_size(a); i++) {
		v = json_array_get(a, i);
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return -1;
		if ((l->v[l->n] = strdup(json_string_value(v))) == NULL)
			return -1;
		l->n++;
	}
	return 0;
}

/* Optional "life": absent (wall-clock), or "sandbox". Any other value is refused: a
 * lifetime this version does not know must not pass for a wall-clock handle. */
static int
handle_json_life(json_t *o, bool *sandbox)
{
	json_t *v = json_object_get(o, "life");

	*sandbox = false;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || strcmp(json_string_value(v), HANDLE_LIFE_SANDBOX) != 0)
		return -1;
	*sandbox = true;
	return 0;
}

/* The narrowing claims a v1 sealgate would ignore (mint narrowing, git push refs): present
 * exactly when the version says so. */
static int
handle_claims_parse_narrow(json_t *o, bool narrow, handle_claims_t *c)
{
	json_t *s = json_object_get(o, "scope");

	if (!narrow)
		return s == NULL && json_object_get(o, "aud") == NULL &&
		    json_object_get(o, "repos") == NULL &&
		    json_object_get(o, "perms") == NULL &&
		    json_object_get(o, "git_refs") == NULL ? 0 : -1;
	if (s != NULL && (c->scope = handle_json_strdup(o, "scope")) == NULL)
		return -1;
	if (json_object_get(o, "aud") != NULL &&
	    (c->audience = handle_json_strdup(o, "aud")) == NULL)
		return -1;
	if (handle_json_list(o, "repos", &c->repos) < 0 ||
	    handle_json_list(o, "perms", &c->perms) < 0 ||
	    handle_json_list(o, "git_refs", &c->git_refs) < 0)
		return -1;
	return c->scope != NULL || c->audience != NULL || c->repos.n > 0 || c->perms.n > 0 ||
	    c->git_refs.n > 0 ?
	    0 : -1;
}

static int
handle_claims_parse(json_t *o, handle_claims_t *c)
{
	json_t *v = json_object_get(o, "v"), *hid = json_object_get(o, "hid");

	if (!json_is_integer(v) || (json_integer_value(v) != HANDLE_VERSION &&
	    json_integer_value(v) != HANDLE_VERSION_NARROW))
		return -1;
	if (!json_is_string(hid) || json_string_length(hid) != HANDLE_HID_LEN ||
	    !handle_is_lower_hex(json_string_value(hid), HANDLE_HID_LEN))
		return -1;
	memcpy(c->hid, json_string_value(hid), HANDLE_HID_LEN + 1);
	if ((c->cred = handle_json_strdup(o, "cred")) == NULL ||
	    (c->sb = handle_json_strdup(o, "sb")) == NULL)
		return -1;
	if (handle_json_int(o, "iat", &c->iat) < 0 || handle_json_int(o, "exp", &c->exp) < 0 ||
	    c->exp < c->iat)
		return -1;
	if (handle_json_life(o, &c->life_sandbox) < 0)
		return -1;
	if (handle_json_list(o, "hosts", &c->hosts) < 0 ||
	    handle_json_list(o, "methods", &c->methods) < 0 ||
	    handle_json_list(o, "paths", &c->paths) < 0)
		return -1;
	return handle_claims_parse_narrow(o, json_integer_value(v) == HANDLE_VERSION_NARROW, c);
}

static int
handle_payload(const char *plain, size_t plainlen, handle_claims_t *claims)
{
	json_error_t jerr;
	json_t *o;
	int rc = HANDLE_E_PAYLOAD;

	o = json_loadb(plain, plainlen, JSON_REJECT_DUPLICATES, &jerr);
	if (json_is_object(o) && handle_claims_parse(o, claims) == 0)
		rc = HANDLE_OK;
	json_decref(o);
	return rc;
}

int
handle_open(const seal_keyring_t *kr, const char *text, size_t len, handle_claims_t *claims)
{
	const seal_key_t *key;
	uint8_t *ct = NULL;
	size_t ctlen, plainlen;
	char *plain = NULL;
	int rc;

	memset(claims, 0, sizeof(*claims));
	if ((rc = handle_decode(text, len, &ct, &ctlen)) != HANDLE_OK)
		return rc;
	if (seal_keyring_is_retired(kr, text + HANDLE_PREFIX_LEN, SEAL_KEY_ID_LEN))
		rc = HANDLE_E_RETIRED_KEY;
	else if ((key = seal_keyring_find(kr, text + HANDLE_PREFIX_LEN, SEAL_KEY_ID_LEN)) == NULL)
		rc = HANDLE_E_UNKNOWN_KEY;
	else if ((rc = seal_open_bytes(key, ct, ctlen, &plain, &plainlen)) != SEAL_OK)
		rc = rc == SEAL_E_NOMEM ? HANDLE_E_NOMEM : HANDLE_E_DECRYPT;
	else
		rc = handle_payload(plain, plainlen, claims);
	free(ct);
	secmem_guarded_free(plain);
	if (rc != HANDLE_OK) {
		handle_claims_free(claims);
		return rc;
	}
	memcpy(claims->key_id, text + HANDLE_PREFIX_LEN, SEAL_KEY_ID_LEN);
	claims->key_id[SEAL_KEY_ID_LEN] = '\0';
	return HANDLE_OK;
}

int
handle_check_time(const handle_claims_t *claims, int64_t now, int64_t skew)
{
	if (claims->iat > now && claims->iat - now > skew)
		return HANDLE_E_NOT_YET_VALID;
	if (now >= claims->exp && now - claims->exp >= skew)
		return HANDLE_E_EXPIRED;
	return HANDLE_OK;
}

static void
handle_list_free(policy_strlist_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
handle_claims_free(handle_claims_t *claims)
{
	if (claims == NULL)
		return;
	free(claims->cred);
	free(claims->sb);
	handle_list_free(&claims->hosts);
	handle_list_free(&claims->methods);
	handle_list_free(&claims->paths);
	handle_list_free(&claims->git_refs);
	free(claims->scope);
	free(claims->audience);
	handle_list_free(&claims->repos);
	handle_list_free(&claims->perms);
	memset(claims, 0, sizeof(*claims));
}

/* --- find --------------------------------------------------------------------------- */

int
handle_find(const void *buf, size_t len, size_t *off, size_t *hlen)
{
	const unsigned char *b = buf, *p;
	size_t i = *off, j;

	while (i < len && (p = memmem(b + i, len - i, HANDLE_PREFIX, HANDLE_PREFIX_LEN)) != NULL) {
		/* whatever precedes it: a handle glued to other text must not slip by */
		i = (size_t)(p - b);
		for (j = i + HANDLE_PREFIX_LEN; j < len && handle_is_charset(b[j]); j++)
			;
		*off = i;
		*hlen = j - i;
		return 0;
	}
	return -1;
}

/* --- streaming find ----------------------------------------------------------------- */

enum {
	HS_TEXT,		/* buf: a partial prefix (0..4 bytes) */
	HS_HANDLE,		/* buf: a handle so far ("sgh1." and more) */
	HS_OVERLONG,		/* past SG_HANDLE_MAX_LEN + 1 bytes: the rest of one */
};

#define HS_CAP (SG_HANDLE_MAX_LEN + 1)

void
handle_stream_init(handle_stream_t *s)
{
	memset(s, 0, sizeof(*s));
	s->state = HS_TEXT;
}

void
handle_stream_reset(handle_stream_t *s)
{
	sodium_memzero(s, sizeof(*s));
	s->state = HS_TEXT;
}

/* Forget the held bytes (zeroed); the state stays. */
static void
hs_drop(handle_stream_t *s)
{
	sodium_memzero(s->buf, s->n);
	s->n = 0;
}

/* The longest k (0..4) such that p[len-k..len) starts the prefix "sgh1.". */
static size_t
hs_prefix_tail(const char *p, size_t len)
{
	for (size_t k = HANDLE_PREFIX_LEN - 1; k > 0; k--)
		if (k <= len && memcmp(p + len - k, HANDLE_PREFIX, k) == 0)
			return k;
	return 0;
}

/* Text state with a partial prefix held: extend it, or give it up as text. */
static int
hs_feed_partial(handle_stream_t *s, const char *p, size_t len, size_t *i,
    handle_stream_text_fn text, void *arg)
{
	int rc;

	while (s->n < HANDLE_PREFIX_LEN && *i < len && p[*i] == HANDLE_PREFIX[s->n])
		s->buf[s->n++] = p[(*i)++];
	if (s->n == HANDLE_PREFIX_LEN) {
		s->state = HS_HANDLE;
		return 0;
	}
	if (*i == len)
		return 0;
	/* p[*i] breaks the prefix: what is held is text, p[*i] is looked at afresh */
	rc = text(arg, s->buf, s->n);
	hs_drop(s);
	return rc;
}

/* Text state, nothing held: deliver text up to the next prefix or a partial one. */
static int
hs_feed_text(handle_stream_t *s, const char *p, size_t len, size_t *i,
    handle_stream_text_fn text, void *arg)
{
	const char *rest = p + *i, *q;
	size_t rlen = len - *i, k;
	int rc = 0;

	if ((q = memmem(rest, rlen, HANDLE_PREFIX, HANDLE_PREFIX_LEN)) != NULL) {
		if (q > rest)
			rc = text(arg, rest, (size_t)(q - rest));
		memcpy(s->buf, HANDLE_PREFIX, HANDLE_PREFIX_LEN);
		s->n = HANDLE_PREFIX_LEN;
		s->state = HS_HANDLE;
		*i += (size_t)(q - rest) + HANDLE_PREFIX_LEN;
		return rc;
	}
	k = hs_prefix_tail(rest, rlen);
	if (rlen > k)
		rc = text(arg, rest, rlen - k);
	memcpy(s->buf, rest + rlen - k, k);
	s->n = k;
	*i = len;
	return rc;
}

/* Handle state: collect charset bytes; deliver at the terminator or when full. */
static int
hs_feed_handle(handle_stream_t *s, const char *p, size_t len, size_t *i,
    handle_stream_handle_fn handle, void *arg)
{
	size_t j = *i;
	int rc = 0;

	while (j < len && s->n + (j - *i) < HS_CAP && handle_is_charset((unsigned char)p[j]))
		j++;
	memcpy(s->buf + s->n, p + *i, j - *i);
	s->n += j - *i;
	*i = j;
	if (s->n == HS_CAP) {
		rc = handle(arg, s->buf, s->n);
		hs_drop(s);
		s->state = HS_OVERLONG;
	} else if (j < len) {		/* p[j] ends the occurrence; it is text */
		if (s->n > 0)
			rc = handle(arg, s->buf, s->n);
		hs_drop(s);
		s->state = HS_TEXT;
	}
	return rc;
}

int
handle_stream_feed(handle_stream_t *s, const void *buf, size_t len,
    handle_stream_text_fn text, handle_stream_handle_fn handle, void *arg)
{
	const char *p = buf;
	size_t i = 0;
	int rc = 0;

	while (rc == 0 && i < len) {
		if (s->state != HS_TEXT)
			rc = hs_feed_handle(s, p, len, &i, handle, arg);
		else if (s->n > 0)
			rc = hs_feed_partial(s, p, len, &i, text, arg);
		else
			rc = hs_feed_text(s, p, len, &i, text, arg);
	}
	return rc;
}

int
handle_stream_finish(handle_stream_t *s, handle_stream_text_fn text,
    handle_stream_handle_fn handle, void *arg)
{
	int rc = 0;

	if (s->n > 0)
		rc = s->state == HS_TEXT ? text(arg, s->buf, s->n) : handle(arg, s->buf, s->n);
	handle_stream_reset(s);
	return rc;
}
