/* test_authz.c — each denial in order, allowed cases, proxy tokens, fork and restore
 * lineage and sandbox-lifetime handles (the clock is NOW, passed in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include <stdlib.h>
#include <unistd.h>

#include "authz.h"
#include "defaults.h"
#include "netaddr.h"
#include "registry.h"

#define NOW 1700000000
#define HID "0123456789abcdef0123456789abcdef"
#define KID "a1b2c3d4"
#define OPENAI_SECRET "sk-test-openai-DO-NOT-SHOW"
#define SB2_TOKEN "tok-sb2-DO-NOT-SHOW"

static const char policy_json[] =
    "{\"credentials\": {"
    "  \"openai\": {\"secret\": {\"value\": \"" OPENAI_SECRET "\"},"
    "    \"inject\": {\"type\": \"bearer\"},"
    "    \"hosts\": [\"api.openai.com\", \"*.openai.com\", \"api.local.test:8443\"],"
    "    \"methods\": [\"GET\", \"POST\"], \"paths\": [\"/v1/*\"]},"
    "  \"github\": {\"secret\": {\"value\": \"ghp-test-DO-NOT-SHOW\"},"
    "    \"inject\": {\"type\": \"bearer\"}, \"hosts\": [\"api.github.com\"]}},"
    " \"sandboxes\": {"
    "  \"sb-1\": {\"addresses\": [\"10.0.2.15/32\", \"fd00::15/128\"],"
    "    \"credentials\": [\"openai\", \"github\"]},"
    "  \"sb-2\": {\"addresses\": [\"10.0.3.0/24\"], \"credentials\": [\"openai\"],"
    "    \"token\": {\"value\": \"" SB2_TOKEN "\"}}},"
    " \"sandbox_templates\": {\"job\": {\"credentials\": [\"openai\"], \"ttl\": \"5m\"},"
    "  \"life\": {\"credentials\": [\"openai\"], \"ttl\": \"sandbox\", \"max_ttl\": \"2h\"},"
    "  \"gh\": {\"credentials\": [\"github\"]}},"
    " \"metadata\": {\"url\": \"http://md.test/v1/handles\"}}";

struct fixture {
	policy_t *p;
	struct sockaddr_storage peer;
	authz_input_t in;
	handle_claims_t c;
	authz_result_t r;
	registry_snapshot_t *reg;	/* the published snapshot the last check() passed */
	char *hosts[2], *methods[2], *paths[2];	/* narrowed lists (claims point here) */
};

static void
peer_set(struct fixture *f, const char *addr)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&f->peer;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&f->peer;

	memset(&f->peer, 0, sizeof(f->peer));
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, addr, &v6->sin6_addr), 1);
		v6->sin6_family = AF_INET6;
	}
	f->in.peer = (const struct sockaddr *)&f->peer;
}

