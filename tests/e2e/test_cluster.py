"""Fleet mode end to end: two sidecars (nodes a and b) sharing one seal key and one real
redis-server (a unix socket in a temp dir, no persistence, stopped by pid).

  ShareTest      a handle revoked on A (admin API, or `sealgate revoke`) is refused on B
                 within 1 s, and sits in Redis and in B's own revocations file; a
                 sandbox revocation travels too
  OutageTest     Redis killed and restarted EMPTY: after the reconnect the revocation is
                 back in Redis and still enforced on both; a revocation made on B while
                 Redis is down is enforced on B at once and reaches A once Redis returns;
                 a stopped (SIGSTOP) Redis is noticed by the PING, and caught up after
  AuthTest       ACL user + password works (revocations flow); a wrong password is a
                 clear logged error, the metric says 0, and the sidecar keeps serving
                 and enforcing from its local copy
  PolicyTest     located errors: Sentinel keys, cluster without revocations.file, bad
                 address, user without password
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import sgtest

API = "api.example.test"
SECRET = "sk-cluster-e2e-" + os.urandom(8).hex()
REDIS_PASSWORD = "redis-pw-" + os.urandom(8).hex()
# Redis must answer this fast (a local process on a unix socket).
REDIS_START_S = 10
# The goal: a revocation on one sidecar is enforced on every other within this.
SHARE_WITHIN_S = 1.0


class Redis:
    """A redis-server of our own: unix socket in a temp dir, TCP off, nothing saved."""

    def __init__(self, owner, conf_lines=()):
        self.dir = tempfile.mkdtemp(prefix="sgtest-redis-")
        owner.addCleanup(shutil.rmtree, self.dir, True)
        owner.addCleanup(self.stop)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("port 0\nunixsocket %s\nunixsocketperm 700\nsave \"\"\n"
                    "appendonly no\ndir %s\n" % (self.sock, self.dir))
            for line in conf_lines:
                f.write(line + "\n")
        self.auth = None
        self.proc = None
        self.start()

    def start(self):
        """Start (or start again, empty) and wait until it answers PING."""
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(["redis-server", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sgtest.wait_for(self._pings, timeout=REDIS_START_S, what="redis-server PING")

    def _pings(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited %s" % self.proc.returncode)
        try:
            r = self.command("PING")
        except OSError:
            return False
        return r in ("PONG",) or (isinstance(r, RedisError) and "NOAUTH" in r.text)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self.proc is not None:
            self.log.close()
        self.proc = None

    def command(self, *args):
        """One command on a fresh connection (AUTH first when self.auth is set)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(self.sock)
            f = s.makefile("rb")
            if self.auth:
                s.sendall(resp_encode(["AUTH"] + list(self.auth)))
                r = resp_read(f)
                if isinstance(r, RedisError):
                    raise AssertionError("test AUTH refused: %s" % r.text)
            s.sendall(resp_encode(list(args)))
            return resp_read(f)
        finally:
            s.close()


class RedisError:
    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return "RedisError(%r)" % self.text


def resp_encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out


def resp_read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2].decode()
    if t == b"+":
        return rest
    if t == b"-":
        return RedisError(rest)
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode()
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise OSError("bad RESP type %r" % t)


def admin_call(sg, method, path, body=None):
    with open(os.path.join(sg.dir, sg.policy["admin"]["token"]["file"])) as f:
        token = f.read().strip()
    c = http.client.HTTPConnection(*sg.admin, timeout=10)
    try:
        hdrs = {"Authorization": "Bearer " + token}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers=hdrs)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def cluster_connected(sg):
    status, text = admin_call(sg, "GET", "/metrics")
    m = re.search(r"^sealgate_cluster_connected (\d+)$", text, re.M)
    if status != 200 or m is None:
        raise AssertionError("no sealgate_cluster_connected in /metrics")
    return int(m.group(1))


