"""The failed-handle throttle end to end (limits.failed_handles / failed_handles_window).

  FloodTest    sandbox A (127.0.0.1) floods sealgate with well-formed handles sealed to a
               stranger key under the server's key id: exactly limits.failed_handles get
               403 handle_invalid, every later one 429 too_many_failures with Retry-After;
               then a valid handle and a Proxy-Tokenizer token from A are refused the same
               way, while A's requests without a handle pass. Sandbox B (127.0.0.2) is
               served throughout, its secret arriving upstream. One brute_force audit line
               and one warning for the window, no handle text in the log, and the metrics
               moved by exactly what was sent.
  RecoverTest  the window shortened by a reload (10m -> 2s): A is served again once its
               budget refills (a condition wait on real requests).

Secrets are random per run and never printed: messages go through sgtest.redact.
"""
import http.client
import json
import os
import shutil
import tempfile

import sgtest

API = "api.example.test"
SECRET_A = "sk-thr-a-" + os.urandom(12).hex()
SECRET_B = "sk-thr-b-" + os.urandom(12).hex()
LIMIT = 5           # limits.failed_handles in FloodTest
FLOOD = 12          # undecryptable handles A sends
WINDOW_S = 600      # limits.failed_handles_window in FloodTest: a token back every 120 s


def R(x):
    return sgtest.redact_handles(sgtest.redact(x, [SECRET_A, SECRET_B]))


def make_policy(port, limit, window):
    hosts = ["%s:%d" % (API, port)]
    return {
        "limits": {"failed_handles": limit, "failed_handles_window": window},
        "credentials": {
            "ca": {"secret": {"value": SECRET_A}, "inject": {"type": "bearer"},
                   "hosts": hosts},
            "cb": {"secret": {"value": SECRET_B}, "inject": {"type": "bearer"},
                   "hosts": hosts},
        },
        "sandboxes": {
            "sb-a": {"addresses": ["127.0.0.1/32"], "credentials": ["ca"]},
            "sb-b": {"addresses": ["127.0.0.2/32"], "credentials": ["cb"]},
        },
    }


class ThrottleCase(sgtest.TestCase):

    def start(self, limit, window):
        self.echo = sgtest.EchoUpstream(self)
        self.sg = sgtest.Sealgate(self, overrides=make_policy(self.echo.port, limit, window))
        self.keydir = tempfile.mkdtemp(prefix="sgtest-thr-")
        self.addCleanup(shutil.rmtree, self.keydir, True)
        self.stranger = sgtest.keygen(self.keydir)
        with open(os.path.join(self.sg.dir, "keys", "seal.pub")) as f:
            self.kid = sgtest.key_id_of(bytes.fromhex(f.read().strip()))

    def undecryptable(self):
        """Well-formed, the server's key id, sealed to another key: handle_invalid."""
        return sgtest.seal_handle(self.stranger.pub, sgtest.handle_claims("ca", "sb-a"),
                                  key_id=self.kid)

    def valid(self, sandbox, credential):
        return sgtest.mint_handle(self.sg.policy_path, sandbox, credential)["handle"]

    def req(self, source, handle=None, headers=()):
        """One request to the echo from source; returns (Response, marker)."""
        m = os.urandom(6).hex()
        hdrs = list(headers)
        if handle:
            hdrs.append(("Authorization", "Bearer " + handle))
        r = sgtest.proxied(self.sg, API, self.echo.port, target="/v1/m-" + m,
                           headers=hdrs, source=source)
        return r, m

    def arrived(self, m, secret):
        """The request with marker m reached the upstream, carrying secret."""
        found = []

        def probe():
            found[:] = [x for x in self.echo.requests if m in x["path"]]
            return found
        sgtest.wait_for(probe, timeout=5, what="upstream request with marker " + m)
        self.assertEqual(len(found), 1)
        auth = [v for k, v in found[0]["headers"] if k.lower() == "authorization"]
        self.assertTrue(auth == ["Bearer " + secret], "upstream Authorization: " + R(auth))

    def refused(self, r, status, code):
        self.assertTrue(r.status == status and r.header("X-Sealgate-Error") == code,
                        "want %d %s, got %s %s: %s" % (status, code, r.status,
                                                      r.header("X-Sealgate-Error"),
                                                      R(r.body[:300])))
        return sgtest.assert_error(self, r, status, code)

    def throttled(self, r, max_retry):
        j = self.refused(r, 429, "too_many_failures")
        ra = r.header("Retry-After")
        self.assertIsNotNone(ra, r)
        self.assertTrue(ra.isdigit() and 1 <= int(ra) <= max_retry, "Retry-After: %r" % ra)
        self.assertIn("failed_handles", r.header("RateLimit-Policy", ""))
        return j

    def cache_lookups(self):
        """Verified-handle cache hits + misses: every unseal attempt is one of them."""
        return sum(sgtest.metrics_value(self.sg, "sealgate_handle_cache_%s_total" % n)
                   for n in ("hits", "misses"))

    def metrics(self):
        return {n: sgtest.metrics_value(self.sg, "sealgate_%s_total" % n)
                for n in ("handle_failures", "handle_throttled", "brute_force")}

    def audit_lines(self):
        return sgtest.audit_lines(self.sg)


