/* gitpush.c — the git push policy over a receive-pack body's commands (gitpush.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gitpack.h"
#include "gitpush.h"
#include "pktline.h"

#define GP_STAR		(-1)	/* '*': any run within one segment */
#define GP_DSTAR	(-2)	/* '**': any run */
#define GP_PATS_MAX	480	/* the patterns named in a reason, cut to this */
#define GP_REASON_MAX	(PKTLINE_REF_MAX + GP_PATS_MAX + 128)

typedef struct gitpush_cmd {
	char *ref;
	char *reason;		/* NULL: allowed */
	char old_oid[PKTLINE_OID_SHA256 + 1];
	char new_oid[PKTLINE_OID_SHA256 + 1];
	bool proof;		/* an update that must be proven a fast-forward */
} gitpush_cmd_t;

struct gitpush {
	const gitpush_rules_t *rules;
	pktline_t pl;
	enum gitpush_verdict verdict;
	const char *error;
	size_t bytes;		/* command-section bytes read */
	bool sideband;
	bool signed_push;	/* a push-cert: refused as a whole */
	gitpush_cmd_t *cmd;
	size_t ncmd;
	size_t nrefused, nproof;
	bool options;		/* push-options asked: a pkt-line section before the pack */
	bool in_options;	/* reading it */
	size_t oid_len;		/* of the commands: 40 or 64 */
	gitpack_t *pack;	/* GITPUSH_PACK: the walk */
	unsigned char tail[32];	/* GITPUSH_PACK: bytes held back (the checksum) */
	size_t ntail;
};

/* --- patterns ----------------------------------------------------------------------- */

/* Pattern or subject text as tokens: a byte, GP_STAR or GP_DSTAR. -1 when too long. */
static int
gitpush_tokens(const char *s, int *tok, size_t cap, size_t *n, bool globs)
{
	*n = 0;
	for (size_t i = 0; s[i]; i++) {
		if (*n == cap)
			return -1;
		if (globs && s[i] == '*' && s[i + 1] == '*') {
			tok[(*n)++] = GP_DSTAR;
			i++;
		} else if (globs && s[i] == '*')
			tok[(*n)++] = GP_STAR;
		else
			tok[(*n)++] = (unsigned char)s[i];
	}
	return 0;
}

/* May pattern token p consume subject token s (one step of a star)? */
static bool
gitpush_star_eats(int p, int s)
{
	return p == GP_DSTAR || (s != GP_DSTAR && s != '/');
}

/* Does pattern pt[0..m) match subject st[0..n)? O(n*m) time, O(m) space. */
static bool
gitpush_match_tokens(const int *pt, size_t m, const int *st, size_t n)
{
	bool prev[GITPUSH_PATTERN_MAX + 1], next[GITPUSH_PATTERN_MAX + 1];

	prev[0] = true;
	for (size_t j = 0; j < m; j++)
		prev[j + 1] = prev[j] && pt[j] < 0;
	for (size_t i = 0; i < n; i++) {
		next[0] = false;
		for (size_t j = 0; j < m; j++) {
			if (pt[j] >= 0)
				next[j + 1] = prev[j] && st[i] == pt[j];
			else
				next[j + 1] = next[j] || (prev[j + 1] &&
				    gitpush_star_eats(pt[j], st[i]));
		}
		memcpy(prev, next, (m + 1) * sizeof(bool));
	}
	return prev[m];
}

static bool
gitpush_match(const char *pattern, const char *subject, bool subject_globs)
{
	int pt[GITPUSH_PATTERN_MAX], st[PKTLINE_REF_MAX];
	size_t m, n;

	if (gitpush_tokens(pattern, pt, GITPUSH_PATTERN_MAX, &m, true) < 0 ||
	    gitpush_tokens(subject, st, PKTLINE_REF_MAX, &n, subject_globs) < 0)
		return false;
	return gitpush_match_tokens(pt, m, st, n);
}

bool
gitpush_ref_match(const char *pattern, const char *ref)
{
	return gitpush_match(pattern, ref, false);
}

bool
gitpush_pattern_within(const char *narrow, char *const *pats, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (gitpush_match(pats[i], narrow, true))
			return true;
	return false;
}

