//! Resolution into knowledge: a resolved conversation becomes a draft
//! article, or a proposed revision of an existing article shown as a diff,
//! entering the editorial workflow (draft → in review → approved).
//!
//! Only what the customer could read goes in: customer and agent messages,
//! never internal notes or system lines, and email addresses are masked.
//! Approving a revision copies it onto the article it revises (see
//! `api::knowledge`).

use portico_model::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{PortalError, Result};
use crate::store::{self, Writer};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// Propose an edit of this article instead of a new one.
    pub article_id: Option<ArticleId>,
    /// Title of a new article; defaults to the conversation's subject.
    pub title: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub article: Map<String, Value>,
    /// For a revision: unified diff of the published body and the proposal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// Unified diff between an article's body and a revision's.
pub fn diff(original: &str, proposed: &str) -> String {
    similar::TextDiff::from_lines(original, proposed)
        .unified_diff()
        .context_radius(2)
        .header("published", "proposed")
        .to_string()
}

fn mask_emails(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            if w.contains('@') && w.contains('.') {
                "[email]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(60).collect()
}

pub fn resolve(
    w: &mut Writer<'_>,
    staff: &Viewer,
    conversation: ConversationId,
    input: Resolve,
) -> Result<(Article, Option<String>)> {
    crate::api::authorize(
        staff,
        Action::WriteKnowledge,
        Kind::Conversation,
        conversation,
    )?;
    let conv: Conversation = store::require(w, conversation.0)?;
    if conv.status != ConversationStatus::Resolved {
        return Err(PortalError::Conflict(
            "resolve the conversation first; knowledge is drafted from resolved conversations"
                .into(),
        ));
    }
    let messages: Vec<Message> = store::query(
        w,
        "SELECT data FROM messages WHERE account_id = ?1 AND data ->> '$.conversation_id' = ?2 ORDER BY id",
        [conv.account_id.to_string(), conv.id.to_string()],
    )?;
    let question: Vec<String> = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Customer)
        .map(|m| mask_emails(&m.body))
        .take(1)
        .collect();
    let answers: Vec<String> = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Agent)
        .map(|m| mask_emails(&m.body))
        .collect();
    if answers.is_empty() {
        return Err(PortalError::Conflict(
            "the conversation has no agent reply to turn into knowledge".into(),
        ));
    }
    let answer = answers.join("\n\n");
    let short = &w.new_id::<uuid::Uuid>().simple().to_string()[24..];
    let mut article = match input.article_id {
        None => {
            let title = input.title.unwrap_or_else(|| conv.subject.clone());
            let summary = portico_knowledge::text::sentences(&answer)
                .into_iter()
                .next()
                .unwrap_or_default();
            let body = match question.first() {
                Some(q) => format!("Question: {q}\n\n{answer}"),
                None => answer.clone(),
            };
            Article {
                id: w.new_id(),
                slug: format!("{}-{short}", slugify(&title)),
                title,
                summary,
                body,
                product_area: conv.product_area.clone(),
                plans: vec![],
                versions: vec![],
                locale: "en".into(),
                audience: Audience::Customers,
                state: ArticleState::Draft,
                author_id: Some(staff.user_id),
                revises: None,
                from_conversation_id: Some(conv.id),
                translation_of: None,
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            }
        }
        Some(id) => {
            let original: Article = store::require(w, id.0)?;
            if original.revises.is_some() {
                return Err(Invalid::new(
                    "article_id",
                    "name the published article, not a revision",
                )
                .into());
            }
            Article {
                id: w.new_id(),
                slug: format!("{}-rev-{short}", original.slug),
                body: format!("{}\n\n{answer}", original.body.trim_end()),
                state: ArticleState::Draft,
                author_id: Some(staff.user_id),
                revises: Some(original.id),
                from_conversation_id: Some(conv.id),
                translation_of: None,
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
                ..original
            }
        }
    };
    w.insert(&mut article)?;
    let diff_text = match article.revises {
        Some(orig) => {
            let original: Article = store::require(w, orig.0)?;
            Some(diff(&original.body, &article.body))
        }
        None => None,
    };
    w.audit(
        "article.drafted_from_conversation",
        &article,
        json!({ "conversation_id": conv.id, "revises": article.revises }),
    )?;
    // The question this answers is no longer a gap.
    if let Some(key) = question.first().and_then(|q| super::gaps::key(q)) {
        let gaps: Vec<ContentGap> = store::query(
            w,
            "SELECT data FROM content_gaps WHERE key = ?1",
            [key.as_str()],
        )?;
        for mut g in gaps {
            g.resolved = true;
            w.update(&mut g)?;
        }
    }
    Ok((article, diff_text))
}
