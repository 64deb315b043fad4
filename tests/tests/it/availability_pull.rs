//! Availability pull (docs/api.md, "OCTO events"): `POST {base_url}/availability` per option, ranges split
//! at 31 days, at most 4 calls at once, a 429's `Retry-After` waited out on the clock; returned
//! availabilities become slots and the option's slots in the range that vanished become CLOSED.
//! Reached from an `AVAILABILITY_UPDATE`, a `booking_update` and an admin's refresh.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{Registered, TestApp, runs_with_trigger, test_settings};

fn availability(id: &str, start: &str, vacancies: u64) -> Value {
    json!({"id": id, "localDateTimeStart": start, "localDateTimeEnd": start, "allDay": false, "status": "AVAILABLE",
           "vacancies": vacancies, "capacity": 20, "maxUnits": null, "openingHours": []})
}

async fn synced(app: &TestApp) -> (FakeOcto, Registered) {
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    (octo, integration)
}

async fn event(app: &TestApp, integration: &Registered, body: Value) -> Value {
    let reply = app
        .webhook(
            &integration.id,
            "octo/events",
            Some(&integration.secret),
            Some(body),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    reply.body["data"].clone()
}

async fn pulls_done(app: &TestApp, integration: &Registered, count: usize) -> Value {
    app.wait_for_log(&integration.id, "the availability pulls", |log| {
        runs_with_trigger(log, "availability_pull").len() >= count
    })
    .await
}

async fn slots_of(app: &TestApp, integration: &Registered, option: &str) -> Vec<Value> {
    let reply = app
        .call(
            "GET",
            &format!("/{}/catalog?kind=slots&limit=500", integration.id),
            Some(&app.admin_token()),
            None,
        )
        .await;
    let mut slots: Vec<Value> = reply.expect_success(200)["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["optionId"] == option)
        .cloned()
        .collect();
    slots.sort_by_key(|s| s["availabilityId"].as_str().unwrap().to_owned());
    slots
}

#[tokio::test]
async fn an_availability_update_upserts_returned_slots_and_closes_vanished_ones() {
    let app = TestApp::spawn().await;
    let (octo, integration) = synced(&app).await;
    octo.set_availability(
        "product_0",
        "DEFAULT",
        vec![
            availability("a1", "2030-07-01T09:00:00+04:00", 5),
            availability("a2", "2030-07-02T09:00:00+04:00", 6),
        ],
    );
    // A slot outside the range the partner reports, stored by a notify: left alone.
    let outside = json!({"productId": "product_0", "optionId": "DEFAULT", "availabilityId": "a9", "localDateTimeStart": "2030-08-15T09:00:00+04:00", "vacancies": 1});
    app.notify(&integration, outside).await.expect_success(200);

    let update = update_event();
    assert_eq!(
        event(&app, &integration, update.clone()).await,
        json!({"accepted": true, "action": "availability_refresh_queued"})
    );
    let log = pulls_done(&app, &integration, 1).await;
    let run = runs_with_trigger(&log, "availability_pull")[0];
    assert_eq!(
        (
            run["outcome"].clone(),
            run["synced"].clone(),
            run["deactivated"].clone()
        ),
        (json!("synced"), json!(2), json!(0)),
        "{run}"
    );
    // One call per option of the product (DEFAULT, option-1), each for the whole month.
    let mut asked: Vec<(String, String, String)> = octo
        .availability_calls()
        .iter()
        .map(|c| {
            (
                c["optionId"].as_str().unwrap().into(),
                c["localDateStart"].as_str().unwrap().into(),
                c["localDateEnd"].as_str().unwrap().into(),
            )
        })
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            ("DEFAULT".into(), "2030-07-01".into(), "2030-07-31".into()),
            ("option-1".into(), "2030-07-01".into(), "2030-07-31".into())
        ]
    );
    let slots = slots_of(&app, &integration, "DEFAULT").await;
    let ids: Vec<&str> = slots
        .iter()
        .map(|s| s["availabilityId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a1", "a2", "a9"]);
    assert_eq!(
        (
            slots[0]["status"].clone(),
            slots[0]["vacancies"].clone(),
            slots[0]["capacity"].clone()
        ),
        (json!("AVAILABLE"), json!(5), json!(20))
    );

    // a2 is gone from the partner: it becomes CLOSED; a1 is updated; a9 is outside the range.
    octo.set_availability(
        "product_0",
        "DEFAULT",
        vec![availability("a1", "2030-07-01T09:00:00+04:00", 4)],
    );
    event(&app, &integration, update).await;
    let log = pulls_done(&app, &integration, 2).await;
    assert_eq!(
        runs_with_trigger(&log, "availability_pull")[0]["deactivated"],
        1
    );
    let slots = slots_of(&app, &integration, "DEFAULT").await;
    assert_eq!(
        (
            slots[0]["availabilityId"].clone(),
            slots[0]["vacancies"].clone()
        ),
        (json!("a1"), json!(4))
    );
    assert_eq!(
        (
            slots[1]["availabilityId"].clone(),
            slots[1]["status"].clone()
        ),
        (json!("a2"), json!("CLOSED"))
    );
    assert_eq!(
        (
            slots[2]["availabilityId"].clone(),
            slots[2]["status"].clone()
        ),
        (json!("a9"), Value::Null)
    );

    // The same answer again: read, compared, and nothing written.
    event(&app, &integration, update_event()).await;
    let log = pulls_done(&app, &integration, 3).await;
    let run = runs_with_trigger(&log, "availability_pull")[0];
    assert_eq!(
        (
            run["synced"].clone(),
            run["updated"].clone(),
            run["unchanged"].clone()
        ),
        (json!(1), json!(0), json!(1)),
        "{run}"
    );
    assert_eq!(
        slots_of(&app, &integration, "DEFAULT").await,
        slots,
        "the slots as they were, time stamps included"
    );
}

