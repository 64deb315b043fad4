//! The OpenAPI 3.1 document, generated from the code: every route is registered through
//! `utoipa_axum`'s router from its handler's `#[utoipa::path]`, so a route cannot exist without
//! its documentation (and `tests/tests/it/openapi.rs` checks both ways against the routers).
//! Response data are the domain types themselves (`ToSchema` beside `Serialize`); request
//! bodies, which the handlers read field by field to report every problem at once, are
//! described by the `*Body` types below, and the body tests keep the two in step.

use std::sync::OnceLock;

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::extract::WEBHOOK_SECRET_HEADER;
use crate::domain::{
    AUTH_KEY_MAX_LEN, AuthKey, AuthType, BaseUrl, ContentHash, IntegrationId, LocalDateTime,
    PartnerId, RunId, SlotStatus, Timestamp,
};

/// The catalog's `kind` parameter.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CatalogKindParam {
    Activities,
    Slots,
}

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

// ---- Envelopes ----

/// The success envelope.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always 1.
    #[schema(minimum = 1, maximum = 1)]
    pub success: u8,
    pub data: T,
}

/// A page of a list, with the page it is and how many there are.
#[derive(Serialize, ToSchema)]
pub struct Paginated<T> {
    /// Always 1.
    #[schema(minimum = 1, maximum = 1)]
    pub success: u8,
    pub data: Vec<T>,
    pub pagination: super::envelope::Pagination,
}

/// Every error answer: the status again as `code`, a human `message`, and one
/// `"field: reason"` entry per problem (empty when no field is at fault).
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always 0.
    #[schema(minimum = 0, maximum = 0)]
    pub success: u8,
    pub error: Vec<String>,
    pub message: String,
    #[schema(minimum = 400, maximum = 599)]
    pub code: u16,
}

/// The integration document, and the webhook secret: returned by create only, once.
#[derive(Serialize, ToSchema)]
pub struct CreatedIntegration {
    #[serde(flatten)]
    pub integration: crate::domain::Integration,
    /// 64 lowercase hex characters; send it as `x-webhook-secret`. Never shown again.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub webhook_secret: String,
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

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: bool,
}

#[derive(Serialize, ToSchema)]
pub struct QueuedPulls {
    /// Availability pulls queued: one per product.
    pub queued: u64,
}

/// `POST /admin/{id}/availability/refresh`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AvailabilityRefreshBody {
    /// First local date (YYYY-MM-DD).
    #[serde(rename = "localDateStart")]
    #[schema(format = Date)]
    local_date_start: String,
    /// Last local date, included; at most 366 days after the first.
    #[serde(rename = "localDateEnd")]
    #[schema(format = Date)]
    local_date_end: String,
    /// One product; every active product when absent.
    #[serde(rename = "productId")]
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S", nullable = false)]
    product_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SyncRequested {
    /// `true`: a sync job was queued; `false`: a sync was already requested and not yet served.
    pub requested: bool,
}

#[derive(Serialize, ToSchema)]
pub struct QueuedAll {
    /// Approved, active integrations when the request was made: the fan-out it queued requests
    /// a sync of each (one already pending serves it), page by page in the background.
    pub queued: u64,
}

#[derive(Serialize, ToSchema)]
pub struct NotifyResult {
    /// `true`: the slot was stored; `false`: the product or option is unknown (or inactive)
    /// and a background full sync was requested instead.
    pub updated: bool,
}

// ---- Request bodies (read field by field by `api::body`; unknown fields are refused) ----

/// `POST /partner-integrations`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CreateIntegrationBody {
    base_url: BaseUrl,
    auth_type: AuthType,
    #[schema(value_type = AuthKey)]
    auth_key: String,
    handles_ticket_delivery: bool,
}

/// `POST /admin/create`: the partner's fields and whose integration it is.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AdminCreateBody {
    partner_id: PartnerId,
    base_url: BaseUrl,
    auth_type: AuthType,
    #[schema(value_type = AuthKey)]
    auth_key: String,
    handles_ticket_delivery: bool,
}

