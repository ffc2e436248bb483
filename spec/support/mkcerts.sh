#!/bin/sh
# spec/support/mkcerts.sh DIR -- a throwaway PKI for the TLS tests (openssl).
#   ca.pem ca.key              the test CA (the one to trust: cafile, lua_ssl_trusted_certificate)
#   server.pem server.key      signed by the CA for IP 127.0.0.1 and 127.0.0.2 (no DNS name:
#                              nginx checks an IP against the CN when there is none)
#   other.pem other.key        signed by the CA for DNS other.example only (host-name mismatch)
#   expired.pem expired.key    signed by the CA for 127.0.0.1, notAfter a day before notBefore
#   unknown.pem unknown.key    self-signed for 127.0.0.1 (an unknown CA)
#   client.pem client.key      a client certificate signed by the CA (key unencrypted)
#   client-enc.key             the same key encrypted with the passphrase in client.pass
# Exit status non-zero when openssl fails.
set -e
d=$1
[ -n "$d" ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$d"
cd "$d"
EC="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
q() { "$@" >/dev/null 2>&1 || { echo "mkcerts: failed: $*" >&2; exit 1; }; }
q openssl req -x509 $EC -days 2 -subj "/CN=dynpb test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout ca.key -out ca.pem
# sign NAME SUBJECT SAN DAYS [EXT]
sign() {
  q openssl req -new $EC -subj "$2" -keyout "$1.key" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n%s\n' "$3" "${5:-}" > "$1.ext"
  q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$4" \
    -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
sign server "/CN=127.0.0.1" "IP:127.0.0.1,IP:127.0.0.2" 2 "extendedKeyUsage=serverAuth"
sign other "/CN=other.example" "DNS:other.example" 2 "extendedKeyUsage=serverAuth"
sign expired "/CN=127.0.0.1" "IP:127.0.0.1,IP:127.0.0.2" -1 "extendedKeyUsage=serverAuth"
sign client "/CN=dynpb test client" "DNS:client.example" 2 "extendedKeyUsage=clientAuth"
q openssl req -x509 $EC -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout unknown.key -out unknown.pem
echo "s3cret-passphrase" > client.pass
q openssl pkey -in client.key -aes256 -passout file:client.pass -out client-enc.key
chmod 0644 ./*.pem ./*.key
