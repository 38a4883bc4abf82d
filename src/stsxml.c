/* stsxml.c — STS AssumeRole answers (credentials or error), a strict minimal reader. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "secmem.h"
#include "stsxml.h"
#include "util.h"

/* What is wanted where: the path under the root, and the field it fills. */
enum stsxml_field { F_AKID, F_SECRET, F_TOKEN, F_EXPIRATION, F_CODE, F_MESSAGE, F_NFIELDS };

struct stsxml_want {
	const char *root, *l1, *l2, *leaf;	/* l2 NULL: the leaf is at depth 3 */
	enum stsxml_field field;
};

static const struct stsxml_want stsxml_wants[] = {
	{"AssumeRoleResponse", "AssumeRoleResult", "Credentials", "AccessKeyId", F_AKID},
	{"AssumeRoleResponse", "AssumeRoleResult", "Credentials", "SecretAccessKey", F_SECRET},
	{"AssumeRoleResponse", "AssumeRoleResult", "Credentials", "SessionToken", F_TOKEN},
	{"AssumeRoleResponse", "AssumeRoleResult", "Credentials", "Expiration", F_EXPIRATION},
	{"ErrorResponse", "Error", NULL, "Code", F_CODE},
	{"ErrorResponse", "Error", NULL, "Message", F_MESSAGE},
};

struct stsxml_ctx {
	const char *p, *end;
	char names[STSXML_MAX_DEPTH][STSXML_MAX_NAME + 1];	/* the open elements */
	int depth;
	char *text;			/* the current element's text (wipe memory) */
	size_t tlen;
	bool seen[F_NFIELDS];
	stsxml_t *out;
	const char *why;
	int rc;
};

static int
stsxml_fail(struct stsxml_ctx *x, int rc, const char *why)
{
	if (x->rc == 0) {
		x->rc = rc;
		x->why = why;
	}
	return -1;
}

static bool
stsxml_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static void
stsxml_skip_ws(struct stsxml_ctx *x)
{
	while (x->p < x->end && stsxml_ws(*x->p))
		x->p++;
}

static bool
stsxml_name_char(char ch, bool first)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
	    (!first && ((ch >= '0' && ch <= '9') || ch == '-' || ch == '.'));
}

/* A name into out; attribute names may carry one prefix ("xmlns:x"). */
static int
stsxml_name(struct stsxml_ctx *x, char *out, bool attr)
{
	size_t n = 0;

	if (x->p >= x->end || !stsxml_name_char(*x->p, true))
		return stsxml_fail(x, STSXML_E_FORMAT, "a name expected");
	while (x->p < x->end && (stsxml_name_char(*x->p, n == 0) || (attr && *x->p == ':'))) {
		if (n == STSXML_MAX_NAME)
			return stsxml_fail(x, STSXML_E_TOO_BIG, "a name too long");
		out[n++] = *x->p++;
	}
	out[n] = '\0';
	return 0;
}

