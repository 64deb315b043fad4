//! The demo OCTO supplier as a small OCTO platform, over real HTTP on loopback: seyaha-local
//! started in-process on port 0, and receivers (axum on port 0) standing in for subscribers.
//! Waits are polls with a deadline; absence is asserted once the supplier has no delivery in
//! flight, never after a sleep.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};
use seyaha::settings::Settings;
use seyaha_local::demo::notifications::{
    DeliveryAttempt, DeliveryOutcome, MASKED_HEADER_VALUE, NotificationType,
};
use seyaha_local::{LocalConfig, RunningServer};

const KEY: &str = "demo-octo-key";
const SECRET: &str = "a-subscribers-secret-0123456789";

struct Demo {
    server: RunningServer,
    _data_dir: tempfile::TempDir,
    http: reqwest::Client,
    /// The demo's OCTO root, `http://127.0.0.1:<port>/demo/octo`.
    root: String,
}

async fn start() -> Demo {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: data_dir.path().to_owned(),
        allow_private_endpoints: Some(true),
        ..Settings::default()
    };
    let server = seyaha_local::start(LocalConfig::new(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        settings,
    ))
    .await
    .unwrap();
    let root = format!("{}/demo/octo", server.base_url());
    Demo {
        server,
        _data_dir: data_dir,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        root,
    }
}

