/* test_policy.c — policy parsing, validation messages, merging, defaults, snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "defaults.h"
#include "policy.h"
#include "secmem.h"
#include "secval.h"
#include "unit_maps.h"

static char tmpdir[64];

/* A credential that passes validation, to build bad policies around. */
#define CRED "\"secret\": {\"value\": \"v\"}, \"inject\": {\"type\": \"bearer\"}, " \
	"\"hosts\": [\"a.test\"]"
#define CREDS(extra) "{\"credentials\": {\"openai\": {" CRED extra "}}}"
#define INJECT(body) "{\"credentials\": {\"c\": {\"secret\": {\"value\": \"v\"}, " \
	"\"inject\": " body ", \"hosts\": [\"a.test\"]}}}"
#define SANDBOX(body) "{\"sandboxes\": {\"s\": " body "}}"
/* An aws_sigv4 credential "a" with the given "aws" members (after access_key_id). */
#define AWS_AKID "AKIAIOSFODNN7EXAMPLE"
#define AWS(members) "{\"credentials\": {\"a\": {\"secret\": {\"value\": \"aws-SECRET-v\"}, " \
	"\"inject\": {\"type\": \"aws_sigv4\"}, \"hosts\": [\"*.amazonaws.com\"], " \
	"\"aws\": {\"access_key_id\": {\"value\": \"" AWS_AKID "\"}" members "}}}}"

static const char good_json[] =
    "{\n"
    " \"$schema\": \"./schema.json\",\n"
    " \"listen\": {\"proxy\": \"[::1]:0\", \"metadata\": null, \"admin\": \"localhost:9091\"},\n"
    " \"keys\": {\"seal_key\": \"k/seal.key\", \"ca_cert\": \"/etc/sg/ca.crt\",\n"
    "   \"ca_key\": \"k/ca.key\", \"open_keys\": [\"old.key\"], \"retired_key_ids\": [\"DEADBEEF\"]},\n"
    " \"upstream\": {\"ca_file\": \"ca.pem\",\n"
    "   \"resolve\": {\"api.example.test\": \"127.0.0.1\", \"v6.example.test\": \"::1\"}},\n"
    " \"admin\": {\"token\": {\"file\": \"admin.token\"}},\n"
    " \"audit\": {\"path\": \"audit.log\"},\n"
    " \"revocations\": {\"file\": \"revoked.json\"},\n"
    " \"egress\": {\"default\": \"allow\", \"allow_hosts\": [\"*.pypi.org\"],\n"
    "   \"deny_hosts\": [\"evil.test:443\"], \"tunnel_hosts\": [\"pinned.test\"],\n"
    "   \"allow_private\": [\"10.0.0.0/8\", \"fd00::/8\"], \"intercept\": \"all\"},\n"
    " \"limits\": {\"header_timeout\": \"5s\", \"idle_timeout\": \"2m\", \"connect_timeout\": \"3s\",\n"
    "   \"tls_timeout\": \"4s\", \"upstream_timeout\": \"1m\", \"drain_timeout\": \"0s\",\n"
    "   \"park_after\": \"250ms\", \"busy_poll_us\": 50, \"failed_handles\": 5,\n"
    "   \"failed_handles_window\": \"2m30s\",\n"
    "   \"max_header_bytes\": 2048, \"max_connections\": 10, \"workers\": 2},\n"
    " \"credentials\": {\n"
    "  \"openai\": {\"secret\": {\"env\": \"SG_TEST_OPENAI\"}, \"inject\": {\"type\": \"bearer\"},\n"
    "   \"hosts\": [\"api.openai.com\"], \"methods\": [\"get\", \"POST\"], \"paths\": [\"/v1/*\"],\n"
    "   \"rate\": {\"requests\": 600, \"per\": \"1m\", \"burst\": 50},\n"
    "   \"rate_total\": {\"requests\": 10, \"per\": \"1s\"}, \"ttl\": \"15m\",\n"
    "   \"env\": \"OPENAI_API_KEY\", \"allow_plain_http\": true, \"echo_ok_in_body\": true},\n"
    "  \"hdr\": {\"secret\": {\"file\": \"hdr.secret\"},\n"
    "   \"inject\": {\"type\": \"header\", \"name\": \"x-api-key\", \"format\": \"Key %s\"},\n"
    "   \"hosts\": [\"*.example.com:8443\"]},\n"
    "  \"basic\": {\"secret\": {\"value\": \"basic-pw-secret\"}, \"inject\": {\"type\": \"basic\", \"username\": \"bob\"},\n"
    "   \"hosts\": [\"a.test\"]},\n"
    "  \"q\": {\"secret\": {\"value\": \"qq\"}, \"inject\": {\"type\": \"query\", \"param\": \"key\"},\n"
    "   \"hosts\": [\"a.test\"]},\n"
    "  \"mac\": {\"secret\": {\"value\": \"mm\"}, \"inject\": {\"type\": \"hmac\"}, \"hosts\": [\"a.test\"]},\n"
    "  \"bod\": {\"secret\": {\"value\": \"bb\"},\n"
    "   \"inject\": {\"type\": \"body\", \"placeholder\": \"__TOKEN__\"}, \"hosts\": [\"a.test\"]}\n"
    " },\n"
    " \"sandboxes\": {\n"
    "  \"sb-1\": {\"addresses\": [\"10.0.2.15/32\", \"fd00::1\"], \"credentials\": [\"openai\", \"hdr\"],\n"
    "   \"rate\": {\"requests\": 5, \"per\": \"1s\"}, \"token\": {\"value\": \"proxy-tok\"}},\n"
    "  \"sb-2\": {\"addresses\": [\"10.0.3.0/24\"]}\n"
    " }\n"
    "}\n";

static void
write_file(const char *name, const char *text, mode_t mode)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
remove_file(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
}

static char *
tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-policy.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	write_file("hdr.secret", "hdr-secret\n", 0600);
	write_file("open.secret", "leaky\n", 0644);
	setenv("SG_TEST_OPENAI", "sk-openai-test", 1);
	unsetenv("SG_TEST_UNSET_VAR");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	remove_file("hdr.secret");
	remove_file("open.secret");
	rmdir(tmpdir);
	return 0;
}

static policy_t *
load(const char *json, policy_errors_t *errs)
{
	return policy_load_buffer(tmp_path("main.json"), json, strlen(json), errs);
}

static void
dump_errors(const policy_errors_t *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "  error: %s\n", errs->msg[i]);
}

static bool
errors_contain(const policy_errors_t *errs, const char *needle)
{
	for (size_t i = 0; i < errs->n; i++)
		if (strstr(errs->msg[i], needle) != NULL)
			return true;
	return false;
}

static void
assert_path(const char *got, const char *rel)
{
	char want[256];

	snprintf(want, sizeof(want), "%s/%s", tmpdir, rel);
	assert_string_equal(got, want);
}

static void
check_good_top(const policy_t *p)
{
	assert_string_equal(p->listen.proxy, "[::1]:0");
	assert_null(p->listen.metadata);
	assert_string_equal(p->listen.admin, "localhost:9091");
	assert_path(p->keys.seal_key, "k/seal.key");
	assert_string_equal(p->keys.ca_cert, "/etc/sg/ca.crt");
	assert_path(p->keys.ca_key, "k/ca.key");
	assert_int_equal(p->keys.open_keys.n, 1);
	assert_path(p->keys.open_keys.v[0], "old.key");
	assert_int_equal(p->keys.retired_key_ids.n, 1);
	assert_string_equal(p->keys.retired_key_ids.v[0], "deadbeef");
	assert_path(p->upstream.ca_file, "ca.pem");
	assert_int_equal(p->upstream.nresolve, 2);
	assert_string_equal(p->upstream.resolve[0].host, "api.example.test");
	assert_string_equal(p->upstream.resolve[0].address, "127.0.0.1");
	assert_string_equal(p->upstream.resolve[1].address, "::1");
	assert_path(p->admin_token_file, "admin.token");
	assert_path(p->audit_path, "audit.log");
	assert_path(p->revocations_file, "revoked.json");
	assert_true(p->egress.default_allow);
	assert_int_equal(p->egress.intercept, INTERCEPT_ALL);
	assert_string_equal(p->egress.allow_hosts.v[0], "*.pypi.org");
	assert_string_equal(p->egress.deny_hosts.v[0], "evil.test:443");
	assert_string_equal(p->egress.tunnel_hosts.v[0], "pinned.test");
	assert_int_equal(p->egress.nallow_private, 2);
	assert_int_equal(p->egress.allow_private[0].family, AF_INET);
	assert_int_equal(p->egress.allow_private[0].prefix, 8);
	assert_int_equal(p->egress.allow_private[1].family, AF_INET6);
}

static void
check_good_limits(const policy_limits_t *l)
{
	assert_int_equal(l->header_timeout_ms, 5000);
	assert_int_equal(l->idle_timeout_ms, 120000);
	assert_int_equal(l->connect_timeout_ms, 3000);
	assert_int_equal(l->tls_timeout_ms, 4000);
	assert_int_equal(l->upstream_timeout_ms, 60000);
	assert_int_equal(l->drain_timeout_ms, 0);
	assert_int_equal(l->park_after_ms, 250);
	assert_int_equal(l->busy_poll_us, 50);
	assert_int_equal(l->failed_handles, 5);
	assert_int_equal(l->failed_handles_window_ms, 150000);
	assert_int_equal(l->max_header_bytes, 2048);
	assert_int_equal(l->max_connections, 10);
	assert_int_equal(l->workers, 2);
}

static void
check_good_openai(const policy_credential_t *c)
{
	assert_non_null(c);
	assert_string_equal(c->secret, "sk-openai-test");
	assert_int_equal(c->secret_len, strlen("sk-openai-test"));
	assert_int_equal(c->secret_source, SECRET_ENV);
	assert_int_equal(c->inject.type, INJECT_BEARER);
	assert_null(c->inject.format);
	assert_string_equal(c->hosts.v[0], "api.openai.com");
	assert_int_equal(c->methods.n, 2);
	assert_string_equal(c->methods.v[0], "GET");
	assert_string_equal(c->methods.v[1], "POST");
	assert_string_equal(c->paths.v[0], "/v1/*");
	assert_true(c->rate.set);
	assert_int_equal(c->rate.requests, 600);
	assert_int_equal(c->rate.per_ms, 60000);
	assert_int_equal(c->rate.burst, 50);
	assert_true(c->rate_total.set);
	assert_int_equal(c->rate_total.burst, 10);
	assert_int_equal(c->ttl_s, 900);
	assert_false(c->ttl_sandbox);
	assert_int_equal(c->max_ttl_s, SG_HANDLE_MAX_TTL_DEFAULT_S);
	assert_string_equal(c->env, "OPENAI_API_KEY");
	assert_true(c->allow_plain_http);
	assert_true(c->echo_ok_in_body);
}

