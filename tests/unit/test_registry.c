/* test_registry.c — registered sandboxes: lookups, conflicts, journal replay, compaction,
 * torn and corrupt tails, expiry, the sandbox view, fork and restore lineage, suspension,
 * handle lifetimes. The clock is passed in (NOW). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "netaddr.h"
#include "registry.h"

#define NOW 1700000000

static const char policy_json[] =
    "{\"credentials\": {"
    "  \"openai\": {\"secret\": {\"value\": \"sk-x\"}, \"inject\": {\"type\": \"bearer\"},"
    "    \"hosts\": [\"api.openai.com\"], \"ttl\": \"1h\"},"
    "  \"github\": {\"secret\": {\"value\": \"gh-x\"}, \"inject\": {\"type\": \"bearer\"},"
    "    \"hosts\": [\"api.github.com\"]}},"
    " \"sandboxes\": {\"static-1\": {\"addresses\": [\"10.0.1.0/24\"], \"credentials\": [\"github\"]}},"
    " \"sandbox_templates\": {"
    "  \"job\": {\"credentials\": [\"openai\"], \"ttl\": \"10m\", \"rate\": {\"requests\": 5, \"per\": \"1s\"}},"
    "  \"secure\": {\"credentials\": [\"openai\", \"github\"], \"token_required\": true},"
    "  \"life\": {\"credentials\": [\"openai\", \"github\"], \"ttl\": \"sandbox\","
    "    \"max_ttl\": \"3d\"}}}";

struct fx {
	policy_t *p;
	char dir[64];
	char path[128];
	registry_t *r;
};

static int
setup(void **state)
{
	static struct fx f;
	policy_errors_t errs;
	char err[256];

	memset(&f, 0, sizeof(f));
	f.p = policy_load_buffer("/tmp/sg-reg-test.json", policy_json, strlen(policy_json),
	    &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	if (f.p == NULL)
		return -1;
	snprintf(f.dir, sizeof(f.dir), "/tmp/sg-reg-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.path, sizeof(f.path), "%s/%s", f.dir, REGISTRY_JOURNAL_NAME);
	f.r = registry_open(f.dir, f.p, NOW, err, sizeof(err));
	if (f.r == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char tmp[160];

	registry_close(f->r);
	unlink(f->path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	unlink(tmp);
	rmdir(f->dir);
	policy_unref(f->p);
	return 0;
}

static void
reopen(struct fx *f, int64_t now)
{
	char err[256];

	registry_close(f->r);
	f->r = registry_open(f->dir, f->p, now, err, sizeof(err));
	if (f->r == NULL)
		fail_msg("reopen: %s", err);
}

/* PUT id with body; returns the status. */
static int
put(struct fx *f, const char *id, const char *body, registry_result_t *res)
{
	registry_spec_t spec;
	int st;

	if (registry_spec_parse(id, body, strlen(body), NOW, &spec, res) < 0)
		return res->status;
	registry_put(f->r, f->p, &spec, NOW, res);
	st = res->status;
	registry_spec_free(&spec);
	return st;
}

/* POST /v1/sandboxes/parent/fork with body at now; returns the status. */
static int
fork_at(struct fx *f, const char *parent, const char *id, const char *addr, const char *more,
    int64_t now, registry_result_t *res)
{
	char body[512];
	registry_fork_spec_t spec;

	snprintf(body, sizeof(body), "{\"id\": \"%s\", \"addresses\": [\"%s\"]%s}", id, addr,
	    more ? more : "");
	if (registry_fork_parse(body, strlen(body), now, &spec, res) < 0)
		return res->status;
	registry_fork(f->r, f->p, parent, &spec, now, res);
	registry_fork_spec_free(&spec);
	return res->status;
}

static struct sockaddr_storage ss;

static const struct sockaddr *
sa(const char *addr)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, addr, &v6->sin6_addr), 1);
		v6->sin6_family = AF_INET6;
	}
	return (const struct sockaddr *)&ss;
}

static const char *
find_addr_id(const char *addr)
{
	registry_snapshot_t *s = registry_acquire();
	const registry_entry_t *e = registry_find_addr(s, sa(addr));
	static char id[80];

	snprintf(id, sizeof(id), "%s", e ? e->id : "-");
	registry_unref(s);
	return id;
}

