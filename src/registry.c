/*
 * registry.c — run-time sandboxes: immutable refcounted snapshots published through a
 * snapshot.h cell, an append-only checksummed journal (fsync before answering),
 * compaction on open, and the sandbox view shared by authz and metadata.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "log.h"
#include "netaddr.h"
#include "registry.h"
#include "secmem.h"
#include "snapshot.h"

#define REG_CKSUM_LEN	8	/* bytes of the BLAKE2b-128 digest kept per record */

struct reg_range {
	uint8_t lo[16], hi[16];		/* IPv4 as ::ffff:a.b.c.d */
	const registry_entry_t *e;
};

struct reg_tomb {
	char *id;
	int64_t at;
	const char *reason;		/* static "deleted" / "expired" */
};

struct registry_snapshot {
	int refcnt;
	uint64_t generation;
	registry_entry_t **byid;	/* sorted by id */
	size_t n;
	struct reg_range *ranges;	/* sorted by lo; never overlapping */
	size_t nranges;
	struct reg_tomb *tombs;		/* sorted by id */
	size_t ntombs;
	size_t nsuspended;		/* entries suspended (reg_snapshot_index) */
};

struct registry {
	pthread_mutex_t mu;		/* serialises writers */
	char *dir, *path;
	int fd;
	registry_snapshot_t *cur;	/* the writer's reference to the published one */
	uint64_t generation;
	registry_load_info_t info;
};

static void reg_cell_ref(void *s);
static void reg_cell_unref(void *s);
static void reg_cell_published(void *s, uint64_t gen);

/* The published snapshot (snapshot.h): readers hold a reference for as long as they use
 * anything in it; a replaced snapshot is freed when its last reader lets go. */
static const snapshot_ops_t reg_cell_ops = {reg_cell_ref, reg_cell_unref,
    reg_cell_published};
static snapshot_cell_t reg_cell = SNAPSHOT_CELL_INIT(&reg_cell_ops);
static registry_t *reg_global;
static size_t reg_suspended_pub;	/* nsuspended of the published snapshot (atomic) */

static const policy_strlist_t reg_no_creds = {0, NULL};
static const policy_rate_t reg_no_rate = {0};

/* --- fields (what a PUT sets: entries and specs) ---------------------------------- */

static void
reg_fields_free(registry_fields_t *f)
{
	for (size_t i = 0; i < f->nlabels; i++) {
		free(f->label_keys[i]);
		free(f->label_values[i]);
	}
	free(f->label_keys);
	free(f->label_values);
	free(f->template_name);
	free(f->addresses);
	free(f->restored_from);
	memset(f, 0, sizeof(*f));
}

/* Room for n labels in f, which has none yet. 0, or -1 (out of memory). */
static int
reg_labels_alloc(registry_fields_t *f, size_t n)
{
	if (n == 0)
		return 0;
	f->label_keys = calloc(n, sizeof(char *));
	f->label_values = calloc(n, sizeof(char *));
	return f->label_keys != NULL && f->label_values != NULL ? 0 : -1;
}

/* Append copies of (key, value) in the room reg_labels_alloc made. 0, or -1. */
static int
reg_label_add(registry_fields_t *f, const char *key, const char *value)
{
	size_t i = f->nlabels++;

	f->label_keys[i] = strdup(key);
	f->label_values[i] = strdup(value);
	return f->label_keys[i] != NULL && f->label_values[i] != NULL ? 0 : -1;
}

/* dst becomes a copy of src, sharing nothing. 0, or -1 (out of memory: reg_fields_free
 * dst). */
static int
reg_fields_copy(registry_fields_t *dst, const registry_fields_t *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->expires_at = src->expires_at;
	dst->restored_at = src->restored_at;
	dst->template_name = strdup(src->template_name);
	dst->restored_from = src->restored_from ? strdup(src->restored_from) : NULL;
	dst->addresses = calloc(src->naddresses + 1, sizeof(*dst->addresses));
	if (dst->template_name == NULL || dst->addresses == NULL ||
	    (src->restored_from != NULL && dst->restored_from == NULL) ||
	    reg_labels_alloc(dst, src->nlabels) < 0)
		return -1;
	memcpy(dst->addresses, src->addresses, src->naddresses * sizeof(*src->addresses));
	dst->naddresses = src->naddresses;
	for (size_t i = 0; i < src->nlabels; i++)
		if (reg_label_add(dst, src->label_keys[i], src->label_values[i]) < 0)
			return -1;
	return 0;
}

/* --- entries ------------------------------------------------------------------------ */

static void
reg_entry_free(registry_entry_t *e)
{
	if (e == NULL)
		return;
	free(e->id);
	reg_fields_free(&e->f);
	free(e->parent);
	lineage_free(&e->lineage);
	secmem_guarded_free(e->token_hash);
	free(e);
}

static registry_entry_t *
reg_entry_ref(registry_entry_t *e)
{
	__atomic_add_fetch(&e->refcnt, 1, __ATOMIC_RELAXED);
	return e;
}

