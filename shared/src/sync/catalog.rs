//! From the `GET /products` body to mapped activities, as the body arrives: a small scanner
//! ([`ArraySplitter`]) cuts the top-level array into one product's bytes at a time (tracking
//! strings, escapes and depth, never building a tree), and each product is written in
//! canonical form (RFC 8785) once, hashed on its own and into the payload hash, then parsed
//! into the typed model, validated and mapped. Memory is one product (at most the per-product
//! cap; a larger one is skipped byte by byte and rejected) plus the names and ids seen, never
//! the body.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::canonical::write_canonical;

use crate::domain::{
    Activity, ContentHash, ExternalSync, Price, Rejection, Timestamp, UnitPrice, Variation,
    VariationPricing, VariationSync,
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

/// A whole body at once (a single product's answer, the benches): the streaming parser fed
/// one chunk, without a per-product cap.
pub fn parse_catalog(body: &[u8], now: Timestamp) -> Result<ParsedCatalog, CatalogError> {
    let mut parser = CatalogParser::new(now, usize::MAX);
    let mut items = Vec::new();
    parser.feed(body, &mut items)?;
    let payload_hash = parser.finish()?;
    let mut activities = Vec::new();
    let mut rejections = Vec::new();
    for item in items {
        match item {
            CatalogItem::Accepted { activity, .. } => activities.push(activity),
            CatalogItem::Rejected(rejection) => rejections.push(rejection),
        }
    }
    Ok(ParsedCatalog {
        payload_hash,
        activities,
        rejections,
    })
}

/// One product of the stream, in the order the partner sent them.
#[derive(Debug)]
pub enum CatalogItem {
    /// Mapped, with its position in the array and its size ([`Activity::stored_bytes`]).
    Accepted {
        activity: Activity,
        index: usize,
        bytes: u64,
    },
    Rejected(Rejection),
}

/// The streaming parser: feed it the body's chunks as they arrive, then [`finish`](Self::finish)
/// for the payload hash. The hash is the one of the whole array's canonical form, byte for byte
/// the same as when the body was read whole.
pub struct CatalogParser {
    splitter: ArraySplitter,
    builder: Builder,
}

impl CatalogParser {
    /// `max_product_bytes`: a product longer than this, as sent, is rejected unread.
    pub fn new(now: Timestamp, max_product_bytes: usize) -> Self {
        Self {
            splitter: ArraySplitter::new(max_product_bytes),
            builder: Builder {
                payload: Sha256::new(),
                canonical: Vec::with_capacity(4096),
                hashed: 0,
                index: 0,
                names: HashSet::new(),
                product_ids: HashSet::new(),
                now,
                max_product_bytes,
            },
        }
    }

    /// Reads one chunk; the products it completed are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<CatalogItem>) -> Result<(), CatalogError> {
        let builder = &mut self.builder;
        self.splitter.feed(chunk, |piece| {
            out.push(builder.add(piece)?);
            Ok(())
        })
    }

    /// Products read so far, accepted or rejected.
    pub fn products(&self) -> usize {
        self.builder.index
    }

    /// The body ended: the payload hash, if the array was complete.
    pub fn finish(self) -> Result<ContentHash, CatalogError> {
        self.splitter.finish()?;
        let mut payload = self.builder.payload;
        payload.update(if self.builder.hashed == 0 {
            b"[]".as_slice()
        } else {
            b"]".as_slice()
        });
        Ok(ContentHash::from_digest(payload.finalize().into()))
    }
}

/// One element of the top-level array.
enum Piece<'a> {
    /// Its bytes (trailing whitespace trimmed).
    Element(&'a [u8]),
    /// It was longer than the cap: its bytes were skipped.
    Oversized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the `[`.
    Start,
    /// After the `[`: an element or the `]` of an empty array.
    First,
    /// After a `,`: an element.
    Next,
    /// Inside an element.
    Element,
    /// After the closing `]`: only whitespace may follow.
    Done,
}

/// Cuts a JSON array arriving in arbitrary chunks into its elements. It only tracks what it
/// must to find where an element ends (inside a string or not, an escape, the nesting depth);
/// each element is checked in full by the JSON parser afterwards, so anything it lets through
/// that is not JSON is still refused. Its memory is one element, at most `max_element` bytes.
struct ArraySplitter {
    phase: Phase,
    depth: usize,
    in_string: bool,
    escaped: bool,
    element: Vec<u8>,
    /// The current element passed the cap: its bytes are dropped until it ends.
    oversized: bool,
    max_element: usize,
}

