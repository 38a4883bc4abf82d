/*
 * secmem.h — memory for secrets: every buffer that holds a credential, a token, a key or
 * bytes derived from one comes from here and is zeroed before it is given back.
 *
 * Three kinds, by lifetime:
 *  - wipe memory (secmem_wipe_*): short-lived copies (a request's injected header, a
 *    scrubber's needle, a decoder's window). Ordinary heap memory, zeroed when freed.
 *    sodium_malloc's guard pages and mlock cost about seven syscalls a call — too much
 *    per request — and the process refuses core dumps anyway (serve: RLIMIT_CORE 0, not
 *    dumpable). secmem_wipe_free only what secmem_wipe_* returned; NULL is fine.
 *  - guarded memory (secmem_guarded_*): long-lived single secrets (keys, tokens, their
 *    digests). sodium_malloc: guard pages, mlock'd, kept out of core dumps, zeroed by
 *    secmem_guarded_free; NULL is fine.
 *  - a secret arena (secmem_arena_*): many long-lived secrets (a policy snapshot's) in a
 *    few guarded regions. One sodium_malloc costs ~4 memory mappings; the arena costs
 *    that per region, and regions double in size, so mappings grow with log(bytes), not
 *    with the number of secrets. Allocations live until secmem_arena_free, which zeroes
 *    and unmaps every region. Not thread-safe while being filled; read-only use
 *    afterwards is.
 *
 * Allocation failures return NULL with errno set. Threads: wipe and guarded memory may be
 * used from any thread; an arena by one thread at a time while it is filled. Pure core:
 * libsodium only.
 */
#ifndef SEALGATE_SECMEM_H
#define SEALGATE_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* len bytes of wipe memory (uninitialised). */
void *secmem_wipe_alloc(size_t len) SG_WUR;
/* A NUL-terminated wipe-memory copy of s[0..len). */
char *secmem_wipe_dup(const char *s, size_t len) SG_WUR;
/* The len a wipe allocation was made with (p not NULL). */
size_t secmem_wipe_size(const void *p) SG_NONNULL;
/* Zero all of it, then free. */
void secmem_wipe_free(void *p);

/* len bytes of guarded memory (uninitialised). */
void *secmem_guarded_alloc(size_t len) SG_WUR;
/* A NUL-terminated guarded copy of s[0..len). */
char *secmem_guarded_dup(const char *s, size_t len) SG_WUR;
/* Zero, then unmap. */
void secmem_guarded_free(void *p);

/*
 * A growing text in wipe memory: start with {0}; every add keeps it NUL-terminated; an
 * allocation failure sets failed and makes later adds no-ops (check once at the end).
 * secmem_buf_add's signature fits a scrub emit callback (arg is the buffer).
 */
typedef struct secmem_buf {
	char *p;
	size_t len, cap;
	bool failed;
} secmem_buf_t;

void secmem_buf_add(void *b, const void *data, size_t len);
/* secmem_buf_add of a C string. */
void secmem_buf_puts(secmem_buf_t *b, const char *s) SG_NONNULL;
/* Zero and free the text; the buffer is {0} again. */
void secmem_buf_free(secmem_buf_t *b) SG_NONNULL;

typedef struct secmem_arena secmem_arena_t;

secmem_arena_t *secmem_arena_new(void) SG_WUR;
/* len + 1 bytes (the caller NUL-terminates). */
char *secmem_arena_alloc(secmem_arena_t *a, size_t len) SG_NONNULL SG_WUR;
/* A NUL-terminated copy of s[0..len). */
char *secmem_arena_dup(secmem_arena_t *a, const char *s, size_t len) SG_NONNULL SG_WUR;
/* Zero a secret that is not wanted after all (its space is reused if it was the last). */
void secmem_arena_drop(secmem_arena_t *a, char *p, size_t len) SG_NONNULL;
/* How many regions (sodium_malloc calls) hold the arena's secrets. */
size_t secmem_arena_regions(const secmem_arena_t *a) SG_NONNULL;
/* Zero and unmap every region; NULL is fine. */
void secmem_arena_free(secmem_arena_t *a);

#endif
