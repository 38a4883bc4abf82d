/*
 * mintclient.h — the token endpoint client: makes the fetches the minted-token cache
 * (mintcache.h) asks for. Shell: libevent, OpenSSL (the RS256 signer of jwt.h), disk
 * (the refresh-token state files).
 *
 * Threads: as stsclient.h. One client per process on the main thread's event_base; a
 * worker whose request finds no usable token gets out->fetch from mintcache_get and calls
 * mintclient_fetch, which only queues the job and wakes the main loop; every call is made
 * from there: mintreq_build → httpsreq (egress rules, resolve map, verified TLS, at most
 * SG_MINT_MAX_RESPONSE bytes, SG_MINT_TIMEOUT_S) → minttok_parse → mintcache_done → done.
 *
 * refresh_token credentials: the newest refresh token lives in a state file (the mint's
 * state_file, else STATE_DIR/mint-NAME.refresh, mode 0600) with a digest of the policy's
 * refresh token; when that digest no longer matches (the operator put a new refresh token
 * in the policy) the policy's is used. A rotated refresh token is written (temporary
 * file, fsync, rename, fsync of the folder) before the new access token reaches the
 * cache: if sealgate dies at any point, the token on disk is the newest the provider
 * gave. A write failure fails the fetch ("state_write_failed"). The provider's
 * invalid_grant to a refresh token is terminal (mintcache_done terminal): no request
 * retries it until a reload changes the credential. These writes run on the main loop
 * (small, rare: a deviation from "no disk on an event loop", documented).
 *
 * Grants: every type of policy_mint_t (mintreq.h builds the request).
 *
 * Failures: the provider's error code (invalid_client, invalid_grant, github_error, …),
 * or httpsreq's ("timeout", "egress_denied", …), "HTTP <status>", "malformed_answer",
 * "request_failed", "state_write_failed", "out_of_memory". Every fetch is counted
 * (stats.h mint_*), logged and audited (event "mint", the code when it failed; never a
 * token, never the provider's description unmasked of what was sent).
 */
#ifndef SEALGATE_MINTCLIENT_H
#define SEALGATE_MINTCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "mintcache.h"
#include "mintreq.h"
#include "policy.h"
#include "util.h"

struct event_base;

typedef struct mintclient mintclient_t;
typedef void (*mintclient_done_fn)(void *arg);

/* The RS256 signer for jwt.h (OpenSSL: a PEM private key, RSASSA-PKCS1-v1_5 SHA-256). */
int mintclient_rs256(const char *alg, const char *key, size_t key_len, const uint8_t *msg,
    size_t len, uint8_t *sig, size_t *siglen);

/* A client on base, TLS through tls (borrowed), reporting to cache (borrowed). Installs
 * mintclient_rs256 with jwt_signer_install. NULL with err set. */
mintclient_t *mintclient_new(struct event_base *base, SSL_CTX *tls, mintcache_t *cache,
    mintclient_done_fn done, void *arg, char *err, size_t errlen)
    __attribute__((nonnull(1, 2, 3, 6))) SG_WUR;

/* Make fetch seq of key for cred (from any thread) with narrow (may be NULL; copied).
 * Takes its own reference to policy. */
void mintclient_fetch(mintclient_t *cl, policy_t *policy, const policy_credential_t *cred,
    const mintreq_narrow_t *narrow, const uint8_t key[MINTCACHE_KEY_LEN], uint64_t seq,
    bool refresh) __attribute__((nonnull(1, 2, 3, 5)));

size_t mintclient_pending(mintclient_t *cl) SG_NONNULL;

/* Main thread, once no worker can call mintclient_fetch: abandon every fetch, free. */
void mintclient_free(mintclient_t *cl);

#endif
