//! The OpenAPI 3.1 document, generated from the code: every route is registered through
//! `utoipa_axum`'s router from its handler's `#[utoipa::path]`, so a route cannot exist without
//! its documentation (and `tests/tests/it/openapi.rs` checks both ways against the routers).
//! Response data are the domain types themselves (`ToSchema` beside `Serialize`); request
//! bodies, which the handlers read field by field to report every problem at once, are
//! described by the `*Body` types below, and the body tests keep the two in step.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::extract::WEBHOOK_SECRET_HEADER;
use crate::domain::{
    AUTH_KEY_MAX_LEN, AuthKey, BaseUrl, ContentHash, IntegrationId, LocalDateTime, PartnerId,
    RunId, Timestamp,
};

// ---- Schemas of the string newtypes (they serialize as their text) ----

fn string_schema(description: &str, pattern: Option<&str>, format: Option<&str>) -> RefOr<Schema> {
    let mut builder = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description));
    if let Some(pattern) = pattern {
        builder = builder.pattern(Some(pattern));
    }
    if let Some(format) = format {
        builder = builder.format(Some(utoipa::openapi::SchemaFormat::Custom(format.into())));
    }
    builder.into()
}

macro_rules! string_newtype_schema {
    ($($type:ty => ($description:expr, $pattern:expr, $format:expr);)*) => {$(
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                string_schema($description, $pattern, $format)
            }
        }
        impl ToSchema for $type {}
    )*};
}

string_newtype_schema! {
    IntegrationId => ("An integration's id: 24 lowercase hex characters.", Some("^[0-9a-f]{24}$"), None);
    PartnerId => ("A Seyaha partner id: 24 lowercase hex characters.", Some("^[0-9a-f]{24}$"), None);
    RunId => ("A sync run's id: 24 lowercase hex characters.", Some("^[0-9a-f]{24}$"), None);
    ContentHash => ("SHA-256 (64 lowercase hex characters) of canonical JSON.", Some("^[0-9a-f]{64}$"), None);
    Timestamp => ("UTC, RFC 3339 with milliseconds, e.g. 2026-07-15T10:00:00.000Z.", None, Some("date-time"));
    LocalDateTime => ("An OCTO local date-time with its offset (RFC 3339), e.g. 2026-07-15T10:00:00+04:00.", None, Some("date-time"));
    BaseUrl => ("The partner's OCTO API root: an absolute https URL (http only where private endpoints are allowed) without credentials, query or fragment, whose host passes the SSRF guard.", Some("^https?://"), None);
}

/// What `AuthKey::parse` accepts, stated once for every body that carries one.
impl PartialSchema for AuthKey {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The partner's OCTO API key: printable ASCII, not blank. Never shown again.",
            ))
            .pattern(Some("^[\\x20-\\x7e]*[\\x21-\\x7e][\\x20-\\x7e]*$"))
            .max_length(Some(AUTH_KEY_MAX_LEN))
            .into()
    }
}
impl ToSchema for AuthKey {}

pub use super::envelope::{ErrorEnvelope, Paginated, Success};

/// A body that may take any of several shapes, read in a fixed order where they overlap: an
/// OpenAPI `anyOf` (a `oneOf` would call a body valid for two shapes invalid).
macro_rules! any_of_schema {
    ($name:ident, $description:expr, [$($shape:ty),+]) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let any_of = utoipa::openapi::schema::AnyOfBuilder::new().description(Some($description));
                $(let any_of = any_of.item(utoipa::openapi::Ref::from_schema_name(<$shape as utoipa::ToSchema>::name()));)+
                any_of.into()
            }
        }
        impl utoipa::ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
                $(
                    schemas.push((<$shape as utoipa::ToSchema>::name().into(), <$shape as utoipa::PartialSchema>::schema()));
                    <$shape as utoipa::ToSchema>::schemas(schemas);
                )+
            }
        }
    };
}

