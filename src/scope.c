/* scope.c — host patterns with ports, methods, path normalization and globs. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scope.h"
#include "util.h"

/* Longest DNS name (RFC 1035), bracketed IPv6 text fits too. */
#define SCOPE_NAME_MAX	253

/* A host pattern taken apart: name[0..nlen) without "*." and trailing dot. */
struct scope_hostpat {
	const char *name;
	size_t nlen;
	bool wild;		/* "*.name": strictly below name */
	bool ipv6;		/* "[v6]": name is the text inside the brackets */
	bool has_port;
	uint16_t port;
};

/* --- hosts ------------------------------------------------------------------------ */

/* Decimal port 1..65535, no sign, no leading zero. */
static int
scope_parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || s[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static bool
scope_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

/* Labels of letters, digits, '-', '_' separated by single dots; no '*'. */
static bool
scope_name_valid(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > SCOPE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (scope_name_char((unsigned char)s[i]))
			label++;
		else
			return false;
	}
	return label > 0;
}

static int
scope_split_bracketed(const char *p, struct scope_hostpat *hp)
{
	const char *end = strchr(p, ']');
	char buf[64];
	unsigned char a[16];

	if (end == NULL || end == p + 1 || (size_t)(end - p - 1) >= sizeof(buf))
		return -1;
	hp->name = p + 1;
	hp->nlen = (size_t)(end - p - 1);
	hp->ipv6 = true;
	memcpy(buf, hp->name, hp->nlen);
	buf[hp->nlen] = '\0';
	if (inet_pton(AF_INET6, buf, a) != 1)
		return -1;
	if (end[1] == '\0')
		return 0;
	hp->has_port = true;
	return end[1] == ':' ? scope_parse_port(end + 2, &hp->port) : -1;
}

static int
scope_pattern_split(const char *p, struct scope_hostpat *hp)
{
	const char *colon;

	memset(hp, 0, sizeof(*hp));
	if (p[0] == '[')
		return scope_split_bracketed(p, hp);
	colon = strrchr(p, ':');
	hp->nlen = colon ? (size_t)(colon - p) : strlen(p);
	if (colon != NULL) {
		hp->has_port = true;
		if (scope_parse_port(colon + 1, &hp->port) != 0)
			return -1;
	}
	if (hp->nlen >= 2 && p[0] == '*' && p[1] == '.') {
		hp->wild = true;
		p += 2;
		hp->nlen -= 2;
	}
	hp->name = p;
	if (hp->nlen > 1 && p[hp->nlen - 1] == '.')
		hp->nlen--;
	return scope_name_valid(hp->name, hp->nlen) ? 0 : -1;
}

bool
scope_host_pattern_valid(const char *pattern)
{
	struct scope_hostpat hp;

	return scope_pattern_split(pattern, &hp) == 0;
}

static bool
scope_ipv6_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	char x[64], y[64];
	unsigned char ax[16], bx[16];

	if (alen >= sizeof(x) || blen >= sizeof(y))
		return false;
	memcpy(x, a, alen);
	x[alen] = '\0';
	memcpy(y, b, blen);
	y[blen] = '\0';
	return inet_pton(AF_INET6, x, ax) == 1 && inet_pton(AF_INET6, y, bx) == 1 &&
	    memcmp(ax, bx, 16) == 0;
}

static bool
scope_port_ok(const struct scope_hostpat *hp, uint16_t port)
{
	if (hp->has_port)
		return port == hp->port;
	return port == 443 || port == 80;
}

bool
scope_host_match(const char *pattern, const char *host, uint16_t port)
{
	struct scope_hostpat hp;
	size_t hlen = strlen(host);

	if (scope_pattern_split(pattern, &hp) != 0 || !scope_port_ok(&hp, port))
		return false;
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hp.ipv6)
		return scope_ipv6_equal(hp.name, hp.nlen, host, hlen);
	if (hlen > 1 && host[hlen - 1] == '.')
		hlen--;
	if (!hp.wild)
		return hlen == hp.nlen && strncasecmp(host, hp.name, hlen) == 0;
	return hlen > hp.nlen + 1 && host[hlen - hp.nlen - 1] == '.' &&
	    strncasecmp(host + hlen - hp.nlen, hp.name, hp.nlen) == 0;
}

