//! Who is acting: the two roles a Seyaha JWT can carry, and an authenticated caller.

use serde_with::SerializeDisplay;
use strum::{Display, EnumString, VariantNames};

use super::PartnerId;

/// The `role` claim of a token; also who created an integration (an admin's starts approved).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, VariantNames, SerializeDisplay,
)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    Partner,
    Admin,
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Partner(PartnerId),
    Admin,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Self::Partner(_) => Role::Partner,
            Self::Admin => Role::Admin,
        }
    }
}
