/* cmd_serve.c — placeholder until serve lands. */
#include <stdio.h>

#include "cli.h"

int
cmd_serve(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "sealgate %s: not built yet\n", argv[0]);
	return CLI_FAIL;
}
