/*
 * test_mintcache.c — the minted-token cache with an injected clock: the refresh rule
 * (min(half, 60 s before)), single flight, waiters and their results, an expired token
 * never returned, the negative cache and terminal failures, invalidation, keys,
 * eviction, and one fetch under concurrent misses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mintcache.h"

#define NOW	1796558400
#define MS	1000000u

static const uint8_t K1[MINTCACHE_KEY_LEN] = {1}, K2[MINTCACHE_KEY_LEN] = {2},
    KX[MINTCACHE_KEY_LEN] = {0, 0, 0, 0, 9};	/* no entry number's key */

static mintcache_tok_t *
tok(const char *s, int64_t life, int64_t now)
{
	mintcache_tok_t *t = mintcache_tok_new(s, strlen(s), life, now);

	assert_non_null(t);
	return t;
}

static void
test_refresh_rule(void **state)
{
	mintcache_tok_t *t;

	(void)state;
	t = tok("gho_one", 3600, NOW);		/* 60 s before: 3540 < 1800? no: half */
	assert_int_equal(t->refresh_at, NOW + 1800);
	assert_int_equal(t->expires_at, NOW + 3600);
	assert_string_equal(t->token, "gho_one");
	mintcache_tok_unref(t);
	t = tok("gho_one", 100, NOW);		/* 40 < 50: 60 s before expiry */
	assert_int_equal(t->refresh_at, NOW + 40);
	mintcache_tok_unref(t);
	t = tok("gho_one", 30, NOW);		/* shorter than 60 s: due at once */
	assert_true(t->refresh_at <= NOW);
	mintcache_tok_unref(t);
}

static void
test_single_flight_and_waiters(void **state)
{
	mintcache_t *c = mintcache_new();
	mintcache_look_t a, b, w;

	(void)state;
	mintcache_get(c, K1, NOW, MS, 0, &a);
	assert_int_equal(a.state, MINTCACHE_WAIT);
	assert_true(a.fetch);
	assert_false(a.refresh);
	mintcache_get(c, K1, NOW, MS, 0, &b);
	assert_int_equal(b.state, MINTCACHE_WAIT);
	assert_false(b.fetch);			/* one fetch in flight */
	assert_int_equal(b.seq, a.seq);
	mintcache_get(c, K1, NOW, MS, b.seq, &w);
	assert_int_equal(w.state, MINTCACHE_WAIT);
	assert_int_equal(mintcache_generation(c), 0);
	mintcache_done(c, K1, a.seq, tok("tok-A", 3600, NOW), NULL, false, MS);
	assert_int_equal(mintcache_generation(c), 1);
	mintcache_get(c, K1, NOW, MS, b.seq, &w);
	assert_int_equal(w.state, MINTCACHE_READY);
	assert_string_equal(w.tok->token, "tok-A");
	mintcache_tok_unref(w.tok);
	mintcache_get(c, K1, NOW + 10, MS, 0, &w);	/* warm: no fetch */
	assert_int_equal(w.state, MINTCACHE_READY);
	assert_false(w.fetch);
	mintcache_tok_unref(w.tok);
	mintcache_free(c);
}

static void
test_refresh_serves_cached(void **state)
{
	mintcache_t *c = mintcache_new();
	mintcache_look_t a, r, r2;

	(void)state;
	mintcache_get(c, K1, NOW, MS, 0, &a);
	mintcache_done(c, K1, a.seq, tok("tok-A", 100, NOW), NULL, false, MS);
	mintcache_get(c, K1, NOW + 40, MS, 0, &r);	/* refresh due */
	assert_int_equal(r.state, MINTCACHE_READY);
	assert_true(r.fetch);
	assert_true(r.refresh);
	assert_string_equal(r.tok->token, "tok-A");
	mintcache_get(c, K1, NOW + 41, MS, 0, &r2);	/* one refresh at a time */
	assert_int_equal(r2.state, MINTCACHE_READY);
	assert_false(r2.fetch);
	mintcache_tok_unref(r2.tok);
	mintcache_done(c, K1, r.seq, tok("tok-B", 100, NOW + 41), NULL, false, MS);
	assert_string_equal(r.tok->token, "tok-A");	/* the old reference lives on */
	mintcache_tok_unref(r.tok);
	mintcache_get(c, K1, NOW + 42, MS, 0, &r2);
	assert_string_equal(r2.tok->token, "tok-B");
	mintcache_tok_unref(r2.tok);
	mintcache_free(c);
}

