/*
 * conn_transparent.c — a connection from the transparent listener: the host redirected
 * a sandbox's outbound TCP (nftables REDIRECT/DNAT) to sealgate, so no CONNECT comes.
 *
 *   accept → original destination (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) → PEEK the
 *   ClientHello (clienthello.h; nothing is consumed) →
 *     SNI:    egress_decide(SNI, port) → resolve SNI → the original destination's IP
 *             must be one of the permitted answers (egress_agree) → tunnel (dial it,
 *             splice) or intercept (TLS on a minted leaf for SNI, then requests as in
 *             an intercepted CONNECT). A refusal is answered as HTTP 403 JSON inside
 *             that TLS handshake (the client reads why: egress_denied,
 *             destination_mismatch, address_denied; 502 dns_error).
 *     no SNI: never intercepted: tunnel to the original destination when its IP
 *             literal passes egress_decide and the address classifier, else a fatal
 *             TLS alert (access_denied) — there is no name to mint a leaf for.
 *     not TLS: 400 not_tls in plain HTTP (the listener takes TLS only), or a TLS alert
 *             when the bytes began as a TLS record but were malformed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "clienthello.h"
#include "conn_int.h"
#include "egress.h"
#include "handle.h"
#include "leak.h"
#include "log.h"
#include "netaddr.h"
#include "resolve.h"
#include "stats.h"

/* Linux netfilter's getsockopt names for the destination before NAT: SO_ORIGINAL_DST
 * (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h);
 * both are 80. Defined here: the kernel headers clash with netinet/in.h. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST		80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST	80
#endif

/* TLS alert record: fatal (2), access_denied (49) (RFC 8446 section 6). */
static const uint8_t conn_tls_alert_denied[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31 };

static bool
conn_same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port &&
	    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* Where the sandbox dialled; -1 when the socket was not redirected (no NAT entry, or
 * the "original" destination is this listener: a direct connection would loop). */
static int
conn_original_dst(conn_t *c)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(c->orig_dst), llen = sizeof(local);
	int rc;

	if (getsockname(c->cfd, (struct sockaddr *)&local, &llen) < 0)
		return -1;
	if (local.ss_family == AF_INET6)
		rc = getsockopt(c->cfd, IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, &c->orig_dst, &len);
	else
		rc = getsockopt(c->cfd, IPPROTO_IP, SO_ORIGINAL_DST, &c->orig_dst, &len);
	if (rc < 0 || (c->orig_dst.ss_family != AF_INET && c->orig_dst.ss_family != AF_INET6))
		return -1;
	return conn_same_endpoint(&c->orig_dst, &local) ? -1 : 0;
}

static uint16_t
conn_orig_port(const conn_t *c)
{
	if (c->orig_dst.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&c->orig_dst)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&c->orig_dst)->sin6_port);
}

void
conn_transparent_start(conn_t *c)
{
	c->transparent = true;
	if (conn_original_dst(c) < 0) {
		log_info("%s: transparent listener: no original destination (the connection "
		    "was not redirected)", c->peer);
		conn_close(c, "not redirected");
		return;
	}
	conn_set_state(c, ST_PEEK);
	bufferevent_setcb(c->cbev, conn_client_read_cb, conn_client_write_cb,
	    conn_client_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ);
	conn_arm_timer(c, c->pol->limits.tls_timeout_ms);
}

/* Refused before TLS, with no name to answer as: a fatal alert, then close. */
static void
conn_transparent_alert(conn_t *c, const char *why)
{
	char dst[64] = "?";

	STATS_INC(errors_egress);
	netaddr_format((struct sockaddr *)&c->orig_dst, dst, sizeof(dst));
	log_info("%s: transparent connection to %s:%u refused: %s", c->peer, dst,
	    conn_orig_port(c), why);
	conn_answer_close(c, conn_tls_alert_denied, sizeof(conn_tls_alert_denied));
}

/* Refused with the SNI known: finish the handshake on a minted leaf for it and answer
 * the 403 (or 502) inside TLS (conn_tls_accepted), so the client can read why. */
static void __attribute__((format(printf, 4, 5)))
conn_transparent_refuse(conn_t *c, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	STATS_INC(errors_egress);
	c->refuse_status = status;
	c->refuse_code = code;
	va_start(ap, fmt);
	vsnprintf(c->refuse_msg, sizeof(c->refuse_msg), fmt, ap);
	va_end(ap);
	c->mode = MODE_INTERCEPT;
	conn_tls_accept_start(c);
}

