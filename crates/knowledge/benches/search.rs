//! Search benchmark: index build rate and query latency at 100k articles.
//!
//! `cargo bench -p portico-knowledge --bench search` (args: `--docs N`,
//! `--queries N`, `--hybrid-docs N`). Synthetic ~1 kB articles from a fixed
//! vocabulary (deterministic), four plans, eight product areas, three
//! audiences and four states. Queries are two words, filtered like a
//! customer's search (approved, public/customers, their plan or every plan)
//! plus a product area half of the time, top 10, with typo tolerance on.
//! The floor, measured in the same run, is one common four-letter word
//! ("plan", in most documents) matched exactly (no fuzzy expansion) with
//! no filter: scoring one long posting list. Hybrid (which embeds every document, ~7 ms
//! each) is measured on a smaller library.

use std::time::Instant;

use portico_knowledge::{Doc, Embeddings, Filter, Library, Mode};
use uuid::Uuid;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "account",
    "admin",
    "api",
    "billing",
    "calendar",
    "dashboard",
    "export",
    "invoice",
    "seat",
    "plan",
    "workflow",
    "integration",
    "webhook",
    "token",
    "password",
    "report",
    "chart",
    "limit",
    "usage",
    "storage",
    "upload",
    "sync",
    "mobile",
    "notification",
    "email",
    "domain",
    "permission",
    "role",
    "team",
    "member",
    "audit",
    "security",
    "session",
    "import",
    "csv",
    "schedule",
    "trigger",
    "action",
    "filter",
    "search",
    "template",
    "customer",
    "support",
    "request",
    "priority",
    "status",
    "history",
    "backup",
    "restore",
    "sandbox",
    "region",
    "language",
    "currency",
    "tax",
    "payment",
    "card",
    "refund",
    "credit",
    "upgrade",
    "downgrade",
];
const PLANS: &[&str] = &["starter", "team", "business", "enterprise"];
const AREAS: &[&str] = &[
    "billing",
    "api",
    "sso",
    "reporting",
    "mobile",
    "workflows",
    "integrations",
    "account",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "tu", "ren", "sa", "vo", "pe", "di", "gar", "nu", "fi", "zo", "bel", "ta",
    "qui", "mon", "ra", "shi", "ve", "dor", "la", "ki", "po", "sun", "me", "ri", "tal", "no", "hu",
];

/// The vocabulary, most frequent first.
struct Vocab(Vec<String>);

impl Vocab {
    fn new() -> Vocab {
        let mut rng = Rng(0xCAFE);
        let mut words: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
        while words.len() < 20_000 {
            let n = 2 + rng.below(2);
            words.push(
                (0..n)
                    .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                    .collect(),
            );
        }
        Vocab(words)
    }

    /// A word with probability proportional to 1 / rank.
    fn zipf(&self, rng: &mut Rng) -> &str {
        // Inverse of the continuous approximation of the harmonic CDF.
        let n = self.0.len() as f64;
        let u = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
        let rank = (n.ln() * u).exp() as usize;
        &self.0[rank.saturating_sub(1).min(self.0.len() - 1)]
    }

    fn text(&self, rng: &mut Rng, words: usize) -> String {
        (0..words)
            .map(|_| self.zipf(rng))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn docs(vocab: &Vocab, n: usize, seed: u64) -> Vec<Doc> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| Doc {
            id: Uuid::from_u128(i as u128 + 1),
            kind: "article".into(),
            title: vocab.text(&mut rng, 6),
            summary: vocab.text(&mut rng, 15),
            body: vocab.text(&mut rng, 130),
            product_area: AREAS[rng.below(AREAS.len())].into(),
            plans: if rng.below(2) == 0 {
                vec![]
            } else {
                PLANS[rng.below(4)..]
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            },
            versions: vec![],
            locale: "en".into(),
            audience: ["public", "customers", "customers", "internal"][rng.below(4)].into(),
            state: ["approved", "approved", "approved", "draft"][rng.below(4)].into(),
        })
        .collect()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn measure(lib: &Library, vocab: &Vocab, queries: usize, mode: Mode, seed: u64) -> (f64, f64, f64) {
    let mut rng = Rng(seed);
    let mut times = Vec::with_capacity(queries);
    for i in 0..queries {
        let q = format!("{} {}", vocab.zipf(&mut rng), vocab.zipf(&mut rng));
        let f = Filter {
            states: Some(vec!["approved".into()]),
            audiences: Some(vec!["public".into(), "customers".into()]),
            plan: Some(PLANS[rng.below(4)].into()),
            product_area: (i % 2 == 0).then(|| AREAS[rng.below(AREAS.len())].to_owned()),
            ..Filter::default()
        };
        let t = Instant::now();
        let hits = lib.search(&q, &f, mode, 10).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(hits);
    }
    times.sort_by(f64::total_cmp);
    (pct(&times, 0.5), pct(&times, 0.99), *times.last().unwrap())
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = arg("--docs", 100_000);
    let queries = arg("--queries", 2_000);
    let hybrid_docs = arg("--hybrid-docs", 1_000);
    println!(
        "machine: {} logical CPUs",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let vocab = Vocab::new();
    let corpus = docs(&vocab, n, 0x5EED);
    let bytes: usize = corpus
        .iter()
        .map(|d| d.title.len() + d.summary.len() + d.body.len())
        .sum();
    let lib = Library::new(Embeddings::Off).unwrap();
    let t = Instant::now();
    for chunk in corpus.chunks(10_000) {
        lib.upsert(chunk).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "lexical index: {n} docs ({:.0} MB text) in {secs:.1} s = {:.0} docs/s",
        bytes as f64 / 1e6,
        n as f64 / secs
    );
    // Warm up, then measure.
    measure(&lib, &vocab, 200, Mode::Lexical, 1);
    let (p50, p99, max) = measure(&lib, &vocab, queries, Mode::Lexical, 2);
    println!(
        "lexical query ({queries} two-word queries, customer filter, top 10): p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.2} ms"
    );
    let mut floor = Vec::new();
    for i in 0..queries {
        let t = Instant::now();
        let hits = lib
            .search(
                ["plan", "team", "role", "sync"][i % 4],
                &Filter::default(),
                Mode::Lexical,
                10,
            )
            .unwrap();
        floor.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(hits);
    }
    floor.sort_by(f64::total_cmp);
    println!(
        "floor (one common 4-letter word, exact, no filter): p50 {:.2} ms  p99 {:.2} ms",
        pct(&floor, 0.5),
        pct(&floor, 0.99)
    );
    drop(lib);

    let small = docs(&vocab, hybrid_docs, 0xB0B);
    let lib = Library::new(Embeddings::On).unwrap();
    let t = Instant::now();
    lib.upsert(&small).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "hybrid index: {hybrid_docs} docs embedded and indexed in {secs:.1} s = {:.0} docs/s",
        hybrid_docs as f64 / secs
    );
    measure(&lib, &vocab, 20, Mode::Hybrid, 3);
    let hq = queries.min(300);
    let (p50, p99, max) = measure(&lib, &vocab, hq, Mode::Hybrid, 4);
    println!(
        "hybrid query ({hq} queries, {hybrid_docs} docs): p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.2} ms"
    );
    let (p50, p99, _) = measure(&lib, &vocab, hq, Mode::Lexical, 4);
    println!("lexical on the same {hybrid_docs} docs: p50 {p50:.2} ms  p99 {p99:.2} ms");
}
