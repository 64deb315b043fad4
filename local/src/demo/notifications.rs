//! The demo supplier's OCTO notifications capability: subscriptions, and deliveries of
//! `PRODUCT_UPDATE` and `AVAILABILITY_UPDATE` to them when the simulate hooks change something.
//!
//! A delivery is a JSON POST to the subscription's URL, and nowhere else (no redirects, no
//! proxy), carrying the subscription's headers. A failed one is tried at most twice more.
//! Every attempt is recorded, so tests (and the quickstart's reader) can see what was sent;
//! header values never reach a record or a log line, since subscribers put secrets in them.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use seyaha::logging::Untrusted;

use super::DemoError;

/// Subscriptions the demo keeps at most (they live in memory).
pub const MAX_SUBSCRIPTIONS: usize = 100;
const MAX_HEADERS: usize = 32;
const MAX_URL_LEN: usize = 2048;
/// Delivery attempts and notifications requests kept for inspection (the oldest go first).
const MAX_RECORDS: usize = 1000;
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits before the second and the third attempt of a failed delivery.
const RETRY_BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(1)];
/// Headers that frame the request itself: the client derives them from the URL and body, so a
/// subscription may not set them.
const FRAMING_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationType {
    ProductUpdate,
    AvailabilityUpdate,
    BookingUpdate,
}

impl NotificationType {
    pub const ALL: [Self; 3] = [
        Self::ProductUpdate,
        Self::AvailabilityUpdate,
        Self::BookingUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductUpdate => "PRODUCT_UPDATE",
            Self::AvailabilityUpdate => "AVAILABILITY_UPDATE",
            Self::BookingUpdate => "BOOKING_UPDATE",
        }
    }

    /// Case-insensitive, as platforms accept them (and answer in upper case).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
    }
}

/// A subscription: where to deliver, which types, and the headers to send along.
#[derive(Clone)]
pub struct Subscription {
    /// `sub_<n>`, in creation order.
    pub id: String,
    pub url: String,
    pub notification_types: Vec<NotificationType>,
    /// As given (names and order); the values are the subscriber's secrets.
    pub headers: Vec<(String, String)>,
}

/// What a listed or read subscription shows instead of a header value.
pub const MASKED_HEADER_VALUE: &str = "********";

impl Subscription {
    /// The answer to its create: the subscription with the headers exactly as the caller just
    /// sent them (nothing it does not already hold).
    pub fn to_created_json(&self) -> Value {
        self.json_with(|value| value)
    }

    /// The subscription as the list and the read show it: header names with masked values. The
    /// demo key is public, so anyone could otherwise read every subscriber's delivery secret.
    pub fn to_json(&self) -> Value {
        self.json_with(|_| MASKED_HEADER_VALUE)
    }

    fn json_with<'a>(&'a self, shown: impl Fn(&'a str) -> &'a str) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(shown(value))))
            .collect();
        json!({
            "id": self.id,
            "url": self.url,
            "notificationTypes": self.notification_types.iter().map(|kind| kind.as_str()).collect::<Vec<_>>(),
            "headers": headers,
        })
    }

    pub fn wants(&self, kind: NotificationType) -> bool {
        self.notification_types.contains(&kind)
    }
}

/// Header names only: the values are secrets.
impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("url", &display_url(&self.url))
            .field("notification_types", &self.notification_types)
            .field(
                "header_names",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A checked `POST /notifications/subscriptions` body.
pub struct NewSubscription {
    url: String,
    notification_types: Vec<NotificationType>,
    headers: Vec<(String, String)>,
}

/// Reads and checks a create body: `url` (http or https), `notificationTypes` (non-empty; the
/// in-review draft's `notification_types` too), `headers` (an object of strings, optional).
pub fn parse_subscription(body: &Value) -> Result<NewSubscription, DemoError> {
    let bad = |message: &str| DemoError::BadRequest(message.to_owned());
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("url is required: an http or https URL"))?;
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some());
    if parsed.is_none() || url.len() > MAX_URL_LEN {
        return Err(bad("url must be an http or https URL"));
    }

    let types_message = "notificationTypes must be a non-empty array of PRODUCT_UPDATE, AVAILABILITY_UPDATE, BOOKING_UPDATE";
    let types = body
        .get("notificationTypes")
        .or_else(|| body.get("notification_types"));
    let types = types
        .and_then(Value::as_array)
        .filter(|types| !types.is_empty())
        .ok_or_else(|| bad(types_message))?;
    let mut notification_types = Vec::new();
    for kind in types {
        let kind = kind
            .as_str()
            .and_then(NotificationType::parse)
            .ok_or_else(|| bad(types_message))?;
        if !notification_types.contains(&kind) {
            notification_types.push(kind);
        }
    }

    let headers = match body.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(headers)) => parse_headers(headers)?,
        Some(_) => return Err(bad("headers must be an object of strings")),
    };
    Ok(NewSubscription {
        url: url.to_owned(),
        notification_types,
        headers,
    })
}

