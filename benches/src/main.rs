//! `upwatch-bench`: the end-to-end load benchmark of issue 5.
//!
//! It starts a loopback target server, runs upwatch (one `upwatch serve`, or one process per
//! role on nisshi, PostgreSQL and Redis), creates the monitors through
//! `POST /api/v1/sites/bulk`, warms up, measures a window (checks/s, schedule lag,
//! due-to-stored latency, CPU per check, memory), loads the live-status API, drains and checks
//! that every result produced was stored. It prints a table and writes it to `BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p upwatch-bench -- --monitors 100000 --interval 60s --mode embedded
//! ```
//!
//! With `--check-types http,tcp,tls,icmp,dns` (embedded mode), one invocation makes one
//! measured run per check type, in that order, each with a fresh `upwatch serve` and the same
//! monitors and interval against the type's loopback server, and writes one table of them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use upwatch_bench::load::apiload;
use upwatch_bench::load::fleet::{free_port, wait_port, Launcher, Proc};
use upwatch_bench::load::procfs::{self, Machine};
use upwatch_bench::load::prom::Scrape;
use upwatch_bench::load::report::{self, RunReport};
use upwatch_bench::load::sites::{CheckKind, Sites};

/// The end-to-end load benchmark of upwatch (embedded or distributed).
#[derive(Debug, Clone, Parser)]
#[command(name = "upwatch-bench")]
struct Opts {
    /// Embedded (`upwatch serve`, SQLite, in-process bus) or distributed (one process per role
    /// on nisshi, PostgreSQL and Redis).
    #[arg(long, value_enum, default_value = "embedded")]
    mode: Mode,
    /// Monitors to create.
    #[arg(long, default_value_t = 100_000)]
    monitors: usize,
    /// Check interval of every monitor (whole seconds: `60s`, `1m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// Time between creating the monitors and the measured window (default: the interval plus
    /// 5 s, so that every monitor is in its steady state).
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Length of the measured window.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Latency of the target server's answers.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    latency: Duration,
    /// Share of checks the target server answers with 503 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    /// Distributed mode: worker processes.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Distributed mode: regions (`UPWATCH_REGIONS` r1..rN, every monitor checked from each),
    /// with at least one worker process per region (worker i in region i mod N).
    #[arg(long, default_value_t = 1)]
    regions: usize,
    /// Distributed mode: Kafka partitions per topic.
    #[arg(long, default_value_t = 6)]
    partitions: u32,
    /// How long each live-status endpoint is loaded (0s skips the API load).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    api_duration: Duration,
    /// Keep-alive connections of the API load generator.
    #[arg(long, default_value_t = 16)]
    api_connections: usize,
    /// The upwatch binary (default: build it with `cargo build --release -p upwatch`).
    #[arg(long, value_name = "PATH")]
    upwatch_bin: Option<PathBuf>,
    /// Kafka brokers (default: $KAFKA_BROKERS, else start the Kafka-protocol broker `nisshi` on
    /// a free loopback port).
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// PostgreSQL to create the run's database in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// Redis.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Search for the highest sustainable rate (embedded): one run per rate of `--rates`,
    /// each with monitors = rate × interval, until a rate is not sustained.
    #[arg(long)]
    find_max: bool,
    /// The rates `--find-max` tries, checks/s.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "4000,6000,7000,8000,9000,10000"
    )]
    rates: Vec<u32>,
    /// Embedded mode: one measured run per check type, in this order (`http,tcp,tls,icmp,dns`),
    /// each with a fresh `upwatch serve`, `--monitors` monitors of that type at `--interval`
    /// against its loopback server (HTTP: the target server; TCP: a server that accepts and
    /// closes; TLS: a server with a certificate of a test CA, trusted through
    /// `UPWATCH_CHECK_CA_FILE`; ICMP: 127.0.0.1; DNS: a server with one A record), and no API
    /// load. One table of all of them.
    #[arg(long, value_enum, value_delimiter = ',')]
    check_types: Vec<CheckKind>,
    /// `UPWATCH_CHECK_MAX_PER_HOST` of the upwatch processes (default: upwatch's own, 16).
    /// Every site of the benchmark is on 127.0.0.1, so this bounds the checks in flight of a
    /// whole run.
    #[arg(long)]
    max_per_host: Option<u32>,
    /// Extra environment of every upwatch process, `KEY=VALUE` (repeatable), for trade-off runs
    /// such as `--env 'UPWATCH_KAFKA_PROPERTIES=linger.ms=50'` or
    /// `--env UPWATCH_LOGGER_BATCH_MS=50`.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    extra_env: Vec<(String, String)>,
    /// The section of BENCHMARKS.md the run's table goes into, instead of the mode's own (so
    /// that trade-off runs do not replace the standard one).
    #[arg(long)]
    section: Option<String>,
    /// Print the table but leave BENCHMARKS.md alone.
    #[arg(long)]
    no_write: bool,
    /// The file the table goes into.
    #[arg(long, value_name = "PATH")]
    benchmarks_file: Option<PathBuf>,
    /// Also print the report as one JSON line (for tests).
    #[arg(long)]
    json: bool,
    /// Keep the logs, the database and the Redis keys of the run.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Embedded,
    Distributed,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Embedded => "embedded",
            Mode::Distributed => "distributed",
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 10s or 1m"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> std::process::ExitCode {
    // `upwatch-bench limit-server ...`: the bare server the live-status reads are compared
    // with (`load::limit`), run as a process of its own.
    if std::env::args().nth(1).as_deref() == Some("limit-server") {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        return match runtime.block_on(upwatch_bench::load::limit::serve(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("limit server: {error:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let opts = Opts::parse();
    upwatch_telemetry::init_tracing(
        upwatch_telemetry::LogFormat::Text,
        &std::env::var("UPWATCH_BENCH_LOG").unwrap_or_else(|_| "info".into()),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(bench(opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is inside the workspace")
        .to_path_buf()
}

/// The upwatch binary: the one given, or a fresh release build.
fn upwatch_binary(opts: &Opts) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &opts.upwatch_bin {
        anyhow::ensure!(bin.is_file(), "no upwatch binary at {}", bin.display());
        return Ok(bin.clone());
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    tracing::info!("building upwatch: cargo build --release -p upwatch");
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "-p", "upwatch"])
        .current_dir(&root)
        .status()
        .context("cannot run cargo to build upwatch (or pass --upwatch-bin PATH)")?;
    anyhow::ensure!(status.success(), "cargo build --release -p upwatch failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("upwatch");
    anyhow::ensure!(bin.is_file(), "no upwatch binary at {}", bin.display());
    Ok(bin)
}

async fn bench(opts: Opts) -> anyhow::Result<()> {
    anyhow::ensure!(
        opts.interval.subsec_nanos() == 0 && opts.interval.as_secs() >= 1,
        "--interval must be whole seconds (monitors take 1 to 86400 s)"
    );
    anyhow::ensure!(opts.monitors > 0, "--monitors must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&opts.failure_rate),
        "--failure-rate is a share from 0 to 1"
    );
    let bin = upwatch_binary(&opts)?;
    let machine = Machine::describe();
    let command = format!(
        "cargo run --release -p upwatch-bench -- {}",
        std::env::args()
            .skip(1)
            .map(|a| shell_word(&a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (key, heading, body, reports) = if opts.find_max {
        anyhow::ensure!(
            opts.mode == Mode::Embedded,
            "--find-max searches the embedded mode"
        );
        let interval = opts.interval.as_secs() as u32;
        let mut runs = Vec::new();
        for rate in &opts.rates {
            let monitors = *rate as usize * interval as usize;
            tracing::info!(rate, monitors, interval, "trying a rate");
            let r = run(&opts, &bin, CheckKind::Http, monitors, interval, false).await?;
            println!("{}", report::max_table(std::slice::from_ref(&r)));
            let sustained = r.sustained;
            runs.push(r);
            if !sustained {
                break;
            }
        }
        let best = runs
            .iter()
            .filter(|r| r.sustained)
            .map(|r| r.checks_per_second)
            .fold(0.0, f64::max);
        let limits: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.fresh_connection_limit)
            .collect();
        let limit_words =
            match limits.iter().copied().reduce(f64::max) {
                Some(limit) => {
                    format!(
                " The machine's fresh-connection limit against the same target server (wrk, \
                 64 connections, `Connection: close`, after each run; highest of {} runs): \
                 **{limit:.0} req/s**, so upwatch reaches **{:.0}%** of it (target ≥ 40%: {}).",
                limits.len(),
                100.0 * best / limit,
                if best >= 0.4 * limit { "met" } else { "**missed**" }
            )
                }
                None => " No fresh-connection limit: wrk is not installed.".to_string(),
            };
        let body = format!(
            "{}\nHighest sustained: **{best:.0} checks/s**.{limit_words} A rate counts as sustained when the \
             window achieves at least 97% of the expected checks/s, p99 schedule lag stays \
             under 1 s and does not grow (the p99 of the last 10 s of the window is at most \
             twice that of the first 10 s, or under 250 ms), no job is skipped (stale, \
             overlapping or missed slot), and every result produced is stored.\n",
            report::max_table(&runs)
        );
        (
            "embedded-max",
            "Embedded mode: highest sustainable rate",
            body,
            runs,
        )
    } else if !opts.check_types.is_empty() {
        anyhow::ensure!(
            opts.mode == Mode::Embedded,
            "--check-types runs the embedded mode"
        );
        let interval = opts.interval.as_secs() as u32;
        let mut runs = Vec::new();
        for kind in &opts.check_types {
            tracing::info!(
                check_type = kind.name(),
                monitors = opts.monitors,
                interval,
                "measuring a check type"
            );
            let r = run(&opts, &bin, *kind, opts.monitors, interval, false).await?;
            println!("{}", report::types_table(std::slice::from_ref(&r)));
            runs.push(r);
        }
        let body = format!(
            "{}\n{}\n{}\n",
            types_intro(&opts, interval),
            report::types_table(&runs),
            "A type makes every due check when its window achieves at least 97% of the \
             expected checks/s, p99 schedule lag stays under 1 s and does not grow (the p99 of \
             the last 10 s of the window is at most twice that of the first 10 s, or under \
             250 ms), no job is skipped (stale, overlapping or missed slot), and every result \
             produced is stored. CPU per check is the `upwatch serve` process's CPU time \
             (user and system, from `/proc`) over the window's checks; the loopback servers \
             run in the bench process, listed apart."
        );
        ("embedded-types", "Check types (embedded)", body, runs)
    } else {
        let r = run(
            &opts,
            &bin,
            CheckKind::Http,
            opts.monitors,
            opts.interval.as_secs() as u32,
            true,
        )
        .await?;
        let body = report::run_table(&r);
        let (key, heading) = match opts.mode {
            Mode::Embedded => (
                opts.mode.name(),
                "Embedded mode (`upwatch serve`: SQLite, in-process bus)",
            ),
            Mode::Distributed if opts.regions > 1 => (
                "distributed-regions",
                "Distributed mode with regions (one worker process per region)",
            ),
            Mode::Distributed => (
                opts.mode.name(),
                "Distributed mode (one process per role: nisshi, PostgreSQL, Redis)",
            ),
        };
        (key, heading, body, vec![r])
    };
    let custom_heading;
    let (key, heading) = match &opts.section {
        Some(section) => {
            custom_heading = format!("{heading}: {section}");
            (section.as_str(), custom_heading.as_str())
        }
        None => (key, heading),
    };
    println!("\n{}", machine.line());
    println!("{command}\n");
    println!("{body}");
    if opts.json {
        println!("{}", serde_json::to_string(&reports)?);
    }
    if !opts.no_write {
        let path = opts
            .benchmarks_file
            .clone()
            .unwrap_or_else(|| workspace_root().join("BENCHMARKS.md"));
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        let section = report::section(key, heading, &machine, &command, &body);
        std::fs::write(&path, report::update(&doc, key, &section))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("written to {}", path.display());
    }
    Ok(())
}

/// Requests per second that `wrk` (one thread, 64 connections, `Connection: close`) gets from
/// `url` over `duration`; `None` when wrk is not installed or says nothing readable.
async fn fresh_connection_limit(url: &str, duration: Duration) -> Option<f64> {
    let url = url.to_string();
    let seconds = format!("{}s", duration.as_secs().max(1));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("wrk")
            .args([
                "-t1",
                "-c64",
                "-d",
                &seconds,
                "-H",
                "Connection: close",
                &url,
            ])
            .output()
    })
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok());
    if rate.is_none() {
        tracing::warn!("no fresh-connection limit: wrk is not installed or said nothing readable");
    }
    rate
}

/// `arg` as a shell reads it back: quoted when it holds anything but plain characters.
fn shell_word(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._/=:,@%+-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// `KEY=VALUE` of `--env`.
fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// The name of region `i` of a run with `--regions`: r1, r2, ...
fn region_name(i: usize) -> String {
    format!("r{}", i + 1)
}

/// How the runs of `--check-types` were made, before their table.
fn types_intro(opts: &Opts, interval: u32) -> String {
    let warmup = opts
        .warmup
        .unwrap_or(Duration::from_secs(u64::from(interval) + 5));
    let per_host = match opts.max_per_host {
        Some(0) => "`UPWATCH_CHECK_MAX_PER_HOST=0` (no per-host limit, set with \
                    `--max-per-host`) for every type: every monitor here is on 127.0.0.1"
            .to_string(),
        Some(n) => format!(
            "`UPWATCH_CHECK_MAX_PER_HOST={n}` (set with `--max-per-host`) for every type: \
             every monitor here is on 127.0.0.1, where the default limit of 16 checks in \
             flight per host would bound the whole run"
        ),
        None => "`UPWATCH_CHECK_MAX_PER_HOST` left at upwatch's default (16 checks in flight \
                 per host; every monitor here is on 127.0.0.1)"
            .to_string(),
    };
    format!(
        "One `upwatch serve` per check type, one after another in the same run on the same \
         machine: each a fresh process and SQLite database with {} monitors of that type, \
         created through `POST /api/v1/sites/bulk` and checked every {interval} s ({:.0} \
         checks/s expected), {} s of warm-up, then a {} s window; no API load. {per_host}. \
         The reference is the HTTP run of the same invocation; \"same order as HTTP\" means at \
         most ten times its figure.\n",
        opts.monitors,
        opts.monitors as f64 / f64::from(interval),
        warmup.as_secs(),
        opts.duration.as_secs(),
    )
}

/// What is read at one moment of the window.
struct Snapshot {
    at: Instant,
    metrics: Scrape,
    cpu: Vec<f64>,
    bench_cpu: f64,
    others: HashMap<String, f64>,
    machine: (f64, f64),
}

const OTHERS: [&str; 3] = ["postgres", "redis-server", "nisshi"];

async fn snapshot(procs: &[Proc], client: &reqwest::Client) -> anyhow::Result<Snapshot> {
    let mut scrapes = Vec::new();
    for p in procs {
        scrapes.push(
            p.scrape(client)
                .await
                .with_context(|| format!("cannot read the metrics of {}", p.name))?,
        );
    }
    Ok(Snapshot {
        at: Instant::now(),
        metrics: Scrape::merge(&scrapes),
        cpu: procs
            .iter()
            .map(|p| procfs::cpu_seconds(p.pid()).unwrap_or(0.0))
            .collect(),
        bench_cpu: procfs::own_cpu_seconds(),
        others: procfs::cpu_by_command(&OTHERS),
        machine: procfs::machine_cpu(),
    })
}

fn lag_p99(a: &Snapshot, b: &Snapshot) -> Option<f64> {
    let h = "upwatch_schedule_lag_seconds";
    b.metrics
        .histogram(h)
        .since(&a.metrics.histogram(h))
        .quantile(0.99)
}

fn others_percent(a: &Snapshot, b: &Snapshot) -> Vec<(String, f64)> {
    let secs = (b.at - a.at).as_secs_f64();
    let mut out: Vec<(String, f64)> = OTHERS
        .iter()
        .filter_map(|name| {
            let pct = 100.0
                * (b.others.get(*name).unwrap_or(&0.0) - a.others.get(*name).unwrap_or(&0.0))
                / secs;
            (pct >= 0.5).then(|| (name.to_string(), pct))
        })
        .collect();
    out.sort_by(|x, y| y.1.total_cmp(&x.1));
    out
}

/// The services of the distributed mode, created for one run and removed after it.
struct Distributed {
    admin_url: String,
    database: String,
    database_url: String,
    redis_url: String,
    redis_prefix: String,
    brokers: String,
    /// The broker this run started, if it started one.
    nisshi: Option<Child>,
}

impl Distributed {
    async fn start(opts: &Opts, tag: &str, dir: &Path) -> anyhow::Result<Distributed> {
        use sqlx::Connection;
        let database = format!("upwatch_bench_{tag}");
        let mut admin = sqlx::PgConnection::connect(&opts.database_url)
            .await
            .context("cannot reach PostgreSQL (--database-url)")?;
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await?;
        let database_url = match opts.database_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{database}"),
            None => bail!("--database-url must end with a database name"),
        };
        let mut nisshi = None;
        let brokers = match opts
            .kafka_brokers
            .clone()
            .or_else(|| std::env::var("KAFKA_BROKERS").ok())
        {
            Some(b) => b,
            None => {
                let port = free_port()?;
                let log = std::fs::File::create(dir.join("nisshi.log"))?;
                let url = format!("tcp://127.0.0.1:{port}");
                let child = std::process::Command::new("nisshi")
                    .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
                    .args(["--storage-engine", "memory://nisshi/"])
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("cannot start the Kafka-protocol broker `nisshi` (install it with `cargo install nisshi --locked --version 0.8.1 --no-default-features --features dynostore --ignore-rust-version`, as `bash deploy/test.sh` does, or pass --kafka-brokers)")?;
                nisshi = Some(child);
                let addr: SocketAddr = ([127, 0, 0, 1], port).into();
                wait_port(addr, Duration::from_secs(60)).await?;
                tracing::info!(%addr, "nisshi started");
                addr.to_string()
            }
        };
        Ok(Distributed {
            admin_url: opts.database_url.clone(),
            database,
            database_url,
            redis_url: opts.redis_url.clone(),
            redis_prefix: format!("upwatch-bench:{tag}:"),
            brokers,
            nisshi,
        })
    }

    async fn cleanup(mut self, keep: bool) {
        use sqlx::Connection;
        if let Some(mut child) = self.nisshi.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if keep {
            return;
        }
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .execute(&mut admin)
            .await;
        }
        if let Ok(client) = redis::Client::open(self.redis_url.as_str()) {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.redis_prefix))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                }
            }
        }
    }
}

