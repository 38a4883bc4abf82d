/*
 * fuzz_scope.c — libFuzzer harness for scope_path_normalize, scope_path_match and
 * scope_host_match.
 * Invariants: a normalized path re-normalizes to itself, starts with '/', and never holds
 * "/../" or "/./" (nor ends in "/.." or "/."); it matches an empty pattern list and
 * itself as a pattern when it has no '*'; an invalid host pattern matches nothing; a
 * valid plain pattern matches its own name on 443, and "*.name" matches "a.name".
 * Input: path bytes, then optionally '\n' host-pattern '\n' host.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUTMAX 8192

static void
fuzz_path(const char *p, size_t len)
{
	static char out[OUTMAX], again[OUTMAX];
	policy_strlist_t none = {0, NULL}, self;
	char *v[2];
	int n, m;
	size_t olen;

	n = scope_path_normalize(p, len, out, sizeof(out));
	if (n < 0)
		return;
	olen = strlen(out);
	if ((size_t)n != olen || out[0] != '/')
		abort();
	if (strstr(out, "/../") || strstr(out, "/./") ||
	    (olen >= 3 && strcmp(out + olen - 3, "/..") == 0) ||
	    (olen >= 2 && strcmp(out + olen - 2, "/.") == 0))
		abort();
	m = scope_path_normalize(out, olen, again, sizeof(again));
	if (m != n || strcmp(out, again) != 0)
		abort();
	if (!scope_path_match(&none, out))
		abort();
	if (strchr(out, '*') == NULL) {
		v[0] = out;
		self.n = 1;
		self.v = v;
		if (!scope_path_match(&self, out))
			abort();
	}
	/* a few fixed patterns: must not crash */
	{
		static char p1[] = "/*", p2[] = "/v1/", p3[] = "*a*b*", p4[] = "";
		char *pv[] = {p1, p2, p3, p4};
		policy_strlist_t pl = {4, pv};

		if (!scope_path_match(&pl, out))	/* the first one matches every path */
			abort();
	}
}

static void
fuzz_host(const char *pattern, const char *host)
{
	static char buf[600];
	size_t plen = strlen(pattern);
	bool valid = scope_host_pattern_valid(pattern);

	for (unsigned port = 0; port < 65536; port += 8443) {
		if (scope_host_match(pattern, host, (uint16_t)port) && !valid)
			abort();
	}
	if (scope_host_match(pattern, host, 443) && !valid)
		abort();
	if (!valid || plen == 0 || plen > 256)
		return;
	if (strchr(pattern, '*') == NULL && strchr(pattern, ':') == NULL &&
	    pattern[0] != '[') {
		if (!scope_host_match(pattern, pattern, 443))
			abort();
	} else if (pattern[0] == '*' && pattern[1] == '.' && strchr(pattern, ':') == NULL) {
		memcpy(buf, "a", 1);
		memcpy(buf + 1, pattern + 1, plen);	/* "a.name" */
		if (!scope_host_match(pattern, buf, 443))
			abort();
		if (scope_host_match(pattern, pattern + 2, 443))	/* not the apex */
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *nl, *nl2;

	if (size > 4096)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	nl = memchr(s, '\n', size);
	fuzz_path(s, nl ? (size_t)(nl - s) : size);
	if (nl != NULL) {
		*nl = '\0';
		nl2 = strchr(nl + 1, '\n');
		if (nl2 != NULL) {
			*nl2 = '\0';
			fuzz_host(nl + 1, nl2 + 1);
		} else {
			fuzz_host(nl + 1, nl + 1);
		}
	}
	free(s);
	return 0;
}
