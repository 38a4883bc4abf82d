/* egress.c — egress decisions, resolution to one checked address. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "egress.h"
#include "log.h"
#include "netaddr.h"
#include "scope.h"

/* Addresses considered from one DNS answer. */
#define EGRESS_MAX_CANDIDATES 16

static bool
egress_list_match(const policy_strlist_t *l, const char *host, uint16_t port)
{
	for (size_t i = 0; i < l->n; i++) {
		/* port-agnostic unless the pattern names a port */
		uint16_t p = strchr(l->v[i], ':') ? port : 443;

		if (scope_host_match(l->v[i], host, p))
			return true;
	}
	return false;
}

static bool
egress_credential_host(const policy_t *p, const char *host, uint16_t port)
{
	for (size_t i = 0; i < p->ncredentials; i++)
		if (scope_hosts_match(&p->credentials[i].hosts, host, port))
			return true;
	return false;
}

enum egress_action
egress_decide(const policy_t *p, const char *host, uint16_t port, const char **why)
{
	const policy_egress_t *e = &p->egress;

	if (egress_list_match(&e->deny_hosts, host, port)) {
		*why = "host matches egress.deny_hosts";
		return EGRESS_DENY;
	}
	if (egress_credential_host(p, host, port)) {
		*why = "host of a credential";
		return EGRESS_INTERCEPT;
	}
	if (egress_list_match(&e->tunnel_hosts, host, port)) {
		*why = "host matches egress.tunnel_hosts";
		return EGRESS_TUNNEL;
	}
	if (e->default_allow || egress_list_match(&e->allow_hosts, host, port)) {
		*why = "host allowed by egress policy";
		return e->intercept == INTERCEPT_ALL ? EGRESS_INTERCEPT : EGRESS_TUNNEL;
	}
	*why = "host not allowed by egress policy (egress.default is deny)";
	return EGRESS_DENY;
}

static void
egress_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

int
egress_pick(const policy_t *p, const char *host, struct sockaddr_storage *cands,
    socklen_t *lens, size_t n, uint16_t port, egress_result_t *res)
{
	enum netaddr_class cls = NETADDR_PUBLIC;
	char addr[64] = "";

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < n; i++) {
		if (netaddr_egress_check((struct sockaddr *)&cands[i], p->egress.allow_private,
		    p->egress.nallow_private, &cls) == 0) {
			res->ok = 1;
			res->addr = cands[i];
			res->addrlen = lens[i];
			egress_set_port(&res->addr, port);
			return 0;
		}
		netaddr_format((struct sockaddr *)&cands[i], addr, sizeof(addr));
	}
	res->code = "address_denied";
	if (n == 0)
		snprintf(res->msg, sizeof(res->msg), "%s has no address", host);
	else if (strcmp(host, addr) == 0)
		snprintf(res->msg, sizeof(res->msg), "%s is a %s address; egress to it is "
		    "denied (egress.allow_private does not list it)", host,
		    netaddr_class_name(cls));
	else
		snprintf(res->msg, sizeof(res->msg),
		    "%s resolves to %s, a %s address; egress to it is denied "
		    "(egress.allow_private does not list it)", host, addr,
		    netaddr_class_name(cls));
	return -1;
}

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
	struct sockaddr_storage cands[EGRESS_MAX_CANDIDATES];
	socklen_t lens[EGRESS_MAX_CANDIDATES];
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
	for (struct evutil_addrinfo *a = ai; a && n < EGRESS_MAX_CANDIDATES; a = a->ai_next) {
		if (a->ai_addrlen > sizeof(cands[0]))
			continue;
		memcpy(&cands[n], a->ai_addr, a->ai_addrlen);
		lens[n++] = (socklen_t)a->ai_addrlen;
	}
	evutil_freeaddrinfo(ai);
	egress_pick(r->policy, r->host, cands, lens, n, r->port, &res);
	egress_finish(r, &res);
}

/* Static resolve map or IP literal: answered at once. Returns 1 if handled. */
static int
egress_resolve_local(const policy_t *p, const char *host, uint16_t port, egress_result_t *res)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *lit = host;
	int rc;

	for (size_t i = 0; i < p->upstream.nresolve; i++)
		if (strcasecmp(p->upstream.resolve[i].host, host) == 0) {
			lit = p->upstream.resolve[i].address;
			break;
		}
	rc = netaddr_parse_literal(lit, &ss, &len);
	if (rc == -1 && lit == host)
		return 0;	/* a name: DNS */
	if (rc != 0) {
		memset(res, 0, sizeof(*res));
		res->code = "address_denied";
		snprintf(res->msg, sizeof(res->msg), "%s is not a usable address", host);
		return 1;
	}
	egress_pick(p, host, &ss, &len, 1, port, res);
	return 1;
}

egress_req_t *
egress_resolve(struct evdns_base *dns, const policy_t *p, const char *host, uint16_t port,
    egress_cb cb, void *arg)
{
	struct evutil_addrinfo hints;
	egress_result_t res;
	egress_req_t *r;

	if (egress_resolve_local(p, host, port, &res)) {
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
