"""The metadata responder's AWS endpoints, with real AWS clients.

Sandboxes by source address: `awssb` 127.0.0.1 (aws-dev with region eu-west-3, then
aws-two, then a bearer credential), `noaws` 127.0.0.2 (the bearer credential only),
`flood` 127.0.0.4 (rate limit), `multi` 127.0.0.5 (aws-two first: no region),
`aux` 127.0.0.6 (refusals). The responder listens on 127.0.0.1 twice: listen.metadata and
listen.metadata_aws (where AWS_CONTAINER_CREDENTIALS_FULL_URI points).

Clients: curl for the IMDSv2 sequence; botocore's InstanceMetadataFetcher,
InstanceMetadataRegionFetcher, ContainerMetadataFetcher and credential chain (Debian's
python3-botocore) in a child /usr/bin/python3 with a clean environment; Debian's AWS CLI
v2 (/usr/bin/aws), which takes its region from the IMDS availability zone. Derived
credentials are recomputed here from the seal key (docs: awscred.h) and compared; handles
are unsealed with `sealgate unseal`.
"""
import base64
import calendar
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import tempfile
import time

import sgtest
from sgtest import Sealgate, assert_error

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_AKID = "AKIAE2ETESTKEYID0001"
AWS_TOKEN = "IQoJb3JpZ2luX2VjE2e2eRealSessionToken"
BEARER_SECRET = "sk-live-e2e-bearer-0cc175b9c0f1"
AUDIT_FILE = "aws-audit.log"
AKID_RE = re.compile(r"^ASIA[A-Z2-7]{16}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9+/]{40}$")
HANDLE_RE = re.compile(r"^sgh1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+$")
SQS_HOST = "sqs.eu-west-3.amazonaws.com"


def policy_overrides():
    aws = {"access_key_id": {"value": AWS_AKID}, "session_token": {"value": AWS_TOKEN},
           "services": ["s3", "sts", "sqs"]}
    return {
        "listen": {"metadata_aws": "127.0.0.1:0"},
        "audit": {"path": AUDIT_FILE},
        "upstream": {"resolve": {SQS_HOST: sgtest.UPSTREAM_ADDR}},
        "credentials": {
            "aws-dev": {"secret": {"value": AWS_SECRET}, "inject": {"type": "aws_sigv4"},
                        "aws": dict(aws, regions=["eu-west-3"]),
                        "hosts": ["*.amazonaws.com"], "ttl": "20m"},
            "aws-two": {"secret": {"value": AWS_SECRET}, "inject": {"type": "aws_sigv4"},
                        "aws": dict(aws, regions=["us-east-1", "us-west-2"]),
                        "hosts": ["*.amazonaws.com"]},
            "plain": {"secret": {"value": BEARER_SECRET}, "inject": {"type": "bearer"},
                      "hosts": ["api.example.test"], "env": "PLAIN_KEY"},
        },
        "sandboxes": {
            "awssb": {"addresses": ["127.0.0.1/32"],
                      "credentials": ["aws-dev", "aws-two", "plain"]},
            "noaws": {"addresses": ["127.0.0.2/32"], "credentials": ["plain"]},
            "flood": {"addresses": ["127.0.0.4/32"], "credentials": ["aws-dev"]},
            "multi": {"addresses": ["127.0.0.5/32"], "credentials": ["aws-two", "aws-dev"]},
            "aux": {"addresses": ["127.0.0.6/32"], "credentials": ["aws-dev"]},
        },
    }


def b64_nopad_check(s):
    return base64.b64decode(s, validate=True)


