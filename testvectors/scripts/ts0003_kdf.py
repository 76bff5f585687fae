#!/usr/bin/env python3
"""Writes data/ts0003/kdf.json: oneM2M TS-0003 key derivation and key identifier vectors.

Every value is computed here with Python's standard library only (hmac, hashlib, unicodedata),
independently of m2msec's code:

- Km   = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Master Credential derivation" || UTF-8(NFKC(MAF-ID)))
         (published TS-0003 V3.18.0 10.3.2; draft 9.4; m2msec decision D6)
- Kpsa = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"
         || UTF-8(NFKC(Enrolee-B-ID)))  (published 10.3.3)
- exporter = TLS 1.2 PRF-SHA256(master_secret, label, client_random || server_random), 48 bytes,
         no context (RFC 5705 section 4; published 10.3.1; D1); relative id = out[0:16],
         key = out[16:48]; KeID / MAF key identifier = HEX(relative id) upper-case "@" FQDN
         (published 10.3.4, 10.3.5; D2)
- key identifier parsing: the relative@FQDN rules of published 10.3.4 / 10.3.5 / 10.5 / 10.6 as
         m2msec decided them (docs/spec-map.md), re-implemented here with regular expressions.

Inputs are fixed (byte ranges and SHA-256 of names), so re-running rewrites the same file.
It also checks the spec-notes illustration (Ke = 00..1f, MAF-ID maf.example.com) before writing.

Run: python3 testvectors/scripts/ts0003_kdf.py   (any Python 3.8+; --check compares instead of writing)
"""
import hashlib
import hmac
import json
import pathlib
import re
import sys
import unicodedata

OUT = pathlib.Path(__file__).resolve().parent.parent / "data" / "ts0003" / "kdf.json"

KM_LABEL = b"oneM2M Enrolment Key to Master Credential derivation"
KPSA_LABEL = b"oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"
BOOTSTRAP = "EXPORTER-oneM2M-Bootstrap"
CONNECTION = "EXPORTER-oneM2M-Connection"

# spec-notes.md 4.1 illustration (self-computed there, not an official vector).
ILLUSTRATION_KM = "3055bf32dd9c95586aaffa2ae2e165dfeffd0803566e16bdd343171457da8a5e"


def h(name: str, n: int = 32) -> bytes:
    """Deterministic filler bytes: SHA-256 chain over a name."""
    out = b""
    block = name.encode()
    while len(out) < n:
        block = hashlib.sha256(b"m2msec ts0003 vector " + block).digest()
        out += block
    return out[:n]


def nfkc_utf8(s: str) -> bytes:
    for ch in s:
        # Only characters assigned in this Python's Unicode version: NFKC is stable for them
        # (Unicode normalization stability policy), whatever version the Rust crate has.
        assert unicodedata.category(ch) != "Cn", f"unassigned {ch!r}"
    return unicodedata.normalize("NFKC", s).encode("utf-8")


def kdf(ke: bytes, label: bytes, ident: str) -> bytes:
    return hmac.new(ke, label + nfkc_utf8(ident), hashlib.sha256).digest()


def p_sha256(secret: bytes, seed: bytes, n: int) -> bytes:
    """RFC 5246 section 5: A(0) = seed, A(i) = HMAC(secret, A(i-1)), out = HMAC(secret, A(i) || seed)..."""
    out, a = b"", seed
    while len(out) < n:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:n]


def export_no_context(ms: bytes, cr: bytes, sr: bytes, label: str, n: int) -> bytes:
    """RFC 5705 section 4 with no context: PRF(master_secret, label, client_random + server_random)."""
    return p_sha256(ms, label.encode("ascii") + cr + sr, n)


# --- identifiers --------------------------------------------------------------------------
LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
FQDN = re.compile(rf"{LABEL}(\.{LABEL})*")
REL = re.compile(r"[A-Za-z0-9._-]{1,255}")
HEX32 = re.compile(r"[0-9A-Fa-f]{32}")


