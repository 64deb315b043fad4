//! A demo OCTO supplier served at `/demo/octo`, so a newcomer can register, approve, test and
//! (with the sync engine) sync a realistic catalog without any partner system. It honours the
//! auth header in both forms Seyaha sends: `Bearer <key>` and the raw key.

use crate::octo_samples::{option, product, unit};
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The credential the demo supplier accepts.
pub const DEMO_OCTO_KEY: &str = "demo-octo-key";

pub fn router() -> Router {
    Router::new().route("/products", get(list_products)).route("/products/{id}", get(get_product)).route("/supplier", get(supplier))
}

fn octo_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": code, "errorMessage": message }))).into_response()
}

/// The OCTO error answer for a request without the demo key, or `None` when it may pass.
fn refusal(headers: &HeaderMap) -> Option<Response> {
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok());
    match presented {
        None => Some(octo_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "No API key was sent")),
        Some(value) if value == DEMO_OCTO_KEY || value.strip_prefix("Bearer ") == Some(DEMO_OCTO_KEY) => None,
        Some(_) => Some(octo_error(StatusCode::FORBIDDEN, "FORBIDDEN", "The API key is invalid")),
    }
}

async fn list_products(headers: HeaderMap) -> Response {
    refusal(&headers).unwrap_or_else(|| axum::Json(catalog()).into_response())
}

async fn get_product(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(response) = refusal(&headers) {
        return response;
    }
    let catalog = catalog();
    let found = catalog.as_array().into_iter().flatten().find(|product| product["id"] == id.as_str());
    match found {
        Some(product) => axum::Json(product.clone()).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "INVALID_PRODUCT_ID", "errorMessage": "The productId was not recognised", "productId": id })),
        )
            .into_response(),
    }
}

async fn supplier(headers: HeaderMap) -> Response {
    if let Some(response) = refusal(&headers) {
        return response;
    }
    axum::Json(json!({
        "id": "demo-supplier",
        "name": "Demo Desert Tours",
        "endpoint": "/demo/octo",
        "contact": { "website": null, "email": "ops@demo.invalid", "telephone": null, "address": null }
    }))
    .into_response()
}

/// The demo catalog: an OCTO `GET /products` array with content and pricing.
pub fn catalog() -> Value {
    json!([
        product(
            "product_desert_safari",
            "desert-safari-standard",
            "Desert Safari Adventure",
            "Dune bashing, camel ride and a barbecue dinner under the stars.",
            360,
            vec![
                option(
                    "DEFAULT",
                    "Shared 4x4",
                    &["15:00"],
                    vec![unit("adult", "ADULT", "Adult", 25_000, 12, 99), unit("child", "CHILD", "Child", 17_500, 3, 11),]
                ),
                option(
                    "private",
                    "Private 4x4",
                    &["15:00", "16:00"],
                    vec![unit("adult", "ADULT", "Adult", 60_000, 12, 99), unit("child", "CHILD", "Child", 45_000, 3, 11),]
                ),
            ],
        ),
        product(
            "product_dhow_cruise",
            "dhow-cruise-marina",
            "Marina Dhow Dinner Cruise",
            "Two hours on a traditional dhow with an international buffet.",
            120,
            vec![option(
                "DEFAULT",
                "Upper deck",
                &["19:30"],
                vec![
                    unit("adult", "ADULT", "Adult", 19_900, 12, 99),
                    unit("child", "CHILD", "Child", 12_900, 4, 11),
                    unit("infant", "INFANT", "Infant", 0, 0, 3),
                ]
            )],
        ),
        product(
            "product_old_town_walk",
            "old-town-walking-tour",
            "Old Town Heritage Walk",
            "A guided walk through Al Fahidi, the abra crossing and the spice souk.",
            180,
            vec![
                option(
                    "DEFAULT",
                    "Morning walk",
                    &["09:00"],
                    vec![unit("adult", "ADULT", "Adult", 9_500, 12, 99), unit("senior", "SENIOR", "Senior", 7_500, 65, 120)]
                ),
                option("evening", "Evening walk", &["17:30"], vec![unit("adult", "ADULT", "Adult", 11_000, 12, 99)]),
            ],
        ),
        product(
            "product_balloon",
            "hot-air-balloon-sunrise",
            "Sunrise Hot Air Balloon",
            "An hour over the desert at sunrise, with falconry and breakfast.",
            240,
            vec![option(
                "DEFAULT",
                "Standard basket",
                &["05:00"],
                vec![unit("adult", "ADULT", "Adult", 119_500, 12, 99), unit("child", "CHILD", "Child", 109_500, 5, 11)]
            )],
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_an_octo_products_array() {
        let catalog = catalog();
        let products = catalog.as_array().unwrap();
        assert!(products.len() >= 3);
        for product in products {
            for field in ["id", "internalName", "title", "options", "availabilityType"] {
                assert!(!product[field].is_null(), "{field} missing");
            }
            for option in product["options"].as_array().unwrap() {
                assert!(option["id"].is_string());
                for unit in option["units"].as_array().unwrap() {
                    assert!(unit["type"].is_string());
                    assert!(unit["pricingFrom"][0]["retail"].is_i64());
                }
            }
        }
    }
}
