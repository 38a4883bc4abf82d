"""Handles end to end: swap a handle for the real secret through real clients.

  InjectTest     bearer, header, header in place, basic, query (and a secret that needs
                 URL-encoding): the upstream gets the secret in the right place and no
                 handle anywhere; the client's response is scrubbed. Injected header
                 overrides the sandbox's value. urllib with HTTPS_PROXY and the handle from
                 an env var. curl. Unseal-cache hit ratio over 200 requests.
  AuthzTest      one test per refusal: expired (crafted with python3-nacl), unknown key,
                 retired key (and an open rotated key still works), tampered, malformed,
                 wrong sandbox (127.0.0.2 -> 407 naming the owner), unknown address,
                 sandbox token missing / wrong / right, sandbox unknown, host, method,
                 path out of scope, plain http denied / allowed.
  RateTest       burst then 429 with Retry-After / RateLimit headers; separate handles
                 separate buckets; rate_total caps the sum; a refused request takes nothing.
  WithdrawTest   credential withdrawn by a policy change (admin POST /v1/reload), and the
                 same with a new sealgate process on the changed policy and the same keys.
  RevokeTest     revoked by handle id, sandbox, credential, key (admin /v1/revoke writes the
                 revocations file; the server picks it up by polling), and with the
                 `sealgate revoke` CLI.
  HmacBodyTest   inject types hmac and body (being built).

Secrets are random per run and never printed: messages go through sgtest.redact.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import sgtest

API = "api.example.test"
OTHER = "other.example.test"
PLAIN = "plain.example.test"


def _secret(tag):
    return "sk-%s-%s" % (tag, os.urandom(12).hex())


S = {
    "bearer": _secret("bearer"),
    "header": _secret("header"),
    "basic": _secret("basic"),
    "query": _secret("query"),
    "queryenc": "sk+q/" + os.urandom(8).hex() + "=&z",
    "plainok": _secret("plainok"),
    "limited": _secret("limited"),
    "pooled": _secret("pooled"),
    "revcred": _secret("revcred"),
    "hmac": _secret("hmac"),
    "hmac2": _secret("hmac2"),
    "body": _secret("body"),
    "bodyph": _secret("bodyph"),
}
SB_TOKEN = "sbtok-" + os.urandom(12).hex()
ALL_SECRETS = list(S.values()) + [SB_TOKEN]


def R(x):
    """Text for messages: secrets and handle bodies replaced by markers."""
    return sgtest.redact_handles(sgtest.redact(x, ALL_SECRETS))


def cred(name, inject, port, **kw):
    c = {"secret": {"value": S[name]}, "inject": inject,
         "hosts": ["%s:%d" % (API, port)]}
    c.update(kw)
    return c


def make_policy(port, plain_port=None, extra_creds=None, sandboxes=None, **top):
    creds = {
        "bearer": cred("bearer", {"type": "bearer"}, port,
                       methods=["GET", "POST", "HEAD"], paths=["/v1/*", "/reflect*"]),
        "header": cred("header", {"type": "header", "name": "X-Api-Key",
                                  "format": "key-%s"}, port),
        "basic": cred("basic", {"type": "basic", "username": "api"}, port),
        "query": cred("query", {"type": "query", "param": "key"}, port),
        "queryenc": cred("queryenc", {"type": "query", "param": "key"}, port),
    }
    if plain_port:
        creds["plainno"] = {"secret": {"value": S["bearer"]}, "inject": {"type": "bearer"},
                            "hosts": ["%s:%d" % (PLAIN, plain_port)]}
        creds["plainok"] = {"secret": {"value": S["plainok"]}, "inject": {"type": "bearer"},
                            "hosts": ["%s:%d" % (PLAIN, plain_port)],
                            "allow_plain_http": True}
    creds.update(extra_creds or {})
    sbs = {"sb-1": {"addresses": ["127.0.0.1/32"], "credentials": sorted(creds)},
           "sb-2": {"addresses": ["127.0.0.2/32"], "credentials": ["bearer"]}}
    sbs.update(sandboxes or {})
    pol = {"credentials": creds, "sandboxes": sbs}
    pol.update(top)
    return pol


class HandleCase(sgtest.TestCase):
    """Helpers shared by the classes below (cls.sg, cls.echo set by setUpClass)."""

    def mint(self, credential, sandbox="sb-1", ttl=None, sg=None):
        return sgtest.mint_handle((sg or self.sg).policy_path, sandbox, credential, ttl)

    def handle(self, credential, sandbox="sb-1"):
        return self.mint(credential, sandbox)["handle"]

    def marker(self):
        return os.urandom(6).hex()

    def req(self, headers=(), target=None, method="GET", host=API, body=b"", sg=None,
            **kw):
        """One request through sealgate to the echo; returns (Response, marker)."""
        m = self.marker()
        if target is None:
            target = "/v1/m-" + m
        else:
            target = target.replace("{m}", m)
        r = sgtest.proxied(sg or self.sg, host, self.echo.port, method=method,
                           target=target, headers=headers, body=body, **kw)
        return r, m

    def upstream_record(self, m, timeout=5):
        """The echo's record of the request carrying marker m (waits for it)."""
        found = []

        def probe():
            found[:] = [r for r in self.echo.requests if m in r["path"]]
            return found
        sgtest.wait_for(probe, timeout=timeout, what="upstream request with marker " + m)
        self.assertEqual(len(found), 1, "marker %s arrived %d times" % (m, len(found)))
        return found[0]

    def assert_never_arrived(self, m):
        """No upstream request carried marker m. Barrier: a later request on a fresh
        connection (sent after the refusal was read) has arrived first."""
        h = self.handle("bearer")
        ok, m2 = self.req([("Authorization", "Bearer " + h)])
        self.assertEqual(ok.status, 200, R(ok))
        self.upstream_record(m2)
        hits = [r for r in self.echo.requests if m in r["path"]]
        self.assertEqual(hits, [], "refused request reached the upstream")

    def assert_refused(self, r, status, code):
        self.assertTrue(r.status == status and r.header("X-Sealgate-Error") == code,
                        "want %d %s, got %s %s: %s" % (status, code, r.status,
                                                      r.header("X-Sealgate-Error"),
                                                      R(r.body[:400])))
        sgtest.assert_error(self, r, status, code)
        return r.json()

    def assert_no_secret(self, blob, secret, where):
        if isinstance(blob, (bytes, bytearray)):
            blob = bytes(blob).decode("latin-1")
        self.assertTrue(secret not in blob, "the real secret (%d bytes) appears in %s"
                        % (len(secret), where))

    def assert_no_handle_upstream(self, rec, handle):
        blob = json.dumps(rec)
        self.assertNotIn("sgh1.", blob, "a handle prefix reached the upstream: " + R(blob))
        self.assertNotIn(handle.split(".")[2][:24], blob, "handle text reached the upstream")

    def header_of(self, rec, name):
        vals = [v for k, v in rec["headers"] if k.lower() == name.lower()]
        return vals

    def client_sees(self, r, secret, handle):
        """The client's response holds the handle, never the secret."""
        self.assertEqual(r.status, 200, R(r))
        self.assert_no_secret(r.raw_head, secret, "the response head")
        self.assert_no_secret(r.body, secret, "the response body")
        self.assertIn(handle.encode(), r.raw_head + r.body,
                      "the reflected secret was not replaced by the handle")


