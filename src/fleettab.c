/* fleettab.c — the per-credential fleet leases shared by workers and the main thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleetrate.h"
#include "fleettab.h"

struct fleettab_entry {
	char *name;
	policy_rate_t rate;
	fleetrate_lease_t lease;
	uint32_t owed;		/* tokens to give back (untaken after expiry, gone) */
	bool gone;		/* the credential left the policy: give back, then drop */
};

struct fleettab {
	pthread_mutex_t mu;
	struct fleettab_entry *v;	/* sorted by name */
	size_t n;
	bool up;			/* atomic */
	fleettab_wake_fn wake;
	void *wake_arg;
};

fleettab_t *
fleettab_new(fleettab_wake_fn wake, void *arg)
{
	fleettab_t *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return NULL;
	}
	t->wake = wake;
	t->wake_arg = arg;
	return t;
}

void
fleettab_free(fleettab_t *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int
fleettab_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fleettab_entry *)a)->name,
	    ((const struct fleettab_entry *)b)->name);
}

/* The entry of name, or NULL. Caller holds the lock. */
static struct fleettab_entry *
fleettab_find(const fleettab_t *t, const char *name)
{
	struct fleettab_entry key = {.name = (char *)(uintptr_t)name};

	return t->n == 0 ? NULL : bsearch(&key, t->v, t->n, sizeof(*t->v), fleettab_cmp);
}

/* A credential the fleet limits: rate_total set with a lease of at least one token. */
static bool
fleettab_wanted(const policy_credential_t *cr)
{
	return fleetrate_lease_cap(&cr->rate_total) > 0;
}

/* Room for every credential and every old entry (the gone ones are kept). */
static size_t
fleettab_count(const fleettab_t *t, const policy_t *p)
{
	size_t n = t->n;

	for (size_t i = 0; i < p->ncredentials; i++)
		n += fleettab_wanted(&p->credentials[i]);
	return n;
}

/* New entries for p's credentials (moving old leases over: moved[i] for t->v[i]), then
 * the old ones left, marked gone. Caller holds the lock. */
static size_t
fleettab_build(fleettab_t *t, const policy_t *p, uint64_t now_ms, struct fleettab_entry *v,
    bool *moved)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ncredentials; i++) {
		const policy_credential_t *cr = &p->credentials[i];
		struct fleettab_entry *old;

		if (!fleettab_wanted(cr))
			continue;
		if ((old = fleettab_find(t, cr->name)) != NULL && !moved[old - t->v]) {
			v[n] = *old;
			moved[old - t->v] = true;
		} else {
			v[n] = (struct fleettab_entry){.name = strdup(cr->name)};
			fleetrate_init(&v[n].lease, now_ms);
		}
		v[n].rate = cr->rate_total;
		v[n++].gone = false;
	}
	for (size_t i = 0; i < t->n; i++)
		if (!moved[i]) {
			v[n] = t->v[i];
			v[n++].gone = true;
		}
	return n;
}

static int
fleettab_names_ok(const policy_t *p)
{
	for (size_t i = 0; i < p->ncredentials; i++)
		if (fleettab_wanted(&p->credentials[i]) &&
		    strlen(p->credentials[i].name) > FLEETTAB_NAME_MAX)
			return -1;
	return 0;
}

/* Drop entries whose name could not be copied; returns the new count. */
static size_t
fleettab_compact(struct fleettab_entry *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i].name != NULL)
			v[k++] = v[i];
	return k;
}

int
fleettab_sync(fleettab_t *t, const policy_t *p, uint64_t now_ms)
{
	struct fleettab_entry *v;
	bool *moved;
	size_t n, kept;

	if (fleettab_names_ok(p) < 0)
		return -1;
	pthread_mutex_lock(&t->mu);
	v = calloc(fleettab_count(t, p) + 1, sizeof(*v));
	moved = calloc(t->n + 1, sizeof(*moved));
	if (v == NULL || moved == NULL) {
		pthread_mutex_unlock(&t->mu);
		free(v);
		free(moved);
		return -1;
	}
	n = fleettab_build(t, p, now_ms, v, moved);
	free(moved);
	kept = fleettab_compact(v, n);
	qsort(v, kept, sizeof(*v), fleettab_cmp);
	free(t->v);
	t->v = v;
	t->n = kept;
	pthread_mutex_unlock(&t->mu);
	return kept == n ? 0 : -1;
}

void
fleettab_set_up(fleettab_t *t, bool up)
{
	pthread_mutex_lock(&t->mu);
	if (!up)
		for (size_t i = 0; i < t->n; i++) {
			struct fleettab_entry *e = &t->v[i];
			uint32_t held = fleetrate_release(&e->lease);

			(void)held;	/* dropped: counted as spent */
			e->lease.pending = false;
			e->owed = 0;
		}
	__atomic_store_n(&t->up, up, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->mu);
}

