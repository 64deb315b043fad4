//! The webhook routes authenticate in the documented order: secret and integration (401),
//! then approval and activity (403), then the body (400).

use serde_json::json;
use seyaha_tests::{TestApp, new_partner};

#[tokio::test]
async fn check_order_401_then_403_then_400() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let created = app.register(&partner, "https://octo.example.com", "bearer", "k").await;
    let id = created["_id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let notify = Some(json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00+03:00"}));
    let unknown = "64a1b2c3d4e5f6a7b8c9d0e1";

    for what in ["sync/trigger", "availability/notify"] {
        let body = if what == "sync/trigger" { None } else { notify.clone() };
        // 401: missing secret, wrong secret, empty secret, unknown integration — all alike.
        let missing = app.webhook(&id, what, None, body.clone()).await.expect_error(401);
        let wrong = app.webhook(&id, what, Some(&"0".repeat(64)), body.clone()).await.expect_error(401);
        let empty = app.webhook(&id, what, Some(""), body.clone()).await.expect_error(401);
        let stranger = app.webhook(unknown, what, Some(&secret), body.clone()).await.expect_error(401);
        assert!(missing == wrong && wrong == empty && empty == stranger, "no enumeration: the same answer every time");
        // 403: right secret, not approved yet.
        assert!(app.webhook(&id, what, Some(&secret), body.clone()).await.text.contains("not approved"));
        app.webhook(&id, what, Some(&secret), body.clone()).await.expect_error(403);
        app.webhook("not-hex", what, Some(&secret), body.clone()).await.expect_error(400);
    }

    // Before approval even a broken body is 403: the body is checked last.
    app.webhook(&id, "availability/notify", Some(&secret), Some(json!({"productId": 5}))).await.expect_error(403);

    app.approve(&id).await;
    // Approved: the trigger reaches the partner (which does not resolve here: 502), the notify
    // body is validated (400), and a valid notify for an unknown product falls back (200).
    let failed = app.webhook(&id, "sync/trigger", Some(&secret), None).await;
    assert!(failed.expect_error(502).starts_with("base_url: could not connect to octo.example.com"), "{}", failed.text);
    let errors = app.webhook(&id, "availability/notify", Some(&secret), Some(json!({"productId": 5}))).await.expect_error(400);
    assert!(errors.contains("productId: must be a string") && errors.contains("optionId: is required"), "{errors}");
    let unknown_product = app.webhook(&id, "availability/notify", Some(&secret), notify.clone()).await;
    assert_eq!(unknown_product.expect_success(200), &json!({"updated": false}));

    let admin = app.admin_token();
    app.call("PATCH", &format!("/admin/{id}"), Some(&admin), Some(json!({"isActive": false}))).await.expect_success(200);
    let inactive = app.webhook(&id, "sync/trigger", Some(&secret), None).await;
    inactive.expect_error(403);
    assert!(inactive.text.contains("inactive"));

    // A secret for one integration does not open another.
    let other_partner = new_partner();
    let other = app.register(&other_partner, "https://octo.example.com", "bearer", "k").await;
    app.approve(other["_id"].as_str().unwrap()).await;
    app.webhook(other["_id"].as_str().unwrap(), "sync/trigger", Some(&secret), None).await.expect_error(401);
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
    let (busy, calm) = (app.approved(&octo.base_url(), FAKE_KEY).await, app.approved(&octo.base_url(), FAKE_KEY).await);
    let body = json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2030-07-15T10:00:00+03:00"});
    for _ in 0..3 {
        app.notify(&busy, body.clone()).await.expect_success(200);
    }
    let limited = app.notify(&busy, body.clone()).await;
    let errors = limited.expect_error(429);
    assert!(errors.contains("retry after"), "{errors}");
    let response =
        app.http.post(app.url(&format!("/{}/sync/trigger", busy.id))).header("x-webhook-secret", &busy.secret).send().await.unwrap();
    assert_eq!(response.status(), 429, "the trigger shares the integration's limit");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    app.notify(&calm, body.clone()).await.expect_success(200);

    app.clock().advance(Duration::from_secs(60));
    app.notify(&busy, body).await.expect_success(200);
}
