/*
 * awsrole.h — what sealgate asks STS for an aws_sigv4 credential with aws.assume_role:
 * the session policy compiled from the credential's aws scope, the endpoint, and the
 * AssumeRole request itself, signed (SigV4, sigv4.h) with the credential's long-term
 * keys. Pure core: bytes in, bytes out; the time is passed in.
 *
 * The session policy (awsrole_session_policy) limits the temporary credentials to what
 * the credential allows even if they leaked (IAM evaluates the intersection of the role's
 * policies and this one). Compact JSON, ASCII only (jansson's \u escapes), statements in
 * this order, each with Effect Allow:
 *   1. Action ["SERVICE:*", ...] for every service but s3 (and "s3:*" too when no bucket
 *      is named), Resource "*";
 *   2. S3 buckets named without a prefix: Action ["s3:*"], Resource
 *      ["arn:P:s3:::BUCKET", "arn:P:s3:::BUCKET/" "*", ...];
 *   3. S3 prefixes: Action ["s3:*"], Resource ["arn:P:s3:::BUCKET/PREFIX*", ...] (object
 *      actions only: no bucket-level action matches an object ARN);
 *   4. per bucket with prefixes: Action ["s3:ListBucket"], Resource
 *      ["arn:P:s3:::BUCKET"], Condition {"StringLike": {"s3:prefix": ["PREFIX*", ...]}}.
 * With regions, every statement's Condition also holds {"StringEquals":
 * {"aws:RequestedRegion": [REGION, ...]}}. P is the role ARN's partition. In resources and
 * s3:prefix values the IAM wildcard and variable characters of a key prefix are escaped
 * (`*` -> `${*}`, `?` -> `${?}`, `$` -> `${$}`) so a prefix matches as the literal text
 * sealgate checks. Service signing names are IAM action prefixes except "monitoring"
 * (CloudWatch's signing name), which becomes "cloudwatch".
 *
 * The endpoint (awsrole_endpoint): the role ARN's partition decides. "aws": the regional
 * endpoint sts.REGION.amazonaws.com (signed for REGION) when aws.regions names exactly one
 * region, else the global sts.amazonaws.com (signed for us-east-1). "aws-cn": always
 * regional (sts.REGION.amazonaws.com.cn), cn-north-1 unless one region is named.
 * "aws-us-gov": always regional, us-gov-west-1 unless one region is named. Other
 * partitions are refused (AWSROLE_E_PARTITION).
 *
 * The request (awsrole_request): POST / with the form Action=AssumeRole,
 * Version=2011-06-15, RoleArn, RoleSessionName (AWSROLE_SESSION_PREFIX + the credential's
 * name, cut to AWSROLE_SESSION_NAME_MAX), DurationSeconds, ExternalId (when set) and
 * Policy, signed over content-type;host;x-amz-date (and x-amz-security-token when the
 * long-term keys carry a session token), with "Connection: close". The wire bytes hold
 * the long-term session token: wipe memory.
 *
 * Threads: every function is thread-safe (no shared state).
 */
#ifndef SEALGATE_AWSROLE_H
#define SEALGATE_AWSROLE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "sigv4.h"
#include "util.h"

/* STS: "The plaintext that you use for both inline and managed session policies can't
 * exceed 2,048 characters." */
#define AWSROLE_POLICY_MAX		2048
/* STS RoleSessionName: 2..64 of [\w+=,.@-]. */
#define AWSROLE_SESSION_NAME_MAX	64
#define AWSROLE_SESSION_PREFIX		"sealgate-"
/* "sts." + a region (SIGV4_MAX_REGION) + ".amazonaws.com.cn". */
#define AWSROLE_HOST_MAX		(4 + SIGV4_MAX_REGION + 18 + 1)
#define AWSROLE_API_VERSION		"2011-06-15"
#define AWSROLE_PORT			443

enum awsrole_rc {
	AWSROLE_OK = 0,
	AWSROLE_E_NOMEM = -1,
	AWSROLE_E_TOO_LONG = -2,	/* the session policy is over AWSROLE_POLICY_MAX */
	AWSROLE_E_PARTITION = -3,	/* the role ARN's partition is not one sealgate reaches */
	AWSROLE_E_INVALID = -4,		/* no assume_role, or keys missing */
};

/* Where AssumeRole goes: host (no port: AWSROLE_PORT) and the region it is signed for.
 * AWSROLE_OK or AWSROLE_E_PARTITION / AWSROLE_E_INVALID. */
int awsrole_endpoint(const policy_aws_t *aws, char host[AWSROLE_HOST_MAX],
    char region[SIGV4_MAX_REGION + 1]) SG_NONNULL SG_WUR;

/* The session policy of aws (see above): *out malloc'd, NUL-terminated, *len its length.
 * AWSROLE_OK; AWSROLE_E_TOO_LONG (*out NULL, *len the length it would have);
 * AWSROLE_E_NOMEM; AWSROLE_E_INVALID (no assume_role). */
int awsrole_session_policy(const policy_aws_t *aws, char **out, size_t *len)
    SG_NONNULL SG_WUR;

/* RoleSessionName of a credential name: AWSROLE_SESSION_PREFIX + name, characters STS
 * refuses as '-', at most AWSROLE_SESSION_NAME_MAX. */
void awsrole_session_name(const char *cred_name, char out[AWSROLE_SESSION_NAME_MAX + 1])
    SG_NONNULL;

/* An AssumeRole request ready to be written to host:AWSROLE_PORT over verified TLS. */
typedef struct awsrole_req {
	char host[AWSROLE_HOST_MAX];
	char region[SIGV4_MAX_REGION + 1];
	char *wire;		/* head and body; wipe memory (awsrole_req_free) */
	size_t wire_len;
} awsrole_req_t;

/* Build and sign the request of cred (INJECT_AWS_SIGV4 with assume_role) at now (unix
 * seconds). AWSROLE_OK, or a negative awsrole_rc with out empty. */
int awsrole_request(const policy_credential_t *cred, int64_t now, awsrole_req_t *out)
    SG_NONNULL SG_WUR;
/* Zero and free the wire; r is empty afterwards. */
void awsrole_req_free(awsrole_req_t *r) SG_NONNULL;

#endif
