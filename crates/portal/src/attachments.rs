//! Files customers attach to requests: limits, the type allowlist, magic
//! byte sniffing, storage and download headers.
//!
//! A file is accepted only when its declared `Content-Type`, its name's
//! extension and its first bytes all say the same allowed type: a script
//! renamed `.png`, or a PNG sent as `text/plain`, is refused. Bytes are kept
//! in SQLite under a random (v4) id, never under a web root, and served
//! only as downloads.

use portico_model::*;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{PortalError, Result};
use crate::store::Writer;

pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_PER_REQUEST: usize = 20;
const MAX_NAME_CHARS: usize = 200;

/// An allowed type: its MIME type and the extensions that may carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    pub mime: &'static str,
    extensions: &'static [&'static str],
    magic: Magic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    Prefix(&'static [u8]),
    AnyPrefix(&'static [&'static [u8]]),
    Webp,
    /// UTF-8 text with no NUL bytes (text has no magic number).
    Text,
}

pub const ALLOWED: &[FileType] = &[
    FileType {
        mime: "image/png",
        extensions: &["png"],
        magic: Magic::Prefix(b"\x89PNG\r\n\x1a\n"),
    },
    FileType {
        mime: "image/jpeg",
        extensions: &["jpg", "jpeg"],
        magic: Magic::Prefix(b"\xff\xd8\xff"),
    },
    FileType {
        mime: "image/gif",
        extensions: &["gif"],
        magic: Magic::AnyPrefix(&[b"GIF87a", b"GIF89a"]),
    },
    FileType {
        mime: "image/webp",
        extensions: &["webp"],
        magic: Magic::Webp,
    },
    FileType {
        mime: "application/pdf",
        extensions: &["pdf"],
        magic: Magic::Prefix(b"%PDF-"),
    },
    FileType {
        mime: "text/plain",
        extensions: &["txt", "log"],
        magic: Magic::Text,
    },
    FileType {
        mime: "text/csv",
        extensions: &["csv"],
        magic: Magic::Text,
    },
    FileType {
        mime: "application/zip",
        extensions: &["zip"],
        magic: Magic::AnyPrefix(&[b"PK\x03\x04", b"PK\x05\x06"]),
    },
];

pub fn too_large() -> PortalError {
    PortalError::Refused {
        status: 413,
        code: "attachment_too_large",
        message: format!(
            "attachments are at most {} MiB; compress the file or share a link to it",
            MAX_ATTACHMENT_BYTES / (1024 * 1024)
        ),
    }
}

fn not_allowed(what: &str) -> PortalError {
    PortalError::Refused {
        status: 415,
        code: "attachment_type_not_allowed",
        message: format!(
            "{what} is not accepted; attach PNG, JPEG, GIF, WebP, PDF, TXT, CSV, LOG or ZIP files"
        ),
    }
}

fn mismatch(message: String) -> PortalError {
    PortalError::Refused {
        status: 422,
        code: "attachment_content_mismatch",
        message,
    }
}

/// Checks the name and that the declared type is allowed and agrees with
/// the name's extension (before any byte is read).
pub fn allowed_type(content_type: &str, name: &str) -> Result<FileType> {
    check_name(name)?;
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mime = match mime.as_str() {
        "application/x-zip-compressed" => "application/zip".to_owned(),
        "image/jpg" => "image/jpeg".to_owned(),
        _ => mime,
    };
    let Some(t) = ALLOWED.iter().find(|t| t.mime == mime) else {
        return Err(not_allowed(&if mime.is_empty() {
            "a file without Content-Type".to_owned()
        } else {
            format!("Content-Type {mime}")
        }));
    };
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !ALLOWED.iter().any(|t| t.extensions.contains(&ext.as_str())) {
        return Err(not_allowed(&format!("a .{ext} file")));
    }
    if !t.extensions.contains(&ext.as_str()) {
        return Err(mismatch(format!(
            "the name ends in .{ext} but Content-Type says {}; send the file's real type",
            t.mime
        )));
    }
    Ok(*t)
}

fn check_name(name: &str) -> Result<()> {
    let bad = |why: &str| -> PortalError { Invalid::new("name", why.to_owned()).into() };
    if name.trim().is_empty() {
        return Err(bad("give the file name as ?name="));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(bad("a file name is at most 200 characters"));
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) || name.starts_with('.') {
        return Err(bad(
            "a file name has no path separators, control characters or leading dot",
        ));
    }
    Ok(())
}

