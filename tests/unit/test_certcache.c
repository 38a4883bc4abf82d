/* test_certcache.c — leaf LRU: counters, recency, eviction, references, case, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "certcache.h"

/* Certificates carry a marker in ex_data; its free callback counts final frees. */
static int freed_idx = -1;
static int freed_count;
static char freed_marker;

static void
freed_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr == &freed_marker)
		__atomic_add_fetch(&freed_count, 1, __ATOMIC_SEQ_CST);
}

static X509 *
cert_new(void)
{
	X509 *x = X509_new();

	assert_non_null(x);
	assert_int_equal(X509_set_ex_data(x, freed_idx, &freed_marker), 1);
	return x;
}

static int
setup(void **state)
{
	(void)state;
	if (freed_idx < 0)
		freed_idx = X509_get_ex_new_index(0, NULL, NULL, NULL, freed_cb);
	freed_count = 0;
	return freed_idx < 0 ? -1 : 0;
}

static void
stats(certcache_t *cc, uint64_t hits, uint64_t misses, size_t size)
{
	uint64_t h, m;
	size_t n;

	certcache_stats(cc, &h, &m, &n);
	assert_int_equal(h, hits);
	assert_int_equal(m, misses);
	assert_int_equal(n, size);
}

/* 1 when name is cached (counts a hit or a miss). */
static int
has(certcache_t *cc, const char *name)
{
	X509 *x = certcache_get(cc, name);

	X509_free(x);
	return x != NULL;
}

static void
test_new_bad_max(void **state)
{
	(void)state;
	assert_null(certcache_new(0));
}

static void
test_hit_miss(void **state)
{
	certcache_t *cc = certcache_new(3);
	X509 *x = cert_new(), *got;

	(void)state;
	assert_non_null(cc);
	assert_null(certcache_get(cc, "a.test"));
	stats(cc, 0, 1, 0);
	certcache_put(cc, "a.test", x);
	stats(cc, 0, 1, 1);
	got = certcache_get(cc, "a.test");
	assert_ptr_equal(got, x);
	stats(cc, 1, 1, 1);
	assert_null(certcache_get(cc, "b.test"));
	stats(cc, 1, 2, 1);
	certcache_stats(cc, NULL, NULL, NULL);	/* every out may be NULL */
	X509_free(got);
	X509_free(x);
	certcache_free(cc);
	assert_int_equal(freed_count, 1);
}

static void
test_lru_eviction(void **state)
{
	certcache_t *cc = certcache_new(3);
	const char *names[] = {"a", "b", "c", "d", "e"};

	(void)state;
	assert_non_null(cc);
	for (int i = 0; i < 3; i++) {
		X509 *x = cert_new();

		certcache_put(cc, names[i], x);
		X509_free(x);
	}
	assert_true(has(cc, "a"));		/* recency now: a c b */
	for (int i = 3; i < 5; i++) {		/* d evicts b, e evicts c */
		X509 *x = cert_new();

		certcache_put(cc, names[i], x);
		X509_free(x);
	}
	assert_int_equal(freed_count, 2);	/* evicted and no other holder: freed */
	assert_false(has(cc, "b"));
	assert_false(has(cc, "c"));
	assert_true(has(cc, "a"));
	assert_true(has(cc, "d"));
	assert_true(has(cc, "e"));
	stats(cc, 4, 2, 3);
	certcache_free(cc);
	assert_int_equal(freed_count, 5);
}

static void
test_refcounts(void **state)
{
	certcache_t *cc = certcache_new(1);
	X509 *x = cert_new(), *got, *y = cert_new();

	(void)state;
	certcache_put(cc, "a", x);
	X509_free(x);				/* the cache keeps its own reference */
	assert_int_equal(freed_count, 0);
	got = certcache_get(cc, "a");
	assert_ptr_equal(got, x);
	certcache_put(cc, "b", y);		/* evicts a: our reference from get lives on */
	X509_free(y);
	assert_int_equal(freed_count, 0);
	assert_non_null(X509_get_subject_name(got));
	X509_free(got);				/* the last reference */
	assert_int_equal(freed_count, 1);
	certcache_free(cc);
	assert_int_equal(freed_count, 2);
}

static void
test_replace(void **state)
{
	certcache_t *cc = certcache_new(2);
	X509 *x = cert_new(), *y = cert_new(), *got;

	(void)state;
	certcache_put(cc, "a", x);
	certcache_put(cc, "A", y);		/* same key: replaces */
	assert_int_equal(freed_count, 0);	/* we still hold x */
	X509_free(x);
	assert_int_equal(freed_count, 1);
	got = certcache_get(cc, "a");
	assert_ptr_equal(got, y);
	stats(cc, 1, 0, 1);
	X509_free(got);
	X509_free(y);
	certcache_free(cc);
	assert_int_equal(freed_count, 2);
}

static void
test_case_insensitive(void **state)
{
	certcache_t *cc = certcache_new(4);
	X509 *x = cert_new();

	(void)state;
	certcache_put(cc, "0123abcd/API.Example.Test", x);
	X509_free(x);
	assert_true(has(cc, "0123abcd/api.example.test"));
	assert_true(has(cc, "0123ABCD/Api.EXAMPLE.test"));
	assert_false(has(cc, "0123abcd/api.example.tes"));
	assert_false(has(cc, "0123abcd/api.example.testx"));
	stats(cc, 2, 2, 1);
	certcache_free(cc);
}

#define T_THREADS	4
#define T_OPS		10000
#define T_NAMES		50
#define T_MAX		16

static certcache_t *t_cc;

static void *
worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	char name[32];

	for (int i = 0; i < T_OPS; i++) {
		X509 *x;

		seed = seed * 1103515245u + 12345u;
		snprintf(name, sizeof(name), "host%u.test", (seed >> 16) % T_NAMES);
		if ((x = certcache_get(t_cc, name)) == NULL) {
			x = cert_new();
			certcache_put(t_cc, name, x);
		}
		X509_free(x);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t t[T_THREADS];
	uint64_t hits, misses;
	size_t size;
	int made;

	(void)state;
	t_cc = certcache_new(T_MAX);
	assert_non_null(t_cc);
	for (uintptr_t i = 0; i < T_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(i + 1)), 0);
	for (int i = 0; i < T_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	certcache_stats(t_cc, &hits, &misses, &size);
	assert_int_equal(hits + misses, (uint64_t)T_THREADS * T_OPS);
	assert_true(hits > 0);
	assert_true(size <= T_MAX);
	assert_true(size > 0);
	made = (int)misses;			/* one certificate made per miss */
	assert_int_equal(freed_count, made - (int)size);	/* all but the cached are gone */
	certcache_free(t_cc);
	assert_int_equal(freed_count, made);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_new_bad_max, setup),
		cmocka_unit_test_setup(test_hit_miss, setup),
		cmocka_unit_test_setup(test_lru_eviction, setup),
		cmocka_unit_test_setup(test_refcounts, setup),
		cmocka_unit_test_setup(test_replace, setup),
		cmocka_unit_test_setup(test_case_insensitive, setup),
		cmocka_unit_test_setup(test_threads, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
