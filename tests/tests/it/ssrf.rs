//! The SSRF guard over HTTP: with private endpoints refused (the AWS default), registration and
//! PATCH refuse internal targets, and every outbound call checks again.

use serde_json::json;
use seyaha::settings::Settings;
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, new_partner, test_settings};

fn strict() -> Settings {
    Settings {
        allow_private_endpoints: Some(false),
        ..test_settings()
    }
}

fn body(base_url: &str) -> serde_json::Value {
    json!({"base_url": base_url, "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false})
}

#[tokio::test]
async fn registration_refuses_internal_targets() {
    let app = TestApp::spawn_with(strict()).await;
    let token = app.partner_token(&new_partner());
    let cases = [
        (
            "https://127.0.0.1",
            "base_url: must not point at a loopback, private, link-local or reserved address",
        ),
        (
            "https://127.0.0.1:8443/octo",
            "base_url: must not point at a loopback",
        ),
        ("https://localhost", "base_url: must not point at localhost"),
        (
            "https://LOCALHOST:3000/octo",
            "base_url: must not point at localhost",
        ),
        (
            "https://10.0.0.8/octo",
            "base_url: must not point at a loopback",
        ),
        (
            "https://192.168.1.20",
            "base_url: must not point at a loopback",
        ),
        (
            "https://169.254.169.254/latest/meta-data",
            "base_url: must not point at a loopback",
        ),
        (
            "https://[::1]/octo",
            "base_url: must not point at a loopback",
        ),
        (
            "https://[::ffff:127.0.0.1]",
            "base_url: must not point at a loopback",
        ),
        (
            "https://100.64.0.1",
            "base_url: must not point at a loopback",
        ),
        ("http://octo.example.com", "base_url: must use https"),
    ];
    for (url, expected) in cases {
        let errors = app
            .call("POST", "", Some(&token), Some(body(url)))
            .await
            .expect_error(400);
        assert!(errors.contains(expected), "{url}: {errors}");
    }
    // A public-looking name that does not resolve here is accepted, and checked on every call.
    app.call(
        "POST",
        "",
        Some(&token),
        Some(body("https://octo.partner.invalid")),
    )
    .await
    .expect_success(201);
}

#[tokio::test]
async fn patch_refuses_internal_targets_and_keeps_the_old_url() {
    let app = TestApp::spawn_with(strict()).await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    app.register(&partner, "https://octo.partner.invalid", "bearer", "k")
        .await;
    for url in [
        "https://10.1.2.3",
        "https://169.254.169.254",
        "https://localhost",
        "http://octo.example.com",
        "https://[::1]",
    ] {
        app.call("PATCH", "/me", Some(&token), Some(json!({"base_url": url})))
            .await
            .expect_error(400);
    }
    let me = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(me.data()["base_url"], "https://octo.partner.invalid");
}

#[tokio::test]
async fn ipv4_translated_targets_are_refused_on_create_and_patch() {
    // `::ffff:0:0:0/96` (IPv4-translated) was once accepted by both.
    let app = TestApp::spawn_with(strict()).await;
    let refused = "base_url: must not point at a loopback, private, link-local or reserved address";
    for url in [
        "https://[::ffff:0:127.0.0.1]",
        "https://[::ffff:0:7f00:1]/octo",
        "https://[::ffff:0:a9fe:a9fe]",
    ] {
        let token = app.partner_token(&new_partner());
        let errors = app
            .call("POST", "", Some(&token), Some(body(url)))
            .await
            .expect_error(400);
        assert!(errors.contains(refused), "create {url}: {errors}");
    }
    let partner = new_partner();
    let token = app.partner_token(&partner);
    app.register(&partner, "https://octo.partner.invalid", "bearer", "k")
        .await;
    let errors = app
        .call(
            "PATCH",
            "/me",
            Some(&token),
            Some(json!({"base_url": "https://[::ffff:0:127.0.0.1]"})),
        )
        .await
        .expect_error(400);
    assert!(errors.contains(refused), "PATCH: {errors}");
    let me = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(me.data()["base_url"], "https://octo.partner.invalid");
}

#[tokio::test]
async fn every_outbound_call_is_checked_again() {
    // Registered while private endpoints were allowed, then the service runs strict: the
    // connection test must refuse to call the loopback supplier.
    let mut app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    let partner = new_partner();
    app.register(&partner, &octo.base_url(), "bearer", FAKE_KEY)
        .await;
    let token = app.partner_token(&partner);
    assert_eq!(
        app.call("POST", "/me/test-connection", Some(&token), None)
            .await
            .data()["ok"],
        true
    );
    let calls_before = octo.requests().len();

    app.restart_with(strict()).await;
    let reply = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    let data = reply.expect_success(200);
    assert_eq!(data["ok"], false);
    assert_eq!(
        data["message"],
        "Refused to call base_url: it must use https"
    );
    assert_eq!(
        octo.requests().len(),
        calls_before,
        "no request left the guard"
    );
}

/// A *name* (not `localhost`, which the static check refuses) that resolves only to refused
/// addresses, so the test exercises the DNS checks: the machine's own hostname, which /etc/hosts
/// maps to 127.0.0.1 on these machines, or one of the loopback aliases Debian's /etc/hosts has.
async fn name_resolving_to_loopback() -> String {
    let hostname = std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned();
    for name in [
        hostname.as_str(),
        "ip6-localhost",
        "ip6-loopback",
        "localhost.localdomain",
    ] {
        if name.is_empty() {
            continue;
        }
        let Ok(addrs) = tokio::net::lookup_host((name, 443)).await else {
            continue;
        };
        let addrs: Vec<_> = addrs.collect();
        if !addrs.is_empty() && addrs.iter().all(|a| seyaha::net::is_refused_ip(a.ip())) {
            return name.to_owned();
        }
    }
    panic!(
        "no host name on this machine resolves only to loopback (checked the hostname {hostname:?} and Debian's loopback aliases): this test needs one"
    );
}

#[tokio::test]
async fn names_resolving_to_refused_addresses_are_refused_at_registration_and_on_every_call() {
    let host = name_resolving_to_loopback().await;
    let strict_app = TestApp::spawn_with(strict()).await;
    let errors = strict_app
        .call(
            "POST",
            "",
            Some(&strict_app.partner_token(&new_partner())),
            Some(body(&format!("https://{host}/octo"))),
        )
        .await
        .expect_error(400);
    assert!(
        errors.contains("base_url: must not point at a loopback"),
        "{errors}"
    );

    // Registered while allowed, then called strict: the resolver refuses before connecting.
    let mut app = TestApp::spawn().await;
    let partner = new_partner();
    app.register(&partner, &format!("https://{host}:1/octo"), "bearer", "k")
        .await;
    app.restart_with(strict()).await;
    let reply = app
        .call(
            "POST",
            "/me/test-connection",
            Some(&app.partner_token(&partner)),
            None,
        )
        .await;
    let data = reply.expect_success(200);
    assert_eq!(data["ok"], false);
    assert_eq!(
        data["message"],
        "Refused to call base_url: it must not point at a loopback, private, link-local or reserved address"
    );
}

/// A partner's host that redirects to another host must not hand that host the partner's
/// credential: the `Authorization` header is dropped on a cross-host redirect.
#[tokio::test]
async fn a_redirect_to_another_host_does_not_carry_the_credential() {
    use std::sync::{Arc, Mutex};
    // The second host records what it was sent, and serves a catalog.
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let catalog = seyaha_tests::fake_octo::sample_catalog(2);
    let other = axum::Router::new().route(
        "/octo/products",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (recorded, catalog) = (Arc::clone(&recorded), catalog.clone());
            async move {
                let authorization = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or_default().to_owned());
                recorded.lock().unwrap().push(authorization);
                axum::Json(catalog)
            }
        }),
    );
    // 127.0.0.2 is loopback too, but another host to the HTTP client.
    let other_listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let other_addr = other_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(other_listener, other).await });
    let redirecting = axum::Router::new().route(
        "/octo/products",
        axum::routing::get(move || async move {
            (
                axum::http::StatusCode::FOUND,
                [("location", format!("http://{other_addr}/octo/products"))],
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirecting).await });

    let app = TestApp::spawn().await;
    let integration = app.approved(&format!("http://{addr}/octo"), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![None],
        "the other host was called once, without the credential"
    );
}
