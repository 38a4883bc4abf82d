/*
 * conn_body.c — a request body: streamed upstream re-framed (handles rewritten to
 * secrets by the plan's body scrubber, or the leak tripwire watching for handles), or
 * held whole (REQ_HOLDING) for the plan to finish on it (swap_finish_body: body
 * handles, rewrite, signatures) before the head leaves. A git push through a credential
 * with git.push is held until its commands are decided (gitpush.h): allowed, what is
 * held goes after the head and the rest streams; refused, the rest is read and
 * dropped and the client gets git's report-status with the reasons.
 */

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "awschunk.h"
#include "awssign.h"
#include "conn_int.h"
#include "defaults.h"
#include "gitpush.h"
#include "http.h"
#include "leak.h"
#include "log.h"
#include "plan.h"
#include "scrub.h"
#include "secmem.h"
#include "sigv4.h"
#include "stats.h"
#include "swap.h"
#include "util.h"

static void conn_body_failed(conn_t *c);
static enum conn_flow conn_body_held(conn_t *c);
static enum conn_flow conn_git_held(conn_t *c);
static void conn_git_refuse(conn_t *c);
static void conn_git_emit(void *arg, const void *data, size_t len);
static int conn_req_stream(conn_t *c, const char *at, size_t len);

/* Drop the body state of a request; a held body may carry secrets: zero it. */
void
conn_body_reset(conn_t *c)
{
	if (c->req.held) {
		size_t n = evbuffer_get_length(c->req.held);
		unsigned char *p = n ? evbuffer_pullup(c->req.held, -1) : NULL;

		if (p)
			sodium_memzero(p, n);
		evbuffer_free(c->req.held);
		c->req.held = NULL;
	}
	scrub_free(c->req.rewrite);
	c->req.rewrite = NULL;
	awschunk_free(c->req.chunks);
	c->req.chunks = NULL;
	gitpush_free(c->req.git);
	c->req.git = NULL;
	c->req.git_emit_rc = 0;
	c->req.chunks_err = 0;
	c->req.held_whole = c->req.leak_on = false;
	c->req.seen = 0;
	c->req.err = 0;
}

/* An AWS upload streamed in signed chunks: each chunk's signature redone (awschunk.h). */
static int
conn_body_chunks(conn_t *c)
{
	const awssign_t *st = &c->rq->plan.aws;
	enum awschunk_mode mode;
	char scope[SIGV4_SCOPE_MAX];

	if (!st->set || (st->body != AWSSIGN_BODY_CHUNKS &&
	    st->body != AWSSIGN_BODY_UNSIGNED_TRAILER))
		return 0;
	if (c->req.rewrite != NULL || awschunk_mode_parse(st->payload_hash,
	    strlen(st->payload_hash), &mode) < 0)
		return -1;
	sigv4_scope(&st->auth, scope);
	c->req.chunks = awschunk_new(mode, st->key_in, st->key_out, st->seed_in, st->seed_out,
	    st->amz_date, scope);
	return c->req.chunks != NULL ? 0 : -1;
}

/* Streamed body work for this request: replacement rules or the leak tripwire, and an
 * AWS upload's chunk signatures. */
int
conn_body_prepare(conn_t *c)
{
	if (plan_body_scrubber(&c->rq->plan, &c->req.rewrite) < 0 || conn_body_chunks(c) < 0)
		return -1;
	if (c->req.rewrite == NULL) {
		c->req.leak_on = true;
		leak_stream_init(&c->rq->leak);
	}
	return 0;
}

/* An allowed git push: the bytes held while its commands were decided go first, through
 * the same streaming work as the rest (leak scan or rewrite, framing). */
static int
conn_body_send_held_part(conn_t *c)
{
	size_t n = evbuffer_get_length(c->req.held);
	const char *p = n ? (const char *)evbuffer_pullup(c->req.held, -1) : "";
	int rc;

	if (c->req.git != NULL) {
		gitpush_release(c->req.git, p, n, conn_git_emit, c);
		rc = c->req.git_emit_rc;
	} else
		rc = n ? conn_req_stream(c, p, n) : 0;
	evbuffer_free(c->req.held);
	c->req.held = NULL;
	if (rc < 0 || c->req.err) {
		conn_body_failed(c);
		return -1;
	}
	return 0;
}