async fn reply(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Demo {
    /// An OCTO call with the demo key and the notifications capability.
    async fn octo(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(KEY)
            .header("octo-capabilities", "octo/notifications");
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.octo(reqwest::Method::GET, path, None).await
    }

    async fn simulate(&self, hook: &str, body: Value) -> (u16, Value) {
        reply(
            self.http
                .post(format!("{}/_simulate/{hook}", self.root))
                .json(&body),
        )
        .await
    }

    async fn subscribe(&self, url: &str, types: &[&str], headers: Value) -> Value {
        let body = json!({ "url": url, "notificationTypes": types, "headers": headers });
        let (status, created) = self
            .octo(
                reqwest::Method::POST,
                "/notifications/subscriptions",
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        created
    }

    async fn availability(
        &self,
        product: &str,
        option: &str,
        from: &str,
        to: &str,
    ) -> (u16, Value) {
        let body = json!({ "productId": product, "optionId": option, "localDateStart": from, "localDateEnd": to });
        self.octo(reqwest::Method::POST, "/availability", Some(body))
            .await
    }

    /// The recorded delivery attempts, once none is in flight (retries included).
    async fn settled_deliveries(&self) -> Vec<DeliveryAttempt> {
        let notifications = self.server.demo_supplier().notifications();
        eventually("the deliveries to finish", || {
            (notifications.in_flight() == 0).then(|| notifications.deliveries())
        })
        .await
    }
}

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A subscriber's endpoint: records every request, and answers 500 to the first `failures`.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    failures_left: Arc<AtomicUsize>,
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

impl Receiver {
    async fn start(failures: usize) -> (String, Receiver) {
        let receiver = Receiver {
            failures_left: Arc::new(AtomicUsize::new(failures)),
            ..Receiver::default()
        };
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let url = format!("http://{}/octo/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (url, receiver)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        eventually(&format!("{count} deliveries"), || {
            Some(self.received()).filter(|received| received.len() >= count)
        })
        .await
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    receiver.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let failing = receiver
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::ACCEPTED
    }
}

#[tokio::test]
async fn subscriptions_are_created_in_both_spellings_listed_read_and_deleted() {
    let demo = start().await;
    let (status, list) = demo.get("/notifications/subscriptions").await;
    assert_eq!((status, list), (200, json!([])));

    let first = demo
        .subscribe(
            "http://127.0.0.1:9/hook",
            &["product_update", "Availability_Update"],
            json!({"x-webhook-secret": SECRET}),
        )
        .await;
    assert_eq!(
        first,
        json!({"id": "sub_1", "url": "http://127.0.0.1:9/hook", "notificationTypes": ["PRODUCT_UPDATE", "AVAILABILITY_UPDATE"],
               "headers": {"x-webhook-secret": SECRET}})
    );
    // The spec's misspelt create route, without the capability header (served, and recorded).
    let body = json!({"url": "https://example.invalid/octo", "notificationTypes": ["BOOKING_UPDATE"], "headers": {}});
    let (status, second) = reply(
        demo.http
            .post(format!("{}/notifications/subcriptions", demo.root))
            .bearer_auth(KEY)
            .json(&body),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(
        (second["id"].as_str(), second["notificationTypes"].clone()),
        (Some("sub_2"), json!(["BOOKING_UPDATE"]))
    );

    // Listed and read, header values are masked (the demo key is public).
    let mut first_shown = first.clone();
    first_shown["headers"]["x-webhook-secret"] = json!(MASKED_HEADER_VALUE);
    let (status, list) = demo.get("/notifications/subscriptions").await;
    assert_eq!((status, list), (200, json!([first_shown, second])));
    assert_eq!(
        demo.get("/notifications/subscriptions/sub_2").await,
        (200, second.clone())
    );

    let (status, _) = demo
        .octo(
            reqwest::Method::DELETE,
            "/notifications/subscriptions/sub_1",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, missing) = demo.get("/notifications/subscriptions/sub_1").await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, _) = demo
        .octo(
            reqwest::Method::DELETE,
            "/notifications/subscriptions/sub_1",
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        demo.get("/notifications/subscriptions").await,
        (200, json!([second]))
    );
    // Ids are never reused.
    assert_eq!(
        demo.subscribe("http://127.0.0.1:9/again", &["PRODUCT_UPDATE"], json!({}))
            .await["id"],
        "sub_3"
    );

    // Every request was served; the one without `Octo-Capabilities` shows as such.
    let requests = demo.server.demo_supplier().notifications().requests();
    let operations: Vec<(&str, bool)> = requests
        .iter()
        .map(|request| (request.operation, request.asked_for_notifications))
        .collect();
    let expected = [
        ("list", true),
        ("create", true),
        ("create", false),
        ("list", true),
        ("get", true),
    ];
    let expected = expected.into_iter().chain([
        ("delete", true),
        ("get", true),
        ("delete", true),
        ("list", true),
        ("create", true),
    ]);
    assert_eq!(operations, expected.collect::<Vec<_>>());
    assert_eq!(requests[2].octo_capabilities, None);
    let (_, recorded) = reply(demo.http.get(format!("{}/_simulate/recorded", demo.root))).await;
    assert_eq!(
        recorded["notificationsRequests"][2],
        json!({"operation": "create", "octoCapabilities": null, "askedForNotifications": false})
    );
    // A bare capability id counts too.
    let bare = demo
        .http
        .get(format!("{}/notifications/subscriptions", demo.root))
        .bearer_auth(KEY)
        .header("octo-capabilities", "content, notifications");
    assert_eq!(reply(bare).await.0, 200);
    assert!(
        demo.server
            .demo_supplier()
            .notifications()
            .requests()
            .last()
            .unwrap()
            .asked_for_notifications
    );
}

/// Security review round two, R9: anyone with the public demo key listed every subscription's
/// delivery secret. The list and the read show header names with masked values; deliveries
/// still carry the real ones (`a_product_change_is_delivered_once_with_the_subscribed_headers`).
#[tokio::test]
async fn listed_and_read_subscriptions_mask_header_values() {
    let demo = start().await;
    demo.subscribe(
        "http://127.0.0.1:9/hook",
        &["PRODUCT_UPDATE"],
        json!({"x-webhook-secret": SECRET, "X-Partner-Ref": "ref-1"}),
    )
    .await;
    let list = demo
        .http
        .get(format!("{}/notifications/subscriptions", demo.root))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    let read = demo
        .http
        .get(format!("{}/notifications/subscriptions/sub_1", demo.root))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read = read.text().await.unwrap();
    for text in [&list, &read] {
        assert!(
            !text.contains(SECRET) && !text.contains("ref-1"),
            "a header value is shown: {text}"
        );
    }
    let shown: Value = serde_json::from_str(&read).unwrap();
    assert_eq!(
        shown["headers"],
        json!({"x-webhook-secret": MASKED_HEADER_VALUE, "X-Partner-Ref": MASKED_HEADER_VALUE})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        json!([shown])
    );
}

#[tokio::test]
async fn subscription_bodies_are_checked_and_the_key_is_required() {
    let demo = start().await;
    let valid = json!({"url": "http://127.0.0.1:9/hook", "notificationTypes": ["PRODUCT_UPDATE"], "headers": {"x-webhook-secret": "s"}});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let mut without_types = valid.clone();
    without_types
        .as_object_mut()
        .unwrap()
        .remove("notificationTypes");
    for (case, body) in [
        ("no url", json!({"notificationTypes": ["PRODUCT_UPDATE"]})),
        ("url not a string", with("url", json!(42))),
        ("ftp url", with("url", json!("ftp://127.0.0.1/hook"))),
        ("relative url", with("url", json!("/hook"))),
        ("no types", without_types),
        ("empty types", with("notificationTypes", json!([]))),
        (
            "types not an array",
            with("notificationTypes", json!("PRODUCT_UPDATE")),
        ),
        (
            "unknown type",
            with(
                "notificationTypes",
                json!(["PRODUCT_UPDATE", "PRICE_UPDATE"]),
            ),
        ),
        ("type not a string", with("notificationTypes", json!([1]))),
        (
            "headers not an object",
            with("headers", json!(["x-webhook-secret"])),
        ),
        (
            "header value not a string",
            with("headers", json!({"x-webhook-secret": 1})),
        ),
        (
            "header name invalid",
            with("headers", json!({"bad header": "v"})),
        ),
        (
            "header value invalid",
            with("headers", json!({"x-webhook-secret": "line\nbreak"})),
        ),
        (
            "framing header",
            with("headers", json!({"Content-Length": "1"})),
        ),
        ("not an object", json!(["http://127.0.0.1:9/hook"])),
    ] {
        let (status, error) = demo
            .octo(
                reqwest::Method::POST,
                "/notifications/subscriptions",
                Some(body),
            )
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some("BAD_REQUEST")),
            "{case}: {error}"
        );
        assert!(
            error["errorMessage"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{case}: {error}"
        );
    }
    let not_json = demo
        .http
        .post(format!("{}/notifications/subscriptions", demo.root))
        .bearer_auth(KEY)
        .body("{");
    assert_eq!(reply(not_json).await.1["error"], "BAD_REQUEST");
    // Nothing was created by any of them; the in-review draft's field name is taken.
    assert_eq!(demo.get("/notifications/subscriptions").await.1, json!([]));
    let draft =
        json!({"url": "http://127.0.0.1:9/hook", "notification_types": ["availability_update"]});
    let (status, created) = demo
        .octo(
            reqwest::Method::POST,
            "/notifications/subscriptions",
            Some(draft),
        )
        .await;
    assert_eq!(
        (
            status,
            created["notificationTypes"].clone(),
            created["headers"].clone()
        ),
        (201, json!(["AVAILABILITY_UPDATE"]), json!({}))
    );

    // The notifications routes want the key like every OCTO route.
    for (key, expected) in [
        (None, (401, "UNAUTHORIZED")),
        (Some("Bearer wrong"), (403, "FORBIDDEN")),
    ] {
        for request in [
            demo.http
                .get(format!("{}/notifications/subscriptions", demo.root)),
            demo.http
                .post(format!("{}/notifications/subcriptions", demo.root))
                .json(&valid),
            demo.http
                .delete(format!("{}/notifications/subscriptions/sub_1", demo.root)),
        ] {
            let request = match key {
                Some(key) => request.header("authorization", key),
                None => request,
            };
            let (status, error) = reply(request).await;
            assert_eq!((status, error["error"].as_str().unwrap()), expected);
        }
    }
    assert_eq!(
        demo.get("/notifications/subscriptions")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn products_are_served_as_before_and_an_unknown_one_is_404() {
    let demo = start().await;
    let catalog = seyaha_local::demo::catalog();
    assert_eq!(demo.get("/products").await, (200, catalog.clone()));
    assert_eq!(
        demo.get("/products/product_dhow_cruise").await,
        (200, catalog[1].clone())
    );
    let (status, error) = demo.get("/products/product_gone").await;
    assert_eq!(
        (status, error["error"].as_str(), error["productId"].as_str()),
        (404, Some("INVALID_PRODUCT_ID"), Some("product_gone"))
    );
    let (status, supplier) = demo.get("/supplier").await;
    assert_eq!(
        (
            status,
            supplier["id"].as_str(),
            supplier["endpoint"].as_str()
        ),
        (200, Some("demo-supplier"), Some("/demo/octo"))
    );
    // The raw key works as well as the bearer form.
    let raw = demo
        .http
        .get(format!("{}/products", demo.root))
        .header("authorization", KEY);
    assert_eq!(reply(raw).await, (200, catalog));
}

#[tokio::test]
async fn availability_answers_each_day_within_31_days_and_refuses_unknown_ids() {
    let demo = start().await;
    // The private safari starts at 15:00 and 16:00 and lasts six hours.
    let (status, days) = demo
        .availability(
            "product_desert_safari",
            "private",
            "2030-03-01",
            "2030-03-03",
        )
        .await;
    assert_eq!(status, 200, "{days}");
    let days = days.as_array().unwrap();
    let starts: Vec<&str> = days
        .iter()
        .map(|day| day["localDateTimeStart"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2030-03-01T15:00:00+04:00",
            "2030-03-01T16:00:00+04:00",
            "2030-03-02T15:00:00+04:00",
            "2030-03-02T16:00:00+04:00",
            "2030-03-03T15:00:00+04:00",
            "2030-03-03T16:00:00+04:00"
        ]
    );
    let first = &days[0];
    assert_eq!(first["id"], first["localDateTimeStart"]);
    assert_eq!(first["localDateTimeEnd"], "2030-03-01T21:00:00+04:00");
    assert_eq!(first["utcCutoffAt"], "2030-03-01T10:00:00Z");
    assert_eq!(
        (
            first["allDay"].clone(),
            first["maxUnits"].clone(),
            first["openingHours"].clone()
        ),
        (json!(false), Value::Null, json!([]))
    );
    for day in days {
        let (vacancies, capacity) = (
            day["vacancies"].as_u64().unwrap(),
            day["capacity"].as_u64().unwrap(),
        );
        assert!(vacancies <= capacity, "{day}");
        let status = match vacancies {
            0 => "SOLD_OUT",
            v if v * 2 < capacity => "LIMITED",
            _ => "AVAILABLE",
        };
        assert_eq!(
            (
                day["status"].as_str().unwrap(),
                day["available"].as_bool().unwrap()
            ),
            (status, vacancies > 0),
            "{day}"
        );
    }
    // Deterministic: the same days answer the same.
    let (_, again) = demo
        .availability(
            "product_desert_safari",
            "private",
            "2030-03-01",
            "2030-03-03",
        )
        .await;
    assert_eq!(&again, &Value::Array(days.clone()));

    let (status, month) = demo
        .availability("product_dhow_cruise", "DEFAULT", "2030-03-01", "2030-03-31")
        .await;
    assert_eq!((status, month.as_array().map(Vec::len)), (200, Some(31)));
    let single_day = json!({"productId": "product_dhow_cruise", "optionId": "DEFAULT", "localDate": "2030-03-05"});
    let (status, one) = demo
        .octo(reqwest::Method::POST, "/availability", Some(single_day))
        .await;
    assert_eq!((status, one[0].clone()), (200, month[4].clone()));

    for (product, option, from, to, code) in [
        (
            "product_dhow_cruise",
            "DEFAULT",
            "2030-03-01",
            "2030-04-01",
            "BAD_REQUEST",
        ),
        (
            "product_dhow_cruise",
            "DEFAULT",
            "2030-03-02",
            "2030-03-01",
            "BAD_REQUEST",
        ),
        (
            "product_dhow_cruise",
            "DEFAULT",
            "2030-03-01",
            "tomorrow",
            "BAD_REQUEST",
        ),
        (
            "product_gone",
            "DEFAULT",
            "2030-03-01",
            "2030-03-01",
            "INVALID_PRODUCT_ID",
        ),
        (
            "product_dhow_cruise",
            "private",
            "2030-03-01",
            "2030-03-01",
            "INVALID_OPTION_ID",
        ),
    ] {
        let (status, error) = demo.availability(product, option, from, to).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some(code)),
            "{product} {option} {from} {to}: {error}"
        );
    }
    let (status, error) = demo
        .octo(
            reqwest::Method::POST,
            "/availability",
            Some(json!({"productId": "product_dhow_cruise"})),
        )
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("BAD_REQUEST"))
    );
    let unauthenticated = demo
        .http
        .post(format!("{}/availability", demo.root))
        .json(&json!({}));
    assert_eq!(reply(unauthenticated).await.0, 401);
}