static void
reg_entry_unref(registry_entry_t *e)
{
	if (e != NULL && __atomic_sub_fetch(&e->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		reg_entry_free(e);
}

/* The template's rate for the stable policy-shaped record (rate buckets). */
static void
reg_entry_fill_sb(registry_entry_t *e, const policy_t *p)
{
	const policy_template_t *t = p ? policy_template_find(p, e->f.template_name) : NULL;

	e->sb.name = e->id;
	e->sb.addresses = e->f.addresses;
	e->sb.naddresses = e->f.naddresses;
	e->sb.rate = t ? t->rate : reg_no_rate;
}

/* --- snapshots ---------------------------------------------------------------------- */

static void
reg_snapshot_free(registry_snapshot_t *s)
{
	for (size_t i = 0; i < s->n; i++)
		reg_entry_unref(s->byid[i]);
	for (size_t i = 0; i < s->ntombs; i++)
		free(s->tombs[i].id);
	free(s->byid);
	free(s->ranges);
	free(s->tombs);
	free(s);
}

registry_snapshot_t *
registry_snapshot_ref(registry_snapshot_t *s)
{
	if (s != NULL)
		__atomic_add_fetch(&s->refcnt, 1, __ATOMIC_RELAXED);
	return s;
}

void
registry_unref(registry_snapshot_t *s)
{
	if (s != NULL && __atomic_sub_fetch(&s->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		reg_snapshot_free(s);
}

static void
reg_cell_ref(void *s)
{
	(void)registry_snapshot_ref(s);
}

static void
reg_cell_unref(void *s)
{
	registry_unref(s);
}

/* Under the cell's lock: the suspended count follows the published snapshot exactly. */
static void
reg_cell_published(void *s, uint64_t gen)
{
	(void)gen;
	__atomic_store_n(&reg_suspended_pub, s ? ((registry_snapshot_t *)s)->nsuspended : 0,
	    __ATOMIC_RELEASE);
}

registry_snapshot_t *
registry_acquire(void)
{
	return snapshot_acquire(&reg_cell);
}

uint64_t
registry_published_generation(void)
{
	return snapshot_generation(&reg_cell);
}

/* Publish s (NULL: unpublish); the writer keeps its own reference (r->cur). */
static void
reg_publish(registry_snapshot_t *s)
{
	(void)snapshot_publish(&reg_cell, registry_snapshot_ref(s));
}

static int
reg_cmp_range(const void *a, const void *b)
{
	return memcmp(((const struct reg_range *)a)->lo, ((const struct reg_range *)b)->lo, 16);
}

static int
reg_cmp_entry(const void *a, const void *b)
{
	return strcmp((*(registry_entry_t *const *)a)->id, (*(registry_entry_t *const *)b)->id);
}

static int
reg_cmp_tomb(const void *a, const void *b)
{
	return strcmp(((const struct reg_tomb *)a)->id, ((const struct reg_tomb *)b)->id);
}

/* Sort, index the ranges. 0 or -1 (out of memory). */
static int
reg_snapshot_index(registry_snapshot_t *s)
{
	size_t nr = 0, k = 0;

	if (s->n > 0)
		qsort(s->byid, s->n, sizeof(*s->byid), reg_cmp_entry);
	if (s->ntombs > 0)
		qsort(s->tombs, s->ntombs, sizeof(*s->tombs), reg_cmp_tomb);
	s->nsuspended = 0;
	for (size_t i = 0; i < s->n; i++) {
		nr += s->byid[i]->f.naddresses;
		s->nsuspended += s->byid[i]->suspended_at != 0;
	}
	free(s->ranges);
	s->ranges = nr ? calloc(nr, sizeof(*s->ranges)) : NULL;
	if (nr && s->ranges == NULL)
		return -1;
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->byid[i]->f.naddresses; j++, k++) {
			netaddr_cidr_bounds(&s->byid[i]->f.addresses[j], s->ranges[k].lo,
			    s->ranges[k].hi);
			s->ranges[k].e = s->byid[i];
		}
	s->nranges = nr;
	if (nr > 0)
		qsort(s->ranges, nr, sizeof(*s->ranges), reg_cmp_range);
	return 0;
}

/* A copy of s sharing its entries (each referenced again), or NULL. */
static registry_snapshot_t *
reg_snapshot_copy(const registry_snapshot_t *s)
{
	registry_snapshot_t *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->refcnt = 1;
	if (s == NULL)
		return c;
	c->generation = s->generation;
	/* +1: room for one more entry / tombstone without another allocation */
	c->byid = calloc(s->n + 1, sizeof(*c->byid));
	c->tombs = calloc(s->ntombs + 1, sizeof(*c->tombs));
	if (c->byid == NULL || c->tombs == NULL) {
		reg_snapshot_free(c);
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++)
		c->byid[c->n++] = reg_entry_ref(s->byid[i]);
	for (size_t i = 0; i < s->ntombs; i++) {
		if ((c->tombs[i].id = strdup(s->tombs[i].id)) == NULL) {
			reg_snapshot_free(c);
			return NULL;
		}
		c->tombs[i].at = s->tombs[i].at;
		c->tombs[i].reason = s->tombs[i].reason;
		c->ntombs++;
	}
	return c;
}

static ssize_t
reg_index_of(const registry_snapshot_t *s, const char *id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->byid[mid]->id, id);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static ssize_t
reg_tomb_index(const registry_snapshot_t *s, const char *id)
{
	size_t lo = 0, hi = s->ntombs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->tombs[mid].id, id);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Remove entry id from an unpublished copy (its reference dropped). */
static void
reg_copy_remove(registry_snapshot_t *c, const char *id)
{
	ssize_t i = reg_index_of(c, id);

	if (i < 0)
		return;
	reg_entry_unref(c->byid[i]);
	memmove(&c->byid[i], &c->byid[i + 1], (c->n - (size_t)i - 1) * sizeof(*c->byid));
	c->n--;
}

static void
reg_copy_untomb(registry_snapshot_t *c, const char *id)
{
	ssize_t i = reg_tomb_index(c, id);

	if (i < 0)
		return;
	free(c->tombs[i].id);
	memmove(&c->tombs[i], &c->tombs[i + 1], (c->ntombs - (size_t)i - 1) *
	    sizeof(*c->tombs));
	c->ntombs--;
}

/* Add a tombstone to a copy that has room for one (reg_snapshot_copy leaves it). */
static int
reg_copy_tomb(registry_snapshot_t *c, const char *id, int64_t at, const char *reason)
{
	char *d;

	reg_copy_untomb(c, id);
	if (c->ntombs >= REGISTRY_MAX_TOMBSTONES) {
		/* the oldest goes: its handles are the likeliest to have expired */
		size_t old = 0;

		for (size_t i = 1; i < c->ntombs; i++)
			if (c->tombs[i].at < c->tombs[old].at)
				old = i;
		free(c->tombs[old].id);
		c->tombs[old] = c->tombs[--c->ntombs];
	}
	if ((d = strdup(id)) == NULL)
		return -1;
	/* field by field: cppcheck loses d in a compound literal (a false memleak) */
	c->tombs[c->ntombs].id = d;
	c->tombs[c->ntombs].at = at;
	c->tombs[c->ntombs].reason = reason;
	c->ntombs++;
	qsort(c->tombs, c->ntombs, sizeof(*c->tombs), reg_cmp_tomb);
	return 0;
}

uint64_t
registry_generation(const registry_snapshot_t *s)
{
	return s ? s->generation : 0;
}

size_t
registry_count(const registry_snapshot_t *s)
{
	return s ? s->n : 0;
}

const registry_entry_t *
registry_at(const registry_snapshot_t *s, size_t i)
{
	return s && i < s->n ? s->byid[i] : NULL;
}

const registry_entry_t *
registry_find(const registry_snapshot_t *s, const char *id)
{
	ssize_t i;

	if (s == NULL || id == NULL)
		return NULL;
	i = reg_index_of(s, id);
	return i < 0 ? NULL : s->byid[i];
}

const registry_entry_t *
registry_find_addr(const registry_snapshot_t *s, const struct sockaddr *sa)
{
	uint8_t key[16];
	size_t lo = 0, hi;

	if (s == NULL || sa == NULL || s->nranges == 0 || netaddr_key(sa, key) < 0)
		return NULL;
	/* the last range whose lo <= key */
	hi = s->nranges;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(s->ranges[mid].lo, key, 16) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	return memcmp(key, s->ranges[lo - 1].hi, 16) <= 0 ? s->ranges[lo - 1].e : NULL;
}

size_t
registry_suspended_count(const registry_snapshot_t *s)
{
	return s ? s->nsuspended : 0;
}

size_t
registry_suspended_published(void)
{
	return __atomic_load_n(&reg_suspended_pub, __ATOMIC_ACQUIRE);
}

const char *
registry_tombstone(const registry_snapshot_t *s, const char *id)
{
	ssize_t i;

	if (s == NULL || id == NULL)
		return NULL;
	i = reg_tomb_index(s, id);
	return i < 0 ? NULL : s->tombs[i].reason;
}

/* --- text forms --------------------------------------------------------------------- */

bool
registry_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > REGISTRY_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '.' &&
		    id[i] != '-')
			return false;
	return true;
}

static bool
reg_label_value_ok(const char *v)
{
	if (strlen(v) > REGISTRY_LABEL_VALUE_MAX)
		return false;
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || (unsigned char)*v == 0x7f)
			return false;
	return true;
}

int
registry_parse_time(const char *s, int64_t now, int64_t *out)
{
	struct tm tm;
	const char *rest;
	uint64_t ms;
	char *end;
	long long v;
	int64_t off = 0;

	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end == '\0' && errno == 0 && isdigit((unsigned char)s[0])) {
		*out = v;
		return v > 0 ? 0 : -1;
	}
	if (util_parse_duration_ms(s, &ms) == 0) {
		*out = now + (int64_t)(ms / 1000);
		return ms >= 1000 ? 0 : -1;
	}
	memset(&tm, 0, sizeof(tm));
	if ((rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*rest == '.')	/* fractional seconds: ignored */
		for (rest++; isdigit((unsigned char)*rest); rest++)
			;
	if ((rest[0] == 'Z' || rest[0] == 'z') && rest[1] == '\0')
		off = 0;
	else if ((rest[0] == '+' || rest[0] == '-') && isdigit((unsigned char)rest[1]) &&
	    isdigit((unsigned char)rest[2]) && rest[3] == ':' &&
	    isdigit((unsigned char)rest[4]) && isdigit((unsigned char)rest[5]) &&
	    rest[6] == '\0')
		off = (rest[0] == '-' ? -1 : 1) * (((rest[1] - '0') * 10 + (rest[2] - '0')) *
		    3600 + ((rest[4] - '0') * 10 + (rest[5] - '0')) * 60);
	else
		return -1;
	*out = (int64_t)timegm(&tm) - off;
	return *out > 0 ? 0 : -1;
}

/* --- results ------------------------------------------------------------------------ */

static int reg_fail(registry_result_t *res, int status, const char *code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static int
reg_fail(registry_result_t *res, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	res->status = status;
	res->code = code;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	return -1;
}

static void
reg_ok(registry_result_t *res, int status, uint64_t gen, bool created, bool changed)
{
	res->status = status;
	res->code = "ok";
	res->message[0] = '\0';
	res->generation = gen;
	res->created = created;
	res->changed = changed;
}

/* --- specs -------------------------------------------------------------------------- */

void
registry_spec_free(registry_spec_t *s)
{
	if (s == NULL)
		return;
	free(s->id);
	reg_fields_free(&s->f);
	secmem_guarded_free(s->token);
	memset(s, 0, sizeof(*s));
}

/* "addresses": [CIDR, ...] into a fresh array. */
static int
reg_parse_addresses(json_t *a, netaddr_cidr_t **out, size_t *n, registry_result_t *res)
{
	char err[160];
	json_t *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return reg_fail(res, 400, "bad_request", "addresses: must be a non-empty array "
		    "of addresses or CIDR ranges");
	if (json_array_size(a) > REGISTRY_MAX_ADDRESSES)
		return reg_fail(res, 400, "bad_request", "addresses: at most %d",
		    REGISTRY_MAX_ADDRESSES);
	if ((*out = calloc(json_array_size(a), sizeof(**out))) == NULL)
		return reg_fail(res, 500, "internal", "out of memory");
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || netaddr_parse_cidr(json_string_value(v), &(*out)[i],
		    err, sizeof(err)) < 0) {
			free(*out);
			*out = NULL;
			return reg_fail(res, 400, "bad_request", "addresses[%zu]: %s", i,
			    json_is_string(v) ? err : "must be a string");
		}
	}
	*n = json_array_size(a);
	return 0;
}

