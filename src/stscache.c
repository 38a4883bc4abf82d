/* stscache.c — AssumeRole credentials per credential: their refresh rule, on fetchcache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "awsrole.h"
#include "fetchcache.h"
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

/* --- the cache: a fetchcache of credential sets ----------------------------------------- */

static int64_t
stscache_expires_of(const void *v)
{
	return ((const stscache_cred_t *)v)->expiration;
}

static int64_t
stscache_refresh_of(const void *v)
{
	return ((const stscache_cred_t *)v)->refresh_at;
}

static void *
stscache_ref_of(void *v)
{
	return stscache_cred_ref(v);
}

static void
stscache_unref_of(void *v)
{
	stscache_cred_unref(v);
}

static const fetchcache_ops_t stscache_ops = {stscache_expires_of, stscache_refresh_of,
	stscache_ref_of, stscache_unref_of, STSCACHE_MIN_LEFT_S, STSCACHE_RETRY_MS,
	STSCACHE_STALE_FETCH_MS, STSCACHE_MAX};

struct stscache {
	fetchcache_t *fc;
};

stscache_t *
stscache_new(void)
{
	stscache_t *c = calloc(1, sizeof(*c));

	if (c != NULL && (c->fc = fetchcache_new(&stscache_ops)) == NULL) {
		free(c);
		c = NULL;
	}
	return c;
}

void
stscache_free(stscache_t *c)
{
	if (c == NULL)
		return;
	fetchcache_free(c->fc);
	free(c);
}

/* A string part of the key, or NULL. */
static size_t
stscache_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

void
stscache_key(const stscache_t *c, const policy_credential_t *cred,
    uint8_t key[STSCACHE_KEY_LEN])
{
	const policy_aws_t *aws = cred->aws;
	char host[AWSROLE_HOST_MAX] = "", region[SIGV4_MAX_REGION + 1] = "", dur[16];
	const char *parts[9] = {cred->name, cred->secret};
	size_t lens[9] = {strlen(cred->name), cred->secret_len}, n = 2;

	if (aws != NULL) {
		if (awsrole_endpoint(aws, host, region) != AWSROLE_OK)
			host[0] = '\0';	/* no assume_role: never fetched */
		snprintf(dur, sizeof(dur), "%u", (unsigned)aws->assume_role.duration_s);
		parts[n] = aws->access_key_id, lens[n++] = aws->access_key_id_len;
		parts[n] = aws->session_token, lens[n++] = aws->session_token_len;
		parts[n] = aws->assume_role.role_arn;
		lens[n++] = stscache_len(aws->assume_role.role_arn);
		parts[n] = aws->assume_role.external_id;
		lens[n++] = stscache_len(aws->assume_role.external_id);
		parts[n] = dur, lens[n++] = strlen(dur);
		parts[n] = aws->assume_role.session_policy;
		lens[n++] = aws->assume_role.session_policy_len;
		parts[n] = host, lens[n++] = strlen(host);
	}
	fetchcache_key(c->fc, parts, lens, n, key);
}

void
stscache_get(stscache_t *c, const uint8_t key[STSCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, stscache_look_t *out)
{
	fetchcache_look_t l;

	fetchcache_get(c->fc, key, now, now_ms, wait_seq, &l);
	out->state = l.state == FETCHCACHE_READY ? STSCACHE_READY : l.state ==
	    FETCHCACHE_WAIT ? STSCACHE_WAIT : STSCACHE_FAILED;
	out->cred = l.val;
	out->seq = l.seq;
	out->fetch = l.fetch;
	out->refresh = l.refresh;
	memcpy(out->error, l.error, sizeof(out->error));
}

void
stscache_done(stscache_t *c, const uint8_t key[STSCACHE_KEY_LEN], uint64_t seq,
    stscache_cred_t *cred, const char *error, uint64_t now_ms)
{
	fetchcache_done(c->fc, key, seq, cred, error, false, now_ms);
}

uint64_t
stscache_generation(const stscache_t *c)
{
	return fetchcache_generation(c->fc);
}

size_t
stscache_count(stscache_t *c)
{
	return fetchcache_count(c->fc);
}
