#!/usr/bin/env bash
# The local cluster at a glance: the scheduler trio (leader, members, instances and their load),
# the tenants' cluster-wide budgets, whether each gateway routes by the scheduler or is in round-robin fallback, what the load
# balancer thinks of the gateways, and which processes are alive.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
[ -f "$dir/cluster.json" ] || { echo "status: no local cluster in $dir (Deploy/local/up.sh)"; exit 1; }

echo "== scheduler trio"
ctl status || echo "(no scheduler answers)"
echo
echo "== tenants' budgets (the leader's, across both gateways)"
ctl tenants || echo "(no leader answers)"
echo
echo "== gateways"
for g in "${gateways[@]}"; do
  port=$(gateway_port "$g")
  metrics=$(curl -s $(curl_tls) --max-time 2 "$scheme://127.0.0.1:$port/metrics" || true)
  if [ -z "$metrics" ]; then echo "gateway-$g 127.0.0.1:$port  DOWN"; continue; fi
  fallback=$(echo "$metrics" | awk '$1 == "junction_gateway_fallback" {print $2}')
  inflight=$(echo "$metrics" | awk '$1 == "junction_gateway_requests_in_flight" {print $2}')
  mode="scheduled routing"; [ "${fallback%.*}" = "1" ] && mode="FALLBACK (round-robin over its cached table)"
  echo "gateway-$g 127.0.0.1:$port  $mode, in flight ${inflight:-0}"
done
echo
echo "== load balancer (HAProxy) 127.0.0.1:$lb_port"
curl -s --max-time 2 "http://127.0.0.1:$(stats_port)/stats;csv" | awk -F, '$1 == "gateways" && $2 != "BACKEND" && $2 != "FRONTEND" {print $2 "  " $18}' || echo "(no answer)"
echo
echo "== Prometheus http://127.0.0.1:$(prometheus_port) (alerts firing)"
curl -s --max-time 2 "http://127.0.0.1:$(prometheus_port)/api/v1/alerts" \
  | python3 -c 'import json,sys; a=[x for x in json.load(sys.stdin)["data"]["alerts"] if x["state"]=="firing"]; print("\n".join(x["labels"]["alertname"]+" "+json.dumps({k:v for k,v in x["labels"].items() if k not in ("alertname","severity")}) for x in a) or "none")' \
  2>/dev/null || echo "(no answer)"
echo
echo "== scheduler peer links (Deploy/local/peer-links.py)"
curl -s --max-time 2 "http://127.0.0.1:$(peer_links_control_port)/" || echo "(no answer)"
echo
echo "== processes"
show_processes
