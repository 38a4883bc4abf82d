"""The proxy's main behaviour, end to end with curl and python clients.

Intercepted CONNECT (leaf from the sealgate CA), streamed bodies both ways, keep-alive,
HEAD/204/304 framing, Expect: 100-continue, pipelining, absolute-form plain HTTP,
host/SNI/authority agreement (421), tunnel and deny modes, egress default deny, upstream
verification (502 upstream_tls), upstream TLS timeout (504), WebSocket, and 200
concurrent requests while 50 slowloris clients hold connections.
"""
import hashlib
import json
import os
import selectors
import socket
import ssl
import tempfile
import threading
import time

import sgtest
from sgtest import (PKI, EchoUpstream, RawConn, Sealgate, SilentUpstream, assert_error,
                    curl, https_connection, open_intercepted, payload,
                    request_via_connect, sha256)

MiB = 1024 * 1024


def hdrs(j):
    """Lower-cased header dict of an echo JSON answer."""
    return {k.lower(): v for k, v in j["headers"]}


class _ClassUpstreams:
    @classmethod
    def start_upstreams(cls):
        cls.pki = PKI.get()
        cls.up = EchoUpstream(pki=cls.pki)
        cls.addClassCleanup(cls.up.stop)
        cls.plain = EchoUpstream(pki=cls.pki, tls=False)
        cls.addClassCleanup(cls.plain.stop)
        cls.api = "api.example.test:%d" % cls.up.port

    def since(self, n):
        return self.up.requests[n:]


