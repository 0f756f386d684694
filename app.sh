#!/usr/bin/env bash
# Set up (first time) and start the app. Works offline: without the hub it runs on the demo model.
# Arguments go to rugpt-tui, e.g. ./app.sh --model demo
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup-venv.sh
exec .venv/bin/rugpt-tui "$@"
