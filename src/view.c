/* view.c — one reference to each published snapshot, taken together. */
#include <string.h>

#include "view.h"

static void
view_read_generations(uint64_t gen[3])
{
	gen[0] = policy_published_generation();
	gen[1] = revoke_published_generation();
	gen[2] = registry_published_generation();
}

int
view_acquire(view_t *v)
{
	uint64_t before[3], after[3];

	memset(v, 0, sizeof(*v));
	for (int i = 0; i < VIEW_ACQUIRE_TRIES; i++) {
		view_release(v);
		view_read_generations(before);
		v->policy = policy_acquire();
		v->revoked = revoke_acquire();
		v->registry = registry_acquire();
		view_read_generations(after);
		if (memcmp(before, after, sizeof(before)) == 0)
			break;
	}
	/* the generations the references are known to be at least as new as */
	v->policy_gen = before[0];
	v->revoked_gen = before[1];
	v->registry_gen = before[2];
	return v->policy != NULL ? 0 : -1;
}

void
view_release(view_t *v)
{
	policy_unref(v->policy);
	revoke_unref(v->revoked);
	registry_unref(v->registry);
	memset(v, 0, sizeof(*v));
}

bool
view_changed(const view_t *v)
{
	uint64_t now[3];

	view_read_generations(now);
	return now[0] != v->policy_gen || now[1] != v->revoked_gen ||
	    now[2] != v->registry_gen;
}
