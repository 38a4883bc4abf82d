"""Operations end to end: audit log, metrics, live reload, drain, accept limit.

  AuditTest     forwarded / denied / rate-limited / exfiltration requests: exactly one
                line each with the right event, status, error, credential, handle id;
                no query string; bytes_down = body length; the whole file never holds a
                secret or handle text. SIGUSR1 after a rename (logrotate). reload lines
                after SIGHUP (ok and broken, with the located errors).
  MetricsTest   counters moved by known traffic, handle and leaf caches, the upstream
                latency histogram (cumulative, _count = forwarded), policy generation and
                last reload result.
  ReloadTest    live reload (SIGHUP) with a streamed download and keep-alive clients in
                flight; open connections after a withdrawal; broken policies (syntax and
                meaning) keep the old one with located errors; POST /v1/reload.
  ReloadSpeedTest  POST /v1/reload of 1,000 credentials x 1,000 sandboxes (time printed).
  DrainTest     SIGTERM with a slow response in flight; drain_timeout 1s with a request
                that never finishes; a second signal stops at once.
  MaxConnTest   limits.max_connections 20: the 21st is closed, closing some lets a new
                one in.

Secrets are random per run and never printed (sgtest.redact / redact_handles).
"""
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import sgtest
from test_admin import Admin

API = "api.example.test"
OTHER = "other.example.test"
SECRETS = {n: "sk-ops-%s-%s" % (n, os.urandom(12).hex()) for n in ("api", "limited", "keep")}
ALL_SECRETS = list(SECRETS.values())


def R(x):
    return sgtest.redact_handles(sgtest.redact(x, ALL_SECRETS))


def ops_policy(port, **top):
    def cred(name, **kw):
        c = {"secret": {"value": SECRETS[name]}, "inject": {"type": "bearer"},
             "hosts": ["%s:%d" % (API, port)], "methods": ["GET", "POST"],
             "paths": ["/v1/*", "/bytes/*", "/slow/*"]}
        c.update(kw)
        return c
    pol = {
        "credentials": {
            "api": cred("api"),
            "limited": cred("limited", rate={"requests": 1, "per": "1h", "burst": 2}),
            "keep": cred("keep"),
        },
        "sandboxes": {"sb-1": {"addresses": ["127.0.0.1/32"],
                               "credentials": ["api", "keep", "limited"]}},
    }
    for k, v in top.items():
        pol[k] = v
    return pol


def metrics(sg):
    """{(name, ((label, value), ...)): float} of the admin /metrics text, and the text."""
    c = http.client.HTTPConnection(*sg.admin, timeout=10)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode()
        assert r.status == 200, (r.status, text[:200])
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "unparsable metrics line: %r" % line
        labels = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                         m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out, text


