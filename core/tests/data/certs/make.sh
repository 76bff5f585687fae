#!/bin/sh
# Makes the OpenSSL-produced fixtures of core/tests/cert_verify.rs: certificates made by an
# independent X.509 producer, so the verifier's parser is not only tested against our own builder.
#
# Run from anywhere with OpenSSL 3.0 (used: OpenSSL 3.0.x, Debian):
#     sh core/tests/data/certs/make.sh
# Keys and ECDSA signatures are fresh each run (OpenSSL's nonces are random), so re-running
# rewrites every file with new, equally valid values. The validity dates are fixed
# (`openssl ca -startdate/-enddate`) so the tests can pick `now` inside them:
#     root   2025-01-01 .. 2045-01-01   CA, keyCertSign|cRLSign, self-signed
#     int    2025-01-01 .. 2040-01-01   CA pathlen:0, nameConstraints permitted DNS:example.com
#                                       (critical). No URI constraint: OpenSSL 3.0 refuses a
#                                       scheme-relative URI SAN (the oneM2M AE-ID form
#                                       //sp.example.com/CSE1/Cae1) under any URI constraint
#                                       ("unsupported or invalid name syntax"; RFC 5280 4.2.1.6
#                                       wants a scheme), so `openssl verify` below would fail.
#     leaf   2026-01-01 .. 2030-01-01   CN=cse1.example.com, SAN DNS:cse1.example.com,
#                                       URI://sp.example.com/CSE1/Cae1, keyUsage digitalSignature,
#                                       extendedKeyUsage serverAuth,clientAuth
#     leaf-crit  as leaf, plus the unknown critical extension 1.3.6.1.4.1.55555.1 (UTF8String)
#     self   2026-01-01 .. 2036-01-01   self-signed end entity, CN=device1, SAN
#                                       URI:ni:///sha-256;<base64url SHA-256 of its own DER SPKI>
#     rpk    the DER SubjectPublicKeyInfo of the self-signed entity's key (a raw public key)
# Outputs (DER): root.der int.der leaf.der leaf-crit.der self.der rpk.der, and the private keys
# as PKCS#8 DER (root.key.der int.key.der leaf.key.der self.key.der).
set -eu
OUT=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"

cat > ca.cnf <<'CNF'
[ ca ]
default_ca = testca
[ testca ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[ anything ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ root_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ int_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,digitalSignature,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
nameConstraints = critical,permitted;DNS:example.com
[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:cse1.example.com,URI://sp.example.com/CSE1/Cae1
[ leaf_crit_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectAltName = DNS:cse1.example.com
1.3.6.1.4.1.55555.1 = critical,ASN1:UTF8String:unknown critical extension
CNF

fresh_db() { rm -rf index.txt newcerts; : > index.txt; mkdir newcerts; echo "$1" > serial; }
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1.key.pem"; }
csr() { openssl req -new -config ca.cnf -key "$1.key.pem" -subj "$2" -out "$1.csr"; }
# sign NAME ISSUER_CERT ISSUER_KEY EXT START END SERIAL
sign() {
    fresh_db "$7"
    openssl ca -batch -config ca.cnf -notext -md sha256 -cert "$2" -keyfile "$3" \
        -extfile ca.cnf -extensions "$4" -startdate "$5" -enddate "$6" -in "$1.csr" -out "$1.pem" 2>/dev/null
}

key root; csr root "/CN=m2msec Test Root"
fresh_db 01
openssl ca -batch -config ca.cnf -notext -md sha256 -selfsign -keyfile root.key.pem \
    -extfile ca.cnf -extensions root_ext -startdate 20250101000000Z -enddate 20450101000000Z \
    -in root.csr -out root.pem 2>/dev/null

key int; csr int "/CN=m2msec Test Intermediate"
sign int root.pem root.key.pem int_ext 20250101000000Z 20400101000000Z 02

key leaf; csr leaf "/CN=cse1.example.com"
sign leaf int.pem int.key.pem leaf_ext 20260101000000Z 20300101000000Z 03
cp leaf.csr leaf-crit.csr
sign leaf-crit int.pem int.key.pem leaf_crit_ext 20260101000000Z 20300101000000Z 04

key self
openssl pkey -in self.key.pem -pubout -outform DER -out rpk.der
NI=$(openssl dgst -sha256 -binary rpk.der | openssl base64 -A | tr '+/' '-_' | tr -d '=')
cat >> ca.cnf <<CNF
[ self_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectAltName = URI:ni:///sha-256;$NI
CNF
csr self "/CN=device1"
fresh_db 05
openssl ca -batch -config ca.cnf -notext -md sha256 -selfsign -keyfile self.key.pem \
    -extfile ca.cnf -extensions self_ext -startdate 20260101000000Z -enddate 20360101000000Z \
    -in self.csr -out self.pem 2>/dev/null

for n in root int leaf leaf-crit self; do
    openssl x509 -in "$n.pem" -outform DER -out "$OUT/$n.der"
done
for n in root int leaf self; do
    openssl pkcs8 -topk8 -nocrypt -in "$n.key.pem" -outform DER -out "$OUT/$n.key.der"
done
cp rpk.der "$OUT/rpk.der"
# The chain must verify with OpenSSL itself (partial chain: the root is the only trust anchor).
openssl verify -attime 1800000000 -CAfile root.pem -untrusted int.pem leaf.pem
openssl verify -attime 1800000000 -CAfile self.pem self.pem
echo "ni:///sha-256;$NI" > "$OUT/self.ni.txt"
echo "wrote fixtures to $OUT"
