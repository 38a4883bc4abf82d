/*
 * metadata.c — the metadata responder: session tokens, sandbox by source address,
 * handle minting, env rendering. libevent's evhttp does the HTTP; this file routes and
 * decides. See metadata.h for the endpoints and the token format.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <sodium.h>

#include "audit.h"
#include "awscred.h"
#include "defaults.h"
#include "handle.h"
#include "log.h"
#include "metadata.h"
#include "mintreq.h"
#include "netaddr.h"
#include "proxy.h"
#include "registry.h"
#include "secmem.h"
#include "view.h"

/* Methods answered at all; anything else is 405 before routing. */
#define MD_METHODS	(EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT)
/* Methods evhttp lets through to us, so that refusals are our JSON, not its HTML. */
#define MD_METHODS_SEEN	(MD_METHODS | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | \
	EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)
/* Domain separation for the session token MAC. */
#define MD_TOKEN_DOMAIN	"sgt1"
/* CA variables set in /v1/env: what curl, OpenSSL, Python, Node and git read. */
static const char *const md_ca_vars[] = {
	"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
	"GIT_SSL_CAINFO",
};
static const char *const md_proxy_vars[] = {
	"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy",
};
static const char *const md_no_proxy_vars[] = { "NO_PROXY", "no_proxy" };
static const char *const md_forwarding_headers[] = { "X-Forwarded-For", "Forwarded", "Via" };
static const policy_rate_t md_rate = {
	.set = true, .requests = METADATA_RATE_REQUESTS, .per_ms = METADATA_RATE_PER_MS,
	.burst = METADATA_RATE_BURST,
};

struct metadata {
	struct evhttp *http;
	const seal_key_t *seal_key;
	char *proxy_url, *ca_guest_path, *no_proxy;
	char *ca_pem;
	size_t ca_pem_len;
	int hop_limit;
	ratelimit_t *rl, *own_rl;
	uint8_t *token_key;		/* guarded memory (secmem.h), METADATA_TOKEN_KEY_LEN */
	char bound[80];
	char bound_aws[80];		/* the opts.listen_aws listener; "" when none */
};

/* A handle request's narrowing of a minted credential's token: ?scope= (once),
 * ?repo= and ?permission= (repeated), as `sealgate handle mint --scope/--repo/
 * --permission`, and ?audience= (once) as --audience. The lists point into q. */
struct md_narrow {
	struct evkeyvalq q;
	const char *scope, *audience;
	char *repos[MINTREQ_NARROW_MAX + 1], *perms[MINTREQ_NARROW_MAX + 1];
	policy_strlist_t r, p;
};

/* One request being answered. */
struct md_req {
	metadata_t *md;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *path;
	char source[64];		/* peer address text (audit "source"), "" if unknown */
	view_t snap;			/* policy and registry (NULL: none open) for the
					 * whole request: everything below borrows from it */
	sandbox_view_t view;		/* the caller's sandbox, static or registered */
	const sandbox_view_t *sb;	/* &view once found, else NULL */
	const struct md_narrow *narrow;	/* a handle request's narrowing, or NULL */
};

typedef void (*md_handler_fn)(struct md_req *);

struct md_route {
	unsigned methods;		/* EVHTTP_REQ_* mask */
	const char *path;
	bool prefix;			/* path is a prefix (the rest is an argument) */
	const char *token_header;	/* session token header required; NULL: none */
	md_handler_fn handler;
};

/* --- pure parts ------------------------------------------------------------------ */

static void
md_token_mac(const uint8_t key[METADATA_TOKEN_KEY_LEN], const char *sandbox,
    const uint8_t exp_be[8], uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, METADATA_TOKEN_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)MD_TOKEN_DOMAIN,
	    strlen(MD_TOKEN_DOMAIN));
	/* the NUL ends the name, so ("ab", exp) and ("a", "b"||exp) differ */
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)sandbox, strlen(sandbox) + 1);
	crypto_auth_hmacsha256_update(&st, exp_be, 8);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

