//! The five Lambda binaries end to end: each runs as a real process against the local Lambda
//! Runtime API, with moto for DynamoDB, Secrets Manager and SQS and the fake OCTO supplier, fed
//! the sample events from `events/`.

use std::time::Duration;

use serde_json::{Value, json};
use seyaha::api::PREFIX;
use seyaha_tests::aws::{resources, sdk_config};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::lambda::{Function, event_file, http_event, http_reply};
use seyaha_tests::{JWT_SECRET, new_partner};

fn token(role: seyaha::domain::Role, subject: &str) -> String {
    seyaha::api::auth::mint_token(
        &secrecy::SecretString::from(JWT_SECRET),
        role,
        subject,
        Duration::from_secs(600),
    )
}

/// An SQS event (from `events/sqs-sync-jobs.json`) carrying these received messages.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let mut event = event_file("sqs-sync-jobs.json");
    let template = event["Records"][0].clone();
    event["Records"] = messages
        .iter()
        .map(|message| {
            let mut record = template.clone();
            record["messageId"] = json!(message.message_id());
            record["receiptHandle"] = json!(message.receipt_handle());
            record["body"] = json!(message.body());
            record
        })
        .collect();
    event
}

/// An integration an admin creates (so approved) through the register binary, on `octo`: the
/// whole answer's `data` (its `_id`, its `webhook_secret`).
async fn admin_created(register: &Function, admin_token: &str, octo: &FakeOcto) -> Value {
    let body = json!({"partner_id": new_partner(), "base_url": octo.base_url(), "auth_type": "bearer", "auth_key": FAKE_KEY,
                      "handles_ticket_delivery": false});
    let create = http_event(
        "apigw-partner-create.json",
        "POST",
        &format!("{PREFIX}/admin/create"),
        &[("authorization", admin_token)],
        Some(&body),
    );
    let (status, created) = http_reply(&register.invoke(create).await.unwrap());
    assert_eq!(status, 201, "{created}");
    created["data"].clone()
}

/// The four functions of an end-to-end flow, started together, with an approved integration
/// on `octo` (created by an admin through `register`).
struct Fleet {
    register: Function,
    trigger: Function,
    notify: Function,
    worker: Function,
    /// `Bearer <admin JWT>`.
    admin_token: String,
    id: String,
    secret: String,
}

impl Fleet {
    async fn start(env: &[(String, String)], octo: &FakeOcto) -> Self {
        let (register, trigger, notify, worker) = tokio::join!(
            Function::start("register", env),
            Function::start("sync-trigger", env),
            Function::start("availability-notify", env),
            Function::start("sync-worker", env),
        );
        let admin_token = format!("Bearer {}", token(seyaha::domain::Role::Admin, "ops"));
        let created = admin_created(&register, &admin_token, octo).await;
        let (id, secret) = (
            created["_id"].as_str().unwrap().to_owned(),
            created["webhook_secret"].as_str().unwrap().to_owned(),
        );
        Self {
            register,
            trigger,
            notify,
            worker,
            admin_token,
            id,
            secret,
        }
    }
}

/// The body of a sample event in `events/`, as JSON.
fn sample_body(file: &str) -> Value {
    serde_json::from_str(event_file(file)["body"].as_str().unwrap()).unwrap()
}

async fn wait_for_messages(
    resources: &seyaha_tests::aws::Resources,
    config: &aws_config::SdkConfig,
    count: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::new();
    for _ in 0..20 {
        messages.extend(resources.receive(config, 300).await);
        if messages.len() >= count {
            break;
        }
    }
    messages
}

/// Runs the fan-out's page jobs waiting on the bulk queue through `worker` (each must succeed)
/// until the sync jobs they queue there number `count`, and returns those.
async fn fan_out_through(
    worker: &Function,
    resources: &seyaha_tests::aws::Resources,
    config: &aws_config::SdkConfig,
    count: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut syncs = Vec::new();
    for _ in 0..20 {
        for message in resources.receive_bulk(config, 300).await {
            let job: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            if job["work"]["kind"] == "fan_out_page" {
                assert_eq!(
                    worker.invoke(sqs_event(&[message])).await.unwrap(),
                    json!({"batchItemFailures": []})
                );
            } else {
                assert_eq!(job["lane"], "bulk", "{job}");
                syncs.push(message);
            }
        }
        if syncs.len() >= count {
            break;
        }
    }
    syncs
}

