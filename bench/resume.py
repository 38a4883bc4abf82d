#!/usr/bin/env python3
"""bench/resume.py — first request through sealgate after a sandbox resumes, against a warm
request and against the first request of a new connection of a running sandbox, all in
one run. Called by bench/run.sh (workload "resume"); prints one JSON object.

A sandbox is registered (template with ttl "sandbox") on a loopback address of its own,
fetches a handle from the metadata responder, then runs CYCLES times:

  1. new connection (TCP connect, CONNECT, TLS with sealgate) of the running sandbox:
     setup time and its first request ("fresh");
  2. WARM more requests on that keep-alive connection ("warm");
  3. PUT /v1/sandboxes/ID/suspend: the connection must be closed by sealgate, and a
     request from the sandbox refused with 403 sandbox_suspended (checked each cycle);
     hold it suspended PAUSE seconds;
  4. PUT /v1/sandboxes/ID/resume, then a new connection and its first request
     ("resumed"): what a harness waking from hibernation pays.

"resumed total - fresh total" is what resuming costs beyond the one TLS handshake any
new connection costs; "resumed request - warm" is what the first request on a connection
costs beyond a warm one. Handles and secrets are never printed.

usage: resume.py --proxy H:P --admin H:P --admin-hdr FILE --metadata H:P --ca FILE
                 --host NAME --port N --source ADDR [--cycles N] [--warm N] [--pause S]
"""
import argparse
import http.client
import json
import socket
import ssl
import statistics
import sys
import time

SANDBOX = "bench-resume"
TEMPLATE = "bench-persist"


def hostport(s):
    h, _, p = s.rpartition(":")
    return h.strip("[]"), int(p)


class Admin:
    def __init__(self, addr, hdr_file):
        self.addr = hostport(addr)
        with open(hdr_file) as f:
            name, _, value = f.read().strip().partition(":")
        self.auth = {name.strip(): value.strip()}

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection(*self.addr, timeout=10)
        try:
            hdr = dict(self.auth, **{"Content-Type": "application/json"})
            c.request(method, path, body=None if body is None else json.dumps(body), headers=hdr)
            r = c.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data.strip() else None)
        finally:
            c.close()


def fetch_handle(md, source, cred):
    c = http.client.HTTPConnection(*md, timeout=10, source_address=(source, 0))
    try:
        c.request("PUT", "/v1/token", headers={"X-Sealgate-Token-TTL": "600"})
        r = c.getresponse()
        tok = r.read().decode()
        if r.status != 200:
            raise SystemExit("metadata token: %d %s" % (r.status, tok[:200]))
        c.request("GET", "/v1/handles/" + cred, headers={"X-Sealgate-Token": tok})
        r = c.getresponse()
        doc = json.loads(r.read())
        if r.status != 200 or doc.get("lifetime") != "sandbox":
            raise SystemExit("metadata handle: %d lifetime=%s" % (r.status, doc.get("lifetime")))
        return doc["handle"]
    finally:
        c.close()


