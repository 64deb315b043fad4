//! Partner webhooks authenticated by `x-webhook-secret`, checked in the documented order:
//! secret and integration (401), then approval and activity (403), then the body (400).

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use super::envelope::{ok, success};
use super::events::parse_event;
use super::extract::{IntegrationPath, JsonBody, WebhookSecretHeader};
use super::notify::parse_notify;
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::{ErrorResponses, NotifyBody, NotifyResult, OctoEventBody, Success};
use super::{ApiError, AppState};
#[allow(unused_imports)]
use crate::domain::IntegrationId;
use crate::domain::{EventAction, Rejection, SyncCounts};
use crate::sync::SyncResult;

/// The events route's answer: accepted, and what it leads to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventAccepted {
    accepted: bool,
    action: EventAction,
}

/// The trigger's answer: the counts of a finished sync, or `queued` when it runs later (then
/// without the other counts).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TriggerResponse {
    synced: u64,
    skipped: bool,
    queued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unchanged: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deactivated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<u64>,
    /// At most 50; `rejected` is the full count.
    #[serde(skip_serializing_if = "Option::is_none")]
    rejections: Option<Vec<Rejection>>,
}

impl TriggerResponse {
    fn done(counts: SyncCounts, skipped: bool, rejections: Vec<Rejection>) -> Self {
        let SyncCounts { synced, created, updated, unchanged, deactivated, rejected } = counts;
        Self {
            synced,
            skipped,
            queued: false,
            created: Some(created),
            updated: Some(updated),
            unchanged: Some(unchanged),
            deactivated: Some(deactivated),
            rejected: Some(rejected),
            rejections: Some(rejections),
        }
    }

    fn queued() -> Self {
        Self {
            synced: 0,
            skipped: false,
            queued: true,
            created: None,
            updated: None,
            unchanged: None,
            deactivated: None,
            rejected: None,
            rejections: None,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/{id}/sync/trigger", operation_id = "syncTrigger", tag = "webhooks", security(("webhook_secret" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses(
        (status = 200, description = "Synced (or skipped: the catalog is unchanged).", body = Success<TriggerResponse>),
        (status = 202, description = "Queued: a sync is running, or it ran out of time and continues in the background.", body = Success<TriggerResponse>),
        ErrorResponses,
    )
)]
pub async fn sync_trigger(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
) -> Result<Response, ApiError> {
    let webhook = state.service.authenticate_webhook(id, secret.as_deref()).await?;
    match state.service.trigger_sync(webhook).await? {
        SyncResult::Done { counts, skipped, rejections } => Ok(ok(TriggerResponse::done(counts, skipped, rejections))),
        SyncResult::Queued => Ok(success(StatusCode::ACCEPTED, TriggerResponse::queued())),
        SyncResult::Failed { message } => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("Partner endpoint failed: {message}"))
            .with_error(format!("base_url: {message}"))),
        SyncResult::NotNeeded => Err(ApiError::new(StatusCode::FORBIDDEN, "Integration is no longer approved and active")),
    }
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/{id}/availability/notify", operation_id = "availabilityNotify", tag = "webhooks", security(("webhook_secret" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = NotifyBody,
    responses((status = 200, description = "Stored, or a background sync was requested for an unknown product.", body = Success<NotifyResult>), ErrorResponses)
)]
pub async fn availability_notify(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
    request: Request,
) -> Result<Response, ApiError> {
    let (webhook, body) = authenticated_body(&state, id, secret, request).await?;
    let update = parse_notify(&body).map_err(ApiError::validation)?;
    let updated = state.service.notify(webhook, update).await?;
    Ok(ok(json!({ "updated": updated })))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/{id}/octo/events", operation_id = "octoEvents", tag = "webhooks", security(("webhook_secret" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = OctoEventBody,
    responses(
        (status = 202, description = "Accepted; `action` says what it leads to (unknown types and events are `ignored`).", body = Success<EventAccepted>),
        ErrorResponses,
    )
)]
pub async fn octo_events(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
    request: Request,
) -> Result<Response, ApiError> {
    let (webhook, body) = authenticated_body(&state, id, secret, request).await?;
    let event = parse_event(&body).map_err(ApiError::validation)?;
    let action = state.service.octo_event(webhook, event).await?;
    Ok(success(StatusCode::ACCEPTED, EventAccepted { accepted: true, action }))
}

/// The webhook's integration, authenticated (401, then 403) before its body is read (400).
async fn authenticated_body(
    state: &AppState,
    id: IntegrationId,
    secret: Option<String>,
    request: Request,
) -> Result<(crate::service::AuthenticatedWebhook, serde_json::Value), ApiError> {
    let webhook = state.service.authenticate_webhook(id, secret.as_deref()).await?;
    let JsonBody(body) = JsonBody::from_request(request, state).await?;
    Ok((webhook, body))
}
