//! Lambda `register`: the partner and admin API (JWT routes) behind API Gateway (HTTP API).
//! Clients are built once per container by the library's composition root.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = seyaha::lambda::start().await?;
    lambda_http::run(app.registration_router()).await
}
