/*
 * policy.c — parse and validate JSON policy files (jansson) into an immutable,
 * refcounted snapshot; publish it for the workers.
 *
 * Every problem is collected (not just the first) as "file:line:col: msg" for JSON
 * syntax, or "file: json.path: msg" for everything else. Secret values never reach a
 * message: only names of variables, files and fields do.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "awsrole.h"
#include "defaults.h"
#include "gitpush.h"
#include "hash.h"
#include "netaddr.h"
#include "policy.h"
#include "clustermsg.h"
#include "secmem.h"
#include "secval.h"
#include "snapshot.h"

#define POLICY_PATH_MAX		512	/* a JSON path in a message */
#define POLICY_QUOTE_MAX	80	/* longest value quoted in a message */
#define POLICY_NAME_MAX		64	/* credential and sandbox names */
#define POLICY_HOST_MAX		253	/* DNS name length */
#define POLICY_SUGGEST_DIST	2	/* did-you-mean: edit distance at most this */
#define POLICY_URL_MAX		96	/* metadata.url: quoted in every sandbox_mismatch answer */
#define POLICY_OVERLAP_PAIRS_MAX 65536	/* more overlapping sandbox pairs: compare all pairs */

/* Singleton sections: one file of a directory may define each. */
enum policy_section_id {
	SEC_LISTEN, SEC_KEYS, SEC_UPSTREAM, SEC_ADMIN, SEC_AUDIT, SEC_REVOCATIONS,
	SEC_EGRESS, SEC_LIMITS, SEC_STATE, SEC_METADATA, SEC_CLUSTER, SEC_NSINGLETONS
};

struct policy_ctx {
	policy_t *p;
	policy_errors_t *errs;
	size_t dropped;			/* errors beyond SG_POLICY_MAX_ERRORS */
	const char *file;		/* file being parsed: messages, relative paths */
	char *first_file;		/* defaults resolve against this one */
	char *section_file[SEC_NSINGLETONS];
	char **cred_file;		/* parallel to p->credentials */
	char **sb_file;			/* parallel to p->sandboxes */
	char **tpl_file;		/* parallel to p->templates */
	char **resolve_file;		/* parallel to p->upstream.resolve */
	size_t cred_cap, sb_cap, tpl_cap, resolve_cap;	/* allocated entries of each */
	policy_index_t resolve_index;	/* upstream.resolve hosts */
	bool listen_seen;
	char *cluster_file;		/* the file with "cluster" (messages) */
};

typedef int (*policy_check_fn)(const char *s);

static void policy_cell_ref(void *p);
static void policy_cell_unref(void *p);
static void policy_cell_published(void *p, uint64_t gen);

/* The published snapshot; objects published here carry their generation. */
static const snapshot_ops_t policy_cell_ops = {policy_cell_ref, policy_cell_unref,
    policy_cell_published};
static snapshot_cell_t policy_cell = SNAPSHOT_CELL_INIT(&policy_cell_ops);

/* --- messages ------------------------------------------------------------------------ */

