/* ratelimit.c — striped, bounded table of fixed-point token buckets. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "hash.h"
#include "ratelimit.h"

typedef unsigned __int128 rl_units_t;	/* tokens x per_ms: burst * per_ms needs > 64 bits */

struct rl_bucket {
	struct rl_bucket *chain;		/* next in the hash slot */
	TAILQ_ENTRY(rl_bucket) lru;		/* stripe recency */
	uint64_t hash;
	rl_units_t level;
	uint64_t stamp_ms;			/* level is as of this time */
	uint64_t per_ms;			/* rate it was last used with */
	uint32_t requests, burst;
	bool inuse;				/* named by the take in progress */
	size_t keylen;
	unsigned char key[];
};

struct rl_stripe {
	pthread_mutex_t mu;
	struct rl_bucket **slots;
	size_t mask;				/* nslots - 1 */
	size_t count, cap;
	TAILQ_HEAD(rl_lru, rl_bucket) lru;	/* least recently used first */
};

struct ratelimit {
	hash_key_t hkey;
	size_t nstripes;			/* power of two <= max_buckets */
	struct rl_stripe stripes[];
};

/* One bucket named by a take, with the rate it is used with. */
struct rl_slot {
	struct rl_bucket *b;
	const policy_rate_t *rate;
	uint64_t hash;
	size_t stripe;
};

/* --- bucket arithmetic ----------------------------------------------------------- */

static uint32_t
rl_burst(const policy_rate_t *r)
{
	return r->burst ? r->burst : r->requests;
}

static rl_units_t
rl_capacity(uint32_t burst, uint64_t per_ms)
{
	return (rl_units_t)burst * per_ms;
}

/* Bring b up to date for rate r at now (rescaling if the period changed on reload). */
static void
rl_refill(struct rl_bucket *b, const policy_rate_t *r, uint64_t now)
{
	rl_units_t cap = rl_capacity(rl_burst(r), r->per_ms);

	if (b->per_ms != r->per_ms)	/* same token count; split so nothing overflows */
		b->level = b->level / b->per_ms * r->per_ms +
		    b->level % b->per_ms * r->per_ms / b->per_ms;
	b->per_ms = r->per_ms;
	b->requests = r->requests;
	b->burst = rl_burst(r);
	if (now > b->stamp_ms) {
		b->level += (rl_units_t)(now - b->stamp_ms) * r->requests;
		b->stamp_ms = now;
	}
	if (b->level > cap)
		b->level = cap;
}

static uint64_t
rl_ceil_div(rl_units_t a, uint32_t d)
{
	rl_units_t q;

	if (d == 0)
		return UINT64_MAX;	/* never refills */
	q = (a + d - 1) / d;
	return q > UINT64_MAX ? UINT64_MAX : (uint64_t)q;
}

/* ms until b holds one token (0 when it does). */
static uint64_t
rl_wait_ms(const struct rl_bucket *b)
{
	if (b->level >= b->per_ms)
		return 0;
	return rl_ceil_div((rl_units_t)b->per_ms - b->level, b->requests);
}

/* Has b refilled to full by now? */
static bool
rl_is_full(const struct rl_bucket *b, uint64_t now)
{
	rl_units_t cap = rl_capacity(b->burst, b->per_ms);
	rl_units_t level = b->level;

	if (now > b->stamp_ms)
		level += (rl_units_t)(now - b->stamp_ms) * b->requests;
	return level >= cap;
}

/* --- stripes ------------------------------------------------------------------------ */

static void
rl_remove(struct rl_stripe *s, struct rl_bucket *b)
{
	struct rl_bucket **pp = &s->slots[b->hash & s->mask];

	while (*pp != b)
		pp = &(*pp)->chain;
	*pp = b->chain;
	TAILQ_REMOVE(&s->lru, b, lru);
	s->count--;
	free(b);
}

/* Make room for one bucket: a full one among the oldest few, else the oldest unused. */
static int
rl_evict(struct rl_stripe *s, uint64_t now)
{
	struct rl_bucket *b, *victim = NULL;
	size_t seen = 0;

	TAILQ_FOREACH(b, &s->lru, lru) {
		if (b->inuse)
			continue;
		if (victim == NULL)
			victim = b;
		if (rl_is_full(b, now)) {
			victim = b;
			break;
		}
		if (++seen == RATELIMIT_EVICT_SCAN)
			break;
	}
	if (victim == NULL)
		return -1;
	rl_remove(s, victim);
	return 0;
}