async fn count_rows(database_url: &str) -> anyhow::Result<u64> {
    use sqlx::Connection;
    let n: i64 = if database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await?;
        sqlx::query_scalar("SELECT count(*) FROM results")
            .fetch_one(&mut conn)
            .await?
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url).await?;
        sqlx::query_scalar("SELECT count(*) FROM results")
            .fetch_one(&mut conn)
            .await?
    };
    Ok(n as u64)
}

/// One run: start, create, warm up, measure, load the API, drain, reconcile.
async fn run(
    opts: &Opts,
    bin: &Path,
    kind: CheckKind,
    monitors: usize,
    interval: u32,
    with_api: bool,
) -> anyhow::Result<RunReport> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let dir = std::env::temp_dir().join(format!("upwatch-bench-{tag}"));
    std::fs::create_dir_all(&dir)?;
    tracing::info!(dir = %dir.display(), "logs of this run");
    let sites = Sites::start(kind, opts.latency, opts.failure_rate, &dir).await?;
    let distributed = match opts.mode {
        Mode::Embedded => None,
        Mode::Distributed => Some(Distributed::start(opts, &tag, &dir).await?),
    };
    let result = measure(
        opts,
        bin,
        monitors,
        interval,
        with_api,
        &tag,
        &dir,
        &sites,
        distributed.as_ref(),
    )
    .await;
    if let Some(d) = distributed {
        d.cleanup(opts.keep).await;
    }
    if result.is_ok() && !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("logs kept in {}", dir.display());
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    opts: &Opts,
    bin: &Path,
    monitors: usize,
    interval: u32,
    with_api: bool,
    tag: &str,
    dir: &Path,
    sites: &Sites,
    distributed: Option<&Distributed>,
) -> anyhow::Result<RunReport> {
    let start_within = Duration::from_secs(120);
    let mut env: Vec<(String, String)> = vec![("UPWATCH_LOG".into(), "info".into())];
    let database_url = match distributed {
        None => format!("sqlite://{}/upwatch.db", dir.display()),
        Some(d) => d.database_url.clone(),
    };
    env.push(("DATABASE_URL".into(), database_url.clone()));
    env.extend(sites.env());
    if let Some(n) = opts.max_per_host {
        env.push(("UPWATCH_CHECK_MAX_PER_HOST".into(), n.to_string()));
    }
    if let Some(d) = distributed {
        env.extend([
            ("KAFKA_BROKERS".to_string(), d.brokers.clone()),
            (
                "UPWATCH_KAFKA_JOBS_TOPIC".into(),
                format!("bench.{tag}.jobs"),
            ),
            (
                "UPWATCH_KAFKA_RESULTS_TOPIC".into(),
                format!("bench.{tag}.results"),
            ),
            (
                "UPWATCH_KAFKA_PARTITIONS".into(),
                opts.partitions.to_string(),
            ),
            ("UPWATCH_KAFKA_GROUP_PREFIX".into(), format!("bench-{tag}-")),
            ("REDIS_URL".into(), d.redis_url.clone()),
            ("UPWATCH_REDIS_PREFIX".into(), d.redis_prefix.clone()),
        ]);
        if opts.regions > 1 {
            let names: Vec<String> = (0..opts.regions).map(region_name).collect();
            env.push(("UPWATCH_REGIONS".into(), names.join(",")));
        }
    }
    env.extend(opts.extra_env.iter().cloned());
    let launcher = Launcher {
        bin: bin.to_path_buf(),
        env,
        dir: dir.to_path_buf(),
    };

    // Start the processes: consumers before the scheduler, as a deployment would.
    let mut procs: Vec<Proc> = Vec::new();
    let mut scheduler_rss_empty = None;
    let api_index;
    let scheduler_index;
    match distributed {
        None => {
            let mut serve = launcher.spawn("serve", "serve")?;
            serve.wait_running(start_within).await?;
            procs.push(serve);
            api_index = 0;
            scheduler_index = None;
        }
        Some(_) => {
            launcher.run(&["migrate"])?;
            let mut roles: Vec<(String, String)> = vec![
                ("logger".into(), "logger".into()),
                ("cache-updater".into(), "cache-updater".into()),
                ("alerter".into(), "alerter".into()),
            ];
            let regions = opts.regions.max(1);
            for i in 1..=opts.workers.max(regions) {
                roles.push(("worker".into(), format!("worker-{i}")));
            }
            for (role, name) in &roles {
                let region = name
                    .strip_prefix("worker-")
                    .and_then(|i| i.parse::<usize>().ok())
                    .filter(|_| regions > 1)
                    .map(|i| region_name((i - 1) % regions));
                procs.push(match region {
                    Some(region) => {
                        launcher.spawn_with(role, name, &[("UPWATCH_REGION", region.as_str())])?
                    }
                    None => launcher.spawn(role, name)?,
                });
            }
            for p in &mut procs {
                p.wait_running(start_within).await?;
            }
            let mut scheduler = launcher.spawn("scheduler", "scheduler")?;
            scheduler.wait_running(start_within).await?;
            scheduler
                .wait_logged("this scheduler is the leader", start_within)
                .await?;
            scheduler_rss_empty = procfs::status_bytes(scheduler.pid(), "VmRSS");
            procs.push(scheduler);
            scheduler_index = Some(procs.len() - 1);
            let mut api = launcher.spawn("api", "api")?;
            api.wait_running(start_within).await?;
            procs.push(api);
            api_index = procs.len() - 1;
        }
    }
    let api_addr = procs[api_index].listen.context("the API address")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;

    // Create the monitors through the bulk API, as a user would.
    let created_at = Instant::now();
    let mut first_id = None;
    let mut created = 0;
    while created < monitors {
        // At most 10,000 per request, and under the default body limit of 1 MiB
        // (UPWATCH_API_MAX_BODY_BYTES), which 10,000 items of this size exceed.
        let mut n = (monitors - created).min(10_000);
        let body = loop {
            let items: Vec<serde_json::Value> = (created..created + n)
                .map(|i| sites.monitor(i, interval))
                .collect();
            let body = serde_json::to_vec(&items)?;
            if body.len() <= 1_000_000 || n == 1 {
                break body;
            }
            n /= 2;
        };
        let response = client
            .post(format!("http://{api_addr}/api/v1/sites/bulk"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(status == 201, "bulk creation answered {status}: {body}");
        if first_id.is_none() {
            first_id = body["items"][0]["id"].as_str().map(str::to_string);
        }
        created += n;
        tracing::info!(created, monitors, "monitors created");
    }
    let create_seconds = created_at.elapsed().as_secs_f64();

    // Wait until the scheduler has every monitor, then warm up for a whole interval.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = snapshot(&procs, &client).await?;
        if s.metrics.sum("upwatch_monitors_scheduled") as usize >= monitors {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the scheduler did not load every monitor within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let warmup = opts
        .warmup
        .unwrap_or(Duration::from_secs(u64::from(interval) + 5));
    tracing::info!(seconds = warmup.as_secs(), "warming up");
    let warm_until = Instant::now() + warmup;
    while Instant::now() < warm_until {
        for p in &mut procs {
            p.ensure_alive()?;
        }
        tokio::time::sleep(Duration::from_millis(500).min(warm_until - Instant::now())).await;
    }

    // The measured window, in slices of 10 s.
    tracing::info!(seconds = opts.duration.as_secs(), "measuring");
    let mut snaps = vec![snapshot(&procs, &client).await?];
    let served_before = sites.served();
    let window_end = snaps[0].at + opts.duration;
    while Instant::now() < window_end {
        let next = (snaps.last().expect("a snapshot").at + Duration::from_secs(10)).min(window_end);
        tokio::time::sleep_until(next.into()).await;
        snaps.push(snapshot(&procs, &client).await?);
        for p in &mut procs {
            p.ensure_alive()?;
        }
    }
    let served_after = sites.served();
    let (a, b) = (&snaps[0], snaps.last().expect("a snapshot"));
    let secs = (b.at - a.at).as_secs_f64();
    let delta = |name: &str| (b.metrics.sum(name) - a.metrics.sum(name)).max(0.0);
    let produced = delta("upwatch_checks_total");
    let lag = b
        .metrics
        .histogram("upwatch_schedule_lag_seconds")
        .since(&a.metrics.histogram("upwatch_schedule_lag_seconds"));
    let stored_delay = b
        .metrics
        .histogram("upwatch_result_store_delay_seconds")
        .since(&a.metrics.histogram("upwatch_result_store_delay_seconds"));
    let cpu: Vec<f64> = a.cpu.iter().zip(&b.cpu).map(|(x, y)| y - x).collect();
    let cpu_total: f64 = cpu.iter().sum();
    let mut r = RunReport {
        mode: opts.mode.name().into(),
        check_type: sites.kind().name().into(),
        max_per_host: opts.max_per_host,
        monitors,
        interval_seconds: interval,
        expected_checks_per_second: (monitors * opts.regions.max(1)) as f64 / f64::from(interval),
        create_seconds,
        window_seconds: secs,
        checks_per_second: produced / secs,
        lag_p50_s: lag.quantile(0.5),
        lag_p99_s: lag.quantile(0.99),
        lag_max_bound_s: lag.max_bound(),
        lag_p99_first_slice_s: lag_p99(&snaps[0], &snaps[1.min(snaps.len() - 1)]),
        lag_p99_last_slice_s: lag_p99(&snaps[snaps.len().saturating_sub(2)], b),
        store_delay_p50_s: stored_delay.quantile(0.5),
        store_delay_p99_s: stored_delay.quantile(0.99),
        window_produced: produced as u64,
        window_stored: delta("upwatch_results_stored_total") as u64,
        window_up: (b.metrics.sum_where("upwatch_checks_total", "outcome", "up")
            - a.metrics.sum_where("upwatch_checks_total", "outcome", "up"))
        .max(0.0) as u64,
        window_served: served_before
            .zip(served_after)
            .map(|(x, y)| y.saturating_sub(x)),
        window_skipped: (delta("upwatch_jobs_stale_total")
            + delta("upwatch_jobs_overlapping_total")
            + delta("upwatch_schedule_missed_total")) as u64,
        cpu_ms_per_check: if produced > 0.0 {
            1000.0 * cpu_total / produced
        } else {
            0.0
        },
        cpu_percent: procs
            .iter()
            .zip(&cpu)
            .map(|(p, c)| (p.name.clone(), 100.0 * c / secs))
            .collect(),
        bench_cpu_percent: 100.0 * (b.bench_cpu - a.bench_cpu) / secs,
        others_cpu_percent: others_percent(a, b),
        machine_busy_percent: 100.0 * (b.machine.0 - a.machine.0)
            / (b.machine.1 - a.machine.1).max(1e-9),
        ..RunReport::default()
    };
    // Whatever else ran on the machine (other builds, say), in % of one core.
    let known = cpu_total
        + (b.bench_cpu - a.bench_cpu)
        + r.others_cpu_percent
            .iter()
            .map(|(_, p)| p * secs / 100.0)
            .sum::<f64>();
    let rest = 100.0 * ((b.machine.0 - a.machine.0) - known).max(0.0) / secs;
    if rest >= 0.5 {
        r.others_cpu_percent
            .push(("everything else on the machine".into(), rest));
    }
    if let (Some(i), Some(empty)) = (scheduler_index, scheduler_rss_empty) {
        if let Some(full) = procfs::status_bytes(procs[i].pid(), "VmRSS") {
            r.scheduler_bytes_per_monitor =
                Some((full as f64 - empty as f64).max(0.0) / monitors as f64);
        }
    }

    // The live-status API under a keep-alive load generator, while checks go on.
    if with_api && !opts.api_duration.is_zero() {
        let id = first_id
            .clone()
            .context("no monitor id from the bulk answer")?;
        for path in [
            format!("/api/v1/sites/{id}/status"),
            "/api/v1/status?limit=100".to_string(),
        ] {
            tracing::info!(path, "loading the live-status API");
            let before = snapshot(&procs, &client).await?;
            let load =
                apiload::run(api_addr, &path, opts.api_connections, opts.api_duration).await?;
            let after = snapshot(&procs, &client).await?;
            let secs = (after.at - before.at).as_secs_f64();
            if r.api_cpu_percent.is_empty() {
                let mut shares = vec![(
                    procs[api_index].name.clone(),
                    100.0 * (after.cpu[api_index] - before.cpu[api_index]) / secs,
                )];
                shares.push((
                    "bench (load generator, target server)".into(),
                    100.0 * (after.bench_cpu - before.bench_cpu) / secs,
                ));
                shares.extend(others_percent(&before, &after));
                r.api_cpu_percent = shares;
            }
            r.api.push(load);
        }
        // The limits, in the same run with the same generator: a bare axum server answering
        // the same JSON from memory, and (distributed) with one Redis HGET per request.
        let path = format!("/api/v1/sites/{id}/status");
        let body = client
            .get(format!("http://{api_addr}{path}"))
            .send()
            .await?
            .bytes()
            .await?;
        let redis = distributed.map(|d| (d.redis_url.as_str(), format!("{}limit", d.redis_prefix)));
        let limit = upwatch_bench::load::limit::start(
            &body,
            redis.as_ref().map(|(url, key)| (*url, key.as_str())),
            dir,
        )
        .await?;
        let mut routes = vec!["/status"];
        if distributed.is_some() {
            routes.push("/redis");
        }
        for route in routes {
            tracing::info!(route, "loading the limit server");
            let mut load =
                apiload::run(limit.addr, route, opts.api_connections, opts.api_duration).await?;
            load.path = format!("limit {route}");
            r.api_limits.push(load);
        }
        drop(limit);
    }

    // Peak memory, then the drain: stop producing, let every result be stored.
    r.peak_rss = procs
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                procfs::status_bytes(p.pid(), "VmHWM").unwrap_or(0),
            )
        })
        .collect();
    let drain = Duration::from_secs(180);
    match scheduler_index {
        None => {
            procs[0].terminate();
            procs[0].wait_exit(drain).await?;
        }
        Some(i) => {
            procs[i].terminate();
            procs[i].wait_exit(drain).await?;
            // Workers finish the jobs already in Kafka; wait until the logger has stored
            // everything they produced and production has stopped.
            let others: Vec<usize> = (0..procs.len()).filter(|j| *j != i).collect();
            let deadline = Instant::now() + drain;
            let mut last = (-1.0, Instant::now());
            loop {
                let mut scrapes = Vec::new();
                for j in &others {
                    scrapes.push(procs[*j].scrape(&client).await?);
                }
                let m = Scrape::merge(&scrapes);
                let produced = m.sum("upwatch_checks_total");
                let stored = m.sum("upwatch_results_stored_total");
                if produced != last.0 {
                    last = (produced, Instant::now());
                }
                if produced == stored && last.1.elapsed() > Duration::from_secs(3) {
                    break;
                }
                if Instant::now() > deadline {
                    tracing::warn!(
                        produced,
                        stored,
                        "results still missing at the drain deadline"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for name in ["worker", "logger"] {
                for p in procs.iter().filter(|p| p.name.starts_with(name)) {
                    p.terminate();
                }
                for p in procs.iter_mut().filter(|p| p.name.starts_with(name)) {
                    p.wait_exit(drain).await?;
                }
            }
            for p in &procs {
                p.terminate();
            }
            for p in &mut procs {
                p.wait_exit(drain).await?;
            }
        }
    }
    for p in &procs {
        for line in p.log_lines() {
            if let Some(socket) = line["icmp_socket"].as_str() {
                r.icmp_socket.get_or_insert_with(|| socket.to_string());
            }
            match line["message"].as_str() {
                Some("worker pool stopped") => {
                    r.total_produced += line["results_published"].as_u64().unwrap_or(0)
                }
                Some("logger stopped") => {
                    r.total_stored += line["results_stored"].as_u64().unwrap_or(0)
                }
                _ => {}
            }
        }
    }
    r.rows_in_database = count_rows(&database_url).await?;

    // The machine's fresh-connection limit against the same target server, now that upwatch
    // has stopped: wrk with `Connection: close`, as every check opens a new connection.
    if let Some(url) = sites.http_url(0) {
        r.fresh_connection_limit = fresh_connection_limit(&url, Duration::from_secs(10)).await;
    }

    let mut reasons = Vec::new();
    if r.checks_per_second < 0.97 * r.expected_checks_per_second {
        reasons.push("below 97% of the expected rate".to_string());
    }
    if !r.lag_p99_s.is_some_and(|p| p < 1.0) {
        reasons.push("p99 lag ≥ 1 s".into());
    }
    if r.lag_growing() {
        reasons.push("lag growing".into());
    }
    if r.window_skipped > 0 {
        reasons.push(format!("{} jobs skipped", r.window_skipped));
    }
    if !r.nothing_lost() {
        reasons.push("results lost".into());
    }
    r.sustained = reasons.is_empty();
    r.verdict = reasons.join(", ");
    Ok(r)
}
