/*
 * revoke.c — revocation set: four sorted arrays (handle ids, sandboxes, credentials,
 * key ids) searched with bsearch; the JSON file read and rewritten with jansson.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "revoke.h"
#include "snapshot.h"

enum revoke_kind { RK_HANDLE, RK_SANDBOX, RK_CREDENTIAL, RK_KEY, RK_NKINDS };

/* Kind names (revoke_check, revoke_add) and their file sections, by enum revoke_kind. */
static const char *const revoke_kinds[RK_NKINDS] = {"handle", "sandbox", "credential",
	"key"};
static const char *const revoke_sections[RK_NKINDS] = {"handles", "sandboxes",
	"credentials", "keys"};

struct revoke_entry {
	char *name;
	int64_t ts;
};

struct revoke_list {
	struct revoke_entry *v;
	size_t n;
};

struct revoke_set {
	int refcnt;			/* atomic */
	struct revoke_list l[RK_NKINDS];
};

static void revoke_cell_ref(void *rs);
static void revoke_cell_unref(void *rs);

static const snapshot_ops_t revoke_cell_ops = {revoke_cell_ref, revoke_cell_unref, NULL};
static snapshot_cell_t revoke_cell = SNAPSHOT_CELL_INIT(&revoke_cell_ops);	/* published */
static pthread_mutex_t revoke_write_mtx = PTHREAD_MUTEX_INITIALIZER;	/* revoke_add */

static int revoke_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
revoke_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
revoke_kind_of(const char *kind)
{
	for (int k = 0; k < RK_NKINDS; k++)
		if (strcmp(kind, revoke_kinds[k]) == 0)
			return k;
	return -1;
}

/* --- values --------------------------------------------------------------------------- */

static int
revoke_is_hex(const char *s, size_t want)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return i == want;
}

static int
revoke_is_name(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return i > 0 && i <= REVOKE_MAX_NAME;
}

static int
revoke_kind_valid(int k, const char *value)
{
	switch (k) {
	case RK_HANDLE:
		return revoke_is_hex(value, HANDLE_HID_LEN);
	case RK_KEY:
		return revoke_is_hex(value, SEAL_KEY_ID_LEN);
	default:
		return revoke_is_name(value);
	}
}

static const char *
revoke_kind_want(int k)
{
	switch (k) {
	case RK_HANDLE:
		return "a handle id: 32 hex digits";
	case RK_KEY:
		return "a key id: 8 hex digits";
	default:
		return "a name of 1 to 256 printable characters";
	}
}

int
revoke_value_valid(const char *kind, const char *value, char *err, size_t errlen)
{
	int k = revoke_kind_of(kind);

	if (k < 0)
		return revoke_errf(err, errlen, "unknown revocation kind '%.32s' (want handle, "
		    "sandbox, credential or key)", kind);
	if (!revoke_kind_valid(k, value))
		return revoke_errf(err, errlen, "bad %s '%.80s': want %s", kind, value,
		    revoke_kind_want(k));
	return 0;
}

/* malloc'd copy of value as stored: hex kinds lower-case. */
static char *
revoke_value_dup(int k, const char *value)
{
	char *s = strdup(value);

	if (s != NULL && (k == RK_HANDLE || k == RK_KEY))
		for (char *p = s; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return s;
}

/* --- the set ---------------------------------------------------------------------------- */

static void
revoke_free(revoke_set_t *rs)
{
	for (int k = 0; k < RK_NKINDS; k++) {
		for (size_t i = 0; i < rs->l[k].n; i++)
			free(rs->l[k].v[i].name);
		free(rs->l[k].v);
	}
	free(rs);
}

revoke_set_t *
revoke_ref(revoke_set_t *rs)
{
	if (rs != NULL)
		__atomic_add_fetch(&rs->refcnt, 1, __ATOMIC_RELAXED);
	return rs;
}

void
revoke_unref(revoke_set_t *rs)
{
	if (rs != NULL && __atomic_sub_fetch(&rs->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		revoke_free(rs);
}

size_t
revoke_count(const revoke_set_t *rs)
{
	size_t n = 0;

	for (int k = 0; rs != NULL && k < RK_NKINDS; k++)
		n += rs->l[k].n;
	return n;
}

static int
revoke_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct revoke_entry *)a)->name,
	    ((const struct revoke_entry *)b)->name);
}

/* Sort and merge repeats (same id in two spellings of case), keeping the latest ts. */
static void
revoke_list_sort(struct revoke_list *l)
{
	size_t out = 0;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof(*l->v), revoke_entry_cmp);
	for (size_t i = 1; i < l->n; i++) {
		if (strcmp(l->v[i].name, l->v[out].name) == 0) {
			if (l->v[i].ts > l->v[out].ts)
				l->v[out].ts = l->v[i].ts;
			free(l->v[i].name);
		} else
			l->v[++out] = l->v[i];
	}
	l->n = out + 1;
}

