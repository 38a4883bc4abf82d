/*
 * audit.c — audit lines: formatted by the caller (jansson), queued in a bounded ring,
 * written and flushed in batches by one writer thread, which also does reopens.
 *
 * Coalescing: once the writer sees a line it lingers up to AUDIT_LINGER_US (or until
 * AUDIT_BATCH_MAX lines, a stop or a due reopen) before it writes, so under load it
 * wakes a few hundred times a second instead of once per line. Producers signal only a
 * writer that is actually asleep waiting for them (a->waiting), never a busy one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "log.h"

struct audit {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t writer;
	char *ring[AUDIT_QUEUE_MAX];
	size_t head, count;	/* oldest line, lines queued */
	uint64_t pushed, taken;	/* lines queued / handed to the writer, ever */
	uint64_t reopen_at;	/* reopen once `taken` reaches this */
	bool reopen, stop;
	enum { AW_BUSY, AW_IDLE, AW_LINGER } waiting;	/* what the writer waits for */
	char *path;		/* NULL: stdout */
	FILE *out;
};

#define AUDIT_STDIO_BUF	(64 * 1024)

static struct audit *audit_state;	/* set by audit_open, cleared by audit_close */
static pthread_mutex_t audit_open_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t audit_ndropped;

uint64_t
audit_dropped(void)
{
	return __atomic_load_n(&audit_ndropped, __ATOMIC_RELAXED);
}

/* --- the writer -------------------------------------------------------------------- */

static FILE *
audit_fopen(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, AUDIT_FILE_MODE);
	FILE *f;

	if (fd < 0 || (f = fdopen(fd, "a")) == NULL) {
		snprintf(err, errlen, "%s: cannot open audit log: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	setvbuf(f, NULL, _IOFBF, AUDIT_STDIO_BUF);	/* a batch in a few write(2)s, not one per 4 KiB */
	return f;
}

static void
audit_do_reopen(struct audit *a)
{
	char err[512];
	FILE *f;

	if (a->path == NULL)
		return;
	if ((f = audit_fopen(a->path, err, sizeof(err))) == NULL) {
		log_warn("%s; still writing to the old file", err);
		return;
	}
	fclose(a->out);
	a->out = f;
}

/* Under a->mu: move up to AUDIT_BATCH_MAX lines (not past a pending reopen) to batch. */
static size_t
audit_take(struct audit *a, char **batch, bool *reopen_after)
{
	size_t n = a->count < AUDIT_BATCH_MAX ? a->count : AUDIT_BATCH_MAX;

	if (a->reopen && a->reopen_at - a->taken < n)
		n = (size_t)(a->reopen_at - a->taken);
	for (size_t i = 0; i < n; i++) {
		batch[i] = a->ring[a->head];
		a->head = (a->head + 1) % AUDIT_QUEUE_MAX;
	}
	a->count -= n;
	a->taken += n;
	*reopen_after = a->reopen && a->taken == a->reopen_at;
	if (*reopen_after)
		a->reopen = false;
	return n;
}

static void
audit_write_batch(struct audit *a, char **batch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fputs(batch[i], a->out);
		free(batch[i]);
	}
	if (n > 0 && fflush(a->out) != 0)
		log_warn("audit log write failed: %s", strerror(errno));
}

static bool
audit_reopen_due(const struct audit *a)
{
	return a->reopen && a->taken + a->count >= a->reopen_at;
}

/* Under a->mu, with lines queued: wait up to AUDIT_LINGER_US for more to batch. */
static void
audit_linger(struct audit *a)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += AUDIT_LINGER_US * 1000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (a->count < AUDIT_BATCH_MAX && !a->stop && !audit_reopen_due(a)) {
		a->waiting = AW_LINGER;
		if (pthread_cond_timedwait(&a->cv, &a->mu, &until) == ETIMEDOUT)
			break;
	}
	a->waiting = AW_BUSY;
}

static void *
audit_writer(void *arg)
{
	struct audit *a = arg;
	static char *batch[AUDIT_BATCH_MAX];	/* one writer thread at a time */
	bool reopen, done = false;
	size_t n;

	while (!done) {
		pthread_mutex_lock(&a->mu);
		while (a->count == 0 && !a->stop && !(a->reopen && a->taken == a->reopen_at)) {
			a->waiting = AW_IDLE;
			pthread_cond_wait(&a->cv, &a->mu);
		}
		a->waiting = AW_BUSY;
		if (a->count > 0)
			audit_linger(a);
		n = audit_take(a, batch, &reopen);
		done = a->stop && a->count == 0;
		pthread_mutex_unlock(&a->mu);
		audit_write_batch(a, batch, n);
		if (reopen)
			audit_do_reopen(a);
	}
	return NULL;
}

/* --- open / close / reopen --------------------------------------------------------- */

static void
audit_destroy(struct audit *a)
{
	if (a->out != NULL && a->out != stdout)
		fclose(a->out);
	else if (a->out == stdout)
		fflush(stdout);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a->path);
	free(a);
}

