//! Offline full-text search over the mirror: conversations (subject, tags),
//! messages (body), accounts (name, domain) and articles (title, summary,
//! body), with the inbox's filters, bm25 ranking, prefix matching of the word
//! being typed, and highlighted snippets.
//!
//! The index is SQLite FTS5, kept in step with `records` by the triggers of
//! `migrations/inbox/0002_search.sql`, so whatever [`Mirror::apply`] wrote is
//! what a search finds, in the same transaction. Filter values are tokens in
//! each row's `tags` column, so a filter narrows the match itself instead of
//! joining after it (the slow path measured in `docs/decisions.md`, "Offline
//! search").
//!
//! Each kind is searched on its own (its rows live in a rowid range), newest
//! first: at most [`WINDOW`] of the newest matching rows of a kind are ranked,
//! which bounds the cost of a word that is in half the mailbox. The kinds'
//! best hits are merged by score (same expression, same corpus statistics, so
//! scores compare) and messages fold into their conversation.

use std::collections::HashSet;

use portico_model::{AccountId, ConversationId, ConversationStatus, TeamId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::mirror::{Mirror, MirrorError};

/// Most rows of one kind ranked per search: the newest matching ones. A word
/// found in more rows than this is ranked among its newest occurrences, which
/// keeps a common word as fast as a rare one.
pub const WINDOW: i64 = 2_000;

/// Most hits a search returns, whatever the query asks.
pub const MAX_LIMIT: usize = 200;

/// Marks around matched words in the raw FTS5 snippet, split into
/// [`Fragment`]s before the caller sees them (control characters, which the
/// mirrored text does not contain in practice and which are never shown).
const OPEN: char = '\u{2}';
const CLOSE: char = '\u{3}';

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HitKind {
    Account,
    Conversation,
    /// A message; its conversation is in [`Hit::conversation_id`].
    Message,
    Article,
}

impl HitKind {
    pub const ALL: [HitKind; 4] = [
        HitKind::Account,
        HitKind::Conversation,
        HitKind::Message,
        HitKind::Article,
    ];

    /// The record kind (and `search_kinds` row) behind it.
    pub fn as_str(self) -> &'static str {
        match self {
            HitKind::Account => "account",
            HitKind::Conversation => "conversation",
            HitKind::Message => "message",
            HitKind::Article => "article",
        }
    }

    /// Can a record of this kind satisfy the filters? Status, assignee and
    /// team belong to conversations (and their messages); product area also
    /// to articles; plan to everything.
    fn admits(self, f: &SearchFilters) -> bool {
        let conversational = matches!(self, HitKind::Conversation | HitKind::Message);
        let conversation_only =
            !f.status.is_empty() || !f.assignee.is_empty() || !f.team.is_empty();
        (conversational || !conversation_only)
            && (self != HitKind::Account || f.product_area.is_empty())
    }
}

/// Narrowing of a search; an empty list means "any". Values within a list
/// are alternatives (OR); lists combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilters {
    pub status: Vec<ConversationStatus>,
    /// `None` in the list means "unassigned".
    pub assignee: Vec<Option<UserId>>,
    pub team: Vec<TeamId>,
    /// Plan codes, e.g. `business`. An article for every plan (no plans
    /// listed) matches any plan.
    pub plan: Vec<String>,
    pub product_area: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// What the person typed. Words are matched whole (stemmed: "invoices"
    /// finds "invoice"), the last one also as a prefix unless the text ends
    /// in a space, so results appear while typing. Quotes, operators and
    /// brackets are plain text here, never FTS5 syntax.
    pub text: String,
    /// Kinds to search; empty means all.
    pub kinds: Vec<HitKind>,
    pub filters: SearchFilters,
    /// Hits wanted (capped at [`MAX_LIMIT`]).
    pub limit: usize,
}

impl SearchQuery {
    /// All kinds, no filters, 20 hits.
    pub fn new(text: impl Into<String>) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            kinds: Vec::new(),
            filters: SearchFilters::default(),
            limit: 20,
        }
    }
}

/// A piece of a snippet; `matched` pieces are the words that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub text: String,
    pub matched: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub kind: HitKind,
    /// The matching record.
    pub id: uuid::Uuid,
    /// For conversation and message hits: the conversation to open.
    pub conversation_id: Option<ConversationId>,
    pub account_id: Option<AccountId>,
    /// What to show as the hit's heading: subject, account name, article title.
    pub title: String,
    /// The best passage of the matching text, matched words marked.
    pub snippet: Vec<Fragment>,
    /// Higher is better (negated bm25); comparable within one search only.
    pub score: f64,
}

