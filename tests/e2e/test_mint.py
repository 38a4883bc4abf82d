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
  cc-due      client_credentials, tokens of 64 s: 50 concurrent requests once the refresh
              is due (after 4 s, min(32, 4)) cause exactly one more mint
  cc-bad      a client secret the provider does not know: 502 mint_failed
  cc-scrub    client_credentials: the minted token echoed back is scrubbed
  cc-401      client_credentials: a POST answered 401 gets it; the next request mints anew
  cc-retry    client_credentials: a GET whose token the upstream revoked is sent again
              once with a newly minted token (the client sees only the 200)
  cc-401get   client_credentials: a GET the upstream always refuses is retried once only
  cc-narrow   client_credentials with scope "read write": a handle narrowed to "read"
  cc-mdscope  client_credentials with scope "read write": handles narrowed to "read" by
              the metadata responder (GET /v1/handles/cc-mdscope?scope=read)
  cc-aud      client_credentials with audience "api://default" and audiences api://a and
              api://b: handles (CLI --audience, responder ?audience=) pick one of them
  cc-rot      client_credentials, its client_secret a watched file, tokens of 62 s: the
              file is replaced and the provider knows only the new secret; the cached
              token serves on, the next mint (the refresh due after 2 s) sends the new one
  tx          token_exchange (RFC 8693): a subject token exchanged for the token
  gh          github_app: a handle narrowed to one repository and permission
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import mint_standin
import sgtest
import test_metadata

API = "api.example.test"
AUTH = "auth.example.test"
SECRETS = {n: "cs-%s-%s" % (n, os.urandom(12).hex()) for n in
           ("cc", "cc-body", "cc-burst", "cc-short", "cc-due", "cc-scrub", "cc-401",
            "cc-narrow",
            "cc-retry", "cc-401get", "cc-rot", "cc-mdscope", "cc-aud", "rt-client",
            "tx-client")}
ROTATED = "cs-cc-rot-new-" + os.urandom(12).hex()
SUBJECT = "subject-" + os.urandom(16).hex()
WRONG = "cs-wrong-" + os.urandom(12).hex()


def R(x):
    return sgtest.redact_handles(sgtest.redact(x, list(SECRETS.values()) +
                                               [SUBJECT, ROTATED]))


