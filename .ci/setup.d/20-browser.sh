# Browser tests (scripts/test.d/20-browser.sh): Debian's Chromium, driven by
# Playwright from npm (pinned in tests/browser/package-lock.json; Playwright
# cannot download its own browsers on these machines). Sourced by .ci/run.
apt-get install -y -q chromium
(cd tests/browser && npm ci --no-audit --no-fund)
