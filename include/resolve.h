/*
 * resolve.h — the network half of egress: a host name to ONE checked address through
 * async DNS on a worker's evdns_base. egress_resolve_static (egress.h) answers first,
 * egress_pick checks the DNS answer, so the caller dials exactly the address that was
 * checked and never resolves again. The functions keep the egress_ prefix: they are
 * egress's network half, split off so the core builds without libevent.
 *
 * Threads: one request lives on the event_base of the evdns_base it was started on.
 */
#ifndef SEALGATE_RESOLVE_H
#define SEALGATE_RESOLVE_H

#include <stdint.h>

#include "egress.h"
#include "policy.h"

struct evdns_base;

typedef void (*egress_cb)(const egress_result_t *res, void *arg);
typedef struct egress_req egress_req_t;

/*
 * Resolve host and check every address against the policy's allow_private ranges.
 * cb runs exactly once, possibly before egress_resolve returns (static map, literals;
 * dns may then be NULL). Returns a request that egress_cancel detaches from arg (cb
 * will not run after it), or NULL when cb already ran. p must outlive the request or
 * be cancelled first.
 */
egress_req_t *egress_resolve(struct evdns_base *dns, const policy_t *p, const char *host,
    uint16_t port, egress_cb cb, void *arg);
void egress_cancel(egress_req_t *req);

#endif
