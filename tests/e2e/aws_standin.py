"""A local HTTPS stand-in for AWS (S3, STS, SQS) for sealgate's tests.

It knows ONE real credential set (access key id, secret, optional session token) given at
start, plus the temporary credentials its own STS AssumeRole issued, and checks EVERY
request's SigV4 signature the way AWS does. The header / presigned signature is checked
with botocore's own pure-Python signer classes (SigV4Auth, S3SigV4Auth, SigV4QueryAuth,
S3SigV4QueryAuth: the canonical request is rebuilt from what was received, with the
client's SignedHeaders list and values); aws-chunked chunk and trailer signatures are
checked by this module's own code, written from the S3 documentation. Debian's clients
sign with awscrt (boto3) or botocore (awscli v2's vendored copy), so a request the
stand-in accepts was signed by one implementation and verified by another.

Failures answer exactly as the real services do, so botocore raises the same ClientError:
  S3        403/400 <Error><Code>SignatureDoesNotMatch|InvalidAccessKeyId|InvalidToken|
            ExpiredToken|RequestTimeTooSkewed|AccessDenied|...</Code>...</Error>
            (SignatureDoesNotMatch carries StringToSign and CanonicalRequest, like S3)
  STS, SQS  403 <ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch|
            InvalidClientTokenId|...</Code>...</ErrorResponse>; SQS JSON 1.0:
            {"__type": "...#Code", "message"} with x-amzn-query-error: Code;Sender

Served:
  S3   PutObject (hex x-amz-content-sha256, UNSIGNED-PAYLOAD, aws-chunked
       STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] with every chunk and the trailer
       signature verified, STREAMING-UNSIGNED-PAYLOAD-TRAILER with the trailer checksum
       verified), GetObject (Range), HeadObject, DeleteObject, ListObjectsV2, ListBuckets,
       HeadBucket, Create/UploadPart/Complete/AbortMultipartUpload; virtual-hosted and
       path-style; presigned GET/PUT (X-Amz-Expires checked against the stand-in's clock)
  STS  GetCallerIdentity, AssumeRole (query/form protocol, XML answers). Credentials that
       AssumeRole issues (ASIA... id, secret, session token, expiration) are accepted by
       S3/SQS/STS until they expire. The Policy parameter is kept in the record.
  SQS  SendMessage, GetQueueUrl: JSON 1.0 (X-Amz-Target: AmazonSQS.*) and the query
       protocol (Action=SendMessage: what Debian's boto3 1.26 / botocore 1.29 send)

Every request is recorded BEFORE its answer is written (so a client that got an answer
finds its record): method, host, target, headers, body size/hash (first 64 KiB kept),
SNI, service, operation, auth kind, access key id, which credential signed it, whether
the signature verified, chunks verified, status, error code, op params.

Use (in-process, threads; like sgtest.EchoUpstream):
    sa = AwsStandin(self, access_key_id=AK, secret=SK, session_token=None,
                    buckets=("mybucket",), queues=("myqueue",))
    sa.host, sa.port, sa.ca_file, sa.resolve_map()  # {aws name: address} for upstream.resolve
    sa.endpoint("s3")                                 # https://s3.us-east-1.amazonaws.com:PORT
    sa.records / sa.wait_records(pred) / sa.find(text) / sa.objects("mybucket")
    sa.clock_offset = -3600                           # the stand-in's clock (seconds)
    sa.stop()                                         # also a cleanup when an owner is given
In a network namespace: construct it inside sandbox-style `with in_netns(NAME):` (the
socket stays there) and give host= an address of that namespace; port=443 is fine there
(a namespace the test created has nothing else listening), so unmodified clients reach
it at the real names with the default port. Out of process (stop by pid):
AwsStandinProcess(owner, netns=None, **same options): the same API, records read from a
JSON-lines file the child appends to before answering.

ConnectRelay: a CONNECT proxy on 127.0.0.1:0 that splices tunnels for the stand-in's
names to the stand-in (whatever port the client asked for) and refuses others (recorded):
how a client with default endpoints (HTTPS_PROXY, no endpoint_url) reaches it on loopback.
"""
import base64
import email.utils
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape as _xml_escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEFAULT_ADDR = "127.0.0.5"          # not used by sgtest (127.0.0.1-3 are)
DEFAULT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
ACCOUNT = "123456789012"
MAX_BODY = 64 << 20                 # larger uploads are refused (413): tests stay small
MAX_SKEW_S = 900                    # AWS: 15 minutes either way
MAX_PRESIGN_S = 604800              # AWS: presigned URLs live at most 7 days
MIN_PART = 5 << 20                  # S3: every multipart part but the last
RECORD_BODY_KEEP = 65536            # body bytes kept in a record (the hash covers all)
MAX_CHUNK_LINE = 4096               # aws-chunked chunk header / trailer line bound
MIN_CHUNK = 8192                    # S3: every aws-chunked chunk but the last data one
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
SQS_NS = "http://queue.amazonaws.com/doc/2012-11-05/"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIG_MISMATCH_MSG = ("The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method. Consult "
                    "the service documentation for details.")
S3_SIG_MISMATCH_MSG = ("The request signature we calculated does not match the signature you "
                       "provided. Check your key and signing method.")
STREAMING = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
             "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class AwsError(Exception):
    """An AWS error answer: status, code, message, extra fields (S3: more XML elements)."""

    def __init__(self, status, code, message, **extra):
        super().__init__("%s %s: %s" % (status, code, message))
        self.status, self.code, self.message, self.extra = status, code, message, extra


class Credential:
    """One credential the stand-in accepts. kind: 'primary' or 'assumed'."""

    def __init__(self, access_key_id, secret, token=None, kind="primary", expires=None,
                 arn=None, user_id=None):
        self.access_key_id, self.secret, self.token = access_key_id, secret, token
        self.kind, self.expires, self.arn, self.user_id = kind, expires, arn, user_id


# --------------------------------------------------------------------------- names

def standin_names(regions=DEFAULT_REGIONS, buckets=()):
    """(DNS names for the certificate, concrete names for upstream.resolve) of the
    endpoints the stand-in serves in these regions, with virtual hosts for buckets."""
    cert = ["s3.amazonaws.com", "*.s3.amazonaws.com", "sts.amazonaws.com",
            "queue.amazonaws.com"]
    for r in regions:
        cert += ["s3.%s.amazonaws.com" % r, "*.s3.%s.amazonaws.com" % r,
                 "sts.%s.amazonaws.com" % r, "sqs.%s.amazonaws.com" % r]
    concrete = [n for n in cert if not n.startswith("*.")]
    for b in buckets:
        concrete += ["%s.s3.amazonaws.com" % b] + ["%s.s3.%s.amazonaws.com" % (b, r)
                                                   for r in regions]
    return cert, concrete


_S3_HOST = re.compile(r"^(?:(?P<bucket>[a-z0-9][a-z0-9.-]*)\.)?s3(?:[.-](?P<region>"
                      r"[a-z]{2}(?:-[a-z]+)+-\d+))?\.amazonaws\.com$")
_STS_HOST = re.compile(r"^sts(?:\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+))?\.amazonaws\.com$")
_SQS_HOST = re.compile(r"^sqs\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com$")


def classify_host(hostname):
    """(service, region, bucket) of an AWS host name; service None when the name is not
    one (an IP literal: then the signature's scope names the service, S3 path-style)."""
    h = hostname.lower().rstrip(".")
    m = _S3_HOST.match(h)
    if m:
        return "s3", m.group("region") or "us-east-1", m.group("bucket")
    m = _STS_HOST.match(h)
    if m:
        return "sts", m.group("region") or "us-east-1", None
    m = _SQS_HOST.match(h)
    if m:
        return "sqs", m.group("region"), None
    if h == "queue.amazonaws.com":
        return "sqs", "us-east-1", None
    return None, None, None


def _split_host(host):
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- signatures

