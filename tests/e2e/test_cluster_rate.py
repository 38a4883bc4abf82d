"""Fleet-wide rate limits end to end: two sidecars (nodes a and b) sharing one seal key
and one real redis-server (test_cluster.Redis: a unix socket in a temp dir, nothing
saved). Credential "fleet" has rate_total 10 per hour, burst 10, so only the burst
matters; "closed" is the same with on_cluster_failure "fail_closed". nodes: 2.

  ShareTest    alternating requests across both sidecars admit exactly the fleet burst
               (10, not 20; the over-admission bound while Redis answers is 0), the
               bucket sits in Redis under sgt:rate:fleet, leases are counted
  OutageTest   Redis killed: each sidecar admits exactly its local share (burst / nodes
               = 5); "closed" answers 503 cluster_unavailable; Redis back (empty):
               sharing resumes, both together admit exactly one fleet burst again
  PolicyTest   located errors: on_cluster_failure without rate_total or with a bad
               value, nodes 0
"""
import json
import os
import re
import shutil
import tempfile

import sgtest
from test_cluster import Redis, admin_call, cluster_connected

API = "api.example.test"
SECRET = "sk-fleetrate-e2e-" + os.urandom(8).hex()
BURST = 10
NODES = 2
# Requests tried per phase: far more than any budget, so the count is the budget.
TRIES = 4 * BURST


def metric(sg, name):
    status, text = admin_call(sg, "GET", "/metrics")
    m = re.search(r"^sealgate_%s (\d+)$" % name, text, re.M)
    if status != 200 or m is None:
        raise AssertionError("no sealgate_%s in /metrics" % name)
    return int(m.group(1))


class FleetRateCase(sgtest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="sgtest-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.kp = sgtest.keygen(cls.keydir)
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)

    def policy(self, redis, node):
        rate = {"requests": BURST, "per": "1h", "burst": BURST}
        cred = {"secret": {"value": SECRET}, "inject": {"type": "bearer"},
                "hosts": ["%s:%d" % (API, self.echo.port)], "rate_total": rate}
        return {
            "keys": {"seal_key": self.kp.key},
            "credentials": {"fleet": dict(cred),
                            "closed": dict(cred, on_cluster_failure="fail_closed")},
            "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"],
                                   "credentials": ["fleet", "closed"]}},
            "revocations": {"file": "revocations.json"},
            "cluster": {"redis": {"address": "unix:" + redis.sock, "node": node,
                                  "prefix": "sgt:", "nodes": NODES}},
        }

    def setUp(self):
        self.redis = Redis(self)
        self.a = sgtest.Sealgate(self, overrides=self.policy(self.redis, "a"))
        self.b = sgtest.Sealgate(self, overrides=self.policy(self.redis, "b"))
        self.wait_connected(1)
        self.fleet = sgtest.mint_handle(self.a.policy_path, "sb-1", "fleet")["handle"]
        self.closed = sgtest.mint_handle(self.a.policy_path, "sb-1", "closed")["handle"]

    def wait_connected(self, want):
        for sg in (self.a, self.b):
            sgtest.wait_for(lambda: cluster_connected(sg) == want, timeout=10,
                            what="sealgate_cluster_connected %d on %s" % (want, sg.dir))

    def request(self, sg, handle):
        r = sgtest.proxied(sg, API, self.echo.port, target="/v1/" + os.urandom(4).hex(),
                           headers=[("Authorization", "Bearer " + handle)])
        return r.status, r.header("X-Sealgate-Error"), r.header("Retry-After")

    def admitted(self, sgs, handle):
        """Requests admitted out of TRIES, round-robin over sgs; every refusal must be
        429 rate_limited with a Retry-After."""
        n = 0
        for i in range(TRIES):
            status, err, retry = self.request(sgs[i % len(sgs)], handle)
            if status == 200:
                n += 1
                continue
            self.assertEqual((status, err), (429, "rate_limited"))
            self.assertGreaterEqual(int(retry), 1)
        return n


class ShareTest(FleetRateCase):

    def test_fleet_admits_one_burst_not_one_per_sidecar(self):
        self.assertEqual(self.admitted([self.a, self.b], self.fleet), BURST)
        self.assertEqual(self.redis.command("EXISTS", "sgt:rate:fleet"), 1)
        for sg in (self.a, self.b):
            self.assertGreaterEqual(metric(sg, "cluster_rate_leases_total"), 1)
        # the other credential has its own fleet bucket
        self.assertEqual(self.request(self.b, self.closed)[0], 200)


class OutageTest(FleetRateCase):

    def test_local_share_fail_closed_and_sharing_again(self):
        self.assertEqual(self.request(self.a, self.closed)[0], 200)
        self.redis.stop()
        self.wait_connected(0)
        # local share: burst / nodes per sidecar, each through its own bucket
        self.assertEqual(self.admitted([self.a], self.fleet), BURST // NODES)
        self.assertEqual(self.admitted([self.b], self.fleet), BURST // NODES)
        for sg in (self.a, self.b):
            status, err, _ = self.request(sg, self.closed)
            self.assertEqual((status, err), (503, "cluster_unavailable"))
        self.redis.start()      # empty: a full fleet bucket again
        self.wait_connected(1)
        self.assertEqual(self.admitted([self.a, self.b], self.fleet), BURST)
        self.assertEqual(self.request(self.a, self.closed)[0], 200)


class PolicyTest(sgtest.TestCase):

    def check(self, cred_extra, redis_extra=None):
        d = tempfile.mkdtemp(prefix="sgtest-frpol-")
        self.addCleanup(shutil.rmtree, d, True)
        redis = {"address": "unix:/run/redis.sock"}
        redis.update(redis_extra or {})
        cred = {"secret": {"value": "x"}, "inject": {"type": "bearer"},
                "hosts": ["api.example.test"]}
        cred.update(cred_extra)
        pol = {"cluster": {"redis": redis}, "revocations": {"file": "revocations.json"},
               "credentials": {"c": cred}}
        path = os.path.join(d, "policy.json")
        with open(path, "w") as f:
            json.dump(pol, f)
        rc, out, err = sgtest.sealgate_cli("policy", "check", path)
        return rc, path, out + err

    def test_on_cluster_failure_needs_rate_total(self):
        rc, path, text = self.check({"on_cluster_failure": "fail_closed"})
        self.assertNotEqual(rc, 0)
        self.assertIn("%s: credentials.c.on_cluster_failure: needs \"rate_total\"" % path,
                      text)

    def test_bad_values_located(self):
        rc, path, text = self.check({"rate_total": {"requests": 10, "per": "1h"},
                                     "on_cluster_failure": "open"}, {"nodes": 0})
        self.assertNotEqual(rc, 0)
        self.assertIn("%s: credentials.c.on_cluster_failure: \"open\" is not "
                      "\"local_share\" or \"fail_closed\"" % path, text)
        self.assertIn("%s: cluster.redis.nodes: 0 is out of range" % path, text)

    def test_good_policy(self):
        rc, path, text = self.check({"rate_total": {"requests": 10, "per": "1h"},
                                     "on_cluster_failure": "local_share"}, {"nodes": 3})
        self.assertEqual(rc, 0, text)