class FloodTest(ThrottleCase):

    def setUp(self):
        self.start(LIMIT, "%ds" % WINDOW_S)

    def test_flood_throttles_only_the_flooder(self):
        before = self.metrics()
        good_a, good_b = self.valid("sb-a", "ca"), self.valid("sb-b", "cb")
        bad = [self.undecryptable() for _ in range(FLOOD)]
        got, b_markers = [], []
        max_retry = WINDOW_S // LIMIT
        lookups0 = self.cache_lookups()
        for i, h in enumerate(bad):
            r, _ = self.req("127.0.0.1", h)
            got.append((r.status, r.header("X-Sealgate-Error")))
            if r.status == 429:
                self.throttled(r, max_retry)
            if i % 3 == 2:      # B, during the flood
                rb, mb = self.req("127.0.0.2", good_b)
                self.assertEqual(rb.status, 200, R(rb))
                b_markers.append(mb)
        self.assertEqual(got, [(403, "handle_invalid")] * LIMIT +
                         [(429, "too_many_failures")] * (FLOOD - LIMIT))
        for mb in b_markers:
            self.arrived(mb, SECRET_B)
        # refused before the handle cache: only A's failures and B's requests looked up
        self.assertEqual(self.cache_lookups() - lookups0, LIMIT + len(b_markers))

        # a valid handle and a tokenizer token from A: refused the same way, unopened
        lookups1 = self.cache_lookups()
        r, m_valid = self.req("127.0.0.1", good_a)
        j = self.throttled(r, max_retry)
        self.assertIn("sandbox sb-a", j["message"])
        r, _ = self.req("127.0.0.1", headers=[("Proxy-Tokenizer", "AAAA")])
        self.throttled(r, max_retry)
        self.assertEqual(self.cache_lookups(), lookups1)
        # A without a handle, and B again: served
        r, m_plain = self.req("127.0.0.1")
        self.assertEqual(r.status, 200, R(r))
        rb, mb = self.req("127.0.0.2", good_b)
        self.assertEqual(rb.status, 200, R(rb))
        self.arrived(mb, SECRET_B)
        self.assertEqual([x for x in self.echo.requests if m_valid in x["path"]], [],
                         "A's valid handle reached the upstream while throttled")
        self.assertTrue([x for x in self.echo.requests if m_plain in x["path"]])

        refusals = FLOOD - LIMIT + 2
        after = self.metrics()
        self.assertEqual(after["handle_failures"] - before["handle_failures"], LIMIT)
        self.assertEqual(after["handle_throttled"] - before["handle_throttled"], refusals)
        self.assertEqual(after["brute_force"] - before["brute_force"], 1)

        lines = []

        def probe():
            lines[:] = [x for x in self.audit_lines() if x.get("error") == "too_many_failures"]
            return len(lines) >= refusals
        sgtest.wait_for(probe, timeout=10, what="%d too_many_failures audit lines" % refusals)
        self.assertEqual(len(lines), refusals)
        self.assertEqual([x["event"] for x in lines],
                         ["brute_force"] + ["rate_limited"] * (refusals - 1))
        first = lines[0]
        self.assertEqual(first["status"], 429)
        self.assertEqual(first["sandbox"], "sb-a")
        self.assertEqual(first["source"], "127.0.0.1")
        want = ("possible brute force: %d failed handles from sandbox sb-a (127.0.0.1) in "
                "%d s" % (LIMIT, WINDOW_S))
        self.assertEqual(first["detail"], want)
        self.assertTrue(all("detail" not in x for x in lines[1:]), lines[1:])
        denied = [x for x in self.audit_lines() if x.get("error") == "handle_invalid"]
        self.assertEqual(len(denied), LIMIT)

        log = self.sg.log()
        self.assertEqual(log.count(want), 1, R(log[-3000:]))
        for h in bad + [good_a]:
            self.assertNotIn(h.split(".")[2][:24], log, "handle text in the log")
        self.assertNotIn(h.split(".")[2][:24], json.dumps(self.audit_lines()))


class RecoverTest(ThrottleCase):

    def setUp(self):
        self.start(3, "10m")

    def reload(self, window):
        pol = json.loads(json.dumps(self.sg.policy))
        pol["limits"]["failed_handles_window"] = window
        with open(self.sg.policy_path, "w") as f:
            json.dump(pol, f)
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

    def test_short_window_recovers(self):
        good = self.valid("sb-a", "ca")
        for _ in range(3):
            r, _ = self.req("127.0.0.1", self.undecryptable())
            self.refused(r, 403, "handle_invalid")
        r, _ = self.req("127.0.0.1", good)
        self.throttled(r, 200)
        self.reload("2s")       # the same bucket, now a token back every 667 ms
        served = []

        def probe():
            r, m = self.req("127.0.0.1", good)
            if r.status == 429:
                self.throttled(r, 1)    # the reloaded window applies at once
                return None
            self.assertEqual(r.status, 200, R(r))
            served.append(m)
            return True
        sgtest.wait_for(probe, timeout=10, interval=0.2, what="sandbox A served again")
        self.arrived(served[0], SECRET_A)


if __name__ == "__main__":
    import unittest
    unittest.main()
