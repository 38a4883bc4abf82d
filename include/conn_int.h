/*
 * conn_int.h — what the conn_*.c files share about one proxy client connection. Not a
 * public interface: conn.h is.
 *
 *   accept → HEAD ─┬─ CONNECT ─ egress_decide ─┬─ deny: 403
 *                  │   (conn_connect.c)        ├─ tunnel: resolve → dial → 200 → SPLICE
 *                  │                           └─ intercept: resolve → 200 → TLS_ACCEPT → HEAD
 *                  │
 *   accept (transparent listener) → PEEK: ClientHello SNI, original destination
 *     (conn_transparent.c) → as CONNECT SNI:port with no 200; the SNI's answers must
 *     hold the original destination IP (else 403 destination_mismatch inside TLS);
 *     no SNI: tunnel to the original destination if its IP passes egress, else alert
 *                  └─ request (absolute-form, or inside an intercepted CONNECT)
 *                       conn_request.c: policy, checks, plan (swap; an assume_role
 *                         credential with no cached identity waits in IDENTITY for
 *                         STS) → upstream (pool or resolve/dial) → head as the plan edits it
 *                       conn_body.c: body streamed (REQ_STREAMING), or held whole first
 *                         (REQ_HOLDING) and finished by the plan → REQ_SENT
 *                       conn_response.c: 1xx, final head (RES_BODY), decoded+scrubbed
 *                         body, trailers → RES_DONE → keep-alive: HEAD again
 *                       conn_ws.c: a 101 to a WebSocket upgrade → WEBSOCKET
 *
 * The connection's state (enum conn_state) says which bufferevent callbacks mean what;
 * the request and response halves of the current exchange each have a phase (enum
 * req_phase, enum res_phase). Each of the three changes in one function (conn_set_state,
 * conn_req_phase, conn_res_phase). Bodies are re-framed (Content-Length kept, chunked
 * re-chunked) so what the upstream sees is exactly what sealgate parsed. Every exit
 * goes through conn_close.
 */
#ifndef SEALGATE_CONN_INT_H
#define SEALGATE_CONN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "awschunk.h"
#include "decode.h"
#include "egress.h"
#include "gitpush.h"
#include "http.h"
#include "leak.h"
#include "plan.h"
#include "policy.h"
#include "resolve.h"
#include "scrub.h"
#include "stscache.h"
#include "mintcache.h"
#include "swap.h"
#include "view.h"
#include "worker.h"
#include "wsrelay.h"

#define CONN_HOST_MAX 256
/* Pool key: who | host | port | tls | credentials (names are at most 64 bytes). */
#define CONN_KEY_MAX (CONN_HOST_MAX + 96 + INJECT_MAX_HANDLES * 66)

enum conn_state {
	ST_HEAD,		/* reading a request head */
	ST_RESOLVING,		/* waiting for egress_resolve */
	ST_IDENTITY,		/* waiting for an AWS identity from STS (assume_role) */
	ST_TLS_ACCEPT,		/* client TLS handshake (intercept) */
	ST_UP_CONNECTING,	/* upstream TCP/TLS connect */
	ST_RELAY,		/* request body and/or response in flight */
	ST_SPLICE,		/* tunnel: bytes both ways */
	ST_WEBSOCKET,		/* after a 101: frames both ways through the relay */
	ST_CLOSING,		/* error answer queued: close once flushed */
	ST_PEEK,		/* transparent: reading the ClientHello, nothing consumed */
};

enum conn_mode { MODE_PROXY, MODE_INTERCEPT, MODE_TUNNEL };

/* What a call that may answer, close or move the connection on tells its caller. */
enum conn_flow {
	FLOW_GO_ON,		/* the connection is where it was: carry on */
	FLOW_STOP,		/* answered, closed, or handed to the next phase: return
				 * without touching c (it may be gone) */
};

/* Request-scoped state an idle connection gives back when it parks. */
struct conn_work {
	plan_t plan;		/* the current request's plan (swap, tokenizer) */
	leak_stream_t leak;		/* handle scan of a streamed request body */
};

/* The request half: where the current request is, and what it carries. */
enum req_phase {
	REQ_NONE,		/* no request: reading a head, or parked */
	REQ_DECIDING,		/* head read: plan, resolve, dial; nothing sent upstream */
	REQ_HOLDING,		/* collecting a body that must be held whole */
	REQ_STREAMING,		/* head sent upstream, the body streaming after it */
	REQ_SENT,		/* all of the request sent */
};

