//! The demo page (`www/` at `/`) and the built npm package (`pkg/` at `/pkg/`), so the demo
//! runs from one origin. Paths are decoded, then every segment is checked, then the
//! resolved file must still lie under the root after symlinks: no traversal either way.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

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

pub(crate) async fn serve(root: &Path, url_path: &str, method: &Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::method_not_allowed().into_response();
    }
    let Some(rel) = safe_relative(url_path) else {
        return ApiError::not_found().into_response();
    };
    let Ok(root) = tokio::fs::canonicalize(root).await else {
        return ApiError::not_found().into_response();
    };
    let mut path = root.join(rel);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    let Ok(path) = tokio::fs::canonicalize(&path).await else {
        return ApiError::not_found().into_response();
    };
    if !path.starts_with(&root) {
        return ApiError::not_found().into_response();
    }
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return ApiError::not_found().into_response();
    };
    let len = bytes.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
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
