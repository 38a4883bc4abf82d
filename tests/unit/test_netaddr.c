/* test_netaddr.c — CIDRs (parse, contain, overlap, text, keys), client literals in every
 * spelling, classes, egress. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"

/* Test addresses are built with inet_pton, independent of the code under test. */
static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &sin6->sin6_addr), 1);
	} else {
		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &sin->sin_addr), 1);
	}
	return ss;
}

static netaddr_cidr_t
cidr(const char *s)
{
	netaddr_cidr_t c;
	char err[128];

	assert_int_equal(netaddr_parse_cidr(s, &c, err, sizeof(err)), 0);
	return c;
}

/* --- parse_cidr ------------------------------------------------------------------- */

static void
test_cidr_good(void **state)
{
	static const struct { const char *s; int fam; unsigned pfx; const char *net; } ok[] = {
		{"10.0.2.15", AF_INET, 32, "10.0.2.15"},
		{"10.0.2.0/24", AF_INET, 24, "10.0.2.0"},
		{"0.0.0.0/0", AF_INET, 0, "0.0.0.0"},
		{"127.0.0.3/32", AF_INET, 32, "127.0.0.3"},
		{"172.16.0.0/12", AF_INET, 12, "172.16.0.0"},
		{"fd00::/8", AF_INET6, 8, "fd00::"},
		{"::1", AF_INET6, 128, "::1"},
		{"::/0", AF_INET6, 0, "::"},
		{"2001:db8::/32", AF_INET6, 32, "2001:db8::"},
		{"::ffff:127.0.0.0/104", AF_INET6, 104, "::ffff:127.0.0.0"},
		{"fe80::/10", AF_INET6, 10, "fe80::"},
	};
	char err[128], txt[INET6_ADDRSTRLEN];
	netaddr_cidr_t c;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(ok); i++) {
		err[0] = '\0';
		assert_int_equal(netaddr_parse_cidr(ok[i].s, &c, err, sizeof(err)), 0);
		assert_string_equal(err, "");
		assert_int_equal(c.family, ok[i].fam);
		assert_int_equal(c.prefix, ok[i].pfx);
		assert_non_null(inet_ntop(c.family, c.addr, txt, sizeof(txt)));
		assert_string_equal(txt, ok[i].net);
	}
}

static void
test_cidr_bad(void **state)
{
	static const char *bad[] = {
		"", "/24", "10.0.2.15/24", "10.0.2.0/33", "fd00::/129", "10.0.2.0/",
		"10.0.2.0/-1", "10.0.2.0/024", "010.0.2.0/24", "10.0.2", "127.1",
		"0x7f000001", "2130706433", "10.0.2.0/24/1", "fe80::1%eth0", "[::1]",
		" 10.0.0.1", "10.0.0.1 ", "10.0.0.256", "10.0.2.0/2 4", "fd00::1/8",
		"10.0.0.0/+8", "10.0.0.0.0/8", "example.com", "::1/", "1.2.3.4/1000",
		"fd00::/8x", ":::/8",
	};
	char err[160];
	netaddr_cidr_t c;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		assert_int_equal(netaddr_parse_cidr(bad[i], &c, err, sizeof(err)), -1);
		assert_true(strlen(err) > 0);
	}
}

