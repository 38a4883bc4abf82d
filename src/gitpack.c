/* gitpack.c — a streaming walk of a packfile's commits (gitpack.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zlib.h>

#include "gitpack.h"

#define GP_HASH_MAX	32
#define GP_SCRATCH	16384	/* inflate output of objects that are not kept */

enum gp_state { GP_HEADER, GP_OBJHDR, GP_OFS, GP_REF, GP_DATA, GP_TRAILER, GP_FAILED };
enum { GP_COMMIT = 1, GP_TREE = 2, GP_BLOB = 3, GP_TAG = 4, GP_OFS_DELTA = 6,
	GP_REF_DELTA = 7 };

typedef struct gp_commit {
	unsigned char id[GP_HASH_MAX];
	uint64_t off;			/* where its object starts in the pack */
	unsigned char *content;
	size_t len;
	unsigned char *parents;		/* nparents ids of hash_len bytes */
	size_t nparents;
} gp_commit_t;

struct gitpack {
	size_t hlen;
	enum gp_state st;
	unsigned char hdr[12];
	size_t nhdr;
	uint32_t count, seen;
	uint64_t pos;			/* pack bytes consumed */
	/* the object being read */
	uint64_t obj_off, size, ofs;
	int type, shift, base;		/* base: kept commit index of a delta, or -1 */
	bool first;			/* the next header byte is the object's first */
	unsigned char ref[GP_HASH_MAX];
	size_t nref;
	unsigned char *out;		/* a kept object's inflated bytes (size + 1) */
	z_stream z;
	bool zinit;
	size_t trailer;
	gp_commit_t *c;
	size_t nc, kept;
	unsigned char scratch[GP_SCRATCH];
};

/* --- SHA-1 (libsodium has none; git's object ids need it) -------------------------- */

typedef struct gp_sha1 {
	uint32_t h[5];
	uint64_t len;
	unsigned char buf[64];
	size_t n;
} gp_sha1_t;

#define GP_ROL(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

