//! What the API shows of a synced catalog over time: a deleted integration's catalog
//! deactivated, run history expiring after 30 days, catalog pages by cursor, and slots
//! expiring after their retention (by their latest start).

use std::time::Duration;

use crate::notify::slot_update;
use serde_json::json;
use seyaha::ports::Clock;
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, test_settings};

#[tokio::test]
async fn delete_deactivates_the_catalog() {
    let mut app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    app.call(
        "DELETE",
        "/me",
        Some(&app.partner_token(&integration.partner)),
        None,
    )
    .await
    .expect_success(200);
    app.call(
        "GET",
        &format!("/{}/catalog", integration.id),
        Some(&app.admin_token()),
        None,
    )
    .await
    .expect_error(404);

    // The API no longer shows it, so look in the store: kept, but inactive.
    let store = app.stop_and_open_store().await;
    let id = seyaha::domain::IntegrationId::parse(&integration.id).unwrap();
    let activities = seyaha::ports::CatalogStore::activities(&store, &id)
        .await
        .unwrap();
    assert_eq!(activities.len(), 3);
    assert!(activities.iter().all(|a| !a.is_active), "{activities:?}");
}

#[tokio::test]
async fn run_history_expires_after_30_days() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    let first = app.trigger(&integration).await;
    first.expect_success(200);
    let first_run = app.sync_log(&integration.id).await["runs"][0]["run_id"].clone();

    // 29 days on (nightly syncs run on the way; let them finish), a second webhook sync.
    app.clock().advance(Duration::from_secs(29 * 24 * 3600));
    app.settle().await;
    app.trigger(&integration).await.expect_success(200);
    let log = app.sync_log(&integration.id).await;
    let second_run = log["runs"][0]["run_id"].clone();
    assert!(
        log["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["run_id"] == first_run),
        "29 days old: still shown"
    );

    // Two days later the first run is 31 days old: gone; the second is still there.
    app.clock().advance(Duration::from_secs(2 * 24 * 3600));
    app.settle().await;
    let runs = app.sync_log(&integration.id).await["runs"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        !runs.iter().any(|run| run["run_id"] == first_run),
        "31 days old: expired: {runs:?}"
    );
    assert!(
        runs.iter().any(|run| run["run_id"] == second_run),
        "{runs:?}"
    );
}

#[tokio::test]
async fn the_catalog_pages_by_cursor_and_slots_expire_after_their_retention() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let tomorrow = app.clock().now().plus_millis(24 * 3600 * 1000).to_string();
    for n in 0..5 {
        let mut update = slot_update("product_1", "DEFAULT", &format!("slot-{n}"));
        update["localDateTimeStart"] = json!(tomorrow);
        app.notify(&integration, update).await.expect_success(200);
    }
    let admin = app.admin_token();
    let get = |query: String| {
        let (app, admin, id) = (&app, admin.clone(), integration.id.clone());
        async move {
            app.call("GET", &format!("/{id}/catalog{query}"), Some(&admin), None)
                .await
        }
    };

    // Slots only, two at a time, following next_cursor to the end.
    let (mut slots, mut query) = (Vec::new(), "?kind=slots&limit=2".to_owned());
    loop {
        let reply = get(query.clone()).await;
        let data = reply.expect_success(200).clone();
        assert!(data.get("activities").is_none(), "{data}");
        let page = data["slots"].as_array().unwrap();
        assert!(page.len() <= 2);
        slots.extend(
            page.iter()
                .map(|s| s["availabilityId"].as_str().unwrap().to_owned()),
        );
        match data["next_cursor"]["slots"].as_str() {
            Some(cursor) => query = format!("?kind=slots&limit=2&slots_cursor={cursor}"),
            None => break,
        }
    }
    slots.sort();
    assert_eq!(
        slots,
        (0..5).map(|n| format!("slot-{n}")).collect::<Vec<_>>()
    );

    // Both lists, each paged; bad parameters are 400s.
    let both = get("?limit=2".into()).await.expect_success(200).clone();
    assert_eq!(
        (
            both["activities"].as_array().unwrap().len(),
            both["slots"].as_array().unwrap().len()
        ),
        (2, 2)
    );
    assert!(
        both["next_cursor"]["activities"].is_string() && both["next_cursor"]["slots"].is_string()
    );
    let errors = get("?kind=bookings&limit=0&slots_cursor=%%%".into())
        .await
        .expect_error(400);
    for expected in [
        "kind: must be activities or slots",
        "limit: must be a whole number from 1 to 500",
        "slots_cursor: is not a cursor",
    ] {
        assert!(errors.contains(expected), "{errors}");
    }
    // Well-formed base64 that the store never gave out is refused too, not a 500.
    let errors = get("?kind=slots&slots_cursor=bm9wZQ".into())
        .await
        .expect_error(400);
    assert!(
        errors.contains("cursor: is not a cursor this listing gave out"),
        "{errors}"
    );

    // 30 days after they start (SEYAHA_SLOT_RETENTION_DAYS), slots are gone.
    app.clock().advance(Duration::from_secs(30 * 24 * 3600));
    assert_eq!(
        get("?kind=slots".into()).await.expect_success(200)["slots"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "29 days after the start"
    );
    app.clock().advance(Duration::from_secs(2 * 24 * 3600));
    app.settle().await;
    assert!(
        get("?kind=slots".into()).await.expect_success(200)["slots"]
            .as_array()
            .unwrap()
            .is_empty(),
        "31 days after the start"
    );
}

#[tokio::test]
async fn a_slot_whose_start_moved_later_expires_by_its_new_start() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let day = |n: i64| {
        app.clock()
            .now()
            .plus_millis(n * 24 * 3600 * 1000)
            .to_string()
    };
    let mut update = slot_update("product_1", "DEFAULT", "moving");
    update["localDateTimeStart"] = json!(day(1));
    app.notify(&integration, update.clone())
        .await
        .expect_success(200);
    // The partner moves the departure ten days later.
    update["localDateTimeStart"] = json!(day(11));
    app.notify(&integration, update).await.expect_success(200);

    // 32 days on, the old start's retention is over but the new one's is not. Another write
    // makes the store forget what expired.
    app.clock().advance(Duration::from_secs(32 * 24 * 3600));
    let mut other = slot_update("product_1", "DEFAULT", "other");
    other["localDateTimeStart"] = json!(day(1));
    app.notify(&integration, other).await.expect_success(200);
    app.settle().await;
    let admin = app.admin_token();
    let reply = app
        .call(
            "GET",
            &format!("/{}/catalog?kind=slots", integration.id),
            Some(&admin),
            None,
        )
        .await;
    let slots = reply.expect_success(200)["slots"]
        .as_array()
        .unwrap()
        .clone();
    let ids: Vec<_> = slots
        .iter()
        .map(|s| s["availabilityId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"moving"),
        "the slot starts on day 11, so it is kept until day 41: {ids:?}"
    );
}
