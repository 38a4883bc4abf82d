#!/usr/bin/env python3
"""TLS HTTP/1.1 upload sink for bench/run.sh (loopback only).

nginx answers `return 200` before it has read a request body and then discards the
rest, so a proxy sees the answer mid-upload. This sink reads the whole body
(Content-Length or chunked), discards it, then answers 200 with the bytes counted and
the received Authorization echoed as X-Echo-Auth (like the nginx upstream).

A request carrying `X-Bench-Smoke: 1` (the AWS smoke of run.sh, small bodies only) is
also logged, one JSON line appended to SMOKE_LOG: method, target, every header as
received, the body's length and SHA-256, and for an aws-chunked body each chunk's size,
chunk-signature and data SHA-256 plus the decoded length and SHA-256. run.sh checks the
log (bench/awssig.py check) and deletes it: it holds the real access key id.

usage: upload_sink.py ADDR PORT CERT KEY [SMOKE_LOG]
"""
import hashlib
import json
import socket
import ssl
import sys
import threading

ADDR, PORT, CERT, KEY = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
SMOKE_LOG = sys.argv[5] if len(sys.argv) > 5 else None
SMOKE_MAX = 8 << 20   # a smoke body is read whole: small ones only
LOCK = threading.Lock()
if not ADDR.startswith("127."):
    sys.exit("upload_sink: loopback only")
BUF = bytearray(1 << 20)
MV = memoryview(BUF)


def read_head(s, pending):
    while b"\r\n\r\n" not in pending:
        d = s.recv(65536)
        if not d:
            return None, b""
        pending += d
        if len(pending) > 65536:
            return None, b""
    head, _, rest = pending.partition(b"\r\n\r\n")
    return head, rest


def drain(s, n, rest):
    """Discard n body bytes (rest already read). Returns leftover bytes."""
    if len(rest) >= n:
        return rest[n:]
    n -= len(rest)
    while n > 0:
        k = s.recv_into(MV, min(n, len(BUF)))
        if k == 0:
            raise ConnectionError("eof in body")
        n -= k
    return b""


def readline(s, pending):
    while b"\r\n" not in pending:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("eof in chunked body")
        pending += d
    line, _, rest = pending.partition(b"\r\n")
    return line, rest


def read_exact(s, n, rest):
    """n body bytes (rest already read) and the leftover."""
    buf = bytearray(rest[:n])
    rest = rest[n:]
    while len(buf) < n:
        d = s.recv(min(n - len(buf), 1 << 20))
        if not d:
            raise ConnectionError("eof in body")
        buf += d
    return bytes(buf), rest


def parse_aws_chunked(body):
    """[(size, signature, data sha256)], decoded bytes, framing ok (signed aws-chunked)."""
    chunks, data, off = [], bytearray(), 0
    while True:
        eol = body.find(b"\r\n", off)
        if eol < 0:
            return chunks, bytes(data), False
        size_s, _, ext = body[off:eol].partition(b";")
        name, _, sig = ext.partition(b"=")
        try:
            size = int(size_s, 16)
        except ValueError:
            return chunks, bytes(data), False
        piece = body[eol + 2:eol + 2 + size]
        chunks.append((size, sig.decode("latin-1") if name == b"chunk-signature" else "",
                       hashlib.sha256(piece).hexdigest()))
        data += piece
        off = eol + 2 + size
        if size == 0:
            return chunks, bytes(data), body[off:] == b"\r\n"
        if body[off:off + 2] != b"\r\n":
            return chunks, bytes(data), False
        off += 2


def smoke_log(method, target, headers, body):
    rec = {"method": method, "target": target, "headers": headers, "body_len": len(body),
           "body_sha256": hashlib.sha256(body).hexdigest()}
    if any(k.lower() == "content-encoding" and v.lower() == "aws-chunked" for k, v in headers):
        chunks, data, ok = parse_aws_chunked(body)
        rec.update(chunks=chunks, decoded_len=len(data), framing_ok=ok,
                   decoded_sha256=hashlib.sha256(data).hexdigest())
    with LOCK, open(SMOKE_LOG, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def serve(conn):
    try:
        pending = b""
        while True:
            head, pending = read_head(conn, pending)
            if head is None:
                return
            lines = head.split(b"\r\n")
            hdrs = {}
            for l in lines[1:]:
                k, _, v = l.partition(b":")
                hdrs[k.strip().lower()] = v.strip()
            total = 0
            if b"chunked" in hdrs.get(b"transfer-encoding", b"").lower():
                while True:
                    line, pending = readline(conn, pending)
                    size = int(line.split(b";")[0], 16)
                    if size == 0:
                        _, pending = readline(conn, pending)
                        break
                    pending = drain(conn, size + 2, pending)
                    total += size
            elif SMOKE_LOG and hdrs.get(b"x-bench-smoke") == b"1":
                n = int(hdrs.get(b"content-length", b"0"))
                if n > SMOKE_MAX:
                    return
                body, pending = read_exact(conn, n, pending)
                total = n
                method, target = lines[0].decode("latin-1").split(" ")[:2]
                smoke_log(method, target, [[k.decode("latin-1").strip(), v.decode("latin-1").strip()]
                                           for k, _, v in (l.partition(b":") for l in lines[1:])], body)
            else:
                n = int(hdrs.get(b"content-length", b"0"))
                pending = drain(conn, n, pending)
                total = n
            body = b"received %d\n" % total
            auth = hdrs.get(b"authorization", b"")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"X-Echo-Auth: %s\r\n\r\n%s" % (len(body), auth, body))
            if hdrs.get(b"connection", b"").lower() == b"close":
                return
    except (OSError, ValueError, ConnectionError):
        return
    finally:
        conn.close()


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ADDR, PORT))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        try:
            t = ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()
            continue
        threading.Thread(target=serve, args=(t,), daemon=True).start()


if __name__ == "__main__":
    main()
