/* test_fleetrate.c — fleet-wide rate leases: sizing, low-water, give-back, local share,
 * Retry-After, all with injected time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "defaults.h"
#include "fleetrate.h"

#define T0 1000000u

static policy_rate_t
rate_of(uint32_t requests, uint64_t per_ms, uint32_t burst)
{
	policy_rate_t r = {true, requests, per_ms, burst};

	return r;
}

static void
test_lease_size_clamped(void **state)
{
	policy_rate_t r = rate_of(600, 60000, 200);	/* cap 200 / 10 = 20 */
	policy_rate_t tiny = rate_of(20, 60000, 0);	/* burst 20 -> cap 2 */
	policy_rate_t one = rate_of(3, 60000, 3);	/* 3 / 10 = 0 -> cap 1 */
	policy_rate_t huge = rate_of(1000000, 1000, 1000000);
	policy_rate_t unset = {0};

	(void)state;
	assert_int_equal(fleetrate_lease_cap(&r), 20);
	assert_int_equal(fleetrate_lease_size(&r, 0), 1);
	assert_int_equal(fleetrate_lease_size(&r, 7), 7);
	assert_int_equal(fleetrate_lease_size(&r, 500), 20);
	assert_int_equal(fleetrate_lease_cap(&tiny), 2);
	assert_int_equal(fleetrate_lease_cap(&one), 1);
	assert_int_equal(fleetrate_lease_size(&one, 50), 1);
	assert_int_equal(fleetrate_lease_cap(&huge), SG_FLEETRATE_LEASE_MAX);
	assert_int_equal(fleetrate_lease_cap(&unset), 0);
	assert_int_equal(fleetrate_lease_size(&unset, 9), 0);
	assert_int_equal(fleetrate_held_max(&unset), 0);
	/* cap 20 + low water 20 / 4 */
	assert_int_equal(fleetrate_held_max(&r), 25);
	assert_int_equal(fleetrate_held_max(&one), 2);
}

static void
test_low_water(void **state)
{
	(void)state;
	assert_int_equal(fleetrate_low_water(0), 1);
	assert_int_equal(fleetrate_low_water(1), 1);
	assert_int_equal(fleetrate_low_water(7), 1);
	assert_int_equal(fleetrate_low_water(8), 2);
	assert_int_equal(fleetrate_low_water(1000), 250);
}

static void
test_empty_lease_refuses_and_asks(void **state)
{
	policy_rate_t r = rate_of(60, 60000, 100);	/* one token a second, cap 10 */
	fleetrate_lease_t l;
	uint64_t ra = 0;

	(void)state;
	fleetrate_init(&l, T0);
	assert_false(fleetrate_take(&l, &r, T0, &ra));
	assert_int_equal(ra, 1000);	/* one token at the fleet rate */
	assert_int_equal(fleetrate_refill_start(&l, &r, T0), 1);	/* demand 1 */
	/* one request in flight at a time */
	assert_int_equal(fleetrate_refill_start(&l, &r, T0), 0);
	fleetrate_refill_done(&l, 1, 0, T0 + 1);
	assert_true(fleetrate_take(&l, &r, T0 + 2, NULL));
	assert_false(fleetrate_take(&l, &r, T0 + 3, &ra));
}

static void
test_refill_at_low_water_sized_by_demand(void **state)
{
	policy_rate_t r = rate_of(6000, 60000, 400);	/* cap 40 */
	fleetrate_lease_t l;
	uint32_t want;
	int i, admitted = 0;

	(void)state;
	fleetrate_init(&l, T0);
	/* a busy first period: 30 requests, all refused (no lease yet) */
	for (i = 0; i < 30; i++)
		admitted += fleetrate_take(&l, &r, T0 + (uint64_t)i, NULL);
	assert_int_equal(admitted, 0);
	want = fleetrate_refill_start(&l, &r, T0 + 30);
	assert_int_equal(want, 30);
	fleetrate_refill_done(&l, want, 0, T0 + 31);
	/* well above the low-water mark (31 / 4 = 7): no refill */
	assert_true(fleetrate_take(&l, &r, T0 + 40, NULL));
	assert_int_equal(l.tokens, 29);
	assert_int_equal(fleetrate_refill_start(&l, &r, T0 + 41), 0);
	for (i = 0; i < 19; i++)
		assert_true(fleetrate_take(&l, &r, T0 + 42, NULL));
	/* 10 left, demand 50: the lease is the cap 40, low water 10: asked for */
	assert_int_equal(l.tokens, 10);
	want = fleetrate_refill_start(&l, &r, T0 + 43);
	assert_int_equal(want, 40);
	fleetrate_refill_done(&l, want, 0, T0 + 44);
	assert_int_equal(l.tokens, 50);
	assert_true(l.tokens <= fleetrate_held_max(&r));
}

