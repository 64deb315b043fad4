//! The catalog sync black-box, over real HTTP against the fake OCTO supplier: first sync, skip
//! by hash, diff writes, deactivation and return, rejections, partner failures and health,
//! concurrency, hand-off, sync-all and the real-time lane beside a bulk run.

use std::time::Duration;

use serde_json::{Value, json};
use seyaha::settings::Settings;
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto, sample_catalog};
use seyaha_tests::{TestApp, active_names, runs_with_trigger, test_settings};

fn counts(data: &Value) -> [u64; 7] {
    [
        "synced",
        "created",
        "updated",
        "unchanged",
        "deactivated",
        "rejected",
    ]
    .iter()
    .map(|k| data[*k].as_u64().unwrap_or_else(|| panic!("{k} in {data}")))
    .chain([u64::from(data["skipped"] == true)])
    .collect::<Vec<_>>()
    .try_into()
    .unwrap()
}

/// [synced, created, updated, unchanged, deactivated, rejected, skipped]
const fn expect(
    synced: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    deactivated: u64,
    rejected: u64,
    skipped: bool,
) -> [u64; 7] {
    [
        synced,
        created,
        updated,
        unchanged,
        deactivated,
        rejected,
        skipped as u64,
    ]
}

#[tokio::test]
async fn first_sync_writes_the_catalog_then_skips_an_unchanged_one() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(5));
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;

    let first = app.trigger(&integration).await;
    let data = first.expect_success(200).clone();
    assert_eq!(counts(&data), expect(5, 5, 0, 0, 0, 0, false), "{data}");
    assert_eq!(data["queued"], false);

    let me = app
        .call(
            "GET",
            "/me",
            Some(&app.partner_token(&integration.partner)),
            None,
        )
        .await;
    let sync = &me.data()["sync"];
    assert_eq!(sync["status"], "idle");
    assert_eq!(sync["last_sync_hash"].as_str().map(str::len), Some(64));
    assert!(sync["last_sync_at"].is_string());
    assert!(sync["error_message"].is_null());

    let catalog = app.catalog(&integration.id).await;
    assert_eq!(
        active_names(&catalog),
        (0..5).map(|i| format!("product-{i}")).collect::<Vec<_>>()
    );
    let product = catalog["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["internalName"] == "product-2")
        .unwrap();
    assert_eq!(product["activity_title"], "Product 2");
    assert_eq!(product["external_sync"]["external_id"], "product_2");
    let variation = &product["variations"][0];
    assert_eq!(variation["external_sync"]["external_option_id"], "DEFAULT");
    assert_eq!(variation["pricing"]["units"][0]["type"], "ADULT");
    assert_eq!(variation["pricing"]["units"][0]["price"]["retail"], 10_002);
    assert_eq!(variation["pricing"]["units"][1]["type"], "CHILD");

    let second = app.trigger(&integration).await;
    let skipped = second.expect_success(200);
    assert_eq!(counts(skipped), expect(0, 0, 0, 0, 0, 0, true));
    assert_eq!(
        app.catalog(&integration.id).await,
        catalog,
        "a skipped sync writes nothing"
    );
    let me_after = app
        .call(
            "GET",
            "/me",
            Some(&app.partner_token(&integration.partner)),
            None,
        )
        .await;
    assert_eq!(
        me_after.data()["sync"]["last_sync_at"],
        sync["last_sync_at"],
        "last_sync_at moves only when something was written"
    );

    let log = app.sync_log(&integration.id).await;
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0]["outcome"].clone(), runs[1]["outcome"].clone()),
        (json!("skipped"), json!("synced")),
        "newest first"
    );
    assert_eq!(runs[1]["trigger"], "webhook");
    assert_eq!(runs[1]["created"], 5);
    assert_eq!(runs[1]["hash"], sync["last_sync_hash"]);
    assert!(runs[1]["duration_ms"].is_u64() && runs[1]["started_at"].is_string());
}

#[tokio::test]
async fn the_same_catalog_with_other_key_order_and_whitespace_is_skipped() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);

    // Re-serialize every object with its keys reversed, pretty-printed with odd spacing.
    fn reversed(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            other => other.clone(),
        }
    }
    let text = serde_json::to_string_pretty(&reversed(&octo.catalog()))
        .unwrap()
        .replace(": ", " :   ");
    octo.set_raw_catalog(format!("\n\n  {text}\n"));
    let again = app.trigger(&integration).await;
    assert_eq!(again.expect_success(200)["skipped"], true, "{}", again.text);
}

