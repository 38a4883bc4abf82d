/* test_ratelimit.c — token buckets: burst, exact retry, refill, all-or-none, bounds, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

#define HOUR_MS	(3600ULL * 1000)

static policy_rate_t
rate(uint32_t requests, uint64_t per_ms, uint32_t burst)
{
	policy_rate_t r = {.set = true, .requests = requests, .per_ms = per_ms, .burst = burst};

	return r;
}

static struct ratelimit_req
req(const char *key, const policy_rate_t *r)
{
	struct ratelimit_req q = {.key = key, .keylen = strlen(key), .rate = r};

	return q;
}

/* Take one from key alone; returns allowed, fills res. */
static bool
take1(ratelimit_t *rl, const char *key, const policy_rate_t *r, uint64_t now,
    struct ratelimit_result *res)
{
	struct ratelimit_req q = req(key, r);

	assert_int_equal(ratelimit_take(rl, &q, 1, now, res), 0);
	return res->allowed;
}

static int
setup(void **state)
{
	ratelimit_t *rl = ratelimit_new(4096);

	if (rl == NULL)
		return -1;
	*state = rl;
	return 0;
}

static int
teardown(void **state)
{
	ratelimit_free(*state);
	return 0;
}

static void
test_burst_then_deny(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(10, 1000, 5);
	struct ratelimit_result res;

	for (uint32_t i = 0; i < 5; i++) {
		assert_true(take1(rl, "h1", &r, 0, &res));
		assert_int_equal(res.remaining, 4 - i);
		assert_int_equal(res.limiting, 0);
		assert_int_equal(res.retry_after_ms, 0);
	}
	assert_false(take1(rl, "h1", &r, 0, &res));
	assert_int_equal(res.retry_after_ms, 100);
	assert_int_equal(res.remaining, 0);
	assert_int_equal(res.limiting, 0);
	assert_int_equal(res.limit, 10);
	assert_int_equal(res.burst, 5);
	assert_int_equal(res.window_ms, 1000);
	assert_int_equal(res.reset_ms, 500);
	assert_false(take1(rl, "h1", &r, 99, &res));
	assert_int_equal(res.retry_after_ms, 1);
	assert_true(take1(rl, "h1", &r, 100, &res));
	assert_false(take1(rl, "h1", &r, 100, &res));
}

/* 3 per second: a token every 333.33 ms, so the wait rounds up to 334. */
static void
test_retry_after_ceil(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(3, 1000, 1);
	struct ratelimit_result res;

	assert_true(take1(rl, "k", &r, 1000, &res));
	assert_false(take1(rl, "k", &r, 1000, &res));
	assert_int_equal(res.retry_after_ms, 334);
	assert_false(take1(rl, "k", &r, 1333, &res));
	assert_int_equal(res.retry_after_ms, 1);
	assert_true(take1(rl, "k", &r, 1334, &res));
}

static void
test_refill_capped_at_burst(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(10, 1000, 5);
	struct ratelimit_result res;
	int n = 0;

	while (take1(rl, "h", &r, 0, &res))
		n++;
	assert_int_equal(n, 5);
	/* One hour later: refilled, but to burst only. */
	n = 0;
	while (take1(rl, "h", &r, HOUR_MS, &res))
		n++;
	assert_int_equal(n, 5);
	/* Half refill: 250 ms at 10/s = 2.5 tokens -> 2. */
	n = 0;
	while (take1(rl, "h", &r, HOUR_MS + 250, &res))
		n++;
	assert_int_equal(n, 2);
	/* burst 0 means burst = requests. */
	r = rate(7, 1000, 0);
	n = 0;
	while (take1(rl, "b0", &r, 0, &res))
		n++;
	assert_int_equal(n, 7);
}

/*
 * Fixed point: 3 per second polled every ms for 100 s gives exactly burst + 300 (the
 * bucket never sits full, so no refill is clipped away).
 */
static void
test_no_drift(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(3, 1000, 10);
	struct ratelimit_result res;
	unsigned allowed = 0;

	for (uint64_t t = 0; t <= 100000; t++)
		allowed += take1(rl, "d", &r, t, &res);
	assert_int_equal(allowed, 310);
}

