"""Tokenizer-compatible sealed secrets end to end.

Tokens are built by tokenizer_seal.py (PyNaCl, as superfly/tokenizer's clients build
them) against the seal.key sealgate made on its first start, and used

  PlainTest    over plain absolute-form http://api.example.test:PORT/ with Proxy-Tokenizer:
               sealgate upgrades to TLS toward the upstream as tokenizer does (port 80 or
               none -> 443, other ports kept: here the echo's TLS port). Proxy auth as
               Bearer, FlyV1 and Basic password. Every processor: inject (sealed dst/fmt,
               allowed lists), inject_hmac (body and msg param), inject_body, oauth2 (st),
               oauth2_body, multi. Several Proxy-Tokenizer lines.
  ConnectTest  inside an intercepted CONNECT (Proxy-Tokenizer on the inner request, and
               on the CONNECT itself as tokenizer allows).
  RefuseTest   bad/missing proxy auth -> 407, out-of-scope host (list and pattern) -> 403,
               param escalation -> 403 tokenizer_param_denied, malformed / two processors /
               other key -> 400, expired -> 403, method/path -> 403, rate -> 429; refused
               requests never reach the upstream.
  KeyTest      seal.key is tokenizer's OPEN_KEY: the public key derived from it (as
               tokenizer's ParseOpenKey does) is seal.pub.

The upstream never sees Proxy-Tokenizer or Proxy-Authorization; the client never sees
the secret (responses scrubbed to [sealgate:redacted]).
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sgtest                       # noqa: E402
import tokenizer_seal as tk         # noqa: E402

API = "api.example.test"
OTHER = "other.example.test"
PROXY_PASS = "tkpass-" + os.urandom(8).hex()
REDACTED = "[sealgate:redacted]"


def _secret(tag):
    return "sk-tk-%s-%s" % (tag, os.urandom(10).hex())


S = {k: _secret(k) for k in ("inject", "key", "hmac", "body", "access", "refresh",
                             "m1", "m2", "conn", "plain", "rate", "pat", "flyv1")}
ALL = list(S.values()) + [PROXY_PASS]


def R(x):
    return sgtest.redact(x, ALL)


def open_key(sg):
    with open(os.path.join(sg.dir, os.path.dirname(sg.policy["keys"]["seal_key"]),
                           "seal.key")) as f:
        return f.read().strip()


class TokenizerCase(sgtest.TestCase):
    """cls.sg, cls.echo, cls.pub (from seal.key, as tokenizer's ParseOpenKey)."""

    OVERRIDES = None    # policy overrides for the class's sealgate

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=cls.OVERRIDES)
        cls.pub = tk.public_from_open_key(open_key(cls.sg))
        cls.hostport = "%s:%d" % (API, cls.echo.port)

    # -- building tokens
    def seal(self, processor, auth=None, hosts=None, **kw):
        if hosts is None and "allowed_host_pattern" not in kw:
            hosts = [self.hostport]
        pattern = kw.pop("allowed_host_pattern", None)
        sec = tk.secret(processor, auth if auth is not None else tk.bearer_auth(PROXY_PASS),
                        allowed_hosts=hosts, allowed_host_pattern=pattern, **kw)
        return tk.seal(self.pub, sec)

    # -- sending
    def marker(self):
        return os.urandom(6).hex()

    def plain(self, tk_headers, proxy_auth="Bearer " + PROXY_PASS, method="GET",
              target="/v1/m-{m}", body=b"", extra=(), host=API, port=None):
        """Absolute-form http:// request straight to the proxy. (Response, marker)."""
        m = self.marker()
        port = port or self.echo.port
        authority = "%s:%d" % (host, port)
        path = target.replace("{m}", m)
        headers = [("Proxy-Tokenizer", h) for h in tk_headers]
        if proxy_auth:
            headers.append(("Proxy-Authorization", proxy_auth))
        headers += list(extra)
        req = sgtest.build_request(method, "http://%s%s" % (authority, path), authority,
                                   headers, body)
        with sgtest.RawConn(self.sg, timeout=15) as c:
            c.send(req)
            r = c.read_response(method)
        return r, m

    def tunneled(self, tk_headers, proxy_auth="Bearer " + PROXY_PASS, method="GET",
                 target="/v1/m-{m}", body=b"", connect_tk=None):
        m = self.marker()
        authority = self.hostport
        extra = b""
        if proxy_auth:
            extra += b"Proxy-Authorization: %s\r\n" % proxy_auth.encode()
        if connect_tk:
            extra += b"Proxy-Tokenizer: %s\r\n" % connect_tk.encode()
        req = sgtest.build_request(method, target.replace("{m}", m), authority,
                                   [("Proxy-Tokenizer", h) for h in tk_headers], body)
        stage, r = sgtest.request_via_connect(self.sg, authority, req, method=method,
                                              timeout=15, connect_extra=extra)
        r.stage = stage
        return r, m

    # -- checking
    def record(self, m, timeout=5):
        found = []

        def probe():
            found[:] = [r for r in self.echo.requests if m in r["path"]]
            return found
        sgtest.wait_for(probe, timeout=timeout, what="upstream request with marker " + m)
        self.assertEqual(len(found), 1)
        return found[0]

    def hdrs(self, rec, name):
        return [v for k, v in rec["headers"] if k.lower() == name.lower()]

    def ok(self, r, m, secret=None):
        """200, the upstream got the request over TLS without the proxy headers, and the
        client's copy holds no secret."""
        self.assertEqual(r.status, 200, "want 200, got %s %s: %s"
                         % (r.status, r.header("X-Sealgate-Error"), R(r.body[:300])))
        rec = self.record(m)
        self.assertEqual(self.hdrs(rec, "Proxy-Tokenizer"), [], "Proxy-Tokenizer forwarded")
        self.assertEqual(self.hdrs(rec, "Proxy-Authorization"), [],
                         "Proxy-Authorization forwarded")
        self.assertIsNotNone(rec.get("sni"), "the upstream leg was not TLS")
        for s in ALL:
            self.assertNotIn(s.encode(), r.raw_head + r.body, "a secret reached the client")
        if secret is not None:
            self.assertIn(REDACTED.encode(), r.body, "reflected secret not scrubbed")
        return rec

    def refused(self, r, m, status, code):
        self.assertTrue(r.status == status and r.header("X-Sealgate-Error") == code,
                        "want %d %s, got %s %s: %s" % (status, code, r.status,
                                                      r.header("X-Sealgate-Error"),
                                                      R(r.body[:300])))
        j = sgtest.assert_error(self, r, status, code)
        for s in ALL:
            self.assertNotIn(s, j["message"])
        # barrier: a later good request arrives, the refused one never did
        good = self.seal(tk.inject(S["inject"]))
        r2, m2 = self.plain([good])
        self.assertEqual(r2.status, 200, R(r2.body[:300]))
        self.record(m2)
        self.assertEqual([x for x in self.echo.requests if m in x["path"]], [],
                         "a refused request reached the upstream")
        return j