#[tokio::test]
async fn diff_writes_only_what_changed_deactivates_and_reactivates() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(4));
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let before = app.catalog(&integration.id).await;

    // One product changed.
    let mut catalog = sample_catalog(4);
    catalog[1]["title"] = json!("Product 1, now with lunch");
    octo.set_catalog(catalog.clone());
    let changed = app.trigger(&integration).await;
    assert_eq!(
        counts(changed.expect_success(200)),
        expect(4, 0, 1, 3, 0, 0, false)
    );
    let after = app.catalog(&integration.id).await;
    let updated_at = |catalog: &Value, name: &str| {
        catalog["activities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["internalName"] == name)
            .unwrap()["updatedAt"]
            .clone()
    };
    assert_eq!(
        updated_at(&after, "product-0"),
        updated_at(&before, "product-0"),
        "unchanged activities are not rewritten"
    );
    assert_ne!(
        updated_at(&after, "product-1"),
        updated_at(&before, "product-1")
    );

    // One product removed: deactivated, never deleted.
    let removed = catalog
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["internalName"] != "product-3")
        .cloned()
        .collect::<Vec<_>>();
    octo.set_catalog(Value::Array(removed));
    let deactivated = app.trigger(&integration).await;
    assert_eq!(
        counts(deactivated.expect_success(200)),
        expect(3, 0, 0, 3, 1, 0, false)
    );
    let view = app.catalog(&integration.id).await;
    assert_eq!(view["activities"].as_array().unwrap().len(), 4);
    assert_eq!(
        active_names(&view),
        vec!["product-0", "product-1", "product-2"]
    );

    // It returns: counted as updated, active again.
    octo.set_catalog(catalog);
    let returned = app.trigger(&integration).await;
    assert_eq!(
        counts(returned.expect_success(200)),
        expect(4, 0, 1, 3, 0, 0, false)
    );
    assert_eq!(active_names(&app.catalog(&integration.id).await).len(), 4);
}

