"""Persistent sandboxes: handles that outlive hibernation and follow forks and restores.

Sandbox-lifetime handles (ttl "sandbox"), fork lineage (a fork accepts its parent's
handles minted before the fork, as its own), checkpoint restores (restored_from + at),
suspend / resume, and lineage surviving kill -9. Every sandbox is registered through the
admin API (or the CLI) on its own loopback address; requests leave from it (curl
--interface, or sockets bound to it). Keys and state live in one folder so a restarted
sealgate accepts the handles minted before the crash.
"""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import sgtest

API = "api.example.test"
SECRET = "sk-persist-" + os.urandom(12).hex()
GH_SECRET = "gh-persist-" + os.urandom(12).hex()
LIFE_SECRET = "sk-life-" + os.urandom(12).hex()
LIFE_MAX_TTL = 12          # s: the backstop of sandbox-lifetime "life" handles


def policy(port, state):
    keys = os.path.join(state, "keys")
    hosts = ["%s:%d" % (API, port)]
    return {
        "keys": {"seal_key": os.path.join(keys, "seal.key"),
                 "ca_cert": os.path.join(keys, "ca.crt"),
                 "ca_key": os.path.join(keys, "ca.key")},
        "admin": {"token": {"file": os.path.join(keys, "admin.token")}},
        "credentials": {
            "bearer": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                       "hosts": hosts, "ttl": "1h"},
            "gh": {"secret": {"value": GH_SECRET},
                   "inject": {"type": "header", "name": "X-Gh-Key", "format": "%s"},
                   "hosts": hosts},
            # a 1 s wall-clock ttl; sandboxes of template "persist" get sandbox-lifetime
            # handles of it instead, bounded by max_ttl
            "life": {"secret": {"value": LIFE_SECRET}, "inject": {"type": "bearer"},
                     "hosts": hosts, "ttl": "1s", "max_ttl": "%ds" % LIFE_MAX_TTL},
        },
        "sandbox_templates": {
            "agent": {"credentials": ["bearer", "gh"], "rate": {"requests": 100, "per": "1h"}},
            "small": {"credentials": ["bearer"], "rate": {"requests": 2, "per": "1h"}},
            "persist": {"credentials": ["life"], "ttl": "sandbox"},
            "plain": {"credentials": ["life"]},
        },
        "state": {"dir": state},
        "revocations": {"file": os.path.join(state, "revocations.json")},
        "egress": {"tunnel_hosts": ["tunnel.example.test"]},
    }


