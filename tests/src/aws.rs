//! AWS for tests, without AWS: moto's server mode on a free loopback port (from the project's
//! `.venv`, which `make test` creates), fresh resource names per test, and SDK configuration
//! pointed at it.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use seyaha::adapters::aws::DynamoStore;
use seyaha::domain::ObjectId;

use crate::JWT_SECRET;

/// One moto server per test binary. It is started through a shell that kills it when our
/// stdin closes, so it never outlives the tests.
pub struct Moto {
    pub endpoint: String,
    _guard: Child,
}

fn moto_server() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("SEYAHA_MOTO_SERVER") {
        return path.into();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned();
    root.join(".venv/bin/moto_server")
}

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

impl Moto {
    /// A moto server of its own (most callers want the shared one, [`moto()`]): a benchmark
    /// runs independent parts on two of them, two processes for two cores.
    pub fn start() -> Moto {
        let server = moto_server();
        assert!(
            server.exists(),
            "{} is missing: run `make test`, which installs moto into .venv",
            server.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = format!(
            "{} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid",
            server.display()
        );
        let guard = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint,
            _guard: guard,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(stdin) = self._guard.stdin.as_mut() {
            let _ = stdin.flush();
        }
    }
}

/// SDK configuration for moto: fixed test credentials, us-east-1, moto's endpoint.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(moto()).await
}

/// SDK configuration for this moto server.
pub async fn sdk_config_for(moto: &Moto) -> SdkConfig {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

/// Fresh AWS resources for one test: a table, the two queues (real-time and bulk), and the
/// JWT secret.
pub struct Resources {
    pub table: String,
    pub queue_url: String,
    pub bulk_queue_url: String,
    pub secret_prefix: String,
    pub jwt_secret_id: String,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ObjectId::generate(0))
}

pub async fn resources(config: &SdkConfig) -> Resources {
    let table = unique("seyaha");
    DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(config), &table)
        .await
        .expect("create table");
    let sqs = aws_sdk_sqs::Client::new(config);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("sync"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .unwrap();
    let bulk_queue_url = sqs
        .create_queue()
        .queue_name(unique("bulk"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .unwrap();
    let jwt_secret_id = unique("jwt");
    aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(&jwt_secret_id)
        .secret_string(JWT_SECRET)
        .send()
        .await
        .expect("create JWT secret");
    Resources {
        table,
        queue_url,
        bulk_queue_url,
        secret_prefix: unique("seyaha"),
        jwt_secret_id,
    }
}

impl Resources {
    /// `base` with these resources as the store, queue and secret prefix (for building the AWS
    /// ports in-process).
    pub fn settings(&self, base: seyaha::settings::Settings) -> seyaha::settings::Settings {
        seyaha::settings::Settings {
            table_name: Some(self.table.clone()),
            queue_url: Some(self.queue_url.clone()),
            bulk_queue_url: Some(self.bulk_queue_url.clone()),
            secret_prefix: self.secret_prefix.clone(),
            ..base
        }
    }

    /// The environment template.yaml gives a function, pointed at moto.
    pub fn lambda_env(&self) -> Vec<(String, String)> {
        [
            ("SEYAHA_TABLE_NAME", self.table.as_str()),
            ("SEYAHA_QUEUE_URL", self.queue_url.as_str()),
            ("SEYAHA_BULK_QUEUE_URL", self.bulk_queue_url.as_str()),
            // A fan-out's syncs are queued at once, not spread over an hour.
            ("SEYAHA_FAN_OUT_WINDOW_SECS", "0"),
            ("SEYAHA_SECRET_PREFIX", self.secret_prefix.as_str()),
            ("SEYAHA_JWT_SECRET_ID", self.jwt_secret_id.as_str()),
            ("SEYAHA_ALLOW_PRIVATE_ENDPOINTS", "true"),
            ("SEYAHA_FALLBACK_DELAY_SECS", "0"),
            ("AWS_ENDPOINT_URL", moto().endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Messages waiting in the real-time queue (received, left invisible for `hide`).
    pub async fn receive(&self, config: &SdkConfig, hide: i32) -> Vec<aws_sdk_sqs::types::Message> {
        Self::receive_from(&self.queue_url, config, hide).await
    }

    /// Messages waiting in the bulk queue (received, left invisible for `hide`).
    pub async fn receive_bulk(
        &self,
        config: &SdkConfig,
        hide: i32,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        Self::receive_from(&self.bulk_queue_url, config, hide).await
    }

    async fn receive_from(
        url: &str,
        config: &SdkConfig,
        hide: i32,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        let output = aws_sdk_sqs::Client::new(config)
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(hide)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        output.messages.unwrap_or_default()
    }
}
