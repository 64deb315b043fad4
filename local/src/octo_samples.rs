//! Builders for realistic OCTO `GET /products` payloads, with the content and pricing
//! capabilities: the demo supplier's catalog, the fake supplier in tests and the benchmarks'
//! generated catalogs all come from here, so they share one shape. (Not part of the service
//! library: only the demo supplier and the tests use it.)

use serde_json::{Value, json};

/// A price in minor units (fils for AED, precision 2).
pub fn price(retail: i64) -> Value {
    json!({ "original": retail, "retail": retail, "net": retail * 80 / 100, "currency": "AED", "currencyPrecision": 2, "includedTaxes": [] })
}

pub fn unit(id: &str, kind: &str, title: &str, retail: i64, min_age: u32, max_age: u32) -> Value {
    json!({
        "id": id,
        "internalName": title,
        "reference": null,
        "type": kind,
        "title": title,
        "restrictions": { "minAge": min_age, "maxAge": max_age, "idRequired": false, "minQuantity": null, "maxQuantity": null, "paxCount": 1, "accompaniedBy": [] },
        "requiredContactFields": [],
        "pricingFrom": [price(retail)]
    })
}

pub fn option(id: &str, title: &str, start_times: &[&str], units: Vec<Value>) -> Value {
    json!({
        "id": id,
        "default": id == "DEFAULT",
        "internalName": title,
        "reference": null,
        "title": title,
        "availabilityLocalStartTimes": start_times,
        "cancellationCutoff": "24 hours",
        "cancellationCutoffAmount": 24,
        "cancellationCutoffUnit": "hour",
        "requiredContactFields": ["firstName", "lastName", "emailAddress"],
        "restrictions": { "minUnits": 1, "maxUnits": 12 },
        "units": units
    })
}

pub fn product(
    id: &str,
    internal_name: &str,
    title: &str,
    description: &str,
    duration_minutes: u32,
    options: Vec<Value>,
) -> Value {
    json!({
        "id": id,
        "internalName": internal_name,
        "reference": id.to_uppercase(),
        "locale": "en",
        "timeZone": "Asia/Dubai",
        "allowFreesale": false,
        "instantConfirmation": true,
        "instantDelivery": true,
        "availabilityRequired": true,
        "availabilityType": "START_TIME",
        "deliveryFormats": ["QRCODE", "PDF_URL"],
        "deliveryMethods": ["TICKET", "VOUCHER"],
        "redemptionMethod": "DIGITAL",
        "defaultCurrency": "AED",
        "availableCurrencies": ["AED"],
        "pricingPer": "UNIT",
        "title": title,
        "shortDescription": description,
        "description": description,
        "features": [],
        "faqs": [],
        "media": [],
        "locations": [],
        "categoryLabels": ["tours"],
        "durationMinutesFrom": duration_minutes,
        "durationMinutesTo": null,
        "commentary": [],
        "options": options
    })
}

/// A generated catalog of `count` products, each with `options` options (`DEFAULT`,
/// `option-1`, ...) of two units (ADULT, CHILD). Prices vary with the index so every product
/// hashes differently.
pub fn generated_catalog(count: usize, options: usize) -> Value {
    Value::Array((0..count).map(|i| generated_product(i, options)).collect())
}

/// Product `i` of [`generated_catalog`]: `product_{i}`, `product-{i}`, with `options` options of
/// two units each (a product at a time, for catalogs too large to build whole).
pub fn generated_product(i: usize, options: usize) -> Value {
    let retail = 10_000 + i as i64;
    let options = (0..options)
        .map(|o| {
            let option_id = if o == 0 {
                "DEFAULT".to_owned()
            } else {
                format!("option-{o}")
            };
            option(
                &option_id,
                &option_id,
                &["09:00", "14:00"],
                vec![
                    unit("adult", "ADULT", "Adult", retail, 12, 99),
                    unit("child", "CHILD", "Child", retail / 2, 3, 11),
                ],
            )
        })
        .collect();
    product(
        &format!("product_{i}"),
        &format!("product-{i}"),
        &format!("Product {i}"),
        "A generated product.",
        120,
        options,
    )
}
