/*
 * defaults.h — every limit and default of sealgate in one place, each with its reason.
 * Policy may override those marked (policy: limits.NAME).
 */
#ifndef SEALGATE_DEFAULTS_H
#define SEALGATE_DEFAULTS_H

/* --- HTTP framing ------------------------------------------------------------------ */
/* Longest request/status line: long query strings fit, a flood does not. */
#define SG_MAX_START_LINE        8192
/* Whole header block (policy: limits.max_header_bytes): nginx's large buffer size x2. */
#define SG_MAX_HEADER_BYTES      65536
/* Header fields per message: more is an attack or a bug, never a real client. */
#define SG_MAX_HEADERS           128
/* Back-pressure: stop reading a side whose peer's output is above this... */
#define SG_RELAY_HIGH_WATER      (256 * 1024)
/* ...and resume when it drains below half of it (libevent le-proxy.c). */
#define SG_RELAY_LOW_WATER       (SG_RELAY_HIGH_WATER / 2)

/* --- timeouts (seconds) ------------------------------------------------------------ */
/* Slowloris: the whole request head must arrive within this (policy: limits.header_timeout). */
#define SG_HEADER_TIMEOUT_S      10
/* Idle keep-alive connection, client side (policy: limits.idle_timeout). */
#define SG_IDLE_TIMEOUT_S        60
/* TCP connect to an upstream, then 504 (policy: limits.connect_timeout). */
#define SG_CONNECT_TIMEOUT_S     10
/* TLS handshake with client or upstream (policy: limits.tls_timeout). */
#define SG_TLS_TIMEOUT_S         10
/* Upstream silent mid-response, then 504 (policy: limits.upstream_timeout). */
#define SG_UPSTREAM_TIMEOUT_S    120
/* Interim (1xx) answers relayed per request before the upstream is cut off (502). */
#define SG_MAX_INTERIM           16
/* SIGTERM: in-flight requests may finish this long (policy: limits.drain_timeout). */
#define SG_DRAIN_TIMEOUT_S       10
/* While draining, connections are counted this often to exit as soon as none remain. */
#define SG_DRAIN_POLL_MS         50

/* --- connections ------------------------------------------------------------------- */
/* Open client connections before accept pauses (policy: limits.max_connections). */
#define SG_MAX_CONNECTIONS       16384
/* Accept paused after EMFILE/ENFILE is retried after this many milliseconds. */
#define SG_ACCEPT_RETRY_MS       100
/* Idle upstream connections kept per worker for reuse by later client connections of
 * the same sandbox, host and credential set (pool key). */
#define SG_POOL_PER_WORKER       64
/* An idle pooled upstream connection is closed after this long. */
#define SG_POOL_IDLE_S           30
/* Idle keep-alive client: upstream to the pool, request state freed (limits.park_after). */
#define SG_PARK_MS               2000
/* After parks, heap pages go back to the kernel: this long after the first, if at least
 * SG_TRIM_MIN_PARKED connections parked. */
#define SG_TRIM_DELAY_MS         1000
#define SG_TRIM_MIN_PARKED       64
/* Listen backlog: bursts of sandbox starts. */
#define SG_LISTEN_BACKLOG        1024

/* --- TLS --------------------------------------------------------------------------- */
/* Leaf certificates cached (name -> cert); one ECDSA key is shared, so each is ~1 KiB. */
#define SG_CERTCACHE_SIZE        4096
/* Leaf validity; short so a leaked leaf ages out, backdated for client clock skew. */
#define SG_LEAF_VALID_DAYS       7
#define SG_LEAF_BACKDATE_S       3600
/* CA created by `ca init`: ten years, a dev/sidecar trust anchor. */
#define SG_CA_VALID_DAYS         3650

/* --- handles ----------------------------------------------------------------------- */
/* Handle ttl when a credential sets none. */
#define SG_HANDLE_TTL_DEFAULT_S  3600
/* Longest ttl a policy may give a handle. */
#define SG_HANDLE_TTL_MAX_S      (7 * 24 * 3600)
/* Sandbox-lifetime handles (ttl "sandbox") have no wall-clock expiry of their own; this
 * backstop bounds them when a credential sets no max_ttl (policy: max_ttl). */
#define SG_HANDLE_MAX_TTL_DEFAULT_S (30 * 24 * 3600)
/* Longest max_ttl a policy may set: a quarter, beyond which key rotation should retire
 * a handle anyway. Also how long a deleted sandbox's tombstone is kept. */
#define SG_HANDLE_MAX_TTL_LIMIT_S (90 * 24 * 3600)
/* Clock skew tolerated between minting sidecar and verifying sidecar. */
#define SG_CLOCK_SKEW_S          30
/* Largest handle text: payload + seal overhead, base64url. */
#define SG_HANDLE_MAX_LEN        2048
/* Request body held whole where it must be (hmac signature, handles only in the body);
 * larger bodies get 413. */
#define SG_BODY_BUFFER_MAX       (1024 * 1024)
/* Handles quoted as text (echo_ok_in_body) in one held body: each is unsealed (cached) to
 * learn its credential; a long chat history holds a few, not hundreds. */
