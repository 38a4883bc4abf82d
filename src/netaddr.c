/* netaddr.c — CIDRs, client IP literals in every spelling, address classes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

/* Longest address text worth looking at: IPv6 with brackets and an IPv4 tail is 47. */
#define NETADDR_TEXT_MAX	64

static void
netaddr_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
    __attribute__((format(printf, 3, 0)));

static void
netaddr_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	if (err == NULL || errlen == 0)
		return;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(err, errlen, fmt, a, b);
#pragma GCC diagnostic pop
}

/* --- CIDRs -------------------------------------------------------------------------- */

/* Strict dotted quad: four decimal octets 0..255, no leading zeros, nothing else. */
static int
netaddr_parse_quad(const char *s, uint8_t out[4])
{
	for (int i = 0; i < 4; i++) {
		unsigned v = 0;
		int digits = 0;

		if (i > 0 && *s++ != '.')
			return -1;
		if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
			return -1;
		while (*s >= '0' && *s <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (digits == 0 || v > 255)
			return -1;
		out[i] = (uint8_t)v;
	}
	return *s == '\0' ? 0 : -1;
}

/* Decimal prefix length: 1-3 digits, no leading zeros, at most max. */
static int
netaddr_parse_prefix(const char *s, unsigned max, uint8_t *out)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

/* Clear the bits beyond prefix; returns 1 when any was set. */
static int
netaddr_mask(uint8_t *addr, size_t alen, unsigned prefix)
{
	int dirty = 0;

	for (size_t i = 0; i < alen; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 :
		    prefix > 8 * i ? prefix - 8 * (unsigned)i : 0;
		uint8_t m = (uint8_t)(keep == 8 ? 0xff : (0xff00u >> keep) & 0xff);

		if (addr[i] & (uint8_t)~m)
			dirty = 1;
		addr[i] &= m;
	}
	return dirty;
}

static int
netaddr_parse_cidr_addr(const char *a, netaddr_cidr_t *out)
{
	memset(out, 0, sizeof(*out));
	if (strchr(a, ':') != NULL) {
		if (inet_pton(AF_INET6, a, out->addr) != 1)
			return -1;
		out->family = AF_INET6;
		out->prefix = 128;
		return 0;
	}
	if (netaddr_parse_quad(a, out->addr) != 0)
		return -1;
	out->family = AF_INET;
	out->prefix = 32;
	return 0;
}

int
netaddr_parse_cidr(const char *s, netaddr_cidr_t *out, char *err, size_t errlen)
{
	char a[NETADDR_TEXT_MAX], net[NETADDR_CIDR_TEXT_MAX], pfx[8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	netaddr_cidr_t c;

	if (alen == 0 || alen >= sizeof(a)) {
		netaddr_err(err, errlen, "\"%s\" is not an IP address or CIDR range%s", s, "");
		return -1;
	}
	memcpy(a, s, alen);
	a[alen] = '\0';
	if (netaddr_parse_cidr_addr(a, &c) != 0) {
		netaddr_err(err, errlen, "\"%s\" is not an IP address%s (IPv4 must be a "
		    "dotted quad like 10.0.2.0, IPv6 like fd00::)", a, "");
		return -1;
	}
	if (slash != NULL && netaddr_parse_prefix(slash + 1, c.family == AF_INET ? 32 :
	    128, &c.prefix) != 0) {
		netaddr_err(err, errlen, "\"%s\": prefix must be a number 0..%s", s,
		    c.family == AF_INET ? "32" : "128");
		return -1;
	}
	if (netaddr_mask(c.addr, c.family == AF_INET ? 4 : 16, c.prefix)) {
		netaddr_cidr_format(&c, net, sizeof(net));
		snprintf(pfx, sizeof(pfx), "/%u", c.prefix);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s has bits set beyond %s; did you mean %s?",
			    s, pfx, net);
		return -1;
	}
	*out = c;
	return 0;
}

bool
netaddr_cidr_overlap(const netaddr_cidr_t *a, const netaddr_cidr_t *b)
{
	unsigned bits = a->prefix < b->prefix ? a->prefix : b->prefix;
	size_t whole = bits / 8;

	if (a->family != b->family)
		return false;
	if (memcmp(a->addr, b->addr, whole) != 0)
		return false;
	if (bits % 8 == 0)
		return true;
	return ((a->addr[whole] ^ b->addr[whole]) & (0xff00u >> (bits % 8)) & 0xff) == 0;
}

const char *
netaddr_cidr_format(const netaddr_cidr_t *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, c->prefix);
	return buf;
}

