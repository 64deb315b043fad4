//! Capacity benchmark (`make bench-capacity`): prints numbers, asserts nothing.
//!
//! The AWS adapters run against moto with a DynamoDB client whose every call an SDK
//! interceptor records (`seyaha_tests::capacity`): operation, table or index, partition key,
//! item bytes. For each operation the service offers it prints the DynamoDB requests by API,
//! the read and write units (index copies included, from the table's projections) and the
//! bytes sent and received. Then a marketplace-sized run: 10,000 live integrations, a nightly
//! fan-out over all of them and a notify mix, with the share of write units on the hottest
//! partition key of the table and of each index (the target: no key above 1/16), and the
//! fan-out's invocations and work per invocation. Under 5 minutes on a 2-core machine: see
//! `marketplace`, `KeptJobs` and `notify_mix` for what moto's costs made the run do.
//!
//! SQS requests are counted for the fan-out's page jobs only, Secrets Manager calls not at all
//! (each job is one SendMessage, each credential read is cached); the docs' cost table adds
//! them by design.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use serde_json::json;
use seyaha::adapters::aws::{DynamoStore, SqsQueue};
use seyaha::adapters::stored::JobMessage;
use seyaha::app::{self, Host};
use seyaha::domain::{
    Activity, AdminPatch, AvailabilityUpdate, ContentHash, ExternalSync, IntegrationId,
    IntegrationRecord, LocalDateTime, OctoEvent, PartnerId, Role, RunTrigger, SlotStatus,
    Timestamp, Variation, VariationPricing, VariationSync, WebhookSecret,
};
use seyaha::ports::{CatalogStore, JobWork, Lane, QueueError, SyncJob, SyncQueue, SystemClock};
use seyaha::service::IntegrationService;
use seyaha::settings::Settings;
use seyaha::sync::{AvailabilityPull, parse_date};
use seyaha_tests::aws::{Moto, resources, sdk_config, sdk_config_for, unique};
use seyaha_tests::capacity::{Call, Ledger, Recorder, recorded_ports, seyaha_table};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::test_settings;

/// A line of a part's report: the two parts run side by side and each is printed whole.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        writeln!($out, $($arg)*).unwrap();
    }};
}

const MARKETPLACE: usize = 10_000;
/// Notifies of the marketplace's mix, each to a different integration (see `notify_mix`): a
/// key the notifies shared would take a third or more of the mix's writes.
const NOTIFY_MIX: usize = 40;
/// The page size of the marketplace's fan-out: the largest the settings allow
/// (`SEYAHA_FAN_OUT_PAGE_SIZE`), so moto's whole-table scans for the live listing run about 45
/// times rather than 135. The default page of 100 is measured in the per-operation table.
const MARKETPLACE_PAGE: usize = seyaha::settings::MAX_FAN_OUT_PAGE_SIZE;

fn print_header(out: &mut String) {
    say!(
        out,
        "{:<34} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  requests",
        "operation",
        "RRU",
        "WRU",
        "table",
        "indexes",
        "sent KB",
        "read KB"
    );
}

