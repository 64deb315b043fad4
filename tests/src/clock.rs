//! A clock tests move by hand. Everything in the service that compares or waits on time
//! (leases, the fallback debounce, delayed queue jobs, the nightly schedule, run expiry, the
//! credential cache) asks the clock, so moving it replaces sleeping.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use seyaha::domain::Timestamp;
use seyaha::ports::Clock;
use tokio::sync::watch;

pub struct FakeClock {
    now: watch::Sender<Timestamp>,
}

impl FakeClock {
    /// Starts at the real current time (tokens and logs stay plausible) and never moves by itself.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            now: watch::Sender::new(Timestamp::now()),
        })
    }

    pub fn advance(&self, by: Duration) {
        self.now
            .send_modify(|now| *now = now.plus_millis(by.as_millis() as i64));
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    async fn sleep_until(&self, at: Timestamp) {
        let mut changes = self.now.subscribe();
        loop {
            if *changes.borrow_and_update() >= at {
                return;
            }
            if changes.changed().await.is_err() {
                // The clock is gone, and with it the test: never wake.
                std::future::pending::<()>().await;
            }
        }
    }
}