void
netaddr_cidr_bounds(const netaddr_cidr_t *c, uint8_t lo[16], uint8_t hi[16])
{
	unsigned prefix = c->prefix;

	memset(lo, 0, 16);
	if (c->family == AF_INET) {
		lo[10] = lo[11] = 0xff;
		memcpy(lo + 12, c->addr, 4);
		prefix += 96;
	} else {
		memcpy(lo, c->addr, 16);
	}
	memcpy(hi, lo, 16);
	for (unsigned bit = prefix; bit < 128; bit++) {
		lo[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
		hi[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
	}
}

int
netaddr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* --- client literals -------------------------------------------------------------- */

/* Does label [p, p+n) read as a number (decimal digits, or 0x + hex digits)? */
static bool
netaddr_label_numeric(const char *p, size_t n)
{
	size_t i = 0;

	if (n == 0)
		return false;
	if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		for (i = 2; i < n; i++)
			if (strchr("0123456789abcdefABCDEF", p[i]) == NULL || p[i] == '\0')
				return false;
		return true;
	}
	for (; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/*
 * Only letters, digits, '-', '_' and '.' (no empty label) make a name; anything else
 * (space, '%', '@', control bytes) is refused rather than handed to a resolver, because
 * inet_aton-style parsers accept "127.0.0.1 junk" as 127.0.0.1.
 */
static bool
netaddr_name_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '.' && (i == 0 || p[i - 1] == '.'))
			return false;	/* empty label */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static int
netaddr_digit(char c, unsigned base)
{
	int d;

	if (c >= '0' && c <= '9')
		d = c - '0';
	else if (c >= 'a' && c <= 'f')
		d = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		d = c - 'A' + 10;
	else
		return -1;
	return (unsigned)d < base ? d : -1;
}

/* One inet_aton part [p, p+n): decimal, 0-prefixed octal, 0x hex ("0x" alone is 0). */
static int
netaddr_aton_part(const char *p, size_t n, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;
	size_t i = 0;

	if (n == 0)
		return -1;
	if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		i = 2;
	} else if (n >= 2 && p[0] == '0') {
		base = 8;
		i = 1;
	}
	for (; i < n; i++) {
		int d = netaddr_digit(p[i], base);

		if (d < 0 || v > 0xffffffffu)
			return -1;
		v = v * base + (unsigned)d;
	}
	if (v > 0xffffffffu)
		return -1;
	*out = v;
	return 0;
}

/* inet_aton over [s, s+n): 0 with the address in network order, -1 malformed. */
static int
netaddr_aton(const char *s, size_t n, uint8_t out[4])
{
	uint64_t part[4];
	size_t np = 0, start = 0;
	uint32_t v = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (np == 4 || netaddr_aton_part(s + start, i - start, &part[np]) != 0)
			return -1;
		np++;
		start = i + 1;
	}
	for (size_t i = 0; i + 1 < np; i++) {
		if (part[i] > 255)
			return -1;
		v |= (uint32_t)part[i] << (24 - 8 * i);
	}
	if (part[np - 1] > (0xffffffffu >> (8 * (np - 1))))
		return -1;
	v |= (uint32_t)part[np - 1];
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
	return 0;
}

static void
netaddr_fill_v4(const uint8_t a[4], struct sockaddr_storage *out, socklen_t *outlen)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	memcpy(&sin.sin_addr, a, 4);
	memset(out, 0, sizeof(*out));
	memcpy(out, &sin, sizeof(sin));
	*outlen = sizeof(sin);
}

static void
netaddr_fill_v6(const uint8_t a[16], struct sockaddr_storage *out, socklen_t *outlen)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	memcpy(&sin6.sin6_addr, a, 16);
	memset(out, 0, sizeof(*out));
	memcpy(out, &sin6, sizeof(sin6));
	*outlen = sizeof(sin6);
}

static int
netaddr_parse_v6(const char *host, size_t n, struct sockaddr_storage *out,
    socklen_t *outlen)
{
	char buf[NETADDR_TEXT_MAX];
	uint8_t a[16];

	if (host[0] == '[') {
		if (n < 2 || host[n - 1] != ']')
			return -2;
		host++;
		n -= 2;
	} else if (host[n - 1] == ']')
		return -2;
	if (n == 0 || n >= sizeof(buf) || memchr(host, '%', n) != NULL)
		return -2;
	memcpy(buf, host, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET6, buf, a) != 1)
		return -2;
	netaddr_fill_v6(a, out, outlen);
	return 0;
}

