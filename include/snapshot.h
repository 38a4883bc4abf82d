/*
 * snapshot.h — a publication cell for an immutable, refcounted object: the one way
 * policy (policy.c), revocations (revoke.c) and the sandbox registry (registry.c) hand
 * their current version to the worker threads. Pure core: no sockets, no clocks.
 *
 * The object stays the owning module's: it keeps its own reference count and supplies
 * ref/unref through snapshot_ops_t (unref frees at zero). The cell holds one reference
 * to the current object, or none (NULL).
 *
 * Who holds what:
 *   snapshot_publish(c, obj)  takes over the caller's reference to obj (obj may be NULL:
 *                             unpublish), bumps the cell's generation, then drops the
 *                             cell's reference to the old object. The old object lives
 *                             on as long as a reader still holds a reference to it, and
 *                             not a moment longer: there is no grace period, no
 *                             retention; whoever keeps a pointer into an object keeps a
 *                             reference.
 *   snapshot_acquire(c)       a new reference to the current object (the caller drops
 *                             it with the owner's unref), or NULL when none is published.
 *   snapshot_generation(c)    how many publishes the cell has seen: one atomic load, no
 *                             lock. Readers compare it with the value they saw when they
 *                             acquired, to learn cheaply whether anything changed.
 *
 * Threads: every function may be called from any thread. The pointer swap and the
 * reference taken by acquire happen under the cell's mutex, so a reader never takes a
 * reference to an object whose last reference is being dropped. A generation G read
 * before snapshot_acquire means the object acquired is the one published at G or a
 * newer one. ops->published runs under the mutex, before readers can see the object.
 */
#ifndef SEALGATE_SNAPSHOT_H
#define SEALGATE_SNAPSHOT_H

#include <pthread.h>
#include <stdint.h>

#include "util.h"

typedef struct snapshot_ops {
	void (*ref)(void *obj);		/* add a reference (obj is never NULL) */
	void (*unref)(void *obj);	/* drop one; the last frees (obj is never NULL) */
	/*
	 * Optional: obj (NULL when unpublishing) becomes current as generation gen. Called
	 * under the cell's mutex before any reader can acquire obj: the place to stamp the
	 * generation into the object, or to mirror a field of it into an atomic.
	 */
	void (*published)(void *obj, uint64_t gen);
} snapshot_ops_t;

typedef struct snapshot_cell {
	pthread_mutex_t mu;		/* the pointer swap and acquire's reference */
	void *cur;			/* the cell's reference, or NULL */
	uint64_t generation;		/* publishes so far (atomic; written under mu) */
	const snapshot_ops_t *ops;
} snapshot_cell_t;

/* A cell with nothing published, for static storage: SNAPSHOT_CELL_INIT(&my_ops). */
#define SNAPSHOT_CELL_INIT(opsp)	{ PTHREAD_MUTEX_INITIALIZER, NULL, 0, (opsp) }

/* The same for a cell in dynamic storage; snapshot_cell_fini drops what it holds. */
void snapshot_cell_init(snapshot_cell_t *c, const snapshot_ops_t *ops) SG_NONNULL;
void snapshot_cell_fini(snapshot_cell_t *c) SG_NONNULL;

/* Make obj (the caller's reference, or NULL) current. Returns the new generation. */
uint64_t snapshot_publish(snapshot_cell_t *c, void *obj) __attribute__((nonnull(1)));
/* A new reference to the current object, or NULL. */
void *snapshot_acquire(snapshot_cell_t *c) SG_NONNULL;
/* Publishes so far (0: never published). Lock-free. */
uint64_t snapshot_generation(const snapshot_cell_t *c) SG_NONNULL;

#endif
