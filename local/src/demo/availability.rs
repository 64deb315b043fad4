//! The demo supplier's OCTO availability check (`POST /availability`): one availability per
//! start time of an option and day. Vacancies are derived from the date and start time, so
//! every call (and every seyaha-local) answers the same, unless the availability hook set them.

use std::collections::HashMap;

use serde_json::{Value, json};
use time::macros::{format_description, offset};
use time::{Date, PrimitiveDateTime, Time, UtcOffset};

use super::DemoError;

/// Seats of every demo slot.
pub const CAPACITY: u32 = 20;
/// Longest range of one call, in days (both ends included); Seyaha splits longer ones the same way.
pub const MAX_DAYS: i64 = 31;
/// Every demo product is in Asia/Dubai, which keeps +04:00 all year (no daylight saving).
const PRODUCT_OFFSET: UtcOffset = offset!(+4);
/// Bookings close this long before a slot starts.
const CUTOFF: time::Duration = time::Duration::hours(1);

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");
const START_TIME: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[hour]:[minute]");
const LOCAL_DATE_TIME: &[time::format_description::BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);
const UTC_DATE_TIME: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// One slot: a product's option at a local start (the availability id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlotKey {
    pub product_id: String,
    pub option_id: String,
    pub local_date_time_start: String,
}

/// Vacancies the availability hook set, by slot.
pub type VacancyOverrides = HashMap<SlotKey, u32>;

/// An availability check: which option, which days (both included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityQuery {
    pub product_id: String,
    pub option_id: String,
    pub from: Date,
    pub to: Date,
}

/// Reads an OCTO local date, `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, DATE).ok()
}

pub fn format_date(date: Date) -> String {
    date.format(DATE).expect("a date formats")
}

/// Reads the body of `POST /availability`: `productId`, `optionId` and either `localDateStart`
/// with `localDateEnd` or a single `localDate`. (The ids are checked against the catalog later.)
pub fn parse_query(body: &Value) -> Result<AvailabilityQuery, DemoError> {
    let text = |field: &str| body.get(field).and_then(Value::as_str);
    let required = |field: &str| {
        text(field)
            .map(str::to_owned)
            .ok_or_else(|| DemoError::BadRequest(format!("{field} is required")))
    };
    let (product_id, option_id) = (required("productId")?, required("optionId")?);
    let date = |field: &str| {
        let value =
            text(field).ok_or_else(|| DemoError::BadRequest(format!("{field} is required")))?;
        parse_date(value)
            .ok_or_else(|| DemoError::BadRequest(format!("{field} must be a date, YYYY-MM-DD")))
    };
    let (from, to) = match text("localDate") {
        Some(_) => {
            let day = date("localDate")?;
            (day, day)
        }
        None => (date("localDateStart")?, date("localDateEnd")?),
    };
    if to < from {
        return Err(DemoError::BadRequest(
            "localDateEnd is before localDateStart".into(),
        ));
    }
    if (to - from).whole_days() + 1 > MAX_DAYS {
        return Err(DemoError::BadRequest(format!(
            "a range may cover at most {MAX_DAYS} days"
        )));
    }
    Ok(AvailabilityQuery {
        product_id,
        option_id,
        from,
        to,
    })
}

/// The availability hook's body: a product, one option or all of its options, one day, and
/// the vacancies to set (or none: one seat fewer than now, as if someone booked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacancyChange {
    pub product_id: String,
    pub option_id: Option<String>,
    pub date: Date,
    pub vacancies: Option<u32>,
}

pub fn parse_vacancy_change(body: &Value) -> Result<VacancyChange, DemoError> {
    let bad = |message: String| DemoError::BadRequest(message);
    let product_id = body
        .get("productId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("productId is required".into()))?;
    let option_id = match body.get("optionId") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_str()
                .ok_or_else(|| bad("optionId must be a string".into()))?
                .to_owned(),
        ),
    };
    let date = body
        .get("localDate")
        .and_then(Value::as_str)
        .and_then(parse_date);
    let date = date.ok_or_else(|| bad("localDate is required: a date, YYYY-MM-DD".into()))?;
    let vacancies = match body.get("vacancies") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .filter(|&vacancies| vacancies <= u64::from(CAPACITY))
                .ok_or_else(|| {
                    bad(format!(
                        "vacancies must be a whole number from 0 to {CAPACITY}"
                    ))
                })? as u32,
        ),
    };
    Ok(VacancyChange {
        product_id: product_id.to_owned(),
        option_id,
        date,
        vacancies,
    })
}

/// The option's start times (`availabilityLocalStartTimes`), in order.
pub fn start_times(option: &Value) -> Vec<Time> {
    let times = option["availabilityLocalStartTimes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    times
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|text| Time::parse(text, START_TIME).ok())
        .collect()
}

/// The availability id and `localDateTimeStart` of the slot starting at `start` on `date`.
pub fn slot_start(date: Date, start: Time) -> String {
    PrimitiveDateTime::new(date, start)
        .assume_offset(PRODUCT_OFFSET)
        .format(LOCAL_DATE_TIME)
        .expect("a date-time formats")
}

/// Vacancies of a slot nobody changed: spread over 0..=CAPACITY by date and start time, so the
/// demo shows every status (SOLD_OUT, LIMITED, AVAILABLE) within a few days. (8 is coprime
/// with CAPACITY + 1, so any 21 days in a row take every value.)
pub fn default_vacancies(date: Date, start: Time) -> u32 {
    let minutes = i64::from(start.hour()) * 60 + i64::from(start.minute());
    (i64::from(date.to_julian_day()) * 8 + minutes / 15).rem_euclid(i64::from(CAPACITY) + 1) as u32
}