# --------------------------------------------------------------------------- plain http

class PlainTest(TokenizerCase):

    def test_inject_bearer_upgraded_to_tls(self):
        t = self.seal(tk.inject(S["inject"]))
        r, m = self.plain([t], target="/reflect-auth/m-{m}")
        rec = self.ok(r, m, secret=S["inject"])
        self.assertEqual(self.hdrs(rec, "Authorization"), ["Bearer " + S["inject"]])
        self.assertEqual(rec["sni"], API)
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + REDACTED)

    def test_proxy_auth_schemes(self):
        t = self.seal(tk.inject(S["inject"]))
        basic = base64.b64encode(b"anyuser:" + PROXY_PASS.encode()).decode()
        for pa in ("FlyV1 " + PROXY_PASS, "Basic " + basic):
            r, m = self.plain([t], proxy_auth=pa)
            rec = self.ok(r, m)
            self.assertEqual(self.hdrs(rec, "Authorization"), ["Bearer " + S["inject"]], pa[:5])

    def test_no_auth_secret(self):
        t = self.seal(tk.inject(S["plain"]), auth=tk.no_auth())
        r, m = self.plain([t], proxy_auth=None)
        rec = self.ok(r, m)
        self.assertEqual(self.hdrs(rec, "Authorization"), ["Bearer " + S["plain"]])

    def test_sealed_dst_fmt_replaces_client_header(self):
        t = self.seal(tk.inject(S["key"], dst="x-api-key", fmt="key=%s"))
        r, m = self.plain([t], extra=[("X-Api-Key", "placeholder"), ("X-Keep", "1")])
        rec = self.ok(r, m)
        self.assertEqual(self.hdrs(rec, "X-Api-Key"), ["key=" + S["key"]])
        self.assertEqual(self.hdrs(rec, "X-Keep"), ["1"])

    def test_allowed_lists_let_params_choose(self):
        t = self.seal(tk.inject(S["key"], allowed_fmt=["token %s", "Bearer %s"],
                                allowed_dst=["Authorization", "X-Key"]))
        r, m = self.plain([tk.header(t, {"dst": "X-Key", "fmt": "Bearer %s"})])
        rec = self.ok(r, m)
        self.assertEqual(self.hdrs(rec, "X-Key"), ["Bearer " + S["key"]])
        r, m = self.plain([t])
        rec = self.ok(r, m)
        self.assertEqual(self.hdrs(rec, "Authorization"), ["token " + S["key"]])

    def test_hmac_over_body(self):
        key = os.urandom(32)
        body = b'{"amount": 100, "m": "%s"}' % os.urandom(4).hex().encode()
        t = self.seal(tk.inject_hmac(key))
        r, m = self.plain([t], method="POST", body=body)
        rec = self.ok(r, m)
        want = "Bearer " + hmac.new(key, body, hashlib.sha256).hexdigest()
        self.assertEqual(self.hdrs(rec, "Authorization"), [want])
        self.assertEqual(rec["body"].encode("latin-1"), body)

    def test_hmac_msg_param(self):
        key = os.urandom(32)
        t = self.seal(tk.inject_hmac(key, dst="X-Signature", fmt="%X"))
        r, m = self.plain([tk.header(t, {"msg": "1700000000.payload"})])
        rec = self.ok(r, m)
        want = hmac.new(key, b"1700000000.payload", hashlib.sha256).hexdigest().upper()
        self.assertEqual(self.hdrs(rec, "X-Signature"), [want])

    def test_body_placeholder(self):
        t = self.seal(tk.inject_body(S["body"]))
        body = b'{"client_secret": "{{ACCESS_TOKEN}}", "x": 1}'
        r, m = self.plain([t], method="POST", body=body,
                          extra=[("Content-Type", "application/json")])
        rec = self.ok(r, m)
        self.assertEqual(rec["body"], '{"client_secret": "%s", "x": 1}' % S["body"])
        self.assertNotIn("{{ACCESS_TOKEN}}", rec["body"])

    def test_oauth2_access_and_refresh(self):
        t = self.seal(tk.oauth2(S["access"], S["refresh"]))
        r, m = self.plain([t])
        self.assertEqual(self.hdrs(self.ok(r, m), "Authorization"), ["Bearer " + S["access"]])
        r, m = self.plain([tk.header(t, {"st": "refresh"})])
        self.assertEqual(self.hdrs(self.ok(r, m), "Authorization"),
                         ["Bearer " + S["refresh"]])

    def test_oauth2_body(self):
        t = self.seal(tk.oauth2_body(S["access"], S["refresh"], placeholder="@@RT@@"))
        r, m = self.plain([tk.header(t, {"st": "refresh"})], method="POST",
                          body=b"grant_type=refresh_token&refresh_token=@@RT@@")
        rec = self.ok(r, m)
        self.assertEqual(rec["body"], "grant_type=refresh_token&refresh_token=" + S["refresh"])

    def test_multi_processor(self):
        t = self.seal(tk.multi(tk.inject(S["m1"]),
                               tk.inject(S["m2"], dst="X-Second", fmt="%s")))
        r, m = self.plain([t])
        rec = self.ok(r, m)
        self.assertEqual(self.hdrs(rec, "Authorization"), ["Bearer " + S["m1"]])
        self.assertEqual(self.hdrs(rec, "X-Second"), [S["m2"]])

    def test_several_header_lines(self):
        a = self.seal(tk.inject(S["m1"]))
        b = self.seal(tk.inject(S["m2"], dst="X-Second", fmt="%s"))
        r, m = self.plain([a, b])
        rec = self.ok(r, m)
        self.assertEqual(self.hdrs(rec, "Authorization"), ["Bearer " + S["m1"]])
        self.assertEqual(self.hdrs(rec, "X-Second"), [S["m2"]])

    def test_host_pattern(self):
        t = self.seal(tk.inject(S["pat"]), hosts=None,
                      allowed_host_pattern=r"api\.example\.test:\d+")
        r, m = self.plain([t])
        self.assertEqual(self.hdrs(self.ok(r, m), "Authorization"), ["Bearer " + S["pat"]])

    def test_sealgate_extras_within_limits(self):
        now = int(time.time())
        t = self.seal(tk.inject(S["inject"]), exp=now + 600, nbf=now - 10,
                      allowed_methods=["GET"], allowed_paths=["/v1/*"])
        r, m = self.plain([t])
        self.ok(r, m)


