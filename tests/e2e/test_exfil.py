"""Exfiltration: a handle sent toward a host outside its credential's scope, in
every form, is refused with 403 and the upstream never sees the request.

Forms: raw in Authorization, raw in another header, raw in the query, raw after a '-'
in a header value, percent-encoded (whole and prefix only, query and header), base64
(standard and url-safe, header and query), JSON \\u0073 escape, hex (header and query),
HTML entity, split across URL and header, raw in a request body, absolute-form plain
http. Toward the in-scope host a base64-encoded handle is refused too (handle_encoded).

Every refused request carries a random marker in its path; after the refusal a control
request on a fresh connection must arrive, and no record may hold the marker.
"""
import base64
import json
import urllib.parse

import sgtest
import test_handles as th

API, OTHER, PLAIN = th.API, th.OTHER, th.PLAIN


def pct_all(s):
    return "".join("%%%02X" % b for b in s.encode())


class ExfilTest(th.HandleCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.plain = sgtest.EchoUpstream(tls=False)
        cls.addClassCleanup(cls.plain.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=th.make_policy(cls.echo.port))

    def setUp(self):
        self.h = self.handle("bearer")

    def refused(self, headers=(), query="", host=OTHER, codes=("handle_encoded",),
                status=(403,), method="GET", body=b""):
        """Send toward host with a marker; assert status/code; the upstream never hit.
        Returns the error code seen."""
        r, m = self.req(headers, target="/x/m-{m}" + query, host=host, method=method,
                        body=body)
        code = r.header("X-Sealgate-Error")
        self.assertTrue(r.status in status and code in codes,
                        "want %s %s, got %s %s: %s" % (status, codes, r.status, code,
                                                      th.R(r.body[:300])))
        sgtest.assert_error(self, r, r.status, code)
        self.assert_never_arrived(m)
        return code

    # -- raw
    def test_raw_authorization(self):
        self.refused([("Authorization", "Bearer " + self.h)], codes=("host_out_of_scope",))
        self.assertIn("possible exfiltration", self.sg.log())

    def test_raw_other_header(self):
        self.refused([("X-Data", self.h)], codes=("host_out_of_scope",))

    def test_raw_query(self):
        self.refused(query="?q=" + self.h, codes=("host_out_of_scope",))

    def test_raw_after_dash_in_header(self):
        """'a-sgh1.…' is not a handle by the find rule; it must still not leave."""
        self.refused([("X-Data", "a-" + self.h)],
                     codes=("host_out_of_scope", "handle_encoded", "handle_malformed"),
                     status=(400, 403))

    # -- percent
    def test_percent_whole_query(self):
        self.refused(query="?q=" + pct_all(self.h))

    def test_percent_prefix_query(self):
        self.refused(query="?q=%73gh1%2E" + self.h[5:])

    def test_percent_prefix_header(self):
        self.refused([("X-Data", "%73gh1%2E" + self.h[5:])])

    def test_percent_double(self):
        self.refused(query="?q=%2573gh1%252E" + self.h[5:])

    # -- base64
    def test_base64_std_header(self):
        self.refused([("X-Data", base64.b64encode(self.h.encode()).decode())],
                     codes=("handle_encoded",))

    def test_base64_url_header(self):
        blob = json.dumps({"k": self.h, "pad": "\xff\xfe>>??"}).encode()
        enc = base64.urlsafe_b64encode(blob).decode()
        self.refused([("X-Data", enc)])

    def test_base64_std_query(self):
        enc = base64.b64encode(b"x=" + self.h.encode()).decode()
        self.refused(query="?q=" + enc)

    def test_base64_std_query_percent_encoded(self):
        enc = urllib.parse.quote(base64.b64encode(b"ab" + self.h.encode()).decode(), safe="")
        self.refused(query="?q=" + enc)

    def test_base64_url_query(self):
        enc = base64.urlsafe_b64encode(b"k" + self.h.encode()).rstrip(b"=").decode()
        self.refused(query="?q=" + enc)

    # -- escapes, hex
    def test_json_escape_header(self):
        self.refused([("X-Data", '{"k":"\\u0073gh1.' + self.h[5:] + '"}')])

    def test_json_escape_query(self):
        self.refused(query="?q=" + urllib.parse.quote('"\\u0073gh1.' + self.h[5:] + '"'))

    def test_hex_header(self):
        self.refused([("X-Data", self.h.encode().hex())])

    def test_hex_query(self):
        self.refused(query="?q=" + self.h.encode().hex().upper())

    def test_html_entity_header(self):
        self.refused([("X-Data", "&#115;gh1." + self.h[5:])])

    # -- split
    def test_split_url_and_header(self):
        """First half in the query (a raw, truncated handle), second half in a header."""
        half = len(self.h) // 2
        code = self.refused([("X-Rest", self.h[half:])], query="?a=" + self.h[:half],
                            codes=("handle_malformed", "handle_invalid",
                                   "host_out_of_scope", "handle_encoded"),
                            status=(400, 403))
        print("\n[exfil] split handle (query + header) refused with %s" % code)

    # -- body
    def test_raw_in_body(self):
        self.refused([("Content-Type", "application/json")], method="POST",
                     body=json.dumps({"k": self.h}).encode(),
                     codes=("host_out_of_scope", "handle_encoded", "handle_in_body"))

    # -- plain http
    def test_plain_http_out_of_scope(self):
        m = self.marker()
        authority = "%s:%d" % (PLAIN, self.plain.port)
        with sgtest.RawConn(self.sg) as c:
            c.send(sgtest.build_request("GET", "http://%s/x/m-%s" % (authority, m), authority,
                                        [("Authorization", "Bearer " + self.h)]))
            r = c.read_response()
        self.assert_refused(r, 403, "host_out_of_scope")
        # barrier on the plain upstream: a request without a handle arrives
        m2 = self.marker()
        with sgtest.RawConn(self.sg) as c:
            c.send(sgtest.build_request("GET", "http://%s/x/m-%s" % (authority, m2),
                                        authority))
            self.assertEqual(c.read_response().status, 200)
        sgtest.wait_for(lambda: [x for x in self.plain.requests if m2 in x["path"]],
                        what="plain control request")
        self.assertEqual([x for x in self.plain.requests if m in x["path"]], [])

    # -- in scope
    def test_in_scope_base64_refused(self):
        self.refused([("Authorization", "Bearer " + base64.b64encode(
            self.h.encode()).decode())], host=API)

    def test_in_scope_base64_next_to_raw(self):
        """A valid raw handle does not excuse an encoded copy in the same request."""
        self.refused([("Authorization", "Bearer " + self.h),
                      ("X-Copy", base64.b64encode(self.h.encode()).decode())], host=API)