static void
gp_sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f, k, t;

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = GP_ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		t = GP_ROL(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = GP_ROL(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

static void
gp_sha1_init(gp_sha1_t *s)
{
	static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
	    0xc3d2e1f0};

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->n = 0;
}

static void
gp_sha1_update(gp_sha1_t *s, const unsigned char *p, size_t len)
{
	s->len += len;
	while (len > 0) {
		size_t k = 64 - s->n < len ? 64 - s->n : len;

		memcpy(s->buf + s->n, p, k);
		s->n += k;
		p += k;
		len -= k;
		if (s->n == 64) {
			gp_sha1_block(s->h, s->buf);
			s->n = 0;
		}
	}
}

static void
gp_sha1_final(gp_sha1_t *s, unsigned char out[20])
{
	uint64_t bits = s->len * 8;
	unsigned char pad = 0x80, zero = 0, lenb[8];

	gp_sha1_update(s, &pad, 1);
	while (s->n != 56)
		gp_sha1_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
	gp_sha1_update(s, lenb, 8);
	for (int i = 0; i < 20; i++)
		out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* The object id of a commit: hash("commit LEN\0" content). */
static void
gp_commit_id(const gitpack_t *p, const unsigned char *content, size_t len,
    unsigned char *id)
{
	char head[40];
	int n = snprintf(head, sizeof(head), "commit %zu", len);

	if (p->hlen == 20) {
		gp_sha1_t s;

		gp_sha1_init(&s);
		gp_sha1_update(&s, (const unsigned char *)head, (size_t)n + 1);
		gp_sha1_update(&s, content, len);
		gp_sha1_final(&s, id);
	} else {
		crypto_hash_sha256_state s;

		crypto_hash_sha256_init(&s);
		crypto_hash_sha256_update(&s, (const unsigned char *)head, (size_t)n + 1);
		crypto_hash_sha256_update(&s, content, len);
		crypto_hash_sha256_final(&s, id);
	}
}

/* --- kept commits --------------------------------------------------------------------- */

static int
gp_find_id(const gitpack_t *p, const unsigned char *id)
{
	for (size_t i = 0; i < p->nc; i++)
		if (memcmp(p->c[i].id, id, p->hlen) == 0)
			return (int)i;
	return -1;
}

static int
gp_find_off(const gitpack_t *p, uint64_t off)
{
	for (size_t i = 0; i < p->nc; i++)
		if (p->c[i].off == off)
			return (int)i;
	return -1;
}

static int
gp_hexval(unsigned char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int
gp_unhex(const unsigned char *s, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = gp_hexval(s[2 * i]), lo = gp_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The "parent ID" lines after "tree ID": into c->parents. -1 when malformed. */
static int
gp_parse_parents(const gitpack_t *p, gp_commit_t *c)
{
	const unsigned char *s = c->content, *end = s + c->len;
	size_t hx = p->hlen * 2, n = 0;

	if ((size_t)(end - s) < 6 + hx || memcmp(s, "tree ", 5) != 0 || s[5 + hx] != '\n')
		return -1;
	s += 6 + hx;
	while ((size_t)(end - s) >= 8 + hx && memcmp(s, "parent ", 7) == 0 && s[7 + hx] == '\n') {
		unsigned char *v = realloc(c->parents, (n + 1) * p->hlen);

		if (v == NULL)
			return -1;
		c->parents = v;
		if (gp_unhex(s + 7, p->hlen, v + n * p->hlen) < 0)
			return -1;
		c->nparents = ++n;
		s += 8 + hx;
	}
	return 0;
}

/* A commit's content (taken over) is kept with its id and parents. */
static int
gp_keep(gitpack_t *p, unsigned char *content, size_t len)
{
	gp_commit_t *v, *c;

	if (p->nc == GITPACK_MAX_COMMITS || p->kept + len > GITPACK_MAX_KEPT_BYTES ||
	    (v = realloc(p->c, (p->nc + 1) * sizeof(*v))) == NULL) {
		free(content);
		return 0;		/* not kept: the walk cannot pass here */
	}
	p->c = v;
	c = &v[p->nc];
	memset(c, 0, sizeof(*c));
	c->content = content;
	c->len = len;
	c->off = p->obj_off;
	gp_commit_id(p, content, len, c->id);
	if (gp_parse_parents(p, c) < 0) {
		free(c->parents);
		free(content);
		return -1;
	}
	p->nc++;
	p->kept += len;
	return 0;
}

/* --- deltas --------------------------------------------------------------------------- */

static int
gp_delta_varint(const unsigned char **s, const unsigned char *end, uint64_t *v)
{
	int shift = 0;

	*v = 0;
	do {
		if (*s == end || shift > 56)
			return -1;
		*v |= (uint64_t)(**s & 0x7f) << shift;
		shift += 7;
	} while (*(*s)++ & 0x80);
	return 0;
}

/* One copy instruction (cmd has bit 7): offset and size from the bytes its bits name. */
static int
gp_delta_copy(unsigned cmd, const unsigned char **s, const unsigned char *end,
    uint64_t *off, uint64_t *size)
{
	*off = *size = 0;
	for (int i = 0; i < 7; i++) {
		if (!(cmd & (1u << i)))
			continue;
		if (*s == end)
			return -1;
		if (i < 4)
			*off |= (uint64_t)*(*s)++ << (8 * i);
		else
			*size |= (uint64_t)*(*s)++ << (8 * (i - 4));
	}
	if (*size == 0)
		*size = 0x10000;
	return 0;
}

/* Apply delta d[0..n) to base: a malloc'd result, or NULL (malformed or too big). */
static unsigned char *
gp_delta_apply(const gp_commit_t *base, const unsigned char *d, size_t n, size_t *outlen)
{
	const unsigned char *s = d, *end = d + n;
	uint64_t srclen, dstlen, off, size;
	unsigned char *out;
	size_t o = 0;

	if (gp_delta_varint(&s, end, &srclen) < 0 || gp_delta_varint(&s, end, &dstlen) < 0 ||
	    srclen != base->len || dstlen > GITPACK_MAX_COMMIT_BYTES ||
	    (out = malloc(dstlen + 1)) == NULL)
		return NULL;
	while (s < end) {
		unsigned cmd = *s++;

		if (cmd & 0x80) {
			if (gp_delta_copy(cmd, &s, end, &off, &size) < 0 || off + size > srclen ||
			    o + size > dstlen)
				goto bad;
			memcpy(out + o, base->content + off, size);
		} else {
			size = cmd;
			if (cmd == 0 || (size_t)(end - s) < size || o + size > dstlen)
				goto bad;
			memcpy(out + o, s, size);
			s += size;
		}
		o += size;
	}
	if (o != dstlen)
		goto bad;
	*outlen = o;
	return out;
bad:
	free(out);
	return NULL;
}

/* --- the object stream ---------------------------------------------------------------- */

gitpack_t *
gitpack_new(size_t hash_len)
{
	gitpack_t *p;

	if (hash_len != 20 && hash_len != 32)
		return NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->hlen = hash_len;
	p->st = GP_HEADER;
	return p;
}

void
gitpack_free(gitpack_t *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nc; i++) {
		free(p->c[i].content);
		free(p->c[i].parents);
	}
	free(p->c);
	free(p->out);
	if (p->zinit)
		inflateEnd(&p->z);
	free(p);
}

static int
gp_fail(gitpack_t *p)
{
	p->st = GP_FAILED;
	return -1;
}

static int
gp_header(gitpack_t *p)
{
	uint32_t ver = (uint32_t)p->hdr[4] << 24 | (uint32_t)p->hdr[5] << 16 |
	    (uint32_t)p->hdr[6] << 8 | p->hdr[7];

	if (memcmp(p->hdr, "PACK", 4) != 0 || (ver != 2 && ver != 3))
		return gp_fail(p);
	p->count = (uint32_t)p->hdr[8] << 24 | (uint32_t)p->hdr[9] << 16 |
	    (uint32_t)p->hdr[10] << 8 | p->hdr[11];
	p->st = p->count ? GP_OBJHDR : GP_TRAILER;
	p->first = true;
	return 0;
}

/* The object's headers are read: what to keep of it, and inflate from here. */
static int
gp_data_start(gitpack_t *p)
{
	bool keep = false;

	if (p->size > GITPACK_MAX_OBJECT_BYTES)
		return gp_fail(p);
	p->base = -1;
	if (p->type == GP_OFS_DELTA)
		p->base = gp_find_off(p, p->obj_off - p->ofs);
	else if (p->type == GP_REF_DELTA)
		p->base = gp_find_id(p, p->ref);
	if (p->type == GP_COMMIT || p->base >= 0)
		keep = p->size <= GITPACK_MAX_COMMIT_BYTES;
	free(p->out);
	p->out = NULL;
	if (keep && (p->out = malloc(p->size + 1)) == NULL)
		keep = false;		/* not kept: cannot prove through it */
	if (!p->zinit) {
		memset(&p->z, 0, sizeof(p->z));
		if (inflateInit(&p->z) != Z_OK)
			return gp_fail(p);
		p->zinit = true;
	} else if (inflateReset(&p->z) != Z_OK)
		return gp_fail(p);
	p->st = GP_DATA;
	return 0;
}

/* The object's zlib stream ended: keep a commit, resolve a delta on a kept commit. */
static int
gp_object_done(gitpack_t *p)
{
	unsigned char *res;
	size_t n;

	if (p->z.total_out != p->size)
		return gp_fail(p);
	if (p->out != NULL && p->type == GP_COMMIT) {
		res = p->out;
		p->out = NULL;
		if (gp_keep(p, res, p->size) < 0)
			return gp_fail(p);
	} else if (p->out != NULL) {
		res = gp_delta_apply(&p->c[p->base], p->out, p->size, &n);
		if (res == NULL)
			return gp_fail(p);
		if (gp_keep(p, res, n) < 0)
			return gp_fail(p);
	}
	free(p->out);
	p->out = NULL;
	p->st = ++p->seen == p->count ? GP_TRAILER : GP_OBJHDR;
	p->first = true;
	return 0;
}

/* Inflate from in; *used: input consumed. */
static int
gp_inflate(gitpack_t *p, const unsigned char *in, size_t len, size_t *used)
{
	int rc;

	p->z.next_in = (unsigned char *)(uintptr_t)in;
	p->z.avail_in = (uInt)len;
	do {
		if (p->out != NULL) {
			if (p->z.total_out > p->size)
				return gp_fail(p);
			p->z.next_out = p->out + p->z.total_out;
			p->z.avail_out = (uInt)(p->size + 1 - p->z.total_out);
		} else {
			p->z.next_out = p->scratch;
			p->z.avail_out = sizeof(p->scratch);
		}
		rc = inflate(&p->z, Z_NO_FLUSH);
		if (p->z.total_out > p->size || (rc != Z_OK && rc != Z_STREAM_END &&
		    rc != Z_BUF_ERROR))
			return gp_fail(p);
		*used = len - p->z.avail_in;
		if (rc == Z_STREAM_END)
			return gp_object_done(p);
	} while (rc != Z_BUF_ERROR && (p->z.avail_in > 0 || p->z.avail_out == 0));
	return 0;
}

/* One byte of an object's type-and-size header. */
static int
gp_objhdr_byte(gitpack_t *p, unsigned char b)
{
	if (p->first) {
		p->obj_off = p->pos;
		p->type = (b >> 4) & 7;
		p->size = b & 15;
		p->shift = 4;
		p->first = false;
		if (p->type == 0 || p->type == 5)
			return gp_fail(p);
	} else {
		if (p->shift > 57)
			return gp_fail(p);
		p->size |= (uint64_t)(b & 0x7f) << p->shift;
		p->shift += 7;
	}
	if (b & 0x80)
		return 0;
	p->ofs = 0;
	p->nref = 0;
	p->first = true;	/* for the OFS_DELTA varint */
	if (p->type == GP_OFS_DELTA)
		p->st = GP_OFS;
	else if (p->type == GP_REF_DELTA)
		p->st = GP_REF;
	else
		return gp_data_start(p);
	return 0;
}

/* One byte of an OFS_DELTA's base offset (git's offset varint). */
static int
gp_ofs_byte(gitpack_t *p, unsigned char b)
{
	if (!p->first) {
		if (p->ofs > (UINT64_MAX >> 8))
			return gp_fail(p);
		p->ofs = (p->ofs + 1) << 7;
	}
	p->ofs |= b & 0x7f;
	p->first = false;
	if (b & 0x80)
		return 0;
	if (p->ofs == 0 || p->ofs > p->obj_off)
		return gp_fail(p);
	return gp_data_start(p);
}

/* Bytes of one state; returns what it used (at least 1 unless failed). */
static size_t
gp_step(gitpack_t *p, const unsigned char *s, size_t len)
{
	size_t used = 1;

	switch (p->st) {
	case GP_HEADER:
		p->hdr[p->nhdr++] = s[0];
		if (p->nhdr == sizeof(p->hdr))
			gp_header(p);
		break;
	case GP_OBJHDR:
		gp_objhdr_byte(p, s[0]);
		break;
	case GP_OFS:
		gp_ofs_byte(p, s[0]);
		break;
	case GP_REF:
		p->ref[p->nref++] = s[0];
		if (p->nref == p->hlen)
			gp_data_start(p);
		break;
	case GP_DATA:
		used = 0;
		gp_inflate(p, s, len, &used);
		break;
	case GP_TRAILER:
		used = len;
		p->trailer += len;
		break;
	case GP_FAILED:
		used = 0;
		break;
	}
	return used;
}

int
gitpack_feed(gitpack_t *p, const void *data, size_t len)
{
	const unsigned char *s = data;

	while (len > 0 && p->st != GP_FAILED) {
		size_t used = gp_step(p, s, len);

		p->pos += used;
		s += used;
		len -= used;
		if (used == 0 && p->st == GP_DATA)
			break;		/* inflate wants more input */
	}
	return p->st == GP_FAILED ? -1 : 0;
}

bool
gitpack_complete(const gitpack_t *p)
{
	return p->st == GP_TRAILER && p->trailer == p->hlen;
}

bool
gitpack_failed(const gitpack_t *p)
{
	return p->st == GP_FAILED;
}

size_t
gitpack_ncommits(const gitpack_t *p)
{
	return p->nc;
}

bool
gitpack_reaches(const gitpack_t *p, const char *from_hex, const char *to_hex)
{
	unsigned char from[GP_HASH_MAX], to[GP_HASH_MAX];
	int *stack;
	bool *seen, found = false;
	size_t n = 0;

	if (strlen(from_hex) != p->hlen * 2 || strlen(to_hex) != p->hlen * 2 ||
	    gp_unhex((const unsigned char *)from_hex, p->hlen, from) < 0 ||
	    gp_unhex((const unsigned char *)to_hex, p->hlen, to) < 0)
		return false;
	if (memcmp(from, to, p->hlen) == 0)
		return true;
	stack = malloc((p->nc + 1) * sizeof(*stack));
	seen = calloc(p->nc + 1, sizeof(*seen));
	if (stack != NULL && seen != NULL && (stack[0] = gp_find_id(p, from)) >= 0) {
		seen[stack[0]] = true;
		n = 1;
	}
	while (n > 0 && !found) {
		const gp_commit_t *c = &p->c[stack[--n]];

		for (size_t i = 0; i < c->nparents && !found; i++) {
			const unsigned char *par = c->parents + i * p->hlen;
			int k = gp_find_id(p, par);

			found = memcmp(par, to, p->hlen) == 0;
			if (k >= 0 && !seen[k]) {
				seen[k] = true;
				stack[n++] = k;
			}
		}
	}
	free(stack);
	free(seen);
	return found;
}
