#!/usr/bin/env bash
# Run the test suite from a clean clone: venv, the data and the small model the tests use, Chromium, pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
scripts/ensure-chromium.sh
RECSYS_MODELS=smollm2 .venv/bin/recsys setup
exec .venv/bin/python -m pytest "$@"
