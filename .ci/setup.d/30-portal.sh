# Customer portal tests (scripts/test.d/30-portal.sh): the web app's npm
# packages (ui/package-lock.json) to build ui/portal, and axe-core for the
# accessibility checks (tests/browser/package-lock.json). Chromium and
# Playwright come from 20-browser.sh. Sourced by .ci/run.
(cd ui && npm ci --no-audit --no-fund)
(cd tests/browser && npm ci --no-audit --no-fund)
