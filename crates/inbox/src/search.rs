//! Offline full-text search over the mirror: conversations (subject, tags),
//! messages (body), accounts (name, domain) and articles (title, summary,
//! body), with the inbox's filters, bm25 ranking, prefix matching of the word
//! being typed, and highlighted snippets.
//!
//! The index is SQLite FTS5, one table per kind, kept in step with `records`
//! by the triggers of `migrations/inbox/0002_search.sql`, so whatever
//! [`Mirror::apply`] wrote is what a search finds, in the same transaction.
//! Why FTS5 and why this shape, with measurements: `docs/decisions.md`,
//! "Offline search".
//!
//! A search runs per kind, newest records first (ascending docids), in two
//! steps that bound its cost whatever the size of the mirror:
//!
//! 1. candidates: the newest [`WINDOW`] rows matching the words *and* the
//!    filters (filter values are tokens in each row, so the index intersects
//!    them; no join);
//! 2. ranking: bm25 over those candidates only, computed on the words alone
//!    (bm25 counts, on every query, the rows holding each of its terms; a
//!    filter token is in a third of the table and would cost more than
//!    everything else).
//!
//! So a word found in more than [`WINDOW`] rows of a kind is ranked among its
//! newest occurrences. The kinds' best hits are merged by score, messages
//! fold into their conversation, and snippets are cut for the final hits from
//! a scratch FTS5 table holding just them (the index keeps no text).

use std::collections::HashSet;

