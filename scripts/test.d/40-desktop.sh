#!/usr/bin/env bash
# Desktop app suites: UI unit tests (Vitest) and type check; screen tests in
# Chromium against the dev bridge and a real portal-core; the engine's
# keychain test and end-to-end smoke tests of the real Tauri binary through
# tauri-driver + WebKitWebDriver, inside Xvfb and a private D-Bus session
# with an unlocked gnome-keyring and dunst. Screenshots land in
# docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portico/target}"

# The wire types must match the Rust types (also run by cargo test). Before
# the build below: a `cargo test` of the app crate rebuilds its binary
# without the embedded UI.
cargo test --locked -p portico-desktop --test wire_types
./scripts/build-desktop

cd ui
echo "== desktop UI: type check and unit tests"
npm run check
npm test
cd ..

echo "== desktop: screen tests (Chromium + dev bridge + portal-core)"
node --test --test-concurrency=1 ui/inbox/tests/screens.test.mjs

echo "== desktop: keychain and end-to-end (Xvfb, D-Bus, gnome-keyring, dunst, tauri-driver)"
export WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -euo pipefail -c '
    echo -n portico | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    dunst >/dev/null 2>&1 &
    trap "kill $! 2>/dev/null || true" EXIT
    PORTICO_REQUIRE_KEYCHAIN=1 cargo test --locked -p portico-inbox --test desk the_refresh_token_round_trips
    # A mention, an assignment and an alert each become a real notification,
    # read back from dunst'"'"'s history.
    PORTICO_REQUIRE_NOTIFICATIONS=1 cargo test --locked -p portico-inbox --test desk assignment_mention_and_alert_reach_the_notification_daemon
    node --test --test-concurrency=1 ui/inbox/tests/e2e.test.mjs
'
