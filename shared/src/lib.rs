//! Seyaha partner integrations: everything but the entry points.
//!
//! Dependencies point down one order: `lambda` -> `app` -> `api` -> `service` -> `settings` ->
//! `sync` -> `octo` -> `net` -> `optimistic` -> `ports`/`metrics` -> `domain`/`logging`. `adapters`
//! implement the ports (using only `domain`, `ports`, `metrics`, `logging`, `optimistic`); `app`
//! is the one composition root that wires ports, settings and the HTTP routers; `lambda` is what
//! the Lambda functions share on top of it. `layering.rs` (a test) enforces the order and the
//! absence of cycles between modules and between the files of one. ARCHITECTURE.md says where
//! each kind of change goes.

pub mod adapters;
pub mod api;
pub mod app;
pub mod domain;
#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(test)]
mod layering;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod octo;
pub mod optimistic;
pub mod ports;
pub mod service;
pub mod settings;
pub mod sync;
