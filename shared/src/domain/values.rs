//! Small typed values: content hashes and partner-local date-times.

use std::fmt;
use std::str::FromStr;

use serde_with::{DeserializeFromStr, SerializeDisplay};
use sha2::{Digest, Sha256};

use super::Timestamp;

/// Every route of the API lives under this prefix (the events URL a push subscription
/// delivers to is built from it too).
pub const API_PREFIX: &str = "/api/v1/partner-integrations";

/// The largest `vacancies` or `capacity` accepted: far above any real departure, and well
/// inside what every JSON reader represents exactly.
pub const MAX_COUNT: u64 = 1_000_000_000;

/// A SHA-256 digest shown as 64 lowercase hex characters: a product's or a whole catalog's
/// canonical JSON (RFC 8785), compared to skip unchanged data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct ContentHash([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 64 lowercase hex characters")]
pub struct InvalidContentHash;

impl ContentHash {
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The hash of these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl FromStr for ContentHash {
    type Err = InvalidContentHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(InvalidContentHash);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidContentHash)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// A partner's local date-time (`localDateTimeStart`): RFC 3339 with the product's offset,
/// kept exactly as the partner wrote it (it is part of slot keys and shown back as sent).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, SerializeDisplay, DeserializeFromStr)]
pub struct LocalDateTime(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an RFC 3339 date-time with an offset, e.g. 2026-07-15T10:00:00+03:00")]
pub struct InvalidLocalDateTime;

impl LocalDateTime {
    pub fn parse(s: &str) -> Result<Self, InvalidLocalDateTime> {
        Timestamp::parse(s)
            .map(|_| Self(s.to_owned()))
            .map_err(|_| InvalidLocalDateTime)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instant it names.
    pub fn instant(&self) -> Timestamp {
        Timestamp::parse(&self.0).expect("a LocalDateTime is a valid RFC 3339 date-time")
    }

    /// Its local date, `YYYY-MM-DD`, as the partner wrote it (the day a pull asks for).
    pub fn local_date(&self) -> &str {
        self.0.get(..10).unwrap_or_default()
    }
}

/// One availability pull: a product, one option or all of them, and local dates (both
/// included). Identical pulls asked for while one is pending are one pending pull.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AvailabilityPull {
    pub product_id: String,
    pub option_id: Option<String>,
    pub from: time::Date,
    pub to: time::Date,
}

const LOCAL_DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// An OCTO local date, `YYYY-MM-DD`.
pub fn format_local_date(date: time::Date) -> String {
    date.format(LOCAL_DATE_FORMAT).expect("a date formats")
}

/// Reads an OCTO local date, `YYYY-MM-DD`.
pub fn parse_local_date(text: &str) -> Option<time::Date> {
    time::Date::parse(text, LOCAL_DATE_FORMAT).ok()
}

impl FromStr for LocalDateTime {
    type Err = InvalidLocalDateTime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for LocalDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LocalDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalDateTime({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashes_round_trip_as_lowercase_hex() {
        let hash = ContentHash::of(b"[]");
        let text = hash.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<ContentHash>().unwrap(), hash);
        assert!(text.to_uppercase().parse::<ContentHash>().is_err());
        assert!("abc".parse::<ContentHash>().is_err());
    }

    #[test]
    fn local_date_times_keep_the_partners_text_and_need_an_offset() {
        let start = LocalDateTime::parse("2026-07-15T19:30:00+04:00").unwrap();
        assert_eq!(start.as_str(), "2026-07-15T19:30:00+04:00");
        assert_eq!(
            serde_json::to_string(&start).unwrap(),
            "\"2026-07-15T19:30:00+04:00\""
        );
        assert!(LocalDateTime::parse("2026-07-15T19:30:00").is_err());
    }
}
