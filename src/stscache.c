/* stscache.c — AssumeRole credentials per credential: refresh rule, one fetch in flight. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <sodium.h>

#include "awsrole.h"
#include "secmem.h"
#include "stscache.h"

/* --- credential sets -------------------------------------------------------------------- */

stscache_cred_t *
stscache_cred_new(const char *akid, size_t akid_len, const char *secret, size_t secret_len,
    const char *token, size_t token_len, int64_t expiration, int64_t now)
{
	/* sodium_malloc puts the region against its guard page: a size that is a multiple
	 * of 16 keeps the struct aligned */
	size_t n = (sizeof(stscache_cred_t) + akid_len + secret_len + token_len + 3 + 15) &
	    ~(size_t)15;
	stscache_cred_t *c = secmem_guarded_alloc(n);
	char *p;
	int64_t life;

	if (c == NULL)
		return NULL;
	memset(c, 0, n);
	p = (char *)(c + 1);
	c->id.access_key_id = memcpy(p, akid, akid_len);
	c->id.access_key_id_len = akid_len;
	p += akid_len + 1;
	c->id.secret = memcpy(p, secret, secret_len);
	c->id.secret_len = secret_len;
	p += secret_len + 1;
	if (token != NULL) {
		c->id.session_token = memcpy(p, token, token_len);
		c->id.session_token_len = token_len;
	}
	c->expiration = expiration;
	life = expiration > now ? expiration - now : 0;
	c->refresh_at = now + life * STSCACHE_REFRESH_PCT / 100;
	if (c->refresh_at > expiration - STSCACHE_REFRESH_BEFORE_S)
		c->refresh_at = expiration - STSCACHE_REFRESH_BEFORE_S;
	c->refs = 1;
	return c;
}

