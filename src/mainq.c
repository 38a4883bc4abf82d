/* mainq.c — a job queue from any thread to the main loop (a mutex and event_active). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "mainq.h"

TAILQ_HEAD(mainq_list, mainq_job);

struct mainq {
	struct event *wake;
	mainq_run_fn run;
	mainq_report_fn report;
	void *arg;
	pthread_mutex_t mu;
	struct mainq_list queued;	/* under mu */
	bool reported;			/* under mu */
};

static mainq_job_t *
mainq_pop(mainq_t *q)
{
	mainq_job_t *j;

	pthread_mutex_lock(&q->mu);
	if ((j = TAILQ_FIRST(&q->queued)) != NULL)
		TAILQ_REMOVE(&q->queued, j, next);
	pthread_mutex_unlock(&q->mu);
	return j;
}

static void
mainq_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	mainq_t *q = arg;
	mainq_job_t *j;
	bool report;

	(void)fd;
	(void)what;
	while ((j = mainq_pop(q)) != NULL)
		q->run(j, q->arg);
	pthread_mutex_lock(&q->mu);
	report = q->reported;
	q->reported = false;
	pthread_mutex_unlock(&q->mu);
	if (report)
		q->report(q->arg);
}

mainq_t *
mainq_new(struct event_base *base, mainq_run_fn run, mainq_report_fn report, void *arg)
{
	mainq_t *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->run = run;
	q->report = report;
	q->arg = arg;
	pthread_mutex_init(&q->mu, NULL);
	TAILQ_INIT(&q->queued);
	if ((q->wake = event_new(base, -1, 0, mainq_wake_cb, q)) == NULL) {
		mainq_free(q);
		return NULL;
	}
	return q;
}

void
mainq_push(mainq_t *q, mainq_job_t *job)
{
	pthread_mutex_lock(&q->mu);
	TAILQ_INSERT_TAIL(&q->queued, job, next);
	pthread_mutex_unlock(&q->mu);
	event_active(q->wake, EV_READ, 0);
}

void
mainq_report(mainq_t *q)
{
	pthread_mutex_lock(&q->mu);
	q->reported = true;
	pthread_mutex_unlock(&q->mu);
	event_active(q->wake, EV_READ, 0);
}

size_t
mainq_queued(mainq_t *q)
{
	size_t n = 0;
	mainq_job_t *j;

	pthread_mutex_lock(&q->mu);
	TAILQ_FOREACH(j, &q->queued, next)
		n++;
	pthread_mutex_unlock(&q->mu);
	return n;
}

mainq_job_t *
mainq_take(mainq_t *q)
{
	return mainq_pop(q);
}

void
mainq_free(mainq_t *q)
{
	if (q == NULL)
		return;
	if (q->wake)
		event_free(q->wake);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
