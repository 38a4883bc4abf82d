/*
 * test_fetchcache.c — the shared table with its own ops and numbers (the typed caches'
 * rules are tested in test_stscache and test_mintcache): min_left, retry window and
 * stale window come from the ops; refresh from the value's own time; values handed out
 * carry a reference; a terminal failure stays; invalidate drops only the value it names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>

#include "fetchcache.h"

struct val {
	int64_t exp, refresh;
	int refs;
};

static int64_t
exp_of(const void *v)
{
	return ((const struct val *)v)->exp;
}

static int64_t
refresh_of(const void *v)
{
	return ((const struct val *)v)->refresh;
}

static void *
ref(void *v)
{
	((struct val *)v)->refs++;
	return v;
}

static void
unref(void *v)
{
	if (v != NULL)
		((struct val *)v)->refs--;
}

static const fetchcache_ops_t ops = {exp_of, refresh_of, ref, unref, 10, 500, 2000, 4};
static const uint8_t K[FETCHCACHE_KEY_LEN] = {7};

static void
test_ops_numbers(void **state)
{
	fetchcache_t *c = fetchcache_new(&ops);
	struct val v = {1000, 900, 1};
	fetchcache_look_t l;

	(void)state;
	fetchcache_get(c, K, 0, 0, 0, &l);
	assert_true(l.fetch);
	fetchcache_done(c, K, l.seq, &v, NULL, false, 0);
	assert_int_equal(v.refs, 1);			/* the cache's reference */
	fetchcache_get(c, K, 989, 0, 0, &l);		/* 11 s left: served */
	assert_int_equal(l.state, FETCHCACHE_READY);
	assert_true(l.fetch && l.refresh);		/* past refresh (900) */
	assert_int_equal(v.refs, 2);
	unref(l.val);
	fetchcache_done(c, K, l.seq, NULL, "down", false, 100);
	fetchcache_get(c, K, 991, 599, 0, &l);		/* 9 s left; retry window */
	assert_int_equal(l.state, FETCHCACHE_FAILED);
	assert_string_equal(l.error, "down");
	fetchcache_get(c, K, 991, 600, 0, &l);		/* window over: a new fetch */
	assert_int_equal(l.state, FETCHCACHE_WAIT);
	assert_true(l.fetch);
	fetchcache_get(c, K, 991, 600 + 2001, 0, &l);	/* stale: abandoned, another */
	assert_true(l.fetch);
	fetchcache_done(c, K, l.seq, NULL, "invalid_grant", true, 5000);
	fetchcache_get(c, K, 991, 999999, 0, &l);
	assert_int_equal(l.state, FETCHCACHE_FAILED);	/* terminal */
	assert_false(l.fetch);
	assert_true(fetchcache_invalidate(c, K, &v));
	assert_int_equal(v.refs, 0);
	assert_int_equal(fetchcache_count(c), 1);
	fetchcache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops_numbers),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
