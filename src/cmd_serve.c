/*
 * cmd_serve.c — `sealgate serve`: load the policy, create missing dev keys, bind the
 * listeners, run until SIGINT/SIGTERM. Startup order: policy → keys → CA → TLS
 * contexts → listeners → ready file → event loop.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "admin.h"
#include "audit.h"
#include "awsrole.h"
#include "ca.h"
#include "certcache.h"
#include "certforge.h"
#include "cli.h"
#include "defaults.h"
#include "log.h"
#include "metadata.h"
#include "metrics.h"
#include "proxy.h"
#include "registry.h"
#include "cluster.h"
#include "revoke.h"
#include "seal.h"
#include "secwatch.h"
#include "serve.h"
#include "stscache.h"
#include "stsclient.h"
#include "mintcache.h"
#include "mintclient.h"
#include "tls.h"
#include "util.h"

struct serve {
	/*
	 * The startup snapshot: serve_run reads the settings read at startup only from it
	 * (keys, listeners, audit path, state dir, workers, max_connections, busy_poll_us),
	 * then lets it go (serve_release_policy): after the first reload only the published
	 * snapshot (and those connections still use) stay in memory. What the event loop
	 * needs later is copied below.
	 */
	policy_t *policy;
	char *revocations_file;		/* startup's revocations.file (watched), or NULL */
	uint64_t drain_timeout_ms;	/* startup's limits.drain_timeout */
	struct event_base *base;
	proxy_shared_t shared;
	proxy_t *proxy;
	admin_t *admin;
	metadata_t *metadata;
	char admin_addr[80];
	struct event *sigint, *sigterm, *sighup, *sigusr1;
	struct event *drainwatch;	/* after SIGTERM: exit once connections are gone */
	uint64_t drain_deadline;
	bool draining;
	struct event *revwatch;		/* re-reads the revocations file when it changes */
	cluster_t *cluster;		/* fleet mode (policy "cluster"), or NULL */
	struct event *fleetwake;	/* a worker's fleet lease ran low (any thread) */
	struct stat revstat;
	registry_t *registry;		/* the sandbox registry (admin API, authz) */
	struct event *regsweep;		/* expires registered sandboxes */
	secwatch_t *secwatch;		/* the published policy's rotating secrets */
	const char *ready_file;
	const char *user;		/* --user: drop to it once listeners are bound */
	const char *policy_path;	/* as given: serve_reload loads it again */
	bool reload_ok;		/* last reload (metrics) */
	int64_t reload_time;	/* its unix time, 0 before any */
	double load_s;		/* last successful load/reload: parse, compile, publish */
};

static void
serve_usage(FILE *out)
{
	fprintf(out,
	    "usage: sealgate serve --policy PATH [--ready-file FILE] [--log-level LEVEL]\n"
	    "\n"
	    "Serve the proxy, metadata and admin listeners of the policy at PATH (a .json\n"
	    "file or a folder of them). Missing seal key, CA and admin token are created\n"
	    "where the policy's keys point (development default: the repo's certs/).\n"
	    "\n"
	    "  --policy PATH       policy file or folder (required)\n"
	    "  --ready-file FILE   once listening, write {\"pid\",\"proxy\",\"metadata\",\"admin\"}\n"
	    "  --log-level LEVEL   error|warn|info|debug (default info)\n"
	    "  --user NAME         drop root privileges to NAME once listeners are bound\n");
}

