#!/usr/bin/env bash
# Sets everything up (build/setup.sh), then runs Polyphone with the given
# arguments. With none it starts the default (for now, a demo call).
#   usage: build/run.sh [POLYPHONE ARGS...]     e.g. build/run.sh devices
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/build/setup.sh"
# No cd: relative paths in ARGS mean what they meant where you ran this.
exec "$ROOT/.venv/bin/polyphone" "$@"