/// Deepest nesting inside a product: serde_json's limit (128 levels) less the array around it,
/// so the stream refuses exactly what the whole-body parse refused, and fails early.
const MAX_ELEMENT_DEPTH: usize = 127;

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

impl ArraySplitter {
    fn new(max_element: usize) -> Self {
        Self {
            phase: Phase::Start,
            depth: 0,
            in_string: false,
            escaped: false,
            element: Vec::new(),
            oversized: false,
            max_element,
        }
    }

    fn feed(
        &mut self,
        chunk: &[u8],
        mut emit: impl FnMut(Piece<'_>) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let mut i = 0;
        while i < chunk.len() {
            if self.phase != Phase::Element {
                let byte = chunk[i];
                i += 1;
                if is_whitespace(byte) {
                    continue;
                }
                self.phase = match (self.phase, byte) {
                    (Phase::Start, b'[') => Phase::First,
                    // Valid JSON that is not an array (as the whole-body parse answered).
                    (Phase::Start, b'{' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                        return Err(CatalogError::NotArray);
                    }
                    (Phase::First, b']') => Phase::Done,
                    (Phase::First | Phase::Next, b',' | b']') => return Err(CatalogError::NotJson),
                    (Phase::First | Phase::Next, _) => {
                        i -= 1;
                        Phase::Element
                    }
                    _ => return Err(CatalogError::NotJson),
                };
                continue;
            }
            // Inside an element: find where it ends in this chunk.
            let start = i;
            let mut end = None;
            while i < chunk.len() {
                let byte = chunk[i];
                i += 1;
                if self.in_string {
                    if self.escaped {
                        self.escaped = false;
                    } else if byte == b'\\' {
                        self.escaped = true;
                    } else if byte == b'"' {
                        self.in_string = false;
                    }
                    continue;
                }
                match byte {
                    b'"' => self.in_string = true,
                    b'[' | b'{' if self.depth >= MAX_ELEMENT_DEPTH => {
                        return Err(CatalogError::NotJson);
                    }
                    b'[' | b'{' => self.depth += 1,
                    b']' | b'}' if self.depth > 0 => self.depth -= 1,
                    b',' if self.depth > 0 => {}
                    b',' | b']' => {
                        end = Some(byte);
                        break;
                    }
                    b'}' => return Err(CatalogError::NotJson),
                    _ => {}
                }
            }
            let taken = match end {
                Some(_) => &chunk[start..i - 1],
                None => &chunk[start..i],
            };
            if !self.oversized {
                if self.element.len().saturating_add(taken.len()) > self.max_element {
                    self.oversized = true;
                    self.element = Vec::new();
                } else {
                    self.element.extend_from_slice(taken);
                }
            }
            if let Some(terminator) = end {
                if self.oversized {
                    emit(Piece::Oversized)?;
                } else {
                    let trimmed = self
                        .element
                        .iter()
                        .rposition(|b| !is_whitespace(*b))
                        .map_or(0, |last| last + 1);
                    emit(Piece::Element(&self.element[..trimmed]))?;
                }
                self.element.clear();
                self.oversized = false;
                self.phase = if terminator == b']' {
                    Phase::Done
                } else {
                    Phase::Next
                };
            }
        }
        Ok(())
    }

    /// The body ended: it must have been one whole array.
    fn finish(&self) -> Result<(), CatalogError> {
        if self.phase == Phase::Done {
            Ok(())
        } else {
            Err(CatalogError::NotJson)
        }
    }
}

struct Builder {
    payload: Sha256,
    canonical: Vec<u8>,
    /// Products in the payload hash (an oversized one, never read, is not).
    hashed: usize,
    /// Products seen: the next one's position in the array.
    index: usize,
    names: HashSet<String>,
    product_ids: HashSet<String>,
    now: Timestamp,
    max_product_bytes: usize,
}

impl Builder {
    fn add(&mut self, piece: Piece<'_>) -> Result<CatalogItem, CatalogError> {
        let index = self.index;
        self.index += 1;
        let raw = match piece {
            Piece::Element(bytes) => {
                std::str::from_utf8(bytes).map_err(|_| CatalogError::NotJson)?
            }
            Piece::Oversized => {
                let reason = format!(
                    "product: larger than {} bytes as sent; not read",
                    self.max_product_bytes
                );
                return Ok(CatalogItem::Rejected(Rejection {
                    index,
                    product_id: None,
                    internal_name: None,
                    reason,
                }));
            }
        };
        // The canonical form of an array is its canonical elements joined by commas. An element
        // that is not JSON makes the body not JSON, as the whole-body parse found.
        self.canonical.clear();
        let mut deserializer = serde_json::Deserializer::from_str(raw);
        write_canonical(&mut deserializer, &mut self.canonical)
            .map_err(|_| CatalogError::NotJson)?;
        deserializer.end().map_err(|_| CatalogError::NotJson)?;
        self.payload.update(if self.hashed == 0 {
            b"[".as_slice()
        } else {
            b",".as_slice()
        });
        self.payload.update(&self.canonical);
        self.hashed += 1;
        let content_hash = ContentHash::of(&self.canonical);
        Ok(match self.accept(raw, content_hash) {
            Ok((activity, bytes)) => CatalogItem::Accepted {
                activity,
                index,
                bytes,
            },
            Err(reason) => {
                let ids = serde_json::from_str::<ProductIds>(raw).unwrap_or_default();
                CatalogItem::Rejected(Rejection {
                    index,
                    product_id: ids.id.as_text(),
                    internal_name: ids.internal_name.as_text(),
                    reason,
                })
            }
        })
    }

