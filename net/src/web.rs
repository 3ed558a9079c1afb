//! The browser viewer (`web/`, built into `web/dist`), served by the direct server at `/` on
//! the same port as the certificate fingerprint, so `http://HOST:PORT/` opens a player for
//! the broadcast with nothing else running.
//!
//! The built files are read once, at start, into memory: a request can only ever get one of
//! them, whatever its path says.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Error;

/// The built viewer's files, by URL path.
#[derive(Clone, Default)]
pub struct Site {
    files: HashMap<String, (&'static str, bytes::Bytes)>,
}

/// The viewer page's address for broadcast `name` on a direct server at `addr` whose
/// certificate has SHA-256 `fingerprint` (hex): view-only until [`with_grant`] adds an input
/// grant. The fingerprint goes in the fragment, which the browser never sends, and the page
/// pins it.
pub fn page_url(addr: std::net::SocketAddr, name: &str, fingerprint: &str) -> String {
    format!(
        "http://{addr}/?name={}#fp={}",
        query_value(name),
        query_value(fingerprint)
    )
}

/// The viewer page's address on a direct server at `addr` that serves HTTPS with the
/// operator's certificate (no fingerprint: the browser verifies it; use the certificate's host
/// name in place of the address).
pub fn page_url_https(addr: std::net::SocketAddr, name: &str) -> String {
    format!("https://{addr}/?name={}", query_value(name))
}

/// A page address with an input grant (a credential, `TOKEN~SECRET`) in its fragment: it
/// never travels in a request, and the page takes it out of the address bar once read.
pub fn with_grant(page: &str, credential: &str) -> String {
    let joiner = if page.contains('#') { '&' } else { '#' };
    format!("{page}{joiner}grant={}", query_value(credential))
}

fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Where an installed viewer is, when nobody says (`--web`): `web/` beside the running binary
/// (an install), or the checkout's `web/dist` when the binary runs from `target/<profile>/`.
pub fn installed() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?.join("web");
    let checkout = exe.parent()?.parent()?.parent()?.join("web").join("dist");
    [beside, checkout]
        .into_iter()
        .find(|dir| dir.join("index.html").is_file())
}

impl Site {
    /// Read every file under `dir` (which must hold `index.html`).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let bad = |path: &Path, why: Box<dyn std::error::Error + Send + Sync>| {
            Error::file("--web", path, why)
        };
        if !dir.join("index.html").is_file() {
            let why = "no index.html in it (build it: cd web && npm ci && npm run build)";
            return Err(bad(dir, why.into()));
        }
        let mut site = Self::default();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let entries = std::fs::read_dir(&folder).map_err(|e| bad(&folder, e.into()))?;
            for entry in entries {
                let path = entry.map_err(|e| bad(&folder, e.into()))?.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(dir).map_err(|e| bad(&path, e.into()))?;
                let url = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
                let body = std::fs::read(&path).map_err(|e| bad(&path, e.into()))?;
                site.files.insert(url, (content_type(&path), body.into()));
            }
        }
        Ok(site)
    }

    /// The response for `path`: `/` is the index.
    fn get(&self, path: &str) -> Option<(&'static str, bytes::Bytes)> {
        let path = if path == "/" { "/index.html" } else { path };
        self.files.get(path).cloned()
    }

    /// Add the viewer's routes (everything but what `router` already serves) to `router`.
    pub fn serve(self, router: axum::Router) -> axum::Router {
        router.fallback(move |uri: axum::http::Uri| {
            let found = self.get(uri.path());
            std::future::ready(match found {
                Some((kind, body)) => (
                    axum::http::StatusCode::OK,
                    [(axum::http::header::CONTENT_TYPE, kind)],
                    body,
                ),
                None => (
                    axum::http::StatusCode::NOT_FOUND,
                    [(axum::http::header::CONTENT_TYPE, "text/plain")],
                    bytes::Bytes::from_static(b"not found\n"),
                ),
            })
        })
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        Some("css") => "text/css",
        Some("wasm") => "application/wasm",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_url_names_the_broadcast_and_the_grant() {
        let addr = "127.0.0.1:4443".parse().unwrap();
        assert_eq!(
            page_url(addr, "my game", "ab12"),
            "http://127.0.0.1:4443/?name=my+game#fp=ab12"
        );
        assert_eq!(
            with_grant(&page_url(addr, "a/b", "ab12"), "x.y-z~0f"),
            "http://127.0.0.1:4443/?name=a%2Fb#fp=ab12&grant=x.y-z%7E0f"
        );
        assert_eq!(
            with_grant("https://example.org/?url=x", "t~s"),
            "https://example.org/?url=x#grant=t%7Es"
        );
    }

    #[test]
    fn only_built_files_are_served() {
        let dir = std::env::temp_dir().join(format!("lantern-web-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(dir.join("assets/main.js"), "export {}").unwrap();
        let site = Site::load(&dir).unwrap();
        assert_eq!(site.get("/").unwrap().0, "text/html; charset=utf-8");
        assert_eq!(site.get("/assets/main.js").unwrap().0, "text/javascript");
        assert!(site.get("/../../etc/passwd").is_none());
        assert!(site.get("/assets/../index.html").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Site::load(&dir).is_err());
    }
}
