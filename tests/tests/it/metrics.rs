//! Metrics: seyaha-local's `GET /metrics` over real HTTP (Prometheus text) after a sync, a
//! notify, a refused webhook, a queue job and a failing partner; and the operations manual's Metrics
//! section against the library's one list of metrics.
//!
//! The recorder is process-global (every server in this test binary shares it), so the
//! assertions compare a scrape before with one after, never absolute values.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use seyaha::metrics::{ALL, Kind};
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto};
use seyaha_tests::{Registered, TestApp};

/// One scrape: every sample, keyed by its name and its labels sorted (`name{a="1",b="2"}`).
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    async fn of(app: &TestApp) -> Self {
        let response = app
            .http
            .get(format!("http://{}/metrics", app.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("a sample line: {line}"));
                (
                    key_of_series(series),
                    value
                        .parse::<f64>()
                        .unwrap_or_else(|_| panic!("a number: {line}")),
                )
            })
            .collect();
        Self { text, samples }
    }

    /// A sample's value; 0 when it was never recorded.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples.get(&key(name, labels)).copied().unwrap_or(0.0)
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// `name{b="2",a="1"}` as [`key`] spells it. Our label values hold no `,` or `"`.
fn key_of_series(series: &str) -> String {
    match series.split_once('{') {
        None => series.to_owned(),
        Some((name, rest)) => {
            let pairs: Vec<(&str, &str)> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k, v.trim_matches('"'))
                })
                .collect();
            key(name, &pairs)
        }
    }
}

/// Asserts that a sample grew by at least `by` between two scrapes (other tests of this binary
/// may add to it meanwhile; none takes away).
#[track_caller]
fn grew(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)], by: f64) {
    let (was, is) = (before.get(name, labels), after.get(name, labels));
    assert!(
        is >= was + by,
        "{} grew from {was} to {is}, expected +{by}; scrape:\n{}",
        key(name, labels),
        after.text
    );
}

