//! `POST /{id}/octo/events`: what a partner's OCTO platform pushes by itself (docs/api.md, "OCTO events").
//! Authenticated like the other webhooks; a `PRODUCT_UPDATE` syncs exactly that product in the
//! background, an `availability_update` delivery stores its slot, unknown types are accepted
//! and ignored, bad bodies are 400.

use serde_json::{Value, json};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto, sample_catalog};
use seyaha_tests::{Registered, TestApp, active_names, runs_with_trigger};

async fn event(app: &TestApp, integration: &Registered, body: Value) -> seyaha_tests::Reply {
    app.webhook(
        &integration.id,
        "octo/events",
        Some(&integration.secret),
        Some(body),
    )
    .await
}

async fn synced() -> (TestApp, FakeOcto, Registered) {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    (app, octo, integration)
}

fn activity<'a>(catalog: &'a Value, name: &str) -> &'a Value {
    catalog["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["internalName"] == name)
        .unwrap_or_else(|| panic!("no activity {name}"))
}

#[tokio::test]
async fn events_check_the_secret_then_approval_then_the_body() {
    let app = TestApp::spawn().await;
    let created = app
        .register(
            &seyaha_tests::new_partner(),
            "https://octo.example.com",
            "bearer",
            "k",
        )
        .await;
    let id = created["_id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let body = Some(json!({"notificationType": "PRODUCT_UPDATE", "payload": {"productId": "p"}}));
    app.webhook(&id, "octo/events", Some(&"0".repeat(64)), body.clone())
        .await
        .expect_error(401);
    app.webhook(&id, "octo/events", None, body.clone())
        .await
        .expect_error(401);
    app.webhook(&id, "octo/events", Some(&secret), Some(json!({"type": 5})))
        .await
        .expect_error(403);
    app.approve(&id).await;
    let errors = app
        .webhook(
            &id,
            "octo/events",
            Some(&secret),
            Some(json!({"type": "PRODUCT_UPDATE", "data": {}})),
        )
        .await
        .expect_error(400);
    assert!(
        errors.contains("payload.productId: is required"),
        "{errors}"
    );
    let errors = app
        .webhook(
            &id,
            "octo/events",
            Some(&secret),
            Some(json!({"hello": "world"})),
        )
        .await
        .expect_error(400);
    assert!(
        errors.contains("must be an OCTO webhook delivery"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_product_update_syncs_exactly_that_product() {
    let (app, octo, integration) = synced().await;
    let before = app.sync_log(&integration.id).await;
    let mut catalog = sample_catalog(3);
    catalog[1]["title"] = json!("Product 1, renovated");
    octo.set_catalog(catalog);

    let reply = event(
        &app,
        &integration,
        json!({"notificationType": "PRODUCT_UPDATE", "payload": {"productId": "product_1"}}),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    assert_eq!(
        reply.body["data"],
        json!({"accepted": true, "action": "product_sync_queued"})
    );

    let log = app
        .wait_for_log(&integration.id, "the product sync", |log| {
            !runs_with_trigger(log, "product_update").is_empty()
        })
        .await;
    let run = runs_with_trigger(&log, "product_update")[0];
    assert_eq!(
        (
            run["outcome"].clone(),
            run["updated"].clone(),
            run["created"].clone()
        ),
        (json!("synced"), json!(1), json!(0)),
        "{run}"
    );
    assert_eq!(
        octo.single_product_calls(),
        ["product_1"],
        "one product fetched"
    );
    assert_eq!(
        octo.product_calls(),
        1,
        "no full catalog fetch beyond the first sync"
    );
    assert_eq!(
        log["sync"]["last_sync_hash"], before["sync"]["last_sync_hash"],
        "the catalog hash is the full sync's"
    );

    let catalog = app.catalog(&integration.id).await;
    assert_eq!(
        activity(&catalog, "product-1")["activity_title"],
        "Product 1, renovated"
    );
    assert_eq!(
        activity(&catalog, "product-0")["activity_title"],
        "Product 0"
    );
    assert_eq!(active_names(&catalog).len(), 3);

    // The same update again writes nothing: the content hash is unchanged.
    event(
        &app,
        &integration,
        json!({"type": "product_update", "productId": "product_1"}),
    )
    .await;
    let log = app
        .wait_for_log(&integration.id, "the second product sync", |log| {
            runs_with_trigger(log, "product_update").len() == 2
        })
        .await;
    assert_eq!(runs_with_trigger(&log, "product_update")[0]["unchanged"], 1);
}

#[tokio::test]
async fn a_product_the_partner_no_longer_has_is_deactivated() {
    let (app, octo, integration) = synced().await;
    let mut catalog = sample_catalog(3);
    catalog.as_array_mut().unwrap().remove(2);
    octo.set_catalog(catalog);

    let reply = event(
        &app,
        &integration,
        json!({"type": "PRODUCT_UPDATE", "data": {"productId": "product_2"}}),
    )
    .await;
    assert_eq!(reply.body["data"]["action"], "product_sync_queued");
    let log = app
        .wait_for_log(&integration.id, "the product sync", |log| {
            !runs_with_trigger(log, "product_update").is_empty()
        })
        .await;
    assert_eq!(
        runs_with_trigger(&log, "product_update")[0]["deactivated"],
        1
    );
    assert_eq!(
        active_names(&app.catalog(&integration.id).await),
        ["product-0", "product-1"]
    );
}

#[tokio::test]
async fn an_availability_update_delivery_stores_its_slot() {
    let (app, _octo, integration) = synced().await;
    let delivery = json!({
        "webhook": {"id": "wh", "event": "availability_update"}, "supplier": {"id": "s"},
        "productId": "product_0", "optionId": "DEFAULT",
        "availability": {"id": "slot-9", "localDateTimeStart": "2030-07-15T10:00:00+04:00", "status": "LIMITED", "vacancies": 2, "capacity": 10}
    });
    let reply = event(&app, &integration, delivery).await;
    assert_eq!(reply.status.as_u16(), 202);
    assert_eq!(reply.body["data"]["action"], "slot_updated");
    let slots = app.catalog(&integration.id).await["slots"].clone();
    assert!(
        slots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["availabilityId"] == "slot-9" && s["vacancies"] == 2),
        "{slots}"
    );

    // For a product Seyaha does not hold, a full sync is requested instead (as notify does).
    let unknown = json!({"webhook": {"event": "availability_update"},
        "availability": {"productId": "new", "optionId": "o", "id": "a", "localDateTimeStart": "2030-07-15T10:00:00+04:00"}});
    assert_eq!(
        event(&app, &integration, unknown).await.body["data"]["action"],
        "sync_requested"
    );
}

#[tokio::test]
async fn unknown_types_are_accepted_and_ignored() {
    let (app, octo, integration) = synced().await;
    for body in [
        json!({"notificationType": "SUPPLIER_UPDATE", "payload": {"supplierId": "x"}}),
        json!({"webhook": {"event": "booking.cancelled"}}),
        json!({"type": "BOOKING_UPDATE", "data": {"uuid": "b-1"}}),
    ] {
        let reply = event(&app, &integration, body.clone()).await;
        assert_eq!(reply.status.as_u16(), 202, "{body}: {}", reply.text);
        assert_eq!(
            reply.body["data"],
            json!({"accepted": true, "action": "ignored"}),
            "{body}"
        );
    }
    assert!(octo.single_product_calls().is_empty());
    assert_eq!(octo.product_calls(), 1);
}
