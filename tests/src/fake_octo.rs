//! A fake OCTO supplier: a real HTTP server on a loopback port 0 with a settable catalog, an
//! auth check in both forms Seyaha sends, and the failure modes partners really produce.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The credential the fake accepts unless told otherwise.
pub const FAKE_KEY: &str = "fake-octo-key";

/// How the fake answers `GET /products`.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with the catalog.
    Normal,
    /// This HTTP status with an OCTO error body.
    Status(u16),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Hold every answer until [`FakeOcto::release`], then answer normally: a sync in flight
    /// for exactly as long as a test needs, without guessing durations.
    Held,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON that is not an array.
    NotArray,
    /// 200 with a valid JSON array of this many bytes or more.
    Oversized(usize),
    /// 200 with a generated catalog streamed product by product (chunked, no Content-Length):
    /// see [`streamed_catalog`].
    Streamed {
        products: usize,
        product_bytes: usize,
        pause: Duration,
    },
    /// This HTTP status (429, 503) with `Retry-After: seconds`.
    RetryAfter { status: u16, seconds: u64 },
    /// One of the answers a hostile (or broken) supplier gives.
    Hostile(Hostile),
}

/// What a hostile supplier answers `GET /products` with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// An array opening, then 256 MiB of spaces gzipped to about 256 KB.
    GzipBomb,
    /// An array that never ends: `["xx...x","xx...x",...` (each a rejected non-product).
    Endless,
    /// 1 GiB, announced by Content-Length.
    OneGib,
    /// 100,000 levels of nesting (the JSON parser's limit is 128).
    DeepNesting,
    /// One product holding a 10 MB string.
    TenMbString,
    /// One product holding a 3 MB string: under a body guard, over the per-product cap.
    ThreeMbString,
    /// Bytes that are not UTF-8 inside the JSON.
    InvalidUtf8,
}

impl Hostile {
    fn answer(self) -> Response {
        use axum::body::Body;
        use axum::http::header;

        let json =
            |body: Body| ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        // `count` chunks of 64 KiB.
        let chunks = |byte: u8, count: usize| {
            let chunk = axum::body::Bytes::from(vec![byte; 64 * 1024]);
            Body::from_stream(futures_util::stream::iter(
                std::iter::repeat_n(chunk, count).map(Ok::<_, std::io::Error>),
            ))
        };
        let product_with =
            |text: String| Body::from(format!(r#"[{{"id": "{text}", "internalName": "x"}}]"#));
        match self {
            Self::GzipBomb => (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                gzip_bomb(),
            )
                .into_response(),
            Self::Endless => {
                let opening = std::iter::once(axum::body::Bytes::from_static(b"["));
                let element = format!("\"{}\",", "x".repeat(1024));
                let elements = std::iter::repeat(axum::body::Bytes::from(element.repeat(64)));
                json(Body::from_stream(futures_util::stream::iter(
                    opening.chain(elements).map(Ok::<_, std::io::Error>),
                )))
            }
            Self::OneGib => {
                let mut response = json(chunks(b' ', 16 * 1024));
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, (1u64 << 30).into());
                response
            }
            Self::DeepNesting => json(Body::from("[".repeat(100_000))),
            Self::TenMbString => json(product_with("x".repeat(10 * 1024 * 1024))),
            Self::ThreeMbString => json(product_with("x".repeat(3 * 1024 * 1024))),
            Self::InvalidUtf8 => json(Body::from(
                b"[{\"id\": \"\xff\xfe\xfd\", \"internalName\": \"\xc3\x28\"}]".to_vec(),
            )),
        }
    }
}

fn gzip_bomb() -> Vec<u8> {
    use std::io::Write;
    // A streaming parser reads on through the spaces: far over any cap once inflated.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(b"[").unwrap();
    let spaces = vec![b' '; 1024 * 1024];
    for _ in 0..256 {
        encoder.write_all(&spaces).unwrap();
    }
    encoder.finish().unwrap()
}

/// What one request carried.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub octo_capabilities: Option<String>,
}

