/*
 * test_gitpack.c — the streaming pack walk on packs built here (zlib, git's object and
 * delta encodings): commit ids (SHA-1 checked against git's, SHA-256), parent walks
 * proving fast-forwards and not proving rewrites, OFS_DELTA and REF_DELTA commits on
 * kept bases, deltas on bases outside the pack, blobs skipped, any split of the input,
 * malformed packs, the bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zlib.h>

#include "gitpack.h"

#define TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
/* ids of the commits below, as git computes them (python hashlib over the same text) */
#define ID_A "853d583bc434459632427d9e5e70c871bda21512"
#define ID_B "af33ade6bdadda882cc431202067dd22dd4dba1e"
#define ID_C "8967013661457e3b08e76c793933245bb11736dd"
#define ID_D "95ac7869e903d41bebf3c76777f399a441535354"
#define ID_M "13377952e14f6c1f17516f0ae94d2668cde4e9ac"

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static char *
commit(const char *tree, const char *p1, const char *p2, const char *msg)
{
	char *s = malloc(1024);

	snprintf(s, 1024, "tree %s\n%s%s%s%s%s%sauthor t <t@e> 1700000000 +0000\n"
	    "committer t <t@e> 1700000000 +0000\n\n%s\n", tree, p1 ? "parent " : "",
	    p1 ? p1 : "", p1 ? "\n" : "", p2 ? "parent " : "", p2 ? p2 : "", p2 ? "\n" : "",
	    msg);
	return s;
}