def parse_authorization(value):
    """Fields of 'AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
    SignedHeaders=a;b, Signature=HEX' as a dict; AwsError (400) when malformed."""
    alg, _, rest = value.strip().partition(" ")
    if alg != "AWS4-HMAC-SHA256":
        raise AwsError(400, "InvalidArgument", "Unsupported Authorization Type",
                       ArgumentName="Authorization", ArgumentValue=alg)
    fields = {}
    for part in rest.split(","):
        k, eq, v = part.strip().partition("=")
        if eq:
            fields[k] = v
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise AwsError(400, "AuthorizationHeaderMalformed",
                       "The authorization header is malformed; missing %s." % missing[0])
    return _scope_fields(fields["Credential"], fields["SignedHeaders"], fields["Signature"])


def _scope_fields(credential, signed_headers, signature):
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
        raise AwsError(400, "AuthorizationHeaderMalformed",
                       "The authorization header is malformed; the Credential is mal-formed; "
                       "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    names = signed_headers.split(";")
    if any(n != n.lower() or not n for n in names) or names != sorted(names):
        raise AwsError(400, "AuthorizationHeaderMalformed",
                       "The authorization header is malformed; SignedHeaders are not "
                       "lower-case, sorted and non-empty.")
    return {"access_key_id": parts[0], "date": parts[1], "region": parts[2],
            "service": parts[3], "signed_headers": names, "signature": signature}


def botocore_signature(service, region, secret, method, url, signed_values, amz_date,
                       payload_hash, body, s3, presigned):
    """(signature, canonical request, string to sign) computed by botocore's signer
    classes for a received request: url holds the raw path and the query to sign,
    signed_values the (name, value) pairs of the client's SignedHeaders as received,
    payload_hash the x-amz-content-sha256 value to use (S3 header auth) or None."""
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.compat import HTTPHeaders
    from botocore.credentials import Credentials
    base = {(True, True): S3SigV4QueryAuth, (True, False): S3SigV4Auth,
            (False, True): SigV4QueryAuth, (False, False): SigV4Auth}[(s3, presigned)]

    class _Received(base):
        def headers_to_sign(self, request):     # the client's list, not botocore's choice
            hm = HTTPHeaders()
            for k, v in signed_values:
                hm[k] = v
            return hm

    auth = _Received(Credentials("unused", secret), service, region)
    headers = {"X-Amz-Content-SHA256": payload_hash} if payload_hash is not None else {}
    req = AWSRequest(method=method, url=url, headers=headers, data=body)
    req.context["timestamp"] = amz_date
    req.context["payload_signing_enabled"] = True
    cr = auth.canonical_request(req)
    sts = auth.string_to_sign(req, cr)
    return auth.signature(sts, req), cr, sts


def signing_key(secret, date, region, service):
    """The SigV4 signing key (this module's own, for chunk signatures)."""
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _hmac_hex(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class ChunkContext:
    """What aws-chunked verification needs: the signing key, the request's amz date and
    scope, the seed (the request's own signature)."""

    def __init__(self, key, amz_date, scope, seed):
        self.key, self.amz_date, self.scope, self.seed = key, amz_date, scope, seed


def decode_aws_chunked(raw, mode, ctx=None):
    """(data, [(trailer name, value)], chunks verified) of an aws-chunked body.
    mode: the x-amz-content-sha256 value (one of STREAMING). Signed modes check every
    chunk signature in order, each over the previous one (so a replayed, reordered,
    dropped or foreign chunk fails), and the trailer signature. AwsError otherwise."""
    signed = mode != "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    prev = ctx.seed if signed else None
    out, pos, n = [], 0, 0
    while True:
        if len(out) >= 2 and 0 < len(out[-2]) < MIN_CHUNK:
            raise AwsError(403, "InvalidChunkSizeError", "Only the last chunk is allowed to "
                           "have a size less than 8192 bytes")
        line, pos = _chunk_line(raw, pos)
        size_txt, _, ext = line.partition(b";")
        if not re.fullmatch(rb"[0-9a-fA-F]{1,8}", size_txt):
            raise AwsError(400, "IncompleteBody", "Bad aws-chunked chunk size.")
        size = int(size_txt, 16)
        data = raw[pos:pos + size]
        if len(data) != size:
            raise AwsError(400, "IncompleteBody", "The body ended inside a chunk.")
        pos += size
        if signed:
            prev = _check_chunk(ctx, prev, ext, data)
            n += 1
        elif ext:
            raise AwsError(400, "InvalidRequest", "Unsigned chunks carry no extension.")
        out.append(data)
        if size == 0:
            break
        if raw[pos:pos + 2] != b"\r\n":
            raise AwsError(400, "IncompleteBody", "A chunk is not followed by CRLF.")
        pos += 2
    trailers, tsig, pos = _trailer_lines(raw, pos)
    if pos != len(raw):
        raise AwsError(400, "IncompleteBody", "Bytes after the aws-chunked body.")
    if not mode.endswith("-TRAILER") and (trailers or tsig is not None):
        raise AwsError(400, "MalformedTrailerError", "Trailing headers on a payload that "
                       "announced none.")
    if signed and mode.endswith("-TRAILER"):
        _check_trailer_sig(ctx, prev, trailers, tsig)
    elif tsig is not None:
        raise AwsError(400, "InvalidRequest", "A trailer signature on an unsigned trailer.")
    return b"".join(out), trailers, n


def _chunk_line(raw, pos):
    end = raw.find(b"\r\n", pos, pos + MAX_CHUNK_LINE)
    if end < 0:
        raise AwsError(400, "IncompleteBody", "The body ended inside a chunk header.")
    return raw[pos:end], end + 2


def _check_chunk(ctx, prev, ext, data):
    m = re.fullmatch(rb"chunk-signature=([0-9a-f]{64})", ext)
    if not m:
        raise AwsError(400, "IncompleteBody", "A chunk without chunk-signature.")
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", ctx.amz_date, ctx.scope, prev,
                     EMPTY_SHA256, hashlib.sha256(data).hexdigest()])
    want = _hmac_hex(ctx.key, sts)
    got = m.group(1).decode()
    if not hmac.compare_digest(want, got):
        raise AwsError(403, "SignatureDoesNotMatch", S3_SIG_MISMATCH_MSG,
                       StringToSign=sts, SignatureProvided=got)
    return got


def _trailer_lines(raw, pos):
    """([(name, value)], trailer signature or None, position after the empty line)."""
    trailers, tsig = [], None
    while True:
        line, pos = _chunk_line(raw, pos)
        if not line:
            return trailers, tsig, pos
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise AwsError(400, "MalformedTrailerError", "The request contained trailing "
                           "data that was not well-formed or did not conform to our "
                           "published schema.")
        if name.strip().lower() == "x-amz-trailer-signature":
            tsig = value.strip()
        elif tsig is not None:
            raise AwsError(400, "MalformedTrailerError", "A trailer after the signature.")
        else:
            trailers.append((name.strip().lower(), value.strip()))


def _check_trailer_sig(ctx, prev, trailers, tsig):
    if tsig is None or not _HEX64.fullmatch(tsig):
        raise AwsError(403, "SignatureDoesNotMatch", S3_SIG_MISMATCH_MSG)
    text = "".join("%s:%s\n" % kv for kv in trailers)
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", ctx.amz_date, ctx.scope, prev,
                     hashlib.sha256(text.encode("latin-1")).hexdigest()])
    if not hmac.compare_digest(_hmac_hex(ctx.key, sts), tsig):
        raise AwsError(403, "SignatureDoesNotMatch", S3_SIG_MISMATCH_MSG,
                       StringToSign=sts, SignatureProvided=tsig)


def checksum_b64(name, data):
    """Base64 checksum of data for an x-amz-checksum-NAME header/trailer (crc32, crc32c,
    sha1, sha256); None for an algorithm this stand-in does not know."""
    import zlib
    if name == "crc32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    if name == "crc32c":
        return base64.b64encode(_crc32c(data).to_bytes(4, "big")).decode()
    if name in ("sha1", "sha256"):
        return base64.b64encode(hashlib.new(name, data).digest()).decode()
    return None


def _crc32c(data):
    try:
        from awscrt import checksums
        return checksums.crc32c(data)
    except ImportError:          # a slow fallback: tests use small bodies with crc32c
        crc = 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
        return crc ^ 0xFFFFFFFF


# --------------------------------------------------------------------------- requests