class PersistCase(sgtest.TestCase):

    def setUp(self):
        self.echo = sgtest.EchoUpstream(self)
        self.addCleanup(self.echo.stop)
        self.state = tempfile.mkdtemp(prefix="sgtest-persist-")
        self.addCleanup(shutil.rmtree, self.state, True)
        os.makedirs(os.path.join(self.state, "keys"), mode=0o700)
        self.sg = self.start()

    def start(self):
        return sgtest.Sealgate(self, overrides=policy(self.echo.port, self.state))

    # ---- admin API and CLI
    def admin(self, method, path, body=None):
        with open(os.path.join(self.state, "keys", "admin.token")) as f:
            tok = f.read().strip()
        c = http.client.HTTPConnection(*self.sg.admin, timeout=10)
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers={"Authorization": "Bearer " + tok,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data.strip() else None)

    def register(self, sid, addr, template="agent", **kw):
        body = {"template": template, "addresses": [addr + "/32"]}
        body.update(kw)
        st, j = self.admin("PUT", "/v1/sandboxes/" + sid, body)
        self.assertEqual(st, 201, j)
        return j

    def fork(self, parent, sid, addr, **kw):
        body = {"id": sid, "addresses": [addr + "/32"]}
        body.update(kw)
        st, j = self.admin("POST", "/v1/sandboxes/%s/fork" % parent, body)
        self.assertEqual(st, 201, j)
        self.assertEqual(j["lineage"][0]["id"], parent, j)
        return j["lineage"][0]["at"]            # the fork time T

    def cli(self, *args):
        conn = ["--policy", self.sg.policy_path, "--admin", "%s:%d" % self.sg.admin]
        r = subprocess.run([sgtest.SEALGATE_BIN, "sandbox"] + list(args) + conn,
                           capture_output=True, timeout=30, cwd=self.sg.dir)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    # ---- the metadata responder, from a sandbox's address
    def md(self, src, path):
        c = http.client.HTTPConnection(*self.sg.metadata, timeout=10, source_address=(src, 0))
        try:
            c.request("PUT", "/v1/token", headers={"X-Sealgate-Token-TTL": "60"})
            r = c.getresponse()
            tok = r.read().decode()
            if r.status != 200:
                return r.status, r.getheader("X-Sealgate-Error"), tok
            c.request("GET", path, headers={"X-Sealgate-Token": tok})
            r = c.getresponse()
            return r.status, r.getheader("X-Sealgate-Error"), r.read()
        finally:
            c.close()

    def md_handle(self, src, cred="bearer"):
        st, code, body = self.md(src, "/v1/handles/" + cred)
        self.assertEqual(st, 200, (code, body[:300]))
        return json.loads(body)

    def claims(self, handle):
        rc, out, err = sgtest.sealgate_cli("unseal", "--key",
                                           os.path.join(self.state, "keys", "seal.key"), handle)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    # ---- requests through the proxy, from a sandbox's address
    def curl(self, src, handle, header="Authorization", fmt="Bearer %s"):
        """curl --interface src through sealgate: (status, X-Sealgate-Error, text). A
        refused CONNECT (curl exit 56) gives that answer's head (curl shows no body)."""
        rc, out, err = sgtest.curl(self.sg, "--interface", src, "-D", "-",
                                   "-H", "%s: %s" % (header, fmt % handle),
                                   "https://%s:%d/v1/x" % (API, self.echo.port))
        self.assertIn(rc, (0, 56), err)
        text = out.decode("latin-1")
        # the last response (a refused CONNECT is the only one)
        heads = [h for h in text.split("\r\n\r\n") if h.startswith("HTTP/")]
        head = heads[-1] if heads else text
        status = int(head.split(" ", 2)[1])
        code = None
        for line in head.split("\r\n"):
            if line.lower().startswith("x-sealgate-error:"):
                code = line.split(":", 1)[1].strip()
        return status, code, text

    def upstream_saw(self, name, value):
        """How many requests reached the upstream with header name: value."""
        return sum(1 for r in self.echo.requests
                   if any(k.lower() == name.lower() and v == value for k, v in r["headers"]))

    def audit_lines(self, pred, what):
        def probe():
            return [ln for ln in sgtest.audit_lines(self.sg) if pred(ln)]
        return sgtest.wait_for(probe, timeout=10, what=what)

    def after_second(self, t):
        """Condition wait until the wall clock is past second t (handles minted now have
        iat > t)."""
        sgtest.wait_for(lambda: int(time.time()) > t, timeout=5, interval=0.05,
                        what="the clock past %d" % t)


class LifetimeTest(PersistCase):

    def test_sandbox_lifetime_outlives_ttl_until_max_ttl(self):
        self.register("keeps", "127.0.0.21", template="persist")
        self.register("plain", "127.0.0.22", template="plain")
        t0 = time.time()
        hs = self.md_handle("127.0.0.21", "life")
        hw = self.md_handle("127.0.0.22", "life")
        self.assertEqual((hs["lifetime"], hw["lifetime"]), ("sandbox", "ttl"))
        cs, cw = self.claims(hs["handle"]), self.claims(hw["handle"])
        self.assertEqual(cs.get("life"), "sandbox")
        self.assertEqual(cs["exp"] - cs["iat"], LIFE_MAX_TTL)     # only the backstop
        self.assertNotIn("life", cw)
        self.assertEqual(cw["exp"] - cw["iat"], 1)                # the credential's ttl
        self.assertEqual(self.curl("127.0.0.21", hs["handle"])[0], 200)
        self.assertEqual(self.curl("127.0.0.22", hw["handle"])[0], 200)

        # the wall-clock handle dies at exp + the 30 s clock skew ...
        def refused(src, h):
            st, code, _ = self.curl(src, h)
            return (st, code) == (403, "handle_expired")
        sgtest.wait_for(lambda: refused("127.0.0.22", hw["handle"]), timeout=60,
                        interval=0.5, what="the 1 s wall-clock handle refused")
        # ... the sandbox-lifetime one of the same credential, minted at the same time,
        # keeps working past it
        waited = time.time() - t0
        st, code, text = self.curl("127.0.0.21", hs["handle"])
        self.assertEqual((st, code), (200, None), sgtest.redact(text, [LIFE_SECRET]))
        self.assertGreater(waited, 1 + 30 - 1)
        # until its max_ttl backstop
        sgtest.wait_for(lambda: refused("127.0.0.21", hs["handle"]), timeout=40,
                        interval=0.5, what="the sandbox-lifetime handle at max_ttl")
        self.assertGreaterEqual(time.time(), cs["iat"] + LIFE_MAX_TTL + 30 - 1)

    def test_sandbox_lifetime_stops_at_delete(self):
        self.register("gone", "127.0.0.23", template="persist")
        h = self.md_handle("127.0.0.23", "life")["handle"]
        self.assertEqual(self.curl("127.0.0.23", h)[0], 200)
        st, j = self.admin("DELETE", "/v1/sandboxes/gone")
        self.assertEqual(st, 200, j)
        st, code, text = self.curl("127.0.0.23", h)            # the very next request
        self.assertEqual((st, code), (403, "revoked"))
        self.assertIn("sandbox gone was deleted", text)