/* mkdir -p of the folder holding path. */
static int
serve_mkdir_for(const char *path)
{
	char buf[4096];
	char *slash;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int
serve_ensure_seal_key(const char *path, char *err, size_t errlen)
{
	char hex[2 * 32 + 2], pubpath[4096];
	seal_key_t *k;
	size_t n = strlen(path);
	int rc;

	if (access(path, F_OK) == 0)
		return 0;
	if (serve_mkdir_for(path) < 0 || (k = seal_key_generate()) == NULL) {
		snprintf(err, errlen, "%s: cannot create seal key", path);
		return -1;
	}
	util_hex_encode(k->sk, 32, hex);
	strcat(hex, "\n");
	rc = util_write_file(path, hex, strlen(hex), 0600, err, errlen);
	sodium_memzero(hex, sizeof(hex));
	if (rc == 0) {
		if (n > 4 && strcmp(path + n - 4, ".key") == 0)
			snprintf(pubpath, sizeof(pubpath), "%.*s.pub", (int)(n - 4), path);
		else
			snprintf(pubpath, sizeof(pubpath), "%s.pub", path);
		util_hex_encode(k->pk, 32, hex);
		strcat(hex, "\n");
		rc = util_write_file(pubpath, hex, strlen(hex), 0644, err, errlen);
		if (rc == 0)
			log_info("created seal key %s (key id %s) and %s", path, k->id, pubpath);
	}
	seal_key_free(k);
	return rc;
}

static int
serve_ensure_ca(const char *cert, const char *key, char *err, size_t errlen)
{
	char dir[4096];
	const char *cs = strrchr(cert, '/'), *ks = strrchr(key, '/');
	size_t dl = cs ? (size_t)(cs - cert) : 0;

	if (access(cert, F_OK) == 0 && access(key, F_OK) == 0)
		return 0;
	if (access(cert, F_OK) == 0 || access(key, F_OK) == 0) {
		snprintf(err, errlen, "%s or %s is missing; restore it or run sealgate ca init "
		    "--force", cert, key);
		return -1;
	}
	if (strcmp(cs ? cs + 1 : cert, "ca.crt") != 0 || strcmp(ks ? ks + 1 : key, "ca.key")
	    != 0 || (ks ? (size_t)(ks - key) : 0) != dl || strncmp(cert, key, dl) != 0) {
		snprintf(err, errlen, "%s: no CA; create one with sealgate ca init", cert);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(dl ? dl : 1), dl ? cert : ".");
	if (serve_mkdir_for(cert) < 0 || ca_create(dir, 0, err, errlen) < 0)
		return -1;
	log_info("created CA %s; clients trust it to accept intercepted TLS", cert);
	return 0;
}

static int
serve_ensure_token(const char *path, char *err, size_t errlen)
{
	unsigned char raw[32];
	char hex[2 * sizeof(raw) + 2];
	int rc;

	if (path == NULL || access(path, F_OK) == 0)
		return 0;
	if (serve_mkdir_for(path) < 0 || RAND_bytes(raw, sizeof(raw)) != 1) {
		snprintf(err, errlen, "%s: cannot create admin token", path);
		return -1;
	}
	util_hex_encode(raw, sizeof(raw), hex);
	strcat(hex, "\n");
	rc = util_write_file(path, hex, strlen(hex), 0600, err, errlen);
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(raw, sizeof(raw));
	if (rc == 0)
		log_info("created admin token %s", path);
	return rc;
}

int
serve_ensure_keys(const policy_t *p, char *err, size_t errlen)
{
	if (serve_ensure_seal_key(p->keys.seal_key, err, errlen) < 0)
		return -1;
	if (serve_ensure_ca(p->keys.ca_cert, p->keys.ca_key, err, errlen) < 0)
		return -1;
	return serve_ensure_token(p->admin_token_file, err, errlen);
}

static int
serve_tls_init(struct serve *s, char *err, size_t errlen)
{
	X509 *ca = NULL;
	EVP_PKEY *cakey = NULL;

	if (ca_load(s->policy->keys.ca_cert, s->policy->keys.ca_key, &ca, &cakey, err,
	    errlen) < 0)
		return -1;
	s->shared.forge = certforge_new(ca, cakey, err, errlen);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	if (s->shared.forge == NULL)
		return -1;
	s->shared.certs = certcache_new(SG_CERTCACHE_SIZE);
	s->shared.tls_server = tls_server_ctx_new(s->shared.forge, s->shared.certs, err, errlen);
	if (s->shared.tls_server == NULL)
		return -1;
	s->shared.tls_client = tls_client_ctx_new(s->policy->upstream.ca_file, err, errlen);
	digest_sha256_install(tls_digest_ops());	/* before the workers start */
	return s->shared.tls_client ? 0 : -1;
}

/* Revocations: load the file named by the policy, publish the set. */
static int
serve_revocations_load(struct serve *s, char *err, size_t errlen)
{
	const char *path = s->revocations_file;
	revoke_set_t *rs;

	if (path == NULL)
		return 0;
	if (stat(path, &s->revstat) < 0)
		memset(&s->revstat, 0, sizeof(s->revstat));
	rs = revoke_load(path, err, errlen);
	if (rs == NULL)
		return -1;
	revoke_publish(rs);
	log_info("revocations: %zu entries from %s", revoke_count(rs), path);
	return 0;
}

static bool
serve_stat_changed(const struct stat *a, const struct stat *b)
{
	return a->st_ino != b->st_ino || a->st_size != b->st_size ||
	    a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

static void
serve_revwatch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *s = arg;
	struct stat st;
	char err[512];

	(void)fd;
	(void)what;
	if (stat(s->revocations_file, &st) < 0)
		memset(&st, 0, sizeof(st));
	if (!serve_stat_changed(&st, &s->revstat))
		return;
	if (serve_revocations_load(s, err, sizeof(err)) < 0)
		log_warn("revocations not reloaded, keeping the previous set: %s", err);
}

/* A worker's fleet lease ran low: relay to the main thread (any thread). */
static void
serve_fleet_wake(void *arg)
{
	struct serve *s = arg;

	event_active(s->fleetwake, EV_READ, 0);
}

static void
serve_fleetwake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *s = arg;

	(void)fd;
	(void)what;
	cluster_rate_kick(s->cluster);
}