static struct rl_bucket *
rl_find(struct rl_stripe *s, uint64_t hash, const void *key, size_t keylen)
{
	struct rl_bucket *b;

	for (b = s->slots[hash & s->mask]; b != NULL; b = b->chain)
		if (b->hash == hash && b->keylen == keylen && memcmp(b->key, key, keylen) == 0)
			return b;
	return NULL;
}

static struct rl_bucket *
rl_insert(struct rl_stripe *s, uint64_t hash, const struct ratelimit_req *req,
    uint64_t now)
{
	struct rl_bucket *b;

	if (s->count >= s->cap && rl_evict(s, now) != 0)
		return NULL;
	if ((b = calloc(1, sizeof(*b) + req->keylen)) == NULL)
		return NULL;
	b->hash = hash;
	b->keylen = req->keylen;
	memcpy(b->key, req->key, req->keylen);
	b->per_ms = req->rate->per_ms;
	b->level = rl_capacity(rl_burst(req->rate), req->rate->per_ms);
	b->stamp_ms = now;
	b->chain = s->slots[hash & s->mask];
	s->slots[hash & s->mask] = b;
	TAILQ_INSERT_TAIL(&s->lru, b, lru);
	s->count++;
	return b;
}

/* --- table ---------------------------------------------------------------------------- */

static size_t
rl_pow2_floor(size_t v)
{
	size_t p = 1;

	while (p <= v / 2)
		p *= 2;
	return p;
}

static int
rl_stripe_init(struct rl_stripe *s, size_t cap)
{
	size_t nslots = rl_pow2_floor(cap);

	if (nslots < cap)
		nslots *= 2;
	s->cap = cap;
	s->mask = nslots - 1;
	TAILQ_INIT(&s->lru);
	if ((s->slots = calloc(nslots, sizeof(*s->slots))) == NULL)
		return -1;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s->slots);
		s->slots = NULL;
		return -1;
	}
	return 0;
}

static void
rl_stripe_fini(struct rl_stripe *s)
{
	struct rl_bucket *b, *next;

	if (s->slots == NULL)
		return;
	for (b = TAILQ_FIRST(&s->lru); b != NULL; b = next) {
		next = TAILQ_NEXT(b, lru);
		free(b);
	}
	free(s->slots);
	pthread_mutex_destroy(&s->mu);
}

ratelimit_t *
ratelimit_new(size_t max_buckets)
{
	ratelimit_t *rl;
	size_t ns;

	if (max_buckets == 0)
		return NULL;
	ns = rl_pow2_floor(max_buckets < RATELIMIT_STRIPES ? max_buckets : RATELIMIT_STRIPES);
	if ((rl = calloc(1, sizeof(*rl) + ns * sizeof(rl->stripes[0]))) == NULL)
		return NULL;
	rl->nstripes = ns;
	if (hash_key_init(&rl->hkey) < 0) {
		free(rl);
		return NULL;
	}
	for (size_t i = 0; i < ns; i++) {
		if (rl_stripe_init(&rl->stripes[i], max_buckets / ns) != 0) {
			ratelimit_free(rl);
			return NULL;
		}
	}
	return rl;
}

void
ratelimit_free(ratelimit_t *rl)
{
	if (rl == NULL)
		return;
	for (size_t i = 0; i < rl->nstripes; i++)
		rl_stripe_fini(&rl->stripes[i]);
	hash_key_wipe(&rl->hkey);
	free(rl);
}

size_t
ratelimit_count(ratelimit_t *rl)
{
	size_t n = 0;

	for (size_t i = 0; i < rl->nstripes; i++) {
		pthread_mutex_lock(&rl->stripes[i].mu);
		n += rl->stripes[i].count;
		pthread_mutex_unlock(&rl->stripes[i].mu);
	}
	return n;
}

/* --- take ------------------------------------------------------------------------------ */

/* Distinct stripes of slots[0..n), ascending: the lock order. Returns how many. */
static size_t
rl_lock_order(const struct rl_slot *slots, size_t n, size_t order[RATELIMIT_MAX_REQS])
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j = m, k;

		for (k = 0; k < m; k++)
			if (order[k] == slots[i].stripe)
				break;
		if (k < m)
			continue;
		while (j > 0 && order[j - 1] > slots[i].stripe) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = slots[i].stripe;
		m++;
	}
	return m;
}

