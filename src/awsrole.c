/* awsrole.c — the session policy, the STS endpoint and the signed AssumeRole request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "awsrole.h"
#include "secmem.h"

#define AWSROLE_CONTENT_TYPE	"application/x-www-form-urlencoded; charset=utf-8"
#define AWSROLE_DEFAULT_REGION	"us-east-1"	/* what the global endpoint signs for */

/* --- the partition and the endpoint -------------------------------------------------- */

struct awsrole_partition {
	const char *name;	/* in ARNs */
	const char *suffix;	/* of endpoint names */
	const char *region;	/* signed for when no single region is named */
	bool global;		/* sts.SUFFIX exists */
};

static const struct awsrole_partition awsrole_partitions[] = {
	{"aws", "amazonaws.com", AWSROLE_DEFAULT_REGION, true},
	{"aws-cn", "amazonaws.com.cn", "cn-north-1", false},
	{"aws-us-gov", "amazonaws.com", "us-gov-west-1", false},
};

/* The partition an ARN ("arn:PARTITION:...") names, or NULL. */
static const struct awsrole_partition *
awsrole_partition(const char *arn)
{
	const char *p, *end;

	if (arn == NULL || strncmp(arn, "arn:", 4) != 0)
		return NULL;
	p = arn + 4;
	if ((end = strchr(p, ':')) == NULL)
		return NULL;
	for (size_t i = 0; i < SG_ARRAY_LEN(awsrole_partitions); i++)
		if (strlen(awsrole_partitions[i].name) == (size_t)(end - p) &&
		    strncmp(awsrole_partitions[i].name, p, (size_t)(end - p)) == 0)
			return &awsrole_partitions[i];
	return NULL;
}

int
awsrole_endpoint(const policy_aws_t *aws, char host[AWSROLE_HOST_MAX],
    char region[SIGV4_MAX_REGION + 1])
{
	const struct awsrole_partition *pt;
	const char *r;

	if (!aws->assume_role.set || aws->assume_role.role_arn == NULL)
		return AWSROLE_E_INVALID;
	if ((pt = awsrole_partition(aws->assume_role.role_arn)) == NULL)
		return AWSROLE_E_PARTITION;
	r = aws->nregions == 1 ? aws->regions[0] : pt->region;
	if (strlen(r) > SIGV4_MAX_REGION)
		return AWSROLE_E_INVALID;
	snprintf(region, SIGV4_MAX_REGION + 1, "%s", r);
	if (aws->nregions != 1 && pt->global)
		snprintf(host, AWSROLE_HOST_MAX, "sts.%s", pt->suffix);
	else
		snprintf(host, AWSROLE_HOST_MAX, "sts.%s.%s", r, pt->suffix);
	return AWSROLE_OK;
}

/* --- the session policy -------------------------------------------------------------- */

/* A key prefix as IAM reads it literally: its wildcard and variable characters escaped,
 * then tail appended. NULL when out of memory. */
static char *
awsrole_iam_literal(const char *head, const char *s, const char *tail)
{
	size_t hl = strlen(head), n = hl + strlen(tail) + 1;
	char *out, *o;

	for (const char *p = s; *p; p++)
		n += (*p == '*' || *p == '?' || *p == '$') ? 4 : 1;
	if ((out = malloc(n)) == NULL)
		return NULL;
	memcpy(out, head, hl);
	o = out + hl;
	for (const char *p = s; *p; p++) {
		if (*p == '*' || *p == '?' || *p == '$') {
			*o++ = '$';
			*o++ = '{';
			*o++ = *p;
			*o++ = '}';
		} else
			*o++ = *p;
	}
	strcpy(o, tail);
	return out;
}

/* Append a string made by awsrole_iam_literal (or printf-like) to a JSON array. */
static int
awsrole_push(json_t *arr, char *s)
{
	int rc = s != NULL ? json_array_append_new(arr, json_string(s)) : -1;

	free(s);
	return rc;
}

/* The IAM action prefix of a service signing name. */
static const char *
awsrole_action_prefix(const char *service)
{
	return strcmp(service, "monitoring") == 0 ? "cloudwatch" : service;
}

