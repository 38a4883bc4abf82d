/* test_metrics.c — exposition lines after increments, HELP/TYPE, sources, cumulative
 * histogram buckets, label escaping and the credential x outcome bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"

/* Does text hold exactly this line? */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static char *
render(const metrics_sources_t *src)
{
	size_t len = 0;
	char *txt = metrics_render(src, &len);

	assert_non_null(txt);
	assert_int_equal(len, strlen(txt));
	assert_true(len > 0 && txt[len - 1] == '\n');
	return txt;
}

static void
test_stats_counters(void **state)
{
	char *txt;

	(void)state;
	STATS_INC(requests_forwarded);
	STATS_INC(requests_forwarded);
	STATS_INC(requests_forwarded);
	STATS_INC(requests_total);
	STATS_INC(conns_active);
	STATS_INC(errors_host_mismatch);
	STATS_INC(tls_upstream_failures);
	STATS_INC(handle_failures);
	STATS_INC(handle_failures);
	STATS_INC(handle_throttled);
	txt = render(NULL);
	assert_true(has_line(txt, "sealgate_requests_total{outcome=\"forwarded\"} 3"));
	assert_true(has_line(txt, "sealgate_requests_total{outcome=\"failed\"} 0"));
	assert_true(has_line(txt, "sealgate_requests_received_total 1"));
	assert_true(has_line(txt, "sealgate_connections_active 1"));
	assert_true(has_line(txt, "# TYPE sealgate_connections_active gauge"));
	assert_true(has_line(txt, "sealgate_errors_total{kind=\"host_mismatch\"} 1"));
	assert_true(has_line(txt, "sealgate_tls_handshake_failures_total{side=\"upstream\"} 1"));
	assert_true(has_line(txt, "sealgate_websockets_total 0"));
	assert_true(has_line(txt, "sealgate_accept_paused_total 0"));
	assert_true(has_line(txt, "sealgate_handle_failures_total 2"));
	assert_true(has_line(txt, "# TYPE sealgate_handle_failures_total counter"));
	assert_true(has_line(txt, "sealgate_handle_throttled_total 1"));
	assert_true(has_line(txt, "sealgate_brute_force_total 0"));
	assert_true(has_line(txt, "# TYPE sealgate_brute_force_total counter"));
	assert_true(has_line(txt, "sealgate_audit_dropped_total 0"));
	assert_true(has_line(txt, "sealgate_sandboxes_suspended 0"));
	assert_true(has_line(txt, "# TYPE sealgate_sandboxes_suspended gauge"));
	assert_true(has_line(txt, "sealgate_handles_lineage_accepted_total 0"));
	free(txt);
	STATS_DEC(conns_active);
	STATS_INC(sandbox_suspends);
	STATS_INC(handles_lineage);
	STATS_INC(handles_lineage);
	txt = render(&(metrics_sources_t){.sandboxes_registered = 5,
	    .sandboxes_suspended = 2});
	assert_true(has_line(txt, "sealgate_sandbox_suspends_total 1"));
	assert_true(has_line(txt, "sealgate_sandbox_resumes_total 0"));
	assert_true(has_line(txt, "sealgate_handles_lineage_accepted_total 2"));
	assert_true(has_line(txt, "sealgate_sandboxes_registered 5"));
	assert_true(has_line(txt, "sealgate_sandboxes_suspended 2"));
	assert_true(has_line(txt, "# TYPE sealgate_suspended_requests_refused_total counter"));
	assert_true(has_line(txt, "sealgate_suspended_connections_closed_total 0"));
	free(txt);
}

