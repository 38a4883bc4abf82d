/* secmem.c — wipe memory, guarded (sodium) memory and the secret arena. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "secmem.h"

/* Header before each wipe allocation: its size, kept 16-byte aligned. */
#define SECMEM_WIPE_HDR		16
/* libsodium puts a canary before each block, inside its first page. */
#define SECMEM_ARENA_CANARY	16

/* Copy s[0..len) into p (len + 1 bytes) and NUL-terminate; p may be NULL. */
static char *
secmem_copy(char *p, const char *s, size_t len)
{
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* --- wipe memory ---------------------------------------------------------------------- */

void *
secmem_wipe_alloc(size_t len)
{
	unsigned char *p;

	if (len > SIZE_MAX - SECMEM_WIPE_HDR || (p = malloc(SECMEM_WIPE_HDR + len)) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(p, &len, sizeof(len));
	return p + SECMEM_WIPE_HDR;
}

char *
secmem_wipe_dup(const char *s, size_t len)
{
	return secmem_copy(len < SIZE_MAX ? secmem_wipe_alloc(len + 1) : NULL, s, len);
}

size_t
secmem_wipe_size(const void *p)
{
	size_t len;

	memcpy(&len, (const unsigned char *)p - SECMEM_WIPE_HDR, sizeof(len));
	return len;
}

void
secmem_wipe_free(void *p)
{
	unsigned char *base;

	if (p == NULL)
		return;
	base = (unsigned char *)p - SECMEM_WIPE_HDR;
	sodium_memzero(base, SECMEM_WIPE_HDR + secmem_wipe_size(p));
	free(base);
}

/* --- a growing text in wipe memory ---------------------------------------------------- */

void
secmem_buf_add(void *arg, const void *data, size_t len)
{
	secmem_buf_t *b = arg;
	char *np;
	size_t cap;

	if (b->failed || (len == 0 && b->p != NULL))
		return;
	if (len > SIZE_MAX / 2 - b->len - 1) {
		b->failed = true;
		return;
	}
	if (b->len + len + 1 > b->cap) {
		cap = (b->len + len + 1) * 2;
		if ((np = secmem_wipe_alloc(cap)) == NULL) {
			b->failed = true;
			return;
		}
		if (b->p != NULL)
			memcpy(np, b->p, b->len);
		secmem_wipe_free(b->p);
		b->p = np;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
secmem_buf_puts(secmem_buf_t *b, const char *s)
{
	secmem_buf_add(b, s, strlen(s));
}

void
secmem_buf_free(secmem_buf_t *b)
{
	secmem_wipe_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

/* --- guarded memory ------------------------------------------------------------------- */

void *
secmem_guarded_alloc(size_t len)
{
	return sodium_malloc(len);
}

char *
secmem_guarded_dup(const char *s, size_t len)
{
	return secmem_copy(len < SIZE_MAX ? secmem_guarded_alloc(len + 1) : NULL, s, len);
}

void
secmem_guarded_free(void *p)
{
	if (p != NULL)
		sodium_free(p);	/* zeroes before unmapping */
}

/* --- secret arena --------------------------------------------------------------------- */

/* One sodium_malloc'd block; secrets are carved from it front to back. */
struct secmem_region {
	struct secmem_region *next;	/* older regions */
	char *base;
	size_t cap, used;
};

struct secmem_arena {
	struct secmem_region *head;	/* the newest: allocations come from it */
	size_t nregions;
	size_t next_pages;		/* size of the next region, in pages */
};

secmem_arena_t *
secmem_arena_new(void)
{
	secmem_arena_t *a = calloc(1, sizeof(*a));

	if (a != NULL)
		a->next_pages = 1;
	return a;
}

/* A region of at least need bytes and a->next_pages pages (which then doubles). */
static struct secmem_region *
secmem_region_new(secmem_arena_t *a, size_t need)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (need + SECMEM_ARENA_CANARY + page - 1) / page;
	struct secmem_region *r;

	if (pages < a->next_pages)
		pages = a->next_pages;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->cap = pages * page - SECMEM_ARENA_CANARY;	/* the block fills its pages */
	if ((r->base = sodium_malloc(r->cap)) == NULL) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->next = a->head;
	a->head = r;
	a->nregions++;
	a->next_pages = pages * 2;
	return r;
}

char *
secmem_arena_alloc(secmem_arena_t *a, size_t len)
{
	struct secmem_region *r = a->head;
	char *p;

	if (len > SIZE_MAX / 4) {
		errno = ENOMEM;
		return NULL;
	}
	if (r == NULL || r->cap - r->used < len + 1)
		r = secmem_region_new(a, len + 1);
	if (r == NULL)
		return NULL;
	p = r->base + r->used;
	r->used += len + 1;
	return p;
}

char *
secmem_arena_dup(secmem_arena_t *a, const char *s, size_t len)
{
	return secmem_copy(secmem_arena_alloc(a, len), s, len);
}

void
secmem_arena_drop(secmem_arena_t *a, char *p, size_t len)
{
	struct secmem_region *r = a->head;

	sodium_memzero(p, len + 1);
	if (r != NULL && p + len + 1 == r->base + r->used && p >= r->base)
		r->used -= len + 1;
}

size_t
secmem_arena_regions(const secmem_arena_t *a)
{
	return a->nregions;
}

void
secmem_arena_free(secmem_arena_t *a)
{
	struct secmem_region *r, *next;

	if (a == NULL)
		return;
	for (r = a->head; r != NULL; r = next) {
		next = r->next;
		sodium_free(r->base);	/* zeroes the whole block before unmapping */
		free(r);
	}
	free(a);
}
