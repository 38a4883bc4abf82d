/*
 * metrics.c — Prometheus text exposition: the stats.h counters, caches, reload state,
 * the upstream latency histogram and the bounded credential x outcome label table.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "hash.h"
#include "metrics.h"
#include "stats.h"

/* --- stats.h counters -------------------------------------------------------------- */

struct metrics_stat {
	size_t off;		/* offsetof(struct sg_stats, field) */
	const char *name;	/* family, without the sealgate_ prefix */
	const char *label;	/* "key=\"value\"" or NULL */
	const char *type;	/* "counter" | "gauge" */
	const char *help;
};

#define STAT(f, n, l, t, h) {offsetof(struct sg_stats, f), n, l, t, h}

/* Every field of struct sg_stats, once; grouped by family (HELP/TYPE printed once). */
static const struct metrics_stat metrics_stats[] = {
	STAT(conns_accepted, "connections_accepted_total", NULL, "counter",
	    "Client connections accepted on the proxy listener."),
	STAT(conns_active, "connections_active", NULL, "gauge",
	    "Client connections open now."),
	STAT(conns_rejected, "connections_rejected_total", NULL, "counter",
	    "Client connections closed at accept (connection limit)."),
	STAT(accept_paused, "accept_paused_total", NULL, "counter",
	    "Times accepting paused (connection limit or out of descriptors)."),
	STAT(conns_parked, "connections_parked_total", NULL, "counter",
	    "Idle keep-alive connections that gave back their upstream and request state."),
	STAT(requests_total, "requests_received_total", NULL, "counter",
	    "Requests read from clients."),
	STAT(requests_forwarded, "requests_total", "outcome=\"forwarded\"", "counter",
	    "Requests by outcome."),
	STAT(requests_failed, "requests_total", "outcome=\"failed\"", "counter", NULL),
	STAT(errors_bad_request, "errors_total", "kind=\"bad_request\"", "counter",
	    "Error answers by kind."),
	STAT(errors_egress, "errors_total", "kind=\"egress_denied\"", "counter", NULL),
	STAT(errors_upstream, "errors_total", "kind=\"upstream\"", "counter", NULL),
	STAT(errors_timeout, "errors_total", "kind=\"timeout\"", "counter", NULL),
	STAT(errors_host_mismatch, "errors_total", "kind=\"host_mismatch\"", "counter", NULL),
	STAT(tls_client_handshakes, "tls_handshakes_total", "side=\"client\"", "counter",
	    "TLS handshakes completed, by side (client: intercepted, upstream: outbound)."),
	STAT(tls_upstream_handshakes, "tls_handshakes_total", "side=\"upstream\"", "counter",
	    NULL),
	STAT(tls_client_failures, "tls_handshake_failures_total", "side=\"client\"",
	    "counter", "TLS handshakes failed, by side."),
	STAT(tls_upstream_failures, "tls_handshake_failures_total", "side=\"upstream\"",
	    "counter", NULL),
	STAT(tunnels, "tunnels_total", NULL, "counter",
	    "CONNECT tunnels spliced without interception."),
	STAT(websockets, "websockets_total", NULL, "counter", "WebSocket upgrades relayed."),
	STAT(handle_failures, "handle_failures_total", NULL, "counter",
	    "Handles and Proxy-Tokenizer tokens that failed to unseal or to pass authorisation."),
	STAT(handle_throttled, "handle_throttled_total", NULL, "counter",
	    "Requests refused before any unseal because their source sent too many failed "
	    "handles (429 too_many_failures)."),
	STAT(brute_force, "brute_force_total", NULL, "counter",
	    "Windows in which a source went past limits.failed_handles (audit brute_force)."),
	STAT(sandbox_suspends, "sandbox_suspends_total", NULL, "counter",
	    "Registered sandboxes suspended (admin API)."),
	STAT(sandbox_resumes, "sandbox_resumes_total", NULL, "counter",
	    "Registered sandboxes resumed (admin API)."),
	STAT(suspended_refused, "suspended_requests_refused_total", NULL, "counter",
	    "Requests refused because their sandbox is suspended."),
	STAT(suspended_closed, "suspended_connections_closed_total", NULL, "counter",
	    "Idle or spliced connections closed because their sandbox was suspended."),
	STAT(handles_lineage, "handles_lineage_accepted_total", NULL, "counter",
	    "Requests whose handle was accepted through fork or restore lineage."),
	STAT(assume_role_fetches, "assume_role_fetches_total", NULL, "counter",
	    "STS AssumeRole calls for aws_sigv4 credentials with assume_role (refreshes "
	    "included)."),
	STAT(assume_role_refreshes, "assume_role_refreshes_total", NULL, "counter",
	    "AssumeRole calls made ahead of expiry while the cached credentials still served."),
	STAT(assume_role_failures, "assume_role_failures_total", NULL, "counter",
	    "AssumeRole calls that gave no credentials (STS error, timeout, network, TLS, "
	    "malformed answer)."),
	STAT(mint_fetches, "mint_fetches_total", NULL, "counter",
	    "Token endpoint calls for credentials with mint (refreshes included)."),
	STAT(mint_refreshes, "mint_refreshes_total", NULL, "counter",
	    "Token endpoint calls made ahead of expiry while the cached token still served."),
	STAT(mint_failures, "mint_failures_total", NULL, "counter",
	    "Token endpoint calls that gave no token (provider error, timeout, network, TLS, "
	    "malformed answer, state file write)."),
	STAT(mint_retries, "mint_retries_total", NULL, "counter",
	    "Idempotent requests without a body sent again with a newly minted token after "
	    "the upstream answered 401 to theirs."),
	STAT(secret_rotations, "secret_rotations_total", NULL, "counter",
	    "Rotating credential secrets (watched files, exec commands) that changed value."),
	STAT(secret_source_failures, "secret_source_failures_total", NULL, "counter",
	    "Reads of a watched secret file or runs of a secret command that gave no usable "
	    "value (the last good value stays)."),
	STAT(git_push_refused, "git_push_refused_total", NULL, "counter",
	    "git pushes refused by a credential's git.push rules (refs, deletes, signed "
	    "pushes); answered with a git report-status, nothing forwarded."),
	STAT(cluster_connected, "cluster_connected", NULL, "gauge",
	    "1: connected to the fleet's Redis and reconciled; 0: not (or no cluster)."),
	STAT(cluster_reconnects, "cluster_reconnects_total", NULL, "counter",
	    "Connection attempts to the fleet's Redis after the first."),
	STAT(cluster_revocations_sent, "cluster_revocations_sent_total", NULL, "counter",
	    "Revocations this sidecar added to the fleet's Redis."),
	STAT(cluster_revocations_applied, "cluster_revocations_applied_total", NULL,
	    "counter", "Revocations from the fleet's Redis added to the local file."),
	STAT(cluster_rate_leases, "cluster_rate_leases_total", NULL, "counter",
	    "Leases of fleet-wide rate_total tokens Redis granted this sidecar (at least one "
	    "token each)."),
	STAT(cluster_rate_tokens_returned, "cluster_rate_tokens_returned_total", NULL,
	    "counter", "Unused fleet rate tokens this sidecar gave back to Redis (lease "
	    "expired, credential removed, request refused by another limit)."),
};

