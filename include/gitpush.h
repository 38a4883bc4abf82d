/*
 * gitpush.h — the git push policy: which refs a push through sealgate may update.
 *
 * A git push over smart HTTP is one POST .../git-receive-pack whose body is the ref
 * update commands in pkt-lines (pktline.h), a flush, then the packfile. gitpush reads
 * the command section as the body streams and decides from the commands alone, before
 * a byte of the body goes upstream:
 *   - every ref must match one of the credential's patterns and, when the handle
 *     narrows them (--git-ref), one of the handle's too;
 *   - a delete (new oid all zeros) needs delete allowed;
 *   - "shallow" lines before the commands are skipped; a signed push ("push-cert") is
 *     refused: its certificate signs the commands sealgate cannot vouch for.
 * One refused command refuses the whole push (nothing is forwarded, so no ref moves).
 *
 * Force: git's commands do not say "force"; when force is not allowed, every update of
 * an existing ref (old and new ids not zero) must be proven a fast-forward from the
 * pack that follows: the verdict is then GITPUSH_PACK, the body is forwarded as it
 * streams while the pack is walked (gitpack.h), but its last bytes (the pack checksum,
 * hash-length bytes) are held back by gitpush_release until gitpush_finish decides.
 * Proven: they follow (gitpush_release_end). Not proven (a rewrite, or commits the pack
 * does not carry): they are never sent, so the server never sees a complete pack and
 * updates nothing, and the client gets the refusal. "push-options" pkt-lines after the
 * commands (when that capability is asked) are skipped before the pack.
 *
 * Patterns: "refs/..." globs; '*' matches within one path segment (no '/'), '**' any
 * run of characters across segments. gitpush_pattern_check validates one.
 *
 * Pure core. gitpush_new keeps pointers to the rules' strings (they must outlive it);
 * gitpush_free frees the state. Not thread-safe; one per request.
 */
#ifndef SEALGATE_GITPUSH_H
#define SEALGATE_GITPUSH_H

#include <stdbool.h>
#include <stddef.h>

#include "pktline.h"
#include "util.h"

/* Longest push-ref pattern (policy or handle claim); the longest ref is PKTLINE_REF_MAX. */
#define GITPUSH_PATTERN_MAX	256
/* Commands held while deciding: a push of more refs than this is refused as too big
 * (a mirror push of a large repository; policy pushes name a few branches). */
#define GITPUSH_MAX_COMMANDS	1024
/* Bytes of shallow lines and commands before the decision (1024 commands of sha256
 * oids and long names fit; the packfile only starts after them). */
#define GITPUSH_MAX_COMMAND_BYTES (1024 * 1024)

typedef struct gitpush_rules {
	char *const *refs;	/* the credential's patterns (at least one) */
	size_t nrefs;
	char *const *narrow;	/* the handle's own patterns; nnarrow 0: none */
	size_t nnarrow;
	bool allow_delete;
	bool allow_force;	/* false: updates must be proven fast-forwards */
} gitpush_rules_t;

enum gitpush_verdict {
	GITPUSH_MORE,		/* still reading the commands */
	GITPUSH_ALLOW,		/* every command allowed: forward the body */
	GITPUSH_PACK,		/* allowed so far: forward through gitpush_release and
				 * decide at the end (gitpush_finish) */
	GITPUSH_REFUSE,		/* refused: answer gitpush_answer, forward nothing */
	GITPUSH_BAD,		/* not a receive-pack request body: gitpush_error */
};

typedef struct gitpush gitpush_t;

/* NULL when out of memory. */
gitpush_t *gitpush_new(const gitpush_rules_t *rules) SG_NONNULL SG_WUR;
void gitpush_free(gitpush_t *g);
/* Body bytes in order. Once decided, the verdict stays and further bytes are ignored. */
enum gitpush_verdict gitpush_feed(gitpush_t *g, const void *data, size_t len) SG_NONNULL;
/* The body ended: a decision on what was read (MORE becomes ALLOW after the command
 * flush, or an empty body; BAD when cut inside the commands; PACK becomes ALLOW when
 * every update is proven a fast-forward, else REFUSE). */
enum gitpush_verdict gitpush_finish(gitpush_t *g) SG_NONNULL;

/* Forward body bytes through emit (in order, split anywhere): under GITPUSH_PACK all but
 * the last hash-length bytes seen so far go out, else all. */
typedef void (*gitpush_emit_fn)(void *arg, const void *data, size_t len);
void gitpush_release(gitpush_t *g, const void *data, size_t len, gitpush_emit_fn emit,
    void *arg) __attribute__((nonnull(1, 4)));
/* After gitpush_finish said ALLOW: the held-back bytes go out. */
void gitpush_release_end(gitpush_t *g, gitpush_emit_fn emit, void *arg)
    __attribute__((nonnull(1, 2)));
/* Why a body is BAD (static text). */
const char *gitpush_error(const gitpush_t *g) SG_NONNULL;
/* Commands read, and did the client ask for side-band-64k? */
size_t gitpush_ncommands(const gitpush_t *g) SG_NONNULL;
bool gitpush_sideband(const gitpush_t *g) SG_NONNULL;
/*
 * The answer to a refused push (report-status: "unpack ok", "ng REF reason" for every
 * command, in side-band-64k when asked, with the first reason on band 2 too), malloc'd,
 * or NULL when out of memory. Also for a refused signed push (no refs: the reason alone).
 */
char *gitpush_answer(const gitpush_t *g, size_t *len) SG_NONNULL SG_WUR;
/* The refused refs and why, for audit and log lines: "refs/heads/main (outside push
 * refs), ..." cut to fit len. */
void gitpush_summary(const gitpush_t *g, char *out, size_t len) SG_NONNULL;

/*
 * Is target (origin-form, query allowed) a receive-pack request ("/…/git-receive-pack",
 * compared after %XX decoding, as the server's CGI layer decodes PATH_INFO)?
 */
bool gitpush_is_receive_pack(const char *target) SG_NONNULL;

/* Is pattern a valid push-ref glob? 0, or -1. */
int gitpush_pattern_check(const char *pattern) SG_NONNULL;
/* Does ref match pattern? */
bool gitpush_ref_match(const char *pattern, const char *ref) SG_NONNULL;
/* Is every ref narrow matches also matched by one of pats? (Sound, not complete: a
 * narrow pattern is accepted when a pattern covers it token by token.) */
bool gitpush_pattern_within(const char *narrow, char *const *pats, size_t n) SG_NONNULL;

#endif