int
gitpush_pattern_check(const char *p)
{
	size_t n = strlen(p);

	if (n <= 5 || n > GITPUSH_PATTERN_MAX || strncmp(p, "refs/", 5) != 0 ||
	    strstr(p, "***") != NULL || strstr(p, "//") != NULL || strstr(p, "..") != NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch < 0x21 || ch == 0x7f || strchr("~^:?[\\", ch) != NULL)
			return -1;
	}
	return p[n - 1] == '/' ? -1 : 0;
}

bool
gitpush_is_receive_pack(const char *target)
{
	static const char tail[] = "/git-receive-pack";
	char dec[sizeof(tail)];
	size_t n = strcspn(target, "?"), k = sizeof(tail) - 1;

	/* decode backwards into dec, the last k decoded bytes of the path */
	while (n > 0 && k > 0) {
		if (n >= 3 && target[n - 3] == '%' && isxdigit((unsigned char)target[n - 2]) &&
		    isxdigit((unsigned char)target[n - 1])) {
			char hx[3] = {target[n - 2], target[n - 1], '\0'};

			dec[--k] = (char)strtol(hx, NULL, 16);
			n -= 3;
		} else
			dec[--k] = target[--n];
	}
	return k == 0 && memcmp(dec, tail, sizeof(tail) - 1) == 0;
}

/* --- the command section ------------------------------------------------------------ */

gitpush_t *
gitpush_new(const gitpush_rules_t *rules)
{
	gitpush_t *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->rules = rules;
	pktline_init(&g->pl);
	g->verdict = GITPUSH_MORE;
	return g;
}

void
gitpush_free(gitpush_t *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->ncmd; i++) {
		free(g->cmd[i].ref);
		free(g->cmd[i].reason);
	}
	free(g->cmd);
	gitpack_free(g->pack);
	free(g);
}

static enum gitpush_verdict
gitpush_bad(gitpush_t *g, const char *why)
{
	g->error = why;
	return g->verdict = GITPUSH_BAD;
}

/* "a, b, c" of the patterns, cut to fit. */
static void
gitpush_join(char *const *v, size_t n, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", v[i]);
}

static bool
gitpush_any_match(char *const *v, size_t n, const char *ref)
{
	for (size_t i = 0; i < n; i++)
		if (gitpush_ref_match(v[i], ref))
			return true;
	return false;
}

/* Why the rules refuse this command, or NULL. */
static char *
gitpush_judge(const gitpush_t *g, const pktline_command_t *c)
{
	const gitpush_rules_t *r = g->rules;
	char pats[GP_PATS_MAX], why[GP_REASON_MAX];

	if (!gitpush_any_match(r->refs, r->nrefs, c->ref)) {
		gitpush_join(r->refs, r->nrefs, pats, sizeof(pats));
		snprintf(why, sizeof(why), "sealgate: %s is outside this credential's push "
		    "refs (%s)", c->ref, pats);
	} else if (r->nnarrow > 0 && !gitpush_any_match(r->narrow, r->nnarrow, c->ref)) {
		gitpush_join(r->narrow, r->nnarrow, pats, sizeof(pats));
		snprintf(why, sizeof(why), "sealgate: %s is outside this handle's push refs "
		    "(%s)", c->ref, pats);
	} else if (pktline_oid_is_zero(c->new_oid) && !r->allow_delete)
		snprintf(why, sizeof(why), "sealgate: deleting %s is not allowed "
		    "(git.push.delete is false)", c->ref);
	else
		return NULL;
	return strdup(why);
}

static enum gitpush_verdict
gitpush_command(gitpush_t *g, const pktline_pkt_t *pkt)
{
	pktline_command_t c;
	gitpush_cmd_t *v;

	if (pktline_command_parse(pkt->data, pkt->len, g->ncmd == 0, &c) < 0)
		return gitpush_bad(g, "a ref update command is malformed");
	if (g->ncmd == GITPUSH_MAX_COMMANDS)
		return gitpush_bad(g, "the push updates too many refs");
	if (g->ncmd == 0) {
		g->sideband = pktline_caps_has(c.caps, c.caps_len, "side-band-64k");
		g->options = pktline_caps_has(c.caps, c.caps_len, "push-options");
		g->oid_len = c.oid_len;
	} else if (c.oid_len != g->oid_len)
		return gitpush_bad(g, "the commands mix object id lengths");
	if ((v = realloc(g->cmd, (g->ncmd + 1) * sizeof(*v))) == NULL)
		return gitpush_bad(g, "out of memory");
	g->cmd = v;
	v[g->ncmd].reason = gitpush_judge(g, &c);
	if ((v[g->ncmd].ref = strdup(c.ref)) == NULL) {
		free(v[g->ncmd].reason);
		return gitpush_bad(g, "out of memory");
	}
	memcpy(v[g->ncmd].old_oid, c.old_oid, sizeof(c.old_oid));
	memcpy(v[g->ncmd].new_oid, c.new_oid, sizeof(c.new_oid));
	v[g->ncmd].proof = v[g->ncmd].reason == NULL && !g->rules->allow_force &&
	    !pktline_oid_is_zero(c.old_oid) && !pktline_oid_is_zero(c.new_oid);
	g->nrefused += v[g->ncmd].reason != NULL;
	g->nproof += v[g->ncmd].proof;
	g->ncmd++;
	return GITPUSH_MORE;
}