/// Searches the mirror. A query with no words (or only punctuation) finds
/// nothing; it never fails on what the person typed.
pub fn search(mirror: &Mirror, q: &SearchQuery) -> Result<Vec<Hit>, MirrorError> {
    let Some(words) = match_words(&q.text) else {
        return Ok(Vec::new());
    };
    let limit = q.limit.clamp(1, MAX_LIMIT);
    let conn = mirror.conn();
    let kinds: Vec<HitKind> = HitKind::ALL
        .into_iter()
        .filter(|k| q.kinds.is_empty() || q.kinds.contains(k))
        .filter(|k| k.admits(&q.filters))
        .collect();
    let plan_codes = &q.filters.plan;

    let mut ranked: Vec<Ranked> = Vec::new();
    for kind in kinds {
        let expr = match_expr(&words, kind, &q.filters, plan_codes);
        // Messages fold into conversations: fetch more so folding still
        // leaves `limit` distinct conversations when it can.
        let want = if kind == HitKind::Message {
            limit * 3
        } else {
            limit
        };
        ranked.extend(rank_kind(conn, kind, &expr, want)?);
    }
    ranked.sort_by(|a, b| a.rank.total_cmp(&b.rank).then(a.docid.cmp(&b.docid)));

    let mut hits = Vec::with_capacity(limit);
    let mut seen_conversations: HashSet<ConversationId> = HashSet::new();
    for r in ranked {
        if hits.len() == limit {
            break;
        }
        let Some(hit) = describe(conn, &r)? else {
            continue;
        };
        if let Some(c) = hit.conversation_id
            && !seen_conversations.insert(c)
        {
            continue;
        }
        hits.push(hit);
    }
    Ok(hits)
}

/// Stops indexing changes as they are written, for a bulk load (bootstrap,
/// resync): the mirror then takes rows at close to raw insert speed, and
/// [`rebuild_index`] indexes everything at once, several times cheaper than
/// row by row (figures in `docs/benchmarks.md`). Lists are unaffected;
/// searches answer from the index as it was until the rebuild. Survives a
/// restart, so an interrupted load still ends in a rebuild.
pub fn suspend_indexing(mirror: &Mirror) -> Result<(), MirrorError> {
    suspend_indexing_in(mirror.conn())
}

/// [`suspend_indexing`] inside the caller's transaction.
pub(crate) fn suspend_indexing_in(conn: &Connection) -> Result<(), MirrorError> {
    conn.execute("UPDATE search_state SET live = 0", [])?;
    Ok(())
}

/// Whether changes are being indexed as they are written (`false` between
/// [`suspend_indexing`] and [`rebuild_index`]: search results may be stale).
pub fn indexing_live(mirror: &Mirror) -> Result<bool, MirrorError> {
    Ok(mirror
        .conn()
        .query_row("SELECT live FROM search_state", [], |r| r.get(0))?)
}

/// Re-creates the whole search index from the mirrored records in one
/// transaction, newest last within each kind (so "newest first" is creation
/// order), and resumes indexing changes as they are written. Returns the
/// number of rows indexed.
pub fn rebuild_index(mirror: &Mirror) -> Result<u64, MirrorError> {
    let tx = mirror.conn().unchecked_transaction()?;
    let n = rebuild_index_in(&tx)?;
    tx.commit()?;
    Ok(n)
}

/// [`rebuild_index`] inside the caller's transaction.
pub(crate) fn rebuild_index_in(conn: &Connection) -> Result<u64, MirrorError> {
    conn.execute_batch(
        "DELETE FROM search_fts;
         DELETE FROM search_docs;
         INSERT INTO search_docs (docid, kind, id)
             SELECT k.base + row_number() OVER (PARTITION BY r.kind ORDER BY r.id), r.kind, r.id
               FROM records r JOIN search_kinds k ON k.kind = r.kind;
         INSERT INTO search_fts (rowid, title, body, tags)
             SELECT docid, title, body, tags FROM search_source;
         UPDATE search_state SET live = 1;",
    )?;
    Ok(conn.query_row("SELECT count(*) FROM search_docs", [], |r| r.get(0))?)
}

