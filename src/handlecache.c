/*
 * handlecache.c — verified-handle LRU: chained hash table keyed by a keyed BLAKE2b of
 * the handle text, TAILQ recency list, one mutex, atomic reference counts.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <sodium.h>

#include "defaults.h"
#include "handlecache.h"

/* Digest of the handle text: 256 bits, so distinct handles never share an entry. */
#define HC_DIGEST_LEN		crypto_generichash_BYTES
/* Buckets never exceed this (a larger max only lengthens chains). */
#define HC_MAX_BUCKETS		((size_t)1 << 22)

struct hc_entry {
	handle_claims_t claims;		/* what callers see (immutable once cached) */
	struct hc_entry *hnext;		/* hash chain */
	TAILQ_ENTRY(hc_entry) lru;	/* recency */
	int refs;			/* atomic: the cache's one + one per caller */
	uint8_t digest[HC_DIGEST_LEN];
};

struct handlecache {
	pthread_mutex_t lock;
	uint8_t key[crypto_generichash_KEYBYTES];	/* random, per cache */
	struct hc_entry **buckets;
	size_t mask;			/* bucket count - 1 (a power of two) */
	TAILQ_HEAD(hc_lru, hc_entry) lru;	/* least recently used first */
	size_t size, max;
	uint64_t hits, misses;
};

static struct hc_entry *
hc_entry_of(const handle_claims_t *c)
{
	return (struct hc_entry *)(void *)((char *)(uintptr_t)c -
	    offsetof(struct hc_entry, claims));
}

static void
hc_entry_unref(struct hc_entry *e)
{
	if (e != NULL && __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		handle_claims_free(&e->claims);
		free(e);
	}
}

static size_t
hc_bucket(const handlecache_t *hc, const uint8_t *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof(h));
	return (size_t)h & hc->mask;
}

