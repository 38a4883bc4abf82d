/* test_clustermsg.c — fleet mode names, revocation records in Redis, config strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "clustermsg.h"

#define HID "0123456789abcdef0123456789abcdef"

static void
test_key_names(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(clustermsg_revocations_key("sg:", out, sizeof(out)), 0);
	assert_string_equal(out, "sg:revocations");
	assert_int_equal(clustermsg_revocations_channel("fleet-1.", out, sizeof(out)), 0);
	assert_string_equal(out, "fleet-1.revocations:events");
	/* no room: -1 and "" */
	assert_int_equal(clustermsg_revocations_key("sg:", out, 8), -1);
	assert_string_equal(out, "");
	/* a prefix with a space or a glob character would break keys: refused */
	assert_int_equal(clustermsg_revocations_key("s g", out, sizeof(out)), -1);
	assert_int_equal(clustermsg_revocations_channel("sg*", out, sizeof(out)), -1);
	assert_int_equal(clustermsg_revocations_key("", out, sizeof(out)), -1);
}

static void
test_field_round_trip(void **state)
{
	revoke_record_t r = {"sandbox", "sb 1:with colon", 1700000000};
	char field[CLUSTERMSG_MAX_RECORD], ts[32];
	clustermsg_rec_t d;

	(void)state;
	assert_int_equal(clustermsg_field_encode(&r, field, sizeof(field), ts, sizeof(ts)), 0);
	assert_string_equal(field, "sandbox:sb 1:with colon");
	assert_string_equal(ts, "1700000000");
	assert_int_equal(clustermsg_field_decode(field, strlen(field), ts, strlen(ts), &d), 0);
	assert_string_equal(d.rec.kind, "sandbox");
	assert_string_equal(d.rec.value, "sb 1:with colon");
	assert_int_equal(d.rec.ts, 1700000000);
	assert_string_equal(d.node, "");
}

static void
test_field_decode_lowercases_hex(void **state)
{
	const char *f = "handle:0123456789ABCDEF0123456789abcdef";
	clustermsg_rec_t d;

	(void)state;
	assert_int_equal(clustermsg_field_decode(f, strlen(f), "5", 1, &d), 0);
	assert_string_equal(d.rec.value, HID);
	assert_ptr_equal(d.rec.value, d.value);
	assert_int_equal(clustermsg_field_decode("key:A1B2C3D4", 12, "0", 1, &d), 0);
	assert_string_equal(d.rec.value, "a1b2c3d4");
}

static void
test_field_decode_refusals(void **state)
{
	static const struct { const char *field, *ts; } bad[] = {
		{"handle:0123", "1"},			/* short handle id */
		{"handle:" HID, "-1"},			/* negative */
		{"handle:" HID, "1x"},			/* junk */
		{"handle:" HID, ""},			/* empty ts */
		{"handle:" HID, "999999999999999"},	/* past year 9999 */
		{"door:x", "1"},			/* unknown kind */
		{"sandbox", "1"},			/* no colon */
		{"sandbox:", "1"},			/* empty name */
		{"sandbox:a\tb", "1"},			/* control character */
		{":x", "1"},
	};
	clustermsg_rec_t d;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++)
		if (clustermsg_field_decode(bad[i].field, strlen(bad[i].field), bad[i].ts,
		    strlen(bad[i].ts), &d) != -1)
			fail_msg("accepted %s = %s", bad[i].field, bad[i].ts);
	/* an embedded NUL is not hidden by a C string */
	assert_int_equal(clustermsg_field_decode("sandbox:a\0b", 11, "1", 1, &d), -1);
}

static void
test_msg_round_trip(void **state)
{
	revoke_record_t r = {"credential", "open ai", 42};
	char msg[CLUSTERMSG_MAX_RECORD];
	clustermsg_rec_t d;

	(void)state;
	assert_int_equal(clustermsg_msg_encode("host-a", &r, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "sgr1 host-a 42 credential:open ai");
	assert_int_equal(clustermsg_msg_decode(msg, strlen(msg), &d), 0);
	assert_string_equal(d.node, "host-a");
	assert_string_equal(d.rec.kind, "credential");
	assert_string_equal(d.rec.value, "open ai");
	assert_int_equal(d.rec.ts, 42);
	/* no room: -1 and "" */
	assert_int_equal(clustermsg_msg_encode("host-a", &r, msg, 12), -1);
	assert_string_equal(msg, "");
	/* bad node or record: nothing encoded */
	assert_int_equal(clustermsg_msg_encode("a b", &r, msg, sizeof(msg)), -1);
	r.ts = -5;
	assert_int_equal(clustermsg_msg_encode("a", &r, msg, sizeof(msg)), -1);
}

static void
test_msg_decode_refusals(void **state)
{
	static const char *const bad[] = {
		"",
		"sgr1",
		"sgr2 a 1 handle:" HID,			/* another version */
		"sgr1  1 handle:" HID,			/* empty node */
		"sgr1 a:b 1 handle:" HID,		/* bad node */
		"sgr1 a x handle:" HID,			/* bad ts */
		"sgr1 a 1",				/* no record */
		"sgr1 a 1 handle:nothex",
		"SGR1 a 1 handle:" HID,
	};
	clustermsg_rec_t d;

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++)
		if (clustermsg_msg_decode(bad[i], strlen(bad[i]), &d) != -1)
			fail_msg("accepted '%s'", bad[i]);
}

static void
test_config_strings(void **state)
{
	char host[64];
	const char *path;
	int port;

	(void)state;
	assert_true(clustermsg_address_valid("127.0.0.1:6379"));
	assert_true(clustermsg_address_valid("redis.internal:1"));
	assert_true(clustermsg_address_valid("[::1]:65535"));
	assert_true(clustermsg_address_valid("unix:/run/redis/redis.sock"));
	assert_false(clustermsg_address_valid("unix:relative.sock"));
	assert_false(clustermsg_address_valid("127.0.0.1"));
	assert_false(clustermsg_address_valid("127.0.0.1:0"));
	assert_false(clustermsg_address_valid("127.0.0.1:65536"));
	assert_false(clustermsg_address_valid("::1:6379"));
	assert_false(clustermsg_address_valid(":6379"));
	assert_false(clustermsg_address_valid("a b:6379"));
	assert_false(clustermsg_address_valid("h:+1"));
	assert_int_equal(clustermsg_address_split("[::1]:7000", host, sizeof(host), &port,
	    &path), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 7000);
	assert_null(path);
	assert_int_equal(clustermsg_address_split("unix:/tmp/r.sock", host, sizeof(host),
	    &port, &path), 0);
	assert_string_equal(path, "/tmp/r.sock");
	assert_int_equal(port, 0);
	assert_true(clustermsg_node_valid("host-a.example_1"));
	assert_false(clustermsg_node_valid("host:a"));
	assert_false(clustermsg_node_valid(""));
	assert_true(clustermsg_prefix_valid("sg:"));
	assert_false(clustermsg_prefix_valid("sg*"));
	assert_true(clustermsg_user_valid("sg-node@fleet"));
	assert_false(clustermsg_user_valid("a b"));
	assert_false(clustermsg_user_valid(
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));	/* 65 */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_names),
		cmocka_unit_test(test_field_round_trip),
		cmocka_unit_test(test_field_decode_lowercases_hex),
		cmocka_unit_test(test_field_decode_refusals),
		cmocka_unit_test(test_msg_round_trip),
		cmocka_unit_test(test_msg_decode_refusals),
		cmocka_unit_test(test_config_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