class ForkTest(PersistCase):

    def test_fork_uses_parent_handles_with_its_own_limits(self):
        self.register("p", "127.0.0.24")
        h = self.md_handle("127.0.0.24")["handle"]
        hid = self.claims(h)["hid"]
        self.fork("p", "f", "127.0.0.25", template="small")     # rate 2 an hour
        for i in range(2):
            st, code, text = self.curl("127.0.0.25", h)
            self.assertEqual((st, code), (200, None), text[:400])
        self.assertEqual(self.upstream_saw("Authorization", "Bearer " + SECRET), 2)
        st, code, text = self.curl("127.0.0.25", h)
        self.assertEqual((st, code), (429, "rate_limited"), text[:400])
        self.assertIn("the sandbox", text)
        # the parent's own sandbox rate (100 an hour) is untouched by the fork's use
        self.assertEqual(self.curl("127.0.0.24", h)[:2], (200, None))
        line = self.audit_lines(lambda ln: ln.get("event") == "request" and
                                ln.get("source") == "127.0.0.25" and ln.get("status") == 200,
                                "the fork's request lines")[0]
        self.assertEqual((line["sandbox"], line["origin_sandbox"], line["handle_id"]),
                         ("f", "p", hid), line)
        line = self.audit_lines(lambda ln: ln.get("source") == "127.0.0.25" and
                                ln.get("status") == 429, "the fork's 429 line")[0]
        self.assertEqual((line["sandbox"], line["origin_sandbox"]), ("f", "p"), line)
        parent = self.audit_lines(lambda ln: ln.get("source") == "127.0.0.24" and
                                  ln.get("event") == "request", "the parent's line")[0]
        self.assertEqual(parent["sandbox"], "p")
        self.assertNotIn("origin_sandbox", parent)
        self.assertEqual(sgtest.metrics_value(self.sg, "sealgate_handles_lineage_accepted_total"),
                         3.0)

    def test_post_fork_handle_is_the_parents(self):
        self.register("p", "127.0.0.26")
        t = self.fork("p", "f", "127.0.0.27")
        self.after_second(t)
        h = self.md_handle("127.0.0.26")["handle"]             # minted after the fork
        st, code, text = self.curl("127.0.0.27", h)
        self.assertEqual((st, code), (407, "sandbox_mismatch"), text[:400])
        self.assertIn("a copy of it taken at %d" % t, text)
        self.assertEqual(self.curl("127.0.0.26", h)[:2], (200, None))

    def test_fork_without_the_grant_gets_403(self):
        self.register("p", "127.0.0.28")
        gh = self.md_handle("127.0.0.28", "gh")["handle"]
        self.fork("p", "f", "127.0.0.29", template="small")     # grants bearer only
        st, code, text = self.curl("127.0.0.29", gh, header="X-Gh-Key", fmt="%s")
        self.assertEqual((st, code), (403, "credential_not_granted"), text[:400])
        self.assertIn("not granted to sandbox f (template small)", text)
        line = self.audit_lines(lambda ln: ln.get("error") == "credential_not_granted",
                                "the refusal's line")[0]
        self.assertEqual((line["sandbox"], line["origin_sandbox"]), ("f", "p"), line)
        st, code, _ = self.curl("127.0.0.28", gh, header="X-Gh-Key", fmt="%s")
        self.assertEqual((st, code), (200, None))
        self.assertEqual(self.upstream_saw("X-Gh-Key", GH_SECRET), 1)

    def test_parent_deleted_fork_keeps_working(self):
        self.register("p", "127.0.0.30")
        h = self.md_handle("127.0.0.30")["handle"]
        self.fork("p", "f", "127.0.0.31")
        self.fork("f", "g", "127.0.0.32")                     # a chain: p -> f -> g
        st, j = self.admin("DELETE", "/v1/sandboxes/p")
        self.assertEqual(st, 200, j)
        self.assertEqual(self.curl("127.0.0.30", h)[:2], (403, "revoked"))
        self.assertEqual(self.curl("127.0.0.31", h)[:2], (200, None))
        self.assertEqual(self.curl("127.0.0.32", h)[:2], (200, None))
        # deleting a fork leaves the rest alone; a handle id revocation reaches every copy
        st, j = self.admin("DELETE", "/v1/sandboxes/f")
        self.assertEqual(st, 200, j)
        self.assertEqual(self.curl("127.0.0.32", h)[:2], (200, None))
        st, j = self.admin("POST", "/v1/revoke", {"handle_id": self.claims(h)["hid"]})
        self.assertEqual(st, 200, j)
        st, code, text = self.curl("127.0.0.32", h)
        self.assertEqual((st, code), (403, "revoked"), text[:400])

    def test_lineage_survives_kill9_and_restart(self):
        self.register("p", "127.0.0.33")
        h = self.md_handle("127.0.0.33")["handle"]
        t = self.fork("p", "f", "127.0.0.34")
        self.assertEqual(self.curl("127.0.0.34", h)[:2], (200, None))
        self.sg.kill9()
        self.sg = self.start()                                  # same keys, same state
        st, j = self.admin("GET", "/v1/sandboxes/f")
        self.assertEqual(st, 200, j)
        self.assertEqual(j["lineage"], [{"id": "p", "at": t}])
        self.assertEqual(j["parent"], "p")
        self.assertEqual(self.curl("127.0.0.34", h)[:2], (200, None))
        self.assertEqual(self.curl("127.0.0.33", h)[:2], (200, None))


