/* inject.c — find handles in a request head, plan the swap for the real secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "handle.h"
#include "inject.h"
#include "secmem.h"
#include "util.h"

/* --- finding ----------------------------------------------------------------------- */

static void
inject_add_found(inject_list_t *l, enum inject_where w, size_t field, size_t off, size_t len,
    const char *basic, size_t basic_len)
{
	inject_found_t *f;

	if (l->n >= SG_ARRAY_LEN(l->f)) {
		l->truncated = true;
		return;
	}
	f = &l->f[l->n++];
	f->where = w;
	f->field = field;
	f->off = off;
	f->len = len;
	f->basic = basic ? secmem_wipe_dup(basic, basic_len) : NULL;
	f->basic_len = basic_len;
}

static void
inject_scan(inject_list_t *l, enum inject_where w, size_t field, const char *buf, size_t len,
    const char *basic, size_t basic_len)
{
	size_t off = 0, hl;

	while (off < len && handle_find(buf, len, &off, &hl) == 0) {
		inject_add_found(l, w, field, off, hl, basic, basic_len);
		off += hl;
	}
}

char *
inject_basic_decode(const char *value, size_t *outlen)
{
	size_t vlen, max, bin = 0;
	char *out;

	if (strncasecmp(value, "Basic ", 6) != 0)
		return NULL;
	value += 6;
	while (*value == ' ')
		value++;
	vlen = strlen(value);
	max = vlen / 4 * 3 + 3;
	if (vlen == 0 || vlen > SG_MAX_HEADER_BYTES || (out = secmem_wipe_alloc(max + 1)) == NULL)
		return NULL;
	if (sodium_base642bin((unsigned char *)out, max, value, vlen, " ", &bin, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0) {
		secmem_wipe_free(out);
		return NULL;
	}
	out[bin] = '\0';
	*outlen = bin;
	return out;
}

size_t
inject_find(const http_head_t *h, const char *target, inject_list_t *l)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < h->nfields; i++) {
		const http_field_t *f = &h->fields[i];
		size_t blen;
		char *basic;

		inject_scan(l, INJECT_IN_FIELD, i, f->value, f->value_len, NULL, 0);
		if (strcasecmp(f->name, "Authorization") != 0 &&
		    strcasecmp(f->name, "Proxy-Authorization") != 0)
			continue;
		if ((basic = inject_basic_decode(f->value, &blen)) != NULL) {
			size_t before = l->n;

			inject_scan(l, INJECT_IN_BASIC, i, basic, blen, basic, blen);
			(void)before;
			secmem_wipe_free(basic);
		}
	}
	if (target)
		inject_scan(l, INJECT_IN_TARGET, 0, target, strlen(target), NULL, 0);
	return l->n;
}

void
inject_list_free(inject_list_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		secmem_wipe_free(l->f[i].basic);
	memset(l, 0, sizeof(*l));
}

const char *
inject_found_text(const http_head_t *h, const char *target, const inject_found_t *f,
    size_t *len)
{
	*len = f->len;
	switch (f->where) {
	case INJECT_IN_FIELD:
		return h->fields[f->field].value + f->off;
	case INJECT_IN_BASIC:
		return f->basic + f->off;
	default:
		return target + f->off;
	}
}

/* --- editing -------------------------------------------------------------------------- */

void
inject_edits_init(inject_edits_t *e)
{
	memset(e, 0, sizeof(*e));
}

void
inject_edits_free(inject_edits_t *e)
{
	for (size_t i = 0; i < SG_MAX_HEADERS; i++)
		secmem_wipe_free(e->value[i]);
	for (size_t i = 0; i < e->nadd; i++) {
		free(e->add[i].name);
		secmem_wipe_free(e->add[i].value);
	}
	secmem_wipe_free(e->target);
	memset(e, 0, sizeof(*e));
}

const char *
inject_field_value(const http_head_t *h, const inject_edits_t *e, size_t i)
{
	if (e->kind[i] == EDIT_DROP)
		return NULL;
	return e->kind[i] == EDIT_REPLACE ? e->value[i] : h->fields[i].value;
}

/* Concatenate up to three pieces into wipe memory. */
static char *
inject_cat(const char *a, size_t al, const char *b, size_t bl, const char *c, size_t cl)
{
	char *out = secmem_wipe_alloc(al + bl + cl + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, a, al);
	memcpy(out + al, b, bl);
	memcpy(out + al + bl, c, cl);
	out[al + bl + cl] = '\0';
	return out;
}

