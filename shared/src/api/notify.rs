//! The availability notify body, in each shape partners send it, read into a validated
//! [`AvailabilityUpdate`] (what happens next is the service's business).

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::field::{Count, Field, FromJson, Problems, RequestBody, from_json_object, read};
use crate::domain::{AvailabilityUpdate, LocalDateTime, SlotStatus};

pub use crate::domain::MAX_COUNT;

/// Text an OCTO platform gives as an id, at most `MAX` bytes and not blank.
macro_rules! octo_text {
    ($($(#[$doc:meta])* $name:ident => $max:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl FromJson for $name {
            fn from_json(value: Value) -> Result<Self, String> {
                match value {
                    Value::String(text) if text.trim().is_empty() => Err("must not be empty".into()),
                    Value::String(text) if text.len() > $max => {
                        Err(format!("must be at most {} characters", $max))
                    }
                    Value::String(text) => Ok(Self(text)),
                    _ => Err("must be a string".into()),
                }
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .pattern(Some("\\S"))
                    .into()
            }
        }
        impl ToSchema for $name {}
    )*};
}

octo_text! {
    /// A product, option or availability id in a notify.
    OctoId => 256;
    /// A product id in an OCTO event (the catalog parser's bound).
    ProductRef => 1024;
}

/// What both notify shapes say of the slot itself.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SlotState {
    #[serde(rename = "localDateTimeStart", default)]
    #[schema(required = true)]
    pub local_date_time_start: Field<LocalDateTime>,
    #[serde(default)]
    #[schema(nullable)]
    pub status: Field<SlotStatus>,
    #[serde(default)]
    #[schema(nullable)]
    pub vacancies: Field<Count>,
    /// At least `vacancies` when both are given.
    #[serde(default)]
    #[schema(nullable)]
    pub capacity: Field<Count>,
}

/// The product and option a slot belongs to, as the OCTO shapes carry them: inside the
/// availability (Ventrata) or beside it (OCTO Cloud), each optional in either place.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SlotOwner {
    #[serde(rename = "productId", default)]
    #[schema(nullable)]
    pub product_id: Field<OctoId>,
    #[serde(rename = "optionId", default)]
    #[schema(nullable)]
    pub option_id: Field<OctoId>,
}

/// Notify, the flat Seyaha shape.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FlatNotify {
    #[serde(rename = "productId", default)]
    #[schema(required = true)]
    pub product_id: Field<OctoId>,
    #[serde(rename = "optionId", default)]
    #[schema(required = true)]
    pub option_id: Field<OctoId>,
    #[serde(rename = "availabilityId", default)]
    #[schema(required = true)]
    pub availability_id: Field<OctoId>,
    #[serde(flatten)]
    pub slot: SlotState,
}

/// Notify, the OCTO webhook shape: the slot under `availability` (its `id` is the availability
/// id), `productId` and `optionId` inside it (Ventrata) or beside it (OCTO Cloud, which also
/// sends a `supplier`, not read; inside wins), and an optional `webhook` whose `event` is
/// `availability_update`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WrappedNotify {
    #[serde(default)]
    #[schema(nullable)]
    pub webhook: Field<WebhookInfo>,
    #[serde(flatten)]
    pub owner: SlotOwner,
    #[schema(required = true)]
    #[serde(default)]
    pub availability: Field<WrappedAvailability>,
}

/// A webhook delivery's `webhook` object: only its `event` is read.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WebhookInfo {
    /// `availability_update` for a notify.
    #[serde(default)]
    #[schema(nullable)]
    pub event: Field<String>,
}

/// The availability of an OCTO webhook delivery.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WrappedAvailability {
    #[schema(required = true)]
    #[serde(default)]
    pub id: Field<OctoId>,
    #[serde(flatten)]
    pub owner: SlotOwner,
    #[serde(flatten)]
    pub slot: SlotState,
}

from_json_object!(WebhookInfo, WrappedAvailability);

/// A notify body in either shape, told apart by an `availability` or `webhook` key.
#[derive(Debug)]
pub enum NotifyBody {
    Flat(FlatNotify),
    Wrapped(WrappedNotify),
}

impl<'de> Deserialize<'de> for NotifyBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let wrapped = value.get("availability").is_some() || value.get("webhook").is_some();
        let body = if wrapped {
            serde_json::from_value(value).map(Self::Wrapped)
        } else {
            serde_json::from_value(value).map(Self::Flat)
        };
        body.map_err(serde::de::Error::custom)
    }
}

super::openapi::any_of_schema!(
    NotifyBody,
    "Either notify shape: flat, or an OCTO webhook delivery's availability.",
    [FlatNotify, WrappedNotify]
);

