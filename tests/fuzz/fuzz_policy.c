/*
 * fuzz_policy.c — libFuzzer harness for the policy parser (policy_load_buffer).
 * Invariant: a load returns a snapshot XOR at least one error; everything is freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <sodium.h>

#include "policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	/* Secrets named by env in seeds resolve; relative files land in a missing folder. */
	setenv("SG_FUZZ_SECRET", "fuzz-secret-value", 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	policy_errors_t errs;
	policy_t *p;

	p = policy_load_buffer("/nonexistent/fuzz/policy.json", (const char *)data, size,
	    &errs);
	if ((p != NULL) == (errs.n > 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (errs.msg[i] == NULL || errs.msg[i][0] == '\0')
			abort();
	if (p != NULL) {
		if (p->refcnt != 1 || p->listen.proxy == NULL || p->keys.seal_key == NULL)
			abort();
		for (size_t i = 0; i < p->ncredentials; i++)
			if (p->credentials[i].secret == NULL || p->credentials[i].hosts.n == 0)
				abort();
		policy_unref(p);
	}
	policy_errors_free(&errs);
	return 0;
}
