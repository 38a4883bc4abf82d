"""Dynamic sandboxes: the admin API registers, forks and deletes sandboxes;
the metadata responder and the proxy recognise them; the journal survives restarts and
torn tails; the CLI drives the API.

Sandbox addresses are loopback aliases (127.0.0.x): requests leave from them with a bound
source address (curl --interface / source_address)."""
import http.client
import json
import os
import subprocess
import tempfile
import time
import shutil
import unittest

import sgtest

API = "api.example.test"
SECRET = "sk-dyn-" + os.urandom(12).hex()


def policy(port, state_dir):
    return {
        "credentials": {
            "bearer": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                       "hosts": ["%s:%d" % (API, port)], "ttl": "1h"}},
        "sandboxes": {"static-1": {"addresses": ["127.0.0.2/32"],
                                   "credentials": ["bearer"]}},
        "sandbox_templates": {"job": {"credentials": ["bearer"], "ttl": "10m"}},
        "state": {"dir": state_dir},
        "metadata": {"url": "http://169.254.169.254/v1/handles"},
    }


class SandboxCase(sgtest.TestCase):

    def setUp(self):
        self.echo = sgtest.EchoUpstream(self)
        self.addCleanup(self.echo.stop)
        self.state = tempfile.mkdtemp(prefix="sgtest-state-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.sg = self.start()

    def start(self):
        return sgtest.Sealgate(self, overrides=policy(self.echo.port, self.state))

    # ---- admin API
    def admin(self, method, path, body=None, sg=None, token=True):
        sg = sg or self.sg
        with open(os.path.join(sg.dir, "keys", "admin.token")) as f:
            tok = f.read().strip()
        c = http.client.HTTPConnection(sg.admin[0], sg.admin[1], timeout=10)
        hdr = {"Content-Type": "application/json"}
        if token:
            hdr["Authorization"] = "Bearer " + tok
        c.request(method, path, body=None if body is None else json.dumps(body), headers=hdr)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data.strip() else None)

    def register(self, sid, addrs, **kw):
        body = {"template": "job", "addresses": addrs}
        body.update(kw)
        return self.admin("PUT", "/v1/sandboxes/" + sid, body)

    # ---- metadata, from a sandbox address
    def md_handle(self, src, cred="bearer", sg=None):
        sg = sg or self.sg
        c = http.client.HTTPConnection(sg.metadata[0], sg.metadata[1], timeout=10,
                                       source_address=(src, 0))
        c.request("PUT", "/v1/token", headers={"X-Sealgate-Token-TTL": "60"})
        r = c.getresponse()
        tok = r.read().decode()
        self.assertEqual(r.status, 200, tok)
        c.request("GET", "/v1/handles/" + cred, headers={"X-Sealgate-Token": tok})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body[:300])
        return json.loads(body)

    def through(self, handle, src, sg=None):
        r = sgtest.proxied(sg or self.sg, API, self.echo.port, target="/v1/x",
                           headers=[("Authorization", "Bearer " + handle)], source=src)
        return r