void
metadata_token_mint(const uint8_t key[METADATA_TOKEN_KEY_LEN], const char *sandbox,
    int64_t exp, char out[METADATA_TOKEN_BUF])
{
	uint8_t raw[METADATA_TOKEN_RAW_LEN];
	uint64_t e = (uint64_t)exp;
	size_t plen = strlen(METADATA_TOKEN_PREFIX);

	for (int i = 7; i >= 0; i--, e >>= 8)
		raw[i] = (uint8_t)(e & 0xff);
	md_token_mac(key, sandbox, raw, raw + 8);
	memcpy(out, METADATA_TOKEN_PREFIX, plen);
	sodium_bin2base64(out + plen, METADATA_TOKEN_BUF - plen, raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int
metadata_token_verify(const uint8_t key[METADATA_TOKEN_KEY_LEN], const char *sandbox,
    const char *token, int64_t now)
{
	uint8_t raw[METADATA_TOKEN_RAW_LEN], mac[crypto_auth_hmacsha256_BYTES];
	size_t plen = strlen(METADATA_TOKEN_PREFIX), rawlen = 0;
	const char *end = NULL;
	uint64_t e = 0;

	if (token == NULL || strlen(token) != METADATA_TOKEN_TEXT_LEN ||
	    strncmp(token, METADATA_TOKEN_PREFIX, plen) != 0)
		return METADATA_TOKEN_BAD;
	if (sodium_base642bin(raw, sizeof(raw), token + plen, METADATA_TOKEN_TEXT_LEN - plen,
	    NULL, &rawlen, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    rawlen != sizeof(raw) || end != token + METADATA_TOKEN_TEXT_LEN)
		return METADATA_TOKEN_BAD;
	md_token_mac(key, sandbox, raw, mac);
	if (crypto_verify_32(mac, raw + 8) != 0)
		return METADATA_TOKEN_BAD;
	for (int i = 0; i < 8; i++)
		e = e << 8 | raw[i];
	if (e > INT64_MAX || now >= (int64_t)e)
		return METADATA_TOKEN_EXPIRED;
	return METADATA_TOKEN_OK;
}

int
metadata_parse_ttl(const char *s, int64_t *ttl)
{
	int64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > METADATA_TOKEN_TTL_MAX_S)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < METADATA_TOKEN_TTL_MIN_S || v > METADATA_TOKEN_TTL_MAX_S)
		return -1;
	*ttl = v;
	return 0;
}

bool
metadata_is_forwarding_header(const char *name)
{
	for (size_t i = 0; i < SG_ARRAY_LEN(md_forwarding_headers); i++)
		if (strcasecmp(name, md_forwarding_headers[i]) == 0)
			return true;
	return false;
}

static bool
md_is_identifier(const char *s)
{
	if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
		    (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* Append "export NAME='value'\n" to b; each ' in value becomes '\''. */
static int
md_env_line(struct evbuffer *b, const char *name, const char *value)
{
	int rc = evbuffer_add_printf(b, "export %s='", name) < 0 ? -1 : 0;

	for (const char *q; rc == 0 && (q = strchr(value, '\'')) != NULL; value = q + 1)
		if (evbuffer_add(b, value, (size_t)(q - value)) < 0 ||
		    evbuffer_add(b, "'\\''", 4) < 0)
			rc = -1;
	if (rc == 0 && evbuffer_add_printf(b, "%s'\n", value) < 0)
		rc = -1;
	return rc;
}

char *
metadata_env_render(const metadata_env_var_t *vars, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	char *out = NULL;
	size_t len;
	int rc = b ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < n; i++)
		if (vars[i].value != NULL && md_is_identifier(vars[i].name))
			rc = md_env_line(b, vars[i].name, vars[i].value);
	if (rc == 0) {
		len = evbuffer_get_length(b);
		if ((out = malloc(len + 1)) != NULL) {
			evbuffer_remove(b, out, len);
			out[len] = '\0';
		}
	}
	if (b)
		evbuffer_free(b);
	return out;
}

bool
metadata_aws_uri_host_ok(const char *hostport)
{
	static const char *const ok[] = { "127.0.0.1", "169.254.170.2" };
	struct sockaddr_storage ss;
	socklen_t sl;
	struct in_addr want;
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;

	if (proxy_parse_listen(hostport, &ss, &sl) < 0 || ss.ss_family != AF_INET)
		return false;
	for (size_t i = 0; i < SG_ARRAY_LEN(ok); i++)
		if (inet_pton(AF_INET, ok[i], &want) == 1 &&
		    v4->sin_addr.s_addr == want.s_addr)
			return true;
	return false;
}

int
metadata_aws_env(const metadata_aws_env_t *in, metadata_env_var_t *vars, size_t *n,
    char uri[METADATA_AWS_URI_MAX])
{
	int rc = 0, len;

	if (in->hostport != NULL && in->token != NULL) {
		len = snprintf(uri, METADATA_AWS_URI_MAX, "http://%s%s%s", in->hostport,
		    METADATA_AWS_CREDS_PATH, in->role);
		if (len > 0 && len < METADATA_AWS_URI_MAX) {
			vars[(*n)++] = (metadata_env_var_t){ "AWS_CONTAINER_CREDENTIALS_FULL_URI",
			    uri };
			vars[(*n)++] = (metadata_env_var_t){ "AWS_CONTAINER_AUTHORIZATION_TOKEN",
			    in->token };
		} else
			rc = -1;
	}
	if (in->region != NULL) {
		vars[(*n)++] = (metadata_env_var_t){ "AWS_REGION", in->region };
		vars[(*n)++] = (metadata_env_var_t){ "AWS_DEFAULT_REGION", in->region };
	}
	if (in->ca_path != NULL)
		vars[(*n)++] = (metadata_env_var_t){ "AWS_CA_BUNDLE", in->ca_path };
	return rc;
}

/* A JSON string value needing no escapes: no quote, backslash or control character. */
static bool
md_json_plain(const char *s)
{
	if (s == NULL)
		return false;
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

char *
metadata_aws_creds_render(const metadata_aws_creds_t *c, size_t *len)
{
	const char *imds = c->last_updated;
	size_t cap;
	char *out;
	int n;

	if (!md_json_plain(c->access_key_id) || !md_json_plain(c->secret_access_key) ||
	    !md_json_plain(c->token) || !md_json_plain(c->expiration) ||
	    (imds != NULL && !md_json_plain(imds)))
		return NULL;
	cap = 160 + strlen(c->access_key_id) + strlen(c->secret_access_key) +
	    strlen(c->token) + strlen(c->expiration) + (imds ? strlen(imds) : 0);
	if ((out = secmem_wipe_alloc(cap)) == NULL)
		return NULL;
	n = snprintf(out, cap, "{%s%s%s\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\","
	    "\"Token\":\"%s\",\"Expiration\":\"%s\"}",
	    imds ? "\"Code\":\"Success\",\"LastUpdated\":\"" : "", imds ? imds : "",
	    imds ? "\",\"Type\":\"AWS-HMAC\"," : "", c->access_key_id, c->secret_access_key,
	    c->token, c->expiration);
	if (n < 0 || (size_t)n >= cap) {
		secmem_wipe_free(out);
		return NULL;
	}
	*len = (size_t)n;
	return out;
}

/* --- replies --------------------------------------------------------------------- */

static const char *
md_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static void
md_reply(struct md_req *r, int code, const char *ctype, const void *body, size_t len)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (b == NULL || evbuffer_add(b, body, len) < 0) {
		evhttp_send_error(r->req, 500, NULL);
	} else
		evhttp_send_reply(r->req, code, md_reason(code), b);
	if (b)
		evbuffer_free(b);
}

/* libevent is done with a body md_reply_secret gave it: zero and free it. */
static void
md_wipe_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	secmem_wipe_free(arg);
}

/* md_reply for a body in wipe memory (taken over): sent by reference, zeroed once sent. */
static void
md_reply_secret(struct md_req *r, int code, const char *ctype, char *body, size_t len)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (b == NULL || evbuffer_add_reference(b, body, len, md_wipe_cb, body) < 0) {
		secmem_wipe_free(body);
		evhttp_send_error(r->req, 500, NULL);
	} else
		evhttp_send_reply(r->req, code, md_reason(code), b);
	if (b)
		evbuffer_free(b);
}