static void
test_cidr_messages(void **state)
{
	char err[160];
	netaddr_cidr_t c;

	(void)state;
	assert_int_equal(netaddr_parse_cidr("10.0.2.15/24", &c, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "10.0.2.15/24 has bits set beyond /24; did you mean 10.0.2.0/24?");
	assert_int_equal(netaddr_parse_cidr("fd00::1/8", &c, err, sizeof(err)), -1);
	assert_string_equal(err, "fd00::1/8 has bits set beyond /8; did you mean fd00::/8?");
	assert_int_equal(netaddr_parse_cidr("10.0.0.0/33", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0..32"));
	/* No err buffer is fine too. */
	assert_int_equal(netaddr_parse_cidr("bogus", &c, NULL, 0), -1);
}

/* --- parse_literal ---------------------------------------------------------------- */

static void
test_literal_table(void **state)
{
	static const struct { const char *in; int rc; const char *txt; } t[] = {
		{"127.0.0.1", 0, "127.0.0.1"},
		{"2130706433", 0, "127.0.0.1"},
		{"0177.0.0.1", 0, "127.0.0.1"},
		{"0x7f000001", 0, "127.0.0.1"},
		{"0X7F000001", 0, "127.0.0.1"},
		{"017700000001", 0, "127.0.0.1"},
		{"127.1", 0, "127.0.0.1"},
		{"127.0.1", 0, "127.0.0.1"},
		{"0x7f.1", 0, "127.0.0.1"},
		{"0x7f.0.0.0x1", 0, "127.0.0.1"},
		{"127.0.0.1.", 0, "127.0.0.1"},
		{"0xa9fea9fe", 0, "169.254.169.254"},
		{"0251.0376.0251.0376", 0, "169.254.169.254"},
		{"4294967295", 0, "255.255.255.255"},
		{"1.16777215", 0, "1.255.255.255"},
		{"0", 0, "0.0.0.0"},
		{"0x", 0, "0.0.0.0"},
		{"8.8.8.8", 0, "8.8.8.8"},
		{"[::1]", 0, "::1"},
		{"::1", 0, "::1"},
		{"::ffff:127.0.0.1", 0, "::ffff:127.0.0.1"},
		{"[::ffff:7f00:1]", 0, "::ffff:127.0.0.1"},
		{"[2001:DB8::1]", 0, "2001:db8::1"},
		/* names */
		{"example.com", -1, NULL},
		{"1.2.3.4.example.com", -1, NULL},
		{"localhost", -1, NULL},
		{"localhost.", -1, NULL},
		{"0xg", -1, NULL},
		{"a1", -1, NULL},
		{"127.0.0.1x", -1, NULL},
		{"_srv.example-1.com", -1, NULL},
		{"a..b", -2, NULL},
		{".example.com", -2, NULL},
		/* invalid / not allowed */
		{"fe80::1%eth0", -2, NULL},
		{"[fe80::1%25eth0]", -2, NULL},
		{"256.0.0.1", -2, NULL},
		{"1.2.3.4.5", -2, NULL},
		{"08.0.0.1", -2, NULL},
		{"127..1", -2, NULL},
		{".1", -2, NULL},
		{"", -2, NULL},
		{".", -2, NULL},
		{"..", -2, NULL},
		{"[::1", -2, NULL},
		{"::1]", -2, NULL},
		{"[]", -2, NULL},
		{"[127.0.0.1]", -2, NULL},
		{"4294967296", -2, NULL},
		{"0x100000000", -2, NULL},
		{"1.16777216", -2, NULL},
		{"99999999999999999999999999", -2, NULL},
		{"127.0.0.1 ", -2, NULL},
		{"127.0.0.1 junk", -2, NULL},
		{"evil.com@127.0.0.1", -2, NULL},
		{":::", -2, NULL},
		{"foo.123", -2, NULL},
	};
	struct sockaddr_storage ss;
	socklen_t sl;
	char txt[INET6_ADDRSTRLEN];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		int rc = netaddr_parse_literal(t[i].in, &ss, &sl);

		if (rc != t[i].rc)
			fail_msg("\"%s\": got %d, want %d", t[i].in, rc, t[i].rc);
		if (rc != 0)
			continue;
		assert_int_equal(netaddr_format((struct sockaddr *)&ss, txt, sizeof(txt)), 0);
		if (strcmp(txt, t[i].txt) != 0)
			fail_msg("\"%s\": got %s, want %s", t[i].in, txt, t[i].txt);
		assert_int_equal(sl, ss.ss_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	}
}

/* Every spelling of the loopback and metadata addresses is classified as such. */
static void
test_literal_spellings_denied(void **state)
{
	static const char *bad[] = {
		"2130706433", "0177.0.0.1", "0x7f000001", "127.1", "0x7f.1", "127.0.0.1.",
		"[::1]", "::ffff:127.0.0.1", "0xa9fea9fe", "[::ffff:a9fe:a9fe]", "0",
		"[::]", "[64:ff9b::7f00:1]", "0x0a.1", "012.0.0.1",
	};
	struct sockaddr_storage ss;
	socklen_t sl;
	enum netaddr_class cls;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
		assert_int_equal(netaddr_parse_literal(bad[i], &ss, &sl), 0);
		if (netaddr_egress_check((struct sockaddr *)&ss, NULL, 0, &cls) != -1)
			fail_msg("%s allowed", bad[i]);
		assert_int_not_equal(cls, NETADDR_PUBLIC);
	}
}

/* --- classify --------------------------------------------------------------------- */

static void
test_classify_table(void **state)
{
	static const struct { const char *a; enum netaddr_class c; } t[] = {
		{"8.8.8.8", NETADDR_PUBLIC},
		{"1.1.1.1", NETADDR_PUBLIC},
		{"127.0.0.1", NETADDR_LOOPBACK},
		{"127.255.255.254", NETADDR_LOOPBACK},
		{"10.0.0.1", NETADDR_PRIVATE},
		{"10.255.255.255", NETADDR_PRIVATE},
		{"172.15.255.255", NETADDR_PUBLIC},
		{"172.16.0.1", NETADDR_PRIVATE},
		{"172.31.255.255", NETADDR_PRIVATE},
		{"172.32.0.0", NETADDR_PUBLIC},
		{"192.168.1.1", NETADDR_PRIVATE},
		{"192.169.0.1", NETADDR_PUBLIC},
		{"169.254.169.254", NETADDR_LINKLOCAL},
		{"169.254.0.1", NETADDR_LINKLOCAL},
		{"169.253.255.255", NETADDR_PUBLIC},
		{"100.64.0.1", NETADDR_CGNAT},
		{"100.127.255.255", NETADDR_CGNAT},
		{"100.128.0.1", NETADDR_PUBLIC},
		{"100.63.255.255", NETADDR_PUBLIC},
		{"0.0.0.0", NETADDR_UNSPECIFIED},
		{"0.1.2.3", NETADDR_UNSPECIFIED},
		{"224.0.0.1", NETADDR_MULTICAST},
		{"239.255.255.255", NETADDR_MULTICAST},
		{"255.255.255.255", NETADDR_BROADCAST},
		{"240.0.0.1", NETADDR_RESERVED},
		{"255.255.255.254", NETADDR_RESERVED},
		{"192.0.0.8", NETADDR_RESERVED},
		{"198.18.0.1", NETADDR_RESERVED},
		{"198.19.255.255", NETADDR_RESERVED},
		{"198.20.0.1", NETADDR_PUBLIC},
		{"192.0.2.1", NETADDR_RESERVED},
		{"198.51.100.7", NETADDR_RESERVED},
		{"203.0.113.9", NETADDR_RESERVED},
		{"203.0.114.9", NETADDR_PUBLIC},
		/* IPv6 */
		{"2606:4700::1111", NETADDR_PUBLIC},
		{"::1", NETADDR_LOOPBACK},
		{"::", NETADDR_UNSPECIFIED},
		{"fe80::1", NETADDR_LINKLOCAL},
		{"febf::1", NETADDR_LINKLOCAL},
		{"fc00::1", NETADDR_ULA},
		{"fd12:3456::1", NETADDR_ULA},
		{"ff02::1", NETADDR_MULTICAST},
		{"2001:db8::1", NETADDR_RESERVED},
		{"fec0::1", NETADDR_RESERVED},
		{"100::1", NETADDR_RESERVED},
		/* IPv4 embedded in IPv6 */
		{"::ffff:127.0.0.1", NETADDR_LOOPBACK},
		{"::ffff:10.0.0.1", NETADDR_PRIVATE},
		{"::ffff:a9fe:a9fe", NETADDR_LINKLOCAL},
		{"::ffff:8.8.8.8", NETADDR_PUBLIC},
		{"::ffff:0.0.0.0", NETADDR_UNSPECIFIED},
		{"::10.0.0.1", NETADDR_PRIVATE},
		{"::127.0.0.2", NETADDR_LOOPBACK},
		{"::8.8.8.8", NETADDR_PUBLIC},
		{"64:ff9b::7f00:1", NETADDR_LOOPBACK},
		{"64:ff9b::a00:1", NETADDR_PRIVATE},
		{"64:ff9b::a9fe:a9fe", NETADDR_LINKLOCAL},
		{"64:ff9b::808:808", NETADDR_PUBLIC},
		{"64:ff9b:1::a00:1", NETADDR_PRIVATE},
		{"64:ff9b:1:7f00:0:100::", NETADDR_LOOPBACK},
		{"64:ff9b:1:808:8:800::", NETADDR_PUBLIC},
		{"2002:7f00:1::", NETADDR_LOOPBACK},
		{"2002:a9fe:a9fe::1", NETADDR_LINKLOCAL},
		{"2002:808:808::1", NETADDR_PUBLIC},
		/* Teredo: client address is the inverted last 32 bits (RFC 4380 example). */
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", NETADDR_RESERVED},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", NETADDR_LOOPBACK},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", NETADDR_PRIVATE},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", NETADDR_PUBLIC},
	};
	struct sockaddr_storage ss;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		enum netaddr_class c;

		ss = addr(t[i].a);
		c = netaddr_classify((struct sockaddr *)&ss);
		if (c != t[i].c)
			fail_msg("%s: got %s, want %s", t[i].a, netaddr_class_name(c),
			    netaddr_class_name(t[i].c));
	}
}

