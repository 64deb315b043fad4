//! The partner's own integration over real HTTP: create, /me, PATCH, DELETE, test-connection.

use std::time::Duration;

use serde_json::json;
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, new_partner};

fn is_hex(value: &serde_json::Value, len: usize) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_wire_timestamp(value: &serde_json::Value) -> bool {
    // 2026-06-23T06:00:00.000Z
    value
        .as_str()
        .is_some_and(|s| s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.')
}

#[tokio::test]
async fn create_returns_the_documented_document_and_a_secret_once() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let partner = new_partner();
    let body = json!({"base_url": format!("{}/", octo.base_url()), "auth_type": "bearer", "auth_key": "sk_live_abc123", "handles_ticket_delivery": true});
    let reply = app
        .call("POST", "", Some(&app.partner_token(&partner)), Some(body))
        .await;
    let data = reply.expect_success(201);

    assert!(is_hex(&data["_id"], 24), "{data}");
    assert_eq!(data["partner_id"], partner.as_str());
    assert_eq!(data["base_url"], octo.base_url(), "trailing slash stripped");
    assert_eq!(data["auth_type"], "bearer");
    assert_eq!(data["handles_ticket_delivery"], true);
    assert_eq!(data["isActive"], true);
    assert_eq!(data["isApproved"], false);
    assert_eq!(
        data["sync"],
        json!({"status": "idle", "last_sync_at": null, "last_sync_hash": null, "error_message": null})
    );
    assert_eq!(data["health"]["status"], "HEALTHY");
    assert_eq!(data["health"]["consecutive_failures"], 0);
    for field in [
        "last_probe_at",
        "last_success_at",
        "degraded_since",
        "down_since",
    ] {
        assert!(data["health"][field].is_null(), "{field}");
    }
    assert!(
        is_wire_timestamp(&data["createdAt"]) && is_wire_timestamp(&data["updatedAt"]),
        "{data}"
    );
    assert!(is_hex(&data["webhook_secret"], 64));
    assert!(data.get("auth_key").is_none());
    assert!(!reply.text.contains("sk_live_abc123"));
    assert!(
        reply.text.starts_with(r#"{"success":1,"data":{"_id":"#),
        "documented field order: {}",
        reply.text
    );

    let me = app
        .call("GET", "/me", Some(&app.partner_token(&partner)), None)
        .await;
    let me_data = me.expect_success(200);
    assert_eq!(me_data["_id"], data["_id"]);
    assert!(
        me_data.get("webhook_secret").is_none(),
        "the secret is shown once"
    );
    assert!(!me.text.contains("sk_live_abc123"));
    assert!(!me.text.contains(data["webhook_secret"].as_str().unwrap()));
}

#[tokio::test]
async fn one_integration_per_partner_even_when_racing() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    let body = json!({"base_url": "https://octo.example.com", "auth_type": "api_key", "auth_key": "k", "handles_ticket_delivery": false});
    let attempts = (0..8).map(|_| app.call("POST", "", Some(&token), Some(body.clone())));
    let replies = futures_util::future::join_all(attempts).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "exactly one create wins");
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert!(reply.expect_error(409).contains("partner_id"));
    }
    let list = app
        .call("GET", "/admin", Some(&app.admin_token()), None)
        .await;
    assert_eq!(list.body["pagination"]["totalCount"], 1);
}

