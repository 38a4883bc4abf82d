/*
 * cluster.c — fleet mode over Redis: connect, AUTH, SUBSCRIBE, reconcile, push, apply.
 * States: DOWN (a retry is scheduled) -> CONNECTING (contexts open, waiting for the
 * SUBSCRIBE confirmation and the HGETALL answer) -> UP (reconciled; changes flow).
 * Every failure goes through cluster_fail, which only schedules the retry: contexts are
 * freed in the retry timer, never inside a hiredis callback.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster.h"
#include "cluster_rate.h"
#include "clustermsg.h"
#include "defaults.h"
#include "log.h"
#include "revoke.h"
#include "secmem.h"
#include "stats.h"
#include "util.h"

enum cluster_state { CL_DOWN, CL_CONNECTING, CL_UP };

/* Keep the later ts (handles and keys: the first one), PUBLISH only on a change. */
static const char cluster_push_lua[] =
	"local o = redis.call('HGET', KEYS[1], ARGV[1]) "
	"if o and (ARGV[4] == '1' or tonumber(o) >= tonumber(ARGV[2])) then return 0 end "
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
	"redis.call('PUBLISH', KEYS[2], ARGV[3]) "
	"return 1";

struct cluster {
	struct event_base *base;
	char *address, *user, *node, *revfile;
	char host[256];
	int port;
	const char *unix_path;		/* into address, or NULL */
	char *password;			/* secmem_wipe_alloc'd, or NULL */
	size_t password_len;
	char key[CLUSTERMSG_MAX_NAME + 32], channel[CLUSTERMSG_MAX_NAME + 32];
	redisAsyncContext *cmd, *sub;
	struct event *retry, *tick, *deadline;
	unsigned backoff_ms;
	int state;			/* enum cluster_state; atomic for cluster_connected */
	const char *logged;		/* the problem last logged ("connect", "AUTH", ...):
					 * each is logged once until it changes or Redis is
					 * reached, not once per retry; NULL after a success */
	revoke_set_t *synced;		/* the local set as last sent to Redis */
	uint64_t ping_at;		/* monotonic ms of the last PING sent (or of UP) */
	bool ping_waiting;		/* a PING is unanswered */
	uint64_t synced_gen;
	fleettab_t *fleet;		/* the caller's, or NULL: no fleet rate limits */
	cluster_rate_t *rate;		/* its lease traffic, or NULL */
};

static void cluster_fail(cluster_t *cl, const char *why);
static void cluster_connect(cluster_t *cl);

static void
cluster_set_state(cluster_t *cl, int st)
{
	__atomic_store_n(&cl->state, st, __ATOMIC_RELAXED);
	__atomic_store_n(&sg_stats.cluster_connected, st == CL_UP, __ATOMIC_RELAXED);
	if (cl->fleet != NULL)
		fleettab_set_up(cl->fleet, st == CL_UP);
}

/* Lease requests and give-backs due now (up: sent; else only the bookkeeping). */
static void
cluster_rate_due(cluster_t *cl)
{
	if (cl->rate == NULL)
		return;
	if (cluster_rate_run(cl->rate, cl->state == CL_UP ? cl->cmd : NULL) < 0)
		cluster_fail(cl, "rate lease");
}

void
cluster_rate_kick(cluster_t *cl)
{
	if (cl != NULL && cl->state == CL_UP)
		cluster_rate_due(cl);
}

int
cluster_connected(const cluster_t *cl)
{
	return cl != NULL && __atomic_load_n(&cl->state, __ATOMIC_RELAXED) == CL_UP;
}

/* Our context c (cmd or sub): its slot, or NULL for one already let go. */
static redisAsyncContext **
cluster_slot(cluster_t *cl, const redisAsyncContext *c)
{
	if (c == cl->cmd)
		return &cl->cmd;
	if (c == cl->sub)
		return &cl->sub;
	return NULL;
}

/* Log this problem unless it is the one logged last (retries repeat it). 1: log it. */
static int
cluster_log_once(cluster_t *cl, const char *what)
{
	if (cl->logged != NULL && strcmp(cl->logged, what) == 0)
		return 0;
	cl->logged = what;
	return 1;
}