static void
test_put_find(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	uint64_t gen;

	assert_int_equal(put(f, "sb-a", "{\"template\": \"job\", \"addresses\": "
	    "[\"10.0.9.0/24\", \"fd00::9/128\"], \"labels\": {\"owner\": \"ci\", \"job\": \"7\"}}",
	    &res), 201);
	assert_true(res.created);
	gen = res.generation;
	/* same body: 200, same generation, nothing journalled */
	assert_int_equal(put(f, "sb-a", "{\"labels\": {\"job\": \"7\", \"owner\": \"ci\"}, "
	    "\"template\": \"job\", \"addresses\": [\"10.0.9.0/24\", \"fd00::9/128\"]}", &res), 200);
	assert_int_equal(res.generation, gen);
	assert_false(res.changed);
	assert_int_equal(put(f, "sb-b", "{\"template\": \"job\", \"addresses\": [\"10.0.8.1\"]}",
	    &res), 201);
	assert_string_equal(find_addr_id("10.0.9.200"), "sb-a");
	assert_string_equal(find_addr_id("::ffff:10.0.9.1"), "sb-a");
	assert_string_equal(find_addr_id("fd00::9"), "sb-a");
	assert_string_equal(find_addr_id("10.0.8.1"), "sb-b");
	assert_string_equal(find_addr_id("10.0.8.2"), "-");
	assert_string_equal(find_addr_id("10.0.10.0"), "-");
	assert_string_equal(find_addr_id("10.0.1.5"), "-");	/* static: not in the registry */
	/* replace: new generation, created kept */
	assert_int_equal(put(f, "sb-a", "{\"template\": \"job\", \"addresses\": [\"10.0.7.0/24\"]}",
	    &res), 200);
	assert_true(res.generation > gen);
	assert_string_equal(find_addr_id("10.0.9.1"), "-");
	assert_string_equal(find_addr_id("10.0.7.1"), "sb-a");
}

static void
test_put_errors(void **state)
{
	struct fx *f = *state;
	registry_result_t res;

	assert_int_equal(put(f, "sb-a", "{\"template\": \"job\", \"addresses\": [\"10.0.9.0/24\"]}",
	    &res), 201);
	assert_int_equal(put(f, "sb-b", "{\"template\": \"job\", \"addresses\": [\"10.0.9.128/25\"]}",
	    &res), 409);
	assert_string_equal(res.code, "address_conflict");
	assert_non_null(strstr(res.message, "sb-a"));
	assert_non_null(strstr(res.message, "sb-b"));
	assert_int_equal(put(f, "sb-c", "{\"template\": \"job\", \"addresses\": [\"10.0.1.7\"]}",
	    &res), 409);
	assert_non_null(strstr(res.message, "static-1"));
	assert_non_null(strstr(res.message, "sb-c"));
	assert_int_equal(put(f, "static-1", "{\"template\": \"job\", \"addresses\": [\"10.5.0.1\"]}",
	    &res), 409);
	assert_string_equal(res.code, "exists");
	assert_int_equal(put(f, "sb-d", "{\"template\": \"nope\", \"addresses\": [\"10.6.0.1\"]}",
	    &res), 422);
	assert_string_equal(res.code, "unknown_template");
	assert_int_equal(put(f, "sb-d", "{\"template\": \"secure\", \"addresses\": [\"10.6.0.1\"]}",
	    &res), 400);
	assert_non_null(strstr(res.message, "token"));
	assert_int_equal(put(f, "sb-d", "{\"template\": \"job\", \"addresses\": [\"10.6.0.1/8\"]}",
	    &res), 400);
	assert_int_equal(put(f, "sb-d", "{\"template\": \"job\", \"addresses\": []}", &res), 400);
	assert_int_equal(put(f, "sb-d", "{\"template\": \"job\", \"addresses\": [\"10.6.0.1\"], "
	    "\"colour\": 1}", &res), 400);
	assert_int_equal(put(f, "bad id", "{\"template\": \"job\", \"addresses\": [\"10.6.0.1\"]}",
	    &res), 400);
	assert_int_equal(put(f, "sb-d", "{\"template\": \"job\", \"addresses\": [\"10.6.0.1\"], "
	    "\"labels\": {\"k\": 1}}", &res), 400);
	assert_int_equal(put(f, "sb-d", "not json", &res), 400);
	assert_int_equal(put(f, "sb-d", "{\"template\": \"job\", \"addresses\": [\"10.6.0.1\"], "
	    "\"expires_at\": 5}", &res), 400);	/* in the past */
	assert_int_equal(registry_count(NULL), 0);
}

static void
test_delete_fork(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;
	const registry_entry_t *e;

	assert_int_equal(put(f, "p", "{\"template\": \"secure\", \"addresses\": [\"10.0.9.1\"], "
	    "\"labels\": {\"owner\": \"ci\"}, \"token\": \"tok-DO-NOT-SHOW\"}", &res), 201);
	assert_int_equal(fork_at(f, "p", "k", "10.0.9.2", NULL, NOW, &res), 201);
	assert_int_equal(fork_at(f, "p", "k", "10.0.9.2", NULL, NOW, &res), 409);
	assert_string_equal(res.code, "exists");
	assert_int_equal(fork_at(f, "nope", "k2", "10.0.9.2", NULL, NOW, &res), 404);
	assert_int_equal(fork_at(f, "p", "k3", "10.0.9.1", NULL, NOW, &res), 409);
	assert_string_equal(res.code, "address_conflict");
	s = registry_acquire();
	e = registry_find(s, "k");
	assert_non_null(e);
	assert_string_equal(e->f.template_name, "secure");
	assert_string_equal(e->parent, "p");
	assert_int_equal(e->f.nlabels, 1);
	assert_string_equal(e->f.label_values[0], "ci");
	assert_non_null(e->token_hash);
	{
		char *j = registry_entry_json(e);

		assert_null(strstr(j, "tok-DO"));
		assert_non_null(strstr(j, "\"token\":true"));
		free(j);
	}
	registry_unref(s);
	assert_int_equal(registry_delete(f->r, "p", NOW, &res), 0);
	assert_int_equal(registry_delete(f->r, "p", NOW, &res), -1);
	assert_int_equal(res.status, 404);
	s = registry_acquire();
	assert_null(registry_find(s, "p"));
	assert_string_equal(registry_tombstone(s, "p"), "deleted");
	assert_null(registry_tombstone(s, "k"));
	registry_unref(s);
	/* re-registering clears the tombstone */
	assert_int_equal(put(f, "p", "{\"template\": \"job\", \"addresses\": [\"10.0.9.1\"]}",
	    &res), 201);
	s = registry_acquire();
	assert_null(registry_tombstone(s, "p"));
	registry_unref(s);
}

