//! Availability pull: `POST {base_url}/availability` for one product's options over a date
//! range, after an `AVAILABILITY_UPDATE` notification, a `booking_update` delivery or an
//! admin's refresh. Returned availabilities become slots (their `id` is the availability id);
//! slots of that product and option inside the range that the partner no longer returns
//! become `CLOSED`.
//!
//! **Pulls are requested, then served.** A request stores the pull (one record per distinct
//! pull: the same product, option and dates asked for again is the same pending pull) and
//! notes on the integration's control item that pulls are wanted (`pulls_requested_at`, see
//! `Leases::mark_pulls_requested`). Only the request that finds none pending sends a job, so
//! a burst of events for one partner leaves one job in the queue, not one per event.
//!
//! **A run serves what is pending, under the lease.** The pull job takes the integration's
//! lease, reads up to [`MAX_PULLS_PER_RUN`] pending pulls and serves them one after another,
//! each pull's calls at most [`MAX_CONCURRENT_CALLS`] at once. So one partner gets at most 4
//! calls at a time however many workers run, and one integration holds at most one worker.
//! After its first pull, the run starts no new one once it made [`MAX_CALLS_PER_RUN`] calls or
//! its deadline is near (the worker's, or a tenth of the lease before the lease expires), and removes each
//! pull it served unless it was asked for again meanwhile. The same two limits hold inside a
//! pull (a product of many options over a year is many calls): past them the pull starts no
//! further call, and what it did not call goes back as pending pulls (per option, from the
//! first piece not called) for the next run, so no run outlives its lease or its worker, and
//! no call is made twice. A 429 whose `Retry-After` would end past the deadline is not waited
//! for (that piece fails and is reported). On release it clears the mark only
//! if nothing is left and no request came since; otherwise the release sends the next job.
//! A job that finds the lease held by another run (a sync, a product) does nothing: that
//! run's release sends the pulls' job, so there is no re-queue loop.
//!
//! Limits of each call: a range is split into calls of at most 31 days (OCTO's usual bound), a
//! 429 waits for its `Retry-After` (a few times, briefly), and every call has the client's
//! SSRF guard, timeouts and size cap.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use time::Date;

use super::credentials::{Credentials, NO_CREDENTIAL};
use super::lease::{Leases, PullJob, Request};
use super::runs::{Run, RunLog, RunReport, truncate};
use super::shared::{SyncConfig, SyncError, SyncResult};
use crate::domain::{
    IntegrationId, IntegrationRecord, LocalDateTime, MAX_COUNT, RunOutcome, RunTrigger, Slot,
    SlotStatus, SyncCounts,
};

/// What a pull may still do in this run: calls it may start, and the time past which it starts none.
#[derive(Debug, Clone, Copy)]
struct PullBudget {
    calls: usize,
    deadline: Instant,
}

/// One pull's outcome: its result, the calls it made, and what it left for the next run.
type PullOutcome = (SyncResult, usize, Vec<AvailabilityPull>);

/// The pulls that cover `pieces` (the ones not called, in the order they were listed: option by
/// option, each option's days in order): one per option, from its first piece to `to`.
fn remaining_pulls(
    product_id: &str,
    to: Date,
    pieces: &[(String, Date, Date)],
) -> Vec<AvailabilityPull> {
    let mut pulls: Vec<AvailabilityPull> = Vec::new();
    for (option, from, _) in pieces {
        if pulls
            .last()
            .is_none_or(|pull| pull.option_id.as_deref() != Some(option.as_str()))
        {
            pulls.push(AvailabilityPull {
                product_id: product_id.to_owned(),
                option_id: Some(option.clone()),
                from: *from,
                to,
            });
        }
    }
    pulls
}
use crate::logging::Untrusted;
use crate::metrics::{self, Record, Write};
use crate::octo::{OctoClient, OctoCredentials, OctoError};
use crate::ports::{CatalogStore, Clock, Ports, SyncJob, SyncQueue};

