"""Abusive requests and upstreams on the plain proxy path: a request smuggled behind
Upgrade + Content-Length, a body handle over plain http, an endless run of 1xx answers,
a held body that stops arriving, a handle in a header name and in the CONNECT authority.
The upstream is raw and records every byte it receives: nothing unchecked reaches it, no
secret leaves, and sealgate answers instead of waiting or growing."""
import os
import socket
import threading
import unittest

import sgtest

SECRET = "sk-abuse-" + os.urandom(8).hex()
BODY_SECRET = "sk-abuse-body-" + os.urandom(8).hex()


class RecordingUpstream:
    """Plain TCP upstream on 127.0.0.3: records every byte it receives; answers each
    request head with `answer` (without reading a body first)."""

    def __init__(self, tc, answer=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"):
        self.sock = socket.socket()
        self.sock.bind((sgtest.UPSTREAM_ADDR, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.raw = b""
        self.lock = threading.Lock()
        self.contacted = threading.Event()
        self.answer = answer
        self.stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()
        tc.addCleanup(self.close)

    def close(self):
        self.stop.set()
        self.sock.close()

    def _loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.contacted.set()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        c.settimeout(10)
        with c:
            while not self.stop.is_set():
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                with self.lock:
                    self.raw += d
                buf += d
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    try:
                        c.sendall(self.answer)
                    except OSError:
                        return


def plain_policy(port, **cred):
    a = "plain.example.test:%d" % port
    c = {"secret": {"value": SECRET}, "inject": {"type": "bearer"}, "hosts": [a],
         "allow_plain_http": True, "methods": ["GET"], "paths": ["/v1/*"]}
    c.update(cred)
    return {"credentials": {"bear": c,
                            "bodyc": {"secret": {"value": BODY_SECRET},
                                      "inject": {"type": "body"}, "hosts": [a]}},
            "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"],
                                   "credentials": ["bear", "bodyc"]}}}


class AbuseTest(unittest.TestCase):

    def test_upgrade_with_body_is_refused(self):
        """Upgrade + Content-Length: sealgate must not forward a length whose body it then
        parses as a second request (an upstream that skips the body would see another
        request than the one sealgate checked)."""
        up = RecordingUpstream(self)
        sg = sgtest.Sealgate(self, overrides=plain_policy(up.port))
        h = sgtest.mint_handle(sg.policy_path, "sb-1", "bear")["handle"]
        a = "plain.example.test:%d" % up.port
        smuggled = ("GET http://%s/v1/ok HTTP/1.1\r\nHost: %s\r\nX-Pad: DELETE /admin HTTP/1.1"
                    "\r\nAuthorization: Bearer %s\r\n\r\n" % (a, a, h)).encode()
        first = ("GET http://%s/v1/first HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
                 "Upgrade: h2c\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                 % (a, a, h, len(smuggled))).encode()
        c = sgtest.RawConn(sg)
        self.addCleanup(c.close)
        c.send(first + smuggled)
        sgtest.assert_error(self, c.read_response(), 400, "bad_request")
        self.assertFalse(up.contacted.is_set(), "the upstream was contacted")

    def test_body_handle_over_plain_http_refused(self):
        """A body credential without allow_plain_http: its handle in the body of an http://
        request is refused like one in a header, and the secret never leaves."""
        up = RecordingUpstream(self)
        pol = plain_policy(up.port)
        sg = sgtest.Sealgate(self, overrides=pol)
        h = sgtest.mint_handle(sg.policy_path, "sb-1", "bodyc")["handle"]
        a = "plain.example.test:%d" % up.port
        body = ('{"k":"%s"}' % h).encode()
        c = sgtest.RawConn(sg)
        self.addCleanup(c.close)
        c.send(("POST http://%s/x HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n"
                % (a, a, len(body))).encode() + body)
        sgtest.assert_error(self, c.read_response("POST"), 403, "plain_http_denied")
        with up.lock:
            self.assertNotIn(BODY_SECRET.encode(), up.raw)
            self.assertNotIn(h.encode(), up.raw)

    def test_interim_flood_is_cut(self):
        """An upstream that sends 1xx answers for ever gets the request answered 502 after
        SG_MAX_INTERIM of them instead of filling sealgate's memory."""
        up = RecordingUpstream(self, answer=b"HTTP/1.1 100 Continue\r\n\r\n" * 64)
        sg = sgtest.Sealgate(self, overrides=plain_policy(up.port))
        a = "plain.example.test:%d" % up.port
        c = sgtest.RawConn(sg)
        self.addCleanup(c.close)
        c.send(("GET http://%s/v1/x HTTP/1.1\r\nHost: %s\r\n\r\n" % (a, a)).encode())
        sgtest.assert_error(self, c.read_response(), 502, "upstream_error")
        self.assertTrue(sg.alive())

    def test_stalled_held_body_times_out(self):
        """A body that must be held whole (hmac) but stops arriving: 408, not a connection
        held for ever."""
        up = RecordingUpstream(self)
        a = "plain.example.test:%d" % up.port
        pol = {"credentials": {"sig": {"secret": {"value": SECRET}, "allow_plain_http": True,
                                       "inject": {"type": "hmac"}, "hosts": [a]}},
               "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"], "credentials": ["sig"]}},
               "limits": {"upstream_timeout": "1s"}}
        sg = sgtest.Sealgate(self, overrides=pol)
        h = sgtest.mint_handle(sg.policy_path, "sb-1", "sig")["handle"]
        c = sgtest.RawConn(sg, timeout=15)
        self.addCleanup(c.close)
        c.send(("POST http://%s/x HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"
                "Content-Length: 1000\r\n\r\nabc" % (a, a, h)).encode())
        sgtest.assert_error(self, c.read_response("POST", timeout=10), 408, "request_timeout")

    def test_handle_in_header_name_refused(self):
        up = RecordingUpstream(self)
        sg = sgtest.Sealgate(self, overrides=plain_policy(up.port))
        h = sgtest.mint_handle(sg.policy_path, "sb-1", "bear")["handle"]
        a = "other.example.test:%d" % up.port
        c = sgtest.RawConn(sg)
        self.addCleanup(c.close)
        c.send(("GET http://%s/x HTTP/1.1\r\nHost: %s\r\n%s: 1\r\n\r\n" % (a, a, h)).encode())
        sgtest.assert_error(self, c.read_response(), 403, "handle_in_name")
        self.assertFalse(up.contacted.is_set())

    def test_handle_in_connect_authority_refused(self):
        """A handle must not leave as a DNS name or an SNI."""
        sg = sgtest.Sealgate(self, overrides=plain_policy(1))
        h = sgtest.mint_handle(sg.policy_path, "sb-1", "bear")["handle"]
        c = sgtest.RawConn(sg)
        self.addCleanup(c.close)
        name = h.replace("_", "-")[:60].lower() + ".example.test"
        r = c.connect("%s:443" % name)
        sgtest.assert_error(self, r, 403, "handle_in_authority")


if __name__ == "__main__":
    unittest.main()
