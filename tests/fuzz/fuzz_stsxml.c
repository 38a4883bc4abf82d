/*
 * fuzz_stsxml.c — libFuzzer harness for the STS AssumeRole answer reader (stsxml.h) over
 * arbitrary bytes. Invariants: credentials come whole and satisfy the documented value
 * checks (lengths, alphabets, NUL-terminated, expiration after 1970); an error carries a
 * non-empty code of its alphabet and a printable message within bounds; any other result
 * leaves no credential behind and gives a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stsxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_alphabet(const char *s, size_t n, const char *extra)
{
	if (s == NULL || strlen(s) != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || (extra && strchr(extra, s[i]))))
			abort();
}

static void
fuzz_check_credentials(const stsxml_t *x)
{
	if (x->akid_len < STSXML_AKID_MIN || x->akid_len > STSXML_AKID_MAX ||
	    x->secret_len == 0 || x->secret_len > STSXML_SECRET_MAX ||
	    x->token_len == 0 || x->token_len > STSXML_MAX_TEXT || x->expiration < 0)
		abort();
	fuzz_check_alphabet(x->akid, x->akid_len, NULL);
	fuzz_check_alphabet(x->secret, x->secret_len, "+/=_-");
	fuzz_check_alphabet(x->token, x->token_len, "+/=_-");
}

static void
fuzz_check_error(const stsxml_t *x)
{
	size_t n = strlen(x->code), m = strlen(x->message);

	if (n == 0 || n > STSXML_CODE_MAX || m > STSXML_MESSAGE_MAX || x->akid || x->token)
		abort();
	fuzz_check_alphabet(x->code, n, "._-");
	for (size_t i = 0; i < m; i++)
		if (x->message[i] < 0x20 || x->message[i] > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	stsxml_t x;
	int rc = stsxml_parse((const char *)data, size, &x);

	switch (rc) {
	case STSXML_CREDENTIALS:
		fuzz_check_credentials(&x);
		break;
	case STSXML_ERROR:
		fuzz_check_error(&x);
		break;
	case STSXML_E_FORMAT:
	case STSXML_E_TOO_BIG:
	case STSXML_E_NOMEM:
		if (x.akid || x.secret || x.token || x.why == NULL)
			abort();
		break;
	default:
		abort();
	}
	stsxml_free(&x);
	if (x.akid || x.secret || x.token)
		abort();
	return 0;
}
