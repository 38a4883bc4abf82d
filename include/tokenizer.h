/*
 * tokenizer.h — Fly.io tokenizer-compatible sealed secrets (DESIGN.md, "Tokenizer-
 * compatible sealed secrets"). Pure core: no sockets, no clocks (time is passed in).
 *
 * Wire format (as superfly/tokenizer): each request header
 *
 *   Proxy-Tokenizer: <std base64 of crypto_box_seal(JSON)>[; <JSON object of strings>]
 *
 * names one sealed secret and the caller's params; several header lines are applied in
 * order. A header line holding two secrets joined by ',' is refused (tokenizer refuses
 * it too: it reads each line as one secret). The sealed JSON holds exactly one processor
 * (inject_processor, inject_hmac_processor, inject_body_processor, oauth2_processor,
 * oauth2_body_processor, multi_processor), exactly one auth (bearer_auth, no_auth) and
 * optionally allowed_hosts / allowed_host_pattern, plus sealgate's optional exp, nbf,
 * allowed_methods, allowed_paths, rate. docs/tokenizer-compat.md lists every difference.
 *
 * Ownership: every secret-bearing string this module hands out lives in wipe memory
 * (inject edits, tokenizer_out_t body/scrub/hmac entries) and is zeroed by
 * inject_edits_free / tokenizer_out_free / tokenizer_secret_free.
 * Thread-safety: no shared state; the keyring and rate table are safe to share.
 */
#ifndef SEALGATE_TOKENIZER_H
#define SEALGATE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "inject.h"
#include "policy.h"
#include "ratelimit.h"
#include "seal.h"

#define TOKENIZER_HEADER	"Proxy-Tokenizer"
/* What a tokenizer secret is replaced by in responses. */
#define TOKENIZER_SCRUB_TEXT	"[sealgate:redacted]"
/* Proxy-Tokenizer headers applied per request (CONNECT head + request head). */
#define TOKENIZER_MAX_SECRETS	4
/* Processors in one secret (a multi_processor's members, nested ones included). */
#define TOKENIZER_MAX_PROCS	8
/* multi_processor nesting. */
#define TOKENIZER_MAX_DEPTH	4
/* Body placeholder replacements and scrub entries per request. */
#define TOKENIZER_MAX_BODY	4
#define TOKENIZER_MAX_SCRUB	8
/* Longest header name (dst), fmt string, placeholder, host pattern, param text. */
#define TOKENIZER_NAME_MAX	64
#define TOKENIZER_FMT_MAX	256
#define TOKENIZER_PLACEHOLDER_MAX 256
#define TOKENIZER_PATTERN_MAX	1024
#define TOKENIZER_PARAMS_MAX	4096
/* Longest sealed JSON accepted by tokenizer_parse_secret. */
#define TOKENIZER_JSON_MAX	SG_TOKEN_MAX_LEN

/* --- the parsed secret ---------------------------------------------------------------- */

enum tokenizer_proc_kind {
	TK_INJECT = 1,		/* inject_processor */
	TK_INJECT_HMAC,		/* inject_hmac_processor */
	TK_INJECT_BODY,		/* inject_body_processor */
	TK_OAUTH2,		/* oauth2_processor */
	TK_OAUTH2_BODY,		/* oauth2_body_processor */
};

enum tokenizer_auth_kind { TK_AUTH_BEARER = 1, TK_AUTH_NONE };

typedef struct tokenizer_proc {
	enum tokenizer_proc_kind kind;
	char *token;		/* inject/body: token; oauth2: access_token (wipe memory) */
	size_t token_len;
	char *refresh;		/* oauth2: refresh_token or NULL (wipe memory) */
	size_t refresh_len;
	uint8_t *key;		/* hmac: key bytes (wipe memory) */
	size_t key_len;
	char *fmt;		/* inject/hmac: sealed "fmt" or NULL */
	char *dst;		/* inject/hmac: sealed "dst" or NULL */
	policy_strlist_t allowed_fmt, allowed_dst;	/* n == 0: absent */
	char *placeholder;	/* body processors: sealed "placeholder" or NULL */
} tokenizer_proc_t;

typedef struct tokenizer_secret {
	tokenizer_proc_t proc[TOKENIZER_MAX_PROCS];	/* multi_processor flattened, in order */
	size_t nproc;
	bool multi;		/* it was a multi_processor */
	enum tokenizer_auth_kind auth;
	uint8_t digest[32];	/* bearer_auth: sha256 of the proxy token */
	policy_strlist_t allowed_hosts;	/* exact "host" / "host:port", lower-cased */
	bool has_allowed_hosts;		/* present (even empty: then nothing matches) */
	char *host_pattern;	/* allowed_host_pattern or NULL */
	void *host_re;		/* compiled pattern (pcre2_code *) */
	/* sealgate's additions */
	bool has_exp, has_nbf;
	int64_t exp, nbf;
	policy_strlist_t allowed_methods;	/* empty: any */
	policy_strlist_t allowed_paths;		/* empty: any */
	policy_rate_t rate;
} tokenizer_secret_t;