class RestoreTest(PersistCase):

    def test_restored_sandbox_works(self):
        self.register("vm", "127.0.0.35")
        h = self.md_handle("127.0.0.35")["handle"]
        at = int(time.time())                                   # the checkpoint
        self.after_second(at)
        later = self.md_handle("127.0.0.35")["handle"]          # not in the checkpoint
        rc, out, err = self.cli("add", "vm-restored", "--template", "agent", "--address",
                                "127.0.0.36/32", "--restored-from", "vm", "--at", str(at))
        self.assertEqual(rc, 0, err)
        self.assertIn("restored_from=vm@%d" % at, out)
        st, code, text = self.curl("127.0.0.36", h)
        self.assertEqual((st, code), (200, None), text[:400])
        st, code, text = self.curl("127.0.0.36", later)
        self.assertEqual((st, code), (407, "sandbox_mismatch"), text[:400])
        line = self.audit_lines(lambda ln: ln.get("source") == "127.0.0.36" and
                                ln.get("status") == 200, "the restored sandbox's line")[0]
        self.assertEqual((line["sandbox"], line["origin_sandbox"]), ("vm-restored", "vm"))

    def test_restore_of_a_sandbox_from_another_host(self):
        # another sidecar sharing the seal key minted a handle for vm-7 (unknown here)
        at = int(time.time()) - 60
        claims = sgtest.handle_claims("bearer", "vm-7", iat=at - 100, exp=at + 3000)
        h = sgtest.seal_handle(os.path.join(self.state, "keys", "seal.pub"), claims)
        self.register("vm-7b", "127.0.0.37", restored_from="vm-7", at=at)
        self.assertEqual(self.curl("127.0.0.37", h)[:2], (200, None))
        late = sgtest.seal_handle(os.path.join(self.state, "keys", "seal.pub"),
                                  sgtest.handle_claims("bearer", "vm-7", iat=at + 1,
                                                       exp=at + 3000))
        self.assertEqual(self.curl("127.0.0.37", late)[:2], (403, "sandbox_unknown"))
        st, j = self.admin("PUT", "/v1/sandboxes/vm-8", {
            "template": "agent", "addresses": ["127.0.0.38/32"], "restored_from": "vm-7",
            "at": int(time.time()) + 3600})
        self.assertEqual((st, j["error"]), (400, "bad_request"))


