/* snapshot.c — publish / acquire / generation for immutable refcounted objects. */
#include <stddef.h>

#include "snapshot.h"

void
snapshot_cell_init(snapshot_cell_t *c, const snapshot_ops_t *ops)
{
	pthread_mutex_init(&c->mu, NULL);
	c->cur = NULL;
	c->generation = 0;
	c->ops = ops;
}

void
snapshot_cell_fini(snapshot_cell_t *c)
{
	(void)snapshot_publish(c, NULL);
	pthread_mutex_destroy(&c->mu);
}

uint64_t
snapshot_publish(snapshot_cell_t *c, void *obj)
{
	uint64_t gen;
	void *old;

	pthread_mutex_lock(&c->mu);
	old = c->cur;
	gen = c->generation + 1;
	if (c->ops->published != NULL)
		c->ops->published(obj, gen);
	c->cur = obj;
	__atomic_store_n(&c->generation, gen, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->mu);
	/* outside the lock: the last reference may free a large object */
	if (old != NULL)
		c->ops->unref(old);
	return gen;
}

void *
snapshot_acquire(snapshot_cell_t *c)
{
	void *obj;

	pthread_mutex_lock(&c->mu);
	obj = c->cur;
	if (obj != NULL)
		c->ops->ref(obj);
	pthread_mutex_unlock(&c->mu);
	return obj;
}

uint64_t
snapshot_generation(const snapshot_cell_t *c)
{
	return __atomic_load_n(&c->generation, __ATOMIC_ACQUIRE);
}
