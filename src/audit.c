/*
 * audit.c — audit lines: formatted by the caller (written directly, byte for byte what
 * jansson gave), queued in a bounded ring, written and flushed in batches by one writer
 * thread, which also does reopens.
 *
 * Coalescing: once the writer sees a line it lingers up to AUDIT_LINGER_US (or until
 * AUDIT_BATCH_MAX lines, a stop or a due reopen) before it writes, so under load it
 * wakes a few hundred times a second instead of once per line. Producers signal only a
 * writer that is actually asleep waiting for them (a->waiting), never a busy one.
 */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/*
 * The line is written directly, byte for byte what jansson's
 * json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) gave for the
 * object the fields used to be set in (tests/unit/test_audit.c compares the two):
 * keys in the same order, NULL strings and zero numbers left out, a string with invalid
 * UTF-8 (jansson's rules) left out, escapes as jansson writes them without
 * JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH.
 */

/* The "%Y-%m-%dT%H:%M:%S" part of "time", formatted once per second per thread. */
static _Thread_local struct {
	time_t sec;
	size_t len;
	char text[32];
} audit_tcache = {.sec = (time_t)-1};

/* "2024-05-01T12:00:00.123Z" into buf (>= 40 bytes); returns its length. */
static size_t
audit_time(char *buf)
{
	struct timespec ts;
	long ms;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != audit_tcache.sec) {
		struct tm tm;

		gmtime_r(&ts.tv_sec, &tm);
		audit_tcache.len = strftime(audit_tcache.text, sizeof(audit_tcache.text),
		    "%Y-%m-%dT%H:%M:%S", &tm);
		audit_tcache.sec = ts.tv_sec;
	}
	n = audit_tcache.len;
	memcpy(buf, audit_tcache.text, n);
	ms = ts.tv_nsec / 1000000L;
	buf[n++] = '.';
	buf[n++] = (char)('0' + ms / 100);
	buf[n++] = (char)('0' + ms / 10 % 10);
	buf[n++] = (char)('0' + ms % 10);
	buf[n++] = 'Z';
	return n;
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), 0 when invalid: jansson's
 * utf8_check_first/utf8_check_full (shortest form, no surrogates, at most U+10FFFF). */
static size_t
audit_utf8_len(const unsigned char *s, size_t left)
{
	unsigned char u = s[0];
	uint32_t v;
	size_t n;

	if (u >= 0xC2 && u <= 0xDF) {
		n = 2;
		v = u & 0x1Fu;
	} else if (u >= 0xE0 && u <= 0xEF) {
		n = 3;
		v = u & 0x0Fu;
	} else if (u >= 0xF0 && u <= 0xF4) {
		n = 4;
		v = u & 0x07u;
	} else {
		return 0;	/* continuation byte, C0, C1, F5..FF */
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
		v = v << 6 | (s[i] & 0x3Fu);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
	    (n == 4 && v < 0x10000))
		return 0;
	return n;
}

/* Escaped length of s[0..n) (no quotes), or SIZE_MAX when it is not valid UTF-8. */
static size_t
audit_esc_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t out = 0, i = 0;

	while (i < n) {
		unsigned char c = s[i];

		if (c >= 0x80) {
			size_t k = audit_utf8_len(s + i, n - i);

			if (k == 0)
				return SIZE_MAX;
			out += k;
			i += k;
			continue;
		}
		if (c >= 0x20)
			out += c == '"' || c == '\\' ? 2 : 1;
		else
			out += c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' ? 2 : 6;
		i++;
	}
	return out;
}

/* Write s[0..n) escaped (already checked by audit_esc_len). */
static char *
audit_esc_put(char *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"':  *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0xF];
		}
	}
	return o;
}

/* json_int_t (long long) as jansson prints it ("%lld"); buf >= 24 bytes. */
static size_t
audit_int(char *buf, long long v)
{
	char tmp[24];
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	size_t n = 0, k = 0;

	do {
		tmp[k++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		buf[n++] = '-';
	while (k > 0)
		buf[n++] = tmp[--k];
	return n;
}

/* A real as jansson's jsonp_dtostr(precision 6) prints it ("C" locale: serve never calls
 * setlocale): "%.6g", ".0" added when there is neither '.' nor 'e', exponent without '+'
 * and leading zeros. buf >= 32 bytes. */
static size_t
audit_real(char *buf, double v)
{
	int r = snprintf(buf, 32, "%.6g", v);
	size_t len;
	char *start, *end;

	if (r < 0 || r >= 32)
		return 0;
	len = (size_t)r;
	if (memchr(buf, '.', len) == NULL && memchr(buf, 'e', len) == NULL) {
		memcpy(buf + len, ".0", 3);
		len += 2;
	}
	if ((start = memchr(buf, 'e', len)) != NULL) {
		start++;
		end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, len - (size_t)(end - buf) + 1);
			len -= (size_t)(end - start);
		}
	}
	return len;
}

#define AUDIT_FIELDS	18