static void
check_good_injects(const policy_t *p)
{
	const policy_credential_t *c;

	c = policy_credential_find(p, "hdr");
	assert_string_equal(c->secret, "hdr-secret");
	assert_false(c->echo_ok_in_body);	/* the default */
	assert_int_equal(c->secret_len, 10);
	assert_int_equal(c->secret_source, SECRET_FILE);
	assert_int_equal(c->inject.type, INJECT_HEADER);
	assert_string_equal(c->inject.name, "x-api-key");
	assert_string_equal(c->inject.format, "Key %s");
	assert_int_equal(c->ttl_s, SG_HANDLE_TTL_DEFAULT_S);
	assert_false(c->rate.set);
	c = policy_credential_find(p, "basic");
	assert_int_equal(c->inject.type, INJECT_BASIC);
	assert_string_equal(c->inject.username, "bob");
	assert_int_equal(c->secret_source, SECRET_VALUE);
	c = policy_credential_find(p, "q");
	assert_int_equal(c->inject.type, INJECT_QUERY);
	assert_string_equal(c->inject.param, "key");
	c = policy_credential_find(p, "mac");
	assert_int_equal(c->inject.type, INJECT_HMAC);
	assert_string_equal(c->inject.name, "Authorization");
	assert_string_equal(c->inject.format, "HMAC %s");
	c = policy_credential_find(p, "bod");
	assert_int_equal(c->inject.type, INJECT_BODY);
	assert_string_equal(c->inject.placeholder, "__TOKEN__");
	assert_null(policy_credential_find(p, "nope"));
}

static void
check_good_sandboxes(const policy_t *p)
{
	const policy_sandbox_t *sb = policy_sandbox_find(p, "sb-1");
	uint8_t want[16];

	assert_non_null(sb);
	assert_int_equal(sb->naddresses, 2);
	assert_int_equal(sb->addresses[0].prefix, 32);
	assert_int_equal(inet_pton(AF_INET, "10.0.2.15", want), 1);
	assert_memory_equal(sb->addresses[0].addr, want, 4);
	assert_int_equal(sb->addresses[1].family, AF_INET6);
	assert_int_equal(sb->addresses[1].prefix, 128);
	assert_true(policy_sandbox_grants(sb, "openai"));
	assert_true(policy_sandbox_grants(sb, "hdr"));
	assert_false(policy_sandbox_grants(sb, "basic"));
	assert_int_equal(sb->rate.requests, 5);
	assert_int_equal(sb->rate.burst, 5);
	assert_string_equal(sb->token, "proxy-tok");
	sb = policy_sandbox_find(p, "sb-2");
	assert_non_null(sb);
	assert_int_equal(sb->credentials.n, 0);
	assert_null(sb->token);
	assert_null(policy_sandbox_find(p, "sb-3"));
}

static void
test_good_policy(void **state)
{
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	p = load(good_json, &errs);
	dump_errors(&errs);
	assert_non_null(p);
	assert_int_equal(errs.n, 0);
	assert_int_equal(p->refcnt, 1);
	assert_path(p->source, "main.json");
	check_good_top(p);
	check_good_limits(&p->limits);
	assert_int_equal(p->ncredentials, 6);
	check_good_openai(policy_credential_find(p, "openai"));
	check_good_injects(p);
	assert_int_equal(p->nsandboxes, 2);
	check_good_sandboxes(p);
	/* value secrets: basic, q, mac, bod, and the sb-1 token */
	assert_int_equal(p->warnings.n, 5);
	assert_non_null(strstr(p->warnings.v[0],
	    "credentials.basic.secret: inline value is for development only"));
	for (size_t i = 0; i < p->warnings.n; i++)
		assert_null(strstr(p->warnings.v[i], "basic-pw-secret"));
	policy_unref(p);
	policy_errors_free(&errs);
}

static void
test_defaults(void **state)
{
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	p = load("{}", &errs);
	assert_non_null(p);
	assert_string_equal(p->listen.proxy, "127.0.0.1:3128");
	assert_string_equal(p->listen.metadata, "127.0.0.1:8775");
	assert_string_equal(p->listen.admin, "127.0.0.1:9091");
	assert_path(p->keys.seal_key, "certs/seal.key");
	assert_path(p->keys.ca_cert, "certs/ca.crt");
	assert_path(p->keys.ca_key, "certs/ca.key");
	assert_path(p->admin_token_file, "certs/admin.token");
	assert_string_equal(p->audit_path, "-");
	assert_null(p->revocations_file);
	assert_null(p->upstream.ca_file);
	assert_false(p->egress.default_allow);
	assert_int_equal(p->egress.intercept, INTERCEPT_CREDENTIALS);
	assert_int_equal(p->limits.header_timeout_ms, SG_HEADER_TIMEOUT_S * 1000);
	assert_int_equal(p->limits.upstream_timeout_ms, SG_UPSTREAM_TIMEOUT_S * 1000);
	assert_int_equal(p->limits.drain_timeout_ms, SG_DRAIN_TIMEOUT_S * 1000);
	assert_int_equal(p->limits.park_after_ms, SG_PARK_MS);
	assert_int_equal(p->limits.max_header_bytes, SG_MAX_HEADER_BYTES);
	assert_int_equal(p->limits.max_connections, SG_MAX_CONNECTIONS);
	assert_int_equal(p->limits.workers, 0);
	assert_int_equal(p->limits.failed_handles, SG_FAIL_LIMIT);
	assert_int_equal(p->limits.failed_handles_window_ms, SG_FAIL_WINDOW_S * 1000);
	assert_int_equal(p->ncredentials, 0);
	assert_int_equal(p->warnings.n, 0);
	policy_unref(p);
	policy_errors_free(&errs);
	/* a listen section fills absent members; null disables */
	p = load("{\"listen\": {\"admin\": null}}", &errs);
	assert_non_null(p);
	assert_string_equal(p->listen.proxy, "127.0.0.1:3128");
	assert_null(p->listen.admin);
	assert_null(p->listen.transparent);	/* off unless set */
	policy_unref(p);
	policy_errors_free(&errs);
	p = load("{\"listen\": {\"transparent\": \"169.254.10.1:3129\"}}", &errs);
	assert_non_null(p);
	assert_string_equal(p->listen.transparent, "169.254.10.1:3129");
	policy_unref(p);
	policy_errors_free(&errs);
}

/* The failed-handle throttle's bounds are inclusive; 0 turns it off. */
static void
test_failed_handles_bounds(void **state)
{
	static const struct {
		const char *json;
		uint32_t limit;
		uint64_t window_ms;
	} cases[] = {
		{"{\"limits\": {\"failed_handles\": 0}}", 0, SG_FAIL_WINDOW_S * 1000},
		{"{\"limits\": {\"failed_handles\": 1000000, \"failed_handles_window\": \"1s\"}}",
		    1000000, 1000},
		{"{\"limits\": {\"failed_handles_window\": \"24h\"}}", SG_FAIL_LIMIT,
		    86400000},
	};
	policy_errors_t errs;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
		policy_t *p = load(cases[i].json, &errs);

		if (p == NULL)
			dump_errors(&errs);
		assert_non_null(p);
		assert_int_equal(p->limits.failed_handles, cases[i].limit);
		assert_int_equal(p->limits.failed_handles_window_ms, cases[i].window_ms);
		policy_unref(p);
		policy_errors_free(&errs);
	}
}

struct bad_case {
	const char *json;
	const char *expect;
};

/* A basic credential for github.com with the given "git" block. */
#define GIT(block) "{\"credentials\": {\"gh\": {\"secret\": {\"value\": \"s\"}, " \
	"\"inject\": {\"type\": \"basic\", \"username\": \"x-access-token\"}, " \
	"\"hosts\": [\"github.com\"], \"git\": " block "}}}"