static void
md_reply_json(struct md_req *r, int code, json_t *j)
{
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (txt == NULL) {
		evhttp_send_error(r->req, 500, NULL);
		return;
	}
	md_reply(r, code, "application/json", txt, strlen(txt));
	free(txt);
}

/* The method as the audit line names it. */
static const char *
md_method_str(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return NULL;
	}
}

/*
 * One audit line for this request: sandbox (when known), source address, method and
 * path, plus what the caller fills in. Never handle or token text (audit.h).
 */
static void
md_audit(const struct md_req *r, audit_event_t *ev)
{
	ev->sandbox = r->sb ? r->sb->name : NULL;
	ev->source = r->source[0] ? r->source : NULL;
	ev->method = md_method_str(r->method);
	ev->path = r->path;
	audit_log(ev);
}

/* Refusals of who is asking (401 token, 403 forwarded / unknown address, 429) are audited;
 * malformed requests (400, 404, 405) and our own failures (5xx) only logged. */
static bool
md_error_audited(int code)
{
	return code == 401 || code == 403 || code == 429;
}

static void md_error(struct md_req *r, int code, const char *ecode, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* {"error": ecode, "message": ...} + X-Sealgate-Error. Messages never hold secrets. */
static void
md_error(struct md_req *r, int code, const char *ecode, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "X-Sealgate-Error", ecode);
	log_debug("%s %s: %d %s", r->sb ? r->sb->name : "-", r->path ? r->path : "-", code,
	    ecode);
	if (md_error_audited(code))
		md_audit(r, &(audit_event_t){ .event = code == 429 ? "rate_limited" : "denied",
		    .status = code, .error = ecode, .detail = "metadata" });
	md_reply_json(r, code, json_pack("{s:s, s:s}", "error", ecode, "message", msg));
}

/* --- handle minting ---------------------------------------------------------------- */

/* RFC 3339 UTC (as `sealgate handle mint --json` prints it). */
static void
md_format_time(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "%lld", (long long)t);
}

/* The lifetime kind as the responder names it ("lifetime" in answers and audit). */
static const char *
md_lifetime_name(bool sandbox)
{
	return sandbox ? "sandbox" : "ttl";
}

/*
 * A fresh handle for the request's sandbox, or NULL; *exp and *sandbox say how long it
 * lives (sandbox: bound to the sandbox, exp is its max_ttl backstop). Logs and audits the
 * mint (by its handle id, never the text).
 */
static char *
md_mint(struct md_req *r, const policy_credential_t *cred, int64_t *exp, bool *sandbox)
{
	sandbox_lifetime_t life;
	handle_claims_t c;
	char *text = NULL, when[32], detail[64];
	int rc;

	sandbox_view_lifetime(r->sb, cred, &life);
	memset(&c, 0, sizeof(c));
	c.cred = cred->name;
	c.sb = (char *)r->sb->name;	/* handle_mint only reads it */
	c.iat = util_now_s();
	c.exp = c.iat + (int64_t)life.ttl_s;
	c.life_sandbox = life.sandbox;
	if (r->narrow != NULL) {	/* handle_mint only reads them */
		c.scope = (char *)(uintptr_t)r->narrow->scope;
		c.audience = (char *)(uintptr_t)r->narrow->audience;
		c.repos = r->narrow->r;
		c.perms = r->narrow->p;
	}
	/* a registered sandbox's handles never outlive its registration */
	if (r->sb->expires_at != 0 && c.exp > r->sb->expires_at)
		c.exp = r->sb->expires_at;
	if ((rc = handle_mint(r->md->seal_key, &c, &text)) != HANDLE_OK) {
		log_err("sandbox %s credential %s: %s", c.sb, c.cred, handle_error_message(rc));
		return NULL;
	}
	log_info("minted handle sandbox=%s credential=%s hid=%s key=%s exp=%lld lifetime=%s",
	    c.sb, c.cred, c.hid, c.key_id, (long long)c.exp, md_lifetime_name(life.sandbox));
	md_format_time(c.exp, when, sizeof(when));
	snprintf(detail, sizeof(detail), "expires_at=%s lifetime=%s", when,
	    md_lifetime_name(life.sandbox));
	md_audit(r, &(audit_event_t){ .event = "minted", .handle_id = c.hid,
	    .credential = c.cred, .status = 200, .detail = detail });
	*exp = c.exp;
	*sandbox = life.sandbox;
	return text;
}

/* --- handlers ---------------------------------------------------------------------- */

/* The wall clock in whole seconds, rounded up. */
static int64_t
md_now_ceil_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec + (ts.tv_nsec > 0);
}

/* A session token for the TTL in header ttl_hdr, echoed back in the same header. */
static void
md_token_issue(struct md_req *r, const char *ttl_hdr)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(r->req), ttl_hdr);
	char tok[METADATA_TOKEN_BUF], ttl_txt[24];
	int64_t ttl;

	if (metadata_parse_ttl(v, &ttl) < 0) {
		md_error(r, 400, "bad_ttl", "%s must be a whole number of seconds in %d..%d",
		    ttl_hdr, METADATA_TOKEN_TTL_MIN_S, METADATA_TOKEN_TTL_MAX_S);
		return;
	}
	/* whole seconds: round "now" up, so a token lives at least its TTL (not TTL-1) */
	metadata_token_mint(r->md->token_key, r->sb->name, md_now_ceil_s() + ttl, tok);
	snprintf(ttl_txt, sizeof(ttl_txt), "%lld", (long long)ttl);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), ttl_hdr, ttl_txt);
	md_reply(r, 200, "text/plain", tok, strlen(tok));
	sodium_memzero(tok, sizeof(tok));
}