/* {"Effect":"Allow","Action":actions,"Resource":resource[,"Condition":cond]}. Takes
 * the references it is given, also on failure (cond may be NULL). */
static json_t *
awsrole_statement(json_t *actions, json_t *resource, json_t *cond)
{
	json_t *st = json_object();
	int rc;

	if (st == NULL || actions == NULL || resource == NULL) {
		json_decref(st);
		json_decref(actions);
		json_decref(resource);
		json_decref(cond);
		return NULL;
	}
	rc = json_object_set_new(st, "Effect", json_string("Allow"));
	rc |= json_object_set_new(st, "Action", actions);
	rc |= json_object_set_new(st, "Resource", resource);
	if (cond != NULL)
		rc |= json_object_set_new(st, "Condition", cond);
	if (rc != 0) {
		json_decref(st);
		return NULL;
	}
	return st;
}

/* Append a statement (taken) to stmts; -1 when it is NULL (out of memory). */
static int
awsrole_add(json_t *stmts, json_t *st)
{
	return st != NULL ? json_array_append_new(stmts, st) : -1;
}

/* A statement's Condition: like (taken; {"s3:prefix": [...]}, or NULL) as StringLike, and
 * the region list as StringEquals aws:RequestedRegion. *out NULL when neither applies.
 * 0, or -1 when out of memory. */
static int
awsrole_condition(const policy_aws_t *aws, json_t *like, json_t **out)
{
	json_t *cond = NULL, *regions;
	int rc = 0;

	*out = NULL;
	if (aws->nregions == 0 && like == NULL)
		return 0;
	if ((cond = json_object()) == NULL) {
		json_decref(like);
		return -1;
	}
	if (like != NULL)
		rc |= json_object_set_new(cond, "StringLike", like);
	if (aws->nregions > 0) {
		regions = json_array();
		for (size_t i = 0; regions != NULL && i < aws->nregions; i++)
			rc |= json_array_append_new(regions, json_string(aws->regions[i]));
		rc |= json_object_set_new(cond, "StringEquals", regions ? json_pack("{s:o}",
		    "aws:RequestedRegion", regions) : NULL);
	}
	if (rc != 0) {
		json_decref(cond);
		return -1;
	}
	*out = cond;
	return 0;
}

/* A statement whose condition is the regions' (and like's, taken). */
static json_t *
awsrole_scoped(const policy_aws_t *aws, json_t *actions, json_t *resource, json_t *like)
{
	json_t *cond;

	if (awsrole_condition(aws, like, &cond) < 0) {
		json_decref(actions);
		json_decref(resource);
		return NULL;
	}
	return awsrole_statement(actions, resource, cond);
}

static bool
awsrole_has_s3(const policy_aws_t *aws)
{
	for (size_t i = 0; i < aws->nservices; i++)
		if (strcmp(aws->services[i], "s3") == 0)
			return true;
	return false;
}

/* Statement 1: every service but a bucket-limited s3, on any resource. */
static int
awsrole_services(const policy_aws_t *aws, json_t *stmts)
{
	bool limited = aws->nbuckets > 0 || aws->nprefixes > 0;
	json_t *actions = json_array();
	char buf[SIGV4_MAX_SERVICE + 16];
	int rc = actions != NULL ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < aws->nservices; i++) {
		if (limited && strcmp(aws->services[i], "s3") == 0)
			continue;
		snprintf(buf, sizeof(buf), "%s:*", awsrole_action_prefix(aws->services[i]));
		rc = json_array_append_new(actions, json_string(buf));
	}
	if (rc == 0 && json_array_size(actions) == 0) {
		json_decref(actions);
		return 0;	/* s3 alone, limited to buckets */
	}
	if (rc != 0) {
		json_decref(actions);
		return -1;
	}
	return awsrole_add(stmts, awsrole_scoped(aws, actions, json_string("*"), NULL));
}

/* The prefixes naming bucket ("bucket/PREFIX"), each as head + IAM literal + tail, into
 * arr (NULL: count only). How many, or -1 when out of memory. */
