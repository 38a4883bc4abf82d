"""Never leak (LEAKSPEC.md): a secret the upstream echoes back reaches the client in no
form — not compressed, not escaped, not encoded, not in a trailer, a 1xx or a WebSocket
frame — and the response still parses, with the handle where the secret was.

  LeakUpstreamSelfCheck  the harness itself, no sealgate: /leak really sends each coding,
                         form, trailer, 103 and Range answer with the secret in it; curl,
                         requests and websockets decode them; the detector
                         (secret_forms) finds the secret in every form and nothing in the
                         handle's; a reference model of LEAKSPEC (spec_model_scrub) applied
                         to the upstream's output passes the client-side checks. So a
                         failure below is sealgate's, and a compliant sealgate passes.
  CodingLeakTest         gzip, x-gzip, deflate (zlib and raw), br, zstd through curl
                         --compressed, python requests at its defaults (decoded and raw
                         wire) and a raw client; identity; stacks; chunked pieces; close-
                         delimited; HTTP/1.0; HEAD; 304; ETag; digests; undecodable coding
                         and 206 -> 502; Accept-Encoding narrowed; Range removed;
                         decode bounds; no handle -> passed through untouched.
  FormLeakTest           JSON escapes, percent, HTML references, hex, base64 (3 alignments
                         x std/url x padded/unpadded), Basic, JWT, in body, header and reason
                         phrase; every form under gzip (curl) and br.
  TrailerInterimLeakTest trailers (raw, base64, framing field dropped), 103 Early Hints.
  WebSocketLeakTest      python3-websockets through a CONNECT tunnel: reflected secret in
                         text/binary/fragmented frames split across TLS records, with and
                         without permessage-deflate offered; handle in a frame swapped;
                         host out of scope -> 1008; unmasked -> 1002; 2^40 length -> 1009;
                         extension in the 101 -> 502.

Secrets are random per run, contain '/', '+', '=', ' ', '&', '<', '>', '"' and "'" (so
every encoding differs from the raw text), and are never printed (R()).
"""
import asyncio
import base64
import html
import json
import os
import re
import socket
import ssl
import tempfile
import urllib.parse
import zlib

import sgtest
import test_handles as th

API = th.API
OTHER = th.OTHER


def _rnd(n):
    return os.urandom(n).hex()


SECRETS = {
    "leak": "lk/%s+x=%s/Z" % (_rnd(8), _rnd(8)),        # '/', '+', '='
    "leakspace": "sp %s w/%s" % (_rnd(6), _rnd(6)),      # spaces ('+' in form encoding)
    "leakhtml": "ht&%s<b>\"q'%s" % (_rnd(6), _rnd(6)),   # & < > " '
    "leakbin": "bn-%s-%s" % (_rnd(8), _rnd(8)),          # allow_websocket_binary
}
LEAK = SECRETS["leak"]
ALL_SECRETS = list(SECRETS.values()) + th.ALL_SECRETS
FAKE_HANDLE = b"sgh1.0a1b2c3d." + base64.urlsafe_b64encode(os.urandom(120)).rstrip(b"=")
DIGEST_FIELDS = ("Content-MD5", "Digest", "Content-Digest", "Repr-Digest")
DECODE_CAP = 32 << 20          # the detector decompresses at most this much


def R(x):
    """Text for messages: every secret and handle body replaced by a marker."""
    return sgtest.redact_handles(sgtest.redact(x, ALL_SECRETS))


class Malformed(AssertionError):
    """The client's response does not parse as the form it was sent in."""


# --------------------------------------------------------------------------- detector

_JSON_ESC = re.compile(r'\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|["\\/bfnrt])')
_JSON_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
                "r": "\r", "t": "\t"}


def json_unescape(text):
    """JSON/JS string escapes resolved (\\uXXXX either case, \\xHH, \\/ and the rest)."""
    def one(m):
        g = m.group(1)
        return chr(int(g[1:], 16)) if g[0] in "ux" else _JSON_SIMPLE[g]
    return _JSON_ESC.sub(one, text)


