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

#include <zlib.h>

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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, narrow_refs, 1, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, true};
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

/* --- force: updates proven fast-forwards from the pack ----------------------------- */

#define TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
/* git's ids of the commits commit_text makes (as in test_gitpack.c) */
#define ID_A "853d583bc434459632427d9e5e70c871bda21512"
#define ID_B "af33ade6bdadda882cc431202067dd22dd4dba1e"
#define ID_C "8967013661457e3b08e76c793933245bb11736dd"
#define ID_D "95ac7869e903d41bebf3c76777f399a441535354"

static void
commit_text(char *s, size_t n, const char *parent, const char *msg)
{
	snprintf(s, n, "tree " TREE "\nparent %s\nauthor t <t@e> 1700000000 +0000\n"
	    "committer t <t@e> 1700000000 +0000\n\n%s\n", parent, msg);
}

/* Append a pack object of type 1 (commit) to b. */
static void
pack_commit(pktline_buf_t *b, const char *text)
{
	size_t n = strlen(text), m = n >> 4;
	unsigned char h[4], z[1024];
	uLongf zl = sizeof(z);
	size_t k = 0;

	h[k++] = (unsigned char)(0x10 | (n & 15) | (m ? 0x80 : 0));
	while (m) {
		h[k++] = (unsigned char)((m & 0x7f) | (m >> 7 ? 0x80 : 0));
		m >>= 7;
	}
	assert_int_equal(compress2(z, &zl, (const unsigned char *)text, n, 6), Z_OK);
	memcpy(b->p + b->len, h, k);
	b->len += k;
	memcpy(b->p + b->len, z, zl);
	b->len += zl;
}

/* A body: one update command (with caps, optional push options), then a pack of the
 * given commits and a 20-byte checksum. */
static void
force_body(pktline_buf_t *b, const char *cmd, const char *caps, bool options,
    const char *const *commits, size_t n)
{
	char line[512];
	size_t len = (size_t)snprintf(line, sizeof(line), "%s", cmd);
	unsigned char hdr[12] = {'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, (unsigned char)n};

	len += 1 + (size_t)snprintf(line + len + 1, sizeof(line) - len - 1, "%s", caps);
	memset(b, 0, sizeof(*b));
	pktline_put(b, line, len);
	pktline_put_flush(b);
	if (options) {
		pktline_put(b, "ci.skip\n", 8);
		pktline_put_flush(b);
	}
	b->p = realloc(b->p, b->len + 12 + n * 1024 + 20);
	memcpy(b->p + b->len, hdr, 12);
	b->len += 12;
	for (size_t i = 0; i < n; i++)
		pack_commit(b, commits[i]);
	memcpy(b->p + b->len, "CHECKSUMCHECKSUM1234", 20);
	b->len += 20;
}

struct sink {
	char buf[8192];
	size_t len;
};

static void
sink_emit(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;

	assert_true(len > 0);
	assert_true(s->len + len <= sizeof(s->buf));
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

/* Feed and forward b in pieces of step: the verdict after the body, the bytes out. */
static enum gitpush_verdict
stream(const gitpush_rules_t *r, const pktline_buf_t *b, size_t step, struct sink *out,
    gitpush_t **gout)
{
	gitpush_t *g = gitpush_new(r);
	enum gitpush_verdict v;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < b->len; i += step) {
		size_t n = b->len - i < step ? b->len - i : step;

		gitpush_feed(g, b->p + i, n);
		gitpush_release(g, b->p + i, n, sink_emit, out);
	}
	v = gitpush_finish(g);
	if (v == GITPUSH_ALLOW)
		gitpush_release_end(g, sink_emit, out);
	*gout = g;
	return v;
}

static void
test_force_fast_forward_proven(void **state)
{
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, false};
	char b[256], c[256];
	const char *commits[2] = {c, b};
	pktline_buf_t body;
	struct sink out;
	gitpush_t *g;
	(void)state;

	commit_text(b, sizeof(b), ID_A, "B");
	commit_text(c, sizeof(c), ID_B, "C");
	force_body(&body, ID_A " " ID_C " refs/heads/agent/x", "report-status", false,
	    commits, 2);
	for (size_t step = 1; step < body.len; step += step < 30 ? 1 : 61) {
		gitpush_t *h = gitpush_new(&r);

		assert_int_equal(gitpush_feed(h, body.p, body.len - 20), GITPUSH_PACK);
		gitpush_free(h);
		assert_int_equal(stream(&r, &body, step, &out, &g), GITPUSH_ALLOW);
		assert_int_equal(out.len, body.len);
		assert_memory_equal(out.buf, body.p, body.len);
		gitpush_free(g);
	}
	free(body.p);
}

static void
test_force_rewrite_refused(void **state)
{
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, false};
	char d[256], sum[256];
	const char *commits[1] = {d};
	pktline_buf_t body;
	struct sink out;
	gitpush_t *g;
	size_t alen;
	char *a;
	(void)state;

	commit_text(d, sizeof(d), ID_A, "D rewrite");
	force_body(&body, ID_C " " ID_D " refs/heads/agent/x", "report-status side-band-64k",
	    false, commits, 1);
	assert_int_equal(stream(&r, &body, 9, &out, &g), GITPUSH_REFUSE);
	/* everything but the checksum went out; the checksum never does */
	assert_int_equal(out.len, body.len - 20);
	assert_memory_equal(out.buf, body.p, out.len);
	gitpush_summary(g, sum, sizeof(sum));
	assert_string_equal(sum, "refs/heads/agent/x (not a proven fast-forward)");
	a = gitpush_answer(g, &alen);
	assert_true(has(a, alen, "ng refs/heads/agent/x sealgate: refs/heads/agent/x: not a "
	    "fast-forward of 896701366145, or not provable"));
	free(a);
	gitpush_free(g);
	/* the same push with force allowed: decided at the flush, nothing held back */
	r.allow_force = true;
	assert_int_equal(stream(&r, &body, 9, &out, &g), GITPUSH_ALLOW);
	assert_int_equal(out.len, body.len);
	gitpush_free(g);
	free(body.p);
}

static void
test_force_options_create_and_truncated(void **state)
{
	gitpush_rules_t r = {agent_refs, 2, NULL, 0, false, false};
	char b[256];
	const char *commits[1] = {b};
	pktline_buf_t body;
	struct sink out;
	gitpush_t *g;
	(void)state;

	commit_text(b, sizeof(b), ID_A, "B");
	/* push options before the pack */
	force_body(&body, ID_A " " ID_B " refs/heads/agent/x", "report-status push-options",
	    true, commits, 1);
	assert_int_equal(stream(&r, &body, 4, &out, &g), GITPUSH_ALLOW);
	assert_int_equal(out.len, body.len);
	gitpush_free(g);
	/* a pack cut short proves nothing */
	body.len -= 25;
	assert_int_equal(stream(&r, &body, 4, &out, &g), GITPUSH_REFUSE);
	gitpush_free(g);
	free(body.p);
	/* a create needs no proof */
	force_body(&body, Z40 " " ID_B " refs/heads/agent/new", "report-status", false,
	    commits, 1);
	assert_int_equal(stream(&r, &body, 4, &out, &g), GITPUSH_ALLOW);
	assert_int_equal(out.len, body.len);
	gitpush_free(g);
	free(body.p);
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
		cmocka_unit_test(test_force_fast_forward_proven),
		cmocka_unit_test(test_force_rewrite_refused),
		cmocka_unit_test(test_force_options_create_and_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
