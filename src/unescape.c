/* unescape.c — streaming decoder of JSON/JS escapes, percent-encoding, HTML references. */
#include <string.h>

#include "unescape.h"

enum { UD_IDLE, UD_BS, UD_HEX, UD_PCT, UD_AMP, UD_NUM0, UD_DEC, UD_NHEX, UD_NAME };

static void
out_put(unescape_out_t *o, unsigned char c, uint64_t start)
{
	if (o->n < UNESCAPE_SYMS_MAX)
		o->v[o->n++] = (unescape_sym_t){start, c};
}

/* A code point as UTF-8 symbols sharing one raw start. */
static void
out_put_cp(unescape_out_t *o, uint32_t cp, uint64_t start)
{
	if (cp < 0x80) {
		out_put(o, (unsigned char)cp, start);
	} else if (cp < 0x800) {
		out_put(o, (unsigned char)(0xc0 | cp >> 6), start);
		out_put(o, (unsigned char)(0x80 | (cp & 0x3f)), start);
	} else if (cp < 0x10000) {
		out_put(o, (unsigned char)(0xe0 | cp >> 12), start);
		out_put(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)), start);
		out_put(o, (unsigned char)(0x80 | (cp & 0x3f)), start);
	} else {
		out_put(o, (unsigned char)(0xf0 | cp >> 18), start);
		out_put(o, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)), start);
		out_put(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)), start);
		out_put(o, (unsigned char)(0x80 | (cp & 0x3f)), start);
	}
}

void
unescape_init(unescape_t *d)
{
	d->state = UD_IDLE;
	d->npend = d->ndig = 0;
	d->val = 0;
}

/* Not an escape after all: its bytes are text, each its own symbol. */
static void
unescape_literal(unescape_t *d, unescape_out_t *o)
{
	for (uint8_t i = 0; i < d->npend; i++)
		out_put(o, d->pend[i], d->pstart + i);
	unescape_init(d);
}

static int
unescape_simple(unsigned char b)
{
	switch (b) {
	case '/': case '\\': case '"': case '\'':
		return b;
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return -1;
	}
}

static int
unescape_named(const unsigned char *name, size_t n)
{
	static const struct { const char *name; char c; } tab[] = {
		{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
		{"sol", '/'}, {"plus", '+'}, {"equals", '='}, {"colon", ':'},
	};

	for (size_t i = 0; i < SG_ARRAY_LEN(tab); i++)
		if (strlen(tab[i].name) == n && memcmp(tab[i].name, name, n) == 0)
			return (unsigned char)tab[i].c;
	return -1;
}

static bool
is_alpha(unsigned char b)
{
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
}

/* One byte inside an escape; false when the escape turned out invalid at b. */
static bool
unescape_in_escape(unescape_t *d, unsigned char b, unescape_out_t *o)
{
	int h = util_hex_nibble((char)b), c;

	switch (d->state) {
	case UD_BS:
		if (b == 'u' || b == 'x') {
			d->state = UD_HEX;
			d->need = b == 'u' ? 4 : 2;
			return true;
		}
		if ((c = unescape_simple(b)) < 0)
			return false;
		out_put(o, (unsigned char)c, d->pstart);
		unescape_init(d);
		return true;
	case UD_HEX:
	case UD_PCT:
		if (h < 0)
			return false;
		d->val = d->val << 4 | (uint32_t)h;
		if (++d->ndig < (d->state == UD_PCT ? 2 : d->need))
			return true;
		if (d->state == UD_PCT)
			out_put(o, (unsigned char)d->val, d->pstart);	/* a byte */
		else
			out_put_cp(o, d->val, d->pstart);	/* a character */
		unescape_init(d);
		return true;
	case UD_AMP:
		if (b == '#') {
			d->state = UD_NUM0;
			return true;
		}
		d->state = UD_NAME;
		return is_alpha(b);
	case UD_NUM0:
		if (b == 'x' || b == 'X') {
			d->state = UD_NHEX;
			return true;
		}
		if (b < '0' || b > '9')
			return false;
		d->state = UD_DEC;
		d->val = (uint32_t)(b - '0');
		d->ndig = 1;
		return true;
	default:
		return false;	/* UD_DEC, UD_NHEX, UD_NAME: see unescape_reference */
	}
}

/*
 * Inside a character reference (&#DD, &#xHH, &name). Returns 1 when b was taken, 0 when
 * the reference ended before b (b is to be read as text), -1 when invalid.
 */
static int
unescape_reference(unescape_t *d, unsigned char b, unescape_out_t *o)
{
	int h = d->state == UD_NHEX ? util_hex_nibble((char)b) : (b >= '0' && b <= '9') ?
	    b - '0' : -1;
	int c;

	if (d->state == UD_NAME) {
		if (is_alpha(b))
			return d->npend < 9 ? 1 : -1;
		if (b != ';' || (c = unescape_named(d->pend + 1, d->npend - 1)) < 0)
			return -1;
		out_put(o, (unsigned char)c, d->pstart);
		unescape_init(d);
		return 1;
	}
	if (h >= 0) {
		d->val = d->val * (d->state == UD_NHEX ? 16 : 10) + (uint32_t)h;
		d->ndig++;
		return d->val <= 0x10ffff ? 1 : -1;
	}
	if (d->ndig == 0)
		return -1;
	out_put_cp(o, d->val, d->pstart);
	unescape_init(d);
	return b == ';' ? 1 : 0;
}

/* Decode one raw byte at offset pos into zero or more symbols. */
void
unescape_byte(unescape_t *d, unsigned char b, uint64_t pos, unescape_out_t *o)
{
	if (d->state != UD_IDLE) {
		int r = 1;

		if (d->npend >= UNESCAPE_PEND_MAX)
			r = -1;
		else if (d->state >= UD_DEC)
			r = unescape_reference(d, b, o);
		else if (!unescape_in_escape(d, b, o))
			r = -1;
		if (r == 1) {
			if (d->state != UD_IDLE)
				d->pend[d->npend++] = b;
			return;
		}
		if (r < 0)
			unescape_literal(d, o);
	}
	if (b == '\\' || b == '%' || b == '&') {
		d->state = b == '\\' ? UD_BS : b == '%' ? UD_PCT : UD_AMP;
		d->pstart = pos;
		d->pend[0] = b;
		d->npend = 1;
		return;
	}
	out_put(o, b, pos);
}

/* End of input: an unfinished escape is text, except a numeric reference without ';'. */
void
unescape_flush(unescape_t *d, unescape_out_t *o)
{
	if ((d->state == UD_DEC || d->state == UD_NHEX) && d->ndig > 0) {
		out_put_cp(o, d->val, d->pstart);
		unescape_init(d);
		return;
	}
	if (d->state != UD_IDLE)
		unescape_literal(d, o);
}

bool
unescape_pending(const unescape_t *u, uint64_t *start)
{
	*start = u->pstart;
	return u->state != UD_IDLE;
}

bool
unescape_may_follow(unsigned char intro, unsigned char b)
{
	switch (intro) {
	case '%':
		return util_hex_nibble((char)b) >= 0;
	case '&':
		return b == '#' || is_alpha(b);
	case '\\':
		return b == 'u' || b == 'x' || unescape_simple(b) >= 0;
	default:
		return false;
	}
}
