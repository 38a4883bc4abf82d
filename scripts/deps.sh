#!/bin/sh
# Install the Debian packages sealgate needs to build, test and fuzz — only those missing.
# Usage: scripts/deps.sh [--check]   (--check: list what is missing, install nothing)
set -eu

PKGS="build-essential pkg-config libssl-dev openssl libevent-dev libsodium-dev
libjansson-dev libcmocka-dev libhttp-parser-dev libpcre2-dev curl python3 python3-nacl python3-jsonschema
ca-certificates iproute2 clang libclang-rt-14-dev cppcheck
zlib1g-dev libbrotli-dev libzstd-dev python3-brotli python3-zstandard python3-websockets
python3-requests python3-botocore python3-boto3 awscli git libhiredis-dev redis-server
python3-oauthlib python3-jwt nftables nodejs"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done

if [ -z "$missing" ]; then
	exit 0
fi
if [ "${1:-}" = "--check" ]; then
	echo "missing:$missing"
	exit 1
fi

echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
