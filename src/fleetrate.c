/*
 * fleetrate.c — the lease arithmetic of a fleet-wide rate limit (see fleetrate.h).
 */
#include <string.h>

#include "defaults.h"
#include "fleetrate.h"

static bool
fleetrate_usable(const policy_rate_t *rate)
{
	return rate->set && rate->requests > 0 && rate->per_ms > 0;
}

static uint32_t
fleetrate_burst(const policy_rate_t *rate)
{
	return rate->burst > 0 ? rate->burst : rate->requests;
}

void
fleetrate_init(fleetrate_lease_t *l, uint64_t now_ms)
{
	memset(l, 0, sizeof(*l));
	l->window_ms = now_ms;
}

uint32_t
fleetrate_lease_cap(const policy_rate_t *rate)
{
	uint32_t cap;

	if (!fleetrate_usable(rate))
		return 0;
	cap = fleetrate_burst(rate) / SG_FLEETRATE_LEASE_BURST_DIV;
	if (cap > SG_FLEETRATE_LEASE_MAX)
		cap = SG_FLEETRATE_LEASE_MAX;
	return cap > 0 ? cap : 1;
}

uint32_t
fleetrate_lease_size(const policy_rate_t *rate, uint32_t demand)
{
	uint32_t cap = fleetrate_lease_cap(rate);

	if (cap == 0)
		return 0;
	if (demand < 1)
		return 1;
	return demand < cap ? demand : cap;
}

uint32_t
fleetrate_low_water(uint32_t size)
{
	uint32_t lw = size / SG_FLEETRATE_LOW_WATER_DIV;

	return lw > 0 ? lw : 1;
}

uint32_t
fleetrate_held_max(const policy_rate_t *rate)
{
	uint32_t cap = fleetrate_lease_cap(rate);

	return cap == 0 ? 0 : cap + fleetrate_low_water(cap);
}

/* Start a new demand window when the current one is a lease period old; a window with
 * no request in between counts as no demand. */
static void
fleetrate_roll(fleetrate_lease_t *l, uint64_t now_ms)
{
	uint64_t age;

	if (now_ms < l->window_ms)
		return;
	age = now_ms - l->window_ms;
	if (age < SG_FLEETRATE_LEASE_MS)
		return;
	l->last_demand = age < 2 * (uint64_t)SG_FLEETRATE_LEASE_MS ? l->demand : 0;
	l->demand = 0;
	l->window_ms = now_ms;
}

/* True while the fleet's last "no token, wait" answer still holds at now_ms. */
static bool
fleetrate_waiting(const fleetrate_lease_t *l, uint64_t now_ms)
{
	return l->fleet_wait_ms > 0 && now_ms >= l->answered_ms &&
	    now_ms - l->answered_ms < l->fleet_wait_ms;
}

uint32_t
fleetrate_refill_start(fleetrate_lease_t *l, const policy_rate_t *rate, uint64_t now_ms)
{
	uint32_t demand, size;

	fleetrate_roll(l, now_ms);
	if (l->pending || fleetrate_waiting(l, now_ms))
		return 0;
	demand = l->demand > l->last_demand ? l->demand : l->last_demand;
	size = fleetrate_lease_size(rate, demand);
	if (size == 0 || l->tokens > fleetrate_low_water(size))
		return 0;
	l->pending = true;
	return size;
}

void
fleetrate_refill_done(fleetrate_lease_t *l, uint32_t granted, uint64_t wait_ms,
    uint64_t now_ms)
{
	l->pending = false;
	l->answered_ms = now_ms;
	l->tokens = granted > UINT32_MAX - l->tokens ? UINT32_MAX : l->tokens + granted;
	l->fleet_wait_ms = granted > 0 ? 0 : wait_ms;
	if (l->tokens > 0)
		l->expires_ms = now_ms + SG_FLEETRATE_LEASE_MS;
}

void
fleetrate_refill_failed(fleetrate_lease_t *l)
{
	l->pending = false;
}

uint64_t
fleetrate_retry_after_ms(const fleetrate_lease_t *l, const policy_rate_t *rate,
    uint64_t now_ms)
{
	uint64_t ms;

	if (fleetrate_waiting(l, now_ms))
		return l->fleet_wait_ms - (now_ms - l->answered_ms);
	if (!fleetrate_usable(rate))
		return 1;
	ms = rate->per_ms / rate->requests + (rate->per_ms % rate->requests != 0);
	return ms > 0 ? ms : 1;
}

bool
fleetrate_take(fleetrate_lease_t *l, const policy_rate_t *rate, uint64_t now_ms,
    uint64_t *retry_after_ms)
{
	fleetrate_roll(l, now_ms);
	if (l->demand < UINT32_MAX)
		l->demand++;
	if (l->tokens > 0 && now_ms < l->expires_ms) {
		l->tokens--;
		return true;
	}
	if (retry_after_ms != NULL)
		*retry_after_ms = fleetrate_retry_after_ms(l, rate, now_ms);
	return false;
}

int
fleetrate_untake(fleetrate_lease_t *l, uint64_t now_ms)
{
	if (now_ms >= l->expires_ms || l->tokens == UINT32_MAX)
		return 0;
	l->tokens++;
	return 1;
}

uint32_t
fleetrate_expire(fleetrate_lease_t *l, uint64_t now_ms)
{
	if (l->tokens == 0 || now_ms < l->expires_ms)
		return 0;
	return fleetrate_release(l);
}

uint32_t
fleetrate_release(fleetrate_lease_t *l)
{
	uint32_t back = l->tokens;

	l->tokens = 0;
	l->expires_ms = 0;
	return back;
}

policy_rate_t
fleetrate_local_share(const policy_rate_t *total, uint32_t nodes)
{
	policy_rate_t share = {0};
	uint32_t burst;

	if (!fleetrate_usable(total))
		return share;
	if (nodes == 0)
		nodes = SG_FLEETRATE_NODES_DEFAULT;
	burst = fleetrate_burst(total) / nodes;
	share.set = true;
	share.per_ms = total->per_ms;
	share.requests = total->requests / nodes > 0 ? total->requests / nodes : 1;
	share.burst = burst > 0 ? burst : 1;
	return share;
}
