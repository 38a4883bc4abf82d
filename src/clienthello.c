/*
 * clienthello.c — SNI from a TLS ClientHello (see clienthello.h for the contract).
 *
 * Two steps: gather the handshake bytes carried by the leading type-22 records into
 * ch->hs, then read the ClientHello message (RFC 8446 section 4.1.2, same layout as TLS
 * 1.0-1.2) field by field with a bounds-checked reader.
 */
#include <stdbool.h>
#include <string.h>

#include "clienthello.h"

#define REC_HANDSHAKE	22
#define HS_CLIENT_HELLO	1
#define HS_HDR		4	/* msg_type, uint24 length */
#define EXT_SERVER_NAME	0
#define SNI_HOST_NAME	0
#define SESSION_ID_MAX	32

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static size_t
rd_uint(struct rd *r, size_t n)
{
	size_t v = 0;

	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v = v << 8 | r->p[r->off++];
	return v;
}

/* A sub-reader over the next n bytes of r (which it skips). */
static struct rd
rd_sub(struct rd *r, size_t n)
{
	struct rd s = { .p = NULL, .len = 0, .off = 0, .bad = true };

	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return s;
	}
	s.p = r->p + r->off;
	s.len = n;
	s.bad = false;
	r->off += n;
	return s;
}

/* Gather record payloads into ch->hs until it holds a whole handshake message. */
static enum clienthello_res
gather(clienthello_t *ch, const uint8_t *buf, size_t len, size_t *msglen)
{
	size_t off = 0;

	ch->hslen = 0;
	for (;;) {
		if (ch->hslen >= HS_HDR) {
			*msglen = (size_t)ch->hs[1] << 16 | (size_t)ch->hs[2] << 8 | ch->hs[3];
			if (ch->hs[0] != HS_CLIENT_HELLO ||
			    *msglen > sizeof(ch->hs) - HS_HDR)
				return CLIENTHELLO_NOT_TLS;
			if (ch->hslen >= HS_HDR + *msglen)
				return CLIENTHELLO_SNI;	/* complete; the caller reads it */
		}
		if (off >= CLIENTHELLO_PEEK_MAX)
			return CLIENTHELLO_NOT_TLS;
		if (len - off < CLIENTHELLO_REC_HDR)
			return CLIENTHELLO_MORE;
		size_t rlen = (size_t)buf[off + 3] << 8 | buf[off + 4];
		if (buf[off] != REC_HANDSHAKE || buf[off + 1] != 3 || rlen == 0 ||
		    rlen > CLIENTHELLO_REC_MAX)
			return CLIENTHELLO_NOT_TLS;
		if (len - off - CLIENTHELLO_REC_HDR < rlen)
			return off + CLIENTHELLO_REC_HDR + rlen > CLIENTHELLO_PEEK_MAX ?
			    CLIENTHELLO_NOT_TLS : CLIENTHELLO_MORE;
		if (rlen > sizeof(ch->hs) - ch->hslen)
			return CLIENTHELLO_NOT_TLS;
		memcpy(ch->hs + ch->hslen, buf + off + CLIENTHELLO_REC_HDR, rlen);
		ch->hslen += rlen;
		off += CLIENTHELLO_REC_HDR + rlen;
	}
}

static bool
sni_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_' || c == '.';
}

/* The server_name extension's body: the first host_name entry, checked and copied. */
static enum clienthello_res
read_server_name(clienthello_t *ch, struct rd *ext)
{
	struct rd list = rd_sub(ext, rd_uint(ext, 2));

	if (ext->bad || ext->off != ext->len)
		return CLIENTHELLO_NOT_TLS;
	while (!list.bad && list.off < list.len) {
		size_t type = rd_uint(&list, 1);
		struct rd name = rd_sub(&list, rd_uint(&list, 2));

		if (list.bad)
			break;
		if (type != SNI_HOST_NAME)
			continue;
		if (name.len == 0 || name.len > CLIENTHELLO_SNI_MAX)
			return CLIENTHELLO_NOT_TLS;
		for (size_t i = 0; i < name.len; i++) {
			uint8_t c = name.p[i];

			if (!sni_char_ok(c))
				return CLIENTHELLO_NOT_TLS;
			ch->sni[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
		}
		ch->sni[name.len] = '\0';
		return CLIENTHELLO_SNI;
	}
	return list.bad ? CLIENTHELLO_NOT_TLS : CLIENTHELLO_NO_SNI;
}

/* The extensions block: the server_name one if present, every length checked. */
static enum clienthello_res
read_extensions(clienthello_t *ch, struct rd *m)
{
	enum clienthello_res res = CLIENTHELLO_NO_SNI;
	bool seen = false;

	if (m->off == m->len)
		return CLIENTHELLO_NO_SNI;	/* TLS 1.0-1.2 allow no extensions */
	struct rd exts = rd_sub(m, rd_uint(m, 2));
	if (m->bad || m->off != m->len)
		return CLIENTHELLO_NOT_TLS;
	while (!exts.bad && exts.off < exts.len) {
		size_t type = rd_uint(&exts, 2);
		struct rd body = rd_sub(&exts, rd_uint(&exts, 2));

		if (exts.bad)
			return CLIENTHELLO_NOT_TLS;
		if (type != EXT_SERVER_NAME)
			continue;
		if (seen)
			return CLIENTHELLO_NOT_TLS;	/* RFC 8446 4.2: once at most */
		seen = true;
		res = read_server_name(ch, &body);
		if (res == CLIENTHELLO_NOT_TLS)
			return res;
	}
	return res;
}

enum clienthello_res
clienthello_parse(clienthello_t *ch, const uint8_t *buf, size_t len)
{
	size_t msglen = 0;
	enum clienthello_res res;

	ch->sni[0] = '\0';
	if (len == 0)
		return CLIENTHELLO_MORE;
	if (buf[0] != REC_HANDSHAKE)
		return CLIENTHELLO_NOT_TLS;
	res = gather(ch, buf, len, &msglen);
	if (res != CLIENTHELLO_SNI)
		return res;

	struct rd m = { .p = ch->hs + HS_HDR, .len = msglen, .off = 0, .bad = false };
	size_t major = rd_uint(&m, 1);
	(void)rd_uint(&m, 1);			/* legacy_version minor */
	(void)rd_sub(&m, 32);			/* random */
	size_t sidlen = rd_uint(&m, 1);
	(void)rd_sub(&m, sidlen);
	size_t cslen = rd_uint(&m, 2);
	(void)rd_sub(&m, cslen);
	size_t cmlen = rd_uint(&m, 1);
	(void)rd_sub(&m, cmlen);
	if (m.bad || major != 3 || sidlen > SESSION_ID_MAX || cslen < 2 || cslen % 2 ||
	    cmlen < 1)
		return CLIENTHELLO_NOT_TLS;
	res = read_extensions(ch, &m);
	if (res != CLIENTHELLO_SNI)
		ch->sni[0] = '\0';
	return res;
}

const char *
clienthello_res_name(enum clienthello_res r)
{
	switch (r) {
	case CLIENTHELLO_SNI:
		return "sni";
	case CLIENTHELLO_NO_SNI:
		return "no_sni";
	case CLIENTHELLO_MORE:
		return "more";
	case CLIENTHELLO_NOT_TLS:
		break;
	}
	return "not_tls";
}