static int
setup(void **state)
{
	static struct fixture f;
	policy_errors_t errs;

	memset(&f, 0, sizeof(f));
	f.p = policy_load_buffer("/tmp/sg-authz-test.json", policy_json, strlen(policy_json),
	    &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	if (f.p == NULL)
		return -1;
	f.in.policy = f.p;
	peer_set(&f, "10.0.2.15");
	f.in.host = "api.openai.com";
	f.in.port = 443;
	f.in.method = "GET";
	f.in.path = "/v1/models";
	f.in.now = NOW;
	snprintf(f.c.hid, sizeof(f.c.hid), "%s", HID);
	snprintf(f.c.key_id, sizeof(f.c.key_id), "%s", KID);
	f.c.cred = "openai";
	f.c.sb = "sb-1";
	f.c.iat = NOW - 60;
	f.c.exp = NOW + 900;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	registry_unref(f->reg);
	policy_unref(f->p);
	return 0;
}

/*
 * authz_check as the proxy calls it: with the snapshot the test passes in f->in.registry,
 * else with the published one (NULL when no registry is open), acquired here and held in
 * f->reg until the next check, so f->r's pointers stay valid while the test reads them.
 */
static int
check(struct fixture *f)
{
	authz_input_t in = f->in;

	if (in.registry == NULL) {
		registry_unref(f->reg);
		in.registry = f->reg = registry_acquire();
	}
	return authz_check(&in, &f->c, &f->r);
}

static void
narrow(policy_strlist_t *l, char **store, const char *a)
{
	store[0] = (char *)a;
	l->v = store;
	l->n = 1;
}

static void
allowed(struct fixture *f)
{
	if (check(f) != 0)
		fail_msg("denied: %u %s: %s", f->r.status, f->r.code, f->r.message);
	assert_int_equal(f->r.status, 0);
	assert_string_equal(f->r.code, "ok");
	assert_false(f->r.exfiltration);
	assert_non_null(f->r.cred);
	assert_non_null(f->r.sandbox);
	assert_string_equal(f->r.cred->name, f->c.cred);
	assert_string_equal(f->r.sandbox->name, f->c.sb);
}

/* Allowed as sandbox subject; origin: the handle's sandbox when lineage let it in. */
static void
allowed_as(struct fixture *f, const char *subject, const char *origin)
{
	if (check(f) != 0)
		fail_msg("denied: %u %s: %s", f->r.status, f->r.code, f->r.message);
	assert_string_equal(f->r.sandbox->name, subject);
	assert_string_equal(f->r.subject, subject);
	if (origin == NULL)
		assert_null(f->r.origin);
	else
		assert_string_equal(f->r.origin, origin);
}

/* Denied with status and code; the message holds want and never a secret or a handle. */
static void
denied(struct fixture *f, unsigned status, const char *code, const char *want)
{
	assert_int_equal(check(f), -1);
	assert_int_equal(f->r.status, status);
	assert_string_equal(f->r.code, code);
	assert_null(f->r.cred);
	assert_null(f->r.sandbox);
	if (strstr(f->r.message, want) == NULL)
		fail_msg("message '%s' lacks '%s'", f->r.message, want);
	assert_null(strstr(f->r.message, OPENAI_SECRET));
	assert_null(strstr(f->r.message, SB2_TOKEN));
	assert_null(strstr(f->r.message, "sgh1."));
	assert_int_equal(f->r.exfiltration, strcmp(code, "host_out_of_scope") == 0);
}

static revoke_set_t *
revset(const char *json)
{
	char err[256];
	revoke_set_t *rs = revoke_load_buffer("rev.json", json, strlen(json), err,
	    sizeof(err));

	assert_non_null(rs);
	return rs;
}

/* --- allowed -------------------------------------------------------------------------- */

static void
test_allowed(void **state)
{
	struct fixture *f = *state;
	revoke_set_t *rs = revset("{\"handles\": {\"fedcba9876543210fedcba9876543210\": 1},"
	    "\"sandboxes\": {\"sb-1\": 1699999000}}");	/* older than the handle's iat */

	allowed(f);
	f->in.revoked = rs;
	allowed(f);
	f->in.method = "POST";
	f->in.path = "/v1/chat/completions";
	allowed(f);
	revoke_unref(rs);
}

static void
test_allowed_glob_host(void **state)
{
	struct fixture *f = *state;

	f->in.host = "chat.openai.com";
	allowed(f);
	f->in.host = "a.b.openai.com";
	allowed(f);
	f->in.host = "openai.com";		/* a glob does not cover the apex */
	denied(f, 403, "host_out_of_scope", "openai.com:443");
}

static void
test_allowed_port_aware(void **state)
{
	struct fixture *f = *state;

	f->in.host = "api.local.test";
	f->in.port = 8443;
	allowed(f);
	f->in.port = 443;
	denied(f, 403, "host_out_of_scope", "api.local.test:443");
	f->in.host = "api.openai.com";
	f->in.port = 8443;
	denied(f, 403, "host_out_of_scope", "api.openai.com:8443");
}

static void
test_allowed_narrowed_hosts(void **state)
{
	struct fixture *f = *state;

	narrow(&f->c.hosts, f->hosts, "api.openai.com");
	allowed(f);
	f->in.host = "chat.openai.com";		/* in the policy, not in the handle */
	denied(f, 403, "host_out_of_scope", "not in the handle's hosts");
	/* a handle's list never widens the policy */
	narrow(&f->c.hosts, f->hosts, "evil.example");
	f->in.host = "evil.example";
	denied(f, 403, "host_out_of_scope", "not in the credential's hosts");
}

static void
test_allowed_token_sandbox(void **state)
{
	struct fixture *f = *state;

	f->c.sb = "sb-2";
	peer_set(f, "10.0.3.7");
	f->in.proxy_token = SB2_TOKEN;
	allowed(f);
}

static void
test_allowed_ipv6_peer(void **state)
{
	struct fixture *f = *state;

	peer_set(f, "fd00::15");
	allowed(f);
	peer_set(f, "fd00::16");
	denied(f, 407, "sandbox_mismatch", "sandbox sb-1");
}

static void
test_allowed_ipv4_mapped_peer(void **state)
{
	struct fixture *f = *state;

	peer_set(f, "::ffff:10.0.2.15");
	allowed(f);
	peer_set(f, "::ffff:10.0.2.16");
	denied(f, 407, "sandbox_mismatch", "sandbox sb-1");
}

static void
test_allowed_clock_skew(void **state)
{
	struct fixture *f = *state;

	f->in.now = f->c.exp + SG_CLOCK_SKEW_S - 1;
	allowed(f);
	f->in.now = NOW;
	f->c.iat = NOW + SG_CLOCK_SKEW_S;
	allowed(f);
}

/* --- each denial ---------------------------------------------------------------------- */

static void
test_revoked_by_sandbox(void **state)
{
	struct fixture *f = *state;
	revoke_set_t *rs = revset("{\"sandboxes\": {\"sb-1\": 1700000000}}");

	f->in.revoked = rs;
	denied(f, 403, "revoked", "handle " HID " revoked (by sandbox sb-1)");
	f->c.iat = NOW + 1;			/* minted after the revocation */
	allowed(f);
	revoke_unref(rs);
}

static void
test_revoked_by_handle(void **state)
{
	struct fixture *f = *state;
	revoke_set_t *rs = revset("{\"handles\": {\"" HID "\": 1}}");

	f->in.revoked = rs;
	denied(f, 403, "revoked", "handle " HID " revoked");
	revoke_unref(rs);
}

static void
test_revoked_by_credential_and_key(void **state)
{
	struct fixture *f = *state;
	revoke_set_t *rs = revset("{\"credentials\": {\"openai\": 1700000000}}");

	f->in.revoked = rs;
	denied(f, 403, "revoked", "(by credential openai)");
	revoke_unref(rs);
	rs = revset("{\"keys\": {\"" KID "\": 1}}");
	f->in.revoked = rs;
	denied(f, 403, "revoked", "(by key " KID ")");
	revoke_unref(rs);
}

static void
test_revoked_first(void **state)
{
	struct fixture *f = *state;
	revoke_set_t *rs = revset("{\"handles\": {\"" HID "\": 1}}");

	f->in.revoked = rs;
	f->in.now = f->c.exp + 3600;		/* also expired */
	peer_set(f, "192.0.2.1");		/* and from elsewhere */
	denied(f, 403, "revoked", "revoked");
	revoke_unref(rs);
}

static void
test_expired(void **state)
{
	struct fixture *f = *state;

	f->in.now = f->c.exp + SG_CLOCK_SKEW_S;
	denied(f, 403, "handle_expired", "handle " HID " (credential openai) expired");
	peer_set(f, "192.0.2.1");		/* time is checked before the sandbox */
	denied(f, 403, "handle_expired", "expired");
}

static void
test_not_yet_valid(void **state)
{
	struct fixture *f = *state;

	f->c.iat = NOW + SG_CLOCK_SKEW_S + 1;
	denied(f, 403, "handle_not_yet_valid", "in the future");
}

static void
test_sandbox_unknown(void **state)
{
	struct fixture *f = *state;

	f->c.sb = "sb-gone";
	denied(f, 403, "sandbox_unknown", "sandbox sb-gone");
}

static void
test_sandbox_mismatch_address(void **state)
{
	struct fixture *f = *state;

	peer_set(f, "10.0.3.7");		/* sb-2's address */
	denied(f, 407, "sandbox_mismatch", "this handle belongs to sandbox sb-1");
	denied(f, 407, "sandbox_mismatch", "fetch handles for this sandbox from the "
	    "metadata service (GET /v1/handles)");
	f->in.peer = NULL;
	denied(f, 407, "sandbox_mismatch", "sandbox sb-1");
}

/* --- registered sandboxes (registry.h) ----------------------------------------------- */

/* PUT id (template tpl at addr, optional token and extra JSON members) at time at. */
static void
reg_put(registry_t *r, struct fixture *f, const char *id, const char *tpl,
    const char *addr, const char *token, const char *extra, int64_t at)
{
	char body[512];
	registry_spec_t spec;
	registry_result_t res;

	snprintf(body, sizeof(body), "{\"template\": \"%s\", \"addresses\": [\"%s\"]%s%s%s%s}",
	    tpl, addr, token ? ", \"token\": \"" : "", token ? token : "", token ? "\"" : "",
	    extra ? extra : "");
	assert_int_equal(registry_spec_parse(id, body, strlen(body), at, &spec, &res), 0);
	if (registry_put(r, f->p, &spec, at, &res) != 0)
		fail_msg("put %s: %d %s", id, res.status, res.message);
	registry_spec_free(&spec);
}

static registry_t *
reg_with(struct fixture *f, char *dir, const char *id, const char *addr, const char *token)
{
	char err[256];
	registry_t *r;

	assert_non_null(mkdtemp(dir));
	r = registry_open(dir, f->p, NOW - 100, err, sizeof(err));
	assert_non_null(r);
	reg_put(r, f, id, "job", addr, token, NULL, NOW - 100);
	return r;
}

/* Fork parent into id at addr, at time at (tpl NULL: the parent's template). */
static void
reg_fork(registry_t *r, struct fixture *f, const char *parent, const char *id,
    const char *addr, const char *tpl, int64_t at)
{
	registry_fork_spec_t spec;
	registry_result_t res;

	memset(&spec, 0, sizeof(spec));
	snprintf(spec.id, sizeof(spec.id), "%s", id);
	spec.addresses = calloc(1, sizeof(*spec.addresses));
	assert_int_equal(netaddr_parse_cidr(addr, spec.addresses, NULL, 0), 0);
	spec.naddresses = 1;
	spec.template_name = tpl ? strdup(tpl) : NULL;
	if (registry_fork(r, f->p, parent, &spec, at, &res) != 0)
		fail_msg("fork %s: %d %s", id, res.status, res.message);
	registry_fork_spec_free(&spec);
}

static void
reg_done(registry_t *r, const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, REGISTRY_JOURNAL_NAME);
	registry_close(r);
	unlink(path);
	rmdir(dir);
}

