//! The Secrets Manager and SQS adapters against moto, and the credential cache the composition
//! root puts in front of the secret store (timed by a fake clock).

use std::sync::Arc;
use std::time::Duration;

use seyaha::adapters::aws::{AwsSecretStore, SqsQueue};
use seyaha::adapters::stored::JobMessage;
use seyaha::app::CachedSecretStore;
use seyaha::domain::{AuthKey, IntegrationId, RunTrigger};
use seyaha::ports::{Lane, SecretStore, SyncJob, SyncQueue};
use seyaha_tests::FakeClock;
use seyaha_tests::aws::{resources, sdk_config, unique};

#[tokio::test]
async fn secrets_are_created_replaced_cached_and_deleted() {
    let config = sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let prefix = unique("seyaha");
    let clock = FakeClock::new();
    let uncached: Arc<dyn SecretStore> =
        Arc::new(AwsSecretStore::new(client.clone(), prefix.clone()));
    let store = CachedSecretStore::new(uncached, clock.clone(), Duration::from_secs(60));
    let id = IntegrationId::generate(1_800_000_000);

    assert!(store.get_auth_key(&id).await.unwrap().is_none());
    store
        .put_auth_key(&id, &AuthKey::parse("first").unwrap())
        .await
        .unwrap();
    assert_eq!(
        store.get_auth_key(&id).await.unwrap().unwrap().expose(),
        "first"
    );
    // One secret per integration, under the documented name.
    let name = format!("{prefix}/integrations/{id}/auth-key");
    let stored = client
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.secret_string.as_deref(), Some("first"));

    // Cached: a change made behind the store's back is not seen until the TTL passes...
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("behind-our-back")
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.get_auth_key(&id).await.unwrap().unwrap().expose(),
        "first"
    );
    // ...but our own writes invalidate the cache at once.
    store
        .put_auth_key(&id, &AuthKey::parse("second").unwrap())
        .await
        .unwrap();
    assert_eq!(
        store.get_auth_key(&id).await.unwrap().unwrap().expose(),
        "second"
    );

    store.delete_auth_key(&id).await.unwrap();
    assert!(store.get_auth_key(&id).await.unwrap().is_none());
    store.delete_auth_key(&id).await.unwrap();
    // The name is free again (force delete, no recovery window).
    store
        .put_auth_key(&id, &AuthKey::parse("third").unwrap())
        .await
        .unwrap();
    assert_eq!(
        store.get_auth_key(&id).await.unwrap().unwrap().expose(),
        "third"
    );

    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("rotated")
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.get_auth_key(&id).await.unwrap().unwrap().expose(),
        "third",
        "cached for a minute"
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        store.get_auth_key(&id).await.unwrap().unwrap().expose(),
        "rotated",
        "an expired cache entry is fetched again"
    );
}

#[tokio::test]
async fn jobs_go_to_sqs_in_batches_and_with_delays() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        resources.queue_url.clone(),
        resources.bulk_queue_url.clone(),
    );
    let jobs: Vec<SyncJob> = (0..23)
        .map(|i| SyncJob::catalog(IntegrationId::generate(i), RunTrigger::Nightly))
        .collect();
    queue.enqueue(&jobs).await.unwrap();

    let mut received = Vec::new();
    for _ in 0..10 {
        let batch = resources.receive(&config, 60).await;
        if batch.is_empty() {
            break;
        }
        received.extend(
            batch
                .into_iter()
                .map(|m| JobMessage::decode(m.body.as_deref().unwrap()).unwrap()),
        );
    }
    received.sort_by_key(|j| j.integration_id);
    let mut sent = jobs.clone();
    sent.sort_by_key(|j| j.integration_id);
    assert_eq!(received, sent, "all 23 arrive, as JSON job messages");
    assert_eq!(
        JobMessage::encode(&sent[0]),
        format!(
            r#"{{"integration_id":"{}","trigger":"nightly"}}"#,
            sent[0].integration_id.unwrap()
        ),
        "the message format workers already in flight understand"
    );

    let delayed = SyncJob::catalog(IntegrationId::generate(99), RunTrigger::FollowUp);
    queue
        .enqueue_after(&delayed, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        resources.receive(&config, 60).await.is_empty(),
        "not visible before its delay"
    );
    // SQS (moto) keeps real time: poll until the message shows, with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let later = loop {
        let batch = resources.receive(&config, 60).await;
        if !batch.is_empty() {
            break batch;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delayed message never became visible"
        );
    };
    assert_eq!(later.len(), 1);
    assert_eq!(
        JobMessage::decode(later[0].body.as_deref().unwrap()).unwrap(),
        delayed
    );
    assert!(
        resources.receive_bulk(&config, 60).await.is_empty(),
        "real-time jobs never go to the bulk queue"
    );
}

