//! `www/` at `/` and `pkg/` at `/pkg/`: the MIME types browsers insist on, and no way out
//! of either directory.

mod common;

use std::fs;

use common::*;

struct Site {
    _dir: TempDir,
    server: TestServer,
}

async fn site() -> Site {
    let dir = TempDir::new("static");
    let www = dir.path().join("www");
    let pkg = dir.path().join("pkg");
    fs::create_dir_all(www.join("sub")).unwrap();
    fs::create_dir_all(&pkg).unwrap();
    fs::write(www.join("index.html"), "<!doctype html><title>demo</title>").unwrap();
    fs::write(www.join("app.js"), "export {};").unwrap();
    fs::write(www.join("style.css"), "body{}").unwrap();
    fs::write(www.join("sub").join("index.html"), "sub").unwrap();
    fs::write(www.join(".env"), "SECRET=1").unwrap();
    fs::write(pkg.join("wasm_token_manager.js"), "export default 1;").unwrap();
    fs::write(pkg.join("wasm_token_manager_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    fs::write(pkg.join("package.json"), "{}").unwrap();
    fs::write(pkg.join("helper.mjs"), "export {};").unwrap();
    fs::write(dir.path().join("outside.txt"), "outside").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), www.join("link.txt")).unwrap();
    let server = TestServer::start_with(|c| {
        c.www = www.clone();
        c.pkg = pkg.clone();
    })
    .await;
    Site { _dir: dir, server }
}

#[tokio::test]
async fn files_are_served_with_the_types_browsers_require() {
    let site = site().await;
    let server = &site.server;
    for (path, ty, body) in [
        ("/", "text/html", "<!doctype html><title>demo</title>"),
        (
            "/index.html",
            "text/html",
            "<!doctype html><title>demo</title>",
        ),
        ("/sub/", "text/html", "sub"),
        ("/app.js", "text/javascript", "export {};"),
        ("/style.css", "text/css", "body{}"),
        (
            "/pkg/wasm_token_manager.js",
            "text/javascript",
            "export default 1;",
        ),
        ("/pkg/helper.mjs", "text/javascript", "export {};"),
        ("/pkg/package.json", "application/json", "{}"),
    ] {
        let r = server.send(Request::get(path)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.header("content-type").unwrap().starts_with(ty),
            "{path}: {:?}",
            r.header("content-type")
        );
        assert_eq!(r.text(), body, "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let r = server
        .send(Request::get("/pkg/wasm_token_manager_bg.wasm"))
        .await;
    assert_eq!(r.header("content-type"), Some("application/wasm"));
    assert_eq!(r.body, b"\0asm\x01\0\0\0");
    let r = server.send(Request::new("HEAD", "/app.js")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10"));
}

#[tokio::test]
async fn traversal_hidden_files_and_symlinks_out_of_the_root_are_404() {
    let site = site().await;
    let server = &site.server;
    for path in [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/sub/%2e%2e/%2e%2e/outside.txt",
        "/pkg/../outside.txt",
        "/pkg/%2e%2e/www/index.html",
        "/pkg/..%2foutside.txt",
        "/..%5coutside.txt",
        "/.env",
        "/link.txt",
        "/missing.js",
        "/%ff",
    ] {
        let r = server.send(Request::get(path)).await;
        assert_error(&r, 404, "not_found");
        assert!(
            !r.text().contains("outside") && !r.text().contains("SECRET"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn other_methods_on_files_and_api_routes_get_json_405() {
    let site = site().await;
    let server = &site.server;
    assert_error(
        &server.send(Request::new("DELETE", "/index.html")).await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &server.send(Request::new("PUT", "/pkg/package.json")).await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &server.send(Request::get("/auth/refresh")).await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &server.send(Request::post("/api/me")).await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn missing_directories_give_404_not_a_crash() {
    let server = TestServer::start_with(|c| {
        c.www = "/nonexistent/www".into();
        c.pkg = "/nonexistent/pkg".into();
    })
    .await;
    assert_error(&server.send(Request::get("/")).await, 404, "not_found");
    assert_error(
        &server.send(Request::get("/pkg/x.js")).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn every_file_is_served_with_a_strict_content_security_policy_and_no_referrer() {
    let site = site().await;
    let server = &site.server;
    for path in [
        "/",
        "/index.html",
        "/app.js",
        "/style.css",
        "/pkg/wasm_token_manager.js",
    ] {
        let r = server.send(Request::get(path)).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("content-security-policy"),
            Some(
                "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; \
                 base-uri 'none'; frame-ancestors 'none'"
            ),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
    }
}

#[tokio::test]
async fn an_unchanged_file_is_revalidated_with_304_and_a_range_gets_its_bytes() {
    let site = site().await;
    let server = &site.server;
    let first = server.send(Request::get("/pkg/package.json")).await;
    let modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();
    let again = server
        .send(Request::get("/pkg/package.json").header("If-Modified-Since", &modified))
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let part = server
        .send(Request::get("/app.js").header("Range", "bytes=0-5"))
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "export");
    assert_eq!(
        part.header("content-security-policy"),
        first.header("content-security-policy")
    );
}
