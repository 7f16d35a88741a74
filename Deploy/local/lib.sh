# Shared by the local cluster's scripts (sourced, not run): where things live, which ports they
# use, and how a process is started, remembered and stopped. Every process binds 127.0.0.1.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JUNCTION_BIN=${JUNCTION_BIN:-$root/.build/debug/junction}
dir=${JUNCTION_LOCAL_DIR:-$root/.run/local}
lb_port=${JUNCTION_LB_PORT:-8080}
base=${JUNCTION_PORT_BASE:-18100}
# JUNCTION_TLS=1: mutual TLS on the wire, HTTPS on the gateways and on the balancer, with a CA and
# certificates made in $dir/tls (Deploy/tls/make-certs.sh). Clients verify with $dir/tls/ca.pem.
# up.sh records its choice in $dir/tls-mode, so the other scripts follow the running cluster.
tls=${JUNCTION_TLS:-$(cat "$dir/tls-mode" 2>/dev/null || echo 0)}
tls_dir=$dir/tls
certs="$root/Deploy/tls/make-certs.sh"
ca_file=$tls_dir/ca.pem
set_scheme() {
  if [ "$tls" = 1 ]; then scheme=https; else scheme=http; fi
  lb_url="$scheme://127.0.0.1:$lb_port"
}
set_scheme
# curl's arguments to reach the gateways and the balancer.
curl_tls() { if [ "$tls" = 1 ]; then echo "--cacert $ca_file"; fi; }

schedulers=(1 2 3)
gateways=(1 2)
# JUNCTION_ENGINES=sim (default): four simulated engines of mixed dialects, which the agents
# detect. JUNCTION_ENGINES=real-vllm: two real vLLM servers (CPU build, tiny local model; see
# Deploy/real-vllm/install.sh).
engine_kind=${JUNCTION_ENGINES:-sim}
vllm_home=${JUNCTION_VLLM_HOME:-$HOME/.cache/junction/vllm}
if [ "$engine_kind" = real-vllm ]; then
  engines=(a b)
else
  engines=(a b c d)
fi
declare -A dialect=([a]=vllm [b]=vllm [c]=sglang [d]=bladellm)

scheduler_port() { echo $((base + $1)); }
gateway_port() { echo $((base + 10 + $1)); }
engine_port() { local i; case $1 in a) i=1;; b) i=2;; c) i=3;; d) i=4;; esac; echo $((base + 20 + i)); }
stats_port() { echo $((base + 90)); }
# Each scheduler's and agent's /metrics (--metrics-listen), and Prometheus scraping them all.
scheduler_metrics_port() { echo $((base + 40 + $1)); }
agent_metrics_port() { echo $(($(engine_port "$1") + 30)); }
prometheus_port() { echo $((base + 91)); }
# The relay scheduler FROM dials scheduler TO through (Deploy/local/peer-links.py), and its control.
peer_link_port() { echo $((base + 30 + 3 * ($1 - 1) + $2 - 1)); }
peer_links_control_port() { echo $((base + 39)); }

pid_of() { cat "$dir/pids/$1.pid" 2>/dev/null || true; }
# Alive: the process exists and is not a zombie waiting to be reaped.
alive() {
  local pid; pid=$(pid_of "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null
}

# launch NAME COMMAND...: starts COMMAND in the background with its output appended to
# logs/NAME.log, and remembers its PID and its command line (so a chaos script can restart it).
launch() {
  local name=$1; shift
  mkdir -p "$dir/pids" "$dir/logs" "$dir/cmd"
  printf '%q ' "$@" > "$dir/cmd/$name"
  # A session of its own: the process outlives the shell (or tool) that started it and no signal
  # meant for that shell's process group reaches it.
  setsid "$@" >> "$dir/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/pids/$name.pid"
}

# relaunch NAME: starts NAME again with the command line it was first started with.
relaunch() {
  local name=$1 command
  command=$(cat "$dir/cmd/$name")
  eval "launch $name $command"
}

# stop NAME: SIGTERM, then SIGKILL after 10 s; forgets the PID.
stop() {
  local name=$1 pid
  pid=$(pid_of "$name")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pids/$name.pid"
}

# wait_http URL SECONDS: until URL answers 200 (whole seconds).
wait_http() {
  local url=$1 seconds=${2:-30}
  for _ in $(seq $((seconds * 10))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# ctl speaks as an operator with its own credential (ctl.json); a cluster made before roles has only the root.
ctl() { "$JUNCTION_BIN" ctl "$@" --config "$([ -f "$dir/ctl.json" ] && echo "$dir/ctl.json" || echo "$dir/cluster.json")"; }

# credential_config ROLE ID FILE: $dir/FILE, the cluster config with the root secret replaced by
# ROLE:ID's own credential (Docs/security.md) and, with TLS, its own certificate. Only the
# schedulers read the root secret.
credential_config() {  # role id file
  local token
  token=$("$JUNCTION_BIN" ctl credential --config "$dir/cluster.json" --role "$1" --id "$2")
  [ "$tls" = 1 ] && "$certs" "$tls_dir" "$1-$2" "$1:$2"
  python3 - "$dir/cluster.json" "$dir/$3" "$token" "$tls" "$tls_dir/$1-$2" "$1" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
del config["cluster"]["secret"]
config["cluster"]["credential"] = sys.argv[3]
if sys.argv[4] == "1":
    own = {"certificate": sys.argv[5] + ".pem", "key": sys.argv[5] + ".key"}
    config["cluster"]["tls"].update(own)
    if sys.argv[6] == "gateway":
        config["llm_gateway"]["tls"] = own
json.dump(config, open(sys.argv[2], "w"), indent=2)
PY
}

# haproxy_config FILE BIND STATS_BIND GATEWAY_ADDRESS...: HAProxy in front of the gateways. With
# TLS ($tls 1) the frontend serves HTTPS and the gateways are checked and reached over HTTPS.
haproxy_config() {
  local file=$1 bind=$2 stats=$3; shift 3
  local frontend_tls="" backend_tls="" servers="" n=0 address
  if [ "$tls" = 1 ]; then
    frontend_tls=" ssl crt $tls_dir/balancer-haproxy.pem alpn http/1.1"
    backend_tls=" ssl verify required ca-file $ca_file"
  fi
  for address in "$@"; do n=$((n + 1)); servers+="    server gateway-$n $address check"$'\n'; done
  cat > "$file" <<CFG
# Generated by Deploy/*/up.sh: HAProxy in front of the gateways.
global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 10m
    timeout server 10m
    timeout http-request 30s
    # A gateway killed before it answered: try the request on the other one (the body is
    # buffered so it can be sent again; nothing is retried once an answer has begun).
    option http-buffer-request
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend junction
    bind $bind$frontend_tls
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 250ms fall 2 rise 2$backend_tls
${servers}listen stats
    bind $stats
    stats enable
    stats uri /stats
CFG
}

# show_processes: each process with a PID file, its PID, and whether it runs.
show_processes() {
  local f name state
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if alive "$name"; then state="running"; else state="DEAD"; fi
    printf '%-13s pid %-8s %s\n' "$name" "$(pid_of "$name")" "$state"
  done
}