# --------------------------------------------------------------------------- inject types

class InjectTest(HandleCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=make_policy(cls.echo.port))

    def test_bearer(self):
        h = self.handle("bearer")
        r, m = self.req([("Authorization", "Bearer " + h)], target="/reflect-auth/m-{m}")
        rec = self.upstream_record(m)
        self.assertTrue(self.header_of(rec, "Authorization") == ["Bearer " + S["bearer"]],
                        "upstream Authorization: " + R(self.header_of(rec, "Authorization")))
        self.assert_no_handle_upstream(rec, h)
        self.client_sees(r, S["bearer"], h)
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + h)
        body = r.json()      # the echo's JSON, secret replaced by the handle
        self.assertEqual([v for k, v in body["headers"] if k.lower() == "authorization"],
                         ["Bearer " + h])
        self.assertEqual((r.header("Transfer-Encoding") or "").lower(), "chunked")
        self.assertIsNone(r.header("Content-Length"))

    def test_two_handles_one_connection(self):
        """Two handles of one credential on one kept-alive connection: each response is
        scrubbed back to the handle its own request carried, not the first one seen."""
        authority = "%s:%d" % (API, self.echo.port)
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        for h in (self.handle("bearer"), self.handle("bearer"), self.handle("bearer")):
            c.send(sgtest.build_request("GET", "/reflect-auth/two-" + self.marker(),
                                        authority, [("Authorization", "Bearer " + h)]))
            r = c.read_response()
            self.client_sees(r, S["bearer"], h)
            self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + h)

    def test_header_from_authorization(self):
        """Handle sent as Bearer; credential injects X-Api-Key: key-SECRET, and the
        Authorization carrying the handle is dropped."""
        h = self.handle("header")
        r, m = self.req([("Authorization", "Bearer " + h)])
        rec = self.upstream_record(m)
        self.assertTrue(self.header_of(rec, "X-Api-Key") == ["key-" + S["header"]],
                        "upstream X-Api-Key: " + R(self.header_of(rec, "X-Api-Key")))
        self.assertEqual(self.header_of(rec, "Authorization"), [])
        self.assert_no_handle_upstream(rec, h)
        self.client_sees(r, S["header"], h)
        self.assertEqual([v for k, v in r.json()["headers"] if k.lower() == "x-api-key"],
                         ["key-" + h])

    def test_header_in_place(self):
        """The lead's example: x-api-key: prefix-<handle> -> prefix-<secret>. (docs say a
        handle preceded by [A-Za-z0-9_.-] is not a handle; then it must still not be
        forwarded.)"""
        h = self.handle("header")
        r, m = self.req([("x-api-key", "prefix-" + h)])
        rec = self.upstream_record(m)
        self.assertTrue(self.header_of(rec, "X-Api-Key") == ["prefix-" + S["header"]],
                        "upstream X-Api-Key: " + R(self.header_of(rec, "X-Api-Key")))
        self.assert_no_handle_upstream(rec, h)
        self.client_sees(r, S["header"], h)

    def test_header_in_place_after_space(self):
        """In place where the handle starts after a separator: X-Api-Key: Token <handle>."""
        h = self.handle("header")
        r, m = self.req([("X-Api-Key", "Token " + h)])
        rec = self.upstream_record(m)
        self.assertTrue(self.header_of(rec, "X-Api-Key") == ["Token " + S["header"]],
                        "upstream X-Api-Key: " + R(self.header_of(rec, "X-Api-Key")))
        self.assert_no_handle_upstream(rec, h)
        self.client_sees(r, S["header"], h)

    def test_basic(self):
        """curl -u user:<handle>: the handle is the Basic password."""
        h = self.handle("basic")
        m = self.marker()
        rc, out, err = sgtest.curl(self.sg, "--fail-with-body", "-u", "whoever:" + h,
                                   "https://%s:%d/v1/m-%s" % (API, self.echo.port, m))
        self.assertEqual(rc, 0, "curl exit %d: %s %s" % (rc, R(err), R(out[:300])))
        rec = self.upstream_record(m)
        want = "Basic " + base64.b64encode(("api:" + S["basic"]).encode()).decode()
        self.assertTrue(self.header_of(rec, "Authorization") == [want],
                        "upstream Authorization: " + R(self.header_of(rec, "Authorization")))
        self.assert_no_handle_upstream(rec, h)
        self.assert_no_secret(out, S["basic"], "curl's output")

    def test_basic_reflection_not_decodable(self):
        """The echo reflects Authorization: Basic base64(api:SECRET). The client must not
        be able to recover the secret from its response (base64 of the injected value)."""
        h = self.handle("basic")
        auth = "Basic " + base64.b64encode(("whoever:" + h).encode()).decode()
        r, m = self.req([("Authorization", auth)], target="/reflect-auth/m-{m}")
        self.assertEqual(r.status, 200, R(r))
        self.upstream_record(m)
        injected_b64 = base64.b64encode(("api:" + S["basic"]).encode()).decode()
        self.assertTrue(injected_b64 not in (r.raw_head + r.body).decode("latin-1"),
                        "client response carries base64(api:SECRET): the secret is "
                        "recoverable by the sandbox (X-Echo-Auth / echoed headers)")

    def test_query(self):
        h = self.handle("query")
        r, m = self.req([], target="/v1/m-{m}?a=1&key=" + h + "&b=2")
        rec = self.upstream_record(m)
        self.assertTrue(rec["path"] == "/v1/m-%s?a=1&key=%s&b=2" % (m, S["query"]),
                        "upstream target: " + R(rec["path"]))
        self.assert_no_handle_upstream(rec, h)
        self.client_sees(r, S["query"], h)
        self.assertEqual(r.json()["path"], "/v1/m-%s?a=1&key=%s&b=2" % (m, h))

    def test_query_handle_elsewhere_removed(self):
        """Handle in the query param and also in a header: the header is dropped."""
        h = self.handle("query")
        r, m = self.req([("X-Copy", h), ("Authorization", "Bearer " + h)],
                        target="/v1/m-{m}?key=" + h)
        rec = self.upstream_record(m)
        self.assertEqual(self.header_of(rec, "X-Copy"), [])
        self.assertEqual(self.header_of(rec, "Authorization"), [])
        self.assertTrue(rec["path"].endswith("?key=" + S["query"]), R(rec["path"]))
        self.assert_no_handle_upstream(rec, h)

    def test_query_secret_urlencoded(self):
        """A secret with reserved characters is percent-encoded in the query; the
        upstream decodes it to the secret; the client sees neither form."""
        import urllib.parse
        h = self.handle("queryenc")
        r, m = self.req([], target="/v1/m-{m}?key=" + h)
        rec = self.upstream_record(m)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(rec["path"]).query)
        self.assertTrue(q.get("key") == [S["queryenc"]], "upstream query: " + R(rec["path"]))
        self.assert_no_handle_upstream(rec, h)
        enc = urllib.parse.quote(S["queryenc"], safe="-_.~")
        self.assertEqual(r.status, 200, R(r))
        self.assertTrue(enc not in r.body.decode("latin-1"),
                        "client response carries the percent-encoded secret (the echoed "
                        "request target) unscrubbed")
        self.assert_no_secret(r.body, S["queryenc"], "the response body")

    def test_injected_header_overrides_sandbox_value(self):
        h = self.handle("header")
        r, m = self.req([("X-Api-Key", "sandbox-chose-this"), ("Authorization", "Bearer " + h),
                         ("x-api-key", "and-this")])
        rec = self.upstream_record(m)
        self.assertTrue(self.header_of(rec, "X-Api-Key") == ["key-" + S["header"]],
                        "upstream X-Api-Key: " + R(self.header_of(rec, "X-Api-Key")))
        self.assertEqual(r.status, 200, R(r))

    def test_bearer_overrides_second_authorization(self):
        h = self.handle("bearer")
        r, m = self.req([("Authorization", "Bearer " + h), ("Authorization", "Token mine")])
        rec = self.upstream_record(m)
        self.assertTrue(self.header_of(rec, "Authorization") == ["Bearer " + S["bearer"]],
                        "upstream Authorization: " + R(self.header_of(rec, "Authorization")))

    def test_urllib_env_handle(self):
        """A real program: urllib with HTTPS_PROXY, SSL_CERT_FILE and the handle read,
        unmodified, from OPENAI_API_KEY."""
        h = self.handle("bearer")
        m = self.marker()
        script = ("import os, sys, urllib.request\n"
                  "req = urllib.request.Request(sys.argv[1], headers={'Authorization': "
                  "'Bearer ' + os.environ['OPENAI_API_KEY']})\n"
                  "with urllib.request.urlopen(req, timeout=20) as r:\n"
                  "    sys.stdout.write(str(r.status) + '\\n' + r.read().decode())\n")
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                                    "ssl_cert_dir")}
        env.update(HTTPS_PROXY=self.sg.proxy_url, SSL_CERT_FILE=self.sg.ca_cert,
                   OPENAI_API_KEY=h)
        p = subprocess.run(["/usr/bin/python3", "-c", script,
                            "https://%s:%d/reflect-auth/m-%s" % (API, self.echo.port, m)],
                           env=env, capture_output=True, timeout=40,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, R(p.stderr))
        self.assertTrue(p.stdout.startswith(b"200\n"), R(p.stdout[:300]))
        rec = self.upstream_record(m)
        self.assertTrue(self.header_of(rec, "Authorization") == ["Bearer " + S["bearer"]],
                        "upstream Authorization: " + R(self.header_of(rec, "Authorization")))
        self.assert_no_handle_upstream(rec, h)
        self.assert_no_secret(p.stdout, S["bearer"], "urllib's output")
        self.assertIn(h.encode(), p.stdout)

    def test_cache_hit_ratio(self):
        """200 requests with one fresh handle on one connection: all succeed, and the
        verified-handle cache unseals once (1 miss, 199 hits)."""
        h = self.handle("bearer")
        hits0 = sgtest.metrics_value(self.sg, "sealgate_handle_cache_hits_total")
        miss0 = sgtest.metrics_value(self.sg, "sealgate_handle_cache_misses_total")
        self.assertIsNotNone(hits0, "admin /metrics has no sealgate_handle_cache_hits_total")
        self.assertIsNotNone(miss0, "admin /metrics has no sealgate_handle_cache_misses_total")
        authority = "%s:%d" % (API, self.echo.port)
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        statuses = []
        for i in range(200):
            c.send(sgtest.build_request("GET", "/v1/cache-%d" % i, authority,
                                        [("Authorization", "Bearer " + h)]))
            r = c.read_response()
            statuses.append(r.status)
            self.assert_no_secret(r.body, S["bearer"], "response %d" % i)
        self.assertEqual(statuses, [200] * 200)
        hits = sgtest.metrics_value(self.sg, "sealgate_handle_cache_hits_total") - hits0
        miss = sgtest.metrics_value(self.sg, "sealgate_handle_cache_misses_total") - miss0
        sys.stdout.write("[cache] 200 requests: %d hits, %d misses\n" % (hits, miss))
        self.assertEqual(miss, 1)
        self.assertEqual(hits, 199)


