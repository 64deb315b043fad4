//! From the raw `GET /products` body to mapped activities, in one streaming pass: each
//! product is taken as a borrowed slice of the body, written in canonical form (RFC 8785)
//! once, hashed on its own and into the payload hash, then parsed into the typed model,
//! validated and mapped. No JSON tree of the catalog is ever built, so peak memory stays near
//! the body size.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::canonical::write_canonical;

use crate::domain::{
    Activity, ContentHash, ExternalSync, Price, Rejection, Timestamp, UnitPrice, Variation, VariationPricing, VariationSync,
};
use crate::octo::models::{Pricing, Product, ProductOption};

/// Longest `internalName` accepted (it is part of a storage sort key: DynamoDB allows 1024 bytes).
const MAX_INTERNAL_NAME_LEN: usize = 512;
/// Longest OCTO product and option id accepted: the product id is part of a DynamoDB index
/// partition key (2048 bytes at most, with the integration id and a prefix), option ids are
/// matched against notify bodies (256 characters at most).
const MAX_PRODUCT_ID_LEN: usize = 1024;
const MAX_OPTION_ID_LEN: usize = 256;
/// Largest mapped activity accepted, as JSON: a stored item must stay under DynamoDB's 400 KB
/// with its keys and attribute names, so one oversized product is rejected, not the sync.
pub const MAX_ACTIVITY_BYTES: usize = 300 * 1024;

/// Why a body is not a products array at all (the whole sync fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("GET /products did not return JSON")]
    NotJson,
    #[error("GET /products did not return an OCTO products array")]
    NotArray,
}

/// A parsed catalog: the payload hash and every product, accepted or rejected.
#[derive(Debug)]
pub struct ParsedCatalog {
    /// SHA-256 hex of the canonical JSON of the whole array.
    pub payload_hash: ContentHash,
    /// Accepted products mapped to activities (active, stamped with `now`).
    pub activities: Vec<Activity>,
    pub rejections: Vec<Rejection>,
}

pub fn parse_catalog(body: &[u8], now: Timestamp) -> Result<ParsedCatalog, CatalogError> {
    let mut state = Builder {
        payload: Sha256::new(),
        canonical: Vec::with_capacity(4096),
        count: 0,
        activities: Vec::new(),
        rejections: Vec::new(),
        names: HashSet::new(),
        product_ids: HashSet::new(),
        now,
    };
    // Borrowed raw values need the body as text; invalid UTF-8 is not JSON.
    let body = std::str::from_utf8(body).map_err(|_| CatalogError::NotJson)?;
    let mut deserializer = serde_json::Deserializer::from_str(body);
    match deserializer.deserialize_seq(ProductsVisitor(&mut state)) {
        Ok(()) => {}
        Err(error) if error.is_data() => return Err(CatalogError::NotArray),
        Err(_) => return Err(CatalogError::NotJson),
    }
    deserializer.end().map_err(|_| CatalogError::NotJson)?;
    state.payload.update(if state.count == 0 { b"[]".as_slice() } else { b"]".as_slice() });
    Ok(ParsedCatalog {
        payload_hash: ContentHash::from_digest(state.payload.finalize().into()),
        activities: state.activities,
        rejections: state.rejections,
    })
}

struct Builder {
    payload: Sha256,
    canonical: Vec<u8>,
    count: usize,
    activities: Vec<Activity>,
    rejections: Vec<Rejection>,
    names: HashSet<String>,
    product_ids: HashSet<String>,
    now: Timestamp,
}

impl Builder {
    fn add(&mut self, raw: &RawValue) -> Result<(), String> {
        // The canonical form of an array is its canonical elements joined by commas.
        self.canonical.clear();
        write_canonical(&mut serde_json::Deserializer::from_str(raw.get()), &mut self.canonical).map_err(|e| e.to_string())?;
        self.payload.update(if self.count == 0 { b"[".as_slice() } else { b",".as_slice() });
        self.payload.update(&self.canonical);
        let index = self.count;
        self.count += 1;
        let content_hash = ContentHash::of(&self.canonical);
        match self.accept(raw, content_hash) {
            Ok(activity) => self.activities.push(activity),
            Err(reason) => {
                let ids = serde_json::from_str::<ProductIds>(raw.get()).unwrap_or_default();
                self.rejections.push(Rejection { index, product_id: ids.id.as_text(), internal_name: ids.internal_name.as_text(), reason });
            }
        }
        Ok(())
    }

