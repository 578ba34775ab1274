//! The Portico Inbox shell: where the desk keeps its data and which server it
//! talks to, read from the environment, shared by the Tauri app and the
//! development bridge. Everything the app does is in `portico_inbox::desk`.

use std::path::PathBuf;

use portico_inbox::DeskConfig;
use portico_inbox::secrets::SecretStore;

/// The desk's settings from the environment:
///
/// - `PORTICO_SERVER`: portal-core's address (default `http://127.0.0.1:8080`);
/// - `PORTICO_INBOX_DATA`: where the local store lives (default: the
///   platform's data directory, e.g. `~/.local/share/portico-inbox`);
/// - `PORTICO_NO_BROWSER=1`: do not open the system browser on sign-in (the
///   page is still linked in the app);
/// - `PORTICO_NO_NOTIFICATIONS=1`: no desktop notifications;
/// - `PORTICO_KEYCHAIN=memory`: do not use the OS keychain;
/// - `PORTICO_SIGN_IN_AT_START=1`: start the browser sign-in at launch when
///   nobody is signed in (the demo);
/// - `PORTICO_DOWNLOADS`: where saved attachments go (default: the
///   platform's downloads folder, else `downloads` in the data directory).
pub fn config_from_env(
    default_data: Option<PathBuf>,
    default_downloads: Option<PathBuf>,
) -> DeskConfig {
    let server =
        std::env::var("PORTICO_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let data = std::env::var_os("PORTICO_INBOX_DATA")
        .map(PathBuf::from)
        .or(default_data)
        .unwrap_or_else(|| PathBuf::from("portico-inbox-data"));
    let mut cfg = DeskConfig::new(server, data);
    cfg.open_browser = !flag("PORTICO_NO_BROWSER");
    cfg.notifications = !flag("PORTICO_NO_NOTIFICATIONS");
    cfg.sign_in_at_start = flag("PORTICO_SIGN_IN_AT_START");
    if let Some(dir) = std::env::var_os("PORTICO_DOWNLOADS")
        .map(PathBuf::from)
        .or(default_downloads)
    {
        cfg.downloads_dir = dir;
    }
    cfg
}

/// The keychain, unless told to keep tokens in memory. Blocking.
pub fn secrets_from_env() -> SecretStore {
    if std::env::var("PORTICO_KEYCHAIN").as_deref() == Ok("memory") {
        SecretStore::memory_only("PORTICO_KEYCHAIN=memory")
    } else {
        SecretStore::open_system()
    }
}

fn flag(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// Logs to stderr, `RUST_LOG` filtered (default: info for Portico).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,portico_inbox=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
