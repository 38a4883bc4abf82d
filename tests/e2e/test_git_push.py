"""git push policy (credentials' "git": {"push": ...}) with a real git client and a real
git http-backend behind TLS.

  GitServer      threaded TLS HTTP server on 127.0.0.3:0 (certificate from the test CA)
                 running `git http-backend` as a CGI over bare repositories; it answers
                 401 unless Authorization is Basic of the REAL secret, and records every
                 request (path, Authorization, body) so tests can check what reached it.
  GitPushTest    git push through sealgate (HTTPS_PROXY, GIT_SSL_CAINFO = sealgate's CA,
                 the handle in http.extraHeader as Basic): a push to an allowed ref
                 updates the server; a push to main, a delete, a handle narrowed with
                 --git-ref are refused with sealgate's reason printed by git and the
                 server's refs unchanged (no receive-pack request reached it); a
                 fast-forward of an allowed ref goes through; clone and fetch work; the
                 handle never reaches the server; the refusal is audited and counted.
                 A push larger than http.postBuffer (probe, then a chunked body) is
                 decided on its commands and streamed. Force ("force" false, the
                 default): a rewrite of an allowed ref is refused (small: held whole;
                 large: streamed but the pack's checksum held back and never sent), the
                 server unchanged; a fast-forward passes; a credential with "force": true
                 lets the rewrite through.
  GitPolicyTest  a "force" that is not a boolean is refused at load, located.
"""
import base64
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest
import urllib.request

import sgtest

GIT_HOST = "git.example.test"
SECRET = "ghs_" + os.urandom(16).hex()
USER = "x-access-token"


class _GitHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _cgi(self, body):
        path, _, query = self.path.partition("?")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "GIT_PROJECT_ROOT": self.server.root, "GIT_HTTP_EXPORT_ALL": "1",
               "REMOTE_USER": "agent", "REMOTE_ADDR": "127.0.0.1",
               "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body))}
        r = subprocess.run(["git", "http-backend"], input=body, capture_output=True,
                           env=env, timeout=60)
        head, _, out = r.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        return status, headers, out

    def _handle(self):
        try:
            body = self._body() if self.command == "POST" else b""
        except (ValueError, OSError):       # the body was cut short: no CGI run
            self.server.record({"method": self.command, "path": self.path, "cut": True,
                                "auth": "", "body": b"", "headers": {}})
            self.close_connection = True
            return
        auth = self.headers.get("Authorization", "")
        self.server.record({"method": self.command, "path": self.path, "auth": auth,
                            "body": body, "headers": dict(self.headers)})
        want = "Basic " + base64.b64encode(("%s:%s" % (USER, SECRET)).encode()).decode()
        if auth != want:
            self._answer(401, [("WWW-Authenticate", 'Basic realm="git"')], b"no\n")
            return
        self._answer(*self._cgi(body))

    do_GET = _handle
    do_POST = _handle


class _GitServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, ctx, root):
        super().__init__(addr, _GitHandler)
        self.root = root
        self.ctx = ctx
        self.lock = threading.Lock()
        self.log = []

    def get_request(self):
        sock, addr = super().get_request()
        return self.ctx.wrap_socket(sock, server_side=True), addr

    def record(self, info):
        with self.lock:
            self.log.append(info)


class GitServer:
    def __init__(self, testcase):
        pki = sgtest.PKI.get()
        cert, key = pki.ensure_leaf("git", GIT_HOST, ["DNS:" + GIT_HOST])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.root = tempfile.mkdtemp(prefix="sgtest-git-")
        self.srv = _GitServer((sgtest.UPSTREAM_ADDR, 0), ctx, self.root)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        testcase.addClassCleanup(self.stop)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
        shutil.rmtree(self.root, ignore_errors=True)

    def requests(self):
        with self.srv.lock:
            return list(self.srv.log)

    def bare(self, name):
        path = os.path.join(self.root, name)
        git("init", "-q", "--bare", "-b", "main", path)
        return path

    def ref(self, repo, ref):
        r = subprocess.run(["git", "-C", os.path.join(self.root, repo), "rev-parse",
                            "--verify", "-q", ref], capture_output=True, text=True)
        return r.stdout.strip() or None


def _env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
           and not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.test",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.test"})
    env.update(extra or {})
    return env


