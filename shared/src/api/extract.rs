//! Extractors that turn a request into trusted values or an enveloped error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::AppState;
use super::auth::AuthError;
use super::error::ApiError;
use super::field::{RequestBody, read_body};
use crate::domain::{IntegrationId, PartnerId, Principal};

/// The header a partner's platform sends its integration's webhook secret in.
pub const WEBHOOK_SECRET_HEADER: &str = "x-webhook-secret";

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body: 415 unless `Content-Type` is JSON, 413 over 64 KiB, 400 if malformed.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Request body must be JSON",
            )
            .with_error("content-type: must be application/json"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large")
                        .with_error(format!("body: must be at most {MAX_BODY_BYTES} bytes"))
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "Request body could not be read")
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| {
                ApiError::validation(vec![format!(
                    "body: malformed JSON at line {} column {}",
                    error.line(),
                    error.column()
                )])
            })
    }
}

/// A request body of type `B`, read and validated: a JSON body ([`JsonBody`]'s 415/413/400),
/// then one 400 listing every problem of every field.
pub struct Body<B: RequestBody>(pub B::Valid);

impl<S: Send + Sync, B: RequestBody> FromRequest<S> for Body<B> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(body) = JsonBody::from_request(request, state).await?;
        read_body::<B>(body).map(Body)
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The `{id}` path segment: 400 unless it is 24 lowercase hex characters.
pub struct IntegrationPath(pub IntegrationId);

impl<S: Send + Sync> FromRequestParts<S> for IntegrationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::validation(vec!["id: must be 24 lowercase hex characters".into()])
            })?;
        IntegrationId::parse(&raw)
            .map(IntegrationPath)
            .map_err(|error| ApiError::validation(vec![format!("id: {error}")]))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or("invalid"));
        let verifier = state.jwt.verifier().await.map_err(|error| {
            tracing::error!(error = %error, "the JWT signing key is unavailable");
            ApiError::internal()
        })?;
        Ok(verifier.verify_header(header)?)
    }
}

/// A caller with a partner token; an admin token here is 403.
pub struct PartnerAuth(pub PartnerId);

impl FromRequestParts<AppState> for PartnerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Partner(id) => Ok(Self(id)),
            Principal::Admin => Err(ApiError::from(AuthError::WrongRole)
                .with_error("role: this endpoint requires a partner token")),
        }
    }
}

/// A caller with an admin token; a partner token here is 403.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Admin => Ok(Self),
            Principal::Partner(_) => Err(ApiError::from(AuthError::WrongRole)
                .with_error("role: this endpoint requires an admin token")),
        }
    }
}

/// The `x-webhook-secret` header, if present and readable.
pub struct WebhookSecretHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for WebhookSecretHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(WEBHOOK_SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());
        Ok(Self(value))
    }
}
