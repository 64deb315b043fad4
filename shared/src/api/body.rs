//! Request bodies: read a JSON object field by field, collecting every problem as
//! `"field: reason"` so one 400 tells the caller everything that is wrong.

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::domain::{
    AdminPatch, AuthKey, AuthType, BaseUrl, IntegrationPatch, MAX_WEBHOOK_RATE_PER_MINUTE,
    NewIntegration, PartnerId,
};

struct Fields<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<String>,
}

impl<'a> Fields<'a> {
    /// Unknown fields are refused: a typo (`isapproved`) must not be silently ignored.
    fn new(body: &'a Value, known: &[&str]) -> Result<Self, ApiError> {
        let Some(object) = body.as_object() else {
            return Err(ApiError::validation(vec![
                "body: must be a JSON object".into(),
            ]));
        };
        let errors = object
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .map(|key| format!("{key}: unknown field"))
            .collect();
        Ok(Self { object, errors })
    }

    fn raw(
        &mut self,
        name: &str,
        expected: &str,
        pick: impl Fn(&'a Value) -> bool,
    ) -> Option<&'a Value> {
        let value = self.object.get(name)?;
        if pick(value) {
            Some(value)
        } else {
            self.errors.push(format!("{name}: must be {expected}"));
            None
        }
    }

    fn string(&mut self, name: &str) -> Option<&'a str> {
        self.raw(name, "a string", Value::is_string)
            .and_then(Value::as_str)
    }

    fn bool(&mut self, name: &str) -> Option<bool> {
        self.raw(name, "a boolean", Value::is_boolean)
            .and_then(Value::as_bool)
    }

    /// Parses a string field with a domain parser whose error text completes "field: ...".
    fn parsed<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.string(name)?;
        parse(text)
            .map_err(|error| self.errors.push(format!("{name}: {error}")))
            .ok()
    }

    fn require<T>(&mut self, name: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.object.contains_key(name) {
            self.errors.push(format!("{name}: is required"));
        }
        value
    }

    fn has_any(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.object.contains_key(*name))
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

const INTEGRATION_FIELDS: [&str; 4] = [
    "base_url",
    "auth_type",
    "auth_key",
    "handles_ticket_delivery",
];

fn read_integration_fields(fields: &mut Fields<'_>) -> IntegrationPatch {
    IntegrationPatch {
        base_url: fields.parsed("base_url", BaseUrl::parse),
        auth_type: fields.parsed("auth_type", AuthType::parse),
        auth_key: fields.parsed("auth_key", AuthKey::parse),
        handles_ticket_delivery: fields.bool("handles_ticket_delivery"),
    }
}

fn require_all(fields: &mut Fields<'_>, patch: IntegrationPatch) -> Option<NewIntegration> {
    let base_url = fields.require("base_url", patch.base_url);
    let auth_type = fields.require("auth_type", patch.auth_type);
    let auth_key = fields.require("auth_key", patch.auth_key);
    let handles_ticket_delivery =
        fields.require("handles_ticket_delivery", patch.handles_ticket_delivery);
    Some(NewIntegration {
        base_url: base_url?,
        auth_type: auth_type?,
        auth_key: auth_key?,
        handles_ticket_delivery: handles_ticket_delivery?,
    })
}

/// `POST /partner-integrations`: all four fields.
pub fn new_integration(body: &Value) -> Result<NewIntegration, ApiError> {
    let mut fields = Fields::new(body, &INTEGRATION_FIELDS)?;
    let patch = read_integration_fields(&mut fields);
    let new = require_all(&mut fields, patch);
    fields.finish()?;
    Ok(new.expect("every field is present when no error was collected"))
}

/// `POST /admin/create`: the four fields plus `partner_id`.
pub fn admin_new_integration(body: &Value) -> Result<(PartnerId, NewIntegration), ApiError> {
    let known = [
        "partner_id",
        INTEGRATION_FIELDS[0],
        INTEGRATION_FIELDS[1],
        INTEGRATION_FIELDS[2],
        INTEGRATION_FIELDS[3],
    ];
    let mut fields = Fields::new(body, &known)?;
    let partner_id = fields.parsed("partner_id", PartnerId::parse);
    let partner_id = fields.require("partner_id", partner_id);
    let patch = read_integration_fields(&mut fields);
    let new = require_all(&mut fields, patch);
    fields.finish()?;
    Ok((partner_id.expect("validated"), new.expect("validated")))
}

