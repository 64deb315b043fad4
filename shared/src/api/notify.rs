//! The availability notify body: the flat Seyaha format and the OCTO webhook wrapper, read
//! into a validated [`AvailabilityUpdate`] (what happens next is the service's business).

use serde_json::{Map, Value};

use crate::domain::{AvailabilityUpdate, LocalDateTime, SlotStatus};

pub use crate::domain::MAX_COUNT;

/// Reads a notify body in either accepted format. Every problem is reported as
/// `"field: reason"`; fields of the wrapper are named `availability.<field>`.
pub fn parse_notify(body: &Value) -> Result<AvailabilityUpdate, Vec<String>> {
    let Some(object) = body.as_object() else {
        return Err(vec!["body: must be a JSON object".into()]);
    };
    if object.contains_key("availability") || object.contains_key("webhook") {
        let mut errors = Vec::new();
        // `"webhook": null` is no webhook (the document allows it; the stateful run sent it).
        if let Some(webhook) = object.get("webhook").filter(|webhook| !webhook.is_null()) {
            match webhook.as_object().map(|webhook| webhook.get("event")) {
                None => errors.push("webhook: must be an object".into()),
                Some(None | Some(Value::Null)) => {}
                Some(Some(Value::String(event))) if event == "availability_update" => {}
                Some(Some(Value::String(_))) => {
                    errors.push("webhook.event: must be availability_update".into())
                }
                // `{}` or `5` is not an event name (schemathesis found this one accepted).
                Some(Some(_)) => errors.push("webhook.event: must be a string".into()),
            }
        }
        let Some(availability) = object.get("availability").and_then(Value::as_object) else {
            errors.push("availability: must be an object".into());
            return Err(errors);
        };
        // Ventrata sends `productId` and `optionId` inside `availability`; OCTO Cloud beside it
        // (with `supplier`). Inside wins when both are there.
        return read(availability, Some(object), "availability.", "id", errors);
    }
    read(object, None, "", "availabilityId", Vec::new())
}

/// The most slots one batch notify carries. A slot object is about 200 bytes, so the 64 KiB
/// body limit admits about 300; this keeps a batch one DynamoDB BatchWriteItem series of at
/// most 20 requests whatever the body limit is set to.
pub const MAX_BATCH_ITEMS: usize = 500;

/// Reads a batch notify body: a JSON array of notify bodies (each in any accepted shape). The
/// batch itself is refused (`Err`) when it is not a non-empty array of at most
/// [`MAX_BATCH_ITEMS`], or when no item is valid (every item's problems, prefixed `[index].`);
/// otherwise each item is read on its own, so one bad item does not reject the rest.
#[allow(clippy::type_complexity)]
pub fn parse_notify_batch(
    body: &Value,
) -> Result<Vec<Result<AvailabilityUpdate, Vec<String>>>, Vec<String>> {
    let Some(items) = body.as_array() else {
        return Err(vec!["body: must be a JSON array of notify objects".into()]);
    };
    if items.is_empty() {
        return Err(vec!["body: must contain at least one notify object".into()]);
    }
    if items.len() > MAX_BATCH_ITEMS {
        return Err(vec![format!(
            "body: must contain at most {MAX_BATCH_ITEMS} notify objects (got {})",
            items.len()
        )]);
    }
    let items: Vec<_> = items.iter().map(parse_notify).collect();
    if items.iter().all(Result::is_err) {
        let errors = items.into_iter().enumerate().flat_map(|(index, item)| {
            item.err()
                .unwrap_or_default()
                .into_iter()
                .map(move |error| format!("[{index}].{error}"))
        });
        return Err(errors.collect());
    }
    Ok(items)
}

/// The keys a wrapper may carry beside `availability` instead of inside it.
const BESIDE_AVAILABILITY: [&str; 2] = ["productId", "optionId"];

