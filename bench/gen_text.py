#!/usr/bin/env python3
"""Deterministic JSON-ish API text for the compressed-response workloads of bench/run.sh.

usage: gen_text.py DIR MIB      (MIB 0: echo16k.json only)

Writes into DIR (the run's runtime directory):
  echo16k.json   a ~16 KiB JSON body of records (keys, ids, words, numbers, dates) whose
                 "request" object holds the placeholder @AUTH@ twice: nginx's sub_filter
                 puts the received Authorization value there, so the body carries what
                 the upstream got (through sealgate: the secret, which the scrubber
                 replaces with the handle)
  bulk.txt       exactly MIB MiB of the same kind of text (a JSON object with an "items"
                 array, whitespace-padded to the size), no secret in it
  bulk.txt.gz    bulk.txt as one gzip member at level 1 (what `gzip -1` makes), served
                 with Content-Encoding: gzip (nginx gzip_static)

Prints one JSON line: sizes, the compression ratio, seconds taken. Same bytes on every
run (fixed seeds). The bulk text is a 4 MiB block of distinct records, repeated with the
records rotated: deflate's window is 32 KiB, so the repetition does not change the
ratio (about 5-7x at level 1, well under sealgate's 200:1 decode limit), and building
it costs well under a second; compressing it is the bulk of the time (gzip -1, run
beside the generator through a pipe).
"""
import json
import os
import random
import subprocess
import sys
import time

WORDS = (
    "account active address alpha amount api archive audit balance batch beta billing "
    "bucket build cache callback campaign cancel capture card channel charge checkout "
    "client cluster commit config contact container coupon credit currency customer "
    "dashboard dataset default delivery deploy device discount dispute domain draft "
    "endpoint event export feature file filter fleet gateway group health image import "
    "index invoice item job key label ledger limit listing locale log merchant message "
    "metric model monitor network node note order owner package page partner payment "
    "payout pending plan policy price product profile project queue quota rate receipt "
    "record refund region release report request resource retry review role route "
    "schedule secret segment service session settlement shipment signal snapshot source "
    "status storage stream subscription summary support tag task team template tenant "
    "ticket token topic trace transfer trial upload usage user vendor version volume "
    "warehouse webhook workflow workspace zone").split()
STATUSES = ("active", "pending", "failed", "succeeded", "canceled", "archived", "draft")
CURRENCIES = ("usd", "eur", "gbp", "jpy", "chf", "cad")
WEIGHTS = [1 / (k + 1) for k in range(len(WORDS))]
BLOCK = 4 * 1048576   # distinct text repeated (rotated) to fill the bulk file


def record(rnd, i):
    """One API object as compact JSON text: ids and times move with i, words follow a
    Zipf-like law, a few hundred owners; like a real list endpoint, which gzip -1
    shrinks about 6x."""
    w = rnd.choice
    words = " ".join(rnd.choices(WORDS, WEIGHTS, k=rnd.randint(3, 12)))
    created = 1700000000 + 37 * i + rnd.randint(0, 30)
    owner = rnd.randint(0, 299)
    rid = "itm_%010x" % (0x5eed0000 + 3 * i)
    return json.dumps({
        "id": rid,
        "object": "item",
        "created": created,
        "updated": created + rnd.choice((0, 0, 0, 60, 3600, 86400)),
        "status": rnd.choices(STATUSES, (8, 3, 1, 6, 1, 1, 1))[0],
        "amount": rnd.choice((500, 1000, 1999, 2500, 4999, 9900, rnd.randint(100, 99999))),
        "currency": rnd.choices(CURRENCIES, (10, 4, 2, 1, 1, 1))[0],
        "livemode": False,
        "name": "%s %s" % (rnd.choices(WORDS, WEIGHTS)[0].title(), rnd.choices(WORDS, WEIGHTS)[0]),
        "description": words,
        "tags": rnd.choices(WORDS[:20], k=rnd.randint(0, 3)),
        "metadata": {"region": "eu-west-%d" % rnd.randint(1, 3), "tier": w(("free", "pro", "team"))},
        "owner": {"id": "usr_%06d" % owner, "email": "%s.%s@example.com" % (
            WORDS[owner % len(WORDS)], WORDS[owner * 7 % len(WORDS)])},
        "url": "/v1/items/" + rid,
        "deleted": None,
    }, separators=(",", ":"))


def echo_body(rnd, size):
    """~size bytes of JSON with the @AUTH@ placeholder in its request object."""
    head = ('{"object":"list","request":{"method":"GET","path":"/v1/items",'
            '"authorization":"@AUTH@","headers":{"authorization":"@AUTH@"}},"data":[')
    recs, n, i = [], len(head) + 40, 0
    while n < size:
        recs.append(record(rnd, i))
        n += len(recs[-1]) + 1
        i += 1
    return (head + ",".join(recs) + '],"has_more":true,"count":%d}\n' % i).encode()


def bulk_block(rnd):
    """BLOCK bytes or a little more of records, as a list of lines (",\\n"-joined later)."""
    lines, n, i = [], 0, 0
    while n < BLOCK:
        lines.append(record(rnd, i))
        n += len(lines[-1]) + 2
        i += 1
    return lines


def write_bulk(path, total, lines, sink):
    """Exactly total bytes to the file and to sink: the block, rotated per repetition, cut
    after a whole record, then space padding and the closing record."""
    head, tail = b'{"object":"list","items":[\n', b'{"end":true}\n]}\n'
    body_end = total - len(tail)
    if body_end < len(head):
        raise SystemExit("gen_text: size too small")
    done, rep, step = 0, 0, max(1, len(lines) // 7)
    with open(path, "wb") as f:
        def put(b):
            nonlocal done
            f.write(b)
            sink.write(b)
            done += len(b)
        put(head)
        while done < body_end:
            k = (rep * step) % len(lines)
            chunk = (",\n".join(lines[k:] + lines[:k]) + ",\n").encode()
            if done + len(chunk) > body_end:
                chunk = chunk[:chunk.rfind(b"\n", 0, body_end - done) + 1]
                put(chunk + b" " * (body_end - done - len(chunk)))
            else:
                put(chunk)
            rep += 1
        put(tail)
    return done


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    d, mib = sys.argv[1], int(sys.argv[2])
    t0 = time.monotonic()
    echo = echo_body(random.Random(16384), 16384)
    with open(os.path.join(d, "echo16k.json"), "wb") as f:
        f.write(echo)
    total = mib * 1048576
    if total == 0:                  # only the echo body (no download workload)
        print(json.dumps({"echo_bytes": len(echo), "seconds": round(time.monotonic() - t0, 2)}))
        return
    gz = os.path.join(d, "bulk.txt.gz")
    with open(gz, "wb") as out:
        p = subprocess.Popen(["gzip", "-1", "-n", "-c"], stdin=subprocess.PIPE, stdout=out)
        n = write_bulk(os.path.join(d, "bulk.txt"), total, bulk_block(random.Random(268435456)), p.stdin)
        p.stdin.close()
        if p.wait() != 0:
            raise SystemExit("gen_text: gzip failed")
    gzn = os.path.getsize(gz)
    print(json.dumps({"echo_bytes": len(echo), "bulk_bytes": n, "gz_bytes": gzn,
                      "ratio": round(n / gzn, 2), "seconds": round(time.monotonic() - t0, 2)}))


if __name__ == "__main__":
    main()
