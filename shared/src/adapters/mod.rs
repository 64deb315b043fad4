//! Implementations of the ports, one family per cargo feature.

#[cfg(feature = "embedded")]
pub mod embedded;

#[cfg(feature = "aws")]
pub mod aws;
