//! The real `seyaha-local` binary: start-up banner and tokens, the quickstart flow against the
//! demo supplier, graceful SIGTERM, data surviving a restart and a crash, and no secret in any
//! log line or response.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto};

const BIN: &str = env!("CARGO_BIN_EXE_seyaha-local");

struct Running {
    child: Child,
    base: String,
    partner_token: String,
    admin_token: String,
    stdout: String,
}

/// Starts the binary on a free port and reads its banner up to the tokens.
fn start(data_dir: &Path) -> Running {
    start_with(data_dir, &[])
}

fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--data-dir"])
        .arg(data_dir)
        .envs(env.iter().copied())
        .env_remove("SEYAHA_JWT_SECRET")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("seyaha-local starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The banner ends with the quickstart's last line.
    while !banner.contains("curl -s \"$SEYAHA/$ID/catalog\"") {
        assert!(Instant::now() < deadline, "no banner: {banner}");
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "stdout closed early: {banner}"
        );
        banner.push_str(&line);
    }
    // Drain the rest in the background so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
    });
    let value_of = |prefix: &str| {
        banner
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {banner}"))
            .trim()
            .to_owned()
    };
    let base = value_of("Seyaha partner integrations is running on ");
    Running {
        child,
        partner_token: value_of("export PARTNER_TOKEN="),
        admin_token: value_of("export ADMIN_TOKEN="),
        base,
        stdout: banner,
    }
}