/// `PATCH /me`: any non-empty subset of the four fields.
pub fn integration_patch(body: &Value) -> Result<IntegrationPatch, ApiError> {
    let mut fields = Fields::new(body, &INTEGRATION_FIELDS)?;
    if !fields.has_any(&INTEGRATION_FIELDS) {
        fields.errors.push(format!(
            "body: must contain at least one of {}",
            INTEGRATION_FIELDS.join(", ")
        ));
    }
    let patch = read_integration_fields(&mut fields);
    fields.finish()?;
    Ok(patch)
}

/// `PATCH /admin/{id}`: any non-empty subset of `isApproved`, `isActive` and
/// `webhookRatePerMinute` (a number, or `null` for the service's default).
pub fn admin_patch(body: &Value) -> Result<AdminPatch, ApiError> {
    const FIELDS: [&str; 3] = ["isApproved", "isActive", "webhookRatePerMinute"];
    let mut fields = Fields::new(body, &FIELDS)?;
    if !fields.has_any(&FIELDS) {
        fields.errors.push(
            "body: must contain at least one of isApproved, isActive, webhookRatePerMinute".into(),
        );
    }
    let webhook_rate_per_minute = match body.get("webhookRatePerMinute") {
        None => None,
        Some(Value::Null) => Some(None),
        // JSON Schema's integer: `4221.0` is one too.
        Some(value) => match value
            .as_u64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|n| {
                        n.fract() == 0.0
                            && *n >= 0.0
                            && *n <= f64::from(MAX_WEBHOOK_RATE_PER_MINUTE)
                    })
                    .map(|n| n as u64)
            })
            .filter(|rate| (1..=u64::from(MAX_WEBHOOK_RATE_PER_MINUTE)).contains(rate))
        {
            Some(rate) => Some(Some(rate as u32)),
            None => {
                fields.errors.push(format!(
                    "webhookRatePerMinute: must be a whole number from 1 to {MAX_WEBHOOK_RATE_PER_MINUTE}, or null for the service's default"
                ));
                None
            }
        },
    };
    let patch = AdminPatch {
        is_approved: fields.bool("isApproved"),
        is_active: fields.bool("isActive"),
        webhook_rate_per_minute,
    };
    fields.finish()?;
    Ok(patch)
}

/// `POST /admin/{id}/availability/refresh`: which product (all when absent) and which dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityRefresh {
    pub product_id: Option<String>,
    pub from: time::Date,
    pub to: time::Date,
}

