#!/bin/bash
# bench/peers.sh — sealgate against the reference peers, in one run of the organisation's
# shared harness (shared/bench/run-peers.sh), as its `custom` peer.
#
# Usage: bench/peers.sh [-d SECS] [-w WARMUP] [-r REPS] [-W "WORKLOADS"] [-n MAXREQ] [-o OUTDIR] [PEER...]
#   PEER: direct tinyproxy sslsplit squid mitmproxy custom   (default: all six; custom = sealgate)
#   -d  seconds per measurement (harness default 10)   -w  warmup seconds (2)
#   -r  repetitions (3; tables show medians)           -n  max requests per measurement (5000000)
#   -W  workloads (default "ka1 ka16 ka64 new16")       -o  output dir (bench/results/peers-<stamp>)
# Env: SHARED_BENCH (default $ROOT/../shared/bench), SG_PORT (sealgate's fixed proxy port, 18480),
#      SG_BUSY_POLL_US (sealgate's limits.busy_poll_us, default 0 = off),
#      BUILD=build-bench, NO_BUILD=1 (reuse $BUILD/sealgate), SEALGATE_BIN (measure that binary),
#      SG_LOG_LEVEL=warn, and the harness's own: PROXY_CPUS=1, HARNESS_CPUS=0, LG_CPUS, UP_PORT=8443,
#      TINYPROXY_PORT, SSLSPLIT_PORT, SQUID_PORT, MITM_PORT, CERTS.
# Loopback only. Peer packages are installed with apt-get only when missing. The sealgate runtime
# dir (policy, secret file, keys, handle, audit log) and the harness's runtime dir are deleted at
# exit; the results are scanned for the secret and the handle (redacted, and the run fails, if found).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
cd "$ROOT" || exit 1

log() { echo "[$(date +%H:%M:%S)] peers: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n 2,16p "$0"; exit 2; }

HARGS=() OUT=
while getopts "d:w:r:W:n:o:h" o; do
  case $o in
    d|w|r|W|n) HARGS+=("-$o" "$OPTARG");;
    o) OUT=$OPTARG;;
    *) usage;;
  esac
