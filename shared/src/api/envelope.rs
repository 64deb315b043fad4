//! The envelopes every answer travels in: `{"success": 1, "data": ...}` (lists add
//! `pagination`) and `{"success": 0, "error", "message", "code"}`. The types that build the
//! answers are the ones the OpenAPI document shows.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

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
    pub pagination: Pagination,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    pub page: u32,
    #[serde(rename = "pageSize")]
    pub page_size: u32,
    #[serde(rename = "totalCount")]
    pub total_count: u64,
}

pub fn success<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, Json(Success { success: 1, data })).into_response()
}

pub fn ok<T: Serialize>(data: T) -> Response {
    success(StatusCode::OK, data)
}

pub fn paginated<T: Serialize>(data: Vec<T>, pagination: Pagination) -> Response {
    let page = Paginated {
        success: 1,
        data,
        pagination,
    };
    (StatusCode::OK, Json(page)).into_response()
}
