//! Capacity benchmark (`make bench-capacity`): prints numbers, asserts nothing.
//!
//! The AWS adapters run against moto with a DynamoDB client whose every call an SDK
//! interceptor records (`seyaha_tests::capacity`): operation, table or index, partition key,
//! item bytes. For each operation the service offers it prints the DynamoDB requests by API,
//! the read and write units (index copies included, from the table's projections) and the
//! bytes sent and received. Then a marketplace-sized run: 10,000 live integrations, a nightly
//! fan-out over all of them and a notify mix, with the share of write units on the hottest
//! partition key of the table and of each index (the target: no key above 1/16).
//!
//! SQS and Secrets Manager calls are not recorded here (each job is one SendMessage, each
//! credential read is cached); the docs' cost table adds them by design.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use seyaha::adapters::stored::JobMessage;
use seyaha::app::{self, Runtime};
use seyaha::domain::{
    Activity, AdminPatch, AvailabilityUpdate, ContentHash, ExternalSync, IntegrationId, IntegrationRecord, LocalDateTime, OctoEvent,
    PartnerId, Role, RunTrigger, SlotStatus, Timestamp, Variation, VariationPricing, VariationSync, WebhookSecret,
};
use seyaha::ports::{CatalogStore, JobWork, SyncJob, SystemClock};
use seyaha::service::IntegrationService;
use seyaha::settings::Settings;
use seyaha::sync::{AvailabilityPull, parse_date};
use seyaha_tests::aws::{resources, sdk_config};
use seyaha_tests::capacity::{Ledger, Recorder, recorded_ports, seyaha_table};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::test_settings;

const MARKETPLACE: usize = 10_000;
const NOTIFY_MIX: usize = 500;

fn print_header() {
    println!("{:<34} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  requests", "operation", "RRU", "WRU", "table", "indexes", "sent KB", "read KB");
}

fn print_row(name: &str, ledger: &Ledger) {
    let total = ledger.total();
    let table = ledger.target("table").write_units;
    let requests: Vec<String> = ledger.requests.iter().map(|(op, n)| format!("{op} {n}")).collect();
    println!(
        "{name:<34} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1}  {}",
        total.read_units,
        total.write_units,
        table,
        total.write_units - table,
        ledger.request_bytes as f64 / 1024.0,
        ledger.response_items_bytes as f64 / 1024.0,
        requests.join(", ")
    );
}

/// Runs `operation` and prints what it cost.
async fn measure<F: std::future::Future<Output = ()>>(recorder: &Recorder, name: &str, operation: F) -> Ledger {
    recorder.take();
    operation.await;
    let mut ledger = Ledger::new(seyaha_table());
    ledger.book(&recorder.take());
    print_row(name, &ledger);
    ledger
}

fn update(product: &str, option: &str, day: u32, hour: u32) -> AvailabilityUpdate {
    let start = format!("2099-07-{:02}T{hour:02}:00:00+03:00", day % 28 + 1);
    AvailabilityUpdate {
        product_id: product.into(),
        option_id: option.into(),
        availability_id: start.clone(),
        local_date_time_start: LocalDateTime::parse(&start).unwrap(),
        status: Some(SlotStatus::Limited),
        vacancies: Some(3),
        capacity: Some(20),
    }
}

async fn webhook(service: &IntegrationService, id: IntegrationId, secret: &WebhookSecret) -> seyaha::service::AuthenticatedWebhook {
    service.authenticate_webhook(id, Some(secret.expose())).await.unwrap()
}

