//! Admin routes: create on behalf of a partner, list, get, approve/activate, delete, sync-all,
//! sync one, webhook secret rotation.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::envelope::{Pagination, ok, paginated, success};
use super::extract::{AdminAuth, Body, IntegrationPath};
use super::field::{Field, FromJson, LocalDate, Problems, RequestBody};
use super::integrations::{
    CreateIntegrationRequest, CreatedIntegration, Deleted, RotatedWebhookSecret,
};
use super::notify::ProductRef;
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::{Paginated, Success};
use super::{ApiError, AppState};
use crate::domain::{
    AdminPatch, AuthKey, AuthType, BaseUrl, HealthStatus, MAX_WEBHOOK_RATE_PER_MINUTE, PartnerId,
    Role,
};
#[allow(unused_imports)]
use crate::domain::{Integration, IntegrationId};
use crate::ports::IntegrationFilter;

/// `POST /admin/create`: the partner's fields and whose integration it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminCreateRequest {
    #[schema(required = true)]
    #[serde(default)]
    pub partner_id: Field<PartnerId>,
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

impl RequestBody for AdminCreateRequest {
    type Valid = (PartnerId, crate::domain::NewIntegration);
    const CLOSED: bool = true;

    fn validate(self, problems: &mut Problems) -> Option<Self::Valid> {
        let partner_id = self.partner_id.required("partner_id", problems);
        let new = CreateIntegrationRequest {
            base_url: self.base_url,
            auth_type: self.auth_type,
            auth_key: self.auth_key,
            handles_ticket_delivery: self.handles_ticket_delivery,
        }
        .validate(problems);
        Some((partner_id?, new?))
    }
}

/// `PATCH /admin/{id}`: any of `isApproved`, `isActive` and `webhookRatePerMinute`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct AdminUpdateRequest {
    #[serde(rename = "isApproved", default)]
    pub is_approved: Field<bool>,
    #[serde(rename = "isActive", default)]
    pub is_active: Field<bool>,
    /// This integration's webhook limit in calls per minute (both webhooks and the batch
    /// notify count one each), raised or lowered from the service's default; `null` returns
    /// to the default.
    #[serde(rename = "webhookRatePerMinute", default)]
    pub webhook_rate_per_minute: Field<WebhookRate>,
}

impl RequestBody for AdminUpdateRequest {
    type Valid = AdminPatch;
    const CLOSED: bool = true;

    fn validate(self, problems: &mut Problems) -> Option<AdminPatch> {
        if !(self.is_approved.is_present()
            || self.is_active.is_present()
            || self.webhook_rate_per_minute.is_present())
        {
            problems.add::<()>(
                "body",
                "must contain at least one of isApproved, isActive, webhookRatePerMinute",
            );
        }
        let webhook_rate_per_minute = self
            .webhook_rate_per_minute
            .optional("webhookRatePerMinute", problems)
            .map(|rate| rate.0);
        Some(AdminPatch {
            is_approved: self.is_approved.optional("isApproved", problems),
            is_active: self.is_active.optional("isActive", problems),
            webhook_rate_per_minute,
        })
    }
}

/// A per-integration webhook limit in calls per minute, or `null` for the service's default.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRate(pub Option<u32>);

impl FromJson for WebhookRate {
    fn from_json(value: Value) -> Result<Self, String> {
        if value.is_null() {
            return Ok(Self(None));
        }
        let max = u64::from(MAX_WEBHOOK_RATE_PER_MINUTE);
        value
            .as_u64()
            // JSON Schema's integer: `4221.0` is one too.
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= max as f64)
                    .map(|n| n as u64)
            })
            .filter(|rate| (1..=max).contains(rate))
            .map(|rate| Self(Some(rate as u32)))
            .ok_or_else(|| {
                format!(
                    "must be a whole number from 1 to {MAX_WEBHOOK_RATE_PER_MINUTE}, or null for the service's default"
                )
            })
    }
}

impl utoipa::PartialSchema for WebhookRate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
            .minimum(Some(1))
            .maximum(Some(MAX_WEBHOOK_RATE_PER_MINUTE))
            .into()
    }
}
impl ToSchema for WebhookRate {}

