/* main.c — the sealgate binary: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"

struct cli_cmd {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
};

static int cmd_version(int argc, char **argv);

static const struct cli_cmd cli_cmds[] = {
	{"serve", cmd_serve, "run the proxy, metadata and admin listeners"},
	{"keygen", cmd_keygen, "create an X25519 seal key pair (seal.key, seal.pub)"},
	{"ca", cmd_ca, "ca init: create the interception CA (ca.key, ca.crt)"},
	{"seal", cmd_seal, "seal a tokenizer-format secret (JSON on stdin)"},
	{"unseal", cmd_unseal, "open a sealed token or handle, secrets redacted"},
	{"handle", cmd_handle, "handle mint: mint a handle for a sandbox and credential"},
	{"policy", cmd_policy, "policy check: validate policy files"},
	{"revoke", cmd_revoke, "revoke a handle id, sandbox, credential or key"},
	{"sandbox", cmd_sandbox, "add|list|get|rm|fork sandboxes registered at run time"},
	{"transparent", cmd_transparent, "transparent rules: nftables redirect to the "
	    "transparent listener"},
	{"version", cmd_version, "print the version"},
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: sealgate COMMAND [options]   (sealgate COMMAND --help)\n\n");
	for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
		fprintf(out, "  %-8s %s\n", cli_cmds[i].name, cli_cmds[i].summary);
}

static int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("sealgate %s (libsodium %s)\n", SEALGATE_VERSION, sodium_version_string());
	return CLI_OK;
}

int
cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	if (sodium_init() < 0) {
		fprintf(stderr, "sealgate: libsodium failed to initialise\n");
		return CLI_FAIL;
	}
	for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
		if (strcmp(argv[1], cli_cmds[i].name) == 0)
			return cli_cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "sealgate: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
