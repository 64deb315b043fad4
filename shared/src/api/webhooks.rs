//! Partner webhooks authenticated by `x-webhook-secret`, checked in the documented order:
//! secret and integration (401), then approval and activity (403), then the body (400).

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use super::envelope::{ok, success};
use super::extract::{IntegrationPath, JsonBody, WebhookSecretHeader};
use super::notify::parse_notify;
use super::{ApiError, AppState};
use crate::domain::{Rejection, SyncCounts};
use crate::sync::SyncResult;

/// The trigger's answer: the counts of a finished sync, or `queued` when it runs later.
#[derive(Serialize)]
struct TriggerResponse {
    synced: u64,
    skipped: bool,
    queued: bool,
    #[serde(flatten)]
    details: Option<TriggerDetails>,
}

#[derive(Serialize)]
struct TriggerDetails {
    created: u64,
    updated: u64,
    unchanged: u64,
    deactivated: u64,
    rejected: u64,
    rejections: Vec<Rejection>,
}

impl TriggerResponse {
    fn done(counts: SyncCounts, skipped: bool, rejections: Vec<Rejection>) -> Self {
        let SyncCounts { synced, created, updated, unchanged, deactivated, rejected } = counts;
        let details = TriggerDetails { created, updated, unchanged, deactivated, rejected, rejections };
        Self { synced, skipped, queued: false, details: Some(details) }
    }

    fn queued() -> Self {
        Self { synced: 0, skipped: false, queued: true, details: None }
    }
}

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

pub async fn availability_notify(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
    request: Request,
) -> Result<Response, ApiError> {
    let webhook = state.service.authenticate_webhook(id, secret.as_deref()).await?;
    let JsonBody(body) = JsonBody::from_request(request, &state).await?;
    let update = parse_notify(&body).map_err(ApiError::validation)?;
    let updated = state.service.notify(webhook, update).await?;
    Ok(ok(json!({ "updated": updated })))
}
