#!/usr/bin/env python3
"""bench/awssig.py — the AWS side of bench/run.sh (workloads ka16aws, upaws, upawschunk).

sign: what an AWS SDK in the sandbox does. Fetch the derived credentials of the sandbox's
  default role from sealgate's metadata responder (IMDSv2, botocore's own fetcher: PUT
  /latest/api/token, GET .../iam/security-credentials/ and .../ROLE), sign one S3 request
  with them (botocore's S3SigV4Auth; header-signed, X-Amz-Security-Token = the handle) and
  write its headers to --hdr (mode 0600, "Name: value" lines, for lg -H and curl -H @file).
  With --chunked, the body is aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): --payload
  is framed in --chunk-size chunks, each signed with the derived key (chained from the
  header signature, tests/e2e/aws_sigv4_ref.py), into the file --chunked names. Prints
  {"akid", "amz_date", "payload_bytes", "wire_bytes", "chunks"}: the access key id is
  the derived one (not secret: it names the handle); the derived secret access key stays
  in this process, the handle only in --hdr.

check: the smoke. Reads what the upstream logged (nginx's JSON line per request, or the
  upload sink's), and the headers that were sent (--hdr, --sigs); the real access key id
  and secret come from the environment (SG_AWS_REAL_AKID, SG_AWS_REAL_SECRET), never from
  arguments. Every request must have reached the upstream with Credential=<real akid>, a
  64-hex signature that differs from the one sent and verifies with the real secret, no
  session token, and neither the handle nor the derived access key id anywhere; a chunked
  body's chunk signatures must all differ from the ones sent and chain correctly under
  the real key, its decoded length and SHA-256 must be the payload's. Prints counts only.

usage: awssig.py sign --metadata H:P --method GET|PUT --url URL --hdr OUT [--region R]
                      [--payload FILE [--chunked BODY_OUT --chunk-size N] [--sigs OUT]]
       awssig.py check --kind nginx|sink --log FILE --hdr SENT [--sigs SENT] [--payload FILE]
                      [--want N]
"""
import argparse
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import aws_sigv4_ref as ref  # noqa: E402  (the reference signer of the e2e tests)

SERVICE = "s3"
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,]+)/(\d{8})/([^/,]+)/([^/,]+)/aws4_request,"
                     r" ?SignedHeaders=([a-z0-9;-]+), ?Signature=([^,\s]*)$")
PIECE = 1 << 20   # payload read size when framing


def fetch_credentials(metadata):
    """The default role's derived credentials, the way botocore's IMDS provider gets them."""
    for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        os.environ.pop(v, None)
    os.environ.pop("AWS_EC2_METADATA_DISABLED", None)
    from botocore.credentials import Credentials
    from botocore.utils import InstanceMetadataFetcher
    f = InstanceMetadataFetcher(timeout=5, num_attempts=1, base_url="http://%s/" % metadata)
    c = f.retrieve_iam_role_credentials()
    if not c:
        sys.exit("awssig: no credentials from the metadata responder at %s" % metadata)
    return Credentials(c["access_key"], c["secret_key"], c["token"])


def make_auth(creds, region, payload_hash):
    from botocore.auth import S3SigV4Auth

    class Auth(S3SigV4Auth):
        """S3SigV4Auth with the payload hash chosen (UNSIGNED-PAYLOAD over https, or the
        streaming one: botocore 1.29 never signs aws-chunked bodies itself)."""
        def payload(self, request):
            return payload_hash
    return Auth(creds, SERVICE, region)


def write_private(path, data, mode="w"):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, mode) as fh:
        fh.write(data)


def frame_chunks(payload, out, chunk, key, amz_date, scope, seed):
    """aws-chunked body of the payload file into out; returns (wire bytes, signatures)."""
    sigs, prev, n = [], seed, 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(payload, "rb") as src, os.fdopen(fd, "wb", buffering=PIECE) as dst:
        while True:
            data = src.read(chunk)
            prev = ref.chunk_signature(key, amz_date, scope, prev, data)
            sigs.append(prev)
            head = b"%x;chunk-signature=%s\r\n" % (len(data), prev.encode())
            dst.write(head)
            n += len(head)
            if not data:
                dst.write(b"\r\n")
                return n + 2, sigs
            dst.write(data)
            dst.write(b"\r\n")
            n += len(data) + 2