def git(*args, cwd=None, env=None, check=True):
    r = subprocess.run(["git"] + list(args), cwd=cwd, env=env or _env(),
                       capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("git %s exited %d:\n%s" % (" ".join(args), r.returncode,
                                                      sgtest.redact(r.stderr, [SECRET])))
    return r


class GitPushTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = GitServer(cls)
        hostport = "%s:%d" % (GIT_HOST, cls.server.port)
        creds = {"gh": {"secret": {"value": SECRET},
                        "inject": {"type": "basic", "username": USER},
                        "hosts": [hostport],
                        "git": {"push": {"refs": ["refs/heads/agent/*", "refs/tags/agent-**"],
                                         "delete": False}}},
                 "ghforce": {"secret": {"value": SECRET},
                             "inject": {"type": "basic", "username": USER},
                             "hosts": [hostport],
                             "git": {"push": {"refs": ["refs/heads/agent/*"],
                                              "force": True}}}}
        pol = sgtest.base_policy(resolve={GIT_HOST: sgtest.UPSTREAM_ADDR})
        pol["credentials"] = creds
        pol["sandboxes"] = {"sb-1": {"addresses": ["127.0.0.1/32"],
                                     "credentials": ["gh", "ghforce"]}}
        cls.sg = sgtest.Sealgate(cls, pol)
        cls.url = "https://%s/repo.git" % hostport
        cls.home = tempfile.mkdtemp(prefix="sgtest-githome-")
        cls.addClassCleanup(shutil.rmtree, cls.home, True)
        cls.handle = cls.mint()
        cls.server.bare("repo.git")

    @classmethod
    def mint(cls, *extra, credential="gh"):
        args = ["handle", "mint", "--policy", cls.sg.policy_path, "--sandbox", "sb-1",
                "--credential", credential, "--json"] + list(extra)
        rc, out, err = sgtest.sealgate_cli(*args)
        if rc != 0:
            raise AssertionError("handle mint exited %d: %s" % (rc, err))
        return json.loads(out)["handle"]

    def genv(self):
        return _env({"HOME": self.home, "HTTPS_PROXY": self.sg.proxy_url,
                     "GIT_SSL_CAINFO": self.sg.ca_cert})

    def run_git(self, *args, handle=None, cwd=None, check=True):
        basic = base64.b64encode(("%s:%s" % (USER, handle or self.handle)).encode()).decode()
        return git("-c", "http.extraHeader=Authorization: Basic " + basic, *args, cwd=cwd,
                   env=self.genv(), check=check)

    def work(self):
        """A clone of the server's repo with one new commit on top; returns its path."""
        d = tempfile.mkdtemp(prefix="sgtest-gitwork-", dir=self.home)
        self.run_git("clone", "-q", self.url, d)
        with open(os.path.join(d, "f.txt"), "a") as f:
            f.write(os.urandom(8).hex() + "\n")
        git("add", "f.txt", cwd=d, env=self.genv())
        git("commit", "-q", "-m", "c", cwd=d, env=self.genv())
        return d

    def receive_packs(self):
        return [r for r in self.server.requests() if r["method"] == "POST"
                and r["path"].endswith("/git-receive-pack") and not r.get("cut")]

    def assert_refused(self, r, ref, why):
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIn("sealgate: %s %s" % (ref, why), r.stderr)
        self.assertIn("[remote rejected]", r.stderr)

    def test_1_push_allowed_ref_then_fast_forward(self):
        d = self.work()
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/x", cwd=d)
        head = git("rev-parse", "HEAD", cwd=d).stdout.strip()
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/x"), head)
        with open(os.path.join(d, "f.txt"), "a") as f:
            f.write("more\n")
        git("commit", "-qam", "ff", cwd=d, env=self.genv())
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/x", cwd=d)
        head2 = git("rev-parse", "HEAD", cwd=d).stdout.strip()
        self.assertNotEqual(head, head2)
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/x"), head2)
        # a tag under refs/tags/agent-** ('**' crosses '/')
        self.run_git("push", "-q", "origin", "HEAD:refs/tags/agent-1/rc", cwd=d)
        self.assertEqual(self.server.ref("repo.git", "refs/tags/agent-1/rc"), head2)

    def test_2_push_to_main_refused(self):
        d = self.work()
        before = len(self.receive_packs())
        r = self.run_git("push", "origin", "HEAD:refs/heads/main", cwd=d, check=False)
        self.assert_refused(r, "refs/heads/main", "is outside this credential's push refs "
                            "(refs/heads/agent/*, refs/tags/agent-**)")
        self.assertIn("remote: sealgate: refs/heads/main is outside", r.stderr)
        self.assertIsNone(self.server.ref("repo.git", "refs/heads/main"))
        self.assertEqual(len(self.receive_packs()), before, "a refused push reached the server")
        audit = open(os.path.join(self.sg.dir, "audit.log")).read()
        self.assertIn("git_push_refused", audit)
        self.assertIn("refs/heads/main (outside push refs)", audit)
        self.assertIn("git push toward", self.sg.log())
        metrics = urllib.request.urlopen("http://%s:%d/metrics" % self.sg.admin,
                                         timeout=10).read().decode()
        self.assertRegex(metrics, r"sealgate_git_push_refused_total [1-9]")

    def test_3_one_refused_ref_refuses_the_push(self):
        d = self.work()
        r = self.run_git("push", "origin", "HEAD:refs/heads/agent/y", "HEAD:refs/heads/dev",
                         cwd=d, check=False)
        self.assert_refused(r, "refs/heads/dev", "is outside this credential's push refs")
        self.assertIn("another ref of this push is refused", r.stderr)
        self.assertIsNone(self.server.ref("repo.git", "refs/heads/agent/y"))

    def test_4_delete_refused(self):
        d = self.work()
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/del", cwd=d)
        head = self.server.ref("repo.git", "refs/heads/agent/del")
        self.assertIsNotNone(head)
        r = self.run_git("push", "origin", ":refs/heads/agent/del", cwd=d, check=False)
        self.assert_refused(r, "deleting", "refs/heads/agent/del is not allowed")
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/del"), head)

    def test_5_narrowed_handle(self):
        narrow = self.mint("--git-ref", "refs/heads/agent/only")
        d = self.work()
        r = self.run_git("push", "origin", "HEAD:refs/heads/agent/other", cwd=d,
                         handle=narrow, check=False)
        self.assert_refused(r, "refs/heads/agent/other", "is outside this handle's push "
                            "refs (refs/heads/agent/only)")
        self.assertIsNone(self.server.ref("repo.git", "refs/heads/agent/other"))
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/only", cwd=d,
                     handle=narrow)
        self.assertIsNotNone(self.server.ref("repo.git", "refs/heads/agent/only"))
        # beyond the credential's patterns: refused at mint
        rc, out, err = sgtest.sealgate_cli("handle", "mint", "--policy",
                                           self.sg.policy_path, "--sandbox", "sb-1",
                                           "--credential", "gh", "--git-ref",
                                           "refs/heads/main")
        self.assertNotEqual(rc, 0)
        self.assertIn("refs/heads/main", err)
        self.assertIn("not within", err)

    def test_6_fetch_and_clone_unaffected(self):
        d = self.work()
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/fetchme", cwd=d)
        c = tempfile.mkdtemp(prefix="sgtest-gitclone-", dir=self.home)
        self.run_git("clone", "-q", "-b", "agent/fetchme", self.url, c)
        self.assertEqual(git("rev-parse", "HEAD", cwd=c).stdout.strip(),
                         git("rev-parse", "HEAD", cwd=d).stdout.strip())
        self.run_git("fetch", "-q", "origin", cwd=c)

    def test_7_handle_never_reaches_server(self):
        d = self.work()
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/z", cwd=d)
        want = "Basic " + base64.b64encode(("%s:%s" % (USER, SECRET)).encode()).decode()
        reqs = self.server.requests()
        self.assertTrue(reqs)
        hid = self.handle.encode()
        for r in reqs:
            if r.get("cut"):
                continue
            self.assertEqual(r["auth"], want)
            self.assertNotIn(hid, r["body"])
            self.assertNotIn(self.handle, json.dumps(r["headers"]))


    def test_8_large_push_streams(self):
        """A push larger than http.postBuffer: git probes with "0000", then sends the
        body chunked; sealgate decides on the commands and streams the pack after them."""
        d = self.work()
        with open(os.path.join(d, "big.bin"), "wb") as f:
            f.write(os.urandom(600 * 1024))
        git("add", "big.bin", cwd=d, env=self.genv())
        git("commit", "-qm", "big", cwd=d, env=self.genv())
        self.run_git("-c", "http.postBuffer=65536", "push", "-q", "origin",
                     "HEAD:refs/heads/agent/big", cwd=d)
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/big"),
                         git("rev-parse", "HEAD", cwd=d).stdout.strip())
        posts = [r for r in self.receive_packs() if len(r["body"]) > 600 * 1024]
        self.assertTrue(posts, "no large receive-pack body reached the server")
        self.assertEqual(posts[-1]["headers"].get("Transfer-Encoding"), "chunked")
        # released on the commands, not held whole (the debug log names the phases)
        self.assertIn("request holding -> streaming", self.sg.log())
        r = self.run_git("-c", "http.postBuffer=65536", "push", "origin",
                         "HEAD:refs/heads/main", cwd=d, check=False)
        self.assert_refused(r, "refs/heads/main", "is outside this credential's push refs")
        self.assertIsNone(self.server.ref("repo.git", "refs/heads/main"))


    def rewrite(self, d):
        """Replace the last commit of work tree d (amend): a non-fast-forward."""
        with open(os.path.join(d, "f.txt"), "a") as f:
            f.write("rewritten\n")
        git("commit", "-qa", "--amend", "-m", "rewritten", cwd=d, env=self.genv())
        return git("rev-parse", "HEAD", cwd=d).stdout.strip()

    def test_9_force_push_refused(self):
        d = self.work()
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/f", cwd=d)
        head = self.server.ref("repo.git", "refs/heads/agent/f")
        self.rewrite(d)
        r = self.run_git("push", "--force", "origin", "HEAD:refs/heads/agent/f", cwd=d,
                         check=False)
        self.assert_refused(r, "refs/heads/agent/f:", "not a fast-forward of " + head[:12])
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/f"), head)
        audit = open(os.path.join(self.sg.dir, "audit.log")).read()
        self.assertIn("refs/heads/agent/f (not a proven fast-forward)", audit)
        # a fast-forward on top of the server's commit goes through
        git("reset", "-q", "--hard", head, cwd=d, env=self.genv())
        with open(os.path.join(d, "g.txt"), "w") as f:
            f.write("ff\n")
        git("add", "g.txt", cwd=d, env=self.genv())
        git("commit", "-qm", "ff", cwd=d, env=self.genv())
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/f", cwd=d)
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/f"),
                         git("rev-parse", "HEAD", cwd=d).stdout.strip())

    def test_10_large_force_push_cut_short(self):
        """Streamed (chunked) force push: the pack goes upstream but its checksum never
        does; the server updates nothing and git prints sealgate's reason."""
        d = self.work()
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/bigf", cwd=d)
        head = self.server.ref("repo.git", "refs/heads/agent/bigf")
        with open(os.path.join(d, "big2.bin"), "wb") as f:
            f.write(os.urandom(600 * 1024))
        git("add", "big2.bin", cwd=d, env=self.genv())
        self.rewrite(d)
        r = self.run_git("-c", "http.postBuffer=65536", "push", "--force", "origin",
                         "HEAD:refs/heads/agent/bigf", cwd=d, check=False)
        self.assert_refused(r, "refs/heads/agent/bigf:", "not a fast-forward")
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/bigf"), head)
        self.assertIn("request holding -> streaming", self.sg.log())
        cut = [q for q in self.server.requests() if q.get("cut")]
        self.assertTrue(cut and cut[-1]["path"].endswith("/git-receive-pack"),
                        "the server did not see the streamed push cut short")

    def test_11_force_allowed_credential(self):
        h = self.mint(credential="ghforce")
        d = self.work()
        self.run_git("push", "-q", "origin", "HEAD:refs/heads/agent/rw", cwd=d, handle=h)
        new = self.rewrite(d)
        self.run_git("push", "-q", "--force", "origin", "HEAD:refs/heads/agent/rw", cwd=d,
                     handle=h)
        self.assertEqual(self.server.ref("repo.git", "refs/heads/agent/rw"), new)


class GitPolicyTest(sgtest.TestCase):
    def test_force_not_boolean_refused_at_load(self):
        pol = sgtest.base_policy()
        pol["credentials"] = {"gh": {"secret": {"value": SECRET},
                                     "inject": {"type": "basic", "username": USER},
                                     "hosts": [GIT_HOST],
                                     "git": {"push": {"refs": ["refs/heads/agent/*"],
                                                      "force": "no"}}}}
        d = tempfile.mkdtemp(prefix="sgtest-gitpol-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "p.json")
        with open(path, "w") as f:
            json.dump(pol, f)
        rc, out, err = sgtest.sealgate_cli("policy", "check", path)
        self.assertNotEqual(rc, 0)
        self.assertIn("p.json: credentials.gh.git.push.force: expected true or false, got a "
                      "string", out + err)


if __name__ == "__main__":
    unittest.main()
