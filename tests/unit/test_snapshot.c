/* test_snapshot.c — the publication cell: publish, acquire, generation, who frees;
 * readers racing a publisher on threads for a bounded number of publishes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

/* Readers racing one publisher, and how many objects it publishes. */
#define T_READERS	3
#define T_PUBLISHES	2000
/* An object is whole when check == value * T_MUL (a torn or freed one is not). */
#define T_MUL		7919u

struct obj {
	int refcnt;			/* atomic */
	uint64_t gen;			/* stamped by the cell's published hook */
	uint64_t value, check;
};

static int live;			/* objects not freed yet (atomic) */
static int published_null;		/* published hook calls with NULL */

static struct obj *
obj_new(uint64_t value)
{
	struct obj *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	o->refcnt = 1;
	o->value = value;
	o->check = value * T_MUL;
	__atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
	return o;
}

static void
obj_ref(void *p)
{
	__atomic_add_fetch(&((struct obj *)p)->refcnt, 1, __ATOMIC_RELAXED);
}

static void
obj_unref(void *p)
{
	struct obj *o = p;

	if (__atomic_sub_fetch(&o->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
		memset(o, 0, sizeof(*o));	/* a reader of a freed object sees check 0 */
		free(o);
		__atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
	}
}

static void
obj_published(void *p, uint64_t gen)
{
	if (p != NULL)
		((struct obj *)p)->gen = gen;
	else
		published_null++;
}

static const snapshot_ops_t obj_ops = {obj_ref, obj_unref, obj_published};
static const snapshot_ops_t obj_ops_plain = {obj_ref, obj_unref, NULL};

static int
setup(void **state)
{
	static snapshot_cell_t cell;

	live = 0;
	published_null = 0;
	snapshot_cell_init(&cell, &obj_ops);
	*state = &cell;
	return 0;
}

static int
teardown(void **state)
{
	snapshot_cell_fini(*state);
	return live == 0 ? 0 : -1;
}

static void
test_empty(void **state)
{
	snapshot_cell_t *c = *state;

	assert_int_equal(snapshot_generation(c), 0);
	assert_null(snapshot_acquire(c));
	assert_int_equal(snapshot_publish(c, NULL), 1);	/* unpublishing counts */
	assert_int_equal(published_null, 1);
	assert_int_equal(snapshot_generation(c), 1);
	assert_null(snapshot_acquire(c));
}

static void
test_publish_acquire(void **state)
{
	snapshot_cell_t *c = *state;
	struct obj *a = obj_new(1), *got;

	assert_int_equal(snapshot_publish(c, a), 1);	/* takes over our reference */
	assert_int_equal(a->refcnt, 1);
	assert_int_equal(a->gen, 1);
	assert_int_equal(snapshot_generation(c), 1);
	got = snapshot_acquire(c);
	assert_ptr_equal(got, a);
	assert_int_equal(a->refcnt, 2);
	got = snapshot_acquire(c);
	assert_int_equal(a->refcnt, 3);
	obj_unref(got);
	obj_unref(got);
	assert_int_equal(a->refcnt, 1);			/* the cell's */
	assert_int_equal(snapshot_generation(c), 1);	/* acquiring changes nothing */
	assert_int_equal(live, 1);
}

static void
test_reader_keeps_old(void **state)
{
	snapshot_cell_t *c = *state;
	struct obj *a = obj_new(1), *b = obj_new(2), *old, *cur;

	(void)snapshot_publish(c, a);
	old = snapshot_acquire(c);
	assert_int_equal(snapshot_publish(c, b), 2);
	assert_int_equal(b->gen, 2);
	assert_int_equal(a->refcnt, 1);			/* the reader's alone */
	assert_int_equal(live, 2);
	assert_int_equal(old->check, old->value * T_MUL);	/* still whole */
	assert_int_equal(old->gen, 1);
	cur = snapshot_acquire(c);
	assert_ptr_equal(cur, b);
	obj_unref(old);					/* the last reference frees a */
	assert_int_equal(live, 1);
	obj_unref(cur);
	assert_int_equal(b->refcnt, 1);
}

static void
test_last_unref_frees(void **state)
{
	snapshot_cell_t *c = *state;
	struct obj *a = obj_new(1), *held;

	(void)snapshot_publish(c, a);
	(void)snapshot_publish(c, NULL);		/* nobody holds a: freed now */
	assert_int_equal(live, 0);
	assert_null(snapshot_acquire(c));
	a = obj_new(2);
	(void)snapshot_publish(c, a);
	held = snapshot_acquire(c);
	(void)snapshot_publish(c, NULL);		/* the reader keeps a */
	assert_int_equal(live, 1);
	assert_int_equal(held->refcnt, 1);
	obj_unref(held);
	assert_int_equal(live, 0);
	assert_int_equal(snapshot_generation(c), 4);
}

static void
test_publish_current_again(void **state)
{
	snapshot_cell_t *c = *state;
	struct obj *a = obj_new(1);

	(void)snapshot_publish(c, a);
	obj_ref(a);					/* publish takes a reference */
	assert_int_equal(snapshot_publish(c, a), 2);
	assert_int_equal(a->refcnt, 1);
	assert_int_equal(a->gen, 2);
	assert_int_equal(live, 1);
}

/* A static cell and no published hook. */
static void
test_static_cell(void **state)
{
	static snapshot_cell_t sc = SNAPSHOT_CELL_INIT(&obj_ops_plain);
	struct obj *a = obj_new(5), *got;

	(void)state;
	assert_null(snapshot_acquire(&sc));
	assert_int_equal(snapshot_publish(&sc, a), 1);
	assert_int_equal(a->gen, 0);			/* nobody stamps it */
	got = snapshot_acquire(&sc);
	assert_ptr_equal(got, a);
	obj_unref(got);
	assert_int_equal(snapshot_publish(&sc, NULL), 2);
	assert_int_equal(live, 0);
}

/* --- readers racing a publisher ----------------------------------------------------- */

struct race {
	snapshot_cell_t *cell;
	bool done;			/* the publisher finished (atomic) */
	int bad;			/* broken invariants seen by readers (atomic) */
	int reads;			/* acquires made (atomic) */
};

/*
 * Every acquire gives a whole object at least as new as the generation read before it,
 * never older than one acquired before, and never newer than the generation after it.
 */
static void *
race_reader(void *arg)
{
	struct race *r = arg;
	uint64_t last = 0;

	do {
		uint64_t before = snapshot_generation(r->cell);
		struct obj *o = snapshot_acquire(r->cell);
		uint64_t after = snapshot_generation(r->cell);

		if (o == NULL || o->check != o->value * T_MUL || o->gen < before ||
		    o->gen > after || o->gen < last || o->value != o->gen)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		if (o != NULL) {
			last = o->gen;
			obj_unref(o);
		}
		__atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
	} while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE));
	return NULL;
}

static void
test_threads(void **state)
{
	struct race r = {.cell = *state};
	pthread_t th[T_READERS];

	(void)snapshot_publish(r.cell, obj_new(1));	/* readers never see NULL */
	for (int i = 0; i < T_READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_reader, &r), 0);
	/* object value v is published as generation v (the cell counts from 1) */
	for (uint64_t v = 2; v <= T_PUBLISHES; v++)
		assert_int_equal(snapshot_publish(r.cell, obj_new(v)), v);
	__atomic_store_n(&r.done, true, __ATOMIC_RELEASE);
	for (int i = 0; i < T_READERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(r.bad, 0);
	assert_true(r.reads >= T_READERS);
	assert_int_equal(live, 1);			/* only the published one is left */
	assert_int_equal(snapshot_generation(r.cell), T_PUBLISHES);
	(void)snapshot_publish(r.cell, NULL);
	assert_int_equal(live, 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_empty),
		T(test_publish_acquire),
		T(test_reader_keeps_old),
		T(test_last_unref_frees),
		T(test_publish_current_again),
		cmocka_unit_test(test_static_cell),
		T(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