/// `PATCH /me`: at least one of the fields. A new `base_url` needs approval again.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[allow(dead_code)]
pub struct UpdateIntegrationBody {
    #[schema(nullable = false)]
    base_url: Option<BaseUrl>,
    #[schema(nullable = false)]
    auth_type: Option<AuthType>,
    #[schema(value_type = Option<AuthKey>, nullable = false)]
    auth_key: Option<String>,
    #[schema(nullable = false)]
    handles_ticket_delivery: Option<bool>,
}

/// `PATCH /admin/{id}`: any of `isApproved`, `isActive` and `webhookRatePerMinute`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[allow(dead_code)]
pub struct AdminPatchBody {
    #[serde(rename = "isApproved")]
    #[schema(nullable = false)]
    is_approved: Option<bool>,
    #[serde(rename = "isActive")]
    #[schema(nullable = false)]
    is_active: Option<bool>,
    /// This integration's webhook limit in calls per minute (both webhooks and the batch
    /// notify count one each), raised or lowered from the service's default; `null` returns
    /// to the default.
    #[serde(rename = "webhookRatePerMinute")]
    #[schema(minimum = 1, maximum = 1000000)]
    webhook_rate_per_minute: Option<u32>,
}

/// What every notify shape says about the slot itself.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct SlotFields {
    #[serde(rename = "localDateTimeStart")]
    local_date_time_start: LocalDateTime,
    status: Option<SlotStatus>,
    #[schema(minimum = 0, maximum = 1000000000)]
    vacancies: Option<u64>,
    /// At least `vacancies` when both are given.
    #[schema(minimum = 0, maximum = 1000000000)]
    capacity: Option<u64>,
}

/// The slot with the product and option it belongs to.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct NotifySlot {
    #[serde(rename = "productId")]
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    product_id: String,
    #[serde(rename = "optionId")]
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    option_id: String,
    #[serde(flatten)]
    fields: SlotFields,
}

/// Notify, the flat Seyaha shape.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct FlatNotifyBody {
    #[serde(rename = "availabilityId")]
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    availability_id: String,
    #[serde(flatten)]
    slot: NotifySlot,
}

/// Notify, the OCTO webhook shape (Ventrata): the availability under `availability` (its `id`
/// is the availability id) with its `productId` and `optionId`, and an optional `webhook`
/// whose `event` is `availability_update`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoNotifyBody {
    webhook: Option<OctoWebhookInfo>,
    availability: OctoAvailability,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoWebhookInfo {
    #[schema(pattern = "^availability_update$")]
    event: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoAvailability {
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    id: String,
    #[serde(flatten)]
    slot: NotifySlot,
}

/// Notify, the OCTO Cloud `availability_update` shape: `productId` and `optionId` beside the
/// availability (and a `supplier`, not read). When the availability carries them too, those win.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoCloudNotifyBody {
    webhook: Option<OctoWebhookInfo>,
    #[serde(rename = "productId")]
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    product_id: String,
    #[serde(rename = "optionId")]
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    option_id: String,
    availability: OctoCloudAvailability,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoCloudAvailability {
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    id: String,
    #[serde(flatten)]
    fields: SlotFields,
}

/// A body that may take any of several shapes, read in a fixed order where they overlap: an
/// OpenAPI `anyOf` (a `oneOf` would call a body valid for two shapes invalid).
macro_rules! any_of_schema {
    ($name:ident, $description:expr, [$($shape:ty),+]) => {
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let any_of = utoipa::openapi::schema::AnyOfBuilder::new().description(Some($description));
                $(let any_of = any_of.item(utoipa::openapi::Ref::from_schema_name(<$shape as ToSchema>::name()));)+
                any_of.into()
            }
        }
        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $(
                    schemas.push((<$shape as ToSchema>::name().into(), <$shape as PartialSchema>::schema()));
                    <$shape as ToSchema>::schemas(schemas);
                )+
            }
        }
    };
}

