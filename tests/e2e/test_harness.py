"""The harness itself (no sealgate): test PKI, echo upstream, canary, raw reader.

If these fail, every other e2e module's verdict is meaningless, so they run first
(alphabetically they do not, but they are quick and self-contained).
"""
import json
import socket
import subprocess

import sgtest
from sgtest import PKI, EchoUpstream, Canary, payload, sha256


def direct_curl(pki, up, path, *args, name="api.example.test", cafile=None):
    cmd = ["curl", "-sS", "-m", "20", "--noproxy", "*", "--cacert", cafile or pki.ca_cert,
           "--resolve", "%s:%d:%s" % (name, up.port, up.host)] + list(args) + [
           "https://%s:%d%s" % (name, up.port, path)]
    r = subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


class HarnessTest(sgtest.TestCase):
    def setUp(self):
        self.pki = PKI.get()

    def test_pki_leaf_chains_to_upstream_ca_only(self):
        for leaf in ("api", "other", "tunnel", "wildcard", "ip", "multi"):
            r = subprocess.run(["openssl", "verify", "-CAfile", self.pki.ca_cert,
                                self.pki.leaf(leaf)[0]], capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 0, (leaf, r.stdout, r.stderr))
        r = subprocess.run(["openssl", "verify", "-CAfile", self.pki.ca_cert,
                            self.pki.leaf("untrusted")[0]], capture_output=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        r = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", self.pki.ca_cert],
                           capture_output=True, timeout=10, text=True)
        self.assertIn("prime256v1", r.stdout)

    def test_echo_get_post_sni_leaf(self):
        up = EchoUpstream(self)
        rc, out, err = direct_curl(self.pki, up, "/hello?x=1", "-H", "X-T: 1")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual((j["method"], j["path"]), ("GET", "/hello?x=1"))
        self.assertIn(["X-T", "1"], j["headers"])
        self.assertEqual(j["sni"], "api.example.test")
        rc, out, err = direct_curl(self.pki, up, "/p", "--data-binary", "abc")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual((j["method"], j["body_len"], j["body_sha256"], j["body"]),
                         ("POST", 3, sha256(b"abc"), "abc"))
        self.assertEqual(len(up.wait_requests(2)), 2)
        # the per-name leaf is served for tunnel.example.test (and only that name)
        ctx = sgtest.client_context(self.pki.ca_cert)
        with socket.create_connection((up.host, up.port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="tunnel.example.test") as t:
                cert = t.getpeercert()
        self.assertEqual(cert["subjectAltName"], (("DNS", "tunnel.example.test"),))
        issuer = dict(x[0] for x in cert["issuer"])
        self.assertEqual(issuer["commonName"], self.pki.ca_subject_cn)

    def test_echo_bytes_chunked_head_status_auth(self):
        up = EchoUpstream(self)
        rc, out, err = direct_curl(self.pki, up, "/bytes/1000000")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sha256(out), sha256(payload(1000000)))
        rc, out, err = direct_curl(self.pki, up, "/chunked/300000", "-D", "-")
        self.assertEqual(rc, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertIn(b"transfer-encoding: chunked", head.lower())
        self.assertEqual(sha256(body), sha256(payload(300000)))
        rc, out, err = direct_curl(self.pki, up, "/bytes/5000", "-I")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"content-length: 5000", out.lower())
        rc, out, err = direct_curl(self.pki, up, "/status/204", "-w", "%{http_code}")
        self.assertEqual((rc, out), (0, b"204"), err)
        rc, out, err = direct_curl(self.pki, up, "/reflect-auth", "-D", "-",
                                   "-H", "Authorization: Bearer not-a-secret")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"X-Echo-Auth: Bearer not-a-secret", out)

    def test_echo_chunked_upload_and_ip_leaf(self):
        up = EchoUpstream(self)
        data = payload(200000, seed=7)
        r = subprocess.run(["curl", "-sS", "-m", "20", "--noproxy", "*", "--cacert",
                            self.pki.ca_cert, "-H", "Transfer-Encoding: chunked",
                            "--data-binary", "@-", "https://%s:%d/up" % (up.host, up.port)],
                           input=data, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual((j["body_len"], j["body_sha256"]), (len(data), sha256(data)))
        self.assertIn("chunked", dict((k.lower(), v) for k, v in j["headers"])
                      ["transfer-encoding"])

    def test_echo_websocket(self):
        up = EchoUpstream(self)
        ctx = sgtest.client_context(self.pki.ca_cert)
        with socket.create_connection((up.host, up.port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="api.example.test") as t:
                t.sendall(b"GET /ws HTTP/1.1\r\nHost: api.example.test\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n")
                f = t.makefile("rb")
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    self.assertTrue(line)
                    head += line
                self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
                self.assertIn(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head)
                t.sendall(sgtest.ws_frame(0x1, b"hello ws"))
                self.assertEqual(sgtest.ws_read_frame(f), (0x1, b"hello ws"))

    def test_canary_records_contact(self):
        c = Canary(self)
        self.assertFalse(c.contacted.is_set())
        socket.create_connection(("::1", c.port6), timeout=5).close()
        self.assertTrue(c.contacted.wait(5))
        c2 = Canary(self)
        socket.create_connection(("127.0.0.2", c2.port2), timeout=5).close()
        self.assertTrue(c2.contacted.wait(5))
        self.assertEqual(c2.hits[0][0], "127.0.0.2")

    def test_parse_responses_pipelined(self):
        data = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
                b"HTTP/1.1 204 No Content\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
        rs = sgtest.parse_responses(data, ["GET", "HEAD", "GET", "GET"])
        self.assertEqual([r.status for r in rs], [200, 200, 204, 200])
        self.assertEqual([r.body for r in rs], [b"hi", b"", b"", b"abc"])
