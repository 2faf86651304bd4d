//! The `upwatch` command line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use upwatch_checker::{Checker, CheckerConfig};
use upwatch_config::{Overrides, Settings};
use upwatch_core::CheckStatus;

use crate::Application;

/// A distributed website uptime monitor.
#[derive(Debug, Parser)]
#[command(name = "upwatch", version, about)]
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

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process: scheduler, workers, logger, cache, alerter and the API.
    Serve {
        /// Address of the REST API.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Check one URL now and print status, code, latency and error (exit 0 when up, 1 when down).
    Check {
        /// The http(s) URL to check with the default settings (GET, expects 200, 10 s timeout).
        url: String,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let overrides = Overrides {
        config_file: cli.config.clone(),
        listen: match &cli.command {
            Command::Serve { listen } => listen.clone(),
            Command::Check { .. } => None,
        },
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
    upwatch_telemetry::init_tracing(settings.log_format, &settings.log_filter);
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
    match cli.command {
        Command::Serve { .. } => runtime.block_on(serve(settings)),
        Command::Check { url } => runtime.block_on(check(settings, &url)),
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
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
    let checker = match Checker::new(CheckerConfig {
        max_body_bytes: settings.check_max_body_bytes,
        max_redirects: settings.check_max_redirects,
        ..CheckerConfig::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build the HTTP client: {e}");
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