async fn operations(config: &aws_config::SdkConfig) {
    let resources = resources(config).await;
    // The default cap on a partner's answer, not the tests' 1 MiB: the catalogs here are larger.
    let settings = resources.settings(Settings { octo_max_response_bytes: Settings::default().octo_max_response_bytes, ..test_settings() });
    let recorder = Recorder::default();
    let (ports, _) = recorded_ports(config, &settings, Arc::new(SystemClock), &recorder);
    let app = app::build(ports, &settings, Runtime::Lambda);
    let service = app.service();
    let octo = FakeOcto::start().await;
    let mut catalog = seyaha_local::octo_samples::generated_catalog(500, 3);
    octo.set_catalog(catalog.clone());
    let big = FakeOcto::start().await;
    big.set_catalog(seyaha_local::octo_samples::generated_catalog(1_000, 1));

    println!("\n## One operation each (DynamoDB units; index copies included)\n");
    print_header();
    let mut created = None;
    measure(&recorder, "register (create)", async {
        let new = seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY);
        created = Some(service.create(PartnerId::generate(1_800_000_000), new, Role::Partner).await.unwrap());
    })
    .await;
    let created = created.unwrap();
    let id = created.integration.id;
    let secret = created.webhook_secret;
    measure(&recorder, "approve", async {
        service.admin_update(id, AdminPatch::approval()).await.unwrap();
    })
    .await;
    measure(&recorder, "trigger, first sync of 500", async {
        let result = service.trigger_sync(webhook(service, id, &secret).await).await.unwrap();
        assert!(matches!(result, seyaha::sync::SyncResult::Done { .. }), "the first sync failed: {result:?}");
    })
    .await;
    measure(&recorder, "trigger, unchanged", async {
        service.trigger_sync(webhook(service, id, &secret).await).await.unwrap();
    })
    .await;
    for product in catalog.as_array_mut().unwrap().iter_mut().take(5) {
        product["title"] = json!(format!("{} (changed)", product["title"].as_str().unwrap()));
    }
    octo.set_catalog(catalog.clone());
    measure(&recorder, "trigger, 5 of 500 changed", async {
        service.trigger_sync(webhook(service, id, &secret).await).await.unwrap();
    })
    .await;
    measure(&recorder, "notify, known product", async {
        service.notify(webhook(service, id, &secret).await, update("product_1", "DEFAULT", 1, 10)).await.unwrap();
    })
    .await;
    measure(&recorder, "notify, unknown product", async {
        service.notify(webhook(service, id, &secret).await, update("product_unknown", "DEFAULT", 1, 10)).await.unwrap();
    })
    .await;
    measure(&recorder, "batch notify, 100 slots", async {
        let items = (0..100).map(|n| Ok(update(&format!("product_{}", n % 10), "DEFAULT", n / 10, 9 + n % 10))).collect();
        service.notify_batch(webhook(service, id, &secret).await, items).await.unwrap();
    })
    .await;
    measure(&recorder, "OCTO event, availability_update", async {
        let event = OctoEvent::AvailabilityUpdate(update("product_2", "DEFAULT", 2, 10));
        service.octo_event(webhook(service, id, &secret).await, event).await.unwrap();
    })
    .await;
    catalog[3]["title"] = json!("Product 3, renamed");
    octo.set_catalog(catalog.clone());
    measure(&recorder, "PRODUCT_UPDATE job (one product)", async {
        service.run_job(&SyncJob::product(id, "product_3".into())).await.unwrap();
    })
    .await;
    for option in ["DEFAULT", "option-1", "option-2"] {
        let slots = (0..4)
            .map(|n| json!({"id": format!("2099-07-05T{:02}:00:00+03:00", 9 + n), "localDateTimeStart": format!("2099-07-05T{:02}:00:00+03:00", 9 + n), "status": "AVAILABLE", "vacancies": 10, "capacity": 10}))
            .collect();
        octo.set_availability("product_4", option, slots);
    }
    measure(&recorder, "pull, 1 day x 3 options", async {
        let day = parse_date("2099-07-05").unwrap();
        let pull = AvailabilityPull { product_id: "product_4".into(), option_id: None, from: day, to: day };
        service.run_job(&SyncJob::availability(id, pull)).await.unwrap();
    })
    .await;

    let new = seyaha_tests::bearer_integration(&big.base_url(), FAKE_KEY);
    let large = service.create(PartnerId::generate(1_800_000_001), new, Role::Admin).await.unwrap();
    service.admin_update(large.integration.id, AdminPatch::approval()).await.unwrap();
    measure(&recorder, "worker full sync, 1,000 products", async {
        service.admin_sync(large.integration.id).await.unwrap();
        service.run_job(&SyncJob::catalog(large.integration.id, RunTrigger::Admin)).await.unwrap();
    })
    .await;
}

/// A live integration as the store keeps it, and its webhook secret (no credential, no partner
/// call: the run is about the table's keys).
fn live_record(n: usize) -> (IntegrationRecord, WebhookSecret) {
    let secret = WebhookSecret::generate();
    let mut record = seyaha_tests::stored_record(1_800_000_000_000 + n as i64, Role::Admin, &secret);
    record.integration.is_approved = true;
    record.integration.is_active = true;
    (record, secret)
}

fn activity(product: &str) -> Activity {
    Activity {
        internal_name: product.replace('_', "-"),
        activity_title: product.into(),
        external_sync: ExternalSync { external_id: product.into() },
        variations: vec![Variation {
            title: "Default".into(),
            external_sync: VariationSync { external_option_id: "DEFAULT".into() },
            pricing: VariationPricing { units: vec![], per_booking: None },
        }],
        is_active: true,
        content_hash: ContentHash::of(product.as_bytes()),
        updated_at: Timestamp::from_unix_millis(1_800_000_000_000),
    }
}

