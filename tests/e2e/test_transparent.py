"""Transparent interception: a sandbox with NO proxy settings, its outbound 443 redirected
to sealgate's transparent listener by nftables rules that `sealgate transparent rules`
printed, applied inside a namespace the test made. Nothing is added to the root namespace.

  sg-sb-R  eth0 169.254.10.2/24 ── vsb 169.254.10.1/24  sg-gw-R (sealgate; nft DNAT of
           default via .10.1                             tcp 443 from vsb -> transparent
                                   vnet 169.254.20.1/24 ── eth0 169.254.20.2/24  sg-net-R
                                                          (TLS echo upstream on :443)

The gateway does not forward (ip_forward=0): a sandbox reaches nothing but what the
redirect hands to sealgate. Names resolve in the sandbox through its own /etc/hosts
(api.example.test, other.example.test -> 169.254.20.2) and in sealgate through the
policy's upstream.resolve (api -> 169.254.20.2, other -> 169.254.20.3).
"""
import json
import os
import secrets
import shutil
import subprocess
import tempfile

import sgtest
from sgnetns import PATH, Namespaces, in_netns, root_net_state, sh
from sgtest import PKI, EchoUpstream, Sealgate

GW, SB, NET_GW, UP = "169.254.10.1", "169.254.10.2", "169.254.20.1", "169.254.20.2"
OTHER_UP = "169.254.20.3"       # where sealgate resolves other.example.test
DENIED = "169.254.30.9"         # an allowed host literal, refused by the address check
SECRET = "sk-live-TRANSPARENT-" + secrets.token_hex(12)

# Run inside the sandbox: one TLS exchange with no proxy. argv: mode host sni cafile
# handle path. mode "verify": verify against cafile for sni; "nosni": no SNI, verify the
# chain against cafile without a host name. Prints JSON: status, body, or error.
PY_CLIENT = r'''
import http.client, json, socket, ssl, sys
mode, host, sni, cafile, handle, path = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
if mode == "nosni":
    ctx.check_hostname = False
try:
    raw = socket.create_connection((host, 443), timeout=15)
    tls = ctx.wrap_socket(raw, server_hostname=None if mode == "nosni" else sni)
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
           "Connection: close\r\n\r\n" % (path, sni, handle)).encode()
    tls.sendall(req)
    data = b""
    while True:
        d = tls.recv(65536)
        if not d:
            break
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    print(json.dumps({"status": status, "body": body.decode(errors="replace")}))
except (ssl.SSLError, OSError) as e:
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
'''

# python's http.client, as an unmodified program would use it.
PY_HTTPCLIENT = r'''
import http.client, ssl, sys
host, cafile, handle, path = sys.argv[1:5]
c = http.client.HTTPSConnection(host, 443, timeout=15,
                                context=ssl.create_default_context(cafile=cafile))
c.request("GET", path, headers={"Authorization": "Bearer " + handle})
r = c.getresponse()
sys.stdout.write("%d\n" % r.status)
sys.stdout.write(r.read().decode())
'''

NODE_CLIENT = r'''
const https = require("https"), fs = require("fs");
const [host, cafile, handle, path] = process.argv.slice(2);
https.get({host, port: 443, path, ca: fs.readFileSync(cafile),
           headers: {Authorization: "Bearer " + handle}, timeout: 15000}, (res) => {
  let body = "";
  res.on("data", (d) => body += d);
  res.on("end", () => { process.stdout.write(res.statusCode + "\n" + body); });
}).on("error", (e) => { process.stdout.write("error " + e.message); process.exitCode = 1; });
'''


class TransparentTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root_before = root_net_state()
        cls.tmp = tempfile.mkdtemp(prefix="sgtest-transparent-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.ns = Namespaces(cls, ["gw", "sb", "net"])
        cls._topology()
        cls.pki = PKI.get()
        with in_netns(cls.ns["net"]):
            cls.up = EchoUpstream(pki=cls.pki, host=UP, port=443)
        cls.addClassCleanup(cls.up.stop)
        cls.sg = cls._start_sealgate()
        cls.tport = int(cls.sg.ready["transparent"].rpartition(":")[2])
        rc, cls.rules, err = sgtest.sealgate_cli(
            "transparent", "rules", "--sandbox-if", "vsb", "--proxy",
            "%s:%d" % (GW, cls.tport))
        assert rc == 0, err
        r = subprocess.run(
            ["ip", "netns", "exec", cls.ns["gw"], "nft", "-f", "-"], input=cls.rules.encode(),
            capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr.decode()
        cls.handle = sgtest.mint_handle(cls.sg.policy_path, "sb", "example")["handle"]
        for name, text in (("client.py", PY_CLIENT), ("httpclient.py", PY_HTTPCLIENT),
                           ("client.js", NODE_CLIENT)):
            with open(os.path.join(cls.tmp, name), "w") as f:
                f.write(text)

    @classmethod
    def _topology(cls):
        ns = cls.ns
        sh("ip", "netns", "exec", ns["gw"], "sysctl", "-qw", "net.ipv4.ip_forward=0")
        ns.veth("gw", "vsb", GW, "sb", "eth0", SB)
        ns.veth("gw", "vnet", NET_GW, "net", "eth0", UP)
        sh("ip", "-n", ns["sb"], "route", "add", "default", "via", GW)
        ns.files("sb", {"hosts": "%s api.example.test other.example.test\n" % UP})

    @classmethod
    def _policy(cls):
        pol = sgtest.base_policy(cls.pki, resolve={"api.example.test": UP,
                                                   "other.example.test": OTHER_UP})
        return sgtest.deep_merge(pol, {
            "listen": {"proxy": "127.0.0.1:0", "metadata": None, "admin": "127.0.0.1:0",
                       "transparent": GW + ":0"},
            "egress": {"default": "deny", "allow_private": ["169.254.20.0/24"],
                       "allow_hosts": ["other.example.test", UP, DENIED],
                       "intercept": "credentials"},
            "credentials": {
                "example": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                            "hosts": ["api.example.test"]},
            },
            "sandboxes": {"sb": {"addresses": [SB + "/32"], "credentials": ["example"]}},
        })

    @classmethod
    def _start_sealgate(cls):
        """sgtest.Sealgate, its binary wrapped in `ip netns exec` (exec keeps the pid)."""
        wrapper = os.path.join(cls.tmp, "sealgate-in-gw")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n"
                    % (cls.ns["gw"], os.path.abspath(sgtest.SEALGATE_BIN)))
        os.chmod(wrapper, 0o755)
        real, sgtest.SEALGATE_BIN = sgtest.SEALGATE_BIN, wrapper
        try:
            return Sealgate(cls, policy=cls._policy())
        finally:
            sgtest.SEALGATE_BIN = real

    def in_sandbox(self, argv):
        """argv inside the sandbox, environment emptied: no HTTPS_PROXY or any proxy."""
        return self.ns.run("sb", argv, env={"PATH": PATH, "HOME": "/tmp", "LC_ALL": "C"})

    def py_client(self, mode, host, sni, cafile, path):
        rc, out, err = self.in_sandbox(["/usr/bin/python3", os.path.join(self.tmp, "client.py"),
                                        mode, host, sni, cafile, self.handle, path])
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def upstream_auth(self, path):
        reqs = [r for r in self.up.wait_requests(1, timeout=10) if r["path"] == path]
        self.assertEqual(len(reqs), 1, "upstream saw %r" % [r["path"] for r in
                                                             self.up.requests])
        return {k.lower(): v for k, v in reqs[0]["headers"]}.get("authorization")

    def assert_swapped(self, path, status, body):
        self.assertEqual(status, 200, body)
        self.assertEqual(self.upstream_auth(path), "Bearer " + SECRET)
        self.assertNotIn(SECRET, body)       # the response is scrubbed back

    # --- the ruleset --------------------------------------------------------------------

    def test_rules_printed_and_applied(self):
        self.assertIn('iifname "vsb" ip daddr %s return' % GW, self.rules)
        self.assertIn("169.254.169.254", self.rules)
        self.assertIn('iifname "vsb" tcp dport 443 dnat ip to %s:%d' % (GW, self.tport),
                      self.rules)
        listed = sh("ip", "netns", "exec", self.ns["gw"], "nft", "list", "table", "inet",
                    "sealgate")
        self.assertIn("dnat ip to %s:%d" % (GW, self.tport), listed)
        self.assertEqual(root_net_state(), self.root_before)

    # --- swapped through the redirect ---------------------------------------------------

    def test_curl_swapped(self):
        path = "/reflect-auth/curl-" + secrets.token_hex(4)
        rc, out, err = self.in_sandbox([
            "curl", "-sS", "-m", "20", "--cacert", self.sg.ca_cert, "-w", "\n%{http_code}",
            "-H", "Authorization: Bearer " + self.handle,
            "https://api.example.test" + path])
        self.assertEqual(rc, 0, err)
        body, _, code = out.rpartition("\n")
        self.assert_swapped(path, int(code), body)

    def test_python_http_client_swapped(self):
        path = "/reflect-auth/py-" + secrets.token_hex(4)
        rc, out, err = self.in_sandbox(["/usr/bin/python3",
                                        os.path.join(self.tmp, "httpclient.py"),
                                        "api.example.test", self.sg.ca_cert, self.handle,
                                        path])
        self.assertEqual(rc, 0, err)
        code, _, body = out.partition("\n")
        self.assert_swapped(path, int(code), body)

    def test_node_https_swapped(self):
        path = "/reflect-auth/node-" + secrets.token_hex(4)
        rc, out, err = self.in_sandbox(["node", os.path.join(self.tmp, "client.js"),
                                        "api.example.test", self.sg.ca_cert, self.handle,
                                        path])
        self.assertEqual(rc, 0, out + err)
        code, _, body = out.partition("\n")
        self.assert_swapped(path, int(code), body)

    # --- refusals -----------------------------------------------------------------------

    def test_forged_sni_is_destination_mismatch(self):
        """SNI other.example.test (sealgate: 169.254.20.3) on a connection made to
        169.254.20.2: the handshake completes on a minted leaf, the answer is a 403."""
        path = "/reflect-auth/forged-" + secrets.token_hex(4)
        r = self.py_client("verify", UP, "other.example.test", self.sg.ca_cert, path)
        self.assertEqual(r.get("status"), 403, r)
        self.assertEqual(json.loads(r["body"])["error"], "destination_mismatch", r)
        self.assertFalse([q for q in self.up.requests if q["path"] == path])

    def test_denied_ip_without_sni_gets_alert(self):
        """No SNI to 169.254.30.9: an allowed host literal, but outside allow_private:
        refused with a TLS access_denied alert before any upstream is dialled."""
        r = self.py_client("nosni", DENIED, "-", self.sg.ca_cert, "/x")
        self.assertIn("error", r)
        self.assertIn("ACCESS_DENIED", r["error"].upper())

    def test_no_sni_is_tunnelled(self):
        """No SNI to the echo upstream's address (allowed): tunnelled, never intercepted:
        the client meets the upstream's own certificate (the test PKI's CA verifies it,
        sealgate's could not have minted it) and its handle arrives unswapped."""
        path = "/reflect-auth/nosni-" + secrets.token_hex(4)
        r = self.py_client("nosni", UP, "-", self.pki.ca_cert, path)
        self.assertEqual(r.get("status"), 200, r)
        self.assertEqual(self.upstream_auth(path), "Bearer " + self.handle)

    def test_sealgate_ca_does_not_verify_tunnelled_upstream(self):
        """The converse of the tunnel check: sealgate's CA does not verify that chain."""
        r = self.py_client("nosni", UP, "-", self.sg.ca_cert, "/x")
        self.assertIn("CERTIFICATE_VERIFY_FAILED", r.get("error", ""), r)

