"""`sealgate serve` as a process: usage, located policy errors, privilege drop, no core dumps."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import sgtest

BIN = os.environ["SEALGATE_BIN"]


def wait_ready(proc, path, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        try:
            proc.wait(timeout=0.05)     # returns early if the process dies
            raise AssertionError("sealgate exited %s before ready" % proc.returncode)
        except subprocess.TimeoutExpired:
            pass
    raise AssertionError("sealgate not ready in %ss" % timeout)


class ServeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sgtest-serve-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])
        os.makedirs(os.path.join(self.dir, "keys"), mode=0o700)
        self.policy = os.path.join(self.dir, "policy.json")
        with open(self.policy, "w") as f:
            json.dump(sgtest.base_policy(), f)

    def serve(self, *extra):
        ready = os.path.join(self.dir, "ready.json")
        log = open(os.path.join(self.dir, "serve.log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen([BIN, "serve", "--policy", self.policy, "--ready-file", ready]
                             + list(extra), stdout=log, stderr=subprocess.STDOUT,
                             cwd=self.dir)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p, ready

    def log(self):
        with open(os.path.join(self.dir, "serve.log")) as f:
            return f.read()

    def test_usage_and_help(self):
        r = subprocess.run([BIN, "serve"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: sealgate serve", r.stderr)
        r = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--user NAME", r.stdout)
        r = subprocess.run([BIN, "serve", "--policy", self.policy, "--log-level", "loud"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)

    def test_bad_policy_is_located_and_exit_1(self):
        with open(self.policy, "w") as f:
            f.write('{"listen": {"proxy": "127.0.0.1:0"},\n  "credentials": {"c": {"hosts": 5}}}\n')
        r = subprocess.run([BIN, "serve", "--policy", self.policy], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("policy.json: credentials.c.hosts", r.stderr)
        with open(self.policy, "w") as f:
            f.write('{"listen": {\n  "proxy": }\n')
        r = subprocess.run([BIN, "serve", "--policy", self.policy], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"policy\.json:2:\d+: ")

    def test_drops_privileges_and_core_dumps(self):
        p, ready = self.serve("--user", "nobody")
        info = wait_ready(p, ready)
        # the ready file comes before the drop: wait for the uid to change
        deadline = time.monotonic() + 10
        uid = None
        while time.monotonic() < deadline:
            with open("/proc/%d/status" % info["pid"]) as f:
                uid = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
            if uid == ["65534"] * 4:
                break
            try:    # condition wait: returns early if the process dies
                p.wait(timeout=0.02)
                break
            except subprocess.TimeoutExpired:
                pass
        self.assertEqual(uid, ["65534"] * 4, self.log())
        with open("/proc/%d/limits" % info["pid"]) as f:
            core = [l for l in f if l.startswith("Max core file size")][0].split()
        self.assertEqual(core[4:6], ["0", "0"])
        self.assertIn("running as nobody", self.log())
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0, self.log())

    def test_unknown_user_refused(self):
        p, ready = self.serve("--user", "no-such-user-sealgate")
        self.assertEqual(p.wait(timeout=30), 1)
        self.assertIn("--user no-such-user-sealgate: no such user", self.log())


if __name__ == "__main__":
    unittest.main()