static void
test_expired_never_returned(void **state)
{
	mintcache_t *c = mintcache_new();
	mintcache_look_t a, w;

	(void)state;
	mintcache_get(c, K1, NOW, MS, 0, &a);
	mintcache_done(c, K1, a.seq, tok("tok-A", 10, NOW), NULL, false, MS);
	mintcache_get(c, K1, NOW + 5, MS, 0, &w);	/* less than MIN_LEFT left */
	assert_int_equal(w.state, MINTCACHE_WAIT);
	assert_true(w.fetch);
	assert_null(w.tok);
	/* the fetch brings a token already expired: the waiter does not get it */
	mintcache_done(c, K1, w.seq, tok("tok-old", 1, NOW), NULL, false, MS);
	mintcache_get(c, K1, NOW + 5, MS, w.seq, &a);
	assert_int_not_equal(a.state, MINTCACHE_READY);
	assert_null(a.tok);
	mintcache_free(c);
}

static void
test_negative_cache(void **state)
{
	mintcache_t *c = mintcache_new();
	mintcache_look_t a, w;

	(void)state;
	mintcache_get(c, K1, NOW, MS, 0, &a);
	mintcache_done(c, K1, a.seq, NULL, "invalid_client", false, MS);
	mintcache_get(c, K1, NOW, MS, a.seq, &w);
	assert_int_equal(w.state, MINTCACHE_FAILED);
	assert_string_equal(w.error, "invalid_client");
	mintcache_get(c, K1, NOW, MS + MINTCACHE_RETRY_MS - 1, 0, &w);
	assert_int_equal(w.state, MINTCACHE_FAILED);	/* no new fetch yet */
	assert_false(w.fetch);
	mintcache_get(c, K1, NOW, MS + MINTCACHE_RETRY_MS, 0, &w);
	assert_int_equal(w.state, MINTCACHE_WAIT);
	assert_true(w.fetch);
	mintcache_free(c);
}

static void
test_terminal_failure(void **state)
{
	mintcache_t *c = mintcache_new();
	mintcache_look_t a, w;

	(void)state;
	mintcache_get(c, K1, NOW, MS, 0, &a);
	mintcache_done(c, K1, a.seq, NULL, "invalid_grant", true, MS);
	mintcache_get(c, K1, NOW + 3600, MS + 3600000, 0, &w);
	assert_int_equal(w.state, MINTCACHE_FAILED);
	assert_false(w.fetch);
	assert_string_equal(w.error, "invalid_grant");
	mintcache_get(c, K2, NOW, MS, 0, &w);		/* another key is not affected */
	assert_true(w.fetch);
	mintcache_free(c);
}

static void
test_invalidate_and_stale(void **state)
{
	mintcache_t *c = mintcache_new();
	mintcache_look_t a, w, late;
	mintcache_tok_t *t;

	(void)state;
	mintcache_get(c, K1, NOW, MS, 0, &a);
	mintcache_done(c, K1, a.seq, tok("tok-A", 3600, NOW), NULL, false, MS);
	mintcache_get(c, K1, NOW, MS, 0, &w);
	t = w.tok;
	assert_true(mintcache_invalidate(c, K1, t));
	assert_false(mintcache_invalidate(c, K1, t));	/* already gone */
	mintcache_tok_unref(t);
	mintcache_get(c, K1, NOW, MS, 0, &w);
	assert_int_equal(w.state, MINTCACHE_WAIT);
	assert_true(w.fetch);
	/* the fetch hangs: abandoned after the stale window, its answer ignored */
	mintcache_get(c, K1, NOW, MS + MINTCACHE_STALE_FETCH_MS + 1, 0, &late);
	assert_true(late.fetch);
	assert_int_not_equal(late.seq, w.seq);
	mintcache_done(c, K1, w.seq, tok("tok-late", 3600, NOW), NULL, false, MS);
	assert_int_equal(mintcache_generation(c), 1);	/* ignored: no bump */
	mintcache_free(c);
}

