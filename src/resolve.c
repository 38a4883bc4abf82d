/* resolve.c — a host to one checked address: egress_resolve_static, else evdns. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "resolve.h"

/* Addresses considered from one DNS answer. */
#define RESOLVE_MAX_CANDIDATES EGRESS_MAX_CANDIDATES

struct egress_req {
	egress_cb cb;
	void *arg;			/* NULL once cancelled */
	const policy_t *policy;
	uint16_t port;
	char host[256];
};

static void
egress_finish(egress_req_t *r, const egress_result_t *res)
{
	if (r->cb)
		r->cb(res, r->arg);
	free(r);
}

static void
egress_dns_cb(int err, struct evutil_addrinfo *ai, void *arg)
{
	egress_req_t *r = arg;
	struct sockaddr_storage cands[RESOLVE_MAX_CANDIDATES];
	socklen_t lens[RESOLVE_MAX_CANDIDATES];
	egress_result_t res;
	size_t n = 0;

	if (r->cb == NULL) {	/* cancelled: the policy may be gone */
		if (ai)
			evutil_freeaddrinfo(ai);
		free(r);
		return;
	}
	if (err != 0) {
		memset(&res, 0, sizeof(res));
		res.code = "dns_error";
		snprintf(res.msg, sizeof(res.msg), "cannot resolve %s: %s", r->host,
		    evutil_gai_strerror(err));
		egress_finish(r, &res);
		return;
	}
	for (struct evutil_addrinfo *a = ai; a && n < RESOLVE_MAX_CANDIDATES; a = a->ai_next) {
		if (a->ai_addrlen > sizeof(cands[0]))
			continue;
		memcpy(&cands[n], a->ai_addr, a->ai_addrlen);
		lens[n++] = (socklen_t)a->ai_addrlen;
	}
	evutil_freeaddrinfo(ai);
	egress_pick(r->policy, r->host, cands, lens, n, r->port, &res);
	egress_finish(r, &res);
}

egress_req_t *
egress_resolve(struct evdns_base *dns, const policy_t *p, const char *host, uint16_t port,
    egress_cb cb, void *arg)
{
	struct evutil_addrinfo hints;
	egress_result_t res;
	egress_req_t *r;

	if (egress_resolve_static(p, host, port, &res)) {
		cb(&res, arg);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL || strlen(host) >= sizeof(r->host)) {
		free(r);
		memset(&res, 0, sizeof(res));
		res.code = "dns_error";
		snprintf(res.msg, sizeof(res.msg), "cannot resolve host");
		cb(&res, arg);
		return NULL;
	}
	r->cb = cb;
	r->arg = arg;
	r->policy = p;
	r->port = port;
	strcpy(r->host, host);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* evdns may call back synchronously (hosts file); r stays valid until then */
	if (evdns_getaddrinfo(dns, host, NULL, &hints, egress_dns_cb, r) == NULL)
		return NULL;	/* already answered and freed */
	return r;
}

void
egress_cancel(egress_req_t *req)
{
	if (req) {
		req->cb = NULL;
		req->arg = NULL;
	}
}