    fn accept(&mut self, raw: &RawValue, content_hash: ContentHash) -> Result<Activity, String> {
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        let product: Product = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let reason = e.inner().to_string();
            // serde_json appends " at line L column C"; the path says where already.
            let reason = reason.split(" at line ").next().unwrap_or(&reason).to_owned();
            if path == "." { reason } else { format!("{path}: {reason}") }
        })?;
        validate(&product)?;
        if self.names.contains(&product.internal_name) {
            return Err(format!("internalName: duplicate of an earlier product ({:?})", product.internal_name));
        }
        if self.product_ids.contains(&product.id) {
            return Err(format!("id: duplicate of an earlier product ({:?})", product.id));
        }
        self.names.insert(product.internal_name.clone());
        self.product_ids.insert(product.id.clone());
        let activity = map_product(product, content_hash, self.now);
        let size = serde_json::to_vec(&activity).map(|json| json.len()).unwrap_or(usize::MAX);
        if size > MAX_ACTIVITY_BYTES {
            return Err(format!("product: too large to store ({size} bytes once mapped; at most {MAX_ACTIVITY_BYTES})"));
        }
        Ok(activity)
    }
}

/// What a rejection reports about a product that did not parse.
#[derive(Default, Deserialize)]
struct ProductIds {
    #[serde(default)]
    id: Option<Value>,
    #[serde(rename = "internalName", default)]
    internal_name: Option<Value>,
}

trait AsText {
    fn as_text(&self) -> Option<String>;
}

impl AsText for Option<Value> {
    fn as_text(&self) -> Option<String> {
        self.as_ref().and_then(Value::as_str).map(str::to_owned)
    }
}

fn validate(product: &Product) -> Result<(), String> {
    if product.id.trim().is_empty() {
        return Err("id: must not be empty".into());
    }
    if product.id.len() > MAX_PRODUCT_ID_LEN {
        return Err(format!("id: must be at most {MAX_PRODUCT_ID_LEN} bytes"));
    }
    let name = &product.internal_name;
    if name.trim().is_empty() {
        return Err("internalName: must not be empty".into());
    }
    if name.len() > MAX_INTERNAL_NAME_LEN || name.chars().any(char::is_control) {
        return Err(format!("internalName: must be at most {MAX_INTERNAL_NAME_LEN} bytes without control characters"));
    }
    if product.options.is_empty() {
        return Err("options: must contain at least one option".into());
    }
    let mut option_ids = HashSet::new();
    for (i, option) in product.options.iter().enumerate() {
        if option.id.trim().is_empty() {
            return Err(format!("options[{i}].id: must not be empty"));
        }
        if option.id.len() > MAX_OPTION_ID_LEN {
            return Err(format!("options[{i}].id: must be at most {MAX_OPTION_ID_LEN} bytes"));
        }
        if !option_ids.insert(option.id.as_str()) {
            return Err(format!("options[{i}].id: duplicate option id {:?}", option.id));
        }
    }
    Ok(())
}

/// OCTO product -> Seyaha activity: keyed by `internalName`, `title` -> `activity_title`
/// (fallback `internalName`), options -> variations with unit prices.
fn map_product(product: Product, content_hash: ContentHash, now: Timestamp) -> Activity {
    let currency = product.default_currency.clone();
    let activity_title = product.title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| product.internal_name.clone());
    let variations = product.options.into_iter().map(|option| map_option(option, currency.as_deref())).collect();
    Activity {
        internal_name: product.internal_name,
        activity_title,
        external_sync: ExternalSync { external_id: product.id },
        variations,
        is_active: true,
        content_hash,
        updated_at: now,
    }
}

