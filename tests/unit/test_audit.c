/* test_audit.c — audit lines: fields and omissions, query cut, reopen after rename,
 * queue-full drops without blocking, many producers (every line once). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
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
	audit_event_t full = {.event = "request", .sandbox = "sb-1", .source = "10.0.2.15",
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
	assert_int_equal(json_object_size(v[0]), 16);	/* all but error */
	t = str(v[0], "time");
	assert_int_equal(strlen(t), 24);	/* 2024-05-01T12:00:00.123Z */
	assert_true(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
	assert_string_equal(str(v[0], "event"), "request");
	assert_string_equal(str(v[0], "sandbox"), "sb-1");
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
		cmocka_unit_test_setup_teardown(test_no_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_producers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