#[tokio::test]
async fn each_job_goes_to_the_queue_of_its_lane() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        resources.queue_url.clone(),
        resources.bulk_queue_url.clone(),
    );
    let (a, b, c) = (
        IntegrationId::generate(1),
        IntegrationId::generate(2),
        IntegrationId::generate(3),
    );
    let page = seyaha::ports::FanOutPage {
        fan_out: seyaha::domain::RunId::generate(1),
        started_at: seyaha::domain::Timestamp::from_unix_millis(1_800_000_000_000),
        window: Duration::from_secs(3600),
        after: None,
    };
    let bulk = [
        SyncJob::fan_out_page(RunTrigger::Nightly, page),
        SyncJob::bulk_catalog(a, RunTrigger::Nightly, None),
    ];
    let real_time = [
        SyncJob::catalog(b, RunTrigger::Fallback),
        SyncJob::product(c, "p".into()),
    ];
    // One call with both lanes mixed, and a delayed job of each lane.
    queue
        .enqueue(&[
            bulk[0].clone(),
            real_time[0].clone(),
            bulk[1].clone(),
            real_time[1].clone(),
        ])
        .await
        .unwrap();
    let due = seyaha::domain::Timestamp::from_unix_millis(1_800_000_000_000);
    let delayed_bulk = SyncJob::bulk_catalog(c, RunTrigger::Admin, Some(due));
    queue
        .enqueue_after(&delayed_bulk, Duration::from_secs(1))
        .await
        .unwrap();
    queue
        .enqueue_after(&real_time[0], Duration::from_secs(1))
        .await
        .unwrap();

    let drain = |bulk_lane: bool| {
        let (resources, config) = (&resources, &config);
        async move {
            let mut jobs = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while jobs.len() < 3 && std::time::Instant::now() < deadline {
                let batch = if bulk_lane {
                    resources.receive_bulk(config, 60).await
                } else {
                    resources.receive(config, 60).await
                };
                jobs.extend(
                    batch
                        .into_iter()
                        .map(|m| JobMessage::decode(m.body.as_deref().unwrap()).unwrap()),
                );
            }
            jobs
        }
    };
    let on_bulk = drain(true).await;
    let on_real_time = drain(false).await;
    assert_eq!(on_bulk.len(), 3, "{on_bulk:?}");
    assert!(
        on_bulk.iter().all(|job| job.lane == Lane::Bulk),
        "{on_bulk:?}"
    );
    for job in bulk.iter().chain([&delayed_bulk]) {
        assert!(
            on_bulk.contains(job),
            "{job:?} not on the bulk queue: {on_bulk:?}"
        );
    }
    assert_eq!(on_real_time.len(), 3, "{on_real_time:?}");
    assert!(
        on_real_time.iter().all(|job| job.lane == Lane::RealTime),
        "{on_real_time:?}"
    );
}

#[tokio::test]
async fn jobs_sent_together_each_keep_their_own_delay_and_lane() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&config),
        resources.queue_url.clone(),
        resources.bulk_queue_url.clone(),
    );
    let (a, b, c) = (
        IntegrationId::generate(1),
        IntegrationId::generate(2),
        IntegrationId::generate(3),
    );
    let due = seyaha::domain::Timestamp::from_unix_millis(1_800_000_000_000);
    let later = SyncJob::bulk_catalog(a, RunTrigger::Nightly, Some(due));
    let now = SyncJob::bulk_catalog(b, RunTrigger::Nightly, None);
    let real_time = SyncJob::catalog(c, RunTrigger::Fallback);
    let wait = Duration::from_secs(4);
    queue
        .enqueue_each_after(&[
            (later.clone(), wait),
            (now.clone(), Duration::ZERO),
            (real_time.clone(), wait),
        ])
        .await
        .unwrap();

    let decode = |messages: Vec<aws_sdk_sqs::types::Message>| -> Vec<SyncJob> {
        messages
            .into_iter()
            .map(|m| JobMessage::decode(m.body.as_deref().unwrap()).unwrap())
            .collect()
    };
    assert_eq!(
        decode(resources.receive_bulk(&config, 60).await),
        [now],
        "only the undelayed job is visible at once"
    );
    assert!(
        resources.receive(&config, 60).await.is_empty(),
        "the real-time job is delayed too"
    );
    // SQS (moto) keeps real time: poll each queue until its delayed job shows, with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (mut bulk, mut real) = (Vec::new(), Vec::new());
    while (bulk.is_empty() || real.is_empty()) && std::time::Instant::now() < deadline {
        bulk.extend(decode(resources.receive_bulk(&config, 60).await));
        real.extend(decode(resources.receive(&config, 60).await));
    }
    assert_eq!((bulk, real), (vec![later], vec![real_time]));
}

