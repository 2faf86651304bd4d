//! Running upwatch: [`Application`] wires the stores, the bus, the roles and the API into one
//! process, and [`cli`] is the command line of the `upwatch` binary.
//!
//! A process runs a set of [`Role`]s: all of them (`upwatch serve`) or one (`upwatch worker`,
//! ...). The backends follow the configuration: SQLite or PostgreSQL (`DATABASE_URL`), the
//! in-process bus or Kafka (`KAFKA_BROKERS`), the in-memory cache or Redis (`REDIS_URL`).
//!
//! Start-up and shutdown order are kept here only: storage first, then configured webhooks
//! and seeded sites, then the cache is warmed; consumers subscribe before the scheduler
//! publishes; shutdown runs the pipeline dry from the scheduler to the alert dispatcher.

pub mod channels;
pub mod cli;
mod ops;
pub mod roles;
pub mod yaml;

use std::net::SocketAddr;
use std::sync::Arc;

use upwatch_api::fast::FastReads;

use anyhow::{bail, Context};
use roles::{AdvisoryLock, AlwaysLeader, Leadership, Wiring, START_ORDER};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use upwatch_api::ApiState;
use upwatch_bus::{Bus, InProcessBus};
#[cfg(feature = "distributed")]
use upwatch_bus_kafka::{KafkaBus, KafkaConfig};
use upwatch_cache::{MemoryCache, StatusCache};
#[cfg(feature = "distributed")]
use upwatch_cache_redis::RedisCache;
use upwatch_config::{DatabaseUrl, Settings};
use upwatch_core::{redact_url, Webhook, WebhookSource};
use upwatch_service::{MaintenanceService, MonitorService, PushService, Stats};
use upwatch_store::{Store, StoreError};
use upwatch_store_sql::{PostgresStore, SqliteStore};
use upwatch_telemetry::Metrics;

pub use roles::{DISPATCHER_LOCK_KEY, PRUNER_LOCK_KEY, SCHEDULER_LOCK_KEY};

/// A part of the pipeline that a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Emits due checks (one active at a time; others stand by).
    Scheduler,
    /// Performs checks.
    Worker,
    /// Stores results.
    Logger,
    /// Keeps live status in the cache.
    CacheUpdater,
    /// Runs the state machine and delivers alerts.
    Alerter,
    /// Serves the REST API.
    Api,
}

impl Role {
    /// Every role: what `upwatch serve` runs.
    pub const ALL: [Role; 6] = [
        Role::Scheduler,
        Role::Worker,
        Role::Logger,
        Role::CacheUpdater,
        Role::Alerter,
        Role::Api,
    ];

    /// The role's subcommand name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Scheduler => "scheduler",
            Role::Worker => "worker",
            Role::Logger => "logger",
            Role::CacheUpdater => "cache-updater",
            Role::Alerter => "alerter",
            Role::Api => "api",
        }
    }

    fn needs_store(self) -> bool {
        matches!(
            self,
            Role::Scheduler | Role::Logger | Role::CacheUpdater | Role::Alerter | Role::Api
        )
    }

    /// Whether the role cannot run without a bus (the API can: only pushes need one).
    fn needs_bus(self) -> bool {
        !matches!(self, Role::Api)
    }

    fn needs_cache(self) -> bool {
        // The scheduler's watchdog reads check times from the cache and marks stale monitors.
        matches!(self, Role::Scheduler | Role::CacheUpdater | Role::Api)
    }
}

/// One upwatch process: some roles, their backends, and an HTTP listener.
pub struct Application {
    roles: Vec<Role>,
    listener: Option<TcpListener>,
    settings: Settings,
    store: Option<Arc<dyn Store>>,
    cache: Option<Arc<dyn StatusCache>>,
    bus: Option<Arc<dyn Bus>>,
    /// The in-process bus, when that is the bus, for its queue-depth gauge.
    local_bus: Option<InProcessBus>,
    metrics: Arc<Metrics>,
    /// Poked after every monitor create/update/delete so that the scheduler reloads at once.
    monitors_changed: Arc<Notify>,
}

