/*
 * test_stscache.c — the AssumeRole credential cache: one fetch in flight per entry,
 * waiters and their results, the refresh rule (80 % / 5 minutes), the minimum left,
 * failures and the retry window, abandoned fetches, keys, eviction, references that
 * outlive a refresh, and one fetch under concurrent misses.
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

#include "policy.h"
#include "stscache.h"

#define NOW	1796558400
#define MS	1000000u

static const uint8_t K1[STSCACHE_KEY_LEN] = {1}, K2[STSCACHE_KEY_LEN] = {2};

static stscache_cred_t *
cred(const char *akid, int64_t life, int64_t now)
{
	stscache_cred_t *c = stscache_cred_new(akid, strlen(akid), "secret/key+0123456789",
	    21, "token-of-" "x", 10, now + life, now);

	assert_non_null(c);
	return c;
}

static void
test_cred_refresh_rule(void **state)
{
	stscache_cred_t *c;

	(void)state;
	c = cred("ASIAONE0000000000001", 3600, NOW);	/* 80 %: 48 min */
	assert_int_equal(c->refresh_at, NOW + 2880);
	assert_string_equal(c->id.access_key_id, "ASIAONE0000000000001");
	assert_int_equal(c->id.secret_len, 21);
	assert_memory_equal(c->id.session_token, "token-of-x", 10);
	stscache_cred_unref(c);
	c = cred("ASIAONE0000000000001", 900, NOW);	/* 5 min before: 10 min */
	assert_int_equal(c->refresh_at, NOW + 600);
	stscache_cred_unref(c);
	c = cred("ASIAONE0000000000001", 120, NOW);	/* due at once */
	assert_true(c->refresh_at <= NOW);
	stscache_cred_unref(c);
	c = stscache_cred_new("ASIAONE0000000000001", 20, "s", 1, NULL, 0, NOW + 3600, NOW);
	assert_null(c->id.session_token);
	stscache_cred_unref(c);
}

static void
test_one_fetch_waiters_ready(void **state)
{
	stscache_t *c = stscache_new();
	stscache_look_t a, b, w;
	stscache_cred_t *cr;

	(void)state;
	stscache_get(c, K1, NOW, MS, 0, &a);
	assert_int_equal(a.state, STSCACHE_WAIT);
	assert_true(a.fetch);
	assert_false(a.refresh);
	stscache_get(c, K1, NOW, MS, 0, &b);	/* in flight: wait for the same */
	assert_int_equal(b.state, STSCACHE_WAIT);
	assert_false(b.fetch);
	assert_int_equal(b.seq, a.seq);
	stscache_get(c, K1, NOW, MS, a.seq, &w);	/* not done yet */
	assert_int_equal(w.state, STSCACHE_WAIT);
	assert_int_equal(stscache_generation(c), 0);
	cr = cred("ASIAONE0000000000001", 3600, NOW);
	stscache_done(c, K1, a.seq, cr, NULL, MS);
	assert_int_equal(stscache_generation(c), 1);
	stscache_get(c, K1, NOW, MS, a.seq, &w);
	assert_int_equal(w.state, STSCACHE_READY);
	assert_ptr_equal(w.cred, cr);
	stscache_cred_unref(w.cred);
	stscache_get(c, K1, NOW + 60, MS, 0, &w);	/* warm: no wait, no fetch */
	assert_int_equal(w.state, STSCACHE_READY);
	assert_false(w.fetch);
	stscache_cred_unref(w.cred);
	stscache_get(c, K2, NOW, MS, 0, &w);	/* another credential: its own entry */
	assert_int_equal(w.state, STSCACHE_WAIT);
	assert_true(w.fetch);
	assert_int_equal(stscache_count(c), 2);
	stscache_free(c);
}

