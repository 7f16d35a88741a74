#!/usr/bin/env bash
# How much CPU one `junction engine-sim` process needs to keep many streams going, so that
# benchmarks measure the router and not the simulator. Starts a release build of the simulator,
# holds CONNECTIONS streaming requests open with wrk for SECONDS, and prints the token rate, the
# simulator's CPU use (from /proc), CPU time per token and peak memory.
#
#   Deploy/bench/engine-sim-efficiency.sh [CONNECTIONS=500] [SECONDS=20] [SPEED=1] [MAX_TOKENS=256]
set -euo pipefail
connections=${1:-500}
seconds=${2:-20}
speed=${3:-1}
max_tokens=${4:-256}
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=${JUNCTION_RELEASE_BIN:-$root/.build/release/junction}
[ -x "$binary" ] || { echo "build first: swift build -c release --product junction" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk missing: make deps" >&2; exit 2; }

work=$(mktemp -d)
log=$work/sim.log
"$binary" engine-sim --port 0 --profile 7b-h100 --max-num-seqs 1024 --speed "$speed" >"$log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.05; done
url=$(grep -o 'http://[0-9.]*:[0-9]*' "$log")

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"DeepSeek-R1-Distill-Qwen-7B","messages":[{"role":"user","content":"Summarise the history of the printing press in a few paragraphs, please."}],"max_tokens":$max_tokens,"ignore_eos":true,"stream":true}'
LUA

metric() { curl -s "$url/metrics" | awk -v n="$1" '$1 ~ "^"n"[{ ]" || $1 == n {s += $2} END {printf "%.0f", s}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$sim/stat"; }
hz=$(getconf CLK_TCK)

tokens_before=$(metric vllm:generation_tokens_total)
ticks_before=$(cpu_ticks)
start=$(date +%s.%N)
wrk -t2 -c"$connections" -d"${seconds}s" --timeout 60s -s "$work/post.lua" "$url/v1/chat/completions" >"$work/wrk.txt" &
load=$!
peak_running=0
while kill -0 $load 2>/dev/null; do
  running=$(metric vllm:num_requests_running)
  [ "$running" -gt "$peak_running" ] && peak_running=$running
  sleep 0.5
done
wait $load
end=$(date +%s.%N)
tokens_after=$(metric vllm:generation_tokens_total)
ticks_after=$(cpu_ticks)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$sim/status")

python3 - "$tokens_before" "$tokens_after" "$ticks_before" "$ticks_after" "$hz" "$start" "$end" "$peak_running" "$rss_kb" "$connections" "$speed" <<'PY'
import sys
tb, ta, cb, ca, hz, start, end, peak, rss, conns, speed = sys.argv[1:]
wall = float(end) - float(start)
tokens = int(ta) - int(tb)
cpu = (int(ca) - int(cb)) / int(hz)
print(f"connections {conns}, speed {speed}: peak running streams {peak}")
print(f"tokens streamed      {tokens} in {wall:.1f} s = {tokens / wall:,.0f} tokens/s")
print(f"simulator CPU        {cpu:.2f} s = {100 * cpu / wall:.0f}% of one core")
print(f"CPU per token        {1e6 * cpu / max(tokens, 1):.1f} µs")
print(f"peak RSS             {int(rss) / 1024:.0f} MiB")
PY
grep -E "Requests/sec|requests in|Socket errors|Non-2xx" "$work/wrk.txt" || true