/* Every sample's family has exactly one HELP and one TYPE line, printed before it. */
static void
test_help_and_type(void **state)
{
	char *txt = render(NULL), *save = NULL, *line;
	char seen[256][96];
	size_t nseen = 0;

	(void)state;
	for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char fam[96];
		size_t n;

		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_true(sscanf(line + 7, "%95s", fam) == 1);
			for (size_t i = 0; i < nseen; i++)
				assert_string_not_equal(seen[i], fam);
			assert_true(nseen < 256);
			strcpy(seen[nseen++], fam);
			continue;
		}
		if (line[0] == '#')
			continue;
		assert_memory_equal(line, "sealgate_", 9);
		n = strcspn(line, "{ ");
		assert_true(n < sizeof(fam));
		memcpy(fam, line, n);
		fam[n] = '\0';
		/* histogram samples belong to their family */
		for (const char *suf = "_bucket\0_sum\0_count\0"; *suf; suf += strlen(suf) + 1)
			if (n > strlen(suf) && strcmp(fam + n - strlen(suf), suf) == 0 &&
			    strncmp(fam, "sealgate_upstream_latency_seconds", 33) == 0)
				fam[n - strlen(suf)] = '\0';
		assert_true(nseen > 0);
		assert_string_equal(seen[nseen - 1], fam);
	}
	assert_true(nseen >= 20);
	free(txt);
}

static void
test_sources(void **state)
{
	certcache_t *cc = certcache_new(4);
	handlecache_t *hc = handlecache_new(4);
	ratelimit_t *rl = ratelimit_new(16);
	X509 *x = X509_new(), *got;
	metrics_sources_t src = {.certs = cc, .handles = hc, .ratelimit = rl,
	    .policy_generation = 7, .reload_ok = false, .reload_time = 1700000000,
	    .policy_load_seconds = 0.0125};
	char *txt;

	(void)state;
	assert_non_null(cc);
	assert_non_null(hc);
	assert_non_null(rl);
	assert_null(certcache_get(cc, "a.example"));
	certcache_put(cc, "a.example", x);
	got = certcache_get(cc, "a.example");
	assert_non_null(got);
	X509_free(got);
	txt = render(&src);
	assert_true(has_line(txt, "sealgate_leaf_cache_hits_total 1"));
	assert_true(has_line(txt, "sealgate_leaf_cache_misses_total 1"));
	assert_true(has_line(txt, "sealgate_leaf_cache_entries 1"));
	assert_true(has_line(txt, "sealgate_handle_cache_hits_total 0"));
	assert_true(has_line(txt, "sealgate_handle_cache_entries 0"));
	assert_true(has_line(txt, "sealgate_ratelimit_buckets 0"));
	assert_true(has_line(txt, "sealgate_policy_generation 7"));
	assert_true(has_line(txt, "sealgate_policy_last_reload_success 0"));
	assert_true(has_line(txt, "sealgate_policy_last_reload_timestamp_seconds 1700000000"));
	assert_true(has_line(txt, "# TYPE sealgate_policy_load_seconds gauge"));
	assert_true(has_line(txt, "sealgate_policy_load_seconds 0.012500"));
	free(txt);
	src.reload_ok = true;
	txt = render(&src);
	assert_true(has_line(txt, "sealgate_policy_last_reload_success 1"));
	free(txt);
	X509_free(x);
	certcache_free(cc);
	handlecache_free(hc);
	ratelimit_free(rl);
}

static unsigned long long
sample(const char *txt, const char *prefix)
{
	const char *p = strstr(txt, prefix);

	assert_non_null(p);
	return strtoull(p + strlen(prefix), NULL, 10);
}

