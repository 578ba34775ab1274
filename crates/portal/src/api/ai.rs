//! Grounded answers for the portal, AI drafts for staff review, content gaps.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use portico_model::wire::{NewConversation, Page};
use portico_model::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ApiError, AppState, Auth, Json, Path, Query, authorize, shape};
use crate::error::{PortalError, Result};
use crate::knowledge::answer::{self, Cited};
use crate::knowledge::drafts::{self, Approve, ESCALATED_TAG, Edit, Reject};
use crate::knowledge::gaps;
use crate::store::{self, Actor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/answers", post(ask))
        .route("/v1/answers/handoff", post(handoff))
        .route("/v1/drafts", get(list_drafts))
        .route("/v1/drafts/{id}", get(read_draft).patch(edit_draft))
        .route("/v1/drafts/{id}/approve", post(approve_draft))
        .route("/v1/drafts/{id}/reject", post(reject_draft))
        .route("/v1/content-gaps", get(list_gaps))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    question: String,
    product_area: Option<String>,
    /// When the answer is not confident: open a conversation with a person
    /// (default) or just say so.
    #[serde(default = "yes")]
    escalate: bool,
}

fn yes() -> bool {
    true
}

/// What the portal shows for a question.
#[derive(Debug, Serialize)]
struct AnswerBody {
    answer: String,
    sentences: Vec<portico_knowledge::compose::Sentence>,
    citations: Vec<Cited>,
    facts_used: Vec<String>,
    confidence: f32,
    composer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// Things the asker (or their administrator) can do next.
    suggested_actions: Vec<ProposedAction>,
    escalated: bool,
    /// The conversation opened with a person when the answer was not confident.
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<ConversationId>,
}

const MAX_QUESTION: usize = 2_000;

