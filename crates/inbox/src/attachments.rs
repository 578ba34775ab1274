//! Saving a mail's attachment from the desktop. The bytes stay on the server
//! (they are not mirrored: a support mailbox's files would outgrow the local
//! store), so saving is online only; the server checks again that the
//! person may see the message. The file lands in the person's downloads
//! folder under the sender's file name, made safe, never overwriting one
//! already there (like a browser's download: "invoice (1).pdf").

use std::path::{Path, PathBuf};

use portico_model::email::Attachment;
use portico_model::{Kind, MessageId};

use crate::engine::{Engine, EngineError, Result};

/// Longest file name written, in bytes (ext4 and most file systems allow 255).
const MAX_NAME_BYTES: usize = 200;

impl Engine {
    /// Downloads attachment `attachment` of the mirrored message `message`
    /// into `dir` and returns where it was written. The name comes from the
    /// message record, not from the caller.
    pub async fn save_attachment(
        &self,
        message: MessageId,
        attachment: uuid::Uuid,
        dir: &Path,
    ) -> Result<PathBuf> {
        let record = self
            .record(Kind::Message, message.0)?
            .ok_or_else(|| invalid("message", "this message is not in the local inbox"))?;
        let listed: Vec<Attachment> = record
            .get("email")
            .and_then(|e| e.get("attachments"))
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default();
        let file = listed
            .into_iter()
            .find(|a| a.id == attachment)
            .ok_or_else(|| invalid("attachment", "this message has no such attachment"))?;
        if !file.stored {
            return Err(invalid(
                "attachment",
                &format!(
                    "{} was not kept: {}",
                    file.filename,
                    file.refused
                        .as_deref()
                        .unwrap_or("refused when the mail arrived")
                ),
            ));
        }
        let bytes = self
            .inner
            .api
            .get_bytes(&format!("/v1/attachments/{attachment}"), "the attachment")
            .await?;
        let dir = dir.to_path_buf();
        let name = safe_file_name(&file.filename);
        tokio::task::spawn_blocking(move || write_new(&dir, &name, &bytes))
            .await
            .map_err(|e| EngineError::Local(format!("saving the attachment stopped: {e}")))?
    }
}

fn invalid(field: &str, message: &str) -> EngineError {
    EngineError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// A sender's file name made safe to create: no directories, no control
/// characters, no characters Windows refuses, not hidden, not empty, and
/// not longer than [`MAX_NAME_BYTES`] (the extension kept).
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let name = if trimmed.is_empty() {
        "attachment"
    } else {
        trimmed
    };
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let ext = if ext.len() <= 16 { ext } else { "" };
    let mut cut = MAX_NAME_BYTES - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut])
}

/// `("report", ".pdf")`; `("archive.tar", ".gz")`; `("README", "")`.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

/// Writes `bytes` to a new file named `name` in `dir`, or "name (1).ext",
/// "name (2).ext", … when taken: an earlier download is never replaced.
fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::Local(format!("cannot create {}: {e}", dir.display())))?;
    let (stem, ext) = split_extension(name);
    for n in 0..1000 {
        let path = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&path);
                        EngineError::Local(format!("cannot write {}: {e}", path.display()))
                    })?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(EngineError::Local(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Err(EngineError::Local(format!(
        "{name} already exists 1,000 times in {}",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_folder_hide_or_overflow() {
        assert_eq!(safe_file_name("invoice.pdf"), "invoice.pdf");
        assert_eq!(safe_file_name("../../.bashrc"), "_.._.bashrc");
        assert_eq!(safe_file_name("..\\evil.exe"), "_evil.exe");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name("  "), "attachment");
        assert_eq!(safe_file_name("a\u{0}b\nc.txt"), "a_b_c.txt");
        let long = format!("{}.pdf", "é".repeat(300));
        let short = safe_file_name(&long);
        assert!(short.len() <= MAX_NAME_BYTES, "{}", short.len());
        assert!(short.ends_with(".pdf"), "the extension is kept: {short}");
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_new(dir.path(), "report.pdf", b"one").unwrap();
        let second = write_new(dir.path(), "report.pdf", b"two").unwrap();
        assert_eq!(first.file_name().unwrap(), "report.pdf");
        assert_eq!(second.file_name().unwrap(), "report (1).pdf");
        assert_eq!(std::fs::read(&first).unwrap(), b"one", "kept as it was");
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
    }
}
