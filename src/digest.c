/* digest.c — SHA-256 through the installed operations (libsodium's by default). */
#include <string.h>

#include <sodium.h>

#include "digest.h"

_Static_assert(sizeof(crypto_hash_sha256_state) <= DIGEST_CTX_SIZE,
    "libsodium's SHA-256 state fits a digest_sha256_t");

static int
digest_sodium_init(void *ctx)
{
	return crypto_hash_sha256_init(ctx) == 0 ? 0 : -1;
}

static void
digest_sodium_update(void *ctx, const void *p, size_t n)
{
	crypto_hash_sha256_update(ctx, p, n);
}

static void
digest_sodium_final(void *ctx, uint8_t out[DIGEST_SHA256_BYTES])
{
	crypto_hash_sha256_final(ctx, out);
	sodium_memzero(ctx, sizeof(crypto_hash_sha256_state));
}

static void
digest_sodium_release(void *ctx)
{
	sodium_memzero(ctx, sizeof(crypto_hash_sha256_state));
}

static const digest_sha256_ops_t digest_sodium = {
	digest_sodium_init, digest_sodium_update, digest_sodium_final, digest_sodium_release,
};

static const digest_sha256_ops_t *digest_ops = &digest_sodium;

void
digest_sha256_install(const digest_sha256_ops_t *ops)
{
	digest_ops = ops != NULL ? ops : &digest_sodium;
}

int
digest_sha256_init(digest_sha256_t *d)
{
	return digest_ops->init(d->opaque);
}

void
digest_sha256_update(digest_sha256_t *d, const void *p, size_t n)
{
	if (n > 0)
		digest_ops->update(d->opaque, p, n);
}

void
digest_sha256_final(digest_sha256_t *d, uint8_t out[DIGEST_SHA256_BYTES])
{
	digest_ops->final(d->opaque, out);
}

void
digest_sha256_release(digest_sha256_t *d)
{
	digest_ops->release(d->opaque);
}

int
digest_sha256(const void *p, size_t n, uint8_t out[DIGEST_SHA256_BYTES])
{
	digest_sha256_t d;

	memset(&d, 0, sizeof(d));
	if (digest_sha256_init(&d) < 0) {
		memset(out, 0, DIGEST_SHA256_BYTES);
		return -1;
	}
	digest_sha256_update(&d, p, n);
	digest_sha256_final(&d, out);
	return 0;
}
