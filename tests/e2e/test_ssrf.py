"""SSRF: every spelling of a local address is refused with 403 address_denied and the
canary listening there is never contacted.

Egress default is "allow" and allow_private is ["127.0.0.3/32"] (the echo upstream), so
only the address guard stands between the client and the canaries on 127.0.0.1,
127.0.0.2 and [::1]. Only loopback spellings are used: nothing may leave the host even
if the guard is broken. Every name used is answered locally (upstream.resolve, the
hosts file's "localhost"); "localhost." is left out on purpose: it is not in the hosts
file, so a resolver would ask the system's name server, off this host.
"""
import json

import sgtest
from sgtest import (PKI, Canary, EchoUpstream, RawConn, Sealgate, assert_error, curl,
                    request_via_connect)

# CONNECT host spellings; {p} = canary port on 127.0.0.1, {p2} on 127.0.0.2, {p6} on ::1
CONNECT_CASES = {
    "dotted": "127.0.0.1:{p}",
    "short_two_parts": "127.1:{p}",
    "short_three_parts": "127.0.1:{p}",
    "hex_integer": "0x7f000001:{p}",
    "hex_short": "0x7f.1:{p}",
    "hex_dotted": "0x7f.0x0.0x0.0x1:{p}",
    "decimal_integer": "2130706433:{p}",
    "octal_dotted": "0177.0.0.1:{p}",
    "octal_integer": "017700000001:{p}",
    "zero_padded": "127.000.000.001:{p}",
    "ipv6_loopback": "[::1]:{p6}",
    "ipv6_loopback_long": "[0:0:0:0:0:0:0:1]:{p6}",
    "ipv6_unspecified": "[::]:{p6}",
    "ipv4_mapped_dotted": "[::ffff:127.0.0.1]:{p}",
    "ipv4_mapped_hex": "[::ffff:7f00:1]:{p}",
    "unspecified_v4": "0.0.0.0:{p}",
    "zero": "0:{p}",
    "localhost": "localhost:{p}",
    "localhost_upper": "LocalHost:{p}",
    "trailing_dot": "127.0.0.1.:{p}",
    "other_loopback": "127.0.0.2:{p2}",
    "resolve_entry_to_loopback": "internal.example.test:{p2}",
}

# absolute-form plain HTTP targets
ABSOLUTE_CASES = {
    "dotted": "127.0.0.1:{p}",
    "decimal_integer": "2130706433:{p}",
    "localhost": "localhost:{p}",
    "ipv6_loopback": "[::1]:{p6}",
    "resolve_entry_to_loopback": "internal.example.test:{p2}",
}


class SSRFTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = PKI.get()
        cls.up = EchoUpstream(pki=cls.pki)
        cls.addClassCleanup(cls.up.stop)
        policy = sgtest.base_policy(cls.pki, resolve={"internal.example.test": "127.0.0.2"})
        policy["egress"].update({"default": "allow", "allow_private": ["127.0.0.3/32"],
                                 "deny_hosts": [], "allow_hosts": [], "tunnel_hosts": []})
        cls.sg = Sealgate(cls, policy=policy)

    def setUp(self):
        self.canary = Canary(self)
        # checked at the end of every test, after the test's own assertions
        self.addCleanup(self._assert_canary_untouched)

    def _assert_canary_untouched(self):
        self.assertFalse(self.canary.contacted.is_set(),
                         "canary contacted: %r" % self.canary.hits)
        self.assertTrue(self.sg.alive())

    def _auth(self, spelling):
        c = self.canary
        return spelling.format(p=c.port, p2=c.port2, p6=c.port6)

    def _connect_case(self, spelling):
        auth = self._auth(spelling)
        stage, r = request_via_connect(
            self.sg, auth, b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % auth.encode(),
            check_hostname=False)
        assert_error(self, r, 403, "address_denied")

    def _absolute_case(self, spelling):
        auth = self._auth(spelling)
        with RawConn(self.sg) as c:
            c.send(b"GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n"
                   % (auth.encode(), auth.encode()))
            assert_error(self, c.read_response(), 403, "address_denied")

    # -------------------------------------------------------------- positive controls
    def test_control_allowed_private_address_works(self):
        auth = "127.0.0.3:%d" % self.up.port
        stage, r = request_via_connect(
            self.sg, auth, b"GET /control HTTP/1.1\r\nHost: %s\r\n\r\n" % auth.encode())
        self.assertEqual((stage, r.status), ("inner", 200), r)
        self.assertEqual(r.json()["path"], "/control")

    def test_control_allowed_name_works_with_curl(self):
        rc, out, err = curl(self.sg, "https://api.example.test:%d/control2" % self.up.port)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["path"], "/control2")

    def test_control_canary_detects_contact(self):
        # the canary itself works: a direct connection is seen (then reset for cleanup)
        import socket
        socket.create_connection(("127.0.0.1", self.canary.port), timeout=5).close()
        self.assertTrue(self.canary.contacted.wait(5))
        self.canary.contacted.clear()
        self.canary.hits.clear()


def _make(kind, name, spelling):
    def test(self):
        (self._connect_case if kind == "connect" else self._absolute_case)(spelling)
    test.__name__ = "test_%s_%s" % (kind, name)
    return test


for _n, _s in CONNECT_CASES.items():
    setattr(SSRFTest, "test_connect_%s" % _n, _make("connect", _n, _s))
for _n, _s in ABSOLUTE_CASES.items():
    setattr(SSRFTest, "test_absolute_%s" % _n, _make("absolute", _n, _s))