/* The commands (and push options) are read: refuse, allow, or walk the pack. */
static enum gitpush_verdict
gitpush_commands_done(gitpush_t *g)
{
	if (g->nrefused > 0)
		return g->verdict = GITPUSH_REFUSE;
	if (g->nproof == 0)
		return g->verdict = GITPUSH_ALLOW;
	if ((g->pack = gitpack_new(g->oid_len / 2)) == NULL)
		return gitpush_bad(g, "out of memory");
	return g->verdict = GITPUSH_PACK;
}

/* One packet of the command section. */
static enum gitpush_verdict
gitpush_packet(gitpush_t *g, const pktline_pkt_t *pkt)
{
	if (g->in_options)
		return pkt->kind == PKTLINE_FLUSH ? gitpush_commands_done(g) : GITPUSH_MORE;
	if (pkt->kind == PKTLINE_FLUSH && g->options && g->ncmd > 0 && g->nrefused == 0) {
		g->in_options = true;
		return GITPUSH_MORE;
	}
	if (pkt->kind == PKTLINE_FLUSH)
		return g->signed_push ? (g->verdict = GITPUSH_REFUSE) :
		    g->ncmd == 0 ? (g->verdict = GITPUSH_ALLOW) : gitpush_commands_done(g);
	if (pkt->kind != PKTLINE_DATA)
		return gitpush_bad(g, "unexpected special packet among the commands");
	if (g->ncmd == 0 && pkt->len >= 8 && memcmp(pkt->data, "shallow ", 8) == 0)
		return GITPUSH_MORE;
	if (g->ncmd == 0 && pkt->len >= 9 && memcmp(pkt->data, "push-cert", 9) == 0 &&
	    (pkt->len == 9 || pkt->data[9] == '\0' || pkt->data[9] == '\n')) {
		g->signed_push = true;
		g->sideband = pktline_caps_has(pkt->len > 10 ? pkt->data + 10 : NULL,
		    pkt->len > 10 ? pkt->len - 10 : 0, "side-band-64k");
		return g->verdict = GITPUSH_REFUSE;
	}
	return gitpush_command(g, pkt);
}

enum gitpush_verdict
gitpush_feed(gitpush_t *g, const void *data, size_t len)
{
	const char *p = data;
	pktline_pkt_t pkt;
	size_t used;

	if (g->verdict == GITPUSH_PACK) {
		gitpack_feed(g->pack, data, len);	/* a failure: not proven at the end */
		return g->verdict;
	}
	while (g->verdict == GITPUSH_MORE && len > 0) {
		enum pktline_ev ev = pktline_next(&g->pl, p, len, &used, &pkt);

		p += used;
		len -= used;
		if ((g->bytes += used) > GITPUSH_MAX_COMMAND_BYTES)
			return gitpush_bad(g, "the push's command section is too large");
		if (ev == PKTLINE_EV_ERROR)
			return gitpush_bad(g, "not a pkt-line stream");
		if (ev == PKTLINE_EV_PACKET && gitpush_packet(g, &pkt) == GITPUSH_PACK &&
		    len > 0)
			gitpack_feed(g->pack, p, len);
	}
	return g->verdict;
}

