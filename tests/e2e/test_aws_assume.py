"""aws.assume_role end to end: sealgate calls STS AssumeRole itself (signed with the
long-term key) and signs the sandbox's requests with the temporary credentials.

Topology (loopback): the AWS stand-in (aws_standin.AwsStandin, in this process) on
127.0.0.7:443 serves S3 and STS at the real names (sealgate's upstream.resolve points them
there — it maps names to addresses, the port stays 443, hence this address of its own and
root, as the namespace tests need too; the stand-in's certificate is from the test CA
sealgate trusts); sealgate's proxy
and metadata responder on 127.0.0.1; the "sandbox" is this process on 127.0.0.1. Its AWS
credentials come from the metadata responder (IMDSv2), so they are the derived ones
(ASIA… id, derived secret, the handle as session token). Requests are signed here by
boto3 (through sealgate's proxy) or by the reference signer (aws_sigv4_ref) and sent raw
through a CONNECT, where the exact answer bytes matter.

Credentials of the one policy (each test uses its own, so cache states do not mix):
  aws-role     assume_role, 1 h: the cache, the compiled session policy, ExternalId
  aws-scrub    assume_role, 1 h: the temporary credentials echoed back are scrubbed
  aws-refresh  assume_role, 15 min; the stand-in's clock 780 s behind, so the set it
               issues expires 120 s after it is issued by sealgate's clock: refresh due
               at once (5 minutes before expiry), used meanwhile
  aws-expire   the same with 870 s: a set with 30 s left is not handed to a new request,
               which waits for a new one
  aws-badkey   a long-term access key id the stand-in does not know: STS refuses
"""
import http.client
import json
import os
import time

import aws_sigv4_ref as ref
import aws_standin
import sgtest
from aws_standin import AwsStandin
from sgtest import Sealgate, assert_error