def cmd_sign(a):
    from botocore.awsrequest import AWSRequest
    creds = fetch_credentials(a.metadata)
    size = os.path.getsize(a.payload) if a.payload else 0
    headers = {}
    payload_hash = ref.UNSIGNED_PAYLOAD
    wire = size
    if a.chunked:
        payload_hash = ref.STREAMING_SIGNED
        wire = ref.encoded_length(size, a.chunk_size)
        headers = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(size)}
    if a.method == "PUT":
        headers["Content-Length"] = str(wire)   # signed; curl -T sends the file's size
    req = AWSRequest(method=a.method, url=a.url, headers=headers)
    make_auth(creds, a.region, payload_hash).add_auth(req)
    m = AUTH_RE.match(req.headers["Authorization"])
    if not m:
        sys.exit("awssig: botocore made an Authorization header this script cannot read")
    amz_date = req.headers["X-Amz-Date"]
    out = {"akid": creds.access_key, "amz_date": amz_date, "payload_bytes": size,
           "wire_bytes": wire, "chunks": 0}
    if a.chunked:
        key = ref.signing_key(creds.secret_key, amz_date[:8], a.region, SERVICE)
        n, sigs = frame_chunks(a.payload, a.chunked, a.chunk_size, key, amz_date,
                               ref.scope_of(amz_date, a.region, SERVICE), m.group(6))
        if n != wire:
            sys.exit("awssig: framed %d bytes, announced %d" % (n, wire))
        out["chunks"] = len(sigs)
        if a.sigs:
            write_private(a.sigs, "".join(s + "\n" for s in sigs))
    # curl -T and lg make Content-Length (and Host) themselves
    lines = ["%s: %s" % (k, v) for k, v in req.headers.items() if k.lower() != "content-length"]
    write_private(a.hdr, "".join(l + "\n" for l in lines))
    print(json.dumps(out))


# --------------------------------------------------------------------------- check

def read_sent(hdr):
    h = {}
    for line in open(hdr):
        k, _, v = line.rstrip("\n").partition(":")
        h[k.strip().lower()] = v.strip()
    m = AUTH_RE.match(h.get("authorization", ""))
    if not m or not h.get("x-amz-security-token"):
        sys.exit("awssig: %s holds no signed request" % hdr)
    return {"akid": m.group(1), "signature": m.group(6), "handle": h["x-amz-security-token"]}


def records(kind, log):
    """Upstream records as {"method", "path", "headers": {lower: value}, ...}."""
    out = []
    for line in open(log, encoding="utf-8", errors="replace"):
        if not line.strip():
            continue
        j = json.loads(line)
        if kind == "nginx":   # log_format escape=json: the fields the signature covers
            hs = {k: v for k, v in (("host", j["host"]), ("authorization", j["auth"]),
                                   ("x-amz-date", j["date"]), ("x-amz-content-sha256", j["sha"]),
                                   ("x-amz-security-token", j["token"])) if v}
            j = {"method": j["method"], "target": j["uri"], "headers": hs}
        else:
            hs = {}
            for k, v in j["headers"]:
                k = k.lower()
                hs[k] = hs[k] + "," + v if k in hs else v
            j["headers"] = hs
        out.append(j)
    return out


def verify_header_sig(r, m, secret):
    """Does the received Authorization verify with the real secret over what arrived?"""
    names = m.group(5).split(";")
    if any(n not in r["headers"] for n in names):
        return False
    path, _, query = r["target"].partition("?")
    pairs = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in query.split("&") if p]
    from urllib.parse import unquote
    pairs = [(unquote(k), unquote(v)) for k, v in pairs]
    cr, signed = ref.canonical_request(r["method"], path, pairs, [(n, r["headers"][n]) for n in names],
                                       r["headers"].get("x-amz-content-sha256", ""))
    date = r["headers"].get("x-amz-date", "")
    scope = "%s/%s/%s/aws4_request" % (m.group(2), m.group(3), m.group(4))
    key = ref.signing_key(secret, m.group(2), m.group(3), m.group(4))
    return signed == m.group(5) and ref.sign(key, ref.string_to_sign(date, scope, cr)) == m.group(6)


