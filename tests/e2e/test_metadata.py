"""The metadata responder on loopback.

Sandboxes are told apart by source address: `local` is 127.0.0.1, `second` 127.0.0.2,
`flood` 127.0.0.4 (rate limit), `clock` 127.0.0.5 (expiry), `aux` 127.0.0.6 (refusals, so
that the suite stays inside one sandbox's 100-request burst); 127.0.0.9 belongs to none. The client binds its socket
to the address it plays. Session tokens (PUT /v1/token), handle minting (checked with
`sealgate unseal`), /v1/env rendering (sourced by sh), the CA, and every refusal:
401 token, 403 forwarded / unknown address, 405 method, 400 TTL, 404 not granted, 429.
The audit file (audit.path) gets a "minted" line per handle minted (handle_id, never the
handle text) and a "denied" line per 401/403 refusal ("rate_limited" for 429) with its
error code.
"""
import calendar
import http.client
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import sgtest
from sgtest import Sealgate, assert_error

SECRET_EXAMPLE = "sk-live-EXAMPLE-d41d8cd98f00b204e980"
SECRET_OTHER = "sk-live-OTHER-0cc175b9c0f1b6a831c3"
TTL_EXAMPLE = 900
AUDIT_FILE = "metadata-audit.log"
# Handle and session token text, anywhere in a line (prefix + base64url).
HANDLE_TEXT_RE = re.compile(rb"sg[ht]1\.[A-Za-z0-9_-]{8,}")


def policy_overrides():
    return {
        "audit": {"path": AUDIT_FILE},
        "credentials": {
            "example": {"secret": {"value": SECRET_EXAMPLE}, "inject": {"type": "bearer"},
                        "hosts": ["api.example.test"], "ttl": "15m",
                        "env": "EXAMPLE_API_KEY"},
            "noenv": {"secret": {"value": "sk-noenv-92eb5ffee6ae2fec3ad7"},
                      "inject": {"type": "bearer"}, "hosts": ["other.example.test"]},
            "other": {"secret": {"value": SECRET_OTHER}, "inject": {"type": "bearer"},
                      "hosts": ["other.example.test"], "env": "OTHER_API_KEY"},
        },
        "sandboxes": {
            "local": {"addresses": ["127.0.0.1/32"], "credentials": ["example", "noenv"]},
            "second": {"addresses": ["127.0.0.2/32"], "credentials": ["other"]},
            "flood": {"addresses": ["127.0.0.4/32"], "credentials": []},
            "clock": {"addresses": ["127.0.0.5/32"], "credentials": []},
            "aux": {"addresses": ["127.0.0.6/32"], "credentials": ["example"]},
        },
    }


