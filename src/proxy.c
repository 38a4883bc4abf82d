/* proxy.c — listener on the main thread, worker threads with their own event_base. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
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
#include <event2/listener.h>
#include <event2/thread.h>

#include "defaults.h"
#include "log.h"
#include "proxy.h"
#include "worker.h"
#include "registry.h"
#include "stats.h"
#include "util.h"

static bool proxy_draining;
static uint64_t proxy_sweep_count;	/* proxy_close_suspended calls (atomic) */

struct proxy {
	struct event_base *base;
	struct evconnlistener *listener;
	struct evconnlistener *transparent;	/* redirected connections, or NULL */
	struct event *retry;		/* re-enable accept after EMFILE */
	worker_t **workers;
	unsigned nworkers, next;
	unsigned max_conns;
	bool paused_full;
	char bound[80];
	char tbound[80];		/* the transparent listener's address */
};

/* Pause or resume accepting on every listener. */
static void
proxy_accepting(proxy_t *p, bool on)
{
	struct evconnlistener *ls[] = { p->listener, p->transparent };

	for (size_t i = 0; i < SG_ARRAY_LEN(ls); i++) {
		if (ls[i] == NULL)
			continue;
		if (on)
			evconnlistener_enable(ls[i]);
		else
			evconnlistener_disable(ls[i]);
	}
}

/* --- listener ---------------------------------------------------------------------- */

static void
proxy_accept(proxy_t *p, evutil_socket_t fd, struct sockaddr *sa, int salen,
    bool transparent)
{
	uint64_t active = STATS_GET(conns_active);

	if (active >= p->max_conns) {
		/* over the limit between two accepts: refuse this one, pause the rest */
		STATS_INC(conns_rejected);
		STATS_INC(accept_paused);
		close(fd);
		proxy_accepting(p, false);
		p->paused_full = true;
		event_add(p->retry, &(struct timeval){0, SG_ACCEPT_RETRY_MS * 1000});
		return;
	}
	STATS_INC(conns_accepted);
	STATS_INC(conns_active);
	worker_push(p->workers[p->next++ % p->nworkers], fd, sa, (socklen_t)salen,
	    transparent);
}

static void
proxy_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	proxy_accept(arg, fd, sa, salen, false);
}

static void
proxy_transparent_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	proxy_accept(arg, fd, sa, salen, true);
}

static void
proxy_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	proxy_t *p = arg;

	(void)fd;
	(void)what;
	if (p->listener == NULL)
		return;		/* draining */
	if (STATS_GET(conns_active) >= p->max_conns) {
		event_add(p->retry, &(struct timeval){0, SG_ACCEPT_RETRY_MS * 1000});
		return;
	}
	p->paused_full = false;
	proxy_accepting(p, true);
	log_info("accept resumed");
}

static void
proxy_accept_error_cb(struct evconnlistener *l, void *arg)
{
	proxy_t *p = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* out of descriptors: pause accept instead of spinning on the error */
		STATS_INC(accept_paused);
		log_warn("accept paused: %s", strerror(err));
		(void)l;
		proxy_accepting(p, false);
		event_add(p->retry, &(struct timeval){0, SG_ACCEPT_RETRY_MS * 1000});
		return;
	}
	log_warn("accept: %s", strerror(err));
}

int
proxy_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon;
	char *end;
	long port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
			return -1;
		hl = (size_t)(colon - s);
		memcpy(host, s, hl);
	}
	host[hl] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -1;
}

void
proxy_format_sockname(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(buf, len, "?");
		return;
	}
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
}

static unsigned
proxy_default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

proxy_t *
proxy_new(struct event_base *base, const char *addr, unsigned nworkers, unsigned max_conns,
    const proxy_shared_t *shared, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	proxy_t *p;

	if (proxy_parse_listen(addr, &ss, &sl) < 0) {
		snprintf(err, errlen, "bad listen address %s", addr);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->base = base;
	p->max_conns = max_conns ? max_conns : SG_MAX_CONNECTIONS;
	p->nworkers = nworkers ? nworkers : proxy_default_workers();
	p->retry = evtimer_new(base, proxy_retry_cb, p);
	p->listener = evconnlistener_new_bind(base, proxy_accept_cb, p,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	    LEV_OPT_THREADSAFE, SG_LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sl);
	if (p->listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		proxy_free(p);
		return NULL;
	}
	evconnlistener_set_error_cb(p->listener, proxy_accept_error_cb);
	proxy_format_sockname(evconnlistener_get_fd(p->listener), p->bound, sizeof(p->bound));
	p->workers = calloc(p->nworkers, sizeof(*p->workers));
	for (unsigned i = 0; p->workers && i < p->nworkers; i++)
		if ((p->workers[i] = worker_new(i, shared, err, errlen)) == NULL) {
			p->nworkers = i;
			proxy_free(p);
			return NULL;
		}
	if (p->workers == NULL) {
		proxy_free(p);
		return NULL;
	}
	return p;
}

int
proxy_listen_transparent(proxy_t *p, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (proxy_parse_listen(addr, &ss, &sl) < 0) {
		snprintf(err, errlen, "bad transparent listen address %s", addr);
		return -1;
	}
	p->transparent = evconnlistener_new_bind(p->base, proxy_transparent_accept_cb, p,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	    LEV_OPT_THREADSAFE, SG_LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sl);
	if (p->transparent == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(p->transparent, proxy_accept_error_cb);
	proxy_format_sockname(evconnlistener_get_fd(p->transparent), p->tbound,
	    sizeof(p->tbound));
	return 0;
}

const char *
proxy_transparent_bound(const proxy_t *p)
{
	return p->transparent ? p->tbound : NULL;
}

bool
proxy_is_draining(void)
{
	return __atomic_load_n(&proxy_draining, __ATOMIC_ACQUIRE);
}

uint64_t
proxy_active(void)
{
	return STATS_GET(conns_active);
}

void
proxy_drain(proxy_t *p)
{
	__atomic_store_n(&proxy_draining, true, __ATOMIC_RELEASE);
	if (p->listener) {	/* close it: the kernel must not queue new connections */
		evconnlistener_free(p->listener);
		p->listener = NULL;
	}
	if (p->transparent) {
		evconnlistener_free(p->transparent);
		p->transparent = NULL;
	}
	event_del(p->retry);
	for (unsigned i = 0; i < p->nworkers; i++)
		worker_wake(p->workers[i]);
}

void
proxy_close_suspended(proxy_t *p)
{
	__atomic_add_fetch(&proxy_sweep_count, 1, __ATOMIC_ACQ_REL);
	for (unsigned i = 0; i < p->nworkers; i++)
		worker_wake(p->workers[i]);
}

void
proxy_wake_workers(proxy_t *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		worker_wake(p->workers[i]);
}

uint64_t
proxy_sweeps(void)
{
	return __atomic_load_n(&proxy_sweep_count, __ATOMIC_ACQUIRE);
}

const char *
proxy_bound(const proxy_t *p)
{
	return p->bound;
}

void
proxy_free(proxy_t *p)
{
	if (p == NULL)
		return;
	if (p->listener)
		evconnlistener_free(p->listener);
	if (p->transparent)
		evconnlistener_free(p->transparent);
	if (p->retry)
		event_free(p->retry);
	for (unsigned i = 0; p->workers && i < p->nworkers; i++)
		worker_free(p->workers[i]);
	free(p->workers);
	free(p);
}
