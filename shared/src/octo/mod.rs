//! The OCTO side: the client that talks to partner suppliers.

mod channels;
mod client;
pub mod models;

pub use channels::{Channel, DELIVERY_SECRET_HEADER, RemoteSubscription};
pub use client::{OctoClient, OctoClientConfig, OctoCredentials, OctoError, ProductsBody};
