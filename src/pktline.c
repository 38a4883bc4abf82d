/* pktline.c — git pkt-line framing, receive-pack commands and report-status. */
#include <stdlib.h>
#include <string.h>

#include "pktline.h"
#include "util.h"

void
pktline_init(pktline_t *p)
{
	p->nhdr = p->want = p->have = 0;
	p->err = false;
	p->buf[0] = '\0';
}

/* The 4 length digits are in: a special packet, or the payload length to read. */
static enum pktline_ev
pktline_header_done(pktline_t *p, pktline_pkt_t *pkt)
{
	size_t n = 0;

	for (size_t i = 0; i < 4; i++) {
		int v = util_hex_nibble(p->hdr[i]);

		if (v < 0)
			return PKTLINE_EV_ERROR;
		n = n * 16 + (size_t)v;
	}
	p->nhdr = 0;
	if (n == 3 || n > PKTLINE_MAX)
		return PKTLINE_EV_ERROR;
	if (n < 3) {
		pkt->kind = n == 0 ? PKTLINE_FLUSH : n == 1 ? PKTLINE_DELIM : PKTLINE_END;
		pkt->data = NULL;
		pkt->len = 0;
		return PKTLINE_EV_PACKET;
	}
	p->want = n - 4;
	p->have = 0;
	p->nhdr = 4;		/* payload phase */
	return PKTLINE_EV_NONE;
}

enum pktline_ev
pktline_next(pktline_t *p, const void *in, size_t len, size_t *used, pktline_pkt_t *pkt)
{
	const char *s = in;
	size_t i = 0;
	enum pktline_ev ev;

	*used = 0;
	if (p->err)
		return PKTLINE_EV_ERROR;
	for (;;) {
		if (p->nhdr == 4 && p->have == p->want) {
			p->nhdr = 0;
			p->buf[p->have] = '\0';
			pkt->kind = PKTLINE_DATA;
			pkt->data = p->buf;
			pkt->len = p->have;
			*used = i;
			return PKTLINE_EV_PACKET;
		}
		if (i == len)
			break;
		if (p->nhdr == 4) {
			size_t n = p->want - p->have < len - i ? p->want - p->have : len - i;

			memcpy(p->buf + p->have, s + i, n);
			p->have += n;
			i += n;
			continue;
		}
		p->hdr[p->nhdr++] = s[i++];
		if (p->nhdr < 4)
			continue;
		ev = pktline_header_done(p, pkt);
		if (ev != PKTLINE_EV_NONE) {
			p->err = ev == PKTLINE_EV_ERROR;
			*used = i;
			return ev;
		}
	}
	*used = i;
	return PKTLINE_EV_NONE;
}

/* --- commands ----------------------------------------------------------------------- */

static size_t
pktline_oid_span(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
		n++;
	return n;
}

bool
pktline_oid_is_zero(const char *oid)
{
	if (*oid == '\0')
		return false;
	for (; *oid; oid++)
		if (*oid != '0')
			return false;
	return true;
}

/* The parts of check-ref-format a pattern match depends on (see pktline.h). */
static int
pktline_ref_check(const char *r, size_t n)
{
	if (n <= 5 || n > PKTLINE_REF_MAX || strncmp(r, "refs/", 5) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)r[i];

		if (ch < 0x21 || ch == 0x7f || strchr("~^:?[\\", ch) != NULL)
			return -1;
		if (i + 1 < n && ((ch == '.' && r[i + 1] == '.') || (ch == '@' &&
		    r[i + 1] == '{') || (ch == '/' && r[i + 1] == '/') ||
		    (ch == '/' && r[i + 1] == '.')))
			return -1;
	}
	if (r[n - 1] == '/' || r[n - 1] == '.' || (n >= 5 && memcmp(r + n - 5, ".lock",
	    5) == 0))
		return -1;
	return 0;
}

