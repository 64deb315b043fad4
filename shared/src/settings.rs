//! One configuration for every entry point: [`Settings`], read from `SEYAHA_*` environment
//! variables with one default each (seyaha-local's flags override the same fields). The
//! configuration table in docs/operations.md has one row per field.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::octo::OctoClientConfig;
use crate::sync::SyncConfig;

/// The environment variable prefix; a field `octo_timeout_secs` is `SEYAHA_OCTO_TIMEOUT_SECS`.
pub const PREFIX: &str = "SEYAHA_";

/// The longest overlap of an old and a new webhook secret: long enough for any planned
/// switch-over, short enough that a rotation still means something (30 days).
pub const MAX_SECRET_OVERLAP_HOURS: u64 = 720;

#[derive(Debug, Clone, Deserialize)]
// No `deny_unknown_fields`: variables of other tools that share the prefix (and the test
// harness's) are not ours, and are ignored.
#[serde(default)]
pub struct Settings {
    // ---- Both runtimes ----
    /// Allow partner endpoints on loopback/private addresses and plain http (development only).
    /// Unset: false on AWS, true in seyaha-local (so its demo supplier on loopback works).
    pub allow_private_endpoints: Option<bool>,
    /// Connect timeout for calls to a partner's OCTO API, in seconds.
    pub octo_connect_timeout_secs: u64,
    /// Timeout for a whole call to a partner's OCTO API (body included), in seconds.
    pub octo_timeout_secs: u64,
    /// Largest OCTO response accepted, in bytes (every call but `GET /products`, which streams).
    pub octo_max_response_bytes: usize,
    /// Timeout for the whole streamed `GET /products` (body included), in seconds; keep it
    /// below the lease (`sync_lease_secs`) and the worker's own timeout.
    pub octo_catalog_timeout_secs: u64,
    /// Most bytes of a streamed `GET /products` read before the sync is given up (a guard
    /// against an endless body: memory does not grow with the body).
    pub octo_max_catalog_bytes: u64,
    /// Largest single product of `GET /products` read, in bytes as sent; a larger one is
    /// rejected unread (memory is at most one product).
    pub sync_max_product_bytes: usize,
    /// How long a sync may hold its lease, in seconds (a crashed sync blocks no longer).
    pub sync_lease_secs: u64,
    /// How long a webhook-triggered sync may run inside the request before handing off, in ms.
    pub sync_request_budget_ms: u64,
    /// How long a fallback sync (notify for an unknown product) waits so a burst coalesces, in s.
    pub fallback_delay_secs: u64,
    /// How long a partner credential read from the secret store is cached, in seconds.
    pub secret_cache_secs: u64,
    /// Availability slots are kept this many days after they start, then forgotten.
    pub slot_retention_days: u64,
    /// Webhook calls (sync trigger, notify) one integration may make per minute; 0: no limit.
    pub webhook_rate_per_minute: u32,
    /// The most activities one integration stores, active and deactivated; a product past it
    /// is rejected with the reason in the sync log.
    pub catalog_max_activities: u64,
    /// The most bytes of activities (as JSON) one integration stores, active and deactivated;
    /// a product past it is rejected with the reason in the sync log.
    pub catalog_max_bytes: u64,
    /// A deactivated activity is removed this many days after its deactivation (by the next
    /// full sync of its integration), and stops counting against the caps.
    pub catalog_inactive_retention_days: u64,
    /// How long a rotated-out webhook secret keeps working beside the new one, in hours
    /// (0 to [`MAX_SECRET_OVERLAP_HOURS`]; 0: it stops at once).
    pub secret_overlap_hours: u64,
    /// Integrations per fan-out page job (the nightly run, sync-all): one job lists this many,
    /// requests their syncs and queues the next page (1 to 1000).
    pub fan_out_page_size: usize,
    /// A fan-out's syncs are spread over this many seconds from its start, each at a point fixed
    /// by a hash of its id, so a partner platform is not called by all its suppliers at once
    /// (0: all at once; at most 86400).
    pub fan_out_window_secs: u64,
    /// When set, JWTs must carry this `iss` (empty: not checked).
    pub jwt_issuer: Option<String>,
    /// When set, JWTs must carry this `aud` (empty: not checked).
    pub jwt_audience: Option<String>,
    /// The longest JWT lifetime accepted, in seconds: `exp - iat` (or `exp - now` without `iat`);
    /// 0: no maximum.
    pub jwt_max_lifetime_secs: u64,
    /// A PEM public key (RSA: RS256; P-256 EC: ES256) JWTs are verified with instead of the HS256
    /// secret; only its algorithm is then accepted and no secret is read. Empty: HS256.
    pub jwt_public_key: Option<String>,

