/* test_wsrelay.c — WebSocket frames through the relay: swaps, scrubbing, closes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "wsframe.h"
#include "wsrelay.h"

#define SECRET	"sk-secret-Qz/9f+Ab=Cd"
#define HANDLE	"sgh1.abcd1234.good-handle_body"
#define BAD	"sgh1.abcd1234.refused-handle"

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

struct t {
	scrub_t *scrub;
	wsrelay_t *r;
	struct bytes server, client;	/* what each side received */
	size_t secret_writes;		/* to_server calls flagged secret */
	uint8_t key;
	bool binary_ok;
};

static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static int
swap_cb(void *arg, const char *h, size_t n, bool binary, const char **secret, size_t *sl,
    const char **code, bool *exfil)
{
	struct t *t = arg;

	if (n == strlen(HANDLE) && memcmp(h, HANDLE, n) == 0) {
		if (binary && !t->binary_ok) {
			*code = "handle_in_binary_frame";
			return -1;
		}
		*secret = SECRET;
		*sl = strlen(SECRET);
		return 0;
	}
	*code = "host_out_of_scope";
	*exfil = true;
	return -1;
}

static int
to_server_cb(void *arg, const void *p, size_t n, bool secret)
{
	struct t *t = arg;

	t->secret_writes += secret;
	bytes_add(&t->server, p, n);
	return 0;
}

static int
to_client_cb(void *arg, const void *p, size_t n)
{
	bytes_add(&((struct t *)arg)->client, p, n);
	return 0;
}

static void
key_cb(void *arg, uint8_t key[4])
{
	struct t *t = arg;

	for (int i = 0; i < 4; i++)
		key[i] = (uint8_t)(++t->key * 37);
}

static const wsrelay_ops_t ops = {swap_cb, to_server_cb, to_client_cb, key_cb};

static void
t_init(struct t *t)
{
	memset(t, 0, sizeof(*t));
	t->scrub = scrub_new(SCRUB_FORMS);
	assert_non_null(t->scrub);
	assert_int_equal(scrub_add(t->scrub, SECRET, strlen(SECRET), HANDLE, strlen(HANDLE)), 0);
	t->r = wsrelay_new(t->scrub, &ops, t);
	assert_non_null(t->r);
}

static void
t_fini(struct t *t)
{
	wsrelay_free(t->r);
	scrub_free(t->scrub);
	free(t->server.p);
	free(t->client.p);
}

/* One frame as a peer writes it (masked from the client). */
static size_t
frame(uint8_t *out, unsigned opcode, bool fin, const void *p, size_t n, bool mask)
{
	static const uint8_t key[4] = {1, 2, 3, 4};
	size_t hl = wsframe_header(out, opcode, fin, n, mask ? key : NULL);

	memcpy(out + hl, p, n);
	if (mask)
		wsframe_mask(out + hl, n, key, 0);
	return hl + n;
}

/* Feed a stream to one side of the relay, in pieces of step bytes (0: whole). */
static int
feed(struct t *t, bool client, const uint8_t *p, size_t n, size_t step)
{
	uint8_t *copy = malloc(n ? n : 1);
	int rc = WSRELAY_OK;

	assert_non_null(copy);
	memcpy(copy, p, n);
	for (size_t off = 0; off < n && rc == WSRELAY_OK;) {
		size_t k = step == 0 || step > n - off ? n - off : step;

		rc = client ? wsrelay_client(t->r, copy + off, k) : wsrelay_server(t->r,
		    copy + off, k);
		off += k;
	}
	free(copy);
	return rc;
}

/* Messages (and control frames, tagged by opcode) a side received, parsed strictly. */
struct msg {
	unsigned opcode;
	uint8_t data[200000];
	size_t len;
	unsigned close_code;
};