# --------------------------------------------------------------------------- authorisation

class AuthzTest(HandleCase):

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="sgtest-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        for d in ("open", "retired", "stranger"):
            os.mkdir(os.path.join(cls.keydir, d))
        cls.open_kp = sgtest.keygen(os.path.join(cls.keydir, "open"))
        cls.retired_kp = sgtest.keygen(os.path.join(cls.keydir, "retired"))
        cls.stranger_kp = sgtest.keygen(os.path.join(cls.keydir, "stranger"))
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.plain = sgtest.EchoUpstream(tls=False)
        cls.addClassCleanup(cls.plain.stop)
        pol = make_policy(cls.echo.port, plain_port=cls.plain.port, sandboxes={
            "sb-tok": {"addresses": ["127.0.0.4/32"], "credentials": ["bearer"],
                       "token": {"value": SB_TOKEN}}})
        pol["keys"] = {"open_keys": [cls.open_kp.key, cls.retired_kp.key],
                       "retired_key_ids": [cls.retired_kp.key_id]}
        cls.sg = sgtest.Sealgate(cls, overrides=pol)
        cls.pub = os.path.join(cls.sg.dir, "keys", "seal.pub")

    def bearer(self, h):
        return [("Authorization", "Bearer " + h)]

    def test_minted_handle_works(self):
        """Control for the crafted cases below: a minted handle passes."""
        r, m = self.req(self.bearer(self.handle("bearer")))
        self.assertEqual(r.status, 200, R(r))
        self.upstream_record(m)

    def test_crafted_handle_works(self):
        """Control: a handle crafted with python3-nacl to the server's seal.pub passes, so
        the crafted refusals below fail for the reason they name."""
        h = sgtest.seal_handle(self.pub, sgtest.handle_claims("bearer", "sb-1"))
        r, m = self.req(self.bearer(h))
        self.assertEqual(r.status, 200, R(r))
        self.upstream_record(m)

    def test_expired(self):
        now = int(time.time())
        h = sgtest.seal_handle(self.pub, sgtest.handle_claims(
            "bearer", "sb-1", iat=now - 3600, exp=now - 120))
        r, m = self.req(self.bearer(h))
        self.assert_refused(r, 403, "handle_expired")
        self.assert_never_arrived(m)

    def test_not_yet_valid(self):
        now = int(time.time())
        h = sgtest.seal_handle(self.pub, sgtest.handle_claims(
            "bearer", "sb-1", iat=now + 600, exp=now + 3600))
        r, _ = self.req(self.bearer(h))
        self.assert_refused(r, 403, "handle_not_yet_valid")

    def test_unknown_key(self):
        h = sgtest.seal_handle(self.stranger_kp.pub, sgtest.handle_claims("bearer", "sb-1"))
        r, m = self.req(self.bearer(h))
        self.assert_refused(r, 403, "unknown_key")
        self.assert_never_arrived(m)

    def test_open_key_still_accepted(self):
        """Rotation: a handle sealed to a key listed in keys.open_keys works."""
        h = sgtest.seal_handle(self.open_kp.pub, sgtest.handle_claims("bearer", "sb-1"))
        r, m = self.req(self.bearer(h))
        self.assertEqual(r.status, 200, R(r))
        self.upstream_record(m)

    def test_retired_key(self):
        h = sgtest.seal_handle(self.retired_kp.pub, sgtest.handle_claims("bearer", "sb-1"))
        rc, out, err = sgtest.sealgate_cli("unseal", "--key", self.retired_kp.key, h)
        self.assertEqual(rc, 0, err)
        self.assertIn(self.retired_kp.key_id, out)
        r, m = self.req(self.bearer(h))
        self.assert_refused(r, 403, "key_retired")
        self.assert_never_arrived(m)

    def test_tampered(self):
        h = self.handle("bearer")
        pre, kid, body = h.split(".")
        i = len(body) // 2
        body = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1:]
        r, m = self.req(self.bearer(".".join((pre, kid, body))))
        self.assert_refused(r, 403, "handle_invalid")
        self.assert_never_arrived(m)

    def test_sealed_to_other_key_under_our_id(self):
        """A handle sealed to a stranger key but labelled with the server's key id."""
        with open(self.pub) as f:
            kid = sgtest.key_id_of(bytes.fromhex(f.read().strip()))
        h = sgtest.seal_handle(self.stranger_kp.pub, sgtest.handle_claims("bearer", "sb-1"),
                               key_id=kid)
        r, _ = self.req(self.bearer(h))
        self.assert_refused(r, 403, "handle_invalid")

    def test_malformed(self):
        h = self.handle("bearer")
        _, _, body = h.split(".")
        r, m = self.req(self.bearer("sgh1.XYZ." + body))
        self.assert_refused(r, 400, "handle_malformed")
        self.assert_never_arrived(m)

    def test_wrong_sandbox(self):
        """The handle of sb-1 used from 127.0.0.2 (sandbox sb-2): 407 naming sb-1."""
        h = self.handle("bearer")
        r, m = self.req(self.bearer(h), source="127.0.0.2")
        j = self.assert_refused(r, 407, "sandbox_mismatch")
        self.assertIn("sb-1", j["message"])
        self.assertIn("metadata", j["message"])
        self.assert_never_arrived(m)

    def test_unowned_address(self):
        h = self.handle("bearer")
        r, m = self.req(self.bearer(h), source="127.0.0.6")
        j = self.assert_refused(r, 407, "sandbox_mismatch")
        self.assertIn("sb-1", j["message"])
        self.assert_never_arrived(m)

    def test_sandbox_token_missing(self):
        h = self.handle("bearer", sandbox="sb-tok")
        r, m = self.req(self.bearer(h), source="127.0.0.4")
        j = self.assert_refused(r, 407, "sandbox_mismatch")
        self.assertIn("sb-tok", j["message"])
        self.assert_never_arrived(m)

    def test_sandbox_token_wrong(self):
        h = self.handle("bearer", sandbox="sb-tok")
        r, m = self.req(self.bearer(h), source="127.0.0.4",
                        proxy_auth="Bearer " + SB_TOKEN[:-1] + "x")
        self.assert_refused(r, 407, "sandbox_mismatch")
        self.assert_never_arrived(m)

    def test_sandbox_token_right(self):
        """Bearer and Basic (curl -U) forms; the token never goes upstream."""
        h = self.handle("bearer", sandbox="sb-tok")
        r, m = self.req(self.bearer(h), source="127.0.0.4", proxy_auth="Bearer " + SB_TOKEN)
        self.assertEqual(r.status, 200, R(r))
        rec = self.upstream_record(m)
        self.assertTrue(SB_TOKEN not in json.dumps(rec), "sandbox token reached the upstream")
        self.assertEqual(self.header_of(rec, "Proxy-Authorization"), [])
        m = self.marker()
        rc, out, err = sgtest.curl(self.sg, "--interface", "127.0.0.4", "-U", "me:" + SB_TOKEN,
                                   "-H", "Authorization: Bearer " + h,
                                   "https://%s:%d/v1/m-%s" % (API, self.echo.port, m))
        self.assertEqual(rc, 0, R(err))
        rec = self.upstream_record(m)
        self.assertTrue(SB_TOKEN not in json.dumps(rec), "sandbox token reached the upstream")
        self.assert_no_secret(out, S["bearer"], "curl's output")

    def test_sandbox_unknown(self):
        h = sgtest.seal_handle(self.pub, sgtest.handle_claims("bearer", "sb-ghost"))
        r, _ = self.req(self.bearer(h))
        self.assert_refused(r, 403, "sandbox_unknown")

    def test_credential_not_granted_crafted(self):
        """sb-2 is granted only bearer; a handle naming sb-2 + header (crafted)."""
        h = sgtest.seal_handle(self.pub, sgtest.handle_claims("header", "sb-2"))
        r, _ = self.req(self.bearer(h), source="127.0.0.2")
        self.assert_refused(r, 403, "credential_not_granted")

    def test_host_out_of_scope(self):
        h = self.handle("bearer")
        r, m = self.req(self.bearer(h), host=OTHER)
        j = self.assert_refused(r, 403, "host_out_of_scope")
        self.assertNotIn(h, j["message"])
        self.assert_never_arrived(m)

    def test_method_out_of_scope(self):
        h = self.handle("bearer")
        r, m = self.req(self.bearer(h), method="DELETE")
        self.assert_refused(r, 403, "method_out_of_scope")
        self.assert_never_arrived(m)

    def test_path_out_of_scope(self):
        h = self.handle("bearer")
        r, m = self.req(self.bearer(h), target="/admin/m-{m}")
        self.assert_refused(r, 403, "path_out_of_scope")
        self.assert_never_arrived(m)

    def test_handle_narrower_scope(self):
        """Handle claims narrow the credential: paths ["/v1/only/*"] refuses /v1/x."""
        h = sgtest.seal_handle(self.pub, sgtest.handle_claims("bearer", "sb-1",
                                                              paths=["/v1/only/*"]))
        r, _ = self.req(self.bearer(h))
        self.assert_refused(r, 403, "path_out_of_scope")
        r, m = self.req(self.bearer(h), target="/v1/only/m-{m}")
        self.assertEqual(r.status, 200, R(r))

    def _plain(self, credential):
        h = self.handle(credential)
        m = self.marker()
        authority = "%s:%d" % (PLAIN, self.plain.port)
        with sgtest.RawConn(self.sg) as c:
            c.send(sgtest.build_request("GET", "http://%s/v1/m-%s" % (authority, m),
                                        authority, self.bearer(h)))
            return c.read_response(), m, h

    def test_plain_http_denied(self):
        r, m, _ = self._plain("plainno")
        self.assert_refused(r, 403, "plain_http_denied")
        self.assertEqual([x for x in self.plain.requests if m in x["path"]], [])

    def test_plain_http_allowed(self):
        r, m, h = self._plain("plainok")
        self.assertEqual(r.status, 200, R(r))
        rec = [x for x in self.plain.wait_requests(1) if m in x["path"]]
        self.assertEqual(len(rec), 1)
        self.assertTrue([v for k, v in rec[0]["headers"] if k.lower() == "authorization"]
                        == ["Bearer " + S["plainok"]], "plain upstream Authorization wrong")
        self.assert_no_secret(r.body, S["plainok"], "the plain response body")