#[tokio::test]
async fn a_product_change_is_delivered_once_with_the_subscribed_headers() {
    let demo = start().await;
    let (products_url, products_receiver) = Receiver::start(0).await;
    let (availability_url, availability_receiver) = Receiver::start(0).await;
    let subscribed = demo
        .subscribe(
            &products_url,
            &["PRODUCT_UPDATE"],
            json!({"x-webhook-secret": SECRET, "X-Partner-Ref": "demo-1"}),
        )
        .await;
    demo.subscribe(
        &availability_url,
        &["AVAILABILITY_UPDATE"],
        json!({"x-webhook-secret": "other"}),
    )
    .await;

    let (status, change) = demo
        .simulate("product-change", json!({"productId": "product_balloon"}))
        .await;
    assert_eq!(status, 202, "{change}");
    assert_eq!(
        change,
        json!({"productId": "product_balloon", "title": "Sunrise Hot Air Balloon (update 1)", "notified": 1})
    );

    let received = products_receiver.wait_for(1).await;
    let delivery = &received[0];
    assert_eq!(delivery.path, "/octo/events");
    assert_eq!(
        delivery.body,
        json!({"notificationType": "PRODUCT_UPDATE", "payload": {"productId": "product_balloon"}})
    );
    assert_eq!(delivery.headers["x-webhook-secret"], SECRET);
    assert_eq!(delivery.headers["x-partner-ref"], "demo-1");
    assert_eq!(delivery.headers["content-type"], "application/json");

    // Exactly one: nothing else in flight, nothing else sent, and nothing to the other subscriber.
    let attempts = demo.settled_deliveries().await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        (
            attempts[0].subscription_id.as_str(),
            attempts[0].notification_type
        ),
        (
            subscribed["id"].as_str().unwrap(),
            NotificationType::ProductUpdate
        )
    );
    assert_eq!(
        (attempts[0].attempt, &attempts[0].outcome),
        (1, &DeliveryOutcome::Status(202))
    );
    assert_eq!(products_receiver.received().len(), 1);
    assert!(availability_receiver.received().is_empty());

    // The change is what the supplier serves now.
    let (_, product) = demo.get("/products/product_balloon").await;
    assert_eq!(product["title"], "Sunrise Hot Air Balloon (update 1)");
    let (_, products) = demo.get("/products").await;
    let mut expected = seyaha_local::demo::catalog();
    expected[3]["title"] = json!("Sunrise Hot Air Balloon (update 1)");
    assert_eq!(products, expected);

    // Without a body: the first product, and each change is a new title.
    let (status, change) = reply(
        demo.http
            .post(format!("{}/_simulate/product-change", demo.root)),
    )
    .await;
    assert_eq!(
        (
            status,
            change["productId"].as_str(),
            change["title"].as_str()
        ),
        (
            202,
            Some("product_desert_safari"),
            Some("Desert Safari Adventure (update 1)")
        )
    );
    assert_eq!(
        demo.simulate("product-change", json!({"productId": "product_balloon"}))
            .await
            .1["title"],
        "Sunrise Hot Air Balloon (update 2)"
    );
    // A title given is set as it is.
    let (_, change) = demo
        .simulate(
            "product-change",
            json!({"productId": "product_balloon", "title": "<b>Balloon</b>"}),
        )
        .await;
    assert_eq!(change["title"], "<b>Balloon</b>");
    assert_eq!(
        demo.get("/products/product_balloon").await.1["title"],
        "<b>Balloon</b>"
    );
    products_receiver.wait_for(4).await;

    // The recorded deliveries show no header value.
    let (_, recorded) = reply(demo.http.get(format!("{}/_simulate/recorded", demo.root))).await;
    assert_eq!(recorded["deliveries"][0]["status"], 202);
    assert_eq!(recorded["deliveries"][0]["url"], products_url);
    assert!(!recorded.to_string().contains(SECRET), "{recorded}");
}

