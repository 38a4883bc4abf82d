"""A real sandbox through sealgate, built from network namespaces.

What production looks like, with nothing added to the root namespace (no links,
addresses, routes or rules; asserted) and only link-local 169.254.0.0/16 addresses:

  sg-sb1-R  eth0 169.254.10.2/24 ─┐                 sg-gw-R (sealgate)
                                  ├─ br0 169.254.10.1/24 (proxy :3128)
  sg-sb2-R  eth0 169.254.10.3/24 ─┘      169.254.169.254/32 (metadata :80)
                                     vnet 169.254.20.1/24 ── eth0 169.254.20.2/24  sg-net-R
                                                                 (TLS echo upstream)

The sandboxes share one link: a bridge in the gateway namespace with one veth per
sandbox. A sandbox's only routes are that link's /24 and 169.254.169.254 on it; the
gateway does not forward (ip_forward=0), so the "internet" is reachable only through
the proxy. sealgate runs in sg-gw via `ip netns exec`; the upstream is the harness's
EchoUpstream, its socket opened inside sg-net with setns(2) (the test process returns
to its own namespace at once). Inside sb1, unmodified clients: the guest init script,
then curl and python urllib with the environment it wrote.

Tests named *_swapped check the handle swap and the response scrub from inside a
sandbox; *_refused_elsewhere checks that one sandbox's handle is refused from another.
"""
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import sgtest
from sgnetns import PATH, in_netns, root_net_state, sh, wait_links_up
from sgtest import PKI, EchoUpstream, Sealgate

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GUEST_INIT = os.path.join(TOP, "scripts", "sealgate-guest-init.sh")
GW_LINK, GW_PROXY, MD_ADDR = "169.254.10.1", "169.254.10.1:3128", "169.254.169.254"
SB_ADDR = {"sb1": "169.254.10.2", "sb2": "169.254.10.3"}
NET_GW, NET_UP = "169.254.20.1", "169.254.20.2"
SECRET = "sk-live-NETNS-" + secrets.token_hex(12)
SECRET_OTHER = "sk-live-NETNS-OTHER-" + secrets.token_hex(12)


