//! Subscribing Seyaha to the partner's push channels (docs/api.md, "Push subscriptions"), in the background:
//! after approval (and re-approval, and activation) the OCTO notifications capability is tried,
//! then OCTO webhooks, then none; revoking approval, pausing, a `base_url` change and delete
//! remove the subscriptions (best effort).
//!
//! Idempotent: an existing subscription to our URL whose delivery secret is the one we hold
//! (its digest) is reused, never duplicated; ours with another secret are replaced. The new
//! secret's digest is stored before the subscription is created, so a subscribe that dies
//! after the platform made it finds it and reuses it; the secret is accepted only once the
//! subscription is on record (`IntegrationRecord::delivery_secret`), and forgotten in the
//! same write as a failed create or a mode without subscription. A write about a `base_url`
//! the integration has left, or an integration no longer live, is dropped.
//!
//! It takes no lease (it writes no catalog) and calls only [`Credentials`]; the resubscribe
//! after a restart walks the live integrations with the fan-out's [`LivePages`].

use std::sync::Arc;

use super::credentials::{Credentials, NO_CREDENTIAL};
use super::fan_out::LivePages;
use super::runs::truncate;
use super::shared::{SyncError, SyncResult};
pub use crate::domain::Unsubscribe;
use crate::domain::{
    BaseUrl, CHANNELS, IntegrationId, IntegrationRecord, NotificationMode, Notifications,
    WebhookSecret, WebhookSecretDigest,
};
use crate::logging::Untrusted;
use crate::octo::{Channel, OctoClient, OctoCredentials, OctoError};
use crate::optimistic::{Change, update_record};
use crate::ports::{Clock, IntegrationStore, Ports, SyncJob, SyncQueue};

/// PushSubscriptions to the partners' push channels.
pub(super) struct PushSubscriptions {
    integrations: Arc<dyn IntegrationStore>,
    queue: Arc<dyn SyncQueue>,
    clock: Arc<dyn Clock>,
    octo: OctoClient,
    credentials: Credentials,
    /// The API's public base URL (`SEYAHA_PUBLIC_URL`): where partners' platforms push.
    public_url: Option<String>,
}

impl PushSubscriptions {
    pub(super) fn new(ports: &Ports, octo: OctoClient, credentials: Credentials) -> Self {
        Self {
            integrations: ports.integrations.clone(),
            queue: ports.queue.clone(),
            clock: ports.clock.clone(),
            octo,
            credentials,
            public_url: None,
        }
    }

    /// With a public URL, approved integrations are subscribed to their partner's push channel.
    pub(super) fn with_public_url(mut self, public_url: Option<String>) -> Self {
        self.public_url = public_url;
        self
    }

    /// The events URL Seyaha subscribes with, when it has a public URL.
    pub(super) fn events_url(&self, id: &IntegrationId) -> Option<String> {
        self.public_url.as_ref().map(|public| {
            format!(
                "{}{}/{id}/octo/events",
                public.trim_end_matches('/'),
                crate::domain::API_PREFIX
            )
        })
    }

    /// The subscribe job.
    pub(super) async fn subscribe(&self, id: IntegrationId) -> Result<SyncResult, SyncError> {
        let Some(url) = self.events_url(&id) else {
            return Ok(SyncResult::NotNeeded);
        };
        let Some(record) = self
            .integrations
            .get(&id)
            .await?
            .filter(|record| record.integration.is_live())
        else {
            return Ok(SyncResult::NotNeeded);
        };
        let base_url = &record.integration.base_url;
        let Some(credentials) = self.credentials.of(&record).await? else {
            return self
                .subscription_failed(id, base_url, NO_CREDENTIAL.into())
                .await;
        };
        for (channel, mode) in CHANNELS {
            let existing = match self
                .octo
                .list_subscriptions(channel, base_url, &credentials)
                .await
            {
                Ok(Some(existing)) => existing,
                Ok(None) => continue,
                Err(error) => {
                    return self
                        .subscription_failed(id, base_url, error.to_string())
                        .await;
                }
            };
            let ours: Vec<_> = existing
                .into_iter()
                .filter(|subscription| subscription.url == url)
                .collect();
            let holds_our_secret = |secret: &Option<String>| {
                secret.as_deref().is_some_and(|secret| {
                    Some(WebhookSecretDigest::of(secret)) == record.delivery_secret_digest
                })
            };
            let kept = ours
                .iter()
                .find(|subscription| holds_our_secret(&subscription.secret))
                .map(|subscription| subscription.id.clone());
            // Ours with a secret we no longer hold (or duplicates) would deliver to us in vain.
            for stale in ours
                .iter()
                .filter(|subscription| Some(&subscription.id) != kept.as_ref())
            {
                if let Err(error) = self
                    .octo
                    .delete_subscription(channel, base_url, &credentials, &stale.id)
                    .await
                {
                    tracing::warn!(integration_id = %id, error = %Untrusted(&error.to_string()), "could not remove a stale subscription");
                }
            }
            let subscription_id = match kept {
                Some(id) => id,
                None => match self
                    .create_subscription(id, channel, base_url, &credentials, &url)
                    .await?
                {
                    Some(Ok(created)) => created,
                    Some(Err(error)) => {
                        return self
                            .subscription_failed(id, base_url, error.to_string())
                            .await;
                    }
                    None => return Ok(SyncResult::NotNeeded),
                },
            };
            let now = self.clock.now();
            let notifications = Notifications {
                mode,
                subscription_ids: vec![subscription_id],
                subscribed_at: Some(now),
                error_message: None,
            };
            tracing::info!(integration_id = %id, mode = ?mode, "subscribed to the partner's push channel");
            self.set_notifications(id, base_url, notifications).await?;
            return Ok(SyncResult::NotNeeded);
        }
        let none = Notifications {
            mode: NotificationMode::None,
            subscription_ids: Vec::new(),
            subscribed_at: Some(self.clock.now()),
            error_message: None,
        };
        tracing::info!(integration_id = %id, "the partner offers no push channel: webhooks only");
        self.set_notifications(id, base_url, none).await?;
        Ok(SyncResult::NotNeeded)
    }