struct FakeState {
    /// Open once `release` was called (for `Behaviour::Held`).
    gate: tokio::sync::watch::Sender<bool>,
    catalog: Value,
    /// When set, served byte for byte instead of `catalog`.
    raw: Option<String>,
    key: String,
    behaviour: Behaviour,
    seen: Vec<SeenRequest>,
    /// What `POST /availability` knows: availabilities by (product, option).
    availability: std::collections::HashMap<(String, String), Vec<Value>>,
    /// The bodies of the `POST /availability` calls, in order.
    availability_calls: Vec<Value>,
    /// Answer this many `POST /availability` calls 429 with this `Retry-After` first.
    rate_limited: (usize, u64),
    /// Calls of `POST /availability` in flight now, and the most at once.
    in_flight: (usize, usize),
    /// `POST /availability` answers only once `release` was called.
    availability_held: bool,
    /// The push channels offered (`notifications/subscriptions`, `webhooks`): others are 404.
    channels: Vec<&'static str>,
    /// Subscriptions held, by channel: the create bodies with their `id`.
    subscriptions: Vec<(String, Value)>,
    /// The ids of deleted subscriptions, in order.
    deleted: Vec<String>,
    /// Subscription creates record the subscription, then answer 500 (a platform failing
    /// after it stored the secret).
    creates_fail_after_recording: bool,
    /// Subscription deletes answer only once `release` was called.
    deletes_held: bool,
}