static int
policy_errors_append(policy_errors_t *errs, char *msg)
{
	char **v;

	if (msg == NULL)
		return -1;
	v = realloc(errs->msg, (errs->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(msg);
		return -1;
	}
	v[errs->n++] = msg;
	errs->msg = v;
	return 0;
}

/* Keep msg (malloc'd, taken over) unless SG_POLICY_MAX_ERRORS are kept already. */
static void
policy_errors_push(struct policy_ctx *c, char *msg)
{
	if (c->errs->n >= SG_POLICY_MAX_ERRORS) {
		free(msg);
		c->dropped++;
		return;
	}
	if (policy_errors_append(c->errs, msg) < 0)
		c->dropped++;
}

static char *
policy_vformat(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

static void policy_err(struct policy_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "file: path: message" (path may be empty: "file: message"). */
static void
policy_err(struct policy_ctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *body, *msg = NULL;

	va_start(ap, fmt);
	body = policy_vformat(fmt, ap);
	va_end(ap);
	if (body == NULL) {
		c->dropped++;
		return;
	}
	if (path != NULL && *path != '\0') {
		if (asprintf(&msg, "%s: %s: %s", c->file, path, body) < 0)
			msg = NULL;
	} else if (asprintf(&msg, "%s: %s", c->file, body) < 0)
		msg = NULL;
	free(body);
	policy_errors_push(c, msg);
}

static void policy_warn(struct policy_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
policy_warn(struct policy_ctx *c, const char *fmt, ...)
{
	policy_strlist_t *w = &c->p->warnings;
	va_list ap;
	char *msg, **v;

	va_start(ap, fmt);
	msg = policy_vformat(fmt, ap);
	va_end(ap);
	if (msg == NULL)
		return;
	v = realloc(w->v, (w->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(msg);
		return;
	}
	v[w->n++] = msg;
	w->v = v;
}

static size_t
policy_nerrors(const struct policy_ctx *c)
{
	return c->errs->n + c->dropped;
}

/* Quote a (non-secret) value for a message: printable ASCII, the rest as \xNN, cut. */
static const char *
policy_quote(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	buf[o++] = '"';
	for (; *s != '\0' && o + 6 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (o >= POLICY_QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

#define Q(s) policy_quote((char[POLICY_QUOTE_MAX + 16]){0}, POLICY_QUOTE_MAX + 16, (s))

/*
 * Append s to the path out[0..o) of len bytes; returns the new length. Overlong paths
 * are cut (as snprintf would cut them); they only label messages. Paths are built for
 * every key of every entry, so this is plain copying, not printf.
 */
static size_t
policy_path_put(char *out, size_t len, size_t o, const char *s)
{
	size_t n = strlen(s);

	if (n > len - 1 - o)
		n = len - 1 - o;
	memcpy(out + o, s, n);
	out[o + n] = '\0';
	return o + n;
}

/* out = "parent.key", or "key" when parent is empty. */
static void
policy_path_key(char *out, size_t len, const char *parent, const char *key)
{
	size_t o = 0;

	out[0] = '\0';
	if (parent[0] != '\0') {
		o = policy_path_put(out, len, o, parent);
		o = policy_path_put(out, len, o, ".");
	}
	policy_path_put(out, len, o, key);
}

/* out = "parent[i]". */
static void
policy_path_index(char *out, size_t len, const char *parent, size_t i)
{
	char num[24], *d = num + sizeof(num);
	size_t o;

	*--d = '\0';
	*--d = ']';
	do
		*--d = (char)('0' + i % 10);
	while ((i /= 10) != 0);
	*--d = '[';
	out[0] = '\0';
	o = policy_path_put(out, len, 0, parent);
	policy_path_put(out, len, o, d);
}

/* Levenshtein distance of two short strings (longer ones: "far"). */
static size_t
policy_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[POLICY_NAME_MAX + 1];

	if (la > POLICY_NAME_MAX || lb > POLICY_NAME_MAX)
		return SIZE_MAX;
	if ((la > lb ? la - lb : lb - la) > POLICY_SUGGEST_DIST)
		return SIZE_MAX;	/* at least the length difference: too far to suggest */
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* The name an entry of a named table (or of a string array) starts with. */
static const char *
policy_entry_name(const void *arr, size_t size, size_t pos)
{
	return *(char *const *)(const void *)((const char *)arr + pos * size);
}

/*
 * Closest name within POLICY_SUGGEST_DIST, or NULL, among the n entries of arr (size
 * bytes each, each starting with its name; NULL names are skipped).
 */
static const char *
policy_suggest_in(const char *word, const void *arr, size_t size, size_t n)
{
	const char *best = NULL, *cand;
	size_t bestd = POLICY_SUGGEST_DIST + 1;

	for (size_t i = 0; i < n; i++) {
		size_t d;

		if ((cand = policy_entry_name(arr, size, i)) == NULL)
			continue;
		if ((d = policy_edit_distance(word, cand)) < bestd) {
			bestd = d;
			best = cand;
		}
	}
	return best;
}

/* Closest of cands[0..n) within POLICY_SUGGEST_DIST, or NULL. */
static const char *
policy_suggest(const char *word, const char *const *cands, size_t n)
{
	return policy_suggest_in(word, cands, sizeof(*cands), n);
}

static const char *
policy_json_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* --- typed getters -------------------------------------------------------------------- */

static int
policy_want(struct policy_ctx *c, const char *path, const json_t *v, json_type t,
    const char *what)
{
	if (json_typeof(v) == t || (t == JSON_TRUE && json_is_boolean(v)))
		return 0;
	policy_err(c, path, "expected %s, got %s", what, policy_json_type(v));
	return -1;
}

static int
policy_object(struct policy_ctx *c, const char *path, const json_t *v)
{
	return policy_want(c, path, v, JSON_OBJECT, "an object");
}

/* Report keys of obj that are not in allowed (NULL-terminated). */
static int
policy_check_keys(struct policy_ctx *c, const char *path, json_t *obj,
    const char *const *allowed)
{
	const char *key, *hint;
	json_t *v;
	size_t n = 0;
	int rc = 0;

	while (allowed[n] != NULL)
		n++;
	for (void *it = json_object_iter(obj); it != NULL &&
	    (key = json_object_iter_key(it)) != NULL &&
	    (v = json_object_iter_value(it)) != NULL; it = json_object_iter_next(obj, it)) {
		size_t i;

		for (i = 0; i < n && strcmp(key, allowed[i]) != 0; i++)
			;
		if (i < n)
			continue;
		hint = policy_suggest(key, allowed, n);
		if (hint != NULL)
			policy_err(c, path, "unknown key %s (did you mean \"%s\"?)", Q(key), hint);
		else
			policy_err(c, path, "unknown key %s", Q(key));
		rc = -1;
	}
	return rc;
}

static int
policy_string(struct policy_ctx *c, const char *path, const json_t *v, const char **out)
{
	if (policy_want(c, path, v, JSON_STRING, "a string") < 0)
		return -1;
	*out = json_string_value(v);
	if (**out == '\0') {
		policy_err(c, path, "must not be empty");
		return -1;
	}
	return 0;
}

static int
policy_strdup_to(struct policy_ctx *c, const char *path, const char *s, char **out)
{
	free(*out);
	*out = strdup(s);
	if (*out == NULL) {
		policy_err(c, path, "out of memory");
		return -1;
	}
	return 0;
}

static int
policy_uint(struct policy_ctx *c, const char *path, const json_t *v, uint64_t min,
    uint64_t max, uint64_t *out)
{
	json_int_t n;

	if (policy_want(c, path, v, JSON_INTEGER, "an integer") < 0)
		return -1;
	n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
		policy_err(c, path, "%lld is out of range (%llu..%llu)", (long long)n,
		    (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = (uint64_t)n;
	return 0;
}

static int
policy_duration(struct policy_ctx *c, const char *path, const json_t *v, uint64_t *ms)
{
	const char *s;

	if (policy_string(c, path, v, &s) < 0)
		return -1;
	if (util_parse_duration_ms(s, ms) < 0) {
		policy_err(c, path, "%s is not a duration (like \"500ms\", \"30s\", \"15m\", "
		    "\"1h30m\", \"2d\")", Q(s));
		return -1;
	}
	return 0;
}

static int
policy_bool(struct policy_ctx *c, const char *path, const json_t *v, bool *out)
{
	if (policy_want(c, path, v, JSON_TRUE, "true or false") < 0)
		return -1;
	*out = json_is_true(v);
	return 0;
}

/* A file path, resolved against the folder of the file it appears in. */
static int
policy_path(struct policy_ctx *c, const char *path, const json_t *v, char **out)
{
	const char *s;

	if (policy_string(c, path, v, &s) < 0)
		return -1;
	free(*out);
	*out = util_path_relative_to(c->file, s);
	if (*out == NULL) {
		policy_err(c, path, "out of memory");
		return -1;
	}
	return 0;
}

static void
policy_strlist_free(policy_strlist_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
policy_strlist_add(policy_strlist_t *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	l->v = v;
	if ((v[l->n] = strdup(s)) == NULL)
		return -1;
	l->n++;
	return 0;
}

/*
 * An array of strings, each accepted by check (which returns 0 or a negative value);
 * what names the expected form in messages. upper: store upper-cased.
 */
static int
policy_strlist(struct policy_ctx *c, const char *path, json_t *v, policy_check_fn check,
    const char *what, bool upper, policy_strlist_t *out)
{
	char sub[POLICY_PATH_MAX];
	size_t i;
	json_t *e;
	int rc = 0;

	if (policy_want(c, path, v, JSON_ARRAY, "an array") < 0)
		return -1;
	policy_strlist_free(out);
	for (i = 0; i < json_array_size(v) && (e = json_array_get(v, i)) != NULL; i++) {
		const char *s;

		policy_path_index(sub, sizeof(sub), path, i);
		if (policy_string(c, sub, e, &s) < 0) {
			rc = -1;
			continue;
		}
		if (check != NULL && check(s) < 0) {
			policy_err(c, sub, "%s is not %s", Q(s), what);
			rc = -1;
			continue;
		}
		if (policy_strlist_add(out, s) < 0) {
			policy_err(c, sub, "out of memory");
			return -1;
		}
		for (char *p = out->v[out->n - 1]; upper && *p; p++)
			*p = (char)toupper((unsigned char)*p);
	}
	return rc;
}

static int
policy_cidrs(struct policy_ctx *c, const char *path, json_t *v, netaddr_cidr_t **out,
    size_t *nout)
{
	char sub[POLICY_PATH_MAX], err[256];
	size_t i;
	json_t *e;
	int rc = 0;

	if (policy_want(c, path, v, JSON_ARRAY, "an array") < 0)
		return -1;
	free(*out);
	*nout = 0;
	*out = calloc(json_array_size(v) + 1, sizeof(**out));
	if (*out == NULL) {
		policy_err(c, path, "out of memory");
		return -1;
	}
	for (i = 0; i < json_array_size(v) && (e = json_array_get(v, i)) != NULL; i++) {
		const char *s;

		policy_path_index(sub, sizeof(sub), path, i);
		if (policy_string(c, sub, e, &s) < 0) {
			rc = -1;
			continue;
		}
		if (netaddr_parse_cidr(s, &(*out)[*nout], err, sizeof(err)) < 0) {
			policy_err(c, sub, "%s", err);
			rc = -1;
			continue;
		}
		(*nout)++;
	}
	return rc;
}

/* --- name indexes --------------------------------------------------------------------- */

/* Unkeyed FNV-1a (hash.h) is enough: the names placed in an index are the policy author's,
 * so a lookup of any name only walks chains the author made. */

static void
policy_index_put(policy_index_slot_t *slot, size_t cap, uint32_t hash, uint32_t pos)
{
	size_t i = hash & (cap - 1);

	while (slot[i].pos != 0)
		i = (i + 1) & (cap - 1);
	slot[i].hash = hash;
	slot[i].pos = pos;
}

/* Twice the slots (SG_POLICY_INDEX_MIN_SLOTS the first time), entries placed again. */
static int
policy_index_grow(policy_index_t *ix)
{
	size_t cap = ix->cap ? ix->cap * 2 : SG_POLICY_INDEX_MIN_SLOTS;
	policy_index_slot_t *slot;

	if (cap > SIZE_MAX / sizeof(*slot) || (slot = calloc(cap, sizeof(*slot))) == NULL)
		return -1;
	for (size_t i = 0; i < ix->cap; i++)
		if (ix->slot[i].pos != 0)
			policy_index_put(slot, cap, ix->slot[i].hash, ix->slot[i].pos);
	free(ix->slot);
	ix->slot = slot;
	ix->cap = cap;
	return 0;
}

int
policy_index_add(policy_index_t *ix, const char *name, size_t pos)
{
	if (pos >= UINT32_MAX)
		return -1;
	if ((ix->n + 1) * 2 > ix->cap && policy_index_grow(ix) < 0)
		return -1;
	policy_index_put(ix->slot, ix->cap, hash_fnv1a32_str(name), (uint32_t)pos + 1);
	ix->n++;
	return 0;
}

ssize_t
policy_index_find(const policy_index_t *ix, const void *arr, size_t size, size_t n,
    const char *name)
{
	const char *cand;
	uint32_t h;

	if (ix->cap == 0) {
		for (size_t i = 0; i < n; i++)
			if ((cand = policy_entry_name(arr, size, i)) != NULL && strcmp(cand, name) == 0)
				return (ssize_t)i;
		return -1;
	}
	h = hash_fnv1a32_str(name);
	for (size_t i = h & (ix->cap - 1); ix->slot[i].pos != 0; i = (i + 1) & (ix->cap - 1)) {
		const policy_index_slot_t *sl = &ix->slot[i];

		if (sl->hash != h || sl->pos > n)
			continue;
		cand = policy_entry_name(arr, size, sl->pos - 1);
		if (cand != NULL && strcmp(cand, name) == 0)
			return (ssize_t)sl->pos - 1;
	}
	return -1;
}

void
policy_index_free(policy_index_t *ix)
{
	if (ix == NULL)
		return;
	free(ix->slot);
	memset(ix, 0, sizeof(*ix));
}

/*
 * Room for entry n in an array of entries of size bytes and in its parallel array of
 * file names, both of capacity *cap. They double, so appending n entries copies O(n)
 * bytes in all. 0, or -1 when out of memory (*cap then still fits both).
 */
static int
policy_arrays_reserve(void **arr, size_t size, char ***files, size_t n, size_t *cap)
{
	size_t ncap;
	void *v;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	if (ncap > SIZE_MAX / size || (v = realloc(*arr, ncap * size)) == NULL)
		return -1;
	*arr = v;
	if ((v = realloc(*files, ncap * sizeof(**files))) == NULL)
		return -1;
	*files = v;
	*cap = ncap;
	return 0;
}

/* --- syntax checks -------------------------------------------------------------------- */

static int
policy_is_label_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/* Lower-case DNS name: labels of [a-z0-9_-], 1..63 each, no leading/trailing '-'. */
static int
policy_check_dns(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > POLICY_HOST_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
			continue;
		}
		if (!policy_is_label_char((unsigned char)s[i]))
			return -1;
		if (label == 0 && s[i] == '-')
			return -1;
		if (++label > 63)
			return -1;
	}
	return label == 0 || s[len - 1] == '-' ? -1 : 0;
}

/* Decimal port; zero_ok allows 0 (the kernel picks). */
static int
policy_check_port(const char *s, bool zero_ok)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v > 65535 || (v == 0 && !zero_ok) ? -1 : 0;
}

/* "api.x.com", "*.x.com", optionally ":port". */
static int
policy_check_host_glob(const char *s)
{
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	if (colon != NULL && policy_check_port(colon + 1, false) < 0)
		return -1;
	if (len > 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		len -= 2;
	}
	return policy_check_dns(s, len);
}

static int
policy_check_dns_name(const char *s)
{
	return policy_check_dns(s, strlen(s));
}

/* RFC 9110 tchar. */
static int
policy_is_tchar(int ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int
policy_check_token(const char *s)
{
	if (*s == '\0')
		return -1;
	for (; *s; s++)
		if (!policy_is_tchar((unsigned char)*s))
			return -1;
	return 0;
}

/* "/..." with visible ASCII only; "*" is a glob. */
static int
policy_check_url_path(const char *s)
{
	if (s[0] != '/')
		return -1;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '#')
			return -1;
	return 0;
}

/* Shell identifier as the sandbox would export it: [A-Z_][A-Z0-9_]*. */
static int
policy_check_env_name(const char *s)
{
	if (!(isupper((unsigned char)s[0]) || s[0] == '_'))
		return -1;
	for (; *s; s++)
		if (!(isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
			return -1;
	return 0;
}

static int
policy_check_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > POLICY_NAME_MAX)
		return -1;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
			return -1;
	return 0;
}

static int
policy_check_key_id(const char *s)
{
	if (strlen(s) != 8)
		return -1;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return -1;
	return 0;
}

/* "host:port": IPv4 or DNS name, or "[IPv6]"; port 0..65535. */
static int
policy_check_listen(const char *s)
{
	char host[POLICY_HOST_MAX + 1];
	const char *colon = strrchr(s, ':');
	size_t hlen;
	uint8_t buf[16];

	if (colon == NULL || policy_check_port(colon + 1, true) < 0)
		return -1;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen > POLICY_HOST_MAX)
		return -1;
	if (s[0] == '[') {
		if (hlen < 3 || s[hlen - 1] != ']')
			return -1;
		memcpy(host, s + 1, hlen - 2);
		host[hlen - 2] = '\0';
		return inet_pton(AF_INET6, host, buf) == 1 ? 0 : -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, buf) == 1)
		return 0;
	return policy_check_dns(host, hlen);
}

/* Exactly one "%s" and no other conversion ("%%" is a literal percent). */
static int
policy_check_format(const char *s)
{
	int n = 0;

	for (; *s; s++) {
		if (*s != '%')
			continue;
		if (s[1] == '%') {
			s++;
			continue;
		}
		if (s[1] != 's')
			return -1;
		n++;
		s++;
	}
	return n == 1 ? 0 : -1;
}

/* Query parameter names: unreserved URL characters. */
static int
policy_check_param(const char *s)
{
	if (*s == '\0')
		return -1;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("-._~", *s) == NULL)
			return -1;
	return 0;
}

/* --- secrets -------------------------------------------------------------------------- */

/* A secret must fit in a header: no NUL, CR or LF inside. */
static int
policy_secret_clean(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return -1;
	return 0;
}

static int
policy_secret_from_file(struct policy_ctx *c, const char *path, const json_t *v,
    char **out, size_t *outlen)
{
	char *file = NULL, err[512];
	int rc;

	if (policy_path(c, path, v, &file) < 0)
		return -1;
	rc = util_read_file_arena(c->p->secrets, file, SG_SECRET_MAX_LEN, out, outlen,
	    err, sizeof(err));
	free(file);
	if (rc < 0) {
		policy_err(c, path, "%s", err);
		return -1;
	}
	if (*outlen > 0 && (*out)[*outlen - 1] == '\n')
		(*out)[--*outlen] = '\0';
	if (*outlen > 0 && (*out)[*outlen - 1] == '\r')
		(*out)[--*outlen] = '\0';
	return 0;
}

static int
policy_secret_from_env(struct policy_ctx *c, const char *path, const json_t *v,
    char **out, size_t *outlen)
{
	const char *name, *val;

	if (policy_string(c, path, v, &name) < 0)
		return -1;
	val = getenv(name);
	if (val == NULL || *val == '\0') {
		policy_err(c, path, "environment variable %s is not set", Q(name));
		return -1;
	}
	*outlen = strlen(val);
	if (*outlen > SG_SECRET_MAX_LEN) {
		policy_err(c, path, "environment variable %s is longer than %d bytes", Q(name),
		    SG_SECRET_MAX_LEN);
		return -1;
	}
	*out = secmem_arena_dup(c->p->secrets, val, *outlen);
	return 0;
}

static int
policy_secret_from_value(struct policy_ctx *c, const char *path, const json_t *v,
    char **out, size_t *outlen)
{
	if (policy_want(c, path, v, JSON_STRING, "a string") < 0)
		return -1;
	*outlen = json_string_length(v);
	if (*outlen > SG_SECRET_MAX_LEN) {
		policy_err(c, path, "longer than %d bytes", SG_SECRET_MAX_LEN);
		return -1;
	}
	*out = secmem_arena_dup(c->p->secrets, json_string_value(v), *outlen);
	return 0;
}

/*
 * {"env": VAR} | {"file": path} | {"value": "..."}, exactly one (only "file" when
 * file_only). *source gets SECRET_ENV/FILE/VALUE.
 */
static int
policy_secret_ex(struct policy_ctx *c, const char *path, json_t *v, bool file_only,
    bool multiline, char **out, size_t *outlen, int *source)
{
	static const char *const all[] = {"env", "file", "value", NULL};
	static const char *const files[] = {"file", NULL};
	char sub[POLICY_PATH_MAX];
	const char *key;
	json_t *e;
	int rc;

	if (policy_object(c, path, v) < 0)
		return -1;
	if (policy_check_keys(c, path, v, file_only ? files : all) < 0)
		return -1;
	if (json_object_size(v) != 1) {
		policy_err(c, path, file_only ? "needs \"file\"" :
		    "needs exactly one of \"env\", \"file\", \"value\"");
		return -1;
	}
	key = json_object_iter_key(json_object_iter(v));
	e = json_object_iter_value(json_object_iter(v));
	policy_path_key(sub, sizeof(sub), path, key);
	if (strcmp(key, "env") == 0) {
		*source = SECRET_ENV;
		rc = policy_secret_from_env(c, sub, e, out, outlen);
	} else if (strcmp(key, "file") == 0) {
		*source = SECRET_FILE;
		rc = policy_secret_from_file(c, sub, e, out, outlen);
	} else {
		*source = SECRET_VALUE;
		rc = policy_secret_from_value(c, sub, e, out, outlen);
	}
	if (rc == 0 && *out == NULL) {
		policy_err(c, sub, "out of memory for secrets");
		return -1;
	}
	if (rc == 0 && (*outlen == 0 || (multiline ? memchr(*out, '\0', *outlen) != NULL :
	    policy_secret_clean(*out, *outlen) < 0))) {
		policy_err(c, sub, multiline ? "the secret is empty or contains a NUL byte" :
		    "the secret is empty or contains a line break or NUL byte");
		secmem_arena_drop(c->p->secrets, *out, *outlen);
		*out = NULL;
		*outlen = 0;
		return -1;
	}
	return rc;
}

/* A secret that goes into a header: one line. */
static int
policy_secret(struct policy_ctx *c, const char *path, json_t *v, bool file_only,
    char **out, size_t *outlen, int *source)
{
	return policy_secret_ex(c, path, v, file_only, false, out, outlen, source);
}

/* --- sections ------------------------------------------------------------------------- */

static int
policy_default_path(struct policy_ctx *c, char **slot, const char *rel)
{
	if (*slot != NULL)
		return 0;
	*slot = util_path_relative_to(c->first_file, rel);
	return *slot == NULL ? -1 : 0;
}

static void
policy_parse_listen_one(struct policy_ctx *c, json_t *obj, const char *key, char **slot,
    const char *def)
{
	char sub[POLICY_PATH_MAX];
	json_t *v = json_object_get(obj, key);
	const char *s;

	policy_path_key(sub, sizeof(sub), "listen", key);
	free(*slot);
	*slot = NULL;
	if (v == NULL) {
		if (def != NULL)
			policy_strdup_to(c, sub, def, slot);
		return;
	}
	if (json_is_null(v) || policy_string(c, sub, v, &s) < 0)
		return;
	if (policy_check_listen(s) < 0) {
		policy_err(c, sub, "%s is not host:port (like \"127.0.0.1:3128\" or "
		    "\"[::1]:3128\"; port 0 lets the kernel pick)", Q(s));
		return;
	}
	policy_strdup_to(c, sub, s, slot);
}

static void
policy_parse_listen(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"proxy", "metadata", "admin", "metadata_aws",
	    "transparent", NULL};

	c->listen_seen = true;
	if (policy_object(c, "listen", v) < 0)
		return;
	policy_check_keys(c, "listen", v, keys);
	policy_parse_listen_one(c, v, "proxy", &c->p->listen.proxy, SG_POLICY_LISTEN_PROXY);
	policy_parse_listen_one(c, v, "metadata", &c->p->listen.metadata,
	    SG_POLICY_LISTEN_METADATA);
	policy_parse_listen_one(c, v, "admin", &c->p->listen.admin, SG_POLICY_LISTEN_ADMIN);
	policy_parse_listen_one(c, v, "metadata_aws", &c->p->listen.metadata_aws, NULL);
	policy_parse_listen_one(c, v, "transparent", &c->p->listen.transparent, NULL);
	if (c->p->listen.transparent != NULL && c->p->listen.proxy == NULL)
		policy_err(c, "listen.transparent", "needs listen.proxy (the transparent "
		    "listener runs on the proxy's workers)");
}

static void
policy_parse_keys(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"seal_key", "ca_cert", "ca_key", "open_keys",
	    "retired_key_ids", NULL};
	json_t *e;

	if (policy_object(c, "keys", v) < 0)
		return;
	policy_check_keys(c, "keys", v, keys);
	if ((e = json_object_get(v, "seal_key")) != NULL)
		policy_path(c, "keys.seal_key", e, &c->p->keys.seal_key);
	if ((e = json_object_get(v, "ca_cert")) != NULL)
		policy_path(c, "keys.ca_cert", e, &c->p->keys.ca_cert);
	if ((e = json_object_get(v, "ca_key")) != NULL)
		policy_path(c, "keys.ca_key", e, &c->p->keys.ca_key);
	if ((e = json_object_get(v, "open_keys")) != NULL &&
	    policy_strlist(c, "keys.open_keys", e, NULL, "", false,
	    &c->p->keys.open_keys) == 0) {
		for (size_t i = 0; i < c->p->keys.open_keys.n; i++) {
			char *abs = util_path_relative_to(c->file, c->p->keys.open_keys.v[i]);

			if (abs == NULL)
				continue;
			free(c->p->keys.open_keys.v[i]);
			c->p->keys.open_keys.v[i] = abs;
		}
	}
	if ((e = json_object_get(v, "retired_key_ids")) != NULL &&
	    policy_strlist(c, "keys.retired_key_ids", e, policy_check_key_id,
	    "a key id (8 hex digits)", false, &c->p->keys.retired_key_ids) == 0) {
		for (size_t i = 0; i < c->p->keys.retired_key_ids.n; i++)
			for (char *p = c->p->keys.retired_key_ids.v[i]; *p; p++)
				*p = (char)tolower((unsigned char)*p);
	}
}

_Static_assert(offsetof(policy_resolve_t, host) == 0, "resolve entries start with their name");

/* One more upstream.resolve entry (host is new), from the file being parsed. */
static int
policy_resolve_append(struct policy_ctx *c, const char *host, const char *addr)
{
	size_t n = c->p->upstream.nresolve;
	policy_resolve_t *r;

	if (policy_arrays_reserve((void **)&c->p->upstream.resolve, sizeof(*r),
	    &c->resolve_file, n, &c->resolve_cap) < 0)
		return -1;
	r = &c->p->upstream.resolve[n];
	r->host = strdup(host);
	r->address = strdup(addr);
	c->resolve_file[n] = strdup(c->file);
	c->p->upstream.nresolve++;
	if (r->host == NULL || r->address == NULL || c->resolve_file[n] == NULL)
		return -1;
	return policy_index_add(&c->resolve_index, host, n);
}

static void
policy_parse_resolve_one(struct policy_ctx *c, const char *host, json_t *v)
{
	char sub[POLICY_PATH_MAX];
	const char *addr;
	uint8_t buf[16];
	ssize_t old;

	policy_path_key(sub, sizeof(sub), "upstream.resolve", host);
	if (policy_check_dns_name(host) < 0)
		policy_err(c, "upstream.resolve", "%s is not a lower-case DNS name", Q(host));
	if (policy_string(c, sub, v, &addr) < 0)
		return;
	if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1) {
		policy_err(c, sub, "%s is not an IP address", Q(addr));
		return;
	}
	if ((old = policy_index_find(&c->resolve_index, c->p->upstream.resolve,
	    sizeof(policy_resolve_t), c->p->upstream.nresolve, host)) >= 0) {
		policy_err(c, sub, "also defined in %s", c->resolve_file[old]);
		return;
	}
	if (policy_resolve_append(c, host, addr) < 0)
		policy_err(c, sub, "out of memory");
}

static void
policy_parse_resolve(struct policy_ctx *c, json_t *v)
{
	const char *host;
	json_t *e;

	if (policy_object(c, "upstream.resolve", v) < 0)
		return;
	for (void *it = json_object_iter(v); it != NULL &&
	    (host = json_object_iter_key(it)) != NULL &&
	    (e = json_object_iter_value(it)) != NULL; it = json_object_iter_next(v, it))
		policy_parse_resolve_one(c, host, e);
}

static void
policy_parse_upstream(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"ca_file", "resolve", NULL};
	json_t *e;

	if (policy_object(c, "upstream", v) < 0)
		return;
	policy_check_keys(c, "upstream", v, keys);
	if ((e = json_object_get(v, "ca_file")) != NULL && !json_is_null(e))
		policy_path(c, "upstream.ca_file", e, &c->p->upstream.ca_file);
	if ((e = json_object_get(v, "resolve")) != NULL)
		policy_parse_resolve(c, e);
}

static void
policy_parse_admin(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"token", NULL};
	static const char *const tkeys[] = {"file", NULL};
	json_t *e, *f;

	if (policy_object(c, "admin", v) < 0)
		return;
	policy_check_keys(c, "admin", v, keys);
	if ((e = json_object_get(v, "token")) == NULL || policy_object(c, "admin.token", e) < 0)
		return;
	if (policy_check_keys(c, "admin.token", e, tkeys) < 0)
		return;
	if ((f = json_object_get(e, "file")) == NULL) {
		policy_err(c, "admin.token", "needs \"file\"");
		return;
	}
	policy_path(c, "admin.token.file", f, &c->p->admin_token_file);
}

static void
policy_parse_audit(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"path", NULL};
	const char *s;
	json_t *e;

	if (policy_object(c, "audit", v) < 0)
		return;
	policy_check_keys(c, "audit", v, keys);
	if ((e = json_object_get(v, "path")) == NULL)
		return;
	if (json_is_string(e) && strcmp(json_string_value(e), "-") == 0) {
		policy_strdup_to(c, "audit.path", "-", &c->p->audit_path);
		return;
	}
	if (policy_string(c, "audit.path", e, &s) == 0)
		policy_path(c, "audit.path", e, &c->p->audit_path);
}

static void
policy_parse_revocations(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"file", NULL};
	json_t *e;

	if (policy_object(c, "revocations", v) < 0)
		return;
	policy_check_keys(c, "revocations", v, keys);
	if ((e = json_object_get(v, "file")) != NULL)
		policy_path(c, "revocations.file", e, &c->p->revocations_file);
}

/* cluster.redis.KEY: a string that check accepts, copied to *slot. */
static void
policy_cluster_string(struct policy_ctx *c, json_t *redis, const char *key,
    int (*check)(const char *), const char *want, char **slot)
{
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(redis, key);
	const char *s;

	if (e == NULL)
		return;
	policy_path_key(sub, sizeof(sub), "cluster.redis", key);
	if (policy_string(c, sub, e, &s) < 0)
		return;
	if (!check(s)) {
		policy_err(c, sub, "%s is not %s", Q(s), want);
		return;
	}
	policy_strdup_to(c, sub, s, slot);
}

