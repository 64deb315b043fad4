//! The partner credential of an integration, read from the secret store: every unit that calls
//! the partner (catalog sync, product sync, availability pull, subscriptions) asks it here.

use std::sync::Arc;

use crate::domain::IntegrationRecord;
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

    /// The partner credential of `record` (`None`: none is stored). A cached copy serves only
    /// if it was read for the record's credential version or a later one: a credential
    /// changed through another process is never used stale.
    pub(super) async fn of(
        &self,
        record: &IntegrationRecord,
    ) -> Result<Option<OctoCredentials>, SecretStoreError> {
        let integration = &record.integration;
        let auth_key = self
            .secrets
            .get_auth_key_of_version(&integration.id, record.credential_version)
            .await?;
        Ok(auth_key.map(|auth_key| OctoCredentials {
            auth_type: integration.auth_type,
            auth_key,
        }))
    }
}
