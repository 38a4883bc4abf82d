/*
 * decode.c — Content-Encoding stages in a chain. Stage 0 undoes the last coding
 * applied; each stage inflates into its own chunk buffer and hands every filled chunk
 * to the next stage at once, the last stage's chunk to decode_deliver (limits, then
 * the caller's emit). Nothing is copied beyond what the libraries write, and no
 * stage keeps output back between calls, so feeding in pieces yields the same bytes.
 * The libraries allocate through decode_alloc, which counts and zeroes on free.
 */
#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_createDCtx_advanced: our allocator */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <sodium.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "decode.h"
#include "defaults.h"
#include "secmem.h"

enum decode_coding { DC_GZIP, DC_DEFLATE, DC_BR, DC_ZSTD };

static const char *const decode_label[] = {
	[DC_GZIP] = "gzip", [DC_DEFLATE] = "deflate", [DC_BR] = "br", [DC_ZSTD] = "zstd",
};

static const struct {
	const char *name;
	enum decode_coding coding;
} decode_names[] = {
	{"gzip", DC_GZIP}, {"x-gzip", DC_GZIP}, {"deflate", DC_DEFLATE}, {"br", DC_BR},
	{"zstd", DC_ZSTD},
};

struct decode_stage {
	enum decode_coding coding;
	bool begun;			/* got a byte */
	bool ended;			/* stream, gzip member or zstd frame complete */
	bool zinit;			/* z initialised (deflate: once two bytes came) */
	unsigned char head[2];		/* deflate: bytes seen before detection */
	size_t nhead;
	unsigned char magic[4];		/* zstd: the current frame's first bytes ... */
	size_t nmagic;			/* ... of which libzstd has taken this many */
	z_stream z;
	BrotliDecoderState *br;
	ZSTD_DCtx *zs;
	unsigned char *out;		/* SG_DECODE_CHUNK, in decode.bufs */
};

struct decode {
	struct decode_stage st[DECODE_MAX_STAGES];
	size_t n;
	decode_limits_t lim;
	uint64_t in;			/* given to decode_feed */
	uint64_t used;			/* consumed by stage 0: the ratio's denominator */
	uint64_t out;			/* handed to emit */
	size_t mem;			/* held through decode_alloc */
	int rc;				/* first error, sticky */
	bool finished;
	char err[96];
	decode_emit_fn emit;
	void *arg;
	unsigned char *bufs;		/* n chunks */
};

/* Wipe memory (secmem.h), counted: the size it keeps lets free zero and uncount it. */
static void *
decode_alloc(void *opaque, size_t len)
{
	decode_t *d = opaque;
	void *p = secmem_wipe_alloc(len);

	if (p != NULL)
		d->mem += len;
	return p;
}

static void
decode_dealloc(void *opaque, void *ptr)
{
	decode_t *d = opaque;

	if (ptr == NULL)
		return;
	d->mem -= secmem_wipe_size(ptr);
	secmem_wipe_free(ptr);
}

static voidpf
decode_zalloc(voidpf opaque, uInt items, uInt size)
{
	return decode_alloc(opaque, (size_t)items * size);
}

static void
decode_zfree(voidpf opaque, voidpf ptr)
{
	decode_dealloc(opaque, ptr);
}

