"""Minted credentials end to end: sealgate exchanges a root secret for a short-lived
token at a token endpoint, caches and refreshes it, and injects it where the handle was.

Topology (loopback): the providers (mint_standin.OAuthProvider: python3-oauthlib's token
endpoint, the RFC 7523 and GitHub App endpoints verifying JWTs with python3-jwt) and the
echo upstream (sgtest.EchoUpstream) on 127.0.0.3 with kernel-picked ports, reached at
auth.example.test and api.example.test (upstream.resolve); sealgate on 127.0.0.1; the
"sandbox" is this process, holding handles only.

Credentials (each test its own, so cache states do not mix):
  cc          client_credentials, HTTP Basic client auth
  cc-body     client_credentials, client_secret in the form
  cc-burst    client_credentials: 50 concurrent requests on a cold cache
  cc-short    client_credentials, tokens of 62 s: refresh due after 2 s (min(31, 2))
  cc-bad      a client secret the provider does not know: 502 mint_failed
  cc-scrub    client_credentials: the minted token echoed back is scrubbed
"""
import base64
import json
import os
import subprocess
import tempfile
import threading

import mint_standin
import sgtest

API = "api.example.test"
AUTH = "auth.example.test"
SECRETS = {n: "cs-%s-%s" % (n, os.urandom(12).hex()) for n in
           ("cc", "cc-body", "cc-burst", "cc-short", "cc-scrub", "rt-client")}
WRONG = "cs-wrong-" + os.urandom(12).hex()


def R(x):
    return sgtest.redact_handles(sgtest.redact(x, list(SECRETS.values())))


def cc_cred(name, port, api_port, auth="basic", secret=None):
    return {"inject": {"type": "bearer"}, "hosts": ["%s:%d" % (API, api_port)],
            "mint": {"type": "client_credentials",
                     "token_url": "https://%s:%d/token" % (AUTH, port),
                     "client_id": name, "client_auth": auth, "scope": "read",
                     "client_secret": {"value": secret or SECRETS[name]}}}


class MintCase(sgtest.TestCase):

    def handle(self, cred, sg=None):
        return sgtest.mint_handle((sg or self.sg).policy_path, "sb-1", cred)["handle"]

    def get(self, handle, target, sg=None):
        return sgtest.proxied(sg or self.sg, API, self.echo.port, target=target,
                              headers=[("Authorization", "Bearer " + handle)], timeout=20)

    def auth_seen(self, marker):
        found = []

        def probe():
            found[:] = [r for r in self.echo.requests if marker in r["path"]]
            return found
        sgtest.wait_for(probe, timeout=10, what="upstream request " + marker)
        self.assertEqual(len(found), 1)
        return [v for k, v in found[0]["headers"] if k.lower() == "authorization"]


