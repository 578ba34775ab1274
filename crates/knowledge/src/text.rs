//! Text analysis shared by the index, the extractive composer and content
//! gaps, so "the same word" means the same thing everywhere.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};

/// Name the analyzer is registered under in the index.
pub const ANALYZER: &str = "portico_en";

/// Lucene's English stop words plus the words every question has ("how do
/// I", "my", "what") and the pieces of contractions: they say nothing about
/// the topic and would otherwise match most documents.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", "how", "do", "does", "did", "i", "me", "my", "we",
    "our", "us", "you", "your", "what", "where", "when", "why", "which", "who", "can", "could",
    "should", "would", "am", "been", "has", "have", "had", "so", "from", "about", "any", "all",
    "get", "please", "hi", "hello", "thanks",
    // What the tokenizer leaves of contractions ("where's", "don't", "I'm").
    "s", "t", "d", "m", "ll", "re", "ve",
];

/// Lower case, ASCII folding, stop words out, English stemming.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| w.to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analysed terms of `text`, in order (duplicates kept).
pub fn terms(text: &str) -> Vec<String> {
    let mut a = analyzer();
    let mut stream = a.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Splits `"quoted phrases"` from the loose words of a query. An unclosed
/// quote counts as loose words.
pub fn split_phrases(query: &str) -> (Vec<String>, String) {
    let mut phrases = Vec::new();
    let mut words = String::new();
    let mut parts = query.split('"').peekable();
    let mut inside = false;
    while let Some(part) = parts.next() {
        if inside && parts.peek().is_some() {
            phrases.push(part.to_owned());
        } else {
            words.push(' ');
            words.push_str(part);
        }
        inside = !inside;
    }
    (phrases, words)
}

/// Sentences of a passage: split after `.`, `!`, `?` followed by white
/// space and a word not in lower case, and at line breaks and list items.
/// Good enough for help articles written in plain sentences; "e.g. this"
/// stays whole.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in text.split('\n') {
        let block = block.trim().trim_start_matches(['-', '*', '•']).trim();
        if block.is_empty() {
            continue;
        }
        let mut start = 0;
        let bytes: Vec<(usize, char)> = block.char_indices().collect();
        for (i, (pos, c)) in bytes.iter().enumerate() {
            let next_is_space = bytes.get(i + 1).is_some_and(|(_, n)| n.is_whitespace());
            // "e.g. here": a lower-case word after the dot continues the sentence.
            let next_starts_sentence = bytes[i + 1..]
                .iter()
                .find(|(_, n)| !n.is_whitespace())
                .is_none_or(|(_, n)| !n.is_lowercase());
            if matches!(c, '.' | '!' | '?') && next_is_space && next_starts_sentence {
                let s = block[start..pos + c.len_utf8()].trim();
                if !s.is_empty() {
                    out.push(s.to_owned());
                }
                start = pos + c.len_utf8();
            }
        }
        let rest = block[start..].trim();
        if !rest.is_empty() {
            out.push(rest.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_drops_question_words() {
        assert_eq!(terms("How do I add seats?"), vec!["add", "seat"]);
        assert_eq!(terms("Invoices"), terms("invoice"));
    }

    #[test]
    fn phrases_are_split_from_words() {
        let (p, w) = split_phrases("sso \"identity provider\" setup \"open");
        assert_eq!(p, vec!["identity provider"]);
        assert!(w.contains("sso") && w.contains("setup") && w.contains("open"));
    }

    #[test]
    fn sentences_split_on_end_marks_and_lines() {
        let s = sentences("Open Billing. Click Add seat! Done?\n- Item one\n\nLast e.g. here");
        assert_eq!(
            s,
            vec![
                "Open Billing.",
                "Click Add seat!",
                "Done?",
                "Item one",
                "Last e.g. here"
            ]
        );
    }
}