static int decode_fail(decode_t *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first error; later calls return it. */
static int
decode_fail(decode_t *d, int rc, const char *fmt, ...)
{
	va_list ap;

	if (d->rc != DECODE_OK)
		return d->rc;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	d->rc = rc;
	return rc;
}

void
decode_limits_default(decode_limits_t *lim)
{
	lim->max_output = SG_DECODE_MAX_BYTES;
	lim->max_ratio = SG_DECODE_MAX_RATIO;
	lim->ratio_slack = SG_DECODE_RATIO_SLACK;
}

/* The most output allowed now; *ratio says whether the ratio is what binds. */
static uint64_t
decode_cap(const decode_t *d, bool *ratio)
{
	uint64_t cap = d->lim.max_output, r;

	*ratio = false;
	if (d->lim.max_ratio == 0)
		return cap;
	if (d->used > UINT64_MAX / d->lim.max_ratio)
		return cap;
	r = d->used * d->lim.max_ratio;
	if (r < d->lim.ratio_slack)
		r = d->lim.ratio_slack;
	if (r < cap) {
		cap = r;
		*ratio = true;
	}
	return cap;
}

/* Last stage's output: emit what the limits allow, fail if that is not all of it. */
static int
decode_deliver(decode_t *d, const unsigned char *p, size_t n)
{
	bool ratio;
	uint64_t cap = decode_cap(d, &ratio);
	uint64_t room = cap > d->out ? cap - d->out : 0;

	if (n <= room) {
		d->emit(d->arg, p, n);
		d->out += n;
		return DECODE_OK;
	}
	if (room > 0) {
		d->emit(d->arg, p, (size_t)room);
		d->out += room;
	}
	if (ratio)
		return decode_fail(d, DECODE_LIMIT, "compression ratio above %u:1",
		    (unsigned)d->lim.max_ratio);
	return decode_fail(d, DECODE_LIMIT, "decoded body larger than %llu bytes",
	    (unsigned long long)d->lim.max_output);
}

static int decode_push(decode_t *d, size_t i, const unsigned char *in, size_t len);

/* Stage i consumed some input and filled got bytes of its chunk: pass them on. */
static int
stage_output(decode_t *d, size_t i, size_t consumed, size_t got)
{
	if (i == 0)
		d->used += consumed;
	if (got == 0)
		return DECODE_OK;
	if (i + 1 == d->n)
		return decode_deliver(d, d->st[i].out, got);
	return decode_push(d, i + 1, d->st[i].out, got);
}

/* --- gzip, deflate ---------------------------------------------------------------- */

static int
zlib_error(decode_t *d, const struct decode_stage *s, int r)
{
	const char *what = decode_label[s->coding];

	if (r == Z_MEM_ERROR)
		return decode_fail(d, DECODE_NOMEM, "out of memory decoding %s", what);
	if (r == Z_NEED_DICT)
		return decode_fail(d, DECODE_CORRUPT, "%s stream needs a preset dictionary",
		    what);
	return decode_fail(d, DECODE_CORRUPT, "corrupt %s stream (%s)", what,
	    s->z.msg != NULL ? s->z.msg : "bad data");
}

/* After the end of a stream: another gzip member may follow, nothing else. */
static int
zlib_restart(decode_t *d, struct decode_stage *s)
{
	if (s->coding != DC_GZIP)
		return decode_fail(d, DECODE_CORRUPT, "data after end of deflate stream");
	if (inflateReset(&s->z) != Z_OK)
		return decode_fail(d, DECODE_CORRUPT, "cannot restart gzip stream");
	s->ended = false;
	return DECODE_OK;
}

/* Inflate in[0..len) through stage i until the input is used and the chunk not full. */
static int
zlib_run(decode_t *d, size_t i, const unsigned char *in, uInt len)
{
	struct decode_stage *s = &d->st[i];
	z_stream *z = &s->z;
	int r, rc;

	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = len;
	for (;;) {
		uInt before = z->avail_in;

		if (s->ended) {
			if (z->avail_in == 0)
				return DECODE_OK;
			if ((rc = zlib_restart(d, s)) != DECODE_OK)
				return rc;
		}
		z->next_out = s->out;
		z->avail_out = SG_DECODE_CHUNK;
		r = inflate(z, Z_NO_FLUSH);
		if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
			return zlib_error(d, s, r);	/* what the call wrote is dropped */
		s->ended = r == Z_STREAM_END;
		rc = stage_output(d, i, before - z->avail_in, SG_DECODE_CHUNK - z->avail_out);
		if (rc != DECODE_OK)
			return rc;
		if (r == Z_STREAM_END)
			continue;
		if (z->avail_in == 0 && z->avail_out != 0)
			return DECODE_OK;	/* Z_BUF_ERROR here: nothing left to do */
		if (r == Z_BUF_ERROR)
			return zlib_error(d, s, r);	/* stalled with input left */
	}
}

/* RFC 9110 deflate is zlib-wrapped, but servers also send raw deflate: check CMF/FLG. */
static int
deflate_start(decode_t *d, struct decode_stage *s, const unsigned char h[2])
{
	bool zlib = (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && (h[0] * 256 + h[1]) % 31 == 0;
	int r = inflateInit2(&s->z, zlib ? MAX_WBITS : -MAX_WBITS);

	if (r != Z_OK)
		return zlib_error(d, s, r);
	s->zinit = true;
	return DECODE_OK;
}

/* Deflate waits for its first two bytes (possibly over two feeds) to pick a format. */
static int
deflate_detect(decode_t *d, size_t i, const unsigned char **in, size_t *len)
{
	struct decode_stage *s = &d->st[i];
	int rc;

	if (s->nhead == 0 && *len >= 2)
		return deflate_start(d, s, *in);
	while (s->nhead < 2 && *len > 0) {
		s->head[s->nhead++] = **in;
		(*in)++;
		(*len)--;
	}
	if (s->nhead < 2)
		return DECODE_OK;
	if ((rc = deflate_start(d, s, s->head)) != DECODE_OK)
		return rc;
	return zlib_run(d, i, s->head, 2);
}

static int
stage_zlib(decode_t *d, size_t i, const unsigned char *in, size_t len)
{
	struct decode_stage *s = &d->st[i];
	int rc;

	if (!s->zinit && (rc = deflate_detect(d, i, &in, &len)) != DECODE_OK)
		return rc;
	if (!s->zinit)
		return DECODE_OK;
	while (len > 0) {
		uInt take = len > UINT_MAX ? UINT_MAX : (uInt)len;

		if ((rc = zlib_run(d, i, in, take)) != DECODE_OK)
			return rc;
		in += take;
		len -= take;
	}
	return DECODE_OK;
}

/* --- br --------------------------------------------------------------------------- */

static int
br_error(decode_t *d, const struct decode_stage *s)
{
	BrotliDecoderErrorCode e = BrotliDecoderGetErrorCode(s->br);

	switch (e) {
	case BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES:
	case BROTLI_DECODER_ERROR_ALLOC_TREE_GROUPS:
	case BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MAP:
	case BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_1:
	case BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_2:
	case BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES:
		return decode_fail(d, DECODE_NOMEM, "out of memory decoding br");
	default:
		return decode_fail(d, DECODE_CORRUPT, "corrupt br stream (%s)",
		    BrotliDecoderErrorString(e));
	}
}

static int
stage_br(decode_t *d, size_t i, const unsigned char *in, size_t len)
{
	struct decode_stage *s = &d->st[i];

	for (;;) {
		size_t before = len, room = SG_DECODE_CHUNK;
		uint8_t *next_out = s->out;
		BrotliDecoderResult r;
		int rc;

		if (s->ended)
			return len == 0 ? DECODE_OK :
			    decode_fail(d, DECODE_CORRUPT, "data after end of br stream");
		r = BrotliDecoderDecompressStream(s->br, &len, &in, &room, &next_out, NULL);
		if (r == BROTLI_DECODER_RESULT_ERROR)
			return br_error(d, s);		/* what the call wrote is dropped */
		s->ended = r == BROTLI_DECODER_RESULT_SUCCESS;
		rc = stage_output(d, i, before - len, SG_DECODE_CHUNK - room);
		if (rc != DECODE_OK)
			return rc;
		if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
			return DECODE_OK;
	}
}

/* --- zstd ------------------------------------------------------------------------- */

static int
zstd_error(decode_t *d, size_t r)
{
	switch (ZSTD_getErrorCode(r)) {
	case ZSTD_error_memory_allocation:
		return decode_fail(d, DECODE_NOMEM, "out of memory decoding zstd");
	case ZSTD_error_frameParameter_windowTooLarge:
		return decode_fail(d, DECODE_LIMIT, "zstd window larger than %u bytes",
		    1u << DECODE_ZSTD_WINDOW_LOG);
	default:
		return decode_fail(d, DECODE_CORRUPT, "corrupt zstd stream (%s)",
		    ZSTD_getErrorName(r));
	}
}

/*
 * Whether m[0..n) (n <= 4) starts a zstd frame (28 b5 2f fd) or a skippable frame
 * (5? 2a 4d 18). Anything else, the pre-1.0 "legacy" formats libzstd also decodes
 * included, is refused before libzstd sees it: no HTTP sender uses them, and their
 * old decoders are not what a proxy should expose (libzstd 1.5.4's v0.6 stream
 * decoder reports a whole buffer as written when it fails).
 */
static bool
zstd_magic_ok(const unsigned char *m, size_t n)
{
	static const unsigned char frame[4] = {0x28, 0xb5, 0x2f, 0xfd};
	static const unsigned char skip[4] = {0x50, 0x2a, 0x4d, 0x18};

	if (memcmp(m, frame, n) == 0)
		return true;
	return (m[0] & 0xf0) == 0x50 && memcmp(m + 1, skip + 1, n - 1) == 0;
}

/*
 * One ZSTD_decompressStream call. While a frame's first four bytes are not all
 * checked, libzstd gets only the bytes that are; a frame ends with r == 0 (one call
 * never goes past the end of a frame), and the next one is checked again.
 */
static size_t
zstd_call(struct decode_stage *s, ZSTD_outBuffer *ob, ZSTD_inBuffer *ib, bool *bad)
{
	size_t full = ib->size, before = ib->pos, r;

	*bad = false;
	if (s->nmagic < 4 && ib->pos < ib->size) {
		size_t k = 4 - s->nmagic < ib->size - ib->pos ? 4 - s->nmagic : ib->size - ib->pos;

		memcpy(s->magic + s->nmagic, (const unsigned char *)ib->src + ib->pos, k);
		if (!zstd_magic_ok(s->magic, s->nmagic + k)) {
			*bad = true;
			return 0;
		}
		ib->size = ib->pos + k;
		r = ZSTD_decompressStream(s->zs, ob, ib);
		s->nmagic += ib->pos - before;
		ib->size = full;
	} else {
		r = ZSTD_decompressStream(s->zs, ob, ib);
	}
	if (r == 0)
		s->nmagic = 0;
	return r;
}

static int
stage_zstd(decode_t *d, size_t i, const unsigned char *in, size_t len)
{
	struct decode_stage *s = &d->st[i];
	ZSTD_inBuffer ib = {in, len, 0};

	for (;;) {
		ZSTD_outBuffer ob = {s->out, SG_DECODE_CHUNK, 0};
		size_t before = ib.pos, r;
		bool bad;
		int rc;

		r = zstd_call(s, &ob, &ib, &bad);
		if (bad)
			return decode_fail(d, DECODE_CORRUPT, "not a zstd frame");
		if (ZSTD_isError(r))
			return zstd_error(d, r);	/* what the call wrote is dropped */
		if ((rc = stage_output(d, i, ib.pos - before, ob.pos)) != DECODE_OK)
			return rc;
		/* 0: a frame is done; a call that did nothing says nothing about frames */
		if (r == 0 || ib.pos != before || ob.pos != 0)
			s->ended = r == 0;
		if (ob.pos < ob.size && ib.pos == ib.size)
			return DECODE_OK;
		if (ob.pos == 0 && ib.pos == before)
			return decode_fail(d, DECODE_CORRUPT, "zstd decoder made no progress");
	}
}

/* Run stage i over in[0..len); its output goes down the chain. */
static int
decode_push(decode_t *d, size_t i, const unsigned char *in, size_t len)
{
	struct decode_stage *s = &d->st[i];

	if (len == 0)
		return DECODE_OK;
	s->begun = true;
	switch (s->coding) {
	case DC_GZIP:
	case DC_DEFLATE:
		return stage_zlib(d, i, in, len);
	case DC_BR:
		return stage_br(d, i, in, len);
	case DC_ZSTD:
		return stage_zstd(d, i, in, len);
	}
	return decode_fail(d, DECODE_CORRUPT, "bad stage");
}

int
decode_feed(decode_t *d, const void *in, size_t len, decode_emit_fn emit, void *arg)
{
	if (d->rc != DECODE_OK)
		return d->rc;
	if (d->finished)
		return decode_fail(d, DECODE_CORRUPT, "data after the end of the body");
	if (len == 0)
		return DECODE_OK;
	d->emit = emit;
	d->arg = arg;
	d->in += len;
	return decode_push(d, 0, in, len);
}

int
decode_finish(decode_t *d, decode_emit_fn emit, void *arg)
{
	(void)emit;
	(void)arg;
	if (d->rc != DECODE_OK)
		return d->rc;
	d->finished = true;
	for (size_t i = 0; i < d->n; i++) {
		const struct decode_stage *s = &d->st[i];

		if (s->begun && !s->ended)
			return decode_fail(d, DECODE_CORRUPT, "truncated %s stream",
			    decode_label[s->coding]);
	}
	return DECODE_OK;
}

const char *
decode_error(const decode_t *d)
{
	return d->err;
}

uint64_t
decode_bytes_in(const decode_t *d)
{
	return d->in;
}

uint64_t
decode_bytes_out(const decode_t *d)
{
	return d->out;
}

size_t
decode_memory(const decode_t *d)
{
	return d->mem;
}

/* --- lifecycle -------------------------------------------------------------------- */

static int
stage_init(decode_t *d, struct decode_stage *s)
{
	ZSTD_customMem mem = {decode_alloc, decode_dealloc, d};

	s->z.zalloc = decode_zalloc;
	s->z.zfree = decode_zfree;
	s->z.opaque = d;
	switch (s->coding) {
	case DC_GZIP:
		if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
			return DECODE_NOMEM;
		s->zinit = true;
		return DECODE_OK;
	case DC_DEFLATE:
		return DECODE_OK;	/* deflate_detect */
	case DC_BR:
		s->br = BrotliDecoderCreateInstance(decode_alloc, decode_dealloc, d);
		return s->br != NULL ? DECODE_OK : DECODE_NOMEM;
	case DC_ZSTD:
		if ((s->zs = ZSTD_createDCtx_advanced(mem)) == NULL)
			return DECODE_NOMEM;
		if (ZSTD_isError(ZSTD_DCtx_setParameter(s->zs, ZSTD_d_windowLogMax,
		    DECODE_ZSTD_WINDOW_LOG)))
			return DECODE_NOMEM;
		return DECODE_OK;
	}
	return DECODE_NOMEM;
}

void
decode_free(decode_t *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		struct decode_stage *s = &d->st[i];

		if (s->zinit)
			inflateEnd(&s->z);
		if (s->br != NULL)
			BrotliDecoderDestroyInstance(s->br);
		if (s->zs != NULL)
			ZSTD_freeDCtx(s->zs);
	}
	decode_dealloc(d, d->bufs);
	sodium_memzero(d, sizeof(*d));
	free(d);
}

/* A decoder for codings v[0..n), in the order they were applied. */
static int
decode_make(const enum decode_coding *v, size_t n, const decode_limits_t *lim,
    decode_t **out)
{
	decode_t *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return DECODE_NOMEM;
	if (lim != NULL)
		d->lim = *lim;
	else
		decode_limits_default(&d->lim);
	d->n = n;
	/* zeroed: a library that misreports its output must not show old heap bytes */
	if ((d->bufs = decode_alloc(d, n * SG_DECODE_CHUNK)) == NULL)
		goto fail;
	memset(d->bufs, 0, n * SG_DECODE_CHUNK);
	for (size_t i = 0; i < n; i++) {
		d->st[i].coding = v[n - 1 - i];
		d->st[i].out = d->bufs + i * SG_DECODE_CHUNK;
		if (stage_init(d, &d->st[i]) != DECODE_OK)
			goto fail;
	}
	*out = d;
	return DECODE_OK;
fail:
	decode_free(d);
	return DECODE_NOMEM;
}

/* --- lists ------------------------------------------------------------------------ */

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Next sep-separated element of s[*at..len), trimmed, as [*b, *e); false at the end. */
static bool
list_next(const char *s, size_t len, char sep, size_t *at, size_t *b, size_t *e)
{
	size_t i = *at;

	if (i > len)
		return false;
	while (i < len && s[i] != sep)
		i++;
	*b = *at;
	*e = i;
	*at = i + 1;
	while (*b < *e && is_ows(s[*b]))
		(*b)++;
	while (*e > *b && is_ows(s[*e - 1]))
		(*e)--;
	return true;
}

static bool
token_is(const char *t, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(t, name, len) == 0;
}

static bool
coding_lookup(const char *t, size_t len, enum decode_coding *c)
{
	for (size_t k = 0; k < SG_ARRAY_LEN(decode_names); k++) {
		if (token_is(t, len, decode_names[k].name)) {
			*c = decode_names[k].coding;
			return true;
		}
	}
	return false;
}

bool
decode_coding_supported(const char *token, size_t len)
{
	enum decode_coding c;

	return token_is(token, len, "identity") || coding_lookup(token, len, &c);
}

/* RFC 9110 tchar: what a coding name may be made of. */
static bool
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* "unsupported content coding "x"": the token is quoted only if it looks like one. */
static int
why_unsupported(const char *t, size_t len, char *why, size_t whylen)
{
	bool plain = len <= 32;

	for (size_t k = 0; k < len && plain; k++)
		plain = is_tchar((unsigned char)t[k]);
	if (why == NULL || whylen == 0)
		return DECODE_UNSUPPORTED;
	if (plain)
		snprintf(why, whylen, "unsupported content coding \"%.*s\"", (int)len, t);
	else
		snprintf(why, whylen, "unsupported content coding (%zu bytes)", len);
	return DECODE_UNSUPPORTED;
}

static void
why_set(char *why, size_t whylen, const char *msg)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "%s", msg);
}

