#!/usr/bin/env bash
# Stops every process the local cluster started (SIGTERM, then SIGKILL after 10 s), by PID file.
# Logs and data stay in $JUNCTION_LOCAL_DIR; --purge removes the folder too.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
# The balancer and gateways first, engines' agents before the engines, the trio last.
for name in haproxy "${gateways[@]/#/gateway-}" "${engines[@]/#/agent-}" "${engines[@]/#/engine-}" "${schedulers[@]/#/scheduler-}"; do
  [ -f "$dir/pids/$name.pid" ] && stop "$name" &
done
wait
echo "down: stopped; logs in $dir/logs"
if [ "${1:-}" = "--purge" ]; then rm -rf "$dir"; echo "down: removed $dir"; fi