static void
test_registered_allowed_and_deleted(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = reg_with(f, dir, "sb-r", "10.0.9.0/24", NULL);
	registry_result_t res;

	f->c.sb = "sb-r";
	peer_set(f, "10.0.9.7");
	allowed(f);				/* via the published snapshot */
	f->c.cred = "github";			/* not in template job */
	denied(f, 403, "credential_not_granted", "template job");
	f->c.cred = "openai";
	assert_int_equal(registry_delete(r, "sb-r", NOW, &res), 0);
	denied(f, 403, "revoked", "sandbox sb-r was deleted");
	reg_done(r, dir);
	denied(f, 403, "sandbox_unknown", "sandbox sb-r");	/* registry gone: no tombstone */
}

static void
test_registered_explicit_snapshot_and_expiry(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX", body[] = "{\"template\": \"job\", "
	    "\"addresses\": [\"10.0.9.0/24\"], \"expires_at\": 1700000100}";
	registry_t *r = reg_with(f, dir, "sb-r", "10.0.9.0/24", NULL);
	registry_snapshot_t *snap;
	registry_spec_t spec;
	registry_result_t res;

	assert_int_equal(registry_spec_parse("sb-r", body, strlen(body), NOW, &spec, &res), 0);
	assert_int_equal(registry_put(r, f->p, &spec, NOW - 10, &res), 0);
	registry_spec_free(&spec);
	snap = registry_acquire();
	f->in.registry = snap;
	f->c.sb = "sb-r";
	peer_set(f, "10.0.9.7");
	allowed(f);
	f->in.now = 1700000100;			/* expires_at reached, no sweep yet */
	f->c.exp = NOW + 900;
	denied(f, 403, "revoked", "sandbox sb-r expired");
	registry_unref(snap);
	f->in.registry = NULL;
	reg_done(r, dir);
}

/*
 * An allowed result borrows from the snapshot the caller passed: it stays valid while the
 * caller holds that reference, however far the registry moves on (the sandbox deleted,
 * more mutations than any retention would cover, the registry closed). authz acquires
 * nothing; under ASan a pointer read after the last reference went would fail here.
 */
static void
test_registered_result_held_by_caller(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX", id[16], addr[32];
	registry_t *r = reg_with(f, dir, "sb-r", "10.0.9.0/24", NULL);
	registry_snapshot_t *snap = registry_acquire();
	uint64_t gen = registry_published_generation();
	registry_result_t res;

	f->in.registry = snap;
	f->c.sb = "sb-r";
	peer_set(f, "10.0.9.7");
	allowed(f);
	f->in.registry = NULL;
	assert_int_equal(registry_delete(r, "sb-r", NOW, &res), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "x%d", i);
		snprintf(addr, sizeof(addr), "10.1.%d.0/24", i);
		reg_put(r, f, id, "job", addr, NULL, NULL, NOW - 100);
	}
	reg_done(r, dir);
	assert_int_equal(registry_published_generation(), gen + 22);	/* 21 + close */
	assert_null(registry_acquire());
	assert_string_equal(f->r.sandbox->name, "sb-r");
	assert_string_equal(f->r.subject, "sb-r");
	assert_int_equal(f->r.sandbox->naddresses, 1);
	assert_int_equal(f->r.sandbox->rate.requests, 0);	/* template job sets none */
	assert_string_equal(f->r.cred->name, "openai");
	registry_unref(snap);			/* the last reference: sb-r is freed here */
}