static void
policy_parse_cluster_redis(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"address", "password", "user", "prefix", "node",
		"nodes", "sentinels", "master_name", NULL};
	policy_cluster_t *cl = &c->p->cluster;
	json_t *e;
	uint64_t n;
	int src;

	if (policy_object(c, "cluster.redis", v) < 0)
		return;
	policy_check_keys(c, "cluster.redis", v, keys);
	if (json_object_get(v, "sentinels") != NULL || json_object_get(v, "master_name"))
		policy_err(c, json_object_get(v, "sentinels") ? "cluster.redis.sentinels" :
		    "cluster.redis.master_name", "Redis Sentinel is not supported yet: name the "
		    "master in \"address\" (see docs/operations.md, fleet mode)");
	if (json_object_get(v, "address") == NULL)
		policy_err(c, "cluster.redis", "needs \"address\" (\"host:port\" or "
		    "\"unix:/path\")");
	policy_cluster_string(c, v, "address", clustermsg_address_valid,
	    "\"host:port\" (port 1..65535, [v6] in brackets) or \"unix:/absolute/path\"",
	    &cl->address);
	policy_cluster_string(c, v, "user", clustermsg_user_valid,
	    "an ACL user name (1..64 printable characters, no space)", &cl->user);
	policy_cluster_string(c, v, "node", clustermsg_node_valid,
	    "a node name (1..64 of A-Z a-z 0-9 . _ -)", &cl->node);
	policy_cluster_string(c, v, "prefix", clustermsg_prefix_valid,
	    "a key prefix (1..64 of A-Z a-z 0-9 . _ : -)", &cl->prefix);
	if (cl->prefix == NULL)
		policy_strdup_to(c, "cluster.redis.prefix", SG_CLUSTER_PREFIX, &cl->prefix);
	if ((e = json_object_get(v, "password")) != NULL)
		policy_secret(c, "cluster.redis.password", e, false, &cl->password,
		    &cl->password_len, &src);
	if (cl->user != NULL && cl->password == NULL)
		policy_err(c, "cluster.redis.user", "needs \"password\" too (AUTH user password)");
	cl->nodes = SG_FLEETRATE_NODES_DEFAULT;
	if ((e = json_object_get(v, "nodes")) != NULL &&
	    policy_uint(c, "cluster.redis.nodes", e, 1, SG_FLEETRATE_NODES_MAX, &n) == 0)
		cl->nodes = (uint32_t)n;
}

static void
policy_parse_cluster(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"redis", NULL};
	json_t *e;

	if (policy_object(c, "cluster", v) < 0)
		return;
	policy_check_keys(c, "cluster", v, keys);
	if ((e = json_object_get(v, "redis")) == NULL) {
		policy_err(c, "cluster", "needs \"redis\" (the only cluster backend)");
		return;
	}
	c->p->cluster.set = true;
	c->cluster_file = strdup(c->file);
	policy_parse_cluster_redis(c, e);
}

/* A string that must be one of choices[0..n); returns its index or -1. */
static int
policy_enum(struct policy_ctx *c, const char *path, const json_t *v,
    const char *const *choices, size_t n)
{
	const char *s;

	if (policy_string(c, path, v, &s) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, choices[i]) == 0)
			return (int)i;
	if (n == 2)
		policy_err(c, path, "%s is not \"%s\" or \"%s\"", Q(s), choices[0], choices[1]);
	else
		policy_err(c, path, "%s is not one of the allowed values", Q(s));
	return -1;
}

#define POLICY_HOST_GLOB_WHAT \
	"a host glob (lower-case DNS name, optional leading \"*.\", optional \":port\")"

static void
policy_parse_egress(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"default", "allow_hosts", "deny_hosts",
	    "tunnel_hosts", "allow_private", "intercept", NULL};
	static const char *const defaults[] = {"deny", "allow"};
	static const char *const intercepts[] = {"credentials", "all"};
	policy_egress_t *eg = &c->p->egress;
	json_t *e;
	int i;

	if (policy_object(c, "egress", v) < 0)
		return;
	policy_check_keys(c, "egress", v, keys);
	if ((e = json_object_get(v, "default")) != NULL &&
	    (i = policy_enum(c, "egress.default", e, defaults, 2)) >= 0)
		eg->default_allow = i == 1;
	if ((e = json_object_get(v, "intercept")) != NULL &&
	    (i = policy_enum(c, "egress.intercept", e, intercepts, 2)) >= 0)
		eg->intercept = i == 1 ? INTERCEPT_ALL : INTERCEPT_CREDENTIALS;
	if ((e = json_object_get(v, "allow_hosts")) != NULL)
		policy_strlist(c, "egress.allow_hosts", e, policy_check_host_glob,
		    POLICY_HOST_GLOB_WHAT, false, &eg->allow_hosts);
	if ((e = json_object_get(v, "deny_hosts")) != NULL)
		policy_strlist(c, "egress.deny_hosts", e, policy_check_host_glob,
		    POLICY_HOST_GLOB_WHAT, false, &eg->deny_hosts);
	if ((e = json_object_get(v, "tunnel_hosts")) != NULL)
		policy_strlist(c, "egress.tunnel_hosts", e, policy_check_host_glob,
		    POLICY_HOST_GLOB_WHAT, false, &eg->tunnel_hosts);
	if ((e = json_object_get(v, "allow_private")) != NULL)
		policy_cidrs(c, "egress.allow_private", e, &eg->allow_private,
		    &eg->nallow_private);
}

static const struct policy_limit_timeout {
	const char *key;
	size_t off;
	uint64_t min_ms;
} policy_limit_timeouts[] = {
	{"header_timeout", offsetof(policy_limits_t, header_timeout_ms), 1},
	{"idle_timeout", offsetof(policy_limits_t, idle_timeout_ms), 1},
	{"connect_timeout", offsetof(policy_limits_t, connect_timeout_ms), 1},
	{"tls_timeout", offsetof(policy_limits_t, tls_timeout_ms), 1},
	{"upstream_timeout", offsetof(policy_limits_t, upstream_timeout_ms), 1},
	{"drain_timeout", offsetof(policy_limits_t, drain_timeout_ms), 0},
	{"park_after", offsetof(policy_limits_t, park_after_ms), 0},
};

static const struct policy_limit_count {
	const char *key;
	size_t off;
	uint64_t min, max;
} policy_limit_counts[] = {
	{"max_header_bytes", offsetof(policy_limits_t, max_header_bytes),
	    SG_POLICY_MIN_HEADER_BYTES, SG_POLICY_MAX_HEADER_BYTES},
	{"max_connections", offsetof(policy_limits_t, max_connections), 1,
	    SG_POLICY_MAX_CONNECTIONS},
	{"workers", offsetof(policy_limits_t, workers), 0, SG_POLICY_MAX_WORKERS},
	{"busy_poll_us", offsetof(policy_limits_t, busy_poll_us), 0, SG_POLICY_MAX_BUSY_POLL_US},
	{"failed_handles", offsetof(policy_limits_t, failed_handles), 0,
	    SG_POLICY_MAX_FAIL_LIMIT},
};

/* limits.failed_handles_window: a duration within the policy.h bounds. */
static void
policy_parse_fail_window(struct policy_ctx *c, json_t *v)
{
	static const char path[] = "limits.failed_handles_window";
	json_t *e = json_object_get(v, "failed_handles_window");
	uint64_t ms;

	if (e == NULL || policy_duration(c, path, e, &ms) < 0)
		return;
	if (ms < SG_POLICY_MIN_FAIL_WINDOW_MS || ms > SG_POLICY_MAX_FAIL_WINDOW_MS)
		policy_err(c, path, "%s is out of range (%llus..%llus)",
		    Q(json_string_value(e)), SG_POLICY_MIN_FAIL_WINDOW_MS / 1000,
		    SG_POLICY_MAX_FAIL_WINDOW_MS / 1000);
	else
		c->p->limits.failed_handles_window_ms = ms;
}

/* limits.max_decoded_bytes: bytes, within the policy.h bounds (it may pass 4 GiB). */
static void
policy_parse_decoded_max(struct policy_ctx *c, json_t *v)
{
	json_t *e = json_object_get(v, "max_decoded_bytes");
	uint64_t n;

	if (e != NULL && policy_uint(c, "limits.max_decoded_bytes", e,
	    SG_POLICY_MIN_DECODED_BYTES, SG_POLICY_MAX_DECODED_BYTES, &n) == 0)
		c->p->limits.max_decoded_bytes = n;
}

static void
policy_parse_limits(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"header_timeout", "idle_timeout",
	    "connect_timeout", "tls_timeout", "upstream_timeout", "drain_timeout",
	    "park_after", "max_header_bytes", "max_connections", "workers", "busy_poll_us",
	    "failed_handles", "failed_handles_window", "max_decoded_bytes", NULL};
	char sub[POLICY_PATH_MAX];
	uint8_t *base = (uint8_t *)&c->p->limits;
	uint64_t n;
	json_t *e;

	if (policy_object(c, "limits", v) < 0)
		return;
	policy_check_keys(c, "limits", v, keys);
	for (size_t i = 0; i < SG_ARRAY_LEN(policy_limit_timeouts); i++) {
		const struct policy_limit_timeout *t = &policy_limit_timeouts[i];

		if ((e = json_object_get(v, t->key)) == NULL)
			continue;
		policy_path_key(sub, sizeof(sub), "limits", t->key);
		if (policy_duration(c, sub, e, &n) < 0)
			continue;
		if (n < t->min_ms)
			policy_err(c, sub, "must be longer than 0");
		else
			memcpy(base + t->off, &n, sizeof(n));
	}
	for (size_t i = 0; i < SG_ARRAY_LEN(policy_limit_counts); i++) {
		const struct policy_limit_count *t = &policy_limit_counts[i];
		uint32_t n32;

		if ((e = json_object_get(v, t->key)) == NULL)
			continue;
		policy_path_key(sub, sizeof(sub), "limits", t->key);
		if (policy_uint(c, sub, e, t->min, t->max, &n) < 0)
			continue;
		n32 = (uint32_t)n;
		memcpy(base + t->off, &n32, sizeof(n32));
	}
	policy_parse_fail_window(c, v);
	policy_parse_decoded_max(c, v);
}

/* --- credentials ---------------------------------------------------------------------- */

static int
policy_parse_rate(struct policy_ctx *c, const char *path, json_t *v, policy_rate_t *r)
{
	static const char *const keys[] = {"requests", "per", "burst", NULL};
	char sub[POLICY_PATH_MAX];
	uint64_t n;
	json_t *e;
	int rc = 0;

	if (policy_object(c, path, v) < 0 || policy_check_keys(c, path, v, keys) < 0)
		return -1;
	policy_path_key(sub, sizeof(sub), path, "requests");
	if ((e = json_object_get(v, "requests")) == NULL) {
		policy_err(c, path, "needs \"requests\"");
		rc = -1;
	} else if (policy_uint(c, sub, e, 1, UINT32_MAX, &n) < 0)
		rc = -1;
	else
		r->requests = r->burst = (uint32_t)n;
	policy_path_key(sub, sizeof(sub), path, "per");
	if ((e = json_object_get(v, "per")) == NULL) {
		policy_err(c, path, "needs \"per\"");
		rc = -1;
	} else if (policy_duration(c, sub, e, &r->per_ms) < 0)
		rc = -1;
	else if (r->per_ms == 0) {
		policy_err(c, sub, "must be longer than 0");
		rc = -1;
	}
	policy_path_key(sub, sizeof(sub), path, "burst");
	if ((e = json_object_get(v, "burst")) != NULL) {
		if (policy_uint(c, sub, e, 1, UINT32_MAX, &n) < 0)
			rc = -1;
		else
			r->burst = (uint32_t)n;
	}
	r->set = rc == 0;
	return rc;
}

static const char *const policy_inject_types[] = {
	[INJECT_BEARER] = "bearer", [INJECT_HEADER] = "header", [INJECT_BASIC] = "basic",
	[INJECT_QUERY] = "query", [INJECT_HMAC] = "hmac", [INJECT_BODY] = "body",
	[INJECT_AWS_SIGV4] = "aws_sigv4",
};

/* Which inject fields each type takes, by bit: name format username param placeholder. */
static const unsigned policy_inject_fields[] = {
	[INJECT_BEARER] = 0, [INJECT_HEADER] = 1 | 2, [INJECT_BASIC] = 4,
	[INJECT_QUERY] = 8, [INJECT_HMAC] = 1 | 2, [INJECT_BODY] = 16, [INJECT_AWS_SIGV4] = 0,
};

_Static_assert(SG_ARRAY_LEN(policy_inject_types) == INJECT_AWS_SIGV4 + 1,
    "every inject type has a name");
_Static_assert(SG_ARRAY_LEN(policy_inject_fields) == INJECT_AWS_SIGV4 + 1,
    "every inject type says which fields it takes");

const char *
policy_inject_name(enum policy_inject_type t)
{
	return (size_t)t < SG_ARRAY_LEN(policy_inject_types) ? policy_inject_types[t] : "?";
}

static const char *const policy_inject_keys[] = {"type", "name", "format", "username",
	"param", "placeholder", NULL};

static int
policy_parse_inject_type(struct policy_ctx *c, const char *path, json_t *v)
{
	char sub[POLICY_PATH_MAX];
	const char *s, *hint;
	json_t *e;

	policy_path_key(sub, sizeof(sub), path, "type");
	if ((e = json_object_get(v, "type")) == NULL) {
		policy_err(c, path, "needs \"type\"");
		return -1;
	}
	if (policy_string(c, sub, e, &s) < 0)
		return -1;
	for (size_t i = 0; i < SG_ARRAY_LEN(policy_inject_types); i++)
		if (strcmp(s, policy_inject_types[i]) == 0)
			return (int)i;
	hint = policy_suggest(s, policy_inject_types, SG_ARRAY_LEN(policy_inject_types));
	policy_err(c, sub, "unknown inject type %s (one of bearer, header, basic, query, "
	    "hmac, body, aws_sigv4)%s%s%s", Q(s), hint ? "; did you mean \"" : "",
	    hint ? hint : "", hint ? "\"?" : "");
	return -1;
}

/* One optional string field of inject; check may be NULL. */
static int
policy_parse_inject_field(struct policy_ctx *c, const char *path, json_t *v, int type,
    size_t idx, policy_check_fn check, const char *what, char **out)
{
	const char *key = policy_inject_keys[idx + 1], *s;
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(v, key);

	if (e == NULL)
		return 0;
	policy_path_key(sub, sizeof(sub), path, key);
	if (!(policy_inject_fields[type] & (1u << idx))) {
		policy_err(c, sub, "not used by inject type \"%s\"", policy_inject_types[type]);
		return -1;
	}
	if (policy_string(c, sub, e, &s) < 0)
		return -1;
	if (check != NULL && check(s) < 0) {
		policy_err(c, sub, "%s %s", Q(s), what);
		return -1;
	}
	return policy_strdup_to(c, sub, s, out);
}

static int
policy_check_placeholder(const char *s)
{
	return strlen(s) < SG_PLACEHOLDER_MIN ? -1 : policy_secret_clean(s, strlen(s));
}

static int
policy_check_username(const char *s)
{
	return strchr(s, ':') != NULL ? -1 : policy_secret_clean(s, strlen(s));
}

static int
policy_inject_require(struct policy_ctx *c, const char *path, const char *field,
    const char *val, const char *type)
{
	if (val != NULL)
		return 0;
	policy_err(c, path, "inject type \"%s\" needs \"%s\"", type, field);
	return -1;
}

static int
policy_parse_inject(struct policy_ctx *c, const char *path, json_t *v, policy_inject_t *in)
{
	int type, rc = 0;

	if (policy_object(c, path, v) < 0 ||
	    policy_check_keys(c, path, v, policy_inject_keys) < 0 ||
	    (type = policy_parse_inject_type(c, path, v)) < 0)
		return -1;
	in->type = (enum policy_inject_type)type;
	rc |= policy_parse_inject_field(c, path, v, type, 0, policy_check_token,
	    "is not a header name", &in->name);
	rc |= policy_parse_inject_field(c, path, v, type, 1, policy_check_format,
	    "must contain exactly one %s (write %% for a literal %)", &in->format);
	rc |= policy_parse_inject_field(c, path, v, type, 2, policy_check_username,
	    "is not a Basic user name (no ':' or line breaks)", &in->username);
	rc |= policy_parse_inject_field(c, path, v, type, 3, policy_check_param,
	    "is not a query parameter name", &in->param);
	rc |= policy_parse_inject_field(c, path, v, type, 4, policy_check_placeholder,
	    "is not a placeholder (at least 4 bytes, no line breaks)", &in->placeholder);
	if (rc != 0)
		return -1;
	if (type == INJECT_HEADER)
		rc |= policy_inject_require(c, path, "name", in->name, "header") |
		    policy_inject_require(c, path, "format", in->format, "header");
	else if (type == INJECT_BASIC)
		rc |= policy_inject_require(c, path, "username", in->username, "basic");
	else if (type == INJECT_QUERY)
		rc |= policy_inject_require(c, path, "param", in->param, "query");
	else if (type == INJECT_HMAC) {
		if (in->name == NULL)
			rc |= policy_strdup_to(c, path, SG_POLICY_HMAC_NAME, &in->name);
		if (in->format == NULL)
			rc |= policy_strdup_to(c, path, SG_POLICY_HMAC_FORMAT, &in->format);
	}
	return rc == 0 ? 0 : -1;
}

