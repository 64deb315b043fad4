//! Lambda `availability-notify`: the availability notify webhook behind API Gateway (HTTP API).
//! Clients are built once per container; the router is the library's.

use lambda_http::Error;
use seyaha::adapters::aws::{AwsBackend, init_tracing};
use seyaha::api;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let backend = AwsBackend::from_env().await?;
    lambda_http::run(api::finish(api::availability_notify_routes(), backend.state)).await
}
