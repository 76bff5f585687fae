#!/usr/bin/python3
"""Captures RFC 5705 exporter vectors from OpenSSL into ../data/exporter/openssl.json.

Run with Debian's interpreter, which has pyOpenSSL (python3-openssl):

    /usr/bin/python3 testvectors/scripts/capture_exporter.py

For each cipher suite in SUITES it makes a full TLS 1.2 handshake between two pyOpenSSL
Connection objects (client and server) over memory BIOs, with a throwaway self-signed P-256
ECDSA certificate made in-process, and records from the client side:
client_random(), server_random(), master_key(), and export_keying_material(label, n, context)
for the labels in LABELS and the contexts None, b"" and b"interop-context". Both ends must
export the same bytes. Every suite uses the SHA-256 PRF, as m2msec does. Each value is then
recomputed from (master secret, randoms, label, context) with a plain-Python P_SHA256
(RFC 5246 section 5, RFC 5705 section 4) before it is written; the script fails on a mismatch.

The randoms and keys are fresh on every run, so re-running rewrites the file with new,
equally valid values.
"""
import datetime
import hashlib
import hmac
import json
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

OUT = pathlib.Path(__file__).resolve().parent.parent / "data" / "exporter" / "openssl.json"

# TLS 1.2 suites whose PRF is SHA-256 (RFC 5246 5; RFC 5289; RFC 7251; RFC 7905).
SUITES = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-CCM8",
    "ECDHE-ECDSA-AES128-CCM",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
]
LABELS = [(b"EXPERIMENTAL-interop", 32), (b"EXPORTER-oneM2M-Bootstrap", 48)]
CONTEXTS = [None, b"", b"interop-context"]


def p_sha256(secret: bytes, seed: bytes, n: int) -> bytes:
    out, a = b"", seed
    while len(out) < n:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:n]


def rfc5705(ms: bytes, cr: bytes, sr: bytes, label: bytes, ctx, n: int) -> bytes:
    seed = cr + sr
    if ctx is not None:
        seed += len(ctx).to_bytes(2, "big") + ctx
    return p_sha256(ms, label + seed, n)


def self_signed():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m2msec-testvectors")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return crypto.PKey.from_cryptography_key(key), crypto.X509.from_cryptography(cert)


def pump(a: SSL.Connection, b: SSL.Connection) -> None:
    """Moves pending bytes from a's outgoing BIO to b's incoming BIO."""
    while True:
        try:
            data = a.bio_read(65536)
        except SSL.WantReadError:
            return
        b.bio_write(data)


def handshake(suite: str, pkey, cert):
    sctx = SSL.Context(SSL.TLS_METHOD)
    sctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    sctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    sctx.set_cipher_list(suite.encode())
    sctx.use_privatekey(pkey)
    sctx.use_certificate(cert)
    cctx = SSL.Context(SSL.TLS_METHOD)
    cctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    cctx.set_cipher_list(suite.encode())
    cctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)  # throwaway cert, nothing to trust

    server = SSL.Connection(sctx, None)
    server.set_accept_state()
    client = SSL.Connection(cctx, None)
    client.set_connect_state()
    done = {id(client): False, id(server): False}
    for _ in range(20):
        for c in (client, server):
            if not done[id(c)]:
                try:
                    c.do_handshake()
                    done[id(c)] = True
                except SSL.WantReadError:
                    pass
        pump(client, server)
        pump(server, client)
        if all(done.values()):
            break
    else:
        raise RuntimeError("handshake did not finish")
    assert client.get_protocol_version_name() == "TLSv1.2", client.get_protocol_version_name()
    assert client.get_cipher_name() == suite, client.get_cipher_name()
    return client, server


def main() -> int:
    pkey, cert = self_signed()
    sessions = []
    for suite in SUITES:
        client, server = handshake(suite, pkey, cert)
        cr, sr, ms = client.client_random(), client.server_random(), client.master_key()
        assert (cr, sr, ms) == (server.client_random(), server.server_random(), server.master_key())
        assert len(cr) == 32 and len(sr) == 32 and len(ms) == 48
        exports = []
        for label, n in LABELS:
            for ctx in CONTEXTS:
                out = client.export_keying_material(label, n, ctx)
                if out != server.export_keying_material(label, n, ctx):
                    raise RuntimeError("client and server exports differ")
                if out != rfc5705(ms, cr, sr, label, ctx, n):
                    raise RuntimeError(f"OpenSSL export differs from the Python P_SHA256 for {suite} {label} {ctx}")
                exports.append(
                    {
                        "label": label.decode("ascii"),
                        "context": None if ctx is None else ctx.hex(),
                        "length": n,
                        "output": out.hex(),
                    }
                )
        # None and an empty context must differ (RFC 5705 4: the empty one still has its length).
        for label, _ in LABELS:
            none = [e for e in exports if e["label"] == label.decode() and e["context"] is None][0]
            empty = [e for e in exports if e["label"] == label.decode() and e["context"] == ""][0]
            assert none["output"] != empty["output"]
        sessions.append(
            {
                "name": f"OpenSSL TLS 1.2 {suite}",
                "cipher_suite": suite,
                "client_random": cr.hex(),
                "server_random": sr.hex(),
                "master_secret": ms.hex(),
                "exports": exports,
            }
        )
    doc = {
        "source": "Captured from "
        + SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()
        + " via pyOpenSSL "
        + __import__("OpenSSL").__version__
        + " by testvectors/scripts/capture_exporter.py (RFC 5705 section 4 keying-material exporter, "
        "TLS 1.2 PRF with SHA-256); each output also recomputed with a plain-Python P_SHA256 before writing",
        "notes": "All values are hex except 'label' (ASCII). 'context': null means no context "
        "(export_keying_material(..., None)); \"\" means an empty context, which RFC 5705 distinguishes. "
        "master_secret is OpenSSL's master_key() (extended master secret when negotiated; the exporter "
        "only uses the 48-byte value).",
        "sessions": sessions,
    }
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {len(sessions)} sessions, {sum(len(s['exports']) for s in sessions)} exports to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