static void
conn_transparent_resolved(const egress_result_t *res, void *arg)
{
	conn_t *c = arg;
	egress_result_t r = *res;
	char dst[64] = "?";

	c->dns = NULL;
	if (!r.ok) {
		conn_transparent_refuse(c, strcmp(r.code, "dns_error") == 0 ? 502 : 403,
		    r.code, "%s", r.msg);
		return;
	}
	if (egress_agree(&r, (struct sockaddr *)&c->orig_dst) < 0) {
		netaddr_format((struct sockaddr *)&c->orig_dst, dst, sizeof(dst));
		conn_transparent_refuse(c, 403, "destination_mismatch", "TLS SNI %s does not "
		    "resolve to %s, the address the connection was made to", c->auth_host, dst);
		return;
	}
	c->up.addr = r.addr;
	c->up.addrlen = r.addrlen;
	if (c->mode == MODE_TUNNEL) {
		c->up.tls = false;	/* the client speaks TLS end to end */
		if (conn_dial(c) < 0)
			conn_transparent_alert(c, "cannot open upstream socket");
		return;
	}
	conn_tls_accept_start(c);	/* the ClientHello is still in the input buffer */
}

/* A ClientHello naming c->auth_host: decided as CONNECT auth_host:port would be. */
static void
conn_transparent_sni(conn_t *c)
{
	size_t n = strlen(c->auth_host);
	enum egress_action act;
	const char *why;
	leak_hit_t hit;

	c->auth_port = conn_orig_port(c);
	if (memmem(c->auth_host, n, HANDLE_PREFIX, HANDLE_PREFIX_LEN) ||
	    leak_scan(c->auth_host, n, &hit)) {
		log_warn("%s: possible exfiltration: a handle in a TLS SNI", c->peer);
		conn_transparent_alert(c, "a handle in the TLS SNI");
		return;
	}
	act = egress_decide(c->pol, c->auth_host, c->auth_port, &why);
	if (act == EGRESS_DENY) {
		conn_transparent_refuse(c, 403, "egress_denied", "%s:%u denied: %s",
		    c->auth_host, c->auth_port, why);
		return;
	}
	c->mode = act == EGRESS_TUNNEL ? MODE_TUNNEL : MODE_INTERCEPT;
	conn_resolve_authority(c, conn_transparent_resolved);
}

/* No SNI: the original destination's IP is all there is; tunnel it or refuse. */
static void
conn_transparent_no_sni(conn_t *c)
{
	egress_result_t res;
	const char *why;

	c->auth_port = conn_orig_port(c);
	if (netaddr_format((struct sockaddr *)&c->orig_dst, c->auth_host,
	    sizeof(c->auth_host)) < 0) {
		conn_transparent_alert(c, "unknown address family");
		return;
	}
	if (egress_decide(c->pol, c->auth_host, c->auth_port, &why) == EGRESS_DENY) {
		conn_transparent_alert(c, why);
		return;
	}
	if (egress_resolve_static(c->pol, c->auth_host, c->auth_port, &res) != 1 || !res.ok) {
		conn_transparent_alert(c, res.msg);
		return;
	}
	c->mode = MODE_TUNNEL;
	snprintf(c->up.host, sizeof(c->up.host), "%s", c->auth_host);
	c->up.port = c->auth_port;
	c->up.tls = false;
	c->up.addr = res.addr;
	c->up.addrlen = res.addrlen;
	if (conn_dial(c) < 0)
		conn_transparent_alert(c, "cannot open upstream socket");
}

void
conn_transparent_peek(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t n = evbuffer_get_length(in);
	const uint8_t *b;
	clienthello_t *ch;
	enum clienthello_res r;

	if (n > CLIENTHELLO_PEEK_MAX)
		n = CLIENTHELLO_PEEK_MAX;
	b = evbuffer_pullup(in, (ssize_t)n);
	ch = malloc(sizeof(*ch));
	if (ch == NULL || b == NULL) {
		free(ch);
		conn_close(c, "out of memory");
		return;
	}
	r = clienthello_parse(ch, b, n);
	if (r == CLIENTHELLO_SNI)
		snprintf(c->auth_host, sizeof(c->auth_host), "%s", ch->sni);
	free(ch);
	switch (r) {
	case CLIENTHELLO_MORE:
		return;		/* the timer bounds the wait */
	case CLIENTHELLO_SNI:
		conn_transparent_sni(c);
		return;
	case CLIENTHELLO_NO_SNI:
		conn_transparent_no_sni(c);
		return;
	case CLIENTHELLO_NOT_TLS:
		break;
	}
	if (n > 0 && b[0] == 0x16) {
		conn_transparent_alert(c, "a malformed TLS ClientHello");
		return;
	}
	STATS_INC(errors_bad_request);
	conn_fail(c, 400, "not_tls", "the transparent listener takes TLS connections only");
}
