/* test_revoke.c — revocation set: loading, each kind, iat vs ts, revoke_add, publishing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "revoke.h"

#define T0 1700000000
#define HID "0123456789abcdef0123456789abcdef"
#define HID2 "fedcba9876543210fedcba9876543210"
#define KID "a1b2c3d4"

static char tmpdir[128];

static char *
tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static void
write_text(const char *name, const char *text)
{
	FILE *f = fopen(tmp_path(name), "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static char *
read_text(const char *name)
{
	static char buf[8192];
	FILE *f = fopen(tmp_path(name), "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-revoke.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	static const char *const names[] = {"rev.json", "rev.json.lock", "bad.json",
		"new.json", "new.json.lock", "bad.json.lock"};

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(names); i++)
		unlink(tmp_path(names[i]));
	rmdir(tmpdir);
	return 0;
}

static handle_claims_t
claims(const char *hid, const char *sb, const char *cred, const char *kid, int64_t iat)
{
	handle_claims_t c;

	memset(&c, 0, sizeof(c));
	snprintf(c.hid, sizeof(c.hid), "%s", hid);
	snprintf(c.key_id, sizeof(c.key_id), "%s", kid);
	c.sb = (char *)sb;
	c.cred = (char *)cred;
	c.iat = iat;
	c.exp = iat + 900;
	return c;
}

static revoke_set_t *
load_ok(const char *json)
{
	char err[256] = "";
	revoke_set_t *rs = revoke_load_buffer("rev.json", json, strlen(json), err, sizeof(err));

	if (rs == NULL)
		fail_msg("unexpected error: %s", err);
	return rs;
}

static void
load_bad(const char *json, const char *want)
{
	char err[256] = "";

	assert_null(revoke_load_buffer("rev.json", json, strlen(json), err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
}

static const char *
check(const revoke_set_t *rs, handle_claims_t c)
{
	const char *kind = NULL;

	if (!revoke_check(rs, &c, &kind))
		return "none";
	assert_non_null(kind);
	return kind;
}

static void
test_load_good(void **state)
{
	revoke_set_t *rs;

	(void)state;
	rs = load_ok("{\"handles\": {\"" HID "\": 1}, \"sandboxes\": {\"sb-1\": 2},"
	    "\"credentials\": {\"openai\": 3, \"other\": 4}, \"keys\": {\"" KID "\": 5}}");
	assert_int_equal(revoke_count(rs), 5);
	revoke_unref(rs);
	rs = load_ok("{}");
	assert_int_equal(revoke_count(rs), 0);
	revoke_unref(rs);
	rs = load_ok("{\"handles\": {}}");
	assert_int_equal(revoke_count(rs), 0);
	revoke_unref(rs);
	/* the same id in two cases is one entry */
	rs = load_ok("{\"handles\": {\"" HID "\": 1, \"0123456789ABCDEF0123456789abcdef\": 9}}");
	assert_int_equal(revoke_count(rs), 1);
	assert_string_equal(check(rs, claims(HID, "x", "y", "00000000", T0)), "handle");
	revoke_unref(rs);
	assert_int_equal(revoke_count(NULL), 0);
}

static void
test_load_bad(void **state)
{
	(void)state;
	load_bad("{\"handles\": ", "rev.json:1:");
	load_bad("[]", "rev.json: want a JSON object");
	load_bad("{\"bogus\": {}}", "rev.json: bogus: unknown section");
	load_bad("{\"handles\": []}", "rev.json: handles: want an object");
	load_bad("{\"handles\": {\"abc\": 1}}", "rev.json: handles.abc: not a handle id");
	load_bad("{\"handles\": {\"" HID "\": \"now\"}}", "rev.json: handles." HID
	    ": want a unix time");
	load_bad("{\"keys\": {\"a1b2c3d\": 1}}", "rev.json: keys.a1b2c3d: not a key id");
	load_bad("{\"keys\": {\"" KID "\": -1}}", "rev.json: keys." KID ": want a unix time");
	load_bad("{\"sandboxes\": {\"\": 1}}", "rev.json: sandboxes.: not a name");
	load_bad("{\"credentials\": {\"a\": 1.5}}", "rev.json: credentials.a: want a unix");
	load_bad("{\"keys\": {\"" KID "\": 1, \"" KID "\": 2}}", "rev.json:1:");
}