fn stderr_of(mut child: Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "seyaha-local did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

#[tokio::test]
async fn quickstart_flow_restart_crash_and_no_secrets_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path());
    let api = format!("{}/api/v1/partner-integrations", first.base);
    assert!(
        first.stdout.contains(&format!("{}/demo/octo", first.base)),
        "banner names the demo supplier"
    );

    // The quickstart: register against the demo supplier, admin approves, test the connection.
    let auth_key = "demo-octo-key";
    let body = json!({"base_url": format!("{}/demo/octo", first.base), "auth_type": "bearer", "auth_key": auth_key, "handles_ticket_delivery": false});
    let (status, created, create_text) = call(
        reqwest::Method::POST,
        api.clone(),
        &first.partner_token,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{create_text}");
    let id = created["data"]["_id"].as_str().unwrap().to_owned();
    let webhook_secret = created["data"]["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, _) = call(
        reqwest::Method::PATCH,
        format!("{api}/admin/{id}"),
        &first.admin_token,
        Some(json!({"isApproved": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, test, text) = call(
        reqwest::Method::POST,
        format!("{api}/me/test-connection"),
        &first.partner_token,
        None,
    )
    .await;
    assert_eq!(
        (status, test["data"]["ok"].clone()),
        (200, json!(true)),
        "{text}"
    );
    let (_, me_before, me_text) = call(
        reqwest::Method::GET,
        format!("{api}/me"),
        &first.partner_token,
        None,
    )
    .await;

    // SIGTERM: a graceful, successful exit.
    let mut first_child = first.child;
    signal(&first_child, "TERM");
    assert!(wait_exit(&mut first_child).success());
    let mut logs = stderr_of(first_child);

    // Restart on the same data dir: same partner, same JWT secret, same data.
    let second = start(dir.path());
    let api = format!("{}/api/v1/partner-integrations", second.base);
    let (status, mut me_after, _) = call(
        reqwest::Method::GET,
        format!("{api}/me"),
        &second.partner_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A restart renews the push subscription, which here cannot work: the base_url points at
    // the first instance's demo supplier, on a port that is gone. Everything else is kept.
    let mut me_before = me_before;
    for me in [&mut me_before, &mut me_after] {
        me["data"].as_object_mut().unwrap().remove("notifications");
    }
    assert_eq!(me_after, me_before, "data survives a restart");
    let (status, _, _) = call(
        reqwest::Method::GET,
        format!("{api}/me"),
        &first.partner_token,
        None,
    )
    .await;
    assert_eq!(
        status, 200,
        "the generated JWT secret is reused, so old tokens stay valid"
    );

    // A crash (SIGKILL) loses nothing that was acknowledged.
    let (status, _, _) = call(
        reqwest::Method::PATCH,
        format!("{api}/me"),
        &second.partner_token,
        Some(json!({"handles_ticket_delivery": true})),
    )
    .await;
    assert_eq!(status, 200);
    let mut second_child = second.child;
    signal(&second_child, "KILL");
    wait_exit(&mut second_child);
    logs.push_str(&stderr_of(second_child));

    let third = start(dir.path());
    let api = format!("{}/api/v1/partner-integrations", third.base);
    let (status, me, _) = call(
        reqwest::Method::GET,
        format!("{api}/me"),
        &third.partner_token,
        None,
    )
    .await;
    assert_eq!(
        (status, me["data"]["handles_ticket_delivery"].clone()),
        (200, json!(true))
    );

    // The demo supplier delivers a notification to Seyaha with the webhook secret in a header
    // (logged at debug on both sides: the secret must not be).
    let demo = format!("{}/demo/octo", third.base);
    let subscription = json!({"url": format!("{api}/{id}/octo/events"), "notificationTypes": ["PRODUCT_UPDATE"], "headers": {"x-webhook-secret": webhook_secret}});
    let (status, _, text) = call(
        reqwest::Method::POST,
        format!("{demo}/notifications/subscriptions"),
        auth_key,
        Some(subscription),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let (status, _, _) = call(
        reqwest::Method::POST,
        format!("{demo}/_simulate/product-change"),
        "",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, recorded, _) = call(
            reqwest::Method::GET,
            format!("{demo}/_simulate/recorded"),
            "",
            None,
        )
        .await;
        if recorded["deliveries"][0]["status"] == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "no delivery: {recorded}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // `token` prints a token the server accepts.
    let output = Command::new(BIN)
        .args(["token", "--role", "admin", "--data-dir"])
        .arg(dir.path())
        .env_remove("SEYAHA_JWT_SECRET")
        .output()
        .unwrap();
    assert!(output.status.success());
    let admin_token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let (status, list, _) = call(
        reqwest::Method::GET,
        format!("{api}/admin"),
        &admin_token,
        None,
    )
    .await;
    assert_eq!(
        (status, list["pagination"]["totalCount"].clone()),
        (200, json!(1))
    );
    let bad = Command::new(BIN)
        .args(["token", "--role", "partner", "--sub", "nope", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));

    let mut third_child = third.child;
    signal(&third_child, "TERM");
    assert!(wait_exit(&mut third_child).success());
    logs.push_str(&stderr_of(third_child));

    // Nothing secret in any log line (debug level) or in the /me response.
    let jwt_secret = std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap();
    assert!(
        logs.contains("integration created"),
        "logs were captured: {logs}"
    );
    for (name, secret) in [
        ("auth_key", auth_key),
        ("webhook secret", webhook_secret.as_str()),
        ("JWT secret", jwt_secret.trim()),
        ("partner token", first.partner_token.as_str()),
        ("admin token", first.admin_token.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {name} appears in the logs");
    }
    assert!(!me_text.contains(auth_key) && !me_text.contains(&webhook_secret));
    let key_file = dir.path().join("secrets").join(format!("{id}.auth_key"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(key_file).unwrap().permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);
}

/// The printed quickstart, run as pasted, twice: every API answer of both runs is a success.
/// (It used to register blindly: the second paste got 409 and ran every later command with
/// the error body as the id.)
#[test]
fn the_printed_quickstart_can_be_pasted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = start(dir.path());
    let (_, script) = running
        .stdout
        .split_once("Quickstart (paste into a shell")
        .expect("the banner prints the quickstart");
    let script = script.split_once('\n').unwrap().1;
    let path = dir.path().join("quickstart.sh");
    std::fs::write(&path, script).unwrap();

    let mut outputs = Vec::new();
    for paste in 1..=2 {
        let output = Command::new("bash")
            .arg(&path)
            .env("NO_PROXY", "*")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "paste {paste}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !stdout.contains("\"success\":0"),
            "paste {paste} got an error answer:\n{stdout}"
        );
        // Registration (first paste only), /me twice, the approval, the test, the trigger, the
        // notify, health, sync-log, catalog: each a success envelope.
        let expected = if paste == 1 { 10 } else { 9 };
        assert_eq!(
            stdout.matches("{\"success\":1").count(),
            expected,
            "paste {paste}:\n{stdout}"
        );
        outputs.push(stdout);
    }
    let id = outputs[0].split_once("\"_id\":\"").unwrap().1[..24].to_owned();
    assert!(
        outputs[1].contains(&format!(
            "Already registered: {id}; rotating its webhook secret"
        )),
        "{}",
        outputs[1]
    );
    assert!(
        outputs[1].contains("{\"success\":1,\"data\":{\"updated\":true}}"),
        "the notify took the rotated secret: {}",
        outputs[1]
    );
    signal(&running.child, "TERM");
    assert!(wait_exit(&mut running.child).success());
}

/// Security review round two, R6: the data dir and `seyaha.redb` were 0755 and 0644, though
/// the store holds secret digests. A new data dir is 0700 and every file in it 0600; an existing
/// dir open to others is reported (not changed) and a store file readable by others tightened.
#[test]
fn the_data_dir_and_its_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode_of = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();

    let fresh = root.path().join("fresh").join("data");
    let mut running = start(&fresh);
    // Only the files matter here, not a graceful stop (SIGTERM right after the banner can
    // arrive before the handler is installed).
    signal(&running.child, "TERM");
    wait_exit(&mut running.child);
    assert_eq!(mode_of(&fresh), 0o700, "a new data dir");
    for file in ["seyaha.redb", "jwt-secret", "demo-partner-id"] {
        assert_eq!(mode_of(&fresh.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode_of(&fresh.join("secrets")), 0o700, "secrets/");

    let open = root.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(open.join("seyaha.redb"), b"").unwrap();
    std::fs::set_permissions(
        open.join("seyaha.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut running = start(&open);
    signal(&running.child, "TERM");
    wait_exit(&mut running.child);
    let logs = stderr_of(running.child);
    assert_eq!(
        mode_of(&open.join("seyaha.redb")),
        0o600,
        "an existing store file is tightened"
    );
    assert_eq!(
        mode_of(&open),
        0o755,
        "an existing data dir is the operator's: left as it is"
    );
    assert!(
        logs.contains("the data dir is open to other users"),
        "{logs}"
    );
    assert!(
        logs.contains("the store file was readable by others"),
        "{logs}"
    );
}

#[test]
fn a_second_instance_on_the_same_data_dir_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start(dir.path());
    let second = Command::new(BIN)
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is another seyaha-local using"), "{stderr}");
    signal(&first.child, "TERM");
    assert!(wait_exit(&mut first.child).success());
}

/// With `SEYAHA_JWT_PUBLIC_KEY` set, `token` refuses to print an HS256 token the server would
/// refuse, and a key that is not a public key stops start-up naming the variable.
#[test]
fn with_a_public_key_token_refuses_and_a_bad_key_fails_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/../tests/fixtures/jwt/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let token = Command::new(BIN)
        .args(["token", "--role", "admin", "--data-dir"])
        .arg(dir.path())
        .env("SEYAHA_JWT_PUBLIC_KEY", fixture("rs256-public.pem"))
        .output()
        .unwrap();
    assert_eq!(token.status.code(), Some(2));
    assert!(token.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&token.stderr).contains("SEYAHA_JWT_PUBLIC_KEY is set"),
        "{token:?}"
    );
    let private = Command::new(BIN)
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("SEYAHA_JWT_PUBLIC_KEY", fixture("es256-private.pem"))
        .output()
        .unwrap();
    assert_eq!(private.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&private.stderr);
    assert!(
        stderr.contains("SEYAHA_JWT_PUBLIC_KEY") && stderr.contains("private key"),
        "{stderr}"
    );
    assert!(!stderr.contains("BEGIN"), "the key is not echoed: {stderr}");
}

#[tokio::test]
async fn a_sync_killed_midway_is_finished_after_a_restart_without_a_new_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SEYAHA_SYNC_LEASE_SECS", "2"),
        ("SEYAHA_OCTO_TIMEOUT_SECS", "30"),
    ];
    // The supplier holds its first `GET /products` (the sync waits on it until we kill
    // seyaha-local) and serves the demo catalog afterwards.
    let supplier = FakeOcto::start().await;
    supplier.set_catalog(seyaha_local::demo::catalog());
    supplier.set_behaviour(Behaviour::Held);
    let first = start_with(dir.path(), &env);
    let api = format!("{}/api/v1/partner-integrations", first.base);
    let body = json!({"base_url": supplier.base_url(), "auth_type": "bearer", "auth_key": FAKE_KEY, "handles_ticket_delivery": false});
    let (_, created, _) = call(
        reqwest::Method::POST,
        api.clone(),
        &first.partner_token,
        Some(body),
    )
    .await;
    let id = created["data"]["_id"].as_str().unwrap().to_owned();
    let secret = created["data"]["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        reqwest::Method::PATCH,
        format!("{api}/admin/{id}"),
        &first.admin_token,
        Some(json!({"isApproved": true})),
    )
    .await;

    // The trigger hangs on the supplier; kill seyaha-local mid-sync.
    let trigger_url = format!("{api}/{id}/sync/trigger");
    let hung = tokio::spawn({
        let (url, secret) = (trigger_url.clone(), secret.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .header("x-webhook-secret", secret)
                .send()
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while supplier.product_calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the sync never reached the supplier"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut first_child = first.child;
    signal(&first_child, "KILL");
    wait_exit(&mut first_child);
    assert!(
        hung.await.unwrap().is_err(),
        "the killed server never answered"
    );
    supplier.set_behaviour(Behaviour::Normal);
    supplier.release();

    // After the restart nothing else is sent: the dead sync's request survived in the store,
    // and seyaha-local resumes it once the dead run's lease has expired.
    let second = start_with(dir.path(), &env);
    let api = format!("{}/api/v1/partner-integrations", second.base);
    let deadline = Instant::now() + Duration::from_secs(15);
    let log = loop {
        let (_, log, _) = call(
            reqwest::Method::GET,
            format!("{api}/{id}/sync-log"),
            &second.admin_token,
            None,
        )
        .await;
        if log["data"]["sync"]["status"] == "idle"
            && log["data"]["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["outcome"] == "synced")
        {
            break log;
        }
        assert!(Instant::now() < deadline, "no recovery: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(log["data"]["sync"]["last_sync_hash"].is_string());

    // A consistent catalog: every demo product once, all active.
    let (_, catalog, _) = call(
        reqwest::Method::GET,
        format!("{api}/{id}/catalog"),
        &second.admin_token,
        None,
    )
    .await;
    let activities = catalog["data"]["activities"].as_array().unwrap();
    assert_eq!(
        activities.len(),
        seyaha_local::demo::catalog().as_array().unwrap().len()
    );
    assert!(activities.iter().all(|a| a["isActive"] == true));

    let mut second_child = second.child;
    signal(&second_child, "TERM");
    assert!(wait_exit(&mut second_child).success());
}

/// Partner strings reach log lines (here: the product and option ids of a notify for an
/// unknown product). A newline in one must not forge a line of its own, and a long one is
/// cut to a bounded prefix.
#[tokio::test]
async fn partner_strings_cannot_forge_or_flood_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path());
    let api = format!("{}/api/v1/partner-integrations", running.base);
    let body = json!({"base_url": format!("{}/demo/octo", running.base), "auth_type": "bearer", "auth_key": "demo-octo-key", "handles_ticket_delivery": false});
    let (status, created, text) = call(
        reqwest::Method::POST,
        api.clone(),
        &running.partner_token,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let id = created["data"]["_id"].as_str().unwrap().to_owned();
    let secret = created["data"]["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, _) = call(
        reqwest::Method::PATCH,
        format!("{api}/admin/{id}"),
        &running.admin_token,
        Some(json!({"isApproved": true})),
    )
    .await;
    assert_eq!(status, 200);

    let forged = "2026-01-01T00:00:00.000000Z ERROR seyaha: forged";
    let long = "A".repeat(256);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for (product, option) in [
        (
            format!("nope\n{forged}"),
            format!("opt\r\n{forged}\u{1b}[31m"),
        ),
        (long.clone(), long.clone()),
    ] {
        let notify = json!({"productId": product, "optionId": option, "availabilityId": "slot-1",
                            "localDateTimeStart": "2030-07-15T10:00:00+04:00", "status": "AVAILABLE", "vacancies": 1, "capacity": 1});
        let response = client
            .post(format!("{api}/{id}/availability/notify"))
            .header("x-webhook-secret", &secret)
            .json(&notify)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    let mut child = running.child;
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
    let logs = stderr_of(child);
    assert!(
        logs.contains("notify for an unknown product"),
        "the notifies were logged: {logs}"
    );
    for line in logs.lines() {
        assert!(
            !line.contains("ERROR seyaha: forged") || line.contains("fallback sync"),
            "a forged line: {line:?}"
        );
        assert!(
            !line.contains('\u{1b}'),
            "an escape sequence reached the log: {line:?}"
        );
        assert!(
            !line.contains(&"A".repeat(201)),
            "more than 200 characters of a partner string: {line:?}"
        );
    }
}

/// A refused setting names where it came from: the flag given on the command line (with the
/// variable it stands for), or the environment variable.
#[test]
fn an_invalid_flag_is_named_as_the_flag_and_an_invalid_variable_as_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let from_flag = Command::new(BIN)
        .args(["--sync-lease-secs", "abc", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(from_flag.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&from_flag.stderr);
    assert!(
        stderr.starts_with("error: --sync-lease-secs (SEYAHA_SYNC_LEASE_SECS) is invalid: "),
        "{stderr}"
    );
    let from_variable = Command::new(BIN)
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("SEYAHA_SYNC_LEASE_SECS", "abc")
        .output()
        .unwrap();
    assert_eq!(from_variable.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&from_variable.stderr);
    assert!(
        stderr.starts_with("error: environment variable SEYAHA_SYNC_LEASE_SECS is invalid: "),
        "{stderr}"
    );
}
