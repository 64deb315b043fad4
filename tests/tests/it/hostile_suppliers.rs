//! A partner's OCTO server is untrusted: a gzip bomb, an endless body, a declared 1 GiB body,
//! 100,000 levels of nesting, a 10 MB string and invalid UTF-8 each fail that sync with a
//! clear `error_message` (502 to the trigger), a product holding a 3 MB string (under the
//! guard, over the per-product cap) is rejected unread while the sync goes on; each costs at most one product (the per-product cap) in memory plus
//! a bounded constant, never the body, and leaves the service answering. The peak RSS of this test process is
//! printed after each case (`cargo test -p seyaha-tests --test it hostile_suppliers:: -- --nocapture`).
//!
//! A partner cannot grow its stored catalog without limit either: renaming every product on
//! every call fills its cap (count and bytes) and no more, deactivated activities go after
//! their retention, a `PRODUCT_UPDATE` counts like a full sync, and a catalog page stays
//! under 5 MB whatever `limit` asks.

use std::time::Duration;

use serde_json::{Value, json};
use seyaha::settings::Settings;
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto, Hostile, sample_catalog};
use seyaha_tests::{Registered, TestApp, runs_with_trigger, test_settings};

/// The response cap and the catalog guard in this test (`SEYAHA_OCTO_MAX_RESPONSE_BYTES`,
/// `SEYAHA_OCTO_MAX_CATALOG_BYTES`), at 5 MiB here.
const CAP: usize = 5 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn hostile_answers_fail_the_sync_clearly_within_the_cap() {
    // Peak RSS is the process's: measured where no other test runs.
    if !seyaha_tests::in_own_process(
        module_path!(),
        "hostile_answers_fail_the_sync_clearly_within_the_cap",
    )
    .await
    {
        return;
    }
    let supplier = FakeOcto::start().await;
    let settings = Settings {
        octo_max_response_bytes: CAP,
        octo_max_catalog_bytes: CAP as u64,
        octo_timeout_secs: 10,
        ..test_settings()
    };
    let app = TestApp::spawn_with(settings).await;
    let before = seyaha_tests::peak_rss_mib();
    println!(
        "peak RSS before: {before:.1} MiB (cap {} MiB)",
        CAP / (1024 * 1024)
    );

    let too_large = format!("GET /products returned more than {CAP} bytes");
    let cases = [
        (Hostile::GzipBomb, too_large.as_str()),
        (Hostile::Endless, too_large.as_str()),
        (Hostile::OneGib, too_large.as_str()),
        (Hostile::DeepNesting, "GET /products did not return JSON"),
        (Hostile::TenMbString, too_large.as_str()),
        (Hostile::InvalidUtf8, "GET /products did not return JSON"),
    ];
    for (hostile, expected) in cases {
        let case = format!("{hostile:?}");
        supplier.set_behaviour(Behaviour::Hostile(hostile));
        let integration = app.approved(&supplier.base_url(), FAKE_KEY).await;
        let reply = tokio::time::timeout(Duration::from_secs(30), app.trigger(&integration))
            .await
            .expect("the sync ends");
        let errors = reply.expect_error(502);
        assert!(errors.contains(expected), "{case}: {errors}");
        let log = app.sync_log(&integration.id).await;
        assert_eq!(log["sync"]["status"], "error", "{case}");
        assert_eq!(log["sync"]["error_message"], expected, "{case}");
        // The service keeps answering.
        app.call(
            "GET",
            "/me",
            Some(&app.partner_token(&integration.partner)),
            None,
        )
        .await
        .expect_success(200);
        println!(
            "{case:>14}: 502 \"{expected}\"; peak RSS {:.1} MiB",
            seyaha_tests::peak_rss_mib()
        );
    }
    // One product over the per-product cap (1 MiB by default) is rejected unread; the sync ends well.
    supplier.set_behaviour(Behaviour::Hostile(Hostile::ThreeMbString));
    let integration = app.approved(&supplier.base_url(), FAKE_KEY).await;
    let reply = tokio::time::timeout(Duration::from_secs(30), app.trigger(&integration))
        .await
        .expect("the sync ends");
    let data = reply.expect_success(200);
    assert_eq!(
        (data["synced"].clone(), data["rejected"].clone()),
        (serde_json::json!(0), serde_json::json!(1)),
        "{data}"
    );
    assert_eq!(
        data["rejections"][0]["reason"],
        "product: larger than 1048576 bytes as sent; not read"
    );
    println!(
        "{:>15}: 200, rejected unread; peak RSS {:.1} MiB",
        "three-mb-string",
        seyaha_tests::peak_rss_mib()
    );
    // At most the cap (plus what parsing a capped body costs) above where it started; a
    // generous bound, since the process also runs the server, the supplier and the client.
    let growth = seyaha_tests::peak_rss_mib() - before;
    assert!(
        growth < 8.0 * (CAP as f64) / (1024.0 * 1024.0) + 64.0,
        "peak RSS grew by {growth:.1} MiB"
    );
}

