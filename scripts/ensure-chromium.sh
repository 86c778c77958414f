#!/usr/bin/env bash
# Make sure Debian's Chromium is present: the HTML report's tests drive it through Playwright
# (pip's playwright, launched with executable_path; Playwright's own browser download needs a
# host this machine cannot reach). Installs it where it can; otherwise one line saying what to do.
set -u

. "$(dirname "$0")/apt-install.sh"

command -v chromium >/dev/null 2>&1 && exit 0
apt_install chromium || fail "no Chromium: install it (apt-get install chromium)."
command -v chromium >/dev/null 2>&1 || fail "chromium was installed but is not on PATH."
