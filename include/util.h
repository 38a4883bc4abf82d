/*
 * util.h — small pure helpers shared by modules: durations, hex, files, strings.
 * Memory for secrets is secmem.h's.
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
 * With secret set the buffer is guarded memory (free with secmem_guarded_free) and
 * the file is refused when group/others can read it (key files must be 0600).
 * Returns 0, or -1 with a message in err ("PATH: ..." — the open error, "not a regular
 * file", "larger than N bytes", "cannot read: ERRNO", "out of memory [for secrets]").
 */
int util_read_file(const char *path, size_t max, int secret, char **out, size_t *outlen,
    char *err, size_t errlen) SG_WUR;

/* Write data to path (created with mode, replaced atomically via path.tmp + rename). */
int util_write_file(const char *path, const void *data, size_t len, mode_t mode,
    char *err, size_t errlen) SG_WUR;

struct secmem_arena;

/* util_read_file(path, max, secret=1, ...) into the arena a (secmem.h). */
int util_read_file_arena(struct secmem_arena *a, const char *path, size_t max, char **out,
    size_t *outlen, char *err, size_t errlen) SG_WUR;

/* Current time: wall clock seconds / monotonic milliseconds. Only the shell reads clocks. */
/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12, d 1..31; not
 * checked): Howard Hinnant's days_from_civil, no time zone, no libc. */
int64_t util_days_from_civil(int64_t y, unsigned m, unsigned d);
int64_t util_now_s(void);
uint64_t util_mono_ms(void);
/* Monotonic milliseconds with microsecond resolution, for latencies. */
double util_mono_msf(void);
/* Monotonic microseconds (busy polling). */
uint64_t util_mono_us(void);

/* Path relative to the folder of base (absolute paths returned as is). malloc'd. */
char *util_path_relative_to(const char *base_file, const char *path);

#endif