    fn accept(&mut self, raw: &str, content_hash: ContentHash) -> Result<(Activity, u64), String> {
        let mut deserializer = serde_json::Deserializer::from_str(raw);
        let product: Product =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                let path = e.path().to_string();
                let reason = e.inner().to_string();
                // serde_json appends " at line L column C"; the path says where already.
                let reason = reason
                    .split(" at line ")
                    .next()
                    .unwrap_or(&reason)
                    .to_owned();
                if path == "." {
                    reason
                } else {
                    format!("{path}: {reason}")
                }
            })?;
        validate(&product)?;
        if self.names.contains(&product.internal_name) {
            return Err(format!(
                "internalName: duplicate of an earlier product ({:?})",
                product.internal_name
            ));
        }
        if self.product_ids.contains(&product.id) {
            return Err(format!(
                "id: duplicate of an earlier product ({:?})",
                product.id
            ));
        }
        self.names.insert(product.internal_name.clone());
        self.product_ids.insert(product.id.clone());
        let activity = map_product(product, content_hash, self.now);
        let size = activity.stored_bytes();
        if size > MAX_ACTIVITY_BYTES as u64 {
            return Err(format!(
                "product: too large to store ({size} bytes once mapped; at most {MAX_ACTIVITY_BYTES})"
            ));
        }
        Ok((activity, size))
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
        return Err(format!(
            "internalName: must be at most {MAX_INTERNAL_NAME_LEN} bytes without control characters"
        ));
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
            return Err(format!(
                "options[{i}].id: must be at most {MAX_OPTION_ID_LEN} bytes"
            ));
        }
        if !option_ids.insert(option.id.as_str()) {
            return Err(format!(
                "options[{i}].id: duplicate option id {:?}",
                option.id
            ));
        }
    }
    Ok(())
}

/// OCTO product -> Seyaha activity: keyed by `internalName`, `title` -> `activity_title`
/// (fallback `internalName`), options -> variations with unit prices.
fn map_product(product: Product, content_hash: ContentHash, now: Timestamp) -> Activity {
    let currency = product.default_currency.clone();
    let activity_title = product
        .title
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| product.internal_name.clone());
    let variations = product
        .options
        .into_iter()
        .map(|option| map_option(option, currency.as_deref()))
        .collect();
    Activity {
        internal_name: product.internal_name,
        activity_title,
        external_sync: ExternalSync {
            external_id: product.id,
        },
        variations,
        is_active: true,
        content_hash,
        updated_at: now,
    }
}

/// The "from" price in the product's default currency, else the first one.
fn pick_price(prices: &[Pricing], currency: Option<&str>) -> Option<Price> {
    let chosen = prices
        .iter()
        .find(|p| currency.is_some() && p.currency.as_deref() == currency)
        .or_else(|| prices.first())?;
    Some(Price {
        retail: chosen.retail,
        currency: chosen.currency.clone(),
        currency_precision: chosen.currency_precision,
    })
}

