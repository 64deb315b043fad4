//! The fault-and-load benchmark (`make bench-load`). Prints numbers; asserts nothing.
//!
//! seyaha-local (the release binary) runs on loopback against a fake OCTO supplier that
//! randomly answers 500, garbage and slowly. 50 integrations; 64 concurrent clients for
//! `SEYAHA_BENCH_SECS` (default 60) send availability notifies (each client owns its slots and
//! sends increasing vacancies), sync triggers and connection tests. A second run does the same
//! while seyaha-local is SIGKILLed and restarted every 15 s; clients retry what failed while it
//! was down, as a partner platform would. Beside it, the floor: the same clients on a route
//! that does no store work (the demo supplier's `/supplier`).
//!
//! Reported: requests per second per route, p50/p99/max latency, 5xx answers, lost updates
//! (slots whose stored vacancies are below the last value acknowledged with 200 `updated: true`), syncs
//! requested (trigger acknowledged) against integrations ending idle with the catalog, and
//! seyaha-local's peak RSS.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use secrecy::SecretString;
use serde_json::{Value, json};
use seyaha::api::PREFIX;
use seyaha::api::auth::mint_token;
use seyaha::domain::{PartnerId, Role};

const INTEGRATIONS: usize = 50;
const CLIENTS: usize = 64;
const SLOTS_PER_CLIENT: usize = 8;
const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123456789abcdef";
const PRODUCTS: usize = 20;
const KEY: &str = "bench-octo-key";

fn random(below: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("randomness");
    u64::from_le_bytes(bytes) % below
}

