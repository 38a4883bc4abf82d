"""Shared harness for sealgate's end-to-end tests.

Everything runs on loopback with ports picked by the kernel:

  PKI          test certificates made at test time with the openssl CLI (upstream CA,
               leaves, a second untrusted CA)
  EchoUpstream threaded TLS (or plain) HTTP/1.1 server on 127.0.0.3:0 that answers what it
               received as JSON and records every request; /bytes/N, /chunked/N stream
               payloads, /slow/MS answers after a delay, /leak reflects the injected
               secret in a chosen encoded form, content coding and framing (leak_render,
               leak_encode), /ws echoes WebSocket messages and records every frame
  Canary       TCP listeners on 127.0.0.1:0, 127.0.0.2:0 and [::1]:0 that record whether
               anything ever connected
  Sealgate     the daemon under test: policy from a dict, ready file, log kept in a temp
               dir and printed only when a test fails, SIGTERM -> exit 0 checked at cleanup
  clients      curl(), https_connection(), send_raw(), RawConn (exact bytes, own reader)

Waits are conditions with deadlines (ready file, socket events, threading.Event), never
sleeps used as synchronisation.
"""
import atexit
import base64
import copy
import hashlib
import http.server
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

UPSTREAM_ADDR = "127.0.0.3"
SEALGATE_BIN = os.environ.get("SEALGATE_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "sealgate")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Names the test upstreams answer for; all resolve (through the policy) to 127.0.0.3.
TEST_NAMES = ["api.example.test", "other.example.test", "tunnel.example.test",
              "denied.example.test", "deep.example.test",
              "plain.example.test", "untrusted.example.test", "badresp.example.test",
              "blackhole.example.test", "wrongname.example.test"]


def _deadline_left(deadline):
    return max(0.0, deadline - time.monotonic())


# --------------------------------------------------------------------------- payloads

_payload_cache = {}


def payload(n, seed=1):
    """Deterministic pseudo-random bytes: the upstream streams them, the client hashes them."""
    key = (n, seed)
    data = _payload_cache.get(key)
    if data is None:      # keep only the latest (they can be 64 MiB); thread-safe enough
        data = random.Random(seed * 1000003 + n).randbytes(n)
        _payload_cache.clear()
        _payload_cache[key] = data
    return data


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- /leak forms

# Forms the /leak endpoint renders a reflected value in (leak_render). Every one is a
# form LEAKSPEC says sealgate must scrub; the tests decode them with their own code.
LEAK_FORMS = ("raw", "json_slash", "json_ul", "json_uu", "json_umix", "json_doc",
              "pct_lower", "pct_upper", "pct_some", "pct_plus",
              "html_dec", "html_hexl", "html_hexu", "html_named",
              "hex_lower", "hex_upper", "b64", "basic", "jwt", "zeros")
_URL_UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HTML_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
LEAK_JWT_HEADER = b'{"alg":"HS256","typ":"JWT"}'
LEAK_B64_PREFIX = b"xy"       # ?pre=N puts the first N of these before the value
# High bytes make the run's tail use the alphabet-specific characters (+/ or -_), so a
# re-encoding in the wrong alphabet shows.
LEAK_B64_SUFFIX = b"tail\xfb\xff\xfe"


def b64url_nopad(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_u(ch, upper):
    return ("\\u%04X" if upper else "\\u%04x") % ord(ch)


def _leak_core(form, v, q):
    """The value v (str, one char per byte) in form: the text that stands for it."""
    import urllib.parse
    if form in ("raw", "zeros"):
        return v
    if form == "json_slash":        # PHP's json_encode: '/' escaped as '\/'
        return json.dumps(v)[1:-1].replace("/", "\\/")
    if form in ("json_ul", "json_uu"):
        return "".join(_json_u(c, form == "json_uu") for c in v)
    if form == "json_umix":         # even: \\u00xx (hex case alternating), odd: literal
        return "".join(_json_u(c, i % 4 == 2) if i % 2 == 0 else json.dumps(c)[1:-1]
                       for i, c in enumerate(v))
    if form == "json_doc":
        return json.dumps(v)[1:-1]
    if form == "pct_upper":
        return urllib.parse.quote(v, safe="", encoding="latin-1")
    if form == "pct_lower":
        return "".join(p.lower() if p.startswith("%") else p for p in
                       _pct_split(urllib.parse.quote(v, safe="", encoding="latin-1")))
    if form == "pct_some":          # unreserved chars encoded at every third position only
        return "".join(c if c in _URL_UNRESERVED and i % 3 else
                       ("%%%02x" if i % 2 else "%%%02X") % ord(c) for i, c in enumerate(v))
    if form == "pct_plus":          # form encoding: space as '+', '+' as %2B
        return urllib.parse.quote_plus(v, safe="", encoding="latin-1")
    if form == "html_dec":
        return "".join("&#%d;" % ord(c) for c in v)
    if form == "html_hexl":
        return "".join("&#x%04x;" % ord(c) for c in v)
    if form == "html_hexu":
        return "".join("&#X%04X;" % ord(c) for c in v)
    if form == "html_named":
        return "".join(_HTML_NAMED.get(c, c) for c in v)
    raw = v.encode("latin-1")
    if form == "hex_lower":
        return raw.hex()
    if form == "hex_upper":
        return raw.hex().upper()
    if form == "b64":
        data = LEAK_B64_PREFIX[:int(q.get("pre", "0"))] + raw + LEAK_B64_SUFFIX
        enc = (base64.urlsafe_b64encode if q.get("alpha") == "url" else base64.b64encode)
        out = enc(data).decode()
        return out if q.get("pad", "1") == "1" else out.rstrip("=")
    if form == "basic":
        return "Basic " + base64.b64encode(b"user:" + raw).decode()
    if form == "jwt":
        claims = json.dumps({"sub": "u1", "tok": v, "iat": 1700000000},
                            separators=(",", ":")).encode()
        h, p = b64url_nopad(LEAK_JWT_HEADER), b64url_nopad(claims)
        return "%s.%s.%s" % (h, p, b64url_nopad(hashlib.sha256((h + "." + p).encode())
                                                .digest()))
    raise ValueError("unknown /leak form %r" % form)


def _pct_split(text):
    """'a%2Fb' -> ['a', '%2F', 'b'] (escapes as their own pieces)."""
    import re
    return re.findall(r"%[0-9A-Fa-f]{2}|[^%]+", text)


def leak_render(form, value, q=None):
    """(core, body) of the /leak endpoint for a reflected value (bytes): core is the form's
    text for the value (also sent in X-Leak: with ?hdr=1), body the document holding it:
      raw        leak<V>end (repeated ?n= times)       json_*   {"auth":"CORE"}
      json_doc   json.dumps of {"auth","list","note","fill"} (?ascii=0: ensure_ascii False)
      pct_*      q=CORE&end=1                            html_*   <!doctype html><p ...>
      hex_*, b64 hex<CORE>end / b64<CORE>end             basic    {"echo": "Basic ..."}
      jwt        {"token": "h.p.s"} (value in the payload's "tok")
      zeros      ?n= zero bytes (for the decompression bound)"""
    q = q or {}
    v = value.decode("latin-1")
    n = int(q.get("n", "1"))
    core = _leak_core(form, v, q)
    if form == "zeros":
        return "", b"\0" * n
    if form == "raw":
        body = ("leak<%s>end" % core) * n
    elif form == "json_doc":
        fill = payload(int(q.get("fill", "0")), seed=7).hex()[:int(q.get("fill", "0"))]
        doc = {"auth": v, "list": [v] * n + [{"deep": v}], "note": "caf\u00e9 \u2603",
               "fill": fill}
        return core, json.dumps(doc, ensure_ascii=q.get("ascii", "1") == "1").encode()
    elif form.startswith("json_"):
        body = '{"auth":"%s"}' % core
    elif form.startswith("pct_"):
        body = "q=%s&end=1" % core
    elif form.startswith("html_"):
        body = '<!doctype html><p title="%s">%s</p>' % (core, core)
    elif form.startswith("hex_"):
        body = "hex<%s>end" % core
    elif form == "b64":
        body = "b64<%s>end" % core
    elif form == "basic":
        body = json.dumps({"echo": core})
    else:
        body = json.dumps({"token": core})
    return core, body.encode("latin-1")


def leak_encode(data, enc):
    """(Content-Encoding value or None, bytes) of data in a content coding, the codings of
    a stack applied in the listed order ("gzip,br": gzip first). enc: none (no header),
    identity, gzip, x-gzip, deflate (zlib), deflate-raw (sent as "deflate"), br, zstd,
    compress / x-foo (not decodable: marker bytes + data), gzip-corrupt (valid gzip head,
    the last quarter of the stream flipped)."""
    if enc in ("none", ""):
        return None, data
    if enc in ("compress", "x-foo"):
        return enc, b"\x1f\x9d\x90" + data
    if enc == "gzip-corrupt":
        g = gzip_compress(data)
        cut = len(g) * 3 // 4
        return "gzip", g[:cut] + bytes(b ^ 0x55 for b in g[cut:])
    names = []
    for c in (x.strip() for x in enc.split(",")):
        if c in ("gzip", "x-gzip"):
            data = gzip_compress(data)
        elif c == "deflate":
            data = zlib.compress(data, 9)
        elif c == "deflate-raw":
            co = zlib.compressobj(9, zlib.DEFLATED, -15)
            data = co.compress(data) + co.flush()
            c = "deflate"
        elif c == "br":
            import brotli
            data = brotli.compress(data)
        elif c == "zstd":
            import zstandard
            data = zstandard.ZstdCompressor().compress(data)
        elif c != "identity":
            raise ValueError("unknown coding %r" % c)
        names.append(c)
    return ", ".join(names), data


def gzip_compress(data):
    import gzip
    return gzip.compress(data, compresslevel=9, mtime=0)


def leak_query(path):
    """The query of a /leak or /ws target as {name: first value}."""
    import urllib.parse
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query, keep_blank_values=True)
    return {k: v[0] for k, v in q.items()}


def leak_value(headers, q):
    """The reflected value: header ?h= (default Authorization) as bytes; with
    ?part=value only what follows its first space (the token after "Bearer ")."""
    value = (headers.get(q.get("h", "Authorization")) or "").encode("latin-1")
    if q.get("part") == "value":
        value = value.partition(b" ")[2]
    return value


# --------------------------------------------------------------------------- PKI

class PKI:
    """Test PKI made with the openssl CLI in a temp dir (removed at exit).

    upstream CA (EC P-256) with leaves:
      api, other, tunnel (one name each), wildcard (*.example.test), ip (127.0.0.3),
      multi (every TEST_NAME + *.example.test + IP 127.0.0.3: the upstream's default)
    untrusted CA with a leaf for untrusted.example.test.
    Attributes: dir, ca_cert, untrusted_ca_cert, leaf(name) -> (cert, key) paths.
    """
    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = cls()
            atexit.register(shutil.rmtree, cls._instance.dir, True)
        return cls._instance

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sgtest-pki-")
        self._leaves = {}
        self.ca_cert, self.ca_key = self._make_ca("upstream", "sgtest upstream CA")
        self.untrusted_ca_cert, self.untrusted_ca_key = self._make_ca("untrusted",
                                                                      "sgtest untrusted CA")
        up = (self.ca_cert, self.ca_key)
        self._make_leaf("api", up, "api.example.test", ["DNS:api.example.test"])
        self._make_leaf("other", up, "other.example.test", ["DNS:other.example.test"])
        self._make_leaf("tunnel", up, "tunnel.example.test", ["DNS:tunnel.example.test"])
        self._make_leaf("wildcard", up, "*.example.test", ["DNS:*.example.test"])
        self._make_leaf("ip", up, UPSTREAM_ADDR, ["IP:" + UPSTREAM_ADDR])
        self._make_leaf("multi", up, "api.example.test",
                        ["DNS:" + n for n in TEST_NAMES if n != "wrongname.example.test"]
                        + ["DNS:*.example.test", "IP:" + UPSTREAM_ADDR])
        self._make_leaf("untrusted", (self.untrusted_ca_cert, self.untrusted_ca_key),
                        "untrusted.example.test", ["DNS:untrusted.example.test"])
        self.ca_subject_cn = "sgtest upstream CA"
        self.untrusted_ca_subject_cn = "sgtest untrusted CA"

    def _openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), cwd=self.dir, capture_output=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (" ".join(args),
                                                          r.stderr.decode(errors="replace")))

    def _make_ca(self, name, cn):
        key = os.path.join(self.dir, name + "-ca.key")
        crt = os.path.join(self.dir, name + "-ca.crt")
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", key)
        self._openssl("req", "-x509", "-new", "-key", key, "-subj", "/CN=" + cn,
                      "-days", "3", "-sha256", "-out", crt,
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                      "-addext", "subjectKeyIdentifier=hash")
        return crt, key

    def _make_leaf(self, name, ca, cn, sans):
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid\n"
                    "subjectAltName=" + ",".join(sans) + "\n")
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", key)
        self._openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr)
        self._openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                      "-set_serial", str(random.getrandbits(63)), "-days", "2", "-sha256",
                      "-extfile", ext, "-out", crt)
        self._leaves[name] = (crt, key)

    def leaf(self, name):
        return self._leaves[name]

    def ensure_leaf(self, name, cn, sans):
        """A leaf signed by the upstream CA, made once per name (later calls return the
        first one's paths whatever cn/sans they give): (cert, key) paths. For test servers
        that answer for their own names (sans: "DNS:..." / "IP:..." entries)."""
        if name not in self._leaves:
            self._make_leaf(name, (self.ca_cert, self.ca_key), cn, sans)
        return self._leaves[name]

    def server_context(self, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self.leaf(name))
        return ctx