#[tokio::test]
async fn register_approve_trigger_notify_fallback_worker_and_nightly() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let env = resources.lambda_env();
    let octo = FakeOcto::start().await;
    let (register, trigger, notify, worker, nightly) = tokio::join!(
        Function::start("register", &env),
        Function::start("sync-trigger", &env),
        Function::start("availability-notify", &env),
        Function::start("sync-worker", &env),
        Function::start("nightly-sync", &env),
    );
    let partner = new_partner();
    let partner_token = format!("Bearer {}", token(seyaha::domain::Role::Partner, &partner));
    let admin_token = format!("Bearer {}", token(seyaha::domain::Role::Admin, "ops"));

    // Register (the sample event, with a real token and the fake supplier).
    let mut body = sample_body("apigw-partner-create.json");
    body["base_url"] = json!(octo.base_url());
    body["auth_key"] = json!(FAKE_KEY);
    let create = http_event(
        "apigw-partner-create.json",
        "POST",
        PREFIX,
        &[("authorization", &partner_token)],
        Some(&body),
    );
    let (status, created) = http_reply(&register.invoke(create.clone()).await.unwrap());
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["_id"].as_str().unwrap().to_owned();
    let secret = created["data"]["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = http_reply(&register.invoke(create).await.unwrap());
    assert_eq!(status, 409, "one integration per partner on DynamoDB too");

    // Unapproved webhooks are refused; an admin approves.
    let trigger_event = http_event(
        "apigw-sync-trigger.json",
        "POST",
        &format!("{PREFIX}/{id}/sync/trigger"),
        &[("x-webhook-secret", &secret)],
        None,
    );
    assert_eq!(
        http_reply(&trigger.invoke(trigger_event.clone()).await.unwrap()).0,
        403
    );
    let approve = http_event(
        "apigw-admin-approve.json",
        "PATCH",
        &format!("{PREFIX}/admin/{id}"),
        &[("authorization", &admin_token)],
        Some(&json!({"isApproved": true})),
    );
    let (status, approved) = http_reply(&register.invoke(approve).await.unwrap());
    assert_eq!(
        (status, approved["data"]["isApproved"].clone()),
        (200, json!(true))
    );

    // Trigger: a real sync into DynamoDB.
    let (status, synced) = http_reply(&trigger.invoke(trigger_event.clone()).await.unwrap());
    assert_eq!(status, 200, "{synced}");
    assert_eq!(
        (
            synced["data"]["synced"].clone(),
            synced["data"]["created"].clone()
        ),
        (json!(3), json!(3))
    );
    let (_, skipped) = http_reply(&trigger.invoke(trigger_event).await.unwrap());
    assert_eq!(skipped["data"]["skipped"], true);

    // Notify a known slot, then an unknown product (the sample event): fallback through SQS.
    let mut known = sample_body("apigw-availability-notify.json");
    known["availability"]["productId"] = json!("product_1");
    let notify_path = format!("{PREFIX}/{id}/availability/notify");
    let (status, updated) = http_reply(
        &notify
            .invoke(http_event(
                "apigw-availability-notify.json",
                "POST",
                &notify_path,
                &[("x-webhook-secret", &secret)],
                Some(&known),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, updated["data"]["updated"].clone()),
        (200, json!(true))
    );
    // A batch (the sample event): two known slots in one BatchWriteItem, one unknown product.
    let mut batch = sample_body("apigw-availability-notify-batch.json");
    batch[0]["productId"] = json!("product_1");
    batch[1]["productId"] = json!("product_1");
    let batch_path = format!("{PREFIX}/{id}/availability/notify-batch");
    let batch_event = http_event(
        "apigw-availability-notify-batch.json",
        "POST",
        &batch_path,
        &[("x-webhook-secret", &secret)],
        Some(&batch),
    );
    let (status, answer) = http_reply(&notify.invoke(batch_event).await.unwrap());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["data"]["updated"].clone(),
            answer["data"]["sync_requested"].clone()
        ),
        (json!(2), json!(true)),
        "{answer}"
    );
    let unknown = sample_body("apigw-availability-notify.json");
    let unknown_event = http_event(
        "apigw-availability-notify.json",
        "POST",
        &notify_path,
        &[("x-webhook-secret", &secret)],
        Some(&unknown),
    );
    for _ in 0..3 {
        let (status, fallback) = http_reply(&notify.invoke(unknown_event.clone()).await.unwrap());
        assert_eq!(
            (status, fallback["data"]["updated"].clone()),
            (200, json!(false))
        );
    }
    let messages = wait_for_messages(&resources, &config, 1).await;
    assert_eq!(
        messages.len(),
        1,
        "a batch's and three single unknown notifies coalesce into one message"
    );
    assert_eq!(
        serde_json::from_str::<Value>(messages[0].body().unwrap()).unwrap(),
        json!({"integration_id": id, "trigger": "fallback"})
    );

    // The worker consumes it; delivered twice, the second delivery changes nothing.
    let event = sqs_event(&messages);
    assert_eq!(
        worker.invoke(event.clone()).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    let sync_log = http_event(
        "apigw-partner-me.json",
        "GET",
        &format!("{PREFIX}/{id}/sync-log"),
        &[("authorization", &admin_token)],
        None,
    );
    let (_, log) = http_reply(&register.invoke(sync_log.clone()).await.unwrap());
    let runs = log["data"]["runs"].as_array().unwrap().clone();
    assert_eq!(runs[0]["trigger"], "fallback", "{log}");
    assert_eq!(
        worker.invoke(event).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    let (_, again) = http_reply(&register.invoke(sync_log.clone()).await.unwrap());
    assert_eq!(
        again["data"]["runs"].as_array().unwrap().len(),
        runs.len(),
        "a redelivered message runs nothing"
    );
    assert_eq!(octo.product_calls(), 3, "trigger, skip and one fallback");

    // The sample SQS event itself (an unknown integration) is handled without failures; an
    // unreadable message is reported for retry and the DLQ.
    assert_eq!(
        worker
            .invoke(event_file("sqs-sync-jobs.json"))
            .await
            .unwrap(),
        json!({"batchItemFailures": []})
    );
    let mut broken = event_file("sqs-sync-jobs.json");
    broken["Records"][1]["body"] = json!("not a job");
    let failures = worker.invoke(broken).await.unwrap();
    assert_eq!(
        failures["batchItemFailures"],
        json!([{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}])
    );

    // Nightly: the scheduled event queues the fan-out's first page job on the bulk queue (and
    // nothing on the real-time one); the worker runs it, which queues one sync per approved
    // integration there.
    assert_eq!(
        nightly
            .invoke(event_file("scheduled-nightly.json"))
            .await
            .unwrap(),
        json!({"queued": 1})
    );
    let page = resources.receive_bulk(&config, 0).await;
    assert_eq!(page.len(), 1);
    let page: Value = serde_json::from_str(page[0].body().unwrap()).unwrap();
    assert_eq!(
        (&page["trigger"], &page["lane"], &page["work"]["kind"]),
        (&json!("nightly"), &json!("bulk"), &json!("fan_out_page"))
    );
    assert!(
        page.get("integration_id").is_none() && page["work"].get("after").is_none(),
        "the first page: {page}"
    );
    assert!(
        resources.receive(&config, 0).await.is_empty(),
        "nothing on the real-time queue"
    );
    let nightly_jobs = fan_out_through(&worker, &resources, &config, 1).await;
    assert_eq!(nightly_jobs.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(nightly_jobs[0].body().unwrap()).unwrap()["trigger"],
        "nightly"
    );
    assert_eq!(
        worker.invoke(sqs_event(&nightly_jobs)).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    let (_, log) = http_reply(&register.invoke(sync_log).await.unwrap());
    assert_eq!(
        (
            log["data"]["runs"][0]["trigger"].clone(),
            log["data"]["runs"][0]["outcome"].clone()
        ),
        (json!("nightly"), json!("skipped"))
    );

    // Rotate the webhook secret (the sample event): register stores the previous secret's
    // digest and expiry in DynamoDB, and the trigger function accepts both secrets.
    let rotate = http_event(
        "apigw-partner-rotate-secret.json",
        "POST",
        &format!("{PREFIX}/me/webhook-secret"),
        &[("authorization", &partner_token)],
        None,
    );
    let (status, rotated) = http_reply(&register.invoke(rotate).await.unwrap());
    assert_eq!(status, 201, "{rotated}");
    let new_secret = rotated["data"]["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let trigger_with = |secret: &str| {
        http_event(
            "apigw-sync-trigger.json",
            "POST",
            &format!("{PREFIX}/{id}/sync/trigger"),
            &[("x-webhook-secret", secret)],
            None,
        )
    };
    for accepted in [&secret, &new_secret] {
        assert_eq!(
            http_reply(&trigger.invoke(trigger_with(accepted)).await.unwrap()).0,
            200,
            "old and new secret inside the overlap"
        );
    }

    // Delete through the partner API: both webhook secrets stop working.
    let delete = http_event(
        "apigw-partner-me.json",
        "DELETE",
        &format!("{PREFIX}/me"),
        &[("authorization", &partner_token)],
        None,
    );
    assert_eq!(http_reply(&register.invoke(delete).await.unwrap()).0, 200);
    for revoked in [&secret, &new_secret] {
        assert_eq!(
            http_reply(&trigger.invoke(trigger_with(revoked)).await.unwrap()).0,
            401
        );
    }

    // JSON logs, and no secret in any of them.
    for function in [&register, &trigger, &notify, &worker, &nightly] {
        let logs = function.logs();
        for secret in [
            secret.as_str(),
            new_secret.as_str(),
            FAKE_KEY,
            JWT_SECRET,
            partner_token.trim_start_matches("Bearer "),
        ] {
            assert!(!logs.contains(secret), "a secret leaked into the logs");
        }
        let first = logs
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON log line in {logs}"));
        assert!(serde_json::from_str::<Value>(first).is_ok());
    }
}

/// The nightly fan-out through the real binaries on moto: pages of 3 over 10 integrations, the
/// DynamoDB cursor carried from page to page in the messages, and the first page delivered
/// twice (SQS redelivers a page whose worker died, and may duplicate any message), which makes
/// every later page arrive twice too: every integration is still synced exactly once.
#[tokio::test]
async fn the_nightly_fan_out_pages_through_dynamodb_and_pages_delivered_twice_sync_nothing_twice() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let mut env = resources.lambda_env();
    env.push(("SEYAHA_FAN_OUT_PAGE_SIZE".into(), "3".into()));
    let octo = FakeOcto::start().await;
    let (register, worker, nightly) = tokio::join!(
        Function::start("register", &env),
        Function::start("sync-worker", &env),
        Function::start("nightly-sync", &env)
    );
    let admin_token = format!("Bearer {}", token(seyaha::domain::Role::Admin, "ops"));
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(
            admin_created(&register, &admin_token, &octo).await["_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        nightly
            .invoke(event_file("scheduled-nightly.json"))
            .await
            .unwrap(),
        json!({"queued": 10})
    );

    let (mut pages, mut syncs) = (Vec::new(), Vec::new());
    loop {
        let batch = resources.receive_bulk(&config, 300).await;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let job: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            if job["work"]["kind"] != "fan_out_page" {
                syncs.push(message);
                continue;
            }
            let deliveries = if job["work"].get("after").is_none() {
                2
            } else {
                1
            };
            for _ in 0..deliveries {
                assert_eq!(
                    worker
                        .invoke(sqs_event(std::slice::from_ref(&message)))
                        .await
                        .unwrap(),
                    json!({"batchItemFailures": []})
                );
            }
            pages.push(job);
        }
        assert!(pages.len() <= 7, "pages keep coming: {pages:?}");
    }
    // Page 1 twice, so two of each later page (4 pages of 3, 3, 3 and 1).
    assert_eq!(pages.len(), 7, "{pages:?}");
    assert!(syncs.len() >= 10, "{} sync jobs", syncs.len());
    for chunk in syncs.chunks(5) {
        assert_eq!(
            worker.invoke(sqs_event(chunk)).await.unwrap(),
            json!({"batchItemFailures": []})
        );
    }
    assert_eq!(octo.product_calls(), 10, "one fetch per integration");
    for id in &ids {
        let sync_log = http_event(
            "apigw-partner-me.json",
            "GET",
            &format!("{PREFIX}/{id}/sync-log"),
            &[("authorization", &admin_token)],
            None,
        );
        let (_, log) = http_reply(&register.invoke(sync_log).await.unwrap());
        let runs = log["data"]["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{log}");
        assert_eq!(
            (&runs[0]["trigger"], &runs[0]["outcome"]),
            (&json!("nightly"), &json!("synced"))
        );
    }
}

#[tokio::test]
async fn a_function_without_its_configuration_reports_an_init_error() {
    let mut function = Function::start("register", &[]).await;
    let status = function
        .exit_status(Duration::from_secs(10))
        .await
        .expect("the function exits");
    assert_eq!(status.code(), Some(1));
    // One plain line that names the variable and what to set, not Rust's debug form.
    let logs = function.logs();
    let expected = "cannot start: environment variable SEYAHA_TABLE_NAME is required: set it to the DynamoDB table's name (template.yaml sets it)";
    assert_eq!(
        logs.lines()
            .filter(|line| line.contains("SEYAHA_TABLE_NAME"))
            .collect::<Vec<_>>(),
        [expected],
        "{logs}"
    );
    assert!(!logs.contains("Missing"), "{logs}");
    // And Lambda is told why the init failed.
    let reported = function
        .runtime
        .init_error()
        .expect("an init error was reported to the Runtime API");
    assert_eq!(reported["errorMessage"], expected, "{reported}");
    assert_eq!(reported["errorType"], "Seyaha.ConfigurationError");
}

#[tokio::test]
async fn a_missing_jwt_secret_is_a_500_not_a_crash_and_webhooks_still_work() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let mut env = resources.lambda_env();
    for (key, value) in env.iter_mut() {
        if key == "SEYAHA_JWT_SECRET_ID" {
            *value = "no-such-secret".into();
        }
    }
    let register = Function::start("register", &env).await;
    let partner = format!(
        "Bearer {}",
        token(seyaha::domain::Role::Partner, &new_partner())
    );
    let me = http_event(
        "apigw-partner-me.json",
        "GET",
        &format!("{PREFIX}/me"),
        &[("authorization", &partner)],
        None,
    );
    for _ in 0..2 {
        let (status, body) = http_reply(&register.invoke(me.clone()).await.unwrap());
        assert_eq!(
            (status, body["success"].clone(), body["message"].clone()),
            (500, json!(0), json!("Internal server error"))
        );
    }
    assert!(
        register
            .logs()
            .contains("cannot read the JWT secret no-such-secret"),
        "{}",
        register.logs()
    );
    // Requests that carry no JWT never needed the key.
    let unknown = http_event(
        "apigw-sync-trigger.json",
        "POST",
        &format!("{PREFIX}/64a1b2c3d4e5f6a7b8c9d0e1/sync/trigger"),
        &[("x-webhook-secret", "x")],
        None,
    );
    let trigger = Function::start("sync-trigger", &env).await;
    assert_eq!(http_reply(&trigger.invoke(unknown).await.unwrap()).0, 401);
}

