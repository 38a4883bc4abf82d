/* test_fleettab.c — the shared lease table: sync across reloads, take/untake, the jobs
 * the main thread sends (first leases, refills, give-backs), fleet down and up, wake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "defaults.h"
#include "fleettab.h"

#define T0 1000000u

static int wakes;

static void
count_wake(void *arg)
{
	(void)arg;
	wakes++;
}

/* A policy of n credentials named names[i], each with rate_total burst 40 (lease 4). */
static void
policy_of(policy_t *p, policy_credential_t *cr, const char *const *names, size_t n)
{
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < n; i++) {
		memset(&cr[i], 0, sizeof(cr[i]));
		cr[i].name = (char *)(uintptr_t)names[i];
		if (strcmp(names[i], "plain") != 0)
			cr[i].rate_total = (policy_rate_t){true, 40, 3600000, 40};
	}
	p->credentials = cr;
	p->ncredentials = n;
}

static const fleettab_job_t *
job_of(const fleettab_job_t *j, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(j[i].name, name) == 0)
			return &j[i];
	return NULL;
}

static fleettab_t *
table_up(policy_t *p)
{
	fleettab_t *t = fleettab_new(count_wake, NULL);

	assert_non_null(t);
	assert_int_equal(fleettab_sync(t, p, T0), 0);
	fleettab_set_up(t, true);
	return t;
}

static void
test_first_leases_only_for_rate_total(void **state)
{
	static const char *const names[] = {"b", "plain", "a"};
	policy_credential_t cr[3];
	policy_t p;
	fleettab_job_t j[8];
	uint64_t retry;
	fleettab_t *t;
	size_t n;

	(void)state;
	policy_of(&p, cr, names, 3);
	t = table_up(&p);
	n = fleettab_collect(t, T0, j, 8);
	assert_int_equal(n, 2);
	assert_int_equal(job_of(j, n, "a")->take, 1);	/* no demand yet: one token */
	assert_int_equal(job_of(j, n, "b")->take, 1);
	assert_null(job_of(j, n, "plain"));
	assert_int_equal(fleettab_collect(t, T0, j, 8), 0);	/* in flight */
	assert_int_equal(fleettab_take(t, "plain", T0, &retry), -1);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 0);	/* nothing held yet */
	assert_true(retry >= 1);
	assert_int_equal(fleettab_answer(t, "a", 1, 0, T0), 0);
	assert_int_equal(fleettab_take(t, "a", T0 + 1, &retry), 1);
	assert_int_equal(fleettab_take(t, "a", T0 + 2, &retry), 0);
	fleettab_free(t);
}

static void
test_take_wakes_at_low_water_and_untake_holds_again(void **state)
{
	static const char *const names[] = {"a"};
	policy_credential_t cr[1];
	policy_t p;
	fleettab_job_t j[4];
	uint64_t retry;
	fleettab_t *t;

	(void)state;
	policy_of(&p, cr, names, 1);
	t = table_up(&p);
	assert_int_equal(fleettab_collect(t, T0, j, 4), 1);
	assert_int_equal(fleettab_answer(t, "a", 4, 0, T0), 0);
	wakes = 0;
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 1);	/* 3 left > low water 1 */
	assert_int_equal(wakes, 0);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 1);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 1);	/* 1 left: wake */
	assert_int_equal(wakes, 1);
	fleettab_untake(t, "a", T0);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 1);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 1);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 0);
	fleettab_free(t);
}

static void
test_expired_and_untaken_tokens_given_back(void **state)
{
	static const char *const names[] = {"a"};
	policy_credential_t cr[1];
	policy_t p;
	fleettab_job_t j[4];
	uint64_t retry, late = T0 + SG_FLEETRATE_LEASE_MS;
	fleettab_t *t;

	(void)state;
	policy_of(&p, cr, names, 1);
	t = table_up(&p);
	assert_int_equal(fleettab_collect(t, T0, j, 4), 1);
	assert_int_equal(fleettab_answer(t, "a", 4, 0, T0), 0);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 1);
	fleettab_untake(t, "a", late);		/* the lease expired meanwhile: owed */
	assert_int_equal(fleettab_collect(t, late, j, 4), 1);
	assert_int_equal(j[0].give, 3 + 1);
	assert_int_equal(j[0].rate.burst, 40);
	fleettab_free(t);
}

