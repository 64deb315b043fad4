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

// Each function's handlers are listed once and read two ways. `documented!` registers each
// with its OpenAPI operation (the document, seyaha-local, the tests); `plain!` with its method and
// path only, which is all a Lambda function needs: building the operations (their schemas,
// parameters and responses) took `register` 2.9 ms at every cold start, and the document it
// serves is the generated `docs/openapi.json`.
macro_rules! registration_handlers {
    ($read:ident) => {
        $read!(
            integrations::create,
            integrations::get_mine,
            integrations::update_mine,
            integrations::delete_mine,
            integrations::test_connection,
            integrations::rotate_webhook_secret,
            status::sync_log,
            status::health,
            status::catalog,
            admin::list,
            admin::create,
            admin::sync_all,
            admin::sync_one,
            admin::refresh_availability,
            admin::get,
            admin::update,
            admin::delete,
            admin::rotate_webhook_secret,
            openapi::serve_document,
        )
    };
}

macro_rules! sync_trigger_handlers {
    ($read:ident) => {
        $read!(webhooks::sync_trigger)
    };
}

/// The notify webhook, its batch form and the OCTO events a partner's platform pushes by itself
/// (all small, frequent writes).
macro_rules! availability_notify_handlers {
    ($read:ident) => {
        $read!(
            webhooks::availability_notify,
            webhooks::availability_notify_batch,
            webhooks::octo_events,
        )
    };
}

macro_rules! documented {
    ($($module:ident :: $handler:ident),+ $(,)?) => {
        OpenApiRouter::new()$(.routes(routes!($module::$handler)))+
    };
}

macro_rules! plain {
    ($($module:ident :: $handler:ident),+ $(,)?) => {{
        let routes = PlainRoutes::default();
        $(let routes = utoipa_axum::paste! {
            routes.add::<$module::[<__path_ $handler>], _, _>($module::$handler)
        };)+
        routes
    }};
}

/// A function's routes without their OpenAPI operations, as a Lambda function serves them.
#[derive(Default)]
pub struct PlainRoutes {
    pub router: Router<AppState>,
    /// (method, path) of each route, as the document writes them.
    pub served: Vec<(String, String)>,
}

impl PlainRoutes {
    fn add<P: utoipa::Path, H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        handler: H,
    ) -> Self {
        use utoipa_axum::PathItemExt;

        let Self { router, mut served } = self;
        let path = P::path();
        let mut method_router = axum::routing::MethodRouter::new();
        for method in P::methods() {
            let name = serde_json::to_value(&method).expect("a method serializes");
            served.push((name.as_str().unwrap_or_default().to_owned(), path.clone()));
            method_router = method_router.on(method.to_method_filter(), handler.clone());
        }
        Self {
            router: router.route(&path, method_router),
            served,
        }
    }

    fn with_pages(mut self, pages: &[(&str, &str)]) -> Self {
        for (method, path) in pages {
            self.served
                .push((method.to_ascii_lowercase(), (*path).to_owned()));
        }
        self.router = self.router.merge(self::pages());
        self
    }
}

/// The pages a router serves besides its API operations (not in the OpenAPI document): the
/// console, on the `register` function.
fn pages() -> Router<AppState> {
    Router::new().route(console::PATH, axum::routing::get(console::page))
}

/// Routes a router serves besides its API operations, as (method, path): the `register`
/// function's.
pub const REGISTRATION_PAGES: [(&str, &str); 1] = [("GET", console::PATH)];

/// The `register` function: the partner and admin API, the OpenAPI document and the console,
/// each route with its operation.
pub fn registration_routes() -> OpenApiRouter<AppState> {
    registration_handlers!(documented).merge(OpenApiRouter::from(pages()))
}

/// The `register` function's routes as its Lambda function serves them.
pub fn registration_plain_routes() -> PlainRoutes {
    registration_handlers!(plain).with_pages(&REGISTRATION_PAGES)
}

/// The `sync-trigger` function.
pub fn sync_trigger_routes() -> OpenApiRouter<AppState> {
    sync_trigger_handlers!(documented)
}

pub fn sync_trigger_plain_routes() -> PlainRoutes {
    sync_trigger_handlers!(plain)
}

/// The `availability-notify` function.
pub fn availability_notify_routes() -> OpenApiRouter<AppState> {
    availability_notify_handlers!(documented)
}

pub fn availability_notify_plain_routes() -> PlainRoutes {
    availability_notify_handlers!(plain)
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
    let message = crate::logging::panic_message(panic.as_ref());
    tracing::error!(panic = %crate::logging::Untrusted(&message), "a request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::internal())
}

/// All routes in one Router (seyaha-local, tests).
pub fn router(state: AppState) -> Router {
    let routes = registration_plain_routes()
        .router
        .merge(sync_trigger_plain_routes().router)
        .merge(availability_notify_plain_routes().router);
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

    /// The document `register` serves is the one the code builds. `make openapi` writes it
    /// (this test with `SEYAHA_WRITE_OPENAPI=1`).
    #[test]
    fn the_served_document_is_the_one_the_code_builds() {
        let built = super::openapi_document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
            + "\n";
        if std::env::var_os("SEYAHA_WRITE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
            std::fs::write(path, &built).expect("docs/openapi.json is writable");
            return;
        }
        assert!(
            built == super::openapi::DOCUMENT_JSON,
            "docs/openapi.json is not the document the code builds: run `make openapi` and commit it"
        );
    }

    /// A Lambda function serves exactly the routes its documented router does.
    #[test]
    fn each_function_serves_the_routes_of_its_document() {
        use super::*;
        let pairs = [
            (
                registration_routes(),
                registration_plain_routes(),
                &REGISTRATION_PAGES[..],
            ),
            (sync_trigger_routes(), sync_trigger_plain_routes(), &[][..]),
            (
                availability_notify_routes(),
                availability_notify_plain_routes(),
                &[][..],
            ),
        ];
        for (documented, plain, pages) in pairs {
            let document = serde_json::to_value(documented.into_openapi()).unwrap();
            let mut expected: Vec<(String, String)> = document["paths"]
                .as_object()
                .unwrap()
                .iter()
                .flat_map(|(path, item)| {
                    item.as_object()
                        .unwrap()
                        .keys()
                        .map(move |method| (method.clone(), path.clone()))
                })
                .chain(
                    pages
                        .iter()
                        .map(|(m, p)| (m.to_ascii_lowercase(), (*p).to_owned())),
                )
                .collect();
            let mut served = plain.served;
            expected.sort();
            served.sort();
            assert_eq!(served, expected);
        }
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
