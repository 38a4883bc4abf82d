/* awssign.c — verify the sandbox's SigV4 signature, sign again with the real key. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "awscred.h"
#include "awssign.h"
#include "secmem.h"

#define AWSSIGN_TOKEN_HEADER	"X-Amz-Security-Token"
#define AWSSIGN_HASH_HEADER	"x-amz-content-sha256"

static int
awssign_refuse(awssign_refusal_t *r, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* A sigv4 result as a refusal. */
static int
awssign_sigv4_refuse(awssign_refusal_t *r, int rc, const char *why)
{
	switch (rc) {
	case SIGV4_E_SIGV4A:
		return awssign_refuse(r, 400, "sigv4a_unsupported", "SigV4a (%s) is not "
		    "supported: sign with AWS4-HMAC-SHA256", SIGV4A_ALGORITHM);
	case SIGV4_E_MISMATCH:
		return awssign_refuse(r, 403, "signature_mismatch", "the request is not the "
		    "one that was signed (SigV4 signature mismatch)");
	case SIGV4_E_EXPIRED:
		return awssign_refuse(r, 403, "request_expired", "%s", why ? why :
		    "the request time is too far from now");
	case SIGV4_E_NOMEM:
		return awssign_refuse(r, 503, "resource_exhausted", "out of memory");
	default:
		return awssign_refuse(r, 400, "bad_signature_format", "SigV4: %s", why ? why :
		    "malformed signature");
	}
}

static bool
awssign_listed(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* --- S3: which bucket and key ------------------------------------------------------- */

struct awssign_s3 {
	char bucket[64];		/* "" for the service itself (ListBuckets) */
	char key[SIGV4_MAX_TARGET + 1];	/* decoded, "" when none */
	char prefix[SIGV4_MAX_TARGET + 1];	/* the query's prefix=, decoded */
	bool has_prefix;
};

/* The bucket of a virtual-hosted name ("b.s3.amazonaws.com", "b.s3.eu-west-1…",
 * "b.s3-eu-west-1…", "b.s3.dualstack…"): 1 found, 0 not virtual-hosted, -1 too long. */
static int
awssign_s3_host_bucket(const char *host, char *out, size_t cap)
{
	const char *p = strstr(host, ".s3.");

	if (p == NULL)
		p = strstr(host, ".s3-");
	if (p == NULL || p == host)
		return 0;
	if ((size_t)(p - host) >= cap)
		return -1;
	memcpy(out, host, (size_t)(p - host));
	out[p - host] = '\0';
	return 1;
}

/* The query parameter prefix=, decoded (ListObjects). */
static void
awssign_s3_query_prefix(const char *q, struct awssign_s3 *s)
{
	size_t n;

	while (q != NULL && *q) {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);

		if (strncmp(q, "prefix=", 7) == 0 && sigv4_query_decode(q + 7,
		    (size_t)(end - q - 7), s->prefix, sizeof(s->prefix) - 1, &n) == 0) {
			s->prefix[n] = '\0';
			s->has_prefix = true;
		}
		q = amp ? amp + 1 : NULL;
	}
}

static int
awssign_s3_target(const char *host, const char *target, struct awssign_s3 *s)
{
	const char *q = strchr(target, '?'), *path = target + 1;
	size_t plen = (size_t)((q ? q : target + strlen(target)) - path), n;
	char dec[SIGV4_MAX_TARGET + 1];
	int vh;

	memset(s, 0, sizeof(*s));
	if (target[0] != '/' || sigv4_query_decode(path, plen, dec, sizeof(dec) - 1, &n) < 0)
		return -1;
	dec[n] = '\0';
	if ((vh = awssign_s3_host_bucket(host, s->bucket, sizeof(s->bucket))) < 0)
		return -1;
	if (vh == 0) {			/* path style: /bucket/key */
		const char *slash = strchr(dec, '/');
		size_t bl = slash ? (size_t)(slash - dec) : n;

		if (bl >= sizeof(s->bucket))
			return -1;
		memcpy(s->bucket, dec, bl);
		s->bucket[bl] = '\0';
		snprintf(s->key, sizeof(s->key), "%s", slash ? slash + 1 : "");
	} else
		snprintf(s->key, sizeof(s->key), "%s", dec);
	awssign_s3_query_prefix(q ? q + 1 : NULL, s);
	return 0;
}

/* Does bucket/what start with one of the credential's prefixes for that bucket? Any
 * when none names the bucket. */
