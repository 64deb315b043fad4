//! `POST /{id}/octo/events`: what a partner's OCTO platform pushes by itself, read into an
//! [`OctoEvent`] (what happens next is the service's business). Two families of bodies:
//! - a **webhook delivery** (OCTO Cloud / Ventrata): `{"webhook": {"event": ...}, ...}`;
//! - a **notification** (the OCTO notifications capability): the type in `notificationType`
//!   (or `type`), case-insensitive, its payload under `payload` (or `data`) or at the top level.
//!
//! Unknown types and events are accepted and ignored: a partner's platform would otherwise
//! retry them forever. A known type without the fields it needs is a 400.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::field::{Field, LocalDate, Problems, RequestBody, from_json_object, read};
use super::notify::{
    NotifyBody, OctoId, ProductRef, SlotOwner, WebhookInfo, WrappedAvailability, WrappedNotify,
};
use crate::domain::{AvailabilityPull, LocalDateTime, OctoEvent};

/// Longest date range an `AVAILABILITY_UPDATE` may ask to pull (a year of calls at most).
pub const MAX_RANGE_DAYS: i64 = 366;

/// A webhook delivery: `availability_update` carries a notify's fields (an `availability`
/// object), `booking_update` a `booking` with its product, option and slot; other events are
/// ignored, whatever else they carry.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OctoDelivery {
    /// `event`: `availability_update`, `booking_update`, or anything else (ignored).
    #[schema(required = true)]
    #[serde(default)]
    pub webhook: Field<WebhookInfo>,
    #[serde(flatten)]
    pub owner: SlotOwner,
    #[serde(default)]
    #[schema(nullable)]
    pub availability: Field<WrappedAvailability>,
    #[serde(default)]
    #[schema(nullable)]
    pub booking: Field<Booking>,
}

/// A `booking_update`'s booking: the slot it took.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Booking {
    #[serde(rename = "productId", default)]
    #[schema(required = true)]
    pub product_id: Field<ProductRef>,
    #[serde(rename = "optionId", default)]
    #[schema(required = true)]
    pub option_id: Field<OctoId>,
    #[schema(required = true)]
    #[serde(default)]
    pub availability: Field<BookedSlot>,
}

/// The slot of a booking: only its start is read.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BookedSlot {
    #[serde(rename = "localDateTimeStart", default)]
    #[schema(required = true)]
    pub local_date_time_start: Field<LocalDateTime>,
}

/// A notification: its type in `notificationType` (or `type`), case-insensitive, and its
/// payload under `payload` (or `data`) or at the top level. `PRODUCT_UPDATE` needs
/// `productId`; `AVAILABILITY_UPDATE` `productId`, `localDateStart` and `localDateEnd`; other
/// types are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OctoNotification {
    #[serde(rename = "notificationType", default)]
    #[schema(nullable)]
    pub notification_type: Field<String>,
    #[serde(rename = "type", default)]
    #[schema(nullable)]
    pub kind: Field<String>,
    #[serde(default)]
    #[schema(nullable)]
    pub payload: Field<NotificationPayload>,
    #[serde(default)]
    #[schema(nullable)]
    pub data: Field<NotificationPayload>,
    #[serde(flatten)]
    pub top_level: NotificationPayload,
}

/// What a notification says, under `payload`, `data` or at the top level.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NotificationPayload {
    #[serde(rename = "productId", default)]
    #[schema(nullable)]
    pub product_id: Field<ProductRef>,
    #[serde(rename = "localDateStart", default)]
    #[schema(nullable)]
    pub local_date_start: Field<LocalDate>,
    /// Included; at most 366 days after the start.
    #[serde(rename = "localDateEnd", default)]
    #[schema(nullable)]
    pub local_date_end: Field<LocalDate>,
}

from_json_object!(Booking, BookedSlot, NotificationPayload);

/// An event body, a delivery when it has a `webhook`, else a notification.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // read once per request, never stored or moved around
pub enum OctoEventBody {
    Delivery(OctoDelivery),
    Notification(OctoNotification),
}

impl<'de> Deserialize<'de> for OctoEventBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let body = if value
            .get("webhook")
            .is_some_and(|webhook| !webhook.is_null())
        {
            serde_json::from_value(value).map(Self::Delivery)
        } else {
            serde_json::from_value(value).map(Self::Notification)
        };
        body.map_err(serde::de::Error::custom)
    }
}

super::openapi::any_of_schema!(
    OctoEventBody,
    "A webhook delivery (OCTO Cloud / Ventrata: `webhook.event` decides) or a notification (the OCTO notifications capability).",
    [OctoDelivery, OctoNotification]
);

impl RequestBody for OctoEventBody {
    type Valid = OctoEvent;
    const CLOSED: bool = false;

    fn validate(self, problems: &mut Problems) -> Option<OctoEvent> {
        match self {
            Self::Delivery(delivery) => delivery.validate(problems),
            Self::Notification(notification) => notification.validate(problems),
        }
    }
}