any_of_schema!(
    NotifyBody,
    "Any of the three notify shapes.",
    [FlatNotifyBody, OctoNotifyBody, OctoCloudNotifyBody]
);

/// `POST /{id}/availability/notify-batch`: 1 to 500 notify objects.
pub struct NotifyBatchBody;
impl PartialSchema for NotifyBatchBody {
    fn schema() -> RefOr<Schema> {
        let item = utoipa::openapi::Ref::from_schema_name(<NotifyBody as ToSchema>::name());
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(item)
            .min_items(Some(1))
            .max_items(Some(super::notify::MAX_BATCH_ITEMS))
            .description(Some(
                "1 to 500 notify objects, each in any of the three notify shapes.",
            ))
            .into()
    }
}
impl ToSchema for NotifyBatchBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            <NotifyBody as ToSchema>::name().into(),
            <NotifyBody as PartialSchema>::schema(),
        ));
        <NotifyBody as ToSchema>::schemas(schemas);
    }
}

any_of_schema!(
    OctoEventBody,
    "A webhook delivery (OCTO Cloud / Ventrata: `webhook.event` decides) or a notification (the OCTO notifications capability).",
    [OctoDelivery, OctoNotification]
);

/// A webhook delivery: `availability_update` carries a notify body (any OCTO shape: an
/// `availability` object), `booking_update` a `booking` object with its `productId`; other
/// events are ignored, whatever else they carry.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoDelivery {
    webhook: OctoDeliveryInfo,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoDeliveryInfo {
    /// `availability_update`, `booking_update`, or anything else (ignored).
    event: String,
}

/// A notification: its type in `notificationType` (or `type`), case-insensitive, and its
/// payload under `payload` (or `data`) or at the top level. `PRODUCT_UPDATE` needs
/// `productId`; `AVAILABILITY_UPDATE` `productId`, `localDateStart` and `localDateEnd`
/// (YYYY-MM-DD); other types are ignored.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct OctoNotification {
    #[serde(rename = "notificationType")]
    notification_type: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[schema(value_type = Option<Object>)]
    payload: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Value>,
}

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
    components(schemas(ErrorEnvelope, CatalogKindParam, crate::domain::HealthStatus)),
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

/// The whole document as JSON, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        super::openapi_document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// `GET /openapi.json`: this document (no authentication).
#[utoipa::path(
    get,
    path = "/api/v1/partner-integrations/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
pub async fn serve_document() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// The error answers an operation may give, each as the error envelope.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ErrorResponses {
    /// A parameter or the body is invalid; `error` lists every problem.
    #[response(status = 400)]
    BadRequest(ErrorEnvelope),
    /// No, or an invalid, JWT or webhook secret (or no integration with that id, for a webhook).
    #[response(status = 401)]
    Unauthorized(ErrorEnvelope),
    /// Authenticated but not allowed: another role, another partner's integration, or an
    /// integration not approved or paused (webhooks).
    #[response(status = 403)]
    Forbidden(ErrorEnvelope),
    /// No such integration.
    #[response(status = 404)]
    NotFound(ErrorEnvelope),
    /// The partner already has an integration, or it changed meanwhile.
    #[response(status = 409)]
    Conflict(ErrorEnvelope),
    /// The body is over 64 KiB.
    #[response(status = 413)]
    PayloadTooLarge(ErrorEnvelope),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorEnvelope),
    /// Over the integration's webhook rate; `Retry-After` says when to try again.
    #[response(status = 429)]
    TooManyRequests(ErrorEnvelope),
    /// Seyaha failed; nothing was half-written.
    #[response(status = 500)]
    Internal(ErrorEnvelope),
    /// The partner's OCTO endpoint failed (sync trigger).
    #[response(status = 502)]
    BadGateway(ErrorEnvelope),
    /// A store or queue Seyaha depends on is unavailable; retry later.
    #[response(status = 503)]
    Unavailable(ErrorEnvelope),
}
