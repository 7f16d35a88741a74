#!/usr/bin/env bash
# Installs what building and testing Junction needs on a fresh Debian machine, and nothing that is
# already there: protobuf-c (library and compiler), protoc, pkg-config, Prometheus' promtool (to
# check our /metrics), wrk (load for the simulator's efficiency benchmark), HAProxy and curl (the local
# cluster's load balancer and its sample requests), iproute2 and nftables (the namespaced
# cluster's hosts and its packet loss, Deploy/netns), kubectl if apt has it, and a Python venv with
# the packages in Tests/Interop/requirements.txt. Idempotent; `make deps` (and so `make test`) runs it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${JUNCTION_VENV:-$HOME/.cache/junction/venv}

apt_packages=(libprotobuf-c-dev protobuf-c-compiler protobuf-compiler pkg-config python3-venv prometheus wrk haproxy curl tmux iproute2 nftables)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# python3-venv is Debian's name; a python from elsewhere (pyenv) has venv built in.
if [ ${#missing[@]} -gt 0 ] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl renders Deploy/k8s (kustomize is built in): Google's `kubectl` apt package, where its
# repository is configured. Without it the manifest tests fail, saying so.
if ! command -v kubectl >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kubectl >/dev/null 2>&1 \
    || echo "install-deps: kubectl is not installed and apt has none; see https://kubernetes.io/docs/tasks/tools/" >&2
fi

requirements="$root/Tests/Interop/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-deps: python venv at $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
fi
