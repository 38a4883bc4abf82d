/*
 * test_cluster.c — fleet mode's client without a Redis: nothing blocks, an unreachable
 * Redis is retried with backoff and reported as not connected, teardown is clean. The
 * connected paths (AUTH, reconcile, messages) run against a real redis-server in
 * tests/e2e/test_cluster.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "cluster.h"
#include "stats.h"
#include "util.h"

/* Give up on a loop after this: generous for ASan on a loaded machine. */
#define TEST_LOOP_LIMIT_MS	10000

static policy_t *
load_policy(const char *address)
{
	char json[512];
	policy_errors_t errs = {0};
	policy_t *p;

	snprintf(json, sizeof(json), "{\"revocations\": {\"file\": \"/nonexistent/r.json\"}, "
	    "\"cluster\": {\"redis\": {\"address\": \"%s\", \"node\": \"t1\", "
	    "\"password\": {\"value\": \"pw\"}}}}", address);
	p = policy_load_buffer("cluster.json", json, strlen(json), &errs);
	for (size_t i = 0; i < errs.n; i++)
		print_message("%s\n", errs.msg[i]);
	policy_errors_free(&errs);
	assert_non_null(p);
	return p;
}

struct watch {
	struct event_base *base;
	uint64_t want, deadline;
};

/* Stop the loop once the reconnect counter reached want (or at the deadline). */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;

	(void)fd;
	(void)what;
	if (STATS_GET(cluster_reconnects) >= w->want || util_mono_ms() >= w->deadline)
		event_base_loopbreak(w->base);
}

static void
test_unreachable_retried(void **state)
{
	struct event_base *base = event_base_new();
	policy_t *p = load_policy("unix:/nonexistent/sealgate-test-redis.sock");
	uint64_t before = STATS_GET(cluster_reconnects), t0 = util_mono_ms();
	struct watch w = {base, before + 3, t0 + TEST_LOOP_LIMIT_MS};
	struct event *tick = event_new(base, -1, EV_PERSIST, watch_cb, &w);
	char err[256] = "";
	cluster_t *cl;

	(void)state;
	cl = cluster_new(base, p, NULL, err, sizeof(err));
	assert_non_null(cl);
	assert_true(util_mono_ms() - t0 < 1000);	/* started, not waited */
	assert_int_equal(cluster_connected(cl), 0);
	event_add(tick, &(struct timeval){0, 10000});
	event_base_dispatch(base);
	/* three retries take at least the first three backoffs, 100 + 200 + 400 ms, less
	 * what libevent's CLOCK_MONOTONIC_COARSE timers may fire early (a tick each): a
	 * lower bound, so a slow machine only makes it longer; no backoff would take ~0 */
	assert_true(STATS_GET(cluster_reconnects) >= before + 3);
	assert_true(util_mono_ms() - t0 >= 600);
	assert_int_equal(cluster_connected(cl), 0);
	assert_int_equal(STATS_GET(cluster_connected), 0);
	cluster_free(cl);
	event_free(tick);
	policy_unref(p);
	event_base_free(base);
}

static void
test_null_and_free(void **state)
{
	(void)state;
	assert_int_equal(cluster_connected(NULL), 0);
	cluster_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unreachable_retried),
		cmocka_unit_test(test_null_and_free),
	};

	if (sodium_init() < 0)	/* the policy keeps secrets in sodium_malloc memory */
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
