#!/usr/bin/env python3
"""Recomputes every value of data/gba/milenage.json with an independent Milenage (TS 35.206).

E_K is AES-128 from pyca/cryptography (Debian's /usr/bin/python3 has it as python3-cryptography);
everything else is written out here from TS 35.206 4.1, independently of m2msec's Rust code:

    OPc  = E_K(OP) xor OP
    TEMP = E_K(RAND xor OPc)
    OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc,  IN1 = SQN||AMF||SQN||AMF
    OUTi = E_K(rot(TEMP xor OPc, ri) xor ci) xor OPc           (i = 2..5)
    r = 64, 0, 32, 64, 96 bits; c = 0, 1, 2, 4, 8 in the last byte

Exits non-zero on any mismatch (a typing error in the data file shows here).
Run: /usr/bin/python3 testvectors/scripts/check_milenage.py
"""
import json
import pathlib
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "gba" / "milenage.json"


def aes(k: bytes, b: bytes) -> bytes:
    e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return e.update(b) + e.finalize()


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(i ^ j for i, j in zip(a, b))


def rot(b: bytes, bits: int) -> bytes:
    n = bits // 8
    return b[n:] + b[:n]


def const(c: int) -> bytes:
    return bytes(15) + bytes([c])


def milenage(k, opc, rand, sqn, amf):
    temp = aes(k, xor(rand, opc))
    in1 = sqn + amf + sqn + amf
    out1 = xor(aes(k, xor(xor(temp, rot(xor(in1, opc), 64)), const(0))), opc)
    o = [xor(aes(k, xor(rot(xor(temp, opc), r), const(c))), opc) for r, c in [(0, 1), (32, 2), (64, 4), (96, 8)]]
    return {
        "f1": out1[:8], "f1_star": out1[8:], "f2": o[0][8:], "f3": o[1], "f4": o[2],
        "f5": o[0][:6], "f5_star": o[3][:6],
    }


def main() -> int:
    doc = json.loads(DATA.read_text())
    bad = 0
    for s in doc["sets"]:
        v = {k: bytes.fromhex(x) for k, x in s.items() if k not in ("name", "copied_from")}
        if xor(aes(v["k"], v["op"]), v["op"]) != v["opc"]:
            print(f"{s['name']}: OPc mismatch")
            bad += 1
        for f, got in milenage(v["k"], v["opc"], v["rand"], v["sqn"], v["amf"]).items():
            if got != v[f]:
                print(f"{s['name']}: {f} got {got.hex()} want {v[f].hex()}")
                bad += 1
    print(f"milenage: {len(doc['sets'])} sets, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