/// `POST /admin/{id}/availability/refresh`: which product (every active one when absent) and
/// which dates.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRefreshRequest {
    /// First local date (YYYY-MM-DD).
    #[serde(rename = "localDateStart", default)]
    #[schema(required = true)]
    pub local_date_start: Field<LocalDate>,
    /// Last local date, included; at most 366 days after the first.
    #[serde(rename = "localDateEnd", default)]
    #[schema(required = true)]
    pub local_date_end: Field<LocalDate>,
    /// One product; every active product when absent.
    #[serde(rename = "productId", default)]
    pub product_id: Field<ProductRef>,
}

/// A validated availability refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityRefresh {
    pub product_id: Option<String>,
    pub from: time::Date,
    pub to: time::Date,
}

impl RequestBody for AvailabilityRefreshRequest {
    type Valid = AvailabilityRefresh;
    const CLOSED: bool = true;

    fn validate(self, problems: &mut Problems) -> Option<AvailabilityRefresh> {
        let from = self.local_date_start.required("localDateStart", problems);
        let to = self.local_date_end.required("localDateEnd", problems);
        let product_id = self
            .product_id
            .optional("productId", problems)
            .map(|id| id.0);
        let (LocalDate(from), LocalDate(to)) = (from?, to?);
        if to < from {
            problems.add::<()>("localDateEnd", "must not be before localDateStart");
        } else if (to - from).whole_days() >= super::events::MAX_RANGE_DAYS {
            problems.add::<()>(
                "localDateEnd",
                format!(
                    "the range must be at most {} days",
                    super::events::MAX_RANGE_DAYS
                ),
            );
        }
        Some(AvailabilityRefresh {
            product_id,
            from,
            to,
        })
    }
}

/// An availability refresh's answer.
#[derive(Serialize, ToSchema)]
pub struct QueuedPulls {
    /// Availability pulls queued: one per product.
    pub queued: u64,
}

/// An admin sync's answer.
#[derive(Serialize, ToSchema)]
pub struct SyncRequested {
    /// `true`: a sync job was queued; `false`: a sync was already requested and not yet served.
    pub requested: bool,
}

/// Sync-all's answer.
#[derive(Serialize, ToSchema)]
pub struct QueuedAll {
    /// Approved, active integrations when the request was made: the fan-out it queued requests
    /// a sync of each (one already pending serves it), page by page in the background.
    pub queued: u64,
}

const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;
/// Page N follows N cursors from the start; a bound keeps a request from walking forever.
const MAX_PAGE: u32 = 1_000_000;

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/create",
    operation_id = "adminCreateIntegration", tag = "admin", security(("admin_jwt" = [])),
    request_body = AdminCreateRequest,
    responses(
        (
            status = 201,
            description = "Created and approved; the webhook secret is in this answer only.",
            body = Success<CreatedIntegration>,
        ),
        ApiError,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Body((partner_id, new)): Body<AdminCreateRequest>,
) -> Result<Response, ApiError> {
    let created = state.service.create(partner_id, new, Role::Admin).await?;
    Ok(success(
        StatusCode::CREATED,
        CreatedIntegration::from(created),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/admin", operation_id = "adminListIntegrations",
    tag = "admin", security(("admin_jwt" = [])),
    params(
        ("page" = Option<u32>, Query, minimum = 1, maximum = 1000000, description = "From 1 (default 1)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)."),
        ("isApproved" = Option<bool>, Query, description = "Only approved, or only not approved ones."),
        ("health" = Option<HealthStatus>, Query, description = "Only integrations in this health state."),
    ),
    responses(
        (
            status = 200,
            description = "A page of integrations, newest first.",
            body = Paginated<Integration>,
        ),
        ApiError,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminAuth,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (filter, page) = list_query(query.as_deref().unwrap_or_default())?;
    let result = state
        .service
        .admin_list(filter, page.page, page.limit)
        .await?;
    Ok(paginated(
        result.items,
        Pagination {
            page: page.page,
            page_size: page.limit,
            total_count: result.total_count,
        },
    ))
}

/// A 1-based page number and a page size, both validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageRequest {
    page: u32,
    limit: u32,
}

/// `page` (from 1), `limit` (1..=100), `isApproved` (true|false), `health` (HEALTHY|DEGRADED|DOWN).
fn list_query(query: &str) -> Result<(IntegrationFilter, PageRequest), ApiError> {
    let mut errors = Vec::new();
    let mut filter = IntegrationFilter::default();
    let mut page = PageRequest {
        page: 1,
        limit: DEFAULT_PAGE_SIZE,
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "page" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => page.page = n,
                _ => errors.push(format!("page: must be a whole number from 1 to {MAX_PAGE}")),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => page.limit = n,
                _ => errors.push(format!(
                    "limit: must be a whole number from 1 to {MAX_PAGE_SIZE}"
                )),
            },
            "isApproved" => match value.as_ref() {
                "true" => filter.is_approved = Some(true),
                "false" => filter.is_approved = Some(false),
                _ => errors.push("isApproved: must be true or false".to_owned()),
            },
            "health" => match HealthStatus::parse(&value) {
                Ok(status) => filter.health = Some(status),
                Err(error) => errors.push(format!("health: {error}")),
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok((filter, page))
    } else {
        Err(ApiError::validation(errors))
    }
}

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/admin/{id}", operation_id = "adminGetIntegration",
    tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses(
        (status = 200, description = "The integration.", body = Success<Integration>),
        ApiError,
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.admin_get(id).await?))
}

