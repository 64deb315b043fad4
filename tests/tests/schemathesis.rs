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

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let schemathesis = root.join(".venv/bin/schemathesis");
    assert!(schemathesis.exists(), "{} is missing: `make test` installs it (requirements-test.txt)", schemathesis.display());

    let app = TestApp::spawn_with(test_settings()).await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);

    let examples = std::env::var("SEYAHA_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| EXAMPLES.into());
    // A fixed seed in the test command (a failure reproduces); `make fuzz-api` passes `random`.
    let seed = std::env::var("SEYAHA_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261123".into());
    let (partner_token, admin_token) = (app.partner_token(&integration.partner), app.admin_token());
    // Three passes, so the integration is still there (approved, active) while the other
    // operations run: first everything that neither changes nor deletes it, then the PATCHes
    // (a new base_url needs approval again, isActive may turn false), then the DELETEs.
    let passes: [&[&str]; 3] =
        [&["--exclude-method", "PATCH", "--exclude-method", "DELETE"], &["--include-method", "PATCH"], &["--include-method", "DELETE"]];
    for selection in passes {
        let mut command = std::process::Command::new(&schemathesis);
        command
            .arg("--config-file")
            .arg(root.join("tests/schemathesis.toml"))
            .arg("run")
            .arg(app.url("/openapi.json"))
            .args(["--max-examples", &examples, "--no-color"])
            .args(selection)
            .env("PARTNER_TOKEN", &partner_token)
            .env("ADMIN_TOKEN", &admin_token)
            .env("WEBHOOK_SECRET", &integration.secret)
            .env("INTEGRATION_ID", &integration.id)
            .env("NO_COLOR", "1");
        if seed != "random" {
            command.args(["--seed", &seed]);
        }
        // On a blocking thread: the server under test keeps running on this runtime meanwhile.
        let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("schemathesis runs");
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        println!("{report}");
        assert!(output.status.success(), "schemathesis found failures ({selection:?}):\n{report}");
    }
}
