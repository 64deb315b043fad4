//! The success envelope: `{"success": 1, "data": ...}`, lists add `pagination`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

pub fn success<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, Json(json!({ "success": 1, "data": data }))).into_response()
}

pub fn ok<T: Serialize>(data: T) -> Response {
    success(StatusCode::OK, data)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub page: u32,
    #[serde(rename = "pageSize")]
    pub page_size: u32,
    #[serde(rename = "totalCount")]
    pub total_count: u64,
}

pub fn paginated<T: Serialize>(data: T, pagination: Pagination) -> Response {
    (
        StatusCode::OK,
        Json(json!({ "success": 1, "data": data, "pagination": pagination })),
    )
        .into_response()
}