/// Longest range of one `POST /availability` call, in days (both ends included).
pub const MAX_DAYS_PER_CALL: i64 = 31;
/// Calls of one pull in flight at once.
pub const MAX_CONCURRENT_CALLS: usize = 4;
/// A 429 is retried this many times, waiting its `Retry-After` (at most [`MAX_RETRY_WAIT`]).
const RATE_LIMIT_RETRIES: u32 = 3;
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// Pending pulls one run serves at most; the next run serves the rest.
pub const MAX_PULLS_PER_RUN: usize = 16;
/// A run starts no call after this many (its first pull's first call excepted); what a pull
/// did not call goes back as pending pulls.
pub const MAX_CALLS_PER_RUN: usize = 64;
/// Longest availability id accepted (as notify).
const MAX_ID_LEN: usize = 256;

pub use crate::domain::AvailabilityPull;

/// `[from, to]` in pieces of at most [`MAX_DAYS_PER_CALL`] days.
pub fn split_range(from: Date, to: Date) -> Vec<(Date, Date)> {
    let mut pieces = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + time::Duration::days(MAX_DAYS_PER_CALL - 1)).min(to);
        pieces.push((start, end));
        match end.next_day() {
            Some(next) => start = next,
            None => break,
        }
    }
    pieces
}

pub use crate::domain::{format_local_date as format_date, parse_local_date as parse_date};

/// What one call brought back: the slots it returned (valid ones), and how many were not.
struct CallResult {
    option_id: String,
    from: Date,
    to: Date,
    slots: Vec<Slot>,
    rejected: u64,
}

/// Availability pulls: each one under the integration's lease ([`Leases`]), recorded in the
/// [`RunLog`].
pub(super) struct AvailabilityPulls {
    catalog: Arc<dyn CatalogStore>,
    queue: Arc<dyn SyncQueue>,
    clock: Arc<dyn Clock>,
    octo: OctoClient,
    credentials: Credentials,
    leases: Leases,
    runs: RunLog,
    /// `SyncConfig::slot_retention`: how long a slot is kept after it starts.
    slot_retention: Duration,
    /// `SyncConfig::lease`: a run starts no pull in the last tenth of it.
    lease: Duration,
}

impl AvailabilityPulls {
    pub(super) fn new(
        ports: &Ports,
        octo: OctoClient,
        config: &SyncConfig,
        credentials: Credentials,
        leases: Leases,
        runs: RunLog,
    ) -> Self {
        Self {
            catalog: ports.catalog.clone(),
            queue: ports.queue.clone(),
            clock: ports.clock.clone(),
            octo,
            credentials,
            leases,
            runs,
            slot_retention: config.slot_retention,
            lease: config.lease,
        }
    }

    /// Asks for pulls: stores them and sends the integration's pull job unless one is
    /// pending. Returns whether a job was sent.
    pub(super) async fn request(
        &self,
        id: IntegrationId,
        pulls: &[AvailabilityPull],
    ) -> Result<bool, SyncError> {
        // Stored before the mark, so a run that clears the mark has seen them. A run under way
        // that read the same pull before (and removes what it served, by request time) must not
        // take this request for that one: the mark's time is later than every earlier
        // request's, so when it differs from the time stored, the pulls are stored again with it.
        let now = self.clock.now();
        for pull in pulls {
            self.catalog.add_pull(&id, pull, now).await?;
        }
        let Some((at, job)) = self.leases.mark_pulls_requested(id, now).await? else {
            return Ok(false);
        };
        if at != now {
            for pull in pulls {
                self.catalog.add_pull(&id, pull, at).await?;
            }
        }
        let sent = match job {
            PullJob::Pending => return Ok(false),
            PullJob::Now => self.queue.enqueue(&[SyncJob::pending_pulls(id)]).await,
            PullJob::After(delay) => {
                self.queue
                    .enqueue_after(&SyncJob::pending_pulls(id), delay)
                    .await
            }
        };
        if let Err(error) = sent {
            self.leases.withdraw_pulls(id, at).await;
            return Err(error.into());
        }
        Ok(true)
    }