# --------------------------------------------------------------------------- rate limits

class RateTest(HandleCase):
    BURST = 3

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        p = cls.echo.port
        extra = {
            "limited": cred("limited", {"type": "bearer"}, p,
                            rate={"requests": 1, "per": "1h", "burst": cls.BURST}),
            "pooled": cred("pooled", {"type": "bearer"}, p,
                           rate={"requests": 1, "per": "1h", "burst": cls.BURST},
                           rate_total={"requests": 1, "per": "1h", "burst": cls.BURST + 1}),
        }
        cls.sg = sgtest.Sealgate(cls, overrides=make_policy(p, extra_creds=extra))

    def burst(self, h, n):
        out = []
        for _ in range(n):
            r, _ = self.req([("Authorization", "Bearer " + h)])
            out.append(r)
        return out

    def assert_429(self, r):
        self.assert_refused(r, 429, "rate_limited")
        ra = r.header("Retry-After")
        self.assertIsNotNone(ra, "429 without Retry-After")
        self.assertTrue(ra.isdigit() and int(ra) >= 1, ra)
        self.assertIsNotNone(r.header("RateLimit-Policy"))
        self.assertIsNotNone(r.header("RateLimit"))

    def test_burst_then_429(self):
        h = self.handle("limited")
        rs = self.burst(h, self.BURST + 2)
        self.assertEqual([r.status for r in rs], [200] * self.BURST + [429, 429])
        self.assert_429(rs[self.BURST])

    def test_separate_handles_separate_buckets(self):
        a, b = self.handle("limited"), self.handle("limited")
        ra = self.burst(a, self.BURST + 1)
        rb = self.burst(b, self.BURST + 1)
        self.assertEqual([r.status for r in ra], [200] * self.BURST + [429])
        self.assertEqual([r.status for r in rb], [200] * self.BURST + [429])

    def test_rate_total_caps_sum(self):
        """Per handle 3, credential total 4. A: 3 pass, 4th refused by the handle bucket
        (and takes nothing from the total); B: 1 passes (4th of the total), then 429."""
        a, b = self.handle("pooled"), self.handle("pooled")
        ra = self.burst(a, self.BURST + 1)
        self.assertEqual([r.status for r in ra], [200] * self.BURST + [429])
        rb = self.burst(b, 2)
        self.assertEqual([r.status for r in rb], [200, 429])
        self.assert_429(rb[1])
        self.assertIn("credential", rb[1].json()["message"])


