/* test_audit.c — audit lines: fields and omissions, query cut, byte-identical to the
 * jansson-built line for randomised events, reopen after rename, queue-full drops
 * without blocking, many producers (every line once). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"

/* A guard against a hang: a test that blocks fails by SIGALRM instead. */
#define TEST_ALARM_S	60

static char tmpdir[256];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-audit-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	alarm(TEST_ALARM_S);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	alarm(0);
	audit_close();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* The lines of path, parsed; *n set. */
static json_t **
read_lines(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	json_t **v = NULL;
	char *line = NULL;
	size_t cap = 0, len = 0;

	assert_non_null(f);
	*n = 0;
	while (getline(&line, &cap, f) > 0) {
		json_error_t je;

		if (*n == len) {
			len = len ? 2 * len : 64;
			v = realloc(v, len * sizeof(*v));
			assert_non_null(v);
		}
		assert_int_equal(line[strlen(line) - 1], '\n');
		v[*n] = json_loads(line, 0, &je);
		assert_non_null(v[*n]);
		(*n)++;
	}
	free(line);
	fclose(f);
	return v;
}

static void
free_lines(json_t **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
	free(v);
}

static const char *
str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void
test_fields(void **state)
{
	char path[300], err[256];
	audit_event_t full = {.event = "request", .sandbox = "sb-1",
	    .origin_sandbox = "sb-parent", .source = "10.0.2.15",
	    .handle_id = "0123456789abcdef0123456789abcdef", .credential = "openai",
	    .method = "POST", .host = "api.openai.com", .path = "/v1/chat?key=sk-live#frag",
	    .port = 443, .status = 200, .bytes_up = 12, .bytes_down = 3456,
	    .upstream_ms = 12.5, .total_ms = 14.25, .detail = "ok"};
	audit_event_t bare = {.event = "reload"};
	audit_event_t denied = {.event = "denied", .status = 403, .error = "scope_denied",
	    .path = "/plain"};
	const char *t;
	json_t **v;
	size_t n;

	(void)state;
	tmp_path(path, sizeof(path), "audit.log");
	assert_int_equal(audit_open(path, err, sizeof(err)), 0);
	assert_int_equal(audit_open(path, err, sizeof(err)), -1);	/* once per process */
	audit_log(&full);
	audit_log(&bare);
	audit_log(&denied);
	audit_log(NULL);
	audit_close();
	v = read_lines(path, &n);
	assert_int_equal(n, 3);
	assert_int_equal(json_object_size(v[0]), 17);	/* all but error */
	t = str(v[0], "time");
	assert_int_equal(strlen(t), 24);	/* 2024-05-01T12:00:00.123Z */
	assert_true(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
	assert_string_equal(str(v[0], "event"), "request");
	assert_string_equal(str(v[0], "sandbox"), "sb-1");
	assert_string_equal(str(v[0], "origin_sandbox"), "sb-parent");
	assert_string_equal(str(v[0], "source"), "10.0.2.15");
	assert_string_equal(str(v[0], "handle_id"), "0123456789abcdef0123456789abcdef");
	assert_string_equal(str(v[0], "credential"), "openai");
	assert_string_equal(str(v[0], "method"), "POST");
	assert_string_equal(str(v[0], "host"), "api.openai.com");
	assert_string_equal(str(v[0], "path"), "/v1/chat");
	assert_string_equal(str(v[0], "detail"), "ok");
	assert_int_equal(json_integer_value(json_object_get(v[0], "port")), 443);
	assert_int_equal(json_integer_value(json_object_get(v[0], "status")), 200);
	assert_int_equal(json_integer_value(json_object_get(v[0], "bytes_up")), 12);
	assert_int_equal(json_integer_value(json_object_get(v[0], "bytes_down")), 3456);
	assert_true(json_real_value(json_object_get(v[0], "upstream_ms")) == 12.5);
	assert_true(json_real_value(json_object_get(v[0], "total_ms")) == 14.25);
	/* NULL strings and zero numbers are left out */
	assert_int_equal(json_object_size(v[1]), 2);
	assert_string_equal(str(v[1], "event"), "reload");
	/* a status brings the byte counts, even zero */
	assert_string_equal(str(v[2], "error"), "scope_denied");
	assert_string_equal(str(v[2], "path"), "/plain");
	assert_int_equal(json_integer_value(json_object_get(v[2], "bytes_down")), 0);
	assert_null(json_object_get(v[2], "port"));
	free_lines(v, n);
}

/* --- the direct formatter against jansson ------------------------------------------- */

/* The line audit.c built with jansson before the direct writer, for time ts. */
static void
ref_set_str(json_t *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_set_new(o, key, json_string(v));
}

static char *
ref_format(const audit_event_t *ev, const char *ts)
{
	json_t *o = json_object();
	char *line;

	ref_set_str(o, "time", ts);
	ref_set_str(o, "event", ev->event);
	ref_set_str(o, "sandbox", ev->sandbox);
	ref_set_str(o, "origin_sandbox", ev->origin_sandbox);
	ref_set_str(o, "source", ev->source);
	ref_set_str(o, "handle_id", ev->handle_id);
	ref_set_str(o, "credential", ev->credential);
	ref_set_str(o, "method", ev->method);
	ref_set_str(o, "host", ev->host);
	if (ev->port != 0)
		json_object_set_new(o, "port", json_integer(ev->port));
	if (ev->path != NULL)
		json_object_set_new(o, "path", json_stringn(ev->path, strcspn(ev->path, "?#")));
	if (ev->status != 0) {
		json_object_set_new(o, "status", json_integer(ev->status));
		ref_set_str(o, "error", ev->error);
		json_object_set_new(o, "bytes_up", json_integer((json_int_t)ev->bytes_up));
		json_object_set_new(o, "bytes_down", json_integer((json_int_t)ev->bytes_down));
	} else {
		ref_set_str(o, "error", ev->error);
	}
	if (ev->upstream_ms > 0)
		json_object_set_new(o, "upstream_ms", json_real(ev->upstream_ms));
	if (ev->total_ms > 0)
		json_object_set_new(o, "total_ms", json_real(ev->total_ms));
	ref_set_str(o, "detail", ev->detail);
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(o);
	assert_non_null(line);
	return line;
}

static uint64_t rnd_state;

static uint64_t
rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

#define RND_STR_MAX	48

/* A random string into buf (>= 4 * RND_STR_MAX + 1): ASCII, quotes, backslashes,
 * control bytes, '?' '#', valid UTF-8 of every length, and now and then invalid UTF-8
 * (stray continuation, C0/C1, F5+, truncated, overlong, surrogate, > U+10FFFF). */
static const char *
rnd_str(char *buf)
{
	static const char *const bad[] = {"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xf5\x80\x80\x80",
	    "\xff", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",
	    "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xc3\x28"};
	static const char *const good[] = {"\xc2\x80", "\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80",
	    "\xe2\x82\xac", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
	    "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xe2\x80\xa8"};
	uint64_t r = rnd();
	size_t n, len = 0;
	bool invalid = r % 8 == 0;

	if (r % 7 == 0)
		return NULL;
	n = (size_t)(rnd() % (RND_STR_MAX + 1));
	if (r % 11 == 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = rnd() % 100;
		const char *piece;
		char one[2] = {0, 0};

		if (k < 45)
			one[0] = (char)(0x20 + rnd() % 0x5f);		/* printable ASCII */
		else if (k < 52)
			one[0] = '"';
		else if (k < 59)
			one[0] = '\\';
		else if (k < 68)
			one[0] = (char)(1 + rnd() % 0x1f);		/* control bytes */
		else if (k < 70)
			one[0] = 0x7f;
		else if (k < 74)
			one[0] = rnd() % 2 ? '?' : '#';
		else if (k < 77)
			one[0] = '/';
		if (one[0] != 0)
			piece = one;
		else if (k < 97 || !invalid)
			piece = good[rnd() % (sizeof(good) / sizeof(good[0]))];
		else
			piece = bad[rnd() % (sizeof(bad) / sizeof(bad[0]))];
		memcpy(buf + len, piece, strlen(piece));
		len += strlen(piece);
	}
	if (invalid && n > 0 && rnd() % 2)	/* make sure: one bad piece somewhere */
		buf[rnd() % len] = (char)(0xf8 | (rnd() & 7));
	buf[len] = '\0';
	return buf;
}

static double
rnd_real(void)
{
	static const double special[] = {0.0, -1.0, 1.0, 5.0, 0.5, 12.5, 1e6, 999999.5, 1234567.0,
	    1e-5, 1.5e-7, 1e21, 1e100, 123456.0, 0.000123456789, 3.14159265358979};
	uint64_t r = rnd() % 10;

	if (r == 0)
		return NAN;
	if (r == 1)
		return rnd() % 2 ? INFINITY : -INFINITY;
	if (r < 5)
		return special[rnd() % (sizeof(special) / sizeof(special[0]))];
	return ldexp((double)(rnd() >> 11), (int)(rnd() % 120) - 90);
}

#define RANDOM_EVENTS	600

static void
test_matches_jansson(void **state)
{
	static char bufs[RANDOM_EVENTS][11][4 * RND_STR_MAX + 1];
	static audit_event_t evs[RANDOM_EVENTS];
	char path[300], err[256], *line = NULL;
	uint64_t before = audit_dropped();
	size_t cap = 0, n = 0;
	FILE *f;

	(void)state;
	rnd_state = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < RANDOM_EVENTS; i++) {
		audit_event_t *ev = &evs[i];
		const char *e = rnd_str(bufs[i][0]);

		ev->event = e != NULL ? e : "request";		/* required */
		ev->sandbox = rnd_str(bufs[i][1]);
		ev->source = rnd_str(bufs[i][2]);
		ev->handle_id = rnd_str(bufs[i][3]);
		ev->credential = rnd_str(bufs[i][4]);
		ev->method = rnd_str(bufs[i][5]);
		ev->host = rnd_str(bufs[i][6]);
		ev->path = rnd_str(bufs[i][7]);
		ev->error = rnd_str(bufs[i][8]);
		ev->detail = rnd_str(bufs[i][9]);
		ev->origin_sandbox = rnd_str(bufs[i][10]);
		ev->port = rnd() % 3 == 0 ? 0 : (uint16_t)rnd();
		switch (rnd() % 4) {
		case 0: ev->status = 0; break;
		case 1: ev->status = (int)(rnd() % 600); break;
		default: ev->status = (int)(uint32_t)rnd(); break;	/* negative too */
		}
		ev->bytes_up = rnd() % 2 ? rnd() : rnd() % 100000;	/* > INT64_MAX too */
		ev->bytes_down = rnd() % 4 == 0 ? 0 : rnd() >> (rnd() % 64);
		ev->upstream_ms = rnd_real();
		ev->total_ms = rnd_real();
	}
	evs[0] = (audit_event_t){.event = "reload"};	/* a few fixed ones too */
	evs[1] = (audit_event_t){.event = "request", .path = "?", .status = 200,
	    .upstream_ms = 1e6, .total_ms = 0.1};
	evs[2] = (audit_event_t){.event = "\xff", .detail = "a\"b\\c\x01\x1f\x7f\n\t\b\f\r/"};

	tmp_path(path, sizeof(path), "rand.log");
	assert_int_equal(audit_open(path, err, sizeof(err)), 0);
	for (size_t i = 0; i < RANDOM_EVENTS; i++)
		audit_log(&evs[i]);
	audit_close();
	assert_int_equal(audit_dropped(), before);
	f = fopen(path, "r");
	assert_non_null(f);
	while (getline(&line, &cap, f) > 0) {
		char ts[64], *ref;
		size_t tl;

		assert_true(n < RANDOM_EVENTS);
		assert_int_equal(strncmp(line, "{\"time\":\"", 9), 0);
		tl = strcspn(line + 9, "\"");
		assert_int_equal(tl, 24);
		memcpy(ts, line + 9, tl);
		ts[tl] = '\0';
		ref = ref_format(&evs[n], ts);
		if (strlen(line) != strlen(ref) + 1 || strncmp(line, ref, strlen(ref)) != 0 ||
		    line[strlen(ref)] != '\n')
			fail_msg("event %zu:\n got %s want %s\n", n, line, ref);
		free(ref);
		n++;
	}
	free(line);
	fclose(f);
	assert_int_equal(n, RANDOM_EVENTS);
}

