//! The OCTO side: the client that talks to partner suppliers.

mod client;
pub mod models;

pub use client::{OctoClient, OctoClientConfig, OctoCredentials, OctoError};
