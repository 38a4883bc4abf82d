#!/bin/bash
# bench/run.sh — sealgate benchmark. `make bench` runs this.
#
# Usage: bench/run.sh [-d SECS] [-w WARMUP] [-r REPS] [-W "WORKLOADS"] [-n MAXREQ]
#                     [-B MIB] [-I IDLE_CONNS] [-p] [-o OUTDIR]
#   -d  seconds per measurement (default 10)      -w  warmup seconds, not counted (2)
#   -r  repetitions (1; the table shows medians)   -n  max requests per measurement (5000000)
#   -W  workloads (default "ka1 ka1bp ka16 ka16mint ka16aws ka64 ka16e16k ka16gz16k new16 down
#                           up upaws upawschunk downtxt downgz policy10k resume idle handles100k"):
#         ka<N>   keep-alive, N connections, one request in flight on each
#         ka16mint ka16 with a handle of a minted client_credentials credential (its token
#                 endpoint bench/mint_standin.py on loopback TLS; one mint, then cached)
#         ka16aws ka16 of an S3 GET signed (SigV4) with the derived credentials: sealgate
#                 verifies and re-signs every request
#         ka1bp   ka1 through a sealgate with limits.busy_poll_us = BUSY_POLL_US (100)
#         ka16e16k / ka16gz16k  ka16 of a ~16 KiB JSON body echoing the Authorization value,
#                 identity / gzip-encoded by nginx (sealgate decodes it to scrub it)
#         new<N>  N concurrent loops of TCP connect, CONNECT, full TLS handshake, 1 request, close
#         down    one streamed download of -B MiB (curl), up: one streamed upload of -B MiB
#         upaws / upawschunk  an S3 PUT of -B MiB signed with UNSIGNED-PAYLOAD / as aws-chunked
#                 64 KiB chunks, each chunk signature verified and redone by sealgate
#         downtxt / downgz  one -B MiB download of JSON text, identity / Content-Encoding gzip
#         policy10k  policy of 10,000 credentials / 1,000 sandboxes: check, load, reload times
#         resume  a registered sandbox suspended and resumed: its first request after resume
#                 against a warm request and a new connection's first (same run)
#         idle    -I intercepted keep-alive connections opened and held, RSS, and ka1 p99
#                 before and while they are held (sealgate only)
#         handles100k  100,000 distinct handles, ka16 twice over all of them (unseal cache)
#   -B  bulk size in MiB (256)   -I  idle connections (10000; capped by RLIMIT_NOFILE)
#   -p  also profile sealgate under ka16 with `perf record -g` (valgrind callgrind if perf fails)
#   -o  output directory (default bench/results/<stamp>)
# Env: SG_CPUS=1 (sealgate), HARNESS_CPUS=0 (nginx, lg, curl), UP_PORT=18443, WORKERS=1,
#      BUILD=build-bench, NO_BUILD=1 (reuse the binaries); more in bench/README.md.
# Loopback only: nginx listens on 127.0.0.3, sealgate on 127.0.0.1:<kernel-picked port>.
# Every load run is bounded by time and count; every process started here is stopped by pid.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
cd "$ROOT" || exit 1

DUR=10 WARM=2 REPS=1 MAXREQ=5000000 BULK_MIB=256 IDLE_N=10000 PROFILE=0 OUT=
WORKLOADS="ka1 ka1bp ka16 ka16mint ka16aws ka64 ka16e16k ka16gz16k new16 down up upaws upawschunk downtxt downgz policy10k resume idle handles100k"
while getopts "d:w:r:W:n:B:I:po:h" o; do
  case $o in
    d) DUR=$OPTARG;; w) WARM=$OPTARG;; r) REPS=$OPTARG;; W) WORKLOADS=$OPTARG;; n) MAXREQ=$OPTARG;;
    B) BULK_MIB=$OPTARG;; I) IDLE_N=$OPTARG;; p) PROFILE=1;; o) OUT=$OPTARG;;
    *) sed -n 2,31p "$0"; exit 2;;
  esac
