/*
 * admin.c — the admin API: health, readiness, metrics, policy view, reload, revoke.
 * Routing is a table; every error answer is JSON with X-Sealgate-Error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "admin.h"
#include "audit.h"
#include "defaults.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "registry.h"
#include "revoke.h"
#include "secmem.h"
#include "stats.h"
#include "util.h"

struct admin {
	struct evhttp *http;
	admin_hooks_t hooks;		/* file names point at the copies below */
	char *token_file, *revocations_file;
	unsigned char *token_hash;	/* BLAKE2b of the token, guarded memory; NULL: none */
	char bound[80];
};

#define ADMIN_TOKEN_HASH	crypto_generichash_BYTES

/* --- replies ----------------------------------------------------------------------- */

static const char *
admin_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 422: return "Unprocessable Entity";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static void
admin_send(struct evhttp_request *req, int code, const char *type, const char *body,
    size_t len)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (b != NULL)
		evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, admin_reason(code), b);
	if (b != NULL)
		evbuffer_free(b);
}

/* Send o (reference taken over) as one JSON line. */
static void
admin_json(struct evhttp_request *req, int code, json_t *o)
{
	char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t n = txt ? strlen(txt) : 0;

	json_decref(o);
	if (txt == NULL) {
		static const char oom[] = "{\"error\":\"internal\"}\n";

		admin_send(req, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	txt[n] = '\n';		/* json_dumps leaves the NUL's byte: reuse it */
	admin_send(req, code, "application/json", txt, n + 1);
	free(txt);
}

static void
admin_error(struct evhttp_request *req, int code, const char *error, const char *message)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Sealgate-Error", error);
	admin_json(req, code, json_pack("{s:s, s:s}", "error", error, "message", message));
}

/* --- token ------------------------------------------------------------------------- */

static void
admin_token_hash(const char *tok, size_t len, unsigned char out[ADMIN_TOKEN_HASH])
{
	crypto_generichash(out, ADMIN_TOKEN_HASH, (const unsigned char *)tok, len, NULL, 0);
}

/* Read the token file into a's hash (kept on failure). */
static int
admin_token_load(admin_t *a, char *err, size_t errlen)
{
	char *buf;
	size_t len, lo = 0;
	unsigned char *h;

	if (a->token_file == NULL)
		return 0;
	if (util_read_file(a->token_file, ADMIN_MAX_TOKEN, 1, &buf, &len, err, errlen) < 0)
		return -1;
	while (lo < len && strchr(" \t\r\n", buf[lo]) != NULL)
		lo++;
	while (len > lo && strchr(" \t\r\n", buf[len - 1]) != NULL)
		len--;
	if (len == lo || (h = secmem_guarded_alloc(ADMIN_TOKEN_HASH)) == NULL) {
		snprintf(err, errlen, "%s: %s", a->token_file, len == lo ? "admin token is "
		    "empty" : "out of memory");
		secmem_guarded_free(buf);
		return -1;
	}
	admin_token_hash(buf + lo, len - lo, h);
	secmem_guarded_free(buf);
	secmem_guarded_free(a->token_hash);
	a->token_hash = h;
	return 0;
}

/* Token check: true when allowed; otherwise the 401/403 is sent. */
static bool
admin_authorized(admin_t *a, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	unsigned char got[ADMIN_TOKEN_HASH];
	bool ok;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer realm=\"sealgate-admin\"");
		admin_error(req, 401, "unauthorized", "admin API needs Authorization: Bearer "
		    "<admin token>");
		return false;
	}
	for (h += 7; *h == ' '; h++)
		;
	admin_token_hash(h, strlen(h), got);
	ok = a->token_hash != NULL && sodium_memcmp(got, a->token_hash, ADMIN_TOKEN_HASH) == 0;
	sodium_memzero(got, sizeof(got));
	if (!ok)
		admin_error(req, 403, "forbidden", a->token_hash ? "admin token does not match" :
		    "no admin token is configured");
	return ok;
}