fn parse_headers(headers: &Map<String, Value>) -> Result<Vec<(String, String)>, DemoError> {
    if headers.len() > MAX_HEADERS {
        return Err(DemoError::BadRequest(format!(
            "headers may hold at most {MAX_HEADERS} entries"
        )));
    }
    headers
        .iter()
        .map(|(name, value)| {
            let value = value.as_str().ok_or_else(|| {
                DemoError::BadRequest("headers must be an object of strings".into())
            })?;
            let valid_name = HeaderName::from_bytes(name.as_bytes())
                .is_ok_and(|name| !FRAMING_HEADERS.contains(&name.as_str()));
            if !valid_name {
                return Err(DemoError::BadRequest(format!(
                    "headers: {name:?} is not a header a subscription may set"
                )));
            }
            // The value is not echoed: it may be a secret.
            if HeaderValue::from_str(value).is_err() {
                return Err(DemoError::BadRequest(format!(
                    "headers: the value of {name:?} is not a valid header value"
                )));
            }
            Ok((name.clone(), value.to_owned()))
        })
        .collect()
}

/// What a change tells subscribers: its type and the payload to re-fetch it with.
#[derive(Debug, Clone)]
pub struct Notification {
    pub notification_type: NotificationType,
    pub payload: Value,
}

impl Notification {
    /// The delivery body.
    pub fn body(&self) -> Value {
        json!({ "notificationType": self.notification_type.as_str(), "payload": self.payload })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered with this HTTP status.
    Status(u16),
    /// No answer: connection refused, timed out, ...
    Error(String),
}

impl DeliveryOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Status(status) if (200..300).contains(status))
    }
}

/// One attempt to deliver one notification to one subscription.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub subscription_id: String,
    /// The subscription's URL without credentials or query (see [`display_url`]).
    pub url: String,
    pub notification_type: NotificationType,
    pub body: Value,
    /// 1 for the first try, at most 3.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
}

impl DeliveryAttempt {
    pub fn to_json(&self) -> Value {
        let (status, error) = match &self.outcome {
            DeliveryOutcome::Status(status) => (json!(status), Value::Null),
            DeliveryOutcome::Error(error) => (Value::Null, json!(error)),
        };
        json!({
            "subscriptionId": self.subscription_id,
            "url": self.url,
            "notificationType": self.notification_type.as_str(),
            "body": self.body,
            "attempt": self.attempt,
            "status": status,
            "error": error,
        })
    }
}

/// A request to a notifications route, and the capabilities it asked for: the demo serves it
/// either way, but a client that forgets `Octo-Capabilities` should be visible.
#[derive(Debug, Clone)]
pub struct NotificationsRequest {
    /// `list`, `create`, `get` or `delete`.
    pub operation: &'static str,
    /// The `Octo-Capabilities` header as sent (cut to 200 characters), if any.
    pub octo_capabilities: Option<String>,
    /// Whether it named `octo/notifications` or `notifications`.
    pub asked_for_notifications: bool,
}

impl NotificationsRequest {
    pub fn to_json(&self) -> Value {
        json!({
            "operation": self.operation,
            "octoCapabilities": self.octo_capabilities,
            "askedForNotifications": self.asked_for_notifications,
        })
    }
}

/// Subscriptions, deliveries and what was recorded of them.
pub struct Notifications {
    client: reqwest::Client,
    state: Mutex<State>,
    /// Deliveries not finished yet (counting their retries); tests wait for 0 instead of sleeping.
    in_flight: AtomicUsize,
}

#[derive(Default)]
struct State {
    subscriptions: Vec<Subscription>,
    created: u64,
    deliveries: VecDeque<DeliveryAttempt>,
    requests: VecDeque<NotificationsRequest>,
}

