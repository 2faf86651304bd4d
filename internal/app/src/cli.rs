//! The `upwatch` command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{SubsecRound, TimeDelta, Utc};
use clap::{ArgGroup, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use upwatch_config::{DatabaseUrl, Overrides, Settings};
use upwatch_core::CheckStatus;
use upwatch_store_sql::{PostgresStore, SqliteStore};
use uuid::Uuid;

use crate::{Application, Role};

/// A distributed website uptime monitor.
#[derive(Debug, Parser)]
#[command(
    name = "upwatch",
    version,
    about = "upwatch watches websites and tells you when they go down: run every role at once with `upwatch serve`, or one role per process on Kafka, PostgreSQL and Redis"
)]
pub struct Cli {
    /// A TOML configuration file (environment variables and flags override it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of a long-running process.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// HTTP address: the REST API for `serve` and `api`; `/healthz`, `/readyz` and `/metrics`
    /// only for the other roles (which listen only when this is given).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process: scheduler, workers, logger, cache, alerter and the API.
    Serve(ServeArgs),
    /// Distributed mode: emit due checks onto Kafka (one active scheduler; others stand by).
    Scheduler(ServeArgs),
    /// Distributed mode: perform the checks of this worker's region (UPWATCH_REGION) from Kafka and publish their results.
    Worker(ServeArgs),
    /// Distributed mode: store results from Kafka in PostgreSQL, in batches.
    Logger(ServeArgs),
    /// Distributed mode: write the latest status of each monitor to Redis.
    CacheUpdater(ServeArgs),
    /// Distributed mode: run the up/down state machine and deliver alerts to the notification channels (Discord, Slack, email and the others).
    Alerter(ServeArgs),
    /// Distributed mode: serve the REST API from PostgreSQL and Redis.
    Api(ServeArgs),
    /// Apply the PostgreSQL migrations (DATABASE_URL), then exit.
    Migrate,
    /// Check one URL now and print status, code, latency and error (exit 0 when up, 1 when down).
    Check {
        /// What to check, with the default settings (10 s timeout; for http(s) GET, expecting 200): `https://example.com/`, `tcp://db.example.com:5432`, `tls://mail.example.com:465`, `icmp://example.com`.
        url: String,
    },
    /// Write every monitor's settings, every maintenance window and every notifier (DATABASE_URL)
    /// as YAML, to stdout or to --output; notifier secrets are written as ${ENV_VAR}
    /// references, never in clear.
    Export {
        /// The file to write instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create or update monitors, maintenance windows and notifiers from a YAML file as
    /// `upwatch export` writes it, filling ${ENV_VAR} secrets from the environment (exit 2 when
    /// something is invalid or a variable is unset, and then nothing is written).
    Import {
        /// The YAML file to apply.
        file: PathBuf,
    },
    /// Print the OpenAPI 3.1 document of the REST API (as served at /api/v1/openapi.json);
    /// `upwatch openapi > docs/openapi.json` refreshes the committed copy.
    Openapi,
    /// Maintenance windows on a running server, through its REST API.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
}

/// What to do with maintenance windows.
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Start a one-off window now, for a deploy script: checks go on, but nothing alerts and
    /// the time counts neither up nor down. Prints the window's id and end; exits 1 when the
    /// API refuses (with its reason), 2 for bad arguments.
    Start(StartArgs),
}

/// The window `upwatch maintenance start` creates.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    ArgGroup::new("covers")
        .required(true)
        .multiple(true)
        .args(["monitors", "groups", "all"])
))]
pub struct StartArgs {
    /// A monitor the window covers, by id; repeat for more.
    #[arg(long = "monitor", value_name = "ID")]
    pub monitors: Vec<Uuid>,
    /// A monitor group the window covers; repeat for more.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Cover every monitor.
    #[arg(long)]
    pub all: bool,
    /// How long the window lasts from now: `30m`, `2h`, `1d`.
    #[arg(long = "for", value_name = "SPAN", value_parser = parse_for)]
    pub duration: TimeDelta,
    /// The window's title.
    #[arg(long, default_value = "Maintenance")]
    pub title: String,
    /// The server's base URL; the bearer token is UPWATCH_API_TOKEN, when set.
    #[arg(
        long,
        value_name = "URL",
        env = "UPWATCH_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api: String,
}

