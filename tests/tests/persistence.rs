//! The embedded store keeps everything across a restart: integrations, approval, the webhook
//! secret's digest and the partner credential.

use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, new_partner};

#[tokio::test]
async fn data_survives_a_restart() {
    let mut app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    let created = app.register(&partner, &octo.base_url(), "api_key", FAKE_KEY).await;
    let id = created["_id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    app.approve(&id).await;
    let before = app.call("GET", "/me", Some(&token), None).await.data().clone();

    app.restart().await;

    let after = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(after.expect_success(200), &before);
    // The webhook secret still authenticates, and the stored credential still reaches the partner.
    let synced = app.webhook(&id, "sync/trigger", Some(&secret), None).await;
    assert_eq!(synced.expect_success(200)["synced"], 3);
    // The stored credential still works.
    let test = app.call("POST", "/me/test-connection", Some(&token), None).await;
    assert_eq!(test.data()["ok"], true, "{}", test.text);
    // And the one-per-partner index survived too.
    app.call("POST", "", Some(&token), Some(serde_json::json!({"base_url": "https://x.example.com", "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false}))).await.expect_error(409);
}