static void
test_refresh_ahead_without_waiting(void **state)
{
	stscache_t *c = stscache_new();
	stscache_look_t a, r, w;
	stscache_cred_t *old;

	(void)state;
	stscache_get(c, K1, NOW, MS, 0, &a);
	stscache_done(c, K1, a.seq, cred("ASIAOLD0000000000001", 3600, NOW), NULL, MS);
	stscache_get(c, K1, NOW + 2879, MS, 0, &w);
	assert_int_equal(w.state, STSCACHE_READY);
	assert_false(w.fetch);
	stscache_cred_unref(w.cred);
	stscache_get(c, K1, NOW + 2880, MS, 0, &r);	/* due: use it, and refresh */
	assert_int_equal(r.state, STSCACHE_READY);
	assert_true(r.fetch);
	assert_true(r.refresh);
	old = r.cred;				/* a request still signing with it */
	stscache_get(c, K1, NOW + 2881, MS, 0, &w);	/* one refresh only */
	assert_int_equal(w.state, STSCACHE_READY);
	assert_false(w.fetch);
	stscache_cred_unref(w.cred);
	stscache_done(c, K1, r.seq, cred("ASIANEW0000000000001", 3600, NOW + 2882), NULL, MS);
	stscache_get(c, K1, NOW + 2883, MS, 0, &w);
	assert_string_equal(w.cred->id.access_key_id, "ASIANEW0000000000001");
	stscache_cred_unref(w.cred);
	assert_string_equal(old->id.access_key_id, "ASIAOLD0000000000001");	/* still alive */
	stscache_cred_unref(old);
	stscache_free(c);
}

static void
test_min_left_then_wait(void **state)
{
	stscache_t *c = stscache_new();
	stscache_look_t a, w, n;

	(void)state;
	stscache_get(c, K1, NOW, MS, 0, &a);
	stscache_done(c, K1, a.seq, cred("ASIAOLD0000000000001", 3600, NOW), NULL, MS);
	stscache_get(c, K1, NOW + 3600 - STSCACHE_MIN_LEFT_S, MS, 0, &w);
	assert_int_equal(w.state, STSCACHE_WAIT);	/* too little left for a new request */
	assert_true(w.fetch);
	/* STS answers with a set shorter than the minimum (clocks apart): its waiters use
	 * it while it lives, new requests fetch again */
	stscache_done(c, K1, w.seq, cred("ASIASHORT00000000001", 30, NOW + 3600), NULL, MS);
	stscache_get(c, K1, NOW + 3601, MS, w.seq, &n);
	assert_int_equal(n.state, STSCACHE_READY);
	assert_string_equal(n.cred->id.access_key_id, "ASIASHORT00000000001");
	stscache_cred_unref(n.cred);
	stscache_get(c, K1, NOW + 3601, MS, 0, &n);
	assert_int_equal(n.state, STSCACHE_WAIT);
	assert_true(n.fetch);
	stscache_get(c, K1, NOW + 3631, MS, w.seq, &n);	/* expired meanwhile: wait again */
	assert_int_equal(n.state, STSCACHE_WAIT);
	stscache_free(c);
}

static void
test_failure_and_retry_window(void **state)
{
	stscache_t *c = stscache_new();
	stscache_look_t a, w;

	(void)state;
	stscache_get(c, K1, NOW, MS, 0, &a);
	stscache_done(c, K1, a.seq, NULL, "InvalidClientTokenId", MS);
	assert_int_equal(stscache_generation(c), 1);
	stscache_get(c, K1, NOW, MS, a.seq, &w);	/* its waiter */
	assert_int_equal(w.state, STSCACHE_FAILED);
	assert_string_equal(w.error, "InvalidClientTokenId");
	stscache_get(c, K1, NOW, MS + STSCACHE_RETRY_MS - 1, 0, &w);	/* no new fetch */
	assert_int_equal(w.state, STSCACHE_FAILED);
	assert_false(w.fetch);
	assert_string_equal(w.error, "InvalidClientTokenId");
	stscache_get(c, K1, NOW, MS + STSCACHE_RETRY_MS, 0, &w);		/* try again */
	assert_int_equal(w.state, STSCACHE_WAIT);
	assert_true(w.fetch);
	assert_true(w.seq > a.seq);
	stscache_done(c, K1, w.seq, cred("ASIAONE0000000000001", 3600, NOW), NULL, MS);
	stscache_get(c, K1, NOW, MS, a.seq, &a);	/* an old waiter takes the newer set */
	assert_int_equal(a.state, STSCACHE_READY);
	stscache_cred_unref(a.cred);
	stscache_free(c);
}