fn print_hot_keys(title: &str, ledger: &Ledger) {
    println!("\n{title}");
    println!("{:<8} {:>10} {:>8} {:>10}  hottest partition key (share of the target's write units)", "target", "WRU", "keys", "share");
    for (target, keys) in &ledger.usage {
        let write_units: f64 = keys.values().map(|u| u.write_units).sum();
        if write_units == 0.0 {
            continue;
        }
        let (key, share) = ledger.hottest_write_key(target).unwrap();
        let verdict = if share <= 1.0 / 16.0 { "ok" } else { "ABOVE 1/16" };
        println!("{target:<8} {write_units:>10.0} {:>8} {:>9.2}%  {key} ({verdict})", keys.len(), share * 100.0);
    }
}

async fn marketplace(config: &aws_config::SdkConfig) {
    let resources = resources(config).await;
    let settings = resources.settings(test_settings());
    let recorder = Recorder::default();
    let (ports, store) = recorded_ports(config, &settings, Arc::new(SystemClock), &recorder);
    let app = app::build(ports, &settings, Runtime::Lambda);
    let service = app.service();

    println!("\n## {MARKETPLACE} live integrations: creates, a nightly fan-out, a notify mix\n");
    let started = Instant::now();
    let mut ids = Vec::with_capacity(MARKETPLACE);
    let mut secrets = Vec::with_capacity(MARKETPLACE);
    let mut records = Vec::with_capacity(MARKETPLACE);
    for n in 0..MARKETPLACE {
        let (record, secret) = live_record(n);
        ids.push(record.integration.id);
        secrets.push(secret);
        records.push(record);
    }
    // Loaded in batches, not created one transaction each: moto copies every table for each
    // transaction, so 10,000 creates would take it most of an hour. The creates' own cost is in
    // the per-operation table above ("register").
    store.import(&records).await.unwrap();
    // A small catalog for every tenth integration, so notifies find their products.
    for id in ids.iter().step_by(10) {
        store.put_activities(id, &[activity("product_1"), activity("product_2")]).await.unwrap();
    }
    let mut setup = Ledger::new(seyaha_table());
    setup.book(&recorder.take());
    println!("set-up took {:.0} s", started.elapsed().as_secs_f64());
    print_hot_keys(&format!("the load of {MARKETPLACE} integrations and their catalogs:"), &setup);

    // The nightly fan-out: nightly-sync counts and queues the first page job; each page job
    // (one sync-worker invocation each) marks its page, queues its syncs and the next page.
    // The syncs themselves are left in the bulk queue: they are each integration's own keys.
    let started = Instant::now();
    let mut run = Ledger::new(seyaha_table());
    let queued = service.sync_all().await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(config);
    let (mut pages, mut syncs, mut page_write_units, mut page_read_units) = (0u64, 0u64, Vec::new(), Vec::new());
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&resources.bulk_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if received.is_empty() {
            break;
        }
        for message in received {
            sqs.delete_message()
                .queue_url(&resources.bulk_queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            let job = JobMessage::decode(message.body().unwrap()).unwrap();
            if !matches!(job.work, JobWork::FanOutPage(_)) {
                syncs += 1;
                continue;
            }
            recorder.take();
            service.run_job(&job).await.unwrap();
            let mut page = Ledger::new(seyaha_table());
            let calls = recorder.take();
            page.book(&calls);
            run.book(&calls);
            pages += 1;
            page_write_units.push(page.total().write_units);
            page_read_units.push(page.total().read_units);
        }
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let max = |values: &[f64]| values.iter().copied().fold(0.0, f64::max);
    println!(
        "\nnightly fan-out: {queued} live, {pages} page jobs (one worker invocation each), {syncs} syncs queued, in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "per page job: {:.1} WRU (max {:.1}), {:.1} RRU (max {:.1}); the whole fan-out:",
        mean(&page_write_units),
        max(&page_write_units),
        mean(&page_read_units),
        max(&page_read_units)
    );
    print_header();
    print_row("nightly fan-out (every integration)", &run);
    for n in 0..NOTIFY_MIX {
        let at = (n * 7919) % MARKETPLACE;
        // Every tenth integration has the product: a known slot; the others fall back.
        let product = if at.is_multiple_of(10) { "product_1" } else { "product_unknown" };
        let webhook = webhook(service, ids[at], &secrets[at]).await;
        service.notify(webhook, update(product, "DEFAULT", n as u32, 10)).await.unwrap();
    }
    run.book(&recorder.take());
    print_hot_keys(&format!("nightly fan-out plus {NOTIFY_MIX} notifies:"), &run);
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = sdk_config().await;
        let started = Instant::now();
        operations(&config).await;
        marketplace(&config).await;
        println!("\nbench-capacity took {:.0} s", started.elapsed().as_secs_f64());
    });
}
