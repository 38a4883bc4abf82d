"""A small SigV4 reference signer for tests, written from the AWS documentation
("Signature Version 4 signing process", "Authenticating Requests: Using the
Authorization Header", "Signature Calculations for the Authorization Header: Transferring
Payload in Multiple Chunks", "... trailing headers"). Checked against the documents'
worked examples in test_aws_standin.py (the GET object example and the 64 KiB chunked
upload with seed signature 4f232c43..., with and without a signed trailer).

It exists because Debian's boto3 (1.26) never sends signed aws-chunked uploads: tests
build those bodies here. It shares no code with aws_standin.py's verifier (that one
checks header signatures with botocore and chunk signatures with its own code), so the
two would have to make the same mistake to agree on a wrong answer.

Everything is bytes/str in, str out; the time is passed in (amz_date "YYYYMMDDTHHMMSSZ").
"""
import hashlib
import hmac

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def sha256_hex(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
    "aws4_request"); date is YYYYMMDD."""
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def uri_encode(text, encode_slash=True):
    """UriEncode of the SigV4 docs: every byte but A-Z a-z 0-9 - _ . ~ as %XX
    (upper-case hex); '/' kept when encode_slash is False (object key names)."""
    out = []
    for b in text.encode("utf-8") if isinstance(text, str) else text:
        if b in _UNRESERVED or (b == 0x2F and not encode_slash):
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def canonical_query(pairs):
    """The canonical query string of decoded (name, value) pairs: each encoded, sorted
    by name then value, joined with '&'."""
    enc = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    return "&".join("%s=%s" % kv for kv in enc)


def _trim(value):
    return " ".join(value.strip().split())


def canonical_request(method, canonical_uri, query_pairs, headers, payload_hash):
    """(canonical request, signed headers list) of a request. headers: (name, value)
    pairs, all signed (repeated names joined with ','); canonical_uri already encoded as
    the service wants it (S3: the path as sent)."""
    by_name = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(_trim(value))
    names = sorted(by_name)
    canon_headers = "".join("%s:%s\n" % (n, ",".join(by_name[n])) for n in names)
    signed = ";".join(names)
    cr = "\n".join([method, canonical_uri, canonical_query(query_pairs), canon_headers,
                    signed, payload_hash])
    return cr, signed


def string_to_sign(amz_date, scope, canonical_req):
    return "\n".join([ALGORITHM, amz_date, scope, sha256_hex(canonical_req)])


def scope_of(amz_date, region, service):
    return "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)


def sign(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_headers(method, canonical_uri, query_pairs, headers, payload_hash, access_key_id,
                 secret, region, service, amz_date, token=None):
    """Header authentication. headers must already hold Host and every header to sign
    (X-Amz-Date, X-Amz-Content-SHA256, ... are added here when absent; the session token
    too when given). Returns (headers with Authorization appended, signature,
    canonical request)."""
    hs = list(headers)
    have = {k.lower() for k, _ in hs}
    if "x-amz-date" not in have:
        hs.append(("X-Amz-Date", amz_date))
    if service == "s3" and "x-amz-content-sha256" not in have:
        hs.append(("X-Amz-Content-SHA256", payload_hash))
    if token is not None and "x-amz-security-token" not in have:
        hs.append(("X-Amz-Security-Token", token))
    cr, signed = canonical_request(method, canonical_uri, query_pairs, hs, payload_hash)
    scope = scope_of(amz_date, region, service)
    sig = sign(signing_key(secret, amz_date[:8], region, service),
               string_to_sign(amz_date, scope, cr))
    auth = "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        ALGORITHM, access_key_id, scope, signed, sig)
    return hs + [("Authorization", auth)], sig, cr


# --------------------------------------------------------------------------- chunks

def chunk_string_to_sign(amz_date, scope, previous, data):
    return "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256,
                      sha256_hex(data)])


def chunk_signature(key, amz_date, scope, previous, data):
    """Signature of one aws-chunked chunk: over the previous signature (the seed for
    the first), the empty string's hash and the chunk data's hash."""
    return sign(key, chunk_string_to_sign(amz_date, scope, previous, data))


def trailer_text(trailers):
    """The trailing headers as signed: 'name:value\\n' per trailer, in order."""
    return "".join("%s:%s\n" % (k.lower(), v) for k, v in trailers)


def trailer_signature(key, amz_date, scope, previous, trailers):
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous,
                     sha256_hex(trailer_text(trailers))])
    return sign(key, sts)


def split_chunks(data, chunk_size):
    return [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] or []


def signed_chunk_pieces(chunks, key, amz_date, scope, seed):
    """[(data, signature)] for the given data chunks plus the final empty one."""
    out, prev = [], seed
    for data in list(chunks) + [b""]:
        prev = chunk_signature(key, amz_date, scope, prev, data)
        out.append((data, prev))
    return out


def frame_signed(pieces, trailers=None, trailer_sig=None):
    """aws-chunked wire bytes of [(data, signature)] (the last one empty), then the
    trailers and x-amz-trailer-signature when given, then the closing empty line."""
    out = bytearray()
    for data, sig in pieces:
        out += b"%x;chunk-signature=%s\r\n" % (len(data), sig.encode())
        out += data
        if data:
            out += b"\r\n"
    for k, v in trailers or ():
        out += ("%s:%s\r\n" % (k.lower(), v)).encode()
    if trailer_sig is not None:
        out += b"x-amz-trailer-signature:%s\r\n" % trailer_sig.encode()
    out += b"\r\n"
    return bytes(out)


def aws_chunked_signed(data, chunk_size, key, amz_date, scope, seed, trailers=None):
    """(wire body, chunk signatures, trailer signature or None) of a signed aws-chunked
    upload of data; trailers: [(name, value)] for the ...-PAYLOAD-TRAILER form."""
    pieces = signed_chunk_pieces(split_chunks(data, chunk_size), key, amz_date, scope, seed)
    tsig = None
    if trailers is not None:
        tsig = trailer_signature(key, amz_date, scope, pieces[-1][1], trailers)
    return frame_signed(pieces, trailers, tsig), [s for _, s in pieces], tsig


def aws_chunked_unsigned(data, chunk_size, trailers):
    """Wire body of a STREAMING-UNSIGNED-PAYLOAD-TRAILER upload."""
    out = bytearray()
    for c in split_chunks(data, chunk_size):
        out += b"%x\r\n%s\r\n" % (len(c), c)
    out += b"0\r\n"
    for k, v in trailers:
        out += ("%s:%s\r\n" % (k.lower(), v)).encode()
    return bytes(out + b"\r\n")


def encoded_length(data_len, chunk_size, trailers=None, signed=True):
    """Content-Length of the aws-chunked body of data_len bytes (signed framing)."""
    n = 0
    sizes = [chunk_size] * (data_len // chunk_size)
    if data_len % chunk_size:
        sizes.append(data_len % chunk_size)
    for s in sizes + [0]:
        n += len("%x" % s) + (len(";chunk-signature=") + 64 if signed else 0) + 2
        n += s + (2 if s else 0)
    for k, v in trailers or ():
        n += len(k) + 1 + len(v) + 2
    if trailers is not None and signed:
        n += len("x-amz-trailer-signature:") + 64 + 2
    return n + 2