/* --- read-only endpoints ----------------------------------------------------------- */

static void
admin_healthz(admin_t *a, struct evhttp_request *req)
{
	(void)a;
	admin_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void
admin_readyz(admin_t *a, struct evhttp_request *req)
{
	bool ready = a->hooks.ready == NULL || a->hooks.ready(a->hooks.arg);

	admin_json(req, ready ? 200 : 503, json_pack("{s:s}", "status",
	    ready ? "ready" : "not_ready"));
}

static void
admin_metrics(admin_t *a, struct evhttp_request *req)
{
	size_t len = 0;
	char *txt = a->hooks.metrics ? a->hooks.metrics(a->hooks.arg, &len) :
	    metrics_render(NULL, &len);

	if (txt == NULL) {
		admin_error(req, 500, "internal", "metrics unavailable");
		return;
	}
	admin_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", txt, len);
	free(txt);
}

static json_t *
admin_strlist(const policy_strlist_t *l)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(arr, json_string(l->v[i]));
	return arr;
}

static json_t *
admin_array(char *const *v, size_t n)
{
	policy_strlist_t l = {n, (char **)(uintptr_t)v};

	return admin_strlist(&l);
}

/* An aws_sigv4 credential's scope: never its access key id or session token. */
static json_t *
admin_summary_aws(const policy_aws_t *a)
{
	if (a == NULL)
		return NULL;
	return json_pack("{s:o, s:o, s:o, s:o, s:b, s:s?}",
	    "services", admin_array(a->services, a->nservices),
	    "regions", admin_array(a->regions, a->nregions),
	    "buckets", admin_array(a->buckets, a->nbuckets),
	    "prefixes", admin_array(a->prefixes, a->nprefixes),
	    "session_token", a->session_token != NULL,
	    "assume_role", a->assume_role.set ? a->assume_role.role_arn : NULL);
}

/* A minted credential's grant and token endpoint (never its root secret). */
static json_t *
admin_summary_mint(const policy_mint_t *m)
{
	if (m == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:s?}", "type", policy_mint_name(m->type), "token_url",
	    m->token_url, "client_id", m->client_id);
}

static json_t *
admin_summary_credential(const policy_credential_t *c)
{
	static const char *const source[] = {"env", "file", "value", "exec"};

	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:I, s:s, s:I, s:s?, s:b, s:b, s:b, "
	    "s:o*, s:o*}", "secret", c->mint ? "mint" : source[c->secret_source],
	    "inject", policy_inject_name(c->inject.type),
	    "hosts", admin_strlist(&c->hosts), "methods", admin_strlist(&c->methods),
	    "paths", admin_strlist(&c->paths), "ttl_s", (json_int_t)c->ttl_s,
	    "lifetime", c->ttl_sandbox ? "sandbox" : "ttl", "max_ttl_s",
	    (json_int_t)c->max_ttl_s, "env", c->env, "allow_plain_http", c->allow_plain_http,
	    "allow_websocket_binary", c->allow_websocket_binary, "echo_ok_in_body",
	    c->echo_ok_in_body, "aws",
	    admin_summary_aws(c->aws), "mint", admin_summary_mint(c->mint));
}

/* The default policy view: names, scopes and sources, never a secret or token. */
static char *
admin_policy_summary(void)
{
	policy_t *p = policy_acquire();
	json_t *creds = json_object(), *sbs = json_object(), *o;
	char *txt;

	if (p == NULL) {
		json_decref(creds);
		json_decref(sbs);
		return NULL;
	}
	for (size_t i = 0; i < p->ncredentials; i++)
		json_object_set_new(creds, p->credentials[i].name,
		    admin_summary_credential(&p->credentials[i]));
	for (size_t i = 0; i < p->nsandboxes; i++)
		json_object_set_new(sbs, p->sandboxes[i].name, json_pack("{s:o, s:I, s:b}",
		    "credentials", admin_strlist(&p->sandboxes[i].credentials),
		    "addresses", (json_int_t)p->sandboxes[i].naddresses,
		    "token", p->sandboxes[i].token != NULL));
	o = json_pack("{s:I, s:s?, s:{s:s?, s:s?, s:s?}, s:o, s:o}",
	    "generation", (json_int_t)p->generation, "source", p->source,
	    "listen", "proxy", p->listen.proxy, "metadata", p->listen.metadata,
	    "admin", p->listen.admin, "credentials", creds, "sandboxes", sbs);
	policy_unref(p);
	txt = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return txt;
}

