//! Push subscriptions (docs/api.md): with a public URL (seyaha-local's own address here),
//! approval subscribes Seyaha to the partner's OCTO notifications, else its webhooks, else
//! nothing; with a delivery secret of its own that the events route accepts and no answer
//! shows. Pausing, a `base_url` change and delete remove the subscription. The delivery
//! secret is accepted only while a subscription made with it is on record: never after a
//! failed create, and not a moment after a pause, an unapproval or a `base_url` change.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, new_partner, wait_until};

/// Polls the integration (as the admin) until `done` holds.
async fn wait_for(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let integration = app
            .call(
                "GET",
                &format!("/admin/{id}"),
                Some(&app.admin_token()),
                None,
            )
            .await
            .expect_success(200)
            .clone();
        if done(&integration) {
            return integration;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {integration:#}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn push(app: &TestApp, id: &str, secret: &str) -> u16 {
    let body = json!({"notificationType": "BOOKING_UPDATE", "payload": {"uuid": "b"}});
    app.webhook(id, "octo/events", Some(secret), Some(body))
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn approval_subscribes_once_and_pausing_unsubscribes() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    octo.offer_channel("notifications/subscriptions");
    let created = app
        .register(&new_partner(), &octo.base_url(), "bearer", FAKE_KEY)
        .await;
    let id = created["_id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["notifications"],
        json!({"mode": "none", "subscription_ids": [], "subscribed_at": null, "error_message": null})
    );
    // A stale subscription of ours (a secret Seyaha no longer holds) is replaced, not kept beside.
    let url = app.url(&format!("/{id}/octo/events"));
    octo.add_subscription(
        "notifications/subscriptions",
        json!({"id": "old_1", "url": url, "headers": {"x-webhook-secret": "0".repeat(64)}}),
    );

    app.approve(&id).await;
    let integration = wait_for(&app, &id, "the subscription", |i| {
        i["notifications"]["mode"] == "octo_notifications"
    })
    .await;
    let subscriptions = octo.subscriptions();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    let subscription = &subscriptions[0];
    assert_eq!(
        integration["notifications"]["subscription_ids"],
        json!([subscription["id"]])
    );
    assert!(integration["notifications"]["subscribed_at"].is_string());
    assert_eq!(octo.deleted_subscriptions(), ["old_1"]);
    assert_eq!(subscription["url"], url.as_str());
    assert_eq!(
        subscription["notificationTypes"],
        json!(["PRODUCT_UPDATE", "AVAILABILITY_UPDATE"])
    );
    let delivery_secret = subscription["headers"]["x-webhook-secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(delivery_secret.len(), 64);
    assert_ne!(delivery_secret, created["webhook_secret"].as_str().unwrap());
    // The partner's platform delivers with it; Seyaha never shows it.
    assert_eq!(push(&app, &id, &delivery_secret).await, 202);
    assert_eq!(
        push(&app, &id, created["webhook_secret"].as_str().unwrap()).await,
        202
    );
    assert!(!integration.to_string().contains(&delivery_secret));

    // Pausing removes it on the partner's side, and its secret stops working.
    let admin = app.admin_token();
    app.call(
        "PATCH",
        &format!("/admin/{id}"),
        Some(&admin),
        Some(json!({"isActive": false})),
    )
    .await
    .expect_success(200);
    wait_for(&app, &id, "the unsubscription", |i| {
        i["notifications"]["mode"] == "none"
    })
    .await;
    assert_eq!(octo.deleted_subscriptions().len(), 2);
    assert!(octo.subscriptions().is_empty());
    app.call(
        "PATCH",
        &format!("/admin/{id}"),
        Some(&admin),
        Some(json!({"isActive": true})),
    )
    .await
    .expect_success(200);
    assert_eq!(
        push(&app, &id, &delivery_secret).await,
        401,
        "the old delivery secret is gone"
    );
    wait_for(&app, &id, "the new subscription", |i| {
        i["notifications"]["mode"] == "octo_notifications"
    })
    .await;
    assert_eq!(octo.subscriptions().len(), 1);
}

#[tokio::test]
async fn webhooks_are_the_fallback_and_none_the_last_resort() {
    let app = TestApp::spawn().await;
    let webhooks_only = FakeOcto::start().await;
    webhooks_only.offer_channel("webhooks");
    let first = app.approved(&webhooks_only.base_url(), FAKE_KEY).await;
    wait_for(&app, &first.id, "the webhook", |i| {
        i["notifications"]["mode"] == "octo_webhooks"
    })
    .await;
    let webhook = &webhooks_only.subscriptions()[0];
    assert_eq!(
        (webhook["event"].clone(), webhook["url"].clone()),
        (
            json!("availability_update"),
            json!(app.url(&format!("/{}/octo/events", first.id)))
        )
    );

    let nothing = FakeOcto::start().await;
    let second = app.approved(&nothing.base_url(), FAKE_KEY).await;
    let integration = wait_for(&app, &second.id, "no channel", |i| {
        i["notifications"]["subscribed_at"].is_string()
    })
    .await;
    assert_eq!(
        (
            integration["notifications"]["mode"].clone(),
            integration["notifications"]["subscription_ids"].clone()
        ),
        (json!("none"), json!([]))
    );
}

#[tokio::test]
async fn delete_and_a_base_url_change_remove_the_subscription() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    octo.offer_channel("notifications/subscriptions");
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    wait_for(&app, &integration.id, "the subscription", |i| {
        i["notifications"]["mode"] == "octo_notifications"
    })
    .await;
    // The partner moves to another platform: the old one loses the subscription.
    let elsewhere = FakeOcto::start().await;
    elsewhere.offer_channel("notifications/subscriptions");
    let partner = app.partner_token(&integration.partner);
    let moved = app
        .call(
            "PATCH",
            "/me",
            Some(&partner),
            Some(json!({"base_url": elsewhere.base_url()})),
        )
        .await;
    assert_eq!(moved.expect_success(200)["isApproved"], false);
    wait_until(
        "the old platform's subscription to go",
        Duration::from_secs(15),
        || octo.subscriptions().is_empty(),
    )
    .await;
    // Approved again on the new platform, then deleted: the new one goes at once with it.
    app.approve(&integration.id).await;
    wait_until(
        "the new platform's subscription",
        Duration::from_secs(15),
        || elsewhere.subscriptions().len() == 1,
    )
    .await;
    wait_for(
        &app,
        &integration.id,
        "the new subscription on record",
        |i| {
            i["notifications"]["subscription_ids"]
                .as_array()
                .is_some_and(|ids| ids.len() == 1)
        },
    )
    .await;
    app.call(
        "DELETE",
        &format!("/admin/{}", integration.id),
        Some(&app.admin_token()),
        None,
    )
    .await
    .expect_success(200);
    assert!(
        elsewhere.subscriptions().is_empty(),
        "removed before the delete answered"
    );
}

#[tokio::test]
async fn a_restart_reuses_subscriptions_the_partner_kept_and_renews_those_it_lost() {
    // A public URL that stays the same across restarts (the test server's port does not).
    let settings = seyaha::settings::Settings {
        public_url: Some("http://seyaha.test".into()),
        ..seyaha_tests::test_settings()
    };
    let mut app = TestApp::spawn_with(settings).await;
    let octo = FakeOcto::start().await;
    octo.offer_channel("notifications/subscriptions");
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    let first = wait_for(&app, &integration.id, "the subscription", |i| {
        i["notifications"]["mode"] == "octo_notifications"
    })
    .await;
    let kept = octo.subscriptions();
    assert_eq!(
        kept[0]["url"],
        format!(
            "http://seyaha.test/api/v1/partner-integrations/{}/octo/events",
            integration.id
        )
    );

    // The partner still holds it: the restart's subscribe job finds and reuses it.
    app.restart().await;
    app.settle().await;
    assert_eq!(octo.subscriptions(), kept, "reused, not duplicated");
    let after = app
        .call(
            "GET",
            &format!("/admin/{}", integration.id),
            Some(&app.admin_token()),
            None,
        )
        .await
        .expect_success(200)
        .clone();
    assert_eq!(
        after["notifications"]["subscription_ids"],
        first["notifications"]["subscription_ids"]
    );

    // The partner lost it: the next restart subscribes again, with a new delivery secret.
    octo.forget_subscriptions();
    app.restart().await;
    app.settle().await;
    let renewed = octo.subscriptions();
    assert_eq!(renewed.len(), 1);
    assert_ne!(renewed[0]["headers"], kept[0]["headers"]);
    let after = app
        .call(
            "GET",
            &format!("/admin/{}", integration.id),
            Some(&app.admin_token()),
            None,
        )
        .await
        .expect_success(200)
        .clone();
    assert_eq!(
        after["notifications"]["subscription_ids"],
        json!([renewed[0]["id"]])
    );
    assert_eq!(
        push(
            &app,
            &integration.id,
            renewed[0]["headers"]["x-webhook-secret"].as_str().unwrap()
        )
        .await,
        202
    );
    assert_eq!(
        push(
            &app,
            &integration.id,
            kept[0]["headers"]["x-webhook-secret"].as_str().unwrap()
        )
        .await,
        401
    );
}

/// The delivery secret a platform holds for integration `id`.
fn delivery_secret_of(octo: &FakeOcto, app: &TestApp, id: &str) -> String {
    let url = app.url(&format!("/{id}/octo/events"));
    let subscriptions = octo.subscriptions();
    let ours = subscriptions
        .iter()
        .find(|s| s["url"] == url.as_str())
        .unwrap_or_else(|| panic!("no subscription for {id}"));
    ours["headers"]["x-webhook-secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_delivery_secret_whose_subscription_failed_to_be_made_is_refused() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    octo.offer_channel("notifications/subscriptions");
    // The platform stores the subscription (and its secret), then answers 500.
    octo.fail_subscription_creates_after_recording();
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    let shown = wait_for(&app, &integration.id, "the failed subscription", |i| {
        i["notifications"]["mode"] == "error"
    })
    .await;
    assert_eq!(shown["notifications"]["subscription_ids"], json!([]));
    let captured = delivery_secret_of(&octo, &app, &integration.id);
    assert_eq!(
        push(&app, &integration.id, &captured).await,
        401,
        "no subscription on record: the secret is not accepted"
    );
    // Nor after the webhook secret is rotated, twice.
    for _ in 0..2 {
        let partner = app.partner_token(&integration.partner);
        app.call("POST", "/me/webhook-secret", Some(&partner), None)
            .await
            .expect_success(201);
        assert_eq!(push(&app, &integration.id, &captured).await, 401);
    }
}

#[tokio::test]
async fn a_pause_an_unapproval_or_a_base_url_change_stops_the_delivery_secret_in_the_same_write() {
    let app = TestApp::spawn().await;
    let elsewhere = FakeOcto::start().await;
    for change in ["pause", "unapproval", "base_url"] {
        let octo = FakeOcto::start().await;
        octo.offer_channel("notifications/subscriptions");
        let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
        wait_for(&app, &integration.id, "the subscription", |i| {
            i["notifications"]["subscription_ids"]
                .as_array()
                .is_some_and(|ids| ids.len() == 1)
        })
        .await;
        let secret = delivery_secret_of(&octo, &app, &integration.id);
        assert_eq!(
            push(&app, &integration.id, &secret).await,
            202,
            "{change}: accepted while subscribed"
        );
        // The unsubscribe job cannot finish: only the change's own write can stop the secret.
        octo.hold_subscription_deletes();
        let admin = app.admin_token();
        let changed = match change {
            "pause" => {
                app.call(
                    "PATCH",
                    &format!("/admin/{}", integration.id),
                    Some(&admin),
                    Some(json!({"isActive": false})),
                )
                .await
            }
            "unapproval" => {
                app.call(
                    "PATCH",
                    &format!("/admin/{}", integration.id),
                    Some(&admin),
                    Some(json!({"isApproved": false})),
                )
                .await
            }
            _ => {
                let partner = app.partner_token(&integration.partner);
                app.call(
                    "PATCH",
                    "/me",
                    Some(&partner),
                    Some(json!({"base_url": elsewhere.base_url()})),
                )
                .await
            }
        };
        changed.expect_success(200);
        // 401, not the 403 of an authenticated call to an integration that is not live.
        assert_eq!(
            push(&app, &integration.id, &secret).await,
            401,
            "{change}: refused from the change's own write"
        );
        assert_eq!(
            push(&app, &integration.id, &integration.secret).await,
            403,
            "{change}: the webhook secret still authenticates"
        );
        octo.release();
        wait_until("the unsubscription", Duration::from_secs(15), || {
            octo.subscriptions().is_empty()
        })
        .await;
        // Live again (on the new platform, which offers no channel): the old secret stays dead.
        let admin_patch = match change {
            "pause" => json!({"isActive": true}),
            _ => json!({"isApproved": true}),
        };
        app.call(
            "PATCH",
            &format!("/admin/{}", integration.id),
            Some(&admin),
            Some(admin_patch),
        )
        .await
        .expect_success(200);
        assert_eq!(
            push(&app, &integration.id, &secret).await,
            401,
            "{change}: the old delivery secret is gone"
        );
    }
}