fn print_row(out: &mut String, name: &str, ledger: &Ledger) {
    let total = ledger.total();
    let table = ledger.target("table").write_units;
    let requests: Vec<String> = ledger
        .requests
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    say!(
        out,
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
async fn measure<F: std::future::Future<Output = ()>>(
    out: &mut String,
    recorder: &Recorder,
    name: &str,
    operation: F,
) -> Ledger {
    recorder.take();
    operation.await;
    let mut ledger = Ledger::new(seyaha_table());
    ledger.book(&recorder.take());
    print_row(out, name, &ledger);
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

async fn webhook(
    service: &IntegrationService,
    id: IntegrationId,
    secret: &WebhookSecret,
) -> seyaha::service::AuthenticatedWebhook {
    service
        .authenticate_webhook(id, Some(secret.expose()))
        .await
        .unwrap()
}

async fn operations(config: &aws_config::SdkConfig) -> String {
    let mut out = String::new();
    let resources = resources(config).await;
    // The default cap on a partner's answer, not the tests' 1 MiB: the catalogs here are larger.
    let settings = resources.settings(Settings {
        octo_max_response_bytes: Settings::default().octo_max_response_bytes,
        ..test_settings()
    });
    let recorder = Recorder::default();
    let (ports, store) = recorded_ports(config, &settings, Arc::new(SystemClock), &recorder);
    let app = app::build(ports, &settings, Host::Lambda);
    let service = app.service();
    let octo = FakeOcto::start().await;
    let mut catalog = seyaha_local::octo_samples::generated_catalog(500, 3);
    octo.set_catalog(catalog.clone());
    let big = FakeOcto::start().await;
    big.set_catalog(seyaha_local::octo_samples::generated_catalog(1_000, 1));

    say!(
        out,
        "\n## One operation each (DynamoDB units; index copies included)\n"
    );
    print_header(&mut out);
    let mut created = None;
    measure(&mut out, &recorder, "register (create)", async {
        let new = seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY);
        created = Some(
            service
                .create(PartnerId::generate(1_800_000_000), new, Role::Partner)
                .await
                .unwrap(),
        );
    })
    .await;
    let created = created.unwrap();
    let id = created.integration.id;
    let secret = created.webhook_secret;
    measure(&mut out, &recorder, "approve", async {
        service
            .admin_update(id, AdminPatch::approval())
            .await
            .unwrap();
    })
    .await;
    measure(&mut out, &recorder, "trigger, first sync of 500", async {
        let result = service
            .trigger_sync(webhook(service, id, &secret).await)
            .await
            .unwrap();
        assert!(
            matches!(result, seyaha::sync::SyncResult::Done { .. }),
            "the first sync failed: {result:?}"
        );
    })
    .await;
    measure(&mut out, &recorder, "trigger, unchanged", async {
        service
            .trigger_sync(webhook(service, id, &secret).await)
            .await
            .unwrap();
    })
    .await;
    for product in catalog.as_array_mut().unwrap().iter_mut().take(5) {
        product["title"] = json!(format!("{} (changed)", product["title"].as_str().unwrap()));
    }
    octo.set_catalog(catalog.clone());
    measure(&mut out, &recorder, "trigger, 5 of 500 changed", async {
        service
            .trigger_sync(webhook(service, id, &secret).await)
            .await
            .unwrap();
    })
    .await;
    measure(&mut out, &recorder, "notify, known product", async {
        service
            .notify(
                webhook(service, id, &secret).await,
                update("product_1", "DEFAULT", 1, 10),
            )
            .await
            .unwrap();
    })
    .await;
    measure(&mut out, &recorder, "notify, unknown product", async {
        service
            .notify(
                webhook(service, id, &secret).await,
                update("product_unknown", "DEFAULT", 1, 10),
            )
            .await
            .unwrap();
    })
    .await;
    measure(&mut out, &recorder, "batch notify, 100 slots", async {
        let items = (0..100)
            .map(|n| {
                Ok(update(
                    &format!("product_{}", n % 10),
                    "DEFAULT",
                    n / 10,
                    9 + n % 10,
                ))
            })
            .collect();
        service
            .notify_batch(webhook(service, id, &secret).await, items)
            .await
            .unwrap();
    })
    .await;
    measure(
        &mut out,
        &recorder,
        "OCTO event, availability_update",
        async {
            let event = OctoEvent::AvailabilityUpdate(update("product_2", "DEFAULT", 2, 10));
            service
                .octo_event(webhook(service, id, &secret).await, event)
                .await
                .unwrap();
        },
    )
    .await;
    catalog[3]["title"] = json!("Product 3, renamed");
    octo.set_catalog(catalog.clone());
    measure(
        &mut out,
        &recorder,
        "PRODUCT_UPDATE job (one product)",
        async {
            service
                .handle_job(&SyncJob::product(id, "product_3".into()))
                .await
                .unwrap();
        },
    )
    .await;
    for option in ["DEFAULT", "option-1", "option-2"] {
        let slots = (0..4)
            .map(|n| json!({"id": format!("2099-07-05T{:02}:00:00+03:00", 9 + n), "localDateTimeStart": format!("2099-07-05T{:02}:00:00+03:00", 9 + n), "status": "AVAILABLE", "vacancies": 10, "capacity": 10}))
            .collect();
        octo.set_availability("product_4", option, slots);
    }
    measure(&mut out, &recorder, "pull, 1 day x 3 options", async {
        let day = parse_date("2099-07-05").unwrap();
        let pull = AvailabilityPull {
            product_id: "product_4".into(),
            option_id: None,
            from: day,
            to: day,
        };
        service
            .handle_job(&SyncJob::availability(id, pull))
            .await
            .unwrap();
    })
    .await;

    let new = seyaha_tests::bearer_integration(&big.base_url(), FAKE_KEY);
    let large = service
        .create(PartnerId::generate(1_800_000_001), new, Role::Admin)
        .await
        .unwrap();
    service
        .admin_update(large.integration.id, AdminPatch::approval())
        .await
        .unwrap();
    measure(
        &mut out,
        &recorder,
        "worker full sync, 1,000 products",
        async {
            service.admin_sync(large.integration.id).await.unwrap();
            service
                .handle_job(&SyncJob::catalog(large.integration.id, RunTrigger::Admin))
                .await
                .unwrap();
        },
    )
    .await;

    // A nightly page job at the default page size (100), as one sync-worker invocation runs
    // it: 3,200 more live integrations (loaded, not created), so that the index shards hold
    // about a page each and a page reads one or two of them, as at marketplace size.
    let records: Vec<IntegrationRecord> =
        (0..3_200).map(|n| live_record(1_000_000 + n).0).collect();
    store.import(&records).await.unwrap();
    service.sync_all().await.unwrap();
    let mut first_page = None;
    while first_page.is_none() {
        let received = resources.receive_bulk(config, 60).await;
        assert!(
            !received.is_empty(),
            "the fan-out's first page job never arrived"
        );
        first_page = received
            .iter()
            .map(|message| JobMessage::decode(message.body().unwrap()).unwrap())
            .find(|job| matches!(job.work, JobWork::FanOutPage(_)));
    }
    let first_page = first_page.unwrap();
    measure(
        &mut out,
        &recorder,
        &format!("nightly page of {}", Settings::default().fan_out_page_size),
        async {
            service.handle_job(&first_page).await.unwrap();
        },
    )
    .await;
    out
}

/// A live integration as the store keeps it, and its webhook secret (no credential, no partner
/// call: the run is about the table's keys).
fn live_record(n: usize) -> (IntegrationRecord, WebhookSecret) {
    let secret = WebhookSecret::generate();
    let mut record =
        seyaha_tests::stored_record(1_800_000_000_000 + n as i64, Role::Admin, &secret);
    record.integration.is_approved = true;
    record.integration.is_active = true;
    (record, secret)
}

fn activity(product: &str) -> Activity {
    Activity {
        internal_name: product.replace('_', "-"),
        activity_title: product.into(),
        external_sync: ExternalSync {
            external_id: product.into(),
        },
        variations: vec![Variation {
            title: "Default".into(),
            external_sync: VariationSync {
                external_option_id: "DEFAULT".into(),
            },
            pricing: VariationPricing {
                units: vec![],
                per_booking: None,
            },
        }],
        is_active: true,
        content_hash: ContentHash::of(product.as_bytes()),
        updated_at: Timestamp::from_unix_millis(1_800_000_000_000),
    }
}

fn print_hot_keys(out: &mut String, title: &str, ledger: &Ledger) {
    say!(out, "\n{title}");
    say!(
        out,
        "{:<8} {:>10} {:>8} {:>10}  hottest partition key (share of the target's write units)",
        "target",
        "WRU",
        "keys",
        "share"
    );
    // The table and every index, in that order; one the run wrote nothing to says so.
    let targets =
        std::iter::once("table").chain(seyaha_table().into_iter().map(|index| index.name));
    for target in targets {
        let Some((key, share)) = ledger.hottest_write_key(target) else {
            say!(
                out,
                "{target:<8} {:>10} {:>8} {:>10}  (no writes)",
                0,
                ledger.usage.get(target).map_or(0, |keys| keys.len()),
                "-"
            );
            continue;
        };
        let keys = &ledger.usage[target];
        let write_units: f64 = keys.values().map(|u| u.write_units).sum();
        let verdict = if share <= 1.0 / 16.0 {
            "ok"
        } else {
            "ABOVE 1/16"
        };
        say!(
            out,
            "{target:<8} {write_units:>10.0} {:>8} {:>9.2}%  {key} ({verdict})",
            keys.len(),
            share * 100.0
        );
    }
}

/// The queues as the functions use them (the SQS adapter on moto), keeping a copy of every job
/// sent. The driver runs the fan-out's page jobs from the copy (through the message format, as
/// the worker receives them) instead of receiving them back from behind 10,000 sync messages.
/// moto's SQS scans the whole queue on every send, receive and delete, so every hundred bulk
/// messages go to a new, empty bulk queue: the requests are the adapter's (SendMessageBatch of
/// up to ten), their cost in moto no longer grows with the run.
struct KeptJobs {
    client: aws_sdk_sqs::Client,
    real_time_url: String,
    /// The bulk queue in use and the messages sent to it.
    bulk: tokio::sync::Mutex<(String, usize)>,
    sent: Mutex<VecDeque<SyncJob>>,
}

/// Bulk messages one queue takes before the next go to a new one.
const MESSAGES_PER_QUEUE: usize = 100;

impl KeptJobs {
    fn new(client: aws_sdk_sqs::Client, resources: &seyaha_tests::aws::Resources) -> Self {
        Self {
            client,
            real_time_url: resources.queue_url.clone(),
            bulk: tokio::sync::Mutex::new((resources.bulk_queue_url.clone(), 0)),
            sent: Mutex::default(),
        }
    }

    fn take(&self) -> VecDeque<SyncJob> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }

    /// The SQS adapter, for up to ten jobs of which `bulk_jobs` go to the bulk lane.
    async fn adapter(&self, bulk_jobs: usize) -> SqsQueue {
        let mut bulk = self.bulk.lock().await;
        if bulk_jobs > 0 && bulk.1 + bulk_jobs > MESSAGES_PER_QUEUE {
            let url = self
                .client
                .create_queue()
                .queue_name(unique("bulk"))
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap();
            *bulk = (url, 0);
        }
        bulk.1 += bulk_jobs;
        SqsQueue::new(self.client.clone(), &self.real_time_url, &bulk.0)
    }
}

/// SQS's batch limit, as the adapter batches.
const SQS_BATCH: usize = 10;

#[async_trait::async_trait]
impl SyncQueue for KeptJobs {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(SQS_BATCH) {
            self.adapter(chunk.iter().filter(|job| job.lane == Lane::Bulk).count())
                .await
                .enqueue(chunk)
                .await?;
            self.sent.lock().unwrap().extend(chunk.iter().cloned());
        }
        Ok(())
    }

    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError> {
        self.adapter(usize::from(job.lane == Lane::Bulk))
            .await
            .enqueue_after(job, delay)
            .await?;
        self.sent.lock().unwrap().push_back(job.clone());
        Ok(())
    }

    async fn enqueue_each_after(&self, jobs: &[(SyncJob, Duration)]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(SQS_BATCH) {
            self.adapter(
                chunk
                    .iter()
                    .filter(|(job, _)| job.lane == Lane::Bulk)
                    .count(),
            )
            .await
            .enqueue_each_after(chunk)
            .await?;
            self.sent
                .lock()
                .unwrap()
                .extend(chunk.iter().map(|(job, _)| job.clone()));
        }
        Ok(())
    }
}

