//! Portico Inbox: the Tauri window around the desk. One command, `desk`,
//! carries every typed [`Command`]; every [`portico_inbox::DeskEvent`] is
//! emitted to the window as `desk`. No rule lives here.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::OnceLock;
use std::time::Instant;

use portico_inbox::{Command, Desk, DeskError};
use tauri::{Emitter, Manager};

/// When the process started, for the cold-start measurement.
static STARTED: OnceLock<Instant> = OnceLock::new();

#[tauri::command]
async fn desk(state: tauri::State<'_, Desk>, cmd: Command) -> Result<serde_json::Value, DeskError> {
    state.call(cmd).await
}

/// The UI calls this when its script starts (`rows` = 0) and once when the
/// first inbox rows are painted: the log lines are what
/// `scripts/bench-desktop-start` measures (process start to a usable inbox,
/// and the floor: process start to the UI running). The first paint also
/// lets the desk start its full check of the local store.
#[tauri::command]
fn mark_usable(desk: tauri::State<'_, Desk>, rows: usize) {
    let ms = STARTED
        .get()
        .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
    if rows == 0 {
        tracing::info!(target: "portico_startup", "ui loaded {ms:.0} ms after start");
    } else {
        tracing::info!(target: "portico_startup", rows, "inbox usable {ms:.0} ms after start");
        desk.inbox_painted();
    }
}

fn main() {
    STARTED.get_or_init(Instant::now);
    portico_desktop::init_logging();
    tauri::Builder::default()
        .setup(|app| {
            let data = app.path().app_data_dir().ok();
            let downloads = app.path().download_dir().ok();
            let config = portico_desktop::config_from_env(data, downloads);
            tracing::info!(server = %config.server, data = %config.data_dir.display(), "starting");
            let secrets = portico_desktop::secrets_from_env();
            let desk = tauri::async_runtime::block_on(async { Desk::open(config, secrets) })
                .map_err(|e| format!("{}: {}", e.code, e.message))?;
            let mut events = desk.subscribe();
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                while let Ok(e) = events.recv().await {
                    let _ = handle.emit("desk", e);
                }
            });
            app.manage(desk);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![desk, mark_usable])
        .run(tauri::generate_context!())
        .expect("the Tauri application failed to start");
}