static const struct bad_case bad_cases[] = {
	{"{\"listen\": {\"proxy\": }}", "main.json:1:22: "},
	{"{\"credentails\": {}}", "unknown key \"credentails\" (did you mean \"credentials\"?)"},
	{"{\"limits\": {\"worker\": 2}}", "limits: unknown key \"worker\" (did you mean \"workers\"?)"},
	{"{\"frobnicate\": 1}", "main.json: unknown key \"frobnicate\""},
	{"[]", "main.json: expected an object, got an array"},
	{"{\"a\": 1, \"a\": 2}", "duplicate object key"},
	{"{\"credentials\": []}", "main.json: credentials: expected an object, got an array"},
	{"{\"limits\": {\"workers\": \"2\"}}", "limits.workers: expected an integer, got a string"},
	{"{\"limits\": {\"workers\": 257}}", "limits.workers: 257 is out of range (0..256)"},
	{"{\"limits\": {\"busy_poll_us\": 10001}}",
	    "limits.busy_poll_us: 10001 is out of range (0..10000)"},
	{"{\"limits\": {\"park_after\": \"soon\"}}", "limits.park_after: \"soon\" is not a duration"},
	{"{\"limits\": {\"max_header_bytes\": 100}}", "max_header_bytes: 100 is out of range"},
	{"{\"limits\": {\"header_timeout\": \"0s\"}}", "limits.header_timeout: must be longer than 0"},
	{"{\"limits\": {\"failed_handles\": -1}}",
	    "main.json: limits.failed_handles: -1 is out of range (0..1000000)"},
	{"{\"limits\": {\"failed_handles\": 1000001}}",
	    "limits.failed_handles: 1000001 is out of range (0..1000000)"},
	{"{\"limits\": {\"failed_handles\": \"20\"}}",
	    "limits.failed_handles: expected an integer, got a string"},
	{"{\"limits\": {\"failed_handles_window\": \"999ms\"}}",
	    "main.json: limits.failed_handles_window: \"999ms\" is out of range (1s..86400s)"},
	{"{\"limits\": {\"failed_handles_window\": \"1d1s\"}}",
	    "limits.failed_handles_window: \"1d1s\" is out of range (1s..86400s)"},
	{"{\"limits\": {\"failed_handles_window\": \"often\"}}",
	    "limits.failed_handles_window: \"often\" is not a duration"},
	{"{\"limits\": {\"failed_handle\": 3}}",
	    "limits: unknown key \"failed_handle\" (did you mean \"failed_handles\"?)"},
	{CREDS(", \"rate\": {\"requests\": 1, \"per\": \"1x\"}"),
	    "main.json: credentials.openai.rate.per: \"1x\" is not a duration"},
	{CREDS(", \"rate\": {\"requests\": 0, \"per\": \"1s\"}"),
	    "credentials.openai.rate.requests: 0 is out of range"},
	{CREDS(", \"rate\": {\"requests\": 1, \"per\": \"0s\"}"),
	    "credentials.openai.rate.per: must be longer than 0"},
	{CREDS(", \"rate\": {\"requests\": 1}"), "credentials.openai.rate: needs \"per\""},
	{CREDS(", \"ttl\": \"8d\""), "credentials.openai.ttl: \"8d\" is out of range (1s..604800s)"},
	{CREDS(", \"ttl\": \"500ms\""), "credentials.openai.ttl: \"500ms\" is out of range"},
	{CREDS(", \"ttl\": \"forever\""), "credentials.openai.ttl: \"forever\" is neither a duration (like \"15m\", \"1h\") nor \"sandbox\""},
	{CREDS(", \"ttl\": \"Sandbox\""), "credentials.openai.ttl: \"Sandbox\" is neither a duration"},
	{CREDS(", \"max_ttl\": \"91d\""), "credentials.openai.max_ttl: \"91d\" is out of range (1s..7776000s)"},
	{CREDS(", \"max_ttl\": \"sandbox\""), "credentials.openai.max_ttl: \"sandbox\" is not a duration"},
	{CREDS(", \"ttl\": \"2h\", \"max_ttl\": \"1h\""), "credentials.openai.ttl: ttl (7200s) is longer than max_ttl (3600s)"},
	{CREDS(", \"env\": \"openai-key\""), "credentials.openai.env: \"openai-key\" is not a shell variable name"},
	{CREDS(", \"methods\": [\"GE T\"]"), "credentials.openai.methods[0]: \"GE T\" is not an HTTP method"},
	{CREDS(", \"paths\": [\"/ok\", \"v1/*\"]"), "credentials.openai.paths[1]: \"v1/*\" is not a path"},
	{CREDS(", \"allow_plain_http\": \"yes\""), "allow_plain_http: expected true or false, got a string"},
	{CREDS(", \"echo_ok_in_body\": 1"), "credentials.openai.echo_ok_in_body: expected true or false, got a number"},
	{CREDS(", \"hots\": []"), "credentials.openai: unknown key \"hots\" (did you mean \"hosts\"?)"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"value\": \"v\"}, \"inject\": {\"type\": \"bearer\"}, "
	    "\"hosts\": [\"API.example.com\"]}}}", "credentials.c.hosts[0]: \"API.example.com\" is not a host glob"},
	{"{\"egress\": {\"allow_hosts\": [\"a.*.com\"]}}", "egress.allow_hosts[0]: \"a.*.com\" is not a host glob"},
	{"{\"egress\": {\"deny_hosts\": [\"x.test:99999\"]}}", "egress.deny_hosts[0]: \"x.test:99999\" is not a host glob"},
	{"{\"egress\": {\"default\": \"maybe\"}}", "egress.default: \"maybe\" is not \"deny\" or \"allow\""},
	{"{\"egress\": {\"allow_private\": [\"10.0.0.1/8\"]}}", "egress.allow_private[0]: 10.0.0.1/8 has bits set beyond /8"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"value\": \"v\"}, \"inject\": {\"type\": \"bearer\"}, "
	    "\"hosts\": []}}}", "credentials.c.hosts: must list at least one host"},
	{"{\"credentials\": {\"c\": {\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c: needs \"secret\""},
	{"{\"credentials\": {\"bad name\": {" CRED "}}}", "credentials: \"bad name\" is not a valid name"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"value\": \"v\", \"env\": \"X\"}, \"inject\": "
	    "{\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret: needs exactly one of \"env\", \"file\", \"value\""},
	{"{\"credentials\": {\"c\": {\"secret\": {\"env\": \"SG_TEST_UNSET_VAR\"}, \"inject\": "
	    "{\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret.env: environment variable \"SG_TEST_UNSET_VAR\" is not set"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"file\": \"open.secret\"}, \"inject\": "
	    "{\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}", "readable by group or others (mode 644)"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"file\": \"missing.secret\"}, \"inject\": "
	    "{\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}", "missing.secret: No such file"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"exec\": [\"sg-no-such-helper\"]}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret.exec[0]: \"sg-no-such-helper\" is not found in"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"exec\": [\"./hdr.secret\"]}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret.exec[0]: \"./hdr.secret\" is not an executable file"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"exec\": []}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret.exec: needs a program"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"exec\": [\"sh\"], \"ttl\": \"0s\"}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret.ttl: \"0s\" is out of range"},
	{"{\"credentials\": {\"c\": {\"secret\": {\"exec\": [\"sh\"], \"ttl\": \"1m\", "
	    "\"timeout\": \"2m\"}, \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret: \"timeout\" must be shorter than \"ttl\""},
	{"{\"credentials\": {\"c\": {\"secret\": {\"exec\": [\"sh\"], \"env\": \"X\"}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret: unknown key \"env\""},
	{"{\"credentials\": {\"c\": {\"secret\": {\"exec\": \"sh -c x\"}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}",
	    "credentials.c.secret.exec: expected an array"},
	{INJECT("{\"type\": \"header\", \"name\": \"x-key\"}"), "credentials.c.inject: inject type \"header\" needs \"format\""},
	{INJECT("{\"type\": \"header\", \"format\": \"%s\"}"), "inject type \"header\" needs \"name\""},
	{INJECT("{\"type\": \"header\", \"name\": \"x\", \"format\": \"Key\"}"),
	    "credentials.c.inject.format: \"Key\" must contain exactly one %s"},
	{INJECT("{\"type\": \"header\", \"name\": \"x\", \"format\": \"%s %s\"}"), "must contain exactly one %s"},
	{INJECT("{\"type\": \"hmac\", \"format\": \"%d\"}"), "must contain exactly one %s"},
	{INJECT("{\"type\": \"header\", \"name\": \"x y\", \"format\": \"%s\"}"), "inject.name: \"x y\" is not a header name"},
	{INJECT("{\"type\": \"bearr\"}"), "inject.type: unknown inject type \"bearr\" (one of bearer, header, "
	    "basic, query, hmac, body, aws_sigv4); did you mean \"bearer\"?"},
	{INJECT("{\"name\": \"x\"}"), "credentials.c.inject: needs \"type\""},
	{INJECT("{\"type\": \"basic\"}"), "inject type \"basic\" needs \"username\""},
	{INJECT("{\"type\": \"basic\", \"username\": \"a:b\"}"), "is not a Basic user name"},
	{INJECT("{\"type\": \"query\"}"), "inject type \"query\" needs \"param\""},
	{INJECT("{\"type\": \"bearer\", \"username\": \"bob\"}"),
	    "credentials.c.inject.username: not used by inject type \"bearer\""},
	{SANDBOX("{\"credentials\": []}"), "sandboxes.s: needs \"addresses\""},
	{SANDBOX("{\"addresses\": []}"), "sandboxes.s.addresses: must list at least one address"},
	{SANDBOX("{\"addresses\": [\"10.0.2.300\"]}"), "sandboxes.s.addresses[0]: \"10.0.2.300\" is not an IP address"},
	{SANDBOX("{\"addresses\": [\"10.0.2.1/24\"]}"), "10.0.2.1/24 has bits set beyond /24; did you mean 10.0.2.0/24?"},
	{SANDBOX("{\"addresses\": [\"fd00::/200\"]}"), "prefix must be a number 0..128"},
	{SANDBOX("{\"addresses\": [\"10.0.2.2\"], \"credentials\": [\"opena\"]}"),
	    "sandboxes.s.credentials[0]: unknown credential \"opena\""},
	{SANDBOX("{\"addresses\": [\"10.0.2.2\"], \"token\": {\"file\": \"open.secret\"}}"), "readable by group or others"},
	{"{\"sandboxes\": {\"a\": {\"addresses\": [\"10.0.2.0/24\"]}, \"b\": {\"addresses\": [\"fd00::1\", "
	    "\"10.0.2.15\"]}}}", "sandboxes.b.addresses: 10.0.2.15/32 of sandbox \"b\" overlaps 10.0.2.0/24 of sandbox \"a\""},
	{"{\"listen\": {\"proxy\": \"127.0.0.1\"}}", "listen.proxy: \"127.0.0.1\" is not host:port"},
	{"{\"listen\": {\"metadata\": \"127.0.0.1:65536\"}}", "listen.metadata: \"127.0.0.1:65536\" is not host:port"},
	{"{\"listen\": {\"admin\": \"::1:9091\"}}", "listen.admin: \"::1:9091\" is not host:port"},
	{"{\"listen\": {\"transparent\": \"169.254.10.1\"}}", "listen.transparent: \"169.254.10.1\" is not host:port"},
	{"{\"listen\": {\"transparent\": 3129}}", "listen.transparent"},
	{"{\"listen\": {\"proxy\": null, \"transparent\": \"127.0.0.1:0\"}}", "listen.transparent: needs listen.proxy"},
	{"{\"listen\": {\"proxy\": 3128}}", "listen.proxy: expected a string, got a number"},
	{"{\"upstream\": {\"resolve\": {\"api.x.test\": \"999.1.1.1\"}}}",
	    "upstream.resolve.api.x.test: \"999.1.1.1\" is not an IP address"},
	{"{\"upstream\": {\"resolve\": {\"API.x.test\": \"10.1.1.1\"}}}", "\"API.x.test\" is not a lower-case DNS name"},
	{"{\"keys\": {\"retired_key_ids\": [\"xyz\"]}}", "keys.retired_key_ids[0]: \"xyz\" is not a key id"},
	{"{\"keys\": {\"seal_key\": \"\"}}", "keys.seal_key: must not be empty"},
	{"{\"admin\": {\"token\": {\"env\": \"X\"}}}", "admin.token: unknown key \"env\""},
	{"{\"audit\": {\"path\": 1}}", "audit.path: expected a string, got a number"},
	{"{\"egress\": {\"intercept\": \"some\"}}", "egress.intercept: \"some\" is not \"credentials\" or \"all\""},
	{"{\"sandbox_templates\": {\"job\": {\"credentials\": [\"nope\"]}}}", "sandbox_templates.job.credentials[0]: unknown credential \"nope\""},
	{"{\"sandbox_templates\": {\"job\": {\"tll\": \"1h\"}}}", "sandbox_templates.job: unknown key \"tll\" (did you mean \"ttl\"?)"},
	{"{\"sandbox_templates\": {\"job\": {\"ttl\": \"30d\"}}}", "sandbox_templates.job.ttl: \"30d\" is out of range"},
	{"{\"sandbox_templates\": {\"job\": {\"max_ttl\": \"0s\"}}}", "sandbox_templates.job.max_ttl: \"0s\" is out of range"},
	{"{\"sandbox_templates\": {\"job\": {\"ttl\": 5}}}", "sandbox_templates.job.ttl: expected a string, got a number"},
	{"{\"sandbox_templates\": {\"job\": {\"token_required\": \"yes\"}}}", "sandbox_templates.job.token_required: expected true or false"},
	{"{\"sandbox_templates\": {\"bad name\": {}}}", "sandbox_templates: \"bad name\" is not a valid name"},
	{"{\"sandbox_templates\": []}", "sandbox_templates: expected an object"},
	{"{\"state\": {\"dir\": 5}}", "state.dir: expected a string"},
	{"{\"state\": {\"folder\": \"x\"}}", "state: unknown key \"folder\""},
	{"{\"metadata\": {\"url\": \"ftp://x\"}}", "metadata.url: \"ftp://x\" is not an http:// or https:// URL"},
	{"{\"listen\": {\"metadata_aws\": \"169.254.170.2\"}}", "listen.metadata_aws: \"169.254.170.2\" is not host:port"},
	/* aws_sigv4 and its aws block */
	{CREDS(", \"aws\": {\"services\": [\"s3\"]}"),
	    "credentials.openai.aws: only used by inject type \"aws_sigv4\" (this credential's is \"bearer\")"},
	{INJECT("{\"type\": \"aws_sigv4\"}"), "credentials.c: inject type \"aws_sigv4\" needs \"aws\""},
	{INJECT("{\"type\": \"aws_sigv4\", \"name\": \"x\"}"), "inject.name: not used by inject type \"aws_sigv4\""},
	{AWS(""), "credentials.a.aws: needs \"services\""},
	{AWS(", \"services\": []"), "credentials.a.aws.services: must list at least one service"},
	{AWS(", \"services\": [\"S3\"]"), "credentials.a.aws.services[0]: \"S3\" is not a service name"},
	{AWS(", \"services\": [\"s3\", \"sts_x\"]"), "aws.services[1]: \"sts_x\" is not a service name"},
	{AWS(", \"services\": [\"-s3\"]"), "aws.services[0]: \"-s3\" is not a service name"},
	{AWS(", \"services\": [\"s3\"], \"servics\": []"), "credentials.a.aws: unknown key \"servics\" (did you mean \"services\"?)"},
	{AWS(", \"services\": [\"s3\"], \"regions\": [\"us-east\"]"), "aws.regions[0]: \"us-east\" is not a region"},
	{AWS(", \"services\": [\"s3\"], \"regions\": [\"US-EAST-1\"]"), "aws.regions[0]: \"US-EAST-1\" is not a region"},
	{AWS(", \"services\": [\"s3\"], \"regions\": [\"us--east-1\"]"), "aws.regions[0]: \"us--east-1\" is not a region"},
	{AWS(", \"services\": [\"s3\"], \"regions\": [\"us-east-100\"]"), "aws.regions[0]: \"us-east-100\" is not a region"},
	{AWS(", \"services\": [\"s3\"], \"regions\": [\"u-east-1\"]"), "aws.regions[0]: \"u-east-1\" is not a region"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"ab\"]"), "aws.buckets[0]: \"ab\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"My-Bucket\"]"), "aws.buckets[0]: \"My-Bucket\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"a..b\"]"), "aws.buckets[0]: \"a..b\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"192.168.5.4\"]"), "aws.buckets[0]: \"192.168.5.4\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"-abc\"]"), "aws.buckets[0]: \"-abc\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"xn--abc\"]"), "aws.buckets[0]: \"xn--abc\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"abc-s3alias\"]"), "aws.buckets[0]: \"abc-s3alias\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"a_b_c\"]"), "aws.buckets[0]: \"a_b_c\" is not an S3 bucket name"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"b" "012345678901234567890123456789012345678901234567890123456789012\"]"),
	    "aws.buckets[0]: \"b0123456789"},
	{AWS(", \"services\": [\"sts\"], \"buckets\": [\"my-bucket\"]"),
	    "credentials.a.aws: buckets and prefixes restrict S3: list \"s3\" in services"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"my-bucket\"], \"prefixes\": [\"other-bucket/x/\"]"),
	    "credentials.a.aws.prefixes[0]: \"other-bucket/x/\" names no bucket listed in buckets"},
	{AWS(", \"services\": [\"s3\"], \"prefixes\": [\"my-bucket/x/\"]"),
	    "credentials.a.aws.prefixes[0]: \"my-bucket/x/\" names no bucket listed in buckets"},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"my-bucket\"], \"prefixes\": [\"my-bucket\"]"),
	    "aws.prefixes[0]: \"my-bucket\" is not \"bucket/key-prefix\""},
	{AWS(", \"services\": [\"s3\"], \"buckets\": [\"my-bucket\"], \"prefixes\": [\"my-bucket/a\\tb\"]"),
	    "aws.prefixes[0]: \"my-bucket/a\\x09b\" is not \"bucket/key-prefix\""},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {}"), "credentials.a.aws.assume_role: needs \"role_arn\""},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::12345:role/x\"}"),
	    "aws.assume_role.role_arn: \"arn:aws:iam::12345:role/x\" is not an IAM role ARN"},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:user/x\"}"),
	    "is not an IAM role ARN"},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:role/\"}"),
	    "is not an IAM role ARN"},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:role/x\", \"duration\": \"10m\"}"),
	    "aws.assume_role.duration: \"10m\" is out of range (15m..12h"},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:role/x\", \"duration\": \"12h1s\"}"),
	    "aws.assume_role.duration: \"12h1s\" is out of range (15m..12h"},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:role/x\", \"duration\": \"1x\"}"),
	    "aws.assume_role.duration: \"1x\" is not a duration"},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:role/x\", \"external_id\": \"a b\"}"),
	    "aws.assume_role.external_id: is not an external id"},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:role/x\", \"role\": \"y\"}"),
	    "aws.assume_role: unknown key \"role\""},
	{AWS(", \"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"arn:aws-iso:iam::123456789012:role/x\"}"),
	    "credentials.a.aws.assume_role: role_arn: sealgate reaches STS in the aws, aws-cn and aws-us-gov partitions only"},
	{AWS(", \"services\": [\"s3\"], \"session_token\": {\"env\": \"SG_TEST_UNSET_VAR\"}"),
	    "aws.session_token.env: environment variable \"SG_TEST_UNSET_VAR\" is not set"},
	{AWS(", \"services\": [\"s3\"], \"session_token\": {\"value\": \"\"}"),
	    "aws.session_token.value: the secret is empty"},
	{"{\"credentials\": {\"a\": {\"secret\": {\"value\": \"s\"}, \"inject\": {\"type\": \"aws_sigv4\"}, "
	    "\"hosts\": [\"*.amazonaws.com\"], \"aws\": {\"services\": [\"s3\"]}}}}",
	    "credentials.a.aws: needs \"access_key_id\""},
	{"{\"credentials\": {\"a\": {\"secret\": {\"value\": \"s\"}, \"inject\": {\"type\": \"aws_sigv4\"}, "
	    "\"hosts\": [\"*.amazonaws.com\"], \"aws\": {\"access_key_id\": {\"value\": \"AKIA-short\"}, "
	    "\"services\": [\"s3\"]}}}}", "credentials.a.aws.access_key_id: is not an AWS access key id"},
	{"{\"credentials\": {\"a\": {\"secret\": {\"value\": \"s\"}, \"inject\": {\"type\": \"aws_sigv4\"}, "
	    "\"hosts\": [\"*.amazonaws.com\"], \"aws\": []}}}", "credentials.a.aws: expected an object, got an array"},
	{GIT("{\"push\": {\"refs\": [\"refs/heads/a/*\"], \"force\": \"no\"}}"),
	    "main.json: credentials.gh.git.push.force: expected true or false, got a string"},
	{GIT("{\"push\": {\"refs\": [\"heads/a/*\"]}}"),
	    "credentials.gh.git.push.refs[0]: \"heads/a/*\" is not a push-ref pattern"},
	{GIT("{\"push\": {\"refs\": [\"refs/heads/***\"]}}"),
	    "credentials.gh.git.push.refs[0]: \"refs/heads/***\" is not a push-ref pattern"},
	{GIT("{\"push\": {\"refs\": []}}"), "credentials.gh.git.push.refs: must list at least one"},
	{GIT("{\"push\": {\"delete\": true}}"), "credentials.gh.git.push: needs \"refs\""},
	{GIT("{\"push\": {\"refs\": [\"refs/heads/x\"], \"delete\": 1}}"),
	    "credentials.gh.git.push.delete: expected true or false"},
	{GIT("{\"push\": {\"refs\": [\"refs/heads/x\"], \"forse\": true}}"),
	    "credentials.gh.git.push: unknown key \"forse\" (did you mean \"force\"?)"},
	{GIT("{\"pull\": {}}"), "credentials.gh.git: unknown key \"pull\""},
	{GIT("[]"), "credentials.gh.git: expected an object, got an array"},
};