static void
test_histogram(void **state)
{
	static const double obs[] = {0.5, 3, 7, 30, 7000, -1};
	unsigned long long prev = 0, v;
	const char *p;
	char *txt;
	double sum;

	(void)state;
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		metrics_observe_upstream_ms(obs[i]);
	metrics_observe_upstream_ms(NAN);
	txt = render(NULL);
	assert_int_equal(sample(txt, "_bucket{le=\"0.001\"} "), 3);	/* 0.5, -1, NaN */
	assert_int_equal(sample(txt, "_bucket{le=\"0.005\"} "), 4);
	assert_int_equal(sample(txt, "_bucket{le=\"0.01\"} "), 5);
	assert_int_equal(sample(txt, "_bucket{le=\"0.025\"} "), 5);
	assert_int_equal(sample(txt, "_bucket{le=\"0.05\"} "), 6);
	assert_int_equal(sample(txt, "_bucket{le=\"5\"} "), 6);
	assert_int_equal(sample(txt, "_bucket{le=\"+Inf\"} "), 7);
	assert_int_equal(sample(txt, "sealgate_upstream_latency_seconds_count "), 7);
	p = strstr(txt, "sealgate_upstream_latency_seconds_sum ");
	assert_non_null(p);
	sum = strtod(p + strlen("sealgate_upstream_latency_seconds_sum "), NULL);
	assert_true(fabs(sum - 7.0405) < 1e-6);
	/* cumulative: never decreasing, 12 buckets */
	v = 0;
	for (p = txt; (p = strstr(p, "_bucket{le=\"")) != NULL; p++) {
		unsigned long long c = strtoull(strstr(p, "} ") + 2, NULL, 10);

		assert_true(c >= prev);
		prev = c;
		v++;
	}
	assert_int_equal(v, 12);
	free(txt);
}

static void
test_labels(void **state)
{
	char *txt;

	(void)state;
	metrics_count_request("openai", "forwarded");
	metrics_count_request("openai", "forwarded");
	metrics_count_request("openai", "denied");
	metrics_count_request("we\"ird\\name\n", "rate_limited");
	metrics_count_request(NULL, NULL);
	txt = render(NULL);
	assert_true(has_line(txt, "# TYPE sealgate_requests_by_credential_total counter"));
	assert_true(has_line(txt, "sealgate_requests_by_credential_total{credential=\"openai\","
	    "outcome=\"forwarded\"} 2"));
	assert_true(has_line(txt, "sealgate_requests_by_credential_total{credential=\"openai\","
	    "outcome=\"denied\"} 1"));
	assert_true(has_line(txt, "sealgate_requests_by_credential_total{credential="
	    "\"we\\\"ird\\\\name\\n\",outcome=\"rate_limited\"} 1"));
	assert_true(has_line(txt, "sealgate_requests_by_credential_total{credential=\"none\","
	    "outcome=\"unknown\"} 1"));
	free(txt);
}

static size_t
count_series(const char *txt)
{
	size_t n = 0;

	for (const char *p = txt; (p = strstr(p, "\nsealgate_requests_by_credential_total{"))
	    != NULL; p++)
		n++;
	return n;
}

/* Runs last: fills the process-wide label table. */
static void
test_label_bound(void **state)
{
	char name[32], *txt;
	size_t extra = 200;

	(void)state;
	for (size_t i = 0; i < METRICS_MAX_LABEL_PAIRS + extra; i++) {
		snprintf(name, sizeof(name), "cred-%zu", i);
		metrics_count_request(name, "forwarded");
	}
	/* other outcomes past the bound: each a series of "other", up to its own bound */
	for (size_t i = 0; i < METRICS_MAX_OTHER_OUTCOMES + 10; i++) {
		snprintf(name, sizeof(name), "outcome-%zu", i);
		metrics_count_request("late", name);
	}
	txt = render(NULL);
	assert_int_equal(count_series(txt), METRICS_MAX_LABEL_PAIRS +
	    METRICS_MAX_OTHER_OUTCOMES + 1);
	assert_false(strstr(txt, "credential=\"cred-1199\""));
	/* test_labels took 4 named pairs, so 204 overflowed */
	assert_true(has_line(txt, "sealgate_requests_by_credential_total{credential=\"other\","
	    "outcome=\"forwarded\"} 204"));
	assert_true(has_line(txt, "sealgate_requests_by_credential_total{credential=\"other\","
	    "outcome=\"other\"} 11"));
	free(txt);
	/* still counted after the bound: existing series keep moving */
	metrics_count_request("openai", "forwarded");
	txt = render(NULL);
	assert_true(has_line(txt, "sealgate_requests_by_credential_total{credential=\"openai\","
	    "outcome=\"forwarded\"} 3"));
	free(txt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_counters),
		cmocka_unit_test(test_help_and_type),
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_label_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
