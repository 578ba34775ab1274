//! Field validation shared by records and wire inputs.

use serde::Serialize;

/// A value that breaks a rule: which field, and what to do about it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub fn check_nonempty(field: &str, value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    Ok(())
}

/// Limits length in characters (not bytes), so non-Latin text is not penalised.
pub fn check_len(field: &str, value: &str, max_chars: usize) -> Result<(), Invalid> {
    if value.chars().count() > max_chars {
        return Err(Invalid::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(())
}

/// A pragmatic address check: one `@`, a non-empty local part, a dotted domain,
/// no spaces. Delivery is the real test; this catches typos early.
/// A BCP 47 language tag as people use them: a 2–3 letter language and
/// optional subtags (`en`, `fr`, `pt-BR`, `zh-Hant`).
pub fn check_locale(field: &str, value: &str) -> Result<(), Invalid> {
    let bad = || Invalid::new(field, "must be a language tag like en, fr or pt-BR");
    let mut parts = value.split('-');
    let lang = parts.next().unwrap_or("");
    if value.len() > 35
        || !(2..=3).contains(&lang.len())
        || !lang.chars().all(|c| c.is_ascii_lowercase())
    {
        return Err(bad());
    }
    for p in parts {
        if !(2..=8).contains(&p.len()) || !p.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
    }
    Ok(())
}

pub fn check_email(field: &str, value: &str) -> Result<(), Invalid> {
    let bad = || Invalid::new(field, "must be an email address like name@example.com");
    check_len(field, value, 254)?;
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || value.chars().any(char::is_whitespace)
    {
        return Err(bad());
    }
    Ok(())
}

/// Tags are short lowercase labels: `[a-z0-9_-]`, 1–40 characters, at most 20.
pub fn check_tags(tags: &[String]) -> Result<(), Invalid> {
    if tags.len() > 20 {
        return Err(Invalid::new("tags", "at most 20 tags"));
    }
    for t in tags {
        check_tag(t)?;
    }
    Ok(())
}

pub fn check_tag(tag: &str) -> Result<(), Invalid> {
    let ok = !tag.is_empty()
        && tag.len() <= 40
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(Invalid::new(
            "tags",
            format!("tag {tag:?} must be 1-40 characters of a-z, 0-9, '-' or '_'"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(check_email("email", "ana@example.com").is_ok());
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(
                check_email("email", bad).is_err(),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn length_counts_characters() {
        assert!(
            check_len("t", "ééé", 3).is_ok(),
            "three characters fit a limit of three"
        );
        assert!(check_len("t", "éééé", 3).is_err());
    }
}