    /// Queues a subscribe job for every live integration with a subscription on record: after
    /// a restart of seyaha-local, whose demo supplier keeps its subscriptions in memory (a
    /// partner that still holds ours has it reused, so this is harmless anywhere).
    pub(super) async fn resubscribe_live(&self) -> Result<u64, SyncError> {
        if self.public_url.is_none() {
            return Ok(0);
        }
        let mut queued = 0;
        let mut pages = LivePages::default();
        while let Some(records) = pages.next(self.integrations.as_ref()).await? {
            let jobs: Vec<_> = records
                .iter()
                .filter(|record| !record.integration.notifications.subscription_ids.is_empty())
                .map(|record| SyncJob::subscribe(record.integration.id))
                .collect();
            self.queue.enqueue(&jobs).await?;
            queued += jobs.len() as u64;
        }
        Ok(queued)
    }

    /// A new delivery secret (its digest stored first), then the subscription carrying it.
    /// `None` when the integration left `base_url` (or stopped being live) meanwhile.
    async fn create_subscription(
        &self,
        id: IntegrationId,
        channel: Channel,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        url: &str,
    ) -> Result<Option<Result<String, OctoError>>, SyncError> {
        let secret = WebhookSecret::generate();
        let digest = secret.digest();
        let stored = update_record(self.integrations.as_ref(), &id, None, |record| {
            if !still_on(record, base_url) {
                return Change::Keep(false);
            }
            record.delivery_secret_digest = Some(digest);
            Change::Write(true)
        })
        .await?;
        if !stored.is_some_and(|(_, stored)| stored) {
            return Ok(None);
        }
        Ok(Some(
            self.octo
                .create_subscription(channel, base_url, credentials, url, secret.expose())
                .await,
        ))
    }

    /// The unsubscribe job: removes the subscriptions, then clears them (and the delivery
    /// secret) from the integration unless it subscribed anew meanwhile.
    pub(super) async fn unsubscribe(
        &self,
        id: IntegrationId,
        what: &Unsubscribe,
    ) -> Result<SyncResult, SyncError> {
        let Some(record) = self.integrations.get(&id).await? else {
            return Ok(SyncResult::NotNeeded);
        };
        let Some(credentials) = self.credentials.of(&record).await? else {
            return Ok(SyncResult::NotNeeded);
        };
        self.remove_subscriptions(id, what, &credentials).await;
        update_record(self.integrations.as_ref(), &id, None, |record| {
            if record.integration.notifications.subscription_ids != what.subscription_ids {
                return Change::Keep(());
            }
            record.integration.notifications = Notifications::default();
            record.delivery_secret_digest = None;
            Change::Write(())
        })
        .await?;
        Ok(SyncResult::NotNeeded)
    }

    /// Deletes the subscriptions on the partner's platform; failures are logged (best effort:
    /// a subscription left behind delivers to an id that no longer accepts it).
    pub(super) async fn remove_subscriptions(
        &self,
        id: IntegrationId,
        what: &Unsubscribe,
        credentials: &OctoCredentials,
    ) {
        for subscription_id in &what.subscription_ids {
            match self
                .octo
                .delete_subscription(what.channel, &what.base_url, credentials, subscription_id)
                .await
            {
                Ok(()) => {
                    tracing::info!(integration_id = %id, channel = ?what.channel, "subscription removed")
                }
                Err(error) => {
                    tracing::warn!(integration_id = %id, error = %Untrusted(&error.to_string()), "could not remove a subscription")
                }
            }
        }
    }

    async fn subscription_failed(
        &self,
        id: IntegrationId,
        base_url: &BaseUrl,
        message: String,
    ) -> Result<SyncResult, SyncError> {
        tracing::warn!(integration_id = %id, error = %Untrusted(&message), "could not subscribe to the partner's push channel");
        let failed = Notifications {
            mode: NotificationMode::Error,
            subscription_ids: Vec::new(),
            subscribed_at: None,
            error_message: Some(truncate(message.clone())),
        };
        self.set_notifications(id, base_url, failed).await?;
        Ok(SyncResult::Failed { message })
    }

    /// Records the outcome of a subscribe made on `base_url`. Without a subscription (mode
    /// `none`, `error`) the delivery secret is forgotten in the same write: a create that
    /// failed may still have left it with the platform.
    async fn set_notifications(
        &self,
        id: IntegrationId,
        base_url: &BaseUrl,
        notifications: Notifications,
    ) -> Result<(), SyncError> {
        update_record(self.integrations.as_ref(), &id, None, |record| {
            if !still_on(record, base_url) {
                // Moved, paused or unapproved meanwhile: that change's own jobs decide.
                return Change::Keep(());
            }
            if notifications.subscription_ids.is_empty() {
                record.forget_delivery_secret();
            }
            record.integration.notifications = notifications.clone();
            Change::Write(())
        })
        .await?;
        Ok(())
    }
}

/// Whether a subscribe made on `base_url` still speaks for the integration.
fn still_on(record: &IntegrationRecord, base_url: &BaseUrl) -> bool {
    record.integration.is_live() && record.integration.base_url == *base_url
}
