/*
 * fuzz_policy.c — libFuzzer harness for the policy parser (policy_load_buffer).
 * Invariant: a load returns a snapshot XOR at least one error; everything is freed; an
 * aws_sigv4 credential, and only one, has its aws block, with a key id and a service, and
 * every S3 prefix names a listed bucket.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
aws_prefix_ok(const policy_aws_t *a, const char *prefix)
{
	const char *slash = strchr(prefix, '/');

	for (size_t j = 0; slash != NULL && j < a->nbuckets; j++)
		if (strlen(a->buckets[j]) == (size_t)(slash - prefix) &&
		    strncmp(a->buckets[j], prefix, (size_t)(slash - prefix)) == 0)
			return 1;
	return 0;
}

static int
aws_ok(const policy_credential_t *c)
{
	const policy_aws_t *a = c->aws;

	if ((c->inject.type == INJECT_AWS_SIGV4) != (a != NULL))
		return 0;
	if (a == NULL)
		return 1;
	if (a->access_key_id == NULL || a->access_key_id_len == 0 || a->nservices == 0)
		return 0;
	for (size_t i = 0; i < a->nprefixes; i++)
		if (!aws_prefix_ok(a, a->prefixes[i]))
			return 0;
	return !a->assume_role.set || a->assume_role.role_arn != NULL;
}

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
			if (p->credentials[i].secret == NULL || p->credentials[i].hosts.n == 0 ||
			    !aws_ok(&p->credentials[i]))
				abort();
		policy_unref(p);
	}
	policy_errors_free(&errs);
	return 0;
}
