"""The AWS stand-in (aws_standin.py), the reference signer (aws_sigv4_ref.py) and the
namespace sandbox helper (aws_sandbox.py), proven against unmodified clients pointed
DIRECTLY at the stand-in (sealgate is not involved here):

  RefSignerDocsTest    the reference signer and the stand-in's chunk verifier reproduce
                       the S3 documentation's worked examples
  StandinTest          boto3 in this process and Debian's `aws` CLI reach the stand-in at
                       the real AWS names with default endpoints through a loopback
                       CONNECT relay (HTTPS_PROXY, AWS_CA_BUNDLE = the test CA); curl for
                       presigned URLs (--connect-to); hand-built aws-chunked uploads
                       signed with the reference signer; negative cases
  StandinProcessTest   the out-of-process stand-in: records from its file, stop by pid
  AwsSandboxDirectTest aws_sandbox's direct topology: `aws` and boto3 in a namespace of
                       their own with real keys, the stand-in at the real names on :443
                       through /etc/netns/NAME/hosts, nothing in the root namespace
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import aws_sandbox
import aws_sigv4_ref as ref
import aws_standin
import sgnetns
import sgtest
from aws_standin import AwsStandin, AwsStandinProcess, standin_relay

DOC_AK, DOC_SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_DATE = "20130524T000000Z"
DOC_T = 1369353600                      # 2013-05-24T00:00:00Z
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_CHUNK_SIGS = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                  "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                  "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_CHUNK_SIGS = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"]
DOC_TRAILER_SIG = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
VHOST = "mybucket.s3.us-east-1.amazonaws.com"
REGION = "us-east-1"


def doc_chunked_headers(trailer):
    mode = ref.STREAMING_SIGNED_TRAILER if trailer else ref.STREAMING_SIGNED
    hs = [("Host", "s3.amazonaws.com"), ("x-amz-date", DOC_DATE),
          ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", mode),
          ("Content-Encoding", "aws-chunked"), ("x-amz-decoded-content-length", "66560")]
    hs += [("x-amz-trailer", "x-amz-checksum-crc32c")] if trailer else [
        ("Content-Length", "66824")]
    return ref.sign_headers("PUT", "/examplebucket/chunkObject.txt", [], hs, mode, DOC_AK,
                            DOC_SK, REGION, "s3", DOC_DATE)


class RefSignerDocsTest(unittest.TestCase):
    """The reference signer against the S3 documentation's worked examples."""

    def test_get_object_example(self):
        hs = [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
              ("x-amz-content-sha256", ref.EMPTY_SHA256), ("x-amz-date", DOC_DATE)]
        _, sig, _ = ref.sign_headers("GET", "/test.txt", [], hs, ref.EMPTY_SHA256, DOC_AK,
                                     DOC_SK, REGION, "s3", DOC_DATE)
        self.assertEqual(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")

    def test_chunked_upload_example(self):
        out, seed, cr = doc_chunked_headers(trailer=False)
        self.assertEqual(ref.sha256_hex(cr),
                         "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455")
        self.assertEqual(seed, DOC_SEED)
        self.assertIn("SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;"
                      "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,",
                      dict(out)["Authorization"])
        key = ref.signing_key(DOC_SK, "20130524", REGION, "s3")
        body, sigs, tsig = ref.aws_chunked_signed(b"a" * 66560, 65536, key, DOC_DATE,
                                                  ref.scope_of(DOC_DATE, REGION, "s3"), seed)
        self.assertEqual(sigs, DOC_CHUNK_SIGS)
        self.assertIsNone(tsig)
        self.assertEqual(len(body), 66824)
        self.assertEqual(ref.encoded_length(66560, 65536), 66824)
        self.assertTrue(body.startswith(b"10000;chunk-signature=%s\r\naaa" % sigs[0].encode()))
        self.assertTrue(body.endswith(b"\r\n0;chunk-signature=%s\r\n\r\n" % sigs[2].encode()))

    def test_chunked_upload_with_trailer_example(self):
        _, seed, _ = doc_chunked_headers(trailer=True)
        self.assertEqual(seed, DOC_TRAILER_SEED)
        key = ref.signing_key(DOC_SK, "20130524", REGION, "s3")
        trailers = [("x-amz-checksum-crc32c", "sOO8/Q==")]
        self.assertEqual(aws_standin.checksum_b64("crc32c", b"a" * 66560), "sOO8/Q==")
        body, sigs, tsig = ref.aws_chunked_signed(b"a" * 66560, 65536, key, DOC_DATE,
                                                  ref.scope_of(DOC_DATE, REGION, "s3"), seed,
                                                  trailers)
        self.assertEqual(sigs, DOC_TRAILER_CHUNK_SIGS)
        self.assertEqual(tsig, DOC_TRAILER_SIG)
        self.assertTrue(body.endswith(b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
                                      b"x-amz-trailer-signature:%s\r\n\r\n" % tsig.encode()))

    def test_standin_chunk_verifier_accepts_docs_bodies_only(self):
        """The stand-in's own chunk verifier (not the reference signer) on the documents'
        bodies: accepted as written, refused with any signature changed."""
        key = aws_standin.signing_key(DOC_SK, "20130524", REGION, "s3")
        scope = "20130524/us-east-1/s3/aws4_request"
        body = b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (n, s.encode(), b"a" * n)
                        for n, s in zip((65536, 1024, 0), DOC_CHUNK_SIGS))
        ctx = aws_standin.ChunkContext(key, DOC_DATE, scope, DOC_SEED)
        data, trailers, n = aws_standin.decode_aws_chunked(body, ref.STREAMING_SIGNED, ctx)
        self.assertEqual((data, trailers, n), (b"a" * 66560, [], 3))
        for i, sig in enumerate(DOC_CHUNK_SIGS):
            bad = body.replace(sig.encode(), (sig[:-1] + ("0" if sig[-1] != "0" else "1"))
                               .encode())
            with self.assertRaises(aws_standin.AwsError) as cm:
                aws_standin.decode_aws_chunked(bad, ref.STREAMING_SIGNED, ctx)
            self.assertEqual(cm.exception.code, "SignatureDoesNotMatch", i)
        tbody = (b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (n, s.encode(), b"a" * n)
                          for n, s in zip((65536, 1024), DOC_TRAILER_CHUNK_SIGS))
                 + b"0;chunk-signature=%s\r\nx-amz-checksum-crc32c:sOO8/Q==\r\n"
                   b"x-amz-trailer-signature:%s\r\n\r\n"
                 % (DOC_TRAILER_CHUNK_SIGS[2].encode(), DOC_TRAILER_SIG.encode()))
        tctx = aws_standin.ChunkContext(key, DOC_DATE, scope, DOC_TRAILER_SEED)
        data, trailers, n = aws_standin.decode_aws_chunked(
            tbody, ref.STREAMING_SIGNED_TRAILER, tctx)
        self.assertEqual((len(data), trailers, n),
                         (66560, [("x-amz-checksum-crc32c", "sOO8/Q==")], 3))
        with self.assertRaises(aws_standin.AwsError) as cm:
            aws_standin.decode_aws_chunked(tbody.replace(b"sOO8/Q==", b"sOO8/Q=A"),
                                           ref.STREAMING_SIGNED_TRAILER, tctx)
        self.assertEqual(cm.exception.code, "SignatureDoesNotMatch")


