"""Network-namespace helpers for end-to-end tests (factored out of test_sandbox_netns).

Everything here creates namespaces the test owns and touches nothing in the root
namespace; root_net_state() lets a test assert that.

  sh(*argv)                  run a command, AssertionError with stderr on failure
  root_net_state()           links, addresses, routes, rules of the root namespace
  in_netns(name)             with-block: this thread inside a named namespace (sockets
                             opened there stay there)
  wait_links_up(ns, links)   condition wait for carrier
  Namespaces(owner, keys)    namespaces named sg-KEY-RANDOM, deleted (with their
                             /etc/netns/NAME files) by the owner's cleanup; veth(),
                             files(), run()
"""
import ctypes
import os
import secrets
import shutil
import subprocess
import time

CLONE_NEWNET = 0x40000000
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ETC_NETNS = "/etc/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def sh(*args, check=True, timeout=30):
    r = subprocess.run(list(args), capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (" ".join(args), r.returncode,
                                                  r.stderr.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def root_net_state():
    """Links, addresses, routes and rules of the root namespace (what we must not touch)."""
    return [sh("ip", "-o", "link", "show"), sh("ip", "-o", "addr", "show"),
            sh("ip", "route", "show", "table", "all"),
            sh("ip", "-6", "route", "show", "table", "all"),
            sh("ip", "rule", "show"), sh("ip", "-6", "rule", "show")]


class in_netns:
    """Run a block in a named namespace (this thread only); sockets opened inside stay
    there for life."""

    def __init__(self, name):
        self.name = name

    def _setns(self, fd):
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns(%s): %s" % (self.name, os.strerror(e)))

    def __enter__(self):
        self.orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/var/run/netns/" + self.name, os.O_RDONLY)
        try:
            self._setns(fd)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        try:
            self._setns(self.orig)
        finally:
            os.close(self.orig)


def wait_links_up(ns, links, timeout=10):
    """Condition wait: every link in ns reports LOWER_UP (carrier)."""
    deadline = time.monotonic() + timeout
    while True:
        out = sh("ip", "-n", ns, "-o", "link", "show")
        down = [ln for ln in links if not any(
            (": %s:" % ln in line or ": %s@" % ln in line) and "LOWER_UP" in line
            for line in out.splitlines())]
        if not down:
            return
        if time.monotonic() > deadline:
            raise AssertionError("links %s in %s not up:\n%s" % (down, ns, out))
        time.sleep(0.02)    # polling the kernel's link state, bounded by the deadline


class Namespaces:
    """Named network namespaces sg-KEY-RANDOM with lo up, deleted by owner's cleanup
    (owner: a TestCase or TestCase class). names[key] is the namespace name."""

    def __init__(self, owner, keys):
        rnd = secrets.token_hex(3)
        self.names = {k: "sg-%s-%s" % (k, rnd) for k in keys}
        (owner.addClassCleanup if isinstance(owner, type) else owner.addCleanup)(self.delete)
        for name in self.names.values():
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")

    def __getitem__(self, key):
        return self.names[key]

    def delete(self):
        for name in self.names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            shutil.rmtree(os.path.join(ETC_NETNS, name), ignore_errors=True)

    def veth(self, a, if_a, addr_a, b, if_b, addr_b, prefix=24):
        """A veth pair between namespaces a and b (keys) with addresses on a /prefix,
        both ends up (carrier waited for)."""
        na, nb = self.names[a], self.names[b]
        sh("ip", "-n", na, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
           "netns", nb)
        sh("ip", "-n", na, "addr", "add", "%s/%d" % (addr_a, prefix), "dev", if_a)
        sh("ip", "-n", nb, "addr", "add", "%s/%d" % (addr_b, prefix), "dev", if_b)
        sh("ip", "-n", na, "link", "set", if_a, "up")
        sh("ip", "-n", nb, "link", "set", if_b, "up")
        wait_links_up(na, [if_a])
        wait_links_up(nb, [if_b])

    def files(self, key, files):
        """Per-namespace /etc files ({"hosts": text, "resolv.conf": text}): `ip netns
        exec` bind-mounts /etc/netns/NAME/F over /etc/F for the command it runs."""
        d = os.path.join(ETC_NETNS, self.names[key])
        os.makedirs(d, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)

    def run(self, key, argv, env=None, timeout=60, input=None):
        """argv inside namespace key with exactly env (plus nothing): (rc, stdout,
        stderr) as text."""
        e = ["%s=%s" % kv for kv in (env or {}).items()]
        r = subprocess.run(["ip", "netns", "exec", self.names[key], "env", "-i"] + e
                           + list(argv), capture_output=True, timeout=timeout,
                           input=input.encode() if isinstance(input, str) else input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        return r.returncode, r.stdout.decode(errors="replace"), \
            r.stderr.decode(errors="replace")
