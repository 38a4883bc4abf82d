/*
 * test_awsrole.c — the session policy compiled from an aws scope (exact JSON, the STS
 * limit, at policy load too), the STS endpoint per partition and region, the session
 * name, and the AssumeRole request: its form and a signature that verifies (sigv4) with
 * the long-term key and no other.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "awsrole.h"
#include "http.h"
#include "policy.h"
#include "sigv4.h"

#define REAL_AKID	"AKIAREALKEY000000001"
#define REAL_SECRET	"realSecretAccessKey/0123456789abcdefghij"
#define REAL_TOKEN	"real-session-token-0123456789"
#define NOW		1796558400	/* 2026-12-06T12:00:00Z */
#define ROLE		"arn:aws:iam::123456789012:role/sg-role"

/* A policy with one aws_sigv4 credential "c": its aws members after the keys. */
static policy_t *
load(const char *aws_members, bool token, policy_errors_t *errs)
{
	char json[16384];

	snprintf(json, sizeof(json), "{\"credentials\": {\"c\": {\"secret\": {\"value\": \""
	    REAL_SECRET "\"}, \"inject\": {\"type\": \"aws_sigv4\"}, \"hosts\": "
	    "[\"*.amazonaws.com\"], \"aws\": {\"access_key_id\": {\"value\": \"" REAL_AKID
	    "\"}%s, %s}}}}", token ? ", \"session_token\": {\"value\": \"" REAL_TOKEN "\"}" :
	    "", aws_members);
	return policy_load_buffer("/tmp/sg-awsrole.json", json, strlen(json), errs);
}

static policy_t *
load_ok(const char *aws_members, bool token)
{
	policy_errors_t errs;
	policy_t *p = load(aws_members, token, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "policy: %s\n", errs.msg[i]);
	policy_errors_free(&errs);
	assert_non_null(p);
	return p;
}

static const policy_aws_t *
aws_of(const policy_t *p)
{
	const policy_credential_t *c = policy_credential_find(p, "c");

	assert_non_null(c);
	assert_non_null(c->aws);
	return c->aws;
}

/* The compiled policy (at load and by awsrole_session_policy) is exactly want. */
static void
assert_session_policy(const char *aws_members, const char *want)
{
	policy_t *p = load_ok(aws_members, false);
	const policy_aws_t *a = aws_of(p);
	char *txt = NULL;
	size_t len = 0;

	assert_int_equal(awsrole_session_policy(a, &txt, &len), AWSROLE_OK);
	assert_string_equal(txt, want);
	assert_int_equal(len, strlen(want));
	assert_string_equal(a->assume_role.session_policy, want);
	assert_int_equal(a->assume_role.session_policy_len, strlen(want));
	free(txt);
	policy_unref(p);
}

static void
test_policy_services_only(void **state)
{
	(void)state;
	assert_session_policy("\"services\": [\"s3\", \"sqs\"], \"assume_role\": "
	    "{\"role_arn\": \"" ROLE "\"}",
	    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
	    "[\"s3:*\",\"sqs:*\"],\"Resource\":\"*\"}]}");
}

#define REGIONS "{\"StringEquals\":{\"aws:RequestedRegion\":[\"us-east-1\",\"eu-west-1\"]}}"