static void
admin_policy(admin_t *a, struct evhttp_request *req)
{
	char *txt = a->hooks.policy_json ? a->hooks.policy_json(a->hooks.arg) :
	    admin_policy_summary();
	size_t n;

	if (txt == NULL) {
		admin_error(req, 503, "policy_unavailable", "no policy is published");
		return;
	}
	n = strlen(txt);
	admin_send(req, 200, "application/json", txt, n);
	free(txt);
}

/* --- mutations --------------------------------------------------------------------- */

static void
admin_peer(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	const char *addr = NULL;
	uint16_t port = 0;

	if (c != NULL)
		evhttp_connection_get_peer(c, (char **)&addr, &port);
	snprintf(buf, len, "%s", addr ? addr : "unknown");
}

static void
admin_audit(struct evhttp_request *req, const audit_event_t *tmpl)
{
	audit_event_t ev = *tmpl;
	char peer[64];

	admin_peer(req, peer, sizeof(peer));
	ev.source = peer;
	audit_log(&ev);
}

static void
admin_reload(admin_t *a, struct evhttp_request *req)
{
	char *msg, err[512];
	policy_t *p;
	json_int_t gen = 0;

	if (a->hooks.reload == NULL) {
		admin_error(req, 501, "not_implemented", "this server cannot reload");
		return;
	}
	if ((msg = calloc(1, ADMIN_MAX_MESSAGE)) == NULL) {
		admin_error(req, 500, "internal", "out of memory");
		return;
	}
	if (a->hooks.reload(a->hooks.arg, msg, ADMIN_MAX_MESSAGE) < 0) {
		admin_audit(req, &(audit_event_t){.event = "reload", .status = 422,
		    .error = "policy_invalid", .detail = msg});
		admin_error(req, 422, "policy_invalid", msg[0] ? msg : "policy rejected");
		free(msg);
		return;
	}
	free(msg);
	if (admin_refresh(a, err, sizeof(err)) < 0)
		log_warn("admin token not re-read, the old one stays: %s", err);
	if ((p = policy_acquire()) != NULL) {
		gen = (json_int_t)p->generation;
		policy_unref(p);
	}
	admin_audit(req, &(audit_event_t){.event = "reload", .status = 200});
	admin_json(req, 200, json_pack("{s:s, s:I}", "status", "reloaded", "generation", gen));
}

/* Revoke body keys and the revoke.h kind each names. */
static const char *const admin_revoke_keys[][2] = {
	{"handle_id", "handle"}, {"sandbox", "sandbox"}, {"credential", "credential"},
	{"key", "key"},
};

/* Parse {"<key>": "<value>"}: the kind index, or -1 with err set. */
static int
admin_revoke_parse(struct evhttp_request *req, json_t **root, const char **value,
    char *err, size_t errlen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *key;
	json_t *v;
	json_error_t je;

	*root = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES,
	    &je);
	if (*root == NULL || !json_is_object(*root) || json_object_size(*root) != 1) {
		snprintf(err, errlen, "body must be one JSON object with exactly one of "
		    "handle_id, sandbox, credential, key");
		return -1;
	}
	json_object_foreach(*root, key, v) {
		for (size_t i = 0; i < SG_ARRAY_LEN(admin_revoke_keys); i++) {
			if (strcmp(key, admin_revoke_keys[i][0]) != 0)
				continue;
			if (!json_is_string(v)) {
				snprintf(err, errlen, "%s: must be a string", key);
				return -1;
			}
			*value = json_string_value(v);
			return revoke_value_valid(admin_revoke_keys[i][1], *value, err,
			    errlen) < 0 ? -1 : (int)i;
		}
	}
	snprintf(err, errlen, "unknown field; use handle_id, sandbox, credential or key");
	return -1;
}

