/* worker.c — worker threads: event loop, accepted sockets, connections, upstream pool. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "conn.h"
#include "defaults.h"
#include "log.h"
#include "registry.h"
#include "stats.h"
#include "stscache.h"
#include "mintcache.h"
#include "util.h"
#include "worker.h"

/* Sockets waiting for a worker: the main thread pushes, the worker pops. */
struct pending_fd {
	int fd;
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool transparent;		/* from the transparent listener */
	STAILQ_ENTRY(pending_fd) next;
};

struct conn_entry {
	void *conn;
	LIST_ENTRY(conn_entry) next;
};

struct pool_entry {
	worker_t *w;
	char *key;
	struct bufferevent *bev;
	TAILQ_ENTRY(pool_entry) next;
};

struct worker {
	unsigned id;
	pthread_t thread;
	struct event_base *base;
	struct evdns_base *dns;
	struct event *notify;		/* activated by the main thread */
	pthread_mutex_t lock;
	STAILQ_HEAD(pending_head, pending_fd) pending;
	bool stopping;
	const proxy_shared_t *shared;
	void **conns;			/* live connections, for shutdown */
	size_t nconns, capconns;
	TAILQ_HEAD(pool_head, pool_entry) pool;	/* idle upstreams, oldest first */
	size_t npool;
	struct event *trim;		/* give freed heap pages back after parks */
	unsigned parked;		/* connections parked since the last trim */
	uint64_t io;			/* reads seen (busy polling) */
	uint64_t swept;			/* proxy_sweeps() this worker has acted on */
	uint64_t sts_seen;		/* stscache_generation() this worker has acted on */
	uint64_t mint_seen;		/* mintcache_generation() likewise */
	bool thread_started;
};

struct event_base *
worker_base(worker_t *w)
{
	return w->base;
}

struct evdns_base *
worker_dns(worker_t *w)
{
	return w->dns;
}

const proxy_shared_t *
worker_shared(worker_t *w)
{
	return w->shared;
}

void
worker_conn_added(worker_t *w, void *conn)
{
	if (w->nconns == w->capconns) {
		size_t cap = w->capconns ? w->capconns * 2 : 64;
		void **n = realloc(w->conns, cap * sizeof(*n));

		if (n == NULL)
			return;	/* only shutdown bookkeeping is lost */
		w->conns = n;
		w->capconns = cap;
	}
	w->conns[w->nconns++] = conn;
}

void
worker_conn_removed(worker_t *w, void *conn)
{
	for (size_t i = 0; i < w->nconns; i++)
		if (w->conns[i] == conn) {
			w->conns[i] = w->conns[--w->nconns];
			return;
		}
}

/* --- upstream pool ---------------------------------------------------------------- */

static void
pool_entry_free(struct pool_entry *e)
{
	TAILQ_REMOVE(&e->w->pool, e, next);
	e->w->npool--;
	if (e->bev)
		bufferevent_free(e->bev);
	free(e->key);
	free(e);
}

/* An idle upstream that speaks, closes or times out is of no further use. */
static void
pool_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	pool_entry_free(arg);
}

static void
pool_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	pool_entry_free(arg);
}

void
worker_pool_put(worker_t *w, const char *key, struct bufferevent *bev)
{
	struct timeval idle = {SG_POOL_IDLE_S, 0};
	struct pool_entry *e = calloc(1, sizeof(*e));

	if (e == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		bufferevent_free(bev);
		return;
	}
	if (w->npool >= SG_POOL_PER_WORKER)
		pool_entry_free(TAILQ_FIRST(&w->pool));
	e->w = w;
	e->bev = bev;
	TAILQ_INSERT_TAIL(&w->pool, e, next);
	w->npool++;
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_setcb(bev, pool_read_cb, NULL, pool_event_cb, e);
	bufferevent_set_timeouts(bev, &idle, NULL);
	bufferevent_enable(bev, EV_READ);
}

struct bufferevent *
worker_pool_take(worker_t *w, const char *key)
{
	struct pool_entry *e;
	struct bufferevent *bev;

	TAILQ_FOREACH_REVERSE(e, &w->pool, pool_head, next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL)
		return NULL;
	bev = e->bev;
	e->bev = NULL;
	pool_entry_free(e);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	return bev;
}