/* The response half. */
enum res_phase {
	RES_WAITING,		/* no final head yet (1xx answers may have passed) */
	RES_BODY,		/* final head written to the client, body relaying */
	RES_DONE,		/* complete */
};

struct conn_req {
	enum req_phase phase;
	http_scan_t scan;
	http_parser parser;
	http_head_t head;
	char *target;			/* origin-form target sent upstream */
	char host[CONN_HOST_MAX];	/* where it goes (for body handles, the audit line) */
	uint16_t port;
	bool chunked;			/* its body re-chunked toward the upstream */
	bool keepalive;			/* the client keeps the connection after it */
	bool websocket;			/* an upgrade to WebSocket */
	bool range_signed;		/* Range relayed on a scrubbed connection (its AWS
					 * signature covers it): the 206 is scrubbed as a slice */
	struct evbuffer *held;		/* a body held whole (REQ_HOLDING) */
	bool held_whole;		/* ... and complete */
	uint8_t id_key[STSCACHE_KEY_LEN];	/* ST_IDENTITY: the cache entry it waits on */
	uint64_t id_seq;		/* ... and the fetch */
	bool mint_wait;			/* ST_IDENTITY waits for a minted token (mint_key,
					 * id_seq), not an AWS identity */
	uint8_t mint_key[MINTCACHE_KEY_LEN];	/* the minted token's cache entry */
	bool mint_retried;		/* sent again once after a 401 to its minted token */
	scrub_t *rewrite;		/* handle/placeholder -> secret in a streamed body */
	awschunk_t *chunks;		/* an AWS streamed upload: chunk signatures redone */
	int chunks_err;			/* an awschunk_rc that stopped the body */
	bool leak_on;			/* scan the streamed body for handles */
	uint64_t seen;			/* body bytes scanned */
	unsigned err;			/* 413 / 403 / 503 found while relaying the body */
	const char *leak_encoding;
	/* a git push through a credential with git.push: the commands decide (gitpush.h)
	 * while the body is held; allowed, the rest streams */
	gitpush_t *git;
	gitpush_rules_t git_rules;	/* borrowed from the policy snapshot */
	int git_emit_rc;		/* the streaming work on bytes gitpush_release let go */
};

struct conn_res {
	enum res_phase phase;
	http_scan_t scan;
	http_parser parser;
	http_head_t head;
	bool chunked_out;		/* re-chunked toward the client */
	bool keepalive;			/* the upstream keeps the connection */
	unsigned ninterim;		/* 1xx answers relayed for this request */
	/* a scrubbed response whose Content-Encoding sealgate decodes (the client gets the
	 * body decoded, the head's coding, digests and strong ETag rewritten) */
	decode_t *dec;			/* NULL: identity, or no scrubbing */
	bool recode;			/* the head is rewritten for a decoded body */
	int dec_err;			/* a decode_rc that cut the body */
	/* trailer fields of a chunked response, collected until its end */
	struct evbuffer *trailers;	/* "name: value\n" lines as received */
	bool trailer_in_value;		/* the last piece was a value */
};

/* The upstream this connection talks to. */
struct conn_up {
	char host[CONN_HOST_MAX];
	uint16_t port;
	bool tls, ready;
	char key[CONN_KEY_MAX];		/* pool key of the upstream connection */
	struct sockaddr_storage addr;	/* the checked address */
	socklen_t addrlen;
};

/* For the audit line and metrics. */
struct conn_acct {
	double t_start, t_sent;		/* monotonic ms: head parsed, head sent upstream */
	double upstream_ms;		/* head sent -> response head */
	uint64_t bytes_up, bytes_down;	/* body bytes each way */
	bool audited;			/* this request's line is written */
};

struct conn {
	worker_t *w;
	policy_t *pol;			/* limits; the request view's policy once a head came */
	view_t view;			/* what requests are decided on (conn_view_refresh) */
	enum conn_state st;
	enum conn_mode mode;
	int cfd;
	bool cfd_owned;			/* false once a bufferevent closes it */
	struct bufferevent *cbev;
	struct bufferevent *ubev;
	char peer[64];
	struct sockaddr_storage peer_ss;
	struct event *timer;
	egress_req_t *dns;

	/* CONNECT authority (intercept/tunnel) */
	char auth_host[CONN_HOST_MAX];
	uint16_t auth_port;
	http_head_t connect_head;	/* the intercepted CONNECT (its Proxy-Tokenizer) */
	bool connect_answered;		/* the CONNECT's 200 is queued (TLS may start) */
	char proxy_token[256];		/* from Proxy-Authorization (CONNECT or request) */