static void
test_class_names(void **state)
{
	struct sockaddr_storage ss;

	(void)state;
	assert_string_equal(netaddr_class_name(NETADDR_PUBLIC), "public");
	assert_string_equal(netaddr_class_name(NETADDR_LOOPBACK), "loopback");
	assert_string_equal(netaddr_class_name(NETADDR_PRIVATE), "private");
	assert_string_equal(netaddr_class_name(NETADDR_LINKLOCAL), "link-local");
	assert_string_equal(netaddr_class_name(NETADDR_CGNAT), "cgnat");
	assert_string_equal(netaddr_class_name(NETADDR_UNSPECIFIED), "unspecified");
	assert_string_equal(netaddr_class_name(NETADDR_MULTICAST), "multicast");
	assert_string_equal(netaddr_class_name(NETADDR_BROADCAST), "broadcast");
	assert_string_equal(netaddr_class_name(NETADDR_RESERVED), "reserved");
	assert_string_equal(netaddr_class_name(NETADDR_ULA), "ula");
	assert_string_equal(netaddr_class_name((enum netaddr_class)99), "unknown");
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(netaddr_classify((struct sockaddr *)&ss), NETADDR_RESERVED);
}

/* --- ranges and egress -------------------------------------------------------------- */

static void
test_cidr_contains(void **state)
{
	static const struct { const char *c, *a; bool in; } t[] = {
		{"10.0.2.0/24", "10.0.2.15", true},
		{"10.0.2.0/24", "10.0.3.15", false},
		{"10.0.2.0/23", "10.0.3.15", true},
		{"10.0.2.0/23", "10.0.4.0", false},
		{"127.0.0.3/32", "127.0.0.3", true},
		{"127.0.0.3/32", "127.0.0.1", false},
		{"0.0.0.0/0", "8.8.8.8", true},
		{"127.0.0.0/8", "::ffff:127.0.0.9", true},
		{"127.0.0.0/8", "::ffff:10.0.0.1", false},
		{"127.0.0.0/8", "::1", false},
		{"::/0", "8.8.8.8", false},
		{"fd00::/8", "fd12::1", true},
		{"fd00::/8", "fc00::1", false},
		{"fe80::/10", "febf::1", true},
		{"fe80::/10", "fec0::1", false},
		{"::1", "::1", true},
		{"::1", "::2", false},
		{"::ffff:127.0.0.0/104", "::ffff:127.0.0.1", true},
		{"::ffff:127.0.0.0/104", "127.0.0.1", false},
	};
	struct sockaddr_storage ss;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		netaddr_cidr_t c = cidr(t[i].c);

		ss = addr(t[i].a);
		if (netaddr_cidr_contains(&c, (struct sockaddr *)&ss) != t[i].in)
			fail_msg("%s in %s: want %d", t[i].a, t[i].c, t[i].in);
	}
}