/// With `SEYAHA_JWT_PUBLIC_KEY` (one line, as a template parameter gives it) and no
/// `SEYAHA_JWT_SECRET_ID`, what the template sets then, register verifies ES256 tokens signed
/// with the key's private half and refuses HS256 ones: it needs no signing secret.
#[tokio::test]
async fn register_verifies_with_a_public_key_and_no_jwt_secret() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/fixtures/jwt/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let mut env: Vec<(String, String)> = resources
        .lambda_env()
        .into_iter()
        .filter(|(key, _)| key != "SEYAHA_JWT_SECRET_ID")
        .collect();
    env.push((
        "SEYAHA_JWT_PUBLIC_KEY".into(),
        fixture("es256-public.pem").trim().replace('\n', " "),
    ));
    let register = Function::start("register", &env).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": new_partner(), "role": "partner", "iat": now, "exp": now + 600});
    let es256 = encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(fixture("es256-private.pem").as_bytes()).unwrap(),
    );
    let me = |token: &str| {
        http_event(
            "apigw-partner-me.json",
            "GET",
            &format!("{PREFIX}/me"),
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
    };
    let (status, body) = http_reply(&register.invoke(me(&es256.unwrap())).await.unwrap());
    assert_eq!(status, 404, "authenticated, no integration yet: {body}");
    let hs256 = token(seyaha::domain::Role::Partner, &new_partner());
    let (status, body) = http_reply(&register.invoke(me(&hs256)).await.unwrap());
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].to_string().contains("algorithm"), "{body}");
}