fn update_event() -> Value {
    json!({"notificationType": "AVAILABILITY_UPDATE", "payload": {"productId": "product_0", "localDateStart": "2030-07-01", "localDateEnd": "2030-07-31"}})
}

#[tokio::test]
async fn a_booking_update_refreshes_that_slot() {
    let app = TestApp::spawn().await;
    let (octo, integration) = synced(&app).await;
    octo.set_availability(
        "product_1",
        "option-1",
        vec![availability("b1", "2030-07-10T14:00:00+04:00", 2)],
    );
    let delivery = json!({"webhook": {"id": "wh", "event": "booking_update"},
        "booking": {"uuid": "bk-1", "status": "CONFIRMED", "productId": "product_1", "optionId": "option-1", "availabilityId": "b1",
                    "availability": {"id": "b1", "localDateTimeStart": "2030-07-10T14:00:00+04:00"}}});
    assert_eq!(
        event(&app, &integration, delivery).await["action"],
        "availability_refresh_queued"
    );
    pulls_done(&app, &integration, 1).await;
    let calls = octo.availability_calls();
    assert_eq!(
        calls,
        [
            json!({"productId": "product_1", "optionId": "option-1", "localDateStart": "2030-07-10", "localDateEnd": "2030-07-10"})
        ]
    );
    assert_eq!(
        slots_of(&app, &integration, "option-1").await[0]["vacancies"],
        2
    );
}

