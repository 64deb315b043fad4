//! Every black-box and end-to-end test of the service, in one test binary (one link, one moto
//! server, one fake Lambda Runtime API per test that needs one). One module per behaviour:
//!
//! - the partner and admin API: `partner_api`, `admin_api`, `auth_and_errors`, `secret_rotation`,
//!   `openapi`, `schemathesis`, `console`, `metrics`;
//! - the webhooks and what partners push: `webhooks`, `notify`, `octo_events`,
//!   `push_subscriptions`, `availability_pull`;
//! - syncing catalogs: `catalog_sync`, `catalog_views`, `large_catalogs`, `engine` (the engine
//!   driven directly, for crashes and redeliveries), `dynamo_sync` (the same on DynamoDB);
//! - what an attacker or a hostile partner can do: `ssrf`, `hostile_suppliers`, `connections`,
//!   `panics`;
//! - the documentation: `docs_links`, `configuration` (the settings table against the code);
//! - storage: `store_conformance` (both backends), `stored_data` (old data still loads),
//!   `persistence`, `aws_adapters`;
//! - AWS: `lambda_functions` (the five binaries against a local Runtime API), `template`.
//!
//! `cargo test -p seyaha-tests --test it <module>::` runs one module.

mod admin_api;
mod auth_and_errors;
mod availability_pull;
mod aws_adapters;
mod catalog_sync;
mod catalog_views;
mod configuration;
mod connections;
mod console;
mod docs_links;
mod dynamo_sync;
mod engine;
mod hostile_suppliers;
mod lambda_functions;
mod large_catalogs;
mod metrics;
mod notify;
mod octo_events;
mod openapi;
mod panics;
mod partner_api;
mod persistence;
mod push_subscriptions;
mod schemathesis;
mod secret_rotation;
mod ssrf;
mod store_conformance;
mod stored_data;
mod template;
mod webhooks;
