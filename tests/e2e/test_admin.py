"""The admin API: health, readiness, metrics, the policy view, reload (good and broken
policy files, token re-read), revoke (file written), token checks (missing 401, wrong
403), JSON errors with X-Sealgate-Error, 404 and 405."""
import http.client
import json
import os
import re

import sgtest

SECRET = "sk-admin-e2e-secret-5f0c9a1d"
HANDLE_ID = "0123456789abcdef0123456789abcdef"
POLICY = {
    "credentials": {
        "openai": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                   "hosts": ["api.example.test"], "methods": ["GET", "POST"],
                   "paths": ["/v1/*"]},
    },
    "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"], "credentials": ["openai"]}},
}
REVOCATIONS = {"revocations": {"file": "revocations.json"}}


class Admin:
    """Requests to a Sealgate's admin listener; token read from the file serve made."""

    def __init__(self, sg):
        self.sg = sg
        self.token_path = os.path.join(sg.dir, sg.policy["admin"]["token"]["file"])
        with open(self.token_path) as f:
            self.token = f.read().strip()

    def request(self, method, path, body=None, token=None, headers=None):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        c = http.client.HTTPConnection(*self.sg.admin, timeout=10)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def authed(self, method, path, body=None):
        return self.request(method, path, body=body, token=self.token)


def jbody(data):
    return json.loads(data.decode())


