/*
 * metadata.h — the metadata responder (the IMDS pattern): a sandbox asks it, from its
 * own source address, for its handles, the proxy to use and the CA to trust.
 *
 *   PUT  /v1/token        X-Sealgate-Token-TTL: 1..21600  -> session token (text)
 *   GET  /v1/handles      -> ["cred", ...] granted to the caller's sandbox
 *   GET  /v1/handles/NAME -> {"handle","expires_at","lifetime","env","hosts"}: a fresh
 *                            handle; lifetime "sandbox" (bound to the sandbox, expires_at
 *                            is its max_ttl backstop) or "ttl" (wall-clock)
 *   GET  /v1/env          -> "export NAME='value'" lines: handles, proxy, CA variables
 *   GET  /v1/ca.pem       -> the interception CA certificate
 * For the AWS SDKs and CLI (each aws_sigv4 credential granted to the sandbox is an IAM
 * role of the same name; its credentials are awscred.h's, derived from a fresh handle):
 *   PUT  /latest/api/token  X-aws-ec2-metadata-token-ttl-seconds: 1..21600 -> token
 *   GET  /latest/meta-data/iam/security-credentials/  -> the default role's name
 *   GET  /latest/meta-data/iam/security-credentials/ROLE
 *        -> {"Code":"Success","LastUpdated","Type":"AWS-HMAC","AccessKeyId",
 *            "SecretAccessKey","Token","Expiration"} (Token: a fresh handle)
 *   GET  /latest/meta-data/placement/region             -> the default role's first region
 *   GET  /latest/meta-data/placement/availability-zone  -> that region + "a"
 *   GET  /v1/aws/credentials/ROLE  (Authorization: a session token: the ECS/EKS container
 *        credentials protocol) -> {"AccessKeyId","SecretAccessKey","Token","Expiration"}
 * The /latest/ GETs need X-aws-ec2-metadata-token (401 without, like IMDSv2); it and
 * Authorization carry the same session tokens as X-Sealgate-Token. The default role is
 * the first aws_sigv4 credential the sandbox is granted; /v1/env exports the container
 * variables for it (AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN,
 * AWS_REGION/AWS_DEFAULT_REGION, AWS_CA_BUNDLE). See docs/guest-setup.md.
 * Every other GET/HEAD needs X-Sealgate-Token. The sandbox is the one whose addresses
 * contain the source address. Requests carrying X-Forwarded-For, Forwarded or Via are refused
 * (a sandbox process relaying someone else's request), answers leave with IP TTL /
 * hop limit opts.hop_limit (1: they cannot cross a router). Errors are JSON
 * {"error": CODE, "message": ...} with X-Sealgate-Error: CODE.
 *
 * Routing is a table of (methods, path, exact or prefix, needs token) -> handler: the
 * AWS tree is more rows with their own token header, not a second server. The responder
 * may listen on a second address (opts.listen_aws, e.g. 169.254.170.2:80, where AWS SDKs
 * accept container credentials from); it serves the same routes there.
 *
 * Session tokens are stateless: "sgt1." + base64url(exp (8 bytes, big endian) ||
 * HMAC-SHA256(key, "sgt1" || sandbox || 0 || exp)), with a random key made per process
 * (a restart invalidates every session token; guests ask again). Verification is
 * constant time and binds the token to the sandbox asking.
 *
 * The token, TTL and env functions are pure (no sockets, no clocks) for unit tests.
 *
 * Ownership: metadata_new copies the strings in opts and reads the CA file once; it
 * borrows seal_key and rl (they must outlive the responder). metadata_free frees all.
 * Answers holding derived secret access keys are built in wipe memory and zeroed once
 * libevent has written them.
 * Runs on the event_base passed in (the main thread's); not thread-safe itself.
 */
#ifndef SEALGATE_METADATA_H
#define SEALGATE_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "ratelimit.h"
#include "seal.h"
#include "util.h"

