#!/usr/bin/env bash
# Create .venv and install the project with pinned versions; a no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
FIND_LINKS=()
[ -d /opt/wheels ] && FIND_LINKS=(--find-links /opt/wheels)
.venv/bin/python -m pip install -q --disable-pip-version-check "${FIND_LINKS[@]}" torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check "${FIND_LINKS[@]}" -c constraints.txt -e ".[test]"
rm -f .venv/.installed-*
touch "$stamp"