/// Scrapes until `ready` holds (background work), for at most 15 seconds.
async fn scrape_until(app: &TestApp, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let scrape = Scrape::of(app).await;
        if ready(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; scrape:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn slot(product: &str) -> Value {
    json!({"productId": product, "optionId": "DEFAULT", "availabilityId": "slot-1", "localDateTimeStart": "2030-07-15T10:00:00+04:00",
           "status": "LIMITED", "vacancies": 3, "capacity": 12})
}

#[tokio::test]
async fn a_sync_a_notify_a_refused_webhook_a_job_and_a_failing_partner_are_counted() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration: Registered = app.approved(&octo.base_url(), FAKE_KEY).await;
    let before = Scrape::of(&app).await;

    // A webhook sync that creates the fake supplier's three products.
    assert_eq!(
        app.trigger(&integration).await.expect_success(200)["created"],
        3
    );
    // A notify for a slot of a known product, one for an unknown product (a fallback sync),
    // and one with a wrong secret.
    assert_eq!(
        app.notify(&integration, slot("product_1"))
            .await
            .expect_success(200),
        &json!({"updated": true})
    );
    assert_eq!(
        app.notify(&integration, slot("unknown"))
            .await
            .expect_success(200),
        &json!({"updated": false})
    );
    app.webhook(
        &integration.id,
        "availability/notify",
        Some(&"0".repeat(64)),
        Some(slot("product_1")),
    )
    .await
    .expect_error(401);
    // The fallback sync runs as a queue job (after the fallback delay) and finds nothing changed.
    let jobs = (
        "seyaha_jobs_total",
        [("job_kind", "catalog"), ("outcome", "done")],
    );
    let after = scrape_until(&app, "the fallback job", |s| {
        s.get(jobs.0, &jobs.1) > before.get(jobs.0, &jobs.1)
    })
    .await;

    let webhook_synced = [("trigger", "webhook"), ("outcome", "synced")];
    grew(&before, &after, "seyaha_syncs_total", &webhook_synced, 1.0);
    grew(
        &before,
        &after,
        "seyaha_syncs_total",
        &[("trigger", "fallback"), ("outcome", "skipped")],
        1.0,
    );
    grew(
        &before,
        &after,
        "seyaha_sync_duration_seconds_count",
        &[("outcome", "synced")],
        1.0,
    );
    grew(
        &before,
        &after,
        "seyaha_sync_duration_seconds_bucket",
        &[("outcome", "synced"), ("le", "+Inf")],
        1.0,
    );
    grew(&before, &after, "seyaha_products_fetched_total", &[], 6.0);
    grew(
        &before,
        &after,
        "seyaha_catalog_writes_total",
        &[("record", "activity"), ("change", "upsert")],
        3.0,
    );
    grew(
        &before,
        &after,
        "seyaha_catalog_writes_total",
        &[("record", "slot"), ("change", "upsert")],
        1.0,
    );
    grew(
        &before,
        &after,
        "seyaha_notifies_total",
        &[("outcome", "updated")],
        1.0,
    );
    grew(
        &before,
        &after,
        "seyaha_notifies_total",
        &[("outcome", "fallback")],
        1.0,
    );
    grew(
        &before,
        &after,
        "seyaha_webhook_auth_failures_total",
        &[],
        1.0,
    );
    let products_2xx = [("operation", "GET /products"), ("status_class", "2xx")];
    grew(
        &before,
        &after,
        "seyaha_partner_call_duration_seconds_count",
        &products_2xx,
        2.0,
    );
    grew(&before, &after, "seyaha_jobs_total", &jobs.1, 1.0);

    // The partner fails: an error run, a 5xx partner call, and the integration degrades.
    octo.set_behaviour(Behaviour::Status(500));
    app.trigger(&integration).await.expect_error(502);
    let failed = Scrape::of(&app).await;
    grew(
        &after,
        &failed,
        "seyaha_syncs_total",
        &[("trigger", "webhook"), ("outcome", "error")],
        1.0,
    );
    grew(
        &after,
        &failed,
        "seyaha_sync_duration_seconds_count",
        &[("outcome", "error")],
        1.0,
    );
    grew(
        &after,
        &failed,
        "seyaha_partner_call_duration_seconds_count",
        &[("operation", "GET /products"), ("status_class", "5xx")],
        1.0,
    );
    grew(
        &after,
        &failed,
        "seyaha_health_transitions_total",
        &[("transition", "became_degraded")],
        1.0,
    );
    // ...and a rejected product is counted when the partner is back with one broken product.
    octo.set_behaviour(Behaviour::Normal);
    let mut catalog = octo.catalog();
    catalog
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "broken"}));
    octo.set_catalog(catalog);
    app.trigger(&integration).await.expect_success(200);
    let recovered = Scrape::of(&app).await;
    grew(
        &failed,
        &recovered,
        "seyaha_rejections_total",
        &[("record", "product")],
        1.0,
    );
    grew(
        &failed,
        &recovered,
        "seyaha_health_transitions_total",
        &[("transition", "recovered_from_degraded")],
        1.0,
    );

    // HELP and TYPE come from the library's list; no id, partner or secret is in any label.
    for metric in ALL.iter().filter(|m| recovered.text.contains(m.name)) {
        assert!(
            recovered
                .text
                .contains(&format!("# HELP {} {}", metric.name, metric.help)),
            "HELP of {}",
            metric.name
        );
        assert!(
            recovered
                .text
                .contains(&format!("# TYPE {} {}", metric.name, metric.kind.as_str())),
            "TYPE of {}",
            metric.name
        );
    }
    for private in [
        &integration.id,
        &integration.partner,
        &integration.secret,
        &octo.base_url(),
    ] {
        assert!(
            !recovered.text.contains(private.as_str()),
            "{private} in the metrics"
        );
    }
}

#[tokio::test]
async fn a_down_deactivation_is_a_run_of_its_own_and_is_counted() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration: Registered = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let before = Scrape::of(&app).await;

    // Three failed syncs in a row: DOWN, and the catalog deactivated.
    octo.set_behaviour(Behaviour::Status(500));
    for _ in 0..3 {
        app.trigger(&integration).await.expect_error(502);
    }
    let after = Scrape::of(&app).await;
    grew(&before, &after, "seyaha_down_deactivations_total", &[], 1.0);
    grew(
        &before,
        &after,
        "seyaha_syncs_total",
        &[("trigger", "health_down"), ("outcome", "deactivated")],
        1.0,
    );
    grew(
        &before,
        &after,
        "seyaha_catalog_writes_total",
        &[("record", "activity"), ("change", "deactivate")],
        3.0,
    );

    let log = app
        .call(
            "GET",
            &format!("/{}/sync-log", integration.id),
            Some(&app.admin_token()),
            None,
        )
        .await;
    let log = log.expect_success(200);
    assert_eq!(log["health"]["status"], "DOWN");
    let runs = log["runs"].as_array().unwrap();
    let down: Vec<&Value> = runs
        .iter()
        .filter(|run| run["trigger"] == "health_down")
        .collect();
    assert_eq!(down.len(), 1, "{log:#}");
    let run = down[0];
    assert_eq!(
        (run["outcome"].clone(), run["deactivated"].clone()),
        (json!("deactivated"), json!(3)),
        "{log:#}"
    );
    assert_eq!(
        run["error"],
        "the integration became DOWN: 3 probes failed in a row, the last: GET /products returned HTTP 500",
        "its reason, with the failure that tipped it"
    );
    let failed = runs
        .iter()
        .filter(|run| run["trigger"] == "webhook" && run["outcome"] == "error")
        .count();
    assert_eq!(
        failed, 3,
        "the failed syncs that made it DOWN are runs of their own: {log:#}"
    );
}

