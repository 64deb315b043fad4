//! Partner webhooks authenticated by `x-webhook-secret`, checked in the documented order:
//! secret and integration (401), then approval and activity (403), then the body (400).

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::envelope::{ok, success};
use super::events::OctoEventBody;
use super::extract::{IntegrationPath, JsonBody, WebhookSecretHeader};
use super::field::read_body;
use super::notify::{NotifyBatch, NotifyBody};
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::Success;
use super::{ApiError, AppState};
#[allow(unused_imports)]
use crate::domain::IntegrationId;
use crate::domain::{EventAction, Rejection, SyncCounts};
use crate::service::BatchItemOutcome;
use crate::sync::SyncResult;

/// The events route's answer: accepted, and what it leads to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventAccepted {
    accepted: bool,
    action: EventAction,
}

/// The trigger's answer: the counts of a finished sync, or `queued` when it runs later (then
/// without the other counts).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TriggerResponse {
    synced: u64,
    skipped: bool,
    queued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unchanged: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deactivated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<u64>,
    /// At most 50; `rejected` is the full count.
    #[serde(skip_serializing_if = "Option::is_none")]
    rejections: Option<Vec<Rejection>>,
}

impl TriggerResponse {
    fn done(counts: SyncCounts, skipped: bool, rejections: Vec<Rejection>) -> Self {
        let SyncCounts {
            synced,
            created,
            updated,
            unchanged,
            deactivated,
            rejected,
        } = counts;
        Self {
            synced,
            skipped,
            queued: false,
            created: Some(created),
            updated: Some(updated),
            unchanged: Some(unchanged),
            deactivated: Some(deactivated),
            rejected: Some(rejected),
            rejections: Some(rejections),
        }
    }

    fn queued() -> Self {
        Self {
            synced: 0,
            skipped: false,
            queued: true,
            created: None,
            updated: None,
            unchanged: None,
            deactivated: None,
            rejected: None,
            rejections: None,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/{id}/sync/trigger", operation_id = "syncTrigger",
    tag = "webhooks", security(("webhook_secret" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    responses(
        (status = 200, description = "Synced (or skipped: the catalog is unchanged).", body = Success<TriggerResponse>),
        (status = 202, description = "Queued: a sync is running, or it ran out of time and continues in the background.", body = Success<TriggerResponse>),
        ApiError,
    )
)]
pub async fn sync_trigger(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
) -> Result<Response, ApiError> {
    let webhook = state
        .service
        .authenticate_webhook(id, secret.as_deref())
        .await?;
    match state.service.trigger_sync(webhook).await? {
        SyncResult::Done {
            counts,
            skipped,
            rejections,
        } => Ok(ok(TriggerResponse::done(counts, skipped, rejections))),
        SyncResult::Queued => Ok(success(StatusCode::ACCEPTED, TriggerResponse::queued())),
        SyncResult::Failed { message } => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("Partner endpoint failed: {message}"),
        )
        .with_error(format!("base_url: {message}"))),
        SyncResult::NotNeeded => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Integration is no longer approved and active",
        )),
    }
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/{id}/availability/notify",
    operation_id = "availabilityNotify", tag = "webhooks", security(("webhook_secret" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = NotifyBody,
    responses(
        (
            status = 200,
            description = "Stored, or a background sync was requested for an unknown product.",
            body = Success<NotifyResult>,
        ),
        ApiError,
    )
)]
pub async fn availability_notify(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
    request: Request,
) -> Result<Response, ApiError> {
    let (webhook, body) = authenticated_body(&state, id, secret, request).await?;
    let update = read_body::<NotifyBody>(body)?;
    let updated = state.service.notify(webhook, update).await?;
    Ok(ok(NotifyResult { updated }))
}

/// A notify's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NotifyResult {
    /// `true`: the slot was stored; `false`: the product or option is unknown (or inactive)
    /// and a background full sync was requested instead.
    pub updated: bool,
}

/// The batch notify's answer: what became of each item, and the totals.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"updated": 2, "sync_requested": true, "rejected": 1, "results": [
    {"index": 0, "updated": true}, {"index": 1, "updated": true}, {"index": 2, "updated": false},
    {"index": 3, "updated": false, "error": ["productId: is required"]}
]}))]
pub struct BatchNotifyResult {
    /// Slots stored.
    updated: u64,
    /// Some item named an unknown (or inactive) product or option: one background full sync
    /// was requested for the whole batch.
    sync_requested: bool,
    /// Items that are not valid notify bodies (see their `error`).
    rejected: u64,
    /// One per item, in the order sent.
    results: Vec<BatchItemResult>,
}