done
BUILD=${BUILD:-build-bench}
SG_CPUS=${SG_CPUS-1}
HARNESS_CPUS=${HARNESS_CPUS-0}
WORKERS=${WORKERS:-1}
UP_ADDR=127.0.0.3
UP_PORT=${UP_PORT:-18443}
SINK_PORT=$((UP_PORT + 1))   # upload sink (reads the whole body before answering)
MINT_PORT=$((UP_PORT + 2))   # ka16mint's token endpoint (bench/mint_standin.py)
UP_NAME=api.example.test
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$HERE/results/$STAMP}
mkdir -p "$OUT" || exit 1
RAW=$OUT/raw.jsonl; : >"$RAW"
HZ=$(getconf CLK_TCK)
LG=$ROOT/$BUILD/lg
SG=${SEALGATE_BIN:-$ROOT/$BUILD/sealgate}   # SEALGATE_BIN: measure another binary (no build)

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ processes (by pid only)
RUN=$(mktemp -d /tmp/sealgate-bench.XXXXXX) || exit 1
chmod 700 "$RUN"
declare -a PIDS=()
pin() { local c=$1; shift; if [ -n "$c" ]; then taskset -c "$c" "$@"; else "$@"; fi; }
start_bg() {  # start_bg NAME CPUS CMD... ; pid -> $RUN/NAME.pid
  local name=$1 cpus=$2; shift 2
  if [ -n "$cpus" ]; then taskset -c "$cpus" "$@" >"$RUN/$name.log" 2>&1 &
  else "$@" >"$RUN/$name.log" 2>&1 & fi
  echo $! >"$RUN/$name.pid"; PIDS+=("$!")
}
descendants() {
  local p=$1 c
  echo "$p"
  # shellcheck disable=SC2013  # children: pids separated by spaces
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do descendants "$c"; done
}
stop_pid() {
  local pid=$1 tree _ p
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  tree=$(descendants "$pid")
  # shellcheck disable=SC2086  # one pid per word
  kill -TERM $tree 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  for p in $tree; do kill -KILL "$p" 2>/dev/null; done
  wait "$pid" 2>/dev/null
  return 0
}
# scan_results: the secret, the handle, the real AWS keys and the AWS handles (the session
# tokens signed with) must appear nowhere in $OUT: redacted, and the run fails, if they do
scan_results() {
  local tok
  tok=$(cat "$RUN"/aws/*.hdr 2>/dev/null | awk -F': ' 'tolower($1)=="x-amz-security-token"{print $2}')
  SCAN_VALUES=$(printf '%s\n' "${SECRET:-}" "${HANDLE:-}" "${AWS_AKID:-}" "${AWS_SECRET:-}" "$tok" \
                 "${MINT_SECRET:-}" "${MINT_TOKEN:-}" "${MINT_HANDLE:-}") \
    python3 - "$OUT" <<'PY'
import os, sys
pats = []
for v in os.environ["SCAN_VALUES"].encode().split(b"\n"):
    if v:
        pats.append(v)
        if v.startswith(b"sgh1.") and b"." in v[5:]:   # a handle's sealed body alone is as sensitive
            pats.append(v.rsplit(b".", 1)[1])
bad = 0
for d, _, files in os.walk(sys.argv[1]):
    for n in files:
        p = os.path.join(d, n)
        try:
            b = open(p, "rb").read()
        except OSError:
            continue
        nb = b
        for v in pats:
            nb = nb.replace(v, b"<redacted>")
        if nb != b:
            bad += 1
            open(p, "wb").write(nb)
            print("LEAK: %s held a secret, a handle or a real AWS key (now redacted)" % p, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
cleanup() {
  local p rc=$?
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
  # keep the logs (no secrets: sealgate never logs them, the nginx auth logs were truncated)
  for p in sealgate nginx; do [ -f "$RUN/$p.log" ] && cp "$RUN/$p.log" "$OUT/$p.log"; done
  [ -f "$RUN/nginx/error.log" ] && cp "$RUN/nginx/error.log" "$OUT/nginx-error.log"
  scan_results || { log "LEAK CHECK FAILED: see above (redacted in $OUT)"; rc=4; }
  rm -rf "$RUN"   # policy (inline secrets), handles, keys, bulk and aws-chunked files
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {  # wait_port ADDR PORT [TIMEOUT_S]
  local i
  for i in $(seq 1 $(( ${3:-20} * 10 ))); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # all threads
cpu_busy() { awk -v c="cpu$1" '$1==c{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat; }
status_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null; }   # VmHWM := VmRSS (Linux >= 4.0)

# ------------------------------------------------------------------ descriptors
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
# An idle intercepted connection holds one sealgate descriptor (the client's): after
# limits.park_after (2 s) it gives its upstream back to the worker's small pool. Connections
# set up within the last park_after still hold their upstream too, plus listeners, logs and
# the probe: IDLE_FD_MARGIN covers them (about 1,000 conn/s of setup for 2 s). lg holds one
# descriptor per connection. A sealgate that keeps both legs needs -I <= (NOFILE - 256) / 2.
IDLE_FD_MARGIN=${IDLE_FD_MARGIN:-2304}
IDLE_MAX=$(( NOFILE - IDLE_FD_MARGIN ))
if [ "$IDLE_N" -gt "$IDLE_MAX" ]; then
  log "RLIMIT_NOFILE is $NOFILE (hard $(ulimit -Hn)): idle connections capped at $IDLE_MAX (asked $IDLE_N)"
  IDLE_N=$IDLE_MAX
fi
IDLE_PROBE_S=${IDLE_PROBE_S:-8}         # ka1 probe before / while the idle connections are held
IDLE_HOLD_MAX_S=${IDLE_HOLD_MAX_S:-120} # upper bound of the hold (released by a file before)
POLICY_CREDS=${POLICY_CREDS:-10000} POLICY_SANDBOXES=${POLICY_SANDBOXES:-1000}
POLICY_REPS=${POLICY_REPS:-5}           # policy check / reload repetitions (median)
HANDLES_N=${HANDLES_N:-100000}          # distinct handles for handles100k
BUSY_POLL_US=${BUSY_POLL_US:-100}       # ka1bp: the busy-polling sealgate's limits.busy_poll_us
BULK_REPS=${BULK_REPS:-3}               # transfers per bulk workload and system (median)
HANDLES_MAX_S=${HANDLES_MAX_S:-300}     # time bound of each handles100k pass
RESUME_CYCLES=${RESUME_CYCLES:-30}      # resume: suspend/resume cycles
RESUME_WARM=${RESUME_WARM:-5}           # resume: warm requests per cycle
RESUME_PAUSE_S=${RESUME_PAUSE_S:-0}     # resume: seconds each suspension lasts
RESUME_SOURCE=${RESUME_SOURCE:-127.0.0.9}   # resume: the registered sandbox's address
AWS_CHUNK=${AWS_CHUNK:-65536}           # upawschunk: aws-chunked chunk size (bytes)
PY3=/usr/bin/python3                    # Debian's: sees python3-botocore (bench/awssig.py)

# ------------------------------------------------------------------ build
if [ -n "${SEALGATE_BIN:-}" ]; then
  [ "$LG" -nt "$HERE/lg.c" ] || cc -O2 -Wall -o "$LG" "$HERE/lg.c" -lssl -lcrypto || die "lg build failed"
elif [ "${NO_BUILD:-0}" != 1 ] || [ ! -x "$SG" ] || [ ! -x "$LG" ]; then
  log "building optimised sealgate ($BUILD, -O2 -g) and lg"
  make --no-print-directory -j"$(nproc)" BUILD="$BUILD" OPT="-O2 -g" "$BUILD/sealgate" >"$OUT/build.log" 2>&1 \
    || { tail -20 "$OUT/build.log"; die "sealgate build failed"; }
  cc -O2 -Wall -o "$LG" "$HERE/lg.c" -lssl -lcrypto >>"$OUT/build.log" 2>&1 || die "lg build failed"
fi
HOP=$ROOT/$BUILD/hop
[ "$HOP" -nt "$HERE/hop.c" ] || cc -O2 -Wall -o "$HOP" "$HERE/hop.c" -lpthread >>"$OUT/build.log" 2>&1 \
  || die "hop build failed"

# ------------------------------------------------------------------ tools
need_pkgs=()
command -v nginx >/dev/null || need_pkgs+=(nginx-light)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]} (apt-get)"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}"; } \
    >"$OUT/apt.log" 2>&1 || die "apt-get install ${need_pkgs[*]} failed (see $OUT/apt.log)"
fi
[ "$(nproc)" -ge 2 ] || { log "fewer than 2 CPUs: running unpinned"; SG_CPUS=; HARNESS_CPUS=; }
port_busy $UP_ADDR "$UP_PORT" && die "$UP_ADDR:$UP_PORT is in use (set UP_PORT)"
port_busy $UP_ADDR "$SINK_PORT" && die "$UP_ADDR:$SINK_PORT is in use (set UP_PORT)"

# ------------------------------------------------------------------ PKI (upstream CA + leaf)
C=$RUN/certs; mkdir -p "$C"
(
  cd "$C" || exit 1
  openssl ecparam -name prime256v1 -genkey -noout -out up-ca.key
  openssl req -x509 -new -key up-ca.key -sha256 -days 2 -subj "/CN=sealgate bench upstream CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out up-ca.crt
  openssl ecparam -name prime256v1 -genkey -noout -out up.key
  openssl req -new -key up.key -subj "/CN=$UP_NAME" -out up.csr
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,IP:%s\n' \
    "$UP_NAME" "$UP_ADDR" >up.ext
  openssl x509 -req -in up.csr -CA up-ca.crt -CAkey up-ca.key -CAcreateserial -days 2 -sha256 -extfile up.ext -out up.crt
) >"$RUN/pki.log" 2>&1 || die "test PKI generation failed"

# ------------------------------------------------------------------ upstream (nginx)
mkdir -p "$RUN/nginx/tmp" "$RUN/www"
truncate -s "${BULK_MIB}M" "$RUN/www/bulk.bin"     # sparse: costs no disk
# compressed-response workloads: a 16 KiB JSON echo body, and -B MiB of JSON text + its
# gzip -1 (made only when downtxt/downgz run: ~3 s for 256 MiB), deterministic
GEN_MIB=0
case " $WORKLOADS " in *" downtxt "*|*" downgz "*) GEN_MIB=$BULK_MIB;; esac
python3 "$HERE/gen_text.py" "$RUN/www" "$GEN_MIB" >"$OUT/gen_text.json" 2>"$RUN/gen.err" \
  || { cat "$RUN/gen.err" >&2; die "gen_text.py failed"; }
[ "$GEN_MIB" = 0 ] || log "generated ${BULK_MIB} MiB of JSON text + gzip -1: $(cat "$OUT/gen_text.json")"
BULK_GZ_BYTES=$(stat -c %s "$RUN/www/bulk.txt.gz" 2>/dev/null || echo 0)
cat >"$RUN/nginx/nginx.conf" <<NGX
worker_processes 1;
master_process off;
daemon off;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $(( NOFILE - 64 )); }
http {
  access_log off;
  log_format authlog '\$http_authorization';
  log_format gzlog '\$gzip_ratio';   # smoke of /gz16k only: proof nginx compressed it
  # AWS smoke only: what the signature covers, as received (checked, then truncated)
  log_format awslog escape=json '{"method":"\$request_method","uri":"\$request_uri","host":"\$http_host",'
    '"auth":"\$http_authorization","token":"\$http_x_amz_security_token","date":"\$http_x_amz_date",'
    '"sha":"\$http_x_amz_content_sha256"}';
  map \$http_x_bench_smoke \$bench_smoke { default 0; "1" 1; }
  client_body_temp_path $RUN/nginx/tmp/body;
  proxy_temp_path $RUN/nginx/tmp/proxy;
  fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
  uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
  scgi_temp_path $RUN/nginx/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 600s;
  server {
    listen $UP_ADDR:$UP_PORT ssl;
    server_name $UP_NAME $UP_ADDR;
    ssl_certificate $C/up.crt;
    ssl_certificate_key $C/up.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    # echo the Authorization header so the client can check the substitution
    add_header X-Echo-Auth \$http_authorization always;
    location / {
      default_type text/plain;
      return 200 "{\"ok\":true,\"service\":\"bench-upstream\",\"pad\":\"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdef\"}\n";
    }
    # smoke only: log what the upstream really received (checked, then deleted)
    location = /smoke {
      access_log $RUN/nginx/auth.log authlog;
      default_type text/plain;
      return 200 "smoke\n";
    }
    # AWS smoke only: log what the upstream received (re-signed request), then truncate
    location = /bench-bucket/smoke-aws {
      access_log $RUN/nginx/awsauth.log awslog;
      default_type text/plain;
      return 200 "smoke\n";
    }
    location = /bulk { alias $RUN/www/bulk.bin; default_type application/octet-stream; }
    # compressed responses: a 16 KiB JSON body holding the received Authorization value
    # (twice), identity or gzip level 1 made per response
    location = /e16k {
      alias $RUN/www/echo16k.json;
      default_type application/json;
      sub_filter_types application/json;
      sub_filter '@AUTH@' '\$http_authorization';
      sub_filter_once off;
    }
    location = /gz16k {
      alias $RUN/www/echo16k.json;
      default_type application/json;
      sub_filter_types application/json;
      sub_filter '@AUTH@' '\$http_authorization';
      sub_filter_once off;
      gzip on;
      gzip_types application/json;
      gzip_min_length 0;
      gzip_comp_level 1;
      access_log $RUN/nginx/gz.log gzlog if=\$bench_smoke;
    }
    # -B MiB of JSON text: identity, or its gzip -1 file with Content-Encoding: gzip
    location = /downtxt { alias $RUN/www/bulk.txt; default_type application/json; }
    location = /downgz { alias $RUN/www/bulk.txt; default_type application/json; gzip_static always; }
  }
}
NGX
start_bg nginx "$HARNESS_CPUS" nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf"
NGINX_PID=$(cat "$RUN/nginx.pid")
wait_port $UP_ADDR "$UP_PORT" || { cat "$RUN/nginx.log" "$RUN/nginx/error.log" >&2; die "nginx did not start"; }
start_bg sink "$HARNESS_CPUS" python3 "$HERE/upload_sink.py" $UP_ADDR "$SINK_PORT" "$C/up.crt" "$C/up.key" \
  "$RUN/sink-smoke.log"   # requests with X-Bench-Smoke: 1 only (the AWS smoke)
SINK_PID=$(cat "$RUN/sink.pid")
wait_port $UP_ADDR "$SINK_PORT" || { cat "$RUN/sink.log" >&2; die "upload sink did not start"; }
# ka16mint's token endpoint: client "bench" with MINT_SECRET gets MINT_TOKEN (never printed)
MINT_SECRET=cs-bench-$(openssl rand -hex 24)
MINT_TOKEN=at-bench-$(openssl rand -hex 24)
MINT_SECRET=$MINT_SECRET MINT_TOKEN=$MINT_TOKEN start_bg mint "$HARNESS_CPUS" python3 "$HERE/mint_standin.py" \
  $UP_ADDR "$MINT_PORT" "$C/up.crt" "$C/up.key" "$RUN/mint-calls.log"
wait_port $UP_ADDR "$MINT_PORT" || { cat "$RUN/mint.log" >&2; die "token endpoint stand-in did not start"; }

# ------------------------------------------------------------------ sealgate
SECRET=sk-bench-$(openssl rand -hex 24)      # never printed
# the aws_sigv4 credential's real keys (never printed; only the smoke's checker gets them,
# through its environment): access key id 20 letters and digits, secret 40 base64 chars
AWS_AKID=AKIA$(openssl rand -hex 8 | tr a-f A-F | cut -c1-11)BENCH
AWS_SECRET=$(openssl rand -base64 30)
mkdir -p "$RUN/sg/keys"; chmod 700 "$RUN/sg/keys"
sed -e "s|@UP_CA@|$C/up-ca.crt|; s|@UP_NAME@|$UP_NAME|g; s|@UP_ADDR@|$UP_ADDR|g; s|@UP_PORT@|$UP_PORT|g; s|@SINK_PORT@|$SINK_PORT|g" \
    -e "s|@AUDIT@|$RUN/sg/audit.log|; s|@WORKERS@|$WORKERS|; s|@SECRET@|$SECRET|" \
    -e "s|@AWS_AKID@|$AWS_AKID|; s|@AWS_SECRET@|$AWS_SECRET|" \
    -e "s|@MINT_PORT@|$MINT_PORT|; s|@MINT_SECRET@|$MINT_SECRET|" \
    "$HERE/policy.json.in" >"$RUN/sg/policy.json"
chmod 600 "$RUN/sg/policy.json"
"$SG" policy check --quiet "$RUN/sg/policy.json" 2>&1 | grep -v 'inline value is for development only' >&2
"$SG" keygen --out "$RUN/sg/keys" >/dev/null || die "sealgate keygen failed"
"$SG" ca init --dir "$RUN/sg/keys" >/dev/null || die "sealgate ca init failed"
SG_CA=$RUN/sg/keys/ca.crt
HANDLE=$("$SG" handle mint --policy "$RUN/sg/policy.json" --sandbox bench --credential bench --ttl 1h 2>"$RUN/mint.err") \
  || { cat "$RUN/mint.err" >&2; die "handle mint failed"; }
[ -n "$HANDLE" ] || die "handle mint printed nothing"
MINT_HANDLE=$("$SG" handle mint --policy "$RUN/sg/policy.json" --sandbox bench --credential bench-mint \
  --ttl 1h 2>"$RUN/mint.err") || { cat "$RUN/mint.err" >&2; die "handle mint (bench-mint) failed"; }

SG_PID='' SG_PORT='' SG_ADMIN='' SG_MD=''
start_sg() {  # start_sg NAME POLICY: serve POLICY; sets R_PID R_PORT R_ADMIN R_MD from the ready file
  local name=$1 ready=$RUN/$1.ready.json _
  rm -f "$ready"
  start_bg "$name" "$SG_CPUS" "$SG" serve --policy "$2" --ready-file "$ready" --log-level "${SG_LOG_LEVEL:-warn}"
  for _ in $(seq 1 300); do [ -s "$ready" ] && break; kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || break; sleep 0.1; done
  [ -s "$ready" ] || { cat "$RUN/$name.log" >&2; return 1; }
  read -r R_PID R_PORT R_ADMIN R_MD < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
print(j["pid"], j["proxy"].rsplit(":",1)[1], j.get("admin") or "-", j.get("metadata") or "-")' "$ready")
  [ "$R_PID" = "$(cat "$RUN/$name.pid")" ] || log "note: ready pid $R_PID != started pid $(cat "$RUN/$name.pid")"
}
start_sealgate() {
  start_sg sealgate "$RUN/sg/policy.json" || return 1
  SG_PID=$R_PID SG_PORT=$R_PORT SG_ADMIN=$R_ADMIN SG_MD=$R_MD
  # admin token (created by serve) as a curl header file: never on a command line
  [ -f "$RUN/admin.hdr" ] || { printf 'Authorization: Bearer %s\n' "$(tr -d '\n' <"$RUN/sg/keys/admin.token")" >"$RUN/admin.hdr"
                               chmod 600 "$RUN/admin.hdr"; }
}
stop_sealgate() { stop_pid "$(cat "$RUN/sealgate.pid" 2>/dev/null)"; SG_PID=''; }

# admin API (loopback, no proxy): metrics need no token, reload reads it from admin.hdr
scrape() { curl -sS --noproxy '*' --max-time 10 "http://$1/metrics" >"$2" 2>/dev/null || : >"$2"; }  # scrape ADMIN FILE
mval() { awk -v n="$2" '$1==n{print $2; f=1; exit} END{if(!f) print "null"}' "$1"; }              # mval FILE NAME
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# ------------------------------------------------------------------ env
{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) cpus,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "pinning: sealgate=$SG_CPUS nginx+lg+curl=$HARNESS_CPUS workers=$WORKERS"
  echo "dur=${DUR}s warmup=${WARM}s reps=$REPS maxreq=$MAXREQ bulk=${BULK_MIB}MiB idle=$IDLE_N nofile=$NOFILE"
  echo "git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
  echo "openssl: $(openssl version)"; echo "nginx: $(nginx -v 2>&1)"; echo "curl: $(curl --version | head -1)"
  echo "loadavg at start: $(cat /proc/loadavg)"
} >"$OUT/env.txt"

# ------------------------------------------------------------------ measurement
# emit ROW-JSON-FROM-TOOL SYSTEM WORKLOAD REP  (uses the m_* globals sampled around the run)
emit() {
  python3 - "$1" "$2" "$3" "$4" "$m_p0" "$m_p1" "$m_u0" "$m_u1" "$m_t0" "$m_t1" "$HZ" \
    "$m_a0" "$m_a1" "$m_at0" "$m_at1" "$m_b0" "$m_b1" "$m_bt0" "$m_bt1" "$m_hwm" "$m_rss0" "$m_rss1" "${m_extra:-{\}}" >>"$RAW" <<'PY'
import json, sys
a = sys.argv[1:]
try:
    j = json.loads(a[0])
except ValueError:
    j = {"error": "tool output not JSON"}
sysname, wl, rep = a[1], a[2], int(a[3])
p0, p1, u0, u1 = map(int, a[4:8]); t0, t1 = float(a[8]), float(a[9]); hz = int(a[10])
c0b0, c0b1, c0t0, c0t1, c1b0, c1b1, c1t0, c1t1 = map(int, a[11:19])
hwm, rss0, rss1 = int(a[19] or 0), int(a[20] or 0), int(a[21] or 0)
j.update(json.loads(a[22]))
iv = max(t1 - t0, 1e-6)
j.update(system=sysname, workload=wl, rep=rep, interval_s=round(iv, 3),
         sg_cpu_s=round((p1 - p0) / hz, 3) if sysname == "sealgate" else None,
         upstream_cpu_s=round((u1 - u0) / hz, 3),
         cpu0_busy_pct=round(100 * (c0b1 - c0b0) / max(c0t1 - c0t0, 1), 1),
         cpu1_busy_pct=round(100 * (c1b1 - c1b0) / max(c1t1 - c1t0, 1), 1))
if sysname == "sealgate":
    j.update(sg_hwm_kb=hwm, sg_rss_before_kb=rss0, sg_rss_after_kb=rss1)
print(json.dumps(j))
PY
  tail -1 "$RAW" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
E = ("err_connect","err_proxy","err_tls","err_io","non200","expect_fail")
print("  %-8s %-6s rep%d rps=%-8s p50=%-7s p99=%-7s MB/s=%-7s sg_cpu=%ss hwm=%sk errs=%s %s" % (
  j["system"], j["workload"], j["rep"], j.get("rps"), j.get("p50_ms"), j.get("p99_ms"), j.get("mb_s", "-"),
  j.get("sg_cpu_s"), j.get("sg_hwm_kb", "-"), sum(j.get(k, 0) for k in E), j.get("first_error", "") or j.get("error", "")))' >&2
}

sample_begin() {
  m_p0=0 m_p1=0 m_hwm=0 m_rss0=0 m_rss1=0 m_extra='{}'
  if [ -n "$1" ]; then m_p0=$(cpu_ticks "$1"); m_rss0=$(status_kb "$1" VmRSS); fi
  m_u0=$(( $(cpu_ticks "$NGINX_PID") + $(cpu_ticks "$SINK_PID") )); m_t0=$(date +%s.%N)
  read -r m_a0 m_at0 < <(cpu_busy 0); read -r m_b0 m_bt0 < <(cpu_busy 1)
}
sample_end() {
  if [ -n "$1" ]; then m_p1=$(cpu_ticks "$1"); m_hwm=$(status_kb "$1" VmHWM); m_rss1=$(status_kb "$1" VmRSS); fi
  m_u1=$(( $(cpu_ticks "$NGINX_PID") + $(cpu_ticks "$SINK_PID") )); m_t1=$(date +%s.%N)
  read -r m_a1 m_at1 < <(cpu_busy 0); read -r m_b1 m_bt1 < <(cpu_busy 1)
}

# target args: direct = straight to nginx, sealgate = CONNECT through the proxy
lg_target() {
  if [ "$1" = direct ]; then echo "--addr $UP_ADDR:$UP_PORT --cafile $C/up-ca.crt"
  else echo "--addr 127.0.0.1:$SG_PORT --connect $UP_NAME:$UP_PORT --cafile $SG_CA"; fi
}
# what the client must see echoed: direct = what it sent (the handle); through sealgate the
# upstream received the secret, and sealgate scrubs it from the response back to the handle.
EXPECT="X-Echo-Auth: Bearer $HANDLE"

# sealgate's own time per request, from the audit lines a run appended: total_ms (head
# read -> response complete) - upstream_ms (head sent -> response head back), p50/p99
audit_split() {  # audit_split FILE OFFSET -> JSON
  python3 - "$1" "$2" <<'PY'
import json, sys
own, up = [], []
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    for line in f:
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("event") == "request" and "upstream_ms" in j and "total_ms" in j:
            own.append(j["total_ms"] - j["upstream_ms"])
            up.append(j["upstream_ms"])
q = lambda v, p: round(sorted(v)[min(len(v) - 1, int(len(v) * p))], 4) if v else None
print(json.dumps({"sg_own_p50_ms": q(own, 0.5), "sg_own_p99_ms": q(own, 0.99),
                  "sg_upstream_p50_ms": q(up, 0.5), "audit_requests": len(own)}))
PY
}

run_lg() {  # run_lg SYSTEM WORKLOAD REP [perf]
  local sys=$1 wl=$2 rep=$3 mode conns pid='' audit=$RUN/sg/audit.log off=0 l
  [ "$sys" = sealgate ] && pid=$SG_PID
  [ "$wl" = ka1bp ] && audit=$RUN/sg/audit-bp.log
  [ -f "$audit" ] && off=$(stat -c %s "$audit")
  mode=${wl%%[0-9]*}; conns=${wl#"$mode"}; conns=${conns%%[!0-9]*}   # ka1bp: ka, 1
  case $mode in prof) mode=ka;; esac
  # the 16 KiB echo pair: same request (asking for gzip), identity or gzip answer
  local -a body=(--path /) auth=(-H "Authorization: Bearer $HANDLE" --expect "$EXPECT")
  case $wl in
    *e16k) body=(--path /e16k -H "Accept-Encoding: gzip");;
    *gz16k) body=(--path /gz16k -H "Accept-Encoding: gzip");;
    *mint) auth=(-H "Authorization: Bearer $MINT_HANDLE" --expect "X-Echo-Auth: Bearer $MINT_HANDLE");;
    *aws) body=(--path "$AWS_GET_PATH")   # signed by aws_sign get (this rep)
          auth=(); while IFS= read -r l; do auth+=(-H "$l"); done <"$RUN/aws/get.hdr"
          auth+=(--expect "$AWS_EXPECT");;
  esac
  [ -n "$pid" ] && reset_hwm "$pid"
  # shellcheck disable=SC2046
  pin "$HARNESS_CPUS" "$LG" $(lg_target "$sys") --name "$UP_NAME" --host "$UP_NAME:$UP_PORT" "${body[@]}" \
    "${auth[@]}" --mode "$mode" -c "$conns" \
    -d "$DUR" -w "$WARM" -n "$MAXREQ" >"$RUN/lg.out" 2>"$RUN/lg.err" &
  local lgpid=$!
  sleep "$WARM"
  sample_begin "$pid"
  local perfpid=
  if [ "${4:-}" = perf ]; then
    perf record -g --call-graph dwarf,16384 -F 499 -p "$pid" -o "$OUT/perf-ka16.data" -- sleep "$(( DUR > 2 ? DUR - 1 : 1 ))" \
      >"$OUT/perf-record.log" 2>&1 &
    perfpid=$!
  fi
  wait "$lgpid"
  sample_end "$pid"
  [ -n "$perfpid" ] && wait "$perfpid"
  if [ "$sys" = sealgate ] && [ "$conns" = 1 ] && [ -f "$audit" ]; then
    sleep 0.2   # the audit writer flushes within AUDIT_LINGER_US (2 ms)
    m_extra=$(audit_split "$audit" "$off")
  fi
  emit "$(cat "$RUN/lg.out")" "$sys" "$wl" "$rep"
  case $sys/$wl in sealgate/*mint)
    log "$wl: token endpoint answers so far: $(grep -c '^ok$' "$RUN/mint-calls.log" 2>/dev/null) token(s)," \
        "$(grep -c '^refused$' "$RUN/mint-calls.log" 2>/dev/null) refusal(s)";;
  esac
}

run_bulk() {  # run_bulk SYSTEM down|up|upaws|upawschunk|downtxt|downgz REP : one streamed transfer with curl
  local sys=$1 wl=$2 rep=$3 pid='' out
  [ "$sys" = sealgate ] && pid=$SG_PID
  local -a via
  if [ "$sys" = direct ]; then via=(--noproxy "*" --resolve "$UP_NAME:$UP_PORT:$UP_ADDR" --resolve "$UP_NAME:$SINK_PORT:$UP_ADDR" --cacert "$C/up-ca.crt")
  else via=(--proxy "http://127.0.0.1:$SG_PORT" --cacert "$SG_CA"); fi
  # what the client must receive, and the Content-Encoding it must see (- = none): curl
  # asks for gzip but does not decode (no --compressed), so direct gets the gzip bytes and
  # through sealgate the decoded text (sealgate decodes what it scrubs)
  local want=$((BULK_MIB * 1048576)) coding=- echo=$EXPECT
  local -a what auth=(-H "Authorization: Bearer $HANDLE")
  case $wl in
    down) what=(-o /dev/null "https://$UP_NAME:$UP_PORT/bulk");;
    up) what=(-o /dev/null -X POST -T "$RUN/www/bulk.bin" -H 'Expect:' "https://$UP_NAME:$SINK_PORT/upload");;
    # S3 PUTs signed by aws_sign (this rep): the same object, UNSIGNED-PAYLOAD or aws-chunked
    upaws) auth=(-H @"$RUN/aws/put.hdr") echo=$AWS_EXPECT
           what=(-o /dev/null -T "$RUN/www/bulk.bin" -H 'Expect:' "$AWS_PUT_URL");;
    upawschunk) auth=(-H @"$RUN/aws/chunk.hdr") echo=$AWS_EXPECT want=$(stat -c %s "$RUN/aws/chunk.body")
                what=(-o /dev/null -T "$RUN/aws/chunk.body" -H 'Expect:' "$AWS_PUT_URL");;
    downtxt) what=(-o /dev/null -H 'Accept-Encoding: gzip' "https://$UP_NAME:$UP_PORT/downtxt");;
    downgz) what=(-o /dev/null -H 'Accept-Encoding: gzip' "https://$UP_NAME:$UP_PORT/downgz")
            [ "$sys" = direct ] && want=$BULK_GZ_BYTES coding=gzip;;
  esac
  [ -n "$pid" ] && reset_hwm "$pid"
  sample_begin "$pid"
  out=$(pin "$HARNESS_CPUS" env -u http_proxy -u https_proxy -u HTTPS_PROXY -u ALL_PROXY -u all_proxy \
        curl -sS --http1.1 --max-time 120 "${via[@]}" "${auth[@]}" -D "$RUN/bulk.hdr" \
        -w '%{http_code} %{size_download} %{size_upload} %{time_total}' "${what[@]}" 2>"$RUN/curl.err")
  sample_end "$pid"
  local ok=1; grep -qiF "$echo" "$RUN/bulk.hdr" 2>/dev/null || ok=0
  local got
  got=$(awk 'tolower($1)=="content-encoding:"{sub(/\r$/,"",$2); print tolower($2); f=1} END{if(!f) print "-"}' "$RUN/bulk.hdr" 2>/dev/null)
  m_extra=$(python3 - "$out" "$wl" "$want" "$ok" "$(head -c 200 "$RUN/curl.err" | tr -d '"\\\n')" \
    "$coding" "${got:--}" "$((BULK_MIB * 1048576))" <<'PY'
import json, sys
out, wl, want, ok, err, coding, got, decoded = sys.argv[1:]
want, decoded = int(want), int(decoded)
f = out.split()
try:
    code, down, up, t = int(f[0]), int(f[1]), int(f[2]), float(f[3])
except (ValueError, IndexError):
    print(json.dumps({"requests": 0, "first_error": "curl: " + err})); sys.exit()
n = up if wl.startswith("up") else down
why = "" if ok == "1" else "echo header missing"
if got != coding:
    why = "Content-Encoding %s, wanted %s" % (got, coding)
if n != want or code != 200:
    why = "HTTP %d, %d of %d bytes %s" % (code, n, want, err)
# aws-chunked: n is the framed body; MB/s and bytes count the object (decoded) as for upaws
obj = decoded if wl == "upawschunk" and n == want else n
j = {"requests": 1, "bytes": obj, "elapsed_s": t, "mb_s": round(obj / 1e6 / max(t, 1e-9), 1),
     "p50_ms": round(1000 * t, 1), "p99_ms": round(1000 * t, 1), "rps": round(1 / max(t, 1e-9), 3),
     "non200": int(code != 200), "err_io": int(n != want or got != coding), "expect_fail": int(ok == "0"),
     "first_error": why}
if wl == "upawschunk":
    j.update(wire_bytes=n, wire_mb_s=round(n / 1e6 / max(t, 1e-9), 1))
if wl in ("downtxt", "downgz"):   # the text's decoded size over the same time, and the coding seen
    j.update(content_encoding=got, decoded_bytes=decoded, decoded_mb_s=round(decoded / 1e6 / max(t, 1e-9), 1))
print(json.dumps(j))
PY
)
  emit '{}' "$sys" "$wl" "$rep"
}

probe_ka1() {  # probe_ka1 OUT.json : IDLE_PROBE_S of ka1 through sealgate (latency probe)
  # shellcheck disable=SC2046
  pin "$HARNESS_CPUS" "$LG" $(lg_target sealgate) --name "$UP_NAME" --host "$UP_NAME:$UP_PORT" \
    -H "Authorization: Bearer $HANDLE" --expect "$EXPECT" --mode ka -c 1 \
    -d "$IDLE_PROBE_S" -w 1 -n "$MAXREQ" >"$1" 2>"$RUN/probe.err" || echo '{"error":"probe failed"}' >"$1"
}

settle_fds() {  # settle_fds PID : until sealgate's descriptor count stops falling (parking), <= 20 s
  local n i a=-1 b=-1
  for i in $(seq 1 40); do
    n=$(fd_count "$1")
    # at least 2.5 s (park_after is 2 s), then unchanged over the last second
    [ "$i" -ge 6 ] && [ "$n" = "$a" ] && break
    a=$b b=$n
    sleep 0.5
  done
}

run_idle() {  # run_idle REP : IDLE_N intercepted keep-alive connections held; RSS, fds, ka1 p99
  local rep=$1 lgpid held='' rel=$RUN/idle.release rss_base rss_held rss_probe fds fds_base
  rm -f "$rel"
  log "idle: ka1 probe (${IDLE_PROBE_S}s) before, then $IDLE_N connections"
  probe_ka1 "$RUN/probe0.json"
  reset_hwm "$SG_PID"
  sleep 0.5
  rss_base=$(status_kb "$SG_PID" VmRSS); fds_base=$(fd_count "$SG_PID")
  sample_begin "$SG_PID"
  # shellcheck disable=SC2046
  pin "$HARNESS_CPUS" "$LG" $(lg_target sealgate) --name "$UP_NAME" --host "$UP_NAME:$UP_PORT" \
    -H "Authorization: Bearer $HANDLE" --expect "$EXPECT" --mode idle -c "$IDLE_N" --ramp 64 \
    -d "${IDLE_SETUP_S:-90}" --hold "$IDLE_HOLD_MAX_S" --hold-until "$rel" -n "$IDLE_N" \
    >"$RUN/lg.out" 2>"$RUN/lg.err" &
  lgpid=$!
  for _ in $(seq 1 $(( ${IDLE_SETUP_S:-90} * 10 + 50 ))); do
    held=$(awk '/^HELD /{print $2}' "$RUN/lg.err")
    [ -n "$held" ] && break
    kill -0 "$lgpid" 2>/dev/null || break
    sleep 0.1
  done
  settle_fds "$SG_PID"   # idle connections park (upstream to the pool) after park_after
  sample_end "$SG_PID"   # ramp + settle: setup conn/s and CPU ms/conn
  rss_held=$(status_kb "$SG_PID" VmRSS); fds=$(fd_count "$SG_PID")
  scrape "$SG_ADMIN" "$RUN/idle.metrics"
  log "idle: ${held:-0} held, sealgate RSS $(( rss_held / 1024 )) MiB, $fds fds; ka1 probe while held"
  probe_ka1 "$RUN/probe1.json"
  rss_probe=$(status_kb "$SG_PID" VmRSS)
  touch "$rel"           # lg releases the held connections
  wait "$lgpid"
  m_extra=$(python3 - "$rss_base" "$rss_held" "$rss_probe" "${held:-0}" "$fds" "$fds_base" \
    "$(mval "$RUN/idle.metrics" sealgate_connections_active)" "$(mval "$RUN/idle.metrics" sealgate_connections_parked_total)" \
    "$RUN/probe0.json" "$RUN/probe1.json" <<'PY'
import json, sys
b, h, hp, n, f, f0 = map(int, sys.argv[1:7])
act, parked = (json.loads(x) for x in sys.argv[7:9])
def probe(fn):
    try:
        j = json.load(open(fn))
    except (OSError, ValueError):
        return {"error": "no probe output"}
    keep = ("requests", "rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "first_error",
            "err_connect", "err_proxy", "err_tls", "err_io", "non200", "expect_fail")
    return {k: j.get(k) for k in keep if k in j}
p0, p1 = probe(sys.argv[9]), probe(sys.argv[10])
r = p1.get("p99_ms") / p0["p99_ms"] if p0.get("p99_ms") and p1.get("p99_ms") else None
print(json.dumps({"idle_held": n, "sg_rss_base_kb": b, "sg_rss_held_kb": h, "sg_rss_probe_kb": hp,
  "sg_fds_held": f, "sg_fds_base": f0, "fds_per_idle_conn": round((f - f0) / n, 3) if n else None,
  "kb_per_idle_conn": round((h - b) / n, 2) if n else None,
  "sg_conns_active": act, "sg_conns_parked_total": parked,
  "probe_unloaded": p0, "probe_held": p1, "probe_p99_ratio": round(r, 3) if r else None}))
PY
)
  emit "$(cat "$RUN/lg.out")" sealgate idle "$rep"
}

# ------------------------------------------------------------------ ka1bp
# ka1 through a second sealgate whose workers busy-poll (limits.busy_poll_us = BUSY_POLL_US):
# the same keys and credential, its own audit file and state dir.
run_busy() {  # run_busy REP
  local rep=$1 pol=$RUN/sg/policy-bp.json save_pid=$SG_PID save_port=$SG_PORT
  python3 - "$RUN/sg/policy.json" "$pol" "$BUSY_POLL_US" <<'PY' || { log "ka1bp: policy failed"; return 1; }
import json, os, sys
p = json.load(open(sys.argv[1]))
p["limits"]["busy_poll_us"] = int(sys.argv[3])
d = os.path.dirname(sys.argv[2])
p["audit"]["path"] = os.path.join(d, "audit-bp.log")
p["state"] = {"dir": os.path.join(d, "state-bp")}
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps(p).encode())
os.close(fd)
PY
  start_sg sgbp "$pol" || { log "ka1bp: sealgate did not start"; return 1; }
  SG_PID=$R_PID SG_PORT=$R_PORT
  run_lg sealgate ka1bp "$rep"
  stop_pid "$(cat "$RUN/sgbp.pid")"
  SG_PID=$save_pid SG_PORT=$save_port
}

# ------------------------------------------------------------------ resume
# A second sealgate (same keys and credential) with the metadata responder and a template
# whose handles are sandbox-lifetime; bench/resume.py registers a sandbox on RESUME_SOURCE,
# suspends and resumes it RESUME_CYCLES times and times, in the same run: a new connection's
# first request (sandbox running), warm requests, the first request after each resume.
run_resume() {  # run_resume REP
  local rep=$1 pol=$RUN/sg/policy-res.json md out
  python3 - "$RUN/sg/policy.json" "$pol" <<'PY' || { log "resume: policy failed"; return 1; }
import json, os, sys
p = json.load(open(sys.argv[1]))
d = os.path.dirname(sys.argv[2])
p["listen"]["metadata"] = "127.0.0.1:0"
p["sandbox_templates"] = {"bench-persist": {"credentials": ["bench"], "ttl": "sandbox"}}
p["audit"]["path"] = os.path.join(d, "audit-res.log")
p["state"] = {"dir": os.path.join(d, "state-res")}
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps(p).encode())
os.close(fd)
PY
  start_sg sgres "$pol" || { log "resume: sealgate did not start"; return 1; }
  md=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"])' "$RUN/sgres.ready.json")
  reset_hwm "$R_PID"
  sample_begin "$R_PID"
  out=$(pin "$HARNESS_CPUS" python3 "$HERE/resume.py" --proxy "127.0.0.1:$R_PORT" --admin "$R_ADMIN"         --admin-hdr "$RUN/admin.hdr" --metadata "$md" --ca "$SG_CA" --host "$UP_NAME" --port "$UP_PORT"         --source "$RESUME_SOURCE" --cycles "$RESUME_CYCLES" --warm "$RESUME_WARM" --pause "$RESUME_PAUSE_S"         2>"$RUN/resume.err") || { log "resume: $(head -c 300 "$RUN/resume.err")"; out='{"error": "resume.py failed"}'; }
  sample_end "$R_PID"
  stop_pid "$(cat "$RUN/sgres.pid")"
  emit "$out" sealgate resume "$rep"
}

# ------------------------------------------------------------------ policy10k
gen_policy10k() {  # gen_policy10k DIR : the bench policy + POLICY_CREDS credentials, POLICY_SANDBOXES sandboxes
  python3 - "$RUN/sg/policy.json" "$1" "$POLICY_CREDS" "$POLICY_SANDBOXES" "$RUN/sg/keys" <<'PY'
import json, os, secrets, sys
base, d, ncred, nsb, keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
p = json.load(open(base))
os.makedirs(os.path.join(d, "secrets"), mode=0o700)
# same keys, CA, admin token as the bench sealgate; its own audit file and registry state
p["keys"] = {k: os.path.join(keys, os.path.basename(v)) for k, v in p["keys"].items()}
p["admin"]["token"]["file"] = os.path.join(keys, "admin.token")
p["audit"]["path"] = os.path.join(d, "audit.log")
p["state"] = {"dir": os.path.join(d, "state")}
creds, sbs = p["credentials"], p["sandboxes"]
gen = ["svc-%05d" % i for i in range(1, ncred - len(creds) + 1)]
for i, name in enumerate(gen, 1):
    path = os.path.join(d, "secrets", name)       # file secrets: mode 0600, re-read by every reload
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, ("sk-%s\n" % secrets.token_hex(20)).encode())
    os.close(fd)
    k = i % 10
    inject = ({"type": "bearer"} if k < 6 else
              {"type": "header", "name": "X-Api-Key", "format": "%s"} if k < 9 else
              {"type": "basic", "username": name})
    c = {"secret": {"file": path}, "inject": inject,
         "hosts": ["api-%05d.example.test" % i, "*.svc-%05d.example.test:8443" % i],
         "paths": ["/v1/*", "/v2/items/*"],
         "rate": {"requests": 600, "per": "1m", "burst": 50},
         "ttl": "1h", "env": "SVC_%05d_API_KEY" % i}
    if i % 2:
        c["methods"] = ["GET", "POST"]
    if i % 4 == 0:
        c["rate_total"] = {"requests": 6000, "per": "1m"}
    creds[name] = c
grants = sum(len(s.get("credentials", [])) for s in sbs.values())
for j in range(1, nsb - len(sbs) + 1):
    cs = [gen[(10 * (j - 1) + k) % len(gen)] for k in range(10)] if gen else []
    sbs["sb-%04d" % j] = {"addresses": ["10.%d.%d.%d/32" % (1 + j // 65536, (j // 256) % 256, j % 256)],
                          "credentials": cs, "rate": {"requests": 100, "per": "1s"}}
    grants += len(cs)
out = os.path.join(d, "policy.json")
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)   # holds the bench secret inline
with os.fdopen(fd, "w") as f:
    json.dump(p, f, indent=1)
print(json.dumps({"credentials": len(creds), "sandboxes": len(sbs), "grants": grants,
                  "policy_bytes": os.path.getsize(out), "secret_files": len(gen)}))
PY
}

time_cmd() {  # time_cmd CPUS N CMD... : {"ms": [...], "rc": [...]} of N runs pinned to CPUS, wall clock
  local cpus=$1; shift
  pin "$cpus" python3 - "$@" <<'PY'
import json, subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
ms, rc = [], []
for _ in range(n):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    ms.append(round(1000 * (time.perf_counter() - t), 2))
    rc.append(r.returncode)
print(json.dumps({"ms": ms, "rc": rc}))
PY
}

run_policy10k() {  # run_policy10k REP : check (CLI), load (in-process), reload (admin API) times
  local rep=$1 d=$RUN/p10k gen check out i
  rm -rf "$d"
  gen=$(gen_policy10k "$d") || { log "policy10k: generation failed"; return 1; }
  log "policy10k: $gen"
  check=$(time_cmd "$SG_CPUS" "$POLICY_REPS" "$SG" policy check --quiet "$d/policy.json")
  start_sg sg10k "$d/policy.json" || { log "policy10k: sealgate did not start"; return 1; }
  scrape "$R_ADMIN" "$d/start.metrics"
  local rss_start maps_start maps_end
  rss_start=$(status_kb "$R_PID" VmRSS); maps_start=$(wc -l <"/proc/$R_PID/maps")
  : >"$d/reloads.txt"
  reset_hwm "$R_PID"
  sample_begin "$R_PID"
  for i in $(seq 1 "$POLICY_REPS"); do
    out=$(curl -sS --noproxy '*' --max-time 60 -X POST -H @"$RUN/admin.hdr" -o "$d/reload.out" \
          -w '%{http_code} %{time_total}' "http://$R_ADMIN/v1/reload" 2>&1)
    [ "${out%% *}" = 200 ] || [ -s "$d/reload.err" ] \
      || python3 -c 'import json,sys; m=json.load(open(sys.argv[1])).get("message",""); print(m.splitlines()[0][:200] if m else "")' \
         "$d/reload.out" >"$d/reload.err" 2>/dev/null   # first refusal: located error, no secret
    scrape "$R_ADMIN" "$d/reload.metrics"
    echo "$i $out $(mval "$d/reload.metrics" sealgate_policy_load_seconds) $(mval "$d/reload.metrics" sealgate_policy_generation)" >>"$d/reloads.txt"
  done
  sample_end "$R_PID"
  maps_end=$(wc -l <"/proc/$R_PID/maps")   # mappings: a few secret-arena regions per snapshot
  stop_pid "$(cat "$RUN/sg10k.pid")"
  m_extra=$(python3 - "$gen" "$check" "$(mval "$d/start.metrics" sealgate_policy_load_seconds)" "$rss_start" \
    "$d/reloads.txt" "$POLICY_REPS" "$(cat "$d/reload.err" 2>/dev/null)" "$maps_start" "$maps_end" \
    "$(cat /proc/sys/vm/max_map_count)" <<'PY'
import json, statistics as st, sys
j = json.loads(sys.argv[1]); chk = json.loads(sys.argv[2]); load = json.loads(sys.argv[3])
rel_client, srv, codes = [], [], []
for line in open(sys.argv[5]):   # i http_code time_total load_seconds generation
    f = line.split()
    try:
        codes.append(int(f[1]))
    except (IndexError, ValueError):
        codes.append(0)
        continue
    if codes[-1] == 200:          # only successful reloads are timed
        rel_client.append(1000 * float(f[2]))
        if f[3] != "null":
            srv.append(1000 * float(f[3]))
ok = [c for c in codes if c == 200]
j.update(check_ms=chk["ms"], check_ms_median=st.median(chk["ms"]), check_rc=chk["rc"],
         load_ms=round(1000 * load, 3) if load is not None else None,
         sg_rss_start_kb=int(sys.argv[4]), sg_maps_start=int(sys.argv[8]), sg_maps_end=int(sys.argv[9]),
         max_map_count=int(sys.argv[10]),
         reload_ms_client=[round(x, 2) for x in rel_client], reload_ms_server=[round(x, 3) for x in srv],
         reload_ms_client_median=round(st.median(rel_client), 2) if rel_client else None,
         reload_ms_server_median=round(st.median(srv), 3) if srv else None,
         reloads_ok=len(ok), reloads=int(sys.argv[6]), requests=len(ok),
         non200=len(codes) - len(ok) + sum(1 for r in chk["rc"] if r != 0),
         first_error="" if len(ok) == len(codes) and not any(chk["rc"]) else
                     "reload HTTP %s, check exit %s; %s" % (codes, chk["rc"], sys.argv[7]))
print(json.dumps(j))
PY
)
  emit '{}' sealgate policy10k "$rep"
}

# ------------------------------------------------------------------ handles100k
run_handles() {  # run_handles REP : HANDLES_N distinct handles, ka16 over all of them, twice
  local rep=$1 t0 t1 pass wl cap n
  cap=$(awk '$1=="#define" && $2=="SG_HANDLECACHE_SIZE"{print $3; exit}' "$ROOT/include/defaults.h")
  t0=$(date +%s.%N)
  pin "$HARNESS_CPUS" "$SG" handle mint --policy "$RUN/sg/policy.json" --sandbox bench --credential bench \
    --ttl 1h --count "$HANDLES_N" >"$RUN/handles.txt" 2>"$RUN/mint.err" \
    || { log "handles100k: handle mint --count failed: $(grep -v 'inline value' "$RUN/mint.err" | head -c 300)"; return 1; }
  t1=$(date +%s.%N)
  n=$(sort -u "$RUN/handles.txt" | wc -l)
  [ "$n" = "$HANDLES_N" ] || { log "handles100k: $n distinct handles, wanted $HANDLES_N"; return 1; }
  log "handles100k: minted $n handles in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}')s; ka16 over all of them, twice"
  scrape "$SG_ADMIN" "$RUN/handles0.metrics"
  local sys pid wl
  for pass in direct 1 2; do
    sys=sealgate pid=$SG_PID wl=handles100k
    [ "$pass" = 2 ] && wl=handles100k-again
    [ "$pass" = direct ] && sys=direct pid=''
    [ -n "$pid" ] && reset_hwm "$pid"
    sample_begin "$pid"
    # nginx echoes what it received; through sealgate the secret is scrubbed back to this
    # request's own handle, so both must show exactly the handle sent.
    # shellcheck disable=SC2046
    pin "$HARNESS_CPUS" "$LG" $(lg_target "$sys") --name "$UP_NAME" --host "$UP_NAME:$UP_PORT" \
      --handles "$RUN/handles.txt" -H "Authorization: Bearer @HANDLE@" --expect "X-Echo-Auth: Bearer @HANDLE@" \
      --mode ka -c 16 -d "$HANDLES_MAX_S" -w 0 -n "$HANDLES_N" >"$RUN/lg.out" 2>"$RUN/lg.err"
    sample_end "$pid"
    if [ "$sys" = direct ]; then
      m_extra="{\"pass\": 0, \"handles\": $HANDLES_N}"
      emit "$(cat "$RUN/lg.out")" direct "$wl" "$rep"
      continue
    fi
    scrape "$SG_ADMIN" "$RUN/handles$pass.metrics"
    m_extra=$(python3 - "$RUN/handles$((pass - 1)).metrics" "$RUN/handles$pass.metrics" "${cap:-0}" \
      "$HANDLES_N" "$t0" "$t1" "$pass" <<'PY'
import json, sys
def load(fn):
    m = {}
    for line in open(fn):
        if line and not line.startswith("#"):
            f = line.split()
            if len(f) == 2:
                m[f[0]] = float(f[1])
    return m
a, b = load(sys.argv[1]), load(sys.argv[2])
d = lambda k: int(b[k] - a.get(k, 0)) if k in b else None
g = lambda k: int(b[k]) if k in b else None
print(json.dumps({"pass": int(sys.argv[7]), "handles": int(sys.argv[4]),
  "mint_s": round(float(sys.argv[6]) - float(sys.argv[5]), 2),
  "cache_cap": int(sys.argv[3]) or None, "cache_entries": g("sealgate_handle_cache_entries"),
  "cache_hits": d("sealgate_handle_cache_hits_total"), "cache_misses": d("sealgate_handle_cache_misses_total"),
  "ratelimit_buckets": g("sealgate_ratelimit_buckets")}))
PY
)
    emit "$(cat "$RUN/lg.out")" sealgate "$wl" "$rep"
  done
  rm -f "$RUN/handles.txt"
}

smoke() {  # the upstream must receive the secret, the client must get the handle back
  local out
  : >"$RUN/nginx/auth.log"    # nginx keeps the file open: truncate, never unlink
  # shellcheck disable=SC2046
  out=$("$LG" $(lg_target sealgate) --name "$UP_NAME" --host "$UP_NAME:$UP_PORT" --path /smoke \
        -H "Authorization: Bearer $HANDLE" --expect "$EXPECT" -c 1 -d 10 -w 0 -n 3)
  echo "$out" >"$OUT/smoke.json"
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); bad=sum(j.get(k,0) for k in ("err_connect","err_proxy","err_tls","err_io","non200","expect_fail")); sys.exit(0 if j.get("requests")==3 and bad==0 else 1)' "$out" \
    || { log "smoke through sealgate failed: $out"; return 1; }
  sleep 0.2
  local n_secret n_total
  n_total=$(wc -l <"$RUN/nginx/auth.log" 2>/dev/null || echo 0)
  n_secret=$(grep -cxF "Bearer $SECRET" "$RUN/nginx/auth.log" 2>/dev/null)
  : >"$RUN/nginx/auth.log"     # held the secret
  if [ "$n_total" -ge 3 ] && [ "$n_secret" = "$n_total" ]; then
    log "smoke: upstream received the real secret on $n_secret/$n_total requests; client saw the handle echoed (scrubbed)"
    echo "{\"smoke\":\"ok\",\"upstream_saw_secret\":$n_secret,\"requests\":$n_total}" >"$OUT/smoke-upstream.json"
  else
    log "smoke: upstream got the secret on ${n_secret:-0}/$n_total requests: swap NOT working"; return 1
  fi
}

smoke_gz() {  # the 16 KiB echo: nginx gzips /gz16k; through sealgate both arrive decoded and scrubbed
  local path sys code want ratios
  local -a via
  : >"$OUT/smoke-gz.jsonl"; : >"$RUN/nginx/gz.log"
  for path in e16k gz16k; do
    for sys in direct sealgate; do
      if [ "$sys" = direct ]; then via=(--noproxy "*" --resolve "$UP_NAME:$UP_PORT:$UP_ADDR" --cacert "$C/up-ca.crt")
      else via=(--proxy "http://127.0.0.1:$SG_PORT" --cacert "$SG_CA"); fi
      want=-; [ "$path/$sys" = gz16k/direct ] && want=gzip   # curl does not decode (no --compressed)
      code=$(env -u http_proxy -u https_proxy -u HTTPS_PROXY -u ALL_PROXY -u all_proxy \
             curl -sS --http1.1 --max-time 10 "${via[@]}" -H "Authorization: Bearer $HANDLE" \
             -H 'Accept-Encoding: gzip' -H 'X-Bench-Smoke: 1' -D "$RUN/sgz.hdr" -o "$RUN/sgz.body" \
             -w '%{http_code}' "https://$UP_NAME:$UP_PORT/$path" 2>"$RUN/curl.err") || code=000
      # handle and secret reach the checker through its environment, never its arguments
      SGZ_HANDLE=$HANDLE SGZ_SECRET=$SECRET python3 - "$RUN/sgz.hdr" "$RUN/sgz.body" "$want" "$code" \
        "$path" "$sys" >>"$OUT/smoke-gz.jsonl" <<'PY' || { log "smoke /$path $sys failed: $(tail -1 "$OUT/smoke-gz.jsonl")"; return 1; }
import gzip, json, os, sys
hdr, body, want, code, path, sysname = sys.argv[1:]
ce = "-"
for line in open(hdr, "rb").read().decode("latin-1").splitlines():
    k, _, v = line.partition(":")
    if k.strip().lower() == "content-encoding":
        ce = v.strip().lower()
raw = open(body, "rb").read()
r = {"path": "/" + path, "system": sysname, "http": int(code), "content_encoding": ce, "received": len(raw)}
why = ""
try:
    text = gzip.decompress(raw) if ce == "gzip" else raw
    json.loads(text)
    r["decoded"] = len(text)
    r["handle_echoed"] = text.count(("Bearer " + os.environ["SGZ_HANDLE"]).encode())
    r["secret_seen"] = text.count(os.environ["SGZ_SECRET"].encode())
except (OSError, ValueError) as e:
    why = "body not (gzip) JSON: %s" % type(e).__name__
if not why and (code != "200" or ce != want):
    why = "HTTP %s, Content-Encoding %s, wanted %s" % (code, ce, want)
elif not why and (r["handle_echoed"] != 2 or r["secret_seen"] != 0):
    why = "body echoes the handle %d times (want 2), the secret %d times (want 0)" % (
        r["handle_echoed"], r["secret_seen"])
r["ok"] = not why
if why:
    r["error"] = why
print(json.dumps(r))
sys.exit(1 if why else 0)
PY
    done
  done
  rm -f "$RUN/sgz.body" "$RUN/sgz.hdr"
  sleep 0.2   # nginx writes its access log line when the request ends
  ratios=$(tr '\n' ' ' <"$RUN/nginx/gz.log")
  # both /gz16k requests (direct, through sealgate) were compressed by nginx ($gzip_ratio)
  awk 'NF{n++; if ($1+0 > 1) ok++} END{exit !(n == 2 && ok == 2)}' "$RUN/nginx/gz.log" \
    || { log "smoke: nginx gzip ratios of /gz16k: '$ratios' (want 2 above 1)"; return 1; }
  log "smoke: /e16k, /gz16k (nginx gzip ratio $ratios) echo the handle twice, decoded and scrubbed through sealgate"
}

# ------------------------------------------------------------------ AWS (SigV4)
# The sandbox's side, as an AWS SDK does it: bench/awssig.py fetches the derived
# credentials of the bench-aws role from sealgate's metadata responder (IMDSv2, from
# 127.0.0.1 = sandbox bench), signs an S3 request with them and writes its headers to
# $RUN/aws/NAME.hdr (mode 0600: the handle is the session token). Signed per rep and
# workload: X-Amz-Date must stay within 15 minutes of sealgate's clock. The derived secret
# never leaves awssig.py; the real access key id and secret reach only the smoke's checker,
# through its environment.
AWS_GET_PATH=/bench-bucket/ka16aws
AWS_PUT_URL="https://$UP_NAME:$SINK_PORT/bench-bucket/bulk.bin"
AWS_EXPECT=''
mkdir -p "$RUN/aws"
aws_sign() {  # aws_sign NAME awssig-sign-args... ; sets AWS_EXPECT (the derived key id echoed)
  local name=$1 akid; shift
  pin "$HARNESS_CPUS" "$PY3" "$HERE/awssig.py" sign --metadata "$SG_MD" --hdr "$RUN/aws/$name.hdr" "$@" \
    >"$RUN/aws/$name.json" 2>"$RUN/aws/sign.err" \
    || { log "aws: signing $name failed: $(head -c 300 "$RUN/aws/sign.err")"; return 1; }
  akid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["akid"])' "$RUN/aws/$name.json") || return 1
  # nginx and the sink echo Authorization; through sealgate the real key id in it is
  # scrubbed back to the derived one, so both systems must show the derived one
  AWS_EXPECT="X-Echo-Auth: AWS4-HMAC-SHA256 Credential=$akid/"
}
aws_prepare() {  # aws_prepare WORKLOAD : sign the rep's request (and frame the chunked body)
  case $1 in
    ka16aws) aws_sign get --method GET --url "https://$UP_NAME:$UP_PORT$AWS_GET_PATH";;
    upaws) aws_sign put --method PUT --url "$AWS_PUT_URL" --payload "$RUN/www/bulk.bin";;
    upawschunk) aws_sign chunk --method PUT --url "$AWS_PUT_URL" --payload "$RUN/www/bulk.bin" \
                  --chunked "$RUN/aws/chunk.body" --chunk-size "$AWS_CHUNK";;
  esac
}
aws_check() {  # aws_check awssig-check-args... : the upstream's log against what was sent
  SG_AWS_REAL_AKID=$AWS_AKID SG_AWS_REAL_SECRET=$AWS_SECRET "$PY3" "$HERE/awssig.py" check "$@" \
    >>"$OUT/smoke-aws.jsonl" 2>"$RUN/aws/check.err" \
    || { log "smoke aws: $(tail -1 "$OUT/smoke-aws.jsonl") $(head -c 300 "$RUN/aws/check.err")"; return 1; }
}

smoke_aws() {  # re-signed, never the derived key id or the handle: GET (nginx), PUT and aws-chunked PUT (sink)
  local out l code form
  local -a h
  : >"$OUT/smoke-aws.jsonl"; : >"$RUN/nginx/awsauth.log"
  aws_sign smoke-get --method GET --url "https://$UP_NAME:$UP_PORT/bench-bucket/smoke-aws" || return 1
  h=(); while IFS= read -r l; do h+=(-H "$l"); done <"$RUN/aws/smoke-get.hdr"
  # shellcheck disable=SC2046
  out=$("$LG" $(lg_target sealgate) --name "$UP_NAME" --host "$UP_NAME:$UP_PORT" --path /bench-bucket/smoke-aws \
        "${h[@]}" --expect "$AWS_EXPECT" -c 1 -d 10 -w 0 -n 3)
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); bad=sum(j.get(k,0) for k in ("err_connect","err_proxy","err_tls","err_io","non200","expect_fail")); sys.exit(0 if j.get("requests")==3 and bad==0 else 1)' "$out" \
    || { log "smoke aws GET through sealgate failed: $out"; return 1; }
  sleep 0.2   # nginx writes its access log line when the request ends
  aws_check --kind nginx --log "$RUN/nginx/awsauth.log" --hdr "$RUN/aws/smoke-get.hdr" --want 3 || return 1
  : >"$RUN/nginx/awsauth.log"   # held the real key id
  # uploads: 3 full chunks and a short one of random bytes, so hashes mean something
  head -c $((3 * AWS_CHUNK + 1000)) /dev/urandom >"$RUN/aws/smoke.bin"
  for form in put chunk; do
    rm -f "$RUN/sink-smoke.log"
    if [ $form = put ]; then
      aws_sign smoke-put --method PUT --url "$AWS_PUT_URL" --payload "$RUN/aws/smoke.bin" || return 1
    else
      aws_sign smoke-chunk --method PUT --url "$AWS_PUT_URL" --payload "$RUN/aws/smoke.bin" \
        --chunked "$RUN/aws/smoke.body" --chunk-size "$AWS_CHUNK" --sigs "$RUN/aws/smoke.sigs" || return 1
    fi
    code=$(env -u http_proxy -u https_proxy -u HTTPS_PROXY -u ALL_PROXY -u all_proxy \
           curl -sS --http1.1 --max-time 20 --proxy "http://127.0.0.1:$SG_PORT" --cacert "$SG_CA" \
           -H @"$RUN/aws/smoke-$form.hdr" -H 'X-Bench-Smoke: 1' -H 'Expect:' -D "$RUN/aws/smoke.resp" -o /dev/null \
           -T "$RUN/aws/$([ $form = put ] && echo smoke.bin || echo smoke.body)" -w '%{http_code}' "$AWS_PUT_URL" \
           2>"$RUN/curl.err") || code=000
    if [ "$code" != 200 ] || ! grep -qiF "$AWS_EXPECT" "$RUN/aws/smoke.resp"; then
      log "smoke aws PUT ($form) through sealgate: HTTP $code, echo ok: $(grep -ciF "$AWS_EXPECT" "$RUN/aws/smoke.resp")" \
          "$(head -c 200 "$RUN/curl.err")"
      return 1
    fi
    if [ $form = put ]; then
      aws_check --kind sink --log "$RUN/sink-smoke.log" --hdr "$RUN/aws/smoke-put.hdr" --payload "$RUN/aws/smoke.bin" || return 1
    else
      aws_check --kind sink --log "$RUN/sink-smoke.log" --hdr "$RUN/aws/smoke-chunk.hdr" --sigs "$RUN/aws/smoke.sigs" \
        --payload "$RUN/aws/smoke.bin" || return 1
    fi
  done
  rm -f "$RUN/sink-smoke.log" "$RUN/aws/smoke."*
  log "smoke aws: upstream got Credential=<real key id> and signatures that verify with the real secret, never the" \
      "derived key id or the handle (GET x3, PUT, aws-chunked PUT: every chunk signature redone, payload intact)"
}

# ------------------------------------------------------------------ run
log "results -> $OUT"
# what one wake-up costs here: ping-pong round trips within CPU 0, across CPUs (peer
# sleeping), across CPUs (peer polling); the floor under every ka1 latency
if [ -n "$SG_CPUS" ] && [ -n "$HARNESS_CPUS" ]; then
  { "$HOP" "$HARNESS_CPUS" "$HARNESS_CPUS"; "$HOP" "$HARNESS_CPUS" "$SG_CPUS"
    "$HOP" "$HARNESS_CPUS" "$SG_CPUS" poll; } >"$OUT/hop.jsonl" 2>/dev/null
fi
for rep in $(seq 1 "$REPS"); do
  start_sealgate || die "sealgate did not start (log above)"
  log "== rep $rep: sealgate pid $SG_PID on 127.0.0.1:$SG_PORT (cpu ${SG_CPUS:-any}), nginx $UP_ADDR:$UP_PORT (cpu ${HARNESS_CPUS:-any})"
  if [ "$rep" = 1 ]; then smoke || die "smoke test failed"; fi
  case " $WORKLOADS " in *" ka16e16k "*|*" ka16gz16k "*)
    if [ "$rep" = 1 ]; then smoke_gz || die "compressed-response smoke test failed"; fi;; esac
  case " $WORKLOADS " in *" ka16aws "*|*" upaws "*|*" upawschunk "*)
    if [ "$rep" = 1 ]; then smoke_aws || die "AWS re-signing smoke test failed"; fi;; esac
  for wl in $WORKLOADS; do
    case $wl in
      ka1bp) run_lg direct "$wl" "$rep"; sleep 1; run_busy "$rep"; sleep 1;;
      ka16aws) aws_prepare "$wl" || continue   # signed once per rep, same headers for both systems
               run_lg direct "$wl" "$rep"; sleep 1; run_lg sealgate "$wl" "$rep"; sleep 1;;
      ka[0-9]*|new[0-9]*) run_lg direct "$wl" "$rep"; sleep 1; run_lg sealgate "$wl" "$rep"; sleep 1;;
      upaws|upawschunk) aws_prepare "$wl" || continue ;&   # then as the other bulk transfers
      down|up|downtxt|downgz) for _ in $(seq 1 "$BULK_REPS"); do   # a 256 MiB transfer lasts ~0.3 s: median of 3
                 run_bulk direct "$wl" "$rep"; run_bulk sealgate "$wl" "$rep"; done
               rm -f "$RUN/aws/chunk.body"; sleep 1;;
      policy10k) run_policy10k "$rep";;   # a second sealgate serving the big policy
      resume) run_resume "$rep";;         # a second sealgate with the metadata responder
      idle|handles100k) ;;   # idle last (it leaves sealgate's heap grown), then handles100k
      *) log "unknown workload $wl";;
    esac
  done
  case " $WORKLOADS " in *" idle "*) run_idle "$rep";; esac
  stop_sealgate
  case " $WORKLOADS " in *" handles100k "*)   # on a fresh sealgate: RSS growth is the cache's
    start_sealgate || die "sealgate did not restart for handles100k"
    run_handles "$rep"
    stop_sealgate;;
  esac
done

if [ "$PROFILE" = 1 ]; then
  start_sealgate || die "sealgate did not restart for the profile"
  log "== profile: ka16 under perf record -g (sealgate pid $SG_PID)"
  run_lg sealgate prof16 0 perf
  if [ -s "$OUT/perf-ka16.data" ]; then
    perf report -i "$OUT/perf-ka16.data" --no-children --sort symbol --stdio -g none --percent-limit 0.3 \
      >"$OUT/perf-ka16-self.txt" 2>/dev/null
    perf report -i "$OUT/perf-ka16.data" --children --sort symbol --stdio -g none --percent-limit 2 \
      >"$OUT/perf-ka16-children.txt" 2>/dev/null
    perf report -i "$OUT/perf-ka16.data" --no-children --sort dso --stdio -g none \
      >"$OUT/perf-ka16-dso.txt" 2>/dev/null
    log "profile: $OUT/perf-ka16-{self,children,dso}.txt"
  else
    log "perf record produced nothing (see $OUT/perf-record.log)"
  fi
  stop_sealgate
fi

python3 "$HERE/summarize.py" "$RAW" --json "$OUT/results.json" --env "$OUT/env.txt" --hop "$OUT/hop.jsonl" \
  >"$OUT/summary.md"
cat "$OUT/summary.md"
log "done: $OUT"