#[derive(Clone)]
pub struct FakeOcto {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

impl FakeOcto {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            gate: tokio::sync::watch::Sender::new(false),
            catalog: sample_catalog(3),
            raw: None,
            key: FAKE_KEY.into(),
            behaviour: Behaviour::Normal,
            seen: Vec::new(),
            availability: std::collections::HashMap::new(),
            availability_calls: Vec::new(),
            rate_limited: (0, 0),
            in_flight: (0, 0),
            availability_held: false,
            channels: Vec::new(),
            subscriptions: Vec::new(),
            deleted: Vec::new(),
            creates_fail_after_recording: false,
            deletes_held: false,
        }));
        let app = Router::new()
            .route("/octo/products", get(products))
            .route("/octo/products/{id}", get(product))
            .route("/octo/availability", axum::routing::post(availability))
            .route(
                "/octo/notifications/subscriptions",
                get(list_subscriptions).post(create_subscription),
            )
            .route(
                "/octo/notifications/subscriptions/{id}",
                axum::routing::delete(delete_subscription),
            )
            .route("/octo/webhooks", get(list_webhooks).post(create_webhook))
            .route("/octo/webhooks/{id}", axum::routing::delete(delete_webhook))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OCTO supplier");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, state }
    }

    /// What a partner would register as `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/octo", self.addr)
    }

    pub fn set_catalog(&self, catalog: Value) {
        let mut state = self.state.lock().unwrap();
        state.catalog = catalog;
        state.raw = None;
    }

    /// Serves exactly these bytes as the catalog (key order, whitespace and all).
    pub fn set_raw_catalog(&self, text: String) {
        self.state.lock().unwrap().raw = Some(text);
    }

    pub fn catalog(&self) -> Value {
        self.state.lock().unwrap().catalog.clone()
    }

    /// How many `GET /products` calls arrived.
    pub fn product_calls(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|seen| seen.path == "/octo/products")
            .count()
    }

    /// The product ids of the `GET /products/{id}` calls that arrived, in order.
    pub fn single_product_calls(&self) -> Vec<String> {
        let seen = &self.state.lock().unwrap().seen;
        seen.iter()
            .filter_map(|seen| seen.path.strip_prefix("/octo/products/").map(str::to_owned))
            .collect()
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    /// From now on a subscription create records the subscription, secret and all, and then
    /// answers HTTP 500.
    pub fn fail_subscription_creates_after_recording(&self) {
        self.state.lock().unwrap().creates_fail_after_recording = true;
    }

    /// From now on subscription deletes wait for [`release`](Self::release).
    pub fn hold_subscription_deletes(&self) {
        self.state.lock().unwrap().deletes_held = true;
    }

    /// Lets held answers go (see [`Behaviour::Held`]).
    pub fn release(&self) {
        self.state.lock().unwrap().gate.send_replace(true);
    }

    pub fn set_key(&self, key: &str) {
        self.state.lock().unwrap().key = key.into();
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().seen.clone()
    }

    /// What `POST /availability` answers for one option: these availabilities (each with an
    /// `id` and a `localDateTimeStart`), filtered by the asked dates.
    pub fn set_availability(&self, product: &str, option: &str, availabilities: Vec<Value>) {
        self.state
            .lock()
            .unwrap()
            .availability
            .insert((product.into(), option.into()), availabilities);
    }

    /// The bodies of the `POST /availability` calls so far.
    pub fn availability_calls(&self) -> Vec<Value> {
        self.state.lock().unwrap().availability_calls.clone()
    }

    /// The next `count` availability calls are answered 429 with `Retry-After: seconds`.
    pub fn rate_limit_availability(&self, count: usize, seconds: u64) {
        self.state.lock().unwrap().rate_limited = (count, seconds);
    }

    /// Offers a push channel: `"notifications/subscriptions"` or `"webhooks"`.
    pub fn offer_channel(&self, channel: &'static str) {
        self.state.lock().unwrap().channels.push(channel);
    }

    /// The subscriptions held (create bodies with their `id`), on either channel.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .subscriptions
            .iter()
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Adds a subscription as if someone had created it (e.g. a stale one of Seyaha's).
    pub fn add_subscription(&self, channel: &str, body: Value) {
        self.state
            .lock()
            .unwrap()
            .subscriptions
            .push((channel.to_owned(), body));
    }

    /// Loses every subscription (as a platform that keeps them in memory does on a restart).
    pub fn forget_subscriptions(&self) {
        self.state.lock().unwrap().subscriptions.clear();
    }

    /// The ids of the subscriptions deleted so far.
    pub fn deleted_subscriptions(&self) -> Vec<String> {
        self.state.lock().unwrap().deleted.clone()
    }

    /// `POST /availability` calls wait until [`release`](Self::release) is called.
    pub fn hold_availability(&self) {
        self.state.lock().unwrap().availability_held = true;
    }

    /// `POST /availability` calls in flight now.
    pub fn availability_calls_in_flight(&self) -> usize {
        self.state.lock().unwrap().in_flight.0
    }

    /// The most `POST /availability` calls that were in flight at once.
    pub fn most_availability_calls_at_once(&self) -> usize {
        self.state.lock().unwrap().in_flight.1
    }
}

/// The answer to a request without the fake's credential, if it lacks it.
fn unauthorized(headers: &HeaderMap, key: &str) -> Option<Response> {
    let authorization = header(headers, "authorization");
    let authorized = authorization
        .as_deref()
        .is_some_and(|value| value == key || value.strip_prefix("Bearer ") == Some(key));
    if authorized {
        return None;
    }
    let status = if authorization.is_none() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    Some(
        (
            status,
            axum::Json(json!({"error": "FORBIDDEN", "errorMessage": "invalid API key"})),
        )
            .into_response(),
    )
}

/// `GET /products/{id}`: that product of the catalog, or OCTO's 404.
async fn product(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (key, catalog) = {
        let mut state = state.lock().unwrap();
        state.seen.push(SeenRequest {
            path: format!("/octo/products/{id}"),
            authorization: header(&headers, "authorization"),
            octo_capabilities: header(&headers, "octo-capabilities"),
        });
        (state.key.clone(), state.catalog.clone())
    };
    if let Some(refused) = unauthorized(&headers, &key) {
        return refused;
    }
    match catalog
        .as_array()
        .into_iter()
        .flatten()
        .find(|product| product["id"] == id.as_str())
    {
        Some(product) => axum::Json(product.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "INVALID_PRODUCT_ID", "errorMessage": "no such product"})),
        )
            .into_response(),
    }
}

/// `GET /{channel}`: the subscriptions of that channel, when it is offered.
fn channel_list(state: &Arc<Mutex<FakeState>>, channel: &str) -> Response {
    let state = state.lock().unwrap();
    if !state.channels.contains(&channel) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "NOT_FOUND"})),
        )
            .into_response();
    }
    let held: Vec<Value> = state
        .subscriptions
        .iter()
        .filter(|(c, _)| c == channel)
        .map(|(_, body)| body.clone())
        .collect();
    axum::Json(Value::Array(held)).into_response()
}

