/* secwatch.c — rotating secrets on the main loop: inotify for files, timed command runs
 * on helper threads, publishes into the credentials' live cells. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "audit.h"
#include "defaults.h"
#include "log.h"
#include "secexec.h"
#include "secmem.h"
#include "secval.h"
#include "secwatch.h"
#include "stats.h"

/* Folder changes that can replace a watched file's content (IN_MODIFY is left out: it
 * fires mid-write; IN_CLOSE_WRITE follows). */
#define SECWATCH_MASK	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | \
			 IN_MOVED_FROM | IN_ATTRIB)

/* One rotating secret. */
struct secsrc {
	const policy_credential_t *cr;	/* in w->policy; cr->live is the cell */
	int wd;				/* file: its folder's inotify watch, else -1 */
	bool hit;			/* file: its folder changed (this batch of events) */
	/* exec */
	char **argv;			/* NULL-terminated view of cr->exec.argv */
	uint64_t next_run_ms;
	pthread_t th;
	bool running;
	int done;			/* atomic: the thread has filled the result */
	int rc;
	char *out;			/* guarded */
	size_t outlen;
	secexec_result_t res;
};

struct secwatch {
	struct event_base *base;
	policy_t *policy;
	int ifd;			/* inotify, or -1 when no file is watched */
	struct event *iev, *tick;
	struct secsrc *src;
	size_t n;
};

static const char *
secwatch_kind(const struct secsrc *s)
{
	return s->cr->secret_source == SECRET_EXEC ? "exec" : "file";
}

/* v (trimmed, checked) is what the source gives now: publish what follows. */
static void
secwatch_apply(struct secsrc *s, const char *v, size_t len, uint64_t expires, uint64_t now)
{
	secval_t *cur = snapshot_acquire(s->cr->live), *next;
	bool rotated = false;
	audit_event_t a = {.event = "secret_rotated", .credential = s->cr->name};

	next = secval_next(cur, v, len, expires, now + SG_SECRET_SCRUB_GRACE_S * 1000ull,
	    &rotated);
	secval_unref(cur);
	if (next == NULL) {
		log_warn("secret of credential %s: out of memory; keeping the current value",
		    s->cr->name);
		return;
	}
	(void)snapshot_publish(s->cr->live, next);
	if (!rotated)
		return;
	STATS_INC(secret_rotations);
	a.detail = s->cr->secret_source == SECRET_EXEC ? "source exec" : "source file";
	audit_log(&a);
	log_info("secret of credential %s rotated (source %s); the replaced value is "
	    "scrubbed from responses for %d s, then wiped", s->cr->name, secwatch_kind(s),
	    SG_SECRET_SCRUB_GRACE_S);
}

/* A file source's folder changed: read it again (same rules as policy load). */
static void
secwatch_file_check(struct secsrc *s)
{
	char err[512], *buf = NULL;
	size_t len = 0;

	if (util_read_file(s->cr->secret_file, SG_SECRET_MAX_LEN, 1, &buf, &len, err,
	    sizeof(err)) < 0) {
		STATS_INC(secret_source_failures);
		log_warn("secret of credential %s: %s; keeping the current value",
		    s->cr->name, err);
		return;
	}
	if (secval_trim_check(buf, &len) < 0) {
		STATS_INC(secret_source_failures);
		log_warn("secret of credential %s: %s holds no usable secret (empty, or a "
		    "line break or NUL inside); keeping the current value", s->cr->name,
		    s->cr->secret_file);
	} else {
		secwatch_apply(s, buf, len, 0, util_mono_ms());
	}
	secmem_guarded_free(buf);
}

static void
secwatch_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	secwatch_t *w = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			for (size_t i = 0; i < w->n; i++)
				w->src[i].hit |= w->src[i].wd == ev->wd;
			p += sizeof(*ev) + ev->len;
		}
	}
	for (size_t i = 0; i < w->n; i++) {
		if (w->src[i].hit)
			secwatch_file_check(&w->src[i]);
		w->src[i].hit = false;
	}
}

