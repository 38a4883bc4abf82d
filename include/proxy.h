/*
 * proxy.h — the proxy listener and the state its N workers (worker.h) share (read-only
 * after start, or internally locked).
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
#include "fleettab.h"
#include "ratelimit.h"
#include "seal.h"
#include "stscache.h"
#include "stsclient.h"
#include "mintcache.h"
#include "mintclient.h"

struct event_base;

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
	stscache_t *sts_cache;		/* assume_role credentials (NULL: none kept) */
	stsclient_t *sts;		/* makes the AssumeRole calls (main thread) */
	mintcache_t *mint_cache;	/* minted tokens (NULL: none kept) */
	mintclient_t *mint;		/* makes the token endpoint calls (main thread) */
	fleettab_t *fleet;		/* fleet leases of rate_total (NULL: no fleet mode) */
} proxy_shared_t;

typedef struct proxy proxy_t;

/*
 * Bind the proxy listener at addr ("host:port"; port 0: the kernel picks) on base (the
 * main thread's), start nworkers threads (0: one per core). Returns NULL with err set.
 */
proxy_t *proxy_new(struct event_base *base, const char *addr, unsigned nworkers,
    unsigned max_conns, const proxy_shared_t *shared, char *err, size_t errlen);
/* The bound address as "host:port". */
const char *proxy_bound(const proxy_t *p);
/* A second listener on the same workers for connections the host redirected to sealgate
 * (nftables REDIRECT/DNAT): each is peeked for its TLS SNI (conn_transparent.c). 0, or
 * -1 with err set. Its bound address, or NULL when there is none. */
int proxy_listen_transparent(proxy_t *p, const char *addr, char *err, size_t errlen)
    SG_WUR;
const char *proxy_transparent_bound(const proxy_t *p);
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
/* Wake every worker (any thread): each looks again at what it waits for (the draining
 * flag, suspended sandboxes, requests waiting for an AssumeRole, stscache_generation). */
void proxy_wake_workers(proxy_t *p);
/* How many times proxy_close_suspended ran (any thread): workers sweep when it moves. */
uint64_t proxy_sweeps(void);
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
