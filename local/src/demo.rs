//! A demo OCTO supplier served at `/demo/octo`, so a newcomer can register, approve, test and
//! sync a realistic catalog without any partner system, and watch it push changes by itself.
//! It is a small OCTO platform with state of its own (each seyaha-local has one):
//! - `GET /supplier`, `GET /products`, `GET /products/{id}` (404 for an unknown id);
//! - `POST /availability`, the availability check ([`availability`]);
//! - the notifications capability: subscriptions and deliveries ([`notifications`]);
//! - simulate hooks, no key needed: `POST /_simulate/product-change` (a revision, or a `title`) and
//!   `POST /_simulate/availability-change` change the catalog and notify the subscribers;
//!   `GET /_simulate/recorded` shows the deliveries and notifications requests so far.
//!
//! The OCTO routes honour the auth header in both forms Seyaha sends: `Bearer <key>` and the raw key.

pub mod availability;
pub mod notifications;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use seyaha::logging::Untrusted;

use crate::octo_samples::{option, product, unit};
use availability::{AvailabilityQuery, SlotKey, VacancyChange, VacancyOverrides};
use notifications::{Notification, NotificationType, Notifications};

/// The credential the demo supplier accepts.
pub const DEMO_OCTO_KEY: &str = "demo-octo-key";

/// The demo supplier: its catalog, the vacancies the hook set, and its notifications. Clones
/// share the state.
#[derive(Clone)]
pub struct DemoSupplier {
    catalog: Arc<Mutex<CatalogState>>,
    notifications: Arc<Notifications>,
}

struct CatalogState {
    products: Vec<Value>,
    /// The titles the catalog started with: a simulated change appends a revision to them.
    original_titles: HashMap<String, String>,
    /// Simulated changes so far, by product id.
    revisions: HashMap<String, u32>,
    vacancy_overrides: VacancyOverrides,
}

/// What the product hook changed, and how many subscriptions it notified.
#[derive(Debug, Clone)]
pub struct ProductChange {
    pub product_id: String,
    pub title: String,
    pub notified: usize,
}

/// What the availability hook changed, and how many subscriptions it notified.
#[derive(Debug, Clone)]
pub struct AvailabilityChange {
    pub product_id: String,
    pub local_date: String,
    /// Slots whose vacancies were set (every start time of the option or options that day).
    pub slots: usize,
    pub notified: usize,
}

/// A refusal in the OCTO error format (`error`, `errorMessage`, context fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoError {
    BadRequest(String),
    /// An unknown `productId` in a request body: 400.
    InvalidProductId(String),
    InvalidOptionId(String),
    /// An unknown product in the path of `GET /products/{id}`: 404, which Seyaha reads as "gone".
    ProductNotFound(String),
    SubscriptionNotFound(String),
}

impl IntoResponse for DemoError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "BAD_REQUEST", "errorMessage": message }),
            ),
            Self::InvalidProductId(id) => (StatusCode::BAD_REQUEST, unknown_product(&id)),
            Self::ProductNotFound(id) => (StatusCode::NOT_FOUND, unknown_product(&id)),
            Self::InvalidOptionId(id) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "INVALID_OPTION_ID", "errorMessage": "The optionId was not recognised", "optionId": id }),
            ),
            Self::SubscriptionNotFound(id) => (
                StatusCode::NOT_FOUND,
                json!({ "error": "NOT_FOUND", "errorMessage": "The subscription was not found", "subscriptionId": id }),
            ),
        };
        (status, axum::Json(body)).into_response()
    }
}

fn unknown_product(id: &str) -> Value {
    json!({ "error": "INVALID_PRODUCT_ID", "errorMessage": "The productId was not recognised", "productId": id })
}