static size_t
parse(const struct bytes *b, bool from_client, struct msg *m, size_t max)
{
	wsframe_parser_t p;
	wsframe_event_t e;
	uint8_t *in = malloc(b->len ? b->len : 1);
	size_t used, off = 0, n = 0, frames = 0;

	assert_non_null(in);
	memcpy(in, b->p, b->len);
	wsframe_parser_init(&p, from_client ? WSFRAME_FROM_CLIENT : WSFRAME_FROM_SERVER);
	for (;;) {
		enum wsframe_event_type ty = wsframe_parse(&p, in + off, b->len - off, &used, &e);

		off += used;
		if (ty == WSFRAME_EV_NONE)
			break;
		assert_int_not_equal(ty, WSFRAME_EV_ERROR);
		if (ty == WSFRAME_EV_HEAD) {
			frames++;
			if (e.opcode != WSFRAME_OP_CONT) {
				assert_true(n < max);
				m[n].opcode = e.opcode;
				m[n].len = 0;
				m[n].close_code = 0;
				n++;
			}
		} else if (ty == WSFRAME_EV_PAYLOAD) {
			struct msg *c = &m[n - 1];

			/* a control frame between fragments: its own entry, found last */
			if (e.opcode >= WSFRAME_OP_CLOSE)
				c->close_code = e.close_code;
			else
				for (size_t i = n; i-- > 0;)
					if (m[i].opcode < WSFRAME_OP_CLOSE) {
						c = &m[i];
						break;
					}
			assert_true(c->len + e.data_len <= sizeof(c->data));
			memcpy(c->data + c->len, e.data, e.data_len);
			c->len += e.data_len;
		}
	}
	assert_int_equal(off, b->len);
	free(in);
	(void)frames;
	return n;
}

static struct msg *
msgs(void)
{
	struct msg *m = calloc(8, sizeof(*m));

	assert_non_null(m);
	return m;
}

/* A handle in a text message fragmented over three frames with a ping between them,
 * fed a byte at a time: the server gets one message holding the secret. */
static void
test_client_handle_swapped(void **state)
{
	struct t t;
	uint8_t s[512];
	size_t n = 0;
	struct msg *m = msgs();
	const char *want = "{\"auth\":\"" SECRET "\",\"x\":1}";

	(void)state;
	t_init(&t);
	n += frame(s + n, WSFRAME_OP_TEXT, false, "{\"auth\":\"sgh1.abcd", 18, true);
	n += frame(s + n, WSFRAME_OP_PING, true, "p", 1, true);
	n += frame(s + n, WSFRAME_OP_CONT, false, "1234.good-han", 13, true);
	n += frame(s + n, WSFRAME_OP_CONT, true, "dle_body\",\"x\":1}", 16, true);
	assert_int_equal(feed(&t, true, s, n, 1), WSRELAY_OK);
	assert_int_equal(parse(&t.server, true, m, 8), 2);
	assert_int_equal(m[0].opcode, WSFRAME_OP_TEXT);
	assert_int_equal(m[0].len, strlen(want));
	assert_memory_equal(m[0].data, want, m[0].len);
	assert_int_equal(m[1].opcode, WSFRAME_OP_PING);
	assert_true(t.secret_writes > 0);
	assert_int_equal(t.client.len, 0);
	t_fini(&t);
	free(m);
}

/* The secret from the server, raw and as base64, split across frames and reads. */
static void
test_server_secret_scrubbed(void **state)
{
	struct t t;
	char b64[128], text[512];
	uint8_t s[1024];
	size_t n = 0, half;
	struct msg *m = msgs();
	char want[512];

	(void)state;
	t_init(&t);
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)SECRET, strlen(SECRET),
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(text, sizeof(text), "echo %s and \"%s\" end", SECRET, b64);
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)HANDLE, strlen(HANDLE),
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(want, sizeof(want), "echo %s and \"%s\" end", HANDLE, b64);
	half = strlen(text) / 2;
	n += frame(s + n, WSFRAME_OP_TEXT, false, text, half, false);
	n += frame(s + n, WSFRAME_OP_CONT, true, text + half, strlen(text) - half, false);
	n += frame(s + n, WSFRAME_OP_BINARY, true, SECRET, strlen(SECRET), false);
	assert_int_equal(feed(&t, false, s, n, 7), WSRELAY_OK);
	assert_int_equal(parse(&t.client, false, m, 8), 2);
	assert_int_equal(m[0].len, strlen(want));
	assert_memory_equal(m[0].data, want, m[0].len);
	assert_int_equal(m[1].opcode, WSFRAME_OP_BINARY);
	assert_int_equal(m[1].len, strlen(HANDLE));
	assert_memory_equal(m[1].data, HANDLE, m[1].len);
	t_fini(&t);
	free(m);
}

