//! The partner's own integration: create, `/me`, test-connection, webhook secret rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::envelope::{ok, success};
use super::extract::{Body, PartnerAuth};
use super::field::{Field, Problems, RequestBody};
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::Success;
use super::{ApiError, AppState};
use crate::domain::{
    AuthKey, AuthType, BaseUrl, Integration, IntegrationPatch, NewIntegration, Role, Timestamp,
};
#[allow(unused_imports)]
use crate::service::ConnectionTest;
use crate::service::{Created, Rotated};

/// `POST /partner-integrations`: the partner's OCTO endpoint and how to call it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationRequest {
    #[schema(required = true)]
    #[serde(default)]
    pub base_url: Field<BaseUrl>,
    #[schema(required = true)]
    #[serde(default)]
    pub auth_type: Field<AuthType>,
    #[schema(required = true)]
    #[serde(default)]
    pub auth_key: Field<AuthKey>,
    #[schema(required = true)]
    #[serde(default)]
    pub handles_ticket_delivery: Field<bool>,
}

impl RequestBody for CreateIntegrationRequest {
    type Valid = NewIntegration;
    const CLOSED: bool = true;

    fn validate(self, problems: &mut Problems) -> Option<NewIntegration> {
        let base_url = self.base_url.required("base_url", problems);
        let auth_type = self.auth_type.required("auth_type", problems);
        let auth_key = self.auth_key.required("auth_key", problems);
        let handles_ticket_delivery = self
            .handles_ticket_delivery
            .required("handles_ticket_delivery", problems);
        Some(NewIntegration {
            base_url: base_url?,
            auth_type: auth_type?,
            auth_key: auth_key?,
            handles_ticket_delivery: handles_ticket_delivery?,
        })
    }
}

/// `PATCH /me`: at least one of the fields. A new `base_url` needs approval again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateIntegrationRequest {
    #[serde(default)]
    pub base_url: Field<BaseUrl>,
    #[serde(default)]
    pub auth_type: Field<AuthType>,
    #[serde(default)]
    pub auth_key: Field<AuthKey>,
    #[serde(default)]
    pub handles_ticket_delivery: Field<bool>,
}

impl RequestBody for UpdateIntegrationRequest {
    type Valid = IntegrationPatch;
    const CLOSED: bool = true;

    fn validate(self, problems: &mut Problems) -> Option<IntegrationPatch> {
        if ![
            self.base_url.is_present(),
            self.auth_type.is_present(),
            self.auth_key.is_present(),
            self.handles_ticket_delivery.is_present(),
        ]
        .contains(&true)
        {
            problems.add::<()>(
                "body",
                "must contain at least one of base_url, auth_type, auth_key, handles_ticket_delivery",
            );
        }
        Some(IntegrationPatch {
            base_url: self.base_url.optional("base_url", problems),
            auth_type: self.auth_type.optional("auth_type", problems),
            auth_key: self.auth_key.optional("auth_key", problems),
            handles_ticket_delivery: self
                .handles_ticket_delivery
                .optional("handles_ticket_delivery", problems),
        })
    }
}

/// The integration document, and the webhook secret: returned by create only, once.
#[derive(Serialize, ToSchema)]
pub struct CreatedIntegration {
    #[serde(flatten)]
    pub integration: Integration,
    /// 64 lowercase hex characters; send it as `x-webhook-secret`. Never shown again.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub webhook_secret: String,
}

impl From<Created> for CreatedIntegration {
    fn from(created: Created) -> Self {
        Self {
            integration: created.integration,
            webhook_secret: created.webhook_secret.expose().to_owned(),
        }
    }
}

/// A rotation's answer: the new webhook secret, shown this once, and until when the secret it
/// replaced still works beside it.
#[derive(Serialize, ToSchema)]
pub struct RotatedWebhookSecret {
    /// 64 lowercase hex characters; send it as `x-webhook-secret` from now on. Never shown again.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub webhook_secret: String,
    /// The replaced secret is accepted until this instant (`SEYAHA_SECRET_OVERLAP_HOURS` after
    /// the rotation), then refused. Any secret older than that one stops working at once.
    pub previous_valid_until: Timestamp,
}

impl From<Rotated> for RotatedWebhookSecret {
    fn from(rotated: Rotated) -> Self {
        Self {
            webhook_secret: rotated.webhook_secret.expose().to_owned(),
            previous_valid_until: rotated.previous_valid_until,
        }
    }
}