def mval(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def readyz(sg):
    c = http.client.HTTPConnection(*sg.admin, timeout=5)
    try:
        c.request("GET", "/readyz")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def get(target, port, handle):
    """Request bytes for GET target at api.example.test:port with the handle."""
    return sgtest.build_request("GET", target, "%s:%d" % (API, port),
                                [("Authorization", "Bearer " + handle)])


def write_policy(sg, pol):
    """Replace the policy file atomically (as an editor or config management would)."""
    tmp = sg.policy_path + ".tmp"
    with open(tmp, "w") as f:
        if isinstance(pol, str):
            f.write(pol)
        else:
            json.dump(pol, f, indent=2)
    os.replace(tmp, sg.policy_path)


class OpsCase(sgtest.TestCase):

    def mint(self, credential, sg=None, sandbox="sb-1"):
        return sgtest.mint_handle((sg or self.sg).policy_path, sandbox, credential)

    def req(self, handle, target, host=API, sg=None, echo=None, timeout=10):
        hdrs = [("Authorization", "Bearer " + handle)] if handle else []
        return sgtest.proxied(sg or self.sg, host, (echo or self.echo).port, target=target,
                              headers=hdrs, timeout=timeout)

    def audit_path(self, sg=None):
        sg = sg or self.sg
        return os.path.join(sg.dir, sg.policy["audit"]["path"])

    def audit_lines(self, path=None):
        try:
            with open(path or self.audit_path(), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        # The writer thread flushes a stdio buffer: a batch larger than the buffer reaches
        # the file in pieces, so the last line may be incomplete while we read (seen under
        # ASan). Only lines ending in a newline are judged; a torn tail is read next time.
        lines = data.split(b"\n")[:-1]
        for raw in lines:
            try:
                out.append(json.loads(raw))
            except ValueError:
                self.fail("audit line is not JSON: %s" % R(raw[:300]))
        return out

    def wait_audit(self, pred, n=1, path=None, timeout=10, what="audit lines"):
        """Wait until at least n lines match pred (the writer thread is asynchronous);
        then return the matching lines."""
        found = []

        def probe():
            found[:] = [l for l in self.audit_lines(path) if pred(l)]
            return len(found) >= n
        sgtest.wait_for(probe, timeout=timeout, what=what)
        return list(found)

    def gen(self, sg=None):
        s, _ = metrics(sg or self.sg)
        return mval(s, "sealgate_policy_generation")


# --------------------------------------------------------------------------- audit

AUDIT_FIELDS = ["time", "event", "sandbox", "source", "handle_id", "credential", "method",
                "host", "port", "path", "status", "error", "bytes_up", "bytes_down",
                "upstream_ms", "total_ms", "detail"]


class AuditTest(OpsCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=ops_policy(cls.echo.port))
        cls.handles = []

    def mint(self, credential, sg=None, sandbox="sb-1"):
        h = super().mint(credential, sg, sandbox)
        type(self).handles.append(h["handle"])
        return h

    def check_line(self, line, **want):
        keys = list(line)
        self.assertEqual(keys, [k for k in AUDIT_FIELDS if k in line],
                         "fields out of order or unknown: %s" % keys)
        self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        bad = ["%s: %r (want %r)" % (k, line.get(k), v) for k, v in want.items()
               if line.get(k) != v]
        self.assertFalse(bad, "audit line %s: %s" % (R(json.dumps(line)), "; ".join(bad)))

    def marker_lines(self, m):
        return self.wait_audit(lambda l: m in l.get("path", ""),
                               what="audit line with marker " + m)

    def one_line(self, m):
        lines = self.marker_lines(m)
        # barrier: a later request's line is written after this one (one writer, FIFO)
        self.req(None, "/v1/barrier")
        lines = [l for l in self.audit_lines() if m in l.get("path", "")]
        self.assertEqual(len(lines), 1, "want exactly one line for %s: %s"
                         % (m, R(json.dumps(lines))))
        return lines[0]

    def test_forwarded(self):
        h = self.mint("api")
        m = os.urandom(6).hex()
        r = self.req(h["handle"], "/v1/x-%s?token=abc&q=%s" % (m, m))
        self.assertEqual(r.status, 200, R(r))
        line = self.one_line(m)
        # the echo reflects the injected secret; the scrubber puts the handle back, so the
        # client's body differs from the upstream's by this much
        grow = r.body.count(h["handle"].encode()) * (len(h["handle"]) - len(SECRETS["api"]))
        print("\n  forwarded: client body %d bytes, upstream body %d bytes (scrub +%d), "
              "audit bytes_down %s" % (len(r.body), len(r.body) - grow, grow,
                                       line.get("bytes_down")))
        self.check_line(line, event="request", sandbox="sb-1", handle_id=h["handle_id"],
                        credential="api", method="GET", host=API, port=self.echo.port,
                        path="/v1/x-" + m, status=200, bytes_up=0,
                        bytes_down=len(r.body))
        self.assertNotIn("error", line)
        self.assertTrue(line["source"].startswith("127.0.0.1"), line["source"])
        self.assertGreater(line["total_ms"], 0)
        self.assertIn("upstream_ms", line)
        self.assertNotIn("token=abc", json.dumps(line))

    def test_forwarded_streamed_bytes(self):
        h = self.mint("api")
        m = os.urandom(6).hex()
        n = 300000
        r = self.req(h["handle"], "/bytes/%d?m=%s" % (n, m))
        self.assertEqual(r.status, 200, R(r))
        self.assertEqual(len(r.body), n)
        line = self.wait_audit(lambda l: l.get("path") == "/bytes/%d" % n
                               and l.get("handle_id") == h["handle_id"])[0]
        self.check_line(line, event="request", status=200, bytes_down=n, credential="api")

    def test_denied_out_of_scope_path(self):
        h = self.mint("api")
        m = os.urandom(6).hex()
        r = self.req(h["handle"], "/admin/x-%s?secret=1" % m)
        sgtest.assert_error(self, r, 403, "path_out_of_scope")
        line = self.one_line(m)
        self.check_line(line, event="denied", sandbox="sb-1", handle_id=h["handle_id"],
                        credential="api", method="GET", host=API, port=self.echo.port,
                        path="/admin/x-" + m, status=403, error="path_out_of_scope")

    def test_rate_limited(self):
        h = self.mint("limited")
        ms = [os.urandom(6).hex() for _ in range(3)]
        rs = [self.req(h["handle"], "/v1/rl-" + m) for m in ms]
        self.assertEqual([r.status for r in rs], [200, 200, 429], [R(r) for r in rs])
        for m, ev, st, err in zip(ms, ["request", "request", "rate_limited"],
                                  [200, 200, 429], [None, None, "rate_limited"]):
            line = self.one_line(m)
            self.check_line(line, event=ev, status=st, error=err, credential="limited",
                            handle_id=h["handle_id"], path="/v1/rl-" + m)

    def test_exfiltration(self):
        h = self.mint("api")
        m = os.urandom(6).hex()
        r = self.req(h["handle"], "/v1/ex-%s?k=v" % m, host=OTHER)
        self.assertEqual(r.status, 403, R(r))
        line = self.one_line(m)
        self.check_line(line, event="exfiltration", sandbox="sb-1",
                        handle_id=h["handle_id"], credential="api", host=OTHER,
                        port=self.echo.port, path="/v1/ex-" + m, status=403,
                        error=r.header("X-Sealgate-Error"))
        self.assertIn(line["error"], ("host_out_of_scope", "handle_encoded"))

    def test_zz_no_secret_or_handle_in_file(self):
        """Runs last in the class (name order): the whole file after all the traffic."""
        h = self.mint("api")
        self.req(h["handle"], "/v1/last?token=" + h["handle"])      # handle in a query
        self.req(h["handle"], "/v1/last2", host=OTHER)
        self.wait_audit(lambda l: l.get("path") == "/v1/last2")
        with open(self.audit_path(), "rb") as f:
            data = f.read().decode("latin-1")
        self.assertGreater(len(self.handles), 3)
        for hd in self.handles:
            body = hd.split(".")[2]
            self.assertTrue(body[:20] not in data, "handle text found in the audit log")
        self.assertNotIn("sgh1.", data)
        for s in ALL_SECRETS:
            self.assertTrue(s not in data, "a secret (%d bytes) is in the audit log" % len(s))
        self.assertNotIn("token=", data)
        self.assertEqual(os.stat(self.audit_path()).st_mode & 0o777, 0o640)

    def test_rotation_sigusr1(self):
        """logrotate: rename, SIGUSR1; earlier lines stay in the renamed file, later ones
        go to a new file at the configured path; none lost or doubled."""
        path = self.audit_path()
        old = path + ".1"
        h = self.mint("api")["handle"]
        m0 = "rot0-" + os.urandom(4).hex()
        self.assertEqual(self.req(h, "/v1/" + m0).status, 200)
        self.wait_audit(lambda l: m0 in l.get("path", ""))
        os.rename(path, old)
        m1 = "rot1-" + os.urandom(4).hex()      # after the rename, before the signal
        self.assertEqual(self.req(h, "/v1/" + m1).status, 200)
        self.wait_audit(lambda l: m1 in l.get("path", ""), path=old)
        os.kill(self.sg.pid, signal.SIGUSR1)
        sgtest.wait_for(lambda: os.path.exists(path), what="audit file reopened at " + path)
        m2s = []
        for _ in range(3):
            m2 = "rot2-" + os.urandom(4).hex()
            m2s.append(m2)
            self.assertEqual(self.req(h, "/v1/" + m2).status, 200)
        self.wait_audit(lambda l: m2s[-1] in l.get("path", ""), path=path)
        self.req(None, "/v1/barrier")
        self.wait_audit(lambda l: l.get("path") == "/v1/barrier", path=path)
        new_l, old_l = self.audit_lines(path), self.audit_lines(old)

        def count(lines, m):
            return sum(1 for l in lines if m in l.get("path", ""))
        for m in (m0, m1):
            self.assertEqual((count(old_l, m), count(new_l, m)), (1, 0), m)
        for m in m2s:
            self.assertEqual((count(old_l, m), count(new_l, m)), (0, 1), m)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)

    def test_reload_lines(self):
        os.kill(self.sg.pid, signal.SIGHUP)
        line = self.wait_audit(lambda l: l.get("event") == "reload" and
                               l.get("source") == "SIGHUP" and l.get("status") == 200)[0]
        self.check_line(line, event="reload", status=200)
        good = self.sg.policy
        try:
            with open(self.sg.policy_path) as f:
                text = f.read()
            write_policy(self.sg, text.replace('"credentials"', '"credentials" x', 1))
            os.kill(self.sg.pid, signal.SIGHUP)
            bad = self.wait_audit(lambda l: l.get("event") == "reload" and
                                  l.get("status") == 422)[0]
            self.check_line(bad, event="reload", status=422, error="policy_invalid")
            # docs: the located errors are "in an audit reload line either way"
            self.assertRegex(bad.get("detail", ""), r"policy\.json:\d+:\d+",
                             "SIGHUP reload failure audit line has no located errors: %s"
                             % json.dumps(bad))
        finally:
            write_policy(self.sg, good)


# --------------------------------------------------------------------------- metrics

class MetricsTest(OpsCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=ops_policy(cls.echo.port))

    def test_traffic_counters_and_histogram(self):
        before, _ = metrics(self.sg)
        self.assertEqual(mval(before, "sealgate_upstream_latency_seconds_count"), 0)
        h = self.mint("api")["handle"]
        N = 6
        for i in range(N):                      # each on a new connection
            r = self.req(h, "/v1/m%d" % i)
            self.assertEqual(r.status, 200, R(r))
        slow = self.req(h, "/slow/30")          # one in a higher bucket
        self.assertEqual(slow.status, 200, R(slow))
        forwarded = N + 1
        d = self.req(h, "/nope")
        sgtest.assert_error(self, d, 403, "path_out_of_scope")
        after, text = metrics(self.sg)

        def delta(name, **lb):
            return mval(after, name, **lb) - mval(before, name, **lb)
        self.assertEqual(delta("sealgate_requests_total", outcome="forwarded"), forwarded)
        self.assertGreaterEqual(delta("sealgate_requests_received_total"), forwarded + 1)
        self.assertEqual(delta("sealgate_requests_by_credential_total", credential="api",
                               outcome="forwarded"), forwarded)
        self.assertGreaterEqual(delta("sealgate_connections_accepted_total"), forwarded + 1)
        self.assertGreaterEqual(delta("sealgate_tls_handshakes_total", side="client"),
                                forwarded + 1)
        # handle cache: one unseal, then hits
        self.assertGreaterEqual(delta("sealgate_handle_cache_misses_total"), 1)
        self.assertGreaterEqual(delta("sealgate_handle_cache_hits_total"), forwarded)
        self.assertGreaterEqual(mval(after, "sealgate_handle_cache_entries"), 1)
        # leaf cache: one leaf for api.example.test, reused by every later connection
        self.assertGreaterEqual(delta("sealgate_leaf_cache_hits_total"), forwarded)
        self.assertGreaterEqual(mval(after, "sealgate_leaf_cache_entries"), 1)
        self.assertLessEqual(delta("sealgate_leaf_cache_misses_total"), 1)
        # histogram
        self.assertIn("# TYPE sealgate_upstream_latency_seconds histogram", text)
        buckets = sorted(((float(dict(lb)["le"]), v) for (n, lb), v in after.items()
                          if n == "sealgate_upstream_latency_seconds_bucket"),
                         key=lambda x: x[0])
        les = [b[0] for b in buckets]
        self.assertEqual(les, [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                               float("inf")])
        vals = [b[1] for b in buckets]
        self.assertEqual(vals, sorted(vals), "buckets not cumulative: %s" % vals)
        count = mval(after, "sealgate_upstream_latency_seconds_count")
        self.assertEqual(vals[-1], count)
        self.assertEqual(count, forwarded)
        self.assertLessEqual(vals[les.index(0.025)], forwarded - 1,
                             "the /slow/30 answer must not be in le=0.025")
        self.assertGreaterEqual(mval(after, "sealgate_upstream_latency_seconds_sum"), 0.03)
        self.assertEqual(mval(after, "sealgate_audit_dropped_total"), 0)
        # the handle named credential api; its refusal counts under it
        self.assertEqual(delta("sealgate_requests_by_credential_total", credential="api",
                               outcome="denied"), 1,
                         "denied request of credential api not counted: %s"
                         % [l for l in text.splitlines() if "by_credential" in l])

    def test_generation_and_reload_result(self):
        admin = Admin(self.sg)
        g0 = self.gen()
        self.assertGreaterEqual(g0, 1)
        t0 = int(time.time())
        st, _, body = admin.authed("POST", "/v1/reload")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["generation"], g0 + 1)
        s, _ = metrics(self.sg)
        self.assertEqual(mval(s, "sealgate_policy_generation"), g0 + 1)
        self.assertEqual(mval(s, "sealgate_policy_last_reload_success"), 1)
        self.assertGreaterEqual(mval(s, "sealgate_policy_last_reload_timestamp_seconds"),
                                t0 - 1)
        os.kill(self.sg.pid, signal.SIGHUP)
        sgtest.wait_for(lambda: self.gen() == g0 + 2, what="generation after SIGHUP")
        good = self.sg.policy
        try:
            write_policy(self.sg, '{"credentials": {,}}\n')
            st, _, body = admin.authed("POST", "/v1/reload")
            self.assertEqual(st, 422, body)
            s, _ = metrics(self.sg)
            self.assertEqual(mval(s, "sealgate_policy_last_reload_success"), 0)
            self.assertEqual(mval(s, "sealgate_policy_generation"), g0 + 2)
        finally:
            write_policy(self.sg, good)
        st, _, body = admin.authed("POST", "/v1/reload")
        self.assertEqual(st, 200, body)
        s, _ = metrics(self.sg)
        self.assertEqual(mval(s, "sealgate_policy_last_reload_success"), 1)
        self.assertEqual(mval(s, "sealgate_policy_generation"), g0 + 3)