_Static_assert(SG_ARRAY_LEN(metrics_stats) == sizeof(struct sg_stats) / sizeof(uint64_t),
    "every struct sg_stats field needs a metrics_stats row");

/* --- upstream latency histogram ---------------------------------------------------- */

static const double metrics_bounds_ms[METRICS_LATENCY_NBUCKETS] = METRICS_LATENCY_BUCKETS_MS;
/* Per-bucket (not cumulative) counts; the last slot is +Inf. */
static uint64_t metrics_lat_counts[METRICS_LATENCY_NBUCKETS + 1];
/* Sum in microseconds: 2^64 us is half a million years of latency. */
static uint64_t metrics_lat_sum_us;

void
metrics_observe_upstream_ms(double ms)
{
	size_t i;

	if (!(ms >= 0))		/* also NaN */
		ms = 0;
	for (i = 0; i < METRICS_LATENCY_NBUCKETS; i++)
		if (ms <= metrics_bounds_ms[i])
			break;
	__atomic_add_fetch(&metrics_lat_counts[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&metrics_lat_sum_us, (uint64_t)(ms * 1000.0 + 0.5),
	    __ATOMIC_RELAXED);
}

/* --- credential x outcome label table ---------------------------------------------- */

/* Open addressing, at most half full so probes stay short. */
#define METRICS_LABEL_SLOTS	(2 * (METRICS_MAX_LABEL_PAIRS + METRICS_MAX_OTHER_OUTCOMES))

struct metrics_pair {
	char credential[METRICS_MAX_LABEL_LEN + 1];
	char outcome[METRICS_MAX_LABEL_LEN + 1];
	uint64_t count;
};

/* Slots are written once (under the mutex) and read lock-free with acquire loads. */
static struct metrics_pair *metrics_slots[METRICS_LABEL_SLOTS];
static size_t metrics_named_pairs, metrics_other_pairs;
static pthread_mutex_t metrics_label_mu = PTHREAD_MUTEX_INITIALIZER;
/* Where counts go once even the "other" outcomes are used up. */
static struct metrics_pair metrics_overflow = {"other", "other", 0};

/* FNV-1a of credential, 0xff, outcome: names come from policy and code, not clients. */
static size_t
metrics_label_hash(const char *cred, const char *outcome)
{
	uint64_t h = hash_fnv1a64(HASH_FNV1A64_INIT, cred, strlen(cred));

	h = hash_fnv1a64(h, "\xff", 1);
	h = hash_fnv1a64(h, outcome, strlen(outcome));
	return (size_t)(h % METRICS_LABEL_SLOTS);
}

/* The slot holding (cred, outcome), or the empty slot where it would go; NULL if full. */
static struct metrics_pair **
metrics_label_probe(const char *cred, const char *outcome)
{
	size_t i = metrics_label_hash(cred, outcome);

	for (size_t n = 0; n < METRICS_LABEL_SLOTS; n++) {
		struct metrics_pair **slot = &metrics_slots[(i + n) % METRICS_LABEL_SLOTS];
		struct metrics_pair *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

		if (p == NULL || (strcmp(p->credential, cred) == 0 &&
		    strcmp(p->outcome, outcome) == 0))
			return slot;
	}
	return NULL;
}

/* Insert (cred, outcome) if there is room for it under the bounds; NULL when not. */
static struct metrics_pair *
metrics_label_insert(const char *cred, const char *outcome, bool other)
{
	struct metrics_pair **slot, *p = NULL;

	pthread_mutex_lock(&metrics_label_mu);
	slot = metrics_label_probe(cred, outcome);
	if (slot != NULL && (p = *slot) == NULL &&
	    (other ? metrics_other_pairs < METRICS_MAX_OTHER_OUTCOMES :
	    metrics_named_pairs < METRICS_MAX_LABEL_PAIRS) &&
	    (p = calloc(1, sizeof(*p))) != NULL) {
		snprintf(p->credential, sizeof(p->credential), "%s", cred);
		snprintf(p->outcome, sizeof(p->outcome), "%s", outcome);
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
		*(other ? &metrics_other_pairs : &metrics_named_pairs) += 1;
	}
	pthread_mutex_unlock(&metrics_label_mu);
	return p;
}

static struct metrics_pair *
metrics_label_find(const char *cred, const char *outcome, bool other)
{
	struct metrics_pair **slot = metrics_label_probe(cred, outcome);
	struct metrics_pair *p = slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : NULL;

	return p ? p : metrics_label_insert(cred, outcome, other);
}

void
metrics_count_request(const char *credential, const char *outcome)
{
	char cred[METRICS_MAX_LABEL_LEN + 1], out[METRICS_MAX_LABEL_LEN + 1];
	struct metrics_pair *p;

	/* cut first, so two long names sharing a prefix share a series */
	snprintf(cred, sizeof(cred), "%s", credential ? credential : "none");
	snprintf(out, sizeof(out), "%s", outcome ? outcome : "unknown");
	p = metrics_label_find(cred, out, false);
	if (p == NULL)
		p = metrics_label_find("other", out, true);
	if (p == NULL)
		p = &metrics_overflow;
	__atomic_add_fetch(&p->count, 1, __ATOMIC_RELAXED);
}

/* --- rendering --------------------------------------------------------------------- */

static void
metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP sealgate_%s %s\n# TYPE sealgate_%s %s\n", name, help, name, type);
}

