#!/usr/bin/env bash
# Set up .venv and run the main job. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m examples.quicktour "$@"