/// One ranked FTS row before it is described.
struct Ranked {
    kind: HitKind,
    docid: i64,
    rank: f64,
    snippet: String,
}

/// The newest [`WINDOW`] matches of one kind, best `want` by bm25.
fn rank_kind(
    conn: &Connection,
    kind: HitKind,
    expr: &str,
    want: usize,
) -> Result<Vec<Ranked>, MirrorError> {
    let base: i64 = conn
        .prepare_cached("SELECT base FROM search_kinds WHERE kind = ?1")?
        .query_row([kind.as_str()], |r| r.get(0))?;
    let end = base + (1_i64 << 40);
    // The WINDOW-th newest match bounds the ranked range; with fewer
    // matches, all of them are ranked.
    let floor: i64 = conn
        .prepare_cached(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH ?1 AND rowid > ?2 AND rowid < ?3
             ORDER BY rowid DESC LIMIT 1 OFFSET ?4",
        )?
        .query_row(params![expr, base, end, WINDOW - 1], |r| r.get(0))
        .optional()?
        .unwrap_or(base + 1);
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, rank, snippet(search_fts, -1, char(2), char(3), '…', 16)
           FROM search_fts WHERE search_fts MATCH ?1 AND rowid >= ?2 AND rowid < ?3
          ORDER BY rank LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![expr, floor, end, want as i64], |r| {
        Ok(Ranked {
            kind,
            docid: r.get(0)?,
            rank: r.get(1)?,
            snippet: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Turns a ranked row into a hit with its heading; `None` if the record went
/// away in between (cannot happen inside one read, but costs nothing).
fn describe(conn: &Connection, r: &Ranked) -> Result<Option<Hit>, MirrorError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, r.account_id,
                CASE d.kind
                    WHEN 'account' THEN r.data ->> '$.name'
                    WHEN 'article' THEN r.data ->> '$.title'
                    WHEN 'conversation' THEN r.data ->> '$.subject'
                    ELSE (SELECT c.data ->> '$.subject' FROM records c
                           WHERE c.kind = 'conversation' AND c.id = r.conversation_id)
                END,
                CASE d.kind WHEN 'conversation' THEN r.id WHEN 'message' THEN r.conversation_id END
           FROM search_docs d JOIN records r ON r.kind = d.kind AND r.id = d.id
          WHERE d.docid = ?1",
    )?;
    let row = stmt
        .query_row([r.docid], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })
        .optional()?;
    let Some((id, account, title, conversation)) = row else {
        return Ok(None);
    };
    let corrupt = || MirrorError::Corrupt(r.kind.as_str());
    let id: uuid::Uuid = id.parse().map_err(|_| corrupt())?;
    let account_id = match (r.kind, account) {
        (HitKind::Account, _) => Some(AccountId(id)),
        (_, Some(a)) => Some(a.parse().map_err(|_| corrupt())?),
        (_, None) => None,
    };
    let conversation_id = conversation
        .map(|c| c.parse().map_err(|_| corrupt()))
        .transpose()?;
    Ok(Some(Hit {
        kind: r.kind,
        id,
        conversation_id,
        account_id,
        title: title.unwrap_or_default(),
        snippet: fragments(&r.snippet),
        score: -r.rank,
    }))
}

/// Splits an FTS5 snippet with [`OPEN`]/[`CLOSE`] marks into fragments.
fn fragments(s: &str) -> Vec<Fragment> {
    let mut out: Vec<Fragment> = Vec::new();
    let mut matched = false;
    let mut cur = String::new();
    for ch in s.chars() {
        if ch == OPEN || ch == CLOSE {
            if !cur.is_empty() {
                out.push(Fragment {
                    text: std::mem::take(&mut cur),
                    matched,
                });
            }
            matched = ch == OPEN;
        } else {
            cur.push(ch);
        }
    }
    if !cur.is_empty() {
        out.push(Fragment { text: cur, matched });
    }
    out
}

/// The person's words as an FTS5 expression over the text columns: each
/// word a quoted string (so nothing typed is syntax), all required, the last
/// one a prefix while it is being typed. `None` when nothing is searchable.
fn match_words(text: &str) -> Option<String> {
    // Still typing the last word only if the text ends inside a real word
    // (a trailing bracket or space means that word is finished).
    let typing = !text.ends_with(char::is_whitespace)
        && text
            .split_whitespace()
            .last()
            .is_some_and(|w| w.chars().any(char::is_alphanumeric));
    let mut words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    // A single typed letter would be a prefix of a good part of the
    // vocabulary (no prefix index that short): wait for the next one.
    let mut prefix = typing;
    if typing && words.last().is_some_and(|w| alnum_len(w) < 2) {
        words.pop();
        prefix = false;
    }
    if words.is_empty() {
        return None;
    }
    let last = words.len() - 1;
    let quoted: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let q = format!("\"{}\"", w.replace('"', "\"\""));
            if prefix && i == last { q + "*" } else { q }
        })
        .collect();
    Some(format!("{{title body}} : ({})", quoted.join(" AND ")))
}