stscache_cred_t *
stscache_cred_ref(stscache_cred_t *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
stscache_cred_unref(stscache_cred_t *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		secmem_guarded_free(c);		/* zeroes */
}

/* --- the table -------------------------------------------------------------------------- */

struct stscache_entry {
	uint8_t key[STSCACHE_KEY_LEN];
	stscache_cred_t *cred;		/* the newest set, or NULL */
	uint64_t cred_seq;		/* the fetch it came from */
	bool inflight;
	uint64_t inflight_seq;
	uint64_t started_ms;		/* when the fetch in flight started */
	uint64_t failed_seq;		/* the newest failed fetch, 0: none */
	uint64_t failed_ms;
	char error[STSCACHE_ERROR_MAX];
	TAILQ_ENTRY(stscache_entry) lru;
};

TAILQ_HEAD(stscache_list, stscache_entry);

struct stscache {
	pthread_mutex_t mu;
	struct stscache_list lru;	/* least recently used first */
	size_t n;
	uint64_t seq;			/* fetches started so far */
	uint64_t generation;		/* fetches done (atomic) */
	uint8_t hkey[crypto_generichash_KEYBYTES];
};

stscache_t *
stscache_new(void)
{
	stscache_t *c;

	if (sodium_init() < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	TAILQ_INIT(&c->lru);
	randombytes_buf(c->hkey, sizeof(c->hkey));
	return c;
}

static void
stscache_entry_free(stscache_t *c, struct stscache_entry *e)
{
	TAILQ_REMOVE(&c->lru, e, lru);
	c->n--;
	stscache_cred_unref(e->cred);
	sodium_memzero(e, sizeof(*e));
	free(e);
}

void
stscache_free(stscache_t *c)
{
	if (c == NULL)
		return;
	while (!TAILQ_EMPTY(&c->lru))
		stscache_entry_free(c, TAILQ_FIRST(&c->lru));
	pthread_mutex_destroy(&c->mu);
	sodium_memzero(c->hkey, sizeof(c->hkey));
	free(c);
}

/* One part of the key, with its length (so parts cannot run into each other). */
static void
stscache_key_part(crypto_generichash_state *st, const char *s, size_t len)
{
	uint64_t n = s != NULL ? len : UINT64_MAX;

	crypto_generichash_update(st, (const unsigned char *)&n, sizeof(n));
	if (s != NULL)
		crypto_generichash_update(st, (const unsigned char *)s, len);
}

void
stscache_key(const stscache_t *c, const policy_credential_t *cred,
    uint8_t key[STSCACHE_KEY_LEN])
{
	const policy_aws_t *aws = cred->aws;
	char host[AWSROLE_HOST_MAX] = "", region[SIGV4_MAX_REGION + 1] = "", dur[16];
	crypto_generichash_state st;

	crypto_generichash_init(&st, c->hkey, sizeof(c->hkey), STSCACHE_KEY_LEN);
	stscache_key_part(&st, cred->name, strlen(cred->name));
	stscache_key_part(&st, cred->secret, cred->secret_len);
	if (aws != NULL) {
		if (awsrole_endpoint(aws, host, region) != AWSROLE_OK)
			host[0] = '\0';	/* no assume_role: never fetched */
		snprintf(dur, sizeof(dur), "%u", (unsigned)aws->assume_role.duration_s);
		stscache_key_part(&st, aws->access_key_id, aws->access_key_id_len);
		stscache_key_part(&st, aws->session_token, aws->session_token_len);
		stscache_key_part(&st, aws->assume_role.role_arn, aws->assume_role.role_arn ?
		    strlen(aws->assume_role.role_arn) : 0);
		stscache_key_part(&st, aws->assume_role.external_id,
		    aws->assume_role.external_id ? strlen(aws->assume_role.external_id) : 0);
		stscache_key_part(&st, dur, strlen(dur));
		stscache_key_part(&st, aws->assume_role.session_policy,
		    aws->assume_role.session_policy_len);
		stscache_key_part(&st, host, strlen(host));
	}
	crypto_generichash_final(&st, key, STSCACHE_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

/* Make room for one more entry: the least recently used one with no fetch in flight
 * goes. -1 when every entry has a fetch in flight. */
static int
stscache_evict(stscache_t *c)
{
	struct stscache_entry *e;

	TAILQ_FOREACH(e, &c->lru, lru)
		if (!e->inflight) {
			stscache_entry_free(c, e);
			return 0;
		}
	return -1;
}

/* key's entry (made when missing), now the most recently used; NULL when full. */
static struct stscache_entry *
stscache_entry(stscache_t *c, const uint8_t key[STSCACHE_KEY_LEN])
{
	struct stscache_entry *e;

	TAILQ_FOREACH(e, &c->lru, lru)
		if (sodium_memcmp(e->key, key, STSCACHE_KEY_LEN) == 0)
			break;
	if (e == NULL) {
		if (c->n >= STSCACHE_MAX && stscache_evict(c) < 0)
			return NULL;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return NULL;
		memcpy(e->key, key, STSCACHE_KEY_LEN);
		c->n++;
	} else
		TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_TAIL(&c->lru, e, lru);
	return e;
}

static void
stscache_ready(struct stscache_entry *e, stscache_look_t *out)
{
	out->state = STSCACHE_READY;
	out->cred = stscache_cred_ref(e->cred);
}

static void
stscache_failed(const struct stscache_entry *e, stscache_look_t *out)
{
	out->state = STSCACHE_FAILED;
	snprintf(out->error, sizeof(out->error), "%s", e->error);
}

/* Start a fetch (the caller makes it): seq and the in-flight mark. */
static void
stscache_start(stscache_t *c, struct stscache_entry *e, uint64_t now_ms,
    stscache_look_t *out)
{
	e->inflight = true;
	e->inflight_seq = ++c->seq;
	e->started_ms = now_ms;
	out->fetch = true;
	out->seq = e->inflight_seq;
}

/* Did a fetch fail less than STSCACHE_RETRY_MS ago? */
static bool
stscache_backing_off(const struct stscache_entry *e, uint64_t now_ms)
{
	return e->failed_seq != 0 && e->failed_seq > e->cred_seq &&
	    now_ms - e->failed_ms < STSCACHE_RETRY_MS;
}

/* A request not waiting yet. */
static void
stscache_get_new(stscache_t *c, struct stscache_entry *e, int64_t now, uint64_t now_ms,
    stscache_look_t *out)
{
	if (e->cred != NULL && now < e->cred->expiration - STSCACHE_MIN_LEFT_S) {
		stscache_ready(e, out);
		if (now >= e->cred->refresh_at && !e->inflight &&
		    !stscache_backing_off(e, now_ms)) {
			stscache_start(c, e, now_ms, out);
			out->refresh = true;
		}
		return;
	}
	out->state = STSCACHE_WAIT;
	if (e->inflight) {
		out->seq = e->inflight_seq;
		return;
	}
	if (stscache_backing_off(e, now_ms)) {
		stscache_failed(e, out);
		return;
	}
	stscache_start(c, e, now_ms, out);
}

void
stscache_get(stscache_t *c, const uint8_t key[STSCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, stscache_look_t *out)
{
	struct stscache_entry *e;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->mu);
	if ((e = stscache_entry(c, key)) == NULL) {
		out->state = STSCACHE_FAILED;
		snprintf(out->error, sizeof(out->error), "cache full");
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (e->inflight && now_ms - e->started_ms > STSCACHE_STALE_FETCH_MS)
		e->inflight = false;	/* abandoned: its answer will be ignored */
	if (wait_seq != 0 && e->inflight && e->inflight_seq == wait_seq) {
		out->state = STSCACHE_WAIT;
		out->seq = wait_seq;
	} else if (wait_seq != 0 && e->cred != NULL && e->cred_seq >= wait_seq &&
	    now < e->cred->expiration)
		stscache_ready(e, out);		/* the answer it waited for, or newer */
	else if (wait_seq != 0 && e->failed_seq >= wait_seq)
		stscache_failed(e, out);
	else
		stscache_get_new(c, e, now, now_ms, out);
	pthread_mutex_unlock(&c->mu);
}

void
stscache_done(stscache_t *c, const uint8_t key[STSCACHE_KEY_LEN], uint64_t seq,
    stscache_cred_t *cred, const char *error, uint64_t now_ms)
{
	struct stscache_entry *e;

	pthread_mutex_lock(&c->mu);
	TAILQ_FOREACH(e, &c->lru, lru)
		if (sodium_memcmp(e->key, key, STSCACHE_KEY_LEN) == 0)
			break;
	if (e == NULL || !e->inflight || e->inflight_seq != seq) {
		pthread_mutex_unlock(&c->mu);
		stscache_cred_unref(cred);	/* evicted or abandoned: a late answer */
		return;
	}
	e->inflight = false;
	if (cred != NULL) {
		stscache_cred_unref(e->cred);
		e->cred = cred;
		e->cred_seq = seq;
	} else {
		e->failed_seq = seq;
		e->failed_ms = now_ms;
		snprintf(e->error, sizeof(e->error), "%s", error ? error : "failed");
	}
	__atomic_add_fetch(&c->generation, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->mu);
}

uint64_t
stscache_generation(const stscache_t *c)
{
	return __atomic_load_n(&c->generation, __ATOMIC_ACQUIRE);
}

size_t
stscache_count(stscache_t *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->n;
	pthread_mutex_unlock(&c->mu);
	return n;
}