impl Application {
    /// Every role in one process, with the API on `settings.listen` (port 0 picks a free
    /// port; see [`Application::local_addr`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listen = settings.listen;
        Application::build_roles(settings, &Role::ALL, Some(listen)).await
    }

    /// The given roles in one process. `listen` is the API's address when the roles include
    /// the API; otherwise, when given, it serves `/healthz`, `/readyz` and `/metrics` only.
    pub async fn build_roles(
        settings: Settings,
        roles: &[Role],
        listen: Option<SocketAddr>,
    ) -> anyhow::Result<Application> {
        let all = Role::ALL.iter().all(|r| roles.contains(r));
        if !all {
            check_distributed(&settings, roles)?;
        }
        let monitors_changed = Arc::new(Notify::new());
        let store = if roles.iter().any(|r| r.needs_store()) {
            Some(open_store(&settings.database_url).await?)
        } else if roles.contains(&Role::Worker)
            && !settings.connectivity_targets.is_empty()
            && matches!(settings.database_url, DatabaseUrl::Postgres(_))
        {
            // A worker needs no store, but with one it tells the `system` channels when its
            // network goes and comes back; without one (far from the database) it logs it.
            match open_store(&settings.database_url).await {
                Ok(store) => Some(store),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "this worker cannot reach the store: its connectivity changes go to the log only");
                    None
                }
            }
        } else {
            None
        };
        let cache: Option<Arc<dyn StatusCache>> =
            match (&settings.redis, roles.iter().any(|r| r.needs_cache())) {
                (_, false) => None,
                (Some(redis), true) => Some(connect_redis(redis).await?),
                (None, true) => Some(Arc::new(MemoryCache::new())),
            };
        let mut local_bus = None;
        // Every role uses the bus; the API only to publish the pushes of push monitors, which
        // an API process alone without a broker answers with a 503 (an in-process stream
        // that nothing reads would lose them).
        let bus: Option<Arc<dyn Bus>> = match (&settings.kafka, roles.iter().any(|r| r.needs_bus()))
        {
            (Some(kafka), _) => Some(connect_kafka(kafka, &settings, roles).await?),
            (None, false) => None,
            (None, true) => {
                // In one process the workers take the jobs of their own region only: another
                // region's jobs would wait for workers that cannot subscribe.
                if let Some(other) = settings.regions.iter().find(|r| **r != settings.region) {
                    bail!(
                        "UPWATCH_REGIONS names `{other}`, but without KAFKA_BROKERS only this \
                         process checks, from UPWATCH_REGION `{}`: set UPWATCH_REGIONS to `{}` \
                         (or leave it empty), or run the regions' workers on Kafka",
                        settings.region,
                        settings.region
                    );
                }
                let bus = InProcessBus::new(settings.queue_capacity);
                local_bus = Some(bus.clone());
                Some(Arc::new(bus))
            }
        };
        if let Some(store) = &store {
            if roles.iter().any(|r| matches!(r, Role::Api | Role::Alerter)) {
                sync_config_webhooks(store.as_ref(), &settings).await?;
            }
            if let (true, Some(cache)) = (roles.contains(&Role::Api), &cache) {
                let monitors =
                    MonitorService::new(store.clone(), cache.clone(), monitors_changed.clone())
                        .with_regions(settings.regions.clone());
                monitors.seed(&settings.sites_to_monitor).await?;
                monitors.warm_cache().await?;
            }
        }
        let listener = match listen {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} (UPWATCH_LISTEN or --listen)")
            })?),
            None => None,
        };
        Ok(Application {
            roles: roles.to_vec(),
            listener,
            settings,
            store,
            cache,
            bus,
            local_bus,
            metrics: Metrics::new(),
            monitors_changed,
        })
    }

    /// The address the HTTP listener is bound to; `None` for a process without one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The port of the HTTP listener; `None` for a process without one.
    pub fn port(&self) -> Option<u16> {
        self.local_addr().map(|addr| addr.port())
    }

    /// The store, for tests and tools that inspect what the process wrote; `None` for a
    /// process whose roles need none.
    pub fn store(&self) -> Option<Arc<dyn Store>> {
        self.store.clone()
    }

    /// Runs the roles until `shutdown` is cancelled, then drains: the scheduler stops,
    /// in-flight checks finish (bounded by the drain timeout), every result received is
    /// stored and applied, and due alerts are delivered (bounded by the drain timeout).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            roles,
            listener,
            settings,
            store,
            cache,
            bus,
            local_bus,
            metrics,
            monitors_changed: changed,
        } = self;
        let has = |role: Role| roles.contains(&role);
        let leadership: Arc<dyn Leadership> = match &settings.database_url {
            DatabaseUrl::Postgres(url) => Arc::new(AdvisoryLock { url: url.clone() }),
            DatabaseUrl::Sqlite(_) => Arc::new(AlwaysLeader),
        };
        let wiring = Wiring::new(
            &settings,
            store.clone(),
            cache.clone(),
            bus.clone(),
            metrics.clone(),
            leadership,
            shutdown.clone(),
            changed.clone(),
        );
        let mut running = Vec::new();
        for role in START_ORDER {
            if has(role) {
                running.extend(wiring.start(role).await?);
            }
        }
        if let Some(bus) = local_bus {
            running.push(roles::queue_gauge(
                bus,
                settings.region.clone(),
                metrics.clone(),
                shutdown.clone(),
            ));
        }

        let mut http = None;
        if let Some(listener) = listener {
            let addr = listener.local_addr()?;
            let service = if has(Role::Api) {
                let store = wiring.store(Role::Api)?;
                let cache = wiring.cache(Role::Api)?;
                // The pages sit next to the API on the same listener, over the same store
                // and cache; they stop their live streams when the process shuts down.
                // One memo of uptime figures for the API and the pages: both show the same.
                let stats = Arc::new(Stats::new(store.clone(), settings.retention));
                let web = upwatch_web::WebState::start(upwatch_web::WebConfig {
                    store: store.clone(),
                    maintenances: store.clone(),
                    cache: cache.clone(),
                    stats: stats.clone(),
                    api_document: Arc::new(upwatch_api::openapi::json()),
                    dashboard: settings.api_token.is_none() || settings.dashboard_public,
                    stop: shutdown.clone(),
                })
                .with_regions(settings.regions.clone());
                let pushes = wiring.bus(Role::Api).ok().map(|bus| {
                    Arc::new(PushService::new(
                        store.clone(),
                        store.clone(),
                        bus,
                        settings.push_max_per_minute,
                    ))
                });
                let answers = Arc::new(upwatch_api::answers::LiveAnswers::new(
                    settings.api_status_max_age,
                ));
                let router = upwatch_api::router(ApiState {
                    pushes,
                    answers: answers.clone(),
                    maintenances: MaintenanceService::new(store.clone(), changed.clone()),
                    monitors: MonitorService::new(store.clone(), cache.clone(), changed)
                        .with_regions(settings.regions.clone()),
                    stats,
                    store,
                    cache,
                    metrics: metrics.clone(),
                    api_token: settings.api_token.clone(),
                    max_body_bytes: settings.api_max_body_bytes,
                    notifier: wiring.notifier()?,
                })
                .merge(upwatch_web::router(web));
                // Fresh live reads are answered before the router.
                FastReads::new(router, Some(answers), settings.api_token.clone())
            } else {
                let router =
                    ops::router(metrics.clone(), store.clone(), cache.clone(), bus.clone());
                FastReads::new(router, None, None)
            };
            // Beside checks (`serve`), the listener gets a runtime of its own, so that reads
            // are scheduled by the OS beside the checks' threads instead of queueing behind
            // their tasks; a process of one role serves on its only runtime.
            http = Some(if roles.len() > 1 {
                serve_on_own_runtime(listener, service, shutdown.clone())?
            } else {
                tokio::spawn(serve_until(listener, service, shutdown.clone()))
            });
            tracing::info!(
                listen = %addr,
                url = %format!("http://{addr}/"),
                roles = %roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(","),
                "upwatch is running"
            );
        } else {
            tracing::info!(roles = %roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(","), "upwatch is running");
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

        let http_failed = match &mut http {
            Some(task) => tokio::select! {
                _ = shutdown.cancelled() => None,
                result = task => {
                    shutdown.cancel();
                    Some(result)
                }
            },
            None => {
                shutdown.cancelled().await;
                None
            }
        };
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutting down: stopping the scheduler and draining in-flight checks");
        roles::drain(running, bus.as_ref(), &settings.region).await;
        let http_result = match (http_failed, http) {
            (Some(result), _) => Some(result),
            (None, Some(task)) => Some(task.await),
            (None, None) => None,
        };
        if let Some(result) = http_result {
            result
                .context("the HTTP task failed")?
                .context("the HTTP server failed")?;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The Redis cache of `REDIS_URL`.
#[cfg(feature = "distributed")]
async fn connect_redis(
    redis: &upwatch_config::RedisSettings,
) -> anyhow::Result<Arc<dyn StatusCache>> {
    Ok(Arc::new(
        RedisCache::connect(redis.url.expose_secret(), &redis.prefix)
            .await
            .context("cannot reach Redis at REDIS_URL")?,
    ))
}

/// Without the `distributed` feature there is no Redis driver: say how to get one.
#[cfg(not(feature = "distributed"))]
async fn connect_redis(
    _redis: &upwatch_config::RedisSettings,
) -> anyhow::Result<Arc<dyn StatusCache>> {
    bail!("{}", not_built_for("REDIS_URL"))
}

/// The Kafka bus of `KAFKA_BROKERS`, with a client id naming the roles.
#[cfg(feature = "distributed")]
async fn connect_kafka(
    kafka: &upwatch_config::KafkaSettings,
    settings: &Settings,
    roles: &[Role],
) -> anyhow::Result<Arc<dyn Bus>> {
    let mut regions = settings.regions.clone();
    if !regions.contains(&settings.region) {
        regions.push(settings.region.clone());
    }
    Ok(Arc::new(
        KafkaBus::connect(KafkaConfig {
            brokers: kafka.brokers.clone(),
            jobs_topic: kafka.jobs_topic.clone(),
            regions,
            results_topic: kafka.results_topic.clone(),
            partitions: kafka.partitions,
            group_prefix: kafka.group_prefix.clone(),
            properties: kafka
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.expose_secret().to_string()))
                .collect(),
            client_id: format!(
                "upwatch-{}",
                roles.iter().map(|r| r.name()).collect::<Vec<_>>().join("-")
            ),
            ..KafkaConfig::default()
        })
        .await
        .context("cannot reach Kafka at KAFKA_BROKERS")?,
    ))
}

