/* mintclient.c — token endpoint calls over verified TLS on the main thread, for mintcache. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "audit.h"
#include "defaults.h"
#include "httpsreq.h"
#include "jwt.h"
#include "mainq.h"
#include "log.h"
#include "mintclient.h"
#include "minttok.h"
#include "secmem.h"
#include "secval.h"
#include "snapshot.h"
#include "stats.h"
#include "util.h"

/* The state file's first line, then "seed HEX" (the policy refresh token's digest), then
 * the newest refresh token. */
#define MINT_STATE_MAGIC	"sealgate-refresh 1"
#define MINT_STATE_MAX		(MINTTOK_TOKEN_MAX + 128)
#define MINT_SEED_HEX		33

/* A handle's narrowing, copied for the fetch. */
struct mint_narrow {
	char *scope, *audience;
	char **repos, **perms;
	size_t nrepos, nperms;
};

struct mint_fetch {
	mintclient_t *cl;
	policy_t *policy;		/* a reference: cred lives in it */
	const policy_credential_t *cred;
	struct mint_narrow narrow;
	bool narrowed;
	uint8_t key[MINTCACHE_KEY_LEN];
	uint64_t seq;
	bool refresh;
	secval_t *root;			/* the rotating root secret this call sends (a
					 * reference), or NULL: the policy's */
	httpsreq_t *http;
	double t_start;
	mainq_job_t job;		/* queued toward the main loop */
	TAILQ_ENTRY(mint_fetch) next;	/* active */
};

TAILQ_HEAD(mint_list, mint_fetch);

struct mintclient {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *tls;
	mintcache_t *cache;
	mintclient_done_fn done;
	void *arg;
	mainq_t *q;			/* fetches queued toward the main loop */
	struct mint_list active;	/* main thread only */
	size_t nactive;
};

/* --- RS256 (jwt.h's pluggable signer) ----------------------------------------------------- */

