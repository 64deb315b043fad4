//! seyaha-local: the whole service in one process on the embedded backend, plus a demo OCTO
//! supplier at `/demo/octo` and Prometheus metrics at `/metrics`. The binary is a thin CLI over
//! [`start`]; tests start it in-process.

pub mod background;
pub mod demo;
pub mod metrics;
pub mod octo_samples;
pub mod server;

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use background::Background;
use secrecy::SecretString;
use seyaha::adapters::embedded::{FileSecretStore, InMemoryRateLimiter, InProcessQueue, RedbStore};
use seyaha::api::auth::{TokenScope, mint_scoped_token};
use seyaha::app::{self, Host};
use seyaha::domain::{PartnerId, Role};
use seyaha::ports::{Clock, Ports, StaticSigningKey, SystemClock};
use seyaha::settings::Settings;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Everything seyaha-local is started with: where to listen, the one [`Settings`] every entry
/// point shares, and the clock (tests move a fake one).
#[derive(Clone)]
pub struct LocalConfig {
    pub bind: SocketAddr,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
}

impl LocalConfig {
    pub fn new(bind: SocketAddr, settings: Settings) -> Self {
        Self {
            bind,
            settings,
            clock: Arc::new(SystemClock),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the data dir {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error("cannot open the store (is another seyaha-local using {path}?): {source}")]
    Store {
        path: PathBuf,
        source: seyaha::ports::StoreError,
    },
    #[error("cannot open the secret store: {0}")]
    Secrets(#[source] seyaha::ports::SecretStoreError),
    #[error("{0}")]
    Schedule(String),
    #[error("{0}")]
    Settings(#[from] seyaha::settings::SettingsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// A started server. Dropping it without [`RunningServer::stop`] leaves it running until the runtime ends.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub jwt_secret: SecretString,
    /// The demo partner whose token seyaha-local prints; stable across restarts.
    pub demo_partner_id: PartnerId,
    /// The issuer and audience tokens must carry (`SEYAHA_JWT_ISSUER`, `SEYAHA_JWT_AUDIENCE`).
    pub token_scope: TokenScope,
    /// Tokens are verified with `SEYAHA_JWT_PUBLIC_KEY`: [`RunningServer::mint`]'s HS256 tokens
    /// are then refused.
    pub verifies_with_public_key: bool,
    demo: demo::DemoSupplier,
    connections: server::Connections,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<io::Result<()>>,
    background: Background,
    queue: InProcessQueue,
}

impl RunningServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections being served now (at most `SEYAHA_MAX_CONNECTIONS`).
    pub fn open_connections(&self) -> usize {
        self.connections.open()
    }

    /// Connections one client address holds now (at most `SEYAHA_MAX_CONNECTIONS_PER_CLIENT`).
    pub fn open_connections_from(&self, client: std::net::IpAddr) -> usize {
        self.connections.open_from(client)
    }

    /// The demo OCTO supplier served at `/demo/octo`: its catalog, subscriptions and the
    /// deliveries it recorded.
    pub fn demo_supplier(&self) -> &demo::DemoSupplier {
        &self.demo
    }

    /// A token this server accepts, unless it verifies with a public key
    /// ([`RunningServer::verifies_with_public_key`]).
    pub fn mint(&self, role: Role, subject: &str, valid_for: Duration) -> String {
        mint_scoped_token(
            &self.jwt_secret,
            role,
            subject,
            valid_for,
            &self.token_scope,
        )
    }

    /// Stops accepting connections, lets in-flight requests finish, and closes the store.
    pub async fn stop(self) -> io::Result<()> {
        if self.shutdown.send(()).is_err() {
            tracing::debug!("the server had already stopped");
        }
        let served = self
            .serving
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)));
        self.background.stop().await;
        served
    }

    /// Whether the background queue is quiet: no job waiting, running, or due by the clock.
    /// Tests poll this instead of sleeping to show that nothing more happens.
    pub fn is_settled(&self) -> bool {
        self.queue.is_settled()
    }

    /// Resolves when the server has stopped by itself (it only does on an I/O error).
    pub async fn wait(&mut self) -> io::Result<()> {
        (&mut self.serving)
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)))
    }
}

