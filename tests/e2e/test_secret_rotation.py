"""Rotating credential secrets, end to end, with no policy reload:

  FileRotationTest   a "file" secret replaced by an atomic rename (Vault Agent) and by a
                     Kubernetes "..data" symlink swap is used from the next request on,
                     and the old value never again after the switch; the replaced value,
                     reflected by the upstream right after the rotation, is scrubbed; a
                     request in flight (its body held back) finishes on the old value;
                     a WebSocket message swaps in the new value after a rotation;
                     rotation metric and audit event; other credentials untouched.
  ExecSourceTest     an "exec" secret (a script printing a value from a counter file) is
                     refreshed after its ttl and used; a failing command keeps the last
                     good value until it expires, then 502 secret_unavailable, and the
                     next good run brings it back; its stderr is never logged; a reload
                     hands an unchanged command's value over without running it, runs a
                     changed one, and is refused when that run fails.
  StartupTest        policy check validates secret.exec with located errors and runs no
                     command; serve refuses to start when an exec secret's first run fails.

Every test checks that no secret value reaches the log or the audit trail. Secrets are
random per run and never printed (sgtest.redact).
"""
import json
import os
import shutil
import subprocess
import tempfile

import sgtest

API = "api.example.test"
SEED = os.urandom(6).hex()


def _val(tag, n):
    return "sk-%s-%s-%d" % (tag, SEED, n)


ALL = []    # every value handed out, for redaction and the never-logged checks


def R(x):
    return sgtest.redact_handles(sgtest.redact(x, ALL))


