"""echo_ok_in_body: a handle quoted in a request body (an agent's chat history sent to
an LLM) where its credential does not inject.

Without the key (the "bearer" credential) such a quote is refused, 403 handle_in_body,
and nothing reaches the upstream. With it (the "echo" credential) the body is held, the
quote must open under the keyring and name a credential with the key whose hosts cover
the request; it is then relayed byte for byte as text (its sandbox, expiry and
revocation do not matter: it is not used), while a handle in the head is swapped for
the secret. Encoded forms of a handle in the body stay refused.
"""
import base64
import http.client
import json
import os

import sgtest
import test_handles as th

API = th.API
ECHO_SECRET = "sk-echo-" + os.urandom(12).hex()


def _creds(port):
    return {"echo": {"secret": {"value": ECHO_SECRET}, "inject": {"type": "bearer"},
                     "hosts": ["%s:%d" % (API, port)], "echo_ok_in_body": True}}


class EchoOkTest(th.HandleCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        pol = th.make_policy(cls.echo.port, extra_creds=_creds(cls.echo.port),
                             sandboxes={"sb-2": {"addresses": ["127.0.0.2/32"],
                                                 "credentials": ["bearer", "echo"]}})
        pol["revocations"] = {"file": "revocations.json"}
        cls.sg = sgtest.Sealgate(cls, overrides=pol)

    def admin_revoke(self, hid):
        with open(os.path.join(self.sg.dir, "keys", "admin.token")) as f:
            token = f.read().strip()
        c = http.client.HTTPConnection(*self.sg.admin, timeout=10)
        try:
            c.request("POST", "/v1/revoke", body=json.dumps({"handle_id": hid}),
                      headers={"Authorization": "Bearer " + token,
                               "Content-Type": "application/json"})
            resp = c.getresponse()
            data = resp.read()
        finally:
            c.close()
        self.assertEqual(resp.status, 200, data)

    def chat(self, quoted):
        return json.dumps({"messages": [
            {"role": "user", "content": "my key is " + quoted + ", keep it safe"}]}).encode()

    def post(self, handle, body):
        return self.req([("Authorization", "Bearer " + handle),
                         ("Content-Type", "application/json")], method="POST", body=body)

    def upstream_body(self, rec):
        return rec["body"].encode("latin-1")

    def test_without_echo_ok_quote_refused(self):
        """Today's behaviour, kept for credentials without the key: refused, not sent."""
        h = self.handle("bearer")
        r, m = self.post(h, self.chat(h))
        self.assert_refused(r, 403, "handle_in_body")
        self.assert_never_arrived(m)

    def test_echo_ok_quote_left_as_text(self):
        h = self.handle("echo")
        body = self.chat(h)
        r, m = self.post(h, body)
        self.assertEqual(r.status, 200, th.R(r))
        rec = self.upstream_record(m)
        self.assertEqual(self.header_of(rec, "Authorization"), ["Bearer " + ECHO_SECRET])
        self.assertTrue(self.upstream_body(rec) == body,
                        "upstream body: " + th.R(rec["body"][:300]))
        self.assertEqual(rec["body_len"], len(body))
        self.assert_no_secret(rec["body"], ECHO_SECRET, "the upstream body")

    def test_echo_ok_response_scrubbed(self):
        """The secret the upstream reflects comes back as the handle; the quote is kept."""
        h = self.handle("echo")
        r, m = self.req([("Authorization", "Bearer " + h)], method="POST",
                        target="/reflect-auth/m-{m}", body=self.chat(h))
        self.upstream_record(m)
        self.client_sees(r, ECHO_SECRET, h)
        self.assertEqual(r.header("X-Echo-Auth"), "Bearer " + h)

    def test_echo_ok_quote_without_head_handle(self):
        """No handle in the head at all: the quote still goes as text."""
        h = self.handle("echo")
        body = self.chat(h)
        r, m = self.req([("Content-Type", "application/json")], method="POST", body=body)
        self.assertEqual(r.status, 200, th.R(r))
        self.assertTrue(self.upstream_body(self.upstream_record(m)) == body)

    def test_echo_ok_old_and_foreign_quotes_left_as_text(self):
        """A quote is text, never used: a revoked handle, another sandbox's, all kept."""
        mine, theirs = self.handle("echo"), self.handle("echo", sandbox="sb-2")
        gone = self.mint("echo")
        self.admin_revoke(gone["handle_id"])

        def revoked():
            r, _ = self.post(gone["handle"], self.chat("hello"))
            return r if r.status != 200 else None
        self.assert_refused(sgtest.wait_for(revoked, timeout=10, interval=0.1,
                                            what="403 revoked"), 403, "revoked")
        body = self.chat(theirs + " and " + gone["handle"])
        r, m = self.post(mine, body)
        self.assertEqual(r.status, 200, th.R(r))
        rec = self.upstream_record(m)
        self.assertEqual(self.header_of(rec, "Authorization"), ["Bearer " + ECHO_SECRET])
        self.assertTrue(self.upstream_body(rec) == body)

    def test_echo_ok_quote_cannot_be_used(self):
        """Used in the head, the other sandbox's handle is still refused."""
        theirs = self.handle("echo", sandbox="sb-2")
        r, m = self.post(theirs, self.chat("hello"))
        self.assert_refused(r, 407, "sandbox_mismatch")
        self.assert_never_arrived(m)

    def test_echo_ok_encoded_quote_refused(self):
        h = self.handle("echo")
        r, m = self.post(h, self.chat(base64.b64encode(h.encode()).decode()))
        self.assert_refused(r, 403, "handle_encoded")
        self.assert_never_arrived(m)

    def test_echo_ok_with_curl(self):
        h = self.handle("echo")
        m = self.marker()
        body = self.chat(h)
        rc, out, err = sgtest.curl(self.sg, "--fail-with-body", "-H",
                                   "Authorization: Bearer " + h, "-H",
                                   "Content-Type: application/json", "--data-binary",
                                   body.decode(), "https://%s:%d/v1/m-%s"
                                   % (API, self.echo.port, m))
        self.assertEqual(rc, 0, th.R(err) + th.R(out[:300]))
        rec = self.upstream_record(m)
        self.assertEqual(self.header_of(rec, "Authorization"), ["Bearer " + ECHO_SECRET])
        self.assertTrue(self.upstream_body(rec) == body)