static int
reg_cmp_label(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
reg_parse_labels(json_t *o, registry_fields_t *f, registry_result_t *res)
{
	const char *k;
	json_t *v;
	size_t n = json_object_size(o), i = 0;
	char **pairs;

	if (!json_is_object(o))
		return reg_fail(res, 400, "bad_request", "labels: must be an object of strings");
	if (n > REGISTRY_MAX_LABELS)
		return reg_fail(res, 400, "bad_request", "labels: at most %d", REGISTRY_MAX_LABELS);
	if (n == 0)
		return 0;
	/* sort keys: the journal and equality checks see one order */
	if ((pairs = calloc(n, sizeof(*pairs))) == NULL)
		return reg_fail(res, 500, "internal", "out of memory");
	json_object_foreach(o, k, v) {
		if (!registry_id_valid(k) || strlen(k) > REGISTRY_LABEL_KEY_MAX) {
			free(pairs);
			return reg_fail(res, 400, "bad_request", "labels: key %.64s: use "
			    "[A-Za-z0-9_.-], 1 to %d characters", k, REGISTRY_LABEL_KEY_MAX);
		}
		if (!json_is_string(v) || !reg_label_value_ok(json_string_value(v))) {
			free(pairs);
			return reg_fail(res, 400, "bad_request", "labels.%s: must be a string of "
			    "printable characters, at most %d bytes", k, REGISTRY_LABEL_VALUE_MAX);
		}
		pairs[i++] = (char *)k;
	}
	qsort(pairs, n, sizeof(*pairs), reg_cmp_label);
	if (reg_labels_alloc(f, n) < 0) {
		free(pairs);
		return reg_fail(res, 500, "internal", "out of memory");
	}
	for (i = 0; i < n; i++) {
		const char *value = json_string_value(json_object_get(o, pairs[i]));

		if (reg_label_add(f, pairs[i], value) < 0) {
			free(pairs);
			return reg_fail(res, 500, "internal", "out of memory");
		}
	}
	free(pairs);
	return 0;
}

static int
reg_parse_expires(json_t *v, int64_t now, int64_t *out, registry_result_t *res)
{
	if (json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && registry_parse_time(json_string_value(v), now, out) == 0)
		return 0;
	return reg_fail(res, 400, "bad_request", "expires_at: unix seconds, an RFC 3339 time "
	    "or a duration from now (\"1h\")");
}

/* Every member of object root is one of keys (NULL-terminated). 0, or -1 with res. */
static int
reg_known_keys(json_t *root, const char *const *keys, registry_result_t *res)
{
	const char *k;
	json_t *v;

	json_object_foreach(root, k, v) {
		bool known = false;

		for (size_t i = 0; keys[i]; i++)
			known |= strcmp(k, keys[i]) == 0;
		if (!known)
			return reg_fail(res, 400, "bad_request", "unknown field %.64s", k);
	}
	return 0;
}

/* "token": a non-empty string of at most REGISTRY_TOKEN_MAX bytes, into guarded memory. */
static int
reg_parse_token(json_t *v, char **out, registry_result_t *res)
{
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > REGISTRY_TOKEN_MAX)
		return reg_fail(res, 400, "bad_request", "token: a non-empty string of at most "
		    "%d bytes", REGISTRY_TOKEN_MAX);
	if ((*out = secmem_guarded_dup(json_string_value(v), json_string_length(v))) == NULL)
		return reg_fail(res, 500, "internal", "out of memory");
	return 0;
}

/*
 * "restored_from": P and "at": T (unix seconds or RFC 3339, not in the future beyond
 * the clock skew), both or neither: the sandbox runs a checkpoint of P taken at T.
 */
static int
reg_parse_restore(json_t *root, int64_t now, registry_fields_t *out, registry_result_t *res)
{
	json_t *from = json_object_get(root, "restored_from"), *at = json_object_get(root, "at");
	const char *s = json_string_value(at);

	if (from == NULL && at == NULL)
		return 0;
	if (!json_is_string(from) || !registry_id_valid(json_string_value(from)))
		return reg_fail(res, 400, "bad_request", "restored_from: the id of the sandbox "
		    "whose checkpoint this is, with \"at\"");
	if (json_is_integer(at) && json_integer_value(at) > 0)
		out->restored_at = json_integer_value(at);
	else if (s == NULL || registry_parse_time(s, now, &out->restored_at) < 0)
		return reg_fail(res, 400, "bad_request", "at: when the checkpoint was taken, "
		    "unix seconds or an RFC 3339 time");
	if (out->restored_at > now + SG_CLOCK_SKEW_S)
		return reg_fail(res, 400, "bad_request", "at: the checkpoint time is in the "
		    "future");
	if ((out->restored_from = strdup(json_string_value(from))) == NULL)
		return reg_fail(res, 500, "internal", "out of memory");
	return 0;
}

int
registry_spec_parse(const char *id, const char *json, size_t len, int64_t now,
    registry_spec_t *out, registry_result_t *res)
{
	static const char *const keys[] = {"template", "addresses", "labels", "expires_at",
		"token", "restored_from", "at", NULL};
	json_error_t je;
	json_t *root, *v;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(res, 0, sizeof(*res));
	if (!registry_id_valid(id))
		return reg_fail(res, 400, "bad_request", "sandbox id must be [A-Za-z0-9_.-], 1 "
		    "to %d characters", REGISTRY_ID_MAX);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return reg_fail(res, 400, "bad_request", "body must be a JSON object (%s)",
		    root ? "not an object" : je.text);
	}
	if (reg_known_keys(root, keys, res) < 0)
		goto done;
	if ((out->id = strdup(id)) == NULL) {
		reg_fail(res, 500, "internal", "out of memory");
		goto done;
	}
	v = json_object_get(root, "template");
	if (!json_is_string(v) || !registry_id_valid(json_string_value(v))) {
		reg_fail(res, 400, "bad_request", "template: a template name is required");
		goto done;
	}
	if ((out->f.template_name = strdup(json_string_value(v))) == NULL) {
		reg_fail(res, 500, "internal", "out of memory");
		goto done;
	}
	if (reg_parse_addresses(json_object_get(root, "addresses"), &out->f.addresses,
	    &out->f.naddresses, res) < 0)
		goto done;
	if ((v = json_object_get(root, "labels")) != NULL &&
	    reg_parse_labels(v, &out->f, res) < 0)
		goto done;
	if ((v = json_object_get(root, "expires_at")) != NULL &&
	    reg_parse_expires(v, now, &out->f.expires_at, res) < 0)
		goto done;
	if (reg_parse_token(json_object_get(root, "token"), &out->token, res) < 0 ||
	    reg_parse_restore(root, now, &out->f, res) < 0)
		goto done;
	rc = 0;
done:
	json_decref(root);
	if (rc < 0)
		registry_spec_free(out);
	return rc;
}

void
registry_fork_spec_free(registry_fork_spec_t *s)
{
	if (s == NULL)
		return;
	free(s->addresses);
	free(s->template_name);
	secmem_guarded_free(s->token);
	memset(s, 0, sizeof(*s));
}

/* The optional fields of a fork: template, token, expires_at. */
static int
reg_fork_parse_rest(json_t *root, int64_t now, registry_fork_spec_t *out,
    registry_result_t *res)
{
	json_t *v = json_object_get(root, "template");

	if (v != NULL) {
		if (!json_is_string(v) || !registry_id_valid(json_string_value(v)))
			return reg_fail(res, 400, "bad_request", "template: a template name");
		if ((out->template_name = strdup(json_string_value(v))) == NULL)
			return reg_fail(res, 500, "internal", "out of memory");
	}
	if ((v = json_object_get(root, "expires_at")) != NULL) {
		out->has_expires = true;
		if (reg_parse_expires(v, now, &out->expires_at, res) < 0)
			return -1;
	}
	return reg_parse_token(json_object_get(root, "token"), &out->token, res);
}