static void
test_policy_buckets_prefixes_regions(void **state)
{
	(void)state;
	assert_session_policy("\"services\": [\"sts\", \"s3\", \"monitoring\"], \"regions\": "
	    "[\"us-east-1\", \"eu-west-1\"], \"buckets\": [\"b1x\", \"b2y\"], "
	    "\"prefixes\": [\"b2y/up/\", \"b2y/x*y?$z\"], \"assume_role\": {\"role_arn\": \""
	    ROLE "\"}",
	    "{\"Version\":\"2012-10-17\",\"Statement\":["
	    "{\"Effect\":\"Allow\",\"Action\":[\"sts:*\",\"cloudwatch:*\"],\"Resource\":\"*\","
	    "\"Condition\":" REGIONS "},"
	    "{\"Effect\":\"Allow\",\"Action\":[\"s3:*\"],\"Resource\":[\"arn:aws:s3:::b1x\","
	    "\"arn:aws:s3:::b1x/*\"],\"Condition\":" REGIONS "},"
	    "{\"Effect\":\"Allow\",\"Action\":[\"s3:*\"],\"Resource\":[\"arn:aws:s3:::b2y/up/*\","
	    "\"arn:aws:s3:::b2y/x${*}y${?}${$}z*\"],\"Condition\":" REGIONS "},"
	    "{\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],\"Resource\":"
	    "[\"arn:aws:s3:::b2y\"],\"Condition\":{\"StringLike\":{\"s3:prefix\":[\"up/*\","
	    "\"x${*}y${?}${$}z*\"]},\"StringEquals\":{\"aws:RequestedRegion\":[\"us-east-1\","
	    "\"eu-west-1\"]}}}]}");
}

static void
test_policy_partition_and_s3_alone(void **state)
{
	(void)state;
	assert_session_policy("\"services\": [\"s3\"], \"buckets\": [\"bkt\"], "
	    "\"assume_role\": {\"role_arn\": \"arn:aws-cn:iam::123456789012:role/r\"}",
	    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
	    "[\"s3:*\"],\"Resource\":[\"arn:aws-cn:s3:::bkt\",\"arn:aws-cn:s3:::bkt/*\"]}]}");
}

/* Non-ASCII key prefixes leave as \u escapes: the document stays in STS's range. */
static void
test_policy_ascii_only(void **state)
{
	(void)state;
	assert_session_policy("\"services\": [\"s3\"], \"buckets\": [\"bkt\"], \"prefixes\": "
	    "[\"bkt/caf\\u00E9/\\u2603\"], \"assume_role\": {\"role_arn\": \"" ROLE "\"}",
	    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
	    "[\"s3:*\"],\"Resource\":[\"arn:aws:s3:::bkt/caf\\u00E9/\\u2603*\"]},"
	    "{\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\"],\"Resource\":"
	    "[\"arn:aws:s3:::bkt\"],\"Condition\":{\"StringLike\":{\"s3:prefix\":"
	    "[\"caf\\u00E9/\\u2603*\"]}}}]}");
}

/* Prefixes enough to pass 2048 characters: refused at load, located, with the length. */
static void
test_policy_too_long_refused_at_load(void **state)
{
	char members[8192], *o = members;
	policy_errors_t errs;
	policy_t *p;
	bool found = false;

	(void)state;
	o += sprintf(o, "\"services\": [\"s3\"], \"buckets\": [\"bkt\"], \"prefixes\": [");
	for (int i = 0; i < 40; i++)
		o += sprintf(o, "%s\"bkt/some-rather-long-prefix-%02d/\"", i ? ", " : "", i);
	sprintf(o, "], \"assume_role\": {\"role_arn\": \"" ROLE "\"}");
	p = load(members, false, &errs);
	assert_null(p);
	for (size_t i = 0; i < errs.n; i++)
		found |= strstr(errs.msg[i], "credentials.c.aws.assume_role: the session policy "
		    "compiled from services, regions, buckets and prefixes is ") != NULL &&
		    strstr(errs.msg[i], "STS takes at most 2048") != NULL;
	assert_true(found);
	policy_errors_free(&errs);
	/* the same scope without assume_role is fine: the limit is STS's */
	sprintf(members + (o - members), "]");
	p = load_ok(members, false);
	assert_null(aws_of(p)->assume_role.session_policy);
	policy_unref(p);
}