static void
test_registered_reregistered_handle_revoked(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = reg_with(f, dir, "sb-r", "10.0.9.0/24", NULL);

	f->c.sb = "sb-r";
	peer_set(f, "10.0.9.7");
	f->c.iat = NOW - 200;			/* before the registration (NOW - 100) */
	denied(f, 403, "revoked", "registered again");
	reg_done(r, dir);
}

static void
test_registered_fork_mismatch(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = reg_with(f, dir, "parent", "10.0.9.0/24", "tok-reg-DO-NOT-SHOW");

	reg_fork(r, f, "parent", "child", "10.0.10.5", NULL, NOW - 30);
	f->c.sb = "parent";
	f->c.iat = NOW - 20;			/* minted after the fork */
	peer_set(f, "10.0.10.5");
	f->in.proxy_token = "tok-reg-DO-NOT-SHOW";
	denied(f, 407, "sandbox_mismatch", "this handle belongs to sandbox parent");
	denied(f, 407, "sandbox_mismatch", "sandbox child, a copy of it taken at 1699999970, "
	    "before the handle was minted at 1699999980");
	denied(f, 407, "sandbox_mismatch", "http://md.test/v1/handles");
	assert_null(strstr(f->r.message, "tok-reg"));
	peer_set(f, "10.0.9.8");		/* the parent's own address */
	allowed(f);
	f->in.proxy_token = "tok-reg-wrong";
	denied(f, 407, "sandbox_mismatch", "another proxy token");
	f->in.proxy_token = NULL;
	denied(f, 407, "sandbox_mismatch", "no proxy token");
	reg_done(r, dir);
}