/* Fleet mode: the lease table of every credential with rate_total, before the workers
 * start (they read it from the shared block). */
static int
serve_fleet_init(struct serve *s, char *err, size_t errlen)
{
	if (!s->policy->cluster.set)
		return 0;
	if ((s->fleetwake = event_new(s->base, -1, 0, serve_fleetwake_cb, s)) == NULL ||
	    (s->shared.fleet = fleettab_new(serve_fleet_wake, s)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (fleettab_sync(s->shared.fleet, s->policy, util_mono_ms()) < 0) {
		snprintf(err, errlen, "cluster: a credential with rate_total has a name over %d "
		    "bytes (or out of memory)", FLEETTAB_NAME_MAX);
		return -1;
	}
	return 0;
}

/* Keys for handles, the verified-handle cache, the rate-limit table. */
static int
serve_handles_init(struct serve *s, char *err, size_t errlen)
{
	const policy_t *p = s->policy;

	s->shared.keyring = seal_keyring_load(p->keys.seal_key, p->keys.open_keys.v,
	    p->keys.open_keys.n, p->keys.retired_key_ids.v, p->keys.retired_key_ids.n, err,
	    errlen);
	if (s->shared.keyring == NULL)
		return -1;
	s->shared.handles = handlecache_new(SG_HANDLECACHE_SIZE);
	s->shared.rl = ratelimit_new(SG_RATELIMIT_BUCKETS);
	if (s->shared.handles == NULL || s->shared.rl == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return serve_revocations_load(s, err, errlen);
}

/* --- admin listener -------------------------------------------------------------- */

/*
 * Admin reload hook. MINIMAL, FOR THE LEAD TO EXTEND (SIGHUP, keyring, revocations,
 * limits): load the policy again from the same path and publish it; on failure keep
 * the current one and hand back the located errors, one per line.
 */
static int
serve_reload(void *arg, char *msg, size_t msglen)
{
	struct serve *s = arg;
	policy_errors_t errs = {0};
	double t0 = util_mono_msf();
	policy_t *p = policy_load(s->policy_path, &errs);
	secwatch_t *w = NULL;
	size_t off = 0;

	for (size_t i = 0; i < errs.n && off < msglen; i++)
		off += (size_t)snprintf(msg + off, msglen - off, "%s%s", i ? "\n" : "",
		    errs.msg[i]);
	policy_errors_free(&errs);
	s->reload_ok = p != NULL;
	s->reload_time = util_now_s();
	if (p != NULL && (w = secwatch_new(s->base, p, s->secwatch, msg + off,
	    msglen - off)) == NULL) {
		s->reload_ok = false;
		policy_unref(p);
		p = NULL;
	}
	if (p == NULL) {
		log_warn("policy reload failed; still serving the previous policy");
		return -1;
	}
	for (size_t i = 0; i < p->warnings.n; i++)
		log_warn("%s", p->warnings.v[i]);
	if (s->shared.fleet != NULL && fleettab_sync(s->shared.fleet, p, util_mono_ms()) < 0)
		log_warn("cluster: fleet rate leases not updated (out of memory or a credential "
		    "name over %d bytes); those credentials keep their previous limits",
		    FLEETTAB_NAME_MAX);
	policy_publish(p);
	secwatch_free(s->secwatch);
	s->secwatch = w;
	s->load_s = (util_mono_msf() - t0) / 1000.0;
	log_info("policy reloaded from %s in %.1f ms (keys, listeners and the audit path are "
	    "read at startup only)", s->policy_path, s->load_s * 1000.0);
	return 0;
}

static bool
serve_ready(void *arg)
{
	struct serve *s = arg;

	return !s->draining;
}

static char *
serve_metrics(void *arg, size_t *len)
{
	struct serve *s = arg;
	policy_t *p = policy_acquire();
	registry_snapshot_t *reg = registry_acquire();
	metrics_sources_t src = {.certs = s->shared.certs, .handles = s->shared.handles,
	    .ratelimit = s->shared.rl, .policy_generation = p ? p->generation : 0,
	    .reload_ok = s->reload_ok, .reload_time = s->reload_time,
	    .policy_load_seconds = s->load_s, .sandboxes_registered = registry_count(reg),
	    .sandboxes_suspended = registry_suspended_count(reg)};

	registry_unref(reg);
	if (p != NULL)
		policy_unref(p);
	return metrics_render(&src, len);
}

/* An AssumeRole or token fetch ended: the workers resume (or answer) the requests
 * waiting for it. */
static void
serve_sts_done(void *arg)
{
	struct serve *s = arg;

	if (s->proxy != NULL)
		proxy_wake_workers(s->proxy);
}

/* The AssumeRole and minted-token caches the workers share and the clients that fill
 * them on this (the main) thread: before the workers start, which read them. */
static int
serve_sts_init(struct serve *s, char *err, size_t errlen)
{
	if ((s->shared.sts_cache = stscache_new()) == NULL) {
		snprintf(err, errlen, "AssumeRole cache: out of memory");
		return -1;
	}
	s->shared.sts = stsclient_new(s->base, s->shared.tls_client, s->shared.sts_cache,
	    AWSROLE_PORT, serve_sts_done, s, err, errlen);
	if (s->shared.sts == NULL)
		return -1;
	if ((s->shared.mint_cache = mintcache_new()) == NULL) {
		snprintf(err, errlen, "mint cache: out of memory");
		return -1;
	}
	s->shared.mint = mintclient_new(s->base, s->shared.tls_client, s->shared.mint_cache,
	    serve_sts_done, s, err, errlen);
	return s->shared.mint != NULL ? 0 : -1;
}

/* A sandbox was suspended: the workers close its idle and spliced connections. */
static void
serve_sandboxes_changed(void *arg)
{
	struct serve *s = arg;

	if (s->proxy != NULL)
		proxy_close_suspended(s->proxy);
}

static int
serve_admin_listen(struct serve *s, char *err, size_t errlen)
{
	admin_hooks_t h = {
		.reload = serve_reload,
		.metrics = serve_metrics,
		.ready = serve_ready,
		.sandboxes_changed = serve_sandboxes_changed,
		.arg = s,
		.token_file = s->policy->admin_token_file,
		.revocations_file = s->policy->revocations_file,
	};

	s->admin = admin_new(s->base, s->policy->listen.admin, &h, err, errlen);
	if (s->admin == NULL)
		return -1;
	snprintf(s->admin_addr, sizeof(s->admin_addr), "%s", admin_bound(s->admin));
	log_info("admin listening on %s", s->admin_addr);
	return 0;
}

static int
serve_write_ready(struct serve *s, char *err, size_t errlen)
{
	json_t *o;
	char *txt;
	int rc;

	if (s->ready_file == NULL)
		return 0;
	o = json_pack("{s:i, s:s?, s:s?, s:s?, s:s*, s:s*}", "pid", (json_int_t)getpid(),
	    "proxy", s->proxy ? proxy_bound(s->proxy) : NULL,
	    "metadata", s->metadata ? metadata_bound(s->metadata) : NULL,
	    "admin", s->admin ? s->admin_addr : NULL,
	    "metadata_aws", s->metadata ? metadata_bound_aws(s->metadata) : NULL,
	    "transparent", s->proxy ? proxy_transparent_bound(s->proxy) : NULL);
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rc = util_write_file(s->ready_file, txt, strlen(txt), 0644, err, errlen);
	free(txt);
	return rc;
}

/* The metadata responder: mints with the current seal key, advertises the proxy. */
static int
serve_metadata_listen(struct serve *s, char *err, size_t errlen)
{
	metadata_opts_t o = {
		.seal_key = seal_keyring_current(s->shared.keyring),
		.ca_cert_path = s->policy->keys.ca_cert,
		.rl = s->shared.rl,
		.listen_aws = s->policy->listen.metadata_aws,
	};
	char url[128];

	if (s->proxy) {
		snprintf(url, sizeof(url), "http://%s", proxy_bound(s->proxy));
		o.proxy_url = url;
	}
	s->metadata = metadata_new(s->base, s->policy->listen.metadata, &o, err, errlen);
	if (s->metadata == NULL)
		return -1;
	log_info("metadata listening on %s", metadata_bound(s->metadata));
	if (metadata_bound_aws(s->metadata) != NULL)
		log_info("metadata (AWS container credentials) listening on %s",
		    metadata_bound_aws(s->metadata));
	return 0;
}

static int
serve_listen(struct serve *s, char *err, size_t errlen)
{
	const policy_t *p = s->policy;

	if (p->listen.proxy) {
		s->shared.busy_poll_us = p->limits.busy_poll_us;
		s->proxy = proxy_new(s->base, p->listen.proxy, p->limits.workers,
		    p->limits.max_connections, &s->shared, err, errlen);
		if (s->proxy == NULL)
			return -1;
		log_info("proxy listening on %s", proxy_bound(s->proxy));
		if (p->listen.transparent != NULL) {
			if (proxy_listen_transparent(s->proxy, p->listen.transparent, err,
			    errlen) < 0)
				return -1;
			log_info("transparent listening on %s",
			    proxy_transparent_bound(s->proxy));
		}
	}
	if (p->listen.metadata && serve_metadata_listen(s, err, errlen) < 0)
		return -1;
	if (p->listen.admin && serve_admin_listen(s, err, errlen) < 0)
		return -1;
	return 0;
}

static void
serve_drainwatch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *s = arg;
	uint64_t left = proxy_active();

	(void)fd;
	(void)what;
	if (left == 0 || util_mono_ms() >= s->drain_deadline) {
		if (left)
			log_warn("drain timeout: closing %llu connections",
			    (unsigned long long)left);
		event_base_loopbreak(s->base);
	}
}

/* SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then exit. */
static void
serve_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct serve *s = arg;

	(void)what;
	if (s->draining || s->proxy == NULL) {
		event_base_loopbreak(s->base);	/* second signal: stop now */
		return;
	}
	log_info("%s: draining (up to %llu ms), then exiting", sig == SIGINT ? "SIGINT" :
	    "SIGTERM", (unsigned long long)s->drain_timeout_ms);
	s->draining = true;
	s->drain_deadline = util_mono_ms() + s->drain_timeout_ms;
	proxy_drain(s->proxy);
	s->drainwatch = event_new(s->base, -1, EV_PERSIST, serve_drainwatch_cb, s);
	event_add(s->drainwatch, &(struct timeval){0, SG_DRAIN_POLL_MS * 1000});
}

/* SIGHUP: reload the policy; on error keep the old one (the message is located). */
static void
serve_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct serve *s = arg;
	char msg[4096] = "", err[256];
	int rc;

	(void)sig;
	(void)what;
	rc = serve_reload(s, msg, sizeof(msg));
	if (rc < 0)
		log_warn("SIGHUP reload failed:\n%s", msg);
	audit_log(&(audit_event_t){.event = "reload", .source = "SIGHUP",
	    .status = rc < 0 ? 422 : 200, .error = rc < 0 ? "policy_invalid" : NULL,
	    .detail = rc < 0 ? msg : NULL});
	if (rc == 0 && s->admin && admin_refresh(s->admin, err, sizeof(err)) < 0)
		log_warn("admin token not refreshed: %s", err);
}

