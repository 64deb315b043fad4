//! Large-catalog benchmark: prints numbers, asserts nothing. Run with `make bench-stream`
//! (`cargo bench -p seyaha-tests --bench stream_catalog`; product counts as arguments after
//! `--`, default `10000 100000`).
//!
//! A loopback supplier (the tests' fake, streaming a generated catalog one ~3.7 KB product at
//! a time, chunked, never holding it whole) serves `GET /products`; for each size:
//! 1. the streaming path alone: the OCTO client's streamed body through the parser (canonical
//!    hash, validation, mapping) and the per-activity diff, counting what it would write;
//! 2. the real engine on the embedded redb store: a first sync (every activity written in
//!    batches as it arrives), then the same catalog again (skipped by hash, nothing written).
//!
//! The supplier generates each product as it sends it, in this process: its own time is
//! printed first, and is part of every step's. Each prints the time, the throughput and the
//! process's peak RSS (`VmHWM` of
//! `/proc/self/status`, reset before each step through `/proc/self/clear_refs`) beside the
//! body size: memory should follow one product and the per-activity state, not the body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use seyaha::adapters::embedded::{FileSecretStore, InProcessQueue, RedbStore};
use seyaha::app::{self, Host};
use seyaha::domain::{
    AdminPatch, AuthKey, AuthType, BaseUrl, CatalogLimits, PartnerId, Role, Timestamp,
};
use seyaha::net::EndpointPolicy;
use seyaha::octo::{OctoClient, OctoCredentials};
use seyaha::ports::{Ports, StaticSigningKey, SystemClock};
use seyaha::settings::Settings;
use seyaha::sync::{CatalogItem, CatalogParser, Incoming, StreamingDiff, SyncResult};
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto};
use seyaha_tests::test_settings;

const PRODUCT_BYTES: usize = 3_700;

/// Resets the peak RSS to the current RSS (Linux: `5` to `clear_refs`). False when refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn settings() -> Settings {
    Settings {
        sync_request_budget_ms: 3_600_000,
        octo_timeout_secs: 60,
        octo_catalog_timeout_secs: 3_600,
        ..test_settings()
    }
}

fn line(step: &str, products: usize, elapsed: Duration, peak_before: f64) {
    let body_mib = (products * PRODUCT_BYTES) as f64 / (1024.0 * 1024.0);
    println!(
        "  {step:<34} {:>8.2} s  {:>6.1} MiB/s  peak RSS {:>6.1} MiB (before {peak_before:.1})  body {body_mib:.0} MiB",
        elapsed.as_secs_f64(),
        body_mib / elapsed.as_secs_f64(),
        seyaha_tests::peak_rss_mib(),
    );
}

async fn streaming_path(octo: &FakeOcto, products: usize) {
    let client = OctoClient::new(
        EndpointPolicy {
            allow_private_and_http: true,
        },
        settings().octo(),
    );
    let base_url = BaseUrl::parse(&octo.base_url()).unwrap();
    let credentials = OctoCredentials {
        auth_type: AuthType::Bearer,
        auth_key: AuthKey::parse(FAKE_KEY).unwrap(),
    };
    reset_peak();
    let before = seyaha_tests::peak_rss_mib();
    let started = Instant::now();
    let mut body = client.open_products(&base_url, &credentials).await.unwrap();
    let mut parser = CatalogParser::new(
        Timestamp::from_unix_millis(0),
        settings().sync_max_product_bytes,
    );
    let mut diff = StreamingDiff::new(Vec::new(), CatalogLimits::default());
    let (mut items, mut to_write, mut rejected) = (Vec::new(), 0usize, 0usize);
    while let Some(chunk) = body.chunk().await.unwrap() {
        parser.feed(&chunk, &mut items).unwrap();
        for item in items.drain(..) {
            match item {
                CatalogItem::Accepted {
                    activity, bytes, ..
                } => {
                    to_write +=
                        usize::from(matches!(diff.incoming(activity, bytes), Incoming::Write(_)))
                }
                CatalogItem::Rejected(_) => rejected += 1,
            }
        }
    }
    let hash = parser.finish().unwrap();
    let elapsed = started.elapsed();
    line("stream + parse + hash + diff", products, elapsed, before);
    println!(
        "  {:<34} {to_write} to write (all new), {rejected} rejected, payload hash {hash}",
        ""
    );
}

async fn engine_on_redb(octo: &FakeOcto, products: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("seyaha.redb")).unwrap();
    let (queue, _receiver) = InProcessQueue::new(Arc::new(SystemClock));
    let ports = Ports {
        integrations: Arc::new(store.clone()),
        catalog: Arc::new(store.clone()),
        runs: Arc::new(store),
        secrets: Arc::new(FileSecretStore::open(&dir.path().join("secrets")).unwrap()),
        signing_key: Arc::new(StaticSigningKey(seyaha_tests::JWT_SECRET.into())),
        rate_limiter: Arc::new(seyaha::adapters::embedded::InMemoryRateLimiter::default()),
        queue: Arc::new(queue),
        clock: Arc::new(SystemClock),
    };
    let service = Arc::clone(app::build(ports, &settings(), Host::Local).service());
    let new = seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY);
    let created = service
        .create(PartnerId::generate(1_800_000_000), new, Role::Admin)
        .await
        .unwrap();
    let (id, secret) = (created.integration.id, created.webhook_secret);
    service
        .admin_update(id, AdminPatch::approval())
        .await
        .unwrap();
    for step in [
        "engine on redb: first sync",
        "engine on redb: unchanged (skip)",
    ] {
        reset_peak();
        let before = seyaha_tests::peak_rss_mib();
        let webhook = service
            .authenticate_webhook(id, Some(secret.expose()))
            .await
            .unwrap();
        let started = Instant::now();
        let result = service.trigger_sync(webhook).await.unwrap();
        let elapsed = started.elapsed();
        let SyncResult::Done {
            counts, skipped, ..
        } = result
        else {
            panic!("{result:?}")
        };
        line(step, products, elapsed, before);
        println!(
            "  {:<34} created {} unchanged {} skipped {skipped}",
            "", counts.created, counts.unchanged
        );
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    if !reset_peak() {
        println!("(cannot reset the peak RSS here: each figure is the process's peak so far)");
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for products in sizes {
            let octo = FakeOcto::start().await;
            octo.set_behaviour(Behaviour::Streamed {
                products,
                product_bytes: PRODUCT_BYTES,
                pause: Duration::ZERO,
            });
            println!(
                "{products} products of ~{PRODUCT_BYTES} bytes, streamed from a loopback supplier:"
            );
            // The supplier runs in this process: what generating the products costs it alone.
            let started = Instant::now();
            let generated: usize = (0..products)
                .map(|i| seyaha_tests::fake_octo::streamed_product(i, PRODUCT_BYTES).len())
                .sum();
            println!(
                "  {:<34} {:>8.2} s  ({generated} bytes; part of every step's time below)",
                "supplier generating them alone",
                started.elapsed().as_secs_f64()
            );
            streaming_path(&octo, products).await;
            engine_on_redb(&octo, products).await;
        }
    });
}
