//! Timestamps in the documented wire form: RFC 3339 UTC with milliseconds, `2026-06-23T06:00:00.000Z`.

use std::fmt;

use serde_with::{DeserializeFromStr, SerializeDisplay};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A UTC instant with millisecond precision (finer precision is dropped on creation so what we
/// store is exactly what we show).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr,
)]
pub struct Timestamp(OffsetDateTime);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an RFC 3339 timestamp")]
pub struct InvalidTimestamp;

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let millis = at.millisecond();
        Self(
            at.replace_millisecond(millis)
                .expect("a millisecond read from a datetime is valid"),
        )
    }

    pub fn from_unix_millis(millis: i64) -> Self {
        let nanos = i128::from(millis) * 1_000_000;
        Self::from_datetime(
            OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .expect("millis since the epoch in range"),
        )
    }

    /// Parses any RFC 3339 timestamp and normalises it to UTC milliseconds.
    pub fn parse(s: &str) -> Result<Self, InvalidTimestamp> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Self::from_datetime)
            .map_err(|_| InvalidTimestamp)
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn unix_millis(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    pub fn plus_millis(&self, millis: i64) -> Self {
        Self::from_unix_millis(self.unix_millis() + millis)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let text = self.0.format(&format).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        let ts = Timestamp::parse("2026-06-23T09:00:00.123456+03:00").unwrap();
        assert_eq!(ts.to_string(), "2026-06-23T06:00:00.123Z");
        assert_eq!(
            Timestamp::from_unix_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn round_trips_through_serde() {
        let ts = Timestamp::from_unix_millis(1_782_194_400_007);
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(json, "\"2026-06-23T06:00:00.007Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ts);
    }

    #[test]
    fn rejects_timestamps_without_offset() {
        assert!(Timestamp::parse("2026-06-23T06:00:00").is_err());
    }
}