def b64_core(secret, align, url):
    """The base64 characters that depend on the secret's bytes only, when it sits align
    (0-2) bytes into a 3-byte group: present in any base64 of any text holding it there."""
    enc = base64.b64encode(b"\0" * align + secret).decode()
    core = enc[-(-8 * align // 6):(8 * (align + len(secret))) // 6]
    return core.translate(str.maketrans("+/", "-_")) if url else core


def _decompressions(data):
    """(coding, decoded) for every content coding data decodes as (partial output counts)."""
    out = []
    tries = [("gzip", lambda d: zlib.decompressobj(16 + 15).decompress(d, DECODE_CAP)),
             ("deflate", lambda d: zlib.decompressobj(15).decompress(d, DECODE_CAP)),
             ("deflate-raw", lambda d: zlib.decompressobj(-15).decompress(d, DECODE_CAP))]
    for name, fn in tries:
        try:
            dec = fn(data)
        except zlib.error:
            continue
        if dec:
            out.append((name, dec))
    try:
        import brotli
        dec = brotli.Decompressor().process(data)
        if dec:
            out.append(("br", dec[:DECODE_CAP]))
    except Exception:           # brotli.error: not brotli
        pass
    if data[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard
        try:
            dec = zstandard.ZstdDecompressor().decompressobj().decompress(data)
            out.append(("zstd", dec[:DECODE_CAP]))
        except zstandard.ZstdError:
            pass
    return out


def secret_forms(data, secret, depth=0):
    """Names of the LEAKSPEC forms of secret found in data (bytes or str): raw, hex
    lower/upper, base64 / base64url at alignment 0-2 (padded or not: the core is the
    same), percent (any subset, '+' for space), JSON escapes, HTML references, and any of
    those inside a content coding data decodes as (stacked up to 3 deep)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    s = secret.encode("latin-1")
    t = data.decode("latin-1")
    found = []
    if s in data:
        found.append("raw")
    if s.hex() in t:
        found.append("hex-lower")
    if s.hex().upper() in t:
        found.append("hex-upper")
    for align in range(3):
        for url in (False, True):
            if b64_core(s, align, url) in t:
                found.append("base64%s@%d" % ("url" if url else "", align))
    for name, decoded in (("percent", urllib.parse.unquote(t, encoding="latin-1")),
                          ("percent-plus", urllib.parse.unquote_plus(t, encoding="latin-1")),
                          ("json-escape", json_unescape(t)), ("html-reference", html.unescape(t))):
        if secret in decoded and "raw" not in found:
            found.append(name)
    if depth < 3:
        for coding, decoded in _decompressions(data):
            found += ["%s:%s" % (coding, f) for f in secret_forms(decoded, secret, depth + 1)]
    return found


# --------------------------------------------------------------------------- spec model
# A reference model of LEAKSPEC's replacements, used only by the self check: applied to
# what the upstream really sends, its output must pass every client-side check of the
# tests, so a sealgate that does what the spec says passes them.

_UNIT_RE = {
    "json": re.compile(r'\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|\\["\\/bfnrt]|.', re.S),
    "pct": re.compile(r"%[0-9a-fA-F]{2}|\+|.", re.S),
    "html": re.compile(r"&#[0-9]+;|&#[xX][0-9a-fA-F]+;|&(?:amp|lt|gt|quot|apos);|.", re.S),
}
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{4,}={0,2}")


def _unit_char(family, u):
    if len(u) == 1:
        return " " if family == "pct" and u == "+" else u
    if family == "json":
        return json_unescape(u)
    return chr(int(u[1:], 16)) if family == "pct" else html.unescape(u)


def _model_units(text, secret, handle, family):
    """Every escaped (or literal) spelling of secret in text -> the raw handle."""
    units = [(m.start(), m.end(), _unit_char(family, m.group(0)))
             for m in _UNIT_RE[family].finditer(text)]
    decoded = "".join(u[2] for u in units)
    out, pos = [], 0
    i = decoded.find(secret)
    while i >= 0:
        out += [text[pos:units[i][0]], handle]
        pos = units[i + len(secret) - 1][1]
        i = decoded.find(secret, i + len(secret))
    return "".join(out) + text[pos:]


def _model_b64(text, secret, handle):
    """A base64 run holding the secret re-encoded from the group of its first byte."""
    def one(m):
        run = m.group(0)
        body = run.rstrip("=")
        url = bool(set(body) & set("-_")) or text[m.start() - 1:m.start()] == "."
        std = body.translate(str.maketrans("-_", "+/"))
        if len(std) % 4 == 1:
            return run
        data = base64.b64decode(std + "=" * (-len(std) % 4))
        p = data.find(secret)
        if p < 0:
            return run
        enc = base64.b64encode(data[p // 3 * 3:].replace(secret, handle)).decode()
        if url:
            enc = enc.translate(str.maketrans("+/", "-_"))
        padded = run.endswith("=") or (not url and len(run) % 4 == 0)
        return body[:p // 3 * 4] + (enc if padded else enc.rstrip("="))
    return _B64_RUN.sub(one, text)


def spec_model_scrub(data, secret, handle):
    """data (bytes or str) as LEAKSPEC says the client gets it (same type back)."""
    as_bytes = isinstance(data, bytes)
    t = data.decode("latin-1") if as_bytes else data
    t = t.replace(secret, handle)
    sb, hb = secret.encode("latin-1"), handle.encode("latin-1")
    t = t.replace(sb.hex(), hb.hex()).replace(sb.hex().upper(), hb.hex().upper())
    for family in ("json", "pct", "html"):
        t = _model_units(t, secret, handle, family)
    t = _model_b64(t, sb, hb)
    return t.encode("latin-1") if as_bytes else t


# --------------------------------------------------------------------------- decoders
# The test's own decoding of each /leak form (independent of sgtest.leak_render).

def b64_lenient(core):
    """base64 in either alphabet, padded or not; strict about anything else."""
    if not re.fullmatch(r"[A-Za-z0-9+/_-]*={0,2}", core):
        raise Malformed("not base64: %s" % R(core[:200]))
    core = core.rstrip("=").translate(str.maketrans("-_", "+/"))
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except ValueError as e:
        raise Malformed("base64 does not decode (%s): %s" % (e, R(core[:200])))


def _b64_unwrap(core, q):
    data = b64_lenient(core)
    pre = sgtest.LEAK_B64_PREFIX[:int(q.get("pre", "0"))]
    suf = sgtest.LEAK_B64_SUFFIX
    if not (data.startswith(pre) and data.endswith(suf) and len(data) >= len(pre + suf)):
        raise Malformed("base64 no longer decodes to prefix+value+suffix: %s" % R(data))
    return data[len(pre):len(data) - len(suf)]


def _jwt_value(tok):
    parts = tok.split(".")
    if len(parts) != 3 or "=" in tok:
        raise Malformed("not an unpadded JWT: %s" % R(tok))
    if b64_lenient(parts[0]) != sgtest.LEAK_JWT_HEADER:
        raise Malformed("JWT header changed: %s" % R(parts[0]))
    try:
        claims = json.loads(b64_lenient(parts[1]))
    except ValueError:
        raise Malformed("JWT payload is not JSON")
    if claims.get("sub") != "u1" or claims.get("iat") != 1700000000:
        raise Malformed("JWT claims changed: %s" % R(claims))
    return claims["tok"].encode("latin-1")


def decode_core(form, core, q):
    """The value (bytes) a form's text stands for."""
    if core is None:
        raise Malformed("missing")
    if form == "raw":
        return core.encode("latin-1")
    if form.startswith("json_"):
        try:
            return json.loads('"%s"' % core).encode("latin-1")
        except ValueError:
            raise Malformed("not a JSON string body: %s" % R(core[:200]))
    if form.startswith("pct_"):
        unq = urllib.parse.unquote_plus if form == "pct_plus" else urllib.parse.unquote
        return unq(core, encoding="latin-1", errors="strict").encode("latin-1")
    if form.startswith("html_"):
        return html.unescape(core).encode("latin-1")
    if form.startswith("hex_"):
        wrong = "ABCDEF" if form == "hex_lower" else "abcdef"
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", core) or any(c in wrong for c in core):
            raise Malformed("not all-%s hex: %s" % (form[4:], R(core[:200])))
        return bytes.fromhex(core)
    if form == "b64":
        return _b64_unwrap(core, q)
    if form == "basic":
        if not core.startswith("Basic "):
            raise Malformed("not a Basic value: %s" % R(core))
        data = b64_lenient(core[6:])
        if not data.startswith(b"user:"):
            raise Malformed("Basic value no longer user:...: %s" % R(data))
        return data[5:]
    if form == "jwt":
        return _jwt_value(core)
    raise ValueError(form)


def _json(text):
    try:
        return json.loads(text)
    except ValueError:
        raise Malformed("body is not JSON: %s" % R(text[:300]))


def decode_body(form, body, q):
    """The value (bytes) a /leak body of this form holds (each copy checked equal)."""
    try:
        t = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body is not text (still encoded?): %s" % R(body[:100]))
    pattern = {"raw": r"(?:leak<(.*?)>end)+", "hex_": r"hex<(.*)>end", "b64": r"b64<(.*)>end",
               "pct_": r"q=([^&]*)&end=1",
               "html_": r'<!doctype html><p title="([^"]*)">([^<]*)</p>'}
    if form == "json_doc":
        d = _json(t)
        value = str(d.get("auth")).encode("latin-1")
        # the whole document as the upstream makes it for that value: copies, note, fill
        if d != json.loads(sgtest.leak_render("json_doc", value, q)[1]):
            raise Malformed("JSON document changed: %s" % R(t[:300]))
        return value
    if form.startswith("json_"):
        d = _json(t)
        if list(d) != ["auth"]:
            raise Malformed("JSON body changed: %s" % R(t[:300]))
        return d["auth"].encode("latin-1")
    if form in ("basic", "jwt"):
        return decode_core(form, _json(t).get("echo" if form == "basic" else "token"), q)
    key = next(k for k in pattern if form.startswith(k))
    m = re.fullmatch(pattern[key], t, re.S)
    if not m:
        raise Malformed("body does not parse as %s: %s" % (form, R(t[:300])))
    vals = {decode_core(form, g, q) for g in m.groups()}
    if form == "raw":
        copies = re.findall(r"leak<(.*?)>end", t, re.S)
        if len(copies) != int(q.get("n", "1")):
            raise Malformed("%d copies of the value, want %s" % (len(copies), q.get("n", "1")))
        vals = {decode_core(form, g, q) for g in copies}
    if len(vals) != 1:
        raise Malformed("copies of the value differ in %s: %s" % (form, R(t[:300])))
    return vals.pop()


def b64_shape_kept(tc, original_run, got_run, where):
    """Spec: alphabet kept (url-safe when the run has '-' or '_'), padding as the original
    run had it: '=' there -> correctly padded here. With none there, a url-safe run stays
    unpadded, and so does a standard one whose length was not a multiple of 4; a standard
    run whose length was (a padded encoder's run of 3n bytes looks so) is padded
    correctly, as strict standard decoders (Python's b64decode) require."""
    url = bool(set(original_run) & set("-_"))
    if original_run.endswith("=") or (not url and len(original_run) % 4 == 0):
        tc.assertTrue(len(got_run) % 4 == 0, "%s: padded base64 run lost its padding: %s"
                      % (where, R(got_run)))
    else:
        tc.assertTrue("=" not in got_run, "%s: unpadded base64 run got padding: %s"
                      % (where, R(got_run)))
    if url:
        tc.assertFalse(set(got_run) & set("+/"), "%s: base64url run re-encoded with '+' or "
                       "'/': %s" % (where, R(got_run)))
    if set(original_run) & set("+/"):
        tc.assertFalse(set(got_run) & set("-_"), "%s: standard base64 run re-encoded with "
                       "'-' or '_': %s" % (where, R(got_run)))


def accept_encodings(value):
    """{coding: q} of an Accept-Encoding value (q 1.0 when not given)."""
    out = {}
    for item in (value or "").split(","):
        name, _, params = item.strip().partition(";")
        if not name.strip():
            continue
        qv = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                qv = float(v)
        out[name.strip().lower()] = qv
    return out


# --------------------------------------------------------------------------- base class

def leak_creds(port):
    creds = {name: {"secret": {"value": secret}, "inject": {"type": "bearer"},
                    "hosts": ["%s:%d" % (API, port)]}
             for name, secret in SECRETS.items()}
    creds["leakbin"]["allow_websocket_binary"] = True
    return creds


class LeakCase(th.HandleCase):
    """One echo upstream and one sealgate per class, a handle per leak credential."""

    @classmethod
    def start(cls, **top):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.sg = sgtest.Sealgate(cls, overrides=th.make_policy(
            cls.echo.port, extra_creds=leak_creds(cls.echo.port), **top))
        cls.handles = {c: sgtest.mint_handle(cls.sg.policy_path, "sb-1", c)["handle"]
                       for c in SECRETS}

    def auth(self, cred="leak"):
        return [("Authorization", "Bearer " + self.handles[cred])]

    @staticmethod
    def target(q, m="{m}"):
        return "/leak/m-%s?%s" % (m, urllib.parse.urlencode(q))

    def url(self, q, m, host=API):
        return "https://%s:%d%s" % (host, self.echo.port, self.target(q, m))

    def values(self, cred, q):
        """(value the upstream reflects for the secret, the same for the handle): bytes."""
        pre = "" if q.get("part") == "value" else "Bearer "
        handle = getattr(self, "handles", {}).get(cred, "")
        return ((pre + SECRETS[cred]).encode("latin-1"), (pre + handle).encode("latin-1"))

    def assert_no_secret_forms(self, data, secret, where):
        found = secret_forms(data, secret)
        self.assertFalse(found, "the real secret (%d bytes) reached the client in %s as: %s"
                         % (len(secret), where, ", ".join(found)))

    def assert_clean(self, r, secret=LEAK):
        """No form of the secret in any byte of a RawConn response."""
        for i, ir in enumerate(r.interim):
            self.assert_no_secret_forms(ir.raw_head, secret, "interim response %d head" % i)
        self.assert_no_secret_forms(r.raw_head, secret, "the response head")
        self.assert_no_secret_forms(r.body, secret, "the response body")
        if r.raw_body is not None:
            self.assert_no_secret_forms(r.raw_body, secret, "the body on the wire")

    def assert_value(self, got, want, where):
        self.assertTrue(got == want, "%s holds %s, want %s" % (where, R(got), R(want)))

    def check_form_client(self, form, q, secret, header, body, hv, original_core):
        """What the client got for a /leak form (X-Leak value, body): no form of the
        secret, and both decode as the form to the value with the handle (hv); a base64
        run keeps the original's alphabet and padding."""
        self.assert_no_secret_forms(header or "", secret, "the X-Leak header")
        self.assert_no_secret_forms(body, secret, "the body")
        self.assert_value(decode_core(form, header, q), hv, "the X-Leak header")
        self.assert_value(decode_body(form, body, q), hv, "the body")
        if form == "b64":
            got = re.fullmatch(r"b64<(.*)>end", body.decode()).group(1)
            b64_shape_kept(self, original_core, got, "the body")
            b64_shape_kept(self, original_core, header, "the X-Leak header")

    def check_reflect_messages(self, got, value, secret=LEAK):
        """The WebSocket messages answering "reflect" (sgtest.ws_reflect_messages) hold
        value (bytes, the handle's) in each form, nothing of the secret."""
        for msg in got:
            self.assert_no_secret_forms(msg, secret, "a WebSocket message")
        want = sgtest.ws_reflect_messages(value)[:-1]
        self.assertEqual(len(got), len(want), "messages lost or added")
        for (op, exp), msg in zip(want, got):
            prefix = exp.split(b":")[0]
            self.assertIsInstance(msg, str if op == 1 else bytes, prefix)
            data = msg.encode() if isinstance(msg, str) else msg
            self.assertTrue(data.startswith(prefix + b":"), "message %s out of order" % prefix)
            rest = data[len(prefix) + 1:]
            if prefix == b"json":
                got_v, want_v = json.loads(rest)["auth"].encode(), value
            elif prefix in (b"b64", b"b64bin"):
                pre = b"x" if prefix == b"b64" else b"xy"
                got_v, want_v = b64_lenient(rest.decode()), pre + value + b"tail"
            else:
                got_v, want_v = rest, value
            self.assert_value(got_v, want_v, "the %s message" % prefix.decode())

    def assert_upstream_secret(self, m, cred="leak"):
        rec = self.upstream_record(m)
        got = self.header_of(rec, "Authorization")
        self.assertTrue(got == ["Bearer " + SECRETS[cred]],
                        "the upstream did not get the secret: Authorization %s" % R(got))
        self.assert_no_handle_upstream(rec, self.handles[cred])
        return rec

    def assert_decoded_headers(self, r, head=False):
        """The rewrite of a decoded response: no Content-Encoding / Content-Length /
        digests, ETag weak, chunked (HTTP/1.1, with a body)."""
        self.assertIsNone(r.header("Content-Encoding"), "Content-Encoding %r relayed with "
                          "a scrubbed response" % r.header("Content-Encoding"))
        self.assertIsNone(r.header("Content-Length"), "Content-Length relayed")
        for f in DIGEST_FIELDS:
            self.assertIsNone(r.header(f), "%s relayed with a rewritten body" % f)
        etag = r.header("ETag")
        self.assertTrue(etag and etag.startswith('W/"') and etag.count("W/") == 1,
                        "ETag not weakened: %r" % etag)
        if not head and r.status not in (204, 304):
            self.assertEqual((r.header("Transfer-Encoding") or "").lower(), "chunked")

    def audit_lines(self):
        return sgtest.audit_lines(self.sg)

    def wait_audit(self, pred, what):
        found = []

        def probe():
            found[:] = [ln for ln in self.audit_lines() if pred(ln)]
            return found
        sgtest.wait_for(probe, timeout=10, what=what)
        return found

    def requests_session(self):
        import requests
        s = requests.Session()
        s.trust_env = False         # no proxy / CA from the environment: only sealgate's
        self.addCleanup(s.close)
        return s


CODINGS = (("gzip", "gzip"), ("x_gzip", "x-gzip"), ("deflate_zlib", "deflate"),
           ("deflate_raw", "deflate-raw"), ("br", "br"), ("zstd", "zstd"))
DOC_Q = {"form": "json_doc", "n": "3", "fill": "600"}


# --------------------------------------------------------------------------- self check

class LeakUpstreamSelfCheck(LeakCase):
    """The harness without sealgate: what /leak sends really carries the secret, real
    clients decode it, the detector sees it. If these fail, the leak tests prove nothing."""

    @classmethod
    def setUpClass(cls):
        cls.echo = sgtest.EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.pki = sgtest.PKI.get()

    def direct(self, q, method="GET", headers=()):
        c = sgtest.direct_conn(self.echo.port)
        self.addCleanup(c.close)
        authority = "%s:%d" % (API, self.echo.port)
        c.send(sgtest.build_request(method, self.target(q, self.marker()), authority,
                                    [("Authorization", "Bearer " + LEAK)] + list(headers)))
        return c.read_response(method)

    def test_codings_carry_the_secret(self):
        """Each coding as sent: header right, decodes (own decoder) to the document with the
        secret, which the detector finds only by decoding."""
        for _name, enc in CODINGS + (("stack", "gzip,br"), ("stack2", "br,gzip")):
            with self.subTest(enc=enc):
                import brotli
                import zstandard
                r = self.direct(dict(DOC_Q, enc=enc, frame="chunked", step="7"))
                self.assertEqual(r.status, 200)
                want_ce = enc.replace("deflate-raw", "deflate").replace(",", ", ")
                self.assertEqual(r.header("Content-Encoding"), want_ce)
                data = r.body
                for c in reversed(enc.split(",")):
                    data = {"gzip": lambda d: zlib.decompress(d, 31),
                            "x-gzip": lambda d: zlib.decompress(d, 31),
                            "deflate": zlib.decompress,
                            "deflate-raw": lambda d: zlib.decompress(d, -15),
                            "br": brotli.decompress,
                            "zstd": lambda d: zstandard.ZstdDecompressor()
                            .decompressobj().decompress(d)}[c](data)
                self.assert_value(decode_body("json_doc", data, DOC_Q),
                                  ("Bearer " + LEAK).encode(), "decoded body")
                # the tests recompute what the upstream sent (ETag, passthrough bytes)
                q = dict(DOC_Q, enc=enc)
                _, again = sgtest.leak_encode(sgtest.leak_render(
                    "json_doc", ("Bearer " + LEAK).encode(), q)[1], enc)
                self.assertTrue(again == r.body, "%s output not reproducible" % enc)
                self.assertEqual(r.header("ETag"), '"leak-%s"' % sgtest.sha256(again)[:16])
                self.assertTrue(LEAK.encode() not in r.body, "coding is not applied")
                self.assertTrue([f for f in secret_forms(r.body, LEAK) if ":" in f],
                                "detector does not see through %s" % enc)

    def test_real_clients_decode_each_coding(self):
        """curl --compressed and requests (defaults) decode every coding /leak sends, so
        their output through sealgate is a meaningful check (requests: not zstd, x-gzip;
        through sealgate those would reach it still encoded today, which the detector
        decodes)."""
        for _name, enc in CODINGS + (("stack", "gzip,br"),):
            with self.subTest(enc=enc, client="curl"):
                url = "https://%s:%d%s" % (API, self.echo.port,
                                           self.target(dict(DOC_Q, enc=enc), "c"))
                rc, out, err = sgtest.curl(
                    None, "--compressed", "-H", "Authorization: Bearer " + LEAK,
                    "--resolve", "%s:%d:%s" % (API, self.echo.port, sgtest.UPSTREAM_ADDR),
                    url, proxy=False, cacert=self.pki.ca_cert)
                self.assertEqual(rc, 0, R(err))
                self.assert_value(decode_body("json_doc", out, DOC_Q),
                                  ("Bearer " + LEAK).encode(), "curl's output")
            if enc in ("zstd", "x-gzip"):      # urllib3 1.26 decodes gzip, deflate, br
                continue
            with self.subTest(enc=enc, client="requests"):
                r = self.requests_session().get(
                    "https://%s:%d%s" % (sgtest.UPSTREAM_ADDR, self.echo.port,
                                         self.target(dict(DOC_Q, enc=enc), "r")),
                    headers={"Authorization": "Bearer " + LEAK}, verify=self.pki.ca_cert,
                    timeout=20)
                self.assertEqual(r.status_code, 200)
                self.assert_value(decode_body("json_doc", r.content, DOC_Q),
                                  ("Bearer " + LEAK).encode(), "requests' content")

    def test_every_form_decodes_and_is_detected(self):
        for form, cred, extra in FORM_CASES + B64_CASES:
            q = dict(extra, form=form, hdr="1")
            with self.subTest(form=form, **extra):
                c = sgtest.direct_conn(self.echo.port)
                self.addCleanup(c.close)
                c.send(sgtest.build_request("GET", self.target(q, "f"), API,
                                            [("Authorization", "Bearer " + SECRETS[cred])]))
                r = c.read_response()
                sv = self.values(cred, q)[0]
                self.assert_value(decode_body(form, r.body, q), sv, "body")
                self.assert_value(decode_core(form, r.header("X-Leak"), q), sv, "X-Leak")
                self.assertTrue(secret_forms(r.body, SECRETS[cred]),
                                "detector misses form %s in the body" % form)
                self.assertTrue(secret_forms(r.header("X-Leak"), SECRETS[cred]),
                                "detector misses form %s in the header" % form)
                fake = (b"" if q.get("part") == "value" else b"Bearer ") + FAKE_HANDLE
                for part in sgtest.leak_render(form, fake, q):
                    self.assertEqual(secret_forms(part, SECRETS[cred]), [],
                                     "detector fires on the handle's %s form" % form)
                if form not in ("raw", "json_doc", "json_slash", "basic", "jwt", "b64"):
                    self.assertTrue(SECRETS[cred].encode("latin-1") not in r.body,
                                    "form %s leaves the secret raw" % form)

    def test_spec_model_output_passes_client_checks(self):
        """The pass path: what the upstream sends, scrubbed by the reference model of
        LEAKSPEC (spec_model_scrub), passes the very checks the tests make on the client's
        response: every form in header and body, and the WebSocket messages."""
        handle = FAKE_HANDLE.decode()
        for form, cred, extra in FORM_CASES + B64_CASES:
            q = dict(extra, form=form, hdr="1")
            with self.subTest(form=form, **extra):
                secret = SECRETS[cred]
                c = sgtest.direct_conn(self.echo.port)
                self.addCleanup(c.close)
                c.send(sgtest.build_request("GET", self.target(q, "s"), API,
                                            [("Authorization", "Bearer " + secret)]))
                r = c.read_response()
                pre = "" if q.get("part") == "value" else "Bearer "
                core_s = sgtest.leak_render(form, (pre + secret).encode("latin-1"), q)[0]
                self.check_form_client(
                    form, q, secret, spec_model_scrub(r.header("X-Leak"), secret, handle),
                    spec_model_scrub(r.body, secret, handle), (pre + handle).encode(), core_s)
        value = ("Bearer " + LEAK).encode()
        got = [spec_model_scrub(p.decode() if op == 1 else p, LEAK, handle)
               for op, p in sgtest.ws_reflect_messages(value)[:-1]]
        self.check_reflect_messages(got, ("Bearer " + handle).encode())


    def test_trailers_interim_range_206(self):
        r = self.direct({"trailer": "1", "interim": "103"})
        self.assertEqual([i.status for i in r.interim], [103])
        self.assertTrue(LEAK in r.interim[0].header("Link"), "no secret in the 103 Link")
        self.assert_value(r.trailer("X-Leak-Trailer"), "Bearer " + LEAK, "trailer")
        self.assert_value(base64.b64decode(r.trailer("X-Leak-Trailer-B64")),
                          ("Bearer " + LEAK).encode(), "base64 trailer")
        self.assertEqual(r.trailer("Content-Length"), "12")
        r = self.direct(dict(DOC_Q, enc="gzip"), headers=[("Range", "bytes=0-9")])
        self.assertEqual((r.status, len(r.body)), (206, 10))
        r = self.direct(dict(DOC_Q, st="206"))
        self.assertEqual(r.status, 206)
        r = self.direct(dict(DOC_Q, enc="gzip"), method="HEAD")
        self.assertEqual((r.header("Content-Encoding"), r.body), ("gzip", b""))
        self.assertTrue(r.header("ETag").startswith('"'))

    def test_websocket_reflect_direct(self):
        """websockets (no proxy) reads every reflected message; each holds the secret in
        the advertised form and the detector finds it; the echo recorded the frames."""
        m = self.marker()
        value = ("Bearer " + LEAK).encode()

        async def go():
            sock = socket.create_connection((sgtest.UPSTREAM_ADDR, self.echo.port), 10)
            ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
            return await ws_exchange("wss://%s:%d/ws?m=%s" % (API, self.echo.port, m), sock,
                                     ctx, API, [("Authorization", "Bearer " + LEAK)], None)
        got, _ext = run_async(go())
        want = [p.decode() if op == 1 else p for op, p in sgtest.ws_reflect_messages(value)]
        self.assertTrue(got == want[:-1], "reflected messages differ: %s" % R(got))
        for msg in got:
            self.assertTrue(secret_forms(msg, LEAK), "detector misses %s" % R(msg[:12]))
        msgs = self.echo.wait_frames(lambda f: m in f["path"] and f["event"] == "message")
        self.assertEqual([f["data"] for f in msgs], ["reflect"])


# --------------------------------------------------------------------------- codings

class CodingLeakTest(LeakCase):

    @classmethod
    def setUpClass(cls):
        cls.start()

    def want(self):
        return ("Bearer " + self.handles["leak"]).encode()

    def check_raw(self, q, headers=()):
        """RawConn GET: secret to the upstream; the answer clean, decoded, re-framed."""
        r, m = self.req(self.auth() + list(headers), target=self.target(q))
        rec = self.assert_upstream_secret(m)
        self.assertEqual(r.status, 200, R(r))
        self.assert_clean(r)
        self.assert_decoded_headers(r)
        self.assert_value(decode_body(q["form"], r.body, q), self.want(), "the body")
        return r, rec

    def check_curl(self, q):
        m = self.marker()
        with tempfile.NamedTemporaryFile() as hf:
            rc, out, err = sgtest.curl(self.sg, "--compressed", "-D", hf.name, "-H",
                                       "Authorization: Bearer " + self.handles["leak"],
                                       self.url(q, m))
            heads = hf.read()
        self.assert_upstream_secret(m)
        self.assert_no_secret_forms(out, LEAK, "curl's decoded output")
        self.assert_no_secret_forms(heads, LEAK, "the response head (curl)")
        self.assertEqual(rc, 0, "curl exit %d: %s" % (rc, R(err)))
        self.assertTrue(b"content-encoding:" not in heads.lower(),
                        "Content-Encoding relayed: %s" % R(heads))
        self.assert_value(decode_body(q["form"], out, q), self.want(), "curl's output")

    def check_requests(self, q):
        """requests at its defaults (Accept-Encoding: gzip, deflate, br), decoded content,
        then the same with stream=True read undecoded: what was on the wire."""
        s = self.requests_session()
        kw = dict(headers={"Authorization": "Bearer " + self.handles["leak"]},
                  proxies={"https": self.sg.proxy_url}, verify=self.sg.ca_cert, timeout=20)
        m = self.marker()
        r = s.get(self.url(q, m), **kw)
        self.assert_upstream_secret(m)
        self.assert_no_secret_forms(r.content, LEAK, "requests' decoded content")
        self.assert_no_secret_forms(str(r.headers), LEAK, "requests' response headers")
        self.assertEqual(r.status_code, 200)
        self.assertTrue("Content-Encoding" not in r.headers,
                        "Content-Encoding %r relayed" % r.headers.get("Content-Encoding"))
        self.assert_value(decode_body(q["form"], r.content, q), self.want(), "r.content")
        r = s.get(self.url(q, self.marker()), stream=True, **kw)
        wire = r.raw.read(decode_content=False)
        r.close()
        self.assert_no_secret_forms(wire, LEAK, "the body on the wire (requests raw)")
        self.assertTrue("Content-Encoding" not in r.headers,
                        "Content-Encoding %r relayed" % r.headers.get("Content-Encoding"))
        self.assertFalse(wire.startswith(b"\x1f\x8b"), "gzip still on the wire")
        self.assert_value(decode_body(q["form"], wire, q), self.want(), "r.raw")

    def _coding_tests(enc):
        def curl_test(self):
            self.check_curl(dict(DOC_Q, enc=enc))

        def requests_test(self):
            self.check_requests(dict(DOC_Q, enc=enc))

        def raw_test(self):
            self.check_raw(dict(DOC_Q, enc=enc))
        return curl_test, requests_test, raw_test

    for _name, _enc in CODINGS:
        (locals()["test_%s_curl_compressed" % _name],
         locals()["test_%s_requests_defaults" % _name],
         locals()["test_%s_raw_client_headers_rewritten" % _name]) = _coding_tests(_enc)
    del _name, _enc, _coding_tests

    def test_identity_coding_header_removed(self):
        self.check_raw(dict(DOC_Q, enc="identity"))

    def test_stacked_gzip_then_br(self):
        self.check_raw(dict(DOC_Q, enc="gzip,br"))
        self.check_curl(dict(DOC_Q, enc="gzip,br"))

    def test_stacked_br_then_gzip(self):
        self.check_raw(dict(DOC_Q, enc="br,gzip"))
        self.check_curl(dict(DOC_Q, enc="br,gzip"))

    def test_chunked_compressed_split_across_records(self):
        """The compressed stream in 3-byte chunks, each its own TLS record."""
        for enc in ("gzip", "deflate-raw", "br", "zstd"):
            with self.subTest(enc=enc):
                self.check_raw(dict(DOC_Q, enc=enc, frame="chunked", step="3", fill="4000"))
                self.check_curl(dict(DOC_Q, enc=enc, frame="chunked", step="3"))

    def test_close_delimited_gzip_upstream(self):
        self.check_raw(dict(DOC_Q, enc="gzip", frame="close", step="50"))

    def test_http10_client_gets_close_delimited_decoded(self):
        authority = "%s:%d" % (API, self.echo.port)
        m = self.marker()
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(("GET %s HTTP/1.0\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n"
                % (self.target(dict(DOC_Q, enc="gzip"), m), authority,
                   self.handles["leak"])).encode())
        r = c.read_response()
        self.assert_upstream_secret(m)
        self.assert_clean(r)
        self.assertIsNone(r.header("Content-Encoding"), "Content-Encoding relayed")
        self.assertIsNone(r.header("Content-Length"), "Content-Length relayed")
        self.assertIsNone(r.header("Transfer-Encoding"), "chunked sent to an HTTP/1.0 client")
        self.assertTrue(c.eof, "not close-delimited")
        self.assert_value(decode_body("json_doc", r.body, DOC_Q), self.want(), "the body")

    def test_head_with_content_encoding(self):
        """HEAD: the same header rewrite, no body, the connection still frames correctly."""
        authority = "%s:%d" % (API, self.echo.port)
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(sgtest.build_request("HEAD", self.target(dict(DOC_Q, enc="gzip", hdr="1"),
                                                        "head"), authority, self.auth()))
        r = c.read_response("HEAD")
        self.assertEqual(r.status, 200, R(r))
        self.assert_clean(r)
        self.assert_decoded_headers(r, head=True)
        self.assertEqual(r.body, b"")
        c.send(sgtest.build_request("GET", self.target(dict(DOC_Q, enc="br"), "next"),
                                    authority, self.auth()))
        r2 = c.read_response()
        self.assert_clean(r2)
        self.assert_decoded_headers(r2)
        self.assert_value(decode_body("json_doc", r2.body, DOC_Q), self.want(), "next body")

    def test_304_etag_weakened_coding_removed(self):
        authority = "%s:%d" % (API, self.echo.port)
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(sgtest.build_request(
            "GET", self.target(dict(DOC_Q, enc="gzip", st="304", hdr="1"), "304"),
            authority, self.auth() + [("If-None-Match", '"leak-x"')]))
        r = c.read_response()
        self.assertEqual(r.status, 304, R(r))
        self.assert_clean(r)
        self.assert_decoded_headers(r)
        self.assert_value(r.header("X-Leak"), "Bearer " + self.handles["leak"], "X-Leak")
        c.send(sgtest.build_request("GET", self.target(dict(DOC_Q, enc="gzip"), "after"),
                                    authority, self.auth()))
        r2 = c.read_response()
        self.assert_clean(r2)
        self.assert_value(decode_body("json_doc", r2.body, DOC_Q), self.want(), "next body")

    def test_strong_etag_becomes_weak_weak_stays(self):
        q = dict(DOC_Q, enc="gzip", digest="0")
        r, _ = self.check_raw(q)
        _, strong = sgtest.leak_encode(sgtest.leak_render("json_doc", ("Bearer " + LEAK)
                                                          .encode(), q)[1], "gzip")
        self.assertEqual(r.header("ETag"), 'W/"leak-%s"' % sgtest.sha256(strong)[:16])
        r, _ = self.check_raw(dict(q, etag="weak"))
        self.assertEqual(r.header("ETag"), 'W/"leak-%s"' % sgtest.sha256(strong)[:16])

    def test_digests_removed(self):
        for enc in ("gzip", "identity"):
            with self.subTest(enc=enc):
                r, _ = self.check_raw(dict(DOC_Q, enc=enc))
                for f in DIGEST_FIELDS:
                    self.assertIsNone(r.header(f), f)

    def test_unsupported_coding_502(self):
        for enc in ("compress", "x-foo"):
            with self.subTest(enc=enc):
                r, m = self.req(self.auth(), target=self.target(dict(DOC_Q, enc=enc)))
                self.assert_upstream_secret(m)
                self.assert_clean(r)
                self.assert_unscrubbable(r)

    def test_compressed_although_identity_requested(self):
        r, rec = self.check_raw(dict(DOC_Q, enc="gzip"),
                                headers=[("Accept-Encoding", "identity")])
        self.assertEqual(accept_encodings(", ".join(self.header_of(rec, "Accept-Encoding"))),
                         {"identity": 1.0})

    def test_accept_encoding_narrowed_upstream(self):
        cases = [("gzip, compress, br;q=0.5, x-foo;q=0.1, zstd",
                  {"gzip": 1.0, "br": 0.5, "zstd": 1.0}),
                 ("compress, x-foo", {"identity": 1.0}),
                 # '*' with q > 0 would let the upstream pick any coding: dropped
                 ("*;q=0.3, compress;q=1", {"identity": 1.0}),
                 ("gzip, *;q=0", {"gzip": 1.0, "*": 0.0}),
                 ("deflate, x-gzip;q=0.9, identity;q=0.1",
                  {"deflate": 1.0, "x-gzip": 0.9, "identity": 0.1})]
        for sent, want in cases:
            with self.subTest(sent=sent):
                r, m = self.req(self.auth() + [("Accept-Encoding", sent)],
                                target=self.target(dict(DOC_Q, enc="none")))
                rec = self.assert_upstream_secret(m)
                self.assertEqual(r.status, 200)
                got = self.header_of(rec, "Accept-Encoding")
                self.assertEqual(accept_encodings(", ".join(got)), want,
                                 "upstream Accept-Encoding %r" % got)

    def test_range_and_if_range_removed_whole_body(self):
        q = dict(DOC_Q, enc="gzip")
        r, rec = self.check_raw(q, headers=[("Range", "bytes=0-9"),
                                            ("If-Range", '"leak-0123456789abcdef"')])
        self.assertEqual(self.header_of(rec, "Range"), [], "Range forwarded")
        self.assertEqual(self.header_of(rec, "If-Range"), [], "If-Range forwarded")
        self.assertIsNone(r.header("Content-Range"))

    def test_206_anyway_502(self):
        for enc in ("none", "gzip"):
            with self.subTest(enc=enc):
                r, m = self.req(self.auth(), target=self.target(dict(DOC_Q, enc=enc, st="206")))
                self.assert_upstream_secret(m)
                self.assert_clean(r)
                self.assert_unscrubbable(r)

    def test_no_handle_passed_through_untouched(self):
        """No secret injected on the connection: the encoded answer is relayed as sent
        (coding, Content-Length, strong ETag, digests, bytes)."""
        q = dict(DOC_Q, enc="gzip")
        r, m = self.req([], target=self.target(q))
        self.upstream_record(m)
        ce, want = sgtest.leak_encode(sgtest.leak_render("json_doc", b"", q)[1], "gzip")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), ce)
        self.assertEqual(r.header("Content-Length"), str(len(want)))
        self.assertEqual(r.header("ETag"), '"leak-%s"' % sgtest.sha256(want)[:16])
        self.assertIsNotNone(r.header("Content-MD5"))
        self.assertTrue(r.body == want, "encoded body changed")

    def assert_unscrubbable(self, r):
        self.assertTrue(r.status == 502 and r.header("X-Sealgate-Error") ==
                        "unscrubbable_response", "want 502 unscrubbable_response, got %s"
                        % R(r))
        sgtest.assert_error(self, r, 502, "unscrubbable_response")

    def assert_cut(self, q, error):
        """The response is cut (no chunked terminator) and audited with error."""
        c = sgtest.open_intercepted(self.sg, API, self.echo.port, timeout=20)
        self.addCleanup(c.close)
        m = self.marker()
        c.send(sgtest.build_request("GET", self.target(q, m), "%s:%d" % (API, self.echo.port),
                                    self.auth()))
        try:
            r = c.read_response(timeout=20)
        except ConnectionError:
            r = None
        self.assertTrue(r is None, "transfer completed (%s)" % (r and "%d, %d bytes, %s" % (
            r.status, len(r.body), r.header("Content-Encoding"))))
        self.wait_audit(lambda ln: ln.get("error") == error and m in ln.get("path", ""),
                        "audit line with error " + error)

    def test_decompression_ratio_bound_cuts(self):
        """16 MiB of zeros in 16 KiB of gzip: over 200:1 past 1 MiB decoded."""
        self.assert_cut({"form": "zeros", "n": str(16 << 20), "enc": "gzip",
                         "frame": "chunked", "step": "1024"}, "decode_limit")

    def test_corrupt_gzip_cuts(self):
        self.assert_cut(dict(DOC_Q, fill="200000", enc="gzip-corrupt", frame="chunked",
                             step="4096"), "decode_error")


# --------------------------------------------------------------------------- forms

# (form, credential, extra query) of every non-base64 form test.
FORM_CASES = [
    ("raw", "leak", {}),
    ("json_slash", "leak", {}), ("json_ul", "leak", {}), ("json_uu", "leak", {}),
    ("json_umix", "leak", {}), ("json_ul", "leakhtml", {}),
    ("json_doc", "leakhtml", {"ascii": "1"}), ("json_doc", "leakhtml", {"ascii": "0"}),
    ("pct_lower", "leak", {}), ("pct_upper", "leak", {}), ("pct_some", "leak", {}),
    ("pct_plus", "leakspace", {}), ("pct_upper", "leakspace", {}),
    ("html_dec", "leak", {}), ("html_hexl", "leak", {}), ("html_hexu", "leak", {}),
    ("html_named", "leakhtml", {}), ("html_hexl", "leakhtml", {}),
    ("hex_lower", "leak", {"part": "value"}), ("hex_upper", "leak", {"part": "value"}),
    ("basic", "leak", {"part": "value"}), ("jwt", "leak", {"part": "value"}),
]

B64_CASES = [("b64", "leak", {"alpha": a, "pad": p, "pre": n, "part": "value"})
             for a in ("std", "url") for p in "01" for n in "012"]


class FormLeakTest(LeakCase):

    @classmethod
    def setUpClass(cls):
        cls.start()

    def check_form(self, form, cred="leak", enc="none", curl=False, **extra):
        """The form with the secret, in body and X-Leak header: the client gets it with
        the handle in place (same form), nothing of the secret; the upstream the secret."""
        q = dict(extra, form=form, hdr="1", enc=enc)
        secret = SECRETS[cred]
        sv, hv = self.values(cred, q)
        core_s, body_s = sgtest.leak_render(form, sv, q)
        self.assertTrue(secret_forms(body_s, secret) and secret_forms(core_s, secret),
                        "detector misses form %s" % form)          # the test's own logic
        self.assertTrue(decode_body(form, body_s, q) == sv, "decoder wrong for " + form)
        r, m = self.req(self.auth(cred), target=self.target(q))
        self.assert_upstream_secret(m, cred)
        self.assertEqual(r.status, 200, R(r))
        self.assert_clean(r, secret)
        if enc != "none":
            self.assert_decoded_headers(r)
        self.check_form_client(form, q, secret, r.header("X-Leak"), r.body, hv, core_s)
        if curl:
            self.check_form_curl(form, cred, q, hv)
        return r, core_s

    def check_form_curl(self, form, cred, q, hv):
        rc, out, err = sgtest.curl(self.sg, "--compressed", "-H",
                                   "Authorization: Bearer " + self.handles[cred],
                                   self.url(q, self.marker()))
        self.assert_no_secret_forms(out, SECRETS[cred], "curl's decoded output")
        self.assertEqual(rc, 0, "curl exit %d: %s" % (rc, R(err)))
        self.assert_value(decode_body(form, out, q), hv, "curl's output")

    def _form_test(form, cred, extra):
        def test(self):
            self.check_form(form, cred, **extra)
        return test

    for _name, _case in (
            ("test_json_slash_escaped_php_style", FORM_CASES[1]),
            ("test_json_u_escaped_lower_case", FORM_CASES[2]),
            ("test_json_u_escaped_upper_case", FORM_CASES[3]),
            ("test_json_u_escaped_mixed_with_literal", FORM_CASES[4]),
            ("test_json_u_escaped_quotes_and_specials", FORM_CASES[5]),
            ("test_json_document_ensure_ascii", FORM_CASES[6]),
            ("test_json_document_not_ensure_ascii", FORM_CASES[7]),
            ("test_percent_lower_hex", FORM_CASES[8]),
            ("test_percent_upper_hex", FORM_CASES[9]),
            ("test_percent_some_characters", FORM_CASES[10]),
            ("test_percent_plus_for_space", FORM_CASES[11]),
            ("test_percent_space_as_pct20", FORM_CASES[12]),
            ("test_html_decimal_references", FORM_CASES[13]),
            ("test_html_hex_lower_references", FORM_CASES[14]),
            ("test_html_hex_upper_references", FORM_CASES[15]),
            ("test_html_named_entities", FORM_CASES[16]),
            ("test_html_hex_references_of_specials", FORM_CASES[17]),
            ("test_hex_lower", FORM_CASES[18]),
            ("test_hex_upper", FORM_CASES[19]),
            ("test_basic_value_echo", FORM_CASES[20]),
            ("test_jwt_payload", FORM_CASES[21])):
        locals()[_name] = _form_test(*_case)
    del _name, _case, _form_test

    def test_raw_body_and_header(self):
        self.check_form("raw", n="3")

    def check_b64(self, alpha, pad):
        for pre in "012":
            with self.subTest(pre=pre):
                q = {"alpha": alpha, "pad": pad, "pre": pre, "part": "value"}
                self.check_form("b64", **q)

    def test_base64_std_padded_alignments(self):
        self.check_b64("std", "1")

    def test_base64_std_unpadded_alignments(self):
        self.check_b64("std", "0")

    def test_base64url_padded_alignments(self):
        self.check_b64("url", "1")

    def test_base64url_unpadded_alignments(self):
        self.check_b64("url", "0")

    def test_hex_keeps_case(self):
        """Hex of the handle in the case the secret's hex had."""
        h = self.handles["leak"].encode()
        r, _ = self.check_form("hex_lower", part="value")
        self.assert_value(r.header("X-Leak"), h.hex(), "X-Leak")
        r, _ = self.check_form("hex_upper", part="value")
        self.assert_value(r.header("X-Leak"), h.hex().upper(), "X-Leak")

    def test_reason_phrase_forms(self):
        for form, extra in (("raw", {}), ("json_ul", {}), ("pct_upper", {}),
                            ("hex_lower", {"part": "value"})):
            with self.subTest(form=form):
                q = dict(extra, form=form, reason="1")
                r, m = self.req(self.auth(), target=self.target(q))
                self.assert_upstream_secret(m)
                self.assert_clean(r)
                self.assertEqual(r.status, 200)
                self.assertTrue(r.reason.startswith("OK "), R(r.reason))
                self.assert_value(decode_core(form, r.reason[3:], q), self.values("leak", q)[1],
                                  "the reason phrase")

    def test_every_form_gzip_chunked_curl(self):
        for form, cred, extra in FORM_CASES:
            with self.subTest(form=form, cred=cred):
                self.check_form(form, cred, enc="gzip", curl=True, frame="chunked",
                                step="4", **extra)
        with self.subTest(form="b64 url unpadded"):
            self.check_form("b64", enc="gzip", curl=True, alpha="url", pad="0", pre="1",
                            part="value")

    def test_every_form_br(self):
        for form, cred, extra in FORM_CASES:
            with self.subTest(form=form, cred=cred):
                self.check_form(form, cred, enc="br", **extra)


# --------------------------------------------------------------------------- trailers, 1xx

class TrailerInterimLeakTest(LeakCase):

    @classmethod
    def setUpClass(cls):
        cls.start()

    def check_trailers(self, q):
        r, m = self.req(self.auth(), target=self.target(dict(q, trailer="1")))
        self.assert_upstream_secret(m)
        self.assertEqual(r.status, 200, R(r))
        self.assert_clean(r)
        self.assertEqual((r.header("Transfer-Encoding") or "").lower(), "chunked")
        want = "Bearer " + self.handles["leak"]
        self.assert_value(r.trailer("X-Leak-Trailer"), want, "trailer X-Leak-Trailer")
        b64 = r.trailer("X-Leak-Trailer-B64")
        self.assertIsNotNone(b64, "trailer X-Leak-Trailer-B64 not relayed")
        self.assert_value(b64_lenient(b64), want.encode(), "trailer X-Leak-Trailer-B64")
        self.assertIsNone(r.trailer("Content-Length"), "framing field relayed in trailers")
        return r

    def test_trailers_raw_and_base64(self):
        r = self.check_trailers({"form": "raw"})
        self.assert_value(decode_body("raw", r.body, {}),
                          ("Bearer " + self.handles["leak"]).encode(), "the body")

    def test_trailers_with_gzip_body(self):
        r = self.check_trailers(dict(DOC_Q, enc="gzip"))
        self.assert_decoded_headers(r)
        self.assert_value(decode_body("json_doc", r.body, DOC_Q),
                          ("Bearer " + self.handles["leak"]).encode(), "the body")

    def test_103_early_hints_link(self):
        r, m = self.req(self.auth(), target=self.target({"form": "raw", "interim": "103"}))
        self.assert_upstream_secret(m)
        self.assert_clean(r)
        self.assertEqual([i.status for i in r.interim], [103], "103 not relayed")
        hint = r.interim[0]
        want = "Bearer " + self.handles["leak"]
        self.assert_value(hint.header("Link"),
                          "<https://cdn.example.test/a.css?t=%s>; rel=preload" % want, "Link")
        self.assert_value(urllib.parse.unquote(hint.header("X-Hint-Pct") or ""), want,
                          "X-Hint-Pct")
        self.assertIsNone(hint.header("Keep-Alive"), "hop-by-hop field relayed in a 103")
        self.assertEqual(r.status, 200)
        self.assert_value(decode_body("raw", r.body, {}), want.encode(), "the body")

    def test_103_and_trailers_seen_by_curl(self):
        """A real client: curl's header dump holds the 103's Link and the trailer, each
        with the handle, nothing of the secret."""
        with tempfile.NamedTemporaryFile() as hf:
            rc, out, err = sgtest.curl(self.sg, "-D", hf.name, "-H",
                                       "Authorization: Bearer " + self.handles["leak"],
                                       self.url({"form": "raw", "interim": "103",
                                                 "trailer": "1"}, self.marker()))
            heads = hf.read()
        self.assertEqual(rc, 0, R(err))
        self.assert_no_secret_forms(heads, LEAK, "curl's header dump")
        self.assert_no_secret_forms(out, LEAK, "curl's output")
        blocks = heads.decode("latin-1").split("\r\n\r\n")
        if len(blocks) > 1 and blocks[1].startswith("HTTP/"):     # the CONNECT's answer
            blocks = blocks[1:]
        self.assertTrue(blocks[0].startswith("HTTP/1.1 103"), "curl saw no 103: %s"
                        % R(blocks[0][:300]))
        want = "Bearer " + self.handles["leak"]
        lines = [ln.lower() for ln in blocks[0].split("\r\n")]
        self.assertTrue("link: <https://cdn.example.test/a.css?t=%s>; rel=preload"
                        % want.lower() in lines, "the 103's Link (with the handle) not "
                        "relayed: %d field(s) in curl's 103" % (len(lines) - 1))
        trailer_lines = "\r\n".join(blocks[2:]).lower().split("\r\n")
        self.assertTrue("x-leak-trailer: " + want.lower() in trailer_lines,
                        "the trailer (with the handle) not relayed")


# --------------------------------------------------------------------------- websocket

def run_async(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def ws_connect(uri, sock, ctx, host, headers, compression):
    import websockets
    return await websockets.connect(uri, sock=sock, ssl=ctx, server_hostname=host,
                                    extra_headers=list(headers), compression=compression,
                                    open_timeout=10, close_timeout=3)


async def ws_exchange(uri, sock, ctx, host, headers, compression, send="reflect"):
    """Connect, send one text message, collect messages until "done" (bounded); returns
    (messages, negotiated extensions)."""
    ws = await ws_connect(uri, sock, ctx, host, headers, compression)
    try:
        await ws.send(send)
        got = []
        for _ in range(32):
            msg = await asyncio.wait_for(ws.recv(), 10)
            if msg == "done":
                break
            got.append(msg)
        return got, [type(e).__name__ for e in ws.extensions]
    finally:
        await ws.close()


def ws_tunnel(sg, host, port):
    """A socket to sealgate with CONNECT host:port answered 200 (websockets has no proxy
    support): TLS and the upgrade follow inside."""
    c = sgtest.RawConn(sg)
    r = c.connect("%s:%d" % (host, port))
    if r.status != 200 or c.buf:
        c.close()
        raise AssertionError("CONNECT %s:%d -> %s" % (host, port, r.status))
    c.sock.settimeout(None)
    return c.sock


def upgrade_request(host, port, path, headers=()):
    return sgtest.build_request("GET", path, "%s:%d" % (host, port), [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode()),
        ("Sec-WebSocket-Version", "13")] + list(headers))


class WebSocketLeakTest(LeakCase):

    @classmethod
    def setUpClass(cls):
        cls.start()

    def ws_ctx(self):
        return ssl.create_default_context(cafile=self.sg.ca_cert)

    def uri(self, host, m, extra=""):
        return "wss://%s:%d/ws?m=%s%s" % (host, self.echo.port, m, extra)

    def upstream_end(self, m):
        """Barrier: the echo's side of the WebSocket with marker m ended (close or EOF)."""
        ends = self.echo.wait_frames(lambda f: m in f["path"] and f["event"] in ("close",
                                                                                  "eof"))
        self.assertTrue(ends, "the upstream side of the WebSocket was not closed")

    def check_reflect(self, compression):
        m = self.marker()
        h = self.handles["leak"]
        got, ext = run_async(ws_exchange(
            self.uri(API, m), ws_tunnel(self.sg, API, self.echo.port), self.ws_ctx(), API,
            self.auth(), compression))
        rec = self.assert_upstream_secret(m)
        self.check_reflect_messages(got, ("Bearer " + h).encode())
        return rec, ext

    def test_reflected_secret_scrubbed_in_frames(self):
        """Text, binary, JSON-escaped, base64, fragmented with pings, 3-byte TLS records."""
        self.check_reflect(None)

    def test_reflected_secret_scrubbed_deflate_offered(self):
        rec, ext = self.check_reflect("deflate")
        self.assertEqual(self.header_of(rec, "Sec-WebSocket-Extensions"), [],
                         "permessage-deflate offer forwarded")
        self.assertEqual(ext, [])

    def test_handle_in_text_frame_swapped(self):
        """A handle in a text frame reaches the upstream as the secret, and its echo comes
        back with the handle."""
        m = self.marker()
        h = self.handles["leak"]
        got, _ = run_async(self._send_one(API, m, "tok=" + h))
        msgs = self.echo.wait_frames(lambda f: m in f["path"] and f["event"] == "message")
        self.assertTrue([f["data"] for f in msgs] == ["tok=" + LEAK],
                        "upstream got %s, want the secret" % R([f["data"] for f in msgs]))
        for msg in got:
            self.assert_no_secret_forms(msg, LEAK, "the echoed message")
        self.assert_value(got, ["tok=" + h], "the echoed messages")

    async def _send_one(self, host, m, text, headers=()):
        ws = await ws_connect(self.uri(host, m), ws_tunnel(self.sg, host, self.echo.port),
                              self.ws_ctx(), host, headers, None)
        try:
            await ws.send(text)
            return [await asyncio.wait_for(ws.recv(), 10)], ws
        finally:
            await ws.close()

    def test_handle_in_binary_frame_needs_the_credentials_consent(self):
        """A handle in a binary frame: swapped when its credential sets
        allow_websocket_binary, else Close 1008 handle_in_binary_frame, frame not sent."""
        import websockets
        m = self.marker()
        hb = self.handles["leakbin"]
        got, _ = run_async(self._send_one(API, m, b"\x00\x01bin=" + hb.encode() + b"\xff"))
        msgs = self.echo.wait_frames(lambda f: m in f["path"] and f["event"] == "message")
        self.assertTrue([f["data"] for f in msgs] == ["\x00\x01bin=" + SECRETS["leakbin"] +
                                                      "\xff"], "upstream did not get the "
                        "secret in the binary message: %s" % R([f["data"] for f in msgs]))
        self.assert_value(got, [b"\x00\x01bin=" + hb.encode() + b"\xff"], "the echo")
        m = self.marker()
        try:
            got, _ = run_async(self._send_one(API, m, b"bin=" + self.handles["leak"].encode()))
            self.fail("a handle of a credential without allow_websocket_binary was relayed "
                      "in a binary frame: got %s" % R(got))
        except websockets.exceptions.ConnectionClosed as e:
            closed = e.rcvd
        self.assertTrue(closed is not None and closed.code == 1008, "want Close 1008, got %r"
                        % (closed,))
        self.assertIn("handle_in_binary_frame", closed.reason)
        self.upstream_end(m)
        self.assertFalse([f for f in self.echo.frames if m in f["path"]
                          and f["event"] in ("frame", "message") and f["opcode"] in (0, 1, 2)],
                         "the binary frame reached the upstream")

    def test_handle_toward_host_out_of_scope_close_1008(self):
        import websockets
        m = self.marker()
        h = self.handles["leak"]          # its credential's hosts: API only
        try:
            got, _ = run_async(self._send_one(OTHER, m, "tok=" + h))
            self.fail("the out-of-scope frame was relayed: got %s" % R(got))
        except websockets.exceptions.ConnectionClosed as e:
            closed = e.rcvd
        self.assertTrue(closed is not None and closed.code == 1008,
                        "want Close 1008, got %r" % (closed,))
        self.assertIn("host_out_of_scope", closed.reason)
        self.upstream_end(m)
        sent = [f["data"] for f in self.echo.frames if m in f["path"]
                and f["event"] in ("frame", "message") and f["opcode"] in (0, 1, 2)]
        self.assertTrue(not sent, "the frame reached the upstream: %s" % R(sent))
        self.wait_audit(lambda ln: ln.get("event") == "exfiltration" and
                        ln.get("error") == "host_out_of_scope", "exfiltration audit line")

    def raw_ws(self, m, extra=""):
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(upgrade_request(API, self.echo.port, "/ws?m=%s%s" % (m, extra), self.auth()))
        r = c.read_response()
        self.assertEqual(r.status, 101, R(r))
        return c

    def assert_close(self, c, code):
        fr = sgtest.ws_read_frame(c.reader(10))
        self.assertTrue(fr is not None, "connection ended without a Close frame")
        self.assertTrue(fr[0] == 0x8, "want Close %d, got opcode %d: %s"
                        % (code, fr[0], R(fr[1][:100])))
        self.assertEqual(int.from_bytes(fr[1][:2], "big"), code)

    def test_unmasked_client_frame_close_1002(self):
        m = self.marker()
        c = self.raw_ws(m)
        c.send(sgtest.ws_frame(0x1, b"unmasked-" + m.encode(), mask=False))
        self.assert_close(c, 1002)
        self.upstream_end(m)
        self.assertTrue(not [f for f in self.echo.frames if m in f["path"]
                             and "unmasked-" in f["data"]], "the bad frame reached the upstream")

    def test_oversized_frame_header_close_1009(self):
        m = self.marker()
        c = self.raw_ws(m)
        c.send(b"\x81\xff" + (1 << 40).to_bytes(8, "big") + os.urandom(4) + b"x" * 64)
        self.assert_close(c, 1009)

    def test_extension_in_101_is_502(self):
        m = self.marker()
        c = sgtest.open_intercepted(self.sg, API, self.echo.port)
        self.addCleanup(c.close)
        c.send(upgrade_request(API, self.echo.port, "/ws?m=%s&ext=1" % m, self.auth() + [
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]))
        r = c.read_response()
        rec = self.assert_upstream_secret(m)
        self.assertTrue(r.status == 502, "want 502 upstream_error, got %s" % R(r))
        sgtest.assert_error(self, r, 502, "upstream_error")
        self.assertEqual(self.header_of(rec, "Sec-WebSocket-Extensions"), [],
                         "permessage-deflate offer forwarded")