    // ---- AWS (the Lambda functions; template.yaml sets these) ----
    /// The DynamoDB table.
    pub table_name: Option<String>,
    /// The SQS queue of real-time jobs (webhook hand-offs, fallbacks, follow-ups, product syncs,
    /// availability pulls, subscriptions, an admin's sync of one integration).
    pub queue_url: Option<String>,
    /// The SQS queue of bulk jobs: fan-out pages and the syncs they request.
    pub bulk_queue_url: Option<String>,
    /// The API's public base URL (scheme and host, no path): partners' platforms push to
    /// `{public_url}/api/v1/partner-integrations/{id}/octo/events`. Unset: no push
    /// subscriptions (seyaha-local uses its own address).
    pub public_url: Option<String>,
    /// Queue push-subscription jobs although this process has no public URL: on AWS only the
    /// sync worker, which runs them, is given the HTTP API's URL (the API's own functions
    /// cannot refer to it: the API refers to them, a dependency cycle CloudFormation refuses),
    /// and the API functions that approve and patch integrations set this instead.
    pub push_subscriptions: bool,
    /// Secrets Manager names start with this: `{prefix}/integrations/{id}/auth-key`.
    pub secret_prefix: String,
    /// Name or ARN of the secret holding the JWT signing key (only `register` needs it).
    pub jwt_secret_id: Option<String>,
    /// The CloudWatch namespace of the metrics the functions print (Embedded Metric Format);
    /// the template's dashboard and alarm read the same one.
    pub metrics_namespace: String,

    // ---- seyaha-local ----
    /// Where the store, the credentials and the generated JWT secret live.
    pub data_dir: PathBuf,
    /// HS256 secret for partner and admin JWTs; generated into the data dir when unset.
    #[serde(deserialize_with = "secret")]
    pub jwt_secret: Option<SecretString>,
    /// When the nightly sync runs: a 5-field cron pattern in UTC (on AWS: the template's
    /// `NightlySchedule` parameter).
    pub nightly_cron: String,
    /// Log format on stderr: `text` or `json` (Lambda always logs JSON).
    pub log_format: LogFormat,
    /// A client must send a whole request head within this many seconds, and a keep-alive
    /// connection idle this long is closed.
    pub header_read_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections one client address may hold at once; past it, its new ones are closed at
    /// once, so one client cannot take the whole `max_connections`.
    pub max_connections_per_client: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

fn secret<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(SecretString::from))
}

/// Seconds in a day, for the settings given in days.
const DAY_SECS: u64 = 24 * 3600;

/// Each default is stated once: a setting the core also takes (the OCTO client's limits, the
/// engine's, the catalog caps) has the default of the core's own configuration, which the
/// tests and benches that build the core without `Settings` use too.
impl Default for Settings {
    fn default() -> Self {
        let octo = OctoClientConfig::default();
        let sync = SyncConfig::default();
        let catalog = sync.catalog_limits;
        Self {
            allow_private_endpoints: None,
            octo_connect_timeout_secs: octo.connect_timeout.as_secs(),
            octo_timeout_secs: octo.request_timeout.as_secs(),
            octo_max_response_bytes: octo.max_response_bytes,
            octo_catalog_timeout_secs: octo.catalog_timeout.as_secs(),
            octo_max_catalog_bytes: octo.max_catalog_bytes,
            sync_max_product_bytes: sync.max_product_bytes,
            sync_lease_secs: sync.lease.as_secs(),
            sync_request_budget_ms: sync.request_budget.as_millis() as u64,
            fallback_delay_secs: sync.fallback_delay.as_secs(),
            secret_cache_secs: 300,
            slot_retention_days: sync.slot_retention.as_secs() / DAY_SECS,
            webhook_rate_per_minute: 600,
            catalog_max_activities: catalog.max_activities,
            catalog_max_bytes: catalog.max_bytes,
            catalog_inactive_retention_days: catalog.inactive_retention.as_secs() / DAY_SECS,
            secret_overlap_hours: 24,
            fan_out_page_size: sync.fan_out_page,
            // The engine alone queues a fan-out's syncs at once (what tests want); a deployment
            // spreads its nightly run over an hour.
            fan_out_window_secs: 3600,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_max_lifetime_secs: 0,
            jwt_public_key: None,
            table_name: None,
            queue_url: None,
            bulk_queue_url: None,
            public_url: None,
            push_subscriptions: false,
            secret_prefix: "seyaha".into(),
            jwt_secret_id: None,
            metrics_namespace: DEFAULT_METRICS_NAMESPACE.into(),
            data_dir: PathBuf::from(".seyaha"),
            jwt_secret: None,
            nightly_cron: "0 3 * * *".into(),
            log_format: LogFormat::Text,
            header_read_timeout_secs: 10,
            max_connections: 1024,
            max_connections_per_client: 256,
        }
    }
}

