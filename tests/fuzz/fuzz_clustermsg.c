/*
 * fuzz_clustermsg.c — fleet mode records as they come from Redis: channel messages and
 * hash entries. Byte 0 picks the form (even: message, odd: hash entry, split at the
 * first '=' into field and ts). Invariants: whatever decodes is a valid revocation
 * (revoke_value_valid, ts >= 0), and encoding it again then decoding gives the same
 * record (node, kind, value, ts).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clustermsg.h"

static void
fuzz_same(const clustermsg_rec_t *a, const clustermsg_rec_t *b)
{
	if (strcmp(a->node, b->node) != 0 || strcmp(a->rec.kind, b->rec.kind) != 0 ||
	    strcmp(a->rec.value, b->rec.value) != 0 || a->rec.ts != b->rec.ts)
		abort();
}

static void
fuzz_valid(const clustermsg_rec_t *d)
{
	if (d->rec.kind != d->kind || d->rec.value != d->value || d->rec.ts < 0 ||
	    revoke_value_valid(d->rec.kind, d->rec.value, NULL, 0) != 0)
		abort();
}

static void
fuzz_message(const char *s, size_t len)
{
	char out[CLUSTERMSG_MAX_RECORD];
	clustermsg_rec_t d, again;

	if (clustermsg_msg_decode(s, len, &d) < 0)
		return;
	fuzz_valid(&d);
	if (clustermsg_msg_encode(d.node, &d.rec, out, sizeof(out)) < 0 ||
	    clustermsg_msg_decode(out, strlen(out), &again) < 0)
		abort();
	fuzz_same(&d, &again);
}

static void
fuzz_entry(const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	char field[CLUSTERMSG_MAX_RECORD], ts[32];
	clustermsg_rec_t d, again;

	if (eq == NULL)
		return;
	if (clustermsg_field_decode(s, (size_t)(eq - s), eq + 1, len - (size_t)(eq - s) - 1,
	    &d) < 0)
		return;
	fuzz_valid(&d);
	if (clustermsg_field_encode(&d.rec, field, sizeof(field), ts, sizeof(ts)) < 0 ||
	    clustermsg_field_decode(field, strlen(field), ts, strlen(ts), &again) < 0)
		abort();
	fuzz_same(&d, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_entry((const char *)data + 1, size - 1);
	else
		fuzz_message((const char *)data + 1, size - 1);
	return 0;
}
