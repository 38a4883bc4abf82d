"""Response scrubbing: a real secret that comes back from the upstream is
replaced by the exact handle text before the client sees it: in a header, in a chunked
body written in 3-byte flushes (the secret split across writes), in a Content-Length
body (re-framed as chunked), in HEAD / 304 / 204 answers; everything else is intact.

The echo endpoints (sgtest.EchoUpstream) reflect the injected Authorization value:
/reflect-auth (X-Echo-Auth header + JSON), /reflect-cl, /reflect-split, /reflect-status/N.
"""
import hashlib

import sgtest
import test_handles as th

API = th.API
SECRET = th.S["bearer"]


class ScrubTest(th.HandleCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=th.make_policy(cls.echo.port, extra_creds={
            "anypath": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                        "hosts": ["%s:%d" % (API, cls.echo.port)]}}))

    def setUp(self):
        self.h = self.handle("bearer")
        self.auth = [("Authorization", "Bearer " + self.h)]

    def expect(self, n=1):
        return (b"auth<Bearer " + self.h.encode() + b">end") * n

    def clean(self, r):
        self.assert_no_secret(r.raw_head, SECRET, "the response head")
        self.assert_no_secret(r.body, SECRET, "the response body")

    def exact_body(self, r, want):
        self.assertEqual(r.status, 200, th.R(r))
        self.clean(r)
        self.assertTrue(r.body == want, "body differs: got %d bytes %s, want %d bytes %s"
                        % (len(r.body), th.R(r.body[:200]), len(want), th.R(want[:200])))

    def test_header_reflected(self):
        r, m = self.req(self.auth, target="/reflect-auth/m-{m}")
        rec = self.upstream_record(m)
        self.assertTrue(["Bearer " + SECRET] == self.header_of(rec, "Authorization"),
                        "the upstream did not get the secret")
        self.assertEqual(r.status, 200, th.R(r))
        self.clean(r)
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + self.h)

    def test_chunked_split_3_bytes(self):
        r, _ = self.req(self.auth, target="/reflect-split/m-{m}")
        self.exact_body(r, self.expect())
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + self.h)

    def test_chunked_split_various(self):
        """Steps 1, 2, 5, 7, 64 with the secret repeated 4 times: every split position."""
        for step in (1, 2, 5, 7, 64):
            r, _ = self.req(self.auth, target="/reflect-split/m-{m}?n=4&step=%d" % step)
            self.exact_body(r, self.expect(4))

    def test_content_length_reframed(self):
        r, _ = self.req(self.auth, target="/reflect-cl/m-{m}?n=2")
        self.exact_body(r, self.expect(2))
        self.assertEqual((r.header("Transfer-Encoding") or "").lower(), "chunked")
        self.assertIsNone(r.header("Content-Length"))

    def test_curl_split(self):
        """A real client: curl reads the split chunked body."""
        rc, out, err = sgtest.curl(self.sg, "--fail-with-body", "-H",
                                   "Authorization: Bearer " + self.h,
                                   "https://%s:%d/reflect-split/x?n=3" % (API, self.echo.port))
        self.assertEqual(rc, 0, th.R(err))
        self.assertTrue(out == self.expect(3), "curl got %s" % th.R(out[:300]))

    def _on_one_connection(self, first_method, first_target, want_status):
        authority = "%s:%d" % (API, self.echo.port)
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(sgtest.build_request(first_method, first_target, authority, self.auth))
        r = c.read_response(first_method)
        self.assertEqual(r.status, want_status, th.R(r))
        self.clean(r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + self.h)
        # the connection's framing is intact: the next answer is read correctly
        c.send(sgtest.build_request("GET", "/reflect-cl/next", authority, self.auth))
        r2 = c.read_response()
        self.exact_body(r2, self.expect())
        return r

    def test_head(self):
        self._on_one_connection("HEAD", "/reflect-cl/head", 200)

    def test_304(self):
        self._on_one_connection("GET", "/reflect-status/304", 304)

    def test_204(self):
        self._on_one_connection("GET", "/reflect-status/204", 204)

    def test_binary_bodies_intact(self):
        """Scrubbing active (a handle was swapped), no secret in the data: byte-exact."""
        auth = [("Authorization", "Bearer " + self.handle("anypath"))]
        for target, n in (("/bytes/300000", 300000), ("/chunked/100000", 100000)):
            r, _ = self.req(auth, target=target, timeout=30)
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), n, target)
            self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                             sgtest.sha256(sgtest.payload(n)), target)

    def test_secret_near_end_of_large_body(self):
        """Secret repeated 200 times in 5-byte flushes: all replaced, length exact."""
        r, _ = self.req(self.auth, target="/reflect-split/m-{m}?n=200&step=5", timeout=30)
        self.exact_body(r, self.expect(200))