static bool
awssign_s3_prefix_ok(const policy_aws_t *aws, const char *bucket, const char *what)
{
	size_t bl = strlen(bucket);
	bool named = false;

	for (size_t i = 0; i < aws->nprefixes; i++) {
		const char *p = aws->prefixes[i];

		if (strncmp(p, bucket, bl) != 0 || p[bl] != '/')
			continue;
		named = true;
		if (strncmp(what, p + bl + 1, strlen(p + bl + 1)) == 0)
			return true;
	}
	return !named;
}

static int
awssign_s3_scope(const awssign_in_t *in, awssign_refusal_t *r)
{
	const policy_aws_t *aws = in->cred->aws;
	struct awssign_s3 s;
	const char *what;

	if (aws->nbuckets == 0 && aws->nprefixes == 0)
		return 0;
	if (awssign_s3_target(in->host, in->target, &s) < 0)
		return awssign_refuse(r, 400, "bad_request", "cannot tell the S3 bucket and "
		    "key of this request");
	if (s.bucket[0] == '\0')
		return awssign_refuse(r, 403, "aws_scope_denied", "credential %s is limited to "
		    "some buckets: listing every bucket is not allowed", in->cred->name);
	if (aws->nbuckets > 0 && !awssign_listed(aws->buckets, aws->nbuckets, s.bucket))
		return awssign_refuse(r, 403, "aws_scope_denied", "bucket %.63s is outside "
		    "credential %s's buckets", s.bucket, in->cred->name);
	what = s.key[0] ? s.key : s.has_prefix ? s.prefix : "";
	if (!awssign_s3_prefix_ok(aws, s.bucket, what))
		return awssign_refuse(r, 403, "aws_scope_denied", "%s in bucket %.63s is "
		    "outside credential %s's key prefixes", s.key[0] ? "this key" :
		    "this listing", s.bucket, in->cred->name);
	return 0;
}

/* Service, region, and for S3 the bucket and key. */
static int
awssign_scope(const awssign_in_t *in, const sigv4_auth_t *a, awssign_refusal_t *r)
{
	const policy_aws_t *aws = in->cred->aws;

	if (!awssign_listed(aws->services, aws->nservices, a->service))
		return awssign_refuse(r, 403, "aws_scope_denied", "service %.63s is outside "
		    "credential %s's services", a->service, in->cred->name);
	if (aws->nregions > 0 && !awssign_listed(aws->regions, aws->nregions, a->region))
		return awssign_refuse(r, 403, "aws_scope_denied", "region %.63s is outside "
		    "credential %s's regions", a->region, in->cred->name);
	return strcmp(a->service, "s3") == 0 ? awssign_s3_scope(in, r) : 0;
}

/* --- the signature ------------------------------------------------------------------ */

static const http_field_t *
awssign_field(const http_head_t *h, const char *name, size_t *count)
{
	const http_field_t *f = NULL;

	*count = 0;
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0) {
			f = &h->fields[i];
			(*count)++;
		}
	return f;
}

/* Is there a query parameter name (as sent) in target? */
static bool
awssign_query_has(const char *target, const char *name)
{
	const char *q = strchr(target, '?');
	size_t nl = strlen(name);

	while (q != NULL) {
		q++;
		if (strncmp(q, name, nl) == 0 && (q[nl] == '=' || q[nl] == '&' || q[nl] == '\0'))
			return true;
		q = strchr(q, '&');
	}
	return false;
}

static int
awssign_sigv2_refuse(awssign_refusal_t *r)
{
	return awssign_refuse(r, 400, "sigv2_unsupported", "AWS Signature Version 2 is not "
	    "supported: sign with SigV4 (AWS4-HMAC-SHA256; boto3/botocore presigned URLs: "
	    "Config(signature_version=\"s3v4\"))");
}

/* The sandbox's signature: a presigned query, else the Authorization field. SigV2 (a
 * query's AWSAccessKeyId and Signature, "Authorization: AWS id:sig") is refused as such:
 * the SDKs that still presign with it by default need to be told. */
