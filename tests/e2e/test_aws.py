"""AWS end to end: unmodified AWS clients in a sandbox that holds no AWS key, through
sealgate, to a stand-in for AWS that knows only the REAL key.

Topology (aws_sandbox.AwsSandbox, proxied): the sandbox namespace's only way out is
sealgate's proxy in the gateway namespace; sealgate's metadata responder answers at
169.254.169.254 (and, in AwsContainerTest, at 169.254.170.2: listen.metadata_aws); the
stand-in (aws_standin.AwsStandin) serves S3, STS and SQS at the real AWS names on :443 in
a third namespace, which sealgate resolves with upstream.resolve. The stand-in holds the
real access key id, secret and session token and verifies every signature with them
(botocore's signer for heads and presigned URLs, its own code for chunk signatures); the
sealgate policy holds the same as the aws_sigv4 credential "aws-dev" (single region
us-east-1, bucket mybucket, key prefix sb/). The sandbox's environment is exactly what
the guest init script writes from /v1/env (guest_env): proxy, CA, AWS_REGION /
AWS_DEFAULT_REGION (one region: no --region anywhere), AWS_CA_BUNDLE and, with
metadata_aws, the container-credentials URI and token. Its clients find derived
credentials (ASIA..., a derived secret, a handle as session token) through the default
chain; what reached "AWS" is read from the stand-in's records.

  AwsImdsTest       credentials from IMDSv2: the AWS CLI (cp small / multipart up and
                    down, sts), boto3 (S3, STS's body-hash signing, SQS JSON 1.0,
                    presigned GET v4 fetched with curl, SigV2 refused), aws-chunked
                    uploads hand-signed in the sandbox (aws_guest.py) re-signed chunk by
                    chunk, replayed / reordered / tampered chunks cut, scope refusals
                    before anything leaves, echoed real values scrubbed, no real value
                    in any output, log or audit line
  AwsContainerTest  credentials from the container endpoint (169.254.170.2): the CLI
                    (cp small / multipart up and down, sts) and boto3
"""
import base64
import hashlib
import json
import os
import re
import urllib.parse

import aws_guest
import aws_sandbox
import aws_sigv4_ref as ref
import aws_standin
import sgtest
from sgnetns import sh

E2E = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(E2E, "aws_guest.py")
REGION = "us-east-1"
BUCKET = "mybucket"
VHOST = "%s.s3.%s.amazonaws.com" % (BUCKET, REGION)
STS_HOST = "sts.%s.amazonaws.com" % REGION
CONTAINER_ADDR = "169.254.170.2"
# The real credentials: fresh for each run, known to the stand-in and the policy only.
REAL_AKID = aws_standin.new_access_key_id("ASIA")
REAL_SECRET = aws_standin.new_secret()
REAL_TOKEN = "IQoJb3JpZ2luX2VjE" + base64.b64encode(os.urandom(180)).decode()
REAL_ARN = "arn:aws:iam::%s:user/sealgate-test" % aws_standin.ACCOUNT
REAL_VALUES = {"access key id": REAL_AKID, "secret": REAL_SECRET, "session token": REAL_TOKEN}
AKID_RE = re.compile(r"ASIA[A-Z2-7]{16}")
HANDLE_RE = re.compile(r"sgh1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+")
SMALL = sgtest.payload(3000, seed=21)
BIG = sgtest.payload(9 << 20, seed=22)        # over the CLI's 8 MiB multipart threshold
CHUNKED_SIZE = 4 * 65536 + 1000               # 4 chunks of 64 KiB, 1000 bytes, the empty one


def aws_credential(secret=REAL_SECRET):
    return {"secret": {"value": secret}, "inject": {"type": "aws_sigv4"},
            "aws": {"access_key_id": {"value": REAL_AKID},
                    "session_token": {"value": REAL_TOKEN},
                    "services": ["s3", "sts", "sqs"], "regions": [REGION],
                    "buckets": [BUCKET], "prefixes": [BUCKET + "/sb/"]},
            "hosts": ["*.amazonaws.com"]}


def derived_akid(handle):
    """The access key id sealgate derives from a handle (awscred.h)."""
    d = hashlib.blake2b(handle.encode(), digest_size=32, key=b"sealgate-aws-akid-v1").digest()
    return "ASIA" + base64.b32encode(d[:10]).decode()


def header(rec, name):
    return dict((k.lower(), v) for k, v in rec["headers"]).get(name.lower())


