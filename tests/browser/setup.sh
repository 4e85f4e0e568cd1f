#!/usr/bin/env bash
# What the browser tests need besides Python packages: Debian's Chromium (Playwright drives
# it; Playwright's own browser downloads are not used) and axe-core from npm (injected into
# pages to check accessibility). Installs what is missing; does nothing when both are there.
set -euo pipefail
cd "$(dirname "$0")"

CHROMIUM="${PARRAIN_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "browser tests: installing Debian's chromium" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "browser tests need Chromium at $CHROMIUM: install Debian's 'chromium' package" \
            "(sudo apt-get install chromium) or set PARRAIN_TEST_CHROMIUM to a Chromium binary" >&2
        exit 1
    fi
fi

if [ ! -f node_modules/axe-core/axe.min.js ]; then
    if ! command -v npm >/dev/null; then
        echo "browser tests need npm (Node.js) to install axe-core" >&2
        exit 1
    fi
    echo "browser tests: installing axe-core from npm" >&2
    npm ci --no-audit --no-fund --ignore-scripts --silent
fi
