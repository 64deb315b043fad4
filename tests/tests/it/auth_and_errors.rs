//! The JWT matrix and the error statuses every route shares: 400, 401, 403, 404, 405, 413, 415.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use seyaha_tests::{JWT_SECRET, TestApp, new_partner, send};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed(claims: Value, alg: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
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
        (
            "valid",
            Some(signed(valid.clone(), Algorithm::HS256, JWT_SECRET)),
            404,
        ),
        ("no header", None, 401),
        ("garbage", Some("not.a.jwt".into()), 401),
        (
            "expired",
            Some(signed(
                json!({"sub": partner, "role": "partner", "exp": now() - 3600}),
                Algorithm::HS256,
                JWT_SECRET,
            )),
            401,
        ),
        (
            "missing exp",
            Some(signed(
                json!({"sub": partner, "role": "partner"}),
                Algorithm::HS256,
                JWT_SECRET,
            )),
            401,
        ),
        ("alg none", Some(unsigned(&valid)), 401),
        (
            "HS512",
            Some(signed(valid.clone(), Algorithm::HS512, JWT_SECRET)),
            401,
        ),
        (
            "wrong signature",
            Some(signed(valid.clone(), Algorithm::HS256, "another-secret")),
            401,
        ),
        (
            "unknown role",
            Some(signed(
                json!({"sub": partner, "role": "user", "exp": now() + 600}),
                Algorithm::HS256,
                JWT_SECRET,
            )),
            403,
        ),
        (
            "no role",
            Some(signed(
                json!({"sub": partner, "exp": now() + 600}),
                Algorithm::HS256,
                JWT_SECRET,
            )),
            403,
        ),
        (
            "partner id in id",
            Some(signed(
                json!({"id": partner, "role": "partner", "exp": now() + 600}),
                Algorithm::HS256,
                JWT_SECRET,
            )),
            404,
        ),
        (
            "partner id in _id",
            Some(signed(
                json!({"_id": partner, "role": "partner", "exp": now() + 600}),
                Algorithm::HS256,
                JWT_SECRET,
            )),
            404,
        ),
        (
            "partner without id",
            Some(signed(
                json!({"role": "partner", "exp": now() + 600}),
                Algorithm::HS256,
                JWT_SECRET,
            )),
            401,
        ),
    ];
    for (name, token, expected) in cases {
        let reply = app.call("GET", "/me", token.as_deref(), None).await;
        reply.expect_error(expected);
        if expected == 401 {
            assert!(
                reply.expect_error(401).starts_with("authorization:"),
                "{name}: {}",
                reply.text
            );
        }
    }
    // A non-Bearer scheme is refused too.
    let basic = send(
        app.http
            .get(app.url("/me"))
            .header("authorization", "Basic dXNlcjpwdw=="),
    )
    .await;
    basic.expect_error(401);
}