class _AwsSuite(sgtest.TestCase):
    """One sandbox, stand-in and sealgate per class (setUpClass); helpers. Every text a
    sandbox process printed is kept in cls.outputs for the secrecy checks."""
    container = False

    @classmethod
    def setUpClass(cls):
        cls.sb = aws_sandbox.AwsSandbox(cls, proxied=True)
        listen = {}
        if cls.container:
            sh("ip", "-n", cls.sb.ns["awsgw"], "addr", "add", CONTAINER_ADDR + "/32", "dev",
               "vsb")
            sh("ip", "-n", cls.sb.ns["awssb"], "route", "add", CONTAINER_ADDR + "/32", "dev",
               "eth0")
            listen = {"metadata_aws": CONTAINER_ADDR + ":80"}
        cls.sa = cls.sb.start_standin(access_key_id=REAL_AKID, secret=REAL_SECRET,
                                      session_token=REAL_TOKEN, arn=REAL_ARN,
                                      buckets=(BUCKET, "otherbucket"), queues=("myqueue",))
        cls.sg = cls.sb.start_sealgate(cls.sb.sealgate_policy(
            credentials={"aws-dev": aws_credential(),
                         "aws-echo": aws_credential(secret=aws_standin.new_secret())},
            grants=["aws-dev", "aws-echo"], listen=listen,
            # the scope and tampering tests send a dozen refused handles a minute
            limits={"failed_handles": 200}))
        cls.guest = cls.sb.guest_init()
        cls.outputs = []

    def setUp(self):
        self.mark = len(self.sa.records)

    # -- running things in the sandbox -------------------------------------------------

    def env(self):
        return self.sb.guest_env(self.guest)

    def keep(self, rc, out, err):
        type(self).outputs.append(out + err)
        return rc, out, err

    def aws(self, *args, env=None):
        return self.keep(*self.sb.aws(env or self.env(), *args))

    def cli_ok(self, *args, env=None):
        rc, out, err = self.aws(*args, env=env)
        self.assertEqual(rc, 0, "aws %s: %s" % (" ".join(args), err[-3000:]))
        return out, err

    def py(self, code, *args):
        """Debian's python in the sandbox; its last stdout line as JSON."""
        rc, out, err = self.keep(*self.sb.python(self.env(), code, *args))
        self.assertEqual(rc, 0, err[-3000:])
        return json.loads(out.strip().splitlines()[-1])

    def guest_op(self, **a):
        """aws_guest.py in the sandbox (hand-built requests signed with the chain's
        derived credentials)."""
        rc, out, err = self.keep(*self.sb.run(self.env(), ["/usr/bin/python3", GUEST],
                                              input=json.dumps(a)))
        self.assertEqual(rc, 0, err[-3000:])
        return json.loads(out)

    def curl(self, *args):
        """curl in the sandbox (HTTPS_PROXY, CURL_CA_BUNDLE from the guest env):
        (status, headers dict, body text)."""
        rc, out, err = self.keep(*self.sb.run(self.env(), [
            "curl", "-sS", "-m", "20", "-D", "-"] + list(args)))
        self.assertEqual(rc, 0, err)
        heads = out.split("\r\n\r\n")
        last = [h for h in heads[:-1] if h.startswith("HTTP/")][-1]
        status = int(last.split(" ", 2)[1])
        fields = {}
        for line in last.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        return status, fields, heads[-1]

    def home_file(self, env, name, data):
        path = os.path.join(env["HOME"], name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # -- what reached AWS ----------------------------------------------------------------

    def new_records(self):
        return self.sa.records[self.mark:]

    def assert_real_signer(self, recs):
        """Each record: verified by the stand-in with the REAL credentials, no handle
        and no derived key id reached it."""
        self.assertTrue(recs)
        for r in recs:
            self.assertEqual((r["verified"], r["credential"], r["access_key_id"]),
                             (True, "primary", REAL_AKID), r["target"])
            if r["auth"] == "header":
                self.assertEqual(header(r, "X-Amz-Security-Token"), REAL_TOKEN)
            blob = json.dumps([r["target"], r["headers"], r["body"]])
            self.assertNotIn("sgh1.", blob)
            self.assertIsNone(AKID_RE.search(blob.replace(REAL_AKID, "")), r["target"])

    def assert_untouched(self, why):
        self.assertEqual(self.new_records(), [], "%s reached the stand-in" % why)

    def audit(self, **match):
        return [ln for ln in sgtest.audit_lines(self.sg)
                if all(ln.get(k) == v for k, v in match.items())]

    # -- shared tests ----------------------------------------------------------------------

    def check_real_values_nowhere(self):
        """Run last in each class (test_z_...): the real key id, secret and session token
        appear in no output of any sandbox process of this class (the CLI's --debug
        output holds every header and body it sent and got), nor in sealgate's log and
        audit lines, although the stand-in's records prove they were used."""
        self.sa.put_object(BUCKET, "sb/ls/marker", b"listed")
        out, _ = self.cli_ok("s3", "ls", "s3://%s/sb/" % BUCKET, "--debug")
        self.assertIn("PRE ls/", out)
        rec = self.new_records()[-1]
        self.assertEqual(rec["operation"], "ListObjectsV2")
        self.assertIn("prefix=sb%2F", rec["target"])
        self.assert_real_signer([rec])
        self.assertTrue(any(r["access_key_id"] == REAL_AKID for r in self.sa.records))
        self.assertTrue(self.sa.find(REAL_TOKEN))
        with open(os.path.join(self.sg.dir, "audit.log"), "rb") as f:
            audit = f.read().decode()
        self.assertIn('"credential":"aws-dev"', audit.replace(" ", ""))
        texts = {"sandbox outputs": "\n".join(self.outputs), "sealgate log": self.sg.log(),
                 "audit log": audit}
        for where, text in texts.items():
            for what, value in REAL_VALUES.items():
                forms = {value, urllib.parse.quote(value, safe=""), value.encode().hex(),
                         " ".join("%02x" % b for b in value.encode())}
                for form in forms:
                    self.assertNotIn(form, text, "the real %s in the %s" % (what, where))

    def cli_cp_small(self):
        env = self.env()
        src = self.home_file(env, "small.bin", SMALL)
        key = "sb/cli/%s-small.bin" % self.kind
        self.cli_ok("s3", "cp", src, "s3://%s/%s" % (BUCKET, key), env=env)
        self.assertEqual(self.sa.objects(BUCKET)[key], SMALL)
        back = os.path.join(env["HOME"], "small.back")
        self.cli_ok("s3", "cp", "s3://%s/%s" % (BUCKET, key), back, env=env)
        with open(back, "rb") as f:
            self.assertEqual(f.read(), SMALL)
        recs = self.new_records()
        self.assertEqual([r["operation"] for r in recs], ["PutObject", "HeadObject",
                                                          "GetObject"])
        self.assert_real_signer(recs)
        self.assertEqual([r["sni"] for r in recs], [VHOST] * 3)

    def cli_cp_multipart(self):
        env = self.env()
        src = self.home_file(env, "big.bin", BIG)
        key = "sb/cli/%s-big.bin" % self.kind
        self.cli_ok("s3", "cp", src, "s3://%s/%s" % (BUCKET, key), env=env)
        up = self.new_records()
        self.assertEqual(up[0]["operation"], "CreateMultipartUpload")
        self.assertEqual(sorted(r.get("part_number") for r in up
                                if r["operation"] == "UploadPart"), [1, 2])
        self.assertEqual(up[-1]["operation"], "CompleteMultipartUpload")
        self.assertEqual(sgtest.sha256(self.sa.objects(BUCKET)[key]), sgtest.sha256(BIG))
        self.mark = len(self.sa.records)
        back = os.path.join(env["HOME"], "big.back")
        self.cli_ok("s3", "cp", "s3://%s/%s" % (BUCKET, key), back, env=env)
        with open(back, "rb") as f:
            self.assertEqual(sgtest.sha256(f.read()), sgtest.sha256(BIG))
        down = self.new_records()
        gets = [r for r in down if r["operation"] == "GetObject"]
        self.assertEqual(sorted(header(r, "Range") for r in gets),
                         ["bytes=0-8388607", "bytes=8388608-"])
        self.assertEqual([r["status"] for r in gets], [206, 206])
        self.assert_real_signer(up + down)

    def cli_sts(self):
        out, err = self.cli_ok("sts", "get-caller-identity", "--debug")
        self.assertEqual(json.loads(out)["Arn"], REAL_ARN)
        rec = self.new_records()[-1]
        self.assertEqual((rec["operation"], rec["host"]), ("GetCallerIdentity", STS_HOST))
        self.assert_real_signer([rec])
        # the CLI signed with derived credentials: their key id, a handle as token
        m = re.search(r"Credential=(ASIA[A-Z2-7]{16})/\d{8}/%s/sts/aws4_request" % REGION, err)
        self.assertIsNotNone(m, "no derived credential in the CLI's debug output")
        self.assertRegex(err, r"'X-Amz-Security-Token': b'sgh1\.")
        return err

    def boto3_s3_roundtrip(self, method):
        got = self.py(
            "import boto3, json, sys\n"
            "s = boto3.session.Session()\n"
            "c = s.get_credentials()\n"
            "s3 = s.client('s3')\n"
            "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=b'from boto3 ' * 50)\n"
            "body = s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read()\n"
            "print(json.dumps({'method': c.method, 'akid': c.access_key, "
            "'token': c.token, 'body': body.decode(), 'region': s.region_name}))",
            BUCKET, "sb/boto3/%s.txt" % self.kind)
        self.assertEqual((got["method"], got["region"], got["body"]),
                         (method, REGION, "from boto3 " * 50))
        self.assertRegex(got["akid"], AKID_RE)
        self.assertRegex(got["token"], HANDLE_RE)
        self.assertEqual(got["akid"], derived_akid(got["token"]))
        recs = self.new_records()
        self.assertEqual([r["operation"] for r in recs], ["PutObject", "GetObject"])
        self.assertEqual(self.sa.objects(BUCKET)["sb/boto3/%s.txt" % self.kind],
                         b"from boto3 " * 50)
        self.assert_real_signer(recs)


class AwsImdsTest(_AwsSuite):
    """Credentials from IMDSv2 (169.254.169.254): sealgate has no container endpoint."""
    kind = "imds"

    def test_guest_env_exports_no_key(self):
        """/v1/env gives region and CA only: no key, no container credentials."""
        aws = {k: v for k, v in self.guest.items() if k.startswith("AWS_")}
        self.assertEqual(sorted(aws), ["AWS_CA_BUNDLE", "AWS_DEFAULT_REGION", "AWS_REGION"])
        self.assertEqual((aws["AWS_REGION"], aws["AWS_DEFAULT_REGION"]), (REGION, REGION))
        self.assertEqual(aws["AWS_CA_BUNDLE"], self.guest["SSL_CERT_FILE"])
        self.assertEqual(self.guest["HTTPS_PROXY"], "http://" + aws_sandbox.GW_PROXY)
        creds = self.guest_op(op="creds")["creds"]
        self.assertEqual(creds["method"], "iam-role")
        self.assertEqual(creds["access_key_id"], derived_akid(creds["token"]))

    def test_cli_cp_small_up_and_down(self):
        n = len(self.audit(event="minted", sandbox="sb"))
        self.cli_cp_small()
        # the CLI found its credentials at IMDS: a handle minted for each run
        self.assertGreaterEqual(len(self.audit(event="minted", sandbox="sb")), n + 2)

    def test_cli_cp_multipart_up_and_down(self):
        self.cli_cp_multipart()

    def test_cli_sts_get_caller_identity(self):
        err = self.cli_sts()
        self.assertIn("/latest/meta-data/iam/security-credentials/aws-dev", err)

    def test_boto3_s3_put_get(self):
        self.boto3_s3_roundtrip("iam-role")

    def test_boto3_sts_body_hash_signature(self):
        """STS signs the body's hash and sends no x-amz-content-sha256: sealgate holds
        the body, verifies, signs again."""
        got = self.py("import boto3, json; print(json.dumps("
                      "boto3.client('sts').get_caller_identity()['Arn']))")
        self.assertEqual(got, REAL_ARN)
        rec = self.new_records()[-1]
        self.assertEqual((rec["method"], rec["operation"]), ("POST", "GetCallerIdentity"))
        self.assertIsNone(header(rec, "x-amz-content-sha256"))
        self.assertIn("Action=GetCallerIdentity", rec["body"])
        self.assert_real_signer([rec])

    def test_boto3_sqs_json_protocol(self):
        """SQS's JSON 1.0 protocol (X-Amz-Target), as current SDKs send it: boto3 with
        the SQS model switched to it (Debian's botocore only knows the query form)."""
        import test_aws_standin
        data = test_aws_standin.sqs_json_data_path(os.path.join(
            self.sb.tmp, "sqsjson-%s" % self.kind))
        got = self.py(
            "import boto3, botocore.session, json, sys\n"
            "bs = botocore.session.get_session()\n"
            "bs.set_config_variable('data_path', sys.argv[1])\n"
            "sqs = boto3.session.Session(botocore_session=bs).client('sqs')\n"
            "r = sqs.send_message(QueueUrl=sys.argv[2], MessageBody='json through sealgate')\n"
            "print(json.dumps(r['MessageId']))", data, self.sa.queue_url("myqueue"))
        rec = self.new_records()[-1]
        self.assertEqual((header(rec, "X-Amz-Target"), rec["protocol"], rec["message_id"]),
                         ("AmazonSQS.SendMessage", "json", got))
        self.assertEqual(json.loads(rec["body"])["MessageBody"], "json through sealgate")
        self.assertIsNone(header(rec, "x-amz-content-sha256"))
        self.assert_real_signer([rec])
        self.assertIn({"MessageId": got, "Body": "json through sealgate"},
                      self.sa.messages("myqueue"))

    # -- presigned URLs ---------------------------------------------------------------

    def presign(self, key, v4):
        cfg = "botocore.config.Config(signature_version='s3v4')" if v4 else "None"
        return self.py(
            "import boto3, botocore.config, json, sys\n"
            "s3 = boto3.client('s3', config=%s)\n"
            "print(json.dumps(s3.generate_presigned_url('get_object', Params={"
            "'Bucket': sys.argv[1], 'Key': sys.argv[2]}, ExpiresIn=300)))" % cfg,
            BUCKET, key)

    def test_presigned_get_v4_with_curl(self):
        data = b"presigned through sealgate\n" * 20
        self.sa.put_object(BUCKET, "sb/pre/v4.txt", data)
        url = self.presign("sb/pre/v4.txt", v4=True)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        self.assertRegex(q["X-Amz-Security-Token"][0], HANDLE_RE)
        self.assertEqual(q["X-Amz-Credential"][0].split("/")[0],
                         derived_akid(q["X-Amz-Security-Token"][0]))
        status, _, body = self.curl(url)
        self.assertEqual((status, body.encode()), (200, data))
        rec = self.new_records()[-1]
        rq = urllib.parse.parse_qs(urllib.parse.urlsplit(rec["target"]).query)
        self.assertEqual((rec["auth"], rec["operation"]), ("query", "GetObject"))
        self.assertEqual(rq["X-Amz-Security-Token"], [REAL_TOKEN])
        self.assertEqual(rq["X-Amz-Credential"][0].split("/")[0], REAL_AKID)
        self.assertNotEqual(rq["X-Amz-Signature"], q["X-Amz-Signature"])
        self.assert_real_signer([rec])

    def test_presigned_sigv2_refused_before_aws(self):
        """boto3 1.26 presigns SigV2 by default: sealgate refuses it clearly (400
        sigv2_unsupported); nothing reaches the stand-in."""
        self.sa.put_object(BUCKET, "sb/pre/v2.txt", b"v2")
        url = self.presign("sb/pre/v2.txt", v4=False)
        self.assertIn("AWSAccessKeyId=ASIA", url)
        status, fields, body = self.curl(url)
        self.assertEqual((status, fields.get("x-sealgate-error")), (400, "sigv2_unsupported"))
        self.assertIn("SigV4", json.loads(body)["message"])
        self.assert_untouched("a SigV2 presigned URL")

    # -- aws-chunked uploads (hand-signed in the sandbox) -----------------------------------

    def chunked(self, key, trailer=False, mutate=None):
        return self.guest_op(op="chunked", host=VHOST, path="/" + key, region=REGION,
                             size=CHUNKED_SIZE, seed=len(key), trailer=trailer,
                             mutate=mutate)

    def check_chunked(self, key, trailer):
        res = self.chunked(key, trailer=trailer)
        self.assertEqual(res["status"], 200, res)
        rec = self.new_records()[-1]
        mode = ref.STREAMING_SIGNED_TRAILER if trailer else ref.STREAMING_SIGNED
        self.assertEqual((rec["operation"], rec["payload"], rec["chunks_verified"],
                          rec["decoded_len"]), ("PutObject", mode, 6, CHUNKED_SIZE))
        self.assertEqual(hashlib.sha256(self.sa.objects(BUCKET)[key]).hexdigest(),
                         res["data_sha256"])
        self.assertEqual(rec["body_len"], res["body_len"])     # same length out as in
        self.assert_real_signer([rec])
        # the first chunk's signature is the real key's over the re-signed seed
        data = aws_guest.payload(CHUNKED_SIZE, len(key))
        self.assertEqual(hashlib.sha256(data).hexdigest(), res["data_sha256"])
        auth = aws_standin.parse_authorization(header(rec, "Authorization"))
        amz = header(rec, "x-amz-date")
        line = rec["body"].encode("latin-1").partition(b"\r\n")[0]
        self.assertEqual(line, b"10000;chunk-signature=%s" % line[-64:])
        key_real = ref.signing_key(REAL_SECRET, amz[:8], REGION, "s3")
        self.assertEqual(line[-64:].decode(), ref.chunk_signature(
            key_real, amz, ref.scope_of(amz, REGION, "s3"), auth["signature"],
            data[:65536]))
        self.assertNotEqual(line[-64:].decode(), res["chunk_signatures"][0])
        self.assertNotEqual(auth["signature"], res["seed"])
        return rec

    def test_chunked_signed_upload_resigned(self):
        self.check_chunked("sb/chunked/plain.bin", trailer=False)

    def test_chunked_signed_trailer_upload_resigned(self):
        rec = self.check_chunked("sb/chunked/trailer.bin", trailer=True)
        self.assertEqual([t[0] for t in rec["trailers"]], ["x-amz-checksum-crc32"])

    def test_chunked_unsigned_trailer_upload_forwarded(self):
        """STREAMING-UNSIGNED-PAYLOAD-TRAILER (boto3 1.36 and later): the head's signature
        is verified and redone with the real key, the plain chunks and the checksum
        trailer reach S3 as sent, and the stand-in checks the CRC32 over what it got."""
        key = "sb/chunked/unsigned.bin"
        res = self.guest_op(op="chunked", host=VHOST, path="/" + key, region=REGION,
                            size=CHUNKED_SIZE, seed=len(key), unsigned=True)
        self.assertEqual(res["status"], 200, res)
        rec = self.new_records()[-1]
        self.assertEqual((rec["operation"], rec["payload"], rec["chunks_verified"],
                          rec["decoded_len"]),
                         ("PutObject", ref.STREAMING_UNSIGNED_TRAILER, 0, CHUNKED_SIZE))
        self.assertEqual(rec["trailers"], [["x-amz-checksum-crc32", res["crc32"]]])
        self.assertEqual(rec["body_len"], res["body_len"])
        self.assertEqual(hashlib.sha256(self.sa.objects(BUCKET)[key]).hexdigest(),
                         res["data_sha256"])
        self.assert_real_signer([rec])
        auth = aws_standin.parse_authorization(header(rec, "Authorization"))
        self.assertNotEqual(auth["signature"], res["seed"])

    def test_chunked_replayed_reordered_tampered_cut(self):
        """A chunk replayed, two swapped, a bit flipped (each after the first chunks went
        upstream): 403 signature_mismatch from sealgate, the upload cut, nothing
        stored."""
        for mutate in ("replay", "reorder", "tamper"):
            with self.subTest(mutate):
                key = "sb/chunked/%s.bin" % mutate
                res = self.chunked(key, mutate=mutate)
                self.assertEqual((res["status"], dict(res["headers"]).get(
                    "X-Sealgate-Error")), (403, "signature_mismatch"), res)
                self.assertIn("chunk signature mismatch", json.loads(res["body"])["message"])
                self.assertNotIn(key, self.sa.objects(BUCKET))
                self.assertEqual([r for r in self.sa.records if r["path"] == "/" + key], [])
        lines = self.audit(error="signature_mismatch", credential="aws-dev")
        self.assertGreaterEqual(len(lines), 3)

    # -- scope and tampering ------------------------------------------------------------

    def signed(self, **a):
        a.setdefault("method", "POST")
        a.setdefault("path", "/")
        a.setdefault("body", "Action=GetCallerIdentity&Version=2011-06-15")
        a.setdefault("headers", [["Content-Type", "application/x-www-form-urlencoded"]])
        return self.guest_op(op="signed", **a)

    def assert_refused(self, res, status, code):
        self.assertEqual((res["status"], dict(res["headers"]).get("X-Sealgate-Error")),
                         (status, code), res)

    def test_scope_refused_before_signing(self):
        """Outside the credential's aws block: 403 aws_scope_denied, also when the
        signature is bad (the scope is checked before it), and the stand-in never sees
        the request (it serves these names, regions and buckets)."""
        cases = {
            "service": dict(host=STS_HOST, service="iam", region=REGION),
            "region": dict(host="sts.us-west-2.amazonaws.com", service="sts",
                           region="us-west-2"),
            "bucket": dict(host="otherbucket.s3.%s.amazonaws.com" % REGION, method="GET",
                           path="/sb/x", body="", headers=[], service="s3", region=REGION),
            "prefix": dict(host=VHOST, method="GET", path="/other/x", body="", headers=[],
                           service="s3", region=REGION),
            "bad signature too": dict(host=VHOST, method="GET", path="/other/x", body="",
                                      headers=[], service="s3", region=REGION,
                                      secret=aws_standin.new_secret()),
        }
        self.sa.put_object("otherbucket", "sb/x", b"not for the sandbox")
        self.sa.put_object(BUCKET, "other/x", b"not for the sandbox")
        for name, a in cases.items():
            with self.subTest(name):
                res = self.signed(**a)
                self.assert_refused(res, 403, "aws_scope_denied")
        got = self.py(
            "import boto3, botocore.exceptions as E, json\n"
            "s3, out = boto3.client('s3'), []\n"
            "for b, k in (('otherbucket', 'sb/y'), ('mybucket', 'other/y')):\n"
            "    try:\n"
            "        s3.put_object(Bucket=b, Key=k, Body=b'x'); out.append('stored')\n"
            "    except E.ClientError as e:\n"
            "        m = e.response['ResponseMetadata']\n"
            "        out.append([m['HTTPStatusCode'], m['HTTPHeaders'].get('x-sealgate-error')])\n"
            "try:\n"
            "    boto3.client('s3', region_name='us-west-2').list_objects_v2(Bucket='mybucket',"
            " Prefix='sb/')\n"
            "    out.append('listed')\n"
            "except E.ClientError as e:\n"
            "    out.append(e.response['ResponseMetadata']['HTTPHeaders'].get('x-sealgate-error'))\n"
            "print(json.dumps(out))")
        self.assertEqual(got, [[403, "aws_scope_denied"], [403, "aws_scope_denied"],
                               "aws_scope_denied"])
        self.assert_untouched("an out-of-scope request")
        self.assertNotIn("sb/y", self.sa.objects("otherbucket"))
        lines = self.audit(error="aws_scope_denied", credential="aws-dev")
        self.assertGreaterEqual(len(lines), 8)
        self.assertTrue(all(ln["status"] == 403 for ln in lines))

    def test_tampered_signed_header_refused(self):
        """A signed header changed after signing: 403 signature_mismatch, not sent; the
        same request untouched goes through (control)."""
        hs = [["Content-Type", "application/x-www-form-urlencoded"],
              ["X-Amz-Meta-Note", "signed value"]]
        res = self.signed(host=STS_HOST, service="sts", region=REGION, headers=hs,
                          after={"X-Amz-Meta-Note": "changed value"})
        self.assert_refused(res, 403, "signature_mismatch")
        res = self.signed(host=STS_HOST, service="sts", region=REGION, headers=hs,
                          after={"X-Amz-Security-Token": res["creds"]["token"][:-1] + "A"})
        self.assertEqual(res["status"], 403)        # a handle that does not open
        self.assert_untouched("a tampered request")
        res = self.signed(host=STS_HOST, service="sts", region=REGION, headers=hs)
        self.assertEqual(res["status"], 200, res)
        self.assertIn(REAL_ARN, res["body"])
        rec = self.new_records()[-1]
        self.assertEqual(header(rec, "X-Amz-Meta-Note"), "signed value")
        self.assert_real_signer([rec])

    # -- secrecy ---------------------------------------------------------------------------

    def test_echoed_real_key_id_and_token_scrubbed(self):
        """What comes back holding the real values reaches the sandbox with its own:
        S3's SignatureDoesNotMatch (the role aws-echo: sealgate's copy of the real secret
        is wrong) echoes the real key id and, in CanonicalRequest and its spaced-hex
        CanonicalRequestBytes, the real session token. GetCallerIdentity echoes no key id
        (Arn, UserId, Account): checked too."""
        self.sa.put_object(BUCKET, "sb/echo.txt", b"echo")
        got = self.py(
            "import boto3, botocore.exceptions as E, json, urllib.request as U\n"
            "md = 'http://169.254.169.254'\n"
            "tok = U.urlopen(U.Request(md + '/latest/api/token', method='PUT', headers={"
            "'X-aws-ec2-metadata-token-ttl-seconds': '60'})).read().decode()\n"
            "d = json.loads(U.urlopen(U.Request(md + '/latest/meta-data/iam/"
            "security-credentials/aws-echo', headers={'X-aws-ec2-metadata-token': tok}))"
            ".read())\n"
            "s3 = boto3.client('s3', aws_access_key_id=d['AccessKeyId'], aws_secret_access_key="
            "d['SecretAccessKey'], aws_session_token=d['Token'])\n"
            "try:\n"
            "    s3.get_object(Bucket='mybucket', Key='sb/echo.txt'); err = None\n"
            "except E.ClientError as e:\n"
            "    err = e.response['Error']\n"
            "s = boto3.session.Session(); c = s.get_credentials()\n"
            "body = s.client('s3').get_object(Bucket='mybucket', Key='sb/echo.txt')['Body']"
            ".read().decode()\n"
            "me = s.client('sts').get_caller_identity()\n"
            "print(json.dumps({'echo_akid': d['AccessKeyId'], 'echo_token': d['Token'], "
            "'err': err, 'akid': c.access_key, 'token': c.token, 'body': body, "
            "'me': [me['Arn'], me['UserId'], me['Account']]}))")
        recs = self.new_records()
        # the echo role's request reached the stand-in with the real values
        self.assertEqual((recs[0]["error"], recs[0]["access_key_id"]),
                         ("SignatureDoesNotMatch", REAL_AKID))
        self.assertEqual(header(recs[0], "X-Amz-Security-Token"), REAL_TOKEN)
        err = got["err"]
        self.assertEqual(err["Code"], "SignatureDoesNotMatch")
        self.assertEqual(err["AWSAccessKeyId"], got["echo_akid"])
        self.assertEqual(got["echo_akid"], derived_akid(got["echo_token"]))
        self.assertIn("x-amz-security-token:%s\n" % got["echo_token"], err["CanonicalRequest"])
        spaced = bytes(int(x, 16) for x in err["CanonicalRequestBytes"].split()).decode()
        self.assertEqual(spaced, err["CanonicalRequest"])
        self.assertEqual(got["me"], [REAL_ARN, self.sa.state.primary.user_id,
                                     aws_standin.ACCOUNT])
        self.assertNotIn(REAL_AKID, json.dumps(got))
        for what, value in REAL_VALUES.items():
            self.assertNotIn(value, json.dumps(got), what)

    def test_echoed_object_scrubbed(self):
        """An object holding the real key id, token and secret comes back with the
        sandbox's derived key id and handle in their place."""
        self.sa.put_object(BUCKET, "sb/creds.txt", (
            "akid=%s\ntoken=%s\nsecret=%s\n" % (REAL_AKID, REAL_TOKEN, REAL_SECRET)).encode())
        got = self.py(
            "import boto3, json\n"
            "s = boto3.session.Session(); c = s.get_credentials()\n"
            "b = s.client('s3').get_object(Bucket='mybucket', Key='sb/creds.txt')['Body']\n"
            "print(json.dumps({'akid': c.access_key, 'token': c.token, "
            "'body': b.read().decode()}))")
        self.assertEqual(got["body"], "akid=%s\ntoken=%s\nsecret=%s\n" % (
            got["akid"], got["token"], got["token"]))
        self.assert_real_signer(self.new_records())

    def test_z_real_values_nowhere(self):
        self.check_real_values_nowhere()


class AwsContainerTest(_AwsSuite):
    """Credentials from the container endpoint: listen.metadata_aws 169.254.170.2:80 in
    the gateway namespace, AWS_CONTAINER_CREDENTIALS_FULL_URI/AUTHORIZATION_TOKEN from
    /v1/env."""
    container = True
    kind = "ecs"

    def test_guest_env_exports_container_credentials(self):
        aws = {k: v for k, v in self.guest.items() if k.startswith("AWS_")}
        self.assertEqual(sorted(aws), ["AWS_CA_BUNDLE", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                       "AWS_DEFAULT_REGION", "AWS_REGION"])
        self.assertEqual(aws["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                         "http://%s:80/v1/aws/credentials/aws-dev" % CONTAINER_ADDR)
        self.assertTrue(aws["AWS_CONTAINER_AUTHORIZATION_TOKEN"].startswith("sgt1."))
        self.assertIn(CONTAINER_ADDR, self.guest["NO_PROXY"].split(","))
        creds = self.guest_op(op="creds")["creds"]
        self.assertEqual(creds["method"], "container-role")

    def test_cli_cp_small_up_and_down(self):
        self.cli_cp_small()

    def test_cli_cp_multipart_up_and_down(self):
        self.cli_cp_multipart()

    def test_cli_sts_get_caller_identity(self):
        err = self.cli_sts()
        self.assertIn('"GET /v1/aws/credentials/aws-dev HTTP/1.1" 200', err)
        self.assertNotIn("/latest/meta-data/iam/security-credentials", err)

    def test_boto3_s3_put_get(self):
        self.boto3_s3_roundtrip("container-role")

    def test_chunked_signed_upload_resigned(self):
        res = self.guest_op(op="chunked", host=VHOST, path="/sb/chunked/ecs.bin",
                            region=REGION, size=CHUNKED_SIZE, seed=5)
        self.assertEqual(res["status"], 200, res)
        self.assertEqual(res["creds"]["method"], "container-role")
        rec = self.new_records()[-1]
        self.assertEqual(rec["chunks_verified"], 6)
        self.assert_real_signer([rec])

    def test_z_real_values_nowhere(self):
        self.check_real_values_nowhere()