/* Every occurrence of handle in value replaced by repl (sodium). */
static char *
inject_replace_all(const char *value, const char *handle, size_t hl, const char *repl)
{
	char *cur = secmem_wipe_dup(value, strlen(value));
	const char *at;

	while (cur && (at = strstr(cur, handle)) != NULL) {
		size_t pre = (size_t)(at - cur);
		char *next = inject_cat(cur, pre, repl, strlen(repl), at + hl, strlen(at + hl));

		secmem_wipe_free(cur);
		cur = next;
	}
	(void)hl;
	return cur;
}

/* format has exactly one %s (the policy checks): prefix + secret + suffix. */
static char *
inject_format(const char *format, const char *secret, size_t slen)
{
	const char *s = format ? strstr(format, "%s") : NULL;

	if (s == NULL)
		return secmem_wipe_dup(secret, slen);
	return inject_cat(format, (size_t)(s - format), secret, slen, s + 2, strlen(s + 2));
}

char *
inject_basic_b64(const char *user, const char *secret, size_t slen)
{
	size_t ul = strlen(user), pl = ul + 1 + slen, b64 = sodium_base64_encoded_len(pl,
	    sodium_base64_VARIANT_ORIGINAL);
	char *plain = inject_cat(user, ul, ":", 1, secret, slen);
	char *out = plain ? secmem_wipe_alloc(b64) : NULL;

	if (out)
		sodium_bin2base64(out, b64, (unsigned char *)plain, pl,
		    sodium_base64_VARIANT_ORIGINAL);
	secmem_wipe_free(plain);
	return out;
}

static char *
inject_basic_value(const char *user, const char *secret, size_t slen)
{
	char *b = inject_basic_b64(user, secret, slen);
	char *out = b ? inject_cat("Basic ", 6, b, strlen(b), "", 0) : NULL;

	secmem_wipe_free(b);
	return out;
}