fn alnum_len(w: &str) -> usize {
    w.chars().filter(|c| c.is_alphanumeric()).count()
}

/// The full expression for one kind: the words, and each filter that
/// applies to the kind as an OR of its tokens in `tags`.
fn match_expr(words: &str, kind: HitKind, f: &SearchFilters, plans: &[String]) -> String {
    let mut expr = words.to_owned();
    let mut group = |tokens: Vec<String>| {
        if !tokens.is_empty() {
            let alts: Vec<String> = tokens.into_iter().map(|t| format!("\"{t}\"")).collect();
            expr.push_str(&format!(" AND tags : ({})", alts.join(" OR ")));
        }
    };
    let conversational = matches!(kind, HitKind::Conversation | HitKind::Message);
    if conversational {
        group(
            f.status
                .iter()
                .map(|s| filter_token('s', s.as_str()))
                .collect(),
        );
        group(
            f.assignee
                .iter()
                .map(|a| filter_token('a', &a.map(|u| u.to_string()).unwrap_or_default()))
                .collect(),
        );
        group(
            f.team
                .iter()
                .map(|t| filter_token('t', &t.to_string()))
                .collect(),
        );
    }
    if kind != HitKind::Account {
        group(
            f.product_area
                .iter()
                .map(|a| filter_token('r', a))
                .collect(),
        );
    }
    if !plans.is_empty() {
        let mut tokens: Vec<String> = plans.iter().map(|p| filter_token('p', p)).collect();
        if kind == HitKind::Article {
            // An article that lists no plans is for every plan.
            tokens.push(filter_token('p', ""));
        }
        group(tokens);
    }
    expr
}

/// The token the migration's `search_source` view writes for a filter
/// value: '0', the field letter, the hex of the value's UTF-8, '0'.
pub(crate) fn filter_token(field: char, value: &str) -> String {
    let mut t = String::with_capacity(value.len() * 2 + 3);
    t.push('0');
    t.push(field);
    for b in value.bytes() {
        t.push_str(&format!("{b:02X}"));
    }
    t.push('0');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_is_quoted_never_syntax() {
        assert_eq!(
            match_words("\"AND OR (").as_deref(),
            Some("{title body} : (\"\"\"AND\" AND \"OR\")"),
            "operators are words and a lone bracket is dropped, so FTS5 never sees syntax"
        );
        assert_eq!(
            match_words("invo").as_deref(),
            Some("{title body} : (\"invo\"*)"),
            "the word being typed is a prefix"
        );
        assert_eq!(
            match_words("invoice ").as_deref(),
            Some("{title body} : (\"invoice\")"),
            "a finished word (followed by a space) is matched whole"
        );
        assert_eq!(
            match_words("invoice v").as_deref(),
            Some("{title body} : (\"invoice\")"),
            "one typed letter waits for the next instead of matching a twentieth of the vocabulary"
        );
        assert_eq!(
            match_words(" ( ) * "),
            None,
            "punctuation alone searches nothing"
        );
    }

    #[test]
    fn filter_tokens_match_the_migration() {
        assert_eq!(
            filter_token('s', "open"),
            "0s6F70656E0",
            "same as '0s' || hex('open') || '0' in search_source"
        );
        assert_eq!(
            filter_token('a', ""),
            "0a0",
            "unassigned is hex of nothing, as hex(NULL) is in SQL"
        );
    }

    #[test]
    fn snippets_split_into_marked_fragments() {
        assert_eq!(
            fragments("the \u{2}invoice\u{3} is late"),
            vec![
                Fragment {
                    text: "the ".into(),
                    matched: false
                },
                Fragment {
                    text: "invoice".into(),
                    matched: true
                },
                Fragment {
                    text: " is late".into(),
                    matched: false
                },
            ],
            "the UI highlights exactly the matched words"
        );
    }
}
