//! Cold-start benchmark: prints numbers, asserts nothing. Run with `make bench-cold-start`,
//! which builds the release binaries first.
//!
//! For each release function binary (x86_64 here, so it runs without emulation): the time from
//! spawn to its first `GET /runtime/invocation/next` on the local Runtime API, and from spawn to
//! the first response of a representative request against moto, next to a floor binary built
//! with the same profile that only loads aws_config and builds the three SDK clients and a
//! reqwest client (target: at most 1.2x the floor). Then each function's zipped package size
//! (target: at most 4 MB), from the arm64 `bootstrap` cargo-lambda built, when present.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use seyaha::api::PREFIX;
use seyaha::api::auth::mint_token;
use seyaha::domain::Role;
use seyaha_tests::aws::{resources, sdk_config};
use seyaha_tests::lambda::{Function, event_file, http_event};
use seyaha_tests::{JWT_SECRET, new_partner};

const RUNS: usize = 15;
const FUNCTIONS: [&str; 5] = [
    "register",
    "sync-trigger",
    "availability-notify",
    "nightly-sync",
    "sync-worker",
];

fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Size of `bootstrap` zipped with deflate, as cargo-lambda packages it.
fn zipped_size(binary: &Path) -> Option<u64> {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(binary)
        .output()
        .ok()?;
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

fn main() {
    let dir = release_dir();
    for name in FUNCTIONS.iter().chain(["cold-start-floor"].iter()) {
        if !dir.join(name).exists() {
            eprintln!(
                "{} is missing: run `make bench-cold-start` (it builds the release binaries first)",
                dir.join(name).display()
            );
            std::process::exit(1);
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = sdk_config().await;
        let resources = resources(&config).await;
        let mut env = resources.lambda_env();
        env.push(("RUST_LOG".into(), "info".into()));
        let partner = format!(
            "Bearer {}",
            mint_token(&secrecy::SecretString::from(JWT_SECRET), Role::Partner, &new_partner(), Duration::from_secs(3600))
        );
        let unknown = "64a1b2c3d4e5f6a7b8c9d0e1";
        let request = |name: &str| -> Value {
            match name {
                "register" => http_event("apigw-partner-me.json", "GET", &format!("{PREFIX}/me"), &[("authorization", &partner)], None),
                "sync-trigger" => http_event(
                    "apigw-sync-trigger.json",
                    "POST",
                    &format!("{PREFIX}/{unknown}/sync/trigger"),
                    &[("x-webhook-secret", "0")],
                    None,
                ),
                "availability-notify" => http_event(
                    "apigw-availability-notify.json",
                    "POST",
                    &format!("{PREFIX}/{unknown}/availability/notify"),
                    &[("x-webhook-secret", "0")],
                    Some(&json!({})),
                ),
                "sync-worker" => event_file("sqs-sync-jobs.json"),
                _ => event_file("scheduled-nightly.json"),
            }
        };

        println!("cold start, release x86_64 binaries, median of {RUNS} runs (min in brackets), moto on loopback:");
        println!("  {:<22} {:>22} {:>26} {:>22}", "binary", "spawn -> first /next", "spawn -> first response", "same request, warm");
        let mut floor = (Duration::ZERO, Duration::ZERO);
        for name in ["cold-start-floor"].into_iter().chain(FUNCTIONS) {
            let mut polls = Vec::new();
            let mut responses = Vec::new();
            let mut warm = Vec::new();
            // As in template.yaml: only `register` is given the JWT secret.
            let env: Vec<(String, String)> =
                env.iter().filter(|(k, _)| name == "register" || k != "SEYAHA_JWT_SECRET_ID").cloned().collect();
            for _ in 0..RUNS {
                let function = Function::start_at(dir.join(name), name, &env).await;
                let outcome = function.invoke(request(name)).await;
                let answered = function.spawned_at.elapsed();
                assert!(outcome.is_ok(), "{name}: {outcome:?}\n{}", function.logs());
                polls.push(function.runtime.first_poll().expect("it polled") - function.spawned_at);
                responses.push(answered);
                // The request's own cost, with the process warm: what the response time adds
                // beyond start-up (the floor's handler makes no AWS call at all).
                let started = std::time::Instant::now();
                function.invoke(request(name)).await.unwrap();
                warm.push(started.elapsed());
            }
            let (poll, response) = (median(polls.clone()), median(responses.clone()));
            if name == "cold-start-floor" {
                floor = (poll, response);
            }
            println!(
                "  {name:<22} {:>8.1} ms ({:>5.1}) {:>5.2}x {:>9.1} ms ({:>5.1}) {:>5.2}x {:>12.1} ms",
                ms(poll),
                ms(*polls.iter().min().unwrap()),
                poll.as_secs_f64() / floor.0.as_secs_f64(),
                ms(response),
                ms(*responses.iter().min().unwrap()),
                response.as_secs_f64() / floor.1.as_secs_f64(),
                ms(median(warm.clone())),
            );
        }
        println!("  (target: each function at most 1.2x the floor)");

        println!("zipped package sizes (target <= 4 MB):");
        let lambda_dir = dir.parent().unwrap().join("lambda");
        for name in FUNCTIONS {
            let arm64 = lambda_dir.join(name).join("bootstrap");
            let (binary, label) = if arm64.exists() {
                (arm64, "arm64, cargo lambda build --release --arm64")
            } else {
                (dir.join(name), "x86_64 release build")
            };
            let raw = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
            match zipped_size(&binary) {
                Some(zipped) => {
                    println!("  {name:<22} {:>6.2} MB zipped ({:>6.2} MB binary, {label})", zipped as f64 / 1e6, raw as f64 / 1e6)
                }
                None => println!("  {name:<22} could not zip {}", binary.display()),
            }
        }
    });
}