/// The sync-worker Lambda is cut off mid-sync (Lambda timeout, OOM: here SIGKILL). SQS delivers
/// the message again to a fresh container while the dead run's lease still holds; the watchdog
/// that delivery leaves finishes the sync once the lease expired, with no new trigger.
#[tokio::test]
async fn a_worker_killed_mid_sync_is_finished_without_a_new_trigger() {
    use seyaha_tests::fake_octo::Behaviour;

    let config = sdk_config().await;
    let resources = resources(&config).await;
    let mut env = resources.lambda_env();
    env.push(("SEYAHA_SYNC_LEASE_SECS".into(), "2".into()));
    let octo = FakeOcto::start().await;
    let register = Function::start("register", &env).await;
    let admin_token = format!("Bearer {}", token(seyaha::domain::Role::Admin, "ops"));
    let id = admin_created(&register, &admin_token, &octo).await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sync_all = http_event(
        "apigw-partner-create.json",
        "POST",
        &format!("{PREFIX}/admin/sync-all"),
        &[("authorization", &admin_token)],
        None,
    );
    assert_eq!(http_reply(&register.invoke(sync_all).await.unwrap()).0, 202);
    let pager = Function::start("sync-worker", &env).await;
    let job = fan_out_through(&pager, &resources, &config, 1).await;
    assert_eq!(job.len(), 1);

    // The first worker takes the lease, reaches the supplier, and is killed there.
    octo.set_behaviour(Behaviour::Held);
    let doomed = Function::start("sync-worker", &env).await;
    let invocation = tokio::spawn({
        let event = sqs_event(&job);
        async move {
            doomed
                .invoke(event)
                .await
                .ok()
                .map(|_| doomed.pid())
                .unwrap_or_default()
        }
    });
    seyaha_tests::wait_until(
        "the worker to reach the supplier",
        Duration::from_secs(20),
        || octo.product_calls() > 0,
    )
    .await;
    invocation.abort(); // drops the Function: SIGKILL
    assert!(invocation.await.unwrap_err().is_cancelled());

    // SQS redelivers the message to a fresh container while the dead lease holds...
    octo.release();
    octo.set_behaviour(Behaviour::Normal);
    let worker = Function::start("sync-worker", &env).await;
    assert_eq!(
        worker.invoke(sqs_event(&job)).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    // ...which leaves a watchdog for the lease's expiry (on the bulk queue, like the sync-all
    // job it stands for); that one finishes the work.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let sync_log = http_event(
        "apigw-partner-me.json",
        "GET",
        &format!("{PREFIX}/{id}/sync-log"),
        &[("authorization", &admin_token)],
        None,
    );
    loop {
        assert!(
            resources.receive(&config, 0).await.is_empty(),
            "the bulk sync's jobs stay off the real-time queue"
        );
        for message in resources.receive_bulk(&config, 60).await {
            assert_eq!(
                worker.invoke(sqs_event(&[message])).await.unwrap(),
                json!({"batchItemFailures": []})
            );
        }
        let (_, log) = http_reply(&register.invoke(sync_log.clone()).await.unwrap());
        if log["data"]["sync"]["status"] == "idle" && log["data"]["runs"][0]["outcome"] == "synced"
        {
            assert_eq!(log["data"]["runs"][0]["created"], 3, "{log}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed sync was never finished: {log}"
        );
    }
}

/// A batch the invocation has no time left for is reported back, job by job, not consumed: SQS
/// delivers the jobs again, and their sync requests are still there when it does.
#[tokio::test]
async fn jobs_the_worker_has_no_time_for_are_reported_not_consumed() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let env = resources.lambda_env();
    let octo = FakeOcto::start().await;
    let register = Function::start("register", &env).await;
    let admin_token = format!("Bearer {}", token(seyaha::domain::Role::Admin, "ops"));
    for _ in 0..2 {
        admin_created(&register, &admin_token, &octo).await;
    }
    let sync_all = http_event(
        "apigw-partner-create.json",
        "POST",
        &format!("{PREFIX}/admin/sync-all"),
        &[("authorization", &admin_token)],
        None,
    );
    assert_eq!(http_reply(&register.invoke(sync_all).await.unwrap()).0, 202);
    let worker = Function::start("sync-worker", &env).await;
    let jobs = fan_out_through(&worker, &resources, &config, 2).await;
    assert_eq!(jobs.len(), 2);

    // Three seconds left: less than a partner call at its timeout (20 s) needs.
    let answer = worker
        .invoke_with_deadline(sqs_event(&jobs), Duration::from_secs(3))
        .await
        .unwrap();
    let mut failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    let mut sent: Vec<String> = jobs
        .iter()
        .map(|m| m.message_id().unwrap().to_owned())
        .collect();
    failed.sort();
    sent.sort();
    assert_eq!(failed, sent, "both jobs are handed back to SQS");
    assert_eq!(octo.product_calls(), 0, "nothing was started");

    // Delivered again with time to spare, they run.
    let answer = worker.invoke(sqs_event(&jobs)).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(octo.product_calls(), 2);
}