/* ' name="value"' pairs up to '>' or '/>'; *empty for '/>'. */
static int
stsxml_attributes(struct stsxml_ctx *x, bool *empty)
{
	char name[STSXML_MAX_NAME + 1], q;

	for (;;) {
		bool spaced = x->p < x->end && stsxml_ws(*x->p);

		stsxml_skip_ws(x);
		if (x->end - x->p >= 2 && x->p[0] == '/' && x->p[1] == '>') {
			x->p += 2;
			*empty = true;
			return 0;
		}
		if (x->p < x->end && *x->p == '>') {
			x->p++;
			*empty = false;
			return 0;
		}
		if (!spaced || stsxml_name(x, name, true) < 0)
			return stsxml_fail(x, STSXML_E_FORMAT, "a bad attribute");
		stsxml_skip_ws(x);
		if (x->p >= x->end || *x->p++ != '=')
			return stsxml_fail(x, STSXML_E_FORMAT, "an attribute without '='");
		stsxml_skip_ws(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return stsxml_fail(x, STSXML_E_FORMAT, "an unquoted attribute value");
		q = *x->p++;
		while (x->p < x->end && *x->p != q) {
			if (*x->p == '<' || *x->p == '&' || (unsigned char)*x->p < 0x20)
				return stsxml_fail(x, STSXML_E_FORMAT, "markup in an attribute value");
			x->p++;
		}
		if (x->p++ >= x->end)
			return stsxml_fail(x, STSXML_E_FORMAT, "an unterminated attribute value");
	}
}

static int
stsxml_text_put(struct stsxml_ctx *x, const char *s, size_t n)
{
	if (x->tlen + n > STSXML_MAX_TEXT)
		return stsxml_fail(x, STSXML_E_TOO_BIG, "an element's text too long");
	memcpy(x->text + x->tlen, s, n);
	x->tlen += n;
	return 0;
}

/* A character reference's code point as UTF-8, if it is an XML character. */
static int
stsxml_char_ref(struct stsxml_ctx *x, const char *s, size_t n)
{
	unsigned long cp = 0;
	bool hex = n > 1 && s[0] == 'x';
	char u[4];
	size_t i = hex ? 1 : 0, ul;

	if (i == n || n - i > 8)
		return stsxml_fail(x, STSXML_E_FORMAT, "a bad character reference");
	for (; i < n; i++) {
		int d = (s[i] >= '0' && s[i] <= '9') ? s[i] - '0' : !hex ? -1 :
		    (s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10 :
		    (s[i] >= 'A' && s[i] <= 'F') ? s[i] - 'A' + 10 : -1;

		if (d < 0)
			return stsxml_fail(x, STSXML_E_FORMAT, "a bad character reference");
		cp = cp * (hex ? 16 : 10) + (unsigned long)d;
	}
	if (!(cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
	    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)))
		return stsxml_fail(x, STSXML_E_FORMAT, "a reference to a non-character");
	if (cp < 0x80) {
		u[0] = (char)cp;
		ul = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		ul = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		ul = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		ul = 4;
	}
	return stsxml_text_put(x, u, ul);
}

/* An entity reference at x->p ('&'): only XML's five and character references. */
static int
stsxml_entity(struct stsxml_ctx *x)
{
	static const struct { const char *name; char ch; } known[] = {
		{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
	const char *s = x->p + 1, *semi = s;
	size_t n;

	while (semi < x->end && semi - s <= 10 && *semi != ';')
		semi++;
	if (semi >= x->end || *semi != ';')
		return stsxml_fail(x, STSXML_E_FORMAT, "an unterminated entity reference");
	n = (size_t)(semi - s);
	x->p = semi + 1;
	if (n >= 1 && s[0] == '#')
		return stsxml_char_ref(x, s + 1, n - 1);
	for (size_t i = 0; i < SG_ARRAY_LEN(known); i++)
		if (strlen(known[i].name) == n && memcmp(known[i].name, s, n) == 0)
			return stsxml_text_put(x, &known[i].ch, 1);
	return stsxml_fail(x, STSXML_E_FORMAT, "an entity other than XML's predefined ones");
}

/* Text up to the next '<' into x->text. */
static int
stsxml_text(struct stsxml_ctx *x)
{
	while (x->p < x->end && *x->p != '<') {
		unsigned char ch = (unsigned char)*x->p;

		if (ch == '&') {
			if (stsxml_entity(x) < 0)
				return -1;
			continue;
		}
		if ((ch < 0x20 && !stsxml_ws((char)ch)) || ch == 0x7f)
			return stsxml_fail(x, STSXML_E_FORMAT, "a control character in text");
		if (stsxml_text_put(x, x->p, 1) < 0)
			return -1;
		x->p++;
	}
	return 0;
}

/* --- the values ----------------------------------------------------------------------- */

static bool
stsxml_all(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || (extra != NULL && s[i] != '\0' &&
		    strchr(extra, s[i]) != NULL)))
			return false;
	return true;
}

/* n decimal digits at s. */
static int
stsxml_num(const char *s, size_t n, unsigned *out)
{
	*out = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*out = *out * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

int
stsxml_time(const char *s, size_t len, int64_t *out)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, sec;
	size_t i = 19;

	if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || stsxml_num(s, 4, &y) < 0 || stsxml_num(s + 5, 2, &mo) < 0 ||
	    stsxml_num(s + 8, 2, &d) < 0 || stsxml_num(s + 11, 2, &h) < 0 ||
	    stsxml_num(s + 14, 2, &mi) < 0 || stsxml_num(s + 17, 2, &sec) < 0)
		return -1;
	if (s[i] == '.') {
		size_t start = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 9)
			i++;
		if (i == start)
			return -1;
	}
	if (i + 1 != len || s[i] != 'Z' || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	*out = util_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
	    (sec == 60 ? 59 : sec);
	return 0;
}

