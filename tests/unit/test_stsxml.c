/*
 * test_stsxml.c — STS AssumeRole answers: the documented credentials and error shapes
 * (compact and pretty-printed), entities and character references, and what is refused:
 * malformed markup, entity and DOCTYPE tricks, mixed content, duplicates, missing
 * fields, bad values, and every bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stsxml.h"

#define NS	"xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\""
#define AKID	"ASIAIOSFODNN7EXAMPLE"
#define SECRET	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
#define TOKEN	"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW="
#define EXP_TXT	"2019-11-09T13:34:41Z"
#define EXP	1573306481

/* An AssumeRoleResponse around creds (the Credentials element's content). */
static char *
response(const char *creds)
{
	static char buf[STSXML_MAX_INPUT + 1024];

	snprintf(buf, sizeof(buf), "<AssumeRoleResponse " NS "><AssumeRoleResult>"
	    "<SourceIdentity>Alice</SourceIdentity><AssumedRoleUser>"
	    "<Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>"
	    "<AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId></AssumedRoleUser>"
	    "<Credentials>%s</Credentials><PackedPolicySize>6</PackedPolicySize>"
	    "</AssumeRoleResult><ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-"
	    "cbc7ccf896c7</RequestId></ResponseMetadata></AssumeRoleResponse>", creds);
	return buf;
}

#define CREDS	"<AccessKeyId>" AKID "</AccessKeyId><SecretAccessKey>" SECRET \
		"</SecretAccessKey><SessionToken>" TOKEN "</SessionToken><Expiration>" \
		EXP_TXT "</Expiration>"

static int
parse(const char *xml, stsxml_t *x)
{
	return stsxml_parse(xml, strlen(xml), x);
}

static void
assert_creds(const char *xml, const char *token)
{
	stsxml_t x;

	assert_int_equal(parse(xml, &x), STSXML_CREDENTIALS);
	assert_string_equal(x.akid, AKID);
	assert_int_equal(x.akid_len, strlen(AKID));
	assert_string_equal(x.secret, SECRET);
	assert_int_equal(x.secret_len, strlen(SECRET));
	assert_string_equal(x.token, token);
	assert_int_equal(x.token_len, strlen(token));
	assert_int_equal(x.expiration, EXP);
	stsxml_free(&x);
	assert_null(x.akid);
}