/* Right at the limit: 2048 passes, 2049 does not (a prefix's length tunes it). */
static void
test_policy_limit_exact(void **state)
{
	policy_aws_t a;
	char *buckets[] = {"bkt"}, *services[] = {"s3"}, pre[2100], *prefixes[] = {pre};
	char *txt;
	size_t len, base;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.services = services;
	a.nservices = 1;
	a.buckets = buckets;
	a.nbuckets = 1;
	a.prefixes = prefixes;
	a.nprefixes = 1;
	a.assume_role.set = true;
	a.assume_role.role_arn = (char *)ROLE;
	strcpy(pre, "bkt/");
	assert_int_equal(awsrole_session_policy(&a, &txt, &base), AWSROLE_OK);
	free(txt);
	/* the prefix appears twice: each added character adds two */
	memset(pre + 4, 'k', (AWSROLE_POLICY_MAX - base) / 2);
	pre[4 + (AWSROLE_POLICY_MAX - base) / 2] = '\0';
	assert_int_equal(awsrole_session_policy(&a, &txt, &len), AWSROLE_OK);
	assert_true(len == AWSROLE_POLICY_MAX || len == AWSROLE_POLICY_MAX - 1);
	free(txt);
	strcat(pre, "kk");
	assert_int_equal(awsrole_session_policy(&a, &txt, &len), AWSROLE_E_TOO_LONG);
	assert_null(txt);
	assert_true(len > AWSROLE_POLICY_MAX);
}

static void
assert_endpoint(const char *members, const char *host, const char *region)
{
	policy_t *p = load_ok(members, false);
	char h[AWSROLE_HOST_MAX], r[SIGV4_MAX_REGION + 1];

	assert_int_equal(awsrole_endpoint(aws_of(p), h, r), AWSROLE_OK);
	assert_string_equal(h, host);
	assert_string_equal(r, region);
	policy_unref(p);
}

static void
test_endpoints(void **state)
{
	(void)state;
	assert_endpoint("\"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \"" ROLE "\"}",
	    "sts.amazonaws.com", "us-east-1");
	assert_endpoint("\"services\": [\"s3\"], \"regions\": [\"eu-west-1\"], \"assume_role\": "
	    "{\"role_arn\": \"" ROLE "\"}", "sts.eu-west-1.amazonaws.com", "eu-west-1");
	assert_endpoint("\"services\": [\"s3\"], \"regions\": [\"eu-west-1\", \"us-east-2\"], "
	    "\"assume_role\": {\"role_arn\": \"" ROLE "\"}", "sts.amazonaws.com", "us-east-1");
	assert_endpoint("\"services\": [\"s3\"], \"assume_role\": {\"role_arn\": "
	    "\"arn:aws-cn:iam::123456789012:role/r\"}", "sts.cn-north-1.amazonaws.com.cn",
	    "cn-north-1");
	assert_endpoint("\"services\": [\"s3\"], \"regions\": [\"cn-northwest-1\"], "
	    "\"assume_role\": {\"role_arn\": \"arn:aws-cn:iam::123456789012:role/r\"}",
	    "sts.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1");
	assert_endpoint("\"services\": [\"s3\"], \"assume_role\": {\"role_arn\": "
	    "\"arn:aws-us-gov:iam::123456789012:role/r\"}", "sts.us-gov-west-1.amazonaws.com",
	    "us-gov-west-1");
}

static void
test_session_name(void **state)
{
	char out[AWSROLE_SESSION_NAME_MAX + 1], name[100];

	(void)state;
	awsrole_session_name("aws-dev.1_x", out);
	assert_string_equal(out, "sealgate-aws-dev.1_x");
	memset(name, 'n', 99);
	name[99] = '\0';
	awsrole_session_name(name, out);
	assert_int_equal(strlen(out), AWSROLE_SESSION_NAME_MAX);
	assert_memory_equal(out, "sealgate-nnn", 12);
	awsrole_session_name("a b/c", out);
	assert_string_equal(out, "sealgate-a-b-c");
}

/* --- the request ------------------------------------------------------------------- */

struct wire {
	http_head_t head;
	const char *body;
	size_t body_len;
};