/* Look up or create every bucket; refill each to now. -1 when one cannot be created. */
static int
rl_resolve(ratelimit_t *rl, const struct ratelimit_req *reqs, struct rl_slot *slots,
    size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		struct rl_stripe *s = &rl->stripes[slots[i].stripe];
		struct rl_bucket *b = rl_find(s, slots[i].hash, reqs[i].key, reqs[i].keylen);

		if (b == NULL)
			b = rl_insert(s, slots[i].hash, &reqs[i], now);
		if (b == NULL)
			return -1;
		b->inuse = true;
		TAILQ_REMOVE(&s->lru, b, lru);
		TAILQ_INSERT_TAIL(&s->lru, b, lru);
		rl_refill(b, reqs[i].rate, now);
		slots[i].b = b;
	}
	return 0;
}

/* Take one token from each, in order; on the first empty bucket give back and fail. */
static bool
rl_take_all(struct rl_slot *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (slots[i].b->level < slots[i].b->per_ms) {
			while (i-- > 0)
				slots[i].b->level += slots[i].b->per_ms;
			return false;
		}
		slots[i].b->level -= slots[i].b->per_ms;
	}
	return true;
}

static void
rl_describe(const struct rl_bucket *b, size_t idx, struct ratelimit_result *res)
{
	rl_units_t tokens = b->level / b->per_ms;
	rl_units_t cap = rl_capacity(b->burst, b->per_ms);

	res->limiting = idx;
	res->remaining = tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)tokens;
	res->limit = b->requests;
	res->burst = b->burst;
	res->window_ms = b->per_ms;
	res->reset_ms = b->level >= cap ? 0 : rl_ceil_div(cap - b->level, b->requests);
}

/* Fill res: the longest wait when denied, the fewest tokens left when allowed. */
static void
rl_result(const struct rl_slot *slots, size_t n, const size_t *map, bool allowed,
    struct ratelimit_result *res)
{
	size_t best = 0;

	for (size_t i = 1; i < n; i++) {
		const struct rl_bucket *a = slots[i].b, *c = slots[best].b;

		if (allowed ? a->level / a->per_ms < c->level / c->per_ms :
		    rl_wait_ms(a) > rl_wait_ms(c))
			best = i;
	}
	res->allowed = allowed;
	res->retry_after_ms = allowed ? 0 : rl_wait_ms(slots[best].b);
	rl_describe(slots[best].b, map[best], res);
}

/* Keep the reqs that carry a usable rate; map[k] is the caller's index of slots[k]. */
static size_t
rl_collect(ratelimit_t *rl, const struct ratelimit_req *reqs, size_t n,
    struct ratelimit_req *live, struct rl_slot *slots, size_t *map)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		const policy_rate_t *r = reqs[i].rate;

		if (r == NULL || !r->set || r->per_ms == 0 || rl_burst(r) == 0)
			continue;
		live[m] = reqs[i];
		map[m] = i;
		slots[m].b = NULL;
		slots[m].rate = r;
		slots[m].hash = hash_keyed(&rl->hkey, reqs[i].key, reqs[i].keylen);
		slots[m].stripe = (size_t)(slots[m].hash >> 32) & (rl->nstripes - 1);
		m++;
	}
	return m;
}

static int
rl_args_ok(const struct ratelimit_req *reqs, size_t n)
{
	if (n > RATELIMIT_MAX_REQS || (n > 0 && reqs == NULL))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (reqs[i].key == NULL || reqs[i].keylen == 0 ||
		    reqs[i].keylen > RATELIMIT_MAX_KEY)
			return -1;
	return 0;
}

int
ratelimit_take(ratelimit_t *rl, const struct ratelimit_req *reqs, size_t n,
    uint64_t now_ms, struct ratelimit_result *res)
{
	struct ratelimit_req live[RATELIMIT_MAX_REQS];
	struct rl_slot slots[RATELIMIT_MAX_REQS];
	size_t map[RATELIMIT_MAX_REQS], order[RATELIMIT_MAX_REQS], m, nl;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	res->limiting = RATELIMIT_NONE;
	if (rl_args_ok(reqs, n) != 0)
		return -1;
	if ((m = rl_collect(rl, reqs, n, live, slots, map)) == 0) {
		res->allowed = true;
		return 0;
	}
	nl = rl_lock_order(slots, m, order);
	for (size_t i = 0; i < nl; i++)
		pthread_mutex_lock(&rl->stripes[order[i]].mu);
	if (rl_resolve(rl, live, slots, m, now_ms) != 0)
		rc = -1;
	else
		rl_result(slots, m, map, rl_take_all(slots, m), res);
	for (size_t i = 0; i < m; i++)
		if (slots[i].b != NULL)
			slots[i].b->inuse = false;
	for (size_t i = nl; i-- > 0;)
		pthread_mutex_unlock(&rl->stripes[order[i]].mu);
	return rc;
}