/*
 * Parse the plaintext JSON of a sealed secret (len bytes, need not be NUL-terminated).
 * Returns 0; -1 (invalid) or -2 (a tokenizer processor or auth sealgate does not
 * support: sigv4, jwt, client_credentials, github_app, macaroon, fly-src) with *why set
 * to a static message (never containing secret bytes). On failure the secret holds
 * nothing to free; on 0 free it with tokenizer_secret_free.
 * Refused: not a JSON object, duplicate keys, not exactly one processor key or one auth
 * key, unsupported processors or auths, wrong field types, bad base64, a digest that is
 * not 32 bytes, an invalid fmt, an allowed_host_pattern PCRE2 refuses, bad rate.
 */
int tokenizer_parse_secret(const char *json, size_t len, tokenizer_secret_t *s,
    const char **why) __attribute__((nonnull(1, 3, 4))) SG_WUR;
void tokenizer_secret_free(tokenizer_secret_t *s);

/*
 * Split one Proxy-Tokenizer header value into the base64 token (*tok, *toklen, inside
 * value) and its params (caller's NUL-terminated JSON object of strings, or none).
 * Returns 0 or -1 (*why set).
 */
int tokenizer_split_header(const char *value, size_t len, const char **tok,
    size_t *toklen, const char **params, size_t *paramslen, const char **why);

/* Does host (lower-case) on port pass the secret's host validators? */
bool tokenizer_host_allowed(const tokenizer_secret_t *s, const char *host, uint16_t port);

/* --- one request ------------------------------------------------------------------------ */

typedef struct tokenizer_env {
	const seal_keyring_t *keyring;
	ratelimit_t *rl;		/* may be NULL: "rate" is then not enforced */
	int64_t now;			/* wall clock, unix seconds (exp, nbf) */
	uint64_t now_ms;		/* monotonic ms (rate buckets) */
	/*
	 * The intercepted CONNECT request's head, or NULL. tokenizer also takes
	 * Proxy-Tokenizer on CONNECT and applies those secrets to every request in the
	 * tunnel: they are applied first, checked against each inner request.
	 */
	const http_head_t *connect_head;
	/*
	 * tokenizer lets a secret with neither allowed_hosts nor allowed_host_pattern go to
	 * any host. sealgate refuses such secrets (403 host_out_of_scope) unless this is set.
	 */
	bool allow_unscoped;
} tokenizer_env_t;

/* A body placeholder to replace with a secret while streaming the request body. */
typedef struct tokenizer_body {
	char *placeholder;		/* malloc'd, NUL-terminated */
	size_t placeholder_len;
	char *token;			/* wipe memory, NUL-terminated */
	size_t token_len;
} tokenizer_body_t;

/* A header whose value is an HMAC of the whole request body (the shell buffers it). */
typedef struct tokenizer_hmac {
	bool set;
	uint8_t *key;			/* wipe memory */
	size_t key_len;
	char dst[TOKENIZER_NAME_MAX + 1];	/* header name, canonical form */
	char fmt[TOKENIZER_FMT_MAX + 1];	/* one %x or %X */
} tokenizer_hmac_t;

/* A secret to replace by TOKENIZER_SCRUB_TEXT in responses. */
typedef struct tokenizer_scrub {
	char *secret;			/* wipe memory, NUL-terminated */
	size_t len;
} tokenizer_scrub_t;

typedef struct tokenizer_out {
	size_t n;			/* secrets applied (0: no Proxy-Tokenizer header) */
	unsigned status;		/* deny: 400, 403, 407, 429 (0 on success) */
	const char *code;		/* deny: static error code */
	char message[384];		/* deny: names what failed, never a secret */
	char extra[320];		/* deny: extra answer headers (429: Retry-After...) */
	tokenizer_hmac_t hmac;		/* body HMAC to compute (at most one per request) */
	tokenizer_body_t body[TOKENIZER_MAX_BODY];	/* placeholder -> secret, in order */
	size_t nbody;
	tokenizer_scrub_t scrub[TOKENIZER_MAX_SCRUB];
	size_t nscrub;
	char id[33];			/* first secret: hex of a hash of its sealed token */
	char what[128];			/* audit: processor and auth names, no secrets */
} tokenizer_out_t;

/*
 * Apply every Proxy-Tokenizer header of h (after env->connect_head's) to the request
 * that goes to host (lower-case, no brackets) on port — the authority as the client
 * named it (80 for http:// without a port, the CONNECT port inside a tunnel) — with
 * method and path (the origin-form request-target). proxy_token: the client's proxy
 * credential ("Bearer t", "FlyV1 t" or Basic password t), or NULL.
 *
 * On 0, edits (which may already hold other edits) drop Proxy-Tokenizer and
 * Proxy-Authorization and carry the injected headers (secret_in_head set when any);
 * out->hmac / out->body name the body work, out->scrub the secrets to scrub.
 * On -1 nothing was taken from a rate bucket unless that was the refusal, out->status,
 * code and message say why; edits may hold partial work: free them, send the answer.
 * Either way free out with tokenizer_out_free.
 */
int tokenizer_apply(const tokenizer_env_t *env, const http_head_t *h, const char *host,
    uint16_t port, const char *method, const char *path, const char *proxy_token,
    inject_edits_t *edits, tokenizer_out_t *out);
void tokenizer_out_free(tokenizer_out_t *out);

/*
 * The header value for out->hmac over the whole body: fmt applied to the hex HMAC-SHA256
 * of body under the key, in wipe memory (free with secmem_wipe_free); NULL when
 * out->hmac.set is false or on allocation failure. Send it as out->hmac.dst.
 */
char *tokenizer_hmac_value(const tokenizer_out_t *out, const void *body, size_t len);

#endif
