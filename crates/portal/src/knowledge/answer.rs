//! One grounded answer: retrieve approved knowledge the asker may read, add
//! the asker's account facts, compose, judge confidence, propose actions.

use portico_knowledge::compose::{self, Answer, Grounding, Source};
use portico_knowledge::{Mode, text};
use portico_model::*;
use serde::Serialize;

use super::Knowledge;
use super::facts::{self, AccountPicture};
use super::index::{self, SearchParams};
use crate::error::Result;
use crate::store::Store;

/// Passages handed to the composer at most.
const MAX_SOURCES: usize = 4;
/// A passage less similar than this to the question is not handed over
/// unless it also matched the question's words.
const SOURCE_FLOOR: f32 = 0.30;
/// Below this an answer is escalated to a person and counted as a gap.
/// Chosen on the evaluation set (`tests/eval/knowledge.json`, see
/// `docs/knowledge.md`).
pub const CONFIDENT_AT: f32 = 0.45;

/// A cited passage as the reader sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Cited {
    pub n: usize,
    pub kind: Kind,
    pub id: uuid::Uuid,
    pub title: String,
}

/// Everything an answer produced.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub answer: Answer,
    /// The passages the answer cites (a subset of those it was given).
    pub citations: Vec<Cited>,
    /// Keys of the account facts the answer quotes.
    pub facts_used: Vec<String>,
    /// 0.0–1.0.
    pub confidence: f32,
    pub escalate: bool,
    pub actions: Vec<ProposedAction>,
    /// What the composer was given (for tests and the evaluation; not sent
    /// to customers).
    #[serde(skip)]
    pub grounding: Grounding,
}

/// Answers `question` for `asker` (blocking: retrieval embeds the question).
/// For a staff asker drafting for a customer, pass the *customer's* viewer.
pub fn ground(
    store: &Store,
    k: &Knowledge,
    asker: &Viewer,
    question: &str,
    product_area: Option<String>,
) -> Result<(Grounding, AccountPicture)> {
    let params = SearchParams {
        q: question.chars().take(index::MAX_QUERY_CHARS).collect(),
        product_area,
        // The AI speaks only from approved knowledge, whoever asks.
        state: Some(ArticleState::Approved),
        mode: Mode::Hybrid,
        limit: Some(MAX_SOURCES * 2),
        ..SearchParams::default()
    };
    let hits = match index::search(store, k, asker, &params) {
        Ok(h) => h,
        // A question with no searchable words has no passages.
        Err(crate::error::PortalError::Invalid(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut sources = Vec::new();
    for h in hits {
        if sources.len() == MAX_SOURCES {
            break;
        }
        let similar = h.similarity.unwrap_or(0.0);
        if similar < SOURCE_FLOOR && h.lexical_rank.is_none() {
            continue;
        }
        // Text from the redacted record only.
        let field = |name: &str| {
            h.record
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let title = field("title");
        let body = [field("summary"), field("body")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        sources.push(Source {
            n: sources.len() + 1,
            id: h.id,
            kind: h.kind.as_str().into(),
            title,
            text: body,
            similarity: h.similarity,
        });
    }
    let picture = store.read(|c| facts::account_picture(c, asker))?;
    let grounding = Grounding {
        question: question.to_owned(),
        sources,
        facts: picture.facts.clone(),
    };
    Ok((grounding, picture))
}

/// Composes and judges an answer from a grounding.
pub async fn compose(
    k: &Knowledge,
    asker: &Viewer,
    grounding: Grounding,
    picture: &AccountPicture,
) -> Outcome {
    let composer = k.composer();
    let answer = composer.compose(&grounding).await;
    let confidence = compose::confidence(&grounding, &answer);
    let citations = answer
        .cited_sources()
        .into_iter()
        .filter_map(|n| grounding.sources.iter().find(|s| s.n == n))
        .map(|s| Cited {
            n: s.n,
            kind: Kind::parse(&s.kind).unwrap_or(Kind::Article),
            id: s.id,
            title: s.title.clone(),
        })
        .collect();
    let facts_used = answer
        .cited_facts()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let escalate = confidence < CONFIDENT_AT;
    let actions = propose(asker, &grounding.question, picture, escalate);
    Outcome {
        answer,
        citations,
        facts_used,
        confidence,
        escalate,
        actions,
        grounding,
    }
}

/// Retrieval, facts and composition in one call.
pub async fn answer(
    st: &crate::AppState,
    asker: &Viewer,
    question: &str,
    product_area: Option<String>,
) -> Result<Outcome> {
    let (store, k, v, q) = (
        st.store.clone(),
        st.knowledge.clone(),
        asker.clone(),
        question.to_owned(),
    );
    let (grounding, picture) =
        tokio::task::spawn_blocking(move || ground(&store, &k, &v, &q, product_area))
            .await
            .map_err(|_| crate::error::PortalError::Unavailable)??;
    Ok(compose(&st.knowledge, asker, grounding, &picture).await)
}

fn mentions(question: &[String], words: &[&str]) -> bool {
    words
        .iter()
        .flat_map(|w| text::terms(w))
        .any(|t| question.contains(&t))
}

/// Actions a person could take for the customer, from the question and the
/// account's numbers. Pure; nothing runs until a person approves.
pub fn propose(
    asker: &Viewer,
    question: &str,
    pic: &AccountPicture,
    escalate: bool,
) -> Vec<ProposedAction> {
    let q = text::terms(question);
    if asker.is_staff() {
        return Vec::new();
    }
    let mut out: Vec<ProposedAction> = Vec::new();
    let push = |out: &mut Vec<ProposedAction>, action: ActionProposal, reason: String| {
        out.push(ProposedAction {
            action,
            reason,
            status: ActionStatus::Proposed,
            result: None,
        })
    };
    if let Some((seats, held, max)) = pic.seats
        && mentions(
            &q,
            &["seat", "licence", "license", "invite", "hire", "user"],
        )
        && held >= seats
        && seats < max
    {
        push(
            &mut out,
            ActionProposal::AddSeats { seats: seats + 1 },
            format!("all {seats} seats are in use"),
        );
    }
    for (feature, plan) in &pic.missing {
        let (label, words) = facts::feature_words(feature);
        if mentions(&q, words) {
            push(
                &mut out,
                ActionProposal::ChangePlan {
                    plan_id: plan.id,
                    plan_code: plan.code.clone(),
                },
                format!("{label} needs the {} plan", plan.name),
            );
        }
    }
    if mentions(&q, &["usage", "limit", "quota", "throttle", "api"])
        && let Some((_, name, pct)) = pic.usage.first()
        && *pct >= 80
        && let Some(plan) = &pic.plan
    {
        push(
            &mut out,
            ActionProposal::OpenRequest {
                kind: RequestKind::Support,
                title: format!("{name} at {pct}% of the {} plan's limit", plan.name),
            },
            "usage is close to the limit: a CSM can review options".into(),
        );
    }
    for feature in &pic.unused {
        let (label, words) = facts::feature_words(feature);
        if mentions(&q, words) || mentions(&q, &["include", "feature", "plan"]) {
            push(
                &mut out,
                ActionProposal::PointToEntitlement {
                    feature: feature.clone(),
                },
                format!("{label} is included and not set up yet"),
            );
        }
    }
    if escalate && out.is_empty() {
        push(
            &mut out,
            ActionProposal::OpenRequest {
                kind: RequestKind::Support,
                title: question.chars().take(200).collect(),
            },
            "the knowledge base did not answer this".into(),
        );
    }
    out
}
