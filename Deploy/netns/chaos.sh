#!/usr/bin/env bash
# A fault under load against the namespaced cluster, run from its client host: see netchaos.py.
# Usage: Deploy/netns/chaos.sh FAULT [--under latency|loss] [--seed S] [--workers N] [--no-time-targets]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
require_root
[ -f "$dir/prefix" ] || { echo "netns chaos: no namespaced cluster in $dir (Deploy/netns/up.sh)" >&2; exit 1; }
exec ip netns exec "$(ns client)" "${JUNCTION_PYTHON:-$HOME/.cache/junction/venv/bin/python}" "$here/netchaos.py" "$@"