class SandboxNetnsTest(sgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        cls.addClassCleanup(cls._print_timing)
        cls.root_before = root_net_state()
        rnd = secrets.token_hex(3)
        cls.ns = {k: "sg-%s-%s" % (k, rnd) for k in ("gw", "sb1", "sb2", "net")}
        cls.addClassCleanup(cls._delete_namespaces)
        cls.tmp = tempfile.mkdtemp(prefix="sgtest-netns-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls._build_topology()
        cls.pki = PKI.get()
        with in_netns(cls.ns["net"]):
            cls.up = EchoUpstream(pki=cls.pki, host=NET_UP)
        cls.addClassCleanup(cls.up.stop)
        cls.sg = cls._start_sealgate()
        cls.t_ready = time.monotonic()
        cls.guest = {sb: cls._guest_init(sb) for sb in ("sb1", "sb2")}
        cls.client_runs = {}

    # --- setup ----------------------------------------------------------------------

    @classmethod
    def _print_timing(cls):
        sys.stdout.write("netns e2e: topology + sealgate ready in %.2f s, whole class "
                         "%.2f s\n" % (getattr(cls, "t_ready", cls.t0) - cls.t0,
                                       time.monotonic() - cls.t0))

    @classmethod
    def _delete_namespaces(cls):
        for name in cls.ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)

    @classmethod
    def _build_topology(cls):
        gw, net = cls.ns["gw"], cls.ns["net"]
        for name in cls.ns.values():
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        sh("ip", "-n", gw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", gw, "addr", "add", GW_LINK + "/24", "dev", "br0")
        sh("ip", "-n", gw, "addr", "add", MD_ADDR + "/32", "dev", "br0")
        sh("ip", "-n", gw, "link", "set", "br0", "up")
        for sb, addr in SB_ADDR.items():
            ns, port = cls.ns[sb], "v" + sb
            sh("ip", "-n", gw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            sh("ip", "-n", gw, "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", MD_ADDR + "/32", "dev", "eth0")
        sh("ip", "-n", gw, "link", "add", "vnet", "type", "veth", "peer", "name", "eth0",
           "netns", net)
        sh("ip", "-n", gw, "addr", "add", NET_GW + "/24", "dev", "vnet")
        sh("ip", "-n", gw, "link", "set", "vnet", "up")
        sh("ip", "-n", net, "addr", "add", NET_UP + "/24", "dev", "eth0")
        sh("ip", "-n", net, "link", "set", "eth0", "up")
        wait_links_up(gw, ["br0", "vsb1", "vsb2", "vnet"])
        for k in ("sb1", "sb2", "net"):
            wait_links_up(cls.ns[k], ["eth0"])

    @classmethod
    def _policy(cls):
        port = cls.up.port
        pol = sgtest.base_policy(cls.pki, resolve={"api.example.test": NET_UP,
                                                   "other.example.test": NET_UP})
        return sgtest.deep_merge(pol, {
            "listen": {"proxy": GW_PROXY, "metadata": MD_ADDR + ":80",
                       "admin": "127.0.0.1:0"},
            "egress": {"default": "deny", "allow_private": [NET_UP + "/32"],
                       "intercept": "credentials"},
            "credentials": {
                "example": {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                            "hosts": ["api.example.test:%d" % port],
                            "env": "EXAMPLE_API_KEY"},
                "other": {"secret": {"value": SECRET_OTHER}, "inject": {"type": "bearer"},
                          "hosts": ["other.example.test:%d" % port],
                          "env": "OTHER_API_KEY"},
            },
            "sandboxes": {
                "sb1": {"addresses": [SB_ADDR["sb1"] + "/32"], "credentials": ["example"]},
                "sb2": {"addresses": [SB_ADDR["sb2"] + "/32"], "credentials": ["other"]},
            },
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

    @classmethod
    def in_sandbox(cls, sb, script, env=None, timeout=60):
        """sh -c script inside sandbox sb, with a clean environment plus env."""
        e = ["PATH=" + PATH, "HOME=/tmp", "LC_ALL=C"]
        e += ["%s=%s" % kv for kv in (env or {}).items()]
        r = subprocess.run(["ip", "netns", "exec", cls.ns[sb], "env", "-i"] + e
                           + ["sh", "-c", script], capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout.decode(errors="replace"), \
            r.stderr.decode(errors="replace")

    @classmethod
    def _guest_init(cls, sb):
        d = os.path.join(cls.tmp, sb)
        os.makedirs(d)
        g = {"ca": os.path.join(d, "ca.pem"), "profile": os.path.join(d, "profile.sh")}
        g["rc"], g["out"], g["err"] = cls.in_sandbox(sb, "sh " + GUEST_INIT, {
            "SEALGATE_CA_PATH": g["ca"], "SEALGATE_PROFILE": g["profile"],
            "SEALGATE_SYSTEM_CA": "0"})
        return g

    def run_client(self, sb, kind):
        """curl or python urllib in sb, through the profile's HTTPS_PROXY, with the
        sandbox's handle as bearer. Memoised: the *_works and *_swapped tests share one
        request. Returns (rc, stdout, stderr, handle, upstream request or None)."""
        key = (sb, kind)
        if key in self.client_runs:
            return self.client_runs[key]
        path = "/reflect-auth/%s-%s-%s" % (sb, kind, secrets.token_hex(4))
        url = "https://api.example.test:%d%s" % (self.up.port, path)
        if kind == "curl":
            cmd = ('curl -sS -m 20 -H "Authorization: Bearer $EXAMPLE_API_KEY" "%s"' % url)
        else:
            cmd = ("/usr/bin/python3 -c 'import os, sys, urllib.request; r = urllib.request."
                   "Request(sys.argv[1], headers={\"Authorization\": \"Bearer \" + os.environ"
                   "[\"EXAMPLE_API_KEY\"]}); sys.stdout.write(urllib.request.urlopen(r, "
                   "timeout=20).read().decode())' \"%s\"" % url)
        script = ". %s && printf 'HANDLE=%%s\\n' \"$EXAMPLE_API_KEY\" && %s" % (
            self.guest[sb]["profile"], cmd)
        rc, out, err = self.in_sandbox(sb, script)
        handle = out.split("\n", 1)[0].partition("HANDLE=")[2]
        body = out.split("\n", 1)[1] if "\n" in out else ""
        seen = [r for r in self.up.wait_requests(1, timeout=1) if r["path"] == path]
        res = (rc, body, err, handle, seen[0] if seen else None)
        self.client_runs[key] = res
        return res

    def md_status(self, sb, path, headers=(), token=True):
        """HTTP status and body of a metadata request made inside sb with curl."""
        hs = " ".join("-H '%s'" % h for h in headers)
        tok = ('-H "X-Sealgate-Token: $(curl -s --noproxy \'*\' -X PUT -H '
               '\'X-Sealgate-Token-TTL: 60\' http://%s/v1/token)"' % MD_ADDR) if token else ""
        rc, out, err = self.in_sandbox(sb, "curl -s --noproxy '*' -m 10 -w '\\n%%{http_code}' "
                                       "%s %s http://%s%s" % (tok, hs, MD_ADDR, path))
        self.assertEqual(rc, 0, err)
        body, _, code = out.rpartition("\n")
        return int(code), body

    def upstream_auth(self, req):
        return {k.lower(): v for k, v in req["headers"]}.get("authorization")

    # --- the guest script -------------------------------------------------------------

    def test_guest_init_installs_ca_and_profile(self):
        with open(self.sg.ca_cert, "rb") as f:
            ca = f.read()
        for sb, env in (("sb1", "EXAMPLE_API_KEY"), ("sb2", "OTHER_API_KEY")):
            g = self.guest[sb]
            self.assertEqual(g["rc"], 0, g["err"])
            self.assertRegex(g["out"], r"^sealgate: 1 handle\(s\), proxy http://%s, CA %s "
                             r"\(system store: no\), env %s\n$"
                             % (GW_PROXY, g["ca"], g["profile"]))
            with open(g["ca"], "rb") as f:
                self.assertEqual(f.read(), ca)
            st = os.stat(g["profile"])
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
            with open(g["profile"]) as f:
                prof = f.read()
            self.assertIn("export %s='sgh1." % env, prof)
            self.assertIn("export HTTPS_PROXY='http://%s'" % GW_PROXY, prof)
            self.assertIn("export SSL_CERT_FILE='%s'" % g["ca"], prof)
            self.assertIn("export CURL_CA_BUNDLE='%s'" % g["ca"], prof)
            self.assertNotIn("/etc/sealgate/ca.pem", prof)
            self.assertNotIn(SECRET, prof)
            self.assertNotIn(SECRET_OTHER, prof)
        with open(self.guest["sb1"]["profile"]) as f:
            self.assertNotIn("OTHER_API_KEY", f.read())
        with open(self.guest["sb2"]["profile"]) as f:
            self.assertNotIn("EXAMPLE_API_KEY", f.read())

    def test_guest_init_fails_clearly(self):
        rc, out, err = self.in_sandbox("sb1", "sh " + GUEST_INIT, {
            "SEALGATE_METADATA": "http://%s:81" % MD_ADDR, "SEALGATE_TIMEOUT": "3",
            "SEALGATE_CA_PATH": os.path.join(self.tmp, "x.pem"),
            "SEALGATE_PROFILE": os.path.join(self.tmp, "x.sh"), "SEALGATE_SYSTEM_CA": "0"})
        self.assertEqual(rc, 1)
        self.assertIn("cannot reach the metadata responder", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.sh")))

    # --- unmodified clients through the proxy -------------------------------------------

    def _assert_reached(self, kind):
        rc, body, err, handle, req = self.run_client("sb1", kind)
        self.assertEqual(rc, 0, err)
        self.assertTrue(handle.startswith("sgh1."), handle)
        self.assertIsNotNone(req, "the upstream saw no request from %s" % kind)
        self.assertEqual(req["sni"], "api.example.test")
        self.assertEqual(req["method"], "GET")
        self.assertEqual(json.loads(body)["path"], req["path"])

    def _assert_swapped(self, kind):
        rc, body, err, handle, req = self.run_client("sb1", kind)
        self.assertIsNotNone(req, "the upstream saw no request from %s: %s" % (kind, err))
        self.assertEqual(self.upstream_auth(req), "Bearer " + SECRET)
        self.assertNotIn(SECRET, body)
        self.assertNotIn(SECRET, err)
        self.assertNotIn(handle, json.dumps(req))

    def test_curl_works(self):
        self._assert_reached("curl")

    def test_python_urllib_works(self):
        self._assert_reached("python")

    def test_curl_secret_swapped(self):
        """curl in sb1: the upstream gets the secret and not the handle; the client
        gets no secret."""
        self._assert_swapped("curl")

    def test_python_urllib_secret_swapped(self):
        """urllib in sb1: the upstream gets the secret and not the handle; the client
        gets no secret."""
        self._assert_swapped("python")

    def test_direct_upstream_unreachable(self):
        n = self.up.connections
        rc, out, err = self.in_sandbox("sb1", (
            "/usr/bin/python3 -c 'import socket, errno, sys\n"
            "try:\n socket.create_connection((\"%s\", %d), timeout=5)\n print(\"connected\")\n"
            "except OSError as e:\n print(errno.errorcode.get(e.errno, e))'")
            % (NET_UP, self.up.port))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "ENETUNREACH")
        rc, out, err = self.in_sandbox("sb1", "ip route show; ip -o addr show")
        self.assertNotIn("169.254.20.", out)
        self.assertNotIn("default", out)
        self.assertEqual(self.up.connections, n)

    # --- the metadata responder from inside ---------------------------------------------

    def test_metadata_refusals(self):
        code, body = self.md_status("sb1", "/v1/handles", ["X-Forwarded-For: 169.254.10.2"])
        self.assertEqual(code, 403, body)
        self.assertEqual(json.loads(body)["error"], "forwarded_request")
        code, body = self.md_status("sb1", "/v1/handles", token=False)
        self.assertEqual(code, 401, body)
        self.assertEqual(json.loads(body)["error"], "token_missing")
        code, body = self.md_status("sb1", "/v1/handles")
        self.assertEqual((code, json.loads(body)), (200, ["example"]))

    def test_sb2_gets_only_its_own(self):
        code, body = self.md_status("sb2", "/v1/handles")
        self.assertEqual((code, json.loads(body)), (200, ["other"]))
        code, body = self.md_status("sb2", "/v1/handles/example")
        self.assertEqual(code, 404, body)
        code, body = self.md_status("sb2", "/v1/handles/other")
        self.assertEqual(code, 200, body)
        self.assertEqual(json.loads(body)["env"], "OTHER_API_KEY")

    def test_sb1_handle_refused_elsewhere(self):
        """sb1's handle sent from sb2 gets 407."""
        _, _, _, handle, _ = self.run_client("sb1", "curl")
        self.assertTrue(handle.startswith("sgh1."))
        path = "/reflect-auth/stolen-" + secrets.token_hex(4)
        rc, out, err = self.in_sandbox("sb2", (
            ". %s && curl -sS -m 20 -o /dev/null -w '%%{http_code}' "
            "-H 'Authorization: Bearer %s' https://api.example.test:%d%s")
            % (self.guest["sb2"]["profile"], handle, self.up.port, path))
        seen = [r for r in self.up.requests if r["path"] == path]
        for r in seen:
            self.assertNotEqual(self.upstream_auth(r), "Bearer " + SECRET)
        self.assertEqual(out.strip(), "407", err)

    # --- the host ------------------------------------------------------------------------

    def test_root_namespace_untouched(self):
        self.assertEqual(root_net_state(), self.root_before)