/// Without the `distributed` feature there is no Kafka driver: say how to get one.
#[cfg(not(feature = "distributed"))]
async fn connect_kafka(
    _kafka: &upwatch_config::KafkaSettings,
    _settings: &Settings,
    _roles: &[Role],
) -> anyhow::Result<Arc<dyn Bus>> {
    bail!("{}", not_built_for("KAFKA_BROKERS"))
}

/// Serves `service` on `listener` until `shutdown`, then lets the requests in flight finish.
async fn serve_until(
    listener: TcpListener,
    service: FastReads,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, axum::ServiceExt::into_make_service(service))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Serves `service` on `listener` until `shutdown` ([`serve_until`]), on a runtime of its own (one worker
/// thread per core, named `upwatch-http`) in a thread of its own. The store, cache and bus it
/// calls stay on the main runtime, whose IO drivers wake the HTTP runtime's tasks. The task
/// returned ends with the server.
fn serve_on_own_runtime(
    listener: TcpListener,
    service: FastReads,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = listener.into_std()?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (done, ended) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("upwatch-http".into())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("upwatch-http")
                .enable_all()
                .build()
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        serve_until(TcpListener::from_std(listener)?, service, shutdown).await
                    })
                });
            let _ = done.send(served);
        })
        .context("cannot start the HTTP server's thread")?;
    Ok(tokio::spawn(async move {
        ended
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the HTTP server's thread panicked")))
    }))
}

