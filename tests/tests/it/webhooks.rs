//! The webhook routes authenticate in the documented order: secret and integration (401),
//! then approval and activity (403), then the body (400).

use serde_json::{Value, json};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto, sample_catalog};
use seyaha_tests::{TestApp, new_partner};

#[tokio::test]
async fn check_order_401_then_403_then_400() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let created = app
        .register(&partner, "https://octo.example.com", "bearer", "k")
        .await;
    let id = created["_id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let notify = Some(
        json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00+03:00"}),
    );
    let unknown = "64a1b2c3d4e5f6a7b8c9d0e1";

    for what in ["sync/trigger", "availability/notify"] {
        let body = if what == "sync/trigger" {
            None
        } else {
            notify.clone()
        };
        // 401: missing secret, wrong secret, empty secret, unknown integration — all alike.
        let missing = app
            .webhook(&id, what, None, body.clone())
            .await
            .expect_error(401);
        let wrong = app
            .webhook(&id, what, Some(&"0".repeat(64)), body.clone())
            .await
            .expect_error(401);
        let empty = app
            .webhook(&id, what, Some(""), body.clone())
            .await
            .expect_error(401);
        let stranger = app
            .webhook(unknown, what, Some(&secret), body.clone())
            .await
            .expect_error(401);
        assert!(
            missing == wrong && wrong == empty && empty == stranger,
            "no enumeration: the same answer every time"
        );
        // 403: right secret, not approved yet.
        assert!(
            app.webhook(&id, what, Some(&secret), body.clone())
                .await
                .text
                .contains("not approved")
        );
        app.webhook(&id, what, Some(&secret), body.clone())
            .await
            .expect_error(403);
        app.webhook("not-hex", what, Some(&secret), body.clone())
            .await
            .expect_error(400);
    }

    // Before approval even a broken body is 403: the body is checked last.
    app.webhook(
        &id,
        "availability/notify",
        Some(&secret),
        Some(json!({"productId": 5})),
    )
    .await
    .expect_error(403);

    app.approve(&id).await;
    // Approved: the trigger reaches the partner (which does not resolve here: 502), the notify
    // body is validated (400), and a valid notify for an unknown product falls back (200).
    let failed = app.webhook(&id, "sync/trigger", Some(&secret), None).await;
    assert!(
        failed
            .expect_error(502)
            .starts_with("base_url: could not connect to octo.example.com"),
        "{}",
        failed.text
    );
    let errors = app
        .webhook(
            &id,
            "availability/notify",
            Some(&secret),
            Some(json!({"productId": 5})),
        )
        .await
        .expect_error(400);
    assert!(
        errors.contains("productId: must be a string") && errors.contains("optionId: is required"),
        "{errors}"
    );
    let unknown_product = app
        .webhook(&id, "availability/notify", Some(&secret), notify.clone())
        .await;
    assert_eq!(
        unknown_product.expect_success(200),
        &json!({"updated": false})
    );

    let admin = app.admin_token();
    app.call(
        "PATCH",
        &format!("/admin/{id}"),
        Some(&admin),
        Some(json!({"isActive": false})),
    )
    .await
    .expect_success(200);
    let inactive = app.webhook(&id, "sync/trigger", Some(&secret), None).await;
    inactive.expect_error(403);
    assert!(inactive.text.contains("inactive"));

    // A secret for one integration does not open another.
    let other_partner = new_partner();
    let other = app
        .register(&other_partner, "https://octo.example.com", "bearer", "k")
        .await;
    app.approve(other["_id"].as_str().unwrap()).await;
    app.webhook(
        other["_id"].as_str().unwrap(),
        "sync/trigger",
        Some(&secret),
        None,
    )
    .await
    .expect_error(401);
}