/// An OCTO `PRODUCT_UPDATE` through the availability-notify function (the sample event), and
/// the product job it queues through the sync worker: one product fetched, one activity written.
#[tokio::test]
async fn an_octo_product_update_reaches_the_worker_as_a_product_job() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let env = resources.lambda_env();
    let octo = FakeOcto::start().await;
    let Fleet {
        register,
        trigger,
        notify,
        worker,
        admin_token,
        id,
        secret,
    } = Fleet::start(&env, &octo).await;
    let sync = http_event(
        "apigw-sync-trigger.json",
        "POST",
        &format!("{PREFIX}/{id}/sync/trigger"),
        &[("x-webhook-secret", &secret)],
        None,
    );
    assert_eq!(http_reply(&trigger.invoke(sync).await.unwrap()).0, 200);

    let mut catalog = seyaha_tests::fake_octo::sample_catalog(3);
    catalog[1]["title"] = json!("Product 1, renovated");
    octo.set_catalog(catalog);
    let update = sample_body("apigw-octo-events.json");
    let event = http_event(
        "apigw-octo-events.json",
        "POST",
        &format!("{PREFIX}/{id}/octo/events"),
        &[("x-webhook-secret", &secret)],
        Some(&update),
    );
    let (status, accepted) = http_reply(&notify.invoke(event).await.unwrap());
    assert_eq!(
        (status, accepted["data"].clone()),
        (
            202,
            json!({"accepted": true, "action": "product_sync_queued"})
        )
    );

    let messages = wait_for_messages(&resources, &config, 1).await;
    assert_eq!(messages.len(), 1);
    let job = serde_json::from_str::<Value>(messages[0].body().unwrap()).unwrap();
    assert_eq!(
        job,
        json!({"integration_id": id, "trigger": "product_update", "work": {"kind": "product", "product_id": "product_1"}})
    );
    assert_eq!(
        worker.invoke(sqs_event(&messages)).await.unwrap(),
        json!({"batchItemFailures": []})
    );

    let sync_log = http_event(
        "apigw-partner-me.json",
        "GET",
        &format!("{PREFIX}/{id}/sync-log"),
        &[("authorization", &admin_token)],
        None,
    );
    let (_, log) = http_reply(&register.invoke(sync_log).await.unwrap());
    let run = &log["data"]["runs"][0];
    assert_eq!(
        (
            run["trigger"].clone(),
            run["updated"].clone(),
            run["unchanged"].clone()
        ),
        (json!("product_update"), json!(1), json!(0)),
        "{log}"
    );
    assert_eq!(octo.single_product_calls(), ["product_1"]);
    assert_eq!(
        octo.product_calls(),
        1,
        "no full catalog fetch after the first sync"
    );

    // An admin's availability refresh (the sample event) through register, pulled by the worker.
    octo.set_availability(
        "product_1",
        "DEFAULT",
        vec![json!({"id": "s1", "localDateTimeStart": "2026-12-05T09:00:00+04:00", "status": "AVAILABLE", "vacancies": 7, "capacity": 9})],
    );
    let refresh_body = sample_body("apigw-admin-availability-refresh.json");
    let refresh = http_event(
        "apigw-admin-availability-refresh.json",
        "POST",
        &format!("{PREFIX}/admin/{id}/availability/refresh"),
        &[("authorization", &admin_token)],
        Some(&refresh_body),
    );
    let (status, queued) = http_reply(&register.invoke(refresh).await.unwrap());
    assert_eq!(
        (status, queued["data"].clone()),
        (202, json!({"queued": 1})),
        "{queued}"
    );
    let messages = wait_for_messages(&resources, &config, 1).await;
    assert_eq!(
        serde_json::from_str::<Value>(messages[0].body().unwrap()).unwrap()["work"]["kind"],
        "pending_pulls"
    );
    assert_eq!(
        worker.invoke(sqs_event(&messages)).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    let catalog = http_event(
        "apigw-partner-me.json",
        "GET",
        &format!("{PREFIX}/{id}/catalog"),
        &[("authorization", &admin_token)],
        None,
    );
    let (_, catalog) = http_reply(&register.invoke(catalog).await.unwrap());
    let slots = catalog["data"]["slots"].as_array().unwrap();
    assert!(
        slots
            .iter()
            .any(|s| s["availabilityId"] == "s1" && s["vacancies"] == 7),
        "{catalog}"
    );
    assert_eq!(
        octo.availability_calls().len(),
        2,
        "one call per option of product_1, December in one piece"
    );
}