fn channel_create(state: &Arc<Mutex<FakeState>>, channel: &str, mut body: Value) -> Response {
    let mut state = state.lock().unwrap();
    if !state.channels.contains(&channel) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "NOT_FOUND"})),
        )
            .into_response();
    }
    let id = format!(
        "sub_{}",
        state.subscriptions.len() + state.deleted.len() + 1
    );
    body["id"] = json!(id);
    state.subscriptions.push((channel.to_owned(), body.clone()));
    if state.creates_fail_after_recording {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "INTERNAL_SERVER_ERROR"})),
        )
            .into_response();
    }
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn channel_delete(state: &Arc<Mutex<FakeState>>, id: &str) -> Response {
    let mut state = state.lock().unwrap();
    let before = state.subscriptions.len();
    state.subscriptions.retain(|(_, body)| body["id"] != id);
    if state.subscriptions.len() == before {
        return StatusCode::NOT_FOUND.into_response();
    }
    state.deleted.push(id.to_owned());
    StatusCode::NO_CONTENT.into_response()
}

async fn list_subscriptions(State(state): State<Arc<Mutex<FakeState>>>) -> Response {
    channel_list(&state, "notifications/subscriptions")
}

async fn create_subscription(
    State(state): State<Arc<Mutex<FakeState>>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    channel_create(&state, "notifications/subscriptions", body)
}

async fn delete_subscription(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(id): Path<String>,
) -> Response {
    held_delete(&state).await;
    channel_delete(&state, &id)
}

/// Waits for `release` when deletes are held.
async fn held_delete(state: &Arc<Mutex<FakeState>>) {
    let gate = {
        let state = state.lock().unwrap();
        state.deletes_held.then(|| state.gate.subscribe())
    };
    if let Some(mut gate) = gate {
        gate.wait_for(|open| *open).await.ok();
    }
}

async fn list_webhooks(State(state): State<Arc<Mutex<FakeState>>>) -> Response {
    channel_list(&state, "webhooks")
}

async fn create_webhook(
    State(state): State<Arc<Mutex<FakeState>>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    channel_create(&state, "webhooks", body)
}

async fn delete_webhook(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(id): Path<String>,
) -> Response {
    channel_delete(&state, &id)
}