fn read(
    fields: &Map<String, Value>,
    wrapper: Option<&Map<String, Value>>,
    prefix: &str,
    availability_key: &str,
    mut errors: Vec<String>,
) -> Result<AvailabilityUpdate, Vec<String>> {
    let lookup = |key: &str| {
        let beside = || {
            wrapper
                .filter(|_| BESIDE_AVAILABILITY.contains(&key))
                .and_then(|wrapper| wrapper.get(key))
        };
        fields
            .get(key)
            .filter(|value| !value.is_null())
            .or_else(beside)
    };
    let mut text = |key: &str| -> Option<String> {
        match lookup(key) {
            None | Some(Value::Null) => errors.push(format!("{prefix}{key}: is required")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.push(format!("{prefix}{key}: must not be empty"))
            }
            Some(Value::String(s)) if s.len() > 256 => {
                errors.push(format!("{prefix}{key}: must be at most 256 characters"))
            }
            Some(Value::String(s)) => return Some(s.clone()),
            Some(_) => errors.push(format!("{prefix}{key}: must be a string")),
        }
        None
    };
    let product_id = text("productId");
    let option_id = text("optionId");
    let availability_id = text(availability_key);
    let start = text("localDateTimeStart").and_then(|start| match LocalDateTime::parse(&start) {
        Ok(start) => Some(start),
        Err(error) => {
            errors.push(format!("{prefix}localDateTimeStart: {error}"));
            None
        }
    });
    let status = match fields.get("status") {
        None | Some(Value::Null) => None,
        Some(value) => match SlotStatus::parse(value.as_str().unwrap_or_default()) {
            Ok(status) => Some(status),
            Err(error) => {
                errors.push(format!("{prefix}status: {error}"));
                None
            }
        },
    };
    let mut count = |key: &str| match fields.get(key) {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n) if n <= MAX_COUNT => Some(n),
            Some(_) => {
                errors.push(format!("{prefix}{key}: must be at most {MAX_COUNT}"));
                None
            }
            None => {
                errors.push(format!("{prefix}{key}: must be a non-negative integer"));
                None
            }
        },
    };
    let vacancies = count("vacancies");
    let capacity = count("capacity");
    if let (Some(vacancies), Some(capacity)) = (vacancies, capacity)
        && vacancies > capacity
    {
        errors.push(format!("{prefix}vacancies: must not exceed capacity"));
    }
    match (product_id, option_id, availability_id, start) {
        (Some(product_id), Some(option_id), Some(availability_id), Some(local_date_time_start))
            if errors.is_empty() =>
        {
            Ok(AvailabilityUpdate {
                product_id,
                option_id,
                availability_id,
                local_date_time_start,
                status,
                vacancies,
                capacity,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn flat() -> Value {
        json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00+03:00"})
    }

    #[test]
    fn reads_the_flat_format() {
        let mut body = flat();
        body["status"] = json!("LIMITED");
        body["vacancies"] = json!(2);
        body["capacity"] = json!(10);
        let update = parse_notify(&body).unwrap();
        assert_eq!(
            (update.status, update.vacancies, update.capacity),
            (Some(SlotStatus::Limited), Some(2), Some(10))
        );
        assert_eq!(update.availability_id, "a");
    }

    #[test]
    fn reads_the_octo_webhook_wrapper() {
        let body = json!({
            "webhook": {"id": "w1", "event": "availability_update", "url": "https://x"},
            "availability": {"productId": "p", "optionId": "o", "id": "2026-07-15T10:00:00+03:00", "localDateTimeStart": "2026-07-15T10:00:00+03:00",
                             "localDateTimeEnd": "2026-07-15T12:00:00+03:00", "allDay": false, "status": "FREESALE", "vacancies": null, "capacity": null}
        });
        let update = parse_notify(&body).unwrap();
        assert_eq!(update.availability_id, "2026-07-15T10:00:00+03:00");
        assert_eq!(
            (update.status, update.vacancies),
            (Some(SlotStatus::Freesale), None)
        );
    }

    #[test]
    fn reports_each_invalid_field() {
        let cases = [
            (json!({}), "productId: is required"),
            (json!({"productId": 5}), "productId: must be a string"),
            (json!({"productId": ""}), "productId: must not be empty"),
            (
                json!({"localDateTimeStart": "2026-07-15T10:00:00"}),
                "localDateTimeStart: must be an RFC 3339 date-time with an offset",
            ),
            (json!({"status": "OPEN"}), "status: must be one of"),
            (
                json!({"vacancies": -1}),
                "vacancies: must be a non-negative integer",
            ),
            (
                json!({"capacity": 2.5}),
                "capacity: must be a non-negative integer",
            ),
            (
                json!({"vacancies": 5, "capacity": 3}),
                "vacancies: must not exceed capacity",
            ),
        ];
        for (patch, expected) in cases {
            let mut body = flat();
            for (key, value) in patch.as_object().unwrap() {
                body[key] = value.clone();
            }
            if patch.as_object().unwrap().is_empty() {
                body = json!({});
            }
            let errors = parse_notify(&body).unwrap_err().join("; ");
            assert!(errors.contains(expected), "{patch}: {errors}");
        }
        let wrapped =
            json!({"webhook": {"event": "booking_update"}, "availability": {"productId": "p"}});
        let errors = parse_notify(&wrapped).unwrap_err().join("; ");
        assert!(
            errors.contains("webhook.event: must be availability_update")
                && errors.contains("availability.id: is required"),
            "{errors}"
        );
        assert!(parse_notify(&json!([])).is_err());
        // An event that is not a string is not "absent" (schemathesis found `{}` accepted).
        let availability = json!({"id": "a", "productId": "p", "optionId": "o", "localDateTimeStart": "2026-07-15T10:00:00Z"});
        for event in [json!({}), json!(5), json!(["availability_update"])] {
            let body = json!({"webhook": {"event": event}, "availability": availability});
            assert!(
                parse_notify(&body)
                    .unwrap_err()
                    .join("; ")
                    .contains("webhook.event: must be a string"),
                "{event}"
            );
        }
        assert!(
            parse_notify(&json!({"webhook": {"event": null}, "availability": availability}))
                .is_ok()
        );
        assert!(parse_notify(&json!({"webhook": {}, "availability": availability})).is_ok());
        // The document lets `webhook` be null, and null is no webhook (the stateful run sent it).
        assert!(parse_notify(&json!({"webhook": null, "availability": availability})).is_ok());
        assert!(
            parse_notify(&json!({"webhook": "x", "availability": availability}))
                .unwrap_err()
                .join("; ")
                .contains("webhook: must be an object")
        );
    }

    #[test]
    fn reads_the_octo_cloud_shape_with_product_and_option_beside_the_availability() {
        let body = json!({
            "webhook": {"id": "w1", "event": "availability_update", "url": "https://x"},
            "supplier": {"id": "s1", "name": "Acme"},
            "productId": "p", "optionId": "o",
            "availability": {"id": "a", "localDateTimeStart": "2026-07-15T10:00:00+03:00", "status": "LIMITED", "vacancies": 2, "capacity": 9}
        });
        let update = parse_notify(&body).unwrap();
        assert_eq!(
            (
                update.product_id.as_str(),
                update.option_id.as_str(),
                update.availability_id.as_str()
            ),
            ("p", "o", "a")
        );
        assert_eq!((update.vacancies, update.capacity), (Some(2), Some(9)));
        // Inside wins over beside; missing in both places names the field in the wrapper.
        let mut both = body.clone();
        both["availability"]["productId"] = json!("inside");
        assert_eq!(parse_notify(&both).unwrap().product_id, "inside");
        let mut neither = body;
        neither.as_object_mut().unwrap().remove("optionId");
        assert!(
            parse_notify(&neither)
                .unwrap_err()
                .join("; ")
                .contains("availability.optionId: is required")
        );
        // Counts are bounded (schemathesis sent 2^63, over what the document allows).
        let huge = json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z", "capacity": 9_223_372_036_854_775_808u64});
        assert!(
            parse_notify(&huge)
                .unwrap_err()
                .join("; ")
                .contains("capacity: must be at most 1000000000")
        );
    }
}

#[cfg(test)]
mod batch {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_each_item_on_its_own_and_refuses_only_a_bad_batch() {
        let good = json!({"productId": "p", "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z"});
        let items = parse_notify_batch(&json!([good, {"productId": 5}])).unwrap();
        assert!(items[0].is_ok());
        assert!(
            items[1]
                .as_ref()
                .unwrap_err()
                .join("; ")
                .contains("productId: must be a string")
        );
        for (body, expected) in [
            (json!({}), "body: must be a JSON array"),
            (json!([]), "body: must contain at least one"),
            (
                Value::Array(vec![good.clone(); MAX_BATCH_ITEMS + 1]),
                "body: must contain at most 500",
            ),
            (
                json!([{"productId": 5}, {}]),
                "[0].productId: must be a string",
            ),
        ] {
            assert!(
                parse_notify_batch(&body)
                    .unwrap_err()
                    .join("; ")
                    .contains(expected),
                "{expected}"
            );
        }
        assert_eq!(
            parse_notify_batch(&Value::Array(vec![good; MAX_BATCH_ITEMS]))
                .unwrap()
                .len(),
            MAX_BATCH_ITEMS
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    proptest! {
        #[test]
        fn any_json_object_is_parsed_or_explained(
            product in proptest::option::of("\\PC{0,10}"), vacancies in any::<i64>(), capacity in any::<i64>(), status in "[A-Z_]{0,10}",
        ) {
            let body = json!({"productId": product, "optionId": "o", "availabilityId": "a", "localDateTimeStart": "2026-07-15T10:00:00Z",
                              "vacancies": vacancies, "capacity": capacity, "status": status});
            match parse_notify(&body) {
                Ok(update) => {
                    prop_assert!(update.vacancies <= update.capacity);
                    prop_assert!(vacancies >= 0 && capacity >= 0);
                }
                Err(errors) => prop_assert!(!errors.is_empty() && errors.iter().all(|e| e.contains(": "))),
            }
        }
    }
}