#[utoipa::path(
    patch, path = "/api/v1/partner-integrations/admin/{id}",
    operation_id = "adminUpdateIntegration", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = AdminUpdateRequest,
    responses(
        (status = 200, description = "The updated integration.", body = Success<Integration>),
        ApiError,
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
    Body(patch): Body<AdminUpdateRequest>,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.admin_update(id, patch).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/partner-integrations/admin/{id}",
    operation_id = "adminDeleteIntegration", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses(
        (
            status = 200,
            description = "Deleted with its catalog and credential.",
            body = Success<Deleted>,
        ),
        ApiError,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    state.service.admin_delete(id).await?;
    Ok(ok(Deleted { deleted: true }))
}

/// Queues an availability pull of one product, or of every active product, over the dates.
#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/{id}/availability/refresh",
    operation_id = "adminRefreshAvailability", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = AvailabilityRefreshRequest,
    responses(
        (status = 202, description = "Pulls queued, one per product.", body = Success<QueuedPulls>),
        ApiError,
    )
)]
pub async fn refresh_availability(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
    Body(refresh): Body<AvailabilityRefreshRequest>,
) -> Result<Response, ApiError> {
    let queued = state
        .service
        .refresh_availability(id, refresh.product_id, refresh.from, refresh.to)
        .await?;
    Ok(success(StatusCode::ACCEPTED, QueuedPulls { queued }))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/{id}/webhook-secret",
    operation_id = "adminRotateWebhookSecret", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses(
        (
            status = 201,
            description = "A new webhook secret, in this answer only (pass it to the partner); the previous one keeps working until `previous_valid_until`.",
            body = Success<RotatedWebhookSecret>,
        ),
        ApiError,
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    let rotated = state.service.admin_rotate_webhook_secret(id).await?;
    Ok(success(
        StatusCode::CREATED,
        RotatedWebhookSecret::from(rotated),
    ))
}

/// Queues a full sync of one approved, active integration.
#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/{id}/sync",
    operation_id = "adminSyncIntegration", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses(
        (
            status = 202,
            description = "A background sync was requested (`requested: false`: one was already pending, and it serves this request).",
            body = Success<SyncRequested>,
        ),
        ApiError,
    )
)]
pub async fn sync_one(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    let requested = state.service.admin_sync(id).await?;
    Ok(success(StatusCode::ACCEPTED, SyncRequested { requested }))
}

