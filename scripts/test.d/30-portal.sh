#!/usr/bin/env bash
# Real-browser tests of the customer portal (tests/browser/portal): builds
# the web app (ui/portal/dist), then Playwright drives Debian's Chromium
# against a real portal-core serving it, on a free loopback port with a
# temporary, freshly seeded database (scripts/portal-run). Needs
# `chromium`, and `npm ci` in ui/ and tests/browser (.ci/setup.d/20-browser.sh
# and 30-portal.sh install them). Arguments pick test files.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The app's own checks first: svelte-check (warnings are errors) and its
# unit tests (language choice, translations complete, CSRF cookie, routes).
[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
(cd ui && npm run check -w @portico/portal && npm test -w @portico/portal)
exec ./scripts/portal-run npx --no-install playwright test --config portal.config.js "$@"