static void
admin_revoke_audit(struct evhttp_request *req, int kind, const char *value)
{
	audit_event_t ev = {.event = "revoked", .status = 200};
	char detail[300];

	switch (kind) {
	case 0: ev.handle_id = value; break;
	case 1: ev.sandbox = value; break;
	case 2: ev.credential = value; break;
	default:
		snprintf(detail, sizeof(detail), "key %s", value);
		ev.detail = detail;
		break;
	}
	admin_audit(req, &ev);
}

/* Apply the new file at once rather than at the next poll of the watcher. */
static void
admin_revoke_publish(const char *path)
{
	char err[512];
	revoke_set_t *rs = revoke_load(path, err, sizeof(err));

	if (rs == NULL)
		log_warn("revocations written but not reloaded: %s", err);
	else
		revoke_publish(rs);
}

static void
admin_revoke(admin_t *a, struct evhttp_request *req)
{
	char err[512];
	const char *value = NULL;
	json_t *root = NULL;
	int kind, rc;

	if (a->revocations_file == NULL) {
		admin_error(req, 409, "revocations_unconfigured", "the policy names no "
		    "revocations.file");
		return;
	}
	if ((kind = admin_revoke_parse(req, &root, &value, err, sizeof(err))) < 0) {
		json_decref(root);
		admin_error(req, 400, "bad_request", err);
		return;
	}
	rc = revoke_add(a->revocations_file, admin_revoke_keys[kind][1], value, util_now_s(),
	    err, sizeof(err));
	if (rc < 0) {
		json_decref(root);
		admin_error(req, 500, "revoke_failed", err);
		return;
	}
	if (rc == 0)
		admin_revoke_publish(a->revocations_file);
	admin_revoke_audit(req, kind, value);
	admin_json(req, 200, json_pack("{s:{s:s}, s:b}", "revoked", admin_revoke_keys[kind][0],
	    value, "changed", rc == 0));
	json_decref(root);
}

/* --- registered sandboxes ----------------------------------------------------------- */

#define ADMIN_SANDBOXES		"/v1/sandboxes"

static void
admin_registry_error(struct evhttp_request *req, const registry_result_t *res)
{
	admin_error(req, res->status, res->code, res->message);
}

/* Entry e as a JSON object (reference is the caller's), or NULL. */
static json_t *
admin_entry_json(const registry_entry_t *e)
{
	char *txt = registry_entry_json(e);
	json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;

	free(txt);
	return o;
}

static void
admin_sandbox_list(struct evhttp_request *req)
{
	registry_snapshot_t *s = registry_acquire();
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < registry_count(s); i++)
		json_array_append_new(a, admin_entry_json(registry_at(s, i)));
	admin_json(req, 200, json_pack("{s:o, s:I}", "sandboxes", a, "generation",
	    (json_int_t)registry_generation(s)));
	registry_unref(s);
}

static void
admin_sandbox_get(struct evhttp_request *req, const char *id)
{
	registry_snapshot_t *s = registry_acquire();
	const registry_entry_t *e = registry_find(s, id);
	char msg[128];

	if (e == NULL) {
		snprintf(msg, sizeof(msg), "no registered sandbox %.64s", id);
		admin_error(req, 404, "not_found", msg);
	} else {
		admin_json(req, 200, admin_entry_json(e));
	}
	registry_unref(s);
}

static void
admin_sandbox_audit(struct evhttp_request *req, const char *what, const char *id, int status)
{
	admin_audit(req, &(audit_event_t){.event = what, .sandbox = id, .status = status});
}