/* Session token lifetime bounds, in seconds: IMDSv2's (at most six hours). */
#define METADATA_TOKEN_TTL_MIN_S	1
#define METADATA_TOKEN_TTL_MAX_S	21600
/* Session token text: prefix + base64url of 8 + 32 bytes (54 chars) = 59 chars. */
#define METADATA_TOKEN_PREFIX		"sgt1."
#define METADATA_TOKEN_KEY_LEN		32
#define METADATA_TOKEN_RAW_LEN		(8 + 32)
#define METADATA_TOKEN_TEXT_LEN		59
/* Buffer size for a token: the text and its NUL. */
#define METADATA_TOKEN_BUF		(METADATA_TOKEN_TEXT_LEN + 1)
/* Session token headers (request and the PUT's TTL). */
#define METADATA_HDR_TOKEN		"X-Sealgate-Token"
#define METADATA_HDR_TTL		"X-Sealgate-Token-TTL"
/* IP TTL of answers: 1 keeps them on the sandbox's own link (IMDSv2's default). */
#define METADATA_HOP_LIMIT_DEFAULT	1
/* Per sandbox: 20 requests/s, bursts of 100 (a boot script needs ~5; a loop needs more). */
#define METADATA_RATE_REQUESTS		20
#define METADATA_RATE_PER_MS		1000
#define METADATA_RATE_BURST		100
/* Buckets of the private rate table used when opts.rl is NULL: one per sandbox. */
#define METADATA_RATE_BUCKETS		4096
/* Where guests are told the CA lives (scripts/sealgate-guest-init.sh installs it there). */
#define METADATA_CA_GUEST_PATH		"/etc/sealgate/ca.pem"
/* NO_PROXY advertised: the local host and the responder itself. */
#define METADATA_NO_PROXY_DEFAULT	"localhost,127.0.0.1,::1,169.254.169.254"
/* Request bodies: nothing here takes one; a PUT may carry an empty one. */
#define METADATA_MAX_BODY		1024
/* Largest CA file served (a PEM chain, not a database). */
#define METADATA_CA_MAX_BYTES		(256 * 1024)
/* AWS: IMDSv2's token headers, the container credentials' one, the endpoints' paths. */
#define METADATA_HDR_AWS_TOKEN		"X-aws-ec2-metadata-token"
#define METADATA_HDR_AWS_TTL		"X-aws-ec2-metadata-token-ttl-seconds"
#define METADATA_HDR_AWS_AUTH		"Authorization"
#define METADATA_AWS_CREDS_PATH		"/v1/aws/credentials/"
#define METADATA_IMDS_ROLES_PATH	"/latest/meta-data/iam/security-credentials/"
/* Variables metadata_aws_env adds to /v1/env at most. */
#define METADATA_AWS_ENV_MAX		5
/* AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://" + "[v6]:port" + path + a credential name. */
#define METADATA_AWS_URI_MAX		192

struct event_base;
typedef struct metadata metadata_t;

typedef struct metadata_opts {
	const seal_key_t *seal_key;	/* mints handles (borrowed; required) */
	const char *proxy_url;		/* HTTP(S)_PROXY value, "http://host:port"; NULL: none */
	const char *ca_cert_path;	/* PEM served at /v1/ca.pem; NULL: no CA */
	const char *ca_guest_path;	/* CA variables' value; NULL: METADATA_CA_GUEST_PATH */
	const char *no_proxy;		/* NULL: METADATA_NO_PROXY_DEFAULT */
	int hop_limit;			/* 1..255; 0: METADATA_HOP_LIMIT_DEFAULT */
	ratelimit_t *rl;		/* shared (borrowed); NULL: a private table */
	const char *listen_aws;		/* a second address (AWS container credentials);
					 * NULL: none */
} metadata_opts_t;

/*
 * Listen on listen ("host:port", "[v6]:port"; port 0: the kernel picks) on base.
 * Returns NULL with err set (bad address, bind failure, unreadable CA, no seal key).
 */
metadata_t *metadata_new(struct event_base *base, const char *listen,
    const metadata_opts_t *opts, char *err, size_t errlen) SG_WUR;
/* The bound address as "host:port" / "[v6]:port". Lives as long as md. */
const char *metadata_bound(const metadata_t *md) SG_NONNULL;
/* The second (opts.listen_aws) bound address, or NULL when there is none. */
const char *metadata_bound_aws(const metadata_t *md) SG_NONNULL;
/* Stop listening, drop open connections, free. NULL is fine. */
void metadata_free(metadata_t *md);