static const struct revoke_entry *
revoke_find(const struct revoke_list *l, const char *name)
{
	struct revoke_entry key = {(char *)name, 0};

	if (l->n == 0)
		return NULL;
	return bsearch(&key, l->v, l->n, sizeof(*l->v), revoke_entry_cmp);
}

int
revoke_check(const revoke_set_t *rs, const handle_claims_t *c, const char **kind)
{
	const struct revoke_entry *e;
	int hit = -1;

	if (rs == NULL)
		return 0;
	if (revoke_find(&rs->l[RK_HANDLE], c->hid) != NULL)
		hit = RK_HANDLE;
	else if (c->sb && (e = revoke_find(&rs->l[RK_SANDBOX], c->sb)) && c->iat <= e->ts)
		hit = RK_SANDBOX;
	else if (c->cred && (e = revoke_find(&rs->l[RK_CREDENTIAL], c->cred)) &&
	    c->iat <= e->ts)
		hit = RK_CREDENTIAL;
	else if (revoke_find(&rs->l[RK_KEY], c->key_id) != NULL)
		hit = RK_KEY;
	if (hit < 0)
		return 0;
	if (kind != NULL)
		*kind = revoke_kinds[hit];
	return 1;
}

/* --- parsing ---------------------------------------------------------------------------- */

/* One section object into l (unsorted). 0, or -1 with err "name: section.key: msg". */
static int
revoke_parse_section(const char *name, int k, json_t *obj, struct revoke_list *l,
    char *err, size_t errlen)
{
	const char *sect = revoke_sections[k], *key;
	json_t *v;

	if (!json_is_object(obj))
		return revoke_errf(err, errlen, "%s: %s: want an object of %s -> unix time",
		    name, sect, revoke_kinds[k]);
	if ((l->v = calloc(json_object_size(obj) + 1, sizeof(*l->v))) == NULL)
		return revoke_errf(err, errlen, "%s: out of memory", name);
	json_object_foreach(obj, key, v) {
		if (!revoke_kind_valid(k, key))
			return revoke_errf(err, errlen, "%s: %s.%.80s: not %s", name, sect, key,
			    revoke_kind_want(k));
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return revoke_errf(err, errlen, "%s: %s.%.80s: want a unix time "
			    "(non-negative integer seconds)", name, sect, key);
		if ((l->v[l->n].name = revoke_value_dup(k, key)) == NULL)
			return revoke_errf(err, errlen, "%s: out of memory", name);
		l->v[l->n++].ts = (int64_t)json_integer_value(v);
	}
	revoke_list_sort(l);
	return 0;
}

static int
revoke_section_of(const char *key)
{
	for (int k = 0; k < RK_NKINDS; k++)
		if (strcmp(key, revoke_sections[k]) == 0)
			return k;
	return -1;
}

/* Build a set from a parsed document. NULL with err set. */
static revoke_set_t *
revoke_from_json(const char *name, json_t *root, char *err, size_t errlen)
{
	revoke_set_t *rs;
	const char *key;
	json_t *v;
	int k;

	if (!json_is_object(root)) {
		revoke_errf(err, errlen, "%s: want a JSON object with handles, sandboxes, "
		    "credentials and keys", name);
		return NULL;
	}
	if ((rs = calloc(1, sizeof(*rs))) == NULL) {
		revoke_errf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	rs->refcnt = 1;
	json_object_foreach(root, key, v) {
		if ((k = revoke_section_of(key)) < 0) {
			revoke_errf(err, errlen, "%s: %.80s: unknown section (want handles, "
			    "sandboxes, credentials or keys)", name, key);
			goto fail;
		}
		if (revoke_parse_section(name, k, v, &rs->l[k], err, errlen) < 0)
			goto fail;
	}
	return rs;
fail:
	revoke_free(rs);
	return NULL;
}

static json_t *
revoke_parse_json(const char *name, const char *json, size_t len, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);

	if (root == NULL)
		revoke_errf(err, errlen, "%s:%d:%d: %s", name, jerr.line, jerr.column,
		    jerr.text);
	return root;
}

revoke_set_t *
revoke_load_buffer(const char *name, const char *json, size_t len, char *err,
    size_t errlen)
{
	json_t *root = revoke_parse_json(name, json, len, err, errlen);
	revoke_set_t *rs;

	if (root == NULL)
		return NULL;
	rs = revoke_from_json(name, root, err, errlen);
	json_decref(root);
	return rs;
}

/* The file's bytes; *missing set (and 0 returned) when there is no file. */
static int
revoke_read(const char *path, char **buf, size_t *len, int *missing, char *err,
    size_t errlen)
{
	struct stat st;

	*buf = NULL;
	*len = 0;
	*missing = 0;
	if (stat(path, &st) < 0 && errno == ENOENT) {
		*missing = 1;
		return 0;
	}
	return util_read_file(path, REVOKE_MAX_FILE, 0, buf, len, err, errlen);
}