static void
metrics_one(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	metrics_head(f, name, type, help);
	fprintf(f, "sealgate_%s %llu\n", name, (unsigned long long)v);
}

static void
metrics_one_f(FILE *f, const char *name, const char *type, const char *help, double v)
{
	metrics_head(f, name, type, help);
	fprintf(f, "sealgate_%s %.6f\n", name, v);
}

static void
metrics_render_stats(FILE *f)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(metrics_stats); i++) {
		const struct metrics_stat *s = &metrics_stats[i];
		uint64_t v = __atomic_load_n((const uint64_t *)((const char *)&sg_stats +
		    s->off), __ATOMIC_RELAXED);

		if (s->help != NULL)
			metrics_head(f, s->name, s->type, s->help);
		if (s->label != NULL)
			fprintf(f, "sealgate_%s{%s} %llu\n", s->name, s->label,
			    (unsigned long long)v);
		else
			fprintf(f, "sealgate_%s %llu\n", s->name, (unsigned long long)v);
	}
}

static void
metrics_render_histogram(FILE *f)
{
	uint64_t cum = 0;

	metrics_head(f, "upstream_latency_seconds", "histogram",
	    "Time from sending a request upstream to its response head.");
	for (size_t i = 0; i <= METRICS_LATENCY_NBUCKETS; i++) {
		cum += __atomic_load_n(&metrics_lat_counts[i], __ATOMIC_RELAXED);
		if (i < METRICS_LATENCY_NBUCKETS)
			fprintf(f, "sealgate_upstream_latency_seconds_bucket{le=\"%g\"} %llu\n",
			    metrics_bounds_ms[i] / 1000.0, (unsigned long long)cum);
		else
			fprintf(f, "sealgate_upstream_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)cum);
	}
	fprintf(f, "sealgate_upstream_latency_seconds_sum %.6f\n",
	    (double)__atomic_load_n(&metrics_lat_sum_us, __ATOMIC_RELAXED) / 1e6);
	fprintf(f, "sealgate_upstream_latency_seconds_count %llu\n", (unsigned long long)cum);
}

/* A label value with \ " and newline escaped (text format 0.0.4). */
static void
metrics_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
metrics_render_pair(FILE *f, const struct metrics_pair *p)
{
	fputs("sealgate_requests_by_credential_total{credential=\"", f);
	metrics_label_value(f, p->credential);
	fputs("\",outcome=\"", f);
	metrics_label_value(f, p->outcome);
	fprintf(f, "\"} %llu\n", (unsigned long long)__atomic_load_n(&p->count,
	    __ATOMIC_RELAXED));
}

static void
metrics_render_labels(FILE *f)
{
	metrics_head(f, "requests_by_credential_total", "counter",
	    "Requests by credential and outcome (credential=\"other\" past "
	    "the label bound).");
	for (size_t i = 0; i < METRICS_LABEL_SLOTS; i++) {
		const struct metrics_pair *p = __atomic_load_n(&metrics_slots[i],
		    __ATOMIC_ACQUIRE);

		if (p != NULL)
			metrics_render_pair(f, p);
	}
	if (__atomic_load_n(&metrics_overflow.count, __ATOMIC_RELAXED) > 0)
		metrics_render_pair(f, &metrics_overflow);
}

static void
metrics_render_cache(FILE *f, const char *what, const char *help, uint64_t hits,
    uint64_t misses, size_t size)
{
	char name[64];

	snprintf(name, sizeof(name), "%s_cache_hits_total", what);
	metrics_one(f, name, "counter", help, hits);
	snprintf(name, sizeof(name), "%s_cache_misses_total", what);
	metrics_one(f, name, "counter", help, misses);
	snprintf(name, sizeof(name), "%s_cache_entries", what);
	metrics_one(f, name, "gauge", help, size);
}

static void
metrics_render_sources(FILE *f, const metrics_sources_t *src)
{
	uint64_t hits = 0, misses = 0;
	size_t size = 0;

	if (src->certs != NULL)
		certcache_stats(src->certs, &hits, &misses, &size);
	metrics_render_cache(f, "leaf", "Minted leaf certificate cache.", hits, misses, size);
	hits = misses = 0;
	size = 0;
	if (src->handles != NULL)
		handlecache_stats(src->handles, &hits, &misses, &size);
	metrics_render_cache(f, "handle", "Verified handle cache.", hits, misses, size);
	metrics_one(f, "ratelimit_buckets", "gauge", "Rate limit buckets held.",
	    src->ratelimit ? ratelimit_count(src->ratelimit) : 0);
	metrics_one(f, "policy_generation", "gauge",
	    "Generation of the published policy snapshot.", src->policy_generation);
	metrics_one(f, "policy_last_reload_success", "gauge",
	    "1 when the last policy reload succeeded (1 before any reload).",
	    src->reload_time == 0 || src->reload_ok ? 1 : 0);
	metrics_one(f, "policy_last_reload_timestamp_seconds", "gauge",
	    "Unix time of the last policy reload attempt (0: none yet).",
	    src->reload_time > 0 ? (uint64_t)src->reload_time : 0);
	metrics_one_f(f, "policy_load_seconds", "gauge",
	    "Duration of the last successful policy load or reload (parse, compile, publish).",
	    src->policy_load_seconds > 0 ? src->policy_load_seconds : 0);
	metrics_one(f, "audit_dropped_total", "counter",
	    "Audit lines dropped because the writer queue was full.", audit_dropped());
	metrics_one(f, "sandboxes_registered", "gauge",
	    "Sandboxes registered at run time (admin API), suspended ones included.",
	    src->sandboxes_registered);
	metrics_one(f, "sandboxes_suspended", "gauge",
	    "Registered sandboxes suspended now (hibernating).", src->sandboxes_suspended);
}

char *
metrics_render(const metrics_sources_t *src, size_t *len)
{
	static const metrics_sources_t none;
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (f == NULL)
		return NULL;
	metrics_render_stats(f);
	metrics_render_sources(f, src ? src : &none);
	metrics_render_histogram(f);
	metrics_render_labels(f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	if (len != NULL)
		*len = n;
	return buf;
}