int
netaddr_parse_literal(const char *host, struct sockaddr_storage *out, socklen_t *outlen)
{
	size_t n = strlen(host);
	const char *last;
	uint8_t a[4];

	if (n == 0)
		return -2;
	if (host[0] == '[' || strchr(host, ':') != NULL)
		return netaddr_parse_v6(host, n, out, outlen);
	if (host[n - 1] == '.')
		n--;
	if (n == 0)
		return -2;
	last = host + n;
	while (last > host && last[-1] != '.')
		last--;
	if (!netaddr_label_numeric(last, (size_t)(host + n - last)))
		return netaddr_name_ok(host, n) ? -1 : -2;
	if (netaddr_aton(host, n, a) != 0)
		return -2;
	netaddr_fill_v4(a, out, outlen);
	return 0;
}

/* --- classification --------------------------------------------------------------- */

static enum netaddr_class
netaddr_classify_v4(const uint8_t a[4])
{
	if (a[0] == 0)
		return NETADDR_UNSPECIFIED;
	if (a[0] == 127)
		return NETADDR_LOOPBACK;
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168))
		return NETADDR_PRIVATE;
	if (a[0] == 169 && a[1] == 254)
		return NETADDR_LINKLOCAL;
	if (a[0] == 100 && (a[1] & 0xc0) == 64)
		return NETADDR_CGNAT;
	if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255)
		return NETADDR_BROADCAST;
	if ((a[0] & 0xf0) == 224)
		return NETADDR_MULTICAST;
	if ((a[0] & 0xf0) == 240)
		return NETADDR_RESERVED;
	if ((a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2)) ||
	    (a[0] == 198 && (a[1] & 0xfe) == 18) ||
	    (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
	    (a[0] == 203 && a[1] == 0 && a[2] == 113) ||
	    (a[0] == 192 && a[1] == 88 && a[2] == 99))
		return NETADDR_RESERVED;
	return NETADDR_PUBLIC;
}

static bool
netaddr_prefix_eq(const uint8_t *a, const uint8_t *p, size_t n)
{
	return memcmp(a, p, n) == 0;
}

/* IPv6 forms that embed an IPv4 address: true with the address in v4. */
static bool
netaddr_embedded_v4(const uint8_t a[16], uint8_t v4[4])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t zero[12] = {0};
	static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
	static const uint8_t teredo[4] = {0x20, 0x01, 0, 0};

	if (netaddr_prefix_eq(a, mapped, 12) || netaddr_prefix_eq(a, zero, 12) ||
	    netaddr_prefix_eq(a, nat64, 12)) {
		memcpy(v4, a + 12, 4);
		return true;
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		memcpy(v4, a + 2, 4);
		return true;
	}
	if (netaddr_prefix_eq(a, teredo, 4)) {
		for (int i = 0; i < 4; i++)
			v4[i] = (uint8_t)~a[12 + i];
		return true;
	}
	return false;
}

/*
 * 64:ff9b:1::/48 is the local-use NAT64 prefix (RFC 8215); operators choose its length,
 * so the IPv4 address may sit at bytes 12..15 (/96) or 6,7,9,10 (/48, RFC 6052, whose
 * suffix is zero). With a zero tail only the /48 reading makes sense; otherwise both
 * readings are classified and the first that is not public wins.
 */
static enum netaddr_class
netaddr_classify_nat64_local(const uint8_t a[16])
{
	static const uint8_t zero[4] = {0};
	uint8_t v4[4] = {a[6], a[7], a[9], a[10]};
	enum netaddr_class c;

	if (memcmp(a + 12, zero, 4) == 0)
		return netaddr_classify_v4(v4);
	c = netaddr_classify_v4(a + 12);
	return c != NETADDR_PUBLIC ? c : netaddr_classify_v4(v4);
}

