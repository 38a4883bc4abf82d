/*
 * clustermsg.c — fleet mode's key names, revocation records and config strings.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustermsg.h"

/* Largest unix time accepted: year 9999; keeps the digits and arithmetic bounded. */
#define CLUSTERMSG_MAX_TS	253402300799ll

/* out = "" (when it has room), -1. */
static int
clustermsg_fail(char *out, size_t outlen)
{
	if (outlen > 0)
		out[0] = '\0';
	return -1;
}

static int
clustermsg_fmt(char *out, size_t outlen, const char *a, const char *b)
{
	int n = snprintf(out, outlen, "%s%s", a, b);

	return n < 0 || (size_t)n >= outlen ? clustermsg_fail(out, outlen) : 0;
}

int
clustermsg_revocations_key(const char *prefix, char *out, size_t outlen)
{
	if (!clustermsg_prefix_valid(prefix))
		return clustermsg_fail(out, outlen);
	return clustermsg_fmt(out, outlen, prefix, "revocations");
}

int
clustermsg_revocations_channel(const char *prefix, char *out, size_t outlen)
{
	if (!clustermsg_prefix_valid(prefix))
		return clustermsg_fail(out, outlen);
	return clustermsg_fmt(out, outlen, prefix, "revocations:events");
}

/* Decimal ts in [0, CLUSTERMSG_MAX_TS], exactly len bytes, no sign or leading junk. */
static int
clustermsg_ts_parse(const char *s, size_t len, int64_t *ts)
{
	int64_t v = 0;

	if (len == 0 || len > 12)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > CLUSTERMSG_MAX_TS)
		return -1;
	*ts = v;
	return 0;
}