int
registry_fork_parse(const char *json, size_t len, int64_t now, registry_fork_spec_t *out,
    registry_result_t *res)
{
	static const char *const keys[] = {"id", "addresses", "template", "token",
		"expires_at", NULL};
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je), *v;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(out, 0, sizeof(*out));
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return reg_fail(res, 400, "bad_request", "body must be a JSON object {\"id\", "
		    "\"addresses\"}");
	}
	if (reg_known_keys(root, keys, res) < 0)
		goto done;
	v = json_object_get(root, "id");
	if (!json_is_string(v) || !registry_id_valid(json_string_value(v))) {
		reg_fail(res, 400, "bad_request", "id: the fork's id ([A-Za-z0-9_.-], 1 to %d "
		    "characters) is required", REGISTRY_ID_MAX);
		goto done;
	}
	snprintf(out->id, sizeof(out->id), "%s", json_string_value(v));
	if (reg_parse_addresses(json_object_get(root, "addresses"), &out->addresses,
	    &out->naddresses, res) < 0 || reg_fork_parse_rest(root, now, out, res) < 0)
		goto done;
	rc = 0;
done:
	json_decref(root);
	if (rc < 0)
		registry_fork_spec_free(out);
	return rc;
}

/* --- journal ------------------------------------------------------------------------ */

static void
reg_cksum(const void *p, size_t len, uint8_t out[REG_CKSUM_LEN])
{
	uint8_t d[crypto_generichash_BYTES_MIN];

	crypto_generichash(d, sizeof(d), p, len, NULL, 0);
	memcpy(out, d, REG_CKSUM_LEN);
}

static int
reg_write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One record (header + payload) appended to fd; fsync when sync. */
static int
reg_append(int fd, const json_t *rec, bool sync)
{
	char *txt = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t hdr[REGISTRY_HDR_LEN];
	size_t len;
	int rc = -1;

	if (txt == NULL)
		return -1;
	len = strlen(txt);
	if (len <= REGISTRY_MAX_RECORD) {
		hdr[0] = (uint8_t)len;
		hdr[1] = (uint8_t)(len >> 8);
		hdr[2] = (uint8_t)(len >> 16);
		hdr[3] = (uint8_t)(len >> 24);
		reg_cksum(txt, len, hdr + 4);
		/* one write: a crash tears at most this record */
		char *buf = malloc(sizeof(hdr) + len);

		if (buf != NULL) {
			memcpy(buf, hdr, sizeof(hdr));
			memcpy(buf + sizeof(hdr), txt, len);
			rc = reg_write_all(fd, buf, sizeof(hdr) + len);
			free(buf);
		}
	}
	free(txt);
	if (rc == 0 && sync && fdatasync(fd) < 0)
		rc = -1;
	return rc;
}

/* [{"id": ID, "at": T}, ...], nearest first. */
static json_t *
reg_lineage_json(const lineage_t *l)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < l->n; i++)
		json_array_append_new(a, json_pack("{s:s, s:I}", "id", l->links[i].id, "at",
		    (json_int_t)l->links[i].at));
	return a;
}

/* The "lineage" of a stored record into l; -1 when malformed or too deep. */
static int
reg_lineage_parse(const json_t *a, lineage_t *l)
{
	const json_t *v;
	size_t i;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > LINEAGE_MAX_DEPTH)
		return -1;
	json_array_foreach(a, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		json_t *at = json_object_get(v, "at");

		if (!registry_id_valid(id) || !json_is_integer(at) ||
		    lineage_append(l, id, json_integer_value(at)) != LINEAGE_OK)
			return -1;
	}
	return 0;
}

static json_t *
reg_entry_record(const registry_entry_t *e, const char *op)
{
	json_t *o = json_object(), *a = json_array(), *l = json_object();
	char buf[NETADDR_CIDR_TEXT_MAX], hex[2 * REGISTRY_TOKEN_HASH_LEN + 1];

	if (o == NULL || a == NULL || l == NULL) {
		json_decref(o);
		json_decref(a);
		json_decref(l);
		return NULL;
	}
	for (size_t i = 0; i < e->f.naddresses; i++) {
		netaddr_cidr_format(&e->f.addresses[i], buf, sizeof(buf));
		json_array_append_new(a, json_string(buf));
	}
	for (size_t i = 0; i < e->f.nlabels; i++)
		json_object_set_new(l, e->f.label_keys[i], json_string(e->f.label_values[i]));
	json_object_set_new(o, "op", json_string(op));
	json_object_set_new(o, "id", json_string(e->id));
	json_object_set_new(o, "template", json_string(e->f.template_name));
	json_object_set_new(o, "addresses", a);
	json_object_set_new(o, "labels", l);
	json_object_set_new(o, "expires_at", json_integer(e->f.expires_at));
	json_object_set_new(o, "created", json_integer(e->created));
	json_object_set_new(o, "generation", json_integer((json_int_t)e->generation));
	if (e->parent)
		json_object_set_new(o, "parent", json_string(e->parent));
	if (e->f.restored_from) {
		json_object_set_new(o, "restored_from", json_string(e->f.restored_from));
		json_object_set_new(o, "restored_at", json_integer(e->f.restored_at));
	}
	if (e->lineage.n > 0)
		json_object_set_new(o, "lineage", reg_lineage_json(&e->lineage));
	if (e->suspended_at != 0)
		json_object_set_new(o, "suspended_at", json_integer(e->suspended_at));
	if (e->token_hash) {
		util_hex_encode(e->token_hash, REGISTRY_TOKEN_HASH_LEN, hex);
		json_object_set_new(o, "token_hash", json_string(hex));
	}
	return o;
}

static json_t *
reg_delete_record(const char *id, int64_t at, const char *reason, uint64_t gen)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:I}", "op", "delete", "id", id, "at",
	    (json_int_t)at, "reason", reason, "generation", (json_int_t)gen);
}

/* A stored record's labels (an object of strings, or NULL) into f. 0, or -1. */
static int
reg_record_labels(json_t *l, registry_fields_t *f)
{
	const char *k;
	json_t *v;

	if (l == NULL || reg_labels_alloc(f, json_object_size(l)) < 0)
		return l == NULL ? 0 : -1;
	/* JSON_SORT_KEYS wrote them sorted; jansson keeps insertion order */
	json_object_foreach(l, k, v) {
		if (!json_is_string(v) || reg_label_add(f, k, json_string_value(v)) < 0)
			return -1;
	}
	return 0;
}

/* An entry from a put/fork record, or NULL (malformed). */
static registry_entry_t *
reg_entry_from_record(const json_t *o)
{
	registry_entry_t *e = calloc(1, sizeof(*e));
	json_t *a = json_object_get(o, "addresses"), *l = json_object_get(o, "labels"), *v;
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *tpl = json_string_value(json_object_get(o, "template"));
	const char *th = json_string_value(json_object_get(o, "token_hash"));
	const char *par = json_string_value(json_object_get(o, "parent"));
	const char *rf = json_string_value(json_object_get(o, "restored_from"));
	size_t i;

	if (e == NULL)
		return NULL;
	e->refcnt = 1;
	if (!registry_id_valid(id) || !registry_id_valid(tpl) || !json_is_array(a) ||
	    json_array_size(a) == 0 || json_array_size(a) > REGISTRY_MAX_ADDRESSES ||
	    (l != NULL && (!json_is_object(l) ||
	    json_object_size(l) > REGISTRY_MAX_LABELS)))
		goto bad;
	e->id = strdup(id);
	e->f.template_name = strdup(tpl);
	e->parent = par ? strdup(par) : NULL;
	e->f.restored_from = rf ? strdup(rf) : NULL;
	e->f.addresses = calloc(json_array_size(a), sizeof(*e->f.addresses));
	if (e->id == NULL || e->f.template_name == NULL || e->f.addresses == NULL ||
	    (par && e->parent == NULL) || (rf && e->f.restored_from == NULL) ||
	    reg_lineage_parse(json_object_get(o, "lineage"), &e->lineage) < 0)
		goto bad;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || netaddr_parse_cidr(json_string_value(v),
		    &e->f.addresses[i], NULL, 0) < 0)
			goto bad;
		e->f.naddresses++;
	}
	if (reg_record_labels(l, &e->f) < 0)
		goto bad;
	e->f.expires_at = json_integer_value(json_object_get(o, "expires_at"));
	e->created = json_integer_value(json_object_get(o, "created"));
	e->generation = (uint64_t)json_integer_value(json_object_get(o, "generation"));
	e->f.restored_at = json_integer_value(json_object_get(o, "restored_at"));
	e->suspended_at = json_integer_value(json_object_get(o, "suspended_at"));
	/* a fork journalled before lineage was recorded: its parent, at its creation */
	if (e->parent != NULL && json_object_get(o, "lineage") == NULL && e->created > 0 &&
	    lineage_append(&e->lineage, e->parent, e->created) != LINEAGE_OK)
		goto bad;
	if (th != NULL) {
		if ((e->token_hash = secmem_guarded_alloc(REGISTRY_TOKEN_HASH_LEN)) == NULL ||
		    util_hex_decode(th, strlen(th), e->token_hash, REGISTRY_TOKEN_HASH_LEN) < 0)
			goto bad;
	}
	return e;
