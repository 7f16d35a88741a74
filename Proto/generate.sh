#!/usr/bin/env bash
# Regenerates the protobuf-c C code and the Swift message types from Proto/junction.proto into
# the folder given (default: the checked-in locations). `make proto` and `make proto-check` call it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
c_dir=${1:-$root/Sources/CJunctionProto}
swift_out=${2:-$root/Sources/Wire/Generated/Messages.swift}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
protoc-c --c_out="$tmp" -I"$here" "$here/junction.proto"
mkdir -p "$c_dir/include" "$(dirname "$swift_out")"
mv "$tmp/junction.pb-c.h" "$c_dir/include/junction.pb-c.h"
mv "$tmp/junction.pb-c.c" "$c_dir/junction.pb-c.c"
protoc --include_source_info --descriptor_set_out="$tmp/junction.desc" -I"$here" "$here/junction.proto"
# The test venv (make deps) has Python's protobuf package; a bare python3 may not.
"${JUNCTION_PYTHON:-python3}" "$here/gen_swift.py" "$tmp/junction.desc" "$swift_out"
