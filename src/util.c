/* util.c — durations, hex, file I/O for keys and policy, clocks. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secmem.h"
#include "util.h"

int
util_parse_duration_ms(const char *s, uint64_t *out_ms)
{
	uint64_t total = 0;
	int parts = 0;

	while (*s) {
		uint64_t n = 0, unit;
		int digits = 0;

		while (isdigit((unsigned char)*s)) {
			if (n > UINT64_MAX / 10 - 10)
				return -1;
			n = n * 10 + (uint64_t)(*s++ - '0');
			digits++;
		}
		if (digits == 0)
			return -1;
		if (strncmp(s, "ms", 2) == 0) {
			unit = 1;
			s += 2;
		} else if (*s == 's') {
			unit = 1000;
			s++;
		} else if (*s == 'm') {
			unit = 60 * 1000;
			s++;
		} else if (*s == 'h') {
			unit = 3600 * 1000;
			s++;
		} else if (*s == 'd') {
			unit = 86400 * 1000;
			s++;
		} else
			return -1;
		if (n > (UINT64_MAX - total) / unit)
			return -1;
		total += n * unit;
		parts++;
	}
	if (parts == 0)
		return -1;
	*out_ms = total;
	return 0;
}

void
util_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int64_t
util_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int
util_hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
util_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	while (inlen > 0 && isspace((unsigned char)in[0])) {
		in++;
		inlen--;
	}
	while (inlen > 0 && isspace((unsigned char)in[inlen - 1]))
		inlen--;
	if (inlen != 2 * outlen)
		return -1;
	for (size_t i = 0; i < outlen; i++) {
		int hi = util_hex_nibble(in[2 * i]), lo = util_hex_nibble(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/*
 * Open path for reading: a regular file of at most max bytes, mode 0600 (no group or
 * other bits) when secret. Returns the fd and its size, or -1 with a message in err.
 */
static int
util_read_open(const char *path, size_t max, int secret, size_t *size, char *err,
    size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (secret && (st.st_mode & 077)) {
		snprintf(err, errlen, "%s: readable by group or others (mode %03o); chmod 600 it",
		    path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	if ((size_t)st.st_size > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		close(fd);
		return -1;
	}
	*size = (size_t)st.st_size;
	return fd;
}

/* Read at most len bytes of fd into buf (len + 1 bytes) and NUL-terminate; 0 or -1. */
static int
util_read_fd(int fd, const char *path, char *buf, size_t len, size_t *outlen, char *err,
    size_t errlen)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	if (outlen)
		*outlen = got;
	return 0;
}

/* The buffer for a file could not be had: say so (it is not the file's fault). */
static void
util_read_nomem(const char *path, int secret, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: out of memory%s (%s)", path, secret ? " for secrets" : "",
	    strerror(errno != 0 ? errno : ENOMEM));
}

/* Where a file is read to: the heap, guarded memory, or an arena (when not NULL). */
struct util_read_dst {
	int secret;
	secmem_arena_t *arena;
};

/* size + 1 bytes at dst, or NULL with errno set. */
static char *
util_read_alloc(const struct util_read_dst *dst, size_t size)
{
	if (dst->arena != NULL)
		return secmem_arena_alloc(dst->arena, size);
	return dst->secret ? secmem_guarded_alloc(size + 1) : malloc(size + 1);
}

static void
util_read_release(const struct util_read_dst *dst, char *buf, size_t size)
{
	if (dst->arena != NULL)
		secmem_arena_drop(dst->arena, buf, size);
	else if (dst->secret)
		secmem_guarded_free(buf);
	else
		free(buf);
}

static int
util_read_to(const char *path, size_t max, const struct util_read_dst *dst, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	size_t size;
	char *buf;
	int fd, rc;

	if ((fd = util_read_open(path, max, dst->secret, &size, err, errlen)) < 0)
		return -1;
	errno = 0;
	if ((buf = util_read_alloc(dst, size)) == NULL) {
		util_read_nomem(path, dst->secret, err, errlen);
		close(fd);
		return -1;
	}
	rc = util_read_fd(fd, path, buf, size, outlen, err, errlen);
	close(fd);
	if (rc < 0) {
		util_read_release(dst, buf, size);
		return -1;
	}
	*out = buf;
	return 0;
}

int
util_read_file(const char *path, size_t max, int secret, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	const struct util_read_dst dst = {secret, NULL};

	return util_read_to(path, max, &dst, out, outlen, err, errlen);
}

int
util_read_file_arena(secmem_arena_t *a, const char *path, size_t max, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	const struct util_read_dst dst = {1, a};

	return util_read_to(path, max, &dst, out, outlen, err, errlen);
}

int
util_write_file(const char *path, const void *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	char tmp[4096];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int64_t
util_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t
util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

double
util_mono_msf(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

char *
util_path_relative_to(const char *base_file, const char *path)
{
	const char *slash;
	char *out;
	size_t dirlen;

	if (path[0] == '/' || (slash = strrchr(base_file, '/')) == NULL)
		return strdup(path);
	dirlen = (size_t)(slash - base_file);
	out = malloc(dirlen + 1 + strlen(path) + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, base_file, dirlen);
	out[dirlen] = '/';
	strcpy(out + dirlen + 1, path);
	return out;
}
