//! `seyaha-local`: run the whole service on this machine, or print a token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use seyaha::api::PREFIX;
use seyaha::api::auth::mint_scoped_token;
use seyaha::domain::{PartnerId, Role};
use seyaha::settings::{LogFormat, Settings};
use seyaha_local::demo::DEMO_OCTO_KEY;
use seyaha_local::{LocalConfig, PRINTED_TOKEN_TTL, RunningServer, demo_partner_id, jwt_secret};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

include!(concat!(env!("OUT_DIR"), "/setting_flags.rs"));

/// The command line: the port and the subcommand here, and one flag per setting added by
/// [`command_line`] from the settings' own declaration (see `build.rs`), so a setting has its flag
/// and its help without a line here.
#[derive(Parser)]
#[command(
    name = "seyaha-local",
    version,
    about = "Seyaha partner integrations on one machine, on an embedded store"
)]
struct Cli {
    /// Port to listen on (127.0.0.1).
    #[arg(long, env = "PORT", default_value_t = 3000, global = true)]
    port: u16,
    #[command(subcommand)]
    command: Option<Command>,
}

/// [`Cli`] with a flag per setting (`--octo-timeout-secs` for `octo_timeout_secs`), which
/// overrides the `SEYAHA_*` variable of the same name.
fn command_line() -> clap::Command {
    SETTING_FLAGS
        .iter()
        .fold(Cli::command(), |command, (field, flag, help)| {
            let variable = seyaha::settings::variable(field);
            command.arg(
                clap::Arg::new(*field)
                    .long(*flag)
                    .value_name("VALUE")
                    .help(format!("{help} [{variable}]"))
                    .global(true),
            )
        })
}

/// The environment's settings with every given flag on top: a flag is read as the variable it
/// names, by the same parser and checks, so the two cannot disagree. A refused flag is named as
/// the flag it is (with its variable), not as the environment's.
fn settings(matches: &clap::ArgMatches) -> Result<Settings, String> {
    let given: Vec<(&str, String, String)> = SETTING_FLAGS
        .iter()
        .filter_map(|(field, flag, _)| {
            let value = matches.get_one::<String>(field)?;
            Some((*flag, seyaha::settings::variable(field), value.clone()))
        })
        .collect();
    let flags = given
        .iter()
        .map(|(_, variable, value)| (variable.clone(), value.clone()));
    Settings::from_vars(std::env::vars().chain(flags)).map_err(|error| match &error {
        seyaha::settings::SettingsError::Invalid { name, reason } => {
            match given.iter().find(|(_, variable, _)| variable == name) {
                Some((flag, _, _)) => format!("--{flag} ({name}) is invalid: {reason}"),
                None => error.to_string(),
            }
        }
        _ => error.to_string(),
    })
}