class Client:
    """HTTP/1.1 to one responder address from a chosen loopback source address."""

    def __init__(self, addr, source):
        self.addr, self.source, self.conn = addr, source, None

    def request(self, method, path, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.addr[0], self.addr[1], timeout=10,
                                                   source_address=(self.source, 0))
        try:
            self.conn.request(method, path, headers=headers or {})
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        resp = sgtest.Response(r.status, r.reason, r.getheaders(), data, b"")
        if r.will_close:
            self.close()
        return resp

    def imds_token(self, ttl=300):
        r = self.request("PUT", "/latest/api/token",
                         {"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
        if r.status != 200:
            raise AssertionError("PUT /latest/api/token: %d %r" % (r.status, r.body))
        return r.body.decode()

    def imds(self, path, token, method="GET"):
        h = {} if token is None else {"X-aws-ec2-metadata-token": token}
        return self.request(method, path, h)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def source_env(text):
    """The variables of /v1/env text, as sh sees them after sourcing it."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run(["sh", "-c", ". %s && env -0" % path], capture_output=True,
                           timeout=10, env={})
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise AssertionError("sh failed on the env text: %r" % r.stderr)
    out = {}
    for item in r.stdout.split(b"\0"):
        k, sep, v = item.decode().partition("=")
        if sep and k not in ("PWD", "SHLVL", "_"):
            out[k] = v
    return out


def child_python(script, env, timeout=60):
    """Run script with Debian's python in a clean environment; its stdout as JSON."""
    base = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "LC_ALL": "C.UTF-8"}
    base.update(env)
    r = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                       timeout=timeout, env=base, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError("child python exited %d: %s" % (r.returncode, r.stderr[-2000:]))
    return json.loads(r.stdout)


class AwsMetadataTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sg = Sealgate(cls, overrides=policy_overrides())
        cls.md = cls.sg.metadata
        cls.md_aws = sgtest._split_hostport(cls.sg.ready["metadata_aws"])
        with open(os.path.join(cls.sg.dir, "keys", "seal.key")) as f:
            cls.seal_sk = bytes.fromhex(f.read().strip())
        cls.seal_key_path = os.path.join(cls.sg.dir, "keys", "seal.key")

    def client(self, source="127.0.0.1", addr=None):
        c = Client(addr or self.md, source)
        self.addCleanup(c.close)
        return c

    # --- helpers ----------------------------------------------------------------------

    def unseal(self, handle):
        r = subprocess.run([sgtest.SEALGATE_BIN, "unseal", "--key", self.seal_key_path,
                            handle], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def derive(self, handle):
        """(AccessKeyId, SecretAccessKey) of handle as awscred.h defines them."""
        h = handle.encode()
        ak = hashlib.blake2b(h, digest_size=32, key=b"sealgate-aws-akid-v1").digest()[:10]
        prk = hmac.new(b"sealgate-aws-secret-v1", self.seal_sk, hashlib.sha256).digest()
        okm = hmac.new(prk, h + b"\x01", hashlib.sha256).digest()[:30]
        return "ASIA" + base64.b32encode(ak).decode(), base64.b64encode(okm).decode()

    def check_creds(self, akid, secret, token, expiration, cred="aws-dev", sandbox="awssb"):
        """Derived credentials: formats, derivation from the seal key, the handle's claims."""
        self.assertRegex(akid, AKID_RE)
        self.assertRegex(secret, SECRET_RE)
        self.assertEqual(len(b64_nopad_check(secret)), 30)
        self.assertRegex(token, HANDLE_RE)
        self.assertEqual((akid, secret), self.derive(token))
        claims = self.unseal(token)
        self.assertEqual((claims["cred"], claims["sb"]), (cred, sandbox))
        self.assertEqual(expiration, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(claims["exp"])))
        for s in (AWS_SECRET, AWS_AKID, AWS_TOKEN):
            self.assertNotIn(s, akid + secret + token)
        return claims

    def env_of(self, source):
        c = self.client(source)
        r = c.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": "300"})
        self.assertEqual(r.status, 200, r.body)
        r = c.request("GET", "/v1/env", {"X-Sealgate-Token": r.body.decode()})
        self.assertEqual(r.status, 200, r.body)
        return r.body.decode(), source_env(r.body.decode())

    def audit_lines(self):
        return sgtest.audit_lines(self.sg, AUDIT_FILE)

    # --- IMDSv2 with curl -------------------------------------------------------------

    def curl(self, *args):
        r = subprocess.run(["curl", "-sS", "-m", "10", "--noproxy", "*", "-D", "-"] +
                           list(args), capture_output=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, body.decode()

    def test_imds_sequence_with_curl(self):
        base = "http://%s:%d" % self.md
        st, hd, tok = self.curl("-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 21600",
                                base + "/latest/api/token")
        self.assertEqual(st, 200, tok)
        self.assertTrue(tok.startswith("sgt1."), tok)
        self.assertEqual(hd["x-aws-ec2-metadata-token-ttl-seconds"], "21600")
        st, hd, roles = self.curl("-H", "X-aws-ec2-metadata-token: " + tok,
                                  base + "/latest/meta-data/iam/security-credentials/")
        self.assertEqual((st, roles), (200, "aws-dev"))     # the default role only
        self.assertTrue(hd["content-type"].startswith("text/plain"))
        docs = []
        for _ in range(2):
            before = int(time.time())
            st, hd, body = self.curl("-H", "X-aws-ec2-metadata-token: " + tok,
                                     base + "/latest/meta-data/iam/security-credentials/aws-dev")
            self.assertEqual(st, 200, body)
            self.assertEqual(hd["cache-control"], "no-store")
            d = json.loads(body)
            self.assertEqual(list(d), ["Code", "LastUpdated", "Type", "AccessKeyId",
                                       "SecretAccessKey", "Token", "Expiration"])
            self.assertEqual((d["Code"], d["Type"]), ("Success", "AWS-HMAC"))
            updated = calendar.timegm(time.strptime(d["LastUpdated"], "%Y-%m-%dT%H:%M:%SZ"))
            self.assertLessEqual(abs(updated - before), 5)
            claims = self.check_creds(d["AccessKeyId"], d["SecretAccessKey"], d["Token"],
                                      d["Expiration"])
            self.assertEqual(claims["exp"] - claims["iat"], 20 * 60)     # the credential's ttl
            docs.append(d)
        for k in ("Token", "AccessKeyId", "SecretAccessKey"):
            self.assertNotEqual(docs[0][k], docs[1][k], k)
        # each GET of the role minted a handle: an audit "minted" line with the IMDS path
        hids = {self.unseal(d["Token"])["hid"] for d in docs}
        lines = sgtest.wait_for(lambda: [ln for ln in self.audit_lines()
                                         if ln.get("handle_id") in hids][1:] and
                                [ln for ln in self.audit_lines() if ln.get("handle_id") in hids],
                                what="both minted audit lines")
        self.assertEqual(len(lines), 2, lines)
        for ln in lines:
            self.assertEqual((ln["event"], ln["sandbox"], ln["credential"], ln["path"]),
                             ("minted", "awssb", "aws-dev",
                              "/latest/meta-data/iam/security-credentials/aws-dev"), ln)
        # region and zone
        for path, want in (("/latest/meta-data/placement/region", "eu-west-3"),
                           ("/latest/meta-data/placement/availability-zone", "eu-west-3a"),
                           ("/latest/meta-data/placement/availability-zone/", "eu-west-3a")):
            st, _, body = self.curl("-H", "X-aws-ec2-metadata-token: " + tok, base + path)
            self.assertEqual((st, body), (200, want), path)

    def test_imds_refusals(self):
        c = self.client("127.0.0.6")
        for path in ("/latest/meta-data/iam/security-credentials/",
                     "/latest/meta-data/iam/security-credentials",
                     "/latest/meta-data/iam/security-credentials/aws-dev",
                     "/latest/meta-data/placement/region"):
            j = assert_error(self, c.imds(path, None), 401, "token_missing")
            self.assertIn("PUT /latest/api/token", j["message"])
            assert_error(self, c.imds(path, "sgt1.bogus"), 401, "token_invalid")
        other = self.client("127.0.0.1").imds_token()
        assert_error(self, c.imds("/latest/meta-data/iam/security-credentials/", other), 401,
                     "token_invalid")
        tok = c.imds_token()
        for role in ("aws-two", "plain", "nope", "aws-dev/", "..%2faws-dev"):
            assert_error(self, c.imds("/latest/meta-data/iam/security-credentials/" + role, tok),
                         404, "no_role")
        r = c.imds("/latest/meta-data/iam/security-credentials/aws-dev", tok, method="HEAD")
        self.assertEqual((r.status, r.header("Allow")), (405, "GET"))
        for v in (None, "0", "21601", "1h"):
            h = {} if v is None else {"X-aws-ec2-metadata-token-ttl-seconds": v}
            j = assert_error(self, c.request("PUT", "/latest/api/token", h), 400, "bad_ttl")
            self.assertIn("X-aws-ec2-metadata-token-ttl-seconds", j["message"])
        # a token from PUT /v1/token works here too (one kind of session token)
        r = c.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": "60"})
        r = c.imds("/latest/meta-data/iam/security-credentials/", r.body.decode())
        self.assertEqual((r.status, r.body), (200, b"aws-dev"))
        # forwarded requests are refused before anything else, as on every route
        assert_error(self, c.request("PUT", "/latest/api/token",
                                     {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                      "X-Forwarded-For": "10.0.0.1"}), 403, "forwarded_request")

    def test_imds_without_aws_credentials(self):
        c = self.client("127.0.0.2")
        tok = c.imds_token()
        assert_error(self, c.imds("/latest/meta-data/iam/security-credentials/", tok), 404,
                     "no_role")
        assert_error(self, c.imds("/latest/meta-data/iam/security-credentials/plain", tok),
                     404, "no_role")
        assert_error(self, c.imds("/latest/meta-data/placement/region", tok), 404, "no_region")
        # the default role (first aws grant) names two regions: the first is the region
        m = self.client("127.0.0.5")
        tok = m.imds_token()
        r = m.imds("/latest/meta-data/iam/security-credentials/", tok)
        self.assertEqual((r.status, r.body), (200, b"aws-two"))
        r = m.imds("/latest/meta-data/iam/security-credentials/aws-dev", tok)
        self.assertEqual(r.status, 200, r.body)     # the other role, by name
        r = m.imds("/latest/meta-data/placement/availability-zone/", tok)
        self.assertEqual((r.status, r.body), (200, b"us-east-1a"))

    # --- botocore's own fetchers --------------------------------------------------------

    def test_botocore_instance_metadata(self):
        script = (
            "import json, sys\n"
            "from botocore.utils import InstanceMetadataFetcher, "
            "InstanceMetadataRegionFetcher\n"
            "base = sys.argv[1]\n"
            "out = []\n"
            "for _ in range(2):\n"
            "    out.append(InstanceMetadataFetcher(timeout=5, num_attempts=1, "
            "base_url=base).retrieve_iam_role_credentials())\n"
            "region = InstanceMetadataRegionFetcher(timeout=5, num_attempts=1, "
            "base_url=base).retrieve_region()\n"
            "print(json.dumps({'creds': out, 'region': region}))\n")
        base = "http://%s:%d/" % self.md
        res = child_python(script.replace("sys.argv[1]", repr(base)), {})
        self.assertEqual(res["region"], "eu-west-3")
        creds = res["creds"]
        self.assertEqual(len(creds), 2, res)
        self.assertTrue(all(creds), res)
        for c in creds:
            self.assertEqual(c["role_name"], "aws-dev")
            self.check_creds(c["access_key"], c["secret_key"], c["token"], c["expiry_time"])
        self.assertNotEqual(creds[0]["token"], creds[1]["token"])
        self.assertNotEqual(creds[0]["secret_key"], creds[1]["secret_key"])

    def test_botocore_container_provider(self):
        text, env = self.env_of("127.0.0.1")
        uri = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        self.assertEqual(uri, "http://127.0.0.1:%d/v1/aws/credentials/aws-dev" % self.md_aws[1])
        script = (
            "import json, os\n"
            "import botocore.session\n"
            "from botocore.utils import ContainerMetadataFetcher\n"
            "f = ContainerMetadataFetcher()\n"
            "h = {'Authorization': os.environ['AWS_CONTAINER_AUTHORIZATION_TOKEN']}\n"
            "raw = [f.retrieve_full_uri(os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI'], "
            "headers=h) for _ in range(2)]\n"
            "s = botocore.session.get_session()\n"
            "c = s.get_credentials()\n"
            "fc = c.get_frozen_credentials()\n"
            "print(json.dumps({'raw': raw, 'method': c.method, 'region': s.get_config_variable("
            "'region'), 'chain': [fc.access_key, fc.secret_key, fc.token]}))\n")
        aws_env = {k: v for k, v in env.items() if k.startswith("AWS_")}
        res = child_python(script, aws_env)
        self.assertEqual(res["method"], "container-role")
        self.assertEqual(res["region"], "eu-west-3")     # AWS_DEFAULT_REGION from /v1/env
        for d in res["raw"]:
            self.assertEqual(list(d), ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"])
            self.check_creds(d["AccessKeyId"], d["SecretAccessKey"], d["Token"], d["Expiration"])
        self.assertNotEqual(res["raw"][0]["Token"], res["raw"][1]["Token"])
        self.assertNotEqual(res["raw"][0]["SecretAccessKey"], res["raw"][1]["SecretAccessKey"])
        akid, secret, token = res["chain"]
        claims = self.unseal(token)
        self.assertEqual((akid, secret), self.derive(token))
        self.assertEqual((claims["cred"], claims["sb"]), ("aws-dev", "awssb"))

    def test_container_endpoint(self):
        _, env = self.env_of("127.0.0.1")
        tok = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        path = "/v1/aws/credentials/aws-dev"
        for addr in (self.md, self.md_aws):      # both listeners answer the same routes
            c = self.client("127.0.0.1", addr)
            r = c.request("GET", path, {"Authorization": tok})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.header("Content-Type"), "application/json")
            d = json.loads(r.body)
            self.check_creds(d["AccessKeyId"], d["SecretAccessKey"], d["Token"], d["Expiration"])
            r = c.request("GET", "/v1/aws/credentials/aws-two", {"Authorization": tok})
            self.assertEqual(r.status, 200, r.body)
            d = json.loads(r.body)
            self.check_creds(d["AccessKeyId"], d["SecretAccessKey"], d["Token"],
                             d["Expiration"], cred="aws-two")
        # the container token is a session token: long-lived, bound to this sandbox
        c = self.client("127.0.0.6", self.md_aws)
        assert_error(self, c.request("GET", path), 401, "token_missing")
        assert_error(self, c.request("GET", path, {"Authorization": tok}), 401,
                     "token_invalid")
        assert_error(self, c.request("GET", path, {"Authorization": "Bearer " + tok}), 401,
                     "token_invalid")
        own = c.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": "60"}).body.decode()
        for role in ("aws-two", "plain", "nope"):
            assert_error(self, c.request("GET", "/v1/aws/credentials/" + role,
                                         {"Authorization": own}), 404, "no_role")
        r = c.request("HEAD", path, {"Authorization": own})
        self.assertEqual((r.status, r.header("Allow")), (405, "GET"))
        self.assertEqual(c.request("GET", path, {"Authorization": own}).status, 200)

    # --- /v1/env ----------------------------------------------------------------------

    def test_env_exports(self):
        text, env = self.env_of("127.0.0.1")
        self.assertEqual(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                         "http://127.0.0.1:%d/v1/aws/credentials/aws-dev" % self.md_aws[1])
        tok = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        self.assertTrue(tok.startswith("sgt1."), tok)
        # it lives as long as the credential's handles may (max_ttl, 30 days by default)
        exp = int.from_bytes(base64.urlsafe_b64decode(tok[5:] + "==")[:8], "big")
        self.assertLessEqual(abs(exp - (time.time() + 30 * 86400)), 10)
        self.assertEqual((env["AWS_REGION"], env["AWS_DEFAULT_REGION"]),
                         ("eu-west-3", "eu-west-3"))
        self.assertEqual(env["AWS_CA_BUNDLE"], "/etc/sealgate/ca.pem")
        self.assertEqual(env["AWS_CA_BUNDLE"], env["SSL_CERT_FILE"])
        self.assertTrue(env["PLAIN_KEY"].startswith("sgh1."))
        names = [ln.split(" ", 1)[1].split("=", 1)[0] for ln in text.splitlines()]
        self.assertEqual(names[-5:], ["AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                      "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_REGION",
                                      "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"])
        for s in (AWS_SECRET, AWS_AKID, AWS_TOKEN, BEARER_SECRET):
            self.assertNotIn(s, text)
        # no aws credential: no AWS variables
        text, env = self.env_of("127.0.0.2")
        self.assertEqual([k for k in env if k.startswith("AWS_")], [])
        # the default role is the first aws grant; two regions: no region variables
        text, env = self.env_of("127.0.0.5")
        self.assertTrue(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].endswith(
            "/v1/aws/credentials/aws-two"))
        self.assertNotIn("AWS_REGION", env)
        self.assertNotIn("AWS_DEFAULT_REGION", env)

    # --- the AWS CLI v2: credentials and region from the responder -----------------

    def test_aws_cli_takes_credentials_and_region(self):
        """Debian's AWS CLI v2 with only what /v1/env gives it (no region variable) and the
        IMDS endpoint: it signs for eu-west-3 (the IMDS zone) with container credentials,
        goes through the proxy, and sealgate takes the signature (verified, signed again:
        test_aws.py follows such requests to an AWS stand-in) and dials the upstream,
        which does not exist here (502 upstream_error, not a 4xx refusal)."""
        _, env = self.env_of("127.0.0.1")
        home = tempfile.mkdtemp(prefix="sgtest-aws-home-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", home]))
        cli_env = {"PATH": "/usr/bin:/bin", "HOME": home, "LC_ALL": "C.UTF-8",
                   "AWS_CONTAINER_CREDENTIALS_FULL_URI": env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                   "AWS_CONTAINER_AUTHORIZATION_TOKEN": env["AWS_CONTAINER_AUTHORIZATION_TOKEN"],
                   "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://%s:%d/" % self.md,
                   "AWS_CA_BUNDLE": self.sg.ca_cert, "HTTPS_PROXY": self.sg.proxy_url,
                   "NO_PROXY": "127.0.0.1", "AWS_MAX_ATTEMPTS": "1", "AWS_PAGER": ""}
        r = subprocess.run(["/usr/bin/aws", "sqs", "list-queues", "--debug",
                            "--cli-connect-timeout", "5", "--cli-read-timeout", "5"],
                           capture_output=True, text=True, timeout=120, env=cli_env,
                           stdin=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("GET /v1/aws/credentials/aws-dev HTTP/1.1\" 200", r.stderr)
        self.assertRegex(r.stderr, r"Credential=ASIA[A-Z2-7]{16}/\d{8}/eu-west-3/sqs/"
                                   r"aws4_request")
        self.assertIn('"POST / HTTP/1.1" 502', r.stderr)
        self.assertIn("cannot connect to upstream %s:443" % SQS_HOST, r.stderr)
        line = sgtest.wait_for(lambda: [ln for ln in self.audit_lines()
                                        if ln.get("error") == "upstream_error" and
                                        SQS_HOST in json.dumps(ln)] or None,
                               what="upstream_error audit line")[0]
        self.assertEqual((line.get("status"), line.get("credential"), line.get("sandbox")),
                         (502, "aws-dev", "awssb"), line)

    # --- limits and secrecy ---------------------------------------------------------

    def test_rate_limited_like_handles(self):
        c = self.client("127.0.0.4")
        tok = c.imds_token()
        statuses = []
        for _ in range(200):      # burst 100 + 20/s: 200 fit only if this took 5 s
            r = c.imds("/latest/meta-data/iam/security-credentials/aws-dev", tok)
            statuses.append(r.status)
            if r.status == 429:
                break
        self.assertIn(429, statuses)
        self.assertGreaterEqual(statuses.index(429), 99)
        assert_error(self, r, 429, "rate_limited")
        self.assertGreaterEqual(int(r.header("Retry-After")), 1)

    def test_admin_policy_view(self):
        """The admin API's policy view shows an aws_sigv4 credential's scope, never its
        access key id, session token or secret key."""
        with open(os.path.join(self.sg.dir, "keys", "admin.token")) as f:
            token = f.read().strip()
        c = http.client.HTTPConnection(*self.sg.admin, timeout=10)
        try:
            c.request("GET", "/v1/policy", headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            data = r.read().decode()
        finally:
            c.close()
        self.assertEqual(r.status, 200, data)
        cred = json.loads(data)["credentials"]["aws-dev"]
        self.assertEqual(cred["inject"], "aws_sigv4")
        self.assertEqual(cred["aws"], {"services": ["s3", "sts", "sqs"], "regions": ["eu-west-3"],
                                       "buckets": [], "prefixes": [], "session_token": True,
                                       "assume_role": None})
        self.assertNotIn("aws", json.loads(data)["credentials"]["plain"])
        for s in (AWS_SECRET, AWS_AKID, AWS_TOKEN, BEARER_SECRET):
            self.assertNotIn(s, data)

    def test_no_secret_in_answers_logs_or_audit(self):
        c = self.client("127.0.0.1")
        tok = c.imds_token()
        d = json.loads(c.imds("/latest/meta-data/iam/security-credentials/aws-dev", tok).body)
        _, env = self.env_of("127.0.0.1")
        hid = self.unseal(d["Token"])["hid"]
        sgtest.wait_for(lambda: [ln for ln in self.audit_lines()
                                 if ln.get("handle_id") == hid] or None, what="minted line")
        with open(os.path.join(self.sg.dir, AUDIT_FILE), "rb") as f:
            audit = f.read().decode()
        log = self.sg.log()
        for s in (AWS_SECRET, AWS_AKID, AWS_TOKEN, d["SecretAccessKey"], d["Token"],
                  env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]):
            self.assertNotIn(s, log)
            self.assertNotIn(s, audit)