    /// The pull job: serves the pending pulls under the lease (see the module's docs).
    pub(super) async fn serve(
        &self,
        id: IntegrationId,
        deadline: Option<Instant>,
    ) -> Result<SyncResult, SyncError> {
        let run = Run::start(id, RunTrigger::AvailabilityPull, self.clock.now());
        let wanted = |record: &IntegrationRecord| {
            record.integration.is_live() && record.sync_control.pulls_requested_at.is_some()
        };
        let Some((record, taken)) = self.leases.take_lease(&run, wanted).await? else {
            return Ok(SyncResult::NotNeeded);
        };
        if !wanted(&record) {
            // Served already (a duplicate or redelivered job), or no longer live.
            return Ok(SyncResult::NotNeeded);
        }
        if !taken {
            tracing::info!(integration_id = %id, "availability pulls wait for the run holding the lease; its release sends their job");
            return Ok(SyncResult::Queued);
        }
        let seen = record.sync_control.pulls_requested_at;
        let margin = self.lease / 10;
        let lease_deadline = Instant::now() + self.lease.saturating_sub(margin);
        let deadline = deadline.map_or(lease_deadline, |deadline| deadline.min(lease_deadline));
        let served = self.serve_locked(&run, &record, deadline).await;
        let all_served = matches!(served, Ok((_, true)));
        let released = self
            .leases
            .release(&run, RunTrigger::FollowUp, Request::Served, |record| {
                // Cleared only when nothing is left and no request came since this run began;
                // otherwise the release sends the next pull job.
                if all_served && record.sync_control.pulls_requested_at == seen {
                    record.sync_control.pulls_requested_at = None;
                }
            })
            .await;
        let (result, _) = served?;
        released?;
        Ok(result)
    }

    /// Serves pending pulls until none is left, the run's limits, or `deadline`. Returns the
    /// combined result and whether every pending pull was served.
    async fn serve_locked(
        &self,
        run: &Run,
        record: &IntegrationRecord,
        deadline: Instant,
    ) -> Result<(SyncResult, bool), SyncError> {
        let id = run.id;
        let pending = self
            .catalog
            .pending_pulls(&id, MAX_PULLS_PER_RUN + 1)
            .await?;
        let mut all_served = pending.len() <= MAX_PULLS_PER_RUN;
        let credentials = self.credentials.of(record).await?;
        let (mut attempted, mut calls, mut counts, mut served, mut failure) =
            (0, 0, SyncCounts::default(), 0, None);
        for (pull, requested_at) in pending.into_iter().take(MAX_PULLS_PER_RUN) {
            // The first pull always runs (a job is started only with time for a partner call
            // left), so every run makes progress; later ones only within the limits.
            if attempted > 0 && (calls >= MAX_CALLS_PER_RUN || Instant::now() >= deadline) {
                all_served = false;
                break;
            }
            // One run record per pull, as before pulls were coalesced.
            let pull_run = Run::start(id, RunTrigger::AvailabilityPull, self.clock.now());
            let budget = PullBudget {
                calls: MAX_CALLS_PER_RUN.saturating_sub(calls).max(1),
                deadline,
            };
            let (result, made, remainder) = match &credentials {
                Some(credentials) => {
                    self.pull_locked(&pull_run, record, credentials, &pull, budget)
                        .await?
                }
                None => (
                    self.pull_failed(&pull_run, NO_CREDENTIAL.into()).await,
                    0,
                    Vec::new(),
                ),
            };
            calls += made;
            attempted += 1;
            if !remainder.is_empty() {
                // Stored before the pull is removed: a crash between repeats calls, loses none.
                let now = self.clock.now();
                for rest in &remainder {
                    self.catalog.add_pull(&id, rest, now).await?;
                }
                tracing::info!(integration_id = %id, left = remainder.len(), "availability pull cut at the run's limits: the rest is pending");
                all_served = false;
            }
            self.catalog.remove_pull(&id, &pull, requested_at).await?;
            match result {
                SyncResult::Done { counts: pulled, .. } => {
                    counts += pulled;
                    served += 1;
                }
                SyncResult::Failed { message } => failure = Some(message),
                SyncResult::Queued | SyncResult::NotNeeded => {}
            }
        }
        tracing::info!(integration_id = %id, served, calls, all_served, run_id = %run.run_id, "pending availability pulls served");
        let result = match failure {
            Some(message) if served == 0 => SyncResult::Failed { message },
            _ => SyncResult::Done {
                counts,
                skipped: false,
                rejections: Vec::new(),
            },
        };
        Ok((result, all_served))
    }