class Request:
    """One received request: method, host (Host header), hostname, target, path and
    query (raw), headers [(name, value)], body (bytes as on the wire, HTTP chunked framing
    removed), sni."""

    def __init__(self, method, target, headers, body, sni):
        self.method, self.target, self.headers, self.body, self.sni = (
            method, target, headers, body, sni)
        self.host = (self.header("Host") or "").strip().lower()
        self.hostname = _split_host(self.host)
        self.path, _, self.query = target.partition("?")

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def query_pairs(self):
        """[(raw name, raw value)] as sent."""
        if not self.query:
            return []
        return [tuple(p.partition("=")[::2]) for p in self.query.split("&")]

    def params(self):
        """Query parameters decoded: {name: first value}."""
        return {urllib.parse.unquote(k): urllib.parse.unquote(v)
                for k, v in reversed(self.query_pairs())}


def _canonical_query_url(pairs):
    """The pairs re-encoded the way AWS canonicalises (decoded, then RFC 3986)."""
    q = lambda s: urllib.parse.quote(urllib.parse.unquote(s), safe="-_.~")  # noqa: E731
    return "&".join("%s=%s" % (q(k), q(v)) for k, v in pairs)


def _now_iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _amz_time(amz_date):
    import calendar
    try:
        return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except (ValueError, TypeError):
        return None


def _x(tag, value):
    return "<%s>%s</%s>" % (tag, _xml_escape(str(value)), tag)


# --------------------------------------------------------------------------- state

