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

int
util_read_file(const char *path, size_t max, int secret, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	size_t size;
	char *buf;
	int fd, rc;

	if ((fd = util_read_open(path, max, secret, &size, err, errlen)) < 0)
		return -1;
	errno = 0;
	buf = secret ? sodium_malloc(size + 1) : malloc(size + 1);
	if (buf == NULL) {
		util_read_nomem(path, secret, err, errlen);
		close(fd);
		return -1;
	}
	rc = util_read_fd(fd, path, buf, size, outlen, err, errlen);
	close(fd);
	if (rc < 0) {
		if (secret)
			sodium_free(buf);
		else
			free(buf);
		return -1;
	}
	*out = buf;
	return 0;
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

/* --- secret arena ----------------------------------------------------------------- */

/* libsodium puts a canary before each block, inside its first page. */
#define UTIL_ARENA_CANARY	16

/* One sodium_malloc'd block; secrets are carved from it front to back. */
struct util_secret_region {
	struct util_secret_region *next;	/* older regions */
	char *base;
	size_t cap, used;
};

struct util_secret_arena {
	struct util_secret_region *head;	/* the newest: allocations come from it */
	size_t nregions;
	size_t next_pages;			/* size of the next region, in pages */
};

util_secret_arena_t *
util_secret_arena_new(void)
{
	util_secret_arena_t *a = calloc(1, sizeof(*a));

	if (a != NULL)
		a->next_pages = 1;
	return a;
}

/* A region of at least need bytes and a->next_pages pages (which then doubles). */
static struct util_secret_region *
util_secret_region_new(util_secret_arena_t *a, size_t need)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (need + UTIL_ARENA_CANARY + page - 1) / page;
	struct util_secret_region *r;

	if (pages < a->next_pages)
		pages = a->next_pages;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->cap = pages * page - UTIL_ARENA_CANARY;	/* the block fills its pages */
	if ((r->base = sodium_malloc(r->cap)) == NULL) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->next = a->head;
	a->head = r;
	a->nregions++;
	a->next_pages = pages * 2;
	return r;
}

char *
util_secret_arena_alloc(util_secret_arena_t *a, size_t len)
{
	struct util_secret_region *r = a->head;
	char *p;

	if (len > SIZE_MAX / 4) {
		errno = ENOMEM;
		return NULL;
	}
	if (r == NULL || r->cap - r->used < len + 1)
		r = util_secret_region_new(a, len + 1);
	if (r == NULL)
		return NULL;
	p = r->base + r->used;
	r->used += len + 1;
	return p;
}

char *
util_secret_arena_dup(util_secret_arena_t *a, const char *s, size_t len)
{
	char *p = util_secret_arena_alloc(a, len);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
util_secret_arena_drop(util_secret_arena_t *a, char *p, size_t len)
{
	struct util_secret_region *r = a->head;

	sodium_memzero(p, len + 1);
	if (r != NULL && p + len + 1 == r->base + r->used && p >= r->base)
		r->used -= len + 1;
}

int
util_secret_arena_read_file(util_secret_arena_t *a, const char *path, size_t max,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	size_t size;
	char *buf;
	int fd, rc;

	if ((fd = util_read_open(path, max, 1, &size, err, errlen)) < 0)
		return -1;
	errno = 0;
	if ((buf = util_secret_arena_alloc(a, size)) == NULL) {
		util_read_nomem(path, 1, err, errlen);
		close(fd);
		return -1;
	}
	rc = util_read_fd(fd, path, buf, size, outlen, err, errlen);
	close(fd);
	if (rc < 0) {
		util_secret_arena_drop(a, buf, size);
		return -1;
	}
	*out = buf;
	return 0;
}

size_t
util_secret_arena_regions(const util_secret_arena_t *a)
{
	return a->nregions;
}

void
util_secret_arena_free(util_secret_arena_t *a)
{
	struct util_secret_region *r, *next;

	if (a == NULL)
		return;
	for (r = a->head; r != NULL; r = next) {
		next = r->next;
		sodium_free(r->base);	/* zeroes the whole block before unmapping */
		free(r);
	}
	free(a);
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
