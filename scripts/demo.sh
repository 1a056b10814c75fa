#!/usr/bin/env bash
# The main job: sets up the environment, then runs `sspnet demo` (extra arguments go to the demo).
# Exit status: 0 = done and the model reached AP50-tiny >= 50 %; 3 = done but NOT trained well
# enough (see demo_out/report.md); 1 = a stage failed (demo_out/demo_error.log); 2 = bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
PY="${SSPNET_VENV:-.venv}/bin/python"
exec "$PY" -m sspnet demo --out "${SSPNET_DEMO_OUT:-demo_out}" "$@"
