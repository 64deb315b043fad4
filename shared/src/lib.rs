//! Seyaha partner integrations: everything but the entry points.
//!
//! Dependencies point one way: `api` -> `service` -> `sync` -> `octo`/`net` -> `domain`, and
//! everything -> `ports` (the traits). `adapters` implement the ports; `app` is the one
//! composition root that wires ports, settings and the HTTP routers; `lambda` is what the
//! Lambda functions share on top of it. ARCHITECTURE.md says where each kind of change goes.

pub mod adapters;
pub mod api;
pub mod app;
pub mod domain;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod octo;
pub mod ports;
pub mod records;
pub mod service;
pub mod settings;
pub mod sync;