static void
test_ttl_sandbox(void **state)
{
	static const char json[] =
	    "{\"credentials\": {"
	    "  \"life\": {\"secret\": {\"value\": \"x\"}, \"inject\": {\"type\": \"bearer\"},"
	    "    \"hosts\": [\"a.test\"], \"ttl\": \"sandbox\", \"max_ttl\": \"10d\"},"
	    "  \"dflt\": {\"secret\": {\"value\": \"y\"}, \"inject\": {\"type\": \"bearer\"},"
	    "    \"hosts\": [\"b.test\"], \"ttl\": \"sandbox\"},"
	    "  \"short\": {\"secret\": {\"value\": \"z\"}, \"inject\": {\"type\": \"bearer\"},"
	    "    \"hosts\": [\"c.test\"], \"ttl\": \"1s\", \"max_ttl\": \"1s\"}}}";
	policy_errors_t errs;
	const policy_credential_t *c;
	policy_t *p;

	(void)state;
	p = load(json, &errs);
	dump_errors(&errs);
	assert_non_null(p);
	c = policy_credential_find(p, "life");
	assert_true(c->ttl_sandbox);
	assert_int_equal(c->max_ttl_s, 10 * 24 * 3600);
	assert_int_equal(c->ttl_s, c->max_ttl_s);	/* its wall-clock bound, for caps */
	c = policy_credential_find(p, "dflt");
	assert_true(c->ttl_sandbox);
	assert_int_equal(c->max_ttl_s, SG_HANDLE_MAX_TTL_DEFAULT_S);
	c = policy_credential_find(p, "short");
	assert_false(c->ttl_sandbox);
	assert_int_equal(c->ttl_s, 1);
	assert_int_equal(c->max_ttl_s, 1);
	policy_unref(p);
}

static void
test_templates(void **state)
{
	static const char json[] =
	    "{\"credentials\": {\"a\": {\"secret\": {\"value\": \"x\"}, \"inject\": {\"type\": "
	    "\"bearer\"}, \"hosts\": [\"a.test\"]}},"
	    " \"sandbox_templates\": {\"job\": {\"credentials\": [\"a\"], \"ttl\": \"10m\","
	    "   \"rate\": {\"requests\": 3, \"per\": \"1s\"}, \"token_required\": true},"
	    "  \"empty\": {}, \"life\": {\"ttl\": \"sandbox\", \"max_ttl\": \"7d\"}},"
	    " \"state\": {\"dir\": \"state\"}, \"metadata\": {\"url\": \"http://md.test/v1/handles\"}}";
	policy_errors_t errs;
	const policy_template_t *t;
	policy_t *p;

	(void)state;
	p = load(json, &errs);
	dump_errors(&errs);
	assert_non_null(p);
	assert_int_equal(p->ntemplates, 3);
	t = policy_template_find(p, "life");
	assert_true(t->ttl_sandbox);
	assert_int_equal(t->ttl_s, 0);
	assert_int_equal(t->max_ttl_s, 7 * 24 * 3600);
	t = policy_template_find(p, "job");
	assert_non_null(t);
	assert_int_equal(t->ttl_s, 600);
	assert_false(t->ttl_sandbox);
	assert_int_equal(t->max_ttl_s, 0);
	assert_true(t->token_required);
	assert_int_equal(t->rate.requests, 3);
	assert_true(policy_template_grants(t, "a"));
	assert_false(policy_template_grants(t, "b"));
	t = policy_template_find(p, "empty");
	assert_int_equal(t->ttl_s, 0);
	assert_false(t->token_required);
	assert_null(policy_template_find(p, "nope"));
	assert_non_null(strstr(p->state_dir, "/state"));
	assert_string_equal(p->metadata_url, "http://md.test/v1/handles");
	policy_unref(p);
	/* defaults: state next to the seal key, the IMDS address */
	p = load("{}", &errs);
	assert_non_null(p);
	assert_string_equal(p->metadata_url, SG_POLICY_METADATA_URL);
	assert_non_null(p->state_dir);
	assert_non_null(strstr(p->keys.seal_key, p->state_dir));
	policy_unref(p);
}

