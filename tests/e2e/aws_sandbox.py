"""Network-namespace sandboxes for AWS end-to-end tests: unmodified `aws` and boto3 in a
namespace of their own, reaching the AWS stand-in (aws_standin.AwsStandin) at the real
AWS names on port 443, either directly or through sealgate. Nothing is added to the root
namespace; every address is link-local.

direct (proxied=False): the proxy is not involved; the client holds real keys
    sg-awssb-R  eth0 169.254.40.2/24 ── eth0 169.254.40.1/24  sg-awsnet-R (stand-in :443)
  The sandbox's /etc/hosts (/etc/netns/NAME/hosts, bind-mounted by `ip netns exec`)
  names every endpoint the stand-in serves at 169.254.40.1.

proxied (proxied=True): the production shape, for sealgate
    sg-awssb-R  eth0 169.254.10.2/24 ── vsb 169.254.10.1/24 + 169.254.169.254/32  sg-awsgw-R
                      (sealgate: proxy 169.254.10.1:3128, metadata 169.254.169.254:80)
                      vnet 169.254.20.1/24 ── eth0 169.254.20.2/24  sg-awsnet-R (stand-in :443)
  The sandbox routes only its /24 and 169.254.169.254 (no default route, the gateway
  does not forward): AWS is reachable through the proxy alone. sealgate resolves the
  AWS names with upstream.resolve = standin.resolve_map() (sealgate_policy()).

In both, the sandbox's resolv.conf names a server that does not exist (127.0.0.1 in its
own namespace, nothing listening): no name lookup leaves the namespace.

Clients run with a clean environment (client_env): PATH, a fresh empty HOME (no
~/.aws), LC_ALL, what a guest gets from sealgate's /v1/env (guest_init(): the real
guest init script), and extra variables the test names. AWS_* variables are refused
unless passed as aws= (the direct mode's real keys), so a proxied test cannot hand the
client a credential by mistake.

    sb = AwsSandbox(cls, proxied=True)
    sa = sb.start_standin(access_key_id=AK, secret=SK)      # in sg-awsnet, :443
    sg = sb.start_sealgate(sb.sealgate_policy(credentials={...}, grants=["aws-dev"]))
    env = sb.client_env(guest=sb.guest_init())      # or sb.guest_env(sb.guest_init()):
                                                    # the profile's AWS_* variables too
    rc, out, err = sb.aws(env, "s3", "cp", "s3://mybucket/k", "-")
"""
import os
import shutil
import tempfile

import aws_standin
import sgtest
from sgnetns import PATH, Namespaces, in_netns, sh

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GUEST_INIT = os.path.join(TOP, "scripts", "sealgate-guest-init.sh")
AWS_BIN = "/usr/bin/aws"              # Debian's awscli (not a pyenv shim)
PYTHON = "/usr/bin/python3"
DIRECT = {"sb": "169.254.40.2", "net": "169.254.40.1"}
PROXIED = {"sb": "169.254.10.2", "gw": "169.254.10.1", "gw_net": "169.254.20.1",
           "net": "169.254.20.2"}
MD_ADDR = "169.254.169.254"
GW_PROXY = PROXIED["gw"] + ":3128"
NO_DNS = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
# Variables a guest may hold that are not AWS_*: the profile's and the harness's own.
BASE_ENV = {"PATH": PATH, "LC_ALL": "C"}
# The AWS_* variables sealgate's /v1/env may export (guest-setup.md): never a key.
GUEST_AWS_VARS = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE",
                            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                            "AWS_CONTAINER_AUTHORIZATION_TOKEN"})


