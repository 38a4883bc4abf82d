/*
 * fuzz_netaddr.c — libFuzzer harness for the address parsers.
 * Invariants: a parsed literal formats and re-parses to the same address; a parsed CIDR
 * contains its own network address; classification never fails on a parsed address.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_literal(const char *s)
{
	struct sockaddr_storage ss, again;
	socklen_t sl, sl2;
	char txt[64];
	enum netaddr_class cls;

	if (netaddr_parse_literal(s, &ss, &sl) != 0)
		return;
	cls = netaddr_classify((struct sockaddr *)&ss);
	if (strcmp(netaddr_class_name(cls), "unknown") == 0)
		abort();
	(void)netaddr_egress_check((struct sockaddr *)&ss, NULL, 0, &cls);
	if (netaddr_format((struct sockaddr *)&ss, txt, sizeof(txt)) != 0)
		abort();
	if (netaddr_parse_literal(txt, &again, &sl2) != 0 || sl != sl2 ||
	    memcmp(&ss, &again, sl) != 0)
		abort();
}

static void
fuzz_cidr(const char *s)
{
	netaddr_cidr_t c;
	struct sockaddr_storage ss;
	socklen_t sl;
	char err[256], txt[64];

	if (netaddr_parse_cidr(s, &c, err, sizeof(err)) != 0)
		return;
	if (c.prefix > (c.family == AF_INET ? 32 : 128))
		abort();
	memset(&ss, 0, sizeof(ss));
	if (c.family == AF_INET) {
		struct sockaddr_in sin = {.sin_family = AF_INET};

		memcpy(&sin.sin_addr, c.addr, 4);
		memcpy(&ss, &sin, sizeof(sin));
	} else {
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

		memcpy(&sin6.sin6_addr, c.addr, 16);
		memcpy(&ss, &sin6, sizeof(sin6));
	}
	if (!netaddr_cidr_contains(&c, (struct sockaddr *)&ss))
		abort();
	(void)netaddr_classify((struct sockaddr *)&ss);
	/* A policy CIDR address is also a client literal for the same address. */
	if (netaddr_format((struct sockaddr *)&ss, txt, sizeof(txt)) != 0 ||
	    netaddr_parse_literal(txt, &ss, &sl) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 4096)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_literal(s);
	fuzz_cidr(s);
	free(s);
	return 0;
}
