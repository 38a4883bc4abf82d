/*
 * mainq.h — jobs handed from any thread to the main thread's event loop: the queue of
 * the clients that make sealgate's own calls there (stsclient.h, mintclient.h).
 * Shell: libevent.
 *
 * A caller embeds a mainq_job_t in its job. mainq_push (any thread) queues it under a
 * mutex and wakes the loop (event_active); from the loop, run(job, arg) is called for
 * each queued job in order, then report(arg) once if mainq_report was called since the
 * last wake (a failure recorded off the loop that waiters must hear about). Jobs are the
 * caller's: mainq never frees one. At shutdown (main thread, no more pushes) mainq_take
 * hands back the jobs never run, one by one; then mainq_free.
 */
#ifndef SEALGATE_MAINQ_H
#define SEALGATE_MAINQ_H

#include <stddef.h>
#include <sys/queue.h>

#include "util.h"

struct event_base;

typedef struct mainq_job {
	TAILQ_ENTRY(mainq_job) next;
} mainq_job_t;

typedef struct mainq mainq_t;
typedef void (*mainq_run_fn)(mainq_job_t *job, void *arg);
typedef void (*mainq_report_fn)(void *arg);

/* NULL when out of memory. */
mainq_t *mainq_new(struct event_base *base, mainq_run_fn run, mainq_report_fn report,
    void *arg) SG_NONNULL SG_WUR;
void mainq_push(mainq_t *q, mainq_job_t *job) SG_NONNULL;
void mainq_report(mainq_t *q) SG_NONNULL;
/* Jobs queued and not yet run. */
size_t mainq_queued(mainq_t *q) SG_NONNULL;
/* A job never run (main thread, shutdown), or NULL. */
mainq_job_t *mainq_take(mainq_t *q) SG_NONNULL;
/* NULL is fine; queued jobs must have been taken. */
void mainq_free(mainq_t *q);

#endif