/// A customer's question answered from their plan's approved knowledge and
/// their own account. Not confident: counted as a content gap and, unless
/// `escalate` is false, handed to a person as a new conversation.
async fn ask(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(input): Json<Ask>,
) -> Result<Json<AnswerBody>, ApiError> {
    let question = input.question.trim().to_owned();
    if question.is_empty() {
        return Err(Invalid::new("question", "ask something").into());
    }
    if question.chars().count() > MAX_QUESTION {
        return Err(Invalid::new("question", format!("at most {MAX_QUESTION} characters")).into());
    }
    if input
        .product_area
        .as_ref()
        .is_some_and(|a| a.chars().count() > 100)
    {
        return Err(Invalid::new("product_area", "at most 100 characters").into());
    }
    if input
        .product_area
        .as_ref()
        .is_some_and(|a| a.chars().count() > 100)
    {
        return Err(Invalid::new("product_area", "at most 100 characters").into());
    }
    let area = input.product_area.clone();
    let o = answer::answer(&st, &viewer, &question, area.clone()).await?;
    let mut conversation_id = None;
    if o.escalate && !viewer.is_staff() {
        let v = viewer.clone();
        let q = question.clone();
        let escalate = input.escalate;
        let account = viewer.account_id.expect("customers have an account");
        conversation_id = st
            .write(Actor::from(&viewer), move |w| {
                gaps::record(
                    w,
                    &q,
                    area.as_deref().unwrap_or_default(),
                    v.plan_code.as_deref(),
                )?;
                if !escalate {
                    return Ok(None);
                }
                let subject: String = q.chars().take(120).collect();
                let mut conv = super::conversations::open_in(
                    w,
                    &v,
                    account,
                    NewConversation {
                        account_id: None,
                        channel: Channel::Chat,
                        subject,
                        body: q,
                        product_area: area.unwrap_or_default(),
                    },
                    None,
                )?;
                // Marks it for the drafter: this question is already a gap.
                conv.tags.push(ESCALATED_TAG.into());
                w.update(&mut conv)?;
                Ok(Some(conv.id))
            })
            .await?;
    }
    Ok(Json(AnswerBody {
        answer: o.answer.text,
        sentences: o.answer.sentences,
        citations: o.citations,
        facts_used: o.facts_used,
        confidence: o.confidence,
        composer: o.answer.composer,
        note: o.answer.note,
        suggested_actions: o.actions,
        escalated: o.escalate,
        conversation_id,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftQuery {
    state: Option<DraftState>,
    conversation_id: Option<ConversationId>,
    limit: Option<usize>,
}

/// Drafts, newest first (staff).
async fn list_drafts(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<DraftQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    authorize(&viewer, Action::ReviewDrafts, Kind::Draft, "list")?;
    let limit = match q.limit {
        None => super::DEFAULT_PAGE,
        Some(n) if (1..=super::MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(Invalid::new(
                "limit",
                format!("must be between 1 and {}", super::MAX_PAGE),
            )
            .into());
        }
    };
    let drafts: Vec<Draft> = st
        .read(move |c| {
            store::query(
                c,
                "SELECT data FROM drafts
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR conversation_id = ?2)
                 ORDER BY id DESC LIMIT ?3",
                rusqlite::params![
                    q.state.map(|s| s.as_str()),
                    q.conversation_id.map(|c| c.to_string()),
                    limit as i64
                ],
            )
        })
        .await?;
    let items = drafts.iter().filter_map(|d| redact(&viewer, d)).collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

async fn read_draft(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<DraftId>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    authorize(&viewer, Action::ReviewDrafts, Kind::Draft, id)?;
    let d: Draft = st.read(move |c| store::require(c, id.0)).await?;
    Ok(shape(&viewer, &d)?)
}

async fn edit_draft(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<DraftId>,
    Json(input): Json<Edit>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let v = viewer.clone();
    let d = st
        .write(Actor::from(&viewer), move |w| {
            drafts::edit(w, &v, id, input)
        })
        .await?;
    Ok(shape(&viewer, &d)?)
}

#[derive(Debug, Serialize)]
struct Approved {
    draft: Map<String, Value>,
    message: Map<String, Value>,
}

/// Sends the draft (as edited) and runs the chosen actions, all or nothing.
async fn approve_draft(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<DraftId>,
    Json(input): Json<Approve>,
) -> Result<Json<Approved>, ApiError> {
    let v = viewer.clone();
    let (d, m) = st
        .write(Actor::from(&viewer), move |w| {
            drafts::approve(w, &v, id, input)
        })
        .await?;
    let draft = redact(&viewer, &d).ok_or_else(|| PortalError::not_found(Kind::Draft, d.id))?;
    let message = redact(&viewer, &m).ok_or_else(|| PortalError::not_found(Kind::Message, m.id))?;
    Ok(Json(Approved { draft, message }))
}

async fn reject_draft(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(id): Path<DraftId>,
    Json(input): Json<Reject>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let v = viewer.clone();
    let d = st
        .write(Actor::from(&viewer), move |w| {
            drafts::reject(w, &v, id, input)
        })
        .await?;
    Ok(shape(&viewer, &d)?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GapQuery {
    /// Include gaps an article has since covered.
    #[serde(default)]
    resolved: bool,
}

/// Open content gaps, most asked first (staff).
async fn list_gaps(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(q): Query<GapQuery>,
) -> Result<Json<Page<Map<String, Value>>>, ApiError> {
    authorize(&viewer, Action::ReviewDrafts, Kind::ContentGap, "list")?;
    let gaps: Vec<ContentGap> = st
        .read(move |c| {
            store::query(
                c,
                "SELECT data FROM content_gaps
                 WHERE ?1 OR NOT (data ->> '$.resolved')
                 ORDER BY data ->> '$.count' DESC, id LIMIT 200",
                [q.resolved],
            )
        })
        .await?;
    let items = gaps.iter().filter_map(|g| redact(&viewer, g)).collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Handoff {
    /// The question the customer asked.
    question: String,
    /// The answer the portal showed them.
    #[serde(default)]
    answer: String,
    /// The sources it cited (as `POST /v1/answers` returned them).
    #[serde(default)]
    citations: Vec<HandoffCitation>,
    product_area: Option<String>,
}

/// A cited source as `POST /v1/answers` returned it (its other fields,
/// such as the title, are not taken on trust and are ignored).
#[derive(Debug, Deserialize)]
struct HandoffCitation {
    kind: Kind,
    id: uuid::Uuid,
}

#[derive(Debug, Serialize)]
struct HandedOff {
    conversation_id: ConversationId,
    conversation: Map<String, Value>,
}

/// Tag on conversations a customer handed off from an AI answer.
pub const HANDOFF_TAG: &str = "ai-handoff";

const MAX_HANDOFF_CITATIONS: usize = 20;

/// "Talk to a person" under an AI answer: opens a conversation carrying
/// the question, and a system message with the answer shown and its
/// sources, so the agent starts where the customer is. Same path as an
/// unconfident answer's escalation (`open_in`, a content gap, the tag that
/// keeps the drafter from counting the gap twice).
async fn handoff(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Json(input): Json<Handoff>,
) -> Result<(axum::http::StatusCode, Json<HandedOff>), ApiError> {
    if viewer.is_staff() {
        return Err(PortalError::Forbidden("hand-off is for customers asking for a person").into());
    }
    let question = input.question.trim().to_owned();
    if question.is_empty() {
        return Err(Invalid::new("question", "give the question that was asked").into());
    }
    if question.chars().count() > MAX_QUESTION {
        return Err(Invalid::new("question", format!("at most {MAX_QUESTION} characters")).into());
    }
    if input.answer.chars().count() > 20_000 {
        return Err(Invalid::new("answer", "at most 20000 characters").into());
    }
    if input.citations.len() > MAX_HANDOFF_CITATIONS {
        return Err(Invalid::new("citations", format!("at most {MAX_HANDOFF_CITATIONS}")).into());
    }
    if input
        .product_area
        .as_ref()
        .is_some_and(|a| a.chars().count() > 100)
    {
        return Err(Invalid::new("product_area", "at most 100 characters").into());
    }
    let v = viewer.clone();
    let conv = st
        .write(Actor::from(&viewer), move |w| {
            // Sources are named by what the asker may read, as stored: a
            // made-up or hidden id is refused, a title is never taken on trust.
            let mut sources = Vec::new();
            for (i, c) in input.citations.iter().enumerate() {
                let shaped = crate::knowledge::index::shaped(w, &v, c.kind, c.id)?;
                let Some(title) = shaped
                    .as_ref()
                    .and_then(|m| m.get("title"))
                    .and_then(Value::as_str)
                else {
                    return Err(Invalid::new(
                        format!("citations[{i}]"),
                        "is not an article, release note or community post you can read",
                    )
                    .into());
                };
                sources.push(format!(
                    "[{}] {} ({} {})",
                    i + 1,
                    title,
                    c.kind.as_str(),
                    c.id
                ));
            }
            let area = input.product_area.clone().unwrap_or_default();
            gaps::record(w, &question, &area, v.plan_code.as_deref())?;
            let account = v.account_id.expect("customers have an account");
            let mut conv = super::conversations::open_in(
                w,
                &v,
                account,
                NewConversation {
                    account_id: None,
                    channel: Channel::Chat,
                    subject: question.chars().take(120).collect(),
                    body: question.clone(),
                    product_area: area,
                },
                None,
            )?;
            let mut context =
                String::from("The customer asked for a person after this AI answer.\n\n");
            if input.answer.trim().is_empty() {
                context.push_str("Answer shown: (none)\n");
            } else {
                context.push_str(&format!("Answer shown:\n{}\n", input.answer.trim()));
            }
            if !sources.is_empty() {
                context.push_str(&format!("\nSources:\n{}\n", sources.join("\n")));
            }
            let mut note = Message {
                id: w.new_id(),
                conversation_id: conv.id,
                account_id: account,
                kind: MessageKind::System,
                author_id: None,
                author_name: "Portico AI".into(),
                body: context,
                mentions: vec![],
                email: None,
                delivery: None,
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            };
            w.insert(&mut note)?;
            conv.message_count += 1;
            conv.tags.push(ESCALATED_TAG.into());
            conv.tags.push(HANDOFF_TAG.into());
            w.update(&mut conv)?;
            w.audit(
                "answer.handed_off",
                &conv,
                serde_json::json!({ "citations": input.citations.len() }),
            )?;
            Ok(conv)
        })
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(HandedOff {
            conversation_id: conv.id,
            conversation: shape(&viewer, &conv)?.0,
        }),
    ))
}
