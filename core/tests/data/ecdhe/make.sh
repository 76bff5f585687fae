#!/bin/sh
# Regenerates the ECDHE-ECDSA test credentials (P-256, ecdsa-with-SHA256) with the openssl CLI.
# Used by core/tests/ecdhe*.rs (DER files) and io-std/tests/interop_ecdhe.rs (PEM files).
# Run from this directory: sh make.sh   (the outputs are committed; validity 100 years)
set -eu
days=36500
ec="-algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve"

# Root CA
openssl genpkey $ec -out ca.key
openssl req -new -x509 -key ca.key -sha256 -days $days -subj "/CN=m2msec Test Root CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" -out ca.crt

leaf() { # name eku san
  cat > "$1.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$2
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
  [ -n "$3" ] && echo "subjectAltName=$3" >> "$1.ext"
  openssl genpkey $ec -out "$1.key"
  openssl req -new -key "$1.key" -sha256 -subj "/CN=$4" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "$5" -sha256 -days $days \
    -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
leaf server serverAuth "DNS:localhost,DNS:mef.example.com,IP:127.0.0.1" localhost 0x1001
leaf client clientAuth "" m2msec-client 0x1002

# A key no certificate belongs to (wrong-key tests)
openssl genpkey $ec -out other.key

# DER forms for the core tests: certificates, PKCS#8 keys
for n in ca server client; do openssl x509 -in $n.crt -outform DER -out $n.der; done
for n in ca server client other; do openssl pkcs8 -topk8 -nocrypt -in $n.key -outform DER -out $n.key.der; done
cat server.crt ca.crt > server-chain.crt

openssl verify -CAfile ca.crt server.crt client.crt