static void
expect_close(const struct bytes *b, bool from_client, unsigned code, const char *reason)
{
	struct msg *m = msgs();
	size_t n = parse(b, from_client, m, 8);

	assert_true(n >= 1);
	assert_int_equal(m[n - 1].opcode, WSFRAME_OP_CLOSE);
	assert_int_equal(m[n - 1].close_code, code);
	if (reason != NULL)
		assert_non_null(memmem(m[n - 1].data, m[n - 1].len, reason, strlen(reason)));
	free(m);
}

static void
test_refused_handle_closes(void **state)
{
	struct t t;
	uint8_t s[512];
	size_t n;
	unsigned code;
	bool exfil;

	(void)state;
	t_init(&t);
	n = frame(s, WSFRAME_OP_TEXT, true, "use " BAD " now", strlen(BAD) + 8, true);
	assert_int_equal(feed(&t, true, s, n, 0), WSRELAY_CLOSE);
	expect_close(&t.client, false, WSFRAME_CLOSE_POLICY, "host_out_of_scope");
	expect_close(&t.server, true, WSFRAME_CLOSE_GOING_AWAY, NULL);
	assert_null(memmem(t.server.p, t.server.len, "now", 3));	/* nothing else */
	assert_string_equal(wsrelay_error(t.r, &code, &exfil), "host_out_of_scope");
	assert_int_equal(code, WSFRAME_CLOSE_POLICY);
	assert_true(exfil);
	/* later input is ignored */
	assert_int_equal(feed(&t, true, s, n, 0), WSRELAY_CLOSE);
	t_fini(&t);
}

static void
test_encoded_and_binary_handles(void **state)
{
	struct t t;
	uint8_t s[512];
	char b64[128];
	size_t n;

	(void)state;
	t_init(&t);
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)HANDLE, strlen(HANDLE),
	    sodium_base64_VARIANT_ORIGINAL);
	n = frame(s, WSFRAME_OP_TEXT, true, b64, strlen(b64), true);
	assert_int_equal(feed(&t, true, s, n, 3), WSRELAY_CLOSE);
	expect_close(&t.client, false, WSFRAME_CLOSE_POLICY, "handle_encoded");
	t_fini(&t);

	t_init(&t);
	n = frame(s, WSFRAME_OP_BINARY, true, HANDLE, strlen(HANDLE), true);
	assert_int_equal(feed(&t, true, s, n, 0), WSRELAY_CLOSE);
	expect_close(&t.client, false, WSFRAME_CLOSE_POLICY, "handle_in_binary_frame");
	t_fini(&t);

	t_init(&t);
	t.binary_ok = true;
	assert_int_equal(feed(&t, true, s, n, 0), WSRELAY_OK);
	assert_non_null(memmem(t.server.p, t.server.len, "\x82", 1));
	t_fini(&t);
}

static void
test_protocol_errors(void **state)
{
	struct t t;
	uint8_t s[64];
	size_t n;

	(void)state;
	t_init(&t);
	n = frame(s, WSFRAME_OP_TEXT, true, "hi", 2, false);	/* unmasked from client */
	assert_int_equal(feed(&t, true, s, n, 0), WSRELAY_CLOSE);
	expect_close(&t.client, false, WSFRAME_CLOSE_PROTOCOL, "websocket_protocol_error");
	expect_close(&t.server, true, WSFRAME_CLOSE_GOING_AWAY, NULL);
	t_fini(&t);

	t_init(&t);
	/* a server frame announcing 2^40 bytes: 1009 to the server, 1001 to the client */
	s[0] = 0x82;
	s[1] = 127;
	memset(s + 2, 0, 8);
	s[4] = 1;
	assert_int_equal(feed(&t, false, s, 10, 0), WSRELAY_CLOSE);
	expect_close(&t.server, true, WSFRAME_CLOSE_TOO_BIG, "websocket_too_big");
	expect_close(&t.client, false, WSFRAME_CLOSE_GOING_AWAY, NULL);
	t_fini(&t);
}

