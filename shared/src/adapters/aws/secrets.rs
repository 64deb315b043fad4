//! Partner credentials in Secrets Manager: one secret per integration, cached in memory for a
//! short time so a sync does not call Secrets Manager every time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::domain::{AuthKey, IntegrationId};
use crate::ports::{SecretStore, SecretStoreError};

pub struct AwsSecretStore {
    client: Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<IntegrationId, (AuthKey, Instant)>>,
}

fn failed(error: impl std::error::Error + 'static) -> SecretStoreError {
    SecretStoreError(DisplayErrorContext(error).to_string())
}

impl AwsSecretStore {
    /// Secrets are named `{prefix}/integrations/{id}/auth-key`.
    pub fn new(client: Client, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self { client, prefix: prefix.into().trim_end_matches('/').to_owned(), ttl, cache: Mutex::new(HashMap::new()) }
    }

    fn name(&self, id: &IntegrationId) -> String {
        format!("{}/integrations/{id}/auth-key", self.prefix)
    }

    fn forget(&self, id: &IntegrationId) {
        self.cache.lock().expect("cache lock").remove(id);
    }
}

#[async_trait]
impl SecretStore for AwsSecretStore {
    async fn put_auth_key(&self, id: &IntegrationId, key: &AuthKey) -> Result<(), SecretStoreError> {
        self.forget(id);
        let name = self.name(id);
        let created = self.client.create_secret().name(&name).secret_string(key.expose()).send().await;
        match created {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
                self.client.put_secret_value().secret_id(&name).secret_string(key.expose()).send().await.map_err(failed)?;
                Ok(())
            }
            Err(error) => Err(failed(error)),
        }
    }

    async fn get_auth_key(&self, id: &IntegrationId) -> Result<Option<AuthKey>, SecretStoreError> {
        if let Some((key, fetched)) = self.cache.lock().expect("cache lock").get(id)
            && fetched.elapsed() < self.ttl
        {
            return Ok(Some(key.clone()));
        }
        let result = self.client.get_secret_value().secret_id(self.name(id)).send().await;
        let value = match result {
            Ok(output) => output.secret_string,
            Err(error)
                if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception() || e.is_invalid_request_exception()) =>
            {
                None
            }
            Err(error) => return Err(failed(error)),
        };
        let Some(value) = value else { return Ok(None) };
        let key = AuthKey::parse(&value).map_err(|e| SecretStoreError(format!("stored credential is invalid: {e}")))?;
        self.cache.lock().expect("cache lock").insert(*id, (key.clone(), Instant::now()));
        Ok(Some(key))
    }

    async fn delete_auth_key(&self, id: &IntegrationId) -> Result<(), SecretStoreError> {
        self.forget(id);
        let result = self.client.delete_secret().secret_id(self.name(id)).force_delete_without_recovery(true).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(error) => Err(failed(error)),
        }
    }
}
