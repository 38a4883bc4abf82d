/* cmd_transparent.c — sealgate transparent rules: print the nftables ruleset that
 * redirects a sandbox interface's outbound HTTPS to the transparent listener. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nftrules.h"

static const char transparent_usage[] =
    "usage: sealgate transparent rules --sandbox-if IF --proxy ADDR:PORT\n"
    "\n"
    "Print an nftables ruleset (table inet sealgate) that DNATs TCP 443 arriving on\n"
    "the sandbox interface IF to sealgate's listen.transparent address ADDR:PORT,\n"
    "except traffic to ADDR itself and to the metadata addresses. Apply it with\n"
    "`nft -f -`; see docs/transparent.md.\n";

int
cmd_transparent(int argc, char **argv)
{
	const char *ifname = NULL, *proxy = NULL;
	char out[2048], err[160];

	if (argc < 2 || strcmp(argv[1], "rules") != 0) {
		fputs(transparent_usage, stderr);
		return CLI_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--sandbox-if") == 0 && i + 1 < argc)
			ifname = argv[++i];
		else if (strcmp(argv[i], "--proxy") == 0 && i + 1 < argc)
			proxy = argv[++i];
		else {
			fprintf(stderr, "sealgate transparent rules: unknown argument %s\n%s",
			    argv[i], transparent_usage);
			return CLI_USAGE;
		}
	}
	if (ifname == NULL || proxy == NULL) {
		fputs(transparent_usage, stderr);
		return CLI_USAGE;
	}
	if (nftrules_render(ifname, proxy, out, sizeof(out), err, sizeof(err)) < 0) {
		fprintf(stderr, "sealgate transparent rules: %s\n", err);
		return CLI_USAGE;
	}
	fputs(out, stdout);
	return 0;
}