/// The "from" price in the product's default currency, else the first one.
fn pick_price(prices: &[Pricing], currency: Option<&str>) -> Option<Price> {
    let chosen = prices.iter().find(|p| currency.is_some() && p.currency.as_deref() == currency).or_else(|| prices.first())?;
    Some(Price { retail: chosen.retail, currency: chosen.currency.clone(), currency_precision: chosen.currency_precision })
}

fn map_option(option: ProductOption, currency: Option<&str>) -> Variation {
    let mut units: Vec<UnitPrice> = option
        .units
        .iter()
        .filter_map(|unit| {
            let unit_type = unit.unit_type.clone()?;
            Some(UnitPrice {
                unit_type,
                label: unit.title.clone().or_else(|| unit.internal_name.clone()).or_else(|| unit.id.clone()),
                price: pick_price(&unit.pricing_from, currency),
            })
        })
        .collect();
    // The legacy `option.pricing[].unitType` form fills in types and prices the units lack.
    for legacy in &option.pricing {
        let (Some(unit_type), Some(retail)) = (&legacy.unit_type, legacy.retail) else {
            continue;
        };
        let price = Price { retail, currency: legacy.currency.clone(), currency_precision: legacy.currency_precision };
        match units.iter_mut().find(|u| &u.unit_type == unit_type) {
            Some(unit) if unit.price.is_none() => unit.price = Some(price),
            Some(_) => {}
            None => units.push(UnitPrice { unit_type: unit_type.clone(), label: None, price: Some(price) }),
        }
    }
    let title =
        option.title.clone().or_else(|| option.internal_name.clone()).filter(|t| !t.trim().is_empty()).unwrap_or_else(|| option.id.clone());
    Variation {
        title,
        external_sync: VariationSync { external_option_id: option.id },
        pricing: VariationPricing { units, per_booking: pick_price(&option.pricing_from, currency) },
    }
}

struct ProductsVisitor<'a>(&'a mut Builder);