/* A ping holding the secret reaches the client with the handle; the pong the client
 * echoes reaches the server with the secret; the close handshake ends the relay. */
static void
test_control_frames(void **state)
{
	struct t t;
	uint8_t s[512];
	size_t n;
	struct msg *m = msgs();
	uint8_t close[4] = {0x03, 0xe8, 'o', 'k'};

	(void)state;
	t_init(&t);
	n = frame(s, WSFRAME_OP_PING, true, SECRET, strlen(SECRET), false);
	assert_int_equal(feed(&t, false, s, n, 0), WSRELAY_OK);
	assert_int_equal(parse(&t.client, false, m, 8), 1);
	assert_int_equal(m[0].len, strlen(HANDLE));
	assert_memory_equal(m[0].data, HANDLE, m[0].len);
	n = frame(s, WSFRAME_OP_PONG, true, HANDLE, strlen(HANDLE), true);
	assert_int_equal(feed(&t, true, s, n, 0), WSRELAY_OK);
	assert_int_equal(parse(&t.server, true, m, 8), 1);
	assert_int_equal(m[0].opcode, WSFRAME_OP_PONG);
	assert_memory_equal(m[0].data, SECRET, strlen(SECRET));
	assert_false(wsrelay_closed(t.r));
	n = frame(s, WSFRAME_OP_CLOSE, true, close, 4, true);
	assert_int_equal(feed(&t, true, s, n, 0), WSRELAY_OK);
	n = frame(s, WSFRAME_OP_CLOSE, true, close, 4, false);
	assert_int_equal(feed(&t, false, s, n, 0), WSRELAY_OK);
	assert_true(wsrelay_closed(t.r));
	assert_null(wsrelay_error(t.r, NULL, NULL));
	expect_close(&t.client, false, 1000, "ok");
	t_fini(&t);
	free(m);
}

/* A message larger than WSRELAY_FLUSH leaves in several frames, content intact. */
static void
test_large_message(void **state)
{
	struct t t;
	size_t big = 3 * WSRELAY_FLUSH + 123, n;
	uint8_t *s = malloc(big + 16), *p = malloc(big);
	struct msg *m = msgs();
	uint64_t up, down, sw;

	(void)state;
	assert_non_null(s);
	assert_non_null(p);
	for (size_t i = 0; i < big; i++)
		p[i] = (uint8_t)('a' + i % 26);
	memcpy(p + WSRELAY_FLUSH - 5, HANDLE " ", strlen(HANDLE) + 1);	/* it ends there */
	t_init(&t);
	n = frame(s, WSFRAME_OP_TEXT, true, p, big, true);
	assert_int_equal(feed(&t, true, s, n, 4096), WSRELAY_OK);
	assert_int_equal(parse(&t.server, true, m, 8), 1);
	assert_int_equal(m[0].len, big - strlen(HANDLE) + strlen(SECRET));
	assert_memory_equal(m[0].data + WSRELAY_FLUSH - 5, SECRET, strlen(SECRET));
	wsrelay_counts(t.r, &up, &down, &sw);
	assert_int_equal(up, 1);
	assert_int_equal(down, 0);
	assert_int_equal(sw, 1);
	t_fini(&t);
	free(s);
	free(p);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_handle_swapped),
		cmocka_unit_test(test_server_secret_scrubbed),
		cmocka_unit_test(test_refused_handle_closes),
		cmocka_unit_test(test_encoded_and_binary_handles),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_control_frames),
		cmocka_unit_test(test_large_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
