#!/usr/bin/env bash
# Every fault, at random, under one continuous load: soak.sh --minutes N --seed S (see chaos.py).
exec "${JUNCTION_PYTHON:-$HOME/.cache/junction/venv/bin/python}" "$(dirname "$0")/chaos.py" soak "$@"
