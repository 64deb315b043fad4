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
    let created = app
        .register(&partner, &octo.base_url(), "api_key", FAKE_KEY)
        .await;
    let id = created["_id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    app.approve(&id).await;
    // Approval queues the push subscription (this supplier offers none): let it land first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let before = loop {
        let me = app
            .call("GET", "/me", Some(&token), None)
            .await
            .data()
            .clone();
        if me["notifications"]["subscribed_at"].is_string() {
            break me;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription job never ran: {me}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };

    app.restart().await;

    let after = app.call("GET", "/me", Some(&token), None).await;
    assert_eq!(after.expect_success(200), &before);
    // The webhook secret still authenticates, and the stored credential still reaches the partner.
    let synced = app.webhook(&id, "sync/trigger", Some(&secret), None).await;
    assert_eq!(synced.expect_success(200)["synced"], 3);
    // The stored credential still works.
    let test = app
        .call("POST", "/me/test-connection", Some(&token), None)
        .await;
    assert_eq!(test.data()["ok"], true, "{}", test.text);
    // And the one-per-partner index survived too.
    app.call("POST", "", Some(&token), Some(serde_json::json!({"base_url": "https://x.example.com", "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false}))).await.expect_error(409);
}

/// Slot writes share transactions (group commit): many at once are all acknowledged, all on
/// disk when reopened, and dropping the store closes the file at once (the writer thread holds
/// it weakly), so it can be opened again immediately.
#[tokio::test]
async fn concurrent_slot_writes_are_committed_together_and_all_durable() {
    use seyaha::adapters::embedded::RedbStore;
    use seyaha::domain::{IntegrationId, LocalDateTime, Slot, Timestamp};
    use seyaha::ports::CatalogStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seyaha.redb");
    let store = RedbStore::open(&path).unwrap();
    let id = IntegrationId::generate(1_800_000_000);
    let slot = |n: u64| Slot {
        product_id: format!("p{}", n % 7),
        option_id: "DEFAULT".into(),
        availability_id: format!("slot-{n}"),
        local_date_time_start: LocalDateTime::parse("2030-07-15T10:00:00+04:00").unwrap(),
        status: None,
        vacancies: Some(n),
        capacity: Some(1000),
        updated_at: Timestamp::from_unix_millis(1_800_000_000_000),
    };
    let far = Timestamp::parse("2031-01-01T00:00:00Z").unwrap();
    let writes = (0..400).map(|n| {
        let store = store.clone();
        async move { store.put_slot(&id, &slot(n), far).await }
    });
    for result in futures_util::future::join_all(writes).await {
        result.unwrap();
    }
    drop(store);

    let reopened = RedbStore::open(&path).expect("the file is closed once the store is dropped");
    let slots = reopened
        .slots_page(&id, 1000, None, Timestamp::from_unix_millis(0))
        .await
        .unwrap()
        .items;
    assert_eq!(slots.len(), 400);
    assert!(slots.iter().all(|s| {
        s.vacancies
            == Some(
                s.availability_id
                    .trim_start_matches("slot-")
                    .parse()
                    .unwrap(),
            )
    }));
}
