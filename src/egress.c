/* egress.c — egress decisions; the checked address for a static entry or a literal. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "egress.h"
#include "netaddr.h"
#include "scope.h"

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
	for (size_t i = 0; i < n && res->npermitted < EGRESS_MAX_CANDIDATES; i++) {
		if (netaddr_egress_check((struct sockaddr *)&cands[i], p->egress.allow_private,
		    p->egress.nallow_private, &cls) == 0) {
			res->permitted[res->npermitted] = cands[i];
			egress_set_port(&res->permitted[res->npermitted], port);
			res->permitted_len[res->npermitted++] = lens[i];
			continue;
		}
		netaddr_format((struct sockaddr *)&cands[i], addr, sizeof(addr));
	}
	if (res->npermitted > 0) {
		res->ok = 1;
		res->addr = res->permitted[0];
		res->addrlen = res->permitted_len[0];
		return 0;
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

int
egress_resolve_static(const policy_t *p, const char *host, uint16_t port, egress_result_t *res)
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

static bool
egress_same_ip(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
	if (b->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return false;
}

int
egress_agree(egress_result_t *res, const struct sockaddr *dst)
{
	uint16_t port;

	if (!res->ok)
		return -1;
	port = dst->sa_family == AF_INET ? ntohs(((const struct sockaddr_in *)dst)->sin_port) :
	    ntohs(((const struct sockaddr_in6 *)dst)->sin6_port);
	for (size_t i = 0; i < res->npermitted; i++)
		if (egress_same_ip(&res->permitted[i], dst)) {
			res->addr = res->permitted[i];
			res->addrlen = res->permitted_len[i];
			egress_set_port(&res->addr, port);
			return 0;
		}
	return -1;
}