    /// One pull within `budget` (its first call always starts); its result, how many calls it
    /// made, and the pulls covering the calls it did not start.
    async fn pull_locked(
        &self,
        run: &Run,
        record: &IntegrationRecord,
        credentials: &OctoCredentials,
        pull: &AvailabilityPull,
        budget: PullBudget,
    ) -> Result<PullOutcome, SyncError> {
        let id = run.id;
        let options = match &pull.option_id {
            Some(option) => vec![option.clone()],
            None => match self
                .catalog
                .activity_of_product(&id, &pull.product_id)
                .await?
            {
                Some(activity) if activity.is_active => activity.option_ids,
                _ => {
                    tracing::info!(integration_id = %id, product_id = %Untrusted(&pull.product_id), "availability pull for a product Seyaha does not hold: skipped");
                    return Ok((SyncResult::NotNeeded, 0, Vec::new()));
                }
            },
        };
        let base_url = &record.integration.base_url;

        let pieces: Vec<(String, Date, Date)> = options
            .iter()
            .flat_map(|option| {
                split_range(pull.from, pull.to)
                    .into_iter()
                    .map(move |(from, to)| (option.clone(), from, to))
            })
            .collect();
        // Pieces start in order while the budget lasts (checked as each one is about to start,
        // so calls in flight finish and nothing starts late); the first one always does.
        let may_start =
            |index: usize| index == 0 || (index < budget.calls && Instant::now() < budget.deadline);
        let calls = futures_util::stream::iter(pieces.iter().cloned().enumerate())
            .take_while(|(index, _)| std::future::ready(may_start(*index)))
            .map(|(_, (option_id, from, to))| {
                self.pull_piece(
                    base_url,
                    credentials,
                    &pull.product_id,
                    option_id,
                    from,
                    to,
                    budget.deadline,
                )
            });
        let results: Vec<Result<CallResult, OctoError>> =
            calls.buffer_unordered(MAX_CONCURRENT_CALLS).collect().await;
        // One result per piece started: the rest were never called.
        let made = results.len();
        let remainder = remaining_pulls(&pull.product_id, pull.to, &pieces[made..]);

        let mut counts = SyncCounts::default();
        let mut failure = None;
        for result in results {
            match result {
                Ok(call) => {
                    self.apply_call(&id, &pull.product_id, call, &mut counts)
                        .await?
                }
                // What the other calls brought is kept; a failed piece closes nothing.
                Err(error) => failure = Some(error.to_string()),
            }
        }
        if let Some(message) = failure {
            return Ok((self.pull_failed(run, message).await, made, remainder));
        }
        tracing::info!(integration_id = %id, product_id = %Untrusted(&pull.product_id), ?counts, "availability pulled");
        self.runs
            .record(
                run,
                RunReport {
                    outcome: RunOutcome::Synced,
                    counts,
                    hash: None,
                    error: None,
                    rejections: Vec::new(),
                },
            )
            .await;
        Ok((
            SyncResult::Done {
                counts,
                skipped: false,
                rejections: Vec::new(),
            },
            made,
            remainder,
        ))
    }

    /// One option over one piece of the range.
    #[allow(clippy::too_many_arguments)]
    async fn pull_piece(
        &self,
        base_url: &crate::domain::BaseUrl,
        credentials: &OctoCredentials,
        product_id: &str,
        option_id: String,
        from: Date,
        to: Date,
        deadline: Instant,
    ) -> Result<CallResult, OctoError> {
        let body = json!({"productId": product_id, "optionId": option_id, "localDateStart": format_date(from), "localDateEnd": format_date(to)});
        let answer = self
            .availability_call(base_url, credentials, &body, deadline)
            .await?;
        let (slots, rejected) =
            read_availabilities(&answer, product_id, &option_id, self.clock.now());
        Ok(CallResult {
            option_id,
            from,
            to,
            slots,
            rejected,
        })
    }

