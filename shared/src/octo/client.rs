//! HTTP client for a partner's OCTO API, with the SSRF guard, timeouts and a size cap on
//! every call. Built once per process and shared: it pools connections.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{StatusCode, redirect};

use crate::domain::{AuthKey, AuthType, BaseUrl};
use crate::net::{AddressRefused, EndpointPolicy, EndpointRefused};

/// The capabilities we ask for: content gives titles, pricing gives `pricingFrom`.
pub const OCTO_CAPABILITIES: &str = "octo/content,octo/pricing";
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone, Copy)]
pub struct OctoClientConfig {
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
}

impl Default for OctoClientConfig {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), request_timeout: Duration::from_secs(20), max_response_bytes: 50 * 1024 * 1024 }
    }
}

/// How to authenticate to one partner.
#[derive(Debug, Clone)]
pub struct OctoCredentials {
    pub auth_type: AuthType,
    pub auth_key: AuthKey,
}

/// Why a call to the partner failed. Messages name the cause and never include the
/// credential or the partner's response body.
#[derive(Debug, thiserror::Error)]
pub enum OctoError {
    #[error("refused to call base_url: it {0}")]
    Refused(EndpointRefused),
    #[error("could not connect to {host}")]
    Connect { host: String },
    #[error("GET /products timed out after {seconds} s")]
    Timeout { seconds: u64 },
    #[error("authentication refused: GET /products returned HTTP {status} (check auth_type and auth_key)")]
    AuthRefused { status: u16 },
    #[error("GET /products returned HTTP {status}")]
    Status { status: u16 },
    #[error("GET /products returned more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("GET /products failed: {0}")]
    Transport(String),
}

#[derive(Clone)]
pub struct OctoClient {
    http: reqwest::Client,
    policy: EndpointPolicy,
    config: OctoClientConfig,
}

impl OctoClient {
    pub fn new(policy: EndpointPolicy, config: OctoClientConfig) -> Self {
        let redirect_policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match BaseUrl::parse(attempt.url().as_str()) {
                Ok(target) if policy.check_url(&target).is_ok() => attempt.follow(),
                _ => attempt.error(AddressRefused),
            }
        });
        let http = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(policy.resolver()))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(redirect_policy)
            // A proxy from the environment would resolve names itself, around our guard.
            .no_proxy()
            .user_agent(concat!("seyaha-partner-integrations/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the OCTO HTTP client configuration is valid");
        Self { http, policy, config }
    }

    /// `GET {base_url}/products`: the raw body of a 2xx answer, at most `max_response_bytes`.
    pub async fn fetch_products_body(&self, base_url: &BaseUrl, credentials: &OctoCredentials) -> Result<Vec<u8>, OctoError> {
        self.policy.check_url(base_url).map_err(OctoError::Refused)?;
        let mut authorization = HeaderValue::from_str(&credentials.auth_type.authorization_value(credentials.auth_key.expose()))
            .map_err(|_| OctoError::Transport("auth_key is not a valid header value".into()))?;
        authorization.set_sensitive(true);
        let request = self
            .http
            .get(base_url.endpoint("products"))
            .header(AUTHORIZATION, authorization)
            .header("Octo-Capabilities", OCTO_CAPABILITIES)
            .header(ACCEPT, "application/json");
        let mut response = request.send().await.map_err(|e| self.classify(base_url, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => OctoError::AuthRefused { status: status.as_u16() },
                _ => OctoError::Status { status: status.as_u16() },
            });
        }
        let limit = self.config.max_response_bytes;
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(OctoError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(base_url, e))? {
            if body.len() + chunk.len() > limit {
                return Err(OctoError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn classify(&self, base_url: &BaseUrl, error: reqwest::Error) -> OctoError {
        let mut source = error.source();
        while let Some(cause) = source {
            if cause.downcast_ref::<AddressRefused>().is_some() {
                return OctoError::Refused(EndpointRefused::RefusedAddress);
            }
            source = cause.source();
        }
        if error.is_timeout() {
            OctoError::Timeout { seconds: self.config.request_timeout.as_secs().max(1) }
        } else if error.is_connect() {
            OctoError::Connect { host: base_url.host().to_string() }
        } else if error.is_redirect() {
            OctoError::Transport("too many redirects".into())
        } else if error.is_decode() || error.is_body() {
            OctoError::Transport("the response body could not be read".into())
        } else {
            OctoError::Transport("the request could not be completed".into())
        }
    }
}