def write_secret(path, text):
    """A secret file: mode 0600, as sealgate requires."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write_atomic(path, text):
    """Write a new file next to path and rename it over path (Vault Agent's way)."""
    tmp = path + ".tmp-" + os.urandom(3).hex()
    write_secret(tmp, text)
    os.rename(tmp, path)


class K8sSecretDir:
    """A Kubernetes secret volume: DIR/..TS/token, DIR/..data -> ..TS, DIR/token ->
    ..data/token. swap() writes a new ..TS2, points ..data at it with one rename, and
    removes the old one, as kubelet's atomic writer does."""

    def __init__(self, root, value):
        self.dir = os.path.join(root, "k8s")
        os.mkdir(self.dir)
        self.n = 0
        self.cur = self._payload(value)
        os.symlink(self.cur, os.path.join(self.dir, "..data"))
        os.symlink("..data/token", os.path.join(self.dir, "token"))
        self.path = os.path.join(self.dir, "token")

    def _payload(self, value):
        self.n += 1
        name = "..2026_12_06_%02d" % self.n
        os.mkdir(os.path.join(self.dir, name))
        write_secret(os.path.join(self.dir, name, "token"), value + "\n")
        return name

    def swap(self, value):
        new = self._payload(value)
        tmp = os.path.join(self.dir, "..data_tmp")
        os.symlink(new, tmp)
        os.rename(tmp, os.path.join(self.dir, "..data"))
        shutil.rmtree(os.path.join(self.dir, self.cur))
        self.cur = new


class RotationCase(sgtest.TestCase):

    def req(self, credential, target="/v1/m-{m}", headers=(), **kw):
        h = sgtest.mint_handle(self.sg.policy_path, "sb-1", credential)["handle"]
        m = os.urandom(6).hex()
        r = sgtest.proxied(self.sg, API, self.echo.port, target=target.replace("{m}", m),
                           headers=[("Authorization", "Bearer " + h)] + list(headers),
                           **kw)
        return r, m, h

    def upstream_auth(self, m):
        found = sgtest.wait_for(lambda: [x for x in self.echo.requests if m in x["path"]],
                                timeout=10, what="upstream request " + m)
        vals = [v for k, v in found[0]["headers"] if k.lower() == "authorization"]
        return vals[0] if vals else None

    def used(self, credential):
        """The value the upstream got for credential on a fresh request (or the error)."""
        r, m, _ = self.req(credential)
        if r.status != 200:
            return ("error", r.status, r.header("X-Sealgate-Error"))
        auth = self.upstream_auth(m)
        return auth[len("Bearer "):] if auth and auth.startswith("Bearer ") else auth

    def assert_used(self, credential, value):
        got = self.used(credential)
        self.assertTrue(got == value, "credential %s: upstream got %s, want %s"
                        % (credential, R(got), R(value)))

    def wait_used(self, credential, value, timeout=15):
        sgtest.wait_for(lambda: self.used(credential) == value, timeout=timeout,
                        what="credential %s using its new value" % credential)

    def assert_not_logged(self):
        log = self.sg.log()
        audit = json.dumps(sgtest.audit_lines(self.sg))
        for v in ALL:
            self.assertTrue(v not in log, "a secret value (%d bytes) is in the log" % len(v))
            self.assertTrue(v not in audit, "a secret value (%d bytes) is in the audit"
                            % len(v))

    def rotations(self, credential):
        return [a for a in sgtest.audit_lines(self.sg)
                if a.get("event") == "secret_rotated" and a.get("credential") == credential]


class FileRotationTest(RotationCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sgtest-secrot-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.files = {}
        for name in ("renamed", "reflected", "inflight", "steady", "ws"):
            d = os.path.join(cls.tmp, name)
            os.mkdir(d)
            cls.files[name] = os.path.join(d, "token")
            ALL.append(_val(name, 1))
            write_secret(cls.files[name], _val(name, 1) + "\n")
        ALL.append(_val("k8s", 1))
        cls.k8s = K8sSecretDir(cls.tmp, _val("k8s", 1))
        cls.files["k8s"] = cls.k8s.path
        host = "%s:%d" % (API, cls.echo.port)
        creds = {n: {"secret": {"file": p}, "inject": {"type": "bearer"}, "hosts": [host]}
                 for n, p in cls.files.items()}
        sbs = {"sb-1": {"addresses": ["127.0.0.1/32"], "credentials": sorted(creds)}}
        cls.sg = sgtest.Sealgate(cls, overrides={"credentials": creds, "sandboxes": sbs})

    def test_atomic_rename(self):
        self.assert_used("renamed", _val("renamed", 1))
        before = sgtest.metrics_value(self.sg, "sealgate_secret_rotations_total") or 0
        ALL.append(_val("renamed", 2))
        write_atomic(self.files["renamed"], _val("renamed", 2) + "\n")
        self.wait_used("renamed", _val("renamed", 2))
        for _ in range(5):      # never the old one after the switch
            self.assert_used("renamed", _val("renamed", 2))
        self.assert_used("steady", _val("steady", 1))
        self.assertGreater(sgtest.metrics_value(self.sg, "sealgate_secret_rotations_total"),
                           before)
        ev = sgtest.wait_for(lambda: self.rotations("renamed"), what="audit secret_rotated")
        self.assertEqual(ev[0].get("detail"), "source file")
        self.assertIn("secret of credential renamed rotated", self.sg.log())
        self.assertEqual(self.rotations("steady"), [])
        self.assert_not_logged()

    def test_k8s_data_symlink_swap(self):
        self.assert_used("k8s", _val("k8s", 1))
        ALL.append(_val("k8s", 2))
        self.k8s.swap(_val("k8s", 2))
        self.wait_used("k8s", _val("k8s", 2))
        for _ in range(3):
            self.assert_used("k8s", _val("k8s", 2))
        self.assert_not_logged()

    def test_old_value_reflected_after_rotation_is_scrubbed(self):
        old, new = _val("reflected", 1), _val("reflected", 2)
        self.assert_used("reflected", old)
        ALL.append(new)
        write_atomic(self.files["reflected"], new + "\n")
        self.wait_used("reflected", new)
        # the upstream echoes the old value (here: a header it was sent) and the new one
        r, m, h = self.req("reflected", target="/reflect-cl/m-{m}?h=X-Stale",
                           headers=[("X-Stale", old)])
        self.assertEqual(r.status, 200, R(r))
        self.assertTrue(old.encode() not in r.raw_head + r.body,
                        "the replaced value reached the client")
        self.assertIn(("auth<%s>end" % h).encode(), r.body, R(r.body))
        r, m, h = self.req("reflected", target="/reflect-cl/m-{m}")
        self.assertTrue(new.encode() not in r.raw_head + r.body,
                        "the current value reached the client")
        self.assertIn(("auth<Bearer %s>end" % h).encode(), r.body, R(r.body))
        self.assert_not_logged()

    def test_in_flight_request_finishes_on_old_value(self):
        old, new = _val("inflight", 1), _val("inflight", 2)
        h = sgtest.mint_handle(self.sg.policy_path, "sb-1", "inflight")["handle"]
        m = os.urandom(6).hex()
        body = b"x" * 2000
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        try:
            head = sgtest.build_request("POST", "/v1/m-" + m, "%s:%d" % (API, self.echo.port),
                                        [("Authorization", "Bearer " + h)], body)
            c.send(head[:-1500])            # the head and part of the body
            self.echo.wait_head("/v1/m-" + m)   # sealgate planned it and sent it on
            ALL.append(new)
            write_atomic(self.files["inflight"], new + "\n")
            self.wait_used("inflight", new)  # new requests already use the new value
            c.send(head[-1500:])
            r = c.read_response("POST")
        finally:
            c.close()
        self.assertEqual(r.status, 200, R(r))
        self.assertTrue(self.upstream_auth(m) == "Bearer " + old,
                        "the in-flight request did not keep the old value")
        rec = [x for x in self.echo.requests if m in x["path"]][0]
        self.assertEqual(rec["body_len"], 2000)
        self.assertTrue(old.encode() not in r.body, "the in-flight answer was not scrubbed")
        self.assert_not_logged()

    def ws_round(self, c, rd, h, value):
        """A text message carrying handle h: the upstream gets value in its place, and
        the echo of it comes back with the handle."""
        tag = os.urandom(4).hex()
        c.send(sgtest.ws_frame(0x1, ("%s %s" % (tag, h)).encode()))
        op, back = sgtest.ws_read_message(rd)
        self.assertEqual(op, 0x1)
        self.assertTrue(back == ("%s %s" % (tag, h)).encode(), "echo not scrubbed: "
                        + R(back))
        got = sgtest.wait_for(lambda: [f for f in self.echo.frames
                                       if f["event"] == "message" and tag in f["data"]],
                              what="message " + tag)
        self.assertTrue(got[0]["data"] == "%s %s" % (tag, value),
                        "upstream got " + R(got[0]["data"]))

    def test_websocket_message_after_rotation(self):
        h = sgtest.mint_handle(self.sg.policy_path, "sb-1", "ws")["handle"]
        authority = "%s:%d" % (API, self.echo.port)
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(b"GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n" % authority.encode())
        r = c.read_response()
        self.assertEqual(r.status, 101, R(r))
        rd = c.reader()
        self.ws_round(c, rd, h, _val("ws", 1))
        ALL.append(_val("ws", 2))
        write_atomic(self.files["ws"], _val("ws", 2) + "\n")
        self.wait_used("ws", _val("ws", 2))
        self.ws_round(c, rd, h, _val("ws", 2))
        self.assert_not_logged()


SCRIPT = """#!/bin/sh
# prints the secret for counter value N; fails (stderr names a secret-looking value)
# while FLAG exists; notes every run in RUNS
echo run >> '{runs}'
if [ -e '{flag}' ]; then
    echo "error: token sk-{tag}-{seed}-stderr was rejected" >&2
    exit 7
fi
printf 'sk-{tag}-{seed}-%s\\n' "$(cat '{counter}')"
"""


class ExecSourceTest(RotationCase):

    @classmethod
    def make_script(cls, tag):
        d = os.path.join(cls.tmp, tag)
        os.mkdir(d)
        paths = {k: os.path.join(d, k) for k in ("script", "counter", "flag", "runs")}
        with open(paths["counter"], "w") as f:
            f.write("1")
        with open(paths["script"], "w") as f:
            f.write(SCRIPT.format(tag=tag, seed=SEED, **paths))
        os.chmod(paths["script"], 0o755)
        ALL.append("sk-%s-%s-stderr" % (tag, SEED))
        return paths

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sgtest-secexec-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.paths = {n: cls.make_script(n) for n in ("refresh", "failing", "handover")}
        ALL.extend([_val(n, 1) for n in cls.paths])
        host = "%s:%d" % (API, cls.echo.port)
        ttl = {"refresh": "2s", "failing": "6s", "handover": "10m"}
        creds = {n: {"secret": {"exec": [p["script"]], "ttl": ttl[n], "timeout": "1s"},
                     "inject": {"type": "bearer"}, "hosts": [host]}
                 for n, p in cls.paths.items()}
        sbs = {"sb-1": {"addresses": ["127.0.0.1/32"], "credentials": sorted(creds)}}
        cls.sg = sgtest.Sealgate(cls, overrides={"credentials": creds, "sandboxes": sbs})

    def set_counter(self, tag, n):
        ALL.append(_val(tag, n))
        write_atomic(self.paths[tag]["counter"], str(n))

    def test_refreshed_after_ttl(self):
        self.assert_used("refresh", _val("refresh", 1))
        self.set_counter("refresh", 2)
        self.wait_used("refresh", _val("refresh", 2))
        for _ in range(3):
            self.assert_used("refresh", _val("refresh", 2))
        ev = sgtest.wait_for(lambda: self.rotations("refresh"), what="audit secret_rotated")
        self.assertEqual(ev[0].get("detail"), "source exec")
        self.assert_not_logged()

    def runs(self, tag):
        with open(self.paths[tag]["runs"]) as f:
            return len(f.read().splitlines())

    def reload(self):
        import http.client
        with open(os.path.join(self.sg.dir, "keys", "admin.token")) as f:
            token = f.read().strip()
        c = http.client.HTTPConnection(*self.sg.admin, timeout=30)
        try:
            c.request("POST", "/v1/reload", headers={"Authorization": "Bearer " + token})
            resp = c.getresponse()
            return resp.status, resp.read()
        finally:
            c.close()

    def test_reload_hands_over_unchanged_command(self):
        self.assertEqual(self.runs("handover"), 1)      # serve ran it once, at start
        self.assert_used("handover", _val("handover", 1))
        status, body = self.reload()
        self.assertEqual(status, 200, body)
        self.assertEqual(self.runs("handover"), 1, "an unchanged command ran again")
        self.assert_used("handover", _val("handover", 1))
        # a changed command runs during the reload; a failing one refuses the reload
        pol = json.load(open(self.sg.policy_path))
        pol["credentials"]["handover"]["secret"]["exec"].append("--changed")
        with open(self.sg.policy_path, "w") as f:
            json.dump(pol, f)
        self.set_counter("handover", 2)
        status, body = self.reload()
        self.assertEqual(status, 200, body)
        self.assertEqual(self.runs("handover"), 2)
        self.assert_used("handover", _val("handover", 2))
        with open(self.paths["handover"]["flag"], "w"):
            pass
        pol["credentials"]["handover"]["secret"]["exec"].append("--again")
        with open(self.sg.policy_path, "w") as f:
            json.dump(pol, f)
        status, body = self.reload()
        self.assertEqual(status, 422, body)
        self.assertIn(b"secret of credential handover: command", body)
        self.assertIn(b"exited with status 7", body)
        self.assert_used("handover", _val("handover", 2))    # the old policy still serves
        self.assert_not_logged()

    def test_failure_keeps_last_value_until_expiry(self):
        self.assert_used("failing", _val("failing", 1))
        before = sgtest.metrics_value(self.sg, "sealgate_secret_source_failures_total") or 0
        with open(self.paths["failing"]["flag"], "w"):
            pass
        sgtest.wait_for(lambda: (sgtest.metrics_value(
            self.sg, "sealgate_secret_source_failures_total") or 0) > before, timeout=15,
            what="a failed run counted")
        # the run failed; the last good value still serves until its ttl ends
        self.assert_used("failing", _val("failing", 1))
        self.assertIn("secret of credential failing: command", self.sg.log())
        self.assertIn("exited with status 7", self.sg.log())
        sgtest.wait_for(lambda: self.used("failing") == ("error", 502, "secret_unavailable"),
                        timeout=15, what="502 secret_unavailable after expiry")
        r, _, _ = self.req("failing")
        sgtest.assert_error(self, r, 502, "secret_unavailable")
        # the command works again: so does the credential, with its new value
        self.set_counter("failing", 2)
        os.unlink(self.paths["failing"]["flag"])
        self.wait_used("failing", _val("failing", 2))
        self.assert_not_logged()


class StartupTest(RotationCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sgtest-secchk-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.ran = os.path.join(self.tmp, "ran")
        self.script = os.path.join(self.tmp, "helper.sh")
        with open(self.script, "w") as f:
            f.write("#!/bin/sh\ntouch '%s'\nexit 1\n" % self.ran)
        os.chmod(self.script, 0o755)

    def policy(self, secret):
        pol = sgtest.base_policy()
        pol["credentials"] = {"gh": {"secret": secret, "inject": {"type": "bearer"},
                                     "hosts": [API]}}
        pol["sandboxes"] = {"sb-1": {"addresses": ["127.0.0.1/32"], "credentials": ["gh"]}}
        path = os.path.join(self.tmp, "policy.json")
        with open(path, "w") as f:
            json.dump(pol, f)
        return path

    def test_check_validates_and_runs_nothing(self):
        rc, out, err = sgtest.sealgate_cli("policy", "check", self.policy(
            {"exec": [self.script, "--flag"], "ttl": "5m", "timeout": "5s"}))
        self.assertEqual(rc, 0, out + err)
        self.assertFalse(os.path.exists(self.ran), "policy check ran the command")
        cases = [
            ({"exec": ["no-such-secret-helper-x"]}, "credentials.gh.secret.exec[0]",
             "not found"),
            ({"exec": []}, "credentials.gh.secret.exec", "needs a program"),
            ({"exec": [self.script], "ttl": "soon"}, "credentials.gh.secret.ttl",
             "not a duration"),
            ({"exec": [self.script], "ttl": "2d"}, "credentials.gh.secret.ttl",
             "out of range"),
            ({"exec": [self.script], "ttl": "5s", "timeout": "5s"}, "credentials.gh.secret",
             "shorter than"),
            ({"exec": [self.script], "shell": True}, "credentials.gh.secret", "shell"),
        ]
        for secret, where, what in cases:
            rc, out, err = sgtest.sealgate_cli("policy", "check", self.policy(secret))
            self.assertNotEqual(rc, 0, secret)
            self.assertIn("policy.json: %s:" % where, out + err, secret)
            self.assertIn(what, out + err, secret)
        self.assertFalse(os.path.exists(self.ran), "policy check ran the command")

    def test_serve_refuses_when_first_run_fails(self):
        path = self.policy({"exec": [self.script], "ttl": "5m", "timeout": "2s"})
        p = subprocess.run([sgtest.SEALGATE_BIN, "serve", "--policy", path],
                           capture_output=True, text=True, timeout=30, cwd=self.tmp,
                           stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("secret of credential gh: command", p.stderr + p.stdout)
        self.assertIn("exited with status 1", p.stderr + p.stdout)
        self.assertTrue(os.path.exists(self.ran), "serve did not run the command")


if __name__ == "__main__":
    import unittest
    unittest.main()
