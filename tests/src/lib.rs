//! Test harness: starts seyaha-local in-process on port 0 with a fresh data dir, and talks to
//! it over real HTTP.

pub mod aws;
pub mod capacity;
pub mod clock;
pub mod fake_octo;
pub mod hooked;
pub mod lambda;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use clock::FakeClock;
pub use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use seyaha::api::PREFIX;
use seyaha::api::auth::mint_token;
use seyaha::domain::{PartnerId, Role};
use seyaha::settings::Settings;
use seyaha_local::{LocalConfig, RunningServer};
use tempfile::TempDir;

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789abcdef";

/// The settings most tests want: the one `Settings` struct with private endpoints allowed (the
/// fake supplier is on loopback) and short partner timeouts. Tests change fields as they need.
pub fn test_settings() -> Settings {
    Settings {
        allow_private_endpoints: Some(true),
        octo_connect_timeout_secs: 2,
        octo_timeout_secs: 2,
        octo_max_response_bytes: 1024 * 1024,
        jwt_secret: Some(SecretString::from(JWT_SECRET)),
        // A fan-out's syncs all run at once unless a test spreads them.
        fan_out_window_secs: 0,
        ..Settings::default()
    }
}

pub struct TestApp {
    server: Option<RunningServer>,
    data_dir: TempDir,
    settings: Settings,
    /// The server's clock: the real one, or a fake one that moves only when the test moves it
    /// (see [`TestApp::spawn_with_fake_clock`]).
    clock: Option<Arc<FakeClock>>,
    pub http: reqwest::Client,
}

/// A response: status and parsed JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// Asserts the status and the error envelope; returns the `error` entries joined.
    pub fn expect_error(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status, body: {}",
            self.text
        );
        assert_eq!(self.body["success"], 0, "error envelope: {}", self.text);
        assert_eq!(
            self.body["code"], status,
            "error envelope code: {}",
            self.text
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message: {}",
            self.text
        );
        let errors = self.body["error"]
            .as_array()
            .unwrap_or_else(|| panic!("error array: {}", self.text));
        errors
            .iter()
            .map(|e| e.as_str().expect("error entries are strings").to_owned())
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn expect_success(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status, body: {}",
            self.text
        );
        assert_eq!(self.body["success"], 1, "success envelope: {}", self.text);
        &self.body["data"]
    }
}

pub fn new_partner() -> String {
    PartnerId::generate(1_800_000_000).to_string()
}

