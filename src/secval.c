/* secval.c — the live value of a rotating secret: immutable refcounted records. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "secmem.h"
#include "secval.h"

static void
secval_cell_ref(void *obj)
{
	(void)secval_ref(obj);
}

static void
secval_cell_unref(void *obj)
{
	secval_unref(obj);
}

const snapshot_ops_t secval_cell_ops = {secval_cell_ref, secval_cell_unref, NULL};

/* A record holding copies of v and prev (prev may be NULL). */
static secval_t *
secval_make(const char *v, size_t len, uint64_t expires_ms, const char *prev,
    size_t prev_len, uint64_t prev_until_ms)
{
	secval_t *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->refs = 1;
	if ((s->value = secmem_wipe_dup(v, len)) == NULL)
		goto fail;
	s->len = len;
	s->expires_ms = expires_ms;
	if (prev != NULL) {
		if ((s->prev = secmem_wipe_dup(prev, prev_len)) == NULL)
			goto fail;
		s->prev_len = prev_len;
		s->prev_until_ms = prev_until_ms;
	}
	return s;
fail:
	secval_unref(s);
	return NULL;
}

secval_t *
secval_new(const char *v, size_t len, uint64_t expires_ms)
{
	return secval_make(v, len, expires_ms, NULL, 0, 0);
}

secval_t *
secval_next(const secval_t *cur, const char *v, size_t len, uint64_t expires_ms,
    uint64_t prev_until_ms, bool *rotated)
{
	*rotated = false;
	if (cur == NULL)
		return secval_new(v, len, expires_ms);
	if (cur->len == len && sodium_memcmp(cur->value, v, len) == 0)
		return secval_make(v, len, expires_ms, cur->prev, cur->prev_len,
		    cur->prev_until_ms);
	*rotated = true;
	return secval_make(v, len, expires_ms, cur->value, cur->len, prev_until_ms);
}

secval_t *
secval_without_prev(const secval_t *cur)
{
	return secval_new(cur->value, cur->len, cur->expires_ms);
}

secval_t *
secval_ref(secval_t *s)
{
	if (s != NULL)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void
secval_unref(secval_t *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	secmem_wipe_free(s->value);
	secmem_wipe_free(s->prev);
	free(s);
}

bool
secval_usable(const secval_t *s, uint64_t now_ms)
{
	return s->expires_ms == 0 || now_ms < s->expires_ms;
}

const char *
secval_previous(const secval_t *s, uint64_t now_ms, size_t *len)
{
	if (s->prev == NULL || now_ms >= s->prev_until_ms)
		return NULL;
	if (len != NULL)
		*len = s->prev_len;
	return s->prev;
}

bool
secval_prev_due(const secval_t *s, uint64_t now_ms)
{
	return s->prev != NULL && now_ms >= s->prev_until_ms;
}

int
secval_trim_check(char *s, size_t *len)
{
	if (*len > 0 && s[*len - 1] == '\n')
		s[--*len] = '\0';
	if (*len > 0 && s[*len - 1] == '\r')
		s[--*len] = '\0';
	if (*len == 0)
		return -1;
	for (size_t i = 0; i < *len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return -1;
	return 0;
}

uint64_t
secval_next_run(uint64_t now_ms, bool ok, uint64_t ttl_ms, unsigned refresh_pct,
    uint64_t retry_ms, uint64_t expires_ms)
{
	uint64_t at;

	if (ok)
		return now_ms + ttl_ms * refresh_pct / 100;
	at = now_ms + retry_ms;
	if (expires_ms > now_ms && expires_ms < at)
		at = expires_ms;
	return at;
}