use portico_model::{AccountId, ConversationId, ConversationStatus, TeamId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::mirror::{Mirror, MirrorError};

/// Most rows of one kind ranked per search: the newest matching ones.
pub const WINDOW: usize = 500;

/// Most hits a search returns, whatever the query asks.
pub const MAX_LIMIT: usize = 200;

/// Letters of the word being typed before it is matched as a prefix; the
/// migration's prefix indexes start there, so a prefix never has to be
/// expanded over a large part of the vocabulary.
pub const MIN_PREFIX: usize = 4;

/// Marks around matched words in the raw FTS5 snippet, split into
/// [`Fragment`]s before the caller sees them (control characters, which the
/// mirrored text does not contain in practice and which are never shown).
const OPEN: char = '\u{2}';
const CLOSE: char = '\u{3}';

/// The tokenizer of the migration's search tables, for the snippet table.
const TOKENIZER: &str = "porter unicode61 remove_diacritics 2";

/// What a hit is.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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

    /// Its FTS5 table in the migration.
    fn table(self) -> &'static str {
        match self {
            HitKind::Account => "search_accounts",
            HitKind::Conversation => "search_conversations",
            HitKind::Message => "search_messages",
            HitKind::Article => "search_articles",
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
    /// finds "invoice"), the last one also as a prefix (from
    /// [`MIN_PREFIX`] letters) unless the text ends in a space, so results
    /// appear while typing. Quotes, operators and brackets are plain text
    /// here, never FTS5 syntax.
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fragment {
    pub text: String,
    pub matched: bool,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    let mut ranked: Vec<Ranked> = Vec::new();
    for kind in HitKind::ALL {
        if (q.kinds.is_empty() || q.kinds.contains(&kind)) && kind.admits(&q.filters) {
            let filters = filter_expr(kind, &q.filters);
            ranked.extend(rank_kind(conn, kind, &words, filters.as_deref())?);
        }
    }
    // Best first; equal scores newest first (lower docid).
    ranked.sort_by(|a, b| a.bm25.total_cmp(&b.bm25).then(a.docid.cmp(&b.docid)));

    let mut hits = Vec::with_capacity(limit);
    let mut docids = Vec::with_capacity(limit);
    let mut seen_conversations: HashSet<ConversationId> = HashSet::new();
    for r in ranked {
        if hits.len() == limit {
            break;
        }
        let Some(hit) = describe(conn, &r)? else {
            continue;
        };
        // A conversation is one hit, by its best-ranked subject or message.
        if let Some(c) = hit.conversation_id
            && !seen_conversations.insert(c)
        {
            continue;
        }
        hits.push(Hit {
            title: heading(conn, &hit)?,
            ..hit
        });
        docids.push(r.docid);
    }
    snippets(conn, &words, &docids, &mut hits)?;
    Ok(hits)
}

/// Stops indexing changes as they are written, for a bulk load (bootstrap,
/// resync): the mirror then takes rows several times faster, and
/// [`rebuild_index`] indexes everything at once, faster than row by row
/// (figures in `docs/benchmarks.md`). Lists are unaffected; searches answer
/// from the index as it was until the rebuild. Stored, so an interrupted
/// load still ends in a rebuild.
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
/// transaction (docids in creation order, newest lowest) and resumes
/// indexing changes as they are written. Returns the number of rows indexed.
pub fn rebuild_index(mirror: &Mirror) -> Result<u64, MirrorError> {
    let tx = mirror.conn().unchecked_transaction()?;
    let n = rebuild_index_in(&tx)?;
    tx.commit()?;
    Ok(n)
}

/// [`rebuild_index`] inside the caller's transaction.
pub(crate) fn rebuild_index_in(conn: &Connection) -> Result<u64, MirrorError> {
    let mut build = IndexBuild::start_in(conn)?;
    while !build.step_in(conn, u64::MAX)? {}
    Ok(build.done)
}

/// A rebuild of the search index in steps, each its own transaction, so a
/// large mirror (a bootstrap of a million messages: ~25 s of indexing) is
/// rebuilt without holding the store for the whole time, with progress to
/// show. Indexing stays suspended until the last step; a rebuild that is
/// interrupted leaves it suspended, and the next one starts over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexBuild {
    /// Rows to index in all, and indexed so far.
    pub total: u64,
    pub done: u64,
    /// Position in [`HitKind::ALL`] and the last docid indexed there.
    kind: usize,
    after: i64,
}

impl IndexBuild {
    /// Empties the index and numbers every searchable record (docids in
    /// creation order, newest lowest).
    pub(crate) fn start_in(conn: &Connection) -> Result<IndexBuild, MirrorError> {
        for kind in HitKind::ALL {
            let t = kind.table();
            conn.execute(&format!("INSERT INTO {t} ({t}) VALUES ('delete-all')"), [])?;
        }
        conn.execute_batch(
            "UPDATE search_state SET live = 0;
             DELETE FROM search_docs;
             INSERT INTO search_docs (docid, kind, id)
                 SELECT k.base + (1 << 40) - row_number() OVER (PARTITION BY r.kind ORDER BY r.id),
                        r.kind, r.id
                   FROM records r JOIN search_kinds k ON k.kind = r.kind;",
        )?;
        Ok(IndexBuild {
            total: conn.query_row("SELECT count(*) FROM search_docs", [], |r| r.get(0))?,
            done: 0,
            kind: 0,
            after: 0,
        })
    }

    /// Indexes up to `limit` more rows; true when the index is complete (and
    /// indexing live again).
    pub(crate) fn step_in(&mut self, conn: &Connection, limit: u64) -> Result<bool, MirrorError> {
        let limit = limit.min(i64::MAX as u64) as i64;
        while let Some(kind) = HitKind::ALL.get(self.kind) {
            let base: i64 = conn.query_row(
                "SELECT base FROM search_kinds WHERE kind = ?1",
                [kind.as_str()],
                |r| r.get(0),
            )?;
            let from = self.after.max(base);
            let (last, n): (Option<i64>, i64) = conn.query_row(
                "SELECT max(docid), count(*) FROM (SELECT docid FROM search_docs
                  WHERE docid > ?1 AND docid < ?2 ORDER BY docid LIMIT ?3)",
                params![from, base + (1 << 40), limit],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let Some(last) = last else {
                self.kind += 1;
                self.after = 0;
                continue;
            };
            // In docid order, which is how FTS5 appends fastest.
            conn.execute(
                &format!(
                    "INSERT INTO {} (rowid, title, body, tags)
                     SELECT docid, title, body, tags FROM search_source
                      WHERE docid > ?1 AND docid <= ?2 ORDER BY docid",
                    kind.table()
                ),
                params![from, last],
            )?;
            self.after = last;
            self.done += n as u64;
            return Ok(false);
        }
        conn.execute("UPDATE search_state SET live = 1", [])?;
        Ok(true)
    }
}

/// One ranked FTS row before it is described.
struct Ranked {
    kind: HitKind,
    docid: i64,
    /// FTS5 bm25: lower is better.
    bm25: f64,
}

/// The newest [`WINDOW`] rows of one kind matching the words and filters,
/// each with its bm25 on the words.
fn rank_kind(
    conn: &Connection,
    kind: HitKind,
    words: &str,
    filters: Option<&str>,
) -> Result<Vec<Ranked>, MirrorError> {
    let t = kind.table();
    let row = |r: &rusqlite::Row<'_>| {
        Ok(Ranked {
            kind,
            docid: r.get(0)?,
            bm25: r.get(1)?,
        })
    };
    let Some(filters) = filters else {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT rowid, bm25({t}, 10.0, 1.0, 0.0) FROM {t}
              WHERE {t} MATCH ?1 ORDER BY rowid LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![words, WINDOW as i64], row)?;
        return Ok(rows.collect::<Result<_, _>>()?);
    };
    let candidates: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT rowid FROM {t} WHERE {t} MATCH ?1 ORDER BY rowid LIMIT ?2"
        ))?
        .query_map(
            params![format!("{words} AND {filters}"), WINDOW as i64],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    let (Some(first), Some(last)) = (candidates.first(), candidates.last()) else {
        return Ok(Vec::new());
    };
    // `+rowid` keeps the list a filter on the matches in [first, last]
    // rather than one FTS5 query per candidate.
    let list = serde_json::to_string(&candidates).map_err(|_| MirrorError::Corrupt("search"))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT rowid, bm25({t}, 10.0, 1.0, 0.0) FROM {t}
          WHERE {t} MATCH ?1 AND rowid >= ?2 AND rowid <= ?3
            AND +rowid IN (SELECT value FROM json_each(?4))"
    ))?;
    let rows = stmt.query_map(params![words, first, last, list], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Turns a ranked row into a hit (without heading or snippet yet: only the
/// hits kept need those); `None` if the record went away in between.
fn describe(conn: &Connection, r: &Ranked) -> Result<Option<Hit>, MirrorError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, r.account_id,
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
            ))
        })
        .optional()?;
    let Some((id, account, conversation)) = row else {
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
        title: String::new(),
        snippet: Vec::new(),
        score: -r.bm25,
    }))
}