/* File and exec secrets get a live cell (a file's holds the value read, an exec's is
 * empty: policy load runs no command); env and value secrets none. */
static void
test_rotating_sources(void **state)
{
	static const char json[] =
	    "{\"credentials\": {"
	    "\"f\": {\"secret\": {\"file\": \"hdr.secret\"}, \"inject\": {\"type\": "
	    "\"bearer\"}, \"hosts\": [\"a.test\"]},"
	    "\"x\": {\"secret\": {\"exec\": [\"sh\", \"-c\", \"echo t\"], \"ttl\": \"2m\"}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]},"
	    "\"v\": {\"secret\": {\"value\": \"inline-secret\"}, \"inject\": {\"type\": "
	    "\"bearer\"}, \"hosts\": [\"a.test\"]}}}";
	const policy_credential_t *f, *x, *v;
	policy_errors_t errs;
	policy_t *p;
	secval_t *sv;

	(void)state;
	p = load(json, &errs);
	dump_errors(&errs);
	assert_non_null(p);
	f = policy_credential_find(p, "f");
	x = policy_credential_find(p, "x");
	v = policy_credential_find(p, "v");
	assert_int_equal(f->secret_source, SECRET_FILE);
	assert_non_null(f->live);
	assert_string_equal(f->secret_file, tmp_path("hdr.secret"));
	sv = snapshot_acquire(f->live);
	assert_non_null(sv);
	assert_string_equal(sv->value, "hdr-secret");
	assert_int_equal(sv->expires_ms, 0);
	secval_unref(sv);
	assert_int_equal(x->secret_source, SECRET_EXEC);
	assert_null(x->secret);
	assert_non_null(x->live);
	assert_null(snapshot_acquire(x->live));
	assert_int_equal(x->exec.argv.n, 3);
	assert_string_equal(x->exec.argv.v[0], "/usr/bin/sh");
	assert_string_equal(x->exec.argv.v[2], "echo t");
	assert_int_equal(x->exec.ttl_ms, 120000);
	assert_int_equal(x->exec.timeout_ms, SG_SECRET_EXEC_TIMEOUT_DEFAULT_S * 1000);
	assert_null(v->live);
	policy_unref(p);
	policy_errors_free(&errs);
}

static void
test_git_push_block(void **state)
{
	static const char json[] = GIT("{\"push\": {\"refs\": [\"refs/heads/agent/*\", "
	    "\"refs/tags/agent-**\"], \"force\": true, \"delete\": true}}");
	static const char plain[] = GIT("{\"push\": {\"refs\": [\"refs/heads/x\"]}}");
	policy_errors_t errs;
	const policy_credential_t *c;
	policy_t *p;

	(void)state;
	p = load(json, &errs);
	dump_errors(&errs);
	assert_non_null(p);
	c = policy_credential_find(p, "gh");
	assert_non_null(c->git_push);
	assert_int_equal(c->git_push->refs.n, 2);
	assert_string_equal(c->git_push->refs.v[1], "refs/tags/agent-**");
	assert_true(c->git_push->allow_delete);
	assert_true(c->git_push->allow_force);
	policy_unref(p);
	p = load(plain, &errs);
	assert_non_null(p);
	assert_false(policy_credential_find(p, "gh")->git_push->allow_delete);
	assert_false(policy_credential_find(p, "gh")->git_push->allow_force);
	policy_unref(p);
}

static void
test_bad_policies(void **state)
{
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	assert_true(SG_ARRAY_LEN(bad_cases) >= 30);
	for (size_t i = 0; i < SG_ARRAY_LEN(bad_cases); i++) {
		p = load(bad_cases[i].json, &errs);
		if (p != NULL || !errors_contain(&errs, bad_cases[i].expect)) {
			fprintf(stderr, "case %zu: %s\n  want: %s\n", i, bad_cases[i].json,
			    bad_cases[i].expect);
			dump_errors(&errs);
		}
		assert_null(p);
		assert_true(errs.n > 0);
		assert_true(errors_contain(&errs, bad_cases[i].expect));
		policy_errors_free(&errs);
		assert_int_equal(errs.n, 0);
	}
}

static void
test_errors_all_reported(void **state)
{
	static const char json[] =
	    "{\"listen\": {\"proxy\": \"nope\"}, \"limits\": {\"workers\": -1},\n"
	    " \"credentials\": {\"c\": {\"secret\": {\"value\": \"hunter2-secret\"},\n"
	    "   \"inject\": {\"type\": \"header\"}, \"hosts\": [\"a.test\"], \"ttl\": \"1x\"}}}";
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	p = load(json, &errs);
	assert_null(p);
	assert_int_equal(errs.n, 5);
	assert_true(errors_contain(&errs, "listen.proxy: \"nope\""));
	assert_true(errors_contain(&errs, "limits.workers: -1 is out of range"));
	assert_true(errors_contain(&errs, "inject type \"header\" needs \"name\""));
	assert_true(errors_contain(&errs, "inject type \"header\" needs \"format\""));
	assert_true(errors_contain(&errs, "credentials.c.ttl: \"1x\" is neither a duration"));
	assert_false(errors_contain(&errs, "hunter2"));
	policy_errors_free(&errs);
}

static void
test_errors_capped(void **state)
{
	size_t n = SG_POLICY_MAX_ERRORS + 20, len = 64 + n * 8, o;
	policy_errors_t errs;
	char *json = malloc(len);
	policy_t *p;

	(void)state;
	assert_non_null(json);
	o = (size_t)snprintf(json, len, "{\"egress\": {\"allow_hosts\": [");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(json + o, len - o, "%s\"B%zu\"", i ? "," : "", i % 10);
	snprintf(json + o, len - o, "]}}");
	p = load(json, &errs);
	assert_null(p);
	assert_int_equal(errs.n, SG_POLICY_MAX_ERRORS + 1);
	assert_string_equal(errs.msg[SG_POLICY_MAX_ERRORS], "\u2026 and 20 more");
	policy_errors_free(&errs);
	free(json);
}

/* The aws_sigv4 example of docs/policy.md: every key of the aws block. */
static const char aws_json[] =
    "{\"credentials\": {\n"
    " \"aws-dev\": {\n"
    "  \"secret\": {\"env\": \"SG_TEST_AWS_SECRET\"},\n"
    "  \"inject\": {\"type\": \"aws_sigv4\"},\n"
    "  \"aws\": {\n"
    "   \"access_key_id\": {\"env\": \"SG_TEST_AWS_AKID\"},\n"
    "   \"session_token\": {\"file\": \"aws.session\"},\n"
    "   \"assume_role\": {\"role_arn\": \"arn:aws:iam::123456789012:role/x\",\n"
    "                   \"external_id\": \"e-1\", \"duration\": \"1h30m\"},\n"
    "   \"services\": [\"s3\", \"sts\", \"sqs\"],\n"
    "   \"regions\": [\"us-east-1\", \"us-gov-west-1\"],\n"
    "   \"buckets\": [\"my-bucket\", \"logs.example.com\"],\n"
    "   \"prefixes\": [\"my-bucket/uploads/\", \"my-bucket/\"]\n"
    "  },\n"
    "  \"hosts\": [\"*.amazonaws.com\"]\n"
    " },\n"
    " \"aws-min\": {\"secret\": {\"value\": \"min-SECRET\"}, \"inject\": {\"type\": \"aws_sigv4\"},\n"
    "  \"aws\": {\"access_key_id\": {\"value\": \"ASIAEXAMPLEEXAMPLE01\"}, \"services\": [\"sts\"],\n"
    "   \"assume_role\": {\"role_arn\": \"arn:aws-us-gov:iam::000000000000:role/p/a/t/h/r+=,.@_-\"}},\n"
    "  \"hosts\": [\"sts.amazonaws.com\"]},\n"
    " \"plain\": {\"secret\": {\"value\": \"v\"}, \"inject\": {\"type\": \"bearer\"},\n"
    "  \"hosts\": [\"a.test\"]}\n"
    "},\n"
    " \"listen\": {\"metadata_aws\": \"169.254.170.2:80\"}}\n";


/* A credential "m" with the given "mint" block (and inject type bearer unless given). */
#define MINT_CRED(inject, mint) "{\"credentials\": {\"m\": {\"inject\": " inject ", " \
	"\"hosts\": [\"api.test\"], \"mint\": " mint "}}}"
#define MINT(mint) MINT_CRED("{\"type\": \"bearer\"}", mint)

static const struct {
	const char *json, *expect;
} mint_bad[] = {
	{MINT("{\"type\": \"client_credentials\", \"client_id\": \"a\", \"client_secret\": "
	    "{\"value\": \"s\"}}"), "main.json: credentials.m.mint: mint type "
	    "\"client_credentials\" needs \"token_url\""},
	{MINT("{\"type\": \"client_credentials\", \"token_url\": \"http://a.test/t\", "
	    "\"client_id\": \"a\", \"client_secret\": {\"value\": \"s\"}}"),
	    "main.json: credentials.m.mint.token_url: \"http://a.test/t\" is not an https:// URL"},
	{MINT("{\"type\": \"client_credentials\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\"}"), "main.json: credentials.m.mint: mint type "
	    "\"client_credentials\" needs \"client_secret\""},
	{MINT("{\"type\": \"password\"}"), "main.json: credentials.m.mint.type: \"password\" "
	    "is not one of the allowed values"},
	{MINT("{\"type\": \"client_credentials\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\", \"client_secret\": {\"value\": \"s\"}, \"client_auth\": "
	    "\"jwt\"}"), "main.json: credentials.m.mint.client_auth: \"jwt\" is not \"basic\" "
	    "or \"body\""},
	{MINT("{\"type\": \"github_app\", \"app_id\": \"1\", \"private_key\": {\"value\": "
	    "\"k\"}, \"installation_id\": \"x1\"}"), "main.json: credentials.m.mint."
	    "installation_id: must be a positive number"},
	{MINT("{\"type\": \"github_app\", \"private_key\": {\"value\": \"k\"}, "
	    "\"installation_id\": 1}"), "main.json: credentials.m.mint: mint type "
	    "\"github_app\" needs one of \"app_id\" and \"client_id\""},
	{MINT("{\"type\": \"jwt_bearer\", \"key\": {\"value\": \"{}\"}, \"scope\": \"s\"}"),
	    "main.json: credentials.m.mint.key: is not a service-account key"},
	{MINT("{\"type\": \"refresh_token\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\", \"refresh_token\": {\"value\": \"r\"}, \"scope\": \"a\\nb\"}"),
	    "main.json: credentials.m.mint.scope: must be 1 to"},
	{MINT_CRED("{\"type\": \"hmac\"}", "{\"type\": \"client_credentials\", \"token_url\": "
	    "\"https://a.test/t\", \"client_id\": \"a\", \"client_secret\": {\"value\": \"s\"}}"),
	    "main.json: credentials.m.mint: works with inject types bearer, header, basic and "
	    "query"},
	{"{\"credentials\": {\"m\": {\"secret\": {\"value\": \"v\"}, \"inject\": {\"type\": "
	    "\"bearer\"}, \"hosts\": [\"api.test\"], \"mint\": {\"type\": \"client_credentials\", "
	    "\"token_url\": \"https://a.test/t\", \"client_id\": \"a\", \"client_secret\": "
	    "{\"value\": \"s\"}}}}}", "main.json: credentials.m: has both \"secret\" and \"mint\""},
	{MINT("{\"type\": \"token_exchange\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\"}"), "main.json: credentials.m.mint: mint type "
	    "\"token_exchange\" needs \"subject_token\""},
	{MINT("{\"type\": \"client_credentials\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\", \"client_secret\": {\"value\": \"s\"}, \"audiences\": "
	    "[\"api://a\", \"a\\nb\"]}"), "is not an audience (1 to 1024 printable characters)"},
	{MINT("{\"type\": \"github_app\", \"app_id\": \"1\", \"private_key\": {\"value\": "
	    "\"k\"}, \"installation_id\": 1, \"audiences\": [\"a\"]}"), "main.json: "
	    "credentials.m.mint: unknown key \"audiences\""},
	{MINT("{\"type\": \"client_credentials\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\", \"client_secret\": {\"value\": \"s\"}, \"private_key\": "
	    "{\"value\": \"k\"}}"), "main.json: credentials.m.mint: unknown key \"private_key\""},
};