class AdminEndpointsTest(sgtest.TestCase):
    """Read-only endpoints and token checks on one server (revocations configured)."""

    @classmethod
    def setUpClass(cls):
        cls.sg = sgtest.Sealgate(cls, overrides=dict(POLICY, **REVOCATIONS))
        cls.admin = Admin(cls.sg)

    def assertError(self, status, headers, data, want_status, code):
        self.assertEqual(status, want_status, data)
        self.assertEqual(headers.get("x-sealgate-error"), code)
        self.assertEqual(headers.get("content-type"), "application/json")
        j = jbody(data)
        self.assertEqual(j["error"], code)
        self.assertTrue(j["message"])

    def test_token_file_created(self):
        self.assertRegex(self.admin.token, r"^[0-9a-f]{64}$")
        self.assertEqual(os.stat(self.admin.token_path).st_mode & 0o777, 0o600)

    def test_healthz(self):
        status, headers, data = self.admin.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(jbody(data), {"status": "ok"})
        status, _, _ = self.admin.request("GET", "/healthz?probe=1")
        self.assertEqual(status, 200)
        status, _, data = self.admin.request("HEAD", "/healthz")
        self.assertEqual((status, data), (200, b""))

    def test_readyz(self):
        status, _, data = self.admin.request("GET", "/readyz")
        self.assertEqual(status, 200)
        self.assertEqual(jbody(data), {"status": "ready"})

    def test_metrics(self):
        status, headers, data = self.admin.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        text = data.decode()
        for line in ["# TYPE sealgate_connections_active gauge",
                     "# TYPE sealgate_upstream_latency_seconds histogram",
                     "sealgate_policy_generation 1",
                     "sealgate_policy_last_reload_success 1",
                     "sealgate_audit_dropped_total 0"]:
            self.assertIn(line + "\n", text)
        self.assertRegex(text, r"\nsealgate_requests_total\{outcome=\"forwarded\"\} \d+\n")
        self.assertRegex(text, r"\nsealgate_leaf_cache_entries \d+\n")
        # the startup load was timed (sealgate_policy_load_seconds, seconds as a float)
        m = re.search(r"\nsealgate_policy_load_seconds ([0-9.]+)\n", text)
        self.assertIsNotNone(m, "no sealgate_policy_load_seconds")
        self.assertGreater(float(m.group(1)), 0)
        self.assertRegex(text, r"\nsealgate_handle_cache_hits_total \d+\n")
        self.assertRegex(text, r'upstream_latency_seconds_bucket\{le="\+Inf"\} \d+\n')

    def test_not_found(self):
        for path in ["/", "/nope", "/v1", "/v1/policy/x", "/healthz/"]:
            with self.subTest(path=path):
                self.assertError(*self.admin.request("GET", path), 404, "not_found")

    def test_method_not_allowed(self):
        for method, path, allow in [("POST", "/healthz", "GET, HEAD"),
                                    ("DELETE", "/metrics", "GET, HEAD"),
                                    ("GET", "/v1/reload", "POST"),
                                    ("PUT", "/v1/revoke", "POST"),
                                    ("POST", "/v1/policy", "GET, HEAD")]:
            with self.subTest(method=method, path=path):
                status, headers, data = self.admin.request(method, path, token=self.admin.token)
                self.assertError(status, headers, data, 405, "method_not_allowed")
                self.assertEqual(headers.get("allow"), allow)

    def test_token_missing(self):
        for method, path in [("GET", "/v1/policy"), ("POST", "/v1/reload"),
                             ("POST", "/v1/revoke")]:
            with self.subTest(path=path):
                status, headers, data = self.admin.request(method, path)
                self.assertError(status, headers, data, 401, "unauthorized")
                self.assertTrue(headers.get("www-authenticate", "").startswith("Bearer"))
                status, headers, data = self.admin.request(
                    method, path, headers={"Authorization": "Basic YWRtaW46eA=="})
                self.assertError(status, headers, data, 401, "unauthorized")

    def test_token_wrong(self):
        for method, path in [("GET", "/v1/policy"), ("POST", "/v1/reload"),
                             ("POST", "/v1/revoke")]:
            for tok in ["0" * 64, self.admin.token[:-1], self.admin.token + "0", "x"]:
                with self.subTest(path=path, token=tok[:8]):
                    self.assertError(*self.admin.request(method, path, token=tok), 403,
                                     "forbidden")
        self.assertNotIn(self.admin.token, self.sg.log())

    def test_policy_view(self):
        status, headers, data = self.admin.authed("GET", "/v1/policy")
        self.assertEqual(status, 200, data)
        self.assertEqual(headers["content-type"], "application/json")
        j = jbody(data)
        self.assertEqual(j["credentials"]["openai"]["hosts"], ["api.example.test"])
        self.assertEqual(j["credentials"]["openai"]["secret"], "value")
        self.assertIs(j["credentials"]["openai"]["echo_ok_in_body"], False)
        self.assertEqual(j["sandboxes"]["sb-1"]["credentials"], ["openai"])
        self.assertGreaterEqual(j["generation"], 1)
        self.assertNotIn(SECRET, data.decode())
        self.assertNotIn(self.admin.token, data.decode())

    def test_revoke(self):
        path = os.path.join(self.sg.dir, "revocations.json")
        for body, section, key in [({"handle_id": HANDLE_ID}, "handles", HANDLE_ID),
                                   ({"sandbox": "sb-1"}, "sandboxes", "sb-1"),
                                   ({"credential": "openai"}, "credentials", "openai"),
                                   ({"key": "0a1b2c3d"}, "keys", "0a1b2c3d")]:
            with self.subTest(body=body):
                status, headers, data = self.admin.authed("POST", "/v1/revoke", body)
                self.assertEqual(status, 200, data)
                j = jbody(data)
                self.assertEqual(j["revoked"], body)
                with open(path) as f:
                    self.assertIn(key, json.load(f)[section])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        # again: nothing new for a handle id, still 200
        status, _, data = self.admin.authed("POST", "/v1/revoke", {"handle_id": HANDLE_ID})
        self.assertEqual(status, 200, data)
        self.assertFalse(jbody(data)["changed"])

    def test_revoke_bad_body(self):
        for body in ["", "not json", "[]", '"x"', {}, {"handle_id": HANDLE_ID, "sandbox": "a"},
                     {"user": "x"}, {"handle_id": 7}, {"handle_id": "zz"},
                     {"key": "0a1b2c3d00"}, {"sandbox": ""},
                     '{"sandbox": "a", "sandbox": "b"}']:
            with self.subTest(body=body):
                self.assertError(*self.admin.authed("POST", "/v1/revoke", body), 400,
                                 "bad_request")

    def test_server_still_serves(self):
        self.assertTrue(self.sg.alive())
        self.assertEqual(self.admin.request("GET", "/healthz")[0], 200)


class AdminNoRevocationsTest(sgtest.TestCase):
    def test_revoke_unconfigured(self):
        sg = sgtest.Sealgate(self, overrides=POLICY)
        admin = Admin(sg)
        status, headers, data = admin.authed("POST", "/v1/revoke", {"sandbox": "sb-1"})
        self.assertEqual(status, 409, data)
        self.assertEqual(headers.get("x-sealgate-error"), "revocations_unconfigured")
        self.assertEqual(jbody(data)["error"], "revocations_unconfigured")
        self.assertFalse(os.path.exists(os.path.join(sg.dir, "revocations.json")))