static void
parse_wire(const awsrole_req_t *r, struct wire *w)
{
	const char *end = strstr(r->wire, "\r\n\r\n"), *why = NULL;
	http_parser p;

	assert_non_null(end);
	memset(&w->head, 0, sizeof(w->head));
	http_parser_init(&p, HTTP_REQUEST);
	assert_int_equal(http_head_parse(&p, r->wire, (size_t)(end + 4 - r->wire), &w->head,
	    HTTP_GET, &why), 0);
	w->body = end + 4;
	w->body_len = r->wire_len - (size_t)(w->body - r->wire);
}

static const char *
field(const struct wire *w, const char *name)
{
	const http_field_t *f = http_head_get(&w->head, name);

	return f ? f->value : NULL;
}

/* A form parameter, decoded ("" when absent). */
static void
param(const struct wire *w, const char *name, char *out, size_t cap)
{
	const char *p = w->body, *end = w->body + w->body_len;
	size_t nl = strlen(name), n;

	out[0] = '\0';
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;

		if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
			assert_int_equal(sigv4_query_decode(p + nl + 1, (size_t)(e - p - nl - 1),
			    out, cap - 1, &n), 0);
			out[n] = '\0';
			return;
		}
		p = amp ? amp + 1 : end;
	}
}

/* The signature verifies with secret over the received fields and body. */
static int
verify(const struct wire *w, const char *secret, const char *body, size_t body_len)
{
	const char *auth = field(w, "Authorization"), *why = NULL;
	char hash[SIGV4_SIG_HEX + 1];
	sigv4_auth_t a;
	uint8_t k[SIGV4_KEY_LEN];
	sigv4_request_t req;

	assert_non_null(auth);
	assert_int_equal(sigv4_parse_authorization(auth, strlen(auth), &a, &why), SIGV4_OK);
	sigv4_payload_hash(body, body_len, hash);
	req = (sigv4_request_t){"POST", "/", 1, w->head.fields, w->head.nfields, hash, 0};
	sigv4_signing_key(secret, strlen(secret), a.date, a.region, a.service, k);
	return sigv4_verify(&req, &a, k, &why);
}

static void
test_request_signed_with_long_term_key(void **state)
{
	policy_t *p = load_ok("\"services\": [\"s3\", \"sqs\"], \"regions\": [\"us-west-2\"], "
	    "\"assume_role\": {\"role_arn\": \"" ROLE "\", \"external_id\": \"ext-123\", "
	    "\"duration\": \"15m\"}", true);
	const policy_credential_t *c = policy_credential_find(p, "c");
	const char *why = NULL;
	char v[4096], *tampered;
	awsrole_req_t r;
	struct wire w;
	sigv4_auth_t a;

	(void)state;
	assert_int_equal(awsrole_request(c, NOW, &r), AWSROLE_OK);
	assert_string_equal(r.host, "sts.us-west-2.amazonaws.com");
	assert_string_equal(r.region, "us-west-2");
	parse_wire(&r, &w);
	assert_int_equal(w.head.method, HTTP_POST);
	assert_string_equal(w.head.target, "/");
	assert_string_equal(field(&w, "Host"), "sts.us-west-2.amazonaws.com");
	assert_string_equal(field(&w, "X-Amz-Date"), "20261206T120000Z");
	assert_string_equal(field(&w, "X-Amz-Security-Token"), REAL_TOKEN);
	assert_string_equal(field(&w, "Content-Type"),
	    "application/x-www-form-urlencoded; charset=utf-8");
	assert_string_equal(field(&w, "Connection"), "close");
	snprintf(v, sizeof(v), "%zu", w.body_len);
	assert_string_equal(field(&w, "Content-Length"), v);
	param(&w, "Action", v, sizeof(v));
	assert_string_equal(v, "AssumeRole");
	param(&w, "Version", v, sizeof(v));
	assert_string_equal(v, "2011-06-15");
	param(&w, "RoleArn", v, sizeof(v));
	assert_string_equal(v, ROLE);
	param(&w, "RoleSessionName", v, sizeof(v));
	assert_string_equal(v, "sealgate-c");
	param(&w, "DurationSeconds", v, sizeof(v));
	assert_string_equal(v, "900");
	param(&w, "ExternalId", v, sizeof(v));
	assert_string_equal(v, "ext-123");
	param(&w, "Policy", v, sizeof(v));
	assert_string_equal(v, c->aws->assume_role.session_policy);
	assert_null(strchr(w.body, '{'));	/* the JSON travels percent-encoded */
	assert_int_equal(sigv4_parse_authorization(field(&w, "Authorization"),
	    strlen(field(&w, "Authorization")), &a, &why), SIGV4_OK);
	assert_string_equal(a.akid, REAL_AKID);
	assert_string_equal(a.region, "us-west-2");
	assert_string_equal(a.service, "sts");
	assert_string_equal(a.signed_headers, "content-type;host;x-amz-date;x-amz-security-token");
	assert_int_equal(verify(&w, REAL_SECRET, w.body, w.body_len), SIGV4_OK);
	assert_int_equal(verify(&w, "anotherSecretAccessKey/0123456789abcdefghi", w.body,
	    w.body_len), SIGV4_E_MISMATCH);
	tampered = strndup(w.body, w.body_len);
	tampered[w.body_len - 1] ^= 1;
	assert_int_equal(verify(&w, REAL_SECRET, tampered, w.body_len), SIGV4_E_MISMATCH);
	free(tampered);
	http_head_clear(&w.head);
	awsrole_req_free(&r);
	assert_null(r.wire);
	policy_unref(p);
}