#define SG_BODY_QUOTES_MAX       256
/* A body placeholder (policy inject.placeholder, a tokenizer body processor's) is at least
 * this long: the body rewrite is a scrubber, whose needles are SCRUB_MIN_NEEDLE (4) bytes
 * or more, and a shorter one would match ordinary body text. */
#define SG_PLACEHOLDER_MIN       4
/* Streamed request bodies are scanned for handles (raw or encoded) up to this many
 * bytes: a tripwire against exfiltration that keeps large uploads cheap. */
#define SG_LEAK_SCAN_BODY_MAX    (4 * 1024 * 1024)
/* Verified handles cached (hash -> claims): steady state does no X25519 work. Sized for
 * 100,000 live handles per sidecar; the cap bounds its memory (bench: handles100k). */
#define SG_HANDLECACHE_SIZE      131072
/* Rate buckets kept (handle, credential, sandbox); idle full buckets evicted first. */
#define SG_RATELIMIT_BUCKETS     262144
/* Largest sealed tokenizer token accepted (base64 text). */
#define SG_TOKEN_MAX_LEN         16384
/* Failed handles and tokenizer tokens (unseal or authorisation) one source may send
 * before its requests that carry one get 429 too_many_failures (policy:
 * limits.failed_handles, 0 = off): far above an honest sandbox's mistakes (a stale
 * handle retried a few times), far below a brute force (each failure costs an unseal). */
#define SG_FAIL_LIMIT            20
/* ...within this window, which is also how long the whole budget takes to refill
 * (policy: limits.failed_handles_window). */
#define SG_FAIL_WINDOW_S         60

/* Revocations file checked for changes this often (a revoke applies within it). */
#define SG_REVOCATION_POLL_S     1

/* --- fleet mode (cluster.h, the policy's "cluster") ------------------------------- */
/* First reconnect delay after Redis is lost: a restart of Redis goes almost unnoticed. */
#define SG_CLUSTER_BACKOFF_MIN_MS     100
/* The delay doubles up to this: a Redis that stays down costs one connect per 5 s. */
#define SG_CLUSTER_BACKOFF_MAX_MS     5000
/* Connect, AUTH, SUBSCRIBE and the first read not done by then: abandoned, retried. */
#define SG_CLUSTER_CONNECT_TIMEOUT_MS 5000
/* Local revocation changes (and, in fleet mode, the revocations file) are looked for
 * and sent this often: well inside the 1 s a revocation takes to reach every sidecar. */
#define SG_CLUSTER_SYNC_MS            100
/* Keys and channels start with this when the policy names no prefix. */
#define SG_CLUSTER_PREFIX             "sg:"
/* A connected sidecar PINGs this often: a silent Redis (stopped, or a half-open TCP
 * connection the kernel has not given up on) is noticed without waiting for TCP... */
#define SG_CLUSTER_PING_MS            2000
/* ...and counts as lost when a PING goes unanswered this long (Redis answers in well
 * under a millisecond; a blocked Redis is no use to the fleet either). */
#define SG_CLUSTER_PING_TIMEOUT_MS    3000

/* --- fleet-wide rate leases (fleetrate.h) ---------------------------------------- */
/* A lease lives this long; its unused tokens go back to the fleet bucket then, so a
 * sidecar that goes quiet strands at most one lease for at most this long. */
#define SG_FLEETRATE_LEASE_MS         1000
/* A lease is at most burst / this: ten sidecars can each hold one before the fleet
 * bucket is empty, and one sidecar never strands more than a tenth of the budget. */
#define SG_FLEETRATE_LEASE_BURST_DIV  10
/* ...and never more than this many tokens, whatever the burst (a lost sidecar's lease
 * is a bounded loss). */
#define SG_FLEETRATE_LEASE_MAX        1000
/* The next lease is asked for when the local tokens fall to lease / this (at least 1):
 * a refill round trip (well under a millisecond to Redis) finishes before they run out
 * at any demand the lease was sized for. */
#define SG_FLEETRATE_LOW_WATER_DIV    4
/* Expected sidecars when the policy names none: the local share of rate_total is then
 * all of it, the per-process behaviour sealgate had before fleet mode. */
#define SG_FLEETRATE_NODES_DEFAULT    1
/* cluster.redis.nodes at most: a local share of burst / nodes is at least one token, so
 * more nodes than any sane burst only make every share 1. */
#define SG_FLEETRATE_NODES_MAX        10000

/* --- WebSocket (frames relayed after a 101, wsframe.h) ----------------------------- */
/* Largest frame (close 1009): payload streams through unbuffered, so this bounds abuse,
 * not memory; far above what WebSocket APIs send in one frame. */
#define SG_WS_MAX_FRAME          (16 * 1024 * 1024)
/* Largest message, the sum of its fragments (close 1009): a transform that rewrites a
 * message (handle swap, scrub) may need to see all of it. */
#define SG_WS_MAX_MESSAGE        (64 * 1024 * 1024)

