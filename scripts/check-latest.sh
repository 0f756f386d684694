#!/usr/bin/env bash
# Try the newest releases: a scratch venv gets the newest version of every requirement (the
# project's own ranges and the lock both set aside), then lint, the layering check and the
# whole suite run there. When they pass, the venv's versions are written to
# requirements.latest: review it and copy it over requirements.lock to upgrade. An upgrade
# is thus a deliberate step with a test run, never an accident of the day's releases.
#
#   scripts/check-latest.sh            # keeps torch at the locked release (a newer one may
#                                      # be a multi-GB download)
#   NEWEST_TORCH=1 scripts/check-latest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=$(mktemp -d "${TMPDIR:-/tmp}/rugpt-tui-latest.XXXXXX")
trap 'rm -rf "$VENV"' EXIT
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip setuptools
if [ -n "${NEWEST_TORCH:-}" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade torch
else
    "$VENV/bin/python" -m pip install -q "$(grep -E '^torch==' requirements.lock)"
fi
# Every requirement by name only: the newest release, whatever our upper bounds say.
names=$("$VENV/bin/python" - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
print(" ".join(re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in wanted if not r.startswith("torch")))
PY
)
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install -q --upgrade $names
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -m pip list --format=freeze | grep -v '^rugpt-tui' | sort -f > requirements.latest.tmp
echo "newest releases installed; what differs from the lock:"
diff <(grep -v '^#' requirements.lock) <(sed 's/^torch==\([^+]*\)+.*/torch==\1/' requirements.latest.tmp) || true
"$VENV/bin/ruff" check .
"$VENV/bin/lint-imports" --no-cache
export HF_HUB_OFFLINE=1
set +e
"$VENV/bin/python" -m pytest -q -n "${RUGPT_TUI_TEST_WORKERS:-2}" --dist worksteal \
    --ignore=tests/test_lock.py "$@"
status=$?
set -e
if [ "$status" -ne 0 ]; then
    rm -f requirements.latest.tmp
    echo "the suite fails on the newest releases (exit $status): the lock stays as it is" >&2
    exit 1
fi
{ head -6 requirements.lock; sed 's/^torch==\([^+]*\)+.*/torch==\1/' requirements.latest.tmp; } > requirements.latest
rm -f requirements.latest.tmp
echo "the suite passes on the newest releases: requirements.latest is the candidate lock"
