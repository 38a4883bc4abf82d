/*
 * util.h — small pure helpers shared by modules: durations, hex, files, strings.
 */
#ifndef SEALGATE_UTIL_H
#define SEALGATE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SG_NONNULL   __attribute__((nonnull))
#define SG_WUR       __attribute__((warn_unused_result))
#define SG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* "15m", "1h", "30s", "500ms", "2d", "1h30m" -> milliseconds. 0 ok, -1 malformed/overflow. */
int util_parse_duration_ms(const char *s, uint64_t *out_ms) SG_NONNULL SG_WUR;

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void util_hex_encode(const uint8_t *in, size_t len, char *out) SG_NONNULL;
/* Value of one hex digit (either case), or -1. */
int util_hex_nibble(char c);
/* Exactly 2*outlen hex digits (surrounding whitespace ignored) -> bytes. 0 ok, -1 bad. */
int util_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen) SG_WUR;

/*
 * Read a whole file (at most max bytes) into a NUL-terminated malloc'd buffer.
 * With secret set the buffer comes from sodium_malloc (free with util_secret_free) and
 * the file is refused when group/others can read it (key files must be 0600).
 * Returns 0, or -1 with a message in err ("PATH: ..." — the open error, "not a regular
 * file", "larger than N bytes", "cannot read: ERRNO", "out of memory [for secrets]").
 */
int util_read_file(const char *path, size_t max, int secret, char **out, size_t *outlen,
    char *err, size_t errlen) SG_WUR;

/* Write data to path (created with mode, replaced atomically via path.tmp + rename). */
int util_write_file(const char *path, const void *data, size_t len, mode_t mode,
    char *err, size_t errlen) SG_WUR;

/*
 * Short-lived secret copies (a request's injected header, a scrubber's needle): heap
 * memory that is zeroed when freed. sodium_malloc's guard pages and mlock cost about
 * seven syscalls a call — too much per request — and the process refuses core dumps
 * anyway (serve: RLIMIT_CORE 0, not dumpable). util_wipe_free only what util_wipe_*
 * returned; NULL is fine.
 */
void *util_wipe_alloc(size_t len);
char *util_wipe_dup(const char *s, size_t len);
void util_wipe_free(void *p);

/* Long-lived secret buffers (keys, tokens): sodium_malloc'd (guard pages, mlock). */
char *util_secret_dup(const char *s, size_t len);
void util_secret_free(void *p);

/*
 * A secret arena: many long-lived secrets (a policy snapshot's) in a few sodium_malloc'd
 * regions — guard pages around each region, mlock'd, kept out of core dumps, zeroed when
 * the arena is freed. One sodium_malloc costs ~4 memory mappings; the arena costs that
 * per region, and regions double in size, so mappings grow with log(bytes), not with the
 * number of secrets. Allocations live until util_secret_arena_free; not thread-safe while
 * being filled, read-only use afterwards is.
 */
typedef struct util_secret_arena util_secret_arena_t;

util_secret_arena_t *util_secret_arena_new(void);
/* len + 1 bytes (the caller NUL-terminates), or NULL with errno set. */
char *util_secret_arena_alloc(util_secret_arena_t *a, size_t len) SG_NONNULL;
/* A NUL-terminated copy of s[0..len), or NULL with errno set. */
char *util_secret_arena_dup(util_secret_arena_t *a, const char *s, size_t len) SG_NONNULL;
/* Zero a secret that is not wanted after all (its space is reused if it was the last). */
void util_secret_arena_drop(util_secret_arena_t *a, char *p, size_t len) SG_NONNULL;
/* util_read_file(path, max, secret=1, ...) into the arena. */
int util_secret_arena_read_file(util_secret_arena_t *a, const char *path, size_t max,
    char **out, size_t *outlen, char *err, size_t errlen) SG_WUR;
/* How many regions (sodium_malloc calls) hold the arena's secrets. */
size_t util_secret_arena_regions(const util_secret_arena_t *a) SG_NONNULL;
/* Zero and unmap every region; NULL is fine. */
void util_secret_arena_free(util_secret_arena_t *a);

/* Current time: wall clock seconds / monotonic milliseconds. Only the shell reads clocks. */
int64_t util_now_s(void);
uint64_t util_mono_ms(void);
/* Monotonic milliseconds with microsecond resolution, for latencies. */
double util_mono_msf(void);
/* Monotonic microseconds (busy polling). */
uint64_t util_mono_us(void);

/* Path relative to the folder of base (absolute paths returned as is). malloc'd. */
char *util_path_relative_to(const char *base_file, const char *path);

#endif
