//! What every Lambda function does before serving: settings from the environment, the AWS
//! ports, the app (through the one composition root), and JSON logs for CloudWatch.

use std::sync::Arc;

use crate::app::{self, App, Runtime};
use crate::ports::SystemClock;
use crate::settings::{Settings, SettingsError};

/// Builds the app for a Lambda function. Clients are built once per container; no network call
/// happens here (the first request pays for what it uses).
pub async fn start() -> Result<App, SettingsError> {
    init_tracing();
    let settings = Settings::from_env()?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ports = crate::adapters::aws::ports(&config, &settings, Arc::new(SystemClock))?;
    Ok(app::build(ports, &settings, Runtime::Lambda))
}

/// JSON logs for CloudWatch; the level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default
/// info). A plain level, not an env-filter: that would bring a regex engine into every package.
fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let level = level.trim().parse::<tracing_subscriber::filter::LevelFilter>().unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    // A second call (a process that starts the app twice) keeps the first subscriber: not an error.
    let _first_subscriber_stays = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_max_level(level)
        .try_init();
}
