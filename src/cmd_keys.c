/* cmd_keys.c — placeholder until the keys/seal/handle commands land. */
#include <stdio.h>

#include "cli.h"

static int
cmd_missing(const char *name)
{
	fprintf(stderr, "sealgate %s: not built yet\n", name);
	return CLI_FAIL;
}

int cmd_keygen(int argc, char **argv) { (void)argc; return cmd_missing(argv[0]); }
int cmd_ca(int argc, char **argv) { (void)argc; return cmd_missing(argv[0]); }
int cmd_seal(int argc, char **argv) { (void)argc; return cmd_missing(argv[0]); }
int cmd_unseal(int argc, char **argv) { (void)argc; return cmd_missing(argv[0]); }
int cmd_handle(int argc, char **argv) { (void)argc; return cmd_missing(argv[0]); }