# --------------------------------------------------------------------------- policy change

class WithdrawTest(HandleCase):
    """Credential withdrawn from the sandbox by a policy change."""

    def setUp(self):
        self.echo = sgtest.EchoUpstream(self)
        self.sg = sgtest.Sealgate(self, overrides=make_policy(self.echo.port))

    def withdrawn_policy(self):
        pol = json.loads(json.dumps(self.sg.policy))
        pol["sandboxes"]["sb-1"]["credentials"].remove("bearer")
        return pol

    def test_withdrawn_by_reload(self):
        h = self.handle("bearer")
        r, _ = self.req([("Authorization", "Bearer " + h)])
        self.assertEqual(r.status, 200, R(r))
        with open(self.sg.policy_path, "w") as f:
            json.dump(self.withdrawn_policy(), f)
        with open(os.path.join(self.sg.dir, "keys", "admin.token")) as f:
            token = f.read().strip()
        c = http.client.HTTPConnection(*self.sg.admin, timeout=10)
        try:
            c.request("POST", "/v1/reload", headers={"Authorization": "Bearer " + token})
            resp = c.getresponse()
            data = resp.read()
        finally:
            c.close()
        self.assertEqual(resp.status, 200, data)
        r, m = self.req([("Authorization", "Bearer " + h)])
        self.assert_refused(r, 403, "credential_not_granted")
        self.assert_never_arrived_other(m)

    def assert_never_arrived_other(self, m):
        self.assertEqual([x for x in self.echo.requests if m in x["path"]], [])

    def test_withdrawn_new_process_same_keys(self):
        """Handles are stateless: a new process on the changed policy with the same key
        files refuses the old handle as not granted."""
        h = self.handle("bearer")
        pol = self.withdrawn_policy()
        keys = os.path.join(self.sg.dir, "keys")
        pol["keys"] = {"seal_key": os.path.join(keys, "seal.key"),
                       "ca_cert": os.path.join(keys, "ca.crt"),
                       "ca_key": os.path.join(keys, "ca.key")}
        sg2 = sgtest.Sealgate(self, policy=pol)
        r, m = self.req([("Authorization", "Bearer " + h)], sg=sg2)
        self.assert_refused(r, 403, "credential_not_granted")
        self.assert_never_arrived_other(m)
        # and the old process (old policy) still accepts it: the change made the refusal
        r, _ = self.req([("Authorization", "Bearer " + h)])
        self.assertEqual(r.status, 200, R(r))