/* "ttl": a duration (1s..SG_HANDLE_TTL_MAX_S), or "sandbox" (handles bound to their
 * sandbox's lifetime, see docs/handles.md). */
static void
policy_parse_ttl(struct policy_ctx *c, const char *path, json_t *v, uint64_t *ttl_s,
    bool *sandbox)
{
	uint64_t ms;

	if (json_is_string(v) && strcmp(json_string_value(v), "sandbox") == 0) {
		*sandbox = true;
		return;
	}
	if (json_is_string(v) && util_parse_duration_ms(json_string_value(v), &ms) < 0) {
		policy_err(c, path, "%s is neither a duration (like \"15m\", \"1h\") nor "
		    "\"sandbox\"", Q(json_string_value(v)));
		return;
	}
	if (policy_duration(c, path, v, &ms) < 0)
		return;
	if (ms < 1000 || ms / 1000 > SG_HANDLE_TTL_MAX_S) {
		policy_err(c, path, "%s is out of range (1s..%ds)", Q(json_string_value(v)),
		    SG_HANDLE_TTL_MAX_S);
		return;
	}
	*ttl_s = ms / 1000;
}

/* "max_ttl": the longest any handle lives, 1s..SG_HANDLE_MAX_TTL_LIMIT_S. */
static void
policy_parse_max_ttl(struct policy_ctx *c, const char *path, json_t *v, uint64_t *out)
{
	uint64_t ms;

	if (policy_duration(c, path, v, &ms) < 0)
		return;
	if (ms < 1000 || ms / 1000 > SG_HANDLE_MAX_TTL_LIMIT_S) {
		policy_err(c, path, "%s is out of range (1s..%ds)", Q(json_string_value(v)),
		    SG_HANDLE_MAX_TTL_LIMIT_S);
		return;
	}
	*out = ms / 1000;
}

/*
 * secret.exec's program: a name without "/" is looked up in SG_SECRET_EXEC_PATH, a path
 * is taken relative to the policy file. It must be an executable file; it is not run.
 */
static int
policy_exec_program(struct policy_ctx *c, const char *path, const char *prog, char **out)
{
	char dirs[] = SG_SECRET_EXEC_PATH, *save = NULL, cand[4096];

	if (strchr(prog, '/') != NULL) {
		if ((*out = util_path_relative_to(c->file, prog)) == NULL)
			return -1;
		if (access(*out, X_OK) == 0)
			return 0;
		policy_err(c, path, "%s is not an executable file", Q(prog));
		return -1;
	}
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (snprintf(cand, sizeof(cand), "%s/%s", d, prog) >= (int)sizeof(cand))
			continue;
		if (access(cand, X_OK) == 0)
			return (*out = strdup(cand)) != NULL ? 0 : -1;
	}
	policy_err(c, path, "%s is not found in %s", Q(prog), SG_SECRET_EXEC_PATH);
	return -1;
}

/* secret.exec's "ttl" or "timeout": a duration within min_s..max_s, else def_s. */
static int
policy_exec_duration(struct policy_ctx *c, const char *path, json_t *v, const char *key,
    uint64_t min_s, uint64_t max_s, uint64_t def_s, uint64_t *ms)
{
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(v, key);

	*ms = def_s * 1000;
	if (e == NULL)
		return 0;
	policy_path_key(sub, sizeof(sub), path, key);
	if (policy_duration(c, sub, e, ms) < 0)
		return -1;
	if (*ms < min_s * 1000 || *ms > max_s * 1000) {
		policy_err(c, sub, "%s is out of range (%llus..%llus)", Q(json_string_value(e)),
		    (unsigned long long)min_s, (unsigned long long)max_s);
		return -1;
	}
	return 0;
}

/* {"exec": [argv...], "ttl": "5m", "timeout": "5s"}: checked, never run here. */
static void
policy_parse_secret_exec(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	static const char *const keys[] = {"exec", "ttl", "timeout", NULL};
	char sub[POLICY_PATH_MAX], sub0[POLICY_PATH_MAX], *prog = NULL;
	policy_strlist_t *a = &cr->exec.argv;

	if (policy_check_keys(c, path, v, keys) < 0)
		return;
	policy_path_key(sub, sizeof(sub), path, "exec");
	if (policy_strlist(c, sub, json_object_get(v, "exec"), NULL, NULL, false, a) < 0)
		return;
	if (a->n == 0 || a->n > SG_SECRET_EXEC_MAX_ARGS || a->v[0][0] == '\0') {
		policy_err(c, sub, "needs a program and at most %d arguments",
		    SG_SECRET_EXEC_MAX_ARGS - 1);
		return;
	}
	policy_path_index(sub0, sizeof(sub0), sub, 0);
	if (policy_exec_program(c, sub0, a->v[0], &prog) < 0) {
		free(prog);
		return;
	}
	free(a->v[0]);
	a->v[0] = prog;
	if (policy_exec_duration(c, path, v, "ttl", SG_SECRET_EXEC_TTL_MIN_S,
	    SG_SECRET_EXEC_TTL_MAX_S, SG_SECRET_EXEC_TTL_DEFAULT_S, &cr->exec.ttl_ms) < 0 ||
	    policy_exec_duration(c, path, v, "timeout", 1, SG_SECRET_EXEC_TIMEOUT_MAX_S,
	    SG_SECRET_EXEC_TIMEOUT_DEFAULT_S, &cr->exec.timeout_ms) < 0)
		return;
	if (cr->exec.timeout_ms >= cr->exec.ttl_ms)
		policy_err(c, path, "\"timeout\" must be shorter than \"ttl\"");
	cr->secret_source = SECRET_EXEC;
}

static void
policy_parse_credential_secret(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	json_t *e;
	int src = SECRET_VALUE;

	policy_path_key(sub, sizeof(sub), path, "secret");
	if ((e = json_object_get(v, "secret")) == NULL) {
		policy_err(c, path, "needs \"secret\"");
		return;
	}
	if (json_is_object(e) && json_object_get(e, "exec") != NULL) {
		policy_parse_secret_exec(c, sub, e, cr);
		return;
	}
	if (policy_secret(c, sub, e, false, &cr->secret, &cr->secret_len, &src) < 0)
		return;
	cr->secret_source = src == SECRET_ENV ? SECRET_ENV : src == SECRET_FILE ?
	    SECRET_FILE : SECRET_VALUE;
	if (src == SECRET_FILE)
		(void)policy_path(c, sub, json_object_get(e, "file"), &cr->secret_file);
	if (src == SECRET_VALUE)
		policy_warn(c, "%s: %s: inline value is for development only", c->file, sub);
}

/*
 * The live-value cell of a file or exec secret (secval.h). aws_sigv4 credentials keep
 * the value read at load: their key id and secret change together, by a reload.
 */
static void
policy_credential_live(struct policy_ctx *c, const char *path, policy_credential_t *cr)
{
	secval_t *first = NULL;
	const char *v = cr->mint != NULL ? cr->mint->secret : cr->secret;
	size_t vlen = cr->mint != NULL ? cr->mint->secret_len : cr->secret_len;

	if (cr->secret_source == SECRET_EXEC && cr->inject.type == INJECT_AWS_SIGV4) {
		policy_err(c, path, "secret.exec is not available for inject type "
		    "\"aws_sigv4\" (its key id and secret change together: use a reload)");
		return;
	}
	if ((cr->secret_source != SECRET_FILE && cr->secret_source != SECRET_EXEC) ||
	    cr->inject.type == INJECT_AWS_SIGV4)
		return;
	if (cr->secret_source == SECRET_FILE && v != NULL &&
	    (first = secval_new(v, vlen, 0)) == NULL)
		goto nomem;
	if ((cr->live = malloc(sizeof(*cr->live))) == NULL)
		goto nomem;
	snapshot_cell_init(cr->live, &secval_cell_ops);
	if (first != NULL)
		(void)snapshot_publish(cr->live, first);
	return;
nomem:
	secval_unref(first);
	policy_err(c, path, "out of memory for secrets");
}

static void
policy_parse_credential_scope(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	json_t *e;

	policy_path_key(sub, sizeof(sub), path, "hosts");
	if ((e = json_object_get(v, "hosts")) == NULL)
		policy_err(c, path, "needs \"hosts\"");
	else if (policy_strlist(c, sub, e, policy_check_host_glob, POLICY_HOST_GLOB_WHAT,
	    false, &cr->hosts) == 0 && cr->hosts.n == 0)
		policy_err(c, sub, "must list at least one host");
	policy_path_key(sub, sizeof(sub), path, "methods");
	if ((e = json_object_get(v, "methods")) != NULL)
		policy_strlist(c, sub, e, policy_check_token, "an HTTP method", true,
		    &cr->methods);
	policy_path_key(sub, sizeof(sub), path, "paths");
	if ((e = json_object_get(v, "paths")) != NULL)
		policy_strlist(c, sub, e, policy_check_url_path,
		    "a path (must start with \"/\"; \"*\" matches any run)", false, &cr->paths);
}

/* ttl and max_ttl: a wall-clock ttl may not exceed max_ttl; a sandbox-lifetime
 * credential's wall-clock bound (ttl_s, used where a template caps it) is max_ttl. */
static void
policy_parse_credential_ttl(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	json_t *e;

	policy_path_key(sub, sizeof(sub), path, "max_ttl");
	if ((e = json_object_get(v, "max_ttl")) != NULL)
		policy_parse_max_ttl(c, sub, e, &cr->max_ttl_s);
	policy_path_key(sub, sizeof(sub), path, "ttl");
	if ((e = json_object_get(v, "ttl")) != NULL)
		policy_parse_ttl(c, sub, e, &cr->ttl_s, &cr->ttl_sandbox);
	if (cr->ttl_sandbox)
		cr->ttl_s = cr->max_ttl_s;
	else if (cr->ttl_s > cr->max_ttl_s)
		policy_err(c, sub, "ttl (%llus) is longer than max_ttl (%llus)",
		    (unsigned long long)cr->ttl_s, (unsigned long long)cr->max_ttl_s);
}

/* on_cluster_failure: what rate_total does while the fleet's Redis is unreachable. */
static void
policy_parse_cluster_failure(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	static const char *const modes[] = {"local_share", "fail_closed"};
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(v, "on_cluster_failure");

	if (e == NULL)
		return;
	policy_path_key(sub, sizeof(sub), path, "on_cluster_failure");
	if (json_object_get(v, "rate_total") == NULL) {
		policy_err(c, sub, "needs \"rate_total\" (it says what the fleet-wide limit "
		    "does while Redis is unreachable)");
		return;
	}
	cr->cluster_fail_closed = policy_enum(c, sub, e, modes, 2) == 1;
}

static void
policy_parse_credential_rest(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	const char *s;
	json_t *e;

	policy_path_key(sub, sizeof(sub), path, "rate");
	if ((e = json_object_get(v, "rate")) != NULL)
		policy_parse_rate(c, sub, e, &cr->rate);
	policy_path_key(sub, sizeof(sub), path, "rate_total");
	if ((e = json_object_get(v, "rate_total")) != NULL)
		policy_parse_rate(c, sub, e, &cr->rate_total);
	policy_parse_cluster_failure(c, path, v, cr);
	policy_parse_credential_ttl(c, path, v, cr);
	policy_path_key(sub, sizeof(sub), path, "env");
	if ((e = json_object_get(v, "env")) != NULL && policy_string(c, sub, e, &s) == 0) {
		if (policy_check_env_name(s) < 0)
			policy_err(c, sub, "%s is not a shell variable name ([A-Z_][A-Z0-9_]*)",
			    Q(s));
		else
			policy_strdup_to(c, sub, s, &cr->env);
	}
	policy_path_key(sub, sizeof(sub), path, "allow_plain_http");
	if ((e = json_object_get(v, "allow_plain_http")) != NULL)
		policy_bool(c, sub, e, &cr->allow_plain_http);
	policy_path_key(sub, sizeof(sub), path, "allow_websocket_binary");
	if ((e = json_object_get(v, "allow_websocket_binary")) != NULL)
		policy_bool(c, sub, e, &cr->allow_websocket_binary);
	policy_path_key(sub, sizeof(sub), path, "echo_ok_in_body");
	if ((e = json_object_get(v, "echo_ok_in_body")) != NULL)
		policy_bool(c, sub, e, &cr->echo_ok_in_body);
}

/* --- the "aws" block of aws_sigv4 credentials ------------------------------------------ */

#define POLICY_AWS_SERVICE_MAX	64	/* longest service signing name ("s3-object-lambda") */
#define POLICY_AWS_REGION_MAX	32	/* longest region name ("us-isof-south-1" and kin) */
#define POLICY_AWS_KEY_MAX	1024	/* S3 object keys are at most 1024 bytes */
#define POLICY_AWS_AKID_MIN	16	/* IAM access key ids: 16..128 word characters */
#define POLICY_AWS_AKID_MAX	128
#define POLICY_AWS_ARN_MAX	2048	/* IAM role ARNs */
#define POLICY_AWS_ROLE_NAME_MAX 64	/* IAM role names */
#define POLICY_AWS_EXTID_MIN	2	/* sts:ExternalId: 2..1224 characters (shorter: warned) */
#define POLICY_AWS_EXTID_MAX	1224

static const char *const policy_aws_keys[] = {"access_key_id", "session_token",
	"assume_role", "services", "regions", "buckets", "prefixes", NULL};

/* A service signing name: [a-z0-9-], no '-' at either end ("s3", "execute-api"). */
static int
policy_check_aws_service(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > POLICY_AWS_SERVICE_MAX || s[0] == '-' || s[n - 1] == '-')
		return -1;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return -1;
	return 0;
}

/* A region: letters, then letter groups, then a number, joined by '-' ("us-east-1",
 * "us-gov-west-1", "cn-northwest-1"). */
static int
policy_check_aws_region(const char *s)
{
	size_t n = strlen(s), groups = 1, len = 0;
	const char *last = strrchr(s, '-');

	if (n > POLICY_AWS_REGION_MAX || last == NULL || last[1] == '\0' || strlen(last + 1) > 2)
		return -1;
	for (const char *p = last + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	for (const char *p = s; p < last; p++) {
		if (*p == '-') {
			if (len == 0)
				return -1;
			groups++;
			len = 0;
		} else if (*p >= 'a' && *p <= 'z')
			len++;
		else
			return -1;
	}
	return len > 0 && groups >= 2 && strchr(s, '-') - s >= 2 ? 0 : -1;
}

static bool
policy_has_prefix(const char *s, const char *pre)
{
	return strncmp(s, pre, strlen(pre)) == 0;
}

static bool
policy_has_suffix(const char *s, size_t n, const char *suf)
{
	size_t m = strlen(suf);

	return n >= m && memcmp(s + n - m, suf, m) == 0;
}

/*
 * An S3 bucket name (general purpose rules; directory buckets' "--x-s3" suffix is
 * allowed): 3..63 of [a-z0-9.-], a letter or digit at both ends, no "..", not an IPv4
 * address, none of the reserved prefixes and suffixes. The first len bytes of s.
 */
static int
policy_check_bucket_n(const char *s, size_t n)
{
	static const char *const bad_pre[] = {"xn--", "sthree-", "amzn-s3-demo-"};
	static const char *const bad_suf[] = {"-s3alias", "--ol-s3", ".mrap"};
	char name[64];
	uint8_t ip[4];

	if (n < 3 || n > 63 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || isdigit((unsigned char)s[i]) ||
		    s[i] == '-' || (s[i] == '.' && s[i + 1] != '.')))
			return -1;
	memcpy(name, s, n);
	name[n] = '\0';
	if (inet_pton(AF_INET, name, ip) == 1)
		return -1;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad_pre); i++)
		if (policy_has_prefix(name, bad_pre[i]))
			return -1;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad_suf); i++)
		if (policy_has_suffix(name, n, bad_suf[i]))
			return -1;
	return 0;
}

static int
policy_check_bucket(const char *s)
{
	return policy_check_bucket_n(s, strlen(s));
}

/* "bucket/key-prefix": a bucket name, '/', then at most 1024 bytes without controls. */
static int
policy_check_s3_prefix(const char *s)
{
	const char *slash = strchr(s, '/');

	if (slash == NULL || policy_check_bucket_n(s, (size_t)(slash - s)) < 0 ||
	    strlen(slash + 1) > POLICY_AWS_KEY_MAX)
		return -1;
	for (const unsigned char *p = (const unsigned char *)slash + 1; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -1;
	return 0;
}

/* IAM role ARN: arn:PARTITION:iam::ACCOUNT(12 digits):role/[PATH/]NAME. */
static int
policy_check_role_arn(const char *s)
{
	const char *p = s + 4, *name;
	size_t n = strlen(s);

	if (n > POLICY_AWS_ARN_MAX || !policy_has_prefix(s, "arn:") || !islower((unsigned char)*p))
		return -1;
	while ((*p >= 'a' && *p <= 'z') || *p == '-')
		p++;
	if (!policy_has_prefix(p, ":iam::"))
		return -1;
	p += 6;
	for (int i = 0; i < 12; i++, p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	if (!policy_has_prefix(p, ":role/"))
		return -1;
	p += 6;
	name = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
	if (*name == '\0' || strlen(name) > POLICY_AWS_ROLE_NAME_MAX)
		return -1;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && strchr("+=,.@_-/", *p) == NULL)
			return -1;
	return 0;
}

/* sts:ExternalId: 1..1224 of [A-Za-z0-9+=,.@:/_-] (STS wants 2 or more: a warning). */
static int
policy_check_external_id(const char *s)
{
	if (strlen(s) > POLICY_AWS_EXTID_MAX)
		return -1;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("+=,.@:/_-", *s) == NULL)
			return -1;
	return 0;
}