done
shift $((OPTIND - 1))
PEERS=("$@"); [ ${#PEERS[@]} -gt 0 ] || PEERS=(direct tinyproxy sslsplit squid mitmproxy custom)
WORKLOADS="ka1 ka16 ka64 new16"
for ((i = 0; i < ${#HARGS[@]}; i += 2)); do [ "${HARGS[i]}" = -W ] && WORKLOADS=${HARGS[i+1]}; done
has_peer() { local p; for p in "${PEERS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
for p in "${PEERS[@]}"; do
  case $p in direct|tinyproxy|sslsplit|squid|mitmproxy|custom) ;; *) die "unknown peer '$p'";; esac
done

SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
if ! [ -x "$SHARED_BENCH/run-peers.sh" ] || ! [ -f "$SHARED_BENCH/lib/common.sh" ]; then
  die "shared harness not found at '$SHARED_BENCH' (set SHARED_BENCH=/path/to/shared/bench)"
fi
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)
export CERTS=${CERTS:-$SHARED_BENCH/certs}
export UP_PORT=${UP_PORT:-8443}
export UP_NAME=api.example.test          # the only name on the harness's upstream certificate
BUILD=${BUILD:-build-bench}
SG=${SEALGATE_BIN:-$ROOT/$BUILD/sealgate}
SG_PORT=${SG_PORT:-18480}

OUT=${OUT:-$HERE/results/peers-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)

# ------------------------------------------------------------------ runtime dirs, cleanup
SGRUN=$(mktemp -d /tmp/sealgate-peers.XXXXXX) || exit 1     # secret, keys, handle: root only
chmod 700 "$SGRUN"
# the harness's RUN (configs, logs, pids) must be reachable by squid (proxy) and tinyproxy
# (nobody), so it cannot live under $SGRUN; own dir, not the shared /tmp/bench-run
HRUN=$(mktemp -d /tmp/sealgate-peers-harness.XXXXXX) || exit 1
chmod 755 "$HRUN"
SG_PID='' PROOF_DONE=0 HANDLE_F=$SGRUN/handle SECRET_F=$SGRUN/sg/secret

stop_pid() {  # TERM, wait up to 5 s, KILL (by pid only)
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# scan_results: the secret and the handle must appear nowhere in $OUT; redact and fail if they do
# shellcheck disable=SC2317  # runs from the EXIT trap
scan_results() {
  [ -s "$SECRET_F" ] || [ -s "$HANDLE_F" ] || return 0
  python3 - "$OUT" "$SECRET_F" "$HANDLE_F" <<'PY'
import os, sys
out, sf, hf = sys.argv[1:4]
pats = []
for f, tag in ((sf, b"<sealgate-secret-redacted>"), (hf, b"<sealgate-handle-redacted>")):
    try:
        v = open(f, "rb").read().strip()
    except OSError:
        continue
    if v:
        pats.append((v, tag))
        if b"." in v:            # a handle's sealed body alone is as sensitive as the handle
            pats.append((v.rsplit(b".", 1)[1], tag))
bad = 0
for d, _, files in os.walk(out):
    for n in files:
        p = os.path.join(d, n)
        try:
            b = open(p, "rb").read()
        except OSError:
            continue
        nb = b
        for v, tag in pats:
            nb = nb.replace(v, tag)
        if nb != b:
            bad += 1
            open(p, "wb").write(nb)
            print("LEAK: %s held the sealgate secret or handle (now redacted)" % p, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  stop_pid "$SG_PID"; SG_PID=
  # keep the processes' logs (configs stay behind: squid.conf holds the handle)
  if [ -d "$HRUN" ]; then
    mkdir -p "$OUT/logs"
    local f
    for f in "$HRUN"/*.log; do [ -f "$f" ] && cp "$f" "$OUT/logs/"; done   # custom.log = sealgate's
    for f in nginx/error.log squid/cache.log tinyproxy/tinyproxy.log; do
      [ -f "$HRUN/$f" ] && cp "$HRUN/$f" "$OUT/logs/${f%%/*}-${f##*/}"
    done
  fi
  [ -f "$SGRUN/proof-sealgate.log" ] && cp "$SGRUN/proof-sealgate.log" "$OUT/logs/swap-proof-sealgate.log"
  if ! scan_results; then
    log "LEAK CHECK FAILED: the sealgate secret or handle was written to $OUT (redacted now; see above)"
    rc=4
  fi
  rm -rf "$SGRUN" "$HRUN"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# descriptors for every peer (nginx asks 65536, squid max_filedescriptors 65536)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

# ------------------------------------------------------------------ tools and packages
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v taskset >/dev/null || need+=(util-linux)
command -v openssl >/dev/null || need+=(openssl)
command -v cc >/dev/null || need+=(gcc)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
has_peer tinyproxy && ! command -v tinyproxy >/dev/null && need+=(tinyproxy)
has_peer sslsplit && ! command -v sslsplit >/dev/null && need+=(sslsplit)
has_peer mitmproxy && ! command -v mitmdump >/dev/null && need+=(mitmproxy)
# ssl-bump needs the OpenSSL build of squid (it ships security_file_certgen)
if has_peer squid && ! { command -v squid >/dev/null && [ -x /usr/lib/squid/security_file_certgen ]; }; then
  need+=(squid-openssl)
fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (apt-get)"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"; } \
    >"$OUT/apt.log" 2>&1 || die "apt-get install ${need[*]} failed (see $OUT/apt.log)"
fi

# ------------------------------------------------------------------ sealgate binary
if ! has_peer custom; then
  :   # no sealgate in this run
elif [ -n "${SEALGATE_BIN:-}" ]; then
  [ -x "$SG" ] || die "SEALGATE_BIN=$SG is not executable"
elif [ "${NO_BUILD:-0}" != 1 ] || [ ! -x "$SG" ]; then
  log "building optimised sealgate ($BUILD, -O2 -g)"
  make --no-print-directory -j"$(nproc)" BUILD="$BUILD" OPT="-O2 -g" "$BUILD/sealgate" >"$OUT/build.log" 2>&1 \
    || { tail -20 "$OUT/build.log" >&2; die "sealgate build failed (see $OUT/build.log)"; }
fi

# ------------------------------------------------------------------ ports (all on 127.0.0.1)
port_free() {  # a listener could bind 127.0.0.1:PORT now (SO_REUSEADDR, like the servers)
  python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
busy=()
port_free "$UP_PORT" || busy+=("upstream nginx UP_PORT=$UP_PORT")
has_peer tinyproxy && { port_free "${TINYPROXY_PORT:-8888}" || busy+=("tinyproxy TINYPROXY_PORT=${TINYPROXY_PORT:-8888}"); }
has_peer sslsplit && { port_free "${SSLSPLIT_PORT:-8444}" || busy+=("sslsplit SSLSPLIT_PORT=${SSLSPLIT_PORT:-8444}"); }
has_peer squid && { port_free "${SQUID_PORT:-3128}" || busy+=("squid SQUID_PORT=${SQUID_PORT:-3128}"); }
has_peer mitmproxy && { port_free "${MITM_PORT:-8080}" || busy+=("mitmproxy MITM_PORT=${MITM_PORT:-8080}"); }
has_peer custom && { port_free "$SG_PORT" || busy+=("sealgate SG_PORT=$SG_PORT"); }
[ ${#busy[@]} -eq 0 ] || die "port(s) in use on 127.0.0.1 (another bench running?): ${busy[*]}; set the variable(s) to free ports"
ECHO_PORT=$(free_port)

# ------------------------------------------------------------------ harness PKI (idempotent)
"$SHARED_BENCH/lib/mkcerts.sh" "$CERTS" >"$OUT/mkcerts.log" 2>&1 || die "$SHARED_BENCH/lib/mkcerts.sh failed (see $OUT/mkcerts.log)"
for f in upstream-ca.crt upstream.crt upstream.key proxy-ca.crt; do
  [ -s "$CERTS/$f" ] || die "$CERTS/$f missing after mkcerts.sh"
done

# ------------------------------------------------------------------ sealgate setup
if has_peer custom; then
  mkdir -p "$SGRUN/sg/keys"; chmod 700 "$SGRUN/sg" "$SGRUN/sg/keys"
  (umask 077; printf 'sk-peers-%s\n' "$(openssl rand -hex 24)" >"$SECRET_F")   # never printed
  # the policy holds no secret (the credential reads the 0600 file); python writes valid JSON
  python3 - "$SGRUN/sg/policy.json" "$SG_PORT" "$CERTS/upstream-ca.crt" "$UP_NAME" "$UP_PORT" "$ECHO_PORT" \
      "$SGRUN/sg/audit.log" "${SG_BUSY_POLL_US:-0}" <<'PY' || die "policy generation failed"
import json, sys
path, port, ca, name, up_port, echo_port, audit, busy = sys.argv[1:9]
pol = {
  "listen": {"proxy": "127.0.0.1:%s" % port, "metadata": None, "admin": None},
  "keys": {"seal_key": "keys/seal.key", "ca_cert": "keys/ca.crt", "ca_key": "keys/ca.key"},
  "upstream": {"ca_file": ca, "resolve": {name: "127.0.0.1"}},
  "admin": {"token": {"file": "keys/admin.token"}},
  "audit": {"path": audit},
  "egress": {"default": "deny", "allow_private": ["127.0.0.1/32"], "intercept": "credentials"},
  "limits": {"workers": 1, "idle_timeout": "600s", "max_connections": 100000,
             "busy_poll_us": int(busy)},
  "credentials": {"bench": {
    "secret": {"file": "secret"},
    "inject": {"type": "bearer"},
    "hosts": ["%s:%s" % (name, up_port), "%s:%s" % (name, echo_port)],
    "paths": ["/*"],
    "rate": {"requests": 1000000000, "per": "1s"},
    "ttl": "12h"}},
  "sandboxes": {"bench": {"addresses": ["127.0.0.1/32"], "credentials": ["bench"]}},
}
with open(path, "w") as f:
    json.dump(pol, f, indent=2)
PY
  chmod 600 "$SGRUN/sg/policy.json"
  "$SG" policy check --quiet "$SGRUN/sg/policy.json" >&2 || die "sealgate policy check failed"
  "$SG" keygen --out "$SGRUN/sg/keys" >/dev/null || die "sealgate keygen failed"
  "$SG" ca init --dir "$SGRUN/sg/keys" >/dev/null || die "sealgate ca init failed"
  (umask 077; "$SG" handle mint --policy "$SGRUN/sg/policy.json" --sandbox bench --credential bench --ttl 12h \
     >"$HANDLE_F" 2>"$SGRUN/mint.err") || { cat "$SGRUN/mint.err" >&2; die "sealgate handle mint failed"; }
  [ -s "$HANDLE_F" ] || die "handle mint printed nothing"
  # the CA the client trusts sits outside the 0700 dir (public certificate only)
  cp "$SGRUN/sg/keys/ca.crt" "$HRUN/sealgate-ca.crt"; chmod 644 "$HRUN/sealgate-ca.crt"

  # started by the harness (pinned to PROXY_CPUS, CPU accounted, killed by pid); the wrapper
  # empties the audit log on each start (one start per rep) and execs sealgate (same pid)
  cat >"$SGRUN/serve.sh" <<SH
#!/bin/sh
: >'$SGRUN/sg/audit.log'
exec '$SG' serve --policy '$SGRUN/sg/policy.json' --log-level '${SG_LOG_LEVEL:-warn}'
SH
  chmod 700 "$SGRUN/serve.sh"

  # ---------------------------------------------------------------- swap proof (before the run)
  # A one-off TLS echo upstream on 127.0.0.1:$ECHO_PORT (harness upstream certificate) records
  # the Authorization it receives; 3 requests through sealgate carry the handle. Pass: the
  # upstream saw "Bearer <secret>" every time and the client got "Bearer <handle>" echoed
  # (sealgate scrubbed the secret out of the response). Only counts are written.
  log "swap proof: sealgate on 127.0.0.1:$SG_PORT, echo upstream on 127.0.0.1:$ECHO_PORT"
  "$SG" serve --policy "$SGRUN/sg/policy.json" --ready-file "$SGRUN/ready.json" --log-level warn \
    >"$SGRUN/proof-sealgate.log" 2>&1 &
  SG_PID=$!
  for i in $(seq 1 100); do [ -s "$SGRUN/ready.json" ] && break; kill -0 "$SG_PID" 2>/dev/null || break; sleep 0.1; done
  [ -s "$SGRUN/ready.json" ] || { cat "$SGRUN/proof-sealgate.log" >&2; die "sealgate did not start"; }
  python3 - "$SG_PORT" "$ECHO_PORT" "$UP_NAME" "$CERTS" "$HRUN/sealgate-ca.crt" "$SECRET_F" "$HANDLE_F" \
      >"$OUT/swap-proof.json" <<'PY'
import http.client, http.server, json, ssl, sys, threading
sg_port, echo_port, name, certs, sg_ca, secret_f, handle_f = sys.argv[1:8]
secret = "Bearer " + open(secret_f).read().strip()
handle = "Bearer " + open(handle_f).read().strip()
seen = []
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    def do_GET(self):
        a = self.headers.get("Authorization", "")
        seen.append(a)
        body = b"swap-proof\n"
        self.send_response(200)
        self.send_header("X-Echo-Auth", a)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(echo_port)), Echo)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(certs + "/upstream.crt", certs + "/upstream.key")
srv.socket = sctx.wrap_socket(srv.socket, server_side=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
res = {"requests": 3, "ok_200": 0, "upstream_saw_secret": 0, "upstream_saw_handle": 0,
       "client_saw_handle_echoed": 0, "client_saw_secret": 0, "error": ""}
try:
    c = http.client.HTTPSConnection("127.0.0.1", int(sg_port), timeout=10,
                                    context=ssl.create_default_context(cafile=sg_ca))
    c.set_tunnel(name, int(echo_port))
    for _ in range(3):
        c.request("GET", "/swap-proof", headers={"Authorization": handle})
        r = c.getresponse(); body = r.read()
        echo = r.getheader("X-Echo-Auth", "")
        res["ok_200"] += r.status == 200
        res["client_saw_handle_echoed"] += echo == handle
        res["client_saw_secret"] += (secret[7:] in echo) or (secret[7:].encode() in body)
    c.close()
except Exception as e:   # messages name no secret; the results are scanned anyway
    res["error"] = "%s: %s" % (type(e).__name__, str(e)[:200])
srv.shutdown()
res["upstream_saw_secret"] = sum(a == secret for a in seen)
res["upstream_saw_handle"] = sum(handle[7:] in a for a in seen)
res["upstream_requests"] = len(seen)
ok = (res["ok_200"] == 3 and len(seen) == 3 and res["upstream_saw_secret"] == 3
      and res["client_saw_handle_echoed"] == 3 and not res["client_saw_secret"] and not res["upstream_saw_handle"])
res["swap_proof"] = "ok" if ok else "FAILED"
print(json.dumps(res))
sys.exit(0 if ok else 1)
PY
  proof_rc=$?
  stop_pid "$SG_PID"; SG_PID=
  [ "$proof_rc" = 0 ] || { cat "$OUT/swap-proof.json" >&2; die "swap proof failed: sealgate did not swap handle -> secret and scrub it back"; }
  log "swap proof ok: the upstream received 'Bearer <secret>' on 3/3 requests, the client got 'Bearer <handle>' echoed (scrubbed)"
  PROOF_DONE=1
fi

# ------------------------------------------------------------------ the shared harness
export RUN=$HRUN
if has_peer custom; then
  PLACEHOLDER=$(cat "$HANDLE_F")     # every peer sends the handle (exported to the harness, not printed)
  export PLACEHOLDER
  export CUSTOM_ADDR=127.0.0.1:$SG_PORT CUSTOM_CA=$HRUN/sealgate-ca.crt CUSTOM_CMD=$SGRUN/serve.sh
  # sealgate scrubs the secret nginx echoes back to the handle: the client must see the handle
  export CUSTOM_SWAPS=0 CUSTOM_MODE=connect
fi
{
  if has_peer custom; then
    echo "sealgate: $("$SG" version 2>/dev/null | head -1), binary $SG"
    echo "sealgate git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
    echo "sealgate: 127.0.0.1:$SG_PORT, limits.workers 1, busy_poll_us ${SG_BUSY_POLL_US:-0}, audit to a file, swap proof: $([ "$PROOF_DONE" = 1 ] && echo ok || echo FAILED)"
  else
    echo "sealgate: not in this run"
  fi
  echo "shared harness: $SHARED_BENCH"
  echo "loadavg at start: $(cat /proc/loadavg)"
} >"$OUT/sealgate-env.txt"
log "results -> $OUT"
"$SHARED_BENCH/run-peers.sh" "${HARGS[@]}" -o "$OUT" "${PEERS[@]}" 2>&1 | tee "$OUT/run.log"
hrc=${PIPESTATUS[0]}
if has_peer custom; then   # sanity: sealgate audited the last rep's requests (the file is then deleted)
  echo "sealgate audit lines written in the last rep: $(wc -l <"$SGRUN/sg/audit.log" 2>/dev/null || echo 0)" >>"$OUT/sealgate-env.txt"
fi
[ -s "$OUT/raw.jsonl" ] || die "the harness produced no measurements (exit $hrc; see $OUT/run.log)"

# ------------------------------------------------------------------ compact comparison
python3 - "$OUT/raw.jsonl" "$WORKLOADS" "${PEERS[@]}" >"$OUT/compare.md" <<'PY'
import json, statistics as st, sys
from collections import defaultdict
raw, wls, peers = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
ERR = ("err_connect", "err_proxy", "err_tls", "err_io", "non200", "expect_fail")
what = {"direct": "no proxy (harness ceiling)", "tinyproxy": "CONNECT relay, no TLS",
        "sslsplit": "TLS split, no HTTP, no swap", "squid": "ssl-bump + header replace",
        "mitmproxy": "mitmdump + swap addon", "custom": "sealgate: CONNECT, interception, handle swap + scrub, audit"}
g = defaultdict(list)
for l in open(raw):
    if l.strip():
        r = json.loads(l)
        if "rps" in r:
            g[(r["peer"], r["workload"])].append(r)
med = lambda xs: st.median(xs) if xs else None
def cell(p, w, k):
    rs = g.get((p, w))
    if not rs:
        return "n/a"
    if k == "rps":
        return f"{med([r['rps'] for r in rs]):,.0f}"
    if k == "p50":
        return f"{med([r['p50_ms'] for r in rs]):.2f}"
    if k == "cpu":
        if p == "direct":
            return "–"
        return f"{med([1000 * r['proxy_cpu_s'] / max(r['requests'] * r['interval_s'] / r['elapsed_s'], 1) for r in rs]):.3f}"
cols = []
for w in wls:
    unit = "conn/s" if w.startswith("new") else "req/s"
    per = "ms/conn" if w.startswith("new") else "ms/req"
    if w == "ka1":
        cols += [(w, "p50", "ka1 p50 ms"), (w, "cpu", f"ka1 CPU {per}")]
    else:
        cols += [(w, "rps", f"{w} {unit}"), (w, "cpu", f"{w} CPU {per}")]
print("| system | what it does | " + " | ".join(c[2] for c in cols) + " | errors |")
print("|---|---|" + "---|" * len(cols) + "---|")
for p in peers:
    errs = sum(sum(r.get(k, 0) for k in ERR) for (pp, _), rs in g.items() if pp == p for r in rs)
    name = "**sealgate** (custom)" if p == "custom" else p
    print(f"| {name} | {what.get(p, '')} | " + " | ".join(cell(p, w, k) for w, k, _ in cols) + f" | {errs} |")
print()
print("CPU = the proxy's CPU time (process tree, all threads) over the measured interval / requests; "
      "medians over reps. `n/a` = no measurement (peer failed to start or its smoke test failed: see run.log, logs/).")
PY

echo
cat "$OUT/compare.md"
# every requested peer must have every workload, and sealgate no errors
missing=$(python3 - "$OUT/raw.jsonl" "$WORKLOADS" "${PEERS[@]}" <<'PY'
import json, sys
raw, wls, peers = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
have, errs = set(), 0
ERR = ("err_connect", "err_proxy", "err_tls", "err_io", "non200", "expect_fail")
for l in open(raw):
    if l.strip():
        r = json.loads(l)
        if "rps" in r:
            have.add((r["peer"], r["workload"]))
            if r["peer"] == "custom":
                errs += sum(r.get(k, 0) for k in ERR)
out = ["%s/%s" % (p, w) for p in peers for w in wls if (p, w) not in have]
if errs:
    out.append("custom(sealgate):%d-errors" % errs)
print(" ".join(out))
PY
)
log "done: $OUT (summary.md: the harness's table; compare.md: the comparison above)"
if [ -n "$missing" ]; then
  log "INCOMPLETE: no measurement or errors for: $missing (see $OUT/run.log and $OUT/logs/)"
  exit 3
fi
exit 0