int
mintclient_rs256(const char *alg, const char *key, size_t key_len, const uint8_t *msg,
    size_t len, uint8_t *sig, size_t *siglen)
{
	BIO *b;
	EVP_PKEY *pk;
	EVP_MD_CTX *md;
	int ok = 0;

	if (strcmp(alg, "RS256") != 0 || key_len > INT_MAX ||
	    (b = BIO_new_mem_buf(key, (int)key_len)) == NULL)
		return -1;
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
	    (size_t)EVP_PKEY_get_size(pk) > *siglen) {
		EVP_PKEY_free(pk);
		return -1;
	}
	if ((md = EVP_MD_CTX_new()) != NULL)
		ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
		    EVP_DigestSign(md, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

/* --- narrowing --------------------------------------------------------------------------- */

static void
mint_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static void
mint_narrow_free(struct mint_narrow *n)
{
	free(n->scope);
	free(n->audience);
	mint_strv_free(n->repos, n->nrepos);
	mint_strv_free(n->perms, n->nperms);
	memset(n, 0, sizeof(*n));
}

static char **
mint_strv_dup(const char *const *v, size_t n)
{
	char **out = n ? calloc(n, sizeof(*out)) : NULL;

	for (size_t i = 0; out != NULL && i < n; i++)
		if ((out[i] = strdup(v[i])) == NULL) {
			mint_strv_free(out, n);
			return NULL;
		}
	return out;
}

static int
mint_narrow_copy(struct mint_narrow *n, const mintreq_narrow_t *src)
{
	n->scope = src->scope ? strdup(src->scope) : NULL;
	n->audience = src->audience ? strdup(src->audience) : NULL;
	n->repos = mint_strv_dup(src->repos, src->nrepos);
	n->nrepos = src->nrepos;
	n->perms = mint_strv_dup(src->perms, src->nperms);
	n->nperms = src->nperms;
	if ((src->scope && !n->scope) || (src->audience && !n->audience) ||
	    (src->nrepos && !n->repos) || (src->nperms && !n->perms))
		return -1;
	return 0;
}

static mintreq_narrow_t
mint_narrow_view(const struct mint_narrow *n)
{
	return (mintreq_narrow_t){n->scope, n->audience, (const char *const *)n->repos,
	    n->nrepos, (const char *const *)n->perms, n->nperms};
}

/* --- the refresh-token state file ----------------------------------------------------------- */

static void
mint_state_path(const struct mint_fetch *f, char *out, size_t cap)
{
	const policy_mint_t *m = f->cred->mint;

	if (m->state_file != NULL)
		snprintf(out, cap, "%s", m->state_file);
	else
		snprintf(out, cap, "%s/mint-%s.refresh", f->policy->state_dir ?
		    f->policy->state_dir : ".", f->cred->name);
}

/* The digest of the policy's refresh token, in hex. */
static void
mint_seed_hex(const policy_mint_t *m, char hex[MINT_SEED_HEX])
{
	uint8_t h[16];

	crypto_generichash(h, sizeof(h), (const unsigned char *)m->secret, m->secret_len,
	    NULL, 0);
	util_hex_encode(h, sizeof(h), hex);
}

/* The refresh token to use (wipe memory): the state file's when it was written for the
 * policy's refresh token, else the policy's. NULL when out of memory. */
static char *
mint_state_read(const struct mint_fetch *f)
{
	const policy_mint_t *m = f->cred->mint;
	char path[PATH_MAX], err[256], seed[MINT_SEED_HEX], want[MINT_SEED_HEX + 8];
	char *buf = NULL, *tok = NULL, *nl;
	size_t len = 0;

	mint_state_path(f, path, sizeof(path));
	mint_seed_hex(m, seed);
	snprintf(want, sizeof(want), "seed %s\n", seed);
	if (util_read_file(path, MINT_STATE_MAX, 1, &buf, &len, err, sizeof(err)) == 0 &&
	    strncmp(buf, MINT_STATE_MAGIC "\n", sizeof(MINT_STATE_MAGIC)) == 0 &&
	    strncmp(buf + sizeof(MINT_STATE_MAGIC), want, strlen(want)) == 0) {
		char *t = buf + sizeof(MINT_STATE_MAGIC) + strlen(want);

		if ((nl = strchr(t, '\n')) != NULL && nl > t)
			tok = secmem_wipe_dup(t, (size_t)(nl - t));
	}
	if (buf != NULL)
		secmem_guarded_free(buf);
	return tok != NULL ? tok : secmem_wipe_dup(m->secret, m->secret_len);
}

/* fsync the folder of path: the rename is durable. */
static int
mint_sync_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Keep the provider's new refresh token: temporary file, fsync, rename, fsync folder. */
static int
mint_state_write(const struct mint_fetch *f, const char *tok, size_t len, char *err,
    size_t errlen)
{
	char path[PATH_MAX], seed[MINT_SEED_HEX];
	secmem_buf_t b = {0};
	int rc = -1;

	mint_state_path(f, path, sizeof(path));
	mint_seed_hex(f->cred->mint, seed);
	secmem_buf_puts(&b, MINT_STATE_MAGIC "\nseed ");
	secmem_buf_puts(&b, seed);
	secmem_buf_puts(&b, "\n");
	secmem_buf_add(&b, tok, len);
	secmem_buf_puts(&b, "\n");
	if (b.failed)
		snprintf(err, errlen, "out of memory");
	else if (util_write_file(path, b.p, b.len, 0600, err, errlen) == 0) {
		rc = mint_sync_dir(path);
		if (rc < 0)
			snprintf(err, errlen, "%s: cannot sync its folder: %s", path,
			    strerror(errno));
	}
	secmem_buf_free(&b);
	return rc;
}

/* --- the end of a fetch ------------------------------------------------------------------- */

static void
mint_fetch_free(struct mint_fetch *f)
{
	TAILQ_REMOVE(&f->cl->active, f, next);
	f->cl->nactive--;
	httpsreq_cancel(f->http);
	mint_narrow_free(&f->narrow);
	secval_unref(f->root);
	policy_unref(f->policy);
	sodium_memzero(f, sizeof(*f));
	free(f);
}

static void
mint_audit(const struct mint_fetch *f, int status, const char *error, const char *detail)
{
	const policy_mint_t *m = f->cred->mint;

	audit_log(&(audit_event_t){.event = "mint", .credential = f->cred->name,
	    .method = "POST", .host = m->host, .port = m->port, .path = m->path,
	    .status = status, .error = error, .total_ms = util_mono_msf() - f->t_start,
	    .detail = detail});
}

/* The fetch failed: code (what waiting requests are told), detail (the log's). */
static void
mint_fail(struct mint_fetch *f, int status, const char *code, const char *detail,
    bool terminal)
{
	mintclient_t *cl = f->cl;

	mintcache_done(cl->cache, f->key, f->seq, NULL, code, terminal, util_mono_ms());
	STATS_INC(mint_failures);
	log_warn("mint (%s) for credential %s at %s failed: %s%s%s%s",
	    policy_mint_name(f->cred->mint->type), f->cred->name, f->cred->mint->host, code,
	    detail ? ": " : "", detail ? detail : "", terminal ? " (terminal: the credential "
	    "needs a new root secret and a reload)" : "");
	mint_audit(f, status, code, detail);
	mint_fetch_free(f);
	cl->done(cl->arg);
}

static void
mint_ok(struct mint_fetch *f, mintcache_tok_t *t)
{
	mintclient_t *cl = f->cl;
	char detail[128];

	snprintf(detail, sizeof(detail), "%s: expires in %lld s, refresh from %lld s",
	    f->refresh ? "refreshed" : "minted", (long long)(t->expires_at - util_now_s()),
	    (long long)(t->refresh_at - util_now_s()));
	mintcache_done(cl->cache, f->key, f->seq, t, NULL, false, util_mono_ms());
	log_info("mint for credential %s: %s", f->cred->name, detail);
	mint_audit(f, 200, NULL, detail);
	mint_fetch_free(f);
	cl->done(cl->arg);
}

/* The provider's text for the log, with anything sealgate sent it masked. */
static void
mint_mask(char *text, const char *secret, size_t len)
{
	char *hit;

	while (secret != NULL && len > 0 && (hit = memmem(text, strlen(text), secret, len)) !=
	    NULL)
		memset(hit, '*', len);
}

/* A token arrived: keep a rotated refresh token first, then the token goes to the cache. */
static void
mint_token(struct mint_fetch *f, const minttok_t *t)
{
	char err[PATH_MAX + 128];
	mintcache_tok_t *tok;

	if (f->cred->mint->type == MINT_REFRESH_TOKEN && t->refresh_token != NULL &&
	    mint_state_write(f, t->refresh_token, t->refresh_token_len, err,
	    sizeof(err)) < 0) {
		mint_fail(f, 200, "state_write_failed", err, false);
		return;
	}
	tok = mintcache_tok_new(t->access_token, t->access_token_len, t->expires_in,
	    util_now_s());
	if (tok == NULL)
		mint_fail(f, 200, "out_of_memory", "cannot keep the token", false);
	else
		mint_ok(f, tok);
}

/* The answer is whole: a token, or the provider's error. */
static void
mint_answer(struct mint_fetch *f, unsigned status, const char *body, size_t len)
{
	const policy_mint_t *m = f->cred->mint;
	char code[MINTTOK_CODE_MAX + 16], detail[MINTTOK_DESC_MAX + 1];
	minttok_t t;
	int rc = minttok_parse(body, len, util_now_s(), &t);

	if ((status == 200 || status == 201) && rc == MINTTOK_TOKEN) {
		mint_token(f, &t);
	} else if (rc == MINTTOK_ERROR) {
		snprintf(code, sizeof(code), "%s", t.error);
		snprintf(detail, sizeof(detail), "%s", t.error_description);
		mint_mask(detail, m->secret, m->secret_len);
		mint_mask(detail, m->client_secret, m->client_secret_len);
		if (f->root != NULL)
			mint_mask(detail, f->root->value, f->root->len);
		mint_fail(f, (int)status, code, detail, m->type == MINT_REFRESH_TOKEN &&
		    strcmp(code, "invalid_grant") == 0);
	} else {
		snprintf(code, sizeof(code), status / 100 == 2 ? "malformed_answer" : "HTTP %u",
		    status);
		mint_fail(f, (int)status, code, t.why ? t.why : "no token in the answer", false);
	}
	minttok_free(&t);
}

static void
mint_http_done(const httpsreq_result_t *res, void *arg)
{
	struct mint_fetch *f = arg;

	f->http = NULL;		/* httpsreq frees it */
	if (res->ok)
		mint_answer(f, res->status, res->body, res->body_len);
	else
		mint_fail(f, (int)res->status, res->code, res->detail, false);
}

/*
 * The settings this call uses: the policy's, with a rotating root secret (a file or exec
 * source, policy_mint_root) taken as its source gives it now. 0, or -1 (answered: the
 * source has no usable value yet, or it expired).
 */
static int
mint_settings(struct mint_fetch *f, policy_mint_t *m)
{
	*m = *f->cred->mint;
	if (f->cred->live == NULL)
		return 0;
	f->root = snapshot_acquire(f->cred->live);
	if (f->root == NULL || !secval_usable(f->root, util_mono_ms())) {
		mint_fail(f, 0, "no_root_secret", "the root secret's source has no usable value "
		    "(yet, or any more)", false);
		return -1;
	}
	m->secret = f->root->value;
	m->secret_len = f->root->len;
	return 0;
}

/* On the main loop: build the request, then the call. */
static void
mint_start(struct mint_fetch *f)
{
	policy_mint_t mm;
	const policy_mint_t *m = &mm;
	mintreq_narrow_t nv = mint_narrow_view(&f->narrow);
	httpsreq_target_t t = {f->policy, f->cred->mint->host, f->cred->mint->port,
	    f->cred->mint->host};
	char *refresh = NULL, *wire = NULL;
	size_t len = 0;
	int rc;

	f->t_start = util_mono_msf();
	STATS_INC(mint_fetches);
	if (f->refresh)
		STATS_INC(mint_refreshes);
	if (mint_settings(f, &mm) < 0)
		return;
	if (m->type == MINT_REFRESH_TOKEN && (refresh = mint_state_read(f)) == NULL) {
		mint_fail(f, 0, "out_of_memory", "cannot read the refresh token", false);
		return;
	}
	rc = mintreq_build(m, f->narrowed ? &nv : NULL, refresh, util_now_s(), &wire, &len);
	secmem_wipe_free(refresh);
	if (rc != MINTREQ_OK) {
		mint_fail(f, 0, "request_failed", rc == MINTREQ_E_SIGN ? "cannot sign the JWT "
		    "(is the private key an RSA key in PEM?)" : "cannot build the request", false);
		return;
	}
	f->http = httpsreq_start(f->cl->base, f->cl->dns, f->cl->tls, &t, wire, len,
	    SG_MINT_MAX_RESPONSE, SG_MINT_TIMEOUT_S, mint_http_done, f);
	if (f->http == NULL)
		mint_fail(f, 0, "out_of_memory", "cannot start the call", false);
}

/* --- the queue ------------------------------------------------------------------------------ */

static struct mint_fetch *
mint_fetch_of(mainq_job_t *job)
{
	return (struct mint_fetch *)((char *)job - offsetof(struct mint_fetch, job));
}

/* From the main loop: a queued fetch starts. */
static void
mint_run_cb(mainq_job_t *job, void *arg)
{
	mintclient_t *cl = arg;
	struct mint_fetch *f = mint_fetch_of(job);

	TAILQ_INSERT_TAIL(&cl->active, f, next);
	cl->nactive++;
	mint_start(f);
}

/* A failure was recorded off the loop: wake the waiters from it. */
static void
mint_report_cb(void *arg)
{
	mintclient_t *cl = arg;

	cl->done(cl->arg);
}

void
mintclient_fetch(mintclient_t *cl, policy_t *policy, const policy_credential_t *cred,
    const mintreq_narrow_t *narrow, const uint8_t key[MINTCACHE_KEY_LEN], uint64_t seq,
    bool refresh)
{
	struct mint_fetch *f = calloc(1, sizeof(*f));

	if (f != NULL && narrow != NULL && mint_narrow_copy(&f->narrow, narrow) < 0) {
		mint_narrow_free(&f->narrow);
		free(f);
		f = NULL;
	}
	if (f == NULL) {	/* out of memory before the job could queue: fail it now */
		STATS_INC(mint_failures);
		log_warn("mint for credential %s failed: out of memory", cred->name);
		mintcache_done(cl->cache, key, seq, NULL, "out_of_memory", false,
		    util_mono_ms());
		mainq_report(cl->q);
		return;
	}
	f->cl = cl;
	f->policy = policy_ref(policy);
	f->cred = cred;
	f->narrowed = narrow != NULL;
	memcpy(f->key, key, MINTCACHE_KEY_LEN);
	f->seq = seq;
	f->refresh = refresh;
	mainq_push(cl->q, &f->job);
}

size_t
mintclient_pending(mintclient_t *cl)
{
	return mainq_queued(cl->q) + cl->nactive;
}

mintclient_t *
mintclient_new(struct event_base *base, SSL_CTX *tls, mintcache_t *cache,
    mintclient_done_fn done, void *arg, char *err, size_t errlen)
{
	mintclient_t *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		snprintf(err, errlen, "mint client: out of memory");
		return NULL;
	}
	*cl = (mintclient_t){.base = base, .tls = tls, .cache = cache, .done = done,
	    .arg = arg};
	TAILQ_INIT(&cl->active);
	cl->dns = httpsreq_dns_new(base);
	cl->q = mainq_new(base, mint_run_cb, mint_report_cb, cl);
	if (cl->dns == NULL || cl->q == NULL) {
		snprintf(err, errlen, "mint client: cannot set up DNS or its wake-up event");
		mintclient_free(cl);
		return NULL;
	}
	jwt_signer_install(mintclient_rs256);
	return cl;
}

void
mintclient_free(mintclient_t *cl)
{
	struct mint_fetch *f;
	mainq_job_t *j;

	if (cl == NULL)
		return;
	while (cl->q != NULL && (j = mainq_take(cl->q)) != NULL) {
		f = mint_fetch_of(j);
		TAILQ_INSERT_TAIL(&cl->active, f, next);
		cl->nactive++;
	}
	while ((f = TAILQ_FIRST(&cl->active)) != NULL)
		mint_fetch_free(f);
	mainq_free(cl->q);
	if (cl->dns)
		evdns_base_free(cl->dns, 1);
	free(cl);
}