/* --- response decoding (decode.h) ------------------------------------------------ */
/* Decoded bytes per response body before it is cut off (policy: limits.max_decoded_bytes):
 * far above real API answers, far below what a bomb would fill memory and disk with. */
#define SG_DECODE_MAX_BYTES      (1024ULL * 1024 * 1024)
/* Decoded / encoded bytes: text compresses 5-20x, sparse JSON up to ~100x; 1000x is
 * a zero-filled bomb. */
#define SG_DECODE_MAX_RATIO      200
/* The ratio is checked only past this many decoded bytes: a small body of one repeated
 * byte compresses better than any ratio and is no threat. */
#define SG_DECODE_RATIO_SLACK    (1024 * 1024)
/* Output buffer per decoding stage: the unit handed to the scrubber, and the most a
 * limit is overshot in work. */
#define SG_DECODE_CHUNK          16384

/* --- policy ------------------------------------------------------------------------ */
/* Largest policy file: a config, not a database. */
#define SG_POLICY_MAX_FILE       (16 * 1024 * 1024)
/* Largest secret read from a file or env. */
#define SG_SECRET_MAX_LEN        8192

/* --- rotating secret sources (secval.h, secwatch.h, secexec.h) ------------------- */
/* After a rotation the replaced value is still scrubbed from responses this long, then
 * wiped: an upstream may echo a value it saw just before (a request sent before the
 * switch, an error naming the rejected key, a cache); twice SG_UPSTREAM_TIMEOUT_S covers
 * every response that can still be in flight. */
#define SG_SECRET_SCRUB_GRACE_S  (2 * SG_UPSTREAM_TIMEOUT_S)
/* The main thread's secret-source timer: exec refreshes start, finished runs are
 * collected and grace periods end within this of being due. */
#define SG_SECRET_TICK_MS        100
/* secret.exec "ttl" when the policy names none: gh/vault tokens live an hour or more. */
#define SG_SECRET_EXEC_TTL_DEFAULT_S 300
/* ... and its bounds: under a second is a busy loop, over a day is no rotation. */
#define SG_SECRET_EXEC_TTL_MIN_S 1
#define SG_SECRET_EXEC_TTL_MAX_S (24 * 3600)
/* secret.exec "timeout" (the child is killed after it) when none is named, and its
 * bound: a secret helper answers in well under a second. */
#define SG_SECRET_EXEC_TIMEOUT_DEFAULT_S 10
#define SG_SECRET_EXEC_TIMEOUT_MAX_S 120
/* An exec value is refreshed at this percentage of its ttl: a quarter of the ttl to
 * retry a failing command before the value expires. */
#define SG_SECRET_EXEC_REFRESH_PCT 75
/* A failed run is retried after this (or when the last good value expires, if sooner). */
#define SG_SECRET_EXEC_RETRY_MS  1000
/* argv entries of secret.exec: a command line, not a script. */
#define SG_SECRET_EXEC_MAX_ARGS  64
/* The PATH a command name (no "/") is looked up in at load, and the child's PATH: the
 * system folders, never the proxy's own environment. */
#define SG_SECRET_EXEC_PATH      "/usr/local/bin:/usr/bin:/bin"
/* Errors reported per policy load before the rest are summarised. */
#define SG_POLICY_MAX_ERRORS     100

/* --- AWS (credentials of inject type aws_sigv4) ---------------------------------- */
/* aws.assume_role.duration: STS AssumeRole's own DurationSeconds bounds (15 min..12 h)
 * and its default (1 h) when the policy names none. */
#define SG_AWS_ASSUME_ROLE_MIN_S     (15 * 60)
#define SG_AWS_ASSUME_ROLE_MAX_S     (12 * 3600)
#define SG_AWS_ASSUME_ROLE_DEFAULT_S 3600
/* One STS AssumeRole call, from name resolution to the answer's last byte: then it has
 * failed (its waiting requests get 502 sts_error). STS answers in well under a second. */
#define SG_STS_TIMEOUT_S             10
/* How long a request waits for its credential's AssumeRole: a backstop behind the call's
 * own SG_STS_TIMEOUT_S (502 sts_error). */
#define SG_STS_WAIT_MS               ((SG_STS_TIMEOUT_S + 2) * 1000)
/* Longest AssumeRole answer read (head and body). */
#define SG_STS_MAX_RESPONSE          (64 * 1024)

/* --- minted tokens (credentials with mint: mintcache.h, mintclient.h) ------------- */
/* One token endpoint call, from name resolution to the answer's last byte: then it has
 * failed (its waiting requests get 502 mint_failed). Token endpoints answer in well
 * under a second. */
#define SG_MINT_TIMEOUT_S            10
/* How long a request waits for its credential's token: a backstop behind the call's
 * own SG_MINT_TIMEOUT_S (502 mint_failed). */
#define SG_MINT_WAIT_MS              ((SG_MINT_TIMEOUT_S + 2) * 1000)
/* Longest token endpoint answer read (head and body): tokens are a few KiB at most. */
#define SG_MINT_MAX_RESPONSE         (64 * 1024)

#endif