# --------------------------------------------------------------------------- revocation

class RevokeTest(HandleCase):

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="sgtest-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.open_kp = sgtest.keygen(cls.keydir)
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        p = cls.echo.port
        pol = make_policy(p, extra_creds={"revcred": cred("revcred", {"type": "bearer"}, p)},
                          sandboxes={"sb-rev": {"addresses": ["127.0.0.5/32"],
                                                "credentials": ["bearer"]}})
        pol["revocations"] = {"file": "revocations.json"}
        pol["keys"] = {"open_keys": [cls.open_kp.key]}
        cls.sg = sgtest.Sealgate(cls, overrides=pol)
        with open(os.path.join(cls.sg.dir, "keys", "admin.token")) as f:
            cls.admin_token = f.read().strip()

    def admin_revoke(self, kind, value):
        c = http.client.HTTPConnection(*self.sg.admin, timeout=10)
        try:
            c.request("POST", "/v1/revoke", body=json.dumps({kind: value}),
                      headers={"Authorization": "Bearer " + self.admin_token,
                               "Content-Type": "application/json"})
            resp = c.getresponse()
            data = resp.read()
        finally:
            c.close()
        self.assertEqual(resp.status, 200, data)

    def wait_revoked(self, h, kind, source=None):
        def probe():
            r, _ = self.req([("Authorization", "Bearer " + h)], source=source)
            if r.status == 200:
                return None
            return r
        r = sgtest.wait_for(probe, timeout=10, interval=0.1, what="403 revoked")
        j = self.assert_refused(r, 403, "revoked")
        self.assertIn(kind, j["message"])
        r, m = self.req([("Authorization", "Bearer " + h)], source=source)
        self.assert_refused(r, 403, "revoked")
        self.assertEqual([x for x in self.echo.requests if m in x["path"]], [])

    def ok(self, h, source=None):
        r, _ = self.req([("Authorization", "Bearer " + h)], source=source)
        self.assertEqual(r.status, 200, R(r))

    def test_by_handle_id(self):
        d = self.mint("bearer")
        other = self.handle("bearer")
        self.ok(d["handle"])
        self.admin_revoke("handle_id", d["handle_id"])
        self.wait_revoked(d["handle"], "handle")
        self.ok(other)         # only that handle

    def test_by_sandbox(self):
        h = self.handle("bearer", sandbox="sb-rev")
        self.ok(h, source="127.0.0.5")
        self.admin_revoke("sandbox", "sb-rev")
        self.wait_revoked(h, "sandbox", source="127.0.0.5")
        self.ok(self.handle("bearer"))     # sb-1 unaffected

    def test_by_credential(self):
        h = self.handle("revcred")
        self.ok(h)
        self.admin_revoke("credential", "revcred")
        self.wait_revoked(h, "credential")
        self.ok(self.handle("bearer"))     # other credentials unaffected

    def test_by_key(self):
        h = sgtest.seal_handle(self.open_kp.pub, sgtest.handle_claims("bearer", "sb-1"))
        self.ok(h)
        self.admin_revoke("key", self.open_kp.key_id)
        self.wait_revoked(h, "key")
        self.ok(self.handle("bearer"))     # current key unaffected

    def test_cli_revoke_handle_id(self):
        """The documented workflow: `sealgate revoke --policy P --handle-id HID`."""
        d = self.mint("bearer")
        self.ok(d["handle"])
        rc, out, err = sgtest.sealgate_cli("revoke", "--policy", self.sg.policy_path,
                                           "--handle-id", d["handle_id"])
        self.assertEqual(rc, 0, "sealgate revoke exited %d: %s" % (rc, R(err)[:300]))
        self.wait_revoked(d["handle"], "handle")