/* An access key id: 16..128 letters and digits (checked without quoting it). */
static int
policy_check_akid(const char *s, size_t n)
{
	if (n < POLICY_AWS_AKID_MIN || n > POLICY_AWS_AKID_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return -1;
	return 0;
}

/* One secret of the aws block (key of path); *out stays NULL when absent or bad. */
static void
policy_parse_aws_secret(struct policy_ctx *c, const char *path, json_t *v, const char *key,
    bool required, const char **out, size_t *outlen)
{
	char sub[POLICY_PATH_MAX], *s = NULL;
	json_t *e = json_object_get(v, key);
	int src;

	policy_path_key(sub, sizeof(sub), path, key);
	if (e == NULL) {
		if (required)
			policy_err(c, path, "needs \"%s\"", key);
		return;
	}
	if (policy_secret(c, sub, e, false, &s, outlen, &src) < 0)
		return;
	if (src == SECRET_VALUE)
		policy_warn(c, "%s: %s: inline value is for development only", c->file, sub);
	*out = s;
}

/* A list of the aws block into (*v, *n); check names the form of one entry. */
static int
policy_parse_aws_list(struct policy_ctx *c, const char *path, json_t *v, const char *key,
    policy_check_fn check, const char *what, char ***out, size_t *nout)
{
	char sub[POLICY_PATH_MAX];
	policy_strlist_t l = {0, NULL};
	json_t *e = json_object_get(v, key);
	int rc;

	if (e == NULL)
		return 0;
	policy_path_key(sub, sizeof(sub), path, key);
	rc = policy_strlist(c, sub, e, check, what, false, &l);
	*out = l.v;
	*nout = l.n;
	return rc;
}

/* services (required, non-empty), regions, buckets, prefixes, and how they fit. */
static void
policy_parse_aws_lists(struct policy_ctx *c, const char *path, json_t *v, policy_aws_t *a)
{
	char sub[POLICY_PATH_MAX];
	bool s3 = false;

	if (json_object_get(v, "services") == NULL)
		policy_err(c, path, "needs \"services\"");
	policy_path_key(sub, sizeof(sub), path, "services");
	if (policy_parse_aws_list(c, path, v, "services", policy_check_aws_service,
	    "a service name ([a-z0-9-], like \"s3\" or \"execute-api\")", &a->services,
	    &a->nservices) == 0 && json_object_get(v, "services") && a->nservices == 0)
		policy_err(c, sub, "must list at least one service");
	policy_parse_aws_list(c, path, v, "regions", policy_check_aws_region,
	    "a region (like \"us-east-1\")", &a->regions, &a->nregions);
	policy_parse_aws_list(c, path, v, "buckets", policy_check_bucket,
	    "an S3 bucket name (3 to 63 of [a-z0-9.-], see docs/policy.md)", &a->buckets,
	    &a->nbuckets);
	policy_parse_aws_list(c, path, v, "prefixes", policy_check_s3_prefix,
	    "\"bucket/key-prefix\" with a valid bucket name", &a->prefixes, &a->nprefixes);
	for (size_t i = 0; i < a->nservices; i++)
		s3 |= strcmp(a->services[i], "s3") == 0;
	if ((a->nbuckets > 0 || a->nprefixes > 0) && !s3 && a->nservices > 0)
		policy_err(c, path, "buckets and prefixes restrict S3: list \"s3\" in services");
}

/* Every prefix names a bucket of buckets (a prefix narrows the keys of a listed bucket). */
static void
policy_check_aws_prefixes(struct policy_ctx *c, const char *path, const policy_aws_t *a)
{
	char sub[POLICY_PATH_MAX], sub2[POLICY_PATH_MAX];
	size_t j;

	policy_path_key(sub, sizeof(sub), path, "prefixes");
	for (size_t i = 0; i < a->nprefixes; i++) {
		size_t blen = (size_t)(strchr(a->prefixes[i], '/') - a->prefixes[i]);

		for (j = 0; j < a->nbuckets; j++)
			if (strlen(a->buckets[j]) == blen &&
			    memcmp(a->buckets[j], a->prefixes[i], blen) == 0)
				break;
		if (j < a->nbuckets)
			continue;
		policy_path_index(sub2, sizeof(sub2), sub, i);
		policy_err(c, sub2, "%s names no bucket listed in buckets (list the bucket "
		    "there too)", Q(a->prefixes[i]));
	}
}

/* assume_role.duration: 15m..12h in whole seconds (default SG_AWS_ASSUME_ROLE_DEFAULT_S). */
static void
policy_parse_aws_duration(struct policy_ctx *c, const char *path, json_t *v, policy_aws_t *a)
{
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(v, "duration");
	uint64_t ms;

	a->assume_role.duration_s = SG_AWS_ASSUME_ROLE_DEFAULT_S;
	policy_path_key(sub, sizeof(sub), path, "duration");
	if (e == NULL || policy_duration(c, sub, e, &ms) < 0)
		return;
	if (ms % 1000 != 0 || ms / 1000 < SG_AWS_ASSUME_ROLE_MIN_S ||
	    ms / 1000 > SG_AWS_ASSUME_ROLE_MAX_S)
		policy_err(c, sub, "%s is out of range (15m..12h, whole seconds)",
		    Q(json_string_value(e)));
	else
		a->assume_role.duration_s = (uint32_t)(ms / 1000);
}

/* "assume_role": {"role_arn" (required), "external_id", "duration"}. */
static void
policy_parse_aws_assume(struct policy_ctx *c, const char *path, json_t *v, policy_aws_t *a)
{
	static const char *const keys[] = {"role_arn", "external_id", "duration", NULL};
	char sub[POLICY_PATH_MAX];
	const char *s;
	json_t *e;

	if (policy_object(c, path, v) < 0)
		return;
	policy_check_keys(c, path, v, keys);
	a->assume_role.set = true;
	policy_path_key(sub, sizeof(sub), path, "role_arn");
	if ((e = json_object_get(v, "role_arn")) == NULL)
		policy_err(c, path, "needs \"role_arn\"");
	else if (policy_string(c, sub, e, &s) == 0) {
		if (policy_check_role_arn(s) < 0)
			policy_err(c, sub, "%s is not an IAM role ARN (arn:aws:iam::"
			    "123456789012:role/NAME)", Q(s));
		else
			policy_strdup_to(c, sub, s, &a->assume_role.role_arn);
	}
	policy_path_key(sub, sizeof(sub), path, "external_id");
	if ((e = json_object_get(v, "external_id")) != NULL && policy_string(c, sub, e, &s) == 0) {
		if (policy_check_external_id(s) < 0)
			policy_err(c, sub, "is not an external id (up to 1224 of "
			    "[A-Za-z0-9+=,.@:/_-])");
		else
			policy_strdup_to(c, sub, s, &a->assume_role.external_id);
		if (strlen(s) < POLICY_AWS_EXTID_MIN)
			policy_warn(c, "%s: %s: STS refuses external ids shorter than %d "
			    "characters", c->file, sub, POLICY_AWS_EXTID_MIN);
	}
	policy_parse_aws_duration(c, path, v, a);
}

/*
 * What sealgate will ask STS for (awsrole.h): the role's partition must be one it
 * reaches, and the session policy compiled from the scope must fit STS's limit.
 */
static void
policy_compile_session_policy(struct policy_ctx *c, const char *path, policy_aws_t *a)
{
	char host[AWSROLE_HOST_MAX], region[SIGV4_MAX_REGION + 1];
	size_t len = 0;
	int rc;

	if (a->assume_role.role_arn == NULL || a->nservices == 0)
		return;		/* already reported */
	if (awsrole_endpoint(a, host, region) == AWSROLE_E_PARTITION) {
		policy_err(c, path, "role_arn: sealgate reaches STS in the aws, aws-cn and "
		    "aws-us-gov partitions only");
		return;
	}
	rc = awsrole_session_policy(a, &a->assume_role.session_policy, &len);
	a->assume_role.session_policy_len = len;
	if (rc == AWSROLE_E_TOO_LONG)
		policy_err(c, path, "the session policy compiled from services, regions, "
		    "buckets and prefixes is %zu characters; STS takes at most %d: list fewer "
		    "buckets or prefixes (or shorter ones)", len, AWSROLE_POLICY_MAX);
	else if (rc != AWSROLE_OK)
		policy_err(c, path, "cannot compile the session policy (out of memory)");
}

static void
policy_parse_aws(struct policy_ctx *c, const char *path, json_t *v, policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	policy_aws_t *a;
	json_t *e;

	if (policy_object(c, path, v) < 0)
		return;
	policy_check_keys(c, path, v, policy_aws_keys);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		policy_err(c, path, "out of memory");
		return;
	}
	cr->aws = a;
	policy_parse_aws_secret(c, path, v, "access_key_id", true, &a->access_key_id,
	    &a->access_key_id_len);
	if (a->access_key_id != NULL && policy_check_akid(a->access_key_id,
	    a->access_key_id_len) < 0) {
		policy_path_key(sub, sizeof(sub), path, "access_key_id");
		policy_err(c, sub, "is not an AWS access key id (16 to 128 letters and digits)");
	}
	policy_parse_aws_secret(c, path, v, "session_token", false, &a->session_token,
	    &a->session_token_len);
	policy_parse_aws_lists(c, path, v, a);
	policy_check_aws_prefixes(c, path, a);
	policy_path_key(sub, sizeof(sub), path, "assume_role");
	if ((e = json_object_get(v, "assume_role")) != NULL) {
		policy_parse_aws_assume(c, sub, e, a);
		policy_compile_session_policy(c, sub, a);
	}
}

/* The inject type named by v's "inject" (no messages: the inject parser gives them). */
static int
policy_inject_type_of(json_t *v)
{
	const char *s = json_string_value(json_object_get(json_object_get(v, "inject"),
	    "type"));

	for (size_t i = 0; s != NULL && i < SG_ARRAY_LEN(policy_inject_types); i++)
		if (strcmp(s, policy_inject_types[i]) == 0)
			return (int)i;
	return -1;
}

/* --- the "git" block ------------------------------------------------------------------ */

static int
policy_check_push_ref(const char *s)
{
	return gitpush_pattern_check(s);
}

static void
policy_parse_git_push(struct policy_ctx *c, const char *path, json_t *v,
    policy_git_push_t *g)
{
	static const char *const keys[] = {"refs", "force", "delete", NULL};
	char sub[POLICY_PATH_MAX];
	json_t *e;

	if (policy_object(c, path, v) < 0)
		return;
	policy_check_keys(c, path, v, keys);
	policy_path_key(sub, sizeof(sub), path, "refs");
	if ((e = json_object_get(v, "refs")) == NULL)
		policy_err(c, path, "needs \"refs\"");
	else if (policy_strlist(c, sub, e, policy_check_push_ref, "a push-ref pattern "
	    "(\"refs/...\", '*' within a segment, '**' across, no space ~ ^ : ? [ \\)",
	    false, &g->refs) == 0 && g->refs.n == 0)
		policy_err(c, sub, "must list at least one ref pattern");
	policy_path_key(sub, sizeof(sub), path, "force");
	if ((e = json_object_get(v, "force")) != NULL)
		policy_bool(c, sub, e, &g->allow_force);
	policy_path_key(sub, sizeof(sub), path, "delete");
	if ((e = json_object_get(v, "delete")) != NULL)
		policy_bool(c, sub, e, &g->allow_delete);
}

static void
policy_parse_git(struct policy_ctx *c, const char *path, json_t *v, policy_credential_t *cr)
{
	static const char *const keys[] = {"push", NULL};
	char sub[POLICY_PATH_MAX];
	policy_git_push_t *g;
	json_t *e;

	if (policy_object(c, path, v) < 0)
		return;
	policy_check_keys(c, path, v, keys);
	policy_path_key(sub, sizeof(sub), path, "push");
	if ((e = json_object_get(v, "push")) == NULL) {
		policy_err(c, path, "needs \"push\"");
		return;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		policy_err(c, path, "out of memory");
		return;
	}
	cr->git_push = g;
	policy_parse_git_push(c, sub, e, g);
}

/* "aws" is required on aws_sigv4 credentials and refused on every other type. */
static void
policy_parse_credential_aws(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(v, "aws");
	int type = policy_inject_type_of(v);

	policy_path_key(sub, sizeof(sub), path, "aws");
	if (type == INJECT_AWS_SIGV4 && e == NULL)
		policy_err(c, path, "inject type \"aws_sigv4\" needs \"aws\"");
	else if (type >= 0 && type != INJECT_AWS_SIGV4 && e != NULL)
		policy_err(c, sub, "only used by inject type \"aws_sigv4\" (this credential's "
		    "is \"%s\")", policy_inject_types[type]);
	else if (type == INJECT_AWS_SIGV4)
		policy_parse_aws(c, sub, e, cr);
}

/* --- the "mint" block: a token minted from a root secret ------------------------------- */

static const char *const policy_mint_types[] = {
	[MINT_CLIENT_CREDENTIALS] = "client_credentials", [MINT_REFRESH_TOKEN] = "refresh_token",
	[MINT_GITHUB_APP] = "github_app", [MINT_JWT_BEARER] = "jwt_bearer",
	[MINT_TOKEN_EXCHANGE] = "token_exchange",
};

const char *
policy_mint_name(enum policy_mint_type t)
{
	return (unsigned)t < SG_ARRAY_LEN(policy_mint_types) ? policy_mint_types[t] : "?";
}

/* Printable ASCII, no space at either end, at most SG_POLICY_MINT_FIELD_MAX. */
static int
policy_check_mint_field(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SG_POLICY_MINT_FIELD_MAX || s[0] == ' ' || s[n - 1] == ' ')
		return -1;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return -1;
	return 0;
}

/* Optional string member key of v into *out (checked). */
static void
policy_mint_string(struct policy_ctx *c, const char *path, json_t *v, const char *key,
    char **out)
{
	char sub[POLICY_PATH_MAX];
	const char *s;
	json_t *e;

	policy_path_key(sub, sizeof(sub), path, key);
	if ((e = json_object_get(v, key)) == NULL || policy_string(c, sub, e, &s) < 0)
		return;
	if (policy_check_mint_field(s) < 0)
		policy_err(c, sub, "must be 1 to %d printable characters",
		    SG_POLICY_MINT_FIELD_MAX);
	else
		policy_strdup_to(c, sub, s, out);
}