#[tokio::test]
async fn me_is_404_without_an_integration() {
    let app = TestApp::spawn().await;
    let token = app.partner_token(&new_partner());
    app.call("GET", "/me", Some(&token), None)
        .await
        .expect_error(404);
    app.call(
        "PATCH",
        "/me",
        Some(&token),
        Some(json!({"handles_ticket_delivery": true})),
    )
    .await
    .expect_error(404);
    app.call("DELETE", "/me", Some(&token), None)
        .await
        .expect_error(404);
    app.call("POST", "/me/test-connection", Some(&token), None)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn patch_updates_fields_and_a_new_base_url_needs_approval_again() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    let created = app
        .register(&partner, "https://octo.example.com", "bearer", "old-key")
        .await;
    let id = created["_id"].as_str().unwrap();
    assert_eq!(app.approve(id).await["isApproved"], true);

    let same_url = app
        .call(
            "PATCH",
            "/me",
            Some(&token),
            Some(json!({"base_url": "https://octo.example.com/", "handles_ticket_delivery": true})),
        )
        .await;
    let data = same_url.expect_success(200);
    assert_eq!(data["isApproved"], true, "the same base_url keeps approval");
    assert_eq!(data["handles_ticket_delivery"], true);
    assert_ne!(data["updatedAt"], created["updatedAt"]);

    let moved = app
        .call(
            "PATCH",
            "/me",
            Some(&token),
            Some(json!({"base_url": "https://octo2.example.com", "auth_type": "api_key"})),
        )
        .await;
    let data = moved.expect_success(200);
    assert_eq!(data["base_url"], "https://octo2.example.com");
    assert_eq!(data["auth_type"], "api_key");
    assert_eq!(
        data["isApproved"], false,
        "a different base_url needs approval again"
    );
    assert!(data["sync"]["last_sync_hash"].is_null());
    assert!(data.get("webhook_secret").is_none());

    let errors = app
        .call("PATCH", "/me", Some(&token), Some(json!({})))
        .await
        .expect_error(400);
    assert!(
        errors.contains("body: must contain at least one of"),
        "{errors}"
    );
    let errors = app
        .call(
            "PATCH",
            "/me",
            Some(&token),
            Some(json!({"auth_type": "oauth", "auth_key": ""})),
        )
        .await
        .expect_error(400);
    assert!(
        errors.contains("auth_type: must be one of bearer, api_key")
            && errors.contains("auth_key: must not be empty"),
        "{errors}"
    );
    let unchanged = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(
        unchanged.data()["auth_type"],
        "api_key",
        "a rejected PATCH writes nothing"
    );
}

#[tokio::test]
async fn patched_auth_key_is_used_for_the_next_call() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    app.register(&partner, &octo.base_url(), "bearer", FAKE_KEY)
        .await;
    octo.set_key("rotated-key");
    let test = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    assert_eq!(test.expect_success(200)["ok"], false);
    app.call(
        "PATCH",
        "/me",
        Some(&token),
        Some(json!({"auth_key": "rotated-key"})),
    )
    .await
    .expect_success(200);
    let test = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    assert_eq!(test.expect_success(200)["ok"], true, "{}", test.text);
    assert_eq!(
        octo.requests().last().unwrap().authorization.as_deref(),
        Some("Bearer rotated-key")
    );
}

#[tokio::test]
async fn delete_removes_everything_and_the_partner_may_register_again() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    let created = app
        .register(&partner, "https://octo.example.com", "bearer", "key")
        .await;
    let id = created["_id"].as_str().unwrap().to_owned();
    app.approve(&id).await;
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();

    let deleted = app.call("DELETE", "/me", Some(&token), None).await;
    assert_eq!(deleted.expect_success(200), &json!({"deleted": true}));
    app.call("GET", "/me", Some(&token), None)
        .await
        .expect_error(404);
    app.webhook(&id, "sync/trigger", Some(&secret), None)
        .await
        .expect_error(401);
    let credential_file = app
        .data_dir()
        .join("secrets")
        .join(format!("{id}.auth_key"));
    assert!(
        !credential_file.exists(),
        "the credential is removed with the integration"
    );

    let again = app
        .register(&partner, "https://octo.example.com", "bearer", "key")
        .await;
    assert_ne!(again["_id"], created["_id"]);
    assert_ne!(again["webhook_secret"], created["webhook_secret"]);
}

#[tokio::test]
async fn test_connection_sends_the_documented_headers_for_both_auth_types() {
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;

    let bearer_partner = new_partner();
    app.register(&bearer_partner, &octo.base_url(), "bearer", FAKE_KEY)
        .await;
    let reply = app
        .call(
            "POST",
            "/me/test-connection",
            Some(&app.partner_token(&bearer_partner)),
            None,
        )
        .await;
    assert_eq!(
        reply.expect_success(200),
        &json!({"ok": true, "message": "Connection successful"})
    );
    let seen = octo.requests().pop().unwrap();
    assert_eq!(
        seen.authorization.as_deref(),
        Some(format!("Bearer {FAKE_KEY}").as_str())
    );
    assert_eq!(
        seen.octo_capabilities.as_deref(),
        Some("octo/content,octo/pricing")
    );

    let key_partner = new_partner();
    app.register(&key_partner, &octo.base_url(), "api_key", FAKE_KEY)
        .await;
    let reply = app
        .call(
            "POST",
            "/me/test-connection",
            Some(&app.partner_token(&key_partner)),
            None,
        )
        .await;
    assert_eq!(reply.expect_success(200)["ok"], true);
    assert_eq!(
        octo.requests().pop().unwrap().authorization.as_deref(),
        Some(FAKE_KEY),
        "api_key sends the raw key"
    );

    let me = app
        .call("GET", "/me", Some(&app.partner_token(&key_partner)), None)
        .await;
    let health = &me.data()["health"];
    assert_eq!(health["status"], "HEALTHY");
    assert!(
        health["last_probe_at"].is_string() && health["last_success_at"].is_string(),
        "the test counts as a probe: {health}"
    );
}

