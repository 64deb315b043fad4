//! The ops console (`GET /console`): the page and its security headers over real HTTP, and the
//! page driven in headless Chromium (Debian's `chromium`) by `tests/console/console.spec.mjs`
//! with playwright-core, against seyaha-local and its demo supplier.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use seyaha_tests::{TestApp, new_partner};
use sha2::{Digest, Sha256};

async fn get_console(app: &TestApp) -> reqwest::Response {
    let url = format!("http://{}/console", app.addr());
    app.http.get(url).send().await.unwrap()
}

/// The text between `<tag>` and `</tag>` (the page has one of each).
fn inline<'a>(page: &'a str, tag: &str) -> &'a str {
    let start = page
        .find(&format!("<{tag}>"))
        .unwrap_or_else(|| panic!("no <{tag}>"))
        + tag.len()
        + 2;
    let end = page[start..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("no </{tag}>"))
        + start;
    &page[start..end]
}

fn hash_source(text: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

#[tokio::test]
async fn the_console_is_one_page_under_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    let response = get_console(&app).await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");
    let policy = header("content-security-policy");
    let page = response.text().await.unwrap();

    // Exactly the page's own inline script and style may run: by hash, never 'unsafe-inline'.
    let directives: Vec<(&str, Vec<&str>)> = policy
        .split(';')
        .map(|directive| {
            let mut words = directive.split_whitespace();
            (words.next().unwrap(), words.collect())
        })
        .collect();
    let directive = |name: &str| {
        directives
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(directive("default-src"), ["'none'"]);
    assert_eq!(
        directive("script-src"),
        [hash_source(inline(&page, "script")).as_str()]
    );
    assert_eq!(
        directive("style-src"),
        [hash_source(inline(&page, "style")).as_str()]
    );
    assert_eq!(directive("connect-src"), ["'self'"]);
    assert_eq!(directive("frame-ancestors"), ["'none'"]);
    assert_eq!(directive("form-action"), ["'none'"]);
    assert_eq!(directive("base-uri"), ["'none'"]);
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(page.matches("<script").count(), 1, "one script, inline");
    assert_eq!(page.matches("<style").count(), 1, "one style sheet, inline");

    // Self-contained: nothing is loaded from anywhere (the SVG namespace is a name, not a fetch).
    let without_namespace = page.replace("'http://www.w3.org/2000/svg'", "");
    for fetches in ["http://", "https://", "src=", "@import", "url("] {
        assert!(
            !without_namespace.contains(fetches),
            "the page refers to something outside: {fetches}"
        );
    }
    // Partner strings reach the page as text only: the script has no way to parse HTML.
    let script = inline(&page, "script");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "DOMParser",
        "createContextualFragment",
    ] {
        assert!(!script.contains(sink), "the console script uses {sink}");
    }
    // The token stays in the tab: never a cookie, a URL or local storage.
    assert!(
        script.contains("sessionStorage")
            && !script.contains("localStorage")
            && !script.contains("document.cookie")
    );
}

/// Debian's Chromium (`SEYAHA_CHROMIUM` names another).
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SEYAHA_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Runs the browser script to its end (at most three minutes), printing what it printed.
fn run_browser_script(script_dir: &Path, env: Vec<(&'static str, String)>) -> bool {
    let mut child = Command::new("node")
        .arg("console.spec.mjs")
        .current_dir(script_dir)
        .envs(env)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs (Node.js 20 or later on PATH)");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("the browser script ran out of time");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        // Straight to stderr, past the test harness's capture, so the skip shows in `make test`.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: chromium not available (install Debian's chromium, or set SEYAHA_CHROMIUM)"
        );
        return;
    };
    let script_dir = workspace().join("tests/console");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in tests/console: `make test` installs it (npm ci)"
    );
    let app = TestApp::spawn().await;
    let demo_root = format!("http://{}/demo/octo", app.addr());
    // Others first (newest come first): the demo integration heads page 1 of 2 at 10 a page.
    let others = 11;
    for _ in 0..others {
        app.register(&new_partner(), &demo_root, "bearer", "demo-octo-key")
            .await;
    }
    let partner = new_partner();
    let created = app
        .register(&partner, &demo_root, "bearer", "demo-octo-key")
        .await;
    let screenshots = workspace().join("target/console-screenshots");

    let env = vec![
        ("CONSOLE_URL", format!("http://{}/console", app.addr())),
        ("ADMIN_TOKEN", app.admin_token()),
        ("PARTNER_TOKEN", app.partner_token(&partner)),
        (
            "INTEGRATION_ID",
            created["_id"].as_str().unwrap().to_owned(),
        ),
        ("PARTNER_ID", partner.clone()),
        (
            "WEBHOOK_SECRET",
            created["webhook_secret"].as_str().unwrap().to_owned(),
        ),
        ("DEMO_ROOT", demo_root),
        ("TOTAL_INTEGRATIONS", (others + 1).to_string()),
        ("SCREENSHOT_DIR", screenshots.display().to_string()),
        ("CHROMIUM", chromium.display().to_string()),
    ];
    let passed = tokio::task::spawn_blocking(move || run_browser_script(&script_dir, env))
        .await
        .unwrap();
    assert!(passed, "the browser script failed (its output is above)");
    for name in ["01-refused-token.png", "02-console.png"] {
        assert!(screenshots.join(name).is_file(), "screenshot {name}");
    }
}
