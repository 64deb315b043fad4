//! The largest catalogs sync, and never get an integration deactivated for being large: over
//! real HTTP against the fake supplier streaming a generated catalog. The limits are set small
//! (a whole-body cap of 64 KiB, products of a few KB) so a catalog a hundred times over the old
//! whole-body cap syncs in seconds; the peak RSS of this test process is printed
//! (`cargo test -p seyaha-tests --test it large_catalogs:: -- --nocapture`).

use std::time::Duration;

use serde_json::{Value, json};
use seyaha::settings::Settings;
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto, sample_catalog};
use seyaha_tests::{TestApp, active_names, runs_with_trigger, test_settings};

/// The old whole-body cap in these tests: every call but `GET /products` still has it.
const WHOLE_BODY_CAP: usize = 64 * 1024;
/// A product of the generated catalogs, as the issue measured them (~3.7 KB).
const PRODUCT_BYTES: usize = 3_700;

fn settings() -> Settings {
    Settings {
        octo_max_response_bytes: WHOLE_BODY_CAP,
        sync_max_product_bytes: 8 * 1024,
        ..test_settings()
    }
}

fn streamed(products: usize) -> Behaviour {
    Behaviour::Streamed {
        products,
        product_bytes: PRODUCT_BYTES,
        pause: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_far_over_the_whole_body_cap_streams_in_and_is_skipped_when_unchanged() {
    let app = TestApp::spawn_with(settings()).await;
    let octo = FakeOcto::start().await;
    let products = 3_000; // about 11 MB: 170 times the whole-body cap
    octo.set_behaviour(streamed(products));
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    let before = seyaha_tests::peak_rss_mib();

    let first = app.trigger(&integration).await;
    let data = first.expect_success(200);
    let body_mib = (products * PRODUCT_BYTES) as f64 / (1024.0 * 1024.0);
    println!(
        "{products} products, {body_mib:.1} MiB body: peak RSS {before:.1} -> {:.1} MiB",
        seyaha_tests::peak_rss_mib()
    );
    assert_eq!(
        (
            data["synced"].clone(),
            data["created"].clone(),
            data["rejected"].clone()
        ),
        (json!(products), json!(products), json!(0))
    );
    let log = app.sync_log(&integration.id).await;
    assert_eq!(log["health"]["status"], "HEALTHY");
    let hash = log["sync"]["last_sync_hash"].clone();
    assert_eq!(hash.as_str().map(str::len), Some(64));

    // The same catalog again: the per-activity diff finds nothing, the hash matches: skipped.
    let again = app.trigger(&integration).await;
    assert_eq!(again.expect_success(200)["skipped"], true, "{}", again.text);
    let log = app.sync_log(&integration.id).await;
    assert_eq!(log["runs"][0]["outcome"], "skipped");
    assert_eq!(log["sync"]["last_sync_hash"], hash);
    println!(
        "after the skipped sync: peak RSS {:.1} MiB",
        seyaha_tests::peak_rss_mib()
    );

    // The hash is the one of the whole catalog read at once (the same products, not streamed).
    let whole: Vec<Value> = (0..products)
        .map(|i| {
            serde_json::from_slice(&seyaha_tests::fake_octo::streamed_product(i, PRODUCT_BYTES))
                .unwrap()
        })
        .collect();
    let parsed = seyaha::sync::parse_catalog(
        &serde_json::to_vec(&whole).unwrap(),
        seyaha::domain::Timestamp::from_unix_millis(0),
    )
    .unwrap();
    assert_eq!(json!(parsed.payload_hash.to_string()), hash);
}

#[tokio::test]
async fn a_product_over_the_per_product_cap_is_rejected_and_the_rest_sync() {
    let app = TestApp::spawn_with(settings()).await;
    let octo = FakeOcto::start().await;
    // One product of 2 MiB: over the per-product cap (8 KiB) and the whole-body cap (64 KiB).
    let mut catalog = sample_catalog(2).as_array().unwrap().clone();
    catalog.insert(1, json!({"id": "huge", "internalName": "huge", "options": [{"id": "o"}], "padding": "x".repeat(2 * 1024 * 1024)}));
    octo.set_catalog(Value::Array(catalog));
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;

    let reply = app.trigger(&integration).await;
    let data = reply.expect_success(200);
    assert_eq!(
        (data["created"].clone(), data["rejected"].clone()),
        (json!(2), json!(1)),
        "{data}"
    );
    let rejection = &data["rejections"][0];
    assert_eq!(rejection["index"], 1);
    assert_eq!(
        rejection["reason"],
        "product: larger than 8192 bytes as sent; not read"
    );
    let log = app.sync_log(&integration.id).await;
    assert_eq!(
        (
            log["health"]["status"].clone(),
            log["sync"]["status"].clone()
        ),
        (json!("HEALTHY"), json!("idle"))
    );
    assert_eq!(
        active_names(&app.catalog(&integration.id).await),
        ["product-0", "product-1"]
    );
}

/// Sets `behaviour`, triggers a sync three times, and checks each run's error has `expect`.
async fn three_times(
    app: &TestApp,
    octo: &FakeOcto,
    integration: &seyaha_tests::Registered,
    behaviour: Behaviour,
    expect: &str,
) {
    octo.set_behaviour(behaviour.clone());
    for attempt in 1..=3 {
        // The sync log orders runs by when they started: a second apart on the fake clock (no
        // retry a 429 or 503 queued is due yet).
        app.clock().advance(Duration::from_secs(1));
        let reply = app.trigger(integration).await;
        let log = app.sync_log(&integration.id).await;
        let message = log["sync"]["error_message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(expect),
            "{behaviour:?} #{attempt}: {message} ({})",
            reply.text
        );
        assert_eq!(log["sync"]["status"], "error", "{behaviour:?}");
        assert_eq!(log["runs"][0]["outcome"], "error", "{behaviour:?}");
        assert_eq!(
            log["health"]["status"], "HEALTHY",
            "{behaviour:?} #{attempt} is not a health failure"
        );
        assert_eq!(log["health"]["consecutive_failures"], 0, "{behaviour:?}");
    }
}

#[tokio::test]
async fn too_large_slow_to_arrive_and_try_later_never_make_an_integration_down() {
    // The catalog guard at 64 KiB and a catalog timeout of 1 s. The clock stands still, so the
    // retries that 429 and 503 queue wait.
    let settings = Settings {
        octo_max_catalog_bytes: 64 * 1024,
        octo_catalog_timeout_secs: 1,
        ..settings()
    };
    let app = TestApp::spawn_with_fake_clock(settings).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    assert_eq!(active_names(&app.catalog(&integration.id).await).len(), 3);

    // A body past the guard: a failed sync (502), not a failed probe.
    three_times(
        &app,
        &octo,
        &integration,
        streamed(100),
        "GET /products returned more than 65536 bytes",
    )
    .await;
    // Still arriving when the catalog's time is up (a product every 300 ms, never stalled).
    let trickle = Behaviour::Streamed {
        products: 50,
        product_bytes: 100,
        pause: Duration::from_millis(300),
    };
    three_times(
        &app,
        &octo,
        &integration,
        trickle,
        "GET /products timed out after 1 s while its body was still arriving",
    )
    .await;
    // Asked to come back later.
    three_times(
        &app,
        &octo,
        &integration,
        Behaviour::RetryAfter {
            status: 429,
            seconds: 30,
        },
        "rate limited (HTTP 429)",
    )
    .await;
    three_times(
        &app,
        &octo,
        &integration,
        Behaviour::RetryAfter {
            status: 503,
            seconds: 30,
        },
        "HTTP 503 (unavailable; Retry-After 30 s)",
    )
    .await;

    let active = active_names(&app.catalog(&integration.id).await);
    assert!(
        ["product-0", "product-1", "product-2"]
            .iter()
            .all(|name| active.iter().any(|a| a == name)),
        "the catalog stays active: {active:?}"
    );
    let log = app.sync_log(&integration.id).await;
    assert!(runs_with_trigger(&log, "health_down").is_empty(), "{log:#}");

    // A 503 without Retry-After still is a failed probe: the classes above are exceptions.
    octo.set_behaviour(Behaviour::Status(503));
    app.trigger(&integration).await.expect_error(502);
    let log = app.sync_log(&integration.id).await;
    assert_eq!(
        (
            log["health"]["status"].clone(),
            log["health"]["consecutive_failures"].clone()
        ),
        (json!("DEGRADED"), json!(1))
    );
}

#[tokio::test]
async fn retry_after_on_get_products_queues_the_sync_again_after_the_delay() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    octo.set_behaviour(Behaviour::RetryAfter {
        status: 429,
        seconds: 120,
    });

    let reply = app.trigger(&integration).await;
    assert_eq!(
        reply.expect_success(202),
        &json!({"synced": 0, "skipped": false, "queued": true})
    );
    let log = app.sync_log(&integration.id).await;
    let message = "GET /products was rate limited (HTTP 429); the sync is retried in 120 s";
    assert_eq!(
        (
            log["sync"]["status"].clone(),
            log["sync"]["error_message"].clone()
        ),
        (json!("error"), json!(message))
    );
    assert_eq!(
        (
            log["runs"][0]["outcome"].clone(),
            log["runs"][0]["error"].clone()
        ),
        (json!("error"), json!(message))
    );
    assert_eq!(log["health"]["status"], "HEALTHY");

    // Nothing calls the partner before its Retry-After is over...
    app.settle().await;
    app.clock().advance(Duration::from_secs(119));
    app.settle().await;
    assert_eq!(octo.product_calls(), 1);
    // ...and the queued sync runs once it is.
    octo.set_behaviour(Behaviour::Normal);
    app.clock().advance(Duration::from_secs(2));
    let log = app
        .wait_for_log(&integration.id, "the retried sync", |log| {
            runs_with_trigger(log, "follow_up")
                .iter()
                .any(|r| r["outcome"] == "synced")
        })
        .await;
    assert_eq!(runs_with_trigger(&log, "follow_up")[0]["created"], 3);
    assert_eq!(
        (
            log["sync"]["status"].clone(),
            log["sync"]["error_message"].clone()
        ),
        (json!("idle"), Value::Null)
    );
    assert_eq!(octo.product_calls(), 2);
}

#[tokio::test]
async fn the_connection_test_reads_a_large_catalog_within_its_request() {
    // A budget of 300 ms, and a catalog arriving a product every 100 ms for 5 s.
    let app = TestApp::spawn_with(Settings {
        sync_request_budget_ms: 300,
        ..settings()
    })
    .await;
    let octo = FakeOcto::start().await;
    octo.set_behaviour(Behaviour::Streamed {
        products: 50,
        product_bytes: 100,
        pause: Duration::from_millis(100),
    });
    let partner = seyaha_tests::new_partner();
    app.register(&partner, &octo.base_url(), "bearer", FAKE_KEY)
        .await;
    let token = app.partner_token(&partner);

    let reply = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    let data = reply.expect_success(200);
    assert_eq!(data["ok"], true, "{data}");
    let message = data["message"].as_str().unwrap();
    assert!(
        message.starts_with("Connection successful: a large catalog,")
            && message.ends_with("the sync reads the rest"),
        "{message}"
    );
    let me = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(me.data()["health"]["status"], "HEALTHY");
    assert!(
        me.data()["health"]["last_success_at"].is_string(),
        "a successful probe"
    );
}