int
decode_new(const char *value, size_t len, const decode_limits_t *lim, decode_t **out,
    char *why, size_t whylen)
{
	enum decode_coding v[DECODE_MAX_STAGES];
	size_t n = 0, at = 0, b, e;
	int rc;

	*out = NULL;
	why_set(why, whylen, "");
	while (value != NULL && list_next(value, len, ',', &at, &b, &e)) {
		if (e == b || token_is(value + b, e - b, "identity"))
			continue;
		if (n == DECODE_MAX_STAGES) {
			if (why != NULL && whylen > 0)
				snprintf(why, whylen, "more than %d content codings",
				    DECODE_MAX_STAGES);
			return DECODE_UNSUPPORTED;
		}
		if (!coding_lookup(value + b, e - b, &v[n++]))
			return why_unsupported(value + b, e - b, why, whylen);
	}
	if (n == 0)
		return DECODE_OK;
	if ((rc = decode_make(v, n, lim, out)) != DECODE_OK)
		why_set(why, whylen, "out of memory");
	return rc;
}

/* --- Accept-Encoding -------------------------------------------------------------- */

/* RFC 9110 qvalue of zero: "0", "0.", "0.0" .. "0.000". */
static bool
qvalue_is_zero(const char *v, size_t len)
{
	if (len == 0 || len > 5 || v[0] != '0')
		return false;
	if (len == 1)
		return true;
	if (v[1] != '.')
		return false;
	for (size_t k = 2; k < len; k++) {
		if (v[k] != '0')
			return false;
	}
	return true;
}

