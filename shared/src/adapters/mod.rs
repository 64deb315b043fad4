//! Implementations of the ports, one family per cargo feature.

#[cfg(feature = "embedded")]
pub mod embedded;