static enum netaddr_class
netaddr_classify_v6(const uint8_t a[16])
{
	static const uint8_t zero[16] = {0};
	static const uint8_t nat64l[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
	static const uint8_t doc[4] = {0x20, 0x01, 0x0d, 0xb8};
	static const uint8_t discard[8] = {0x01, 0x00};
	uint8_t v4[4];

	if (netaddr_prefix_eq(a, zero, 16))
		return NETADDR_UNSPECIFIED;
	if (netaddr_prefix_eq(a, zero, 15) && a[15] == 1)
		return NETADDR_LOOPBACK;
	if (netaddr_embedded_v4(a, v4))
		return netaddr_classify_v4(v4);
	if (netaddr_prefix_eq(a, nat64l, 6))
		return netaddr_classify_nat64_local(a);
	if (a[0] == 0xff)
		return NETADDR_MULTICAST;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return NETADDR_LINKLOCAL;
	if ((a[0] & 0xfe) == 0xfc)
		return NETADDR_ULA;
	if (netaddr_prefix_eq(a, doc, 4) || netaddr_prefix_eq(a, discard, 8))
		return NETADDR_RESERVED;
	/* Global unicast is 2000::/3; the rest (incl. site-local fec0::/10) is not routed. */
	if ((a[0] & 0xe0) != 0x20)
		return NETADDR_RESERVED;
	return NETADDR_PUBLIC;
}

enum netaddr_class
netaddr_classify(const struct sockaddr *sa)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		return netaddr_classify_v4((const uint8_t *)&sin.sin_addr);
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		return netaddr_classify_v6(sin6.sin6_addr.s6_addr);
	}
	return NETADDR_RESERVED;
}

const char *
netaddr_class_name(enum netaddr_class cls)
{
	static const char *const names[] = {
		[NETADDR_PUBLIC] = "public", [NETADDR_LOOPBACK] = "loopback",
		[NETADDR_PRIVATE] = "private", [NETADDR_LINKLOCAL] = "link-local",
		[NETADDR_CGNAT] = "cgnat", [NETADDR_UNSPECIFIED] = "unspecified",
		[NETADDR_MULTICAST] = "multicast", [NETADDR_BROADCAST] = "broadcast",
		[NETADDR_RESERVED] = "reserved", [NETADDR_ULA] = "ula",
	};

	if ((unsigned)cls >= SG_ARRAY_LEN(names))
		return "unknown";
	return names[cls];
}

/* --- ranges ----------------------------------------------------------------------- */

/*
 * sa's address bytes as family fam: an IPv6 address as itself, an IPv4 address as
 * itself, and an IPv4-mapped IPv6 address also as IPv4. 0, or -1 when it has no such form.
 */
static int
netaddr_bytes(const struct sockaddr *sa, int fam, uint8_t out[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (sa->sa_family == AF_INET && fam == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memcpy(out, &sin.sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	memcpy(&sin6, sa, sizeof(sin6));
	if (fam == AF_INET6) {
		memcpy(out, sin6.sin6_addr.s6_addr, 16);
		return 0;
	}
	if (fam == AF_INET && memcmp(sin6.sin6_addr.s6_addr, mapped, 12) == 0) {
		memcpy(out, sin6.sin6_addr.s6_addr + 12, 4);
		return 0;
	}
	return -1;
}

bool
netaddr_cidr_contains(const netaddr_cidr_t *c, const struct sockaddr *sa)
{
	uint8_t a[16];
	unsigned full, rest;

	if (netaddr_bytes(sa, c->family, a) != 0)
		return false;
	if (c->prefix > (c->family == AF_INET ? 32 : 128))
		return false;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(a, c->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ c->addr[full]) & (0xff00u >> rest) & 0xff) == 0;
}

int
netaddr_egress_check(const struct sockaddr *sa, const netaddr_cidr_t *allow, size_t nallow,
    enum netaddr_class *cls)
{
	enum netaddr_class c = netaddr_classify(sa);

	if (cls != NULL)
		*cls = c;
	if (c == NETADDR_PUBLIC)
		return 0;
	if (c == NETADDR_UNSPECIFIED || c == NETADDR_MULTICAST || c == NETADDR_BROADCAST ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return -1;
	for (size_t i = 0; i < nallow; i++)
		if (netaddr_cidr_contains(&allow[i], sa))
			return 0;
	return -1;
}

int
netaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	const char *r = NULL;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (len > (size_t)INT32_MAX)
		len = INT32_MAX;
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		r = inet_ntop(AF_INET, &sin.sin_addr, buf, (socklen_t)len);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		r = inet_ntop(AF_INET6, &sin6.sin6_addr, buf, (socklen_t)len);
	}
	if (r == NULL) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}
