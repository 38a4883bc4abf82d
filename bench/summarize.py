#!/usr/bin/env python3
"""Summarize bench/run.sh raw.jsonl: medians over reps -> markdown (stdout) + results.json.

usage: summarize.py RAW.jsonl [--json OUT.json] [--env env.txt]
"""
import json
import statistics as st
import sys
from collections import defaultdict

ERR = ("err_connect", "err_proxy", "err_tls", "err_io", "non200", "expect_fail")
# issue 8 targets
TARGETS = [
    ("ka16", "sealgate CPU ms/request (keep-alive 16 conns, with the swap)", "cpu_ms_req", 0.05),
    ("ka1", "added p50 ms over direct (keep-alive 1 conn)", "added_p50_ms", 0.08),
    ("new16", "sealgate CPU ms per intercepted connection (new conn per request, 16 concurrent)",
     "cpu_ms_req", 1.5),
]


def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None


def f(x, fmt):
    return "–" if x is None else format(x, fmt)


def main():
    args = sys.argv[1:]
    out_json = env_file = None
    files = []
    while args:
        a = args.pop(0)
        if a == "--json":
            out_json = args.pop(0)
        elif a == "--env":
            env_file = args.pop(0)
        else:
            files.append(a)
    rows = [json.loads(l) for fn in files for l in open(fn) if l.strip()]
    groups = defaultdict(list)
    order = []
    for r in rows:
        key = (r.get("system"), r.get("workload"))
        groups[key].append(r)
        if r.get("workload") not in order:
            order.append(r.get("workload"))

    def agg(sysname, wl):
        rs = groups.get((sysname, wl))
        if not rs:
            return None
        a = {"system": sysname, "workload": wl, "n": len(rs), "errors": sum(sum(r.get(k, 0) or 0 for k in ERR) for r in rs),
             "first_error": next((r.get("first_error") or r.get("error") for r in rs if r.get("first_error") or r.get("error")), "")}
        a["rps"] = med([r.get("rps") for r in rs])
        a["rps_min"] = min((r.get("rps") or 0) for r in rs)
        a["rps_max"] = max((r.get("rps") or 0) for r in rs)
        a["p50_ms"] = med([r.get("p50_ms") for r in rs])
        a["p99_ms"] = med([r.get("p99_ms") for r in rs])
        a["mb_s"] = med([r.get("mb_s") for r in rs])
        a["nginx_cpu_pct"] = med([100 * r["upstream_cpu_s"] / r["interval_s"] for r in rs])
        a["cpu0_busy_pct"] = med([r.get("cpu0_busy_pct") for r in rs])
        a["cpu1_busy_pct"] = med([r.get("cpu1_busy_pct") for r in rs])
        if sysname == "sealgate":
            def per_req(r):
                req = r.get("requests") or 0
                if wl in ("down", "up"):
                    return None
                if r.get("elapsed_s"):   # lg: requests over its measured window; scale to our interval
                    req = req * r["interval_s"] / r["elapsed_s"]
                return 1000 * r["sg_cpu_s"] / req if req else None
            a["cpu_ms_req"] = med([per_req(r) for r in rs])
            a["cpu_pct"] = med([100 * r["sg_cpu_s"] / r["interval_s"] for r in rs])
            a["hwm_mib"] = med([r.get("sg_hwm_kb", 0) / 1024 for r in rs])
            if wl in ("down", "up"):
                a["cpu_ms_mib"] = med([1000 * r["sg_cpu_s"] / (r["bytes"] / 1048576) if r.get("bytes") else None for r in rs])
            if wl == "idle":
                for k in ("idle_held", "sg_rss_base_kb", "sg_rss_held_kb", "kb_per_idle_conn", "sg_fds_held"):
                    a[k] = med([r.get(k) for r in rs])
                a["setup_conn_s"] = med([(r.get("requests") or 0) / max(r["interval_s"], 1e-9) for r in rs])
                a["cpu_ms_conn"] = med([1000 * r["sg_cpu_s"] / r["idle_held"] if r.get("idle_held") else None for r in rs])
        return a

    req_wl = [w for w in order if w and (w.startswith("ka") or w.startswith("new"))]
    bulk_wl = [w for w in order if w in ("down", "up")]
    res = {"rows": [], "ratios": [], "targets": [], "profile_rows": []}
    out = []
    if env_file:
        try:
            out.append("```\n" + open(env_file).read().rstrip() + "\n```\n")
        except OSError:
            pass
    if req_wl:
        out.append("| system | workload | n | req/s | req/s min–max | p50 ms | p99 ms | sealgate CPU ms/req | sealgate CPU % | sealgate peak RSS MiB | nginx CPU % | cpu0/cpu1 busy % | errors |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for w in req_wl:
            for s in ("direct", "sealgate"):
                a = agg(s, w)
                if not a:
                    continue
                res["rows"].append(a)
                sg = s == "sealgate"
                out.append(f"| {s} | {w} | {a['n']} | {a['rps']:,.0f} | {a['rps_min']:,.0f}–{a['rps_max']:,.0f} | "
                           f"{f(a['p50_ms'], '.3f')} | {f(a['p99_ms'], '.3f')} | "
                           f"{f(a.get('cpu_ms_req') if sg else None, '.3f')} | {f(a.get('cpu_pct') if sg else None, '.0f')} | "
                           f"{f(a.get('hwm_mib') if sg else None, '.1f')} | {f(a['nginx_cpu_pct'], '.0f')} | "
                           f"{f(a['cpu0_busy_pct'], '.0f')}/{f(a['cpu1_busy_pct'], '.0f')} | {a['errors']} |")
        out.append("")
    if bulk_wl:
        out.append("| system | transfer | n | MB/s | seconds | sealgate CPU ms/MiB | sealgate CPU % | sealgate peak RSS MiB | cpu0/cpu1 busy % | errors |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for w in bulk_wl:
            for s in ("direct", "sealgate"):
                a = agg(s, w)
                if not a:
                    continue
                res["rows"].append(a)
                sg = s == "sealgate"
                out.append(f"| {s} | {w} | {a['n']} | {f(a['mb_s'], ',.0f')} | {f(a['p50_ms'] and a['p50_ms'] / 1000, '.2f')} | "
                           f"{f(a.get('cpu_ms_mib') if sg else None, '.2f')} | {f(a.get('cpu_pct') if sg else None, '.0f')} | "
                           f"{f(a.get('hwm_mib') if sg else None, '.1f')} | "
                           f"{f(a['cpu0_busy_pct'], '.0f')}/{f(a['cpu1_busy_pct'], '.0f')} | {a['errors']} |")
        out.append("")
    a = agg("sealgate", "idle")
    if a:
        res["rows"].append(a)
        out.append("| idle keep-alive conns held | setup conn/s | sealgate RSS before MiB | RSS held MiB | KiB per idle conn | fds held | sealgate CPU ms/conn (setup) | errors |")
        out.append("|---|---|---|---|---|---|---|---|")
        out.append(f"| {f(a['idle_held'], ',.0f')} | {f(a['setup_conn_s'], ',.0f')} | {f(a['sg_rss_base_kb'] and a['sg_rss_base_kb'] / 1024, '.1f')} | "
                   f"{f(a['sg_rss_held_kb'] and a['sg_rss_held_kb'] / 1024, '.1f')} | {f(a['kb_per_idle_conn'], '.1f')} | "
                   f"{f(a['sg_fds_held'], ',.0f')} | {f(a['cpu_ms_conn'], '.2f')} | {a['errors']} |")
        out.append("")
    # ratios: sealgate vs direct in the same run
    rat = []
    for w in req_wl + bulk_wl:
        d, s = agg("direct", w), agg("sealgate", w)
        if not d or not s:
            continue
        r = {"workload": w, "direct_p50_ms": d["p50_ms"], "sealgate_p50_ms": s["p50_ms"],
             "added_p50_ms": (s["p50_ms"] - d["p50_ms"]) if s["p50_ms"] is not None and d["p50_ms"] is not None else None,
             "added_p99_ms": (s["p99_ms"] - d["p99_ms"]) if s["p99_ms"] is not None and d["p99_ms"] is not None else None,
             "rps_ratio": s["rps"] / d["rps"] if d["rps"] else None,
             "mb_s_ratio": (s["mb_s"] / d["mb_s"]) if s.get("mb_s") and d.get("mb_s") else None,
             "cpu_ms_req": s.get("cpu_ms_req")}
        rat.append(r)
    res["ratios"] = rat
    if rat:
        out.append("| workload | direct p50 ms | sealgate p50 ms | added p50 ms | added p99 ms | sealgate/direct req/s (MB/s) |")
        out.append("|---|---|---|---|---|---|")
        for r in rat:
            ratio = r["mb_s_ratio"] if r["workload"] in ("down", "up") else r["rps_ratio"]
            out.append(f"| {r['workload']} | {f(r['direct_p50_ms'], '.3f')} | {f(r['sealgate_p50_ms'], '.3f')} | "
                       f"{f(r['added_p50_ms'], '+.3f')} | {f(r['added_p99_ms'], '+.3f')} | {f(ratio, '.2f')} |")
        out.append("")
    byw = {r["workload"]: r for r in rat}
    tg = []
    for w, what, key, limit in TARGETS:
        v = None
        if key == "added_p50_ms":
            v = byw.get(w, {}).get("added_p50_ms")
        else:
            s = agg("sealgate", w)
            v = s.get(key) if s else None
        tg.append({"workload": w, "target": what, "limit": limit, "value": v,
                   "met": (v is not None and v <= limit)})
    res["targets"] = tg
    out.append("| issue 8 target | limit | measured | |")
    out.append("|---|---|---|---|")
    for t in tg:
        verdict = "n/a" if t["value"] is None else ("met" if t["met"] else "**missed**")
        out.append(f"| {t['target']} | ≤ {t['limit']} | {f(t['value'], '.3f')} | {verdict} |")
    prof = agg("sealgate", "prof16")
    if prof:
        res["profile_rows"].append(prof)
        out.append("")
        out.append(f"(profile run, ka16 under perf record: {prof['rps']:,.0f} req/s, "
                   f"{f(prof.get('cpu_ms_req'), '.3f')} CPU ms/req incl. perf overhead; not in the tables above)")
    errs = [a for a in res["rows"] if a["errors"] or a["first_error"]]
    if errs:
        out.append("")
        for a in errs:
            out.append(f"- errors in {a['system']} {a['workload']}: {a['errors']} ({a['first_error']})")
    print("\n".join(out))
    if out_json:
        with open(out_json, "w") as fh:
            json.dump({"raw": rows, **res}, fh, indent=1)


if __name__ == "__main__":
    main()