/* SIGUSR1: reopen the audit file (logrotate). */
static void
serve_sigusr1_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	audit_reopen();
}

static void
serve_cleanup(struct serve *s)
{
	proxy_free(s->proxy);
	admin_free(s->admin);
	metadata_free(s->metadata);
	stsclient_free(s->shared.sts);	/* workers are joined: nobody waits for a fetch */
	mintclient_free(s->shared.mint);
	if (s->sigint)
		event_free(s->sigint);
	if (s->sigterm)
		event_free(s->sigterm);
	if (s->sighup)
		event_free(s->sighup);
	if (s->sigusr1)
		event_free(s->sigusr1);
	if (s->drainwatch)
		event_free(s->drainwatch);
	if (s->revwatch)
		event_free(s->revwatch);
	if (s->regsweep)
		event_free(s->regsweep);	/* before event_base_free: it locks the base */
	cluster_free(s->cluster);
	fleettab_free(s->shared.fleet);	/* after the cluster: its callbacks use it */
	if (s->fleetwake)
		event_free(s->fleetwake);
	revoke_shutdown();
	secwatch_free(s->secwatch);	/* before audit_close: it may still log */
	audit_close();		/* workers are joined: nothing logs any more */
	if (s->base)
		event_base_free(s->base);
	SSL_CTX_free(s->shared.tls_server);
	SSL_CTX_free(s->shared.tls_client);
	certcache_free(s->shared.certs);
	certforge_free(s->shared.forge);
	handlecache_free(s->shared.handles);
	stscache_free(s->shared.sts_cache);
	mintcache_free(s->shared.mint_cache);
	ratelimit_free(s->shared.rl);
	seal_keyring_free(s->shared.keyring);
	registry_close(s->registry);
	policy_shutdown();
	if (s->policy)
		policy_unref(s->policy);
	free(s->revocations_file);
}