/// The start-up error of a distributed setting given to an embedded-only binary.
#[cfg(not(feature = "distributed"))]
fn not_built_for(variable: &str) -> String {
    format!(
        "{variable} is set, but this upwatch was built without the `distributed` feature \
         (Kafka and Redis); unset {variable} to run the embedded mode, or rebuild with \
         `cargo build --release -p upwatch` (the default features include `distributed`)"
    )
}

/// Checks that a process running only some roles has the networked backends they need:
/// separate processes can only share a broker, a database server and a cache server.
fn check_distributed(settings: &Settings, roles: &[Role]) -> anyhow::Result<()> {
    for role in roles {
        if role.needs_bus() && settings.kafka.is_none() {
            bail!(
                "the {} role on its own needs the distributed mode: set KAFKA_BROKERS (or run `upwatch serve` for every role in one process)",
                role.name()
            );
        }
        if role.needs_cache() && settings.redis.is_none() {
            bail!(
                "the {} role on its own needs the distributed mode: set REDIS_URL (or run `upwatch serve` for every role in one process)",
                role.name()
            );
        }
        if role.needs_store() && matches!(settings.database_url, DatabaseUrl::Sqlite(_)) {
            bail!(
                "the {} role on its own needs the distributed mode: set DATABASE_URL to a postgres:// URL (or run `upwatch serve` for every role in one process)",
                role.name()
            );
        }
    }
    Ok(())
}