impl Default for DemoSupplier {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoSupplier {
    /// A supplier with the demo [`catalog`], no subscriptions and nothing recorded.
    pub fn new() -> Self {
        let Value::Array(products) = catalog() else {
            unreachable!("the demo catalog is an array")
        };
        let original_titles = products
            .iter()
            .map(|product| {
                (
                    id_of(product).to_owned(),
                    product["title"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let state = CatalogState {
            products,
            original_titles,
            revisions: HashMap::new(),
            vacancy_overrides: VacancyOverrides::new(),
        };
        Self {
            catalog: Arc::new(Mutex::new(state)),
            notifications: Arc::new(Notifications::new()),
        }
    }

    /// The OCTO routes and the simulate hooks, to be nested at the demo's OCTO root.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/supplier", get(supplier))
            .route("/products", get(list_products))
            .route("/products/{id}", get(get_product))
            .route("/availability", post(check_availability))
            .route(
                "/notifications/subscriptions",
                get(list_subscriptions).post(create_subscription),
            )
            // The spec's create route is misspelt; a client following it to the letter lands here.
            .route("/notifications/subcriptions", post(create_subscription))
            .route(
                "/notifications/subscriptions/{id}",
                get(get_subscription).delete(delete_subscription),
            )
            .route("/_simulate/product-change", post(simulate_product_change))
            .route(
                "/_simulate/availability-change",
                post(simulate_availability_change),
            )
            .route("/_simulate/recorded", get(recorded))
            .with_state(self.clone())
    }

    fn catalog(&self) -> MutexGuard<'_, CatalogState> {
        self.catalog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscriptions, deliveries and what the notifications routes were asked.
    pub fn notifications(&self) -> &Arc<Notifications> {
        &self.notifications
    }

    /// The catalog now: an OCTO `GET /products` array.
    pub fn products(&self) -> Vec<Value> {
        self.catalog().products.clone()
    }

    pub fn product(&self, id: &str) -> Option<Value> {
        self.catalog()
            .products
            .iter()
            .find(|product| id_of(product) == id)
            .cloned()
    }

    /// The OCTO availability check: the option's availabilities for each day of the query.
    pub fn check_availability(&self, query: &AvailabilityQuery) -> Result<Vec<Value>, DemoError> {
        let catalog = self.catalog();
        let product = find(&catalog.products, &query.product_id)
            .ok_or_else(|| DemoError::InvalidProductId(query.product_id.clone()))?;
        let option = options_of(product)
            .iter()
            .find(|option| id_of(option) == query.option_id)
            .ok_or_else(|| DemoError::InvalidOptionId(query.option_id.clone()))?;
        Ok(availability::availabilities(
            product,
            option,
            query,
            &catalog.vacancy_overrides,
        ))
    }

    /// Changes a product's title (the first product's when `product_id` is `None`) to `title`,
    /// or appends a revision to its original title, and notifies the `PRODUCT_UPDATE` subscribers.
    pub fn change_product(
        &self,
        product_id: Option<&str>,
        title: Option<&str>,
    ) -> Result<ProductChange, DemoError> {
        let (product_id, title) = {
            let mut catalog = self.catalog();
            let product_id = match product_id {
                Some(id) => id.to_owned(),
                None => catalog
                    .products
                    .first()
                    .map(|product| id_of(product).to_owned())
                    .unwrap_or_default(),
            };
            let CatalogState {
                products,
                original_titles,
                revisions,
                ..
            } = &mut *catalog;
            let product = products
                .iter_mut()
                .find(|product| id_of(product) == product_id)
                .ok_or_else(|| DemoError::InvalidProductId(product_id.clone()))?;
            let revision = revisions.entry(product_id.clone()).or_default();
            *revision += 1;
            let title = match title {
                Some(title) => title.to_owned(),
                None => format!(
                    "{} (update {revision})",
                    original_titles
                        .get(&product_id)
                        .map(String::as_str)
                        .unwrap_or_default()
                ),
            };
            product["title"] = Value::from(title.as_str());
            (product_id, title)
        };
        let notified = self.notifications.notify(Notification {
            notification_type: NotificationType::ProductUpdate,
            payload: json!({ "productId": product_id }),
        });
        tracing::info!(product_id = %Untrusted(&product_id), notified, "demo supplier: product changed");
        Ok(ProductChange {
            product_id,
            title,
            notified,
        })
    }

    /// Sets the vacancies of one day's slots of a product's option (or of all its options) and
    /// notifies the `AVAILABILITY_UPDATE` subscribers of that day.
    pub fn change_vacancies(
        &self,
        change: &VacancyChange,
    ) -> Result<AvailabilityChange, DemoError> {
        let slots = {
            let mut catalog = self.catalog();
            let CatalogState {
                products,
                vacancy_overrides,
                ..
            } = &mut *catalog;
            let product = find(products, &change.product_id)
                .ok_or_else(|| DemoError::InvalidProductId(change.product_id.clone()))?;
            let options: Vec<&Value> = match &change.option_id {
                Some(option_id) => {
                    let option = options_of(product)
                        .iter()
                        .find(|option| id_of(option) == option_id);
                    vec![option.ok_or_else(|| DemoError::InvalidOptionId(option_id.clone()))?]
                }
                None => options_of(product).iter().collect(),
            };
            let mut slots = 0;
            for option in options {
                for start in availability::start_times(option) {
                    let key = SlotKey {
                        product_id: change.product_id.clone(),
                        option_id: id_of(option).to_owned(),
                        local_date_time_start: availability::slot_start(change.date, start),
                    };
                    let now = availability::vacancies(vacancy_overrides, &key, change.date, start);
                    // No number given: one seat fewer, as if someone had booked.
                    vacancy_overrides
                        .insert(key, change.vacancies.unwrap_or(now.saturating_sub(1)));
                    slots += 1;
                }
            }
            slots
        };
        let local_date = availability::format_date(change.date);
        let payload = json!({ "productId": change.product_id, "localDateStart": local_date, "localDateEnd": local_date });
        let notified = self.notifications.notify(Notification {
            notification_type: NotificationType::AvailabilityUpdate,
            payload,
        });
        tracing::info!(product_id = %Untrusted(&change.product_id), %local_date, slots, notified, "demo supplier: availability changed");
        Ok(AvailabilityChange {
            product_id: change.product_id.clone(),
            local_date,
            slots,
            notified,
        })
    }
}

fn id_of(value: &Value) -> &str {
    value["id"].as_str().unwrap_or_default()
}

fn find<'a>(products: &'a [Value], id: &str) -> Option<&'a Value> {
    products.iter().find(|product| id_of(product) == id)
}

fn options_of(product: &Value) -> &[Value] {
    product["options"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Proof that a request carries the demo key; without it, the OCTO 401 or 403 answers instead.
struct DemoKey;

impl<S: Send + Sync> FromRequestParts<S> for DemoKey {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        refusal(&parts.headers).map_or(Ok(DemoKey), Err)
    }
}

fn octo_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "errorMessage": message })),
    )
        .into_response()
}