#[tokio::test]
async fn an_admin_refresh_splits_long_ranges_and_bounds_the_calls_in_flight() {
    let app = TestApp::spawn().await;
    let (octo, integration) = synced(&app).await;
    let admin = app.admin_token();
    let path = format!("/admin/{}/availability/refresh", integration.id);
    // 92 days: three calls per option (31 + 31 + 30), two options, at most 4 in flight.
    let body = json!({"productId": "product_2", "localDateStart": "2030-07-01", "localDateEnd": "2030-09-30"});
    let reply = app.call("POST", &path, Some(&admin), Some(body)).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    assert_eq!(reply.body["data"], json!({"queued": 1}));
    pulls_done(&app, &integration, 1).await;
    let mut ranges: Vec<(String, String)> = octo
        .availability_calls()
        .iter()
        .filter(|c| c["optionId"] == "DEFAULT")
        .map(|c| {
            (
                c["localDateStart"].as_str().unwrap().into(),
                c["localDateEnd"].as_str().unwrap().into(),
            )
        })
        .collect();
    ranges.sort();
    assert_eq!(
        ranges,
        [
            ("2030-07-01".into(), "2030-07-31".into()),
            ("2030-08-01".into(), "2030-08-31".into()),
            ("2030-09-01".into(), "2030-09-30".into())
        ]
    );
    assert_eq!(octo.availability_calls().len(), 6);
    assert!(
        octo.most_availability_calls_at_once() <= 4,
        "{} calls at once",
        octo.most_availability_calls_at_once()
    );

    // Without a product: one pull per active product.
    let all = app
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(json!({"localDateStart": "2030-07-01", "localDateEnd": "2030-07-01"})),
        )
        .await;
    assert_eq!(all.expect_success(202), &json!({"queued": 3}));
    // Bad input, another role, an unknown integration.
    let errors = app
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(json!({"localDateStart": "2030-07-31", "localDateEnd": "2030-07-01"})),
        )
        .await
        .expect_error(400);
    assert!(errors.contains("must not be before"), "{errors}");
    let partner = app.partner_token(&integration.partner);
    app.call(
        "POST",
        &path,
        Some(&partner),
        Some(json!({"localDateStart": "2030-07-01", "localDateEnd": "2030-07-01"})),
    )
    .await
    .expect_error(403);
    let unknown = "/admin/64a1b2c3d4e5f6a7b8c9d0e1/availability/refresh";
    app.call(
        "POST",
        unknown,
        Some(&admin),
        Some(json!({"localDateStart": "2030-07-01", "localDateEnd": "2030-07-01"})),
    )
    .await
    .expect_error(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_its_retry_after_on_the_clock() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let (octo, integration) = synced(&app).await;
    octo.set_availability(
        "product_0",
        "DEFAULT",
        vec![availability("r1", "2030-07-01T09:00:00+04:00", 3)],
    );
    octo.rate_limit_availability(1, 7);
    let body = json!({"productId": "product_0", "localDateStart": "2030-07-01", "localDateEnd": "2030-07-01"});
    let path = format!("/admin/{}/availability/refresh", integration.id);
    app.call("POST", &path, Some(&app.admin_token()), Some(body))
        .await
        .expect_success(202);
    // Both options are asked once; one answer is a 429. The pull waits for the clock.
    let deadline = Instant::now() + Duration::from_secs(15);
    while octo.availability_calls().len() < 2 {
        assert!(Instant::now() < deadline, "the pull never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        runs_with_trigger(&app.sync_log(&integration.id).await, "availability_pull").is_empty(),
        "not done before the wait"
    );
    // Move the clock past the Retry-After until the pull finishes: the retry may not be
    // waiting yet when the clock first moves (its wait starts from the clock's time then).
    while runs_with_trigger(&app.sync_log(&integration.id).await, "availability_pull").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pull never finished after its Retry-After"
        );
        app.clock().advance(Duration::from_secs(8));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        octo.availability_calls().len(),
        3,
        "the rate-limited call, once more after Retry-After"
    );
    assert_eq!(
        slots_of(&app, &integration, "DEFAULT").await[0]["availabilityId"],
        "r1"
    );
}

/// Pulls of several products are separate jobs the worker runs side by side; the lease makes
/// them take turns, so the partner never sees more than 4 calls at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_of_one_partner_take_turns_so_it_gets_at_most_4_calls_at_once() {
    let app = TestApp::spawn().await;
    let (octo, integration) = synced(&app).await;
    let path = format!("/admin/{}/availability/refresh", integration.id);
    // Every active product (3), two options each, 92 days (3 pieces): 18 calls in 3 jobs.
    let body = json!({"localDateStart": "2030-07-01", "localDateEnd": "2030-09-30"});
    assert_eq!(
        app.call("POST", &path, Some(&app.admin_token()), Some(body))
            .await
            .expect_success(202),
        &json!({"queued": 3})
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = app.sync_log(&integration.id).await;
        let done = runs_with_trigger(&log, "availability_pull")
            .iter()
            .filter(|run| run["outcome"] == "synced")
            .count();
        if done == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pulls did not all finish: {log:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(octo.availability_calls().len(), 18);
    assert!(
        octo.most_availability_calls_at_once() <= 4,
        "{} calls at once",
        octo.most_availability_calls_at_once()
    );
}

/// A partner's pull flood (docs/security.md), automated: while the partner's
/// `/availability` is held, 59 more `AVAILABILITY_UPDATE` events for the same pull are
/// accepted; once it answers, one more run serves all of them, with no time passing (before,
/// each event was its own job, re-queued every 2 s while the lease was held). The partner got
/// each option's call once per run, never more than 4 at a time.
#[tokio::test]
async fn a_flood_of_availability_events_is_served_by_one_more_run_not_one_per_event() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let (octo, integration) = synced(&app).await;
    octo.hold_availability();
    event(&app, &integration, update_event()).await;
    seyaha_tests::wait_until(
        "the first pull to reach the partner",
        Duration::from_secs(10),
        || octo.availability_calls_in_flight() == 2,
    )
    .await;
    for _ in 0..59 {
        assert_eq!(
            event(&app, &integration, update_event()).await["action"],
            "availability_refresh_queued"
        );
    }
    octo.release();
    let log = pulls_done(&app, &integration, 2).await;
    let runs = runs_with_trigger(&log, "availability_pull");
    assert!(
        runs.iter().all(|run| run["outcome"] == "synced"),
        "{runs:?}"
    );
    // product_0 has two options: two calls per run, for the two runs.
    assert_eq!(
        octo.availability_calls().len(),
        4,
        "{:?}",
        octo.availability_calls()
    );
    assert!(octo.most_availability_calls_at_once() <= 4);
}