/// As the template configures them: the API's functions with push subscriptions on and no
/// public URL, the sync worker with the HTTP API's URL. An admin's create through register
/// queues a subscribe job; the sync worker subscribes Seyaha to the partner's notifications
/// with a delivery secret the availability-notify function then accepts.
#[tokio::test]
async fn an_approved_integration_is_subscribed_by_the_worker() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let (mut api_env, mut worker_env) = (resources.lambda_env(), resources.lambda_env());
    api_env.push(("SEYAHA_PUSH_SUBSCRIPTIONS".into(), "true".into()));
    worker_env.push((
        "SEYAHA_PUBLIC_URL".into(),
        "https://api.example.test".into(),
    ));
    let octo = FakeOcto::start().await;
    octo.offer_channel("notifications/subscriptions");
    let (register, notify, worker) = tokio::join!(
        Function::start("register", &api_env),
        Function::start("availability-notify", &api_env),
        Function::start("sync-worker", &worker_env)
    );
    let admin_token = format!("Bearer {}", token(seyaha::domain::Role::Admin, "ops"));
    let id = admin_created(&register, &admin_token, &octo).await["_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let messages = wait_for_messages(&resources, &config, 1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(messages[0].body().unwrap()).unwrap()["work"],
        json!({"kind": "subscribe"})
    );
    assert_eq!(
        worker.invoke(sqs_event(&messages)).await.unwrap(),
        json!({"batchItemFailures": []})
    );

    let subscriptions = octo.subscriptions();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(
        subscriptions[0]["url"],
        format!("https://api.example.test{PREFIX}/{id}/octo/events")
    );
    let get = http_event(
        "apigw-partner-me.json",
        "GET",
        &format!("{PREFIX}/admin/{id}"),
        &[("authorization", &admin_token)],
        None,
    );
    let (_, shown) = http_reply(&register.invoke(get).await.unwrap());
    assert_eq!(
        shown["data"]["notifications"]["mode"], "octo_notifications",
        "{shown}"
    );
    // The partner's platform delivers with the subscription's secret: accepted.
    let delivery_secret = subscriptions[0]["headers"]["x-webhook-secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivery = json!({"notificationType": "BOOKING_UPDATE", "payload": {"uuid": "b-1"}});
    let event = http_event(
        "apigw-octo-events.json",
        "POST",
        &format!("{PREFIX}/{id}/octo/events"),
        &[("x-webhook-secret", &delivery_secret)],
        Some(&delivery),
    );
    let (status, accepted) = http_reply(&notify.invoke(event).await.unwrap());
    assert_eq!(
        (status, accepted["data"]["action"].clone()),
        (202, json!("ignored")),
        "{accepted}"
    );
    assert!(!shown.to_string().contains(&delivery_secret), "never shown");
    for function in [&register, &notify, &worker] {
        assert!(
            !function.logs().contains(&delivery_secret),
            "the delivery secret is in no log"
        );
    }
}