/// The OCTO error answer for a request without the demo key, or `None` when it may pass.
fn refusal(headers: &HeaderMap) -> Option<Response> {
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok());
    match presented {
        None => Some(octo_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "No API key was sent",
        )),
        Some(value)
            if value == DEMO_OCTO_KEY || value.strip_prefix("Bearer ") == Some(DEMO_OCTO_KEY) =>
        {
            None
        }
        Some(_) => Some(octo_error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "The API key is invalid",
        )),
    }
}

/// A JSON request body; with `optional`, an empty body reads as `{}`.
fn json_body(body: &[u8], optional: bool) -> Result<Value, DemoError> {
    if optional && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|_| DemoError::BadRequest("the body must be JSON".into()))
}

async fn supplier(_: DemoKey) -> Response {
    axum::Json(json!({
        "id": "demo-supplier",
        "name": "Demo Desert Tours",
        "endpoint": "/demo/octo",
        "contact": { "website": null, "email": "ops@demo.invalid", "telephone": null, "address": null }
    }))
    .into_response()
}

async fn list_products(_: DemoKey, State(demo): State<DemoSupplier>) -> Response {
    axum::Json(demo.products()).into_response()
}

async fn get_product(
    _: DemoKey,
    State(demo): State<DemoSupplier>,
    Path(id): Path<String>,
) -> Result<Response, DemoError> {
    let product = demo.product(&id).ok_or(DemoError::ProductNotFound(id))?;
    Ok(axum::Json(product).into_response())
}

async fn check_availability(
    _: DemoKey,
    State(demo): State<DemoSupplier>,
    body: Bytes,
) -> Result<Response, DemoError> {
    let query = availability::parse_query(&json_body(&body, false)?)?;
    Ok(axum::Json(demo.check_availability(&query)?).into_response())
}

/// The `Octo-Capabilities` a notifications request carried, recorded (never required).
fn record_notifications_request(demo: &DemoSupplier, operation: &'static str, headers: &HeaderMap) {
    let capabilities = headers
        .get("octo-capabilities")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    demo.notifications
        .record_request(operation, capabilities.as_deref());
}

async fn list_subscriptions(
    _: DemoKey,
    State(demo): State<DemoSupplier>,
    headers: HeaderMap,
) -> Response {
    record_notifications_request(&demo, "list", &headers);
    let subscriptions: Vec<Value> = demo
        .notifications
        .subscriptions()
        .iter()
        .map(|subscription| subscription.to_json())
        .collect();
    axum::Json(subscriptions).into_response()
}

async fn create_subscription(
    _: DemoKey,
    State(demo): State<DemoSupplier>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DemoError> {
    record_notifications_request(&demo, "create", &headers);
    let new = notifications::parse_subscription(&json_body(&body, false)?)?;
    let subscription = demo.notifications.subscribe(new)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(subscription.to_created_json()),
    )
        .into_response())
}