static void
test_load_file(void **state)
{
	char err[256] = "";
	revoke_set_t *rs;

	(void)state;
	rs = revoke_load(tmp_path("missing.json"), err, sizeof(err));
	assert_non_null(rs);			/* missing file: empty set */
	assert_int_equal(revoke_count(rs), 0);
	revoke_unref(rs);
	write_text("bad.json", "{\"handles\": {\"zz\": 1}}");
	assert_null(revoke_load(tmp_path("bad.json"), err, sizeof(err)));
	assert_non_null(strstr(err, tmp_path("bad.json")));
	assert_non_null(strstr(err, ": handles.zz: "));
	write_text("rev.json", "{\"sandboxes\": {\"sb-1\": 5}}\n");
	rs = revoke_load(tmp_path("rev.json"), err, sizeof(err));
	assert_non_null(rs);
	assert_int_equal(revoke_count(rs), 1);
	revoke_unref(rs);
	assert_null(revoke_load(tmpdir, err, sizeof(err)));	/* a directory */
}

static void
test_kind_handle(void **state)
{
	revoke_set_t *rs = load_ok("{\"handles\": {\"" HID "\": 1}}");

	(void)state;
	/* absolute: iat after the ts does not matter */
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", KID, T0)), "handle");
	assert_string_equal(check(rs, claims(HID2, "sb-1", "openai", KID, T0)), "none");
	revoke_unref(rs);
}

static void
test_kind_key(void **state)
{
	revoke_set_t *rs = load_ok("{\"keys\": {\"A1B2C3D4\": 1}}");

	(void)state;
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", KID, T0)), "key");
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", "a1b2c3d5", T0)), "none");
	revoke_unref(rs);
}

static void
test_kind_sandbox_iat(void **state)
{
	revoke_set_t *rs = load_ok("{\"sandboxes\": {\"sb-1\": 1700000000}}");

	(void)state;
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", KID, T0 - 60)), "sandbox");
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", KID, T0)), "sandbox");
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", KID, T0 + 1)), "none");
	assert_string_equal(check(rs, claims(HID, "sb-2", "openai", KID, T0 - 60)), "none");
	revoke_unref(rs);
}

static void
test_kind_credential_iat(void **state)
{
	revoke_set_t *rs = load_ok("{\"credentials\": {\"openai\": 1700000000}}");

	(void)state;
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", KID, T0)), "credential");
	assert_string_equal(check(rs, claims(HID, "sb-1", "openai", KID, T0 + 1)), "none");
	assert_string_equal(check(rs, claims(HID, "sb-1", "github", KID, T0 - 9)), "none");
	revoke_unref(rs);
}

static void
test_check_null_set(void **state)
{
	handle_claims_t c = claims(HID, "sb-1", "openai", KID, T0);

	(void)state;
	assert_int_equal(revoke_check(NULL, &c, NULL), 0);
}

static void
test_many_entries(void **state)
{
	size_t n = 100000, cap = n * 48 + 64, off = 0;
	char *json = malloc(cap), hid[33];
	revoke_set_t *rs;

	(void)state;
	off += (size_t)snprintf(json + off, cap - off, "{\"handles\": {");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(json + off, cap - off, "%s\"%032zx\": %zu",
		    i ? "," : "", i * 7, i);
	snprintf(json + off, cap - off, "}}");
	rs = load_ok(json);
	assert_int_equal(revoke_count(rs), n);
	for (size_t i = 0; i < 1000; i++) {
		snprintf(hid, sizeof(hid), "%032zx", i);
		assert_string_equal(check(rs, claims(hid, "s", "c", KID, T0)),
		    i % 7 == 0 ? "handle" : "none");
	}
	revoke_unref(rs);
	free(json);
}

