#!/usr/bin/env bash
# Builds a libFuzzer harness with AddressSanitizer and runs it for a bounded time.
# Usage: Tests/Fuzz/run.sh wire|promtext [SECONDS]   (the harness is Sources/Fuzz<Name>)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run.sh wire|promtext [seconds]}
seconds=${2:-600}
target="Fuzz$(tr '[:lower:]' '[:upper:]' <<< "${name:0:1}")${name:1}"
swift build --package-path "$here" -c debug --product "$target" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
work="$here/.build/corpus-$name"
mkdir -p "$work" "$here/.build/artifacts-$name"
# The checked-in seeds come second: libFuzzer writes new inputs to the first folder only.
"$here/.build/debug/$target" "$work" "$here/corpus/$name" \
  -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 -timeout=10 \
  -artifact_prefix="$here/.build/artifacts-$name/" 2>&1 | tee "$here/.build/fuzz-$name.log" | grep -E '^#[0-9]+ +(DONE|pulse)|ERROR|stat::|SUMMARY|crash-|Test unit written' || true
tail -n 20 "$here/.build/fuzz-$name.log" | grep -q "Done [0-9]* runs" || { echo "fuzz-$name: the fuzzer did not finish cleanly; see $here/.build/fuzz-$name.log"; exit 1; }
