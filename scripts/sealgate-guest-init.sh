#!/bin/sh
# sealgate-guest-init.sh — run once at boot, as root, inside a sandbox that egresses
# through sealgate. Asks the metadata responder for a session token, installs the
# interception CA and writes the environment (proxy, CA variables, credential handles)
# to a profile script that login shells source. See docs/guest-setup.md.
#
# Environment (all optional):
#   SEALGATE_METADATA   responder base URL           (default http://169.254.169.254)
#   SEALGATE_CA_PATH    where the CA PEM is written  (default /etc/sealgate/ca.pem)
#   SEALGATE_PROFILE    where the env is written     (default /etc/profile.d/sealgate.sh)
#   SEALGATE_SYSTEM_CA  1: also add the CA to the system store when
#                       update-ca-certificates exists; 0: do not (default 1)
#   SEALGATE_TOKEN_TTL  session token lifetime, seconds, 1..21600 (default 21600)
#   SEALGATE_TIMEOUT    seconds per request (default 5)
# Exit status: 0 done, 1 failed (the message says which step), 2 usage.
set -eu

md=${SEALGATE_METADATA:-http://169.254.169.254}
md=${md%/}
ca_path=${SEALGATE_CA_PATH:-/etc/sealgate/ca.pem}
profile=${SEALGATE_PROFILE:-/etc/profile.d/sealgate.sh}
system_ca=${SEALGATE_SYSTEM_CA:-1}
ttl=${SEALGATE_TOKEN_TTL:-21600}
timeout=${SEALGATE_TIMEOUT:-5}
system_store=/usr/local/share/ca-certificates
tmp=

fail() {
	echo "sealgate-guest-init: $*" >&2
	exit 1
}

cleanup() {
	[ -n "$tmp" ] && rm -rf "$tmp"
}

# md_curl OUT -X METHOD PATH [curl args...]: the responder, never through a proxy.
md_curl() {
	out=$1
	shift
	curl -sS --noproxy '*' --max-time "$timeout" -o "$out" -w '%{http_code}' "$@"
}

# check STEP CODE OUT: fail with the responder's message unless CODE is 200.
check() {
	if [ "$2" != 200 ]; then
		msg=$(head -c 300 "$3" 2>/dev/null || true)
		fail "$1: HTTP $2 from $md ${msg:+($msg)}"
	fi
}

case $ttl in
'' | *[!0-9]*) echo "sealgate-guest-init: SEALGATE_TOKEN_TTL must be 1..21600" >&2; exit 2 ;;
esac
case $ca_path in
/*) ;;
*) echo "sealgate-guest-init: SEALGATE_CA_PATH must be absolute" >&2; exit 2 ;;
esac
case $ca_path in
*[!A-Za-z0-9_./-]*)
	echo "sealgate-guest-init: SEALGATE_CA_PATH may hold only A-Z a-z 0-9 _ . / -" >&2
	exit 2 ;;
esac
command -v curl >/dev/null 2>&1 || fail "curl is required"
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
tmp=$(mktemp -d)

code=$(md_curl "$tmp/token" -X PUT -H "X-Sealgate-Token-TTL: $ttl" "$md/v1/token") ||
	fail "cannot reach the metadata responder at $md"
check "session token" "$code" "$tmp/token"
token=$(cat "$tmp/token")

code=$(md_curl "$tmp/ca.pem" -H "X-Sealgate-Token: $token" "$md/v1/ca.pem") ||
	fail "CA download failed"
check "CA certificate" "$code" "$tmp/ca.pem"
grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp/ca.pem" || fail "CA answer is not a PEM certificate"

code=$(md_curl "$tmp/env" -H "X-Sealgate-Token: $token" "$md/v1/env") ||
	fail "environment download failed"
check "environment" "$code" "$tmp/env"

mkdir -p "$(dirname "$ca_path")" "$(dirname "$profile")"
install -m 0644 "$tmp/ca.pem" "$ca_path" || fail "cannot write $ca_path"
if [ "$ca_path" != /etc/sealgate/ca.pem ]; then
	# the responder names the default path; point the variables at ours instead
	sed "s|='/etc/sealgate/ca.pem'\$|='$ca_path'|" "$tmp/env" >"$tmp/env.local"
	mv "$tmp/env.local" "$tmp/env"
fi
{
	echo "# written by sealgate-guest-init from $md; rerun it to refresh the handles"
	cat "$tmp/env"
} >"$tmp/profile"
install -m 0644 "$tmp/profile" "$profile" || fail "cannot write $profile"

stored=no
if [ "$system_ca" = 1 ] && command -v update-ca-certificates >/dev/null 2>&1 &&
	[ -d "$(dirname "$system_store")" ]; then
	mkdir -p "$system_store"
	install -m 0644 "$tmp/ca.pem" "$system_store/sealgate.crt" &&
		update-ca-certificates >/dev/null 2>&1 && stored=yes
fi

handles=$(grep -c "^export [A-Za-z_][A-Za-z0-9_]*='sgh1\." "$profile" || true)
proxy=$(sed -n "s/^export HTTPS_PROXY='\(.*\)'\$/\1/p" "$profile")
echo "sealgate: ${handles} handle(s), proxy ${proxy:-none}, CA $ca_path (system store: $stored), env $profile"
