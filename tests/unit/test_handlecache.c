/* test_handlecache.c — verified-handle cache: counters, failures, eviction, keyrings, threads. */
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

#include "defaults.h"
#include "handlecache.h"

#define NOW 1700000000
#define NHANDLES 8		/* handles minted by the fixture */
#define THREADS 4
#define THREAD_LOOPS 5000

struct fixture {
	seal_keyring_t *kr;
	seal_key_t *mint_key;		/* same key as the keyring's current (seed 1) */
	char *text[NHANDLES];		/* handles for sandboxes sb-0 .. sb-7 */
	char hid[NHANDLES][HANDLE_HID_LEN + 1];
};

static seal_key_t *
key_seeded(uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, sizeof(seed));
	return seal_key_from_seed(seed);
}

static char *
mint(const seal_key_t *key, const char *sb, char *hid)
{
	handle_claims_t c;
	char *text = NULL;

	memset(&c, 0, sizeof(c));
	c.cred = "openai";
	c.sb = (char *)sb;
	c.iat = NOW;
	c.exp = NOW + 900;
	assert_int_equal(handle_mint(key, &c, &text), HANDLE_OK);
	if (hid != NULL)
		strcpy(hid, c.hid);
	return text;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char sb[16];

	f->kr = seal_keyring_new();
	if (f->kr == NULL || seal_keyring_add(f->kr, key_seeded(1)) < 0)
		return -1;
	f->mint_key = key_seeded(1);
	for (int i = 0; i < NHANDLES; i++) {
		snprintf(sb, sizeof(sb), "sb-%d", i);
		f->text[i] = mint(f->mint_key, sb, f->hid[i]);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < NHANDLES; i++)
		free(f->text[i]);
	seal_key_free(f->mint_key);
	seal_keyring_free(f->kr);
	free(f);
	return 0;
}

static void
stats(handlecache_t *hc, uint64_t hits, uint64_t misses, size_t size)
{
	uint64_t h, m;
	size_t n;

	handlecache_stats(hc, &h, &m, &n);
	assert_int_equal(h, hits);
	assert_int_equal(m, misses);
	assert_int_equal(n, size);
}

static const handle_claims_t *
open_ok(handlecache_t *hc, const seal_keyring_t *kr, const char *text)
{
	const handle_claims_t *c = NULL;

	assert_int_equal(handlecache_open(hc, kr, text, strlen(text), &c), HANDLE_OK);
	assert_non_null(c);
	return c;
}

static void
test_new_bad_max(void **state)
{
	(void)state;
	assert_null(handlecache_new(0));
	handlecache_free(NULL);
}

static void
test_hit_miss_loop(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(16);
	const handle_claims_t *c, *first = NULL;

	for (int i = 0; i < 1000; i++) {
		c = open_ok(hc, f->kr, f->text[0]);
		assert_string_equal(c->sb, "sb-0");
		assert_string_equal(c->hid, f->hid[0]);
		assert_string_equal(c->key_id, f->mint_key->id);
		if (first == NULL)
			first = c;
		assert_ptr_equal(c, first);	/* one object, shared */
		handlecache_release(hc, c);
	}
	stats(hc, 999, 1, 1);
	handlecache_free(hc);
}

static void
test_distinct_handles(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(16);
	const handle_claims_t *a, *b;

	a = open_ok(hc, f->kr, f->text[0]);
	b = open_ok(hc, f->kr, f->text[1]);
	assert_ptr_not_equal(a, b);
	assert_string_equal(a->sb, "sb-0");
	assert_string_equal(b->sb, "sb-1");
	handlecache_release(hc, a);
	handlecache_release(hc, b);
	stats(hc, 0, 2, 2);
	handlecache_free(hc);
}

static void
test_failures_not_cached(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(16);
	seal_key_t *stranger = key_seeded(9);
	char *other = mint(stranger, "sb-0", NULL), *bad = strdup(f->text[0]);
	const handle_claims_t *c = (const handle_claims_t *)1;
	size_t n = strlen(bad);

	bad[n - 3] = bad[n - 3] == 'A' ? 'B' : 'A';	/* tamper with the ciphertext */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(handlecache_open(hc, f->kr, "sgh1.nope", 9, &c),
		    HANDLE_E_FORMAT);
		assert_null(c);
		assert_int_equal(handlecache_open(hc, f->kr, bad, n, &c), HANDLE_E_DECRYPT);
		assert_int_equal(handlecache_open(hc, f->kr, other, strlen(other), &c),
		    HANDLE_E_UNKNOWN_KEY);
	}
	stats(hc, 0, 6, 0);
	free(bad);
	free(other);
	seal_key_free(stranger);
	handlecache_free(hc);
}

static void
test_too_long(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(4);
	const handle_claims_t *c;
	char *big = calloc(1, SG_HANDLE_MAX_LEN + 2);

	memcpy(big, "sgh1.", 5);
	memset(big + 5, 'A', SG_HANDLE_MAX_LEN - 4);
	assert_int_equal(handlecache_open(hc, f->kr, big, strlen(big), &c), HANDLE_E_FORMAT);
	assert_null(c);
	free(big);
	handlecache_free(hc);
}