pub(crate) use any_of_schema;

// ---- The document ----

/// The security schemes: partner JWT, admin JWT (the same bearer JWT, told apart by `role`),
/// and the webhook secret header.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        let jwt = |role: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(format!(
                        "JWT signed by Seyaha (HS256 with the shared secret, or RS256/ES256 when the deployment verifies with a public key), `role: {role}`, `exp` required, `nbf`/`iat` not in the future, no `crit` header (and `iss`/`aud` and a maximum lifetime when configured)."
                    )))
                    .build(),
            )
        };
        components.add_security_scheme("partner_jwt", jwt("partner` and the partner id in `sub"));
        components.add_security_scheme("admin_jwt", jwt("admin"));
        components.add_security_scheme(
            "webhook_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                WEBHOOK_SECRET_HEADER,
                "The integration's webhook secret, shown once at creation (and at each rotation; the previous one works for the overlap after it).",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Seyaha partner integrations",
        description = "Partners register their OCTO endpoint; Seyaha keeps their catalog in sync. Every answer is an envelope: `{success: 1, data}` or `{success: 0, error, message, code}`.",
        license(name = "Proprietary"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorEnvelope, crate::service::CatalogKind, crate::domain::HealthStatus)),
    tags(
        (name = "partner", description = "The partner's own integration (partner JWT)."),
        (name = "admin", description = "Seyaha admins (admin JWT)."),
        (name = "status", description = "Sync log, health and catalog of one integration (its partner or an admin)."),
        (name = "webhooks", description = "Called by the partner's platform (x-webhook-secret)."),
        (name = "meta", description = "This document."),
    ),
)]
struct ApiDoc;

/// The base document (info, tags, security schemes) the routers' paths are merged into.
pub fn base_document() -> Document {
    ApiDoc::openapi()
}

/// A request field (`api::field::Field<T>`) is documented as the `T` it holds. utoipa gives
/// each generic use its own component (`Field_BaseUrl`); this puts that schema in place of
/// every reference to it (beside the field's own keywords, which win) and drops the components.
pub(super) fn inline_fields(document: Document) -> Document {
    use serde_json::Value;

    fn inline(value: &mut Value, fields: &serde_json::Map<String, Value>) {
        match value {
            Value::Object(object) => {
                let held = object
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|target| target.strip_prefix("#/components/schemas/"))
                    .and_then(|name| fields.get(name))
                    .and_then(Value::as_object);
                if let Some(held) = held.cloned() {
                    object.remove("$ref");
                    for (keyword, schema) in held {
                        object.entry(keyword).or_insert(schema);
                    }
                }
                object.values_mut().for_each(|value| inline(value, fields));
            }
            Value::Array(items) => items.iter_mut().for_each(|value| inline(value, fields)),
            _ => {}
        }
    }

    let mut json = serde_json::to_value(&document).expect("the OpenAPI document serializes");
    let fields = match json.pointer_mut("/components/schemas") {
        Some(Value::Object(schemas)) => {
            let names: Vec<String> = schemas
                .keys()
                .filter(|name| name.starts_with("Field_"))
                .cloned()
                .collect();
            names
                .into_iter()
                .filter_map(|name| schemas.remove(&name).map(|schema| (name, schema)))
                .collect()
        }
        _ => serde_json::Map::new(),
    };
    inline(&mut json, &fields);
    serde_json::from_value(json).expect("the OpenAPI document reads back")
}

/// Where a created integration's id and webhook secret are in the create answer.
const CREATED_ID: &str = "$response.body#/data/_id";
const CREATED_SECRET: &str = "$response.body#/data/webhook_secret";