/// Both rate limiters count per integration in fixed windows: the limit holds, other
/// integrations are unaffected, and the next window starts afresh.
async fn rate_limiter_behaves(limiter: &dyn seyaha::ports::RateLimiter) {
    use seyaha::domain::Timestamp;
    use seyaha::ports::Admission;
    let (busy, other) = (
        IntegrationId::generate(1_800_000_000),
        IntegrationId::generate(1_800_000_001),
    );
    let minute = Duration::from_secs(60);
    let at = Timestamp::from_unix_millis(1_800_000_000_000 + 15_000); // 15 s into a minute window
    assert_eq!(
        limiter.admit(&busy, 2, minute, at).await.unwrap(),
        Admission::Allowed
    );
    assert_eq!(
        limiter.admit(&busy, 2, minute, at).await.unwrap(),
        Admission::Allowed
    );
    assert_eq!(
        limiter.admit(&busy, 2, minute, at).await.unwrap(),
        Admission::Limited {
            retry_after: Duration::from_secs(45)
        }
    );
    assert_eq!(
        limiter.admit(&other, 2, minute, at).await.unwrap(),
        Admission::Allowed,
        "one partner's burst is its own"
    );
    assert_eq!(
        limiter
            .admit(&busy, 2, minute, at.plus_millis(45_000))
            .await
            .unwrap(),
        Admission::Allowed,
        "a new window"
    );
}

#[tokio::test]
async fn webhook_rate_limits_on_dynamodb_and_in_memory() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    rate_limiter_behaves(&seyaha::adapters::aws::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        resources.table,
    ))
    .await;
    rate_limiter_behaves(&seyaha::adapters::embedded::InMemoryRateLimiter::default()).await;
}

/// `DynamoStore::import` (restores, benchmark seeding) writes what `insert` writes: the records
/// read back, list, count and stay one per partner exactly as if each had been inserted.
#[tokio::test]
async fn an_import_loads_integrations_as_inserts_would() {
    use seyaha::domain::{IntegrationRecord, Role, WebhookSecret};
    use seyaha::ports::{IntegrationFilter, IntegrationStore, StoreError};

    let config = sdk_config().await;
    let resources = resources(&config).await;
    let store = seyaha::adapters::aws::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        resources.table,
    );
    let records: Vec<IntegrationRecord> = (0..40)
        .map(|n| {
            let mut record = seyaha_tests::stored_record(
                1_800_000_000_000 + n * 1000,
                Role::Admin,
                &WebhookSecret::generate(),
            );
            record.integration.is_active = n % 4 != 0;
            record
        })
        .collect();
    store.import(&records).await.unwrap();
    for record in &records {
        assert_eq!(
            store.get(&record.integration.id).await.unwrap().as_ref(),
            Some(record)
        );
    }
    assert_eq!(
        store.count(&IntegrationFilter::default()).await.unwrap(),
        40
    );
    assert_eq!(store.count_syncable().await.unwrap(), 30);
    let listed = store
        .list(&IntegrationFilter::default(), 100, None)
        .await
        .unwrap()
        .items;
    assert_eq!(
        listed.iter().map(|r| r.integration.id).collect::<Vec<_>>(),
        records
            .iter()
            .rev()
            .map(|r| r.integration.id)
            .collect::<Vec<_>>()
    );
    let mut again = records[0].clone();
    again.integration.id = IntegrationId::generate(1);
    assert!(
        matches!(store.insert(&again).await, Err(StoreError::AlreadyExists)),
        "the imported partner lock holds"
    );
}