/* After the head: the held body in one piece, or the body streaming as it comes. */
void
conn_send_request_body(conn_t *c)
{
	struct evbuffer *out = bufferevent_get_output(c->ubev);

	if (c->req.held_whole) {
		size_t n = evbuffer_get_length(c->req.held);

		if (n && conn_add_secret(out, (char *)evbuffer_pullup(c->req.held, -1), n) < 0) {
			conn_fail(c, 503, "resource_exhausted", "out of memory");
			return;
		}
		conn_body_reset(c);
		conn_req_phase(c, REQ_SENT);
	} else
		conn_req_phase(c, c->req.head.no_body ? REQ_SENT : REQ_STREAMING);
	if (c->req.held != NULL && conn_body_send_held_part(c) < 0)
		return;		/* answered */
	if (c->req.phase == REQ_STREAMING) {
		bufferevent_enable(c->cbev, EV_READ);
		if (conn_relay_request_body(c) == FLOW_STOP)
			return;		/* c may be gone */
	}
	if (c->req.phase == REQ_SENT)
		bufferevent_disable(c->cbev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
		conn_up_read_cb(c->ubev, c);
}

/* Body bytes toward the upstream, framed; replaced bytes carry secrets. */
static void
conn_emit_req(void *arg, const void *data, size_t len)
{
	conn_t *c = arg;

	if (conn_add_body(bufferevent_get_output(c->ubev), data, len, c->req.chunked,
	    c->req.rewrite != NULL) < 0)
		c->req.err = 503;	/* conn_body_failed answers it */
}

/* Body bytes held: all of a body held whole, or a git push's until its commands are
 * decided (a refused push's are dropped). */
static int
conn_req_hold(conn_t *c, const char *at, size_t len)
{
	if (c->req.git != NULL) {
		enum gitpush_verdict v = gitpush_feed(c->req.git, at, len);

		if (v == GITPUSH_BAD)
			return -1;	/* conn_body_failed answers it */
		if (v == GITPUSH_REFUSE)
			return 0;	/* read and dropped: nothing goes upstream */
	}
	if (evbuffer_get_length(c->req.held) + len > SG_BODY_BUFFER_MAX) {
		c->req.err = 413;
		return -1;
	}
	return evbuffer_add(c->req.held, at, len) < 0 ? -1 : 0;
}

/* Body bytes toward the upstream: leak scan, rewrite or chunk re-signing, framing. */
static int
conn_req_stream(conn_t *c, const char *at, size_t len)
{
	leak_hit_t hit;

	if (c->req.leak_on && c->req.seen < SG_LEAK_SCAN_BODY_MAX) {
		c->req.seen += len;
		if (leak_stream_feed(&c->rq->leak, at, len, &hit)) {
			c->req.err = 403;
			c->req.leak_encoding = hit.encoding;
			return -1;
		}
	}
	if (c->req.rewrite)
		return scrub_feed(c->req.rewrite, at, len, conn_emit_req, c) < 0 ||
		    c->req.err ? -1 : 0;
	if (c->req.chunks) {
		c->req.chunks_err = awschunk_feed(c->req.chunks, at, len, conn_emit_req, c);
		return c->req.chunks_err != AWSCHUNK_OK || c->req.err ? -1 : 0;
	}
	conn_emit_req(c, at, len);
	return 0;
}

/* Bytes a git push's gitpush_release lets go (all but a pack's checksum until the
 * push is proven): the ordinary streaming work. */
static void
conn_git_emit(void *arg, const void *data, size_t len)
{
	conn_t *c = arg;

	if (c->req.git_emit_rc == 0)
		c->req.git_emit_rc = conn_req_stream(c, data, len);
}

static int
conn_req_on_body(http_parser *p, const char *at, size_t len)
{
	conn_t *c = p->data;

	c->acct.bytes_up += len;
	if (c->req.phase == REQ_HOLDING)
		return conn_req_hold(c, at, len);
	if (c->req.git == NULL)
		return conn_req_stream(c, at, len);
	gitpush_feed(c->req.git, at, len);
	gitpush_release(c->req.git, at, len, conn_git_emit, c);
	return c->req.git_emit_rc < 0 || c->req.err ? -1 : 0;
}

/* The end of a streamed git push: proven, the held-back checksum follows; refused, it
 * never does (conn_body_failed answers). */
static int
conn_git_stream_end(conn_t *c)
{
	if (gitpush_finish(c->req.git) != GITPUSH_ALLOW)
		return -1;
	gitpush_release_end(c->req.git, conn_git_emit, c);
	return c->req.git_emit_rc < 0 || c->req.err ? -1 : 0;
}

static int
conn_req_on_complete(http_parser *p)
{
	conn_t *c = p->data;

	http_parser_pause(p, 1);
	if (c->req.phase == REQ_HOLDING) {
		c->req.held_whole = true;
		return 0;
	}
	if (c->req.git != NULL && conn_git_stream_end(c) < 0)
		return -1;
	if (c->req.rewrite && scrub_finish(c->req.rewrite, conn_emit_req, c) < 0)
		return -1;
	if (c->req.chunks && (c->req.chunks_err = awschunk_finish(c->req.chunks)) !=
	    AWSCHUNK_OK)
		return -1;
	if (c->req.chunked)
		evbuffer_add(bufferevent_get_output(c->ubev), "0\r\n\r\n", 5);
	conn_req_phase(c, REQ_SENT);
	return 0;
}

static const http_parser_settings conn_req_body_settings = {
	.on_body = conn_req_on_body,
	.on_message_complete = conn_req_on_complete,
};

/* An AWS upload's chunk stream refused: a bad signature (replayed, reordered or altered
 * chunk) or bad framing. What went upstream so far is cut short. */
static void
conn_body_chunks_failed(conn_t *c)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "aws-chunked upload: %s", awschunk_error(c->req.chunks));
	if (c->req.chunks_err == AWSCHUNK_E_SIGNATURE)
		conn_fail(c, 403, "signature_mismatch", msg);
	else if (c->req.chunks_err == AWSCHUNK_E_NOMEM)
		conn_fail(c, 503, "resource_exhausted", msg);
	else
		conn_fail(c, 400, "bad_request", msg);
}

