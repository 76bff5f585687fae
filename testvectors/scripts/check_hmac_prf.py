#!/usr/bin/env python3
"""Cross-checks the typed-in HMAC-SHA-256 (RFC 4231) and TLS 1.2 PRF vectors in ../data.

Each expected value in data/hmac-sha256/rfc4231.json and data/prf/tls12_prf_sha256.json was
typed in by hand from its source document; this script recomputes every one with Python's
standard hmac/hashlib modules (and a from-scratch P_SHA256 built on them, RFC 5246 section 5)
and exits non-zero on the first mismatch.

Run: python3 testvectors/scripts/check_hmac_prf.py   (any Python 3 with the standard library)
"""
import hashlib
import hmac
import json
import pathlib
import sys

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


def p_sha256(secret: bytes, seed: bytes, n: int) -> bytes:
    """P_SHA256 from RFC 5246 section 5: A(0) = seed, A(i) = HMAC(secret, A(i-1))."""
    out = b""
    a = seed
    while len(out) < n:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:n]


def tls12_prf(secret: bytes, label: bytes, seed: bytes, n: int) -> bytes:
    return p_sha256(secret, label + seed, n)


def main() -> int:
    failures = 0
    doc = json.loads((DATA / "hmac-sha256" / "rfc4231.json").read_text())
    for t in doc["tests"]:
        key, data, want = (bytes.fromhex(t[k]) for k in ("key", "data", "mac"))
        got = hmac.new(key, data, hashlib.sha256).digest()[: len(want)]
        ok = got == want
        failures += not ok
        print(f"hmac-sha256 {'ok  ' if ok else 'FAIL'} {t['name']}" + ("" if ok else f": got {got.hex()}"))

    doc = json.loads((DATA / "prf" / "tls12_prf_sha256.json").read_text())
    for t in doc["tests"]:
        secret, seed, want = (bytes.fromhex(t[k]) for k in ("secret", "seed", "output"))
        got = tls12_prf(secret, t["label"].encode("ascii"), seed, len(want))
        ok = got == want
        failures += not ok
        print(f"prf         {'ok  ' if ok else 'FAIL'} {t['name']}" + ("" if ok else f": got {got.hex()}"))

    # RFC 4231 4.7 (Test Case 6) also pins the key-hashing path: HMAC(k) == HMAC(SHA256(k)) for long k.
    long_key = bytes([0xAA]) * 131
    msg = b"Test Using Larger Than Block-Size Key - Hash Key First"
    assert hmac.new(long_key, msg, hashlib.sha256).digest() == hmac.new(
        hashlib.sha256(long_key).digest(), msg, hashlib.sha256
    ).digest()

    print(f"{'all vectors match' if failures == 0 else f'{failures} mismatches'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
