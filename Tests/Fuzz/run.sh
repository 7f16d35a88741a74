#!/usr/bin/env bash
# Builds a libFuzzer harness with AddressSanitizer and runs it for a bounded time.
# Usage: Tests/Fuzz/run.sh wire|promtext|scheduler [SECONDS]   (the harness is Sources/Fuzz<Name>)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run.sh wire|promtext|scheduler [seconds]}
seconds=${2:-600}
target="Fuzz$(tr '[:lower:]' '[:upper:]' <<< "${name:0:1}")${name:1}"
swift build --package-path "$here" -c debug --product "$target" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
work="$here/.build/corpus-$name"
mkdir -p "$work" "$here/.build/artifacts-$name"
# The scheduler harness runs a live node for the whole run: LeakSanitizer counts three objects it
# makes as it starts (Docs/fuzzing.md), so leak detection is off there; ASan's other checks stay.
extra=()
if [ "$name" = scheduler ]; then extra=(-detect_leaks=0); export ASAN_OPTIONS=detect_leaks=0; fi
export SWIFT_BACKTRACE=enable=no
# The checked-in seeds come second: libFuzzer writes new inputs to the first folder only.
"$here/.build/debug/$target" "$work" "$here/corpus/$name" \
  -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 -timeout=10 "${extra[@]}" \
  -artifact_prefix="$here/.build/artifacts-$name/" 2>&1 | tee "$here/.build/fuzz-$name.log" | grep -E '^#[0-9]+ +(DONE|pulse)|ERROR|stat::|SUMMARY|crash-|Test unit written' || true
tail -n 20 "$here/.build/fuzz-$name.log" | grep -q "Done [0-9]* runs" || { echo "fuzz-$name: the fuzzer did not finish cleanly; see $here/.build/fuzz-$name.log"; exit 1; }