/// A delete's answer.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    /// Always `true`: the integration, its catalog and its credential are gone.
    pub deleted: bool,
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations", operation_id = "createIntegration",
    tag = "partner", security(("partner_jwt" = [])),
    request_body = CreateIntegrationRequest,
    responses(
        (
            status = 201,
            description = "Created; the webhook secret is in this answer only.",
            body = Success<CreatedIntegration>,
        ),
        ApiError,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
    Body(new): Body<CreateIntegrationRequest>,
) -> Result<Response, ApiError> {
    let created = state.service.create(partner_id, new, Role::Partner).await?;
    Ok(success(
        StatusCode::CREATED,
        CreatedIntegration::from(created),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/me", operation_id = "getMyIntegration",
    tag = "partner", security(("partner_jwt" = [])),
    responses(
        (status = 200, description = "The partner's integration.", body = Success<Integration>),
        ApiError,
    )
)]
pub async fn get_mine(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.get_mine(partner_id).await?))
}

#[utoipa::path(
    patch, path = "/api/v1/partner-integrations/me", operation_id = "updateMyIntegration",
    tag = "partner", security(("partner_jwt" = [])),
    request_body = UpdateIntegrationRequest,
    responses(
        (status = 200, description = "The updated integration.", body = Success<Integration>),
        ApiError,
    )
)]
pub async fn update_mine(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
    Body(patch): Body<UpdateIntegrationRequest>,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.update_mine(partner_id, patch).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/partner-integrations/me", operation_id = "deleteMyIntegration",
    tag = "partner", security(("partner_jwt" = [])),
    responses(
        (
            status = 200,
            description = "Deleted with its catalog and credential.",
            body = Success<Deleted>,
        ),
        ApiError,
    )
)]
pub async fn delete_mine(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    state.service.delete_mine(partner_id).await?;
    Ok(ok(Deleted { deleted: true }))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/me/test-connection", operation_id = "testConnection",
    tag = "partner", security(("partner_jwt" = [])),
    responses(
        (
            status = 200,
            description = "The diagnosis; a partner-side problem is `ok: false`.",
            body = Success<ConnectionTest>,
        ),
        ApiError,
    )
)]
pub async fn test_connection(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.test_connection(partner_id).await?))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/me/webhook-secret",
    operation_id = "rotateMyWebhookSecret", tag = "partner", security(("partner_jwt" = [])),
    responses(
        (
            status = 201,
            description = "A new webhook secret, in this answer only; the previous one keeps working until `previous_valid_until`.",
            body = Success<RotatedWebhookSecret>,
        ),
        ApiError,
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    PartnerAuth(partner_id): PartnerAuth,
) -> Result<Response, ApiError> {
    let rotated = state.service.rotate_my_webhook_secret(partner_id).await?;
    Ok(success(
        StatusCode::CREATED,
        RotatedWebhookSecret::from(rotated),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::field::read;

    #[test]
    fn create_collects_every_problem() {
        let body =
            json!({"base_url": "ftp://x", "auth_type": "basic", "auth_key": 5, "extra": true});
        let errors = read::<CreateIntegrationRequest>(body)
            .unwrap_err()
            .join("; ");
        for expected in [
            "base_url: must use http or https",
            "auth_type: must be one of bearer, api_key",
            "auth_key: must be a string",
            "handles_ticket_delivery: is required",
            "extra: unknown field",
        ] {
            assert!(
                errors.contains(expected),
                "{expected} missing from {errors}"
            );
        }
        assert!(
            !errors.contains("auth_key: is required"),
            "a wrongly typed field is not also missing: {errors}"
        );
    }

    #[test]
    fn create_accepts_a_valid_body() {
        let body = json!({"base_url": "https://octo.example.com/", "auth_type": "api_key", "auth_key": "k", "handles_ticket_delivery": false});
        let new = read::<CreateIntegrationRequest>(body).unwrap();
        assert_eq!(new.base_url.as_str(), "https://octo.example.com");
        assert_eq!(new.auth_type, AuthType::ApiKey);
    }

    #[test]
    fn a_patch_needs_at_least_one_field_and_refuses_nulls() {
        let errors = |body| {
            read::<UpdateIntegrationRequest>(body)
                .unwrap_err()
                .join("; ")
        };
        assert!(errors(json!({})).contains("body: must contain at least one of"));
        assert!(errors(json!({"auth_key": null})).contains("auth_key: must be a string"));
        let patch = read::<UpdateIntegrationRequest>(json!({"handles_ticket_delivery": true}));
        assert_eq!(patch.unwrap().handles_ticket_delivery, Some(true));
    }
}