static void
test_demand_forgets_quiet_periods(void **state)
{
	policy_rate_t r = rate_of(6000, 60000, 400);
	fleetrate_lease_t l;
	int i;

	(void)state;
	fleetrate_init(&l, T0);
	for (i = 0; i < 20; i++)
		(void)fleetrate_take(&l, &r, T0, NULL);
	/* next period: last period's demand counts */
	assert_int_equal(fleetrate_refill_start(&l, &r, T0 + SG_FLEETRATE_LEASE_MS), 20);
	fleetrate_refill_failed(&l);
	/* after a whole quiet period: demand is gone, a lease of one */
	assert_int_equal(fleetrate_refill_start(&l, &r, T0 + 3 * SG_FLEETRATE_LEASE_MS), 1);
}

static void
test_fleet_wait_holds_refill_and_retry_after(void **state)
{
	policy_rate_t r = rate_of(20, 60000, 20);	/* a token every 3 s */
	fleetrate_lease_t l;
	uint64_t ra = 0;

	(void)state;
	fleetrate_init(&l, T0);
	assert_int_equal(fleetrate_refill_start(&l, &r, T0), 1);
	fleetrate_refill_done(&l, 0, 2500, T0 + 10);	/* fleet empty: wait 2.5 s */
	assert_false(fleetrate_take(&l, &r, T0 + 510, &ra));
	assert_int_equal(ra, 2000);
	/* no refill asked while the fleet's wait holds */
	assert_int_equal(fleetrate_refill_start(&l, &r, T0 + 2509), 0);
	assert_int_equal(fleetrate_retry_after_ms(&l, &r, T0 + 2509), 1);
	/* then one is */
	assert_int_equal(fleetrate_refill_start(&l, &r, T0 + 2510), 1);
	assert_int_equal(fleetrate_retry_after_ms(&l, &r, T0 + 2510), 3000);
}

static void
test_failed_refill_may_retry(void **state)
{
	policy_rate_t r = rate_of(60, 60000, 60);
	fleetrate_lease_t l;

	(void)state;
	fleetrate_init(&l, T0);
	assert_int_equal(fleetrate_refill_start(&l, &r, T0), 1);
	fleetrate_refill_failed(&l);
	assert_false(l.pending);
	assert_int_equal(fleetrate_refill_start(&l, &r, T0 + 1), 1);
}

static void
test_expiry_gives_back_unused(void **state)
{
	policy_rate_t r = rate_of(6000, 60000, 400);
	fleetrate_lease_t l;

	(void)state;
	fleetrate_init(&l, T0);
	assert_int_equal(fleetrate_refill_start(&l, &r, T0), 1);
	fleetrate_refill_done(&l, 12, 0, T0);
	assert_true(fleetrate_take(&l, &r, T0 + 1, NULL));
	assert_true(fleetrate_take(&l, &r, T0 + 2, NULL));
	assert_int_equal(fleetrate_expire(&l, T0 + SG_FLEETRATE_LEASE_MS - 1), 0);
	assert_int_equal(l.tokens, 10);
	/* an expired lease admits nothing, even before expire is called */
	assert_false(fleetrate_take(&l, &r, T0 + SG_FLEETRATE_LEASE_MS, NULL));
	assert_int_equal(fleetrate_expire(&l, T0 + SG_FLEETRATE_LEASE_MS), 10);
	assert_int_equal(l.tokens, 0);
	assert_int_equal(fleetrate_expire(&l, T0 + 5 * SG_FLEETRATE_LEASE_MS), 0);
}

static void
test_new_grant_extends_held_tokens(void **state)
{
	fleetrate_lease_t l;

	(void)state;
	fleetrate_init(&l, T0);
	fleetrate_refill_done(&l, 4, 0, T0);
	fleetrate_refill_done(&l, 4, 0, T0 + 600);
	assert_int_equal(fleetrate_expire(&l, T0 + SG_FLEETRATE_LEASE_MS), 0);
	assert_int_equal(fleetrate_expire(&l, T0 + 600 + SG_FLEETRATE_LEASE_MS), 8);
	/* a grant never wraps the count */
	fleetrate_refill_done(&l, UINT32_MAX, 0, T0);
	fleetrate_refill_done(&l, 5, 0, T0);
	assert_int_equal(l.tokens, UINT32_MAX);
}