static void
test_replay_and_compaction(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;
	struct stat st1, st2;
	uint64_t gen;

	assert_int_equal(put(f, "a", "{\"template\": \"job\", \"addresses\": [\"10.0.9.1\"], "
	    "\"labels\": {\"x\": \"1\"}, \"token\": \"t-a\"}", &res), 201);
	for (int i = 0; i < 20; i++) {
		char body[128];

		snprintf(body, sizeof(body), "{\"template\": \"job\", \"addresses\": "
		    "[\"10.0.8.%d\"]}", i + 1);
		assert_int_equal(put(f, "b", body, &res), i == 0 ? 201 : 200);
	}
	assert_int_equal(put(f, "c", "{\"template\": \"job\", \"addresses\": [\"10.0.7.1\"]}",
	    &res), 201);
	assert_int_equal(registry_delete(f->r, "c", NOW, &res), 0);
	gen = res.generation;
	assert_int_equal(stat(f->path, &st1), 0);
	reopen(f, NOW + 10);
	assert_int_equal(registry_load_info(f->r)->records, 23);
	assert_int_equal(registry_load_info(f->r)->live, 2);
	assert_int_equal(registry_load_info(f->r)->dropped_bytes, 0);
	assert_int_equal(stat(f->path, &st2), 0);
	assert_true(st2.st_size < st1.st_size);		/* compacted */
	s = registry_acquire();
	assert_int_equal(registry_count(s), 2);
	assert_int_equal(registry_generation(s), gen);
	assert_non_null(registry_find(s, "a"));
	assert_non_null(registry_find(s, "a")->token_hash);
	assert_string_equal(registry_find(s, "a")->f.label_values[0], "1");
	assert_string_equal(find_addr_id("10.0.8.20"), "b");
	assert_string_equal(registry_tombstone(s, "c"), "deleted");
	registry_unref(s);
	/* reopened again: the compacted file replays to the same state */
	reopen(f, NOW + 20);
	assert_int_equal(registry_load_info(f->r)->records, 3);
	s = registry_acquire();
	assert_int_equal(registry_count(s), 2);
	assert_string_equal(registry_tombstone(s, "c"), "deleted");
	registry_unref(s);
	/* new generations continue above the replayed ones */
	assert_int_equal(put(f, "d", "{\"template\": \"job\", \"addresses\": [\"10.0.6.1\"]}",
	    &res), 201);
	assert_true(res.generation > gen);
	/* the journal holds no token */
	{
		char *buf = NULL, err[128];
		size_t len = 0;

		assert_int_equal(util_read_file(f->path, 1 << 20, 0, &buf, &len, err,
		    sizeof(err)), 0);
		assert_null(memmem(buf, len, "t-a", 3));
		free(buf);
	}
}

/* Journal bytes of a fresh file holding "a" and "b", and the offset of b's record. */
static void
two_records(struct fx *f, uint8_t **buf, size_t *len, size_t *last)
{
	registry_result_t res;
	struct stat st;
	char err[128];

	assert_int_equal(put(f, "a", "{\"template\": \"job\", \"addresses\": [\"10.0.9.1\"]}",
	    &res), 201);
	assert_int_equal(stat(f->path, &st), 0);
	*last = (size_t)st.st_size;
	assert_int_equal(put(f, "b", "{\"template\": \"job\", \"addresses\": [\"10.0.9.2\"]}",
	    &res), 201);
	registry_close(f->r);
	f->r = NULL;
	assert_int_equal(util_read_file(f->path, 1 << 20, 0, (char **)buf, len, err,
	    sizeof(err)), 0);
	assert_true(*len > *last);
}

