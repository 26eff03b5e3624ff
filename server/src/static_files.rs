//! The demo page (`www/` at `/`) and the built npm package (`pkg/` at `/pkg/`), so the demo
//! runs from one origin. Paths are decoded, then every segment is checked, then the
//! resolved file must still lie under the root after symlinks: no traversal either way.
//! tower-http serves the file; the headers (type, CSP, referrer policy) are set here.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeFile;
use tower_service::Service;

use crate::error::ApiError;

/// `Content-Type` by extension. `application/wasm` is what `WebAssembly.instantiateStreaming`
/// insists on; JavaScript modules must be a JavaScript type or the browser refuses them.
fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("wasm") => "application/wasm",
        Some("ts") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The relative path for a URL path, or `None` if any segment could escape the root or
/// names a hidden file.
fn safe_relative(url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let mut rel = PathBuf::new();
    for segment in decoded.split('/') {
        if segment.is_empty() {
            continue;
        }
        if segment.starts_with('.') || segment.contains(['\\', '\0', ':']) {
            return None;
        }
        rel.push(segment);
    }
    Some(rel)
}

/// Answers a `GET` or `HEAD` for `url_path` under `root`. The path is resolved here (segments
/// checked, symlinks followed, the result still under the root); tower-http's `ServeFile`
/// then serves the resolved file: `Content-Length`, `HEAD`, ranges and `Last-Modified` with
/// conditional requests. `ServeDir` alone would follow a symlink out of the root.
pub(crate) async fn serve(root: &Path, url_path: &str, request: Request) -> Response {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return ApiError::method_not_allowed().into_response();
    }
    let Some(path) = resolve(root, url_path).await else {
        return ApiError::not_found().into_response();
    };
    let mut file = ServeFile::new(&path);
    let response = match file.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    // Gone since it was resolved, or unreadable: the same answer as a missing file.
    if response.status() == StatusCode::NOT_FOUND || response.status().is_server_error() {
        return ApiError::not_found().into_response();
    }
    let mut response = response.map(Body::new);
    let h = response.headers_mut();
    // Our table, not mime_guess's: a `.ts` file is TypeScript here, not an MPEG stream.
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    // The demo is rebuilt often; revalidate rather than run a stale package.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The file `url_path` names under `root` (a directory's `index.html`), or `None` if a
/// segment could escape the root or is hidden, or the file resolves outside the root.
async fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = safe_relative(url_path)?;
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let mut path = root.join(rel);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    let path = tokio::fs::canonicalize(&path).await.ok()?;
    let is_file = tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file());
    (path.starts_with(&root) && is_file).then_some(path)
}

/// The policy of every page and file served. Scripts and styles only from files of this
/// origin (no inline script, no `style` attribute, no `eval`), plus `'wasm-unsafe-eval'`,
/// which `WebAssembly.instantiateStreaming` needs and which allows compiling wasm, not `eval`.
/// `connect-src` falls back to `'self'`: the demo's auth endpoints and API are on this origin.
/// No plugins, no `<base>` rewriting, no framing (clickjacking).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
    script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_hidden_segments_are_refused() {
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/.git/config",
            "/a%5c..%5cb",
            "/%zz",
            "/a%00b",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        assert_eq!(safe_relative("/a//b/c.js"), Some(PathBuf::from("a/b/c.js")));
        assert_eq!(safe_relative("/"), Some(PathBuf::new()));
    }

    #[test]
    fn wasm_and_modules_get_the_types_browsers_require() {
        assert_eq!(content_type(Path::new("x_bg.wasm")), "application/wasm");
        assert!(content_type(Path::new("x.mjs")).starts_with("text/javascript"));
        assert!(content_type(Path::new("x.js")).starts_with("text/javascript"));
        assert_eq!(content_type(Path::new("package.json")), "application/json");
    }
}