static void
test_down_drops_held_tokens_and_refuses_takes(void **state)
{
	static const char *const names[] = {"a"};
	policy_credential_t cr[1];
	policy_t p;
	fleettab_job_t j[4];
	uint64_t retry;
	fleettab_t *t;

	(void)state;
	policy_of(&p, cr, names, 1);
	t = table_up(&p);
	assert_int_equal(fleettab_collect(t, T0, j, 4), 1);
	assert_int_equal(fleettab_answer(t, "a", 4, 0, T0), 0);
	fleettab_set_up(t, false);
	assert_false(fleettab_up(t));
	assert_int_equal(fleettab_take(t, "a", T0, &retry), -1);
	assert_int_equal(fleettab_collect(t, T0, j, 4), 0);	/* nothing sent while down */
	fleettab_set_up(t, true);
	/* the held tokens were dropped: a Redis restarted empty must not get them back */
	assert_int_equal(fleettab_collect(t, T0 + 1, j, 4), 1);
	assert_int_equal(j[0].give, 0);
	assert_int_equal(j[0].take, 1);
	fleettab_free(t);
}

static void
test_reload_keeps_leases_and_gives_back_removed(void **state)
{
	static const char *const before[] = {"a", "gone"};
	static const char *const after[] = {"a", "new"};
	policy_credential_t cr[2], cr2[2];
	policy_t p, p2;
	fleettab_job_t j[4];
	uint64_t retry;
	fleettab_t *t;
	size_t n;

	(void)state;
	policy_of(&p, cr, before, 2);
	t = table_up(&p);
	assert_int_equal(fleettab_collect(t, T0, j, 4), 2);
	assert_int_equal(fleettab_answer(t, "a", 2, 0, T0), 0);
	assert_int_equal(fleettab_answer(t, "gone", 3, 0, T0), 0);
	policy_of(&p2, cr2, after, 2);
	assert_int_equal(fleettab_sync(t, &p2, T0), 0);
	assert_int_equal(fleettab_take(t, "gone", T0, &retry), -1);
	n = fleettab_collect(t, T0, j, 4);
	assert_int_equal(n, 2);
	assert_int_equal(job_of(j, n, "gone")->give, 3);
	assert_int_equal(job_of(j, n, "gone")->take, 0);
	assert_int_equal(job_of(j, n, "new")->take, 1);
	assert_int_equal(fleettab_take(t, "a", T0, &retry), 1);	/* lease kept */
	/* an answer for a credential gone meanwhile goes straight back */
	assert_int_equal(fleettab_sync(t, &p, T0), 0);
	assert_int_equal(fleettab_answer(t, "new", 5, 0, T0), 5);
	fleettab_free(t);
}

static void
test_long_name_refused(void **state)
{
	char name[FLEETTAB_NAME_MAX + 2];
	const char *names[] = {name};
	policy_credential_t cr[1];
	policy_t p;
	fleettab_t *t = fleettab_new(NULL, NULL);

	(void)state;
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	policy_of(&p, cr, names, 1);
	assert_int_equal(fleettab_sync(t, &p, T0), -1);
	fleettab_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_leases_only_for_rate_total),
		cmocka_unit_test(test_take_wakes_at_low_water_and_untake_holds_again),
		cmocka_unit_test(test_expired_and_untaken_tokens_given_back),
		cmocka_unit_test(test_down_drops_held_tokens_and_refuses_takes),
		cmocka_unit_test(test_reload_keeps_leases_and_gives_back_removed),
		cmocka_unit_test(test_long_name_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
