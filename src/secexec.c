/* secexec.c — run a secret command: posix_spawn, captured stdout, counted stderr,
 * a deadline that kills. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "defaults.h"
#include "secexec.h"
#include "secmem.h"

/* What the child runs with (secexec.h). */
struct secexec_env {
	char path[sizeof("PATH=") + sizeof(SG_SECRET_EXEC_PATH)];
	char home[4096];
	char *envp[4];
};

static void
secexec_env(struct secexec_env *e)
{
	const char *home = getenv("HOME");
	size_t n = 0;

	snprintf(e->path, sizeof(e->path), "PATH=%s", SG_SECRET_EXEC_PATH);
	e->envp[n++] = e->path;
	if (home != NULL && snprintf(e->home, sizeof(e->home), "HOME=%s", home) <
	    (int)sizeof(e->home))
		e->envp[n++] = e->home;
	e->envp[n++] = (char *)"LC_ALL=C";
	e->envp[n] = NULL;
}

static uint64_t
secexec_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Spawn argv with stdout to out[1], stderr to err[1]; its pid, or -1. */
static pid_t
secexec_spawn(char *const argv[], int outfd, int errfd)
{
	posix_spawn_file_actions_t fa;
	struct secexec_env env = {0};
	pid_t pid = -1;
	int rc;

	secexec_env(&env);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc |= posix_spawn_file_actions_adddup2(&fa, outfd, 1);
	rc |= posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	rc |= posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0 && (rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, env.envp)) != 0) {
		errno = rc;
		pid = -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

/* The capture of one run: the pipes' read ends, the pidfd, the buffer. */
struct secexec_run {
	struct pollfd pfd[3];		/* stdout, stderr, pidfd */
	char *buf;
	size_t len, max;
	secexec_result_t *r;
	bool exited;
};

/* One readable pipe: stdout into the buffer (too long: stop), stderr counted. */
static void
secexec_read(struct secexec_run *x, int i)
{
	char junk[4096];
	ssize_t n;

	if (i == 0) {
		n = read(x->pfd[0].fd, x->buf + x->len, x->max + 1 - x->len);
		if (n > 0 && (x->len += (size_t)n) > x->max)
			x->r->too_long = true;
	} else {
		n = read(x->pfd[1].fd, junk, sizeof(junk));
		if (n > 0)
			x->r->stderr_bytes += (size_t)n;
	}
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		close(x->pfd[i].fd);
		x->pfd[i].fd = -1;
	}
}

/* Poll until the child exited and both pipes closed, the deadline, or too much output. */
static void
secexec_wait(struct secexec_run *x, uint64_t deadline)
{
	while (!x->r->too_long && (!x->exited || x->pfd[0].fd >= 0 || x->pfd[1].fd >= 0)) {
		uint64_t now = secexec_now_ms();
		int n;

		if (now >= deadline) {
			x->r->timed_out = true;
			return;
		}
		n = poll(x->pfd, 3, (int)(deadline - now));
		if (n < 0 && errno != EINTR)
			return;
		for (int i = 0; n > 0 && i < 2; i++)
			if (x->pfd[i].fd >= 0 && x->pfd[i].revents != 0)
				secexec_read(x, i);
		if (n > 0 && x->pfd[2].fd >= 0 && x->pfd[2].revents != 0) {
			x->exited = true;
			x->pfd[2].fd = -1;	/* closed by the caller */
		}
	}
}

/* Reap the child (killed first unless it exited) and say how it ended. */
static int
secexec_reap(pid_t pid, struct secexec_run *x)
{
	secexec_result_t *r = x->r;
	int st = 0;

	if (!x->exited || r->timed_out || r->too_long)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	if (r->timed_out)
		snprintf(r->what, sizeof(r->what), "timed out (killed)");
	else if (r->too_long)
		snprintf(r->what, sizeof(r->what), "printed more than %zu bytes", x->max);
	else if (r->signal != 0)
		snprintf(r->what, sizeof(r->what), "killed by signal %d", r->signal);
	else if (r->status != 0)
		snprintf(r->what, sizeof(r->what), "exited with status %d", r->status);
	else
		return 0;
	return -1;
}

static void
secexec_close(struct secexec_run *x, int pidfd)
{
	for (int i = 0; i < 2; i++)
		if (x->pfd[i].fd >= 0)
			close(x->pfd[i].fd);
	if (pidfd >= 0)
		close(pidfd);
}

int
secexec_run(char *const argv[], uint64_t timeout_ms, size_t max, char **out,
    size_t *outlen, secexec_result_t *r)
{
	struct secexec_run x = {.max = max, .r = r};
	int op[2] = {-1, -1}, ep[2] = {-1, -1}, pidfd = -1, rc = -1;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	*out = NULL;
	if ((x.buf = secmem_guarded_alloc(max + 2)) == NULL || pipe2(op, O_CLOEXEC) < 0 ||
	    pipe2(ep, O_CLOEXEC) < 0) {
		snprintf(r->what, sizeof(r->what), "cannot start: %s", strerror(errno));
		goto out;
	}
	pid = secexec_spawn(argv, op[1], ep[1]);
	close(op[1]);
	close(ep[1]);
	if (pid < 0) {
		snprintf(r->what, sizeof(r->what), "cannot start: %s", strerror(errno));
		close(op[0]);
		close(ep[0]);
		goto out;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	x.pfd[0] = (struct pollfd){.fd = op[0], .events = POLLIN};
	x.pfd[1] = (struct pollfd){.fd = ep[0], .events = POLLIN};
	x.pfd[2] = (struct pollfd){.fd = pidfd, .events = POLLIN};
	x.exited = pidfd < 0;	/* no pidfd: the pipes' end stands for the exit */
	secexec_wait(&x, secexec_now_ms() + timeout_ms);
	rc = secexec_reap(pid, &x);
	secexec_close(&x, pidfd);
out:
	if (rc == 0) {
		x.buf[x.len] = '\0';
		*out = x.buf;
		*outlen = x.len;
	} else {
		secmem_guarded_free(x.buf);
	}
	return rc;
}