/// The fake supplier: a fixed catalog; `faulty` makes 20% of answers fail (500, garbage, slow).
async fn supplier(faulty: Arc<AtomicBool>) -> String {
    let catalog = seyaha_local::octo_samples::generated_catalog(PRODUCTS, 2);
    let body = Arc::new(serde_json::to_vec(&catalog).unwrap());
    let app = Router::new().route(
        "/octo/products",
        axum::routing::get(move || {
            let (body, faulty) = (Arc::clone(&body), Arc::clone(&faulty));
            async move {
                let roll = if faulty.load(Ordering::Relaxed) {
                    random(100)
                } else {
                    99
                };
                match roll {
                    0..=6 => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "supplier exploded").into_response()
                    }
                    7..=13 => {
                        ([("content-type", "application/json")], "<html>not json").into_response()
                    }
                    14..=19 => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        (
                            [("content-type", "application/json")],
                            body.as_ref().clone(),
                        )
                            .into_response()
                    }
                    _ => (
                        [("content-type", "application/json")],
                        body.as_ref().clone(),
                    )
                        .into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/octo", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

struct Server {
    child: Child,
    peak_rss_kib: Arc<AtomicU64>,
}

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    root.join("target/release/seyaha-local")
}

fn start(port: u16, data_dir: &Path) -> Server {
    let mut child = Command::new(binary())
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(data_dir)
        .env("SEYAHA_JWT_SECRET", JWT_SECRET)
        .env("SEYAHA_WEBHOOK_RATE_PER_MINUTE", "0")
        .env("SEYAHA_OCTO_TIMEOUT_SECS", "5")
        // A short lease, so syncs cut off by a kill are finished within the run's settling time.
        .env("SEYAHA_SYNC_LEASE_SECS", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run `cargo build --release -p seyaha-local` first (make bench-load does)");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("export ADMIN_TOKEN=") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "seyaha-local did not start"
        );
    }
    std::thread::spawn(move || for _ in stdout.lines() {});
    let peak_rss_kib = Arc::new(AtomicU64::new(0));
    let (pid, peak) = (child.id(), Arc::clone(&peak_rss_kib));
    std::thread::spawn(move || {
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak.fetch_max(kib, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    Server {
        child,
        peak_rss_kib,
    }
}

impl Server {
    fn kill(mut self) -> u64 {
        self.child.kill().ok();
        self.child.wait().ok();
        self.peak_rss_kib.load(Ordering::Relaxed)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone)]
struct Integration {
    id: String,
    secret: String,
    partner_token: String,
}

#[derive(Default)]
struct Stats {
    latencies: HashMap<&'static str, Vec<Duration>>,
    /// 5xx answers other than the contract's 502 for a failing partner endpoint.
    server_errors: u64,
    /// Sync triggers answered 502 because the (faulty) supplier failed: the documented answer.
    partner_failures: u64,
    retried: u64,
}

/// One partner platform: its slots' last acknowledged vacancies, and whether its last trigger was acknowledged.
struct Client {
    integration: Integration,
    slots: Vec<String>,
    vacancies: Vec<u64>,
}

async fn send(
    request: impl Fn() -> reqwest::RequestBuilder,
    stats: &Mutex<Stats>,
    route: &'static str,
    retry: bool,
    stop: &AtomicBool,
) -> Option<(u16, Value)> {
    loop {
        let started = Instant::now();
        match request().send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                let mut stats = stats.lock().unwrap();
                stats
                    .latencies
                    .entry(route)
                    .or_default()
                    .push(started.elapsed());
                if status == 502 && route == "sync trigger" {
                    stats.partner_failures += 1;
                } else if status >= 500 {
                    stats.server_errors += 1;
                }
                return Some((status, body));
            }
            // The server is down (being restarted): a partner platform retries.
            Err(_) if retry && !stop.load(Ordering::Relaxed) => {
                stats.lock().unwrap().retried += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => return None,
        }
    }
}

fn report(title: &str, stats: &Stats, secs: f64) {
    println!("{title}");
    let mut routes: Vec<_> = stats.latencies.iter().collect();
    routes.sort_by_key(|(route, _)| *route);
    for (route, latencies) in routes {
        let mut sorted = latencies.clone();
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
        println!(
            "  {route:<16} {:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>8.2} ms   ({} requests)",
            sorted.len() as f64 / secs,
            at(0.5),
            at(0.99),
            at(1.0),
            sorted.len()
        );
    }
    println!(
        "  5xx answers: {} (besides {} triggers answered 502 for the faulty supplier, as the contract says)   requests retried while the server was down: {}",
        stats.server_errors, stats.partner_failures, stats.retried
    );
}

/// What the clients send: only notifies (beside the floor), or the mixed load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mix {
    NotifyOnly,
    Mixed,
}

impl Mix {
    /// Each phase writes its own slots, so the lost-update check of one is not masked by another.
    fn tag(self) -> &'static str {
        match self {
            Mix::NotifyOnly => "alone",
            Mix::Mixed => "mixed",
        }
    }
}

async fn run(
    base: &str,
    integrations: &[Integration],
    mix: Mix,
    secs: u64,
    kill_every: Option<(u16, PathBuf)>,
    server: &mut Option<Server>,
    peak: &mut u64,
) -> (Stats, Vec<Client>, u64) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let stats = Arc::new(Mutex::new(Stats::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let triggers_acked = Arc::new(AtomicU64::new(0));
    let retry = kill_every.is_some();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let integration = integrations[c % INTEGRATIONS].clone();
            let (http, stats, stop, base, triggers) = (http.clone(), Arc::clone(&stats), Arc::clone(&stop), base.to_owned(), Arc::clone(&triggers_acked));
            tokio::spawn(async move {
                let slots: Vec<String> = (0..SLOTS_PER_CLIENT).map(|s| format!("{}-client-{c}-slot-{s}", mix.tag())).collect();
                let mut client = Client { integration, vacancies: vec![0; slots.len()], slots };
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let roll = if mix == Mix::NotifyOnly { 0 } else { random(100) };
                    let i = &client.integration;
                    if roll < 90 {
                        let s = (sent as usize) % client.slots.len();
                        sent += 1;
                        let vacancies = sent;
                        let body = json!({"productId": "product_1", "optionId": "DEFAULT", "availabilityId": client.slots[s],
                                          "localDateTimeStart": "2030-07-15T10:00:00+04:00", "status": "LIMITED", "vacancies": vacancies, "capacity": 1_000_000});
                        let url = format!("{base}/{}/availability/notify", i.id);
                        let request = || http.post(&url).header("x-webhook-secret", &i.secret).json(&body);
                        // Acknowledged as stored: 200 with `updated: true` (`false` means the product was
                        // unknown at that moment, e.g. deactivated while the supplier was DOWN).
                        if let Some((200, body)) = send(request, &stats, "notify", retry, &stop).await
                            && body["data"]["updated"] == true
                        {
                            client.vacancies[s] = vacancies;
                        }
                    } else if roll < 95 {
                        let url = format!("{base}/{}/sync/trigger", i.id);
                        let request = || http.post(&url).header("x-webhook-secret", &i.secret);
                        if let Some((200 | 202, _)) = send(request, &stats, "sync trigger", retry, &stop).await {
                            triggers.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        let url = format!("{base}/me/test-connection");
                        let request = || http.post(&url).bearer_auth(&i.partner_token);
                        send(request, &stats, "test-connection", retry, &stop).await;
                    }
                }
                client
            })
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        match &kill_every {
            Some((port, data_dir)) => {
                tokio::time::sleep(
                    Duration::from_secs(15)
                        .min(Duration::from_secs(secs).saturating_sub(started.elapsed())),
                )
                .await;
                if started.elapsed() < Duration::from_secs(secs) {
                    *peak = (*peak).max(server.take().unwrap().kill());
                    *server = Some(start(*port, data_dir));
                }
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut finished = Vec::new();
    for client in clients {
        finished.push(client.await.unwrap());
    }
    let stats = Arc::try_unwrap(stats).ok().unwrap().into_inner().unwrap();
    (stats, finished, triggers_acked.load(Ordering::Relaxed))
}

/// Slots whose stored vacancies are below the last value acknowledged as stored.
async fn lost_updates(base: &str, admin: &str, clients: &[Client]) -> (u64, u64) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut stored: HashMap<String, u64> = HashMap::new();
    for integration in clients
        .iter()
        .map(|c| &c.integration.id)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{base}/{integration}/catalog?kind=slots&limit=500");
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&slots_cursor={cursor}"));
            }
            let page: Value = http
                .get(url)
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for slot in page["data"]["slots"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                stored.insert(
                    slot["availabilityId"].as_str().unwrap().to_owned(),
                    slot["vacancies"].as_u64().unwrap_or(0),
                );
            }
            match page["data"]["next_cursor"]["slots"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    let (mut checked, mut lost) = (0, 0);
    for client in clients {
        for (slot, acked) in client.slots.iter().zip(&client.vacancies) {
            if *acked == 0 {
                continue;
            }
            checked += 1;
            // Vacancies only grow per slot, so a stored value below the last acknowledged one
            // (or none) is a lost update. A higher one is a later write whose answer was lost
            // to a kill: stored, just not acknowledged.
            if stored.get(slot).is_none_or(|stored| stored < acked) {
                lost += 1;
            }
        }
    }
    (checked, lost)
}

/// After the load: the supplier answers normally; every integration should end idle with the
/// catalog (all products active) once its requested syncs have run.
async fn settled_syncs(
    base: &str,
    admin: &str,
    integrations: &[Integration],
    faulty: &AtomicBool,
) -> (usize, usize) {
    faulty.store(false, Ordering::Relaxed);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (mut complete, mut unsettled) = (0, Vec::new());
        for i in integrations {
            // A trigger now stands in for the partner's retry after the faults; it is answered
            // 200 (synced), or 202 when a sync is still running.
            http.post(format!("{base}/{}/sync/trigger", i.id))
                .header("x-webhook-secret", &i.secret)
                .send()
                .await
                .ok();
            let me: Value = http
                .get(format!("{base}/admin/{}", i.id))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let catalog: Value = http
                .get(format!("{base}/{}/catalog?kind=activities&limit=500", i.id))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let active = catalog["data"]["activities"]
                .as_array()
                .map(|a| a.iter().filter(|a| a["isActive"] == true).count())
                .unwrap_or(0);
            if me["data"]["sync"]["status"] == "idle" && active == PRODUCTS {
                complete += 1;
            } else {
                unsettled.push((i.id.clone(), me["data"]["sync"].clone(), active));
            }
        }
        if complete == integrations.len() || Instant::now() > deadline {
            for (id, sync, active) in &unsettled {
                println!(
                    "  not settled: {id}: sync {sync}, {active} of {PRODUCTS} products active"
                );
            }
            return (complete, integrations.len());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn floor(base_url: &str, secs: u64) -> f64 {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, stop, count, url) = (
                http.clone(),
                Arc::clone(&stop),
                Arc::clone(&count),
                format!("{base_url}/demo/octo/supplier"),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(response) = http
                        .get(&url)
                        .header("authorization", seyaha_local::demo::DEMO_OCTO_KEY)
                        .send()
                        .await
                    {
                        response.bytes().await.ok();
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.ok();
    }
    count.load(Ordering::Relaxed) as f64 / secs as f64
}

async fn register(base: &str, admin: &str, supplier: &str) -> Vec<Integration> {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let secret = SecretString::from(JWT_SECRET);
    let mut integrations = Vec::new();
    for n in 0..INTEGRATIONS {
        let partner = PartnerId::generate(1_800_000_000 + n as i64).to_string();
        let body = json!({"partner_id": partner, "base_url": supplier, "auth_type": "bearer", "auth_key": KEY, "handles_ticket_delivery": false});
        let created: Value = http
            .post(format!("{base}/admin/create"))
            .bearer_auth(admin)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["data"]["_id"].as_str().expect("created").to_owned();
        let webhook_secret = created["data"]["webhook_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        // A first sync, so the products are known and notifies update slots.
        http.post(format!("{base}/{id}/sync/trigger"))
            .header("x-webhook-secret", &webhook_secret)
            .send()
            .await
            .unwrap();
        let partner_token = mint_token(&secret, Role::Partner, &partner, Duration::from_secs(3600));
        integrations.push(Integration {
            id,
            secret: webhook_secret,
            partner_token,
        });
    }
    integrations
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("SEYAHA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let faulty = Arc::new(AtomicBool::new(false));
    let supplier_url = supplier(Arc::clone(&faulty)).await;
    let admin = mint_token(
        &SecretString::from(JWT_SECRET),
        Role::Admin,
        "bench",
        Duration::from_secs(3600),
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "fault-and-load benchmark: seyaha-local (release), {INTEGRATIONS} integrations, {CLIENTS} clients, {secs} s per run, {cores} cores\n"
    );

    for (title, kills) in [
        ("run 1: load with a faulty supplier", false),
        ("run 2: the same, SIGKILL and restart every 15 s", true),
    ] {
        let data_dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let base = format!("{base_url}{PREFIX}");
        let mut server = Some(start(port, data_dir.path()));
        let integrations = register(&base, &admin, &supplier_url).await;
        let mut peak = 0;
        if !kills {
            let floor_secs = (secs / 6).max(5);
            println!(
                "floor: GET /demo/octo/supplier (no store work), {CLIENTS} clients, {floor_secs} s: {:.0} req/s\n",
                floor(&base_url, floor_secs).await
            );
            let (stats, _, _) = run(
                &base,
                &integrations,
                Mix::NotifyOnly,
                floor_secs,
                None,
                &mut server,
                &mut peak,
            )
            .await;
            report(
                &format!(
                    "notify alone (the floor's counterpart), {CLIENTS} clients, {floor_secs} s"
                ),
                &stats,
                floor_secs as f64,
            );
            println!();
        }
        faulty.store(true, Ordering::Relaxed);
        let kill_every = kills.then(|| (port, data_dir.path().to_owned()));
        let (stats, clients, triggers) = run(
            &base,
            &integrations,
            Mix::Mixed,
            secs,
            kill_every,
            &mut server,
            &mut peak,
        )
        .await;
        report(title, &stats, secs as f64);
        let (checked, lost) = lost_updates(&base, &admin, &clients).await;
        println!(
            "  lost updates: {lost} of {checked} slots (stored vacancies below the last value acknowledged as stored)"
        );
        let (complete, all) = settled_syncs(&base, &admin, &integrations, &faulty).await;
        println!(
            "  syncs: {triggers} triggers acknowledged; {complete} of {all} integrations end idle with the supplier's catalog"
        );
        peak = peak.max(server.take().unwrap().kill());
        println!(
            "  peak RSS of seyaha-local: {:.1} MiB\n",
            peak as f64 / 1024.0
        );
    }
}
