//! Partner credentials in files: one file per integration, mode 0600 in a 0700 directory,
//! replaced atomically (write a temporary file, fsync, rename).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::domain::{AuthKey, IntegrationId};
use crate::ports::{SecretStore, SecretStoreError};

#[derive(Debug, Clone)]
pub struct FileSecretStore {
    dir: PathBuf,
}

fn failed(error: impl Into<crate::ports::Cause>) -> SecretStoreError {
    SecretStoreError::new(error)
}

impl FileSecretStore {
    pub fn open(dir: &Path) -> Result<Self, SecretStoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(failed)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, id: &IntegrationId) -> PathBuf {
        // Ids are 24 hex characters, so they are always safe file names.
        self.dir.join(format!("{id}.auth_key"))
    }
}

#[async_trait]
impl SecretStore for FileSecretStore {
    async fn put_auth_key(
        &self,
        id: &IntegrationId,
        key: &AuthKey,
    ) -> Result<(), SecretStoreError> {
        let path = self.path(id);
        let temporary = path.with_extension("tmp");
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(key.expose().as_bytes())?;
            file.sync_all()?;
            fs::rename(&temporary, &path)
        })
        .await
        .map_err(failed)?
        .map_err(failed)
    }

    async fn get_auth_key(&self, id: &IntegrationId) -> Result<Option<AuthKey>, SecretStoreError> {
        match tokio::fs::read_to_string(self.path(id)).await {
            Ok(text) => AuthKey::parse(&text)
                .map(Some)
                .map_err(|e| failed(format!("stored credential is invalid: {e}"))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(failed(error)),
        }
    }

    async fn delete_auth_key(&self, id: &IntegrationId) -> Result<(), SecretStoreError> {
        match tokio::fs::remove_file(self.path(id)).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(failed(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_replaces_and_deletes_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::open(&dir.path().join("secrets")).unwrap();
        let id = IntegrationId::generate(0);
        assert!(store.get_auth_key(&id).await.unwrap().is_none());
        store
            .put_auth_key(&id, &AuthKey::parse("first").unwrap())
            .await
            .unwrap();
        store
            .put_auth_key(&id, &AuthKey::parse("second").unwrap())
            .await
            .unwrap();
        assert_eq!(
            store.get_auth_key(&id).await.unwrap().unwrap().expose(),
            "second"
        );
        let mode = fs::metadata(store.path(&id)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(dir.path().join("secrets"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        store.delete_auth_key(&id).await.unwrap();
        store.delete_auth_key(&id).await.unwrap();
        assert!(store.get_auth_key(&id).await.unwrap().is_none());
    }
}