static struct audit *
audit_create(const char *path, char *err, size_t errlen)
{
	struct audit *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;

	if (a == NULL) {
		snprintf(err, errlen, "audit: out of memory");
		return NULL;
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* audit_linger's deadline */
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (strcmp(path, "-") == 0) {
		a->out = stdout;
		return a;
	}
	if ((a->path = strdup(path)) == NULL ||
	    (a->out = audit_fopen(path, err, errlen)) == NULL) {
		audit_destroy(a);
		return NULL;
	}
	return a;
}

int
audit_open(const char *path, char *err, size_t errlen)
{
	struct audit *a;
	int rc = -1;

	pthread_mutex_lock(&audit_open_mu);
	if (audit_state != NULL)
		snprintf(err, errlen, "audit log already open");
	else if ((a = audit_create(path, err, errlen)) != NULL) {
		if (pthread_create(&a->writer, NULL, audit_writer, a) != 0) {
			snprintf(err, errlen, "audit: cannot start the writer thread");
			audit_destroy(a);
		} else {
			__atomic_store_n(&audit_state, a, __ATOMIC_RELEASE);
			rc = 0;
		}
	}
	pthread_mutex_unlock(&audit_open_mu);
	return rc;
}

/* Callers of audit_log must be done before audit_close (serve stops workers first). */
void
audit_close(void)
{
	struct audit *a;

	pthread_mutex_lock(&audit_open_mu);
	a = __atomic_exchange_n(&audit_state, NULL, __ATOMIC_ACQ_REL);
	if (a != NULL) {
		pthread_mutex_lock(&a->mu);
		a->stop = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->writer, NULL);
		audit_destroy(a);
	}
	pthread_mutex_unlock(&audit_open_mu);
}

void
audit_reopen(void)
{
	struct audit *a;

	pthread_mutex_lock(&audit_open_mu);
	a = audit_state;
	if (a != NULL && a->path != NULL) {
		pthread_mutex_lock(&a->mu);
		a->reopen = true;
		a->reopen_at = a->pushed;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
	}
	pthread_mutex_unlock(&audit_open_mu);
}

/* --- formatting and queueing ------------------------------------------------------- */

/* "2024-05-01T12:00:00.123Z" */
static void
audit_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", sec, ts.tv_nsec / 1000000L);
}

static void
audit_set_str(json_t *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_set_new(o, key, json_string(v));
}

/* The path up to (not including) its query or fragment. */
static void
audit_set_path(json_t *o, const char *path)
{
	if (path != NULL)
		json_object_set_new(o, "path", json_stringn(path, strcspn(path, "?#")));
}

static void
audit_set_numbers(json_t *o, const audit_event_t *ev)
{
	if (ev->status != 0) {
		json_object_set_new(o, "status", json_integer(ev->status));
		audit_set_str(o, "error", ev->error);
		json_object_set_new(o, "bytes_up", json_integer((json_int_t)ev->bytes_up));
		json_object_set_new(o, "bytes_down", json_integer((json_int_t)ev->bytes_down));
	} else {
		audit_set_str(o, "error", ev->error);
	}
	if (ev->upstream_ms > 0)
		json_object_set_new(o, "upstream_ms", json_real(ev->upstream_ms));
	if (ev->total_ms > 0)
		json_object_set_new(o, "total_ms", json_real(ev->total_ms));
}

static char *
audit_format(const audit_event_t *ev)
{
	char ts[48], *line, *nl;
	json_t *o = json_object();
	size_t n;

	audit_time(ts, sizeof(ts));
	audit_set_str(o, "time", ts);
	audit_set_str(o, "event", ev->event);
	audit_set_str(o, "sandbox", ev->sandbox);
	audit_set_str(o, "source", ev->source);
	audit_set_str(o, "handle_id", ev->handle_id);
	audit_set_str(o, "credential", ev->credential);
	audit_set_str(o, "method", ev->method);
	audit_set_str(o, "host", ev->host);
	if (ev->port != 0)
		json_object_set_new(o, "port", json_integer(ev->port));
	audit_set_path(o, ev->path);
	audit_set_numbers(o, ev);
	audit_set_str(o, "detail", ev->detail);
	/* invalid UTF-8 in a field makes json_string NULL: that field is left out */
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(o);
	if (line == NULL || (n = strlen(line), (nl = realloc(line, n + 2)) == NULL)) {
		free(line);
		return NULL;
	}
	nl[n] = '\n';
	nl[n + 1] = '\0';
	return nl;
}

/* Queue line (taken over). False when the queue is full (line freed). */
static bool
audit_push(struct audit *a, char *line)
{
	bool ok;

	pthread_mutex_lock(&a->mu);
	ok = a->count < AUDIT_QUEUE_MAX && !a->stop;
	if (ok) {
		a->ring[(a->head + a->count) % AUDIT_QUEUE_MAX] = line;
		a->count++;
		a->pushed++;
		/* wake the writer only when it sleeps for want of lines or of a full batch */
		if (a->waiting == AW_IDLE || (a->waiting == AW_LINGER && a->count == AUDIT_BATCH_MAX)) {
			a->waiting = AW_BUSY;
			pthread_cond_signal(&a->cv);
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (!ok)
		free(line);
	return ok;
}

void
audit_log(const audit_event_t *ev)
{
	struct audit *a = __atomic_load_n(&audit_state, __ATOMIC_ACQUIRE);
	char *line;

	if (a == NULL || ev == NULL || ev->event == NULL)
		return;
	if ((line = audit_format(ev)) == NULL || !audit_push(a, line))
		__atomic_add_fetch(&audit_ndropped, 1, __ATOMIC_RELAXED);
}
