//! The one error type of the HTTP layer and its envelope:
//! `{"success": 0, "error": ["field: reason", ...], "message": "Human text", "code": <status>}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use super::envelope::ErrorEnvelope;

use super::auth::AuthError;
use crate::ports::StoreError;
use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    errors: Vec<String>,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// Adds one `"field: reason"` entry.
    pub fn with_error(mut self, entry: impl Into<String>) -> Self {
        self.errors.push(entry.into());
        self
    }

    /// 400 with every field problem found, so a partner can fix them all at once.
    pub fn validation(errors: Vec<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: "Validation Error".into(),
            errors,
            retry_after: None,
        }
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            success: 0,
            error: self.errors,
            message: self.message,
            code: self.status.as_u16(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// Every error status the API answers with, and when: the error responses of each operation
/// in the OpenAPI document (each body an [`ErrorEnvelope`]).
const ERROR_STATUSES: [(u16, &str); 11] = [
    (
        400,
        "A parameter or the body is invalid; `error` lists every problem.",
    ),
    (
        401,
        "No, or an invalid, JWT or webhook secret (or no integration with that id, for a webhook).",
    ),
    (
        403,
        "Authenticated but not allowed: another role, another partner's integration, or an integration not approved or paused (webhooks).",
    ),
    (404, "No such integration."),
    (
        409,
        "The partner already has an integration, or it changed meanwhile.",
    ),
    (413, "The body is over 64 KiB."),
    (415, "The body is not `application/json`."),
    (
        429,
        "Over the integration's webhook rate; `Retry-After` says when to try again.",
    ),
    (500, "Seyaha failed; nothing was half-written."),
    (502, "The partner's OCTO endpoint failed (sync trigger)."),
    (
        503,
        "A store or queue Seyaha depends on is unavailable; retry later.",
    ),
];

impl utoipa::IntoResponses for ApiError {
    fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        ERROR_STATUSES
            .iter()
            .map(|(status, description)| {
                let content = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build();
                let response = ResponseBuilder::new()
                    .description(*description)
                    .content("application/json", content)
                    .build();
                (status.to_string(), response.into())
            })
            .collect()
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let status = match error {
            AuthError::WrongRole => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        let message = match error {
            AuthError::WrongRole => "Forbidden",
            _ => "Unauthorized",
        };
        Self::new(status, message).with_error(format!("authorization: {error}"))
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        use ServiceError as E;
        match &error {
            E::EndpointRefused(reason) => Self::validation(vec![format!("base_url: {reason}")]),
            E::AlreadyExists => Self::new(
                StatusCode::CONFLICT,
                "This partner already has an integration",
            )
            .with_error("partner_id: already has an integration"),
            E::NoIntegration => Self::new(
                StatusCode::NOT_FOUND,
                "No integration registered for this partner",
            ),
            E::NotFound => Self::new(StatusCode::NOT_FOUND, "Integration not found"),
            E::NotOwner => Self::new(
                StatusCode::FORBIDDEN,
                "This integration belongs to another partner",
            ),
            E::WebhookUnauthorized => Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
                .with_error("x-webhook-secret: missing, or does not match this integration"),
            E::RotatedConcurrently => Self::new(
                StatusCode::CONFLICT,
                "The webhook secret was rotated by another request at the same time",
            )
            .with_error(
                "webhook_secret: another rotation won; rotate again to get a secret you hold",
            ),
            E::NotApproved => Self::new(StatusCode::FORBIDDEN, "Integration is not approved yet"),
            E::Inactive => Self::new(StatusCode::FORBIDDEN, "Integration is inactive"),
            E::RateLimited { retry_after } => {
                let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let mut limited = Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many webhook calls for this integration")
                    .with_error(format!("x-webhook-secret: over this integration's per-minute limit; retry after {seconds} s"));
                limited.retry_after = Some(seconds);
                limited
            }
            E::Store(StoreError::InvalidCursor) => {
                Self::validation(vec!["cursor: is not a cursor this listing gave out".into()])
            }
            E::Store(_) | E::Secrets(_) | E::Queue(_) | E::Contention => {
                // Details go to the log for on-call, never to the caller.
                tracing::error!(error = %error, "request failed");
                Self::internal()
            }
        }
    }
}