# --------------------------------------------------------------------------- helpers

def amz_now(sa):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + sa.clock_offset))


def raw_request(sa, method, target, headers, body=b"", host=VHOST):
    """One request straight to the stand-in (TLS with SNI host): the Response."""
    c = sgtest.direct_conn(sa.port, sni=host, host=sa.host, cafile=sa.ca_file)
    with c:
        c.send(sgtest.build_request(method, target, host, [h for h in headers
                                                           if h[0].lower() != "host"], body))
        return c.read_response(method)


def signed_raw(sa, method, path, headers, body, payload_hash, secret=None, akid=None,
               host=VHOST, token=None):
    """A request signed with the reference signer (header auth) sent raw."""
    hs = [("Host", host)] + list(headers)
    out, _, _ = ref.sign_headers(method, path, [], hs, payload_hash, akid or sa.access_key_id,
                                 secret or sa.secret, REGION, "s3", amz_now(sa), token)
    return raw_request(sa, method, path, out[1:], body, host)


def chunked_put(sa, key, data, mode, chunk=65536, trailers=None, mutate=None,
                tamper_trailer_sig=False, decoded_len=None):
    """A PUT of data as aws-chunked in mode, signed with the reference signer; mutate:
    a function over the [(data, signature)] pieces (the last one empty) before framing."""
    amz = amz_now(sa)
    hs = [("Host", VHOST), ("Content-Encoding", "aws-chunked"),
          ("x-amz-decoded-content-length", str(len(data) if decoded_len is None
                                               else decoded_len)),
          ("x-amz-content-sha256", mode), ("x-amz-date", amz)]
    if trailers is not None:
        hs.append(("x-amz-trailer", ",".join(k for k, _ in trailers)))
    out, seed, _ = ref.sign_headers("PUT", "/" + key, [], hs, mode, sa.access_key_id,
                                    sa.secret, REGION, "s3", amz)
    if mode == ref.STREAMING_UNSIGNED_TRAILER:
        body = ref.aws_chunked_unsigned(data, chunk, trailers)
    else:
        skey = ref.signing_key(sa.secret, amz[:8], REGION, "s3")
        scope = ref.scope_of(amz, REGION, "s3")
        pieces = ref.signed_chunk_pieces(ref.split_chunks(data, chunk), skey, amz, scope, seed)
        if mutate:
            pieces = mutate(pieces)
        tsig = None
        if trailers is not None:
            tsig = ref.trailer_signature(skey, amz, scope, pieces[-1][1], trailers)
            if tamper_trailer_sig:
                tsig = ref.trailer_signature(skey, amz, scope, pieces[0][1], trailers)
        body = ref.frame_signed(pieces, trailers, tsig)
    return raw_request(sa, "PUT", "/" + key, out[1:], body)


def s3_error(resp):
    import xml.etree.ElementTree as ET
    root = ET.fromstring(resp.body)
    return {c.tag: c.text for c in root}


def boto3_client(sa, relay, service, secret=None, akid=None, token=None, region=REGION,
                 **config):
    import boto3
    import botocore.config
    s = boto3.session.Session(aws_access_key_id=akid or sa.access_key_id,
                              aws_secret_access_key=secret or sa.secret,
                              aws_session_token=token, region_name=region)
    endpoint_url = config.pop("endpoint_url", None)
    cfg = botocore.config.Config(proxies={"https": relay.url}, retries={"max_attempts": 1},
                                 **config)
    return s.client(service, config=cfg, verify=sa.ca_file, endpoint_url=endpoint_url)


def sqs_json_data_path(root):
    """A botocore data path whose SQS model speaks JSON 1.0 (what current SDKs send;
    Debian's botocore 1.29 only knows SQS's query protocol): the installed model with
    its protocol switched."""
    import botocore
    src = os.path.join(os.path.dirname(botocore.__file__), "data", "sqs", "2012-11-05",
                       "service-2.json")
    with open(src) as f:
        model = json.load(f)
    model["metadata"].update(protocol="json", jsonVersion="1.0", targetPrefix="AmazonSQS",
                             awsQueryCompatible={})
    d = os.path.join(root, "sqs", "2012-11-05")
    os.makedirs(d)
    with open(os.path.join(d, "service-2.json"), "w") as f:
        json.dump(model, f)
    return root


def cli_env(sa, relay, home, **extra):
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "LC_ALL": "C",
           "AWS_ACCESS_KEY_ID": sa.access_key_id, "AWS_SECRET_ACCESS_KEY": sa.secret,
           "AWS_DEFAULT_REGION": REGION, "HTTPS_PROXY": relay.url,
           "AWS_CA_BUNDLE": sa.ca_file, "AWS_EC2_METADATA_DISABLED": "true"}
    env.update(extra)
    return env


