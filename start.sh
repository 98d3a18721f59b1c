#!/usr/bin/env bash
# Set everything up (venv, pinned data and models, ML-1M in Chroma) and start the chat UI.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
.venv/bin/recsys setup
.venv/bin/recsys ingest --dataset "${RECSYS_DATASET:-ml-1m}"
exec .venv/bin/recsys serve