static void
test_untake_restores_until_expiry(void **state)
{
	policy_rate_t r = rate_of(6000, 60000, 400);
	fleetrate_lease_t l;

	(void)state;
	fleetrate_init(&l, T0);
	fleetrate_refill_done(&l, 1, 0, T0);
	assert_true(fleetrate_take(&l, &r, T0 + 1, NULL));
	assert_int_equal(fleetrate_untake(&l, T0 + 2), 1);
	assert_int_equal(l.tokens, 1);
	assert_true(fleetrate_take(&l, &r, T0 + 3, NULL));
	/* after expiry the token is not held again: the caller gives it back */
	assert_int_equal(fleetrate_untake(&l, T0 + SG_FLEETRATE_LEASE_MS), 0);
	assert_int_equal(l.tokens, 0);
}

static void
test_release_on_shutdown(void **state)
{
	policy_rate_t r = rate_of(6000, 60000, 400);
	fleetrate_lease_t l;

	(void)state;
	fleetrate_init(&l, T0);
	fleetrate_refill_done(&l, 9, 0, T0);
	assert_true(fleetrate_take(&l, &r, T0, NULL));
	assert_int_equal(fleetrate_release(&l), 8);
	assert_int_equal(fleetrate_release(&l), 0);
	assert_false(fleetrate_take(&l, &r, T0, NULL));
}

/* Two sidecars sharing a simulated fleet bucket of 20 (no refill): together they never
 * admit more than the bucket handed out, and what one gives back the other can use. */
static void
test_two_sidecars_share_budget(void **state)
{
	policy_rate_t r = rate_of(20, 3600000, 20);
	fleetrate_lease_t a, b, *side[2] = {&a, &b};
	uint32_t fleet = 20, want, got;
	uint64_t now = T0;
	int admitted = 0, i, s;

	(void)state;
	fleetrate_init(&a, now);
	fleetrate_init(&b, now);
	for (i = 0; i < 200; i++, now += 5) {
		for (s = 0; s < 2; s++) {
			want = fleetrate_refill_start(side[s], &r, now);
			if (want > 0) {
				got = want < fleet ? want : fleet;
				fleet -= got;
				fleetrate_refill_done(side[s], got, got ? 0 : 3000, now);
			}
			admitted += fleetrate_take(side[s], &r, now, NULL);
			fleet += fleetrate_expire(side[s], now);
		}
	}
	assert_int_equal(admitted, 20);
	fleet += fleetrate_release(&a) + fleetrate_release(&b);
	assert_int_equal(fleet, 0);
}

static void
test_local_share(void **state)
{
	policy_rate_t total = rate_of(20, 60000, 40), s;
	policy_rate_t unset = {0};

	(void)state;
	s = fleetrate_local_share(&total, 2);
	assert_true(s.set);
	assert_int_equal(s.requests, 10);
	assert_int_equal(s.burst, 20);
	assert_int_equal(s.per_ms, 60000);
	s = fleetrate_local_share(&total, 0);	/* default: one node, all of it */
	assert_int_equal(s.requests, 20);
	assert_int_equal(s.burst, 40);
	s = fleetrate_local_share(&total, 3);	/* rounded down */
	assert_int_equal(s.requests, 6);
	assert_int_equal(s.burst, 13);
	s = fleetrate_local_share(&total, 100);	/* never below one */
	assert_int_equal(s.requests, 1);
	assert_int_equal(s.burst, 1);
	total.burst = 0;			/* burst defaults to requests */
	s = fleetrate_local_share(&total, 4);
	assert_int_equal(s.burst, 5);
	s = fleetrate_local_share(&unset, 2);
	assert_false(s.set);
}

static void
test_retry_after_rounds_up(void **state)
{
	policy_rate_t r = rate_of(7, 1000, 7);	/* 142.86 ms a token */
	policy_rate_t fast = rate_of(5000, 1000, 5000);
	policy_rate_t unset = {0};
	fleetrate_lease_t l;

	(void)state;
	fleetrate_init(&l, T0);
	assert_int_equal(fleetrate_retry_after_ms(&l, &r, T0), 143);
	assert_int_equal(fleetrate_retry_after_ms(&l, &fast, T0), 1);
	assert_int_equal(fleetrate_retry_after_ms(&l, &unset, T0), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease_size_clamped),
		cmocka_unit_test(test_low_water),
		cmocka_unit_test(test_empty_lease_refuses_and_asks),
		cmocka_unit_test(test_refill_at_low_water_sized_by_demand),
		cmocka_unit_test(test_demand_forgets_quiet_periods),
		cmocka_unit_test(test_fleet_wait_holds_refill_and_retry_after),
		cmocka_unit_test(test_failed_refill_may_retry),
		cmocka_unit_test(test_expiry_gives_back_unused),
		cmocka_unit_test(test_new_grant_extends_held_tokens),
		cmocka_unit_test(test_untake_restores_until_expiry),
		cmocka_unit_test(test_release_on_shutdown),
		cmocka_unit_test(test_two_sidecars_share_budget),
		cmocka_unit_test(test_local_share),
		cmocka_unit_test(test_retry_after_rounds_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