static int
awsrole_bucket_prefixes(const policy_aws_t *aws, const char *bucket, const char *head,
    const char *tail, json_t *arr)
{
	size_t bl = strlen(bucket);
	int n = 0;

	for (size_t i = 0; i < aws->nprefixes; i++) {
		const char *p = aws->prefixes[i];

		if (strncmp(p, bucket, bl) != 0 || p[bl] != '/')
			continue;
		if (arr != NULL && awsrole_push(arr, awsrole_iam_literal(head, p + bl + 1,
		    tail)) < 0)
			return -1;
		n++;
	}
	return n;
}

/* head + a + b, malloc'd (NULL when out of memory). */
static char *
awsrole_cat(const char *head, const char *a, const char *b)
{
	size_t n = strlen(head) + strlen(a) + strlen(b) + 1;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s%s%s", head, a, b);
	return s;
}

/* Statements 2 and 3: whole buckets, then the objects under prefixes. */
static int
awsrole_s3_objects(const policy_aws_t *aws, const char *arn, json_t *stmts)
{
	json_t *whole = json_array(), *objects = json_array();
	int rc = whole != NULL && objects != NULL ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < aws->nbuckets; i++) {
		const char *b = aws->buckets[i];
		char head[128];

		snprintf(head, sizeof(head), "%s%s/", arn, b);
		if (awsrole_bucket_prefixes(aws, b, "", "", NULL) > 0)
			rc = awsrole_bucket_prefixes(aws, b, head, "*", objects) < 0 ? -1 : 0;
		else if (awsrole_push(whole, awsrole_cat(arn, b, "")) < 0 ||
		    awsrole_push(whole, awsrole_cat(arn, b, "/*")) < 0)
			rc = -1;
	}
	if (rc == 0 && json_array_size(whole) > 0)
		rc = awsrole_add(stmts, awsrole_scoped(aws, json_pack("[s]", "s3:*"),
		    json_incref(whole), NULL));
	if (rc == 0 && json_array_size(objects) > 0)
		rc = awsrole_add(stmts, awsrole_scoped(aws, json_pack("[s]", "s3:*"),
		    json_incref(objects), NULL));
	json_decref(whole);
	json_decref(objects);
	return rc;
}

/* Statement 4: listing a prefixed bucket, under its prefixes only. */
static int
awsrole_s3_listing(const policy_aws_t *aws, const char *arn, json_t *stmts)
{
	for (size_t i = 0; i < aws->nbuckets; i++) {
		const char *b = aws->buckets[i];
		json_t *prefixes = json_array(), *res = json_array();

		if (prefixes == NULL || res == NULL ||
		    awsrole_bucket_prefixes(aws, b, "", "*", prefixes) < 0 ||
		    awsrole_push(res, awsrole_cat(arn, b, "")) < 0) {
			json_decref(prefixes);
			json_decref(res);
			return -1;
		}
		if (json_array_size(prefixes) == 0) {
			json_decref(prefixes);
			json_decref(res);
			continue;
		}
		if (awsrole_add(stmts, awsrole_scoped(aws, json_pack("[s]", "s3:ListBucket"),
		    res, json_pack("{s:o}", "s3:prefix", prefixes))) < 0)
			return -1;
	}
	return 0;
}

/* The whole document. */
static json_t *
awsrole_document(const policy_aws_t *aws, const char *partition)
{
	json_t *stmts = json_array(), *doc;
	char arn[32];

	snprintf(arn, sizeof(arn), "arn:%s:s3:::", partition);
	if (stmts == NULL || awsrole_services(aws, stmts) < 0 ||
	    (awsrole_has_s3(aws) && (awsrole_s3_objects(aws, arn, stmts) < 0 ||
	    awsrole_s3_listing(aws, arn, stmts) < 0))) {
		json_decref(stmts);
		return NULL;
	}
	doc = json_pack("{s:s, s:o}", "Version", "2012-10-17", "Statement", stmts);
	return doc;
}