    /// One call, waiting out a 429's `Retry-After` a few times, but never past `deadline`.
    async fn availability_call(
        &self,
        base_url: &crate::domain::BaseUrl,
        credentials: &OctoCredentials,
        body: &Value,
        deadline: Instant,
    ) -> Result<Vec<u8>, OctoError> {
        let mut attempt = 0;
        loop {
            match self
                .octo
                .fetch_availability_body(base_url, credentials, body)
                .await
            {
                Err(OctoError::RateLimited { retry_after, .. })
                    if attempt < RATE_LIMIT_RETRIES
                        && Instant::now()
                            + Duration::from_secs(retry_after.unwrap_or(1)).min(MAX_RETRY_WAIT)
                            < deadline =>
                {
                    attempt += 1;
                    let wait = Duration::from_secs(retry_after.unwrap_or(1)).min(MAX_RETRY_WAIT);
                    let until = self.clock.now().plus_millis(wait.as_millis() as i64);
                    self.clock.sleep_until(until).await;
                }
                other => return other,
            }
        }
    }

    /// When a slot is forgotten: its start plus the retention (as notify stores it).
    fn slot_expiry(&self, slot: &Slot) -> crate::domain::Timestamp {
        slot.local_date_time_start
            .instant()
            .plus_millis(self.slot_retention.as_millis() as i64)
    }

    /// Upserts what a call returned, and closes the option's slots inside its range that it
    /// did not return.
    async fn apply_call(
        &self,
        id: &IntegrationId,
        product_id: &str,
        call: CallResult,
        counts: &mut SyncCounts,
    ) -> Result<(), SyncError> {
        counts.synced += call.slots.len() as u64;
        counts.rejected += call.rejected;
        let returned: HashSet<String> = call
            .slots
            .iter()
            .map(|slot| slot.availability_id.clone())
            .collect();
        let now = self.clock.now();
        let mut closed = Vec::new();
        let mut stored: HashMap<String, Slot> = HashMap::new();
        for mut slot in self
            .catalog
            .option_slots(id, product_id, &call.option_id, call.from..=call.to)
            .await?
        {
            if !returned.contains(&slot.availability_id) && slot.status != Some(SlotStatus::Closed)
            {
                slot.status = Some(SlotStatus::Closed);
                slot.vacancies = Some(0);
                slot.updated_at = now;
                closed.push(slot);
            } else {
                stored.insert(slot.availability_id.clone(), slot);
            }
        }
        // Only slots whose state changed are written: a supplier re-announcing the same day
        // costs reads, not writes.
        let (changed, same): (Vec<Slot>, Vec<Slot>) = call.slots.into_iter().partition(|slot| {
            stored
                .get(&slot.availability_id)
                .is_none_or(|old| !same_state(old, slot))
        });
        let (upserted, closed_count) = (changed.len() as u64, closed.len() as u64);
        counts.updated += upserted;
        counts.unchanged += same.len() as u64;
        counts.deactivated += closed_count;
        let writes: Vec<(Slot, crate::domain::Timestamp)> = changed
            .into_iter()
            .chain(closed)
            .map(|slot| {
                let expires_at = self.slot_expiry(&slot);
                (slot, expires_at)
            })
            .collect();
        self.catalog.put_slots(id, &writes).await?;
        metrics::catalog_writes(Record::Slot, Write::Upsert, upserted);
        metrics::catalog_writes(Record::Slot, Write::Deactivate, closed_count);
        Ok(())
    }

    async fn pull_failed(&self, run: &Run, message: String) -> SyncResult {
        let message = truncate(message);
        tracing::warn!(integration_id = %run.id, error = %Untrusted(&message), "availability pull failed");
        self.runs
            .record(run, RunReport::failed(message.clone()))
            .await;
        SyncResult::Failed { message }
    }
}

/// Whether a slot the partner returned says what the stored one says (its time stamp aside).
fn same_state(stored: &Slot, returned: &Slot) -> bool {
    stored.local_date_time_start == returned.local_date_time_start
        && stored.status == returned.status
        && stored.vacancies == returned.vacancies
        && stored.capacity == returned.capacity
}