static void
md_token_cb(struct md_req *r)
{
	md_token_issue(r, METADATA_HDR_TTL);
}

static void
md_handles_cb(struct md_req *r)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < r->sb->credentials->n; i++)
		json_array_append_new(a, json_string(r->sb->credentials->v[i]));
	md_reply_json(r, 200, a);
}

static json_t *
md_strlist_json(const policy_strlist_t *l)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

/* A fresh handle of cred (narrowed as r->narrow says) in the JSON answer. */
static void
md_handle_reply(struct md_req *r, const policy_credential_t *cred, const char *name)
{
	char *text, when[64];
	bool sandbox;
	int64_t exp;
	json_t *j;

	if ((text = md_mint(r, cred, &exp, &sandbox)) == NULL) {
		md_error(r, 500, "mint_failed", "could not mint a handle for %s", name);
		return;
	}
	md_format_time(exp, when, sizeof(when));
	j = json_pack("{s:s, s:s, s:s, s:s?, s:o}", "handle", text, "expires_at", when,
	    "lifetime", md_lifetime_name(sandbox), "env", cred->env, "hosts",
	    md_strlist_json(&cred->hosts));
	free(text);
	md_reply_json(r, 200, j);
}

/* The query's narrowing into n (its lists point into n->q: evhttp_clear_headers frees
 * it). 0, or -1 (answered: 400 for a malformed or unknown parameter). */
static int
md_narrow_parse(struct md_req *r, struct md_narrow *n)
{
	const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
	struct evkeyval *kv;

	memset(n, 0, sizeof(*n));
	TAILQ_INIT(&n->q);
	n->r.v = n->repos;
	n->p.v = n->perms;
	if (qs == NULL || *qs == '\0')
		return 0;
	if (evhttp_parse_query_str(qs, &n->q) < 0) {
		md_error(r, 400, "bad_request", "malformed query string");
		return -1;
	}
	TAILQ_FOREACH(kv, &n->q, next) {
		policy_strlist_t *l = strcmp(kv->key, "repo") == 0 ? &n->r :
		    strcmp(kv->key, "permission") == 0 ? &n->p : NULL;

		const char **one = strcmp(kv->key, "scope") == 0 ? &n->scope :
		    strcmp(kv->key, "audience") == 0 ? &n->audience : NULL;

		if (one != NULL && *one == NULL) {
			*one = kv->value;
			continue;
		}
		if (l == NULL) {
			md_error(r, 400, "bad_request", "a handle request takes the query "
			    "parameters scope and audience (once each), repo and permission only");
			return -1;
		}
		if (l->n > MINTREQ_NARROW_MAX)	/* one past the bound: refused below */
			continue;
		l->v[l->n++] = kv->value;
	}
	return 0;
}

/* The narrowing asked for is within what cred allows. 0, or -1 (answered: 403). */
static int
md_narrow_check(struct md_req *r, const policy_credential_t *cred, const struct md_narrow *n)
{
	const char *why;

	if (n->scope == NULL && n->audience == NULL && n->r.n == 0 && n->p.n == 0)
		return 0;
	if (cred->mint == NULL) {
		md_error(r, 403, "narrowing_denied", "scope, audience, repo and permission "
		    "narrow minted credentials only (%s has no mint)", cred->name);
		return -1;
	}
	if (mintreq_narrow_check(cred->mint, n->scope, &n->r, &n->p, &why) < 0 ||
	    mintreq_audience_check(cred->mint, n->audience, &why) < 0) {
		md_error(r, 403, "narrowing_denied", "%s", why);
		return -1;
	}
	r->narrow = n;
	return 0;
}

static void
md_handle_cb(struct md_req *r)
{
	const char *name = r->path + strlen("/v1/handles/");
	const policy_credential_t *cred = policy_credential_find(r->snap.policy, name);
	struct md_narrow n;

	if (cred == NULL || !sandbox_view_grants(r->sb, name)) {
		md_error(r, 404, "not_granted", "sandbox %s is not granted credential %.64s",
		    r->sb->name, name);
		return;
	}
	if (md_narrow_parse(r, &n) == 0 && md_narrow_check(r, cred, &n) == 0)
		md_handle_reply(r, cred, name);
	r->narrow = NULL;
	evhttp_clear_headers(&n.q);
}


static bool
md_is_aws(const policy_credential_t *cred)
{
	return cred != NULL && cred->inject.type == INJECT_AWS_SIGV4 && cred->aws != NULL;
}

/* The IAM role called name: an aws_sigv4 credential granted to the sandbox, or NULL. */
static const policy_credential_t *
md_aws_role(const struct md_req *r, const char *name)
{
	const policy_credential_t *cred = policy_credential_find(r->snap.policy, name);

	return md_is_aws(cred) && sandbox_view_grants(r->sb, name) ? cred : NULL;
}

/* The sandbox's default role: the first aws_sigv4 credential it is granted, or NULL. */
static const policy_credential_t *
md_aws_default(const struct md_req *r)
{
	const policy_credential_t *cred;

	for (size_t i = 0; i < r->sb->credentials->n; i++) {
		cred = policy_credential_find(r->snap.policy, r->sb->credentials->v[i]);
		if (md_is_aws(cred))
			return cred;
	}
	return NULL;
}

