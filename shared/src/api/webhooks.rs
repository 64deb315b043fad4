//! Partner webhooks authenticated by `x-webhook-secret`, checked in the documented order:
//! secret and integration (401), then approval and activity (403), then the body (400).

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::envelope::{ok, success};
use super::extract::{IntegrationPath, JsonBody, WebhookSecretHeader};
use super::{ApiError, AppState};
use crate::notify::parse_notify;
use crate::sync::SyncResult;

pub async fn sync_trigger(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
) -> Result<Response, ApiError> {
    let record = state.service.authenticate_webhook(id, secret.as_deref()).await?;
    match state.service.engine().trigger(record).await? {
        SyncResult::Done { counts, skipped, rejections } => Ok(ok(json!({
            "synced": counts.synced,
            "skipped": skipped,
            "queued": false,
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "deactivated": counts.deactivated,
            "rejected": counts.rejected,
            "rejections": rejections,
        }))),
        SyncResult::Queued => Ok(success(StatusCode::ACCEPTED, json!({ "synced": 0, "skipped": false, "queued": true }))),
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
    let record = state.service.authenticate_webhook(id, secret.as_deref()).await?;
    let JsonBody(body) = JsonBody::from_request(request, &state).await?;
    let update = parse_notify(&body).map_err(ApiError::validation)?;
    let updated = state.service.notify(record, update).await?;
    Ok(ok(json!({ "updated": updated })))
}
