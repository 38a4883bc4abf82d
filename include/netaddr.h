/*
 * netaddr.h — IP addresses and address ranges (CIDRs): parsing, classification for
 * egress decisions, containment and overlap. Pure core: no sockets are opened, no names
 * resolved; inet_pton/inet_ntop are the only libc address helpers used. All functions
 * are thread-safe (no shared state).
 *
 * Two parsers with deliberately different strictness:
 *  - netaddr_parse_cidr is for policy files: strict dotted-quad or RFC 4291 IPv6,
 *    an optional "/prefix", no host bits beyond the prefix.
 *  - netaddr_parse_literal is for hosts sent by untrusted clients: it accepts every
 *    spelling a resolver or URL parser would turn into an address (inet_aton forms:
 *    "2130706433", "0177.0.0.1", "0x7f000001", "127.1"; bracketed IPv6) so that none
 *    of them slips past classification as a "name".
 */
#ifndef SEALGATE_NETADDR_H
#define SEALGATE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" and its NUL fit. */
#define NETADDR_CIDR_TEXT_MAX	64

/*
 * An address range: family AF_INET (addr[0..3]) or AF_INET6 (addr[0..15]) and a prefix
 * length. netaddr_parse_cidr leaves no bits set beyond the prefix.
 */
typedef struct netaddr_cidr {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
} netaddr_cidr_t;

enum netaddr_class {
	NETADDR_PUBLIC,		/* globally routable: may be dialled */
	NETADDR_LOOPBACK,	/* 127/8, ::1 */
	NETADDR_PRIVATE,	/* 10/8, 172.16/12, 192.168/16 */
	NETADDR_LINKLOCAL,	/* 169.254/16 (cloud metadata), fe80::/10 */
	NETADDR_CGNAT,		/* 100.64/10 shared address space */
	NETADDR_UNSPECIFIED,	/* 0/8, :: (0.0.0.0 reaches the local host on Linux) */
	NETADDR_MULTICAST,	/* 224/4, ff00::/8 */
	NETADDR_BROADCAST,	/* 255.255.255.255 */
	NETADDR_RESERVED,	/* 240/4, 192.0.0/24, 198.18/15, documentation, 2001:db8::/32,
				 * other IPv6 outside 2000::/3, and anything not IPv4/IPv6 */
	NETADDR_ULA,		/* fc00::/7 */
};

/*
 * Parse a policy address range: "10.0.2.15" (= /32), "10.0.2.0/24", "fd00::/8",
 * "::1" (= /128). IPv4 must be a strict dotted quad (four decimal octets, no leading
 * zeros); the prefix is decimal and within the family's range; bits set beyond the
 * prefix are refused with a message naming the intended network.
 * Returns 0, or -1 with a message in err (when errlen > 0).
 */
int netaddr_parse_cidr(const char *s, netaddr_cidr_t *out, char *err, size_t errlen)
    __attribute__((nonnull(1, 2))) SG_WUR;

/*
 * Is host an IP literal in any spelling clients accept? IPv4 follows inet_aton (1 to 4
 * parts, each decimal, 0-octal or 0x-hex; the last part fills the remaining bytes) and
 * a single trailing dot is ignored. A host whose last label is numeric ("ends in a
 * number", as in the WHATWG URL standard) is an IPv4 literal or invalid, never a name.
 * IPv6 may be bracketed; zone ids ("fe80::1%eth0") are refused.
 * Returns 0 with out and outlen filled (port 0), -1 when host is a DNS name (letters,
 * digits, '-', '_', '.' only), -2 when invalid or not allowed.
 */
int netaddr_parse_literal(const char *host, struct sockaddr_storage *out, socklen_t *outlen)
    SG_NONNULL SG_WUR;

/*
 * Classify an AF_INET or AF_INET6 address. IPv6 forms that carry an IPv4 address
 * (mapped ::ffff:0:0/96, compatible ::/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48,
 * 6to4 2002::/16, Teredo 2001::/32 client) take the class of the IPv4 address.
 * Other families are NETADDR_RESERVED.
 */
enum netaddr_class netaddr_classify(const struct sockaddr *sa) SG_NONNULL;

/* "public", "loopback", "private", "link-local", "cgnat", "unspecified", "multicast",
 * "broadcast", "reserved", "ula"; "unknown" for values outside the enum. Static string. */
const char *netaddr_class_name(enum netaddr_class cls);

/* Is sa inside c? An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 ranges. */
bool netaddr_cidr_contains(const netaddr_cidr_t *c, const struct sockaddr *sa) SG_NONNULL;
/* Do a and b share an address (one contains the other)? Never across families. */
bool netaddr_cidr_overlap(const netaddr_cidr_t *a, const netaddr_cidr_t *b) SG_NONNULL;
/* "10.0.2.0/24", "fd00::/8" into buf (NETADDR_CIDR_TEXT_MAX fits any); returns buf. */
const char *netaddr_cidr_format(const netaddr_cidr_t *c, char *buf, size_t len) SG_NONNULL;

/*
 * Ranges and addresses as 16-byte keys that sort together: IPv6 as is, IPv4 mapped into
 * ::ffff:0:0/96. netaddr_cidr_bounds gives a range's first and last key; netaddr_key an
 * address's (0, or -1 for families other than AF_INET and AF_INET6).
 */
void netaddr_cidr_bounds(const netaddr_cidr_t *c, uint8_t lo[16], uint8_t hi[16])
    SG_NONNULL;
int netaddr_key(const struct sockaddr *sa, uint8_t key[16]) SG_NONNULL SG_WUR;

/*
 * May sa be dialled? 0 when it is PUBLIC or inside one of allow[0..nallow) (the policy's
 * egress.allow_private); -1 when denied. Unspecified, multicast and broadcast addresses
 * are denied even when an allowed range covers them (they are never a real upstream).
 * *cls (when cls is not NULL) receives the class either way.
 */
int netaddr_egress_check(const struct sockaddr *sa, const netaddr_cidr_t *allow,
    size_t nallow, enum netaddr_class *cls) __attribute__((nonnull(1))) SG_WUR;

/*
 * Address text without port or brackets: "127.0.0.1", "::1", "::ffff:127.0.0.1".
 * Callers add brackets for IPv6 in authority form. 0, or -1 (unknown family or buf
 * too small; buf then holds "").
 */
int netaddr_format(const struct sockaddr *sa, char *buf, size_t len) SG_NONNULL;

#endif