/* An error reply (or none): log it, fail. 1 when it was one, 0 for a good reply. */
static int
cluster_reply_failed(cluster_t *cl, const redisAsyncContext *c, const redisReply *r,
    const char *what)
{
	if (cluster_slot(cl, c) == NULL || r == NULL)
		return 1;	/* a context being let go: its callbacks get NULL */
	if (r->type != REDIS_REPLY_ERROR)
		return 0;
	if (cl->state == CL_DOWN)
		return 1;	/* already failed (e.g. AUTH): what follows says NOAUTH */
	if (cluster_log_once(cl, what))
		log_err("cluster: redis %s: %s failed: %.200s", cl->address, what, r->str);
	cluster_fail(cl, what);
	return 1;
}

/* --- applying what Redis has ------------------------------------------------------- */

/* Reload the file after a change and publish it: the path of a local revocation. */
static void
cluster_republish(cluster_t *cl)
{
	char err[512];
	revoke_set_t *rs = revoke_load(cl->revfile, err, sizeof(err));

	if (rs == NULL)
		log_warn("cluster: revocations written but not reloaded: %s", err);
	else
		revoke_publish(rs);
}

static long
cluster_apply(cluster_t *cl, const revoke_record_t *recs, size_t n)
{
	char err[512];
	long changed = revoke_add_records(cl->revfile, recs, n, err, sizeof(err));

	if (changed < 0)
		log_err("cluster: cannot record shared revocations: %s", err);
	else if (changed > 0) {
		cluster_republish(cl);
		__atomic_add_fetch(&sg_stats.cluster_revocations_applied, (uint64_t)changed,
		    __ATOMIC_RELAXED);
	}
	return changed;
}

static void
cluster_message(cluster_t *cl, const char *msg, size_t len)
{
	clustermsg_rec_t m;

	if (clustermsg_msg_decode(msg, len, &m) < 0) {
		log_warn("cluster: ignored a malformed message on %s (%zu bytes)", cl->channel,
		    len);
		return;
	}
	/* Our own messages too: already in the file, so nothing changes — unless two
	 * sidecars were given the same node name, which must not lose revocations. */
	if (cluster_apply(cl, &m.rec, 1) > 0)
		log_info("cluster: revocation of %s %s from node %s applied", m.kind, m.value,
		    m.node);
}

/* --- pushing local entries ------------------------------------------------------------- */

static void
cluster_push_cb(redisAsyncContext *c, void *reply, void *arg)
{
	cluster_t *cl = c->data;
	redisReply *r = reply;

	(void)arg;
	if (cluster_reply_failed(cl, c, r, "EVAL (revocation write)"))
		return;
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
		STATS_INC(cluster_revocations_sent);
}

static int
cluster_push_one(const revoke_record_t *rec, void *arg)
{
	cluster_t *cl = arg;
	char field[CLUSTERMSG_MAX_RECORD], ts[32], msg[CLUSTERMSG_MAX_RECORD];
	const char *absolute = strcmp(rec->kind, "handle") == 0 ||
	    strcmp(rec->kind, "key") == 0 ? "1" : "0";
	const char *argv[] = {"EVAL", cluster_push_lua, "2", cl->key, cl->channel, field, ts,
		msg, absolute};
	size_t argvlen[SG_ARRAY_LEN(argv)];

	if (clustermsg_field_encode(rec, field, sizeof(field), ts, sizeof(ts)) < 0 ||
	    clustermsg_msg_encode(cl->node, rec, msg, sizeof(msg)) < 0) {
		log_warn("cluster: %s %.80s not sent: not encodable", rec->kind, rec->value);
		return 0;
	}
	for (size_t i = 0; i < SG_ARRAY_LEN(argv); i++)
		argvlen[i] = strlen(argv[i]);
	if (cl->cmd == NULL || redisAsyncCommandArgv(cl->cmd, cluster_push_cb, NULL,
	    (int)SG_ARRAY_LEN(argv), argv, argvlen) != REDIS_OK)
		return -1;
	return 0;
}

/*
 * Send what the published set has beyond cl->synced; it becomes cl->synced. The number
 * of entries sent, or -1 (then the connection has failed).
 */