/// Per-integration rate limiting: one partner's burst is answered 429 (in the envelope, with
/// Retry-After) without costing any other partner, and the next minute starts afresh.
#[tokio::test]
async fn a_partners_burst_is_limited_without_touching_other_partners() {
    use std::time::Duration;

    use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
    let app = seyaha_tests::TestApp::spawn_with_fake_clock(seyaha::settings::Settings {
        webhook_rate_per_minute: 3,
        ..seyaha_tests::test_settings()
    })
    .await;
    let octo = FakeOcto::start().await;
    let (busy, calm) = (
        app.approved(&octo.base_url(), FAKE_KEY).await,
        app.approved(&octo.base_url(), FAKE_KEY).await,
    );
    let body = json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2030-07-15T10:00:00+03:00"});
    for _ in 0..3 {
        app.notify(&busy, body.clone()).await.expect_success(200);
    }
    let limited = app.notify(&busy, body.clone()).await;
    let errors = limited.expect_error(429);
    assert!(errors.contains("retry after"), "{errors}");
    let response = app
        .http
        .post(app.url(&format!("/{}/sync/trigger", busy.id)))
        .header("x-webhook-secret", &busy.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        429,
        "the trigger shares the integration's limit"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    app.notify(&calm, body.clone()).await.expect_success(200);

    app.clock().advance(Duration::from_secs(60));
    app.notify(&busy, body).await.expect_success(200);
}

/// A large supplier's limit is raised by an admin for that integration alone (the batch
/// notify counts one call like any webhook), shows on its document, and `null` sets it back
/// to the service's default.
#[tokio::test]
async fn an_admin_raises_one_integrations_webhook_limit_and_can_set_it_back() {
    use std::time::Duration;

    use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
    let app = seyaha_tests::TestApp::spawn_with_fake_clock(seyaha::settings::Settings {
        webhook_rate_per_minute: 3,
        ..seyaha_tests::test_settings()
    })
    .await;
    let octo = FakeOcto::start().await;
    let (large, other) = (
        app.approved(&octo.base_url(), FAKE_KEY).await,
        app.approved(&octo.base_url(), FAKE_KEY).await,
    );
    let admin = app.admin_token();
    let large_path = format!("/admin/{}", large.id);
    let patch = |limit: serde_json::Value| {
        app.call(
            "PATCH",
            &large_path,
            Some(&admin),
            Some(json!({"webhookRatePerMinute": limit})),
        )
    };
    let raised = patch(json!(8)).await;
    assert_eq!(raised.expect_success(200)["webhookRatePerMinute"], 8);
    let got = app
        .call("GET", &format!("/admin/{}", other.id), Some(&admin), None)
        .await;
    assert_eq!(
        got.expect_success(200)["webhookRatePerMinute"],
        serde_json::Value::Null,
        "the other keeps the default"
    );

    let body = json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2030-07-15T10:00:00+03:00"});
    for _ in 0..7 {
        app.notify(&large, body.clone()).await.expect_success(200);
    }
    let batch = app
        .http
        .post(app.url(&format!("/{}/availability/notify-batch", large.id)))
        .header("x-webhook-secret", &large.secret)
        .json(&json!([body.clone(), body.clone()]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        batch.status(),
        200,
        "the eighth call, a batch of two, is one call"
    );
    app.notify(&large, body.clone()).await.expect_error(429);
    for _ in 0..3 {
        app.notify(&other, body.clone()).await.expect_success(200);
    }
    app.notify(&other, body.clone()).await.expect_error(429);

    let reset = patch(serde_json::Value::Null).await;
    assert_eq!(
        reset.expect_success(200)["webhookRatePerMinute"],
        serde_json::Value::Null
    );
    app.clock().advance(Duration::from_secs(60));
    for _ in 0..3 {
        app.notify(&large, body.clone()).await.expect_success(200);
    }
    app.notify(&large, body).await.expect_error(429);
}

/// Hostile notify bodies: deep nesting, a 5,000-digit number
/// and invalid UTF-8 each get a 4xx envelope, and the next valid notify is applied.
#[tokio::test]
async fn hostile_notify_bodies_get_a_4xx_and_the_service_keeps_answering() {
    use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};

    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let valid = json!({"productId": "product_1", "optionId": "DEFAULT", "availabilityId": "slot-1",
                       "localDateTimeStart": "2030-07-15T10:00:00+04:00", "vacancies": 3, "capacity": 12});
    let raw = |body: Vec<u8>| {
        app.http
            .post(app.url(&format!("/{}/availability/notify", integration.id)))
            .header("x-webhook-secret", &integration.secret)
            .header("content-type", "application/json")
            .body(body)
    };
    let nested = |depth: usize| {
        format!(
            r#"{{"productId": {}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
        .into_bytes()
    };
    let mut long_number = valid
        .to_string()
        .replace(
            r#""vacancies":3"#,
            &format!(r#""vacancies":{}"#, "9".repeat(5_000)),
        )
        .into_bytes();
    assert!(long_number.len() > 5_000);
    let mut invalid_utf8 = valid.to_string().into_bytes();
    invalid_utf8.splice(15..15, [0xff, 0xfe, 0xc3]);
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("30,000 levels of nesting", nested(30_000), 400),
        (
            "100,000 levels of nesting (past the body limit)",
            nested(100_000),
            413,
        ),
        (
            "a 5,000-digit number",
            std::mem::take(&mut long_number),
            400,
        ),
        ("invalid UTF-8", invalid_utf8, 400),
    ];
    for (what, body, status) in cases {
        let reply = seyaha_tests::send(raw(body)).await;
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.text);
        assert_eq!(reply.body["success"], 0, "{what}: the error envelope");
        assert_eq!(
            app.notify(&integration, valid.clone())
                .await
                .expect_success(200),
            &json!({"updated": true}),
            "after {what}"
        );
    }
}

/// 800 notifies over 32 slots, many in flight at once: every one is
/// answered 200 (no 5xx), and a last update per slot sent after them is what each slot holds
/// (no update acknowledged before it overwrote it later, none lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_notifies_over_shared_slots_lose_no_update() {
    use futures_util::StreamExt;
    use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};

    let settings = seyaha::settings::Settings {
        webhook_rate_per_minute: 10_000,
        ..seyaha_tests::test_settings()
    };
    let app = TestApp::spawn_with(settings).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let update = |slot: u64, vacancies: u64| {
        json!({"productId": "product_1", "optionId": "DEFAULT", "availabilityId": format!("race-{slot}"),
               "localDateTimeStart": "2030-07-15T10:00:00+04:00", "vacancies": vacancies, "capacity": 10_000})
    };
    let send_all = |updates: Vec<Value>| {
        let (app, integration) = (&app, &integration);
        futures_util::stream::iter(updates)
            .map(move |body| async move { app.notify(integration, body).await })
            .buffer_unordered(100)
            .collect::<Vec<_>>()
    };
    for reply in send_all((0..800).map(|n| update(n % 32, n)).collect()).await {
        assert_eq!(reply.expect_success(200), &json!({"updated": true}));
    }
    for reply in send_all((0..32).map(|slot| update(slot, 5_000 + slot)).collect()).await {
        assert_eq!(reply.expect_success(200), &json!({"updated": true}));
    }
    let catalog = app
        .call(
            "GET",
            &format!("/{}/catalog?kind=slots&limit=100", integration.id),
            Some(&app.admin_token()),
            None,
        )
        .await;
    let slots: Vec<&Value> = catalog.expect_success(200)["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["availabilityId"].as_str().unwrap().starts_with("race-"))
        .collect();
    assert_eq!(slots.len(), 32, "every slot is there");
    for slot in slots {
        let n: u64 = slot["availabilityId"].as_str().unwrap()["race-".len()..]
            .parse()
            .unwrap();
        assert_eq!(slot["vacancies"], 5_000 + n, "{slot}");
    }
}