/// A file that passed every check, ready to store.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    pub name: String,
    pub mime: &'static str,
}

/// Checks the bytes: not empty, and their magic number is the declared type's.
pub fn check(name: &str, t: FileType, bytes: &[u8]) -> Result<CheckedFile> {
    if bytes.is_empty() {
        return Err(Invalid::new("body", "the file is empty").into());
    }
    let ok = match t.magic {
        Magic::Prefix(p) => bytes.starts_with(p),
        Magic::AnyPrefix(ps) => ps.iter().any(|p| bytes.starts_with(p)),
        Magic::Webp => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        Magic::Text => !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok(),
    };
    if !ok {
        return Err(mismatch(format!(
            "the file's content is not {} (its first bytes say otherwise); send the file's real type",
            t.mime
        )));
    }
    Ok(CheckedFile {
        name: name.to_owned(),
        mime: t.mime,
    })
}

/// Stores the bytes under a random id inside the caller's transaction.
pub fn store(
    w: &mut Writer<'_>,
    request: &Request,
    author: &User,
    file: CheckedFile,
    bytes: &[u8],
) -> Result<AttachmentRef> {
    let id = uuid::Uuid::new_v4();
    let sha = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    w.execute(
        "INSERT INTO request_attachments (id, request_id, account_id, name, content_type, size, sha256, uploaded_by, uploaded_at, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            id.to_string(),
            request.id.to_string(),
            request.account_id.to_string(),
            file.name,
            file.mime,
            bytes.len() as i64,
            sha,
            author.id.to_string(),
            w.at().to_string(),
            bytes
        ],
    )?;
    Ok(AttachmentRef {
        id,
        name: file.name,
        content_type: file.mime.to_owned(),
        size: bytes.len() as u64,
        uploaded_by_name: author.name.clone(),
        uploaded_at: w.at(),
    })
}

/// An attachment of `request` with its bytes; another request's id is not found.
pub fn load(
    c: &Connection,
    request: RequestId,
    id: uuid::Uuid,
) -> Result<(AttachmentRef, Vec<u8>)> {
    let row = c
        .query_row(
            "SELECT name, content_type, size, uploaded_at, bytes FROM request_attachments WHERE id = ?1 AND request_id = ?2",
            params![id.to_string(), request.to_string()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((name, content_type, size, at, bytes)) = row else {
        return Err(PortalError::NotFound {
            kind: "attachment",
            id: id.to_string(),
        });
    };
    Ok((
        AttachmentRef {
            id,
            name,
            content_type,
            size: size as u64,
            uploaded_by_name: String::new(),
            uploaded_at: at.parse().unwrap_or_default(),
        },
        bytes,
    ))
}

/// `attachment` with an ASCII fallback name and the exact name in
/// RFC 5987 form, so no quote or non-ASCII character breaks the header.
pub fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_name_and_bytes_must_agree() {
        let png = allowed_type("image/png", "shot.png").unwrap();
        assert!(check("shot.png", png, b"\x89PNG\r\n\x1a\nrest").is_ok());
        assert!(
            check("shot.png", png, b"<script>alert(1)</script>").is_err(),
            "a script named .png is refused by its bytes"
        );
        assert!(allowed_type("text/html", "x.html").is_err());
        assert!(allowed_type("image/png", "x.exe").is_err());
        assert!(
            allowed_type("text/plain", "shot.png").is_err(),
            "extension and type disagree"
        );
        let txt = allowed_type("text/plain; charset=utf-8", "server.log").unwrap();
        assert!(check("server.log", txt, b"line 1\nline 2").is_ok());
        assert!(check("server.log", txt, b"\x00\x01binary").is_err());
        assert!(allowed_type("image/png", "../etc/passwd.png").is_err());
    }

    #[test]
    fn disposition_survives_hostile_names() {
        let d = disposition("a\"b;c é.pdf");
        assert!(d.starts_with("attachment; filename=\"a_b_c _.pdf\""), "{d}");
        assert!(d.contains("filename*=UTF-8''a%22b%3Bc%20%C3%A9.pdf"), "{d}");
    }
}