class SuspendTest(PersistCase):

    def test_suspended_refused_then_resumed(self):
        self.register("s", "127.0.0.39")
        h = self.md_handle("127.0.0.39")["handle"]
        auth = [("Authorization", "Bearer " + h)]
        authority = "%s:%d" % (API, self.echo.port)
        idle = sgtest.open_intercepted(self.sg, API, self.echo.port, source="127.0.0.39")
        self.addCleanup(idle.close)
        idle.send(sgtest.build_request("GET", "/v1/x", authority, auth))
        self.assertEqual(idle.read_response().status, 200)
        tunnel = sgtest.RawConn(self.sg, source="127.0.0.39")     # spliced, not intercepted
        self.addCleanup(tunnel.close)
        self.assertEqual(tunnel.connect("tunnel.example.test:%d" % self.echo.port).status, 200)
        rc, out, err = self.cli("suspend", "s")
        self.assertEqual(rc, 0, err)
        self.assertIn("suspended", out)
        # its idle connection and its tunnel are closed, nothing from its address is accepted
        self.assertTrue(idle.wait_closed(timeout=5), "idle connection still open")
        self.assertTrue(tunnel.wait_closed(timeout=5), "tunnel still open")
        self.assertEqual(self.curl("127.0.0.39", h)[:2], (403, "sandbox_suspended"))
        r = sgtest.proxied(self.sg, API, self.echo.port, target="/v1/x", headers=auth,
                           source="127.0.0.39")
        self.assertEqual((r.stage, r.status), ("connect", 403))
        self.assertIn("sandbox s is suspended", r.json()["message"])
        st, code, _ = self.md("127.0.0.39", "/v1/handles/bearer")
        self.assertEqual((st, code), (403, "sandbox_suspended"))
        self.assertEqual(sgtest.metrics_value(self.sg, "sealgate_sandboxes_suspended"), 1.0)
        self.assertEqual(
            sgtest.metrics_value(self.sg, "sealgate_suspended_connections_closed_total"), 2.0)
        st, j = self.admin("GET", "/v1/sandboxes/s")
        self.assertTrue(j["suspended"], j)
        self.audit_lines(lambda ln: ln.get("event") == "sandbox_suspended" and
                         ln.get("sandbox") == "s", "the sandbox_suspended line")
        self.audit_lines(lambda ln: ln.get("error") == "sandbox_suspended" and
                         ln.get("source") == "127.0.0.39", "the refused request's line")
        # resumed: the handle it held all along works again, and metadata answers
        rc, out, err = self.cli("resume", "s")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.curl("127.0.0.39", h)[:2], (200, None))
        self.assertEqual(self.md("127.0.0.39", "/v1/handles/bearer")[0], 200)
        self.assertEqual(sgtest.metrics_value(self.sg, "sealgate_sandboxes_suspended"), 0.0)
        self.assertEqual(sgtest.metrics_value(self.sg, "sealgate_sandbox_resumes_total"), 1.0)
        self.audit_lines(lambda ln: ln.get("event") == "sandbox_resumed",
                         "the sandbox_resumed line")

    def test_suspension_survives_restart_and_spares_others(self):
        self.register("s", "127.0.0.40")
        self.register("o", "127.0.0.41")
        h = self.md_handle("127.0.0.40")["handle"]
        ho = self.md_handle("127.0.0.41")["handle"]
        st, j = self.admin("PUT", "/v1/sandboxes/s/suspend")
        self.assertEqual((st, j["suspended"]), (200, True), j)
        st, j = self.admin("PUT", "/v1/sandboxes/s/suspend")    # again: nothing changes
        self.assertEqual((st, j["suspended"]), (200, True), j)
        self.assertEqual(self.admin("POST", "/v1/sandboxes/s/suspend")[0], 405)
        self.assertEqual(self.admin("PUT", "/v1/sandboxes/nope/suspend")[0], 404)
        self.assertEqual(self.curl("127.0.0.41", ho)[:2], (200, None))
        self.sg.kill9()
        self.sg = self.start()
        self.assertEqual(self.curl("127.0.0.40", h)[:2], (403, "sandbox_suspended"))
        self.assertEqual(self.curl("127.0.0.41", ho)[:2], (200, None))
        st, j = self.admin("PUT", "/v1/sandboxes/s/resume")
        self.assertEqual((st, j["suspended"]), (200, False), j)
        self.assertEqual(self.curl("127.0.0.40", h)[:2], (200, None))


if __name__ == "__main__":
    unittest.main()
