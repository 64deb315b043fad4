//! `availability/notify` over real HTTP: known slots updated in all three body formats, each
//! invalid field a 400, and a burst of notifies for unknown products coalesced into one
//! fallback sync.

use std::time::Duration;

use serde_json::{Value, json};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, runs_with_trigger, test_settings};

pub(crate) fn slot_update(product: &str, option: &str, availability: &str) -> Value {
    json!({"productId": product, "optionId": option, "availabilityId": availability, "localDateTimeStart": "2030-07-15T10:00:00+04:00",
           "status": "LIMITED", "vacancies": 3, "capacity": 12})
}

#[tokio::test]
async fn notify_updates_known_slots_in_all_three_formats() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);

    let flat = app
        .notify(&integration, slot_update("product_1", "DEFAULT", "slot-1"))
        .await;
    assert_eq!(flat.expect_success(200), &json!({"updated": true}));
    let wrapped = json!({
        "webhook": {"id": "wh_1", "event": "availability_update", "url": "https://seyaha.example/notify"},
        "availability": {"productId": "product_1", "optionId": "option-1", "id": "2030-07-16T09:00:00+04:00",
                         "localDateTimeStart": "2030-07-16T09:00:00+04:00", "localDateTimeEnd": "2030-07-16T11:00:00+04:00",
                         "allDay": false, "status": "FREESALE", "vacancies": null, "capacity": null, "maxUnits": null, "openingHours": []}
    });
    assert_eq!(
        app.notify(&integration, wrapped).await.expect_success(200),
        &json!({"updated": true})
    );
    // OCTO Cloud: product and option beside the availability, with the supplier.
    let cloud = json!({
        "webhook": {"id": "wh_2", "event": "availability_update"}, "supplier": {"id": "sup_1", "name": "Acme"},
        "productId": "product_1", "optionId": "option-1",
        "availability": {"id": "2030-07-17T09:00:00+04:00", "localDateTimeStart": "2030-07-17T09:00:00+04:00", "status": "AVAILABLE", "vacancies": 5, "capacity": 8}
    });
    assert_eq!(
        app.notify(&integration, cloud).await.expect_success(200),
        &json!({"updated": true})
    );
    // The same slot again replaces it (idempotent upsert).
    let mut sold_out = slot_update("product_1", "DEFAULT", "slot-1");
    sold_out["status"] = json!("SOLD_OUT");
    sold_out["vacancies"] = json!(0);
    app.notify(&integration, sold_out.clone())
        .await
        .expect_success(200);
    app.notify(&integration, sold_out).await.expect_success(200);

    let slots = app.catalog(&integration.id).await["slots"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(slots.len(), 3, "{slots:?}");
    let cloud = slots
        .iter()
        .find(|s| s["availabilityId"] == "2030-07-17T09:00:00+04:00")
        .unwrap();
    assert_eq!(
        (
            cloud["optionId"].clone(),
            cloud["vacancies"].clone(),
            cloud["capacity"].clone()
        ),
        (json!("option-1"), json!(5), json!(8))
    );
    let slot = slots
        .iter()
        .find(|s| s["availabilityId"] == "slot-1")
        .unwrap();
    assert_eq!(
        (
            slot["status"].clone(),
            slot["vacancies"].clone(),
            slot["capacity"].clone()
        ),
        (json!("SOLD_OUT"), json!(0), json!(12))
    );
    let freesale = slots.iter().find(|s| s["optionId"] == "option-1").unwrap();
    assert_eq!(
        (freesale["status"].clone(), freesale["vacancies"].clone()),
        (json!("FREESALE"), Value::Null)
    );
    assert_eq!(octo.product_calls(), 1, "known slots need no sync");
}

