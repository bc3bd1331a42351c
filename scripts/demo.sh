#!/usr/bin/env bash
# Set up .venv and run the main job: the three-region social-feed demo (Ctrl-C stops it).
# Extra arguments go to the demo (--fresh, --load, --port, --seconds; see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m examples.social_feed "$@"
