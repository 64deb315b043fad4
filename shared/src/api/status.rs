//! Read-only views by integration id: sync-log, health and the synced catalog (owner partner or admin).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::envelope::ok;
use super::extract::IntegrationPath;
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::Success;
use super::{ApiError, AppState};
use crate::domain::{Activity, Principal, Slot};
#[allow(unused_imports)]
use crate::domain::{Health, IntegrationId};
use crate::ports::{Cursor, Page};
#[allow(unused_imports)]
use crate::service::SyncLog;
use crate::service::{CatalogKind, CatalogQuery, CatalogView};

const DEFAULT_CATALOG_LIMIT: usize = 100;
const MAX_CATALOG_LIMIT: usize = 500;

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/{id}/sync-log", operation_id = "getSyncLog",
    tag = "status", security(("partner_jwt" = []), ("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses(
        (
            status = 200,
            description = "Sync state, health and the last 20 runs, newest first.",
            body = Success<SyncLog>,
        ),
        ApiError,
    )
)]
pub async fn sync_log(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.sync_log(principal, id).await?))
}

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/{id}/health", operation_id = "getHealth",
    tag = "status", security(("partner_jwt" = []), ("admin_jwt" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses((status = 200, description = "The health state.", body = Success<Health>), ApiError)
)]
pub async fn health(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
) -> Result<Response, ApiError> {
    Ok(ok(state.service.health(principal, id).await?))
}

#[utoipa::path(
    get, path = "/api/v1/partner-integrations/{id}/catalog", operation_id = "getCatalog",
    tag = "status", security(("partner_jwt" = []), ("admin_jwt" = [])),
    params(
        ("id" = IntegrationId, Path, description = "The integration's id."),
        ("kind" = Option<CatalogKind>, Query, description = "One list only; both when absent."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Items per list (default 100)."),
        ("activities_cursor" = Option<String>, Query, description = "`next_cursor.activities` of the previous page."),
        ("slots_cursor" = Option<String>, Query, description = "`next_cursor.slots` of the previous page."),
    ),
    responses(
        (status = 200, description = "A page of the synced catalog.", body = Success<CatalogPage>),
        ApiError,
    )
)]
pub async fn catalog(
    State(state): State<AppState>,
    principal: Principal,
    IntegrationPath(id): IntegrationPath,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = catalog_query(query.as_deref().unwrap_or_default())?;
    Ok(ok(CatalogPage::from(
        state.service.catalog(principal, id, query).await?,
    )))
}

/// `kind` (activities|slots; default both), `limit` (1..=500, default 100, per list),
/// `activities_cursor`, `slots_cursor` (from the previous page's `next_cursor`).
fn catalog_query(query: &str) -> Result<CatalogQuery, ApiError> {
    let mut errors = Vec::new();
    let mut parsed = CatalogQuery {
        limit: DEFAULT_CATALOG_LIMIT,
        ..CatalogQuery::default()
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "kind" => match value.as_ref() {
                "activities" => parsed.kind = Some(CatalogKind::Activities),
                "slots" => parsed.kind = Some(CatalogKind::Slots),
                _ => errors.push("kind: must be activities or slots".to_owned()),
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_CATALOG_LIMIT).contains(&n) => parsed.limit = n,
                _ => errors.push(format!(
                    "limit: must be a whole number from 1 to {MAX_CATALOG_LIMIT}"
                )),
            },
            "activities_cursor" => match decode_cursor(&value) {
                Some(cursor) => parsed.activities_after = Some(cursor),
                None => errors
                    .push("activities_cursor: is not a cursor this listing gave out".to_owned()),
            },
            "slots_cursor" => match decode_cursor(&value) {
                Some(cursor) => parsed.slots_after = Some(cursor),
                None => {
                    errors.push("slots_cursor: is not a cursor this listing gave out".to_owned())
                }
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Cursors travel as URL-safe base64 of the store's position.
fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(cursor.as_str())
}

fn decode_cursor(text: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    String::from_utf8(bytes)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 4096)
        .map(Cursor::new)
}

/// The catalog answer: the lists asked for, and where each continues (`null` after the last page).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogPage {
    #[serde(skip_serializing_if = "Option::is_none")]
    activities: Option<Vec<Activity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<Vec<Slot>>,
    next_cursor: NextCursors,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NextCursors {
    #[serde(skip_serializing_if = "Option::is_none")]
    activities: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<Option<String>>,
}

/// A list asked for, and its next cursor; neither for a list not asked for.
type PageParts<T> = (Option<Vec<T>>, Option<Option<String>>);

fn split<T>(page: Option<Page<T>>) -> PageParts<T> {
    match page {
        Some(page) => (
            Some(page.items),
            Some(page.next.as_ref().map(encode_cursor)),
        ),
        None => (None, None),
    }
}

impl From<CatalogView> for CatalogPage {
    fn from(view: CatalogView) -> Self {
        let (activities, activities_next) = split(view.activities);
        let (slots, slots_next) = split(view.slots);
        Self {
            activities,
            slots,
            next_cursor: NextCursors {
                activities: activities_next,
                slots: slots_next,
            },
        }
    }
}