/* The body ended under GITPUSH_PACK: is every update proven a fast-forward? */
static enum gitpush_verdict
gitpush_prove(gitpush_t *g)
{
	bool whole = gitpack_complete(g->pack);
	char why[GP_REASON_MAX];

	for (size_t i = 0; i < g->ncmd; i++) {
		gitpush_cmd_t *c = &g->cmd[i];

		if (!c->proof || (whole && gitpack_reaches(g->pack, c->new_oid, c->old_oid)))
			continue;
		snprintf(why, sizeof(why), "sealgate: %s: not a fast-forward of %.12s, or not "
		    "provable from the pushed commits (git.push.force is false)", c->ref,
		    c->old_oid);
		if ((c->reason = strdup(why)) == NULL)
			return gitpush_bad(g, "out of memory");
		g->nrefused++;
	}
	return g->verdict = g->nrefused > 0 ? GITPUSH_REFUSE : GITPUSH_ALLOW;
}

enum gitpush_verdict
gitpush_finish(gitpush_t *g)
{
	if (g->verdict == GITPUSH_PACK)
		return gitpush_prove(g);
	if (g->verdict != GITPUSH_MORE)
		return g->verdict;
	if (g->bytes == 0)
		return g->verdict = GITPUSH_ALLOW;	/* an empty body updates nothing */
	return gitpush_bad(g, "the body ended inside the ref update commands");
}

const char *
gitpush_error(const gitpush_t *g)
{
	return g->error ? g->error : "no error";
}

size_t
gitpush_ncommands(const gitpush_t *g)
{
	return g->ncmd;
}

bool
gitpush_sideband(const gitpush_t *g)
{
	return g->sideband;
}

/* --- forwarding with the checksum held back ---------------------------------------- */

void
gitpush_release(gitpush_t *g, const void *data, size_t len, gitpush_emit_fn emit, void *arg)
{
	const unsigned char *s = data;
	size_t keep = g->pack ? g->oid_len / 2 : 0, total = g->ntail + len, out, from_tail;

	if (g->verdict != GITPUSH_PACK && g->ntail == 0) {
		if (len > 0)
			emit(arg, data, len);
		return;
	}
	out = total > keep ? total - keep : 0;
	from_tail = out < g->ntail ? out : g->ntail;
	if (from_tail > 0)
		emit(arg, g->tail, from_tail);
	memmove(g->tail, g->tail + from_tail, g->ntail - from_tail);
	g->ntail -= from_tail;
	if (out > from_tail)
		emit(arg, s, out - from_tail);
	s += out - from_tail;
	len -= out - from_tail;
	memcpy(g->tail + g->ntail, s, len);
	g->ntail += len;
}

void
gitpush_release_end(gitpush_t *g, gitpush_emit_fn emit, void *arg)
{
	if (g->verdict == GITPUSH_ALLOW && g->ntail > 0)
		emit(arg, g->tail, g->ntail);
	g->ntail = 0;
}

/* --- the answer --------------------------------------------------------------------- */

static const char gitpush_signed_reason[] = "sealgate: signed pushes (push-cert) are not "
    "supported through sealgate";
static const char gitpush_other_reason[] = "sealgate: another ref of this push is refused";

static const char *
gitpush_first_reason(const gitpush_t *g)
{
	for (size_t i = 0; i < g->ncmd; i++)
		if (g->cmd[i].reason)
			return g->cmd[i].reason;
	return gitpush_signed_reason;
}

char *
gitpush_answer(const gitpush_t *g, size_t *len)
{
	pktline_status_t *st = calloc(g->ncmd + 1, sizeof(*st));
	char msg[GP_REASON_MAX + 2], *out;

	if (st == NULL)
		return NULL;
	for (size_t i = 0; i < g->ncmd; i++) {
		st[i].ref = g->cmd[i].ref;
		st[i].reason = g->cmd[i].reason ? g->cmd[i].reason : gitpush_other_reason;
	}
	snprintf(msg, sizeof(msg), "%s\n", gitpush_first_reason(g));
	out = pktline_report_status(st, g->ncmd, g->sideband, msg, len);
	free(st);
	return out;
}

void
gitpush_summary(const gitpush_t *g, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	if (g->signed_push) {
		snprintf(out, len, "signed push (push-cert) refused");
		return;
	}
	for (size_t i = 0; i < g->ncmd && o < len; i++) {
		const char *r = g->cmd[i].reason;
		const char *why = r == NULL ? NULL : strstr(r, "outside this handle") ?
		    "outside handle push refs" : strstr(r, "outside") ? "outside push refs" :
		    strstr(r, "fast-forward") ? "not a proven fast-forward" :
		    "delete not allowed";

		if (why != NULL)
			o += (size_t)snprintf(out + o, len - o, "%s%s (%s)", o ? ", " : "",
			    g->cmd[i].ref, why);
	}
}
