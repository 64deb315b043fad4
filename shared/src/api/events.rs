//! `POST /{id}/octo/events`: what a partner's OCTO platform pushes by itself, read into an
//! [`OctoEvent`] (what happens next is the service's business). Two families of bodies:
//! - a **webhook delivery** (OCTO Cloud / Ventrata): `{"webhook": {"event": ...}, ...}`;
//! - a **notification** (the OCTO notifications capability): the type in `notificationType`
//!   (or `type`), case-insensitive, its payload under `payload` (or `data`) or at the top level.
//!
//! Unknown types and events are accepted and ignored: a partner's platform would otherwise
//! retry them forever. A known type without the fields it needs is a 400.

use serde_json::{Map, Value};

use super::notify::parse_notify;
use crate::domain::{LocalDateTime, OctoEvent};
use crate::sync::{AvailabilityPull, parse_date};

/// Longest OCTO product id accepted (the catalog parser's bound).
const MAX_PRODUCT_ID_LEN: usize = 1024;
/// Longest date range an `AVAILABILITY_UPDATE` may ask to pull (a year of calls at most).
pub const MAX_RANGE_DAYS: i64 = 366;

/// Reads an event body. Every problem is reported as `"field: reason"`.
pub fn parse_event(body: &Value) -> Result<OctoEvent, Vec<String>> {
    let Some(object) = body.as_object() else {
        return Err(vec!["body: must be a JSON object".into()]);
    };
    if let Some(webhook) = object.get("webhook").filter(|webhook| !webhook.is_null()) {
        let Some(event) = webhook.as_object().and_then(|webhook| webhook.get("event")) else {
            return Err(vec!["webhook.event: is required".into()]);
        };
        let Some(event) = event.as_str() else {
            return Err(vec!["webhook.event: must be a string".into()]);
        };
        return match event.to_ascii_lowercase().as_str() {
            "availability_update" => parse_notify(body).map(OctoEvent::AvailabilityUpdate),
            "booking_update" => {
                booking_slot(object.get("booking")).map(OctoEvent::AvailabilityChanged)
            }
            _ => Ok(OctoEvent::Ignored {
                what: format!("webhook event {}", clip(event)),
            }),
        };
    }
    // Each of these fields, when present, has its one type, whichever of them is used.
    let mut errors = Vec::new();
    for (key, expected) in [
        ("notificationType", "a string"),
        ("type", "a string"),
        ("payload", "an object"),
        ("data", "an object"),
    ] {
        let fits = |value: &Value| {
            if expected == "a string" {
                value.is_string()
            } else {
                value.is_object()
            }
        };
        if object
            .get(key)
            .is_some_and(|value| !value.is_null() && !fits(value))
        {
            errors.push(format!("{key}: must be {expected}"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let present = |key: &str| object.get(key).filter(|value| !value.is_null());
    let Some(kind) = present("notificationType")
        .or_else(|| present("type"))
        .and_then(Value::as_str)
    else {
        return Err(vec!["body: must be an OCTO webhook delivery (webhook.event) or notification (notificationType)".into()]);
    };
    let payload = present("payload")
        .or_else(|| present("data"))
        .and_then(Value::as_object)
        .unwrap_or(object);
    match kind.to_ascii_uppercase().as_str() {
        "PRODUCT_UPDATE" => product_id(payload, "payload.productId")
            .map(|product_id| OctoEvent::ProductUpdate { product_id }),
        "AVAILABILITY_UPDATE" => {
            let product = product_id(payload, "payload.productId");
            let dates = ["localDateStart", "localDateEnd"].map(|key| local_date(payload, key));
            let mut errors: Vec<String> = dates
                .iter()
                .filter_map(|date| date.as_ref().err().cloned())
                .collect();
            if let [Ok(start), Ok(end)] = &dates {
                if end < start {
                    errors.push("payload.localDateEnd: must not be before localDateStart".into());
                } else if (*end - *start).whole_days() >= MAX_RANGE_DAYS {
                    errors.push(format!(
                        "payload.localDateEnd: the range must be at most {MAX_RANGE_DAYS} days"
                    ));
                }
            }
            match (product, dates) {
                (Ok(product_id), [Ok(from), Ok(to)]) if errors.is_empty() => {
                    Ok(OctoEvent::AvailabilityChanged(AvailabilityPull {
                        product_id,
                        option_id: None,
                        from,
                        to,
                    }))
                }
                (Ok(_), _) => Err(errors),
                (Err(mut product_errors), _) => {
                    product_errors.extend(errors);
                    Err(product_errors)
                }
            }
        }
        // Only a booking id: nothing to refresh without its product and date.
        "BOOKING_UPDATE" => Ok(OctoEvent::Ignored {
            what: "BOOKING_UPDATE notification".into(),
        }),
        _ => Ok(OctoEvent::Ignored {
            what: format!("notification {}", clip(kind)),
        }),
    }
}

/// A booking's slot: its product and option on the day of its availability.
fn booking_slot(booking: Option<&Value>) -> Result<AvailabilityPull, Vec<String>> {
    let Some(Value::Object(booking)) = booking else {
        return Err(vec!["booking: must be an object".into()]);
    };
    let product = product_id(booking, "booking.productId");
    let option = match booking.get("optionId") {
        Some(Value::String(option)) if !option.trim().is_empty() && option.len() <= 256 => {
            Ok(option.clone())
        }
        None | Some(Value::Null) => Err("booking.optionId: is required".to_owned()),
        Some(_) => {
            Err("booking.optionId: must be a non-empty string of at most 256 characters".to_owned())
        }
    };
    let start = booking
        .get("availability")
        .and_then(|availability| availability.get("localDateTimeStart"))
        .and_then(Value::as_str);
    let day = match start.map(LocalDateTime::parse) {
        Some(Ok(start)) => start
            .as_str()
            .get(..10)
            .and_then(parse_date)
            .ok_or_else(|| {
                "booking.availability.localDateTimeStart: must be a date-time".to_owned()
            }),
        Some(Err(error)) => Err(format!("booking.availability.localDateTimeStart: {error}")),
        None => Err("booking.availability.localDateTimeStart: is required".to_owned()),
    };
    match (product, option, day) {
        (Ok(product_id), Ok(option_id), Ok(day)) => Ok(AvailabilityPull {
            product_id,
            option_id: Some(option_id),
            from: day,
            to: day,
        }),
        (product, option, day) => {
            let mut errors = product.err().unwrap_or_default();
            errors.extend(option.err());
            errors.extend(day.err());
            Err(errors)
        }
    }
}

fn product_id(fields: &Map<String, Value>, name: &str) -> Result<String, Vec<String>> {
    match fields.get("productId") {
        None | Some(Value::Null) => Err(vec![format!("{name}: is required")]),
        Some(Value::String(id)) if id.trim().is_empty() => {
            Err(vec![format!("{name}: must not be empty")])
        }
        Some(Value::String(id)) if id.len() > MAX_PRODUCT_ID_LEN => Err(vec![format!(
            "{name}: must be at most {MAX_PRODUCT_ID_LEN} characters"
        )]),
        Some(Value::String(id)) => Ok(id.clone()),
        Some(_) => Err(vec![format!("{name}: must be a string")]),
    }
}

fn local_date(fields: &Map<String, Value>, key: &str) -> Result<time::Date, String> {
    match fields.get(key) {
        Some(Value::String(text)) => {
            parse_date(text).ok_or_else(|| format!("payload.{key}: must be a date like 2026-07-15"))
        }
        None | Some(Value::Null) => Err(format!("payload.{key}: is required")),
        Some(_) => Err(format!("payload.{key}: must be a string")),
    }
}

/// An event name from outside, cut for the answer.
fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_webhook_deliveries() {
        let availability = json!({"webhook": {"event": "availability_update"}, "productId": "p", "optionId": "o",
            "availability": {"id": "a", "localDateTimeStart": "2026-07-15T10:00:00+03:00", "vacancies": 1}});
        assert!(
            matches!(parse_event(&availability), Ok(OctoEvent::AvailabilityUpdate(update)) if update.product_id == "p")
        );
        let booking = json!({"webhook": {"event": "booking_update"},
            "booking": {"uuid": "b", "productId": "p", "optionId": "o", "availability": {"localDateTimeStart": "2026-07-15T10:00:00+04:00"}}});
        let day = time::macros::date!(2026 - 07 - 15);
        let pull = AvailabilityPull {
            product_id: "p".into(),
            option_id: Some("o".into()),
            from: day,
            to: day,
        };
        assert_eq!(
            parse_event(&booking),
            Ok(OctoEvent::AvailabilityChanged(pull))
        );
        let errors = parse_event(
            &json!({"webhook": {"event": "booking_update"}, "booking": {"productId": "p"}}),
        )
        .unwrap_err()
        .join("; ");
        assert!(
            errors.contains("booking.optionId: is required")
                && errors.contains("booking.availability.localDateTimeStart: is required"),
            "{errors}"
        );
        let other = json!({"webhook": {"event": "booking.cancelled"}});
        assert_eq!(
            parse_event(&other),
            Ok(OctoEvent::Ignored {
                what: "webhook event booking.cancelled".into()
            })
        );
        assert!(
            parse_event(&json!({"webhook": {"event": "booking_update"}}))
                .unwrap_err()
                .contains(&"booking: must be an object".into())
        );
        assert!(
            parse_event(&json!({"webhook": {}}))
                .unwrap_err()
                .contains(&"webhook.event: is required".into())
        );
    }

    #[test]
    fn reads_notifications_in_every_layout() {
        let expected = Ok(OctoEvent::ProductUpdate {
            product_id: "p1".into(),
        });
        for body in [
            json!({"notificationType": "PRODUCT_UPDATE", "payload": {"productId": "p1"}}),
            json!({"type": "product_update", "data": {"productId": "p1"}}),
            json!({"type": "Product_Update", "productId": "p1"}),
        ] {
            assert_eq!(parse_event(&body), expected, "{body}");
        }
        let range = json!({"type": "AVAILABILITY_UPDATE", "data": {"productId": "p1", "localDateStart": "2026-07-01", "localDateEnd": "2026-07-31"}});
        let pull = AvailabilityPull {
            product_id: "p1".into(),
            option_id: None,
            from: time::macros::date!(2026 - 07 - 01),
            to: time::macros::date!(2026 - 07 - 31),
        };
        assert_eq!(
            parse_event(&range),
            Ok(OctoEvent::AvailabilityChanged(pull))
        );
        assert!(matches!(
            parse_event(&json!({"type": "BOOKING_UPDATE", "data": {"uuid": "b"}})),
            Ok(OctoEvent::Ignored { .. })
        ));
        assert!(matches!(
            parse_event(&json!({"type": "SUPPLIER_UPDATE"})),
            Ok(OctoEvent::Ignored { .. })
        ));
    }

    #[test]
    fn a_known_type_without_its_fields_is_an_error() {
        let errors = |body: Value| parse_event(&body).unwrap_err().join("; ");
        assert!(
            errors(json!({"type": "PRODUCT_UPDATE", "data": {}}))
                .contains("payload.productId: is required")
        );
        assert!(
            errors(json!({"type": "PRODUCT_UPDATE", "data": {"productId": 5}}))
                .contains("payload.productId: must be a string")
        );
        let backwards = errors(
            json!({"type": "AVAILABILITY_UPDATE", "data": {"productId": "p", "localDateStart": "2026-07-31", "localDateEnd": "2026-07-01"}}),
        );
        assert!(backwards.contains("must not be before"), "{backwards}");
        let long = errors(
            json!({"type": "AVAILABILITY_UPDATE", "data": {"productId": "p", "localDateStart": "2026-01-01", "localDateEnd": "2027-01-02"}}),
        );
        assert!(long.contains("at most 366 days"), "{long}");
        let bad = errors(
            json!({"type": "AVAILABILITY_UPDATE", "data": {"localDateStart": "July", "localDateEnd": null}}),
        );
        assert!(
            bad.contains("payload.productId: is required")
                && bad.contains("payload.localDateStart: must be a date")
                && bad.contains("payload.localDateEnd: is required"),
            "{bad}"
        );
        assert!(errors(json!({"type": 7})).contains("type: must be a string"));
        assert!(
            errors(json!({"notificationType": "PRODUCT_UPDATE", "type": 7, "productId": "p"}))
                .contains("type: must be a string")
        );
        assert!(
            errors(json!({"type": "PRODUCT_UPDATE", "payload": {"productId": "p"}, "data": []}))
                .contains("data: must be an object")
        );
        assert!(errors(json!({"hello": "world"})).contains("must be an OCTO webhook delivery"));
        assert!(errors(json!([1])).contains("body: must be a JSON object"));
    }
}