bool
fleettab_up(const fleettab_t *t)
{
	return __atomic_load_n(&t->up, __ATOMIC_RELAXED);
}

/* Wake the main thread when e's lease is at its low-water mark with no refill asked. */
static bool
fleettab_low(const struct fleettab_entry *e)
{
	uint32_t cap = fleetrate_lease_cap(&e->rate);

	return !e->lease.pending && e->lease.tokens <= fleetrate_low_water(cap);
}

int
fleettab_take(fleettab_t *t, const char *name, uint64_t now_ms, uint64_t *retry_after_ms)
{
	struct fleettab_entry *e;
	bool wake = false;
	int rc = -1;

	*retry_after_ms = 1;
	pthread_mutex_lock(&t->mu);
	if (__atomic_load_n(&t->up, __ATOMIC_RELAXED) &&
	    (e = fleettab_find(t, name)) != NULL && !e->gone) {
		rc = fleetrate_take(&e->lease, &e->rate, now_ms, retry_after_ms) ? 1 : 0;
		wake = fleettab_low(e);
	}
	pthread_mutex_unlock(&t->mu);
	if (wake && t->wake != NULL)
		t->wake(t->wake_arg);
	return rc;
}

void
fleettab_untake(fleettab_t *t, const char *name, uint64_t now_ms)
{
	struct fleettab_entry *e;

	pthread_mutex_lock(&t->mu);
	if ((e = fleettab_find(t, name)) != NULL && fleetrate_untake(&e->lease, now_ms) == 0 &&
	    e->owed < UINT32_MAX)
		e->owed++;
	pthread_mutex_unlock(&t->mu);
}

/* e's job at now_ms into *j: true when there is something to send. While the fleet
 * is unreachable, tokens to give back are dropped: the Redis that comes back may have
 * restarted empty, and a token given to a full bucket would be admitted twice. */
static bool
fleettab_job(struct fleettab_entry *e, bool up, uint64_t now_ms, fleettab_job_t *j)
{
	uint32_t give = e->gone ? fleetrate_release(&e->lease) :
	    fleetrate_expire(&e->lease, now_ms);

	e->owed = give > UINT32_MAX - e->owed ? UINT32_MAX : e->owed + give;
	if (!up) {
		e->owed = 0;
		return false;
	}
	*j = (fleettab_job_t){.rate = e->rate, .give = e->owed};
	e->owed = 0;
	if (!e->gone)
		j->take = fleetrate_refill_start(&e->lease, &e->rate, now_ms);
	snprintf(j->name, sizeof(j->name), "%s", e->name);
	return j->take > 0 || j->give > 0;
}

/* Drop gone entries with nothing held, owed or in flight. Caller holds the lock. */
static void
fleettab_prune(fleettab_t *t)
{
	size_t k = 0;

	for (size_t i = 0; i < t->n; i++) {
		struct fleettab_entry *e = &t->v[i];

		if (e->gone && e->lease.tokens == 0 && e->owed == 0 && !e->lease.pending)
			free(e->name);
		else
			t->v[k++] = *e;
	}
	t->n = k;
}

size_t
fleettab_collect(fleettab_t *t, uint64_t now_ms, fleettab_job_t *jobs, size_t max)
{
	bool up = fleettab_up(t);
	size_t n = 0;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n && n < max; i++)
		n += fleettab_job(&t->v[i], up, now_ms, &jobs[n]);
	fleettab_prune(t);
	pthread_mutex_unlock(&t->mu);
	return n;
}

uint32_t
fleettab_answer(fleettab_t *t, const char *name, uint32_t granted, uint64_t wait_ms,
    uint64_t now_ms)
{
	struct fleettab_entry *e;
	uint32_t back = granted;

	pthread_mutex_lock(&t->mu);
	if ((e = fleettab_find(t, name)) != NULL && !e->gone &&
	    __atomic_load_n(&t->up, __ATOMIC_RELAXED)) {
		fleetrate_refill_done(&e->lease, granted, wait_ms, now_ms);
		back = 0;
	} else if (e != NULL) {
		e->lease.pending = false;
	}
	pthread_mutex_unlock(&t->mu);
	return back;
}

void
fleettab_failed(fleettab_t *t, const char *name)
{
	struct fleettab_entry *e;

	pthread_mutex_lock(&t->mu);
	if ((e = fleettab_find(t, name)) != NULL)
		fleetrate_refill_failed(&e->lease);
	pthread_mutex_unlock(&t->mu);
}
