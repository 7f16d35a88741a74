#!/usr/bin/env bash
# The namespaced cluster at a glance: the trio, each gateway's routing mode, HAProxy's view of the
# gateways, the WAN link's delay and loss, and which processes are alive.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require_root
[ -f "$dir/prefix" ] || { echo "netns status: no namespaced cluster in $dir (Deploy/netns/up.sh)"; exit 1; }
echo "== scheduler trio (asked from the client host)"
on_host client "$JUNCTION_BIN" ctl status --config "$dir/ctl.json" || echo "(no scheduler answers)"
echo
echo "== gateways"
for g in 1 2; do
  metrics=$(on_host client curl -s --max-time 2 "http://${address[g$g]}:$gateway_port/metrics" || true)
  if [ -z "$metrics" ]; then echo "gateway-$g ${address[g$g]}  UNREACHABLE"; continue; fi
  fallback=$(echo "$metrics" | awk '$1 == "junction_gateway_fallback" {print $2}')
  mode="scheduled routing"; [ "${fallback%.*}" = "1" ] && mode="FALLBACK (round-robin over its cached table)"
  echo "gateway-$g ${address[g$g]}  $mode"
done
echo
echo "== load balancer (HAProxy on the client host, ${address[client]}:$balancer_port)"
on_host client curl -s --max-time 2 "http://${address[client]}:$stats_port/stats;csv" \
  | awk -F, '$1 == "gateways" && $2 != "BACKEND" && $2 != "FRONTEND" {print $2 "  " $18}' || echo "(no answer)"
echo
echo "== WAN link between the zones"
python3 -c 'import json,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"{}\n"); print(s.recv(4096).decode().strip())' "$(wan_control)" 2>/dev/null || echo "(not running)"
echo
echo "== hosts' cables"
for h in "${hosts[@]}"; do
  printf '%-7s %-12s zone %s  %s\n' "$h" "${address[$h]}" "${zone[$h]}" "$(ip -n "$fabric" -br link show "$(port_of "$h")" 2>/dev/null | awk '{print $2}')"
done
echo
echo "== processes"
show_processes
