/*
 * cmd_policy.c — `sealgate policy check [--quiet] PATH`: the loader serve uses, with no
 * side effects (no keys created; missing key files are fine, serve creates them).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "policy.h"

static void
cmd_policy_usage(FILE *out)
{
	fprintf(out,
	    "usage: sealgate policy check [--quiet] PATH\n"
	    "\n"
	    "Validate a policy file, or a directory of *.json policy files (merged), exactly\n"
	    "as serve would load it. Prints \"policy OK: ...\" and exits 0; prints every\n"
	    "error as FILE:LINE:COL: MESSAGE or FILE: JSON.PATH: MESSAGE and exits 1.\n"
	    "\n"
	    "  --quiet   print nothing when the policy is valid (warnings still go to stderr)\n");
}

static const char *
cmd_policy_listener(const char *addr)
{
	return addr != NULL ? addr : "off";
}

static int
cmd_policy_check(const char *path, int quiet)
{
	policy_errors_t errs;
	policy_t *p;

	p = policy_load(path, &errs);
	if (p == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		if (errs.n == 0)
			fprintf(stderr, "%s: policy not loaded\n", path);
		policy_errors_free(&errs);
		return CLI_FAIL;
	}
	for (size_t i = 0; i < p->warnings.n; i++)
		fprintf(stderr, "warning: %s\n", p->warnings.v[i]);
	if (!quiet)
		printf("policy OK: %s: %zu credential%s, %zu sandbox%s, listeners proxy=%s "
		    "metadata=%s admin=%s%s%s%s%s\n", path, p->ncredentials,
		    p->ncredentials == 1 ? "" : "s", p->nsandboxes, p->nsandboxes == 1 ? "" : "es",
		    cmd_policy_listener(p->listen.proxy), cmd_policy_listener(p->listen.metadata),
		    cmd_policy_listener(p->listen.admin),
		    p->listen.metadata_aws ? " metadata_aws=" : "",
		    p->listen.metadata_aws ? p->listen.metadata_aws : "",
		    p->listen.transparent ? " transparent=" : "",
		    p->listen.transparent ? p->listen.transparent : "");
	policy_unref(p);
	policy_errors_free(&errs);
	return CLI_OK;
}

int
cmd_policy(int argc, char **argv)
{
	const char *path = NULL;
	int quiet = 0;

	if (cli_wants_help(argc, argv)) {
		cmd_policy_usage(stdout);
		return CLI_OK;
	}
	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "sealgate policy: %s\n", argc < 2 ? "missing subcommand" :
		    "unknown subcommand (only \"check\")");
		cmd_policy_usage(stderr);
		return CLI_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
			quiet = 1;
		else if (strcmp(argv[i], "--") == 0 && i + 2 == argc && path == NULL)
			path = argv[++i];
		else if (argv[i][0] == '-' || path != NULL) {
			fprintf(stderr, "sealgate policy check: unexpected argument '%s'\n", argv[i]);
			cmd_policy_usage(stderr);
			return CLI_USAGE;
		} else
			path = argv[i];
	}
	if (path == NULL) {
		fprintf(stderr, "sealgate policy check: missing PATH\n");
		cmd_policy_usage(stderr);
		return CLI_USAGE;
	}
	return cmd_policy_check(path, quiet);
}