class ClusterCase(sgtest.TestCase):
    """Helpers: one echo upstream and one seal key per class, sidecars per test."""

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="sgtest-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.kp = sgtest.keygen(cls.keydir)
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)

    def policy(self, redis, node, **redis_extra):
        p = {
            "keys": {"seal_key": self.kp.key},
            "credentials": {"bearer": {"secret": {"value": SECRET},
                                       "inject": {"type": "bearer"},
                                       "hosts": ["%s:%d" % (API, self.echo.port)]}},
            "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"],
                                   "credentials": ["bearer"]}},
            "revocations": {"file": "revocations.json"},
        }
        if redis is not None:
            cfg = {"address": "unix:" + redis.sock, "node": node, "prefix": "sgt:"}
            cfg.update(redis_extra)
            p["cluster"] = {"redis": cfg}
        return p

    def sidecar(self, redis, node, **redis_extra):
        return sgtest.Sealgate(self, overrides=self.policy(redis, node, **redis_extra))

    def wait_connected(self, *sgs, timeout=10):
        for sg in sgs:
            sgtest.wait_for(lambda: cluster_connected(sg) == 1, timeout=timeout,
                            what="sealgate_cluster_connected 1 on " + sg.dir)

    def mint(self, sg, sandbox="sb-1"):
        return sgtest.mint_handle(sg.policy_path, sandbox, "bearer")

    def status(self, sg, handle):
        """(status, X-Sealgate-Error) of one request with handle through sg."""
        r = sgtest.proxied(sg, API, self.echo.port, target="/v1/" + os.urandom(4).hex(),
                           headers=[("Authorization", "Bearer " + handle)])
        return r.status, r.header("X-Sealgate-Error")

    def assert_ok(self, sg, handle):
        self.assertEqual(self.status(sg, handle), (200, None))

    def wait_refused(self, sg, handle, timeout):
        """Seconds until sg refuses handle with 403 revoked (bounded by timeout)."""
        t0 = time.monotonic()
        sgtest.wait_for(lambda: self.status(sg, handle) == (403, "revoked"),
                        timeout=timeout, interval=0.02, what="403 revoked on " + sg.dir)
        return time.monotonic() - t0

    def revoke(self, sg, kind, value):
        status, text = admin_call(sg, "POST", "/v1/revoke", {kind: value})
        self.assertEqual(status, 200, text)

    def local_file(self, sg):
        with open(os.path.join(sg.dir, "revocations.json")) as f:
            return json.load(f)

    def wait_in_redis(self, redis, field):
        return sgtest.wait_for(lambda: redis.command("HGET", "sgt:revocations", field),
                               timeout=10, what="%s in redis" % field)


class ShareTest(ClusterCase):

    def setUp(self):
        self.redis = Redis(self)
        self.a = self.sidecar(self.redis, "a")
        self.b = self.sidecar(self.redis, "b")
        self.wait_connected(self.a, self.b)

    def test_handle_revoked_on_a_refused_on_b_within_1s(self):
        d = self.mint(self.a)
        other = self.mint(self.a)["handle"]
        self.assert_ok(self.a, d["handle"])
        self.assert_ok(self.b, d["handle"])
        self.revoke(self.a, "handle_id", d["handle_id"])
        took = self.wait_refused(self.b, d["handle"], timeout=5)
        self.assertLess(took, SHARE_WITHIN_S, "B refused only after %.2fs" % took)
        self.assertEqual(self.status(self.a, d["handle"]), (403, "revoked"))
        self.assert_ok(self.b, other)                      # only that handle
        ts = self.redis.command("HGET", "sgt:revocations", "handle:" + d["handle_id"])
        self.assertTrue(ts and ts.isdigit(), ts)
        # B keeps its own durable copy, with A's time
        self.assertEqual(self.local_file(self.b)["handles"][d["handle_id"]], int(ts))
        self.assertIn("from node a applied", self.b.log())

    def test_cli_revoke_on_a_refused_on_b_within_1s(self):
        """`sealgate revoke` writes A's file; A's watcher sends it on."""
        d = self.mint(self.a)
        self.assert_ok(self.b, d["handle"])
        rc, out, err = sgtest.sealgate_cli("revoke", "--policy", self.a.policy_path,
                                           "--handle-id", d["handle_id"])
        self.assertEqual(rc, 0, err)
        took = self.wait_refused(self.b, d["handle"], timeout=5)
        self.assertLess(took, SHARE_WITHIN_S, "B refused only after %.2fs" % took)
        self.assertIn(d["handle_id"], self.local_file(self.b)["handles"])

    def test_sandbox_revocation_travels_b_to_a(self):
        h = self.mint(self.b)["handle"]
        self.assert_ok(self.a, h)
        self.revoke(self.b, "sandbox", "sb-1")
        took = self.wait_refused(self.a, h, timeout=5)
        self.assertLess(took, SHARE_WITHIN_S, "A refused only after %.2fs" % took)
        self.assertIn("sb-1", self.local_file(self.a)["sandboxes"])
        self.assertTrue(self.redis.command("HGET", "sgt:revocations", "sandbox:sb-1"))