bad:
	reg_entry_free(e);
	return NULL;
}

/* A replayed put/fork: the entry replaces any of its id. */
static int
reg_replay_entry(registry_snapshot_t *s, const json_t *o, const policy_t *policy)
{
	registry_entry_t *e, **nv;

	if ((e = reg_entry_from_record(o)) == NULL)
		return -1;
	reg_entry_fill_sb(e, policy);
	reg_copy_remove(s, e->id);
	reg_copy_untomb(s, e->id);
	nv = realloc(s->byid, (s->n + 1) * sizeof(*nv));
	if (nv == NULL) {
		reg_entry_free(e);
		return -1;
	}
	s->byid = nv;
	s->byid[s->n++] = e;
	qsort(s->byid, s->n, sizeof(*s->byid), reg_cmp_entry);
	return 0;
}

static int
reg_replay_delete(registry_snapshot_t *s, const json_t *o, int64_t now)
{
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *why = json_string_value(json_object_get(o, "reason"));
	int64_t at = json_integer_value(json_object_get(o, "at"));
	struct reg_tomb *nt;

	if (!registry_id_valid(id))
		return -1;
	reg_copy_remove(s, id);
	if (at + REGISTRY_TOMBSTONE_S <= now)
		return 0;
	nt = realloc(s->tombs, (s->ntombs + 1) * sizeof(*nt));
	if (nt == NULL)
		return -1;
	s->tombs = nt;
	return reg_copy_tomb(s, id, at, why && strcmp(why, "expired") == 0 ? "expired" :
	    "deleted");
}

/* A replayed suspend/resume: the working snapshot's entries are private, set in place. */
static int
reg_replay_suspend(registry_snapshot_t *s, const json_t *o, bool suspend)
{
	const char *id = json_string_value(json_object_get(o, "id"));
	int64_t at = json_integer_value(json_object_get(o, "at"));
	ssize_t i;

	if (!registry_id_valid(id) || (suspend && at <= 0))
		return -1;
	if ((i = reg_index_of(s, id)) < 0)
		return 0;	/* deleted in between: nothing to do */
	s->byid[i]->suspended_at = suspend ? at : 0;
	return 0;
}

/* Apply one replayed record to the working snapshot. 0, or -1 (malformed). */
static int
reg_replay_one(registry_t *r, registry_snapshot_t *s, const json_t *o, int64_t now,
    const policy_t *policy)
{
	const char *op = json_string_value(json_object_get(o, "op"));
	uint64_t gen = (uint64_t)json_integer_value(json_object_get(o, "generation"));

	if (op == NULL)
		return -1;
	if (gen > r->generation)
		r->generation = gen;
	if (strcmp(op, "put") == 0 || strcmp(op, "fork") == 0)
		return reg_replay_entry(s, o, policy);
	if (strcmp(op, "delete") == 0)
		return reg_replay_delete(s, o, now);
	if (strcmp(op, "suspend") == 0 || strcmp(op, "resume") == 0)
		return reg_replay_suspend(s, o, strcmp(op, "suspend") == 0);
	return -1;
}

static uint32_t
reg_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Replay buf[0..len) into s. Stops (with a warning) at the first bad record. */
static void
reg_replay(registry_t *r, registry_snapshot_t *s, const uint8_t *buf, size_t len,
    int64_t now, const policy_t *policy)
{
	size_t off = REGISTRY_MAGIC_LEN;
	const char *why = NULL;

	if (len == 0)
		return;
	if (len < REGISTRY_MAGIC_LEN || memcmp(buf, REGISTRY_JOURNAL_MAGIC,
	    REGISTRY_MAGIC_LEN) != 0) {
		r->info.dropped_bytes = len;
		log_warn("%s: not a registry journal (bad magic); starting empty, %zu bytes "
		    "ignored", r->path, len);
		return;
	}
	while (off < len) {
		uint8_t ck[REG_CKSUM_LEN];
		uint32_t n;
		json_t *o;

		if (len - off < REGISTRY_HDR_LEN) {
			why = "torn record header";
			break;
		}
		n = reg_le32(buf + off);
		if (n == 0 || n > REGISTRY_MAX_RECORD) {
			why = "bad record length";
			break;
		}
		if (len - off - REGISTRY_HDR_LEN < n) {
			why = "torn record";
			break;
		}
		reg_cksum(buf + off + REGISTRY_HDR_LEN, n, ck);
		if (sodium_memcmp(ck, buf + off + 4, REG_CKSUM_LEN) != 0) {
			why = "checksum mismatch";
			break;
		}
		o = json_loadb((const char *)buf + off + REGISTRY_HDR_LEN, n, 0, NULL);
		if (o == NULL || !json_is_object(o) || reg_replay_one(r, s, o, now, policy) < 0) {
			json_decref(o);
			why = "malformed record";
			break;
		}
		json_decref(o);
		r->info.records++;
		off += REGISTRY_HDR_LEN + n;
	}
	if (why != NULL) {
		r->info.dropped_bytes = len - off;
		log_warn("%s: %s at offset %zu: dropping the last %zu bytes (%zu good records "
		    "kept)", r->path, why, off, len - off, r->info.records);
	}
}

