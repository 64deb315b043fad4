//! The AWS backend for the Lambda functions: DynamoDB, Secrets Manager and SQS, plus the
//! start-up every function shares (configuration from the environment, clients built once).

mod dynamo;
mod queue;
mod secrets;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::SecretString;

pub use dynamo::{DynamoStore, SHARDS};
pub use queue::SqsQueue;
pub use secrets::AwsSecretStore;

use crate::api::AppState;
use crate::api::auth::JwtSource;
use crate::net::EndpointPolicy;
use crate::octo::{OctoClient, OctoClientConfig};
use crate::ports::SystemClock;
use crate::service::IntegrationService;
use crate::sync::{SyncConfig, SyncEngine, SyncPorts};

/// Configuration from the environment variables template.yaml sets.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub table: String,
    pub queue_url: String,
    pub secret_prefix: String,
    /// Name or ARN of the Secrets Manager secret holding the JWT signing key. Only the
    /// function serving JWT routes (`register`) needs it; without it every JWT is refused.
    pub jwt_secret_id: Option<String>,
    pub allow_private_endpoints: bool,
    pub octo: OctoClientConfig,
    pub sync: SyncConfig,
    pub secret_cache_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

fn required(name: &'static str) -> Result<String, StartupError> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or(StartupError::Missing(name))
}

fn number(name: &'static str, default: u64) -> Result<u64, StartupError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|_| StartupError::Invalid { name, reason: format!("{value:?} is not a number") })
        }
        _ => Ok(default),
    }
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, StartupError> {
        let allow_private_endpoints = match std::env::var("SEYAHA_ALLOW_PRIVATE_ENDPOINTS").as_deref() {
            Ok("true") => true,
            Ok("false") | Ok("") | Err(_) => false,
            Ok(other) => {
                return Err(StartupError::Invalid {
                    name: "SEYAHA_ALLOW_PRIVATE_ENDPOINTS",
                    reason: format!("{other:?} is not true or false"),
                });
            }
        };
        Ok(Self {
            table: required("SEYAHA_TABLE_NAME")?,
            queue_url: required("SEYAHA_QUEUE_URL")?,
            secret_prefix: std::env::var("SEYAHA_SECRET_PREFIX").unwrap_or_else(|_| "seyaha".into()),
            jwt_secret_id: std::env::var("SEYAHA_JWT_SECRET_ID").ok().filter(|v| !v.trim().is_empty()),
            allow_private_endpoints,
            octo: OctoClientConfig {
                connect_timeout: Duration::from_secs(number("SEYAHA_OCTO_CONNECT_TIMEOUT_SECS", 5)?),
                request_timeout: Duration::from_secs(number("SEYAHA_OCTO_TIMEOUT_SECS", 20)?),
                max_response_bytes: number("SEYAHA_OCTO_MAX_RESPONSE_BYTES", 50 * 1024 * 1024)? as usize,
            },
            sync: SyncConfig {
                lease: Duration::from_secs(number("SEYAHA_SYNC_LEASE_SECS", 300)?),
                request_budget: Duration::from_millis(number("SEYAHA_SYNC_REQUEST_BUDGET_MS", 25_000)?),
                fallback_delay: Duration::from_secs(number("SEYAHA_FALLBACK_DELAY_SECS", 2)?),
                ..SyncConfig::default()
            },
            secret_cache_ttl: Duration::from_secs(number("SEYAHA_SECRET_CACHE_SECS", 300)?),
        })
    }
}

/// Everything a function needs, built once per container (no network calls: the first
/// request pays for what it uses).
pub struct AwsBackend {
    pub state: AppState,
    pub engine: Arc<SyncEngine>,
}

impl AwsBackend {
    /// Loads the AWS configuration (region, credentials, and `AWS_ENDPOINT_URL` for local
    /// emulators) and builds the three clients and the HTTP client once.
    pub async fn from_env() -> Result<Self, StartupError> {
        let settings = AwsSettings::from_env()?;
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(&config, settings))
    }

    pub fn new(config: &aws_config::SdkConfig, settings: AwsSettings) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let secrets_manager = aws_sdk_secretsmanager::Client::new(config);

        let jwt = match settings.jwt_secret_id.clone() {
            // Read on the first request that carries a JWT, not during init.
            Some(id) => {
                let client = secrets_manager.clone();
                JwtSource::lazy(move || {
                    let (client, id) = (client.clone(), id.clone());
                    async move {
                        let output = client
                            .get_secret_value()
                            .secret_id(&id)
                            .send()
                            .await
                            .map_err(|e| format!("cannot read the JWT secret {id}: {}", DisplayErrorContext(e)))?;
                        output
                            .secret_string
                            .filter(|s| !s.is_empty())
                            .map(SecretString::from)
                            .ok_or_else(|| format!("the JWT secret {id} has no string value"))
                    }
                })
            }
            // No JWT routes here: a random key that no token was signed with.
            None => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).expect("the OS random number generator is unavailable");
                JwtSource::ready(&SecretString::from(hex::encode(key)))
            }
        };

        let store = Arc::new(DynamoStore::new(dynamodb, settings.table.clone()));
        let ports = SyncPorts {
            integrations: store.clone(),
            catalog: store.clone(),
            runs: store,
            secrets: Arc::new(AwsSecretStore::new(secrets_manager, settings.secret_prefix.clone(), settings.secret_cache_ttl)),
            queue: Arc::new(SqsQueue::new(sqs, settings.queue_url.clone())),
            clock: Arc::new(SystemClock),
        };
        let policy = EndpointPolicy { allow_private: settings.allow_private_endpoints };
        let octo = OctoClient::new(policy, settings.octo);
        let engine = Arc::new(SyncEngine::new(ports.clone(), octo.clone(), settings.sync));
        let service = IntegrationService::new(ports, Arc::clone(&engine), octo, policy);
        let state = AppState { service: Arc::new(service), jwt: Arc::new(jwt) };
        Self { state, engine }
    }
}

/// JSON logs for CloudWatch; the level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default
/// info). A plain level, not an env-filter: that would bring a regex engine into every package.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let level = level.trim().parse::<tracing_subscriber::filter::LevelFilter>().unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_max_level(level)
        .init();
}
