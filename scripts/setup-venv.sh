#!/usr/bin/env bash
# Create .venv (once) and install rugpt-tui into it with the dev tools.
# torch is installed first, pinned, so pip does not pick a newer multi-GB build on its own;
# the project's own requirement stays open (torch>=2.2), so a GPU machine keeps its CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Already set up for this pyproject.toml: nothing to do (keeps ./app.sh quick to start).
if [ -x .venv/bin/rugpt-tui ] && [ .venv/.installed -nt pyproject.toml ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[dev]"
touch .venv/.installed
