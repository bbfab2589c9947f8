#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/web) and the web benchmark:
# a test tool's own browser download cannot work on these machines, so
# Playwright drives this one through its executable path.
set -euo pipefail
sudo_if() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# A Chinese font too: without one every screenshot shows boxes for 汉字.
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi microhei; then
  printf '[browser] installing chromium and a Chinese font (Debian packages)\n' >&2
  sudo_if apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
command -v chromium
