//! The partner's own integration: create, `/me`, test-connection.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::envelope::{ok, success};
use super::extract::{JsonBody, PartnerAuth};
use super::{ApiError, AppState, body};
use crate::domain::Role;
use crate::service::Created;

/// The create response: the integration plus the webhook secret, shown this once.
pub(super) fn created_response(created: Created) -> Response {
    let mut data = serde_json::to_value(&created.integration).expect("an integration serializes");
    data["webhook_secret"] = json!(created.webhook_secret.expose());
    success(StatusCode::CREATED, data)
}

pub async fn create(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new = body::new_integration(&body)?;
    let created = state.service.create(partner_id, new, Role::Partner).await?;
    Ok(created_response(created))
}

pub async fn get_mine(State(state): State<AppState>, PartnerAuth(partner_id): PartnerAuth) -> Result<Response, ApiError> {
    Ok(ok(state.service.get_mine(partner_id).await?))
}

pub async fn update_mine(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let patch = body::integration_patch(&body)?;
    Ok(ok(state.service.update_mine(partner_id, patch).await?))
}

pub async fn delete_mine(State(state): State<AppState>, PartnerAuth(partner_id): PartnerAuth) -> Result<Response, ApiError> {
    state.service.delete_mine(partner_id).await?;
    Ok(ok(json!({ "deleted": true })))
}

pub async fn test_connection(State(state): State<AppState>, PartnerAuth(partner_id): PartnerAuth) -> Result<Response, ApiError> {
    Ok(ok(state.service.test_connection(partner_id).await?))
}