/* The requesting sandbox: by address, and by proxy token where the sandbox has one. */
static void
test_requester_static(void **state)
{
	struct fixture *f = *state;
	sandbox_view_t v;

	peer_set(f, "10.0.2.15");
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, NULL, NOW, &v), 0);
	assert_string_equal(v.name, "sb-1");
	/* a token the sandbox does not have changes nothing */
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, "whatever", NOW, &v), 0);
	assert_string_equal(v.name, "sb-1");
	peer_set(f, "fd00::15");
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, NULL, NOW, &v), 0);
	assert_string_equal(v.name, "sb-1");
	peer_set(f, "::ffff:10.0.2.15");
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, NULL, NOW, &v), 0);
	assert_string_equal(v.name, "sb-1");
	/* sb-2 has a token: without it, or with another, the request is no sandbox's */
	peer_set(f, "10.0.3.7");
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, SB2_TOKEN, NOW, &v), 0);
	assert_string_equal(v.name, "sb-2");
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, NULL, NOW, &v), -1);
	assert_null(v.name);
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, SB2_TOKEN "x", NOW, &v), -1);
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, "", NOW, &v), -1);
	/* an address of no sandbox, or no address */
	peer_set(f, "10.0.4.1");
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, NULL, NOW, &v), -1);
	assert_int_equal(authz_requester(f->p, NULL, NULL, SB2_TOKEN, NOW, &v), -1);
}

static void
test_requester_registered(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = reg_with(f, dir, "sb-r", "10.0.9.0/24", "tok-reg-DO-NOT-SHOW");
	registry_snapshot_t *snap = registry_acquire();
	sandbox_view_t v;

	peer_set(f, "10.0.9.7");
	assert_int_equal(authz_requester(f->p, snap, f->in.peer, "tok-reg-DO-NOT-SHOW", NOW,
	    &v), 0);
	assert_string_equal(v.name, "sb-r");
	assert_non_null(v.entry);
	assert_int_equal(authz_requester(f->p, snap, f->in.peer, "tok-reg-wrong", NOW, &v), -1);
	assert_int_equal(authz_requester(f->p, snap, f->in.peer, NULL, NOW, &v), -1);
	/* no snapshot passed: registered sandboxes are not looked at */
	assert_int_equal(authz_requester(f->p, NULL, f->in.peer, "tok-reg-DO-NOT-SHOW", NOW,
	    &v), -1);
	registry_unref(snap);
	reg_done(r, dir);
}

static void
test_sandbox_mismatch_token(void **state)
{
	struct fixture *f = *state;

	f->c.sb = "sb-2";
	peer_set(f, "10.0.3.7");
	f->in.proxy_token = NULL;
	denied(f, 407, "sandbox_mismatch", "no proxy token");
	f->in.proxy_token = "tok-sb2";		/* a prefix */
	denied(f, 407, "sandbox_mismatch", "another proxy token");
	f->in.proxy_token = SB2_TOKEN "x";
	denied(f, 407, "sandbox_mismatch", "belongs to sandbox sb-2");
	f->in.proxy_token = "";
	denied(f, 407, "sandbox_mismatch", "GET /v1/handles");
	f->in.proxy_token = SB2_TOKEN;		/* right token, wrong address */
	peer_set(f, "10.0.2.15");
	denied(f, 407, "sandbox_mismatch", "another address");
}

static void
test_credential_not_granted(void **state)
{
	struct fixture *f = *state;

	f->c.sb = "sb-2";
	f->c.cred = "github";
	peer_set(f, "10.0.3.7");
	f->in.proxy_token = SB2_TOKEN;
	f->in.host = "api.github.com";
	denied(f, 403, "credential_not_granted", "credential github is not granted to "
	    "sandbox sb-2");
	f->c.sb = "sb-1";
	f->c.cred = "removed";
	peer_set(f, "10.0.2.15");
	denied(f, 403, "credential_not_granted", "credential removed is not in the policy");
}

static void
test_host_out_of_scope(void **state)
{
	struct fixture *f = *state;

	f->in.host = "evil.example";
	denied(f, 403, "host_out_of_scope", "credential openai may not be sent to "
	    "evil.example:443");
	assert_true(f->r.exfiltration);
	f->in.host = "api.github.com";		/* another credential's host */
	denied(f, 403, "host_out_of_scope", "api.github.com:443");
	f->in.host = "sgh1.a1b2c3d4.AAAA.evil.example";	/* exfiltration in the name */
	denied(f, 403, "host_out_of_scope", "[handle]:443");
}

