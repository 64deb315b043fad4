//! The partner's push channels, for Seyaha to subscribe to: the OCTO notifications
//! capability (`/notifications/subscriptions`) and OCTO Cloud / Ventrata webhooks
//! (`/webhooks`). Same guard, credential, timeouts and size cap as every partner call.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::client::transport;
use super::client::{OctoClient, OctoCredentials, OctoError};
use crate::domain::BaseUrl;

/// The header a subscription's deliveries carry the delivery secret in.
pub const DELIVERY_SECRET_HEADER: &str = "x-webhook-secret";

pub use crate::domain::Channel;

/// How each channel is called (the channel itself is a domain value: it is stored with the
/// subscriptions made on it).
impl Channel {
    fn path(self) -> &'static str {
        match self {
            Self::Notifications => "notifications/subscriptions",
            Self::Webhooks => "webhooks",
        }
    }

    fn capability(self) -> &'static str {
        match self {
            Self::Notifications => "octo/notifications",
            Self::Webhooks => "octo/webhooks",
        }
    }

    fn calls(self) -> [&'static str; 3] {
        match self {
            Self::Notifications => [
                "GET /notifications/subscriptions",
                "POST /notifications/subscriptions",
                "DELETE /notifications/subscriptions/{id}",
            ],
            Self::Webhooks => ["GET /webhooks", "POST /webhooks", "DELETE /webhooks/{id}"],
        }
    }

    /// What Seyaha subscribes to: the notifications it acts on, or the one webhook event.
    fn subscription(self, url: &str, secret: &str) -> Value {
        let headers = json!({ DELIVERY_SECRET_HEADER: secret });
        match self {
            Self::Notifications => {
                json!({"url": url, "notificationTypes": ["PRODUCT_UPDATE", "AVAILABILITY_UPDATE"], "headers": headers})
            }
            Self::Webhooks => {
                json!({"url": url, "event": "availability_update", "retryOnError": true, "headers": headers})
            }
        }
    }
}

/// A subscription the partner holds, as its list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSubscription {
    pub id: String,
    pub url: String,
    /// The delivery secret it sends, when the list echoes the headers.
    pub secret: Option<String>,
}

impl OctoClient {
    /// The partner's subscriptions on `channel`, or `None` when it does not offer the channel
    /// (an answer other than 2xx that is not an authentication refusal, or not a list).
    pub async fn list_subscriptions(
        &self,
        channel: Channel,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
    ) -> Result<Option<Vec<RemoteSubscription>>, OctoError> {
        let [list, _, _] = channel.calls();
        let request = self
            .http()
            .get(base_url.endpoint(channel.path()))
            .header("Octo-Capabilities", channel.capability());
        let body = match self.call(list, base_url, credentials, request).await {
            Ok(body) => body,
            Err(OctoError::Status { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
            return Ok(None);
        };
        Ok(Some(items.iter().filter_map(remote_subscription).collect()))
    }

    /// Creates a subscription delivering to `url` with `secret` in its headers; its id.
    pub async fn create_subscription(
        &self,
        channel: Channel,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        url: &str,
        secret: &str,
    ) -> Result<String, OctoError> {
        let [_, create, _] = channel.calls();
        let request = self
            .http()
            .post(base_url.endpoint(channel.path()))
            .header("Octo-Capabilities", channel.capability())
            .header(CONTENT_TYPE, "application/json")
            .body(channel.subscription(url, secret).to_string());
        let body = self.call(create, base_url, credentials, request).await?;
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|answer| answer.get("id").and_then(id_text))
            .ok_or_else(|| transport(create, "the answer has no subscription id"))
    }

    /// Deletes a subscription; one the partner no longer has counts as deleted.
    pub async fn delete_subscription(
        &self,
        channel: Channel,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        id: &str,
    ) -> Result<(), OctoError> {
        let [_, _, delete] = channel.calls();
        let request = self
            .http()
            .delete(base_url.endpoint_item(channel.path(), id))
            .header("Octo-Capabilities", channel.capability());
        match self.call(delete, base_url, credentials, request).await {
            Ok(_) | Err(OctoError::Status { status: 404, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(id) if !id.is_empty() && id.len() <= 256 => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

fn remote_subscription(item: &Value) -> Option<RemoteSubscription> {
    let id = item.get("id").and_then(id_text)?;
    let url = item.get("url")?.as_str()?.to_owned();
    let secret = item
        .get("headers")
        .and_then(|headers| headers.get(DELIVERY_SECRET_HEADER))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(RemoteSubscription { id, url, secret })
}
