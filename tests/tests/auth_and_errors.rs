//! The JWT matrix and the error statuses every route shares: 400, 401, 403, 404, 405, 413, 415.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use seyaha_tests::{JWT_SECRET, TestApp, new_partner, send};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn signed(claims: Value, alg: Algorithm, secret: &str) -> String {
    encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[tokio::test]
async fn jwt_matrix() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let valid = json!({"sub": partner, "role": "partner", "exp": now() + 600});
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("valid", Some(signed(valid.clone(), Algorithm::HS256, JWT_SECRET)), 404),
        ("no header", None, 401),
        ("garbage", Some("not.a.jwt".into()), 401),
        ("expired", Some(signed(json!({"sub": partner, "role": "partner", "exp": now() - 3600}), Algorithm::HS256, JWT_SECRET)), 401),
        ("missing exp", Some(signed(json!({"sub": partner, "role": "partner"}), Algorithm::HS256, JWT_SECRET)), 401),
        ("alg none", Some(unsigned(&valid)), 401),
        ("HS512", Some(signed(valid.clone(), Algorithm::HS512, JWT_SECRET)), 401),
        ("wrong signature", Some(signed(valid.clone(), Algorithm::HS256, "another-secret")), 401),
        ("unknown role", Some(signed(json!({"sub": partner, "role": "user", "exp": now() + 600}), Algorithm::HS256, JWT_SECRET)), 403),
        ("no role", Some(signed(json!({"sub": partner, "exp": now() + 600}), Algorithm::HS256, JWT_SECRET)), 403),
        (
            "partner id in id",
            Some(signed(json!({"id": partner, "role": "partner", "exp": now() + 600}), Algorithm::HS256, JWT_SECRET)),
            404,
        ),
        (
            "partner id in _id",
            Some(signed(json!({"_id": partner, "role": "partner", "exp": now() + 600}), Algorithm::HS256, JWT_SECRET)),
            404,
        ),
        ("partner without id", Some(signed(json!({"role": "partner", "exp": now() + 600}), Algorithm::HS256, JWT_SECRET)), 401),
    ];
    for (name, token, expected) in cases {
        let reply = app.call("GET", "/me", token.as_deref(), None).await;
        reply.expect_error(expected);
        if expected == 401 {
            assert!(reply.expect_error(401).starts_with("authorization:"), "{name}: {}", reply.text);
        }
    }
    // A non-Bearer scheme is refused too.
    let basic = send(app.http.get(app.url("/me")).header("authorization", "Basic dXNlcjpwdw==")).await;
    basic.expect_error(401);
}

/// With `SEYAHA_JWT_ISSUER` and `SEYAHA_JWT_AUDIENCE` set, a token signed with the shared
/// secret by another system (another `iss`, or none) is refused.
#[tokio::test]
async fn a_configured_issuer_and_audience_are_required() {
    let (iss, aud) = ("https://portal.seyaha.example", "partner-integrations");
    let settings =
        seyaha::settings::Settings { jwt_issuer: Some(iss.into()), jwt_audience: Some(aud.into()), ..seyaha_tests::test_settings() };
    let app = TestApp::spawn_with(settings).await;
    let partner = new_partner();
    let token = |extra: Value| {
        let mut claims = json!({"sub": partner, "role": "partner", "exp": now() + 600});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Some(signed(claims, Algorithm::HS256, JWT_SECRET))
    };
    let cases = [
        ("issuer and audience", token(json!({"iss": iss, "aud": aud})), 404),
        ("neither", token(json!({})), 401),
        ("another issuer", token(json!({"iss": "https://elsewhere.example", "aud": aud})), 401),
        ("another audience", token(json!({"iss": iss, "aud": "billing"})), 401),
        ("no audience", token(json!({"iss": iss})), 401),
    ];
    for (name, token, expected) in cases {
        let reply = app.call("GET", "/me", token.as_deref(), None).await;
        assert_eq!(reply.status, expected, "{name}: {}", reply.text);
    }
}

