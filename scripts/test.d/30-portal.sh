#!/usr/bin/env bash
# Real-browser tests of the customer portal (tests/browser/portal): builds
# the web app (ui/portal/dist), then Playwright drives Debian's Chromium
# against a real portal-core serving it, on a free loopback port with a
# temporary, freshly seeded database. Needs `chromium`, `npm ci` in ui/ and
# tests/browser (.ci/setup.d/20-browser.sh and 30-portal.sh install them).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portico/target}"

[ -d tests/browser/node_modules/@axe-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
(cd ui && npm run build -w @portico/portal)

work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cargo build -p portico-portal --bin portal-core --locked
# A private copy, taken at once: a target directory shared with other
# checkouts may get another build of portal-core at the same path.
bin="$work/portal-core"
cp "$CARGO_TARGET_DIR/debug/portal-core" "$bin"

"$bin" --db "$work/portal.db" seed --conversations 60 --messages 300 >"$work/seed.log"
RUST_LOG=warn "$bin" --db "$work/portal.db" serve --listen 127.0.0.1:0 \
    --portal-ui "$PWD/ui/portal/dist" >"$work/server.log" 2>&1 &
server=$!
base=""
for _ in $(seq 1 300); do
    base="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/server.log" | head -n1 || true)"
    [ -n "$base" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "portal-core did not start" >&2; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { cat "$work/server.log"; echo "portal-core printed no address" >&2; exit 1; }
echo "portal-core at $base"

cd tests/browser
status=0
PORTICO_BASE="$base" npx --no-install playwright test --config portal.config.js "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "== portal-core log" >&2
    cat "$work/server.log" >&2
fi
exit "$status"