/* Two ranges overlap when one contains the other; the answer is the same both ways. */
static void
test_cidr_overlap(void **state)
{
	static const struct { const char *a, *b; bool overlap; } t[] = {
		{"10.0.0.0/8", "10.1.0.0/16", true},
		{"10.0.0.0/16", "10.1.0.0/16", false},
		{"10.0.2.15", "10.0.2.0/24", true},
		{"10.0.2.15", "10.0.2.16", false},
		{"10.0.2.0/25", "10.0.2.128/25", false},
		{"10.0.2.0/23", "10.0.3.128/25", true},
		{"0.0.0.0/0", "192.168.1.1", true},
		{"fd00::/8", "fd12::/16", true},
		{"fd00::/9", "fd80::/9", false},
		{"::/0", "2001:db8::1", true},
		{"::ffff:10.0.0.1", "10.0.0.0/8", false},	/* families differ */
		{"::/0", "0.0.0.0/0", false},
	};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		netaddr_cidr_t a = cidr(t[i].a), b = cidr(t[i].b);

		if (netaddr_cidr_overlap(&a, &b) != t[i].overlap ||
		    netaddr_cidr_overlap(&b, &a) != t[i].overlap)
			fail_msg("%s ~ %s: want %d", t[i].a, t[i].b, t[i].overlap);
	}
}