/// Where one delivery goes, copied out of the subscription so no lock is held while sending.
struct Target {
    subscription_id: String,
    url: reqwest::Url,
    display_url: String,
    headers: HeaderMap,
}

impl Default for Notifications {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifications {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            // Only ever the subscription's own URL: no redirect elsewhere, no proxy in between.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("the HTTP client for deliveries builds");
        Self {
            client,
            state: Mutex::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a request to a notifications route and the capabilities it carried.
    pub fn record_request(&self, operation: &'static str, capabilities: Option<&str>) {
        let asked_for_notifications = capabilities.is_some_and(|capabilities| {
            capabilities.split(',').map(str::trim).any(|id| {
                id.eq_ignore_ascii_case("octo/notifications")
                    || id.eq_ignore_ascii_case("notifications")
            })
        });
        if !asked_for_notifications {
            tracing::info!(
                operation,
                octo_capabilities = %Untrusted(capabilities.unwrap_or("")),
                "demo supplier: a notifications request without the notifications capability, served anyway"
            );
        }
        let octo_capabilities =
            capabilities.map(|capabilities| capabilities.chars().take(200).collect());
        push_bounded(
            &mut self.state().requests,
            NotificationsRequest {
                operation,
                octo_capabilities,
                asked_for_notifications,
            },
        );
    }

    pub fn subscribe(&self, new: NewSubscription) -> Result<Subscription, DemoError> {
        let mut state = self.state();
        if state.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(DemoError::BadRequest(format!(
                "the demo supplier keeps at most {MAX_SUBSCRIPTIONS} subscriptions"
            )));
        }
        state.created += 1;
        let subscription = Subscription {
            id: format!("sub_{}", state.created),
            url: new.url,
            notification_types: new.notification_types,
            headers: new.headers,
        };
        state.subscriptions.push(subscription.clone());
        let types: Vec<&str> = subscription
            .notification_types
            .iter()
            .map(|kind| kind.as_str())
            .collect();
        tracing::info!(subscription_id = %subscription.id, url = %Untrusted(&display_url(&subscription.url)), ?types, "demo supplier: subscription created");
        Ok(subscription)
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state().subscriptions.clone()
    }

    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        self.state()
            .subscriptions
            .iter()
            .find(|subscription| subscription.id == id)
            .cloned()
    }

    /// Whether there was such a subscription.
    pub fn unsubscribe(&self, id: &str) -> bool {
        let mut state = self.state();
        let before = state.subscriptions.len();
        state
            .subscriptions
            .retain(|subscription| subscription.id != id);
        let removed = state.subscriptions.len() < before;
        if removed {
            tracing::info!(subscription_id = %Untrusted(id), "demo supplier: subscription deleted");
        }
        removed
    }

    /// Every delivery attempt so far (the last [`MAX_RECORDS`]), oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.state().deliveries.iter().cloned().collect()
    }

    /// Requests to the notifications routes so far (the last [`MAX_RECORDS`]), oldest first.
    pub fn requests(&self) -> Vec<NotificationsRequest> {
        self.state().requests.iter().cloned().collect()
    }

    /// Deliveries still running, retries included.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Sends `notification` to every subscription of its type, in the background; returns how
    /// many that is. The count of deliveries in flight includes them before this returns.
    pub fn notify(self: &Arc<Self>, notification: Notification) -> usize {
        let targets: Vec<Target> = self
            .state()
            .subscriptions
            .iter()
            .filter(|subscription| subscription.wants(notification.notification_type))
            .filter_map(target)
            .collect();
        let (count, body) = (targets.len(), Arc::new(notification.body()));
        for target in targets {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let delivery = Delivery {
                notifications: Arc::clone(self),
                notification_type: notification.notification_type,
                body: Arc::clone(&body),
            };
            tokio::spawn(delivery.run(target));
        }
        count
    }

    fn record_delivery(&self, attempt: DeliveryAttempt) {
        push_bounded(&mut self.state().deliveries, attempt);
    }

    fn is_subscribed(&self, id: &str) -> bool {
        self.state()
            .subscriptions
            .iter()
            .any(|subscription| subscription.id == id)
    }
}

fn push_bounded<T>(records: &mut VecDeque<T>, record: T) {
    if records.len() >= MAX_RECORDS {
        records.pop_front();
    }
    records.push_back(record);
}