/// What became of one item of a batch notify.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchItemResult {
    /// The item's position in the request array, from 0.
    index: usize,
    /// `true`: the slot was stored. `false` without `error`: its product is unknown and the
    /// batch's fallback sync covers it.
    updated: bool,
    /// Why the item was refused, each problem as `"field: reason"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Vec<String>>,
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/{id}/availability/notify-batch",
    operation_id = "availabilityNotifyBatch", tag = "webhooks", security(("webhook_secret" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body(
        content = NotifyBatch,
        description = "A JSON array of 1 to 500 notify objects, each in any shape the single notify accepts (within the 64 KiB body limit). Each item is handled on its own: a bad item is reported in its result and does not reject the rest.",
        example = json!([
            {"productId": "prod_123", "optionId": "DEFAULT", "availabilityId": "2026-07-15T10:00:00+03:00", "localDateTimeStart": "2026-07-15T10:00:00+03:00", "status": "LIMITED", "vacancies": 4, "capacity": 20},
            {"productId": "prod_123", "optionId": "DEFAULT", "availabilityId": "2026-07-15T14:00:00+03:00", "localDateTimeStart": "2026-07-15T14:00:00+03:00", "status": "SOLD_OUT", "vacancies": 0, "capacity": 20}
        ])
    ),
    responses(
        (status = 200, description = "Every item handled: see each result. 400 when the body is not a non-empty array of at most 500 items, or when no item is valid.", body = Success<BatchNotifyResult>),
        ApiError,
    )
)]
pub async fn availability_notify_batch(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
    request: Request,
) -> Result<Response, ApiError> {
    let (webhook, body) = authenticated_body(&state, id, secret, request).await?;
    let items = NotifyBatch::read(body).map_err(ApiError::validation)?;
    let outcomes = state.service.notify_batch(webhook, items).await?;
    let mut answer = BatchNotifyResult {
        updated: 0,
        sync_requested: false,
        rejected: 0,
        results: Vec::with_capacity(outcomes.len()),
    };
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let (updated, error) = match outcome {
            BatchItemOutcome::Updated => {
                answer.updated += 1;
                (true, None)
            }
            BatchItemOutcome::SyncRequested => {
                answer.sync_requested = true;
                (false, None)
            }
            BatchItemOutcome::Invalid(errors) => {
                answer.rejected += 1;
                (false, Some(errors))
            }
        };
        answer.results.push(BatchItemResult {
            index,
            updated,
            error,
        });
    }
    Ok(ok(answer))
}

#[utoipa::path(
    post, path = "/api/v1/partner-integrations/{id}/octo/events", operation_id = "octoEvents",
    tag = "webhooks", security(("webhook_secret" = [])),
    params(("id" = IntegrationId, Path, description = "The integration's id.")),
    request_body = OctoEventBody,
    responses(
        (status = 202, description = "Accepted; `action` says what it leads to (unknown types and events are `ignored`).", body = Success<EventAccepted>),
        ApiError,
    )
)]
pub async fn octo_events(
    State(state): State<AppState>,
    IntegrationPath(id): IntegrationPath,
    WebhookSecretHeader(secret): WebhookSecretHeader,
    request: Request,
) -> Result<Response, ApiError> {
    let (webhook, body) = authenticated_body(&state, id, secret, request).await?;
    let event = read_body::<OctoEventBody>(body)?;
    let action = state.service.octo_event(webhook, event).await?;
    Ok(success(
        StatusCode::ACCEPTED,
        EventAccepted {
            accepted: true,
            action,
        },
    ))
}

/// The webhook's integration, authenticated (401, then 403) before its body is read (400).
async fn authenticated_body(
    state: &AppState,
    id: IntegrationId,
    secret: Option<String>,
    request: Request,
) -> Result<(crate::service::AuthenticatedWebhook, serde_json::Value), ApiError> {
    let webhook = state
        .service
        .authenticate_webhook(id, secret.as_deref())
        .await?;
    let JsonBody(body) = JsonBody::from_request(request, state).await?;
    Ok((webhook, body))
}