/// `POST /availability`: the availabilities of the option whose local date is in the range.
/// Each call takes a few milliseconds, so concurrent ones overlap and are counted.
async fn availability(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let (key, limited, held) = {
        let mut state = state.lock().unwrap();
        state.availability_calls.push(body.clone());
        let limited = (state.rate_limited.0 > 0).then_some(state.rate_limited.1);
        if limited.is_some() {
            state.rate_limited.0 -= 1;
        }
        state.in_flight.0 += 1;
        state.in_flight.1 = state.in_flight.1.max(state.in_flight.0);
        (
            state.key.clone(),
            limited,
            state.availability_held.then(|| state.gate.subscribe()),
        )
    };
    if let Some(mut gate) = held {
        let _ = gate.wait_for(|open| *open).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let answer = {
        let mut state = state.lock().unwrap();
        state.in_flight.0 -= 1;
        let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
        let (from, to) = (text("localDateStart"), text("localDateEnd"));
        let known = state
            .availability
            .get(&(text("productId"), text("optionId")))
            .cloned()
            .unwrap_or_default();
        let day = |a: &Value| {
            a["localDateTimeStart"]
                .as_str()
                .unwrap_or_default()
                .get(..10)
                .unwrap_or_default()
                .to_owned()
        };
        known
            .into_iter()
            .filter(|a| day(a) >= from && day(a) <= to)
            .collect::<Vec<_>>()
    };
    if let Some(refused) = unauthorized(&headers, &key) {
        return refused;
    }
    if let Some(seconds) = limited {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", seconds.to_string())],
            axum::Json(json!({"error": "TOO_MANY_REQUESTS"})),
        )
            .into_response();
    }
    axum::Json(Value::Array(answer)).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn products(State(state): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    let (behaviour, key, catalog, raw, mut gate) = {
        let mut state = state.lock().unwrap();
        state.seen.push(SeenRequest {
            path: "/octo/products".into(),
            authorization: header(&headers, "authorization"),
            octo_capabilities: header(&headers, "octo-capabilities"),
        });
        (
            state.behaviour.clone(),
            state.key.clone(),
            state.catalog.clone(),
            state.raw.clone(),
            state.gate.subscribe(),
        )
    };
    let catalog_response = move || match &raw {
        Some(text) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            text.clone(),
        )
            .into_response(),
        None => axum::Json(catalog.clone()).into_response(),
    };
    if let Some(refused) = unauthorized(&headers, &key) {
        return refused;
    }
    match behaviour {
        Behaviour::Normal => catalog_response(),
        Behaviour::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            (
                status,
                axum::Json(
                    json!({"error": "INTERNAL_SERVER_ERROR", "errorMessage": "supplier exploded"}),
                ),
            )
                .into_response()
        }
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            catalog_response()
        }
        Behaviour::Held => {
            // An error means the fake is gone: answer anyway.
            gate.wait_for(|open| *open).await.ok();
            catalog_response()
        }
        Behaviour::Garbage => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "<html>definitely not json",
        )
            .into_response(),
        Behaviour::NotArray => axum::Json(json!({"products": []})).into_response(),
        Behaviour::Streamed {
            products,
            product_bytes,
            pause,
        } => {
            let body = streamed_catalog(products, product_bytes, pause);
            (StatusCode::OK, [("content-type", "application/json")], body).into_response()
        }
        Behaviour::RetryAfter { status, seconds } => {
            let status = StatusCode::from_u16(status).unwrap();
            (
                status,
                [("retry-after", seconds.to_string())],
                axum::Json(json!({"error": "TRY_LATER", "errorMessage": "busy"})),
            )
                .into_response()
        }
        Behaviour::Hostile(hostile) => hostile.answer(),
        Behaviour::Oversized(bytes) => {
            let filler = "x".repeat(bytes);
            let body =
                json!([{ "id": "huge", "internalName": "huge", "options": [], "padding": filler }]);
            axum::Json(body).into_response()
        }
    }
}

/// Product `i` of a streamed catalog: [`sample_catalog`]'s product (three options) padded with
/// a `description` to `product_bytes` as compact JSON (when it is shorter).
pub fn streamed_product(i: usize, product_bytes: usize) -> Vec<u8> {
    let mut product = seyaha_local::octo_samples::generated_product(i, 3);
    let bare = serde_json::to_vec(&product).unwrap().len();
    let description = product["description"].as_str().unwrap_or_default().len();
    if product_bytes > bare {
        product["description"] = json!("d".repeat(description + product_bytes - bare));
    }
    serde_json::to_vec(&product).unwrap()
}

/// A catalog of `products` generated products of about `product_bytes` each, produced and sent
/// one product per piece (so the supplier never holds the catalog), each piece after `pause`.
pub fn streamed_catalog(
    products: usize,
    product_bytes: usize,
    pause: Duration,
) -> axum::body::Body {
    let pieces = futures_util::stream::unfold(0usize, move |i| async move {
        if i > products {
            return None;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let mut piece = Vec::with_capacity(product_bytes + 2);
        piece.push(if i == 0 { b'[' } else { b',' });
        if i == products {
            // `[` then `]` for an empty catalog; otherwise just the closing bracket.
            piece = if products == 0 {
                b"[]".to_vec()
            } else {
                b"]".to_vec()
            };
        } else {
            piece.extend_from_slice(&streamed_product(i, product_bytes));
        }
        Some((
            Ok::<_, std::io::Error>(axum::body::Bytes::from(piece)),
            i + 1,
        ))
    });
    axum::body::Body::from_stream(pieces)
}

/// An OCTO products array of `count` products, each with two options (`DEFAULT`, `option-1`) of two units.
pub fn sample_catalog(count: usize) -> Value {
    seyaha_local::octo_samples::generated_catalog(count, 2)
}