revoke_set_t *
revoke_load(const char *path, char *err, size_t errlen)
{
	revoke_set_t *rs;
	size_t len;
	char *buf;
	int missing;

	if (revoke_read(path, &buf, &len, &missing, err, errlen) < 0)
		return NULL;
	if (missing) {
		if ((rs = calloc(1, sizeof(*rs))) != NULL)
			rs->refcnt = 1;
		else
			revoke_errf(err, errlen, "%s: out of memory", path);
		return rs;
	}
	rs = revoke_load_buffer(path, buf, len, err, errlen);
	free(buf);
	return rs;
}

/* --- adding ----------------------------------------------------------------------------- */

/* The current document at path (a new empty object when missing), validated. */
static json_t *
revoke_doc_load(const char *path, char *err, size_t errlen)
{
	revoke_set_t *rs;
	json_t *root;
	size_t len;
	char *buf;
	int missing;

	if (revoke_read(path, &buf, &len, &missing, err, errlen) < 0)
		return NULL;
	if (missing)
		return json_object();
	root = revoke_parse_json(path, buf, len, err, errlen);
	free(buf);
	if (root == NULL || (rs = revoke_from_json(path, root, err, errlen)) == NULL) {
		json_decref(root);
		return NULL;
	}
	revoke_unref(rs);
	return root;
}

/* Set section[value] = now in root. 0 changed, 1 nothing to change, -1 no memory. */
static int
revoke_doc_set(json_t *root, int k, const char *value, int64_t now)
{
	json_t *sect = json_object_get(root, revoke_sections[k]), *old;
	bool absolute = k == RK_HANDLE || k == RK_KEY;

	if (sect == NULL) {
		if ((sect = json_object()) == NULL ||
		    json_object_set_new(root, revoke_sections[k], sect) < 0)
			return -1;
	}
	old = json_object_get(sect, value);
	if (old != NULL && (absolute || json_integer_value(old) >= now))
		return 1;
	return json_object_set_new(sect, value, json_integer((json_int_t)now)) < 0 ? -1 : 0;
}

static int
revoke_doc_write(const char *path, json_t *root, char *err, size_t errlen)
{
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS), *nl;
	size_t len;
	int rc;

	if (text == NULL)
		return revoke_errf(err, errlen, "%s: out of memory", path);
	len = strlen(text);
	if ((nl = realloc(text, len + 2)) == NULL) {
		free(text);
		return revoke_errf(err, errlen, "%s: out of memory", path);
	}
	text = nl;
	memcpy(text + len, "\n", 2);	/* a text file ends with a newline */
	rc = util_write_file(path, text, len + 1, 0600, err, errlen);
	free(text);
	return rc;
}