static long
cluster_push_changes(cluster_t *cl)
{
	uint64_t gen = revoke_published_generation();
	revoke_set_t *cur;
	long sent;

	if (gen == cl->synced_gen && cl->synced != NULL)
		return 0;
	cur = revoke_acquire();
	if ((sent = revoke_diff(cur, cl->synced, cluster_push_one, cl)) < 0) {
		revoke_unref(cur);
		cluster_fail(cl, "write");
		return -1;
	}
	revoke_unref(cl->synced);
	cl->synced = cur;
	cl->synced_gen = gen;
	return sent;
}

static void
cluster_ping_cb(redisAsyncContext *c, void *reply, void *arg)
{
	cluster_t *cl = c->data;

	(void)arg;
	if (!cluster_reply_failed(cl, c, reply, "PING"))
		cl->ping_waiting = false;
}

/* Liveness: a PING every SG_CLUSTER_PING_MS; unanswered for the timeout, Redis is lost. */
static void
cluster_ping(cluster_t *cl)
{
	uint64_t now = util_mono_ms();
	const char *argv[] = {"PING"};
	size_t argvlen[] = {4};

	if (cl->ping_waiting && now - cl->ping_at >= SG_CLUSTER_PING_TIMEOUT_MS) {
		if (cluster_log_once(cl, "silent"))
			log_warn("cluster: redis %s did not answer a PING within %d ms (serving "
			    "from the local revocations; reconnecting)", cl->address,
			    SG_CLUSTER_PING_TIMEOUT_MS);
		cluster_fail(cl, "PING");
		return;
	}
	if (cl->ping_waiting || now - cl->ping_at < SG_CLUSTER_PING_MS)
		return;
	cl->ping_at = now;
	cl->ping_waiting = true;
	if (cl->cmd == NULL || redisAsyncCommandArgv(cl->cmd, cluster_ping_cb, NULL, 1, argv,
	    argvlen) != REDIS_OK)
		cluster_fail(cl, "PING");
}

static void
cluster_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	cluster_t *cl = arg;

	(void)fd;
	(void)what;
	if (cl->state == CL_UP && cluster_push_changes(cl) >= 0)
		cluster_ping(cl);
	if (cl->state != CL_CONNECTING)
		cluster_rate_due(cl);
}

/* --- reconcile ------------------------------------------------------------------------ */

struct cluster_recs {
	clustermsg_rec_t *v;
	revoke_record_t *rec;
	size_t n;
};

static void
cluster_recs_free(struct cluster_recs *rs)
{
	free(rs->v);
	free(rs->rec);
}

/* HGETALL's [field, ts, field, ts, ...] into records; bad entries are skipped. */
static int
cluster_recs_decode(cluster_t *cl, const redisReply *r, struct cluster_recs *out)
{
	size_t pairs = r->elements / 2, bad = 0;

	memset(out, 0, sizeof(*out));
	if ((out->v = calloc(pairs + 1, sizeof(*out->v))) == NULL ||
	    (out->rec = calloc(pairs + 1, sizeof(*out->rec))) == NULL)
		return -1;
	for (size_t i = 0; i < pairs; i++) {
		const redisReply *f = r->element[2 * i], *t = r->element[2 * i + 1];

		if (f->type != REDIS_REPLY_STRING || t->type != REDIS_REPLY_STRING ||
		    clustermsg_field_decode(f->str, f->len, t->str, t->len,
		    &out->v[out->n]) < 0) {
			bad++;
			continue;
		}
		out->rec[out->n] = out->v[out->n].rec;
		out->n++;
	}
	if (bad > 0)
		log_warn("cluster: %zu malformed entries in %s ignored", bad, cl->key);
	return 0;
}

struct cluster_collect {
	revoke_record_t *v;
	size_t n, cap;
};