static void
conn_body_failed(conn_t *c)
{
	char msg[256];

	if (c->req.chunks_err != 0) {
		conn_body_chunks_failed(c);
		return;
	}
	if (c->req.git != NULL && gitpush_feed(c->req.git, "", 0) == GITPUSH_REFUSE) {
		conn_git_refuse(c);	/* proven no fast-forward: the checksum never went */
		return;
	}
	if (c->req.git != NULL && gitpush_feed(c->req.git, "", 0) == GITPUSH_BAD) {
		STATS_INC(errors_bad_request);
		snprintf(msg, sizeof(msg), "git push: %s", gitpush_error(c->req.git));
		conn_fail(c, 400, "bad_request", msg);
		return;
	}
	if (c->req.err == 503) {
		conn_fail(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	if (c->req.err == 413) {
		snprintf(msg, sizeof(msg), "this request's body must be held whole (hmac "
		    "signature or a handle in the body) and is larger than %d bytes",
		    SG_BODY_BUFFER_MAX);
		conn_fail(c, 413, "body_too_large", msg);
		return;
	}
	if (c->req.err == 403) {
		log_warn("%s: possible exfiltration: handle (%s) in a request body toward %s:%u",
		    c->peer, c->req.leak_encoding, c->up.host, c->up.port);
		snprintf(msg, sizeof(msg), "a handle (%s) in the request body; no credential "
		    "lets it travel in this body", c->req.leak_encoding);
		c->rq->plan.exfiltration = true;
		conn_fail(c, 403, "handle_in_body", msg);
		return;
	}
	STATS_INC(errors_bad_request);
	conn_fail(c, 400, "bad_request", http_errno_description(HTTP_PARSER_ERRNO(&c->req.parser)));
}

/* Body bytes the client sent: held, or relayed upstream. */
enum conn_flow
conn_relay_request_body(conn_t *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);

	if (c->ubev == NULL || !conn_req_body_pending(c))
		return FLOW_GO_ON;
	c->req.parser.data = c;
	if (conn_feed(&c->req.parser, &conn_req_body_settings, in) < 0) {
		conn_body_failed(c);
		return FLOW_STOP;
	}
	if (c->req.phase == REQ_HOLDING && c->req.git != NULL)
		return conn_git_held(c);
	if (c->req.phase == REQ_HOLDING)
		return c->req.held_whole ? conn_body_held(c) : FLOW_GO_ON;
	if (c->req.phase == REQ_SENT) {
		bufferevent_disable(c->cbev, EV_READ);	/* next request waits its turn */
		return FLOW_GO_ON;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->ubev)) > SG_RELAY_HIGH_WATER) {
		bufferevent_disable(c->cbev, EV_READ);
		bufferevent_setwatermark(c->ubev, EV_WRITE, SG_RELAY_LOW_WATER, 0);
	}
	return FLOW_GO_ON;
}