/// With `SEYAHA_JWT_ISSUER` and `SEYAHA_JWT_AUDIENCE` set, a token signed with the shared
/// secret by another system (another `iss`, or none) is refused.
#[tokio::test]
async fn a_configured_issuer_and_audience_are_required() {
    let (iss, aud) = ("https://portal.seyaha.example", "partner-integrations");
    let settings = seyaha::settings::Settings {
        jwt_issuer: Some(iss.into()),
        jwt_audience: Some(aud.into()),
        ..seyaha_tests::test_settings()
    };
    let app = TestApp::spawn_with(settings).await;
    let partner = new_partner();
    let token = |extra: Value| {
        let mut claims = json!({"sub": partner, "role": "partner", "exp": now() + 600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Some(signed(claims, Algorithm::HS256, JWT_SECRET))
    };
    let cases = [
        (
            "issuer and audience",
            token(json!({"iss": iss, "aud": aud})),
            404,
        ),
        ("neither", token(json!({})), 401),
        (
            "another issuer",
            token(json!({"iss": "https://elsewhere.example", "aud": aud})),
            401,
        ),
        (
            "another audience",
            token(json!({"iss": iss, "aud": "billing"})),
            401,
        ),
        ("no audience", token(json!({"iss": iss})), 401),
    ];
    for (name, token, expected) in cases {
        let reply = app.call("GET", "/me", token.as_deref(), None).await;
        assert_eq!(reply.status, expected, "{name}: {}", reply.text);
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The review's tokens (round two, R4): `nbf` a year ahead, `iat` in 2100, a `crit` header
/// naming an unknown extension. Each is refused with a 401 that says which check failed.
#[tokio::test]
async fn tokens_not_yet_valid_issued_in_the_future_or_with_crit_are_refused() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let claims = |extra: Value| {
        let mut claims = json!({"sub": partner, "role": "partner", "exp": now() + 600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let crit = Header {
        crit: Some(vec!["x".into()]),
        ..Header::new(Algorithm::HS256)
    };
    let cases = [
        (
            "valid, issued now",
            signed(claims(json!({"iat": now()})), Algorithm::HS256, JWT_SECRET),
            None,
        ),
        (
            "nbf a year ahead",
            signed(
                claims(json!({"nbf": now() + 365 * 86_400})),
                Algorithm::HS256,
                JWT_SECRET,
            ),
            Some("nbf"),
        ),
        (
            "iat in 2100",
            signed(
                claims(json!({"iat": 4_102_444_800u64})),
                Algorithm::HS256,
                JWT_SECRET,
            ),
            Some("iat"),
        ),
        (
            "crit header",
            encode(&crit, &claims(json!({"x": 1})), &key).unwrap(),
            Some("crit"),
        ),
    ];
    for (name, token, refused_for) in cases {
        let reply = app.call("GET", "/me", Some(&token), None).await;
        match refused_for {
            None => assert_eq!(
                reply.status.as_u16(),
                404,
                "{name}: authenticated, no integration yet: {}",
                reply.text
            ),
            Some(claim) => {
                let error = reply.expect_error(401);
                assert!(
                    error.starts_with("authorization:") && error.contains(claim),
                    "{name}: {error}"
                );
            }
        }
    }
    // Within the leeway of a minute, a skewed clock is forgiven.
    let skewed = signed(
        claims(json!({"iat": now() + 20, "nbf": now() + 20})),
        Algorithm::HS256,
        JWT_SECRET,
    );
    assert_eq!(
        app.call("GET", "/me", Some(&skewed), None)
            .await
            .status
            .as_u16(),
        404
    );
}

/// `SEYAHA_JWT_MAX_LIFETIME_SECS`: `exp` in 2200 (no `iat`), or `exp - iat` over the maximum, is
/// refused; a token within it is accepted.
#[tokio::test]
async fn a_maximum_token_lifetime_refuses_longer_tokens() {
    let settings = seyaha::settings::Settings {
        jwt_max_lifetime_secs: 3600,
        ..seyaha_tests::test_settings()
    };
    let app = TestApp::spawn_with(settings).await;
    let admin = |mut claims: Value| {
        claims["role"] = json!("admin");
        signed(claims, Algorithm::HS256, JWT_SECRET)
    };
    let cases = [
        ("exp in 2200", admin(json!({"exp": 7_258_118_400u64})), 401),
        (
            "two hours from iat",
            admin(json!({"iat": now(), "exp": now() + 7200})),
            401,
        ),
        (
            "two hours from now, no iat",
            admin(json!({"exp": now() + 7200})),
            401,
        ),
        (
            "an hour from iat",
            admin(json!({"iat": now() - 60, "exp": now() - 60 + 3600})),
            200,
        ),
        (
            "ten minutes, no iat",
            admin(json!({"exp": now() + 600})),
            200,
        ),
    ];
    for (name, token, expected) in cases {
        let reply = app.call("GET", "/admin", Some(&token), None).await;
        if expected == 401 {
            let error = reply.expect_error(401);
            assert!(
                error.contains("lifetime") && error.contains("3600"),
                "{name}: {error}"
            );
        } else {
            assert_eq!(reply.status.as_u16(), expected, "{name}: {}", reply.text);
        }
    }
}

/// With `SEYAHA_JWT_PUBLIC_KEY`, tokens signed with its private key are accepted (RS256 for an
/// RSA key, ES256 for a P-256 one), and nothing else: not HS256 with the shared secret (still
/// configured here, and ignored), not the other asymmetric algorithm, not another key.
#[tokio::test]
async fn a_configured_public_key_accepts_its_algorithm_and_key_only() {
    let partner = new_partner();
    let claims =
        |role: &str| json!({"sub": partner, "role": role, "iat": now(), "exp": now() + 600});
    let rsa = EncodingKey::from_rsa_pem(fixture("rs256-private.pem").as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(fixture("es256-private.pem").as_bytes()).unwrap();
    let other_rsa =
        EncodingKey::from_rsa_pem(fixture("other-rs256-private.pem").as_bytes()).unwrap();
    let other_ec = EncodingKey::from_ec_pem(fixture("other-es256-private.pem").as_bytes()).unwrap();
    for (public_key, algorithm, key, wrong_algorithm, wrong_key) in [
        (
            "rs256-public.pem",
            Algorithm::RS256,
            &rsa,
            (Algorithm::ES256, &ec),
            (Algorithm::RS256, &other_rsa),
        ),
        (
            "es256-public.pem",
            Algorithm::ES256,
            &ec,
            (Algorithm::RS256, &rsa),
            (Algorithm::ES256, &other_ec),
        ),
    ] {
        let settings = seyaha::settings::Settings {
            jwt_public_key: Some(fixture(public_key)),
            ..seyaha_tests::test_settings()
        };
        let app = TestApp::spawn_with(settings).await;
        let sign = |alg: Algorithm, key: &EncodingKey, role: &str| {
            encode(&Header::new(alg), &claims(role), key).unwrap()
        };

        let partner_token = sign(algorithm, key, "partner");
        assert_eq!(
            app.call("GET", "/me", Some(&partner_token), None)
                .await
                .status
                .as_u16(),
            404,
            "{algorithm:?}: authenticated"
        );
        let created = app
            .call("POST", "", Some(&partner_token), Some(json!({"base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false})))
            .await;
        assert_eq!(
            created.status.as_u16(),
            201,
            "{algorithm:?}: {}",
            created.text
        );
        let listed = app
            .call("GET", "/admin", Some(&sign(algorithm, key, "admin")), None)
            .await;
        assert_eq!(
            listed.status.as_u16(),
            200,
            "{algorithm:?}: {}",
            listed.text
        );

        let refused = [
            (
                "HS256 with the shared secret",
                signed(claims("admin"), Algorithm::HS256, JWT_SECRET),
                "algorithm",
            ),
            (
                "HS256 with the public key as its secret",
                signed(claims("admin"), Algorithm::HS256, &fixture(public_key)),
                "algorithm",
            ),
            (
                "the other asymmetric algorithm",
                sign(wrong_algorithm.0, wrong_algorithm.1, "admin"),
                "algorithm",
            ),
            (
                "another key",
                sign(wrong_key.0, wrong_key.1, "admin"),
                "invalid",
            ),
            ("alg none", unsigned(&claims("admin")), "invalid"),
        ];
        for (name, token, reason) in refused {
            let error = app
                .call("GET", "/admin", Some(&token), None)
                .await
                .expect_error(401);
            assert!(error.contains(reason), "{algorithm:?}, {name}: {error}");
        }
        // The time and header checks hold for asymmetric tokens too.
        let crit = Header {
            crit: Some(vec!["x".into()]),
            ..Header::new(algorithm)
        };
        let error = app
            .call(
                "GET",
                "/admin",
                Some(&encode(&crit, &claims("admin"), key).unwrap()),
                None,
            )
            .await
            .expect_error(401);
        assert!(error.contains("crit"), "{error}");
    }
}

#[tokio::test]
async fn bodies_must_be_json_objects_of_known_fields() {
    let app = TestApp::spawn().await;
    let token = app.partner_token(&new_partner());

    let no_type = send(
        app.http
            .post(app.url(""))
            .bearer_auth(&token)
            .body(r#"{"base_url":"https://x.example.com"}"#),
    )
    .await;
    no_type.expect_error(415);
    let text = send(
        app.http
            .post(app.url(""))
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .body("hello"),
    )
    .await;
    text.expect_error(415);
    let malformed = send(
        app.http
            .post(app.url(""))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{\"base_url\": "),
    )
    .await;
    assert!(malformed.expect_error(400).contains("body: malformed JSON"));
    let array = app
        .call("POST", "", Some(&token), Some(json!([1, 2])))
        .await;
    assert!(
        array
            .expect_error(400)
            .contains("body: must be a JSON object")
    );
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
        (
            "https://user:pw@octo.example.com",
            "must not contain credentials",
        ),
        (
            "https://octo.example.com/#frag",
            "must not contain a fragment",
        ),
    ] {
        let reply = app
            .call(
                "POST",
                "",
                Some(&token),
                Some(json!({"base_url": url, "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false})),
            )
            .await;
        assert!(
            reply
                .expect_error(400)
                .contains(&format!("base_url: {reason}")),
            "{url}"
        );
    }
    let list = app
        .call("GET", "/admin", Some(&app.admin_token()), None)
        .await;
    assert_eq!(
        list.body["pagination"]["totalCount"], 0,
        "nothing was written by any rejected request"
    );
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = TestApp::spawn().await;
    let token = app.partner_token(&new_partner());
    let padding = "k".repeat(70 * 1024);
    let big = json!({"base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": padding, "handles_ticket_delivery": false});
    app.call("POST", "", Some(&token), Some(big))
        .await
        .expect_error(413);
    let just_under = json!({"base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": "k".repeat(4000), "handles_ticket_delivery": false});
    app.call("POST", "", Some(&token), Some(just_under))
        .await
        .expect_success(201);
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = TestApp::spawn().await;
    let reply = send(app.http.get(format!("http://{}/nope", app.addr()))).await;
    reply.expect_error(404);
    let reply = app
        .call("PUT", "/me", Some(&app.partner_token(&new_partner())), None)
        .await;
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
    assert!(
        !reply.text.contains("secrets")
            && !reply.text.contains("directory")
            && !reply.text.contains("sk_live"),
        "{}",
        reply.text
    );
    app.call("GET", "/me", Some(&token), None)
        .await
        .expect_error(404);
    let list = app
        .call("GET", "/admin", Some(&app.admin_token()), None)
        .await;
    assert_eq!(
        list.body["pagination"]["totalCount"], 0,
        "no integration without its credential"
    );
}
