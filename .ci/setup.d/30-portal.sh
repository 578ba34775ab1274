# Customer portal tests (scripts/test.d/30-portal.sh): the web app's npm
# packages (ui/package-lock.json) to build ui/portal, and axe-core for the
# accessibility checks (tests/browser/package-lock.json). Chromium and
# Playwright come from 20-browser.sh. scripts/portal-run gives portal-core a
# real SMTP server (tests/browser/mail-sink.py, aiosmtpd) whose delivered
# invitation mail the tests read. Sourced by .ci/run.
apt-get install -y -q python3-aiosmtpd
(cd ui && npm ci --no-audit --no-fund)
(cd tests/browser && npm ci --no-audit --no-fund)