/// The most integrations one fan-out page job lists (one store query's worth).
pub const MAX_FAN_OUT_PAGE_SIZE: usize = 1000;
/// The longest fan-out window: nightly runs must not overlap.
pub const MAX_FAN_OUT_WINDOW_SECS: u64 = 86_400;

/// Where the functions' metrics go unless `SEYAHA_METRICS_NAMESPACE` says otherwise.
pub const DEFAULT_METRICS_NAMESPACE: &str = "Seyaha/PartnerIntegrations";

/// What CloudWatch accepts as a custom namespace.
fn valid_metrics_namespace(namespace: &str) -> bool {
    (1..=255).contains(&namespace.len())
        && !namespace.starts_with("AWS/")
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/#: ".contains(&b))
}

/// A setting that cannot be used; the message names the environment variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {name} is required: set it to {what}")]
    Missing { name: String, what: &'static str },
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

/// The environment variable of a field.
pub fn variable(field: &str) -> String {
    format!("{PREFIX}{}", field.to_ascii_uppercase())
}

impl Settings {
    /// Reads every `SEYAHA_*` variable of this process. Empty values count as unset.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `(name, value)` pairs as the environment would give them.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut fields = HashMap::new();
        for (name, value) in vars {
            let Some(field) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if !value.trim().is_empty() {
                fields.insert(field.to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let settings: Self = match envy::from_iter::<_, Self>(fields.clone()) {
            Ok(settings) => settings,
            Err(error) => return Err(name_the_culprit(fields, error)),
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |field: &str, reason: &str| {
            Err(SettingsError::Invalid {
                name: variable(field),
                reason: reason.into(),
            })
        };
        if self.octo_connect_timeout_secs == 0 {
            return invalid("octo_connect_timeout_secs", "must be at least 1");
        }
        if let Some(public_url) = &self.public_url {
            let parsed = url::Url::parse(public_url);
            let usable = parsed.as_ref().is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none()
            });
            if !usable {
                return invalid(
                    "public_url",
                    "must be an absolute http(s) URL without query or fragment, e.g. https://api.example.com",
                );
            }
        }
        if !valid_metrics_namespace(&self.metrics_namespace) {
            return invalid(
                "metrics_namespace",
                "must be 1 to 255 of A-Z a-z 0-9 . - _ / # : and space, and not start with AWS/ (e.g. Seyaha/PartnerIntegrations)",
            );
        }
        if self.header_read_timeout_secs == 0 {
            return invalid("header_read_timeout_secs", "must be at least 1");
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if self.max_connections_per_client == 0 {
            return invalid("max_connections_per_client", "must be at least 1");
        }
        if self.octo_timeout_secs == 0 {
            return invalid("octo_timeout_secs", "must be at least 1");
        }
        if self.octo_max_response_bytes == 0 {
            return invalid("octo_max_response_bytes", "must be at least 1");
        }
        if self.octo_catalog_timeout_secs == 0 {
            return invalid("octo_catalog_timeout_secs", "must be at least 1");
        }
        if self.octo_max_catalog_bytes == 0 {
            return invalid("octo_max_catalog_bytes", "must be at least 1");
        }
        if self.sync_max_product_bytes == 0 {
            return invalid("sync_max_product_bytes", "must be at least 1");
        }
        if self.sync_lease_secs == 0 {
            return invalid("sync_lease_secs", "must be at least 1");
        }
        if self.slot_retention_days == 0 {
            return invalid("slot_retention_days", "must be at least 1");
        }
        if self.catalog_max_activities == 0 {
            return invalid("catalog_max_activities", "must be at least 1");
        }
        if self.catalog_max_bytes == 0 {
            return invalid("catalog_max_bytes", "must be at least 1");
        }
        if self.catalog_inactive_retention_days == 0 {
            return invalid("catalog_inactive_retention_days", "must be at least 1");
        }
        // 0 is allowed: an operator may want a rotation to cut the old secret off at once.
        if self.secret_overlap_hours > MAX_SECRET_OVERLAP_HOURS {
            return invalid(
                "secret_overlap_hours",
                &format!("must be at most {MAX_SECRET_OVERLAP_HOURS} (30 days)"),
            );
        }
        if !(1..=MAX_FAN_OUT_PAGE_SIZE).contains(&self.fan_out_page_size) {
            return invalid(
                "fan_out_page_size",
                &format!("must be 1 to {MAX_FAN_OUT_PAGE_SIZE}"),
            );
        }
        if self.fan_out_window_secs > MAX_FAN_OUT_WINDOW_SECS {
            return invalid(
                "fan_out_window_secs",
                &format!("must be at most {MAX_FAN_OUT_WINDOW_SECS} (a day)"),
            );
        }
        self.jwt_public_key()?;
        if self.fallback_delay_secs > 900 {
            return invalid(
                "fallback_delay_secs",
                "must be at most 900 (SQS delays up to 15 minutes)",
            );
        }
        Ok(())
    }

    /// The SSRF guard's setting, with the runtime's default when unset.
    pub fn allow_private_endpoints_or(&self, runtime_default: bool) -> bool {
        self.allow_private_endpoints.unwrap_or(runtime_default)
    }

    pub fn octo(&self) -> OctoClientConfig {
        OctoClientConfig {
            connect_timeout: Duration::from_secs(self.octo_connect_timeout_secs),
            request_timeout: Duration::from_secs(self.octo_timeout_secs),
            max_response_bytes: self.octo_max_response_bytes,
            catalog_timeout: Duration::from_secs(self.octo_catalog_timeout_secs),
            max_catalog_bytes: self.octo_max_catalog_bytes,
        }
    }

    pub fn sync(&self) -> SyncConfig {
        SyncConfig {
            lease: Duration::from_secs(self.sync_lease_secs),
            request_budget: Duration::from_millis(self.sync_request_budget_ms),
            fallback_delay: Duration::from_secs(self.fallback_delay_secs),
            slot_retention: self.slot_retention(),
            fan_out_page: self.fan_out_page_size,
            fan_out_window: Duration::from_secs(self.fan_out_window_secs),
            max_product_bytes: self.sync_max_product_bytes,
            catalog_limits: crate::domain::CatalogLimits {
                max_activities: self.catalog_max_activities,
                max_bytes: self.catalog_max_bytes,
                inactive_retention: Duration::from_secs(
                    self.catalog_inactive_retention_days * DAY_SECS,
                ),
            },
            ..SyncConfig::default()
        }
    }

    pub fn slot_retention(&self) -> Duration {
        Duration::from_secs(self.slot_retention_days * DAY_SECS)
    }

    /// Whose tokens are accepted; an empty value (the template's default) is not checked.
    pub fn token_scope(&self) -> crate::domain::TokenScope {
        let set = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        crate::domain::TokenScope {
            issuer: set(&self.jwt_issuer),
            audience: set(&self.jwt_audience),
        }
    }

    /// What a token must satisfy besides its signature.
    pub fn token_rules(&self) -> crate::domain::TokenRules {
        let max_lifetime =
            Some(Duration::from_secs(self.jwt_max_lifetime_secs)).filter(|max| !max.is_zero());
        crate::domain::TokenRules {
            scope: self.token_scope(),
            max_lifetime,
        }
    }

    /// The public key tokens are verified with, if one is configured (else HS256).
    pub fn jwt_public_key(&self) -> Result<Option<crate::domain::PublicKey>, SettingsError> {
        match self
            .jwt_public_key
            .as_deref()
            .map(str::trim)
            .filter(|pem| !pem.is_empty())
        {
            None => Ok(None),
            Some(pem) => crate::domain::PublicKey::from_pem(pem)
                .map(Some)
                .map_err(|reason| SettingsError::Invalid {
                    name: variable("jwt_public_key"),
                    reason,
                }),
        }
    }

    /// How long a rotated-out webhook secret keeps working.
    pub fn secret_overlap(&self) -> Duration {
        Duration::from_secs(self.secret_overlap_hours * 3600)
    }

    pub fn secret_cache(&self) -> Duration {
        Duration::from_secs(self.secret_cache_secs)
    }

    /// A required AWS setting; `what` says what to set it to (the message names both).
    pub fn required<'a>(
        &self,
        field: &str,
        what: &'static str,
        value: &'a Option<String>,
    ) -> Result<&'a str, SettingsError> {
        value.as_deref().ok_or_else(|| SettingsError::Missing {
            name: variable(field),
            what,
        })
    }
}

/// envy's errors do not always say which variable was wrong: read each one alone to find it.
fn name_the_culprit(fields: HashMap<String, String>, error: envy::Error) -> SettingsError {
    for (field, value) in fields {
        if let Err(error) = envy::from_iter::<_, Settings>([(field.clone(), value.clone())]) {
            let reason = error.to_string();
            let reason = reason
                .split(" while parsing value")
                .next()
                .unwrap_or(&reason)
                .to_owned();
            return SettingsError::Invalid {
                name: variable(&field),
                reason: format!("{value:?}: {reason}"),
            };
        }
    }
    SettingsError::Invalid {
        name: format!("{PREFIX}*"),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_hold_without_variables() {
        let settings =
            Settings::from_vars(vars(&[("PATH", "/bin"), ("SEYAHA_SOMETHING_ELSE", "x")])).unwrap();
        assert_eq!(settings.sync().lease, Duration::from_secs(300));
        assert_eq!(settings.octo().request_timeout, Duration::from_secs(20));
        assert_eq!(settings.octo().max_response_bytes, 50 * 1024 * 1024);
        assert_eq!(settings.octo().catalog_timeout, Duration::from_secs(240));
        assert_eq!(settings.octo().max_catalog_bytes, 2 * 1024 * 1024 * 1024);
        assert_eq!(settings.sync().max_product_bytes, 1024 * 1024);
        assert!(!settings.allow_private_endpoints_or(false));
        assert!(settings.allow_private_endpoints_or(true));
        assert_eq!(settings.secret_overlap(), Duration::from_secs(24 * 3600));
        assert_eq!(
            (settings.sync().fan_out_page, settings.sync().fan_out_window),
            (100, Duration::from_secs(3600))
        );
    }

    #[test]
    fn the_fan_out_page_and_window_are_bounded() {
        let read = |name: &str, value: &str| Settings::from_vars(vars(&[(name, value)]));
        assert_eq!(
            read("SEYAHA_FAN_OUT_PAGE_SIZE", "3")
                .unwrap()
                .sync()
                .fan_out_page,
            3
        );
        assert_eq!(
            read("SEYAHA_FAN_OUT_WINDOW_SECS", "0")
                .unwrap()
                .sync()
                .fan_out_window,
            Duration::ZERO
        );
        for (name, value) in [
            ("SEYAHA_FAN_OUT_PAGE_SIZE", "0"),
            ("SEYAHA_FAN_OUT_PAGE_SIZE", "1001"),
            ("SEYAHA_FAN_OUT_WINDOW_SECS", "86401"),
        ] {
            let error = read(name, value).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn the_metrics_namespace_is_one_cloudwatch_accepts() {
        let namespace =
            |value: &str| Settings::from_vars(vars(&[("SEYAHA_METRICS_NAMESPACE", value)]));
        assert_eq!(
            namespace("").unwrap().metrics_namespace,
            "Seyaha/PartnerIntegrations",
            "empty: the default"
        );
        assert_eq!(
            namespace("Seyaha/Staging").unwrap().metrics_namespace,
            "Seyaha/Staging"
        );
        let too_long = "S".repeat(256);
        for refused in [too_long.as_str(), "AWS/Lambda", "Seyaha\\n", "Seyaha/é"] {
            let error = namespace(refused).unwrap_err().to_string();
            assert!(
                error.contains("SEYAHA_METRICS_NAMESPACE"),
                "{refused:?}: {error}"
            );
        }
    }

    #[test]
    fn the_secret_overlap_is_0_to_30_days() {
        let hours =
            |value: &str| Settings::from_vars(vars(&[("SEYAHA_SECRET_OVERLAP_HOURS", value)]));
        assert_eq!(
            hours("0").unwrap().secret_overlap(),
            Duration::ZERO,
            "0: a rotation cuts the old secret off at once"
        );
        assert_eq!(
            hours("720").unwrap().secret_overlap(),
            Duration::from_secs(720 * 3600)
        );
        let error = hours("721").unwrap_err().to_string();
        assert!(
            error.contains("SEYAHA_SECRET_OVERLAP_HOURS") && error.contains("at most 720"),
            "{error}"
        );
        let error = hours("-1").unwrap_err().to_string();
        assert!(
            error.contains("SEYAHA_SECRET_OVERLAP_HOURS") && error.contains("-1"),
            "{error}"
        );
    }

    #[test]
    fn reads_and_names_every_variable() {
        let settings = Settings::from_vars(vars(&[
            ("SEYAHA_SYNC_LEASE_SECS", "60"),
            ("SEYAHA_FALLBACK_DELAY_SECS", "0"),
            ("SEYAHA_ALLOW_PRIVATE_ENDPOINTS", "false"),
            ("SEYAHA_TABLE_NAME", "t"),
            ("SEYAHA_LOG_FORMAT", "json"),
            ("SEYAHA_OCTO_TIMEOUT_SECS", ""),
        ]))
        .unwrap();
        assert_eq!(settings.sync().lease, Duration::from_secs(60));
        assert_eq!(settings.sync().fallback_delay, Duration::ZERO);
        assert_eq!(settings.allow_private_endpoints, Some(false));
        assert_eq!(settings.table_name.as_deref(), Some("t"));
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.octo_timeout_secs, 20, "empty means unset");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let error = Settings::from_vars(vars(&[("SEYAHA_OCTO_TIMEOUT_SECS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SEYAHA_OCTO_TIMEOUT_SECS") && error.contains("soon"),
            "{error}"
        );
        let error = Settings::from_vars(vars(&[("SEYAHA_ALLOW_PRIVATE_ENDPOINTS", "yes")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("SEYAHA_ALLOW_PRIVATE_ENDPOINTS"), "{error}");
        let error = Settings::from_vars(vars(&[("SEYAHA_SYNC_LEASE_SECS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SEYAHA_SYNC_LEASE_SECS") && error.contains("at least 1"),
            "{error}"
        );
        let error = Settings::from_vars(vars(&[("SEYAHA_LOG_FORMAT", "xml")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("SEYAHA_LOG_FORMAT"), "{error}");
        let settings = Settings::default();
        assert_eq!(
            settings
                .required(
                    "table_name",
                    "the DynamoDB table's name",
                    &settings.table_name
                )
                .unwrap_err()
                .to_string(),
            "environment variable SEYAHA_TABLE_NAME is required: set it to the DynamoDB table's name"
        );
    }

    #[test]
    fn jwt_public_key_and_max_lifetime_are_read_and_checked() {
        let read = |pairs: &[(&str, &str)]| Settings::from_vars(vars(pairs));
        let defaults = read(&[]).unwrap();
        assert!(
            defaults.jwt_public_key().unwrap().is_none(),
            "HS256 unless a key is set"
        );
        assert_eq!(
            defaults.token_rules().max_lifetime,
            None,
            "no maximum by default"
        );
        let settings = read(&[("SEYAHA_JWT_MAX_LIFETIME_SECS", "3600")]).unwrap();
        assert_eq!(
            settings.token_rules().max_lifetime,
            Some(Duration::from_secs(3600))
        );
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/jwt/es256-public.pem"
        ))
        .unwrap();
        let key = read(&[("SEYAHA_JWT_PUBLIC_KEY", &pem)])
            .unwrap()
            .jwt_public_key()
            .unwrap()
            .unwrap();
        assert_eq!(key.algorithm(), jsonwebtoken::Algorithm::ES256);
        let error = read(&[("SEYAHA_JWT_PUBLIC_KEY", "ssh-rsa AAAA")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("SEYAHA_JWT_PUBLIC_KEY"), "{error}");
    }
}