/* Answer a successful put/fork with the entry as stored. */
static void
admin_sandbox_answer(struct evhttp_request *req, const char *id, const registry_result_t *res)
{
	registry_snapshot_t *s = registry_acquire();
	const registry_entry_t *e = registry_find(s, id);
	json_t *o = e ? admin_entry_json(e) : json_object();

	if (o != NULL)
		json_object_set_new(o, "created", json_boolean(res->created));
	admin_json(req, res->status, o);
	registry_unref(s);
}

static void
admin_sandbox_put(registry_t *r, struct evhttp_request *req, const char *id)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	policy_t *p = policy_acquire();
	registry_spec_t spec;
	registry_result_t res;

	if (p == NULL) {
		admin_error(req, 503, "no_policy", "no policy loaded");
		return;
	}
	if (registry_spec_parse(id, (const char *)evbuffer_pullup(in, -1), len, util_now_s(),
	    &spec, &res) < 0 ||
	    registry_put(r, p, &spec, util_now_s(), &res) < 0) {
		admin_registry_error(req, &res);
	} else {
		if (res.changed)
			admin_sandbox_audit(req, "sandbox_registered", id, res.status);
		admin_sandbox_answer(req, id, &res);
	}
	registry_spec_free(&spec);
	policy_unref(p);
}

static void
admin_sandbox_delete(registry_t *r, struct evhttp_request *req, const char *id)
{
	registry_result_t res;

	if (registry_delete(r, id, util_now_s(), &res) < 0) {
		admin_registry_error(req, &res);
		return;
	}
	admin_sandbox_audit(req, "sandbox_deleted", id, 200);
	admin_json(req, 200, json_pack("{s:s, s:b, s:I}", "deleted", id, "revoked", 1,
	    "generation", (json_int_t)res.generation));
}

static void
admin_sandbox_fork(registry_t *r, struct evhttp_request *req, const char *parent)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	registry_fork_spec_t spec;
	policy_t *p = policy_acquire();
	registry_result_t res;
	int64_t now = util_now_s();
	char detail[96];

	if (p == NULL) {
		admin_error(req, 503, "no_policy", "no policy loaded");
		return;
	}
	if (registry_fork_parse((const char *)evbuffer_pullup(in, -1), len, now, &spec,
	    &res) < 0 || registry_fork(r, p, parent, &spec, now, &res) < 0) {
		admin_registry_error(req, &res);
	} else {
		snprintf(detail, sizeof(detail), "parent=%s", parent);
		admin_audit(req, &(audit_event_t){.event = "sandbox_forked", .sandbox = spec.id,
		    .origin_sandbox = parent, .status = res.status, .detail = detail});
		admin_sandbox_answer(req, spec.id, &res);
	}
	registry_fork_spec_free(&spec);
	policy_unref(p);
}

/* PUT /v1/sandboxes/ID/suspend | /resume: hibernation hooks. */
static void
admin_sandbox_suspend(admin_t *a, registry_t *r, struct evhttp_request *req,
    const char *id, bool suspend)
{
	registry_result_t res;

	if (registry_suspend(r, id, suspend, util_now_s(), &res) < 0) {
		admin_registry_error(req, &res);
		return;
	}
	if (res.changed) {
		if (suspend)
			STATS_INC(sandbox_suspends);
		else
			STATS_INC(sandbox_resumes);
		admin_sandbox_audit(req, suspend ? "sandbox_suspended" : "sandbox_resumed", id,
		    200);
		/* the proxy closes the suspended sandbox's idle connections now */
		if (suspend && a->hooks.sandboxes_changed != NULL)
			a->hooks.sandboxes_changed(a->hooks.arg);
	}
	admin_sandbox_answer(req, id, &res);
}