static int
reg_read_journal(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > REGISTRY_MAX_JOURNAL) {
		snprintf(err, errlen, "%s: %s", path, st.st_size > 0 ? "journal larger than "
		    "the limit" : strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_size > 0 && (*buf = malloc((size_t)st.st_size)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return 0;
}

static void
reg_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Rewrite the journal as the live entries + tombstones of s; reopen it for appends. */
static int
reg_compact(registry_t *r, const registry_snapshot_t *s, char *err, size_t errlen)
{
	char *tmp = NULL;
	int fd = -1, rc = -1;

	if (asprintf(&tmp, "%s.tmp", r->path) < 0) {
		tmp = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || reg_write_all(fd, REGISTRY_JOURNAL_MAGIC, REGISTRY_MAGIC_LEN) < 0)
		goto fail;
	for (size_t i = 0; i < s->n; i++) {
		json_t *o = reg_entry_record(s->byid[i], s->byid[i]->parent ? "fork" : "put");
		int w = o ? reg_append(fd, o, false) : -1;

		json_decref(o);
		if (w < 0)
			goto fail;
	}
	for (size_t i = 0; i < s->ntombs; i++) {
		json_t *o = reg_delete_record(s->tombs[i].id, s->tombs[i].at, s->tombs[i].reason,
		    r->generation);
		int w = o ? reg_append(fd, o, false) : -1;

		json_decref(o);
		if (w < 0)
			goto fail;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, r->path) < 0)
		goto fail;
	reg_fsync_dir(r->dir);
	rc = 0;
fail:
	if (rc < 0) {
		snprintf(err, errlen, "%s: compaction failed: %s", r->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)unlink(tmp);
	}
	free(tmp);
	return rc;
}

registry_t *
registry_open(const char *dir, const policy_t *policy, int64_t now, char *err,
    size_t errlen)
{
	registry_t *r = calloc(1, sizeof(*r));
	registry_snapshot_t *s = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (r == NULL || (r->dir = strdup(dir)) == NULL ||
	    asprintf(&r->path, "%s/%s", dir, REGISTRY_JOURNAL_NAME) < 0) {
		if (r)
			free(r->dir);
		free(r);
		snprintf(err, errlen, "registry: out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->mu, NULL);
	r->fd = -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (reg_read_journal(r->path, &buf, &len, err, errlen) < 0)
		goto fail;
	if ((s = reg_snapshot_copy(NULL)) == NULL) {
		snprintf(err, errlen, "registry: out of memory");
		goto fail;
	}
	reg_replay(r, s, buf, len, now, policy);
	free(buf);
	buf = NULL;
	s->generation = r->generation;
	if (reg_snapshot_index(s) < 0) {
		snprintf(err, errlen, "registry: out of memory");
		goto fail;
	}
	r->info.live = s->n;
	if (reg_compact(r, s, err, errlen) < 0)
		goto fail;
	r->info.compacted = true;
	r->fd = open(r->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (r->fd < 0) {
		snprintf(err, errlen, "%s: %s", r->path, strerror(errno));
		goto fail;
	}
	r->cur = s;
	reg_publish(s);
	reg_global = r;
	return r;
fail:
	free(buf);
	if (s)
		registry_unref(s);
	free(r->dir);
	free(r->path);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return NULL;
}

void
registry_close(registry_t *r)
{
	if (r == NULL)
		return;
	if (reg_global == r) {
		reg_global = NULL;
		reg_publish(NULL);
	}
	if (r->fd >= 0)
		close(r->fd);
	registry_unref(r->cur);
	free(r->dir);
	free(r->path);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

registry_t *
registry_global(void)
{
	return reg_global;
}

const char *
registry_journal_path(const registry_t *r)
{
	return r->path;
}

const registry_load_info_t *
registry_load_info(const registry_t *r)
{
	return &r->info;
}

/* Journal rec, then make next current and published. Consumes next on failure too. */
static int
reg_commit(registry_t *r, registry_snapshot_t *next, json_t *rec, registry_result_t *res)
{
	int w = rec ? reg_append(r->fd, rec, true) : -1;

	json_decref(rec);
	if (w < 0 || reg_snapshot_index(next) < 0) {
		registry_unref(next);
		return reg_fail(res, 500, "journal_failed", "cannot write %s: %s", r->path,
		    strerror(errno));
	}
	registry_unref(r->cur);
	r->cur = next;
	if (reg_global == r)
		reg_publish(next);
	return 0;
}

/* --- mutations ---------------------------------------------------------------------- */

/* The first of set[0..n) that overlaps a, or NULL. */
static const netaddr_cidr_t *
reg_overlapping(const netaddr_cidr_t *a, const netaddr_cidr_t *set, size_t n)
{
	for (size_t j = 0; j < n; j++)
		if (netaddr_cidr_overlap(a, &set[j]))
			return &set[j];
	return NULL;
}

/* Does any live sandbox other than self (static or registered) overlap addrs? */
static int
reg_check_overlap(const registry_snapshot_t *s, const policy_t *p, const char *self,
    const netaddr_cidr_t *addrs, size_t n, registry_result_t *res)
{
	char ta[NETADDR_CIDR_TEXT_MAX], tb[NETADDR_CIDR_TEXT_MAX];
	const netaddr_cidr_t *hit;

	if (p && policy_sandbox_find(p, self) != NULL)
		return reg_fail(res, 409, "exists", "sandbox %s is defined in the policy", self);
	for (size_t i = 0; i < n; i++) {
		netaddr_cidr_format(&addrs[i], ta, sizeof(ta));
		for (size_t k = 0; p && k < p->nsandboxes; k++)
			if ((hit = reg_overlapping(&addrs[i], p->sandboxes[k].addresses,
			    p->sandboxes[k].naddresses)) != NULL)
				return reg_fail(res, 409, "address_conflict", "%s of sandbox %s "
				    "overlaps %s of sandbox %s (static, in the policy)", ta, self,
				    netaddr_cidr_format(hit, tb, sizeof(tb)), p->sandboxes[k].name);
		for (size_t k = 0; s && k < s->n; k++) {
			const registry_entry_t *e = s->byid[k];

			if (strcmp(e->id, self) != 0 && (hit = reg_overlapping(&addrs[i],
			    e->f.addresses, e->f.naddresses)) != NULL)
				return reg_fail(res, 409, "address_conflict", "%s of sandbox %s "
				    "overlaps %s of sandbox %s", ta, self,
				    netaddr_cidr_format(hit, tb, sizeof(tb)), e->id);
		}
	}
	return 0;
}

static void
reg_token_hash(const char *tok, uint8_t out[REGISTRY_TOKEN_HASH_LEN])
{
	crypto_generichash(out, REGISTRY_TOKEN_HASH_LEN, (const unsigned char *)tok,
	    strlen(tok), NULL, 0);
}

/* Would spec leave e as it is? */
static bool
reg_same(const registry_entry_t *e, const registry_spec_t *s)
{
	uint8_t h[REGISTRY_TOKEN_HASH_LEN];
	bool tok;

	if (strcmp(e->f.template_name, s->f.template_name) != 0 ||
	    e->f.naddresses != s->f.naddresses || e->f.nlabels != s->f.nlabels ||
	    e->f.expires_at != s->f.expires_at || (e->token_hash == NULL) != (s->token == NULL))
		return false;
	/* history is kept unless the PUT names a (different) checkpoint */
	if (s->f.restored_from != NULL && (e->f.restored_from == NULL || e->f.restored_at !=
	    s->f.restored_at || strcmp(e->f.restored_from, s->f.restored_from) != 0))
		return false;
	if (memcmp(e->f.addresses, s->f.addresses,
	    s->f.naddresses * sizeof(*s->f.addresses)) != 0)
		return false;
	for (size_t i = 0; i < s->f.nlabels; i++)
		if (strcmp(e->f.label_keys[i], s->f.label_keys[i]) != 0 ||
		    strcmp(e->f.label_values[i], s->f.label_values[i]) != 0)
			return false;
	if (s->token == NULL)
		return true;
	reg_token_hash(s->token, h);
	tok = sodium_memcmp(h, e->token_hash, sizeof(h)) == 0;
	sodium_memzero(h, sizeof(h));
	return tok;
}

static registry_entry_t *
reg_entry_from_spec(const registry_spec_t *s)
{
	registry_entry_t *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->refcnt = 1;
	if ((e->id = strdup(s->id)) == NULL || reg_fields_copy(&e->f, &s->f) < 0)
		goto bad;
	if (s->token != NULL) {
		if ((e->token_hash = secmem_guarded_alloc(REGISTRY_TOKEN_HASH_LEN)) == NULL)
			goto bad;
		reg_token_hash(s->token, e->token_hash);
	}
	return e;
bad:
	reg_entry_free(e);
	return NULL;
}

/* Add e (reference taken over) to copy c, replacing any entry of the same id. */
static void
reg_copy_insert(registry_snapshot_t *c, registry_entry_t *e)
{
	reg_copy_remove(c, e->id);
	reg_copy_untomb(c, e->id);
	c->byid[c->n++] = e;	/* reg_snapshot_copy left room for one */
}

static int
reg_lineage_fail(int err, const char *id, registry_result_t *res)
{
	if (err == LINEAGE_E_DEPTH)
		return reg_fail(res, 409, "lineage_too_deep", "sandbox %s would descend from "
		    "more than %d forks or checkpoints (LINEAGE_MAX_DEPTH)", id,
		    LINEAGE_MAX_DEPTH);
	return reg_fail(res, 500, "internal", "out of memory");
}

static int
reg_strdup_to(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src != NULL && *dst == NULL ? LINEAGE_E_NOMEM : LINEAGE_OK;
}

/*
 * A put's history. A restored_from derives the lineage from that sandbox's (when it is
 * registered here: per sidecar) and the checkpoint time; otherwise a replaced entry keeps
 * its fork parent, restore and lineage. The suspended state is kept either way: a PUT
 * reconfigures a sandbox, resume wakes it.
 */
static int
reg_entry_history(registry_entry_t *e, const registry_entry_t *old,
    const registry_spec_t *s, const registry_snapshot_t *cur, registry_result_t *res)
{
	const registry_entry_t *from;
	int rc;

	e->suspended_at = old ? old->suspended_at : 0;
	if (s->f.restored_from != NULL) {	/* e has it already (reg_entry_from_spec) */
		from = registry_find(cur, s->f.restored_from);
		rc = lineage_derive(from ? &from->lineage : NULL, s->f.restored_from,
		    s->f.restored_at, &e->lineage);
	} else if (old != NULL) {
		rc = lineage_copy(&old->lineage, &e->lineage);
		if (rc == LINEAGE_OK && (rc = reg_strdup_to(&e->parent, old->parent)) ==
		    LINEAGE_OK)
			rc = reg_strdup_to(&e->f.restored_from, old->f.restored_from);
		e->f.restored_at = old->f.restored_at;
	} else {
		rc = LINEAGE_OK;
	}
	return rc == LINEAGE_OK ? 0 : reg_lineage_fail(rc, s->id, res);
}

static int
reg_check_template(const policy_t *p, const registry_spec_t *s, registry_result_t *res)
{
	const policy_template_t *t = policy_template_find(p, s->f.template_name);

	if (t == NULL)
		return reg_fail(res, 422, "unknown_template", "template %s is not in the "
		    "policy's sandbox_templates", s->f.template_name);
	if (t->token_required && s->token == NULL)
		return reg_fail(res, 400, "bad_request", "template %s requires a proxy token "
		    "(\"token\")", s->f.template_name);
	return 0;
}

/* Can spec be stored (old: the entry it replaces, or NULL)? 0, or -1 with res. */
static int
reg_put_check(registry_t *r, const policy_t *policy, const registry_spec_t *spec,
    const registry_entry_t *old, int64_t now, registry_result_t *res)
{
	if (!registry_id_valid(spec->id))
		return reg_fail(res, 400, "bad_request", "bad sandbox id");
	if (reg_check_template(policy, spec, res) < 0)
		return -1;
	if (spec->f.expires_at != 0 && spec->f.expires_at <= now)
		return reg_fail(res, 400, "bad_request", "expires_at is in the past");
	if (old != NULL && reg_same(old, spec))
		return 0;
	if (old == NULL && registry_count(r->cur) >= REGISTRY_MAX_SANDBOXES)
		return reg_fail(res, 409, "registry_full", "at most %d registered sandboxes",
		    REGISTRY_MAX_SANDBOXES);
	return reg_check_overlap(r->cur, policy, spec->id, spec->f.addresses,
	    spec->f.naddresses, res);
}

int
registry_put(registry_t *r, const policy_t *policy, const registry_spec_t *spec,
    int64_t now, registry_result_t *res)
{
	const registry_entry_t *old;
	registry_snapshot_t *next;
	registry_entry_t *e;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&r->mu);
	old = registry_id_valid(spec->id) ? registry_find(r->cur, spec->id) : NULL;
	if (reg_put_check(r, policy, spec, old, now, res) < 0)
		goto out;
	if (old != NULL && reg_same(old, spec)) {
		reg_ok(res, 200, old->generation, false, false);
		rc = 0;
		goto out;
	}
	if ((next = reg_snapshot_copy(r->cur)) == NULL ||
	    (e = reg_entry_from_spec(spec)) == NULL) {
		if (next)
			registry_unref(next);
		reg_fail(res, 500, "internal", "out of memory");
		goto out;
	}
	if (reg_entry_history(e, old, spec, r->cur, res) < 0) {
		reg_entry_free(e);
		registry_unref(next);
		goto out;
	}
	e->created = old ? old->created : now;
	e->generation = next->generation = ++r->generation;
	reg_entry_fill_sb(e, policy);
	reg_copy_insert(next, e);
	if (reg_commit(r, next, reg_entry_record(e, "put"), res) < 0)
		goto out;
	log_info("sandbox %s %s (template %s, %zu addresses, %zu lineage links, generation "
	    "%llu)", spec->id, old ? "replaced" : "registered", spec->f.template_name,
	    spec->f.naddresses, e->lineage.n, (unsigned long long)e->generation);
	reg_ok(res, old ? 200 : 201, e->generation, old == NULL, true);
	rc = 0;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int
reg_remove_locked(registry_t *r, const char *id, int64_t now, const char *reason,
    registry_result_t *res)
{
	registry_snapshot_t *next;

	if (registry_find(r->cur, id) == NULL)
		return reg_fail(res, 404, "not_found", "no registered sandbox %.64s", id);
	if ((next = reg_snapshot_copy(r->cur)) == NULL)
		return reg_fail(res, 500, "internal", "out of memory");
	reg_copy_remove(next, id);
	next->generation = ++r->generation;
	if (reg_copy_tomb(next, id, now, reason) < 0) {
		registry_unref(next);
		return reg_fail(res, 500, "internal", "out of memory");
	}
	if (reg_commit(r, next, reg_delete_record(id, now, reason, r->generation), res) < 0)
		return -1;
	log_info("sandbox %s %s: its handles stop working", id, reason);
	reg_ok(res, 200, r->generation, false, true);
	return 0;
}

int
registry_delete(registry_t *r, const char *id, int64_t now, registry_result_t *res)
{
	int rc;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&r->mu);
	rc = reg_remove_locked(r, id, now, "deleted", res);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* Can parent be forked into spec? 0, or -1 with res filled. */
static int
reg_fork_check(registry_t *r, const policy_t *policy, const registry_entry_t *pe,
    const char *parent, const registry_fork_spec_t *spec, int64_t now, registry_result_t *res)
{
	const char *tpl = spec->template_name ? spec->template_name : pe ? pe->f.template_name :
	    NULL;
	const policy_template_t *t = NULL;

	if (!registry_id_valid(spec->id) || spec->naddresses == 0 ||
	    spec->naddresses > REGISTRY_MAX_ADDRESSES)
		return reg_fail(res, 400, "bad_request", "a fork needs a valid id and 1 to %d "
		    "addresses", REGISTRY_MAX_ADDRESSES);
	if (pe == NULL || (pe->f.expires_at != 0 && pe->f.expires_at <= now))
		return reg_fail(res, 404, "not_found", "no registered sandbox %.64s", parent);
	if (registry_find(r->cur, spec->id) != NULL ||
	    policy_sandbox_find(policy, spec->id) != NULL)
		return reg_fail(res, 409, "exists", "sandbox %s already exists", spec->id);
	if (registry_count(r->cur) >= REGISTRY_MAX_SANDBOXES)
		return reg_fail(res, 409, "registry_full", "at most %d registered sandboxes",
		    REGISTRY_MAX_SANDBOXES);
	if (spec->template_name && (t = policy_template_find(policy, tpl)) == NULL)
		return reg_fail(res, 422, "unknown_template", "template %s is not in the "
		    "policy's sandbox_templates", tpl);
	if (spec->template_name && t->token_required && spec->token == NULL &&
	    pe->token_hash == NULL)
		return reg_fail(res, 400, "bad_request", "template %s requires a proxy token "
		    "(\"token\")", tpl);
	if (spec->has_expires && spec->expires_at != 0 && spec->expires_at <= now)
		return reg_fail(res, 400, "bad_request", "expires_at is in the past");
	return reg_check_overlap(r->cur, policy, spec->id, spec->addresses, spec->naddresses,
	    res);
}

/* The fork's entry: parent's template, labels, expiry and token unless spec names its
 * own; lineage (parent, now) + the parent's links. NULL with res filled. */
static registry_entry_t *
reg_fork_entry(const registry_entry_t *pe, const registry_fork_spec_t *spec, int64_t now,
    registry_result_t *res)
{
	registry_spec_t fs = {.id = (char *)spec->id, .f = pe->f, .token = spec->token};
	registry_entry_t *e;
	int rc;

	/* the parent's labels; its template and expiry unless named; never its restore */
	fs.f.template_name = spec->template_name ? spec->template_name : pe->f.template_name;
	fs.f.addresses = spec->addresses;
	fs.f.naddresses = spec->naddresses;
	fs.f.expires_at = spec->has_expires ? spec->expires_at : pe->f.expires_at;
	fs.f.restored_from = NULL;
	fs.f.restored_at = 0;
	e = reg_entry_from_spec(&fs);
	rc = e ? reg_strdup_to(&e->parent, pe->id) : LINEAGE_E_NOMEM;

	if (rc == LINEAGE_OK && spec->token == NULL && pe->token_hash != NULL) {
		if ((e->token_hash = secmem_guarded_alloc(REGISTRY_TOKEN_HASH_LEN)) == NULL)
			rc = LINEAGE_E_NOMEM;
		else
			memcpy(e->token_hash, pe->token_hash, REGISTRY_TOKEN_HASH_LEN);
	}
	if (rc == LINEAGE_OK)
		rc = lineage_derive(&pe->lineage, pe->id, now, &e->lineage);
	if (rc != LINEAGE_OK) {
		reg_entry_free(e);
		reg_lineage_fail(rc, spec->id, res);
		return NULL;
	}
	e->created = now;
	return e;
}

int
registry_fork(registry_t *r, const policy_t *policy, const char *parent,
    const registry_fork_spec_t *spec, int64_t now, registry_result_t *res)
{
	const registry_entry_t *pe;
	registry_snapshot_t *next = NULL;
	registry_entry_t *e;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&r->mu);
	pe = registry_find(r->cur, parent);
	if (reg_fork_check(r, policy, pe, parent, spec, now, res) < 0)
		goto out;
	if ((next = reg_snapshot_copy(r->cur)) == NULL) {
		reg_fail(res, 500, "internal", "out of memory");
		goto out;
	}
	if ((e = reg_fork_entry(pe, spec, now, res)) == NULL) {
		registry_unref(next);
		goto out;
	}
	e->generation = next->generation = ++r->generation;
	reg_entry_fill_sb(e, policy);
	reg_copy_insert(next, e);
	if (reg_commit(r, next, reg_entry_record(e, "fork"), res) < 0)
		goto out;
	log_info("sandbox %s forked from %s at %lld (%zu lineage links, generation %llu)",
	    spec->id, parent, (long long)now, e->lineage.n, (unsigned long long)e->generation);
	reg_ok(res, 201, e->generation, true, true);
	rc = 0;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* A copy of e (suspended_at changed later), sharing nothing with it. */
static registry_entry_t *
reg_entry_clone(const registry_entry_t *e)
{
	json_t *o = reg_entry_record(e, "put");
	registry_entry_t *c = o ? reg_entry_from_record(o) : NULL;

	json_decref(o);
	if (c != NULL) {
		c->sb = e->sb;
		c->sb.name = c->id;
		c->sb.addresses = c->f.addresses;
	}
	return c;
}

static json_t *
reg_suspend_record(const char *id, bool suspend, int64_t at, uint64_t gen)
{
	return json_pack("{s:s, s:s, s:I, s:I}", "op", suspend ? "suspend" : "resume", "id",
	    id, "at", (json_int_t)at, "generation", (json_int_t)gen);
}

int
registry_suspend(registry_t *r, const char *id, bool suspend, int64_t now,
    registry_result_t *res)
{
	const registry_entry_t *old;
	registry_snapshot_t *next = NULL;
	registry_entry_t *e = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&r->mu);
	if ((old = registry_find(r->cur, id)) == NULL) {
		reg_fail(res, 404, "not_found", "no registered sandbox %.64s", id);
		goto out;
	}
	if ((old->suspended_at != 0) == suspend) {
		reg_ok(res, 200, old->generation, false, false);
		rc = 0;
		goto out;
	}
	if ((next = reg_snapshot_copy(r->cur)) == NULL || (e = reg_entry_clone(old)) == NULL) {
		registry_unref(next);
		reg_fail(res, 500, "internal", "out of memory");
		goto out;
	}
	e->suspended_at = suspend ? now : 0;
	e->generation = next->generation = ++r->generation;
	reg_copy_insert(next, e);
	if (reg_commit(r, next, reg_suspend_record(id, suspend, now, e->generation), res) < 0)
		goto out;
	log_info("sandbox %s %s (generation %llu)", id, suspend ? "suspended: its "
	    "connections close, its requests are refused" : "resumed",
	    (unsigned long long)e->generation);
	reg_ok(res, 200, e->generation, false, true);
	rc = 0;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static bool
reg_has_stale_tomb(const registry_snapshot_t *s, int64_t now)
{
	for (size_t i = 0; s != NULL && i < s->ntombs; i++)
		if (s->tombs[i].at + REGISTRY_TOMBSTONE_S <= now)
			return true;
	return false;
}

size_t
registry_sweep_one(registry_t *r, int64_t now)
{
	registry_result_t res;
	size_t n = 0;
	bool again = true;

	pthread_mutex_lock(&r->mu);
	while (again) {
		again = false;
		for (size_t i = 0; i < registry_count(r->cur); i++) {
			const registry_entry_t *e = r->cur->byid[i];
			char id[REGISTRY_ID_MAX + 1];

			if (e->f.expires_at == 0 || e->f.expires_at > now)
				continue;
			snprintf(id, sizeof(id), "%s", e->id);
			if (reg_remove_locked(r, id, now, "expired", &res) == 0) {
				n++;
				again = true;	/* r->cur changed */
			} else {
				log_warn("sandbox %s expired but not removed: %s", id, res.message);
			}
			break;
		}
	}
	/* old tombstones: in memory only; compaction drops them from the file */
	if (reg_has_stale_tomb(r->cur, now)) {
		/* rare (a week after a deletion): rebuild without the stale ones */
		registry_snapshot_t *next = reg_snapshot_copy(r->cur);

		if (next != NULL) {
			size_t k = 0;

			for (size_t i = 0; i < next->ntombs; i++) {
				if (next->tombs[i].at + REGISTRY_TOMBSTONE_S <= now)
					free(next->tombs[i].id);
				else
					next->tombs[k++] = next->tombs[i];
			}
			next->ntombs = k;
			if (reg_snapshot_index(next) == 0) {
				registry_unref(r->cur);
				r->cur = next;
				if (reg_global == r)
					reg_publish(next);
			} else {
				registry_unref(next);
			}
		}
	}
	pthread_mutex_unlock(&r->mu);
	return n;
}

size_t
registry_sweep(int64_t now)
{
	return reg_global ? registry_sweep_one(reg_global, now) : 0;
}

char *
registry_entry_json(const registry_entry_t *e)
{
	json_t *o = reg_entry_record(e, "put");
	char *txt;

	if (o == NULL)
		return NULL;
	json_object_del(o, "op");
	json_object_del(o, "token_hash");
	json_object_set_new(o, "token", json_boolean(e->token_hash != NULL));
	json_object_set_new(o, "suspended", json_boolean(e->suspended_at != 0));
	txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return txt;
}

/* --- views -------------------------------------------------------------------------- */

static void
reg_view_static(const policy_sandbox_t *sb, sandbox_view_t *out)
{
	memset(out, 0, sizeof(*out));
	out->name = sb->name;
	out->addresses = sb->addresses;
	out->naddresses = sb->naddresses;
	out->credentials = &sb->credentials;
	out->rate = &sb->rate;
	out->token = sb->token;
	out->sb = sb;
}

static void
reg_view_entry(const policy_t *p, const registry_entry_t *e, sandbox_view_t *out)
{
	const policy_template_t *t = policy_template_find(p, e->f.template_name);

	memset(out, 0, sizeof(*out));
	out->name = e->id;
	out->addresses = e->f.addresses;
	out->naddresses = e->f.naddresses;
	/* a template gone from the policy grants nothing */
	out->credentials = t ? &t->credentials : &reg_no_creds;
	out->rate = t ? &t->rate : &reg_no_rate;
	out->token_hash = e->token_hash;
	out->template_name = e->f.template_name;
	out->ttl_s = t ? t->ttl_s : 0;
	out->ttl_sandbox = t ? t->ttl_sandbox : false;
	out->max_ttl_s = t ? t->max_ttl_s : 0;
	out->expires_at = e->f.expires_at;
	out->created = e->created;
	out->lineage = e->lineage.n > 0 ? &e->lineage : NULL;
	out->suspended = e->suspended_at != 0;
	out->sb = &e->sb;
	out->entry = e;
}

static bool
reg_live(const registry_entry_t *e, int64_t now)
{
	return e != NULL && (e->f.expires_at == 0 || e->f.expires_at > now);
}

int
sandbox_view_find(const policy_t *p, const registry_snapshot_t *reg, const char *name,
    int64_t now, sandbox_view_t *out)
{
	const policy_sandbox_t *sb = policy_sandbox_find(p, name);
	const registry_entry_t *e;

	if (sb != NULL) {
		reg_view_static(sb, out);
		return 0;
	}
	if (!reg_live(e = registry_find(reg, name), now))
		return -1;
	reg_view_entry(p, e, out);
	return 0;
}

int
sandbox_view_find_by_addr(const policy_t *p, const registry_snapshot_t *reg,
    const struct sockaddr *sa, int64_t now, sandbox_view_t *out)
{
	const registry_entry_t *e;

	for (size_t i = 0; i < p->nsandboxes; i++)
		for (size_t k = 0; k < p->sandboxes[i].naddresses; k++)
			if (netaddr_cidr_contains(&p->sandboxes[i].addresses[k], sa)) {
				reg_view_static(&p->sandboxes[i], out);
				return 0;
			}
	if (!reg_live(e = registry_find_addr(reg, sa), now))
		return -1;
	reg_view_entry(p, e, out);
	return 0;
}

bool
sandbox_view_grants(const sandbox_view_t *v, const char *credential)
{
	for (size_t i = 0; v->credentials && i < v->credentials->n; i++)
		if (strcmp(v->credentials->v[i], credential) == 0)
			return true;
	return false;
}

bool
sandbox_view_contains(const sandbox_view_t *v, const struct sockaddr *sa)
{
	if (sa == NULL)
		return false;
	for (size_t i = 0; i < v->naddresses; i++)
		if (netaddr_cidr_contains(&v->addresses[i], sa))
			return true;
	return false;
}

void
sandbox_view_lifetime(const sandbox_view_t *v, const policy_credential_t *cred,
    sandbox_lifetime_t *out)
{
	if (v->ttl_s != 0 && !v->ttl_sandbox) {
		out->sandbox = false;
		out->ttl_s = v->ttl_s < cred->ttl_s ? v->ttl_s : cred->ttl_s;
	} else if (v->ttl_sandbox || cred->ttl_sandbox) {
		out->sandbox = true;
		out->ttl_s = v->max_ttl_s != 0 && v->max_ttl_s < cred->max_ttl_s ?
		    v->max_ttl_s : cred->max_ttl_s;
	} else {
		out->sandbox = false;
		out->ttl_s = cred->ttl_s;
	}
}
