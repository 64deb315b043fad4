//! Read-only views by integration id: sync-log, health and the synced catalog (owner partner or admin).

use axum::extract::State;
use axum::response::Response;

use super::envelope::ok;
use super::extract::IntegrationPath;
use super::{ApiError, AppState};
use crate::domain::Principal;

pub async fn sync_log(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.sync_log(principal, id).await?))
}

pub async fn health(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.health(principal, id).await?))
}

pub async fn catalog(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.catalog(principal, id).await?))
}