def _replace_secret(path, text):
    """A new secret file renamed over path (mode 0600, as sealgate requires)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def cc_cred(name, port, api_port, auth="basic", secret=None, scope="read"):
    return {"inject": {"type": "bearer"}, "hosts": ["%s:%d" % (API, api_port)],
            "mint": {"type": "client_credentials",
                     "token_url": "https://%s:%d/token" % (AUTH, port),
                     "client_id": name, "client_auth": auth, "scope": scope,
                     "client_secret": {"value": secret or SECRETS[name]}}}


class MintCase(sgtest.TestCase):

    def handle(self, cred, sg=None, narrow=()):
        """A handle of cred for sb-1; narrow: extra `handle mint` arguments."""
        if not narrow:
            return sgtest.mint_handle((sg or self.sg).policy_path, "sb-1", cred)["handle"]
        rc, out, err = sgtest.sealgate_cli(
            "handle", "mint", "--policy", (sg or self.sg).policy_path, "--sandbox", "sb-1",
            "--credential", cred, "--json", *narrow)
        self.assertEqual(rc, 0, err)
        return json.loads(out)["handle"]

    def get(self, handle, target, sg=None, scheme="Bearer", method="GET", body=b""):
        return sgtest.proxied(sg or self.sg, API, self.echo.port, target=target,
                              method=method, body=body,
                              headers=[("Authorization", scheme + " " + handle)], timeout=20)

    def auth_all(self, marker):
        """The Authorization values of every upstream request whose path has marker."""
        return [[v for k, v in r["headers"] if k.lower() == "authorization"]
                for r in self.echo.requests if marker in r["path"]]

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
        clients = {n: SECRETS[n] for n in ("cc", "cc-body", "cc-burst", "cc-short", "cc-due",
                                             "cc-scrub", "cc-401", "cc-narrow",
                                             "cc-retry", "cc-401get", "cc-rot",
                                             "cc-mdscope", "cc-aud", "tx-client")}
        clients["cc-bad"] = "cs-the-right-one-" + os.urandom(8).hex()
        cls.prov = mint_standin.OAuthProvider(pki.server_context("multi"), clients,
                                              expires_in={"cc-short": 62, "cc-rot": 62,
                                                          "cc-due": 64})
        cls.addClassCleanup(cls.prov.stop)
        cls.prov.subjects.add(SUBJECT)
        p, e = cls.prov.port, cls.echo.port
        creds = {n: cc_cred(n, p, e) for n in ("cc", "cc-burst", "cc-short", "cc-due",
                                               "cc-scrub",
                                               "cc-401", "cc-retry", "cc-401get")}
        creds["cc-body"] = cc_cred("cc-body", p, e, auth="body")
        creds["cc-narrow"] = cc_cred("cc-narrow", p, e, scope="read write")
        creds["cc-mdscope"] = cc_cred("cc-mdscope", p, e, scope="read write")
        creds["cc-aud"] = cc_cred("cc-aud", p, e)
        creds["cc-aud"]["mint"].update({"audience": "api://default",
                                        "audiences": ["api://a", "api://b"]})
        creds["tx"] = {"inject": {"type": "bearer"}, "hosts": ["%s:%d" % (API, e)],
                       "mint": {"type": "token_exchange",
                                "token_url": "https://%s:%d/token-exchange" % (AUTH, p),
                                "client_id": "tx-client", "audience": "api://billing",
                                "client_secret": {"value": SECRETS["tx-client"]},
                                "subject_token": {"value": SUBJECT}}}
        creds["cc-bad"] = cc_cred("cc-bad", p, e, secret=WRONG)
        cls.tmp = tempfile.mkdtemp(prefix="sg-mint-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.rot_file = os.path.join(cls.tmp, "cc-rot.secret")
        _replace_secret(cls.rot_file, SECRETS["cc-rot"] + "\n")
        creds["cc-rot"] = cc_cred("cc-rot", p, e)
        creds["cc-rot"]["mint"]["client_secret"] = {"file": cls.rot_file}
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

    def test_fifty_concurrent_at_refresh_one_mint(self):
        """The token's refresh is due (64 s tokens: 4 s after the mint): 50 requests at
        once all succeed, each with the old or the new token, and the provider mints
        exactly once more (one fetch in flight; the others use the token still valid)."""
        h = self.handle("cc-due")
        self.assertEqual(self.get(h, "/v1/due-0/").status, 200)
        minted = time.monotonic()
        self.assertEqual(len(self.prov.tokens("cc-due")), 1)
        # the refresh rule is a time (min(32, 64 - 60) s after the mint): wait for it
        sgtest.wait_for(lambda: time.monotonic() - minted > 4.3, timeout=10, interval=0.1,
                        what="the refresh time of the first token")
        out = [None] * 50

        def one(i):
            out[i] = self.get(h, "/v1/due-%d/" % (i + 1)).status
        ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(out, [200] * 50)
        toks = self.prov.tokens("cc-due")
        self.assertEqual(len(toks), 2, "50 requests at refresh time minted %d times"
                         % (len(toks) - 1))
        seen = {a for i in range(1, 51) for a in self.auth_seen("/v1/due-%d/" % i)}
        self.assertTrue(seen <= {"Bearer " + t for t in toks}, "a request carried "
                        "something other than the two minted tokens")

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

    def test_upstream_401_drops_the_token(self):
        h = self.handle("cc-401")
        r = self.get(h, "/status/401", method="POST", body=b"not idempotent")
        self.assertEqual(r.status, 401, R(r))       # passed through: a POST is not retried
        first = self.prov.tokens("cc-401")
        self.assertEqual(len(first), 1)
        self.assertEqual(len(self.auth_all("/status/401")), 1)
        r = self.get(h, "/v1/after-401")
        self.assertEqual(r.status, 200, R(r))
        toks = self.prov.tokens("cc-401")
        self.assertEqual(len(toks), 2, "no new token after the upstream's 401")
        self.assertEqual(self.auth_seen("/v1/after-401"), ["Bearer " + toks[1]])

    def test_upstream_401_retried_once_with_a_new_token(self):
        h = self.handle("cc-retry")
        r = self.get(h, "/v1/before-revoke")
        self.assertEqual(r.status, 200, R(r))
        old = self.prov.tokens("cc-retry")
        self.assertEqual(len(old), 1)
        self.echo.revoke_auth("Bearer " + old[0])    # the issuer rotated it out
        r = self.get(h, "/v1/after-revoke")
        self.assertEqual(r.status, 200, R(r))        # only the retried answer
        toks = self.prov.tokens("cc-retry")
        self.assertEqual(len(toks), 2, "the provider saw %d mints" % len(toks))
        self.assertEqual(self.auth_all("/v1/after-revoke"),
                         [["Bearer " + toks[0]], ["Bearer " + toks[1]]])
        self.assertNotIn(toks[1].encode(), r.body)   # the new token is scrubbed too

        def lines():
            got = [a for a in sgtest.audit_lines(self.sg)
                   if "/v1/after-revoke" in (a.get("path") or "")]
            return got if len(got) == 2 else None
        first, second = sgtest.wait_for(lines, what="two audit lines of the retry")
        self.assertEqual((first["status"], second["status"]), (401, 200))
        self.assertIn("sent again", first.get("detail", ""))
        self.assertIn("sent again", second.get("detail", ""))
        self.assertGreaterEqual(sgtest.metrics_value(self.sg, "sealgate_mint_retries_total"),
                                1)

    def test_upstream_401_retry_is_bounded(self):
        h = self.handle("cc-401get")
        r = self.get(h, "/status/401?always")
        self.assertEqual(r.status, 401, R(r))        # the retry's own 401, passed on
        self.assertEqual(len(self.auth_all("/status/401?always")), 2)
        toks = self.prov.tokens("cc-401get")
        self.assertEqual(len(toks), 2)
        self.assertEqual(self.auth_all("/status/401?always"),
                         [["Bearer " + toks[0]], ["Bearer " + toks[1]]])

    def test_rotated_client_secret_used_by_the_next_mint(self):
        h = self.handle("cc-rot")
        r = self.get(h, "/v1/rot-before")
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(len(self.prov.tokens("cc-rot")), 1)
        failures = sgtest.metrics_value(self.sg, "sealgate_mint_failures_total") or 0
        with self.prov.lock:
            self.prov.clients["cc-rot"] = ROTATED     # the old secret is refused from now
        _replace_secret(self.rot_file, ROTATED + "\n")
        sgtest.wait_for(lambda: [a for a in sgtest.audit_lines(self.sg)
                                 if a.get("event") == "secret_rotated"
                                 and a.get("credential") == "cc-rot"],
                        what="audit secret_rotated for cc-rot")
        n = [0]

        def minted_again():     # requests go on; the refresh (due after 2 s) mints
            n[0] += 1
            r = self.get(h, "/v1/rot-after-%d" % n[0])
            self.assertEqual(r.status, 200, R(r))
            return len(self.prov.tokens("cc-rot")) >= 2
        sgtest.wait_for(minted_again, timeout=20, interval=0.2,
                        what="a token minted with the rotated client secret")
        toks = self.prov.tokens("cc-rot")
        self.assertEqual(len(toks), 2)
        self.assertEqual(sgtest.metrics_value(self.sg, "sealgate_mint_failures_total") or 0,
                         failures, "a mint sent the replaced client secret")
        n[0] += 1
        r = self.get(h, "/v1/rot-after-%d" % n[0])
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(self.auth_seen("/v1/rot-after-%d" % n[0]), ["Bearer " + toks[1]])
        self.assertNotIn(ROTATED, self.sg.log())

    def test_scope_narrowed_per_handle(self):
        wide, narrow = self.handle("cc-narrow"), self.handle("cc-narrow",
                                                             narrow=("--scope", "read"))
        for h, m in ((wide, "/v1/wide"), (narrow, "/v1/narrow")):
            r = self.get(h, m)
            self.assertEqual(r.status, 200, R(r))
        scopes = [dict(urllib.parse.parse_qsl(q["body"])).get("scope")
                  for q in self.prov.requests if "cc-narrow" in json.dumps(q["headers"]) or
                  "Y2MtbmFycm93" in json.dumps(q["headers"])]
        self.assertEqual(sorted(scopes), ["read", "read write"])
        toks = self.prov.tokens("cc-narrow")
        self.assertEqual(len(toks), 2, "one token per narrowing")
        self.assertEqual(self.auth_seen("/v1/narrow"), ["Bearer " + toks[1]])
        rc, _, err = sgtest.sealgate_cli("handle", "mint", "--policy", self.sg.policy_path,
                                         "--sandbox", "sb-1", "--credential", "cc-narrow",
                                         "--scope", "admin")
        self.assertNotEqual(rc, 0)
        self.assertIn("more than the credential's scope", err)

    def test_metadata_handle_narrowed(self):
        md = test_metadata.Client(self.sg)
        self.addCleanup(md.close)
        tok = md.token()
        r = md.get("/v1/handles/cc-mdscope?scope=read", tok)
        self.assertEqual(r.status, 200, R(r))
        h = json.loads(r.body)["handle"]
        r = self.get(h, "/v1/md-narrow")
        self.assertEqual(r.status, 200, R(r))
        toks = self.prov.tokens("cc-mdscope")
        self.assertEqual(len(toks), 1)
        sent = [dict(urllib.parse.parse_qsl(q["body"])).get("scope")
                for q in self.prov.requests if "Y2MtbWRzY29wZT" in json.dumps(q["headers"])]
        self.assertEqual(sent, ["read"])
        self.assertEqual(self.auth_seen("/v1/md-narrow"), ["Bearer " + toks[0]])
        for query, status, code, why in (
                ("scope=admin", 403, "narrowing_denied", "more than the credential's scope"),
                ("scope=read&scope=write", 400, "bad_request", "(once each)"),
                ("colour=red", 400, "bad_request", "query parameters"),
                ("repo=octo/x", 403, "narrowing_denied", "github_app credentials only")):
            r = md.get("/v1/handles/cc-mdscope?" + query, tok)
            self.assertEqual(r.status, status, query)
            body = json.loads(r.body)
            self.assertEqual(body["error"], code, query)
            self.assertIn(why, body["message"], query)
        r = md.get("/v1/handles/cc-mdscope", tok)     # no query: the credential's scope
        self.assertEqual(r.status, 200, R(r))

    def test_audience_per_handle(self):
        cli_h = self.handle("cc-aud", narrow=("--audience", "api://a"))
        md = test_metadata.Client(self.sg)
        self.addCleanup(md.close)
        tok = md.token()
        r = md.get("/v1/handles/cc-aud?audience=api%3A%2F%2Fb", tok)
        self.assertEqual(r.status, 200, R(r))
        md_h = json.loads(r.body)["handle"]
        plain = self.handle("cc-aud")
        for h, m in ((cli_h, "/v1/aud-a"), (md_h, "/v1/aud-b"), (plain, "/v1/aud-default")):
            r = self.get(h, m)
            self.assertEqual(r.status, 200, R(r))
        sent = sorted(dict(urllib.parse.parse_qsl(q["body"])).get("audience")
                      for q in self.prov.requests if "Y2MtYXVkO" in json.dumps(q["headers"]))
        self.assertEqual(sent, ["api://a", "api://b", "api://default"])
        toks = self.prov.tokens("cc-aud")
        self.assertEqual(len(toks), 3, "one token per audience")
        self.assertEqual(len({self.auth_seen(m)[0] for m in
                              ("/v1/aud-a", "/v1/aud-b", "/v1/aud-default")}), 3)
        rc, _, err = sgtest.sealgate_cli("handle", "mint", "--policy", self.sg.policy_path,
                                         "--sandbox", "sb-1", "--credential", "cc-aud",
                                         "--audience", "api://evil")
        self.assertNotEqual(rc, 0)
        self.assertIn("not one the credential allows", err)
        r = md.get("/v1/handles/cc-aud?audience=api://evil", tok)
        self.assertEqual(r.status, 403, R(r))
        self.assertEqual(json.loads(r.body)["error"], "narrowing_denied")
        r = md.get("/v1/handles/cc-scrub?audience=api://a", tok)   # names no audience
        self.assertEqual(r.status, 403, R(r))

    def test_token_exchange(self):
        r = self.get(self.handle("tx"), "/v1/tx-1")
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(len(self.prov.exchanges), 1)
        x = self.prov.exchanges[0]
        self.assertEqual(x["subject_token"], SUBJECT)
        self.assertEqual(x["subject_token_type"],
                         "urn:ietf:params:oauth:token-type:access_token")
        self.assertEqual(x["audience"], "api://billing")
        self.assertEqual(self.auth_seen("/v1/tx-1"),
                         ["Bearer " + self.prov.tokens("tx-client")[0]])
        self.assertNotIn(SUBJECT, self.sg.log())

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


def _rsa_key(folder, name):
    """An RSA-2048 key pair made with the openssl CLI: (private PEM text, public PEM)."""
    key = os.path.join(folder, name + ".key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", key], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], check=True,
                         capture_output=True).stdout
    os.chmod(key, 0o600)
    with open(key) as f:
        return f.read(), pub


def _secret_file(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


class SignedAssertionTest(MintCase):
    """jwt_bearer (a Google service-account key) and github_app (an App's private key):
    sealgate signs RS256 JWTs that the stand-in verifies with python3-jwt."""

    @classmethod
    def setUpClass(cls):
        pki = sgtest.PKI.get()
        cls.tmp = tempfile.mkdtemp(prefix="sgtest-mint-")
        cls.addClassCleanup(subprocess.run, ["rm", "-rf", cls.tmp])
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.prov = mint_standin.OAuthProvider(pki.server_context("multi"), {})
        cls.addClassCleanup(cls.prov.stop)
        sa_pem, sa_pub = _rsa_key(cls.tmp, "sa")
        app_pem, app_pub = _rsa_key(cls.tmp, "app")
        cls.token_uri = "https://%s:%d/jwt-bearer" % (AUTH, cls.prov.port)
        cls.prov.sa_public_key, cls.prov.sa_audience = sa_pub, cls.token_uri
        cls.prov.app_public_key, cls.prov.app_id = app_pub, "123456"
        cls.email = "sealgate-e2e@project.iam.gserviceaccount.com"
        sa_file = _secret_file(cls.tmp, "sa.json", json.dumps({
            "type": "service_account", "client_email": cls.email, "private_key": sa_pem,
            "token_uri": cls.token_uri}))
        app_file = _secret_file(cls.tmp, "app.pem", app_pem)
        hosts = ["%s:%d" % (API, cls.echo.port)]
        creds = {
            "gcp": {"inject": {"type": "bearer"}, "hosts": hosts,
                    "mint": {"type": "jwt_bearer", "key": {"file": sa_file},
                             "scope": "https://www.googleapis.com/auth/cloud-platform"}},
            "gh": {"inject": {"type": "header", "name": "Authorization",
                              "format": "token %s"}, "hosts": hosts,
                   "mint": {"type": "github_app", "app_id": "123456",
                            "private_key": {"file": app_file}, "installation_id": 42,
                            "api_url": "https://%s:%d" % (AUTH, cls.prov.port)}},
        }
        cls.sg = sgtest.Sealgate(cls, overrides={
            "upstream": {"resolve": {AUTH: sgtest.UPSTREAM_ADDR}},
            "credentials": creds,
            "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"],
                                   "credentials": sorted(creds)}}})

    def test_jwt_bearer_assertion_verified(self):
        r = self.get(self.handle("gcp"), "/v1/gcp-1")
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(self.prov.refused, [])
        self.assertEqual(len(self.prov.assertions), 1)
        a = self.prov.assertions[0]
        self.assertEqual(a["iss"], self.email)
        self.assertEqual(a["aud"], self.token_uri)
        self.assertEqual(a["scope"], "https://www.googleapis.com/auth/cloud-platform")
        self.assertLessEqual(a["exp"] - a["iat"], 3600)
        self.assertEqual(self.auth_seen("/v1/gcp-1"),
                         ["Bearer " + self.prov.tokens("jwt-bearer")[0]])

    def test_github_handle_narrowed_to_one_repository(self):
        h = self.handle("gh", narrow=("--repo", "octo-org/hello-world", "--permission",
                                      "contents:read"))
        r = self.get(h, "/v1/gh-narrow", scheme="token")
        self.assertEqual(r.status, 200, R(r))
        g = [x for x in self.prov.github if x["request"]]
        self.assertEqual(len(g), 1)
        self.assertEqual(g[0]["request"], {"repositories": ["hello-world"],
                                           "permissions": {"contents": "read"}})
        self.assertEqual(self.auth_seen("/v1/gh-narrow"), ["token " + g[0]["token"]])
        rc, _, err = sgtest.sealgate_cli("handle", "mint", "--policy", self.sg.policy_path,
                                         "--sandbox", "sb-1", "--credential", "gh",
                                         "--permission", "contents:own")
        self.assertNotEqual(rc, 0)

    def test_github_app_jwt_verified(self):
        r = self.get(self.handle("gh"), "/v1/gh-1", scheme="token")
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(self.prov.refused, [])
        wide = [x for x in self.prov.github if not x["request"]]
        self.assertEqual(len(wide), 1)
        g = wide[0]
        self.assertEqual(g["path"], "/app/installations/42/access_tokens")
        self.assertEqual(g["claims"]["iss"], "123456")
        self.assertLessEqual(g["claims"]["exp"] - g["claims"]["iat"], 600)
        self.assertEqual(self.auth_seen("/v1/gh-1"), ["token " + g["token"]])


class RefreshTokenTest(MintCase):
    """refresh_token: the provider rotates refresh tokens and revokes a family whose
    token is used twice; sealgate keeps the newest one on disk before using the access
    token, so a kill -9 and a restart never reuse one."""

    def setUp(self):
        pki = sgtest.PKI.get()
        self.state = tempfile.mkdtemp(prefix="sgtest-mint-state-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.state])
        self.echo = sgtest.EchoUpstream()
        self.addCleanup(self.echo.stop)
        self.prov = mint_standin.OAuthProvider(pki.server_context("multi"),
                                               {"rt-client": SECRETS["rt-client"]})
        self.addCleanup(self.prov.stop)
        self.rt0 = "rt0-" + os.urandom(16).hex()
        self.prov.seed_refresh_token(self.rt0)

    def policy(self, seed):
        keys = os.path.join(self.state, "keys")
        cred = {"inject": {"type": "bearer"}, "hosts": ["%s:%d" % (API, self.echo.port)],
                "mint": {"type": "refresh_token",
                         "token_url": "https://%s:%d/token" % (AUTH, self.prov.port),
                         "client_id": "rt-client",
                         "client_secret": {"value": SECRETS["rt-client"]},
                         "refresh_token": {"value": seed}}}
        return {"keys": {"seal_key": os.path.join(keys, "seal.key"),
                         "ca_cert": os.path.join(keys, "ca.crt"),
                         "ca_key": os.path.join(keys, "ca.key")},
                "admin": {"token": {"file": os.path.join(keys, "admin.token")}},
                "state": {"dir": self.state},
                "upstream": {"resolve": {AUTH: sgtest.UPSTREAM_ADDR}},
                "credentials": {"rt": cred},
                "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"],
                                       "credentials": ["rt"]}}}

    def test_rotation_survives_kill9(self):
        sg1 = sgtest.Sealgate(self, overrides=self.policy(self.rt0))
        h = self.handle("rt", sg1)
        r = self.get(h, "/v1/rt-1", sg1)
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(self.auth_seen("/v1/rt-1"), ["Bearer " + self.prov.tokens()[0]])
        with open(os.path.join(self.state, "mint-rt.refresh")) as f:
            kept = f.read()
        self.assertNotIn(self.rt0, kept, "the rotated refresh token was not kept")
        sg1.kill9()
        sg2 = sgtest.Sealgate(self, overrides=self.policy(self.rt0))
        r = self.get(h, "/v1/rt-2", sg2)
        self.assertEqual(r.status, 200, R(r))
        toks = self.prov.tokens()
        self.assertEqual(len(toks), 2)
        self.assertEqual(self.auth_seen("/v1/rt-2"), ["Bearer " + toks[1]])
        self.assertEqual(self.prov.reuses, 0, "the provider saw a refresh token reused")
        self.assertEqual(self.prov.revoked, set())

    def test_invalid_grant_502(self):
        sg = sgtest.Sealgate(self, overrides=self.policy("rt-unknown-" + os.urandom(8).hex()))
        r = self.get(self.handle("rt", sg), "/v1/rt-bad", sg)
        self.assertEqual(r.status, 502, R(r))
        self.assertEqual(r.json()["error"], "mint_failed")
        self.assertIn("invalid_grant", r.json()["message"])
        self.assertIn("terminal", sg.log())
