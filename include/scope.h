/*
 * scope.h — where a credential or handle may be used: host (+ port), method, path.
 * Pure core, no allocation, thread-safe (no shared state).
 *
 * Host patterns: "api.x.com" (ports 443 and 80, the scheme defaults), "api.x.com:8443"
 * (that port only), "*.x.com" (any name below x.com at any depth, not x.com itself),
 * "[::1]" / "[::1]:8443" for IPv6 literals. Names compare case-insensitively; a trailing
 * dot on either side is ignored.
 * Paths: scope_path_normalize first refuses ambiguous request paths, then
 * scope_path_match compares the result against globs (with a star for any run) or
 * prefixes ending in "/".
 */
#ifndef SEALGATE_SCOPE_H
#define SEALGATE_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "util.h"

/* Is pattern a usable host pattern? Refuses "", "*", "*.", "a.*.com", "*x.com", bad ports,
 * empty labels, characters outside letters, digits, '-', '_', '.', and unbracketed ':'. */
bool scope_host_pattern_valid(const char *pattern) SG_NONNULL;

/* Does host:port fall under pattern? An invalid pattern matches nothing. */
bool scope_host_match(const char *pattern, const char *host, uint16_t port) SG_NONNULL;

/* Any of patterns (an empty list matches nothing). */
bool scope_hosts_match(const policy_strlist_t *patterns, const char *host, uint16_t port)
    SG_NONNULL;

/* Method in methods? Exact, case-sensitive; an empty list allows any method. */
bool scope_method_match(const policy_strlist_t *methods, const char *method) SG_NONNULL;

/*
 * Normalize the path of a request-target (path[0..len), which need not be NUL-terminated;
 * reading stops at '?' or '#'). Refused (-1): not starting with '/', dot segments "." and
 * ".." (also percent-encoded, and Tomcat-style "..;x"), encoded '/' or '\' (%2F, %5C),
 * raw '\', NUL or %00, control bytes, space, malformed %-escapes, or out too small.
 * Otherwise percent-encoded unreserved characters are decoded, other escapes kept with
 * upper-case hex, and the NUL-terminated result written to out; returns its length.
 */
int scope_path_normalize(const char *path, size_t len, char *out, size_t outlen)
    SG_NONNULL SG_WUR;

/*
 * Does a normalized path match any of patterns? An empty list matches any path. '*'
 * matches any run of characters including '/'; a pattern without '*' matches exactly,
 * or as a prefix when it ends with '/'.
 */
bool scope_path_match(const policy_strlist_t *patterns, const char *normalized_path)
    SG_NONNULL;

#endif
