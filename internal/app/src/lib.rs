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

pub mod cli;
mod ops;
pub mod yaml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::Utc;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upwatch_api::ApiState;
use upwatch_bus::{groups, Bus, InProcessBus, Topic};
#[cfg(feature = "distributed")]
use upwatch_bus_kafka::{KafkaBus, KafkaConfig};
use upwatch_cache::{MemoryCache, StatusCache};
#[cfg(feature = "distributed")]
use upwatch_cache_redis::RedisCache;
use upwatch_checker::{Checker, CheckerConfig};
use upwatch_config::{DatabaseUrl, Settings};
use upwatch_core::{redact_url, Webhook, WebhookSource};
use upwatch_notify::{DiscordNotifier, Dispatcher, RetryPolicy};
use upwatch_pipeline::alerter::Alerter;
use upwatch_pipeline::cache_updater::CacheUpdater;
use upwatch_pipeline::consume::Batching;
use upwatch_pipeline::logger::Logger;
use upwatch_pipeline::pruner::Pruner;
use upwatch_pipeline::scheduler::{Scheduler, StoreMonitors};
use upwatch_pipeline::watchdog::{Watchdog, WebhookAnnouncer};
use upwatch_pipeline::worker::WorkerPool;
use upwatch_service::{MonitorService, Stats};
use upwatch_store::{Store, StoreError};
use upwatch_store_sql::postgres::LeaderLock;
use upwatch_store_sql::{PostgresStore, SqliteStore};
use upwatch_telemetry::Metrics;

/// The PostgreSQL advisory lock key that elects the one active scheduler ("upwatch" in ASCII).
pub const SCHEDULER_LOCK_KEY: i64 = 0x0075_7077_6174_6368;
/// The lock key that elects the one alerter process that delivers the outbox, so that two
/// alerters never send the same delivery.
pub const DISPATCHER_LOCK_KEY: i64 = SCHEDULER_LOCK_KEY + 1;

/// The advisory lock that elects the one logger that prunes old history.
pub const PRUNER_LOCK_KEY: i64 = SCHEDULER_LOCK_KEY + 2;