/* A body the plan must see whole (signing, handles in it) is collected first. */
void
conn_body_collect_start(conn_t *c)
{
	conn_set_state(c, ST_RELAY);
	conn_req_phase(c, REQ_HOLDING);
	conn_arm_timer(c, c->pol->limits.upstream_timeout_ms);	/* the whole body, or 408 */
	c->req.held = evbuffer_new();
	if (c->req.held == NULL) {
		conn_fail(c, 500, "internal_error", "out of memory");
		return;
	}
	bufferevent_enable(c->cbev, EV_READ);
	conn_relay_request_body(c);
}

/* The held body becomes the rewritten one (wipe memory, freed with the buffer). */
static int
conn_body_replace(conn_t *c, char *body, size_t len)
{
	struct evbuffer *nb = evbuffer_new();

	if (nb == NULL || (len > 0 && evbuffer_add_reference(nb, body, len,
	    conn_secret_cleanup, NULL) < 0)) {
		if (nb)
			evbuffer_free(nb);
		secmem_wipe_free(body);
		return -1;
	}
	if (len == 0)
		secmem_wipe_free(body);
	conn_body_reset(c);		/* zeroes the old one */
	c->req.held = nb;
	c->req.held_whole = true;
	return 0;
}

/* The whole body is here: the plan finishes on it (swap_finish_body), the head goes. */
static enum conn_flow
conn_body_held(conn_t *c)
{
	size_t len = evbuffer_get_length(c->req.held), outlen;
	const char *body = len ? (const char *)evbuffer_pullup(c->req.held, -1) : "";
	swap_env_t env;
	swap_req_t req;
	char *out;
	int rc;

	conn_swap_env(c, &env, &req);
	rc = swap_finish_body(&env, &req, c->up.tls, &c->rq->plan, body, len, &out, &outlen);
	if (conn_swap_finish(c, rc) < 0) {
		secmem_wipe_free(out);
		return FLOW_STOP;
	}
	if (out != NULL && conn_body_replace(c, out, outlen) < 0) {
		conn_fail(c, 503, "resource_exhausted", "out of memory while rewriting the body");
		return FLOW_STOP;
	}
	evtimer_del(c->timer);
	bufferevent_disable(c->cbev, EV_READ);
	conn_send_request_head(c);
	return FLOW_STOP;	/* the head and body went out, or the connection was answered */
}

void
conn_up_write_cb(struct bufferevent *bev, void *arg)
{
	conn_t *c = arg;

	if (c->st == ST_CLOSING) {
		conn_closing_check(c);
		return;
	}
	if (c->st != ST_RELAY && c->st != ST_SPLICE && c->st != ST_WEBSOCKET)
		return;
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (c->st == ST_SPLICE || c->st == ST_WEBSOCKET) {
		bufferevent_enable(c->cbev, EV_READ);
		return;
	}
	if (conn_req_body_pending(c)) {
		bufferevent_enable(c->cbev, EV_READ);
		conn_relay_request_body(c);
	}
}