/* --- pure parts ------------------------------------------------------------------ */

enum metadata_token_err {
	METADATA_TOKEN_OK = 0,
	METADATA_TOKEN_BAD = -1,	/* malformed, tampered, or for another sandbox */
	METADATA_TOKEN_EXPIRED = -2,	/* now >= exp */
};

/* Token for sandbox expiring at exp (unix s) into out (METADATA_TOKEN_BUF bytes). */
void metadata_token_mint(const uint8_t key[METADATA_TOKEN_KEY_LEN], const char *sandbox,
    int64_t exp, char out[METADATA_TOKEN_BUF]) SG_NONNULL;
/* Check token (may be NULL: missing) for sandbox at now. A metadata_token_err. */
int metadata_token_verify(const uint8_t key[METADATA_TOKEN_KEY_LEN], const char *sandbox,
    const char *token, int64_t now) __attribute__((nonnull(1, 2)));

/* X-Sealgate-Token-TTL value (may be NULL): plain decimal in bounds. 0, or -1. */
int metadata_parse_ttl(const char *s, int64_t *ttl) __attribute__((nonnull(2))) SG_WUR;

/* Is name (any case) a header saying the request was relayed? */
bool metadata_is_forwarding_header(const char *name) SG_NONNULL;

/* One environment variable for metadata_env_render. */
typedef struct metadata_env_var {
	const char *name;
	const char *value;
} metadata_env_var_t;

/*
 * "export NAME='value'\n" per var, values single-quoted for POSIX sh (a quote inside
 * becomes '\''). Vars whose name is not a shell identifier ([A-Za-z_][A-Za-z0-9_]*) or
 * whose value is NULL are left out. Returns a malloc'd string, or NULL (out of memory).
 */
char *metadata_env_render(const metadata_env_var_t *vars, size_t n) SG_WUR;

/*
 * Does every AWS SDK fetch container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)
 * from this listen address ("host:port", "[v6]:port")? Only 127.0.0.1 and 169.254.170.2:
 * older SDKs (Debian's botocore 1.29, and the one its AWS CLI v2 carries) refuse any
 * other host, and refusing one fails their whole credential chain.
 */
bool metadata_aws_uri_host_ok(const char *hostport) SG_NONNULL;

/* What metadata_aws_env exports for a sandbox's default aws_sigv4 credential. */
typedef struct metadata_aws_env {
	const char *role;		/* the credential's name */
	const char *hostport;		/* responder address for the container URI, or NULL
					 * (no container variables) */
	const char *token;		/* AWS_CONTAINER_AUTHORIZATION_TOKEN (with hostport) */
	const char *region;		/* its region when it names exactly one, else NULL */
	const char *ca_path;		/* AWS_CA_BUNDLE, or NULL (no CA served) */
} metadata_aws_env_t;

/*
 * Append the AWS variables for in to vars[*n..] (room for METADATA_AWS_ENV_MAX more):
 * AWS_CONTAINER_CREDENTIALS_FULL_URI (written into uri, METADATA_AWS_URI_MAX bytes) and
 * AWS_CONTAINER_AUTHORIZATION_TOKEN when hostport is set, AWS_REGION and
 * AWS_DEFAULT_REGION when region is, AWS_CA_BUNDLE when ca_path is. Values borrow from
 * in and uri. 0, or -1 when the URI does not fit (no container variables then).
 */
int metadata_aws_env(const metadata_aws_env_t *in, metadata_env_var_t *vars, size_t *n,
    char uri[METADATA_AWS_URI_MAX]) SG_NONNULL;

/* One derived credential as the responder answers it (values need no JSON escaping). */
typedef struct metadata_aws_creds {
	const char *access_key_id, *secret_access_key, *token, *expiration;
	const char *last_updated;	/* set: the IMDS form ("Code", "LastUpdated", "Type");
					 * NULL: the container form */
} metadata_aws_creds_t;

/*
 * The JSON answer for c, in wipe memory (secmem_wipe_free it: it holds the secret access
 * key); *len its length. NULL when a value is NULL or would need escaping (a quote, a
 * backslash or a control character), or out of memory.
 */
char *metadata_aws_creds_render(const metadata_aws_creds_t *c, size_t *len) SG_NONNULL SG_WUR;

#endif
