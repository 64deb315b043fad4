//! Lambda `availability-notify`: the availability notify webhook behind API Gateway (HTTP API).
//! Clients are built once per container by the library's composition root.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = seyaha::lambda::start().await?;
    lambda_http::run(app.availability_notify_router()).await
}
