/* test_lineage.c — deriving a copy's links and deciding which handles came with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lineage.h"

#define NOW 1700000000

static void
test_derive_and_accept(void **state)
{
	lineage_t p = {0}, c = {0};

	(void)state;
	/* g forked into p at NOW - 50, p into c at NOW - 20 */
	assert_int_equal(lineage_derive(NULL, "g", NOW - 50, &p), LINEAGE_OK);
	assert_int_equal(lineage_derive(&p, "p", NOW - 20, &c), LINEAGE_OK);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.links[0].id, "p");
	assert_int_equal(c.links[0].at, NOW - 20);
	assert_string_equal(c.links[1].id, "g");
	assert_int_equal(c.links[1].at, NOW - 50);
	/* p's handles up to and including the fork's second; g's up to g's fork */
	assert_ptr_equal(lineage_accepts(&c, "p", NOW - 21), &c.links[0]);
	assert_ptr_equal(lineage_accepts(&c, "p", NOW - 20), &c.links[0]);
	assert_null(lineage_accepts(&c, "p", NOW - 19));
	assert_non_null(lineage_accepts(&c, "g", NOW - 50));
	assert_null(lineage_accepts(&c, "g", NOW - 49));
	assert_null(lineage_accepts(&c, "c", 0));	/* its own handles are not lineage */
	assert_null(lineage_accepts(&c, "other", NOW - 100));
	assert_null(lineage_accepts(NULL, "p", NOW - 100));
	assert_non_null(lineage_find(&c, "g"));
	assert_null(lineage_find(&c, "gg"));
	lineage_free(&p);
	lineage_free(&c);
	assert_null(c.links);
	assert_int_equal(c.n, 0);
}

static void
test_derive_caps_inherited_times(void **state)
{
	lineage_t k = {0}, q = {0};

	(void)state;
	/* k holds p's handles up to NOW; a checkpoint of k taken at NOW - 10 holds only
	 * those minted by NOW - 10 */
	assert_int_equal(lineage_derive(NULL, "p", NOW, &k), LINEAGE_OK);
	assert_int_equal(lineage_derive(&k, "k", NOW - 10, &q), LINEAGE_OK);
	assert_int_equal(q.links[1].at, NOW - 10);
	assert_null(lineage_accepts(&q, "p", NOW - 5));
	lineage_free(&k);
	lineage_free(&q);
}

static void
test_derive_each_id_once(void **state)
{
	lineage_t a = {0}, b = {0}, c = {0};

	(void)state;
	/* restored in place twice: s from s at NOW - 30, then at NOW - 10 */
	assert_int_equal(lineage_derive(NULL, "s", NOW - 30, &a), LINEAGE_OK);
	assert_int_equal(lineage_derive(&a, "s", NOW - 10, &b), LINEAGE_OK);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.links[0].at, NOW - 10);	/* the latest copy wins */
	/* a copy of f whose lineage already names s: s once, f first */
	assert_int_equal(lineage_derive(&b, "f", NOW, &c), LINEAGE_OK);
	assert_int_equal(c.n, 2);
	assert_true(lineage_equal(&c, &c));
	assert_false(lineage_equal(&b, &c));
	assert_false(lineage_equal(&b, NULL));
	assert_true(lineage_equal(NULL, &(lineage_t){0}));
	lineage_free(&a);
	lineage_free(&b);
	lineage_free(&c);
}

static void
test_depth_bound(void **state)
{
	lineage_t l = {0}, next;
	char id[16];

	(void)state;
	for (int i = 0; i < LINEAGE_MAX_DEPTH; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		assert_int_equal(lineage_derive(&l, id, NOW + i, &next), LINEAGE_OK);
		lineage_free(&l);
		l = next;
	}
	assert_int_equal(l.n, LINEAGE_MAX_DEPTH);
	assert_int_equal(lineage_derive(&l, "deeper", NOW + 100, &next), LINEAGE_E_DEPTH);
	assert_null(next.links);		/* nothing half-made */
	assert_int_equal(lineage_append(&l, "deeper", NOW), LINEAGE_E_DEPTH);
	assert_int_equal(lineage_append(&l, "s3", NOW), LINEAGE_OK);	/* known: no-op */
	assert_int_equal(l.n, LINEAGE_MAX_DEPTH);
	lineage_free(&l);
}

static void
test_invalid_and_copy(void **state)
{
	lineage_t l = {0}, c;

	(void)state;
	assert_int_equal(lineage_derive(NULL, "", NOW, &c), LINEAGE_E_INVALID);
	assert_int_equal(lineage_derive(NULL, "p", 0, &c), LINEAGE_E_INVALID);
	assert_int_equal(lineage_append(&l, "p", -5), LINEAGE_E_INVALID);
	assert_int_equal(lineage_append(&l, "p", NOW), LINEAGE_OK);
	assert_int_equal(lineage_append(&l, "g", NOW - 9), LINEAGE_OK);
	assert_int_equal(lineage_copy(&l, &c), LINEAGE_OK);
	assert_true(lineage_equal(&l, &c));
	assert_ptr_not_equal(c.links[0].id, l.links[0].id);	/* deep */
	lineage_free(&c);
	assert_int_equal(lineage_copy(NULL, &c), LINEAGE_OK);
	assert_int_equal(c.n, 0);
	lineage_free(&l);
	lineage_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derive_and_accept),
		cmocka_unit_test(test_derive_caps_inherited_times),
		cmocka_unit_test(test_derive_each_id_once),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_invalid_and_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