/* A key not stored yet: a full bucket at rate r. */
static void
rl_describe_fresh(const policy_rate_t *r, struct ratelimit_result *res)
{
	res->allowed = true;
	res->limiting = 0;
	res->retry_after_ms = 0;
	res->remaining = rl_burst(r);
	res->limit = r->requests;
	res->burst = rl_burst(r);
	res->window_ms = r->per_ms;
	res->reset_ms = 0;
}

int
ratelimit_peek(ratelimit_t *rl, const struct ratelimit_req *req, uint64_t now_ms,
    struct ratelimit_result *res)
{
	struct ratelimit_req live;
	struct rl_slot slot;
	struct rl_stripe *s;
	struct rl_bucket *b;
	size_t map;

	memset(res, 0, sizeof(*res));
	res->limiting = RATELIMIT_NONE;
	if (rl_args_ok(req, 1) != 0)
		return -1;
	if (rl_collect(rl, req, 1, &live, &slot, &map) == 0) {
		res->allowed = true;
		return 0;
	}
	s = &rl->stripes[slot.stripe];
	pthread_mutex_lock(&s->mu);
	if ((b = rl_find(s, slot.hash, req->key, req->keylen)) != NULL) {
		TAILQ_REMOVE(&s->lru, b, lru);
		TAILQ_INSERT_TAIL(&s->lru, b, lru);
		rl_refill(b, req->rate, now_ms);
		res->allowed = b->level >= b->per_ms;
		res->retry_after_ms = rl_wait_ms(b);
		rl_describe(b, 0, res);
	}
	pthread_mutex_unlock(&s->mu);
	if (b == NULL)
		rl_describe_fresh(req->rate, res);
	return 0;
}

/* --- response headers ----------------------------------------------------------------- */

/* Longest policy name (before escaping). */
#define RL_MAX_NAME	64

/* ceil(ms / 1000) without overflow. */
static uint64_t
rl_ceil_s(uint64_t ms)
{
	return ms / 1000 + (ms % 1000 != 0);
}

/* Append printf output at *pos; false when it does not fit. */
static bool __attribute__((format(printf, 4, 5)))
rl_append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *pos)
		return false;
	*pos += (size_t)n;
	return true;
}

/* policy_name as an sf-string body (without the quotes); false when it cannot be one. */
static bool
rl_sf_string(const char *name, char *out, size_t outlen)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return false;
		if (*p == '"' || *p == '\\') {
			if (o + 1 >= outlen)
				return false;
			out[o++] = '\\';
		}
		if (o + 1 >= outlen)
			return false;
		out[o++] = (char)*p;
	}
	out[o] = '\0';
	return true;
}

int
ratelimit_format_headers(const struct ratelimit_result *res, const char *policy_name,
    char *buf, size_t len)
{
	char name[2 * RL_MAX_NAME + 1];
	size_t pos = 0;
	bool ok = true;

	if (buf == NULL || len == 0)
		return -1;
	buf[0] = '\0';
	if (strlen(policy_name) > RL_MAX_NAME || !rl_sf_string(policy_name, name, sizeof(name)))
		return -1;
	if (res->limiting == RATELIMIT_NONE)
		return 0;
	if (!res->allowed) {
		uint64_t s = rl_ceil_s(res->retry_after_ms);

		ok = rl_append(buf, len, &pos, "Retry-After: %" PRIu64 "\r\n", s ? s : 1);
	}
	ok = ok && rl_append(buf, len, &pos, "RateLimit-Policy: \"%s\";q=%" PRIu32 ";w=%" PRIu64
	    "\r\n", name, res->limit, res->window_ms >= 1000 ? rl_ceil_s(res->window_ms) : 1);
	ok = ok && rl_append(buf, len, &pos, "RateLimit: \"%s\";r=%" PRIu32 ";t=%" PRIu64 "\r\n",
	    name, res->remaining, rl_ceil_s(res->reset_ms));
	if (!ok) {
		buf[0] = '\0';
		return -1;
	}
	return (int)pos;
}
