//! Identifiers in MongoDB ObjectId form: 24 lowercase hex characters.
//!
//! Partners already hold ids of this shape (the public docs show them), so new ids keep it:
//! 4 bytes of seconds since the epoch (ids sort roughly by creation) then 8 random bytes.

use std::fmt;
use std::str::FromStr;

use serde_with::{DeserializeFromStr, SerializeDisplay};

/// Why a string is not an ObjectId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 24 lowercase hex characters")]
pub struct InvalidObjectId;

/// 12 bytes shown as 24 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

impl ObjectId {
    /// A fresh id: the current time in seconds, then 8 bytes from the OS CSPRNG.
    pub fn generate(unix_seconds: i64) -> Self {
        let mut bytes = [0u8; 12];
        // The timestamp field is 32 bits wide, as in MongoDB; it wraps in 2106.
        bytes[..4].copy_from_slice(&(unix_seconds as u32).to_be_bytes());
        getrandom::fill(&mut bytes[4..]).expect("the OS random number generator is unavailable");
        Self(bytes)
    }

    pub fn parse(s: &str) -> Result<Self, InvalidObjectId> {
        if s.len() != 24 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(InvalidObjectId);
        }
        let mut bytes = [0u8; 12];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidObjectId)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// Defines a typed id over [`ObjectId`], so an integration id can never be passed as a partner id.
macro_rules! object_id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, SerializeDisplay, DeserializeFromStr)]
        pub struct $name(ObjectId);

        impl $name {
            pub fn generate(unix_seconds: i64) -> Self {
                Self(ObjectId::generate(unix_seconds))
            }
            pub fn parse(s: &str) -> Result<Self, InvalidObjectId> {
                ObjectId::parse(s).map(Self)
            }
        }

        impl FromStr for $name {
            type Err = InvalidObjectId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

object_id_newtype!(
    /// The `_id` of an integration; the `{id}` in webhook, sync-log and health paths.
    IntegrationId
);
object_id_newtype!(
    /// One sync run: the run history's key and the holder of a sync lease.
    RunId
);
object_id_newtype!(
    /// The Seyaha partner that owns an integration (`partner_id`, the partner JWT's subject).
    PartnerId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_24_lowercase_hex_and_round_trip() {
        let id = IntegrationId::generate(1_782_194_400);
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(text.starts_with(&format!("{:08x}", 1_782_194_400u32)));
        assert_eq!(IntegrationId::parse(&text).unwrap(), id);
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(PartnerId::generate(1), PartnerId::generate(1));
    }

    #[test]
    fn rejects_wrong_length_uppercase_and_non_hex() {
        for bad in [
            "",
            "64a1b2c3d4e5f6a7b8c9d0e",
            "64a1b2c3d4e5f6a7b8c9d0e1f",
            "64A1B2C3D4E5F6A7B8C9D0E1",
            "64a1b2c3d4e5f6a7b8c9d0eg",
            "me",
        ] {
            assert_eq!(ObjectId::parse(bad), Err(InvalidObjectId), "{bad:?}");
        }
        assert!(ObjectId::parse("64a1b2c3d4e5f6a7b8c9d0e1").is_ok());
    }

    #[test]
    fn serde_uses_the_hex_string() {
        let id = PartnerId::parse("64a1b2c3d4e5f6a7b8c9d0e2").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"64a1b2c3d4e5f6a7b8c9d0e2\""
        );
        assert!(serde_json::from_str::<PartnerId>("\"nope\"").is_err());
    }
}
