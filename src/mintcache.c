/* mintcache.c — minted tokens per (credential, narrowing): their refresh rule, on fetchcache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fetchcache.h"
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

/* --- the cache: a fetchcache of tokens ------------------------------------------------- */

static int64_t
mintcache_expires_of(const void *v)
{
	return ((const mintcache_tok_t *)v)->expires_at;
}

static int64_t
mintcache_refresh_of(const void *v)
{
	return ((const mintcache_tok_t *)v)->refresh_at;
}

static void *
mintcache_ref_of(void *v)
{
	return mintcache_tok_ref(v);
}

static void
mintcache_unref_of(void *v)
{
	mintcache_tok_unref(v);
}

static const fetchcache_ops_t mintcache_ops = {mintcache_expires_of, mintcache_refresh_of,
	mintcache_ref_of, mintcache_unref_of, MINTCACHE_MIN_LEFT_S, MINTCACHE_RETRY_MS,
	MINTCACHE_STALE_FETCH_MS, MINTCACHE_MAX};

struct mintcache {
	fetchcache_t *fc;
};

mintcache_t *
mintcache_new(void)
{
	mintcache_t *c = calloc(1, sizeof(*c));

	if (c != NULL && (c->fc = fetchcache_new(&mintcache_ops)) == NULL) {
		free(c);
		c = NULL;
	}
	return c;
}

void
mintcache_free(mintcache_t *c)
{
	if (c == NULL)
		return;
	fetchcache_free(c->fc);
	free(c);
}

void
mintcache_key(const mintcache_t *c, const char *const *parts, const size_t *lens, size_t n,
    uint8_t key[MINTCACHE_KEY_LEN])
{
	fetchcache_key(c->fc, parts, lens, n, key);
}

void
mintcache_get(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN], int64_t now,
    uint64_t now_ms, uint64_t wait_seq, mintcache_look_t *out)
{
	fetchcache_look_t l;

	fetchcache_get(c->fc, key, now, now_ms, wait_seq, &l);
	out->state = l.state == FETCHCACHE_READY ? MINTCACHE_READY : l.state ==
	    FETCHCACHE_WAIT ? MINTCACHE_WAIT : MINTCACHE_FAILED;
	out->tok = l.val;
	out->seq = l.seq;
	out->fetch = l.fetch;
	out->refresh = l.refresh;
	memcpy(out->error, l.error, sizeof(out->error));
}

void
mintcache_done(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN], uint64_t seq,
    mintcache_tok_t *tok, const char *error, bool terminal, uint64_t now_ms)
{
	fetchcache_done(c->fc, key, seq, tok, error, terminal, now_ms);
}

bool
mintcache_invalidate(mintcache_t *c, const uint8_t key[MINTCACHE_KEY_LEN],
    const mintcache_tok_t *tok)
{
	return fetchcache_invalidate(c->fc, key, tok);
}

uint64_t
mintcache_generation(const mintcache_t *c)
{
	return fetchcache_generation(c->fc);
}

size_t
mintcache_count(mintcache_t *c)
{
	return fetchcache_count(c->fc);
}