/// The operations an integration flows into once created: approve it, push a sync trigger and
/// an availability update with its secret, read its status, get and delete it. OpenAPI
/// `links`, so a client (and Schemathesis' stateful phase, `make fuzz-api`) can chain
/// create → approve → trigger → notify → delete with the real id and secret.
const FROM_CREATED: [(&str, &str); 11] = [
    ("approve", "adminUpdateIntegration"),
    ("triggerSync", "syncTrigger"),
    ("notifyAvailability", "availabilityNotify"),
    ("notifyAvailabilityBatch", "availabilityNotifyBatch"),
    ("pushOctoEvent", "octoEvents"),
    ("syncLog", "getSyncLog"),
    ("health", "getHealth"),
    ("catalog", "getCatalog"),
    ("get", "adminGetIntegration"),
    ("adminSync", "adminSyncIntegration"),
    ("delete", "adminDeleteIntegration"),
];

/// Adds the links between operations to the merged document. Panics on an operation id or
/// status that is not in it: the document is built in every test run, so a renamed operation
/// fails there, not in a client.
pub(super) fn link_operations(document: &mut Document) {
    use utoipa::openapi::link::LinkBuilder;

    for source in ["createIntegration", "adminCreateIntegration"] {
        let response = response_mut(document, source, "201");
        for (name, target) in FROM_CREATED {
            let mut link = LinkBuilder::new()
                .operation_id(target)
                .parameter("path.id", CREATED_ID);
            match target {
                "syncTrigger" | "availabilityNotify" | "availabilityNotifyBatch" | "octoEvents" => {
                    link = link.parameter(format!("header.{WEBHOOK_SECRET_HEADER}"), CREATED_SECRET)
                }
                "adminUpdateIntegration" => {
                    link = link.request_body(Some(
                        serde_json::json!({ "isApproved": true, "isActive": true }),
                    ))
                }
                _ => {}
            }
            response.links.insert(name.to_owned(), link.build().into());
        }
    }
    let response = response_mut(document, "adminUpdateIntegration", "200");
    for (name, target) in [
        ("get", "adminGetIntegration"),
        ("delete", "adminDeleteIntegration"),
    ] {
        let link = LinkBuilder::new()
            .operation_id(target)
            .parameter("path.id", "$response.body#/data/_id");
        response.links.insert(name.to_owned(), link.build().into());
    }
    for status in ["200", "202"] {
        let response = response_mut(document, "syncTrigger", status);
        let link = LinkBuilder::new()
            .operation_id("getSyncLog")
            .parameter("path.id", "$request.path.id");
        response
            .links
            .insert("syncLog".to_owned(), link.build().into());
    }
}

fn response_mut<'d>(
    document: &'d mut Document,
    operation_id: &str,
    status: &str,
) -> &'d mut utoipa::openapi::Response {
    let operation = document
        .paths
        .paths
        .values_mut()
        .flat_map(|item| {
            [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ]
        })
        .filter_map(Option::as_mut)
        .find(|operation| operation.operation_id.as_deref() == Some(operation_id))
        .unwrap_or_else(|| panic!("no operation {operation_id} in the OpenAPI document"));
    match operation.responses.responses.get_mut(status) {
        Some(RefOr::T(response)) => response,
        _ => panic!("{operation_id} documents no inline {status} response"),
    }
}

/// The whole document as JSON: `docs/openapi.json`, generated from the code by `make openapi`
/// and checked against it by every `make test` (`api::tests::the_served_document_is_the_one_the_code_builds`),
/// so serving it builds nothing (and the functions carry none of the code that builds it).
pub const DOCUMENT_JSON: &str = include_str!("../../../docs/openapi.json");

/// [`DOCUMENT_JSON`].
pub fn document_json() -> &'static str {
    DOCUMENT_JSON
}

/// `GET /openapi.json`: this document (no authentication).
#[utoipa::path(
    get,
    path = "/api/v1/partner-integrations/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "meta",
    responses(
        (
            status = 200,
            description = "This OpenAPI 3.1 document.",
            content_type = "application/json",
            body = Object,
        ),
    ),
)]
pub async fn serve_document() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}