/* "https://host[:port][/path]" into m (host lower-case, port 443, path "/"). */
static int
policy_mint_url(struct policy_ctx *c, const char *path, const char *s, policy_mint_t *m)
{
	const char *h = s + 8, *end = h + strcspn(h, ":/?#"), *p = end;
	char host[POLICY_HOST_MAX + 1], port[8] = "443";

	if (strncmp(s, "https://", 8) != 0 || strlen(s) > SG_POLICY_MINT_URL_MAX ||
	    end == h || (size_t)(end - h) > POLICY_HOST_MAX || strchr(s, '#') != NULL)
		goto bad;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	for (char *q = host; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	if (*p == ':') {
		size_t n = strspn(p + 1, "0123456789");

		if (n == 0 || n > 5)
			goto bad;
		memcpy(port, p + 1, n);
		port[n] = '\0';
		p += n + 1;
	}
	if ((*p != '\0' && *p != '/') || policy_check_dns_name(host) < 0 ||
	    policy_check_port(port, false) < 0 || policy_check_mint_field(*p ? p : "/") < 0 ||
	    strchr(p, ' ') != NULL)
		goto bad;
	m->port = (uint16_t)atoi(port);
	if (policy_strdup_to(c, path, host, &m->host) < 0 ||
	    policy_strdup_to(c, path, *p ? p : "/", &m->path) < 0 ||
	    policy_strdup_to(c, path, s, &m->token_url) < 0)
		return -1;
	return 0;
bad:
	policy_err(c, path, "%s is not an https:// URL with a host name (https://host[:port]"
	    "/path)", Q(s));
	return -1;
}

/* "params": {"name": "value", ...}: sent with every token request. */
static void
policy_mint_params(struct policy_ctx *c, const char *path, json_t *v, policy_mint_t *m)
{
	char sub[POLICY_PATH_MAX];
	const char *key, *s;
	json_t *e;

	if (policy_object(c, path, v) < 0)
		return;
	if (json_object_size(v) > SG_POLICY_MINT_PARAMS_MAX) {
		policy_err(c, path, "more than %d parameters", SG_POLICY_MINT_PARAMS_MAX);
		return;
	}
	json_object_foreach(v, key, e) {
		policy_path_key(sub, sizeof(sub), path, key);
		if (policy_check_param(key) < 0) {
			policy_err(c, sub, "%s is not a parameter name ([A-Za-z0-9-._~])", Q(key));
			continue;
		}
		if (policy_string(c, sub, e, &s) < 0)
			continue;
		if (policy_check_mint_field(s) < 0)
			policy_err(c, sub, "must be 1 to %d printable characters",
			    SG_POLICY_MINT_FIELD_MAX);
		else if (policy_strlist_add(&m->param_names, key) < 0 ||
		    policy_strlist_add(&m->param_values, s) < 0)
			policy_err(c, sub, "out of memory");
	}
}

/* Secret member key (a secret source; multiline for PEM and JSON keys) into *out. */
static void
policy_mint_secret_to(struct policy_ctx *c, const char *path, json_t *v, const char *key,
    bool multiline, const char **out, size_t *outlen)
{
	char sub[POLICY_PATH_MAX], *sec = NULL;
	size_t len = 0;
	json_t *e;
	int src = SECRET_VALUE;

	policy_path_key(sub, sizeof(sub), path, key);
	if ((e = json_object_get(v, key)) == NULL)
		return;
	if (policy_secret_ex(c, sub, e, false, multiline, &sec, &len, &src) < 0)
		return;
	*out = sec;
	*outlen = len;
	if (src == SECRET_VALUE)
		policy_warn(c, "%s: %s: inline value is for development only", c->file, sub);
}

/* The root secret (required). */
static void
policy_mint_secret(struct policy_ctx *c, const char *path, json_t *v, const char *key,
    bool multiline, policy_mint_t *m)
{
	if (json_object_get(v, key) == NULL)
		policy_err(c, path, "mint type \"%s\" needs \"%s\"", policy_mint_name(m->type),
		    key);
	else
		policy_mint_secret_to(c, path, v, key, multiline, &m->secret, &m->secret_len);
}

/*
 * A one-line root secret that may rotate (client_credentials' client_secret,
 * token_exchange's subject_token): {"file"} read now and watched, {"exec"} run by
 * secwatch; either feeds the credential's live cell (policy_credential_live), which the
 * next mint reads. Other sources as policy_mint_secret.
 */
static void
policy_mint_root(struct policy_ctx *c, const char *path, json_t *v, const char *key,
    policy_credential_t *cr, policy_mint_t *m)
{
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(v, key);
	int src = SECRET_VALUE;
	char *sec = NULL;
	size_t len = 0;

	policy_path_key(sub, sizeof(sub), path, key);
	if (e == NULL || !json_is_object(e) || (json_object_get(e, "exec") == NULL &&
	    json_object_get(e, "file") == NULL)) {
		policy_mint_secret(c, path, v, key, false, m);
		return;
	}
	if (json_object_get(e, "exec") != NULL) {
		policy_parse_secret_exec(c, sub, e, cr);
		return;
	}
	if (policy_secret_ex(c, sub, e, false, false, &sec, &len, &src) < 0)
		return;
	m->secret = sec;
	m->secret_len = len;
	cr->secret_source = SECRET_FILE;
	(void)policy_path(c, sub, json_object_get(e, "file"), &cr->secret_file);
}

/* A Google service-account key (JSON): client_email, private_key, token_uri. The PEM
 * replaces the JSON as the root secret. */
static void
policy_mint_sa_key(struct policy_ctx *c, const char *path, policy_mint_t *m)
{
	char sub[POLICY_PATH_MAX];
	json_t *k = json_loadb(m->secret, m->secret_len, JSON_REJECT_DUPLICATES, NULL);
	const char *email = json_string_value(json_object_get(k, "client_email"));
	const char *pem = json_string_value(json_object_get(k, "private_key"));
	const char *uri = json_string_value(json_object_get(k, "token_uri"));
	char *old = (char *)(uintptr_t)m->secret;
	size_t oldlen = m->secret_len;

	policy_path_key(sub, sizeof(sub), path, "key");
	if (email == NULL || pem == NULL || policy_check_mint_field(email) < 0) {
		policy_err(c, sub, "is not a service-account key (JSON with client_email and "
		    "private_key)");
		json_decref(k);
		return;
	}
	policy_strdup_to(c, sub, email, &m->client_id);
	if (m->token_url == NULL && uri != NULL)
		policy_mint_url(c, sub, uri, m);
	m->secret = secmem_arena_dup(c->p->secrets, pem, strlen(pem));
	m->secret_len = m->secret ? strlen(pem) : 0;
	secmem_arena_drop(c->p->secrets, old, oldlen);
	if (m->secret == NULL)
		policy_err(c, sub, "out of memory for secrets");
	json_decref(k);
}

/* installation_id: digits (a JSON number or a string). */
static void
policy_mint_installation(struct policy_ctx *c, const char *path, json_t *v, policy_mint_t *m)
{
	char sub[POLICY_PATH_MAX], buf[24];
	json_t *e = json_object_get(v, "installation_id");

	policy_path_key(sub, sizeof(sub), path, "installation_id");
	if (e == NULL) {
		policy_err(c, path, "mint type \"github_app\" needs \"installation_id\"");
		return;
	}
	if (json_is_integer(e) && json_integer_value(e) > 0)
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(e));
	else if (json_is_string(e) && json_string_length(e) > 0 && json_string_length(e) < 20 &&
	    strspn(json_string_value(e), "0123456789") == json_string_length(e))
		snprintf(buf, sizeof(buf), "%s", json_string_value(e));
	else {
		policy_err(c, sub, "must be a positive number");
		return;
	}
	policy_strdup_to(c, sub, buf, &m->installation_id);
}

/* github_app: app_id or client_id (the JWT's iss), private_key, installation_id, api_url. */
static void
policy_mint_github(struct policy_ctx *c, const char *path, json_t *v, policy_mint_t *m)
{
	char sub[POLICY_PATH_MAX], url[SG_POLICY_MINT_URL_MAX + 64];
	char *api = NULL, *app = NULL;

	policy_mint_string(c, path, v, "app_id", &app);
	policy_mint_string(c, path, v, "client_id", &m->client_id);
	if ((app == NULL) == (m->client_id == NULL))
		policy_err(c, path, "mint type \"github_app\" needs one of \"app_id\" and "
		    "\"client_id\"");
	if (app != NULL) {
		free(m->client_id);
		m->client_id = app;
	}
	policy_mint_secret(c, path, v, "private_key", true, m);
	policy_mint_installation(c, path, v, m);
	policy_mint_string(c, path, v, "api_url", &api);
	policy_path_key(sub, sizeof(sub), path, api ? "api_url" : "type");
	if (m->installation_id != NULL) {
		size_t n = strlen(api ? api : SG_POLICY_GITHUB_API_URL);

		n -= n > 0 && (api ? api : SG_POLICY_GITHUB_API_URL)[n - 1] == '/';
		snprintf(url, sizeof(url), "%.*s/app/installations/%s/access_tokens", (int)n,
		    api ? api : SG_POLICY_GITHUB_API_URL, m->installation_id);
		policy_mint_url(c, sub, url, m);
	}
	free(api);
}

static void
policy_mint_token_url(struct policy_ctx *c, const char *path, json_t *v, policy_mint_t *m,
    bool required)
{
	char sub[POLICY_PATH_MAX];
	const char *s;
	json_t *e = json_object_get(v, "token_url");

	policy_path_key(sub, sizeof(sub), path, "token_url");
	if (e == NULL) {
		if (required)
			policy_err(c, path, "mint type \"%s\" needs \"token_url\"",
			    policy_mint_name(m->type));
		return;
	}
	if (policy_string(c, sub, e, &s) == 0)
		policy_mint_url(c, sub, s, m);
}

/* client_auth: "basic" (default, RFC 6749 §2.3.1) or "body". */
static void
policy_mint_oauth(struct policy_ctx *c, const char *path, json_t *v, policy_mint_t *m)
{
	static const char *const auths[] = {"basic", "body"};
	char sub[POLICY_PATH_MAX];
	json_t *e;

	policy_mint_token_url(c, path, v, m, m->type != MINT_JWT_BEARER);
	policy_mint_string(c, path, v, "scope", &m->scope);
	policy_mint_string(c, path, v, "audience", &m->audience);
	policy_path_key(sub, sizeof(sub), path, "audiences");
	if ((e = json_object_get(v, "audiences")) != NULL)
		(void)policy_strlist(c, sub, e, policy_check_mint_field, "an audience (1 to "
		    "1024 printable characters)", false, &m->audiences);
	policy_mint_string(c, path, v, "resource", &m->resource);
	policy_path_key(sub, sizeof(sub), path, "params");
	if ((e = json_object_get(v, "params")) != NULL)
		policy_mint_params(c, sub, e, m);
	policy_path_key(sub, sizeof(sub), path, "client_auth");
	if ((e = json_object_get(v, "client_auth")) != NULL)
		m->auth_body = policy_enum(c, sub, e, auths, 2) == 1;
	if (m->type == MINT_JWT_BEARER)
		return;
	policy_mint_string(c, path, v, "client_id", &m->client_id);
	if (m->client_id == NULL)
		policy_err(c, path, "mint type \"%s\" needs \"client_id\"",
		    policy_mint_name(m->type));
}

/* Every setting and the root secret, hashed: what the cache key starts from. */
static void
policy_mint_digest(struct policy_ctx *c, const char *path, policy_mint_t *m)
{
	const char *parts[] = {policy_mint_name(m->type), m->token_url, m->client_id,
	    m->secret, m->client_secret, m->auth_body ? "body" : "basic", m->scope,
	    m->audience, m->resource, m->target_audience, m->installation_id, m->state_file,
	    m->subject_token_type, m->requested_token_type};
	const size_t secret_at = 3, client_secret_at = 4;	/* not NUL-free: their lengths */
	uint8_t h[16];
	crypto_generichash_state st;
	char hex[33];

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	for (size_t i = 0; i < SG_ARRAY_LEN(parts); i++) {
		uint64_t n = parts[i] == NULL ? UINT64_MAX : i == secret_at ? m->secret_len :
		    i == client_secret_at ? m->client_secret_len : strlen(parts[i]);

		crypto_generichash_update(&st, (const unsigned char *)&n, sizeof(n));
		if (parts[i] != NULL)
			crypto_generichash_update(&st, (const unsigned char *)parts[i], n);
	}
	for (size_t i = 0; i < m->param_names.n; i++) {
		crypto_generichash_update(&st, (const unsigned char *)m->param_names.v[i],
		    strlen(m->param_names.v[i]) + 1);
		crypto_generichash_update(&st, (const unsigned char *)m->param_values.v[i],
		    strlen(m->param_values.v[i]) + 1);
	}
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_memzero(&st, sizeof(st));
	util_hex_encode(h, sizeof(h), hex);
	policy_strdup_to(c, path, hex, &m->digest);
}

static const char *const *
policy_mint_keys(enum policy_mint_type t)
{
	static const char *const cc[] = {"type", "token_url", "client_id", "client_secret",
	    "client_auth", "scope", "audience", "audiences", "resource", "params", NULL};
	static const char *const rt[] = {"type", "token_url", "client_id", "client_secret",
	    "client_auth", "scope", "audience", "audiences", "resource", "params",
	    "refresh_token", "state_file", NULL};
	static const char *const gh[] = {"type", "app_id", "client_id", "private_key",
	    "installation_id", "api_url", NULL};
	static const char *const jb[] = {"type", "token_url", "key", "scope",
	    "target_audience", "audience", "audiences", "params", NULL};
	static const char *const te[] = {"type", "token_url", "client_id", "client_secret",
	    "client_auth", "scope", "audience", "audiences", "resource", "params",
	    "subject_token", "subject_token_type", "requested_token_type", NULL};

	return t == MINT_CLIENT_CREDENTIALS ? cc : t == MINT_REFRESH_TOKEN ? rt :
	    t == MINT_GITHUB_APP ? gh : t == MINT_TOKEN_EXCHANGE ? te : jb;
}

static void
policy_mint_by_type(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr, policy_mint_t *m)
{
	char sub[POLICY_PATH_MAX];
	json_t *e;

	switch (m->type) {
	case MINT_CLIENT_CREDENTIALS:
		policy_mint_oauth(c, path, v, m);
		policy_mint_root(c, path, v, "client_secret", cr, m);
		break;
	case MINT_REFRESH_TOKEN:
		policy_mint_oauth(c, path, v, m);
		policy_mint_secret(c, path, v, "refresh_token", false, m);
		policy_mint_secret_to(c, path, v, "client_secret", false, &m->client_secret,
		    &m->client_secret_len);
		policy_path_key(sub, sizeof(sub), path, "state_file");
		if ((e = json_object_get(v, "state_file")) != NULL)
			policy_path(c, sub, e, &m->state_file);
		break;
	case MINT_GITHUB_APP:
		policy_mint_github(c, path, v, m);
		break;
	case MINT_TOKEN_EXCHANGE:
		policy_mint_oauth(c, path, v, m);
		policy_mint_root(c, path, v, "subject_token", cr, m);
		policy_mint_secret_to(c, path, v, "client_secret", false, &m->client_secret,
		    &m->client_secret_len);
		policy_mint_string(c, path, v, "subject_token_type", &m->subject_token_type);
		policy_mint_string(c, path, v, "requested_token_type",
		    &m->requested_token_type);
		if (m->subject_token_type == NULL)
			policy_strdup_to(c, path, SG_POLICY_TOKEN_TYPE_ACCESS,
			    &m->subject_token_type);
		break;
	case MINT_JWT_BEARER:
		policy_mint_secret(c, path, v, "key", true, m);
		policy_mint_oauth(c, path, v, m);
		policy_mint_string(c, path, v, "target_audience", &m->target_audience);
		if (m->secret != NULL)
			policy_mint_sa_key(c, path, m);
		if (m->token_url == NULL && m->secret != NULL)
			policy_err(c, path, "mint type \"jwt_bearer\" needs \"token_url\" (or "
			    "token_uri in the key)");
		if ((m->scope == NULL) == (m->target_audience == NULL))
			policy_err(c, path, "mint type \"jwt_bearer\" needs one of \"scope\" "
			    "and \"target_audience\"");
		break;
	}
}

static void
policy_parse_mint(struct policy_ctx *c, const char *path, json_t *v, policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	policy_mint_t *m;
	int type;

	if (policy_object(c, path, v) < 0)
		return;
	policy_path_key(sub, sizeof(sub), path, "type");
	if (json_object_get(v, "type") == NULL) {
		policy_err(c, path, "needs \"type\"");
		return;
	}
	if ((type = policy_enum(c, sub, json_object_get(v, "type"), policy_mint_types,
	    SG_ARRAY_LEN(policy_mint_types))) < 0)
		return;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		policy_err(c, path, "out of memory");
		return;
	}
	cr->mint = m;
	m->type = (enum policy_mint_type)type;
	policy_check_keys(c, path, v, policy_mint_keys(m->type));
	policy_mint_by_type(c, path, v, cr, m);
	policy_mint_digest(c, path, m);
}

/* "mint" replaces "secret", and its token goes where a header or query secret goes. */
static void
policy_parse_credential_mint(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	char sub[POLICY_PATH_MAX];
	json_t *e = json_object_get(v, "mint");
	int type = policy_inject_type_of(v);

	if (e == NULL) {
		policy_parse_credential_secret(c, path, v, cr);
		return;
	}
	policy_path_key(sub, sizeof(sub), path, "mint");
	if (json_object_get(v, "secret") != NULL)
		policy_err(c, path, "has both \"secret\" and \"mint\" (a minted credential's "
		    "root secret is inside \"mint\")");
	if (type > INJECT_QUERY)
		policy_err(c, sub, "works with inject types bearer, header, basic and query "
		    "(this credential's is \"%s\")", policy_inject_types[type]);
	policy_parse_mint(c, sub, e, cr);
}

static void
policy_parse_credential(struct policy_ctx *c, const char *path, json_t *v,
    policy_credential_t *cr)
{
	static const char *const keys[] = {"secret", "inject", "hosts", "methods", "paths",
	    "rate", "rate_total", "on_cluster_failure", "ttl", "max_ttl", "env",
	    "allow_plain_http", "allow_websocket_binary", "echo_ok_in_body", "aws", "git", "mint",
	    NULL};
	char sub[POLICY_PATH_MAX];
	json_t *e;

	cr->ttl_s = SG_HANDLE_TTL_DEFAULT_S;
	cr->max_ttl_s = SG_HANDLE_MAX_TTL_DEFAULT_S;
	if (policy_object(c, path, v) < 0)
		return;
	policy_check_keys(c, path, v, keys);
	policy_parse_credential_mint(c, path, v, cr);
	policy_path_key(sub, sizeof(sub), path, "inject");
	if ((e = json_object_get(v, "inject")) == NULL)
		policy_err(c, path, "needs \"inject\"");
	else
		policy_parse_inject(c, sub, e, &cr->inject);
	policy_parse_credential_aws(c, path, v, cr);
	policy_path_key(sub, sizeof(sub), path, "git");
	if ((e = json_object_get(v, "git")) != NULL)
		policy_parse_git(c, sub, e, cr);
	policy_parse_credential_scope(c, path, v, cr);
	policy_parse_credential_rest(c, path, v, cr);
	policy_credential_live(c, path, cr);
}

/* Is name free? Reports a clash with the file that defined it first. */
static int
policy_name_ok(struct policy_ctx *c, const char *section, const char *name, bool taken,
    const char *other_file)
{
	char sub[POLICY_PATH_MAX];

	if (policy_check_name(name) < 0) {
		policy_err(c, section, "%s is not a valid name ([A-Za-z0-9_.-], 1 to 64 "
		    "characters)", Q(name));
		return -1;
	}
	if (taken) {
		policy_path_key(sub, sizeof(sub), section, name);
		policy_err(c, sub, "also defined in %s", other_file);
		return -1;
	}
	return 0;
}

