//! What several engine test files share.
#![allow(dead_code)] // each test file uses its own part

use std::path::Path;

/// Overwrites with garbage a leaf page of `table` that is neither its first
/// nor its last, so no read at open touches it; only a full check (or a
/// query that reaches it) finds the damage.
pub fn damage_a_middle_leaf(path: &Path, table: &str) {
    let (page_size, leaf): (u64, u64) = {
        let c = rusqlite::Connection::open(path).unwrap();
        let leaves: Vec<u64> = c
            .prepare(
                "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY path",
            )
            .unwrap()
            .query_map([table], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            leaves.len() >= 3,
            "{table} must spread over several leaves for a middle one to exist: {leaves:?}"
        );
        (
            c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
            leaves[leaves.len() / 2],
        )
    };
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((leaf - 1) * page_size)).unwrap();
    f.write_all(&vec![0xA5; page_size as usize]).unwrap();
}

/// Gives the empty database on `c` the schema version 4 of the local store
/// (before 0005 made the generated columns plain), as an older app left it.
pub fn version_4_schema(c: &rusqlite::Connection) {
    for sql in [
        include_str!("../../../../migrations/inbox/0001_mirror.sql"),
        include_str!("../../../../migrations/inbox/0002_search.sql"),
        include_str!("../../../../migrations/inbox/0003_outbox.sql"),
        include_str!("../../../../migrations/inbox/0004_sla_mentions.sql"),
    ] {
        c.execute_batch(sql).unwrap();
    }
    c.pragma_update(None, "user_version", 4).unwrap();
}

/// Records whose plain columns (migration 0005) disagree with their JSON:
/// none may, whoever wrote them.
pub const COLUMNS_DISAGREEING_WITH_DATA: &str = "SELECT count(*) FROM records
  WHERE status IS NOT data ->> '$.status'
     OR assignee_id IS NOT data ->> '$.assignee_id'
     OR team_id IS NOT data ->> '$.team_id'
     OR product_area IS NOT data ->> '$.product_area'
     OR conversation_id IS NOT data ->> '$.conversation_id'";

/// Signs in to portal-core at `base` with the demo password and returns the
/// session token (from the session cookie the sign-in sets).
pub async fn session_token(base: &str, email: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/auth/login"))
        .json(
            &serde_json::json!({ "email": email, "password": portico_portal::seed::DEMO_PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{email} signs in");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .expect("a session cookie")
        .1
        .to_owned()
}