class OutageTest(ClusterCase):

    def setUp(self):
        self.redis = Redis(self)
        self.a = self.sidecar(self.redis, "a")
        self.b = self.sidecar(self.redis, "b")
        self.wait_connected(self.a, self.b)

    def test_redis_restarted_empty_gets_revocations_back(self):
        d = self.mint(self.a)
        self.revoke(self.a, "handle_id", d["handle_id"])
        self.wait_refused(self.b, d["handle"], timeout=5)
        field = "handle:" + d["handle_id"]
        self.wait_in_redis(self.redis, field)
        old_pid = self.redis.proc.pid
        self.redis.stop()
        for sg in (self.a, self.b):
            sgtest.wait_for(lambda: cluster_connected(sg) == 0, timeout=10,
                            what="sealgate_cluster_connected 0")
            self.assertEqual(self.status(sg, d["handle"]), (403, "revoked"))
        self.redis.start()          # a new process, nothing saved: empty
        self.assertNotEqual(self.redis.proc.pid, old_pid)
        self.wait_connected(self.a, self.b)
        self.wait_in_redis(self.redis, field)
        for sg in (self.a, self.b):
            self.assertEqual(self.status(sg, d["handle"]), (403, "revoked"))
            self.assertIn("lost redis", sg.log())

    def test_stopped_redis_noticed_then_caught_up(self):
        """A Redis that stops answering (SIGSTOP: the connections stay open) is noticed by
        the PING; a revocation made meanwhile is enforced at once where it was made, and
        reaches the other sidecar after SIGCONT."""
        d = self.mint(self.a)
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        try:
            for sg in (self.a, self.b):
                sgtest.wait_for(lambda: cluster_connected(sg) == 0, timeout=15,
                                what="sealgate_cluster_connected 0 with redis stopped")
            self.revoke(self.a, "handle_id", d["handle_id"])
            self.wait_refused(self.a, d["handle"], timeout=5)
            self.assertEqual(self.status(self.b, d["handle"]), (200, None))
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        self.wait_refused(self.b, d["handle"], timeout=20)
        self.wait_connected(self.a, self.b, timeout=20)
        self.assertIn("did not answer a PING", self.a.log())

    def test_revoked_on_b_while_down_reaches_a_after(self):
        d = self.mint(self.b)
        self.assert_ok(self.a, d["handle"])
        self.redis.stop()
        sgtest.wait_for(lambda: cluster_connected(self.b) == 0, timeout=10,
                        what="B notices redis is gone")
        self.revoke(self.b, "handle_id", d["handle_id"])
        took = self.wait_refused(self.b, d["handle"], timeout=5)
        self.assertLess(took, SHARE_WITHIN_S)               # local: at once
        self.assertEqual(self.status(self.a, d["handle"]), (200, None))
        self.redis.start()
        self.wait_refused(self.a, d["handle"], timeout=15)
        self.wait_in_redis(self.redis, "handle:" + d["handle_id"])
        self.assertIn(d["handle_id"], self.local_file(self.a)["handles"])


