/*
 * secexec.h — run a secret.exec command and capture its value: argv (argv[0] a path, no
 * shell, no PATH search) with posix_spawn, stdin /dev/null, stdout captured up to max
 * bytes, stderr read and counted but never kept (a failing helper may print the token
 * it could not use), killed (SIGKILL) when timeout_ms passes.
 *
 * The child's environment is not the proxy's: PATH=SG_SECRET_EXEC_PATH, HOME (the
 * proxy's, when set: helpers such as `gh` find their configuration there), LC_ALL=C.
 * Every descriptor but 0, 1 and 2 is closed in the child.
 *
 * Blocking (poll on the pipes and a pidfd): call it off the event loops (secwatch.c runs
 * it on a thread of its own). Thread-safe. A shell module: it reads the clock.
 */
#ifndef SEALGATE_SECEXEC_H
#define SEALGATE_SECEXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct secexec_result {
	int status;		/* exit status; -1 when it did not exit (signal, kill) */
	int signal;		/* signal that ended it, or 0 */
	bool timed_out;		/* killed after timeout_ms */
	bool too_long;		/* stdout longer than max (the child is killed) */
	size_t stderr_bytes;	/* counted, never kept */
	char what[160];		/* why it failed, for a log line: no output content */
} secexec_result_t;

/*
 * Run argv (NULL-terminated); on success (exit status 0, stdout within max bytes) *out
 * is its stdout in guarded memory, NUL-terminated (secmem_guarded_free), *outlen its
 * length, untrimmed. 0, or -1 with *out NULL and r->what saying why.
 */
int secexec_run(char *const argv[], uint64_t timeout_ms, size_t max, char **out,
    size_t *outlen, secexec_result_t *r) SG_NONNULL SG_WUR;

#endif
