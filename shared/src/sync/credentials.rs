//! The partner credential of an integration, read from the secret store: every unit that calls
//! the partner (catalog sync, product sync, availability pull, subscriptions) asks it here.

use std::sync::Arc;

use crate::domain::Integration;
use crate::octo::OctoCredentials;
use crate::ports::{SecretStore, SecretStoreError};

/// What a run or subscription records when the integration has no stored credential.
pub(super) const NO_CREDENTIAL: &str = "no credential is stored for this integration";

#[derive(Clone)]
pub(super) struct Credentials {
    secrets: Arc<dyn SecretStore>,
}

impl Credentials {
    pub(super) fn new(secrets: Arc<dyn SecretStore>) -> Self {
        Self { secrets }
    }

    /// The partner credential of `integration` (`None`: none is stored).
    pub(super) async fn of(&self, integration: &Integration) -> Result<Option<OctoCredentials>, SecretStoreError> {
        let auth_key = self.secrets.get_auth_key(&integration.id).await?;
        Ok(auth_key.map(|auth_key| OctoCredentials { auth_type: integration.auth_type, auth_key }))
    }
}
