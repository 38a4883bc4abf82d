/*
 * view.h — one request's view of the published state: a reference to each of the policy
 * (policy.h), the revocation set (revoke.h) and the sandbox registry (registry.h)
 * snapshots, taken together and passed explicitly to what decides the request (swap_env,
 * authz_input, sandbox_view_find, the metadata responder). Nothing that is handed a view
 * acquires a snapshot of its own.
 *
 * Ownership: view_acquire fills the caller's view_t with new references; view_release
 * drops them (every pointer taken from the view, e.g. an authz result's, must be done
 * with by then). A view is not shared between threads; the snapshots in it are
 * immutable and may be read by many.
 *
 * Consistency: each reference is to the snapshot current when it was taken. view_acquire
 * reads the three publication generations before and after taking them and tries again
 * (up to VIEW_ACQUIRE_TRIES times) when one moved, so unless publishes keep racing it,
 * the three were current together at one instant. view_changed says, with three atomic
 * loads and no lock, whether anything was published since.
 */
#ifndef SEALGATE_VIEW_H
#define SEALGATE_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "registry.h"
#include "revoke.h"
#include "util.h"

/* Publishes are rare (reloads, admin mutations): a few tries all but always succeed,
 * and a bound keeps a reader from spinning behind a publishing storm. */
#define VIEW_ACQUIRE_TRIES	4

typedef struct view {
	policy_t *policy;		/* NULL before the first policy_publish */
	revoke_set_t *revoked;		/* NULL: no revocation set published */
	registry_snapshot_t *registry;	/* NULL: no registry open */
	/* publication generations (*_published_generation) the references were taken at */
	uint64_t policy_gen, revoked_gen, registry_gen;
} view_t;

/*
 * Take a reference to each published snapshot. v is always filled (release it with
 * view_release); 0, or -1 when no policy is published (v->policy NULL).
 */
int view_acquire(view_t *v) SG_NONNULL SG_WUR;
/* Drop the view's references and clear it. A cleared (all-zero) view is fine. */
void view_release(view_t *v) SG_NONNULL;
/* Has any of the three been published again since v was acquired? Lock-free. */
bool view_changed(const view_t *v) SG_NONNULL;

#endif