static int
awssign_parse(const awssign_in_t *in, sigv4_auth_t *a, awssign_refusal_t *r)
{
	const http_field_t *f;
	const char *why = NULL;
	size_t n;
	int rc;

	rc = sigv4_parse_presigned(in->target, strlen(in->target), a, &why);
	if (rc != SIGV4_E_ABSENT)
		return rc == SIGV4_OK ? 0 : awssign_sigv4_refuse(r, rc, why);
	f = awssign_field(in->head, "Authorization", &n);
	if (f == NULL && awssign_query_has(in->target, "AWSAccessKeyId") &&
	    awssign_query_has(in->target, "Signature"))
		return awssign_sigv2_refuse(r);
	if (f == NULL)
		return awssign_refuse(r, 403, "signature_missing", "credential %s is an AWS "
		    "credential: its handle only travels as the session token of a "
		    "SigV4-signed request", in->cred->name);
	if (n > 1)
		return awssign_refuse(r, 400, "bad_signature_format", "more than one "
		    "Authorization field");
	if (strncmp(f->value, "AWS ", 4) == 0)
		return awssign_sigv2_refuse(r);
	rc = sigv4_parse_authorization(f->value, f->value_len, a, &why);
	return rc == SIGV4_OK ? 0 : awssign_sigv4_refuse(r, rc, why);
}

/* The access key id must be the one issued with this handle. */
static int
awssign_key_id(const awssign_in_t *in, const sigv4_auth_t *a, awssign_refusal_t *r)
{
	char akid[AWSCRED_AKID_LEN + 1];

	awscred_access_key_id(in->handle, in->handle_len, akid);
	if (strcmp(a->akid, akid) != 0)
		return awssign_refuse(r, 403, "signature_mismatch", "the signature's access key "
		    "id is not the one issued with this session token");
	return 0;
}

/* The signing key of the derived secret (verification). */
static int
awssign_key_in(const awssign_in_t *in, awssign_t *st, awssign_refusal_t *r)
{
	const sigv4_auth_t *a = &st->auth;
	char derived[AWSCRED_SECRET_LEN + 1];

	if (awscred_secret(in->key, in->handle, in->handle_len, derived) < 0)
		return awssign_refuse(r, 500, "internal_error", "cannot derive the secret of "
		    "this session token");
	sigv4_signing_key(derived, AWSCRED_SECRET_LEN, a->date, a->region, a->service,
	    st->key_in);
	sodium_memzero(derived, sizeof(derived));
	return 0;
}