class RegistryTest(SandboxCase):

    def test_register_mint_use_delete(self):
        st, j = self.register("sb-a", ["127.0.0.10/32"], labels={"owner": "ci"})
        self.assertEqual(st, 201, j)
        gen = j["generation"]
        st, j = self.register("sb-a", ["127.0.0.10/32"], labels={"owner": "ci"})
        self.assertEqual((st, j["generation"]), (200, gen), "idempotent PUT")
        h = self.md_handle("127.0.0.10")
        r = self.through(h["handle"], "127.0.0.10")
        self.assertEqual(r.status, 200, r.body[:300])
        st, j = self.admin("GET", "/v1/sandboxes")
        self.assertEqual([s["id"] for s in j["sandboxes"]], ["sb-a"])
        st, j = self.admin("GET", "/v1/sandboxes/sb-a")
        self.assertEqual((st, j["labels"]), (200, {"owner": "ci"}))
        st, j = self.admin("DELETE", "/v1/sandboxes/sb-a")
        self.assertEqual(st, 200, j)
        r = self.through(h["handle"], "127.0.0.10")     # the very next request
        self.assertEqual((r.status, r.header("X-Sealgate-Error")), (403, "revoked"))
        self.assertIn("sandbox sb-a was deleted", r.json()["message"])
        self.assertEqual(self.admin("GET", "/v1/sandboxes/sb-a")[0], 404)
        self.assertEqual(self.admin("DELETE", "/v1/sandboxes/sb-a")[0], 404)

    def test_errors(self):
        self.assertEqual(self.register("sb-a", ["127.0.0.10/32"])[0], 201)
        st, j = self.register("sb-b", ["127.0.0.8/29"])
        self.assertEqual((st, j["error"]), (409, "address_conflict"))
        self.assertIn("sb-a", j["message"])
        self.assertIn("sb-b", j["message"])
        st, j = self.register("sb-c", ["127.0.0.2/32"])
        self.assertEqual((st, j["error"]), (409, "address_conflict"))
        self.assertIn("static-1", j["message"])
        st, j = self.admin("PUT", "/v1/sandboxes/sb-d",
                           {"template": "nope", "addresses": ["127.0.0.20/32"]})
        self.assertEqual((st, j["error"]), (422, "unknown_template"))
        st, j = self.admin("PUT", "/v1/sandboxes/sb-d", {"addresses": "x"})
        self.assertEqual((st, j["error"]), (400, "bad_request"))
        st, _ = self.admin("PUT", "/v1/sandboxes/sb-d",
                           {"template": "job", "addresses": ["127.0.0.20/32"]}, token=False)
        self.assertEqual(st, 401)

    def test_fork(self):
        self.assertEqual(self.register("parent", ["127.0.0.10/32"], labels={"k": "v"})[0], 201)
        h = self.md_handle("127.0.0.10")["handle"]
        st, j = self.admin("POST", "/v1/sandboxes/parent/fork",
                           {"id": "child", "addresses": ["127.0.0.11/32"]})
        self.assertEqual(st, 201, j)
        self.assertEqual((j["template"], j["labels"], j["parent"]), ("job", {"k": "v"}, "parent"))
        st, j = self.admin("POST", "/v1/sandboxes/parent/fork",
                           {"id": "child", "addresses": ["127.0.0.12/32"]})
        self.assertEqual((st, j["error"]), (409, "exists"))
        # the parent's handle from before the fork is the child's too (test_persist.py)
        self.assertEqual(self.through(h, "127.0.0.11").status, 200)
        # a third sandbox is no copy of the parent: 407 naming the owner
        self.assertEqual(self.register("other", ["127.0.0.17/32"])[0], 201)
        r = self.through(h, "127.0.0.17")
        self.assertEqual((r.status, r.header("X-Sealgate-Error")), (407, "sandbox_mismatch"))
        msg = r.json()["message"]
        self.assertIn("parent", msg)
        self.assertIn("http://169.254.169.254/v1/handles", msg)
        hc = self.md_handle("127.0.0.11")["handle"]
        self.assertEqual(self.through(hc, "127.0.0.11").status, 200)
        self.assertEqual(self.through(h, "127.0.0.10").status, 200)

    def test_expiry(self):
        st, j = self.register("sb-e", ["127.0.0.13/32"], expires_at=int(time.time()) + 2)
        self.assertEqual(st, 201, j)
        h = self.md_handle("127.0.0.13")["handle"]
        self.assertEqual(self.through(h, "127.0.0.13").status, 200)

        def refused():
            r = self.through(h, "127.0.0.13")
            return r.status == 403 and r.header("X-Sealgate-Error") == "revoked"
        sgtest.wait_for(refused, timeout=10, interval=0.2, what="expiry")
        sgtest.wait_for(lambda: self.admin("GET", "/v1/sandboxes/sb-e")[0] == 404,
                        timeout=10, interval=0.2, what="the sweep")

    def test_restart_and_torn_tail(self):
        self.assertEqual(self.register("sb-a", ["127.0.0.10/32"])[0], 201)
        self.assertEqual(self.register("sb-b", ["127.0.0.14/32"])[0], 201)
        self.assertEqual(self.sg.stop(), 0)
        sg2 = self.start()
        st, j = self.admin("GET", "/v1/sandboxes", sg=sg2)
        self.assertEqual(sorted(s["id"] for s in j["sandboxes"]), ["sb-a", "sb-b"])
        h = self.md_handle("127.0.0.14", sg=sg2)["handle"]
        self.assertEqual(self.through(h, "127.0.0.14", sg=sg2).status, 200)
        self.assertEqual(sg2.stop(), 0)
        with open(os.path.join(self.state, "registry.journal"), "ab") as f:
            f.write(b"\x40\x00\x00\x00garbage-torn-tail")
        sg3 = self.start()
        st, j = self.admin("GET", "/v1/sandboxes", sg=sg3)
        self.assertEqual(sorted(s["id"] for s in j["sandboxes"]), ["sb-a", "sb-b"])
        self.assertIn("dropping the last", sg3.log())


class CliTest(SandboxCase):

    def cli(self, *args):
        # the policy says admin 127.0.0.1:0 (kernel-picked): name the bound port
        conn = ["--policy", self.sg.policy_path, "--admin", "%s:%d" % self.sg.admin]
        r = subprocess.run([sgtest.SEALGATE_BIN, "sandbox"] + list(args) + conn,
                           capture_output=True, timeout=30, cwd=self.sg.dir)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_add_list_fork_rm(self):
        rc, out, err = self.cli("add", "sb-c", "--template", "job", "--address",
                                "127.0.0.15/32", "--label", "owner=cli", "--expires", "1h")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("list")
        self.assertEqual(rc, 0, err)
        self.assertIn("sb-c", out)
        self.assertIn("owner=cli", out)
        rc, out, err = self.cli("fork", "sb-c", "sb-c2", "--address", "127.0.0.16/32")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("list", "--json")
        self.assertEqual(sorted(s["id"] for s in json.loads(out)["sandboxes"]),
                         ["sb-c", "sb-c2"])
        rc, out, err = self.cli("add", "sb-x", "--template", "job", "--address", "127.0.0.15")
        self.assertEqual(rc, 1)
        self.assertIn("address_conflict", err)
        rc, out, err = self.cli("rm", "sb-c")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("rm", "sb-c")
        self.assertEqual(rc, 1)
        rc, out, err = self.cli("frobnicate")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main()