static int
cluster_collect_one(const revoke_record_t *rec, void *arg)
{
	struct cluster_collect *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		revoke_record_t *v = realloc(c->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *rec;
	return 0;
}

/* Redis entries the local set lacks: into the file, published. -1 on failure. */
static long
cluster_pull(cluster_t *cl, const revoke_set_t *remote)
{
	struct cluster_collect want = {0};
	revoke_set_t *local = revoke_acquire();
	long changed = 0;

	if (revoke_diff(remote, local, cluster_collect_one, &want) < 0)
		changed = -1;
	else if (want.n > 0)
		changed = cluster_apply(cl, want.v, want.n);
	revoke_unref(local);
	free(want.v);
	return changed;
}

static void
cluster_reconcile(cluster_t *cl, const redisReply *r)
{
	struct cluster_recs recs;
	revoke_set_t *remote = NULL;
	char err[256];
	long pulled, pushed;

	if (cluster_recs_decode(cl, r, &recs) < 0 ||
	    (remote = revoke_from_records(recs.rec, recs.n, err, sizeof(err))) == NULL ||
	    (pulled = cluster_pull(cl, remote)) < 0) {
		cluster_recs_free(&recs);
		revoke_unref(remote);
		cluster_fail(cl, "reconcile");
		return;
	}
	revoke_unref(cl->synced);
	cl->synced = remote;	/* push what the local set has beyond Redis */
	cl->synced_gen = 0;
	cluster_recs_free(&recs);
	if ((pushed = cluster_push_changes(cl)) < 0)
		return;
	cluster_set_state(cl, CL_UP);
	cl->ping_at = util_mono_ms();
	cl->ping_waiting = false;
	cl->backoff_ms = SG_CLUSTER_BACKOFF_MIN_MS;
	cl->logged = NULL;
	event_del(cl->deadline);
	log_info("cluster: connected to redis %s as node %s: %ld shared revocations applied "
	    "here, %ld local ones written back", cl->address, cl->node, pulled, pushed);
	cluster_rate_due(cl);	/* a first lease for every fleet credential */
}

static void
cluster_hgetall_cb(redisAsyncContext *c, void *reply, void *arg)
{
	cluster_t *cl = c->data;
	redisReply *r = reply;

	(void)arg;
	if (cluster_reply_failed(cl, c, r, "HGETALL"))
		return;
	if (r->type != REDIS_REPLY_ARRAY) {
		log_err("cluster: redis %s: %s is not a hash", cl->address, cl->key);
		cluster_fail(cl, "HGETALL");
		return;
	}
	cluster_reconcile(cl, r);
}

/* Subscription confirmed: read the whole hash (messages from now on are not missed). */
static void
cluster_subscribed(cluster_t *cl)
{
	const char *argv[] = {"HGETALL", cl->key};
	size_t argvlen[] = {7, strlen(cl->key)};

	if (cl->cmd == NULL || redisAsyncCommandArgv(cl->cmd, cluster_hgetall_cb, NULL, 2,
	    argv, argvlen) != REDIS_OK)
		cluster_fail(cl, "HGETALL");
}

static void
cluster_sub_cb(redisAsyncContext *c, void *reply, void *arg)
{
	cluster_t *cl = c->data;
	redisReply *r = reply;
	const redisReply *kind, *payload;

	(void)arg;
	if (cluster_reply_failed(cl, c, r, "SUBSCRIBE"))
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    (kind = r->element[0])->type != REDIS_REPLY_STRING)
		return;
	payload = r->element[2];
	if (strcmp(kind->str, "subscribe") == 0)
		cluster_subscribed(cl);
	else if (strcmp(kind->str, "message") == 0 && payload->type == REDIS_REPLY_STRING)
		cluster_message(cl, payload->str, payload->len);
}

/* --- connections --------------------------------------------------------------------- */

static void
cluster_auth_cb(redisAsyncContext *c, void *reply, void *arg)
{
	cluster_t *cl = c->data;
	redisReply *r = reply;

	(void)arg;
	if (cluster_slot(cl, c) == NULL || r == NULL || r->type != REDIS_REPLY_ERROR ||
	    cl->state == CL_DOWN)
		return;		/* the second connection's AUTH says the same */
	if (cluster_log_once(cl, "AUTH"))
		log_err("cluster: redis %s refused AUTH%s%s: %.200s (serving from the "
		    "local revocations; retrying)", cl->address, cl->user ? " as user " : "",
		    cl->user ? cl->user : "", r->str);
	cluster_fail(cl, "AUTH");
}

