#!/usr/bin/env bash
# Makes a cluster CA and certificates for Junction's mutual TLS with the openssl command, for the
# local cluster and the tests (production: your own PKI, e.g. cert-manager; Docs/security.md).
#
#   make-certs.sh DIR ca                     DIR/ca.pem and DIR/ca.key (kept if they exist)
#   make-certs.sh DIR NAME ROLE:ID [...]     DIR/NAME.pem and DIR/NAME.key, signed by DIR's CA,
#                                            naming each junction:ROLE:ID, localhost and 127.0.0.1
#
# A wire certificate names the role and node id its holder proves in the handshake, as the URI
# junction:ROLE:ID among its subject alternative names; a gateway's HTTPS certificate needs only
# the host names clients use (localhost and 127.0.0.1 here).
set -euo pipefail
dir=$1; name=$2; shift 2
mkdir -p "$dir"
days=${JUNCTION_CERT_DAYS:-30}
if [ "$name" = ca ]; then
  [ -f "$dir/ca.pem" ] && [ -f "$dir/ca.key" ] && exit 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=junction local CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$dir/ca.key"
  exit 0
fi
[ -f "$dir/ca.pem" ] || { echo "make-certs: no CA in $dir (run: make-certs.sh $dir ca)" >&2; exit 1; }
names="DNS:localhost,IP:127.0.0.1"
for identity in "$@"; do names="URI:junction:$identity,$names"; done
ext=$(mktemp)
trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$names" > "$ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$name.key" -out "$dir/$name.csr" \
  -subj "/CN=${1:-$name}" 2>/dev/null
openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
chmod 600 "$dir/$name.key"