#[tokio::test]
async fn notify_rejects_each_invalid_field_with_400() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    let cases = [
        (
            json!({"optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z"}),
            "productId: is required",
        ),
        (
            json!({"productId": "p", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z"}),
            "optionId: is required",
        ),
        (
            json!({"productId": "p", "optionId": "o", "localDateTimeStart": "2026-07-15T10:00:00Z"}),
            "availabilityId: is required",
        ),
        (
            json!({"productId": "p", "optionId": "o", "availabilityId": "a"}),
            "localDateTimeStart: is required",
        ),
        (
            json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15 10:00"}),
            "localDateTimeStart: must be an RFC 3339",
        ),
        (
            json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00"}),
            "localDateTimeStart: must be an RFC 3339",
        ),
        (
            json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z", "status": "OPEN"}),
            "status: must be one of",
        ),
        (
            json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z", "vacancies": -2}),
            "vacancies: must be a non-negative integer",
        ),
        (
            json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z", "capacity": "ten"}),
            "capacity: must be a non-negative integer",
        ),
        (
            json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z", "vacancies": 9, "capacity": 4}),
            "vacancies: must not exceed capacity",
        ),
        (
            json!({"webhook": {"event": "booking_update"}, "booking": {}}),
            "webhook.event: must be availability_update",
        ),
        (
            json!({"webhook": {"event": "availability_update"}, "availability": {"productId": "p", "optionId": "o", "localDateTimeStart": "2026-07-15T10:00:00Z"}}),
            "availability.id: is required",
        ),
    ];
    for (body, expected) in cases {
        let errors = app
            .notify(&integration, body.clone())
            .await
            .expect_error(400);
        assert!(errors.contains(expected), "{body}: {errors}");
    }
    let not_json = seyaha_tests::send(
        app.http
            .post(app.url(&format!("/{}/availability/notify", integration.id)))
            .header("x-webhook-secret", &integration.secret)
            .body("productId=p"),
    )
    .await;
    not_json.expect_error(415);
    let too_big = json!({"productId": "p".repeat(70 * 1024)});
    app.notify(&integration, too_big).await.expect_error(413);
    assert!(
        app.catalog(&integration.id).await["slots"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn a_burst_of_unknown_notifies_yields_one_fallback_sync() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await; // never synced: every product is unknown

    let burst = (0..10).map(|i| {
        app.notify(
            &integration,
            slot_update(
                &format!("product_{}", i % 3),
                "DEFAULT",
                &format!("slot-{i}"),
            ),
        )
    });
    for reply in futures_util::future::join_all(burst).await {
        assert_eq!(reply.expect_success(200), &json!({"updated": false}));
    }
    // The fallback waits out the debounce (2 s by default) on the clock: nothing runs before.
    app.settle().await;
    assert!(
        app.sync_log(&integration.id).await["runs"]
            .as_array()
            .unwrap()
            .is_empty(),
        "debounced"
    );
    app.clock().advance(Duration::from_secs(2));
    app.wait_for_log(&integration.id, "the fallback sync", |log| {
        !runs_with_trigger(log, "fallback").is_empty()
    })
    .await;
    // Well past any debounce or retry: with the queue quiet, a second fallback run cannot come.
    app.settle().await;
    app.clock().advance(Duration::from_secs(60));
    app.settle().await;
    let log = app.sync_log(&integration.id).await;
    assert_eq!(runs_with_trigger(&log, "fallback").len(), 1, "{log:#}");
    assert_eq!(log["runs"].as_array().unwrap().len(), 1);
    assert_eq!(octo.product_calls(), 1);
    assert_eq!(runs_with_trigger(&log, "fallback")[0]["created"], 3);

    // Now the products are known: the same notify updates the slot.
    let known = app
        .notify(&integration, slot_update("product_0", "DEFAULT", "slot-0"))
        .await;
    assert_eq!(known.expect_success(200), &json!({"updated": true}));
    // An unknown option of a known product still falls back.
    let unknown_option = app
        .notify(&integration, slot_update("product_0", "sunset", "slot-x"))
        .await;
    assert_eq!(
        unknown_option.expect_success(200),
        &json!({"updated": false})
    );
}