/* AUTH [user] password, binary-safe; queued before anything else on c. */
static int
cluster_auth(cluster_t *cl, redisAsyncContext *c)
{
	const char *argv[3] = {"AUTH"};
	size_t argvlen[3] = {4};
	int n = 1;

	if (cl->user != NULL) {
		argv[n] = cl->user;
		argvlen[n++] = strlen(cl->user);
	}
	argv[n] = cl->password;
	argvlen[n++] = cl->password_len;
	return redisAsyncCommandArgv(c, cluster_auth_cb, NULL, n, argv, argvlen);
}

static void
cluster_connect_cb(const redisAsyncContext *c, int status)
{
	cluster_t *cl = c->data;
	redisAsyncContext **slot = cluster_slot(cl, c);

	if (status == REDIS_OK || slot == NULL)
		return;
	*slot = NULL;		/* hiredis frees it after this callback */
	if (cluster_log_once(cl, "connect"))
		log_warn("cluster: cannot connect to redis %s: %s (serving from the local "
		    "revocations; retrying)", cl->address, c->errstr);
	cluster_fail(cl, "connect");
}

static void
cluster_disconnect_cb(const redisAsyncContext *c, int status)
{
	cluster_t *cl = c->data;
	redisAsyncContext **slot = cluster_slot(cl, c);

	if (slot == NULL)
		return;
	*slot = NULL;		/* hiredis frees it after this callback */
	if (cl->state == CL_UP)
		log_warn("cluster: lost redis %s: %s (serving from the local revocations; "
		    "reconnecting)", cl->address, status == REDIS_OK ? "closed" : c->errstr);
	cluster_fail(cl, "disconnect");
}

static redisAsyncContext *
cluster_open(cluster_t *cl)
{
	redisAsyncContext *c = cl->unix_path ? redisAsyncConnectUnix(cl->unix_path) :
	    redisAsyncConnect(cl->host, cl->port);

	if (c == NULL)
		return NULL;
	if (c->err) {
		if (cluster_log_once(cl, "connect"))
			log_warn("cluster: cannot connect to redis %s: %s", cl->address,
			    c->errstr);
		redisAsyncFree(c);
		return NULL;
	}
	c->data = cl;
	if (redisLibeventAttach(c, cl->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(c, cluster_connect_cb) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(c, cluster_disconnect_cb) != REDIS_OK ||
	    (cl->password != NULL && cluster_auth(cl, c) != REDIS_OK)) {
		redisAsyncFree(c);
		return NULL;
	}
	return c;
}

/* Let both contexts go (outside hiredis callbacks): their callbacks see no slot. */
static void
cluster_close(cluster_t *cl)
{
	redisAsyncContext *cmd = cl->cmd, *sub = cl->sub;

	cl->cmd = cl->sub = NULL;
	if (cmd != NULL)
		redisAsyncFree(cmd);
	if (sub != NULL)
		redisAsyncFree(sub);
}

static void
cluster_connect(cluster_t *cl)
{
	const char *argv[] = {"SUBSCRIBE", cl->channel};
	size_t argvlen[] = {9, strlen(cl->channel)};
	uint64_t ms = SG_CLUSTER_CONNECT_TIMEOUT_MS;

	cluster_set_state(cl, CL_CONNECTING);
	if ((cl->cmd = cluster_open(cl)) == NULL || (cl->sub = cluster_open(cl)) == NULL ||
	    redisAsyncCommandArgv(cl->sub, cluster_sub_cb, NULL, 2, argv, argvlen) !=
	    REDIS_OK) {
		cluster_fail(cl, "connect");
		return;
	}
	event_add(cl->deadline, &(struct timeval){ms / 1000, (ms % 1000) * 1000});
}

static void
cluster_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	cluster_t *cl = arg;

	(void)fd;
	(void)what;
	cluster_close(cl);
	STATS_INC(cluster_reconnects);
	cluster_connect(cl);
}

static void
cluster_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	cluster_t *cl = arg;

	(void)fd;
	(void)what;
	if (cl->state == CL_UP)
		return;
	if (cluster_log_once(cl, "timeout"))
		log_warn("cluster: redis %s: not ready within %d ms (serving from the local "
		    "revocations; retrying)", cl->address, SG_CLUSTER_CONNECT_TIMEOUT_MS);
	cluster_fail(cl, "timeout");
}