# --------------------------------------------------------------------------- hmac / body

class ParkTest(HandleCase):
    """An idle keep-alive client parks (limits.park_after): its upstream goes back to the
    pool and its scrubber (secret copies) is wiped; the next request on the same client
    connection is swapped and scrubbed again, over the pooled upstream connection."""

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=make_policy(
            cls.echo.port, limits={"park_after": "100ms"}))

    def request_on(self, c, h, i):
        authority = "%s:%d" % (API, self.echo.port)
        m = self.marker()
        c.send(sgtest.build_request("GET", "/reflect-auth/park-%d-%s" % (i, m), authority,
                                    [("Authorization", "Bearer " + h)]))
        r = c.read_response()
        rec = self.upstream_record(m)
        self.assertEqual(self.header_of(rec, "Authorization"), ["Bearer " + S["bearer"]])
        self.assert_no_handle_upstream(rec, h)
        self.client_sees(r, S["bearer"], h)
        return rec

    def test_parked_connection_serves_again(self):
        h = self.handle("bearer")
        parked0 = sgtest.metrics_value(self.sg, "sealgate_connections_parked_total")
        self.assertIsNotNone(parked0, "admin /metrics has no sealgate_connections_parked_total")
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        first = self.request_on(c, h, 1)
        sgtest.wait_for(lambda: sgtest.metrics_value(
            self.sg, "sealgate_connections_parked_total") >= parked0 + 1,
            timeout=10, what="the idle connection to park")
        second = self.request_on(c, h, 2)
        self.assertEqual(second["conn_id"], first["conn_id"],
                         "the parked upstream was not taken back from the pool")
        # parks again after the second request: the counter moves once per idle spell
        sgtest.wait_for(lambda: sgtest.metrics_value(
            self.sg, "sealgate_connections_parked_total") >= parked0 + 2,
            timeout=10, what="the connection to park a second time")
        self.request_on(c, h, 3)