/// The `register` function serves the console page (with its CSP) and the admin's sync of one
/// integration, which leaves one catalog job with the admin trigger on the queue.
#[tokio::test]
async fn register_serves_the_console_and_an_admin_sync_of_one_integration() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let octo = FakeOcto::start().await;
    let register = Function::start("register", &resources.lambda_env()).await;
    let admin_token = format!("Bearer {}", token(seyaha::domain::Role::Admin, "ops"));

    let console = http_event("apigw-partner-me.json", "GET", "/console", &[], None);
    let page = register.invoke(console).await.unwrap();
    assert_eq!(page["statusCode"], 200);
    assert_eq!(page["headers"]["content-type"], "text/html; charset=utf-8");
    assert!(
        page["headers"]["content-security-policy"]
            .as_str()
            .unwrap()
            .contains("connect-src 'self'"),
        "{}",
        page["headers"]
    );
    assert!(
        page["body"]
            .as_str()
            .unwrap()
            .contains("<title>Seyaha · Partner integrations console</title>")
    );

    let id = admin_created(&register, &admin_token, &octo).await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sync = http_event(
        "apigw-admin-sync.json",
        "POST",
        &format!("{PREFIX}/admin/{id}/sync"),
        &[("authorization", &admin_token)],
        None,
    );
    let (status, body) = http_reply(&register.invoke(sync).await.unwrap());
    assert_eq!(
        (status, body),
        (202, json!({"success": 1, "data": {"requested": true}}))
    );
    let jobs = wait_for_messages(&resources, &config, 1).await;
    let job = seyaha::adapters::stored::JobMessage::decode(jobs[0].body().unwrap()).unwrap();
    assert_eq!(
        (job.integration_id.map(|i| i.to_string()), job.trigger),
        (Some(id), seyaha::domain::RunTrigger::Admin)
    );
}

/// The namespace the metrics test sets (`SEYAHA_METRICS_NAMESPACE`).
const NAMESPACE: &str = "Seyaha/Tests";