/// Requests by API, as `Op n, …`.
fn requests_by_api(calls: &[Call]) -> String {
    let mut counted: BTreeMap<&str, u64> = BTreeMap::new();
    for call in calls {
        *counted.entry(call.operation.as_str()).or_default() += 1;
    }
    counted
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The marketplace's live integrations, as the store keeps them, and their webhook secrets.
struct Population {
    records: Vec<IntegrationRecord>,
    secrets: Vec<WebhookSecret>,
}

impl Population {
    fn generate() -> Self {
        let (records, secrets) = (0..MARKETPLACE).map(live_record).unzip();
        Self { records, secrets }
    }

    fn id(&self, n: usize) -> IntegrationId {
        self.records[n].integration.id
    }
}

/// Loads the population into an empty table, with `catalogs` a small catalog for every tenth
/// integration so that notifies find their products. Loaded in batches, not created one
/// transaction each: moto copies every table for each transaction, so 10,000 creates would
/// take it most of an hour. The creates' own cost is in the per-operation table ("register").
async fn load(store: &Arc<DynamoStore>, population: &Population, catalogs: bool) {
    store.import(&population.records).await.unwrap();
    if !catalogs {
        return;
    }
    // A few at a time: writes of distinct keys, nothing else runs on the table meanwhile.
    let catalogs = (0..MARKETPLACE).step_by(10).map(|n| {
        let store = store.clone();
        let id = population.id(n);
        async move {
            store
                .put_activities(&id, &[activity("product_1"), activity("product_2")])
                .await
                .unwrap()
        }
    });
    futures_util::stream::iter(catalogs)
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

/// The 10,000 integrations loaded, then the nightly fan-out over them; returns the report and
/// the fan-out's ledger. The table holds no catalog (the fan-out reads none, and moto's Queries
/// cost what the table holds): the load with catalogs is reported from the notify mix's copy.
async fn marketplace(config: &aws_config::SdkConfig, population: &Population) -> (String, Ledger) {
    let mut out = String::new();
    let resources = resources(config).await;
    let settings = resources.settings(Settings {
        fan_out_page_size: MARKETPLACE_PAGE,
        ..test_settings()
    });
    let recorder = Recorder::default();
    let (mut ports, store) = recorded_ports(config, &settings, Arc::new(SystemClock), &recorder);
    let sqs_recorder = Recorder::default();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(config)
            .interceptor(sqs_recorder.clone())
            .build(),
    );
    let queue = Arc::new(KeptJobs::new(sqs.clone(), &resources));
    ports.queue = queue.clone();
    let app = app::build(ports, &settings, Host::Lambda);
    let service = app.service();

    let started = Instant::now();
    load(&store, population, false).await;
    recorder.take();
    say!(
        out,
        "\nthe fan-out's table loaded with the {MARKETPLACE} integrations in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // The nightly fan-out: nightly-sync counts and queues the first page job; each page job
    // (one sync-worker invocation each) marks its page, queues its syncs and the next page.
    // The syncs themselves are left in the bulk queue: they are each integration's own keys.
    let started = Instant::now();
    let mut run = Ledger::new(seyaha_table());
    let queued = service.sync_all().await.unwrap();
    run.book(&recorder.take());
    sqs_recorder.take();
    let mut waiting = queue.take();
    let (mut pages, mut syncs, mut sent_messages) = (0u64, 0u64, waiting.len() as u64);
    let (
        mut page_write_units,
        mut page_read_units,
        mut page_dynamo_requests,
        mut page_sqs_requests,
    ) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut sqs_calls = Vec::new();
    while let Some(job) = waiting.pop_front() {
        // Through the message format, as the worker receives it.
        let job = JobMessage::decode(&JobMessage::encode(&job)).unwrap();
        if !matches!(job.work, JobWork::FanOutPage(_)) {
            syncs += 1;
            continue;
        }
        service.handle_job(&job).await.unwrap();
        let calls = recorder.take();
        let queue_calls = sqs_recorder.take();
        let mut page = Ledger::new(seyaha_table());
        page.book(&calls);
        run.book(&calls);
        pages += 1;
        page_write_units.push(page.total().write_units);
        page_read_units.push(page.total().read_units);
        page_dynamo_requests.push(calls.len() as f64);
        page_sqs_requests.push(
            queue_calls
                .iter()
                .filter(|call| call.operation.starts_with("SendMessage"))
                .count() as f64,
        );
        sqs_calls.extend(
            queue_calls
                .into_iter()
                .filter(|call| call.operation.starts_with("SendMessage")),
        );
        let sent = queue.take();
        sent_messages += sent.len() as u64;
        waiting.extend(sent);
    }
    let fan_out_secs = started.elapsed().as_secs_f64();
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let max = |values: &[f64]| values.iter().copied().fold(0.0, f64::max);
    say!(
        out,
        "\nnightly fan-out: {queued} live, {pages} page jobs of up to {MARKETPLACE_PAGE} (one worker invocation each), {syncs} syncs queued, \
         {sent_messages} messages sent, in {fan_out_secs:.0} s"
    );
    say!(
        out,
        "per page job: {:.1} WRU (max {:.1}), {:.1} RRU (max {:.1}), {:.1} DynamoDB requests (max {:.0}), {:.1} SQS requests (max {:.0})",
        mean(&page_write_units),
        max(&page_write_units),
        mean(&page_read_units),
        max(&page_read_units),
        mean(&page_dynamo_requests),
        max(&page_dynamo_requests),
        mean(&page_sqs_requests),
        max(&page_sqs_requests),
    );
    say!(
        out,
        "SQS requests of the page jobs: {}; the whole fan-out in DynamoDB:",
        requests_by_api(&sqs_calls)
    );
    print_header(&mut out);
    print_row(&mut out, "nightly fan-out (every integration)", &run);
    print_hot_keys(&mut out, "nightly fan-out:", &run);

    (out, run)
}

/// The notify mix, on a copy of the marketplace's integrations loaded into a table of a second
/// moto server, beside the fan-out: moto scans every item of the table for each Query (two a
/// notify, about 2 s each at 10,000 integrations), so on the fan-out's server the mix would
/// add minutes to the run. Each notify touches only its own integration's keys. Returns the
/// report and the mix's calls.
async fn notify_mix(
    config: &aws_config::SdkConfig,
    population: &Population,
) -> (String, String, Vec<Call>) {
    let (mut loaded_out, mut out) = (String::new(), String::new());
    let resources = resources(config).await;
    let settings = resources.settings(test_settings());
    let recorder = Recorder::default();
    let (ports, store) = recorded_ports(config, &settings, Arc::new(SystemClock), &recorder);
    let app = app::build(ports, &settings, Host::Lambda);
    let service = app.service();
    let started = Instant::now();
    load(&store, population, true).await;
    let mut setup = Ledger::new(seyaha_table());
    setup.book(&recorder.take());
    let loaded = started.elapsed().as_secs_f64();
    print_hot_keys(
        &mut loaded_out,
        &format!(
            "the load of {MARKETPLACE} integrations and their catalogs (on the second moto server, in {loaded:.0} s):"
        ),
        &setup,
    );

    let started = Instant::now();
    for n in 0..NOTIFY_MIX {
        let at = (n * 7919) % MARKETPLACE;
        // Every tenth integration has the product: a known slot; the others fall back.
        let product = if at.is_multiple_of(10) {
            "product_1"
        } else {
            "product_unknown"
        };
        let webhook = webhook(service, population.id(at), &population.secrets[at]).await;
        service
            .notify(webhook, update(product, "DEFAULT", n as u32, 10))
            .await
            .unwrap();
    }
    let calls = recorder.take();
    let mut mix = Ledger::new(seyaha_table());
    mix.book(&calls);
    say!(
        out,
        "\n{NOTIFY_MIX} notifies, each to a different integration, in {:.0} s (on a copy of the {MARKETPLACE} integrations, loaded in {loaded:.0} s \
         on a second moto server beside the fan-out):",
        started.elapsed().as_secs_f64()
    );
    print_header(&mut out);
    print_row(&mut out, &format!("notify mix ({NOTIFY_MIX})"), &mix);
    print_hot_keys(&mut out, &format!("the notify mix ({NOTIFY_MIX}):"), &mix);
    (loaded_out, out, calls)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        // The per-operation part and the notify mix run on a moto server of their own, beside
        // the marketplace's load and fan-out: they share no table or queue, and two moto
        // processes use the two cores.
        let population = Arc::new(Population::generate());
        let second = Moto::start();
        let side_config = sdk_config_for(&second).await;
        let side = tokio::spawn({
            let population = population.clone();
            async move {
                let operations = operations(&side_config).await;
                let mix = notify_mix(&side_config, &population).await;
                (operations, mix)
            }
        });
        let (marketplace, mut run) = marketplace(&sdk_config().await, &population).await;
        let (operations, (loaded, mix, mix_calls)) = side.await.unwrap();
        run.book(&mix_calls);
        let mut both = String::new();
        print_hot_keys(&mut both, &format!("nightly fan-out plus {NOTIFY_MIX} notifies:"), &run);
        print!("{operations}\n## {MARKETPLACE} live integrations: a nightly fan-out and a notify mix\n{loaded}{marketplace}{mix}{both}");
        println!("\nbench-capacity took {:.0} s", started.elapsed().as_secs_f64());
    });
}
