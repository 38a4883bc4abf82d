#!/usr/bin/python3
"""Write the seed corpus of fuzz_decode: one byte picking the Content-Encoding from
fuzz_decode.c's codings[] (same order here), then a body made by the real encoders.
Run from the top of the tree: tests/fuzz/make-decode-seeds.py"""
import os
import random
import zlib

import brotli
import zstandard

OUT = "tests/fuzz/corpus/fuzz_decode"
CODINGS = ["gzip", "deflate", "br", "zstd", "x-gzip",
           "gzip, br", "deflate, zstd", "br, gzip", "zstd, deflate, gzip", "identity, gzip, gzip"]


def gzip(b):
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + 15)
    return c.compress(b) + c.flush()


def raw_deflate(b):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(b) + c.flush()


ENC = {
    "gzip": gzip, "x-gzip": gzip, "deflate": zlib.compress,
    "br": lambda b: brotli.compress(b, quality=5),
    "zstd": lambda b: zstandard.ZstdCompressor(level=3).compress(b),
}


def encode(value, body):
    for name in [t.strip() for t in value.split(",")]:
        if name != "identity":
            body = ENC[name](body)
    return body


def main():
    rnd = random.Random(20240601)
    text = b"".join(b'{"id":%d,"name":"item-%d","ok":true},\n' % (i, rnd.randrange(1000))
                    for i in range(120))
    noise = bytes(rnd.randrange(256) for _ in range(600))
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    for i, value in enumerate(CODINGS):
        slug = value.replace(", ", "-")
        seeds[f"{slug}-text"] = bytes([i]) + encode(value, text)
        if "," not in value:
            seeds[f"{slug}-noise"] = bytes([i]) + encode(value, noise)
    seeds["deflate-raw-text"] = bytes([1]) + raw_deflate(text)
    seeds["gzip-two-members"] = bytes([0]) + gzip(text[:900]) + gzip(noise[:100])
    cz = zstandard.ZstdCompressor(level=1)
    seeds["zstd-two-frames"] = bytes([3]) + cz.compress(text) + cz.compress(b"tail")
    seeds["gzip-zeros-bomb"] = bytes([0]) + gzip(bytes(2 * 1024 * 1024))
    seeds["br-empty"] = bytes([2]) + brotli.compress(b"")
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {OUT}")


main()
