//! The customer portal's web app as portal-core serves it (`web.rs`): a
//! page saying how to build it when it is missing, `index.html` for every
//! app route, long-cached hashed assets, nothing outside the build.

mod common;

use common::TestServer;

#[tokio::test]
async fn serves_the_built_app_its_routes_and_assets_and_says_how_to_build_it() {
    let dist = tempfile::tempdir().unwrap();
    // One test per binary: the folder is set once for the process.
    portico_portal::web::serve_from(dist.path().to_path_buf());
    let srv = TestServer::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Not built yet: a page for people saying what to run.
    let resp = http.get(srv.url("/portal/")).send().await.unwrap();
    assert_eq!(resp.status(), 503, "an unbuilt portal is unavailable");
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"),
        "every page is under the strict CSP"
    );
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("./scripts/build-ui"),
        "the page says how to build the portal: {body}"
    );

    // Built: index.html for the app's routes, assets by name.
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><title>portal</title>",
    )
    .unwrap();
    std::fs::create_dir(dist.path().join("assets")).unwrap();
    std::fs::write(dist.path().join("assets/index-Ab12_x.js"), "export {}").unwrap();
    std::fs::write(dist.path().join("secret.txt"), "not an asset").unwrap();

    for path in [
        "/portal/",
        "/portal/account/plan",
        "/portal/requests/0195eaf5-e778-7c80",
    ] {
        let resp = http.get(srv.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path} is an app route");
        assert_eq!(
            resp.headers()["cache-control"],
            "no-cache",
            "{path}: the page is revalidated"
        );
        assert!(resp.text().await.unwrap().contains("<title>portal</title>"));
    }
    let js = http
        .get(srv.url("/portal/assets/index-Ab12_x.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        js.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"),
        "hashed assets are cached for good"
    );
    for path in [
        "/portal/assets/missing-abc.js",
        "/portal/assets/..%2Fsecret.txt",
        "/portal/assets/%2E%2E%2Fsecret.txt",
        "/portal/assets/secret.txt",
    ] {
        let resp = http.get(srv.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path} is not served");
    }

    // The root sends people to the portal; the API keeps its JSON errors.
    let root = http.get(srv.url("/")).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/portal/");
    let api = http.get(srv.url("/v1/nope")).send().await.unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(common::json(api).await["error"]["code"], "not_found");
    srv.stop().await;
}