/* /v1/sandboxes/ID/ACTION */
static void
admin_sandbox_action(admin_t *a, registry_t *r, struct evhttp_request *req,
    const char *id, const char *action, enum evhttp_cmd_type m)
{
	const char *allow = strcmp(action, "/fork") == 0 ? "POST" : "PUT";

	if (strcmp(action, "/fork") != 0 && strcmp(action, "/suspend") != 0 &&
	    strcmp(action, "/resume") != 0) {
		admin_error(req, 404, "not_found", "no such admin endpoint");
	} else if (m != (strcmp(allow, "POST") == 0 ? EVHTTP_REQ_POST : EVHTTP_REQ_PUT)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
		admin_error(req, 405, "method_not_allowed", "method not allowed here");
	} else if (strcmp(action, "/fork") == 0) {
		admin_sandbox_fork(r, req, id);
	} else {
		admin_sandbox_suspend(a, r, req, id, strcmp(action, "/suspend") == 0);
	}
}

/* /v1/sandboxes[/ID[/fork|/suspend|/resume]]: every method needs the token (labels are
 * the host's). */
static void
admin_sandboxes(admin_t *a, struct evhttp_request *req, const char *path,
    enum evhttp_cmd_type m)
{
	const char *rest = path + strlen(ADMIN_SANDBOXES);
	registry_t *r = registry_global();
	char id[REGISTRY_ID_MAX + 1];
	const char *slash;
	size_t idlen;

	if (!admin_authorized(a, req))
		return;
	if (r == NULL) {
		admin_error(req, 503, "registry_unavailable", "the sandbox registry is not open");
		return;
	}
	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		if (m == EVHTTP_REQ_GET)
			admin_sandbox_list(req);
		else {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
			    "GET, HEAD");
			admin_error(req, 405, "method_not_allowed", "method not allowed here");
		}
		return;
	}
	rest++;
	slash = strchr(rest, '/');
	idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (idlen == 0 || idlen > REGISTRY_ID_MAX) {
		admin_error(req, 400, "bad_request", "sandbox id must be [A-Za-z0-9_.-], 1 to 64 "
		    "characters");
		return;
	}
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	if (!registry_id_valid(id)) {
		admin_error(req, 400, "bad_request", "sandbox id must be [A-Za-z0-9_.-], 1 to 64 "
		    "characters");
		return;
	}
	if (slash != NULL) {
		admin_sandbox_action(a, r, req, id, slash, m);
		return;
	}
	switch (m) {
	case EVHTTP_REQ_GET: admin_sandbox_get(req, id); break;
	case EVHTTP_REQ_PUT: admin_sandbox_put(r, req, id); break;
	case EVHTTP_REQ_DELETE: admin_sandbox_delete(r, req, id); break;
	default:
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		    "GET, HEAD, PUT, DELETE");
		admin_error(req, 405, "method_not_allowed", "method not allowed here");
	}
}

/* --- routing ----------------------------------------------------------------------- */

struct admin_route {
	const char *path;
	enum evhttp_cmd_type method;	/* GET routes answer HEAD too */
	bool token;
	void (*fn)(admin_t *, struct evhttp_request *);
};

static const struct admin_route admin_routes[] = {
	{"/healthz", EVHTTP_REQ_GET, false, admin_healthz},
	{"/readyz", EVHTTP_REQ_GET, false, admin_readyz},
	{"/metrics", EVHTTP_REQ_GET, false, admin_metrics},
	{"/v1/policy", EVHTTP_REQ_GET, true, admin_policy},
	{"/v1/reload", EVHTTP_REQ_POST, true, admin_reload},
	{"/v1/revoke", EVHTTP_REQ_POST, true, admin_revoke},
};