# --------------------------------------------------------------------------- live reload

class Downloader(threading.Thread):
    """GET /bytes/N through sealgate; reads 64 KiB at a steady pace until `fast` is set,
    then the rest. started: set after the first MiB."""

    def __init__(self, tc, handle, n):
        super().__init__(daemon=True)
        self.tc, self.handle, self.n = tc, handle, n
        self.started = threading.Event()
        self.fast = threading.Event()
        self.got = 0
        self.digest = None
        self.status = None
        self.framing = None
        self.error = None

    def run(self):
        try:
            c = sgtest.open_intercepted(self.tc.sg, API, self.tc.echo.port, timeout=30)
            with c:
                c.send(get("/bytes/%d" % self.n, self.tc.echo.port, self.handle))
                self.status, _, headers, _ = c.read_head(timeout=30)
                hd = {k.lower(): v for k, v in headers}
                self.framing = "content-length" if "content-length" in hd else \
                    hd.get("transfer-encoding")
                h = hashlib.sha256()
                deadline = time.monotonic() + 60
                pace = threading.Event()

                def take(piece):
                    h.update(piece)
                    self.got += len(piece)
                    if self.got >= (1 << 20):
                        self.started.set()
                        if not self.fast.is_set():
                            pace.wait(0.002)        # slow but steady reader

                def pieces(left):
                    while left:
                        piece = c._readn(min(left, 65536), deadline)
                        left -= len(piece)
                        take(piece)
                if "content-length" in hd:
                    pieces(int(hd["content-length"]))
                elif "chunked" in hd.get("transfer-encoding", "").lower():
                    while True:
                        size = int(c._readline(deadline).split(b";")[0].strip(), 16)
                        if size == 0:
                            while c._readline(deadline) not in (b"\r\n", b"\n"):
                                pass
                            break
                        pieces(size)
                        c._readn(2, deadline)
                else:
                    raise AssertionError("response without framing: %r" % headers)
                self.digest = h.hexdigest()
        except BaseException as e:     # reported by the test
            self.error = e
        finally:
            self.started.set()


