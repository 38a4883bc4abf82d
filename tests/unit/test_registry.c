/* test_registry.c — registered sandboxes: lookups, conflicts, journal replay, compaction,
 * torn and corrupt tails, expiry, the sandbox view. */
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
    "  \"secure\": {\"credentials\": [\"openai\", \"github\"], \"token_required\": true}}}";

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
	policy_cidr_t c;

	assert_int_equal(put(f, "p", "{\"template\": \"secure\", \"addresses\": [\"10.0.9.1\"], "
	    "\"labels\": {\"owner\": \"ci\"}, \"token\": \"tok-DO-NOT-SHOW\"}", &res), 201);
	assert_int_equal(netaddr_parse_cidr("10.0.9.2", &c, NULL, 0), 0);
	assert_int_equal(registry_fork(f->r, f->p, "p", "k", &c, 1, NOW, &res), 0);
	assert_int_equal(res.status, 201);
	assert_int_equal(registry_fork(f->r, f->p, "p", "k", &c, 1, NOW, &res), -1);
	assert_int_equal(res.status, 409);
	assert_string_equal(res.code, "exists");
	assert_int_equal(registry_fork(f->r, f->p, "nope", "k2", &c, 1, NOW, &res), -1);
	assert_int_equal(res.status, 404);
	assert_int_equal(netaddr_parse_cidr("10.0.9.1", &c, NULL, 0), 0);
	assert_int_equal(registry_fork(f->r, f->p, "p", "k3", &c, 1, NOW, &res), -1);
	assert_string_equal(res.code, "address_conflict");
	s = registry_acquire();
	e = registry_find(s, "k");
	assert_non_null(e);
	assert_string_equal(e->template_name, "secure");
	assert_string_equal(e->parent, "p");
	assert_int_equal(e->nlabels, 1);
	assert_string_equal(e->label_values[0], "ci");
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
	assert_string_equal(registry_find(s, "a")->label_values[0], "1");
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
	assert_int_equal(sandbox_view_ttl(&v, policy_credential_find(f->p, "openai")), 600);
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
	char id[REGISTRY_ID_MAX + 1];
	policy_cidr_t *a = NULL;
	size_t n = 0;
	registry_result_t res;
	const char ok[] = "{\"id\": \"k1\", \"addresses\": [\"10.1.1.1\", \"fd00::1\"]}";
	const char bad[] = "{\"id\": \"k 1\", \"addresses\": [\"10.1.1.1\"]}";

	(void)state;
	assert_int_equal(registry_fork_parse(ok, strlen(ok), id, &a, &n, &res), 0);
	assert_string_equal(id, "k1");
	assert_int_equal(n, 2);
	free(a);
	assert_int_equal(registry_fork_parse(bad, strlen(bad), id, &a, &n, &res), -1);
	assert_int_equal(res.status, 400);
	assert_int_equal(registry_fork_parse("[]", 2, id, &a, &n, &res), -1);
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
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_fork_parse),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