fn map_option(option: ProductOption, currency: Option<&str>) -> Variation {
    let mut units: Vec<UnitPrice> = option
        .units
        .iter()
        .filter_map(|unit| {
            let unit_type = unit.unit_type.clone()?;
            Some(UnitPrice {
                unit_type,
                label: unit
                    .title
                    .clone()
                    .or_else(|| unit.internal_name.clone())
                    .or_else(|| unit.id.clone()),
                price: pick_price(&unit.pricing_from, currency),
            })
        })
        .collect();
    // The legacy `option.pricing[].unitType` form fills in types and prices the units lack.
    for legacy in &option.pricing {
        let (Some(unit_type), Some(retail)) = (&legacy.unit_type, legacy.retail) else {
            continue;
        };
        let price = Price {
            retail,
            currency: legacy.currency.clone(),
            currency_precision: legacy.currency_precision,
        };
        match units.iter_mut().find(|u| &u.unit_type == unit_type) {
            Some(unit) if unit.price.is_none() => unit.price = Some(price),
            Some(_) => {}
            None => units.push(UnitPrice {
                unit_type: unit_type.clone(),
                label: None,
                price: Some(price),
            }),
        }
    }
    let title = option
        .title
        .clone()
        .or_else(|| option.internal_name.clone())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| option.id.clone());
    Variation {
        title,
        external_sync: VariationSync {
            external_option_id: option.id,
        },
        pricing: VariationPricing {
            units,
            per_booking: pick_price(&option.pricing_from, currency),
        },
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
        let c =
            br#"[{"id":"p1","internalName":"one","options":[{"id":"DEFAULT"}],"title":"One!"}]"#;
        let (a, b, c) = (
            parse_catalog(a, now()).unwrap(),
            parse_catalog(b, now()).unwrap(),
            parse_catalog(c, now()).unwrap(),
        );
        assert_eq!(a.payload_hash, b.payload_hash);
        assert_eq!(a.activities[0].content_hash, b.activities[0].content_hash);
        assert_ne!(a.payload_hash, c.payload_hash);
    }

    #[test]
    fn the_payload_hash_is_sha256_of_the_rfc8785_form() {
        let body = br#"[{"b": 1.0, "a": "x"}, 2e1, []]"#;
        let parsed = parse_catalog(body, now()).unwrap();
        let canonical = br#"[{"a":"x","b":1},20,[]]"#;
        assert_eq!(
            parsed.payload_hash.to_string(),
            hex::encode(Sha256::digest(canonical))
        );
        assert_eq!(parsed.rejections.len(), 3, "none of them is a product");
        assert_eq!(
            parse_catalog(b"[]", now())
                .unwrap()
                .payload_hash
                .to_string(),
            hex::encode(Sha256::digest(b"[]"))
        );
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
        assert_eq!(
            (
                safari.activity_title.as_str(),
                safari.external_sync.external_id.as_str()
            ),
            ("Desert Safari", "p1")
        );
        let shared = &safari.variations[0];
        assert_eq!(shared.title, "Shared");
        let units: Vec<_> = shared
            .pricing
            .units
            .iter()
            .map(|u| (u.unit_type.as_str(), u.price.as_ref().map(|p| p.retail)))
            .collect();
        assert_eq!(
            units,
            vec![
                ("ADULT", Some(25000)),
                ("CHILD", Some(17500)),
                ("INFANT", Some(0))
            ]
        );
        let private = &safari.variations[1];
        assert_eq!(private.title, "private-car");
        assert_eq!(
            private.pricing.per_booking.as_ref().map(|p| p.retail),
            Some(60000)
        );
        assert_eq!(
            parsed.activities[1].activity_title, "no-title",
            "title falls back to internalName"
        );
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
        let reasons: Vec<_> = parsed
            .rejections
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert!(reasons[0].1.contains("internalName"), "{reasons:?}");
        assert_eq!(reasons[1].1, "internalName: must not be empty");
        assert_eq!(reasons[2].1, "options: must contain at least one option");
        assert!(reasons[3].1.starts_with("options[0]"), "{reasons:?}");
        assert!(
            reasons[4].1.starts_with("internalName: duplicate"),
            "{reasons:?}"
        );
        assert!(reasons[5].1.starts_with("id: duplicate"), "{reasons:?}");
        assert!(
            reasons[6]
                .1
                .starts_with("options[0].units[0].pricingFrom[0].retail"),
            "{reasons:?}"
        );
        assert_eq!(reasons[7].0, 8);
    }

    /// Feeds `body` cut at `cuts` (positions, any order) and collects the items and the hash.
    pub(super) fn parse_in_chunks(
        body: &[u8],
        cuts: &[usize],
        max_product_bytes: usize,
    ) -> Result<(ContentHash, Vec<CatalogItem>), CatalogError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parser = CatalogParser::new(now(), max_product_bytes);
        let mut items = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([body.len()]) {
            parser.feed(&body[from..cut], &mut items)?;
            from = cut;
        }
        Ok((parser.finish()?, items))
    }

    #[test]
    fn a_product_over_the_cap_is_rejected_unread_and_the_rest_sync() {
        let big = json!({"id": "big", "internalName": "big", "options": [{"id": "o"}], "padding": "]}\\\",".repeat(200)});
        let small = json!({"id": "s", "internalName": "small", "options": [{"id": "o"}]});
        let body = serde_json::to_vec(&json!([small, big, small.clone()])).unwrap();
        let (_, items) = parse_in_chunks(&body, &[7, 300, 301, 700], 200).unwrap();
        let summary: Vec<String> = items
            .iter()
            .map(|item| match item {
                CatalogItem::Accepted { activity, .. } => activity.internal_name.clone(),
                CatalogItem::Rejected(r) => format!("{}: {}", r.index, r.reason),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "small",
                "1: product: larger than 200 bytes as sent; not read",
                "2: internalName: duplicate of an earlier product (\"small\")"
            ]
        );
    }

    #[test]
    fn a_broken_array_is_not_json_wherever_it_is_cut() {
        for body in [
            &b"[1,,2]"[..],
            b"[1,]",
            b"[{\"a\": }]",
            b"[1 2]",
            b"[{]}",
            b"[\"a\"}",
            b"[\"\xff\"]",
            b" ",
            b"",
            b"[[[[",
        ] {
            for cut in 0..=body.len() {
                assert_eq!(
                    parse_in_chunks(body, &[cut], usize::MAX).unwrap_err(),
                    CatalogError::NotJson,
                    "{:?} cut at {cut}",
                    String::from_utf8_lossy(body)
                );
            }
        }
        assert_eq!(
            parse_in_chunks(b" [ ] ", &[2], usize::MAX).unwrap().1.len(),
            0
        );
        // Nesting: as deep as the whole-body parse took, and no deeper.
        let nested =
            |depth: usize| format!("[{}{}]", "[".repeat(depth), "]".repeat(depth)).into_bytes();
        assert_eq!(
            parse_in_chunks(&nested(127), &[64], usize::MAX)
                .unwrap()
                .1
                .len(),
            1
        );
        assert_eq!(
            parse_in_chunks(&nested(128), &[64], usize::MAX).unwrap_err(),
            CatalogError::NotJson
        );
    }

    #[test]
    fn refuses_bodies_that_are_not_arrays() {
        assert_eq!(
            parse_catalog(b"<html>", now()).unwrap_err(),
            CatalogError::NotJson
        );
        assert_eq!(
            parse_catalog(b"{\"products\": []}", now()).unwrap_err(),
            CatalogError::NotArray
        );
        assert_eq!(
            parse_catalog(b"[1, 2", now()).unwrap_err(),
            CatalogError::NotJson
        );
        assert_eq!(
            parse_catalog(b"[] trailing", now()).unwrap_err(),
            CatalogError::NotJson
        );
    }
}

