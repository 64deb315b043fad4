//! `GET /console`: the ops console, one self-contained page (HTML, CSS and vanilla JavaScript
//! compiled into the binary; nothing is fetched from anywhere else) that calls the admin API.
//!
//! The style and script are inline, and the Content-Security-Policy allows exactly those two by
//! their SHA-256 (no `'unsafe-inline'`): anything else inline, injected or not, does not run,
//! and `connect-src 'self'` keeps the page talking to this API only.

use std::sync::LazyLock;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// Where the console is served (by seyaha-local, and by the `register` function on AWS).
pub const PATH: &str = "/console";

const HTML: &str = include_str!("console/index.html");
const STYLE: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");

struct Page {
    html: String,
    content_security_policy: String,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| Page {
    html: HTML
        .replacen("{{STYLE}}", STYLE, 1)
        .replacen("{{SCRIPT}}", SCRIPT, 1),
    content_security_policy: format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; img-src data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        source_hash(SCRIPT),
        source_hash(STYLE)
    ),
});

/// A CSP hash source: `sha256-` and the base64 of the inline element's exact text.
fn source_hash(text: &str) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// The page. It holds no data (everything comes from the admin API with the admin's token),
/// so any client may load it; `no-cache` lets a deploy replace it at once.
pub async fn page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                CONTENT_SECURITY_POLICY,
                PAGE.content_security_policy.as_str(),
            ),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (X_FRAME_OPTIONS, "DENY"),
            (REFERRER_POLICY, "no-referrer"),
            (CACHE_CONTROL, "no-cache"),
        ],
        PAGE.html.as_str(),
    )
}