/// The availabilities of one answer as slots of `product_id`/`option_id`; entries without a
/// usable id or start (or with counts out of range) are counted, not stored.
fn read_availabilities(
    body: &[u8],
    product_id: &str,
    option_id: &str,
    now: crate::domain::Timestamp,
) -> (Vec<Slot>, u64) {
    let Ok(Value::Array(entries)) = serde_json::from_slice::<Value>(body) else {
        return (Vec::new(), 0);
    };
    let mut slots = Vec::with_capacity(entries.len());
    let mut rejected = 0;
    for entry in entries {
        match read_availability(&entry, product_id, option_id, now) {
            Some(slot) => slots.push(slot),
            None => rejected += 1,
        }
    }
    (slots, rejected)
}

fn read_availability(
    entry: &Value,
    product_id: &str,
    option_id: &str,
    now: crate::domain::Timestamp,
) -> Option<Slot> {
    let id = entry
        .get("id")?
        .as_str()
        .filter(|id| !id.trim().is_empty() && id.len() <= MAX_ID_LEN)?;
    let start = LocalDateTime::parse(entry.get("localDateTimeStart")?.as_str()?).ok()?;
    let status = match entry.get("status") {
        None | Some(Value::Null) => None,
        Some(value) => Some(SlotStatus::parse(value.as_str()?).ok()?),
    };
    let count = |key: &str| -> Option<Option<u64>> {
        match entry.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(value) => value.as_u64().filter(|n| *n <= MAX_COUNT).map(Some),
        }
    };
    let (vacancies, capacity) = (count("vacancies")?, count("capacity")?);
    if let (Some(vacancies), Some(capacity)) = (vacancies, capacity)
        && vacancies > capacity
    {
        return None;
    }
    Some(Slot {
        product_id: product_id.to_owned(),
        option_id: option_id.to_owned(),
        availability_id: id.to_owned(),
        local_date_time_start: start,
        status,
        vacancies,
        capacity,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn ranges_split_at_31_days() {
        assert_eq!(
            split_range(date!(2026 - 07 - 01), date!(2026 - 07 - 01)),
            [(date!(2026 - 07 - 01), date!(2026 - 07 - 01))]
        );
        assert_eq!(
            split_range(date!(2026 - 07 - 01), date!(2026 - 07 - 31)).len(),
            1
        );
        assert_eq!(
            split_range(date!(2026 - 07 - 01), date!(2026 - 09 - 15)),
            [
                (date!(2026 - 07 - 01), date!(2026 - 07 - 31)),
                (date!(2026 - 08 - 01), date!(2026 - 08 - 31)),
                (date!(2026 - 09 - 01), date!(2026 - 09 - 15))
            ]
        );
        assert!(split_range(date!(2026 - 07 - 02), date!(2026 - 07 - 01)).is_empty());
    }

    #[test]
    fn availabilities_become_slots_and_bad_entries_are_counted() {
        let now = crate::domain::Timestamp::from_unix_millis(0);
        let body = serde_json::to_vec(&json!([
            {"id": "a1", "localDateTimeStart": "2026-07-01T09:00:00+04:00", "status": "AVAILABLE", "vacancies": 3, "capacity": 10},
            {"id": "a2", "localDateTimeStart": "2026-07-01T14:00:00+04:00", "status": "FREESALE", "vacancies": null},
            {"id": "", "localDateTimeStart": "2026-07-01T09:00:00+04:00"},
            {"id": "a4", "localDateTimeStart": "tomorrow"},
            {"id": "a5", "localDateTimeStart": "2026-07-01T09:00:00+04:00", "vacancies": 11, "capacity": 10},
            {"id": "a6", "localDateTimeStart": "2026-07-01T09:00:00+04:00", "status": "MAYBE"}
        ]))
        .unwrap();
        let (slots, rejected) = read_availabilities(&body, "p", "o", now);
        assert_eq!(
            slots
                .iter()
                .map(|s| s.availability_id.as_str())
                .collect::<Vec<_>>(),
            ["a1", "a2"]
        );
        assert_eq!(
            (slots[0].vacancies, slots[0].capacity, slots[1].status),
            (Some(3), Some(10), Some(SlotStatus::Freesale))
        );
        assert_eq!(rejected, 4);
    }
}
