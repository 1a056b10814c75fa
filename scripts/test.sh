#!/usr/bin/env bash
# The test command: sets up the environment, then runs the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k nms`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
exec "${SSPNET_VENV:-.venv}/bin/python" -m pytest tests "$@"
