#!/usr/bin/env python3
"""TLS OAuth 2.0 token endpoint for bench/run.sh's ka16mint (loopback only).

POST /token with grant_type=client_credentials and HTTP Basic client authentication
(client id "bench", the secret in $MINT_SECRET): answers the token in $MINT_TOKEN,
Bearer, expires_in 86400 (sealgate caches it for the whole run). Anything else: 400
invalid_client / invalid_request. Each answer appends one line to COUNT_LOG ("ok" or
"refused"), so run.sh can report how many mints a run took (one expected).

usage: mint_standin.py ADDR PORT CERT KEY COUNT_LOG
"""
import base64
import http.server
import json
import os
import ssl
import sys
import urllib.parse

ADDR, PORT, CERT, KEY, COUNT_LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], \
    sys.argv[5]
SECRET, TOKEN = os.environ["MINT_SECRET"], os.environ["MINT_TOKEN"]
if not ADDR.startswith("127."):
    sys.exit("mint_standin: loopback only")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _answer(self, status, body, what):
        out = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(out)
        with open(COUNT_LOG, "a") as f:
            f.write(what + "\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0") or "0")
        form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode("latin-1")))
        want = "Basic " + base64.b64encode(b"bench:" + SECRET.encode()).decode()
        if self.path != "/token" or form.get("grant_type") != "client_credentials":
            return self._answer(400, {"error": "invalid_request"}, "refused")
        if self.headers.get("Authorization") != want:
            return self._answer(401, {"error": "invalid_client"}, "refused")
        self._answer(200, {"access_token": TOKEN, "token_type": "Bearer",
                           "expires_in": 86400}, "ok")


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv = http.server.ThreadingHTTPServer((ADDR, PORT), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
