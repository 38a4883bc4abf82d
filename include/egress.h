/*
 * egress.h — where a connection may go. egress_decide is the pure policy decision for a
 * host name; egress_resolve turns a host into ONE checked address (static resolve map,
 * IP literal in any spelling, or async DNS), classifying every candidate, so the caller
 * dials exactly the address that was checked and never resolves again.
 */
#ifndef SEALGATE_EGRESS_H
#define SEALGATE_EGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy.h"

struct evdns_base;

enum egress_action {
	EGRESS_DENY,		/* 403 egress_denied */
	EGRESS_TUNNEL,		/* CONNECT: splice bytes, no interception */
	EGRESS_INTERCEPT,	/* CONNECT: terminate TLS; absolute-form: forward */
};

/*
 * Decide for host:port. Order: deny_hosts, then hosts a credential names (intercept),
 * then tunnel_hosts, then allow_hosts / egress.default (intercept when egress.intercept
 * is "all", else tunnel). Egress host lists match any port unless a pattern names one;
 * credential hosts are port-aware (scope_host_match). *why is a static reason.
 */
enum egress_action egress_decide(const policy_t *p, const char *host, uint16_t port,
    const char **why);

/* Result of a resolution: ok, or an error code + message for the client. */
typedef struct egress_result {
	int ok;				/* 1: addr is set */
	struct sockaddr_storage addr;	/* the checked address, port set */
	socklen_t addrlen;
	const char *code;		/* "address_denied" | "dns_error" */
	char msg[640];
} egress_result_t;

typedef void (*egress_cb)(const egress_result_t *res, void *arg);
typedef struct egress_req egress_req_t;

/*
 * Resolve host and check every address against the policy's allow_private ranges.
 * cb runs exactly once, possibly before egress_resolve returns (static map, literals).
 * Returns a request that egress_cancel detaches from arg (cb will not run after it),
 * or NULL when cb already ran. p must outlive the request or be cancelled first.
 */
egress_req_t *egress_resolve(struct evdns_base *dns, const policy_t *p, const char *host,
    uint16_t port, egress_cb cb, void *arg);
void egress_cancel(egress_req_t *req);

/* Pure: pick the first permitted address of a list (for tests and egress_resolve). */
int egress_pick(const policy_t *p, const char *host, struct sockaddr_storage *cands,
    socklen_t *lens, size_t n, uint16_t port, egress_result_t *res);

#endif