static void
test_separate_keys(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(1, HOUR_MS, 1);
	struct ratelimit_result res;
	static const unsigned char kb1[] = {1, 0, 2}, kb2[] = {1, 0, 3};
	struct ratelimit_req q1 = {kb1, sizeof(kb1), &r}, q2 = {kb2, sizeof(kb2), &r};

	assert_true(take1(rl, "a", &r, 0, &res));
	assert_false(take1(rl, "a", &r, 0, &res));
	assert_true(take1(rl, "b", &r, 0, &res));
	assert_true(take1(rl, "ab", &r, 0, &res));
	/* Binary keys with NUL bytes are compared in full. */
	assert_int_equal(ratelimit_take(rl, &q1, 1, 0, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(ratelimit_take(rl, &q2, 1, 0, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(ratelimit_take(rl, &q1, 1, 0, &res), 0);
	assert_false(res.allowed);
	assert_int_equal(ratelimit_count(rl), 5);
}

static void
test_all_or_none(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t ra = rate(1, HOUR_MS, 5), rb = rate(2, 1000, 2), rc = rate(1, HOUR_MS, 5);
	struct ratelimit_req q[3];
	struct ratelimit_result res;

	q[0] = req("handle", &ra);
	q[1] = req("credential", &rb);
	q[2] = req("sandbox", &rc);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ratelimit_take(rl, q, 3, 0, &res), 0);
		assert_true(res.allowed);
	}
	assert_int_equal(res.limiting, 1);	/* fewest left */
	assert_int_equal(res.remaining, 0);
	assert_int_equal(ratelimit_take(rl, q, 3, 0, &res), 0);
	assert_false(res.allowed);
	assert_int_equal(res.limiting, 1);
	assert_int_equal(res.retry_after_ms, 500);
	assert_int_equal(res.window_ms, 1000);
	/* The denied take consumed nothing from the others: 3 left in each. */
	for (int i = 0; i < 3; i++) {
		assert_true(take1(rl, "handle", &ra, 0, &res));
		assert_true(take1(rl, "sandbox", &rc, 0, &res));
	}
	assert_false(take1(rl, "handle", &ra, 0, &res));
	assert_false(take1(rl, "sandbox", &rc, 0, &res));
	/* Now the handle is what blocks, for an hour less 1 s; credential refilled. */
	assert_int_equal(ratelimit_take(rl, q, 3, 1000, &res), 0);
	assert_false(res.allowed);
	assert_int_equal(res.retry_after_ms, HOUR_MS - 1000);
	assert_true(res.limiting == 0 || res.limiting == 2);
	assert_true(take1(rl, "credential", &rb, 1000, &res));
	assert_true(take1(rl, "credential", &rb, 1000, &res));
	assert_false(take1(rl, "credential", &rb, 1000, &res));
}

static void
test_same_key_twice(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(1, HOUR_MS, 3);
	struct ratelimit_req q[2];
	struct ratelimit_result res;

	q[0] = req("x", &r);
	q[1] = req("x", &r);
	assert_int_equal(ratelimit_take(rl, q, 2, 0, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(ratelimit_take(rl, q, 2, 0, &res), 0);
	assert_false(res.allowed);
	assert_true(take1(rl, "x", &r, 0, &res));
	assert_false(take1(rl, "x", &r, 0, &res));
}

static void
test_unlimited_and_bad_args(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t unset = {0}, r = rate(1, 1000, 1);
	struct ratelimit_req q[RATELIMIT_MAX_REQS + 1];
	struct ratelimit_result res;

	for (size_t i = 0; i < SG_ARRAY_LEN(q); i++)
		q[i] = req("k", &unset);
	assert_int_equal(ratelimit_take(rl, q, 2, 0, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(res.limiting, RATELIMIT_NONE);
	assert_int_equal(ratelimit_take(rl, NULL, 0, 0, &res), 0);
	assert_true(res.allowed);
	q[0].rate = NULL;
	assert_int_equal(ratelimit_take(rl, q, 1, 0, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(ratelimit_take(rl, q, RATELIMIT_MAX_REQS + 1, 0, &res), -1);
	assert_false(res.allowed);
	q[0] = req("k", &r);
	q[0].keylen = 0;
	assert_int_equal(ratelimit_take(rl, q, 1, 0, &res), -1);
	q[0].keylen = RATELIMIT_MAX_KEY + 1;
	assert_int_equal(ratelimit_take(rl, q, 1, 0, &res), -1);
	assert_int_equal(ratelimit_count(rl), 0);
	assert_null(ratelimit_new(0));
}

/* Extreme rates do not overflow: burst 4e9 over a year. */
static void
test_huge_values(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(UINT32_MAX, 365ULL * 24 * HOUR_MS, UINT32_MAX);
	struct ratelimit_result res;

	assert_true(take1(rl, "big", &r, UINT64_MAX - 1, &res));
	assert_int_equal(res.remaining, UINT32_MAX - 1);
	assert_true(take1(rl, "big", &r, UINT64_MAX, &res));
	/* Time going backwards neither refills nor breaks anything. */
	assert_true(take1(rl, "big", &r, 0, &res));
	assert_int_equal(res.remaining, UINT32_MAX - 3);
}

/* A rate change on reload keeps the bucket (rescaled), never refilling it for free. */
static void
test_rate_change(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r1 = rate(1, 1000, 2), r2 = rate(1, 2000, 2);
	struct ratelimit_result res;

	assert_true(take1(rl, "c", &r1, 0, &res));
	assert_true(take1(rl, "c", &r1, 0, &res));
	assert_false(take1(rl, "c", &r2, 0, &res));
	assert_int_equal(res.retry_after_ms, 2000);
	/* Tokens left carry over: 4 - 1 = 3 before, 2 after one more take. */
	r1 = rate(1, 1000, 4);
	r2 = rate(1, 2000, 4);
	assert_true(take1(rl, "d", &r1, 0, &res));
	assert_int_equal(res.remaining, 3);
	assert_true(take1(rl, "d", &r2, 0, &res));
	assert_int_equal(res.remaining, 2);
	assert_int_equal(res.window_ms, 2000);
}

/* Peek: what a take would answer, taking nothing; an unknown key is a full bucket. */
static void
test_peek(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(4, 1000, 2);
	struct ratelimit_req q = req("p", &r);
	struct ratelimit_result res;

	/* unknown key: full, and nothing stored */
	assert_int_equal(ratelimit_peek(rl, &q, 0, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(res.limiting, 0);
	assert_int_equal(res.remaining, 2);
	assert_int_equal(res.limit, 4);
	assert_int_equal(res.burst, 2);
	assert_int_equal(res.window_ms, 1000);
	assert_int_equal(res.reset_ms, 0);
	assert_int_equal(ratelimit_count(rl), 0);
	/* peeking many times takes nothing */
	assert_true(take1(rl, "p", &r, 0, &res));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ratelimit_peek(rl, &q, 0, &res), 0);
		assert_true(res.allowed);
		assert_int_equal(res.remaining, 1);
	}
	assert_true(take1(rl, "p", &r, 0, &res));
	/* empty: denied with the wait a take would report, and the take agrees */
	assert_int_equal(ratelimit_peek(rl, &q, 0, &res), 0);
	assert_false(res.allowed);
	assert_int_equal(res.remaining, 0);
	assert_int_equal(res.retry_after_ms, 250);
	assert_int_equal(res.reset_ms, 500);
	assert_false(take1(rl, "p", &r, 0, &res));
	assert_int_equal(res.retry_after_ms, 250);
	/* refill is seen at the time passed in */
	assert_int_equal(ratelimit_peek(rl, &q, 249, &res), 0);
	assert_false(res.allowed);
	assert_int_equal(res.retry_after_ms, 1);
	assert_int_equal(ratelimit_peek(rl, &q, 250, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(res.remaining, 1);
	assert_true(take1(rl, "p", &r, 250, &res));
	assert_false(take1(rl, "p", &r, 250, &res));
	assert_int_equal(ratelimit_count(rl), 1);
}

static void
test_peek_bad_args(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t unset = {0}, r = rate(1, 1000, 1);
	struct ratelimit_req q = req("k", &unset);
	struct ratelimit_result res;

	assert_int_equal(ratelimit_peek(rl, &q, 0, &res), 0);
	assert_true(res.allowed);
	assert_int_equal(res.limiting, RATELIMIT_NONE);
	q = req("k", &r);
	q.keylen = 0;
	assert_int_equal(ratelimit_peek(rl, &q, 0, &res), -1);
	assert_false(res.allowed);
	q.keylen = RATELIMIT_MAX_KEY + 1;
	assert_int_equal(ratelimit_peek(rl, &q, 0, &res), -1);
	assert_int_equal(ratelimit_count(rl), 0);
}

static void
test_eviction_bounded(void **state)
{
	ratelimit_t *rl = ratelimit_new(64);
	policy_rate_t r = rate(1, HOUR_MS, 1);
	struct ratelimit_result res;
	char key[32];

	(void)state;
	assert_non_null(rl);
	for (int i = 0; i < 640; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_true(take1(rl, key, &r, 0, &res));
		assert_true(ratelimit_count(rl) <= 64);
	}
	assert_true(ratelimit_count(rl) >= 32);
	ratelimit_free(rl);
	/* The smallest table holds one bucket. */
	rl = ratelimit_new(1);
	assert_non_null(rl);
	assert_true(take1(rl, "a", &r, 0, &res));
	assert_true(take1(rl, "b", &r, 0, &res));
	assert_int_equal(ratelimit_count(rl), 1);
	ratelimit_free(rl);
}

/*
 * Eviction prefers buckets that refilled to full: a drained bucket survives 10x the
 * table's size of newer keys that are full again (pure LRU would have dropped it and
 * handed it a fresh burst).
 */
static void
test_eviction_lossless_first(void **state)
{
	ratelimit_t *rl = ratelimit_new(1024);
	policy_rate_t slow = rate(1, HOUR_MS, 1), fast = rate(1, 1, 1);
	struct ratelimit_result res;
	char key[32];

	(void)state;
	assert_non_null(rl);
	assert_true(take1(rl, "drained", &slow, 0, &res));
	for (uint64_t i = 0; i < 10240; i++) {
		snprintf(key, sizeof(key), "filler-%llu", (unsigned long long)i);
		assert_true(take1(rl, key, &fast, 10 + i, &res));
	}
	assert_true(ratelimit_count(rl) <= 1024);
	assert_false(take1(rl, "drained", &slow, 20000, &res));
	ratelimit_free(rl);
}

struct thr_arg {
	ratelimit_t *rl;
	const policy_rate_t *shared, *own;
	char ownkey[16];
	unsigned allowed;
	bool pair;
};

static void *
thr_main(void *p)
{
	struct thr_arg *a = p;
	struct ratelimit_req q[2];
	struct ratelimit_result res;

	q[0] = req("shared", a->shared);
	q[1] = req(a->ownkey, a->own);
	for (int i = 0; i < 10000; i++) {
		if (ratelimit_take(a->rl, q, a->pair ? 2 : 1, 5, &res) != 0)
			return NULL;
		a->allowed += res.allowed;
	}
	return a;
}

static unsigned
run_threads(ratelimit_t *rl, struct thr_arg *args, size_t n)
{
	pthread_t th[4];
	unsigned total = 0;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
	for (size_t i = 0; i < n; i++) {
		void *ret;

		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_ptr_equal(ret, &args[i]);
		total += args[i].allowed;
	}
	(void)rl;
	return total;
}

static void
test_threads_one_bucket(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t shared = rate(1000, HOUR_MS, 1000);
	struct thr_arg args[4];

	memset(args, 0, sizeof(args));
	for (int i = 0; i < 4; i++) {
		args[i].rl = rl;
		args[i].shared = &shared;
		args[i].own = &shared;
	}
	assert_int_equal(run_threads(rl, args, 4), 1000);
}

/* Pairs (shared 1000, own 300 each): all-or-none under contention gives exactly 1000. */
static void
test_threads_all_or_none(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t shared = rate(1000, HOUR_MS, 1000), own = rate(300, HOUR_MS, 300);
	struct thr_arg args[4];
	struct ratelimit_result res;

	memset(args, 0, sizeof(args));
	for (int i = 0; i < 4; i++) {
		args[i].rl = rl;
		args[i].shared = &shared;
		args[i].own = &own;
		args[i].pair = true;
		snprintf(args[i].ownkey, sizeof(args[i].ownkey), "own-%d", i);
	}
	assert_int_equal(run_threads(rl, args, 4), 1000);
	for (int i = 0; i < 4; i++) {
		assert_true(args[i].allowed <= 300);
		/* Each own bucket lost exactly what its thread was allowed. */
		if (args[i].allowed < 300) {
			assert_true(take1(rl, args[i].ownkey, &own, 5, &res));
			assert_int_equal(res.remaining, 300 - args[i].allowed - 1);
		} else
			assert_false(take1(rl, args[i].ownkey, &own, 5, &res));
	}
}

/* --- response headers --------------------------------------------------------------- */

static void
test_headers_allowed(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(10, 60 * 1000, 20);	/* 10/min, burst 20 */
	struct ratelimit_result res;
	char buf[320];
	int n;

	assert_true(take1(rl, "h", &r, 1000, &res));
	/* 19 left; one token back after 6 s */
	n = ratelimit_format_headers(&res, "handle", buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf,
	    "RateLimit-Policy: \"handle\";q=10;w=60\r\n"
	    "RateLimit: \"handle\";r=19;t=6\r\n");
	/* a reset that is not a whole number of seconds rounds up */
	res.reset_ms = 6001;
	assert_true(ratelimit_format_headers(&res, "handle", buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, ";t=7\r\n"));
	/* full bucket: t=0 */
	res.reset_ms = 0;
	assert_true(ratelimit_format_headers(&res, "handle", buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, ";t=0\r\n"));
}

static void
test_headers_denied(void **state)
{
	ratelimit_t *rl = *state;
	policy_rate_t r = rate(3, 1000, 0);	/* 3/s */
	struct ratelimit_result res;
	char buf[320];

	for (int i = 0; i < 3; i++)
		assert_true(take1(rl, "k", &r, 5000, &res));
	assert_false(take1(rl, "k", &r, 5000, &res));
	assert_int_equal(res.retry_after_ms, 334);	/* ceil(1000 / 3) */
	assert_true(ratelimit_format_headers(&res, "sandbox", buf, sizeof(buf)) > 0);
	assert_string_equal(buf,
	    "Retry-After: 1\r\n"
	    "RateLimit-Policy: \"sandbox\";q=3;w=1\r\n"
	    "RateLimit: \"sandbox\";r=0;t=1\r\n");
	/* whole seconds stay, partial seconds round up, never 0 */
	res.retry_after_ms = 2000;
	assert_true(ratelimit_format_headers(&res, "sandbox", buf, sizeof(buf)) > 0);
	assert_true(strncmp(buf, "Retry-After: 2\r\n", 16) == 0);
	res.retry_after_ms = 2001;
	assert_true(ratelimit_format_headers(&res, "sandbox", buf, sizeof(buf)) > 0);
	assert_true(strncmp(buf, "Retry-After: 3\r\n", 16) == 0);
	res.retry_after_ms = 0;
	assert_true(ratelimit_format_headers(&res, "sandbox", buf, sizeof(buf)) > 0);
	assert_true(strncmp(buf, "Retry-After: 1\r\n", 16) == 0);
	/* sub-second windows still say w=1; huge values print in full */
	res.window_ms = 500;
	res.retry_after_ms = UINT64_MAX;
	res.limit = UINT32_MAX;
	assert_true(ratelimit_format_headers(&res, "sandbox", buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "Retry-After: 18446744073709552\r\n"));
	assert_non_null(strstr(buf, ";q=4294967295;w=1\r\n"));
}

static void
test_headers_edge(void **state)
{
	struct ratelimit_result res = {.allowed = true, .limiting = 0, .remaining = 1,
	    .limit = 2, .burst = 2, .window_ms = 1000, .reset_ms = 500};
	char buf[320], tiny[40];

	(void)state;
	/* sf-string escaping of '"' and '\\' */
	assert_true(ratelimit_format_headers(&res, "a\"b\\c", buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "RateLimit: \"a\\\"b\\\\c\";r=1;t=1\r\n"));
	/* names that cannot be an sf-string */
	assert_int_equal(ratelimit_format_headers(&res, "a\nb", buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	assert_int_equal(ratelimit_format_headers(&res, "caf\xc3\xa9", buf, sizeof(buf)), -1);
	{
		char longname[80];

		memset(longname, 'n', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(ratelimit_format_headers(&res, longname, buf, sizeof(buf)), -1);
	}
	/* too small: -1 and an empty string, never a cut line */
	assert_int_equal(ratelimit_format_headers(&res, "handle", tiny, sizeof(tiny)), -1);
	assert_string_equal(tiny, "");
	assert_int_equal(ratelimit_format_headers(&res, "handle", NULL, 0), -1);
	/* no limiting bucket: nothing */
	res.limiting = RATELIMIT_NONE;
	assert_int_equal(ratelimit_format_headers(&res, "handle", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_burst_then_deny, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_ceil, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refill_capped_at_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_drift, setup, teardown),
		cmocka_unit_test_setup_teardown(test_separate_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_or_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_key_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlimited_and_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_headers_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_headers_denied, setup, teardown),
		cmocka_unit_test(test_headers_edge),
		cmocka_unit_test(test_eviction_bounded),
		cmocka_unit_test(test_eviction_lossless_first),
		cmocka_unit_test_setup_teardown(test_threads_one_bucket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_all_or_none, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