	/* transparent listener (conn_transparent.c): where the sandbox dialled, and a
	 * refusal answered as 403 inside TLS once the client's handshake is done */
	bool transparent;
	struct sockaddr_storage orig_dst;
	const char *refuse_code;	/* static; NULL: none */
	unsigned refuse_status;
	char refuse_msg[CONN_HOST_MAX + 192];

	struct conn_up up;
	struct conn_work *rq;		/* NULL only while parked */
	struct conn_req req;
	struct conn_res res;
	scrub_t *scrub;			/* injected secrets -> handles, for responses */
	struct conn_acct acct;
	bool park_due;			/* idle: the timer parks before it closes */
	bool served;			/* a request head was read (conn_has_served) */

	/* WebSocket after a 101 (a frame's handle refreshes the view first) */
	wsrelay_t *ws;
	secval_t *ws_secret;		/* the rotating value the last frame swap injected:
					 * held until the next swap copied it (conn_ws_swap) */
};

/* conn.c */
void conn_set_state(conn_t *c, enum conn_state st);
void conn_req_phase(conn_t *c, enum req_phase ph);
void conn_res_phase(conn_t *c, enum res_phase ph);
bool conn_req_body_pending(const conn_t *c);
struct timeval conn_tv(uint64_t ms);
void conn_arm_timer(conn_t *c, uint64_t ms);
void conn_fail_ex(conn_t *c, unsigned status, const char *code, const char *msg, const char *extra);
void conn_audit(conn_t *c, unsigned status, const char *code);
void conn_emit_evbuffer(void *arg, const void *data, size_t len);
bool conn_scrubbing(const conn_t *c);
void conn_close_after_flush(conn_t *c, const char *reason);
void conn_closing_check(conn_t *c);
void conn_fail(conn_t *c, unsigned status, const char *code, const char *msg);
void conn_answer_close(conn_t *c, const void *buf, size_t len);
void conn_upstream_release(conn_t *c);
void conn_start_head(conn_t *c);
void conn_set_nodelay(evutil_socket_t fd);
ssize_t conn_scan_head(conn_t *c, http_scan_t *s, struct evbuffer *in);
void conn_client_read_cb(struct bufferevent *bev, void *arg);
void conn_client_write_cb(struct bufferevent *bev, void *arg);
void conn_secret_cleanup(const void *data, size_t len, void *arg);
int conn_add_secret(struct evbuffer *out, const char *s, size_t len);
int conn_add_body(struct evbuffer *out, const void *data, size_t len, bool chunked,
    bool secret);
int conn_move_head(struct evbuffer *head, struct evbuffer *out);
int conn_feed(http_parser *p, const http_parser_settings *s, struct evbuffer *in);
void conn_client_event_cb(struct bufferevent *bev, short what, void *arg);
/* conn_body.c */
void conn_body_reset(conn_t *c);
int conn_body_prepare(conn_t *c);
void conn_send_request_body(conn_t *c);
enum conn_flow conn_relay_request_body(conn_t *c);
void conn_body_collect_start(conn_t *c);
bool conn_git_start(conn_t *c);
void conn_up_write_cb(struct bufferevent *bev, void *arg);
/* conn_response.c */
void conn_trailers_free(conn_t *c);
void conn_up_read_cb(struct bufferevent *bev, void *arg);
bool conn_res_eof(conn_t *c);
/* conn_request.c */
void conn_process_head(conn_t *c);
int conn_view_refresh(conn_t *c);
void conn_swap_env(conn_t *c, swap_env_t *env, swap_req_t *req);
int conn_swap_finish(conn_t *c, int rc);
void conn_send_request_head(conn_t *c);
void conn_request_retry(conn_t *c);
/* conn_connect.c */
void conn_on_connect(conn_t *c);
void conn_tls_accept_start(conn_t *c);
void conn_resolve_authority(conn_t *c, egress_cb cb);
int conn_dial(conn_t *c);
void conn_both_ways(conn_t *c, enum conn_state st);
bool conn_upstream_reuse(conn_t *c, const char *key);
void conn_up_event_cb(struct bufferevent *bev, short what, void *arg);
void conn_tls_accepted(conn_t *c);
/* conn_transparent.c */
void conn_transparent_start(conn_t *c);
void conn_transparent_peek(conn_t *c);
/* conn_ws.c */
void conn_ws_start(conn_t *c);
void conn_ws_read(conn_t *c, bool from_client);

#endif