/// Queues a sync of every approved, active integration (DOWN ones are probed): the fan-out's
/// first page job, on the bulk queue; `queued` counts the integrations live now.
#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/sync-all", operation_id = "adminSyncAll",
    tag = "admin", security(("admin_jwt" = [])),
    responses(
        (
            status = 202,
            description = "A sync was requested for every approved, active integration.",
            body = Success<QueuedAll>,
        ),
        ApiError,
    )
)]
pub async fn sync_all(
    State(state): State<AppState>,
    _admin: AdminAuth,
) -> Result<Response, ApiError> {
    let queued = state.service.sync_all().await?;
    Ok(success(StatusCode::ACCEPTED, QueuedAll { queued }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::field::read;

    fn errors_of<B: RequestBody>(body: Value) -> String {
        match read::<B>(body) {
            Ok(_) => panic!("the body was accepted"),
            Err(errors) => errors.join("; "),
        }
    }

    #[test]
    fn availability_refresh_reads_dates_and_an_optional_product() {
        let refresh = read::<AvailabilityRefreshRequest>(
            json!({"localDateStart": "2026-07-01", "localDateEnd": "2026-07-31"}),
        )
        .unwrap();
        assert_eq!(
            (refresh.product_id, refresh.from.day(), refresh.to.day()),
            (None, 1, 31)
        );
        let errors = errors_of::<AvailabilityRefreshRequest>(
            json!({"localDateStart": "July", "productId": "", "extra": 1}),
        );
        for expected in [
            "localDateStart: must be a date",
            "localDateEnd: is required",
            "productId: must not be empty",
            "extra: unknown field",
        ] {
            assert!(errors.contains(expected), "{expected} in {errors}");
        }
        assert!(
            errors_of::<AvailabilityRefreshRequest>(
                json!({"localDateStart": "2026-07-31", "localDateEnd": "2026-07-01"})
            )
            .contains("must not be before")
        );
        assert!(
            errors_of::<AvailabilityRefreshRequest>(
                json!({"localDateStart": "2026-01-01", "localDateEnd": "2027-06-01"})
            )
            .contains("at most 366 days")
        );
    }

    #[test]
    fn an_admin_patch_needs_a_field_and_refuses_nulls_and_other_types() {
        assert!(
            errors_of::<AdminUpdateRequest>(json!({}))
                .contains("body: must contain at least one of")
        );
        assert!(
            errors_of::<AdminUpdateRequest>(json!({"isApproved": "yes"}))
                .contains("isApproved: must be a boolean")
        );
        assert!(
            errors_of::<AdminUpdateRequest>(json!({"isApproved": null}))
                .contains("isApproved: must be a boolean")
        );
        assert!(errors_of::<AdminUpdateRequest>(json!([])).contains("body: must be a JSON object"));
        let patch = read::<AdminUpdateRequest>(json!({"isActive": false})).unwrap();
        assert_eq!(patch.is_active, Some(false));
    }

    #[test]
    fn an_admin_patch_sets_or_clears_the_webhook_limit_within_its_range() {
        let rate = |body| {
            read::<AdminUpdateRequest>(body)
                .unwrap()
                .webhook_rate_per_minute
        };
        assert_eq!(
            rate(json!({"webhookRatePerMinute": 6000})),
            Some(Some(6000))
        );
        assert_eq!(rate(json!({"webhookRatePerMinute": null})), Some(None));
        assert_eq!(rate(json!({"isActive": true})), None);
        assert_eq!(
            rate(json!({"webhookRatePerMinute": 4221.0})),
            Some(Some(4221))
        );
        for bad in [
            json!(0),
            json!(-5),
            json!(1.5),
            json!("600"),
            json!(1_000_001),
            json!(1e7),
            json!(u64::MAX),
        ] {
            let errors = errors_of::<AdminUpdateRequest>(
                json!({"webhookRatePerMinute": bad, "isActive": "no"}),
            );
            assert!(
                errors.contains("webhookRatePerMinute: must be a whole number from 1 to 1000000"),
                "{bad}: {errors}"
            );
            assert!(
                errors.contains("isActive: must be a boolean"),
                "every bad field in one answer: {errors}"
            );
        }
    }

    #[test]
    fn an_admin_create_reads_the_partner_and_the_integration() {
        let errors = errors_of::<AdminCreateRequest>(json!({"partner_id": "x", "base_url": 1}));
        for expected in [
            "partner_id: must be 24 lowercase hex characters",
            "base_url: must be a string",
            "auth_type: is required",
        ] {
            assert!(errors.contains(expected), "{expected} in {errors}");
        }
    }

    #[test]
    fn list_query_defaults_and_filters() {
        let (filter, page) = list_query("").unwrap();
        assert_eq!(
            (filter, page),
            (
                IntegrationFilter::default(),
                PageRequest { page: 1, limit: 20 }
            )
        );
        let (filter, page) =
            list_query("page=3&limit=5&isApproved=false&health=DOWN&other=1").unwrap();
        assert_eq!(page, PageRequest { page: 3, limit: 5 });
        assert_eq!(
            filter,
            IntegrationFilter {
                is_approved: Some(false),
                health: Some(HealthStatus::Down)
            }
        );
    }

    #[test]
    fn list_query_rejects_bad_values() {
        for bad in [
            "page=0",
            "page=x",
            "limit=0",
            "limit=101",
            "isApproved=yes",
            "health=ok",
        ] {
            assert!(list_query(bad).is_err(), "{bad}");
        }
    }
}