/* A refresh that fails keeps the cached set in use. */
static void
test_failed_refresh_keeps_set(void **state)
{
	stscache_t *c = stscache_new();
	stscache_look_t a, r;

	(void)state;
	stscache_get(c, K1, NOW, MS, 0, &a);
	stscache_done(c, K1, a.seq, cred("ASIAONE0000000000001", 3600, NOW), NULL, MS);
	stscache_get(c, K1, NOW + 3000, MS, 0, &r);
	assert_true(r.refresh);
	stscache_cred_unref(r.cred);
	stscache_done(c, K1, r.seq, NULL, "timeout", MS);
	stscache_get(c, K1, NOW + 3001, MS + 1, 0, &a);
	assert_int_equal(a.state, STSCACHE_READY);
	assert_false(a.fetch);		/* within the retry window */
	stscache_cred_unref(a.cred);
	stscache_get(c, K1, NOW + 3002, MS + STSCACHE_RETRY_MS, 0, &a);
	assert_int_equal(a.state, STSCACHE_READY);
	assert_true(a.fetch);		/* due again */
	stscache_cred_unref(a.cred);
	stscache_free(c);
}

static void
test_abandoned_fetch(void **state)
{
	stscache_t *c = stscache_new();
	stscache_look_t a, b, w;

	(void)state;
	stscache_get(c, K1, NOW, MS, 0, &a);
	stscache_get(c, K1, NOW, MS + STSCACHE_STALE_FETCH_MS, 0, &b);
	assert_false(b.fetch);
	stscache_get(c, K1, NOW, MS + STSCACHE_STALE_FETCH_MS + 1, 0, &b);
	assert_true(b.fetch);
	assert_true(b.seq != a.seq);
	stscache_get(c, K1, NOW, MS + STSCACHE_STALE_FETCH_MS + 1, a.seq, &w);
	assert_int_equal(w.state, STSCACHE_WAIT);	/* moved onto the new fetch */
	assert_int_equal(w.seq, b.seq);
	stscache_done(c, K1, a.seq, cred("ASIALATE000000000001", 3600, NOW), NULL, MS);
	assert_int_equal(stscache_generation(c), 0);	/* the late answer is ignored */
	stscache_done(c, K1, b.seq, cred("ASIANEW0000000000001", 3600, NOW), NULL, MS);
	stscache_get(c, K1, NOW, MS, b.seq, &w);
	assert_string_equal(w.cred->id.access_key_id, "ASIANEW0000000000001");
	stscache_cred_unref(w.cred);
	stscache_done(c, K2, 99, cred("ASIANOENTRY000000001", 3600, NOW), NULL, MS);
	stscache_free(c);
}

static void
test_keys(void **state)
{
	static const char json[] =
	    "{\"credentials\": {"
	    "  \"a\": {\"secret\": {\"value\": \"sec-a\"}, \"inject\": {\"type\": \"aws_sigv4\"},"
	    "    \"hosts\": [\"*.amazonaws.com\"], \"aws\": {\"access_key_id\": {\"value\": "
	    "    \"AKIAKEYA000000000001\"}, \"services\": [\"s3\"], \"assume_role\": "
	    "    {\"role_arn\": \"arn:aws:iam::123456789012:role/r\"}}},"
	    "  \"b\": {\"secret\": {\"value\": \"sec-a\"}, \"inject\": {\"type\": \"aws_sigv4\"},"
	    "    \"hosts\": [\"*.amazonaws.com\"], \"aws\": {\"access_key_id\": {\"value\": "
	    "    \"AKIAKEYA000000000001\"}, \"services\": [\"s3\"], \"assume_role\": "
	    "    {\"role_arn\": \"arn:aws:iam::123456789012:role/r\"}}},"
	    "  \"c\": {\"secret\": {\"value\": \"sec-a\"}, \"inject\": {\"type\": \"aws_sigv4\"},"
	    "    \"hosts\": [\"*.amazonaws.com\"], \"aws\": {\"access_key_id\": {\"value\": "
	    "    \"AKIAKEYA000000000001\"}, \"services\": [\"s3\", \"sqs\"], \"assume_role\": "
	    "    {\"role_arn\": \"arn:aws:iam::123456789012:role/r\"}}}}}";
	policy_errors_t errs;
	policy_t *p = policy_load_buffer("/tmp/sg-stscache.json", json, strlen(json), &errs);
	policy_t *q = policy_load_buffer("/tmp/sg-stscache.json", json, strlen(json), &errs);
	stscache_t *c1 = stscache_new(), *c2 = stscache_new();
	uint8_t a1[STSCACHE_KEY_LEN], a2[STSCACHE_KEY_LEN], b[STSCACHE_KEY_LEN],
	    cc[STSCACHE_KEY_LEN], other[STSCACHE_KEY_LEN];

	(void)state;
	assert_non_null(p);
	assert_non_null(q);
	policy_errors_free(&errs);
	stscache_key(c1, policy_credential_find(p, "a"), a1);
	stscache_key(c1, policy_credential_find(q, "a"), a2);	/* a reload, unchanged */
	assert_memory_equal(a1, a2, STSCACHE_KEY_LEN);
	stscache_key(c1, policy_credential_find(p, "b"), b);	/* same keys, other name */
	assert_memory_not_equal(a1, b, STSCACHE_KEY_LEN);
	stscache_key(c1, policy_credential_find(p, "c"), cc);	/* another scope */
	assert_memory_not_equal(a1, cc, STSCACHE_KEY_LEN);
	stscache_key(c2, policy_credential_find(p, "a"), other);	/* another process */
	assert_memory_not_equal(a1, other, STSCACHE_KEY_LEN);
	stscache_free(c1);
	stscache_free(c2);
	policy_unref(p);
	policy_unref(q);
}