/// Reads `--for`: a positive span such as `30m`.
fn parse_for(text: &str) -> Result<TimeDelta, String> {
    upwatch_core::span::parse_span(text.trim())
        .filter(|span| *span > TimeDelta::zero())
        .ok_or_else(|| {
            format!("`{text}` is not a span such as `30m`, `2h` or `1d` (a whole number and one of s, m, h, d)")
        })
}

impl Command {
    /// The roles a long-running command runs, and its `--listen` flag.
    fn roles(&self) -> Option<(&'static [Role], &ServeArgs)> {
        Some(match self {
            Command::Serve(a) => (&Role::ALL, a),
            Command::Scheduler(a) => (&[Role::Scheduler], a),
            Command::Worker(a) => (&[Role::Worker], a),
            Command::Logger(a) => (&[Role::Logger], a),
            Command::CacheUpdater(a) => (&[Role::CacheUpdater], a),
            Command::Alerter(a) => (&[Role::Alerter], a),
            Command::Api(a) => (&[Role::Api], a),
            Command::Migrate
            | Command::Check { .. }
            | Command::Export { .. }
            | Command::Import { .. }
            | Command::Openapi
            | Command::Maintenance { .. } => return None,
        })
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    main_with(|_| {})
}

/// [`main`], calling `prepare` with the roles of a long-running command before anything runs
/// (the binary tunes its allocator per role).
pub fn main_with(prepare: impl FnOnce(&[Role])) -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Some((roles, _)) = cli.command.roles() {
        prepare(roles);
    }
    // Needs no configuration: the document is the same for every server.
    if matches!(cli.command, Command::Openapi) {
        print!("{}", upwatch_api::openapi::pretty());
        return ExitCode::SUCCESS;
    }
    // Talks to a running server: needs no configuration of its own.
    if let Command::Maintenance {
        command: MaintenanceCommand::Start(args),
    } = &cli.command
    {
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(maintenance_start(args)),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let overrides = Overrides {
        config_file: cli.config.clone(),
        listen: cli
            .command
            .roles()
            .and_then(|(_, args)| args.listen.clone()),
        log_format: cli.log_format.clone(),
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = match Settings::load(&overrides, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // Logs go to stdout, where `export` writes its document; its errors go to stderr instead.
    if !matches!(cli.command, Command::Export { .. }) {
        upwatch_telemetry::init_tracing(settings.log_format, &settings.log_filter);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((roles, args)) = cli.command.roles() {
        // The API listens by default; other roles only when asked to.
        let listen =
            (roles.contains(&Role::Api) || args.listen.is_some()).then_some(settings.listen);
        return runtime.block_on(serve(settings, roles, listen));
    }
    match cli.command {
        Command::Migrate => runtime.block_on(migrate(settings)),
        Command::Check { url } => runtime.block_on(check(settings, &url)),
        Command::Export { output } => runtime.block_on(export(settings, output.as_deref())),
        Command::Import { file } => runtime.block_on(import(settings, &file)),
        Command::Openapi | Command::Maintenance { .. } => ExitCode::SUCCESS,
        _ => unreachable!("long-running commands are handled above"),
    }
}

async fn migrate(settings: Settings) -> ExitCode {
    match &settings.database_url {
        DatabaseUrl::Postgres(url) => match PostgresStore::migrate(url).await {
            Ok(()) => {
                println!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "error: cannot migrate {}: {e}",
                    upwatch_core::redact_url(url)
                );
                ExitCode::FAILURE
            }
        },
        DatabaseUrl::Sqlite(url) => match SqliteStore::connect(url).await {
            // SQLite is migrated whenever it is opened; this only makes that explicit.
            Ok(_) => {
                println!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot migrate {url}: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn export(settings: Settings, output: Option<&Path>) -> ExitCode {
    let store = match crate::open_store(&settings.database_url).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let text = match crate::yaml::export(store.as_ref()).await {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read the monitors: {e}");
            return ExitCode::FAILURE;
        }
    };
    match output {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
    }
}

async fn import(settings: Settings, file: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let store = match crate::open_store(&settings.database_url).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let monitors = upwatch_service::MonitorService::offline(store.clone())
        .with_regions(settings.regions.clone());
    let maintenances = upwatch_service::MaintenanceService::offline(store);
    match crate::yaml::import_all(&monitors, &maintenances, &text).await {
        Ok(imported) => {
            println!("{}", imported.sites);
            if imported.maintenances.total() > 0 {
                println!("maintenance windows: {}", imported.maintenances);
            }
            if imported.notifiers.total() > 0 {
                println!("notifiers: {}", imported.notifiers);
            }
            ExitCode::SUCCESS
        }
        Err(e @ crate::yaml::ImportError::Store(_)) => {
            eprintln!("error: {}: {e}", file.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}: {e}; nothing was written", file.display());
            ExitCode::from(2)
        }
    }
}

/// `upwatch maintenance start`: creates a one-off window from now through the API.
async fn maintenance_start(args: &StartArgs) -> ExitCode {
    let now = Utc::now().trunc_subsecs(0);
    let mut body = serde_json::json!({
        "title": args.title,
        "start": now,
        "end": now + args.duration,
    });
    if !args.monitors.is_empty() {
        body["monitor_ids"] = serde_json::json!(args.monitors);
    }
    if !args.groups.is_empty() {
        body["groups"] = serde_json::json!(args.groups);
    }
    if args.all {
        body["all"] = true.into();
    }
    let base = args.api.trim_end_matches('/');
    let url = format!("{base}/api/v1/maintenances");
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: cannot build an HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut request = client.post(&url).json(&body);
    if let Some(token) = std::env::var("UPWATCH_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            eprintln!(
                "error: cannot reach the API at {base} (--api or UPWATCH_API_URL): {}",
                chain(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        let detail = answer["detail"]
            .as_str()
            .map_or_else(|| format!("the API answered {status}"), str::to_string);
        eprintln!("error: {detail}");
        return ExitCode::FAILURE;
    }
    match (answer["id"].as_str(), answer["end"].as_str()) {
        (Some(id), Some(end)) => {
            println!("id:  {id}");
            println!("end: {end}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("error: the API answered {status} without the window's id and end");
            ExitCode::FAILURE
        }
    }
}

/// An error and its sources, joined with `: ` (reqwest's own message says little).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

async fn serve(
    settings: Settings,
    roles: &[Role],
    listen: Option<std::net::SocketAddr>,
) -> ExitCode {
    let app = match Application::build_roles(settings, roles, listen).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot start");
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    match app.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!(signal = "SIGINT", "stop requested"),
        _ = term => tracing::info!(signal = "SIGTERM", "stop requested"),
    }
    shutdown.cancel();
}

async fn check(settings: Settings, url: &str) -> ExitCode {
    let checker = match crate::roles::build_checker(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match checker.check_url(url).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("url:     {}", result.url);
    println!("status:  {}", result.status.as_str());
    println!(
        "code:    {}",
        result
            .status_code
            .map_or("-".to_string(), |c| c.to_string())
    );
    println!("latency: {} ms", result.response_time_ms);
    println!(
        "error:   {}",
        result
            .error
            .as_ref()
            .map_or("-".to_string(), ToString::to_string)
    );
    if result.status == CheckStatus::Up {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