class InterceptTest(_ClassUpstreams, sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_upstreams()
        cls.sg = Sealgate(cls, overrides={"egress": {
            "tunnel_hosts": ["tunnel.example.test"],
            "deny_hosts": ["denied.example.test"]}})

    def url(self, path, host="api.example.test"):
        return "https://%s:%d%s" % (host, self.up.port, path)

    def get(self, c, path, host=None, extra=b""):
        c.send(b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
               % (path.encode(), (host or self.api).encode(), extra))
        return c.read_response("GET")

    # ---------------------------------------------------------------- basics
    def test_get_small_curl(self):
        rc, out, err = curl(self.sg, self.url("/hello?a=1&b=2"), "-H", "X-Test: yes")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual((j["method"], j["path"]), ("GET", "/hello?a=1&b=2"))
        self.assertEqual(hdrs(j)["x-test"], "yes")
        self.assertEqual(hdrs(j)["host"], self.api)
        self.assertEqual(j["sni"], "api.example.test", "upstream TLS must send SNI")

    def test_issuer_is_sealgate_ca(self):
        conn = https_connection(self.sg, "api.example.test", self.up.port)
        self.addCleanup(conn.close)
        conn.request("GET", "/issuer")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        resp.read()
        cert = conn.sock.getpeercert()
        ca = sgtest.decode_cert(self.sg.ca_cert)
        self.assertEqual(cert["issuer"], ca["subject"])
        self.assertNotIn(("commonName", self.pki.ca_subject_cn),
                         [x[0] for x in cert["issuer"]])
        self.assertIn(("DNS", "api.example.test"), cert.get("subjectAltName", ()))
        # a client that trusts only the upstream CA must not accept what it sees
        c = RawConn(self.sg)
        self.addCleanup(c.close)
        self.assertEqual(c.connect(self.api).status, 200)
        with self.assertRaises(ssl.SSLCertVerificationError):
            c.tls("api.example.test", cafile=self.pki.ca_cert)

    def test_leaf_minted_for_each_name(self):
        # SAN = the name the client asked for (names, a wildcard-covered name, an IP)
        for host, san in (("other.example.test", ("DNS", "other.example.test")),
                          ("deep.example.test", ("DNS", "deep.example.test")),
                          ("127.0.0.3", ("IP Address", "127.0.0.3"))):
            c = open_intercepted(self.sg, host, self.up.port)
            with c:
                cert = c.sock.getpeercert()
                self.assertIn(san, cert.get("subjectAltName", ()), host)
                self.assertEqual(cert["issuer"], sgtest.decode_cert(self.sg.ca_cert)["subject"])
                auth = ("%s:%d" % (host, self.up.port)).encode()
                c.send(b"GET /leaf HTTP/1.1\r\nHost: %s\r\n\r\n" % auth)
                r = c.read_response()
                self.assertEqual((r.status, r.json()["path"]), (200, "/leaf"), host)

    def test_download_back_pressure(self):
        # A client that stops reading: sealgate must stop reading the upstream rather than
        # buffer the body. 64 MiB exceeds every socket buffer on the path plus sealgate's
        # watermark, so the upstream cannot finish writing unless sealgate buffers it all.
        n = 64 * MiB
        path = "/bytes/%d" % n
        c = open_intercepted(self.sg, "api.example.test", self.up.port, timeout=60)
        self.addCleanup(c.close)
        rss0 = self.sg.rss_kib()
        c.send(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), self.api.encode()))
        status, _, headers, _ = c.read_head()
        self.assertEqual(status, 200)
        self.assertFalse(self.up.wait_written(path, 3.0),
                         "upstream wrote 64 MiB to a client that reads nothing: no back-pressure")
        grew = self.sg.rss_kib() - rss0
        self.assertLess(grew, 32 * 1024, "sealgate grew by %d KiB while the client stalled" % grew)
        h = hashlib.sha256(c.buf)
        got = len(c.buf)
        c.buf = b""
        deadline = time.monotonic() + 60
        while got < n and c._fill(deadline):
            h.update(c.buf)
            got += len(c.buf)
            c.buf = b""
        self.assertEqual((got, h.hexdigest()), (n, sha256(payload(n))))

    def test_post_small_http_client(self):
        conn = https_connection(self.sg, "api.example.test", self.up.port)
        self.addCleanup(conn.close)
        body = b'{"k": "v", "n": 1}'
        conn.request("POST", "/post", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        j = json.loads(resp.read())
        self.assertEqual((j["method"], j["body_len"], j["body_sha256"], j["body"]),
                         ("POST", len(body), sha256(body), body.decode()))
        self.assertEqual(hdrs(j)["content-type"], "application/json")

    def test_upload_10mib_streamed(self):
        data = payload(10 * MiB, seed=3)
        d = tempfile.mkdtemp(prefix="sgtest-up-")
        self.addCleanup(lambda: (os.unlink(os.path.join(d, "f")), os.rmdir(d)))
        with open(os.path.join(d, "f"), "wb") as f:
            f.write(data)
        rc, out, err = curl(self.sg, self.url("/upload"), "--data-binary",
                            "@" + os.path.join(d, "f"), "-H",
                            "Content-Type: application/octet-stream", timeout=60)
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual((j["body_len"], j["body_sha256"]), (len(data), sha256(data)))

    def test_download_10mib_streamed(self):
        n = 10 * MiB
        rc, out, err = curl(self.sg, self.url("/bytes/%d" % n), timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out), n)
        self.assertEqual(sha256(out), sha256(payload(n)))

    def test_chunked_download(self):
        n = 3 * MiB + 17
        rc, out, err = curl(self.sg, self.url("/chunked/%d" % n), timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256(out), sha256(payload(n)))

    def test_chunked_upload_curl(self):
        data = payload(2 * MiB + 5, seed=4)
        d = tempfile.mkdtemp(prefix="sgtest-up-")
        self.addCleanup(lambda: (os.unlink(os.path.join(d, "f")), os.rmdir(d)))
        with open(os.path.join(d, "f"), "wb") as f:
            f.write(data)
        rc, out, err = curl(self.sg, self.url("/chunked-up"), "-H",
                            "Transfer-Encoding: chunked", "--data-binary",
                            "@" + os.path.join(d, "f"), timeout=60)
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual((j["body_len"], j["body_sha256"]), (len(data), sha256(data)))

    def test_chunked_upload_raw_with_extension_and_trailer(self):
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        c.send(b"POST /raw-chunked HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
               % self.api.encode())
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual((j["body_len"], j["body"]), (11, "hello world"))

    def test_status_and_auth_pass_through(self):
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        r = self.get(c, "/status/404")
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header("X-Sealgate-Error"))
        self.assertEqual(r.json()["path"], "/status/404")
        r = self.get(c, "/reflect-auth", extra=b"Authorization: Bearer plain-not-a-handle\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer plain-not-a-handle")

    # ---------------------------------------------------------------- connection reuse
    def test_keepalive_reuse(self):
        before = len(self.up.requests)
        conn = https_connection(self.sg, "api.example.test", self.up.port)
        self.addCleanup(conn.close)
        sock = None
        for i in range(5):
            conn.request("GET", "/ka/%d" % i)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(json.loads(resp.read())["path"], "/ka/%d" % i)
            if sock is None:
                sock = conn.sock
            self.assertIs(conn.sock, sock, "client connection was not kept alive")
        got = [r for r in self.since(before) if r["path"].startswith("/ka/")]
        self.assertEqual([r["path"] for r in got], ["/ka/%d" % i for i in range(5)])
        self.assertEqual(len({r["conn_id"] for r in got}), 1,
                         "upstream connection not reused across keep-alive requests")

    def test_head_204_304_framing(self):
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        a = self.api.encode()
        c.send(b"HEAD /bytes/5000 HTTP/1.1\r\nHost: %s\r\n\r\n"
               b"GET /status/204 HTTP/1.1\r\nHost: %s\r\n\r\n"
               b"GET /status/304 HTTP/1.1\r\nHost: %s\r\n\r\n"
               b"HEAD /echo-head HTTP/1.1\r\nHost: %s\r\n\r\n"
               b"GET /after HTTP/1.1\r\nHost: %s\r\n\r\n" % (a, a, a, a, a))
        r = c.read_response("HEAD")
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, "5000", b""))
        r = c.read_response("GET")
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertEqual(r.header("X-Echo-Status"), "204")
        r = c.read_response("GET")
        self.assertEqual((r.status, r.body), (304, b""))
        r = c.read_response("HEAD")
        self.assertEqual(r.status, 200)
        self.assertGreater(int(r.header("Content-Length")), 0)
        r = c.read_response("GET")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["path"], "/after")
        self.assertEqual(c.buf, b"", "bytes after the last response: framing broken")

    def test_expect_100_continue(self):
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        c.send(b"POST /expect HTTP/1.1\r\nHost: %s\r\nContent-Length: 11\r\n"
               b"Expect: 100-continue\r\n\r\n" % self.api.encode())
        r = c.read_response("POST", timeout=5, skip_interim=False)
        self.assertEqual(r.status, 100, "no 100 Continue before the body was sent")
        c.send(b"hello world")
        r = c.read_response("POST")
        self.assertEqual(r.status, 200)
        j = r.json()
        self.assertEqual((j["path"], j["body_len"], j["body"]), ("/expect", 11, "hello world"))

    def test_pipelined_in_order(self):
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        a = self.api.encode()
        c.send(b"GET /pipe/1 HTTP/1.1\r\nHost: %s\r\n\r\n"
               b"GET /bytes/300000 HTTP/1.1\r\nHost: %s\r\n\r\n"
               b"POST /pipe/3 HTTP/1.1\r\nHost: %s\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /chunked/70000 HTTP/1.1\r\nHost: %s\r\n\r\n"
               b"GET /pipe/5 HTTP/1.1\r\nHost: %s\r\n\r\n" % (a, a, a, a, a))
        rs = [c.read_response() for _ in range(5)]
        self.assertEqual([r.status for r in rs], [200] * 5)
        self.assertEqual(rs[0].json()["path"], "/pipe/1")
        self.assertEqual(sha256(rs[1].body), sha256(payload(300000)))
        self.assertEqual((rs[2].json()["path"], rs[2].json()["body"]), ("/pipe/3", "abc"))
        self.assertEqual(sha256(rs[3].body), sha256(payload(70000)))
        self.assertEqual(rs[4].json()["path"], "/pipe/5")

    # ---------------------------------------------------------------- absolute-form
    def test_absolute_form_plain_http(self):
        c = RawConn(self.sg)
        self.addCleanup(c.close)
        auth = ("plain.example.test:%d" % self.plain.port).encode()
        c.send(b"GET http://%s/abs/path?q=1 HTTP/1.1\r\nHost: %s\r\n"
               b"Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
               b"Proxy-Connection: keep-alive\r\nX-Hop: must-not-arrive\r\nTE: trailers\r\n"
               b"Upgrade: h2c\r\nX-Keep: yes\r\n\r\n" % (auth, auth))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["path"], "/abs/path?q=1", "not forwarded in origin-form")
        h = hdrs(j)
        self.assertEqual(h.get("x-keep"), "yes")
        self.assertEqual(h.get("host"), auth.decode())
        for hop in ("keep-alive", "proxy-connection", "x-hop", "te", "upgrade"):
            self.assertNotIn(hop, h, "hop-by-hop header %s forwarded" % hop)
        # the client connection stays usable (keep-alive in absolute-form too)
        c.send(b"POST http://%s/abs2 HTTP/1.1\r\nHost: %s\r\nContent-Length: 2\r\n\r\nok"
               % (auth, auth))
        r = c.read_response()
        self.assertEqual((r.status, r.json()["path"], r.json()["body"]), (200, "/abs2", "ok"))

    def test_absolute_form_curl(self):
        rc, out, err = curl(self.sg, "http://plain.example.test:%d/via-curl" % self.plain.port)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["path"], "/via-curl")

    # ---------------------------------------------------------------- 421
    def _assert_not_forwarded(self, before, marker):
        self.assertFalse([r for r in self.since(before) if marker in r["path"]],
                         "mismatched request reached the upstream")

    def test_421_sni_differs_from_connect(self):
        # Repeated: the answer must survive a client that sends its request right after
        # the handshake (as curl does) every time, not most of the time.
        before = len(self.up.requests)
        outcomes = []
        for i in range(40):
            c = RawConn(self.sg)
            try:
                self.assertEqual(c.connect(self.api).status, 200)
                # chain verified against the sealgate CA; the name is what is under test
                c.tls("other.example.test", check_hostname=False)
                try:
                    r = self.get(c, "/mismatch-sni")
                    outcomes.append(r.status)
                except ConnectionError:
                    outcomes.append("closed without an answer")
            finally:
                c.close()
        bad = [o for o in outcomes if o != 421]
        self.assertEqual(bad, [], "%d of %d attempts not answered 421" % (len(bad), len(outcomes)))
        assert_error(self, r, 421, "host_mismatch")
        self._assert_not_forwarded(before, "mismatch-sni")

    def test_421_host_differs_from_connect(self):
        before = len(self.up.requests)
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        r = self.get(c, "/mismatch-host", host="other.example.test:%d" % self.up.port)
        assert_error(self, r, 421, "host_mismatch")
        self._assert_not_forwarded(before, "mismatch-host")

    def test_421_second_request_changes_host(self):
        before = len(self.up.requests)
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        self.assertEqual(self.get(c, "/first-ok").status, 200)
        try:
            r = self.get(c, "/mismatch-second", host="other.example.test:%d" % self.up.port)
        except ConnectionError as e:
            self.fail("connection closed without the 421 answer (%s)" % e)
        assert_error(self, r, 421, "host_mismatch")
        self._assert_not_forwarded(before, "mismatch-second")

    def test_421_absolute_uri_differs_from_host(self):
        before = len(self.plain.requests)
        c = RawConn(self.sg)
        self.addCleanup(c.close)
        c.send(b"GET http://plain.example.test:%d/mismatch-abs HTTP/1.1\r\n"
               b"Host: other.example.test:%d\r\n\r\n" % (self.plain.port, self.plain.port))
        assert_error(self, c.read_response(), 421, "host_mismatch")
        self.assertFalse([r for r in self.plain.requests[before:]
                          if "mismatch-abs" in r["path"]])

    # ---------------------------------------------------------------- tunnel / deny
    def test_tunnel_mode_client_sees_upstream_cert(self):
        c = RawConn(self.sg)
        self.addCleanup(c.close)
        self.assertEqual(c.connect("tunnel.example.test:%d" % self.up.port).status, 200)
        c.tls("tunnel.example.test", cafile=self.pki.ca_cert)   # only the upstream CA
        cert = c.sock.getpeercert()
        self.assertEqual(dict(x[0] for x in cert["issuer"])["commonName"],
                         self.pki.ca_subject_cn)
        self.assertEqual(cert["subjectAltName"], (("DNS", "tunnel.example.test"),))
        c.send(b"GET /tunneled HTTP/1.1\r\nHost: tunnel.example.test:%d\r\n\r\n" % self.up.port)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        j = r.json()
        self.assertEqual((j["path"], j["sni"]), ("/tunneled", "tunnel.example.test"))

    def test_deny_hosts_403_on_connect(self):
        conns = self.up.connections
        with RawConn(self.sg) as c:
            r = c.connect("denied.example.test:%d" % self.up.port)
            assert_error(self, r, 403, "egress_denied")
        self.assertEqual(self.up.connections, conns, "denied host was dialed")

    def test_deny_hosts_absolute_form(self):
        with RawConn(self.sg) as c:
            c.send(b"GET http://denied.example.test:%d/x HTTP/1.1\r\n"
                   b"Host: denied.example.test:%d\r\n\r\n" % (self.plain.port, self.plain.port))
            assert_error(self, c.read_response(), 403, "egress_denied")

    # ---------------------------------------------------------------- upstream TLS
    def test_untrusted_upstream_502(self):
        bad = EchoUpstream(self, pki=self.pki, cert="untrusted")
        auth = "untrusted.example.test:%d" % bad.port
        stage, r = request_via_connect(
            self.sg, auth, b"GET /secret-path HTTP/1.1\r\nHost: %s\r\n\r\n" % auth.encode())
        j = assert_error(self, r, 502, "upstream_tls")
        self.assertEqual(bad.requests, [], "request sent over an unverified connection")
        self.assertGreater(len(j["message"]), 10)

    def test_upstream_name_mismatch_502(self):
        # a certificate from the trusted CA, but for another name
        bad = EchoUpstream(self, pki=self.pki, cert="other")
        auth = "api.example.test:%d" % bad.port
        stage, r = request_via_connect(
            self.sg, auth, b"GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % auth.encode())
        assert_error(self, r, 502, "upstream_tls")
        self.assertEqual(bad.requests, [])

    def test_upstream_refused_502(self):
        s = socket.socket()
        s.bind(("127.0.0.3", 0))      # bound, not listening: connect is refused
        port = s.getsockname()[1]
        self.addCleanup(s.close)
        auth = "api.example.test:%d" % port
        stage, r = request_via_connect(
            self.sg, auth, b"GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % auth.encode())
        assert_error(self, r, 502, "upstream_error")

    # ---------------------------------------------------------------- websocket
    def test_websocket_echo(self):
        c = open_intercepted(self.sg, "api.example.test", self.up.port)
        self.addCleanup(c.close)
        c.send(b"GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % self.api.encode())
        r = c.read_response()
        self.assertEqual(r.status, 101, r)
        self.assertEqual(r.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        rd = c.reader()
        for msg in (b"hello", b"x" * 300, "\u00e9t\u00e9".encode() * 30000):
            c.send(sgtest.ws_frame(0x1, msg))
            self.assertEqual(sgtest.ws_read_message(rd), (0x1, msg))
        c.send(sgtest.ws_frame(0x8, b"\x03\xe8"))
        self.assertEqual(sgtest.ws_read_frame(rd), (0x8, b"\x03\xe8"))


class EgressDefaultDenyTest(_ClassUpstreams, sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_upstreams()
        cls.sg = Sealgate(cls, overrides={"egress": {"default": "deny",
                                                     "allow_hosts": ["api.example.test"]}})

    def test_not_allowed_host_403(self):
        conns = self.up.connections
        with RawConn(self.sg) as c:
            assert_error(self, c.connect("other.example.test:%d" % self.up.port),
                         403, "egress_denied")
        self.assertEqual(self.up.connections, conns)

    def test_not_allowed_host_absolute_form_403(self):
        with RawConn(self.sg) as c:
            c.send(b"GET http://plain.example.test:%d/ HTTP/1.1\r\n"
                   b"Host: plain.example.test:%d\r\n\r\n" % (self.plain.port, self.plain.port))
            assert_error(self, c.read_response(), 403, "egress_denied")
        self.assertEqual(self.plain.requests, [])

    def test_allowed_host_works(self):
        rc, out, err = curl(self.sg, "https://api.example.test:%d/allowed" % self.up.port)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["path"], "/allowed")


class UpstreamTimeoutTest(sgtest.TestCase):
    def test_tls_black_hole_504(self):
        hole = SilentUpstream(self)
        sg = Sealgate(self, overrides={"limits": {"tls_timeout": "1s"}})
        auth = "blackhole.example.test:%d" % hole.port
        t0 = time.monotonic()
        stage, r = request_via_connect(
            sg, auth, b"GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % auth.encode(), timeout=15)
        elapsed = time.monotonic() - t0
        assert_error(self, r, 504, "upstream_timeout")
        self.assertLess(elapsed, 10.0)
        self.assertTrue(hole.accepted.is_set(), "sealgate never dialed the upstream")


class ConcurrencyTest(_ClassUpstreams, sgtest.TestCase):
    N_OK = 200
    N_SLOW = 50
    HEADER_TIMEOUT = 2.0

    @classmethod
    def setUpClass(cls):
        cls.start_upstreams()
        cls.sg = Sealgate(cls, overrides={"limits": {"header_timeout": "2s"}})

    def _slowloris(self, socks, done, stop):
        """Send one head byte per socket per tick until each is closed (EOF, reset or a
        400); done[i] = seconds after start."""
        head = [(b"CONNECT api.example.test:%d HTTP/1.1\r\nHost: api.example.test:%d\r\n"
                 b"X-Pad: " % (self.up.port, self.up.port)) + b"a" * 4000,
                (b"GET http://plain.example.test:%d/slow HTTP/1.1\r\n"
                 b"Host: plain.example.test:%d\r\nX-Pad: " % (self.plain.port, self.plain.port))
                + b"a" * 4000]
        sel = selectors.DefaultSelector()
        pos = {}
        t0 = time.monotonic()
        for i, s in enumerate(socks):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            pos[i] = 0
        deadline = t0 + self.HEADER_TIMEOUT + 13
        while len(done) < len(socks) and time.monotonic() < deadline and not stop.is_set():
            for key, _ in sel.select(timeout=0.05):   # the tick paces the trickle
                i = key.data
                try:
                    d = key.fileobj.recv(4096)
                except (ConnectionError, BlockingIOError) as e:
                    if isinstance(e, BlockingIOError):
                        continue
                    d = b""
                if not d or d.startswith(b"HTTP/1.1 400") or d.startswith(b"HTTP/1.0 400"):
                    done[i] = time.monotonic() - t0
                    sel.unregister(key.fileobj)
            for i, s in enumerate(socks):
                if i in done:
                    continue
                h = head[i % 2]
                try:
                    s.send(h[pos[i] % len(h):pos[i] % len(h) + 1])
                    pos[i] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    done[i] = time.monotonic() - t0
                    sel.unregister(s)
        sel.close()

    def test_200_concurrent_while_50_slowloris(self):
        slow = []
        for _ in range(self.N_SLOW):
            s = socket.create_connection(self.sg.proxy, timeout=10)
            self.addCleanup(s.close)
            slow.append(s)
        done = {}
        stop = threading.Event()
        self.addCleanup(stop.set)
        slow_t = threading.Thread(target=self._slowloris, args=(slow, done, stop))
        slow_t.start()
        self.addCleanup(slow_t.join, 30)

        results = [None] * self.N_OK
        barrier = threading.Barrier(self.N_OK, timeout=60)

        def one(i):
            c = None
            try:
                c = RawConn(self.sg, timeout=30)
                r = c.connect(self.api)
                if r.status != 200:
                    raise AssertionError("CONNECT %s" % r.status)
                c.tls("api.example.test")
            except Exception as e:    # still meet the others at the barrier
                results[i] = "connect: %r" % e
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            if results[i] is not None:
                return
            try:
                c.send(b"GET /conc/%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (i, self.api.encode()))
                r = c.read_response()
                results[i] = (r.status, r.json()["path"])
            except Exception as e:
                results[i] = "request: %r" % e
            finally:
                c.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(self.N_OK)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertFalse(any(t.is_alive() for t in threads), "client threads hung")
        bad = [(i, r) for i, r in enumerate(results) if r != (200, "/conc/%d" % i)]
        self.assertEqual(bad, [], "%d of %d concurrent requests failed" % (len(bad), self.N_OK))
        slow_t.join(self.HEADER_TIMEOUT + 20)
        self.assertFalse(slow_t.is_alive())
        self.assertEqual(len(done), self.N_SLOW,
                         "%d slowloris connections still open after header_timeout + 13 s"
                         % (self.N_SLOW - len(done)))
        early = sorted(t for t in done.values() if t < self.HEADER_TIMEOUT * 0.75)
        self.assertEqual(early, [], "slowloris closed before header_timeout")
        self.assertTrue(self.sg.alive())