/*
 * Close this worker's connections from suspended sandboxes that sit between requests
 * (idle or parked, after at least one request) or splice bytes (tunnels, WebSockets). A
 * request in flight finishes; the connection's next request is refused and a later sweep
 * closes it once idle. A connection that has sent nothing yet is left to its first
 * request, which gets the 403 that says why.
 */
static void
worker_close_suspended(worker_t *w)
{
	registry_snapshot_t *reg;

	if (registry_suspended_published() == 0)
		return;
	reg = registry_acquire();
	for (size_t i = w->nconns; i > 0; i--) {	/* conn_close moves the last into i-1 */
		conn_t *c = w->conns[i - 1];
		const registry_entry_t *e;

		if (!(conn_is_idle(c) && conn_has_served(c)) && !conn_is_spliced(c))
			continue;
		e = registry_find_addr(reg, conn_peer_addr(c));
		if (e == NULL || e->suspended_at == 0)
			continue;
		STATS_INC(suspended_closed);
		conn_close(c, "sandbox suspended");
	}
	registry_unref(reg);
}

/*
 * AssumeRole or token fetches ended since the worker last looked (the STS or mint client
 * woke it): its requests waiting for an AWS identity or a minted token go on or are
 * answered. Such waits are rare (a
 * cold cache), so every connection is asked rather than a list kept.
 */
static void
worker_sts_check(worker_t *w)
{
	uint64_t gen = w->shared->sts_cache ? stscache_generation(w->shared->sts_cache) : 0;
	uint64_t mgen = w->shared->mint_cache ? mintcache_generation(w->shared->mint_cache) :
	    0;

	if (gen == w->sts_seen && mgen == w->mint_seen)
		return;
	w->sts_seen = gen;
	w->mint_seen = mgen;
	for (size_t i = w->nconns; i > 0; i--)	/* conn_close moves the last into i-1 */
		if (i - 1 < w->nconns)
			conn_identity_ready(w->conns[i - 1]);
}

static void
worker_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	struct pending_fd *p;

	(void)fd;
	(void)what;
	for (;;) {
		pthread_mutex_lock(&w->lock);
		p = STAILQ_FIRST(&w->pending);
		if (p)
			STAILQ_REMOVE_HEAD(&w->pending, next);
		pthread_mutex_unlock(&w->lock);
		if (p == NULL)
			break;
		if (w->stopping)
			close(p->fd);
		else
			conn_accept(w, p->fd, (struct sockaddr *)&p->ss, p->sslen,
			    p->transparent);
		free(p);
	}
	if (!w->stopping)
		worker_sts_check(w);
	if (w->stopping) {
		while (w->nconns > 0)
			conn_close(w->conns[w->nconns - 1], "shutdown");
		while (!TAILQ_EMPTY(&w->pool))
			pool_entry_free(TAILQ_FIRST(&w->pool));
		/* exit once the callbacks now active ran: freed bufferevents finish their
		 * deferred teardown (an upstream mid-handshake would leak its SSL otherwise) */
		event_base_loopexit(w->base, NULL);
	} else if (proxy_is_draining()) {
		for (size_t i = w->nconns; i > 0; i--)
			if (conn_is_idle(w->conns[i - 1]))
				conn_close(w->conns[i - 1], "draining");
	} else if (proxy_sweeps() != w->swept) {
		w->swept = proxy_sweeps();
		worker_close_suspended(w);
	}
}

void
worker_note_io(worker_t *w)
{
	w->io++;
}

static bool
worker_loop_done(worker_t *w)
{
	return event_base_got_break(w->base) || event_base_got_exit(w->base);
}

/*
 * Busy polling (limits.busy_poll_us; off by default). A proxied request wakes the worker
 * twice (request, then response), and on a VM a sleeping vCPU takes tens of
 * microseconds to wake each time. After a wake-up the worker polls without sleeping
 * until no connection has read anything for spin_us, then sleeps again: an idle worker
 * costs nothing, a busy one up to its whole core — the trade HAProxy's busy-polling
 * makes, bounded by the window.
 */