static void
test_value_valid(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(revoke_value_valid("handle", HID, err, sizeof(err)), 0);
	assert_int_equal(revoke_value_valid("handle", "0123456789ABCDEF0123456789ABCDEF", err,
	    sizeof(err)), 0);
	assert_int_equal(revoke_value_valid("handle", "xyz", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "32 hex"));
	assert_int_equal(revoke_value_valid("key", KID, err, sizeof(err)), 0);
	assert_int_equal(revoke_value_valid("key", HID, err, sizeof(err)), -1);
	assert_int_equal(revoke_value_valid("sandbox", "sb-1", err, sizeof(err)), 0);
	assert_int_equal(revoke_value_valid("sandbox", "", err, sizeof(err)), -1);
	assert_int_equal(revoke_value_valid("credential", "a\nb", err, sizeof(err)), -1);
	assert_int_equal(revoke_value_valid("bogus", "x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown revocation kind"));
}

static void
test_add_creates_0600(void **state)
{
	char err[256] = "", *text;
	revoke_set_t *rs;
	struct stat st;

	(void)state;
	unlink(tmp_path("new.json"));
	assert_int_equal(revoke_add(tmp_path("new.json"), "handle", HID, T0, err, sizeof(err)),
	    0);
	assert_int_equal(stat(tmp_path("new.json"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	text = read_text("new.json");
	assert_non_null(strstr(text, "\"handles\""));
	assert_non_null(strstr(text, "\"" HID "\": 1700000000"));
	assert_int_equal(text[strlen(text) - 1], '\n');
	rs = revoke_load(tmp_path("new.json"), err, sizeof(err));
	assert_non_null(rs);
	assert_string_equal(check(rs, claims(HID, "sb", "c", KID, T0)), "handle");
	revoke_unref(rs);
}

static void
test_add_idempotent(void **state)
{
	char err[256] = "", before[8192];
	revoke_set_t *rs;

	(void)state;
	write_text("rev.json", "{\"sandboxes\": {\"sb-9\": 10}}");
	assert_int_equal(revoke_add(tmp_path("rev.json"), "key", "A1B2C3D4", T0, err,
	    sizeof(err)), 0);
	snprintf(before, sizeof(before), "%s", read_text("rev.json"));
	assert_non_null(strstr(before, "\"" KID "\""));	/* stored lower-case */
	assert_non_null(strstr(before, "\"sb-9\": 10"));	/* others kept */
	/* again, later: absolute kinds do not change */
	assert_int_equal(revoke_add(tmp_path("rev.json"), "key", KID, T0 + 50, err,
	    sizeof(err)), 1);
	assert_string_equal(read_text("rev.json"), before);
	/* sandbox: same time is a no-op, a later time moves ts forward */
	assert_int_equal(revoke_add(tmp_path("rev.json"), "sandbox", "sb-1", T0, err,
	    sizeof(err)), 0);
	snprintf(before, sizeof(before), "%s", read_text("rev.json"));
	assert_int_equal(revoke_add(tmp_path("rev.json"), "sandbox", "sb-1", T0, err,
	    sizeof(err)), 1);
	assert_string_equal(read_text("rev.json"), before);
	assert_int_equal(revoke_add(tmp_path("rev.json"), "sandbox", "sb-1", T0 + 100, err,
	    sizeof(err)), 0);
	rs = revoke_load(tmp_path("rev.json"), err, sizeof(err));
	assert_non_null(rs);
	assert_string_equal(check(rs, claims(HID, "sb-1", "c", "00000000", T0 + 50)),
	    "sandbox");
	assert_string_equal(check(rs, claims(HID, "sb-1", "c", "00000000", T0 + 101)), "none");
	assert_string_equal(check(rs, claims(HID, "sb-9", "c", "00000000", 10)), "sandbox");
	assert_int_equal(revoke_count(rs), 3);
	revoke_unref(rs);
}

static void
test_add_refusals(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(revoke_add(tmp_path("rev.json"), "handle", "xyz", T0, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "32 hex"));
	assert_int_equal(revoke_add(tmp_path("rev.json"), "tenant", "x", T0, err,
	    sizeof(err)), -1);
	assert_int_equal(revoke_add(tmp_path("rev.json"), "sandbox", "x", -5, err,
	    sizeof(err)), -1);
	/* a malformed file is left alone */
	write_text("bad.json", "{\"handles\": 5}");
	assert_int_equal(revoke_add(tmp_path("bad.json"), "sandbox", "x", T0, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "bad.json: handles: want an object"));
	assert_string_equal(read_text("bad.json"), "{\"handles\": 5}");
	/* a folder that does not exist */
	assert_int_equal(revoke_add("/nonexistent-sg/rev.json", "sandbox", "x", T0, err,
	    sizeof(err)), -1);
}

static void
test_refs_and_publish(void **state)
{
	revoke_set_t *rs = load_ok("{\"keys\": {\"" KID "\": 1}}"), *got, *rs2;

	(void)state;
	assert_null(revoke_acquire());
	assert_ptr_equal(revoke_ref(rs), rs);
	revoke_unref(rs);			/* back to 1 */
	revoke_publish(rs);			/* takes our reference */
	got = revoke_acquire();
	assert_ptr_equal(got, rs);
	rs2 = load_ok("{}");
	revoke_publish(rs2);			/* rs lives on through got */
	assert_int_equal(revoke_count(got), 1);
	revoke_unref(got);			/* freed here */
	got = revoke_acquire();
	assert_ptr_equal(got, rs2);
	revoke_unref(got);
	revoke_shutdown();
	assert_null(revoke_acquire());
	assert_null(revoke_ref(NULL));
	revoke_unref(NULL);
}

/* --- records: reconcile set logic -------------------------------------------------------- */

struct diff_seen {
	char text[8][80];
	size_t n;
};

static int
diff_collect(const revoke_record_t *r, void *arg)
{
	struct diff_seen *d = arg;

	if (d->n == 8)
		return -1;
	snprintf(d->text[d->n++], sizeof(d->text[0]), "%s:%s@%lld", r->kind, r->value,
	    (long long)r->ts);
	return 0;
}

static revoke_set_t *
records_ok(const revoke_record_t *r, size_t n)
{
	char err[256] = "";
	revoke_set_t *rs = revoke_from_records(r, n, err, sizeof(err));

	if (rs == NULL)
		fail_msg("unexpected error: %s", err);
	return rs;
}

static void
test_from_records(void **state)
{
	static const revoke_record_t recs[] = {
		{"handle", "0123456789ABCDEF0123456789ABCDEF", 5},	/* stored lower-case */
		{"sandbox", "sb-1", T0},
		{"sandbox", "sb-1", T0 + 9},		/* repeat: the latest ts stays */
		{"key", KID, 1},
	};
	static const revoke_record_t bad[] = {{"sandbox", "", 1}};
	static const revoke_record_t neg[] = {{"handle", HID, -1}};
	revoke_set_t *rs = records_ok(recs, SG_ARRAY_LEN(recs));
	char err[256];

	(void)state;
	assert_int_equal(revoke_count(rs), 3);
	assert_string_equal(check(rs, claims(HID, "x", "y", "00000000", T0)), "handle");
	assert_string_equal(check(rs, claims(HID2, "sb-1", "y", "00000000", T0 + 9)),
	    "sandbox");
	assert_string_equal(check(rs, claims(HID2, "sb-1", "y", "00000000", T0 + 10)), "none");
	revoke_unref(rs);
	assert_null(revoke_from_records(bad, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "bad sandbox"));
	assert_null(revoke_from_records(neg, 1, err, sizeof(err)));
	rs = records_ok(NULL, 0);
	assert_int_equal(revoke_count(rs), 0);
	revoke_unref(rs);
}

/* Reconcile: what local has beyond remote (pushed) and remote beyond local (applied). */
static void
test_diff_both_ways(void **state)
{
	static const revoke_record_t local[] = {
		{"handle", HID, 10},		/* only local */
		{"sandbox", "sb-1", 200},	/* newer locally */
		{"credential", "c", 50},	/* older locally */
		{"key", KID, 7},		/* both, different ts: absolute, no difference */
	};
	static const revoke_record_t remote[] = {
		{"handle", HID2, 11},		/* only remote */
		{"sandbox", "sb-1", 100},
		{"credential", "c", 60},
		{"key", KID, 99},
	};
	revoke_set_t *l = records_ok(local, SG_ARRAY_LEN(local));
	revoke_set_t *r = records_ok(remote, SG_ARRAY_LEN(remote));
	struct diff_seen push = {0}, apply = {0}, all = {0}, none = {0};

	(void)state;
	assert_int_equal(revoke_diff(l, r, diff_collect, &push), 2);
	assert_string_equal(push.text[0], "handle:" HID "@10");
	assert_string_equal(push.text[1], "sandbox:sb-1@200");
	assert_int_equal(revoke_diff(r, l, diff_collect, &apply), 2);
	assert_string_equal(apply.text[0], "handle:" HID2 "@11");
	assert_string_equal(apply.text[1], "credential:c@60");
	/* against nothing (a Redis restarted empty): everything */
	assert_int_equal(revoke_diff(l, NULL, diff_collect, &all), 4);
	assert_int_equal(revoke_diff(l, l, diff_collect, &none), 0);
	assert_int_equal(revoke_diff(NULL, l, diff_collect, &none), 0);
	/* a failing callback stops the walk */
	push.n = 8;
	assert_int_equal(revoke_diff(l, r, diff_collect, &push), -1);
	revoke_unref(l);
	revoke_unref(r);
}

static void
test_add_records(void **state)
{
	static const revoke_record_t recs[] = {
		{"handle", HID, T0},
		{"sandbox", "sb-1", T0 + 5},
		{"key", "A1B2C3D4", T0},
	};
	static const revoke_record_t again[] = {
		{"handle", HID, T0 + 100},	/* absolute: unchanged */
		{"sandbox", "sb-1", T0 + 1},	/* older: unchanged */
		{"sandbox", "sb-1", T0 + 9},	/* newer: moves */
	};
	static const revoke_record_t bad[] = {{"handle", HID2, T0}, {"handle", "zz", T0}};
	char err[256];
	revoke_set_t *rs;
	const char *text;

	(void)state;
	unlink(tmp_path("new.json"));
	assert_int_equal(revoke_add_records(tmp_path("new.json"), recs, 3, err, sizeof(err)),
	    3);
	assert_int_equal(revoke_add_records(tmp_path("new.json"), recs, 3, err, sizeof(err)),
	    0);
	assert_int_equal(revoke_add_records(tmp_path("new.json"), again, 3, err, sizeof(err)),
	    1);
	/* one bad record: nothing written */
	assert_int_equal(revoke_add_records(tmp_path("new.json"), bad, 2, err, sizeof(err)),
	    -1);
	text = read_text("new.json");
	assert_null(strstr(text, HID2));
	assert_non_null(strstr(text, "a1b2c3d4"));
	rs = revoke_load(tmp_path("new.json"), err, sizeof(err));
	assert_non_null(rs);
	assert_int_equal(revoke_count(rs), 3);
	assert_string_equal(check(rs, claims(HID2, "sb-1", "y", "00000000", T0 + 9)),
	    "sandbox");
	assert_string_equal(check(rs, claims(HID2, "sb-1", "y", "00000000", T0 + 10)), "none");
	revoke_unref(rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_good),
		cmocka_unit_test(test_load_bad),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_kind_handle),
		cmocka_unit_test(test_kind_key),
		cmocka_unit_test(test_kind_sandbox_iat),
		cmocka_unit_test(test_kind_credential_iat),
		cmocka_unit_test(test_check_null_set),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_value_valid),
		cmocka_unit_test(test_add_creates_0600),
		cmocka_unit_test(test_add_idempotent),
		cmocka_unit_test(test_add_refusals),
		cmocka_unit_test(test_refs_and_publish),
		cmocka_unit_test(test_from_records),
		cmocka_unit_test(test_diff_both_ways),
		cmocka_unit_test(test_add_records),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