static void
write_bytes(const char *path, const uint8_t *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

static void
test_torn_tail_every_offset(void **state)
{
	struct fx *f = *state;
	uint8_t *buf;
	size_t len, last;

	two_records(f, &buf, &len, &last);
	for (size_t cut = last; cut < len; cut++) {
		registry_snapshot_t *s;
		char err[256];

		write_bytes(f->path, buf, cut);
		f->r = registry_open(f->dir, f->p, NOW, err, sizeof(err));
		if (f->r == NULL)
			fail_msg("cut %zu: %s", cut, err);
		s = registry_acquire();
		assert_int_equal(registry_count(s), 1);
		assert_non_null(registry_find(s, "a"));
		assert_int_equal(registry_load_info(f->r)->dropped_bytes, cut - last);
		registry_unref(s);
		registry_close(f->r);
		f->r = NULL;
	}
	/* whole file: both */
	write_bytes(f->path, buf, len);
	reopen(f, NOW);
	assert_int_equal(registry_load_info(f->r)->live, 2);
	free(buf);
}

static void
test_corrupt_checksum_and_garbage(void **state)
{
	struct fx *f = *state;
	uint8_t *buf;
	size_t len, last;
	registry_snapshot_t *s;
	char err[256];
	uint8_t *more;

	two_records(f, &buf, &len, &last);
	buf[len - 3] ^= 0x20;			/* inside b's JSON */
	write_bytes(f->path, buf, len);
	f->r = registry_open(f->dir, f->p, NOW, err, sizeof(err));
	assert_non_null(f->r);
	s = registry_acquire();
	assert_int_equal(registry_count(s), 1);
	assert_null(registry_find(s, "b"));
	registry_unref(s);
	registry_close(f->r);
	buf[len - 3] ^= 0x20;
	buf[last + 5] ^= 0x01;			/* in b's checksum */
	write_bytes(f->path, buf, len);
	f->r = registry_open(f->dir, f->p, NOW, err, sizeof(err));
	assert_non_null(f->r);
	assert_int_equal(registry_load_info(f->r)->live, 1);
	registry_close(f->r);
	/* garbage appended after good records */
	buf[last + 5] ^= 0x01;
	more = malloc(len + 7);
	memcpy(more, buf, len);
	memcpy(more + len, "garbage", 7);
	write_bytes(f->path, more, len + 7);
	f->r = registry_open(f->dir, f->p, NOW, err, sizeof(err));
	assert_non_null(f->r);
	assert_int_equal(registry_load_info(f->r)->live, 2);
	assert_int_equal(registry_load_info(f->r)->dropped_bytes, 7);
	free(more);
	free(buf);
}

static void
test_sweep(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;

	assert_int_equal(put(f, "e", "{\"template\": \"job\", \"addresses\": [\"10.0.9.1\"], "
	    "\"expires_at\": 1700000010}", &res), 201);
	assert_int_equal(put(f, "k", "{\"template\": \"job\", \"addresses\": [\"10.0.9.2\"]}",
	    &res), 201);
	assert_int_equal(registry_sweep(NOW + 9), 0);
	assert_int_equal(registry_sweep(NOW + 10), 1);
	s = registry_acquire();
	assert_null(registry_find(s, "e"));
	assert_string_equal(registry_tombstone(s, "e"), "expired");
	assert_non_null(registry_find(s, "k"));
	registry_unref(s);
	reopen(f, NOW + 11);
	s = registry_acquire();
	assert_int_equal(registry_count(s), 1);
	assert_string_equal(registry_tombstone(s, "e"), "expired");
	registry_unref(s);
	/* tombstones go once no handle from before can be alive */
	assert_int_equal(registry_sweep(NOW + 10 + REGISTRY_TOMBSTONE_S), 0);
	s = registry_acquire();
	assert_null(registry_tombstone(s, "e"));
	registry_unref(s);
}

static void
test_view(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;
	sandbox_view_t v;

	assert_int_equal(put(f, "r", "{\"template\": \"job\", \"addresses\": [\"10.0.9.0/28\"], "
	    "\"expires_at\": 1700000500}", &res), 201);
	s = registry_acquire();
	assert_int_equal(sandbox_view_find(f->p, s, "static-1", NOW, &v), 0);
	assert_null(v.template_name);
	assert_true(sandbox_view_grants(&v, "github"));
	assert_int_equal(sandbox_view_find(f->p, s, "r", NOW, &v), 0);
	assert_string_equal(v.template_name, "job");
	assert_true(sandbox_view_grants(&v, "openai"));
	assert_false(sandbox_view_grants(&v, "github"));
	assert_int_equal(v.rate->requests, 5);
	assert_int_equal(v.sb->rate.requests, 5);
	assert_string_equal(v.sb->name, "r");
	{
		sandbox_lifetime_t life;

		sandbox_view_lifetime(&v, policy_credential_find(f->p, "openai"), &life);
		assert_false(life.sandbox);
		assert_int_equal(life.ttl_s, 600);	/* the template's 10m caps 1h */
	}
	assert_true(sandbox_view_contains(&v, sa("10.0.9.15")));
	assert_false(sandbox_view_contains(&v, sa("10.0.9.16")));
	assert_int_equal(sandbox_view_find(f->p, s, "r", NOW + 500, &v), -1);	/* expired */
	assert_int_equal(sandbox_view_find(f->p, s, "zz", NOW, &v), -1);
	assert_int_equal(sandbox_view_find_by_addr(f->p, s, sa("10.0.1.9"), NOW, &v), 0);
	assert_string_equal(v.name, "static-1");
	assert_int_equal(sandbox_view_find_by_addr(f->p, s, sa("10.0.9.3"), NOW, &v), 0);
	assert_string_equal(v.name, "r");
	assert_int_equal(sandbox_view_find_by_addr(f->p, NULL, sa("10.0.9.3"), NOW, &v), -1);
	registry_unref(s);
}

/*
 * Publication keeps no old snapshot for anyone: a replaced snapshot lives exactly as long
 * as its readers' references. Entries count the snapshots that hold them, which shows it.
 */
static void
test_snapshot_lifetime(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s1, *s2;
	const registry_entry_t *a, *b;
	uint64_t gen = registry_published_generation();
	char id[16], body[128];

	assert_int_equal(put(f, "a", "{\"template\": \"job\", \"addresses\": "
	    "[\"10.0.5.0/24\"]}", &res), 201);
	assert_int_equal(registry_published_generation(), gen + 1);
	s1 = registry_acquire();
	assert_non_null(a = registry_find(s1, "a"));
	assert_int_equal(a->refcnt, 1);		/* the published snapshot, which s1 is */
	assert_int_equal(put(f, "b", "{\"template\": \"job\", \"addresses\": "
	    "[\"10.0.6.0/24\"]}", &res), 201);
	assert_int_equal(registry_published_generation(), gen + 2);
	assert_int_equal(a->refcnt, 2);		/* s1 and the new published snapshot */
	registry_unref(s1);			/* s1's last reference: freed, not retained */
	assert_int_equal(a->refcnt, 1);
	/* a reader of an old snapshot keeps an entry deleted since */
	s2 = registry_acquire();
	assert_non_null(b = registry_find(s2, "b"));
	assert_int_equal(registry_delete(f->r, "b", NOW, &res), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "x%d", i);
		snprintf(body, sizeof(body), "{\"template\": \"job\", \"addresses\": "
		    "[\"10.1.%d.0/24\"]}", i);
		assert_int_equal(put(f, id, body, &res), 201);
	}
	reopen(f, NOW);
	assert_string_equal(find_addr_id("10.0.6.1"), "-");
	assert_int_equal(b->refcnt, 1);		/* s2 alone */
	assert_string_equal(b->id, "b");
	assert_ptr_equal(registry_find_addr(s2, sa("10.0.6.1")), b);
	registry_unref(s2);			/* frees b */
}

