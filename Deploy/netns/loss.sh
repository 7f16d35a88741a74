#!/usr/bin/env bash
# See netchaos.py. Options: --seed S --workers N --no-time-targets
exec "$(dirname "$0")/chaos.sh" kill-leader --under loss "$@"