#[tokio::test]
async fn invalid_products_are_rejected_and_reported_while_the_rest_sync() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let mut catalog = sample_catalog(3);
    catalog
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "broken", "title": "No internal name", "options": [{"id": "o"}]}));
    catalog
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "twin", "internalName": "product-0", "options": [{"id": "o"}]}));
    octo.set_catalog(catalog);
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;

    let reply = app.trigger(&integration).await;
    let data = reply.expect_success(200);
    assert_eq!(counts(data), expect(3, 3, 0, 0, 0, 2, false));
    let rejections = data["rejections"].as_array().unwrap();
    assert_eq!(rejections[0]["productId"], "broken");
    assert_eq!(rejections[0]["index"], 3);
    assert!(
        rejections[0]["reason"]
            .as_str()
            .unwrap()
            .contains("internalName"),
        "{data}"
    );
    assert_eq!(rejections[1]["productId"], "twin");
    assert!(
        rejections[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("internalName: duplicate")
    );
    let log = app.sync_log(&integration.id).await;
    assert_eq!(log["runs"][0]["rejected"], 2);
    assert_eq!(log["runs"][0]["rejections"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.catalog(&integration.id).await["activities"][0]["external_sync"]["external_id"],
        "product_0",
        "the first product keeps its name"
    );
}

#[tokio::test]
async fn partner_failures_are_502_and_walk_health_down_and_back() {
    let app = TestApp::spawn().await; // 2 s timeout, 1 MiB cap
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let hash = app.sync_log(&integration.id).await["sync"]["last_sync_hash"].clone();

    let failures = [
        (
            Behaviour::Status(500),
            "GET /products returned HTTP 500",
            "DEGRADED",
        ),
        (
            Behaviour::Garbage,
            "GET /products did not return JSON",
            "DEGRADED",
        ),
        (
            Behaviour::NotArray,
            "GET /products did not return an OCTO products array",
            "DOWN",
        ),
        // No answer's head within the timeout: the endpoint is not working.
        (
            Behaviour::Slow(Duration::from_secs(4)),
            "GET /products timed out after 2 s",
            "DOWN",
        ),
    ];
    for (i, (behaviour, cause, health)) in failures.into_iter().enumerate() {
        octo.set_behaviour(behaviour.clone());
        let reply = app.trigger(&integration).await;
        let errors = reply.expect_error(502);
        assert_eq!(errors, format!("base_url: {cause}"), "{behaviour:?}");
        assert_eq!(
            reply.body["message"],
            format!("Partner endpoint failed: {cause}")
        );
        let log = app.sync_log(&integration.id).await;
        assert_eq!(log["sync"]["status"], "error");
        assert_eq!(log["sync"]["error_message"], cause);
        assert_eq!(
            log["sync"]["last_sync_hash"], hash,
            "a failed sync keeps the hash"
        );
        assert_eq!(log["health"]["status"], health, "after {} failures", i + 1);
        let run = runs_with_trigger(&log, "webhook")[0];
        assert_eq!(
            (run["outcome"].clone(), run["error"].clone()),
            (json!("error"), json!(cause))
        );
    }
    // DOWN: the catalog is inactive, and the sync log says when and why, as a run of its own.
    assert!(active_names(&app.catalog(&integration.id).await).is_empty());
    let log = app.sync_log(&integration.id).await;
    let down = runs_with_trigger(&log, "health_down");
    assert_eq!(
        down.len(),
        1,
        "one deactivation, when it became DOWN: {log:#}"
    );
    assert_eq!(
        (down[0]["outcome"].clone(), down[0]["deactivated"].clone()),
        (json!("deactivated"), json!(3)),
        "{log:#}"
    );
    let reason = down[0]["error"].as_str().unwrap();
    assert!(
        reason.contains("became DOWN")
            && reason.contains("GET /products did not return an OCTO products array"),
        "{reason}"
    );

    // The first success: HEALTHY, and a forced full sync (hash ignored) reactivates everything.
    octo.set_behaviour(Behaviour::Normal);
    let reply = app.trigger(&integration).await;
    assert_eq!(
        counts(reply.expect_success(200)),
        expect(3, 0, 3, 0, 0, 0, false),
        "{}",
        reply.text
    );
    let log = app.sync_log(&integration.id).await;
    assert_eq!(log["health"]["status"], "HEALTHY");
    assert_eq!(log["health"]["consecutive_failures"], 0);
    assert!(log["health"]["down_since"].is_null());
    assert_eq!(log["sync"]["status"], "idle");
    assert!(log["sync"]["error_message"].is_null());
    assert_eq!(active_names(&app.catalog(&integration.id).await).len(), 3);
    // And the next one is an ordinary skip again.
    assert_eq!(
        app.trigger(&integration).await.expect_success(200)["skipped"],
        true
    );
}

#[tokio::test]
async fn recovery_by_connection_test_forces_a_full_background_sync() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let token = app.partner_token(&integration.partner);
    octo.set_behaviour(Behaviour::Status(503));
    for _ in 0..3 {
        app.call("POST", "/me/test-connection", Some(&token), None)
            .await
            .expect_success(200);
    }
    assert_eq!(
        app.sync_log(&integration.id).await["health"]["status"],
        "DOWN"
    );
    assert!(
        active_names(&app.catalog(&integration.id).await).is_empty(),
        "DOWN deactivates the catalog"
    );

    octo.set_behaviour(Behaviour::Normal);
    assert_eq!(
        app.call("POST", "/me/test-connection", Some(&token), None)
            .await
            .data()["ok"],
        true
    );
    let log = app
        .wait_for_log(&integration.id, "the recovery sync", |log| {
            !runs_with_trigger(log, "recovery").is_empty()
        })
        .await;
    let recovery = runs_with_trigger(&log, "recovery")[0];
    assert_eq!(
        (recovery["outcome"].clone(), recovery["updated"].clone()),
        (json!("synced"), json!(3)),
        "{recovery}"
    );
    assert_eq!(active_names(&app.catalog(&integration.id).await).len(), 3);
}

#[tokio::test]
async fn concurrent_triggers_one_runs_the_rest_queue_and_a_follow_up_follows() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    octo.set_behaviour(Behaviour::Held);

    // Five triggers at once; the supplier holds the first sync's fetch until the other four
    // have been answered, so they certainly overlap it.
    let app = std::sync::Arc::new(app);
    let integration = std::sync::Arc::new(integration);
    let triggers: Vec<_> = (0..5)
        .map(|_| {
            let (app, integration) = (app.clone(), integration.clone());
            tokio::spawn(async move { app.trigger(&integration).await })
        })
        .collect();
    seyaha_tests::wait_until(
        "four triggers to be answered while the first sync is held",
        Duration::from_secs(15),
        || triggers.iter().filter(|t| t.is_finished()).count() >= 4,
    )
    .await;
    assert_eq!(
        octo.product_calls(),
        1,
        "only the lease holder calls the supplier"
    );
    octo.release();
    let replies: Vec<_> = futures_util::future::join_all(triggers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        4,
        "{statuses:?}"
    );
    for reply in replies.iter().filter(|r| r.status == 202) {
        assert_eq!(
            reply.expect_success(202),
            &json!({"synced": 0, "skipped": false, "queued": true})
        );
    }

    let log = app
        .wait_for_log(&integration.id, "the follow-up sync", |log| {
            !runs_with_trigger(log, "follow_up").is_empty()
        })
        .await;
    let follow_ups = runs_with_trigger(&log, "follow_up");
    assert_eq!(
        follow_ups.len(),
        1,
        "one follow-up covers all four: {log:#}"
    );
    assert_eq!(follow_ups[0]["outcome"], "skipped");
    assert_eq!(
        runs_with_trigger(&log, "webhook")
            .iter()
            .filter(|r| r["outcome"] == "queued")
            .count(),
        4
    );
    assert_eq!(
        octo.product_calls(),
        2,
        "the original sync and one follow-up"
    );
}