class StandinState:
    """Credentials, storage and the record; every method is thread-safe. The request
    logic (auth, S3/STS/SQS operations) lives here, the HTTP framing in the handler."""

    def __init__(self, credential, regions, buckets, queues, account, clock_offset=0.0,
                 record_sink=None):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.creds = {credential.access_key_id: credential}
        self.primary = credential
        self.regions, self.account = tuple(regions), account
        self.buckets = {b: {} for b in buckets}
        self.queues = {q: [] for q in queues}
        self.uploads = {}
        self.records = []
        self.clock_offset = clock_offset
        self.record_sink = record_sink

    def now(self):
        return time.time() + self.clock_offset

    # -- the record
    def record(self, rec):
        with self.lock:
            rec["seq"] = len(self.records) + 1
            self.records.append(rec)
            if self.record_sink is not None:
                self.record_sink.write(json.dumps(rec) + "\n")
                self.record_sink.flush()
            self.changed.notify_all()

    # -- entry point
    def handle(self, req):
        """(status, [(header, value)], body bytes, record dict) for a request."""
        rec = self._new_record(req)
        svc, region, vbucket = classify_host(req.hostname)
        rec.update(service=svc, region=region)
        try:
            if svc is None and not _is_ip(req.hostname):
                raise AwsError(400, "InvalidURI", "The stand-in serves no host %r."
                               % req.hostname)
            auth = self._authenticate(req, rec, svc, region)
            svc = svc or auth["service"]
            rec["service"] = svc
            status, headers, body = self._operation(req, rec, svc, auth, vbucket)
        except AwsError as e:
            svc = svc or rec.get("service") or "s3"
            rec["error"] = e.code
            status, headers, body = self._error(req, svc, e)
        rec["status"] = status
        headers = list(headers) + [("x-amz-request-id", rec["request_id"])]
        return status, headers, body, rec

    def _new_record(self, req):
        return {"method": req.method, "host": req.host, "target": req.target,
                "path": req.path, "headers": [list(h) for h in req.headers],
                "body_len": len(req.body), "body_sha256": hashlib.sha256(req.body).hexdigest(),
                "body": req.body[:RECORD_BODY_KEEP].decode("latin-1"), "sni": req.sni,
                "service": None, "region": None, "operation": None, "auth": None,
                "access_key_id": None, "credential": None, "verified": False,
                "chunks_verified": 0, "payload": req.header("x-amz-content-sha256"),
                "decoded_len": None, "status": None, "error": None, "params": {},
                "request_id": uuid.uuid4().hex[:16].upper(), "time": self.now()}

    # -- authentication
    def _authenticate(self, req, rec, svc, region):
        """The verified auth: {access_key_id, credential, service, region, amz_date,
        scope, signature, kind}; AwsError when it does not verify."""
        hdr = req.header("Authorization")
        params = req.params()
        if ((hdr or "").startswith("AWS ") or
                (hdr is None and "X-Amz-Algorithm" not in params and "Signature" in params)):
            rec["auth"] = "sigv2"
            raise AwsError(400, "InvalidRequest", "The authorization mechanism you have "
                           "provided is not supported. Please use AWS4-HMAC-SHA256.")
        if hdr is None and "X-Amz-Algorithm" not in params:
            raise self._missing_auth(svc)
        kind = "header" if hdr is not None else "query"
        rec["auth"] = kind
        if kind == "header":
            f = parse_authorization(hdr)
            amz_date = req.header("X-Amz-Date") or ""
            token = req.header("X-Amz-Security-Token")
        else:
            f = self._presigned_fields(params)
            amz_date, token = params.get("X-Amz-Date", ""), params.get("X-Amz-Security-Token")
        rec["access_key_id"] = f["access_key_id"]
        cred = self._credential(f["access_key_id"], token, svc or f["service"])
        rec["credential"] = cred.kind
        self._check_scope(f, svc or f["service"], region or f["region"], amz_date)
        self._check_time(kind, f["service"], amz_date, params)
        self._verify(req, f, cred, amz_date, kind)
        rec["verified"] = True
        return {"access_key_id": cred.access_key_id, "credential": cred, "kind": kind,
                "service": f["service"], "region": f["region"], "amz_date": amz_date,
                "signature": f["signature"],
                "scope": "%s/%s/%s/aws4_request" % (f["date"], f["region"], f["service"])}

    def _missing_auth(self, svc):
        if svc in (None, "s3"):
            return AwsError(403, "AccessDenied", "Access Denied")
        return AwsError(403, "MissingAuthenticationToken",
                        "Request is missing Authentication Token")

    def _presigned_fields(self, params):
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise AwsError(400, "AuthorizationQueryParametersError",
                           "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        for k in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders",
                  "X-Amz-Signature", "X-Amz-Expires"):
            if k not in params:
                raise AwsError(400, "AuthorizationQueryParametersError",
                               "Query-string authentication version 4 requires the "
                               "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
                               "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires "
                               "parameters.")
        return _scope_fields(params["X-Amz-Credential"], params["X-Amz-SignedHeaders"],
                             params["X-Amz-Signature"])

    def _credential(self, akid, token, svc):
        with self.lock:
            cred = self.creds.get(akid)
        if cred is None:
            if svc == "s3":
                raise AwsError(403, "InvalidAccessKeyId", "The AWS Access Key Id you "
                               "provided does not exist in our records.", AWSAccessKeyId=akid)
            raise AwsError(403, "InvalidClientTokenId",
                           "The security token included in the request is invalid.")
        if (token or None) != cred.token:
            if svc == "s3":
                raise AwsError(400, "InvalidToken",
                               "The provided token is malformed or otherwise invalid.")
            raise AwsError(403, "InvalidClientTokenId",
                           "The security token included in the request is invalid.")
        if cred.expires is not None and self.now() >= cred.expires:
            if svc == "s3":
                raise AwsError(400, "ExpiredToken", "The provided token has expired.")
            raise AwsError(403, "ExpiredToken",
                           "The security token included in the request is expired")
        return cred

    def _check_scope(self, f, svc, region, amz_date):
        if f["service"] != svc:
            raise self._scope_error(svc, "Credential should be scoped to correct service: "
                                    "'%s'." % svc, f)
        if f["region"] != region or region not in self.regions:
            raise self._scope_error(svc, "Credential should be scoped to a valid region.", f,
                                    region)
        if amz_date[:8] != f["date"]:
            raise self._scope_error(svc, "Date in Credential scope does not match YYYYMMDD "
                                    "from ISO-8601 version of date from HTTP: '%s' != '%s'"
                                    % (f["date"], amz_date[:8]), f)

    def _scope_error(self, svc, message, f, region=None):
        if svc == "s3":
            if region is not None:
                return AwsError(400, "AuthorizationHeaderMalformed", "The authorization "
                                "header is malformed; the region '%s' is wrong; expecting "
                                "'%s'" % (f["region"], region), Region=region)
            return AwsError(400, "AuthorizationHeaderMalformed",
                            "The authorization header is malformed; " + message)
        return AwsError(403, "SignatureDoesNotMatch", message)

    def _check_time(self, kind, svc, amz_date, params):
        t = _amz_time(amz_date)
        if t is None:
            if svc == "s3":
                raise AwsError(403, "AccessDenied", "AWS authentication requires a valid "
                               "Date or x-amz-date header")
            raise AwsError(400, "IncompleteSignature", "Authorization header requires "
                           "existence of either a 'X-Amz-Date' or a 'Date' header.")
        now = self.now()
        if kind == "query":
            expires = params.get("X-Amz-Expires", "")
            if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_S:
                raise AwsError(400, "AuthorizationQueryParametersError", "X-Amz-Expires must "
                               "be less than a week (in seconds) that is 604800")
            if now > t + int(expires):
                raise AwsError(403, "AccessDenied", "Request has expired",
                               **{"X-Amz-Expires": expires,
                                  "Expires": _now_iso(t + int(expires)),
                                  "ServerTime": _now_iso(now)})
            if t > now + MAX_SKEW_S:
                raise AwsError(403, "AccessDenied", "Request is not valid yet")
            return
        if abs(now - t) > MAX_SKEW_S:
            if svc == "s3":
                raise AwsError(403, "RequestTimeTooSkewed", "The difference between the "
                               "request time and the current time is too large.",
                               RequestTime=amz_date, ServerTime=_now_iso(now),
                               MaxAllowedSkewMilliseconds="900000")
            raise AwsError(403, "SignatureDoesNotMatch", "Signature expired: %s is now "
                           "earlier than %s (%s - 15 min.)" % (amz_date, time.strftime(
                               "%Y%m%dT%H%M%SZ", time.gmtime(now - MAX_SKEW_S)),
                               time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))))

    def _verify(self, req, f, cred, amz_date, kind):
        s3 = f["service"] == "s3"
        if "host" not in f["signed_headers"]:
            raise AwsError(400 if s3 else 403, "AuthorizationHeaderMalformed" if s3
                           else "SignatureDoesNotMatch",
                           "'Host' must be a 'SignedHeader' in the AWS Authorization.")
        signed_values = []
        for name in f["signed_headers"]:
            values = req.header_all(name)
            if not values:
                raise AwsError(403, "AccessDenied" if s3 else "SignatureDoesNotMatch",
                               "The signed header %r is not in the request." % name)
            signed_values += [(name, v) for v in values]
        pairs = req.query_pairs()
        if kind == "query":
            pairs = [p for p in pairs if urllib.parse.unquote(p[0]) != "X-Amz-Signature"]
        cq = _canonical_query_url(pairs)
        url = "https://%s%s%s" % (req.host or "stand-in", req.path, "?" + cq if cq else "")
        payload = None
        if s3 and kind == "header":
            payload = req.header("x-amz-content-sha256")
            if payload is None:
                raise AwsError(400, "InvalidRequest", "Missing required header for this "
                               "request: x-amz-content-sha256")
        want, cr, sts = botocore_signature(f["service"], f["region"], cred.secret,
                                           req.method, url, signed_values, amz_date,
                                           payload, req.body, s3, kind == "query")
        if not hmac.compare_digest(want, f["signature"]):
            if s3:
                raise AwsError(403, "SignatureDoesNotMatch", S3_SIG_MISMATCH_MSG,
                               AWSAccessKeyId=f["access_key_id"], StringToSign=sts,
                               SignatureProvided=f["signature"],
                               StringToSignBytes=" ".join("%02x" % b for b in sts.encode()),
                               CanonicalRequest=cr, CanonicalRequestBytes=" ".join(
                                   "%02x" % b for b in cr.encode()))
            raise AwsError(403, "SignatureDoesNotMatch", SIG_MISMATCH_MSG)

    # -- errors
    def _error(self, req, svc, e):
        rid = uuid.uuid4().hex[:16].upper()
        if svc == "s3":
            if req.method == "HEAD":
                return e.status, [("Content-Length", "0")], b""
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + _x("Code", e.code)
                    + _x("Message", e.message) + "".join(_x(k, v) for k, v in e.extra.items())
                    + _x("RequestId", rid) + _x("HostId", base64.b64encode(
                        os.urandom(48)).decode()) + "</Error>")
            return e.status, [("Content-Type", "application/xml")], body.encode()
        if svc == "sqs" and self._is_json(req):
            body = json.dumps({"__type": "com.amazon.coral.service#" + e.code,
                               "message": e.message})
            return e.status, [("Content-Type", "application/x-amz-json-1.0"),
                              ("x-amzn-query-error", "%s;Sender" % e.code),
                              ("x-amzn-RequestId", rid)], body.encode()
        ns = STS_NS if svc == "sts" else SQS_NS
        body = ('<ErrorResponse xmlns="%s"><Error><Type>Sender</Type>%s%s%s</Error>%s'
                '</ErrorResponse>' % (ns, _x("Code", e.code), _x("Message", e.message),
                                      "<Detail/>" if svc == "sqs" else "",
                                      _x("RequestId", rid)))
        return e.status, [("Content-Type", "text/xml")], body.encode()

    @staticmethod
    def _is_json(req):
        return (req.header("X-Amz-Target") or "").startswith("AmazonSQS.")

    # -- operations
    def _operation(self, req, rec, svc, auth, vbucket):
        if svc == "s3":
            from_host = vbucket is not None
            return S3Ops(self, req, rec, auth).run(vbucket, from_host)
        if svc == "sts":
            return self._sts(req, rec, auth)
        return self._sqs(req, rec, auth)

    def _form(self, req):
        if req.method == "POST":
            return {k: v[0] for k, v in urllib.parse.parse_qs(
                req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        return {k: v for k, v in req.params().items() if not k.startswith("X-Amz-")}

    def _sts(self, req, rec, auth):
        p = self._form(req)
        op = p.get("Action")
        rec["operation"] = op
        rec["params"] = {k: v for k, v in p.items() if k not in ("Action", "Version")}
        cred = auth["credential"]
        if op == "GetCallerIdentity":
            body = ("<GetCallerIdentityResult>%s%s%s</GetCallerIdentityResult>"
                    % (_x("Arn", cred.arn), _x("UserId", cred.user_id),
                       _x("Account", self.account)))
        elif op == "AssumeRole":
            body = self._assume_role(p, rec)
        else:
            raise AwsError(400, "InvalidAction", "Could not find operation %s for version "
                           "2011-06-15" % op)
        return self._query_ok(STS_NS, op, body, rec)

    def _query_ok(self, ns, op, result, rec):
        body = ('<%sResponse xmlns="%s">%s<ResponseMetadata>%s</ResponseMetadata></%sResponse>'
                % (op, ns, result, _x("RequestId", rec["request_id"]), op))
        return 200, [("Content-Type", "text/xml")], body.encode()

    def _assume_role(self, p, rec):
        arn, name = p.get("RoleArn", ""), p.get("RoleSessionName", "")
        m = re.fullmatch(r"arn:aws:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)", arn)
        if not m or not re.fullmatch(r"[\w+=,.@-]{2,64}", name):
            raise AwsError(400, "ValidationError", "1 validation error detected: RoleArn or "
                           "RoleSessionName is not valid")
        duration = int(p.get("DurationSeconds", "3600") or 0)
        if not 900 <= duration <= 43200:
            raise AwsError(400, "ValidationError", "The requested DurationSeconds exceeds "
                           "the MaxSessionDuration set for this role.")
        if "Policy" in p:
            try:
                json.loads(p["Policy"])
            except ValueError:
                raise AwsError(400, "MalformedPolicyDocument", "The policy is not in the "
                               "valid JSON format.")
        role_id = "AROA" + hashlib.sha256(arn.encode()).hexdigest()[:17].upper()
        akid = "ASIA" + base64.b32encode(os.urandom(10)).decode()
        cred = Credential(akid, base64.b64encode(os.urandom(30)).decode(),
                          "IQoJb3JpZ2luX2Vj" + base64.b64encode(os.urandom(240)).decode(),
                          kind="assumed", expires=self.now() + duration,
                          arn="arn:aws:sts::%s:assumed-role/%s/%s" % (m.group(1),
                                                                      m.group(2), name),
                          user_id="%s:%s" % (role_id, name))
        with self.lock:
            self.creds[akid] = cred
        rec["issued_access_key_id"] = akid
        return ("<AssumeRoleResult><AssumedRoleUser>%s%s</AssumedRoleUser><Credentials>"
                "%s%s%s%s</Credentials><PackedPolicySize>6</PackedPolicySize>"
                "</AssumeRoleResult>" % (_x("AssumedRoleId", cred.user_id), _x("Arn", cred.arn),
                                         _x("AccessKeyId", akid),
                                         _x("SecretAccessKey", cred.secret),
                                         _x("SessionToken", cred.token),
                                         _x("Expiration", _now_iso(cred.expires))))

    def _sqs(self, req, rec, auth):
        json_proto = self._is_json(req)
        if json_proto:
            op = req.header("X-Amz-Target").split(".", 1)[1]
            try:
                p = json.loads(req.body or b"{}")
            except ValueError:
                raise AwsError(400, "SerializationException", "Start of structure or map "
                               "found where not expected.")
        else:
            p = self._form(req)
            op = p.pop("Action", None)
            p.pop("Version", None)
        rec.update(operation=op, params=p, protocol="json" if json_proto else "query")
        if op == "SendMessage":
            result = self._send_message(p, rec)
        elif op == "GetQueueUrl":
            name = self._queue(p.get("QueueName", ""), json_proto)
            result = {"QueueUrl": self._queue_url(name, auth["region"])}
        else:
            raise AwsError(400, "InvalidAction", "The action %s is not valid for this "
                           "endpoint." % op)
        if json_proto:
            return 200, [("Content-Type", "application/x-amz-json-1.0"),
                         ("x-amzn-RequestId", rec["request_id"])], json.dumps(result).encode()
        inner = "".join(_x(k, v) for k, v in result.items())
        return self._query_ok(SQS_NS, op, "<%sResult>%s</%sResult>" % (op, inner, op), rec)

    def _queue(self, name, json_proto):
        with self.lock:
            if name in self.queues:
                return name
        if json_proto:
            raise AwsError(400, "QueueDoesNotExist", "The specified queue does not exist.")
        raise AwsError(400, "AWS.SimpleQueueService.NonExistentQueue",
                       "The specified queue does not exist for this wsdl version.")

    def _queue_url(self, name, region):
        return "https://sqs.%s.amazonaws.com/%s/%s" % (region, self.account, name)

    def _send_message(self, p, rec):
        url = p.get("QueueUrl", "")
        name = self._queue(url.rstrip("/").rsplit("/", 1)[-1], rec["protocol"] == "json")
        body = p.get("MessageBody")
        if not body:
            raise AwsError(400, "MissingParameter", "The request must contain the parameter "
                           "MessageBody.")
        mid = str(uuid.uuid4())
        with self.lock:
            self.queues[name].append({"MessageId": mid, "Body": body})
        rec["message_id"] = mid
        return {"MD5OfMessageBody": hashlib.md5(body.encode()).hexdigest(), "MessageId": mid}


# --------------------------------------------------------------------------- S3

class S3Ops:
    """One S3 request after authentication."""

    def __init__(self, state, req, rec, auth):
        self.st, self.req, self.rec, self.auth = state, req, rec, auth

    def run(self, vbucket, from_host):
        path = self.req.path
        if from_host:
            bucket, key = vbucket, urllib.parse.unquote(path[1:]) if len(path) > 1 else None
        else:
            seg = path[1:].split("/", 1)
            bucket = urllib.parse.unquote(seg[0]) or None
            key = urllib.parse.unquote(seg[1]) if len(seg) > 1 and seg[1] else None
        self.rec["bucket"], self.rec["key"] = bucket, key
        if bucket is None:
            return self._list_buckets()
        with self.st.lock:
            if bucket not in self.st.buckets:
                raise AwsError(404, "NoSuchBucket", "The specified bucket does not exist",
                               BucketName=bucket)
        self.bucket, self.key = bucket, key
        q = self.req.params()
        m = self.req.method
        if key is None:
            if m == "GET" and q.get("list-type") == "2":
                return self._list_v2(q)
            if m == "HEAD":
                return self._op("HeadBucket", 200, [("x-amz-bucket-region", "us-east-1")])
            if m == "GET" and "location" in q:
                return self._op("GetBucketLocation", 200, [("Content-Type", "application/xml")],
                                '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint '
                                'xmlns="%s"/>' % S3_NS)
        elif m == "PUT" and "uploadId" in q:
            return self._upload_part(q)
        elif m == "PUT" and not self.req.header("x-amz-copy-source"):
            return self._put_object()
        elif m in ("GET", "HEAD") and not q.keys() - {"partNumber", "versionId"} - _PRESIGN:
            return self._get_object(m == "HEAD")
        elif m == "DELETE" and "uploadId" in q:
            return self._abort(q)
        elif m == "DELETE":
            return self._delete()
        elif m == "POST" and "uploads" in q:
            return self._create_multipart()
        elif m == "POST" and "uploadId" in q:
            return self._complete(q)
        raise AwsError(501, "NotImplemented", "A header you provided implies functionality "
                       "that is not implemented")

    def _op(self, name, status, headers=(), body=b""):
        self.rec["operation"] = name
        return status, list(headers), body.encode() if isinstance(body, str) else body

    # -- bodies
    def _payload(self):
        """The object bytes of a PUT: the payload hash checked, aws-chunked decoded and
        verified, Content-MD5 and x-amz-checksum-* checked."""
        mode = self.req.header("x-amz-content-sha256")
        body = self.req.body
        if self.auth["kind"] == "query":
            mode = "UNSIGNED-PAYLOAD"
        if mode in STREAMING:
            body = self._chunked(mode)
        elif mode != "UNSIGNED-PAYLOAD":
            if not _HEX64.fullmatch(mode or ""):
                raise AwsError(400, "InvalidArgument", "x-amz-content-sha256 must be "
                               "UNSIGNED-PAYLOAD, STREAMING-... or a valid sha256 value.",
                               ArgumentName="x-amz-content-sha256", ArgumentValue=mode)
            got = hashlib.sha256(body).hexdigest()
            if got != mode:
                raise AwsError(400, "XAmzContentSHA256Mismatch", "The provided "
                               "'x-amz-content-sha256' header does not match what was "
                               "computed.", ClientComputedContentSHA256=mode,
                               S3ComputedContentSHA256=got)
        self._digests(body, [(k.lower(), v) for k, v in self.req.headers])
        return body

    def _chunked(self, mode):
        if "aws-chunked" not in (self.req.header("Content-Encoding") or ""):
            raise AwsError(400, "InvalidRequest", "aws-chunked Content-Encoding required "
                           "with %s." % mode)
        ctx = None
        if mode != "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
            a = self.auth
            ctx = ChunkContext(signing_key(a["credential"].secret, a["scope"][:8],
                                           a["region"], "s3"),
                               a["amz_date"], a["scope"], a["signature"])
        data, trailers, n = decode_aws_chunked(self.req.body, mode, ctx)
        self.rec["chunks_verified"] = n
        declared = self.req.header("x-amz-decoded-content-length")
        if declared is None or not declared.isdigit() or int(declared) != len(data):
            raise AwsError(400, "IncompleteBody", "You did not provide the number of bytes "
                           "specified by the Content-Length HTTP header")
        announced = [t.strip().lower() for t in
                     (self.req.header("x-amz-trailer") or "").split(",") if t.strip()]
        if mode.endswith("-TRAILER") and sorted(announced) != sorted(k for k, _ in trailers):
            raise AwsError(400, "MalformedTrailerError", "The request contained trailing data "
                           "that was not well-formed or did not conform to our published "
                           "schema.")
        self.rec["trailers"] = [list(t) for t in trailers]
        self._digests(data, trailers)
        self.rec["decoded_len"] = len(data)
        return data

    def _digests(self, data, fields):
        for name, value in fields:
            if name == "content-md5":
                if base64.b64encode(hashlib.md5(data).digest()).decode() != value.strip():
                    raise AwsError(400, "BadDigest", "The Content-MD5 you specified did not "
                                   "match what we received.")
            elif name.startswith("x-amz-checksum-") and name != "x-amz-checksum-algorithm":
                algo = name[len("x-amz-checksum-"):]
                want = checksum_b64(algo, data)
                if want is None:
                    raise AwsError(400, "InvalidRequest", "Unsupported checksum %s." % algo)
                if want != value.strip():
                    raise AwsError(400, "BadDigest", "The %s you specified did not match the "
                                   "calculated checksum." % algo.upper())

    # -- objects
    def _meta(self):
        keep = ("content-type", "content-encoding", "content-disposition", "cache-control")
        meta = [(k, v) for k, v in self.req.headers if k.lower().startswith("x-amz-meta-")
                or k.lower() in keep]
        ce = [(k, v) for k, v in meta if k.lower() == "content-encoding"]
        meta = [m for m in meta if m not in ce]
        rest = [c.strip() for k, v in ce for c in v.split(",")
                if c.strip() and c.strip() != "aws-chunked"]
        if rest:
            meta.append(("Content-Encoding", ", ".join(rest)))
        return meta

    def _store(self, data, etag, meta):
        obj = {"data": data, "etag": etag, "meta": meta, "mtime": self.st.now()}
        with self.st.lock:
            self.st.buckets[self.bucket][self.key] = obj
        return obj

    def _put_object(self):
        data = self._payload()
        etag = '"%s"' % hashlib.md5(data).hexdigest()
        self._store(data, etag, self._meta())
        self.rec["object_len"] = len(data)
        return self._op("PutObject", 200, [("ETag", etag), ("Content-Length", "0")])

    def _get_object(self, head):
        with self.st.lock:
            obj = self.st.buckets[self.bucket].get(self.key)
        name = "HeadObject" if head else "GetObject"
        if obj is None:
            self.rec["operation"] = name
            raise AwsError(404, "NoSuchKey", "The specified key does not exist.",
                           Key=self.key)
        data, status = obj["data"], 200
        hs = [("ETag", obj["etag"]), ("Accept-Ranges", "bytes"),
              ("Last-Modified", email.utils.formatdate(obj["mtime"], usegmt=True))]
        hs += obj["meta"] if any(k.lower() == "content-type" for k, _ in obj["meta"]) else (
            obj["meta"] + [("Content-Type", "binary/octet-stream")])
        rng = self.req.header("Range")
        if rng and not head:
            a, b = self._range(rng, len(data))
            if a is not None:
                hs.append(("Content-Range", "bytes %d-%d/%d" % (a, b, len(data))))
                data, status = data[a:b + 1], 206
        hs.append(("Content-Length", str(len(data))))
        return self._op(name, status, hs, b"" if head else data)

    def _range(self, rng, size):
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
        if not m or not (m.group(1) or m.group(2)):
            return None, None                   # ignored, as S3 does
        if m.group(1):
            a = int(m.group(1))
            b = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            a, b = max(0, size - int(m.group(2))), size - 1
        if a >= size or b < a:
            raise AwsError(416, "InvalidRange", "The requested range is not satisfiable",
                           RangeRequested=rng, ActualObjectSize=size)
        return a, b

    def _delete(self):
        with self.st.lock:
            self.st.buckets[self.bucket].pop(self.key, None)
        return self._op("DeleteObject", 204)

    def _list_buckets(self):
        with self.st.lock:
            names = sorted(self.st.buckets)
        cred = self.auth["credential"]
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns="%s">'
                "<Owner>%s%s</Owner><Buckets>%s</Buckets></ListAllMyBucketsResult>"
                % (S3_NS, _x("ID", hashlib.sha256(cred.access_key_id.encode()).hexdigest()),
                   _x("DisplayName", "sealgate-test"),
                   "".join("<Bucket>%s%s</Bucket>" % (_x("Name", n),
                                                      _x("CreationDate", _now_iso(0)))
                           for n in names)))
        return self._op("ListBuckets", 200, [("Content-Type", "application/xml")], body)

    def _list_v2(self, q):
        prefix, delim = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = int(q.get("max-keys", "1000") or 1000)
        start = q.get("start-after", "")
        token = q.get("continuation-token")
        if token:
            start = max(start, base64.urlsafe_b64decode(token.encode()).decode())
        with self.st.lock:
            items = sorted(self.st.buckets[self.bucket].items())
        enc = (lambda s: urllib.parse.quote(s, safe="/")) if q.get("encoding-type") == "url" \
            else (lambda s: s)
        contents, prefixes, last, truncated = [], [], None, False
        for key, obj in items:
            if not key.startswith(prefix) or key <= start:
                continue
            cp = None
            if delim and delim in key[len(prefix):]:
                cp = key[:len(prefix) + key[len(prefix):].index(delim) + len(delim)]
                if prefixes and prefixes[-1] == cp:
                    continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if cp:
                prefixes.append(cp)
                last = cp + "\uffff"
            else:
                contents.append((key, obj))
                last = key
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="%s">' % S3_NS,
               _x("Name", self.bucket), _x("Prefix", enc(prefix)),
               _x("KeyCount", len(contents) + len(prefixes)), _x("MaxKeys", max_keys)]
        if delim:
            out.append(_x("Delimiter", enc(delim)))
        if q.get("encoding-type") == "url":
            out.append(_x("EncodingType", "url"))
        out.append(_x("IsTruncated", "true" if truncated else "false"))
        if token:
            out.append(_x("ContinuationToken", token))
        if truncated:
            out.append(_x("NextContinuationToken",
                          base64.urlsafe_b64encode(last.encode()).decode()))
        for key, obj in contents:
            out.append("<Contents>%s%s%s%s%s</Contents>" % (
                _x("Key", enc(key)), _x("LastModified", _now_iso(obj["mtime"])),
                _x("ETag", obj["etag"]), _x("Size", len(obj["data"])),
                _x("StorageClass", "STANDARD")))
        out += ["<CommonPrefixes>%s</CommonPrefixes>" % _x("Prefix", enc(p)) for p in prefixes]
        out.append("</ListBucketResult>")
        return self._op("ListObjectsV2", 200, [("Content-Type", "application/xml")],
                        "".join(out))

    # -- multipart
    def _create_multipart(self):
        uid = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        with self.st.lock:
            self.st.uploads[uid] = {"bucket": self.bucket, "key": self.key, "parts": {},
                                    "meta": self._meta()}
        self.rec["upload_id"] = uid
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult '
                'xmlns="%s">%s%s%s</InitiateMultipartUploadResult>'
                % (S3_NS, _x("Bucket", self.bucket), _x("Key", self.key), _x("UploadId", uid)))
        return self._op("CreateMultipartUpload", 200, [("Content-Type", "application/xml")],
                        body)

    def _upload(self, q):
        with self.st.lock:
            up = self.st.uploads.get(q.get("uploadId"))
        if up is None or (up["bucket"], up["key"]) != (self.bucket, self.key):
            raise AwsError(404, "NoSuchUpload", "The specified upload does not exist. The "
                           "upload ID may be invalid, or the upload may have been aborted or "
                           "completed.", UploadId=q.get("uploadId"))
        self.rec["upload_id"] = q.get("uploadId")
        return up

    def _upload_part(self, q):
        up = self._upload(q)
        n = q.get("partNumber", "")
        if not n.isdigit() or not 1 <= int(n) <= 10000:
            raise AwsError(400, "InvalidArgument", "Part number must be an integer between "
                           "1 and 10000, inclusive", ArgumentName="partNumber",
                           ArgumentValue=n)
        data = self._payload()
        etag = '"%s"' % hashlib.md5(data).hexdigest()
        with self.st.lock:
            up["parts"][int(n)] = (etag, data)
        self.rec["part_number"] = int(n)
        return self._op("UploadPart", 200, [("ETag", etag), ("Content-Length", "0")])

    def _abort(self, q):
        self._upload(q)
        with self.st.lock:
            self.st.uploads.pop(q["uploadId"], None)
        return self._op("AbortMultipartUpload", 204)

    def _complete(self, q):
        import xml.etree.ElementTree as ET
        up = self._upload(q)
        body = self._payload()
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise AwsError(400, "MalformedXML", "The XML you provided was not well-formed or "
                           "did not validate against our published schema")
        listed = []
        for part in root.iter():
            if part.tag.rsplit("}", 1)[-1] != "Part":
                continue
            f = {c.tag.rsplit("}", 1)[-1]: (c.text or "").strip() for c in part}
            listed.append((int(f.get("PartNumber", "0")), f.get("ETag", "")))
        data = self._assemble(up, listed)
        digest = hashlib.md5(b"".join(bytes.fromhex(up["parts"][n][0].strip('"'))
                                      for n, _ in listed)).hexdigest()
        etag = '"%s-%d"' % (digest, len(listed))
        self._store(data, etag, up["meta"])
        with self.st.lock:
            self.st.uploads.pop(q["uploadId"], None)
        self.rec["object_len"] = len(data)
        out = ('<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult '
               'xmlns="%s">%s%s%s%s</CompleteMultipartUploadResult>'
               % (S3_NS, _x("Location", "https://%s.s3.amazonaws.com/%s"
                            % (self.bucket, urllib.parse.quote(self.key))),
                  _x("Bucket", self.bucket), _x("Key", self.key), _x("ETag", etag)))
        return self._op("CompleteMultipartUpload", 200, [("Content-Type", "application/xml")],
                        out)

    def _assemble(self, up, listed):
        if not listed:
            raise AwsError(400, "MalformedXML", "The XML you provided was not well-formed or "
                           "did not validate against our published schema")
        nums = [n for n, _ in listed]
        if nums != sorted(set(nums)):
            raise AwsError(400, "InvalidPartOrder", "The list of parts was not in ascending "
                           "order. The parts list must be specified in order by part number.")
        pieces = []
        for i, (n, etag) in enumerate(listed):
            have = up["parts"].get(n)
            if have is None or have[0].strip('"') != etag.strip('"'):
                raise AwsError(400, "InvalidPart", "One or more of the specified parts could "
                               "not be found. The part may not have been uploaded, or the "
                               "specified entity tag may not match the part's entity tag.",
                               PartNumber=n, ETag=etag)
            if i < len(listed) - 1 and len(have[1]) < MIN_PART:
                raise AwsError(400, "EntityTooSmall", "Your proposed upload is smaller than "
                               "the minimum allowed object size.", PartNumber=n)
            pieces.append(have[1])
        return b"".join(pieces)


