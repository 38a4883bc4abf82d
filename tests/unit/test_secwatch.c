/*
 * test_secwatch.c — rotating secrets on this test's own event loop: a file secret
 * replaced by a rename is published as a new value that keeps the replaced one for
 * scrubbing (and a counted rotation); a rename that leaves an unusable file keeps the
 * value (a counted failure); an exec secret's first value comes from running it, a
 * failing first run is an error; a watcher for a new policy takes over an unchanged
 * command's value without running it. Waits are bounded loops of the event loop (each
 * iteration ends by the SG_SECRET_TICK_MS timer at the latest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "policy.h"
#include "secval.h"
#include "secwatch.h"
#include "stats.h"

/* Event loop turns a test waits for an inotify event: ~5 s of ticks. */
#define T_MAX_TURNS	50

static char dir[64];

static void
put(const char *name, const char *text, mode_t mode)
{
	char path[128], tmp[140];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static policy_t *
load(const char *json)
{
	char name[128];
	policy_errors_t errs;
	policy_t *p;

	snprintf(name, sizeof(name), "%s/policy.json", dir);
	p = policy_load_buffer(name, json, strlen(json), &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	assert_non_null(p);
	return p;
}

/* The current value of credential name's live cell (a new reference), or NULL. */
static secval_t *
current(policy_t *p, const char *name)
{
	return snapshot_acquire(policy_credential_find(p, name)->live);
}

/* Turn base until credential name's value is want, at most T_MAX_TURNS times. */
static bool
turn_until(struct event_base *base, policy_t *p, const char *name, const char *want)
{
	for (int i = 0; i < T_MAX_TURNS; i++) {
		secval_t *v = current(p, name);
		bool done = v != NULL && strcmp(v->value, want) == 0;

		secval_unref(v);
		if (done)
			return true;
		event_base_loop(base, EVLOOP_ONCE);
	}
	return false;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sg-test-secwatch.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char file_json[] =
    "{\"credentials\": {"
    "  \"f\": {\"secret\": {\"file\": \"tok\"}, \"inject\": {\"type\": \"bearer\"},"
    "    \"hosts\": [\"a.test\"]},"
    "  \"g\": {\"secret\": {\"file\": \"other\"}, \"inject\": {\"type\": \"bearer\"},"
    "    \"hosts\": [\"a.test\"]}}}";

static void
test_file_renamed(void **state)
{
	struct event_base *base = event_base_new();
	char err[256] = "";
	uint64_t rot = sg_stats.secret_rotations, fail = sg_stats.secret_source_failures;
	secwatch_t *w;
	secval_t *v, *g;
	policy_t *p;

	(void)state;
	put("tok", "file-v1-secret\n", 0600);
	put("other", "other-secret\n", 0600);
	p = load(file_json);
	w = secwatch_new(base, p, NULL, err, sizeof(err));
	assert_non_null(w);
	g = current(p, "g");
	put("tok", "file-v2-secret\n", 0600);
	assert_true(turn_until(base, p, "f", "file-v2-secret"));
	v = current(p, "f");
	assert_string_equal(secval_previous(v, 0, NULL), "file-v1-secret");
	assert_true(v->prev_until_ms > 0);
	assert_int_equal(v->expires_ms, 0);
	secval_unref(v);
	assert_int_equal(sg_stats.secret_rotations, rot + 1);
	/* the other credential in the folder was read again, not changed */
	v = current(p, "g");
	assert_string_equal(v->value, "other-secret");
	assert_int_equal(sg_stats.secret_rotations, rot + 1);
	secval_unref(v);
	secval_unref(g);
	/* an unusable replacement (group-readable) keeps the value, counted */
	put("tok", "file-v3-secret\n", 0644);
	for (int i = 0; i < T_MAX_TURNS && sg_stats.secret_source_failures == fail; i++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_true(sg_stats.secret_source_failures > fail);
	v = current(p, "f");
	assert_string_equal(v->value, "file-v2-secret");
	secval_unref(v);
	secwatch_free(w);
	policy_unref(p);
	event_base_free(base);
}

static void
test_exec_first_value_and_handover(void **state)
{
	char json[512], err[256] = "";
	struct event_base *base = event_base_new();
	secwatch_t *w, *w2;
	policy_t *p, *p2;
	secval_t *v, *v2;

	(void)state;
	put("val", "exec-v1-secret\n", 0600);
	snprintf(json, sizeof(json), "{\"credentials\": {\"x\": {\"secret\": {\"exec\": "
	    "[\"cat\", \"%s/val\"], \"ttl\": \"1h\"}, \"inject\": {\"type\": \"bearer\"}, "
	    "\"hosts\": [\"a.test\"]}}}", dir);
	p = load(json);
	assert_null(current(p, "x"));		/* loading runs nothing */
	w = secwatch_new(base, p, NULL, err, sizeof(err));
	assert_non_null(w);
	v = current(p, "x");
	assert_string_equal(v->value, "exec-v1-secret");
	assert_true(v->expires_ms > 0);
	/* a new policy with the same command: the same record, not a new run */
	put("val", "exec-v2-secret\n", 0600);
	p2 = load(json);
	w2 = secwatch_new(base, p2, w, err, sizeof(err));
	assert_non_null(w2);
	v2 = current(p2, "x");
	assert_ptr_equal(v2, v);
	secval_unref(v2);
	secval_unref(v);
	secwatch_free(w);
	policy_unref(p);
	secwatch_free(w2);
	policy_unref(p2);
	event_base_free(base);
}

static void
test_exec_first_run_fails(void **state)
{
	static const char json[] = "{\"credentials\": {\"x\": {\"secret\": {\"exec\": "
	    "[\"sh\", \"-c\", \"echo leaked-token >&2; exit 3\"]}, \"inject\": {\"type\": "
	    "\"bearer\"}, \"hosts\": [\"a.test\"]}}}";
	struct event_base *base = event_base_new();
	char err[256] = "";
	policy_t *p = load(json);

	(void)state;
	assert_null(secwatch_new(base, p, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "secret of credential x: command /usr/bin/sh exited with "
	    "status 3 (stderr: 13 bytes)"));
	assert_null(strstr(err, "leaked"));
	assert_null(current(p, "x"));
	policy_unref(p);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_first_value_and_handover, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_exec_first_run_fails, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
