/* fetchcache.c — fetched credentials per key: one fetch in flight, waiters, retry window. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <sodium.h>

#include "fetchcache.h"

/* --- the table -------------------------------------------------------------------------- */

struct fetchcache_entry {
	uint8_t key[FETCHCACHE_KEY_LEN];
	void *val;		/* the newest value, or NULL */
	uint64_t val_seq;		/* the fetch it came from */
	bool inflight;
	uint64_t inflight_seq;
	uint64_t started_ms;
	uint64_t failed_seq;		/* the newest failed fetch, 0: none */
	uint64_t failed_ms;
	bool terminal;			/* that failure needs an operator */
	char error[FETCHCACHE_ERROR_MAX];
	TAILQ_ENTRY(fetchcache_entry) lru;
};

TAILQ_HEAD(fetchcache_list, fetchcache_entry);

struct fetchcache {
	const fetchcache_ops_t *ops;
	pthread_mutex_t mu;
	struct fetchcache_list lru;	/* least recently used first */
	size_t n;
	uint64_t seq;			/* fetches started so far */
	uint64_t generation;		/* fetches done (atomic) */
	uint8_t hkey[crypto_generichash_KEYBYTES];
};

fetchcache_t *
fetchcache_new(const fetchcache_ops_t *ops)
{
	fetchcache_t *c;

	if (sodium_init() < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->ops = ops;
	pthread_mutex_init(&c->mu, NULL);
	TAILQ_INIT(&c->lru);
	randombytes_buf(c->hkey, sizeof(c->hkey));
	return c;
}

static void
fetchcache_entry_free(fetchcache_t *c, struct fetchcache_entry *e)
{
	TAILQ_REMOVE(&c->lru, e, lru);
	c->n--;
	c->ops->unref(e->val);
	sodium_memzero(e, sizeof(*e));
	free(e);
}

void
fetchcache_free(fetchcache_t *c)
{
	if (c == NULL)
		return;
	while (!TAILQ_EMPTY(&c->lru))
		fetchcache_entry_free(c, TAILQ_FIRST(&c->lru));
	pthread_mutex_destroy(&c->mu);
	sodium_memzero(c->hkey, sizeof(c->hkey));
	free(c);
}

void
fetchcache_key(const fetchcache_t *c, const char *const *parts, const size_t *lens, size_t n,
    uint8_t key[FETCHCACHE_KEY_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, c->hkey, sizeof(c->hkey), FETCHCACHE_KEY_LEN);
	for (size_t i = 0; i < n; i++) {
		uint64_t len = parts[i] != NULL ? lens[i] : UINT64_MAX;

		crypto_generichash_update(&st, (const unsigned char *)&len, sizeof(len));
		if (parts[i] != NULL)
			crypto_generichash_update(&st, (const unsigned char *)parts[i], lens[i]);
	}
	crypto_generichash_final(&st, key, FETCHCACHE_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

static struct fetchcache_entry *
fetchcache_find(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN])
{
	struct fetchcache_entry *e;

	TAILQ_FOREACH(e, &c->lru, lru)
		if (sodium_memcmp(e->key, key, FETCHCACHE_KEY_LEN) == 0)
			return e;
	return NULL;
}

/* key's entry (made when missing), now the most recently used; NULL when full. */
static struct fetchcache_entry *
fetchcache_entry(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN])
{
	struct fetchcache_entry *e = fetchcache_find(c, key), *old;

	if (e != NULL) {
		TAILQ_REMOVE(&c->lru, e, lru);
		TAILQ_INSERT_TAIL(&c->lru, e, lru);
		return e;
	}
	if (c->n >= c->ops->max) {
		TAILQ_FOREACH(old, &c->lru, lru)
			if (!old->inflight)
				break;
		if (old == NULL)
			return NULL;
		fetchcache_entry_free(c, old);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, FETCHCACHE_KEY_LEN);
	c->n++;
	TAILQ_INSERT_TAIL(&c->lru, e, lru);
	return e;
}

static void
fetchcache_ready(const fetchcache_t *c, struct fetchcache_entry *e,
    fetchcache_look_t *out)
{
	out->state = FETCHCACHE_READY;
	out->val = c->ops->ref(e->val);
}

static void
fetchcache_failed(const struct fetchcache_entry *e, fetchcache_look_t *out)
{
	out->state = FETCHCACHE_FAILED;
	snprintf(out->error, sizeof(out->error), "%s", e->error);
}

static void
fetchcache_start(fetchcache_t *c, struct fetchcache_entry *e, uint64_t now_ms,
    fetchcache_look_t *out)
{
	e->inflight = true;
	e->inflight_seq = ++c->seq;
	e->started_ms = now_ms;
	out->fetch = true;
	out->seq = e->inflight_seq;
}

/* Is the newest fetch a failure still in its retry window (or terminal)? */
static bool
fetchcache_backing_off(const fetchcache_t *c, const struct fetchcache_entry *e,
    uint64_t now_ms)
{
	if (e->failed_seq == 0 || e->failed_seq < e->val_seq)
		return false;
	return e->terminal || now_ms - e->failed_ms < c->ops->retry_ms;
}

/* A request not waiting yet. */
static void
fetchcache_get_new(fetchcache_t *c, struct fetchcache_entry *e, int64_t now, uint64_t now_ms,
    fetchcache_look_t *out)
{
	if (e->terminal) {
		fetchcache_failed(e, out);
		return;
	}
	if (e->val != NULL && now < c->ops->expires(e->val) - c->ops->min_left_s) {
		fetchcache_ready(c, e, out);
		if (now >= c->ops->refresh_at(e->val) && !e->inflight &&
		    !fetchcache_backing_off(c, e, now_ms)) {
			fetchcache_start(c, e, now_ms, out);
			out->refresh = true;
		}
		return;
	}
	out->state = FETCHCACHE_WAIT;
	if (e->inflight)
		out->seq = e->inflight_seq;
	else if (fetchcache_backing_off(c, e, now_ms))
		fetchcache_failed(e, out);
	else
		fetchcache_start(c, e, now_ms, out);
}

void
fetchcache_get(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, fetchcache_look_t *out)
{
	struct fetchcache_entry *e;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->mu);
	if ((e = fetchcache_entry(c, key)) == NULL) {
		out->state = FETCHCACHE_FAILED;
		snprintf(out->error, sizeof(out->error), "cache full");
	} else {
		if (e->inflight && now_ms - e->started_ms > c->ops->stale_ms)
			e->inflight = false;	/* abandoned: its answer will be ignored */
		if (wait_seq != 0 && e->inflight && e->inflight_seq == wait_seq) {
			out->state = FETCHCACHE_WAIT;
			out->seq = wait_seq;
		} else if (wait_seq != 0 && e->val != NULL && e->val_seq >= wait_seq &&
		    now < c->ops->expires(e->val))
			fetchcache_ready(c, e, out);	/* the answer it waited for, or newer */
		else if (wait_seq != 0 && e->failed_seq >= wait_seq)
			fetchcache_failed(e, out);
		else
			fetchcache_get_new(c, e, now, now_ms, out);
	}
	pthread_mutex_unlock(&c->mu);
}