static void
pack_start(struct buf *b, uint32_t n)
{
	unsigned char h[12] = {'P', 'A', 'C', 'K', 0, 0, 0, 2,
	    (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
	    (unsigned char)n};

	put(b, h, sizeof(h));
}

static void
obj_header(struct buf *b, int type, size_t size)
{
	unsigned char c = (unsigned char)(type << 4 | (size & 15));

	size >>= 4;
	while (size) {
		c |= 0x80;
		put(b, &c, 1);
		c = size & 0x7f;
		size >>= 7;
	}
	put(b, &c, 1);
}

static void
deflated(struct buf *b, const void *d, size_t n)
{
	uLongf cap = compressBound(n);
	unsigned char *z = malloc(cap);

	assert_int_equal(compress2(z, &cap, d, n, 6), Z_OK);
	put(b, z, cap);
	free(z);
}

/* An object; returns its offset in the pack. */
static size_t
obj(struct buf *b, int type, const void *d, size_t n)
{
	size_t off = b->len;

	obj_header(b, type, n);
	deflated(b, d, n);
	return off;
}

/* git's OFS_DELTA offset encoding. */
static void
ofs_varint(struct buf *b, size_t ofs)
{
	unsigned char t[16];
	int i = 15;

	t[i] = ofs & 0x7f;
	while (ofs >>= 7)
		t[--i] = 0x80 | (--ofs & 0x7f);
	put(b, t + i, (size_t)(16 - i));
}

static void
size_varint(struct buf *d, size_t n)
{
	do {
		unsigned char c = n & 0x7f;

		n >>= 7;
		if (n)
			c |= 0x80;
		put(d, &c, 1);
	} while (n);
}

/* A delta from base to target: copy the common prefix, insert the rest. */
static void
make_delta(struct buf *d, const char *base, const char *target)
{
	size_t bl = strlen(base), tl = strlen(target), k = 0;

	size_varint(d, bl);
	size_varint(d, tl);
	while (k < bl && k < tl && k < 255 && base[k] == target[k])
		k++;
	if (k > 0) {
		unsigned char cp[2] = {0x80 | 0x10, (unsigned char)k};	/* offset 0, size k */

		put(d, cp, 2);
	}
	while (k < tl) {
		unsigned char n = (unsigned char)(tl - k > 127 ? 127 : tl - k);

		put(d, &n, 1);
		put(d, target + k, n);
		k += n;
	}
}

static void
trailer(struct buf *b)
{
	put(b, "01234567890123456789", 20);
}

static gitpack_t *
walk(const struct buf *b, size_t step)
{
	gitpack_t *p = gitpack_new(20);

	assert_non_null(p);
	for (size_t i = 0; i < b->len; i += step)
		gitpack_feed(p, b->p + i, b->len - i < step ? b->len - i : step);
	return p;
}

struct commits {
	char *a, *b, *c, *d, *m;
};

static void
commits_make(struct commits *k)
{
	k->a = commit(TREE, NULL, NULL, "A");
	k->b = commit(TREE, ID_A, NULL, "B");
	k->c = commit(TREE, ID_B, NULL, "C");
	k->d = commit(TREE, ID_A, NULL, "D rewrite");
	k->m = commit(TREE, ID_D, ID_C, "M");
}

static void
commits_free(struct commits *k)
{
	free(k->a);
	free(k->b);
	free(k->c);
	free(k->d);
	free(k->m);
}

static void
test_fast_forward_any_split(void **state)
{
	struct commits k;
	struct buf b = {0};
	char blob[3000];
	(void)state;

	commits_make(&k);
	memset(blob, 'x', sizeof(blob));
	pack_start(&b, 3);
	obj(&b, 1, k.c, strlen(k.c));
	obj(&b, 3, blob, sizeof(blob));
	obj(&b, 1, k.b, strlen(k.b));
	trailer(&b);
	for (size_t step = 1; step <= b.len; step += (step < 40 ? 1 : 97)) {
		gitpack_t *p = walk(&b, step);

		assert_false(gitpack_failed(p));
		assert_true(gitpack_complete(p));
		assert_int_equal(gitpack_ncommits(p), 2);
		assert_true(gitpack_reaches(p, ID_C, ID_A));	/* C -> B -> A */
		assert_true(gitpack_reaches(p, ID_C, ID_B));
		assert_true(gitpack_reaches(p, ID_B, ID_B));
		assert_false(gitpack_reaches(p, ID_B, ID_C));	/* backwards */
		assert_false(gitpack_reaches(p, ID_D, ID_A));	/* D not in the pack */
		gitpack_free(p);
	}
	free(b.p);
	commits_free(&k);
}

static void
test_rewrite_not_proven(void **state)
{
	struct commits k;
	struct buf b = {0};
	gitpack_t *p;
	(void)state;

	commits_make(&k);
	pack_start(&b, 1);
	obj(&b, 1, k.d, strlen(k.d));
	trailer(&b);
	p = walk(&b, 5);
	assert_true(gitpack_complete(p));
	assert_false(gitpack_reaches(p, ID_D, ID_C));	/* D rewrites C's history */
	assert_true(gitpack_reaches(p, ID_D, ID_A));
	gitpack_free(p);
	free(b.p);
	commits_free(&k);
}

static void
test_merge(void **state)
{
	struct commits k;
	struct buf b = {0};
	gitpack_t *p;
	(void)state;

	commits_make(&k);
	pack_start(&b, 2);
	obj(&b, 1, k.m, strlen(k.m));
	obj(&b, 1, k.d, strlen(k.d));
	trailer(&b);
	p = walk(&b, 1000);
	assert_true(gitpack_reaches(p, ID_M, ID_C));	/* second parent */
	assert_true(gitpack_reaches(p, ID_M, ID_A));	/* through D */
	gitpack_free(p);
	free(b.p);
	commits_free(&k);
}

static void
test_deltas(void **state)
{
	struct commits k;
	struct buf b = {0}, d1 = {0}, d2 = {0};
	size_t off_b, off_c;
	unsigned char idb[20];
	gitpack_t *p;
	(void)state;

	commits_make(&k);
	sodium_hex2bin(idb, 20, ID_B, 40, NULL, NULL, NULL);
	make_delta(&d1, k.b, k.c);
	make_delta(&d2, k.d, k.m);
	pack_start(&b, 4);
	off_b = obj(&b, 1, k.b, strlen(k.b));
	off_c = b.len;				/* C as an OFS_DELTA on B */
	obj_header(&b, 6, d1.len);
	ofs_varint(&b, off_c - off_b);
	deflated(&b, d1.p, d1.len);
	obj(&b, 1, k.d, strlen(k.d));
	obj_header(&b, 7, d2.len);		/* M as a REF_DELTA on B's id, made from D */
	put(&b, idb, 20);
	deflated(&b, d2.p, d2.len);
	trailer(&b);
	p = walk(&b, 3);
	/* the REF_DELTA's source size is D's, not B's: a malformed delta */
	assert_true(gitpack_failed(p));
	assert_true(gitpack_reaches(p, ID_C, ID_A));	/* resolved before the failure */
	gitpack_free(p);
	free(b.p);
	free(d1.p);
	free(d2.p);
	commits_free(&k);
}

static void
test_ref_delta_resolved_and_unresolved(void **state)
{
	struct commits k;
	struct buf b = {0}, d = {0};
	unsigned char idc[20], ida[20];
	gitpack_t *p;
	(void)state;

	commits_make(&k);
	sodium_hex2bin(idc, 20, ID_C, 40, NULL, NULL, NULL);
	sodium_hex2bin(ida, 20, ID_A, 40, NULL, NULL, NULL);
	make_delta(&d, k.c, k.m);
	pack_start(&b, 4);
	obj(&b, 1, k.b, strlen(k.b));
	obj(&b, 1, k.c, strlen(k.c));
	obj(&b, 1, k.d, strlen(k.d));
	obj_header(&b, 7, d.len);			/* M on C, by id */
	put(&b, idc, 20);
	deflated(&b, d.p, d.len);
	trailer(&b);
	p = walk(&b, 7);
	assert_true(gitpack_complete(p));
	assert_int_equal(gitpack_ncommits(p), 4);
	assert_true(gitpack_reaches(p, ID_M, ID_A));
	gitpack_free(p);
	free(b.p);
	b = (struct buf){0};
	/* a thin pack: M as a delta on A, which the pack does not carry */
	pack_start(&b, 1);
	obj_header(&b, 7, d.len);
	put(&b, ida, 20);
	deflated(&b, d.p, d.len);
	trailer(&b);
	p = walk(&b, 7);
	assert_true(gitpack_complete(p));
	assert_int_equal(gitpack_ncommits(p), 0);
	assert_false(gitpack_reaches(p, ID_M, ID_C));	/* cannot prove */
	gitpack_free(p);
	free(b.p);
	free(d.p);
	commits_free(&k);
}

static void
test_sha256(void **state)
{
	char tree[65], ida[65], idb[65], head[32], *a, *bb;
	unsigned char h[32];
	struct buf b = {0};
	crypto_hash_sha256_state s;
	gitpack_t *p;
	(void)state;

	memset(tree, 'e', 64);
	tree[64] = '\0';
	a = commit(tree, NULL, NULL, "A");
	snprintf(head, sizeof(head), "commit %zu", strlen(a));
	crypto_hash_sha256_init(&s);
	crypto_hash_sha256_update(&s, (unsigned char *)head, strlen(head) + 1);
	crypto_hash_sha256_update(&s, (unsigned char *)a, strlen(a));
	crypto_hash_sha256_final(&s, h);
	sodium_bin2hex(ida, sizeof(ida), h, 32);
	bb = commit(tree, ida, NULL, "B");
	snprintf(head, sizeof(head), "commit %zu", strlen(bb));
	crypto_hash_sha256_init(&s);
	crypto_hash_sha256_update(&s, (unsigned char *)head, strlen(head) + 1);
	crypto_hash_sha256_update(&s, (unsigned char *)bb, strlen(bb));
	crypto_hash_sha256_final(&s, h);
	sodium_bin2hex(idb, sizeof(idb), h, 32);
	pack_start(&b, 1);
	obj(&b, 1, bb, strlen(bb));
	put(&b, "0123456789012345678901234567890x", 32);
	p = gitpack_new(32);
	assert_int_equal(gitpack_feed(p, b.p, b.len), 0);
	assert_true(gitpack_complete(p));
	assert_true(gitpack_reaches(p, idb, ida));
	assert_false(gitpack_reaches(p, ida, idb));
	gitpack_free(p);
	assert_null(gitpack_new(16));
	free(a);
	free(bb);
	free(b.p);
}

static void
test_malformed(void **state)
{
	struct commits k;
	struct buf b = {0};
	gitpack_t *p;
	(void)state;

	commits_make(&k);
	p = gitpack_new(20);
	assert_int_equal(gitpack_feed(p, "PACX\0\0\0\2\0\0\0\1", 12), -1);
	assert_true(gitpack_failed(p));
	gitpack_free(p);
	/* declared size differs from the inflated size */
	pack_start(&b, 1);
	obj_header(&b, 1, strlen(k.a) + 1);
	deflated(&b, k.a, strlen(k.a));
	trailer(&b);
	p = walk(&b, 4);
	assert_true(gitpack_failed(p));
	gitpack_free(p);
	free(b.p);
	b = (struct buf){0};
	/* not zlib, type 5, commit without tree */
	pack_start(&b, 1);
	obj_header(&b, 1, 10);
	put(&b, "garbage!!!garbage", 17);
	p = walk(&b, 2);
	assert_true(gitpack_failed(p));
	gitpack_free(p);
	free(b.p);
	b = (struct buf){0};
	pack_start(&b, 1);
	obj(&b, 5, "x", 1);
	p = walk(&b, 2);
	assert_true(gitpack_failed(p));
	gitpack_free(p);
	free(b.p);
	b = (struct buf){0};
	pack_start(&b, 1);
	obj(&b, 1, "author x\n", 9);
	p = walk(&b, 2);
	assert_true(gitpack_failed(p));
	gitpack_free(p);
	free(b.p);
	/* a truncated pack is not complete */
	b = (struct buf){0};
	pack_start(&b, 2);
	obj(&b, 1, k.b, strlen(k.b));
	p = walk(&b, 9);
	assert_false(gitpack_failed(p));
	assert_false(gitpack_complete(p));
	gitpack_free(p);
	free(b.p);
	commits_free(&k);
}

static void
test_big_commit_not_kept(void **state)
{
	struct buf b = {0};
	size_t n = GITPACK_MAX_COMMIT_BYTES + 100;
	char *big = malloc(n + 1), *head = commit(TREE, ID_A, NULL, "big");
	gitpack_t *p;
	(void)state;

	memset(big, 'm', n);
	memcpy(big, head, strlen(head));
	pack_start(&b, 1);
	obj(&b, 1, big, n);
	trailer(&b);
	p = walk(&b, 4096);
	assert_false(gitpack_failed(p));
	assert_true(gitpack_complete(p));
	assert_int_equal(gitpack_ncommits(p), 0);	/* skipped, not misread */
	gitpack_free(p);
	free(b.p);
	free(big);
	free(head);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fast_forward_any_split),
		cmocka_unit_test(test_rewrite_not_proven),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_deltas),
		cmocka_unit_test(test_ref_delta_resolved_and_unresolved),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_big_commit_not_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
