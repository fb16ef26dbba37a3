#!/usr/bin/env bash
# What the browser tests need from the system: Debian's chromium (Playwright drives it; it never downloads
# a browser) and the emoji font that keeps the page's buttons legible in screenshots. Installed with
# apt-get as root, or through password-less sudo; otherwise this says exactly which command to run.
# CHROMIUM_PATH points the tests at another Chromium; then nothing is installed.
set -euo pipefail

# where Debian's package puts it (DEBIAN_CHROMIUM only moves it for tests/unit/test_browser_deps.py)
chromium="${CHROMIUM_PATH:-${DEBIAN_CHROMIUM:-/usr/bin/chromium}}"
packages=(chromium fonts-noto-color-emoji)
command_line="apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"

if [[ -x "$chromium" ]]; then
    exit 0
fi
if [[ -n "${CHROMIUM_PATH:-}" ]]; then
    echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable; point it at Chromium or unset it" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "The browser tests need Chromium at $chromium and this is not a Debian/Ubuntu machine:" >&2
    echo "install Chromium with your package manager and set CHROMIUM_PATH=/path/to/chromium" >&2
    exit 1
fi
sudo=()
if (( EUID != 0 )); then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "The browser tests need Chromium at $chromium. Install it once, as root:" >&2
        echo "    sudo sh -c '$command_line'" >&2
        echo "(or set CHROMIUM_PATH to a Chromium you have), then run make test again." >&2
        exit 1
    fi
fi
echo "--- installing ${packages[*]} (apt-get) for the browser tests"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
[[ -x "$chromium" ]] || { echo "apt-get installed chromium but $chromium is still missing" >&2; exit 1; }