int
awsrole_session_policy(const policy_aws_t *aws, char **out, size_t *len)
{
	const struct awsrole_partition *pt;
	json_t *doc;
	char *txt;

	*out = NULL;
	*len = 0;
	if (!aws->assume_role.set)
		return AWSROLE_E_INVALID;
	if ((pt = awsrole_partition(aws->assume_role.role_arn)) == NULL)
		return AWSROLE_E_PARTITION;
	if ((doc = awsrole_document(aws, pt->name)) == NULL)
		return AWSROLE_E_NOMEM;
	txt = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (txt == NULL)
		return AWSROLE_E_NOMEM;
	*len = strlen(txt);
	if (*len > AWSROLE_POLICY_MAX) {
		free(txt);
		return AWSROLE_E_TOO_LONG;
	}
	*out = txt;
	return AWSROLE_OK;
}

/* --- the request ---------------------------------------------------------------------- */

void
awsrole_session_name(const char *cred_name, char out[AWSROLE_SESSION_NAME_MAX + 1])
{
	size_t n;

	snprintf(out, AWSROLE_SESSION_NAME_MAX + 1, "%s%s", AWSROLE_SESSION_PREFIX, cred_name);
	n = strlen(out);
	for (size_t i = 0; i < n; i++) {
		char ch = out[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("_+=,.@-", ch) != NULL))
			out[i] = '-';
	}
}

/* name=value&, value percent-encoded (RFC 3986 unreserved kept). */
static void
awsrole_param(secmem_buf_t *b, const char *name, const char *value, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	if (b->len > 0)
		secmem_buf_puts(b, "&");
	secmem_buf_puts(b, name);
	secmem_buf_puts(b, "=");
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)value[i];
		char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~')
			secmem_buf_add(b, (const char *)&ch, 1);
		else
			secmem_buf_add(b, esc, 3);
	}
}

/* The form body. 0, or an awsrole_rc. */
static int
awsrole_form(const policy_credential_t *cred, secmem_buf_t *b)
{
	const policy_aws_t *aws = cred->aws;
	char name[AWSROLE_SESSION_NAME_MAX + 1], dur[16];
	char *pol = NULL;
	size_t plen = 0;
	int rc = AWSROLE_OK;

	if (aws->assume_role.session_policy != NULL) {
		pol = aws->assume_role.session_policy;
		plen = aws->assume_role.session_policy_len;
	} else if ((rc = awsrole_session_policy(aws, &pol, &plen)) != AWSROLE_OK)
		return rc;
	awsrole_session_name(cred->name, name);
	snprintf(dur, sizeof(dur), "%u", (unsigned)aws->assume_role.duration_s);
	awsrole_param(b, "Action", "AssumeRole", 10);
	awsrole_param(b, "Version", AWSROLE_API_VERSION, strlen(AWSROLE_API_VERSION));
	awsrole_param(b, "RoleArn", aws->assume_role.role_arn,
	    strlen(aws->assume_role.role_arn));
	awsrole_param(b, "RoleSessionName", name, strlen(name));
	awsrole_param(b, "DurationSeconds", dur, strlen(dur));
	if (aws->assume_role.external_id != NULL)
		awsrole_param(b, "ExternalId", aws->assume_role.external_id,
		    strlen(aws->assume_role.external_id));
	awsrole_param(b, "Policy", pol, plen);
	if (pol != aws->assume_role.session_policy)
		free(pol);
	return b->failed ? AWSROLE_E_NOMEM : AWSROLE_OK;
}

/* The fields the signature covers (and Content-Length), in the order they are sent. */
struct awsrole_fields {
	http_field_t f[5];
	size_t n;
	char amz[SIGV4_AMZ_DATE_LEN + 1], clen[24];
};

static void
awsrole_field(struct awsrole_fields *fs, const char *name, const char *value, size_t len)
{
	fs->f[fs->n++] = (http_field_t){name, value, strlen(name), len};
}

