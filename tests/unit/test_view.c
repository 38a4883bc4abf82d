/* test_view.c — one request's view: a reference to each published snapshot (policy,
 * revocations, registry), released together; view_changed after a publish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "view.h"

#define NOW 1700000000

static const char policy_json[] =
    "{\"sandbox_templates\": {\"job\": {\"credentials\": []}}}";

struct fx {
	char dir[64], path[128];
	registry_t *r;
};

static policy_t *
load_policy(void)
{
	policy_errors_t errs;
	policy_t *p = policy_load_buffer("/tmp/sg-view-test.json", policy_json,
	    strlen(policy_json), &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	assert_non_null(p);
	return p;
}

static revoke_set_t *
load_revocations(const char *json)
{
	char err[256];
	revoke_set_t *rs = revoke_load_buffer("revocations.json", json, strlen(json), err,
	    sizeof(err));

	if (rs == NULL)
		fail_msg("%s", err);
	return rs;
}

static int
setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "/tmp/sg-view-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.path, sizeof(f.path), "%s/%s", f.dir, REGISTRY_JOURNAL_NAME);
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	registry_close(f->r);
	policy_shutdown();
	revoke_shutdown();
	unlink(f->path);
	rmdir(f->dir);
	return 0;
}

static void
open_registry(struct fx *f)
{
	char err[256];

	f->r = registry_open(f->dir, NULL, NOW, err, sizeof(err));
	if (f->r == NULL)
		fail_msg("%s", err);
}

static void
test_nothing_published(void **state)
{
	view_t v;

	(void)state;
	assert_int_equal(view_acquire(&v), -1);
	assert_null(v.policy);
	assert_null(v.revoked);
	assert_null(v.registry);
	assert_false(view_changed(&v));
	view_release(&v);
	view_release(&v);			/* a cleared view is fine */
}

static void
test_acquire_release_counts(void **state)
{
	struct fx *f = *state;
	policy_t *p = load_policy();
	revoke_set_t *rs = load_revocations("{\"keys\": {\"a1b2c3d4\": 1}}");
	registry_snapshot_t *reg;
	view_t v;

	policy_publish(policy_ref(p));		/* we keep p to watch its count */
	revoke_publish(rs);
	open_registry(f);
	assert_int_equal(p->refcnt, 2);
	assert_int_equal(view_acquire(&v), 0);
	assert_ptr_equal(v.policy, p);
	assert_int_equal(p->refcnt, 3);
	assert_ptr_equal(v.revoked, rs);
	assert_int_equal(revoke_count(v.revoked), 1);
	assert_non_null(v.registry);
	reg = registry_acquire();
	assert_ptr_equal(v.registry, reg);
	registry_unref(reg);
	assert_int_equal(v.policy_gen, policy_published_generation());
	assert_int_equal(v.revoked_gen, revoke_published_generation());
	assert_int_equal(v.registry_gen, registry_published_generation());
	assert_false(view_changed(&v));
	view_release(&v);
	assert_null(v.policy);
	assert_int_equal(p->refcnt, 2);
	policy_unref(p);
}

/* A view keeps what it took: a publish is seen by view_changed, not by the view. */
static void
test_changed_keeps_old(void **state)
{
	struct fx *f = *state;
	policy_t *p = load_policy(), *q = load_policy();
	registry_result_t res;
	registry_spec_t spec;
	const char *body = "{\"template\": \"job\", \"addresses\": [\"10.0.9.0/24\"]}";
	view_t v, w;

	policy_publish(policy_ref(p));
	open_registry(f);
	assert_int_equal(view_acquire(&v), 0);
	assert_null(v.revoked);
	revoke_publish(load_revocations("{}"));
	assert_true(view_changed(&v));		/* revocations moved */
	view_release(&v);

	assert_int_equal(view_acquire(&v), 0);
	assert_false(view_changed(&v));
	assert_int_equal(registry_spec_parse("sb", body, strlen(body), NOW, &spec, &res), 0);
	assert_int_equal(registry_put(f->r, p, &spec, NOW, &res), 0);
	registry_spec_free(&spec);
	assert_true(view_changed(&v));		/* the registry moved */
	assert_null(registry_find(v.registry, "sb"));	/* the view did not */
	view_release(&v);

	assert_int_equal(view_acquire(&v), 0);
	assert_non_null(registry_find(v.registry, "sb"));
	policy_publish(q);
	assert_true(view_changed(&v));		/* the policy moved */
	assert_ptr_equal(v.policy, p);		/* the view did not */
	assert_int_equal(p->refcnt, 2);		/* ours and the view's */
	assert_int_equal(view_acquire(&w), 0);
	assert_ptr_equal(w.policy, q);
	assert_int_equal(w.policy_gen, q->generation);
	view_release(&w);
	view_release(&v);
	assert_int_equal(p->refcnt, 1);
	policy_unref(p);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_nothing_published),
		T(test_acquire_release_counts),
		T(test_changed_keeps_old),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
