#!/usr/bin/env python3
"""Writes data/gba/kdf.json: TS 33.220 Annex B GBA key derivation, NAF_Id, B-TID and psk_identity vectors.

Computed with Python's standard library only (hmac, hashlib, base64), independently of m2msec:

- KDF (B.2): HMAC-SHA-256(Key, FC || P0 || L0 || ... || Pn || Ln), Li = 2-byte big-endian len(Pi)
- Ks_NAF = Ks_ext_NAF = KDF(Ks, 0x01, "gba-me", RAND, IMPI, NAF_Id); Ks_int_NAF = same with "gba-u" (B.3)
- NAF_Id = FQDN || Ua security protocol id (H.1); (D)TLS-PSK: 01 00 01 || suite code (D10, H.3);
  HTTP Digest: 01 00 00 00 02
- B-TID = base64(RAND) "@" BSF FQDN (4.5.2), standard alphabet with padding
- psk_identity (D10): prefix ";" B-TID, also "." and the bare B-TID accepted

Ks are CK || IK of the TS 35.208 Milenage test sets (data/gba/milenage.json). Before writing, the
spec-notes 6.2 illustration (set 1, user1_private@home1.net, maf.example.com || 01 00 01 00 AE), the
spec-notes generic-KDF plumbing check (FC 0x11) and the spec-notes 6.3 B-TID are reproduced.

Run: python3 testvectors/scripts/gba_kdf.py   (--check compares with the file instead of writing)
"""
import base64
import hashlib
import hmac
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent.parent / "data" / "gba"
OUT = HERE / "kdf.json"


def kdf(key: bytes, fc: int, params) -> bytes:
    s = bytes([fc])
    for p in params:
        s += p + len(p).to_bytes(2, "big")
    return hmac.new(key, s, hashlib.sha256).digest()


def naf_id(fqdn: str, ua: bytes) -> bytes:
    return fqdn.encode() + ua


def btid(rand: bytes, bsf: str) -> str:
    return base64.b64encode(rand).decode() + "@" + bsf