pub fn availability_refresh(body: &Value) -> Result<AvailabilityRefresh, ApiError> {
    let mut fields = Fields::new(body, &["localDateStart", "localDateEnd", "productId"])?;
    let date = |text: &str| crate::sync::parse_date(text).ok_or("must be a date like 2026-07-15");
    let from = fields.parsed("localDateStart", date);
    let from = fields.require("localDateStart", from);
    let to = fields.parsed("localDateEnd", date);
    let to = fields.require("localDateEnd", to);
    let product_id = fields.parsed("productId", |text: &str| {
        if text.trim().is_empty() || text.len() > 1024 {
            Err("must be a non-empty string of at most 1024 characters")
        } else {
            Ok(text.to_owned())
        }
    });
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            fields
                .errors
                .push("localDateEnd: must not be before localDateStart".into());
        } else if (to - from).whole_days() >= super::events::MAX_RANGE_DAYS {
            fields.errors.push(format!(
                "localDateEnd: the range must be at most {} days",
                super::events::MAX_RANGE_DAYS
            ));
        }
    }
    fields.finish()?;
    match (from, to) {
        (Some(from), Some(to)) => Ok(AvailabilityRefresh {
            product_id,
            from,
            to,
        }),
        _ => Err(ApiError::validation(vec![
            "body: localDateStart and localDateEnd are required".into(),
        ])),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors_of(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        format!("{:?}", result.unwrap_err())
    }

    #[test]
    fn availability_refresh_reads_dates_and_an_optional_product() {
        let refresh = availability_refresh(
            &json!({"localDateStart": "2026-07-01", "localDateEnd": "2026-07-31"}),
        )
        .unwrap();
        assert_eq!(
            (refresh.product_id, refresh.from.day(), refresh.to.day()),
            (None, 1, 31)
        );
        let errors = errors_of(availability_refresh(
            &json!({"localDateStart": "July", "productId": "", "extra": 1}),
        ));
        for expected in [
            "localDateStart: must be a date",
            "localDateEnd: is required",
            "productId: must be a non-empty",
            "extra: unknown field",
        ] {
            assert!(errors.contains(expected), "{expected} in {errors}");
        }
        assert!(
            errors_of(availability_refresh(
                &json!({"localDateStart": "2026-07-31", "localDateEnd": "2026-07-01"})
            ))
            .contains("must not be before")
        );
        assert!(
            errors_of(availability_refresh(
                &json!({"localDateStart": "2026-01-01", "localDateEnd": "2027-06-01"})
            ))
            .contains("at most 366 days")
        );
    }

    #[test]
    fn create_collects_every_problem() {
        let body =
            json!({"base_url": "ftp://x", "auth_type": "basic", "auth_key": 5, "extra": true});
        let errors = errors_of(new_integration(&body));
        for expected in [
            "base_url: must use http or https",
            "auth_type: must be one of bearer, api_key",
            "auth_key: must be a string",
            "handles_ticket_delivery: is required",
            "extra: unknown field",
        ] {
            assert!(
                errors.contains(expected),
                "{expected} missing from {errors}"
            );
        }
        assert!(
            !errors.contains("auth_key: is required"),
            "a wrongly typed field is not also missing: {errors}"
        );
    }

    #[test]
    fn create_accepts_a_valid_body() {
        let body = json!({"base_url": "https://octo.example.com/", "auth_type": "api_key", "auth_key": "k", "handles_ticket_delivery": false});
        let new = new_integration(&body).unwrap();
        assert_eq!(new.base_url.as_str(), "https://octo.example.com");
        assert_eq!(new.auth_type, AuthType::ApiKey);
    }

    #[test]
    fn patches_need_at_least_one_field_and_reject_nulls() {
        assert!(
            errors_of(integration_patch(&json!({}))).contains("body: must contain at least one of")
        );
        assert!(
            errors_of(integration_patch(&json!({"auth_key": null})))
                .contains("auth_key: must be a string")
        );
        assert!(
            errors_of(admin_patch(&json!({"isApproved": "yes"})))
                .contains("isApproved: must be a boolean")
        );
        assert!(errors_of(admin_patch(&json!([]))).contains("body: must be a JSON object"));
        assert_eq!(
            admin_patch(&json!({"isActive": false})).unwrap().is_active,
            Some(false)
        );
    }

    #[test]
    fn an_admin_patch_sets_or_clears_the_webhook_limit_within_its_range() {
        assert_eq!(
            admin_patch(&json!({"webhookRatePerMinute": 6000}))
                .unwrap()
                .webhook_rate_per_minute,
            Some(Some(6000))
        );
        assert_eq!(
            admin_patch(&json!({"webhookRatePerMinute": null}))
                .unwrap()
                .webhook_rate_per_minute,
            Some(None)
        );
        assert_eq!(
            admin_patch(&json!({"isActive": true}))
                .unwrap()
                .webhook_rate_per_minute,
            None
        );
        assert_eq!(
            admin_patch(&json!({"webhookRatePerMinute": 4221.0}))
                .unwrap()
                .webhook_rate_per_minute,
            Some(Some(4221))
        );
        for bad in [
            json!(0),
            json!(-5),
            json!(1.5),
            json!("600"),
            json!(1_000_001),
            json!(1e7),
            json!(u64::MAX),
        ] {
            let errors = errors_of(admin_patch(
                &json!({"webhookRatePerMinute": bad, "isActive": "no"}),
            ));
            assert!(
                errors.contains("webhookRatePerMinute: must be a whole number from 1 to 1000000"),
                "{bad}: {errors}"
            );
            assert!(
                errors.contains("isActive: must be a boolean"),
                "every bad field in one answer: {errors}"
            );
        }
    }
}
