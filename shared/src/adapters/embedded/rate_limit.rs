//! Webhook rate limiting in memory: seyaha-local is one process, so a map of fixed-window
//! counters is the whole truth. Windows of other integrations are dropped as they end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{IntegrationId, Timestamp};
use crate::ports::{Admission, RateLimiter, RateWindow, StoreError};

#[derive(Default)]
pub struct InMemoryRateLimiter {
    /// integration -> (window start in ms, calls counted in it)
    windows: Mutex<HashMap<IntegrationId, (i64, u32)>>,
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn admit(
        &self,
        id: &IntegrationId,
        limit: u32,
        window: Duration,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let window = RateWindow::containing(now, window);
        let start = window.start_ms;
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (started, _)| *started == start);
        }
        let entry = windows.entry(*id).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= limit {
            return Ok(window.limited(now));
        }
        entry.1 += 1;
        Ok(Admission::Allowed)
    }
}
