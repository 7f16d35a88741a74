#!/usr/bin/env bash
# The local cluster live: `junction ctl top` on the trio and both gateways, redrawn every second
# until Ctrl-C. Extra arguments go to `ctl top` (e.g. --interval 0.5, --frames 1).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -f "$dir/cluster.json" ] || { echo "top: no local cluster in $dir (Deploy/local/up.sh)"; exit 1; }
args=()
for g in "${gateways[@]}"; do args+=(--gateway "$scheme://127.0.0.1:$(gateway_port "$g")"); done
[ "$tls" = 1 ] && args+=(--gateway-ca "$ca_file")
config="$dir/ctl.json"; [ -f "$config" ] || config="$dir/cluster.json"
exec "$JUNCTION_BIN" ctl top --config "$config" "${args[@]}" "$@"
