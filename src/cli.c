/* cli.c — helpers shared by the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "policy.h"

struct policy *
cli_load_policy(const char *cmd, const char *path)
{
	policy_errors_t errs;
	policy_t *p = policy_load(path, &errs);

	if (p == NULL) {
		fprintf(stderr, "sealgate %s: %s", cmd, errs.n ? errs.msg[0] :
		    "cannot load the policy");
		if (errs.n > 1)
			fprintf(stderr, " (and %zu more; see sealgate policy check)", errs.n - 1);
		fputc('\n', stderr);
	}
	policy_errors_free(&errs);
	return p;
}

int
cli_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}