static void
test_method_out_of_scope(void **state)
{
	struct fixture *f = *state;

	f->in.method = "DELETE";
	denied(f, 403, "method_out_of_scope", "method DELETE (not in the credential's");
	f->in.method = "POST";
	narrow(&f->c.methods, f->methods, "GET");
	denied(f, 403, "method_out_of_scope", "method POST (not in the handle's");
}

static void
test_path_out_of_scope(void **state)
{
	struct fixture *f = *state;

	f->in.path = "/v2/models";
	denied(f, 403, "path_out_of_scope", "path /v2/models (not in the credential's");
	narrow(&f->c.paths, f->paths, "/v1/models");
	f->in.path = "/v1/chat";
	denied(f, 403, "path_out_of_scope", "path /v1/chat (not in the handle's");
	f->in.path = "/v1/models";
	allowed(f);
	f->in.path = "/v2/sgh1.a1b2c3d4.AAAA";
	denied(f, 403, "path_out_of_scope", "path [handle]");
}

/* --- fork and restore lineage (lineage.h), suspension, sandbox-lifetime handles -------- */

#define T_FORK	(NOW - 30)			/* parent forked into child */

/* parent (template job, token) at 10.0.9.0/24, forked into child (10.0.10.5) at T_FORK;
 * the handle is parent's, minted before the fork, used from the child with its token. */
static registry_t *
lineage_setup(struct fixture *f, char *dir, const char *child_tpl)
{
	registry_t *r = reg_with(f, dir, "parent", "10.0.9.0/24", "tok-parent");

	reg_fork(r, f, "parent", "child", "10.0.10.5", child_tpl, T_FORK);
	f->c.sb = "parent";
	f->c.iat = T_FORK - 10;
	peer_set(f, "10.0.10.5");
	f->in.proxy_token = "tok-parent";	/* a fork keeps its parent's token */
	return r;
}

static void
test_lineage_fork_before_and_after(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = lineage_setup(f, dir, NULL);

	allowed_as(f, "child", "parent");
	f->c.iat = T_FORK;			/* the fork's own second counts as before */
	allowed_as(f, "child", "parent");
	f->c.iat = T_FORK + 1;			/* minted after: the parent's alone */
	denied(f, 407, "sandbox_mismatch", "a copy of it taken at 1699999970, before the "
	    "handle was minted at 1699999971");
	peer_set(f, "10.0.9.1");		/* from the parent it is the parent's */
	allowed_as(f, "parent", NULL);
	f->c.iat = T_FORK - 10;
	allowed_as(f, "parent", NULL);
	peer_set(f, "10.0.10.5");		/* the child's address without its token */
	f->in.proxy_token = NULL;
	denied(f, 407, "sandbox_mismatch", "sandbox child, a copy of it, but the request "
	    "carries no proxy token");
	peer_set(f, "10.0.3.7");		/* sb-2: no lineage */
	f->in.proxy_token = SB2_TOKEN;
	denied(f, 407, "sandbox_mismatch", "that of sandbox sb-2");
	reg_done(r, dir);
}

static void
test_lineage_fork_grants_apply(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = lineage_setup(f, dir, "gh");	/* the fork grants github only */

	assert_int_equal(check(f), -1);
	assert_int_equal(f->r.status, 403);
	assert_string_equal(f->r.code, "credential_not_granted");
	assert_non_null(strstr(f->r.message, "not granted to sandbox child (template gh)"));
	assert_string_equal(f->r.subject, "child");	/* for the audit line */
	assert_string_equal(f->r.origin, "parent");
	f->c.cred = "github";			/* a github handle of the parent's: the fork's */
	f->in.host = "api.github.com";
	allowed_as(f, "child", "parent");
	f->in.host = "api.openai.com";		/* the fork's scope for it */
	denied(f, 403, "host_out_of_scope", "api.openai.com:443");
	reg_done(r, dir);
}

static void
test_lineage_parent_or_fork_deleted(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = lineage_setup(f, dir, NULL);
	registry_result_t res;

	assert_int_equal(registry_delete(r, "parent", NOW, &res), 0);
	allowed_as(f, "child", "parent");	/* the link is the fork's own data */
	peer_set(f, "10.0.9.1");
	denied(f, 403, "revoked", "sandbox parent was deleted");
	reg_put(r, f, "parent", "job", "10.0.9.0/24", "tok-parent", NULL, NOW);
	denied(f, 403, "revoked", "registered again");	/* a new parent, an old handle */
	peer_set(f, "10.0.10.5");
	allowed_as(f, "child", "parent");
	assert_int_equal(registry_delete(r, "child", NOW, &res), 0);
	denied(f, 403, "revoked", "registered again");	/* nothing carries it any more */
	f->c.iat = NOW;				/* the new parent's handle */
	denied(f, 407, "sandbox_mismatch", "another address");
	peer_set(f, "10.0.9.1");
	allowed_as(f, "parent", NULL);
	reg_done(r, dir);
}