static void
test_request_without_token_or_external_id(void **state)
{
	policy_t *p = load_ok("\"services\": [\"s3\"], \"assume_role\": {\"role_arn\": \""
	    ROLE "\"}", false);
	const policy_credential_t *c = policy_credential_find(p, "c");
	const char *why = NULL;
	char v[256];
	awsrole_req_t r;
	struct wire w;
	sigv4_auth_t a;

	(void)state;
	assert_int_equal(awsrole_request(c, NOW, &r), AWSROLE_OK);
	assert_string_equal(r.host, "sts.amazonaws.com");
	parse_wire(&r, &w);
	assert_null(field(&w, "X-Amz-Security-Token"));
	param(&w, "ExternalId", v, sizeof(v));
	assert_string_equal(v, "");
	assert_null(strstr(w.body, "ExternalId"));
	param(&w, "DurationSeconds", v, sizeof(v));
	assert_string_equal(v, "3600");
	assert_int_equal(sigv4_parse_authorization(field(&w, "Authorization"),
	    strlen(field(&w, "Authorization")), &a, &why), SIGV4_OK);
	assert_string_equal(a.region, "us-east-1");
	assert_string_equal(a.signed_headers, "content-type;host;x-amz-date");
	assert_int_equal(verify(&w, REAL_SECRET, w.body, w.body_len), SIGV4_OK);
	http_head_clear(&w.head);
	awsrole_req_free(&r);
	policy_unref(p);
}

static void
test_request_needs_assume_role(void **state)
{
	policy_t *p = load_ok("\"services\": [\"s3\"]", false);
	awsrole_req_t r;

	(void)state;
	assert_int_equal(awsrole_request(policy_credential_find(p, "c"), NOW, &r),
	    AWSROLE_E_INVALID);
	assert_null(r.wire);
	policy_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_services_only),
		cmocka_unit_test(test_policy_buckets_prefixes_regions),
		cmocka_unit_test(test_policy_partition_and_s3_alone),
		cmocka_unit_test(test_policy_ascii_only),
		cmocka_unit_test(test_policy_too_long_refused_at_load),
		cmocka_unit_test(test_policy_limit_exact),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_session_name),
		cmocka_unit_test(test_request_signed_with_long_term_key),
		cmocka_unit_test(test_request_without_token_or_external_id),
		cmocka_unit_test(test_request_needs_assume_role),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
