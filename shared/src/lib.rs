//! Seyaha partner integrations: everything but the entry points.
//!
//! `domain` holds pure types, `ports` the traits the core needs, `service` the rules,
//! `api` the HTTP layer, `octo` the partner client, `net` the SSRF guard, and `adapters`
//! the implementations of the ports.

pub mod adapters;
pub mod api;
pub mod domain;
pub mod net;
pub mod notify;
pub mod octo;
pub mod ports;
pub mod records;
pub mod service;
pub mod sync;