class KeepAlive(threading.Thread):
    """One connection opened at construction; requests in a loop until `stop` is set and
    `after` more were made (bounded), recording (phase, status, error code)."""

    def __init__(self, tc, handle, reloaded, after=5, limit=400, reloading=None):
        super().__init__(daemon=True)
        self.tc, self.handle, self.reloaded = tc, handle, reloaded
        self.reloading = reloading or reloaded   # set when the reload is sent
        self.after, self.limit = after, limit
        self.conn = sgtest.open_intercepted(tc.sg, API, tc.echo.port, timeout=15)
        self.results = []
        self.warm = threading.Event()
        self.error = None
        self.closed_by_server = False

    def run(self):
        pace = threading.Event()
        try:
            n_after = 0
            for i in range(self.limit):
                phase = ("after" if self.reloaded.is_set() else
                         "during" if self.reloading.is_set() else "before")
                self.conn.send(get("/v1/ka-%d" % i, self.tc.echo.port, self.handle))
                r = self.conn.read_response()
                if phase == "before" and self.reloading.is_set():
                    phase = "during"    # the reload may have begun before it was served
                self.results.append((phase, r.status, r.header("X-Sealgate-Error")))
                if len(self.results) >= 2:
                    self.warm.set()
                if r.status != 200:
                    # an error answer closes the connection by design (Connection: close)
                    self.closed_by_server = self.conn.wait_closed(timeout=5)
                    break
                if phase == "after":
                    n_after += 1
                    if n_after >= self.after:
                        break
                pace.wait(0.01)
        except BaseException as e:
            self.error = e
        finally:
            self.warm.set()
            self.conn.close()


