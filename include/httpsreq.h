/*
 * httpsreq.h — one HTTPS request from sealgate itself (not a sandbox's), for the clients
 * that fetch credentials: stsclient.h (AssumeRole) and mintclient.h (token endpoints).
 * Shell: libevent, the verified TLS client context.
 *
 * httpsreq_start queues the work and returns at once; everything else runs from the
 * loop, never inside httpsreq_start: egress_decide on host and port (a deny fails the
 * request) → egress_resolve on the caller's evdns_base (upstream.resolve, allow_private:
 * the same checked address rules as any upstream) → verified TLS (tls_client_new: chain,
 * host name, SNI) → the request bytes → the answer (HTTP/1.1: Content-Length, chunked or
 * close-delimited; at most max_response bytes read). The whole of it is bounded by
 * timeout_s. policy is borrowed: the caller holds its reference until done.
 *
 * done is called exactly once, from the loop, with the answer (ok: status and body, in
 * wipe memory, valid during the call) or a failure code: "timeout", "egress_denied",
 * "address_denied", "dns_error" (egress_resolve's codes), "upstream_tls",
 * "upstream_error", "malformed_answer", "out_of_memory" and a detail for the log (never
 * a secret). The request is freed after done returns (from done on, the caller must not
 * cancel it: forget the pointer); httpsreq_cancel frees one whose done has not run (done
 * is then never called).
 */
#ifndef SEALGATE_HTTPSREQ_H
#define SEALGATE_HTTPSREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "policy.h"
#include "util.h"

struct event_base;
struct evdns_base;

typedef struct httpsreq httpsreq_t;

typedef struct httpsreq_result {
	bool ok;			/* an answer arrived whole */
	unsigned status;		/* its status (also set when it was cut or malformed) */
	const char *body;		/* ok: its body, NUL-terminated (wipe memory) */
	size_t body_len;
	const char *code, *detail;	/* !ok: why */
} httpsreq_result_t;

typedef void (*httpsreq_done_fn)(const httpsreq_result_t *res, void *arg);

typedef struct httpsreq_target {
	const policy_t *policy;		/* egress rules and resolve map (borrowed) */
	const char *host;		/* copied */
	uint16_t port;
	const char *peer;		/* who is called, for messages ("STS") */
} httpsreq_target_t;

/* Send wire[0..len) (wipe memory, taken over whatever happens) to t. NULL when out of
 * memory (wire freed, done never called). */
httpsreq_t *httpsreq_start(struct event_base *base, struct evdns_base *dns, SSL_CTX *tls,
    const httpsreq_target_t *t, char *wire, size_t len, size_t max_response,
    int timeout_s, httpsreq_done_fn done, void *arg)
    __attribute__((nonnull(1, 2, 3, 4, 5, 9))) SG_WUR;
/* Abandon r (NULL is fine): done is never called. */
void httpsreq_cancel(httpsreq_t *r);

/* An evdns_base for such clients on base: resolv.conf's nameservers when readable, and
 * /etc/hosts. NULL when it cannot be made. */
struct evdns_base *httpsreq_dns_new(struct event_base *base) SG_NONNULL;

#endif