#[tokio::test]
async fn an_availability_change_is_delivered_and_served_only_to_its_subscribers() {
    let demo = start().await;
    let (availability_url, availability_receiver) = Receiver::start(0).await;
    let (products_url, products_receiver) = Receiver::start(0).await;
    demo.subscribe(
        &availability_url,
        &["AVAILABILITY_UPDATE", "BOOKING_UPDATE"],
        json!({"x-webhook-secret": SECRET}),
    )
    .await;
    demo.subscribe(&products_url, &["PRODUCT_UPDATE"], json!({}))
        .await;
    let (_, before) = demo
        .availability("product_dhow_cruise", "DEFAULT", "2030-03-01", "2030-03-03")
        .await;

    let change = json!({"productId": "product_dhow_cruise", "optionId": "DEFAULT", "localDate": "2030-03-02", "vacancies": 3});
    let (status, answer) = demo.simulate("availability-change", change).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"productId": "product_dhow_cruise", "localDate": "2030-03-02", "slots": 1, "notified": 1})
    );

    let received = availability_receiver.wait_for(1).await;
    assert_eq!(
        received[0].body,
        json!({"notificationType": "AVAILABILITY_UPDATE", "payload": {"productId": "product_dhow_cruise", "localDateStart": "2030-03-02", "localDateEnd": "2030-03-02"}})
    );
    assert_eq!(received[0].headers["x-webhook-secret"], SECRET);
    let attempts = demo.settled_deliveries().await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(
        products_receiver.received().is_empty(),
        "a PRODUCT_UPDATE subscriber got an availability change"
    );

    // That day's slot has the new vacancies; the days around it are as before.
    let (_, after) = demo
        .availability("product_dhow_cruise", "DEFAULT", "2030-03-01", "2030-03-03")
        .await;
    assert_eq!(
        (
            after[1]["vacancies"].clone(),
            after[1]["status"].clone(),
            after[1]["available"].clone()
        ),
        (json!(3), json!("LIMITED"), json!(true))
    );
    assert_eq!((&after[0], &after[2]), (&before[0], &before[2]));

    // Without a number: one seat fewer. Down to 0: sold out.
    demo.simulate(
        "availability-change",
        json!({"productId": "product_dhow_cruise", "localDate": "2030-03-02"}),
    )
    .await;
    assert_eq!(
        demo.availability("product_dhow_cruise", "DEFAULT", "2030-03-02", "2030-03-02")
            .await
            .1[0]["vacancies"],
        2
    );
    demo.simulate(
        "availability-change",
        json!({"productId": "product_dhow_cruise", "localDate": "2030-03-02", "vacancies": 0}),
    )
    .await;
    let (_, sold_out) = demo
        .availability("product_dhow_cruise", "DEFAULT", "2030-03-02", "2030-03-02")
        .await;
    assert_eq!(
        (
            sold_out[0]["status"].clone(),
            sold_out[0]["available"].clone()
        ),
        (json!("SOLD_OUT"), json!(false))
    );

    // Without an option: every start time of every option of the product that day.
    let all_options =
        json!({"productId": "product_desert_safari", "localDate": "2030-03-02", "vacancies": 20});
    assert_eq!(
        demo.simulate("availability-change", all_options).await.1["slots"],
        3
    );
    let (_, private) = demo
        .availability(
            "product_desert_safari",
            "private",
            "2030-03-02",
            "2030-03-02",
        )
        .await;
    assert!(
        private
            .as_array()
            .unwrap()
            .iter()
            .all(|slot| slot["vacancies"] == 20 && slot["status"] == "AVAILABLE"),
        "{private}"
    );

    availability_receiver.wait_for(4).await;
    let attempts = demo.settled_deliveries().await;
    assert_eq!(attempts.len(), 4);
    assert!(
        attempts
            .iter()
            .all(|attempt| attempt.notification_type == NotificationType::AvailabilityUpdate)
    );
    assert!(products_receiver.received().is_empty());
}