#[tokio::test]
async fn a_sync_over_the_request_budget_is_handed_off_to_the_queue() {
    // A budget of 0 ms is spent by the time the catalog has been fetched.
    let app = TestApp::spawn_with(Settings {
        sync_request_budget_ms: 0,
        ..test_settings()
    })
    .await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;

    let reply = app.trigger(&integration).await;
    assert_eq!(
        reply.expect_success(202),
        &json!({"synced": 0, "skipped": false, "queued": true})
    );
    let log = app
        .wait_for_log(&integration.id, "the hand-off sync", |log| {
            runs_with_trigger(log, "handoff")
                .iter()
                .any(|r| r["outcome"] == "synced")
        })
        .await;
    assert_eq!(runs_with_trigger(&log, "handoff")[0]["created"], 3);
    assert_eq!(log["sync"]["status"], "idle");
    assert_eq!(active_names(&app.catalog(&integration.id).await).len(), 3);
}

#[tokio::test]
async fn sync_all_queues_every_approved_active_integration() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let admin = app.admin_token();
    let first = app.approved(&octo.base_url(), FAKE_KEY).await;
    let second = app.approved(&octo.base_url(), FAKE_KEY).await;
    let paused = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.call(
        "PATCH",
        &format!("/admin/{}", paused.id),
        Some(&admin),
        Some(json!({"isActive": false})),
    )
    .await
    .expect_success(200);
    let pending = app
        .register(
            &seyaha_tests::new_partner(),
            &octo.base_url(),
            "bearer",
            FAKE_KEY,
        )
        .await;

    let reply = app
        .call("POST", "/admin/sync-all", Some(&admin), None)
        .await;
    assert_eq!(reply.expect_success(202), &json!({"queued": 2}));
    for integration in [&first, &second] {
        let log = app
            .wait_for_log(&integration.id, "the admin sync", |log| {
                !runs_with_trigger(log, "admin").is_empty()
            })
            .await;
        assert_eq!(runs_with_trigger(&log, "admin")[0]["created"], 3);
    }
    assert!(
        app.sync_log(&paused.id).await["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        app.sync_log(pending["_id"].as_str().unwrap()).await["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn real_time_jobs_queued_during_a_bulk_run_finish_before_it() {
    // Held calls must not time out while the test looks (the usual 2 s would end them).
    let app = TestApp::spawn_with(Settings {
        octo_timeout_secs: 60,
        ..test_settings()
    })
    .await;
    let busy = FakeOcto::start().await; // the bulk run's suppliers: they answer when released
    let other = FakeOcto::start().await;
    let admin = app.admin_token();
    let mut bulk = Vec::new();
    for _ in 0..10 {
        bulk.push(app.approved(&busy.base_url(), FAKE_KEY).await);
    }
    let late = app
        .register(
            &seyaha_tests::new_partner(),
            &other.base_url(),
            "bearer",
            FAKE_KEY,
        )
        .await;
    let late = late["_id"].as_str().unwrap().to_owned();
    app.settle().await;
    busy.set_behaviour(Behaviour::Held);

    let reply = app
        .call("POST", "/admin/sync-all", Some(&admin), None)
        .await;
    assert_eq!(reply.expect_success(202), &json!({"queued": 10}));
    seyaha_tests::wait_until(
        "the bulk run to reach its suppliers",
        Duration::from_secs(10),
        || busy.product_calls() >= 2,
    )
    .await;

    // Real-time work queued while the bulk run is stuck: an admin's sync of one integration.
    app.approve(&late).await;
    app.call("POST", &format!("/admin/{late}/sync"), Some(&admin), None)
        .await
        .expect_success(202);
    let log = app
        .wait_for_log(&late, "the real-time sync", |log| {
            !runs_with_trigger(log, "admin").is_empty()
        })
        .await;
    assert_eq!(runs_with_trigger(&log, "admin")[0]["created"], 3);
    for integration in &bulk {
        assert!(
            app.sync_log(&integration.id).await["runs"]
                .as_array()
                .unwrap()
                .is_empty(),
            "the bulk run has not finished a sync yet"
        );
    }

    busy.release();
    for integration in &bulk {
        app.wait_for_log(&integration.id, "the bulk sync", |log| {
            !runs_with_trigger(log, "admin").is_empty()
        })
        .await;
    }
    app.settle().await;
    assert_eq!(busy.product_calls(), 10, "one fetch per integration");
    for integration in &bulk {
        assert_eq!(
            app.sync_log(&integration.id).await["runs"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
