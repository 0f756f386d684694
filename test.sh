#!/usr/bin/env bash
# Set up (first time), lint, and run the whole test suite. No network needed beyond pip.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup-venv.sh
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
.venv/bin/mypy   # over core/ and tui/ (pyproject.toml's [tool.mypy])
# Tests never reach the hub: tiny models are built locally.
export HF_HUB_OFFLINE=1
set +e
# Two worker processes (one per core of the reference machine): the suite's CLI tests spend
# most of their time starting Python, which two workers overlap. Work stealing keeps both
# busy to the end (a few tests run several processes for half a minute).
.venv/bin/python -m pytest -q -n "${RUGPT_TUI_TEST_WORKERS:-2}" --dist worksteal "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