_PRESIGN = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
            "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
            "response-content-type", "response-content-disposition", "x-id"}


# --------------------------------------------------------------------------- HTTP

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    sys_version = ""
    timeout = 30

    def log_message(self, fmt, *args):      # quiet: tests read the record
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    raise ValueError("body too large")
                out += self.rfile.read(size)
                self.rfile.readline(16)
        n = int(self.headers.get("Content-Length") or "0")
        if n > MAX_BODY:
            raise ValueError("body too large")
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError("eof in body")
        return data

    def _dispatch(self):
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(413)
            self.close_connection = True
            return
        req = Request(self.command, self.path, list(self.headers.items()), body,
                      getattr(self.connection, "sg_sni", None))
        st = self.server.state
        status, headers, out, rec = st.handle(req)
        st.record(rec)                      # before the answer: a client that got one finds it
        self.send_response(status)
        have_len = False
        for k, v in headers:
            self.send_header(k, v)
            have_len = have_len or k.lower() == "content-length"
        if not have_len:
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(out)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    # a fixed port (443 in a namespace, or on an address of its own) must not wait out an
    # earlier run's TIME_WAIT; Linux still refuses a second listener on it
    allow_reuse_address = True

    def __init__(self, addr, ssl_ctx, state):
        self.ssl_ctx, self.state = ssl_ctx, state
        self.conn_lock = threading.Lock()
        self.conns = set()
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, _Handler)

    def server_bind(self):
        # TCPServer's bind without HTTPServer's getfqdn(): no reverse lookup (a namespace
        # may have no DNS to ask)
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        sock = request
        with self.conn_lock:
            self.conns.add(request)
        try:
            request.settimeout(10)
            sock = self.ssl_ctx.wrap_socket(request, server_side=True)
            with self.conn_lock:
                self.conns.add(sock)
            sock.settimeout(None)
            _Handler(sock, client_address, self)
        except (OSError, ssl.SSLError, ValueError, ConnectionError):
            pass
        finally:
            with self.conn_lock:
                self.conns.discard(sock)
                self.conns.discard(request)
            try:
                sock.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass

    def close_all(self):
        with self.conn_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])

    def note_sni(sslobj, server_name, _ctx):
        sslobj.sg_sni = server_name
    ctx.sni_callback = note_sni
    return ctx


