/*
 * cli.h — subcommands of the sealgate binary. Each takes argv with argv[0] = its name
 * and returns the process exit code: 0 ok, 1 failure, 2 usage.
 */
#ifndef SEALGATE_CLI_H
#define SEALGATE_CLI_H

#define CLI_OK     0
#define CLI_FAIL   1
#define CLI_USAGE  2

int cmd_serve(int argc, char **argv);	/* cmd_serve.c */
int cmd_keygen(int argc, char **argv);	/* cmd_keys.c */
int cmd_ca(int argc, char **argv);	/* cmd_keys.c: ca init */
int cmd_seal(int argc, char **argv);	/* cmd_keys.c */
int cmd_unseal(int argc, char **argv);	/* cmd_keys.c */
int cmd_handle(int argc, char **argv);	/* cmd_keys.c: handle mint */
int cmd_policy(int argc, char **argv);	/* cmd_policy.c: policy check */
int cmd_revoke(int argc, char **argv);	/* cmd_revoke.c */
int cmd_sandbox(int argc, char **argv);	/* cmd_sandbox.c: add|list|get|rm|fork */
int cmd_transparent(int argc, char **argv);	/* cmd_transparent.c: rules */

struct policy;

/*
 * Load the policy at path for a command: NULL after printing "sealgate CMD: <first
 * located error>" (and how many more, pointing at `sealgate policy check`) on stderr.
 */
struct policy *cli_load_policy(const char *cmd, const char *path);

/*
 * Match argv[*i] as "--name VALUE" or "--name=VALUE". 1 matched (*i advanced past a
 * separate value), 0 not this option, -1 value missing.
 */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **val);

/* True when argv has -h/--help before "--". */
int cli_wants_help(int argc, char **argv);

#endif