static int
clustermsg_copy(char *dst, size_t dstlen, const char *s, size_t len)
{
	if (len >= dstlen || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* "<kind>:<value>" (len bytes) into out's kind and value, checked. */
static int
clustermsg_kv_decode(const char *s, size_t len, clustermsg_rec_t *out)
{
	const char *colon = memchr(s, ':', len);
	size_t klen;

	if (colon == NULL)
		return -1;
	klen = (size_t)(colon - s);
	if (clustermsg_copy(out->kind, sizeof(out->kind), s, klen) < 0 ||
	    clustermsg_copy(out->value, sizeof(out->value), colon + 1, len - klen - 1) < 0)
		return -1;
	if (revoke_value_valid(out->kind, out->value, NULL, 0) < 0)
		return -1;
	if (strcmp(out->kind, "handle") == 0 || strcmp(out->kind, "key") == 0)
		for (char *p = out->value; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	out->rec = (revoke_record_t){out->kind, out->value, out->rec.ts};
	return 0;
}

static int
clustermsg_record_ok(const revoke_record_t *r)
{
	return r->kind != NULL && r->value != NULL && r->ts >= 0 &&
	    r->ts <= CLUSTERMSG_MAX_TS && revoke_value_valid(r->kind, r->value, NULL, 0) == 0;
}

int
clustermsg_field_encode(const revoke_record_t *r, char *field, size_t fieldlen, char *ts,
    size_t tslen)
{
	int n;

	if (fieldlen > 0)
		field[0] = '\0';
	if (!clustermsg_record_ok(r))
		return -1;
	n = snprintf(field, fieldlen, "%s:%s", r->kind, r->value);
	if (n < 0 || (size_t)n >= fieldlen)
		return clustermsg_fail(field, fieldlen);
	n = snprintf(ts, tslen, "%" PRId64, r->ts);
	if (n < 0 || (size_t)n >= tslen) {
		field[0] = '\0';
		return -1;
	}
	return 0;
}

int
clustermsg_field_decode(const char *field, size_t flen, const char *ts, size_t tslen,
    clustermsg_rec_t *out)
{
	memset(out, 0, sizeof(*out));
	if (clustermsg_ts_parse(ts, tslen, &out->rec.ts) < 0)
		return -1;
	return clustermsg_kv_decode(field, flen, out);
}

int
clustermsg_msg_encode(const char *node, const revoke_record_t *r, char *out, size_t outlen)
{
	int n;

	if (outlen > 0)
		out[0] = '\0';
	if (!clustermsg_node_valid(node) || !clustermsg_record_ok(r))
		return -1;
	n = snprintf(out, outlen, CLUSTERMSG_TAG " %s %" PRId64 " %s:%s", node, r->ts,
	    r->kind, r->value);
	if (n < 0 || (size_t)n >= outlen)
		return clustermsg_fail(out, outlen);
	return 0;
}

/* The next space-terminated word of [*p, end): its start and length; *p moves past it. */
static int
clustermsg_word(const char **p, const char *end, const char **w, size_t *wlen)
{
	const char *sp = memchr(*p, ' ', (size_t)(end - *p));

	if (sp == NULL || sp == *p)
		return -1;
	*w = *p;
	*wlen = (size_t)(sp - *p);
	*p = sp + 1;
	return 0;
}

int
clustermsg_msg_decode(const char *msg, size_t len, clustermsg_rec_t *out)
{
	const char *p = msg, *end = msg + len, *w;
	size_t wlen;

	memset(out, 0, sizeof(*out));
	if (len > CLUSTERMSG_MAX_RECORD || clustermsg_word(&p, end, &w, &wlen) < 0 ||
	    wlen != strlen(CLUSTERMSG_TAG) || memcmp(w, CLUSTERMSG_TAG, wlen) != 0)
		return -1;
	if (clustermsg_word(&p, end, &w, &wlen) < 0 ||
	    clustermsg_copy(out->node, sizeof(out->node), w, wlen) < 0 ||
	    !clustermsg_node_valid(out->node))
		return -1;
	if (clustermsg_word(&p, end, &w, &wlen) < 0 ||
	    clustermsg_ts_parse(w, wlen, &out->rec.ts) < 0)
		return -1;
	return clustermsg_kv_decode(p, (size_t)(end - p), out);
}

/* --- config strings ------------------------------------------------------------------- */

static int
clustermsg_name_chars(const char *s, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > CLUSTERMSG_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(extra, s[i]) == NULL)
			return 0;
	return 1;
}

int
clustermsg_node_valid(const char *s)
{
	return clustermsg_name_chars(s, "._-");
}

int
clustermsg_prefix_valid(const char *s)
{
	return clustermsg_name_chars(s, "._:-");
}

int
clustermsg_user_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CLUSTERMSG_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

int
clustermsg_address_split(const char *s, char *host, size_t hostlen, int *port,
    const char **unix_path)
{
	const char *colon, *h = s, *hend;
	char *end;
	long v;

	*unix_path = NULL;
	*port = 0;
	if (hostlen > 0)
		host[0] = '\0';
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) >= 108)	/* sun_path */
			return -1;
		*unix_path = s + 5;
		return 0;
	}
	if ((colon = strrchr(s, ':')) == NULL || colon == s)
		return -1;
	hend = colon;
	if (*s == '[') {
		if (colon[-1] != ']' || colon - s < 3)
			return -1;
		h = s + 1;
		hend = colon - 1;
	} else if (memchr(s, ':', (size_t)(colon - s)) != NULL)
		return -1;	/* an IPv6 literal needs brackets */
	errno = 0;
	v = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] < '0' || colon[1] > '9' || v < 1 ||
	    v > 65535)
		return -1;
	if (clustermsg_copy(host, hostlen, h, (size_t)(hend - h)) < 0)
		return -1;
	for (const char *p = host; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '/')
			return -1;
	*port = (int)v;
	return 0;
}

int
clustermsg_address_valid(const char *s)
{
	char host[256];
	const char *path;
	int port;

	return clustermsg_address_split(s, host, sizeof(host), &port, &path) == 0;
}