def make_cert(pki, host, regions=DEFAULT_REGIONS):
    """(cert, key) of a leaf from sgtest's test PKI (upstream CA) for every name the
    stand-in serves in these regions and the address host."""
    cert_names, _ = standin_names(regions)
    sans = ["DNS:" + n for n in cert_names] + ["IP:" + host]
    return pki.ensure_leaf("aws-standin-%s-%s" % (host, "-".join(regions)),
                           "s3.amazonaws.com", sans)


# --------------------------------------------------------------------------- the API

class _RecordApi:
    """Record helpers shared by the in-process and the process stand-in (records)."""

    def records_where(self, **match):
        """Records whose fields equal the given values (e.g. operation="PutObject")."""
        return [r for r in self.records if all(r.get(k) == v for k, v in match.items())]

    def find(self, text):
        """Records holding text anywhere: target, a header name or value, the kept body."""
        out = []
        for r in self.records:
            hay = [r["target"], r["body"]] + [x for h in r["headers"] for x in h]
            if any(text in h for h in hay):
                out.append(r)
        return out

    def resolve_map(self):
        """{name: address} for a sealgate policy's upstream.resolve (every concrete name,
        the configured buckets' virtual hosts included)."""
        _, concrete = standin_names(self.regions, self.bucket_names)
        return {n: self.host for n in concrete}

    def endpoint(self, service, region="us-east-1"):
        """https URL of a service at its real name with the stand-in's port."""
        name = {"s3": "s3.%s.amazonaws.com", "sts": "sts.%s.amazonaws.com",
                "sqs": "sqs.%s.amazonaws.com"}[service] % region
        return "https://%s%s" % (name, "" if self.port == 443 else ":%d" % self.port)

    def ip_endpoint(self):
        """https URL of the stand-in's address (path-style S3; service from the scope)."""
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "https://%s:%d" % (host, self.port)

    def queue_url(self, name, region="us-east-1"):
        return "https://sqs.%s.amazonaws.com/%s/%s" % (region, self.account, name)