/// The OCTO status for vacancies out of [`CAPACITY`]: LIMITED is under half left.
pub fn status(vacancies: u32) -> &'static str {
    match vacancies {
        0 => "SOLD_OUT",
        v if v * 2 < CAPACITY => "LIMITED",
        _ => "AVAILABLE",
    }
}

/// Current vacancies of one slot: the hook's override, else the default.
pub fn vacancies(overrides: &VacancyOverrides, key: &SlotKey, date: Date, start: Time) -> u32 {
    overrides
        .get(key)
        .copied()
        .unwrap_or_else(|| default_vacancies(date, start))
}

/// The availabilities of `option` (of `product`) for each day of the query, in order.
pub fn availabilities(
    product: &Value,
    option: &Value,
    query: &AvailabilityQuery,
    overrides: &VacancyOverrides,
) -> Vec<Value> {
    let duration = time::Duration::minutes(product["durationMinutesFrom"].as_i64().unwrap_or(60));
    let starts = start_times(option);
    let mut entries = Vec::new();
    let mut date = query.from;
    while date <= query.to {
        for &start in &starts {
            let begins = PrimitiveDateTime::new(date, start).assume_offset(PRODUCT_OFFSET);
            let id = slot_start(date, start);
            let key = SlotKey {
                product_id: query.product_id.clone(),
                option_id: query.option_id.clone(),
                local_date_time_start: id.clone(),
            };
            let vacancies = vacancies(overrides, &key, date, start);
            entries.push(json!({
                "id": id,
                "localDateTimeStart": id,
                "localDateTimeEnd": (begins + duration).format(LOCAL_DATE_TIME).expect("a date-time formats"),
                "allDay": false,
                "available": vacancies > 0,
                "status": status(vacancies),
                "vacancies": vacancies,
                "capacity": CAPACITY,
                "maxUnits": null,
                "utcCutoffAt": (begins - CUTOFF).to_offset(UtcOffset::UTC).format(UTC_DATE_TIME).expect("a date-time formats"),
                "openingHours": [],
            }));
        }
        let Some(next) = date.next_day() else { break };
        date = next;
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, time};

    #[test]
    fn a_slot_has_octo_times_in_the_products_offset() {
        let option = json!({"availabilityLocalStartTimes": ["19:30", "23:30"]});
        let product = json!({"durationMinutesFrom": 120});
        let query = AvailabilityQuery {
            product_id: "p".into(),
            option_id: "o".into(),
            from: date!(2030 - 12 - 31),
            to: date!(2030 - 12 - 31),
        };
        let entries = availabilities(&product, &option, &query, &VacancyOverrides::new());
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["id"], "2030-12-31T19:30:00+04:00");
        assert_eq!(entries[0]["localDateTimeEnd"], "2030-12-31T21:30:00+04:00");
        assert_eq!(entries[0]["utcCutoffAt"], "2030-12-31T14:30:00Z");
        // Ends past midnight, into the next year.
        assert_eq!(entries[1]["localDateTimeEnd"], "2031-01-01T01:30:00+04:00");
    }

    #[test]
    fn vacancies_are_stable_and_statuses_follow_them() {
        let spread: Vec<u32> = (0..21)
            .map(|day| {
                default_vacancies(
                    date!(2030 - 01 - 01) + time::Duration::days(day),
                    time!(09:00),
                )
            })
            .collect();
        assert!(spread.iter().all(|&v| v <= CAPACITY));
        assert!(
            spread.contains(&0) && spread.contains(&CAPACITY),
            "{spread:?}"
        );
        assert_eq!(
            default_vacancies(date!(2030 - 01 - 05), time!(15:00)),
            default_vacancies(date!(2030 - 01 - 05), time!(15:00))
        );
        assert_eq!(
            [status(0), status(9), status(10), status(CAPACITY)],
            ["SOLD_OUT", "LIMITED", "AVAILABLE", "AVAILABLE"]
        );
    }

    #[test]
    fn queries_need_ids_and_at_most_31_days() {
        let query = |body: Value| parse_query(&body);
        let ok = query(json!({"productId": "p", "optionId": "o", "localDateStart": "2030-01-01", "localDateEnd": "2030-01-31"})).unwrap();
        assert_eq!(
            (ok.from, ok.to),
            (date!(2030 - 01 - 01), date!(2030 - 01 - 31))
        );
        let single =
            query(json!({"productId": "p", "optionId": "o", "localDate": "2030-01-01"})).unwrap();
        assert_eq!(single.from, single.to);
        for bad in [
            json!({"productId": "p", "optionId": "o", "localDateStart": "2030-01-01", "localDateEnd": "2030-02-01"}),
            json!({"productId": "p", "optionId": "o", "localDateStart": "2030-01-02", "localDateEnd": "2030-01-01"}),
            json!({"productId": "p", "optionId": "o", "localDateStart": "2030-1-1", "localDateEnd": "2030-01-01"}),
            json!({"productId": "p", "optionId": "o", "localDateStart": "2030-01-01"}),
            json!({"optionId": "o", "localDate": "2030-01-01"}),
            json!({"productId": "p", "localDate": "2030-01-01"}),
        ] {
            assert!(
                matches!(query(bad.clone()), Err(DemoError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
