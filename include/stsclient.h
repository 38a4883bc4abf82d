/*
 * stsclient.h — the STS AssumeRole client: makes the fetches the credential cache
 * (stscache.h) asks for. Shell: libevent, the verified TLS client context.
 *
 * Threads. One client per process, on the main thread's event_base (the same loop as the
 * listener, the metadata responder and the admin API: all of it non-blocking). A worker
 * whose request finds no usable set gets out->fetch from stscache_get and calls
 * stsclient_fetch, which only queues the job (a mutex) and wakes the main loop
 * (event_active); the worker goes on with other connections. Why the main thread and not
 * the worker: one STS call per credential process-wide (the cache is shared, a fetch has
 * one owner whatever worker asked), workers never hold STS sockets, and shutdown is
 * simple (the main thread frees the client after the workers are joined).
 *
 * One fetch: awsrole_request (the long-term keys sign it) → egress_decide on the STS host
 * and port (443; a deny fails the fetch) → egress_resolve on the client's own evdns_base
 * (upstream.resolve, allow_private: the same checked address rules as any upstream) →
 * verified TLS (tls_client_new with the shared client SSL_CTX: chain, host name, SNI) →
 * the request → the answer (at most SG_STS_MAX_RESPONSE bytes, HTTP/1.1, Content-Length,
 * chunked or close-delimited) → stsxml_parse. The whole fetch is bounded by
 * SG_STS_TIMEOUT_S. The policy snapshot the job came with is held (a reference) until it
 * ends: its egress rules and resolve map decide where STS is.
 *
 * Its end: stscache_done with the new set (guarded memory) or an error code — STS's own
 * (AccessDenied, InvalidClientTokenId, …), or "timeout", "egress_denied",
 * "address_denied", "dns_error", "upstream_tls", "upstream_error", "HTTP <status>",
 * "malformed_answer" — then done(arg) on the main thread, which wakes the workers so the
 * requests waiting for it resume (stscache_generation moved). Every fetch is counted
 * (stats.h assume_role_*), logged and audited (event "assume_role", the error code when
 * it failed); no secret is ever logged, and STS's error message only with the long-term
 * access key id masked.
 */
#ifndef SEALGATE_STSCLIENT_H
#define SEALGATE_STSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "policy.h"
#include "stscache.h"
#include "util.h"

struct event_base;

typedef struct stsclient stsclient_t;
/* A fetch ended (main thread): wake whoever waits on the cache's generation. */
typedef void (*stsclient_done_fn)(void *arg);

/* A client on base (the main thread's), TLS through tls (borrowed: outlives the client),
 * reporting to cache (borrowed), calling STS on port (AWSROLE_PORT; tests pass their
 * listener's). NULL with err set. */
stsclient_t *stsclient_new(struct event_base *base, SSL_CTX *tls, stscache_t *cache,
    uint16_t port, stsclient_done_fn done, void *arg, char *err, size_t errlen)
    __attribute__((nonnull(1, 2, 3, 7))) SG_WUR;

/*
 * Make fetch seq of key for cred (from any thread), as stscache_get asked (out->fetch,
 * out->refresh). Takes its own reference to policy (cred lives in it). Out of memory:
 * the fetch fails at once (stscache_done, done is called later from the main loop).
 */
void stsclient_fetch(stsclient_t *cl, policy_t *policy, const policy_credential_t *cred,
    const uint8_t key[STSCACHE_KEY_LEN], uint64_t seq, bool refresh) SG_NONNULL;

/* Fetches queued or under way. */
size_t stsclient_pending(stsclient_t *cl) SG_NONNULL;

/* Main thread, once no worker can call stsclient_fetch any more: abandon every fetch
 * (nothing is reported), free. NULL is fine. */
void stsclient_free(stsclient_t *cl);

#endif
