#!/usr/bin/env bash
# Brings up a Junction cluster across hosts of its own (root only): each part in its own network
# namespace with its own address, in two zones joined by a WAN link whose delay and loss the
# chaos scripts set (Docs/operations.md, "Across hosts").
#
#   zone a: scheduler hosts s1 (10.77.0.11) and s2 (.12); engine hosts ea (.21) and eb (.22), each
#           with its engine and agent; gateway host g1 (.31); the client host (.100) with HAProxy
#   zone b: scheduler host s3 (.13); engine hosts ec (.23) and ed (.24); gateway host g2 (.32)
#
# Everything is configured by address, as on real machines: the schedulers listen on their own
# host's address, the agents register their engine at its host's address, the gateways and
# HAProxy reach the others across the bridges. Configs, data, logs and PID files go under
# $JUNCTION_NETNS_DIR (default .run/netns); namespaces are named $JUNCTION_NETNS_PREFIX-HOST (jn).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
require_root
[ -x "$JUNCTION_BIN" ] || { echo "netns up: no junction binary at $JUNCTION_BIN (run: swift build)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "netns up: haproxy is missing (run: make deps)" >&2; exit 1; }
if ip netns list | grep -qw "^$fabric"; then
  echo "netns up: $fabric exists: a cluster is running (Deploy/netns/down.sh)" >&2; exit 1
fi
mkdir -p "$dir"
rm -f "$dir/tls-mode"
echo "$prefix" > "$dir/prefix"

# --- The network: a fabric namespace with one bridge per zone, a cable per host.
ip netns add "$fabric"
ip -n "$fabric" link set lo up
for z in a b; do
  ip -n "$fabric" link add "br-$z" type bridge
  ip -n "$fabric" link set "br-$z" up
done
for h in "${hosts[@]}"; do
  ip netns add "$(ns "$h")"
  ip -n "$(ns "$h")" link set lo up
  ip link add "$(port_of "$h")" netns "$fabric" type veth peer name eth0 netns "$(ns "$h")"
  ip -n "$fabric" link set "$(port_of "$h")" master "br-${zone[$h]}" up
  ip -n "$(ns "$h")" addr add "${address[$h]}/24" dev eth0
  ip -n "$(ns "$h")" link set eth0 up
done
# The WAN between the zones: two TAP devices the link process carries frames between.
launch wan-link ip netns exec "$fabric" python3 "$here/wan-link.py" --tap-a wan-a --tap-b wan-b --control "$(wan_control)"
for _ in $(seq 100); do
  ip -n "$fabric" link show wan-b >/dev/null 2>&1 && [ -S "$(wan_control)" ] && break
  sleep 0.05
done
ip -n "$fabric" link set wan-a master br-a up
ip -n "$fabric" link set wan-b master br-b up
on_host s3 python3 - "${address[s1]}" <<'PY' || { echo "netns up: zone b cannot reach zone a over the WAN link" >&2; exit 1; }
import socket, sys, time
# Nothing listens yet: a refusal (RST) proves the frames crossed the WAN link both ways.
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection((sys.argv[1], 9), timeout=0.5).close()
        break
    except ConnectionRefusedError:
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(1)
PY
echo "netns up: hosts ${hosts[*]} on $subnet.0/24 in zones a and b ($fabric)"

# --- The configs: one cluster file, by address; a credential of their own for the rest.
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
tls=0
cat > "$dir/cluster.json" <<JSON
{
  "cluster": {
    "secret": "$secret",
    "schedulers": [
      {"id": 1, "address": "${address[s1]}:$scheduler_port"},
      {"id": 2, "address": "${address[s2]}:$scheduler_port"},
      {"id": 3, "address": "${address[s3]}:$scheduler_port"}
    ]
  },
  "scheduler": {"data_dir": "$dir/data/scheduler-{id}"},
  "llm_scheduler": {"policy": "prefix-cache"},
  "llm_gateway": {"listen": "0.0.0.0:$gateway_port", "table_cache_path": "$dir/data/table-{name}.bin", "max_queue_size": 512}
}
JSON
for e in a b c d; do credential_config agent "engine-$e" "agent-$e.json"; done
for g in 1 2; do credential_config gateway "gateway-$g" "gateway-$g.json"; done
credential_config operator netns-operator ctl.json

# --- The processes, each on its host.
for i in 1 2 3; do
  launch "scheduler-$i" ip netns exec "$(ns "s$i")" "$JUNCTION_BIN" scheduler --config "$dir/cluster.json" --id "$i" \
    --log-level info --metrics-listen "${address[s$i]}:$metrics_port"
done
for e in a b c d; do
  launch "engine-$e" ip netns exec "$(ns "e$e")" "$JUNCTION_BIN" engine-sim --dialect "${dialect[$e]}" \
    --host "${address[e$e]}" --port "$engine_port" --seed "$engine_port"
done
for e in a b c d; do
  wait_http_on "e$e" "http://${address[e$e]}:$engine_port/health" 30 || {
    echo "netns up: engine-$e did not start; see $dir/logs/engine-$e.log" >&2; exit 1; }
  launch "agent-$e" ip netns exec "$(ns "e$e")" "$JUNCTION_BIN" agent --engine "http://${address[e$e]}:$engine_port" \
    --config "$dir/agent-$e.json" --instance-id "engine-$e" --log-level info --metrics-listen "${address[e$e]}:$metrics_port"
done
for g in 1 2; do
  launch "gateway-$g" ip netns exec "$(ns "g$g")" "$JUNCTION_BIN" gateway --config "$dir/gateway-$g.json" \
    --name "gateway-$g" --log-level info
done
# HAProxy on the client host, in front of the two gateways (one per zone), set as the local
# cluster's.
haproxy_config "$dir/haproxy.cfg" "${address[client]}:$balancer_port" "${address[client]}:$stats_port" \
  "${address[g1]}:$gateway_port" "${address[g2]}:$gateway_port"
launch haproxy ip netns exec "$(ns client)" haproxy -f "$dir/haproxy.cfg" -db

# What Deploy/chaos/chaos.py needs to find its way around (Deploy/netns/netchaos.py runs it on
# the client host).
python3 - "$dir/topology.json" <<PY
import json, sys
hosts = {h: {"netns": "$prefix-" + h, "address": a, "zone": z, "port": "p-" + h}
         for h, a, z in zip("${hosts[*]}".split(), "$(for h in "${hosts[@]}"; do printf '%s ' "${address[$h]}"; done)".split(),
                            "$(for h in "${hosts[@]}"; do printf '%s ' "${zone[$h]}"; done)".split())}
json.dump({
    "fabric_netns": "$fabric",
    "wan_control": "$(wan_control)",
    "hosts": hosts,
    "schedulers": {str(i): {"address": f"{hosts['s' + str(i)]['address']}:$scheduler_port", "host": f"s{i}"} for i in (1, 2, 3)},
    "gateways": {str(g): {"url": f"http://{hosts['g' + str(g)]['address']}:$gateway_port", "host": f"g{g}"} for g in (1, 2)},
    "engines": {e: {"url": f"http://{hosts['e' + e]['address']}:$engine_port", "host": "e" + e} for e in "abcd"},
    "balancer": "http://${address[client]}:$balancer_port",
    "stats": "http://${address[client]}:$stats_port/stats;csv",
    "client": "client",
}, open(sys.argv[1], "w"), indent=2)
PY

# Ready when the trio has a leader, every engine is up in it, both gateways route by it, and
# HAProxy has both gateways up.
for _ in $(seq 300); do
  up=$(on_host client "$JUNCTION_BIN" ctl status --json --config "$dir/ctl.json" --timeout 0.5 2>/dev/null \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(1 for i in s["instances"] if i["state"]=="up"))' 2>/dev/null || echo 0)
  balancer=$(on_host client curl -s --max-time 2 "http://${address[client]}:$stats_port/stats;csv" 2>/dev/null \
    | awk -F, '$1 == "gateways" && $2 ~ /^gateway-/ && $18 == "UP" {n++} END {print n + 0}')
  scheduled=0
  for g in 1 2; do
    on_host client curl -s --max-time 2 "http://${address[g$g]}:$gateway_port/metrics" 2>/dev/null \
      | grep -q '^junction_gateway_fallback 0' && scheduled=$((scheduled + 1))
  done
  if [ "$up" = 4 ] && [ "$balancer" = 2 ] && [ "$scheduled" = 2 ]; then
    echo "netns up: ready: 4 engines up; OpenAI API at http://${address[client]}:$balancer_port/v1 on the client host"
    echo "netns up: try: ip netns exec $(ns client) curl -s http://${address[client]}:$balancer_port/v1/models"
    exit 0
  fi
  sleep 0.2
done
echo "netns up: the cluster did not become ready in 60 s; see $dir/logs and Deploy/netns/status.sh" >&2
exit 1