# --------------------------------------------------------------------------- echo upstream

class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sgtest-echo/1"
    timeout = 30    # idle keep-alive connection

    def log_message(self, fmt, *args):    # quiet
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def setup(self):
        super().setup()
        self.conn_id = self.server.next_conn_id()

    # -- request body
    def _read_body(self):
        h = hashlib.sha256()
        kept = bytearray()
        total = 0

        def take(data):
            nonlocal total
            h.update(data)
            total += len(data)
            if len(kept) < 65536:
                kept.extend(data[:65536 - len(kept)])

        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:   # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 65536))
                    if not data:
                        raise ConnectionError("eof in chunk")
                    take(data)
                    left -= len(data)
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0") or "0")
            while left:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    raise ConnectionError("eof in body")
                take(data)
                left -= len(data)
        return total, h.hexdigest(), bytes(kept)

    def _dispatch(self):
        path = self.path
        hdrs = [[k, v] for k, v in self.headers.items()]
        with self.server.lock:
            self.server.heads.append(path)
            self.server.arrived.notify_all()
        if (path.split("?", 1)[0] == "/ws"
                and self.headers.get("Upgrade", "").lower() == "websocket"):
            self.server.record({"method": self.command, "path": path, "headers": hdrs,
                                "body_len": 0, "body_sha256": sha256(b""),
                                "conn_id": self.conn_id, "sni": self._sni()})
            return self._websocket()
        body_len, body_hash, body = self._read_body()
        info = {"method": self.command, "path": path, "headers": hdrs,
                "body_len": body_len, "body_sha256": body_hash,
                "body": body.decode("latin-1"), "conn_id": self.conn_id,
                "sni": self._sni()}
        self.server.record(info)
        head = self.command == "HEAD"
        if path.startswith("/bytes/"):
            return self._send_bytes(int(path[7:].split("?")[0]), head)
        if path.startswith("/chunked/"):
            return self._send_chunked(int(path[9:].split("?")[0]), head)
        if path.startswith("/slow/"):
            return self._send_slow(path, head)
        if path.startswith("/leak"):
            return self._leak(path, head)
        extra = {}
        status = 200
        if path.startswith(("/reflect-split", "/reflect-cl", "/reflect-status/")):
            return self._reflect(path, head)
        if path.startswith("/reflect-auth"):
            extra["X-Echo-Auth"] = self.headers.get("Authorization", "")
            info = dict(info, authorization=self.headers.get("Authorization"))
        elif self.headers.get("Authorization") in self.server.refused_auth:
            status = 401            # revoked at the upstream (EchoUpstream.revoke_auth)
        elif path.startswith("/status/"):
            status = int(path[8:].split("?")[0])
            if status in (204, 304) or status < 200:
                self.send_response(status)
                self.send_header("X-Echo-Status", str(status))
                self.end_headers()
                return
        out = json.dumps(info).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(out)

    def _sni(self):
        return getattr(self.connection, "sg_sni", None)

    def _reflect(self, path, head):
        """Reflect a received header (?h=NAME, default Authorization) back:
        /reflect-cl       body b"auth<VALUE>end" (repeated ?n= times) with Content-Length
        /reflect-split    the same body chunked, written in 3-byte pieces (?step=) with a
                          flush after each, so a secret in it is split across writes
        /reflect-status/N status N (204, 304) with X-Echo-Auth: VALUE and no body"""
        import urllib.parse
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        name = q.get("h", ["Authorization"])[0]
        value = (self.headers.get(name) or "").encode("latin-1")
        body = (b"auth<" + value + b">end") * int(q.get("n", ["1"])[0])
        if path.startswith("/reflect-status/"):
            self.send_response(int(path[16:].split("?")[0]))
            self.send_header("X-Echo-Auth", value.decode("latin-1"))
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Echo-Auth", value.decode("latin-1"))
        if path.startswith("/reflect-cl"):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if head:
            return
        step = int(q.get("step", ["3"])[0])
        for off in range(0, len(body), step):
            piece = body[off:off + step]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _leak(self, path, head):
        """/leak?form=F&enc=E&frame=FR: the received Authorization (or ?h=) value, in form
        F (leak_render; ?part=value: only the token), content coding E (leak_encode) and
        framing FR: cl (Content-Length, default), chunked (?step= byte pieces, each
        flushed: one TLS record each), close (no length, Connection: close).
        Always a strong ETag (?etag=weak|none) and Content-MD5, Digest, Content-Digest,
        Repr-Digest (?digest=0: none). ?hdr=1: X-Leak: CORE. ?reason=1: reason "OK CORE".
        ?st=304 / ?st=206: that status whatever was asked (206 with the whole body);
        otherwise a Range: bytes=A-B header is honoured (206, on the encoded bytes).
        ?interim=103: an Early Hints answer first (Link and X-Hint-Pct carry the value).
        ?trailer=1: chunked with trailers X-Leak-Trailer (raw), X-Leak-Trailer-B64 and an
        undeclared Content-Length (a framing field that must not be relayed)."""
        q = leak_query(path)
        value = leak_value(self.headers, q)
        form = q.get("form", "raw")
        core, body = leak_render(form, value, q)
        ce, data = leak_encode(body, q.get("enc", "none"))
        status, data, crange = self._leak_status(q, data)
        if "interim" in q:
            self._leak_interim(int(q["interim"]), value)
        self.send_response(status, ("OK " + core) if q.get("reason") == "1" else None)
        self.send_header("Content-Type", "application/json" if form.startswith("json")
                         or form in ("basic", "jwt") else
                         "text/html" if form.startswith("html") else "text/plain")
        if ce:
            self.send_header("Content-Encoding", ce)
        self._leak_validators(q, body, data)
        if q.get("hdr") == "1":
            self.send_header("X-Leak", core)
        if crange:
            self.send_header("Content-Range", crange)
        if status == 304:
            self.end_headers()
            return
        self._leak_body(q, data, head, value)

    def _leak_status(self, q, data):
        """(status, body bytes, Content-Range or None)."""
        import re
        status = int(q.get("st", "200"))
        if status == 206:
            return 206, data, "bytes 0-%d/%d" % (len(data) - 1, len(data))
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", (self.headers.get("Range") or "").strip())
        if status == 200 and m and int(m.group(1)) < len(data):
            a = int(m.group(1))
            b = min(int(m.group(2) or len(data) - 1), len(data) - 1)
            return 206, data[a:b + 1], "bytes %d-%d/%d" % (a, b, len(data))
        return status, data, None

    def _leak_validators(self, q, body, data):
        tag = '"leak-%s"' % hashlib.sha256(data).hexdigest()[:16]
        if q.get("etag", "strong") != "none":
            self.send_header("ETag", ("W/" if q.get("etag") == "weak" else "") + tag)
        if q.get("digest", "1") == "1":
            def b64(d):
                return base64.b64encode(d).decode()
            self.send_header("Content-MD5", b64(hashlib.md5(data).digest()))
            self.send_header("Digest", "SHA-256=" + b64(hashlib.sha256(data).digest()))
            self.send_header("Content-Digest",
                             "sha-256=:%s:" % b64(hashlib.sha256(data).digest()))
            self.send_header("Repr-Digest", "sha-256=:%s:" % b64(hashlib.sha256(body).digest()))

    def _leak_interim(self, code, value):
        import urllib.parse
        v = value.decode("latin-1")
        self.send_response_only(code)
        self.send_header("Link", "<https://cdn.example.test/a.css?t=%s>; rel=preload" % v)
        self.send_header("X-Hint-Pct", urllib.parse.quote(v, safe="", encoding="latin-1"))
        self.send_header("Keep-Alive", "timeout=5")
        self.end_headers()
        self.wfile.flush()

    def _leak_body(self, q, data, head, value):
        frame = "chunked" if q.get("trailer") == "1" else q.get("frame", "cl")
        step = max(1, int(q.get("step", "5")))
        if frame == "cl":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
            return
        if frame == "close":
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for off in range(0, 0 if head else len(data), step):
                self.wfile.write(data[off:off + step])
                self.wfile.flush()
            self._tls_close_notify()
            return
        self.send_header("Transfer-Encoding", "chunked")
        if q.get("trailer") == "1":
            self.send_header("Trailer", "X-Leak-Trailer, X-Leak-Trailer-B64")
        self.end_headers()
        if head:
            return
        for off in range(0, len(data), step):
            piece = data[off:off + step]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        tail = b"0\r\n"
        if q.get("trailer") == "1":
            tail += (b"X-Leak-Trailer: %s\r\nX-Leak-Trailer-B64: %s\r\nContent-Length: 12\r\n"
                     % (value, base64.b64encode(value)))
        self.wfile.write(tail + b"\r\n")
        self.wfile.flush()

    def _tls_close_notify(self):
        """End a close-delimited body cleanly: TLS close_notify (a bare TCP close reads as
        truncation, and a careful proxy cuts the response)."""
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.settimeout(5)
                self.connection.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass

    def _send_bytes(self, n, head):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if head:
            return
        data = payload(n)
        for off in range(0, n, 65536):
            self.wfile.write(data[off:off + 65536])
        self.wfile.flush()
        self.server.mark_done(self.path)

    def _send_slow(self, path, head):
        """/slow/MS[?n=N&split=1]: answer after MS milliseconds (ended early when the
        upstream stops). Body: payload(N) when n is given, else the request's JSON record.
        split=1 sends the head and the first half of the body at once, the rest after MS
        (a response already started when the delay runs)."""
        import urllib.parse
        u = urllib.parse.urlsplit(path)
        q = urllib.parse.parse_qs(u.query)
        ms = int(u.path[6:].strip("/") or "0")
        if "n" in q:
            body = payload(int(q["n"][0]))
        else:
            body = json.dumps({"method": self.command, "path": path,
                               "conn_id": self.conn_id}).encode()
        split = q.get("split", ["0"])[0] == "1"
        if not split:
            self.server.stopping.wait(ms / 1000.0)    # the delay under test, not a sync
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        half = len(body) // 2 if split else 0
        if split:
            self.wfile.write(body[:half])
            self.wfile.flush()
            self.server.stopping.wait(ms / 1000.0)
        self.wfile.write(body[half:])
        self.wfile.flush()
        self.server.mark_done(path)

    def _send_chunked(self, n, head):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if head:
            return
        data = payload(n)
        off = 0
        step = 1
        while off < n:     # chunk sizes 1, 8, 64, ... up to 64 KiB, each flushed
            chunk = data[off:off + step]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            off += len(chunk)
            step = min(step * 8, 65536)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _websocket(self):
        """RFC 6455 echo after a 101 (no extension; ?ext=1: the 101 names
        permessage-deflate anyway). Every frame received is recorded (server.frames: event
        "frame" with opcode, fin, masked, payload; "message" per reassembled data message;
        "close"; "eof" when the connection ends), so a test can see what reached the
        upstream and use the end as a barrier. A text message "reflect" is answered by
        ws_reflect_messages of the upgrade's Authorization (?h=) value, each frame written
        in 3-byte flushed pieces (one TLS record each), fragmented ones with a ping between
        fragments; any other data message is echoed as one frame."""
        q = leak_query(self.path)
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        if q.get("ext") == "1":
            self.send_header("Sec-WebSocket-Extensions", "permessage-deflate")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        value = (self.headers.get(q.get("h", "Authorization")) or "").encode("latin-1")
        try:
            self._ws_loop(value)
        finally:
            self._ws_note("eof")

    def _ws_loop(self, value):
        msg_op, msg = None, bytearray()
        while True:
            try:
                frame = ws_read_frame_ex(self.rfile, WS_ECHO_MAX_FRAME)
            except ValueError as e:        # a frame too large to hold: stop here
                self._ws_note("oversized", data=str(e).encode())
                return
            if frame is None:
                return
            fin, opcode, masked, data = frame
            self._ws_note("frame", opcode, fin, masked, data)
            if opcode == 0x8:     # close: answer and stop
                self._ws_note("close", opcode, fin, masked, data)
                self.wfile.write(ws_frame(0x8, data[:2], mask=False))
                self.wfile.flush()
                return
            if opcode == 0x9:     # ping
                self.wfile.write(ws_frame(0xA, data, mask=False))
            elif opcode in (0x0, 0x1, 0x2):
                if opcode:
                    msg_op, msg = opcode, bytearray()
                msg += data
                if fin and msg_op is not None:
                    self._ws_note("message", msg_op, True, masked, bytes(msg))
                    self._ws_message(msg_op, bytes(msg), value)
                    msg_op = None
            self.wfile.flush()

    def _ws_note(self, event, opcode=None, fin=None, masked=None, data=b""):
        self.server.record_frame({"event": event, "conn_id": self.conn_id,
                                  "path": self.path, "opcode": opcode, "fin": fin,
                                  "masked": masked, "data": data.decode("latin-1")})

    def _ws_message(self, opcode, data, value):
        if not (opcode == 0x1 and data == b"reflect"):
            self.wfile.write(ws_frame(opcode, data, mask=False))
            return
        for fin, op, piece in ws_reflect_frames(value):
            out = ws_frame(op, piece, mask=False, fin=fin)
            for off in range(0, len(out), 3):
                self.wfile.write(out[off:off + 3])
                self.wfile.flush()