STANDIN_ADDR = "127.0.0.7"          # port 443: sealgate reaches STS and S3 there
REGION = "us-east-1"
VHOST = "mybucket.s3.us-east-1.amazonaws.com"
ROLE_ARN = "arn:aws:iam::%s:role/sealgate-e2e" % aws_standin.ACCOUNT
EXTERNAL_ID = "ext-e2e-42"
BAD_AKID = "AKIAWRONGKEY00000001"
REGION_COND = {"StringEquals": {"aws:RequestedRegion": [REGION]}}
# what sealgate must ask for, written out here from docs/policy.md's rules
SESSION_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sts:*"], "Resource": "*", "Condition": REGION_COND},
    {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::mybucket/assumed/*"],
     "Condition": REGION_COND},
    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::mybucket"],
     "Condition": {"StringLike": {"s3:prefix": ["assumed/*"]},
                   "StringEquals": {"aws:RequestedRegion": [REGION]}}}]},
    separators=(",", ":"))
NAMES = ("aws-role", "aws-scrub", "aws-refresh", "aws-expire", "aws-badkey")


def policy(sa):
    def cred(duration, akid=None):
        return {"secret": {"value": sa.secret}, "inject": {"type": "aws_sigv4"},
                "hosts": ["*.amazonaws.com"],
                "aws": {"access_key_id": {"value": akid or sa.access_key_id},
                        "services": ["s3", "sts"], "regions": [REGION],
                        "buckets": ["mybucket"], "prefixes": ["mybucket/assumed/"],
                        "assume_role": {"role_arn": ROLE_ARN, "external_id": EXTERNAL_ID,
                                        "duration": duration}}}
    p = sgtest.base_policy(resolve=sa.resolve_map())
    p["egress"]["allow_private"].append(sa.host + "/32")
    p["credentials"] = {"aws-role": cred("1h"), "aws-scrub": cred("1h"),
                        "aws-refresh": cred("15m"), "aws-expire": cred("15m"),
                        "aws-badkey": cred("1h", BAD_AKID)}
    p["sandboxes"] = {"awssb": {"addresses": ["127.0.0.1/32"], "credentials": list(NAMES)}}
    return p


def imds_credentials(sg, role):
    """(AccessKeyId, SecretAccessKey, Token) for role from the metadata responder, IMDSv2
    as an SDK asks, from the sandbox's address."""
    c = http.client.HTTPConnection(*sg.metadata, timeout=10, source_address=("127.0.0.1", 0))
    try:
        c.request("PUT", "/latest/api/token",
                  headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
        r = c.getresponse()
        token = r.read().decode()
        assert r.status == 200, (r.status, token)
        c.request("GET", "/latest/meta-data/iam/security-credentials/" + role,
                  headers={"X-aws-ec2-metadata-token": token})
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
    finally:
        c.close()
    j = json.loads(body)
    return j["AccessKeyId"], j["SecretAccessKey"], j["Token"]


class AssumeRoleTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sa = AwsStandin(cls, host=STANDIN_ADDR, port=443, buckets=("mybucket",),
                            queues=())
        cls.sg = Sealgate(cls, policy=policy(cls.sa))

    def setUp(self):
        self.sa.clock_offset = 0.0

    # --- helpers ------------------------------------------------------------------------

    def s3(self, creds, method, key, body=b""):
        """One S3 request signed (reference signer) with creds, through sealgate: the
        Response (raw_head and body as the sandbox got them)."""
        akid, secret, token = creds
        path = "/" + key
        amz = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        hs, _, _ = ref.sign_headers(method, path, [], [("Host", VHOST)], ref.sha256_hex(body),
                                    akid, secret, REGION, "s3", amz, token)
        req = sgtest.build_request(method, path, VHOST, [h for h in hs
                                                         if h[0].lower() != "host"], body)
        stage, resp = sgtest.request_via_connect(self.sg, VHOST + ":443", req, method=method,
                                                 timeout=30)
        self.assertEqual(stage, "inner", resp)
        return resp

    def assume_records(self, name):
        return [r for r in self.sa.records if r["operation"] == "AssumeRole" and
                r["params"].get("RoleSessionName") == "sealgate-" + name]

    def s3_records(self, since):
        return [r for r in self.sa.records[since:] if r["service"] == "s3"]

    def audit(self, event, name):
        return [a for a in sgtest.audit_lines(self.sg) if a.get("event") == event and
                a.get("credential") == name]

    def metric(self, name):
        return sgtest.metrics_value(self.sg, name) or 0.0

    # --- tests ----------------------------------------------------------------------------

    def test_boto3_signed_by_assumed_credentials_one_call(self):
        """boto3 through sealgate: PutObject, GetObject, HeadObject and STS
        GetCallerIdentity (a body-signed request) reach the stand-in signed by the
        credentials AssumeRole issued (one call, cached: the caller is the assumed role),
        and that call carried the compiled session policy and the external id, signed
        with the long-term key."""
        import boto3
        import botocore.config
        akid, secret, token = imds_credentials(self.sg, "aws-role")
        fetches = self.metric("sealgate_assume_role_fetches_total")
        n = len(self.sa.records)
        s3 = boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret,
                                   aws_session_token=token, region_name=REGION).client(
            "s3", verify=self.sg.ca_cert, config=botocore.config.Config(
                proxies={"https": self.sg.proxy_url}, retries={"max_attempts": 1},
                s3={"addressing_style": "virtual"}))
        s3.put_object(Bucket="mybucket", Key="assumed/a.txt", Body=b"assumed hello")
        self.assertEqual(s3.get_object(Bucket="mybucket", Key="assumed/a.txt")["Body"].read(),
                         b"assumed hello")
        s3.head_object(Bucket="mybucket", Key="assumed/a.txt")
        # a signed body (the query protocol: held, hashed, then signed as the role)
        me = boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret,
                                   aws_session_token=token, region_name=REGION).client(
            "sts", verify=self.sg.ca_cert, config=botocore.config.Config(
                proxies={"https": self.sg.proxy_url}, retries={"max_attempts": 1}))
        self.assertEqual(me.get_caller_identity()["Arn"], "arn:aws:sts::%s:assumed-role/"
                         "sealgate-e2e/sealgate-aws-role" % aws_standin.ACCOUNT)
        sts = self.assume_records("aws-role")
        self.assertEqual(len(sts), 1, sts)
        rec = sts[0]
        self.assertEqual((rec["status"], rec["verified"], rec["credential"],
                          rec["access_key_id"], rec["host"].split(":")[0]),
                         (200, True, "primary", self.sa.access_key_id,
                          "sts.us-east-1.amazonaws.com"))
        self.assertEqual(rec["params"], {"RoleArn": ROLE_ARN,
                                         "RoleSessionName": "sealgate-aws-role",
                                         "DurationSeconds": "3600",
                                         "ExternalId": EXTERNAL_ID, "Policy": SESSION_POLICY})
        ops = self.s3_records(n) + [r for r in self.sa.records[n:]
                                    if r["operation"] == "GetCallerIdentity"]
        self.assertEqual([r["operation"] for r in ops], ["PutObject", "GetObject",
                                                         "HeadObject", "GetCallerIdentity"])
        for r in ops:
            self.assertEqual((r["status"], r["verified"], r["credential"], r["access_key_id"]),
                             (200, True, "assumed", rec["issued_access_key_id"]), r)
            self.assertLess(rec["seq"], r["seq"])
        self.assertEqual(self.metric("sealgate_assume_role_fetches_total") - fetches, 1)
        lines = self.audit("assume_role", "aws-role")
        self.assertEqual([(a["status"], a.get("error")) for a in lines], [(200, None)], lines)
        self.assertTrue(lines[0]["detail"].startswith("assumed: expires "), lines[0])

    def test_temporary_credentials_scrubbed(self):
        """The temporary credentials (and the long-term ones) echoed by the upstream reach
        the sandbox as the derived access key id and the handle; none of them is in the
        answer's bytes, the log or the audit trail."""
        creds = imds_credentials(self.sg, "aws-scrub")
        self.sa.put_object("mybucket", "assumed/echo.txt", b"nothing yet")
        n = len(self.sa.records)
        self.assertEqual(self.s3(creds, "GET", "assumed/echo.txt").status, 200)
        akid = self.s3_records(n)[0]["access_key_id"]
        issued = {c.access_key_id: c for c in self.sa.issued()}[akid]
        echo = ("AKID=%s\nSECRET=%s\nTOKEN=%s\nLONG_AKID=%s\nLONG_SECRET=%s\n" % (
            issued.access_key_id, issued.secret, issued.token, self.sa.access_key_id,
            self.sa.secret)).encode()
        self.sa.put_object("mybucket", "assumed/echo.txt", echo, content_type="text/plain")
        r = self.s3(creds, "GET", "assumed/echo.txt")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body.decode(), "AKID=%s\nSECRET=%s\nTOKEN=%s\nLONG_AKID=%s\n"
                         "LONG_SECRET=%s\n" % (creds[0], creds[2], creds[2], creds[0],
                                               creds[2]))
        everything = r.raw_head + r.body
        log = self.sg.log().encode()
        with open(os.path.join(self.sg.dir, "audit.log"), "rb") as f:
            audit = f.read()
        for c in self.sa.issued():
            for s in (c.access_key_id, c.secret, c.token):
                self.assertNotIn(s.encode(), everything)
            for s in (c.secret, c.token):
                self.assertNotIn(s.encode(), log)
                self.assertNotIn(s.encode(), audit)
        for s in (self.sa.access_key_id, self.sa.secret):
            self.assertNotIn(s.encode(), everything)
            self.assertNotIn(s.encode(), log)
            self.assertNotIn(s.encode(), audit)

    def test_refreshed_ahead_of_expiry_without_waiting(self):
        """A set due for refresh (5 minutes before its expiry) still signs the request
        that finds it; that request starts the refresh, and later ones use the new set."""
        creds = imds_credentials(self.sg, "aws-refresh")
        self.sa.put_object("mybucket", "assumed/r.txt", b"r")
        self.sa.clock_offset = -780        # issued sets expire 120 s from now, our clock
        refreshes = self.metric("sealgate_assume_role_refreshes_total")
        n = len(self.sa.records)
        self.assertEqual(self.s3(creds, "GET", "assumed/r.txt").status, 200)
        first = self.assume_records("aws-refresh")
        self.assertEqual(len(first), 1)
        akid1 = first[0]["issued_access_key_id"]
        self.assertEqual(self.s3(creds, "GET", "assumed/r.txt").status, 200)
        self.assertEqual([r["access_key_id"] for r in self.s3_records(n)], [akid1, akid1])
        sgtest.wait_for(lambda: [a for a in self.audit("assume_role", "aws-refresh")
                                 if a.get("detail", "").startswith("refreshed")],
                        what="the refresh of aws-refresh")
        second = self.assume_records("aws-refresh")
        self.assertEqual(len(second), 2, second)
        akid2 = second[1]["issued_access_key_id"]
        self.assertNotEqual(akid1, akid2)
        self.assertEqual(self.metric("sealgate_assume_role_refreshes_total") - refreshes, 1)
        self.assertEqual(self.s3(creds, "GET", "assumed/r.txt").status, 200)
        self.assertEqual([r["access_key_id"] for r in self.s3_records(n)],
                         [akid1, akid1, akid2])
        # the new set is due at once too: that request started the next refresh; let it
        # end here rather than during another test
        sgtest.wait_for(lambda: len([a for a in self.audit("assume_role", "aws-refresh")
                                     if a.get("detail", "").startswith("refreshed")]) == 2,
                        what="the second refresh of aws-refresh")

    def test_expired_set_waits_for_a_new_one(self):
        """A set with less than a minute left serves only the request that waited for it;
        the next request waits for a new AssumeRole and is signed by that one."""
        creds = imds_credentials(self.sg, "aws-expire")
        self.sa.put_object("mybucket", "assumed/x.txt", b"x")
        self.sa.clock_offset = -870        # issued sets expire 30 s from now, our clock
        n = len(self.sa.records)
        self.assertEqual(self.s3(creds, "GET", "assumed/x.txt").status, 200)
        self.assertEqual(self.s3(creds, "GET", "assumed/x.txt").status, 200)
        sts = self.assume_records("aws-expire")
        self.assertEqual(len(sts), 2, sts)
        self.assertEqual([r["access_key_id"] for r in self.s3_records(n)],
                         [sts[0]["issued_access_key_id"], sts[1]["issued_access_key_id"]])
        self.assertLess(sts[1]["seq"], self.s3_records(n)[1]["seq"])

    def test_sts_refusal_is_502_and_nothing_reaches_s3(self):
        """STS refuses the long-term key: the request is answered 502 sts_error naming
        STS's code (no secret), never forwarded; the failure is logged, audited, counted."""
        creds = imds_credentials(self.sg, "aws-badkey")
        failures = self.metric("sealgate_assume_role_failures_total")
        n = len(self.sa.records)
        r = self.s3(creds, "GET", "assumed/x.txt")
        j = assert_error(self, r, 502, "sts_error")
        self.assertIn("InvalidClientTokenId", j["message"])
        self.assertIn("aws-badkey", j["message"])
        for s in (BAD_AKID, self.sa.secret, self.sa.access_key_id):
            self.assertNotIn(s, j["message"])
        recs = [x for x in self.sa.records[n:] if x["access_key_id"] == BAD_AKID]
        # refused before the stand-in reads the operation
        self.assertEqual([(x["service"], x["error"]) for x in recs],
                         [("sts", "InvalidClientTokenId")])
        self.assertIn("Action=AssumeRole&", recs[0]["body"])
        self.assertIn("RoleSessionName=sealgate-aws-badkey&", recs[0]["body"])
        self.assertEqual(self.s3_records(n), [])
        self.assertGreaterEqual(self.metric("sealgate_assume_role_failures_total") - failures, 1)
        sgtest.wait_for(lambda: self.audit("assume_role", "aws-badkey") and
                        [a for a in sgtest.audit_lines(self.sg)
                         if a.get("error") == "sts_error"], what="the audit lines")
        line = self.audit("assume_role", "aws-badkey")[0]
        self.assertEqual((line["status"], line["error"]), (403, "InvalidClientTokenId"))
        log = self.sg.log()
        self.assertIn("assume_role for credential aws-badkey", log)
        self.assertNotIn(BAD_AKID, log)
        self.assertNotIn(self.sa.secret, log)


if __name__ == "__main__":
    import unittest
    unittest.main()