/*
 * A named table of the policy (credentials, sandboxes, templates). Each entry type starts
 * with its name; the table remembers which file each entry came from (for "also defined
 * in" errors). Entries are parsed in place as they are appended.
 */
struct policy_table {
	const char *section;
	void **arr;
	size_t *n;
	size_t size;
	char ***files;
	size_t *cap;			/* allocated entries of arr and files */
	policy_index_t *index;		/* names of arr (kept in the snapshot) */
	void (*parse)(struct policy_ctx *, const char *, json_t *, void *);
};

_Static_assert(offsetof(policy_credential_t, name) == 0, "entries start with their name");
_Static_assert(offsetof(policy_sandbox_t, name) == 0, "entries start with their name");
_Static_assert(offsetof(policy_template_t, name) == 0, "entries start with their name");

static ssize_t
policy_table_find(const struct policy_table *t, const char *name)
{
	return policy_index_find(t->index, *t->arr, t->size, *t->n, name);
}

/* A zeroed entry called name (new to the table) at the end of t, or NULL. */
static void *
policy_table_append(struct policy_ctx *c, const struct policy_table *t, const char *name)
{
	size_t n = *t->n;
	char *entry;

	if (policy_arrays_reserve(t->arr, t->size, t->files, n, t->cap) < 0)
		return NULL;
	entry = (char *)*t->arr + n * t->size;
	memset(entry, 0, t->size);
	*(char **)(void *)entry = strdup(name);
	(*t->files)[n] = strdup(c->file);
	(*t->n)++;
	if (*(char **)(void *)entry == NULL || (*t->files)[n] == NULL ||
	    policy_index_add(t->index, name, n) < 0)
		return NULL;
	return entry;
}

static void
policy_parse_table(struct policy_ctx *c, json_t *v, const struct policy_table *t)
{
	char sub[POLICY_PATH_MAX], *entry;
	const char *name;
	json_t *e;

	if (policy_object(c, t->section, v) < 0)
		return;
	for (void *it = json_object_iter(v); it != NULL &&
	    (name = json_object_iter_key(it)) != NULL &&
	    (e = json_object_iter_value(it)) != NULL; it = json_object_iter_next(v, it)) {
		ssize_t old = policy_table_find(t, name);

		if (policy_name_ok(c, t->section, name, old >= 0,
		    old >= 0 ? (*t->files)[old] : NULL) < 0)
			continue;
		policy_path_key(sub, sizeof(sub), t->section, name);
		if ((entry = policy_table_append(c, t, name)) == NULL) {
			policy_err(c, sub, "out of memory");
			return;
		}
		t->parse(c, sub, e, entry);
	}
}

static void
policy_parse_credential_entry(struct policy_ctx *c, const char *path, json_t *v, void *e)
{
	policy_parse_credential(c, path, v, e);
}

static void
policy_parse_credentials(struct policy_ctx *c, json_t *v)
{
	struct policy_table t = {"credentials", (void **)&c->p->credentials,
	    &c->p->ncredentials, sizeof(policy_credential_t), &c->cred_file, &c->cred_cap,
	    &c->p->credential_index, policy_parse_credential_entry};

	policy_parse_table(c, v, &t);
}

/* --- sandboxes ------------------------------------------------------------------------ */

static void
policy_parse_sandbox_token(struct policy_ctx *c, const char *path, json_t *v,
    policy_sandbox_t *sb)
{
	size_t len;
	int src;

	if (policy_secret(c, path, v, false, &sb->token, &len, &src) < 0)
		return;
	if (src == SECRET_VALUE)
		policy_warn(c, "%s: %s: inline value is for development only", c->file, path);
}

static void
policy_parse_sandbox(struct policy_ctx *c, const char *path, json_t *v,
    policy_sandbox_t *sb)
{
	static const char *const keys[] = {"addresses", "credentials", "rate", "token", NULL};
	char sub[POLICY_PATH_MAX];
	json_t *e;

	if (policy_object(c, path, v) < 0)
		return;
	policy_check_keys(c, path, v, keys);
	policy_path_key(sub, sizeof(sub), path, "addresses");
	if ((e = json_object_get(v, "addresses")) == NULL)
		policy_err(c, path, "needs \"addresses\"");
	else if (policy_cidrs(c, sub, e, &sb->addresses, &sb->naddresses) == 0 &&
	    sb->naddresses == 0)
		policy_err(c, sub, "must list at least one address");
	policy_path_key(sub, sizeof(sub), path, "credentials");
	if ((e = json_object_get(v, "credentials")) != NULL)
		policy_strlist(c, sub, e, policy_check_name, "a credential name", false,
		    &sb->credentials);
	policy_path_key(sub, sizeof(sub), path, "rate");
	if ((e = json_object_get(v, "rate")) != NULL)
		policy_parse_rate(c, sub, e, &sb->rate);
	policy_path_key(sub, sizeof(sub), path, "token");
	if ((e = json_object_get(v, "token")) != NULL)
		policy_parse_sandbox_token(c, sub, e, sb);
}

static void
policy_parse_sandbox_entry(struct policy_ctx *c, const char *path, json_t *v, void *e)
{
	policy_parse_sandbox(c, path, v, e);
}

static void
policy_parse_sandboxes(struct policy_ctx *c, json_t *v)
{
	struct policy_table t = {"sandboxes", (void **)&c->p->sandboxes, &c->p->nsandboxes,
	    sizeof(policy_sandbox_t), &c->sb_file, &c->sb_cap, &c->p->sandbox_index,
	    policy_parse_sandbox_entry};

	policy_parse_table(c, v, &t);
}

/* --- sandbox templates ----------------------------------------------------------------- */

static void
policy_parse_template(struct policy_ctx *c, const char *path, json_t *v,
    policy_template_t *t)
{
	static const char *const keys[] = {"credentials", "rate", "ttl", "max_ttl",
		"token_required", NULL};
	char sub[POLICY_PATH_MAX];
	json_t *e;

	if (policy_object(c, path, v) < 0)
		return;
	policy_check_keys(c, path, v, keys);
	policy_path_key(sub, sizeof(sub), path, "credentials");
	if ((e = json_object_get(v, "credentials")) != NULL)
		policy_strlist(c, sub, e, policy_check_name, "a credential name", false,
		    &t->credentials);
	policy_path_key(sub, sizeof(sub), path, "rate");
	if ((e = json_object_get(v, "rate")) != NULL)
		policy_parse_rate(c, sub, e, &t->rate);
	policy_path_key(sub, sizeof(sub), path, "ttl");
	if ((e = json_object_get(v, "ttl")) != NULL)
		policy_parse_ttl(c, sub, e, &t->ttl_s, &t->ttl_sandbox);
	policy_path_key(sub, sizeof(sub), path, "max_ttl");
	if ((e = json_object_get(v, "max_ttl")) != NULL)
		policy_parse_max_ttl(c, sub, e, &t->max_ttl_s);
	policy_path_key(sub, sizeof(sub), path, "token_required");
	if ((e = json_object_get(v, "token_required")) != NULL)
		policy_bool(c, sub, e, &t->token_required);
}

static void
policy_parse_template_entry(struct policy_ctx *c, const char *path, json_t *v, void *e)
{
	policy_parse_template(c, path, v, e);
}

static void
policy_parse_templates(struct policy_ctx *c, json_t *v)
{
	struct policy_table t = {"sandbox_templates", (void **)&c->p->templates,
	    &c->p->ntemplates, sizeof(policy_template_t), &c->tpl_file, &c->tpl_cap,
	    &c->p->template_index, policy_parse_template_entry};

	policy_parse_table(c, v, &t);
}

/* "state": {"dir": PATH} — where the sandbox registry journal lives. */
static void
policy_parse_state(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"dir", NULL};
	json_t *e;

	if (policy_object(c, "state", v) < 0)
		return;
	policy_check_keys(c, "state", v, keys);
	if ((e = json_object_get(v, "dir")) != NULL)
		policy_path(c, "state.dir", e, &c->p->state_dir);
}

/* An absolute http(s) URL without blanks or control characters. */
static int
policy_check_url(const char *s)
{
	if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		return -1;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return -1;
	return 0;
}

/* "metadata": {"url": URL} — named in sandbox_mismatch answers. */
static void
policy_parse_metadata(struct policy_ctx *c, json_t *v)
{
	static const char *const keys[] = {"url", NULL};
	const char *s;
	json_t *e;

	if (policy_object(c, "metadata", v) < 0)
		return;
	policy_check_keys(c, "metadata", v, keys);
	if ((e = json_object_get(v, "url")) == NULL ||
	    policy_string(c, "metadata.url", e, &s) < 0)
		return;
	if (strlen(s) > POLICY_URL_MAX || policy_check_url(s) < 0) {
		policy_err(c, "metadata.url", "%s is not an http:// or https:// URL (at most "
		    "%d characters)", Q(s), POLICY_URL_MAX);
		return;
	}
	policy_strdup_to(c, "metadata.url", s, &c->p->metadata_url);
}

/* --- whole policy --------------------------------------------------------------------- */

static const struct policy_section {
	const char *name;
	void (*parse)(struct policy_ctx *, json_t *);
	int singleton;		/* enum policy_section_id, or -1 for merged sections */
} policy_sections[] = {
	{"listen", policy_parse_listen, SEC_LISTEN},
	{"keys", policy_parse_keys, SEC_KEYS},
	{"upstream", policy_parse_upstream, -1},
	{"admin", policy_parse_admin, SEC_ADMIN},
	{"audit", policy_parse_audit, SEC_AUDIT},
	{"revocations", policy_parse_revocations, SEC_REVOCATIONS},
	{"egress", policy_parse_egress, SEC_EGRESS},
	{"limits", policy_parse_limits, SEC_LIMITS},
	{"credentials", policy_parse_credentials, -1},
	{"sandboxes", policy_parse_sandboxes, -1},
	{"sandbox_templates", policy_parse_templates, -1},
	{"state", policy_parse_state, SEC_STATE},
	{"metadata", policy_parse_metadata, SEC_METADATA},
	{"cluster", policy_parse_cluster, SEC_CLUSTER},
};

static const char *const policy_top_keys[] = {"$schema", "listen", "keys", "upstream",
	"admin", "audit", "revocations", "egress", "limits", "credentials", "sandboxes", "sandbox_templates", "state", "metadata", "cluster", NULL};

/*
 * upstream is merged (resolve entries) but ca_file is a singleton: a second file that
 * sets it clashes.
 */
static int
policy_claim_section(struct policy_ctx *c, const char *name, int id)
{
	if (id < 0)
		return 0;
	if (c->section_file[id] != NULL) {
		policy_err(c, name, "section also defined in %s (each section but credentials, "
		    "sandboxes, sandbox_templates and upstream.resolve may appear in one file only)",
		    c->section_file[id]);
		return -1;
	}
	c->section_file[id] = strdup(c->file);
	return 0;
}

static void
policy_parse_root(struct policy_ctx *c, json_t *root)
{
	json_t *v, *ca;

	if (policy_object(c, "", root) < 0)
		return;
	policy_check_keys(c, "", root, policy_top_keys);
	for (size_t i = 0; i < SG_ARRAY_LEN(policy_sections); i++) {
		const struct policy_section *s = &policy_sections[i];

		if ((v = json_object_get(root, s->name)) == NULL)
			continue;
		if (policy_claim_section(c, s->name, s->singleton) < 0)
			continue;
		if (strcmp(s->name, "upstream") == 0 && json_is_object(v) &&
		    (ca = json_object_get(v, "ca_file")) != NULL &&
		    policy_claim_section(c, "upstream.ca_file", SEC_UPSTREAM) < 0)
			continue;
		s->parse(c, v);
	}
}

static void
policy_parse_text(struct policy_ctx *c, const char *name, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *root;

	c->file = name;
	if (c->first_file == NULL && (c->first_file = strdup(name)) == NULL) {
		policy_err(c, NULL, "out of memory");
		return;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		char *msg = NULL;

		if (asprintf(&msg, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text) < 0)
			msg = NULL;
		policy_errors_push(c, msg);
		return;
	}
	policy_parse_root(c, root);
	json_decref(root);
}

static void
policy_load_file(struct policy_ctx *c, const char *path)
{
	char *buf = NULL, err[512];
	size_t len = 0;

	c->file = path;
	if (util_read_file(path, SG_POLICY_MAX_FILE, 0, &buf, &len, err, sizeof(err)) < 0) {
		policy_errors_push(c, strdup(err));
		return;
	}
	policy_parse_text(c, path, buf, len);
	free(buf);
}

static int
policy_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A policy file of a directory: *.json, not a dot file, not a JSON Schema. */
static int
policy_is_json_name(const char *n)
{
	size_t len = strlen(n);

	if (n[0] == '.' || len <= 5 || strcmp(n + len - 5, ".json") != 0)
		return 0;
	if (strcmp(n, "schema.json") == 0)
		return 0;
	return len <= 12 || strcmp(n + len - 12, ".schema.json") != 0;
}