bool
scope_hosts_match(const policy_strlist_t *patterns, const char *host, uint16_t port)
{
	for (size_t i = 0; i < patterns->n; i++)
		if (scope_host_match(patterns->v[i], host, port))
			return true;
	return false;
}

/* --- methods ------------------------------------------------------------------------ */

bool
scope_method_match(const policy_strlist_t *methods, const char *method)
{
	if (methods->n == 0)
		return true;
	for (size_t i = 0; i < methods->n; i++)
		if (strcmp(methods->v[i], method) == 0)
			return true;
	return false;
}

/* --- paths -------------------------------------------------------------------------- */

static bool
scope_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

/* "." or ".." segment, also with ";params" after it (servlet containers strip those). */
static bool
scope_dot_segment(const char *seg, size_t n)
{
	const char *semi = memchr(seg, ';', n);

	if (semi != NULL)
		n = (size_t)(semi - seg);
	return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

/*
 * One input unit at p (n bytes left) into enc (1 or 3 bytes, *elen). *raw is the byte
 * it stands for. -1 when refused.
 */
static int
scope_path_unit(const char *p, size_t n, char enc[3], size_t *elen, unsigned char *raw)
{
	static const char hx[] = "0123456789ABCDEF";
	unsigned char c = (unsigned char)p[0];
	int hi, lo;

	*elen = 1;
	if (c != '%') {
		if (c <= 0x20 || c >= 0x7f || c == '\\')
			return -1;
		enc[0] = (char)c;
		*raw = c;
		return 0;
	}
	if (n < 3 || (hi = util_hex_nibble(p[1])) < 0 || (lo = util_hex_nibble(p[2])) < 0)
		return -1;
	c = (unsigned char)(hi << 4 | lo);
	if (c == 0 || c == '/' || c == '\\')
		return -1;
	*raw = c;
	if (scope_unreserved(c)) {
		enc[0] = (char)c;
		return 0;
	}
	enc[0] = '%';
	enc[1] = hx[c >> 4];
	enc[2] = hx[c & 15];
	*elen = 3;
	return 0;
}

int
scope_path_normalize(const char *path, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0, seg = 0;

	if (len == 0 || path[0] != '/' || len > (size_t)INT32_MAX)
		return -1;
	while (i < len && path[i] != '?' && path[i] != '#') {
		char enc[3];
		size_t elen;
		unsigned char raw;

		if (scope_path_unit(path + i, len - i, enc, &elen, &raw) != 0)
			return -1;
		i += path[i] == '%' ? 3 : 1;
		if (raw == '/' && elen == 1) {
			if (scope_dot_segment(out + seg, o - seg))
				return -1;
			seg = o + 1;
		}
		if (o + elen >= outlen)
			return -1;
		memcpy(out + o, enc, elen);
		o += elen;
	}
	if (scope_dot_segment(out + seg, o - seg) || o >= outlen)
		return -1;
	out[o] = '\0';
	return (int)o;
}

/* Glob with '*' for any run (incl. '/'); iterative, backtracking to the last star. */
static bool
scope_glob(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == *s) {
			p++;
			s++;
		} else if (star != NULL) {
			p = star + 1;
			s = ++resume;
		} else
			return false;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static bool
scope_path_match_one(const char *pattern, const char *path)
{
	size_t plen = strlen(pattern);

	if (strchr(pattern, '*') != NULL)
		return scope_glob(pattern, path);
	if (plen > 0 && pattern[plen - 1] == '/')
		return strncmp(path, pattern, plen) == 0;
	return strcmp(path, pattern) == 0;
}

bool
scope_path_match(const policy_strlist_t *patterns, const char *normalized_path)
{
	if (patterns->n == 0)
		return true;
	for (size_t i = 0; i < patterns->n; i++)
		if (scope_path_match_one(patterns->v[i], normalized_path))
			return true;
	return false;
}