static void
test_no_file(void **state)
{
	char err[256] = "";
	uint64_t d = audit_dropped();

	(void)state;
	audit_log(&(audit_event_t){.event = "request"});	/* not open: nothing */
	assert_int_equal(audit_dropped(), d);
	assert_int_equal(audit_open("/nonexistent-dir/x/audit.log", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open audit log"));
	audit_close();
	audit_reopen();		/* not open: nothing */
}

static void
test_reopen_after_rename(void **state)
{
	char path[300], rotated[300], err[256];
	struct stat st;
	json_t **v;
	size_t n;

	(void)state;
	tmp_path(path, sizeof(path), "rot.log");
	tmp_path(rotated, sizeof(rotated), "rot.log.1");
	assert_int_equal(audit_open(path, err, sizeof(err)), 0);
	audit_log(&(audit_event_t){.event = "request", .detail = "before"});
	assert_int_equal(rename(path, rotated), 0);
	audit_log(&(audit_event_t){.event = "request", .detail = "still old"});
	audit_reopen();
	audit_log(&(audit_event_t){.event = "request", .detail = "after"});
	audit_close();
	v = read_lines(rotated, &n);
	assert_int_equal(n, 2);
	assert_string_equal(str(v[0], "detail"), "before");
	assert_string_equal(str(v[1], "detail"), "still old");
	free_lines(v, n);
	v = read_lines(path, &n);
	assert_int_equal(n, 1);
	assert_string_equal(str(v[0], "detail"), "after");
	free_lines(v, n);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, AUDIT_FILE_MODE & ~0022 & 0777);
}

struct reader {
	int fd;
	size_t lines;
};

static void *
reader_run(void *arg)
{
	struct reader *r = arg;
	char buf[65536];
	ssize_t n;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			r->lines += buf[i] == '\n';
	return NULL;
}

/* The writer is stuck on a FIFO nobody reads: the queue fills, audit_log drops, counts,
 * and returns (a blocking audit_log would hang here until the alarm). */
static void
test_queue_full_drops(void **state)
{
	const size_t total = AUDIT_QUEUE_MAX + 50000;
	char path[300], err[256];
	struct reader r = {0};
	pthread_t th;
	uint64_t before = audit_dropped(), dropped;

	(void)state;
	tmp_path(path, sizeof(path), "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	r.fd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(r.fd >= 0);
	assert_int_equal(audit_open(path, err, sizeof(err)), 0);
	for (size_t i = 0; i < total; i++)
		audit_log(&(audit_event_t){.event = "request", .host = "example.test",
		    .path = "/a/fairly/long/path/to/fill/the/pipe/quickly", .status = 200});
	dropped = audit_dropped() - before;
	assert_true(dropped >= total - AUDIT_QUEUE_MAX - AUDIT_BATCH_MAX - 1024);
	/* drain: every line not dropped arrives */
	assert_int_equal(fcntl(r.fd, F_SETFL, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, reader_run, &r), 0);
	audit_close();
	pthread_join(th, NULL);
	close(r.fd);
	assert_int_equal(r.lines + dropped, total);
}

struct producer {
	int id;
};

#define PRODUCERS	4
#define PER_PRODUCER	10000

static void *
producer_run(void *arg)
{
	struct producer *p = arg;
	char detail[32];

	for (int i = 0; i < PER_PRODUCER; i++) {
		snprintf(detail, sizeof(detail), "%d-%d", p->id, i);
		audit_log(&(audit_event_t){.event = "request", .detail = detail});
	}
	return NULL;
}

static void
test_many_producers(void **state)
{
	char path[300], err[256];
	pthread_t th[PRODUCERS];
	struct producer p[PRODUCERS];
	static unsigned char seen[PRODUCERS][PER_PRODUCER];
	uint64_t before = audit_dropped();
	json_t **v;
	size_t n;

	(void)state;
	tmp_path(path, sizeof(path), "many.log");
	assert_int_equal(audit_open(path, err, sizeof(err)), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		p[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, producer_run, &p[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	audit_close();
	assert_int_equal(audit_dropped(), before);
	v = read_lines(path, &n);
	assert_int_equal(n, PRODUCERS * PER_PRODUCER);
	for (size_t i = 0; i < n; i++) {
		int a, b;

		assert_int_equal(sscanf(str(v[i], "detail"), "%d-%d", &a, &b), 2);
		assert_true(a >= 0 && a < PRODUCERS && b >= 0 && b < PER_PRODUCER);
		assert_int_equal(seen[a][b], 0);
		seen[a][b] = 1;
	}
	free_lines(v, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matches_jansson, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_producers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
