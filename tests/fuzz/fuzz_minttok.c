/*
 * fuzz_minttok.c — libFuzzer harness for the token endpoint answer reader (minttok.h)
 * over arbitrary bytes. Invariants: a token comes whole (NUL-terminated, 1..
 * MINTTOK_TOKEN_MAX visible ASCII bytes, a refresh token likewise when present, a
 * lifetime within 1..MINTTOK_EXPIRES_MAX, a token type of its alphabet); an error
 * carries a non-empty code of its alphabet and a printable description and no token;
 * anything else leaves no token behind and gives a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "minttok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	1796558400

static void
fuzz_check_visible(const char *s, size_t n)
{
	if (s == NULL || n == 0 || n > MINTTOK_TOKEN_MAX || strlen(s) != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			abort();
}

static void
fuzz_check_printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		abort();
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			abort();
}

static void
fuzz_check_code(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr("._-", s[i])))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	minttok_t t;
	int rc = minttok_parse((const char *)data, size, FUZZ_NOW, &t);

	switch (rc) {
	case MINTTOK_TOKEN:
		fuzz_check_visible(t.access_token, t.access_token_len);
		if (t.refresh_token != NULL)
			fuzz_check_visible(t.refresh_token, t.refresh_token_len);
		if (t.expires_in < 1 || t.expires_in > MINTTOK_EXPIRES_MAX)
			abort();
		fuzz_check_code(t.token_type, MINTTOK_TYPE_MAX);
		fuzz_check_printable(t.scope, MINTTOK_SCOPE_MAX);
		break;
	case MINTTOK_ERROR:
		if (t.access_token != NULL || t.refresh_token != NULL)
			abort();
		fuzz_check_code(t.error, MINTTOK_CODE_MAX);
		fuzz_check_printable(t.error_description, MINTTOK_DESC_MAX);
		break;
	case MINTTOK_E_FORMAT:
		if (t.why == NULL || t.access_token != NULL || t.refresh_token != NULL)
			abort();
		break;
	case MINTTOK_E_NOMEM:
		break;
	default:
		abort();
	}
	minttok_free(&t);
	return 0;
}