def canonical_id(kind: str, text: str):
    """The canonical KeyId text, or None if m2msec must refuse it."""
    if len(text.encode("utf-8")) > 255 + 1 + 253 or text.count("@") != 1:
        return None
    rel, fqdn = text.split("@")
    if not REL.fullmatch(rel) or len(fqdn) > 253 or not FQDN.fullmatch(fqdn):
        return None
    if all(l.isdigit() for l in fqdn.split(".")):
        return None  # an IPv4-like literal is not a DNS name
    if kind == "Ke" and not HEX32.fullmatch(rel):
        return None
    if kind == "Ke" or (kind == "Kc" and HEX32.fullmatch(rel)):
        rel = rel.upper()
    return f"{rel}@{fqdn}"


def main() -> int:
    ke0 = bytes(range(32))
    km0 = kdf(ke0, KM_LABEL, "maf.example.com").hex()
    if km0 != ILLUSTRATION_KM:
        print(f"spec-notes illustration not reproduced: {km0}")
        return 1

    km_cases = [
        ("spec-notes 4.1 illustration: Ke 00..1f, ASCII MAF-ID", ke0, "maf.example.com"),
        ("ASCII MAF-ID, upper case is not folded", ke0, "MAF.Example.COM"),
        ("full-width letters normalise to ASCII (same Km as the illustration)", ke0,
         "\uff4d\uff41\uff46.example.com"),
        ("ligature fi (U+FB01) normalises to 'fi'", h("km ligature"), "\ufb01rst-maf.example.com"),
        ("combining diaeresis composes to U+00FC", h("km compose"), "maf.bu\u0308cher.example"),
        ("precomposed U+00FC is already NFKC", h("km compose"), "maf.b\u00fccher.example"),
        ("Angstrom sign U+212B becomes U+00C5", h("km angstrom"), "\u212bngstr\u00f6m-maf.example"),
        ("superscript two and Roman numeral twelve", h("km compat"), "maf\u00b2.\u216b.example"),
        ("empty MAF-ID (label only)", h("km empty"), ""),
        ("CJK MAF-ID unchanged by NFKC", h("km cjk"), "\u8a8d\u8a3c.example.jp"),
    ]
    kpsa_cases = [
        ("Absolute AE-ID", h("kpsa ae"), "//m2m.prov.com/CSE3219/C9886"),
        ("SP-relative CSE-ID", h("kpsa cse"), "/CSE3219"),
        ("full-width slash and digits normalise", h("kpsa cse"), "\uff0fCSE\uff13\uff12\uff11\uff19"),
        ("Ke 00..1f with the illustration's MAF-ID", ke0, "maf.example.com"),
    ]

    doc = {
        "source": (
            "oneM2M TS-0003 V3.18.0 clauses 10.3.1 (exporter labels, 48 bytes, 16-byte id || 32-byte key), "
            "10.3.2 (Km), 10.3.3 (Kpsa), 10.3.4 (KeID), 10.3.5 (MAF key identifier), 10.5/10.6 (KpsaID/KmID); "
            "draft clauses 8.3.1, 9.1, 9.3, 9.4; m2msec decisions D1, D2, D4, D6 (docs/spec-map.md). "
            "Values computed independently of m2msec by testvectors/scripts/ts0003_kdf.py with Python's "
            "hmac/hashlib/unicodedata (NFKC)."
        ),
        "unicode_version_python": unicodedata.unidata_version,
        "notes": (
            "All byte values are hex. Inputs are synthetic (no official TS-0003 vectors exist). "
            "*_nfkc_utf8 is the UTF-8 of the NFKC form that enters the HMAC. Exporter cases derive the 48 bytes "
            "with RFC 5705 and no context; key_id_cases give canonical = null for identifiers m2msec refuses."
        ),
        "km": [],
        "kpsa": [],
        "exporter": [],
        "key_id_cases": [],
    }
    for name, ke, ident in km_cases:
        doc["km"].append({"name": name, "ke": ke.hex(), "maf_id": ident,
                          "maf_id_nfkc_utf8": nfkc_utf8(ident).hex(),
                          "km": kdf(ke, KM_LABEL, ident).hex()})
    for name, ke, ident in kpsa_cases:
        doc["kpsa"].append({"name": name, "ke": ke.hex(), "enrolee_b_id": ident,
                            "enrolee_b_id_nfkc_utf8": nfkc_utf8(ident).hex(),
                            "kpsa": kdf(ke, KPSA_LABEL, ident).hex()})

    exp_cases = [
        ("bootstrap, MEF mef.example.com, then Km for maf.example.com", BOOTSTRAP, "mef.example.com",
         "maf.example.com"),
        ("bootstrap, MEF FQDN kept as configured (mixed case)", BOOTSTRAP, "MEF-1.Operator.example",
         "\uff4d\uff41\uff46.operator.example"),
        ("connection, MAF maf.example.com", CONNECTION, "maf.example.com", None),
        ("connection, MAF with underscore label", CONNECTION, "maf_2.in.example.org", None),
    ]
    for name, label, fqdn, maf_id in exp_cases:
        ms, cr, sr = h(name + " ms", 48), h(name + " cr"), h(name + " sr")
        out = export_no_context(ms, cr, sr, label, 48)
        rel, key = out[:16], out[16:]
        case = {"name": name, "label": label, "master_secret": ms.hex(), "client_random": cr.hex(),
                "server_random": sr.hex(), "exporter": out.hex(), "fqdn": fqdn,
                "relative_id": rel.hex(), "key": key.hex(), "key_id": rel.hex().upper() + "@" + fqdn}
        if maf_id is not None:
            case["maf_id"] = maf_id
            case["km"] = kdf(key, KM_LABEL, maf_id).hex()
        doc["exporter"].append(case)

    hexid = "00112233445566778899aabbccddeeff"
    id_inputs = [
        ("Ke", hexid + "@mef.example.com"),
        ("Ke", hexid.upper() + "@MEF.Example.com"),
        ("Ke", hexid[:-1] + "@mef.example.com"),
        ("Ke", hexid[:-1] + "g@mef.example.com"),
        ("Ke", "thiskey@mymef.com"),
        ("Kc", hexid + "@maf.example.com"),
        ("Kc", "token-17.a_b@maf.example.com"),
        ("Km", "AE123-lock@in.provider.com"),
        ("Km", "ae123-LOCK@IN.provider.com"),
        ("Kpsa", "test@onem2m.com"),
        ("Kpm", "thiskey@mymef.com"),
        ("Kpsa", "@onem2m.com"),
        ("Kpsa", "test"),
        ("Kpsa", "te st@onem2m.com"),
        ("Kpsa", "test@onem2m.com."),
        ("Kpsa", "test@a@onem2m.com"),
        ("Kpsa", "test@10.0.0.1"),
        ("Kpsa", "test@-bad.example"),
        ("Kpsa", "t\u00e9st@onem2m.com"),
        ("Km", "a" * 255 + "@" + ".".join(["b" * 63] * 3) + ".ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"),
        ("Km", "a" * 256 + "@maf.example.com"),
    ]
    for kind, text in id_inputs:
        doc["key_id_cases"].append({"kind": kind, "input": text, "canonical": canonical_id(kind, text)})

    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv[1:]:
        same = OUT.read_text(encoding="utf-8") == text
        print("kdf.json up to date" if same else "kdf.json differs from the script's output")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"spec-notes illustration reproduced: Km = {km0}")
    print(f"wrote {OUT}: {len(doc['km'])} km, {len(doc['kpsa'])} kpsa, {len(doc['exporter'])} exporter, "
          f"{len(doc['key_id_cases'])} key id cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