def run_cli(env, *args, timeout=180):
    r = subprocess.run([aws_sandbox.AWS_BIN] + list(args), env=env, capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def curl_presigned(sa, url, timeout=20):
    """curl GET of a presigned URL, every connection sent to the stand-in (--connect-to:
    the URL, Host and SNI stay the real name). (status, body bytes)."""
    r = subprocess.run(["curl", "-sS", "-m", str(timeout), "--cacert", sa.ca_file,
                        "--noproxy", "*", "--connect-to", "::%s:%d" % (sa.host, sa.port),
                        "-w", "\n%{http_code}", url], capture_output=True,
                       timeout=timeout + 10, stdin=subprocess.DEVNULL)
    body, _, code = r.stdout.rpartition(b"\n")
    if r.returncode != 0:
        raise AssertionError("curl exited %d: %s" % (r.returncode, r.stderr.decode()))
    return int(code), body


# --------------------------------------------------------------------------- stand-in

class StandinTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sa = AwsStandin(cls, buckets=("mybucket", "examplebucket"),
                            queues=("myqueue",))
        cls.relay = standin_relay(cls, cls.sa)
        cls.tmp = tempfile.mkdtemp(prefix="sgtest-awsstandin-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def setUp(self):
        self.sa.clock_offset = 0.0
        self.mark = len(self.sa.records)

    def new_records(self):
        return self.sa.records[self.mark:]

    def client(self, service, **kw):
        return boto3_client(self.sa, self.relay, service, **kw)

    def assert_client_error(self, fn, code, status):
        import botocore.exceptions
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn()
        err = cm.exception.response
        self.assertEqual(err["Error"]["Code"], code, err)
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], status, err)
        return err

    # -- S3 with boto3 -------------------------------------------------------------------

    def test_boto3_s3_object_lifecycle(self):
        s3 = self.client("s3")
        data = sgtest.payload(100000, seed=3)
        s3.put_object(Bucket="mybucket", Key="life/obj.bin", Body=data,
                      ContentType="application/x-test", Metadata={"who": "boto3"})
        self.assertEqual(self.sa.objects("mybucket")["life/obj.bin"], data)
        got = s3.get_object(Bucket="mybucket", Key="life/obj.bin")
        self.assertEqual(got["Body"].read(), data)
        self.assertEqual(got["ContentType"], "application/x-test")
        self.assertEqual(got["Metadata"], {"who": "boto3"})
        part = s3.get_object(Bucket="mybucket", Key="life/obj.bin", Range="bytes=10-19")
        self.assertEqual(part["Body"].read(), data[10:20])
        self.assertEqual(part["ContentRange"], "bytes 10-19/100000")
        tail = s3.get_object(Bucket="mybucket", Key="life/obj.bin", Range="bytes=-5")
        self.assertEqual(tail["Body"].read(), data[-5:])
        head = s3.head_object(Bucket="mybucket", Key="life/obj.bin")
        self.assertEqual(head["ContentLength"], 100000)
        self.assertEqual(head["ETag"], '"%s"' % hashlib.md5(data).hexdigest())
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mybucket",
                                                     Prefix="life/")["Contents"]]
        self.assertEqual(keys, ["life/obj.bin"])
        s3.delete_object(Bucket="mybucket", Key="life/obj.bin")
        self.assertNotIn("life/obj.bin", self.sa.objects("mybucket"))
        self.assert_client_error(lambda: s3.get_object(Bucket="mybucket", Key="life/obj.bin"),
                                 "NoSuchKey", 404)
        recs = self.new_records()
        self.assertEqual([r["operation"] for r in recs],
                         ["PutObject", "GetObject", "GetObject", "GetObject", "HeadObject",
                          "ListObjectsV2", "DeleteObject", "GetObject"])
        for r in recs:
            self.assertTrue(r["verified"], r)
            self.assertEqual((r["credential"], r["access_key_id"], r["host"], r["sni"]),
                             ("primary", self.sa.access_key_id, "mybucket.s3.amazonaws.com",
                              "mybucket.s3.amazonaws.com"))

    def test_boto3_path_style(self):
        s3 = self.client("s3", s3={"addressing_style": "path"})
        s3.put_object(Bucket="mybucket", Key="path/style key+x", Body=b"p")
        self.assertEqual(self.sa.objects("mybucket")["path/style key+x"], b"p")
        r = self.new_records()[-1]
        self.assertEqual((r["host"], r["path"], r["bucket"], r["verified"]),
                         ("s3.amazonaws.com", "/mybucket/path/style%20key%2Bx", "mybucket",
                          True))

    def test_boto3_wrong_secret_signature_does_not_match(self):
        before = dict(self.sa.objects("mybucket"))
        wrong = aws_standin.new_secret()
        s3 = self.client("s3", secret=wrong)
        err = self.assert_client_error(
            lambda: s3.put_object(Bucket="mybucket", Key="nope", Body=b"x"),
            "SignatureDoesNotMatch", 403)
        self.assertIn("CanonicalRequest", err["Error"])
        self.assertEqual(self.sa.objects("mybucket"), before)
        self.assert_client_error(lambda: self.client("sts", secret=wrong).get_caller_identity(),
                                 "SignatureDoesNotMatch", 403)
        self.assert_client_error(lambda: self.client("sqs", secret=wrong).send_message(
            QueueUrl=self.sa.queue_url("myqueue"), MessageBody="x"),
            "SignatureDoesNotMatch", 403)
        recs = self.new_records()
        self.assertEqual(len(recs), 3)
        for r in recs:
            self.assertEqual((r["verified"], r["error"], r["credential"]),
                             (False, "SignatureDoesNotMatch", "primary"), r)
            self.assertEqual(self.sa.find(wrong), [])

    def test_unknown_key_refused(self):
        akid = aws_standin.new_access_key_id()
        self.assert_client_error(lambda: self.client("s3", akid=akid).get_object(
            Bucket="mybucket", Key="k"), "InvalidAccessKeyId", 403)
        self.assert_client_error(lambda: self.client("sts", akid=akid).get_caller_identity(),
                                 "InvalidClientTokenId", 403)
        self.assertEqual([r["credential"] for r in self.new_records()], [None, None])

    def test_tampered_signed_header_refused_unsigned_header_ignored(self):
        """A signed header changed after signing fails; an unsigned one added does not
        (so the failure is the signature, not the request)."""
        self.sa.put_object("mybucket", "tamper", b"0123456789")
        s3 = self.client("s3")

        def change_range(request, **kw):
            request.headers["Range"] = "bytes=0-3"

        def add_unsigned(request, **kw):
            request.headers["X-Extra-Unsigned"] = "1"
        s3.meta.events.register("before-send.s3.GetObject", add_unsigned)
        got = s3.get_object(Bucket="mybucket", Key="tamper", Range="bytes=0-1")
        self.assertEqual(got["Body"].read(), b"01")
        s3.meta.events.register("before-send.s3.GetObject", change_range)
        self.assert_client_error(lambda: s3.get_object(Bucket="mybucket", Key="tamper",
                                                       Range="bytes=0-1"),
                                 "SignatureDoesNotMatch", 403)
        recs = self.new_records()
        self.assertEqual([(r["verified"], r["status"]) for r in recs],
                         [(True, 206), (False, 403)])

    def test_clock_skew_and_scope(self):
        self.sa.clock_offset = 3600
        err = self.assert_client_error(lambda: self.client("s3").get_object(
            Bucket="mybucket", Key="k"), "RequestTimeTooSkewed", 403)
        self.assertEqual(err["Error"]["MaxAllowedSkewMilliseconds"], "900000")
        err = self.assert_client_error(lambda: self.client("sts").get_caller_identity(),
                                       "SignatureDoesNotMatch", 403)
        self.assertIn("Signature expired", err["Error"]["Message"])
        self.sa.clock_offset = 0
        sts = self.client("sts", region="eu-west-1",
                          endpoint_url="https://sts.us-east-1.amazonaws.com")
        err = self.assert_client_error(sts.get_caller_identity, "SignatureDoesNotMatch", 403)
        self.assertIn("scoped to a valid region", err["Error"]["Message"])
        self.assertEqual(self.client("sts", region="eu-west-1").get_caller_identity()
                         ["Account"], aws_standin.ACCOUNT)
        self.assertEqual([r["host"] for r in self.new_records()][-1],
                         "sts.amazonaws.com")

    def test_session_token_checked(self):
        token = "FwoGZXIvYXdzE" + aws_standin.new_secret()
        sa = AwsStandin(self, session_token=token)
        relay = standin_relay(self, sa)
        ok = boto3_client(sa, relay, "s3", token=token)
        ok.put_object(Bucket="mybucket", Key="t", Body=b"t")
        self.assertEqual(boto3_client(sa, relay, "sts", token=token).get_caller_identity()
                         ["Account"], aws_standin.ACCOUNT)
        self.assert_client_error(lambda: boto3_client(sa, relay, "s3").get_object(
            Bucket="mybucket", Key="t"), "InvalidToken", 400)
        self.assert_client_error(lambda: boto3_client(sa, relay, "sts", token=token + "x")
                                 .get_caller_identity(), "InvalidClientTokenId", 403)
        self.assertEqual([(r["operation"], r["verified"], r["error"]) for r in sa.records],
                         [("PutObject", True, None), ("GetCallerIdentity", True, None),
                          (None, False, "InvalidToken"), (None, False, "InvalidClientTokenId")])
        self.assertEqual(sa.records[0]["headers"].count(["X-Amz-Security-Token", token]), 1)

    # -- the CLI -------------------------------------------------------------------------

    def test_cli_cp_small_and_multipart_roundtrip(self):
        home = tempfile.mkdtemp(dir=self.tmp)
        env = cli_env(self.sa, self.relay, home)
        small, big = os.path.join(home, "small.bin"), os.path.join(home, "big.bin")
        with open(small, "wb") as f:
            f.write(sgtest.payload(3000, seed=5))
        with open(big, "wb") as f:
            f.write(sgtest.payload(9 << 20, seed=6))
        for src, key in ((small, "cli/small.bin"), (big, "cli/big.bin")):
            rc, out, err = run_cli(env, "s3", "cp", src, "s3://mybucket/" + key)
            self.assertEqual(rc, 0, err)
        up = self.new_records()
        self.assertEqual([r["operation"] for r in up][:2], ["PutObject",
                                                            "CreateMultipartUpload"])
        self.assertEqual(sorted(r.get("part_number") for r in up
                                if r["operation"] == "UploadPart"), [1, 2])
        self.assertEqual(up[-1]["operation"], "CompleteMultipartUpload")
        objs = self.sa.objects("mybucket")
        self.assertEqual(objs["cli/small.bin"], sgtest.payload(3000, seed=5))
        self.assertEqual(sgtest.sha256(objs["cli/big.bin"]),
                         sgtest.sha256(sgtest.payload(9 << 20, seed=6)))
        self.mark = len(self.sa.records)
        back = os.path.join(home, "back.bin")
        rc, out, err = run_cli(env, "s3", "cp", "s3://mybucket/cli/big.bin", back)
        self.assertEqual(rc, 0, err)
        with open(back, "rb") as f:
            self.assertEqual(sgtest.sha256(f.read()), sgtest.sha256(objs["cli/big.bin"]))
        down = self.new_records()
        ranges = sorted(dict((k.lower(), v) for k, v in r["headers"]).get("range", "")
                        for r in down if r["operation"] == "GetObject")
        self.assertEqual(ranges, ["bytes=0-8388607", "bytes=8388608-"])
        for r in up + down:
            self.assertTrue(r["verified"], r)
            self.assertEqual(r["host"], VHOST)

    def test_cli_sts_get_caller_identity(self):
        rc, out, err = run_cli(cli_env(self.sa, self.relay, tempfile.mkdtemp(dir=self.tmp)),
                               "sts", "get-caller-identity")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["Arn"],
                         "arn:aws:iam::%s:user/sealgate-test" % aws_standin.ACCOUNT)
        r = self.new_records()[-1]
        self.assertEqual((r["operation"], r["host"], r["verified"]),
                         ("GetCallerIdentity", "sts.us-east-1.amazonaws.com", True))

    def test_cli_wrong_secret_fails_with_aws_message(self):
        env = cli_env(self.sa, self.relay, tempfile.mkdtemp(dir=self.tmp),
                      AWS_SECRET_ACCESS_KEY=aws_standin.new_secret())
        rc, out, err = run_cli(env, "s3", "ls", "s3://mybucket/")
        self.assertNotEqual(rc, 0)
        self.assertIn("An error occurred (SignatureDoesNotMatch) when calling the "
                      "ListObjectsV2 operation", err)

    # -- presigned -----------------------------------------------------------------------

    def test_presigned_get_with_curl(self):
        data = sgtest.payload(5000, seed=8)
        self.sa.put_object("mybucket", "pre/signed.bin", data)
        s3 = self.client("s3", signature_version="s3v4")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "mybucket",
                                                              "Key": "pre/signed.bin"},
                                        ExpiresIn=600)
        self.assertIn("X-Amz-Signature=", url)
        self.assertEqual(curl_presigned(self.sa, url), (200, data))
        code, body = curl_presigned(self.sa, url.replace("signed.bin", "signed.bim"))
        self.assertEqual((code, s3_error(sgtest.Response(0, "", [], body, b""))["Code"]),
                         (403, "SignatureDoesNotMatch"))
        self.sa.clock_offset = 601
        code, body = curl_presigned(self.sa, url)
        err = s3_error(sgtest.Response(0, "", [], body, b""))
        self.assertEqual((code, err["Code"], err["Message"]),
                         (403, "AccessDenied", "Request has expired"))
        recs = self.new_records()
        self.assertEqual([(r["auth"], r["verified"], r["status"]) for r in recs],
                         [("query", True, 200), ("query", False, 403), ("query", False, 403)])
        self.assertEqual([r["error"] for r in recs],
                         [None, "SignatureDoesNotMatch", "AccessDenied"])

    def test_presigned_sigv2_refused(self):
        """Debian's boto3 presigns SigV2 by default (AWSAccessKeyId=&Signature=): the
        stand-in answers as a SigV4-only region does."""
        self.sa.put_object("mybucket", "v2", b"v2")
        url = self.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": "mybucket", "Key": "v2"}, ExpiresIn=60)
        self.assertIn("AWSAccessKeyId=", url)
        code, body = curl_presigned(self.sa, url)
        self.assertEqual((code, s3_error(sgtest.Response(0, "", [], body, b""))["Code"]),
                         (400, "InvalidRequest"))
        self.assertEqual(self.new_records()[-1]["auth"], "sigv2")

    # -- hand-built uploads (reference signer) --------------------------------------------

    def test_chunked_signed_upload(self):
        data = sgtest.payload(200000, seed=9)
        r = chunked_put(self.sa, "chunk/signed.bin", data, ref.STREAMING_SIGNED)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.sa.objects("mybucket")["chunk/signed.bin"], data)
        rec = self.new_records()[-1]
        self.assertEqual((rec["chunks_verified"], rec["decoded_len"], rec["verified"],
                          rec["payload"]), (5, 200000, True, ref.STREAMING_SIGNED))
        self.assertEqual(r.header("ETag"), '"%s"' % hashlib.md5(data).hexdigest())

    def test_chunked_replayed_reordered_dropped_tampered_refused(self):
        data = sgtest.payload(4 * 65536, seed=10)
        cases = {
            "replayed": (lambda p: [p[0], p[0]] + p[1:], 403, "SignatureDoesNotMatch"),
            "reordered": (lambda p: [p[1], p[0]] + p[2:], 403, "SignatureDoesNotMatch"),
            "replayed final": (lambda p: p[:2] + [p[-1]], 403, "SignatureDoesNotMatch"),
            "tampered data": (lambda p: [(b"X" + p[0][0][1:], p[0][1])] + p[1:], 403,
                              "SignatureDoesNotMatch"),
            "no final chunk": (lambda p: p[:-1], 400, "IncompleteBody"),
        }
        for name, (mutate, status, code) in cases.items():
            with self.subTest(name):
                r = chunked_put(self.sa, "chunk/" + name.replace(" ", "-"), data,
                                ref.STREAMING_SIGNED, mutate=mutate)
                self.assertEqual((r.status, s3_error(r)["Code"]), (status, code), r.body)
                self.assertNotIn("chunk/" + name.replace(" ", "-"), self.sa.objects("mybucket"))
        small = chunked_put(self.sa, "chunk/small", data, ref.STREAMING_SIGNED, chunk=4096)
        self.assertEqual((small.status, s3_error(small)["Code"]),
                         (403, "InvalidChunkSizeError"), small.body)
        amz, seed = amz_now(self.sa), "1" * 64      # a trailer a signed-only payload did
        key = ref.signing_key(self.sa.secret, amz[:8], REGION, "s3")   # not announce
        scope = ref.scope_of(amz, REGION, "s3")
        pieces = ref.signed_chunk_pieces([], key, amz, scope, seed)
        ctx = aws_standin.ChunkContext(key, amz, scope, seed)
        self.assertEqual(aws_standin.decode_aws_chunked(
            ref.frame_signed(pieces), ref.STREAMING_SIGNED, ctx), (b"", [], 1))
        with self.assertRaises(aws_standin.AwsError) as cm:
            aws_standin.decode_aws_chunked(ref.frame_signed(pieces, [("x-amz-meta-late", "1")]),
                                           ref.STREAMING_SIGNED, ctx)
        self.assertEqual(cm.exception.code, "MalformedTrailerError")
        control = chunked_put(self.sa, "chunk/control", data, ref.STREAMING_SIGNED,
                              mutate=lambda p: list(p))
        self.assertEqual(control.status, 200, control.body)

    def test_chunked_signed_trailer_upload(self):
        data = sgtest.payload(70000, seed=11)
        good = [("x-amz-checksum-crc32c", aws_standin.checksum_b64("crc32c", data))]
        r = chunked_put(self.sa, "trail/ok", data, ref.STREAMING_SIGNED_TRAILER, trailers=good)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.sa.objects("mybucket")["trail/ok"], data)
        self.assertEqual(self.new_records()[-1]["trailers"], [list(good[0])])
        r = chunked_put(self.sa, "trail/badsig", data, ref.STREAMING_SIGNED_TRAILER,
                        trailers=good, tamper_trailer_sig=True)
        self.assertEqual((r.status, s3_error(r)["Code"]), (403, "SignatureDoesNotMatch"))
        bad = [("x-amz-checksum-crc32c", aws_standin.checksum_b64("crc32c", data + b"x"))]
        r = chunked_put(self.sa, "trail/badsum", data, ref.STREAMING_SIGNED_TRAILER,
                        trailers=bad)
        self.assertEqual((r.status, s3_error(r)["Code"]), (400, "BadDigest"))
        self.assertEqual(sorted(k for k in self.sa.objects("mybucket")
                                if k.startswith("trail/")), ["trail/ok"])

    def test_unsigned_trailer_upload(self):
        data = sgtest.payload(90000, seed=12)
        ok = [("x-amz-checksum-crc32", aws_standin.checksum_b64("crc32", data))]
        r = chunked_put(self.sa, "ut/ok", data, ref.STREAMING_UNSIGNED_TRAILER, trailers=ok,
                        chunk=8192)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.sa.objects("mybucket")["ut/ok"], data)
        bad = [("x-amz-checksum-crc32", aws_standin.checksum_b64("crc32", data[1:]))]
        r = chunked_put(self.sa, "ut/bad", data, ref.STREAMING_UNSIGNED_TRAILER, trailers=bad)
        self.assertEqual((r.status, s3_error(r)["Code"]), (400, "BadDigest"))
        r = chunked_put(self.sa, "ut/len", data, ref.STREAMING_UNSIGNED_TRAILER, trailers=ok,
                        decoded_len=len(data) + 1)
        self.assertEqual((r.status, s3_error(r)["Code"]), (400, "IncompleteBody"))
        self.assertNotIn("ut/bad", self.sa.objects("mybucket"))

    def test_payload_hash_checked(self):
        body = b"the body"
        r = signed_raw(self.sa, "PUT", "/ph/ok", [], body, ref.sha256_hex(body))
        self.assertEqual(r.status, 200, r.body)
        r = signed_raw(self.sa, "PUT", "/ph/bad", [], body, ref.sha256_hex(b"other"))
        self.assertEqual((r.status, s3_error(r)["Code"]), (400, "XAmzContentSHA256Mismatch"))
        self.assertEqual(sorted(k for k in self.sa.objects("mybucket") if k.startswith("ph/")),
                         ["ph/ok"])

    def test_docs_chunked_example_end_to_end(self):
        """The S3 documents' chunked PUT, byte for byte, at the stand-in's clock set to
        its date: the seed checked by botocore, the chunks by the stand-in."""
        sa = AwsStandin(self, access_key_id=DOC_AK, secret=DOC_SK,
                        buckets=("examplebucket",), clock_offset=DOC_T - time.time())
        out, seed, _ = doc_chunked_headers(trailer=False)
        body = b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (n, s.encode(), b"a" * n)
                        for n, s in zip((65536, 1024, 0), DOC_CHUNK_SIGS))
        hs = [h for h in out if h[0].lower() != "content-length"]
        r = raw_request(sa, "PUT", "/examplebucket/chunkObject.txt", hs, body,
                        host="s3.amazonaws.com")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(sa.objects("examplebucket")["chunkObject.txt"], b"a" * 66560)
        rec = sa.records[-1]
        self.assertEqual((rec["chunks_verified"], rec["body_len"], rec["verified"]),
                         (3, 66824, True))

    # -- STS and SQS -----------------------------------------------------------------------

    def test_assume_role_credentials_work_and_expire(self):
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::mybucket/assumed/*"}]})
        got = self.client("sts").assume_role(
            RoleArn="arn:aws:iam::%s:role/sealgate-x" % aws_standin.ACCOUNT,
            RoleSessionName="sess1", ExternalId="ext-1", DurationSeconds=900, Policy=policy)
        c = got["Credentials"]
        self.assertTrue(c["AccessKeyId"].startswith("ASIA"), c)
        self.assertEqual(len(c["AccessKeyId"]), 20)
        rec = self.new_records()[-1]
        self.assertEqual((rec["operation"], rec["params"]["Policy"], rec["params"]["ExternalId"],
                          rec["issued_access_key_id"]),
                         ("AssumeRole", policy, "ext-1", c["AccessKeyId"]))
        kw = dict(akid=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
        self.sa.put_object("mybucket", "assumed/o", b"temp")
        self.assertEqual(self.client("s3", **kw).get_object(
            Bucket="mybucket", Key="assumed/o")["Body"].read(), b"temp")
        me = self.client("sts", **kw).get_caller_identity()
        self.assertEqual(me["Arn"], "arn:aws:sts::%s:assumed-role/sealgate-x/sess1"
                         % aws_standin.ACCOUNT)
        self.client("sqs", **kw).send_message(QueueUrl=self.sa.queue_url("myqueue"),
                                              MessageBody="from assumed")
        self.assertEqual([r["credential"] for r in self.new_records()[-3:]], ["assumed"] * 3)
        self.assert_client_error(lambda: self.client("s3", **dict(kw, token=None)).get_object(
            Bucket="mybucket", Key="assumed/o"), "InvalidToken", 400)
        self.sa.clock_offset = 901
        self.assert_client_error(lambda: self.client("sts", **kw).get_caller_identity(),
                                 "ExpiredToken", 403)

    def test_sqs_send_message_query_protocol(self):
        """Debian's boto3 (botocore 1.29) sends SQS's query protocol."""
        got = self.client("sqs").send_message(QueueUrl=self.sa.queue_url("myqueue"),
                                              MessageBody="hello query")
        rec = self.new_records()[-1]
        self.assertEqual((rec["operation"], rec["protocol"], rec["params"]["MessageBody"],
                          rec["message_id"], rec["verified"]),
                         ("SendMessage", "query", "hello query", got["MessageId"], True))
        self.assertEqual(got["MD5OfMessageBody"], hashlib.md5(b"hello query").hexdigest())
        self.assertIn({"MessageId": got["MessageId"], "Body": "hello query"},
                      self.sa.messages("myqueue"))

    def test_sqs_send_message_json_protocol(self):
        """SQS's JSON 1.0 protocol (X-Amz-Target: AmazonSQS.SendMessage), from boto3 with
        the SQS model switched to it, as current SDKs speak."""
        import boto3
        import botocore.config
        import botocore.session
        bs = botocore.session.get_session()
        bs.set_config_variable("data_path",
                               sqs_json_data_path(tempfile.mkdtemp(dir=self.tmp)))
        s = boto3.session.Session(botocore_session=bs, region_name=REGION,
                                  aws_access_key_id=self.sa.access_key_id,
                                  aws_secret_access_key=self.sa.secret)
        sqs = s.client("sqs", verify=self.sa.ca_file, config=botocore.config.Config(
            proxies={"https": self.relay.url}, retries={"max_attempts": 1}))
        got = sqs.send_message(QueueUrl=self.sa.queue_url("myqueue"), MessageBody="hi json")
        rec = self.new_records()[-1]
        hdrs = {k.lower(): v for k, v in rec["headers"]}
        self.assertEqual((hdrs["x-amz-target"], hdrs["content-type"], rec["protocol"],
                          json.loads(rec["body"])["MessageBody"], rec["message_id"]),
                         ("AmazonSQS.SendMessage", "application/x-amz-json-1.0", "json",
                          "hi json", got["MessageId"]))
        self.assertEqual(sqs.get_queue_url(QueueName="myqueue")["QueueUrl"],
                         self.sa.queue_url("myqueue"))
        bad = s.client("sqs", verify=self.sa.ca_file, aws_secret_access_key="x" * 40,
                       aws_access_key_id=self.sa.access_key_id,
                       config=botocore.config.Config(proxies={"https": self.relay.url},
                                                     retries={"max_attempts": 1}))
        self.assert_client_error(lambda: bad.send_message(
            QueueUrl=self.sa.queue_url("myqueue"), MessageBody="x"), "SignatureDoesNotMatch",
            403)
        self.assert_client_error(lambda: sqs.send_message(
            QueueUrl=self.sa.queue_url("nosuch"), MessageBody="x"), "QueueDoesNotExist", 400)

    # -- the record and the relay ----------------------------------------------------------

    def test_record_finds_what_reached_and_relay_refuses_others(self):
        s3 = self.client("s3")
        marker = "marker-" + os.urandom(6).hex()
        s3.put_object(Bucket="mybucket", Key="rec/" + marker, Body=b"body-" + marker.encode())
        hits = self.sa.find(marker)
        self.assertEqual(len(hits), 1)
        self.assertEqual(self.sa.wait_records(lambda r: marker in r["target"], timeout=5),
                         hits)
        self.assertEqual(hits[0]["operation"], "PutObject")
        self.assertEqual(self.sa.find(self.sa.secret), [])
        self.assertEqual(self.sa.find("never-sent-" + marker), [])
        self.assertEqual(len(self.sa.records_where(operation="PutObject", key="rec/" + marker)),
                         1)
        n = len(self.sa.records)
        c = sgtest.RawConn(type("P", (), {"proxy": ("127.0.0.1", self.relay.port)})())
        with c:
            r = c.connect("api.example.test:443")
        self.assertEqual(r.status, 403)
        self.assertIn(("api.example.test:443", False), self.relay.connects)
        self.assertEqual(len(self.sa.records), n)


class StandinProcessTest(sgtest.TestCase):
    def test_process_records_and_stop_by_pid(self):
        sa = AwsStandinProcess(self, buckets=("mybucket",))
        relay = standin_relay(self, sa)
        boto3_client(sa, relay, "s3").put_object(Bucket="mybucket", Key="p", Body=b"proc")
        self.assertEqual(boto3_client(sa, relay, "s3").get_object(
            Bucket="mybucket", Key="p")["Body"].read(), b"proc")
        self.assertEqual([(r["operation"], r["verified"]) for r in sa.records],
                         [("PutObject", True), ("GetObject", True)])
        with open(os.path.join(sa.dir, "config.json")) as f:
            self.assertEqual(os.fstat(f.fileno()).st_mode & 0o777, 0o600)
        with open("/proc/%d/cmdline" % sa.pid, "rb") as f:
            self.assertNotIn(sa.secret.encode(), f.read())
        self.assertEqual(sa.stop(), 0)
        self.assertIsNotNone(sa.proc.poll())


# --------------------------------------------------------------------------- namespaces

class AwsSandboxDirectTest(sgtest.TestCase):
    """aws_sandbox's direct topology, proven before the proxy's AWS support exists."""

    @classmethod
    def setUpClass(cls):
        cls.root_before = sgnetns.root_net_state()
        cls.sb = aws_sandbox.AwsSandbox(cls, proxied=False)
        cls.sa = cls.sb.start_standin(buckets=("mybucket",), queues=("myqueue",))

    def env(self, **extra_aws):
        aws = {"AWS_ACCESS_KEY_ID": self.sa.access_key_id,
               "AWS_SECRET_ACCESS_KEY": self.sa.secret, "AWS_DEFAULT_REGION": REGION,
               "AWS_CA_BUNDLE": self.sa.ca_file, "AWS_EC2_METADATA_DISABLED": "true"}
        aws.update(extra_aws)
        return self.sb.client_env(aws=aws)

    def test_cli_cp_and_sts_at_real_names(self):
        env = self.env()
        src = os.path.join(env["HOME"], "up.bin")
        text = "".join("line %d of the namespace upload\n" % i for i in range(1500))
        with open(src, "w") as f:
            f.write(text)
        n = len(self.sa.records)
        rc, out, err = self.sb.aws(env, "s3", "cp", src, "s3://mybucket/ns/up.bin")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.sb.aws(env, "s3", "cp", "s3://mybucket/ns/up.bin", "-")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, text)
        rc, out, err = self.sb.aws(env, "sts", "get-caller-identity")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["Account"], aws_standin.ACCOUNT)
        recs = self.sa.records[n:]
        self.assertEqual([r["operation"] for r in recs],
                         ["PutObject", "HeadObject", "GetObject", "GetCallerIdentity"])
        self.assertEqual(self.sa.objects("mybucket")["ns/up.bin"], text.encode())
        for r in recs:
            self.assertTrue(r["verified"], r)
            self.assertEqual(r["host"], r["sni"])      # port 443: no port in Host
            self.assertTrue(r["host"].endswith(".amazonaws.com"), r)

    def test_boto3_default_endpoints_in_namespace(self):
        code = ("import boto3, json\n"
                "s = boto3.session.Session()\n"
                "m = s.client('sqs').send_message(QueueUrl='%s', MessageBody='ns-msg')\n"
                "s.client('s3').put_object(Bucket='mybucket', Key='ns/boto3', Body=b'b3')\n"
                "print(json.dumps([m['MessageId'], s.client('sts').get_caller_identity()"
                "['Arn']]))\n" % self.sa.queue_url("myqueue"))
        rc, out, err = self.sb.python(self.env(), code)
        self.assertEqual(rc, 0, err)
        mid, arn = json.loads(out)
        self.assertIn({"MessageId": mid, "Body": "ns-msg"}, self.sa.messages("myqueue"))
        self.assertEqual(self.sa.objects("mybucket")["ns/boto3"], b"b3")
        self.assertTrue(arn.endswith(":user/sealgate-test"), arn)

    def test_wrong_secret_in_namespace(self):
        rc, out, err = self.sb.aws(self.env(AWS_SECRET_ACCESS_KEY=aws_standin.new_secret()),
                                   "sts", "get-caller-identity")
        self.assertNotEqual(rc, 0)
        self.assertIn("(SignatureDoesNotMatch)", err)

    def test_environment_is_exactly_what_was_given(self):
        env = self.sb.client_env(extra={"HTTPS_PROXY": "http://169.254.40.9:3128"})
        rc, out, err = self.sb.run(env, ["env"])
        self.assertEqual(rc, 0, err)
        got = dict(line.split("=", 1) for line in out.splitlines())
        self.assertEqual(got, env)
        self.assertFalse(os.listdir(env["HOME"]))
        with self.assertRaises(AssertionError):
            self.sb.client_env(extra={"AWS_ACCESS_KEY_ID": "AKIAX"})
        with self.assertRaises(AssertionError):
            self.sb.client_env(guest={"AWS_SECRET_ACCESS_KEY": "x"})

    def test_names_resolve_only_through_hosts_file(self):
        code = ("import socket, sys\n"
                "for n in sys.argv[1:]:\n"
                "    try: print(n, socket.gethostbyname(n))\n"
                "    except OSError as e: print(n, 'ERR')\n")
        rc, out, err = self.sb.python(self.sb.client_env(), code, VHOST,
                                      "sts.amazonaws.com", "example.com")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.split("\n")[:3],
                         ["%s %s" % (VHOST, self.sa.host),
                          "sts.amazonaws.com %s" % self.sa.host, "example.com ERR"])
        rc, out, err = self.sb.run(self.sb.client_env(), ["ip", "route", "show"])
        self.assertNotIn("default", out)

    def test_root_namespace_untouched(self):
        self.assertEqual(sgnetns.root_net_state(), self.root_before)



class AwsSandboxProxiedTest(sgtest.TestCase):
    """aws_sandbox's proxied topology with today's sealgate (no AWS credential in its
    policy: it intercepts and forwards the client's own signature untouched). Proves the
    plumbing the AWS end-to-end test builds on: the guest's /v1/env is all the sandbox
    gets besides the keys given here, sealgate runs in the gateway namespace and resolves
    the AWS names to the stand-in on :443, the signature survives the proxy."""

    @classmethod
    def setUpClass(cls):
        cls.root_before = sgnetns.root_net_state()
        cls.sb = aws_sandbox.AwsSandbox(cls, proxied=True)
        cls.sa = cls.sb.start_standin(buckets=("mybucket",), queues=("myqueue",))
        cls.sg = cls.sb.start_sealgate(cls.sb.sealgate_policy(
            egress={"allow_hosts": ["*.amazonaws.com"], "intercept": "all"}))
        cls.guest = cls.sb.guest_init()

    def keys(self):
        return {"AWS_ACCESS_KEY_ID": self.sa.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.sa.secret, "AWS_DEFAULT_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def test_guest_env_is_proxy_and_ca_only(self):
        g = self.guest
        self.assertEqual(g["HTTPS_PROXY"], "http://" + aws_sandbox.GW_PROXY)
        with open(g["REQUESTS_CA_BUNDLE"], "rb") as f, open(self.sg.ca_cert, "rb") as ca:
            self.assertEqual(f.read(), ca.read())
        self.assertIn("169.254.169.254", g["NO_PROXY"])
        self.assertEqual([k for k in g if k.upper().startswith("AWS")], [])

    def test_cli_through_sealgate_reaches_standin(self):
        env = self.sb.client_env(guest=self.guest, aws=self.keys())
        src = os.path.join(env["HOME"], "p.txt")
        with open(src, "w") as f:
            f.write("through the proxy\n")
        n = len(self.sa.records)
        rc, out, err = self.sb.aws(env, "s3", "cp", src, "s3://mybucket/px/p.txt")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.sb.aws(env, "sts", "get-caller-identity")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.sb.python(env, "import boto3; print(boto3.client('sqs')."
                                      "send_message(QueueUrl='%s', MessageBody='px')"
                                      "['MessageId'])" % self.sa.queue_url("myqueue"))
        self.assertEqual(rc, 0, err)
        recs = self.sa.records[n:]
        self.assertEqual([(r["operation"], r["verified"]) for r in recs],
                         [("PutObject", True), ("GetCallerIdentity", True),
                          ("SendMessage", True)])
        self.assertEqual([r["sni"] for r in recs],
                         [VHOST, "sts.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com"])
        self.assertEqual(recs[2]["message_id"], out.strip())
        self.assertEqual(self.sa.objects("mybucket")["px/p.txt"], b"through the proxy\n")

    def test_no_way_around_the_proxy(self):
        n = len(self.sa.records)
        env = self.sb.client_env(aws=self.keys())        # no HTTPS_PROXY: direct
        rc, out, err = self.sb.aws(env, "sts", "get-caller-identity", timeout=60)
        self.assertNotEqual(rc, 0)
        rc, out, err = self.sb.python(env, (
            "import socket, errno\n"
            "try:\n socket.create_connection(('%s', 443), timeout=5); print('connected')\n"
            "except OSError as e:\n print(errno.errorcode.get(e.errno, e))") % self.sa.host)
        self.assertEqual(out.strip(), "ENETUNREACH", err)
        self.assertEqual(len(self.sa.records), n)

    def test_root_namespace_untouched(self):
        self.assertEqual(sgnetns.root_net_state(), self.root_before)


if __name__ == "__main__":
    unittest.main()