/// A slot and what it belongs to, read alike in both shapes.
struct SlotFields {
    product_id: Field<OctoId>,
    option_id: Field<OctoId>,
    availability_id: (&'static str, Field<OctoId>),
    slot: SlotState,
}

impl SlotFields {
    fn validate(self, problems: &mut Problems) -> Option<AvailabilityUpdate> {
        // OCTO payloads send `null` for what they do not know: the same as leaving it out.
        let text = |field: Field<OctoId>, name: &str, problems: &mut Problems| {
            field
                .null_as_absent()
                .required(name, problems)
                .map(|id| id.0)
        };
        let product_id = text(self.product_id, "productId", problems);
        let option_id = text(self.option_id, "optionId", problems);
        let (availability_key, availability_id) = self.availability_id;
        let availability_id = text(availability_id, availability_key, problems);
        let SlotState {
            local_date_time_start,
            status,
            vacancies,
            capacity,
        } = self.slot;
        let start = local_date_time_start
            .null_as_absent()
            .required("localDateTimeStart", problems);
        let status = status.null_as_absent().optional("status", problems);
        let vacancies = vacancies.null_as_absent().optional("vacancies", problems);
        let capacity = capacity.null_as_absent().optional("capacity", problems);
        if let (Some(Count(vacancies)), Some(Count(capacity))) = (vacancies, capacity)
            && vacancies > capacity
        {
            problems.add::<()>("vacancies", "must not exceed capacity");
        }
        Some(AvailabilityUpdate {
            product_id: product_id?,
            option_id: option_id?,
            availability_id: availability_id?,
            local_date_time_start: start?,
            status,
            vacancies: vacancies.map(|count| count.0),
            capacity: capacity.map(|count| count.0),
        })
    }
}

impl WrappedNotify {
    /// The `webhook` a notify accepts: none, or one whose event is absent or `availability_update`.
    fn check_webhook(webhook: Field<WebhookInfo>, problems: &mut Problems) {
        let Some(webhook) = webhook.null_as_absent().optional("webhook", problems) else {
            return;
        };
        // `{}` or `5` is not an event name (schemathesis found this one accepted).
        match webhook
            .event
            .null_as_absent()
            .optional("webhook.event", problems)
        {
            Some(event) if event != "availability_update" => {
                problems.add::<()>("webhook.event", "must be availability_update");
            }
            _ => {}
        }
    }
}

impl RequestBody for NotifyBody {
    type Valid = AvailabilityUpdate;
    const CLOSED: bool = false;

    fn validate(self, problems: &mut Problems) -> Option<AvailabilityUpdate> {
        match self {
            Self::Flat(flat) => SlotFields {
                product_id: flat.product_id,
                option_id: flat.option_id,
                availability_id: ("availabilityId", flat.availability_id),
                slot: flat.slot,
            }
            .validate(problems),
            Self::Wrapped(wrapped) => {
                WrappedNotify::check_webhook(wrapped.webhook, problems);
                let availability = wrapped.availability.null_as_absent();
                if !availability.is_present() {
                    return problems.add("availability", "must be an object");
                }
                let availability = availability.optional("availability", problems)?;
                // Inside the availability wins over beside it, and is named inside; one beside
                // it that is not valid is reported even then (the document allows no such body).
                let mut inside_or_beside =
                    |inside: Field<OctoId>, beside: Field<OctoId>, name: &str| {
                        let inside = inside.null_as_absent();
                        if inside.is_present() {
                            beside.null_as_absent().optional(name, problems);
                            inside
                        } else {
                            beside
                        }
                    };
                let product_id = inside_or_beside(
                    availability.owner.product_id,
                    wrapped.owner.product_id,
                    "productId",
                );
                let option_id = inside_or_beside(
                    availability.owner.option_id,
                    wrapped.owner.option_id,
                    "optionId",
                );
                let mut inside = Problems::inside("availability");
                let update = SlotFields {
                    product_id,
                    option_id,
                    availability_id: ("id", availability.id),
                    slot: availability.slot,
                }
                .validate(&mut inside);
                problems.extend(inside);
                update
            }
        }
    }
}

/// Reads a notify body in either accepted shape. Every problem is reported as
/// `"field: reason"`; fields of the wrapper are named `availability.<field>`.
pub fn parse_notify(body: &Value) -> Result<AvailabilityUpdate, Vec<String>> {
    read::<NotifyBody>(body.clone())
}

/// The most slots one batch notify carries. A slot object is about 200 bytes, so the 64 KiB
/// body limit admits about 300; this keeps a batch one DynamoDB BatchWriteItem series of at
/// most 20 requests whatever the body limit is set to.
pub const MAX_BATCH_ITEMS: usize = 500;

/// `POST /{id}/availability/notify-batch`: 1 to 500 notify bodies, each read on its own.
pub struct NotifyBatch;

impl utoipa::PartialSchema for NotifyBatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let item = utoipa::openapi::Ref::from_schema_name(<NotifyBody as ToSchema>::name());
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(item)
            .min_items(Some(1))
            .max_items(Some(MAX_BATCH_ITEMS))
            .description(Some(
                "1 to 500 notify objects, each in either notify shape.",
            ))
            .into()
    }
}

impl ToSchema for NotifyBatch {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            <NotifyBody as ToSchema>::name().into(),
            <NotifyBody as utoipa::PartialSchema>::schema(),
        ));
        <NotifyBody as ToSchema>::schemas(schemas);
    }
}

/// What each item of a batch became: the update, or its problems.
pub type BatchItems = Vec<Result<AvailabilityUpdate, Vec<String>>>;

impl NotifyBatch {
    /// The batch itself is refused (`Err`) when it is not a non-empty array of at most
    /// [`MAX_BATCH_ITEMS`], or when no item is valid (every item's problems, prefixed
    /// `[index].`); otherwise each item is read on its own, so one bad item does not reject
    /// the rest.
    pub fn read(body: Value) -> Result<BatchItems, Vec<String>> {
        let Value::Array(items) = body else {
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
        let items: BatchItems = items.into_iter().map(read::<NotifyBody>).collect();
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
}

/// [`NotifyBatch::read`] of a borrowed body.
pub fn parse_notify_batch(body: &Value) -> Result<BatchItems, Vec<String>> {
    NotifyBatch::read(body.clone())
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
        let mut blank_beside = both.clone();
        blank_beside["productId"] = json!(" ");
        assert!(
            parse_notify(&blank_beside)
                .unwrap_err()
                .join("; ")
                .contains("productId: must not be empty"),
            "a bad value beside is refused even when the one inside wins"
        );
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