class Client:
    """One intercepted keep-alive connection from the sandbox's address."""

    def __init__(self, a, ctx):
        self.a = a
        self.c = http.client.HTTPSConnection(*hostport(a.proxy), context=ctx, timeout=10,
                                             source_address=(a.source, 0))
        self.c.set_tunnel(a.host, a.port)

    def connect(self):
        t = time.perf_counter()
        self.c.connect()
        return 1000 * (time.perf_counter() - t)

    def get(self, handle):
        """One request: (ms, status, X-Sealgate-Error)."""
        t = time.perf_counter()
        self.c.request("GET", "/", headers={"Authorization": "Bearer " + handle})
        r = self.c.getresponse()
        r.read()
        return 1000 * (time.perf_counter() - t), r.status, r.getheader("X-Sealgate-Error")

    def closed_by_peer(self, timeout=3.0):
        """True when sealgate closed the connection (EOF within timeout)."""
        s = self.c.sock
        s.settimeout(timeout)
        try:
            return s.recv(1) == b""
        except (ssl.SSLError, ConnectionError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.c.close()


def refused_while_suspended(a, ctx, handle):
    """A request from the suspended sandbox: 403 sandbox_suspended (at the CONNECT)."""
    c = Client(a, ctx)
    try:
        c.connect()
        return False            # the CONNECT went through: not refused
    except OSError as e:
        return "403" in str(e)
    finally:
        c.close()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def summary(xs):
    return {"p50_ms": round(statistics.median(xs), 3) if xs else None,
            "p90_ms": round(pct(xs, 0.9), 3) if xs else None, "n": len(xs)}


def run(a):
    admin = Admin(a.admin, a.admin_hdr)
    st, j = admin.call("PUT", "/v1/sandboxes/" + SANDBOX,
                       {"template": TEMPLATE, "addresses": [a.source + "/32"]})
    if st not in (200, 201):
        raise SystemExit("register: %d %s" % (st, j))
    handle = fetch_handle(hostport(a.metadata), a.source, a.credential)
    ctx = ssl.create_default_context(cafile=a.ca)
    m = {k: [] for k in ("fresh_setup", "fresh_req", "fresh_total", "warm", "resumed_setup",
                         "resumed_req", "resumed_total", "suspend_ms", "resume_ms")}
    errs = {"non200": 0, "not_closed": 0, "not_refused": 0}
    first_error = ""
    for _ in range(a.cycles):
        c = Client(a, ctx)
        setup = c.connect()
        ms, status, code = c.get(handle)
        errs["non200"] += status != 200
        if status != 200 and not first_error:
            first_error = "fresh request %d %s" % (status, code)
        m["fresh_setup"].append(setup)
        m["fresh_req"].append(ms)
        m["fresh_total"].append(setup + ms)
        for _ in range(a.warm):
            ms, status, code = c.get(handle)
            errs["non200"] += status != 200
            m["warm"].append(ms)
        t = time.perf_counter()
        st, j = admin.call("PUT", "/v1/sandboxes/%s/suspend" % SANDBOX)
        m["suspend_ms"].append(1000 * (time.perf_counter() - t))
        if st != 200 or not j.get("suspended"):
            raise SystemExit("suspend: %d %s" % (st, j))
        errs["not_closed"] += not c.closed_by_peer()
        c.close()
        errs["not_refused"] += not refused_while_suspended(a, ctx, handle)
        if a.pause > 0:
            time.sleep(a.pause)     # the hibernation itself: nothing to wait for
        t = time.perf_counter()
        st, j = admin.call("PUT", "/v1/sandboxes/%s/resume" % SANDBOX)
        m["resume_ms"].append(1000 * (time.perf_counter() - t))
        if st != 200 or j.get("suspended"):
            raise SystemExit("resume: %d %s" % (st, j))
        c = Client(a, ctx)
        setup = c.connect()
        ms, status, code = c.get(handle)
        errs["non200"] += status != 200
        if status != 200 and not first_error:
            first_error = "first request after resume %d %s" % (status, code)
        m["resumed_setup"].append(setup)
        m["resumed_req"].append(ms)
        m["resumed_total"].append(setup + ms)
        c.close()
    admin.call("DELETE", "/v1/sandboxes/" + SANDBOX)
    out = {k: summary(v) for k, v in m.items()}
    med = lambda k: out[k]["p50_ms"]
    out.update(errs, cycles=a.cycles, warm_per_cycle=a.warm, pause_s=a.pause,
               requests=len(m["fresh_req"]) + len(m["warm"]) + len(m["resumed_req"]),
               resume_added_p50_ms=round(med("resumed_total") - med("fresh_total"), 3),
               resumed_req_over_warm_p50_ms=round(med("resumed_req") - med("warm"), 3),
               first_error=first_error)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in ("proxy", "admin", "admin-hdr", "metadata", "ca", "host", "source"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--credential", default="bench")
    p.add_argument("--cycles", type=int, default=30)
    p.add_argument("--warm", type=int, default=5)
    p.add_argument("--pause", type=float, default=0)
    a = p.parse_args()
    if not a.source.startswith("127."):
        sys.exit("resume.py: the sandbox address must be on loopback (127/8)")
    run(a)


if __name__ == "__main__":
    main()
