#!/bin/sh
# Install Debian's chromium for the browser test of the live page (tests/test_server_browser.py),
# only if it is missing. Idempotent and quiet: prints nothing when chromium is already there.
# Needs root (or sudo) and a reachable apt mirror; `make test` calls it before pytest.
set -eu
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
# the browser test skipped on purpose (a laptop without apt): nothing to install
[ "${STREAM_GPEN_SKIP_BROWSER:-}" = 1 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing and this machine has no apt-get; install chromium at $CHROMIUM" \
         "(or set CHROMIUM=PATH), or skip the browser test: STREAM_GPEN_SKIP_BROWSER=1 make test" >&2
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "ensure_chromium: $CHROMIUM is missing and this is not root; run: apt-get install -y chromium" \
             "(or skip the browser test: STREAM_GPEN_SKIP_BROWSER=1 make test)" >&2
        exit 1
    fi
else
    SUDO=""
fi

export DEBIAN_FRONTEND=noninteractive
# `update` only when the package is unknown to the local index (saves a round trip on re-runs).
SKIP="install chromium at $CHROMIUM yourself (or set CHROMIUM=PATH), or skip the browser test: STREAM_GPEN_SKIP_BROWSER=1 make test"
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null || { echo "ensure_chromium: apt-get update failed; $SKIP" >&2; exit 1; }
fi
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null ||
    { echo "ensure_chromium: apt-get install chromium failed (sudo wants a password? no mirror?); $SKIP" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "ensure_chromium: apt installed chromium but $CHROMIUM is missing (Ubuntu's is a snap); $SKIP" >&2; exit 1; }