class AwsStandin(_RecordApi):
    """The stand-in on threads of this process (see the module docstring).

    access_key_id/secret/session_token: the one real credential set (defaults: fresh
    random AKIA.../40-char secret). arn: what GetCallerIdentity answers for it.
    host/port: listen address (port 0: kernel-picked). buckets/queues: what exists.
    owner: a TestCase (or TestCase class) whose cleanup stops it."""

    def __init__(self, owner=None, access_key_id=None, secret=None, session_token=None,
                 host=DEFAULT_ADDR, port=0, pki=None, regions=DEFAULT_REGIONS,
                 buckets=("mybucket",), queues=("myqueue",), account=ACCOUNT, arn=None,
                 clock_offset=0.0, cert=None, record_file=None):
        import sgtest
        self.pki = pki or sgtest.PKI.get()
        self.access_key_id = access_key_id or new_access_key_id("AKIA")
        self.secret = secret or new_secret()
        self.session_token = session_token
        self.host, self.regions, self.account = host, tuple(regions), account
        self.bucket_names = tuple(buckets)
        self.ca_file = self.pki.ca_cert
        cert = cert or make_cert(self.pki, host, self.regions)
        primary = Credential(self.access_key_id, self.secret, session_token,
                             arn=arn or "arn:aws:iam::%s:user/sealgate-test" % account,
                             user_id="AIDA" + hashlib.sha256(
                                 self.access_key_id.encode()).hexdigest()[:17].upper())
        self._sink = open(record_file, "a") if record_file else None
        self.state = StandinState(primary, regions, buckets, queues, account, clock_offset,
                                  self._sink)
        self.server = _Server((host, port), _server_context(*cert), self.state)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        self._stopped = False
        if owner is not None:
            (owner.addClassCleanup if isinstance(owner, type) else owner.addCleanup)(self.stop)

    @property
    def clock_offset(self):
        return self.state.clock_offset

    @clock_offset.setter
    def clock_offset(self, value):
        self.state.clock_offset = value

    @property
    def records(self):
        with self.state.lock:
            return [dict(r) for r in self.state.records]

    def wait_records(self, pred=lambda r: True, n=1, timeout=10):
        """The records for which pred holds, once there are n (fewer after timeout)."""
        deadline = time.monotonic() + timeout
        with self.state.changed:
            while True:
                hits = [dict(r) for r in self.state.records if pred(r)]
                left = deadline - time.monotonic()
                if len(hits) >= n or left <= 0:
                    return hits
                self.state.changed.wait(left)

    def objects(self, bucket):
        """{key: bytes} of a bucket now."""
        with self.state.lock:
            return {k: o["data"] for k, o in self.state.buckets[bucket].items()}

    def put_object(self, bucket, key, data, content_type="binary/octet-stream"):
        """Seed an object (no request, no record)."""
        with self.state.lock:
            self.state.buckets[bucket][key] = {
                "data": data, "etag": '"%s"' % hashlib.md5(data).hexdigest(),
                "meta": [("Content-Type", content_type)], "mtime": self.state.now()}

    def messages(self, queue):
        with self.state.lock:
            return list(self.state.queues[queue])

    def issued(self):
        """Credentials AssumeRole issued: [Credential]."""
        with self.state.lock:
            return [c for c in self.state.creds.values() if c.kind == "assumed"]

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.close_all()
        self.server.server_close()
        self._thread.join(5)
        if self._sink is not None:
            self._sink.close()


