/* cmd_policy.c — placeholder until policy check lands. */
#include <stdio.h>

#include "cli.h"

int
cmd_policy(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "sealgate %s: not built yet\n", argv[0]);
	return CLI_FAIL;
}