# Largest frame the echo reads (bigger: it records "oversized" and closes).
WS_ECHO_MAX_FRAME = 64 << 20


def ws_reflect_messages(value):
    """The messages /ws answers "reflect" with, for the upgrade's header value (bytes), as
    (opcode, payload), ending with text "done": raw text, raw binary, JSON with every
    character \\u-escaped, base64 text (1 byte before the value), base64 binary (2 bytes
    before), then a text and a binary message sent in 3 fragments (ws_reflect_frames)."""
    return [(0x1, b"raw:" + value), (0x2, b"bin:" + value),
            (0x1, b"json:" + leak_render("json_ul", value)[1]),
            (0x1, b"b64:" + base64.b64encode(b"x" + value + b"tail")),
            (0x2, b"b64bin:" + base64.b64encode(b"xy" + value + b"tail")),
            (0x1, b"frag:" + value), (0x2, b"fragbin:" + value), (0x1, b"done")]


def ws_reflect_frames(value):
    """(fin, opcode, payload) frames of ws_reflect_messages: the frag messages cut in 3 at
    a third and two thirds of their length (inside the value), a ping after the first
    fragment of the text one and after the second of the binary one."""
    out = []
    for opcode, msg in ws_reflect_messages(value):
        if not msg.startswith((b"frag:", b"fragbin:")):
            out.append((True, opcode, msg))
            continue
        a, b = len(msg) // 3, 2 * len(msg) // 3
        parts = [(False, opcode, msg[:a]), (False, 0x0, msg[a:b]), (True, 0x0, msg[b:])]
        parts.insert(1 if opcode == 0x1 else 2, (True, 0x9, b"p"))
        out += parts
    return out


