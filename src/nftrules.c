/* nftrules.c — the nftables ruleset for transparent interception (see nftrules.h). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nftrules.h"

static bool
nftrules_ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NFTRULES_IFNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* "1.2.3.4:P" or "[v6]:P" into canonical address text, family and port. */
static int
nftrules_parse_proxy(const char *s, char *ip, size_t iplen, bool *v6, unsigned *port)
{
	char host[64];
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hl;
	unsigned char bin[16];
	char *end;
	long p;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 2 || s[hl - 1] != ']')
			return -1;
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || p < 1 || p > 65535)
		return -1;
	*port = (unsigned)p;
	*v6 = s[0] == '[';
	if (inet_pton(*v6 ? AF_INET6 : AF_INET, host, bin) != 1 ||
	    inet_ntop(*v6 ? AF_INET6 : AF_INET, bin, ip, (socklen_t)iplen) == NULL)
		return -1;
	return 0;
}

int
nftrules_render(const char *ifname, const char *proxy, char *out, size_t outlen,
    char *err, size_t errlen)
{
	char ip[INET6_ADDRSTRLEN], meta[128] = "";
	unsigned port;
	bool v6;
	int n;

	if (!nftrules_ifname_ok(ifname)) {
		snprintf(err, errlen, "--sandbox-if: not an interface name (1..%d of "
		    "A-Z a-z 0-9 . _ -)", NFTRULES_IFNAME_MAX);
		return -1;
	}
	if (nftrules_parse_proxy(proxy, ip, sizeof(ip), &v6, &port) < 0) {
		snprintf(err, errlen, "--proxy: not IP:port or [IPv6]:port (port 1..65535)");
		return -1;
	}
	if (!v6)
		snprintf(meta, sizeof(meta), "\t\tiifname \"%s\" ip daddr { %s } return\n",
		    ifname, NFTRULES_METADATA_V4);
	n = snprintf(out, outlen,
	    "table inet sealgate {\n"
	    "\tchain prerouting {\n"
	    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
	    "\t\tiifname \"%s\" %s daddr %s return\n"
	    "%s"
	    "\t\tiifname \"%s\" tcp dport %d dnat %s to %s%s%s:%u\n"
	    "\t}\n"
	    "}\n",
	    ifname, v6 ? "ip6" : "ip", ip, meta, ifname, NFTRULES_PORT, v6 ? "ip6" : "ip",
	    v6 ? "[" : "", ip, v6 ? "]" : "", port);
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "ruleset does not fit");
		return -1;
	}
	return 0;
}
