/*
 * metrics.h — Prometheus text exposition (format 0.0.4) of sealgate's counters.
 *
 * Sources: the process-wide counters in stats.h, the caches and rate limiter passed in
 * metrics_sources_t, the audit queue's drop counter, and two families kept here: the
 * upstream latency histogram and requests by credential x outcome.
 *
 * Threads: metrics_observe_upstream_ms and metrics_count_request may run on any thread
 * at any rate (relaxed atomics; the label table takes a mutex only to insert a new
 * pair). metrics_render may run concurrently with them; it reads each counter once, so
 * a scrape is a consistent-enough snapshot, never a torn value.
 */
#ifndef SEALGATE_METRICS_H
#define SEALGATE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certcache.h"
#include "handlecache.h"
#include "ratelimit.h"

/* credential x outcome pairs with their own series; more go to credential="other". */
#define METRICS_MAX_LABEL_PAIRS		1024
/* Distinct outcomes of the "other" credential (outcomes are code constants: few). */
#define METRICS_MAX_OTHER_OUTCOMES	64
/* Longest label value kept; longer ones are cut (names in policy are far shorter). */
#define METRICS_MAX_LABEL_LEN		128
/* Upstream latency buckets (upper bounds, ms); +Inf is implied. */
#define METRICS_LATENCY_BUCKETS_MS	{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000}
#define METRICS_LATENCY_NBUCKETS	11

/* What a scrape reads besides the global counters; any pointer may be NULL. */
typedef struct metrics_sources {
	certcache_t *certs;		/* leaf certificate cache */
	handlecache_t *handles;		/* verified handle cache */
	ratelimit_t *ratelimit;		/* buckets gauge */
	uint64_t policy_generation;	/* of the published snapshot (0: none) */
	bool reload_ok;			/* last reload attempt succeeded */
	int64_t reload_time;		/* its unix time in seconds (0: no reload yet) */
	double policy_load_seconds;	/* last successful load or reload: parse, compile and
					 * publish, monotonic clock (0: not measured) */
	uint64_t sandboxes_registered;	/* registry_count of the published snapshot */
	uint64_t sandboxes_suspended;	/* registry_suspended_count of it */
} metrics_sources_t;

/* The whole exposition as a malloc'd NUL-terminated text; *len (may be NULL) its length.
 * NULL on allocation failure. */
char *metrics_render(const metrics_sources_t *src, size_t *len);

/* One upstream response head arrived ms milliseconds after the request was sent. */
void metrics_observe_upstream_ms(double ms);

/* One request of credential (NULL: "none") ended with outcome (e.g. "forwarded",
 * "denied", "rate_limited"; NULL: "unknown"). */
void metrics_count_request(const char *credential, const char *outcome);

#endif
