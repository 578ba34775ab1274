//! The UI's TypeScript types are generated from the Rust types, never
//! written by hand: this test generates them and fails when the files in
//! `ui/inbox/src/lib/wire/` differ (a Rust type changed, the UI was not
//! regenerated). Regenerate with:
//!
//! ```sh
//! PORTICO_WRITE_WIRE=1 cargo test -p portico-desktop --test wire_types
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portico_inbox::desk::{Command, DeskError, DeskEvent, DeskState, SavedFile, SignInStarted};
use portico_inbox::query::{ConversationRow, Mention};
use portico_inbox::reads::ConversationDetail;
use portico_inbox::search::Hit;
use portico_model::{Alert, User};
use ts_rs::{Config, TS};

fn wire_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/inbox/src/lib/wire")
}

/// Every root type the UI uses; their dependencies come along.
fn export(cfg: &Config) {
    Command::export_all(cfg).unwrap();
    DeskEvent::export_all(cfg).unwrap();
    DeskState::export_all(cfg).unwrap();
    DeskError::export_all(cfg).unwrap();
    SignInStarted::export_all(cfg).unwrap();
    SavedFile::export_all(cfg).unwrap();
    portico_model::SavedReply::export_all(cfg).unwrap();
    portico_inbox::replies::FilledReply::export_all(cfg).unwrap();
    ConversationRow::export_all(cfg).unwrap();
    ConversationDetail::export_all(cfg).unwrap();
    Mention::export_all(cfg).unwrap();
    Hit::export_all(cfg).unwrap();
    Alert::export_all(cfg).unwrap();
    User::export_all(cfg).unwrap();
    portico_inbox::outbox::Rejection::export_all(cfg).unwrap();
    portico_inbox::engine::Queued::export_all(cfg).unwrap();
    portico_inbox::drafts::DraftView::export_all(cfg).unwrap();
    portico_model::Article::export_all(cfg).unwrap();
    portico_model::email::HeldContact::export_all(cfg).unwrap();
    portico_inbox::held::Linked::export_all(cfg).unwrap();
    portico_model::Account::export_all(cfg).unwrap();
}

/// Every `.ts` file under `dir`, by path relative to it.
fn read_all(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|x| x == "ts") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn ui_wire_types_match_the_rust_types() {
    let tmp = tempfile::tempdir().unwrap();
    // JSON numbers: every integer on the wire fits in a double.
    export(
        &Config::new()
            .with_large_int("number")
            .with_out_dir(tmp.path()),
    );
    let generated = read_all(tmp.path());
    assert!(
        generated.contains_key("Command.ts"),
        "nothing was generated"
    );
    if std::env::var_os("PORTICO_WRITE_WIRE").is_some() {
        let dir = wire_dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &generated {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        return;
    }
    let checked_in = read_all(&wire_dir());
    let differing: Vec<&String> = generated
        .keys()
        .chain(checked_in.keys())
        .filter(|k| generated.get(*k) != checked_in.get(*k))
        .collect();
    assert!(
        differing.is_empty(),
        "ui/inbox/src/lib/wire is out of date with the Rust types ({differing:?}); regenerate with \
         PORTICO_WRITE_WIRE=1 cargo test -p portico-desktop --test wire_types"
    );
}
