#!/bin/sh
# Installs Debian's chromium and chromium-driver when they are missing, for the dashboard's
# browser test (tests/integration/test_dashboard_browser.py drives them with Selenium).
# No browser is downloaded by a Python package: Selenium is given both paths explicitly.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian's chromium and chromium-driver packages" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
chromium --version >&2
