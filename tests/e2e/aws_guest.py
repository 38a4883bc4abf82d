"""Runs INSIDE a sandbox namespace (test_aws.py starts it with Debian's python and the
guest's environment only): hand-built AWS requests that no SDK sends, signed with the
derived credentials the sandbox's default credential chain finds (botocore: container
credentials or IMDS, whichever /v1/env set up), sent to the real AWS name through the
proxy of HTTPS_PROXY and checked against the CA of SSL_CERT_FILE.

    python3 aws_guest.py < {"op": ..., ...}   ->   one JSON object on stdout

ops:
  creds      {"method", "access_key_id", "token"} of the chain's credentials (never the
             secret: the test derives it itself when it needs it)
  chunked    an S3 PutObject with an aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD
             or its -TRAILER form, 64 KiB chunks of payload(size, seed)) signed chunk by
             chunk with aws_sigv4_ref; "mutate": replay / reorder / tamper chunks after
             signing (MUTATIONS; the body keeps its signed length); "unsigned": the
             STREAMING-UNSIGNED-PAYLOAD-TRAILER form boto3 1.36 and later send (plain
             chunks, a CRC32 trailer, only the head signed)
  signed     any request signed with aws_sigv4_ref (header auth): host, method, path,
             service, region, headers, body; "secret": sign with this secret instead;
             "after": header values changed after signing
Answer: {"status", "headers": [[name, value]], "body": text, "sent": bytes written,
"send_error": the error that cut the upload or null, "creds": {...}}.
"""
import base64
import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws_sigv4_ref as ref  # noqa: E402

CHUNK = 65536


def chain_credentials():
    import botocore.session
    c = botocore.session.get_session().get_credentials()
    if c is None:
        raise SystemExit("no credentials in the default chain")
    return c.method, c.get_frozen_credentials()