/* Parsed ranges print back as address/prefix; a short buffer is cut, still terminated. */
static void
test_cidr_text(void **state)
{
	static const struct { const char *in, *out; } t[] = {
		{"10.0.2.0/24", "10.0.2.0/24"},
		{"10.0.2.15", "10.0.2.15/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"fd00::/8", "fd00::/8"},
		{"::1", "::1/128"},
		{"::ffff:127.0.0.0/104", "::ffff:127.0.0.0/104"},
	};
	char buf[NETADDR_CIDR_TEXT_MAX], small[6];
	netaddr_cidr_t c;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		c = cidr(t[i].in);
		assert_ptr_equal(netaddr_cidr_format(&c, buf, sizeof(buf)), buf);
		assert_string_equal(buf, t[i].out);
	}
	c = cidr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	netaddr_cidr_format(&c, buf, sizeof(buf));
	assert_string_equal(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	c = cidr("10.0.2.0/24");
	netaddr_cidr_format(&c, small, sizeof(small));
	assert_string_equal(small, "10.0.");
}

/* Range ends and address keys sort together: an address is in a range exactly when its
 * key lies between the range's bounds, whichever family spells it. */
static void
test_cidr_bounds_and_keys(void **state)
{
	static const struct { const char *c, *a; bool in; } t[] = {
		{"10.0.2.0/24", "10.0.2.0", true},
		{"10.0.2.0/24", "10.0.2.255", true},
		{"10.0.2.0/24", "10.0.3.0", false},
		{"10.0.2.0/24", "10.0.1.255", false},
		{"10.0.2.0/24", "::ffff:10.0.2.7", true},
		{"0.0.0.0/0", "::ffff:1.2.3.4", true},
		{"0.0.0.0/0", "::1", false},
		{"fd00::/8", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"fd00::/8", "fe00::", false},
		{"::1", "::1", true},
	};
	uint8_t lo[16], hi[16], key[16];
	struct sockaddr_storage ss;
	struct sockaddr unix_sa = {.sa_family = AF_UNIX};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(t); i++) {
		netaddr_cidr_t c = cidr(t[i].c);
		bool in;

		ss = addr(t[i].a);
		netaddr_cidr_bounds(&c, lo, hi);
		assert_int_equal(netaddr_key((struct sockaddr *)&ss, key), 0);
		in = memcmp(lo, key, 16) <= 0 && memcmp(key, hi, 16) <= 0;
		if (in != t[i].in || in != netaddr_cidr_contains(&c, (struct sockaddr *)&ss))
			fail_msg("%s in [%s]: want %d", t[i].a, t[i].c, t[i].in);
	}
	assert_int_equal(netaddr_key(&unix_sa, key), -1);
}

