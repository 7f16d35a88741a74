#!/usr/bin/env bash
# Stops every process the local cluster started (SIGTERM, then SIGKILL after 10 s), by PID file.
# Logs and data stay in $JUNCTION_LOCAL_DIR; --purge removes the folder too.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
# In layers, each in parallel: the balancer and gateways, then the agents (which deregister their
# engines while the trio is still there), then the engines, the trio last.
for layer in "haproxy prometheus ${gateways[*]/#/gateway-}" "${engines[*]/#/agent-}" "${engines[*]/#/engine-}" "${schedulers[*]/#/scheduler-} peer-links"; do
  for name in $layer; do
    [ -f "$dir/pids/$name.pid" ] && stop "$name" &
  done
  wait
done
echo "down: stopped; logs in $dir/logs"
if [ "${1:-}" = "--purge" ]; then rm -rf "$dir"; echo "down: removed $dir"; fi
