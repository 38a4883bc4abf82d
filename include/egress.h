/*
 * egress.h — where a connection may go; pure core (no DNS, no I/O). egress_decide is
 * the policy decision for a host name; egress_pick and egress_resolve_static turn
 * candidate addresses into ONE checked address, classifying every candidate, so the
 * caller dials exactly the address that was checked and never resolves again. Names
 * that need DNS are the shell's: egress_resolve in resolve.h.
 */
#ifndef SEALGATE_EGRESS_H
#define SEALGATE_EGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy.h"
#include "util.h"

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

/* Addresses considered from one DNS answer (and kept as permitted, below). */
#define EGRESS_MAX_CANDIDATES 16

/* Result of a resolution: ok, or an error code + message for the client. */
typedef struct egress_result {
	int ok;				/* 1: addr is set */
	struct sockaddr_storage addr;	/* the checked address, port set */
	socklen_t addrlen;
	/* every candidate that passed the address check, in answer order (addr is the
	 * first): what egress_agree compares a transparent destination with */
	struct sockaddr_storage permitted[EGRESS_MAX_CANDIDATES];
	socklen_t permitted_len[EGRESS_MAX_CANDIDATES];
	size_t npermitted;
	const char *code;		/* "address_denied" | "dns_error" */
	char msg[640];
} egress_result_t;

/* Pick the first permitted address of a list (for tests and egress_resolve). */
int egress_pick(const policy_t *p, const char *host, struct sockaddr_storage *cands,
    socklen_t *lens, size_t n, uint16_t port, egress_result_t *res);

/*
 * Transparent interception: does dst (the address a sandbox dialled, redirected to
 * sealgate) carry the same IP as one of res's permitted addresses? 0 and res->addr set
 * to that address with dst's port; -1 when it does not (or res is not ok): the name the
 * client gave (SNI, Host) does not lead where it connected — destination_mismatch.
 */
int egress_agree(egress_result_t *res, const struct sockaddr *dst) SG_NONNULL SG_WUR;

/*
 * Answer at once when host needs no DNS: an entry of the policy's upstream.resolve map
 * or an IP literal in any spelling, checked as egress_pick does. Returns 1 with *res
 * filled (ok or address_denied), or 0 when host is a name to look up.
 */
int egress_resolve_static(const policy_t *p, const char *host, uint16_t port,
    egress_result_t *res);

#endif
