//! The HTTP layer: one axum Router per Lambda function's routes, merged by seyaha-local.
//! Handlers parse, call [`IntegrationService`](crate::service::IntegrationService), and map.

mod admin;
pub mod auth;
pub mod console;
mod envelope;
mod error;
mod events;
mod extract;
pub(crate) mod field;
mod integrations;
mod notify;
pub mod openapi;
mod status;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use events::parse_event;
pub use extract::MAX_BODY_BYTES;
pub use notify::{MAX_BATCH_ITEMS, MAX_COUNT, parse_notify, parse_notify_batch};

use crate::service::IntegrationService;
use auth::JwtSource;

/// Every route lives under this prefix.
pub const PREFIX: &str = crate::domain::API_PREFIX;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<IntegrationService>,
    pub jwt: Arc<JwtSource>,
}

/// The `register` function: the partner and admin API, the OpenAPI document and the console. Routes are
/// registered from their handlers' `#[utoipa::path]` (path and method included), so each one
/// is in the document.
pub fn registration_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(integrations::create))
        .routes(routes!(
            integrations::get_mine,
            integrations::update_mine,
            integrations::delete_mine
        ))
        .routes(routes!(integrations::test_connection))
        .routes(routes!(integrations::rotate_webhook_secret))
        .routes(routes!(status::sync_log))
        .routes(routes!(status::health))
        .routes(routes!(status::catalog))
        .routes(routes!(admin::list))
        .routes(routes!(admin::create))
        .routes(routes!(admin::sync_all))
        .routes(routes!(admin::sync_one))
        .routes(routes!(admin::refresh_availability))
        .routes(routes!(admin::get, admin::update, admin::delete))
        .routes(routes!(admin::rotate_webhook_secret))
        .routes(routes!(openapi::serve_document))
        .route(console::PATH, axum::routing::get(console::page))
}

/// Routes a router serves besides its API operations (pages, not in the OpenAPI document), as
/// (method, path): the `register` function's.
pub const REGISTRATION_PAGES: [(&str, &str); 1] = [("GET", console::PATH)];

/// The `sync-trigger` function.
pub fn sync_trigger_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webhooks::sync_trigger))
}

/// The `availability-notify` function: the notify webhook and the OCTO events a partner's
/// platform pushes by itself (both are small, frequent writes).
pub fn availability_notify_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhooks::availability_notify))
        .routes(routes!(webhooks::availability_notify_batch))
        .routes(routes!(webhooks::octo_events))
}

/// The OpenAPI document of every route of every function.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut document = openapi::base_document();
    for routes in [
        registration_routes(),
        sync_trigger_routes(),
        availability_notify_routes(),
    ] {
        document.merge(routes.into_openapi());
    }
    openapi::link_operations(&mut document);
    openapi::inline_fields(document)
}

/// Wraps a function's routes with what every deployment needs: the body limit, request
/// tracing, enveloped 404/405 answers, and a panic in a handler answered as an enveloped 500
/// for that request alone.
pub fn finish(routes: OpenApiRouter<AppState>, state: AppState) -> Router {
    let (routes, _document) = routes.split_for_parts();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = crate::logging::panic_message(panic.as_ref());
    tracing::error!(panic = %crate::logging::Untrusted(&message), "a request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::internal())
}

/// All routes in one Router (seyaha-local, tests).
pub fn router(state: AppState) -> Router {
    let routes = registration_routes()
        .merge(sync_trigger_routes())
        .merge(availability_notify_routes());
    finish(routes, state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("No route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};

    use super::field::{RequestBody, field_names};

    /// What the document says a closed body may hold, against what its type reads: the names
    /// serde's derive asks for, and no other field accepted.
    fn documented_fields<B: RequestBody + PartialSchema>() -> (Vec<String>, bool) {
        let RefOr::T(Schema::Object(object)) = B::schema() else {
            panic!("a request body is documented as an object");
        };
        let closed = matches!(
            object.additional_properties.as_deref(),
            Some(AdditionalProperties::FreeForm(false))
        );
        (object.properties.keys().cloned().collect(), closed)
    }

    fn check<B: RequestBody + PartialSchema>() {
        let (mut documented, closed) = documented_fields::<B>();
        let mut read: Vec<String> = field_names::<B>().iter().map(|n| n.to_string()).collect();
        documented.sort();
        read.sort();
        assert_eq!(documented, read, "{}", std::any::type_name::<B>());
        assert_eq!(closed, B::CLOSED, "{}", std::any::type_name::<B>());
    }

    #[test]
    fn each_closed_body_documents_exactly_the_fields_it_reads() {
        check::<super::integrations::CreateIntegrationRequest>();
        check::<super::integrations::UpdateIntegrationRequest>();
        check::<super::admin::AdminCreateRequest>();
        check::<super::admin::AdminUpdateRequest>();
        check::<super::admin::AvailabilityRefreshRequest>();
    }

    /// A request field is documented as the value it holds: no `Field_*` wrapper schema is
    /// left in the document, nor a reference to one.
    #[test]
    fn the_document_names_no_wrapper_schema() {
        let document = super::openapi_document();
        let schemas = document.components.expect("components").schemas;
        let wrappers: Vec<_> = schemas
            .keys()
            .filter(|name| name.starts_with("Field_"))
            .collect();
        assert!(wrappers.is_empty(), "{wrappers:?}");
        let json = serde_json::to_string(&document.paths).unwrap();
        assert!(!json.contains("Field_"), "a path refers to a Field_ schema");
    }
}
