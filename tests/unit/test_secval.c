/* test_secval.c — live secret records: rotation keeps the replaced value for the grace
 * period only, expiry, readers keep the record they acquired, trimming, the exec
 * schedule. Time is passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "secval.h"

static void
test_first_value(void **state)
{
	secval_t *s = secval_new("alpha-1", 7, 0);
	size_t n = 99;

	(void)state;
	assert_non_null(s);
	assert_string_equal(s->value, "alpha-1");
	assert_int_equal(s->len, 7);
	assert_true(secval_usable(s, 0));
	assert_true(secval_usable(s, UINT64_MAX - 1));
	assert_null(secval_previous(s, 0, &n));
	assert_int_equal(n, 99);
	assert_false(secval_prev_due(s, 1000));
	secval_unref(s);
}

static void
test_rotation_grace(void **state)
{
	secval_t *a = secval_new("old-value", 9, 0), *b, *c;
	bool rotated = false;
	size_t n = 0;

	(void)state;
	b = secval_next(a, "new-value-2", 11, 0, 5000, &rotated);
	assert_non_null(b);
	assert_true(rotated);
	assert_string_equal(b->value, "new-value-2");
	/* the old value is scrubbed before 5000 ms, not from then on */
	assert_string_equal(secval_previous(b, 4999, &n), "old-value");
	assert_int_equal(n, 9);
	assert_false(secval_prev_due(b, 4999));
	assert_null(secval_previous(b, 5000, &n));
	assert_true(secval_prev_due(b, 5000));
	/* the grace period over: a record without it */
	c = secval_without_prev(b);
	assert_non_null(c);
	assert_null(c->prev);
	assert_string_equal(c->value, "new-value-2");
	assert_false(secval_prev_due(c, 10000));
	/* a reader of a keeps its value after the rotation */
	assert_string_equal(a->value, "old-value");
	secval_unref(a);
	secval_unref(b);
	secval_unref(c);
}

static void
test_same_value_keeps_prev(void **state)
{
	secval_t *a = secval_new("v1-secret", 9, 1000), *b, *c;
	bool rotated = true;

	(void)state;
	b = secval_next(a, "v2-secret", 9, 2000, 3000, &rotated);
	assert_true(rotated);
	/* the same value again (an exec refresh): new expiry, the grace period goes on */
	c = secval_next(b, "v2-secret", 9, 4000, 9999, &rotated);
	assert_false(rotated);
	assert_int_equal(c->expires_ms, 4000);
	assert_string_equal(secval_previous(c, 2999, NULL), "v1-secret");
	assert_int_equal(c->prev_until_ms, 3000);
	secval_unref(a);
	secval_unref(b);
	secval_unref(c);
}

static void
test_first_from_null(void **state)
{
	bool rotated = true;
	secval_t *a = secval_next(NULL, "first-v", 7, 100, 500, &rotated);

	(void)state;
	assert_false(rotated);
	assert_null(a->prev);
	assert_true(secval_usable(a, 99));
	assert_false(secval_usable(a, 100));
	secval_unref(a);
}

static void
test_refcount_through_cell(void **state)
{
	snapshot_cell_t cell;
	secval_t *a = secval_new("cell-one", 8, 0), *b, *got;
	bool rotated;

	(void)state;
	snapshot_cell_init(&cell, &secval_cell_ops);
	(void)snapshot_publish(&cell, a);
	got = snapshot_acquire(&cell);
	assert_ptr_equal(got, a);
	assert_int_equal(a->refs, 2);
	b = secval_next(got, "cell-two", 8, 0, 10, &rotated);
	(void)snapshot_publish(&cell, b);
	/* the cell let go of a; the reader still holds it */
	assert_int_equal(a->refs, 1);
	assert_string_equal(got->value, "cell-one");
	secval_unref(got);
	got = snapshot_acquire(&cell);
	assert_ptr_equal(got, b);
	secval_unref(got);
	snapshot_cell_fini(&cell);
}

static void
test_trim_check(void **state)
{
	char a[] = "tok\n", b[] = "tok\r\n", c[] = "\n", d[] = "a\nb\n", e[] = "x\0y";
	size_t n;

	(void)state;
	n = 4;
	assert_int_equal(secval_trim_check(a, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(a, "tok");
	n = 5;
	assert_int_equal(secval_trim_check(b, &n), 0);
	assert_int_equal(n, 3);
	n = 1;
	assert_int_equal(secval_trim_check(c, &n), -1);
	n = 4;
	assert_int_equal(secval_trim_check(d, &n), -1);
	n = 3;
	assert_int_equal(secval_trim_check(e, &n), -1);
}

static void
test_next_run(void **state)
{
	(void)state;
	/* a good run: refresh at 75 % of the ttl */
	assert_int_equal(secval_next_run(1000, true, 4000, 75, 500, 0), 4000);
	/* a failure: retry soon */
	assert_int_equal(secval_next_run(1000, false, 4000, 75, 500, 9000), 1500);
	/* ... but no later than the last good value's expiry */
	assert_int_equal(secval_next_run(1000, false, 4000, 75, 500, 1200), 1200);
	/* already expired: the retry interval */
	assert_int_equal(secval_next_run(1000, false, 4000, 75, 500, 900), 1500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_value),
		cmocka_unit_test(test_rotation_grace),
		cmocka_unit_test(test_same_value_keeps_prev),
		cmocka_unit_test(test_first_from_null),
		cmocka_unit_test(test_refcount_through_cell),
		cmocka_unit_test(test_trim_check),
		cmocka_unit_test(test_next_run),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
