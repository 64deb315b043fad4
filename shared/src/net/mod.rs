//! Outbound networking safety: which partner endpoints we may talk to.

mod ssrf;

pub use ssrf::{AddressRefused, EndpointPolicy, EndpointRefused, GuardedResolver, is_refused_ip};
