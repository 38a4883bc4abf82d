#!/bin/sh
# Create the demo upstream's PKI in certs/demo/ (once): a CA that sealgate trusts for
# upstreams (policies/example.json: upstream.ca_file) and a leaf for api.example.test.
# Development only; production upstreams are verified against the system store.
set -eu
dir=${1:-certs/demo}
[ -f "$dir/upstream.crt" ] && [ -f "$dir/upstream-ca.crt" ] && exit 0
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
	-keyout "$dir/upstream-ca.key" -out "$dir/upstream-ca.crt" \
	-subj "/O=sealgate demo/CN=demo upstream CA" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$dir/upstream.key" -out "$dir/upstream.csr" -subj "/CN=api.example.test" 2>/dev/null
printf 'subjectAltName=DNS:api.example.test,IP:127.0.0.3\nextendedKeyUsage=serverAuth\n' \
	>"$dir/upstream.ext"
openssl x509 -req -in "$dir/upstream.csr" -CA "$dir/upstream-ca.crt" \
	-CAkey "$dir/upstream-ca.key" -CAcreateserial -days 825 \
	-extfile "$dir/upstream.ext" -out "$dir/upstream.crt" 2>/dev/null
rm -f "$dir/upstream.csr" "$dir/upstream.ext"
chmod 644 "$dir/upstream-ca.crt" "$dir/upstream.crt"
echo "created demo upstream PKI in $dir"