class BusyPollTest(HandleCase):
    """limits.busy_poll_us: workers poll after I/O instead of sleeping at once. Requests
    work on both workers, an idle sealgate goes back to sleep (its CPU time stops
    growing), and SIGTERM still stops the polling workers (exit 0, checked at cleanup)."""

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=make_policy(
            cls.echo.port, limits={"busy_poll_us": 500, "workers": 2}))

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.sg.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_requests_then_sleep(self):
        h = self.handle("bearer")
        authority = "%s:%d" % (API, self.echo.port)
        conns = [sgtest.open_intercepted(self.sg, API, self.echo.port) for _ in range(4)]
        for c in conns:
            self.addCleanup(c.close)
        for i in range(25):
            for c in conns:
                c.send(sgtest.build_request("GET", "/v1/busy-%d" % i, authority,
                                            [("Authorization", "Bearer " + h)]))
                r = c.read_response()
                self.assertEqual(r.status, 200, R(r))
                self.assert_no_secret(r.body, S["bearer"], "response %d" % i)
        # idle: one second of wall time must cost far less than one second of CPU
        t0, wall0 = self.cpu_seconds(), time.monotonic()
        threading.Event().wait(1.0)     # the measured interval, not a synchronisation
        used, wall = self.cpu_seconds() - t0, time.monotonic() - wall0
        sys.stdout.write("[busy-poll] idle: %.2f s CPU over %.2f s\n" % (used, wall))
        self.assertLess(used, 0.3 * wall, "busy-polling workers kept spinning while idle")


class HmacBodyTest(HandleCase):
    """Inject types hmac and body (being built): expected behaviour per docs/policy.md."""

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        p = cls.echo.port
        extra = {
            "hmac": cred("hmac", {"type": "hmac"}, p),
            "hmac2": cred("hmac2", {"type": "hmac", "name": "X-Signature",
                                    "format": "sha256=%s"}, p),
            "body": cred("body", {"type": "body"}, p),
            "bodyph": cred("bodyph", {"type": "body", "placeholder": "{{API_KEY}}"}, p),
        }
        cls.sg = sgtest.Sealgate(cls, overrides=make_policy(p, extra_creds=extra))

    def test_hmac_default(self):
        h = self.handle("hmac")
        body = b'{"amount": 42, "memo": "hello"}'
        r, m = self.req([("Authorization", "Bearer " + h),
                         ("Content-Type", "application/json")], method="POST", body=body)
        self.assertEqual(r.status, 200, R(r))
        rec = self.upstream_record(m)
        want = "HMAC " + hmac.new(S["hmac"].encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(self.header_of(rec, "Authorization"), [want])
        self.assertEqual(rec["body"].encode("latin-1"), body)
        self.assert_no_handle_upstream(rec, h)
        self.assert_no_secret(json.dumps(rec), S["hmac"], "the upstream request")

    def test_hmac_named_header(self):
        h = self.handle("hmac2")
        body = b"a=1&b=2"
        r, m = self.req([("Authorization", "Bearer " + h)], method="POST", body=body)
        self.assertEqual(r.status, 200, R(r))
        rec = self.upstream_record(m)
        want = "sha256=" + hmac.new(S["hmac2"].encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(self.header_of(rec, "X-Signature"), [want])
        self.assertEqual(self.header_of(rec, "Authorization"), [])
        self.assert_no_handle_upstream(rec, h)

    def test_body_handle_in_body(self):
        h = self.handle("body")
        body = json.dumps({"api_key": h, "q": "x"}).encode()
        r, m = self.req([("Content-Type", "application/json")], method="POST", body=body)
        self.assertEqual(r.status, 200, R(r))
        rec = self.upstream_record(m)
        want = json.dumps({"api_key": S["body"], "q": "x"}).encode()
        self.assertTrue(rec["body"].encode("latin-1") == want,
                        "upstream body: " + R(rec["body"][:300]))
        self.assertEqual(rec["body_len"], len(want))
        self.assert_no_handle_upstream(rec, h)
        self.client_sees(r, S["body"], h)

    def test_body_placeholder(self):
        h = self.handle("bodyph")
        body = b'{"key": "{{API_KEY}}", "again": "{{API_KEY}}"}'
        r, m = self.req([("Authorization", "Bearer " + h)], method="POST", body=body)
        self.assertEqual(r.status, 200, R(r))
        rec = self.upstream_record(m)
        want = body.replace(b"{{API_KEY}}", S["bodyph"].encode())
        self.assertTrue(rec["body"].encode("latin-1") == want,
                        "upstream body: " + R(rec["body"][:300]))
        self.assert_no_handle_upstream(rec, h)

    def test_body_chunked_request(self):
        """Handle in a chunked request body, split across chunks."""
        h = self.handle("body")
        m = self.marker()
        payload = ("token=" + h + "&end=1").encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 7]), payload[i:i + 7])
                          for i in range(0, len(payload), 7)) + b"0\r\n\r\n"
        authority = "%s:%d" % (API, self.echo.port)
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(("POST /v1/m-%s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                % (m, authority)).encode() + chunks)
        r = c.read_response("POST")
        self.assertEqual(r.status, 200, R(r))
        rec = self.upstream_record(m)
        self.assertTrue(rec["body"] == "token=" + S["body"] + "&end=1",
                        "upstream body: " + R(rec["body"][:300]))
        self.assert_no_handle_upstream(rec, h)
