#!/usr/bin/python3
"""A local TLS echo upstream for trying sealgate by hand (development only).

Listens on 127.0.0.3:8443 as api.example.test with the certificate made by
scripts/dev-upstream-certs.sh and answers every request with JSON describing what it
received (method, path, headers, body length) - so you can see the real secret arrive
and the handle not.  Usage: scripts/demo-upstream.py [--port N] [--certs DIR]
"""
import argparse
import http.server
import json
import ssl


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        out = json.dumps({"method": self.command, "path": self.path,
                          "headers": dict(self.headers.items()),
                          "body_len": len(body)}, indent=1).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.3")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--certs", default="certs/demo")
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer((a.host, a.port), Echo)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.certs + "/upstream.crt", a.certs + "/upstream.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("demo upstream: https://api.example.test:%d (at %s)" % (a.port, a.host), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