/* Refused, with rc and a reason that contains why. */
static void
assert_refused(const char *xml, size_t len, int rc, const char *why)
{
	stsxml_t x;

	assert_int_equal(stsxml_parse(xml, len, &x), rc);
	assert_null(x.akid);
	assert_null(x.secret);
	assert_null(x.token);
	assert_non_null(x.why);
	if (strstr(x.why, why) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", x.why, why);
	stsxml_free(&x);
}

static void
refused(const char *xml, const char *why)
{
	assert_refused(xml, strlen(xml), STSXML_E_FORMAT, why);
}

static void
test_credentials_compact(void **state)
{
	(void)state;
	assert_creds(response(CREDS), TOKEN);
}

static void
test_credentials_pretty_declaration_fraction(void **state)
{
	(void)state;
	assert_creds("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<AssumeRoleResponse " NS ">\n  <AssumeRoleResult>\n    <Credentials>\n"
	    "      <AccessKeyId>" AKID "</AccessKeyId>\n"
	    "      <SecretAccessKey>\n        " SECRET "\n      </SecretAccessKey>\n"
	    "      <SessionToken>" TOKEN "</SessionToken>\n"
	    "      <Expiration>2019-11-09T13:34:41.359Z</Expiration>\n"
	    "    </Credentials>\n  </AssumeRoleResult>\n  <ResponseMetadata/>\n"
	    "</AssumeRoleResponse>\n", TOKEN);
}

static void
test_character_references_decoded(void **state)
{
	(void)state;
	assert_creds(response("<AccessKeyId>" AKID "</AccessKeyId><SecretAccessKey>" SECRET
	    "</SecretAccessKey><SessionToken>ab&#x2B;cd&#47;e&#61;</SessionToken>"
	    "<Expiration>" EXP_TXT "</Expiration>"), "ab+cd/e=");
}

static void
test_error_response(void **state)
{
	stsxml_t x;

	(void)state;
	assert_int_equal(parse("<ErrorResponse " NS "><Error><Type>Sender</Type>"
	    "<Code>InvalidClientTokenId</Code><Message>The security token included in the "
	    "request is invalid &amp; &lt;old&gt;.</Message></Error><RequestId>x</RequestId>"
	    "</ErrorResponse>", &x), STSXML_ERROR);
	assert_string_equal(x.code, "InvalidClientTokenId");
	assert_string_equal(x.message, "The security token included in the request is "
	    "invalid & <old>.");
	assert_null(x.akid);
	stsxml_free(&x);
	/* a message: non-ASCII and controls shown as '?', cut to its bound */
	{
		char xml[2048], longmsg[600];

		memset(longmsg, 'm', sizeof(longmsg) - 1);
		longmsg[sizeof(longmsg) - 1] = '\0';
		snprintf(xml, sizeof(xml), "<ErrorResponse><Error><Code>AccessDenied</Code>"
		    "<Message>caf\xc3\xa9\t%s</Message></Error></ErrorResponse>", longmsg);
		assert_int_equal(parse(xml, &x), STSXML_ERROR);
		assert_int_equal(strlen(x.message), STSXML_MESSAGE_MAX);
		assert_memory_equal(x.message, "caf???mmm", 9);
		stsxml_free(&x);
	}
}

static void
test_error_without_code_or_other_root(void **state)
{
	(void)state;
	refused("<ErrorResponse><Error><Message>x</Message></Error></ErrorResponse>",
	    "without a Code");
	refused("<ErrorResponse><Error><Code>Bad Code</Code></Error></ErrorResponse>",
	    "bad error Code");
	refused("<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>a</Arn>"
	    "</GetCallerIdentityResult></GetCallerIdentityResponse>", "neither");
	/* the fields count only at their place */
	refused("<AssumeRoleResponse><Credentials>" CREDS "</Credentials>"
	    "</AssumeRoleResponse>", "credentials incomplete");
	refused("<Error><Code>AccessDenied</Code></Error>", "neither");
}

static void
test_missing_and_duplicate_fields(void **state)
{
	(void)state;
	refused(response("<AccessKeyId>" AKID "</AccessKeyId><SecretAccessKey>" SECRET
	    "</SecretAccessKey><Expiration>" EXP_TXT "</Expiration>"), "incomplete");
	refused(response(CREDS "<AccessKeyId>ASIAOTHERKEY00000000</AccessKeyId>"), "twice");
	refused(response(CREDS "<SessionToken/>"), "twice");
}

static void
test_bad_values(void **state)
{
	(void)state;
	refused(response("<AccessKeyId>ASIA-SHORT</AccessKeyId>"), "AccessKeyId");
	refused(response("<AccessKeyId>ASIA IOSFODNN7EXAMPL</AccessKeyId>"), "AccessKeyId");
	refused(response("<SecretAccessKey>a b</SecretAccessKey>"), "SecretAccessKey");
	refused(response("<SecretAccessKey></SecretAccessKey>"), "SecretAccessKey");
	refused(response("<SessionToken>a\nb</SessionToken>"), "SessionToken");
	refused(response("<SessionToken>tok&#x22;en</SessionToken>"), "SessionToken");
	refused(response("<Expiration>2019-02-29T00:00:00Z</Expiration>"), "Expiration");
	refused(response("<Expiration>2019-13-01T00:00:00Z</Expiration>"), "Expiration");
	refused(response("<Expiration>2019-11-09 13:34:41Z</Expiration>"), "Expiration");
	refused(response("<Expiration>2019-11-09T13:34:41</Expiration>"), "Expiration");
	refused(response("<Expiration>2019-11-09T13:34:41.Z</Expiration>"), "Expiration");
	refused(response("<Expiration>1969-12-31T23:59:59Z</Expiration>"), "Expiration");
}

static void
test_time(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(stsxml_time("1970-01-01T00:00:00Z", 20, &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(stsxml_time("2024-02-29T12:00:00.123456Z", 27, &t), 0);
	assert_int_equal(t, 1709208000);
	assert_int_equal(stsxml_time("2026-12-06T13:00:00Z", 20, &t), 0);
	assert_int_equal(t, 1796562000);
	assert_int_equal(stsxml_time("2100-02-29T00:00:00Z", 20, &t), -1);
	assert_int_equal(stsxml_time("2026-12-06T13:00:00Zx", 21, &t), -1);
}

static void
test_malformed_markup(void **state)
{
	(void)state;
	refused("", "element expected");
	refused("   ", "element expected");
	refused("AssumeRoleResponse", "element expected");
	refused(response(CREDS) + 1, "element expected");
	refused("<AssumeRoleResponse><AssumeRoleResult>", "not closed");
	refused("<AssumeRoleResponse></AssumeRoleResult>", "does not match");
	refused("<AssumeRoleResponse><a></b></AssumeRoleResponse>", "does not match");
	refused("<AssumeRoleResponse><a>text<b/></a></AssumeRoleResponse>", "mixed");
	refused("<AssumeRoleResponse><a><b/>text</a></AssumeRoleResponse>", "mixed");
	refused("<AssumeRoleResponse><a x=1/></AssumeRoleResponse>", "unquoted");
	refused("<AssumeRoleResponse><a x=\"<\"/></AssumeRoleResponse>", "markup in an attribute");
	refused("<AssumeRoleResponse><a x=\"&amp;\"/></AssumeRoleResponse>", "markup in an "
	    "attribute");
	refused("<AssumeRoleResponse><a x=\"1\"y=\"2\"/></AssumeRoleResponse>", "attribute");
	refused("<AssumeRoleResponse><a x=\"1", "unterminated");
	refused("<AssumeRoleResponse><1a/></AssumeRoleResponse>", "name expected");
	refused("<AssumeRoleResponse><a:b/></AssumeRoleResponse>", "attribute");
	refused("<AssumeRoleResponse/><AssumeRoleResponse/>", "after the document");
	refused("<AssumeRoleResponse/>x", "after the document");
	refused("\xef\xbb\xbf<AssumeRoleResponse/>", "element expected");
	refused("<AssumeRoleResponse><a>x\x01y</a></AssumeRoleResponse>", "control");
	refused("<?xml version=\"1.0\"<AssumeRoleResponse/>", "declaration");
	refused("<?xml version=\"1.0\"", "unterminated XML declaration");
	assert_refused("<AssumeRoleResponse>\0</AssumeRoleResponse>", 41, STSXML_E_FORMAT,
	    "control");
}

/* Entities beyond XML's five, DOCTYPE (entity definitions, external entities), comments,
 * CDATA, processing instructions, references to non-characters. */
static void
test_entity_tricks(void **state)
{
	(void)state;
	refused("<!DOCTYPE r [<!ENTITY x \"" AKID "\">]><AssumeRoleResponse/>", "DOCTYPE");
	refused("<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"file:///etc/passwd\">"
	    "<AssumeRoleResponse/>", "DOCTYPE");
	refused(response("<AccessKeyId>&x;</AccessKeyId>"), "predefined");
	refused(response("<AccessKeyId>&ext SYSTEM;</AccessKeyId>"), "entity");
	refused(response("<AccessKeyId>&amp</AccessKeyId>"), "unterminated entity");
	refused(response("<AccessKeyId>&#0;</AccessKeyId>"), "non-character");
	refused(response("<AccessKeyId>&#xD800;</AccessKeyId>"), "non-character");
	refused(response("<AccessKeyId>&#x110000;</AccessKeyId>"), "non-character");
	refused(response("<AccessKeyId>&#xFFFE;</AccessKeyId>"), "non-character");
	refused(response("<AccessKeyId>&#;</AccessKeyId>"), "character reference");
	refused(response("<AccessKeyId>&#x;</AccessKeyId>"), "character reference");
	refused(response("<AccessKeyId>&#12a;</AccessKeyId>"), "character reference");
	refused(response("<AccessKeyId>&#999999999;</AccessKeyId>"), "character reference");
	refused(response("<!-- c --><AccessKeyId>" AKID "</AccessKeyId>"), "comment");
	refused(response("<AccessKeyId><![CDATA[" AKID "]]></AccessKeyId>"), "CDATA");
	refused(response("<?pi x?>"), "processing instruction");
	refused("<?xml-stylesheet href=\"x\"?><AssumeRoleResponse/>", "processing");
}

static void
test_bounds(void **state)
{
	char *xml, tok[STSXML_MAX_TEXT + 2], creds[STSXML_MAX_TEXT + 512], name[80];

	(void)state;
	/* the longest token passes, one more byte is too big */
	memset(tok, 'A', STSXML_MAX_TEXT);
	tok[STSXML_MAX_TEXT] = '\0';
	snprintf(creds, sizeof(creds), "<AccessKeyId>" AKID "</AccessKeyId><SecretAccessKey>"
	    SECRET "</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>" EXP_TXT
	    "</Expiration>", tok);
	assert_creds(response(creds), tok);
	strcat(tok, "A");
	snprintf(creds, sizeof(creds), "<SessionToken>%s</SessionToken>", tok);
	assert_refused(response(creds), strlen(response(creds)), STSXML_E_TOO_BIG, "text too long");
	/* input over STSXML_MAX_INPUT */
	xml = malloc(STSXML_MAX_INPUT + 1);
	assert_non_null(xml);
	memset(xml, ' ', STSXML_MAX_INPUT + 1);
	assert_refused(xml, STSXML_MAX_INPUT + 1, STSXML_E_TOO_BIG, "too large");
	free(xml);
	/* nesting */
	refused("<a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a>", "neither");
	assert_refused("<a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a>", 63,
	    STSXML_E_TOO_BIG, "nested too deep");
	/* names */
	memset(name, 'n', STSXML_MAX_NAME + 1);
	name[STSXML_MAX_NAME + 1] = '\0';
	snprintf(creds, sizeof(creds), "<%s/>", name);
	assert_refused(creds, strlen(creds), STSXML_E_TOO_BIG, "name too long");
	/* an error code at its bound */
	memset(name, 'C', 70);
	name[70] = '\0';
	snprintf(creds, sizeof(creds), "<ErrorResponse><Error><Code>%s%s</Code></Error>"
	    "</ErrorResponse>", name, name);
	refused(creds, "bad error Code");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credentials_compact),
		cmocka_unit_test(test_credentials_pretty_declaration_fraction),
		cmocka_unit_test(test_character_references_decoded),
		cmocka_unit_test(test_error_response),
		cmocka_unit_test(test_error_without_code_or_other_root),
		cmocka_unit_test(test_missing_and_duplicate_fields),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_malformed_markup),
		cmocka_unit_test(test_entity_tricks),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