/// A hit's heading: the account's name, the article's title, the
/// conversation's subject (a message's conversation's); empty if that
/// record is not mirrored.
fn heading(conn: &Connection, hit: &Hit) -> Result<String, MirrorError> {
    let (kind, id) = match (hit.kind, hit.conversation_id) {
        (HitKind::Message, Some(c)) => ("conversation", c.0),
        (k, _) => (k.as_str(), hit.id),
    };
    let title: Option<Option<String>> = conn
        .prepare_cached(
            "SELECT CASE kind WHEN 'account' THEN data ->> '$.name'
                              WHEN 'article' THEN data ->> '$.title'
                              ELSE data ->> '$.subject' END
               FROM records WHERE kind = ?1 AND id = ?2",
        )?
        .query_row(params![kind, id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(title.flatten().unwrap_or_default())
}

/// Cuts the hits' snippets: their text goes into a scratch FTS5 table (same
/// tokenizer, in this connection's temp schema) and FTS5's `snippet()` runs
/// the same words over it, so what is marked is exactly what matched, at a
/// cost that does not grow with the mirror.
fn snippets(
    conn: &Connection,
    words: &str,
    docids: &[i64],
    hits: &mut [Hit],
) -> Result<(), MirrorError> {
    if hits.is_empty() {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_snippets
             USING fts5 (title, body, tokenize = '{TOKENIZER}');
         DELETE FROM temp.search_snippets;"
    ))?;
    {
        let mut put = conn.prepare_cached(
            "INSERT INTO temp.search_snippets (rowid, title, body)
             SELECT docid, title, body FROM search_source WHERE docid = ?1",
        )?;
        for d in docids {
            put.execute([d])?;
        }
    }
    let mut cut = conn.prepare_cached(
        "SELECT rowid, snippet(search_snippets, -1, char(2), char(3), '…', 16)
           FROM temp.search_snippets WHERE search_snippets MATCH ?1",
    )?;
    let cuts: Vec<(i64, String)> = cut
        .query_map([words], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (docid, s) in cuts {
        if let Some(i) = docids.iter().position(|d| *d == docid) {
            hits[i].snippet = fragments(&s);
        }
    }
    for h in hits.iter_mut().filter(|h| h.snippet.is_empty()) {
        h.snippet = vec![Fragment {
            text: h.title.clone(),
            matched: false,
        }];
    }
    conn.execute("DELETE FROM temp.search_snippets", [])?;
    Ok(())
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
    let typing = !text.ends_with(char::is_whitespace);
    let mut words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    // The prefix is the last token of the word being typed ("acme.te" is
    // the phrase "acme te", "te" the prefix). If it is (or stems to) less
    // than the prefix indexes it would be a prefix of a large part of the
    // vocabulary: match what comes before it as whole words, and wait.
    let mut prefix = typing;
    if let Some(last) = words.last_mut().filter(|_| typing) {
        let start = last
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric())
            .last()
            .map_or(last.len(), |(i, _)| i);
        if stem_len(&last[start..]) < MIN_PREFIX {
            *last = &last[..start];
            prefix = false;
            if !last.chars().any(char::is_alphanumeric) {
                words.pop();
            }
        }
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

/// A lower bound of the length the porter stemmer leaves of a word: the
/// query's prefix is stemmed too ("mors" is searched as "mor"), so a typed
/// "mors" is not yet long enough for the prefix indexes. Counts letters and
/// digits, minus the endings porter removes from short words (-s, -es,
/// -ies, -ed, -ing, -e); erring short only delays the prefix a keystroke.
fn stem_len(word: &str) -> usize {
    let w: String = word
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let mut n = w.chars().count();
    let stripped = ["ies", "ing", "ed", "es", "s", "e"]
        .iter()
        .find(|end| w.ends_with(*end) && !(**end == "s" && w.ends_with("ss")));
    if let Some(end) = stripped {
        n = n.saturating_sub(end.len());
    }
    n
}

/// The filters that apply to one kind as an FTS5 expression over `tags`
/// (each filter an OR of its tokens), or `None` without filters.
fn filter_expr(kind: HitKind, f: &SearchFilters) -> Option<String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    if matches!(kind, HitKind::Conversation | HitKind::Message) {
        groups.push(
            f.status
                .iter()
                .map(|s| filter_token('s', s.as_str()))
                .collect(),
        );
        groups.push(
            f.assignee
                .iter()
                .map(|a| filter_token('a', &a.map(|u| u.to_string()).unwrap_or_default()))
                .collect(),
        );
        groups.push(
            f.team
                .iter()
                .map(|t| filter_token('t', &t.to_string()))
                .collect(),
        );
    }
    if kind != HitKind::Account {
        groups.push(
            f.product_area
                .iter()
                .map(|a| filter_token('r', a))
                .collect(),
        );
    }
    if !f.plan.is_empty() {
        let mut plans: Vec<String> = f.plan.iter().map(|p| filter_token('p', p)).collect();
        if kind == HitKind::Article {
            // An article that lists no plans is for every plan.
            plans.push(filter_token('p', ""));
        }
        groups.push(plans);
    }
    let parts: Vec<String> = groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            let alts: Vec<String> = g.into_iter().map(|t| format!("\"{t}\"")).collect();
            format!("tags : ({})", alts.join(" OR "))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" AND "))
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
            match_words("\"AND OR NEAR (").as_deref(),
            Some("{title body} : (\"\"\"AND\" AND \"OR\" AND \"NEAR\"*)"),
            "operators are quoted words and a lone bracket is dropped, so FTS5 never sees syntax"
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
            match_words("invoice inv").as_deref(),
            Some("{title body} : (\"invoice\")"),
            "a word being typed waits for its third letter instead of matching much of the vocabulary"
        );
        assert_eq!(
            match_words("mors").as_deref(),
            None,
            "porter would search a typed \"mors\" as \"mor\"*, shorter than the prefix indexes: wait"
        );
        assert_eq!(
            match_words("acme.te").as_deref(),
            Some("{title body} : (\"acme.\")"),
            "a short last token is left out; what precedes it is matched whole"
        );
        assert_eq!(
            match_words("morse").as_deref(),
            Some("{title body} : (\"morse\"*)"),
            "one more letter and it stems long enough"
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