class ReloadTest(OpsCase):

    def setUp(self):
        self.echo = sgtest.EchoUpstream(self)
        self.sg = sgtest.Sealgate(self, overrides=ops_policy(
            self.echo.port, limits={"upstream_timeout": "30s"}))
        self.admin = Admin(self.sg)

    def withdrawn_policy(self):
        pol = json.loads(json.dumps(self.sg.policy))
        pol["sandboxes"]["sb-1"]["credentials"] = ["keep", "limited"]
        return pol

    def test_live_reload_no_connection_dropped(self):
        api = self.mint("api")["handle"]
        keep = self.mint("keep")["handle"]
        reloaded, reloading = threading.Event(), threading.Event()
        n = 48 << 20
        dl = Downloader(self, api, n)
        ka_api = KeepAlive(self, api, reloaded, reloading=reloading)
        ka_keep = KeepAlive(self, keep, reloaded, reloading=reloading)
        dl.start()
        ka_api.start()
        ka_keep.start()
        try:
            self.assertTrue(dl.started.wait(20), "download did not start")
            self.assertIsNone(dl.error, R(repr(dl.error)))
            self.assertTrue(ka_api.warm.wait(20) and ka_keep.warm.wait(20))
            self.assertLess(dl.got, n, "download finished before the reload")
            reloading.set()     # from here a request may meet either snapshot
            write_policy(self.sg, self.withdrawn_policy())
            os.kill(self.sg.pid, signal.SIGHUP)
            sgtest.wait_for(lambda: self.gen() == 2, what="generation 2 after SIGHUP")
            got_at_reload = dl.got
            reloaded.set()
            # a new connection uses the new policy at once
            r = self.req(api, "/v1/new-conn")
            sgtest.assert_error(self, r, 403, "credential_not_granted")
            self.assertEqual(self.req(keep, "/v1/new-conn-keep").status, 200)
        finally:
            reloaded.set()
            dl.fast.set()
            for t in (dl, ka_api, ka_keep):
                t.join(60)
        print("\n  live reload: download (%s) at %d of %d bytes when generation 2 was seen"
              % (dl.framing, got_at_reload, n))
        print("  keep-alive (withdrawn credential) on a connection opened before: %s"
              % ka_api.results)
        print("  keep-alive (kept credential): %d requests, statuses %s"
              % (len(ka_keep.results), sorted(set(s for _, s, _ in ka_keep.results))))
        self.assertLess(got_at_reload, n)
        self.assertIsNone(dl.error, "download: %s" % R(repr(dl.error)))
        self.assertEqual(dl.status, 200)
        self.assertEqual(dl.got, n)
        self.assertEqual(dl.digest, sgtest.sha256(sgtest.payload(n)), "download corrupted")
        for ka in (ka_api, ka_keep):
            self.assertIsNone(ka.error, "keep-alive client: %s" % R(repr(ka.error)))
        self.assertEqual({s for _, s, _ in ka_keep.results}, {200}, ka_keep.results)
        self.assertGreaterEqual(len([1 for p, _, _ in ka_keep.results if p == "after"]), 5)
        # the withdrawn credential, on the connection opened before the reload: every
        # answer is 200 (old snapshot) or 403 credential_not_granted (new), nothing else
        for phase, st, code in ka_api.results:
            self.assertIn((st, code), ((200, None), (403, "credential_not_granted")),
                          ka_api.results)
            if phase == "before":
                self.assertEqual(st, 200, ka_api.results)
        self.assertTrue(self.sg.alive())

    def test_withdrawal_applies_to_open_connection(self):
        """docs/operations.md: "new connections and new requests use it at once (grants
        removed from a sandbox stop its live handles immediately)". A request sent AFTER
        the reload on a keep-alive connection opened BEFORE it must be refused."""
        api = self.mint("api")["handle"]
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        with c:
            c.send(get("/v1/before", self.echo.port, api))
            self.assertEqual(c.read_response().status, 200)
            write_policy(self.sg, self.withdrawn_policy())
            st, _, body = self.admin.authed("POST", "/v1/reload")
            self.assertEqual(st, 200, body)
            m = "after-" + os.urandom(4).hex()
            c.send(get("/v1/" + m, self.echo.port, api))
            r = c.read_response()
        self.assertTrue(r.status == 403 and
                        r.header("X-Sealgate-Error") == "credential_not_granted",
                        "withdrawn credential still served on a connection opened before "
                        "the reload: %s %s" % (r.status, r.header("X-Sealgate-Error")))

    def test_broken_policy_keeps_old(self):
        keep = self.mint("keep")["handle"]
        api = self.mint("api")["handle"]
        good = self.sg.policy
        text = json.dumps(good, indent=2)
        lines = text.splitlines()
        # syntax: a stray token on a known line
        ln = next(i for i, l in enumerate(lines) if '"sandboxes"' in l)
        lines[ln] = lines[ln].replace('"sandboxes"', '"sandboxes" @', 1)
        write_policy(self.sg, "\n".join(lines) + "\n")
        os.kill(self.sg.pid, signal.SIGHUP)
        pat = re.escape(self.sg.policy_path) + r":%d:\d+" % (ln + 1)
        sgtest.wait_for(lambda: re.search(pat, self.sg.log()),
                        what="located syntax error in the log")
        self.assertEqual(self.gen(), 1)
        s, _ = metrics(self.sg)
        self.assertEqual(mval(s, "sealgate_policy_last_reload_success"), 0)
        self.assertEqual(self.req(api, "/v1/still").status, 200)
        self.assertEqual(self.req(keep, "/v1/still").status, 200)
        # meaning: a sandbox granting an unknown credential -> file: json.path: message
        bad = json.loads(json.dumps(good))
        bad["sandboxes"]["sb-1"]["credentials"] = ["keep", "nosuchcred"]
        write_policy(self.sg, bad)
        os.kill(self.sg.pid, signal.SIGHUP)
        pat2 = re.escape(self.sg.policy_path) + r": sandboxes\.sb-1\.credentials"
        sgtest.wait_for(lambda: re.search(pat2, self.sg.log()),
                        what="located meaning error (file: json.path) in the log")
        self.assertEqual(self.gen(), 1)
        self.assertEqual(self.req(api, "/v1/still2").status, 200)
        # admin API: 422 with the located errors
        st, hd, body = self.admin.authed("POST", "/v1/reload")
        self.assertEqual(st, 422, body)
        self.assertEqual(hd.get("x-sealgate-error"), "policy_invalid")
        self.assertRegex(json.loads(body)["message"], pat2)
        self.assertEqual(self.gen(), 1)
        # fixed policy through the admin API
        write_policy(self.sg, self.withdrawn_policy())
        st, _, body = self.admin.authed("POST", "/v1/reload")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {"status": "reloaded", "generation": 2})
        sgtest.assert_error(self, self.req(api, "/v1/gone"), 403, "credential_not_granted")
        self.assertEqual(self.req(keep, "/v1/kept").status, 200)
        s, _ = metrics(self.sg)
        self.assertEqual(mval(s, "sealgate_policy_last_reload_success"), 1)
        for sec in ALL_SECRETS:
            self.assertTrue(sec not in self.sg.log(), "a secret is in the log")

    def test_reload_requires_token(self):
        st, _, _ = self.admin.request("POST", "/v1/reload")
        self.assertEqual(st, 401)
        st, _, _ = self.admin.request("POST", "/v1/reload", token="0" * 64)
        self.assertEqual(st, 403)
        self.assertEqual(self.gen(), 1)