def main() -> int:
    sets = json.loads((HERE / "milenage.json").read_text())["sets"]
    ks = [bytes.fromhex(s["f3"]) + bytes.fromhex(s["f4"]) for s in sets]
    rands = [bytes.fromhex(s["rand"]) for s in sets]

    # spec-notes checks
    nid = naf_id("maf.example.com", bytes.fromhex("01000100ae"))
    assert kdf(ks[0], 1, [b"gba-me", rands[0], b"user1_private@home1.net", nid]).hex() == \
        "b077df089d01918257754a19d0fcaa05302cf6c7eb805ab8f08f6ce0819c8b91"
    assert kdf(ks[0], 1, [b"gba-u", rands[0], b"user1_private@home1.net", nid]).hex() == \
        "b301c83ab5b28712a2fc8610c916c05fb0baba04faaa8ba4aa51e796edfc82b4"
    plumb_key = bytes.fromhex("238E457E0F758BADBCA8D34BB2612C10428D426757CB5553B2B184FA64BFC549")
    assert kdf(plumb_key, 0x11, [bytes.fromhex("DB1A3569")]).hex().upper() == \
        "8EB1BF0083BD79281EF7034BF677E9EC529F196E15287514A2D122ACF713B8E8"
    assert btid(rands[0], "bsf.home1.net") == "I1U8vpY3qJ0hiuZNrke/NQ=="+"@bsf.home1.net"

    generic = [
        {"name": "spec-notes 6.2 plumbing (FC 0x11, KeNB-style)", "key": plumb_key.hex(), "fc": 0x11,
         "params": ["db1a3569"]},
        {"name": "no parameters", "key": "00" * 32, "fc": 0x01, "params": []},
        {"name": "empty parameter", "key": ks[1].hex(), "fc": 0x01, "params": ["", "00"]},
        {"name": "300-byte parameter", "key": ks[2].hex(), "fc": 0x7f, "params": ["ab" * 300, "01"]},
        {"name": "16-byte key", "key": ks[3][:16].hex(), "fc": 0xff, "params": ["67 62 61".replace(" ", "")]},
    ]
    for g in generic:
        g["output"] = kdf(bytes.fromhex(g["key"]), g["fc"], [bytes.fromhex(p) for p in g["params"]]).hex()

    nafs = [
        ("maf.example.com", "01000100ae", "user1_private@home1.net"),    # PSK_AES_128_CBC_SHA256
        ("maf.example.com", "010001c0a8", "user1_private@home1.net"),    # PSK_AES_128_CCM_8
        ("cse.m2m.example.org", "010001c0a4", "001010000000001@ims.mnc001.mcc001.3gppnetwork.org"),
        ("naf.operator.example", "0100000002", "user2_private@home1.net"),  # HTTP Digest
        ("MAF.Example.COM", "01000100ae", "user1_private@home1.net"),    # no case folding
        ("a", "0000000000", ""),
    ]
    naf_cases = []
    for i, (fqdn, ua, impi) in enumerate(nafs):
        for si in (0, 1, 2, 5, 19) if i < 2 else (i % 6, 10 + i):
            if si >= len(sets):
                continue
            nid = naf_id(fqdn, bytes.fromhex(ua))
            r = rands[si]
            naf_cases.append({
                "name": f"set {si + 1}, {fqdn}, {ua}",
                "ks": ks[si].hex(), "rand": r.hex(), "impi": impi, "naf_fqdn": fqdn,
                "ua_protocol_id": ua, "naf_id": nid.hex(),
                "ks_naf": kdf(ks[si], 1, [b"gba-me", r, impi.encode(), nid]).hex(),
                "ks_int_naf": kdf(ks[si], 1, [b"gba-u", r, impi.encode(), nid]).hex(),
            })

    btids = [{"rand": rands[i].hex(), "bsf_fqdn": bsf, "btid": btid(rands[i], bsf)}
             for i, bsf in [(0, "bsf.home1.net"), (1, "bsf.mnc001.mcc001.pub.3gppnetwork.org"),
                            (2, "mef.example.com"), (5, "b"), (19, "bsf.home1.net")]]

    b1 = btid(rands[0], "bsf.home1.net")
    psk = [
        {"input": b1, "prefix": None, "btid": b1},
        {"input": "3GPP-bootstrapping;" + b1, "prefix": "me", "btid": b1},
        {"input": "3GPP-bootstrapping." + b1, "prefix": "me", "btid": b1},
        {"input": "3GPP-bootstrapping-uicc;" + b1, "prefix": "uicc", "btid": b1},
        {"input": "3GPP-bootstrapping-uicc." + b1, "prefix": "uicc", "btid": b1},
        {"input": "Zm9vYg==@bsf.example", "prefix": None, "btid": "Zm9vYg==@bsf.example"},
        {"input": "3GPP-bootstrapping-digest;" + b1, "prefix": None, "btid": None},
        {"input": "3GPP-bootstrapping" + b1, "prefix": None, "btid": None},
        {"input": "3GPP-bootstrapping;", "prefix": None, "btid": None},
        {"input": "3gpp-bootstrapping;" + b1, "prefix": None, "btid": None},
        {"input": "", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ==", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ==@", "prefix": None, "btid": None},
        {"input": "@bsf.home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ@bsf.home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NR==@bsf.home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke_NQ==@bsf.home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ==@bsf@home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ==@bsf..home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ==@-bsf.home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ== @bsf.home1.net", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.home1.net\n", "prefix": None, "btid": None},
        {"input": "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.h\u00f6me1.net", "prefix": None, "btid": None},
        {"input": "QUFB" * 130 + "@bsf.home1.net", "prefix": None, "btid": None},
    ]

    doc = {
        "source": "3GPP TS 33.220 Annex B.2/B.3 (GBA KDF, FC 0x01, 'gba-me'/'gba-u'), H.1/H.3 (NAF_Id, Ua id "
                  "01 00 01 yy zz for (D)TLS-PSK), 4.5.2 (B-TID); m2msec decision D10 (psk_identity forms). No "
                  "official GBA Ks_NAF vector exists (spec-notes 6.2): the values are computed by "
                  "scripts/gba_kdf.py with hmac/hashlib/base64, from Ks = CK||IK and RAND of the TS 35.208 sets "
                  "in milenage.json; the script first reproduces the spec-notes 6.2/6.3 illustrations.",
        "kdf": generic,
        "naf_keys": naf_cases,
        "btid": btids,
        "psk_identity": psk,
    }
    text = json.dumps(doc, indent=1) + "\n"
    if "--check" in sys.argv:
        same = OUT.read_text() == text
        print("gba kdf:", "same" if same else "DIFFERENT")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT}: {len(generic)} kdf, {len(naf_cases)} naf keys, {len(btids)} b-tid, {len(psk)} psk_identity")
    return 0


if __name__ == "__main__":
    sys.exit(main())
