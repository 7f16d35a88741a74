#!/usr/bin/env bash
# Brings up a whole Junction cluster on 127.0.0.1: three schedulers (one Raft group), four
# simulated engines of mixed dialects (or, with JUNCTION_ENGINES=real-vllm, two real vLLM
# servers) each with its agent, two gateways, and HAProxy in front of the gateways. Configs, data, logs, PID files and each process's command line go under
# $JUNCTION_LOCAL_DIR (default .run/local). Ports: the load balancer on $JUNCTION_LB_PORT (8080),
# the rest from $JUNCTION_PORT_BASE (18100; see Docs/operations.md). With
# $JUNCTION_OTLP_ENDPOINT (a collector's OTLP/HTTP base URL) the gateways and schedulers export
# traces there (Docs/observability.md, "Traces").
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ -x "$JUNCTION_BIN" ] || { echo "up: no junction binary at $JUNCTION_BIN (run: swift build)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "up: haproxy is missing (run: make deps)" >&2; exit 1; }
for name in "${schedulers[@]/#/scheduler-}" "${gateways[@]/#/gateway-}" haproxy; do
  if alive "$name"; then echo "up: the local cluster is already running (Deploy/local/status.sh; Deploy/local/down.sh)"; exit 0; fi
done

mkdir -p "$dir"
tls=${JUNCTION_TLS:-0}
set_scheme
echo "$tls" > "$dir/tls-mode"
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat > "$dir/cluster.json" <<JSON
{
  "cluster": {
    "secret": "$secret",
    "schedulers": [
      {"id": 1, "address": "127.0.0.1:$(scheduler_port 1)"},
      {"id": 2, "address": "127.0.0.1:$(scheduler_port 2)"},
      {"id": 3, "address": "127.0.0.1:$(scheduler_port 3)"}
    ]
  },
  "scheduler": {"data_dir": "$dir/data/scheduler-{id}"},
  "llm_scheduler": {"policy": "prefix-cache"},
  "llm_gateway": {"table_cache_path": "$dir/data/table-{name}.bin", "max_queue_size": 512}
}
JSON
if [ -n "${JUNCTION_OTLP_ENDPOINT:-}" ]; then
  python3 - "$dir/cluster.json" "$JUNCTION_OTLP_ENDPOINT" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["tracing"] = {"otlp_endpoint": sys.argv[2]}
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
fi
# TLS: a CA, and a certificate for each process naming its role and id (the schedulers share one
# config, with {id} in its paths); the gateways' serve HTTPS too, and the balancer's.
if [ "$tls" = 1 ]; then
  rm -rf "$tls_dir"
  "$certs" "$tls_dir" ca
  for i in "${schedulers[@]}"; do "$certs" "$tls_dir" "scheduler-$i" "scheduler:$i"; done
  "$certs" "$tls_dir" balancer
  cat "$tls_dir/balancer.pem" "$tls_dir/balancer.key" > "$tls_dir/balancer-haproxy.pem"
  python3 - "$dir/cluster.json" "$tls_dir" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["cluster"]["tls"] = {"ca": f"{sys.argv[2]}/ca.pem", "certificate": f"{sys.argv[2]}/scheduler-{{id}}.pem",
                            "key": f"{sys.argv[2]}/scheduler-{{id}}.key"}
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
fi
# Roles: only the schedulers read the root secret (cluster.json); each agent, each gateway and
# ctl get a config of their own (credential_config, lib.sh).
for e in "${engines[@]}"; do credential_config agent "engine-$e" "agent-$e.json"; done
for g in "${gateways[@]}"; do credential_config gateway "gateway-$g" "gateway-$g.json"; done
credential_config operator local-operator ctl.json

# Each scheduler dials its peers through relays the chaos scripts can cut (a partition without
# giving each process an address of its own); everyone else reaches the schedulers directly.
links=()
for i in "${schedulers[@]}"; do
  peers=()
  for j in "${schedulers[@]}"; do
    [ "$i" = "$j" ] && continue
    links+=(--link "$i:$j:$(peer_link_port "$i" "$j"):127.0.0.1:$(scheduler_port "$j")")
    peers+=("\"$j\": \"127.0.0.1:$(peer_link_port "$i" "$j")\"")
  done
  python3 - "$dir/cluster.json" "$dir/scheduler-$i.json" "{$(IFS=,; echo "${peers[*]}")}" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["scheduler"]["peer_addresses"] = json.loads(sys.argv[3])
json.dump(config, open(sys.argv[2], "w"), indent=2)
PY
done
launch peer-links python3 "$root/Deploy/local/peer-links.py" --control "$(peer_links_control_port)" "${links[@]}"

echo "up: schedulers on $(scheduler_port 1)-$(scheduler_port 3) (peer links through $(peer_link_port 1 1)-$(peer_link_port 3 3))"
for i in "${schedulers[@]}"; do
  launch "scheduler-$i" "$JUNCTION_BIN" scheduler --config "$dir/scheduler-$i.json" --id "$i" --log-level info \
    --metrics-listen "127.0.0.1:$(scheduler_metrics_port "$i")"
done
if [ "$engine_kind" = real-vllm ]; then
  [ -x "$vllm_home/venv/bin/python" ] && [ -f "$vllm_home/model/config.json" ] || {
    echo "up: no vLLM in $vllm_home (run Deploy/real-vllm/install.sh)" >&2; exit 1; }
  echo "up: engines (real vLLM, CPU build) on $(engine_port a), $(engine_port b): starting takes 1-3 minutes"
  for e in "${engines[@]}"; do
    # VLLM_SERVER_DEV_MODE exposes POST /reset_prefix_cache, which benchmarks use to start each
    # target from a cold cache. Both serve LoRA adapters (one slot each): engine a starts with
    # tiny-lora, and VLLM_ALLOW_RUNTIME_LORA_UPDATING lets adapters be loaded at run time.
    lora=(--enable-lora --max-lora-rank 8 --max-loras 1)
    [ "$e" = a ] && lora+=(--lora-modules "tiny-lora=$vllm_home/lora")
    launch "engine-$e" env VLLM_CPU_KVCACHE_SPACE=1 HF_HUB_OFFLINE=1 VLLM_SERVER_DEV_MODE=1 VLLM_ALLOW_RUNTIME_LORA_UPDATING=True \
      VLLM_CACHE_ROOT="$vllm_home/cache" "$vllm_home/venv/bin/python" -m vllm.entrypoints.openai.api_server --model "$vllm_home/model" \
      --host 127.0.0.1 --port "$(engine_port "$e")" --served-model-name tiny --enable-prefix-caching \
      --max-model-len 4096 --dtype float32 "${lora[@]}"
  done
  engine_start_seconds=400
else
  echo "up: engines (simulated) on $(engine_port a)-$(engine_port d)"
  for e in "${engines[@]}"; do
    launch "engine-$e" "$JUNCTION_BIN" engine-sim --dialect "${dialect[$e]}" --port "$(engine_port "$e")" --seed "$(engine_port "$e")"
  done
  engine_start_seconds=30
fi
for e in "${engines[@]}"; do
  wait_http "http://127.0.0.1:$(engine_port "$e")/health" "$engine_start_seconds" || {
    echo "up: engine-$e did not start; see $dir/logs/engine-$e.log" >&2; exit 1; }
  launch "agent-$e" "$JUNCTION_BIN" agent --engine "http://127.0.0.1:$(engine_port "$e")" --config "$dir/agent-$e.json" \
    --instance-id "engine-$e" --log-level info --metrics-listen "127.0.0.1:$(agent_metrics_port "$e")"
done
echo "up: gateways on $(gateway_port 1), $(gateway_port 2)"
for g in "${gateways[@]}"; do
  launch "gateway-$g" "$JUNCTION_BIN" gateway --config "$dir/gateway-$g.json" \
    --port "$(gateway_port "$g")" --name "gateway-$g" --log-level info
done

haproxy_config "$dir/haproxy.cfg" "127.0.0.1:$lb_port" "127.0.0.1:$(stats_port)" \
  "127.0.0.1:$(gateway_port 1)" "127.0.0.1:$(gateway_port 2)"
launch haproxy haproxy -f "$dir/haproxy.cfg" -db
echo "up: load balancer (HAProxy) on $lb_port"

# Prometheus scrapes every process, records the dashboard's series and evaluates the alerts
# (Deploy/observability/junction-rules.yml; Docs/observability.md).
targets() { local out=() p; for p in "$@"; do out+=("'127.0.0.1:$p'"); done; (IFS=,; echo "${out[*]}"); }
cat > "$dir/prometheus.yml" <<YML
# Generated by Deploy/local/up.sh.
global:
  scrape_interval: 2s
  evaluation_interval: 5s
rule_files:
  - $root/Deploy/observability/junction-rules.yml
scrape_configs:
  - job_name: junction-scheduler
    static_configs: [{targets: [$(targets $(for i in "${schedulers[@]}"; do scheduler_metrics_port "$i"; done))]}]
  - job_name: junction-agent
    static_configs: [{targets: [$(targets $(for e in "${engines[@]}"; do agent_metrics_port "$e"; done))]}]
  - job_name: junction-gateway
    scheme: $scheme$([ "$tls" = 1 ] && printf '\n    tls_config: {ca_file: %s}' "$ca_file")
    static_configs: [{targets: [$(targets $(for g in "${gateways[@]}"; do gateway_port "$g"; done))]}]
  - job_name: engines
    static_configs: [{targets: [$(targets $(for e in "${engines[@]}"; do engine_port "$e"; done))]}]
YML
if command -v prometheus >/dev/null; then
  launch prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data/prometheus" \
    --web.listen-address="127.0.0.1:$(prometheus_port)" --storage.tsdb.retention.time=2d
  echo "up: Prometheus on $(prometheus_port) (rules: Deploy/observability/junction-rules.yml)"
else
  echo "up: no prometheus binary (run: make deps); metrics are still on each process's /metrics" >&2
fi

# Ready when the trio has a leader, every engine is up in it, every gateway is ready, and the
# balancer has marked every gateway up (its checks need two passes in a row).
balancer_up() {
  curl -s --max-time 2 "http://127.0.0.1:$(stats_port)/stats;csv" 2>/dev/null \
    | awk -F, '$1 == "gateways" && $2 ~ /^gateway-/ && $18 == "UP" {n++} END {print n + 0}'
}
for _ in $(seq 300); do
  up=$(ctl status --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(1 for i in s["instances"] if i["state"]=="up"))' 2>/dev/null || echo 0)
  ready=$(curl -s $(curl_tls) -o /dev/null -w '%{http_code}' "$lb_url/ready" 2>/dev/null || true)
  if [ "$up" = "${#engines[@]}" ] && [ "$ready" = 200 ] && [ "$(balancer_up)" = "${#gateways[@]}" ]; then
    echo "up: ready: ${#engines[@]} engines up; OpenAI API at $lb_url/v1$([ "$tls" = 1 ] && echo " (TLS: verify with $ca_file)")"
    exit 0
  fi
  sleep 0.2
done
echo "up: the cluster did not become ready in 60 s; see $dir/logs and Deploy/local/status.sh" >&2
exit 1
