//! The partner's own integration: create, `/me`, test-connection, webhook secret rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::envelope::{ok, success};
use super::extract::{JsonBody, PartnerAuth};
use super::openapi::RotatedWebhookSecret;
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::{
    CreateIntegrationBody, CreatedIntegration, Deleted, ErrorResponses, Success,
    UpdateIntegrationBody,
};
use super::{ApiError, AppState, body};
#[allow(unused_imports)]
use crate::domain::Integration;
use crate::domain::Role;
#[allow(unused_imports)]
use crate::service::ConnectionTest;
use crate::service::{Created, Rotated};

/// The create response: the integration plus the webhook secret, shown this once.
pub(super) fn created_response(created: Created) -> Response {
    let mut data = serde_json::to_value(&created.integration).expect("an integration serializes");
    data["webhook_secret"] = json!(created.webhook_secret.expose());
    success(StatusCode::CREATED, data)
}

/// A rotation's response: the new webhook secret, shown this once, and until when the old one works.
pub(super) fn rotated_response(rotated: Rotated) -> Response {
    let data = RotatedWebhookSecret {
        webhook_secret: rotated.webhook_secret.expose().to_owned(),
        previous_valid_until: rotated.previous_valid_until,
    };
    success(StatusCode::CREATED, data)
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations", operation_id = "createIntegration", tag = "partner", security(("partner_jwt" = [])),
    request_body = CreateIntegrationBody,
    responses((status = 201, description = "Created; the webhook secret is in this answer only.", body = Success<CreatedIntegration>), ErrorResponses)
)]
pub async fn create(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new = body::new_integration(&body)?;
    let created = state.service.create(partner_id, new, Role::Partner).await?;
    Ok(created_response(created))
}

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/me", operation_id = "getMyIntegration", tag = "partner", security(("partner_jwt" = [])),
    responses((status = 200, description = "The partner's integration.", body = Success<Integration>), ErrorResponses)
)]
pub async fn get_mine(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.get_mine(partner_id).await?))
}

#[utoipa::path(
    patch, path = "/api/v1/partner-integrations/me", operation_id = "updateMyIntegration", tag = "partner", security(("partner_jwt" = [])),
    request_body = UpdateIntegrationBody,
    responses((status = 200, description = "The updated integration.", body = Success<Integration>), ErrorResponses)
)]
pub async fn update_mine(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let patch = body::integration_patch(&body)?;
    Ok(ok(state.service.update_mine(partner_id, patch).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/partner-integrations/me", operation_id = "deleteMyIntegration", tag = "partner", security(("partner_jwt" = [])),
    responses((status = 200, description = "Deleted with its catalog and credential.", body = Success<Deleted>), ErrorResponses)
)]
pub async fn delete_mine(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    state.service.delete_mine(partner_id).await?;
    Ok(ok(json!({ "deleted": true })))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/me/test-connection", operation_id = "testConnection", tag = "partner", security(("partner_jwt" = [])),
    responses((status = 200, description = "The diagnosis; a partner-side problem is `ok: false`.", body = Success<ConnectionTest>), ErrorResponses)
)]
pub async fn test_connection(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.test_connection(partner_id).await?))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/me/webhook-secret", operation_id = "rotateMyWebhookSecret", tag = "partner", security(("partner_jwt" = [])),
    responses((status = 201, description = "A new webhook secret, in this answer only; the previous one keeps working until `previous_valid_until`.", body = Success<RotatedWebhookSecret>), ErrorResponses)
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    Ok(rotated_response(
        state.service.rotate_my_webhook_secret(partner_id).await?,
    ))
}
