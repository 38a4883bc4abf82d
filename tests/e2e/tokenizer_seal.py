"""A small, independent tokenizer sealer (python + PyNaCl) for sealgate's tests.

It builds Proxy-Tokenizer secrets the way superfly/tokenizer's Go clients do, written
from the wire format (not from sealgate's code):

  JSON     Go's json.Marshal of tokenizer.Secret: compact, fields in struct order
           (the processor, then the auth, then allowed_hosts, allowed_host_pattern),
           omitempty fields left out, []byte as standard base64, '<' '>' '&' escaped
  sealed   nacl box.SealAnonymous (crypto_box_seal) to the proxy's X25519 public key
  token    standard base64 (padded) of the sealed box
  header   "<token>" or "<token>; <json params>" (Go sorts map keys)

sealgate's own optional fields (exp, nbf, allowed_methods, allowed_paths, rate) are
appended after tokenizer's, as a tokenizer client that knows them would add them.

Usage as a tool:  tokenizer_seal.py PUBKEY_HEX_OR_FILE < secret.json   (prints a token)
"""
import base64
import hashlib
import json
import os
import sys

from nacl.public import PrivateKey, PublicKey, SealedBox


def go_json(obj):
    """json.Marshal-compatible text for dicts built in Go struct order."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def b64(data):
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------- processors

def _fmt_dst(d, fmt, allowed_fmt, dst, allowed_dst):
    if fmt:
        d["fmt"] = fmt
    if allowed_fmt:
        d["allowed_fmt"] = list(allowed_fmt)
    if dst:
        d["dst"] = dst
    if allowed_dst:
        d["allowed_dst"] = list(allowed_dst)
    return d


def inject(token, fmt=None, allowed_fmt=None, dst=None, allowed_dst=None):
    return {"inject_processor": _fmt_dst({"token": token}, fmt, allowed_fmt, dst,
                                         allowed_dst)}


def inject_hmac(key, hash="sha256", fmt=None, allowed_fmt=None, dst=None, allowed_dst=None):
    return {"inject_hmac_processor": _fmt_dst({"key": b64(key), "hash": hash}, fmt,
                                              allowed_fmt, dst, allowed_dst)}


def inject_body(token, placeholder=None):
    d = {"token": token}
    if placeholder:
        d["placeholder"] = placeholder
    return {"inject_body_processor": d}


def _oauth_token(access, refresh):
    t = {"access_token": access}
    if refresh:
        t["refresh_token"] = refresh
    return t


def oauth2(access, refresh=None):
    return {"oauth2_processor": {"token": _oauth_token(access, refresh)}}


def oauth2_body(access, refresh=None, placeholder=None):
    d = {"token": _oauth_token(access, refresh)}
    if placeholder:
        d["placeholder"] = placeholder
    return {"oauth2_body_processor": d}


def multi(*procs):
    return {"multi_processor": list(procs)}


# --------------------------------------------------------------------- auth

def bearer_auth(proxy_token):
    return {"bearer_auth": {"digest": b64(hashlib.sha256(proxy_token.encode()).digest())}}


def no_auth():
    return {"no_auth": {}}


# --------------------------------------------------------------------- secrets

def secret(processor, auth, allowed_hosts=None, allowed_host_pattern=None, **sealgate):
    """The secret's JSON object in Go's field order; sealgate extras appended."""
    d = {}
    d.update(processor)
    d.update(auth)
    if allowed_hosts is not None:
        d["allowed_hosts"] = list(allowed_hosts)
    if allowed_host_pattern:
        d["allowed_host_pattern"] = allowed_host_pattern
    for k in ("exp", "nbf", "allowed_methods", "allowed_paths", "rate"):
        if k in sealgate:
            d[k] = sealgate.pop(k)
    if sealgate:
        raise TypeError("unknown fields: %s" % ", ".join(sealgate))
    return d


def public_key(pub):
    """A PublicKey from hex text (tokenizer SEAL_KEY), a seal.pub path or 32 bytes."""
    if isinstance(pub, PublicKey):
        return pub
    if isinstance(pub, bytes) and len(pub) == 32:
        return PublicKey(pub)
    if isinstance(pub, str) and os.path.exists(pub):
        with open(pub) as f:
            pub = f.read()
    return PublicKey(bytes.fromhex(pub.strip()))


def public_from_open_key(open_key_hex):
    """tokenizer's ParseOpenKey: X25519 public key of a hex private key."""
    return PrivateKey(bytes.fromhex(open_key_hex.strip())).public_key


def seal_json(pub, text):
    if isinstance(text, str):
        text = text.encode()
    return b64(SealedBox(public_key(pub)).encrypt(text))


def seal(pub, sec):
    """Seal a secret dict (as built by secret()) -> std base64 token."""
    return seal_json(pub, go_json(sec))


def header(token, params=None):
    """formatHeaderProxyTokenizer: '<token>' or '<token>; <json params, keys sorted>'."""
    if params:
        return "%s; %s" % (token, go_json(dict(sorted(params.items()))))
    return token


def unseal(open_key_hex, token):
    from nacl.public import SealedBox as _SB
    return _SB(PrivateKey(bytes.fromhex(open_key_hex.strip()))).decrypt(
        base64.b64decode(token, validate=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: tokenizer_seal.py PUBKEY_HEX|seal.pub < secret.json\n")
        sys.exit(2)
    print(seal_json(sys.argv[1], sys.stdin.read().strip()))