class ClientCredentialsTest(MintCase):

    @classmethod
    def setUpClass(cls):
        pki = sgtest.PKI.get()
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        clients = {n: SECRETS[n] for n in ("cc", "cc-body", "cc-burst", "cc-short",
                                             "cc-scrub")}
        clients["cc-bad"] = "cs-the-right-one-" + os.urandom(8).hex()
        cls.prov = mint_standin.OAuthProvider(pki.server_context("multi"), clients,
                                              expires_in={"cc-short": 62})
        cls.addClassCleanup(cls.prov.stop)
        p, e = cls.prov.port, cls.echo.port
        creds = {n: cc_cred(n, p, e) for n in ("cc", "cc-burst", "cc-short", "cc-scrub")}
        creds["cc-body"] = cc_cred("cc-body", p, e, auth="body")
        creds["cc-bad"] = cc_cred("cc-bad", p, e, secret=WRONG)
        cls.sg = sgtest.Sealgate(cls, overrides={
            "upstream": {"resolve": {AUTH: sgtest.UPSTREAM_ADDR}},
            "credentials": creds,
            "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"],
                                   "credentials": sorted(creds)}}})

    def test_minted_token_reaches_upstream(self):
        h = self.handle("cc")
        r = self.get(h, "/v1/cc-1")
        self.assertEqual(r.status, 200, R(r))
        toks = self.prov.tokens("cc")
        self.assertEqual(len(toks), 1, "one mint")
        self.assertEqual(self.auth_seen("/v1/cc-1"), ["Bearer " + toks[0]])
        self.assertNotIn(h.split(".")[2][:24], json.dumps(self.echo.requests[-1]))
        r = self.get(h, "/v1/cc-2")       # cached: no second mint
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(self.auth_seen("/v1/cc-2"), ["Bearer " + toks[0]])
        self.assertEqual(len(self.prov.tokens("cc")), 1)
        basic = [base64.b64decode(v[6:]).decode() for q in self.prov.requests
                 for k, v in q["headers"] if k == "Authorization" and v.startswith("Basic ")]
        self.assertIn("cc:" + SECRETS["cc"], basic, "client auth is HTTP Basic")

    def test_client_secret_in_body(self):
        r = self.get(self.handle("cc-body"), "/v1/body-1")
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(self.auth_seen("/v1/body-1"), ["Bearer " + self.prov.tokens(
            "cc-body")[0]])

    def test_fifty_concurrent_cold_one_mint(self):
        h = self.handle("cc-burst")
        out = [None] * 50

        def one(i):
            out[i] = self.get(h, "/v1/burst-%d" % i).status
        ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(out, [200] * 50)
        self.assertEqual(len(self.prov.tokens("cc-burst")), 1,
                         "the provider minted more than once for 50 requests")

    def test_handle_works_across_refresh(self):
        h = self.handle("cc-short")
        r = self.get(h, "/v1/short-0")
        self.assertEqual(r.status, 200, R(r))
        first = self.prov.tokens("cc-short")[0]
        n = [0]

        def refreshed():     # requests go on; after 2 s one of them starts the refresh
            n[0] += 1
            r = self.get(h, "/v1/short-%d" % n[0])
            self.assertEqual(r.status, 200, R(r))
            toks = self.prov.tokens("cc-short")
            return len(toks) >= 2 and self.auth_seen("/v1/short-%d" % n[0]) == \
                ["Bearer " + toks[1]]
        sgtest.wait_for(refreshed, timeout=20, interval=0.2,
                        what="a request with the refreshed token")
        self.assertNotEqual(self.prov.tokens("cc-short")[1], first)
        self.assertEqual(len(self.prov.tokens("cc-short")), 2)

    def test_mint_failure_502(self):
        r = self.get(self.handle("cc-bad"), "/v1/bad-1")
        self.assertEqual(r.status, 502, R(r))
        self.assertEqual(r.json()["error"], "mint_failed")
        self.assertIn("invalid_client", r.json()["message"])
        self.assertNotIn(WRONG, r.body.decode() + self.sg.log())
        self.assertFalse([q for q in self.echo.requests if "/v1/bad-1" in q["path"]])
        audit = open(os.path.join(self.sg.dir, "audit.log")).read()
        self.assertIn('"event":"mint"', audit)
        self.assertNotIn(WRONG, audit)

    def test_minted_token_scrubbed(self):
        h = self.handle("cc-scrub")
        r = self.get(h, "/reflect-auth/scrub-1")
        self.assertEqual(r.status, 200, R(r))
        tok = self.prov.tokens("cc-scrub")[0]
        self.assertEqual(self.auth_seen("/reflect-auth/scrub-1"), ["Bearer " + tok])
        self.assertNotIn(tok.encode(), r.raw_head + r.body)
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + h)
        for line in self.sg.log().splitlines() + open(os.path.join(
                self.sg.dir, "audit.log")).read().splitlines():
            self.assertNotIn(tok, line, "the token was logged")
        self.assertGreaterEqual(sgtest.metrics_value(self.sg, "sealgate_mint_fetches_total"),
                                1)