impl<'de> Visitor<'de> for ProductsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of OCTO products")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Each element stays a slice of the body: nothing is copied or built yet.
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            self.0.add(raw).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(0)
    }

    fn parse(value: &Value) -> ParsedCatalog {
        parse_catalog(value.to_string().as_bytes(), now()).unwrap()
    }

    #[test]
    fn the_hash_ignores_key_order_and_whitespace_but_not_content() {
        let a = br#"[{"id":"p1","internalName":"one","options":[{"id":"DEFAULT"}],"title":"One"}]"#;
        let b = b"[ {\"title\" : \"One\", \"options\": [ {\"id\": \"DEFAULT\"} ],\n \"internalName\":\"one\", \"id\":\"p1\"} ]";
        let c = br#"[{"id":"p1","internalName":"one","options":[{"id":"DEFAULT"}],"title":"One!"}]"#;
        let (a, b, c) = (parse_catalog(a, now()).unwrap(), parse_catalog(b, now()).unwrap(), parse_catalog(c, now()).unwrap());
        assert_eq!(a.payload_hash, b.payload_hash);
        assert_eq!(a.activities[0].content_hash, b.activities[0].content_hash);
        assert_ne!(a.payload_hash, c.payload_hash);
    }

    #[test]
    fn the_payload_hash_is_sha256_of_the_rfc8785_form() {
        let body = br#"[{"b": 1.0, "a": "x"}, 2e1, []]"#;
        let parsed = parse_catalog(body, now()).unwrap();
        let canonical = br#"[{"a":"x","b":1},20,[]]"#;
        assert_eq!(parsed.payload_hash.to_string(), hex::encode(Sha256::digest(canonical)));
        assert_eq!(parsed.rejections.len(), 3, "none of them is a product");
        assert_eq!(parse_catalog(b"[]", now()).unwrap().payload_hash.to_string(), hex::encode(Sha256::digest(b"[]")));
    }

    #[test]
    fn maps_titles_variations_unit_types_and_prices() {
        let catalog = json!([{
            "id": "p1", "internalName": "desert-safari", "title": "Desert Safari", "defaultCurrency": "AED",
            "options": [
                {"id": "DEFAULT", "title": "Shared", "units": [
                    {"id": "adult", "type": "ADULT", "title": "Adult", "pricingFrom": [
                        {"retail": 900, "currency": "USD", "currencyPrecision": 2},
                        {"retail": 25000, "currency": "AED", "currencyPrecision": 2}
                    ]},
                    {"id": "child", "type": "CHILD"}
                ], "pricing": [{"unitType": "CHILD", "retail": 17500, "currency": "AED", "currencyPrecision": 2},
                               {"unitType": "INFANT", "retail": 0}]},
                {"id": "private", "internalName": "private-car", "pricingFrom": [{"retail": 60000, "currency": "AED", "currencyPrecision": 2}]}
            ],
            "someVendorField": {"ignored": true}
        }, {
            "id": "p2", "internalName": "no-title", "options": [{"id": "o"}]
        }]);
        let parsed = parse(&catalog);
        assert!(parsed.rejections.is_empty(), "{:?}", parsed.rejections);
        let safari = &parsed.activities[0];
        assert_eq!((safari.activity_title.as_str(), safari.external_sync.external_id.as_str()), ("Desert Safari", "p1"));
        let shared = &safari.variations[0];
        assert_eq!(shared.title, "Shared");
        let units: Vec<_> = shared.pricing.units.iter().map(|u| (u.unit_type.as_str(), u.price.as_ref().map(|p| p.retail))).collect();
        assert_eq!(units, vec![("ADULT", Some(25000)), ("CHILD", Some(17500)), ("INFANT", Some(0))]);
        let private = &safari.variations[1];
        assert_eq!(private.title, "private-car");
        assert_eq!(private.pricing.per_booking.as_ref().map(|p| p.retail), Some(60000));
        assert_eq!(parsed.activities[1].activity_title, "no-title", "title falls back to internalName");
    }

    #[test]
    fn rejects_bad_products_and_keeps_the_rest() {
        let catalog = json!([
            {"id": "ok", "internalName": "fine", "options": [{"id": "o"}]},
            {"id": "p-no-name", "options": [{"id": "o"}]},
            {"id": "p-empty-name", "internalName": " ", "options": [{"id": "o"}]},
            {"id": "p-no-options", "internalName": "lonely", "options": []},
            {"id": "p-bad-option", "internalName": "bad-option", "options": [{"title": "no id"}]},
            {"id": "p-dup", "internalName": "fine", "options": [{"id": "o"}]},
            {"id": "ok", "internalName": "same-id", "options": [{"id": "o"}]},
            {"id": "p-bad-price", "internalName": "bad-price", "options": [{"id": "o", "units": [{"type": "ADULT", "pricingFrom": [{"retail": "ten"}]}]}]},
            "not an object"
        ]);
        let parsed = parse(&catalog);
        assert_eq!(parsed.activities.len(), 1);
        let reasons: Vec<_> = parsed.rejections.iter().map(|r| (r.index, r.reason.as_str())).collect();
        assert!(reasons[0].1.contains("internalName"), "{reasons:?}");
        assert_eq!(reasons[1].1, "internalName: must not be empty");
        assert_eq!(reasons[2].1, "options: must contain at least one option");
        assert!(reasons[3].1.starts_with("options[0]"), "{reasons:?}");
        assert!(reasons[4].1.starts_with("internalName: duplicate"), "{reasons:?}");
        assert!(reasons[5].1.starts_with("id: duplicate"), "{reasons:?}");
        assert!(reasons[6].1.starts_with("options[0].units[0].pricingFrom[0].retail"), "{reasons:?}");
        assert_eq!(reasons[7].0, 8);
    }

    #[test]
    fn refuses_bodies_that_are_not_arrays() {
        assert_eq!(parse_catalog(b"<html>", now()).unwrap_err(), CatalogError::NotJson);
        assert_eq!(parse_catalog(b"{\"products\": []}", now()).unwrap_err(), CatalogError::NotArray);
        assert_eq!(parse_catalog(b"[1, 2", now()).unwrap_err(), CatalogError::NotJson);
        assert_eq!(parse_catalog(b"[] trailing", now()).unwrap_err(), CatalogError::NotJson);
    }
}