class AwsSandbox:
    """The namespaces of one topology (above); owner: a TestCase or TestCase class whose
    cleanup removes everything. Attributes: ns (sgnetns.Namespaces), proxied, addr
    (address map), tmp (a temp dir), standin, sealgate."""

    def __init__(self, owner, proxied=False):
        self.owner, self.proxied = owner, proxied
        self._cleanup = owner.addClassCleanup if isinstance(owner, type) else owner.addCleanup
        self.tmp = tempfile.mkdtemp(prefix="sgtest-awssb-")
        os.chmod(self.tmp, 0o755)
        self._cleanup(shutil.rmtree, self.tmp, True)
        self.addr = PROXIED if proxied else DIRECT
        self.ns = Namespaces(owner, ["awssb", "awsnet"] + (["awsgw"] if proxied else []))
        self.standin = self.sealgate = None
        self._homes = 0
        if proxied:
            self._build_proxied()
        else:
            self.ns.veth("awssb", "eth0", DIRECT["sb"], "awsnet", "eth0", DIRECT["net"])
        self.ns.files("awssb", {"resolv.conf": NO_DNS})

    def _build_proxied(self):
        a, gw = PROXIED, self.ns["awsgw"]
        sh("ip", "netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        self.ns.veth("awsgw", "vsb", a["gw"], "awssb", "eth0", a["sb"])
        sh("ip", "-n", gw, "addr", "add", MD_ADDR + "/32", "dev", "vsb")
        sh("ip", "-n", self.ns["awssb"], "route", "add", MD_ADDR + "/32", "dev", "eth0")
        self.ns.veth("awsgw", "vnet", a["gw_net"], "awsnet", "eth0", a["net"])

    # -- the stand-in ------------------------------------------------------------------

    def start_standin(self, **options):
        """An AwsStandin on the upstream namespace's address, port 443 (that namespace is
        the test's own: nothing else listens there), stopped by the owner's cleanup. In
        direct mode the sandbox's /etc/hosts then names its endpoints."""
        options.setdefault("port", 443)
        with in_netns(self.ns["awsnet"]):
            self.standin = aws_standin.AwsStandin(self.owner, host=self.addr["net"],
                                                  **options)
        if not self.proxied:
            hosts = "127.0.0.1 localhost\n" + "".join(
                "%s %s\n" % (ip, name) for name, ip in sorted(
                    self.standin.resolve_map().items()))
            self.ns.files("awssb", {"hosts": hosts})
        return self.standin

    # -- sealgate (proxied mode) ---------------------------------------------------------

    def sealgate_policy(self, credentials=None, grants=(), base=None, **overrides):
        """A policy for sealgate in the gateway namespace: proxy and metadata on the
        sandbox link, the stand-in's names resolved to it (allowed private), one sandbox
        "sb" at the sandbox's address granted `grants`. overrides deep-merge last."""
        pol = base or sgtest.base_policy(resolve=self.standin.resolve_map())
        pol = sgtest.deep_merge(pol, {
            "listen": {"proxy": GW_PROXY, "metadata": MD_ADDR + ":80",
                       "admin": "127.0.0.1:0"},
            "egress": {"default": "deny", "allow_private": [self.addr["net"] + "/32"],
                       "intercept": "credentials"},
            "credentials": credentials or {},
            "sandboxes": {"sb": {"addresses": [self.addr["sb"] + "/32"],
                                 "credentials": list(grants)}},
        })
        return sgtest.deep_merge(pol, overrides)

    def start_sealgate(self, policy):
        """sgtest.Sealgate in the gateway namespace (its binary wrapped in `ip netns
        exec`, which keeps the pid)."""
        if not self.proxied:
            raise AssertionError("start_sealgate needs AwsSandbox(proxied=True)")
        wrapper = os.path.join(self.tmp, "sealgate-in-gw")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n"
                    % (self.ns["awsgw"], os.path.abspath(sgtest.SEALGATE_BIN)))
        os.chmod(wrapper, 0o755)
        real, sgtest.SEALGATE_BIN = sgtest.SEALGATE_BIN, wrapper
        try:
            self.sealgate = sgtest.Sealgate(self.owner, policy=policy)
        finally:
            sgtest.SEALGATE_BIN = real
        return self.sealgate

    def guest_init(self):
        """Run the real guest init script in the sandbox against the metadata responder
        (CA and profile into a temp dir, system store untouched); returns the profile's
        variables as a dict (HTTPS_PROXY, the CA bundle variables, handles)."""
        d = tempfile.mkdtemp(dir=self.tmp)
        os.chmod(d, 0o755)
        ca, profile = os.path.join(d, "ca.pem"), os.path.join(d, "profile.sh")
        rc, out, err = self.ns.run("awssb", ["sh", GUEST_INIT], dict(BASE_ENV, **{
            "SEALGATE_CA_PATH": ca, "SEALGATE_PROFILE": profile, "SEALGATE_SYSTEM_CA": "0"}))
        if rc != 0:
            raise AssertionError("guest init exited %d: %s%s" % (rc, out, err))
        with open(profile) as f:
            return parse_profile(f.read())

    # -- clients ---------------------------------------------------------------------------

    def client_env(self, guest=None, aws=None, extra=None):
        """The sandbox client's whole environment: PATH, LC_ALL, a fresh empty HOME, the
        guest's variables, aws (AWS_* allowed only here) and extra (no AWS_*)."""
        for src in (guest or {}), (extra or {}):
            bad = [k for k in src if k.upper().startswith("AWS_")]
            if bad:
                raise AssertionError("AWS variables %s outside aws=" % bad)
        self._homes += 1
        home = os.path.join(self.tmp, "home%d" % self._homes)
        os.makedirs(home)
        env = dict(BASE_ENV, HOME=home)
        env.update(guest or {})
        env.update(aws or {})
        env.update(extra or {})
        return env

    def guest_env(self, guest, extra=None):
        """The environment of a process started after the guest init script: exactly
        the profile's variables (guest: guest_init()'s answer), whose AWS_* ones must be
        among those /v1/env exports (region, CA bundle, container-credentials URI and
        token), plus PATH, LC_ALL, a fresh HOME and extra (no AWS_*)."""
        aws = {k: v for k, v in guest.items() if k.upper().startswith("AWS_")}
        bad = sorted(set(aws) - GUEST_AWS_VARS)
        if bad:
            raise AssertionError("the guest profile exports %s" % bad)
        rest = {k: v for k, v in guest.items() if k not in aws}
        return self.client_env(guest=rest, aws=aws, extra=extra)

    def run(self, env, argv, timeout=120, input=None):
        """argv in the sandbox with exactly env: (rc, stdout, stderr)."""
        return self.ns.run("awssb", argv, env, timeout=timeout, input=input)

    def aws(self, env, *args, timeout=120):
        return self.run(env, [AWS_BIN] + list(args), timeout=timeout)

    def python(self, env, code, *args, timeout=120):
        return self.run(env, [PYTHON, "-c", code] + list(args), timeout=timeout)


def parse_profile(text):
    """{name: value} of a profile's `export NAME='value'` lines (values single-quoted,
    a quote inside written as '\\'')."""
    import shlex
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        name, eq, rest = line[len("export "):].partition("=")
        if eq:
            out[name] = "".join(shlex.split(rest))
    return out