static int
stsxml_keep(struct stsxml_ctx *x, const char *t, size_t n, char **dst, size_t *dlen)
{
	if ((*dst = secmem_wipe_dup(t, n)) == NULL)
		return stsxml_fail(x, STSXML_E_NOMEM, "out of memory");
	*dlen = n;
	return 0;
}

/* A wanted element's text, checked, into out. */
static int
stsxml_store(struct stsxml_ctx *x, enum stsxml_field f)
{
	stsxml_t *o = x->out;
	const char *t = x->text;
	size_t n = x->tlen;

	while (n > 0 && stsxml_ws(t[n - 1]))	/* pretty-printed: surrounding space */
		n--;
	while (n > 0 && stsxml_ws(*t)) {
		t++;
		n--;
	}
	if (x->seen[f])
		return stsxml_fail(x, STSXML_E_FORMAT, "a field given twice");
	x->seen[f] = true;
	switch (f) {
	case F_AKID:
		if (n < STSXML_AKID_MIN || n > STSXML_AKID_MAX || !stsxml_all(t, n, NULL))
			return stsxml_fail(x, STSXML_E_FORMAT, "a bad AccessKeyId");
		return stsxml_keep(x, t, n, &o->akid, &o->akid_len);
	case F_SECRET:
		if (n == 0 || n > STSXML_SECRET_MAX || !stsxml_all(t, n, "+/=_-"))
			return stsxml_fail(x, STSXML_E_FORMAT, "a bad SecretAccessKey");
		return stsxml_keep(x, t, n, &o->secret, &o->secret_len);
	case F_TOKEN:
		if (n == 0 || !stsxml_all(t, n, "+/=_-"))
			return stsxml_fail(x, STSXML_E_FORMAT, "a bad SessionToken");
		return stsxml_keep(x, t, n, &o->token, &o->token_len);
	case F_EXPIRATION:
		return stsxml_time(t, n, &o->expiration) == 0 ? 0 :
		    stsxml_fail(x, STSXML_E_FORMAT, "a bad Expiration");
	case F_CODE:
		if (n == 0 || n > STSXML_CODE_MAX || !stsxml_all(t, n, "._-"))
			return stsxml_fail(x, STSXML_E_FORMAT, "a bad error Code");
		memcpy(o->code, t, n);
		o->code[n] = '\0';
		return 0;
	default:
		n = n < STSXML_MESSAGE_MAX ? n : STSXML_MESSAGE_MAX;
		for (size_t i = 0; i < n; i++)
			o->message[i] = (t[i] >= 0x20 && t[i] < 0x7f) ? t[i] : '?';
		o->message[n] = '\0';
		return 0;
	}
}

/* The element just closed (depth x->depth, a leaf): keep its text if it is wanted. */
static int
stsxml_leaf(struct stsxml_ctx *x)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(stsxml_wants); i++) {
		const struct stsxml_want *w = &stsxml_wants[i];
		int d = w->l2 ? 4 : 3;

		if (x->depth != d || strcmp(x->names[0], w->root) != 0 ||
		    strcmp(x->names[1], w->l1) != 0 || (w->l2 && strcmp(x->names[2], w->l2) != 0) ||
		    strcmp(x->names[d - 1], w->leaf) != 0)
			continue;
		return stsxml_store(x, w->field);
	}
	return 0;
}

/* --- elements ------------------------------------------------------------------------- */

static int stsxml_element(struct stsxml_ctx *x);

/* '</name>' of the open element at x->p ("</"). */
static int
stsxml_close(struct stsxml_ctx *x)
{
	char name[STSXML_MAX_NAME + 1];

	x->p += 2;
	if (stsxml_name(x, name, false) < 0)
		return -1;
	if (strcmp(name, x->names[x->depth - 1]) != 0)
		return stsxml_fail(x, STSXML_E_FORMAT, "a closing tag that does not match");
	stsxml_skip_ws(x);
	if (x->p >= x->end || *x->p++ != '>')
		return stsxml_fail(x, STSXML_E_FORMAT, "a bad closing tag");
	return 0;
}

/* Whitespace only? */
static bool
stsxml_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!stsxml_ws(s[i]))
			return false;
	return true;
}