/// The operations manual's `## Metrics` table (`docs/operations.md`) has a row for every metric the code records, with its
/// type, unit and every label; and no row for a metric the code does not record.
#[test]
fn the_operations_manual_lists_every_metric_with_its_type_unit_and_labels() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let readme = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a ## Metrics section")
        .split("\n## ")
        .next()
        .unwrap();
    let rows: Vec<&str> = section
        .lines()
        .filter(|line| line.starts_with("| `seyaha_"))
        .collect();
    for metric in ALL {
        let row = rows
            .iter()
            .find(|row| row.starts_with(&format!("| `{}` |", metric.name)))
            .unwrap_or_else(|| panic!("no docs/operations.md row for {}", metric.name));
        let unit = match metric.unit {
            seyaha::metrics::Unit::Count => "count",
            seyaha::metrics::Unit::Seconds => "seconds",
            other => panic!(
                "{}: docs/operations.md has no word for {other:?}",
                metric.name
            ),
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], metric.kind.as_str(), "{row}");
        assert_eq!(cells[3], unit, "{row}");
        for label in metric.labels {
            assert!(
                cells[4].contains(&format!("`{label}`")),
                "{}: label {label} in {row}",
                metric.name
            );
        }
        if metric.labels.is_empty() {
            assert_eq!(cells[4], "none", "{row}");
        }
    }
    assert_eq!(rows.len(), ALL.len(), "one row per metric: {rows:#?}");
    assert!(ALL.iter().any(|m| m.kind == Kind::Histogram));
}

/// Every counter series whose label values are known in advance is exported from the first
/// scrape (at zero until something happens), so rates and alerts work from the start: here
/// series no test in this binary ever records. Before, a fresh seyaha-local's `/metrics`
/// was empty until the first event.
#[tokio::test]
async fn every_known_counter_series_is_exported_from_the_first_scrape() {
    let app = TestApp::spawn().await;
    let scrape = Scrape::of(&app).await;
    let present =
        |name: &str, labels: &[(&str, &str)]| scrape.samples.contains_key(&key(name, labels));
    for (name, labels) in [
        (
            "seyaha_jobs_total",
            vec![("job_kind", "unsubscribe"), ("outcome", "panicked")],
        ),
        (
            "seyaha_jobs_total",
            vec![("job_kind", "pending_pulls"), ("outcome", "not_started")],
        ),
        (
            "seyaha_syncs_total",
            vec![("trigger", "health_down"), ("outcome", "queued")],
        ),
        (
            "seyaha_health_transitions_total",
            vec![("transition", "recovered_from_degraded")],
        ),
        (
            "seyaha_catalog_writes_total",
            vec![("record", "slot"), ("change", "deactivate")],
        ),
        ("seyaha_rejections_total", vec![("record", "availability")]),
        ("seyaha_notifies_total", vec![("outcome", "fallback")]),
        ("seyaha_down_deactivations_total", vec![]),
        ("seyaha_webhook_auth_failures_total", vec![]),
        ("seyaha_products_fetched_total", vec![]),
    ] {
        assert!(
            present(name, &labels),
            "{name}{labels:?} is not exported:\n{}",
            scrape.text
        );
    }
    for metric in seyaha::metrics::ALL
        .iter()
        .filter(|metric| metric.kind == seyaha::metrics::Kind::Counter)
    {
        assert!(
            scrape
                .samples
                .keys()
                .any(|series| series.split('{').next() == Some(metric.name)),
            "{} has no series",
            metric.name
        );
    }
}
