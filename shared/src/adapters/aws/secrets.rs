//! Partner credentials in Secrets Manager: one secret per integration. (The composition root
//! puts a short cache in front, so a sync does not call Secrets Manager every time.)

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::SdkFailure;
use crate::domain::{AuthKey, IntegrationId};
use crate::ports::{SecretStore, SecretStoreError};

pub struct AwsSecretStore {
    client: Client,
    prefix: String,
}

/// Keeps the SDK error as the cause; its Display is the whole chain (`DisplayErrorContext`), which
/// the SDK's own Display leaves out.
fn failed<E: std::error::Error + Send + Sync + 'static>(error: E) -> SecretStoreError {
    SecretStoreError::new(SdkFailure::new(error))
}

impl AwsSecretStore {
    /// Secrets are named `{prefix}/integrations/{id}/auth-key`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into().trim_end_matches('/').to_owned(),
        }
    }

    fn name(&self, id: &IntegrationId) -> String {
        format!("{}/integrations/{id}/auth-key", self.prefix)
    }
}

#[async_trait]
impl SecretStore for AwsSecretStore {
    async fn put_auth_key(
        &self,
        id: &IntegrationId,
        key: &AuthKey,
    ) -> Result<(), SecretStoreError> {
        let name = self.name(id);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .secret_string(key.expose())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                self.client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(key.expose())
                    .send()
                    .await
                    .map_err(failed)?;
                Ok(())
            }
            Err(error) => Err(failed(error)),
        }
    }

    async fn get_auth_key(&self, id: &IntegrationId) -> Result<Option<AuthKey>, SecretStoreError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.name(id))
            .send()
            .await;
        let value = match result {
            Ok(output) => output.secret_string,
            Err(error)
                if error.as_service_error().is_some_and(|e| {
                    e.is_resource_not_found_exception() || e.is_invalid_request_exception()
                }) =>
            {
                None
            }
            Err(error) => return Err(failed(error)),
        };
        let Some(value) = value else { return Ok(None) };
        AuthKey::parse(&value)
            .map(Some)
            .map_err(|e| SecretStoreError::new(format!("stored credential is invalid: {e}")))
    }

    async fn delete_auth_key(&self, id: &IntegrationId) -> Result<(), SecretStoreError> {
        let result = self
            .client
            .delete_secret()
            .secret_id(self.name(id))
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(failed(error)),
        }
    }
}