/* --- exec sources ------------------------------------------------------------------ */

static void *
secwatch_exec_thread(void *arg)
{
	struct secsrc *s = arg;

	s->rc = secexec_run(s->argv, s->cr->exec.timeout_ms, SG_SECRET_MAX_LEN + 2, &s->out,
	    &s->outlen, &s->res);
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A run ended (rc, out, res): apply its value or keep the last; when to run next. */
static void
secwatch_exec_result(struct secsrc *s, uint64_t now)
{
	secval_t *cur = snapshot_acquire(s->cr->live);
	uint64_t expires = cur ? cur->expires_ms : 0;
	bool ok = s->rc == 0 && secval_trim_check(s->out, &s->outlen) == 0;

	secval_unref(cur);
	if (ok) {
		secwatch_apply(s, s->out, s->outlen, now + s->cr->exec.ttl_ms, now);
	} else {
		STATS_INC(secret_source_failures);
		log_warn("secret of credential %s: command %s %s (stderr: %zu bytes); the last "
		    "good value stays until it expires", s->cr->name, s->argv[0],
		    s->rc == 0 ? "printed no usable secret" : s->res.what,
		    s->res.stderr_bytes);
	}
	secmem_guarded_free(s->out);
	s->out = NULL;
	s->next_run_ms = secval_next_run(now, ok, s->cr->exec.ttl_ms,
	    SG_SECRET_EXEC_REFRESH_PCT, SG_SECRET_EXEC_RETRY_MS, expires);
}

static void
secwatch_exec_join(struct secsrc *s)
{
	if (!s->running)
		return;
	pthread_join(s->th, NULL);
	s->running = false;
	s->done = 0;
}

static void
secwatch_exec_step(struct secsrc *s, uint64_t now)
{
	if (s->running && __atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
		secwatch_exec_join(s);
		secwatch_exec_result(s, now);
	}
	if (s->running || now < s->next_run_ms)
		return;
	if (pthread_create(&s->th, NULL, secwatch_exec_thread, s) != 0) {
		log_warn("secret of credential %s: no thread to run its command: %s",
		    s->cr->name, strerror(errno));
		s->next_run_ms = now + SG_SECRET_EXEC_RETRY_MS;
		return;
	}
	s->running = true;
}

/* Every SG_SECRET_TICK_MS: command runs, and replaced values whose grace ended. */
static void
secwatch_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	secwatch_t *w = arg;
	uint64_t now = util_mono_ms();

	(void)fd;
	(void)what;
	for (size_t i = 0; i < w->n; i++) {
		struct secsrc *s = &w->src[i];
		secval_t *cur = snapshot_acquire(s->cr->live), *next;

		if (cur != NULL && secval_prev_due(cur, now) &&
		    (next = secval_without_prev(cur)) != NULL) {
			(void)snapshot_publish(s->cr->live, next);
			log_debug("secret of credential %s: the replaced value's grace period "
			    "ended", s->cr->name);
		}
		secval_unref(cur);
		if (s->cr->secret_source == SECRET_EXEC)
			secwatch_exec_step(s, now);
	}
}

/* --- setup ------------------------------------------------------------------------- */

/* prev's source for the same credential running the same command, or NULL. */
static const struct secsrc *
secwatch_same_exec(const secwatch_t *prev, const policy_credential_t *cr)
{
	for (size_t i = 0; prev != NULL && i < prev->n; i++) {
		const policy_credential_t *o = prev->src[i].cr;
		bool same = o->secret_source == SECRET_EXEC && strcmp(o->name, cr->name) == 0 &&
		    o->exec.argv.n == cr->exec.argv.n;

		for (size_t j = 0; same && j < cr->exec.argv.n; j++)
			same = strcmp(o->exec.argv.v[j], cr->exec.argv.v[j]) == 0;
		if (same)
			return &prev->src[i];
	}
	return NULL;
}