#[tokio::test]
async fn test_connection_diagnoses_partner_problems_without_failing() {
    let app = TestApp::spawn().await; // 2 s timeouts, 1 MiB response cap
    let octo = FakeOcto::start().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    app.register(&partner, &octo.base_url(), "bearer", FAKE_KEY)
        .await;

    // A products array passes even when the sync would reject a product (here one of 2 MiB,
    // over the 1 MiB per-product cap: rejected unread, and the body is never held whole).
    octo.set_behaviour(Behaviour::Oversized(2 * 1024 * 1024));
    let reply = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    assert_eq!(
        reply.expect_success(200),
        &json!({"ok": true, "message": "Connection successful"})
    );

    let cases = [
        (Behaviour::Status(500), "GET /products returned HTTP 500"),
        (
            Behaviour::Status(401),
            "Authentication refused: GET /products returned HTTP 401",
        ),
        (
            Behaviour::Slow(Duration::from_secs(5)),
            "GET /products timed out",
        ),
        (Behaviour::Garbage, "GET /products did not return JSON"),
        (
            Behaviour::NotArray,
            "GET /products did not return an OCTO products array",
        ),
        // Diagnosed, but no failed probe: the endpoint works and asks to be called later.
        (
            Behaviour::RetryAfter {
                status: 429,
                seconds: 30,
            },
            "GET /products was rate limited (HTTP 429)",
        ),
    ];
    for (behaviour, expected) in cases {
        octo.set_behaviour(behaviour.clone());
        let reply = app
            .call("POST", "/me/test-connection", Some(&token), None)
            .await;
        let data = reply.expect_success(200);
        assert_eq!(data["ok"], false, "{behaviour:?}");
        let message = data["message"].as_str().unwrap();
        assert!(message.contains(expected), "{behaviour:?}: {message}");
        assert!(
            !message.contains(FAKE_KEY) && !message.contains("supplier exploded"),
            "no secrets or partner bodies: {message}"
        );
    }

    octo.set_behaviour(Behaviour::Normal);
    octo.set_key("another-key");
    let reply = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    assert!(
        reply.data()["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 403"),
        "{}",
        reply.text
    );

    let me = app.call("GET", "/me", Some(&token), None).await;
    let health = &me.data()["health"];
    assert_eq!(health["status"], "DOWN", "{health}");
    assert_eq!(
        health["consecutive_failures"], 6,
        "five failures and the 403; the 429 is not one"
    );
    assert!(health["degraded_since"].is_string() && health["down_since"].is_string());
}

#[tokio::test]
async fn test_connection_reports_an_unreachable_endpoint() {
    let app = TestApp::spawn().await;
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let partner = new_partner();
    let token = app.partner_token(&partner);
    app.register(
        &partner,
        &format!("http://127.0.0.1:{port}/octo"),
        "bearer",
        "k",
    )
    .await;
    let reply = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    let data = reply.expect_success(200);
    assert_eq!(data["ok"], false);
    assert!(
        data["message"]
            .as_str()
            .unwrap()
            .contains("Could not connect to 127.0.0.1"),
        "{data}"
    );
    let me = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(me.data()["health"]["status"], "DEGRADED");
}

#[tokio::test]
async fn the_demo_supplier_honours_its_key_in_both_forms() {
    let app = TestApp::spawn().await;
    let demo = format!("http://{}/demo/octo", app.addr());
    for (auth_type, key, ok) in [
        ("bearer", "demo-octo-key", true),
        ("api_key", "demo-octo-key", true),
        ("bearer", "wrong-key", false),
    ] {
        let partner = new_partner();
        app.register(&partner, &demo, auth_type, key).await;
        let reply = app
            .call(
                "POST",
                "/me/test-connection",
                Some(&app.partner_token(&partner)),
                None,
            )
            .await;
        let data = reply.expect_success(200);
        assert_eq!(data["ok"], ok, "{auth_type} {key}: {data}");
        if !ok {
            assert!(
                data["message"].as_str().unwrap().contains("HTTP 403"),
                "{data}"
            );
        }
    }
}
