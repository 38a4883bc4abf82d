/* cluster_rate.c — fleet-wide rate limits: lease requests and give-backs over Redis. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster_rate.h"
#include "defaults.h"
#include "log.h"
#include "stats.h"
#include "util.h"

/* ARGV: requests, per_ms, burst, tokens wanted. Returns {granted, wait_ms}. */
static const char cluster_rate_take_lua[] =
	"if redis.replicate_commands then redis.replicate_commands() end "
	"local rq, per, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), "
	"tonumber(ARGV[3]), tonumber(ARGV[4]) "
	"local tm = redis.call('TIME') "
	"local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) "
	"local st = redis.call('HMGET', KEYS[1], 't', 'ts') "
	"local t, ts = tonumber(st[1]), tonumber(st[2]) "
	"if t == nil or ts == nil then t, ts = burst, now end "
	"if now > ts then t = math.min(burst, t + (now - ts) * rq / per) end "
	"local g = math.min(want, math.floor(t)) "
	"t = t - g "
	"local wait = 0 "
	"if g == 0 then wait = math.ceil((1 - t) * per / rq) end "
	"redis.call('HSET', KEYS[1], 't', tostring(t), 'ts', tostring(now)) "
	"redis.call('PEXPIRE', KEYS[1], math.ceil(burst * per / rq) + 60000) "
	"return {g, wait}";

/* ARGV: requests, per_ms, burst, tokens back. An expired bucket is full already. */
static const char cluster_rate_give_lua[] =
	"local burst, n = tonumber(ARGV[3]), tonumber(ARGV[4]) "
	"local t = tonumber(redis.call('HGET', KEYS[1], 't')) "
	"if t == nil then return 0 end "
	"redis.call('HSET', KEYS[1], 't', tostring(math.min(burst, t + n))) "
	"return 1";

/* Longest prefix (clustermsg_prefix_valid) and the rest of a key. */
#define CLUSTER_RATE_KEY_MAX	(64 + 8 + FLEETTAB_NAME_MAX)
/* Jobs gathered per run; more wait for the next tick. */
#define CLUSTER_RATE_JOBS	64

struct cluster_rate {
	fleettab_t *t;
	char *prefix;
};

/* A lease request in flight: whose answer it is. */
struct cluster_rate_req {
	cluster_rate_t *r;
	fleettab_job_t job;
};

cluster_rate_t *
cluster_rate_new(fleettab_t *t, const char *prefix)
{
	cluster_rate_t *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->prefix = strdup(prefix)) == NULL) {
		free(r);
		return NULL;
	}
	r->t = t;
	return r;
}

void
cluster_rate_free(cluster_rate_t *r)
{
	if (r == NULL)
		return;
	free(r->prefix);
	free(r);
}

/* EVAL script for job with n tokens; cb/arg as redisAsyncCommandArgv. 0 / -1. */
static int
cluster_rate_eval(cluster_rate_t *r, redisAsyncContext *c, const char *script,
    const fleettab_job_t *job, uint32_t n, redisCallbackFn *cb, void *arg)
{
	char key[CLUSTER_RATE_KEY_MAX], a[4][24];
	const char *argv[8] = {"EVAL", script, "1", key, a[0], a[1], a[2], a[3]};
	size_t argvlen[8];
	uint32_t burst = job->rate.burst > 0 ? job->rate.burst : job->rate.requests;

	snprintf(key, sizeof(key), "%srate:%s", r->prefix, job->name);
	snprintf(a[0], sizeof(a[0]), "%" PRIu32, job->rate.requests);
	snprintf(a[1], sizeof(a[1]), "%" PRIu64, job->rate.per_ms);
	snprintf(a[2], sizeof(a[2]), "%" PRIu32, burst);
	snprintf(a[3], sizeof(a[3]), "%" PRIu32, n);
	for (size_t i = 0; i < SG_ARRAY_LEN(argv); i++)
		argvlen[i] = strlen(argv[i]);
	return redisAsyncCommandArgv(c, cb, arg, 8, argv, argvlen) == REDIS_OK ? 0 : -1;
}