static void
test_parse_time(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(registry_parse_time("1700000123", NOW, &t), 0);
	assert_int_equal(t, 1700000123);
	assert_int_equal(registry_parse_time("1h", NOW, &t), 0);
	assert_int_equal(t, NOW + 3600);
	assert_int_equal(registry_parse_time("2023-11-14T22:13:20Z", NOW, &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(registry_parse_time("2023-11-14T23:13:20+01:00", NOW, &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(registry_parse_time("2023-11-14T22:13:20.5Z", NOW, &t), 0);
	assert_int_equal(registry_parse_time("2023-11-14 22:13:20", NOW, &t), -1);
	assert_int_equal(registry_parse_time("soon", NOW, &t), -1);
	assert_int_equal(registry_parse_time("0", NOW, &t), -1);
	assert_int_equal(registry_parse_time("-5", NOW, &t), -1);
}

static void
test_fork_parse(void **state)
{
	registry_fork_spec_t spec;
	registry_result_t res;
	const char ok[] = "{\"id\": \"k1\", \"addresses\": [\"10.1.1.1\", \"fd00::1\"]}";
	const char more[] = "{\"id\": \"k2\", \"addresses\": [\"10.1.1.1\"], \"template\": "
	    "\"job\", \"token\": \"t-DO-NOT-SHOW\", \"expires_at\": \"1h\"}";
	const char *const bad[] = {
		"{\"id\": \"k 1\", \"addresses\": [\"10.1.1.1\"]}", "[]",
		"{\"id\": \"k1\", \"addresses\": [\"10.1.1.1\"], \"labels\": {}}",
		"{\"id\": \"k1\", \"addresses\": [\"10.1.1.1\"], \"template\": 5}",
		"{\"id\": \"k1\", \"addresses\": [\"10.1.1.1\"], \"token\": \"\"}",
		"{\"id\": \"k1\", \"addresses\": [\"10.1.1.1\"], \"expires_at\": \"soon\"}",
	};

	(void)state;
	assert_int_equal(registry_fork_parse(ok, strlen(ok), NOW, &spec, &res), 0);
	assert_string_equal(spec.id, "k1");
	assert_int_equal(spec.naddresses, 2);
	assert_null(spec.template_name);
	assert_null(spec.token);
	assert_false(spec.has_expires);
	registry_fork_spec_free(&spec);
	assert_int_equal(registry_fork_parse(more, strlen(more), NOW, &spec, &res), 0);
	assert_string_equal(spec.template_name, "job");
	assert_string_equal(spec.token, "t-DO-NOT-SHOW");
	assert_true(spec.has_expires);
	assert_int_equal(spec.expires_at, NOW + 3600);
	registry_fork_spec_free(&spec);
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		if (registry_fork_parse(bad[i], strlen(bad[i]), NOW, &spec, &res) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(res.status, 400);
		assert_null(spec.addresses);
	}
}

/* --- lineage, restore, suspension ---------------------------------------------------- */

static const registry_entry_t *
entry(registry_snapshot_t *s, const char *id)
{
	const registry_entry_t *e = registry_find(s, id);

	if (e == NULL)
		fail_msg("no entry %s", id);
	return e;
}

static void
test_fork_lineage(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;
	const registry_entry_t *e;

	assert_int_equal(put(f, "g", "{\"template\": \"job\", \"addresses\": [\"10.0.9.1\"], "
	    "\"token\": \"tok-g\"}", &res), 201);
	assert_int_equal(fork_at(f, "g", "p", "10.0.9.2", NULL, NOW + 10, &res), 201);
	/* a fork with its own template, token and expiry */
	assert_int_equal(fork_at(f, "p", "c", "10.0.9.3", ", \"template\": \"secure\", "
	    "\"token\": \"tok-c\", \"expires_at\": 1700009000", NOW + 20, &res), 201);
	assert_int_equal(fork_at(f, "p", "x", "10.0.9.4", ", \"template\": \"nope\"",
	    NOW + 20, &res), 422);
	s = registry_acquire();
	e = entry(s, "p");
	assert_string_equal(e->parent, "g");
	assert_int_equal(e->lineage.n, 1);
	assert_string_equal(e->lineage.links[0].id, "g");
	assert_int_equal(e->lineage.links[0].at, NOW + 10);
	assert_non_null(e->token_hash);		/* g's */
	e = entry(s, "c");
	assert_string_equal(e->f.template_name, "secure");
	assert_int_equal(e->f.expires_at, 1700009000);
	assert_int_equal(e->lineage.n, 2);	/* nearest first */
	assert_string_equal(e->lineage.links[0].id, "p");
	assert_int_equal(e->lineage.links[0].at, NOW + 20);
	assert_string_equal(e->lineage.links[1].id, "g");
	assert_int_equal(e->lineage.links[1].at, NOW + 10);
	assert_int_not_equal(memcmp(e->token_hash, entry(s, "g")->token_hash,
	    REGISTRY_TOKEN_HASH_LEN), 0);	/* its own token */
	{
		char *j = registry_entry_json(e);

		assert_non_null(strstr(j, "\"lineage\":[{\"at\":1700000020,\"id\":\"p\"},"
		    "{\"at\":1700000010,\"id\":\"g\"}]"));
		assert_non_null(strstr(j, "\"suspended\":false"));
		assert_null(strstr(j, "tok-c"));
		free(j);
	}
	registry_unref(s);
	/* deleting the parent leaves the fork's lineage alone; a re-PUT keeps it too */
	assert_int_equal(registry_delete(f->r, "p", NOW + 30, &res), 0);
	assert_int_equal(put(f, "c", "{\"template\": \"secure\", \"addresses\": "
	    "[\"10.0.9.5\"], \"token\": \"tok-c\"}", &res), 200);
	reopen(f, NOW + 40);			/* and the journal keeps all of it */
	s = registry_acquire();
	e = entry(s, "c");
	assert_int_equal(e->lineage.n, 2);
	assert_string_equal(e->lineage.links[1].id, "g");
	assert_string_equal(e->parent, "p");
	assert_string_equal(find_addr_id("10.0.9.5"), "c");
	registry_unref(s);
}

static void
test_lineage_depth_bound(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	char prev[16] = "s0", id[16], addr[32];

	assert_int_equal(put(f, "s0", "{\"template\": \"job\", \"addresses\": [\"10.1.0.0\"]}",
	    &res), 201);
	for (int i = 1; i <= LINEAGE_MAX_DEPTH; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		snprintf(addr, sizeof(addr), "10.1.0.%d", i);
		if (fork_at(f, prev, id, addr, NULL, NOW + i, &res) != 201)
			fail_msg("fork %d: %s", i, res.message);
		snprintf(prev, sizeof(prev), "%s", id);
	}
	assert_int_equal(fork_at(f, prev, "deep", "10.1.1.1", NULL, NOW + 100, &res), 409);
	assert_string_equal(res.code, "lineage_too_deep");
	/* restoring the deepest one is refused the same way; restoring its parent is not */
	assert_int_equal(put(f, "r", "{\"template\": \"job\", \"addresses\": [\"10.1.1.2\"], "
	    "\"restored_from\": \"s32\", \"at\": 1699999990}", &res), 409);
	assert_int_equal(put(f, "r", "{\"template\": \"job\", \"addresses\": [\"10.1.1.2\"], "
	    "\"restored_from\": \"s31\", \"at\": 1699999990}", &res), 201);
}

static void
test_restore(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;
	const registry_entry_t *e;
	const char *bad[] = {
		"\"restored_from\": \"p\"", "\"at\": 1699999000",
		"\"restored_from\": \"p q\", \"at\": 1699999000",
		"\"restored_from\": \"p\", \"at\": \"yesterday\"",
		"\"restored_from\": \"p\", \"at\": 1700000100",	/* the future */
		"\"restored_from\": \"p\", \"at\": \"1h\"",
	};
	char body[256];

	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		snprintf(body, sizeof(body), "{\"template\": \"job\", \"addresses\": "
		    "[\"10.0.9.1\"], %s}", bad[i]);
		if (put(f, "q", body, &res) != 400)
			fail_msg("accepted %s", bad[i]);
	}
	assert_int_equal(put(f, "p", "{\"template\": \"job\", \"addresses\": [\"10.0.9.1\"]}",
	    &res), 201);
	assert_int_equal(fork_at(f, "p", "k", "10.0.9.2", NULL, NOW - 500, &res), 201);
	/* a checkpoint of k (taken before now, RFC 3339) restored as q: k's links, capped */
	assert_int_equal(put(f, "q", "{\"template\": \"job\", \"addresses\": [\"10.0.9.3\"], "
	    "\"restored_from\": \"k\", \"at\": \"2023-11-14T22:05:00Z\"}", &res), 201);
	/* a checkpoint of a sandbox this sidecar never knew: one link */
	assert_int_equal(put(f, "z", "{\"template\": \"job\", \"addresses\": [\"10.0.9.4\"], "
	    "\"restored_from\": \"elsewhere\", \"at\": 1699999000}", &res), 201);
	s = registry_acquire();
	e = entry(s, "q");
	assert_string_equal(e->f.restored_from, "k");
	assert_int_equal(e->f.restored_at, 1699999500);
	assert_int_equal(e->lineage.n, 2);
	assert_int_equal(e->lineage.links[0].at, 1699999500);
	assert_string_equal(e->lineage.links[1].id, "p");
	assert_int_equal(e->lineage.links[1].at, 1699999500);	/* min(fork, checkpoint) */
	assert_int_equal(entry(s, "z")->lineage.n, 1);
	registry_unref(s);
	/* the same restore again changes nothing; another checkpoint replaces the lineage */
	assert_int_equal(put(f, "z", "{\"template\": \"job\", \"addresses\": [\"10.0.9.4\"], "
	    "\"restored_from\": \"elsewhere\", \"at\": 1699999000}", &res), 200);
	assert_false(res.changed);
	assert_int_equal(put(f, "z", "{\"template\": \"job\", \"addresses\": [\"10.0.9.4\"], "
	    "\"restored_from\": \"elsewhere\", \"at\": 1699999900}", &res), 200);
	assert_true(res.changed);
	reopen(f, NOW + 1);
	s = registry_acquire();
	assert_int_equal(entry(s, "z")->lineage.links[0].at, 1699999900);
	assert_int_equal(entry(s, "q")->lineage.n, 2);
	registry_unref(s);
}

static void
test_suspend_resume(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;
	sandbox_view_t v;
	uint64_t gen;

	assert_int_equal(put(f, "a", "{\"template\": \"job\", \"addresses\": [\"10.0.9.1\"]}",
	    &res), 201);
	assert_int_equal(put(f, "b", "{\"template\": \"job\", \"addresses\": [\"10.0.9.2\"]}",
	    &res), 201);
	assert_int_equal(registry_suspended_published(), 0);
	assert_int_equal(registry_suspend(f->r, "a", true, NOW + 5, &res), 0);
	assert_true(res.changed);
	gen = res.generation;
	assert_int_equal(registry_suspend(f->r, "a", true, NOW + 6, &res), 0);	/* again */
	assert_false(res.changed);
	assert_int_equal(res.generation, gen);
	assert_int_equal(registry_suspend(f->r, "static-1", true, NOW, &res), -1);
	assert_int_equal(res.status, 404);
	assert_int_equal(registry_suspended_published(), 1);
	s = registry_acquire();
	assert_int_equal(entry(s, "a")->suspended_at, NOW + 5);
	assert_int_equal(registry_suspended_count(s), 1);
	assert_int_equal(sandbox_view_find_by_addr(f->p, s, sa("10.0.9.1"), NOW, &v), 0);
	assert_true(v.suspended);
	assert_string_equal(find_addr_id("10.0.9.1"), "a");	/* still registered */
	registry_unref(s);
	/* a PUT reconfigures, it does not wake: suspension survives it and a restart */
	assert_int_equal(put(f, "a", "{\"template\": \"job\", \"addresses\": [\"10.0.9.7\"]}",
	    &res), 200);
	reopen(f, NOW + 10);
	assert_int_equal(registry_suspended_published(), 1);
	s = registry_acquire();
	assert_int_equal(entry(s, "a")->suspended_at, NOW + 5);
	assert_int_equal(entry(s, "b")->suspended_at, 0);
	registry_unref(s);
	assert_int_equal(registry_suspend(f->r, "a", false, NOW + 20, &res), 0);
	assert_true(res.changed);
	assert_int_equal(registry_suspended_published(), 0);
	reopen(f, NOW + 30);
	assert_int_equal(registry_suspended_published(), 0);
	/* suspend records replay after compaction too: suspend, reopen twice */
	assert_int_equal(registry_suspend(f->r, "b", true, NOW + 31, &res), 0);
	reopen(f, NOW + 32);
	reopen(f, NOW + 33);
	s = registry_acquire();
	assert_int_equal(entry(s, "b")->suspended_at, NOW + 31);
	registry_unref(s);
}

/* A journal record as registry.h describes it: length, checksum, JSON. */
static void
append_record(const char *path, const char *json)
{
	uint8_t hdr[REGISTRY_HDR_LEN], d[crypto_generichash_BYTES_MIN];
	size_t n = strlen(json);
	FILE *f = fopen(path, "ab");

	assert_non_null(f);
	hdr[0] = (uint8_t)n;
	hdr[1] = (uint8_t)(n >> 8);
	hdr[2] = (uint8_t)(n >> 16);
	hdr[3] = (uint8_t)(n >> 24);
	crypto_generichash(d, sizeof(d), (const unsigned char *)json, n, NULL, 0);
	memcpy(hdr + 4, d, 8);
	assert_int_equal(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	assert_int_equal(fwrite(json, 1, n, f), n);
	fclose(f);
}

static void
test_legacy_fork_record(void **state)
{
	struct fx *f = *state;
	registry_snapshot_t *s;
	const registry_entry_t *e;

	registry_close(f->r);
	unlink(f->path);
	append_record(f->path, "{\"op\":\"put\",\"id\":\"p\",\"template\":\"job\","
	    "\"addresses\":[\"10.0.9.1/32\"],\"labels\":{},\"expires_at\":0,"
	    "\"created\":1699990000,\"generation\":1}");
	{	/* the magic goes first: rewrite the file as magic + what was appended */
		char *buf = NULL, err[128];
		size_t len = 0;
		FILE *fp;

		assert_int_equal(util_read_file(f->path, 1 << 20, 0, &buf, &len, err,
		    sizeof(err)), 0);
		fp = fopen(f->path, "wb");
		fwrite(REGISTRY_JOURNAL_MAGIC, 1, REGISTRY_MAGIC_LEN, fp);
		fwrite(buf, 1, len, fp);
		fclose(fp);
		free(buf);
	}
	/* a fork journalled by a version that recorded no lineage */
	append_record(f->path, "{\"op\":\"fork\",\"id\":\"k\",\"template\":\"job\","
	    "\"addresses\":[\"10.0.9.2/32\"],\"labels\":{},\"expires_at\":0,"
	    "\"created\":1699995000,\"generation\":2,\"parent\":\"p\"}");
	f->r = NULL;
	reopen(f, NOW);
	assert_int_equal(registry_load_info(f->r)->records, 2);
	s = registry_acquire();
	e = entry(s, "k");
	assert_int_equal(e->lineage.n, 1);	/* its parent, at the fork */
	assert_string_equal(e->lineage.links[0].id, "p");
	assert_int_equal(e->lineage.links[0].at, 1699995000);
	assert_int_equal(entry(s, "p")->lineage.n, 0);
	registry_unref(s);
}

static void
test_lifetime(void **state)
{
	struct fx *f = *state;
	registry_result_t res;
	registry_snapshot_t *s;
	sandbox_view_t v;
	sandbox_lifetime_t life;
	const policy_credential_t *oa = policy_credential_find(f->p, "openai");
	const policy_credential_t *gh = policy_credential_find(f->p, "github");

	assert_int_equal(put(f, "l", "{\"template\": \"life\", \"addresses\": [\"10.0.9.1\"]}",
	    &res), 201);
	s = registry_acquire();
	assert_int_equal(sandbox_view_find(f->p, s, "l", NOW, &v), 0);
	sandbox_view_lifetime(&v, oa, &life);	/* template "sandbox": max_ttl 3d caps 30d */
	assert_true(life.sandbox);
	assert_int_equal(life.ttl_s, 3 * 24 * 3600);
	assert_int_equal(sandbox_view_find(f->p, s, "static-1", NOW, &v), 0);
	sandbox_view_lifetime(&v, gh, &life);	/* static, credential default: 1h wall-clock */
	assert_false(life.sandbox);
	assert_int_equal(life.ttl_s, SG_HANDLE_TTL_DEFAULT_S);
	registry_unref(s);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_put_find),
		T(test_put_errors),
		T(test_delete_fork),
		T(test_replay_and_compaction),
		T(test_torn_tail_every_offset),
		T(test_corrupt_checksum_and_garbage),
		T(test_sweep),
		T(test_view),
		T(test_fork_lineage),
		T(test_lineage_depth_bound),
		T(test_restore),
		T(test_suspend_resume),
		T(test_lifetime),
		T(test_legacy_fork_record),
		T(test_snapshot_lifetime),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_fork_parse),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