static void
test_lineage_revocations(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = lineage_setup(f, dir, NULL);
	revoke_set_t *rs = revset("{\"handles\": {\"" HID "\": 1}}");

	f->in.revoked = rs;			/* a handle id: everywhere */
	denied(f, 403, "revoked", "handle " HID " revoked");
	revoke_unref(rs);
	/* the parent sandbox's handles as of now: also those its forks carry */
	rs = revset("{\"sandboxes\": {\"parent\": 1700000000}}");
	f->in.revoked = rs;
	denied(f, 403, "revoked", "(by sandbox parent)");
	revoke_unref(rs);
	rs = revset("{\"sandboxes\": {\"child\": 1700000000}}");	/* names the fork */
	f->in.revoked = rs;
	allowed_as(f, "child", "parent");	/* the claims name the parent */
	revoke_unref(rs);
	f->in.revoked = NULL;
	reg_done(r, dir);
}

static void
test_lineage_chain(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = reg_with(f, dir, "g", "10.0.9.0/24", NULL);

	reg_fork(r, f, "g", "p", "10.0.10.1", NULL, NOW - 50);
	reg_fork(r, f, "p", "c", "10.0.11.1", NULL, NOW - 20);
	peer_set(f, "10.0.11.1");
	f->c.sb = "g";
	f->c.iat = NOW - 60;			/* g's, before g was forked: in p and c */
	allowed_as(f, "c", "g");
	f->c.iat = NOW - 40;			/* g's after p was taken: not in p, so not in c */
	denied(f, 407, "sandbox_mismatch", "a copy of it taken at 1699999950");
	f->c.sb = "p";				/* p's before c was taken */
	allowed_as(f, "c", "p");
	f->c.iat = NOW - 10;
	denied(f, 407, "sandbox_mismatch", "sandbox c, a copy of it taken at 1699999980");
	reg_done(r, dir);
}

static void
test_lineage_restore(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = reg_with(f, dir, "orig", "10.0.9.0/24", NULL);
	registry_result_t res;

	/* a checkpoint of orig taken at NOW - 40, restored as q */
	reg_put(r, f, "q", "job", "10.0.12.1", NULL, ", \"restored_from\": \"orig\", "
	    "\"at\": 1699999960", NOW);
	f->c.sb = "orig";
	f->c.iat = NOW - 50;
	peer_set(f, "10.0.12.1");
	allowed_as(f, "q", "orig");
	f->c.iat = NOW - 30;			/* after the checkpoint */
	denied(f, 407, "sandbox_mismatch", "a copy of it taken at 1699999960");
	/* orig's host failed: orig deleted, its checkpoint restored under the same id */
	assert_int_equal(registry_delete(r, "orig", NOW, &res), 0);
	reg_put(r, f, "orig", "job", "10.0.13.1", NULL, ", \"restored_from\": \"orig\", "
	    "\"at\": 1699999960", NOW + 5);
	peer_set(f, "10.0.13.1");
	f->c.iat = NOW - 50;			/* minted before its re-registration: still in */
	allowed_as(f, "orig", "orig");
	f->c.iat = NOW - 30;			/* not in the checkpoint */
	denied(f, 403, "revoked", "registered again");
	f->c.iat = NOW + 6;			/* the restored sandbox's own new handle */
	f->in.now = NOW + 6;
	allowed_as(f, "orig", NULL);
	reg_done(r, dir);
}

static void
test_lineage_suspended(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = lineage_setup(f, dir, NULL);
	registry_result_t res;

	assert_int_equal(registry_suspend(r, "parent", true, NOW, &res), 0);
	allowed_as(f, "child", "parent");	/* the fork runs on */
	assert_int_equal(registry_suspend(r, "child", true, NOW, &res), 0);
	denied(f, 403, "sandbox_suspended", "sandbox child is suspended");
	peer_set(f, "10.0.9.1");
	denied(f, 403, "sandbox_suspended", "sandbox parent is suspended");
	assert_int_equal(registry_suspend(r, "parent", false, NOW, &res), 0);
	allowed_as(f, "parent", NULL);
	reg_done(r, dir);
}