/// Opens the store named by `DATABASE_URL`. SQLite is migrated on open; PostgreSQL must have
/// been migrated with `upwatch migrate`.
pub async fn open_store(url: &DatabaseUrl) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match url {
        DatabaseUrl::Sqlite(url) => Arc::new(
            SqliteStore::connect(url)
                .await
                .with_context(|| format!("cannot open the database at DATABASE_URL={url}"))?,
        ),
        DatabaseUrl::Postgres(url) => match PostgresStore::connect(url).await {
            Ok(store) => Arc::new(store),
            Err(StoreError::Schema(message)) => bail!("{message}"),
            Err(e) => {
                return Err(e).context(format!("cannot reach PostgreSQL at {}", redact_url(url)))
            }
        },
    })
}

/// Makes the stored configured channels match `DISCORD_WEBHOOK_URL` and
/// `UPWATCH_NOTIFIERS_FILE`: adds new ones, updates changed ones, removes those no longer
/// configured. Channels created through the API (or `upwatch import`) are left alone.
async fn sync_config_webhooks(store: &dyn Store, settings: &Settings) -> anyhow::Result<()> {
    let mut wanted = Vec::new();
    for (i, url) in settings.discord_webhook_urls.iter().enumerate() {
        let url = url.expose_secret().to_string();
        let webhook = Webhook::discord(
            Webhook::config_id(&url),
            format!("DISCORD_WEBHOOK_URL #{}", i + 1),
            url,
            WebhookSource::Config,
        );
        store
            .upsert_webhook(&webhook)
            .await
            .context("cannot store the configured webhooks")?;
        tracing::info!(webhook = %redact_url(&webhook.url), id = %webhook.id, "webhook configured");
        wanted.push(webhook.id);
    }
    if let Some(path) = &settings.notifiers_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("UPWATCH_NOTIFIERS_FILE: cannot read {}", path.display()))?;
        let docs = channels::parse_file(&text)
            .map_err(|e| anyhow::anyhow!("UPWATCH_NOTIFIERS_FILE {}: {e}", path.display()))?;
        let notifier = upwatch_notifiers::Channels::default();
        let configured = channels::read_all(
            &notifier,
            &docs,
            WebhookSource::Config,
            &channels::process_env,
        )
        .map_err(|(i, e)| {
            anyhow::anyhow!(
                "UPWATCH_NOTIFIERS_FILE {}: notifiers[{i}]: {e}",
                path.display()
            )
        })?;
        for channel in configured {
            store
                .upsert_webhook(&channel)
                .await
                .context("cannot store the configured notifiers")?;
            tracing::info!(id = %channel.id, kind = %channel.kind, name = %channel.name, "notifier configured");
            wanted.push(channel.id);
        }
    }
    for stale in store
        .list_webhooks()
        .await?
        .into_iter()
        .filter(|w| w.source == WebhookSource::Config && !wanted.contains(&w.id))
    {
        store.delete_webhook(stale.id).await?;
        tracing::info!(webhook = %redact_url(&stale.url), "webhook no longer configured; removed");
    }
    Ok(())
}