/// `count` products whose ids and `internalName`s are new in every `round` (a supplier
/// renaming its whole catalog on every call), with titles of `title_bytes`.
fn renamed_catalog(round: usize, count: usize, title_bytes: usize) -> Value {
    let mut catalog = sample_catalog(count);
    for (i, product) in catalog.as_array_mut().unwrap().iter_mut().enumerate() {
        product["id"] = json!(format!("r{round}-product_{i}"));
        product["internalName"] = json!(format!("r{round}-product-{i}"));
        if title_bytes > 0 {
            product["title"] = json!(format!("{i:05}{}", "t".repeat(title_bytes)));
        }
    }
    catalog
}

/// Every stored activity (active or not), following the catalog's cursors, with the size of
/// each page's answer.
async fn stored_activities(app: &TestApp, id: &str, limit: usize) -> (Vec<Value>, Vec<usize>) {
    let (mut activities, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let after = cursor
            .as_ref()
            .map(|c| format!("&activities_cursor={c}"))
            .unwrap_or_default();
        let reply = app
            .call(
                "GET",
                &format!("/{id}/catalog?kind=activities&limit={limit}{after}"),
                Some(&app.admin_token()),
                None,
            )
            .await;
        sizes.push(reply.text.len());
        let page = reply.expect_success(200).clone();
        activities.extend(page["activities"].as_array().unwrap().iter().cloned());
        match page["next_cursor"]["activities"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (activities, sizes),
        }
    }
}