/* An exec source's first value: handed over by prev, else run now (blocking). */
static int
secwatch_exec_first(struct secsrc *s, const secwatch_t *prev, char *err, size_t errlen)
{
	const struct secsrc *o = secwatch_same_exec(prev, s->cr);
	secval_t *v = o ? snapshot_acquire(o->cr->live) : NULL;
	uint64_t now = util_mono_ms();

	if (v != NULL && secval_usable(v, now)) {
		(void)snapshot_publish(s->cr->live, v);
		s->next_run_ms = o->running ? now : o->next_run_ms;
		return 0;
	}
	secval_unref(v);
	(void)secwatch_exec_thread(s);
	s->done = 0;
	if (s->rc == 0 && secval_trim_check(s->out, &s->outlen) == 0) {
		secwatch_exec_result(s, util_mono_ms());
		return 0;
	}
	snprintf(err, errlen, "secret of credential %s: command %s %s (stderr: %zu bytes)",
	    s->cr->name, s->argv[0], s->rc == 0 ? "printed no usable secret" : s->res.what,
	    s->res.stderr_bytes);
	secmem_guarded_free(s->out);
	s->out = NULL;
	return -1;
}

static int
secwatch_file_first(secwatch_t *w, struct secsrc *s, char *err, size_t errlen)
{
	char dir[PATH_MAX];

	if (w->ifd < 0 && (w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		snprintf(err, errlen, "inotify: %s", strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", s->cr->secret_file);
	if ((s->wd = inotify_add_watch(w->ifd, dirname(dir), SECWATCH_MASK)) < 0) {
		snprintf(err, errlen, "secret of credential %s: cannot watch %s: %s",
		    s->cr->name, dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int
secwatch_add(secwatch_t *w, const policy_credential_t *cr, const secwatch_t *prev,
    char *err, size_t errlen)
{
	struct secsrc *s = &w->src[w->n++];

	s->cr = cr;
	s->wd = -1;
	if (cr->secret_source == SECRET_FILE)
		return secwatch_file_first(w, s, err, errlen);
	if ((s->argv = calloc(cr->exec.argv.n + 1, sizeof(char *))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(s->argv, cr->exec.argv.v, cr->exec.argv.n * sizeof(char *));
	return secwatch_exec_first(s, prev, err, errlen);
}

static int
secwatch_events(secwatch_t *w, char *err, size_t errlen)
{
	if (w->ifd >= 0 && ((w->iev = event_new(w->base, w->ifd, EV_READ | EV_PERSIST,
	    secwatch_inotify_cb, w)) == NULL || event_add(w->iev, NULL) < 0))
		goto fail;
	if ((w->tick = event_new(w->base, -1, EV_PERSIST, secwatch_tick_cb, w)) == NULL ||
	    event_add(w->tick, &(struct timeval){0, SG_SECRET_TICK_MS * 1000}) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "secret sources: cannot add events");
	return -1;
}

secwatch_t *
secwatch_new(struct event_base *base, policy_t *p, const secwatch_t *prev, char *err,
    size_t errlen)
{
	secwatch_t *w = calloc(1, sizeof(*w));

	if (w == NULL || (w->src = calloc(p->ncredentials + 1, sizeof(*w->src))) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(w);
		return NULL;
	}
	w->base = base;
	w->policy = policy_ref(p);
	w->ifd = -1;
	for (size_t i = 0; i < p->ncredentials; i++)
		if (p->credentials[i].live != NULL &&
		    secwatch_add(w, &p->credentials[i], prev, err, errlen) < 0)
			goto fail;
	if (w->n > 0 && secwatch_events(w, err, errlen) < 0)
		goto fail;
	return w;
fail:
	secwatch_free(w);
	return NULL;
}

void
secwatch_free(secwatch_t *w)
{
	if (w == NULL)
		return;
	if (w->iev)
		event_free(w->iev);
	if (w->tick)
		event_free(w->tick);
	if (w->ifd >= 0)
		close(w->ifd);
	for (size_t i = 0; i < w->n; i++) {
		secwatch_exec_join(&w->src[i]);
		secmem_guarded_free(w->src[i].out);
		free(w->src[i].argv);
	}
	free(w->src);
	policy_unref(w->policy);
	free(w);
}
