#!/usr/bin/env bash
# Makes the Secrets Deploy/k8s expects, as files and as one manifest to apply:
#
#   make-secrets.sh OUT [--engines vllm-0,vllm-1] [--tls]
#
#   OUT/secrets.yaml                  the Secrets, for `kubectl apply -f` (keep it out of git)
#   OUT/files/SECRET/KEY              the same, one file per key
#   OUT/api-key                       the gateways' API key, for clients (only its SHA-256 is in a Secret)
#
#   junction-root      secret                     the root secret: the schedulers only
#   junction-gateway   credential, api-key-sha256 the gateways' credential (role gateway, id gateway)
#   junction-agents    one key per engine pod     each agent's credential, bound to its pod's name
#   junction-tls       (--tls) ca.pem, scheduler-N.pem/.key, gateway.pem/.key
#                      and in junction-agents: ca.pem, POD.pem/.key
#
# The root secret is $JUNCTION_SECRET if set, else 32 random bytes; credentials are derived from
# it with `junction ctl credential` ($JUNCTION_BIN, default the debug build). Certificates come
# from Deploy/tls/make-certs.sh, a local CA good for trying it out; production: your own PKI
# (cert-manager) issuing the same junction:ROLE:ID names (Docs/security.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: make-secrets.sh OUT [--engines vllm-0,vllm-1] [--tls]}
shift
engines=vllm-0,vllm-1
tls=0
while [ $# -gt 0 ]; do
  case $1 in
    --engines) engines=$2; shift 2 ;;
    --tls) tls=1; shift ;;
    *) echo "make-secrets: unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=${JUNCTION_BIN:-$root/.build/debug/junction}
[ -x "$bin" ] || { echo "make-secrets: no junction binary at $bin (build it, or set JUNCTION_BIN)" >&2; exit 1; }
umask 077
mkdir -p "$out/files/junction-root" "$out/files/junction-gateway" "$out/files/junction-agents"
secret=${JUNCTION_SECRET:-$(openssl rand -hex 32)}
printf '%s' "$secret" > "$out/files/junction-root/secret"
rootconfig=$(mktemp)
trap 'rm -f "$rootconfig"' EXIT
printf '{"cluster": {"secret": "%s", "schedulers": [{"id": 1, "address": "127.0.0.1:1"}]}}' "$secret" > "$rootconfig"
credential() { "$bin" ctl credential --config "$rootconfig" --role "$1" --id "$2"; }
credential gateway gateway | tr -d '\n' > "$out/files/junction-gateway/credential"
key="sk-junction-$(openssl rand -hex 24)"
printf '%s\n' "$key" > "$out/api-key"
printf '%s' "$key" | openssl dgst -sha256 -r | cut -d' ' -f1 | tr -d '\n' > "$out/files/junction-gateway/api-key-sha256"
IFS=, read -r -a pods <<< "$engines"
for pod in "${pods[@]}"; do credential agent "$pod" | tr -d '\n' > "$out/files/junction-agents/$pod"; done
if [ "$tls" = 1 ]; then
  pki="$out/pki"
  mkdir -p "$out/files/junction-tls"
  "$root/Deploy/tls/make-certs.sh" "$pki" ca
  for id in 1 2 3; do "$root/Deploy/tls/make-certs.sh" "$pki" "scheduler-$id" "scheduler:$id"; done
  "$root/Deploy/tls/make-certs.sh" "$pki" gateway gateway:gateway
  for pod in "${pods[@]}"; do "$root/Deploy/tls/make-certs.sh" "$pki" "$pod" "agent:$pod"; done
  cp "$pki/ca.pem" "$out/files/junction-tls/ca.pem"
  cp "$pki/ca.pem" "$out/files/junction-agents/ca.pem"
  for name in scheduler-1 scheduler-2 scheduler-3 gateway; do cp "$pki/$name.pem" "$pki/$name.key" "$out/files/junction-tls/"; done
  for pod in "${pods[@]}"; do cp "$pki/$pod.pem" "$pki/$pod.key" "$out/files/junction-agents/"; done
fi
# One manifest: each directory under files/ is a Secret, each file in it a key.
{
  for dir in "$out"/files/*/; do
    name=$(basename "$dir")
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  labels:\n    app.kubernetes.io/part-of: junction\ntype: Opaque\ndata:\n' "$name"
    for file in "$dir"*; do printf '  %s: %s\n' "$(basename "$file")" "$(base64 -w0 < "$file")"; done
  done
} > "$out/secrets.yaml"
echo "make-secrets: wrote $out/secrets.yaml (apply it with kubectl apply -f; keep it out of version control)"
echo "make-secrets: the gateways' API key is in $out/api-key"