fn counts(run: &Value) -> [u64; 4] {
    ["created", "deactivated", "rejected", "synced"].map(|field| {
        run[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} in {run}"))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_supplier_renaming_its_catalog_on_every_call_fills_its_cap_and_no_more() {
    let settings = Settings {
        catalog_max_activities: 200,
        catalog_inactive_retention_days: 1,
        ..test_settings()
    };
    let app = TestApp::spawn_with_fake_clock(settings).await;
    let octo = FakeOcto::start().await;
    octo.set_catalog(renamed_catalog(0, 150, 0));
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    let (app, integration) = (&app, &integration);
    let sync = |round: usize| {
        octo.set_catalog(renamed_catalog(round, 150, 0));
        async move {
            let reply = app.trigger(integration).await;
            assert_eq!(reply.status.as_u16(), 200, "round {round}: {}", reply.text);
            reply.body["data"].clone()
        }
    };
    assert_eq!(counts(&sync(0).await), [150, 0, 0, 150]);

    // 150 more would make 300 stored: 50 fit, 100 are refused with the reason; the first 150
    // are deactivated (and still stored).
    let second = sync(1).await;
    assert_eq!(counts(&second), [50, 150, 100, 50], "{second}");
    let reason = second["rejections"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("catalog limit: this integration already stores 200 activities"),
        "{reason}"
    );
    assert!(
        second["rejections"][0]["internalName"]
            .as_str()
            .unwrap()
            .starts_with("r1-product-")
    );
    let (stored, _) = stored_activities(app, &integration.id, 500).await;
    assert_eq!(stored.len(), 200);

    // Again at once: nothing more fits, however often it is asked.
    assert_eq!(counts(&sync(2).await), [0, 50, 150, 0]);
    assert_eq!(
        stored_activities(app, &integration.id, 500).await.0.len(),
        200
    );

    // Past the retention, the deactivated 200 are removed and the new catalog fits whole: the
    // nightly run two days on (03:00 UTC) syncs it (or the follow-up it leaves, when an earlier
    // run's watchdog holds the lease at that moment).
    octo.set_catalog(renamed_catalog(3, 150, 0));
    app.clock().advance(Duration::from_secs(2 * 24 * 3600));
    let background_sync = |run: &&Value| run["trigger"] != "webhook" && run["outcome"] == "synced";
    let log = app
        .wait_for_log(&integration.id, "the nightly sync", |log| {
            log["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|run| background_sync(&run))
        })
        .await;
    app.settle().await;
    let synced: Vec<&Value> = log["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(background_sync)
        .collect();
    assert_eq!(synced.len(), 1, "{log:#}");
    assert_eq!(counts(synced[0]), [150, 0, 0, 150], "{log:#}");
    let (stored, _) = stored_activities(app, &integration.id, 500).await;
    assert_eq!(stored.len(), 150);
    assert!(
        stored.iter().all(
            |a| a["isActive"] == true && a["internalName"].as_str().unwrap().starts_with("r3-")
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_byte_cap_refuses_what_would_pass_it_and_a_product_update_counts_too() {
    // Ten products of ~40 KB against a cap of 200,000 bytes: four fit.
    let settings = Settings {
        catalog_max_bytes: 200_000,
        ..test_settings()
    };
    let app = TestApp::spawn_with(settings).await;
    let octo = FakeOcto::start().await;
    octo.set_catalog(renamed_catalog(0, 10, 40_000));
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    let first = app.trigger(&integration).await.expect_success(200).clone();
    assert_eq!(counts(&first), [4, 0, 6, 4], "{first}");
    let reason = first["rejections"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "catalog limit: storing it would take this integration's catalog past 200000 bytes"
        ),
        "{reason}"
    );

    // A new product pushed by PRODUCT_UPDATE is refused the same way, without a full sync.
    let mut catalog = renamed_catalog(0, 10, 40_000);
    catalog
        .as_array_mut()
        .unwrap()
        .push(renamed_catalog(1, 1, 40_000)[0].clone());
    octo.set_catalog(catalog);
    let body =
        json!({"notificationType": "PRODUCT_UPDATE", "payload": {"productId": "r1-product_0"}});
    app.webhook(
        &integration.id,
        "octo/events",
        Some(&integration.secret),
        Some(body),
    )
    .await;
    let log = app
        .wait_for_log(&integration.id, "the product sync", |log| {
            !runs_with_trigger(log, "product_update").is_empty()
        })
        .await;
    let run = runs_with_trigger(&log, "product_update")[0];
    assert_eq!(
        (run["created"].clone(), run["rejected"].clone()),
        (json!(0), json!(1)),
        "{run}"
    );
    assert!(
        run["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("catalog limit:"),
        "{run}"
    );
    assert_eq!(
        stored_activities(&app, &integration.id, 500).await.0.len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_page_stays_under_5_mb_whatever_limit_asks() {
    // 40 activities of ~250 KB (10 MB): `limit=500` would answer all of them at once.
    let app = TestApp::spawn().await;
    let octo = FakeOcto::start().await;
    octo.set_catalog(renamed_catalog(0, 40, 250_000));
    let integration: Registered = app.approved(&octo.base_url(), FAKE_KEY).await;
    let synced = app.trigger(&integration).await.expect_success(200).clone();
    assert_eq!(counts(&synced), [40, 0, 0, 40], "{synced}");

    let (activities, sizes) = stored_activities(&app, &integration.id, 500).await;
    assert!(
        sizes.iter().all(|size| *size < 5_000_000),
        "page sizes {sizes:?}"
    );
    assert!(sizes.len() >= 3, "the pages end early: {sizes:?}");
    let mut names: Vec<_> = activities
        .iter()
        .map(|a| a["internalName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 40, "every activity exactly once");
    println!("catalog pages of limit=500: {sizes:?} bytes");
}
