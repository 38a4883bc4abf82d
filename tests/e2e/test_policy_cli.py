"""`sealgate policy check`: located errors for bad fixtures, the example policy, usage,
directory merging, and tests/policy + policies/example.json against policies/schema.json."""
import glob
import json
import os
import subprocess
import tempfile
import unittest

import jsonschema

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SEALGATE_BIN", os.path.join(TOP, "build", "sealgate"))
BAD = sorted(glob.glob(os.path.join(TOP, "tests", "policy", "bad", "*.json")))
GOOD = sorted(glob.glob(os.path.join(TOP, "tests", "policy", "good", "*.json")))
EXAMPLE = os.path.join("policies", "example.json")
SCHEMA = os.path.join(TOP, "policies", "schema.json")
EXAMPLE_SECRET = "sk-example-dev-secret-0123456789"
E2E_SECRET = "e2e-secret-from-env-6b1d"


def run(*args, env_extra=None, cwd=TOP):
    env = dict(os.environ)
    env.pop("SG_E2E_DEFINITELY_UNSET", None)
    env["SG_E2E_SECRET"] = E2E_SECRET
    env.update(env_extra or {})
    return subprocess.run([BIN] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=30)


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class PolicyCheckTest(unittest.TestCase):
    def test_example_ok(self):
        r = run("policy", "check", EXAMPLE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "policy OK: policies/example.json: 1 credential, 1 sandbox, "
                         "listeners proxy=127.0.0.1:3128 metadata=127.0.0.1:8775 "
                         "admin=127.0.0.1:9091\n")
        self.assertIn("warning: policies/example.json: credentials.example.secret: "
                      "inline value is for development only", r.stderr)
        self.assertNotIn(EXAMPLE_SECRET, r.stdout + r.stderr)

    def test_quiet(self):
        r = run("policy", "check", "--quiet", EXAMPLE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")

    def test_bad_fixtures(self):
        self.assertGreaterEqual(len(BAD), 10)
        for path in BAD:
            with self.subTest(fixture=os.path.basename(path)):
                with open(path[:-len(".json")] + ".expect") as f:
                    expect = f.read().strip()
                self.assertTrue(expect)
                rel = os.path.relpath(path, TOP)
                r = run("policy", "check", rel)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn(expect, r.stderr)
                for line in r.stderr.splitlines():
                    self.assertTrue(line.startswith(rel + ":"), line)
                self.assertNotIn("e2e-inline-secret-value", r.stderr)

    def test_good_fixtures(self):
        self.assertGreaterEqual(len(GOOD), 2)
        for path in GOOD:
            with self.subTest(fixture=os.path.basename(path)):
                r = run("policy", "check", path)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.startswith("policy OK: " + path + ": "), r.stdout)
                self.assertNotIn(E2E_SECRET, r.stdout + r.stderr)

    def test_full_fixture_summary(self):
        path = os.path.join("tests", "policy", "good", "full.json")
        r = run("policy", "check", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "policy OK: %s: 6 credentials, 2 sandboxes, listeners "
                         "proxy=[::1]:0 metadata=off admin=127.0.0.1:0\n" % path)
        self.assertEqual(r.stderr, "")
        r = run("policy", "check", path, env_extra={"SG_E2E_SECRET": ""})
        self.assertEqual(r.returncode, 1)
        self.assertIn('credentials.openai.secret.env: environment variable "SG_E2E_SECRET" '
                      'is not set', r.stderr)

    def test_aws_spec_example(self):
        """The aws_sigv4 example of docs/policy.md (AWSSPEC.md) with its env sources set:
        accepted, and no secret (secret key, key id, session token) in any output."""
        aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        aws_akid = "AKIAE2EEXAMPLE7KEYID"
        aws_token = "IQoJb3JpZ2luX2VjE2e2eSessionTokenValue"
        policy = {"credentials": {"aws-dev": {
            "secret": {"env": "AWS_SECRET_ACCESS_KEY"},
            "inject": {"type": "aws_sigv4"},
            "aws": {
                "access_key_id": {"env": "AWS_ACCESS_KEY_ID"},
                "session_token": {"env": "AWS_SESSION_TOKEN"},
                "assume_role": {"role_arn": "arn:aws:iam::123456789012:role/x",
                                "external_id": "e", "duration": "1h"},
                "services": ["s3", "sts", "sqs"],
                "regions": ["us-east-1"],
                "buckets": ["my-bucket"],
                "prefixes": ["my-bucket/uploads/"]},
            "hosts": ["*.amazonaws.com"]}}}
        env = {"AWS_SECRET_ACCESS_KEY": aws_secret, "AWS_ACCESS_KEY_ID": aws_akid,
               "AWS_SESSION_TOKEN": aws_token}
        validator = jsonschema.Draft202012Validator(json.load(open(SCHEMA)))
        self.assertEqual([e.message for e in validator.iter_errors(policy)], [])
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "aws.json")
            write(p, json.dumps(policy))
            r = run("policy", "check", p, env_extra=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "policy OK: %s: 1 credential, 0 sandboxes, listeners "
                             "proxy=127.0.0.1:3128 metadata=127.0.0.1:8775 "
                             "admin=127.0.0.1:9091\n" % p)
            # the example's one-character external id is accepted; STS would refuse it
            self.assertEqual(r.stderr, "warning: %s: credentials.aws-dev.aws.assume_role."
                             "external_id: STS refuses external ids shorter than 2 "
                             "characters\n" % p)
            # a missing key id and a bad external id: refused, located, nothing leaked
            policy["credentials"]["aws-dev"]["aws"]["access_key_id"] = {"env": "AWS_NOPE"}
            policy["credentials"]["aws-dev"]["aws"]["assume_role"]["external_id"] = "e e"
            write(p, json.dumps(policy))
            r = run("policy", "check", p, env_extra=env)
            self.assertEqual(r.returncode, 1)
            self.assertIn("%s: credentials.aws-dev.aws.access_key_id.env: environment "
                          "variable \"AWS_NOPE\" is not set" % p, r.stderr)
            self.assertIn("%s: credentials.aws-dev.aws.assume_role.external_id: is not an "
                          "external id" % p, r.stderr)
            for s in (aws_secret, aws_akid, aws_token):
                self.assertNotIn(s, r.stdout + r.stderr)
        self.assertFalse(validator.is_valid(policy))

    def test_aws_fixture_summary(self):
        path = os.path.join("tests", "policy", "good", "aws.json")
        r = run("policy", "check", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "policy OK: %s: 2 credentials, 1 sandbox, listeners "
                         "proxy=127.0.0.1:0 metadata=127.0.0.1:0 admin=off "
                         "metadata_aws=169.254.170.2:80\n" % path)
        self.assertNotIn(E2E_SECRET, r.stdout + r.stderr)
        self.assertNotIn("AKIAIOSFODNN7EXAMPLE", r.stdout + r.stderr)

    def test_usage(self):
        for args in ([], ["policy"], ["policy", "check"], ["policy", "frob", EXAMPLE],
                     ["policy", "check", EXAMPLE, EXAMPLE], ["policy", "check", "--bogus", EXAMPLE]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("usage: sealgate", r.stderr)
                self.assertNotIn("policy OK", r.stdout)

    def test_help(self):
        for args in (["policy", "--help"], ["policy", "check", "--help"], ["policy", "check", "-h"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("usage: sealgate policy check [--quiet] PATH", r.stdout)

    def test_missing_file(self):
        r = run("policy", "check", "tests/policy/no-such-policy.json")
        self.assertEqual(r.returncode, 1)
        self.assertIn("tests/policy/no-such-policy.json: No such file or directory", r.stderr)

    def test_directory_merge_and_no_side_effects(self):
        with tempfile.TemporaryDirectory() as d:
            write(os.path.join(d, "10-creds.json"), json.dumps({"credentials": {"gh": {
                "secret": {"file": "gh.token"}, "inject": {"type": "bearer"},
                "hosts": ["api.github.com"]}}, "keys": {"seal_key": "keys/seal.key"}}))
            write(os.path.join(d, "20-sandboxes.json"), json.dumps({"sandboxes": {"sb": {
                "addresses": ["10.0.2.15"], "credentials": ["gh"]}}}))
            write(os.path.join(d, "gh.token"), "ghp-e2e-file-secret\n", 0o600)
            r = run("policy", "check", d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("1 credential, 1 sandbox", r.stdout)
            self.assertNotIn("ghp-e2e-file-secret", r.stdout + r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "keys")))
            self.assertFalse(os.path.exists(os.path.join(d, "certs")))
            self.assertEqual(sorted(os.listdir(d)), ["10-creds.json", "20-sandboxes.json", "gh.token"])

            os.chmod(os.path.join(d, "gh.token"), 0o644)
            r = run("policy", "check", d)
            self.assertEqual(r.returncode, 1)
            self.assertIn("10-creds.json: credentials.gh.secret.file: ", r.stderr)
            self.assertIn("readable by group or others (mode 644)", r.stderr)
            self.assertNotIn("ghp-e2e-file-secret", r.stderr)
            os.chmod(os.path.join(d, "gh.token"), 0o600)

            write(os.path.join(d, "30-dup.json"), json.dumps({"credentials": {"gh": {
                "secret": {"env": "SG_E2E_SECRET"}, "inject": {"type": "bearer"},
                "hosts": ["api.github.com"]}}, "keys": {}}))
            r = run("policy", "check", d)
            self.assertEqual(r.returncode, 1)
            self.assertIn("30-dup.json: credentials.gh: also defined in ", r.stderr)
            self.assertIn("10-creds.json", r.stderr)
            self.assertIn("30-dup.json: keys: section also defined in ", r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 2, r.stderr)

    def test_all_errors_reported(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "many.json")
            write(p, json.dumps({"listen": {"proxy": "x"}, "limits": {"workers": 999},
                                 "credentials": {"c": {"secret": {"value": "hunter2-e2e"},
                                                       "inject": {"type": "query"},
                                                       "hosts": ["A.test"]}}}))
            r = run("policy", "check", p)
            self.assertEqual(r.returncode, 1)
            lines = r.stderr.splitlines()
            self.assertEqual(len(lines), 4, r.stderr)
            self.assertIn("listen.proxy", lines[0])
            self.assertIn("limits.workers: 999 is out of range (0..256)", r.stderr)
            self.assertIn('inject type "query" needs "param"', r.stderr)
            self.assertIn('credentials.c.hosts[0]: "A.test" is not a host glob', r.stderr)
            self.assertNotIn("hunter2", r.stderr)


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA) as f:
            cls.schema = json.load(f)
        cls.validator = jsonschema.Draft202012Validator(cls.schema)

    def load(self, path):
        with open(path) as f:
            return json.load(f)

    def test_schema_is_valid(self):
        jsonschema.Draft202012Validator.check_schema(self.schema)

    def test_example_and_good_fixtures_validate(self):
        for path in [os.path.join(TOP, EXAMPLE)] + GOOD:
            with self.subTest(policy=os.path.basename(path)):
                errors = [e.message for e in self.validator.iter_errors(self.load(path))]
                self.assertEqual(errors, [])

    def test_schema_bad_fixtures_refused(self):
        schema_bad = [p for p in BAD if os.path.basename(p).startswith("schema-")]
        self.assertGreaterEqual(len(schema_bad), 10)
        for path in schema_bad:
            with self.subTest(fixture=os.path.basename(path)):
                self.assertFalse(self.validator.is_valid(self.load(path)))

    def test_descriptions_everywhere(self):
        def walk(node, where):
            if isinstance(node, dict):
                for key, sub in node.get("properties", {}).items():
                    if sub is False:
                        continue
                    self.assertIn("description", sub, where + "." + key)
                for key, sub in node.items():
                    if key != "if":  # conditions of inject's per-type rules
                        walk(sub, where + "/" + key)
            elif isinstance(node, list):
                for i, sub in enumerate(node):
                    walk(sub, "%s[%d]" % (where, i))
        walk(self.schema, "#")

    def test_no_unknown_keys_anywhere(self):
        def walk(node, where):
            if isinstance(node, dict):
                if node.get("type") == "object" and "properties" in node:
                    self.assertIs(node.get("additionalProperties"), False, where)
                for key, sub in node.items():
                    walk(sub, where + "/" + key)
            elif isinstance(node, list):
                for sub in node:
                    walk(sub, where)
        walk(self.schema, "#")


if __name__ == "__main__":
    unittest.main()
