/*
 * test_nftrules.c — the transparent-interception nftables ruleset: exact text for an
 * IPv4 and an IPv6 proxy, the exclusions (proxy, metadata), and every refused input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "nftrules.h"

static void
test_v4(void **state)
{
	char out[1024], err[128];

	(void)state;
	assert_int_equal(nftrules_render("veth-sb0", "169.254.10.1:3129", out, sizeof(out),
	    err, sizeof(err)), 0);
	assert_string_equal(out,
	    "table inet sealgate {\n"
	    "\tchain prerouting {\n"
	    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
	    "\t\tiifname \"veth-sb0\" ip daddr 169.254.10.1 return\n"
	    "\t\tiifname \"veth-sb0\" ip daddr { 169.254.169.254, 169.254.170.2 } return\n"
	    "\t\tiifname \"veth-sb0\" tcp dport 443 dnat ip to 169.254.10.1:3129\n"
	    "\t}\n"
	    "}\n");
}

static void
test_v6(void **state)
{
	char out[1024], err[128];

	(void)state;
	assert_int_equal(nftrules_render("sb1", "[fd00:0::1]:3129", out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_non_null(strstr(out, "iifname \"sb1\" ip6 daddr fd00::1 return\n"));
	assert_non_null(strstr(out, "tcp dport 443 dnat ip6 to [fd00::1]:3129\n"));
	assert_null(strstr(out, "169.254.169.254"));
}

static void
test_refused(void **state)
{
	static const char *const bad_if[] = { "", "a-very-long-ifname0", "veth\"; drop",
	    "eth 0", "eth0\n" };
	static const char *const bad_proxy[] = { "169.254.10.1", "169.254.10.1:0",
	    "169.254.10.1:65536", "host.example:3129", "fd00::1:3129", "[fd00::1]", ":3129",
	    "[]:3129", "1.2.3.4:12x", "999.1.1.1:3129" };
	char out[1024], err[128];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad_if); i++) {
		assert_int_equal(nftrules_render(bad_if[i], "169.254.10.1:3129", out,
		    sizeof(out), err, sizeof(err)), -1);
		assert_non_null(strstr(err, "--sandbox-if"));
	}
	for (size_t i = 0; i < SG_ARRAY_LEN(bad_proxy); i++) {
		assert_int_equal(nftrules_render("veth0", bad_proxy[i], out, sizeof(out), err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "--proxy"));
	}
	assert_int_equal(nftrules_render("veth0", "169.254.10.1:3129", out, 40, err,
	    sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4),
		cmocka_unit_test(test_v6),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