/// Asserts that an EMF document declares `metric` with `unit` in [`NAMESPACE`], dimensioned by
/// exactly these labels with these values; returns its value.
#[track_caller]
fn emf_metric<'a>(
    document: &'a Value,
    metric: &str,
    unit: &str,
    dimensions: &[(&str, &str)],
) -> &'a Value {
    let directive = &document["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], NAMESPACE, "{document}");
    assert!(
        directive["Metrics"]
            .as_array()
            .unwrap()
            .contains(&json!({"Name": metric, "Unit": unit})),
        "{metric} in {document}"
    );
    let mut declared: Vec<&str> = directive["Dimensions"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    declared.sort();
    expected.sort();
    assert_eq!(declared, expected, "dimensions of {document}");
    for (name, value) in dimensions {
        assert_eq!(document[*name], *value, "{name} in {document}");
    }
    &document[metric]
}

/// Metrics on AWS: after each invocation a function prints what it recorded as CloudWatch
/// Embedded Metric Format documents on stdout, in the configured namespace, dimensioned by the
/// metric's labels only (no function, integration or partner).
#[tokio::test]
async fn each_invocation_prints_its_metrics_as_embedded_metric_format() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let mut env = resources.lambda_env();
    env.push(("SEYAHA_METRICS_NAMESPACE".into(), NAMESPACE.into()));
    let octo = FakeOcto::start().await;
    let Fleet {
        register,
        trigger,
        notify,
        worker,
        id,
        secret,
        ..
    } = Fleet::start(&env, &octo).await;

    // A webhook sync: its run and the partner call, with the latency as a list of values.
    let seen = trigger.emf_documents().len();
    let sync = http_event(
        "apigw-sync-trigger.json",
        "POST",
        &format!("{PREFIX}/{id}/sync/trigger"),
        &[("x-webhook-secret", &secret)],
        None,
    );
    assert_eq!(http_reply(&trigger.invoke(sync).await.unwrap()).0, 200);
    let document = trigger.emf_document_with(seen, "seyaha_syncs_total").await;
    assert_eq!(
        emf_metric(
            &document,
            "seyaha_syncs_total",
            "Count",
            &[("trigger", "webhook"), ("outcome", "synced")]
        ),
        &json!(1)
    );
    let document = trigger
        .emf_document_with(seen, "seyaha_partner_call_duration_seconds")
        .await;
    let dimensions = [("operation", "GET /products"), ("status_class", "2xx")];
    let latencies = emf_metric(
        &document,
        "seyaha_partner_call_duration_seconds",
        "Seconds",
        &dimensions,
    );
    assert_eq!(latencies.as_array().map(Vec::len), Some(1), "{document}");

    // Two notifies in two invocations: each prints its own count (the counters restart at
    // every flush, so CloudWatch adds them up).
    let notify_path = format!("{PREFIX}/{id}/availability/notify");
    let mut known = sample_body("apigw-availability-notify.json");
    known["availability"]["productId"] = json!("product_1");
    for _ in 0..2 {
        let seen = notify.emf_documents().len();
        let event = http_event(
            "apigw-availability-notify.json",
            "POST",
            &notify_path,
            &[("x-webhook-secret", &secret)],
            Some(&known),
        );
        assert_eq!(
            http_reply(&notify.invoke(event).await.unwrap()).1["data"],
            json!({"updated": true})
        );
        let document = notify
            .emf_document_with(seen, "seyaha_notifies_total")
            .await;
        assert_eq!(
            emf_metric(
                &document,
                "seyaha_notifies_total",
                "Count",
                &[("outcome", "updated")]
            ),
            &json!(1)
        );
    }
    let seen = notify.emf_documents().len();
    let wrong = http_event(
        "apigw-availability-notify.json",
        "POST",
        &notify_path,
        &[("x-webhook-secret", &"0".repeat(64))],
        Some(&known),
    );
    assert_eq!(http_reply(&notify.invoke(wrong).await.unwrap()).0, 401);
    let document = notify
        .emf_document_with(seen, "seyaha_webhook_auth_failures_total")
        .await;
    assert_eq!(
        emf_metric(
            &document,
            "seyaha_webhook_auth_failures_total",
            "Count",
            &[]
        ),
        &json!(1)
    );

    // A notify for an unknown product queues a fallback sync; the worker's job is counted.
    let unknown = sample_body("apigw-availability-notify.json");
    let event = http_event(
        "apigw-availability-notify.json",
        "POST",
        &notify_path,
        &[("x-webhook-secret", &secret)],
        Some(&unknown),
    );
    assert_eq!(
        http_reply(&notify.invoke(event).await.unwrap()).1["data"],
        json!({"updated": false})
    );
    let messages = wait_for_messages(&resources, &config, 1).await;
    assert_eq!(messages.len(), 1);
    let seen = worker.emf_documents().len();
    assert_eq!(
        worker.invoke(sqs_event(&messages)).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    let document = worker.emf_document_with(seen, "seyaha_jobs_total").await;
    assert_eq!(
        emf_metric(
            &document,
            "seyaha_jobs_total",
            "Count",
            &[("job_kind", "catalog"), ("outcome", "done")]
        ),
        &json!(1)
    );

    // No id and no secret in any document: only the labels' fixed values are dimensions.
    for function in [&register, &trigger, &notify, &worker] {
        for document in function.emf_documents() {
            let text = document.to_string();
            assert!(
                !text.contains(&id) && !text.contains(&secret) && !text.contains(&octo.base_url()),
                "{text}"
            );
        }
    }
}
