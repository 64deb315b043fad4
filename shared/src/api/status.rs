//! Read-only views by integration id: sync-log, health and the synced catalog (owner partner or admin).

use axum::extract::State;
use axum::response::Response;

use super::auth::Principal;
use super::envelope::ok;
use super::extract::IntegrationPath;
use super::{ApiError, AppState};
use crate::service::Reader;

fn reader(principal: Principal) -> Reader {
    match principal {
        Principal::Partner(id) => Reader::Partner(id),
        Principal::Admin => Reader::Admin,
    }
}

pub async fn sync_log(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.sync_log(reader(principal), id).await?))
}

pub async fn health(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.health(reader(principal), id).await?))
}

pub async fn catalog(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.catalog(reader(principal), id).await?))
}