#[tokio::test]
async fn a_failed_delivery_is_retried_and_gives_up_after_three_attempts() {
    let demo = start().await;
    let (flaky_url, flaky) = Receiver::start(1).await;
    demo.subscribe(
        &flaky_url,
        &["PRODUCT_UPDATE"],
        json!({"x-webhook-secret": SECRET}),
    )
    .await;
    // A port nobody listens on, with credentials in the URL that must not be recorded.
    let closed_port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = demo
        .subscribe(
            &format!("http://user:pa55word@127.0.0.1:{closed_port}/hook?token=t0ken"),
            &["PRODUCT_UPDATE"],
            json!({}),
        )
        .await;

    assert_eq!(
        demo.simulate("product-change", json!({})).await.1["notified"],
        2
    );
    let received = flaky.wait_for(2).await;
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(received[1].headers["x-webhook-secret"], SECRET);

    let attempts = demo.settled_deliveries().await;
    let of = |id: &str| {
        attempts
            .iter()
            .filter(|attempt| attempt.subscription_id == id)
            .collect::<Vec<_>>()
    };
    let flaky_attempts: Vec<(u32, DeliveryOutcome)> = of("sub_1")
        .iter()
        .map(|attempt| (attempt.attempt, attempt.outcome.clone()))
        .collect();
    assert_eq!(
        flaky_attempts,
        [
            (1, DeliveryOutcome::Status(500)),
            (2, DeliveryOutcome::Status(202))
        ]
    );
    assert_eq!(flaky.received().len(), 2, "no attempt after the success");

    let unreachable_attempts = of(unreachable["id"].as_str().unwrap());
    assert_eq!(
        unreachable_attempts
            .iter()
            .map(|attempt| attempt.attempt)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for attempt in unreachable_attempts {
        let DeliveryOutcome::Error(error) = &attempt.outcome else {
            panic!("{attempt:?}")
        };
        assert!(
            !error.contains("pa55word") && !error.contains("t0ken"),
            "{error}"
        );
        assert_eq!(attempt.url, format!("http://127.0.0.1:{closed_port}/hook"));
    }
}

#[tokio::test]
async fn simulate_hooks_refuse_what_they_cannot_change() {
    let demo = start().await;
    for (hook, body, code) in [
        (
            "product-change",
            json!({"productId": "product_gone"}),
            "INVALID_PRODUCT_ID",
        ),
        ("product-change", json!({"productId": 7}), "BAD_REQUEST"),
        ("product-change", json!({"title": ["x"]}), "BAD_REQUEST"),
        (
            "availability-change",
            json!({"productId": "product_gone", "localDate": "2030-03-02"}),
            "INVALID_PRODUCT_ID",
        ),
        (
            "availability-change",
            json!({"productId": "product_balloon", "optionId": "night", "localDate": "2030-03-02"}),
            "INVALID_OPTION_ID",
        ),
        (
            "availability-change",
            json!({"productId": "product_balloon", "localDate": "2 March"}),
            "BAD_REQUEST",
        ),
        (
            "availability-change",
            json!({"productId": "product_balloon"}),
            "BAD_REQUEST",
        ),
        (
            "availability-change",
            json!({"localDate": "2030-03-02"}),
            "BAD_REQUEST",
        ),
        (
            "availability-change",
            json!({"productId": "product_balloon", "localDate": "2030-03-02", "vacancies": 21}),
            "BAD_REQUEST",
        ),
        (
            "availability-change",
            json!({"productId": "product_balloon", "localDate": "2030-03-02", "vacancies": -1}),
            "BAD_REQUEST",
        ),
    ] {
        let (status, error) = demo.simulate(hook, body.clone()).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some(code)),
            "{hook} {body}: {error}"
        );
    }
    let not_json = demo
        .http
        .post(format!("{}/_simulate/availability-change", demo.root))
        .body("nope");
    assert_eq!(reply(not_json).await.0, 400);
    // Nothing changed, and with no subscription nothing was sent.
    assert_eq!(demo.get("/products").await.1, seyaha_local::demo::catalog());
    assert_eq!(
        demo.simulate("product-change", json!({})).await.1["notified"],
        0
    );
    assert!(demo.settled_deliveries().await.is_empty());
}