/// How often the watchdog judges every monitor.
const WATCHDOG_EVERY: Duration = Duration::from_secs(1);
/// How often the watchdog samples the workers' lag on the jobs topic.
const WATCHDOG_LAG_EVERY: Duration = Duration::from_secs(5);

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

    fn needs_cache(self) -> bool {
        // The scheduler's watchdog reads check times from the cache and marks stale monitors.
        matches!(self, Role::Scheduler | Role::CacheUpdater | Role::Api)
    }

    fn needs_bus(self) -> bool {
        !matches!(self, Role::Api)
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
        let bus: Option<Arc<dyn Bus>> = match (&settings.kafka, roles.iter().any(|r| r.needs_bus()))
        {
            (_, false) => None,
            (Some(kafka), true) => Some(connect_kafka(kafka, roles).await?),
            (None, true) => {
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
                    MonitorService::new(store.clone(), cache.clone(), monitors_changed.clone());
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

    /// The address the HTTP listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .expect("this process has a listener")
    }

    /// The port of the HTTP listener.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The store, for tests and tools that inspect what the process wrote.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone().expect("this process has a store")
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
        let store_of = |role: Role| {
            store
                .clone()
                .with_context(|| format!("the {} role needs a store", role.name()))
        };

        // Every consumer joins its group before the scheduler publishes anything.
        let mut subscriptions = std::collections::HashMap::new();
        if let Some(bus) = &bus {
            for (role, topic, group) in [
                (Role::Worker, Topic::Jobs, groups::WORKERS),
                (Role::Logger, Topic::Results, groups::LOGGER),
                (Role::CacheUpdater, Topic::Results, groups::CACHE),
                (Role::Alerter, Topic::Results, groups::ALERTER),
            ] {
                if has(role) {
                    let sub = bus
                        .subscribe(topic, group)
                        .await
                        .with_context(|| format!("cannot join the consumer group {group}"))?;
                    subscriptions.insert(role, sub);
                }
            }
        }

        // One HTTP client for Discord, shared by the alerter's dispatcher, the API's test
        // messages and the watchdog's messages; processes with none of them build none.
        let notifier: Option<Arc<dyn upwatch_notify::Notifier>> =
            if has(Role::Alerter) || has(Role::Api) || has(Role::Scheduler) {
                Some(Arc::new(
                    DiscordNotifier::new().context("cannot build the HTTP client for Discord")?,
                ))
            } else {
                None
            };
        let mut dispatcher: Option<(JoinHandle<()>, CancellationToken)> = None;
        let mut consumers: Vec<JoinHandle<()>> = Vec::new();
        if has(Role::Alerter) {
            let store = store_of(Role::Alerter)?;
            let waker = Arc::new(Notify::new());
            let stop = CancellationToken::new();
            let make = {
                let (store, notifier, metrics, waker, drain) = (
                    store.clone(),
                    notifier.clone().expect("built for the alerter"),
                    metrics.clone(),
                    waker.clone(),
                    settings.drain_timeout,
                );
                move |stop: CancellationToken| {
                    let d = Dispatcher::new(
                        store.clone(),
                        notifier.clone(),
                        metrics.clone(),
                        RetryPolicy::default(),
                    )
                    .with_waker(waker.clone());
                    tokio::spawn(d.run(stop, drain))
                }
            };
            let task = match &settings.database_url {
                // Alerters scale out for the results stream, but one delivers the outbox.
                DatabaseUrl::Postgres(url) => tokio::spawn(while_leader(
                    url.clone(),
                    DISPATCHER_LOCK_KEY,
                    "alert dispatcher",
                    stop.clone(),
                    make,
                )),
                DatabaseUrl::Sqlite(_) => make(stop.clone()),
            };
            dispatcher = Some((task, stop));
            let sub = subscriptions.remove(&Role::Alerter).expect("subscribed");
            consumers.push(tokio::spawn(
                Alerter {
                    store,
                    dispatch: waker,
                    batching: Batching {
                        size: settings.logger_batch_size,
                        wait: settings.logger_batch_wait,
                    },
                }
                .run(sub),
            ));
        }
        let mut pruning = None;
        if has(Role::Logger) {
            let logger = Logger {
                store: store_of(Role::Logger)?,
                metrics: metrics.clone(),
                batch_size: settings.logger_batch_size,
                batch_wait: settings.logger_batch_wait,
            };
            consumers.push(tokio::spawn(
                logger.run(subscriptions.remove(&Role::Logger).expect("subscribed")),
            ));
            // Loggers scale out for the results stream, but one prunes.
            let pruner = Pruner {
                store: store_of(Role::Logger)?,
                metrics: metrics.clone(),
                retention: settings.retention,
                every: settings.prune_interval,
                batch_monitors: settings.prune_batch_monitors,
            };
            pruning = Some(match &settings.database_url {
                DatabaseUrl::Postgres(url) => tokio::spawn(while_leader(
                    url.clone(),
                    PRUNER_LOCK_KEY,
                    "pruner",
                    shutdown.clone(),
                    move |stop| tokio::spawn(pruner.clone().run(stop)),
                )),
                DatabaseUrl::Sqlite(_) => tokio::spawn(pruner.run(shutdown.clone())),
            });
        }
        if has(Role::CacheUpdater) {
            let cache = cache
                .clone()
                .context("the cache-updater role needs a cache")?;
            let sub = subscriptions
                .remove(&Role::CacheUpdater)
                .expect("subscribed");
            let store = store_of(Role::CacheUpdater)?;
            consumers.push(tokio::spawn(CacheUpdater { cache, store }.run(sub)));
        }
        let workers = if has(Role::Worker) {
            let checker = Checker::new(CheckerConfig {
                max_body_bytes: settings.check_max_body_bytes,
                max_redirects: settings.check_max_redirects,
                ..CheckerConfig::default()
            })
            .context("cannot build the HTTP client for checks")?;
            let pool = WorkerPool {
                bus: bus.clone().expect("a bus for workers"),
                checker,
                metrics: metrics.clone(),
                concurrency: settings.workers,
                drain_timeout: settings.drain_timeout,
            };
            let sub = subscriptions.remove(&Role::Worker).expect("subscribed");
            Some(tokio::spawn(pool.run(sub, shutdown.clone())))
        } else {
            None
        };
        let scheduler = if has(Role::Scheduler) {
            let store = store_of(Role::Scheduler)?;
            let bus = bus.clone().expect("a bus for the scheduler");
            let watchdog = Watchdog {
                cache: cache.clone().context("the scheduler role needs a cache")?,
                announce: Arc::new(WebhookAnnouncer {
                    store: store.clone(),
                    notifier: notifier.clone().expect("built for the scheduler"),
                }),
                metrics: metrics.clone(),
                stale_after_intervals: settings.stale_after_intervals,
                every: WATCHDOG_EVERY,
                lag_of: settings.kafka.as_ref().map(|_| bus.clone()),
                lag_every: WATCHDOG_LAG_EVERY,
            };
            let scheduler = Scheduler {
                source: Arc::new(StoreMonitors(store)),
                bus,
                metrics: metrics.clone(),
                reload_every: settings.scheduler_reload,
                changed: changed.clone(),
                // First checks of monitors created together go out at about the pool's
                // capacity: one check per worker per second.
                first_checks_per_second: u32::try_from(settings.workers).unwrap_or(u32::MAX),
                watchdog: Some(watchdog),
            };
            Some(match &settings.database_url {
                DatabaseUrl::Postgres(url) => tokio::spawn(while_leader(
                    url.clone(),
                    SCHEDULER_LOCK_KEY,
                    "scheduler",
                    shutdown.clone(),
                    move |stop| tokio::spawn(scheduler.clone().run(stop)),
                )),
                DatabaseUrl::Sqlite(_) => tokio::spawn(scheduler.run(shutdown.clone())),
            })
        } else {
            None
        };
        let gauges = local_bus.map(|bus| {
            let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tick.tick() => {
                            metrics.queue_depth.set(bus.depth(Topic::Jobs, groups::WORKERS) as i64);
                        }
                    }
                }
            })
        });

        let mut http = None;
        if let Some(listener) = listener {
            let addr = listener.local_addr()?;
            let router = if has(Role::Api) {
                let store = store_of(Role::Api)?;
                let cache = cache.clone().context("the api role needs a cache")?;
                // The pages sit next to the API on the same listener, over the same store
                // and cache; they stop their live streams when the process shuts down.
                // One memo of uptime figures for the API and the pages: both show the same.
                let stats = Arc::new(Stats::new(store.clone(), settings.retention));
                let web = upwatch_web::WebState::start(upwatch_web::WebConfig {
                    store: store.clone(),
                    cache: cache.clone(),
                    stats: stats.clone(),
                    dashboard: settings.api_token.is_none() || settings.dashboard_public,
                    stop: shutdown.clone(),
                });
                upwatch_api::router(ApiState {
                    monitors: MonitorService::new(store.clone(), cache.clone(), changed),
                    stats,
                    store,
                    cache,
                    metrics: metrics.clone(),
                    api_token: settings.api_token.clone(),
                    max_body_bytes: settings.api_max_body_bytes,
                    retention: settings.retention,
                    notifier: notifier.clone().expect("built for the API"),
                })
                .merge(upwatch_web::router(web))
            } else {
                ops::router(metrics.clone(), store.clone(), cache.clone())
            };
            let server = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned());
            http = Some(tokio::spawn(async move { server.await }));
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
        if let Some(task) = scheduler {
            let _ = task.await;
        }
        if let Some(task) = workers {
            let _ = task.await;
        }
        if let Some(bus) = &bus {
            bus.close(Topic::Jobs).await;
            bus.close(Topic::Results).await;
        }
        for task in consumers {
            let _ = task.await;
        }
        if let Some((task, stop)) = dispatcher {
            tracing::info!("results applied; delivering due alerts");
            stop.cancel();
            let _ = task.await;
        }
        if let Some(task) = gauges {
            let _ = task.await;
        }
        if let Some(task) = pruning {
            let _ = task.await;
        }
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
    roles: &[Role],
) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(Arc::new(
        KafkaBus::connect(KafkaConfig {
            brokers: kafka.brokers.clone(),
            jobs_topic: kafka.jobs_topic.clone(),
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
    _roles: &[Role],
) -> anyhow::Result<Arc<dyn Bus>> {
    bail!("{}", not_built_for("KAFKA_BROKERS"))
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

/// Runs the task `start` makes while this process holds the advisory lock `key`; stands by
/// otherwise, and takes over within about a second of the holder's session ending.
async fn while_leader<F>(
    url: String,
    key: i64,
    what: &'static str,
    shutdown: CancellationToken,
    start: F,
) where
    F: Fn(CancellationToken) -> JoinHandle<()>,
{
    let mut failures = 0u32;
    let mut standing_by = false;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            attempt = LeaderLock::try_acquire(&url, key) => attempt,
        };
        match attempt {
            Ok(Some(mut lock)) => {
                failures = 0;
                standing_by = false;
                tracing::info!(role = what, "this {what} is the leader");
                let stop = CancellationToken::new();
                let task = start(stop.clone());
                tokio::select! {
                    _ = lock.lost() => tracing::warn!(role = what, "leadership lost; standing by"),
                    _ = shutdown.cancelled() => {}
                }
                stop.cancel();
                let _ = task.await;
                lock.release().await;
                if shutdown.is_cancelled() {
                    return;
                }
            }
            Ok(None) => {
                if !standing_by {
                    tracing::info!(role = what, "another {what} is the leader; standing by");
                    standing_by = true;
                }
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(role = what, %error, attempt = failures, "cannot take part in the election; retrying");
            }
        }
        let wait = Duration::from_millis(1000 * u64::from(failures.clamp(1, 10)));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Makes the stored configured webhooks match `DISCORD_WEBHOOK_URL`: adds new ones, removes
/// those no longer configured. Webhooks created through the API are left alone.
async fn sync_config_webhooks(store: &dyn Store, settings: &Settings) -> anyhow::Result<()> {
    let mut wanted = Vec::new();
    for (i, url) in settings.discord_webhook_urls.iter().enumerate() {
        let url = url.expose_secret().to_string();
        let webhook = Webhook {
            id: Webhook::config_id(&url),
            name: format!("DISCORD_WEBHOOK_URL #{}", i + 1),
            url,
            enabled: true,
            disabled_reason: None,
            source: WebhookSource::Config,
            created_at: Utc::now(),
        };
        store
            .upsert_webhook(&webhook)
            .await
            .context("cannot store the configured webhooks")?;
        tracing::info!(webhook = %redact_url(&webhook.url), id = %webhook.id, "webhook configured");
        wanted.push(webhook.id);
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
