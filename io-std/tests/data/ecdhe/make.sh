#!/bin/sh
# Makes the certificate fixtures of io-std/tests/interop_ecdhe_gnutls.rs and
# io-std/benches/handshake_ecdhe.rs (P-256 keys, ecdsa-with-SHA256 signatures, openssl CLI only;
# used: OpenSSL 3.0.22, Debian 12). Run from anywhere:  sh io-std/tests/data/ecdhe/make.sh
# The outputs are committed; re-running writes new keys (and new Root of Trust hashes, which the
# tests compute from the files, so nothing else needs editing). Validity: 100 years from the run.
#
#   root.crt       CN=m2msec Interop Root, CA:TRUE (critical), keyCertSign|cRLSign, self-signed
#   int.crt        CN=m2msec Interop Intermediate, CA:TRUE pathlen:0, signed by root
#   server.crt     signed by int; SAN DNS:cse1.example.com (the Certificate Name our client's
#                  OneM2mVerifier checks), DNS:localhost (OpenSSL/GnuTLS host name checks),
#                  IP:127.0.0.1; keyUsage digitalSignature; EKU serverAuth
#   client.crt     signed by int; SAN URI://sp.example.com/CSE1/Cae1 (an SP-relative AE-ID, the
#                  Certificate Name our server's OneM2mVerifier checks); EKU clientAuth
#   server-chain.crt = server.crt int.crt root.crt    (what gnutls-serv / s_client -cert_chain send)
#   client-chain.crt = client.crt int.crt root.crt
#   int-root.crt   = int.crt root.crt                 (s_server / s_client -cert_chain)
#   ss-server.crt  self-signed end entity (CA:FALSE, digitalSignature), SAN
#                  URI:ni:///sha-256;<base64url SHA-256 of its own DER SPKI>, DNS:localhost
#   ss-client.crt  self-signed end entity, SAN URI:ni:///sha-256;<...its own SPKI...>
#   *.key          PKCS#8 PEM private keys of the four end entities (the CA keys are discarded)
#   ss-server.pub, ss-client.pub   the self-signed entities' keys as PEM SubjectPublicKeyInfo
#                  (the RFC 7250 raw public keys: gnutls --rawpkfile / --rawpkkeyfile=ss-*.key)
#   *.ni.txt       the ni:/// name (= Root of Trust) of ss-server and ss-client
set -eu
OUT=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1.key"; }
ni() { openssl pkey -in "$1.key" -pubout -outform DER | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '='; }

key root
openssl req -new -x509 -key root.key -sha256 -days $days -subj "/CN=m2msec Interop Root" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" -out root.crt

# issue NAME ISSUER SUBJECT SERIAL EXTENSIONS...
issue() {
  n=$1 iss=$2 subj=$3 serial=$4; shift 4
  : > "$n.ext"
  for e in "$@"; do echo "$e" >> "$n.ext"; done
  openssl req -new -key "$n.key" -sha256 -subj "$subj" -out "$n.csr"
  openssl x509 -req -in "$n.csr" -CA "$iss.crt" -CAkey "$iss.key" -set_serial "$serial" -sha256 \
    -days $days -extfile "$n.ext" -out "$n.crt"
}
key int
issue int root "/CN=m2msec Interop Intermediate" 0x2001 \
  "basicConstraints=critical,CA:TRUE,pathlen:0" "keyUsage=critical,keyCertSign,cRLSign" \
  "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid"
key server
issue server int "/CN=cse1.example.com" 0x2002 \
  "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
  "subjectAltName=DNS:cse1.example.com,DNS:localhost,IP:127.0.0.1"
key client
issue client int "/CN=Cae1" 0x2003 \
  "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=clientAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
  "subjectAltName=URI://sp.example.com/CSE1/Cae1"

# self-signed end entities whose name is the ni:/// hash of their own key
for n in ss-server ss-client; do
  key $n
  NI=$(ni $n)
  san="URI:ni:///sha-256;$NI"
  [ $n = ss-server ] && san="$san,DNS:localhost"
  openssl req -new -x509 -key $n.key -sha256 -days $days -subj "/CN=$n" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
    -addext "subjectAltName=$san" -out $n.crt
  openssl pkey -in $n.key -pubout -out $n.pub
  echo "ni:///sha-256;$NI" > $n.ni.txt
done

cat server.crt int.crt root.crt > server-chain.crt
cat client.crt int.crt root.crt > client-chain.crt
cat int.crt root.crt > int-root.crt
openssl verify -CAfile root.crt -untrusted int.crt server.crt client.crt
openssl verify -CAfile ss-server.crt ss-server.crt
openssl verify -CAfile ss-client.crt ss-client.crt
certtool --verify --load-ca-certificate root.crt --infile server-chain.crt >/dev/null 2>&1 \
  && echo "certtool: server chain OK" || echo "certtool not run or failed (optional check)"
cp root.crt int.crt "$OUT/"
for f in server client ss-server ss-client; do cp $f.crt $f.key "$OUT/"; done
cp server-chain.crt client-chain.crt int-root.crt ss-server.pub ss-client.pub ss-server.ni.txt ss-client.ni.txt "$OUT/"
echo "wrote fixtures to $OUT"