def proxy_tls(host, timeout=30):
    """A TLS socket to host:443 through the HTTPS_PROXY's CONNECT tunnel."""
    p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
    s = socket.create_connection((p.hostname, p.port), timeout=timeout)
    s.sendall(("CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (host, host)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            raise SystemExit("proxy closed during CONNECT")
        head += d
    if head.split(b" ", 2)[1] != b"200":
        raise SystemExit("CONNECT refused: %r" % head)
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    return ctx.wrap_socket(s, server_hostname=host)


def exchange(host, method, path, headers, body):
    """Send the request (the body in pieces: sealgate may answer and stop reading before
    the end), then read whatever answer came."""
    s = proxy_tls(host)
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join(
        "%s: %s\r\n" % kv for kv in headers) + "\r\n"
    sent, err = 0, None
    try:
        s.sendall(head.encode())
        for i in range(0, len(body), 16384):
            s.sendall(body[i:i + 16384])
            sent += len(body[i:i + 16384])
    except OSError as e:
        err = type(e).__name__
    try:
        r = http.client.HTTPResponse(s, method=method)
        r.begin()
        data = r.read()
        out = {"status": r.status, "headers": [list(h) for h in r.getheaders()],
               "body": data.decode("utf-8", "replace")}
    except (OSError, http.client.HTTPException) as e:
        out = {"status": None, "headers": [], "body": "", "read_error": type(e).__name__}
    s.close()
    out.update(sent=sent, send_error=err)
    return out


def amz_now():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def payload(n, seed):
    """n deterministic bytes (the test recomputes them)."""
    out, x = bytearray(), seed
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2 ** 64 - 1)
        out += x.to_bytes(8, "little")
    return bytes(out[:n])


MUTATIONS = {
    "replay": lambda p: p[:2] + [p[1]] + p[3:],      # chunk 1 again instead of 2
    "reorder": lambda p: p[:1] + [p[2], p[1]] + p[3:],   # chunks 1 and 2 swapped
    "tamper": lambda p: p[:2] + [(p[2][0][:-1] + bytes([p[2][0][-1] ^ 1]), p[2][1])]
    + p[3:],                                          # a bit of chunk 2 flipped
}


def op_chunked(a, creds):
    region, host = a["region"], a["host"]
    data = payload(a["size"], a.get("seed", 1))
    if a.get("unsigned"):
        return op_chunked_unsigned(a, creds, host, region, data)
    mode = ref.STREAMING_SIGNED_TRAILER if a.get("trailer") else ref.STREAMING_SIGNED
    amz = amz_now()
    trailers = None
    hs = [("Host", host), ("Content-Encoding", "aws-chunked"),
          ("x-amz-decoded-content-length", str(len(data))), ("x-amz-content-sha256", mode),
          ("x-amz-date", amz)]
    if a.get("trailer"):
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        trailers = [("x-amz-checksum-crc32", crc)]
        hs.append(("x-amz-trailer", "x-amz-checksum-crc32"))
    length = ref.encoded_length(len(data), CHUNK, trailers)
    hs.append(("Content-Length", str(length)))
    out, seed, _ = ref.sign_headers("PUT", a["path"], [], hs, mode, creds.access_key,
                                    creds.secret_key, region, "s3", amz, creds.token)
    key = ref.signing_key(creds.secret_key, amz[:8], region, "s3")
    scope = ref.scope_of(amz, region, "s3")
    pieces = ref.signed_chunk_pieces(ref.split_chunks(data, CHUNK), key, amz, scope, seed)
    if a.get("mutate"):
        pieces = MUTATIONS[a["mutate"]](pieces)
    tsig = None
    if trailers is not None:
        tsig = ref.trailer_signature(key, amz, scope, pieces[-1][1], trailers)
    body = ref.frame_signed(pieces, trailers, tsig)
    res = exchange(host, "PUT", a["path"], out, body)
    res.update(seed=seed, chunk_signatures=[s for _, s in pieces], trailer_signature=tsig,
               data_sha256=ref.sha256_hex(data), body_len=len(body))
    return res


def op_chunked_unsigned(a, creds, host, region, data):
    mode = ref.STREAMING_UNSIGNED_TRAILER
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    trailers = [("x-amz-checksum-crc32", crc)]
    body = ref.aws_chunked_unsigned(data, CHUNK, trailers)
    hs = [("Host", host), ("Content-Encoding", "aws-chunked"),
          ("x-amz-decoded-content-length", str(len(data))), ("x-amz-content-sha256", mode),
          ("x-amz-date", amz_now()), ("x-amz-trailer", "x-amz-checksum-crc32"),
          ("Content-Length", str(len(body)))]
    out, sig, _ = ref.sign_headers("PUT", a["path"], [], hs, mode, creds.access_key,
                                   creds.secret_key, region, "s3", hs[4][1], creds.token)
    res = exchange(host, "PUT", a["path"], out, body)
    res.update(seed=sig, chunk_signatures=[], trailer_signature=None,
               data_sha256=ref.sha256_hex(data), body_len=len(body), crc32=crc)
    return res


def op_signed(a, creds):
    amz = amz_now()
    body = a.get("body", "").encode()
    path, _, query = a["path"].partition("?")
    pairs = [tuple(urllib.parse.unquote(x) for x in p.partition("=")[::2])
             for p in query.split("&")] if query else []
    hs = [("Host", a["host"])] + [tuple(h) for h in a.get("headers", [])]
    if body:
        hs.append(("Content-Length", str(len(body))))
    phash = ref.sha256_hex(body)
    out, sig, _ = ref.sign_headers(a.get("method", "GET"), path, pairs, hs, phash,
                                   creds.access_key, a.get("secret") or creds.secret_key,
                                   a["region"], a["service"], amz, creds.token)
    after = {k.lower(): v for k, v in a.get("after", {}).items()}
    out = [(k, after.get(k.lower(), v)) for k, v in out]
    return exchange(a["host"], a.get("method", "GET"), a["path"], out, body)


def main():
    a = json.load(sys.stdin)
    method, creds = chain_credentials()
    info = {"method": method, "access_key_id": creds.access_key, "token": creds.token}
    if a["op"] == "creds":
        res = {}
    elif a["op"] == "chunked":
        res = op_chunked(a, creds)
    elif a["op"] == "signed":
        res = op_signed(a, creds)
    else:
        raise SystemExit("unknown op %r" % a["op"])
    res["creds"] = info
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