static void
test_mint_bad(void **state)
{
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(mint_bad); i++) {
		p = load(mint_bad[i].json, &errs);
		if (p != NULL || !errors_contain(&errs, mint_bad[i].expect)) {
			fprintf(stderr, "case %zu: want: %s\n", i, mint_bad[i].expect);
			dump_errors(&errs);
		}
		assert_null(p);
		assert_true(errors_contain(&errs, mint_bad[i].expect));
		policy_errors_free(&errs);
	}
}

/* A minted credential's one-line root secret may rotate: client_secret from a file (read
 * now, a live cell holding it) or a command (an empty cell); refresh_token keeps its
 * client_secret static (no exec). */
static void
test_mint_rotating_root(void **state)
{
	static const char json[] = "{\"credentials\": {"
	    "\"mf\": {\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"], \"mint\": "
	    "{\"type\": \"client_credentials\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\", \"client_secret\": {\"file\": \"hdr.secret\"}}},"
	    "\"mx\": {\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"], \"mint\": "
	    "{\"type\": \"token_exchange\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\", \"subject_token\": {\"exec\": [\"sh\", \"-c\", "
	    "\"echo t\"], \"ttl\": \"2m\"}}}}}";
	const policy_credential_t *f, *x;
	policy_errors_t errs;
	policy_t *p;
	secval_t *sv;

	(void)state;
	p = load(json, &errs);
	dump_errors(&errs);
	assert_non_null(p);
	f = policy_credential_find(p, "mf");
	x = policy_credential_find(p, "mx");
	assert_int_equal(f->secret_source, SECRET_FILE);
	assert_string_equal(f->secret_file, tmp_path("hdr.secret"));
	assert_string_equal(f->mint->secret, "hdr-secret");
	assert_non_null(f->live);
	sv = snapshot_acquire(f->live);
	assert_non_null(sv);
	assert_string_equal(sv->value, "hdr-secret");
	secval_unref(sv);
	assert_int_equal(x->secret_source, SECRET_EXEC);
	assert_null(x->mint->secret);
	assert_non_null(x->live);
	assert_null(snapshot_acquire(x->live));
	assert_int_equal(x->exec.ttl_ms, 120000);
	policy_unref(p);
	policy_errors_free(&errs);
	p = load(MINT("{\"type\": \"refresh_token\", \"token_url\": \"https://a.test/t\", "
	    "\"client_id\": \"a\", \"refresh_token\": {\"value\": \"r\"}, \"client_secret\": "
	    "{\"exec\": [\"sh\"]}}"), &errs);
	assert_null(p);
	assert_true(errors_contain(&errs, "credentials.m.mint.client_secret"));
	policy_errors_free(&errs);
}

static void
test_mint_good(void **state)
{
	static const char json[] = "{\"credentials\": {"
	    "\"cc\": {\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.test\"], \"mint\": "
	    "{\"type\": \"client_credentials\", \"token_url\": \"https://Auth.test:8443/oauth/"
	    "token\", \"client_id\": \"app\", \"client_secret\": {\"value\": \"cs-1\"}, "
	    "\"client_auth\": \"body\", \"scope\": \"read write\", \"audience\": \"api\", "
	    "\"audiences\": [\"api://a\", \"api://b\"], "
	    "\"params\": {\"tenant\": \"t1\"}}},"
	    "\"gh\": {\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.github.com\"], "
	    "\"mint\": {\"type\": \"github_app\", \"app_id\": \"123\", \"private_key\": "
	    "{\"value\": \"app-key-placeholder\\nAAAA\\nnot-a-key\"}, "
	    "\"installation_id\": 42}},"
	    "\"gcp\": {\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"x.googleapis.com\"], "
	    "\"mint\": {\"type\": \"jwt_bearer\", \"scope\": \"s\", \"key\": {\"value\": "
	    "\"{\\\"client_email\\\": \\\"sa@p.iam\\\", \\\"private_key\\\": \\\"PEM\\\", "
	    "\\\"token_uri\\\": \\\"https://oauth2.googleapis.com/token\\\"}\"}}}}}";
	policy_errors_t errs;
	const policy_credential_t *c;
	policy_t *p;

	(void)state;
	p = load(json, &errs);
	if (p == NULL)
		dump_errors(&errs);
	assert_non_null(p);
	c = policy_credential_find(p, "cc");
	assert_null(c->secret);
	assert_int_equal(c->mint->type, MINT_CLIENT_CREDENTIALS);
	assert_string_equal(c->mint->host, "auth.test");
	assert_int_equal(c->mint->port, 8443);
	assert_string_equal(c->mint->path, "/oauth/token");
	assert_string_equal(c->mint->secret, "cs-1");
	assert_true(c->mint->auth_body);
	assert_string_equal(c->mint->param_names.v[0], "tenant");
	assert_int_equal(c->mint->audiences.n, 2);
	assert_string_equal(c->mint->audiences.v[1], "api://b");
	assert_int_equal(strlen(c->mint->digest), 32);
	c = policy_credential_find(p, "gh");
	assert_string_equal(c->mint->client_id, "123");
	assert_string_equal(c->mint->host, "api.github.com");
	assert_string_equal(c->mint->path, "/app/installations/42/access_tokens");
	assert_non_null(strstr(c->mint->secret, "\nAAAA\n"));	/* PEM lines kept */
	c = policy_credential_find(p, "gcp");
	assert_string_equal(c->mint->client_id, "sa@p.iam");
	assert_string_equal(c->mint->secret, "PEM");		/* the key's private_key */
	assert_string_equal(c->mint->host, "oauth2.googleapis.com");
	assert_string_equal(policy_mint_name(c->mint->type), "jwt_bearer");
	policy_unref(p);
	policy_errors_free(&errs);
}

static void
test_aws_good(void **state)
{
	policy_errors_t errs;
	const policy_credential_t *c;
	const policy_aws_t *a;
	policy_t *p;

	(void)state;
	setenv("SG_TEST_AWS_SECRET", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1);
	setenv("SG_TEST_AWS_AKID", "AKIAIOSFODNN7EXAMPLE", 1);
	write_file("aws.session", "session-TOKEN-value\n", 0600);
	p = load(aws_json, &errs);
	if (p == NULL)
		dump_errors(&errs);
	assert_non_null(p);
	c = policy_credential_find(p, "aws-dev");
	assert_int_equal(c->inject.type, INJECT_AWS_SIGV4);
	assert_string_equal(policy_inject_name(c->inject.type), "aws_sigv4");
	assert_string_equal(c->secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	a = c->aws;
	assert_non_null(a);
	assert_string_equal(a->access_key_id, "AKIAIOSFODNN7EXAMPLE");
	assert_int_equal(a->access_key_id_len, 20);
	assert_string_equal(a->session_token, "session-TOKEN-value");
	assert_int_equal(a->session_token_len, strlen("session-TOKEN-value"));
	assert_int_equal(a->nservices, 3);
	assert_string_equal(a->services[2], "sqs");
	assert_int_equal(a->nregions, 2);
	assert_string_equal(a->regions[1], "us-gov-west-1");
	assert_int_equal(a->nbuckets, 2);
	assert_string_equal(a->buckets[1], "logs.example.com");
	assert_int_equal(a->nprefixes, 2);
	assert_string_equal(a->prefixes[0], "my-bucket/uploads/");
	assert_true(a->assume_role.set);
	assert_string_equal(a->assume_role.role_arn, "arn:aws:iam::123456789012:role/x");
	assert_string_equal(a->assume_role.external_id, "e-1");
	assert_int_equal(a->assume_role.duration_s, 5400);
	/* the optional members absent: NULL/0 and the assume_role default duration */
	a = policy_credential_find(p, "aws-min")->aws;
	assert_null(a->session_token);
	assert_int_equal(a->session_token_len, 0);
	assert_int_equal(a->nregions + a->nbuckets + a->nprefixes, 0);
	assert_null(a->regions);
	assert_null(a->assume_role.external_id);
	assert_int_equal(a->assume_role.duration_s, SG_AWS_ASSUME_ROLE_DEFAULT_S);
	assert_null(policy_credential_find(p, "plain")->aws);
	assert_string_equal(p->listen.metadata_aws, "169.254.170.2:80");
	/* inline values warned about: aws-min's secret and access key id, plain's secret */
	assert_int_equal(p->warnings.n, 3);
	{
		const char *w = "credentials.aws-min.aws.access_key_id: inline value "
		    "is for development only";
		bool found = false;

		for (size_t i = 0; i < p->warnings.n; i++)
			found |= strstr(p->warnings.v[i], w) != NULL;
		assert_true(found);
	}
	policy_unref(p);
	policy_errors_free(&errs);
	remove_file("aws.session");
	assert_string_equal(policy_inject_name((enum policy_inject_type)99), "?");
}

/* Access key ids and session tokens are secrets: never quoted, also when malformed. */
static void
test_aws_secrets_not_in_messages(void **state)
{
	static const char *const bad[] = {
	    AWS(", \"services\": [\"s3\"], \"session_token\": {\"value\": \"TOK\\nhunter2\"}"),
	    "{\"credentials\": {\"a\": {\"secret\": {\"value\": \"hunter2\"}, \"inject\": "
	    "{\"type\": \"aws_sigv4\"}, \"hosts\": [\"a.test\"], \"aws\": {\"access_key_id\": "
	    "{\"value\": \"hunter2-not-a-key-id\"}, \"services\": [\"s3\"]}}}}",
	    "{\"credentials\": {\"a\": {\"secret\": {\"value\": \"hunter2\"}, \"inject\": "
	    "{\"type\": \"aws_sigv4\"}, \"hosts\": [\"a.test\"], \"aws\": {\"access_key_id\": "
	    "{\"value\": [\"hunter2\"]}, \"services\": [\"s3\"]}}}}",
	};
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		p = load(bad[i], &errs);
		assert_null(p);
		assert_true(errs.n > 0);
		assert_false(errors_contain(&errs, "hunter2"));
		assert_false(errors_contain(&errs, AWS_AKID));
		policy_errors_free(&errs);
	}
}

