/*
 * test_mainq.c — jobs handed to the main loop: pushed from another thread they run on
 * the loop in order, never inside mainq_push; a report runs once after them; jobs never
 * run are taken back at shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "mainq.h"

struct job {
	mainq_job_t q;
	int id;
};

struct seen {
	int ran[8], nran, reports;
	pthread_t loop_thread;
	int off_loop;
};

static void
run_cb(mainq_job_t *j, void *arg)
{
	struct seen *s = arg;

	if (!pthread_equal(pthread_self(), s->loop_thread))
		s->off_loop++;
	s->ran[s->nran++] = ((struct job *)j)->id;
}

static void
report_cb(void *arg)
{
	((struct seen *)arg)->reports++;
}

struct pusher {
	mainq_t *q;
	struct job *jobs;
};

static void *
push_thread(void *arg)
{
	struct pusher *p = arg;

	for (int i = 0; i < 3; i++)
		mainq_push(p->q, &p->jobs[i].q);
	mainq_report(p->q);
	return NULL;
}

static void
test_jobs_run_on_the_loop(void **state)
{
	struct event_base *base = event_base_new();
	struct seen s = {.loop_thread = pthread_self()};
	mainq_t *q = mainq_new(base, run_cb, report_cb, &s);
	struct job jobs[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
	struct pusher p = {q, jobs};
	pthread_t t;

	(void)state;
	assert_non_null(q);
	assert_int_equal(pthread_create(&t, NULL, push_thread, &p), 0);
	pthread_join(t, NULL);
	assert_int_equal(s.nran, 0);		/* nothing runs inside mainq_push */
	assert_int_equal(mainq_queued(q), 3);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.nran, 3);
	assert_int_equal(s.ran[0], 1);
	assert_int_equal(s.ran[2], 3);
	assert_int_equal(s.off_loop, 0);
	assert_int_equal(s.reports, 1);
	assert_int_equal(mainq_queued(q), 0);
	mainq_free(q);
	event_base_free(base);
}

static void
test_take_at_shutdown(void **state)
{
	struct event_base *base = event_base_new();
	struct seen s = {.loop_thread = pthread_self()};
	mainq_t *q = mainq_new(base, run_cb, report_cb, &s);
	struct job a = {.id = 7}, b = {.id = 8};

	(void)state;
	mainq_push(q, &a.q);
	mainq_push(q, &b.q);
	assert_ptr_equal(mainq_take(q), &a.q);
	assert_ptr_equal(mainq_take(q), &b.q);
	assert_null(mainq_take(q));
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.nran, 0);
	assert_int_equal(s.reports, 0);
	mainq_free(q);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_run_on_the_loop),
		cmocka_unit_test(test_take_at_shutdown),
	};

	if (evthread_use_pthreads() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