def ws_frame(opcode, data, mask=True, fin=True):
    """One WebSocket frame (RFC 6455 5.2), final unless fin=False; clients mask, servers
    do not."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(data)
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mbit | 127)
        head += n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        head += key
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return bytes(head) + data


def ws_read_message(rfile):
    """(opcode, payload) of the next message, its continuation frames joined (sealgate may
    re-fragment a large frame); control frames in between are skipped. None at EOF."""
    first = ws_read_frame_fin(rfile)
    if first is None:
        return None
    opcode, data, fin = first
    while not fin:
        nxt = ws_read_frame_fin(rfile)
        if nxt is None:
            return None
        if nxt[0] >= 0x8:
            continue
        data += nxt[1]
        fin = nxt[2]
    return opcode, data


def ws_read_frame_fin(rfile):
    """(opcode, payload, fin) of the next frame, or None at EOF."""
    h = rfile.read(1)
    if len(h) < 1:
        return None
    frame = ws_read_frame(_Prepend(h, rfile))
    return None if frame is None else (frame[0], frame[1], bool(h[0] & 0x80))


class _Prepend:
    def __init__(self, head, rfile):
        self.head, self.rfile = head, rfile

    def read(self, n):
        out, self.head = self.head[:n], self.head[n:]
        return out + (self.rfile.read(n - len(out)) if n > len(out) else b"")


def ws_read_frame(rfile):
    """(opcode, payload) of the next frame from a file-like object, or None at EOF."""
    frame = ws_read_frame_ex(rfile)
    return None if frame is None else (frame[1], frame[3])


def ws_read_frame_ex(rfile, max_len=None):
    """(fin, opcode, masked, payload) of the next frame, or None at EOF. ValueError when
    the header announces more than max_len bytes (nothing more is read)."""
    h = rfile.read(2)
    if len(h) < 2:
        return None
    fin = bool(h[0] & 0x80)
    opcode = h[0] & 0x0F
    masked = bool(h[1] & 0x80)
    n = h[1] & 0x7F
    if n == 126:
        n = int.from_bytes(rfile.read(2), "big")
    elif n == 127:
        n = int.from_bytes(rfile.read(8), "big")
    if max_len is not None and n > max_len:
        raise ValueError("frame of %d bytes announced" % n)
    key = rfile.read(4) if masked else None
    data = rfile.read(n)
    if len(data) < n:
        return None
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return fin, opcode, masked, data


class _EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = False

    def __init__(self, addr, ssl_ctx):
        self.ssl_ctx = ssl_ctx
        self.lock = threading.Lock()
        self.requests = []
        self.done_paths = []
        self.frames = []          # WebSocket frames/events the /ws echo received
        self.refused_auth = set()  # Authorization values answered 401 (revoke_auth)
        self.conns = set()
        self.n_conns = 0
        self.heads = []           # paths whose request head arrived (before any body)
        self.arrived = threading.Condition(self.lock)
        self.stopping = threading.Event()     # set by stop(): ends /slow delays early
        super().__init__(addr, _EchoHandler)

    def next_conn_id(self):
        with self.lock:
            self.n_conns += 1
            return self.n_conns

    def mark_done(self, path):
        """A streamed /bytes/N answer was written whole (handed to the kernel)."""
        with self.lock:
            self.done_paths.append(path)
            self.arrived.notify_all()

    def record(self, info):
        with self.lock:
            self.requests.append(info)
            self.arrived.notify_all()

    def record_frame(self, info):
        with self.lock:
            self.frames.append(info)
            self.arrived.notify_all()

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread, so a silent client blocks no one.
        sock = request
        with self.lock:
            self.conns.add(request)
        try:
            if self.ssl_ctx is not None:
                request.settimeout(10)
                sock = self.ssl_ctx.wrap_socket(request, server_side=True)
                with self.lock:
                    self.conns.add(sock)
                sock.settimeout(None)
            self.RequestHandlerClass(sock, client_address, self)
        except (OSError, ssl.SSLError, ValueError, ConnectionError):
            pass
        finally:
            with self.lock:
                self.conns.discard(sock)
                self.conns.discard(request)
            try:
                sock.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):    # quiet: tests assert on records
        pass

    def close_all(self):
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class EchoUpstream:
    """Threaded HTTP/1.1 echo server on 127.0.0.3:0, TLS unless tls=False.

    port: 0 (kernel-picked) unless a test's own network namespace needs a fixed one.
    cert: a PKI leaf name; None = choose by SNI (api/other/tunnel/wildcard, else 'multi').
    requests (thread-safe snapshot), wait_requests(n), frames / wait_frames(pred) (what
    the /ws echo received), port, stop() (also registered as
    cleanup when testcase is given).
    """

    def __init__(self, testcase=None, pki=None, tls=True, cert=None, host=UPSTREAM_ADDR,
                 port=0):
        self.pki = pki or PKI.get()
        ctx = None
        if tls:
            ctx = self.pki.server_context(cert or "multi")
            ctx.set_alpn_protocols(["http/1.1"])
            ctxs = {}
            if cert is None:
                for sni, leaf in (("api.example.test", "api"), ("other.example.test", "other"),
                                  ("tunnel.example.test", "tunnel")):
                    c = self.pki.server_context(leaf)
                    c.set_alpn_protocols(["http/1.1"])
                    ctxs[sni] = c

            def pick(sslobj, server_name, _ctx):
                sslobj.sg_sni = server_name        # recorded per request as "sni"
                if server_name in ctxs:
                    sslobj.context = ctxs[server_name]
            ctx.sni_callback = pick
        self.server = _EchoServer((host, port), ctx)
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        self._stopped = False
        if testcase is not None:
            testcase.addCleanup(self.stop)

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def wait_head(self, fragment, timeout=10):
        """Until the head of a request whose path contains fragment has arrived (its body
        may still be on the way); raises on timeout."""
        deadline = time.monotonic() + timeout
        with self.server.lock:
            while not any(fragment in p for p in self.server.heads):
                if _deadline_left(deadline) <= 0:
                    raise AssertionError("no request head with %r arrived" % fragment)
                self.server.arrived.wait(_deadline_left(deadline))

    def revoke_auth(self, value):
        """From now on, any request whose Authorization is exactly value gets 401 (a
        token the issuer rotated out while a client still holds it)."""
        with self.server.lock:
            self.server.refused_auth.add(value)

    @property
    def frames(self):
        """WebSocket events the /ws echo recorded (dicts: event frame/message/close/eof/
        oversized, conn_id, path of the upgrade, opcode, fin, masked, data latin-1)."""
        with self.server.lock:
            return list(self.server.frames)

    def wait_frames(self, pred, timeout=10):
        """The recorded WebSocket events for which pred is true, once there is one (an
        empty list when none came within timeout)."""
        deadline = time.monotonic() + timeout
        with self.server.arrived:
            while True:
                hits = [f for f in self.server.frames if pred(f)]
                if hits or _deadline_left(deadline) <= 0:
                    return hits
                self.server.arrived.wait(_deadline_left(deadline))

    @property
    def connections(self):
        with self.server.lock:
            return self.server.n_conns

    def wait_requests(self, n, timeout=10):
        """Wait until at least n requests were recorded; returns the list."""
        deadline = time.monotonic() + timeout
        with self.server.arrived:
            while len(self.server.requests) < n and _deadline_left(deadline) > 0:
                self.server.arrived.wait(_deadline_left(deadline))
            return list(self.server.requests)

    def wait_written(self, path, timeout):
        """True when the /bytes/N answer for path was written whole within timeout."""
        deadline = time.monotonic() + timeout
        with self.server.arrived:
            while path not in self.server.done_paths and _deadline_left(deadline) > 0:
                self.server.arrived.wait(_deadline_left(deadline))
            return path in self.server.done_paths

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        self.server.stopping.set()
        self.server.shutdown()
        self.server.close_all()
        self.server.server_close()
        self._thread.join(5)


class SilentUpstream:
    """Accepts TCP on 127.0.0.3:0 and never answers (a TLS black hole). Records accepts."""

    def __init__(self, testcase=None, host=UPSTREAM_ADDR):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.conns = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        if testcase is not None:
            testcase.addCleanup(self.stop)

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.accepted.set()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)
        for c in self.conns:
            c.close()


class ScriptedTLSUpstream:
    """Raw TLS server on 127.0.0.3:0: reads one request head, writes `response` verbatim,
    closes. For response-side framing tests."""

    def __init__(self, testcase, response, pki=None, cert="multi", host=UPSTREAM_ADDR):
        self.pki = pki or PKI.get()
        self.ctx = self.pki.server_context(cert)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.response = response
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        testcase.addCleanup(self.stop)

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(10)
            s = self.ctx.wrap_socket(c, server_side=True)
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            self.heads.append(buf)
            s.sendall(self.response)
            try:
                s.unwrap()
            except (OSError, ssl.SSLError, ValueError):
                pass
            s.close()
        except (OSError, ssl.SSLError, ValueError):
            c.close()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


# --------------------------------------------------------------------------- canary

class Canary:
    """Plain TCP listeners on 127.0.0.1:0, 127.0.0.2:0 and [::1]:0 that record any connect.

    port (127.0.0.1), port2 (127.0.0.2), port6 (::1); contacted (Event, any listener);
    hits: list of (listener address, peer)."""

    def __init__(self, testcase=None):
        self.contacted = threading.Event()
        self.hits = []
        self._lock = threading.Lock()
        self._socks = []
        self._threads = []
        self.port = self._listen(socket.AF_INET, "127.0.0.1")
        self.port2 = self._listen(socket.AF_INET, "127.0.0.2")
        self.port6 = self._listen(socket.AF_INET6, "::1")
        if testcase is not None:
            testcase.addCleanup(self.stop)

    def _listen(self, family, host):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((host, 0))
        s.listen(64)
        self._socks.append(s)
        t = threading.Thread(target=self._accept, args=(s, host), daemon=True)
        t.start()
        self._threads.append(t)
        return s.getsockname()[1]

    def _accept(self, s, host):
        while True:
            try:
                c, peer = s.accept()
            except OSError:
                return
            with self._lock:
                self.hits.append((host, peer))
            self.contacted.set()
            c.close()

    def stop(self):
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(5)


# --------------------------------------------------------------------------- sealgate

def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def base_policy(pki=None, resolve=None):
    """A policy for tests: all listeners on 127.0.0.1:0, keys in the temp dir, upstream
    trust = the test upstream CA, every TEST_NAME resolved to 127.0.0.3 (allowed private),
    egress default allow, intercept all, short timeouts."""
    pki = pki or PKI.get()
    res = {n: UPSTREAM_ADDR for n in TEST_NAMES}
    res.update(resolve or {})
    return {
        "listen": {"proxy": "127.0.0.1:0", "metadata": "127.0.0.1:0", "admin": "127.0.0.1:0"},
        "keys": {"seal_key": "keys/seal.key", "ca_cert": "keys/ca.crt", "ca_key": "keys/ca.key"},
        "admin": {"token": {"file": "keys/admin.token"}},
        "audit": {"path": "audit.log"},
        "upstream": {"ca_file": pki.ca_cert, "resolve": res},
        "egress": {"default": "allow", "allow_hosts": [], "deny_hosts": [],
                   "tunnel_hosts": [], "allow_private": [UPSTREAM_ADDR + "/32"],
                   "intercept": "all"},
        "limits": {"header_timeout": "5s", "idle_timeout": "30s", "connect_timeout": "3s",
                   "tls_timeout": "3s", "upstream_timeout": "15s"},
        "credentials": {},
        "sandboxes": {},
    }


class Sealgate:
    """sealgate serve with a policy dict, in its own temp dir.

    Register with a TestCase (per test: Sealgate(self, ...); per class: in setUpClass with
    Sealgate(cls, ...) -> addClassCleanup). Attributes: dir, policy_path, proxy (host, port),
    proxy_url, metadata, admin, ca_cert, pid. log() -> text. stop() sends SIGTERM and
    asserts exit 0 (in cleanup)."""

    def __init__(self, owner, policy=None, overrides=None, start_timeout=15):
        self.dir = tempfile.mkdtemp(prefix="sgtest-sg-")
        self.policy = deep_merge(policy if policy is not None else base_policy(),
                                 overrides or {})
        self.policy_path = os.path.join(self.dir, "policy.json")
        with open(self.policy_path, "w") as f:
            json.dump(self.policy, f, indent=2)
        os.makedirs(os.path.join(self.dir, "keys"), exist_ok=True)
        os.chmod(os.path.join(self.dir, "keys"), 0o700)
        self.ready_path = os.path.join(self.dir, "ready.json")
        self.log_path = os.path.join(self.dir, "sealgate.log")
        self.ca_cert = os.path.join(self.dir, self.policy["keys"]["ca_cert"])
        self._stashed_log = None
        self._stopped = False
        self.proc = None
        self._owner = owner
        self._ready = False
        _register_instance(owner, self)
        if isinstance(owner, type):
            owner.addClassCleanup(self._cleanup)
        else:
            owner.addCleanup(self._cleanup)
        self._start(start_timeout)

    def _start(self, timeout):
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [SEALGATE_BIN, "serve", "--policy", self.policy_path, "--ready-file",
             self.ready_path, "--log-level", "debug"],
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            cwd=self.dir, env=env)
        deadline = time.monotonic() + timeout
        info = None
        while info is None:
            if os.path.exists(self.ready_path):
                try:
                    with open(self.ready_path) as f:
                        info = json.load(f)
                    break
                except (OSError, ValueError):
                    info = None     # written atomically, but be tolerant
            if self.proc.poll() is not None:
                raise AssertionError("sealgate exited with %s before ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            if _deadline_left(deadline) <= 0:
                raise AssertionError("sealgate not ready after %ss:\n%s" % (timeout, self.log()))
            try:    # condition wait: returns early if the process dies
                self.proc.wait(timeout=min(0.05, _deadline_left(deadline)))
            except subprocess.TimeoutExpired:
                pass
        self._ready = True
        self.ready = info
        self.pid = info.get("pid")
        self.proxy = _split_hostport(info["proxy"])
        self.metadata = _split_hostport(info["metadata"]) if info.get("metadata") else None
        self.admin = _split_hostport(info["admin"]) if info.get("admin") else None
        self.proxy_url = "http://%s:%d" % self.proxy

    def rss_kib(self):
        """Resident set size of the sealgate process (KiB), from /proc."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        if self._stashed_log is not None:
            return self._stashed_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self):
        """SIGTERM and wait; returns the exit code (or raises if it does not exit)."""
        if self._stopped:
            return self.proc.returncode
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError("sealgate did not exit within 15 s of SIGTERM")
        return self.proc.returncode

    def kill9(self):
        """SIGKILL (a crash: no drain, nothing flushed); returns once the process is gone.
        The cleanup then expects no clean exit code."""
        self._killed = True
        self._stopped = True
        self.proc.kill()
        self.proc.wait(timeout=10)

    def _cleanup(self):
        try:
            rc = self.stop()
            if rc != 0 and self._ready and not getattr(self, "_killed", False):
                raise AssertionError("sealgate exited %s after SIGTERM (want 0)" % rc)
        finally:
            self._logf.close()
            self._stashed_log = self.log()
            shutil.rmtree(self.dir, ignore_errors=True)


