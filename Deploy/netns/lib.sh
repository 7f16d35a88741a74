# Shared by Deploy/netns's scripts (sourced, not run): the hosts, their zones and addresses, and
# how to reach into them. Each host is a network namespace with one interface, eth0, plugged into
# its zone's bridge in the fabric namespace; the two zones' bridges are joined by the WAN link
# (wan-link.py). Nothing is added to the machine's own network namespace.
JUNCTION_LOCAL_DIR=${JUNCTION_NETNS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.run/netns}
export JUNCTION_LOCAL_DIR
# launch, relaunch, stop, alive and wait_http; processes keep the local cluster's names
# (scheduler-1, engine-a, gateway-2, ...), so Deploy/chaos/chaos.py can signal and restart them.
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

# Namespace names are the only names on the machine: a prefix keeps two clusters apart. up.sh
# records the one it used in $dir/prefix, so the other scripts follow the running cluster.
prefix=${JUNCTION_NETNS_PREFIX:-$(cat "$dir/prefix" 2>/dev/null || echo jn)}
fabric=$prefix-fabric
subnet=10.77.0
declare -A address=([s1]=$subnet.11 [s2]=$subnet.12 [s3]=$subnet.13
                    [ea]=$subnet.21 [eb]=$subnet.22 [ec]=$subnet.23 [ed]=$subnet.24
                    [g1]=$subnet.31 [g2]=$subnet.32 [client]=$subnet.100)
# Zone a holds two of the three schedulers (a quorum on its own) and the client; zone b the
# third scheduler, two engines and the second gateway.
declare -A zone=([s1]=a [s2]=a [s3]=b [ea]=a [eb]=a [ec]=b [ed]=b [g1]=a [g2]=b [client]=a)
hosts=(s1 s2 s3 ea eb ec ed g1 g2 client)
scheduler_port=7100
metrics_port=9100
engine_port=8000
gateway_port=8080
balancer_port=8080
stats_port=8404

ns() { echo "$prefix-$1"; }
# on_host HOST COMMAND...: runs COMMAND on HOST (in its namespace).
on_host() { local host=$1; shift; ip netns exec "$(ns "$host")" "$@"; }
# The fabric's end of HOST's cable: `ip -n $fabric link set $(port_of s1) down` unplugs it.
port_of() { echo "p-$1"; }
wan_control() { echo "$dir/wan-link.sock"; }

require_root() {
  [ "$(id -u)" -eq 0 ] || { echo "netns: needs root (network namespaces, bridges, TAP devices); run as root" >&2; exit 2; }
  command -v ip >/dev/null || { echo "netns: needs iproute2's ip" >&2; exit 2; }
}

# wait_http_on HOST URL SECONDS: until URL, fetched from HOST, answers 200.
wait_http_on() {
  local host=$1 url=$2 seconds=${3:-30}
  for _ in $(seq $((seconds * 10))); do
    [ "$(on_host "$host" curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}