static void
test_eviction_and_full(void **state)
{
	stscache_t *c = stscache_new();
	uint8_t k[STSCACHE_KEY_LEN];
	stscache_look_t l;

	(void)state;
	memset(k, 0, sizeof(k));
	for (unsigned i = 0; i < STSCACHE_MAX; i++) {
		memcpy(k, &i, sizeof(i));
		stscache_get(c, k, NOW, MS, 0, &l);
		assert_true(l.fetch);
		if (i > 0)	/* the first stays in flight */
			stscache_done(c, k, l.seq, cred("ASIAONE0000000000001", 3600, NOW),
			    NULL, MS);
	}
	assert_int_equal(stscache_count(c), STSCACHE_MAX);
	memset(k, 0xee, sizeof(k));
	stscache_get(c, k, NOW, MS, 0, &l);	/* evicts key 1 (key 0 is in flight) */
	assert_int_equal(l.state, STSCACHE_WAIT);
	assert_int_equal(stscache_count(c), STSCACHE_MAX);
	memset(k, 0, sizeof(k));
	stscache_get(c, k, NOW, MS, 0, &l);	/* key 0 is still there, in flight */
	assert_int_equal(l.state, STSCACHE_WAIT);
	assert_false(l.fetch);
	stscache_free(c);
	/* every entry in flight: a new key cannot get one */
	c = stscache_new();
	for (unsigned i = 0; i < STSCACHE_MAX; i++) {
		memcpy(k, &i, sizeof(i));
		stscache_get(c, k, NOW, MS, 0, &l);
	}
	memset(k, 0xee, sizeof(k));
	stscache_get(c, k, NOW, MS, 0, &l);
	assert_int_equal(l.state, STSCACHE_FAILED);
	assert_string_equal(l.error, "cache full");
	stscache_free(c);
}

struct race {
	stscache_t *c;
	unsigned fetches;
};

static void *
race_main(void *arg)
{
	struct race *r = arg;
	stscache_look_t l;

	for (int i = 0; i < 2000; i++) {
		stscache_get(r->c, K1, NOW, MS, 0, &l);
		if (l.fetch)
			__atomic_add_fetch(&r->fetches, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void
test_concurrent_misses_one_fetch(void **state)
{
	struct race r = {stscache_new(), 0};
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_main, &r), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r.fetches, 1);
	stscache_free(r.c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cred_refresh_rule),
		cmocka_unit_test(test_one_fetch_waiters_ready),
		cmocka_unit_test(test_refresh_ahead_without_waiting),
		cmocka_unit_test(test_min_left_then_wait),
		cmocka_unit_test(test_failure_and_retry_window),
		cmocka_unit_test(test_failed_refresh_keeps_set),
		cmocka_unit_test(test_abandoned_fetch),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_eviction_and_full),
		cmocka_unit_test(test_concurrent_misses_one_fetch),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