def new_access_key_id(prefix="AKIA"):
    return prefix + base64.b32encode(os.urandom(10)).decode()


def new_secret():
    return base64.b64encode(os.urandom(30)).decode()


# --------------------------------------------------------------------------- process

class AwsStandinProcess(_RecordApi):
    """The stand-in as a child process (`python3 aws_standin.py serve`), optionally
    inside a network namespace (`ip netns exec NETNS`): same options and record API
    (records come from the JSON-lines file it appends to before answering). The
    credentials go through a 0600 config file, never argv. stop(): SIGTERM to its pid,
    exit 0 expected (asserted by the owner's cleanup)."""

    def __init__(self, owner, access_key_id=None, secret=None, session_token=None,
                 host=DEFAULT_ADDR, port=0, pki=None, regions=DEFAULT_REGIONS,
                 buckets=("mybucket",), queues=("myqueue",), account=ACCOUNT, arn=None,
                 clock_offset=0.0, netns=None, start_timeout=20):
        import shutil
        import sgtest
        pki = pki or sgtest.PKI.get()
        self.dir = tempfile.mkdtemp(prefix="sgtest-aws-")
        owner_cleanup = owner.addClassCleanup if isinstance(owner, type) else owner.addCleanup
        owner_cleanup(shutil.rmtree, self.dir, True)
        self.access_key_id = access_key_id or new_access_key_id("AKIA")
        self.secret = secret or new_secret()
        self.session_token, self.host = session_token, host
        self.regions, self.bucket_names, self.account = tuple(regions), tuple(buckets), account
        self.ca_file = pki.ca_cert
        cert, key = make_cert(pki, host, self.regions)
        cfg = {"access_key_id": self.access_key_id, "secret": self.secret,
               "session_token": session_token, "host": host, "port": port,
               "regions": list(regions), "buckets": list(buckets), "queues": list(queues),
               "account": account, "arn": arn, "clock_offset": clock_offset,
               "cert": cert, "key": key}
        cfg_path = os.path.join(self.dir, "config.json")
        fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        self.record_path = os.path.join(self.dir, "records.jsonl")
        ready = os.path.join(self.dir, "ready.json")
        argv = ([] if netns is None else ["ip", "netns", "exec", netns]) + [
            "/usr/bin/python3", os.path.abspath(__file__), "serve", "--config", cfg_path,
            "--ready-file", ready, "--record-file", self.record_path]
        self._log = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        owner_cleanup(self._cleanup)
        self.port = self._wait_ready(ready, start_timeout)["port"]

    def _wait_ready(self, path, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path) as f:
                    return json.load(f)
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise AssertionError("aws stand-in exited %s before ready: %s"
                                     % (self.proc.returncode, self.log()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("aws stand-in not ready in %ss: %s" % (timeout, self.log()))
            try:        # condition wait: returns at once if the child dies
                self.proc.wait(timeout=min(0.05, left))
            except subprocess.TimeoutExpired:
                pass

    def log(self):
        try:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    @property
    def records(self):
        try:
            with open(self.record_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in data.split(b"\n")[:-1] if line.strip()]

    def stop(self):
        """SIGTERM by pid; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError("aws stand-in did not exit within 15 s of SIGTERM")
        return self.proc.returncode

    def _cleanup(self):
        try:
            rc = self.stop()
            if rc != 0:
                raise AssertionError("aws stand-in exited %s (want 0): %s" % (rc, self.log()))
        finally:
            self._log.close()


def _serve_main(args):
    with open(args.config) as f:
        cfg = json.load(f)

    class _Pki:
        ca_cert = None
    sa = AwsStandin(None, access_key_id=cfg["access_key_id"], secret=cfg["secret"],
                    session_token=cfg["session_token"], host=cfg["host"], port=cfg["port"],
                    pki=_Pki(), regions=cfg["regions"], buckets=cfg["buckets"],
                    queues=cfg["queues"], account=cfg["account"], arn=cfg["arn"],
                    clock_offset=cfg["clock_offset"], cert=(cfg["cert"], cfg["key"]),
                    record_file=args.record_file)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": os.getpid(), "host": sa.host, "port": sa.port}, f)
    os.rename(tmp, args.ready_file)
    done.wait()
    sa.stop()
    return 0


# --------------------------------------------------------------------------- relay

class ConnectRelay:
    """A CONNECT proxy on host:0 that splices a tunnel to target (host, port) for every
    authority whose name allow(name) accepts, whatever port was asked, and answers 403
    otherwise. connects: [(authority, allowed)] in arrival order."""

    def __init__(self, owner, target, allow, host="127.0.0.1"):
        self.target, self.allow = target, allow
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "http://%s:%d" % (host, self.port)
        self.connects, self._lock, self._conns = [], threading.Lock(), set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        if owner is not None:
            (owner.addClassCleanup if isinstance(owner, type) else owner.addCleanup)(self.stop)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        up = None
        with self._lock:
            self._conns.add(c)
        try:
            c.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                d = c.recv(4096)
                if not d:
                    return
                head += d
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            authority = line[1] if len(line) == 3 and line[0] == "CONNECT" else ""
            name = _split_host(authority.lower())
            ok = bool(authority) and self.allow(name)
            with self._lock:
                self.connects.append((authority, ok))
            if not ok:
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
                return
            up = socket.create_connection(self.target, timeout=10)
            with self._lock:
                self._conns.add(up)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                up.sendall(rest)
            _splice(c, up)
        except OSError:
            pass
        finally:
            for s in (c, up):
                if s is not None:
                    with self._lock:
                        self._conns.discard(s)
                    s.close()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)


def _splice(a, b, idle=30):
    """Copy both ways until either side closes or nothing moves for idle seconds."""
    a.settimeout(None)
    b.settimeout(None)
    peers = {a: b, b: a}
    while True:
        ready, _, _ = select.select(list(peers), [], [], idle)
        if not ready:
            return
        for s in ready:
            d = s.recv(65536)
            if not d:
                return
            peers[s].sendall(d)


def standin_relay(owner, standin):
    """A ConnectRelay that sends every AWS name the stand-in serves to it."""
    return ConnectRelay(owner, (standin.host, standin.port),
                        lambda name: classify_host(name)[0] is not None)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="AWS stand-in for sealgate's tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--config", required=True)
    sp.add_argument("--ready-file", required=True)
    sp.add_argument("--record-file", required=True)
    sys.exit(_serve_main(ap.parse_args()))
