"""sealgate revoke, end to end: the revocations file it writes, its refusals and exit codes.

A temp dir holds a key pair (sealgate keygen), a policy whose revocations.file is
"revocations.json" beside it, and a credential given as {"value": ...}. Handles come from
`sealgate handle mint --json`; the test checks what lands in the file and its mode.
"""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

BIN = os.environ["SEALGATE_BIN"]
SECRET = "sk-live-DO-NOT-PRINT-revoke-0123456789"
TOKEN = "sb-token-DO-NOT-PRINT-42"


def run(*args):
    """Run sealgate with args; return (exit code, stdout, stderr) as text."""
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


class RevokeCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sg-revoke-")
        rc, out, err = run("keygen", "--out", self.dir)
        self.assertEqual(rc, 0, err)
        self.key_id = out.split("key id: ")[1].split()[0]
        self.revfile = os.path.join(self.dir, "revocations.json")
        self.policy = self.write_policy("policy.json", revocations=True)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write_policy(self, name, revocations):
        policy = {
            "keys": {"seal_key": "seal.key", "ca_cert": "ca.crt", "ca_key": "ca.key"},
            "credentials": {
                "openai": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                           "hosts": ["api.openai.com"]},
                "github": {"secret": {"value": "x" + SECRET}, "inject": {"type": "bearer"},
                           "hosts": ["api.github.com"]},
            },
            "sandboxes": {"sb-1": {"addresses": ["10.0.2.15/32"],
                                   "credentials": ["openai", "github"],
                                   "token": {"value": TOKEN}}},
        }
        if revocations:
            policy["revocations"] = {"file": "revocations.json"}
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(policy, f)
        return path

    def mint(self):
        rc, out, err = run("handle", "mint", "--policy", self.policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def revoke(self, *args):
        rc, out, err = run("revoke", "--policy", self.policy, *args)
        for text in (out, err):
            self.assertNotIn(SECRET, text)
            self.assertNotIn(TOKEN, text)
            self.assertNotIn("sgh1.", text)
        return rc, out, err

    def revocations(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.revfile).st_mode), 0o600)
        with open(self.revfile) as f:
            return json.load(f)

    # --- each kind ------------------------------------------------------------------------

    def test_revoke_handle_id(self):
        minted = self.mint()
        hid = minted["handle_id"]
        self.assertFalse(os.path.exists(self.revfile))
        t0 = int(time.time())
        rc, out, err = self.revoke("--handle-id", hid)
        self.assertEqual(rc, 0, err)
        self.assertIn("revoked handle " + hid, out)
        doc = self.revocations()
        self.assertEqual(list(doc["handles"]), [hid])
        self.assertTrue(t0 <= doc["handles"][hid] <= int(time.time()))
        # again: nothing changes, still exit 0
        with open(self.revfile) as f:
            before = f.read()
        rc, out, err = self.revoke("--handle-id", hid.upper())
        self.assertEqual(rc, 0, err)
        self.assertIn("already revoked", out)
        with open(self.revfile) as f:
            self.assertEqual(f.read(), before)

    def test_revoke_sandbox_json(self):
        self.mint()
        rc, out, err = self.revoke("--sandbox", "sb-1", "--json")
        self.assertEqual(rc, 0, err)
        shown = json.loads(out)
        self.assertEqual(shown["kind"], "sandbox")
        self.assertEqual(shown["value"], "sb-1")
        self.assertEqual(shown["file"], self.revfile)
        self.assertTrue(shown["changed"])
        self.assertEqual(self.revocations()["sandboxes"], {"sb-1": shown["revoked_at"]})

    def test_revoke_credential_and_key_keep_others(self):
        rc, out, err = self.revoke("--credential", "github")
        self.assertEqual(rc, 0, err)
        self.assertIn("revoked credential github", out)
        self.assertIn("new ones work", out)
        handle = self.mint()["handle"]
        self.assertEqual(handle.split(".")[1], self.key_id)
        rc, out, err = self.revoke("--key", self.key_id.upper())
        self.assertEqual(rc, 0, err)
        doc = self.revocations()
        self.assertEqual(set(doc["credentials"]), {"github"})
        self.assertEqual(set(doc["keys"]), {self.key_id})   # stored lower-case

    def test_help(self):
        rc, out, err = run("revoke", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: sealgate revoke --policy PATH", out)

    # --- refusals -------------------------------------------------------------------------

    def test_bad_values_exit_2(self):
        cases = [
            ["--handle-id", "xyz"],
            ["--handle-id", "0" * 31],
            ["--key", "123"],
            ["--key", "a1b2c3d4e5"],
            ["--sandbox", ""],
            [],                                             # nothing to revoke
            ["--sandbox", "sb-1", "--credential", "openai"],  # two things
            ["--sandbox"],                                  # missing value
            ["--bogus"],
        ]
        for args in cases:
            rc, out, err = self.revoke(*args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn("usage:", err)
        rc, out, err = run("revoke", "--sandbox", "sb-1")   # no --policy
        self.assertEqual(rc, 2, err)
        self.assertFalse(os.path.exists(self.revfile))

    def test_unknown_names_exit_1(self):
        rc, out, err = self.revoke("--sandbox", "sb-nope")
        self.assertEqual(rc, 1)
        self.assertIn("no sandbox 'sb-nope'", err)
        rc, out, err = self.revoke("--credential", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("no credential 'nope'", err)
        self.assertFalse(os.path.exists(self.revfile))

    def test_policy_problems_exit_1(self):
        self.policy = self.write_policy("norev.json", revocations=False)
        rc, out, err = self.revoke("--sandbox", "sb-1")
        self.assertEqual(rc, 1)
        self.assertIn("revocations.file", err)
        self.policy = os.path.join(self.dir, "missing.json")
        rc, out, err = self.revoke("--sandbox", "sb-1")
        self.assertEqual(rc, 1)

    def test_malformed_file_left_alone(self):
        with open(self.revfile, "w") as f:
            f.write('{"handles": {"not-a-hid": 1}}')
        rc, out, err = self.revoke("--sandbox", "sb-1")
        self.assertEqual(rc, 1)
        self.assertIn("revocations.json: handles.not-a-hid:", err)
        with open(self.revfile) as f:
            self.assertEqual(f.read(), '{"handles": {"not-a-hid": 1}}')


if __name__ == "__main__":
    unittest.main()