/* Take the cross-process lock "path.lock"; the fd, or -1 with err set. */
static int
revoke_lock(const char *path, char *err, size_t errlen)
{
	char lock[4096];
	int fd;

	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock))
		return revoke_errf(err, errlen, "%s: path too long", path);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return revoke_errf(err, errlen, "%s: %s", lock, strerror(errno));
	if (flock(fd, LOCK_EX) < 0) {
		revoke_errf(err, errlen, "%s: %s", lock, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
revoke_add_locked(const char *path, int k, const char *value, int64_t now, char *err,
    size_t errlen)
{
	json_t *root = revoke_doc_load(path, err, errlen);
	int rc;

	if (root == NULL)
		return -1;
	rc = revoke_doc_set(root, k, value, now);
	if (rc < 0)
		revoke_errf(err, errlen, "%s: out of memory", path);
	else if (rc == 0 && revoke_doc_write(path, root, err, errlen) < 0)
		rc = -1;
	json_decref(root);
	return rc;
}

int
revoke_add(const char *path, const char *kind, const char *value, int64_t now, char *err,
    size_t errlen)
{
	char *stored;
	int k, fd, rc;

	if (revoke_value_valid(kind, value, err, errlen) < 0)
		return -1;
	if (now < 0)
		return revoke_errf(err, errlen, "revocation time %lld is negative",
		    (long long)now);
	k = revoke_kind_of(kind);
	if ((stored = revoke_value_dup(k, value)) == NULL)
		return revoke_errf(err, errlen, "out of memory");
	pthread_mutex_lock(&revoke_write_mtx);
	if ((fd = revoke_lock(path, err, errlen)) < 0)
		rc = -1;
	else {
		rc = revoke_add_locked(path, k, stored, now, err, errlen);
		close(fd);	/* releases the flock */
	}
	pthread_mutex_unlock(&revoke_write_mtx);
	free(stored);
	return rc;
}

/* --- records: sets from Redis entries, differences, batches ---------------------------- */

static int
revoke_record_check(const revoke_record_t *r, char *err, size_t errlen)
{
	if (r->kind == NULL || r->value == NULL)
		return revoke_errf(err, errlen, "record without kind or value");
	if (revoke_value_valid(r->kind, r->value, err, errlen) < 0)
		return -1;
	if (r->ts < 0)
		return revoke_errf(err, errlen, "revocation time %lld is negative",
		    (long long)r->ts);
	return 0;
}

revoke_set_t *
revoke_from_records(const revoke_record_t *recs, size_t n, char *err, size_t errlen)
{
	revoke_set_t *rs = calloc(1, sizeof(*rs));

	if (rs == NULL)
		goto nomem;
	rs->refcnt = 1;
	for (int k = 0; k < RK_NKINDS; k++)
		if ((rs->l[k].v = calloc(n + 1, sizeof(*rs->l[k].v))) == NULL)
			goto nomem;
	for (size_t i = 0; i < n; i++) {
		struct revoke_list *l;
		int k;

		if (revoke_record_check(&recs[i], err, errlen) < 0)
			goto fail;
		k = revoke_kind_of(recs[i].kind);
		l = &rs->l[k];
		if ((l->v[l->n].name = revoke_value_dup(k, recs[i].value)) == NULL)
			goto nomem;
		l->v[l->n++].ts = recs[i].ts;
	}
	for (int k = 0; k < RK_NKINDS; k++)
		revoke_list_sort(&rs->l[k]);
	return rs;
nomem:
	revoke_errf(err, errlen, "out of memory");
fail:
	if (rs != NULL)
		revoke_free(rs);
	return NULL;
}

/* Does b cover entry e of kind k? */
static bool
revoke_covered(const revoke_set_t *b, int k, const struct revoke_entry *e)
{
	const struct revoke_entry *o = b == NULL ? NULL : revoke_find(&b->l[k], e->name);

	if (o == NULL)
		return false;
	return k == RK_HANDLE || k == RK_KEY || o->ts >= e->ts;
}

long
revoke_diff(const revoke_set_t *a, const revoke_set_t *b, revoke_record_cb cb, void *arg)
{
	long calls = 0;

	for (int k = 0; a != NULL && k < RK_NKINDS; k++)
		for (size_t i = 0; i < a->l[k].n; i++) {
			const struct revoke_entry *e = &a->l[k].v[i];
			revoke_record_t rec = {revoke_kinds[k], e->name, e->ts};

			if (revoke_covered(b, k, e))
				continue;
			if (cb(&rec, arg) < 0)
				return -1;
			calls++;
		}
	return calls;
}

static long
revoke_add_records_locked(const char *path, const revoke_record_t *recs, size_t n,
    char *err, size_t errlen)
{
	json_t *root = revoke_doc_load(path, err, errlen);
	long changed = 0;
	int rc = 0;

	if (root == NULL)
		return -1;
	for (size_t i = 0; i < n && rc >= 0; i++) {
		int k = revoke_kind_of(recs[i].kind);
		char *stored = revoke_value_dup(k, recs[i].value);

		rc = stored == NULL ? -1 : revoke_doc_set(root, k, stored, recs[i].ts);
		changed += rc == 0;
		free(stored);
	}
	if (rc < 0)
		changed = revoke_errf(err, errlen, "%s: out of memory", path);
	else if (changed > 0 && revoke_doc_write(path, root, err, errlen) < 0)
		changed = -1;
	json_decref(root);
	return changed;
}

long
revoke_add_records(const char *path, const revoke_record_t *recs, size_t n, char *err,
    size_t errlen)
{
	long changed;
	int fd;

	for (size_t i = 0; i < n; i++)
		if (revoke_record_check(&recs[i], err, errlen) < 0)
			return -1;
	pthread_mutex_lock(&revoke_write_mtx);
	if ((fd = revoke_lock(path, err, errlen)) < 0)
		changed = -1;
	else {
		changed = revoke_add_records_locked(path, recs, n, err, errlen);
		close(fd);	/* releases the flock */
	}
	pthread_mutex_unlock(&revoke_write_mtx);
	return changed;
}

/* --- the published set ------------------------------------------------------------------ */

static void
revoke_cell_ref(void *rs)
{
	(void)revoke_ref(rs);
}

static void
revoke_cell_unref(void *rs)
{
	revoke_unref(rs);
}

void
revoke_publish(revoke_set_t *rs)
{
	(void)snapshot_publish(&revoke_cell, rs);
}

revoke_set_t *
revoke_acquire(void)
{
	return snapshot_acquire(&revoke_cell);
}

uint64_t
revoke_published_generation(void)
{
	return snapshot_generation(&revoke_cell);
}

void
revoke_shutdown(void)
{
	revoke_publish(NULL);
}