def check_chunks(r, m, secret, sent_sigs, payload, res):
    chunks = r.get("chunks") or []
    got = [c[1] for c in chunks]
    res["chunks"] = len(got)
    res["chunk_sigs_sent"] = len(sent_sigs)
    res["chunk_sigs_all_redone"] = len(got) == len(sent_sigs) and all(
        g != s for g, s in zip(got, sent_sigs))
    key = ref.signing_key(secret, m.group(2), m.group(3), m.group(4))
    scope = "%s/%s/%s/aws4_request" % (m.group(2), m.group(3), m.group(4))
    date, prev, ok = r["headers"].get("x-amz-date", ""), m.group(6), bool(chunks)
    for _, sig, digest in chunks:
        prev = ref.sign(key, "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", date, scope, prev,
                                        ref.EMPTY_SHA256, digest]))
        ok = ok and sig == prev
    res["chunk_sigs_verify_real_key"] = ok
    want = hashlib.sha256(open(payload, "rb").read()).hexdigest()
    res["decoded_bytes"] = r.get("decoded_len")
    res["decoded_sha256_matches"] = r.get("decoded_sha256") == want and r.get("framing_ok") is True
    res["decoded_length_header_ok"] = (r["headers"].get("x-amz-decoded-content-length") ==
                                       str(os.path.getsize(payload)) == str(r.get("decoded_len")))
    return (res["chunk_sigs_all_redone"] and ok and res["decoded_sha256_matches"]
            and res["decoded_length_header_ok"])


def cmd_check(a):
    akid, secret = os.environ["SG_AWS_REAL_AKID"], os.environ["SG_AWS_REAL_SECRET"]
    sent = read_sent(a.hdr)
    sent_sigs = open(a.sigs).read().split() if a.sigs else []
    rs = records(a.kind, a.log)
    res = {"kind": a.kind, "requests": len(rs), "real_akid": 0, "signature_64hex": 0,
           "signature_differs_from_sent": 0, "signature_verifies_real_key": 0,
           "session_token_forwarded": 0, "handle_seen": 0, "derived_akid_seen": 0}
    good = len(rs) == a.want
    for r in rs:
        text = json.dumps(r)
        m = AUTH_RE.match(r["headers"].get("authorization", ""))
        res["handle_seen"] += sent["handle"] in text
        res["derived_akid_seen"] += sent["akid"] in text
        res["session_token_forwarded"] += "x-amz-security-token" in r["headers"]
        if not m:
            good = False
            continue
        res["real_akid"] += m.group(1) == akid
        res["signature_64hex"] += re.fullmatch(r"[0-9a-f]{64}", m.group(6)) is not None
        res["signature_differs_from_sent"] += m.group(6) != sent["signature"]
        res["signature_verifies_real_key"] += verify_header_sig(r, m, secret)
        if a.kind == "sink" and r["headers"].get("content-encoding") == "aws-chunked":
            good = check_chunks(r, m, secret, sent_sigs, a.payload, res) and good
        elif a.kind == "sink" and a.payload:
            res["body_sha256_matches"] = (r.get("body_sha256") == hashlib.sha256(
                open(a.payload, "rb").read()).hexdigest())
            good = good and res["body_sha256_matches"]
    n = len(rs)
    good = good and all(res[k] == n for k in ("real_akid", "signature_64hex", "signature_differs_from_sent",
                                              "signature_verifies_real_key"))
    good = good and not (res["session_token_forwarded"] or res["handle_seen"] or res["derived_akid_seen"])
    res["ok"] = good
    print(json.dumps(res))
    return 0 if good else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--metadata", required=True)
    s.add_argument("--method", choices=("GET", "PUT"), required=True)
    s.add_argument("--url", required=True)
    s.add_argument("--hdr", required=True)
    s.add_argument("--region", default="us-east-1")
    s.add_argument("--payload")
    s.add_argument("--chunked")
    s.add_argument("--chunk-size", type=int, default=65536)
    s.add_argument("--sigs")
    c = sub.add_parser("check")
    c.add_argument("--kind", choices=("nginx", "sink"), required=True)
    c.add_argument("--log", required=True)
    c.add_argument("--hdr", required=True)
    c.add_argument("--sigs")
    c.add_argument("--payload")
    c.add_argument("--want", type=int, default=1)
    a = p.parse_args()
    if a.cmd == "sign":
        if a.chunked and not a.payload:
            p.error("--chunked needs --payload")
        return cmd_sign(a)
    return cmd_check(a)


if __name__ == "__main__":
    sys.exit(main())