/* Down: schedule the retry (which closes what is left), backoff doubling. */
static void
cluster_fail(cluster_t *cl, const char *why)
{
	unsigned ms = cl->backoff_ms;

	if (cl->state == CL_DOWN)
		return;
	log_debug("cluster: down (%s), retry in %u ms", why, ms);
	cluster_set_state(cl, CL_DOWN);
	event_del(cl->deadline);
	cl->backoff_ms = ms * 2 > SG_CLUSTER_BACKOFF_MAX_MS ? SG_CLUSTER_BACKOFF_MAX_MS :
	    ms * 2;
	event_add(cl->retry, &(struct timeval){ms / 1000, (ms % 1000) * 1000});
}

/* --- lifecycle ----------------------------------------------------------------------- */

/* The policy's node, or the host name made into one. */
static char *
cluster_node_name(const char *node)
{
	char host[CLUSTERMSG_MAX_NAME + 1] = "";

	if (node != NULL)
		return strdup(node);
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[CLUSTERMSG_MAX_NAME] = '\0';
	for (char *p = host; *p; p++)
		if (!clustermsg_node_valid((char[]){*p, '\0'}))
			*p = '-';
	return strdup(host[0] ? host : "node");
}

static int
cluster_copy_config(cluster_t *cl, const policy_t *p, char *err, size_t errlen)
{
	const policy_cluster_t *pc = &p->cluster;

	if ((cl->address = strdup(pc->address)) == NULL ||
	    (cl->revfile = strdup(p->revocations_file)) == NULL ||
	    (cl->node = cluster_node_name(pc->node)) == NULL ||
	    (pc->user != NULL && (cl->user = strdup(pc->user)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pc->password != NULL) {
		if ((cl->password = secmem_wipe_alloc(pc->password_len + 1)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(cl->password, pc->password, pc->password_len);
		cl->password_len = pc->password_len;
	}
	if (clustermsg_address_split(cl->address, cl->host, sizeof(cl->host), &cl->port,
	    &cl->unix_path) < 0 ||
	    clustermsg_revocations_key(pc->prefix, cl->key, sizeof(cl->key)) < 0 ||
	    clustermsg_revocations_channel(pc->prefix, cl->channel, sizeof(cl->channel)) < 0) {
		snprintf(err, errlen, "cluster.redis: bad address or prefix");
		return -1;
	}
	return 0;
}

cluster_t *
cluster_new(struct event_base *base, const policy_t *p, fleettab_t *fleet, char *err,
    size_t errlen)
{
	cluster_t *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cl->base = base;
	cl->backoff_ms = SG_CLUSTER_BACKOFF_MIN_MS;
	if (cluster_copy_config(cl, p, err, errlen) < 0)
		goto fail;
	cl->fleet = fleet;
	if (fleet != NULL && (cl->rate = cluster_rate_new(fleet, p->cluster.prefix)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	cl->retry = evtimer_new(base, cluster_retry_cb, cl);
	cl->deadline = evtimer_new(base, cluster_deadline_cb, cl);
	cl->tick = event_new(base, -1, EV_PERSIST, cluster_tick_cb, cl);
	if (cl->retry == NULL || cl->deadline == NULL || cl->tick == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	event_add(cl->tick, &(struct timeval){0, SG_CLUSTER_SYNC_MS * 1000});
	log_info("cluster: node %s, redis %s, keys %s*", cl->node, cl->address, p->cluster.prefix);
	cluster_connect(cl);
	return cl;
fail:
	cluster_free(cl);
	return NULL;
}

void
cluster_free(cluster_t *cl)
{
	if (cl == NULL)
		return;
	cluster_close(cl);	/* before the rate object: callbacks in flight use it */
	cluster_rate_free(cl->rate);
	if (cl->retry)
		event_free(cl->retry);
	if (cl->deadline)
		event_free(cl->deadline);
	if (cl->tick)
		event_free(cl->tick);
	revoke_unref(cl->synced);
	__atomic_store_n(&sg_stats.cluster_connected, 0, __ATOMIC_RELAXED);
	free(cl->address);
	free(cl->user);
	free(cl->node);
	free(cl->revfile);
	secmem_wipe_free(cl->password);
	free(cl);
}