async fn get_subscription(
    _: DemoKey,
    State(demo): State<DemoSupplier>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, DemoError> {
    record_notifications_request(&demo, "get", &headers);
    let subscription = demo
        .notifications
        .subscription(&id)
        .ok_or(DemoError::SubscriptionNotFound(id))?;
    Ok(axum::Json(subscription.to_json()).into_response())
}

async fn delete_subscription(
    _: DemoKey,
    State(demo): State<DemoSupplier>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, DemoError> {
    record_notifications_request(&demo, "delete", &headers);
    if !demo.notifications.unsubscribe(&id) {
        return Err(DemoError::SubscriptionNotFound(id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn simulate_product_change(
    State(demo): State<DemoSupplier>,
    body: Bytes,
) -> Result<Response, DemoError> {
    let body = json_body(&body, true)?;
    let optional_string = |field: &str| match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .map(Some)
            .ok_or_else(|| DemoError::BadRequest(format!("{field} must be a string"))),
    };
    let change = demo.change_product(optional_string("productId")?, optional_string("title")?)?;
    let answer = json!({ "productId": change.product_id, "title": change.title, "notified": change.notified });
    Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response())
}

async fn simulate_availability_change(
    State(demo): State<DemoSupplier>,
    body: Bytes,
) -> Result<Response, DemoError> {
    let change = demo.change_vacancies(&availability::parse_vacancy_change(&json_body(
        &body, false,
    )?)?)?;
    let answer = json!({ "productId": change.product_id, "localDate": change.local_date, "slots": change.slots, "notified": change.notified });
    Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response())
}

/// What the demo recorded: delivery attempts (no header values) and notifications requests.
async fn recorded(State(demo): State<DemoSupplier>) -> Response {
    let notifications = &demo.notifications;
    axum::Json(json!({
        "deliveriesInFlight": notifications.in_flight(),
        "deliveries": notifications.deliveries().iter().map(|attempt| attempt.to_json()).collect::<Vec<_>>(),
        "notificationsRequests": notifications.requests().iter().map(|request| request.to_json()).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// The demo catalog: an OCTO `GET /products` array with content and pricing.
pub fn catalog() -> Value {
    json!([
        product(
            "product_desert_safari",
            "desert-safari-standard",
            "Desert Safari Adventure",
            "Dune bashing, camel ride and a barbecue dinner under the stars.",
            360,
            vec![
                option(
                    "DEFAULT",
                    "Shared 4x4",
                    &["15:00"],
                    vec![
                        unit("adult", "ADULT", "Adult", 25_000, 12, 99),
                        unit("child", "CHILD", "Child", 17_500, 3, 11),
                    ]
                ),
                option(
                    "private",
                    "Private 4x4",
                    &["15:00", "16:00"],
                    vec![
                        unit("adult", "ADULT", "Adult", 60_000, 12, 99),
                        unit("child", "CHILD", "Child", 45_000, 3, 11),
                    ]
                ),
            ],
        ),
        product(
            "product_dhow_cruise",
            "dhow-cruise-marina",
            "Marina Dhow Dinner Cruise",
            "Two hours on a traditional dhow with an international buffet.",
            120,
            vec![option(
                "DEFAULT",
                "Upper deck",
                &["19:30"],
                vec![
                    unit("adult", "ADULT", "Adult", 19_900, 12, 99),
                    unit("child", "CHILD", "Child", 12_900, 4, 11),
                    unit("infant", "INFANT", "Infant", 0, 0, 3),
                ]
            )],
        ),
        product(
            "product_old_town_walk",
            "old-town-walking-tour",
            "Old Town Heritage Walk",
            "A guided walk through Al Fahidi, the abra crossing and the spice souk.",
            180,
            vec![
                option(
                    "DEFAULT",
                    "Morning walk",
                    &["09:00"],
                    vec![
                        unit("adult", "ADULT", "Adult", 9_500, 12, 99),
                        unit("senior", "SENIOR", "Senior", 7_500, 65, 120)
                    ]
                ),
                option(
                    "evening",
                    "Evening walk",
                    &["17:30"],
                    vec![unit("adult", "ADULT", "Adult", 11_000, 12, 99)]
                ),
            ],
        ),
        product(
            "product_balloon",
            "hot-air-balloon-sunrise",
            "Sunrise Hot Air Balloon",
            "An hour over the desert at sunrise, with falconry and breakfast.",
            240,
            vec![option(
                "DEFAULT",
                "Standard basket",
                &["05:00"],
                vec![
                    unit("adult", "ADULT", "Adult", 119_500, 12, 99),
                    unit("child", "CHILD", "Child", 109_500, 5, 11)
                ]
            )],
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_an_octo_products_array() {
        let catalog = catalog();
        let products = catalog.as_array().unwrap();
        assert!(products.len() >= 3);
        for product in products {
            for field in ["id", "internalName", "title", "options", "availabilityType"] {
                assert!(!product[field].is_null(), "{field} missing");
            }
            for option in product["options"].as_array().unwrap() {
                assert!(option["id"].is_string());
                for unit in option["units"].as_array().unwrap() {
                    assert!(unit["type"].is_string());
                    assert!(unit["pricingFrom"][0]["retail"].is_i64());
                }
            }
        }
    }
}
