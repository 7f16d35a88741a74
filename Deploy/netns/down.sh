#!/usr/bin/env bash
# Stops every process of the namespaced cluster (SIGTERM, then SIGKILL after 10 s, by PID file)
# and deletes its namespaces (which removes their interfaces, bridges and TAP devices). Logs and
# data stay in $JUNCTION_NETNS_DIR; --purge removes the folder too.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require_root
for layer in "haproxy gateway-1 gateway-2" "agent-a agent-b agent-c agent-d" "engine-a engine-b engine-c engine-d" \
             "scheduler-1 scheduler-2 scheduler-3" "wan-link"; do
  for name in $layer; do
    [ -f "$dir/pids/$name.pid" ] && stop "$name" &
  done
  wait
done
for h in "${hosts[@]}"; do ip netns del "$(ns "$h")" 2>/dev/null || true; done
ip netns del "$fabric" 2>/dev/null || true
echo "netns down: stopped; namespaces $prefix-* removed; logs in $dir/logs"
if [ "${1:-}" = "--purge" ]; then rm -rf "$dir"; echo "netns down: removed $dir"; fi