static void
worker_loop_busy(worker_t *w, uint64_t spin_us)
{
	for (;;) {
		uint64_t seen, last;

		if (event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY) < 0 ||
		    worker_loop_done(w))
			return;
		seen = w->io;
		last = util_mono_us();
		for (uint64_t now = last; now - last < spin_us; now = util_mono_us()) {
			if (event_base_loop(w->base, EVLOOP_NONBLOCK | EVLOOP_NO_EXIT_ON_EMPTY) < 0 ||
			    worker_loop_done(w))
				return;
			if (w->io != seen) {
				seen = w->io;
				last = now;
			}
		}
	}
}

static void *
worker_main(void *arg)
{
	worker_t *w = arg;

	if (w->shared->busy_poll_us > 0)
		worker_loop_busy(w, w->shared->busy_poll_us);
	else
		event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/*
 * Parked connections free request state between long-lived objects (TLS sessions,
 * connection structs), and glibc keeps such holes inside the heap: after a burst of
 * parks RSS stays at the burst's peak. Give whole free pages back to the kernel, at
 * most once per SG_TRIM_DELAY_MS and only after SG_TRIM_MIN_PARKED parks.
 */
static void
worker_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;

	(void)fd;
	(void)what;
	if (w->parked >= SG_TRIM_MIN_PARKED)
		(void)malloc_trim(0);
	w->parked = 0;
}

void
worker_conn_parked(worker_t *w)
{
	struct timeval tv = {SG_TRIM_DELAY_MS / 1000, (SG_TRIM_DELAY_MS % 1000) * 1000};

	w->parked++;
	if (w->trim && !evtimer_pending(w->trim, NULL))
		evtimer_add(w->trim, &tv);
}

static int
worker_init(worker_t *w, unsigned id, const proxy_shared_t *shared)
{
	w->thread_started = false;
	w->id = id;
	w->shared = shared;
	STAILQ_INIT(&w->pending);
	TAILQ_INIT(&w->pool);
	pthread_mutex_init(&w->lock, NULL);
	w->base = event_base_new();
	if (w->base == NULL)
		return -1;
	w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (w->dns == NULL)	/* no resolv.conf: names resolve from /etc/hosts only */
		w->dns = evdns_base_new(w->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (w->dns == NULL)
		return -1;
	evdns_base_load_hosts(w->dns, NULL);
	w->notify = event_new(w->base, -1, 0, worker_notify_cb, w);
	w->trim = evtimer_new(w->base, worker_trim_cb, w);
	if (w->notify == NULL || w->trim == NULL)
		return -1;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->thread_started = true;
	return 0;
}

worker_t *
worker_new(unsigned id, const proxy_shared_t *shared, char *err, size_t errlen)
{
	worker_t *w = calloc(1, sizeof(*w));

	if (w == NULL || worker_init(w, id, shared) < 0) {
		snprintf(err, errlen, "cannot start worker %u", id);
		worker_free(w);
		return NULL;
	}
	return w;
}

void
worker_push(worker_t *w, int fd, const struct sockaddr *sa, socklen_t len,
    bool transparent)
{
	struct pending_fd *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		close(fd);
		return;
	}
	p->fd = fd;
	memcpy(&p->ss, sa, len);
	p->sslen = len;
	p->transparent = transparent;
	pthread_mutex_lock(&w->lock);
	STAILQ_INSERT_TAIL(&w->pending, p, next);
	pthread_mutex_unlock(&w->lock);
	event_active(w->notify, EV_READ, 0);
}

void
worker_wake(worker_t *w)
{
	event_active(w->notify, EV_READ, 0);
}

void
worker_free(worker_t *w)
{
	if (w == NULL)
		return;
	if (w->thread_started) {
		pthread_mutex_lock(&w->lock);
		w->stopping = true;
		pthread_mutex_unlock(&w->lock);
		event_active(w->notify, EV_READ, 0);
		pthread_join(w->thread, NULL);
	}
	if (w->notify)
		event_free(w->notify);
	if (w->trim)
		event_free(w->trim);
	if (w->dns)
		evdns_base_free(w->dns, 1);
	if (w->base)
		event_base_free(w->base);
	free(w->conns);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

