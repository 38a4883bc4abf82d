/*
 * test_gitpush.c — push-ref globs (segment and cross-segment stars, containment for
 * handle narrowing), and the decision over receive-pack bodies: allowed refs, refused
 * refs and deletes, handle narrowing, shallow lines, signed pushes, the empty probe,
 * malformed and truncated bodies, any split, and the answer git reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gitpush.h"
#include "pktline.h"

#define Z40 "0000000000000000000000000000000000000000"
#define A40 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B40 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char *agent_refs[] = {"refs/heads/agent/*", "refs/tags/agent-**"};
static char *narrow_refs[] = {"refs/heads/agent/one"};

/* A body: commands (the first with capabilities), flush, then "PACK..." bytes. */
static size_t
body(char *out, size_t cap, const char *const *cmds, size_t n, const char *caps)
{
	pktline_buf_t b = {0};
	char line[512];
	size_t len;

	for (size_t i = 0; i < n; i++) {
		len = (size_t)snprintf(line, sizeof(line), "%s", cmds[i]);
		if (i == 0 && caps) {
			line[len] = '\0';
			len += 1 + (size_t)snprintf(line + len + 1, sizeof(line) - len - 1, "%s",
			    caps);
		} else
			line[len++] = '\n';
		pktline_put(&b, line, len);
	}
	pktline_put_flush(&b);
	assert_false(b.err);
	assert_true(b.len + 12 <= cap);
	memcpy(out, b.p, b.len);
	memcpy(out + b.len, "PACK\0\0\0\2\0\0\0\0", 12);
	len = b.len + 12;
	free(b.p);
	return len;
}

static bool
has(const char *a, size_t alen, const char *s)
{
	return memmem(a, alen, s, strlen(s)) != NULL;
}

static enum gitpush_verdict
decide(const gitpush_rules_t *r, const char *s, size_t len, size_t step, gitpush_t **out)
{
	gitpush_t *g = gitpush_new(r);
	enum gitpush_verdict v = GITPUSH_MORE;

	assert_non_null(g);
	for (size_t i = 0; i < len; i += step)
		v = gitpush_feed(g, s + i, len - i < step ? len - i : step);
	v = gitpush_finish(g);
	if (out)
		*out = g;
	else
		gitpush_free(g);
	return v;
}

static void
test_glob(void **state)
{
	(void)state;
	assert_true(gitpush_ref_match("refs/heads/agent/*", "refs/heads/agent/x"));
	assert_false(gitpush_ref_match("refs/heads/agent/*", "refs/heads/agent/x/y"));
	assert_false(gitpush_ref_match("refs/heads/agent/*", "refs/heads/agent"));
	assert_true(gitpush_ref_match("refs/heads/agent/**", "refs/heads/agent/x/y"));
	assert_true(gitpush_ref_match("refs/**/x", "refs/heads/a/b/x"));
	assert_true(gitpush_ref_match("refs/heads/*-wip", "refs/heads/feature-wip"));
	assert_false(gitpush_ref_match("refs/heads/*-wip", "refs/heads/a/feature-wip"));
	assert_true(gitpush_ref_match("refs/heads/main", "refs/heads/main"));
	assert_false(gitpush_ref_match("refs/heads/main", "refs/heads/main2"));
	assert_true(gitpush_ref_match("refs/heads/*", "refs/heads/*"));
}

static void
test_is_receive_pack(void **state)
{
	(void)state;
	assert_true(gitpush_is_receive_pack("/o/r.git/git-receive-pack"));
	assert_true(gitpush_is_receive_pack("/o/r/git-receive-pack?x=1"));
	assert_true(gitpush_is_receive_pack("/o/r.git/git-receive%2dpack"));
	assert_true(gitpush_is_receive_pack("/o/r.git%2Fgit-receive-pack"));
	assert_false(gitpush_is_receive_pack("/o/r.git/git-upload-pack"));
	assert_false(gitpush_is_receive_pack("/o/r.git/info/refs?service=git-receive-pack"));
	assert_false(gitpush_is_receive_pack("git-receive-pack"));
	assert_false(gitpush_is_receive_pack("/o/r.git/git-receive-pack/x"));
}

