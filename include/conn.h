/*
 * conn.h — one client connection of the proxy listener: CONNECT (tunnel or intercept)
 * or absolute-form HTTP, the request/response relay, and the single close path.
 */
#ifndef SEALGATE_CONN_H
#define SEALGATE_CONN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "worker.h"

typedef struct conn conn_t;

/* Take over an accepted socket on worker w (called on w's thread). transparent: it came
 * from the transparent listener (its first bytes are peeked, not a proxy request). */
void conn_accept(worker_t *w, int fd, const struct sockaddr *sa, socklen_t salen,
    bool transparent);
/* Waiting for a request with nothing buffered (safe to close when draining). */
bool conn_is_idle(const conn_t *c);
/* Bytes spliced both ways (a tunnel or WebSocket): no request boundary to wait for. */
bool conn_is_spliced(const conn_t *c);
/* At least one request head was read on it (a fresh connection has sent nothing yet). */
bool conn_has_served(const conn_t *c);
/* The client's source address (lives as long as c). */
const struct sockaddr *conn_peer_addr(const conn_t *c);
/* AssumeRole credentials or a minted token arrived or failed (stscache_generation or
 * mintcache_generation moved; w's thread): a request of c waiting for them goes on or is
 * answered 502 sts_error / mint_failed. Others: nothing. */
void conn_identity_ready(conn_t *c);
/* The one teardown path: frees everything the connection holds, counts, logs. */
void conn_close(conn_t *c, const char *reason);

#endif
