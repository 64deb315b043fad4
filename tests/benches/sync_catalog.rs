//! Sync benchmark: prints numbers, asserts nothing. Run with `make bench`
//! (`cargo bench -p seyaha-tests --bench sync_catalog`).
//!
//! 1. Time: parse + RFC 8785 canonical hash + diff of a 10,000-product catalog (3 options x 2
//!    units each), next to a plain `serde_json` parse of the same bytes (target: <= 1.5x).
//! 2. Peak heap while doing it, as a multiple of the payload size (target: <= 3x).
//! 3. Catalog writes made by the real engine on a redb store for a first sync, an unchanged
//!    catalog (target 0), one product changed (target 1) and one removed (target 1); and a
//!    `PRODUCT_UPDATE` for one changed product (target: one product fetched, at most one
//!    activity written), timed beside the full sync of the same change.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use seyaha::adapters::embedded::{FileSecretStore, InProcessQueue, RedbStore};
use seyaha::app::{self, Host};
use seyaha::domain::{ActivityState, AdminPatch, PartnerId, Role, Timestamp};
use seyaha::ports::{Ports, StaticSigningKey, SystemClock};
use seyaha::sync::{SyncResult, diff_catalog, parse_catalog};
use seyaha_local::octo_samples::generated_catalog;
use seyaha_tests::hooked::{CatalogCall, HookedCatalog};
use seyaha_tests::test_settings;

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size > layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PRODUCTS: usize = 10_000;
const OPTIONS: usize = 3;
const ROUNDS: usize = 7;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(rounds: usize, mut work: impl FnMut()) -> Duration {
    work(); // warm-up
    median(
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                work();
                start.elapsed()
            })
            .collect(),
    )
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let catalog = generated_catalog(PRODUCTS, OPTIONS);
    let body = serde_json::to_vec(&catalog).unwrap();
    drop(catalog);
    println!(
        "catalog: {PRODUCTS} products x {OPTIONS} options x 2 units, {:.1} MiB",
        mib(body.len())
    );

    // Stored state = the same catalog with product 0 changed, so the diff does real work.
    let now = Timestamp::now();
    let mut previous: Value = serde_json::from_slice(&body).unwrap();
    previous[0]["title"] = Value::from("changed");
    let stored: Vec<ActivityState> = parse_catalog(&serde_json::to_vec(&previous).unwrap(), now)
        .unwrap()
        .activities
        .into_iter()
        .map(|a| ActivityState {
            stored_bytes: a.stored_bytes(),
            internal_name: a.internal_name,
            content_hash: a.content_hash,
            is_active: true,
            updated_at: now,
        })
        .collect();
    drop(previous);

    let plain = time(ROUNDS, || {
        let value: Value = serde_json::from_slice(&body).unwrap();
        std::hint::black_box(value);
    });
    let ours = time(ROUNDS, || {
        let parsed = parse_catalog(&body, now).unwrap();
        let diff = diff_catalog(parsed.activities, stored.clone(), 0);
        std::hint::black_box((parsed.payload_hash, diff));
    });
    println!(
        "plain serde_json::from_slice::<Value>: {:>8.1} ms (median of {ROUNDS})",
        plain.as_secs_f64() * 1e3
    );
    println!(
        "parse + canonical hash + diff:        {:>8.1} ms (median of {ROUNDS})",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "ratio: {:.2}x (target <= 1.5x)",
        ours.as_secs_f64() / plain.as_secs_f64()
    );
    // Why the streaming writer: the same hashing through a Value and a JCS crate.
    let via_crate = time(3, || {
        let products: Vec<Value> = serde_json::from_slice(&body).unwrap();
        let mut canonical = Vec::new();
        for product in &products {
            canonical.clear();
            serde_json_canonicalizer::to_writer(product, &mut canonical).unwrap();
            std::hint::black_box(&canonical);
        }
    });
    println!(
        "  (Value + serde_json_canonicalizer, hashing not even included: {:.1} ms = {:.2}x)",
        via_crate.as_secs_f64() * 1e3,
        via_crate.as_secs_f64() / plain.as_secs_f64()
    );

    // Peak heap: the body is held (as during a real sync) and the stored states are what the
    // store returns; measure from there.
    let stored_for_memory = stored.clone();
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let parsed = parse_catalog(&body, now).unwrap();
    let diff = diff_catalog(parsed.activities, stored_for_memory, 0);
    let peak_work = PEAK.load(Ordering::Relaxed) - baseline;
    std::hint::black_box(diff);
    let peak_with_body = peak_work + body.len();
    println!(
        "peak heap: {:.1} MiB above the held body; with the body {:.1} MiB = {:.2}x the payload (target <= 3x)",
        mib(peak_work),
        mib(peak_with_body),
        peak_with_body as f64 / body.len() as f64
    );
    let value_peak = {
        let baseline = LIVE.load(Ordering::Relaxed);
        PEAK.store(baseline, Ordering::Relaxed);
        let value: Value = serde_json::from_slice(&body).unwrap();
        let peak = PEAK.load(Ordering::Relaxed) - baseline;
        drop(value);
        peak
    };
    println!(
        "  (for comparison, a serde_json::Value of the payload alone takes {:.1} MiB = {:.2}x)",
        mib(value_peak),
        value_peak as f64 / body.len() as f64
    );

    writes(body);
}

