//! Content gaps: questions the AI could not answer with confidence,
//! grouped by their analysed words ("How do I export to Excel?" and
//! "exporting to excel" are one gap), counted, with a few wordings kept.

use portico_knowledge::text;
use portico_model::*;

use crate::error::Result;
use crate::store::{self, Writer};

const MAX_EXAMPLES: usize = 5;

/// The grouping key: distinct analysed words, sorted. `None` for a question
/// with no words worth keeping.
pub fn key(question: &str) -> Option<String> {
    let mut words = text::terms(question);
    words.sort();
    words.dedup();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Counts one more asking of `question` (inside the caller's transaction).
pub fn record(
    w: &mut Writer<'_>,
    question: &str,
    product_area: &str,
    plan: Option<&str>,
) -> Result<Option<ContentGap>> {
    let question = question.trim();
    let Some(key) = key(question) else {
        return Ok(None);
    };
    let question: String = question.chars().take(2_000).collect();
    let existing: Option<ContentGap> = store::query(
        w,
        "SELECT data FROM content_gaps WHERE key = ?1",
        [key.as_str()],
    )?
    .pop();
    let gap = match existing {
        Some(mut g) => {
            g.count += 1;
            g.last_asked_at = w.at();
            g.resolved = false;
            if !g.examples.contains(&question) && g.examples.len() < MAX_EXAMPLES {
                g.examples.push(question);
            }
            if let Some(p) = plan
                && !g.plans.iter().any(|x| x == p)
            {
                g.plans.push(p.to_owned());
            }
            w.update(&mut g)?;
            g
        }
        None => {
            let mut g = ContentGap {
                id: w.new_id(),
                question: question.clone(),
                key,
                examples: vec![question],
                count: 1,
                product_area: product_area.to_owned(),
                plans: plan.map(|p| vec![p.to_owned()]).unwrap_or_default(),
                last_asked_at: w.at(),
                resolved: false,
                version: 0,
                created_at: w.at(),
                updated_at: w.at(),
            };
            w.insert(&mut g)?;
            g
        }
    };
    Ok(Some(gap))
}