static void
admin_cb(struct evhttp_request *req, void *arg)
{
	admin_t *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	if (m == EVHTTP_REQ_HEAD)
		m = EVHTTP_REQ_GET;
	if (path != NULL && strncmp(path, ADMIN_SANDBOXES, strlen(ADMIN_SANDBOXES)) == 0 &&
	    (path[strlen(ADMIN_SANDBOXES)] == '\0' || path[strlen(ADMIN_SANDBOXES)] == '/')) {
		admin_sandboxes(a, req, path, m);
		return;
	}
	for (size_t i = 0; path != NULL && i < SG_ARRAY_LEN(admin_routes); i++) {
		const struct admin_route *r = &admin_routes[i];

		if (strcmp(path, r->path) != 0)
			continue;
		if (m != r->method) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
			    r->method == EVHTTP_REQ_GET ? "GET, HEAD" : "POST");
			admin_error(req, 405, "method_not_allowed", "method not allowed here");
		} else if (!r->token || admin_authorized(a, req)) {
			r->fn(a, req);
		}
		return;
	}
	admin_error(req, 404, "not_found", "no such admin endpoint");
}

/* --- lifecycle --------------------------------------------------------------------- */

static int
admin_bind(admin_t *a, const char *listen, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct evhttp_bound_socket *bs;
	char host[128];
	unsigned port = 0;
	int n;

	if (proxy_parse_listen(listen, &ss, &sl) < 0) {
		snprintf(err, errlen, "bad admin listen address %s", listen);
		return -1;
	}
	/* evhttp wants host and port apart; proxy_parse_listen vetted the form */
	n = listen[0] == '[' ? sscanf(listen, "[%127[^]]]:%u", host, &port) :
	    sscanf(listen, "%127[^:]:%u", host, &port);
	bs = n == 2 ? evhttp_bind_socket_with_handle(a->http, host, (uint16_t)port) : NULL;
	if (bs == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
		return -1;
	}
	proxy_format_sockname(evhttp_bound_socket_get_fd(bs), a->bound, sizeof(a->bound));
	return 0;
}

static int
admin_set_files(admin_t *a, const char *token_file, const char *revocations_file)
{
	char *t = token_file ? strdup(token_file) : NULL;
	char *r = revocations_file ? strdup(revocations_file) : NULL;

	if ((token_file && t == NULL) || (revocations_file && r == NULL)) {
		free(t);
		free(r);
		return -1;
	}
	free(a->token_file);
	free(a->revocations_file);
	a->token_file = t;
	a->revocations_file = r;
	return 0;
}

admin_t *
admin_new(struct event_base *base, const char *listen, const admin_hooks_t *hooks,
    char *err, size_t errlen)
{
	admin_t *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "admin: out of memory");
		free(a);
		return NULL;
	}
	if (hooks != NULL)
		a->hooks = *hooks;
	if (admin_set_files(a, a->hooks.token_file, a->hooks.revocations_file) < 0) {
		snprintf(err, errlen, "admin: out of memory");
		admin_free(a);
		return NULL;
	}
	a->hooks.token_file = a->hooks.revocations_file = NULL;	/* use a's copies */
	evhttp_set_gencb(a->http, admin_cb, a);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_max_headers_size(a->http, SG_MAX_HEADER_BYTES);
	evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
	evhttp_set_timeout(a->http, SG_HEADER_TIMEOUT_S);
	if (admin_token_load(a, err, errlen) < 0 || admin_bind(a, listen, err, errlen) < 0) {
		admin_free(a);
		return NULL;
	}
	return a;
}

const char *
admin_bound(const admin_t *a)
{
	return a->bound;
}

int
admin_refresh(admin_t *a, char *err, size_t errlen)
{
	policy_t *p = policy_acquire();
	int rc = 0;

	if (p != NULL) {
		rc = admin_set_files(a, p->admin_token_file ? p->admin_token_file :
		    a->token_file, p->revocations_file);
		policy_unref(p);
	}
	if (rc < 0) {
		snprintf(err, errlen, "admin: out of memory");
		return -1;
	}
	return admin_token_load(a, err, errlen);
}

void
admin_free(admin_t *a)
{
	if (a == NULL)
		return;
	if (a->http != NULL)
		evhttp_free(a->http);
	secmem_guarded_free(a->token_hash);
	free(a->token_file);
	free(a->revocations_file);
	free(a);
}
