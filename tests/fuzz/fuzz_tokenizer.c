/*
 * fuzz_tokenizer.c — libFuzzer harness for the tokenizer secret parser: the plaintext
 * JSON of a sealed secret goes straight to tokenizer_parse_secret (no crypto needed),
 * then a parsed secret's host validators (allowed_hosts, the PCRE2 allowed_host_pattern
 * under match limits) run against a few hosts, and the same bytes go through
 * tokenizer_split_header as a Proxy-Tokenizer header value.
 * Invariants: a parsed secret has 1..TOKENIZER_MAX_PROCS processors of a known kind,
 * each with what it needs, and one auth; failures set a reason; nothing leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check(const tokenizer_secret_t *s)
{
	if (s->nproc == 0 || s->nproc > TOKENIZER_MAX_PROCS)
		abort();
	if (s->auth != TK_AUTH_BEARER && s->auth != TK_AUTH_NONE)
		abort();
	for (size_t i = 0; i < s->nproc; i++) {
		const tokenizer_proc_t *p = &s->proc[i];

		switch (p->kind) {
		case TK_INJECT:
		case TK_INJECT_BODY:
			if (p->token == NULL || p->token_len == 0)
				abort();
			break;
		case TK_INJECT_HMAC:
			if (p->key == NULL || p->key_len == 0)
				abort();
			break;
		case TK_OAUTH2:
		case TK_OAUTH2_BODY:
			if (p->token == NULL && p->refresh == NULL)
				abort();
			break;
		default:
			abort();
		}
		if (p->fmt != NULL && strchr(p->fmt, '%') == NULL)
			abort();
	}
	if (s->host_pattern != NULL && s->host_re == NULL)
		abort();
	if (s->rate.set && (s->rate.requests == 0 || s->rate.per_ms == 0 || s->rate.burst == 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct { const char *host; uint16_t port; } hosts[] = {
		{"api.example.test", 443}, {"api.example.test", 8443}, {"::1", 80},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", 443},
	};
	tokenizer_secret_t s;
	const char *why = NULL, *tok, *params;
	size_t tl, pl;
	int rc;

	if (sodium_init() < 0)
		abort();
	rc = tokenizer_parse_secret((const char *)data, size, &s, &why);
	if (rc == 0) {
		fuzz_check(&s);
		for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
			(void)tokenizer_host_allowed(&s, hosts[i].host, hosts[i].port);
		tokenizer_secret_free(&s);
	} else if ((rc != -1 && rc != -2) || why == NULL) {
		abort();
	}
	if (size > 0 && tokenizer_split_header((const char *)data, size, &tok, &tl, &params,
	    &pl, &why) == 0) {
		if (tl == 0 || tok < (const char *)data || tok + tl > (const char *)data + size)
			abort();
		if (params != NULL && (params < (const char *)data ||
		    params + pl > (const char *)data + size))
			abort();
	}
	return 0;
}