/* Handles for every granted credential with an env name; NULL entries on failure. */
static int
md_env_handles(struct md_req *r, metadata_env_var_t *vars, size_t *n)
{
	const policy_credential_t *cred;
	bool sandbox;
	int64_t exp;

	for (size_t i = 0; i < r->sb->credentials->n; i++) {
		cred = policy_credential_find(r->snap.policy, r->sb->credentials->v[i]);
		if (cred == NULL || cred->env == NULL)
			continue;
		vars[*n].name = cred->env;
		if ((vars[(*n)++].value = md_mint(r, cred, &exp, &sandbox)) == NULL)
			return -1;
	}
	return 0;
}

/* Proxy, NO_PROXY and CA variables after the handles. */
static void
md_env_fixed(const metadata_t *md, metadata_env_var_t *vars, size_t *n)
{
	for (size_t i = 0; md->proxy_url && i < SG_ARRAY_LEN(md_proxy_vars); i++)
		vars[(*n)++] = (metadata_env_var_t){ md_proxy_vars[i], md->proxy_url };
	for (size_t i = 0; i < SG_ARRAY_LEN(md_no_proxy_vars); i++)
		vars[(*n)++] = (metadata_env_var_t){ md_no_proxy_vars[i], md->no_proxy };
	for (size_t i = 0; md->ca_pem && i < SG_ARRAY_LEN(md_ca_vars); i++)
		vars[(*n)++] = (metadata_env_var_t){ md_ca_vars[i], md->ca_guest_path };
}

/* The AWS container token lives as long as any handle of its credential may: max_ttl
 * (capped by the template's), and never past the sandbox's registration. */
static int64_t
md_aws_token_exp(const struct md_req *r, const policy_credential_t *cred, int64_t now)
{
	uint64_t ttl = cred->max_ttl_s;
	int64_t exp;

	if (r->sb->max_ttl_s != 0 && r->sb->max_ttl_s < ttl)
		ttl = r->sb->max_ttl_s;
	exp = now + (int64_t)ttl;
	if (r->sb->expires_at != 0 && exp > r->sb->expires_at)
		exp = r->sb->expires_at;
	return exp;
}

/* The AWS variables for the sandbox's default role (none without one). */
static void
md_env_aws(struct md_req *r, metadata_env_var_t *vars, size_t *n,
    char uri[METADATA_AWS_URI_MAX], char tok[METADATA_TOKEN_BUF])
{
	const policy_credential_t *cred = md_aws_default(r);
	const metadata_t *md = r->md;
	const char *hp = md->bound_aws[0] ? md->bound_aws : md->bound;
	metadata_aws_env_t in = { .ca_path = md->ca_pem ? md->ca_guest_path : NULL };

	if (cred == NULL)
		return;
	in.role = cred->name;
	in.region = cred->aws->nregions == 1 ? cred->aws->regions[0] : NULL;
	if (metadata_aws_uri_host_ok(hp)) {
		metadata_token_mint(md->token_key, r->sb->name,
		    md_aws_token_exp(r, cred, md_now_ceil_s()), tok);
		in.hostport = hp;
		in.token = tok;
	}
	if (metadata_aws_env(&in, vars, n, uri) < 0)
		log_warn("sandbox %s: the container credentials URI of %s is too long",
		    r->sb->name, cred->name);
}

static void
md_env_cb(struct md_req *r)
{
	size_t nh = 0, nv, cap = r->sb->credentials->n + SG_ARRAY_LEN(md_proxy_vars) +
	    SG_ARRAY_LEN(md_no_proxy_vars) + SG_ARRAY_LEN(md_ca_vars) + METADATA_AWS_ENV_MAX;
	metadata_env_var_t *vars = calloc(cap, sizeof(*vars));
	char *txt = NULL, uri[METADATA_AWS_URI_MAX], tok[METADATA_TOKEN_BUF];
	int rc;

	if (vars == NULL) {
		evhttp_send_error(r->req, 500, NULL);
		return;
	}
	rc = md_env_handles(r, vars, &nh);
	nv = nh;
	md_env_fixed(r->md, vars, &nv);
	md_env_aws(r, vars, &nv, uri, tok);
	if (rc == 0)
		txt = metadata_env_render(vars, nv);
	sodium_memzero(tok, sizeof(tok));
	if (txt == NULL)
		md_error(r, 500, "mint_failed", "could not render the environment");
	else
		md_reply(r, 200, "text/plain; charset=utf-8", txt, strlen(txt));
	for (size_t i = 0; i < nh; i++)
		free((char *)vars[i].value);
	free(vars);
	free(txt);
}

static void
md_ca_cb(struct md_req *r)
{
	if (r->md->ca_pem == NULL)
		md_error(r, 404, "no_ca", "this responder serves no CA certificate");
	else
		md_reply(r, 200, "application/x-pem-file", r->md->ca_pem, r->md->ca_pem_len);
}

/* --- AWS: IMDSv2 and container credentials -------------------------------------------- */

/* Mint a handle of cred and answer its derived credentials (imds: the IMDS form). */
static void
md_aws_creds_reply(struct md_req *r, const policy_credential_t *cred, bool imds)
{
	char akid[AWSCRED_AKID_LEN + 1], secret[AWSCRED_SECRET_LEN + 1];
	char expires[AWSCRED_EXPIRATION_LEN + 1], now[AWSCRED_EXPIRATION_LEN + 1];
	metadata_aws_creds_t c = { akid, secret, NULL, expires, imds ? now : NULL };
	char *handle, *body = NULL;
	size_t len = 0;
	bool sandbox;
	int64_t exp;

	if ((handle = md_mint(r, cred, &exp, &sandbox)) == NULL) {
		md_error(r, 500, "mint_failed", "could not mint a handle for %s", cred->name);
		return;
	}
	c.token = handle;
	awscred_access_key_id(handle, strlen(handle), akid);
	if (awscred_secret(r->md->seal_key, handle, strlen(handle), secret) == 0 &&
	    awscred_expiration(exp, expires) == 0 && awscred_expiration(util_now_s(), now) == 0)
		body = metadata_aws_creds_render(&c, &len);
	sodium_memzero(secret, sizeof(secret));
	free(handle);
	if (body == NULL)
		md_error(r, 500, "mint_failed", "could not derive credentials for %s", cred->name);
	else
		md_reply_secret(r, 200, "application/json", body, len);
}