static void
test_secret_not_in_messages(void **state)
{
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	/* a value secret with a line break: refused without quoting it */
	p = load("{\"credentials\": {\"c\": {\"secret\": {\"value\": \"hunter2\\r\\nX: y\"}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}", &errs);
	assert_null(p);
	assert_true(errors_contain(&errs, "credentials.c.secret.value: the secret is empty or "
	    "contains a line break"));
	assert_false(errors_contain(&errs, "hunter2"));
	policy_errors_free(&errs);
	/* a secret given with the wrong type is not echoed either */
	p = load("{\"credentials\": {\"c\": {\"secret\": {\"value\": [\"hunter2\"]}, "
	    "\"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"a.test\"]}}}", &errs);
	assert_null(p);
	assert_true(errors_contain(&errs, "expected a string, got an array"));
	assert_false(errors_contain(&errs, "hunter2"));
	policy_errors_free(&errs);
}

static void
test_directory_merge(void **state)
{
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	assert_int_equal(mkdir(tmp_path("d"), 0700), 0);
	write_file("d/10-creds.json", CREDS("") , 0600);
	write_file("d/20-sandboxes.json", "{\"listen\": {\"proxy\": \"127.0.0.1:0\"}, \"sandboxes\": "
	    "{\"s\": {\"addresses\": [\"10.0.2.2\"], \"credentials\": [\"openai\"]}}, "
	    "\"upstream\": {\"resolve\": {\"b.test\": \"10.9.9.9\"}}}", 0600);
	write_file("d/30-more.json", "{\"upstream\": {\"resolve\": {\"c.test\": \"::1\"}}}", 0600);
	write_file("d/notes.txt", "not json", 0600);
	write_file("d/schema.json", "{\"type\": \"object\"}", 0600);
	p = policy_load(tmp_path("d"), &errs);
	dump_errors(&errs);
	assert_non_null(p);
	assert_int_equal(p->ncredentials, 1);
	assert_int_equal(p->nsandboxes, 1);
	assert_true(policy_sandbox_grants(policy_sandbox_find(p, "s"), "openai"));
	assert_string_equal(p->listen.proxy, "127.0.0.1:0");
	assert_int_equal(p->upstream.nresolve, 2);
	assert_string_equal(p->upstream.resolve[1].host, "c.test");
	assert_path(p->keys.seal_key, "d/certs/seal.key");
	policy_unref(p);
	policy_errors_free(&errs);

	/* the same name in two files, and a singleton section in two files */
	write_file("d/40-dup.json", "{\"listen\": {}, \"credentials\": {\"openai\": {" CRED "}}, "
	    "\"upstream\": {\"resolve\": {\"b.test\": \"10.9.9.8\"}}}", 0600);
	p = policy_load(tmp_path("d"), &errs);
	assert_null(p);
	assert_int_equal(errs.n, 3);
	assert_true(errors_contain(&errs, "d/40-dup.json: credentials.openai: also defined in "));
	assert_true(errors_contain(&errs, "d/10-creds.json"));
	assert_true(errors_contain(&errs, "d/40-dup.json: listen: section also defined in "));
	assert_true(errors_contain(&errs, "d/40-dup.json: upstream.resolve.b.test: also defined in "));
	policy_errors_free(&errs);

	/* syntax errors carry file:line:col */
	write_file("d/40-dup.json", "{\n  \"listen\": {,\n}", 0600);
	p = policy_load(tmp_path("d"), &errs);
	assert_null(p);
	assert_true(errors_contain(&errs, "d/40-dup.json:2:"));
	policy_errors_free(&errs);

	remove_file("d/10-creds.json");
	remove_file("d/20-sandboxes.json");
	remove_file("d/30-more.json");
	remove_file("d/40-dup.json");
	remove_file("d/notes.txt");
	remove_file("d/schema.json");
	p = policy_load(tmp_path("d"), &errs);
	assert_null(p);
	assert_true(errors_contain(&errs, "no *.json files"));
	policy_errors_free(&errs);
	assert_int_equal(rmdir(tmp_path("d")), 0);

	p = policy_load(tmp_path("absent.json"), &errs);
	assert_null(p);
	assert_true(errors_contain(&errs, "absent.json: No such file or directory"));
	policy_errors_free(&errs);
}

static void
test_refcount(void **state)
{
	policy_errors_t errs;
	policy_t *p, *q;

	(void)state;
	p = load("{}", &errs);
	assert_non_null(p);
	assert_int_equal(p->refcnt, 1);
	q = policy_ref(p);
	assert_ptr_equal(p, q);
	assert_int_equal(p->refcnt, 2);
	policy_unref(q);
	assert_int_equal(p->refcnt, 1);
	policy_unref(p);
	policy_unref(NULL);
	policy_errors_free(&errs);
}

/* --- name indexes and big policies ------------------------------------------------ */

#define BIG_CREDS	10000
#define BIG_SANDBOXES	1000
#define BIG_GRANTS	10	/* credentials per sandbox */
#define BIG_FILE_EVERY	100	/* every 100th credential has a file secret */

struct named {
	char *name;
	int value;
};

static void
test_index_lookup(void **state)
{
	static struct named v[BIG_CREDS];
	policy_index_t ix = {0};
	char name[32];

	(void)state;
	for (size_t i = 0; i < BIG_CREDS; i++) {
		snprintf(name, sizeof(name), "n%zu", i);
		v[i].name = strdup(name);
		assert_non_null(v[i].name);
		assert_int_equal(policy_index_add(&ix, v[i].name, i), 0);
	}
	assert_int_equal(ix.n, BIG_CREDS);
	assert_true(ix.cap >= 2 * ix.n && (ix.cap & (ix.cap - 1)) == 0);
	for (size_t i = 0; i < BIG_CREDS; i++) {
		snprintf(name, sizeof(name), "n%zu", i);
		assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, name), i);
	}
	/* near misses: a prefix, an extension, another case, the empty name */
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, "n"), -1);
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, "n99999"), -1);
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, "N1"), -1);
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, ""), -1);
	/* entries beyond n are not visible; a NULL name (out of memory) never matches */
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), 10, "n10"), -1);
	free(v[7].name);
	v[7].name = NULL;
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, "n7"), -1);
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, "n8"), 8);
	policy_index_free(&ix);
	assert_int_equal(ix.cap, 0);
	assert_null(ix.slot);
	policy_index_free(NULL);
	/* no index (a hand-built snapshot): find scans the array, with the same answers */
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, "n9999"), 9999);
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), BIG_CREDS, "n7"), -1);
	assert_int_equal(policy_index_find(&ix, v, sizeof(*v), 10, "n10"), -1);
	for (size_t i = 0; i < BIG_CREDS; i++)
		free(v[i].name);
}

static void
big_secret(size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "sk-%05zu-%08zx", i, i * 2654435761u);
}

/* big/creds-K.json: credentials [from, to), secrets inline or in big/secrets/svc-N. */
static void
write_big_creds(const char *name, size_t from, size_t to)
{
	char secret[64], file[64];
	size_t len = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fprintf(f, "{\"credentials\": {\n");
	for (size_t i = from; i < to; i++) {
		big_secret(i, secret, sizeof(secret));
		fprintf(f, "%s \"svc-%05zu\": {\"secret\": ", i > from ? ",\n" : "", i);
		if (i % BIG_FILE_EVERY == 0) {
			snprintf(file, sizeof(file), "big/secrets/svc-%05zu", i);
			write_file(file, secret, 0600);
			fprintf(f, "{\"file\": \"secrets/svc-%05zu\"}", i);
		} else
			fprintf(f, "{\"value\": \"%s\"}", secret);
		fprintf(f, ", \"inject\": {\"type\": \"%s\"%s}, \"hosts\": "
		    "[\"api-%05zu.example.test\"], \"paths\": [\"/v1/*\"]}",
		    i % 2 ? "bearer" : "basic", i % 2 ? "" : ", \"username\": \"u\"", i);
	}
	fprintf(f, "}}\n");
	assert_int_equal(fclose(f), 0);
	write_file(name, buf, 0600);
	free(buf);
}

static void
write_big_sandboxes(const char *name)
{
	size_t len = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fprintf(f, "{\"sandboxes\": {\n");
	for (size_t j = 0; j < BIG_SANDBOXES; j++) {
		fprintf(f, "%s \"sb-%04zu\": {\"addresses\": [\"10.1.%zu.%zu/32\"], "
		    "\"credentials\": [", j ? ",\n" : "", j, j / 256, j % 256);
		for (size_t k = 0; k < BIG_GRANTS; k++)
			fprintf(f, "%s\"svc-%05zu\"", k ? ", " : "", (j * BIG_GRANTS + k) % BIG_CREDS);
		fprintf(f, "]}");
	}
	fprintf(f, "},\n \"sandbox_templates\": {\"job\": {\"credentials\": "
	    "[\"svc-09999\", \"svc-00000\"]}}}\n");
	assert_int_equal(fclose(f), 0);
	write_file(name, buf, 0600);
	free(buf);
}

static void
check_big_credential(const policy_t *p, size_t i)
{
	const policy_credential_t *cr;
	char name[32], secret[64];

	snprintf(name, sizeof(name), "svc-%05zu", i);
	big_secret(i, secret, sizeof(secret));
	cr = policy_credential_find(p, name);
	assert_non_null(cr);
	assert_ptr_equal(cr, &p->credentials[i]);
	assert_string_equal(cr->name, name);
	assert_int_equal(cr->secret_len, strlen(secret));
	assert_string_equal(cr->secret, secret);
	assert_int_equal(cr->secret_source, i % BIG_FILE_EVERY == 0 ? SECRET_FILE : SECRET_VALUE);
	assert_int_equal(cr->inject.type, i % 2 ? INJECT_BEARER : INJECT_BASIC);
}

static void
check_big_policy(const policy_t *p)
{
	static const size_t probe[] = {0, 1, 99, 100, 4999, 5000, 5001, 9900, 9998, 9999};
	const policy_sandbox_t *sb;

	assert_int_equal(p->ncredentials, BIG_CREDS);
	assert_int_equal(p->nsandboxes, BIG_SANDBOXES);
	for (size_t i = 0; i < SG_ARRAY_LEN(probe); i++)
		check_big_credential(p, probe[i]);
	assert_null(policy_credential_find(p, "svc-10000"));
	assert_null(policy_credential_find(p, "svc-0000"));
	assert_null(policy_credential_find(p, "sb-0001"));
	sb = policy_sandbox_find(p, "sb-0123");
	assert_non_null(sb);
	assert_ptr_equal(sb, &p->sandboxes[123]);
	assert_true(policy_sandbox_grants(sb, "svc-01230"));
	assert_true(policy_sandbox_grants(sb, "svc-01239"));
	assert_false(policy_sandbox_grants(sb, "svc-01240"));
	assert_non_null(policy_sandbox_find(p, "sb-0999"));
	assert_null(policy_sandbox_find(p, "sb-1000"));
	assert_null(policy_sandbox_find(p, "svc-00001"));
	assert_non_null(policy_template_find(p, "job"));
	assert_true(policy_template_grants(policy_template_find(p, "job"), "svc-09999"));
	assert_null(policy_template_find(p, "sb-0001"));
}