/* The link pointing at the entry for digest (or at the chain's terminating NULL). */
static struct hc_entry **
hc_slot(handlecache_t *hc, const uint8_t *digest)
{
	struct hc_entry **pp = &hc->buckets[hc_bucket(hc, digest)];

	while (*pp != NULL && memcmp((*pp)->digest, digest, HC_DIGEST_LEN) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

handlecache_t *
handlecache_new(size_t max)
{
	handlecache_t *hc;
	size_t n = 1;

	if (max == 0)
		return NULL;
	while (n < max && n < HC_MAX_BUCKETS)
		n <<= 1;
	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	if ((hc->buckets = calloc(n, sizeof(*hc->buckets))) == NULL)
		goto fail;
	if (pthread_mutex_init(&hc->lock, NULL) != 0)
		goto fail;
	randombytes_buf(hc->key, sizeof(hc->key));
	TAILQ_INIT(&hc->lru);
	hc->mask = n - 1;
	hc->max = max;
	return hc;
fail:
	free(hc->buckets);
	free(hc);
	return NULL;
}

void
handlecache_free(handlecache_t *hc)
{
	struct hc_entry *e, *next;

	if (hc == NULL)
		return;
	for (e = TAILQ_FIRST(&hc->lru); e != NULL; e = next) {
		next = TAILQ_NEXT(e, lru);
		hc_entry_unref(e);
	}
	pthread_mutex_destroy(&hc->lock);
	sodium_memzero(hc->key, sizeof(hc->key));
	free(hc->buckets);
	free(hc);
}

/* Is the key the entry was opened with still accepted by kr? HANDLE_OK or the error. */
static int
hc_check_key(const seal_keyring_t *kr, const handle_claims_t *c)
{
	if (seal_keyring_is_retired(kr, c->key_id, SEAL_KEY_ID_LEN))
		return HANDLE_E_RETIRED_KEY;
	if (seal_keyring_find(kr, c->key_id, SEAL_KEY_ID_LEN) == NULL)
		return HANDLE_E_UNKNOWN_KEY;
	return HANDLE_OK;
}

/* Cached entry for digest with a new reference, or NULL. Counts a hit or a miss. */
static struct hc_entry *
hc_lookup(handlecache_t *hc, const uint8_t *digest)
{
	struct hc_entry *e;

	pthread_mutex_lock(&hc->lock);
	if ((e = *hc_slot(hc, digest)) != NULL) {
		__atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
		TAILQ_REMOVE(&hc->lru, e, lru);
		TAILQ_INSERT_TAIL(&hc->lru, e, lru);
		hc->hits++;
	} else
		hc->misses++;
	pthread_mutex_unlock(&hc->lock);
	return e;
}

/* Unlink the least recently used entry when over max; the caller unrefs it. */
static struct hc_entry *
hc_evict(handlecache_t *hc)
{
	struct hc_entry *victim = TAILQ_FIRST(&hc->lru);

	if (hc->size <= hc->max || victim == NULL)
		return NULL;
	*hc_slot(hc, victim->digest) = victim->hnext;
	TAILQ_REMOVE(&hc->lru, victim, lru);
	hc->size--;
	return victim;
}

/*
 * Cache e (refs 2: the cache's and the caller's). When another thread cached the same
 * handle meanwhile, that entry is returned with a new reference and e is freed.
 */
static struct hc_entry *
hc_insert(handlecache_t *hc, struct hc_entry *e)
{
	struct hc_entry **slot, *found, *drop = NULL;

	pthread_mutex_lock(&hc->lock);
	slot = hc_slot(hc, e->digest);
	if ((found = *slot) != NULL)
		__atomic_add_fetch(&found->refs, 1, __ATOMIC_RELAXED);
	else {
		e->refs = 2;
		*slot = e;
		TAILQ_INSERT_TAIL(&hc->lru, e, lru);
		hc->size++;
		drop = hc_evict(hc);
	}
	pthread_mutex_unlock(&hc->lock);
	hc_entry_unref(drop);
	if (found != NULL) {
		e->refs = 1;
		hc_entry_unref(e);
		return found;
	}
	return e;
}

/* handle_open into a new entry; HANDLE_OK or the error (nothing allocated then). */
static int
hc_open_new(const seal_keyring_t *kr, const char *text, size_t len, const uint8_t *digest,
    struct hc_entry **out)
{
	struct hc_entry *e = calloc(1, sizeof(*e));
	int rc;

	*out = NULL;
	if (e == NULL)
		return HANDLE_E_NOMEM;
	if ((rc = handle_open(kr, text, len, &e->claims)) != HANDLE_OK) {
		free(e);
		return rc;
	}
	memcpy(e->digest, digest, HC_DIGEST_LEN);
	*out = e;
	return HANDLE_OK;
}

int
handlecache_open(handlecache_t *hc, const seal_keyring_t *kr, const char *text, size_t len,
    const handle_claims_t **out)
{
	uint8_t digest[HC_DIGEST_LEN];
	struct hc_entry *e;
	int rc;

	*out = NULL;
	if (len > SG_HANDLE_MAX_LEN)
		return HANDLE_E_FORMAT;
	crypto_generichash(digest, sizeof(digest), (const unsigned char *)text, len, hc->key,
	    sizeof(hc->key));
	if ((e = hc_lookup(hc, digest)) != NULL) {
		if ((rc = hc_check_key(kr, &e->claims)) != HANDLE_OK) {
			hc_entry_unref(e);
			return rc;
		}
	} else if ((rc = hc_open_new(kr, text, len, digest, &e)) != HANDLE_OK)
		return rc;
	else
		e = hc_insert(hc, e);
	*out = &e->claims;
	return HANDLE_OK;
}

void
handlecache_release(handlecache_t *hc, const handle_claims_t *c)
{
	(void)hc;
	if (c != NULL)
		hc_entry_unref(hc_entry_of(c));
}

void
handlecache_stats(handlecache_t *hc, uint64_t *hits, uint64_t *misses, size_t *size)
{
	pthread_mutex_lock(&hc->lock);
	if (hits)
		*hits = hc->hits;
	if (misses)
		*misses = hc->misses;
	if (size)
		*size = hc->size;
	pthread_mutex_unlock(&hc->lock);
}

int
handlecache_refs(const handle_claims_t *c)
{
	return __atomic_load_n(&hc_entry_of(c)->refs, __ATOMIC_ACQUIRE);
}