static void
test_refcounts_under_eviction(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(2);
	const handle_claims_t *a, *b, *c, *a2;

	a = open_ok(hc, f->kr, f->text[0]);
	assert_int_equal(handlecache_refs(a), 2);	/* cache + caller */
	b = open_ok(hc, f->kr, f->text[1]);
	handlecache_release(hc, b);
	assert_int_equal(handlecache_refs(b), 1);
	c = open_ok(hc, f->kr, f->text[2]);		/* evicts a (least recent) */
	stats(hc, 0, 3, 2);
	assert_int_equal(handlecache_refs(a), 1);	/* only ours now */
	assert_string_equal(a->sb, "sb-0");		/* still alive */
	a2 = open_ok(hc, f->kr, f->text[0]);		/* a miss: a fresh entry, evicts b */
	assert_ptr_not_equal(a2, a);
	stats(hc, 0, 4, 2);
	handlecache_release(hc, a);			/* freed here (ASan watches) */
	handlecache_release(hc, a2);
	handlecache_release(hc, c);
	b = open_ok(hc, f->kr, f->text[1]);		/* b was evicted: a miss */
	stats(hc, 0, 5, 2);
	handlecache_release(hc, b);
	handlecache_release(hc, NULL);
	handlecache_free(hc);
}

static void
test_lru_order(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(2);

	handlecache_release(hc, open_ok(hc, f->kr, f->text[0]));
	handlecache_release(hc, open_ok(hc, f->kr, f->text[1]));
	handlecache_release(hc, open_ok(hc, f->kr, f->text[0]));	/* 0 most recent */
	handlecache_release(hc, open_ok(hc, f->kr, f->text[2]));	/* evicts 1 */
	stats(hc, 1, 3, 2);
	handlecache_release(hc, open_ok(hc, f->kr, f->text[0]));	/* still a hit */
	stats(hc, 2, 3, 2);
	handlecache_release(hc, open_ok(hc, f->kr, f->text[1]));	/* gone: miss */
	stats(hc, 2, 4, 2);
	handlecache_free(hc);
}

static void
test_ref_outlives_cache(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(4);
	const handle_claims_t *c = open_ok(hc, f->kr, f->text[3]);

	handlecache_free(hc);
	assert_int_equal(handlecache_refs(c), 1);
	assert_string_equal(c->sb, "sb-3");
	handlecache_release(NULL, c);
}

static void
test_keyring_swap(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(4);
	seal_keyring_t *retiring = seal_keyring_new(), *without = seal_keyring_new();
	const handle_claims_t *c;

	handlecache_release(hc, open_ok(hc, f->kr, f->text[0]));
	/* reload 1: same key still loaded, but its id retired */
	assert_int_equal(seal_keyring_add(retiring, key_seeded(2)), 0);
	assert_int_equal(seal_keyring_add(retiring, key_seeded(1)), 0);
	assert_int_equal(seal_keyring_retire_id(retiring, f->mint_key->id), 0);
	assert_int_equal(handlecache_open(hc, retiring, f->text[0], strlen(f->text[0]), &c),
	    HANDLE_E_RETIRED_KEY);
	assert_null(c);
	stats(hc, 1, 1, 1);
	/* reload 2: the key dropped altogether */
	assert_int_equal(seal_keyring_add(without, key_seeded(2)), 0);
	assert_int_equal(handlecache_open(hc, without, f->text[0], strlen(f->text[0]), &c),
	    HANDLE_E_UNKNOWN_KEY);
	stats(hc, 2, 1, 1);
	/* back to the original keyring: the entry still serves */
	handlecache_release(hc, open_ok(hc, f->kr, f->text[0]));
	stats(hc, 3, 1, 1);
	seal_keyring_free(retiring);
	seal_keyring_free(without);
	handlecache_free(hc);
}

struct worker {
	handlecache_t *hc;
	struct fixture *f;
	unsigned seed;
	int errors;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	const handle_claims_t *c;
	char sb[16];

	for (int i = 0; i < THREAD_LOOPS; i++) {
		int k = (int)(rand_r(&w->seed) % NHANDLES);

		if (handlecache_open(w->hc, w->f->kr, w->f->text[k], strlen(w->f->text[k]),
		    &c) != HANDLE_OK) {
			w->errors++;
			continue;
		}
		snprintf(sb, sizeof(sb), "sb-%d", k);
		if (strcmp(c->sb, sb) != 0 || strcmp(c->hid, w->f->hid[k]) != 0)
			w->errors++;
		handlecache_release(w->hc, c);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fixture *f = *state;
	handlecache_t *hc = handlecache_new(NHANDLES / 2);	/* forces evictions */
	struct worker w[THREADS];
	pthread_t t[THREADS];
	uint64_t hits, misses;
	size_t size;

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.hc = hc, .f = f, .seed = (unsigned)i + 1};
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].errors, 0);
	}
	handlecache_stats(hc, &hits, &misses, &size);
	assert_int_equal(hits + misses, THREADS * THREAD_LOOPS);
	assert_true(hits > 0 && misses >= NHANDLES / 2);
	assert_int_equal(size, NHANDLES / 2);
	handlecache_free(hc);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_bad_max),
		T(test_hit_miss_loop),
		T(test_distinct_handles),
		T(test_failures_not_cached),
		T(test_too_long),
		T(test_refcounts_under_eviction),
		T(test_lru_order),
		T(test_ref_outlives_cache),
		T(test_keyring_swap),
		T(test_threads),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
