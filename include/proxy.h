/*
 * proxy.h — the proxy listener, N worker threads each with its own event_base, and the
 * state they share (read-only after start, or internally locked).
 *
 * The main thread accepts and hands each socket to a worker (round robin); the
 * connection then lives on that worker's event_base until conn_close.
 */
#ifndef SEALGATE_PROXY_H
#define SEALGATE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "certcache.h"
#include "certforge.h"
#include "handlecache.h"
#include "ratelimit.h"
#include "seal.h"

struct bufferevent;
struct event_base;
struct evdns_base;

/* Shared by all workers; owned by the caller of proxy_new (serve). */
typedef struct proxy_shared {
	certforge_t *forge;
	certcache_t *certs;
	SSL_CTX *tls_server;		/* interception: leaves minted per SNI */
	SSL_CTX *tls_client;		/* upstreams: verified against ca_file or system */
	seal_keyring_t *keyring;	/* current + open keys, retired ids */
	handlecache_t *handles;		/* verified handles by hash */
	ratelimit_t *rl;		/* token buckets: handle, credential, sandbox */
	unsigned busy_poll_us;		/* limits.busy_poll_us: 0 = workers sleep at once */
} proxy_shared_t;

typedef struct worker worker_t;
typedef struct proxy proxy_t;

/* What a connection needs from the worker it lives on. */
struct event_base *worker_base(worker_t *w);
struct evdns_base *worker_dns(worker_t *w);
const proxy_shared_t *worker_shared(worker_t *w);
/* Connection bookkeeping: conn.c calls these from conn_new / conn_close. */
void worker_conn_added(worker_t *w, void *conn);
void worker_conn_removed(worker_t *w, void *conn);
/* A connection parked (conn.c): the worker trims the heap after a burst of them. */
void worker_conn_parked(worker_t *w);
/* Bytes arrived on a connection (conn.c): a busy-polling worker keeps polling. */
void worker_note_io(worker_t *w);

/*
 * Idle upstream connections of this worker, by pool key (who, host, port, TLS,
 * credential set: a connection that carried one sandbox's secret is never handed to
 * another). put takes the bufferevent over (closing the oldest beyond
 * SG_POOL_PER_WORKER); take returns one with no callbacks set, or NULL.
 */
void worker_pool_put(worker_t *w, const char *key, struct bufferevent *bev);
struct bufferevent *worker_pool_take(worker_t *w, const char *key);

/*
 * Bind the proxy listener at addr ("host:port"; port 0: the kernel picks) on base (the
 * main thread's), start nworkers threads (0: one per core). Returns NULL with err set.
 */
proxy_t *proxy_new(struct event_base *base, const char *addr, unsigned nworkers,
    unsigned max_conns, const proxy_shared_t *shared, char *err, size_t errlen);
/* The bound address as "host:port". */
const char *proxy_bound(const proxy_t *p);
/*
 * Start draining (SIGTERM): stop accepting, close idle keep-alive connections; requests
 * in flight finish and their connections close instead of being kept alive.
 */
void proxy_drain(proxy_t *p);
/*
 * A sandbox was suspended (main thread): every worker closes the connections of
 * suspended sandboxes that are idle or parked after a request, or spliced
 * (registry_suspended_published() > 0). Requests in flight finish; their connection's
 * next request is refused, as is the first request of a connection that has sent none.
 */
void proxy_close_suspended(proxy_t *p);
/* True once proxy_drain ran (any thread). */
bool proxy_is_draining(void);
/* Connections still open (all workers). */
uint64_t proxy_active(void);
/* Stop accepting, close every connection, join the workers, free. */
void proxy_free(proxy_t *p);

/* Parse "host:port" / "[v6]:port" into a sockaddr. 0 ok, -1 bad. */
int proxy_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* Format a bound socket's local address as "host:port" / "[v6]:port". */
void proxy_format_sockname(int fd, char *buf, size_t len);

#endif