static void
md_imds_token_cb(struct md_req *r)
{
	md_token_issue(r, METADATA_HDR_AWS_TTL);
}

/*
 * The instance's role: the default one only. An EC2 instance profile holds one role, and
 * SDKs append this answer, whole, to the path of the next request (botocore does), so a
 * second line would break them. The other roles are still served by name.
 */
static void
md_imds_roles_cb(struct md_req *r)
{
	const policy_credential_t *cred = md_aws_default(r);

	if (cred == NULL)
		md_error(r, 404, "no_role", "sandbox %s is granted no aws_sigv4 credential",
		    r->sb->name);
	else
		md_reply(r, 200, "text/plain", cred->name, strlen(cred->name));
}

static void
md_imds_role_cb(struct md_req *r)
{
	const char *name = r->path + strlen(METADATA_IMDS_ROLES_PATH);
	const policy_credential_t *cred = md_aws_role(r, name);

	if (cred == NULL)
		md_error(r, 404, "no_role", "sandbox %s has no IAM role %.64s", r->sb->name, name);
	else
		md_aws_creds_reply(r, cred, true);
}

static void
md_aws_creds_cb(struct md_req *r)
{
	const char *name = r->path + strlen(METADATA_AWS_CREDS_PATH);
	const policy_credential_t *cred = md_aws_role(r, name);

	if (cred == NULL)
		md_error(r, 404, "no_role", "sandbox %s has no IAM role %.64s", r->sb->name, name);
	else
		md_aws_creds_reply(r, cred, false);
}

/* The default role's first region; NULL (and a 404 answered) when it names none. */
static const char *
md_aws_region(struct md_req *r)
{
	const policy_credential_t *cred = md_aws_default(r);

	if (cred != NULL && cred->aws->nregions > 0)
		return cred->aws->regions[0];
	md_error(r, 404, "no_region", "sandbox %s has no AWS credential that names a region",
	    r->sb->name);
	return NULL;
}

static void
md_imds_region_cb(struct md_req *r)
{
	const char *region = md_aws_region(r);

	if (region != NULL)
		md_reply(r, 200, "text/plain", region, strlen(region));
}

/* botocore and the AWS CLI read the zone and drop its last letter to get the region. */
static void
md_imds_zone_cb(struct md_req *r)
{
	const char *region = md_aws_region(r);
	char zone[64];
	int n;

	if (region == NULL)
		return;
	n = snprintf(zone, sizeof(zone), "%sa", region);
	md_reply(r, 200, "text/plain", zone, n > 0 && (size_t)n < sizeof(zone) ? (size_t)n : 0);
}

/* The routes: sealgate's own, then the AWS tree with its own token headers. */
static const struct md_route md_routes[] = {
	{ EVHTTP_REQ_PUT, "/v1/token", false, NULL, md_token_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/v1/handles", false, METADATA_HDR_TOKEN,
	  md_handles_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/v1/handles/", true, METADATA_HDR_TOKEN,
	  md_handle_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/v1/env", false, METADATA_HDR_TOKEN, md_env_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/v1/ca.pem", false, METADATA_HDR_TOKEN,
	  md_ca_cb },
	{ EVHTTP_REQ_GET, METADATA_AWS_CREDS_PATH, true, METADATA_HDR_AWS_AUTH,
	  md_aws_creds_cb },
	{ EVHTTP_REQ_PUT, "/latest/api/token", false, NULL, md_imds_token_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, METADATA_IMDS_ROLES_PATH, false,
	  METADATA_HDR_AWS_TOKEN, md_imds_roles_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/latest/meta-data/iam/security-credentials", false,
	  METADATA_HDR_AWS_TOKEN, md_imds_roles_cb },
	{ EVHTTP_REQ_GET, METADATA_IMDS_ROLES_PATH, true, METADATA_HDR_AWS_TOKEN,
	  md_imds_role_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/latest/meta-data/placement/region", false,
	  METADATA_HDR_AWS_TOKEN, md_imds_region_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/latest/meta-data/placement/availability-zone",
	  false, METADATA_HDR_AWS_TOKEN, md_imds_zone_cb },
	{ EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/latest/meta-data/placement/availability-zone/",
	  false, METADATA_HDR_AWS_TOKEN, md_imds_zone_cb },
};

/* --- request path: accept → checks → route → handler ----------------------------- */

static const struct md_route *
md_route_find(const char *path)
{
	const struct md_route *rt;

	for (size_t i = 0; i < SG_ARRAY_LEN(md_routes); i++) {
		rt = &md_routes[i];
		if (rt->prefix ? strncmp(path, rt->path, strlen(rt->path)) == 0 &&
		    path[strlen(rt->path)] != '\0' : strcmp(path, rt->path) == 0)
			return rt;
	}
	return NULL;
}

static bool
md_forwarded(struct evhttp_request *req)
{
	struct evkeyval *h;

	TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next)
		if (metadata_is_forwarding_header(h->key))
			return true;
	return false;
}

/* The caller's sandbox by source address: static first, then registered. */
static const sandbox_view_t *
md_sandbox_of(struct md_req *r)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	const struct sockaddr *sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;

	if (sa == NULL || sandbox_view_find_by_addr(r->snap.policy, r->snap.registry, sa,
	    util_now_s(), &r->view) < 0)
		return NULL;
	return &r->view;
}