/* Give n tokens of job back (no answer is waited for). 0 / -1. */
static int
cluster_rate_give(cluster_rate_t *r, redisAsyncContext *c, const fleettab_job_t *job,
    uint32_t n)
{
	if (cluster_rate_eval(r, c, cluster_rate_give_lua, job, n, NULL, NULL) < 0)
		return -1;
	__atomic_add_fetch(&sg_stats.cluster_rate_tokens_returned, n, __ATOMIC_RELAXED);
	return 0;
}

/* {granted, wait_ms} into *granted, *wait: 0, or -1 for anything else. */
static int
cluster_rate_decode(const redisReply *rp, uint32_t want, uint32_t *granted,
    uint64_t *wait)
{
	if (rp == NULL || rp->type != REDIS_REPLY_ARRAY || rp->elements != 2 ||
	    rp->element[0]->type != REDIS_REPLY_INTEGER ||
	    rp->element[1]->type != REDIS_REPLY_INTEGER ||
	    rp->element[0]->integer < 0 || rp->element[0]->integer > (long long)want ||
	    rp->element[1]->integer < 0)
		return -1;
	*granted = (uint32_t)rp->element[0]->integer;
	*wait = (uint64_t)rp->element[1]->integer;
	return 0;
}

static void
cluster_rate_take_cb(redisAsyncContext *c, void *reply, void *arg)
{
	struct cluster_rate_req *q = arg;
	uint32_t granted, back;
	uint64_t wait;

	if (cluster_rate_decode(reply, q->job.take, &granted, &wait) < 0) {
		if (reply != NULL)
			log_warn("cluster: redis answered a rate lease for credential %s with "
			    "something unexpected", q->job.name);
		fleettab_failed(q->r->t, q->job.name);
		free(q);
		return;
	}
	if (granted > 0)
		__atomic_add_fetch(&sg_stats.cluster_rate_leases, 1, __ATOMIC_RELAXED);
	back = fleettab_answer(q->r->t, q->job.name, granted, wait, util_mono_ms());
	if (back > 0 && !(c->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
		(void)cluster_rate_give(q->r, c, &q->job, back);
	free(q);
}

/* Ask for job's lease. 0 / -1 (the lease is marked failed). */
static int
cluster_rate_take(cluster_rate_t *r, redisAsyncContext *c, const fleettab_job_t *job)
{
	struct cluster_rate_req *q = malloc(sizeof(*q));

	if (q == NULL) {
		fleettab_failed(r->t, job->name);
		return -1;
	}
	q->r = r;
	q->job = *job;
	if (cluster_rate_eval(r, c, cluster_rate_take_lua, job, job->take,
	    cluster_rate_take_cb, q) < 0) {
		fleettab_failed(r->t, job->name);
		free(q);
		return -1;
	}
	return 0;
}

int
cluster_rate_run(cluster_rate_t *r, redisAsyncContext *c)
{
	fleettab_job_t *jobs = calloc(CLUSTER_RATE_JOBS, sizeof(*jobs));
	size_t n;
	int rc = 0;

	if (jobs == NULL)
		return 0;	/* the next tick tries again */
	n = fleettab_collect(r->t, util_mono_ms(), jobs, CLUSTER_RATE_JOBS);
	for (size_t i = 0; i < n; i++) {
		if (c == NULL || rc < 0) {
			if (jobs[i].take > 0)
				fleettab_failed(r->t, jobs[i].name);
			continue;
		}
		if (jobs[i].give > 0 && cluster_rate_give(r, c, &jobs[i], jobs[i].give) < 0)
			rc = -1;
		if (jobs[i].take > 0 && rc == 0 && cluster_rate_take(r, c, &jobs[i]) < 0)
			rc = -1;
		else if (jobs[i].take > 0 && rc < 0)
			fleettab_failed(r->t, jobs[i].name);
	}
	free(jobs);
	return rc;
}