class ReloadSpeedTest(OpsCase):
    NCRED = 1000
    NSB = 1000

    def test_reload_1000x1000(self):
        self.echo = sgtest.EchoUpstream(self)
        creds = {}
        for i in range(self.NCRED):
            creds["cred-%04d" % i] = {
                "secret": {"value": "sk-speed-%04d-%s" % (i, os.urandom(8).hex())},
                "inject": {"type": "bearer"},
                "hosts": ["h%d.example.test" % i, "%s:%d" % (API, self.echo.port)],
                "methods": ["GET", "POST"], "paths": ["/v1/*"],
                "rate": {"requests": 100, "per": "1s"}}
        sbs = {}
        for i in range(self.NSB):
            sbs["sb-%04d" % i] = {
                "addresses": ["10.%d.%d.0/24" % (i // 256, i % 256)],
                "credentials": ["cred-%04d" % ((i + k) % self.NCRED) for k in range(3)]}
        sbs["sb-local"] = {"addresses": ["127.0.0.1/32"], "credentials": ["cred-0007"]}
        t = time.monotonic()
        self.sg = sgtest.Sealgate(self, overrides={"credentials": creds, "sandboxes": sbs},
                                  start_timeout=60)
        start_s = time.monotonic() - t
        admin = Admin(self.sg)
        size = os.path.getsize(self.sg.policy_path)
        times = []
        for _ in range(3):
            t = time.monotonic()
            st, _, body = admin.authed("POST", "/v1/reload")
            times.append(time.monotonic() - t)
            self.assertEqual(st, 200, body[:300])
        self.assertEqual(json.loads(body)["generation"], 4)
        h = self.mint("cred-0007", sandbox="sb-local")["handle"]
        self.assertEqual(self.req(h, "/v1/speed").status, 200)
        print("\n  reload of %d credentials x %d sandboxes (%d KiB policy): POST /v1/reload "
              "%s ms (start to ready %.0f ms)"
              % (self.NCRED, self.NSB, size // 1024,
                 ", ".join("%.1f" % (x * 1000) for x in times), start_s * 1000))


# --------------------------------------------------------------------------- drain

class DrainTest(OpsCase):

    def start(self, drain):
        self.echo = sgtest.EchoUpstream(self)
        self.sg = sgtest.Sealgate(self, overrides=ops_policy(
            self.echo.port, limits={"drain_timeout": drain, "upstream_timeout": "60s"}))
        self.h = self.mint("keep")["handle"]

    def inflight(self, target):
        """An intercepted connection with target requested; returns once the upstream got it."""
        c = sgtest.open_intercepted(self.sg, API, self.echo.port, timeout=30)
        self.addCleanup(c.close)
        n = len(self.echo.requests)
        c.send(get(target, self.echo.port, self.h))
        self.echo.wait_requests(n + 1)
        sgtest.wait_for(lambda: any(r["path"] == target for r in self.echo.requests),
                        what="upstream got " + target)
        return c

    def idle_keepalive(self):
        c = sgtest.open_intercepted(self.sg, API, self.echo.port, timeout=10)
        self.addCleanup(c.close)
        c.send(get("/v1/idle", self.echo.port, self.h))
        self.assertEqual(c.read_response().status, 200)
        return c

    def new_conn_refused(self, timeout=3):
        """A new proxy connection after SIGTERM: True when connect fails or the server
        closes it (EOF/reset) within timeout; False when it stays open unanswered."""
        try:
            s = socket.create_connection(self.sg.proxy, timeout=timeout)
        except OSError:
            return "connect failed"
        with s:
            try:
                s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n"
                          % (API.encode(), self.echo.port))
                d = s.recv(4096)
            except socket.timeout:
                return False
            except OSError as e:
                return "reset (%s)" % e.__class__.__name__
            return "closed" if d == b"" else "answered %r" % d[:40]

    def test_drain_inflight_completes(self):
        self.start("10s")
        idle = self.idle_keepalive()
        n = 200000
        c = self.inflight("/slow/2500?n=%d&split=1" % n)
        self.assertEqual(readyz(self.sg)[0], 200)
        t0 = time.monotonic()
        self.sg.proc.send_signal(signal.SIGTERM)
        sgtest.wait_for(lambda: readyz(self.sg)[0] == 503, timeout=2,
                        what="/readyz 503 while draining")
        self.assertTrue(idle.wait_closed(timeout=2),
                        "idle keep-alive connection not closed at SIGTERM")
        refused = self.new_conn_refused(timeout=1)
        in_drain = self.sg.alive() and not self.echo.server.done_paths
        r = c.read_response(timeout=20)
        t_done = time.monotonic()
        self.assertEqual(r.status, 200)
        self.assertEqual(sgtest.sha256(r.body), sgtest.sha256(sgtest.payload(n)))
        try:
            rc = self.sg.proc.wait(timeout=max(0.1, 10 - (time.monotonic() - t0) - 1))
        except subprocess.TimeoutExpired:
            self.fail("not exited within the drain timeout although nothing was in flight")
        print("\n  drain: response complete %.2fs after SIGTERM, exit %.2fs after it"
              % (t_done - t0, time.monotonic() - t_done))
        self.assertEqual(rc, 0)
        self.assertTrue(in_drain, "the slow response was not in flight during the checks")
        self.assertTrue(refused, "a new connection during the drain was neither refused "
                        "nor closed: it stayed open unanswered (listener disabled, the "
                        "kernel still accepts into the backlog)")

    def test_drain_timeout(self):
        self.start("1s")
        c = self.inflight("/slow/600000")
        t0 = time.monotonic()
        self.sg.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.sg.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("sealgate still running 10 s after SIGTERM with drain_timeout 1s")
        el = time.monotonic() - t0
        print("\n  drain_timeout 1s with a request that never finishes: exit %d after "
              "%.2fs" % (rc, el))
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(el, 0.9, "exited before the drain timeout")
        self.assertLess(el, 5.0)
        self.assertTrue(c.wait_closed(timeout=5), "client connection left open")

    def test_second_signal_stops_at_once(self):
        self.start("30s")
        self.inflight("/slow/600000")
        t0 = time.monotonic()
        self.sg.proc.send_signal(signal.SIGTERM)
        sgtest.wait_for(lambda: readyz(self.sg)[0] == 503, timeout=3, what="draining")
        self.sg.proc.send_signal(signal.SIGINT)
        try:
            rc = self.sg.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("second signal did not stop sealgate")
        el = time.monotonic() - t0
        print("\n  second signal: exit %d %.2fs after the first" % (rc, el))
        self.assertEqual(rc, 0)
        self.assertLess(el, 10)


# --------------------------------------------------------------------------- accept limit

class MaxConnTest(OpsCase):

    def test_max_connections(self):
        self.echo = sgtest.EchoUpstream(self)
        self.sg = sgtest.Sealgate(self, overrides=ops_policy(
            self.echo.port, limits={"max_connections": 20, "workers": 2}))
        h = self.mint("keep")["handle"]
        conns = []
        self.addCleanup(lambda: [c.close() for c in conns])
        for _ in range(20):
            conns.append(sgtest.open_intercepted(self.sg, API, self.echo.port))
        sgtest.wait_for(lambda: mval(metrics(self.sg)[0], "sealgate_connections_active")
                        == 20, what="20 active connections")
        # the 21st: closed at accept (or refused)
        try:
            extra = sgtest.RawConn(self.sg, timeout=5)
        except OSError:
            extra = None
        if extra is not None:
            with extra:
                try:
                    extra.send(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n"
                               % (API.encode(), self.echo.port))
                except OSError:
                    pass
                self.assertTrue(extra.wait_closed(timeout=5),
                                "21st connection was not closed")
                self.assertEqual(extra.buf, b"")
        s, _ = metrics(self.sg)
        self.assertGreaterEqual(mval(s, "sealgate_connections_rejected_total"), 1)
        paused = mval(s, "sealgate_accept_paused_total")
        # the 20 are still served
        conns[0].send(get("/v1/still", self.echo.port, h))
        self.assertEqual(conns[0].read_response().status, 200)
        for c in conns[:5]:
            c.close()

        def probe():
            try:
                r = self.req(h, "/v1/after", timeout=5)
            except (OSError, ConnectionError, ssl.SSLError) as e:
                return None
            return r.status == 200
        sgtest.wait_for(probe, timeout=10, what="a new connection served after closing 5")
        sgtest.wait_for(lambda: mval(metrics(self.sg)[0], "sealgate_connections_active")
                        <= 16, what="active back under the limit")
        # docs/operations.md: "accept paused (limit or out of descriptors)"
        self.assertGreaterEqual(paused, 1, "sealgate_accept_paused_total stayed 0 although "
                                "accept was paused at max_connections")