static bool
md_rate_ok(struct md_req *r)
{
	char key[RATELIMIT_MAX_KEY + 1], secs[24];
	struct ratelimit_result res = { .allowed = false };
	struct ratelimit_req q = { .key = key, .rate = &md_rate };
	int n = snprintf(key, sizeof(key), "md:%s", r->sb->name);
	uint64_t wait_s;

	q.keylen = n < 0 ? 0 : (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1;
	if (ratelimit_take(r->md->rl, &q, 1, util_mono_ms(), &res) == 0 && res.allowed)
		return true;
	wait_s = (res.retry_after_ms + 999) / 1000;
	snprintf(secs, sizeof(secs), "%llu", (unsigned long long)(wait_s ? wait_s : 1));
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", secs);
	md_error(r, 429, "rate_limited", "sandbox %s: more than %d metadata requests per "
	    "second", r->sb->name, METADATA_RATE_REQUESTS);
	return false;
}

static bool
md_token_ok(struct md_req *r, const char *header)
{
	const char *tok = evhttp_find_header(evhttp_request_get_input_headers(r->req), header);

	const char *put = strcmp(header, METADATA_HDR_AWS_TOKEN) == 0 ? "/latest/api/token" :
	    "/v1/token";

	switch (metadata_token_verify(r->md->token_key, r->sb->name, tok, util_now_s())) {
	case METADATA_TOKEN_OK:
		return true;
	case METADATA_TOKEN_EXPIRED:
		md_error(r, 401, "token_expired", "%s has expired; PUT %s again", header, put);
		break;
	default:
		if (tok == NULL)
			md_error(r, 401, "token_missing", "%s is required; get one with PUT %s",
			    header, put);
		else
			md_error(r, 401, "token_invalid", "%s is not a session token of this "
			    "sandbox", header);
	}
	return false;
}

static void
md_allow_header(struct md_req *r, unsigned methods)
{
	static const struct { unsigned bit; const char *name; } m[] = {
		{ EVHTTP_REQ_GET, "GET" }, { EVHTTP_REQ_HEAD, "HEAD" }, { EVHTTP_REQ_PUT, "PUT" },
	};
	char allow[32] = "";

	for (size_t i = 0; i < SG_ARRAY_LEN(m); i++)
		if (methods & m[i].bit) {
			if (allow[0] != '\0')
				strcat(allow, ", ");
			strcat(allow, m[i].name);
		}
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
}

static void
md_dispatch(struct md_req *r)
{
	const struct md_route *rt = md_route_find(r->path);

	if (rt == NULL) {
		md_error(r, 404, "not_found", "no metadata endpoint %.64s", r->path);
		return;
	}
	if ((rt->methods & r->method) == 0) {
		md_allow_header(r, rt->methods);
		md_error(r, 405, "method_not_allowed", "%s does not take this method", rt->path);
		return;
	}
	if (rt->token_header != NULL && !md_token_ok(r, rt->token_header))
		return;
	rt->handler(r);
}

/* Answers stay on the sandbox's link; also set on the listener, this is belt and braces. */
static void
md_set_hop_limit(const metadata_t *md, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	const struct sockaddr *sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int v = md->hop_limit;

	if (fd < 0)
		return;
	if (sa != NULL && sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof(v));
	(void)setsockopt(fd, IPPROTO_IP, IP_TTL, &v, sizeof(v));
}

/* The peer's address (no port), "" if unknown. */
static void
md_peer(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;

	if (sa == NULL || netaddr_format(sa, buf, len) < 0)
		buf[0] = '\0';
}

static void
md_request_cb(struct evhttp_request *req, void *arg)
{
	struct md_req r = { .md = arg, .req = req };
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	r.path = path && *path ? path : "/";
	r.method = evhttp_request_get_command(req);
	md_peer(req, r.source, sizeof(r.source));
	md_set_hop_limit(r.md, req);
	if (md_forwarded(req)) {
		md_error(&r, 403, "forwarded_request", "requests relayed through a proxy "
		    "(X-Forwarded-For, Forwarded, Via) are refused");
		return;
	}
	if ((r.method & MD_METHODS) == 0) {
		md_allow_header(&r, MD_METHODS);
		md_error(&r, 405, "method_not_allowed", "use GET, HEAD or PUT");
		return;
	}
	if (view_acquire(&r.snap) < 0) {
		view_release(&r.snap);
		md_error(&r, 503, "no_policy", "no policy loaded");
		return;
	}
	if ((r.sb = md_sandbox_of(&r)) == NULL)
		md_error(&r, 403, "unknown_sandbox", "the source address belongs to no sandbox");
	else if (r.sb->suspended)
		md_error(&r, 403, "sandbox_suspended", "sandbox %s is suspended until it is "
		    "resumed", r.sb->name);
	else if (md_rate_ok(&r))
		md_dispatch(&r);
	view_release(&r.snap);
}

/* --- lifecycle ----------------------------------------------------------------------- */

/* Listen on listen too; bound (80 bytes) gets the address as bound. */
static int
md_listen(metadata_t *md, struct event_base *base, const char *listen, char bound[80],
    char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct evconnlistener *l;
	struct evhttp_bound_socket *bs;
	evutil_socket_t fd;
	int v = md->hop_limit, family;

	if (proxy_parse_listen(listen, &ss, &sl) < 0) {
		snprintf(err, errlen, "metadata: bad listen address %s", listen);
		return -1;
	}
	family = ss.ss_family;
	l = evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, SG_LISTEN_BACKLOG,
	    (struct sockaddr *)&ss, (int)sl);
	if (l == NULL) {
		snprintf(err, errlen, "metadata: cannot listen on %s: %s", listen,
		    strerror(errno));
		return -1;
	}
	fd = evconnlistener_get_fd(l);
	/* accepted sockets inherit these, so even the SYN-ACK stays on the link */
	if ((family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v,
	    sizeof(v)) < 0) || (family == AF_INET && setsockopt(fd, IPPROTO_IP, IP_TTL,
	    &v, sizeof(v)) < 0) || (bs = evhttp_bind_listener(md->http, l)) == NULL) {
		snprintf(err, errlen, "metadata: cannot set up %s: %s", listen, strerror(errno));
		evconnlistener_free(l);
		return -1;
	}
	proxy_format_sockname(evhttp_bound_socket_get_fd(bs), bound, 80);
	return 0;
}