static void
test_lifetime_sandbox_handles(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/sg-authz-reg-XXXXXX";
	registry_t *r = reg_with(f, dir, "j", "10.0.9.0/24", NULL);

	reg_put(r, f, "l", "life", "10.0.14.1", NULL, NULL, NOW - 100);
	f->c.sb = "l";
	f->c.life_sandbox = true;
	f->c.iat = NOW - 90;
	f->c.exp = f->c.iat + 30 * 24 * 3600;	/* minted when max_ttl was 30 days */
	peer_set(f, "10.0.14.1");
	f->in.now = f->c.iat + 2 * 3600 + SG_CLOCK_SKEW_S - 1;	/* template max_ttl 2h */
	allowed_as(f, "l", NULL);
	f->in.now++;
	denied(f, 403, "handle_expired", "past its max_ttl of 7200s in sandbox l");
	/* a template that gives wall-clock handles bounds it by its ttl (5m) */
	reg_put(r, f, "j", "job", "10.0.9.0/24", NULL, NULL, NOW - 100);
	f->c.sb = "j";
	peer_set(f, "10.0.9.1");
	f->in.now = f->c.iat + 300 + SG_CLOCK_SKEW_S - 1;
	allowed_as(f, "j", NULL);
	f->in.now++;
	denied(f, 403, "handle_expired", "past its ttl of 300s");
	f->c.life_sandbox = false;		/* a wall-clock handle: exp alone bounds it */
	allowed_as(f, "j", NULL);
	reg_done(r, dir);
}

/* --- Proxy-Authorization -------------------------------------------------------------- */

static int
token_of(const char *value, char *out, size_t outlen)
{
	memset(out, 'X', outlen);
	return authz_proxy_token(value, out, outlen);
}

static void
test_proxy_token(void **state)
{
	char out[64], basic[160], b64[128];

	(void)state;
	assert_int_equal(token_of("Bearer abc.DEF-123", out, sizeof(out)), 0);
	assert_string_equal(out, "abc.DEF-123");
	assert_int_equal(token_of("  bearer \t tok  ", out, sizeof(out)), 0);
	assert_string_equal(out, "tok");
	assert_int_equal(token_of("FlyV1 fm2_xyz", out, sizeof(out)), 0);
	assert_string_equal(out, "fm2_xyz");
	snprintf(basic, sizeof(basic), "sb-2:%s", SB2_TOKEN);
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)basic, strlen(basic),
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(basic, sizeof(basic), "Basic %s", b64);
	assert_int_equal(token_of(basic, out, sizeof(out)), 0);
	assert_string_equal(out, SB2_TOKEN);
	/* "x:a:b": the password runs past further colons; unpadded base64 too */
	assert_int_equal(token_of("BASIC eDphOmI", out, sizeof(out)), 0);
	assert_string_equal(out, "a:b");
}

static void
test_proxy_token_refused(void **state)
{
	static const char *const bad[] = {
		"", "Bearer", "Bearer ", "Bearerabc", "Bearer a b", "Digest x=1",
		"Basic !!!!", "Basic dXNlcg==" /* "user": no colon */,
		"Basic dXNlcjo=" /* "user:": empty */, "Token abc",
	};
	char out[64], tiny[4];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		if (token_of(bad[i], out, sizeof(out)) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_string_equal(out, "");
	}
	assert_int_equal(token_of(NULL, out, sizeof(out)), -1);
	assert_string_equal(out, "");
	assert_int_equal(token_of("Bearer abcd", tiny, sizeof(tiny)), -1);
	assert_string_equal(tiny, "");
	assert_int_equal(token_of("Bearer abc", tiny, sizeof(tiny)), 0);
	assert_int_equal(authz_proxy_token("Bearer x", out, 0), -1);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_allowed),
		T(test_allowed_glob_host),
		T(test_allowed_port_aware),
		T(test_allowed_narrowed_hosts),
		T(test_allowed_token_sandbox),
		T(test_allowed_ipv6_peer),
		T(test_allowed_ipv4_mapped_peer),
		T(test_allowed_clock_skew),
		T(test_revoked_by_sandbox),
		T(test_revoked_by_handle),
		T(test_revoked_by_credential_and_key),
		T(test_revoked_first),
		T(test_expired),
		T(test_not_yet_valid),
		T(test_sandbox_unknown),
		T(test_sandbox_mismatch_address),
		T(test_sandbox_mismatch_token),
		T(test_requester_static),
		T(test_requester_registered),
		T(test_registered_allowed_and_deleted),
		T(test_registered_explicit_snapshot_and_expiry),
		T(test_registered_result_held_by_caller),
		T(test_registered_reregistered_handle_revoked),
		T(test_registered_fork_mismatch),
		T(test_lineage_fork_before_and_after),
		T(test_lineage_fork_grants_apply),
		T(test_lineage_parent_or_fork_deleted),
		T(test_lineage_revocations),
		T(test_lineage_chain),
		T(test_lineage_restore),
		T(test_lineage_suspended),
		T(test_lifetime_sandbox_handles),
		T(test_credential_not_granted),
		T(test_host_out_of_scope),
		T(test_method_out_of_scope),
		T(test_path_out_of_scope),
		cmocka_unit_test(test_proxy_token),
		cmocka_unit_test(test_proxy_token_refused),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
