//! Partner webhooks authenticated by `x-webhook-secret`. Authentication follows the documented
//! order (unknown integration or wrong secret 401, unapproved or inactive 403); the sync engine
//! that does the work behind them is not deployed yet, so they answer 501 rather than pretend.

use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{IntegrationPath, WebhookSecretHeader};
use super::{ApiError, AppState};

pub async fn sync_trigger(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
) -> Result<ApiError, ApiError> {
    state.service.authenticate_webhook(id, secret.as_deref()).await?;
    Ok(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Sync trigger is not available yet: the sync engine is not deployed",
    ))
}

pub async fn availability_notify(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
) -> Result<ApiError, ApiError> {
    state.service.authenticate_webhook(id, secret.as_deref()).await?;
    Ok(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Availability notify is not available yet: the sync engine is not deployed",
    ))
}
