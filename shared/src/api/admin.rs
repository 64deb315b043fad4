//! Admin routes: create on behalf of a partner, list, get, approve/activate, delete, sync-all,
//! sync one, webhook secret rotation.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::envelope::{Pagination, ok, paginated, success};
use super::extract::{AdminAuth, IntegrationPath, JsonBody};
use super::integrations::{created_response, rotated_response};
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::{
    AdminCreateBody, AdminPatchBody, AvailabilityRefreshBody, CreatedIntegration, Deleted,
    ErrorResponses, Paginated, QueuedAll, QueuedPulls, RotatedWebhookSecret, Success,
    SyncRequested,
};
use super::{ApiError, AppState, body};
use crate::domain::{HealthStatus, Role};
#[allow(unused_imports)]
use crate::domain::{Integration, IntegrationId};
use crate::ports::IntegrationFilter;

const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;
/// Page N follows N cursors from the start; a bound keeps a request from walking forever.
const MAX_PAGE: u32 = 1_000_000;

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/create", operation_id = "adminCreateIntegration", tag = "admin", security(("admin_jwt" = [])),
    request_body = AdminCreateBody,
    responses((status = 201, description = "Created and approved; the webhook secret is in this answer only.", body = Success<CreatedIntegration>), ErrorResponses)
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminAuth,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (partner_id, new) = body::admin_new_integration(&body)?;
    let created = state.service.create(partner_id, new, Role::Admin).await?;
    Ok(created_response(created))
}

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/admin", operation_id = "adminListIntegrations", tag = "admin", security(("admin_jwt" = [])),
    params(
        ("page" = Option<u32>, Query, minimum = 1, maximum = 1000000, description = "From 1 (default 1)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)."),
        ("isApproved" = Option<bool>, Query, description = "Only approved, or only not approved ones."),
        ("health" = Option<HealthStatus>, Query, description = "Only integrations in this health state."),
    ),
    responses((status = 200, description = "A page of integrations, newest first.", body = Paginated<Integration>), ErrorResponses)
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
    get, path = "/api/v1/partner-integrations/admin/{id}", operation_id = "adminGetIntegration", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses((status = 200, description = "The integration.", body = Success<Integration>), ErrorResponses)
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.admin_get(id).await?))
}

#[utoipa::path(
    patch, path = "/api/v1/partner-integrations/admin/{id}", operation_id = "adminUpdateIntegration", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = AdminPatchBody,
    responses((status = 200, description = "The updated integration.", body = Success<Integration>), ErrorResponses)
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let patch = body::admin_patch(&body)?;
    Ok(ok(state.service.admin_update(id, patch).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/partner-integrations/admin/{id}", operation_id = "adminDeleteIntegration", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses((status = 200, description = "Deleted with its catalog and credential.", body = Success<Deleted>), ErrorResponses)
)]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    state.service.admin_delete(id).await?;
    Ok(ok(json!({ "deleted": true })))
}

/// Queues an availability pull of one product, or of every active product, over the dates.
#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/{id}/availability/refresh", operation_id = "adminRefreshAvailability", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = AvailabilityRefreshBody,
    responses((status = 202, description = "Pulls queued, one per product.", body = Success<QueuedPulls>), ErrorResponses)
)]
pub async fn refresh_availability(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let refresh = body::availability_refresh(&body)?;
    let queued = state
        .service
        .refresh_availability(id, refresh.product_id, refresh.from, refresh.to)
        .await?;
    Ok(success(StatusCode::ACCEPTED, json!({ "queued": queued })))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/{id}/webhook-secret", operation_id = "adminRotateWebhookSecret", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses((status = 201, description = "A new webhook secret, in this answer only (pass it to the partner); the previous one keeps working until `previous_valid_until`.", body = Success<RotatedWebhookSecret>), ErrorResponses)
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(rotated_response(
        state.service.admin_rotate_webhook_secret(id).await?,
    ))
}

/// Queues a full sync of one approved, active integration.
#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/{id}/sync", operation_id = "adminSyncIntegration", tag = "admin", security(("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses((status = 202, description = "A background sync was requested (`requested: false`: one was already pending, and it serves this request).", body = Success<SyncRequested>), ErrorResponses)
)]
pub async fn sync_one(
    State(state): State<AppState>,
    _admin: AdminAuth,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    let requested = state.service.admin_sync(id).await?;
    Ok(success(
        StatusCode::ACCEPTED,
        json!({ "requested": requested }),
    ))
}

/// Queues a sync of every approved, active integration (DOWN ones are probed): the fan-out's
/// first page job, on the bulk queue; `queued` counts the integrations live now.
#[utoipa::path(
    post, path = "/api/v1/partner-integrations/admin/sync-all", operation_id = "adminSyncAll", tag = "admin", security(("admin_jwt" = [])),
    responses((status = 202, description = "A sync was requested for every approved, active integration.", body = Success<QueuedAll>), ErrorResponses)
)]
pub async fn sync_all(
    State(state): State<AppState>,
    _admin: AdminAuth,
) -> Result<Response, ApiError> {
    let queued = state.service.sync_all().await?;
    Ok(success(StatusCode::ACCEPTED, json!({ "queued": queued })))
}

#[cfg(test)]
mod tests {
    use super::*;

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
