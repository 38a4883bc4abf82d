/* mintcache.c — minted tokens per (credential, narrowing): refresh rule, one fetch in flight. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <sodium.h>

#include "mintcache.h"
#include "secmem.h"

/* --- tokens ----------------------------------------------------------------------------- */

mintcache_tok_t *
mintcache_tok_new(const char *token, size_t len, int64_t expires_in, int64_t now)
{
	/* a multiple of 16 keeps the struct aligned against sodium_malloc's guard page */
	size_t n = (sizeof(mintcache_tok_t) + len + 1 + 15) & ~(size_t)15;
	mintcache_tok_t *t = secmem_guarded_alloc(n);
	int64_t half, before;

	if (t == NULL)
		return NULL;
	memset(t, 0, n);
	t->token = memcpy((char *)(t + 1), token, len);
	t->token_len = len;
	if (expires_in < 0)
		expires_in = 0;
	t->expires_at = now + expires_in;
	half = expires_in / 2;
	before = expires_in - MINTCACHE_REFRESH_BEFORE_S;
	t->refresh_at = now + (half < before ? half : before);
	t->refs = 1;
	return t;
}

mintcache_tok_t *
mintcache_tok_ref(mintcache_tok_t *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

void
mintcache_tok_unref(mintcache_tok_t *t)
{
	if (t != NULL && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		secmem_guarded_free(t);		/* zeroes */
}

/* --- the table -------------------------------------------------------------------------- */

struct mintcache_entry {
	uint8_t key[MINTCACHE_KEY_LEN];
	mintcache_tok_t *tok;		/* the newest token, or NULL */
	uint64_t tok_seq;		/* the fetch it came from */
	bool inflight;
	uint64_t inflight_seq;
	uint64_t started_ms;
	uint64_t failed_seq;		/* the newest failed fetch, 0: none */
	uint64_t failed_ms;
	bool terminal;			/* that failure needs an operator */
	char error[MINTCACHE_ERROR_MAX];
	TAILQ_ENTRY(mintcache_entry) lru;
};

TAILQ_HEAD(mintcache_list, mintcache_entry);

struct mintcache {
	pthread_mutex_t mu;
	struct mintcache_list lru;	/* least recently used first */
	size_t n;
	uint64_t seq;			/* fetches started so far */
	uint64_t generation;		/* fetches done (atomic) */
	uint8_t hkey[crypto_generichash_KEYBYTES];
};

mintcache_t *
mintcache_new(void)
{
	mintcache_t *c;

	if (sodium_init() < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	TAILQ_INIT(&c->lru);
	randombytes_buf(c->hkey, sizeof(c->hkey));
	return c;
}

static void
mintcache_entry_free(mintcache_t *c, struct mintcache_entry *e)
{
	TAILQ_REMOVE(&c->lru, e, lru);
	c->n--;
	mintcache_tok_unref(e->tok);
	sodium_memzero(e, sizeof(*e));
	free(e);
}

void
mintcache_free(mintcache_t *c)
{
	if (c == NULL)
		return;
	while (!TAILQ_EMPTY(&c->lru))
		mintcache_entry_free(c, TAILQ_FIRST(&c->lru));
	pthread_mutex_destroy(&c->mu);
	sodium_memzero(c->hkey, sizeof(c->hkey));
	free(c);
}

void
mintcache_key(const mintcache_t *c, const char *const *parts, const size_t *lens, size_t n,
    uint8_t key[MINTCACHE_KEY_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, c->hkey, sizeof(c->hkey), MINTCACHE_KEY_LEN);
	for (size_t i = 0; i < n; i++) {
		uint64_t len = parts[i] != NULL ? lens[i] : UINT64_MAX;

		crypto_generichash_update(&st, (const unsigned char *)&len, sizeof(len));
		if (parts[i] != NULL)
			crypto_generichash_update(&st, (const unsigned char *)parts[i], lens[i]);
	}
	crypto_generichash_final(&st, key, MINTCACHE_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

static struct mintcache_entry *
mintcache_find(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN])
{
	struct mintcache_entry *e;

	TAILQ_FOREACH(e, &c->lru, lru)
		if (sodium_memcmp(e->key, key, MINTCACHE_KEY_LEN) == 0)
			return e;
	return NULL;
}

/* key's entry (made when missing), now the most recently used; NULL when full. */
static struct mintcache_entry *
mintcache_entry(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN])
{
	struct mintcache_entry *e = mintcache_find(c, key), *old;

	if (e != NULL) {
		TAILQ_REMOVE(&c->lru, e, lru);
		TAILQ_INSERT_TAIL(&c->lru, e, lru);
		return e;
	}
	if (c->n >= MINTCACHE_MAX) {
		TAILQ_FOREACH(old, &c->lru, lru)
			if (!old->inflight)
				break;
		if (old == NULL)
			return NULL;
		mintcache_entry_free(c, old);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, MINTCACHE_KEY_LEN);
	c->n++;
	TAILQ_INSERT_TAIL(&c->lru, e, lru);
	return e;
}

static void
mintcache_ready(struct mintcache_entry *e, mintcache_look_t *out)
{
	out->state = MINTCACHE_READY;
	out->tok = mintcache_tok_ref(e->tok);
}

static void
mintcache_failed(const struct mintcache_entry *e, mintcache_look_t *out)
{
	out->state = MINTCACHE_FAILED;
	snprintf(out->error, sizeof(out->error), "%s", e->error);
}

static void
mintcache_start(mintcache_t *c, struct mintcache_entry *e, uint64_t now_ms,
    mintcache_look_t *out)
{
	e->inflight = true;
	e->inflight_seq = ++c->seq;
	e->started_ms = now_ms;
	out->fetch = true;
	out->seq = e->inflight_seq;
}

/* Is the newest fetch a failure still in its retry window (or terminal)? */
static bool
mintcache_backing_off(const struct mintcache_entry *e, uint64_t now_ms)
{
	if (e->failed_seq == 0 || e->failed_seq < e->tok_seq)
		return false;
	return e->terminal || now_ms - e->failed_ms < MINTCACHE_RETRY_MS;
}

/* A request not waiting yet. */
static void
mintcache_get_new(mintcache_t *c, struct mintcache_entry *e, int64_t now, uint64_t now_ms,
    mintcache_look_t *out)
{
	if (e->terminal) {
		mintcache_failed(e, out);
		return;
	}
	if (e->tok != NULL && now < e->tok->expires_at - MINTCACHE_MIN_LEFT_S) {
		mintcache_ready(e, out);
		if (now >= e->tok->refresh_at && !e->inflight &&
		    !mintcache_backing_off(e, now_ms)) {
			mintcache_start(c, e, now_ms, out);
			out->refresh = true;
		}
		return;
	}
	out->state = MINTCACHE_WAIT;
	if (e->inflight)
		out->seq = e->inflight_seq;
	else if (mintcache_backing_off(e, now_ms))
		mintcache_failed(e, out);
	else
		mintcache_start(c, e, now_ms, out);
}

void
mintcache_get(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, mintcache_look_t *out)
{
	struct mintcache_entry *e;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->mu);
	if ((e = mintcache_entry(c, key)) == NULL) {
		out->state = MINTCACHE_FAILED;
		snprintf(out->error, sizeof(out->error), "cache full");
	} else {
		if (e->inflight && now_ms - e->started_ms > MINTCACHE_STALE_FETCH_MS)
			e->inflight = false;	/* abandoned: its answer will be ignored */
		if (wait_seq != 0 && e->inflight && e->inflight_seq == wait_seq) {
			out->state = MINTCACHE_WAIT;
			out->seq = wait_seq;
		} else if (wait_seq != 0 && e->tok != NULL && e->tok_seq >= wait_seq &&
		    now < e->tok->expires_at)
			mintcache_ready(e, out);	/* the answer it waited for, or newer */
		else if (wait_seq != 0 && e->failed_seq >= wait_seq)
			mintcache_failed(e, out);
		else
			mintcache_get_new(c, e, now, now_ms, out);
	}
	pthread_mutex_unlock(&c->mu);
}

void
mintcache_done(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN], uint64_t seq,
    mintcache_tok_t *tok, const char *error, bool terminal, uint64_t now_ms)
{
	struct mintcache_entry *e;

	pthread_mutex_lock(&c->mu);
	e = mintcache_find(c, key);
	if (e == NULL || !e->inflight || e->inflight_seq != seq) {
		pthread_mutex_unlock(&c->mu);
		mintcache_tok_unref(tok);	/* evicted or abandoned: a late answer */
		return;
	}
	e->inflight = false;
	if (tok != NULL) {
		mintcache_tok_unref(e->tok);
		e->tok = tok;
		e->tok_seq = seq;
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
mintcache_invalidate(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN],
    const mintcache_tok_t *tok)
{
	struct mintcache_entry *e;
	bool dropped = false;

	pthread_mutex_lock(&c->mu);
	if ((e = mintcache_find(c, key)) != NULL && e->tok == tok) {
		mintcache_tok_unref(e->tok);
		e->tok = NULL;
		dropped = true;
	}
	pthread_mutex_unlock(&c->mu);
	return dropped;
}

uint64_t
mintcache_generation(const mintcache_t *c)
{
	return __atomic_load_n(&c->generation, __ATOMIC_ACQUIRE);
}

size_t
mintcache_count(mintcache_t *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->n;
	pthread_mutex_unlock(&c->mu);
	return n;
}