/* What an open element holds: text (a leaf) or elements, up to its closing tag. */
static int
stsxml_content(struct stsxml_ctx *x)
{
	bool children = false, closing;

	x->tlen = 0;
	for (;;) {
		if (stsxml_text(x) < 0)
			return -1;
		if (x->end - x->p < 2)
			return stsxml_fail(x, STSXML_E_FORMAT, "an element is not closed");
		closing = x->p[1] == '/';
		if ((children || !closing) && !stsxml_blank(x->text, x->tlen))
			return stsxml_fail(x, STSXML_E_FORMAT, "text mixed with elements");
		if (closing)
			break;
		children = true;
		if (stsxml_element(x) < 0)
			return -1;
		x->tlen = 0;
	}
	if (stsxml_close(x) < 0)
		return -1;
	return children ? 0 : stsxml_leaf(x);
}

static int
stsxml_element(struct stsxml_ctx *x)
{
	bool empty;

	if (x->p >= x->end || *x->p != '<')
		return stsxml_fail(x, STSXML_E_FORMAT, "an element expected");
	if (x->p + 1 < x->end && (x->p[1] == '!' || x->p[1] == '?'))
		return stsxml_fail(x, STSXML_E_FORMAT, "a DOCTYPE, comment, CDATA section or "
		    "processing instruction");
	if (x->depth == STSXML_MAX_DEPTH)
		return stsxml_fail(x, STSXML_E_TOO_BIG, "nested too deep");
	x->p++;
	if (stsxml_name(x, x->names[x->depth], false) < 0)
		return -1;
	x->depth++;
	if (stsxml_attributes(x, &empty) < 0)
		return -1;
	if (empty) {
		x->tlen = 0;
		if (stsxml_leaf(x) < 0)
			return -1;
	} else if (stsxml_content(x) < 0)
		return -1;
	x->depth--;
	return 0;
}

/* An optional '<?xml ...?>' declaration. */
static int
stsxml_declaration(struct stsxml_ctx *x)
{
	const char *q;

	if (x->end - x->p < 6 || memcmp(x->p, "<?xml", 5) != 0 || !stsxml_ws(x->p[5]))
		return 0;
	for (q = x->p + 6; q + 1 < x->end && !(q[0] == '?' && q[1] == '>'); q++)
		if (*q == '<' || *q == '&' || (unsigned char)*q < 0x20)
			return stsxml_fail(x, STSXML_E_FORMAT, "a bad XML declaration");
	if (q + 1 >= x->end)
		return stsxml_fail(x, STSXML_E_FORMAT, "an unterminated XML declaration");
	x->p = q + 2;
	return 0;
}

/* Which shape the document had, once read. */
static int
stsxml_result(struct stsxml_ctx *x)
{
	if (strcmp(x->names[0], "AssumeRoleResponse") == 0) {
		if (!x->seen[F_AKID] || !x->seen[F_SECRET] || !x->seen[F_TOKEN] ||
		    !x->seen[F_EXPIRATION])
			return stsxml_fail(x, STSXML_E_FORMAT, "credentials incomplete");
		return STSXML_CREDENTIALS;
	}
	if (strcmp(x->names[0], "ErrorResponse") == 0) {
		if (!x->seen[F_CODE])
			return stsxml_fail(x, STSXML_E_FORMAT, "an error without a Code");
		return STSXML_ERROR;
	}
	return stsxml_fail(x, STSXML_E_FORMAT, "neither an AssumeRoleResponse nor an "
	    "ErrorResponse");
}

int
stsxml_parse(const char *xml, size_t len, stsxml_t *out)
{
	struct stsxml_ctx x;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&x, 0, sizeof(x));
	x.out = out;
	if (xml == NULL || len > STSXML_MAX_INPUT) {
		out->why = "the answer is too large";
		return STSXML_E_TOO_BIG;
	}
	if ((x.text = secmem_wipe_alloc(STSXML_MAX_TEXT)) == NULL) {
		out->why = "out of memory";
		return STSXML_E_NOMEM;
	}
	x.p = xml;
	x.end = xml + len;
	stsxml_skip_ws(&x);
	if (stsxml_declaration(&x) == 0) {
		stsxml_skip_ws(&x);
		if (stsxml_element(&x) == 0) {
			stsxml_skip_ws(&x);
			if (x.p != x.end)
				stsxml_fail(&x, STSXML_E_FORMAT, "something after the document");
		}
	}
	rc = x.rc != 0 ? x.rc : stsxml_result(&x);
	secmem_wipe_free(x.text);
	if (rc < 0) {
		stsxml_free(out);
		out->why = x.why;
	}
	return rc;
}

void
stsxml_free(stsxml_t *x)
{
	secmem_wipe_free(x->akid);
	secmem_wipe_free(x->secret);
	secmem_wipe_free(x->token);
	sodium_memzero(x, sizeof(*x));
}
