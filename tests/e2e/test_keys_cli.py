"""sealgate keygen / ca init / seal / unseal / handle mint, end to end.

Interoperability with tokenizer's format is checked against PyNaCl both ways:
tokens sealed by PyNaCl open with `sealgate unseal`, and tokens from `sealgate seal`
open with PyNaCl using the hex private key from seal.key.
"""
import base64
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from nacl.public import PrivateKey, PublicKey, SealedBox

BIN = os.environ["SEALGATE_BIN"]
SECRET = "sk-live-DO-NOT-PRINT-0123456789abcdef"


def run(*args, stdin=None):
    """Run sealgate with args; return (exit code, stdout, stderr) as text."""
    p = subprocess.run([BIN] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


class KeysCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sg-keys-")
        self.key = os.path.join(self.dir, "seal.key")
        self.pub = os.path.join(self.dir, "seal.pub")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def keygen(self):
        rc, out, err = run("keygen", "--out", self.dir)
        self.assertEqual(rc, 0, err)
        return out

    def read(self, path):
        with open(path) as f:
            return f.read()

    # --- keygen -----------------------------------------------------------------------

    def test_keygen_files_and_modes(self):
        out = self.keygen()
        self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.pub).st_mode), 0o644)
        sk_hex, pk_hex = self.read(self.key), self.read(self.pub)
        self.assertRegex(sk_hex, r"^[0-9a-f]{64}\n$")
        self.assertRegex(pk_hex, r"^[0-9a-f]{64}\n$")
        # seal.pub is the public half of seal.key
        sk = PrivateKey(bytes.fromhex(sk_hex.strip()))
        self.assertEqual(bytes(sk.public_key).hex(), pk_hex.strip())
        self.assertIn(pk_hex.strip(), out)
        # key id = first 4 bytes of BLAKE2b-256 of the public key
        import hashlib
        kid = hashlib.blake2b(bytes.fromhex(pk_hex.strip()), digest_size=32).hexdigest()[:8]
        self.assertIn("key id: " + kid, out)

    def test_keygen_refuses_overwrite_then_force(self):
        self.keygen()
        before = self.read(self.key)
        rc, out, err = run("keygen", "--out", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn("--force", err)
        self.assertEqual(len(err.strip().splitlines()), 1)
        self.assertEqual(self.read(self.key), before)
        rc, out, err = run("keygen", "--out", self.dir, "--force")
        self.assertEqual(rc, 0, err)
        self.assertNotEqual(self.read(self.key), before)

    # --- tokenizer interoperability -------------------------------------------------------

    def test_pynacl_sealed_token_opens_with_unseal(self):
        self.keygen()
        pk = PublicKey(bytes.fromhex(self.read(self.pub).strip()))
        secret = {"inject_processor": {"token": SECRET}, "bearer_auth": {"digest": "ZGln"},
                  "allowed_hosts": ["api.example.com"]}
        token = base64.b64encode(SealedBox(pk).encrypt(json.dumps(secret).encode())).decode()
        rc, out, err = run("unseal", "--key", self.key, token)
        self.assertEqual(rc, 0, err)
        shown = json.loads(out)
        self.assertEqual(shown["allowed_hosts"], ["api.example.com"])
        self.assertEqual(shown["bearer_auth"], {"digest": "ZGln"})
        self.assertEqual(shown["inject_processor"]["token"],
                         "[redacted, %d bytes]" % len(SECRET))
        self.assertNotIn(SECRET, out + err)
        # from stdin too
        rc, out2, err = run("unseal", "--key", self.key, "-", stdin=token + "\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out2, out)

    def test_sealgate_token_opens_with_pynacl(self):
        self.keygen()
        secret = {"inject_processor": {"token": SECRET}, "allowed_hosts": ["x.test"]}
        rc, out, err = run("seal", "--pub", self.pub, stdin=json.dumps(secret))
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith("\n"))
        token = out.strip()
        self.assertNotIn(SECRET, out)
        sk = PrivateKey(bytes.fromhex(self.read(self.key).strip()))
        plain = SealedBox(sk).decrypt(base64.b64decode(token, validate=True))
        self.assertEqual(json.loads(plain), secret)
        # seal.key works as the recipient file too (its public half is used)
        rc, out, err = run("seal", "--pub", self.key, stdin=json.dumps(secret))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(SealedBox(sk).decrypt(base64.b64decode(out.strip()))),
                         secret)

    def test_redaction_of_every_secret_key(self):
        self.keygen()
        names = ["token", "key", "secret", "access_token", "refresh_token", "password",
                 "value"]
        secret = {"oauth2_processor": {"token": {n: SECRET + n for n in names}},
                  "inject_hmac_processor": {"key": SECRET + "hmac", "hash": "sha256"},
                  "list": [{"password": SECRET + "pw"}]}
        rc, out, err = run("seal", "--pub", self.pub, stdin=json.dumps(secret))
        self.assertEqual(rc, 0, err)
        rc, shown, err = run("unseal", "--key", self.key, out.strip())
        self.assertEqual(rc, 0, err)
        self.assertNotIn(SECRET, shown)
        doc = json.loads(shown)
        self.assertEqual(doc["inject_hmac_processor"]["hash"], "sha256")
        self.assertEqual(doc["oauth2_processor"]["token"]["refresh_token"],
                         "[redacted, %d bytes]" % len(SECRET + "refresh_token"))
        self.assertEqual(doc["list"][0]["password"], "[redacted, %d bytes]" % len(SECRET + "pw"))

    def test_seal_rejects_non_object(self):
        self.keygen()
        for bad in ["[1, 2]", "not json", "", '"str"']:
            rc, out, err = run("seal", "--pub", self.pub, stdin=bad)
            self.assertEqual(rc, 1, bad)
            self.assertEqual(out, "")
            self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_unseal_failures(self):
        self.keygen()
        other = PrivateKey.generate()
        token = base64.b64encode(SealedBox(other.public_key).encrypt(b"{}")).decode()
        rc, out, err = run("unseal", "--key", self.key, token)
        self.assertEqual(rc, 1)
        self.assertIn("does not open", err)
        rc, out, err = run("unseal", "--key", self.key, "!!notbase64!!")
        self.assertEqual(rc, 1)
        os.chmod(self.key, 0o644)
        rc, out, err = run("unseal", "--key", self.key, token)
        self.assertEqual(rc, 1)
        self.assertIn("chmod 600", err)

    # --- usage ------------------------------------------------------------------------

    def test_help_and_usage_exit_codes(self):
        for cmd in (["keygen"], ["ca"], ["seal"], ["unseal"], ["handle"]):
            rc, out, err = run(*(cmd + ["--help"]))
            self.assertEqual(rc, 0, cmd)
            self.assertIn("usage: sealgate " + cmd[0], out)
        usage = [["keygen"], ["keygen", "--out"], ["keygen", "--out", self.dir, "--bogus"],
                 ["ca"], ["ca", "init"], ["ca", "frob", "--dir", self.dir],
                 ["seal"], ["seal", "--pub"], ["unseal", "--key", self.key],
                 ["unseal", "tok"], ["handle"], ["handle", "mint", "--policy", "p.json"],
                 ["handle", "revoke"]]
        for args in usage:
            rc, out, err = run(*args)
            self.assertEqual(rc, 2, args)
            self.assertIn("usage:", err)

    # --- ca init ----------------------------------------------------------------------

    def openssl_text(self, path):
        p = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", path],
                           capture_output=True, text=True, check=True)
        return p.stdout

    def test_ca_init(self):
        rc, out, err = run("ca", "init", "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        crt, key = os.path.join(self.dir, "ca.crt"), os.path.join(self.dir, "ca.key")
        self.assertIn(crt, out)
        self.assertRegex(out, r"subject: O=sealgate, CN=sealgate CA \S+ [0-9a-f]{8}")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertTrue(self.read(key).startswith("-----BEGIN " "PRIVATE KEY-----"))  # split: not a key
        text = self.openssl_text(crt)
        self.assertIn("CA:TRUE, pathlen:0", text)
        self.assertIn("Certificate Sign, CRL Sign", text)
        self.assertIn("ecdsa-with-SHA256", text)
        self.assertIn("prime256v1", text)
        self.assertIn("X509v3 Subject Key Identifier", text)
        self.assertIn("X509v3 Authority Key Identifier", text)
        before = self.read(crt)

        rc, out, err = run("ca", "init", "--dir", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn("--force", err)
        self.assertEqual(self.read(crt), before)
        rc, out, err = run("ca", "init", "--dir", self.dir, "--force")
        self.assertEqual(rc, 0, err)
        self.assertNotEqual(self.read(crt), before)
        # openssl agrees the key belongs to the certificate
        pub_c = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", crt],
                               capture_output=True, text=True, check=True).stdout
        pub_k = subprocess.run(["openssl", "pkey", "-pubout", "-in", key],
                               capture_output=True, text=True, check=True).stdout
        self.assertEqual(pub_c, pub_k)

    # --- handle mint ------------------------------------------------------------------

    def write_policy(self, ttl="1h", max_ttl=None):
        policy = {
            "keys": {"seal_key": "seal.key", "ca_cert": "ca.crt", "ca_key": "ca.key"},
            "credentials": {
                "openai": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                           "hosts": ["api.openai.com"], "ttl": ttl, "env": "OPENAI_API_KEY"},
                "other": {"secret": {"value": "x" + SECRET}, "inject": {"type": "bearer"},
                          "hosts": ["api.other.test"]},
            },
            "sandboxes": {"sb-1": {"addresses": ["10.0.2.15/32"], "credentials": ["openai"]}},
        }
        if max_ttl:
            policy["credentials"]["openai"]["max_ttl"] = max_ttl
        path = os.path.join(self.dir, "policy.json")
        with open(path, "w") as f:
            json.dump(policy, f)
        return path

    def test_handle_mint_and_unseal(self):
        self.keygen()
        policy = self.write_policy()
        t0 = int(time.time())
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai")
        self.assertEqual(rc, 0, err)
        handle = out.strip()
        self.assertTrue(handle.startswith("sgh1."), handle)
        self.assertRegex(handle, r"^sgh1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+$")
        self.assertNotIn(SECRET, out + err)
        rc, shown, err = run("unseal", "--key", self.key, handle)
        self.assertEqual(rc, 0, err)
        claims = json.loads(shown)
        self.assertEqual(claims["sb"], "sb-1")
        self.assertEqual(claims["cred"], "openai")
        self.assertEqual(claims["key_id"], handle[5:13])
        self.assertRegex(claims["hid"], r"^[0-9a-f]{32}$")
        self.assertGreaterEqual(claims["exp"], t0 + 3600)
        self.assertLessEqual(claims["exp"], int(time.time()) + 3600)
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        # the handle is a sealed box any PyNaCl holder of seal.key can open
        sk = PrivateKey(bytes.fromhex(self.read(self.key).strip()))
        body = handle[14:] + "=" * (-len(handle[14:]) % 4)
        payload = json.loads(SealedBox(sk).decrypt(base64.urlsafe_b64decode(body)))
        self.assertEqual(payload["v"], 1)
        self.assertEqual(payload["hid"], claims["hid"])

    def test_handle_mint_json_and_ttl(self):
        self.keygen()
        policy = self.write_policy()
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--ttl", "15m", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(set(doc), {"handle", "handle_id", "expires_at", "lifetime",
                                    "credential", "sandbox", "env"})
        self.assertEqual(doc["lifetime"], "ttl")
        self.assertEqual(doc["env"], "OPENAI_API_KEY")
        self.assertEqual(doc["credential"], "openai")
        self.assertEqual(doc["sandbox"], "sb-1")
        self.assertRegex(doc["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        rc, shown, err = run("unseal", "--key", self.key, doc["handle"])
        claims = json.loads(shown)
        self.assertEqual(claims["hid"], doc["handle_id"])
        self.assertEqual(claims["exp"] - claims["iat"], 900)
        self.assertEqual(claims["expires_at"], doc["expires_at"])
        # ttl may only shorten the credential's
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--ttl", "2h")
        self.assertEqual(rc, 1)
        self.assertIn("longer", err)
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--ttl", "soon")
        self.assertEqual(rc, 2)

    def test_handle_mint_sandbox_lifetime(self):
        self.keygen()
        policy = self.write_policy(ttl="sandbox", max_ttl="10d")
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["lifetime"], "sandbox")
        rc, shown, err = run("unseal", "--key", self.key, doc["handle"])
        claims = json.loads(shown)
        self.assertEqual(claims["life"], "sandbox")
        self.assertEqual(claims["exp"] - claims["iat"], 10 * 86400)   # the max_ttl backstop
        # plain output stays one handle per line; the kind is said on stderr
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^sgh1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+\n$")
        self.assertIn("sandbox-lifetime handle", err)
        self.assertIn("sandbox sb-1", err)
        # a shorter wall-clock ttl may be asked for; "sandbox" only where the policy says so
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--ttl", "15m", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["lifetime"], "ttl")
        claims = json.loads(run("unseal", "--key", self.key, doc["handle"])[1])
        self.assertNotIn("life", claims)
        self.assertEqual(claims["exp"] - claims["iat"], 900)
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--ttl", "sandbox", "--json")
        self.assertEqual((rc, json.loads(out)["lifetime"]), (0, "sandbox"))
        policy = self.write_policy(ttl="1h")
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--ttl", "sandbox")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("wall-clock ttl", err)

    def test_handle_mint_count(self):
        self.keygen()
        policy = self.write_policy()
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--ttl", "15m", "--count", "200")
        self.assertEqual(rc, 0, err)
        self.assertNotIn(SECRET, out + err)
        self.assertTrue(out.endswith("\n"))
        lines = out.split("\n")[:-1]
        self.assertEqual(len(lines), 200)
        self.assertEqual(len(set(lines)), 200)
        # every line is a valid handle with its own id and the same claims
        sk = PrivateKey(bytes.fromhex(self.read(self.key).strip()))
        hids = set()
        for h in lines:
            self.assertRegex(h, r"^sgh1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+$")
            body = h[14:] + "=" * (-len(h[14:]) % 4)
            payload = json.loads(SealedBox(sk).decrypt(base64.urlsafe_b64decode(body)))
            self.assertEqual((payload["cred"], payload["sb"]), ("openai", "sb-1"))
            self.assertEqual(payload["exp"] - payload["iat"], 900)
            hids.add(payload["hid"])
        self.assertEqual(len(hids), 200)
        rc, shown, err = run("unseal", "--key", self.key, lines[-1])
        self.assertEqual(rc, 0, err)
        # --json with --count: one compact object per line
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai", "--count", "3", "--json")
        self.assertEqual(rc, 0, err)
        docs = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(docs), 3)
        self.assertEqual(len({d["handle_id"] for d in docs}), 3)
        # the count is bounded (usage error, nothing printed)
        for bad in ["0", "-1", "1000001", "12x", "", "99999999999999999999999"]:
            with self.subTest(count=bad):
                rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                                   "--credential", "openai", "--count", bad)
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, "")
                self.assertIn("--count", err)

    def test_handle_mint_refusals(self):
        self.keygen()
        policy = self.write_policy()
        cases = [("sb-2", "openai", "no sandbox 'sb-2'"),
                 ("sb-1", "nope", "no credential 'nope'"),
                 ("sb-1", "other", "not granted credential 'other'")]
        for sb, cred, msg in cases:
            rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", sb,
                               "--credential", cred)
            self.assertEqual(rc, 1, (sb, cred))
            self.assertEqual(out, "")
            self.assertIn(msg, err)
        # the seal key must be private
        os.chmod(self.key, 0o644)
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai")
        self.assertEqual(rc, 1)
        self.assertIn("chmod 600", err)
        rc, out, err = run("handle", "mint", "--policy", os.path.join(self.dir, "none.json"),
                           "--sandbox", "sb-1", "--credential", "openai")
        self.assertEqual(rc, 1)

    def test_unseal_handle_under_another_key(self):
        self.keygen()
        policy = self.write_policy()
        rc, out, err = run("handle", "mint", "--policy", policy, "--sandbox", "sb-1",
                           "--credential", "openai")
        self.assertEqual(rc, 0, err)
        handle = out.strip()
        other = os.path.join(self.dir, "other")
        os.mkdir(other)
        rc, _, err = run("keygen", "--out", other)
        self.assertEqual(rc, 0, err)
        rc, shown, err = run("unseal", "--key", os.path.join(other, "seal.key"), handle)
        self.assertEqual(rc, 1)
        self.assertIn("unknown_key", err)
        tampered = handle[:30] + ("A" if handle[30] != "A" else "B") + handle[31:]
        rc, shown, err = run("unseal", "--key", self.key, tampered)
        self.assertEqual(rc, 1)
        self.assertIn("handle_invalid", err)


if __name__ == "__main__":
    unittest.main()
