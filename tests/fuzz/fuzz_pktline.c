/*
 * fuzz_pktline.c — libFuzzer harness for the pkt-line parser, the command parser and
 * the encoder. Input: byte 0 picks a split step, the rest is a pkt-line stream.
 * Invariants:
 *   - the stream fed whole and fed in pieces gives the same packets and error point;
 *   - data packets are at most PKTLINE_DATA_MAX bytes; NONE only when input is used up;
 *   - every data packet re-encoded with pktline_put parses back to itself;
 *   - a command that parses has oids of 40 or 64 hex digits and a ref under refs/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pktline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of the packets: kinds, lengths and a byte sum; and where it stopped. */
struct sum {
	uint64_t h;
	size_t npkt;
	bool err;
};

static void
check_roundtrip(const pktline_pkt_t *pkt)
{
	pktline_buf_t b = {0};
	pktline_t *p = malloc(sizeof(*p));
	pktline_pkt_t back;
	size_t used;

	if (p == NULL)
		abort();
	pktline_init(p);
	pktline_put(&b, pkt->data, pkt->len);
	if (b.err || pktline_next(p, b.p, b.len, &used, &back) != PKTLINE_EV_PACKET ||
	    used != b.len || back.len != pkt->len || memcmp(back.data, pkt->data, pkt->len))
		abort();
	free(b.p);
	free(p);
}

static void
check_command(const pktline_pkt_t *pkt, bool first)
{
	pktline_command_t c;

	if (pktline_command_parse(pkt->data, pkt->len, first, &c) < 0)
		return;
	if ((c.oid_len != 40 && c.oid_len != 64) || strlen(c.old_oid) != c.oid_len ||
	    strlen(c.new_oid) != c.oid_len || strncmp(c.ref, "refs/", 5) != 0)
		abort();
}

static void
on_packet(struct sum *s, const pktline_pkt_t *pkt, bool checks)
{
	s->h = s->h * 31 + pkt->kind + 7 * pkt->len;
	for (size_t i = 0; i < pkt->len; i++)
		s->h = s->h * 131 + (uint8_t)pkt->data[i];
	if (pkt->kind == PKTLINE_DATA && pkt->len > PKTLINE_DATA_MAX)
		abort();
	if (checks && pkt->kind == PKTLINE_DATA) {
		check_roundtrip(pkt);
		check_command(pkt, s->npkt == 0);
	}
	s->npkt++;
}

static struct sum
run(const uint8_t *in, size_t len, size_t step, bool checks)
{
	pktline_t *p = malloc(sizeof(*p));
	struct sum s = {0, 0, false};
	size_t i = 0;

	if (p == NULL)
		abort();
	pktline_init(p);
	while (i < len && !s.err) {
		size_t n = len - i < step ? len - i : step, used;
		pktline_pkt_t pkt;
		enum pktline_ev ev;

		while ((ev = pktline_next(p, in + i, n, &used, &pkt)) == PKTLINE_EV_PACKET) {
			on_packet(&s, &pkt, checks);
			i += used;
			n -= used;
		}
		if (ev == PKTLINE_EV_NONE && used != n)
			abort();
		i += used;
		s.err = ev == PKTLINE_EV_ERROR;
	}
	free(p);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sum a, b;

	if (size < 1)
		return 0;
	a = run(data + 1, size - 1, size, true);
	b = run(data + 1, size - 1, (size_t)data[0] % 17 + 1, false);
	if (a.h != b.h || a.npkt != b.npkt || a.err != b.err)
		abort();
	return 0;
}