/* Whether the parameters p[0..len) (after the first ';') give a weight of zero. */
static bool
weight_is_zero(const char *p, size_t len)
{
	size_t at = 0, b, e;

	while (list_next(p, len, ';', &at, &b, &e)) {
		if (e - b >= 2 && (p[b] == 'q' || p[b] == 'Q') && p[b + 1] == '=')
			return qvalue_is_zero(p + b + 2, e - b - 2);
	}
	return false;
}

static int
out_append(char *out, size_t outlen, size_t *w, const char *s, size_t len)
{
	if (len >= outlen - *w)
		return -1;
	memcpy(out + *w, s, len);
	*w += len;
	return 0;
}

/* Keep an Accept-Encoding element whose coding sealgate decodes, or "*;q=0"; never
 * one with a control character (not a field value: it would not be a header). */
static bool
accept_keep(const char *el, size_t len)
{
	size_t c = 0, ce;

	for (size_t k = 0; k < len; k++) {
		if (((unsigned char)el[k] < 0x20 && el[k] != '\t') || el[k] == 0x7f)
			return false;
	}
	while (c < len && el[c] != ';')
		c++;
	ce = c;
	while (ce > 0 && is_ows(el[ce - 1]))
		ce--;
	if (token_is(el, ce, "*"))
		return c < len && weight_is_zero(el + c + 1, len - c - 1);
	return decode_coding_supported(el, ce);
}

ssize_t
decode_accept_encoding(const char *value, size_t len, char *out, size_t outlen)
{
	size_t at = 0, b, e, w = 0;

	if (outlen == 0)
		return -1;
	while (value != NULL && list_next(value, len, ',', &at, &b, &e)) {
		if (e == b || !accept_keep(value + b, e - b))
			continue;
		if ((w > 0 && out_append(out, outlen, &w, ", ", 2) < 0) ||
		    out_append(out, outlen, &w, value + b, e - b) < 0)
			return -1;
	}
	if (w == 0 && out_append(out, outlen, &w, "identity", 8) < 0)
		return -1;
	out[w] = '\0';
	return (ssize_t)w;
}