#[tokio::test]
async fn bodies_must_be_json_objects_of_known_fields() {
    let app = TestApp::spawn().await;
    let token = app.partner_token(&new_partner());

    let no_type = send(app.http.post(app.url("")).bearer_auth(&token).body(r#"{"base_url":"https://x.example.com"}"#)).await;
    no_type.expect_error(415);
    let text = send(app.http.post(app.url("")).bearer_auth(&token).header("content-type", "text/plain").body("hello")).await;
    text.expect_error(415);
    let malformed =
        send(app.http.post(app.url("")).bearer_auth(&token).header("content-type", "application/json").body("{\"base_url\": ")).await;
    assert!(malformed.expect_error(400).contains("body: malformed JSON"));
    let array = app.call("POST", "", Some(&token), Some(json!([1, 2]))).await;
    assert!(array.expect_error(400).contains("body: must be a JSON object"));
    let wrong_types = app
        .call("POST", "", Some(&token), Some(json!({"base_url": 1, "auth_type": true, "auth_key": [], "handles_ticket_delivery": "no"})))
        .await;
    let errors = wrong_types.expect_error(400);
    for expected in [
        "base_url: must be a string",
        "auth_type: must be a string",
        "auth_key: must be a string",
        "handles_ticket_delivery: must be a boolean",
    ] {
        assert!(errors.contains(expected), "{expected}: {errors}");
    }
    assert_eq!(wrong_types.body["message"], "Validation Error");
    for (url, reason) in [
        ("octo.example.com", "must be an absolute URL"),
        ("ftp://octo.example.com", "must use http or https"),
        ("https://user:pw@octo.example.com", "must not contain credentials"),
        ("https://octo.example.com/#frag", "must not contain a fragment"),
    ] {
        let reply = app
            .call(
                "POST",
                "",
                Some(&token),
                Some(json!({"base_url": url, "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false})),
            )
            .await;
        assert!(reply.expect_error(400).contains(&format!("base_url: {reason}")), "{url}");
    }
    let list = app.call("GET", "/admin", Some(&app.admin_token()), None).await;
    assert_eq!(list.body["pagination"]["totalCount"], 0, "nothing was written by any rejected request");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = TestApp::spawn().await;
    let token = app.partner_token(&new_partner());
    let padding = "k".repeat(70 * 1024);
    let big = json!({"base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": padding, "handles_ticket_delivery": false});
    app.call("POST", "", Some(&token), Some(big)).await.expect_error(413);
    let just_under = json!({"base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": "k".repeat(4000), "handles_ticket_delivery": false});
    app.call("POST", "", Some(&token), Some(just_under)).await.expect_success(201);
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = TestApp::spawn().await;
    let reply = send(app.http.get(format!("http://{}/nope", app.addr()))).await;
    reply.expect_error(404);
    let reply = app.call("PUT", "/me", Some(&app.partner_token(&new_partner())), None).await;
    reply.expect_error(405);
}

#[tokio::test]
async fn internal_failures_are_500_without_details_and_write_nothing() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    // Break the credential store underneath the running service: its directory becomes a file.
    let secrets = app.data_dir().join("secrets");
    std::fs::remove_dir_all(&secrets).unwrap();
    std::fs::write(&secrets, "not a directory").unwrap();

    let body = json!({"base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": "sk_live_secret", "handles_ticket_delivery": false});
    let reply = app.call("POST", "", Some(&token), Some(body)).await;
    reply.expect_error(500);
    assert_eq!(reply.body["message"], "Internal server error");
    assert!(!reply.text.contains("secrets") && !reply.text.contains("directory") && !reply.text.contains("sk_live"), "{}", reply.text);
    app.call("GET", "/me", Some(&token), None).await.expect_error(404);
    let list = app.call("GET", "/admin", Some(&app.admin_token()), None).await;
    assert_eq!(list.body["pagination"]["totalCount"], 0, "no integration without its credential");
}
