//! The cold-start floor the functions are measured against (`make bench-cold-start`): the
//! least any of them must do before serving — load the AWS configuration, build the three SDK
//! clients and an HTTP client — and nothing else. Not deployed.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = (
        aws_sdk_dynamodb::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
        aws_sdk_secretsmanager::Client::new(&config),
        reqwest::Client::new(),
    );
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let _keep = &clients;
        async { Ok::<_, Error>(json!({})) }
    }))
    .await
}