/* Secrets live in this process's memory: no core dumps, no ptrace by other users. */
static void
serve_protect_memory(void)
{
	struct rlimit none = {0, 0};

	if (setrlimit(RLIMIT_CORE, &none) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_warn("cannot disable core dumps: %s", strerror(errno));
}

/* After binding (low ports need root): become user, for good. */
static int
serve_drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL) {
		snprintf(err, errlen, "--user %s: no such user", user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		snprintf(err, errlen, "--user %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		snprintf(err, errlen, "--user %s: root privileges could be regained", user);
		return -1;
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);	/* setuid resets it */
	log_info("running as %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

static int
serve_load_policy(struct serve *s, const char *path)
{
	policy_errors_t errs = {0};
	double t0 = util_mono_msf();

	s->policy = policy_load(path, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	policy_errors_free(&errs);
	if (s->policy == NULL)
		return -1;
	s->drain_timeout_ms = s->policy->limits.drain_timeout_ms;
	if (s->policy->revocations_file != NULL &&
	    (s->revocations_file = strdup(s->policy->revocations_file)) == NULL) {
		log_err("out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->policy->warnings.n; i++)
		log_warn("%s", s->policy->warnings.v[i]);
	policy_publish(policy_ref(s->policy));
	s->load_s = (util_mono_msf() - t0) / 1000.0;
	log_info("policy loaded from %s in %.1f ms", path, s->load_s * 1000.0);
	return 0;
}

/*
 * Startup is done: drop serve's reference to the startup snapshot. The published one
 * (the same snapshot until the first reload) is held by policy_publish; after a reload
 * the startup snapshot is freed, secrets and all, once its last connection ends.
 */
static void
serve_release_policy(struct serve *s)
{
	policy_unref(s->policy);
	s->policy = NULL;
}

/* Expired registrations are refused by authz at once; the sweep journals and frees them. */
#define SERVE_REGISTRY_SWEEP_S	1

static void
serve_regsweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *s = arg;

	(void)fd;
	(void)what;
	(void)registry_sweep(util_now_s());
	/* connections of suspended sandboxes busy at the last sweep may be idle now */
	if (registry_suspended_published() > 0)
		serve_sandboxes_changed(s);
}

static int
serve_run(struct serve *s, const char *policy_path)
{
	char err[1024] = "";

	s->policy_path = policy_path;
	if (serve_load_policy(s, policy_path) < 0)
		return CLI_FAIL;
	if (audit_open(s->policy->audit_path ? s->policy->audit_path : "-", err,
	    sizeof(err)) < 0) {
		log_err("audit log: %s", err);
		return CLI_FAIL;
	}
	if (serve_ensure_keys(s->policy, err, sizeof(err)) < 0 ||
	    serve_tls_init(s, err, sizeof(err)) < 0 ||
	    serve_handles_init(s, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return CLI_FAIL;
	}
	/* the sandbox registry: replay its journal, then compact it */
	s->registry = registry_open(s->policy->state_dir ? s->policy->state_dir : ".",
	    s->policy, util_now_s(), err, sizeof(err));
	if (s->registry == NULL) {
		log_err("sandbox registry: %s", err);
		return CLI_FAIL;
	}
	log_info("sandbox registry: %zu registered sandboxes from %s",
	    registry_load_info(s->registry)->live, registry_journal_path(s->registry));
	s->base = event_base_new();
	/* rotating secrets: an exec secret's first value before anything is served */
	if (s->base == NULL || (s->secwatch = secwatch_new(s->base, s->policy, NULL, err,
	    sizeof(err))) == NULL || serve_sts_init(s, err, sizeof(err)) < 0 ||
	    serve_fleet_init(s, err, sizeof(err)) < 0 || serve_listen(s, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return CLI_FAIL;
	}
	s->sigint = evsignal_new(s->base, SIGINT, serve_signal_cb, s);
	s->sigterm = evsignal_new(s->base, SIGTERM, serve_signal_cb, s);
	s->sighup = evsignal_new(s->base, SIGHUP, serve_sighup_cb, s);
	s->sigusr1 = evsignal_new(s->base, SIGUSR1, serve_sigusr1_cb, s);
	event_add(s->sigint, NULL);
	event_add(s->sigterm, NULL);
	event_add(s->sighup, NULL);
	event_add(s->sigusr1, NULL);
	if (s->policy->revocations_file) {
		/* fleet mode: look as often as changes are sent, so `sealgate revoke` reaches
		 * the other sidecars within a second too */
		uint64_t ms = s->policy->cluster.set ? SG_CLUSTER_SYNC_MS :
		    SG_REVOCATION_POLL_S * 1000;

		s->revwatch = event_new(s->base, -1, EV_PERSIST, serve_revwatch_cb, s);
		event_add(s->revwatch, &(struct timeval){ms / 1000, (ms % 1000) * 1000});
	}
	if (s->policy->cluster.set &&
	    (s->cluster = cluster_new(s->base, s->policy, s->shared.fleet, err,
	    sizeof(err))) == NULL) {
		log_err("cluster: %s", err);
		return CLI_FAIL;
	}
	/* expire registered sandboxes every SERVE_REGISTRY_SWEEP_S */
	s->regsweep = event_new(s->base, -1, EV_PERSIST, serve_regsweep_cb, s);
	event_add(s->regsweep, &(struct timeval){SERVE_REGISTRY_SWEEP_S, 0});
	if (serve_write_ready(s, err, sizeof(err)) < 0 ||
	    (s->user && serve_drop_privileges(s->user, err, sizeof(err)) < 0)) {
		log_err("%s", err);
		return CLI_FAIL;
	}
	serve_release_policy(s);
	event_base_dispatch(s->base);
	return CLI_OK;
}

int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"policy", required_argument, NULL, 'p'},
		{"ready-file", required_argument, NULL, 'r'},
		{"log-level", required_argument, NULL, 'l'},
		{"user", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct serve s;
	const char *policy_path = NULL;
	int c, rc, lvl;

	memset(&s, 0, sizeof(s));
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:r:l:u:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': policy_path = optarg; break;
		case 'r': s.ready_file = optarg; break;
		case 'l':
			if ((lvl = log_parse_level(optarg)) < 0) {
				fprintf(stderr, "sealgate serve: unknown log level %s\n", optarg);
				return CLI_USAGE;
			}
			log_set_level((enum log_level)lvl);
			break;
		case 'u': s.user = optarg; break;
		case 'h': serve_usage(stdout); return CLI_OK;
		default: serve_usage(stderr); return CLI_USAGE;
		}
	}
	if (policy_path == NULL || optind != argc) {
		serve_usage(stderr);
		return CLI_USAGE;
	}
	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	serve_protect_memory();
	rc = serve_run(&s, policy_path);
	serve_cleanup(&s);
	return rc;
}