# --------------------------------------------------------------------------- CONNECT

class ConnectTest(TokenizerCase):

    def test_inner_request(self):
        t = self.seal(tk.inject(S["conn"]))
        r, m = self.tunneled([t], target="/reflect-auth/m-{m}")
        self.assertEqual(r.stage, "inner")
        rec = self.ok(r, m, secret=S["conn"])
        self.assertEqual(self.hdrs(rec, "Authorization"), ["Bearer " + S["conn"]])
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + REDACTED)

    def test_on_the_connect(self):
        t = self.seal(tk.inject(S["conn"]))
        r, m = self.tunneled([], connect_tk=t)
        self.assertEqual(r.stage, "inner", R(r.body[:300]))
        rec = self.ok(r, m)
        self.assertEqual(self.hdrs(rec, "Authorization"), ["Bearer " + S["conn"]])

    def test_bad_auth_in_tunnel(self):
        t = self.seal(tk.inject(S["conn"]))
        r, m = self.tunneled([t], proxy_auth="Bearer wrong")
        self.assertEqual(r.stage, "inner")
        self.refused(r, m, 407, "tokenizer_auth")


# --------------------------------------------------------------------------- refusals

class RefuseTest(TokenizerCase):
    # Dozens of deliberately refused tokens from one address: the failed-handle throttle
    # (test_throttle.py) would answer the later ones 429 too_many_failures.
    OVERRIDES = {"limits": {"failed_handles": 0}}

    def test_bad_proxy_auth(self):
        t = self.seal(tk.inject(S["inject"]))
        r, m = self.plain([t], proxy_auth="Bearer not-" + PROXY_PASS)
        self.refused(r, m, 407, "tokenizer_auth")

    def test_missing_proxy_auth(self):
        t = self.seal(tk.inject(S["inject"]))
        r, m = self.plain([t], proxy_auth=None)
        self.refused(r, m, 407, "tokenizer_auth")

    def test_host_out_of_scope(self):
        t = self.seal(tk.inject(S["inject"]), hosts=["%s:%d" % (OTHER, self.echo.port)])
        r, m = self.plain([t])
        self.refused(r, m, 403, "host_out_of_scope")
        # the same host without the port is another authority
        t = self.seal(tk.inject(S["inject"]), hosts=[API])
        r, m = self.plain([t])
        self.refused(r, m, 403, "host_out_of_scope")

    def test_host_pattern_anchored(self):
        t = self.seal(tk.inject(S["inject"]), hosts=None,
                      allowed_host_pattern=r"example\.test")
        r, m = self.plain([t])
        self.refused(r, m, 403, "host_out_of_scope")

    def test_unscoped_secret(self):
        t = tk.seal(self.pub, tk.secret(tk.inject(S["inject"]), tk.bearer_auth(PROXY_PASS)))
        r, m = self.plain([t])
        self.refused(r, m, 403, "host_out_of_scope")

    def test_param_escalation(self):
        t = self.seal(tk.inject(S["inject"]))
        for params in ({"dst": "X-Echo-Me"}, {"fmt": "%s"}, {"dst": "Cookie"}):
            r, m = self.plain([tk.header(t, params)])
            self.refused(r, m, 403, "tokenizer_param_denied")
        t = self.seal(tk.inject(S["inject"], allowed_dst=["Authorization"]))
        r, m = self.plain([tk.header(t, {"dst": "X-Other"})])
        self.refused(r, m, 403, "tokenizer_param_denied")
        t = self.seal(tk.oauth2(S["access"]))
        r, m = self.plain([tk.header(t, {"st": "refresh"})])
        self.refused(r, m, 403, "tokenizer_param_denied")

    def test_malformed(self):
        two = tk.seal_json(self.pub, '{"inject_processor":{"token":"a"},'
                                     '"inject_body_processor":{"token":"b"},"no_auth":{}}')
        noauth = tk.seal_json(self.pub, '{"inject_processor":{"token":"a"},'
                                        '"allowed_hosts":["%s"]}' % self.hostport)
        notjson = tk.seal_json(self.pub, "not json")
        other = tk.seal(tk.public_from_open_key(os.urandom(32).hex()),
                        tk.secret(tk.inject("x"), tk.no_auth(), allowed_hosts=[self.hostport]))
        for bad in (two, noauth, notjson, other, "not*base64", "%s, %s" % (other, other)):
            r, m = self.plain([bad])
            self.refused(r, m, 400, "tokenizer_invalid")
        r, m = self.plain([tk.seal_json(self.pub, '{"sigv4_processor":{"access_key":"a",'
                                                  '"secret_key":"b"},"no_auth":{}}')])
        self.refused(r, m, 400, "tokenizer_unsupported")

    def test_expired_and_not_yet_valid(self):
        now = int(time.time())
        r, m = self.plain([self.seal(tk.inject(S["inject"]), exp=now - 3600)])
        self.refused(r, m, 403, "token_expired")
        r, m = self.plain([self.seal(tk.inject(S["inject"]), nbf=now + 3600)])
        self.refused(r, m, 403, "token_not_yet_valid")

    def test_method_and_path(self):
        t = self.seal(tk.inject(S["inject"]), allowed_methods=["GET"],
                      allowed_paths=["/v1/*"])
        r, m = self.plain([t], method="POST")
        self.refused(r, m, 403, "method_out_of_scope")
        r, m = self.plain([t], target="/v2/m-{m}")
        self.refused(r, m, 403, "path_out_of_scope")

    def test_rate(self):
        t = self.seal(tk.inject(S["rate"]), rate={"requests": 2, "per": "1h"})
        for _ in range(2):
            r, m = self.plain([t])
            self.ok(r, m)
        r, m = self.plain([t])
        self.refused(r, m, 429, "rate_limited")
        self.assertIsNotNone(r.header("Retry-After"))


class KeyTest(sgtest.TestCase):

    def test_seal_key_is_tokenizer_open_key(self):
        sg = sgtest.Sealgate(self)
        ok = open_key(sg)
        self.assertRegex(ok, r"^[0-9a-f]{64}$")
        with open(os.path.join(os.path.dirname(os.path.join(sg.dir,
                               sg.policy["keys"]["seal_key"])), "seal.pub")) as f:
            pub = f.read().strip()
        self.assertEqual(bytes(tk.public_from_open_key(ok)).hex(), pub)
        # a token sealed to it opens with the key (the tokenizer CLI's unseal)
        t = tk.seal(pub, tk.secret(tk.inject("x-secret"), tk.no_auth()))
        self.assertIn(b'"inject_processor"', tk.unseal(ok, t))


if __name__ == "__main__":
    import unittest
    unittest.main()