/// What a partner registers, for the tests that call the service directly: `base_url` with a
/// bearer `auth_key`.
pub fn bearer_integration(base_url: &str, auth_key: &str) -> seyaha::domain::NewIntegration {
    seyaha::domain::NewIntegration {
        base_url: seyaha::domain::BaseUrl::parse(base_url).unwrap(),
        auth_type: seyaha::domain::AuthType::Bearer,
        auth_key: seyaha::domain::AuthKey::parse(auth_key).unwrap(),
        handles_ticket_delivery: false,
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(test_settings()).await
    }

    pub async fn spawn_with(settings: Settings) -> Self {
        Self::spawn_on(settings, None).await
    }

    /// A server whose clock stands still until the test moves it ([`TestApp::clock`]): leases,
    /// the fallback debounce, delayed jobs and run expiry then happen exactly when the test says.
    pub async fn spawn_with_fake_clock(settings: Settings) -> Self {
        Self::spawn_on(settings, Some(FakeClock::new())).await
    }

    async fn spawn_on(settings: Settings, clock: Option<Arc<FakeClock>>) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let server = start(&data_dir, &settings, clock.as_ref()).await;
        Self {
            server: Some(server),
            data_dir,
            settings,
            clock,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// The fake clock of a server started with [`TestApp::spawn_with_fake_clock`].
    pub fn clock(&self) -> &FakeClock {
        self.clock
            .as_deref()
            .expect("this test server runs on the real clock: start it with spawn_with_fake_clock")
    }

    /// Stops the server and starts a new one on the same data dir (optionally reconfigured).
    pub async fn restart_with(&mut self, settings: Settings) {
        self.server
            .take()
            .expect("running")
            .stop()
            .await
            .expect("clean stop");
        self.settings = settings;
        self.server = Some(start(&self.data_dir, &self.settings, self.clock.as_ref()).await);
    }

    pub async fn restart(&mut self) {
        let settings = self.settings.clone();
        self.restart_with(settings).await;
    }

    /// Waits (polling, at most 15 s) until the background queue is quiet: nothing waiting,
    /// running or due by the clock. With the clock standing still, what has not happened by
    /// then will not happen, so tests can assert on absence without sleeping.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !self.server.as_ref().expect("running").is_settled() {
            assert!(
                std::time::Instant::now() < deadline,
                "the background queue did not settle"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server and opens its store directly, to look at what the API no longer shows.
    pub async fn stop_and_open_store(&mut self) -> seyaha::adapters::embedded::RedbStore {
        self.server
            .take()
            .expect("running")
            .stop()
            .await
            .expect("clean stop");
        seyaha::adapters::embedded::RedbStore::open(&self.data_dir.path().join("seyaha.redb"))
            .expect("the store opens")
    }

    /// Connections the server is serving now.
    pub fn open_connections(&self) -> usize {
        self.server.as_ref().expect("running").open_connections()
    }

    pub fn open_connections_from(&self, client: std::net::IpAddr) -> usize {
        self.server
            .as_ref()
            .expect("running")
            .open_connections_from(client)
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().expect("running").addr
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// `http://addr/api/v1/partner-integrations{suffix}`
    pub fn url(&self, suffix: &str) -> String {
        format!("http://{}{PREFIX}{suffix}", self.addr())
    }

    pub fn partner_token(&self, partner_id: &str) -> String {
        mint_token(
            &SecretString::from(JWT_SECRET),
            Role::Partner,
            partner_id,
            Duration::from_secs(600),
        )
    }

    pub fn admin_token(&self) -> String {
        mint_token(
            &SecretString::from(JWT_SECRET),
            Role::Admin,
            "admin",
            Duration::from_secs(600),
        )
    }

    /// Sends a request; `token` becomes `Authorization: Bearer`, `body` is sent as JSON.
    pub async fn call(
        &self,
        method: &str,
        suffix: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method.parse().unwrap(), self.url(suffix));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    pub async fn webhook(
        &self,
        id: &str,
        what: &str,
        secret: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.post(self.url(&format!("/{id}/{what}")));
        if let Some(secret) = secret {
            request = request.header("x-webhook-secret", secret);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    /// Registers an integration for `partner_id` and returns the create response's data.
    pub async fn register(
        &self,
        partner_id: &str,
        base_url: &str,
        auth_type: &str,
        auth_key: &str,
    ) -> Value {
        let body = json!({"base_url": base_url, "auth_type": auth_type, "auth_key": auth_key, "handles_ticket_delivery": false});
        let reply = self
            .call(
                "POST",
                "",
                Some(&self.partner_token(partner_id)),
                Some(body),
            )
            .await;
        reply.expect_success(201).clone()
    }

    pub async fn approve(&self, id: &str) -> Value {
        let reply = self
            .call(
                "PATCH",
                &format!("/admin/{id}"),
                Some(&self.admin_token()),
                Some(json!({"isApproved": true})),
            )
            .await;
        reply.expect_success(200).clone()
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request reaches the server");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, body, text }
}

async fn start(
    data_dir: &TempDir,
    settings: &Settings,
    clock: Option<&Arc<FakeClock>>,
) -> RunningServer {
    let settings = Settings {
        data_dir: data_dir.path().to_owned(),
        ..settings.clone()
    };
    let mut config = LocalConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), settings);
    if let Some(clock) = clock {
        config.clock = clock.clone();
    }
    seyaha_local::start(config)
        .await
        .expect("seyaha-local starts")
}

/// An approved integration registered by a fresh partner.
pub struct Registered {
    pub id: String,
    pub partner: String,
    pub secret: String,
}

impl TestApp {
    /// Registers `base_url` for a new partner with `auth_key`, and approves it.
    pub async fn approved(&self, base_url: &str, auth_key: &str) -> Registered {
        let partner = new_partner();
        let created = self.register(&partner, base_url, "bearer", auth_key).await;
        let id = created["_id"].as_str().unwrap().to_owned();
        self.approve(&id).await;
        Registered {
            id,
            partner,
            secret: created["webhook_secret"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn trigger(&self, integration: &Registered) -> Reply {
        self.webhook(
            &integration.id,
            "sync/trigger",
            Some(&integration.secret),
            None,
        )
        .await
    }

    pub async fn notify(&self, integration: &Registered, body: Value) -> Reply {
        self.webhook(
            &integration.id,
            "availability/notify",
            Some(&integration.secret),
            Some(body),
        )
        .await
    }

    pub async fn sync_log(&self, id: &str) -> Value {
        self.call(
            "GET",
            &format!("/{id}/sync-log"),
            Some(&self.admin_token()),
            None,
        )
        .await
        .expect_success(200)
        .clone()
    }

    pub async fn catalog(&self, id: &str) -> Value {
        self.call(
            "GET",
            &format!("/{id}/catalog"),
            Some(&self.admin_token()),
            None,
        )
        .await
        .expect_success(200)
        .clone()
    }

    /// Polls sync-log until `done` holds (background work), for at most 15 seconds.
    pub async fn wait_for_log(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.sync_log(id).await;
            if done(&log) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; sync-log: {log:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `done` (something the test can see without a request, like a fake's call count)
/// until it holds, failing with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The runs of a sync-log with this trigger.
pub fn runs_with_trigger<'a>(log: &'a Value, trigger: &str) -> Vec<&'a Value> {
    log["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter(|run| run["trigger"] == trigger)
                .collect()
        })
        .unwrap_or_default()
}

/// Active activities of a catalog view, by internalName.
pub fn active_names(catalog: &Value) -> Vec<String> {
    let mut names: Vec<String> = catalog["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["isActive"] == true)
        .map(|a| a["internalName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A new integration record as the store keeps it (version 1, no secret but the digest of
/// `secret`), created by `creator` at `created_ms`: for tests and benchmarks that write to a
/// store directly.
pub fn stored_record(
    created_ms: i64,
    creator: seyaha::domain::Role,
    secret: &seyaha::domain::WebhookSecret,
) -> seyaha::domain::IntegrationRecord {
    use seyaha::domain::{Integration, IntegrationId, IntegrationRecord, PartnerId, Timestamp};
    let now = Timestamp::from_unix_millis(created_ms);
    let new = bearer_integration("https://octo.example.com", "k");
    let integration = Integration::new(
        IntegrationId::generate(now.unix_seconds()),
        PartnerId::generate(now.unix_seconds()),
        &new,
        creator,
        now,
    );
    IntegrationRecord {
        integration,
        webhook_secret_digest: secret.digest(),
        previous_webhook_secret: None,
        delivery_secret_digest: None,
        credential_version: 0,
        sync_control: Default::default(),
        version: 1,
    }
}

/// Runs a test in a process of its own, for what is measured process-wide (peak RSS) while
/// the other tests of this binary run beside it. In that process it returns `true`: run the
/// test's body. In the calling one it runs this test binary again, filtered to this one test
/// (`module` is the caller's `module_path!()`), prints what it printed, fails if it failed, and
/// returns `false`.
pub async fn in_own_process(module: &str, test: &str) -> bool {
    const MARK: &str = "SEYAHA_TEST_OWN_PROCESS";
    // The harness names a test by its path below the crate root.
    let path = match module.split_once("::") {
        Some((_, below)) => format!("{below}::{test}"),
        None => test.to_owned(),
    };
    if std::env::var(MARK).as_deref() == Ok(path.as_str()) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let child = path.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([child.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(MARK, &child)
            .output()
    })
    .await
    .expect("the waiting task")
    .expect("the test binary runs again");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "{path} failed in its own process");
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{path} did not run in its own process"
    );
    false
}

/// The repository's root (this crate lives in `tests/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_owned()
}

/// The fields of `Settings` as `shared/src/settings.rs` declares them, each with the part of
/// the struct it stands in (`Both runtimes`, `AWS (...)`, `seyaha-local`): the one reader of
/// that declaration for the tests that check where a setting can be given.
pub fn settings_fields() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(repo_root().join("shared/src/settings.rs")).unwrap();
    let body = source
        .split("pub struct Settings {")
        .nth(1)
        .unwrap()
        .split("\n}")
        .next()
        .unwrap();
    let mut section = String::new();
    let mut fields = Vec::new();
    for line in body.lines().map(str::trim) {
        if let Some(heading) = line.strip_prefix("// ----") {
            section = heading.trim_end_matches('-').trim().to_owned();
        } else if let Some(field) = line
            .strip_prefix("pub ")
            .and_then(|rest| rest.split(':').next())
        {
            fields.push((section.clone(), field.to_owned()));
        }
    }
    fields
}

/// This process's peak resident memory so far, in MiB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}
