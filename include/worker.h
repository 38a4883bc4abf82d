/*
 * worker.h — a worker thread: its own event_base and evdns_base, the connections that
 * live on it (conn.h) from accept to conn_close, and its pool of idle upstream
 * connections. The listener (proxy.c) hands each accepted socket to a worker; from then
 * on everything about the connection runs on that worker's thread.
 */
#ifndef SEALGATE_WORKER_H
#define SEALGATE_WORKER_H

#include <stdbool.h>
#include <sys/socket.h>

#include "proxy.h"
#include "util.h"

struct bufferevent;
struct event_base;
struct evdns_base;

typedef struct worker worker_t;

/* A worker numbered id running its thread, or NULL with err set. */
worker_t *worker_new(unsigned id, const proxy_shared_t *shared, char *err, size_t errlen)
    SG_WUR;
/* Hand it an accepted socket (main thread); it calls conn_accept on its own thread.
 * transparent: the socket came from the transparent listener (conn_transparent.c). */
void worker_push(worker_t *w, int fd, const struct sockaddr *sa, socklen_t len,
    bool transparent);
/* Make it look at the draining flag and suspended sandboxes (main thread). */
void worker_wake(worker_t *w);
/* Close its connections and pool, stop and join its thread, free it. NULL is fine. */
void worker_free(worker_t *w);

/* What a connection needs from the worker it lives on. */
struct event_base *worker_base(worker_t *w);
struct evdns_base *worker_dns(worker_t *w);
const proxy_shared_t *worker_shared(worker_t *w);
/* Connection bookkeeping: conn.c calls these from conn_accept / conn_close. */
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

#endif
