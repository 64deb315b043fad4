//! Admin routes over real HTTP: create on behalf, list with filters and pages, get, patch, delete.

use serde_json::json;
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, new_partner};

fn admin_body(partner: &str) -> serde_json::Value {
    json!({"partner_id": partner, "base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false})
}

#[tokio::test]
async fn admin_create_is_approved_and_returns_the_secret_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let partner = new_partner();
    let reply = app
        .call(
            "POST",
            "/admin/create",
            Some(&admin),
            Some(admin_body(&partner)),
        )
        .await;
    let data = reply.expect_success(201);
    assert_eq!(data["partner_id"], partner.as_str());
    assert_eq!(data["isApproved"], true);
    assert_eq!(data["isActive"], true);
    assert_eq!(data["webhook_secret"].as_str().map(str::len), Some(64));
    assert!(data.get("auth_key").is_none());

    let again = app
        .call(
            "POST",
            "/admin/create",
            Some(&admin),
            Some(admin_body(&partner)),
        )
        .await;
    again.expect_error(409);
    let partner_again = app
        .call(
            "POST",
            "",
            Some(&app.partner_token(&partner)),
            Some(json!({"base_url": "https://x.example.com", "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false})),
        )
        .await;
    partner_again.expect_error(409);

    let get = app
        .call(
            "GET",
            &format!("/admin/{}", data["_id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert!(get.expect_success(200).get("webhook_secret").is_none());

    let errors = app
        .call(
            "POST",
            "/admin/create",
            Some(&admin),
            Some(json!({"partner_id": "nope"})),
        )
        .await
        .expect_error(400);
    for expected in [
        "partner_id: must be 24 lowercase hex characters",
        "base_url: is required",
        "auth_type: is required",
        "auth_key: is required",
        "handles_ticket_delivery: is required",
    ] {
        assert!(errors.contains(expected), "{expected}: {errors}");
    }
}

#[tokio::test]
async fn list_pages_and_filters() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let octo = FakeOcto::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let partner = new_partner();
        ids.push((
            partner.clone(),
            app.register(&partner, &octo.base_url(), "bearer", FAKE_KEY)
                .await["_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    app.approve(&ids[0].1).await;
    app.approve(&ids[1].1).await;
    // Make one DEGRADED through a failed connection test.
    octo.set_behaviour(Behaviour::Status(503));
    app.call(
        "POST",
        "/me/test-connection",
        Some(&app.partner_token(&ids[2].0)),
        None,
    )
    .await
    .expect_success(200);

    let all = app.call("GET", "/admin", Some(&admin), None).await;
    assert_eq!(all.expect_success(200).as_array().unwrap().len(), 5);
    assert_eq!(
        all.body["pagination"],
        json!({"page": 1, "pageSize": 20, "totalCount": 5})
    );

    let page1 = app
        .call("GET", "/admin?page=1&limit=2", Some(&admin), None)
        .await;
    let page3 = app
        .call("GET", "/admin?page=3&limit=2", Some(&admin), None)
        .await;
    assert_eq!(page1.data().as_array().unwrap().len(), 2);
    assert_eq!(page3.data().as_array().unwrap().len(), 1);
    assert_eq!(
        page3.body["pagination"],
        json!({"page": 3, "pageSize": 2, "totalCount": 5})
    );
    let mut seen: Vec<String> = Vec::new();
    for page in 1..=3 {
        let reply = app
            .call(
                "GET",
                &format!("/admin?page={page}&limit=2"),
                Some(&admin),
                None,
            )
            .await;
        seen.extend(
            reply
                .data()
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["_id"].as_str().unwrap().to_owned()),
        );
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "pages cover every integration once");

    let approved = app
        .call("GET", "/admin?isApproved=true", Some(&admin), None)
        .await;
    assert_eq!(approved.body["pagination"]["totalCount"], 2);
    assert!(
        approved
            .data()
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["isApproved"] == true)
    );
    let pending = app
        .call("GET", "/admin?isApproved=false", Some(&admin), None)
        .await;
    assert_eq!(pending.body["pagination"]["totalCount"], 3);
    let degraded = app
        .call("GET", "/admin?health=DEGRADED", Some(&admin), None)
        .await;
    assert_eq!(
        degraded
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![ids[2].1.as_str()]
    );
    let both = app
        .call(
            "GET",
            "/admin?health=HEALTHY&isApproved=true",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(both.body["pagination"]["totalCount"], 2);

    let errors = app
        .call(
            "GET",
            "/admin?page=0&limit=1000&isApproved=maybe&health=sick",
            Some(&admin),
            None,
        )
        .await
        .expect_error(400);
    for field in ["page:", "limit:", "isApproved:", "health:"] {
        assert!(errors.contains(field), "{field}: {errors}");
    }
}

#[tokio::test]
async fn patch_get_and_delete_by_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let partner = new_partner();
    let id = app
        .register(&partner, "https://octo.example.com", "bearer", "k")
        .await["_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let patched = app
        .call(
            "PATCH",
            &format!("/admin/{id}"),
            Some(&admin),
            Some(json!({"isApproved": true, "isActive": false})),
        )
        .await;
    let data = patched.expect_success(200);
    assert_eq!(
        (data["isApproved"].clone(), data["isActive"].clone()),
        (json!(true), json!(false))
    );
    let got = app
        .call("GET", &format!("/admin/{id}"), Some(&admin), None)
        .await;
    assert_eq!(got.expect_success(200)["isActive"], false);

    let errors = app
        .call(
            "PATCH",
            &format!("/admin/{id}"),
            Some(&admin),
            Some(json!({"isApproved": "yes", "base_url": "https://x.example.com"})),
        )
        .await
        .expect_error(400);
    assert!(
        errors.contains("isApproved: must be a boolean")
            && errors.contains("base_url: unknown field"),
        "{errors}"
    );
    app.call(
        "PATCH",
        &format!("/admin/{id}"),
        Some(&admin),
        Some(json!({})),
    )
    .await
    .expect_error(400);

    let missing = "64a1b2c3d4e5f6a7b8c9d0e1";
    app.call("GET", &format!("/admin/{missing}"), Some(&admin), None)
        .await
        .expect_error(404);
    app.call(
        "PATCH",
        &format!("/admin/{missing}"),
        Some(&admin),
        Some(json!({"isActive": true})),
    )
    .await
    .expect_error(404);
    app.call("DELETE", &format!("/admin/{missing}"), Some(&admin), None)
        .await
        .expect_error(404);
    assert!(
        app.call("GET", "/admin/NOT-AN-ID", Some(&admin), None)
            .await
            .expect_error(400)
            .contains("id: must be 24 lowercase hex characters")
    );

    let deleted = app
        .call("DELETE", &format!("/admin/{id}"), Some(&admin), None)
        .await;
    assert_eq!(deleted.expect_success(200), &json!({"deleted": true}));
    app.call("GET", &format!("/admin/{id}"), Some(&admin), None)
        .await
        .expect_error(404);
    app.call("GET", "/me", Some(&app.partner_token(&partner)), None)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn roles_are_enforced() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let token = app.partner_token(&partner);
    let id = app
        .register(&partner, "https://octo.example.com", "bearer", "k")
        .await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        ("GET", "/admin".to_owned()),
        ("GET", format!("/admin/{id}")),
        ("DELETE", format!("/admin/{id}")),
        ("POST", "/admin/sync-all".to_owned()),
    ] {
        app.call(method, &path, Some(&token), None)
            .await
            .expect_error(403);
    }
    app.call(
        "PATCH",
        &format!("/admin/{id}"),
        Some(&token),
        Some(json!({"isApproved": true})),
    )
    .await
    .expect_error(403);
    app.call(
        "POST",
        "/admin/create",
        Some(&token),
        Some(admin_body(&new_partner())),
    )
    .await
    .expect_error(403);
    app.call("GET", "/me", Some(&app.admin_token()), None)
        .await
        .expect_error(403);
    let still = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(
        still.expect_success(200)["isApproved"],
        false,
        "a partner cannot approve itself"
    );
}

#[tokio::test]
async fn sync_log_and_health_for_owner_and_admin_only() {
    let app = TestApp::spawn().await;
    let partner = new_partner();
    let id = app
        .register(&partner, "https://octo.example.com", "bearer", "k")
        .await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner = app.partner_token(&partner);
    let stranger = app.partner_token(&new_partner());
    let admin = app.admin_token();

    let log = app
        .call("GET", &format!("/{id}/sync-log"), Some(&owner), None)
        .await;
    let data = log.expect_success(200);
    assert_eq!(data["sync"]["status"], "idle");
    assert_eq!(data["health"]["status"], "HEALTHY");
    assert_eq!(data["runs"], json!([]));
    let health = app
        .call("GET", &format!("/{id}/health"), Some(&admin), None)
        .await;
    assert_eq!(health.expect_success(200)["status"], "HEALTHY");
    assert!(health.data().get("consecutive_failures").is_some());

    app.call("GET", &format!("/{id}/sync-log"), Some(&stranger), None)
        .await
        .expect_error(403);
    app.call("GET", &format!("/{id}/health"), Some(&stranger), None)
        .await
        .expect_error(403);
    app.call(
        "GET",
        "/64a1b2c3d4e5f6a7b8c9d0e1/health",
        Some(&admin),
        None,
    )
    .await
    .expect_error(404);
    app.call(
        "GET",
        "/64a1b2c3d4e5f6a7b8c9d0e1/sync-log",
        Some(&owner),
        None,
    )
    .await
    .expect_error(404);
    app.call("GET", "/xyz/health", Some(&admin), None)
        .await
        .expect_error(400);
    app.call("GET", &format!("/{id}/health"), None, None)
        .await
        .expect_error(401);
}

/// `POST /admin/{id}/sync` queues a full sync of one integration, coalesced like every request:
/// one made while a sync runs is served after it, one more while that is pending adds nothing.
#[tokio::test]
async fn admin_sync_of_one_integration_is_queued_and_coalesced() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let octo = FakeOcto::start().await;
    let partner = new_partner();
    let id = app
        .register(&partner, &octo.base_url(), "bearer", FAKE_KEY)
        .await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sync = format!("/admin/{id}/sync");

    let refused = app.call("POST", &sync, Some(&admin), None).await;
    refused.expect_error(403);
    assert_eq!(refused.body["message"], "Integration is not approved yet");
    app.approve(&id).await;
    app.call("POST", &sync, Some(&app.partner_token(&partner)), None)
        .await
        .expect_error(403);
    app.call(
        "POST",
        "/admin/64a1b2c3d4e5f6a7b8c9d0e1/sync",
        Some(&admin),
        None,
    )
    .await
    .expect_error(404);

    octo.set_behaviour(Behaviour::Held);
    assert_eq!(
        app.call("POST", &sync, Some(&admin), None)
            .await
            .expect_success(202),
        &json!({"requested": true})
    );
    seyaha_tests::wait_until(
        "the queued sync to reach the supplier",
        std::time::Duration::from_secs(15),
        || octo.product_calls() > 0,
    )
    .await;
    assert_eq!(
        app.call("POST", &sync, Some(&admin), None)
            .await
            .expect_success(202),
        &json!({"requested": true}),
        "served after the running one"
    );
    assert_eq!(
        app.call("POST", &sync, Some(&admin), None)
            .await
            .expect_success(202),
        &json!({"requested": false}),
        "already pending"
    );
    octo.release();
    octo.set_behaviour(Behaviour::Normal);
    // The held run, then the one serving the request made while it ran (its follow-up).
    let log = app
        .wait_for_log(&id, "two runs", |log| {
            log["runs"].as_array().unwrap().len() == 2 && log["sync"]["status"] == "idle"
        })
        .await;
    assert_eq!(
        seyaha_tests::runs_with_trigger(&log, "admin").len(),
        1,
        "{log:#}"
    );

    app.call(
        "PATCH",
        &format!("/admin/{id}"),
        Some(&admin),
        Some(json!({"isActive": false})),
    )
    .await
    .expect_success(200);
    let refused = app.call("POST", &sync, Some(&admin), None).await;
    refused.expect_error(403);
    assert_eq!(refused.body["message"], "Integration is inactive");
}