/// The subscription's delivery target; `None` only if it stopped parsing, which creation rules out.
fn target(subscription: &Subscription) -> Option<Target> {
    let url = reqwest::Url::parse(&subscription.url).ok()?;
    let mut headers = HeaderMap::new();
    for (name, value) in &subscription.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value).ok()?,
        );
    }
    // Ours wins over a subscriber's: the body is JSON.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Some(Target {
        subscription_id: subscription.id.clone(),
        display_url: display_url(&subscription.url),
        url,
        headers,
    })
}

/// A URL fit for a log line or a record: no user, password, query or fragment (where
/// credentials hide).
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            // Setting these only fails for URLs without a host, which subscriptions cannot have.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// One notification on its way to one subscription. Dropping it (finished or not) takes it
/// off the count of deliveries in flight.
struct Delivery {
    notifications: Arc<Notifications>,
    notification_type: NotificationType,
    body: Arc<Value>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.notifications.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Delivery {
    async fn run(self, target: Target) {
        let waits = std::iter::once(Duration::ZERO).chain(RETRY_BACKOFF);
        for (attempt, wait) in (1u32..).zip(waits) {
            if attempt > 1 {
                tokio::time::sleep(wait).await;
                // A subscription deleted in the meantime (the subscriber left) gets no retry.
                if !self.notifications.is_subscribed(&target.subscription_id) {
                    return;
                }
            }
            let outcome = self.send(&target).await;
            let succeeded = outcome.succeeded();
            self.log(&target, attempt, &outcome);
            self.notifications.record_delivery(DeliveryAttempt {
                subscription_id: target.subscription_id.clone(),
                url: target.display_url.clone(),
                notification_type: self.notification_type,
                body: (*self.body).clone(),
                attempt,
                outcome,
            });
            if succeeded {
                return;
            }
        }
    }

    async fn send(&self, target: &Target) -> DeliveryOutcome {
        let request = self
            .notifications
            .client
            .post(target.url.clone())
            .headers(target.headers.clone())
            .body(self.body.to_string());
        match request.send().await {
            Ok(response) => DeliveryOutcome::Status(response.status().as_u16()),
            Err(error) => DeliveryOutcome::Error(describe(error)),
        }
    }

    fn log(&self, target: &Target, attempt: u32, outcome: &DeliveryOutcome) {
        let (subscription_id, url, notification_type) = (
            &target.subscription_id,
            Untrusted(&target.display_url),
            self.notification_type.as_str(),
        );
        match outcome {
            DeliveryOutcome::Status(status) if outcome.succeeded() => {
                tracing::info!(%subscription_id, %url, notification_type, attempt, status, "demo supplier: notification delivered")
            }
            DeliveryOutcome::Status(status) => {
                tracing::warn!(%subscription_id, %url, notification_type, attempt, status, "demo supplier: notification refused")
            }
            DeliveryOutcome::Error(error) => {
                tracing::warn!(%subscription_id, %url, notification_type, attempt, error = %Untrusted(error), "demo supplier: notification not delivered")
            }
        }
    }
}

/// The error and its causes, without the URL (it may carry credentials).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_read_in_any_case_and_written_in_upper_case() {
        assert_eq!(
            NotificationType::parse("product_update"),
            Some(NotificationType::ProductUpdate)
        );
        assert_eq!(
            NotificationType::parse("Availability_Update"),
            Some(NotificationType::AvailabilityUpdate)
        );
        assert_eq!(NotificationType::parse("PRODUCT"), None);
        assert_eq!(NotificationType::BookingUpdate.as_str(), "BOOKING_UPDATE");
    }

    #[test]
    fn displayed_urls_lose_their_credentials() {
        assert_eq!(
            display_url("https://user:pass@example.com/hook?token=x#f"),
            "https://example.com/hook"
        );
        assert_eq!(
            display_url("http://127.0.0.1:3000/api/v1/x/octo/events"),
            "http://127.0.0.1:3000/api/v1/x/octo/events"
        );
    }

    #[test]
    fn debug_output_names_headers_without_their_values() {
        let subscription = Subscription {
            id: "sub_1".into(),
            url: "http://127.0.0.1/hook".into(),
            notification_types: vec![NotificationType::ProductUpdate],
            headers: vec![("x-webhook-secret".into(), "s3cret-value".into())],
        };
        let debug = format!("{subscription:?}");
        assert!(
            debug.contains("x-webhook-secret") && !debug.contains("s3cret-value"),
            "{debug}"
        );
    }
}