static void
test_pattern_check(void **state)
{
	(void)state;
	assert_int_equal(gitpush_pattern_check("refs/heads/agent/*"), 0);
	assert_int_equal(gitpush_pattern_check("refs/**"), 0);
	assert_int_equal(gitpush_pattern_check("heads/agent/*"), -1);
	assert_int_equal(gitpush_pattern_check("refs/heads/***"), -1);
	assert_int_equal(gitpush_pattern_check("refs/heads/a b"), -1);
	assert_int_equal(gitpush_pattern_check("refs/heads/"), -1);
	assert_int_equal(gitpush_pattern_check("refs/heads/[ab]"), -1);
	assert_int_equal(gitpush_pattern_check("refs/heads/../x"), -1);
}

static void
test_pattern_within(void **state)
{
	char *cred[] = {"refs/heads/agent/*", "refs/tags/**"};
	(void)state;

	assert_true(gitpush_pattern_within("refs/heads/agent/x", cred, 2));
	assert_true(gitpush_pattern_within("refs/heads/agent/x-*", cred, 2));
	assert_true(gitpush_pattern_within("refs/heads/agent/*", cred, 2));
	assert_true(gitpush_pattern_within("refs/tags/v*/**", cred, 2));
	assert_false(gitpush_pattern_within("refs/heads/agent/**", cred, 2));
	assert_false(gitpush_pattern_within("refs/heads/*", cred, 2));
	assert_false(gitpush_pattern_within("refs/heads/main", cred, 2));
}

static void
test_allowed_push_any_split(void **state)
{
	const char *cmds[] = {Z40 " " A40 " refs/heads/agent/x",
	    A40 " " B40 " refs/tags/agent-1/rc"};
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	char s[1024];
	size_t len = body(s, sizeof(s), cmds, 2, "report-status side-band-64k");
	(void)state;

	for (size_t step = 1; step <= len; step++)
		assert_int_equal(decide(&r, s, len, step, NULL), GITPUSH_ALLOW);
}

static void
test_decided_at_flush(void **state)
{
	const char *cmds[] = {Z40 " " A40 " refs/heads/main"};
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	char s[1024];
	size_t len = body(s, sizeof(s), cmds, 1, "report-status");
	gitpush_t *g = gitpush_new(&r);
	(void)state;

	/* all but the flush: undecided; the flush decides before any pack byte */
	assert_int_equal(gitpush_feed(g, s, len - 16), GITPUSH_MORE);
	assert_int_equal(gitpush_feed(g, s + len - 16, 4), GITPUSH_REFUSE);
	assert_int_equal(gitpush_feed(g, s + len - 12, 12), GITPUSH_REFUSE);
	gitpush_free(g);
}

static void
test_refused_ref_answer(void **state)
{
	const char *cmds[] = {A40 " " B40 " refs/heads/agent/x", A40 " " B40 " refs/heads/main"};
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	char s[1024], sum[256];
	size_t len = body(s, sizeof(s), cmds, 2, "report-status side-band-64k quiet"), alen;
	gitpush_t *g;
	char *a;
	(void)state;

	assert_int_equal(decide(&r, s, len, 7, &g), GITPUSH_REFUSE);
	assert_true(gitpush_sideband(g));
	assert_int_equal(gitpush_ncommands(g), 2);
	gitpush_summary(g, sum, sizeof(sum));
	assert_string_equal(sum, "refs/heads/main (outside push refs)");
	a = gitpush_answer(g, &alen);
	assert_non_null(a);
	assert_true(has(a, alen, "ng refs/heads/main sealgate: refs/heads/main is "
	    "outside this credential's push refs (refs/heads/agent/*, refs/tags/agent-**)\n"));
	assert_true(has(a, alen, "ng refs/heads/agent/x sealgate: another ref"));
	assert_true(has(a, alen, "\002sealgate: refs/heads/main is outside"));
	assert_memory_equal(a + alen - 4, "0000", 4);
	free(a);
	gitpush_free(g);
}

static void
test_delete(void **state)
{
	const char *cmds[] = {A40 " " Z40 " refs/heads/agent/x"};
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	char s[1024], sum[256];
	size_t len = body(s, sizeof(s), cmds, 1, "report-status delete-refs");
	gitpush_t *g;
	(void)state;

	assert_int_equal(decide(&r, s, len, 5, &g), GITPUSH_REFUSE);
	gitpush_summary(g, sum, sizeof(sum));
	assert_string_equal(sum, "refs/heads/agent/x (delete not allowed)");
	gitpush_free(g);
	r.allow_delete = true;
	/* a delete-only push has no pack after the flush */
	assert_int_equal(decide(&r, s, len - 12, 5, NULL), GITPUSH_ALLOW);
}

