//! The AWS backend for the Lambda functions: DynamoDB, Secrets Manager and SQS. It builds the
//! ports and nothing else; `seyaha::lambda` wires them into the app.

mod dynamo;
mod queue;
mod secrets;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::SecretString;

pub use dynamo::{DynamoStore, INDEX_SHARDS, SHARDS, index_shard};
pub use queue::SqsQueue;
pub use secrets::AwsSecretStore;

use crate::ports::{Clock, Ports, SecretStoreError, SigningKeySource, StaticSigningKey};

/// An AWS SDK error kept as the cause. Its Display is the whole chain: the SDK's own Display
/// says only "service error", which tells on-call nothing.
pub struct SdkFailure {
    message: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl SdkFailure {
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self {
            message: DisplayErrorContext(&error).to_string(),
            source: Box::new(error),
        }
    }

    /// The same, saying what we were doing: "`context`: `chain`".
    pub fn while_doing<E: std::error::Error + Send + Sync + 'static>(
        context: impl fmt::Display,
        error: E,
    ) -> Self {
        Self {
            message: format!("{context}: {}", DisplayErrorContext(&error)),
            source: Box::new(error),
        }
    }
}

impl fmt::Display for SdkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for SdkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SdkFailure({})", self.message)
    }
}

impl std::error::Error for SdkFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// The JWT signing key in Secrets Manager, read when a request first needs it (the API layer
/// caches it): reading it at init would add a round trip to every cold start.
pub struct SecretsManagerSigningKey {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

#[async_trait]
impl SigningKeySource for SecretsManagerSigningKey {
    async fn jwt_secret(&self) -> Result<SecretString, SecretStoreError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| {
                SecretStoreError::new(SdkFailure::while_doing(
                    format_args!("cannot read the JWT secret {}", self.secret_id),
                    error,
                ))
            })?;
        output
            .secret_string
            .filter(|s| !s.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| {
                SecretStoreError::new(format!(
                    "the JWT secret {} has no string value",
                    self.secret_id
                ))
            })
    }
}

/// Where the AWS resources are: what the ports need to know, given by the composition root
/// (`seyaha::lambda::ports` reads it from the settings).
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub table: String,
    pub queue_url: String,
    pub bulk_queue_url: String,
    /// Partner credentials are `{secret_prefix}/integrations/{id}/auth-key`.
    pub secret_prefix: String,
    /// The HS256 signing secret's name or ARN; `None` in a function that serves no JWT route.
    pub jwt_secret_id: Option<String>,
}

/// Builds the ports from the SDK configuration (region, credentials, and `AWS_ENDPOINT_URL`
/// for local emulators). No network calls: the first request pays for what it uses.
pub fn ports(
    config: &aws_config::SdkConfig,
    resources: AwsResources,
    clock: Arc<dyn Clock>,
) -> Ports {
    let secrets_manager = aws_sdk_secretsmanager::Client::new(config);
    let signing_key: Arc<dyn SigningKeySource> = match resources.jwt_secret_id {
        Some(secret_id) => Arc::new(SecretsManagerSigningKey {
            client: secrets_manager.clone(),
            secret_id,
        }),
        // This function serves no JWT route: a random key no token was signed with.
        None => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the OS random number generator is unavailable");
            Arc::new(StaticSigningKey(SecretString::from(hex::encode(key))))
        }
    };
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(config),
        resources.table,
    ));
    Ports {
        integrations: store.clone(),
        catalog: store.clone(),
        runs: store.clone(),
        secrets: Arc::new(AwsSecretStore::new(
            secrets_manager,
            resources.secret_prefix,
        )),
        signing_key,
        queue: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(config),
            resources.queue_url,
            resources.bulk_queue_url,
        )),
        rate_limiter: store.clone(),
        clock,
    }
}