/* --- git push (gitpush.h) ----------------------------------------------------------- */

/* The credential of this request whose git.push rules apply, or NULL. */
static const policy_credential_t *
conn_git_cred(const conn_t *c)
{
	const http_head_t *h = &c->req.head;

	if (h->method != HTTP_POST || c->req.target == NULL ||
	    !gitpush_is_receive_pack(c->req.target))
		return NULL;
	for (size_t i = 0; i < c->rq->plan.nscrub; i++)
		if (c->rq->plan.scrub[i].cred->git_push != NULL)
			return c->rq->plan.scrub[i].cred;
	return NULL;
}

/* A push to a credential with git.push: hold the body until its commands are decided.
 * true when it started (or answered: a coded body is refused). */
bool
conn_git_start(conn_t *c)
{
	const policy_credential_t *cr = conn_git_cred(c);
	const http_field_t *enc;

	if (cr == NULL)
		return false;
	enc = http_head_get(&c->req.head, "Content-Encoding");
	if (enc != NULL && strcasecmp(enc->value, "identity") != 0) {
		conn_fail(c, 415, "unsupported_encoding", "git push: a receive-pack body with "
		    "a Content-Encoding is not inspected (git does not compress pushes)");
		return true;
	}
	c->req.git_rules = (gitpush_rules_t){cr->git_push->refs.v, cr->git_push->refs.n,
	    c->rq->plan.git_refs.v, c->rq->plan.git_refs.n, cr->git_push->allow_delete,
	    cr->git_push->allow_force};
	if ((c->req.git = gitpush_new(&c->req.git_rules)) == NULL) {
		conn_fail(c, 503, "resource_exhausted", "out of memory");
		return true;
	}
	conn_body_collect_start(c);
	return true;
}

/* A refused push: git's report-status with the reasons (HTTP 200: git prints them). */
static void
conn_git_refuse(conn_t *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/x-git-receive-pack-result\r\nCache-Control: no-cache\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n\r\n";
	size_t len;
	char *body;
	struct evbuffer *out;

	if (c->res.phase != RES_WAITING) {	/* the server answered a cut-short push */
		conn_audit(c, 502, "git_push_refused");
		conn_close(c, "git push refused after the upstream answered");
		return;
	}
	body = gitpush_answer(c->req.git, &len);
	if (body == NULL || (out = evbuffer_new()) == NULL) {
		free(body);
		conn_fail(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	gitpush_summary(c->req.git, c->rq->plan.detail, sizeof(c->rq->plan.detail));
	STATS_INC(git_push_refused);
	log_warn("%s: git push toward %s:%u refused: %s", c->peer, c->up.host, c->up.port,
	    c->rq->plan.detail);
	conn_audit(c, 200, "git_push_refused");
	evbuffer_add_printf(out, head, len);
	evbuffer_add(out, body, len);
	free(body);
	conn_answer_close(c, evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(out);
}

/* After body bytes of a held push: decided yet? */
static enum conn_flow
conn_git_held(conn_t *c)
{
	enum gitpush_verdict v = c->req.held_whole ? gitpush_finish(c->req.git) :
	    gitpush_feed(c->req.git, "", 0);

	if (v == GITPUSH_BAD) {
		conn_body_failed(c);
		return FLOW_STOP;
	}
	if (v == GITPUSH_REFUSE && c->req.held_whole) {
		conn_git_refuse(c);	/* the whole request read: the answer is safe to send */
		return FLOW_STOP;
	}
	if (v != GITPUSH_ALLOW && v != GITPUSH_PACK)
		return FLOW_GO_ON;
	if (c->req.held_whole)
		return conn_body_held(c);
	if (c->rq->plan.buffer_body)
		return FLOW_GO_ON;	/* signed or with handles in it: held whole */
	evtimer_del(c->timer);
	conn_send_request_head(c);	/* the held part, then the rest streams */
	return FLOW_STOP;
}