def _split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def _register_instance(owner, sg):
    if isinstance(owner, type):
        lst = owner.__dict__.get("_sg_class_instances")
        if lst is None:
            lst = []
            owner._sg_class_instances = lst
    else:
        lst = owner.__dict__.setdefault("_sg_instances", [])
    lst.append(sg)


LOG_TAIL_LINES = 300


class TestCase(unittest.TestCase):
    """Base class: prints the sealgate logs (tail) of a test that failed."""

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            insts = list(self.__dict__.get("_sg_instances", []))
            insts += list(type(self).__dict__.get("_sg_class_instances", []))
            for sg in insts:
                lines = sg.log().splitlines()
                sys.stdout.write("----- sealgate log (%s, last %d of %d lines) -----\n"
                                 % (self.id(), min(len(lines), LOG_TAIL_LINES), len(lines)))
                sys.stdout.write("\n".join(lines[-LOG_TAIL_LINES:]) + "\n")
                sys.stdout.write("----- end of sealgate log -----\n")
        return out


# --------------------------------------------------------------------------- clients

def curl(sg, *args, timeout=20, cacert=None, proxy=True):
    """Run curl through sealgate's proxy; returns (rc, stdout bytes, stderr text)."""
    cmd = ["curl", "-sS", "-m", str(timeout)]
    if proxy:
        cmd += ["--proxy", sg.proxy_url]
    cmd += ["--cacert", cacert or sg.ca_cert]
    cmd += list(args)
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    r = subprocess.run(cmd, capture_output=True, timeout=timeout + 10, env=env,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def client_context(cafile, check_hostname=True):
    ctx = ssl.create_default_context(cafile=cafile)   # only this CA, no system store
    ctx.check_hostname = check_hostname
    ctx.set_alpn_protocols(["http/1.1"])
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


def https_connection(sg, host, port, cafile=None, timeout=20):
    """http.client.HTTPSConnection to host:port through sealgate (CONNECT), trusting only
    the sealgate CA (or cafile)."""
    import http.client
    conn = http.client.HTTPSConnection(sg.proxy[0], sg.proxy[1], timeout=timeout,
                                       context=client_context(cafile or sg.ca_cert))
    conn.set_tunnel(host, port)
    return conn


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.body = body
        self.raw_head = raw_head
        self.interim = []               # 1xx Responses read before this one (RawConn)
        self.trailers = []              # chunked trailer fields (name, value)
        self.raw_body = None            # body bytes as on the wire (chunked framing kept)

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def trailer(self, name, default=None):
        for k, v in self.trailers:
            if k.lower() == name.lower():
                return v
        return default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r body=%r>" % (self.status, self.reason, self.body[:200])


class RawConn:
    """A client connection to sealgate's proxy with exact bytes on the wire.

    connect(authority): CONNECT first (returns the CONNECT Response); tls(sni): handshake
    inside; send(bytes); read_response(method) parses one response (own reader, so
    pipelined responses are not lost); read_all() reads to EOF or timeout."""

    def __init__(self, sg, timeout=10, source=None):
        self.sg = sg
        self.timeout = timeout
        # source: bind the client socket to this address (another "sandbox": 127.0.0.2)
        self.sock = socket.create_connection(
            sg.proxy, timeout=timeout, source_address=(source, 0) if source else None)
        self.buf = b""
        self.eof = False
        self.tls_sock = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            return False
        left = _deadline_left(deadline)
        if left <= 0:
            raise socket.timeout("timed out waiting for data")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except ssl.SSLEOFError:
            d = b""
        except ssl.SSLError as e:
            if "EOF" in str(e) or "closed" in str(e).lower():
                d = b""
            else:
                raise
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _readline(self, deadline):
        while b"\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionError("EOF in response head: %r" % self.buf[:200])
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def _readn(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionError("EOF in body (%d of %d)" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        raw = b""
        while True:
            line = self._readline(deadline)
            raw += line
            if line in (b"\r\n", b"\n"):
                break
            if len(raw) > 1 << 20:
                raise ConnectionError("response head too large")
        lines = raw.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for l in lines[1:]:
            if not l:
                continue
            k, _, v = l.decode("latin-1").partition(":")
            headers.append((k, v.strip()))
        return status, reason, headers, raw

    def read_response(self, method="GET", timeout=None, skip_interim=True):
        """One response. Skipped 1xx answers are kept in r.interim (Responses); a chunked
        body's trailer fields in r.trailers ((name, value) list); r.raw_body is the body
        as it was on the wire (chunk framing and trailers included)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        interim = []
        while True:
            status, reason, headers, raw = self.read_head(_deadline_left(deadline) or 0.001)
            if not (skip_interim and 100 <= status < 200 and status != 101):
                break
            interim.append(Response(status, reason, headers, b"", raw))
        r = Response(status, reason, headers, b"", raw)
        r.interim = interim
        te = (r.header("Transfer-Encoding") or "").lower()
        cl = r.header("Content-Length")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return r
        if method == "CONNECT" and 200 <= status < 300:
            return r
        if "chunked" in te:
            self._read_chunked(r, deadline)
        elif cl is not None:
            r.body = self._readn(int(cl), deadline)
        else:
            while self._fill(deadline):
                pass
            r.body, self.buf = self.buf, b""
        if r.raw_body is None:
            r.raw_body = r.body
        return r

    def _read_chunked(self, r, deadline):
        body, wire = [], []
        while True:
            line = self._readline(deadline)
            wire.append(line)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            chunk = self._readn(size, deadline)
            body.append(chunk)
            wire += [chunk, self._readn(2, deadline)]
        while True:
            line = self._readline(deadline)
            wire.append(line)
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode("latin-1").partition(":")
            r.trailers.append((k.strip(), v.strip()))
        r.body, r.raw_body = b"".join(body), b"".join(wire)

    def reader(self, timeout=None):
        """A file-like object with read(n) over this connection's buffer (for ws frames)."""
        conn = self
        deadline = time.monotonic() + (timeout or self.timeout)

        class _R:
            def read(self, n):
                try:
                    return conn._readn(n, deadline)
                except ConnectionError:
                    out, conn.buf = conn.buf, b""
                    return out
        return _R()

    def read_all(self, timeout=None):
        """Everything until EOF; raises socket.timeout if the peer keeps it open."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def wait_closed(self, timeout=None):
        """True when the peer closed (EOF/reset) within timeout, discarding data."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while self._fill(deadline):
                self.buf = b""
        except (socket.timeout, TimeoutError):
            return False
        return True

    def connect(self, authority, extra=b""):
        self.send(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
                  % (authority.encode(), authority.encode(), extra))
        return self.read_response("CONNECT")

    def tls(self, sni, cafile=None, check_hostname=True):
        ctx = client_context(cafile or self.sg.ca_cert, check_hostname=check_hostname)
        if self.buf:
            raise AssertionError("bytes after CONNECT response: %r" % self.buf[:100])
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)
        return self.sock


def direct_conn(port, sni="api.example.test", host=UPSTREAM_ADDR, timeout=10, cafile=None):
    """A RawConn straight to a test upstream (no sealgate): TLS to host:port with sni,
    trusting the test upstream CA. For checking what an upstream really sends."""
    c = RawConn.__new__(RawConn)
    c.sg, c.timeout, c.buf, c.eof, c.tls_sock = None, timeout, b"", False, None
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        c.sock = client_context(cafile or PKI.get().ca_cert).wrap_socket(
            raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise
    return c


def open_intercepted(sg, host, port, sni=None, timeout=10, cafile=None, check_hostname=True,
                     source=None, connect_extra=b""):
    """RawConn after CONNECT host:port (must answer 200) and TLS with sni (default host).
    source: client address to bind; connect_extra: header lines (CRLF-terminated bytes)
    added to the CONNECT, e.g. Proxy-Authorization."""
    c = RawConn(sg, timeout=timeout, source=source)
    try:
        r = c.connect(("%s:%d" % (host, port) if ":" not in host or host.startswith("[")
                       else "[%s]:%d" % (host, port)), extra=connect_extra)
        if r.status != 200:
            raise AssertionError("CONNECT %s:%d -> %s %r" % (host, port, r.status, r.body))
        c.tls(sni if sni is not None else host.strip("[]"), cafile=cafile,
              check_hostname=check_hostname)
    except BaseException:
        c.close()
        raise
    return c


def request_via_connect(sg, authority, request, sni=None, method="GET", timeout=10,
                        cafile=None, check_hostname=True, source=None, connect_extra=b""):
    """CONNECT authority; if refused, that answer is the result (stage 'connect').
    Otherwise TLS (sni defaults to the authority's host) and send request bytes; the
    first response is the result (stage 'inner'). Returns (stage, Response).
    source / connect_extra: as for open_intercepted."""
    with RawConn(sg, timeout=timeout, source=source) as c:
        r = c.connect(authority, extra=connect_extra)
        if r.status != 200:
            return "connect", r
        host = authority.rsplit(":", 1)[0].strip("[]")
        try:
            c.tls(sni if sni is not None else host, cafile=cafile,
                  check_hostname=check_hostname)
        except ssl.SSLError as e:
            raise AssertionError("TLS with sealgate after CONNECT %s failed: %s"
                                 % (authority, e))
        c.send(request)
        return "inner", c.read_response(method)


def send_raw(sg, data, connect=None, sni=None, timeout=5):
    """Open a TCP connection to the proxy, optionally CONNECT + TLS (sni defaults to the
    CONNECT host), send exact bytes, read until EOF or timeout.
    Returns (bytes received, closed: bool)."""
    with RawConn(sg, timeout=timeout) as c:
        if connect:
            r = c.connect(connect)
            if r.status != 200:
                raise AssertionError("CONNECT %s -> %s %r" % (connect, r.status, r.body))
            c.tls(sni or connect.rsplit(":", 1)[0].strip("[]"))
        c.send(data)
        deadline = time.monotonic() + timeout
        closed = True
        try:
            while c._fill(deadline):
                pass
        except (socket.timeout, TimeoutError):
            closed = False
        return c.buf, closed


def parse_responses(data, methods=None):
    """Split bytes into Responses (for pipelining / raw checks)."""
    out = []
    fake = RawConn.__new__(RawConn)
    fake.buf = data
    fake.eof = True
    fake.sock = None
    fake.timeout = 1
    i = 0
    while fake.buf:
        m = (methods[i] if methods and i < len(methods) else "GET")
        out.append(fake.read_response(m))
        i += 1
    return out


def assert_error(tc, resp, status, code):
    """resp is sealgate's error answer: status, X-Sealgate-Error and JSON error == code,
    a non-empty message."""
    tc.assertIsNotNone(resp)
    tc.assertEqual(resp.status, status, resp)
    tc.assertEqual(resp.header("X-Sealgate-Error"), code, resp)
    try:
        j = resp.json()
    except ValueError:
        tc.fail("error body is not JSON: %r" % resp.body[:200])
    tc.assertEqual(j.get("error"), code, j)
    tc.assertIsInstance(j.get("message"), str, j)
    tc.assertTrue(j["message"], j)
    return j


def decode_cert(path):
    """A PEM certificate file as the dict getpeercert() returns (subject, issuer, ...)."""
    return ssl._ssl._test_decode_cert(path)


def error_code(resp):
    """(X-Sealgate-Error header, JSON error field) of an error answer."""
    body_code = None
    try:
        body_code = resp.json().get("error")
    except (ValueError, AttributeError):
        pass
    return resp.header("X-Sealgate-Error"), body_code


# --------------------------------------------------------------------------- handles

def sealgate_cli(*args, timeout=30, input=None):
    """Run the sealgate binary; returns (exit code, stdout, stderr) as text."""
    r = subprocess.run([SEALGATE_BIN] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def mint_handle(policy_path, sandbox, credential, ttl=None):
    """sealgate handle mint --json: {"handle", "handle_id", "expires_at", ...}."""
    args = ["handle", "mint", "--policy", policy_path, "--sandbox", sandbox,
            "--credential", credential, "--json"]
    if ttl:
        args += ["--ttl", ttl]
    rc, out, err = sealgate_cli(*args)
    if rc != 0:
        raise AssertionError("handle mint --sandbox %s --credential %s exited %d: %s"
                             % (sandbox, credential, rc, err.strip()))
    return json.loads(out)


def key_id_of(pub):
    """Key id of an X25519 public key (bytes): BLAKE2b-256, first 4 bytes as hex."""
    return hashlib.blake2b(pub, digest_size=32).hexdigest()[:8]


class KeyPair:
    def __init__(self, key, pub):
        self.key = key          # path of seal.key (0600)
        self.pub = pub          # path of seal.pub
        with open(pub) as f:
            self.pub_bytes = bytes.fromhex(f.read().strip())
        self.key_id = key_id_of(self.pub_bytes)


def keygen(dirpath):
    """sealgate keygen --out dirpath -> KeyPair (the key id is checked against keygen's)."""
    rc, out, err = sealgate_cli("keygen", "--out", dirpath)
    if rc != 0:
        raise AssertionError("keygen exited %d: %s" % (rc, err.strip()))
    kp = KeyPair(os.path.join(dirpath, "seal.key"), os.path.join(dirpath, "seal.pub"))
    if kp.key_id not in out:
        raise AssertionError("keygen did not print key id %s: %r" % (kp.key_id, out))
    return kp


def handle_claims(cred, sandbox, iat=None, exp=None, hid=None, **extra):
    """A handle payload (docs/handles.md) with defaults: issued now, valid one hour."""
    now = int(time.time())
    c = {"v": 1, "cred": cred, "sb": sandbox, "hid": hid or os.urandom(16).hex(),
         "iat": now if iat is None else iat, "exp": now + 3600 if exp is None else exp}
    c.update(extra)
    return c


def seal_handle(pub, claims, key_id=None):
    """Craft an sgh1 handle: crypto_box_seal(compact JSON claims) to pub (path of seal.pub
    or 32 raw bytes), key id of that key unless given. Needs python3-nacl."""
    from nacl.public import PublicKey, SealedBox
    if isinstance(pub, str):
        with open(pub) as f:
            pub = bytes.fromhex(f.read().strip())
    data = json.dumps(claims, separators=(",", ":")).encode()
    sealed = SealedBox(PublicKey(pub)).encrypt(data)
    body = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    return "sgh1.%s.%s" % (key_id or key_id_of(pub), body)


def audit_lines(sg, name="audit.log"):
    """The JSON audit lines sg has written so far: whole lines only (the log is written
    in stdio batches, so a reader may see the last line cut)."""
    try:
        with open(os.path.join(sg.dir, name), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(raw) for raw in data.split(b"\n")[:-1] if raw.strip()]


def wait_for(probe, timeout=10.0, interval=0.05, what="condition"):
    """Call probe() until it returns something truthy (returned) or the deadline passes
    (AssertionError naming what and the last value). A retrying condition wait: probe
    does the real work (e.g. a request), the interval only paces the retries."""
    deadline = time.monotonic() + timeout
    pace = threading.Event()
    last = None
    while True:
        last = probe()
        if last:
            return last
        left = _deadline_left(deadline)
        if left <= 0:
            raise AssertionError("%s not reached within %.1fs (last: %r)"
                                 % (what, timeout, last))
        pace.wait(min(interval, left))


def build_request(method, target, host, headers=(), body=b"", keep_alive=True):
    """Request bytes: Host, the given (name, value) pairs, Content-Length when there is a
    body (or for POST/PUT/PATCH)."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % host]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: %d" % len(body))
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def proxied(sg, host, port, method="GET", target="/", headers=(), body=b"", source=None,
            proxy_auth=None, timeout=10):
    """One request through sealgate: CONNECT host:port (+ Proxy-Authorization: proxy_auth),
    TLS, the request. Returns the Response (the CONNECT's own answer when that was
    refused), with .stage 'connect' or 'inner'."""
    extra = b"" if proxy_auth is None else (b"Proxy-Authorization: %s\r\n"
                                            % proxy_auth.encode("latin-1"))
    authority = "%s:%d" % (host, port)
    stage, r = request_via_connect(
        sg, authority, build_request(method, target, authority, headers, body),
        method=method, timeout=timeout, source=source, connect_extra=extra)
    r.stage = stage
    return r


def redact(data, secrets):
    """Text of data (bytes or str) with every secret replaced by a marker: for messages."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("latin-1")
    data = str(data)
    for s in secrets:
        if s:
            data = data.replace(s, "[SECRET %d bytes]" % len(s))
    return data


def metrics_value(sg, name):
    """A sample of the admin /metrics text (float), or None when the metric is absent."""
    import http.client
    import re
    c = http.client.HTTPConnection(*sg.admin, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    m = re.search(r"(?m)^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text)
    return float(m.group(1)) if m else None


def redact_handles(text):
    """Text with every sgh1 handle body replaced by a marker (key id kept): for messages."""
    import re
    return re.sub(r"(sgh1\.[0-9A-Za-z]{0,8}\.)[A-Za-z0-9_-]+",
                  lambda m: "%s[handle body %d chars]" % (m.group(1), len(m.group(0))), text)
