#!/bin/sh
# Install Debian's chromium for the browser test of the live page (tests/test_server_browser.py),
# only if it is missing. Idempotent and quiet: prints nothing when chromium is already there.
# Needs root (or sudo) and a reachable apt mirror; `make test` calls it before pytest.
set -eu
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "ensure_chromium: $CHROMIUM is missing and this is not root; run: apt-get install -y chromium" >&2
        exit 1
    fi
else
    SUDO=""
fi

export DEBIAN_FRONTEND=noninteractive
# `update` only when the package is unknown to the local index (saves a round trip on re-runs).
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
fi
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
[ -x "$CHROMIUM" ] || { echo "ensure_chromium: apt installed chromium but $CHROMIUM is missing" >&2; exit 1; }
