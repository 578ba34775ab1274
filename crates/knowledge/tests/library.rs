//! The library: stemming, typo tolerance, phrases, facet filters, updates
//! and deletes, and the semantic side finding paraphrases.

use portico_knowledge::{Doc, Embeddings, Filter, Library, Mode};
use uuid::Uuid;

fn doc(
    n: u128,
    title: &str,
    body: &str,
    area: &str,
    plans: &[&str],
    audience: &str,
    state: &str,
) -> Doc {
    Doc {
        id: Uuid::from_u128(n),
        kind: "article".into(),
        title: title.into(),
        summary: String::new(),
        body: body.into(),
        product_area: area.into(),
        plans: plans.iter().map(|p| p.to_string()).collect(),
        versions: if n == 6 { vec!["5.0".into()] } else { vec![] },
        locale: if n == 7 { "de".into() } else { "en".into() },
        audience: audience.into(),
        state: state.into(),
    }
}

fn corpus() -> Vec<Doc> {
    vec![
        doc(
            1,
            "Add seats to your subscription",
            "An administrator adds seats from Billing. Each seat is prorated.",
            "billing",
            &[],
            "customers",
            "approved",
        ),
        doc(
            2,
            "Find your invoices",
            "Invoices are listed under Billing, newest first. Download a printable copy.",
            "billing",
            &[],
            "customers",
            "approved",
        ),
        doc(
            3,
            "Set up single sign-on",
            "Connect Okta with SAML. Paste the callback URL into your identity provider.",
            "sso",
            &["business", "enterprise"],
            "customers",
            "approved",
        ),
        doc(
            4,
            "Refund policy for agents",
            "Agents may grant one month of credit.",
            "billing",
            &[],
            "internal",
            "approved",
        ),
        doc(
            5,
            "Usage-based billing",
            "Pay per thousand API calls.",
            "billing",
            &[],
            "customers",
            "draft",
        ),
        doc(
            6,
            "Mobile app closes on launch",
            "Reinstall the app after updating.",
            "mobile",
            &[],
            "customers",
            "approved",
        ),
        doc(
            7,
            "Sitzplätze hinzufügen",
            "Administratoren fügen Sitzplätze unter Abrechnung hinzu.",
            "billing",
            &[],
            "customers",
            "approved",
        ),
    ]
}

fn customer(plan: &str) -> Filter {
    Filter {
        states: Some(vec!["approved".into()]),
        audiences: Some(vec!["public".into(), "customers".into()]),
        plan: Some(plan.into()),
        ..Filter::default()
    }
}

fn ids(hits: &[portico_knowledge::Hit]) -> Vec<u128> {
    hits.iter().map(|h| h.id.as_u128()).collect()
}

fn lexical() -> Library {
    let l = Library::new(Embeddings::Off).unwrap();
    l.upsert(&corpus()).unwrap();
    l
}

#[test]
fn stemming_typos_and_phrases() {
    let l = lexical();
    let all = Filter::default();
    assert_eq!(
        ids(&l.search("adding a seat", &all, Mode::Lexical, 3).unwrap())[0],
        1,
        "stems: adding/seat"
    );
    assert_eq!(
        ids(&l.search("invoise", &all, Mode::Lexical, 3).unwrap())[0],
        2,
        "one typo"
    );
    assert_eq!(
        ids(&l.search("subscripton", &all, Mode::Lexical, 3).unwrap())[0],
        1,
        "typo in a long word"
    );
    let phrase = l
        .search("\"callback URL\"", &all, Mode::Lexical, 5)
        .unwrap();
    assert_eq!(
        ids(&phrase),
        vec![3],
        "the phrase appears in one document only"
    );
    let not_phrase = l
        .search("\"URL callback\"", &all, Mode::Lexical, 5)
        .unwrap();
    assert!(not_phrase.is_empty(), "word order matters inside quotes");
}

#[test]
fn facets_filter_before_ranking() {
    let l = lexical();
    // A Team customer: no internal, no draft, no Business-only article.
    for q in ["refund credit", "usage billing thousand", "okta sso"] {
        let hits = l.search(q, &customer("team"), Mode::Lexical, 10).unwrap();
        assert!(
            ids(&hits).iter().all(|i| ![3, 4, 5].contains(i)),
            "{q}: {hits:?}"
        );
    }
    let business = l
        .search("okta sso", &customer("business"), Mode::Lexical, 10)
        .unwrap();
    assert_eq!(ids(&business), vec![3]);
    let german = Filter {
        locales: Some(vec!["de".into()]),
        ..Filter::default()
    };
    assert_eq!(
        ids(&l.search("Sitzplätze", &german, Mode::Lexical, 5).unwrap()),
        vec![7]
    );
    let v42 = Filter {
        version: Some("4.2".into()),
        ..Filter::default()
    };
    assert!(
        l.search("app launch", &v42, Mode::Lexical, 5)
            .unwrap()
            .is_empty(),
        "5.0-only article"
    );
    let v50 = Filter {
        version: Some("5.0".into()),
        ..Filter::default()
    };
    assert_eq!(
        ids(&l.search("app launch", &v50, Mode::Lexical, 5).unwrap()),
        vec![6]
    );
    let area = Filter {
        product_area: Some("sso".into()),
        ..Filter::default()
    };
    assert!(ids(&l.search("billing", &area, Mode::Lexical, 5).unwrap()).is_empty());
}

#[test]
fn updates_and_deletes_are_seen_at_once() {
    let l = lexical();
    let mut d = corpus().remove(1);
    d.title = "Receipts and statements".into();
    d.body = "Every receipt is kept for seven years.".into();
    l.upsert(&[d]).unwrap();
    assert_eq!(
        ids(&l
            .search("receipt", &Filter::default(), Mode::Lexical, 5)
            .unwrap()),
        vec![2]
    );
    assert!(
        l.search("printable", &Filter::default(), Mode::Lexical, 5)
            .unwrap()
            .is_empty(),
        "old text is gone"
    );
    l.remove(&[Uuid::from_u128(2)]).unwrap();
    assert!(
        l.search("receipt", &Filter::default(), Mode::Lexical, 5)
            .unwrap()
            .is_empty()
    );
    assert_eq!(l.len(), 6);
}

#[test]
fn hybrid_finds_paraphrases_lexical_misses() {
    let l = Library::new(Embeddings::On).unwrap();
    l.upsert(&corpus()).unwrap();
    let f = customer("enterprise");
    // No word in common with article 2 ("bill" is not "invoice").
    let q = "receipts for last month's charges";
    let lexical = l.search(q, &f, Mode::Lexical, 3).unwrap();
    assert!(!ids(&lexical).contains(&2), "{lexical:?}");
    let hybrid = l.search(q, &f, Mode::Hybrid, 3).unwrap();
    assert!(ids(&hybrid).contains(&2), "{hybrid:?}");
    assert!(hybrid.iter().all(|h| h.similarity.is_some()));
    // The semantic side obeys the same filter.
    let team = l
        .search(
            "grant a month of credit refund",
            &customer("team"),
            Mode::Semantic,
            10,
        )
        .unwrap();
    assert!(
        ids(&team).iter().all(|i| ![3, 4, 5].contains(i)),
        "{team:?}"
    );
}