#[derive(Subcommand)]
enum Command {
    /// Print a signed JWT for a partner or an admin.
    Token {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The subject: a 24-hex partner id for partners (default: this data dir's demo partner).
        #[arg(long)]
        sub: Option<String>,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|_| "must be partner or admin".to_owned())
}

fn main() -> ExitCode {
    let matches = command_line().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let settings = match settings(&matches) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(settings.log_format);
    match cli.command {
        Some(Command::Token {
            role,
            sub,
            ttl_hours,
        }) => print_token(&settings, role, sub, ttl_hours),
        None => {
            let config = LocalConfig::new(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), cli.port),
                settings,
            );
            // The blocking pool runs redb work only: writes take turns on redb's one write lock,
            // so more threads than this would mostly wait, each holding its own allocator heap.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(8)
                .build()
                .expect("the tokio runtime starts");
            runtime.block_on(serve(config))
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match format {
        LogFormat::Text => builder.fmt_fields(escaped_fields()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Text log fields with their control characters escaped. Outside text is also wrapped in
/// `Untrusted` where it is logged (escaped and cut); this keeps any value that was not from
/// starting a log line of its own. (JSON output escapes by itself.)
fn escaped_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        if field.name() != "message" {
            write!(writer, "{}=", field.name())?;
        }
        seyaha::logging::write_escaped(writer, &format!("{value:?}"), usize::MAX)
    })
    .delimited(" ")
}

fn print_token(settings: &Settings, role: Role, sub: Option<String>, ttl_hours: u64) -> ExitCode {
    if settings
        .jwt_public_key
        .as_deref()
        .is_some_and(|pem| !pem.trim().is_empty())
    {
        eprintln!(
            "error: SEYAHA_JWT_PUBLIC_KEY is set, so HS256 tokens are refused: sign tokens with its private key"
        );
        return ExitCode::from(2);
    }
    let data_dir = &settings.data_dir;
    let secret = match jwt_secret(data_dir, settings.jwt_secret.as_ref()) {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!(
                "error: cannot read the JWT secret from {}: {error}",
                data_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let (role, subject) = match (role, sub) {
        (Role::Admin, sub) => (Role::Admin, sub.unwrap_or_else(|| "admin".into())),
        (Role::Partner, Some(sub)) => match PartnerId::parse(&sub) {
            Ok(id) => (Role::Partner, id.to_string()),
            Err(error) => {
                eprintln!("error: --sub {error} for a partner token");
                return ExitCode::from(2);
            }
        },
        (Role::Partner, None) => match demo_partner_id(data_dir) {
            Ok(id) => (Role::Partner, id.to_string()),
            Err(error) => {
                eprintln!("error: cannot read the demo partner id: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    println!(
        "{}",
        mint_scoped_token(
            &secret,
            role,
            &subject,
            Duration::from_secs(ttl_hours * 3600),
            &settings.token_scope()
        )
    );
    ExitCode::SUCCESS
}

async fn serve(config: LocalConfig) -> ExitCode {
    let mut server = match seyaha_local::start(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    print_quickstart(&server);
    tokio::select! {
        result = server.wait() => {
            eprintln!("error: the server stopped: {result:?}");
            return ExitCode::FAILURE;
        }
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down");
    match server.stop().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error while shutting down: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn print_quickstart(server: &RunningServer) {
    let base = server.base_url();
    // A slot a week from now, so the catalog shows it (slots are kept 30 days after they start).
    let slot_day = chrono::Utc::now() + chrono::Duration::days(7);
    let (slot_start, slot_date) = (
        slot_day.format("%Y-%m-%dT19:30:00+04:00").to_string(),
        slot_day.format("%Y-%m-%d").to_string(),
    );
    let partner = server.mint(
        Role::Partner,
        &server.demo_partner_id.to_string(),
        PRINTED_TOKEN_TTL,
    );
    let admin = server.mint(Role::Admin, "admin", PRINTED_TOKEN_TTL);
    if server.verifies_with_public_key {
        eprintln!(
            "note: SEYAHA_JWT_PUBLIC_KEY is set: the HS256 tokens below are refused; use tokens signed with its private key"
        );
    }
    println!(
        r#"
Seyaha partner integrations is running on {base}
A demo OCTO supplier is at {base}/demo/octo (auth_key "{DEMO_OCTO_KEY}").
The ops console is at {base}/console (sign in with the admin token below).
Tokens below are valid for 24 hours; `seyaha-local token --role partner|admin` prints new ones.

Quickstart (paste into a shell; pasting it again is fine):

export SEYAHA={base}{PREFIX}
export PARTNER_TOKEN={partner}
export ADMIN_TOKEN={admin}

# 1. The partner registers its OCTO endpoint; the webhook_secret is shown only in this answer.
#    Pasted again, the partner already has one: its id comes from GET /me, and a rotated webhook
#    secret stands in for the first one (which keeps working for the overlap, 24 h by default).
ID=$(curl -s "$SEYAHA/me" -H "Authorization: Bearer $PARTNER_TOKEN" | sed -nE 's/.*"_id":"([0-9a-f]{{24}})".*/\1/p')
if [ -z "$ID" ]; then
  CREATED=$(curl -s -X POST "$SEYAHA" -H "Authorization: Bearer $PARTNER_TOKEN" -H 'Content-Type: application/json' \
    -d '{{"base_url":"{base}/demo/octo","auth_type":"bearer","auth_key":"{DEMO_OCTO_KEY}","handles_ticket_delivery":false}}')
  echo "$CREATED"
  ID=$(echo "$CREATED" | sed -nE 's/.*"_id":"([0-9a-f]{{24}})".*/\1/p')
  SECRET=$(echo "$CREATED" | sed -nE 's/.*"webhook_secret":"([0-9a-f]{{64}})".*/\1/p')
else
  echo "Already registered: $ID; rotating its webhook secret for this session"
  SECRET=$(curl -s -X POST "$SEYAHA/me/webhook-secret" -H "Authorization: Bearer $PARTNER_TOKEN" | sed -nE 's/.*"webhook_secret":"([0-9a-f]{{64}})".*/\1/p')
fi

# 2. The partner checks its integration; an admin approves it. Approval subscribes Seyaha to the
#    demo supplier's notifications by itself: "notifications":{{"mode":"octo_notifications",...}}
curl -s "$SEYAHA/me" -H "Authorization: Bearer $PARTNER_TOKEN"
curl -s -X PATCH "$SEYAHA/admin/$ID" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -d '{{"isApproved":true}}'
curl -s "$SEYAHA/me" -H "Authorization: Bearer $PARTNER_TOKEN"

# 3. The partner tests the connection
curl -s -X POST "$SEYAHA/me/test-connection" -H "Authorization: Bearer $PARTNER_TOKEN"

# 4. The partner triggers a sync, then pushes one availability slot
curl -s -X POST "$SEYAHA/$ID/sync/trigger" -H "x-webhook-secret: $SECRET"
curl -s -X POST "$SEYAHA/$ID/availability/notify" -H "x-webhook-secret: $SECRET" -H 'Content-Type: application/json' \
  -d '{{"productId":"product_dhow_cruise","optionId":"DEFAULT","availabilityId":"{slot_start}","localDateTimeStart":"{slot_start}","status":"LIMITED","vacancies":4,"capacity":40}}'

# 5. The demo supplier changes a product's title, then one day's vacancies, and notifies its
#    subscribers (PRODUCT_UPDATE, AVAILABILITY_UPDATE); the last call shows what it delivered.
#    Seyaha syncs that one product and pulls that day by itself: the sync log shows a
#    product_update and an availability_pull run, the catalog the new title and vacancies.
curl -s -X POST {base}/demo/octo/_simulate/product-change -H 'Content-Type: application/json' -d '{{"productId":"product_dhow_cruise"}}'
curl -s -X POST {base}/demo/octo/_simulate/availability-change -H 'Content-Type: application/json' \
  -d '{{"productId":"product_dhow_cruise","localDate":"{slot_date}","vacancies":2}}'
curl -s {base}/demo/octo/_simulate/recorded

# Health, sync history and the synced catalog
curl -s "$SEYAHA/$ID/health" -H "Authorization: Bearer $PARTNER_TOKEN"
curl -s "$SEYAHA/$ID/sync-log" -H "Authorization: Bearer $ADMIN_TOKEN"
curl -s "$SEYAHA/$ID/catalog" -H "Authorization: Bearer $ADMIN_TOKEN"
"#
    );
}
