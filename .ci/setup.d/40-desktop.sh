# Desktop app (Portico Inbox): sourced by .ci/run after `apt-get update`.
# Installs the Tauri/WebKit build libraries (the workspace's clippy and tests
# build src-tauri, so this runs before scripts/test), the headless desktop
# the smoke tests need (Xvfb, a D-Bus session bus, gnome-keyring as the
# Secret Service, dunst as the notification daemon), WebKitWebDriver and
# Chromium from Debian, the pinned tauri-driver, and the UI's npm packages.
# The screen tests' portal-core sends email replies to a real SMTP server
# (tests/browser/mail-sink.py, aiosmtpd from Debian's python3-aiosmtpd).
apt-get install -y -q --no-install-recommends \
    libwebkit2gtk-4.1-dev libsoup-3.0-dev librsvg2-dev libayatana-appindicator3-dev \
    libxdo-dev libssl-dev build-essential file pkg-config \
    xvfb xauth webkit2gtk-driver dbus-x11 gnome-keyring libsecret-tools \
    dunst libnotify-bin chromium imagemagick python3-aiosmtpd
command -v tauri-driver >/dev/null && tauri-driver --version 2>/dev/null | grep -q '2.1.0' \
    || cargo install tauri-driver --version 2.1.0 --locked
# The UI is built here too: the app crate embeds or references ui/inbox/dist.
(cd ui && npm ci --no-audit --no-fund && npm run build)