static void
test_keys(void **state)
{
	mintcache_t *c = mintcache_new(), *d = mintcache_new();
	const char *p1[] = {"gh", "repo:a"}, *p2[] = {"gh", "repo:b"}, *p3[] = {"gh", NULL},
	    *p4[] = {"gh", ""}, *p5[] = {"ghr", "epo:a"};
	size_t l1[] = {2, 6}, l3[] = {2, 0}, l5[] = {3, 5};
	uint8_t k1[MINTCACHE_KEY_LEN], k1b[MINTCACHE_KEY_LEN], k2[MINTCACHE_KEY_LEN],
	    k3[MINTCACHE_KEY_LEN], k4[MINTCACHE_KEY_LEN], k5[MINTCACHE_KEY_LEN],
	    kd[MINTCACHE_KEY_LEN];

	(void)state;
	mintcache_key(c, p1, l1, 2, k1);
	mintcache_key(c, p1, l1, 2, k1b);
	mintcache_key(c, p2, l1, 2, k2);
	mintcache_key(c, p3, l3, 2, k3);
	mintcache_key(c, p4, l3, 2, k4);
	mintcache_key(c, p5, l5, 2, k5);
	mintcache_key(d, p1, l1, 2, kd);
	assert_memory_equal(k1, k1b, MINTCACHE_KEY_LEN);
	assert_memory_not_equal(k1, k2, MINTCACHE_KEY_LEN);
	assert_memory_not_equal(k3, k4, MINTCACHE_KEY_LEN);
	assert_memory_not_equal(k1, k5, MINTCACHE_KEY_LEN);
	assert_memory_not_equal(k1, kd, MINTCACHE_KEY_LEN);	/* per-cache hash key */
	mintcache_free(c);
	mintcache_free(d);
}

static void
test_eviction(void **state)
{
	mintcache_t *c = mintcache_new();
	mintcache_look_t w;
	uint8_t k[MINTCACHE_KEY_LEN] = {0};

	(void)state;
	for (unsigned i = 0; i < MINTCACHE_MAX; i++) {
		memcpy(k, &i, sizeof(i));
		mintcache_get(c, k, NOW, MS, 0, &w);	/* every one in flight */
	}
	mintcache_get(c, KX, NOW, MS, 0, &w);
	assert_int_equal(w.state, MINTCACHE_FAILED);
	assert_string_equal(w.error, "cache full");
	memset(k, 0, sizeof(k));
	mintcache_done(c, k, 1, NULL, "x", false, MS);	/* entry 0 now idle */
	mintcache_get(c, KX, NOW, MS, 0, &w);
	assert_true(w.fetch);
	assert_int_equal(mintcache_count(c), MINTCACHE_MAX);
	mintcache_free(c);
}

struct race {
	mintcache_t *c;
	unsigned fetches;
};

static void *
race_thread(void *arg)
{
	struct race *r = arg;
	mintcache_look_t w;

	for (int i = 0; i < 200; i++) {
		mintcache_get(r->c, K1, NOW, MS, 0, &w);
		if (w.fetch)
			__atomic_add_fetch(&r->fetches, 1, __ATOMIC_RELAXED);
		mintcache_tok_unref(w.tok);
	}
	return NULL;
}

static void
test_concurrent_misses_one_fetch(void **state)
{
	struct race r = {mintcache_new(), 0};
	pthread_t th[8];

	(void)state;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.fetches, 1);
	mintcache_free(r.c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_rule),
		cmocka_unit_test(test_single_flight_and_waiters),
		cmocka_unit_test(test_refresh_serves_cached),
		cmocka_unit_test(test_expired_never_returned),
		cmocka_unit_test(test_negative_cache),
		cmocka_unit_test(test_terminal_failure),
		cmocka_unit_test(test_invalidate_and_stale),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_concurrent_misses_one_fetch),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
