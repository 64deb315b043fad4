//! A short-lived cache in front of any secret store (`SEYAHA_SECRET_CACHE_SECS`), so a burst
//! of syncs does not read Secrets Manager (or the credential file) every time. Our own writes
//! and deletes invalidate the entry at once; a change made elsewhere is seen after the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{AuthKey, IntegrationId, Timestamp};
use crate::ports::{Clock, SecretStore, SecretStoreError};

pub struct CachedSecretStore {
    inner: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    entries: Mutex<HashMap<IntegrationId, (AuthKey, Timestamp)>>,
}

impl CachedSecretStore {
    pub fn new(inner: Arc<dyn SecretStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self { inner, clock, ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<IntegrationId, (AuthKey, Timestamp)>> {
        // A panic while holding the lock leaves a map that is still consistent: keep using it.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SecretStore for CachedSecretStore {
    async fn put_auth_key(&self, id: &IntegrationId, key: &AuthKey) -> Result<(), SecretStoreError> {
        self.entries().remove(id);
        self.inner.put_auth_key(id, key).await
    }

    async fn get_auth_key(&self, id: &IntegrationId) -> Result<Option<AuthKey>, SecretStoreError> {
        let now = self.clock.now();
        if let Some((key, expires_at)) = self.entries().get(id)
            && *expires_at > now
        {
            return Ok(Some(key.clone()));
        }
        let key = self.inner.get_auth_key(id).await?;
        if let Some(key) = &key
            && !self.ttl.is_zero()
        {
            self.entries().insert(*id, (key.clone(), now.plus_millis(self.ttl.as_millis() as i64)));
        }
        Ok(key)
    }

    async fn delete_auth_key(&self, id: &IntegrationId) -> Result<(), SecretStoreError> {
        self.entries().remove(id);
        self.inner.delete_auth_key(id).await
    }
}