/// How a scenario edits the served catalog.
type CatalogChange = Box<dyn Fn(&mut Value)>;

/// Calls the served supplier received: `GET /products`, `GET /products/{id}`.
static CATALOG_FETCHES: AtomicUsize = AtomicUsize::new(0);
static PRODUCT_FETCHES: AtomicUsize = AtomicUsize::new(0);

/// One product's body by id, for `GET /octo/products/{id}` (kept apart from the catalog so the
/// fake answers in microseconds, as a real supplier's product endpoint would).
type ProductBodies = Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>;

/// Serves a settable body as `GET /octo/products` on loopback, and the products set in
/// `products` as `GET /octo/products/{id}`.
async fn serve(body: Arc<std::sync::Mutex<Vec<u8>>>, products: ProductBodies) -> String {
    let app = axum::Router::new()
        .route(
            "/octo/products",
            axum::routing::get(move || {
                CATALOG_FETCHES.fetch_add(1, Ordering::Relaxed);
                let body = body.lock().unwrap().clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        )
        .route(
            "/octo/products/{id}",
            axum::routing::get(
                move |axum::extract::Path(id): axum::extract::Path<String>| {
                    PRODUCT_FETCHES.fetch_add(1, Ordering::Relaxed);
                    let product = products.lock().unwrap().get(&id).cloned();
                    async move {
                        match product {
                            Some(product) => axum::response::IntoResponse::into_response((
                                [("content-type", "application/json")],
                                product,
                            )),
                            None => axum::response::IntoResponse::into_response(
                                axum::http::StatusCode::NOT_FOUND,
                            ),
                        }
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/octo", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn writes(body: Vec<u8>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("seyaha.redb")).unwrap();
        // Counts what the engine asks the store to write.
        let writes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&writes);
        let catalog = Arc::new(HookedCatalog::new(store.clone(), move |call, _| {
            if let CatalogCall::PutActivities(n) | CatalogCall::SetActive(n) = call {
                counter.fetch_add(n, Ordering::Relaxed);
            }
            Ok(())
        }));
        let (queue, _receiver) = InProcessQueue::new(Arc::new(SystemClock));
        let ports = Ports {
            integrations: Arc::new(store.clone()),
            catalog: catalog.clone(),
            runs: Arc::new(store),
            secrets: Arc::new(FileSecretStore::open(&dir.path().join("secrets")).unwrap()),
            signing_key: Arc::new(StaticSigningKey(seyaha_tests::JWT_SECRET.into())),
            rate_limiter: Arc::new(seyaha::adapters::embedded::InMemoryRateLimiter::default()),
            queue: Arc::new(queue),
            clock: Arc::new(SystemClock),
        };
        let settings = seyaha::settings::Settings {
            sync_request_budget_ms: 600_000,
            octo_timeout_secs: 60,
            octo_max_response_bytes: 50 * 1024 * 1024,
            ..test_settings()
        };
        let service = Arc::clone(app::build(ports, &settings, Host::Local).service());

        let served = Arc::new(std::sync::Mutex::new(body.clone()));
        let product_bodies: ProductBodies = Arc::default();
        let base = serve(Arc::clone(&served), Arc::clone(&product_bodies)).await;
        let new = seyaha_tests::bearer_integration(&base, "bench");
        let created = service.create(PartnerId::generate(1_800_000_000), new, Role::Admin).await.unwrap();
        let (id, secret) = (created.integration.id, created.webhook_secret);
        service.admin_update(id, AdminPatch::approval()).await.unwrap();

        let mut value: Value = serde_json::from_slice(&body).unwrap();
        let scenarios: [(&str, &str, Option<CatalogChange>); 4] = [
            ("first sync", "10000", None),
            ("unchanged catalog", "0", None),
            ("one product changed", "1", Some(Box::new(|v: &mut Value| v[42]["title"] = Value::from("Product 42, renamed")))),
            ("one product removed", "1", Some(Box::new(|v: &mut Value| {
                v.as_array_mut().unwrap().remove(7);
            }))),
        ];
        println!("catalog writes by the engine on redb:");
        for (name, target, change) in scenarios {
            if let Some(change) = change {
                change(&mut value);
                *served.lock().unwrap() = serde_json::to_vec(&value).unwrap();
            }
            writes.store(0, Ordering::Relaxed);
            let webhook = service.authenticate_webhook(id, Some(secret.expose())).await.unwrap();
            let started = Instant::now();
            let result = service.trigger_sync(webhook).await.unwrap();
            let elapsed = started.elapsed();
            let SyncResult::Done { counts, skipped, .. } = result else { panic!("{result:?}") };
            println!(
                "  {name:<20} writes {:>5} (target {target:>5})  created {} updated {} unchanged {} deactivated {} skipped {skipped}  {:.0} ms",
                writes.load(Ordering::Relaxed),
                counts.created,
                counts.updated,
                counts.unchanged,
                counts.deactivated,
                elapsed.as_secs_f64() * 1e3
            );
        }

        // PRODUCT_UPDATE: the partner changed one product and says so; Seyaha fetches that one.
        let changed = value.as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "product_4242").unwrap();
        changed["title"] = Value::from("Product 4242, renamed");
        product_bodies.lock().unwrap().insert("product_4242".into(), serde_json::to_vec(changed).unwrap());
        *served.lock().unwrap() = serde_json::to_vec(&value).unwrap();
        writes.store(0, Ordering::Relaxed);
        let (catalog_before, products_before) = (CATALOG_FETCHES.load(Ordering::Relaxed), PRODUCT_FETCHES.load(Ordering::Relaxed));
        let job = seyaha::ports::SyncJob::product(id, "product_4242".into());
        let started = Instant::now();
        let result = service.handle_job(&job).await.unwrap();
        let elapsed = started.elapsed();
        let SyncResult::Done { counts, .. } = result else { panic!("{result:?}") };
        println!(
            "  {:<20} writes {:>5} (target <= 1)  updated {}  fetched {} product(s) and {} catalog(s) (target 1 and 0)  {:.1} ms",
            "PRODUCT_UPDATE",
            writes.load(Ordering::Relaxed),
            counts.updated,
            PRODUCT_FETCHES.load(Ordering::Relaxed) - products_before,
            CATALOG_FETCHES.load(Ordering::Relaxed) - catalog_before,
            elapsed.as_secs_f64() * 1e3
        );
    });
}