static int
awsrole_sign(const policy_credential_t *cred, const awsrole_req_t *out,
    const struct awsrole_fields *fs, const char *hash, char *auth, size_t cap)
{
	const policy_aws_t *aws = cred->aws;
	sigv4_request_t req = {"POST", "/", 1, fs->f, fs->n, hash, 0};
	sigv4_auth_t a;
	uint8_t key[SIGV4_KEY_LEN];
	const char *why = NULL;
	size_t len;
	int rc;

	memset(&a, 0, sizeof(a));
	memcpy(a.date, fs->amz, 8);
	snprintf(a.region, sizeof(a.region), "%s", out->region);
	snprintf(a.service, sizeof(a.service), "sts");
	snprintf(a.signed_headers, sizeof(a.signed_headers), "content-type;host;x-amz-date%s",
	    aws->session_token != NULL ? ";x-amz-security-token" : "");
	sigv4_signing_key(cred->secret, cred->secret_len, a.date, a.region, a.service, key);
	rc = sigv4_sign_authorization(&req, &a, aws->access_key_id, aws->access_key_id_len,
	    key, auth, cap, &len, &why);
	sodium_memzero(key, sizeof(key));
	return rc == SIGV4_OK ? AWSROLE_OK : rc == SIGV4_E_NOMEM ? AWSROLE_E_NOMEM :
	    AWSROLE_E_INVALID;
}

/* The head and body into out->wire. */
static int
awsrole_wire(const policy_credential_t *cred, int64_t now, const secmem_buf_t *body,
    awsrole_req_t *out)
{
	const policy_aws_t *aws = cred->aws;
	struct awsrole_fields fs = {.n = 0};
	secmem_buf_t w = {0};
	char hash[SIGV4_SIG_HEX + 1], auth[SIGV4_AUTH_MAX];
	time_t t = (time_t)now;
	struct tm tm;
	int rc;

	if (gmtime_r(&t, &tm) == NULL)
		return AWSROLE_E_INVALID;
	strftime(fs.amz, sizeof(fs.amz), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(fs.clen, sizeof(fs.clen), "%zu", body->len);
	awsrole_field(&fs, "Host", out->host, strlen(out->host));
	awsrole_field(&fs, "Content-Type", AWSROLE_CONTENT_TYPE, strlen(AWSROLE_CONTENT_TYPE));
	awsrole_field(&fs, "X-Amz-Date", fs.amz, strlen(fs.amz));
	if (aws->session_token != NULL)
		awsrole_field(&fs, "X-Amz-Security-Token", aws->session_token,
		    aws->session_token_len);
	awsrole_field(&fs, "Content-Length", fs.clen, strlen(fs.clen));
	sigv4_payload_hash(body->p, body->len, hash);
	if ((rc = awsrole_sign(cred, out, &fs, hash, auth, sizeof(auth))) != AWSROLE_OK)
		return rc;
	secmem_buf_puts(&w, "POST / HTTP/1.1\r\n");
	for (size_t i = 0; i < fs.n; i++) {
		secmem_buf_add(&w, fs.f[i].name, fs.f[i].name_len);
		secmem_buf_puts(&w, ": ");
		secmem_buf_add(&w, fs.f[i].value, fs.f[i].value_len);
		secmem_buf_puts(&w, "\r\n");
	}
	secmem_buf_puts(&w, "Authorization: ");
	secmem_buf_puts(&w, auth);
	secmem_buf_puts(&w, "\r\nUser-Agent: sealgate/" SEALGATE_VERSION "\r\n"
	    "Accept-Encoding: identity\r\nConnection: close\r\n\r\n");
	secmem_buf_add(&w, body->p, body->len);
	sodium_memzero(auth, sizeof(auth));
	if (w.failed) {
		secmem_wipe_free(w.p);
		return AWSROLE_E_NOMEM;
	}
	out->wire = w.p;
	out->wire_len = w.len;
	return AWSROLE_OK;
}

int
awsrole_request(const policy_credential_t *cred, int64_t now, awsrole_req_t *out)
{
	secmem_buf_t body = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	if (cred->aws == NULL || cred->aws->access_key_id == NULL || cred->secret == NULL)
		return AWSROLE_E_INVALID;
	if ((rc = awsrole_endpoint(cred->aws, out->host, out->region)) != AWSROLE_OK)
		return rc;
	rc = awsrole_form(cred, &body);
	if (rc == AWSROLE_OK)
		rc = awsrole_wire(cred, now, &body, out);
	secmem_wipe_free(body.p);
	if (rc != AWSROLE_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

void
awsrole_req_free(awsrole_req_t *r)
{
	secmem_wipe_free(r->wire);
	memset(r, 0, sizeof(*r));
}