class AdminReloadTest(sgtest.TestCase):
    """Each test edits the policy file on disk of its own server."""

    def setUp(self):
        self.sg = sgtest.Sealgate(self, overrides=POLICY)
        self.admin = Admin(self.sg)

    def write_policy(self, text):
        with open(self.sg.policy_path, "w") as f:
            f.write(text)

    def policy_view(self):
        status, _, data = self.admin.authed("GET", "/v1/policy")
        self.assertEqual(status, 200, data)
        return jbody(data)

    def metric(self, name):
        text = self.admin.request("GET", "/metrics")[2].decode()
        m = re.search(r"\n%s (\S+)\n" % re.escape(name), text)
        self.assertIsNotNone(m, name)
        return float(m.group(1))

    def test_reload_good(self):
        pol = sgtest.deep_merge(self.sg.policy, {"credentials": {"second": {
            "secret": {"value": SECRET + "2"}, "inject": {"type": "bearer"},
            "hosts": ["other.example.test"]}}})
        self.write_policy(json.dumps(pol, indent=2))
        status, headers, data = self.admin.authed("POST", "/v1/reload")
        self.assertEqual(status, 200, data)
        j = jbody(data)
        self.assertEqual(j["status"], "reloaded")
        self.assertEqual(j["generation"], 2)
        view = self.policy_view()
        self.assertEqual(sorted(view["credentials"]), ["openai", "second"])
        self.assertEqual(view["generation"], 2)
        self.assertEqual(self.metric("sealgate_policy_generation"), 2)
        self.assertEqual(self.metric("sealgate_policy_last_reload_success"), 1)
        self.assertGreater(self.metric("sealgate_policy_last_reload_timestamp_seconds"), 0)
        # that reload was timed (parse, compile, publish); a bench goal, not asserted here
        self.assertGreater(self.metric("sealgate_policy_load_seconds"), 0)

    def test_reload_syntax_error(self):
        good = json.dumps(self.sg.policy, indent=2)
        self.write_policy(good[:len(good) // 2])
        status, headers, data = self.admin.authed("POST", "/v1/reload")
        self.assertEqual(status, 422, data)
        self.assertEqual(headers.get("x-sealgate-error"), "policy_invalid")
        j = jbody(data)
        self.assertEqual(j["error"], "policy_invalid")
        self.assertRegex(j["message"], r"policy\.json:\d+:\d+: ")
        # the old policy is still served
        view = self.policy_view()
        self.assertEqual(sorted(view["credentials"]), ["openai"])
        self.assertEqual(view["generation"], 1)
        self.assertEqual(self.metric("sealgate_policy_last_reload_success"), 0)
        self.assertEqual(self.metric("sealgate_policy_generation"), 1)

    def test_reload_semantic_error(self):
        pol = sgtest.deep_merge(self.sg.policy, {"sandboxes": {"sb-1": {
            "credentials": ["openai", "nope"]}}})
        self.write_policy(json.dumps(pol, indent=2))
        status, headers, data = self.admin.authed("POST", "/v1/reload")
        self.assertEqual(status, 422, data)
        msg = jbody(data)["message"]
        self.assertIn("policy.json: sandboxes.sb-1.credentials[1]: ", msg)
        self.assertIn("nope", msg)
        self.assertNotIn(SECRET, msg)
        self.assertEqual(self.policy_view()["sandboxes"]["sb-1"]["credentials"], ["openai"])
        # fixed again: reload works and the generation moves on
        self.write_policy(json.dumps(self.sg.policy, indent=2))
        self.assertEqual(self.admin.authed("POST", "/v1/reload")[0], 200)
        self.assertEqual(self.metric("sealgate_policy_last_reload_success"), 1)

    def test_reload_rereads_token(self):
        new = "f" * 64
        with open(self.admin.token_path, "w") as f:
            f.write(new + "\n")
        # the token is re-read only by a reload: the old one still works until then
        self.assertEqual(self.admin.authed("GET", "/v1/policy")[0], 200)
        self.assertEqual(self.admin.authed("POST", "/v1/reload")[0], 200)
        self.assertEqual(self.admin.authed("GET", "/v1/policy")[0], 403)
        self.assertEqual(self.admin.request("GET", "/v1/policy", token=new)[0], 200)


if __name__ == "__main__":
    import unittest
    unittest.main()
