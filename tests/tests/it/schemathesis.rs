//! Schemathesis (pinned in `requirements-test.txt`; `make test` installs it into `.venv`) runs
//! every operation of the OpenAPI document against a seyaha-local started here, with a partner
//! JWT, an admin JWT and the webhook secret of an approved integration whose id fills `{id}`
//! (`tests/schemathesis.toml`). Its default checks include `not_a_server_error`,
//! `status_code_conformance`, `content_type_conformance` and `response_schema_conformance`;
//! the examples per operation are bounded so the run takes seconds. `make fuzz-api` runs the
//! same with many more examples and a random seed.

use std::path::Path;

use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{TestApp, test_settings};

/// Examples per operation here; `make fuzz-api` sets `SEYAHA_SCHEMATHESIS_EXAMPLES`.
const EXAMPLES: &str = "25";
/// Partners without an integration whose tokens the stateful pass's creates use, one each.
const FRESH_PARTNERS: u32 = 5_000;
/// The webhook secret rotations (selected by operation id: both are POSTs, like the reads).
const ROTATE_MINE: &str = "rotateMyWebhookSecret";
const ADMIN_ROTATE: &str = "adminRotateWebhookSecret";

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let schemathesis = root.join(".venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: `make test` installs it (requirements-test.txt)",
        schemathesis.display()
    );

    let app = TestApp::spawn_with(test_settings()).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);

    let examples =
        std::env::var("SEYAHA_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| EXAMPLES.into());
    // A fixed seed in the test command (a failure reproduces); `make fuzz-api` passes `random`.
    // A stateful example is a whole scenario of calls; more of them, for a margin on every step.
    let stateful_examples = (examples
        .parse::<u32>()
        .expect("SEYAHA_SCHEMATHESIS_EXAMPLES is a number")
        * 4)
    .to_string();
    let seed = std::env::var("SEYAHA_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261123".into());
    let (partner_token, admin_token) = (app.partner_token(&integration.partner), app.admin_token());
    // Three passes against the integration created above, so it is still there (approved,
    // active) while the other operations run: first everything that neither changes nor
    // deletes it, then the PATCHes (a new base_url needs approval again, isActive may turn
    // false) and the secret rotations (after two, the configured webhook secret no longer
    // works: in the first pass that would leave the webhooks nothing but 401s), then the
    // DELETEs. The stateful phase runs in the fourth pass only.
    let stateless: [&[&str]; 3] = [
        &[
            "--exclude-method",
            "PATCH",
            "--exclude-method",
            "DELETE",
            "--exclude-operation-id",
            ROTATE_MINE,
            "--exclude-operation-id",
            ADMIN_ROTATE,
            "--phases",
            "examples,coverage,fuzzing",
        ],
        &[
            "--include-method",
            "PATCH",
            "--include-operation-id",
            ROTATE_MINE,
            "--include-operation-id",
            ADMIN_ROTATE,
            "--phases",
            "examples,coverage,fuzzing",
        ],
        &[
            "--include-method",
            "DELETE",
            "--phases",
            "examples,coverage,fuzzing",
        ],
    ];
    // The fourth is the stateful phase: it follows the document's links (create → approve →
    // trigger → notify → delete) with the ids and webhook secrets the creates return. Its
    // configuration fixes neither `{id}` nor the secret; its hooks give each partner create a
    // partner without an integration (from the token file), so creating works every time.
    let scratch = tempfile::tempdir().unwrap();
    let tokens = scratch.path().join("partner-tokens");
    std::fs::write(
        &tokens,
        (0..FRESH_PARTNERS)
            .map(|n| app.partner_token(&format!("{n:024x}")) + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let har = scratch.path().join("stateful.har");
    let stateful_report = [
        "--report",
        "har",
        "--report-har-path",
        har.to_str().unwrap(),
    ];
    let stateful: (&[&str], &str) = (
        &["--phases", "stateful"],
        "tests/schemathesis-stateful.toml",
    );
    let passes = stateless
        .map(|selection| (selection, "tests/schemathesis.toml"))
        .into_iter()
        .chain([stateful]);
    for (selection, config) in passes {
        let mut command = std::process::Command::new(&schemathesis);
        command
            .arg("--config-file")
            .arg(root.join(config))
            .arg("run")
            .arg(app.url("/openapi.json"))
            .args([
                "--max-examples",
                if selection == stateful.0 {
                    &stateful_examples
                } else {
                    &examples
                },
                "--no-color",
            ])
            .args(selection)
            .env("PARTNER_TOKEN", &partner_token)
            .env("ADMIN_TOKEN", &admin_token)
            .env("WEBHOOK_SECRET", &integration.secret)
            .env("INTEGRATION_ID", &integration.id)
            .env("NO_COLOR", "1");
        if selection == stateful.0 {
            command
                .args(stateful_report)
                .env("SEYAHA_PARTNER_TOKENS", &tokens)
                .env(
                    "SCHEMATHESIS_HOOKS",
                    root.join("tests/schemathesis_hooks.py"),
                );
        }
        if seed != "random" {
            command.args(["--seed", &seed]);
        }
        // On a blocking thread: the server under test keeps running on this runtime meanwhile.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("schemathesis runs");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        println!("{report}");
        assert!(
            output.status.success(),
            "schemathesis found failures ({selection:?}):\n{report}"
        );
    }
    assert_the_links_chained(
        &std::fs::read_to_string(&har).expect("the stateful pass wrote its HAR report"),
    );
}

/// The stateful pass reached each step of an integration's life through the links, with the
/// real id and secret: a create, its approval, a trigger and a notify whose secret was
/// accepted (anything but 401: not yet approved, the random partner URL unreachable, or done),
/// and a delete. Without the links (or with a secret that does not flow) these stay at 0.
fn assert_the_links_chained(har: &str) {
    let har: serde_json::Value = serde_json::from_str(har).unwrap();
    let mut steps = std::collections::BTreeMap::<&str, u32>::new();
    let mut calls = std::collections::BTreeMap::<String, u32>::new();
    for entry in har["log"]["entries"].as_array().unwrap() {
        let (method, url, status) = (
            entry["request"]["method"].as_str().unwrap(),
            entry["request"]["url"].as_str().unwrap(),
            entry["response"]["status"].as_u64().unwrap(),
        );
        let path = url.split('?').next().unwrap();
        let operation = path
            .split('/')
            .map(|part| if part.len() == 24 { "{id}" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        *calls
            .entry(format!(
                "{method} {} {status}",
                &operation[operation.find("/api").unwrap_or(0)..]
            ))
            .or_default() += 1;
        let step = match (method, status) {
            ("POST", 201) if path.ends_with("/partner-integrations") => "created",
            ("PATCH", 200) if path.contains("/admin/") => "approved",
            ("POST", 200 | 202 | 403 | 502) if path.ends_with("/sync/trigger") => "triggered",
            ("POST", 200 | 202 | 400 | 403) if path.ends_with("/availability/notify") => "notified",
            ("DELETE", 200) if path.contains("/admin/") => "deleted",
            _ => continue,
        };
        *steps.entry(step).or_default() += 1;
    }
    println!("stateful steps reached through links: {steps:?}");
    for step in ["created", "approved", "triggered", "notified", "deleted"] {
        assert!(
            steps.get(step).is_some_and(|&n| n > 0),
            "the stateful pass never {step} an integration through the links: {steps:?}\n{calls:#?}"
        );
    }
}