pub async fn start(config: LocalConfig) -> Result<RunningServer, StartError> {
    let settings = &config.settings;
    let data_dir = &settings.data_dir;
    let data_dir_error = |source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    };
    create_data_dir(data_dir).map_err(data_dir_error)?;
    warn_if_data_dir_is_open(data_dir).map_err(data_dir_error)?;
    let jwt_secret = jwt_secret(data_dir, settings.jwt_secret.as_ref()).map_err(data_dir_error)?;
    let demo_partner_id = demo_partner_id(data_dir).map_err(data_dir_error)?;

    // Checked before anything is built (the CLI validated it already; tests may not have).
    let verifies_with_public_key = settings.jwt_public_key()?.is_some();
    let nightly = background::parse_cron(&settings.nightly_cron).map_err(StartError::Schedule)?;
    let store_path = data_dir.join("seyaha.redb");
    let store = Arc::new(
        RedbStore::open(&store_path).map_err(|source| StartError::Store {
            path: store_path.clone(),
            source,
        })?,
    );
    let secrets = FileSecretStore::open(&data_dir.join("secrets")).map_err(StartError::Secrets)?;
    let (queue, queue_receiver) = InProcessQueue::new(Arc::clone(&config.clock));
    let ports = Ports {
        integrations: store.clone(),
        catalog: store.clone(),
        runs: store,
        secrets: Arc::new(secrets),
        signing_key: Arc::new(StaticSigningKey(jwt_secret.clone())),
        queue: Arc::new(queue.clone()),
        rate_limiter: Arc::new(InMemoryRateLimiter::default()),
        clock: Arc::clone(&config.clock),
    };
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    // Partners' platforms (the demo supplier included) push to this server unless told otherwise.
    let settings = &Settings {
        public_url: Some(
            settings
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}")),
        ),
        ..settings.clone()
    };
    metrics::install();
    let app = app::build(ports, settings, Host::Local);
    let demo = demo::DemoSupplier::new();
    let router = app
        .router()
        .nest("/demo/octo", demo.router())
        .merge(metrics::router());

    let (shutdown, shutdown_requested) = oneshot::channel::<()>();
    let connections = server::Connections::new(
        settings.max_connections,
        settings.max_connections_per_client,
    );
    let header_read_timeout = Duration::from_secs(settings.header_read_timeout_secs);
    let serving = tokio::spawn(server::serve(
        listener,
        router,
        connections.clone(),
        header_read_timeout,
        async move {
            // Either a stop request or the handle being dropped ends the server.
            shutdown_requested.await.ok();
        },
    ));
    tracing::info!(%addr, data_dir = %data_dir.display(), allow_private_endpoints = settings.allow_private_endpoints_or(true), "seyaha-local listening");
    let background = Background::start(
        Arc::clone(app.service()),
        queue.clone(),
        queue_receiver,
        nightly,
        config.clock,
    );
    // Work a crash cut off (its request is still set) finishes without a new trigger.
    if let Err(error) = app.service().resume_pending_syncs().await {
        tracing::error!(error = %error, "could not resume pending syncs; the next request or nightly run picks them up");
    }
    // The demo supplier starts without subscriptions: Seyaha's on record are renewed.
    if let Err(error) = app.service().resubscribe_live().await {
        tracing::error!(error = %error, "could not renew push subscriptions");
    }
    Ok(RunningServer {
        addr,
        jwt_secret,
        demo_partner_id,
        token_scope: settings.token_scope(),
        verifies_with_public_key,
        demo,
        connections,
        shutdown,
        serving,
        background,
        queue,
    })
}

/// The JWT signing secret: the configured one, else the one generated into the data dir.
pub fn jwt_secret(data_dir: &Path, configured: Option<&SecretString>) -> io::Result<SecretString> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    create_data_dir(data_dir)?;
    read_or_create_hex_file(&data_dir.join("jwt-secret"), 32).map(SecretString::from)
}

/// The demo partner of this data dir, created on first use.
pub fn demo_partner_id(data_dir: &Path) -> io::Result<PartnerId> {
    create_data_dir(data_dir)?;
    let text = read_or_create_file(&data_dir.join("demo-partner-id"), || {
        PartnerId::generate(now_seconds()).to_string()
    })?;
    PartnerId::parse(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("demo-partner-id: {e}")))
}

/// Creates the data dir (and missing parents) owner-only, 0700: it holds the store, whose
/// records include secret digests, the JWT secret and partner credentials.
fn create_data_dir(data_dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
}

/// An existing data dir is the operator's choice and may hold other things, so a mode that
/// lets group or others in is reported, not changed: everything seyaha-local keeps in it is
/// owner-only by itself (files 0600, `secrets/` 0700).
fn warn_if_data_dir_is_open(data_dir: &Path) -> io::Result<()> {
    let mode = std::fs::metadata(data_dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            data_dir = %data_dir.display(),
            mode = format_args!("{mode:o}"),
            "the data dir is open to other users; its files are owner-only, but consider chmod 700"
        );
    }
    Ok(())
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Reads a small state file, creating it (mode 0600) with `make()` on first use.
fn read_or_create_file(path: &Path, make: impl FnOnce() -> String) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let value = make();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            io::Write::write_all(&mut file, value.as_bytes())?;
            file.sync_all()?;
            Ok(value)
        }
        Err(error) => Err(error),
    }
}

fn read_or_create_hex_file(path: &Path, random_bytes: usize) -> io::Result<String> {
    read_or_create_file(path, || {
        let mut bytes = vec![0u8; random_bytes];
        getrandom::fill(&mut bytes).expect("the OS random number generator is unavailable");
        hex::encode(bytes)
    })
}

/// Default lifetime of the tokens seyaha-local prints.
pub const PRINTED_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
