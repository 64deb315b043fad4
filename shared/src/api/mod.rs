//! The HTTP layer: one axum Router per Lambda function's routes, merged by seyaha-local.
//! Handlers parse, call [`IntegrationService`](crate::service::IntegrationService), and map.

mod admin;
pub mod auth;
mod body;
mod envelope;
mod error;
mod extract;
mod integrations;
mod notify;
mod status;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use extract::MAX_BODY_BYTES;

use crate::service::IntegrationService;
use auth::JwtSource;

/// Every route lives under this prefix.
pub const PREFIX: &str = "/api/v1/partner-integrations";

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<IntegrationService>,
    pub jwt: Arc<JwtSource>,
}

fn path(suffix: &str) -> String {
    format!("{PREFIX}{suffix}")
}

/// The `register` function: the partner and admin API.
pub fn registration_routes() -> Router<AppState> {
    use axum::routing::{get, post};
    Router::new()
        .route(PREFIX, post(integrations::create))
        .route(&path("/me"), get(integrations::get_mine).patch(integrations::update_mine).delete(integrations::delete_mine))
        .route(&path("/me/test-connection"), post(integrations::test_connection))
        .route(&path("/{id}/sync-log"), get(status::sync_log))
        .route(&path("/{id}/health"), get(status::health))
        .route(&path("/{id}/catalog"), get(status::catalog))
        .route(&path("/admin"), get(admin::list))
        .route(&path("/admin/create"), post(admin::create))
        .route(&path("/admin/sync-all"), post(admin::sync_all))
        .route(&path("/admin/{id}"), get(admin::get).patch(admin::update).delete(admin::delete))
}

/// The `sync-trigger` function.
pub fn sync_trigger_routes() -> Router<AppState> {
    Router::new().route(&path("/{id}/sync/trigger"), axum::routing::post(webhooks::sync_trigger))
}

/// The `availability-notify` function.
pub fn availability_notify_routes() -> Router<AppState> {
    Router::new().route(&path("/{id}/availability/notify"), axum::routing::post(webhooks::availability_notify))
}

/// Wraps a function's routes with what every deployment needs: the body limit, request
/// tracing, enveloped 404/405 answers, and a panic in a handler answered as an enveloped 500
/// for that request alone.
pub fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = crate::app::panic_message(panic.as_ref());
    tracing::error!(panic = %crate::logging::Untrusted(&message), "a request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::internal())
}

/// All routes in one Router (seyaha-local, tests).
pub fn router(state: AppState) -> Router {
    let routes = registration_routes().merge(sync_trigger_routes()).merge(availability_notify_routes());
    finish(routes, state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("No route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path()))
}