/// The streaming parser against the whole-body parse it replaced: for any products array and
/// any chunk boundaries, the same products in the same order and the same payload hash.
#[cfg(test)]
mod stream_properties {
    use std::fmt;

    use proptest::prelude::*;
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde_json::value::RawValue;
    use serde_json::{Value, json};

    use super::*;
    use crate::sync::canonical::canonicalize;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(0)
    }

    /// The parse this module did before it streamed: the whole body, each element a borrowed
    /// `RawValue` found by serde_json, fed to the same per-product code.
    fn whole_body_parse(body: &[u8]) -> Result<(ContentHash, Vec<CatalogItem>), CatalogError> {
        struct Elements<'a>(&'a mut Builder, &'a mut Vec<CatalogItem>);
        impl<'de> Visitor<'de> for Elements<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                    let item = self
                        .0
                        .add(Piece::Element(raw.get().as_bytes()))
                        .map_err(serde::de::Error::custom)?;
                    self.1.push(item);
                }
                Ok(())
            }
        }
        let mut parser = CatalogParser::new(now(), usize::MAX);
        let mut items = Vec::new();
        let body = std::str::from_utf8(body).map_err(|_| CatalogError::NotJson)?;
        let mut deserializer = serde_json::Deserializer::from_str(body);
        match deserializer.deserialize_seq(Elements(&mut parser.builder, &mut items)) {
            Ok(()) => {}
            Err(error) if error.is_data() => return Err(CatalogError::NotArray),
            Err(_) => return Err(CatalogError::NotJson),
        }
        deserializer.end().map_err(|_| CatalogError::NotJson)?;
        parser.splitter.phase = Phase::Done;
        Ok((parser.finish()?, items))
    }

    fn text() -> impl Strategy<Value = String> {
        // Quotes, backslashes, brackets, commas and multi-byte characters: what could fool a splitter.
        "[a-z \"\\\\\\[\\]{},:\u{e9}\u{20ac}\u{1f600}\u{0}-\u{1f}]{0,12}"
    }

    fn extra() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((text(), inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    fn element() -> impl Strategy<Value = Value> {
        let product = (text(), text(), prop::option::of(text()), prop::collection::vec(text(), 0..3), extra()).prop_map(
            |(id, name, title, options, extra)| {
                let options: Vec<Value> = options
                    .into_iter()
                    .map(|id| json!({"id": id, "units": [{"type": "ADULT", "pricingFrom": [{"retail": 100}]}]}))
                    .collect();
                json!({"id": id, "internalName": name, "title": title, "options": options, "vendor": extra})
            },
        );
        prop_oneof![4 => product, 1 => extra()]
    }

    fn catalog_text() -> impl Strategy<Value = Vec<u8>> {
        (prop::collection::vec(element(), 0..8), any::<bool>()).prop_map(|(elements, pretty)| {
            let value = Value::Array(elements);
            if pretty {
                serde_json::to_vec_pretty(&value).unwrap()
            } else {
                serde_json::to_vec(&value).unwrap()
            }
        })
    }

    fn same(a: &[CatalogItem], b: &[CatalogItem]) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn nesting_is_limited_where_the_whole_body_parse_limited_it() {
        for depth in [126, 127, 128, 129] {
            let body = format!("[{}{}]", "[".repeat(depth), "]".repeat(depth)).into_bytes();
            let old = whole_body_parse(&body).is_ok();
            let new = super::tests::parse_in_chunks(&body, &[depth], usize::MAX).is_ok();
            assert_eq!(new, old, "depth {depth}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn chunked_streaming_matches_the_whole_body_parse(body in catalog_text(), cuts in prop::collection::vec(any::<usize>(), 0..12)) {
            let (old_hash, old_items) = whole_body_parse(&body).unwrap();
            let (hash, items) = super::tests::parse_in_chunks(&body, &cuts, usize::MAX).unwrap();
            prop_assert_eq!(hash, old_hash);
            prop_assert!(same(&items, &old_items), "{:?}\n{:?}", items, old_items);
            // And the payload hash is that of the whole array's canonical form.
            prop_assert_eq!(hash, ContentHash::of(&canonicalize(&body).unwrap()));
        }

        #[test]
        fn bodies_that_are_not_arrays_fail_alike(body in prop::collection::vec(prop::sample::select(b" [],{}\"\\:01a".to_vec()), 0..16), cut in any::<usize>()) {
            let old = whole_body_parse(&body).map(|(hash, _)| hash);
            let new = super::tests::parse_in_chunks(&body, &[cut], usize::MAX).map(|(hash, _)| hash);
            // Where the old parse failed, the stream fails too (the exact class may differ for
            // a body that is neither JSON nor an array); where it passed, they agree.
            match old {
                Ok(hash) => prop_assert_eq!(new, Ok(hash)),
                Err(_) => prop_assert!(new.is_err(), "{:?} passed", String::from_utf8_lossy(&body)),
            }
        }
    }
}
