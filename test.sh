#!/usr/bin/env bash
# Set up (first time), lint, and run the whole test suite. No network needed beyond pip.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup-venv.sh
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
# Tests never reach the hub: tiny models are built locally.
export HF_HUB_OFFLINE=1
set +e
.venv/bin/python -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