/// A batch notify: many slots in one call, each item on its own. Valid items for known
/// products are stored, a bad item is reported in its result without rejecting the rest, an
/// unknown product requests one fallback sync for the batch, duplicates keep the last; a body
/// that is not a non-empty array, or whose items are all invalid, is a 400; the documented
/// 401 -> 403 -> 400 order holds.
#[tokio::test]
async fn a_batch_notify_stores_each_valid_slot_and_reports_each_bad_one() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(2));
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let slot = |product: &str, availability: &str, vacancies: u64| {
        json!({"productId": product, "optionId": "DEFAULT", "availabilityId": availability,
               "localDateTimeStart": format!("{availability}+03:00"), "status": "LIMITED", "vacancies": vacancies, "capacity": 20})
    };
    let batch = json!([
        slot("product_0", "2099-07-15T10:00:00", 4),
        {"productId": 5, "optionId": "DEFAULT"},
        slot("product_1", "2099-07-15T12:00:00", 7),
        slot("product_unknown", "2099-07-15T14:00:00", 1),
        // The OCTO webhook wrapper is an item like any other; the same slot again wins last.
        {"webhook": {"event": "availability_update"}, "availability": {"productId": "product_0", "optionId": "DEFAULT",
            "id": "2099-07-15T10:00:00", "localDateTimeStart": "2099-07-15T10:00:00+03:00", "status": "LIMITED", "vacancies": 3, "capacity": 20}},
    ]);
    let secret = Some(integration.secret.as_str());
    let answer = app
        .webhook(
            &integration.id,
            "availability/notify-batch",
            secret,
            Some(batch.clone()),
        )
        .await;
    let data = answer.expect_success(200).clone();
    assert_eq!(
        (
            data["updated"].clone(),
            data["sync_requested"].clone(),
            data["rejected"].clone()
        ),
        (json!(3), json!(true), json!(1)),
        "{data}"
    );
    let results = data["results"].as_array().unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| r["updated"].clone())
            .collect::<Vec<_>>(),
        [true, false, true, false, true].map(Value::from)
    );
    assert_eq!(
        results
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    let errors = results[1]["error"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e == "productId: must be a string")
            && errors
                .iter()
                .any(|e| e.as_str().unwrap().starts_with("availabilityId")),
        "{errors:?}"
    );
    assert!(
        results[3].get("error").is_none(),
        "an unknown product is no error: {}",
        results[3]
    );

    let slots = app
        .call(
            "GET",
            &format!("/{}/catalog?kind=slots", integration.id),
            Some(&app.admin_token()),
            None,
        )
        .await;
    let slots = slots.expect_success(200)["slots"]
        .as_array()
        .unwrap()
        .clone();
    let vacancies: Vec<(String, u64)> = slots
        .iter()
        .map(|s| {
            (
                s["productId"].as_str().unwrap().to_owned(),
                s["vacancies"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(slots.len(), 2, "{slots:?}");
    assert!(
        vacancies.contains(&("product_0".into(), 3))
            && vacancies.contains(&("product_1".into(), 7)),
        "{vacancies:?}"
    );
    // One fallback sync for the batch's unknown product.
    app.wait_for_log(&integration.id, "the batch's fallback sync", |log| {
        !seyaha_tests::runs_with_trigger(log, "fallback").is_empty()
    })
    .await;

    // Bad batches as a whole: 400 with the reason.
    for (body, expected) in [
        (json!({"productId": "p"}), "body: must be a JSON array"),
        (json!([]), "body: must contain at least one"),
        (
            json!([{"productId": 5}, {}]),
            "[0].productId: must be a string",
        ),
    ] {
        let errors = app
            .webhook(
                &integration.id,
                "availability/notify-batch",
                secret,
                Some(body),
            )
            .await
            .expect_error(400);
        assert!(errors.contains(expected), "{expected}: {errors}");
    }
    // The documented order: 401 before 403 before 400.
    app.webhook(
        &integration.id,
        "availability/notify-batch",
        Some(&"0".repeat(64)),
        Some(json!([])),
    )
    .await
    .expect_error(401);
    app.call(
        "PATCH",
        &format!("/admin/{}", integration.id),
        Some(&app.admin_token()),
        Some(json!({"isActive": false})),
    )
    .await
    .expect_success(200);
    app.webhook(
        &integration.id,
        "availability/notify-batch",
        secret,
        Some(json!([])),
    )
    .await
    .expect_error(403);
}
