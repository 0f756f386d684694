#!/usr/bin/env bash
# Create .venv (once) and install rugpt-tui into it with the dev tools, at the exact versions
# of requirements.lock. torch goes first, on its own: on a CPU machine pip takes the CPU
# build of the locked release where one is at hand, on a GPU box PyPI's CUDA build of it.
# The project's own requirements stay ranges (pyproject.toml); the lock pins what installs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOCK=requirements.lock
# Already set up for this pyproject.toml and lock: nothing to do (keeps ./app.sh quick).
if [ -x .venv/bin/rugpt-tui ] && [ .venv/.installed -nt pyproject.toml ] && [ .venv/.installed -nt "$LOCK" ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
locked() { grep -E "^$1==" "$LOCK"; }
.venv/bin/python -m pip install -q "$(locked pip)"
.venv/bin/python -m pip install -q -c "$LOCK" "$(locked setuptools)"
.venv/bin/python -m pip install -q -c "$LOCK" "$(locked torch)"
# The project itself is built with the locked setuptools already in the venv (an isolated
# build would fetch the newest one).
.venv/bin/python -m pip install -q -c "$LOCK" --no-build-isolation -e ".[dev]"
touch .venv/.installed