/* Is item one of the comma-separated entries of list? */
static bool
md_list_has(const char *list, const char *item, size_t len)
{
	for (const char *p = list; p != NULL; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, item, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

/* NO_PROXY names the AWS listener's host too: clients must reach it directly. */
static int
md_no_proxy_add(metadata_t *md, const char *hostport)
{
	const char *host = hostport[0] == '[' ? hostport + 1 : hostport;
	const char *end = hostport[0] == '[' ? strchr(host, ']') : strrchr(host, ':');
	size_t len = end ? (size_t)(end - host) : strlen(host);
	char *np = NULL;

	if (md_list_has(md->no_proxy, host, len))
		return 0;
	if (asprintf(&np, "%s,%.*s", md->no_proxy, (int)len, host) < 0)
		return -1;
	free(md->no_proxy);
	md->no_proxy = np;
	return 0;
}

/* The main listener, and the AWS one when opts name it. */
static int
md_listen_all(metadata_t *md, struct event_base *base, const char *listen,
    const metadata_opts_t *o, char *err, size_t errlen)
{
	if (md_listen(md, base, listen, md->bound, err, errlen) < 0)
		return -1;
	if (o->listen_aws == NULL)
		return 0;
	if (md_listen(md, base, o->listen_aws, md->bound_aws, err, errlen) < 0)
		return -1;
	if (o->no_proxy == NULL && md_no_proxy_add(md, md->bound_aws) < 0) {
		snprintf(err, errlen, "metadata: out of memory");
		return -1;
	}
	return 0;
}

static int
md_copy_opts(metadata_t *md, const metadata_opts_t *o, char *err, size_t errlen)
{
	md->seal_key = o->seal_key;
	md->hop_limit = o->hop_limit ? o->hop_limit : METADATA_HOP_LIMIT_DEFAULT;
	md->proxy_url = o->proxy_url ? strdup(o->proxy_url) : NULL;
	md->ca_guest_path = strdup(o->ca_guest_path ? o->ca_guest_path : METADATA_CA_GUEST_PATH);
	md->no_proxy = strdup(o->no_proxy ? o->no_proxy : METADATA_NO_PROXY_DEFAULT);
	if (o->seal_key == NULL || o->seal_key->sk == NULL || md->hop_limit < 1 ||
	    md->hop_limit > 255) {
		snprintf(err, errlen, "metadata: %s", md->hop_limit < 1 || md->hop_limit > 255 ?
		    "hop limit must be 1..255" : "a private seal key is required to mint");
		return -1;
	}
	if ((o->proxy_url && md->proxy_url == NULL) || md->ca_guest_path == NULL ||
	    md->no_proxy == NULL) {
		snprintf(err, errlen, "metadata: out of memory");
		return -1;
	}
	if (o->ca_cert_path && util_read_file(o->ca_cert_path, METADATA_CA_MAX_BYTES, 0,
	    &md->ca_pem, &md->ca_pem_len, err, errlen) < 0)
		return -1;
	return 0;
}

static int
md_init_state(metadata_t *md, const metadata_opts_t *o, char *err, size_t errlen)
{
	md->rl = o->rl;
	if (md->rl == NULL && (md->rl = md->own_rl = ratelimit_new(METADATA_RATE_BUCKETS)) ==
	    NULL) {
		snprintf(err, errlen, "metadata: out of memory");
		return -1;
	}
	if ((md->token_key = secmem_guarded_alloc(METADATA_TOKEN_KEY_LEN)) == NULL) {
		snprintf(err, errlen, "metadata: out of memory");
		return -1;
	}
	randombytes_buf(md->token_key, METADATA_TOKEN_KEY_LEN);
	return 0;
}

static struct evhttp *
md_http_new(struct event_base *base, metadata_t *md)
{
	struct evhttp *h = evhttp_new(base);

	if (h == NULL)
		return NULL;
	evhttp_set_gencb(h, md_request_cb, md);
	evhttp_set_allowed_methods(h, MD_METHODS_SEEN);
	evhttp_set_max_headers_size(h, SG_MAX_HEADER_BYTES);
	evhttp_set_max_body_size(h, METADATA_MAX_BODY);
	evhttp_set_timeout(h, SG_HEADER_TIMEOUT_S);
	return h;
}

metadata_t *
metadata_new(struct event_base *base, const char *listen, const metadata_opts_t *opts,
    char *err, size_t errlen)
{
	metadata_t *md = calloc(1, sizeof(*md));

	if (md == NULL) {
		snprintf(err, errlen, "metadata: out of memory");
		return NULL;
	}
	if (md_copy_opts(md, opts, err, errlen) < 0 || md_init_state(md, opts, err, errlen) < 0)
		goto fail;
	if ((md->http = md_http_new(base, md)) == NULL) {
		snprintf(err, errlen, "metadata: out of memory");
		goto fail;
	}
	if (md_listen_all(md, base, listen, opts, err, errlen) < 0)
		goto fail;
	return md;
fail:
	metadata_free(md);
	return NULL;
}

const char *
metadata_bound(const metadata_t *md)
{
	return md->bound;
}

const char *
metadata_bound_aws(const metadata_t *md)
{
	return md->bound_aws[0] ? md->bound_aws : NULL;
}

void
metadata_free(metadata_t *md)
{
	if (md == NULL)
		return;
	if (md->http)
		evhttp_free(md->http);
	ratelimit_free(md->own_rl);
	secmem_guarded_free(md->token_key);
	free(md->proxy_url);
	free(md->ca_guest_path);
	free(md->no_proxy);
	free(md->ca_pem);
	free(md);
}