void
fetchcache_done(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN], uint64_t seq,
    void *val, const char *error, bool terminal, uint64_t now_ms)
{
	struct fetchcache_entry *e;

	pthread_mutex_lock(&c->mu);
	e = fetchcache_find(c, key);
	if (e == NULL || !e->inflight || e->inflight_seq != seq) {
		pthread_mutex_unlock(&c->mu);
		c->ops->unref(val);	/* evicted or abandoned: a late answer */
		return;
	}
	e->inflight = false;
	if (val != NULL) {
		c->ops->unref(e->val);
		e->val = val;
		e->val_seq = seq;
	} else {
		e->failed_seq = seq;
		e->failed_ms = now_ms;
		e->terminal = terminal;
		snprintf(e->error, sizeof(e->error), "%s", error ? error : "failed");
	}
	__atomic_add_fetch(&c->generation, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->mu);
}

bool
fetchcache_invalidate(fetchcache_t *c, const uint8_t key[FETCHCACHE_KEY_LEN],
    const void *val)
{
	struct fetchcache_entry *e;
	bool dropped = false;

	pthread_mutex_lock(&c->mu);
	if ((e = fetchcache_find(c, key)) != NULL && e->val == val) {
		c->ops->unref(e->val);
		e->val = NULL;
		dropped = true;
	}
	pthread_mutex_unlock(&c->mu);
	return dropped;
}

uint64_t
fetchcache_generation(const fetchcache_t *c)
{
	return __atomic_load_n(&c->generation, __ATOMIC_ACQUIRE);
}

size_t
fetchcache_count(fetchcache_t *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->n;
	pthread_mutex_unlock(&c->mu);
	return n;
}