class AuthTest(ClusterCase):

    def setUp(self):
        self.redis = Redis(self, conf_lines=[
            "user default off",
            "user sgnode on >%s ~sgt:* &sgt:* +@all" % REDIS_PASSWORD])
        self.redis.auth = ("sgnode", REDIS_PASSWORD)

    def test_acl_user_and_password(self):
        a = self.sidecar(self.redis, "a", user="sgnode",
                         password={"value": REDIS_PASSWORD})
        b = self.sidecar(self.redis, "b", user="sgnode",
                         password={"value": REDIS_PASSWORD})
        self.wait_connected(a, b)
        d = self.mint(a)
        self.revoke(a, "handle_id", d["handle_id"])
        self.wait_refused(b, d["handle"], timeout=5)
        self.assertTrue(self.redis.command("HGET", "sgt:revocations",
                                           "handle:" + d["handle_id"]))
        for sg in (a, b):
            self.assertNotIn(REDIS_PASSWORD, sg.log())

    def test_wrong_password_logged_and_serving_locally(self):
        c = self.sidecar(self.redis, "c", user="sgnode", password={"value": "wrong-pw"})
        sgtest.wait_for(lambda: "refused AUTH" in c.log(), timeout=10,
                        what="the AUTH error in the log")
        line = [x for x in c.log().splitlines() if "refused AUTH" in x][0]
        self.assertIn("as user sgnode", line)
        self.assertIn("WRONGPASS", line)
        self.assertNotIn("wrong-pw", c.log())
        self.assertEqual(cluster_connected(c), 0)
        d = self.mint(c)
        other = self.mint(c)["handle"]
        self.assert_ok(c, d["handle"])
        self.revoke(c, "handle_id", d["handle_id"])
        self.wait_refused(c, d["handle"], timeout=5)
        self.assert_ok(c, other)
        self.assertEqual(self.redis.command("EXISTS", "sgt:revocations"), 0)


class PolicyTest(sgtest.TestCase):

    def check(self, cluster, revocations=True):
        d = tempfile.mkdtemp(prefix="sgtest-clpol-")
        self.addCleanup(shutil.rmtree, d, True)
        pol = {"cluster": cluster}
        if revocations:
            pol["revocations"] = {"file": "revocations.json"}
        path = os.path.join(d, "policy.json")
        with open(path, "w") as f:
            json.dump(pol, f)
        rc, out, err = sgtest.sealgate_cli("policy", "check", path)
        return rc, path, out + err

    def test_sentinels_refused_with_location(self):
        rc, path, text = self.check({"redis": {"address": "127.0.0.1:6379",
                                               "sentinels": ["127.0.0.1:26379"],
                                               "master_name": "m"}})
        self.assertNotEqual(rc, 0)
        self.assertIn("%s: cluster.redis.sentinels: Redis Sentinel is not supported yet"
                      % path, text)

    def test_needs_revocations_file(self):
        rc, path, text = self.check({"redis": {"address": "unix:/run/redis.sock"}},
                                    revocations=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("%s: cluster: needs revocations.file" % path, text)

    def test_bad_address_and_user_without_password(self):
        rc, path, text = self.check({"redis": {"address": "redis.local", "user": "u"}})
        self.assertNotEqual(rc, 0)
        self.assertIn("%s: cluster.redis.address: \"redis.local\" is not" % path, text)
        self.assertIn("%s: cluster.redis.user: needs \"password\"" % path, text)

    def test_good_cluster_policy(self):
        rc, path, text = self.check({"redis": {"address": "[::1]:6379", "node": "host-a",
                                               "prefix": "fleet1:",
                                               "password": {"env": "HOME"}}})
        self.assertEqual(rc, 0, text)