static void
test_egress_allow_list(void **state)
{
	netaddr_cidr_t allow[3];
	struct sockaddr_storage ss;
	enum netaddr_class cls = NETADDR_PUBLIC;

	(void)state;
	allow[0] = cidr("127.0.0.3/32");
	allow[1] = cidr("10.1.0.0/16");
	allow[2] = cidr("fd00::/8");

	ss = addr("127.0.0.3");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 3, &cls), 0);
	assert_int_equal(cls, NETADDR_LOOPBACK);
	ss = addr("127.0.0.1");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 3, &cls), -1);
	assert_int_equal(cls, NETADDR_LOOPBACK);
	ss = addr("::ffff:127.0.0.3");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 3, &cls), 0);
	ss = addr("10.1.2.3");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 3, &cls), 0);
	assert_int_equal(cls, NETADDR_PRIVATE);
	ss = addr("10.2.0.1");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 3, &cls), -1);
	ss = addr("fd00::5");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 3, &cls), 0);
	assert_int_equal(cls, NETADDR_ULA);
	ss = addr("169.254.169.254");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 3, &cls), -1);
	assert_int_equal(cls, NETADDR_LINKLOCAL);
	ss = addr("93.184.216.34");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, NULL, 0, &cls), 0);
	assert_int_equal(cls, NETADDR_PUBLIC);
	ss = addr("100.64.0.1");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, NULL, 0, NULL), -1);
}

/* 0.0.0.0, multicast and broadcast stay denied even under an allow-everything range. */
static void
test_egress_never(void **state)
{
	netaddr_cidr_t allow[2];
	static const char *never[] = {"0.0.0.0", "224.0.0.1", "255.255.255.255", "::",
	    "ff02::1"};
	struct sockaddr_storage ss;
	enum netaddr_class cls;

	(void)state;
	allow[0] = cidr("0.0.0.0/0");
	allow[1] = cidr("::/0");
	for (size_t i = 0; i < SG_ARRAY_LEN(never); i++) {
		ss = addr(never[i]);
		assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 2, &cls), -1);
	}
	ss = addr("192.168.0.1");
	assert_int_equal(netaddr_egress_check((struct sockaddr *)&ss, allow, 2, &cls), 0);
}

static void
test_format(void **state)
{
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN], tiny[4];

	(void)state;
	ss = addr("127.0.0.1");
	assert_int_equal(netaddr_format((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "127.0.0.1");
	assert_int_equal(netaddr_format((struct sockaddr *)&ss, tiny, sizeof(tiny)), -1);
	assert_string_equal(tiny, "");
	ss = addr("::1");
	assert_int_equal(netaddr_format((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "::1");
	ss.ss_family = AF_UNIX;
	assert_int_equal(netaddr_format((struct sockaddr *)&ss, buf, sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_good),
		cmocka_unit_test(test_cidr_bad),
		cmocka_unit_test(test_cidr_messages),
		cmocka_unit_test(test_literal_table),
		cmocka_unit_test(test_literal_spellings_denied),
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_class_names),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_cidr_overlap),
		cmocka_unit_test(test_cidr_text),
		cmocka_unit_test(test_cidr_bounds_and_keys),
		cmocka_unit_test(test_egress_allow_list),
		cmocka_unit_test(test_egress_never),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