impl OctoDelivery {
    fn validate(self, problems: &mut Problems) -> Option<OctoEvent> {
        // A `webhook` that is not an object has no event either.
        let event = self
            .webhook
            .optional("webhook", &mut Problems::default())
            .map(|webhook| webhook.event.null_as_absent())
            .unwrap_or_default();
        if !event.is_present() {
            return problems.add("webhook.event", "is required");
        }
        let name = event.clone().optional("webhook.event", problems)?;
        match name.to_ascii_lowercase().as_str() {
            "availability_update" => NotifyBody::Wrapped(WrappedNotify {
                webhook: Field::valid(WebhookInfo { event }),
                owner: self.owner,
                availability: self.availability,
            })
            .validate(problems)
            .map(OctoEvent::AvailabilityUpdate),
            "booking_update" => {
                let booking = self.booking.null_as_absent();
                if !booking.is_present() {
                    return problems.add("booking", "must be an object");
                }
                booking.optional("booking", problems)?.validate(problems)
            }
            _ => Some(OctoEvent::Ignored {
                what: format!("webhook event {}", clip(&name)),
            }),
        }
    }
}

impl Booking {
    /// A booking's slot: its product and option on the day of its availability.
    fn validate(self, problems: &mut Problems) -> Option<OctoEvent> {
        let product_id = self
            .product_id
            .null_as_absent()
            .required("booking.productId", problems);
        let option_id = self.option_id.null_as_absent();
        let option_id = if option_id.is_present() {
            let mut discarded = Problems::default();
            option_id
                .optional("booking.optionId", &mut discarded)
                .or_else(|| {
                    problems.add(
                        "booking.optionId",
                        "must be a non-empty string of at most 256 characters",
                    )
                })
        } else {
            problems.add("booking.optionId", "is required")
        };
        let start = self
            .availability
            .null_as_absent()
            .optional("booking.availability", &mut Problems::default())
            .map(|slot| slot.local_date_time_start.null_as_absent())
            .unwrap_or_default();
        let day = if start.is_present() {
            start
                .required("booking.availability.localDateTimeStart", problems)
                .and_then(|start| {
                    start
                        .as_str()
                        .get(..10)
                        .and_then(crate::domain::parse_local_date)
                        .or_else(|| {
                            problems.add(
                                "booking.availability.localDateTimeStart",
                                "must be a date-time",
                            )
                        })
                })
        } else {
            problems.add("booking.availability.localDateTimeStart", "is required")
        };
        let day = day?;
        Some(OctoEvent::AvailabilityChanged(AvailabilityPull {
            product_id: product_id?.0,
            option_id: Some(option_id?.0),
            from: day,
            to: day,
        }))
    }
}

impl OctoNotification {
    fn validate(self, problems: &mut Problems) -> Option<OctoEvent> {
        // Each of these fields, when present, has its one type, whichever of them is used.
        let notification_type = self
            .notification_type
            .null_as_absent()
            .optional("notificationType", problems);
        let kind = self.kind.null_as_absent().optional("type", problems);
        let payload = self.payload.null_as_absent().optional("payload", problems);
        let data = self.data.null_as_absent().optional("data", problems);
        if !problems.is_empty() {
            return None;
        }
        let Some(kind) = notification_type.or(kind) else {
            return problems.add(
                "body",
                "must be an OCTO webhook delivery (webhook.event) or notification (notificationType)",
            );
        };
        let payload = payload.or(data).unwrap_or(self.top_level);
        let product_id = |field: Field<ProductRef>, problems: &mut Problems| {
            field
                .null_as_absent()
                .required("payload.productId", problems)
                .map(|id| id.0)
        };
        match kind.to_ascii_uppercase().as_str() {
            "PRODUCT_UPDATE" => Some(OctoEvent::ProductUpdate {
                product_id: product_id(payload.product_id, problems)?,
            }),
            "AVAILABILITY_UPDATE" => {
                let product_id = product_id(payload.product_id, problems);
                let from = payload
                    .local_date_start
                    .null_as_absent()
                    .required("payload.localDateStart", problems);
                let to = payload
                    .local_date_end
                    .null_as_absent()
                    .required("payload.localDateEnd", problems);
                let (LocalDate(from), LocalDate(to)) = (from?, to?);
                if to < from {
                    problems.add::<()>("payload.localDateEnd", "must not be before localDateStart");
                } else if (to - from).whole_days() >= MAX_RANGE_DAYS {
                    problems.add::<()>(
                        "payload.localDateEnd",
                        format!("the range must be at most {MAX_RANGE_DAYS} days"),
                    );
                }
                Some(OctoEvent::AvailabilityChanged(AvailabilityPull {
                    product_id: product_id?,
                    option_id: None,
                    from,
                    to,
                }))
            }
            // Only a booking id: nothing to refresh without its product and date.
            "BOOKING_UPDATE" => Some(OctoEvent::Ignored {
                what: "BOOKING_UPDATE notification".into(),
            }),
            _ => Some(OctoEvent::Ignored {
                what: format!("notification {}", clip(&kind)),
            }),
        }
    }
}

/// Reads an event body. Every problem is reported as `"field: reason"`.
pub fn parse_event(body: &Value) -> Result<OctoEvent, Vec<String>> {
    read::<OctoEventBody>(body.clone())
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