/* Every policy file of dir (see policy_is_json_name), sorted by name, merged. */
static void
policy_load_dir(struct policy_ctx *c, const char *dir)
{
	policy_strlist_t names = {0, NULL};
	struct dirent *de;
	DIR *d;

	c->file = dir;
	if ((d = opendir(dir)) == NULL) {
		policy_err(c, NULL, "%s", strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *full = NULL;

		if (!policy_is_json_name(de->d_name))
			continue;
		if (asprintf(&full, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
		    de->d_name) < 0 ||
		    policy_strlist_add(&names, full) < 0)
			policy_err(c, NULL, "out of memory");
		free(full);
	}
	closedir(d);
	if (names.n == 0) {
		policy_err(c, NULL, "no *.json files in this directory");
		return;
	}
	qsort(names.v, names.n, sizeof(*names.v), policy_cmp_str);
	for (size_t i = 0; i < names.n; i++)
		policy_load_file(c, names.v[i]);
	policy_strlist_free(&names);
}

/* --- checks across sections ------------------------------------------------------------ */

/*
 * Every credential that section.owner (defined in file) grants must exist. Did-you-mean
 * compares with every credential name: only worked out for a message that is kept.
 */
static void
policy_check_grant_list(struct policy_ctx *c, const char *section, const char *owner,
    const char *file, const policy_strlist_t *grants)
{
	char sub[POLICY_PATH_MAX];

	c->file = file;
	for (size_t j = 0; j < grants->n; j++) {
		const char *want = grants->v[j], *hint = NULL;

		if (policy_credential_find(c->p, want) != NULL)
			continue;
		snprintf(sub, sizeof(sub), "%s.%s.credentials[%zu]", section, owner, j);
		if (c->errs->n < SG_POLICY_MAX_ERRORS)
			hint = policy_suggest_in(want, c->p->credentials,
			    sizeof(*c->p->credentials), c->p->ncredentials);
		policy_err(c, sub, "unknown credential %s%s%s%s", Q(want),
		    hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
	}
}

static void
policy_check_grants(struct policy_ctx *c)
{
	policy_t *p = c->p;

	for (size_t i = 0; i < p->nsandboxes; i++)
		policy_check_grant_list(c, "sandboxes", p->sandboxes[i].name, c->sb_file[i],
		    &p->sandboxes[i].credentials);
	for (size_t i = 0; i < p->ntemplates; i++)
		policy_check_grant_list(c, "sandbox_templates", p->templates[i].name,
		    c->tpl_file[i], &p->templates[i].credentials);
}

/* First overlap between two sandboxes' ranges, reported once per pair. */
static void
policy_check_overlap_pair(struct policy_ctx *c, size_t i, size_t j)
{
	const policy_sandbox_t *a = &c->p->sandboxes[i], *b = &c->p->sandboxes[j];
	char sub[POLICY_PATH_MAX], ta[NETADDR_CIDR_TEXT_MAX], tb[NETADDR_CIDR_TEXT_MAX];

	for (size_t x = 0; x < b->naddresses; x++)
		for (size_t y = 0; y < a->naddresses; y++) {
			if (!netaddr_cidr_overlap(&b->addresses[x], &a->addresses[y]))
				continue;
			c->file = c->sb_file[j];
			snprintf(sub, sizeof(sub), "sandboxes.%s.addresses", b->name);
			policy_err(c, sub, "%s of sandbox \"%s\" overlaps %s of sandbox \"%s\" "
			    "(%s); a source address must name one sandbox",
			    netaddr_cidr_format(&b->addresses[x], tb, sizeof(tb)), b->name,
			    netaddr_cidr_format(&a->addresses[y], ta, sizeof(ta)), a->name,
			    c->sb_file[i]);
			return;
		}
}

/* An address range of a sandbox, and an ordered pair of sandboxes (i < j). */
struct policy_addr_ref {
	const netaddr_cidr_t *cidr;
	size_t sb;
};

struct policy_sb_pair {
	size_t i, j;
};

/* By family, then network address, then wider ranges first (they contain the rest). */
static int
policy_cmp_addr_ref(const void *a, const void *b)
{
	const netaddr_cidr_t *x = ((const struct policy_addr_ref *)a)->cidr;
	const netaddr_cidr_t *y = ((const struct policy_addr_ref *)b)->cidr;
	int d;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if ((d = memcmp(x->addr, y->addr, sizeof(x->addr))) != 0)
		return d;
	return (int)x->prefix - (int)y->prefix;
}

/* In the order of the pairwise loop: by j, then by i. */
static int
policy_cmp_sb_pair(const void *a, const void *b)
{
	const struct policy_sb_pair *x = a, *y = b;

	if (x->j != y->j)
		return x->j < y->j ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Every address range of every sandbox, sorted (policy_cmp_addr_ref); NULL: no memory. */
static struct policy_addr_ref *
policy_overlap_refs(const policy_t *p, size_t *n)
{
	struct policy_addr_ref *refs;
	size_t total = 0;

	for (size_t k = 0; k < p->nsandboxes; k++)
		total += p->sandboxes[k].naddresses;
	if ((refs = calloc(total + 1, sizeof(*refs))) == NULL)
		return NULL;
	*n = 0;
	for (size_t k = 0; k < p->nsandboxes; k++)
		for (size_t x = 0; x < p->sandboxes[k].naddresses; x++)
			refs[(*n)++] = (struct policy_addr_ref){&p->sandboxes[k].addresses[x], k};
	qsort(refs, *n, sizeof(*refs), policy_cmp_addr_ref);
	return refs;
}

static int
policy_overlap_pair_add(struct policy_sb_pair **v, size_t *n, size_t *cap, size_t a,
    size_t b)
{
	struct policy_sb_pair *nv;

	if (a == b)
		return 0;
	if (*n == *cap) {
		if (*cap >= POLICY_OVERLAP_PAIRS_MAX)
			return -1;
		*cap = *cap ? *cap * 2 : 64;
		if ((nv = realloc(*v, *cap * sizeof(*nv))) == NULL)
			return -1;
		*v = nv;
	}
	(*v)[(*n)++] = (struct policy_sb_pair){a < b ? a : b, a < b ? b : a};
	return 0;
}

/*
 * Sandbox pairs with overlapping ranges, sorted and unique. Two ranges overlap when one
 * contains the other; in sorted order the ranges containing the current one are a
 * nested chain (a stack). 0, or -1 when out of memory or over POLICY_OVERLAP_PAIRS_MAX.
 */
static int
policy_overlap_pairs(const struct policy_addr_ref *refs, size_t n,
    struct policy_sb_pair **out, size_t *nout)
{
	const struct policy_addr_ref **stack = calloc(n + 1, sizeof(*stack));
	size_t depth = 0, cap = 0, m = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	for (size_t k = 0; stack != NULL && rc == 0 && k < n; k++) {
		while (depth > 0 && !netaddr_cidr_overlap(stack[depth - 1]->cidr, refs[k].cidr))
			depth--;
		for (size_t d = 0; d < depth && rc == 0; d++)
			rc = policy_overlap_pair_add(out, nout, &cap, stack[d]->sb, refs[k].sb);
		stack[depth++] = &refs[k];
	}
	free(stack);
	if (stack == NULL || rc < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	if (*nout > 0)
		qsort(*out, *nout, sizeof(**out), policy_cmp_sb_pair);
	for (size_t k = 0; k < *nout; k++)
		if (m == 0 || (*out)[k].i != (*out)[m - 1].i || (*out)[k].j != (*out)[m - 1].j)
			(*out)[m++] = (*out)[k];
	*nout = m;
	return 0;
}

/*
 * No address may name two sandboxes: report each overlapping pair, ordered as if every
 * pair (i < j) were compared. Ranges are sorted to find the pairs (n log n); when there
 * are too many, every pair is compared.
 */
static void
policy_check_overlaps(struct policy_ctx *c)
{
	struct policy_addr_ref *refs;
	struct policy_sb_pair *pairs = NULL;
	size_t nrefs = 0, npairs = 0;

	refs = policy_overlap_refs(c->p, &nrefs);
	if (refs != NULL && policy_overlap_pairs(refs, nrefs, &pairs, &npairs) == 0) {
		for (size_t k = 0; k < npairs; k++)
			policy_check_overlap_pair(c, pairs[k].i, pairs[k].j);
	} else {
		for (size_t j = 1; j < c->p->nsandboxes; j++)
			for (size_t i = 0; i < j; i++)
				policy_check_overlap_pair(c, i, j);
	}
	free(pairs);
	free(refs);
}

/* Fleet mode keeps a durable local copy of revocations: it needs revocations.file. */
static void
policy_check_cluster(struct policy_ctx *c)
{
	const char *file = c->file;

	if (!c->p->cluster.set || c->p->revocations_file != NULL || c->cluster_file == NULL)
		return;
	c->file = c->cluster_file;
	policy_err(c, "cluster", "needs revocations.file: each sidecar keeps its own durable "
	    "copy of the shared revocations");
	c->file = file;
}

static void
policy_apply_defaults(struct policy_ctx *c)
{
	policy_t *p = c->p;
	int rc = 0;

	if (c->first_file == NULL)
		return;
	c->file = c->first_file;
	if (!c->listen_seen) {
		rc |= policy_strdup_to(c, "listen", SG_POLICY_LISTEN_PROXY, &p->listen.proxy);
		rc |= policy_strdup_to(c, "listen", SG_POLICY_LISTEN_METADATA,
		    &p->listen.metadata);
		rc |= policy_strdup_to(c, "listen", SG_POLICY_LISTEN_ADMIN, &p->listen.admin);
	}
	rc |= policy_default_path(c, &p->keys.seal_key, SG_POLICY_SEAL_KEY);
	rc |= policy_default_path(c, &p->keys.ca_cert, SG_POLICY_CA_CERT);
	rc |= policy_default_path(c, &p->keys.ca_key, SG_POLICY_CA_KEY);
	rc |= policy_default_path(c, &p->admin_token_file, SG_POLICY_ADMIN_TOKEN);
	if (p->audit_path == NULL)
		rc |= policy_strdup_to(c, "audit", "-", &p->audit_path);
	if (p->metadata_url == NULL)
		rc |= policy_strdup_to(c, "metadata", SG_POLICY_METADATA_URL, &p->metadata_url);
	if (p->state_dir == NULL && p->keys.seal_key != NULL) {
		const char *slash = strrchr(p->keys.seal_key, '/');

		p->state_dir = slash == NULL ? strdup(".") : slash == p->keys.seal_key ?
		    strdup("/") : strndup(p->keys.seal_key, (size_t)(slash - p->keys.seal_key));
		rc |= p->state_dir == NULL ? -1 : 0;
	}
	if (rc != 0)
		policy_err(c, NULL, "out of memory");
}

/* --- lifecycle ------------------------------------------------------------------------ */

static void
policy_aws_list_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The aws block (its secrets are in p->secrets). */
static void
policy_aws_free(policy_aws_t *a)
{
	if (a == NULL)
		return;
	policy_aws_list_free(a->services, a->nservices);
	policy_aws_list_free(a->regions, a->nregions);
	policy_aws_list_free(a->buckets, a->nbuckets);
	policy_aws_list_free(a->prefixes, a->nprefixes);
	free(a->assume_role.role_arn);
	free(a->assume_role.external_id);
	free(a->assume_role.session_policy);
	free(a);
}

static void
policy_mint_free(policy_mint_t *m)
{
	if (m == NULL)
		return;
	free(m->token_url);
	free(m->host);
	free(m->path);
	free(m->client_id);
	free(m->scope);
	free(m->audience);
	free(m->resource);
	free(m->target_audience);
	policy_strlist_free(&m->param_names);
	policy_strlist_free(&m->audiences);
	policy_strlist_free(&m->param_values);
	free(m->installation_id);
	free(m->subject_token_type);
	free(m->requested_token_type);
	free(m->state_file);
	free(m->digest);
	free(m);	/* the secret is in p->secrets */
}

static void
policy_credential_free(policy_credential_t *cr)
{
	policy_mint_free((policy_mint_t *)(uintptr_t)cr->mint);
	policy_aws_free((policy_aws_t *)(uintptr_t)cr->aws);
	if (cr->git_push != NULL) {
		policy_strlist_free(&((policy_git_push_t *)(uintptr_t)cr->git_push)->refs);
		free((void *)(uintptr_t)cr->git_push);
	}
	free(cr->name);		/* the secret is in p->secrets */
	free(cr->secret_file);
	policy_strlist_free(&cr->exec.argv);
	if (cr->live != NULL) {
		snapshot_cell_fini(cr->live);	/* drops the current value */
		free(cr->live);
	}
	free(cr->inject.name);
	free(cr->inject.format);
	free(cr->inject.username);
	free(cr->inject.param);
	free(cr->inject.placeholder);
	policy_strlist_free(&cr->hosts);
	policy_strlist_free(&cr->methods);
	policy_strlist_free(&cr->paths);
	free(cr->env);
}

static void
policy_sandbox_free(policy_sandbox_t *sb)
{
	free(sb->name);
	free(sb->addresses);
	policy_strlist_free(&sb->credentials);	/* the token is in p->secrets */
}

static void
policy_free(policy_t *p)
{
	if (p == NULL)
		return;
	free(p->source);
	free(p->listen.proxy);
	free(p->listen.metadata);
	free(p->listen.admin);
	free(p->listen.metadata_aws);
	free(p->listen.transparent);
	free(p->keys.seal_key);
	free(p->keys.ca_cert);
	free(p->keys.ca_key);
	policy_strlist_free(&p->keys.open_keys);
	policy_strlist_free(&p->keys.retired_key_ids);
	free(p->upstream.ca_file);
	for (size_t i = 0; i < p->upstream.nresolve; i++) {
		free(p->upstream.resolve[i].host);
		free(p->upstream.resolve[i].address);
	}
	free(p->upstream.resolve);
	free(p->admin_token_file);
	free(p->audit_path);
	free(p->revocations_file);
	free(p->cluster.address);
	free(p->cluster.user);
	free(p->cluster.prefix);
	free(p->cluster.node);	/* cluster.password: in p->secrets */
	policy_strlist_free(&p->egress.allow_hosts);
	policy_strlist_free(&p->egress.deny_hosts);
	policy_strlist_free(&p->egress.tunnel_hosts);
	free(p->egress.allow_private);
	for (size_t i = 0; i < p->ncredentials; i++)
		policy_credential_free(&p->credentials[i]);
	free(p->credentials);
	for (size_t i = 0; i < p->nsandboxes; i++)
		policy_sandbox_free(&p->sandboxes[i]);
	free(p->sandboxes);
	for (size_t i = 0; i < p->ntemplates; i++) {
		free(p->templates[i].name);
		policy_strlist_free(&p->templates[i].credentials);
	}
	free(p->templates);
	free(p->state_dir);
	free(p->metadata_url);
	policy_strlist_free(&p->warnings);
	policy_index_free(&p->credential_index);
	policy_index_free(&p->sandbox_index);
	policy_index_free(&p->template_index);
	secmem_arena_free(p->secrets);	/* zeroes every secret and token */
	free(p);
}

static int
policy_ctx_init(struct policy_ctx *c, const char *source, policy_errors_t *errs)
{
	memset(c, 0, sizeof(*c));
	memset(errs, 0, sizeof(*errs));
	c->errs = errs;
	c->file = source;
	c->p = calloc(1, sizeof(*c->p));
	if (c->p == NULL || (c->p->source = strdup(source)) == NULL ||
	    (c->p->secrets = secmem_arena_new()) == NULL) {
		policy_err(c, NULL, "out of memory");
		policy_free(c->p);
		c->p = NULL;
		return -1;
	}
	c->p->limits = (policy_limits_t){
		.header_timeout_ms = SG_HEADER_TIMEOUT_S * 1000ull,
		.idle_timeout_ms = SG_IDLE_TIMEOUT_S * 1000ull,
		.connect_timeout_ms = SG_CONNECT_TIMEOUT_S * 1000ull,
		.tls_timeout_ms = SG_TLS_TIMEOUT_S * 1000ull,
		.upstream_timeout_ms = SG_UPSTREAM_TIMEOUT_S * 1000ull,
		.drain_timeout_ms = SG_DRAIN_TIMEOUT_S * 1000ull,
		.park_after_ms = SG_PARK_MS,
		.max_header_bytes = SG_MAX_HEADER_BYTES,
		.max_connections = SG_MAX_CONNECTIONS,
		.workers = 0,
		.failed_handles = SG_FAIL_LIMIT,
		.failed_handles_window_ms = SG_FAIL_WINDOW_S * 1000ull,
		.max_decoded_bytes = SG_DECODE_MAX_BYTES,
	};
	c->p->egress.intercept = INTERCEPT_CREDENTIALS;
	return 0;
}

static void
policy_files_free(char **v, size_t n)
{
	for (size_t i = 0; i < n && v != NULL; i++)
		free(v[i]);
	free(v);
}

/* Checks across files, defaults; the snapshot, or NULL with errors filled. */
static policy_t *
policy_ctx_finish(struct policy_ctx *c)
{
	policy_t *p = c->p;

	if (p != NULL) {
		policy_check_grants(c);
		policy_check_overlaps(c);
		policy_check_cluster(c);
		policy_apply_defaults(c);
	}
	if (c->dropped > 0) {
		char *msg = NULL;
		size_t more = c->dropped;

		if (asprintf(&msg, "\u2026 and %zu more", more) < 0)
			msg = NULL;
		if (policy_errors_append(c->errs, msg) == 0)
			c->dropped = 0;
	}
	if (p != NULL) {
		policy_files_free(c->cred_file, p->ncredentials);
		policy_files_free(c->sb_file, p->nsandboxes);
		policy_files_free(c->tpl_file, p->ntemplates);
		policy_files_free(c->resolve_file, p->upstream.nresolve);
	}
	policy_index_free(&c->resolve_index);
	for (size_t i = 0; i < SEC_NSINGLETONS; i++)
		free(c->section_file[i]);
	free(c->first_file);
	free(c->cluster_file);
	if (policy_nerrors(c) > 0 || p == NULL) {
		policy_free(p);
		return NULL;
	}
	p->refcnt = 1;
	return p;
}

policy_t *
policy_load(const char *path, policy_errors_t *errs)
{
	struct policy_ctx c;
	struct stat st;

	if (policy_ctx_init(&c, path, errs) < 0)
		return policy_ctx_finish(&c);
	if (stat(path, &st) < 0)
		policy_err(&c, NULL, "%s", strerror(errno));
	else if (S_ISDIR(st.st_mode))
		policy_load_dir(&c, path);
	else
		policy_load_file(&c, path);
	return policy_ctx_finish(&c);
}

policy_t *
policy_load_buffer(const char *name, const char *json, size_t len, policy_errors_t *errs)
{
	struct policy_ctx c;

	if (policy_ctx_init(&c, name, errs) == 0)
		policy_parse_text(&c, name, json, len);
	return policy_ctx_finish(&c);
}

void
policy_errors_free(policy_errors_t *errs)
{
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

policy_t *
policy_ref(policy_t *p)
{
	if (p != NULL)
		__atomic_add_fetch(&p->refcnt, 1, __ATOMIC_RELAXED);
	return p;
}

void
policy_unref(policy_t *p)
{
	if (p != NULL && __atomic_sub_fetch(&p->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		policy_free(p);
}

const policy_credential_t *
policy_credential_find(const policy_t *p, const char *name)
{
	ssize_t i = policy_index_find(&p->credential_index, p->credentials,
	    sizeof(*p->credentials), p->ncredentials, name);

	return i < 0 ? NULL : &p->credentials[i];
}

const policy_sandbox_t *
policy_sandbox_find(const policy_t *p, const char *name)
{
	ssize_t i = policy_index_find(&p->sandbox_index, p->sandboxes, sizeof(*p->sandboxes),
	    p->nsandboxes, name);

	return i < 0 ? NULL : &p->sandboxes[i];
}

const policy_template_t *
policy_template_find(const policy_t *p, const char *name)
{
	ssize_t i = policy_index_find(&p->template_index, p->templates, sizeof(*p->templates),
	    p->ntemplates, name);

	return i < 0 ? NULL : &p->templates[i];
}

bool
policy_template_grants(const policy_template_t *t, const char *credential)
{
	for (size_t i = 0; i < t->credentials.n; i++)
		if (strcmp(t->credentials.v[i], credential) == 0)
			return true;
	return false;
}

bool
policy_sandbox_grants(const policy_sandbox_t *sb, const char *credential)
{
	for (size_t i = 0; i < sb->credentials.n; i++)
		if (strcmp(sb->credentials.v[i], credential) == 0)
			return true;
	return false;
}

/* --- the published snapshot (snapshot.h) ------------------------------------------- */

static void
policy_cell_ref(void *p)
{
	(void)policy_ref(p);
}

static void
policy_cell_unref(void *p)
{
	policy_unref(p);
}

/* Under the cell's lock, before workers can see p: it learns its generation. */
static void
policy_cell_published(void *p, uint64_t gen)
{
	if (p != NULL)
		((policy_t *)p)->generation = gen;
}

void
policy_publish(policy_t *p)
{
	(void)snapshot_publish(&policy_cell, p);
}

policy_t *
policy_acquire(void)
{
	return snapshot_acquire(&policy_cell);
}

uint64_t
policy_published_generation(void)
{
	return snapshot_generation(&policy_cell);
}

void
policy_shutdown(void)
{
	policy_publish(NULL);
}