class Client:
    """HTTP/1.1 to the responder from a chosen loopback source address."""

    def __init__(self, sg, source="127.0.0.1"):
        self.sg = sg
        self.source = source
        self.conn = None

    def request(self, method, path, headers=None, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.sg.metadata[0], self.sg.metadata[1],
                                                   timeout=10, source_address=(self.source, 0))
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        resp = sgtest.Response(r.status, r.reason, r.getheaders(), data, b"")
        if r.will_close:
            self.close()
        return resp

    def token(self, ttl=300):
        r = self.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": str(ttl)})
        if r.status != 200:
            raise AssertionError("PUT /v1/token: %d %r" % (r.status, r.body))
        return r.body.decode()

    def get(self, path, token=None, headers=None, method="GET"):
        h = dict(headers or {})
        if token is not None:
            h["X-Sealgate-Token"] = token
        return self.request(method, path, h)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def parse_rfc3339(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def source_env(text, names):
    """Run text through sh and return the values of names (checks the quoting)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        script = ". %s && " % path + " && ".join(
            "printf '%%s\\0' \"$%s\"" % n for n in names)
        r = subprocess.run(["sh", "-c", script], capture_output=True, timeout=10, env={})
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise AssertionError("sh failed on the env text: %r" % r.stderr)
    return dict(zip(names, r.stdout.decode().split("\0")[:len(names)]))


class MetadataTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sg = Sealgate(cls, overrides=policy_overrides())
        cls.seal_key = os.path.join(cls.sg.dir, "keys", "seal.key")

    def client(self, source="127.0.0.1"):
        c = Client(self.sg, source)
        self.addCleanup(c.close)
        return c

    def assert_no_secret(self, resp):
        for s in (SECRET_EXAMPLE, SECRET_OTHER):
            self.assertNotIn(s.encode(), resp.body)
            self.assertNotIn(s, json.dumps(resp.headers))

    # --- the audit file -------------------------------------------------------------

    def audit_data(self):
        try:
            with open(os.path.join(self.sg.dir, AUDIT_FILE), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def audit_lines(self):
        out = []
        for raw in self.audit_data().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                self.fail("audit line is not JSON: %r" % redact_handles(raw[:300]))
        return out

    def wait_audit(self, pred, n=1, what="audit lines"):
        """The matching lines once there are n (the writer thread is asynchronous)."""
        found = []

        def probe():
            found[:] = [ln for ln in self.audit_lines() if pred(ln)]
            return len(found) >= n
        sgtest.wait_for(probe, timeout=10, what=what)
        return list(found)

    def assert_denied_audited(self, source, status, code, sandbox=None, n=1):
        event = "rate_limited" if status == 429 else "denied"
        lines = self.wait_audit(lambda ln: ln.get("event") == event and
                                ln.get("source") == source and ln.get("status") == status and
                                ln.get("error") == code, n=n,
                                what="denied %d %s from %s" % (status, code, source))
        for ln in lines:
            self.assertEqual(ln.get("sandbox"), sandbox, ln)
            self.assertTrue(ln.get("path", "").startswith("/v1/"), ln)
            self.assertNotIn("handle_id", ln)
        return lines

    def unseal(self, handle):
        r = subprocess.run([sgtest.SEALGATE_BIN, "unseal", "--key", self.seal_key, handle],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    # --- the happy path ---------------------------------------------------------

    def test_token_then_handle_list(self):
        c = self.client()
        tok = c.token(600)
        self.assertTrue(tok.startswith("sgt1."), tok)
        r = c.get("/v1/handles", tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(json.loads(r.body), ["example", "noenv"])
        self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_handle_is_fresh_and_unseals(self):
        c = self.client()
        tok = c.token()
        docs = []
        for _ in range(2):
            before = time.time()
            r = c.get("/v1/handles/example", tok)
            self.assertEqual(r.status, 200, r.body)
            self.assert_no_secret(r)
            d = json.loads(r.body)
            self.assertEqual(set(d), {"handle", "expires_at", "lifetime", "env", "hosts"})
            self.assertEqual(d["lifetime"], "ttl")      # the credential's wall-clock ttl
            self.assertTrue(d["handle"].startswith("sgh1."), d)
            self.assertEqual(d["env"], "EXAMPLE_API_KEY")
            self.assertEqual(d["hosts"], ["api.example.test"])
            exp = parse_rfc3339(d["expires_at"])
            self.assertLessEqual(abs(exp - (before + TTL_EXAMPLE)), 5, d)
            docs.append(d)
        self.assertNotEqual(docs[0]["handle"], docs[1]["handle"])
        claims = [self.unseal(d["handle"]) for d in docs]
        for cl in claims:
            self.assertEqual(cl["sb"], "local")
            self.assertEqual(cl["cred"], "example")
            self.assertEqual(cl["exp"] - cl["iat"], TTL_EXAMPLE)
        self.assertNotEqual(claims[0]["hid"], claims[1]["hid"])
        log = self.sg.log()
        for cl, d in zip(claims, docs):
            self.assertIn("minted handle sandbox=local credential=example hid=%s" % cl["hid"],
                          log)
            self.assertNotIn(d["handle"], log)
            self.assertNotIn(d["handle"].split(".")[-1][:40], log)

    def test_env_lines(self):
        c = self.client()
        tok = c.token()
        r = c.get("/v1/env", tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"))
        self.assert_no_secret(r)
        text = r.body.decode()
        lines = text.splitlines()
        for ln in lines:
            self.assertRegex(ln, r"^export [A-Za-z_][A-Za-z0-9_]*='[^']*'$")
        names = [ln.split(" ", 1)[1].split("=", 1)[0] for ln in lines]
        want = ["EXAMPLE_API_KEY", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy",
                "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO"]
        self.assertEqual(names, want)
        vals = source_env(text, want)
        self.assertTrue(vals["EXAMPLE_API_KEY"].startswith("sgh1."))
        self.assertEqual(self.unseal(vals["EXAMPLE_API_KEY"])["sb"], "local")
        for n in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            self.assertEqual(vals[n], self.sg.proxy_url)
        for n in ("NO_PROXY", "no_proxy"):
            self.assertEqual(vals[n], "localhost,127.0.0.1,::1,169.254.169.254")
        for n in want[7:]:
            self.assertEqual(vals[n], "/etc/sealgate/ca.pem")
        self.assertNotIn("OTHER_API_KEY", text)

    def test_ca_pem_is_the_ca(self):
        c = self.client()
        r = c.get("/v1/ca.pem", c.token())
        self.assertEqual(r.status, 200, r.body)
        with open(self.sg.ca_cert, "rb") as f:
            self.assertEqual(r.body, f.read())
        self.assertIn(b"-----BEGIN CERTIFICATE-----", r.body)

    def test_head(self):
        c = self.client()
        tok = c.token()
        r = c.get("/v1/handles", tok, method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        r = c.get("/v1/handles", tok)        # the connection is still in step
        self.assertEqual(json.loads(r.body), ["example", "noenv"])

    def test_second_sandbox_sees_only_its_own(self):
        c = self.client("127.0.0.2")
        tok = c.token()
        r = c.get("/v1/handles", tok)
        self.assertEqual(json.loads(r.body), ["other"])
        r = c.get("/v1/handles/other", tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.unseal(json.loads(r.body)["handle"])["sb"], "second")
        assert_error(self, c.get("/v1/handles/example", tok), 404, "not_granted")
        r = c.get("/v1/env", tok)
        self.assertIn(b"export OTHER_API_KEY='sgh1.", r.body)
        self.assertNotIn(b"EXAMPLE_API_KEY", r.body)

    # --- refusals -----------------------------------------------------------------

    def test_missing_and_bad_token(self):
        c = self.client("127.0.0.6")
        for path in ("/v1/handles", "/v1/handles/example", "/v1/env", "/v1/ca.pem"):
            assert_error(self, c.get(path), 401, "token_missing")
        tok = c.token()
        bad = tok[:-2] + ("AA" if not tok.endswith("AA") else "BA")
        assert_error(self, c.get("/v1/env", bad), 401, "token_invalid")
        assert_error(self, c.get("/v1/env", "garbage"), 401, "token_invalid")
        assert_error(self, c.get("/v1/env", ""), 401, "token_invalid")

    def test_token_of_other_sandbox(self):
        other = self.client("127.0.0.2").token()
        c = self.client("127.0.0.1")
        for path in ("/v1/handles", "/v1/env", "/v1/handles/example"):
            assert_error(self, c.get(path, other), 401, "token_invalid")
        # positive control: the token works where it was minted
        self.assertEqual(self.client("127.0.0.2").get("/v1/handles", other).status, 200)

    def test_token_expires(self):
        c = self.client("127.0.0.5")
        tok = c.token(1)
        deadline = time.monotonic() + 5
        r = c.get("/v1/handles", tok)
        self.assertEqual(r.status, 200, r.body)
        while r.status == 200 and time.monotonic() < deadline:
            time.sleep(0.1)     # polling a wall-clock condition (expiry), 20 tries at most
            r = c.get("/v1/handles", tok)
        assert_error(self, r, 401, "token_expired")

    def test_token_lives_its_ttl_across_a_second_boundary(self):
        """A TTL=1 token minted in the last 30 ms of a wall-clock second still works just
        after the second turns (its expiry is rounded up, not down)."""
        c = self.client("127.0.0.5")
        pace = threading.Event()
        for _ in range(3):
            deadline = time.monotonic() + 3
            while time.time() % 1.0 < 0.97 and time.monotonic() < deadline:
                pace.wait(0.005)    # reach the end of a second (bounded)
            tok = c.token(1)
            while time.time() % 1.0 > 0.5 and time.monotonic() < deadline:
                pace.wait(0.002)    # just past the boundary
            r = c.get("/v1/handles", tok)
            self.assertEqual(r.status, 200, r.body)

    def test_forwarding_headers(self):
        c = self.client("127.0.0.6")
        tok = c.token()
        for h in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"},
                  {"Via": "1.1 relay"}, {"x-forwarded-for": "10.0.0.1"}):
            assert_error(self, c.get("/v1/env", tok, h), 403, "forwarded_request")
            h2 = dict(h, **{"X-Sealgate-Token-TTL": "60"})
            assert_error(self, c.request("PUT", "/v1/token", h2), 403, "forwarded_request")

    def test_unknown_address(self):
        c = self.client("127.0.0.9")
        assert_error(self, c.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": "60"}),
                     403, "unknown_sandbox")
        tok = self.client("127.0.0.6").token()
        assert_error(self, c.get("/v1/env", tok), 403, "unknown_sandbox")

    def test_methods(self):
        c = self.client("127.0.0.6")
        tok = c.token()
        for m in ("POST", "DELETE", "PATCH", "OPTIONS"):
            r = c.get("/v1/env", tok, method=m)
            assert_error(self, r, 405, "method_not_allowed")
            self.assertEqual(r.header("Allow"), "GET, HEAD, PUT")
        r = c.request("PUT", "/v1/env", {"X-Sealgate-Token": tok})
        assert_error(self, r, 405, "method_not_allowed")
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        r = c.get("/v1/token", tok)
        assert_error(self, r, 405, "method_not_allowed")
        self.assertEqual(r.header("Allow"), "PUT")
        assert_error(self, c.get("/v1/nope", tok), 404, "not_found")
        assert_error(self, c.get("/v1/handles/", tok), 404, "not_found")

    def test_ttl_bounds(self):
        c = self.client("127.0.0.6")
        for v in ("0", "21601", "-5", "abc", "1.5", "99999999999999999999"):
            r = c.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": v})
            assert_error(self, r, 400, "bad_ttl")
        assert_error(self, c.request("PUT", "/v1/token"), 400, "bad_ttl")
        for v in ("1", "21600"):
            r = c.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": v})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.header("X-Sealgate-Token-TTL"), v)

    def test_not_granted(self):
        c = self.client()
        tok = c.token()
        for name in ("other", "missing", "..%2fexample", "example%00"):
            j = assert_error(self, c.get("/v1/handles/" + name, tok), 404, "not_granted")
            self.assertNotIn(SECRET_OTHER, j["message"])

    def test_rate_limited_per_sandbox(self):
        c = self.client("127.0.0.4")
        statuses = []
        last = None
        for _ in range(200):      # burst 100 + 20/s: 200 fit only if this took 5 s
            last = c.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": "60"})
            statuses.append(last.status)
            if last.status == 429:
                break
        self.assertIn(429, statuses)
        self.assertGreaterEqual(statuses.index(429), 100)
        assert_error(self, last, 429, "rate_limited")
        self.assertGreaterEqual(int(last.header("Retry-After")), 1)
        # other sandboxes are not slowed down
        self.assertEqual(self.client("127.0.0.1").request(
            "PUT", "/v1/token", {"X-Sealgate-Token-TTL": "60"}).status, 200)
        line = self.assert_denied_audited("127.0.0.4", 429, "rate_limited", sandbox="flood")[0]
        self.assertEqual(line.get("method"), "PUT")
        self.assertEqual(line.get("path"), "/v1/token")

    def test_secret_never_in_log(self):
        c = self.client()
        tok = c.token()
        c.get("/v1/env", tok)
        c.get("/v1/handles/example", tok)
        log = self.sg.log()
        for s in (SECRET_EXAMPLE, SECRET_OTHER, tok):
            self.assertNotIn(s, log)

    # --- audit ------------------------------------------------------------------------

    def test_audit_minted_per_handle(self):
        c = self.client()
        tok = c.token()
        r = c.get("/v1/handles/example", tok)
        self.assertEqual(r.status, 200, r.body)
        d = json.loads(r.body)
        hid = self.unseal(d["handle"])["hid"]
        line = self.wait_audit(lambda ln: ln.get("handle_id") == hid,
                               what="minted line for hid %s" % hid)
        self.assertEqual(len(line), 1, line)
        line = line[0]
        self.assertEqual(line["event"], "minted", line)
        self.assertEqual(line["sandbox"], "local", line)
        self.assertEqual(line["source"], "127.0.0.1", line)
        self.assertEqual(line["credential"], "example", line)
        self.assertEqual(line["detail"], "expires_at=%s lifetime=ttl" % d["expires_at"], line)
        self.assertEqual(line["path"], "/v1/handles/example", line)
        self.assertNotIn("error", line)
        # /v1/env mints one handle per granted credential with an env name: one line each
        r = c.get("/v1/env", tok)
        self.assertEqual(r.status, 200, r.body)
        env_handle = source_env(r.body.decode(), ["EXAMPLE_API_KEY"])["EXAMPLE_API_KEY"]
        ehid = self.unseal(env_handle)["hid"]
        line = self.wait_audit(lambda ln: ln.get("handle_id") == ehid,
                               what="minted line for hid %s" % ehid)[0]
        self.assertEqual((line["event"], line["sandbox"], line["credential"], line["path"]),
                         ("minted", "local", "example", "/v1/env"), line)
        self.assertTrue(line["detail"].startswith("expires_at="), line)
        # the second sandbox's mints are its own
        c2 = self.client("127.0.0.2")
        r = c2.get("/v1/handles/other", c2.token())
        ohid = self.unseal(json.loads(r.body)["handle"])["hid"]
        line = self.wait_audit(lambda ln: ln.get("handle_id") == ohid,
                               what="minted line for hid %s" % ohid)[0]
        self.assertEqual((line["event"], line["sandbox"], line["source"], line["credential"]),
                         ("minted", "second", "127.0.0.2", "other"), line)

    def test_audit_denied_refusals(self):
        c = self.client("127.0.0.6")
        assert_error(self, c.get("/v1/handles/example"), 401, "token_missing")
        self.assert_denied_audited("127.0.0.6", 401, "token_missing", sandbox="aux")
        assert_error(self, c.get("/v1/env", "garbage"), 401, "token_invalid")
        self.assert_denied_audited("127.0.0.6", 401, "token_invalid", sandbox="aux")
        tok = c.token()
        assert_error(self, c.get("/v1/env", tok, {"Via": "1.1 relay"}), 403,
                     "forwarded_request")
        # refused before the sandbox is looked up: no sandbox in the line
        self.assert_denied_audited("127.0.0.6", 403, "forwarded_request")
        u = self.client("127.0.0.9")
        assert_error(self, u.request("PUT", "/v1/token", {"X-Sealgate-Token-TTL": "60"}),
                     403, "unknown_sandbox")
        self.assert_denied_audited("127.0.0.9", 403, "unknown_sandbox")
        # a refused request mints nothing
        self.assertFalse([ln for ln in self.audit_lines() if ln.get("event") == "minted" and
                          ln.get("source") in ("127.0.0.6", "127.0.0.9")])

    def test_audit_never_holds_handle_text(self):
        c = self.client()
        tok = c.token()
        handles = [json.loads(c.get("/v1/handles/example", tok).body)["handle"]
                   for _ in range(3)]
        env = source_env(c.get("/v1/env", tok).body.decode(), ["EXAMPLE_API_KEY"])
        handles.append(env["EXAMPLE_API_KEY"])
        hids = {self.unseal(h)["hid"] for h in handles}
        self.wait_audit(lambda ln: ln.get("handle_id") in hids, n=len(hids),
                        what="minted lines for %d handles" % len(hids))
        data = self.audit_data()
        for h in handles:
            self.assertNotIn(h.encode(), data)
            self.assertNotIn(h.split(".")[-1][:24].encode(), data)
        self.assertNotIn(tok.encode(), data)
        for s in (SECRET_EXAMPLE, SECRET_OTHER):
            self.assertNotIn(s.encode(), data)
        # no handle or session token text at all, from any test of this class
        self.assertEqual(HANDLE_TEXT_RE.findall(data), [])
        self.assertEqual(os.stat(os.path.join(self.sg.dir, AUDIT_FILE)).st_mode & 0o777, 0o640)


def redact_handles(data):
    return HANDLE_TEXT_RE.sub(b"<handle>", data)