/* What the payload hash is, and what the body needs. */
static int
awssign_payload(const awssign_in_t *in, awssign_t *st, awssign_refusal_t *r)
{
	const http_field_t *f;
	size_t n;

	f = awssign_field(in->head, AWSSIGN_HASH_HEADER, &n);
	if (n > 1 || (f != NULL && f->value_len > AWSSIGN_PAYLOAD_MAX))
		return awssign_refuse(r, 400, "bad_signature_format", "a bad %s field",
		    AWSSIGN_HASH_HEADER);
	if (f == NULL && st->auth.presigned)
		snprintf(st->payload_hash, sizeof(st->payload_hash), "%s", (st->flags &
		    SIGV4_S3) ? AWSSIGN_UNSIGNED : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	else if (f == NULL && (st->flags & SIGV4_S3))
		return awssign_refuse(r, 400, "bad_signature_format", "an S3 request carries "
		    "%s", AWSSIGN_HASH_HEADER);
	else if (f == NULL) {
		st->body = AWSSIGN_BODY_HASH;
		return 0;
	} else
		snprintf(st->payload_hash, sizeof(st->payload_hash), "%s", f->value);
	if (strcmp(st->payload_hash, AWSSIGN_STREAMING) == 0 ||
	    strcmp(st->payload_hash, AWSSIGN_STREAMING_TRAILER) == 0) {
		st->body = AWSSIGN_BODY_CHUNKS;
		st->trailer = strcmp(st->payload_hash, AWSSIGN_STREAMING_TRAILER) == 0;
	} else if (strcmp(st->payload_hash, AWSSIGN_UNSIGNED_TRAILER) == 0)
		st->body = AWSSIGN_BODY_UNSIGNED_TRAILER;
	else if (strncmp(st->payload_hash, "STREAMING-AWS4-ECDSA", 20) == 0)
		return awssign_sigv4_refuse(r, SIGV4_E_SIGV4A, NULL);
	return 0;
}

static void
awssign_request(const awssign_t *st, const http_head_t *h, const char *target,
    const http_field_t *fields, size_t nfields, sigv4_request_t *req)
{
	req->method = http_method_str(h->method);
	req->target = target;
	req->target_len = strlen(target);
	req->fields = fields;
	req->nfields = nfields;
	req->payload_hash = st->payload_hash;
	req->flags = st->flags;
}

/* Verify the sandbox's signature over the head as received. */
static int
awssign_verify(awssign_t *st, const http_head_t *h, const char *target,
    awssign_refusal_t *r)
{
	sigv4_request_t req;
	const char *why = NULL;
	int rc;

	awssign_request(st, h, target, h->fields, h->nfields, &req);
	if ((rc = sigv4_verify(&req, &st->auth, st->key_in, &why)) != SIGV4_OK)
		return awssign_sigv4_refuse(r, rc, why);
	st->verified = true;
	return 0;
}

/* The session token field: the identity's token, or none. */
static int
awssign_token_edit(const http_head_t *h, const awssign_identity_t *id, inject_edits_t *e,
    awssign_refusal_t *r)
{
	for (size_t i = 0; i < h->nfields; i++) {
		if (strcasecmp(h->fields[i].name, AWSSIGN_TOKEN_HEADER) != 0)
			continue;
		secmem_wipe_free(e->value[i]);
		e->value[i] = NULL;
		e->kind[i] = EDIT_DROP;
		if (id->session_token == NULL)
			continue;
		if ((e->value[i] = secmem_wipe_dup(id->session_token,
		    id->session_token_len)) == NULL)
			return awssign_refuse(r, 503, "resource_exhausted", "out of memory");
		e->kind[i] = EDIT_REPLACE;
		e->secret_in_head = true;
	}
	return 0;
}

void
awssign_policy_identity(const policy_credential_t *cred, awssign_identity_t *id)
{
	const policy_aws_t *aws = cred->aws;

	*id = (awssign_identity_t){aws ? aws->access_key_id : NULL,
	    aws ? aws->access_key_id_len : 0, cred->secret, cred->secret_len,
	    aws ? aws->session_token : NULL, aws ? aws->session_token_len : 0};
}

int
awssign_identity(awssign_t *st, const awssign_identity_t *id, const http_head_t *head,
    inject_edits_t *e, awssign_refusal_t *r)
{
	const sigv4_auth_t *a = &st->auth;

	if (!st->set || id->access_key_id == NULL || id->secret == NULL)
		return awssign_refuse(r, 500, "internal_error", "no AWS identity to sign with");
	st->id = *id;
	sigv4_signing_key(id->secret, id->secret_len, a->date, a->region, a->service,
	    st->key_out);
	st->id_set = true;	/* the token goes in only once the signature holds */
	return a->presigned ? 0 : awssign_token_edit(head, id, e, r);
}

int
awssign_head(const awssign_in_t *in, awssign_t *st, awssign_refusal_t *r)
{
	const char *why = NULL;
	sigv4_request_t req;
	int rc;

	memset(st, 0, sizeof(*st));
	st->cred = in->cred;
	if (in->cred->aws == NULL)
		return awssign_refuse(r, 500, "internal_error", "credential %s has no aws block",
		    in->cred->name);
	if (awssign_parse(in, &st->auth, r) < 0 || awssign_key_id(in, &st->auth, r) < 0 ||
	    awssign_scope(in, &st->auth, r) < 0)
		return -1;
	st->flags = strcmp(st->auth.service, "s3") == 0 ? SIGV4_S3 : 0;
	awssign_request(st, in->head, in->target, in->head->fields, in->head->nfields, &req);
	if ((rc = sigv4_request_date(&req, &st->auth, st->amz_date, &why)) != SIGV4_OK ||
	    (rc = sigv4_check_time(&st->auth, st->amz_date, in->now, &why)) != SIGV4_OK)
		return awssign_sigv4_refuse(r, rc, why);
	if (awssign_key_in(in, st, r) < 0 || awssign_payload(in, st, r) < 0)
		return -1;
	memcpy(st->seed_in, st->auth.signature, sizeof(st->seed_in));
	if (st->body != AWSSIGN_BODY_HASH && awssign_verify(st, in->head, in->target, r) < 0)
		return -1;
	st->set = true;
	return 0;
}

int
awssign_body(awssign_t *st, const http_head_t *head, const char *target, const void *body,
    size_t len, awssign_refusal_t *r)
{
	sigv4_payload_hash(body, len, st->payload_hash);
	return awssign_verify(st, head, target, r);
}

/* --- signing again -------------------------------------------------------------------- */

/* The head's fields as e leaves them: dropped ones out, replaced values in, added ones
 * after. */
static size_t
awssign_edited(const http_head_t *h, const inject_edits_t *e, http_field_t *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < h->nfields && n < cap; i++) {
		const char *v = inject_field_value(h, e, i);

		if (v != NULL)
			out[n++] = (http_field_t){h->fields[i].name, v, h->fields[i].name_len,
			    strlen(v)};
	}
	for (size_t i = 0; i < e->nadd && n < cap; i++)
		out[n++] = (http_field_t){e->add[i].name, e->add[i].value,
		    strlen(e->add[i].name), strlen(e->add[i].value)};
	return n;
}