static void
test_handle_narrows(void **state)
{
	const char *one[] = {Z40 " " A40 " refs/heads/agent/one"};
	const char *two[] = {Z40 " " A40 " refs/heads/agent/two"};
	gitpush_rules_t r = {agent_refs, 2, narrow_refs, 1, false};
	char s[1024], sum[256];
	size_t len = body(s, sizeof(s), one, 1, "report-status");
	gitpush_t *g;
	size_t alen;
	char *a;
	(void)state;

	assert_int_equal(decide(&r, s, len, 3, NULL), GITPUSH_ALLOW);
	len = body(s, sizeof(s), two, 1, "report-status");
	assert_int_equal(decide(&r, s, len, 3, &g), GITPUSH_REFUSE);
	gitpush_summary(g, sum, sizeof(sum));
	assert_string_equal(sum, "refs/heads/agent/two (outside handle push refs)");
	a = gitpush_answer(g, &alen);
	assert_false(gitpush_sideband(g));
	assert_true(has(a, alen, "outside this handle's push refs (refs/heads/agent/one)"));
	free(a);
	gitpush_free(g);
}

static void
test_shallow_and_probe(void **state)
{
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	pktline_buf_t b = {0};
	static const char cmd[] = Z40 " " A40 " refs/heads/agent/x\0report-status";
	(void)state;

	/* git's "0000" probe before a chunked push, and an empty body */
	assert_int_equal(decide(&r, "0000", 4, 1, NULL), GITPUSH_ALLOW);
	assert_int_equal(decide(&r, "", 0, 1, NULL), GITPUSH_ALLOW);
	pktline_put(&b, "shallow " B40 "\n", 49);
	pktline_put(&b, cmd, sizeof(cmd) - 1);
	pktline_put_flush(&b);
	assert_int_equal(decide(&r, b.p, b.len, 2, NULL), GITPUSH_ALLOW);
	free(b.p);
}

static void
test_signed_push_refused(void **state)
{
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	pktline_buf_t b = {0};
	static const char cert[] = "push-cert\0report-status side-band-64k push-cert=1-abc";
	gitpush_t *g;
	size_t alen;
	char *a;
	(void)state;

	pktline_put(&b, cert, sizeof(cert) - 1);
	pktline_put(&b, "certificate version 0.1\n", 24);
	assert_int_equal(decide(&r, b.p, b.len, 4, &g), GITPUSH_REFUSE);
	a = gitpush_answer(g, &alen);
	assert_true(has(a, alen, "signed pushes (push-cert) are not supported"));
	free(a);
	gitpush_free(g);
	free(b.p);
}

static void
test_bad_bodies(void **state)
{
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	static const char trunc[] = "0044" Z40;
	gitpush_t *g;
	(void)state;

	assert_int_equal(decide(&r, "PACK\0\0\0\2", 8, 3, &g), GITPUSH_BAD);
	assert_string_equal(gitpush_error(g), "not a pkt-line stream");
	gitpush_free(g);
	assert_int_equal(decide(&r, "0009hello0000", 13, 3, &g), GITPUSH_BAD);
	assert_string_equal(gitpush_error(g), "a ref update command is malformed");
	gitpush_free(g);
	assert_int_equal(decide(&r, trunc, sizeof(trunc) - 1, 3, &g), GITPUSH_BAD);
	assert_string_equal(gitpush_error(g), "the body ended inside the ref update commands");
	gitpush_free(g);
	assert_int_equal(decide(&r, "0001", 4, 3, NULL), GITPUSH_BAD);
}

static void
test_too_many_commands(void **state)
{
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false};
	pktline_buf_t b = {0};
	char line[128];
	gitpush_t *g;
	(void)state;

	for (size_t i = 0; i <= GITPUSH_MAX_COMMANDS; i++) {
		int n = snprintf(line, sizeof(line), Z40 " " A40 " refs/heads/agent/b%zu\n", i);

		pktline_put(&b, line, (size_t)n);
	}
	pktline_put_flush(&b);
	assert_int_equal(decide(&r, b.p, b.len, 4096, &g), GITPUSH_BAD);
	assert_string_equal(gitpush_error(g), "the push updates too many refs");
	gitpush_free(g);
	free(b.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_is_receive_pack),
		cmocka_unit_test(test_pattern_check),
		cmocka_unit_test(test_pattern_within),
		cmocka_unit_test(test_allowed_push_any_split),
		cmocka_unit_test(test_decided_at_flush),
		cmocka_unit_test(test_refused_ref_answer),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_handle_narrows),
		cmocka_unit_test(test_shallow_and_probe),
		cmocka_unit_test(test_signed_push_refused),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_too_many_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
