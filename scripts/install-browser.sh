#!/usr/bin/env bash
# Install what the browser test needs: Debian's chromium (at /usr/bin/chromium) and the
# playwright Python package (no browser download: the test drives Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo -n"; else
    echo "install-browser: /usr/bin/chromium missing and no root to apt-get it" >&2; exit 1; fi
  echo "install-browser: installing Debian's chromium (apt-get)" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
fi
