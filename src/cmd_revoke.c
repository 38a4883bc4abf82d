/* cmd_revoke.c — sealgate revoke: add a revocation to the policy's revocations.file. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "policy.h"
#include "revoke.h"

static const char revoke_usage[] = "sealgate revoke --policy PATH (--handle-id HID | "
    "--sandbox NAME | --credential NAME | --key KEYID) [--json]";

struct revoke_args {
	const char *policy;
	const char *kind;		/* "handle" | "sandbox" | "credential" | "key" */
	const char *value;
	int json;
};

/* Options naming what to revoke, and the kind each stands for. */
static const struct {
	const char *opt, *kind;
} revoke_opts[] = {
	{"--handle-id", "handle"},
	{"--sandbox", "sandbox"},
	{"--credential", "credential"},
	{"--key", "key"},
};

static int
revoke_usage_err(const char *cmd, const char *what, const char *arg)
{
	fprintf(stderr, "sealgate %s: %s%s%s\nusage: %s\n", cmd, what, arg ? " " : "",
	    arg ? arg : "", revoke_usage);
	return CLI_USAGE;
}

static int
revoke_fail(const char *cmd, const char *msg)
{
	fprintf(stderr, "sealgate %s: %s\n", cmd, msg);
	return CLI_FAIL;
}

/* One of the kind options at argv[*i]: 1 taken, 0 not one, or a CLI exit code < 0. */
static int
revoke_parse_kind(int argc, char **argv, int *i, struct revoke_args *a)
{
	const char *val;
	int m;

	for (size_t k = 0; k < SG_ARRAY_LEN(revoke_opts); k++) {
		if ((m = cli_opt(argc, argv, i, revoke_opts[k].opt, &val)) == 0)
			continue;
		if (m < 0)
			return -revoke_usage_err(argv[0], "missing value for", revoke_opts[k].opt);
		if (a->kind != NULL)
			return -revoke_usage_err(argv[0], "name one thing to revoke, not",
			    "two");
		a->kind = revoke_opts[k].kind;
		a->value = val;
		return 1;
	}
	return 0;
}

static int
revoke_parse_args(int argc, char **argv, struct revoke_args *a)
{
	int m;

	for (int i = 1; i < argc; i++) {
		if ((m = cli_opt(argc, argv, &i, "--policy", &a->policy)) < 0)
			return revoke_usage_err(argv[0], "missing value for", "--policy");
		if (m > 0)
			continue;
		if ((m = revoke_parse_kind(argc, argv, &i, a)) < 0)
			return -m;
		if (m > 0)
			continue;
		if (strcmp(argv[i], "--json") == 0)
			a->json = 1;
		else
			return revoke_usage_err(argv[0], "unexpected argument", argv[i]);
	}
	if (a->policy == NULL || a->kind == NULL)
		return revoke_usage_err(argv[0], "--policy and one of --handle-id, --sandbox, "
		    "--credential, --key are required", NULL);
	return CLI_OK;
}

/* Sandboxes and credentials must be ones the policy defines. CLI_OK or the exit code. */
static int
revoke_check_name(const char *cmd, const policy_t *p, const struct revoke_args *a)
{
	char msg[512];

	if (strcmp(a->kind, "sandbox") == 0 && policy_sandbox_find(p, a->value) == NULL)
		snprintf(msg, sizeof(msg), "no sandbox '%s' in %s", a->value, a->policy);
	else if (strcmp(a->kind, "credential") == 0 &&
	    policy_credential_find(p, a->value) == NULL)
		snprintf(msg, sizeof(msg), "no credential '%s' in %s", a->value, a->policy);
	else
		return CLI_OK;
	return revoke_fail(cmd, msg);
}

static void
revoke_format_time(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "%lld", (long long)t);
}

static void
revoke_print(const struct revoke_args *a, const char *file, int64_t now, int changed)
{
	bool scoped = strcmp(a->kind, "sandbox") == 0 || strcmp(a->kind, "credential") == 0;
	char when[64];
	json_t *o;

	revoke_format_time(now, when, sizeof(when));
	if (a->json) {
		o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "kind", a->kind, "value",
		    a->value, "file", file, "revoked_at", (json_int_t)now, "revoked_at_text",
		    when, "changed", changed);
		json_dumpf(o, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(o);
		return;
	}
	printf("%s %s %s%s in %s\n", changed ? "revoked" : "already revoked:", a->kind,
	    a->value, scoped ? " (handles issued up to now)" : "", file);
	if (scoped)
		printf("handles issued at or before %s are refused; new ones work\n", when);
}

static int
revoke_run(const char *cmd, const policy_t *p, const struct revoke_args *a)
{
	int64_t now = util_now_s();
	char err[512];
	int rc;

	if (p->revocations_file == NULL)
		return revoke_fail(cmd, "the policy names no revocations.file");
	if ((rc = revoke_check_name(cmd, p, a)) != CLI_OK)
		return rc;
	if ((rc = revoke_add(p->revocations_file, a->kind, a->value, now, err,
	    sizeof(err))) < 0)
		return revoke_fail(cmd, err);
	revoke_print(a, p->revocations_file, now, rc == 0);
	return CLI_OK;
}

/* Handle and key ids are shown and stored lower-case (argv strings may be modified). */
static void
revoke_hex_lower(struct revoke_args *a)
{
	if (strcmp(a->kind, "handle") != 0 && strcmp(a->kind, "key") != 0)
		return;
	for (char *s = (char *)(uintptr_t)a->value; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

int
cmd_revoke(int argc, char **argv)
{
	struct revoke_args a = {0};
	char err[256];
	policy_t *p;
	int rc;

	if (cli_wants_help(argc, argv)) {
		printf("usage: %s\n  Refuse handles from now on, by handle id (32 hex), by sandbox\n"
		    "  or credential (handles issued up to now; newer ones work), or by key id\n"
		    "  (8 hex). Writes the policy's revocations.file (0600); a running serve\n"
		    "  picks it up. --json prints {kind, value, file, revoked_at, changed}.\n",
		    revoke_usage);
		return CLI_OK;
	}
	if ((rc = revoke_parse_args(argc, argv, &a)) != CLI_OK)
		return rc;
	if (revoke_value_valid(a.kind, a.value, err, sizeof(err)) < 0)
		return revoke_usage_err(argv[0], err, NULL);
	revoke_hex_lower(&a);
	if ((p = cli_load_policy(argv[0], a.policy)) == NULL)
		return CLI_FAIL;
	rc = revoke_run(argv[0], p, &a);
	policy_unref(p);
	return rc;
}