char *
inject_urlencode(const char *s, size_t len)
{
	static const char hx[] = "0123456789ABCDEF";
	char *out = secmem_wipe_alloc(3 * len + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~')
			*o++ = (char)c;
		else {
			*o++ = '%';
			*o++ = hx[c >> 4];
			*o++ = hx[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static int
inject_set_target(inject_edits_t *e, char *t)
{
	if (t == NULL)
		return -1;
	secmem_wipe_free(e->target);
	e->target = t;
	return 0;
}

/*
 * Query editing on the current target. Finds the pair holding handle; with repl,
 * replaces the handle in place, else cuts the whole pair. -1: handle is in the path.
 */
static int
inject_target_edit(inject_edits_t *e, const char *target, const char *handle, size_t hl,
    const char *repl, const char **why)
{
	const char *cur = e->target ? e->target : target;
	const char *q = strchr(cur, '?'), *at = strstr(cur, handle);
	const char *start, *end;

	if (at == NULL)
		return 0;
	if (q == NULL || at < q) {
		*why = "a handle in the URL path cannot be swapped; send it in a header";
		return -1;
	}
	if (repl)
		return inject_set_target(e, inject_replace_all(cur, handle, hl, repl));
	start = at;
	while (start > q + 1 && start[-1] != '&')
		start--;
	end = strchr(at, '&');
	end = end ? end + 1 : at + strlen(at);
	if (*end == '\0' && start > q + 1)
		start--;	/* drop the '&' before a last pair */
	return inject_set_target(e, inject_cat(cur, (size_t)(start - cur), end, strlen(end),
	    "", 0));
}

struct inject_rule {
	const char *field;		/* header that receives the secret, or NULL (query) */
	char *value;			/* its value when set whole (sodium) */
	char *inplace;			/* what replaces the handle text in that header */
};

static int
inject_rule_make(const policy_credential_t *cr, struct inject_rule *r, const char **why)
{
	const policy_inject_t *in = &cr->inject;

	memset(r, 0, sizeof(*r));
	switch (in->type) {
	case INJECT_BEARER:
		r->field = "Authorization";
		r->value = inject_format("Bearer %s", cr->secret, cr->secret_len);
		r->inplace = secmem_wipe_dup(cr->secret, cr->secret_len);
		break;
	case INJECT_HEADER:
		r->field = in->name;
		r->value = inject_format(in->format, cr->secret, cr->secret_len);
		r->inplace = secmem_wipe_dup(cr->secret, cr->secret_len);
		break;
	case INJECT_BASIC:
		r->field = "Authorization";
		r->value = inject_basic_value(in->username ? in->username : "", cr->secret,
		    cr->secret_len);
		break;
	case INJECT_QUERY:
		r->inplace = inject_urlencode(cr->secret, cr->secret_len);
		break;
	case INJECT_AWS_SIGV4:
		*why = "aws_sigv4 credentials are re-signed, not injected";
		return -1;
	default:
		*why = "this inject type needs the request body";
		return -1;
	}
	if ((r->field && r->value == NULL) || (in->type != INJECT_BASIC && r->inplace == NULL)) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

static void
inject_rule_free(struct inject_rule *r)
{
	secmem_wipe_free(r->value);
	secmem_wipe_free(r->inplace);
}

static bool
inject_same(const http_head_t *h, const char *target, const inject_found_t *f,
    const char *handle, size_t hl)
{
	size_t len;
	const char *t = inject_found_text(h, target, f, &len);

	return len == hl && memcmp(t, handle, hl) == 0;
}

/* Header rules: in place in the named header, whole value elsewhere, drop the rest. */
static int
inject_apply_header(const http_head_t *h, const char *target, const inject_list_t *l,
    const char *handle, size_t hl, struct inject_rule *r, inject_edits_t *e,
    const char **why)
{
	char hz[SG_HANDLE_MAX_LEN + 1];
	ssize_t dst = -1;

	memcpy(hz, handle, hl);
	hz[hl] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		const inject_found_t *f = &l->f[i];
		const char *name = h->fields[f->field].name;

		if (!inject_same(h, target, f, handle, hl))
			continue;
		if (f->where == INJECT_IN_TARGET) {
			if (inject_target_edit(e, target, hz, hl, NULL, why) < 0)
				return -1;
		} else if (strcasecmp(name, r->field) == 0 && f->where == INJECT_IN_FIELD &&
		    r->inplace && e->kind[f->field] != EDIT_REPLACE) {
			e->value[f->field] = inject_replace_all(h->fields[f->field].value, hz, hl,
			    r->inplace);
			e->kind[f->field] = EDIT_REPLACE;
			dst = (ssize_t)f->field;
		} else if (strcasecmp(name, r->field) == 0 && f->where == INJECT_IN_BASIC &&
		    r->value != NULL) {
			e->value[f->field] = r->value;
			r->value = NULL;
			e->kind[f->field] = EDIT_REPLACE;
			dst = (ssize_t)f->field;
		} else if (e->kind[f->field] != EDIT_REPLACE)
			e->kind[f->field] = EDIT_DROP;
	}
	/* the injected header overrides whatever else the sandbox sent under that name */
	for (size_t i = 0; i < h->nfields; i++)
		if ((ssize_t)i != dst && strcasecmp(h->fields[i].name, r->field) == 0 &&
		    e->kind[i] != EDIT_REPLACE)
			e->kind[i] = EDIT_DROP;
	if (dst < 0) {
		if (e->nadd >= INJECT_MAX_HANDLES) {
			*why = "too many handles in one request";
			return -1;
		}
		e->add[e->nadd].name = strdup(r->field);
		e->add[e->nadd++].value = r->value;
		r->value = NULL;
	}
	e->secret_in_head = true;
	return 0;
}

/*
 * The query rebuilt: the first "param=…" pair holding the handle gets the secret in its
 * place, every other pair holding it is cut, and param=secret is appended when no pair
 * named it. A handle in the path cannot be swapped.
 */
static char *
inject_query_rebuild(const char *target, const char *hz, size_t hl, const char *param,
    const char *repl, const char **why)
{
	const char *q = strchr(target, '?'), *p;
	size_t plen = strlen(param), rl = strlen(repl), o;
	bool placed = false, first = true;
	char *out;

	if (strstr(target, hz) && (q == NULL || strstr(target, hz) < q)) {
		*why = "a handle in the URL path cannot be swapped; send it in a header";
		return NULL;
	}
	/* at most one pair grows (handle -> secret), or param=secret is appended */
	if ((out = secmem_wipe_alloc(strlen(target) + plen + rl + 3)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	o = q ? (size_t)(q - target) : strlen(target);
	memcpy(out, target, o);
	for (p = q ? q + 1 : NULL; p && *p;) {
		const char *end = strchr(p, '&'), *at;
		size_t len = end ? (size_t)(end - p) : strlen(p);

		at = memmem(p, len, hz, hl);
		if (at == NULL || (!placed && len > plen && strncmp(p, param, plen) == 0 &&
		    p[plen] == '=')) {
			out[o++] = first ? '?' : '&';
			first = false;
			if (at) {	/* param=…handle… : the secret in its place */
				memcpy(out + o, p, (size_t)(at - p));
				o += (size_t)(at - p);
				memcpy(out + o, repl, rl);
				o += rl;
				memcpy(out + o, at + hl, len - (size_t)(at - p) - hl);
				o += len - (size_t)(at - p) - hl;
				placed = true;
			} else {
				memcpy(out + o, p, len);
				o += len;
			}
		}
		p = end ? end + 1 : NULL;
	}
	if (!placed) {
		out[o++] = first ? '?' : '&';
		memcpy(out + o, param, plen);
		o += plen;
		out[o++] = '=';
		memcpy(out + o, repl, rl);
		o += rl;
	}
	out[o] = '\0';
	return out;
}

static int
inject_apply_query(const http_head_t *h, const char *target, const inject_list_t *l,
    const char *handle, size_t hl, const policy_credential_t *cr, struct inject_rule *r,
    inject_edits_t *e, const char **why)
{
	char hz[SG_HANDLE_MAX_LEN + 1];
	char *t;

	memcpy(hz, handle, hl);
	hz[hl] = '\0';
	for (size_t i = 0; i < l->n; i++)
		if (l->f[i].where != INJECT_IN_TARGET && inject_same(h, target, &l->f[i], handle, hl))
			e->kind[l->f[i].field] = EDIT_DROP;
	t = inject_query_rebuild(e->target ? e->target : target, hz, hl, cr->inject.param,
	    r->inplace, why);
	if (t == NULL)
		return -1;
	secmem_wipe_free(e->target);
	e->target = t;
	e->secret_in_head = true;
	return 0;
}

/* hmac / body: the secret goes elsewhere; every head occurrence of the handle goes. */
static int
inject_remove_all(const http_head_t *h, const char *target, const inject_list_t *l,
    const char *handle, size_t hl, inject_edits_t *e, const char **why)
{
	char hz[SG_HANDLE_MAX_LEN + 1];

	memcpy(hz, handle, hl);
	hz[hl] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		const inject_found_t *f = &l->f[i];

		if (!inject_same(h, target, f, handle, hl))
			continue;
		if (f->where == INJECT_IN_TARGET) {
			if (inject_target_edit(e, target, hz, hl, NULL, why) < 0)
				return -1;
		} else if (e->kind[f->field] != EDIT_REPLACE)
			e->kind[f->field] = EDIT_DROP;
	}
	return 0;
}

int
inject_apply(const http_head_t *h, const char *target, const inject_list_t *l,
    const char *handle, size_t tlen, const policy_credential_t *cred, inject_edits_t *e,
    const char **why)
{
	struct inject_rule r;
	int rc;

	if (tlen > SG_HANDLE_MAX_LEN) {
		*why = "handle too long";
		return -1;
	}
	if (cred->inject.type == INJECT_HMAC || cred->inject.type == INJECT_BODY ||
	    cred->inject.type == INJECT_AWS_SIGV4)	/* awssign.h sets the token field */
		return inject_remove_all(h, target, l, handle, tlen, e, why);
	if (inject_rule_make(cred, &r, why) < 0) {
		inject_rule_free(&r);
		return -1;
	}
	if (cred->inject.type == INJECT_QUERY)
		rc = inject_apply_query(h, target, l, handle, tlen, cred, &r, e, why);
	else
		rc = inject_apply_header(h, target, l, handle, tlen, &r, e, why);
	inject_rule_free(&r);
	return rc;
}

char *
inject_hmac_value(const policy_credential_t *cred, const void *body, size_t len)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * sizeof(mac) + 1];
	crypto_auth_hmacsha256_state st;
	char *out;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)cred->secret,
	    cred->secret_len);
	crypto_auth_hmacsha256_update(&st, body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	util_hex_encode(mac, sizeof(mac), hex);
	out = inject_format(cred->inject.format, hex, strlen(hex));
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(mac, sizeof(mac));
	return out;
}

int
inject_edits_set_header(const http_head_t *h, inject_edits_t *e, const char *name,
    char *value)
{
	if (e->nadd >= INJECT_MAX_HANDLES || (e->add[e->nadd].name = strdup(name)) == NULL) {
		secmem_wipe_free(value);
		return -1;
	}
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0) {
			secmem_wipe_free(e->value[i]);
			e->value[i] = NULL;
			e->kind[i] = EDIT_DROP;
		}
	e->add[e->nadd++].value = value;
	e->secret_in_head = true;
	return 0;
}