struct audit_field {
	const char *key;	/* ",\"key\":" */
	size_t klen;
	const char *v;		/* value: string to escape and quote, or number text */
	size_t n, out;		/* its length, its length as written (without quotes) */
	bool quote;
};

struct audit_fields {
	struct audit_field f[AUDIT_FIELDS];
	size_t n, total;	/* fields, bytes they take */
};

#define AUDIT_KEY(k)	",\"" k "\":", sizeof(",\"" k "\":") - 1

static void
audit_add(struct audit_fields *fs, const char *key, size_t klen, const char *v, size_t n,
    size_t out, bool quote)
{
	struct audit_field *f = &fs->f[fs->n++];

	f->key = key;
	f->klen = klen;
	f->v = v;
	f->n = n;
	f->out = out;
	f->quote = quote;
	fs->total += klen + out + (quote ? 2 : 0);
}

/* A string field of n bytes, unless NULL or not valid UTF-8 (json_stringn gives NULL). */
static void
audit_add_strn(struct audit_fields *fs, const char *key, size_t klen, const char *v, size_t n)
{
	size_t out;

	if (v != NULL && (out = audit_esc_len(v, n)) != SIZE_MAX)
		audit_add(fs, key, klen, v, n, out, true);
}

static void
audit_add_str(struct audit_fields *fs, const char *key, size_t klen, const char *v)
{
	if (v != NULL)
		audit_add_strn(fs, key, klen, v, strlen(v));
}

static void
audit_add_int(struct audit_fields *fs, const char *key, size_t klen, char *buf, long long v)
{
	size_t n = audit_int(buf, v);

	audit_add(fs, key, klen, buf, n, n, false);
}

/* json_real gives NULL (the field is left out) for NaN and infinities. */
static void
audit_add_real(struct audit_fields *fs, const char *key, size_t klen, char *buf, double v)
{
	size_t n;

	if (!isnan(v) && !isinf(v) && (n = audit_real(buf, v)) > 0)
		audit_add(fs, key, klen, buf, n, n, false);
}

static char *
audit_format(const audit_event_t *ev)
{
	char ts[40], num[6][32], *line, *o;
	struct audit_fields fs = {.n = 0, .total = 0};
	size_t tn = audit_time(ts);

	audit_add(&fs, "{\"time\":", sizeof("{\"time\":") - 1, ts, tn, tn, true);
	audit_add_str(&fs, AUDIT_KEY("event"), ev->event);
	audit_add_str(&fs, AUDIT_KEY("sandbox"), ev->sandbox);
	audit_add_str(&fs, AUDIT_KEY("origin_sandbox"), ev->origin_sandbox);
	audit_add_str(&fs, AUDIT_KEY("source"), ev->source);
	audit_add_str(&fs, AUDIT_KEY("handle_id"), ev->handle_id);
	audit_add_str(&fs, AUDIT_KEY("credential"), ev->credential);
	audit_add_str(&fs, AUDIT_KEY("method"), ev->method);
	audit_add_str(&fs, AUDIT_KEY("host"), ev->host);
	if (ev->port != 0)
		audit_add_int(&fs, AUDIT_KEY("port"), num[0], ev->port);
	/* the path up to (not including) its query or fragment */
	if (ev->path != NULL)
		audit_add_strn(&fs, AUDIT_KEY("path"), ev->path, strcspn(ev->path, "?#"));
	if (ev->status != 0) {
		audit_add_int(&fs, AUDIT_KEY("status"), num[1], ev->status);
		audit_add_str(&fs, AUDIT_KEY("error"), ev->error);
		audit_add_int(&fs, AUDIT_KEY("bytes_up"), num[2], (long long)ev->bytes_up);
		audit_add_int(&fs, AUDIT_KEY("bytes_down"), num[3], (long long)ev->bytes_down);
	} else {
		audit_add_str(&fs, AUDIT_KEY("error"), ev->error);
	}
	if (ev->upstream_ms > 0)
		audit_add_real(&fs, AUDIT_KEY("upstream_ms"), num[4], ev->upstream_ms);
	if (ev->total_ms > 0)
		audit_add_real(&fs, AUDIT_KEY("total_ms"), num[5], ev->total_ms);
	audit_add_str(&fs, AUDIT_KEY("detail"), ev->detail);

	if ((line = malloc(fs.total + 3)) == NULL)	/* '}' '\n' NUL */
		return NULL;
	o = line;
	for (size_t i = 0; i < fs.n; i++) {
		const struct audit_field *f = &fs.f[i];

		memcpy(o, f->key, f->klen);
		o += f->klen;
		if (f->quote) {
			*o++ = '"';
			o = f->out == f->n ? (char *)memcpy(o, f->v, f->n) + f->n :
			    audit_esc_put(o, f->v, f->n);
			*o++ = '"';
		} else {
			memcpy(o, f->v, f->n);
			o += f->n;
		}
	}
	*o++ = '}';
	*o++ = '\n';
	*o = '\0';
	return line;
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
