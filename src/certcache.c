/* certcache.c — leaf LRU: chained hash table + TAILQ recency list, one mutex. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "certcache.h"
#include "hash.h"

/* Buckets never exceed this (a larger max only lengthens chains). */
#define CERTCACHE_MAX_BUCKETS	((size_t)1 << 22)
/* Leading key bytes hashed: more than any key tls.c makes (CA id, '/', a DNS name).
 * Chains compare whole keys, so longer keys are still told apart. */
#define CERTCACHE_HASHED_MAX	512

struct cc_entry {
	struct cc_entry *hnext;		/* hash chain */
	TAILQ_ENTRY(cc_entry) lru;	/* recency */
	X509 *cert;			/* the cache's reference */
	uint32_t hash;
	char key[];			/* lower-case */
};

struct certcache {
	pthread_mutex_t lock;
	hash_key_t hkey;		/* random, per cache: names come from clients' SNI */
	struct cc_entry **buckets;
	size_t mask;			/* bucket count - 1 (a power of two) */
	TAILQ_HEAD(cc_lru, cc_entry) lru;	/* least recently used first */
	size_t size, max;
	uint64_t hits, misses;
};

/* Keyed hash of the lower-cased key. */
static uint32_t
certcache_hash(const certcache_t *cc, const char *key)
{
	char low[CERTCACHE_HASHED_MAX];
	size_t n;

	for (n = 0; n < sizeof(low) && key[n] != '\0'; n++)
		low[n] = (char)tolower((unsigned char)key[n]);
	return (uint32_t)hash_keyed(&cc->hkey, low, n);
}

/* Stored lower-case key vs. a key in any case. */
static int
certcache_key_eq(const char *stored, const char *key)
{
	for (; *stored && *key; stored++, key++)
		if (*stored != (char)tolower((unsigned char)*key))
			return 0;
	return *stored == *key;
}

/* The link pointing at the entry for key (or at the chain's terminating NULL). */
static struct cc_entry **
certcache_slot(certcache_t *cc, const char *key, uint32_t hash)
{
	struct cc_entry **pp = &cc->buckets[hash & cc->mask];

	while (*pp != NULL && ((*pp)->hash != hash || !certcache_key_eq((*pp)->key, key)))
		pp = &(*pp)->hnext;
	return pp;
}

static void
certcache_entry_free(struct cc_entry *e)
{
	if (e == NULL)
		return;
	X509_free(e->cert);
	free(e);
}

certcache_t *
certcache_new(size_t max)
{
	certcache_t *cc;
	size_t n = 1;

	if (max == 0)
		return NULL;
	while (n < max && n < CERTCACHE_MAX_BUCKETS)
		n <<= 1;
	if ((cc = calloc(1, sizeof(*cc))) == NULL)
		return NULL;
	if ((cc->buckets = calloc(n, sizeof(*cc->buckets))) == NULL)
		goto fail;
	if (hash_key_init(&cc->hkey) < 0 || pthread_mutex_init(&cc->lock, NULL) != 0)
		goto fail;
	TAILQ_INIT(&cc->lru);
	cc->mask = n - 1;
	cc->max = max;
	return cc;
fail:
	free(cc->buckets);
	free(cc);
	return NULL;
}

void
certcache_free(certcache_t *cc)
{
	struct cc_entry *e, *next;

	if (cc == NULL)
		return;
	for (e = TAILQ_FIRST(&cc->lru); e != NULL; e = next) {
		next = TAILQ_NEXT(e, lru);
		certcache_entry_free(e);
	}
	pthread_mutex_destroy(&cc->lock);
	hash_key_wipe(&cc->hkey);
	free(cc->buckets);
	free(cc);
}

X509 *
certcache_get(certcache_t *cc, const char *name)
{
	uint32_t hash = certcache_hash(cc, name);
	struct cc_entry *e;
	X509 *cert = NULL;

	pthread_mutex_lock(&cc->lock);
	e = *certcache_slot(cc, name, hash);
	if (e != NULL && X509_up_ref(e->cert) == 1) {
		cert = e->cert;
		TAILQ_REMOVE(&cc->lru, e, lru);
		TAILQ_INSERT_TAIL(&cc->lru, e, lru);
		cc->hits++;
	} else
		cc->misses++;
	pthread_mutex_unlock(&cc->lock);
	return cert;
}

static struct cc_entry *
certcache_entry_new(const char *name, uint32_t hash, X509 *cert)
{
	size_t len = strlen(name);
	struct cc_entry *e = calloc(1, sizeof(*e) + len + 1);

	if (e == NULL)
		return NULL;
	if (X509_up_ref(cert) != 1) {
		free(e);
		return NULL;
	}
	for (size_t i = 0; i <= len; i++)
		e->key[i] = (char)tolower((unsigned char)name[i]);
	e->hash = hash;
	e->cert = cert;
	return e;
}

/* Unlink the least recently used entry when over max; the caller frees it. */
static struct cc_entry *
certcache_evict(certcache_t *cc)
{
	struct cc_entry *victim = TAILQ_FIRST(&cc->lru);

	if (cc->size <= cc->max || victim == NULL)
		return NULL;
	*certcache_slot(cc, victim->key, victim->hash) = victim->hnext;
	TAILQ_REMOVE(&cc->lru, victim, lru);
	cc->size--;
	return victim;
}

void
certcache_put(certcache_t *cc, const char *name, X509 *cert)
{
	uint32_t hash = certcache_hash(cc, name);
	struct cc_entry *e = certcache_entry_new(name, hash, cert), **slot, *drop = NULL;
	X509 *old = NULL;

	if (e == NULL)
		return;		/* a cache: failing to remember is not an error */
	pthread_mutex_lock(&cc->lock);
	slot = certcache_slot(cc, name, hash);
	if (*slot != NULL) {	/* replace in place; e only carried the reference */
		old = (*slot)->cert;
		(*slot)->cert = e->cert;
		e->cert = NULL;
		drop = e;
		TAILQ_REMOVE(&cc->lru, *slot, lru);
		TAILQ_INSERT_TAIL(&cc->lru, *slot, lru);
	} else {
		*slot = e;
		TAILQ_INSERT_TAIL(&cc->lru, e, lru);
		cc->size++;
		drop = certcache_evict(cc);
	}
	pthread_mutex_unlock(&cc->lock);
	X509_free(old);
	certcache_entry_free(drop);
}

void
certcache_stats(certcache_t *cc, uint64_t *hits, uint64_t *misses, size_t *size)
{
	pthread_mutex_lock(&cc->lock);
	if (hits)
		*hits = cc->hits;
	if (misses)
		*misses = cc->misses;
	if (size)
		*size = cc->size;
	pthread_mutex_unlock(&cc->lock);
}
