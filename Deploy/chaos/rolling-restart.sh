#!/usr/bin/env bash
# Fault under load against the running local cluster: see chaos.py. Options: --seed S --workers N --no-time-targets
exec "${JUNCTION_PYTHON:-$HOME/.cache/junction/venv/bin/python}" "$(dirname "$0")/chaos.py" rolling-restart "$@"