int
pktline_command_parse(const char *line, size_t len, bool first, pktline_command_t *cmd)
{
	const char *nul = first ? memchr(line, '\0', len) : NULL;
	size_t end = nul ? (size_t)(nul - line) : len, olen, rlen;

	memset(cmd, 0, sizeof(*cmd));
	if (nul == NULL && end > 0 && line[end - 1] == '\n')
		end--;
	olen = pktline_oid_span(line, end);
	if (olen != PKTLINE_OID_SHA1 && olen != PKTLINE_OID_SHA256)
		return -1;
	if (end < 2 * olen + 3 || line[olen] != ' ' || pktline_oid_span(line + olen + 1,
	    end - olen - 1) != olen || line[2 * olen + 1] != ' ')
		return -1;
	rlen = end - 2 * olen - 2;
	if (pktline_ref_check(line + 2 * olen + 2, rlen) < 0)
		return -1;
	memcpy(cmd->old_oid, line, olen);
	memcpy(cmd->new_oid, line + olen + 1, olen);
	memcpy(cmd->ref, line + 2 * olen + 2, rlen);
	cmd->oid_len = olen;
	if (nul != NULL) {
		cmd->caps = nul + 1;
		cmd->caps_len = len - end - 1;
		if (cmd->caps_len > 0 && cmd->caps[cmd->caps_len - 1] == '\n')
			cmd->caps_len--;
	}
	return 0;
}

bool
pktline_caps_has(const char *caps, size_t len, const char *cap)
{
	size_t n = strlen(cap), i = 0;

	while (caps != NULL && i < len) {
		size_t j = i;

		while (j < len && caps[j] != ' ')
			j++;
		if (j - i == n && memcmp(caps + i, cap, n) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

/* --- encoders ----------------------------------------------------------------------- */

static void
pktline_buf_add(pktline_buf_t *b, const void *data, size_t len)
{
	if (b->err)
		return;
	if (b->len + len > b->cap) {
		size_t cap = (b->len + len) * 2 + 64;
		char *p = realloc(b->p, cap);

		if (p == NULL) {
			b->err = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void
pktline_put_len(pktline_buf_t *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char h[4] = {hex[(n >> 12) & 15], hex[(n >> 8) & 15], hex[(n >> 4) & 15], hex[n & 15]};

	pktline_buf_add(b, h, 4);
}

void
pktline_put(pktline_buf_t *b, const void *data, size_t len)
{
	if (len > PKTLINE_DATA_MAX) {
		b->err = true;
		return;
	}
	pktline_put_len(b, len + 4);
	pktline_buf_add(b, data, len);
}

void
pktline_put_flush(pktline_buf_t *b)
{
	pktline_buf_add(b, "0000", 4);
}

void
pktline_put_band(pktline_buf_t *b, int band, const void *data, size_t len)
{
	const char *s = data;
	char bb = (char)band;

	if (band < 1 || band > 3) {
		b->err = true;
		return;
	}
	do {
		size_t n = len < PKTLINE_BAND_DATA_MAX ? len : PKTLINE_BAND_DATA_MAX;

		pktline_put_len(b, n + 5);
		pktline_buf_add(b, &bb, 1);
		pktline_buf_add(b, s, n);
		s += n;
		len -= n;
	} while (len > 0);
}

/* "ok REF\n" or "ng REF reason\n" as one pkt-line. */
static void
pktline_put_status(pktline_buf_t *b, const pktline_status_t *st)
{
	pktline_buf_t line = {0};

	pktline_buf_add(&line, st->reason ? "ng " : "ok ", 3);
	pktline_buf_add(&line, st->ref, strlen(st->ref));
	if (st->reason) {
		pktline_buf_add(&line, " ", 1);
		pktline_buf_add(&line, st->reason, strlen(st->reason));
	}
	pktline_buf_add(&line, "\n", 1);
	if (line.err)
		b->err = true;
	else
		pktline_put(b, line.p, line.len);
	free(line.p);
}

char *
pktline_report_status(const pktline_status_t *st, size_t n, bool sideband, const char *msg,
    size_t *len)
{
	pktline_buf_t rep = {0}, out = {0};

	pktline_put(&rep, "unpack ok\n", 10);
	for (size_t i = 0; i < n; i++)
		pktline_put_status(&rep, &st[i]);
	pktline_put_flush(&rep);
	if (!sideband) {
		out = rep;
		rep.p = NULL;
	} else {
		if (msg != NULL)
			pktline_put_band(&out, 2, msg, strlen(msg));
		if (rep.err)
			out.err = true;
		else
			pktline_put_band(&out, 1, rep.p, rep.len);
		pktline_put_flush(&out);
	}
	free(rep.p);
	if (out.err) {
		free(out.p);
		return NULL;
	}
	*len = out.len;
	return out.p;
}