/// The whole loop on one machine: Seyaha syncs the demo supplier, subscribes to it (here by
/// hand, the way Seyaha does it on approval), and the supplier's own
/// notifications bring a changed title and changed vacancies into Seyaha's catalog.
#[tokio::test]
async fn seyaha_follows_the_demo_suppliers_own_notifications() {
    use seyaha::domain::Role;
    let demo = start().await;
    let api = format!("{}{}", demo.server.base_url(), seyaha::api::PREFIX);
    let partner = demo.server.mint(
        Role::Partner,
        &demo.server.demo_partner_id.to_string(),
        Duration::from_secs(600),
    );
    let admin = demo
        .server
        .mint(Role::Admin, "admin", Duration::from_secs(600));
    let registration = json!({"base_url": demo.root, "auth_type": "bearer", "auth_key": KEY, "handles_ticket_delivery": false});
    let (status, created) = reply(
        demo.http
            .post(&api)
            .bearer_auth(&partner)
            .json(&registration),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (id, secret) = (
        created["data"]["_id"].as_str().unwrap().to_owned(),
        created["data"]["webhook_secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let (status, _) = reply(
        demo.http
            .patch(format!("{api}/admin/{id}"))
            .bearer_auth(&admin)
            .json(&json!({"isApproved": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, synced) = reply(
        demo.http
            .post(format!("{api}/{id}/sync/trigger"))
            .header("x-webhook-secret", &secret),
    )
    .await;
    assert_eq!(
        (status, synced["data"]["created"].clone()),
        (200, json!(4)),
        "{synced}"
    );

    // Approval subscribed Seyaha to the demo's notifications by itself (SEYAHA_PUBLIC_URL is
    // seyaha-local's own address), with a delivery secret of its own.
    let events = format!("{api}/{id}/octo/events");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, integration) = reply(
            demo.http
                .get(format!("{api}/admin/{id}"))
                .bearer_auth(&admin),
        )
        .await;
        if integration["data"]["notifications"]["mode"] == "octo_notifications" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Seyaha never subscribed: {integration}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let subscriptions = demo.server.demo_supplier().notifications().subscriptions();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].url, events);
    // Seyaha's delivery secret is not shown to other holders of the public demo key.
    let delivery_secret = &subscriptions[0]
        .headers
        .iter()
        .find(|(name, _)| name == "x-webhook-secret")
        .unwrap()
        .1;
    let listed = demo
        .http
        .get(format!("{}/notifications/subscriptions", demo.root))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let listed = listed.text().await.unwrap();
    assert!(
        listed.contains(&events) && !listed.contains(delivery_secret.as_str()),
        "{listed}"
    );
    let catalog = |kind: &'static str| {
        let request = demo
            .http
            .get(format!("{api}/{id}/catalog?kind={kind}&limit=500"))
            .bearer_auth(&admin);
        async move { reply(request).await.1["data"].clone() }
    };

    demo.simulate(
        "product-change",
        json!({"productId": "product_dhow_cruise"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let activities = catalog("activities").await;
        let dhow = activities["activities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["internalName"] == "dhow-cruise-marina")
            .cloned();
        if dhow.is_some_and(|dhow| dhow["activity_title"] == "Marina Dhow Dinner Cruise (update 1)")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Seyaha never took the new title: {activities}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let change = json!({"productId": "product_dhow_cruise", "optionId": "DEFAULT", "localDate": "2030-03-02", "vacancies": 2});
    demo.simulate("availability-change", change).await;
    loop {
        let slots = catalog("slots").await;
        let slot = slots["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["availabilityId"] == "2030-03-02T19:30:00+04:00")
            .cloned();
        if slot
            .as_ref()
            .is_some_and(|slot| slot["vacancies"] == 2 && slot["status"] == "LIMITED")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Seyaha never pulled the new vacancies: {slots}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Seyaha took both deliveries at once (202).
    let attempts = demo.settled_deliveries().await;
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|attempt| (attempt.notification_type, attempt.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                NotificationType::ProductUpdate,
                DeliveryOutcome::Status(202)
            ),
            (
                NotificationType::AvailabilityUpdate,
                DeliveryOutcome::Status(202)
            )
        ]
    );
}
