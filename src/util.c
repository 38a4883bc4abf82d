/* util.c — durations, hex, file I/O for keys and policy, secret buffers, clocks. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

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

static int
util_read_fd(int fd, size_t max, int secret, char **out, size_t *outlen)
{
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size > max)
		return -1;
	buf = secret ? sodium_malloc((size_t)st.st_size + 1) : malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return -1;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf;
	if (outlen)
		*outlen = got;
	return 0;
}

int
util_read_file(const char *path, size_t max, int secret, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
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
	rc = util_read_fd(fd, max, secret, out, outlen);
	close(fd);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot read", path);
	return rc;
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

/* Header before each wipe allocation: its size, kept 16-byte aligned. */
#define UTIL_WIPE_HDR 16

void *
util_wipe_alloc(size_t len)
{
	unsigned char *p;

	if (len > SIZE_MAX - UTIL_WIPE_HDR || (p = malloc(UTIL_WIPE_HDR + len)) == NULL)
		return NULL;
	memcpy(p, &len, sizeof(len));
	return p + UTIL_WIPE_HDR;
}

char *
util_wipe_dup(const char *s, size_t len)
{
	char *p = util_wipe_alloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
util_wipe_free(void *p)
{
	unsigned char *base;
	size_t len;

	if (p == NULL)
		return;
	base = (unsigned char *)p - UTIL_WIPE_HDR;
	memcpy(&len, base, sizeof(len));
	sodium_memzero(base, UTIL_WIPE_HDR + len);
	free(base);
}

char *
util_secret_dup(const char *s, size_t len)
{
	char *p = sodium_malloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
util_secret_free(void *p)
{
	if (p)
		sodium_free(p);	/* zeroes before unmapping */
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
