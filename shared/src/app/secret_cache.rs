//! A short-lived cache in front of any secret store (`SEYAHA_SECRET_CACHE_SECS`), so a burst
//! of syncs does not read Secrets Manager (or the credential file) every time. Our own writes
//! and deletes invalidate the entry at once. A change made by another process (register
//! writes the new `auth_key`, the sync functions read it) is seen at once too: each entry
//! remembers the credential version it was read for, and a read for a newer version (the
//! integration record's, moved on by every credential change) goes to the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{AuthKey, IntegrationId, Timestamp};
use crate::ports::{Clock, SecretStore, SecretStoreError};

/// A cached credential: the key, when it expires, and the credential version it was read for.
struct Entry {
    key: AuthKey,
    expires_at: Timestamp,
    version: u64,
}

pub struct CachedSecretStore {
    inner: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    entries: Mutex<HashMap<IntegrationId, Entry>>,
}

impl CachedSecretStore {
    pub fn new(inner: Arc<dyn SecretStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            inner,
            clock,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<IntegrationId, Entry>> {
        // A panic while holding the lock leaves a map that is still consistent: keep using it.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SecretStore for CachedSecretStore {
    async fn put_auth_key(
        &self,
        id: &IntegrationId,
        key: &AuthKey,
    ) -> Result<(), SecretStoreError> {
        self.entries().remove(id);
        self.inner.put_auth_key(id, key).await
    }

    async fn get_auth_key(&self, id: &IntegrationId) -> Result<Option<AuthKey>, SecretStoreError> {
        self.get_auth_key_of_version(id, 0).await
    }

    async fn get_auth_key_of_version(
        &self,
        id: &IntegrationId,
        version: u64,
    ) -> Result<Option<AuthKey>, SecretStoreError> {
        let now = self.clock.now();
        if let Some(entry) = self.entries().get(id)
            && entry.expires_at > now
            && entry.version >= version
        {
            return Ok(Some(entry.key.clone()));
        }
        let key = self.inner.get_auth_key(id).await?;
        if let Some(key) = &key
            && !self.ttl.is_zero()
        {
            let entry = Entry {
                key: key.clone(),
                expires_at: now.plus_millis(self.ttl.as_millis() as i64),
                version,
            };
            self.entries().insert(*id, entry);
        }
        Ok(key)
    }

    async fn delete_auth_key(&self, id: &IntegrationId) -> Result<(), SecretStoreError> {
        self.entries().remove(id);
        self.inner.delete_auth_key(id).await
    }
}
