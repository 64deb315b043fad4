//! The parts of OCTO `GET /products` that Seyaha uses. Unknown fields are ignored (real
//! suppliers send many); the fields we use are type-checked, so a malformed product is
//! rejected with a reason instead of being half-imported.

use serde::{Deserialize, Deserializer};

/// `null` and absence both mean "empty" for the arrays we read.
fn nullable_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    #[serde(rename = "internalName")]
    pub internal_name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(rename = "defaultCurrency", default)]
    pub default_currency: Option<String>,
    #[serde(deserialize_with = "nullable_vec")]
    pub options: Vec<ProductOption>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProductOption {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(rename = "internalName", default)]
    pub internal_name: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub units: Vec<Unit>,
    /// Set when the product is priced per booking.
    #[serde(rename = "pricingFrom", default, deserialize_with = "nullable_vec")]
    pub pricing_from: Vec<Pricing>,
    /// The legacy form Seyaha's docs describe: `option.pricing[].unitType`.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub pricing: Vec<LegacyUnitPricing>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Unit {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub unit_type: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(rename = "internalName", default)]
    pub internal_name: Option<String>,
    #[serde(rename = "pricingFrom", default, deserialize_with = "nullable_vec")]
    pub pricing_from: Vec<Pricing>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pricing {
    pub retail: i64,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(rename = "currencyPrecision", default)]
    pub currency_precision: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LegacyUnitPricing {
    #[serde(rename = "unitType", default)]
    pub unit_type: Option<String>,
    #[serde(default)]
    pub retail: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(rename = "currencyPrecision", default)]
    pub currency_precision: Option<u32>,
}