/*
 * 10,000 credentials (every 100th with a file secret) in two files, 1,000 sandboxes of 10
 * grants each in a third: lookups find the right entries, secrets are intact, and the
 * secrets take a handful of memory mappings, not some per secret. Correctness only.
 */
static void
test_big_policy(void **state)
{
	size_t before, loaded;
	policy_errors_t errs;
	policy_t *p, *q;

	(void)state;
	assert_int_equal(mkdir(tmp_path("big"), 0700), 0);
	assert_int_equal(mkdir(tmp_path("big/secrets"), 0700), 0);
	write_big_creds("big/10-creds.json", 0, BIG_CREDS / 2);
	write_big_creds("big/20-creds.json", BIG_CREDS / 2, BIG_CREDS);
	write_big_sandboxes("big/30-sandboxes.json");
	before = unit_count_mappings();
	p = policy_load(tmp_path("big"), &errs);
	dump_errors(&errs);
	assert_non_null(p);
	policy_errors_free(&errs);
	loaded = unit_count_mappings();
	check_big_policy(p);
	assert_true(secmem_arena_regions(p->secrets) <= 10);
	assert_true(loaded < before + 100);	/* was ~4 per secret: 40,000 */
	/* a second snapshot while the first is alive (a reload) */
	q = policy_load(tmp_path("big"), &errs);
	assert_non_null(q);
	policy_errors_free(&errs);
	check_big_policy(q);
	assert_true(unit_count_mappings() < loaded + 100);
	policy_unref(p);
	policy_unref(q);

	/*
	 * Names defined again in a file sorted between the others: the later definition is
	 * the one refused, naming the file of the first (found through the index).
	 */
	write_file("big/15-dup.json", "{\"credentials\": {\"svc-09999\": {" CRED "}, "
	    "\"svc-00042\": {" CRED "}, \"new-one\": {" CRED "}}}", 0600);
	p = policy_load(tmp_path("big"), &errs);
	assert_null(p);
	assert_int_equal(errs.n, 2);
	assert_non_null(strstr(errs.msg[0], "big/15-dup.json: credentials.svc-00042: also "
	    "defined in "));
	assert_non_null(strstr(errs.msg[0], "big/10-creds.json"));
	assert_non_null(strstr(errs.msg[1], "big/20-creds.json: credentials.svc-09999: also "
	    "defined in "));
	assert_non_null(strstr(errs.msg[1], "big/15-dup.json"));
	policy_errors_free(&errs);
	/* an unknown grant among 10,000 names still gets its did-you-mean */
	write_file("big/15-dup.json", "{\"sandbox_templates\": {\"t\": {\"credentials\": "
	    "[\"svc-0042\"]}}}", 0600);
	p = policy_load(tmp_path("big"), &errs);
	assert_null(p);
	assert_int_equal(errs.n, 1);
	assert_true(errors_contain(&errs, "big/15-dup.json: sandbox_templates.t.credentials[0]: "
	    "unknown credential \"svc-0042\" (did you mean \"svc-00042\"?)"));
	policy_errors_free(&errs);

	remove_file("big/15-dup.json");
	remove_file("big/10-creds.json");
	remove_file("big/20-creds.json");
	remove_file("big/30-sandboxes.json");
	for (size_t i = 0; i < BIG_CREDS; i += BIG_FILE_EVERY) {
		char file[64];

		snprintf(file, sizeof(file), "big/secrets/svc-%05zu", i);
		remove_file(file);
	}
	assert_int_equal(rmdir(tmp_path("big/secrets")), 0);
	assert_int_equal(rmdir(tmp_path("big")), 0);
}

/* Sandboxes whose ranges overlap: every pair reported, in pair order, once. */
static void
test_overlaps_reported_in_order(void **state)
{
	static const char json[] =
	    "{\"sandboxes\": {"
	    "\"a\": {\"addresses\": [\"10.0.0.0/8\"]},"
	    "\"b\": {\"addresses\": [\"192.168.0.0/16\", \"fd00::/8\"]},"
	    "\"c\": {\"addresses\": [\"10.1.0.0/16\", \"10.1.2.3/32\"]},"
	    "\"d\": {\"addresses\": [\"172.16.0.1\"]},"
	    "\"e\": {\"addresses\": [\"fd00::1\", \"10.1.2.0/24\"]}}}";
	policy_errors_t errs;

	(void)state;
	assert_null(load(json, &errs));
	assert_int_equal(errs.n, 4);
	assert_non_null(strstr(errs.msg[0], "sandboxes.c.addresses: 10.1.0.0/16 of sandbox "
	    "\"c\" overlaps 10.0.0.0/8 of sandbox \"a\""));
	assert_non_null(strstr(errs.msg[1], "sandboxes.e.addresses: 10.1.2.0/24 of sandbox "
	    "\"e\" overlaps 10.0.0.0/8 of sandbox \"a\""));
	assert_non_null(strstr(errs.msg[2], "sandboxes.e.addresses: fd00::1/128 of sandbox "
	    "\"e\" overlaps fd00::/8 of sandbox \"b\""));
	assert_non_null(strstr(errs.msg[3], "sandboxes.e.addresses: 10.1.2.0/24 of sandbox "
	    "\"e\" overlaps 10.1.0.0/16 of sandbox \"c\""));
	policy_errors_free(&errs);
}

static void
test_publish_acquire(void **state)
{
	policy_errors_t errs;
	policy_t *a, *b, *cur;
	uint64_t gen;

	(void)state;
	assert_null(policy_acquire());
	a = load("{}", &errs);
	policy_errors_free(&errs);
	b = load("{\"listen\": {\"proxy\": \"127.0.0.1:1\"}}", &errs);
	policy_errors_free(&errs);
	assert_non_null(a);
	assert_non_null(b);

	policy_publish(a);
	cur = policy_acquire();
	assert_ptr_equal(cur, a);
	assert_int_equal(a->refcnt, 2);
	gen = a->generation;
	assert_true(gen > 0);

	policy_ref(a);		/* keep a alive to watch its count after the swap */
	policy_publish(b);
	assert_int_equal(b->generation, gen + 1);
	assert_int_equal(a->refcnt, 2);	/* cur + our extra ref: the published ref is gone */
	policy_unref(cur);
	assert_int_equal(a->refcnt, 1);
	policy_unref(a);

	cur = policy_acquire();
	assert_ptr_equal(cur, b);
	assert_string_equal(cur->listen.proxy, "127.0.0.1:1");
	assert_int_equal(b->refcnt, 2);
	policy_unref(cur);
	policy_shutdown();
	assert_null(policy_acquire());
}

/* cluster: defaults, the password kept as a secret, and every located refusal. */
static void
test_cluster(void **state)
{
	static const struct { const char *json, *want; } bad[] = {
		{"{\"cluster\": {\"redis\": {\"address\": \"h:1\"}}}",
		    "main.json: cluster: needs revocations.file"},
		{"{\"revocations\": {\"file\": \"r\"}, \"cluster\": {}}",
		    "main.json: cluster: needs \"redis\""},
		{"{\"revocations\": {\"file\": \"r\"}, \"cluster\": {\"redis\": {}}}",
		    "main.json: cluster.redis: needs \"address\""},
		{"{\"revocations\": {\"file\": \"r\"}, \"cluster\": {\"redis\": "
		    "{\"address\": \"h:1\", \"master_name\": \"m\"}}}",
		    "main.json: cluster.redis.master_name: Redis Sentinel is not supported yet"},
		{"{\"revocations\": {\"file\": \"r\"}, \"cluster\": {\"redis\": "
		    "{\"address\": \"h:1\", \"prefix\": \"a*\"}}}",
		    "main.json: cluster.redis.prefix: \"a*\" is not a key prefix"},
		{"{\"revocations\": {\"file\": \"r\"}, \"cluster\": {\"redis\": "
		    "{\"address\": \"h:1\", \"password\": {\"value\": \"\"}}}}",
		    "main.json: cluster.redis.password.value: the secret is empty"},
		{"{\"revocations\": {\"file\": \"r\"}, \"cluster\": {\"redis\": "
		    "{\"address\": \"h:1\", \"pasword\": 1}}}",
		    "unknown key \"pasword\" (did you mean \"password\"?)"},
		{"{\"revocations\": {\"file\": \"r\"}, \"cluster\": {\"redis\": "
		    "{\"address\": \"h:1\", \"nodes\": 0}}}",
		    "main.json: cluster.redis.nodes: 0 is out of range (1..10000)"},
	};
	policy_errors_t errs;
	policy_t *p;

	(void)state;
	p = load("{}", &errs);
	assert_non_null(p);
	assert_false(p->cluster.set);
	policy_unref(p);
	policy_errors_free(&errs);
	p = load("{\"revocations\": {\"file\": \"r\"}, \"cluster\": {\"redis\": {\"address\": "
	    "\"unix:/run/r.sock\", \"password\": {\"value\": \"pw-123\"}, \"user\": \"sg\"}}}",
	    &errs);
	if (p == NULL)
		dump_errors(&errs);
	assert_non_null(p);
	assert_true(p->cluster.set);
	assert_string_equal(p->cluster.address, "unix:/run/r.sock");
	assert_string_equal(p->cluster.prefix, SG_CLUSTER_PREFIX);
	assert_string_equal(p->cluster.user, "sg");
	assert_null(p->cluster.node);
	assert_int_equal(p->cluster.nodes, SG_FLEETRATE_NODES_DEFAULT);
	assert_int_equal(p->cluster.password_len, 6);
	assert_memory_equal(p->cluster.password, "pw-123", 6);
	policy_unref(p);
	policy_errors_free(&errs);
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		p = load(bad[i].json, &errs);
		assert_null(p);
		if (!errors_contain(&errs, bad[i].want)) {
			dump_errors(&errs);
			fail_msg("no error '%s'", bad[i].want);
		}
		policy_errors_free(&errs);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_policy),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_failed_handles_bounds),
		cmocka_unit_test(test_rotating_sources),
		cmocka_unit_test(test_mint_rotating_root),
		cmocka_unit_test(test_bad_policies),
		cmocka_unit_test(test_git_push_block),
		cmocka_unit_test(test_mint_bad),
		cmocka_unit_test(test_mint_good),
		cmocka_unit_test(test_templates),
		cmocka_unit_test(test_cluster),
		cmocka_unit_test(test_ttl_sandbox),
		cmocka_unit_test(test_errors_all_reported),
		cmocka_unit_test(test_errors_capped),
		cmocka_unit_test(test_secret_not_in_messages),
		cmocka_unit_test(test_aws_good),
		cmocka_unit_test(test_aws_secrets_not_in_messages),
		cmocka_unit_test(test_directory_merge),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_index_lookup),
		cmocka_unit_test(test_big_policy),
		cmocka_unit_test(test_overlaps_reported_in_order),
		cmocka_unit_test(test_publish_acquire),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
