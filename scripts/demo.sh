#!/usr/bin/env bash
# The main job: sets up the environment, then runs `sspnet demo` (or, until every stage exists,
# what the toolkit already does). Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
PY="${SSPNET_VENV:-.venv}/bin/python"
if "$PY" -m sspnet --help | grep -q "^  demo "; then
  exec "$PY" -m sspnet demo --out "${SSPNET_DEMO_OUT:-demo_out}" "$@"
fi
exec "$PY" -m sspnet info