/* SignedHeaders without x-amz-security-token (no real session token replaces it). */
static void
awssign_drop_signed(sigv4_auth_t *a, const char *name)
{
	size_t nl = strlen(name);
	char *s = a->signed_headers, *p = s;

	while (p != NULL && *p) {
		char *semi = strchr(p, ';');
		size_t l = semi ? (size_t)(semi - p) : strlen(p);

		if (l == nl && strncmp(p, name, nl) == 0) {
			if (semi != NULL)
				memmove(p, semi + 1, strlen(semi + 1) + 1);
			else
				*(p > s ? p - 1 : p) = '\0';
			return;
		}
		p = semi ? semi + 1 : NULL;
	}
}

/* Replace the Authorization field's value with v. */
static int
awssign_auth_edit(const http_head_t *h, inject_edits_t *e, const char *v, size_t len)
{
	for (size_t i = 0; i < h->nfields; i++) {
		if (strcasecmp(h->fields[i].name, "Authorization") != 0)
			continue;
		secmem_wipe_free(e->value[i]);
		if ((e->value[i] = secmem_wipe_dup(v, len)) == NULL) {
			e->kind[i] = EDIT_DROP;
			return -1;
		}
		e->kind[i] = EDIT_REPLACE;
		return 0;
	}
	return -1;
}

static int
awssign_resign_header(awssign_t *st, const http_head_t *h, const sigv4_request_t *req,
    inject_edits_t *e, awssign_refusal_t *r)
{
	const awssign_identity_t *id = &st->id;
	sigv4_auth_t a = st->auth;
	char value[SIGV4_AUTH_MAX];
	const char *why = NULL;
	int rc, len;

	if (id->session_token == NULL)
		awssign_drop_signed(&a, "x-amz-security-token");
	if ((rc = sigv4_sign(req, &a, st->key_out, st->seed_out, &why)) != SIGV4_OK)
		return awssign_sigv4_refuse(r, rc, why);
	memcpy(a.signature, st->seed_out, sizeof(a.signature));
	if (sigv4_set_key_id(&a, id->access_key_id, id->access_key_id_len) < 0 ||
	    (len = sigv4_format_authorization(&a, value, sizeof(value))) < 0)
		return awssign_refuse(r, 500, "internal_error", "cannot format the new "
		    "Authorization value");
	rc = awssign_auth_edit(h, e, value, (size_t)len);
	sodium_memzero(value, sizeof(value));
	return rc < 0 ? awssign_refuse(r, 503, "resource_exhausted", "out of memory") : 0;
}

static int
awssign_resign_query(awssign_t *st, const sigv4_request_t *req, inject_edits_t *e,
    awssign_refusal_t *r)
{
	const awssign_identity_t *id = &st->id;
	const char *why = NULL;
	char *target = NULL;
	size_t len;
	int rc;

	rc = sigv4_presign_rewrite(req, &st->auth, id->access_key_id, id->access_key_id_len,
	    id->session_token, id->session_token_len, st->key_out, &target, &len, &why);
	if (rc != SIGV4_OK)
		return awssign_sigv4_refuse(r, rc, why);
	secmem_wipe_free(e->target);
	e->target = target;
	e->secret_in_head = true;
	return 0;
}

int
awssign_resign(awssign_t *st, const http_head_t *h, const char *target, inject_edits_t *e,
    awssign_refusal_t *r)
{
	http_field_t fields[SG_MAX_HEADERS + INJECT_MAX_HANDLES];
	sigv4_request_t req;
	size_t n;

	if (!st->set || !st->verified || !st->id_set)
		return awssign_refuse(r, 500, "internal_error", "an AWS request signed again "
		    "before its signature was checked or its identity known");
	n = awssign_edited(h, e, fields, SG_ARRAY_LEN(fields));
	awssign_request(st, h, target, fields, n, &req);
	if (st->auth.presigned)
		return awssign_resign_query(st, &req, e, r);
	return awssign_resign_header(st, h, &req, e, r);
}

bool
awssign_signs(const awssign_t *st, const char *name)
{
	size_t nl = strlen(name);
	const char *p = st->auth.signed_headers;

	if (!st->set || nl == 0)
		return false;
	while (*p) {
		const char *semi = strchr(p, ';');
		size_t l = semi ? (size_t)(semi - p) : strlen(p);

		if (l == nl && strncasecmp(p, name, nl) == 0)
			return true;
		if (semi == NULL)
			break;
		p = semi + 1;
	}
	return false;
}
